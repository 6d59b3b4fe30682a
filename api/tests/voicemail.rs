//! Voicemail over HTTP on loopback, on SQLite and PostgreSQL (`store_common::each_backend`):
//! the boxes listed newest first with cursor paging and every filter, one message read,
//! marked heard and not heard (audited), deleted with its audio (audited, idempotent), who
//! may do what, tenant isolation, and input refused with the field named. Messages are
//! written through the store as the runtime writes them (recordings of kind `voicemail`),
//! beside a call's recording that these routes must never show.
//!
//! A deleted message is gone: no listing shows it, and reading or marking it answers 404
//! (deleting it again answers 204, as for recordings).

mod recording_common;
mod server_common;
mod store_common;

use serde_json::{Value, json};
use switchyard_api::model::{Role, TenantId};
use switchyard_api::store::{ObjectState, RecordingRow, Store};
use uuid::Uuid;

use recording_common::{stored, switch_recording, temp_dir};
use server_common::*;

const T0: i64 = 1_700_000_000_000;

/// A finished voicemail message (`status` "completed") in a queue's or an agent's box (store
/// ids), left at `left_at_ms`.
fn message(
    tenant: TenantId,
    left_at_ms: i64,
    queue: Option<i64>,
    agent: Option<i64>,
    caller: &str,
) -> RecordingRow {
    let id = Uuid::new_v4();
    RecordingRow {
        id,
        tenant,
        call_id: Uuid::new_v4(),
        leg: Uuid::new_v4(),
        queue_id: queue.unwrap_or(0),
        campaign_id: None,
        agents: vec![],
        caller_number: caller.into(),
        mode: "always".into(),
        capture: "switch".into(),
        fell_back: false,
        stereo: false,
        path: format!("/var/lib/switchyard/recordings/{id}.wav"),
        started_at_ms: left_at_ms,
        ended_at_ms: Some(left_at_ms + 20_000),
        status: "completed".into(),
        error: None,
        duration_ms: Some(20_000),
        sample_rate: Some(8000),
        channels: Some(1),
        bytes: Some(320_044),
        silence_ratio: Some(0.1),
        spans: json!([]),
        waveform: Value::Null,
        kind: "voicemail".into(),
        mailbox_queue: queue,
        mailbox_agent: agent,
    }
}

/// A call's recording of the same tenant (kind `call`), newer than every message.
fn call_recording(tenant: TenantId, at_ms: i64, queue: i64) -> RecordingRow {
    RecordingRow {
        kind: "call".into(),
        mailbox_queue: None,
        mailbox_agent: None,
        agents: vec![],
        ..message(tenant, at_ms, Some(queue), None, "+15559999")
    }
}

/// The ids of a listing, in order.
fn ids(v: &Value) -> Vec<String> {
    v["voicemail"]
        .as_array()
        .unwrap_or_else(|| panic!("a listing: {v}"))
        .iter()
        .map(|m| m["id"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The tenant `acme` with agents Ana and Bo, queues 11 and 12 (store ids) and five messages,
/// newest last:
/// - `m[0]`: queue 11's box, T0
/// - `m[1]`: queue 12's box, T0 + 1 s
/// - `m[2]`: Ana's box, T0 + 2 s
/// - `m[3]`: queue 11's box, T0 + 3 s
/// - `m[4]`: Bo's box, T0 + 4 s
///
/// and, never listed: a message still being left (open row), a call's recording, and a
/// message of another tenant (`other`, whose admin key is `other_admin`).
struct Acme {
    s: Server,
    tenant: TenantId,
    admin: String,
    ana: i64,
    bo: i64,
    m: Vec<String>,
    open: String,
    call: String,
    other: String,
    other_admin: String,
}

async fn acme(s: Server) -> Acme {
    let (tenant, admin) = s.tenant("acme").await;
    let ana = s.agent(&admin, "Ana", "user/1000").await;
    let bo = s.agent(&admin, "Bo", "user/1001").await;
    let (ana_s, bo_s) = (s.stored_agent(ana), s.stored_agent(bo));
    let rows = vec![
        message(tenant, T0, Some(11), None, "+15550000"),
        message(tenant, T0 + 1000, Some(12), None, "+15550001"),
        message(tenant, T0 + 2000, None, Some(ana_s), "+15550002"),
        message(tenant, T0 + 3000, Some(11), None, "+15550003"),
        message(tenant, T0 + 4000, None, Some(bo_s), "+15550004"),
    ];
    let open = RecordingRow {
        status: "recording".into(),
        ended_at_ms: None,
        duration_ms: None,
        ..message(tenant, T0 + 5000, Some(11), None, "+15550005")
    };
    let call = call_recording(tenant, T0 + 6000, 11);
    let (other_tenant, other_admin) = s.tenant("globex").await;
    let other = message(other_tenant, T0 + 7000, Some(11), None, "+15550007");
    let mut all = rows.clone();
    all.extend([open.clone(), call.clone(), other.clone()]);
    s.store.insert_recordings(&all).await.unwrap();
    Acme {
        tenant,
        admin,
        ana,
        bo,
        m: rows.iter().map(|r| r.id.to_string()).collect(),
        open: open.id.to_string(),
        call: call.id.to_string(),
        other: other.id.to_string(),
        other_admin,
        s,
    }
}

impl Acme {
    async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.s.call("GET", path, Some(key), None).await
    }

    /// The ids `path` lists with `key` (200 expected).
    async fn list(&self, path: &str, key: &str) -> Vec<String> {
        let (st, v) = self.get(path, key).await;
        assert_eq!(st, 200, "{path}: {v}");
        ids(&v)
    }

    async fn patch(&self, id: &str, key: &str, body: Value) -> (u16, Value) {
        self.s
            .call(
                "PATCH",
                &format!("/v1/voicemail/{id}"),
                Some(key),
                Some(body),
            )
            .await
    }

    fn ms(&self, i: &[usize]) -> Vec<String> {
        i.iter().map(|i| self.m[*i].clone()).collect()
    }
}

#[tokio::test]
async fn the_boxes_list_newest_first_page_by_cursor_and_filter_by_box_heard_and_time() {
    store_common::each_backend(|store: Store| async move {
        let f = acme(Server::start(store).await).await;
        let k = f.admin.as_str();

        // Newest first; the open row, the call's recording and the other tenant's are absent.
        assert_eq!(f.list("/v1/voicemail", k).await, f.ms(&[4, 3, 2, 1, 0]));

        // Pages of two follow each other without overlap or gap; the last says no next.
        let (st, p1) = f.get("/v1/voicemail?limit=2", k).await;
        assert_eq!(st, 200, "{p1}");
        assert_eq!(ids(&p1), f.ms(&[4, 3]));
        let next = p1["next_cursor"]
            .as_str()
            .expect("a next cursor")
            .to_owned();
        let (_, p2) = f
            .get(&format!("/v1/voicemail?limit=2&cursor={next}"), k)
            .await;
        assert_eq!(ids(&p2), f.ms(&[2, 1]));
        let next = p2["next_cursor"]
            .as_str()
            .expect("a next cursor")
            .to_owned();
        let (_, p3) = f
            .get(&format!("/v1/voicemail?limit=2&cursor={next}"), k)
            .await;
        assert_eq!(ids(&p3), f.ms(&[0]));
        assert_eq!(p3["next_cursor"], Value::Null);

        // By box.
        let q11 = f.s.rt.ids.queue(11);
        assert_eq!(
            f.list(&format!("/v1/voicemail?queue={q11}"), k).await,
            f.ms(&[3, 0])
        );
        assert_eq!(
            f.list(&format!("/v1/voicemail?agent={}", f.ana), k).await,
            f.ms(&[2])
        );
        // A queue id never shown matches nothing.
        assert!(f.list("/v1/voicemail?queue=7", k).await.is_empty());
        // By time: since inclusive, until exclusive.
        assert_eq!(
            f.list(
                &format!("/v1/voicemail?since={}&until={}", T0 + 1000, T0 + 3000),
                k
            )
            .await,
            f.ms(&[2, 1])
        );

        // The view.
        let (st, v) = f.get(&format!("/v1/voicemail/{}", f.m[0]), k).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["mailbox"], json!({ "queue": q11 }));
        assert_eq!(v["caller_number"], "+15550000");
        assert_eq!(v["left_at_ms"], T0);
        assert_eq!(v["duration_ms"], 20_000);
        assert_eq!(v["status"], "completed");
        assert_eq!(v["heard"], false);
        assert_eq!(v["heard_at_ms"], Value::Null);
        assert_eq!(v["heard_by"], Value::Null);
        assert_eq!(
            v["media_url"],
            format!("/v1/recordings/{}/download", f.m[0])
        );
        let (_, v) = f.get(&format!("/v1/voicemail/{}", f.m[2]), k).await;
        assert_eq!(v["mailbox"], json!({ "agent": f.ana }));

        // Heard: true and false, and the filter on it.
        let (st, v) = f.patch(&f.m[3], k, json!({"heard": true})).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["heard"], true);
        let heard_at = v["heard_at_ms"].as_i64().expect("heard_at");
        assert!(heard_at >= T0, "{v}");
        assert!(v["heard_by"].is_string(), "{v}");
        // Marked again: when and by whom it was first heard stay.
        let (_, again) = f.patch(&f.m[3], k, json!({"heard": true})).await;
        assert_eq!(again["heard_at_ms"], heard_at);
        f.patch(&f.m[1], k, json!({"heard": true})).await;
        assert_eq!(f.list("/v1/voicemail?heard=true", k).await, f.ms(&[3, 1]));
        assert_eq!(
            f.list("/v1/voicemail?heard=false", k).await,
            f.ms(&[4, 2, 0])
        );
        assert_eq!(
            f.list(&format!("/v1/voicemail?heard=true&queue={q11}"), k)
                .await,
            f.ms(&[3])
        );
        let (st, v) = f.patch(&f.m[1], k, json!({"heard": false})).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["heard"], false);
        assert_eq!(v["heard_at_ms"], Value::Null);
        assert_eq!(f.list("/v1/voicemail?heard=true", k).await, f.ms(&[3]));
        // Not heard again is not an error.
        let (st, _) = f.patch(&f.m[1], k, json!({"heard": false})).await;
        assert_eq!(st, 200);

        // Each mark is in the audit log, with what was set.
        let (st, log) = f.get("/v1/audit", k).await;
        assert_eq!(st, 200, "{log}");
        let marks: Vec<(String, Value)> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "voicemail.heard")
            .map(|e| {
                (
                    e["object_id"].as_str().unwrap_or("").to_owned(),
                    e["detail"]["heard"].clone(),
                )
            })
            .collect();
        assert_eq!(marks.len(), 5, "{log}");
        assert!(marks.contains(&(f.m[1].clone(), json!(false))), "{marks:?}");
        assert!(marks.contains(&(f.m[3].clone(), json!(true))), "{marks:?}");

        // A replayed final row (the runtime's journal) keeps the heard state.
        let (_, before) = f.get(&format!("/v1/voicemail/{}", f.m[3]), k).await;
        let row =
            f.s.store
                .recording(f.tenant, f.m[3].parse().unwrap())
                .await
                .unwrap()
                .unwrap();
        f.s.store.insert_recordings(&[row]).await.unwrap();
        let (_, after) = f.get(&format!("/v1/voicemail/{}", f.m[3]), k).await;
        assert_eq!(before, after);
        f.s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_agent_key_sees_and_marks_only_its_own_box_and_numbers_are_masked_as_for_recordings() {
    store_common::each_backend(|store: Store| async move {
        let f = acme(Server::start(store).await).await;
        let s = &f.s;
        let ana = s.agent_key(f.tenant, f.ana).await;
        let supervisor = s.key(Some(f.tenant), Role::Supervisor).await;
        let read_only = s.key(Some(f.tenant), Role::ReadOnly).await;
        let unbound = s.legacy_agent_key(f.tenant, f.bo).await;

        // Ana's key: her box only, whatever it asks for.
        assert_eq!(f.list("/v1/voicemail", &ana).await, f.ms(&[2]));
        assert!(
            f.list(&format!("/v1/voicemail?agent={}", f.bo), &ana)
                .await
                .is_empty()
        );
        assert_eq!(
            f.list(&format!("/v1/voicemail?agent={}", f.ana), &ana)
                .await,
            f.ms(&[2])
        );
        let q11 = s.rt.ids.queue(11);
        assert!(
            f.list(&format!("/v1/voicemail?queue={q11}"), &ana)
                .await
                .is_empty()
        );
        let (st, v) = f.get(&format!("/v1/voicemail/{}", f.m[2]), &ana).await;
        assert_eq!(st, 200, "{v}");
        // Her own message's caller in full.
        assert_eq!(v["caller_number"], "+15550002");
        for other in [&f.m[0], &f.m[4]] {
            let (st, v) = f.get(&format!("/v1/voicemail/{other}"), &ana).await;
            assert_eq!(st, 404, "{v}");
            let (st, v) = f.patch(other, &ana, json!({"heard": true})).await;
            assert_eq!(st, 404, "{v}");
        }
        // She marks her own; she deletes nothing.
        let (st, v) = f.patch(&f.m[2], &ana, json!({"heard": true})).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["heard"], true);
        let (st, v) = s
            .call(
                "DELETE",
                &format!("/v1/voicemail/{}", f.m[2]),
                Some(&ana),
                None,
            )
            .await;
        assert_eq!(st, 403, "{v}");

        // A key bound to no agent has no box and may not mark.
        assert!(f.list("/v1/voicemail", &unbound).await.is_empty());
        let (st, _) = f.get(&format!("/v1/voicemail/{}", f.m[2]), &unbound).await;
        assert_eq!(st, 404);
        let (st, _) = f.patch(&f.m[2], &unbound, json!({"heard": false})).await;
        assert_eq!(st, 403);

        // Read-only: every box, numbers masked, no marking, no deleting.
        let (st, v) = f.get("/v1/voicemail", &read_only).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(ids(&v), f.ms(&[4, 3, 2, 1, 0]));
        assert!(
            v["voicemail"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["caller_number"].as_str().unwrap().contains('*')),
            "{v}"
        );
        let (st, _) = f.patch(&f.m[0], &read_only, json!({"heard": true})).await;
        assert_eq!(st, 403);
        let (st, _) = s
            .call(
                "DELETE",
                &format!("/v1/voicemail/{}", f.m[0]),
                Some(&read_only),
                None,
            )
            .await;
        assert_eq!(st, 403);

        // A supervisor: every box, marks any.
        assert_eq!(
            f.list("/v1/voicemail", &supervisor).await,
            f.ms(&[4, 3, 2, 1, 0])
        );
        let (st, v) = f.patch(&f.m[4], &supervisor, json!({"heard": true})).await;
        assert_eq!(st, 200, "{v}");
        // Ana's view of her box is hers alone: Bo's heard message is not in it.
        assert_eq!(f.list("/v1/voicemail?heard=true", &ana).await, f.ms(&[2]));
        f.s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn another_tenants_messages_and_call_recordings_are_unknown_on_these_routes() {
    store_common::each_backend(|store: Store| async move {
        let f = acme(Server::start(store).await).await;
        let s = &f.s;
        let k = f.admin.as_str();
        for id in [&f.other, &f.call, &f.open, &Uuid::new_v4().to_string()] {
            let path = format!("/v1/voicemail/{id}");
            let (st, v) = f.get(&path, k).await;
            assert_eq!(st, 404, "GET {id}: {v}");
            assert_eq!(error_code(&v), "not_found");
            let (st, v) = f.patch(id, k, json!({"heard": true})).await;
            assert_eq!(st, 404, "PATCH {id}: {v}");
            let (st, v) = s.call("DELETE", &path, Some(k), None).await;
            assert_eq!(st, 404, "DELETE {id}: {v}");
        }
        // The call's recording is untouched and still a recording.
        let (st, v) = f.get(&format!("/v1/recordings/{}", f.call), k).await;
        assert_eq!(st, 200, "{v}");
        // The other tenant sees its own message only.
        assert_eq!(
            f.list("/v1/voicemail", &f.other_admin).await,
            vec![f.other.clone()]
        );
        let (st, _) = f
            .get(&format!("/v1/voicemail/{}", f.m[0]), &f.other_admin)
            .await;
        assert_eq!(st, 404);
        f.s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_deleted_message_loses_its_audio_and_leaves_the_box_and_the_deletion_is_audited() {
    store_common::each_backend(|store: Store| async move {
        let dir = temp_dir("voicemail-delete");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let (tenant, key) = s.tenant("acme").await;
        let k = key.as_str();
        let supervisor = s.key(Some(tenant), Role::Supervisor).await;
        let queue = 3;

        // Two messages with audio spooled as the runtime spools a finished recording, and one
        // that has none (its capture failed).
        let mut with_audio = Vec::new();
        for n in 0..2 {
            let mut row = message(tenant, T0 + n, Some(queue), None, "+15550100");
            let path = dir.join(format!("{}.wav", row.id));
            std::fs::write(&path, b"RIFF....WAVE").unwrap();
            row.path = path.display().to_string();
            s.store
                .insert_recordings(std::slice::from_ref(&row))
                .await
                .unwrap();
            s.rt.objects.spool(std::slice::from_ref(&row)).await;
            with_audio.push(row.id);
        }
        let silent = RecordingRow {
            status: "failed".into(),
            path: String::new(),
            duration_ms: None,
            ..message(tenant, T0 + 10, Some(queue), None, "+15550101")
        };
        s.store
            .insert_recordings(std::slice::from_ref(&silent))
            .await
            .unwrap();
        let (doomed, kept) = (with_audio[0], with_audio[1]);
        let object = stored(&s, tenant, doomed).await;
        stored(&s, tenant, kept).await;
        let object_file = dir.join("store").join(&object.object_key);
        assert!(object_file.exists());

        // Its media_url serves the audio.
        let (_, v) = s
            .call("GET", &format!("/v1/voicemail/{doomed}"), Some(k), None)
            .await;
        let media = v["media_url"].as_str().unwrap().to_owned();
        let resp = s
            .http
            .get(format!("{}{media}", s.base))
            .bearer_auth(k)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), b"RIFF....WAVE");

        // A supervisor deletes it: 204, the object gone, the storage row deleted.
        let path = format!("/v1/voicemail/{doomed}");
        let (st, v) = s.call("DELETE", &path, Some(&supervisor), None).await;
        assert_eq!(st, 204, "{v}");
        assert!(!object_file.exists(), "the object is deleted");
        let row = s
            .store
            .recording_object(tenant, doomed)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.state, ObjectState::Deleted);

        // Gone from the box: not listed, not readable, not markable; deleting again is 204.
        let (st, v) = s.call("GET", "/v1/voicemail", Some(k), None).await;
        assert_eq!(st, 200, "{v}");
        // A failed one (the caller left no message) is no message of the box either.
        assert_eq!(ids(&v), vec![kept.to_string()]);
        let (st, _) = s.call("GET", &path, Some(k), None).await;
        assert_eq!(st, 404);
        let (st, _) = s
            .call("PATCH", &path, Some(k), Some(json!({"heard": true})))
            .await;
        assert_eq!(st, 404);
        let (st, _) = s.call("DELETE", &path, Some(k), None).await;
        assert_eq!(st, 204);
        // Its audio is gone from the recording routes too.
        let resp = s
            .http
            .get(format!("{}{media}", s.base))
            .bearer_auth(k)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 404);

        // A message that never had audio has nothing to delete, as for recordings.
        let (st, v) = s
            .call(
                "DELETE",
                &format!("/v1/voicemail/{}", silent.id),
                Some(k),
                None,
            )
            .await;
        assert_eq!(st, 404, "{v}");

        // The deletion is audited once, by the supervisor's key.
        let (_, log) = s.call("GET", "/v1/audit", Some(k), None).await;
        let deletions: Vec<&Value> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "voicemail.delete")
            .collect();
        assert_eq!(deletions.len(), 1, "{log}");
        assert_eq!(deletions[0]["object_id"], doomed.to_string());
        s.stop().await;
        std::fs::remove_dir_all(&dir).ok();
    })
    .await;
}

#[tokio::test]
async fn bad_queries_and_bodies_are_refused_with_the_field_named() {
    store_common::each_backend(|store: Store| async move {
        let f = acme(Server::start(store).await).await;
        let s = &f.s;
        let k = f.admin.as_str();
        // Values that parse but make no sense: 422.
        for (query, field) in [
            ("limit=0", "limit"),
            (&format!("since={}&until={}", T0 + 1, T0) as &str, "until"),
            ("cursor=not-a-cursor", "cursor"),
            ("cursor=01", "cursor"),
        ] {
            let (st, v) = f.get(&format!("/v1/voicemail?{query}"), k).await;
            assert_eq!(st, 422, "{query}: {v}");
            assert_eq!(v["error"]["field"], field, "{query}: {v}");
        }
        // Values that do not parse, and unknown parameters: 400 naming them (the API's
        // query extractor, as on every listing).
        for (query, field) in [
            ("heard=maybe", "heard"),
            ("since=yesterday", "since"),
            ("queue=1.5", "queue"),
            ("limit=-1", "limit"),
            ("box=1", "box"),
        ] {
            let (st, v) = f.get(&format!("/v1/voicemail?{query}"), k).await;
            assert_eq!(st, 400, "{query}: {v}");
            assert_eq!(v["error"]["field"], field, "{query}: {v}");
        }
        // Bodies: 422 naming the field.
        for (body, field) in [
            (json!({}), "heard"),
            (json!({"heard": "yes"}), "heard"),
            (json!({"heard": null}), "heard"),
            (json!({"heard": true, "by": "me"}), "by"),
        ] {
            let (st, v) = f.patch(&f.m[0], k, body.clone()).await;
            assert_eq!(st, 422, "{body}: {v}");
            assert_eq!(v["error"]["field"], field, "{body}: {v}");
        }
        let (st, v) = s
            .raw(
                "PATCH",
                &format!("/v1/voicemail/{}", f.m[0]),
                k,
                "application/json",
                b"{\"heard\": tru".to_vec(),
            )
            .await;
        assert_eq!(st, 400, "{v}");
        // A path that is no uuid.
        let (st, v) = f.get("/v1/voicemail/42", k).await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(v["error"]["field"], "id");
        // Nothing was marked by any of it.
        assert!(f.list("/v1/voicemail?heard=true", k).await.is_empty());
        f.s.stop().await;
    })
    .await;
}
