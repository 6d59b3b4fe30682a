//! `switchyard serve` killed (-9) while a call is being recorded live, then started again on
//! the same database against a fake switch that lives on: the recording the kill cut off is
//! closed from what its file holds, and the rest of the conversation, taken over by the new
//! process, is recorded anew.

mod process_common;

use std::time::{Duration, Instant};

use process_common::{Api, free_port, serve_with, tenant_with_admin_key};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_esl::sim::{Dist, InboundCall, Scenario, SimConfig};

/// The live recorder's file of this run, once it holds more than `bytes`.
async fn growing_file(dir: &std::path::Path, bytes: u64, within: Duration) -> std::path::PathBuf {
    let deadline = Instant::now() + within;
    loop {
        let found = std::fs::read_dir(dir).ok().and_then(|entries| {
            entries.flatten().map(|e| e.path()).find(|p| {
                p.extension().is_some_and(|x| x == "wav")
                    && std::fs::metadata(p).is_ok_and(|m| m.len() > bytes)
            })
        });
        if let Some(p) = found {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "no recording grew in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn recordings(api: &Api, leg: &str) -> Vec<Value> {
    api.ok(Method::GET, &format!("/v1/calls/{leg}/recordings"), None)
        .await["recordings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_while_recording_leaves_a_closed_recording_and_the_rest_of_the_call_recorded() {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-recording-restart-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    let key = tenant_with_admin_key(&db);

    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl_addr = esl.local_addr().unwrap().to_string();
    let outbound = format!("127.0.0.1:{}", free_port());
    let mut scenario = Scenario::default();
    scenario.agents.behaviour.answer_delay = Dist::Fixed(0.3);
    scenario.agents.behaviour.talk_time = None;
    let switch = switchyard_esl::sim::spawn(
        esl,
        SimConfig {
            inbound_target: Some(outbound.clone()),
            scenario,
            ..SimConfig::default()
        }
        .for_this_run(),
        21,
    );

    // The endpoint's SIP port stays the same across the restart (as configured in production).
    let sip = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let live = dir.join("live");
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[recording]\nsip = \"{sip}\"\ndir = \"{}\"\nswitch_path = \"{}/{{file}}\"\nswitch_files = \"{}\"\n",
            live.display(),
            dir.join("switch").display(),
            dir.join("switch").display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let args = ["--config", config.as_str()];

    let (first, base) = serve_with(&db, &esl_addr, &outbound, &args).await;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key: key.clone(),
    };
    api.wait_ready(Duration::from_secs(30)).await;
    let q = api
        .ok(
            Method::POST,
            "/v1/queues",
            Some(json!({"name": "sales", "config": {
                "numbers": ["5000"],
                "recording": {"policy": "always"}
            }})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let agent = api
        .ok(
            Method::POST,
            "/v1/agents",
            Some(json!({"name": "ana", "config": {"contact": "user/1000"}})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    api.ok(
        Method::POST,
        &format!("/v1/queues/{q}/members"),
        Some(json!({"agent_id": agent})),
    )
    .await;
    api.ok(
        Method::PUT,
        &format!("/v1/agents/{agent}/state"),
        Some(json!({"state": "available"})),
    )
    .await;
    let leg = switch
        .place_inbound_call(InboundCall {
            caller_number: "+15550100".into(),
            caller_name: "Caller".into(),
            destination: "5000".into(),
            patience: None,
            talk_time: Some(Duration::from_secs(10)),
            dtmf: None,
        })
        .await
        .expect("a caller");
    // Two seconds of stereo audio written (and flushed) before the kill.
    growing_file(&live, 44 + 2 * 32_000, Duration::from_secs(20)).await;
    first.signal("KILL");

    let (_second, base) = serve_with(&db, &esl_addr, &outbound, &args).await;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key,
    };
    api.wait_ready(Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let list = loop {
        let list = recordings(&api, &leg).await;
        let done = list.len() == 2 && list.iter().all(|r| r["status"] != "recording");
        if done {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "recordings never settled: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (cut, rest) = (&list[0], &list[1]);
    assert_eq!(cut["status"], "damaged", "{cut}");
    assert!(
        cut["error"].as_str().unwrap_or("").contains("interrupted"),
        "{cut}"
    );
    assert!(cut["duration_ms"].as_i64().unwrap_or(0) >= 1500, "{cut}");
    assert_eq!(rest["status"], "completed", "{rest}");
    assert_eq!(rest["capture"], "live", "{rest}");
    assert_eq!(rest["agents"], json!([agent]), "{rest}");
    assert!(rest["duration_ms"].as_i64().unwrap_or(0) >= 1000, "{rest}");
    switch.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
