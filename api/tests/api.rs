//! The API over real HTTP on loopback, on both storage backends (SQLite always, PostgreSQL
//! when DATABASE_URL is set), with the engine running against the in-process fake switch.

#[path = "server_common/mod.rs"]
mod server_common;
#[path = "store_common/mod.rs"]
mod store_common;

use serde_json::{Value, json};
use server_common::live::LiveStream;
use server_common::*;
use switchyard_api::model::Role;
use switchyard_api::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_agents_skills_and_members_round_trip_and_apply_live() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = Some(key.as_str());
        let (st, skill) = s.call("POST", "/v1/skills", k, Some(json!({"name": "spanish"}))).await;
        assert_eq!(st, 201, "{skill}");
        let skill_id = skill["id"].as_i64().unwrap();
        let (st, q) = s
            .call("POST", "/v1/queues", k, Some(json!({"name": "sales", "config": {"strategy": "top-down", "numbers": ["5000"], "skills": [{"skill": skill_id, "min": 3}]}})))
            .await;
        assert_eq!(st, 201, "{q}");
        let qid = q["id"].as_i64().unwrap();
        assert_eq!(q["config"]["strategy"], "top-down");
        let (st, a) = s
            .call("POST", "/v1/agents", k, Some(json!({"name": "Ana", "config": {"contact": "user/1000", "skills": [{"skill": skill_id, "level": 7}]}})))
            .await;
        assert_eq!(st, 201, "{a}");
        let aid = a["id"].as_i64().unwrap();
        let (st, m) = s.call("POST", &format!("/v1/queues/{qid}/members"), k, Some(json!({"agent_id": aid, "level": 1, "position": 2}))).await;
        assert_eq!(st, 201, "{m}");
        let (_, members) = s.call("GET", &format!("/v1/queues/{qid}/members"), k, None).await;
        assert_eq!(members["members"][0]["agent_id"], aid);
        // Live: the engine knows the agent and its state changes through the API.
        let (st, state) = s.call("PUT", &format!("/v1/agents/{aid}/state"), k, Some(json!({"state": "available"}))).await;
        assert_eq!(st, 200, "{state}");
        assert_eq!(state["state"], "available");
        let (st, stats) = s.call("GET", &format!("/v1/queues/{qid}/stats"), k, None).await;
        assert_eq!(st, 200, "{stats}");
        assert_eq!(stats["agents"]["available"], 1, "{stats}");
        // PATCH merges into the config; GET shows it.
        let (st, q2) = s.call("PATCH", &format!("/v1/queues/{qid}"), k, Some(json!({"config": {"sl_threshold_s": 30.0}}))).await;
        assert_eq!(st, 200, "{q2}");
        assert_eq!(q2["config"]["sl_threshold_s"], 30.0);
        assert_eq!(q2["config"]["strategy"], "top-down", "untouched fields stay");
        let (_, list) = s.call("GET", "/v1/queues", k, None).await;
        assert_eq!(list["queues"].as_array().unwrap().len(), 1);
        // Pause and resume (kept in the config).
        let (st, _) = s.call("POST", &format!("/v1/queues/{qid}/pause"), k, None).await;
        assert_eq!(st, 200);
        let (_, q3) = s.call("GET", &format!("/v1/queues/{qid}"), k, None).await;
        assert_eq!(q3["config"]["paused"], true);
        // Removing: member, agent (logged out first), queue.
        let (st, _) = s.call("DELETE", &format!("/v1/queues/{qid}/members?agent_id={aid}"), k, None).await;
        assert_eq!(st, 204);
        let (st, _) = s.call("DELETE", &format!("/v1/agents/{aid}"), k, None).await;
        assert_eq!(st, 204);
        let (st, _) = s.call("DELETE", &format!("/v1/queues/{qid}"), k, None).await;
        assert_eq!(st, 204);
        let (st, e) = s.call("GET", &format!("/v1/queues/{qid}"), k, None).await;
        assert_eq!((st, error_code(&e)), (404, "not_found"));
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_objects_answer_404_everywhere() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, a) = s.tenant("a").await;
        let (_, b) = s.tenant("b").await;
        let (_, q) = s
            .call("POST", "/v1/queues", Some(&a), Some(json!({"name": "q"})))
            .await;
        let qid = q["id"].as_i64().unwrap();
        let (_, ag) = s
            .call(
                "POST",
                "/v1/agents",
                Some(&a),
                Some(json!({"name": "x", "config": {"contact": "user/1000"}})),
            )
            .await;
        let aid = ag["id"].as_i64().unwrap();
        let (_, sk) = s
            .call("POST", "/v1/skills", Some(&a), Some(json!({"name": "s"})))
            .await;
        let sid = sk["id"].as_i64().unwrap();
        let attempts: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", format!("/v1/queues/{qid}"), None),
            (
                "PATCH",
                format!("/v1/queues/{qid}"),
                Some(json!({"name": "mine"})),
            ),
            ("DELETE", format!("/v1/queues/{qid}"), None),
            ("GET", format!("/v1/queues/{qid}/members"), None),
            (
                "POST",
                format!("/v1/queues/{qid}/members"),
                Some(json!({"agent_id": aid})),
            ),
            ("GET", format!("/v1/queues/{qid}/stats"), None),
            ("GET", format!("/v1/queues/{qid}/calls"), None),
            ("POST", format!("/v1/queues/{qid}/pause"), None),
            ("GET", format!("/v1/agents/{aid}"), None),
            (
                "PATCH",
                format!("/v1/agents/{aid}"),
                Some(json!({"name": "mine"})),
            ),
            ("DELETE", format!("/v1/agents/{aid}"), None),
            ("GET", format!("/v1/agents/{aid}/state"), None),
            (
                "PUT",
                format!("/v1/agents/{aid}/state"),
                Some(json!({"state": "available"})),
            ),
            ("DELETE", format!("/v1/skills/{sid}"), None),
        ];
        for (m, path, body) in attempts {
            let (st, e) = s.call(m, &path, Some(&b), body).await;
            assert_eq!(st, 404, "{m} {path}: {e}");
            assert_eq!(error_code(&e), "not_found", "{m} {path}");
        }
        let (_, list) = s.call("GET", "/v1/queues", Some(&b), None).await;
        assert_eq!(list["queues"], json!([]));
        let (_, list) = s.call("GET", "/v1/agents", Some(&b), None).await;
        assert_eq!(list["agents"], json!([]));
        // And A still has everything, untouched.
        let (st, q) = s
            .call("GET", &format!("/v1/queues/{qid}"), Some(&a), None)
            .await;
        assert_eq!((st, q["name"].as_str()), (200, Some("q")));
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let supervisor = s.key(Some(tenant), Role::Supervisor).await;
        let reader = s.key(Some(tenant), Role::ReadOnly).await;
        let platform = s.key(None, Role::PlatformAdmin).await;
        let (_, q) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&admin),
                Some(json!({"name": "q"})),
            )
            .await;
        let qid = q["id"].as_i64().unwrap();
        let (_, a) = s
            .call(
                "POST",
                "/v1/agents",
                Some(&admin),
                Some(json!({"name": "x", "config": {"contact": "user/1000"}})),
            )
            .await;
        let aid = a["id"].as_i64().unwrap();
        // The agent key acts for this agent (its own state is the agent row of the matrix).
        let agent = s.agent_key(tenant, aid).await;
        // (method, path, body, [admin, supervisor, agent, read-only, platform-admin] allowed?)
        let matrix: Vec<(&str, String, Option<Value>, [bool; 5])> = vec![
            (
                "GET",
                "/v1/queues".into(),
                None,
                [true, true, true, true, false],
            ),
            (
                "POST",
                "/v1/queues".into(),
                Some(json!({"name": "new"})),
                [true, false, false, false, false],
            ),
            (
                "POST",
                format!("/v1/queues/{qid}/pause"),
                None,
                [true, true, false, false, false],
            ),
            (
                "PUT",
                format!("/v1/agents/{aid}/state"),
                Some(json!({"state": "logged-out"})),
                [true, true, true, false, false],
            ),
            (
                "GET",
                "/v1/api-keys".into(),
                None,
                [true, false, false, false, false],
            ),
            (
                "GET",
                "/v1/platform-admin/tenants".into(),
                None,
                [false, false, false, false, true],
            ),
        ];
        let keys = [&admin, &supervisor, &agent, &reader, &platform];
        for (m, path, body, allowed) in matrix {
            for (i, k) in keys.iter().enumerate() {
                let (st, e) = s.call(m, &path, Some(k), body.clone()).await;
                if allowed[i] {
                    assert!(st < 400, "{m} {path} with key #{i}: {st} {e}");
                } else {
                    assert_eq!(st, 403, "{m} {path} with key #{i}: {e}");
                    assert_eq!(error_code(&e), "forbidden");
                }
            }
        }
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_json_error_and_changes_nothing() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = key.as_str();
        // Malformed JSON.
        let (st, e) = s
            .raw(
                "POST",
                "/v1/queues",
                k,
                "application/json",
                b"{\"name\": ".to_vec(),
            )
            .await;
        assert_eq!((st, error_code(&e)), (400, "malformed_json"), "{e}");
        // Unknown field, wrong type, bad value: 422 naming the field.
        let (st, e) = s
            .call(
                "POST",
                "/v1/queues",
                Some(k),
                Some(json!({"name": "q", "bogus": 1})),
            )
            .await;
        assert_eq!(st, 422, "{e}");
        assert!(
            e["error"]["field"].as_str().unwrap_or("").contains("bogus")
                || e["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("bogus"),
            "{e}"
        );
        let (st, e) = s
            .call("POST", "/v1/queues", Some(k), Some(json!({"name": 5})))
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some("name")),
            "{e}"
        );
        let (st, e) = s
            .call(
                "POST",
                "/v1/queues",
                Some(k),
                Some(json!({"name": "q", "config": {"sl_threshold_s": -3}})),
            )
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some("config.sl_threshold_s")),
            "{e}"
        );
        let (st, e) = s
            .call(
                "POST",
                "/v1/agents",
                Some(k),
                Some(json!({"name": "a", "config": {"contact": "user/1 &park()"}})),
            )
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some("config.contact")),
            "{e}"
        );
        // Oversized body.
        let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
        let (st, e) = s
            .raw(
                "POST",
                "/v1/queues",
                k,
                "application/json",
                big.into_bytes(),
            )
            .await;
        assert_eq!((st, error_code(&e)), (413, "payload_too_large"), "{e}");
        // Bad id in the path.
        let (st, e) = s
            .call("GET", "/v1/queues/not-a-number", Some(k), None)
            .await;
        assert_eq!(st, 400, "{e}");
        // Duplicate name: 409, and the first one is intact.
        let (st, _) = s
            .call("POST", "/v1/queues", Some(k), Some(json!({"name": "dup"})))
            .await;
        assert_eq!(st, 201);
        let (st, e) = s
            .call("POST", "/v1/queues", Some(k), Some(json!({"name": "dup"})))
            .await;
        assert_eq!((st, error_code(&e)), (409, "conflict"), "{e}");
        // Nothing half-written: exactly the one queue exists.
        let (_, list) = s.call("GET", "/v1/queues", Some(k), None).await;
        assert_eq!(list["queues"].as_array().unwrap().len(), 1, "{list}");
        // Keys: missing, unknown, revoked.
        let (st, e) = s.call("GET", "/v1/queues", None, None).await;
        assert_eq!((st, error_code(&e)), (401, "unauthorized"));
        let (st, _) = s
            .call(
                "GET",
                "/v1/queues",
                Some("sy_0000000000000000000000000000000000000000000000000000000000000000"),
                None,
            )
            .await;
        assert_eq!(st, 401);
        let (st, created) = s
            .call(
                "POST",
                "/v1/api-keys",
                Some(k),
                Some(json!({"name": "temp", "role": "read-only"})),
            )
            .await;
        assert_eq!(st, 201, "{created}");
        let temp = created["key"].as_str().unwrap().to_owned();
        let (st, _) = s.call("GET", "/v1/queues", Some(&temp), None).await;
        assert_eq!(st, 200);
        let (st, _) = s
            .call(
                "DELETE",
                &format!("/v1/api-keys/{}", created["id"].as_str().unwrap()),
                Some(k),
                None,
            )
            .await;
        assert_eq!(st, 204);
        let (st, _) = s.call("GET", "/v1/queues", Some(&temp), None).await;
        assert_eq!(st, 401, "a revoked key stops at once");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_presence_and_history_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-restart-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display());
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let s = Server::start(store.clone()).await;
    let (_, key) = s.tenant("acme").await;
    let (_, q) = s
        .call(
            "POST",
            "/v1/queues",
            Some(&key),
            Some(json!({"name": "sales", "config": {"numbers": ["5000"]}})),
        )
        .await;
    let qid = q["id"].as_i64().unwrap();
    let (_, a) = s
        .call(
            "POST",
            "/v1/agents",
            Some(&key),
            Some(json!({"name": "Ana", "config": {"contact": "user/1000"}})),
        )
        .await;
    let aid = a["id"].as_i64().unwrap();
    s.call(
        "POST",
        &format!("/v1/queues/{qid}/members"),
        Some(&key),
        Some(json!({"agent_id": aid})),
    )
    .await;
    let (st, _) = s
        .call(
            "PUT",
            &format!("/v1/agents/{aid}/state"),
            Some(&key),
            Some(json!({"state": "on-break", "reason": "lunch"})),
        )
        .await;
    assert_eq!(st, 200);
    // History too: a caller who gives up leaves a record.
    let leg = s
        .switch
        .as_ref()
        .unwrap()
        .place_inbound_call(switchyard_esl::sim::InboundCall {
            caller_number: "5550000".into(),
            caller_name: "Caller".into(),
            destination: "5000".into(),
            patience: Some(std::time::Duration::from_millis(300)),
            talk_time: None,
            dtmf: None,
        })
        .await
        .expect("the fake switch places the call");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, calls) = s.call("GET", "/v1/calls", Some(&key), None).await;
        if calls["calls"].as_array().is_some_and(|c| !c.is_empty()) {
            assert_eq!(calls["calls"][0]["id"], leg, "{calls}");
            assert_eq!(calls["calls"][0]["outcome"], "abandoned", "{calls}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no call record: {calls}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    s.stop().await;
    store.close().await;

    let store = Store::connect(&url).await.unwrap();
    let s = Server::start(store).await;
    let (st, q2) = s
        .call("GET", &format!("/v1/queues/{qid}"), Some(&key), None)
        .await;
    assert_eq!((st, q2["name"].as_str()), (200, Some("sales")));
    let (st, state) = s
        .call("GET", &format!("/v1/agents/{aid}/state"), Some(&key), None)
        .await;
    assert_eq!(st, 200, "{state}");
    assert_eq!(
        (state["state"].as_str(), state["reason"].as_str()),
        (Some("on-break"), Some("lunch")),
        "{state}"
    );
    let (st, stats) = s
        .call("GET", &format!("/v1/queues/{qid}/stats"), Some(&key), None)
        .await;
    assert_eq!(st, 200, "the engine loaded the queue: {stats}");
    let (st, call) = s
        .call("GET", &format!("/v1/calls/{leg}"), Some(&key), None)
        .await;
    assert_eq!(
        (st, call["outcome"].as_str()),
        (200, Some("abandoned")),
        "{call}"
    );
    s.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_with_waiting_callers_cannot_be_deleted() {
    // Found by the schemathesis check: the engine's refusal answered 422 `config.queue`.
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
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
        // No agent: the caller waits.
        let leg = s
            .switch
            .as_ref()
            .unwrap()
            .place_inbound_call(switchyard_esl::sim::InboundCall {
                caller_number: "5551234".into(),
                caller_name: "Caller".into(),
                destination: "5000".into(),
                patience: None,
                talk_time: None,
                dtmf: None,
            })
            .await
            .expect("the fake switch places the call");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (_, waiting) = s
                .call("GET", &format!("/v1/queues/{qid}/calls"), k, None)
                .await;
            if waiting["calls"].as_array().is_some_and(|c| !c.is_empty()) {
                assert_eq!(waiting["calls"][0]["id"], leg, "{waiting}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the caller never queued: {waiting}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let (st, e) = s
            .call("DELETE", &format!("/v1/queues/{qid}"), k, None)
            .await;
        assert_eq!((st, error_code(&e)), (409, "conflict"), "{e}");
        let (st, _) = s.call("GET", &format!("/v1/queues/{qid}"), k, None).await;
        assert_eq!(st, 200, "the queue is still there");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_filters_with_control_characters_are_refused() {
    // Found by the schemathesis check: PostgreSQL refuses text with NUL, which answered 500.
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        for (query, field) in [
            ("caller_number=%00", "caller_number"),
            ("caller_number=5%0A5", "caller_number"),
        ] {
            let (st, e) = s
                .call("GET", &format!("/v1/calls?{query}"), Some(&key), None)
                .await;
            assert_eq!((st, error_code(&e)), (422, "invalid_field"), "{query}: {e}");
            assert_eq!(e["error"]["field"], field, "{query}: {e}");
        }
        // `outcome` is one of a fixed set: anything else does not parse (400), NUL or not.
        let (st, e) = s
            .call("GET", "/v1/calls?outcome=answered%00", Some(&key), None)
            .await;
        assert_eq!((st, error_code(&e)), (400, "invalid_query"), "{e}");
        assert_eq!(e["error"]["field"], "outcome", "{e}");
        let (st, page) = s
            .call("GET", "/v1/calls?caller_number=5551234", Some(&key), None)
            .await;
        assert_eq!((st, &page["calls"]), (200, &json!([])), "{page}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_feed_ids_count_only_the_tenants_own_events() {
    use std::time::Duration;
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, a) = s.tenant("a").await;
        let (_, b) = s.tenant("b").await;
        let busy = s.agent(&a, "Ana", "user/1000").await;
        let quiet = s.agent(&b, "Bo", "user/2000").await;
        let mut live = LiveStream::open(&s, &b, None).await;
        let snap = live.next(Duration::from_secs(5)).await.expect("snapshot");
        let start: u64 = snap
            .id
            .as_deref()
            .and_then(|i| i.parse().ok())
            .expect("an id");
        // Tenant a's traffic: under one global counter, b would see the gap it leaves.
        for state in ["available", "logged-out", "available", "logged-out"] {
            let (st, e) = s
                .call(
                    "PUT",
                    &format!("/v1/agents/{busy}/state"),
                    Some(&a),
                    Some(json!({"state": state})),
                )
                .await;
            assert_eq!(st, 200, "{e}");
        }
        let (st, e) = s
            .call(
                "PUT",
                &format!("/v1/agents/{quiet}/state"),
                Some(&b),
                Some(json!({"state": "available"})),
            )
            .await;
        assert_eq!(st, 200, "{e}");
        let ev = live.next(Duration::from_secs(5)).await.expect("b's delta");
        assert_eq!(ev.data["id"], quiet, "{ev:?}");
        assert_eq!(ev.id, Some((start + 1).to_string()), "{ev:?}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_sends_a_snapshot_then_deltas_and_resumes_from_last_event_id() {
    use std::time::Duration;
    let store = Store::sqlite_memory().await.unwrap();
    store.migrate().await.unwrap();
    let s = Server::start(store).await;
    let (_, a) = s.tenant("a").await;
    let (_, b) = s.tenant("b").await;
    let aid = s.agent(&a, "Ana", "user/1000").await;

    let mut live = LiveStream::open(&s, &a, None).await;
    let snap = live.next(Duration::from_secs(5)).await.expect("snapshot");
    assert_eq!(snap.event, "snapshot");
    let agents = &snap.data["state"]["agents"];
    assert_eq!(agents[0]["id"], aid, "{}", snap.data);
    assert_eq!(agents[0]["state"], "logged-out");
    let mut other = LiveStream::open(&s, &b, None).await;
    assert_eq!(
        other
            .next(Duration::from_secs(5))
            .await
            .expect("b's snapshot")
            .event,
        "snapshot"
    );

    s.call(
        "PUT",
        &format!("/v1/agents/{aid}/state"),
        Some(&a),
        Some(json!({"state": "available"})),
    )
    .await;
    let ev = live.next(Duration::from_secs(5)).await.expect("a delta");
    assert_eq!(
        (ev.event.as_str(), ev.data["state"].as_str()),
        ("agent.state_changed", Some("available")),
        "{ev:?}"
    );
    let seen = ev.id.clone().expect("deltas carry ids");
    assert!(
        other.next(Duration::from_millis(500)).await.is_none(),
        "tenant b sees nothing of a's"
    );

    // Gone for a while; two changes happen; back with Last-Event-ID: exactly those two.
    drop(live);
    s.call(
        "PUT",
        &format!("/v1/agents/{aid}/state"),
        Some(&a),
        Some(json!({"state": "on-break", "reason": "coffee"})),
    )
    .await;
    s.call(
        "PUT",
        &format!("/v1/agents/{aid}/state"),
        Some(&a),
        Some(json!({"state": "available"})),
    )
    .await;
    let mut back = LiveStream::open(&s, &a, Some(&seen)).await;
    let first = back.next(Duration::from_secs(5)).await.expect("replayed");
    assert_eq!(
        (first.event.as_str(), first.data["state"].as_str()),
        ("agent.state_changed", Some("on-break")),
        "{first:?}"
    );
    let second = back.next(Duration::from_secs(5)).await.expect("replayed");
    assert_eq!(second.data["state"], "available");
    assert!(second.id.unwrap().parse::<u64>().unwrap() > first.id.unwrap().parse::<u64>().unwrap());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_shows_a_persistent_line_ringing_then_up_on_the_agent() {
    use std::time::Duration;
    let store = Store::sqlite_memory().await.unwrap();
    store.migrate().await.unwrap();
    let s = Server::start(store).await;
    let (_, a) = s.tenant("a").await;
    let aid = s
        .agent_with(
            &a,
            "Ana",
            json!({"contact": "user/1000", "persistent_line": true}),
        )
        .await;
    let mut live = LiveStream::open(&s, &a, None).await;
    assert_eq!(
        live.next(Duration::from_secs(5))
            .await
            .expect("snapshot")
            .event,
        "snapshot"
    );
    let (st, e) = s
        .call(
            "PUT",
            &format!("/v1/agents/{aid}/state"),
            Some(&a),
            Some(json!({"state": "available"})),
        )
        .await;
    assert_eq!(st, 200, "{e}");
    // The fake switch's phone answers after a second: the line rings, then is up.
    let mut lines = Vec::new();
    while lines.len() < 2 {
        let ev = live.next(Duration::from_secs(10)).await.expect("a delta");
        if ev.event == "agent.line" {
            assert_eq!(ev.data["id"], aid, "{ev:?}");
            lines.push(ev.data["line"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(lines, ["ringing", "up"]);
    let mut fresh = LiveStream::open(&s, &a, None).await;
    let snap = fresh.next(Duration::from_secs(5)).await.expect("snapshot");
    let agent = &snap.data["state"]["agents"][0];
    assert_eq!(
        (&agent["state"], &agent["line"]),
        (&json!("available"), &json!("up")),
        "{agent}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialled_number_belongs_to_one_queue_across_tenants() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, a) = s.tenant("a").await;
        let (_, b) = s.tenant("b").await;
        let (st, _) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&a),
                Some(json!({"name": "q", "config": {"numbers": ["5000"]}})),
            )
            .await;
        assert_eq!(st, 201);
        let (st, e) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&b),
                Some(json!({"name": "mine", "config": {"numbers": ["5000"]}})),
            )
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (409, Some("config.numbers[0]")),
            "{e}"
        );
        // The owner's own second queue gets the very same answer: nothing in it says that
        // another tenant holds the number.
        let (own_st, own) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&a),
                Some(json!({"name": "again", "config": {"numbers": ["5000"]}})),
            )
            .await;
        assert_eq!((own_st, &own), (st, &e));
        assert!(!e.to_string().contains("tenant"), "{e}");
        let (st, q) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&b),
                Some(json!({"name": "mine"})),
            )
            .await;
        assert_eq!(st, 201);
        let (st, e) = s
            .call(
                "PATCH",
                &format!("/v1/queues/{}", q["id"]),
                Some(&b),
                Some(json!({"config": {"numbers": ["5000"]}})),
            )
            .await;
        assert_eq!(st, 409, "{e}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn array_bodies_and_past_expiry_are_refused_with_the_api_field_names() {
    let store = Store::sqlite_memory().await.unwrap();
    store.migrate().await.unwrap();
    let s = Server::start(store).await;
    let (_, key) = s.tenant("acme").await;
    let (_, q) = s
        .call("POST", "/v1/queues", Some(&key), Some(json!({"name": "q"})))
        .await;
    let (st, e) = s
        .raw(
            "PATCH",
            &format!("/v1/queues/{}", q["id"]),
            &key,
            "application/json",
            b"[null, null]".to_vec(),
        )
        .await;
    assert_eq!((st, error_code(&e)), (422, "invalid_field"), "{e}");
    let (st, e) = s
        .call(
            "POST",
            "/v1/api-keys",
            Some(&key),
            Some(json!({"name": "old", "role": "read-only", "expires_at_ms": 1})),
        )
        .await;
    assert_eq!(
        (st, e["error"]["field"].as_str()),
        (422, Some("expires_at_ms")),
        "{e}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_persistent_line_setting_round_trips_and_is_checked() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = Some(key.as_str());
        let (st, a) = s
            .call("POST", "/v1/agents", k, Some(json!({"name": "Ana", "config": {"contact": "user/1000", "persistent_line": true}})))
            .await;
        assert_eq!(st, 201, "{a}");
        assert_eq!(a["config"]["persistent_line"], true);
        let aid = a["id"].as_i64().unwrap();
        let (_, b) = s
            .call("POST", "/v1/agents", k, Some(json!({"name": "Bo", "config": {"contact": "user/1001"}})))
            .await;
        assert_eq!(b["config"]["persistent_line"], false, "off unless asked for");
        let (st, a2) = s
            .call("PATCH", &format!("/v1/agents/{aid}"), k, Some(json!({"config": {"persistent_line": false}})))
            .await;
        assert_eq!(st, 200, "{a2}");
        let (_, a3) = s.call("GET", &format!("/v1/agents/{aid}"), k, None).await;
        assert_eq!(a3["config"]["persistent_line"], false);
        assert_eq!(a3["config"]["contact"], "user/1000", "untouched fields stay");
        let (st, e) = s
            .call("POST", "/v1/agents", k, Some(json!({"name": "Cy", "config": {"contact": "user/1002", "persistent_line": "yes"}})))
            .await;
        assert_eq!(st, 422, "{e}");
        assert!(
            e["error"]["field"].as_str().unwrap_or("").contains("persistent_line")
                || e["error"]["message"].as_str().unwrap_or("").contains("persistent_line"),
            "{e}"
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_keys_must_name_one_of_the_tenants_agents_and_no_other_role_may() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let (_, stranger) = s.tenant("other").await;
        let aid = s.agent(&admin, "Ana", "user/1000").await;
        let theirs = s.agent(&stranger, "Bob", "user/1001").await;
        let platform = s.key(None, Role::PlatformAdmin).await;
        let refused = [
            (
                json!({"name": "desk", "role": "agent"}),
                "required for agent keys",
            ),
            (
                json!({"name": "desk", "role": "agent", "agent_id": 999_999}),
                "not an agent",
            ),
            (
                json!({"name": "desk", "role": "agent", "agent_id": theirs}),
                "another tenant's agent",
            ),
            (
                json!({"name": "boss", "role": "admin", "agent_id": aid}),
                "an admin key",
            ),
            (
                json!({"name": "sup", "role": "supervisor", "agent_id": aid}),
                "a supervisor key",
            ),
        ];
        for (body, why) in &refused {
            let (st, e) = s
                .call("POST", "/v1/api-keys", Some(&admin), Some(body.clone()))
                .await;
            assert_eq!(
                (st, error_code(&e), e["error"]["field"].as_str()),
                (422, "invalid_field", Some("agent_id")),
                "{why}: {e}"
            );
        }
        // The platform admin's route to a tenant's keys follows the same rule.
        let path = format!("/v1/platform-admin/tenants/{}/api-keys", tenant.0);
        for (body, why) in &refused {
            let (st, e) = s
                .call("POST", &path, Some(&platform), Some(body.clone()))
                .await;
            assert_eq!(
                (st, e["error"]["field"].as_str()),
                (422, Some("agent_id")),
                "platform admin, {why}: {e}"
            );
        }
        let (_, list) = s.call("GET", "/v1/api-keys", Some(&admin), None).await;
        assert_eq!(
            list["api_keys"].as_array().unwrap().len(),
            1,
            "nothing refused was created: {list}"
        );

        // A bound key: shown with its agent when created and when listed; other roles with none.
        let (st, created) = s
            .call(
                "POST",
                "/v1/api-keys",
                Some(&admin),
                Some(json!({"name": "desk", "role": "agent", "agent_id": aid})),
            )
            .await;
        assert_eq!(st, 201, "{created}");
        assert_eq!(created["agent_id"], aid, "{created}");
        assert!(created["key"].as_str().unwrap().starts_with("sy_"));
        let (st, sup) = s
            .call(
                "POST",
                &path,
                Some(&platform),
                Some(json!({"name": "sup", "role": "supervisor"})),
            )
            .await;
        assert_eq!(st, 201, "{sup}");
        assert_eq!(sup["agent_id"], Value::Null, "{sup}");
        let (_, list) = s.call("GET", "/v1/api-keys", Some(&admin), None).await;
        let agents: Vec<(String, Value)> = list["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["name"].as_str().unwrap().to_owned(),
                    k["agent_id"].clone(),
                )
            })
            .collect();
        assert_eq!(
            agents,
            [
                ("admin".to_owned(), Value::Null),
                ("desk".to_owned(), json!(aid)),
                ("sup".to_owned(), Value::Null),
            ]
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_key_sets_its_own_agents_state_and_no_one_elses() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let bob = s.agent(&admin, "Bob", "user/1001").await;
        let anas_desk = s.agent_key(tenant, ana).await;
        let supervisor = s.key(Some(tenant), Role::Supervisor).await;
        let available = Some(json!({"state": "available"}));

        let (st, set) = s
            .call(
                "PUT",
                &format!("/v1/agents/{ana}/state"),
                Some(&anas_desk),
                available.clone(),
            )
            .await;
        assert_eq!((st, &set["state"]), (200, &json!("available")), "{set}");
        let (st, e) = s
            .call(
                "PUT",
                &format!("/v1/agents/{bob}/state"),
                Some(&anas_desk),
                available.clone(),
            )
            .await;
        assert_eq!((st, error_code(&e)), (403, "forbidden"), "{e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains("its own agent"), "{message}");
        // Refused means unchanged, and the key still reads Bob's state.
        let (st, state) = s
            .call(
                "GET",
                &format!("/v1/agents/{bob}/state"),
                Some(&anas_desk),
                None,
            )
            .await;
        assert_eq!(
            (st, &state["state"]),
            (200, &json!("logged-out")),
            "{state}"
        );
        // An agent that does not exist is still someone else's: 403, not a 404 probe.
        let (st, e) = s
            .call(
                "PUT",
                "/v1/agents/999999/state",
                Some(&anas_desk),
                available.clone(),
            )
            .await;
        assert_eq!(st, 403, "{e}");
        // Supervisors and admins still set anyone's.
        for key in [&supervisor, &admin] {
            let (st, e) = s
                .call(
                    "PUT",
                    &format!("/v1/agents/{bob}/state"),
                    Some(key),
                    available.clone(),
                )
                .await;
            assert_eq!(st, 200, "{e}");
        }
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_key_bound_to_no_agent_reads_but_every_agent_write_is_refused() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let legacy = s.legacy_agent_key(tenant, ana).await;
        for path in [
            "/v1/agents".to_owned(),
            format!("/v1/agents/{ana}"),
            format!("/v1/agents/{ana}/state"),
            "/v1/queues".to_owned(),
            "/v1/calls".to_owned(),
        ] {
            let (st, e) = s.call("GET", &path, Some(&legacy), None).await;
            assert_eq!(st, 200, "GET {path}: {e}");
        }
        let call = uuid::Uuid::new_v4();
        for (path, body) in [
            (
                format!("/v1/agents/{ana}/state"),
                json!({"state": "available"}),
            ),
            (
                format!("/v1/calls/{call}/disposition"),
                json!({"code": "sale"}),
            ),
        ] {
            let method = if path.ends_with("/state") {
                "PUT"
            } else {
                "POST"
            };
            let (st, e) = s.call(method, &path, Some(&legacy), Some(body)).await;
            assert_eq!((st, error_code(&e)), (403, "forbidden"), "{path}: {e}");
            let message = e["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("not bound to an agent") && message.contains("agent_id"),
                "tells the admin what to do: {message}"
            );
        }
        // The listing shows the key as bound to nothing.
        let (_, list) = s.call("GET", "/v1/api-keys", Some(&admin), None).await;
        let old = list["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "old desk")
            .unwrap();
        assert_eq!(
            (&old["role"], &old["agent_id"]),
            (&json!("agent"), &Value::Null)
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_agent_revokes_the_keys_bound_to_it() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let bob = s.agent(&admin, "Bob", "user/1001").await;
        let anas_desk = s.agent_key(tenant, ana).await;
        let bobs_desk = s.agent_key(tenant, bob).await;
        let (st, _) = s.call("GET", "/v1/agents", Some(&anas_desk), None).await;
        assert_eq!(st, 200, "cached as valid before the delete");
        let (st, e) = s
            .call("DELETE", &format!("/v1/agents/{ana}"), Some(&admin), None)
            .await;
        assert_eq!(st, 204, "{e}");
        let (st, e) = s.call("GET", "/v1/agents", Some(&anas_desk), None).await;
        assert_eq!((st, error_code(&e)), (401, "unauthorized"), "{e}");
        let (st, e) = s.call("GET", "/v1/agents", Some(&bobs_desk), None).await;
        assert_eq!(st, 200, "another agent's key is untouched: {e}");
        let (_, list) = s.call("GET", "/v1/api-keys", Some(&admin), None).await;
        let revoked: Vec<bool> = list["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["revoked_at_ms"].is_i64())
            .collect();
        assert_eq!(revoked, [false, true, false], "{list}");
        s.stop().await;
    })
    .await;
}

/// Polls `GET path` until `done` holds of the answer (10 s at most); the last answer.
async fn poll_until(s: &Server, path: &str, key: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (st, v) = s.call("GET", path, Some(key), None).await;
        if st == 200 && done(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never got there: {st} {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_advance_with_the_clock_between_events_and_the_live_call_names_its_agent() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = key.as_str();
        let (st, q) = s
            .call(
                "POST",
                "/v1/queues",
                Some(k),
                Some(json!({"name": "sales", "config": {"numbers": ["5000"]}})),
            )
            .await;
        assert_eq!(st, 201, "{q}");
        let qid = q["id"].as_i64().unwrap();
        // No agent yet: the caller waits, and nothing happens to the call meanwhile.
        let leg = s
            .switch
            .as_ref()
            .unwrap()
            .place_inbound_call(switchyard_esl::sim::InboundCall {
                caller_number: "5551234".into(),
                caller_name: "Caller".into(),
                destination: "5000".into(),
                patience: None,
                talk_time: None,
                dtmf: None,
            })
            .await
            .expect("the fake switch places the call");
        let calls_path = format!("/v1/queues/{qid}/calls");
        poll_until(&s, &calls_path, k, |v| v["calls"][0]["id"] == leg).await;
        // No event reaches the engine in this second and a half: only the clock moves.
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let (_, waiting) = s.call("GET", &calls_path, Some(k), None).await;
        let caller = &waiting["calls"][0];
        assert_eq!(caller["id"], leg, "{waiting}");
        for field in ["waited_s", "in_queue_s"] {
            let secs = caller[field].as_f64().unwrap_or(0.0);
            assert!((1.4..30.0).contains(&secs), "{field} = {secs}: {waiting}");
        }
        let (_, stats) = s
            .call("GET", &format!("/v1/queues/{qid}/stats"), Some(k), None)
            .await;
        let longest = stats["longest_wait_s"].as_f64().unwrap_or(0.0);
        assert!(
            (1.4..30.0).contains(&longest),
            "longest_wait_s = {longest}: {stats}"
        );
        let (_, live) = s
            .call("GET", &format!("/v1/calls/{leg}"), Some(k), None)
            .await;
        assert_eq!(
            (&live["live"], &live["phase"]),
            (&json!(true), &json!("waiting")),
            "{live}"
        );
        assert_eq!(
            live["agent_id"],
            Value::Null,
            "a waiting call has no agent: {live}"
        );
        let waited = live["waited_s"].as_f64().unwrap_or(0.0);
        assert!((1.4..30.0).contains(&waited), "waited_s = {waited}: {live}");

        // An agent comes: the call is offered to it (its phone rings for about a second),
        // then talks to it; the live view names the agent in both phases.
        let aid = s.agent(k, "Ana", "user/1000").await;
        let (st, e) = s
            .call(
                "POST",
                &format!("/v1/queues/{qid}/members"),
                Some(k),
                Some(json!({"agent_id": aid})),
            )
            .await;
        assert!(st == 200 || st == 201, "{st} {e}");
        let (st, e) = s
            .call(
                "PUT",
                &format!("/v1/agents/{aid}/state"),
                Some(k),
                Some(json!({"state": "available"})),
            )
            .await;
        assert_eq!(st, 200, "{e}");
        let talking = poll_until(&s, &format!("/v1/calls/{leg}"), k, |v| {
            if v["phase"] == "offering" {
                assert_eq!(v["agent_id"], aid, "the offered agent: {v}");
            }
            v["phase"] == "talking"
        })
        .await;
        assert_eq!(talking["agent_id"], aid, "{talking}");
        s.stop().await;
    })
    .await;
}

/// Places a caller on `number` through the fake switch and waits until it is in `queue`'s
/// line; its call id (the arrival leg).
async fn queued_caller(s: &Server, key: &str, queue: i64, caller: &str, number: &str) -> Value {
    let leg = s
        .switch
        .as_ref()
        .unwrap()
        .place_inbound_call(switchyard_esl::sim::InboundCall {
            caller_number: caller.into(),
            caller_name: "Caller".into(),
            destination: number.into(),
            patience: None,
            talk_time: None,
            dtmf: None,
        })
        .await
        .expect("the fake switch places the call");
    let leg = json!(leg);
    let path = format!("/v1/queues/{queue}/calls");
    poll_until(s, &path, key, |v| {
        v["calls"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["id"] == leg))
    })
    .await;
    leg
}

/// The waiting callers' ids and priorities, in line order.
async fn line(s: &Server, key: &str, queue: i64) -> Vec<(Value, i64)> {
    let (st, v) = s
        .call("GET", &format!("/v1/queues/{queue}/calls"), Some(key), None)
        .await;
    assert_eq!(st, 200, "{v}");
    v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].clone(), c["priority"].as_i64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisors_move_waiting_calls_and_change_their_priority_keeping_seniority() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let k = admin.as_str();
        let supervisor = s.key(Some(tenant), Role::Supervisor).await;
        let reader = s.key(Some(tenant), Role::ReadOnly).await;
        let mut ids = Vec::new();
        for (name, number) in [("sales", "5000"), ("support", "6000")] {
            let (st, q) = s
                .call(
                    "POST",
                    "/v1/queues",
                    Some(k),
                    Some(json!({"name": name, "config": {"numbers": [number]}})),
                )
                .await;
            assert_eq!(st, 201, "{q}");
            ids.push(q["id"].as_i64().unwrap());
        }
        let (sales, support) = (ids[0], ids[1]);
        // No agents: everyone waits. The sales caller is the oldest of the three.
        let first = queued_caller(&s, k, sales, "5550001", "5000").await;
        let second = queued_caller(&s, k, support, "5550002", "6000").await;
        let third = queued_caller(&s, k, support, "5550003", "6000").await;

        // Moved, the oldest caller goes ahead of the two who came after it.
        let (st, moved) = s
            .call(
                "POST",
                &format!("/v1/calls/{}/move", first.as_str().unwrap()),
                Some(&supervisor),
                Some(json!({"queue_id": support})),
            )
            .await;
        assert_eq!(st, 200, "{moved}");
        assert_eq!(moved["queue_id"], support);
        assert_eq!(
            line(&s, k, support).await,
            [(first.clone(), 0), (second.clone(), 0), (third.clone(), 0)]
        );
        assert!(line(&s, k, sales).await.is_empty());
        let (_, live) = s
            .call(
                "GET",
                &format!("/v1/calls/{}", first.as_str().unwrap()),
                Some(k),
                None,
            )
            .await;
        assert_eq!(live["queues"], json!([sales, support]), "{live}");

        // A higher priority jumps the line; equal priorities keep arrival order.
        let third_path = format!("/v1/calls/{}", third.as_str().unwrap());
        let (st, set) = s
            .call(
                "PUT",
                &format!("{third_path}/priority"),
                Some(&supervisor),
                Some(json!({"priority": 5})),
            )
            .await;
        assert_eq!(st, 200, "{set}");
        assert_eq!(
            line(&s, k, support).await,
            [(third.clone(), 5), (first.clone(), 0), (second.clone(), 0)]
        );

        // Bad input names its field and changes nothing.
        let (st, e) = s
            .call(
                "PUT",
                &format!("{third_path}/priority"),
                Some(k),
                Some(json!({"priority": 5000})),
            )
            .await;
        assert_eq!(
            (st, error_code(&e), &e["error"]["field"]),
            (422, "invalid_field", &json!("priority")),
            "{e}"
        );
        for bad in [json!(987_654), json!(-1)] {
            let (st, e) = s
                .call(
                    "POST",
                    &format!("{third_path}/move"),
                    Some(k),
                    Some(json!({"queue_id": bad})),
                )
                .await;
            assert_eq!((st, &e["error"]["field"]), (422, &json!("queue_id")), "{e}");
        }
        let (st, e) = s
            .call(
                "POST",
                &format!("/v1/calls/{}/move", uuid::Uuid::from_u128(7)),
                Some(k),
                Some(json!({"queue_id": sales})),
            )
            .await;
        assert_eq!((st, error_code(&e)), (404, "not_found"), "{e}");

        // Read-only and agent keys may not; another tenant sees no such call, and may not
        // send a call to its own queue either.
        let aid = s.agent(k, "Ana", "user/1000").await;
        let agent = s.agent_key(tenant, aid).await;
        for key in [&reader, &agent] {
            let (st, e) = s
                .call(
                    "POST",
                    &format!("{third_path}/move"),
                    Some(key),
                    Some(json!({"queue_id": sales})),
                )
                .await;
            assert_eq!((st, error_code(&e)), (403, "forbidden"), "{e}");
            let (st, e) = s
                .call(
                    "PUT",
                    &format!("{third_path}/priority"),
                    Some(key),
                    Some(json!({"priority": 1})),
                )
                .await;
            assert_eq!((st, error_code(&e)), (403, "forbidden"), "{e}");
        }
        let (_, other) = s.tenant("other").await;
        let (_, oq) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&other),
                Some(json!({"name": "theirs"})),
            )
            .await;
        let theirs = oq["id"].as_i64().unwrap();
        let (st, e) = s
            .call(
                "POST",
                &format!("{third_path}/move"),
                Some(&other),
                Some(json!({"queue_id": theirs})),
            )
            .await;
        assert_eq!((st, error_code(&e)), (404, "not_found"), "{e}");
        let (st, e) = s
            .call(
                "PUT",
                &format!("{third_path}/priority"),
                Some(&other),
                Some(json!({"priority": 9})),
            )
            .await;
        assert_eq!((st, error_code(&e)), (404, "not_found"), "{e}");
        let (st, e) = s
            .call(
                "POST",
                &format!("{third_path}/move"),
                Some(k),
                Some(json!({"queue_id": theirs})),
            )
            .await;
        assert_eq!((st, &e["error"]["field"]), (422, &json!("queue_id")), "{e}");
        assert_eq!(
            line(&s, k, support).await,
            [(third.clone(), 5), (first.clone(), 0), (second.clone(), 0)],
            "refused requests changed nothing"
        );

        // Once an agent has the call, it is no longer the supervisor's to move: 409.
        let (st, e) = s
            .call(
                "POST",
                &format!("/v1/queues/{support}/members"),
                Some(k),
                Some(json!({"agent_id": aid})),
            )
            .await;
        assert!(st == 200 || st == 201, "{st} {e}");
        let (st, e) = s
            .call(
                "PUT",
                &format!("/v1/agents/{aid}/state"),
                Some(k),
                Some(json!({"state": "available"})),
            )
            .await;
        assert_eq!(st, 200, "{e}");
        poll_until(&s, &third_path, k, |v| v["phase"] == "talking").await;
        let (st, e) = s
            .call(
                "POST",
                &format!("{third_path}/move"),
                Some(&supervisor),
                Some(json!({"queue_id": sales})),
            )
            .await;
        assert_eq!((st, error_code(&e)), (409, "conflict"), "{e}");
        let (st, e) = s
            .call(
                "PUT",
                &format!("{third_path}/priority"),
                Some(&supervisor),
                Some(json!({"priority": 1})),
            )
            .await;
        assert_eq!((st, error_code(&e)), (409, "conflict"), "{e}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queues_callback_rule_round_trips_and_bad_dial_strings_name_their_field() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = Some(key.as_str());
        let (st, q) = s
            .call("POST", "/v1/queues", k, Some(json!({"name": "sales"})))
            .await;
        assert_eq!(st, 201, "{q}");
        let qid = q["id"].as_i64().unwrap();
        assert_eq!(
            q["config"]["callback_dial"],
            Value::Null,
            "the server's default"
        );
        assert_eq!(q["config"]["callback_attempts"], 3);
        assert_eq!(q["config"]["callback_retry_s"], 300.0);
        assert_eq!(q["config"]["callback_confirm"], "ivr/ivr-thank_you.wav");
        let rule = json!({
            "callback_dial": "sofia/gateway/carrier/{number}",
            "callback_attempts": 5,
            "callback_retry_s": 120.0,
            "callback_confirm": "/sounds/we-will-call-you-back.wav",
        });
        let (st, q) = s
            .call(
                "PATCH",
                &format!("/v1/queues/{qid}"),
                k,
                Some(json!({"config": rule})),
            )
            .await;
        assert_eq!(st, 200, "{q}");
        let (_, q) = s.call("GET", &format!("/v1/queues/{qid}"), k, None).await;
        for field in [
            "callback_dial",
            "callback_attempts",
            "callback_retry_s",
            "callback_confirm",
        ] {
            assert_eq!(q["config"][field], rule[field], "{field}: {q}");
        }
        for (config, field) in [
            (
                json!({"callback_dial": "sofia/gateway/carrier/5551234"}),
                "config.callback_dial",
            ),
            (
                json!({"callback_dial": "{absolute_codec_string=PCMU}sofia/gateway/a/{number}"}),
                "config.callback_dial",
            ),
            (
                json!({"callback_dial": "sofia/gateway/a/{number},user/1000"}),
                "config.callback_dial",
            ),
            (
                json!({"callback_dial": "sofia/gateway/a/{number} &park()"}),
                "config.callback_dial",
            ),
            (json!({"callback_attempts": 0}), "config.callback_attempts"),
            (json!({"callback_retry_s": -5}), "config.callback_retry_s"),
            (
                json!({"callback_confirm": "a b.wav"}),
                "config.callback_confirm",
            ),
        ] {
            let (st, e) = s
                .call(
                    "PATCH",
                    &format!("/v1/queues/{qid}"),
                    k,
                    Some(json!({"config": config})),
                )
                .await;
            assert_eq!(
                (st, &e["error"]["field"]),
                (422, &json!(field)),
                "{config}: {e}"
            );
        }
        let (_, after) = s.call("GET", &format!("/v1/queues/{qid}"), k, None).await;
        assert_eq!(
            after["config"], q["config"],
            "refused patches changed nothing"
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_callers_number_is_whole_for_supervisors_and_masked_for_read_only_and_agent_keys()
{
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let supervisor = s.key(Some(tenant), Role::Supervisor).await;
        let reader = s.key(Some(tenant), Role::ReadOnly).await;
        let aid = s.agent(&admin, "Ana", "user/1000").await;
        let agent = s.agent_key(tenant, aid).await;
        let (st, q) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&admin),
                Some(json!({"name": "q", "config": {"numbers": ["5000"]}})),
            )
            .await;
        assert_eq!(st, 201, "{q}");
        let qid = q["id"].as_i64().unwrap();
        let leg = queued_caller(&s, &admin, qid, "+12015550123", "5000").await;
        for (key, want) in [
            (&admin, "+12015550123"),
            (&supervisor, "+12015550123"),
            (&reader, "+*********23"),
            // Waiting: no agent is on the call yet, so not this agent's either.
            (&agent, "+*********23"),
        ] {
            let (st, w) = s
                .call("GET", &format!("/v1/queues/{qid}/calls"), Some(key), None)
                .await;
            assert_eq!(st, 200, "{w}");
            assert_eq!(w["calls"][0]["caller_number"], want, "{w}");
            let (st, c) = s
                .call(
                    "GET",
                    &format!("/v1/calls/{}", leg.as_str().unwrap()),
                    Some(key),
                    None,
                )
                .await;
            assert_eq!(st, 200, "{c}");
            assert_eq!(
                (c["live"].as_bool(), c["caller_number"].as_str()),
                (Some(true), Some(want)),
                "{c}"
            );
        }
        s.stop().await;
    })
    .await;
}
