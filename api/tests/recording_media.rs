//! A recording's audio through the API on loopback, on SQLite and PostgreSQL: stored with its
//! SHA-256, played by a signed URL with Range (as a browser's audio element seeks), refused
//! when the URL is expired or tampered with, downloaded, held, deleted and swept by retention;
//! and, against a real S3-compatible server (moto), uploaded after the store was down.

mod process_common;
mod recording_common;
mod server_common;
mod store_common;

#[path = "../../media/tests/moto/mod.rs"]
mod moto;

use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard_api::ids::IdKind;
use switchyard_api::model::Role;
use switchyard_api::recording_objects::ObjectsConfig;
use switchyard_api::store::{ObjectRow, ObjectState};
use switchyard_media::storage::{Backoff, S3Config, StorageConfig};
use uuid::Uuid;

use recording_common::*;
use server_common::*;

const POLICY: &str =
    r#"{"numbers": ["5000"], "recording": {"policy": "always", "capture": "switch"}}"#;

/// A call recorded for `talk` and hung up; its recording's id once its audio is stored.
async fn stored_recording(
    s: &Server,
    k: &str,
    tenant: switchyard_api::model::TenantId,
) -> (Uuid, ObjectRow) {
    let config: Value = serde_json::from_str(POLICY).unwrap();
    let (_, _, _, leg) = call_talking_to_ana(s, k, config, Some(Duration::from_secs(2))).await;
    let list = poll(s, &format!("/v1/calls/{leg}/recordings"), k, |v| {
        v["recordings"][0]["status"] == "completed"
    })
    .await;
    let id: Uuid = list["recordings"][0]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let row = stored(s, tenant, id).await;
    (id, row)
}

async fn get(s: &Server, url: &str, range: Option<&str>) -> reqwest::Response {
    let url = if url.starts_with("http") {
        url.to_owned()
    } else {
        format!("{}{url}", s.base)
    };
    let mut req = s.http.get(url);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_stored_recording_plays_by_a_signed_url_with_range_and_a_bad_url_is_refused() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("media");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let (tenant, key) = s.tenant("acme").await;
        let k = key.as_str();
        let (id, row) = stored_recording(&s, k, tenant).await;

        // The object is the spool file's bytes, its SHA-256 on the row; the spool file is gone.
        let object = dir.join("store").join(&row.object_key);
        let bytes = std::fs::read(&object).unwrap();
        assert_eq!(
            row.sha256.as_deref(),
            Some(hex::encode(Sha256::digest(&bytes)).as_str())
        );
        assert_eq!(row.bytes, Some(bytes.len() as i64));
        assert!(
            spool_file_removed(&row.spool_path).await,
            "spool file removed"
        );

        let (st, url) = s
            .call(
                "GET",
                &format!("/v1/recordings/{id}/presigned-url"),
                Some(k),
                None,
            )
            .await;
        assert_eq!(st, 200, "{url}");
        assert_eq!(url["kind"], "signed");
        let url = url["url"].as_str().unwrap().to_owned();
        // Plain HTTP, no key: exactly the stored bytes.
        let whole = get(&s, &url, None).await;
        assert_eq!(whole.status(), 200);
        assert_eq!(whole.headers()["content-type"], "audio/wav");
        assert_eq!(whole.headers()["accept-ranges"], "bytes");
        assert_eq!(
            whole.headers()["content-length"],
            bytes.len().to_string().as_str()
        );
        assert_eq!(whole.bytes().await.unwrap().as_ref(), bytes.as_slice());
        // A seek: 206 with exactly the slice.
        let part = get(&s, &url, Some("bytes=100-1099")).await;
        assert_eq!(part.status(), 206);
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes 100-1099/{}", bytes.len()).as_str()
        );
        assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[100..1100]);
        // Tampered with: 403, nothing served.
        let tampered = if url.ends_with('0') {
            format!("{}1", &url[..url.len() - 1])
        } else {
            format!("{}0", &url[..url.len() - 1])
        };
        assert_eq!(get(&s, &tampered, None).await.status(), 403);
        let unsigned = format!("/v1/recordings/{id}/audio");
        assert_eq!(
            get(&s, &unsigned, None).await.status(),
            401,
            "no signature at all"
        );
        let later = url.replace("expires=", "expires=9");
        assert_eq!(
            get(&s, &later, None).await.status(),
            403,
            "expiry not signed"
        );
        // Expired.
        let (_, short) = s
            .call(
                "GET",
                &format!("/v1/recordings/{id}/presigned-url?expires_in_s=1"),
                Some(k),
                None,
            )
            .await;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(
            get(&s, short["url"].as_str().unwrap(), None).await.status(),
            403
        );
        let (st, e) = s
            .call(
                "GET",
                &format!("/v1/recordings/{id}/presigned-url?expires_in_s=0"),
                Some(k),
                None,
            )
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some("expires_in_s"))
        );

        // Download: the key's, as an attachment.
        let resp = s
            .http
            .get(format!("{}/v1/recordings/{id}/download", s.base))
            .bearer_auth(k)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        assert_eq!(resp.bytes().await.unwrap().as_ref(), bytes.as_slice());

        // Another tenant sees none of it.
        let (_, other) = s.tenant("other").await;
        for path in [
            format!("/v1/recordings/{id}/presigned-url"),
            format!("/v1/recordings/{id}/download"),
        ] {
            assert_eq!(
                s.call("GET", &path, Some(&other), None).await.0,
                404,
                "{path}"
            );
        }
        assert_eq!(
            s.call(
                "DELETE",
                &format!("/v1/recordings/{id}"),
                Some(&other),
                None
            )
            .await
            .0,
            404
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_held_recording_is_not_deleted_and_a_deletion_is_audited_and_idempotent() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("delete");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let (tenant, key) = s.tenant("acme").await;
        let k = key.as_str();
        let (id, row) = stored_recording(&s, k, tenant).await;
        let object = dir.join("store").join(&row.object_key);
        let hold = format!("/v1/recordings/{id}/legal-hold");
        let (st, e) = s
            .call("PUT", &hold, Some(k), Some(json!({"hold": true})))
            .await;
        assert_eq!(st, 200, "{e}");
        let (st, e) = s
            .call("DELETE", &format!("/v1/recordings/{id}"), Some(k), None)
            .await;
        assert_eq!(st, 409, "{e}");
        assert!(object.exists());
        // Retention passes over it too.
        let (st, _) = s
            .call(
                "PUT",
                "/v1/recording-retention",
                Some(k),
                Some(json!({"days": 1})),
            )
            .await;
        assert_eq!(st, 200);
        let in_a_week = switchyard_api::store::now_ms() + 7 * 86_400_000;
        let swept =
            s.rt.objects
                .sweep_retention(in_a_week, true, 100)
                .await
                .unwrap();
        assert!(swept.is_empty(), "{swept:?}");
        assert!(object.exists());

        s.call("PUT", &hold, Some(k), Some(json!({"hold": false})))
            .await;
        // A dry run lists it and deletes nothing.
        let listed =
            s.rt.objects
                .sweep_retention(in_a_week, false, 100)
                .await
                .unwrap();
        assert_eq!(
            listed.iter().map(|r| r.recording_id).collect::<Vec<_>>(),
            vec![id]
        );
        assert!(object.exists());
        let (st, _) = s
            .call("DELETE", &format!("/v1/recordings/{id}"), Some(k), None)
            .await;
        assert_eq!(st, 204);
        assert!(!object.exists(), "the object is gone");
        let row = s.store.recording_object(tenant, id).await.unwrap().unwrap();
        assert_eq!(row.state, ObjectState::Deleted);
        assert!(row.deleted_at_ms.is_some());
        // Again: the same answer, nothing else happens.
        let (st, _) = s
            .call("DELETE", &format!("/v1/recordings/{id}"), Some(k), None)
            .await;
        assert_eq!(st, 204);
        let (st, _) = s
            .call(
                "GET",
                &format!("/v1/recordings/{id}/presigned-url"),
                Some(k),
                None,
            )
            .await;
        assert_eq!(st, 404, "no audio any more");
        // The metadata stays for the call's history.
        let (st, _) = s
            .call("GET", &format!("/v1/recordings/{id}"), Some(k), None)
            .await;
        assert_eq!(st, 200);
        let (st, log) = s.call("GET", "/v1/audit", Some(k), None).await;
        assert_eq!(st, 200);
        let actions: Vec<&str> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        for a in [
            "recording.legal_hold",
            "recording.legal_hold_lifted",
            "recording.delete",
            "recording.retention",
        ] {
            assert!(actions.contains(&a), "{a} in {actions:?}");
        }
        // Only admins delete or hold.
        let (_, ro) = s
            .store
            .create_api_key(
                Some(tenant),
                switchyard_api::model::Role::Supervisor,
                None,
                "sup",
                None,
                &audit(),
            )
            .await
            .unwrap();
        assert_eq!(
            s.call("PUT", &hold, Some(&ro), Some(json!({"hold": true})))
                .await
                .0,
            403
        );
        assert_eq!(
            s.call("DELETE", &format!("/v1/recordings/{id}"), Some(&ro), None)
                .await
                .0,
            403
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn retention_deletes_recordings_past_it_and_audits_each() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("retention");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let (tenant, key) = s.tenant("acme").await;
        let k = key.as_str();
        let (id, row) = stored_recording(&s, k, tenant).await;
        let object = dir.join("store").join(&row.object_key);
        // No retention: kept.
        let in_a_year = switchyard_api::store::now_ms() + 365 * 86_400_000;
        assert!(
            s.rt.objects
                .sweep_retention(in_a_year, true, 100)
                .await
                .unwrap()
                .is_empty()
        );
        let (st, e) = s
            .call(
                "PUT",
                "/v1/recording-retention",
                Some(k),
                Some(json!({"days": 0})),
            )
            .await;
        assert_eq!((st, e["error"]["field"].as_str()), (422, Some("days")));
        s.call(
            "PUT",
            "/v1/recording-retention",
            Some(k),
            Some(json!({"days": 30})),
        )
        .await;
        let (_, r) = s
            .call("GET", "/v1/recording-retention", Some(k), None)
            .await;
        assert_eq!(r["days"], 30);
        // Not yet 30 days old.
        let now = switchyard_api::store::now_ms();
        assert!(
            s.rt.objects
                .sweep_retention(now, true, 100)
                .await
                .unwrap()
                .is_empty()
        );
        let swept =
            s.rt.objects
                .sweep_retention(in_a_year, true, 100)
                .await
                .unwrap();
        assert_eq!(swept.len(), 1);
        assert!(!object.exists());
        let row = s.store.recording_object(tenant, id).await.unwrap().unwrap();
        assert_eq!(row.state, ObjectState::Deleted);
        let (_, log) = s.call("GET", "/v1/audit", Some(k), None).await;
        assert!(
            log["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "recording.retention_delete"),
            "{log}"
        );
        s.stop().await;
    })
    .await;
}

/// A finished recording row of `days_old` days in a queue and maybe a campaign (store ids),
/// with its audio spooled (a real file, so the uploader stores it): its id.
async fn aged_recording(
    s: &Server,
    tenant: switchyard_api::model::TenantId,
    dir: &std::path::Path,
    days_old: i64,
    queue: i64,
    campaign: Option<i64>,
) -> Uuid {
    heard_recording(s, tenant, dir, days_old, queue, campaign, vec![]).await
}

/// [`aged_recording`] with the agents heard in it (store ids).
async fn heard_recording(
    s: &Server,
    tenant: switchyard_api::model::TenantId,
    dir: &std::path::Path,
    days_old: i64,
    queue: i64,
    campaign: Option<i64>,
    agents: Vec<i64>,
) -> Uuid {
    let id = Uuid::new_v4();
    let started = switchyard_api::store::now_ms() - days_old * 86_400_000;
    let path = dir.join(format!("{id}.wav"));
    std::fs::write(&path, b"RIFF....WAVE").unwrap();
    let row = switchyard_api::store::RecordingRow {
        id,
        tenant,
        call_id: Uuid::new_v4(),
        leg: Uuid::new_v4(),
        queue_id: queue,
        campaign_id: campaign,
        agents,
        caller_number: "+15550001".into(),
        mode: "always".into(),
        capture: "switch".into(),
        fell_back: false,
        stereo: false,
        path: path.display().to_string(),
        started_at_ms: started,
        ended_at_ms: Some(started + 60_000),
        status: "completed".into(),
        error: None,
        duration_ms: Some(60_000),
        sample_rate: Some(8000),
        channels: Some(1),
        bytes: Some(12),
        silence_ratio: Some(0.0),
        spans: json!([]),
        waveform: Value::Null,
        kind: "call".into(),
        mailbox_queue: None,
        mailbox_agent: None,
    };
    s.store
        .insert_recordings(std::slice::from_ref(&row))
        .await
        .unwrap();
    // Spooled and handed to the uploader as the runtime does with a finished recording.
    s.rt.objects.spool(&[row]).await;
    id
}

/// The dry run's answer: the recordings past their retention now, oldest first.
async fn due(s: &Server, k: &str) -> Vec<Uuid> {
    let (st, v) = s
        .call(
            "POST",
            "/v1/recording-retention/sweep",
            Some(k),
            Some(json!({"apply": false})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn a_campaigns_or_a_queues_retention_goes_before_the_tenants_days() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("retention-rules");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let (tenant, key) = s.tenant("acme").await;
        let k = key.as_str();
        let queue = |name: &'static str| {
            let s = &s;
            async move {
                let (st, q) = s
                    .call(
                        "POST",
                        "/v1/queues",
                        Some(k),
                        Some(json!({"name": name, "config": {}})),
                    )
                    .await;
                assert_eq!(st, 201, "{q}");
                q["id"].as_i64().unwrap()
            }
        };
        let (sales, support) = (queue("sales").await, queue("support").await);
        let (st, c) = s
            .call(
                "POST",
                "/v1/campaigns",
                Some(k),
                Some(json!({"name": "spring", "config": {"queue": sales, "caller_id": "+12015550100"}})),
            )
            .await;
        assert_eq!(st, 201, "{c}");
        let spring = c["id"].as_i64().unwrap();
        let ids = &s.rt.ids;
        let stored = |kind, shown| ids.decode(kind, shown).unwrap();
        let (sales_q, support_q) = (
            stored(IdKind::Queue, sales),
            stored(IdKind::Queue, support),
        );
        let spring_c = stored(IdKind::Campaign, spring);
        let support_old = aged_recording(&s, tenant, &dir, 41, support_q, None).await;
        let spring_old = aged_recording(&s, tenant, &dir, 40, sales_q, Some(spring_c)).await;
        let sales_old = aged_recording(&s, tenant, &dir, 39, sales_q, None).await;
        let _support_new = aged_recording(&s, tenant, &dir, 5, support_q, None).await;

        let (st, r) = s
            .call(
                "PUT",
                "/v1/recording-retention",
                Some(k),
                Some(json!({
                    "days": 30,
                    "queues": [{"queue_id": sales, "days": 365}],
                    "campaigns": [{"campaign_id": spring, "days": 10}],
                })),
            )
            .await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(
            r,
            json!({"days": 30, "queues": [{"queue_id": sales, "days": 365}],
                   "campaigns": [{"campaign_id": spring, "days": 10}]})
        );
        // Support's old one by the tenant's 30 days; spring's by its 10 days, although its
        // queue keeps a year; sales' own by its year: kept.
        assert_eq!(due(&s, k).await, vec![support_old, spring_old]);
        let _ = sales_old;

        // Days alone: the rules stay.
        let (st, r) = s
            .call(
                "PUT",
                "/v1/recording-retention",
                Some(k),
                Some(json!({"days": null})),
            )
            .await;
        assert_eq!((st, &r["campaigns"][0]["days"]), (200, &json!(10)), "{r}");
        assert_eq!(due(&s, k).await, vec![spring_old]);
        // An empty list removes that kind's rules, and keeps the other.
        let (_, r) = s
            .call(
                "PUT",
                "/v1/recording-retention",
                Some(k),
                Some(json!({"days": null, "campaigns": []})),
            )
            .await;
        assert_eq!(r["queues"], json!([{"queue_id": sales, "days": 365}]), "{r}");
        assert_eq!(r["campaigns"], json!([]), "{r}");
        assert!(due(&s, k).await.is_empty());

        // Applied: deleted with the rule named in the audit entry.
        s.call(
            "PUT",
            "/v1/recording-retention",
            Some(k),
            Some(json!({"days": null, "campaigns": [{"campaign_id": spring, "days": 10}]})),
        )
        .await;
        let (st, v) = s
            .call(
                "POST",
                "/v1/recording-retention/sweep",
                Some(k),
                Some(json!({"apply": true})),
            )
            .await;
        assert_eq!((st, &v["recordings"]), (200, &json!([spring_old])), "{v}");
        let (_, log) = s.call("GET", "/v1/audit", Some(k), None).await;
        let entry = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "recording.retention_delete")
            .cloned()
            .unwrap_or_else(|| panic!("no retention audit entry: {log}"));
        assert_eq!(
            (&entry["detail"]["rule"], &entry["detail"]["retention_days"]),
            (&json!("campaign"), &json!(10)),
            "{entry}"
        );

        // Refused rules name their field, and change nothing.
        let (_, other) = s.tenant("globex").await;
        let (st, q) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&other),
                Some(json!({"name": "theirs", "config": {}})),
            )
            .await;
        assert_eq!(st, 201, "{q}");
        let theirs = q["id"].as_i64().unwrap();
        let refused = [
            (json!({"days": 30, "queues": [{"queue_id": sales, "days": 0}]}), "queues[0].days"),
            (
                json!({"days": 30, "queues": [{"queue_id": sales, "days": 9}, {"queue_id": sales, "days": 8}]}),
                "queues[1].queue_id",
            ),
            (json!({"days": 30, "queues": [{"queue_id": theirs, "days": 9}]}), "queues[0].queue_id"),
            (json!({"days": 30, "campaigns": [{"campaign_id": 7, "days": 9}]}), "campaigns[0].campaign_id"),
            (json!({"days": 30, "campaigns": [{"campaign_id": spring, "days": 36_501}]}), "campaigns[0].days"),
        ];
        for (body, field) in refused {
            let (st, e) = s
                .call("PUT", "/v1/recording-retention", Some(k), Some(body.clone()))
                .await;
            assert_eq!((st, e["error"]["field"].as_str()), (422, Some(field)), "{body}: {e}");
        }
        let (_, r) = s
            .call("GET", "/v1/recording-retention", Some(k), None)
            .await;
        assert_eq!(
            r,
            json!({"days": null, "queues": [{"queue_id": sales, "days": 365}],
                   "campaigns": [{"campaign_id": spring, "days": 10}]})
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn every_audio_and_retention_route_answers_each_role_and_tenant_as_the_matrix_says() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("matrix");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let (tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let bo = s.agent(&admin, "Bo", "user/1001").await;
        let (ana_s, bo_s) = (s.stored_agent(ana), s.stored_agent(bo));
        // Ana's own, Bo's (another agent's), and one each for the admin's DELETE and hold.
        let own = heard_recording(&s, tenant, &dir, 1, 1, None, vec![ana_s]).await;
        let other = heard_recording(&s, tenant, &dir, 1, 1, None, vec![bo_s]).await;
        let doomed = heard_recording(&s, tenant, &dir, 1, 1, None, vec![ana_s]).await;
        for id in [own, other, doomed] {
            stored(&s, tenant, id).await;
        }
        let (_, globex) = s.tenant("globex").await;
        let keys = [
            ("admin", admin.clone()),
            ("supervisor", s.key(Some(tenant), Role::Supervisor).await),
            ("ana", s.agent_key(tenant, ana).await),
            ("read-only", s.key(Some(tenant), Role::ReadOnly).await),
            ("unbound agent", s.legacy_agent_key(tenant, bo).await),
            ("platform", s.key(None, Role::PlatformAdmin).await),
            ("globex admin", globex),
        ];
        let hold = || Some(json!({"hold": false}));
        let retention = || Some(json!({"days": null}));
        let dry_run = || Some(json!({"apply": false}));
        // (method, path, body, who, status)
        type Body = fn() -> Option<Value>;
        let none: Body = || None;
        let mut matrix: Vec<(&str, String, Body, &str, u16)> = Vec::new();
        for path in [
            format!("/v1/recordings/{own}/presigned-url"),
            format!("/v1/recordings/{own}/download"),
        ] {
            for (who, want) in [
                ("admin", 200),
                ("supervisor", 200),
                ("ana", 200),
                ("read-only", 200),
                ("unbound agent", 404),
                ("platform", 403),
                ("globex admin", 404),
            ] {
                matrix.push(("GET", path.clone(), none, who, want));
            }
            let theirs = path.replace(&own.to_string(), &other.to_string());
            matrix.push(("GET", theirs, none, "ana", 404));
        }
        let hold_path = format!("/v1/recordings/{own}/legal-hold");
        for (who, want) in [
            ("admin", 200),
            ("supervisor", 403),
            ("ana", 403),
            ("read-only", 403),
            ("unbound agent", 403),
            ("platform", 403),
            ("globex admin", 404),
        ] {
            matrix.push(("PUT", hold_path.clone(), hold, who, want));
        }
        for (who, want) in [
            ("admin", 200),
            ("supervisor", 200),
            ("ana", 200),
            ("read-only", 200),
            ("unbound agent", 200),
            ("platform", 403),
            ("globex admin", 200),
        ] {
            matrix.push(("GET", "/v1/recording-retention".into(), none, who, want));
        }
        for (who, want) in [
            ("supervisor", 403),
            ("ana", 403),
            ("read-only", 403),
            ("unbound agent", 403),
            ("platform", 403),
            ("admin", 200),
        ] {
            matrix.push((
                "PUT",
                "/v1/recording-retention".into(),
                retention,
                who,
                want,
            ));
            matrix.push((
                "POST",
                "/v1/recording-retention/sweep".into(),
                dry_run,
                who,
                want,
            ));
        }
        let delete_path = format!("/v1/recordings/{doomed}");
        for (who, want) in [
            ("supervisor", 403),
            ("ana", 403),
            ("read-only", 403),
            ("unbound agent", 403),
            ("platform", 403),
            ("globex admin", 404),
            ("admin", 204),
        ] {
            matrix.push(("DELETE", delete_path.clone(), none, who, want));
        }
        for (method, path, body, who, want) in &matrix {
            let key = &keys
                .iter()
                .find(|(n, _)| n == who)
                .expect("a key of the matrix")
                .1;
            let (st, v) = s.call(method, path, Some(key), body()).await;
            assert_eq!(st, *want, "{method} {path} as {who}: {v}");
        }
        // Another tenant's retention is its own: globex's PUT leaves acme's as it was.
        let globex_key = &keys[6].1;
        s.call(
            "PUT",
            "/v1/recording-retention",
            Some(globex_key),
            Some(json!({"days": 7})),
        )
        .await;
        let (_, mine) = s
            .call("GET", "/v1/recording-retention", Some(&admin), None)
            .await;
        assert_eq!(mine["days"], Value::Null, "{mine}");
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_deletion_cut_off_half_way_is_finished_by_the_next_start() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("half-deleted");
        let s = Server::start_recording(store.clone(), switch_recording(&dir, None)).await;
        let (tenant, _) = s.tenant("acme").await;
        let id = aged_recording(&s, tenant, &dir, 1, 1, None).await;
        let row = stored(&s, tenant, id).await;
        let object = dir.join("store").join(&row.object_key);
        assert!(object.exists());
        // The first half of a deletion, as written before the object is touched; then the
        // process goes (no second half).
        let entry = switchyard_api::store::AuditEntry {
            tenant: Some(tenant),
            key_id: None,
            action: "recording.delete",
            object_kind: "recording",
            object_id: id.to_string(),
            detail: Value::Null,
        };
        let half = s
            .store
            .begin_delete(tenant, id, &entry)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(half.state, ObjectState::Deleting);
        s.stop().await;
        assert!(object.exists(), "nothing deleted yet");

        // The next start finishes it: the object gone, the row deleted.
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let mut row = None;
        for _ in 0..500 {
            let r = s.store.recording_object(tenant, id).await.unwrap().unwrap();
            if r.state == ObjectState::Deleted {
                row = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let row = row.expect("the deletion was finished at start");
        assert!(row.deleted_at_ms.is_some());
        assert!(!object.exists());
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn with_s3_down_a_recording_waits_spooled_and_is_uploaded_when_s3_comes_back() {
    let Some(bin) = moto::Moto::binary() else {
        return;
    };
    store_common::each_backend(|store| {
        let bin = bin.clone();
        async move {
            let dir = temp_dir("s3");
            // S3 is down: reached through a cut relay, which holds its port all along (a port
            // picked now and bound by moto later could be taken meanwhile).
            let moto = moto::Moto::start(&bin, moto::free_port()).await;
            moto.create_bucket("calls").await;
            let relay = moto::relay::Relay::start(moto.port).await;
            relay.cut();
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
                    base: Duration::from_millis(100),
                    max: Duration::from_millis(400),
                },
                ..ObjectsConfig::default()
            };
            // Nothing listens on the S3 port yet: the store is down.
            let s = Server::start_recording(store, recording).await;
            let (tenant, key) = s.tenant("acme").await;
            let k = key.as_str();
            let config: Value = serde_json::from_str(POLICY).unwrap();
            let (_, _, _, leg) =
                call_talking_to_ana(&s, k, config, Some(Duration::from_secs(2))).await;
            let list = poll(&s, &format!("/v1/calls/{leg}/recordings"), k, |v| {
                v["recordings"][0]["status"] == "completed"
            })
            .await;
            let id: Uuid = list["recordings"][0]["id"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            // Spooled, failing, retried; its file kept; playable from the spool meanwhile.
            let mut row = None;
            for _ in 0..500 {
                let r = s.store.recording_object(tenant, id).await.unwrap();
                if r.as_ref().is_some_and(|r| r.attempts >= 2) {
                    row = r;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let row = row.expect("upload attempts counted");
            assert_eq!(row.state, ObjectState::Spooled);
            assert!(row.last_error.is_some());
            let spooled = std::fs::read(&row.spool_path).unwrap();
            let (st, url) = s
                .call(
                    "GET",
                    &format!("/v1/recordings/{id}/presigned-url"),
                    Some(k),
                    None,
                )
                .await;
            assert_eq!((st, url["kind"].as_str()), (200, Some("signed")), "{url}");
            let played = get(&s, url["url"].as_str().unwrap(), None).await;
            assert_eq!(played.bytes().await.unwrap().as_ref(), spooled.as_slice());

            // S3 comes back: the upload completes, the row is right, the spool file goes.
            relay.restore();
            let row = stored(&s, tenant, id).await;
            assert_eq!(
                row.sha256.as_deref(),
                Some(hex::encode(Sha256::digest(&spooled)).as_str())
            );
            assert!(
                row.location
                    .as_deref()
                    .unwrap_or("")
                    .starts_with("s3://calls/")
            );
            assert!(spool_file_removed(&row.spool_path).await);
            // Playback now goes to S3: its presigned GET, fetched over plain HTTP.
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
            assert_eq!(fetched.bytes().await.unwrap().as_ref(), spooled.as_slice());
            s.stop().await;
            drop(relay);
            drop(moto);
        }
    })
    .await;
}

/// Runs the `switchyard` binary with the tenant's key in its environment.
async fn cli(s: &Server, key: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = process_common::switchyard();
    cmd.args(args)
        .args(["--url", &s.base])
        .env("SWITCHYARD_API_KEY", key);
    // Off the runtime's threads: the server answering it runs on them.
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_recordings_cli_lists_fetches_and_applies_retention_after_a_dry_run() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("cli");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let (tenant, key) = s.tenant("acme").await;
        let k = key.as_str();
        let (recent, row) = stored_recording(&s, k, tenant).await;
        let stored_bytes = std::fs::read(dir.join("store").join(&row.object_key)).unwrap();
        // A recording of 40 days ago (its file a copy of the recent one's).
        let mut old = s.store.recording(tenant, recent).await.unwrap().unwrap();
        old.id = Uuid::new_v4();
        old.started_at_ms -= 40 * 86_400_000;
        old.ended_at_ms = old.ended_at_ms.map(|e| e - 40 * 86_400_000);
        old.path = dir.join("old.wav").display().to_string();
        std::fs::write(&old.path, &stored_bytes).unwrap();
        s.store
            .insert_recordings(std::slice::from_ref(&old))
            .await
            .unwrap();
        s.rt.objects.spool(std::slice::from_ref(&old)).await;
        let old_row = stored(&s, tenant, old.id).await;
        let old_object = dir.join("store").join(&old_row.object_key);
        s.call(
            "PUT",
            "/v1/recording-retention",
            Some(k),
            Some(json!({"days": 30})),
        )
        .await;

        let out = cli(&s, k, &["recordings", "list"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            ids,
            vec![recent.to_string(), old.id.to_string()],
            "newest first"
        );

        let target = dir.join("fetched.wav");
        let out = cli(
            &s,
            k,
            &[
                "recordings",
                "fetch",
                &recent.to_string(),
                "-o",
                target.to_str().unwrap(),
            ],
        )
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&target).unwrap(), stored_bytes);

        // A dry run names the old recording and deletes nothing.
        let out = cli(&s, k, &["recordings", "retention"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["applied"], false);
        assert_eq!(report["recordings"], json!([old.id]));
        assert!(String::from_utf8_lossy(&out.stderr).contains("dry run"));
        assert!(old_object.exists());
        // Applied: the old one goes, the recent one stays.
        let out = cli(&s, k, &["recordings", "retention", "--apply"]).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!old_object.exists());
        let gone = s
            .store
            .recording_object(tenant, old.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(gone.state, ObjectState::Deleted);
        let kept = s
            .store
            .recording_object(tenant, recent)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.state, ObjectState::Stored);
        // No key: a clear error.
        let mut cmd = process_common::switchyard();
        cmd.args(["recordings", "list", "--url", &s.base])
            .env_remove("SWITCHYARD_API_KEY");
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("SWITCHYARD_API_KEY"));
        s.stop().await;
    })
    .await;
}
