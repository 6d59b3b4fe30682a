//! The CSV export (`POST /v1/analytics/export`, kind `calls`) over real HTTP on loopback, in one
//! process with the engine, the fake switch and the client (2-core machine: the client that
//! reads and counts the CSV shares the CPU with the server).
//!
//! 1,000,000 calls of one tenant (arriving over 30 days) are stored first (SQLite file in a
//! temporary directory; PostgreSQL too when DATABASE_URL is set, in a schema of its own); then
//! the whole range is exported once and the client counts rows as the chunks arrive, holding
//! none of them. Figures: rows/s and MB/s from the request to the last byte, time to the first
//! byte, and the process's resident memory: before the export and its peak during it
//! (`VmHWM`, reset just before the export through `/proc/self/clear_refs`, so the fill's own
//! peak is not counted).
//!
//! `cargo bench --bench export` (`-- 200000` for another number of calls).

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchyard_api::app;
use switchyard_api::http::HttpConfig;
use switchyard_api::model::{Role, TenantId};
use switchyard_api::runtime::{Runtime, SwitchConfig};
use switchyard_api::store::{AuditEntry, CallRow, Store};
use switchyard_engine::EngineConfig;

/// 2026-10-01T00:00:00Z.
const START_MS: i64 = 1_790_812_800_000;
const DAYS: i64 = 30;

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

fn main() {
    let n: i64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = std::env::temp_dir().join(format!(
            "switchyard-export-bench-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        run("SQLite (file)", store.clone(), n).await;
        store.close().await;
        std::fs::remove_dir_all(&dir).ok();

        if let Ok(pg) = std::env::var("DATABASE_URL") {
            let admin = sqlx::PgPool::connect(&pg).await.unwrap();
            let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&admin)
                .await
                .unwrap();
            let options = sqlx::postgres::PgConnectOptions::from_str(&pg)
                .unwrap()
                .options([("search_path", schema.as_str())]);
            let store = Store::from_pg_options(options).await.unwrap();
            store.migrate().await.unwrap();
            run("PostgreSQL", store.clone(), n).await;
            store.close().await;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&admin)
                .await
                .unwrap();
        }
    });
}

async fn run(backend: &str, store: Store, n: i64) {
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
    let filled = Instant::now();
    fill(&store, t.id, n).await;
    let fill_time = filled.elapsed();

    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl_addr = esl.local_addr().unwrap();
    // The switch lives as long as the process (the bench ends by exiting).
    std::mem::forget(switchyard_esl::sim::spawn(
        esl,
        switchyard_esl::sim::SimConfig::default(),
        1,
    ));
    let runtime = Arc::new(
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
    let (router, _kit) = app::build(
        runtime.clone(),
        HttpConfig {
            rate_per_sec: 0,
            ..HttpConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });

    let rss_before = proc_status_kb("VmRSS:");
    reset_peak_rss();
    let started = Instant::now();
    let mut resp = reqwest::Client::new()
        .post(format!("http://{addr}/v1/analytics/export"))
        .bearer_auth(&key)
        .json(&json!({
            "kind": "calls",
            "from": START_MS,
            "to": START_MS + DAYS * 86_400_000,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut first_byte: Option<Duration> = None;
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = resp.chunk().await.expect("the export completes") {
        first_byte.get_or_insert_with(|| started.elapsed());
        bytes += chunk.len() as u64;
        lines += memchr::memchr_iter(b'\n', &chunk).count() as u64;
    }
    let elapsed = started.elapsed();
    let peak = proc_status_kb("VmHWM:");
    let rows = lines.saturating_sub(1);
    assert_eq!(rows as i64, n, "every call exported");
    server.abort();
    if let Ok(rt) = Arc::try_unwrap(runtime) {
        rt.shutdown().await;
    }

    println!("\n## CSV export of calls, {backend}\n");
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| calls stored (fill time) | {n} ({:.1} s) |",
        fill_time.as_secs_f64()
    );
    println!(
        "| export: rows/s | {:.0} ({rows} rows in {:.2} s) |",
        rows as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "| export: MB/s | {:.1} ({:.1} MB) |",
        bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        bytes as f64 / 1e6
    );
    println!(
        "| time to first byte | {:.1} ms |",
        first_byte.unwrap_or_default().as_secs_f64() * 1e3
    );
    println!(
        "| process RSS before the export / peak during it (VmHWM) | {} / {} MiB |",
        rss_before / 1024,
        peak / 1024
    );
}

/// `n` calls of `tenant` spread evenly over [`DAYS`] days, in batches of the size the
/// runtime's writer uses at most.
async fn fill(store: &Store, tenant: TenantId, n: i64) {
    let step = (DAYS * 86_400_000) / n.max(1);
    let mut batch = Vec::with_capacity(5_000);
    for i in 0..n {
        let answered = i % 5 != 0;
        batch.push(CallRow {
            id: uuid::Uuid::new_v4(),
            tenant,
            queue_id: 1 + i % 4,
            queues: vec![1 + i % 4],
            agent_id: answered.then_some(1 + i % 50),
            caller_number: format!("+1555{:07}", i % 10_000_000),
            outcome: if answered { "answered" } else { "abandoned" }.into(),
            arrived_at_ms: START_MS + i * step,
            wait_ms: 1_000 + (i % 60) * 1_000,
            talk_ms: if answered {
                60_000 + (i % 300) * 1_000
            } else {
                0
            },
            offers: 1,
            synthetic: false,
            callback_leg: None,
        });
        if batch.len() == 5_000 {
            store.insert_calls(&batch).await.unwrap();
            batch.clear();
        }
    }
    store.insert_calls(&batch).await.unwrap();
}

/// Resets `VmHWM` to the current RSS (Linux 4.0+); without it the peak includes the fill.
fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("could not reset the peak RSS ({e}): the peak includes the fill");
    }
}

fn proc_status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(key)).and_then(|l| {
                l.trim_start_matches(key)
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}
