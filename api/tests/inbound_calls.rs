//! The stored number plan at work, on SQLite and PostgreSQL: a flow and a number written
//! through the API route the next caller (the fake switch's, pressing keys by script) through
//! the flow's menu to the queue it names, with no restart, and the call's record shows its
//! walk; a caller who hangs up in the menu has its walk and its CDR, under its tenant; a number
//! taken out of the plan no longer runs the flow.

mod server_common;
mod store_common;

use std::time::Duration;

use serde_json::{Value, json};
use server_common::*;
use switchyard_esl::sim::{DtmfPress, DtmfScript, InboundCall};

const DID: &str = "+1 (555) 010-0100";

async fn queue(s: &Server, key: &str, name: &str) -> i64 {
    let (st, q) = s
        .call(
            "POST",
            "/v1/queues",
            Some(key),
            Some(json!({"name": name, "config": {}})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    q["id"].as_i64().unwrap()
}

async fn available_agent(s: &Server, key: &str, queue: i64, contact: &str) -> i64 {
    let agent = s.agent(key, "Ana", contact).await;
    let (st, m) = s
        .call(
            "POST",
            &format!("/v1/queues/{queue}/members"),
            Some(key),
            Some(json!({"agent_id": agent})),
        )
        .await;
    assert!((200..300).contains(&st), "{m}");
    let (st, a) = s
        .call(
            "PUT",
            &format!("/v1/agents/{agent}/state"),
            Some(key),
            Some(json!({"state": "available"})),
        )
        .await;
    assert_eq!(st, 200, "{a}");
    agent
}

/// Press 1 for support, 2 for sales.
fn flow(support: i64, sales: i64) -> Value {
    json!({
        "steps": [
            {"kind": "menu", "id": "greet", "menu": "main"},
            {"kind": "queue", "id": "sales", "queue": sales.to_string()},
            {"kind": "queue", "id": "support", "queue": support.to_string()}
        ],
        "menus": [{
            "id": "main",
            "greet_long": "ivr/main.wav",
            "timeout_ms": 1500,
            "inter_digit_timeout_ms": 1000,
            "max_failures": 3,
            "max_timeouts": 3,
            "entries": [
                {"keys": {"exact": "1"}, "action": {"kind": "step", "step": "support"}},
                {"keys": {"exact": "2"}, "action": {"kind": "step", "step": "sales"}}
            ],
            "on_max_failures": {"kind": "step", "step": "support"},
            "on_max_timeouts": {"kind": "step", "step": "support"}
        }],
        "fallback": {"queue": support.to_string()}
    })
}

/// A caller dialling the DID who presses 2 (when a menu asks).
async fn caller_pressing_2(s: &Server) -> String {
    let script = DtmfScript::new(vec![
        DtmfPress::new(Duration::from_millis(800), "2").unwrap(),
    ])
    .unwrap();
    s.switch
        .as_ref()
        .unwrap()
        .place_scripted_call(
            InboundCall {
                caller_number: "5557770001".into(),
                destination: "+15550100100".into(),
                talk_time: Some(Duration::from_secs(1)),
                ..InboundCall::default()
            },
            script,
        )
        .await
        .expect("the fake switch places the call")
}

/// The call's record once it has one.
async fn record_of(s: &Server, key: &str, leg: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (st, call) = s
            .call("GET", &format!("/v1/calls/{leg}"), Some(key), None)
            .await;
        if st == 200 && call["outcome"].as_str().is_some_and(|o| o != "in-progress") {
            return call;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no record for {leg}: {call}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_written_through_the_api_runs_its_flow_for_the_next_caller() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let support = queue(&s, &key, "support").await;
        let sales = queue(&s, &key, "sales").await;
        let ana = available_agent(&s, &key, sales, "user/1000").await;
        let (st, f) = s
            .call(
                "POST",
                "/v1/flows",
                Some(&key),
                Some(json!({"name": "front door", "config": flow(support, sales)})),
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
        let leg = caller_pressing_2(&s).await;
        let call = record_of(&s, &key, &leg).await;
        assert_eq!(call["outcome"], "answered", "{call}");
        assert_eq!(call["queue_id"].as_i64(), Some(sales), "{call}");
        assert_eq!(call["agent_id"].as_i64(), Some(ana), "{call}");
        // The call's record carries its walk: the menu, the key, the queue it led to.
        let journey = &call["journey"];
        assert_eq!(journey["flow_id"], f["id"].to_string(), "{call}");
        assert_eq!(journey["routed"], format!("queue:{sales}"), "{call}");
        let pressed = journey["entries"].as_array().unwrap().iter().any(|e| {
            e["node"] == json!({"menu": "main"}) && e["outcome"] == json!({"digits": "2"})
        });
        assert!(pressed, "{journey}");

        // Out of the plan, the number is no queue's: the next caller is not routed.
        let (st, _) = s
            .call(
                "DELETE",
                &format!("/v1/numbers/{}", n["id"]),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(st, 204);
        let leg = caller_pressing_2(&s).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (st, call) = s
            .call("GET", &format!("/v1/calls/{leg}"), Some(&key), None)
            .await;
        assert_eq!(st, 404, "an unrouted caller is refused at the door: {call}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_hangs_up_in_the_menu_has_its_walk_and_its_cdr() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, key) = s.tenant("acme").await;
        let support = queue(&s, &key, "support").await;
        let sales = queue(&s, &key, "sales").await;
        let (st, f) = s
            .call(
                "POST",
                "/v1/flows",
                Some(&key),
                Some(json!({"name": "front door", "config": flow(support, sales)})),
            )
            .await;
        assert_eq!(st, 201, "{f}");
        let (st, _) = s
            .call(
                "POST",
                "/v1/numbers",
                Some(&key),
                Some(json!({"number": DID, "flow": f["id"]})),
            )
            .await;
        assert_eq!(st, 201);
        // Gives up while the menu still asks.
        let leg = s
            .switch
            .as_ref()
            .unwrap()
            .place_scripted_call(
                InboundCall {
                    caller_number: "5557770009".into(),
                    destination: "+15550100100".into(),
                    patience: Some(Duration::from_millis(700)),
                    ..InboundCall::default()
                },
                DtmfScript::new(Vec::new()).unwrap(),
            )
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let journey = loop {
            let (st, j) = s
                .call("GET", &format!("/v1/calls/{leg}/journey"), Some(&key), None)
                .await;
            if st == 200 {
                break j;
            }
            assert!(tokio::time::Instant::now() < deadline, "no journey: {j}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(journey["routed"], Value::Null, "{journey}");
        assert_eq!(journey["dialled"], "+15550100100", "{journey}");
        let entered = journey["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["node"] == json!({"step": "greet"}));
        assert!(entered, "{journey}");
        // Never in a queue, so no call record; its CDR is still its tenant's.
        let (st, _) = s
            .call("GET", &format!("/v1/calls/{leg}"), Some(&key), None)
            .await;
        assert_eq!(st, 404);
        let uuid = uuid::Uuid::parse_str(&leg).unwrap();
        let mut cdrs = Vec::new();
        for _ in 0..300 {
            cdrs = s.store.cdrs_for_call(tenant, uuid).await.unwrap();
            if !cdrs.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(cdrs.len(), 1, "the caller's CDR under its tenant");
        // Another tenant does not see the walk.
        let (_, other) = s.tenant("other").await;
        let (st, _) = s
            .call(
                "GET",
                &format!("/v1/calls/{leg}/journey"),
                Some(&other),
                None,
            )
            .await;
        assert_eq!(st, 404);
        s.stop().await;
    })
    .await;
}
