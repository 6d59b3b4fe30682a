//! Personal data in the live feed, per subscriber, over real HTTP (README's "Roles and
//! personal data"): an inbound caller placed on the fake switch is shown whole to supervisors
//! and to the agent it goes to, masked to other agents, read-only keys and wall screens, in
//! deltas and in snapshots.

#[path = "server_common/mod.rs"]
mod server_common;

use std::time::Duration;

use serde_json::{Value, json};
use server_common::live::{LiveStream, Sse};
use server_common::*;
use switchyard_api::model::Role;
use switchyard_api::store::Store;
use switchyard_esl::sim::{DtmfScript, InboundCall};

const DID: &str = "+15550100100";
const CALLER: &str = "+12015550123";
const MASKED: &str = "+*********23";

/// A queue reached from `DID`, with `agent` its one member, available through its own key.
async fn inbound_queue(s: &Server, admin: &str, agent: i64, desk: &str) {
    let (st, q) = s
        .call(
            "POST",
            "/v1/queues",
            Some(admin),
            Some(json!({"name": "sales"})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    let queue = q["id"].as_i64().unwrap().to_string();
    let (st, m) = s
        .call(
            "POST",
            &format!("/v1/queues/{queue}/members"),
            Some(admin),
            Some(json!({"agent_id": agent})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    let flow = json!({"name": "front door", "config": {
        "steps": [{"kind": "queue", "id": "sales", "queue": queue}],
        "fallback": {"queue": queue}
    }});
    let (st, f) = s.call("POST", "/v1/flows", Some(admin), Some(flow)).await;
    assert_eq!(st, 201, "{f}");
    let number = json!({"number": DID, "flow": f["id"]});
    let (st, n) = s
        .call("POST", "/v1/numbers", Some(admin), Some(number))
        .await;
    assert_eq!(st, 201, "{n}");
    let (st, a) = s
        .call(
            "PUT",
            &format!("/v1/agents/{agent}/state"),
            Some(desk),
            Some(json!({"state": "available"})),
        )
        .await;
    assert_eq!(st, 200, "{a}");
}

/// Every event of the feed until (and with) the first `kind` naming `agent`, within 20 s.
async fn until_agent(live: &mut LiveStream, kind: &str, agent: i64) -> Vec<Sse> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ev = live
            .next(left)
            .await
            .unwrap_or_else(|| panic!("no {kind} for agent {agent}; saw {seen:?}"));
        let done = ev.event == kind && ev.data["agent_id"] == json!(agent);
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

/// The numbers and names the events show of calls.
fn shown(events: &[Sse]) -> Vec<(String, Value, Value)> {
    events
        .iter()
        .filter(|e| e.event.starts_with("call.") || e.event == "snapshot")
        .flat_map(|e| {
            if e.event == "snapshot" {
                e.data["state"]["calls"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            } else {
                vec![e.data.clone()]
            }
            .into_iter()
            .map(move |c| (e.event.clone(), c))
        })
        .filter(|(_, c)| c.get("caller_number").is_some())
        .map(|(kind, c)| (kind, c["caller_number"].clone(), c["caller_name"].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_callers_number_is_whole_for_supervisors_and_its_agent_and_masked_for_the_rest()
{
    let store = Store::sqlite_memory().await.expect("in-memory sqlite");
    store.migrate().await.expect("sqlite migrations");
    let s = Server::start(store).await;
    let (tenant, admin) = s.tenant("acme").await;
    let ana = s.agent(&admin, "Ana", "user/1000").await;
    let bob = s.agent(&admin, "Bob", "user/1001").await;
    let anas_desk = s.agent_key(tenant, ana).await;
    let bobs_desk = s.agent_key(tenant, bob).await;
    let supervisor = s.key(Some(tenant), Role::Supervisor).await;
    let reader = s.key(Some(tenant), Role::ReadOnly).await;
    inbound_queue(&s, &admin, ana, &anas_desk).await;
    let mut streams = Vec::new();
    for key in [&supervisor, &anas_desk, &bobs_desk, &reader] {
        streams.push(LiveStream::open(&s, key, None).await);
    }
    s.switch
        .as_ref()
        .unwrap()
        .place_scripted_call(
            InboundCall {
                caller_number: CALLER.into(),
                caller_name: "Jane Roe".into(),
                destination: DID.into(),
                talk_time: Some(Duration::from_secs(60)),
                ..InboundCall::default()
            },
            DtmfScript::new(Vec::new()).unwrap(),
        )
        .await
        .expect("the fake switch places the call");
    let mut seen = Vec::new();
    for live in &mut streams {
        seen.push(shown(&until_agent(live, "call.answered", ana).await));
    }
    let [sup, anas, bobs, readers] = &seen[..] else {
        unreachable!()
    };

    // The supervisor: whole from the first delta.
    assert!(
        sup.iter().any(|(k, _, _)| k == "call.queued"),
        "the supervisor saw the caller queue: {sup:?}"
    );
    for (kind, number, name) in sup {
        assert_eq!(
            (number, name),
            (&json!(CALLER), &json!("Jane Roe")),
            "{kind}"
        );
    }
    // Ana: masked while the caller waits for anyone, whole once the call is hers.
    let (first, last) = (anas.first().unwrap(), anas.last().unwrap());
    assert_eq!(
        (first.0.as_str(), &first.1, &first.2),
        ("call.queued", &json!(MASKED), &Value::Null),
        "{anas:?}"
    );
    assert_eq!(
        (last.0.as_str(), &last.1, &last.2),
        ("call.answered", &json!(CALLER), &json!("Jane Roe")),
        "{anas:?}"
    );
    // Bob and the read-only key: masked throughout, never a name.
    for (who, events) in [("Bob", bobs), ("read-only", readers)] {
        assert!(events.len() >= 2, "{who}: {events:?}");
        for (kind, number, name) in events {
            assert_eq!(
                (number, name),
                (&json!(MASKED), &Value::Null),
                "{who} {kind}"
            );
        }
    }

    // A screen opened now starts from a snapshot filtered the same way.
    for (key, want) in [
        (&anas_desk, CALLER),
        (&bobs_desk, MASKED),
        (&reader, MASKED),
    ] {
        let mut live = LiveStream::open(&s, key, None).await;
        let snap = live.next(Duration::from_secs(5)).await.expect("a snapshot");
        let calls = shown(&[snap]);
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].1, json!(want));
    }
    s.stop().await;
}
