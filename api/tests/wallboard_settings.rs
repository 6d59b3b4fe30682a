//! The wallboard's stored state on both backends: tile thresholds (`GET/PUT
//! /v1/wallboard/settings`: readers read, admins write, validated with the field named,
//! audited), the counters a graceful stop files, and the day's figures the runtime publishes
//! into the live snapshot.

mod server_common;
mod store_common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::store::CarryRow;

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
async fn the_live_snapshot_carries_the_days_figures_with_the_counters_a_stop_filed() {
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
        // As a graceful stop in the current quarter hour filed them (today in UTC, the
        // tenant's zone).
        let start_ms = switchyard_api::store::now_ms() / 900_000 * 900_000;
        let counters = json!({"offered": 5, "answered": 3, "answered_within_sl": 2,
            "abandoned": 2, "handled": 3, "answer_wait_s": 6.0, "handle_s": 300.0});
        store
            .insert_wallboard_carry(&[CarryRow {
                tenant,
                queue_id: id,
                start_ms,
                counters: counters.clone(),
            }])
            .await
            .unwrap();
        let back = store.wallboard_carry(tenant, start_ms).await.unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].counters, counters);
        // Yesterday's are not read for today.
        assert!(
            store
                .wallboard_carry(tenant, start_ms + 900_000)
                .await
                .unwrap()
                .is_empty()
        );

        // The next start publishes today's figures with them, derived as the engine does.
        let s = Server::start(store).await;
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
        assert_eq!(q["asa_s"], json!(2.0), "{figures}");
        assert_eq!(q["aht_s"], json!(100.0), "{figures}");
        assert_eq!(figures["total"]["handled"], 3, "{figures}");
        assert_eq!(figures["time_zone"], "UTC", "{figures}");
        assert_eq!(figures["campaigns"], json!([]), "{figures}");
        s.stop().await;
    })
    .await;
}
