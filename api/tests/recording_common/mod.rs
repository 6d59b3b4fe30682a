//! What the recording tests share: a server recording on the fake switch's `uuid_record`
//! into a temporary directory, and a call talking to an agent.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_api::recording_objects::ObjectsConfig;
use switchyard_api::runtime::Recording;
use switchyard_engine::driver::RecordingSetup;
use switchyard_media::storage::StorageConfig;

use crate::server_common::Server;

/// Switch recordings (`uuid_record`, which the fake switch writes on this host) land in `dir`.
pub fn switch_recording(dir: &std::path::Path, upload_token: Option<&str>) -> Recording {
    Recording {
        capture: RecordingSetup {
            switch_path: format!("{}/{{file}}", dir.display()),
            switch_files: dir.to_path_buf(),
            switch_file_wait: Duration::from_secs(5),
            ..RecordingSetup::default()
        },
        upload_token: upload_token.map(str::to_owned),
        objects: ObjectsConfig {
            storage: StorageConfig::Local {
                dir: dir.join("store"),
            },
            ..ObjectsConfig::default()
        },
        voicemail: Default::default(),
    }
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "switchyard-recording-api-{name}-{}-{n}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn poll(s: &Server, path: &str, key: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..750 {
        let (st, v) = s.call("GET", path, Some(key), None).await;
        if st == 200 && done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{path} never became what was waited for");
}

/// A queue `sales` on 5000 with `config`, agents Ana (user/1000, available) and Bo
/// (user/1001, not yet), both members, and a caller talking to Ana for `talk` (or until hung
/// up): the queue's id, Ana's, Bo's, and the call's id.
pub async fn call_talking_to_ana(
    s: &Server,
    k: &str,
    config: Value,
    talk: Option<Duration>,
) -> (i64, i64, i64, String) {
    let (st, q) = s
        .call(
            "POST",
            "/v1/queues",
            Some(k),
            Some(json!({"name": "sales", "config": config})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    let qid = q["id"].as_i64().unwrap();
    let ana = s.agent(k, "Ana", "user/1000").await;
    let bo = s.agent(k, "Bo", "user/1001").await;
    for a in [ana, bo] {
        let (st, e) = s
            .call(
                "POST",
                &format!("/v1/queues/{qid}/members"),
                Some(k),
                Some(json!({"agent_id": a})),
            )
            .await;
        assert!(st == 200 || st == 201, "{st} {e}");
    }
    available(s, k, ana).await;
    let leg = s
        .switch
        .as_ref()
        .unwrap()
        .place_inbound_call(switchyard_esl::sim::InboundCall {
            caller_number: "+15551234".into(),
            caller_name: "Caller".into(),
            destination: "5000".into(),
            patience: None,
            talk_time: talk,
            dtmf: None,
        })
        .await
        .expect("the fake switch places the call");
    poll(s, &format!("/v1/calls/{leg}"), k, |v| {
        v["phase"] == "talking"
    })
    .await;
    (qid, ana, bo, leg)
}

pub async fn available(s: &Server, k: &str, agent: i64) {
    let (st, e) = s
        .call(
            "PUT",
            &format!("/v1/agents/{agent}/state"),
            Some(k),
            Some(json!({"state": "available"})),
        )
        .await;
    assert_eq!(st, 200, "{e}");
}

/// The recording's storage row once it says stored (within 30 s).
pub async fn stored(
    s: &Server,
    tenant: switchyard_api::model::TenantId,
    id: uuid::Uuid,
) -> switchyard_api::store::ObjectRow {
    for _ in 0..1500 {
        if let Some(row) = s.store.recording_object(tenant, id).await.unwrap()
            && row.state == switchyard_api::store::ObjectState::Stored
        {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("recording {id} was never stored");
}

/// Whether the spool file at `path` is removed within 5 s: the uploader removes it just after
/// it marks the row stored.
pub async fn spool_file_removed(path: &str) -> bool {
    for _ in 0..250 {
        if !std::path::Path::new(path).exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
