//! The operator's commands as processes: tenants and keys listed, disabled and revoked on the
//! database (SQLite always, PostgreSQL when DATABASE_URL is set), and what `serve` logs.

#[path = "process_common/mod.rs"]
mod process_common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use process_common::{Kill, admin, free_port, switchyard};
use serde_json::Value;
use switchyard_api::store::{KeyCheck, Store, now_ms};

/// A fresh SQLite file, and the PostgreSQL test database when DATABASE_URL is set.
fn databases(tag: &str) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-{tag}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut urls = vec![format!("sqlite://{}?mode=rwc", dir.join("t.db").display())];
    if let Ok(pg) = std::env::var("DATABASE_URL") {
        urls.push(pg);
    }
    urls
}

/// One JSON object a line.
fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

async fn check(db: &str, key: &str) -> KeyCheck {
    let store = Store::connect(db).await.unwrap();
    store.check_api_key(key, now_ms()).await.unwrap()
}

#[tokio::test]
async fn tenant_list_disable_enable_and_apikey_list_revoke_act_on_the_database() {
    for db in databases("admin") {
        // Unique names: the PostgreSQL database is shared with other tests.
        let name = format!("t{}", uuid::Uuid::new_v4().simple());
        admin(&db, &["migrate"]);
        admin(&db, &["tenant", "create", &name]);
        let key = admin(
            &db,
            &["apikey", "create", "--tenant", &name, "--role", "admin"],
        );
        let key = key.trim().strip_prefix("API key: ").unwrap().to_owned();

        let tenants = json_lines(&admin(&db, &["tenant", "list"]));
        let mine = tenants.iter().find(|t| t["name"] == name.as_str()).unwrap();
        assert_eq!(mine["disabled"], false);
        let keys = json_lines(&admin(&db, &["apikey", "list", "--tenant", &name]));
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_eq!(keys[0]["role"], "admin");
        assert_eq!(keys[0]["revoked_at_ms"], Value::Null);
        assert!(key.contains(keys[0]["prefix"].as_str().unwrap()));
        assert!(!keys[0].to_string().contains(&key), "never the key itself");
        let id = keys[0]["id"].as_str().unwrap().to_owned();

        // Disabled: the key is refused as a disabled tenant's (not as a bad key).
        let out = json_lines(&admin(&db, &["tenant", "disable", &name]));
        assert_eq!(out[0]["disabled"], true);
        let tenants = json_lines(&admin(&db, &["tenant", "list"]));
        let mine = tenants.iter().find(|t| t["name"] == name.as_str()).unwrap();
        assert_eq!(mine["disabled"], true);
        assert!(matches!(
            check(&db, &key).await,
            KeyCheck::TenantDisabled(_)
        ));
        admin(&db, &["tenant", "enable", &name]);
        assert!(matches!(check(&db, &key).await, KeyCheck::Valid { .. }));

        // Revoked: refused for good, listed with its revocation time.
        let out = json_lines(&admin(&db, &["apikey", "revoke", &id, "--tenant", &name]));
        assert_eq!(out[0]["revoked"], true);
        assert_eq!(check(&db, &key).await, KeyCheck::Invalid);
        let keys = json_lines(&admin(&db, &["apikey", "list", "--tenant", &name]));
        assert!(keys[0]["revoked_at_ms"].is_i64(), "{keys:?}");
    }
}

#[test]
fn revoking_an_unknown_key_or_disabling_an_unknown_tenant_fails_and_says_which_argument() {
    for db in databases("admin-bad") {
        admin(&db, &["migrate"]);
        let id = uuid::Uuid::new_v4().to_string();
        for (args, says) in [
            (
                vec!["apikey", "revoke", id.as_str()],
                "ID: no platform-admin key",
            ),
            (
                vec!["tenant", "disable", "no-such-tenant"],
                "NAME: no tenant named",
            ),
            (
                vec!["apikey", "list", "--tenant", "no-such-tenant"],
                "--tenant: no tenant named",
            ),
        ] {
            let out = switchyard()
                .args(&args)
                .args(["--database-url", &db])
                .output()
                .unwrap();
            assert!(!out.status.success(), "{args:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(says), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn an_api_key_file_is_read_and_a_missing_key_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("switchyard-key-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("c.csv");
    std::fs::write(&csv, "phone\n+12025550100\n").unwrap();
    let import = |extra: &[&str]| {
        switchyard()
            .args(["contacts", "import", "--campaign", "1", "--url"])
            // Nobody listens there: a key that was read gets as far as connecting.
            .arg(format!("http://127.0.0.1:{}", free_port()))
            .args(extra)
            .arg(&csv)
            .env_remove("SWITCHYARD_API_KEY")
            .output()
            .unwrap()
    };
    let out = import(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("SWITCHYARD_API_KEY"), "{stderr}");
    let file = dir.join("key");
    std::fs::write(&file, "sy_from_a_file\n").unwrap();
    let out = import(&["--api-key-file", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sending to"), "the key was read: {stderr}");
    assert!(!stderr.contains("sy_from_a_file"), "{stderr}");
}

/// `serve` on a fresh SQLite file with no switch up, `env` added; the stderr lines up to and
/// including the one that says it serves the API.
fn serve_lines(env: &[(&str, &str)]) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("switchyard-log-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
    let mut child = switchyard()
        .args(["serve", "--database-url", &db, "--listen", "127.0.0.1:0"])
        .args(["--esl", &format!("127.0.0.1:{}", free_port())])
        .args(["--outbound-listen", &format!("127.0.0.1:{}", free_port())])
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _guard = Kill(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let done = line.contains("serving the API");
            seen.push(line);
            if done {
                break;
            }
        }
        let _ = tx.send(seen);
    });
    let lines = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("serve started");
    assert!(
        lines.last().is_some_and(|l| l.contains("serving the API")),
        "{lines:#?}"
    );
    lines
}

#[test]
fn serve_logs_its_start_at_info_without_colours_when_stderr_is_not_a_terminal() {
    let lines = serve_lines(&[]);
    assert!(
        lines.iter().any(|l| l.contains("API on http://")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains(" INFO ")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains('\u{1b}')), "{lines:#?}");
}

#[test]
fn serve_logs_one_json_object_a_line_when_asked() {
    let lines = serve_lines(&[("SWITCHYARD_LOG_FORMAT", "json")]);
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
    }
    let serving: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(serving["level"], "INFO");
    assert!(
        serving["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{serving}"
    );
}
