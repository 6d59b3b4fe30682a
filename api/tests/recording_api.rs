//! Recording through the HTTP API on loopback, on SQLite and PostgreSQL: a queue's policy,
//! pausing a call in progress (who may, and when not), the recording listed on its call with
//! its span, and FreeSWITCH's upload of a switch recording.

mod recording_common;
mod server_common;
mod store_common;

use std::time::Duration;

use recording_common::*;
use serde_json::{Value, json};
use server_common::*;

#[tokio::test]
async fn a_recorded_call_is_paused_by_its_agent_and_listed_with_the_span_who_asked() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("pause");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let (tenant, key) = s.tenant("acme").await;
        let k = key.as_str();
        let (_, ana, bo, leg) = call_talking_to_ana(
            &s,
            k,
            json!({
                "numbers": ["5000"],
                "recording": {"policy": "always-forced", "capture": "switch"}
            }),
            Some(Duration::from_secs(3)),
        )
        .await;
        let control = format!("/v1/calls/{leg}/recording");
        let ana_key = s.agent_key(tenant, ana).await;
        let bo_key = s.agent_key(tenant, bo).await;
        // Forced: the agent may not pause it, a supervisor may; another agent may not touch it.
        let (st, e) = s
            .call(
                "POST",
                &control,
                Some(&ana_key),
                Some(json!({"action": "pause"})),
            )
            .await;
        assert_eq!(st, 409, "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("always-forced"),
            "{e}"
        );
        let (st, e) = s
            .call(
                "POST",
                &control,
                Some(&bo_key),
                Some(json!({"action": "mask"})),
            )
            .await;
        assert_eq!(st, 403, "{e}");
        let (st, e) = s
            .call(
                "POST",
                &control,
                Some(&ana_key),
                Some(json!({"action": "mask"})),
            )
            .await;
        assert_eq!(st, 200, "the agent masks a card number: {e}");
        let (st, e) = s
            .call(
                "POST",
                &control,
                Some(&ana_key),
                Some(json!({"action": "mask"})),
            )
            .await;
        assert_eq!(st, 409, "already masked: {e}");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (st, e) = s
            .call("POST", &control, Some(k), Some(json!({"action": "unmask"})))
            .await;
        assert_eq!(st, 200, "{e}");
        let (st, e) = s
            .call("POST", &control, Some(k), Some(json!({"action": "rewind"})))
            .await;
        assert_eq!(st, 422, "an unknown action: {e}");
        let list = poll(&s, &format!("/v1/calls/{leg}/recordings"), k, |v| {
            v["recordings"][0]["status"] == "completed"
        })
        .await;
        let r = &list["recordings"][0];
        assert_eq!(r["capture"], "switch", "{r}");
        assert_eq!(r["mode"], "always-forced");
        assert_eq!(r["agents"], json!([ana]));
        assert_eq!(r["channels"], 2);
        assert_eq!(r["spans"].as_array().map(Vec::len), Some(1), "{r}");
        let span = &r["spans"][0];
        assert_eq!(span["kind"], "masked");
        assert!(
            span["by"].as_str().unwrap_or("").contains("(agent)"),
            "{span}"
        );
        assert!(
            span["ended_by"].as_str().unwrap_or("").contains("(admin)"),
            "{span}"
        );
        let masked_ms = span["end_ms"].as_i64().unwrap() - span["start_ms"].as_i64().unwrap();
        assert!((500..3000).contains(&masked_ms), "{span}");
        assert!(r["duration_ms"].as_i64().unwrap_or(0) >= 2000, "{r}");
        // The other agent sees none of it; a read-only key sees the number masked.
        let (_, other) = s
            .call(
                "GET",
                &format!("/v1/calls/{leg}/recordings"),
                Some(&bo_key),
                None,
            )
            .await;
        assert_eq!(other["recordings"], json!([]), "{other}");
        let ro = s
            .key(Some(tenant), switchyard_api::model::Role::ReadOnly)
            .await;
        let (_, masked) = s
            .call(
                "GET",
                &format!("/v1/calls/{leg}/recordings"),
                Some(&ro),
                None,
            )
            .await;
        assert_ne!(
            masked["recordings"][0]["caller_number"], "+15551234",
            "{masked}"
        );
        s.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test]
async fn a_recording_asked_of_no_call_is_404_and_a_percent_over_100_names_its_field() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("never");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let (_, key) = s.tenant("acme").await;
        let missing = "00000000-0000-4000-8000-000000000001";
        let (st, e) = s
            .call(
                "POST",
                &format!("/v1/calls/{missing}/recording"),
                Some(&key),
                Some(json!({"action": "start"})),
            )
            .await;
        assert_eq!(st, 404, "{e}");
        let (st, e) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&key),
                Some(json!({"name": "q", "config": {"recording": {"policy": "always", "percent": 101}}})),
            )
            .await;
        assert_eq!(st, 422, "{e}");
        assert_eq!(e["error"]["field"], "config.recording.percent", "{e}");
        s.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test]
async fn freeswitch_uploads_a_switch_recording_with_the_upload_secret_only() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("upload");
        let secret = "an-upload-secret-of-some-length";
        let s = Server::start_recording(store, switch_recording(&dir, Some(secret))).await;
        let file = "3f0e1a52-7d5c-4b7e-9a61-0c3f5e2d8b11.wav";
        let url = format!("{}/v1/recordings/upload/{file}", s.base);
        let body = vec![7u8; 100_000];
        let put = |auth: Option<String>, url: String| {
            let mut req = s.http.put(url).body(body.clone());
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            req.send()
        };
        let status = |r: reqwest::Response| r.status().as_u16();
        assert_eq!(status(put(None, url.clone()).await.unwrap()), 401);
        assert_eq!(
            status(put(Some("Bearer wrong".into()), url.clone()).await.unwrap()),
            401
        );
        let (_, api_key) = s.tenant("acme").await;
        assert_eq!(
            status(
                put(Some(format!("Bearer {api_key}")), url.clone())
                    .await
                    .unwrap()
            ),
            401,
            "an API key is not the upload secret"
        );
        let bad_name = format!("{}/v1/recordings/upload/..%2Fetc%2Fpasswd", s.base);
        assert_eq!(
            status(
                put(Some(format!("Bearer {secret}")), bad_name)
                    .await
                    .unwrap()
            ),
            422
        );
        // mod_http_cache sends the URL's user:password as Basic credentials.
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("switch:{secret}"));
        assert_eq!(
            status(
                put(Some(format!("Basic {basic}")), url.clone())
                    .await
                    .unwrap()
            ),
            201
        );
        let stored = std::fs::read(dir.join(file)).expect("the upload is in the switch files");
        assert_eq!(stored, body);
        assert!(!dir.join(format!("{file}.part")).exists());
        s.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test]
async fn uploads_are_refused_when_no_upload_secret_is_configured() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("no-upload");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let url = format!(
            "{}/v1/recordings/upload/3f0e1a52-7d5c-4b7e-9a61-0c3f5e2d8b11.wav",
            s.base
        );
        let r = s
            .http
            .put(url)
            .header("authorization", "Bearer anything-at-all-here")
            .body(vec![1u8; 10])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
        s.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test]
async fn a_recording_cut_off_by_a_stop_is_closed_at_the_next_start_from_what_its_file_holds() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("restart");
        let live = dir.join("live");
        std::fs::create_dir_all(&live).unwrap();
        let (tenant, _key) = {
            let t = store
                .create_tenant_granted("acme", &switchyard_api::grants::DialGrants::lab(), &audit())
                .await
                .unwrap();
            (t.id, ())
        };
        // Two recordings the last run left open: one with a live file written up to its last
        // flush (a header that still says 0 bytes of audio, as a crash leaves it), one with
        // no file at all.
        let with_file = uuid::Uuid::from_u128(0x1111_2222_3333_4444_5555_6666_7777_8888);
        let without = uuid::Uuid::from_u128(0x9999_aaaa_bbbb_cccc_dddd_eeee_ffff_0000);
        let path = live.join(format!("{with_file}.wav"));
        {
            let spec = hound::WavSpec {
                channels: 2,
                sample_rate: 8000,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = hound::WavWriter::create(&path, spec).unwrap();
            for i in 0..16_000 {
                let v = ((f64::from(i) * 0.3).sin() * 8000.0) as i16;
                w.write_sample(v).unwrap();
                w.write_sample(v).unwrap();
            }
            w.flush().unwrap();
            // Dropped without `finalize`: what a kill leaves.
            std::mem::forget(w);
        }
        let open = |id: uuid::Uuid| switchyard_api::store::RecordingRow {
            id,
            tenant,
            call_id: uuid::Uuid::from_u128(id.as_u128() ^ 1),
            leg: uuid::Uuid::from_u128(id.as_u128() ^ 1),
            queue_id: 1,
            campaign_id: None,
            agents: Vec::new(),
            caller_number: String::new(),
            mode: String::new(),
            capture: String::new(),
            fell_back: false,
            stereo: false,
            path: String::new(),
            started_at_ms: 1_700_000_000_000,
            ended_at_ms: None,
            status: "recording".into(),
            error: None,
            duration_ms: None,
            sample_rate: None,
            channels: None,
            bytes: None,
            silence_ratio: None,
            spans: json!([]),
            waveform: Value::Null,
            kind: "call".into(),
            mailbox_queue: None,
            mailbox_agent: None,
        };
        store
            .insert_recordings(&[open(with_file), open(without)])
            .await
            .unwrap();
        let mut setup = switch_recording(&dir.join("switch"), None);
        setup.capture.live_dir = live.clone();
        let s = Server::start_recording(store.clone(), setup).await;
        assert!(
            store.open_recordings().await.unwrap().is_empty(),
            "none left open"
        );
        let a = store.recording(tenant, with_file).await.unwrap().unwrap();
        assert_eq!(a.status, "damaged", "{a:?}");
        assert_eq!(a.capture, "live");
        assert_eq!(a.duration_ms, Some(2000), "what the file holds: {a:?}");
        assert!(
            a.error.as_deref().unwrap_or("").contains("interrupted"),
            "{a:?}"
        );
        let b = store.recording(tenant, without).await.unwrap().unwrap();
        assert_eq!(b.status, "failed", "{b:?}");
        assert!(
            b.error.as_deref().unwrap_or("").contains("no file"),
            "{b:?}"
        );
        s.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test]
async fn an_agent_transfers_its_own_call_back_to_the_queue_and_no_one_elses() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("transfer");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let (tenant, key) = s.tenant("acme").await;
        let k = key.as_str();
        let (qid, ana, bo, leg) =
            call_talking_to_ana(&s, k, json!({"numbers": ["5000"], "wrapup_s": 30}), None).await;
        let path = format!("/v1/calls/{leg}");
        let transfer = format!("/v1/calls/{leg}/transfer");
        let bo_key = s.agent_key(tenant, bo).await;
        let (st, e) = s
            .call("POST", &transfer, Some(&bo_key), Some(json!({})))
            .await;
        assert_eq!(st, 403, "not Bo's call: {e}");
        let (st, e) = s
            .call(
                "POST",
                &transfer,
                Some(k),
                Some(json!({"queue_id": 999_999})),
            )
            .await;
        assert_eq!(st, 422, "{e}");
        assert_eq!(e["error"]["field"], "queue_id", "{e}");
        let ana_key = s.agent_key(tenant, ana).await;
        let (st, e) = s
            .call("POST", &transfer, Some(&ana_key), Some(json!({})))
            .await;
        assert_eq!(st, 200, "{e}");
        assert_eq!(e["queue_id"], qid, "{e}");
        poll(&s, &path, k, |v| v["phase"] == "waiting").await;
        let (st, e) = s.call("POST", &transfer, Some(k), Some(json!({}))).await;
        assert_eq!(st, 409, "a waiting call is not in conversation: {e}");
        // Bo comes: the call is his, Ana wraps up.
        available(&s, k, bo).await;
        let talking = poll(&s, &path, k, |v| v["phase"] == "talking").await;
        assert_eq!(talking["agent_id"], bo, "{talking}");
        s.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}
