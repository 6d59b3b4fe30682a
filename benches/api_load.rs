//! The API under load, over real HTTP on loopback, in one process with the engine and the
//! fake switch (2-core machine: the load generator shares the CPU with the server).
//!
//! 1. Live queue statistics: `GET /v1/queues/{id}/stats` at a fixed 2,000 requests/s for 10 s
//!    (open loop: each request's latency counts from the moment it was due, so a stall is not
//!    hidden by the generator slowing down), p50 / p99 / max.
//! 2. 1,000 concurrent `/v1/live` subscribers of one tenant; synthetic events published on the
//!    live hub at 50/s for 10 s, each stamped at publication; delivery lag to every subscriber,
//!    p50 / p99 / max. This is the hub-to-SSE fan-out only: the events do not come from the
//!    engine, so the engine's loop and its translation into live events are not in the figure.
//!
//! `cargo bench --bench api_load` (or `-- stats`, `-- live`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_api::app;
use switchyard_api::http::{HttpConfig, LiveMessage};
use switchyard_api::model::{Role, TenantId};
use switchyard_api::runtime::{Runtime, SwitchConfig};
use switchyard_api::store::{AuditEntry, Store};
use switchyard_engine::EngineConfig;

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

struct Setup {
    base: String,
    key: String,
    tenant: TenantId,
    rt: Arc<Runtime>,
    queue: i64,
}

async fn setup() -> Setup {
    let store = Store::sqlite_memory().await.unwrap();
    store.migrate().await.unwrap();
    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl_addr = esl.local_addr().unwrap();
    // The switch lives as long as the process (the bench ends by exiting).
    std::mem::forget(switchyard_esl::sim::spawn(
        esl,
        switchyard_esl::sim::SimConfig::default(),
        1,
    ));
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
    let rt = Arc::new(
        Runtime::start(
            store.clone(),
            SwitchConfig {
                esl: esl_addr.to_string(),
                password: "ClueCon".into(),
                outbound_listen: "127.0.0.1:0".into(),
            },
            EngineConfig::default(),
            1,
        )
        .await
        .unwrap(),
    );
    // Rate limiting off: the bench is one key.
    let (router, _kit) = app::build(
        rt.clone(),
        HttpConfig {
            rate_per_sec: 0,
            ..HttpConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let q: Value = http
        .post(format!("{base}/v1/queues"))
        .bearer_auth(&key)
        .json(&json!({"name": "sales"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let queue = q["id"].as_i64().unwrap();
    for i in 0..50 {
        let a: Value = http
            .post(format!("{base}/v1/agents"))
            .bearer_auth(&key)
            .json(&json!({"name": format!("a{i}"), "config": {"contact": format!("user/{}", 1000 + i)}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = a["id"].as_i64().unwrap();
        http.post(format!("{base}/v1/queues/{queue}/members"))
            .bearer_auth(&key)
            .json(&json!({"agent_id": id}))
            .send()
            .await
            .unwrap();
        http.put(format!("{base}/v1/agents/{id}/state"))
            .bearer_auth(&key)
            .json(&json!({"state": "available"}))
            .send()
            .await
            .unwrap();
    }
    Setup {
        base,
        key,
        tenant: t.id,
        rt,
        queue,
    }
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)].as_secs_f64() * 1e3
}

async fn stats_load(s: &Setup, rate: u32, secs: u64) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let url = format!("{}/v1/queues/{}/stats", s.base, s.queue);
    let total = rate as u64 * secs;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let lat = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (http, url, key, lat, errors) = (
            http.clone(),
            url.clone(),
            s.key.clone(),
            lat.clone(),
            errors.clone(),
        );
        tasks.spawn(async move {
            match http.get(&url).bearer_auth(&key).send().await {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    lat.lock().unwrap().push(due.elapsed());
                }
                _ => {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
        // Reap finished requests so the set stays small.
        while let Some(Some(_)) = tasks.try_join_next().map(Some) {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed().as_secs_f64();
    let mut v = std::mem::take(&mut *lat.lock().unwrap());
    let n = v.len();
    println!(
        "stats GET at {rate}/s for {secs} s: {n} ok, {} errors, achieved {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        errors.load(std::sync::atomic::Ordering::Relaxed),
        n as f64 / elapsed,
        pct(&mut v, 0.5),
        pct(&mut v, 0.99),
        pct(&mut v, 1.0)
    );
}

async fn live_fanout(s: &Setup, subscribers: usize, rate: u32, secs: u64) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let origin = Instant::now();
    let lags = Arc::new(Mutex::new(Vec::new()));
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    let mut subs = tokio::task::JoinSet::new();
    for _ in 0..subscribers {
        let (http, url, key, lags, ready) = (
            http.clone(),
            format!("{}/v1/live", s.base),
            s.key.clone(),
            lags.clone(),
            ready.clone(),
        );
        subs.spawn(async move {
            let mut resp = http
                .get(&url)
                .bearer_auth(&key)
                .send()
                .await
                .expect("subscribe");
            assert_eq!(resp.status().as_u16(), 200);
            let mut buf = String::new();
            let mut got_snapshot = false;
            let mut mine = Vec::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                let at = origin.elapsed();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    if block.contains("event: snapshot") && !got_snapshot {
                        got_snapshot = true;
                        ready.add_permits(1);
                    }
                    if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:"))
                        && block.contains("event: bench.tick")
                    {
                        let v: Value = serde_json::from_str(data.trim()).unwrap_or(Value::Null);
                        if v["end"] == true {
                            lags.lock().unwrap().extend(mine);
                            return;
                        }
                        if let Some(ns) = v["t_ns"].as_u64() {
                            mine.push(at.saturating_sub(Duration::from_nanos(ns)));
                        }
                    }
                }
            }
            lags.lock().unwrap().extend(mine);
        });
    }
    let _ = ready
        .acquire_many(subscribers as u32)
        .await
        .expect("every subscriber got its snapshot");
    println!(
        "  {subscribers} subscribers connected ({} on the hub)",
        s.rt.hub.subscriber_count()
    );
    let total = rate as u64 * secs;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = Instant::now();
    for i in 0..total {
        tokio::time::sleep_until((start + interval * i as u32).into()).await;
        let t_ns = origin.elapsed().as_nanos() as u64;
        s.rt.hub.publish(LiveMessage {
            tenant: s.tenant,
            kind: "bench.tick",
            data: json!({"i": i, "t_ns": t_ns}),
        });
    }
    s.rt.hub.publish(LiveMessage {
        tenant: s.tenant,
        kind: "bench.tick",
        data: json!({"end": true}),
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::timeout_at(deadline, subs.join_next())
        .await
        .ok()
        .flatten()
        .is_some()
    {}
    let mut v = std::mem::take(&mut *lags.lock().unwrap());
    let expected = subscribers as u64 * total;
    println!(
        "live feed, hub-to-SSE fan-out (events published on the hub, not by the engine): {subscribers} subscribers x {total} events at {rate}/s: {} deliveries of {expected}; lag from hub publish to SSE read p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        v.len(),
        pct(&mut v, 0.5),
        pct(&mut v, 0.99),
        pct(&mut v, 1.0)
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| name.contains(a.as_str()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = setup().await;
        if want("stats") {
            stats_load(&s, 2000, 10).await;
        }
        if want("live") {
            live_fanout(&s, 1000, 50, 10).await;
        }
    });
    // The server and switch tasks are still running: leave without waiting for them.
    std::process::exit(0);
}
