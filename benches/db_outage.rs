//! A database outage under traffic: PostgreSQL behind a proxy (`api/tests/outage_support`)
//! that is cut for 60 s while the fake switch sends 10 callers a second through the engine,
//! and the API is asked, all along, what supervisors and desktops ask:
//!
//! - in-memory routes, 20 requests/s: `GET /v1/queues/{id}/stats` and `/calls` in turn, plus
//!   an agent state change (`PUT /v1/agents/{id}/state`) every second and a queue pause or
//!   resume every 2 s;
//! - database routes, 4 requests/s: `GET /v1/queues` and `GET /v1/calls?limit=1` in turn.
//!
//! Each request is started on its own task at its due time (open loop), so a slow answer does
//! not delay the next. Records lost = calls the engine ended (`call_ended` on its live events,
//! up to the end of the run) that are not in the database once the journal is replayed.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --profile dev --bench db_outage`
//! (`DB_OUTAGE_SECS=20` for a shorter cut). Needs PostgreSQL; it works in a database of its
//! own, dropped at the end.

#[path = "../api/tests/outage_support/mod.rs"]
mod outage_support;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outage_support::{CutProxy, PgDatabase};
use serde_json::{Value, json};
use switchyard_api::app;
use switchyard_api::http::HttpConfig;
use switchyard_api::model::Role;
use switchyard_api::runtime::{Runtime, SwitchConfig};
use switchyard_api::store::{AuditEntry, Store};
use switchyard_engine::{EngineConfig, LiveEvent};

const TRAFFIC: &str = r#"
seed = 11
[agents]
extensions = ["1000-1039"]
answer_delay = { uniform = [0.3, 1.0] }
answer = 1.0
no_answer = 0.0
[inbound]
calls_per_minute = 600
destination = "5000"
patience = { exp = 120.0 }
talk_time = { exp = 2.0 }
dtmf = []
"#;

fn audit<'a>() -> AuditEntry<'a> {
    AuditEntry {
        tenant: None,
        key_id: None,
        action: "bench",
        object_kind: "bench",
        object_id: String::new(),
        detail: Value::Null,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Phase {
    Before,
    Outage,
    After,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    /// Reads served from memory (stats, waiting calls).
    MemoryRead,
    /// Changes kept in memory and saved (or journaled): agent state, queue pause/resume.
    MemoryWrite,
    Database,
}

/// Per phase and kind: latency, status, what was asked and when (seconds into the run).
type Samples = Arc<Mutex<HashMap<(Phase, Kind), Vec<(Duration, u16, String, f64)>>>>;

fn main() {
    let Ok(_) = std::env::var("DATABASE_URL") else {
        eprintln!("db_outage: set DATABASE_URL (PostgreSQL) to run this benchmark");
        return;
    };
    let outage = Duration::from_secs(
        std::env::var("DB_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(outage));
}

async fn run(outage: Duration) {
    let db = PgDatabase::create().await.expect("DATABASE_URL");
    let proxy = CutProxy::start(db.server_addr()).await;
    let store = Store::connect(&db.url_via(proxy.addr())).await.unwrap();
    store.migrate().await.unwrap();
    let journal_dir = std::env::temp_dir().join(format!(
        "switchyard-db-outage-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let store = store
        .with_journal(&journal_dir, switchyard_api::journal::DEFAULT_BOUND_BYTES)
        .unwrap();
    let t = store
        .create_tenant_granted(
            "bench",
            &switchyard_api::grants::DialGrants::lab(),
            &audit(),
        )
        .await
        .unwrap();
    let (_, key) = store
        .create_api_key(Some(t.id), Role::Admin, None, "bench", None, &audit())
        .await
        .unwrap();
    let q = store
        .create_queue(t.id, "inbound", json!({"numbers": ["5000"]}), &audit())
        .await
        .unwrap();
    let spare = store
        .create_queue(t.id, "spare", json!({}), &audit())
        .await
        .unwrap();
    for i in 0..40 {
        let a = store
            .create_agent(
                t.id,
                &format!("agent {i}"),
                json!({"contact": format!("user/{}", 1000 + i)}),
                &audit(),
            )
            .await
            .unwrap();
        store
            .set_member(t.id, q.id, a.id, 1, i + 1, 1, &audit())
            .await
            .unwrap();
        store
            .set_agent_presence(t.id, a.id, json!({"presence": "available"}))
            .await
            .unwrap();
    }
    // An agent in no queue: its state changes touch no call.
    let desk = store
        .create_agent(t.id, "desk", json!({"contact": "user/1099"}), &audit())
        .await
        .unwrap();

    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl_addr = esl.local_addr().unwrap();
    let outbound = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let switch = switchyard_esl::sim::spawn(
        esl,
        switchyard_esl::sim::SimConfig {
            inbound_target: Some(outbound.clone()),
            scenario: toml::from_str(TRAFFIC).unwrap(),
            ..switchyard_esl::sim::SimConfig::default()
        }
        .for_this_run(),
        11,
    );
    let runtime = Arc::new(
        Runtime::start(
            store.clone(),
            SwitchConfig {
                esl: esl_addr.to_string(),
                password: "ClueCon".into(),
                outbound_listen: outbound,
            },
            EngineConfig::default(),
            1,
        )
        .await
        .unwrap(),
    );
    // Calls the engine ended, by their arrival leg (the call record's id).
    let ended: Arc<Mutex<HashSet<uuid::Uuid>>> = Arc::default();
    let counting = Arc::new(std::sync::atomic::AtomicBool::new(true));
    {
        let mut events = runtime.engine.subscribe();
        let ended = ended.clone();
        let counting = counting.clone();
        tokio::spawn(async move {
            let mut legs = HashMap::new();
            loop {
                match events.recv().await {
                    Ok(LiveEvent::CallQueued { call, leg, .. }) => {
                        legs.insert(call, uuid::Uuid::from_u128(leg.0));
                    }
                    Ok(LiveEvent::CallEnded { call, .. }) => {
                        if let Some(leg) = legs.remove(&call)
                            && counting.load(std::sync::atomic::Ordering::Relaxed)
                        {
                            ended.lock().unwrap().insert(leg);
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        eprintln!("db_outage: the event counter missed {n} events");
                    }
                    Err(_) => return,
                }
            }
        });
    }
    let (router, _kit) = app::build(
        runtime.clone(),
        HttpConfig {
            rate_per_sec: 0,
            ..HttpConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    let phase = Arc::new(Mutex::new(Phase::Before));
    let samples: Samples = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = tokio::spawn(generate(
        http.clone(),
        base.clone(),
        key.clone(),
        (q.id, spare.id, desk.id),
        phase.clone(),
        samples.clone(),
        stop.clone(),
    ));

    let warm = Duration::from_secs(10);
    eprintln!("db_outage: {warm:?} with the database up");
    tokio::time::sleep(warm).await;
    *phase.lock().unwrap() = Phase::Outage;
    eprintln!("db_outage: cutting the database for {outage:?}");
    proxy.cut().await;
    let mut peak_entries = 0;
    let mut peak_bytes = 0;
    let cut_at = Instant::now();
    while cut_at.elapsed() < outage {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(st) = store.spool_status() {
            peak_entries = peak_entries.max(st.pending_entries);
            peak_bytes = peak_bytes.max(st.pending_bytes);
        }
    }
    let journal_at_restore = store.spool_status().unwrap();
    proxy.restore().await;
    *phase.lock().unwrap() = Phase::After;
    let restored = Instant::now();
    let drained = store.journal_drained(Duration::from_secs(300)).await;
    let drain_time = restored.elapsed();
    eprintln!("db_outage: restored; journal drained: {drained} in {drain_time:?}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    counting.store(false, std::sync::atomic::Ordering::Relaxed);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = load.await;
    // The last calls' records leave the driver in its next batches.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = store.journal_drained(Duration::from_secs(60)).await;

    let ended: Vec<uuid::Uuid> = ended.lock().unwrap().iter().copied().collect();
    let mut missing = 0;
    for id in &ended {
        if store.get_call(t.id, *id).await.unwrap().is_none() {
            missing += 1;
        }
    }
    let stats = runtime.engine.stats();
    let spool = store.spool_status().unwrap();

    println!();
    println!(
        "database outage: {outage:?} cut, 10 calls/s offered (fake switch), PostgreSQL via proxy"
    );
    println!(
        "calls ended: {}   records lost (ended, not stored): {missing}   driver records_dropped: {}   journal refused/given up: {}/{}",
        ended.len(),
        stats.records_dropped,
        spool.refused_at_bound,
        spool.replay_dropped
    );
    println!(
        "journal: peak {peak_entries} entries / {peak_bytes} bytes ({:.0} bytes/s of outage); at restore {} entries; replayed {} in {:.2} s",
        peak_bytes as f64 / outage.as_secs_f64(),
        journal_at_restore.pending_entries,
        spool.replayed,
        drain_time.as_secs_f64()
    );
    let samples = samples.lock().unwrap().clone();
    println!("| phase | routes | requests | statuses | p50 | p99 | max |");
    println!("|---|---|---:|---|---:|---:|---:|");
    let mut slowest = Vec::new();
    let mut keys: Vec<_> = samples.keys().copied().collect();
    keys.sort();
    for k in keys {
        let mut v = samples[&k].clone();
        v.sort_by_key(|(d, ..)| *d);
        let mut statuses: HashMap<u16, usize> = HashMap::new();
        for (_, s, ..) in &v {
            *statuses.entry(*s).or_default() += 1;
        }
        let mut st: Vec<_> = statuses.into_iter().collect();
        st.sort();
        let st: Vec<String> = st.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        let pct = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)].0;
        println!(
            "| {:?} | {:?} | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
            k.0,
            k.1,
            v.len(),
            st.join(", "),
            ms(pct(0.5)),
            ms(pct(0.99)),
            ms(v[v.len() - 1].0)
        );
        slowest.push((k, v.iter().rev().take(3).cloned().collect::<Vec<_>>()));
    }
    // The issue's measure: every in-memory route together, reads and writes.
    for ph in [Phase::Before, Phase::Outage, Phase::After] {
        let mut all: Vec<Duration> = [Kind::MemoryRead, Kind::MemoryWrite]
            .iter()
            .flat_map(|k| samples.get(&(ph, *k)).into_iter().flatten())
            .map(|(d, ..)| *d)
            .collect();
        if all.is_empty() {
            continue;
        }
        all.sort();
        let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
        println!(
            "| {ph:?} | in-memory, all | {} | | {:.1} ms | **{:.1} ms** | {:.1} ms |",
            all.len(),
            ms(pct(0.5)),
            ms(pct(0.99)),
            ms(all[all.len() - 1])
        );
    }
    println!(
        "slowest of each row (latency, status, request, seconds into the run; the cut at 10 s):"
    );
    for (k, v) in slowest {
        let shown: Vec<String> = v
            .iter()
            .map(|(d, st, what, at)| format!("{:.1} ms {st} {what} @{at:.1}s", ms(*d)))
            .collect();
        println!("  {:?}/{:?}: {}", k.0, k.1, shown.join("; "));
    }
    switch.shutdown().await;
    if let Ok(rt) = Arc::try_unwrap(runtime) {
        rt.shutdown().await;
    }
    store.close().await;
    db.drop_now().await;
    let _ = std::fs::remove_dir_all(&journal_dir);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The request mix, open loop: every request on its own task at its due time.
async fn generate(
    http: reqwest::Client,
    base: String,
    key: String,
    (queue, spare, desk): (i64, i64, i64),
    phase: Arc<Mutex<Phase>>,
    samples: Samples,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let began = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n: u64 = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tick.tick().await;
        n += 1;
        let mut requests = Vec::new();
        // Memory: 20/s of stats and waiting calls.
        let path = if n.is_multiple_of(2) {
            format!("/v1/queues/{queue}/stats")
        } else {
            format!("/v1/queues/{queue}/calls")
        };
        requests.push((Kind::MemoryRead, reqwest::Method::GET, path, None));
        if n.is_multiple_of(20) {
            let state = if n.is_multiple_of(40) {
                json!({"state": "available"})
            } else {
                json!({"state": "on-break", "reason": "bench"})
            };
            requests.push((
                Kind::MemoryWrite,
                reqwest::Method::PUT,
                format!("/v1/agents/{desk}/state"),
                Some(state),
            ));
        }
        if n % 40 == 10 {
            let verb = if n % 80 == 10 { "pause" } else { "resume" };
            requests.push((
                Kind::MemoryWrite,
                reqwest::Method::POST,
                format!("/v1/queues/{spare}/{verb}"),
                None,
            ));
        }
        // Database: 4/s.
        if n.is_multiple_of(5) {
            let path = if n.is_multiple_of(10) {
                "/v1/queues".to_owned()
            } else {
                "/v1/calls?limit=1".to_owned()
            };
            requests.push((Kind::Database, reqwest::Method::GET, path, None));
        }
        for (kind, method, path, body) in requests {
            let http = http.clone();
            let url = format!("{base}{path}");
            let what = format!("{method} {path}");
            let key = key.clone();
            let phase = phase.clone();
            let samples = samples.clone();
            tokio::spawn(async move {
                let at = *phase.lock().unwrap();
                let start = Instant::now();
                let offset = began.elapsed().as_secs_f64();
                let mut req = http.request(method, url).bearer_auth(key);
                if let Some(b) = body {
                    req = req.json(&b);
                }
                let status = match req.send().await {
                    Ok(resp) => {
                        let s = resp.status().as_u16();
                        let _ = resp.bytes().await;
                        s
                    }
                    Err(_) => 0,
                };
                let took = start.elapsed();
                samples
                    .lock()
                    .unwrap()
                    .entry((at, kind))
                    .or_default()
                    .push((took, status, what, offset));
            });
        }
    }
}
