// The agent page in headless Chromium as an agent uses it: /agent served by switchyard,
// signed in with the agent's key typed into its form, following /v1/live. The agent goes
// available; a desktop-preview campaign (started by api/tests/agent_browser.rs) reserves a
// contact to it; the page shows the contact's fields; the agent accepts; the fake switch
// answers the agent's phone and then the customer; the call shows; the agent pauses and
// resumes its recording; the customer hangs up; the agent saves a disposition with a
// call-back time from the page. Then it signs out and signs in again with a sign-in link
// (`/agent#code=...`), whose code must leave the address bar.
//
//   node agent.mjs <base-url> <agent-key> <sign-in-link-url | -> <screenshot.png>
//
// It prints one JSON line, the result, and exits 0 only when every check passed; 1 on a
// failed check, 2 on bad arguments, 3 when the whole run overran its deadline. The browser is
// the Debian chromium binary ($SWITCHYARD_CHROMIUM or /usr/bin/chromium).

import { armDeadline, launch } from './common.mjs';

const [base, key, link, screenshot] = process.argv.slice(2);
if (!base || !key || !link || !screenshot) {
  console.error('usage: node agent.mjs <base-url> <agent-key> <sign-in-link-url | -> <screenshot.png>');
  process.exit(2);
}

const DEADLINE_MS = 100_000;
const STEP_MS = 30_000;

let browser;
const deadline = armDeadline(DEADLINE_MS);

const failures = [];
const result = { ok: false, failures };
const consoleErrors = [];

try {
  browser = await launch(STEP_MS);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    // The 401 of the first who-am-I (no session yet) is logged as a failed load: expected.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      consoleErrors.push(m.text());
    }
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  // Every write the page makes, with whether it carried the CSRF token.
  const writes = [];
  page.on('request', (r) => {
    if (r.method() !== 'GET' && r.url().includes('/v1/')) {
      writes.push({ method: r.method(), path: new URL(r.url()).pathname, csrf: !!r.headers()['x-csrf-token'] });
    }
  });

  const resp = await page.goto(`${base}/agent`, { timeout: STEP_MS });
  result.page_status = resp.status();
  result.csp = resp.headers()['content-security-policy'] || null;
  await page.evaluate(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__csp = (window.__csp || []).concat(e.violatedDirective + ' ' + e.blockedURI);
    });
  });
  await page.waitForSelector('#signin-form', { state: 'visible', timeout: STEP_MS });
  await page.fill('#signin-key', key);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#panel', { state: 'visible', timeout: STEP_MS });
  await page.waitForFunction(() => document.body.dataset.feed === 'live', null, { timeout: STEP_MS });
  result.who = await page.textContent('#who');

  // Available from the page: the engine reserves the campaign's contact to this agent.
  await page.click('#go-available');
  await page.waitForFunction(() => document.body.dataset.agentState !== 'logged-out' &&
    document.body.dataset.agentState !== 'on-break', null, { timeout: STEP_MS });
  await page.waitForSelector('#preview-panel', { state: 'visible', timeout: STEP_MS });
  // The contact's fields follow the reservation in a delta of their own (looked up aside).
  await page.waitForFunction(() => document.querySelectorAll('#preview-fields tr').length > 0,
    null, { timeout: STEP_MS });
  result.preview = {
    campaign: await page.textContent('#preview-campaign'),
    number: await page.textContent('#preview-number'),
    fields: await page.$$eval('#preview-fields tr', (trs) =>
      Object.fromEntries(trs.map((tr) => [tr.querySelector('th').textContent, tr.querySelector('td').textContent]))),
    left: await page.textContent('#preview-left'),
  };
  result.state_while_reserved = await page.evaluate(() => document.body.dataset.agentState);
  // The screenshot: the reservation with the contact's fields, Accept and Skip.
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.click('#preview-accept');

  // The fake switch answers the agent's phone, then the customer: the call shows.
  await page.waitForFunction(() => document.getElementById('call-state')?.textContent === 'talking' &&
    !document.getElementById('call-panel').hidden, null, { timeout: STEP_MS });
  result.call = {
    number: await page.textContent('#call-number'),
    queue: await page.textContent('#call-queue'),
    campaign: await page.textContent('#call-campaign'),
    fields: await page.$$eval('#call-fields tr', (trs) => trs.length),
  };
  result.preview_hidden_on_call = await page.isHidden('#preview-panel');
  // The call is recorded: paused and resumed from the page.
  const recordingIs = (want) =>
    page.waitForFunction((w) => !document.getElementById('recording-actions').hidden &&
      document.getElementById('recording-state').textContent === w, want, { timeout: 5000 });
  await recordingIs('recording');
  result.recording_states = ['recording'];
  await page.click('#recording-toggle');
  await recordingIs('paused');
  result.recording_states.push('paused');
  await page.click('#recording-toggle');
  await recordingIs('recording');
  result.recording_states.push('recording');
  await page.waitForSelector('#dispose-panel', { state: 'visible', timeout: STEP_MS });
  result.disposition_codes = await page.$$eval('#dispose-code-list option', (os) => os.map((o) => o.value));

  // The customer hangs up: the call leaves the page, the disposition form stays.
  await page.waitForSelector('#call-panel', { state: 'hidden', timeout: STEP_MS });
  await page.selectOption('#dispose-code-list', 'call-back');
  await page.fill('#dispose-callback', '2030-01-02T15:00');
  result.callback_iso = await page.evaluate(() => new Date('2030-01-02T15:00').toISOString());
  await page.click('#dispose-form button[type=submit]');
  await page.waitForFunction(() => !!document.body.dataset.disposed, null, { timeout: STEP_MS });
  result.disposed_call = await page.evaluate(() => document.body.dataset.disposed);
  result.dispose_result = await page.textContent('#dispose-result');
  result.page_error = await page.textContent('#error');
  result.writes = writes;
  result.storage = await page.evaluate(() => ({
    local: localStorage.length,
    session: sessionStorage.length,
    cookie: document.cookie,
    url: location.href,
  }));
  result.csp_violations = await page.evaluate(() => window.__csp || []);

  // Sign out, then in again with a sign-in link.
  await page.click('#signout');
  await page.waitForSelector('#signin-form', { state: 'visible', timeout: STEP_MS });
  if (link !== '-') {
    await page.goto(link, { timeout: STEP_MS });
    await page.waitForSelector('#panel', { state: 'visible', timeout: STEP_MS });
    result.link = {
      who: await page.textContent('#who'),
      url_after: await page.evaluate(() => location.href),
      history_has_code: await page.evaluate(() => location.hash.includes('code')),
    };
    // The same link again, in another browser (no session there): refused, the form says why.
    const other = await browser.newContext();
    const again = await other.newPage();
    await again.goto(link, { timeout: STEP_MS });
    await again.waitForFunction(() => document.getElementById('signin-error')?.textContent.length > 0 ||
      !document.getElementById('panel').hidden, null, { timeout: STEP_MS });
    result.link_again = {
      panel_visible: await again.isVisible('#panel'),
      error: await again.textContent('#signin-error'),
    };
    await other.close();
  }
  result.console_errors = consoleErrors;

  if (result.page_status !== 200) failures.push(`GET /agent answered ${result.page_status}`);
  if (!result.csp || !result.csp.includes("script-src 'self'")) failures.push(`CSP: ${result.csp}`);
  if (writes.some((w) => !w.csrf)) failures.push(`a write without X-CSRF-Token: ${JSON.stringify(writes)}`);
  if (result.storage.local || result.storage.session) failures.push('something was put in web storage');
  if (result.storage.cookie) failures.push(`the page can read a cookie: ${result.storage.cookie}`);
  if (result.storage.url.includes(key)) failures.push('the key is in the URL');
  if (result.page_error) failures.push(`the page shows an error: ${result.page_error}`);
  if (result.csp_violations.length) failures.push(`CSP violations: ${result.csp_violations}`);
  if (consoleErrors.length) failures.push(`console errors: ${consoleErrors}`);
  result.ok = failures.length === 0;
} catch (e) {
  failures.push(String(e && e.stack ? e.stack : e));
  try {
    const page = browser?.contexts()[0]?.pages()[0];
    result.debug = await page?.evaluate(() => ({
      error: document.getElementById('error')?.textContent,
      state: document.body.dataset.agentState,
      feed: document.body.dataset.feed,
      html: document.getElementById('panel')?.innerText.slice(0, 2000),
    }));
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
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
