// The wallboard across a server restart: a wall screen signed in with a display token shows
// the day's handled and abandoned calls; the server process is stopped (the banner shows)
// and started again on the same database and port; the same figures come back.
// api/tests/wallboard_restart.rs runs this script; the two talk in lines:
//
//   script -> test: {"step":"ready"}            signed in, the live snapshot shown
//   test -> script: expect <handled> <abandoned>
//   script -> test: {"step":"before",...}       the tiles show those figures
//   test -> script: down                        the server process was stopped
//   script -> test: {"step":"banner"}           the stale banner shows
//   test -> script: up                          the server runs again
//   script -> test: {"ok":..,...}               the result, last
//
//   node wallboard_restart.mjs <base-url> <display-token> <screenshot.png>

import { armDeadline, launch, say, stdinLines } from './common.mjs';

const [base, token, screenshot] = process.argv.slice(2);
if (!base || !token || !screenshot) {
  console.error('usage: node wallboard_restart.mjs <base-url> <display-token> <screenshot.png>');
  process.exit(2);
}

const DEADLINE_MS = 150_000;
const STEP_MS = 30_000;

let browser;
const deadline = armDeadline(DEADLINE_MS);

const nextLine = stdinLines();

const failures = [];
const result = { ok: false, failures };

const figures = (page) =>
  page.evaluate(() => ({
    handled: document.getElementById('total-handled').textContent,
    abandoned: document.getElementById('total-abandoned').textContent,
    abandon_rate: document.getElementById('total-abandon-rate').textContent,
    service_level: document.getElementById('total-sl').textContent,
  }));
const showing = (page, handled, abandoned) =>
  page.waitForFunction(
    ([h, a]) =>
      document.getElementById('total-handled').textContent === h &&
      document.getElementById('total-abandoned').textContent === a,
    [handled, abandoned],
    { timeout: STEP_MS },
  );

try {
  browser = await launch(STEP_MS);
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  const page = await context.newPage();
  await page.goto(`${base}/wallboard`, { timeout: STEP_MS });
  await page.waitForSelector('#signin-form', { state: 'visible', timeout: STEP_MS });
  await page.fill('#signin-key', token);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#board', { state: 'visible', timeout: STEP_MS });
  await page.waitForFunction(() => Number(document.body.dataset.snapshots) > 0, null, { timeout: STEP_MS });
  say({ step: 'ready' });

  const [word, handled, abandoned] = (await nextLine()).split(' ');
  if (word !== 'expect') throw new Error(`expected "expect", got ${word}`);
  await showing(page, handled, abandoned);
  result.before = await figures(page);
  say({ step: 'before', ...result.before });

  if ((await nextLine()) !== 'down') throw new Error('expected "down"');
  const down = Date.now();
  await page.waitForSelector('#banner', { state: 'visible', timeout: STEP_MS });
  result.banner_after_ms = Date.now() - down;
  result.feed_while_down = await page.evaluate(() => document.body.dataset.feed);
  const snapshots = await page.evaluate(() => Number(document.body.dataset.snapshots));
  say({ step: 'banner' });

  if ((await nextLine()) !== 'up') throw new Error('expected "up"');
  const up = Date.now();
  await page.waitForFunction((n) => Number(document.body.dataset.snapshots) > n, snapshots, { timeout: STEP_MS });
  result.snapshot_after_ms = Date.now() - up;
  await page.waitForSelector('#banner', { state: 'hidden', timeout: STEP_MS });
  await showing(page, handled, abandoned);
  result.figures_after_ms = Date.now() - up;
  result.after = await figures(page);
  await page.screenshot({ path: screenshot });

  if (result.feed_while_down !== 'stale') failures.push(`feed while down: ${result.feed_while_down}`);
  if (JSON.stringify(result.after) !== JSON.stringify(result.before)) {
    failures.push(`before ${JSON.stringify(result.before)}, after ${JSON.stringify(result.after)}`);
  }
  result.ok = failures.length === 0;
} catch (e) {
  failures.push(String(e && e.stack ? e.stack : e));
  try {
    const page = browser?.contexts()[0]?.pages()[0];
    result.debug = await page?.evaluate(() => ({
      handled: document.getElementById('total-handled')?.textContent,
      abandoned: document.getElementById('total-abandoned')?.textContent,
      feed: document.body.dataset.feed,
      snapshots: document.body.dataset.snapshots,
    }));
  } catch (e2) {
    result.debug = String(e2);
  }
} finally {
  clearTimeout(deadline);
  try {
    await browser?.close();
  } catch {
    // The result below matters more.
  }
}
say(result);
process.exit(result.ok ? 0 : 1);
