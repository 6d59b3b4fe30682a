//! The agent page in a real browser: headless Chromium (the Debian `chromium` binary, driven by
//! playwright-core from `tests/browser`) opens `/agent` as served by switchyard and signs in
//! with the agent's key typed into its form. The agent goes available from the page, a
//! desktop-preview campaign reserves a contact to it, the page shows the contact's fields, the
//! agent accepts, the fake switch answers the agent's phone and then the customer, the call
//! shows and ends, and the agent saves a disposition with a call-back time from the page: the
//! store has it. Then it signs in again with a sign-in link. A screenshot is saved as
//! `agent.png` under `target/tmp/`. The browser side is `tests/browser/agent.mjs`.
//!
//! Needs `node`, `tests/browser/node_modules` (`npm ci --prefix tests/browser`) and chromium
//! (`/usr/bin/chromium` or `$SWITCHYARD_CHROMIUM`); without them the test is skipped, except
//! under CI (`CI` set), where it fails.

mod browser_common;
#[path = "recording_common/mod.rs"]
mod recording_common;
mod server_common;

use browser_common::{browser_check_ready, browser_dir};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::http::HttpConfig;
use switchyard_api::store::{Pools, Store};

/// The script has its own 100 s deadline; this one is for a node that hangs before it.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(130);

/// A desktop-preview campaign on a new queue whose one member is `agent` (logged out: the
/// page makes it available), one contact with fields; started. Returns the campaign id.
async fn desktop_campaign(s: &Server, admin: &str, agent: i64) -> i64 {
    let (st, q) = s
        .call(
            "POST",
            "/v1/queues",
            Some(admin),
            Some(json!({"name": "outbound"})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    let qid = q["id"].as_i64().unwrap();
    let (st, c) = s
        .call(
            "POST",
            "/v1/campaigns",
            Some(admin),
            Some(json!({"name": "renewals", "config": {
                "queue": qid, "caller_id": "+12015550100", "mode": "preview",
                "preview_accept": "desktop", "preview_timeout_s": 300,
                "dispositions": ["sale", "no-sale", "call-back"],
                "window": {"start": "00:00", "end": "24:00"},
                "recording": {"policy": "always", "capture": "switch"}
            }})),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    let cid = c["id"].as_i64().unwrap();
    let (st, e) = s
        .call(
            "POST",
            &format!("/v1/queues/{qid}/members"),
            Some(admin),
            Some(json!({"agent_id": agent})),
        )
        .await;
    assert_eq!(st, 201, "{e}");
    let (st, r) = s
        .raw(
            "POST",
            &format!("/v1/campaigns/{cid}/contacts"),
            admin,
            "text/csv",
            b"phone,name,plan\n+12015550123,Jane Roe,gold\n".to_vec(),
        )
        .await;
    assert_eq!((st, &r["accepted"]), (200, &json!(1)), "{r}");
    let (st, e) = s
        .call(
            "POST",
            &format!("/v1/campaigns/{cid}/start"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(st, 200, "{e}");
    cid
}

/// Runs the script to its end; its last JSON line.
async fn run_script(args: Vec<String>) -> (bool, Value) {
    let child = Command::new("node")
        .arg("agent.mjs")
        .args(&args)
        .current_dir(browser_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting node");
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .expect("node ran");
    assert!(
        started.elapsed() < SCRIPT_DEADLINE,
        "the browser check overran"
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("browser check: {text}");
    let last = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or(Value::Null);
    (out.status.success(), last)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_takes_a_desktop_preview_and_disposes_it_from_the_page() {
    if browser_check_ready().is_none() {
        return;
    }
    // SQLite alone: the pages and the feed are the same on both backends (agent_preview.rs
    // covers the preview routes on both), and this test is about what a browser does.
    let store = Store::sqlite_memory().await.expect("in-memory sqlite");
    store.migrate().await.expect("sqlite migrations");
    // The customer talks 8 s, then hangs up: the call ends while the page watches. The
    // campaign records its calls (on the switch, to a scratch directory).
    let mut scenario = switchyard_esl::sim::Scenario::default();
    scenario.customers.talk_time = Some(switchyard_esl::sim::Dist::Fixed(8.0));
    let dir = recording_common::temp_dir("agent-page");
    let s = Server::start_full(
        store.clone(),
        HttpConfig {
            rate_per_sec: 0,
            ..HttpConfig::default()
        },
        scenario,
        recording_common::switch_recording(&dir, None),
    )
    .await;
    let (tenant, admin) = s.tenant("acme").await;
    let ana = s.agent(&admin, "Ana", "user/1000").await;
    let desk = s.agent_key(tenant, ana).await;
    let cid = desktop_campaign(&s, &admin, ana).await;
    let link = sign_in_link(&s, &admin, ana).await;

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("agent.png");
    let _ = std::fs::remove_file(&screenshot);
    let (ok, result) = run_script(vec![
        s.base.clone(),
        desk.clone(),
        link.clone(),
        screenshot.display().to_string(),
    ])
    .await;
    println!("agent screenshot: {}", screenshot.display());
    assert!(ok, "the browser check failed: {result}");
    assert_eq!(result["failures"], json!([]), "{result}");

    // What the page showed.
    assert_eq!(result["preview"]["campaign"], "renewals", "{result}");
    assert_eq!(result["preview"]["number"], "+12015550123", "{result}");
    assert_eq!(
        result["preview"]["fields"],
        json!({"name": "Jane Roe", "plan": "gold"}),
        "{result}"
    );
    assert_eq!(result["state_while_reserved"], "reserved", "{result}");
    assert_eq!(result["call"]["number"], "+12015550123", "{result}");
    assert_eq!(result["call"]["queue"], "outbound", "{result}");
    assert_eq!(result["call"]["campaign"], "renewals", "{result}");
    assert_eq!(result["preview_hidden_on_call"], true, "{result}");
    // The recording was paused and resumed from the page.
    assert_eq!(
        result["recording_states"],
        json!(["recording", "paused", "recording"]),
        "{result}"
    );
    assert_eq!(
        result["disposition_codes"],
        json!(["sale", "no-sale", "call-back"]),
        "{result}"
    );
    // Every write carried the CSRF token (the script fails otherwise): state, accept,
    // disposition at least.
    let paths: Vec<&str> = result["writes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["path"].as_str())
        .collect();
    let call = result["disposed_call"].as_str().unwrap().to_owned();
    assert!(
        paths.contains(&format!("/v1/agents/{ana}/state").as_str())
            && paths.contains(&format!("/v1/calls/{call}/preview/accept").as_str())
            && paths.contains(&format!("/v1/calls/{call}/recording").as_str())
            && paths.contains(&format!("/v1/calls/{call}/disposition").as_str()),
        "{paths:?}"
    );

    // The store has the disposition with its call-back time, by Ana.
    let callback_ms = unix_ms_of(&result["callback_iso"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = stored_dispositions(&store).await;
        if !rows.is_empty() {
            assert_eq!(
                rows,
                vec![(
                    Some(s.stored_agent(ana)),
                    "call-back".to_owned(),
                    Some(callback_ms)
                )]
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the disposition was never stored"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And the audit log, through the API, says who disposed which call.
    let (st, page) = s
        .call(
            "GET",
            "/v1/audit?action=call.disposition",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, 200, "{page}");
    let entry = &page["entries"][0];
    assert_eq!(entry["object_id"], json!(call), "{page}");
    assert_eq!(entry["detail"]["code"], "call-back", "{page}");
    assert_eq!(entry["detail"]["retry_at_ms"], json!(callback_ms), "{page}");
    let _ = cid;

    {
        // Signed in again with the link: the code left the address bar, the agent is Ana,
        // and the same link in another tab is refused.
        assert_eq!(result["link"]["history_has_code"], false, "{result}");
        assert!(
            !result["link"]["url_after"]
                .as_str()
                .unwrap()
                .contains("code="),
            "{result}"
        );
        assert!(
            result["link"]["who"]
                .as_str()
                .unwrap()
                .contains(&format!("agent {ana}")),
            "{result}"
        );
        assert_eq!(result["link_again"]["panel_visible"], false, "{result}");
        assert!(
            result["link_again"]["error"]
                .as_str()
                .unwrap()
                .contains("Sign-in link"),
            "{result}"
        );
    }
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "the screenshot is only {} bytes",
        png.len()
    );
    s.stop().await;
}

/// A sign-in link for `agent`, made by an admin through the API.
async fn sign_in_link(s: &Server, admin: &str, agent: i64) -> String {
    let (st, l) = s
        .call(
            "POST",
            &format!("/v1/agents/{agent}/sign-in-links"),
            Some(admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 201, "{l}");
    format!("{}{}", s.base, l["url"].as_str().unwrap())
}

/// The dispositions table's `(agent_id, code, retry_at)` rows, read behind the store's back.
async fn stored_dispositions(store: &Store) -> Vec<(Option<i64>, String, Option<i64>)> {
    let sql = "SELECT agent_id, code, retry_at FROM dispositions ORDER BY id";
    match store.pools() {
        Pools::Sqlite { reader, .. } => sqlx::query_as(sql).fetch_all(reader).await,
        Pools::Postgres(pg) => sqlx::query_as(sql).fetch_all(pg).await,
    }
    .expect("read dispositions")
}

/// The ISO instant the page computed for its call-back, in Unix ms.
fn unix_ms_of(v: &Value) -> i64 {
    v.as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond())
        .expect("an ISO instant")
}
