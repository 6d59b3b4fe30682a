//! Identity and referential safety over real HTTP on loopback, on both storage backends: a
//! record whose id is already stored is refused, counted and the stored one kept; a queue that
//! calls or campaigns use cannot be deleted.

#[path = "server_common/mod.rs"]
mod server_common;
#[path = "store_common/mod.rs"]
mod store_common;

use std::time::Duration;

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::store::{CallRow, StoreError};
use tokio::time::Instant;

/// Polls `GET path` until `done` holds for the body (10 s at most).
async fn poll_until(s: &Server, path: &str, key: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = s.call("GET", path, Some(key), None).await;
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{path}: still {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A gauge or counter of `/metrics` (the unlabelled series), once it reads at least `min`
/// (the engine's gauges are refreshed every 5 s).
async fn metric_at_least(s: &Server, name: &str, min: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = s
            .http
            .get(format!("{}/metrics", s.base))
            .send()
            .await
            .expect("/metrics")
            .text()
            .await
            .unwrap_or_default();
        let value = text.lines().find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse::<f64>().ok()).flatten()
        });
        if let Some(v) = value.filter(|v| *v >= min) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never reached {min}: {value:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn caller(
    destination: &str,
    patience: Option<Duration>,
    talk: Option<Duration>,
) -> switchyard_esl::sim::InboundCall {
    switchyard_esl::sim::InboundCall {
        caller_number: "5551234".into(),
        caller_name: "Caller".into(),
        destination: destination.into(),
        patience,
        talk_time: talk,
        dtmf: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_record_under_a_stored_id_is_counted_in_metrics_and_the_stored_one_kept() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, key) = s.tenant("acme").await;
        let k = Some(key.as_str());
        let (st, q) = s
            .call(
                "POST",
                "/v1/queues",
                k,
                Some(json!({"name": "sales", "config": {"numbers": ["5000"]}})),
            )
            .await;
        assert_eq!(st, 201, "{q}");
        let qid = q["id"].as_i64().unwrap();
        // No agent: the caller waits, then gives up.
        let leg = s
            .switch
            .as_ref()
            .unwrap()
            .place_inbound_call(caller("5000", Some(Duration::from_millis(1500)), None))
            .await
            .expect("the fake switch places the call");
        // Meanwhile another call under that uuid is stored (as a switch that reuses uuids
        // would have left it, in an earlier run).
        let earlier = CallRow {
            id: leg.parse().unwrap(),
            tenant,
            queue_id: qid,
            queues: vec![qid],
            agent_id: None,
            caller_number: "+15550000000".into(),
            outcome: "answered".into(),
            arrived_at_ms: 1_700_000_000_000,
            wait_ms: 1_000,
            talk_ms: 30_000,
            offers: 1,
            synthetic: false,
            callback_leg: None,
        };
        // The call's own open row is written within milliseconds of its arrival: whichever
        // of the two is stored first is kept and the other refused.
        match s.store.insert_calls(std::slice::from_ref(&earlier)).await {
            Ok(()) => {
                // Both of the call's rows (open at arrival, final when the caller gives up)
                // meet the stored one: both refused, counted, and the stored one kept.
                assert_eq!(
                    metric_at_least(&s, "switchyard_records_duplicate", 2.0).await,
                    2.0
                );
                assert!(metric_at_least(&s, "switchyard_records_dropped", 2.0).await >= 2.0);
                let (st, call) = s.call("GET", &format!("/v1/calls/{leg}"), k, None).await;
                assert_eq!(st, 200, "{call}");
                assert_eq!(
                    (call["outcome"].as_str(), call["caller_number"].as_str()),
                    (Some("answered"), Some("+15550000000")),
                    "the stored call is kept: {call}"
                );
            }
            Err(StoreError::Duplicate { ids, .. }) => {
                assert_eq!(ids, std::slice::from_ref(&leg));
                // The call keeps its own rows: it ends abandoned under its id.
                let call = poll_until(&s, &format!("/v1/calls/{leg}"), &key, |c| {
                    c["outcome"] == "abandoned"
                })
                .await;
                assert_eq!(call["caller_number"], "5551234", "{call}");
            }
            Err(e) => panic!("{e}"),
        }
        s.stop().await;
    })
    .await;
}

/// A tenant with queue `sales` on 5000 (and its key).
async fn sales_queue(s: &Server) -> (String, i64) {
    let (_, key) = s.tenant("acme").await;
    let (st, q) = s
        .call(
            "POST",
            "/v1/queues",
            Some(&key),
            Some(json!({"name": "sales", "config": {"numbers": ["5000"]}})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    (key, q["id"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_a_campaign_dials_for_cannot_be_deleted_until_the_campaign_goes() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (key, qid) = sales_queue(&s).await;
        let k = Some(key.as_str());
        let mut campaigns = Vec::new();
        for name in ["renewals", "winback"] {
            let (st, c) = s
                .call(
                    "POST",
                    "/v1/campaigns",
                    k,
                    Some(json!({"name": name, "config": {"queue": qid, "caller_id": "+12015550100"}})),
                )
                .await;
            assert_eq!(st, 201, "{c}");
            campaigns.push(c["id"].as_i64().unwrap());
        }
        // A completed campaign names its queue too.
        let (st, c) = s
            .call("POST", &format!("/v1/campaigns/{}/stop", campaigns[1]), k, None)
            .await;
        assert_eq!((st, c["state"].as_str()), (200, Some("completed")), "{c}");

        let (st, e) = s.call("DELETE", &format!("/v1/queues/{qid}"), k, None).await;
        assert_eq!((st, error_code(&e)), (409, "conflict"), "{e}");
        assert_eq!(e["used_by"], json!({"calls": 0, "campaigns": campaigns}), "{e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("campaigns {}, {}", campaigns[0], campaigns[1])),
            "{message}"
        );
        // Nothing dangles: the queue is there, and the campaigns can still be changed.
        let (st, _) = s.call("GET", &format!("/v1/queues/{qid}"), k, None).await;
        assert_eq!(st, 200);
        for c in &campaigns {
            let (st, p) = s
                .call(
                    "PATCH",
                    &format!("/v1/campaigns/{c}"),
                    k,
                    Some(json!({"config": {"max_lines": 3}})),
                )
                .await;
            assert_eq!(st, 200, "{p}");
        }
        // Once no campaign dials for it, it goes.
        let (st, _) = s
            .call("DELETE", &format!("/v1/campaigns/{}", campaigns[0]), k, None)
            .await;
        assert_eq!(st, 204);
        let (st, e) = s.call("DELETE", &format!("/v1/queues/{qid}"), k, None).await;
        assert_eq!(st, 409, "{e}");
        assert_eq!(e["used_by"]["campaigns"], json!([campaigns[1]]), "{e}");
        let (st, _) = s
            .call("DELETE", &format!("/v1/campaigns/{}", campaigns[1]), k, None)
            .await;
        assert_eq!(st, 204);
        let (st, e) = s.call("DELETE", &format!("/v1/queues/{qid}"), k, None).await;
        assert_eq!(st, 204, "{e}");
        let (st, _) = s.call("GET", &format!("/v1/queues/{qid}"), k, None).await;
        assert_eq!(st, 404);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_with_a_call_in_progress_cannot_be_deleted_and_the_call_keeps_its_record() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (key, qid) = sales_queue(&s).await;
        let k = Some(key.as_str());
        let aid = s.agent(&key, "Ana", "user/1000").await;
        let (st, m) = s
            .call(
                "POST",
                &format!("/v1/queues/{qid}/members"),
                k,
                Some(json!({"agent_id": aid})),
            )
            .await;
        assert_eq!(st, 201, "{m}");
        let (st, _) = s
            .call(
                "PUT",
                &format!("/v1/agents/{aid}/state"),
                k,
                Some(json!({"state": "available"})),
            )
            .await;
        assert_eq!(st, 200);
        let leg = s
            .switch
            .as_ref()
            .unwrap()
            .place_inbound_call(caller("5000", None, Some(Duration::from_secs(3))))
            .await
            .expect("the fake switch places the call");
        let path = format!("/v1/calls/{leg}");
        poll_until(&s, &path, &key, |v| v["phase"] == "talking").await;

        // Talking, not waiting: the call still belongs to the queue.
        let (st, e) = s
            .call("DELETE", &format!("/v1/queues/{qid}"), k, None)
            .await;
        assert_eq!((st, error_code(&e)), (409, "conflict"), "{e}");
        assert_eq!(e["used_by"], json!({"calls": 1, "campaigns": []}), "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("1 call(s)")),
            "{e}"
        );
        // The call ends and is recorded under its queue; then the queue can go.
        // Ended, and its final record written (its open row stays `in-progress` until then).
        let record = poll_until(&s, &path, &key, |v| {
            v["live"] == false && v["outcome"] != "in-progress"
        })
        .await;
        assert_eq!(
            (record["outcome"].as_str(), record["queue_id"].as_i64()),
            (Some("answered"), Some(qid)),
            "{record}"
        );
        let (st, e) = s
            .call("DELETE", &format!("/v1/queues/{qid}"), k, None)
            .await;
        assert_eq!(st, 204, "{e}");
        s.stop().await;
    })
    .await;
}
