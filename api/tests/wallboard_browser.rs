//! The wallboard in a real browser: headless Chromium (the Debian `chromium` binary, driven by
//! playwright-core from `tests/browser`) opens `/wallboard` as served by switchyard, signs in
//! with a display token typed into the page's form and follows the live feed. A caller placed
//! on the fake switch shows as waiting in its queue within a second and leaves when an agent
//! answers; the display session cannot act (403); when the feed goes down the page says its
//! figures may be stale; a screenshot of the board with the caller waiting is saved under
//! `target/tmp/`. The browser side is `tests/browser/wallboard.mjs`;
//! the two talk in lines (see the script).
//!
//! Needs `node`, `tests/browser/node_modules` (`npm ci --prefix tests/browser`) and chromium
//! (`/usr/bin/chromium` or `$SWITCHYARD_CHROMIUM`); without them the test is skipped, except
//! under CI (`CI` set), where it fails.

mod browser_common;
mod server_common;

use browser_common::{browser_check_ready, browser_dir};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::store::Store;
use switchyard_esl::sim::{DtmfScript, InboundCall};

const DID: &str = "+15550100100";

/// The script has its own 90 s deadline; this one is for a node that hangs before it.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(120);

/// From placing the caller to the page showing it: the bound.
const SHOWN_WITHIN: Duration = Duration::from_secs(1);

/// A queue with one agent (on a break) and a number whose flow goes to the queue.
async fn contact_center(s: &Server, key: &str) -> (i64, i64) {
    let (st, q) = s
        .call(
            "POST",
            "/v1/queues",
            Some(key),
            Some(json!({"name": "sales", "config": {}})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    let queue = q["id"].as_i64().unwrap();
    let agent = s.agent(key, "Ana", "user/1000").await;
    let (st, m) = s
        .call(
            "POST",
            &format!("/v1/queues/{queue}/members"),
            Some(key),
            Some(json!({"agent_id": agent})),
        )
        .await;
    assert!((200..300).contains(&st), "{m}");
    let (st, f) = s
        .call(
            "POST",
            "/v1/flows",
            Some(key),
            Some(json!({"name": "front door", "config": {
                "steps": [{"kind": "queue", "id": "sales", "queue": queue.to_string()}],
                "fallback": {"queue": queue.to_string()}
            }})),
        )
        .await;
    assert_eq!(st, 201, "{f}");
    let (st, n) = s
        .call(
            "POST",
            "/v1/numbers",
            Some(key),
            Some(json!({"number": DID, "flow": f["id"]})),
        )
        .await;
    assert_eq!(st, 201, "{n}");
    // On a break until the test says otherwise, so the caller waits.
    let (st, a) = s
        .call(
            "PUT",
            &format!("/v1/agents/{agent}/state"),
            Some(key),
            Some(json!({"state": "on-break", "reason": "lunch"})),
        )
        .await;
    assert_eq!(st, 200, "{a}");
    (queue, agent)
}

/// The script's stdout, a JSON line at a time (other lines are printed and skipped).
struct Lines(mpsc::Receiver<Value>);

impl Lines {
    fn next(&self, what: &str, within: Duration) -> Value {
        match self.0.recv_timeout(within) {
            Ok(v) => v,
            Err(e) => panic!("the browser check said nothing of {what} within {within:?}: {e}"),
        }
    }

    fn step(&self, step: &str, within: Duration) {
        let v = self.next(step, within);
        assert_eq!(
            v["step"], step,
            "the browser check failed before {step}: {v}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_shows_on_the_wallboard_within_a_second_and_leaves_when_answered() {
    if browser_check_ready().is_none() {
        return;
    }
    // SQLite alone: the pages and the feed are the same on both backends (web_sessions.rs
    // covers the sessions on both), and this test is about what a browser does.
    let store = Store::sqlite_memory().await.expect("in-memory sqlite");
    store.migrate().await.expect("sqlite migrations");
    let s = Server::start(store).await;
    let (_tenant, admin) = s.tenant("acme").await;
    let (queue, agent) = contact_center(&s, &admin).await;
    let (st, created) = s
        .call(
            "POST",
            "/v1/display-tokens",
            Some(&admin),
            Some(json!({"name": "floor TV", "expires_in_s": 3600})),
        )
        .await;
    assert_eq!(st, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wallboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut child = Command::new("node")
        .arg("wallboard.mjs")
        .arg(&s.base)
        .arg(&token)
        .arg(queue.to_string())
        .arg(&screenshot)
        .current_dir(browser_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting node");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    // A thread reads the script's output so it can never block on a full pipe.
    let reader = std::thread::spawn(move || {
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
    let lines = Lines(rx);
    let started = Instant::now();

    let lines = tokio::task::spawn_blocking(move || {
        lines.step("ready", SCRIPT_DEADLINE);
        lines
    })
    .await
    .unwrap();

    // The caller: placed, and the time from here to the page showing it measured here (the
    // pipe's own latency counts against the bound, never for it).
    let placed = Instant::now();
    s.switch
        .as_ref()
        .unwrap()
        .place_scripted_call(
            InboundCall {
                caller_number: "5557770001".into(),
                destination: DID.into(),
                talk_time: Some(Duration::from_secs(30)),
                ..InboundCall::default()
            },
            DtmfScript::new(Vec::new()).unwrap(),
        )
        .await
        .expect("the fake switch places the call");
    writeln!(stdin, "placed").unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        lines.step("seen", Duration::from_secs(20));
        lines
    })
    .await
    .unwrap();
    let shown_after = placed.elapsed();
    println!("the caller showed on the wallboard {shown_after:?} after it was placed");
    assert!(
        shown_after <= SHOWN_WITHIN,
        "the caller took {shown_after:?} to show (bound {SHOWN_WITHIN:?})"
    );

    let lines = tokio::task::spawn_blocking(move || {
        lines.step("shot", Duration::from_secs(20));
        lines
    })
    .await
    .unwrap();

    // An agent becomes available and takes the call: it leaves the board.
    let (st, a) = s
        .call(
            "PUT",
            &format!("/v1/agents/{agent}/state"),
            Some(&admin),
            Some(json!({"state": "available"})),
        )
        .await;
    assert_eq!(st, 200, "{a}");
    writeln!(stdin, "answered").unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        lines.step("left", Duration::from_secs(30));
        lines
    })
    .await
    .unwrap();
    // The live feed goes away (as at a shutdown: streams end, new ones get 503).
    s.rt.hub.close();
    writeln!(stdin, "feed-down").unwrap();
    let (lines, result) = tokio::task::spawn_blocking(move || {
        let result = lines.next("the result", Duration::from_secs(30));
        (lines, result)
    })
    .await
    .unwrap();
    drop(lines);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for node") {
            break status;
        }
        if started.elapsed() > SCRIPT_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser check did not finish within {SCRIPT_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = reader.join();
    println!("wallboard screenshot: {}", screenshot.display());
    assert!(status.success(), "the browser check failed: {result}");
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["failures"], json!([]), "{result}");

    // The script's verdict, and the facts it reports checked again here.
    // Page weight and time to the live figures, for README (figures, not assertions of speed).
    let load = &result["load"];
    println!(
        "wallboard load: first contentful paint {} ms, live figures drawn {} ms after navigation, {} bytes in {} files",
        load["first_contentful_paint_ms"],
        load["live_figures_ms"],
        load["page_bytes"],
        load["files"]
    );
    assert!(
        load["page_bytes"].as_u64().unwrap_or(0) > 10_000,
        "{result}"
    );
    assert!(load["files"].as_u64().unwrap_or(0) >= 4, "{result}");
    assert!(
        load["live_figures_ms"].as_f64().unwrap_or(0.0) > 0.0,
        "{result}"
    );
    assert_eq!(result["waiting_before"], 0, "{result}");
    assert_eq!(result["total_waiting_seen"], "1", "{result}");
    assert_eq!(result["total_waiting_after"], "0", "{result}");
    assert_eq!(result["longest_ticked"], true, "{result}");
    assert_eq!(
        result["longest_level"], "ok",
        "a wait of seconds is green: {result}"
    );
    // With thresholds a few seconds past the wait, the same wait went green, amber, red.
    assert_eq!(result["levels"], json!(["ok", "amber", "red"]), "{result}");
    assert!(
        result["queue_cell_class"]
            .as_str()
            .unwrap()
            .contains("level-red"),
        "{result}"
    );
    assert_eq!(result["feed_state"], "stale", "{result}");
    assert!(
        result["banner_after_ms"].as_u64().unwrap() < 5_000,
        "the stale banner took too long: {result}"
    );
    assert_eq!(result["action"]["status"], 403, "{result}");
    assert_eq!(result["action"]["code"], "read_only", "{result}");
    assert!(
        result["roster_states"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "on-call"),
        "the agent who took the call is on it: {result}"
    );
    let csp = result["csp"].as_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is not a PNG"
    );
    // A blank page compresses to well under this; the board with its tiles does not.
    assert!(
        png.len() > 20_000,
        "the screenshot is only {} bytes",
        png.len()
    );
    s.stop().await;
}

/// A browser script started with `args`: its stdin, its JSON lines, and the process.
fn start_script(
    script: &str,
    args: &[String],
) -> (std::process::Child, std::process::ChildStdin, Lines) {
    let mut child = Command::new("node")
        .arg(script)
        .args(args)
        .current_dir(browser_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting node");
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
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
    (child, stdin, Lines(rx))
}

/// Waits (off the runtime's threads) for the script's next step.
async fn step(lines: Lines, name: &'static str) -> Lines {
    tokio::task::spawn_blocking(move || {
        lines.step(name, Duration::from_secs(30));
        lines
    })
    .await
    .unwrap()
}

/// Whether the engine itself has the queue (shown id) paused.
async fn engine_paused(s: &Server, shown: i64) -> bool {
    let id =
        s.rt.ids
            .decode(switchyard_api::ids::IdKind::Queue, shown)
            .expect("a queue id of ours");
    let q = switchyard_engine::QueueId(u32::try_from(id).unwrap());
    s.rt.engine
        .query(move |e| e.queue_config(q).map(|c| c.paused))
        .await
        .unwrap()
        .expect("the engine runs the queue")
}

async fn place_waiting_caller(s: &Server, number: &str) {
    s.switch
        .as_ref()
        .unwrap()
        .place_scripted_call(
            InboundCall {
                caller_number: number.into(),
                destination: DID.into(),
                talk_time: Some(Duration::from_secs(30)),
                ..InboundCall::default()
            },
            DtmfScript::new(Vec::new()).unwrap(),
        )
        .await
        .expect("the fake switch places the call");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_supervisor_pauses_a_queue_sets_states_and_sees_tiles_turn_at_stored_thresholds() {
    if browser_check_ready().is_none() {
        return;
    }
    let store = Store::sqlite_memory().await.expect("in-memory sqlite");
    store.migrate().await.expect("sqlite migrations");
    let s = Server::start(store).await;
    let (_tenant, admin) = s.tenant("acme").await;
    let (queue, agent) = contact_center(&s, &admin).await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for f in ["wallboard-1080p.png", "wallboard-laptop.png"] {
        let _ = std::fs::remove_file(shots.join(f));
    }
    let (mut child, mut stdin, lines) = start_script(
        "wallboard_actions.mjs",
        &[
            s.base.clone(),
            admin.clone(),
            queue.to_string(),
            agent.to_string(),
            shots.display().to_string(),
        ],
    );
    let lines = tokio::task::spawn_blocking(move || {
        lines.step("ready", SCRIPT_DEADLINE);
        lines
    })
    .await
    .unwrap();
    assert!(!engine_paused(&s, queue).await);

    // Paused from the page: the engine has paused it, and the stored queue says so.
    writeln!(stdin, "pause").unwrap();
    let lines = step(lines, "paused").await;
    assert!(
        engine_paused(&s, queue).await,
        "the engine paused the queue"
    );
    let (st, q) = s
        .call("GET", &format!("/v1/queues/{queue}"), Some(&admin), None)
        .await;
    assert_eq!(st, 200, "{q}");
    assert_eq!(q["config"]["paused"], true, "{q}");

    // Thresholds stored for the tenant (not in the URL): waiting amber at 1, red at 2.
    let (st, body) = s
        .call(
            "PUT",
            "/v1/wallboard/settings",
            Some(&admin),
            Some(json!({"waiting": {"amber_from": 1, "red_from": 2}})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    // A bad one is refused, naming its field.
    let (st, bad) = s
        .call(
            "PUT",
            "/v1/wallboard/settings",
            Some(&admin),
            Some(json!({"service_level_pct": {"amber_below": 70, "red_below": 80}})),
        )
        .await;
    assert_eq!(st, 422, "{bad}");
    assert_eq!(
        bad["error"]["field"], "service_level_pct.red_below",
        "{bad}"
    );
    place_waiting_caller(&s, "5557770001").await;
    writeln!(stdin, "one").unwrap();
    let lines = step(lines, "amber").await;
    place_waiting_caller(&s, "5557770002").await;
    writeln!(stdin, "two").unwrap();
    let lines = step(lines, "red").await;

    writeln!(stdin, "act").unwrap();
    let lines = step(lines, "acted").await;
    let (st, a) = s
        .call("GET", &format!("/v1/agents/{agent}"), Some(&admin), None)
        .await;
    assert_eq!(st, 200, "{a}");
    println!("agent after the page set it available: {a}");

    writeln!(stdin, "resume").unwrap();
    let (lines, result) = tokio::task::spawn_blocking(move || {
        let result = lines.next("the result", Duration::from_secs(60));
        (lines, result)
    })
    .await
    .unwrap();
    drop(lines);
    let status = child.wait().expect("waiting for node");
    assert!(status.success(), "the browser check failed: {result}");
    assert_eq!(result["ok"], true, "{result}");
    assert!(!engine_paused(&s, queue).await, "resumed from the page");
    assert_eq!(
        result["waiting_levels"],
        json!(["amber", "red"]),
        "{result}"
    );
    let pause = result["pause_action"].as_str().unwrap();
    assert!(
        pause.starts_with("POST /v1/queues/") && pause.ends_with(" 200"),
        "{result}"
    );
    assert!(
        result["assign_action"].as_str().unwrap().ends_with(" 409")
            || result["assign_action"].as_str().unwrap().ends_with(" 422"),
        "assigning to an agent on a break is refused: {result}"
    );
    assert!(
        !result["assign_error"].as_str().unwrap().is_empty(),
        "{result}"
    );
    assert!(
        result["state_action"].as_str().unwrap().ends_with(" 200"),
        "{result}"
    );
    // Listen / whisper / barge dial the supervisor's phone typed on the page.
    assert!(
        result["monitor_without_phone"]
            .as_str()
            .unwrap()
            .contains("type your phone"),
        "{result}"
    );
    let monitor = result["monitor_action"].as_str().unwrap();
    assert!(
        monitor.contains("/monitor") && monitor.ends_with(" 202"),
        "{result}"
    );
    for size in ["fit_1080p", "fit_laptop"] {
        let fit = &result[size];
        assert!(
            fit["bottom"].as_f64().unwrap() <= fit["height"].as_f64().unwrap(),
            "the tiles end below the screen at {size}: {fit}"
        );
        assert_eq!(fit["tiles"], 14, "{fit}");
    }
    for f in ["wallboard-1080p.png", "wallboard-laptop.png"] {
        let png = std::fs::read(shots.join(f)).expect("the screenshot was written");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{f} is not a PNG");
        println!("wallboard screenshot: {}", shots.join(f).display());
    }
    s.stop().await;
}
