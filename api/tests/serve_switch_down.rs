//! `switchyard serve` as a process whose only FreeSWITCH is down when it starts: it serves
//! the API, says it is not ready (naming the switch, not how it failed), connects in the
//! background once the switch is up, and then routes calls.

mod process_common;

use std::time::{Duration, Instant};

use process_common::{Api, free_port, serve, tenant_with_admin_key};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_with_its_only_switch_down_and_routes_calls_once_it_comes_up() {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-switch-down-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    let key = tenant_with_admin_key(&db);

    let esl_port = free_port();
    let outbound = format!("127.0.0.1:{}", free_port());
    // Serves the API even though no node answers at start (it used to exit).
    let (guard, base) = serve(&db, &format!("127.0.0.1:{esl_port}"), &outbound).await;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key,
    };

    // Up, not ready, and the answer names the dependency without its address or error.
    let health = api.http.get(format!("{}/healthz", api.base)).send().await;
    assert_eq!(health.unwrap().status().as_u16(), 200);
    let (status, body) = api.readyz().await;
    assert_eq!(status, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["checks"]["freeswitch"], "failed", "{body}");
    assert_eq!(v["checks"]["database"], "ok", "{body}");
    assert_eq!(v["error"]["message"], "not ready: freeswitch", "{body}");
    assert!(!body.contains(&esl_port.to_string()), "{body}");

    // Configuration works meanwhile: a queue on 5000 and an available agent.
    use reqwest::Method;
    let (st, q) = api
        .call(
            Method::POST,
            "/v1/queues",
            Some(json!({"name": "sales", "config": {"numbers": ["5000"]}})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    let qid = q["id"].as_i64().unwrap();
    let (st, a) = api
        .call(
            Method::POST,
            "/v1/agents",
            Some(json!({"name": "Ana", "config": {"contact": "user/1000"}})),
        )
        .await;
    assert_eq!(st, 201, "{a}");
    let aid = a["id"].as_i64().unwrap();
    let (st, m) = api
        .call(
            Method::POST,
            &format!("/v1/queues/{qid}/members"),
            Some(json!({"agent_id": aid})),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    let (st, s) = api
        .call(
            Method::PUT,
            &format!("/v1/agents/{aid}/state"),
            Some(json!({"state": "available"})),
        )
        .await;
    assert_eq!(st, 200, "{s}");

    // The switch comes up on the port serve was told about.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", esl_port))
        .await
        .expect("the switch's port is still free");
    let switch = switchyard_esl::sim::spawn(
        listener,
        switchyard_esl::sim::SimConfig {
            inbound_target: Some(outbound.clone()),
            ..switchyard_esl::sim::SimConfig::default()
        },
        5,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api.readyz().await;
        if status == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["checks"]["freeswitch"], "ok", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A caller reaches the agent and the call is recorded as answered.
    let leg = switch
        .place_inbound_call(switchyard_esl::sim::InboundCall {
            caller_number: "5551234".into(),
            caller_name: "Caller".into(),
            destination: "5000".into(),
            patience: None,
            talk_time: Some(Duration::from_millis(500)),
            dtmf: None,
        })
        .await
        .expect("the fake switch places the call");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, call) = api
            .call(Method::GET, &format!("/v1/calls/{leg}"), None)
            .await;
        if st == 200 && call["outcome"] == "answered" {
            assert_eq!(call["agent_id"], aid, "{call}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the call was not answered: {st} {call}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(guard);
    switch.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}
