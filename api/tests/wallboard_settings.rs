//! The wallboard's stored state on both backends: tile thresholds (`GET/PUT
//! /v1/wallboard/settings`: readers read, admins write, validated with the field named,
//! audited), and the day's figures the runtime publishes into the live snapshot, with what an
//! earlier run saved of the open interval.

mod server_common;
mod store_common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::store::CheckpointRow;
use switchyard_engine::stats::{QueueStatsConfig, Stats, StatsConfig};
use switchyard_engine::{AgentId, CallId, QueueId};

#[tokio::test(flavor = "multi_thread")]
async fn thresholds_are_stored_per_tenant_by_admins_validated_and_audited() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_tenant, admin) = s.tenant("acme").await;
        let (_other, other_admin) = s.tenant("globex").await;
        let (st, sup) = s
            .call(
                "POST",
                "/v1/api-keys",
                Some(&admin),
                Some(json!({ "name": "sup", "role": "supervisor" })),
            )
            .await;
        assert_eq!(st, 201, "{sup}");
        let sup = sup["key"].as_str().unwrap().to_owned();

        // The defaults until an admin stores some.
        let (st, d) = s
            .call("GET", "/v1/wallboard/settings", Some(&sup), None)
            .await;
        assert_eq!(st, 200, "{d}");
        assert_eq!(
            d["service_level_pct"],
            json!({"amber_below": 90.0, "red_below": 80.0})
        );
        assert_eq!(
            d["longest_wait_s"],
            json!({"amber_from": 60.0, "red_from": 180.0})
        );

        // A supervisor reads but does not write.
        let body = json!({"service_level_pct": {"amber_below": 95, "red_below": 85}});
        let (st, e) = s
            .call(
                "PUT",
                "/v1/wallboard/settings",
                Some(&sup),
                Some(body.clone()),
            )
            .await;
        assert_eq!(st, 403, "{e}");
        let (st, put) = s
            .call("PUT", "/v1/wallboard/settings", Some(&admin), Some(body))
            .await;
        assert_eq!(st, 200, "{put}");
        let (_, got) = s
            .call("GET", "/v1/wallboard/settings", Some(&sup), None)
            .await;
        assert_eq!(got["service_level_pct"]["red_below"], 85.0, "{got}");
        // Left out of the PUT: the default.
        assert_eq!(got["longest_wait_s"]["red_from"], 180.0, "{got}");
        // Another tenant's are its own.
        let (_, theirs) = s
            .call("GET", "/v1/wallboard/settings", Some(&other_admin), None)
            .await;
        assert_eq!(theirs["service_level_pct"]["red_below"], 80.0, "{theirs}");

        // Refused, naming the field: out of range, wrong order, unknown.
        for (body, field) in [
            (
                json!({"abandon_rate_pct": {"amber_from": 5, "red_from": 101}}),
                "abandon_rate_pct.red_from",
            ),
            (
                json!({"asa_s": {"amber_from": 30, "red_from": 10}}),
                "asa_s.red_from",
            ),
            (
                json!({"waiting": {"amber_from": -1, "red_from": 2}}),
                "waiting.amber_from",
            ),
        ] {
            let (st, e) = s
                .call(
                    "PUT",
                    "/v1/wallboard/settings",
                    Some(&admin),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(st, 422, "{body}: {e}");
            assert_eq!(e["error"]["field"], field, "{e}");
        }
        let (st, e) = s
            .call(
                "PUT",
                "/v1/wallboard/settings",
                Some(&admin),
                Some(json!({"colour": "red"})),
            )
            .await;
        assert_eq!(st, 422, "{e}");
        // Nothing refused was stored.
        let (_, got) = s
            .call("GET", "/v1/wallboard/settings", Some(&sup), None)
            .await;
        assert_eq!(got["abandon_rate_pct"]["red_from"], 10.0, "{got}");

        let (st, audit) = s.call("GET", "/v1/audit", Some(&admin), None).await;
        assert_eq!(st, 200, "{audit}");
        let entries = audit["entries"].as_array().unwrap();
        let writes: Vec<&Value> = entries
            .iter()
            .filter(|e| e["action"] == "wallboard.settings")
            .collect();
        assert_eq!(writes.len(), 1, "one write stored, one audited: {audit}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_snapshot_carries_the_days_figures_with_what_an_earlier_run_counted() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let (tenant, admin) = s.tenant("acme").await;
        let (st, q) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&admin),
                Some(json!({"name": "sales", "config": {"sl_threshold_s": 15}})),
            )
            .await;
        assert_eq!(st, 201, "{q}");
        let shown = q["id"].as_i64().unwrap();
        let id =
            s.rt.ids
                .decode(switchyard_api::ids::IdKind::Queue, shown)
                .unwrap();
        s.stop().await;
        // What a run killed a moment ago saved of the quarter hour open now: 3 calls answered
        // (waits 1, 2 and 30 s: 2 within 15 s), 2 abandoned, 3 handled in 300 s. Counted by
        // the engine's own statistics, as a running server counts them.
        let now_ms = switchyard_api::store::now_ms();
        let t0 = std::time::Instant::now();
        let mut stats = Stats::new(StatsConfig::new(t0, u64::try_from(now_ms).unwrap()));
        let (queue, agent) = (QueueId(u32::try_from(id).unwrap()), AgentId(1));
        stats.configure_queue(
            queue,
            QueueStatsConfig {
                sl_threshold: Duration::from_secs(15),
                ..QueueStatsConfig::default()
            },
        );
        for n in 1..=5 {
            stats.call_entered(t0, queue, CallId(n));
        }
        // In time order: the stats take no event from before the last one.
        for (n, wait) in [(1u32, 1u64), (2, 2), (4, 10), (5, 10), (3, 30)] {
            let at = t0 + Duration::from_secs(wait);
            if n >= 4 {
                stats.call_abandoned(at, queue, CallId(n));
                continue;
            }
            stats.call_answered(at, queue, CallId(n), agent);
            stats.call_talk_ended(at, queue, CallId(n), agent, Duration::ZERO);
            stats.wrapup_ended(at, queue, agent, Duration::from_secs(100));
        }
        let open = stats.open_interval(t0 + Duration::from_secs(40));
        store
            .save_interval_checkpoint(&CheckpointRow {
                run_id: "killed-run".into(),
                start_ms: i64::try_from(open.start_unix_ms()).unwrap(),
                saved_at: now_ms,
                counters: serde_json::to_value(&open).unwrap(),
            })
            .await
            .unwrap();

        // The next start publishes today's figures with them, derived as the engine does.
        let s = Server::start(store.clone()).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        let figures = loop {
            let f = s.rt.live.snapshot(tenant)["figures"].clone();
            if f["queues"].as_array().is_some_and(|q| !q.is_empty()) {
                break f;
            }
            assert!(Instant::now() < deadline, "no figures in the snapshot: {f}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let q = &figures["queues"][0];
        assert_eq!(q["id"], shown, "{figures}");
        assert_eq!(q["sl_threshold_s"], 15.0, "{figures}");
        assert_eq!(
            (&q["handled"], &q["abandoned"]),
            (&json!(3), &json!(2)),
            "{figures}"
        );
        assert_eq!(q["service_level"], json!(2.0 / 5.0), "{figures}");
        assert_eq!(q["asa_s"], json!(11.0), "{figures}");
        assert_eq!(q["aht_s"], json!(100.0), "{figures}");
        // The start took the killed run's checkpoint over (at its first save, at once): its
        // own holds the counters now.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rows = store.interval_checkpoints().await.unwrap();
            if rows.len() == 1 && rows[0].run_id != "killed-run" {
                break;
            }
            assert!(Instant::now() < deadline, "not taken over: {rows:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(figures["total"]["handled"], 3, "{figures}");
        assert_eq!(figures["time_zone"], "UTC", "{figures}");
        assert_eq!(figures["campaigns"], json!([]), "{figures}");
        s.stop().await;
    })
    .await;
}
