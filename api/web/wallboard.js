// The wallboard: live figures per queue and in total from /v1/live (a snapshot, then deltas;
// EventSource reconnects by itself and resumes with Last-Event-ID), ticked every second on
// the client from the server's timestamps. The day's figures (service level, handled,
// abandoned, ASA, AHT, callbacks, campaigns) are computed by the server and arrive as
// `figures` events. No polling. Supervisors and admins (never display screens or agents) get
// actions: pause/resume a queue, set an agent's state, assign a waiting caller, listen /
// whisper / barge to their own phone.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const seconds = (name) => {
    const raw = params.get(name);
    const v = Number(raw);
    return raw !== null && Number.isFinite(v) && v >= 0 ? v : null;
  };
  // The tenant's stored thresholds (GET /v1/wallboard/settings), these defaults until read.
  let settings = {
    service_level_pct: { amber_below: 90, red_below: 80 },
    longest_wait_s: { amber_from: 60, red_from: 180 },
    waiting: { amber_from: 5, red_from: 10 },
    abandon_rate_pct: { amber_from: 5, red_from: 10 },
    asa_s: { amber_from: 30, red_from: 60 },
    aht_s: { amber_from: 360, red_from: 600 },
    callbacks: { amber_from: 5, red_from: 20 },
    campaign_abandon_pct: { amber_from: 2.5, red_from: 3 },
  };
  // One screen may override some in its URL: ?amber=&red= (longest wait, seconds),
  // ?sl_amber=&sl_red= (service level, percent).
  function thresholds() {
    const t = structuredClone(settings);
    const amber = seconds("amber");
    const red = seconds("red");
    if (amber !== null) t.longest_wait_s.amber_from = amber;
    if (red !== null) t.longest_wait_s.red_from = red;
    t.longest_wait_s.red_from = Math.max(t.longest_wait_s.red_from, t.longest_wait_s.amber_from);
    const slAmber = seconds("sl_amber");
    const slRed = seconds("sl_red");
    if (slAmber !== null) t.service_level_pct.amber_below = slAmber;
    if (slRed !== null) t.service_level_pct.red_below = slRed;
    return t;
  }
  // Worse when higher: amber from `amber_from`, red from `red_from`.
  function rising(v, th) {
    if (v === null || v === undefined) return "none";
    if (v >= th.red_from) return "red";
    if (v >= th.amber_from) return "amber";
    return "ok";
  }
  // Worse when lower (service level).
  function falling(v, th) {
    if (v === null || v === undefined) return "none";
    if (v < th.red_below) return "red";
    if (v < th.amber_below) return "amber";
    return "ok";
  }
  // Agent states as the feed names them, in the order the tiles and the roster use.
  const STATES = ["available", "reserved", "on-call", "wrap-up", "on-break", "logged-out"];
  const STATE_LABEL = {
    available: "Available",
    reserved: "Ringing",
    "on-call": "On call",
    "wrap-up": "Wrap-up",
    "on-break": "Break",
    "logged-out": "Offline",
  };
  // Bounds: a tenant with more queues or agents than this shows the first ones only.
  const MAX_QUEUES = 200;
  const MAX_AGENTS = 2000;

  const model = {
    queues: new Map(), // id -> { id, name, members: Set(agent ids) }
    agentNames: new Map(), // id -> name
    agents: new Map(), // id -> { state, reason, since_ms }
    calls: new Map(), // id -> { queue_id, state, waiting_since_ms, agent_id }
    paused: new Set(),
    figures: null, // the server's figures of the day (`figures` events)
    offsetMs: 0, // server clock - this clock
  };
  let supervisor = false;
  let source = null;
  let sortBy = "state";
  let renderQueued = false;

  const now = () => Date.now() + model.offsetMs;

  function clock(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  function level(waitMs) {
    return rising(waitMs / 1000, thresholds().longest_wait_s);
  }

  const pct = (x, digits) => (typeof x === "number" ? `${(x * 100).toFixed(digits)}%` : "–");
  const secs = (x) => (typeof x === "number" ? clock(x * 1000) : "–");

  // The feed's agent state, folded into the tile it counts in.
  function bucket(state) {
    if (state === "reserved") return "on-call";
    return STATES.includes(state) ? state : "logged-out";
  }

  function applySnapshot(state) {
    if (typeof state.server_time_ms === "number") {
      model.offsetMs = state.server_time_ms - Date.now();
    }
    model.agents.clear();
    for (const a of state.agents || []) {
      model.agents.set(a.id, { state: a.state, reason: a.reason, since_ms: a.since_ms });
    }
    model.calls.clear();
    for (const c of state.calls || []) {
      model.calls.set(c.id, { ...c });
    }
    model.paused = new Set(state.paused_queues || []);
    model.figures = state.figures || null;
  }

  function applyCall(data) {
    if (data.state === "ended") {
      model.calls.delete(data.id);
      return;
    }
    const c = model.calls.get(data.id) || {};
    // A delta that does not say when the wait began keeps what was known (a move).
    model.calls.set(data.id, { ...c, ...data });
  }

  function applyAgent(data) {
    const a = model.agents.get(data.id) || {};
    model.agents.set(data.id, { ...a, ...data });
  }

  // Every agent: those the feed has told of, and the tenant's other agents, which the feed
  // has not seen log in since the server started (offline, for how long unknown).
  function allAgents() {
    const all = new Map(model.agents);
    for (const id of model.agentNames.keys()) {
      if (!all.has(id)) all.set(id, { state: "logged-out" });
    }
    return all;
  }

  function queueFigures(filter) {
    const t = now();
    const byQueue = new Map();
    for (const q of model.queues.values()) {
      byQueue.set(q.id, { waiting: 0, longest: 0, states: {} });
    }
    const total = { waiting: 0, longest: 0, states: {}, reasons: {} };
    for (const c of model.calls.values()) {
      // A caller whose offer is ringing an agent still waits: it leaves when answered.
      if (c.state !== "waiting" && c.state !== "ringing") continue;
      const wait = typeof c.waiting_since_ms === "number" ? t - c.waiting_since_ms : 0;
      const q = byQueue.get(c.queue_id);
      if (q) {
        q.waiting += 1;
        q.longest = Math.max(q.longest, wait);
      }
      if (!filter || c.queue_id === filter) {
        total.waiting += 1;
        total.longest = Math.max(total.longest, wait);
      }
    }
    const members = filter ? model.queues.get(filter)?.members : null;
    for (const [id, a] of allAgents()) {
      const b = bucket(a.state);
      if (!members || members.has(id)) {
        total.states[b] = (total.states[b] || 0) + 1;
        if (b === "on-break") {
          const r = a.reason || "no reason";
          total.reasons[r] = (total.reasons[r] || 0) + 1;
        }
      }
      for (const q of model.queues.values()) {
        if (q.members.has(id)) {
          const f = byQueue.get(q.id);
          f.states[b] = (f.states[b] || 0) + 1;
        }
      }
    }
    return { byQueue, total };
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function button(label, onClick, cls) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.className = cls || "act";
    b.addEventListener("click", onClick);
    return b;
  }

  function tile(id, text, lvl) {
    $(id).textContent = text;
    const t = $(`${id}-tile`);
    if (t) t.dataset.level = lvl;
  }

  // The figures of the day of one queue (by id) or of all, as the server sent them.
  function dayFigures(filter) {
    const f = model.figures;
    if (!f) return null;
    if (!filter) return f.total || null;
    return (f.queues || []).find((q) => q.id === filter) || null;
  }

  function renderDay(filter, th) {
    const d = dayFigures(filter) || {};
    const sl = typeof d.service_level === "number" ? d.service_level * 100 : null;
    tile("total-sl", pct(d.service_level, 0), falling(sl, th.service_level_pct));
    $("total-sl-threshold").textContent =
      typeof d.sl_threshold_s === "number" ? `(${d.sl_threshold_s} s)` : "";
    tile("total-handled", String(d.handled ?? 0), "none");
    tile("total-abandoned", String(d.abandoned ?? 0), "none");
    const ar = typeof d.abandon_rate === "number" ? d.abandon_rate * 100 : null;
    tile("total-abandon-rate", pct(d.abandon_rate, 1), rising(ar, th.abandon_rate_pct));
    tile("total-asa", secs(d.asa_s), rising(d.asa_s ?? null, th.asa_s));
    tile("total-aht", secs(d.aht_s), rising(d.aht_s ?? null, th.aht_s));
    tile("total-callbacks", String(d.callbacks_scheduled ?? 0), rising(d.callbacks_scheduled ?? 0, th.callbacks));
    // Campaign tiles: lines in flight, connects today, the day's abandon rate against the
    // campaign's target (the dialer's 3% ledger unless configured).
    const campaigns = (model.figures && model.figures.campaigns) || [];
    const box = $("campaigns");
    box.hidden = campaigns.length === 0 || filter !== null;
    box.replaceChildren(
      ...campaigns.slice(0, MAX_QUEUES).map((c) => {
        const div = document.createElement("div");
        div.className = "tile campaign";
        div.dataset.campaign = String(c.id);
        const rate = c.abandon_rate_day * 100;
        div.dataset.level = rising(rate, th.campaign_abandon_pct);
        const label = document.createElement("span");
        label.className = "label";
        label.textContent = `${c.name || `campaign ${c.id}`} · lines`;
        const value = document.createElement("span");
        value.className = "value";
        value.textContent = String(c.lines);
        const sub = document.createElement("span");
        sub.className = "sub campaign-figures";
        sub.textContent = `${c.connects_today} connects · abandon ${rate.toFixed(1)}% / ${(c.abandon_target * 100).toFixed(0)}%`;
        div.append(label, value, sub);
        return div;
      }),
    );
  }

  function render() {
    renderQueued = false;
    const filter = Number($("queue-filter").value) || null;
    const th = thresholds();
    const { byQueue, total } = queueFigures(filter);

    tile("total-waiting", String(total.waiting), rising(total.waiting, th.waiting));
    $("total-longest").textContent = clock(total.longest);
    $("total-longest-tile").dataset.level = total.waiting ? level(total.longest) : "ok";
    for (const s of ["available", "on-call", "wrap-up", "on-break", "logged-out"]) {
      $(`total-${s}`).textContent = String(total.states[s] || 0);
    }
    // Break by reason: "lunch 2 · training 1".
    $("total-break-reasons").textContent = Object.entries(total.reasons)
      .sort((x, y) => y[1] - x[1])
      .map(([r, n]) => `${r} ${n}`)
      .join(" · ");
    renderDay(filter, th);

    const rows = [];
    for (const q of model.queues.values()) {
      if (filter && q.id !== filter) continue;
      const f = byQueue.get(q.id);
      const d = dayFigures(q.id) || {};
      const sl = typeof d.service_level === "number" ? d.service_level * 100 : null;
      const paused = model.paused.has(q.id);
      const tr = document.createElement("tr");
      tr.dataset.queue = String(q.id);
      tr.dataset.paused = paused ? "1" : "0";
      const name = cell(q.name + (paused ? " (paused)" : ""));
      tr.append(
        name,
        cell(String(f.waiting), "num waiting"),
        cell(clock(f.longest), `num longest level-${f.waiting ? level(f.longest) : "ok"}`),
        cell(pct(d.service_level, 0), `num sl level-${falling(sl, th.service_level_pct)}`),
        cell(String(d.handled ?? 0), "num handled"),
        cell(String(d.abandoned ?? 0), "num abandoned"),
        cell(String(f.states["available"] || 0), "num"),
        cell(String(f.states["on-call"] || 0), "num"),
        cell(String(f.states["wrap-up"] || 0), "num"),
        cell(String(f.states["on-break"] || 0), "num"),
        cell(String(f.states["logged-out"] || 0), "num"),
      );
      if (supervisor) {
        const td = cell("", "actions-cell");
        td.append(
          paused
            ? button("Resume", () => act("Resume", "POST", `/v1/queues/${q.id}/resume`), "act resume")
            : button("Pause", () => act("Pause", "POST", `/v1/queues/${q.id}/pause`), "act pause"),
        );
        tr.append(td);
      }
      rows.push(tr);
    }
    $("queues").tBodies[0].replaceChildren(...rows);

    const t = now();
    const members = filter ? model.queues.get(filter)?.members : null;
    const roster = [];
    for (const [id, a] of allAgents()) {
      if (members && !members.has(id)) continue;
      roster.push({
        id,
        name: model.agentNames.get(id) || `agent ${id}`,
        state: a.state || "logged-out",
        reason: a.reason,
        inState: typeof a.since_ms === "number" ? t - a.since_ms : null,
      });
    }
    const order = (s) => {
      const i = STATES.indexOf(s);
      return i < 0 ? STATES.length : i;
    };
    roster.sort((x, y) => {
      if (sortBy === "name") return x.name.localeCompare(y.name);
      if (sortBy === "time") return (y.inState ?? -1) - (x.inState ?? -1);
      return order(x.state) - order(y.state) || (y.inState ?? -1) - (x.inState ?? -1);
    });
    $("roster").tBodies[0].replaceChildren(
      ...roster.map((r) => {
        const tr = document.createElement("tr");
        tr.dataset.agent = String(r.id);
        tr.dataset.state = r.state;
        const label = (STATE_LABEL[r.state] || r.state) + (r.reason ? ` (${r.reason})` : "");
        tr.append(
          cell(r.name),
          cell(label, `state state-${bucket(r.state)}`),
          cell(r.inState === null ? "–" : clock(r.inState), "num"),
        );
        if (supervisor) tr.append(agentActions(r));
        return tr;
      }),
    );
    if (supervisor) renderWaiting(filter, t);
    $("clock").textContent = new Date(t).toLocaleTimeString();
  }

  // ---- supervisor actions ----

  function agentActions(r) {
    const td = cell("", "actions-cell");
    const state = (s, body) => () => act(`${s} for ${r.name}`, "PUT", `/v1/agents/${r.id}/state`, body);
    if (r.state !== "available") {
      td.append(button("Available", state("Available", { state: "available" }), "act set-available"));
    }
    if (r.state !== "on-break") {
      td.append(
        button(
          "Break",
          () => {
            const reason = $("sup-reason").value.trim() || "supervisor";
            return state("Break", { state: "on-break", reason })();
          },
          "act set-break",
        ),
      );
    }
    if (r.state !== "logged-out") {
      td.append(button("Log out", state("Log out", { state: "logged-out" }), "act set-logged-out"));
    }
    if (r.state === "on-call") {
      for (const mode of ["listen", "whisper", "barge"]) {
        td.append(
          button(
            mode[0].toUpperCase() + mode.slice(1),
            () => {
              const dial = $("sup-phone").value.trim();
              if (!dial) {
                showError(`${mode}: type your phone (a dial string such as user/1001) first`);
                $("sup-phone").focus();
                return;
              }
              act(`${mode} ${r.name}`, "POST", `/v1/agents/${r.id}/monitor`, { mode, dial });
            },
            `act monitor-${mode}`,
          ),
        );
      }
    }
    return td;
  }

  // Callers waiting, each with the agents it could be given to (available ones first).
  function renderWaiting(filter, t) {
    const waiting = [...model.calls.values()]
      .filter((c) => c.state === "waiting" && (!filter || c.queue_id === filter))
      .sort((x, y) => (x.waiting_since_ms ?? 0) - (y.waiting_since_ms ?? 0))
      .slice(0, 50);
    const candidates = [...allAgents()]
      .filter(([, a]) => a.state && a.state !== "logged-out")
      .sort(([, x], [, y]) => (x.state === "available" ? 0 : 1) - (y.state === "available" ? 0 : 1));
    $("waiting-calls").tBodies[0].replaceChildren(
      ...waiting.map((c) => {
        const tr = document.createElement("tr");
        tr.dataset.call = c.id;
        const select = document.createElement("select");
        select.className = "assign-to";
        for (const [id, a] of candidates) {
          const name = model.agentNames.get(id) || `agent ${id}`;
          select.append(new Option(`${name} (${STATE_LABEL[a.state] || a.state})`, String(id)));
        }
        const chosen = assignChoice.get(c.id);
        if (chosen) select.value = chosen;
        select.addEventListener("change", () => assignChoice.set(c.id, select.value));
        const pick = cell("");
        pick.append(select);
        const go = cell("");
        go.append(
          button(
            "Assign",
            () => {
              const agent = Number(select.value);
              if (!agent) return showError("Assign: no agent to assign to");
              act("Assign", "POST", `/v1/calls/${c.id}/assign`, { agent_id: agent });
            },
            "act assign",
          ),
        );
        const q = model.queues.get(c.queue_id);
        const wait = typeof c.waiting_since_ms === "number" ? t - c.waiting_since_ms : 0;
        tr.append(cell(q ? q.name : String(c.queue_id)), cell(clock(wait), "num"), pick, go);
        return tr;
      }),
    );
  }
  // A picked agent survives the once-a-second re-render.
  const assignChoice = new Map();

  function showError(message) {
    $("action-status").textContent = "";
    $("action-error").textContent = message;
  }

  // One action, with the session's CSRF token (SY.api); what the server said is shown.
  async function act(what, method, path, body) {
    $("action-error").textContent = "";
    $("action-status").textContent = `${what}…`;
    let r;
    try {
      r = await SY.api(method, path, body);
    } catch (e) {
      return showError(`${what}: could not reach the server (${e.message})`);
    }
    if (r.status >= 200 && r.status < 300) {
      $("action-status").textContent = `${what}: done`;
      document.body.dataset.lastAction = `${method} ${path} ${r.status}`;
    } else {
      const m = r.body && r.body.error ? r.body.error.message : `the server answered ${r.status}`;
      showError(`${what}: ${m}`);
      document.body.dataset.lastAction = `${method} ${path} ${r.status}`;
    }
    schedule();
  }

  function schedule() {
    if (!renderQueued) {
      renderQueued = true;
      setTimeout(render, 16);
    }
  }

  // The banner, and `data-feed` on <body> (live or stale) for styles and tests.
  function stale(on) {
    $("banner").hidden = !on;
    document.body.classList.toggle("stale", on);
    document.body.dataset.feed = on ? "stale" : "live";
  }

  function follow() {
    if (source) source.close();
    source = new EventSource("/v1/live", { withCredentials: true });
    source.addEventListener("snapshot", (e) => {
      const msg = JSON.parse(e.data);
      applySnapshot(msg.state || {});
      // A snapshot comes after every (re)connection without resume: the queues and the
      // agents' names may have changed meanwhile.
      refresh();
      document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
      stale(false);
      schedule();
    });
    for (const kind of ["call.queued", "call.offered", "call.answered", "call.completed", "call.abandoned", "call.recording"]) {
      source.addEventListener(kind, (e) => {
        const data = JSON.parse(e.data);
        if (data.queue_id !== undefined && !model.queues.has(data.queue_id)) refresh();
        applyCall(data);
        stale(false);
        schedule();
      });
    }
    for (const kind of ["agent.state_changed", "agent.line"]) {
      source.addEventListener(kind, (e) => {
        applyAgent(JSON.parse(e.data));
        stale(false);
        schedule();
      });
    }
    source.addEventListener("queue.paused", (e) => {
      const d = JSON.parse(e.data);
      if (d.paused) model.paused.add(d.id);
      else model.paused.delete(d.id);
      schedule();
    });
    // The day's figures, whole each time (at most one a second, only when they changed).
    source.addEventListener("figures", (e) => {
      model.figures = JSON.parse(e.data);
      stale(false);
      schedule();
    });
    // An admin stored new thresholds: every screen of the tenant uses them at once.
    source.addEventListener("wallboard.settings", (e) => {
      settings = JSON.parse(e.data);
      schedule();
    });
    source.addEventListener("open", () => stale(false));
    source.addEventListener("error", async () => {
      stale(true);
      // CLOSED: the server refused the stream (the session ended, or the feed is full);
      // EventSource does not retry that by itself.
      if (source.readyState === EventSource.CLOSED) {
        const s = await SY.whoAmI();
        if (s === null) {
          source.close();
          source = null;
          $("board").hidden = true;
          start();
        } else {
          // Signed in (or the server cannot say yet): follow again, spread out so that many
          // screens do not come back at the same instant.
          setTimeout(follow, 2000 + Math.random() * 3000);
        }
      }
    });
  }

  async function load() {
    const stored = await SY.api("GET", "/v1/wallboard/settings");
    if (stored.status === 200 && stored.body) settings = stored.body;
    const queues = await SY.api("GET", "/v1/queues");
    const agents = await SY.api("GET", "/v1/agents");
    if (queues.status !== 200 || agents.status !== 200) {
      throw new Error(`could not read queues and agents (${queues.status}, ${agents.status})`);
    }
    model.agentNames.clear();
    for (const a of (agents.body.agents || []).slice(0, MAX_AGENTS)) {
      model.agentNames.set(a.id, a.name);
    }
    model.queues.clear();
    const list = (queues.body.queues || []).slice(0, MAX_QUEUES);
    const members = await Promise.all(
      list.map((q) => SY.api("GET", `/v1/queues/${q.id}/members`)),
    );
    const select = $("queue-filter");
    const chosen = select.value;
    select.replaceChildren(new Option("All queues", ""));
    list.forEach((q, i) => {
      const m = members[i].status === 200 ? members[i].body.members || [] : [];
      model.queues.set(q.id, { id: q.id, name: q.name, members: new Set(m.map((x) => x.agent_id)) });
      select.append(new Option(q.name, String(q.id)));
    });
    select.value = chosen || params.get("queue") || "";
  }

  // Reloads the queues and agents' names, at most once every 10 s (a burst of calls in a
  // queue created since the page loaded asks once).
  let lastRefresh = 0;
  function refresh() {
    const at = Date.now();
    if (at - lastRefresh < 10_000) return;
    lastRefresh = at;
    load().then(schedule, () => {
      lastRefresh = 0;
    });
  }

  async function start() {
    const s = await SY.sessionOrSignIn($("signin"));
    $("who").textContent = SY.describe(s);
    // Actions for people with a supervisor's or an admin's key; a display screen or an
    // agent sees none (the server refuses them anyway).
    supervisor = s.kind === "person" && (s.role === "admin" || s.role === "supervisor");
    document.body.dataset.supervisor = supervisor ? "1" : "0";
    $("actions").hidden = !supervisor;
    for (const el of document.querySelectorAll(".sup-only")) el.hidden = !supervisor;
    $("board").hidden = false;
    try {
      lastRefresh = Date.now();
      await load();
    } catch (e) {
      $("who").textContent = `${SY.describe(s)} · ${e.message}`;
    }
    follow();
    schedule();
  }

  $("queue-filter").addEventListener("change", schedule);
  for (const b of document.querySelectorAll("button.sort")) {
    b.addEventListener("click", () => {
      sortBy = b.dataset.sort;
      schedule();
    });
  }
  $("signout").addEventListener("click", async () => {
    if (source) source.close();
    source = null;
    await SY.signOut();
    $("board").hidden = true;
    start();
  });
  // Waits and times in state move every second between events.
  setInterval(schedule, 1000);
  start();
})();
