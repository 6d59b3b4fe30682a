//! Boot through the run loop and the one validate - write - apply path, over real HTTP on
//! loopback against the fake switch, on both backends: a stored queue the engine cannot take
//! is left out of the start (not fatal), a change the engine refuses leaves the store and the
//! engine as they were, and an agent on a persistent line gets its line after a restart.

mod server_common;
mod store_common;

use std::time::Duration;

use serde_json::{Value, json};
use server_common::{Server, audit, error_code};
use switchyard_api::model::Role;
use switchyard_api::spec::QueueSpec;
use switchyard_api::store::Store;
use switchyard_engine::{CampaignId, QueueId};

/// A tenant with an admin key, made in the store before any server runs.
async fn tenant(store: &Store) -> (switchyard_api::model::TenantId, String) {
    let t = store
        .create_tenant_granted("acme", &switchyard_api::grants::DialGrants::lab(), &audit())
        .await
        .unwrap();
    let (_, key) = store
        .create_api_key(Some(t.id), Role::Admin, None, "admin", None, &audit())
        .await
        .unwrap();
    (t.id, key)
}

async fn engine_queues(s: &Server) -> Vec<QueueId> {
    s.rt.engine
        .query(|e| e.queue_ids().collect::<Vec<_>>())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_the_engine_refuses_leaves_the_row_and_the_engine_as_they_were() {
    store_common::each_backend(|store| async move {
        let (t, key) = tenant(&store).await;
        let k = Some(key.as_str());
        let valid = serde_json::to_value(QueueSpec::default()).unwrap();
        let good = store
            .create_queue(t, "sales", valid, &audit())
            .await
            .unwrap()
            .id;
        // Written by another build or by hand: a service-level threshold of zero.
        let mut broken = serde_json::to_value(QueueSpec::default()).unwrap();
        broken["sl_threshold_s"] = json!(0);
        let bad = store
            .create_queue(t, "broken", broken, &audit())
            .await
            .unwrap()
            .id;

        // The broken queue is left out; the start goes on and the others run.
        let s = Server::start(store.clone()).await;
        let running = engine_queues(&s).await;
        assert!(running.contains(&QueueId(good as u32)), "{running:?}");
        assert!(!running.contains(&QueueId(bad as u32)), "{running:?}");

        let (st, c) = s
            .call(
                "POST",
                "/v1/campaigns",
                k,
                Some(json!({"name": "spring", "config": {"queue": s.rt.ids.queue(good), "caller_id": "+12015550100"}})),
            )
            .await;
        assert_eq!(st, 201, "{c}");
        let cid = c["id"].as_i64().unwrap();

        // The store has the queue, so validation lets it through; the engine does not run
        // it and refuses. The campaign is as it was, in the store and in the engine.
        let (st, e) = s
            .call(
                "PATCH",
                &format!("/v1/campaigns/{cid}"),
                k,
                Some(json!({"name": "summer", "config": {"queue": s.rt.ids.queue(bad)}})),
            )
            .await;
        assert_eq!((st, error_code(&e)), (422, "invalid_field"), "{e}");
        assert_eq!(e["error"]["field"], "config.queue", "{e}");
        let (st, after) = s
            .call("GET", &format!("/v1/campaigns/{cid}"), k, None)
            .await;
        assert_eq!(st, 200);
        assert_eq!(after, c, "the stored row is the one before the update");
        let stored = s
            .rt
            .ids
            .decode(switchyard_api::ids::IdKind::Campaign, cid)
            .unwrap();
        assert_eq!(campaigns_of(&s, good).await, vec![CampaignId(stored as u32)]);
        assert!(campaigns_of(&s, bad).await.is_empty());
        // Both the update and its undoing are in the audit log.
        let actions = audit_actions(&store, "campaign", stored).await;
        assert_eq!(
            actions,
            ["campaign.create", "campaign.update", "campaign.update"],
            "{actions:?}"
        );

        // A membership of the queue the engine does not run is refused and not kept.
        let bad_shown = s.rt.ids.queue(bad);
        let aid = s.agent(&key, "Ana", "user/1000").await;
        let (st, e) = s
            .call(
                "POST",
                &format!("/v1/queues/{bad_shown}/members"),
                k,
                Some(json!({"agent_id": aid})),
            )
            .await;
        assert_eq!((st, e["error"]["field"].as_str()), (422, Some("id")), "{e}");
        let (_, m) = s
            .call("GET", &format!("/v1/queues/{bad_shown}/members"), k, None)
            .await;
        assert_eq!(m["members"], json!([]), "{m}");

        // Fixing the stored queue through the API loads it; then the same update goes through.
        let (st, q) = s
            .call(
                "PATCH",
                &format!("/v1/queues/{bad_shown}"),
                k,
                Some(json!({"config": {"sl_threshold_s": 20}})),
            )
            .await;
        assert_eq!(st, 200, "{q}");
        assert!(engine_queues(&s).await.contains(&QueueId(bad as u32)));
        let (st, c2) = s
            .call(
                "PATCH",
                &format!("/v1/campaigns/{cid}"),
                k,
                Some(json!({"config": {"queue": bad_shown}})),
            )
            .await;
        assert_eq!((st, &c2["config"]["queue"]), (200, &json!(bad_shown)), "{c2}");
        assert_eq!(campaigns_of(&s, bad).await, vec![CampaignId(stored as u32)]);
        s.stop().await;
    })
    .await;
}

/// The campaigns the engine runs for a queue.
async fn campaigns_of(s: &Server, q: i64) -> Vec<CampaignId> {
    s.rt.engine
        .query(move |e| e.queue_users(QueueId(q as u32)).1)
        .await
        .unwrap()
}

/// The audit actions recorded on one object, oldest first.
async fn audit_actions(store: &Store, kind: &str, id: i64) -> Vec<String> {
    use switchyard_api::store::Pools;
    let sql = "SELECT action FROM audit_log WHERE object_kind = $1 AND object_id = $2 ORDER BY id";
    let id = id.to_string();
    let rows: Vec<(String,)> = match store.pools() {
        Pools::Sqlite { writer, .. } => sqlx::query_as(sql)
            .bind(kind)
            .bind(&id)
            .fetch_all(writer)
            .await
            .unwrap(),
        Pools::Postgres(pg) => sqlx::query_as(sql)
            .bind(kind)
            .bind(&id)
            .fetch_all(pg)
            .await
            .unwrap(),
    };
    rows.into_iter().map(|r| r.0).collect()
}

/// `show channels as json` on the fake switch, as rows.
async fn channels(s: &Server) -> Vec<Value> {
    let addr = s.switch.as_ref().unwrap().local_addr();
    let cfg = switchyard_esl::client::ClientConfig::new(
        addr.to_string(),
        switchyard_esl::client::Auth::Password("ClueCon".into()),
    );
    let (client, _events) = switchyard_esl::client::Client::connect(cfg).await.unwrap();
    let body = client.api("show channels as json").await.unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    v["rows"].as_array().cloned().unwrap_or_default()
}

/// Waits (up to 10 s) for a channel to `dest` on the fake switch (`user/1000` shows as `1000`).
async fn wait_for_line(s: &Server, dest: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rows = channels(s).await;
        if let Some(r) = rows.iter().find(|r| r["dest"] == dest) {
            return r.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no channel to {dest}: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_line_agent_available_before_a_restart_gets_its_line_after_it() {
    store_common::each_backend(|store| async move {
        let (_, key) = tenant(&store).await;
        let s = Server::start(store.clone()).await;
        let aid = s
            .agent_with(
                &key,
                "Ana",
                json!({"contact": "user/1000", "persistent_line": true}),
            )
            .await;
        let (st, e) = s
            .call(
                "PUT",
                &format!("/v1/agents/{aid}/state"),
                Some(&key),
                Some(json!({"state": "available"})),
            )
            .await;
        assert_eq!(st, 200, "{e}");
        wait_for_line(&s, "1000").await;
        s.stop().await;

        // A new switchyard (and a new switch: the old line went with the old one).
        let s = Server::start(store.clone()).await;
        let line = wait_for_line(&s, "1000").await;
        // The engine's own line, up: the channel is the leg it originated and follows (not a
        // command sent past it), so the agent can take calls.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let agent = switchyard_engine::AgentId(s.stored_agent(aid) as u32);
        loop {
            let up =
                s.rt.engine
                    .query(move |e| e.agent_info(agent).and_then(|a| a.line_up()))
                    .await
                    .unwrap();
            if let Some(leg) = up {
                let uuid = uuid::Uuid::from_u128(leg.0).to_string();
                let rows = channels(&s).await;
                assert!(
                    rows.iter().any(|r| r["uuid"] == uuid.as_str()),
                    "{uuid} not in {rows:?}"
                );
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the engine never had the line up ({line})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (st, state) = s
            .call("GET", &format!("/v1/agents/{aid}/state"), Some(&key), None)
            .await;
        assert_eq!(
            (st, state["state"].as_str()),
            (200, Some("available")),
            "{state}"
        );
        s.stop().await;
    })
    .await;
}

async fn pacer_of(
    s: &Server,
    id: CampaignId,
) -> Option<switchyard_engine::dialer::pacing::PacerSnapshot> {
    s.rt.engine
        .query(move |e| e.pacer_snapshot(id))
        .await
        .unwrap()
}

/// What a campaign's pacer learned is stored after each lesson and is what the pacer of the
/// next start knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaigns_pacer_comes_back_from_the_store_at_the_next_start() {
    store_common::each_backend(|store| async move {
        let (t, _key) = tenant(&store).await;
        let q = store
            .create_queue(
                t,
                "outbound",
                serde_json::to_value(QueueSpec::default()).unwrap(),
                &audit(),
            )
            .await
            .unwrap()
            .id;
        let spec: switchyard_api::spec_campaign::CampaignSpec = serde_json::from_value(
            json!({"queue": q, "caller_id": "+15550100", "window": {"start": "00:00", "end": "24:00"}}),
        )
        .unwrap();
        let c = store
            .create_campaign(t, "renewals", serde_json::to_value(spec).unwrap(), &audit())
            .await
            .unwrap()
            .id;
        let id = CampaignId(c as u32);

        // A snapshot as a running pacer writes it: the first start's own prior, taught a
        // lesson by hand (a bigger risk appetite than the prior's).
        let s = Server::start(store.clone()).await;
        let prior = pacer_of(&s, id)
            .await
            .expect("the campaign runs");
        s.stop().await;
        let mut taught = serde_json::to_value(&prior).unwrap();
        taught["theta"] = json!(0.042);
        taught["dials"] = json!(123.0);
        store
            .save_pacers(&[(c, taught.to_string())])
            .await
            .unwrap();

        let s = Server::start(store.clone()).await;
        let restored = pacer_of(&s, id)
            .await
            .expect("the campaign runs");
        assert_eq!(serde_json::to_value(&restored).unwrap(), taught);
        s.stop().await;

        // A snapshot this version cannot read leaves the pacer at its prior; the campaign runs.
        store
            .save_pacers(&[(c, "{\"not\": \"a pacer\"}".into())])
            .await
            .unwrap();
        let s = Server::start(store.clone()).await;
        let fresh = pacer_of(&s, id)
            .await
            .expect("the campaign still runs");
        assert_eq!(fresh, prior);
        s.stop().await;
    })
    .await;
}
