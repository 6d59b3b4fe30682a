//! Voicemail end to end, on SQLite and PostgreSQL: callers of the fake switch leave messages
//! (after hours, through a flow's schedule; when a queue's wait runs out, through its exit),
//! the driver records them with `record` on their leg, and the message is stored, announced on
//! the live feed, listed in its box, playable and marked heard through the API.

mod recording_common;
mod server_common;
mod store_common;

use std::time::Duration;

use recording_common::*;
use serde_json::{Value, json};
use server_common::live::LiveStream;
use server_common::*;
use switchyard_esl::sim::{AfterMessage, DtmfScript, InboundCall};

const DID: &str = "+15550100100";

async fn queue(s: &Server, key: &str, name: &str, config: Value) -> i64 {
    let (st, q) = s
        .call(
            "POST",
            "/v1/queues",
            Some(key),
            Some(json!({"name": name, "config": config})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    q["id"].as_i64().unwrap()
}

/// A caller of `number` who speaks for `said` once recorded, then hangs up.
async fn caller_leaving_message(s: &Server, number: &str, said: Duration) -> String {
    let script = DtmfScript::new(Vec::new())
        .unwrap()
        .with_message(said, AfterMessage::HangUp)
        .unwrap();
    s.switch
        .as_ref()
        .unwrap()
        .place_scripted_call(
            InboundCall {
                caller_number: "5557770001".into(),
                destination: number.into(),
                ..InboundCall::default()
            },
            script,
        )
        .await
        .expect("the fake switch places the call")
}

/// The box's messages once it holds one.
async fn first_message(s: &Server, key: &str) -> Value {
    let list = poll(s, "/v1/voicemail", key, |v| {
        v["voicemail"].as_array().is_some_and(|m| !m.is_empty())
    })
    .await;
    let messages = list["voicemail"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{list}");
    messages[0].clone()
}

fn assert_said(message: &Value, said: Duration) {
    let ms = message["duration_ms"].as_i64().expect("a length");
    let said = i64::try_from(said.as_millis()).unwrap();
    assert!(
        (ms - said).abs() <= 100,
        "the message holds what was said ({said} ms): {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_hours_a_message_is_stored_announced_listed_played_and_marked_heard() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("vm-after-hours");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let (_, key) = s.tenant("acme").await;
        let sales = queue(&s, &key, "sales", json!({})).await;
        // No opening hours: closed whenever the test runs.
        let (st, office) = s
            .call(
                "POST",
                "/v1/schedules",
                Some(&key),
                Some(json!({"name": "office", "config": {"time_zone": "Europe/Paris"}})),
            )
            .await;
        assert_eq!(st, 201, "{office}");
        let flow = json!({
            "steps": [
                {"kind": "schedule", "id": "hours", "schedule": office["id"].to_string(),
                 "open": "sales", "closed": "vm"},
                {"kind": "queue", "id": "sales", "queue": sales.to_string()},
                {"kind": "voicemail", "id": "vm", "mailbox": {"queue": sales.to_string()}}
            ],
            "fallback": {"queue": sales.to_string()}
        });
        let (st, f) = s
            .call(
                "POST",
                "/v1/flows",
                Some(&key),
                Some(json!({"name": "front door", "config": flow})),
            )
            .await;
        assert_eq!(st, 201, "{f}");
        let (st, n) = s
            .call(
                "POST",
                "/v1/numbers",
                Some(&key),
                Some(json!({"number": DID, "flow": f["id"]})),
            )
            .await;
        assert_eq!(st, 201, "{n}");
        let mut live = LiveStream::open(&s, &key, None).await;
        live.next(Duration::from_secs(5)).await.expect("snapshot");

        let leg = caller_leaving_message(&s, DID, Duration::from_secs(2)).await;
        let message = first_message(&s, &key).await;
        assert_eq!(message["mailbox"], json!({"queue": sales}), "{message}");
        assert_eq!(message["call_id"], leg, "{message}");
        assert_eq!(message["status"], "completed", "{message}");
        assert_eq!(message["heard"], false, "{message}");
        assert_said(&message, Duration::from_secs(2));

        // Announced once stored, with its box.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let announced = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ev = live.next(left).await.expect("voicemail.received");
            if ev.event == "voicemail.received" {
                break ev.data;
            }
        };
        assert_eq!(announced["id"], message["id"], "{announced}");
        assert_eq!(announced["mailbox"], json!({"queue": sales}), "{announced}");

        // Playable: the stored audio is a WAV of the message.
        let url = message["media_url"].as_str().unwrap();
        let wav = poll_bytes(&s, url, &key).await;
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(&wav[8..12], b"WAVE");

        let id = message["id"].as_str().unwrap();
        let (st, heard) = s
            .call(
                "PATCH",
                &format!("/v1/voicemail/{id}"),
                Some(&key),
                Some(json!({"heard": true})),
            )
            .await;
        assert_eq!(st, 200, "{heard}");
        let (_, unheard) = s
            .call("GET", "/v1/voicemail?heard=false", Some(&key), None)
            .await;
        assert_eq!(unheard["voicemail"], json!([]), "{unheard}");
        s.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queues_max_wait_exit_leaves_the_message_in_the_queues_box() {
    store_common::each_backend(|store| async move {
        let dir = temp_dir("vm-max-wait");
        let s = Server::start_recording(store, switch_recording(&dir, None)).await;
        let (_, key) = s.tenant("acme").await;
        // Nobody answers billing: after 1 s the caller is offered its box.
        let billing = queue(
            &s,
            &key,
            "billing",
            json!({"numbers": ["5000"], "max_wait_s": 1.0, "on_timeout": {"to": "mailbox"}}),
        )
        .await;
        let leg = caller_leaving_message(&s, "5000", Duration::from_millis(1500)).await;
        let message = first_message(&s, &key).await;
        assert_eq!(message["mailbox"], json!({"queue": billing}), "{message}");
        assert_said(&message, Duration::from_millis(1500));
        let call = poll(&s, &format!("/v1/calls/{leg}"), &key, |c| {
            c["outcome"].as_str().is_some_and(|o| o != "in-progress")
        })
        .await;
        assert_eq!(call["outcome"], "voicemail", "{call}");
        s.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_exit_to_a_box_of_another_tenant_is_refused_with_its_field() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, other) = s.tenant("other").await;
        let theirs = s.agent(&other, "Zed", "user/1900").await;
        let (_, key) = s.tenant("acme").await;
        let (st, e) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&key),
                Some(json!({"name": "q", "config": {
                    "max_wait_s": 5.0,
                    "on_timeout": {"to": "mailbox", "agent": theirs}
                }})),
            )
            .await;
        assert_eq!(st, 422, "{e}");
        assert_eq!(e["error"]["field"], "config.on_timeout", "{e}");
        let mine = s.agent(&key, "Ana", "user/1000").await;
        let (st, e) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&key),
                Some(json!({"name": "q", "config": {
                    "on_no_agents": {"to": "mailbox", "agent": mine, "queue": 1}
                }})),
            )
            .await;
        assert_eq!(st, 422, "{e}");
        s.stop().await;
    })
    .await;
}

/// The body of an authorised GET once it answers 200 (the upload may still be under way).
async fn poll_bytes(s: &Server, path: &str, key: &str) -> Vec<u8> {
    for _ in 0..750 {
        let resp = s
            .http
            .get(format!("{}{path}", s.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            return resp.bytes().await.unwrap().to_vec();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{path} never answered 200");
}
