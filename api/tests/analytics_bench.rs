//! Benchmark (ignored by default; prints figures, asserts nothing about speed): the analytics
//! overview for a month over a large history, and the first pages of `/v1/analytics/agents`
//! and `/queues` over the same month, on SQLite (a file) and PostgreSQL (when `DATABASE_URL`
//! is set), through the HTTP API.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo nextest run -p switchyard-api --test analytics_bench --run-ignored only --no-capture
//! ```
//!
//! Knobs: `ANALYTICS_BENCH_CALLS` (default 10,000,000 calls over two months),
//! `ANALYTICS_BENCH_QUEUES` (20), `ANALYTICS_BENCH_AGENTS` (100), `ANALYTICS_BENCH_RUNS` (50;
//! 10 for a route whose warm-up takes over a second), `ANALYTICS_BENCH_KEEP` (1: leave the
//! SQLite file and the PostgreSQL schema for EXPLAIN; their names are printed),
//! `ANALYTICS_BENCH_SQLITE` (0: PostgreSQL only), `ANALYTICS_BENCH_REUSE` (1: a fixed SQLite
//! file and PostgreSQL schema, kept, filled only when empty; a later run times the same
//! history without filling it again, e.g. once the machine is quiet).
//! Two months of 15-minute interval rows (the month asked for and the previous period) are
//! filled for every queue and agent. The fill is INSERT ... SELECT (a recursive CTE on
//! SQLite, generate_series on PostgreSQL), so it runs inside the database, in statements of
//! [`CHUNK`] calls: one statement of ten million did not finish on SQLite (its write
//! transaction and WAL grow with it).

mod server_common;

use std::str::FromStr;
use std::time::{Duration, Instant};

use serde_json::Value;
use server_common::*;
use sqlx::postgres::{PgConnectOptions, PgPool};
use switchyard_api::model::Role;
use switchyard_api::store::{Pools, Store};

const DAY: i64 = 86_400_000;

/// Calls per fill statement (each its own transaction).
const CHUNK: i64 = 500_000;

fn knob(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Where the fill runs: the store's SQLite writer, or a PostgreSQL pool of its own (the
/// store's connections stop a statement after a few seconds; a 10-million-row INSERT takes
/// minutes).
enum Raw<'a> {
    Sqlite(&'a Store),
    Postgres(PgPool),
}

async fn exec(raw: &Raw<'_>, sql: String) {
    match raw {
        Raw::Sqlite(store) => {
            let Pools::Sqlite { writer, .. } = store.pools() else {
                unreachable!("a SQLite store")
            };
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(writer)
                .await
                .unwrap();
        }
        Raw::Postgres(pg) => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(pg)
                .await
                .unwrap();
        }
    }
}

struct Fill {
    calls: i64,
    queues: i64,
    agents: i64,
    from: i64,
    days: i64,
}

/// The figures JSON of a queue (`j` its id, `i` the slot) or an agent, built in SQL.
const QUEUE_FIGURES: &str = "'{\"offered\":' || (10 + (i + j) % 7) || ',\"answered\":8,\"answered_within_sl\":6,\"abandoned\":1,\"short_abandoned\":0,\"exited\":{\"timeout\":0,\"no_agents\":0,\"overflow\":0,\"voicemail\":0,\"callback\":1,\"dtmf\":0,\"supervisor\":0,\"other\":0},\"exited_total\":1,\"offers\":{\"accepted\":8,\"rejected\":1,\"no_answer\":0,\"busy\":0,\"failed\":0,\"lost\":0},\"asa_s\":12.5,\"avg_abandon_wait_s\":30.0,\"talk_s\":1400.0,\"wrapup_s\":80.0,\"handled\":8,\"handle_s\":1480.0,\"agent_time_s\":{\"logged_out\":0.0,\"available\":900.0,\"on_break\":0.0,\"reserved\":30.0,\"on_call\":1400.0,\"wrap_up\":80.0}}'";
const AGENT_FIGURES: &str = "'{\"offered\":3,\"accepted\":2,\"rejected\":1,\"no_answer\":0,\"busy\":0,\"failed\":0,\"lost\":0,\"answered\":2,\"handled\":2,\"talk_s\":' || (300 + (i + j) % 200) || '.0,\"wrapup_s\":20.0,\"handle_s\":520.0,\"state_time_s\":{\"logged_out\":0.0,\"available\":200.0,\"on_break\":60.0,\"reserved\":10.0,\"on_call\":560.0,\"wrap_up\":70.0}}'";

type IntervalSql<'a> = Box<dyn Fn(&str, i64, &str) -> String + 'a>;
/// The INSERT of calls `first..=last`.
type CallSql<'a> = Box<dyn Fn(i64, i64) -> String + 'a>;

async fn fill(raw: &Raw<'_>, tenant: &str, f: &Fill) {
    let sqlite = matches!(raw, Raw::Sqlite(_));
    let step = (f.days * DAY / f.calls.max(1)).max(1);
    let slots = f.days * 96;
    let (calls, intervals): (CallSql<'_>, IntervalSql<'_>) = if sqlite {
        (
            Box::new(|first: i64, last: i64| {
                format!(
                    "WITH RECURSIVE n(x) AS (SELECT {first} UNION ALL SELECT x + 1 FROM n WHERE x < {last}) \
                 INSERT INTO calls (id, tenant_id, queue_id, queues, agent_id, caller_number, \
                 outcome, arrived_at, wait_ms, talk_ms, offers, synthetic) \
                 SELECT printf('%08x-0000-4000-8000-%012x', x, x), '{tenant}', 1 + x % {q}, '[1]', \
                 1 + x % {a}, '+1555' || (x % 500000), \
                 CASE WHEN x % 10 = 0 THEN 'abandoned' ELSE 'answered' END, \
                 {from} + x * {step}, x % 60000, x % 600000, 1, 0 FROM n",
                    q = f.queues,
                    a = f.agents,
                    from = f.from,
                )
            }),
            Box::new(|kind: &str, count: i64, figures: &str| {
                format!(
                    "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {last}), \
                     o(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM o WHERE j < {count}) \
                     INSERT INTO interval_stats (tenant_id, scope_kind, scope_id, start_ms, end_ms, figures) \
                     SELECT '{tenant}', '{kind}', j, {from} + i * 900000, {from} + (i + 1) * 900000, \
                     {figures} FROM s, o",
                    last = slots - 1,
                    from = f.from,
                )
            }),
        )
    } else {
        (
            Box::new(|first: i64, last: i64| {
                format!(
                    "INSERT INTO calls (id, tenant_id, queue_id, queues, agent_id, caller_number, \
                 outcome, arrived_at, wait_ms, talk_ms, offers, synthetic) \
                 SELECT lpad(to_hex(x), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(x), 12, '0'), \
                 '{tenant}', 1 + x % {q}, '[1]', 1 + x % {a}, '+1555' || (x % 500000), \
                 CASE WHEN x % 10 = 0 THEN 'abandoned' ELSE 'answered' END, \
                 {from} + x::bigint * {step}, x % 60000, x % 600000, 1, FALSE \
                 FROM generate_series({first}, {last}) AS x",
                    q = f.queues,
                    a = f.agents,
                    from = f.from,
                )
            }),
            Box::new(|kind: &str, count: i64, figures: &str| {
                format!(
                    "INSERT INTO interval_stats (tenant_id, scope_kind, scope_id, start_ms, end_ms, figures) \
                     SELECT '{tenant}', '{kind}', j, {from} + i::bigint * 900000, \
                     {from} + (i::bigint + 1) * 900000, {figures} \
                     FROM generate_series(0, {last}) AS i CROSS JOIN generate_series(1, {count}) AS j",
                    last = slots - 1,
                    from = f.from,
                )
            }),
        )
    };
    let t = Instant::now();
    if sqlite {
        // 256 MiB of page cache on the writer (its one connection) for the fill: the caller
        // number indexes take rows in no order, and SQLite's default 2 MiB rereads their
        // pages from the OS for every row.
        exec(raw, "PRAGMA cache_size = -262144".to_owned()).await;
    }
    if !sqlite {
        // PostgreSQL: the calls are summed after the fill, set-based, as migration 0021 sums
        // the calls it finds. Its per-row trigger, fed 500,000 rows in one transaction, adds
        // to the same per-day row of call_repeat_sums 1,600 times an agent and day: every
        // version of that row stays (MVCC) and each upsert walks them, so the fill did not
        // get through its first statement in 8 minutes. The record writer's transactions
        // hold a handful of calls.
        exec(
            raw,
            "ALTER TABLE calls DISABLE TRIGGER call_repeat_keep".to_owned(),
        )
        .await;
    }
    let mut first = 0;
    while first < f.calls {
        let last = (first + CHUNK).min(f.calls) - 1;
        exec(raw, calls(first, last)).await;
        first = last + 1;
    }
    if !sqlite {
        for sql in [
            "UPDATE calls SET repeated = 1 WHERE caller_number <> '' AND EXISTS (\
             SELECT 1 FROM calls r WHERE r.tenant_id = calls.tenant_id \
             AND r.caller_number = calls.caller_number AND r.arrived_at > calls.arrived_at \
             AND r.arrived_at <= calls.arrived_at + 86400000)",
            "INSERT INTO call_repeat_sums (tenant_id, span_ms, start_ms, agent_id, answered, repeated) \
             SELECT tenant_id, span, (arrived_at / span) * span, agent_id, COUNT(*), SUM(repeated) \
             FROM calls, (SELECT 900000 AS span UNION ALL SELECT 86400000) spans \
             WHERE outcome = 'answered' AND agent_id IS NOT NULL AND caller_number <> '' \
             GROUP BY 1, 2, 3, 4",
            "ALTER TABLE calls ENABLE TRIGGER call_repeat_keep",
        ] {
            exec(raw, sql.to_owned()).await;
        }
    }
    println!("  filled {} calls in {:.1?}", f.calls, t.elapsed());
    let t = Instant::now();
    exec(raw, intervals("queue", f.queues, QUEUE_FIGURES)).await;
    exec(raw, intervals("agent", f.agents, AGENT_FIGURES)).await;
    println!(
        "  filled {} interval rows in {:.1?}",
        slots * (f.queues + f.agents),
        t.elapsed()
    );
    exec(raw, "ANALYZE".to_owned()).await;
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(label: &str, store: Store, raw: Raw<'_>) {
    let f = Fill {
        calls: knob("ANALYTICS_BENCH_CALLS", 10_000_000),
        queues: knob("ANALYTICS_BENCH_QUEUES", 20),
        agents: knob("ANALYTICS_BENCH_AGENTS", 100),
        from: "2026-01-01T00:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond(),
        days: 62,
    };
    let runs = knob("ANALYTICS_BENCH_RUNS", 50).max(1) as usize;
    let s = Server::start(store.clone()).await;
    println!("{label}:");
    let kept = match store.tenant_by_name("bench").await.unwrap() {
        Some(t) if knob("ANALYTICS_BENCH_REUSE", 0) == 1 => Some(t.id),
        _ => None,
    };
    let key = if let Some(tenant) = kept {
        println!("  reusing the history filled by an earlier run");
        s.key(Some(tenant), Role::Admin).await
    } else {
        let (tenant, key) = s.tenant("bench").await;
        fill(&raw, &tenant.0.to_string(), &f).await;
        key
    };
    // The second month: its previous period is the first.
    let from = f.from + 31 * DAY;
    let range = format!("from={from}&to={}", from + 31 * DAY);
    let paths = [
        (
            "overview, a month by day",
            format!("/v1/analytics/overview?{range}&granularity=day"),
        ),
        (
            "agents, first page (default limit 200)",
            format!("/v1/analytics/agents?{range}"),
        ),
        (
            "agents, first page of 50",
            format!("/v1/analytics/agents?{range}&limit=50"),
        ),
        (
            "queues, first page (default limit 200)",
            format!("/v1/analytics/queues?{range}"),
        ),
    ];
    for (what, path) in paths {
        let t = Instant::now();
        let (st, v) = s.call("GET", &path, Some(&key), None).await; // warm-up
        assert_eq!(st, 200, "{v}");
        let runs = if t.elapsed() > Duration::from_secs(1) {
            runs.min(10)
        } else {
            runs
        };
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let (st, _) = s.call("GET", &path, Some(&key), None).await;
            times.push(t.elapsed());
            assert_eq!(st, 200);
        }
        times.sort();
        let shown = match (&v["totals"], &v["agents"], &v["queues"]) {
            (Value::Object(t), _, _) => format!("{} offered", t["offered"]),
            (_, Value::Array(a), _) => format!("{} agents, next {}", a.len(), v["next"]),
            (_, _, Value::Array(q)) => format!("{} queues, next {}", q.len(), v["next"]),
            _ => String::new(),
        };
        println!(
            "  {what} ({shown}): p50 {:.1?}, p99 {:.1?}, max {:.1?} over {runs} runs",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times[times.len() - 1],
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: fills millions of rows; run with --run-ignored only --no-capture"]
async fn analytics_overview_for_a_month_over_a_large_history() {
    let keep = knob("ANALYTICS_BENCH_KEEP", 0) == 1 || reuse();
    if knob("ANALYTICS_BENCH_SQLITE", 1) == 1 {
        sqlite_bench(keep).await;
    }
    postgres_bench(keep).await;
}

/// `ANALYTICS_BENCH_REUSE=1`: the history lives at fixed names and is kept.
fn reuse() -> bool {
    knob("ANALYTICS_BENCH_REUSE", 0) == 1
}

async fn sqlite_bench(keep: bool) {
    let dir = if reuse() {
        std::env::temp_dir().join("analytics-bench-kept")
    } else {
        std::env::temp_dir().join(format!("analytics-bench-{}", std::process::id()))
    };
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let sqlite = Store::connect(&url).await.unwrap();
    sqlite.migrate().await.unwrap();
    measure("SQLite (file)", sqlite.clone(), Raw::Sqlite(&sqlite)).await;
    sqlite.close().await;
    if keep {
        println!("  kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

async fn postgres_bench(keep: bool) {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        println!("PostgreSQL: DATABASE_URL not set, skipped");
        return;
    };
    let admin = PgPool::connect(&url).await.unwrap();
    let schema = if reuse() {
        "bench_kept".to_owned()
    } else {
        format!("bench_{}", uuid::Uuid::new_v4().simple())
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    let options = PgConnectOptions::from_str(&url)
        .unwrap()
        .options([("search_path", schema.as_str())]);
    let pg = Store::from_pg_options(options.clone()).await.unwrap();
    pg.migrate().await.unwrap();
    let raw = PgPool::connect_with(options).await.unwrap();
    measure("PostgreSQL", pg.clone(), Raw::Postgres(raw.clone())).await;
    raw.close().await;
    pg.close().await;
    if keep {
        println!("  kept schema {schema}");
        return;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&admin)
        .await
        .unwrap();
}
