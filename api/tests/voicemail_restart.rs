//! `switchyard serve` killed (-9) while a caller is leaving a voicemail message, then started
//! again on the same database: the message's row, written before `record` was sent, is closed
//! from the file FreeSWITCH finished writing meanwhile, stored, and listed in its box.

mod process_common;

use std::time::{Duration, Instant};

use process_common::{Api, free_port, serve_with, tenant_with_admin_key};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_esl::sim::{AfterMessage, DtmfScript, InboundCall, SimConfig};

/// The first WAV in `dir` once it is there (the fake writes a message at its end).
async fn message_file(dir: &std::path::Path, within: Duration) -> std::path::PathBuf {
    let deadline = Instant::now() + within;
    loop {
        let found = std::fs::read_dir(dir).ok().and_then(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "wav"))
        });
        if let Some(p) = found {
            return p;
        }
        assert!(Instant::now() < deadline, "no message in {}", dir.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_while_a_message_is_left_loses_no_message() {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-voicemail-restart-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    let key = tenant_with_admin_key(&db);

    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl_addr = esl.local_addr().unwrap().to_string();
    let outbound = format!("127.0.0.1:{}", free_port());
    let switch = switchyard_esl::sim::spawn(
        esl,
        SimConfig {
            inbound_target: Some(outbound.clone()),
            ..SimConfig::default()
        }
        .for_this_run(),
        23,
    );
    let files = dir.join("switch");
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[recording]\ndir = \"{}\"\nswitch_path = \"{}/{{file}}\"\nswitch_files = \"{}\"\n\
             [recording.storage]\nkind = \"local\"\ndir = \"{}\"\n",
            dir.join("live").display(),
            files.display(),
            files.display(),
            dir.join("store").display(),
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
    // Nobody answers billing: after 1 s the caller hears its box's greeting.
    let billing = api
        .ok(
            Method::POST,
            "/v1/queues",
            Some(json!({"name": "billing", "config": {
                "numbers": ["5000"], "max_wait_s": 1.0, "on_timeout": {"to": "mailbox"}
            }})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let said = Duration::from_secs(8);
    let script = DtmfScript::new(Vec::new())
        .unwrap()
        .with_message(said, AfterMessage::HangUp)
        .unwrap();
    switch
        .place_scripted_call(
            InboundCall {
                caller_number: "+15550100".into(),
                destination: "5000".into(),
                ..InboundCall::default()
            },
            script,
        )
        .await
        .expect("a caller");
    // 1 s in the queue, the greeting and the tone (about 3 s in the fake): well into the
    // message, whose open row was kept before `record` went out.
    tokio::time::sleep(Duration::from_secs(7)).await;
    first.signal("KILL");
    // FreeSWITCH goes on recording: the caller finishes, the file is written.
    message_file(&files, Duration::from_secs(20)).await;

    let (_second, base) = serve_with(&db, &esl_addr, &outbound, &args).await;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key,
    };
    api.wait_ready(Duration::from_secs(30)).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let message = loop {
        let list = api.ok(Method::GET, "/v1/voicemail", None).await;
        if let Some(m) = list["voicemail"].as_array().and_then(|l| l.first()) {
            break m.clone();
        }
        assert!(Instant::now() < deadline, "the message was lost: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(message["mailbox"], json!({"queue": billing}), "{message}");
    let ms = message["duration_ms"].as_i64().unwrap_or(0);
    assert!(
        (ms - 8000).abs() <= 150,
        "the whole message, closed from its file: {message}"
    );
    // Stored: its audio plays.
    let url = message["media_url"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (st, _): (u16, Value) = api.call(Method::GET, &url, None).await;
        if st == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the message's audio never played"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    switch.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
