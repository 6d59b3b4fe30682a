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

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "switchyard-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_with_no_setup_and_serves_live_traffic() {
    let dir = temp_dir("demo");
    let mut child = switchyard()
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--calls-per-minute",
            "120",
            "--database",
        ])
        .arg(dir.join("demo.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().unwrap();
    let _guard = Kill(child);
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
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).bearer_auth(&key).send();
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

#[test]
fn admin_commands_create_a_tenant_and_print_a_key_once() {
    let dir = temp_dir("admin");
    let db = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    let run = |args: &[&str]| {
        let out = switchyard()
            .args(args)
            .args(["--database-url", &db])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
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
