// The agent page: sign in with an agent key (or a sign-in link an admin made: the code is in
// the URL's fragment, never sent in a request line), then follow /v1/live (a snapshot, then
// deltas; EventSource resumes with Last-Event-ID): the agent's own state and time in state,
// a desktop preview reserved to it (Accept / Skip), the call it is on (number, queue, wait,
// campaign contact's fields, recording pause / resume), and after a campaign call the
// disposition form. Every write carries the session's CSRF token (session.js). No polling.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  // Bounds on what the page keeps from the feed (a tenant may have many calls).
  const MAX_CALLS = 50000;
  const MAX_FIELDS = 100;

  const model = {
    me: null, // the agent id the session acts for (as the API shows it)
    agent: null, // my entry in the live state
    calls: new Map(), // call id -> entry
    queueNames: new Map(),
    offsetMs: 0, // server clock - this clock
    dispose: null, // { id, number, dispositions } of the last campaign call I was on
    busy: false,
  };
  let source = null;
  let ticker = null;

  const now = () => Date.now() + model.offsetMs;

  function showError(message) {
    $("error").textContent = message || "";
  }

  function duration(ms) {
    if (!(ms >= 0)) return "–";
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  function fillFields(table, fields) {
    const body = table.querySelector("tbody");
    body.replaceChildren();
    const entries = fields && typeof fields === "object" ? Object.entries(fields).slice(0, MAX_FIELDS) : [];
    for (const [k, v] of entries) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.textContent = k;
      const td = document.createElement("td");
      td.textContent = typeof v === "string" ? v : JSON.stringify(v);
      tr.append(th, td);
      body.append(tr);
    }
    table.hidden = entries.length === 0;
  }

  // ----- the live model -----

  function applySnapshot(state) {
    if (typeof state.server_time_ms === "number") model.offsetMs = state.server_time_ms - Date.now();
    model.calls.clear();
    for (const c of (state.calls || []).slice(0, MAX_CALLS)) model.calls.set(c.id, c);
    model.agent = (state.agents || []).find((a) => a.id === model.me) || null;
  }

  function applyCall(d) {
    if (!d || typeof d.id !== "string") return;
    if (d.state === "ended") {
      model.calls.delete(d.id);
      return;
    }
    const entry = model.calls.get(d.id);
    if (entry) Object.assign(entry, d);
    else if (model.calls.size < MAX_CALLS) model.calls.set(d.id, { ...d });
  }

  function applyAgent(d) {
    if (!d || d.id !== model.me) return;
    model.agent = Object.assign(model.agent || {}, d);
  }

  // The call of mine the page shows: a reservation while I am reserved, a call while I am
  // on it (an entry can outlive an offer that failed: the agent's state says which is live).
  function myCall() {
    const state = model.agent && model.agent.state;
    for (const c of model.calls.values()) {
      if (c.agent_id !== model.me) continue;
      if (state === "reserved" && (c.state === "reserved" || c.state === "ringing")) return c;
      if (state === "on-call" && c.state === "talking") return c;
    }
    return null;
  }

  // ----- rendering -----

  function render() {
    const a = model.agent;
    const state = (a && a.state) || "logged-out";
    $("state").textContent = state.replace(/-/g, " ");
    $("state").dataset.state = state;
    $("state").className = `state-${state}`;
    $("state-reason").textContent = a && a.reason ? `(${a.reason})` : "";
    $("state-time").textContent = a && a.since_ms ? duration(now() - a.since_ms) : "–";
    document.body.dataset.agentState = state;

    const c = myCall();
    const reserved = c && c.state === "reserved";
    $("preview-panel").hidden = !reserved;
    if (reserved) {
      $("preview-campaign").textContent = c.campaign_name || `campaign ${c.campaign_id}`;
      $("preview-number").textContent = c.contact_number || "";
      fillFields($("preview-fields"), c.contact_fields);
      $("preview-left").textContent = c.expires_ms ? duration(c.expires_ms - now()) : "–";
      $("preview-panel").dataset.call = c.id;
    }
    const onCall = c && !reserved;
    $("call-panel").hidden = !onCall;
    if (onCall) {
      $("call-panel").dataset.call = c.id;
      $("call-number").textContent = c.contact_number || c.caller_number || "";
      $("call-state").textContent = c.state;
      $("call-queue").textContent =
        c.queue_id != null ? model.queueNames.get(c.queue_id) || `queue ${c.queue_id}` : "–";
      $("call-wait").textContent =
        typeof c.wait_s === "number" ? duration(c.wait_s * 1000) : "–";
      $("call-campaign").textContent = c.campaign_id != null ? c.campaign_name || `campaign ${c.campaign_id}` : "–";
      fillFields($("call-fields"), c.contact_fields);
      const rec = c.recording;
      const controllable = rec === "recording" || rec === "paused";
      $("recording-actions").hidden = !controllable;
      if (controllable) {
        $("recording-state").textContent = rec;
        $("recording-toggle").textContent = rec === "paused" ? "Resume recording" : "Pause recording";
        $("recording-toggle").dataset.action = rec === "paused" ? "resume" : "pause";
      }
      if (c.campaign_id != null && c.state === "talking" && (!model.dispose || model.dispose.id !== c.id)) {
        openDisposition(c);
      }
    }
    renderDisposition();
  }

  function openDisposition(c) {
    model.dispose = {
      id: c.id,
      number: c.contact_number || "",
      dispositions: Array.isArray(c.dispositions) ? c.dispositions.slice(0, 50) : [],
      done: false,
    };
    const list = $("dispose-code-list");
    list.replaceChildren();
    for (const code of model.dispose.dispositions) {
      const o = document.createElement("option");
      o.value = code;
      o.textContent = code;
      list.append(o);
    }
    const listed = model.dispose.dispositions.length > 0;
    list.hidden = !listed;
    $("dispose-code").hidden = listed;
    $("dispose-code").value = "";
    $("dispose-callback").value = "";
    $("dispose-result").textContent = "";
  }

  function renderDisposition() {
    const d = model.dispose;
    $("dispose-panel").hidden = !d;
    if (!d) return;
    $("dispose-panel").dataset.call = d.id;
    $("dispose-number").textContent = d.number;
  }

  // ----- actions -----

  async function act(method, path, body, what) {
    if (model.busy) return null;
    model.busy = true;
    showError("");
    try {
      const r = await SY.api(method, path, body);
      if (r.status >= 200 && r.status < 300) return r.body || {};
      const message = r.body && r.body.error ? r.body.error.message : `the server answered ${r.status}`;
      const field = r.body && r.body.error && r.body.error.field ? ` (${r.body.error.field})` : "";
      showError(`${what}: ${message}${field}`);
      return null;
    } catch (e) {
      showError(`${what}: could not reach the server (${e.message})`);
      return null;
    } finally {
      model.busy = false;
    }
  }

  function setState(body, what) {
    return act("PUT", `/v1/agents/${model.me}/state`, body, what);
  }

  $("go-available").addEventListener("click", () => setState({ state: "available" }, "Available"));
  $("go-break").addEventListener("click", () =>
    setState({ state: "on-break", reason: $("break-reason").value }, "Break"));
  $("go-logout").addEventListener("click", () => setState({ state: "logged-out" }, "Log out"));

  $("preview-accept").addEventListener("click", () => {
    const id = $("preview-panel").dataset.call;
    if (id) act("POST", `/v1/calls/${id}/preview/accept`, undefined, "Accept");
  });
  $("preview-skip").addEventListener("click", () => {
    const id = $("preview-panel").dataset.call;
    if (id) act("POST", `/v1/calls/${id}/preview/skip`, undefined, "Skip");
  });

  $("recording-toggle").addEventListener("click", async () => {
    const id = $("call-panel").dataset.call;
    const action = $("recording-toggle").dataset.action;
    if (id && action) await act("POST", `/v1/calls/${id}/recording`, { action }, "Recording");
  });

  $("dispose-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const d = model.dispose;
    if (!d) return;
    const code = (d.dispositions.length ? $("dispose-code-list").value : $("dispose-code").value).trim();
    if (!code) {
      showError("Disposition: choose or type an outcome (code)");
      return;
    }
    const body = { code };
    const at = $("dispose-callback").value;
    if (at) {
      const when = new Date(at);
      if (Number.isNaN(when.getTime())) {
        showError("Disposition: the call-back time is not a date (retry_at)");
        return;
      }
      body.retry_at = when.toISOString();
    }
    const r = await act("POST", `/v1/calls/${d.id}/disposition`, body, "Disposition");
    if (r) {
      d.done = true;
      $("dispose-result").textContent =
        `Saved: ${r.code}` + (r.retry_at_ms ? `, call back ${new Date(r.retry_at_ms).toLocaleString()}` : "");
      document.body.dataset.disposed = d.id;
    }
  });
  $("dispose-dismiss").addEventListener("click", () => {
    model.dispose = null;
    renderDisposition();
  });

  // ----- the feed -----

  function stale(on) {
    $("banner").hidden = !on;
    document.body.dataset.feed = on ? "stale" : "live";
  }

  function follow() {
    if (source) source.close();
    source = new EventSource("/v1/live", { withCredentials: true });
    source.addEventListener("snapshot", (e) => {
      const msg = JSON.parse(e.data);
      applySnapshot(msg.state || {});
      stale(false);
      render();
    });
    for (const kind of [
      "call.queued", "call.offered", "call.answered", "call.completed", "call.abandoned",
      "call.recording", "call.preview", "call.preview_ended", "call.contact",
    ]) {
      source.addEventListener(kind, (e) => {
        applyCall(JSON.parse(e.data));
        stale(false);
        render();
      });
    }
    for (const kind of ["agent.state_changed", "agent.line"]) {
      source.addEventListener(kind, (e) => {
        applyAgent(JSON.parse(e.data));
        stale(false);
        render();
      });
    }
    source.addEventListener("open", () => stale(false));
    source.addEventListener("error", async () => {
      stale(true);
      if (source.readyState === EventSource.CLOSED) {
        const s = await SY.whoAmI();
        if (s === null) {
          signedOut();
        } else {
          setTimeout(follow, 2000 + Math.random() * 3000);
        }
      }
    });
  }

  async function loadQueueNames() {
    const r = await SY.api("GET", "/v1/queues").catch(() => null);
    if (!r || r.status !== 200) return;
    model.queueNames.clear();
    for (const q of (r.body.queues || []).slice(0, 10000)) model.queueNames.set(q.id, q.name);
  }

  // A sign-in link (`/agent#code=...`): the code is exchanged once for a session and taken
  // out of the address bar and history at once, whatever the answer.
  async function signInByLink() {
    const m = /^#code=([A-Za-z0-9_-]{1,200})$/.exec(window.location.hash);
    if (!m) return null;
    history.replaceState(null, "", window.location.pathname + window.location.search);
    try {
      const r = await fetch("/web/session", {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ code: m[1] }),
      });
      if (r.status !== 201) {
        const body = await r.json().catch(() => null);
        const message = body && body.error ? body.error.message : `the server answered ${r.status}`;
        $("signin-error").textContent = `Sign-in link: ${message}`;
        return null;
      }
    } catch (e) {
      $("signin-error").textContent = `Sign-in link: could not reach the server (${e.message})`;
      return null;
    }
    // The cookie is set: the session (and its CSRF token) as session.js keeps it.
    return (await SY.whoAmI()) || null;
  }

  function signedOut() {
    if (source) source.close();
    source = null;
    if (ticker) clearInterval(ticker);
    ticker = null;
    $("panel").hidden = true;
    start();
  }

  async function start() {
    const fromLink = await signInByLink();
    const s = fromLink || (await SY.sessionOrSignIn($("signin")));
    $("signin").hidden = true;
    $("who").textContent = SY.describe(s);
    model.me = s.agent_id;
    model.agent = null;
    model.dispose = null;
    $("panel").hidden = false;
    if (model.me == null) {
      showError("This page is for agent keys bound to an agent: this session acts for no agent.");
      return;
    }
    showError("");
    loadQueueNames();
    follow();
    ticker = setInterval(render, 1000);
    render();
  }

  // A link opened in a tab already on this page changes only the fragment (no load): load
  // the page again so that it signs in with the link.
  window.addEventListener("hashchange", () => {
    if (window.location.hash.startsWith("#code=")) window.location.reload();
  });

  $("signout").addEventListener("click", async () => {
    await SY.signOut();
    signedOut();
  });

  start();
})();
