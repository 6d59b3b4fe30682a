//! `switchyard serve` as a process whose only FreeSWITCH is down when it starts: it serves
//! the API, says it is not ready (naming the switch, not how it failed), connects in the
//! background once the switch is up, and then routes calls.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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

/// A loopback port nobody listens on (the OS picked it free a moment ago).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs an admin command against `db`; its stdout.
fn admin(db: &str, args: &[&str]) -> String {
    let out = switchyard()
        .args(args)
        .args(["--database-url", db])
        .output()
        .expect("run an admin command");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the API answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn readyz(&self) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .expect("the API answers");
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_with_its_only_switch_down_and_routes_calls_once_it_comes_up() {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-switch-down-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    admin(&db, &["migrate"]);
    admin(&db, &["tenant", "create", "acme"]);
    let key = admin(
        &db,
        &["apikey", "create", "--tenant", "acme", "--role", "admin"],
    );
    let key = key
        .trim()
        .strip_prefix("API key: ")
        .expect("the key line")
        .to_owned();

    let esl_port = free_port();
    let outbound = format!("127.0.0.1:{}", free_port());
    let mut child = switchyard()
        .args(["serve", "--database-url", &db, "--listen", "127.0.0.1:0"])
        .args(["--esl", &format!("127.0.0.1:{esl_port}")])
        .args(["--outbound-listen", &outbound])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let stderr = child.stderr.take().unwrap();
    let guard = Kill(child);
    // "switchyard: API on http://127.0.0.1:N, ..." once the API listens; the whole stderr
    // if serve exits first (as it did when no node answered at start).
    let base = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                return Ok(url.trim_end_matches(',').to_owned());
            }
            seen.push(line);
        }
        Err(seen.join("\n"))
    })
    .await
    .unwrap()
    .unwrap_or_else(|stderr| panic!("serve exited without serving the API:\n{stderr}"));
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key,
    };

    // Up, not ready, and the answer names the dependency without its address or error.
    let health = api.http.get(format!("{}/healthz", api.base)).send().await;
    assert_eq!(health.unwrap().status().as_u16(), 200);
    let (status, body) = api.readyz().await;
    assert_eq!(status, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["checks"]["freeswitch"], "failed", "{body}");
    assert_eq!(v["checks"]["database"], "ok", "{body}");
    assert_eq!(v["error"]["message"], "not ready: freeswitch", "{body}");
    assert!(!body.contains(&esl_port.to_string()), "{body}");

    // Configuration works meanwhile: a queue on 5000 and an available agent.
    use reqwest::Method;
    let (st, q) = api
        .call(
            Method::POST,
            "/v1/queues",
            Some(json!({"name": "sales", "config": {"numbers": ["5000"]}})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    let qid = q["id"].as_i64().unwrap();
    let (st, a) = api
        .call(
            Method::POST,
            "/v1/agents",
            Some(json!({"name": "Ana", "config": {"contact": "user/1000"}})),
        )
        .await;
    assert_eq!(st, 201, "{a}");
    let aid = a["id"].as_i64().unwrap();
    let (st, m) = api
        .call(
            Method::POST,
            &format!("/v1/queues/{qid}/members"),
            Some(json!({"agent_id": aid})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    let (st, s) = api
        .call(
            Method::PUT,
            &format!("/v1/agents/{aid}/state"),
            Some(json!({"state": "available"})),
        )
        .await;
    assert_eq!(st, 200, "{s}");

    // The switch comes up on the port serve was told about.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", esl_port))
        .await
        .expect("the switch's port is still free");
    let switch = switchyard_esl::sim::spawn(
        listener,
        switchyard_esl::sim::SimConfig {
            inbound_target: Some(outbound.clone()),
            ..switchyard_esl::sim::SimConfig::default()
        },
        5,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api.readyz().await;
        if status == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["checks"]["freeswitch"], "ok", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A caller reaches the agent and the call is recorded as answered.
    let leg = switch
        .place_inbound_call(switchyard_esl::sim::InboundCall {
            caller_number: "5551234".into(),
            caller_name: "Caller".into(),
            destination: "5000".into(),
            patience: None,
            talk_time: Some(Duration::from_millis(500)),
            dtmf: None,
        })
        .await
        .expect("the fake switch places the call");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, call) = api
            .call(Method::GET, &format!("/v1/calls/{leg}"), None)
            .await;
        if st == 200 && call["outcome"] == "answered" {
            assert_eq!(call["agent_id"], aid, "{call}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the call was not answered: {st} {call}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(guard);
    switch.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}
