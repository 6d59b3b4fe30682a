//! Webhook fan-out (issue 21), on loopback on the 2-core machine (the generator, the store,
//! the worker and the receivers share both cores): events filed at a fixed rate, as the
//! runtime files them (agent states with their outbox messages, in batches every 10 ms, the
//! worker woken after each), each delivered to 10 endpoints of the tenant, signed, by the real
//! delivery worker (`webhooks::worker`). Latency is from the moment the event was filed
//! (its `at_ms`) to its arrival at the receiver: p50, p99, max, and deliveries per second.
//!
//! ```sh
//! cargo bench --bench webhooks                      # SQLite file, 1,000 events/s for 20 s
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench webhooks
//! cargo bench --bench webhooks -- 500 10            # events/s, seconds
//! ```

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::routing::post;
use serde_json::Value;
use switchyard_api::http::live::{LiveConfig, LiveHub};
use switchyard_api::ids::IdCodec;
use switchyard_api::store::outbox::AgentStateRow;
use switchyard_api::store::{AuditEntry, Store, StoredSecret};
use switchyard_api::webhooks::worker::{self, Clock, WorkerParts};

const ENDPOINTS: usize = 10;
const BATCH_EVERY: Duration = Duration::from_millis(10);

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

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rate: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let secs: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);

    let (url, label, _dir) = match std::env::var("DATABASE_URL") {
        Ok(u) if u.starts_with("postgres") => {
            // A database of its own, dropped first: the bench's tables only.
            let admin = Store::connect(&u).await.expect("PostgreSQL");
            drop(admin);
            let base = u.rsplit_once('/').map_or(u.as_str(), |(b, _)| b).to_owned();
            let name = "switchyard_bench_webhooks";
            let pool = sqlx::PgPool::connect(&format!("{base}/postgres"))
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .unwrap();
            (format!("{base}/{name}"), "PostgreSQL", None)
        }
        _ => {
            let dir =
                std::env::temp_dir().join(format!("sy-bench-webhooks-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
            (url, "SQLite file", Some(dir))
        }
    };
    let store = Store::connect(&url).await.expect("the store");
    store.migrate().await.expect("migrations");
    let tenant = store.create_tenant("bench", &audit()).await.unwrap().id;

    // Ten receivers behind one loopback server (/hook/0 .. /hook/9); each arrival's latency.
    let latencies: Arc<Mutex<Vec<i64>>> = Arc::default();
    let l = latencies.clone();
    let app = Router::new().route(
        "/hook/{n}",
        post(move |Path(_n): Path<u32>, body: axum::body::Bytes| {
            let l = l.clone();
            async move {
                let arrived = now_ms();
                if let Ok(v) = serde_json::from_slice::<Value>(&body)
                    && let Some(at) = v["data"]["at_ms"].as_i64()
                {
                    l.lock().unwrap().push(arrived - at);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    for n in 0..ENDPOINTS {
        store
            .create_webhook(
                tenant,
                &format!("http://{addr}/hook/{n}"),
                "bench",
                &[],
                StoredSecret {
                    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                    created_at_ms: 0,
                    expires_at_ms: None,
                },
                &audit(),
            )
            .await
            .unwrap();
    }
    let handle = worker::start(WorkerParts {
        store: store.clone(),
        ids: IdCodec::new(&store.id_secret().await.unwrap()),
        hub: LiveHub::new(LiveConfig::default()),
        allow_private: Arc::new(AtomicBool::new(true)),
        clock: Clock::default(),
    });

    // The generator: `rate` events a second in batches every 10 ms, open loop.
    let per_batch = (rate as f64 * BATCH_EVERY.as_secs_f64()).max(1.0) as usize;
    let started = Instant::now();
    let mut filed = 0u64;
    let mut tick = tokio::time::interval(BATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut agent = 0i64;
    while started.elapsed() < Duration::from_secs(secs) {
        tick.tick().await;
        let at = now_ms();
        let rows: Vec<AgentStateRow> = (0..per_batch)
            .map(|_| {
                agent += 1;
                AgentStateRow {
                    tenant,
                    agent_id: agent,
                    at_ms: at,
                    state: "available".into(),
                    reason: None,
                }
            })
            .collect();
        store.insert_agent_states(&rows).await.expect("filed");
        filed += rows.len() as u64;
        handle.wake();
    }
    let generated_for = started.elapsed();
    let expected = filed as usize * ENDPOINTS;
    let deadline = Instant::now() + Duration::from_secs(120);
    while latencies.lock().unwrap().len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained_for = started.elapsed();
    handle.stop();
    let mut l = latencies.lock().unwrap().clone();
    l.sort_unstable();
    println!(
        "webhook fan-out, {label}: {filed} events in {:.1} s ({:.0}/s) to {ENDPOINTS} endpoints; \
         {} of {expected} deliveries in {:.1} s ({:.0} deliveries/s); event to delivery \
         p50 {} ms, p99 {} ms, max {} ms",
        generated_for.as_secs_f64(),
        filed as f64 / generated_for.as_secs_f64(),
        l.len(),
        drained_for.as_secs_f64(),
        l.len() as f64 / drained_for.as_secs_f64(),
        percentile(&l, 0.50),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(0),
    );
    if let Some(dir) = _dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}
