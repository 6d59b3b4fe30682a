//! A database outage, on PostgreSQL behind a proxy that is cut and restored
//! (`outage_support`): what keeps working, what answers 503, what is journaled and how it is
//! replayed. Skipped without `DATABASE_URL`. The journal's file mechanics (torn tails, the
//! bound, resuming) are unit-tested in `api/src/journal.rs` on any file system.

mod outage_support;
mod server_common;

use std::time::Duration;

use outage_support::{CutProxy, PgDatabase};
use serde_json::{Value, json};
use server_common::{Server, audit};
use switchyard_api::model::TenantId;
use switchyard_api::store::{AuditEntry, CallRow, Store};

/// A store on `db` through `proxy`, migrated, with a journal in a fresh directory.
async fn journaled_store(db: &PgDatabase, proxy: &CutProxy) -> (Store, std::path::PathBuf) {
    let store = Store::connect(&db.url_via(proxy.addr()))
        .await
        .expect("connect through the proxy");
    store.migrate().await.expect("migrate");
    let dir = std::env::temp_dir().join(format!(
        "switchyard-outage-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let store = store.with_journal(&dir, 64 << 20).expect("journal opens");
    (store, dir)
}

/// Runs `f` with a guard against hanging: an answer must come long before sqlx's old 30 s
/// default (this is not a speed assertion; the figures come from `benches/db_outage.rs`).
async fn answered<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
}

fn call_row(tenant: TenantId, queue: i64, n: u128) -> CallRow {
    CallRow {
        id: uuid::Uuid::from_u128(0x5eed_0000 + n),
        tenant,
        queue_id: queue,
        queues: vec![queue],
        agent_id: None,
        caller_number: format!("+1555000{n:04}"),
        outcome: "abandoned".into(),
        arrived_at_ms: 1_700_000_000_000 + n as i64,
        wait_ms: 1000,
        talk_ms: 0,
        offers: 0,
        synthetic: false,
        callback_leg: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_during_an_outage_are_journaled_and_replayed_in_order_once() {
    let Some(db) = PgDatabase::create().await else {
        eprintln!("skipped: DATABASE_URL is not set");
        return;
    };
    let proxy = CutProxy::start(db.server_addr()).await;
    let (store, dir) = journaled_store(&db, &proxy).await;
    let t = store
        .create_tenant_granted("acme", &switchyard_api::grants::DialGrants::lab(), &audit())
        .await
        .unwrap();
    let q = store
        .create_queue(t.id, "sales", json!({}), &audit())
        .await
        .unwrap();
    let agent = store
        .create_agent(t.id, "ana", json!({}), &audit())
        .await
        .unwrap();
    // One call stored before the outage: written again during it, it must not double.
    store
        .insert_calls(&[call_row(t.id, q.id, 0)])
        .await
        .unwrap();

    proxy.cut().await;
    let during: Vec<CallRow> = (1..=20).map(|n| call_row(t.id, q.id, n)).collect();
    for chunk in during.chunks(5) {
        answered("a write during the outage", store.insert_calls(chunk))
            .await
            .expect("journaled, not failed");
    }
    answered(
        "an old call again",
        store.insert_calls(&[call_row(t.id, q.id, 0)]),
    )
    .await
    .unwrap();
    // Presence in order: the last one written is the one that must stay.
    for p in ["available", "logged-out"] {
        let presence = json!({ "presence": p });
        answered(
            "presence",
            store.set_agent_presence(t.id, agent.id, presence),
        )
        .await
        .unwrap();
    }
    let audit_entry = AuditEntry {
        tenant: Some(t.id),
        key_id: None,
        action: "agent.monitor",
        object_kind: "agent",
        object_id: agent.id.to_string(),
        detail: json!({"mode": "listen"}),
    };
    answered("audit", store.insert_audit(&audit_entry))
        .await
        .unwrap();
    let st = store.spool_status().unwrap();
    assert!(st.down_since_ms.is_some(), "{st:?}");
    assert_eq!(st.pending_entries, 4 + 1 + 2 + 1, "{st:?}");
    assert!(store.known_down());
    // A read answers Unavailable (503 at the HTTP edge), not a hang and not a generic error.
    let err = answered("a read during the outage", store.list_queues(t.id))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");

    proxy.restore().await;
    assert!(
        store.journal_drained(Duration::from_secs(20)).await,
        "journal not replayed: {:?}",
        store.spool_status()
    );
    let st = store.spool_status().unwrap();
    assert_eq!((st.pending_entries, st.pending_bytes), (0, 0));
    assert_eq!(st.replayed, 8);
    assert_eq!(
        (st.duplicates, st.replay_dropped, st.refused_at_bound),
        (0, 0, 0)
    );
    assert_eq!(std::fs::metadata(dir.join("journal.log")).unwrap().len(), 0);
    // Every call once (21 with the one from before), the last presence, the audit entry once.
    let (calls, _) = store
        .list_calls(
            t.id,
            &switchyard_api::store::CallFilter {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(calls.len(), 21);
    let stored = store.get_agent(t.id, agent.id).await.unwrap().unwrap();
    assert_eq!(stored.presence, json!({ "presence": "logged-out" }));
    let log = store.list_audit(Some(t.id), 100).await.unwrap();
    assert_eq!(
        log.iter().filter(|a| a.action == "agent.monitor").count(),
        1
    );
    store.close().await;
    db.drop_now().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_an_outage_memory_routes_work_and_database_routes_answer_503() {
    let Some(db) = PgDatabase::create().await else {
        eprintln!("skipped: DATABASE_URL is not set");
        return;
    };
    let proxy = CutProxy::start(db.server_addr()).await;
    let (store, dir) = journaled_store(&db, &proxy).await;
    let s = Server::start(store.clone()).await;
    let (tenant, admin) = s.tenant("acme").await;
    let other = s
        .key(Some(tenant), switchyard_api::model::Role::Supervisor)
        .await;
    let revoked = s
        .key(Some(tenant), switchyard_api::model::Role::ReadOnly)
        .await;
    let k = Some(admin.as_str());
    let (st, q) = s
        .call(
            "POST",
            "/v1/queues",
            k,
            Some(json!({"name": "sales", "config": {"numbers": ["5000"]}})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    let qid = q["id"].as_i64().unwrap();
    let aid = s.agent(&admin, "ana", "user/1000").await;
    // Each key is used once while the database is up (so it is known good), then one is
    // revoked: it must stop at once, while the others ride out the outage.
    for key in [&admin, &other, &revoked] {
        let (st, _) = s
            .call("GET", &format!("/v1/queues/{qid}/stats"), Some(key), None)
            .await;
        assert_eq!(st, 200);
    }
    let revoked_id = s.call("GET", "/v1/api-keys", k, None).await.1["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["role"] == "read-only")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, _) = s
        .call("DELETE", &format!("/v1/api-keys/{revoked_id}"), k, None)
        .await;
    assert_eq!(st, 204);
    let (st, _) = s
        .call(
            "GET",
            &format!("/v1/queues/{qid}/stats"),
            Some(&revoked),
            None,
        )
        .await;
    assert_eq!(st, 401, "a revoked key stops at once");

    proxy.cut().await;

    // In memory: live figures, waiting calls, agent state changes, queue pause and resume.
    for key in [&admin, &other] {
        let (st, body) = answered(
            "stats",
            s.call("GET", &format!("/v1/queues/{qid}/stats"), Some(key), None),
        )
        .await;
        assert_eq!(st, 200, "{body}");
    }
    let (st, _) = answered(
        "waiting calls",
        s.call("GET", &format!("/v1/queues/{qid}/calls"), k, None),
    )
    .await;
    assert_eq!(st, 200);
    let (st, body) = answered(
        "agent state",
        s.call(
            "PUT",
            &format!("/v1/agents/{aid}/state"),
            k,
            Some(json!({"state": "on-break", "reason": "outage drill"})),
        ),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = answered(
        "pause",
        s.call("POST", &format!("/v1/queues/{qid}/pause"), k, None),
    )
    .await;
    assert_eq!((st, body["paused"].clone()), (200, json!(true)), "{body}");
    // The live feed: its snapshot comes from memory.
    let resp = answered(
        "live feed",
        s.http
            .get(format!("{}/v1/live", s.base))
            .bearer_auth(&admin)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);

    // The database's routes: 503 with Retry-After and the JSON error, not 500, not a hang.
    let resp = answered(
        "queue list",
        s.http
            .get(format!("{}/v1/queues", s.base))
            .bearer_auth(&admin)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_some());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let (st, body) = answered(
        "queue create",
        s.call("POST", "/v1/queues", k, Some(json!({"name": "later"}))),
    )
    .await;
    assert_eq!(
        (st, body["error"]["code"].clone()),
        (503, json!("unavailable"))
    );
    // A key nobody has seen: 503 (cannot tell), neither 401 nor a hang. The revoked key was
    // seen revoked: still 401.
    for (key, status) in [("sy_never_seen_this_key", 503), (revoked.as_str(), 401)] {
        let (st, body) = answered(
            "unknown key",
            s.call("GET", &format!("/v1/queues/{qid}/stats"), Some(key), None),
        )
        .await;
        assert_eq!(st, status, "{body}");
    }

    // /readyz: degraded and why; /healthz: alive.
    let (st, ready) = answered("readyz", s.call("GET", "/readyz", None, None)).await;
    assert_eq!(st, 503, "{ready}");
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["degraded"]["database"]["state"], "unavailable");
    let message = ready["degraded"]["database"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("database unavailable since "),
        "{message}"
    );
    assert!(ready["degraded"]["database"]["journal"]["pending_entries"].as_u64() >= Some(2));
    let (st, _) = s.call("GET", "/healthz", None, None).await;
    assert_eq!(st, 200);

    proxy.restore().await;
    assert!(
        store.journal_drained(Duration::from_secs(20)).await,
        "{:?}",
        store.spool_status()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (st, ready) = s.call("GET", "/readyz", None, None).await;
        if st == 200 {
            assert_eq!(ready["status"], "ready");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not ready: {ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What was done during the outage is stored, once.
    let agent = store
        .get_agent(tenant, s.stored_agent(aid))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        agent.presence,
        json!({"presence": "on-break", "reason": "outage drill"})
    );
    let stored_q =
        s.rt.ids
            .decode(switchyard_api::ids::IdKind::Queue, qid)
            .unwrap();
    let queue = store.get_queue(tenant, stored_q).await.unwrap().unwrap();
    assert_eq!(queue.config["paused"], json!(true), "{}", queue.config);
    let log = store.list_audit(Some(tenant), 100).await.unwrap();
    assert_eq!(log.iter().filter(|a| a.action == "queue.pause").count(), 1);
    // And the database's routes answer again.
    let (st, _) = s.call("GET", "/v1/queues", k, None).await;
    assert_eq!(st, 200);
    s.stop().await;
    store.close().await;
    db.drop_now().await;
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// The binary, killed with SIGKILL while its journal holds records.

/// The fake switch's traffic for the process test: 10 callers a second to 5000, short talks,
/// 20 agent phones that answer at once.
const TRAFFIC: &str = r#"
seed = 3
[agents]
extensions = ["1000-1019"]
answer_delay = { fixed = 0.2 }
answer = 1.0
no_answer = 0.0
[inbound]
calls_per_minute = 600
destination = "5000"
patience = { exp = 60.0 }
talk_time = { exp = 1.5 }
dtmf = []
"#;

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `switchyard serve` on `db_url` with its journal in `journal`; the process and its base URL
/// (read from the line it prints on stderr once the API listens).
async fn serve(
    db_url: &str,
    esl: &str,
    outbound: &str,
    journal: &std::path::Path,
) -> (Kill, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--database-url", db_url, "--esl", esl])
        .args(["--outbound-listen", outbound, "--listen", "127.0.0.1:0"])
        .arg("--journal-dir")
        .arg(journal)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start switchyard serve");
    let stderr = child.stderr.take().unwrap();
    let guard = Kill(child);
    let base = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stderr).lines();
        let base = lines.by_ref().map_while(Result::ok).find_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("http://"))
                .map(|w| w.trim_end_matches(',').to_owned())
        });
        // Keep draining so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        base
    })
    .await
    .unwrap()
    .expect("serve printed its address");
    (guard, base)
}

/// The call ids in the `calls` entries of the journal in `dir` (read from a copy, so the
/// journal itself is left as it is).
fn journaled_calls(dir: &std::path::Path) -> Vec<uuid::Uuid> {
    journaled_calls_that(dir, |_| true)
}

/// The ids of the calls whose final record (not an open row) the journal holds.
fn journaled_final_calls(dir: &std::path::Path) -> Vec<uuid::Uuid> {
    journaled_calls_that(dir, |row| {
        row["outcome"] != switchyard_api::store::OPEN_CALL
    })
}

fn journaled_calls_that(dir: &std::path::Path, keep: impl Fn(&Value) -> bool) -> Vec<uuid::Uuid> {
    let copy = std::env::temp_dir().join(format!(
        "switchyard-journal-copy-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["journal.log", "journal.pos"] {
        if dir.join(f).exists() {
            std::fs::copy(dir.join(f), copy.join(f)).unwrap();
        }
    }
    let mut j = switchyard_api::journal::Journal::open(&copy, u64::MAX).unwrap();
    let mut ids = Vec::new();
    while let Some(entry) = j.peek().unwrap() {
        let v: Value = serde_json::from_slice(&entry).unwrap();
        if v["op"] == "calls" {
            for row in v["rows"].as_array().unwrap().iter().filter(|r| keep(r)) {
                ids.push(row["id"].as_str().unwrap().parse().unwrap());
            }
        }
        j.pop().unwrap();
    }
    let _ = std::fs::remove_dir_all(&copy);
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_journaled_when_the_process_is_killed_are_replayed_at_the_next_start() {
    let Some(db) = PgDatabase::create().await else {
        eprintln!("skipped: DATABASE_URL is not set");
        return;
    };
    let proxy = CutProxy::start(db.server_addr()).await;
    // Configuration, written directly: a queue on 5000 and 20 available agents.
    let seed = Store::connect(&db.url()).await.unwrap();
    seed.migrate().await.unwrap();
    let t = seed
        .create_tenant_granted("acme", &switchyard_api::grants::DialGrants::lab(), &audit())
        .await
        .unwrap();
    let q = seed
        .create_queue(t.id, "sales", json!({"numbers": ["5000"]}), &audit())
        .await
        .unwrap();
    for i in 0..20 {
        let a = seed
            .create_agent(
                t.id,
                &format!("agent {i}"),
                json!({"contact": format!("user/{}", 1000 + i)}),
                &audit(),
            )
            .await
            .unwrap();
        seed.set_member(t.id, q.id, a.id, 1, i + 1, 1, &audit())
            .await
            .unwrap();
        seed.set_agent_presence(t.id, a.id, json!({"presence": "available"}))
            .await
            .unwrap();
    }
    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl_addr = esl.local_addr().unwrap().to_string();
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
        3,
    );
    let journal = std::env::temp_dir().join(format!(
        "switchyard-killed-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let db_url = db.url_via(proxy.addr());
    let (process, _base) = serve(&db_url, &esl_addr, &outbound, &journal).await;

    // Calls are recorded while the database is up ...
    let stored = |seed: Store| async move {
        seed.list_calls(
            t.id,
            &switchyard_api::store::CallFilter {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .0
        .len()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while stored(seed.clone()).await == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no call recorded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ... then go to the journal while it is cut, until the process is killed.
    proxy.cut().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while journaled_calls(&journal).len() < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "calls not journaled: {:?}",
            journaled_calls(&journal)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(process); // SIGKILL, then reaped
    let lost_if_not_replayed = journaled_calls(&journal);
    proxy.restore().await;
    // (A call that arrived before the cut has its open row stored: its journaled record is
    // the final one, not stored yet.)
    let final_stored = |seed: Store, id: uuid::Uuid| async move {
        seed.get_call(t.id, id)
            .await
            .unwrap()
            .is_some_and(|c| c.outcome != switchyard_api::store::OPEN_CALL)
    };
    let journaled_finals: Vec<uuid::Uuid> = journaled_final_calls(&journal);
    assert!(!journaled_finals.is_empty(), "final records journaled");
    for id in &journaled_finals {
        assert!(
            !final_stored(seed.clone(), *id).await,
            "{id} stored already"
        );
    }

    // The next start replays them before it writes anything new.
    let (process, base) = serve(&db_url, &esl_addr, &outbound, &journal).await;
    for id in &lost_if_not_replayed {
        assert!(
            seed.get_call(t.id, *id).await.unwrap().is_some(),
            "journaled call {id} was not replayed"
        );
    }
    for id in &journaled_finals {
        assert!(
            final_stored(seed.clone(), *id).await,
            "journaled final record of {id} was not replayed"
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let resp = reqwest::get(format!("{base}/readyz")).await.unwrap();
        if resp.status() == 200 {
            break;
        }
        let body: Value = resp.json().await.unwrap();
        assert!(tokio::time::Instant::now() < deadline, "not ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        std::fs::metadata(journal.join("journal.log"))
            .unwrap()
            .len(),
        0
    );
    drop(process);
    switch.shutdown().await;
    seed.close().await;
    db.drop_now().await;
    let _ = std::fs::remove_dir_all(&journal);
}

/// SQLite has no server to lose, but its file can be locked by another process (a backup, the
/// sqlite3 shell) for longer than the busy timeout: the same outage from the store's side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_by_another_process_journals_writes_and_replays_them_when_released() {
    use sqlx::Connection;
    let dir = std::env::temp_dir().join(format!(
        "switchyard-outage-sqlite-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("switchyard.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let store = store.with_journal(&dir.join("journal"), 1 << 20).unwrap();
    let t = store
        .create_tenant_granted("acme", &switchyard_api::grants::DialGrants::lab(), &audit())
        .await
        .unwrap();
    let q = store
        .create_queue(t.id, "sales", json!({}), &audit())
        .await
        .unwrap();

    // Another connection, as another process would, takes the write lock and keeps it.
    let mut locker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();
    let rows: Vec<CallRow> = (1..=3).map(|n| call_row(t.id, q.id, n)).collect();
    answered("a write while locked", store.insert_calls(&rows[..2]))
        .await
        .expect("journaled after the busy timeout");
    answered("a second write", store.insert_calls(&rows[2..]))
        .await
        .expect("journaled behind the first");
    let st = store.spool_status().unwrap();
    assert!(st.pending_entries >= 2, "{st:?}");

    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    locker.close().await.unwrap();
    assert!(
        store.journal_drained(Duration::from_secs(30)).await,
        "{:?}",
        store.spool_status()
    );
    for r in &rows {
        assert!(
            store.get_call(t.id, r.id).await.unwrap().is_some(),
            "{}",
            r.id
        );
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// At the journal's bound the oldest writes are kept and new ones are refused (counted), not
/// blocked: the record sink drops them at once instead of retrying for a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_journal_bound_new_writes_are_refused_and_counted_and_the_old_ones_kept() {
    use sqlx::Connection;
    use switchyard_api::store::StoreError;
    let dir = std::env::temp_dir().join(format!(
        "switchyard-outage-bound-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("switchyard.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    // Room for one small batch of calls and not two.
    let store = store.with_journal(&dir.join("journal"), 1200).unwrap();
    let t = store
        .create_tenant_granted("acme", &switchyard_api::grants::DialGrants::lab(), &audit())
        .await
        .unwrap();
    let q = store
        .create_queue(t.id, "sales", json!({}), &audit())
        .await
        .unwrap();
    let mut locker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();
    let first: Vec<CallRow> = (1..=2).map(|n| call_row(t.id, q.id, n)).collect();
    let second: Vec<CallRow> = (3..=4).map(|n| call_row(t.id, q.id, n)).collect();
    answered("the first batch", store.insert_calls(&first))
        .await
        .expect("journaled");
    let err = answered("the second batch", store.insert_calls(&second))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::JournalFull { bound_bytes: 1200 }),
        "{err:?}"
    );
    let st = store.spool_status().unwrap();
    assert_eq!((st.pending_entries, st.refused_at_bound), (1, 2), "{st:?}");

    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    locker.close().await.unwrap();
    assert!(store.journal_drained(Duration::from_secs(30)).await);
    for r in &first {
        assert!(store.get_call(t.id, r.id).await.unwrap().is_some());
    }
    for r in &second {
        assert!(store.get_call(t.id, r.id).await.unwrap().is_none());
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
