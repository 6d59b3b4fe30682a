// The wallboard as a supervisor uses it: signed in with an admin key, acting from the page
// (pause / resume a queue, set an agent's state, assign a caller), tiles coloured at the
// tenant's stored thresholds, and the board fitting a TV and a laptop screen.
// api/tests/wallboard_browser.rs (`a_supervisor_acts_from_the_wallboard...`) runs this script;
// the two talk in lines:
//
//   script -> test: {"step":"ready"}      signed in, the supervisor's actions shown
//   test -> script: pause                 (the script clicks Pause on the queue)
//   script -> test: {"step":"paused"}     the page shows the queue paused
//   test -> script: one                   thresholds stored (waiting amber 1, red 2); 1 caller
//   script -> test: {"step":"amber"}      the calls-waiting tile is amber
//   test -> script: two                   a second caller
//   script -> test: {"step":"red"}        the tile is red; screenshots taken
//   test -> script: act                   (the script assigns a caller to an agent on a
//                                         break: refused, the error shows; then sets the
//                                         agent available from the roster)
//   script -> test: {"step":"acted"}
//   test -> script: resume                (the script clicks Resume; the agent takes a
//                                         caller; the script listens in to the agent)
//   script -> test: {"ok":..,...}         the result, last
//
//   node wallboard_actions.mjs <base-url> <admin-key> <queue-id> <agent-id> <shots-dir>
//
// Exits 0 only when every check passed.

import { armDeadline, launch, say, stdinLines } from './common.mjs';

const [base, key, queueId, agentId, shots] = process.argv.slice(2);
if (!base || !key || !queueId || !agentId || !shots) {
  console.error('usage: node wallboard_actions.mjs <base-url> <admin-key> <queue-id> <agent-id> <shots-dir>');
  process.exit(2);
}

const DEADLINE_MS = 120_000;
const STEP_MS = 15_000;

let browser;
const deadline = armDeadline(DEADLINE_MS);

const nextLine = stdinLines();
const expect = async (want) => {
  const got = await nextLine();
  if (got !== want) throw new Error(`expected "${want}", got "${got}"`);
};

const failures = [];
const result = { ok: false, failures };
const consoleErrors = [];

// Where the tiles end, against the window's height: they must all be on screen.
const tilesFit = (page) =>
  page.evaluate(() => {
    const tiles = [...document.querySelectorAll('.tiles .tile')].filter((t) => t.offsetParent);
    const bottom = Math.max(...tiles.map((t) => t.getBoundingClientRect().bottom));
    const right = Math.max(...tiles.map((t) => t.getBoundingClientRect().right));
    // A value wider than its tile would spill over its neighbour.
    const spilled = tiles
      .filter((t) => {
        const v = t.querySelector('.value');
        return v && v.scrollWidth > t.clientWidth;
      })
      .map((t) => t.id || t.textContent.trim().slice(0, 20));
    // Tables wider than their panels would hide columns (or the actions) off to the side.
    const overflowing = ['queues', 'waiting-calls', 'roster']
      .map((id) => document.getElementById(id))
      .filter((t) => t.offsetParent && t.scrollWidth > t.closest('.panel').clientWidth + 1)
      .map((t) => t.id);
    return { tiles: tiles.length, bottom, right, width: innerWidth, height: innerHeight, spilled, overflowing };
  });

try {
  browser = await launch(STEP_MS);
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    // Refused actions (409) are logged by Chromium as failed loads: expected here.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      consoleErrors.push(m.text());
    }
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  await page.goto(`${base}/wallboard`, { timeout: STEP_MS });
  await page.waitForSelector('#signin-form', { state: 'visible', timeout: STEP_MS });
  await page.fill('#signin-key', key);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#board', { state: 'visible', timeout: STEP_MS });
  await page.waitForFunction(() => Number(document.body.dataset.snapshots) > 0, null, { timeout: STEP_MS });
  const row = `#queues tr[data-queue="${queueId}"]`;
  await page.waitForSelector(`${row} button.pause`, { timeout: STEP_MS });
  result.actions_shown = await page.isVisible('#actions');
  // The day's figures came with the snapshot or the first `figures` event.
  await page.waitForFunction(() => document.getElementById('total-sl-tile').dataset.level !== undefined, null, { timeout: STEP_MS });
  say({ step: 'ready' });

  await expect('pause');
  await page.click(`${row} button.pause`);
  await page.waitForSelector(`${row}[data-paused="1"]`, { timeout: STEP_MS });
  result.pause_action = await page.evaluate(() => document.body.dataset.lastAction);
  result.resume_button = await page.isVisible(`${row} button.resume`);
  say({ step: 'paused' });

  await expect('one');
  const tileLevel = (want) =>
    page.waitForFunction(
      (w) => document.getElementById('total-waiting-tile').dataset.level === w,
      want,
      { timeout: STEP_MS },
    );
  await tileLevel('amber');
  result.waiting_levels = ['amber'];
  say({ step: 'amber' });

  await expect('two');
  await tileLevel('red');
  result.waiting_levels.push('red');
  // Both callers in the waiting list (for assigning) before the screenshots.
  await page.waitForFunction(() => document.querySelectorAll('#waiting-calls tbody tr').length === 2, null, { timeout: STEP_MS });
  await page.screenshot({ path: `${shots}/wallboard-1080p.png` });
  result.fit_1080p = await tilesFit(page);
  await page.setViewportSize({ width: 1366, height: 768 });
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${shots}/wallboard-laptop.png` });
  result.fit_laptop = await tilesFit(page);
  await page.setViewportSize({ width: 1920, height: 1080 });
  say({ step: 'red' });

  await expect('act');
  // Assigning a caller to the agent on a break: the server refuses, the page says why.
  const call = '#waiting-calls tbody tr:first-child';
  await page.selectOption(`${call} select.assign-to`, String(agentId));
  await page.click(`${call} button.assign`);
  await page.waitForFunction(() => document.getElementById('action-error').textContent !== '', null, { timeout: STEP_MS });
  result.assign_error = await page.textContent('#action-error');
  result.assign_action = await page.evaluate(() => document.body.dataset.lastAction);
  // The agent, set available from the roster (the queue is paused: no offer follows).
  const agentRow = `#roster tr[data-agent="${agentId}"]`;
  await page.click(`${agentRow} button.set-available`);
  await page.waitForSelector(`${agentRow}[data-state="available"]`, { timeout: STEP_MS });
  result.state_action = await page.evaluate(() => document.body.dataset.lastAction);
  result.error_cleared = (await page.textContent('#action-error')) === '';
  say({ step: 'acted' });

  await expect('resume');
  await page.click(`${row} button.resume`);
  await page.waitForSelector(`${row}[data-paused="0"]`, { timeout: STEP_MS });
  // Resumed: the waiting callers go to the available agent.
  await page.waitForSelector(`${agentRow}[data-state="on-call"]`, { timeout: STEP_MS });
  result.resumed = true;
  // Listening in: without a phone the page asks for one; with one, the server dials it.
  await page.fill('#sup-phone', '');
  await page.click(`${agentRow} button.monitor-listen`);
  result.monitor_without_phone = await page.textContent('#action-error');
  await page.fill('#sup-phone', 'user/1001');
  await page.click(`${agentRow} button.monitor-listen`);
  await page.waitForFunction(
    () => (document.body.dataset.lastAction || '').includes('/monitor'),
    null,
    { timeout: STEP_MS },
  );
  result.monitor_action = await page.evaluate(() => document.body.dataset.lastAction);
  result.monitor_error = await page.textContent('#action-error');
  result.console_errors = consoleErrors;

  if (!result.actions_shown) failures.push('the supervisor actions are hidden for an admin');
  if (!result.resume_button) failures.push('a paused queue shows no Resume button');
  for (const [name, fit] of [['1080p', result.fit_1080p], ['laptop', result.fit_laptop]]) {
    if (fit.bottom > fit.height || fit.right > fit.width) failures.push(`the tiles do not fit at ${name}: ${JSON.stringify(fit)}`);
    if (fit.spilled.length) failures.push(`values spill out of their tiles at ${name}: ${fit.spilled}`);
    if (fit.overflowing.length) failures.push(`tables wider than their panels at ${name}: ${fit.overflowing}`);
  }
  if (consoleErrors.length) failures.push(`console errors: ${consoleErrors}`);
  result.ok = failures.length === 0;
} catch (e) {
  failures.push(String(e && e.stack ? e.stack : e));
  try {
    const page = browser?.contexts()[0]?.pages()[0];
    result.debug = await page?.evaluate(() => ({
      error: document.getElementById('action-error')?.textContent,
      status: document.getElementById('action-status')?.textContent,
      last: document.body.dataset.lastAction,
      waiting_level: document.getElementById('total-waiting-tile')?.dataset.level,
      waiting: document.getElementById('total-waiting')?.textContent,
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
