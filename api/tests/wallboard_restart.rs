//! The wallboard across a restart of the real binary: `switchyard serve` on a SQLite file, a
//! fake switch run by the test, a wall screen in headless Chromium
//! (`tests/browser/wallboard_restart.mjs`). The day's handled and abandoned calls show; the
//! process is stopped with SIGINT (a graceful stop: the banner shows while it is down) and
//! started again on the same database and port; the same figures come back, although the
//! calls were all counted in the 15-minute interval that was open at the stop (the engine
//! writes closed intervals only: the open one is saved, and carried in by the next start).
//! Without a browser: a `kill -9` loses none of the open interval's calls either, and a
//! second restart counts them once.
//!
//! Needs node, `tests/browser/node_modules` and chromium, like `wallboard_browser.rs`;
//! skipped without them outside CI.

mod browser_common;
mod process_common;

use browser_common::{browser_check_ready, browser_dir};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use process_common::{Api, free_port, switchyard, tenant_with_admin_key};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_esl::sim::{DtmfScript, InboundCall, Scenario, SimConfig, SimHandle};

const DID: &str = "+15550100100";

/// The servers' warnings, errors and stop reports (see `serve_on`).
static SERVE_NOTES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// `serve` on `db` listening on `port` (the same one after the restart: the page reconnects
/// where it was); the process once `/readyz` says ready.
async fn serve_on(db: &str, port: u16, esl: &str, outbound: &str, key: &str) -> (Child, Api) {
    let mut child = switchyard()
        .args(["serve", "--database-url", db])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--esl", esl, "--outbound-listen", outbound])
        .args(["--rate-per-sec", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let stderr = child.stderr.take().unwrap();
    // Drained so serve never blocks on a full pipe (printed with SERVE_LOG set); its warnings
    // and its stop are kept (the last 200) for the message of a failed check.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if std::env::var_os("SERVE_LOG").is_some() {
                eprintln!("serve: {line}");
            }
            if (line.contains("WARN") || line.contains("ERROR") || line.contains("driver stop"))
                && let Ok(mut kept) = SERVE_NOTES.lock()
            {
                if kept.len() >= 200 {
                    kept.remove(0);
                }
                kept.push(line);
            }
        }
    });
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
        key: key.to_owned(),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = api.http.get(format!("{}/readyz", api.base)).send().await
            && r.status() == 200
        {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("serve exited before it was ready: {status}");
        }
        assert!(Instant::now() < deadline, "serve never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, api)
}

/// SIGINT (graceful stop), then waits for the process to end.
async fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not stop within 30 s of SIGINT");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn fake_switch() -> (SimHandle, String, String) {
    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl_addr = esl.local_addr().unwrap().to_string();
    let outbound = format!("127.0.0.1:{}", free_port());
    let switch = switchyard_esl::sim::spawn(
        esl,
        SimConfig {
            inbound_target: Some(outbound.clone()),
            scenario: Scenario::default(),
            ..SimConfig::default()
        }
        .for_this_run(),
        5,
    );
    (switch, esl_addr, outbound)
}

/// A queue, one agent (on a break) and a number whose flow goes to the queue.
async fn contact_center(api: &Api) -> (i64, i64) {
    let q = api
        .ok(
            Method::POST,
            "/v1/queues",
            Some(json!({"name": "sales", "config": {}})),
        )
        .await;
    let queue = q["id"].as_i64().unwrap();
    let a = api
        .ok(
            Method::POST,
            "/v1/agents",
            Some(json!({"name": "Ana", "config": {"contact": "user/1000"}})),
        )
        .await;
    let agent = a["id"].as_i64().unwrap();
    api.ok(
        Method::POST,
        &format!("/v1/queues/{queue}/members"),
        Some(json!({"agent_id": agent})),
    )
    .await;
    let f = api
        .ok(
            Method::POST,
            "/v1/flows",
            Some(json!({"name": "front door", "config": {
                "steps": [{"kind": "queue", "id": "sales", "queue": queue.to_string()}],
                "fallback": {"queue": queue.to_string()}
            }})),
        )
        .await;
    api.ok(
        Method::POST,
        "/v1/numbers",
        Some(json!({"number": DID, "flow": f["id"]})),
    )
    .await;
    set_state(api, agent, json!({"state": "on-break", "reason": "lunch"})).await;
    (queue, agent)
}

async fn set_state(api: &Api, agent: i64, body: Value) {
    api.ok(
        Method::PUT,
        &format!("/v1/agents/{agent}/state"),
        Some(body),
    )
    .await;
}

async fn place(switch: &SimHandle, number: &str, patience: Option<Duration>) {
    switch
        .place_scripted_call(
            InboundCall {
                caller_number: number.into(),
                destination: DID.into(),
                patience,
                talk_time: Some(Duration::from_secs(2)),
                ..InboundCall::default()
            },
            DtmfScript::new(Vec::new()).unwrap(),
        )
        .await
        .expect("the fake switch places the call");
}

/// The calls of the day as the history shows them: (handled, abandoned).
async fn history(api: &Api) -> (usize, usize) {
    let v = api.ok(Method::GET, "/v1/calls?limit=100", None).await;
    let calls = v["calls"].as_array().cloned().unwrap_or_default();
    let of = |o: &str| calls.iter().filter(|c| c["outcome"] == o).count();
    (of("answered"), of("abandoned"))
}

/// One caller gives up while the only agent is on a break; the agent comes back and the
/// next caller is answered, talks 2 s and hangs up (no wrap-up: handled at once).
async fn one_abandoned_one_handled(api: &Api, switch: &SimHandle, agent: i64) {
    place(switch, "5557770001", Some(Duration::from_secs(2))).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while history(api).await.1 < 1 {
        assert!(Instant::now() < deadline, "the caller never abandoned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    set_state(api, agent, json!({"state": "available"})).await;
    place(switch, "5557770002", None).await;
    while history(api).await.0 < 1 {
        assert!(
            Instant::now() < deadline,
            "the second caller was never handled"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Lines(mpsc::Receiver<Value>);

impl Lines {
    fn step(&self, step: &str, within: Duration) -> Value {
        let v = self
            .0
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("the browser check said nothing of {step}: {e}"));
        assert_eq!(
            v["step"], step,
            "the browser check failed before {step}: {v}"
        );
        v
    }
}

async fn step(lines: Lines, name: &'static str) -> (Lines, Value) {
    tokio::task::spawn_blocking(move || {
        let v = lines.step(name, Duration::from_secs(60));
        (lines, v)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_and_restarted_server_shows_the_same_figures_of_the_day() {
    if browser_check_ready().is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!(
        "switchyard-wallboard-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    let key = tenant_with_admin_key(&db);
    let (switch, esl, outbound) = fake_switch().await;
    let port = free_port();
    let (first, api) = serve_on(&db, port, &esl, &outbound, &key).await;
    let started = std::time::SystemTime::now();
    let (_queue, agent) = contact_center(&api).await;
    let token = api
        .ok(
            Method::POST,
            "/v1/display-tokens",
            Some(json!({"name": "floor TV", "expires_in_s": 3600})),
        )
        .await["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wallboard-restart.png");
    let mut child = Command::new("node")
        .arg("wallboard_restart.mjs")
        .arg(&api.base)
        .arg(&token)
        .arg(&screenshot)
        .current_dir(browser_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting node");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            println!("browser check: {line}");
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    let (lines, _) = step(Lines(rx), "ready").await;

    one_abandoned_one_handled(&api, &switch, agent).await;
    writeln!(stdin, "expect 1 1").unwrap();
    let (lines, before) = step(lines, "before").await;
    assert_eq!(
        (&before["handled"], &before["abandoned"]),
        (&json!("1"), &json!("1"))
    );

    let slot = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() / 900_000
    };
    let started_slot = slot(started);
    stop(first).await;
    // Stopped in the interval the calls were counted in: nothing of it is in an interval
    // row, so the figures can only come back from what the stop filed.
    let pool = sqlx::SqlitePool::connect(&db).await.expect("the database");
    let carried: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM interval_checkpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM interval_stats")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    println!("at the stop: {carried} saved open intervals, {rows} interval rows");
    if slot(std::time::SystemTime::now()) == started_slot {
        assert!(
            carried >= 1,
            "the stop filed the open interval; serve said: {:#?}",
            SERVE_NOTES.lock().map(|n| n.clone()).unwrap_or_default()
        );
        assert_eq!(rows, 0, "no interval closed while the test ran");
    }
    writeln!(stdin, "down").unwrap();
    let (lines, _) = step(lines, "banner").await;
    let (second, api) = serve_on(&db, port, &esl, &outbound, &key).await;
    writeln!(stdin, "up").unwrap();
    let result = tokio::task::spawn_blocking(move || {
        lines
            .0
            .recv_timeout(Duration::from_secs(90))
            .expect("the result")
    })
    .await
    .unwrap();
    let status = child.wait().expect("node ends");
    assert!(status.success(), "the browser check failed: {result}");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["after"], result["before"], "{result}");
    assert_eq!(history(&api).await, (1, 1));
    println!(
        "figures back {} ms after the restart; screenshot {}",
        result["figures_after_ms"],
        screenshot.display()
    );
    stop(second).await;
    switch.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The queue's open interval as the engine counts it: (its start, offered, answered,
/// abandoned, handled).
async fn open_interval(api: &Api, queue: i64) -> (i64, [i64; 4]) {
    let v = api
        .ok(Method::GET, &format!("/v1/queues/{queue}/stats"), None)
        .await;
    let i = &v["interval"];
    let n = |k: &str| i[k].as_i64().unwrap_or(-1);
    (
        v["interval_start_unix_ms"].as_i64().unwrap(),
        [n("offered"), n("answered"), n("abandoned"), n("handled")],
    )
}

/// The interval's counts wherever they are now: in the engine's open interval if it is still
/// open, else in its stored row (the test's one queue).
async fn counted(api: &Api, db: &str, queue: i64, start: i64) -> [i64; 4] {
    let (open_start, open) = open_interval(api, queue).await;
    if open_start == start {
        return open;
    }
    let pool = sqlx::SqlitePool::connect(db).await.expect("the database");
    let figures: String = sqlx::query_scalar(
        "SELECT figures FROM interval_stats WHERE scope_kind = 'queue' AND start_ms = $1",
    )
    .bind(start)
    .fetch_one(&pool)
    .await
    .expect("the passed interval's row");
    pool.close().await;
    let f: Value = serde_json::from_str(&figures).unwrap();
    let n = |k: &str| f[k].as_i64().unwrap_or(-1);
    [n("offered"), n("answered"), n("abandoned"), n("handled")]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_9_loses_none_of_the_open_intervals_calls_and_a_restart_counts_them_once() {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-interval-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    let key = tenant_with_admin_key(&db);
    let (switch, esl, outbound) = fake_switch().await;
    let port = free_port();
    let (mut first, api) = serve_on(&db, port, &esl, &outbound, &key).await;
    let (queue, agent) = contact_center(&api).await;
    one_abandoned_one_handled(&api, &switch, agent).await;
    let (start, before) = open_interval(&api, queue).await;
    assert_eq!(before[2..], [1, 1], "abandoned, handled: {before:?}");

    // Killed once a checkpoint newer than the last call is saved (every 5 s).
    let counted_by = switchyard_api::store::now_ms();
    let pool = sqlx::SqlitePool::connect(&db).await.expect("the database");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let saved: Option<i64> =
            sqlx::query_scalar("SELECT MAX(saved_at) FROM interval_checkpoints")
                .fetch_one(&pool)
                .await
                .unwrap();
        if saved.is_some_and(|at| at > counted_by) {
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint was saved");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pool.close().await;
    first.kill().expect("kill -9");
    first.wait().unwrap();

    let (second, api) = serve_on(&db, port, &esl, &outbound, &key).await;
    assert_eq!(
        counted(&api, &db, queue, start).await,
        before,
        "after the kill; serve said: {:#?}",
        SERVE_NOTES.lock().map(|n| n.clone()).unwrap_or_default()
    );
    // A graceful restart after that: once each, not twice.
    stop(second).await;
    let (third, api) = serve_on(&db, port, &esl, &outbound, &key).await;
    assert_eq!(counted(&api, &db, queue, start).await, before);
    let pool = sqlx::SqlitePool::connect(&db).await.expect("the database");
    let saved: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM interval_checkpoints")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(
        saved, 1,
        "each start takes the earlier runs' checkpoints over"
    );
    stop(third).await;
    switch.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
