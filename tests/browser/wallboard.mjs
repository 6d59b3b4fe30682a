// The wallboard in headless Chromium as a wall screen uses it: the page served by switchyard
// at /wallboard, signed in with a display token typed into its form, following /v1/live.
// api/tests/wallboard_browser.rs runs this script and drives the calls; the two talk in lines:
//
//   script -> test (stdout, JSON): {"step":"ready"}   signed in, the live snapshot shown
//   test -> script (stdin):        placed             a caller was just placed
//   script -> test:                {"step":"seen"}    the page shows 1 waiting in the queue
//   script -> test:                {"step":"shot"}    the wait ticked; screenshot taken
//   test -> script:                answered           an agent was made available
//   script -> test:                {"step":"left"}    the page shows nobody waiting
//   test -> script:                feed-down          the live feed was closed
//   script -> test:                {"ok":..,...}      the result, last
//
//   node wallboard.mjs <base-url> <display-token> <queue-id> <screenshot.png>
//
// It exits 0 only when every check passed; 1 on a failed check, 2 on bad arguments, 3 when
// the whole run overran its deadline. The browser is the Debian chromium binary
// ($SWITCHYARD_CHROMIUM or /usr/bin/chromium): playwright-core never downloads one.

import { armDeadline, launch, say, stdinLines } from './common.mjs';

const [base, token, queueId, screenshot] = process.argv.slice(2);
if (!base || !token || !queueId || !screenshot) {
  console.error('usage: node wallboard.mjs <base-url> <display-token> <queue-id> <screenshot.png>');
  process.exit(2);
}

const DEADLINE_MS = 90_000;
const STEP_MS = 15_000;

let browser;
const deadline = armDeadline(DEADLINE_MS);

// Lines from the test, one awaited at a time.
const nextLine = stdinLines();


const failures = [];
const result = { ok: false, failures };
const consoleErrors = [];
const cspViolations = [];

try {
  browser = await launch(STEP_MS);
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  const page = await context.newPage();
  // The 401 of the first who-am-I (no session yet) and the 403 of the refused action below
  // are logged by Chromium as failed loads: expected, not errors of the page.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      consoleErrors.push(m.text());
    }
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  const started = Date.now();
  const resp = await page.goto(`${base}/wallboard`, { timeout: STEP_MS });
  result.page_status = resp.status();
  result.csp = resp.headers()['content-security-policy'] || null;
  // A page whose CSP refuses its own scripts would never show the form: catch it early.
  await page.evaluate(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp = (window.__csp || []).concat(e.violatedDirective + ' ' + e.blockedURI);
    });
  });
  await page.waitForSelector('#signin-form', { state: 'visible', timeout: STEP_MS });
  await page.fill('#signin-key', token);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#board', { state: 'visible', timeout: STEP_MS });
  await page.waitForFunction(() => Number(document.body.dataset.snapshots) > 0, null, {
    timeout: STEP_MS,
  });
  result.signed_in_ms = Date.now() - started;
  // A wall screen as it starts each morning, its session cookie already set: from navigation
  // to the first paint, to the live figures drawn (the first snapshot rendered), and every
  // byte of the page's own files (the live feed and the session check are data, not weight).
  // A context of its own (an empty cache, so every file is fetched) with the same cookies.
  const coldContext = await browser.newContext({
    viewport: { width: 1920, height: 1080 },
    storageState: await context.storageState(),
  });
  const fresh = await coldContext.newPage();
  await fresh.goto(`${base}/wallboard`, { timeout: STEP_MS });
  await fresh.waitForFunction(() => Number(document.body.dataset.snapshots) > 0, null, {
    timeout: STEP_MS,
    polling: 'raf',
  });
  result.load = await fresh.evaluate(() => {
    const live_ms = performance.now();
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    const nav = performance.getEntriesByType('navigation')[0];
    const files = performance
      .getEntriesByType('resource')
      .filter((r) => r.name.includes('/web/assets/'));
    return {
      first_contentful_paint_ms: fcp ? fcp.startTime : null,
      live_figures_ms: live_ms,
      page_bytes: nav.decodedBodySize + files.reduce((n, r) => n + r.decodedBodySize, 0),
      files: files.length + 1,
    };
  });
  await coldContext.close();
  result.banner_hidden = await page.isHidden('#banner');
  // The credential is in no storage the page can read, nor in the URL.
  result.storage = await page.evaluate(() => ({
    local: localStorage.length,
    session: sessionStorage.length,
    cookie: document.cookie,
    url: location.href,
  }));
  const row = `#queues tr[data-queue="${queueId}"]`;
  await page.waitForSelector(row, { timeout: STEP_MS });
  const waitingIn = () =>
    page.$eval(row, (tr) => Number(tr.querySelector('.waiting').textContent));
  result.waiting_before = await waitingIn();
  // A display screen is shown no supervisor action at all.
  result.actions_hidden =
    (await page.isHidden('#actions')) && (await page.$$('button.act')).length === 0;
  say({ step: 'ready' });

  if ((await nextLine()) !== 'placed') throw new Error('expected "placed"');
  await page.waitForFunction(
    (sel) => document.querySelector(sel)?.querySelector('.waiting')?.textContent === '1',
    row,
    { timeout: STEP_MS, polling: 'raf' },
  );
  say({ step: 'seen' });
  result.total_waiting_seen = await page.textContent('#total-waiting');
  // The wait ticks on the page between events.
  const first = await page.textContent('#total-longest');
  await page.waitForFunction(
    (was) => document.getElementById('total-longest').textContent !== was,
    first,
    { timeout: 3000 },
  );
  result.longest_ticked = true;
  result.longest_level = await page.$eval('#total-longest-tile', (t) => t.dataset.level);
  await page.screenshot({ path: screenshot, fullPage: false });
  // Thresholds from the URL on a second screen of the same session, a few seconds past the
  // wait so far (amber 3 s on, red 5 s on), while the caller waits: the longest-wait tile
  // starts green, goes amber, then red.
  const [m, ss] = (await page.textContent('#total-longest')).split(':').map(Number);
  const waited = m * 60 + ss;
  result.thresholds = { amber: waited + 3, red: waited + 5 };
  const tight = await context.newPage();
  await tight.goto(`${base}/wallboard?amber=${waited + 3}&red=${waited + 5}`, { timeout: STEP_MS });
  const levelOf = () => tight.$eval('#total-longest-tile', (t) => t.dataset.level);
  const levelIs = (want) =>
    tight.waitForFunction(
      (w) => document.getElementById('total-longest-tile')?.dataset.level === w,
      want,
      { timeout: 8000 },
    );
  await tight.waitForFunction(() => Number(document.body.dataset.snapshots) > 0, null, {
    timeout: STEP_MS,
  });
  await tight.waitForFunction(() => document.getElementById('total-waiting').textContent === '1');
  const seen = [await levelOf()];
  await levelIs('amber');
  seen.push(await levelOf());
  await levelIs('red');
  seen.push(await levelOf());
  result.levels = seen;
  result.queue_cell_class = await tight.$eval(`${row} .longest`, (td) => td.className);
  await tight.close();
  say({ step: 'shot' });

  if ((await nextLine()) !== 'answered') throw new Error('expected "answered"');
  await page.waitForFunction(
    (sel) => document.querySelector(sel)?.querySelector('.waiting')?.textContent === '0',
    row,
    { timeout: STEP_MS },
  );
  result.total_waiting_after = await page.textContent('#total-waiting');
  // It left because it was answered: the agent who took it shows on call in the roster.
  await page.waitForSelector('#roster tbody tr[data-state="on-call"]', { timeout: STEP_MS });
  result.roster_states = await page.$$eval('#roster tbody tr', (trs) => trs.map((tr) => tr.dataset.state));
  say({ step: 'left' });

  // The display session cannot act: a supervisor's action from the page's own context, with
  // the session's CSRF token, is refused.
  result.action = await page.evaluate(async (q) => {
    const r = await fetch(`/v1/queues/${q}/pause`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-CSRF-Token': SY.session.csrf_token },
    });
    const body = await r.json().catch(() => null);
    return { status: r.status, code: body?.error?.code ?? null };
  }, queueId);

  // The feed goes down (the test closes the server's live hub): the banner says so.
  if ((await nextLine()) !== 'feed-down') throw new Error('expected "feed-down"');
  const down = Date.now();
  await page.waitForSelector('#banner', { state: 'visible', timeout: STEP_MS });
  result.banner_after_ms = Date.now() - down;
  result.feed_state = await page.evaluate(() => document.body.dataset.feed);
  result.csp_violations = await page.evaluate(() => window.__csp || []);
  result.console_errors = consoleErrors;

  if (result.page_status !== 200) failures.push(`GET /wallboard answered ${result.page_status}`);
  if (!result.csp || !result.csp.includes("script-src 'self'")) failures.push(`CSP: ${result.csp}`);
  if (!result.banner_hidden) failures.push('the stale banner shows while the feed is live');
  if (result.storage.local || result.storage.session) failures.push('something was put in web storage');
  if (result.storage.cookie) failures.push(`the page can read a cookie: ${result.storage.cookie}`);
  if (result.storage.url.includes(token)) failures.push('the token is in the URL');
  if (result.action.status !== 403 || result.action.code !== 'read_only') {
    failures.push(`the display session acted: ${JSON.stringify(result.action)}`);
  }
  if (!result.actions_hidden) failures.push('a display screen shows supervisor actions');
  if (result.feed_state !== 'stale') failures.push(`the feed is down, the page says ${result.feed_state}`);
  if (result.csp_violations.length) failures.push(`CSP violations: ${result.csp_violations}`);
  if (consoleErrors.length) failures.push(`console errors: ${consoleErrors}`);
  result.ok = failures.length === 0;
} catch (e) {
  failures.push(String(e && e.stack ? e.stack : e));
  // What the page shows and what the feed says now, to tell a page bug from a feed one.
  try {
    const page = browser?.contexts()[0]?.pages()[0];
    result.debug = await page?.evaluate(async () => {
      const r = await fetch('/v1/live');
      const reader = r.body.getReader();
      let text = '';
      while (!text.includes('server_time_ms')) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
      reader.cancel();
      return { longest: document.getElementById('total-longest').textContent, now: Date.now(), live: text };
    });
  } catch (e2) {
    result.debug = String(e2);
  }
} finally {
  clearTimeout(deadline);
  try {
    await browser?.close();
  } catch {
    // The result below matters more than a browser that will not close.
  }
}
say(result);
process.exit(result.ok ? 0 : 1);
