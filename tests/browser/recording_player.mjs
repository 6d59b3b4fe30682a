// A recording played in headless Chromium the way a supervisor's browser plays it: an <audio>
// element pointed at the API's signed URL, played, then seeked to the middle of a recording
// long enough that the browser must ask for the bytes there (a Range request from mid-file). api/tests/recording_browser.rs runs this script.
//
//   node recording_player.mjs <signed-url> <screenshot.png> <expected-seconds>
//
// It serves nothing itself. The player page is answered by playwright (page.route) at a path
// on the signed URL's own origin, as if the API had served it: a page on about:blank has an
// opaque origin, and Chromium's local network access checks refuse its requests to a
// loopback address (the API under test) outright, which no deployed console would meet. The
// route is removed before the audio's src is set, so every request the browser makes for the
// recording goes to the API untouched. It prints one JSON line (the result)
// and exits 0 only when every check passed; 1 on a failed check, 2 on bad arguments, 3 when
// the whole run overran its deadline.
//
// The browser is the Debian chromium binary ($SWITCHYARD_CHROMIUM or /usr/bin/chromium):
// playwright-core never downloads one, and this network could not serve it anyway.

import { armDeadline, launch } from './common.mjs';

const [url, screenshot, expectedArg] = process.argv.slice(2);
const expected = Number(expectedArg);
if (!url || !screenshot || !Number.isFinite(expected) || expected <= 0) {
  console.error('usage: node recording_player.mjs <signed-url> <screenshot.png> <expected-seconds>');
  process.exit(2);
}

// Bounds: every wait below has its own timeout, and the whole run has this deadline on top so
// that nothing (a browser that never starts, a media element that never fires) can hang a test.
const DEADLINE_MS = 90_000;
const STEP_MS = 20_000;
// A WAV's duration is its data size over its byte rate, so the browser should agree with the
// file's header to well under this.
const DURATION_TOLERANCE_S = 0.25;
const SEEK_TOLERANCE_S = 0.5;

let browser;
const deadline = armDeadline(DEADLINE_MS);

// The label shows what the element reports, so the screenshot is evidence on its own.
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>switchyard recording</title>
<style>body{font:16px sans-serif;margin:24px} #label{margin-top:12px;font-family:monospace}</style>
</head><body>
<h1>Recording</h1>
<audio id="player" controls preload="metadata"></audio>
<div id="label">loading</div>
<script>
  const a = document.getElementById('player');
  const label = document.getElementById('label');
  const show = () => {
    label.textContent = 'duration ' + a.duration.toFixed(3) + ' s, currentTime ' +
      a.currentTime.toFixed(3) + ' s' + (a.paused ? ' (paused)' : ' (playing)') +
      (a.error ? ', error ' + a.error.code : '');
  };
  for (const e of ['loadedmetadata', 'timeupdate', 'seeked', 'pause', 'play', 'error']) {
    a.addEventListener(e, show);
  }
</script>
</body></html>`;

// What the browser asked for and was answered, for the URL under test only.
const exchanges = [];
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
};

// Kept on a throw too, so a failed run still shows what the browser was answered.
let result = { exchanges };
try {
  browser = await launch(STEP_MS, ['--autoplay-policy=no-user-gesture-required', '--mute-audio']);
  const page = await browser.newPage();
  page.setDefaultTimeout(STEP_MS);
  const pending = [];
  page.on('response', (response) => {
    const request = response.request();
    if (request.url() !== url) return;
    // allHeaders() includes what the network stack added (a media element's Range is added
    // there, not by the page), which request.headers() may leave out.
    pending.push(
      request.allHeaders().then((headers) => {
        exchanges.push({
          range: headers['range'] ?? null,
          status: response.status(),
          contentRange: response.headers()['content-range'] ?? null,
        });
      }),
    );
  });
  page.on('requestfailed', (request) => {
    if (request.url() === url) {
      exchanges.push({ range: null, status: null, failure: request.failure()?.errorText ?? 'failed' });
    }
  });

  // A path the API does not have, so a request that slipped past the route would show as 404.
  const pageUrl = new URL('/__switchyard_browser_check/recording_player.html', url).href;
  await page.route(pageUrl, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: PAGE }),
  );
  await page.goto(pageUrl);
  await page.unrouteAll();
  await page.evaluate((src) => {
    document.getElementById('player').src = src;
  }, url);

  // Metadata, then play until the clock has visibly moved.
  await page.waitForFunction(() => {
    const a = document.getElementById('player');
    return a.error !== null || (a.readyState >= 1 && Number.isFinite(a.duration));
  });
  const loadError = await page.evaluate(() => {
    const e = document.getElementById('player').error;
    return e ? `${e.code} ${e.message}` : null;
  });
  if (loadError !== null) {
    throw new Error(`the audio did not load (media error ${loadError})`);
  }
  const played = await page.evaluate(async () => {
    const a = document.getElementById('player');
    try {
      await a.play();
      return null;
    } catch (e) {
      return String(e);
    }
  });
  check(played === null, `play() was refused: ${played}`);
  await page.waitForFunction(() => {
    const a = document.getElementById('player');
    return a.error !== null || a.currentTime > 0.3;
  });
  const beforeSeek = await page.evaluate(() => document.getElementById('player').currentTime);

  // The seek: listen for `seeked` before setting currentTime so the event cannot be missed,
  // and read the position in the handler, before playback moves it on.
  const seek = await page.evaluate(
    (stepMs) =>
      new Promise((resolve) => {
        const a = document.getElementById('player');
        const target = a.duration / 2;
        const timer = setTimeout(() => resolve({ target, landed: null }), stepMs);
        a.addEventListener(
          'seeked',
          () => {
            clearTimeout(timer);
            resolve({ target, landed: a.currentTime });
          },
          { once: true },
        );
        a.currentTime = target;
      }),
    STEP_MS,
  );
  // Pause so the label and the screenshot show where the seek landed.
  const state = await page.evaluate(() => {
    const a = document.getElementById('player');
    a.pause();
    a.dispatchEvent(new Event('timeupdate'));
    return {
      duration: a.duration,
      currentTime: a.currentTime,
      error: a.error ? { code: a.error.code, message: a.error.message } : null,
      label: document.getElementById('label').textContent,
    };
  });
  await page.screenshot({ path: screenshot, fullPage: true });
  await Promise.all(pending);

  check(state.error === null, `media error: ${JSON.stringify(state.error)}`);
  check(
    state.duration > 0 && Math.abs(state.duration - expected) <= DURATION_TOLERANCE_S,
    `duration ${state.duration} s is not ${expected} s (within ${DURATION_TOLERANCE_S} s)`,
  );
  check(beforeSeek > 0.3, `playback did not advance (currentTime ${beforeSeek})`);
  check(seek.landed !== null, `no seeked event within ${STEP_MS} ms`);
  check(
    seek.landed !== null && Math.abs(seek.landed - seek.target) <= SEEK_TOLERANCE_S,
    `seek to ${seek.target} s landed at ${seek.landed} s`,
  );
  // Chromium reads a few megabytes ahead of the play position and waits for a forward seek
  // closer than about 2 MB; the recording is long enough (test side) that the middle is far
  // past both, so the seek must be a new request starting mid-file, answered 206 from there.
  const rangeStart = (range) => {
    const m = /^bytes=(\d+)-/.exec(range ?? '');
    return m ? Number(m[1]) : null;
  };
  check(
    exchanges.some((x) => rangeStart(x.range) > 0 && x.status === 206),
    'no request for the URL asked for a range past the start and was answered 206',
  );
  // A seek makes Chromium abandon the stream it was reading (net::ERR_ABORTED, its own
  // doing); any other failure, or any other status, is the server's.
  check(
    exchanges.every(
      (x) => x.status === 200 || x.status === 206 || x.failure === 'net::ERR_ABORTED',
    ),
    'a request for the URL failed or was refused',
  );
  result = {
    duration: state.duration,
    played_to: beforeSeek,
    seek_target: seek.target,
    seek_landed: seek.landed,
    label: state.label,
    exchanges,
    screenshot,
    browser: browser.version(),
  };
} catch (e) {
  failures.push(`error: ${e?.message ?? e}`);
} finally {
  await browser?.close().catch(() => {});
}
clearTimeout(deadline);
console.log(JSON.stringify({ ok: failures.length === 0, failures, ...result }));
process.exit(failures.length === 0 ? 0 : 1);
