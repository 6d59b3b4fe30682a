// The wallboard: live figures per queue and in total from /v1/live (a snapshot, then deltas;
// EventSource reconnects by itself and resumes with Last-Event-ID), ticked every second on
// the client from the server's timestamps. No polling.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const seconds = (name, fallback) => {
    const v = Number(params.get(name));
    return Number.isFinite(v) && v > 0 ? v : fallback;
  };
  // Longest-wait thresholds in seconds (amber from, red from): ?amber=60&red=180.
  const AMBER_S = seconds("amber", 60);
  const RED_S = Math.max(seconds("red", 180), AMBER_S);
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
    offsetMs: 0, // server clock - this clock
  };
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
    const s = waitMs / 1000;
    if (s >= RED_S) return "red";
    if (s >= AMBER_S) return "amber";
    return "ok";
  }

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
    const total = { waiting: 0, longest: 0, states: {} };
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
      if (!members || members.has(id)) total.states[b] = (total.states[b] || 0) + 1;
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

  function render() {
    renderQueued = false;
    const filter = Number($("queue-filter").value) || null;
    const { byQueue, total } = queueFigures(filter);

    $("total-waiting").textContent = String(total.waiting);
    $("total-longest").textContent = clock(total.longest);
    $("total-longest-tile").dataset.level = total.waiting ? level(total.longest) : "ok";
    for (const s of ["available", "on-call", "wrap-up", "on-break", "logged-out"]) {
      $(`total-${s}`).textContent = String(total.states[s] || 0);
    }

    const rows = [];
    for (const q of model.queues.values()) {
      if (filter && q.id !== filter) continue;
      const f = byQueue.get(q.id);
      const tr = document.createElement("tr");
      tr.dataset.queue = String(q.id);
      const name = cell(q.name + (model.paused.has(q.id) ? " (paused)" : ""));
      tr.append(
        name,
        cell(String(f.waiting), "num waiting"),
        cell(clock(f.longest), `num longest level-${f.waiting ? level(f.longest) : "ok"}`),
        cell(String(f.states["available"] || 0), "num"),
        cell(String(f.states["on-call"] || 0), "num"),
        cell(String(f.states["wrap-up"] || 0), "num"),
        cell(String(f.states["on-break"] || 0), "num"),
        cell(String(f.states["logged-out"] || 0), "num"),
      );
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
        return tr;
      }),
    );
    $("clock").textContent = new Date(t).toLocaleTimeString();
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
