//! Identity over real HTTP on loopback, on both storage backends: a record whose id is
//! already stored is refused, counted in `/metrics`, and the stored one kept.

#[path = "server_common/mod.rs"]
mod server_common;
#[path = "store_common/mod.rs"]
mod store_common;

use std::time::Duration;

use serde_json::json;
use server_common::*;
use switchyard_api::store::CallRow;
use tokio::time::Instant;

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
        s.store
            .insert_calls(std::slice::from_ref(&earlier))
            .await
            .unwrap();
        assert_eq!(
            metric_at_least(&s, "switchyard_records_duplicate", 1.0).await,
            1.0
        );
        assert!(metric_at_least(&s, "switchyard_records_dropped", 1.0).await >= 1.0);
        let (st, call) = s.call("GET", &format!("/v1/calls/{leg}"), k, None).await;
        assert_eq!(st, 200, "{call}");
        assert_eq!(
            (call["outcome"].as_str(), call["caller_number"].as_str()),
            (Some("answered"), Some("+15550000000")),
            "the stored call is kept: {call}"
        );
        s.stop().await;
    })
    .await;
}
