//! `switchyard` as a process: the admin commands, `serve` on a database and a fake switch run
//! by the test, and the API it serves. The process-level tests (a switch down at start, kill -9
//! and restart) share these.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn switchyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct Kill(pub Child);

impl Kill {
    /// Sends `signal` (`KILL`, `INT`...) and waits for the process to end.
    pub fn signal(mut self, signal: &str) {
        let pid = self.0.id().to_string();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        let _ = self.0.wait();
    }
}

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port nobody listens on (the OS picked it free a moment ago).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs an admin command against `db`; its stdout.
pub fn admin(db: &str, args: &[&str]) -> String {
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

/// Migrates `db`, creates tenant `acme` and returns an admin key of it.
pub fn tenant_with_admin_key(db: &str) -> String {
    admin(db, &["migrate"]);
    admin(db, &["tenant", "create", "acme"]);
    let lab = serde_json::to_string(&switchyard_api::grants::DialGrants::lab()).unwrap();
    admin(db, &["tenant", "grants", "acme", &lab]);
    let key = admin(
        db,
        &["apikey", "create", "--tenant", "acme", "--role", "admin"],
    );
    key.trim()
        .strip_prefix("API key: ")
        .expect("the key line")
        .to_owned()
}

/// Starts `serve` on `db` against the switch at `esl`, callers connecting to `outbound`;
/// returns the process and the API's base URL once it listens.
pub async fn serve(db: &str, esl: &str, outbound: &str) -> (Kill, String) {
    serve_with(db, esl, outbound, &[]).await
}

/// [`serve`] with more arguments (`--config <file>`).
pub async fn serve_with(db: &str, esl: &str, outbound: &str, more: &[&str]) -> (Kill, String) {
    let mut child = switchyard()
        .args(["serve", "--database-url", db, "--listen", "127.0.0.1:0"])
        .args(more)
        .args(["--esl", esl])
        .args(["--outbound-listen", outbound])
        // The tests read every record they made: no per-key rate limit.
        .args(["--rate-per-sec", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let stderr = child.stderr.take().unwrap();
    let guard = Kill(child);
    // "switchyard: API on http://127.0.0.1:N, ..." once the API listens; the whole stderr if
    // serve exits first. The rest of stderr is drained so the process never blocks on it.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if std::env::var_os("SERVE_LOG").is_some() {
                eprintln!("serve: {line}");
            }
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://"))
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(Ok(url.trim_end_matches(',').to_owned()));
            }
            if tx.is_some() {
                seen.push(line);
            }
        }
        if let Some(tx) = tx.take() {
            let _ = tx.send(Err(seen.join("\n")));
        }
    });
    let base = rx
        .await
        .expect("the stderr reader answers")
        .unwrap_or_else(|stderr| panic!("serve exited without serving the API:\n{stderr}"));
    (guard, base)
}

/// [`serve`], then waits until `/readyz` says ready; the API with `key`.
pub async fn serve_ready(db: &str, esl: &str, outbound: &str, key: &str) -> (Kill, Api) {
    let (process, base) = serve(db, esl, outbound).await;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key: key.to_owned(),
    };
    api.wait_ready(Duration::from_secs(30)).await;
    (process, api)
}

pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Api {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
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

    /// A request that must succeed; its body.
    pub async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (st, v) = self.call(method.clone(), path, body).await;
        assert!((200..300).contains(&st), "{method} {path}: {st} {v}");
        v
    }

    pub async fn readyz(&self) -> (u16, String) {
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

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let (status, body) = self.readyz().await;
            if status == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "never ready: {status} {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
