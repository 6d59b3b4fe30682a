//! The binary as a user runs it: `switchyard demo` with no setup, and the admin commands.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn switchyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An admin command on `db`: whether it succeeded, its stdout and its stderr.
fn admin(db: &str, args: &[&str]) -> (bool, String, String) {
    let out = switchyard()
        .args(args)
        .args(["--database-url", db])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "switchyard-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `switchyard demo` on `db` with `calls_per_minute` inbound callers: the running process,
/// its base URL and the admin key its banner printed.
async fn start_demo(db: &std::path::Path, calls_per_minute: &str) -> (Kill, String, String) {
    let mut child = switchyard()
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--calls-per-minute",
            calls_per_minute,
            "--database",
        ])
        .arg(db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().unwrap();
    let guard = Kill(child);
    // The banner: the base URL, then "API key: <key>".
    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(2)
            .map(|l| l.unwrap())
            .collect()
    })
    .await
    .unwrap();
    let base = lines[0]
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("a base URL")
        .to_owned();
    let key = lines[1]
        .strip_prefix("API key: ")
        .expect("the key line")
        .trim()
        .to_owned();
    (guard, base, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_with_no_setup_and_serves_live_traffic() {
    let dir = temp_dir("demo");
    let (_guard, base, key) = start_demo(&dir.join("demo.db"), "120").await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).bearer_auth(&key).send();
    // The wallboard the banner's third line names is served, as a page under its own CSP.
    let page = http.get(format!("{base}/wallboard")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("/web/assets/wallboard.js")
    );
    let queues: serde_json::Value = get("/v1/queues").await.unwrap().json().await.unwrap();
    let names: Vec<&str> = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|q| q["name"].as_str())
        .collect();
    assert_eq!(names, vec!["sales", "support", "outbound"]);
    let agents: serde_json::Value = get("/v1/agents").await.unwrap().json().await.unwrap();
    assert_eq!(agents["agents"].as_array().unwrap().len(), 26);
    // Callers arrive, are answered by the fake switch's agents, and end as records.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let calls: serde_json::Value = get("/v1/calls?limit=5")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if calls["calls"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["outcome"] == "answered"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no answered call recorded: {calls}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The seeded campaign (agents on persistent lines) connects persons once started.
    let campaigns: serde_json::Value = get("/v1/campaigns").await.unwrap().json().await.unwrap();
    let campaign = campaigns["campaigns"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "demo-outbound"))
        .unwrap_or_else(|| panic!("the demo campaign: {campaigns}"))["id"]
        .as_i64()
        .unwrap();
    let started = http
        .post(format!("{base}/v1/campaigns/{campaign}/start"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert!(started.status().is_success(), "{}", started.status());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats: serde_json::Value = get(&format!("/v1/campaigns/{campaign}/stats"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if stats["connected"].as_u64().unwrap_or(0) >= 1 {
            assert_eq!(stats["pacing"], "customer-first", "{stats}");
            break;
        }
        assert!(Instant::now() < deadline, "no person connected: {stats}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    std::fs::remove_dir_all(&dir).ok();
}

/// The calls the demo at `base` has recorded (newest first, at most 500).
async fn recorded_calls(http: &reqwest::Client, base: &str, key: &str) -> Vec<serde_json::Value> {
    let page: serde_json::Value = http
        .get(format!("{base}/v1/calls?limit=500"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["calls"].as_array().cloned().unwrap_or_default()
}

/// Waits until the demo at `base` has recorded at least `n` calls; returns them.
async fn wait_for_calls(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    n: usize,
) -> Vec<serde_json::Value> {
    wait_for_calls_that(http, base, key, n, |_| true).await
}

/// Waits until the demo at `base` has recorded at least `n` calls that `keep`; returns every
/// call recorded.
async fn wait_for_calls_that(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    n: usize,
    keep: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let calls = recorded_calls(http, base, key).await;
        if calls.iter().filter(|c| keep(c)).count() >= n {
            return calls;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} calls recorded",
            calls.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// An unlabelled series of `/metrics`.
async fn metric(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok()).flatten()
    })
}

/// That two runs of one seed share no uuid is `fakeswitch_cli`'s
/// `two_runs_of_one_seed_share_no_channel_uuid` (the demo builds its switch the same way); here
/// the demo's own traffic at this rate interleaves differently each run, so it is checked only
/// that nothing collided or was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_demo_on_its_database_loses_no_record_and_stamps_the_real_clock() {
    let dir = temp_dir("demo-again");
    let db = dir.join("demo.db");
    let http = reqwest::Client::new();
    // The first run: a few calls recorded, then the process is killed.
    let first = {
        let (_guard, base, key) = start_demo(&db, "600").await;
        wait_for_calls(&http, &base, &key, 5).await
    };
    // The second run on the same database replays the same traffic (one scenario seed). The
    // calls the first run left under way are closed as lost when it starts (no CDR); five of
    // its own calls are waited for.
    let second_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (_guard, base, key) = start_demo(&db, "600").await;
    let own = |c: &serde_json::Value| {
        c["synthetic"] != true && c["arrived_at_ms"].as_i64().is_some_and(|t| t >= second_ms)
    };
    let calls = wait_for_calls_that(&http, &base, &key, 5, own).await;
    // The engine's gauges are refreshed every 5 s: read them after a refresh that saw these.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        metric(&http, &base, "switchyard_records_duplicate").await,
        Some(0.0),
        "no record of the second run collided with the first run's"
    );
    assert_eq!(
        metric(&http, &base, "switchyard_records_dropped").await,
        Some(0.0)
    );
    // The switch's own stamps (the CDRs') are today's, not a fixed date.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let first_ids: Vec<&serde_json::Value> = first.iter().map(|c| &c["id"]).collect();
    let mut checked = 0;
    for c in calls
        .iter()
        .filter(|c| !first_ids.contains(&&c["id"]) && own(c))
        .take(5)
    {
        let detail: serde_json::Value = http
            .get(format!("{base}/v1/calls/{}", c["id"].as_str().unwrap()))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for cdr in detail["cdrs"].as_array().into_iter().flatten() {
            let started = cdr["started_at_ms"].as_i64().unwrap();
            assert!(
                (now_ms - started).abs() < 10 * 60 * 1000,
                "a CDR stamped {started}, now is {now_ms}: {cdr}"
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no CDR to check in {calls:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn admin_commands_create_a_tenant_and_print_a_key_once() {
    let dir = temp_dir("admin");
    let db = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    let run = |args: &[&str]| admin(&db, args);
    let (ok, _, err) = run(&["migrate"]);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&["tenant", "create", "acme"]);
    assert!(ok, "{err}");
    assert!(out.contains("\"name\":\"acme\""), "{out}");
    let (ok, _, err) = run(&["tenant", "create", "acme"]);
    assert!(
        !ok && err.contains("already exists"),
        "a duplicate is refused: {err}"
    );
    let (ok, out, err) = run(&["apikey", "create", "--tenant", "acme", "--role", "admin"]);
    assert!(ok, "{err}");
    let key = out.trim().strip_prefix("API key: ").expect("the key line");
    assert!(key.starts_with("sy_") && key.len() == 67, "{key}");
    let (ok, _, err) = run(&["apikey", "create", "--tenant", "nope", "--role", "admin"]);
    assert!(!ok && err.contains("--tenant"), "{err}");
    let (ok, _, err) = run(&["apikey", "create", "--role", "boss"]);
    assert!(!ok && err.contains("--role"), "{err}");
    let (ok, out, err) = run(&["apikey", "create", "--role", "platform-admin"]);
    assert!(ok && out.starts_with("API key: sy_"), "{err}");
    // Agent keys act for one of the tenant's agents, and only they name one.
    for args in [
        &["apikey", "create", "--tenant", "acme", "--role", "agent"][..],
        &[
            "apikey", "create", "--tenant", "acme", "--role", "agent", "--agent", "7",
        ],
        &[
            "apikey", "create", "--tenant", "acme", "--role", "admin", "--agent", "7",
        ],
    ] {
        let (ok, out, err) = run(args);
        assert!(
            !ok && err.contains("--agent") && out.is_empty(),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_narrowed_under_stored_rows_are_reported_by_the_cli_and_by_migrate() {
    let dir = temp_dir("grants");
    let db = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    let run = |args: &[&str]| admin(&db, args);
    assert!(run(&["migrate"]).0);
    assert!(run(&["tenant", "create", "acme"]).0);
    let lab = r#"{"agent_endpoints": ["user/{ext}"], "gateways": ["carrier"]}"#;
    let (ok, out, err) = run(&["tenant", "grants", "acme", lab]);
    assert!(ok, "{err}");
    assert!(out.contains(r#""outside":[]"#), "{out}");
    // Grants that could carry dial-string syntax are refused, naming the entry.
    let (ok, _, err) = run(&["tenant", "grants", "acme", r#"{"gateways": ["a,b"]}"#]);
    assert!(!ok && err.contains("gateways[0]"), "{err}");
    // An agent stored under the wide grants (as the API stores it).
    let store = switchyard_api::store::Store::connect(&db).await.unwrap();
    let tenant = store.tenant_by_name("acme").await.unwrap().unwrap();
    let audit = switchyard_api::store::AuditEntry {
        tenant: Some(tenant.id),
        key_id: None,
        action: "agent.create",
        object_kind: "agent",
        object_id: String::new(),
        detail: serde_json::Value::Null,
    };
    store
        .create_agent(
            tenant.id,
            "Ana",
            serde_json::json!({"contact": "user/1000"}),
            &audit,
        )
        .await
        .unwrap();
    let narrow = r#"{"agent_endpoints": ["user/{ext}@acme.example.com"]}"#;
    let (ok, out, err) = run(&["tenant", "grants", "acme", narrow]);
    assert!(ok, "{err}");
    assert!(
        out.contains(r#""kind":"agent""#) && out.contains(r#""field":"contact""#),
        "{out}"
    );
    // An upgrade shows what it stopped dialling: one JSON line per row.
    let (ok, out, err) = run(&["migrate"]);
    assert!(ok, "{err}");
    let line: serde_json::Value = serde_json::from_str(out.lines().next().expect("a report line"))
        .unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(line["tenant"], "acme");
    assert_eq!(line["kind"], "agent");
    assert_eq!(line["name"], "Ana");
    assert_eq!(line["field"], "contact");
    assert_eq!(line["disabled"], true);
    std::fs::remove_dir_all(&dir).ok();
}
