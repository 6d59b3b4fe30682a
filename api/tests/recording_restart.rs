//! `switchyard serve` killed (-9) while a call is being recorded live, then started again on
//! the same database against a fake switch that lives on: the recording the kill cut off is
//! closed from what its file holds, and the rest of the conversation, taken over by the new
//! process, is recorded anew. And killed while its recordings wait in the spool for an S3 that
//! is down: the next process uploads every one once S3 is back.

mod process_common;

#[path = "../../media/tests/moto/mod.rs"]
mod moto;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_while_recordings_wait_for_a_down_s3_loses_none_and_the_restart_uploads_them() {
    let Some(moto_bin) = moto::Moto::binary() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!(
        "switchyard-recording-spool-restart-{}",
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
        22,
    );
    // S3 is down until after the kill: reached through a cut relay, which holds its port all
    // along (a port picked now and bound by moto later could be taken meanwhile).
    let moto = moto::Moto::start(&moto_bin, moto::free_port()).await;
    moto.create_bucket("calls").await;
    let relay = moto::relay::Relay::start(moto.port).await;
    relay.cut();
    let s3_port = relay.port;
    let files = dir.join("switch");
    let config = dir.join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[recording]\nswitch_path = \"{files}/{{file}}\"\nswitch_files = \"{files}\"\n\n\
             [recording.storage]\nkind = \"s3\"\nbucket = \"calls\"\nregion = \"us-east-1\"\n\
             endpoint = \"http://127.0.0.1:{s3_port}\"\nallow_http = true\n\
             access_key_id = \"test\"\nsecret_access_key = \"test\"\n",
            files = files.display(),
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
                "recording": {"policy": "always", "capture": "switch"}
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
    let store = switchyard_api::store::Store::connect(&db).await.unwrap();
    let mut spooled = Vec::new();
    for n in 0..2 {
        let leg = switch
            .place_inbound_call(InboundCall {
                caller_number: format!("+1555010{n}"),
                caller_name: "Caller".into(),
                destination: "5000".into(),
                patience: None,
                talk_time: Some(Duration::from_secs(2)),
                dtmf: None,
            })
            .await
            .expect("a caller");
        let deadline = Instant::now() + Duration::from_secs(30);
        let id: uuid::Uuid = loop {
            let list = recordings(&api, &leg).await;
            if let Some(r) = list.first().filter(|r| r["status"] == "completed") {
                break r["id"].as_str().unwrap().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "never recorded: {list:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        // Its upload has failed at least once: it waits, whole, in the spool.
        let deadline = Instant::now() + Duration::from_secs(30);
        let row = loop {
            let row = store.recording_object_any(id).await.unwrap();
            if let Some(row) = row.filter(|r| r.attempts >= 1) {
                break row;
            }
            assert!(Instant::now() < deadline, "{id}: no failed upload counted");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(
            row.state,
            switchyard_api::store::ObjectState::Spooled,
            "{row:?}"
        );
        let bytes = std::fs::read(&row.spool_path).unwrap();
        spooled.push((id, bytes));
    }
    first.signal("KILL");

    // S3 comes back, then switchyard: the new process takes up the spool.
    relay.restore();
    let (_second, base) = serve_with(&db, &esl_addr, &outbound, &args).await;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key,
    };
    api.wait_ready(Duration::from_secs(30)).await;
    for (id, bytes) in &spooled {
        let deadline = Instant::now() + Duration::from_secs(60);
        let row = loop {
            let row = store.recording_object_any(*id).await.unwrap().unwrap();
            if row.state == switchyard_api::store::ObjectState::Stored {
                break row;
            }
            assert!(Instant::now() < deadline, "never uploaded: {row:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        use sha2::Digest;
        let sha = hex::encode(sha2::Sha256::digest(bytes));
        assert_eq!(row.sha256.as_deref(), Some(sha.as_str()), "{row:?}");
        // The uploader removes the spool file just after it marks the row stored.
        let gone = Instant::now() + Duration::from_secs(5);
        while std::path::Path::new(&row.spool_path).exists() {
            assert!(Instant::now() < gone, "spool file kept: {row:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let resp = api
            .http
            .get(format!("{}/v1/recordings/{id}/download", api.base))
            .bearer_auth(&api.key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    store.close().await;
    switch.shutdown().await;
    drop(relay);
    drop(moto);
    let _ = std::fs::remove_dir_all(&dir);
}
