//! `switchyard serve` killed (-9) while webhook deliveries are in flight, then started again
//! on the same database: no message is lost, and the ones the receiver had already been sent
//! come again under the same `webhook-id` (a receiver that keeps ids drops them). The same
//! when the kill comes after the receiver answered but before the worker filed those
//! attempts together (SQLite, and PostgreSQL when `DATABASE_URL` is set).

mod process_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use process_common::{Api, free_port, serve_with, tenant_with_admin_key};
use reqwest::Method;
use serde_json::{Value, json};
use standardwebhooks::Webhook;
use switchyard_esl::sim::SimConfig;

/// Each request's message id and body, in arrival order (kept before it is answered).
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_delivery_loses_no_message_and_resends_keep_their_ids() {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-webhook-restart-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    let key = tenant_with_admin_key(&db);

    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl_addr = esl.local_addr().unwrap().to_string();
    let outbound = format!("127.0.0.1:{}", free_port());
    let _switch = switchyard_esl::sim::spawn(
        esl,
        SimConfig {
            inbound_target: Some(outbound.clone()),
            ..SimConfig::default()
        }
        .for_this_run(),
        29,
    );
    let config = dir.join("serve.toml");
    std::fs::write(&config, "[webhooks]\nallow_private_targets = true\n").unwrap();
    let config = config.display().to_string();
    let args = ["--config", config.as_str()];

    // The receiver keeps what it is sent; while `slow`, it holds every request 30 s (the
    // sender is killed meanwhile and never hears the answer).
    let seen: Seen = Arc::default();
    let slow = Arc::new(AtomicBool::new(true));
    let secret: Arc<Mutex<String>> = Arc::default();
    let (s2, w2, k2) = (seen.clone(), slow.clone(), secret.clone());
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (seen, slow, secret) = (s2.clone(), w2.clone(), k2.clone());
            async move {
                Webhook::new(&secret.lock().unwrap())
                    .unwrap()
                    .verify(&body, &headers)
                    .expect("signed");
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                let v: Value = serde_json::from_slice(&body).unwrap();
                seen.lock().unwrap().push((id, v));
                if slow.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (first, base) = serve_with(&db, &esl_addr, &outbound, &args).await;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key: key.clone(),
    };
    api.wait_ready(Duration::from_secs(30)).await;
    let w = api
        .ok(
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": url, "events": ["agent.state_changed"]})),
        )
        .await;
    *secret.lock().unwrap() = w["secret"].as_str().unwrap().to_owned();
    let agent = api
        .ok(
            Method::POST,
            "/v1/agents",
            Some(json!({"name": "Ana", "config": {"contact": "user/1000"}})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // Ten state changes: ten messages.
    for i in 0..5 {
        for body in [
            json!({"state": "available"}),
            json!({"state": "on-break", "reason": format!("break {i}")}),
        ] {
            api.ok(
                Method::PUT,
                &format!("/v1/agents/{agent}/state"),
                Some(body),
            )
            .await;
        }
    }
    // Deliveries are in flight (the receiver holds them): kill the sender now.
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "no delivery began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.signal("KILL");
    let in_flight: BTreeSet<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    slow.store(false, Ordering::Relaxed);

    let (_second, base) = serve_with(&db, &esl_addr, &outbound, &args).await;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key,
    };
    api.wait_ready(Duration::from_secs(30)).await;
    let delivered = |log: &Value| -> BTreeSet<String> {
        log["deliveries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["delivered"] == true)
            .filter_map(|d| d["message_id"].as_str().map(str::to_owned))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = api
            .ok(
                Method::GET,
                &format!("/v1/webhooks/{}/deliveries", w["id"]),
                None,
            )
            .await;
        let distinct: BTreeSet<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.clone())
            .collect();
        if distinct.len() >= 10 && delivered(&log).len() >= 10 {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "messages lost: {} seen, log {log}",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seen = seen.lock().unwrap().clone();
    let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (id, v) in seen {
        by_id.entry(id).or_default().push(v);
    }
    assert_eq!(by_id.len(), 10, "each state change once, by id: {by_id:?}");
    // What was in flight at the kill came again, the same message under the same id.
    for id in &in_flight {
        let copies = &by_id[id];
        assert!(copies.len() >= 2, "{id} was sent again after the restart");
        assert!(copies.iter().all(|c| c == &copies[0]), "{copies:?}");
    }
    let reasons: BTreeSet<String> = by_id
        .values()
        .filter_map(|v| v[0]["data"]["reason"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert_eq!(delivered(&log), by_id.keys().cloned().collect());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lock on the attempts' log, held by the test: while it is held, the worker's batched
/// filing of ended attempts cannot commit (it waits, then fails on the store's timeout).
enum FilingBlock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl FilingBlock {
    async fn take(db: &str) -> FilingBlock {
        use sqlx::Connection;
        if db.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(db).await.unwrap();
            sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            sqlx::query("LOCK TABLE webhook_attempts IN EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .unwrap();
            FilingBlock::Postgres(c)
        } else {
            let mut c = sqlx::SqliteConnection::connect(db).await.unwrap();
            // The database's one write lock: readers go on (WAL), writers wait.
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut c)
                .await
                .unwrap();
            FilingBlock::Sqlite(c)
        }
    }

    /// Waits (up to 5 s) until the filing is blocked on the lock: observable on PostgreSQL;
    /// on SQLite a fixed wait well past the worker's 50 ms filing interval.
    async fn until_filing_waits(&mut self) {
        match self {
            FilingBlock::Postgres(c) => {
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    let (waiting,): (i64,) = sqlx::query_as(
                        "SELECT count(*) FROM pg_locks \
                         WHERE NOT granted AND relation = 'webhook_attempts'::regclass",
                    )
                    .fetch_one(&mut *c)
                    .await
                    .unwrap();
                    if waiting > 0 {
                        return;
                    }
                    assert!(Instant::now() < deadline, "the filing never began");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            FilingBlock::Sqlite(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }

    /// Attempts logged, and deliveries still claimed (pending, claimed_at set).
    async fn counts(&mut self) -> (i64, i64) {
        const LOGGED: &str = "SELECT count(*) FROM webhook_attempts";
        const CLAIMED: &str = "SELECT count(*) FROM webhook_deliveries \
             WHERE state = 'pending' AND claimed_at IS NOT NULL";
        match self {
            FilingBlock::Postgres(c) => {
                let (a,): (i64,) = sqlx::query_as(LOGGED).fetch_one(&mut *c).await.unwrap();
                let (d,): (i64,) = sqlx::query_as(CLAIMED).fetch_one(&mut *c).await.unwrap();
                (a, d)
            }
            FilingBlock::Sqlite(c) => {
                let (a,): (i64,) = sqlx::query_as(LOGGED).fetch_one(&mut *c).await.unwrap();
                let (d,): (i64,) = sqlx::query_as(CLAIMED).fetch_one(&mut *c).await.unwrap();
                (a, d)
            }
        }
    }

    async fn release(self) {
        match self {
            FilingBlock::Postgres(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
            FilingBlock::Sqlite(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    }
}

/// The worker files ended attempts together (every 50 ms, or at once when nothing else is in
/// hand). Killed after its receiver answered every message but before that batch was filed,
/// it leaves the deliveries claimed and nothing logged; the next start sends each again,
/// the same message under the same `webhook-id`, and files them.
async fn a_kill_9_before_the_batch_is_filed_sends_each_again_with_its_id(db: &str) {
    let key = tenant_with_admin_key(db);
    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl_addr = esl.local_addr().unwrap().to_string();
    let outbound = format!("127.0.0.1:{}", free_port());
    let _switch = switchyard_esl::sim::spawn(
        esl,
        SimConfig {
            inbound_target: Some(outbound.clone()),
            ..SimConfig::default()
        }
        .for_this_run(),
        31,
    );
    let dir = std::env::temp_dir().join(format!(
        "switchyard-webhook-filing-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("serve.toml");
    std::fs::write(&config, "[webhooks]\nallow_private_targets = true\n").unwrap();
    let config = config.display().to_string();
    let args = ["--config", config.as_str()];

    // The receiver keeps what it is sent; while `hold`, it answers nothing yet.
    let seen: Seen = Arc::default();
    let hold = Arc::new(AtomicBool::new(true));
    let (s2, h2) = (seen.clone(), hold.clone());
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (seen, hold) = (s2.clone(), h2.clone());
            async move {
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                let v: Value = serde_json::from_slice(&body).unwrap();
                seen.lock().unwrap().push((id, v));
                while hold.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (first, base) = serve_with(db, &esl_addr, &outbound, &args).await;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key: key.clone(),
    };
    api.wait_ready(Duration::from_secs(30)).await;
    let w = api
        .ok(
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": url, "events": ["agent.state_changed"]})),
        )
        .await;
    let agent = api
        .ok(
            Method::POST,
            "/v1/agents",
            Some(json!({"name": "Ana", "config": {"contact": "user/1000"}})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    for i in 0..5 {
        for body in [
            json!({"state": "available"}),
            json!({"state": "on-break", "reason": format!("break {i}")}),
        ] {
            api.ok(
                Method::PUT,
                &format!("/v1/agents/{agent}/state"),
                Some(body),
            )
            .await;
        }
    }
    let distinct = |seen: &Seen| -> BTreeSet<String> {
        seen.lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    };
    // All ten in flight at once (well within the worker's 16 per endpoint).
    let deadline = Instant::now() + Duration::from_secs(20);
    while distinct(&seen).len() < 10 {
        assert!(Instant::now() < deadline, "not every message went out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The filing cannot commit from now on; the receiver answers all ten.
    let mut block = FilingBlock::take(db).await;
    hold.store(false, Ordering::Relaxed);
    block.until_filing_waits().await;
    first.signal("KILL");
    let first_sends = seen.lock().unwrap().len();
    assert_eq!(first_sends, 10, "each sent once before the kill");
    let (logged, claimed) = block.counts().await;
    assert_eq!(
        (logged, claimed),
        (0, 10),
        "the batch was not filed: nothing logged, all ten still claimed"
    );
    block.release().await;

    let (_second, base) = serve_with(db, &esl_addr, &outbound, &args).await;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key,
    };
    api.wait_ready(Duration::from_secs(30)).await;
    let delivered = |log: &Value| -> BTreeSet<String> {
        log["deliveries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["delivered"] == true)
            .filter_map(|d| d["message_id"].as_str().map(str::to_owned))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = api
            .ok(
                Method::GET,
                &format!("/v1/webhooks/{}/deliveries", w["id"]),
                None,
            )
            .await;
        if seen.lock().unwrap().len() >= 20 && delivered(&log).len() >= 10 {
            break log;
        }
        assert!(Instant::now() < deadline, "not sent again: log {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (id, v) in seen.lock().unwrap().iter() {
        by_id.entry(id.clone()).or_default().push(v.clone());
    }
    assert_eq!(by_id.len(), 10, "{by_id:?}");
    for (id, copies) in &by_id {
        assert_eq!(copies.len(), 2, "{id}: once before the kill, once after");
        assert_eq!(copies[0], copies[1], "{id}: the same message");
    }
    assert_eq!(delivered(&log), by_id.keys().cloned().collect());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_not_filed_before_a_kill_is_sent_again_on_sqlite() {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-webhook-filing-db-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    a_kill_9_before_the_batch_is_filed_sends_each_again_with_its_id(&db).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same on PostgreSQL (when `DATABASE_URL` is set), in a schema of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_not_filed_before_a_kill_is_sent_again_on_postgres() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        return;
    };
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    // Hex digits only: safe to splice into DDL.
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{sep}options[search_path]={schema}");
    let outcome = tokio::spawn(async move {
        a_kill_9_before_the_batch_is_filed_sends_each_again_with_its_id(&db).await
    })
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
