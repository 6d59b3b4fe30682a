// What the browser checks share: Debian's Chromium launched headless (playwright-core never
// downloads one: $SWITCHYARD_CHROMIUM or /usr/bin/chromium), a deadline for the whole run
// that prints a failed result and exits 3, and the line protocol with the Rust test that
// drives the script (words in on stdin, JSON lines out on stdout).

import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const executablePath = process.env.SWITCHYARD_CHROMIUM || '/usr/bin/chromium';

// The background-networking flags keep Chromium from reaching out to Google services, which
// on a closed network only stalls start-up.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let launched;

// The browser, started within `timeoutMs`, with `extraArgs` after the shared ones.
export async function launch(timeoutMs, extraArgs = []) {
  launched = await chromium.launch({ executablePath, args: [...ARGS, ...extraArgs], timeout: timeoutMs });
  return launched;
}

// After `ms`, whatever the script is doing: a failed result, the browser closed, exit 3.
export function armDeadline(ms) {
  return setTimeout(async () => {
    console.log(JSON.stringify({ ok: false, failures: [`no result within ${ms} ms`] }));
    try {
      await launched?.close();
    } finally {
      process.exit(3);
    }
  }, ms);
}

// The test's lines, one awaited at a time (read from stdin as they come).
export function stdinLines() {
  const lines = [];
  const waiting = [];
  createInterface({ input: process.stdin }).on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line.trim());
    else lines.push(line.trim());
  });
  return () =>
    lines.length ? Promise.resolve(lines.shift()) : new Promise((resolve) => waiting.push(resolve));
}

// One JSON line to the test.
export const say = (o) => console.log(JSON.stringify(o));
