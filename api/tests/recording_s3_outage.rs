//! S3 down for a minute while calls are recorded, on SQLite and PostgreSQL: every recording
//! finished in the outage waits in the spool with its failed attempts counted, nothing is
//! lost, and once S3 is back each is uploaded whole (its SHA-256 and bytes as spooled) and
//! its row says so. The outage is a relay to a real S3-compatible server (moto) that is cut:
//! connections open at the cut are dropped mid-request, new ones are closed at once.

mod recording_common;
mod server_common;
mod store_common;

#[path = "../../media/tests/moto/mod.rs"]
mod moto;

use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};
use switchyard_api::recording_objects::ObjectsConfig;
use switchyard_api::store::ObjectState;
use switchyard_media::storage::{Backoff, S3Config, StorageConfig};
use uuid::Uuid;

use moto::relay::Relay;
use recording_common::*;
use server_common::*;

const POLICY: &str =
    r#"{"numbers": ["5000"], "recording": {"policy": "always", "capture": "switch"}}"#;
/// How long S3 is down: the issue's minute.
const OUTAGE: Duration = Duration::from_secs(60);
/// A call recorded every this often while S3 is down.
const EVERY: Duration = Duration::from_secs(12);

/// The recording of the call on `leg` once it is completed (its file checked).
async fn recording_of(s: &Server, k: &str, leg: &str) -> Uuid {
    let list = poll(s, &format!("/v1/calls/{leg}/recordings"), k, |v| {
        v["recordings"][0]["status"] == "completed"
    })
    .await;
    list["recordings"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_minute_of_s3_down_while_calls_are_recorded_loses_nothing_and_uploads_all_after() {
    let Some(bin) = moto::Moto::binary() else {
        return;
    };
    store_common::each_backend(|store| {
        let bin = bin.clone();
        async move {
            let dir = temp_dir("s3-outage");
            let moto = moto::Moto::start(&bin, moto::free_port()).await;
            moto.create_bucket("calls").await;
            let relay = Relay::start(moto.port).await;
            let mut s3 = S3Config::new("calls");
            s3.region = Some("us-east-1".into());
            s3.endpoint = Some(relay.endpoint());
            s3.access_key_id = Some("test".into());
            s3.secret_access_key = Some("test".into());
            s3.allow_http = true;
            let mut recording = switch_recording(&dir, None);
            recording.objects = ObjectsConfig {
                storage: StorageConfig::S3(s3),
                backoff: Backoff {
                    base: Duration::from_millis(250),
                    max: Duration::from_secs(2),
                },
                ..ObjectsConfig::default()
            };
            let s = Server::start_recording(store, recording).await;
            let (tenant, key) = s.tenant("acme").await;
            let k = key.as_str();

            // Before the outage: stored as usual.
            let config: Value = serde_json::from_str(POLICY).unwrap();
            let (_, _, _, leg) =
                call_talking_to_ana(&s, k, config, Some(Duration::from_secs(2))).await;
            let before = recording_of(&s, k, &leg).await;
            let before_row = stored(&s, tenant, before).await;

            relay.cut();
            let cut = Instant::now();
            let mut during = Vec::new();
            while cut.elapsed() + EVERY < OUTAGE {
                let slot = cut + EVERY * during.len() as u32;
                tokio::time::sleep_until(slot.into()).await;
                let leg = s
                    .switch
                    .as_ref()
                    .unwrap()
                    .place_inbound_call(switchyard_esl::sim::InboundCall {
                        caller_number: format!("+1555000{}", during.len()),
                        caller_name: "Caller".into(),
                        destination: "5000".into(),
                        patience: None,
                        talk_time: Some(Duration::from_secs(2)),
                        dtmf: None,
                    })
                    .await
                    .expect("the fake switch places the call");
                during.push(recording_of(&s, k, &leg).await);
            }
            assert!(during.len() >= 4, "{} calls in the outage", during.len());
            tokio::time::sleep_until((cut + OUTAGE).into()).await;

            // A minute on: each waits in the spool, whole, its failures counted; none stored.
            let mut spooled = Vec::new();
            for id in &during {
                let row = s.store.recording_object(tenant, *id).await.unwrap();
                let row = row.unwrap_or_else(|| panic!("{id} has no storage row"));
                assert_eq!(row.state, ObjectState::Spooled, "{row:?}");
                assert!(row.attempts >= 1 && row.last_error.is_some(), "{row:?}");
                let bytes = std::fs::read(&row.spool_path).unwrap();
                assert!(bytes.len() > 44, "{id}: {} bytes spooled", bytes.len());
                spooled.push((*id, bytes));
            }
            // The first recording's object was stored before the cut and stays so.
            let again = s.store.recording_object(tenant, before).await.unwrap();
            assert_eq!(again.as_ref(), Some(&before_row));

            relay.restore();
            for (id, bytes) in &spooled {
                let row = stored(&s, tenant, *id).await;
                let sha = hex::encode(Sha256::digest(bytes));
                assert_eq!(row.sha256.as_deref(), Some(sha.as_str()), "{row:?}");
                assert_eq!(row.bytes, Some(bytes.len() as i64));
                assert!(row.attempts >= 2, "{row:?}");
                assert!(
                    row.location
                        .as_deref()
                        .is_some_and(|l| l.starts_with("s3://calls/")),
                    "{row:?}"
                );
                assert!(spool_file_removed(&row.spool_path).await, "{row:?}");
                // The object S3 holds is the spooled audio, byte for byte.
                let (st, url) = s
                    .call(
                        "GET",
                        &format!("/v1/recordings/{id}/presigned-url"),
                        Some(k),
                        None,
                    )
                    .await;
                assert_eq!((st, url["kind"].as_str()), (200, Some("s3")), "{url}");
                let fetched = reqwest::get(url["url"].as_str().unwrap()).await.unwrap();
                assert_eq!(fetched.status(), 200);
                assert_eq!(fetched.bytes().await.unwrap().as_ref(), bytes.as_slice());
            }
            println!(
                "S3 down {OUTAGE:?}: {} recordings spooled, all uploaded after",
                spooled.len()
            );
            s.stop().await;
            drop(relay);
            drop(moto);
        }
    })
    .await;
}
