//! `switchyard serve` killed (-9) while webhook deliveries are in flight, then started again
//! on the same database: no message is lost, and the ones the receiver had already been sent
//! come again under the same `webhook-id` (a receiver that keeps ids drops them).

mod process_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use process_common::{Api, free_port, serve_with, tenant_with_admin_key};
use reqwest::Method;
use serde_json::{Value, json};
use standardwebhooks::Webhook;
use switchyard_esl::sim::SimConfig;

/// Each request's message id and body, in arrival order (kept before it is answered).
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_mid_delivery_loses_no_message_and_resends_keep_their_ids() {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-webhook-restart-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    let key = tenant_with_admin_key(&db);

    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl_addr = esl.local_addr().unwrap().to_string();
    let outbound = format!("127.0.0.1:{}", free_port());
    let _switch = switchyard_esl::sim::spawn(
        esl,
        SimConfig {
            inbound_target: Some(outbound.clone()),
            ..SimConfig::default()
        }
        .for_this_run(),
        29,
    );
    let config = dir.join("serve.toml");
    std::fs::write(&config, "[webhooks]\nallow_private_targets = true\n").unwrap();
    let config = config.display().to_string();
    let args = ["--config", config.as_str()];

    // The receiver keeps what it is sent; while `slow`, it holds every request 30 s (the
    // sender is killed meanwhile and never hears the answer).
    let seen: Seen = Arc::default();
    let slow = Arc::new(AtomicBool::new(true));
    let secret: Arc<Mutex<String>> = Arc::default();
    let (s2, w2, k2) = (seen.clone(), slow.clone(), secret.clone());
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (seen, slow, secret) = (s2.clone(), w2.clone(), k2.clone());
            async move {
                Webhook::new(&secret.lock().unwrap())
                    .unwrap()
                    .verify(&body, &headers)
                    .expect("signed");
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                let v: Value = serde_json::from_slice(&body).unwrap();
                seen.lock().unwrap().push((id, v));
                if slow.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let (first, base) = serve_with(&db, &esl_addr, &outbound, &args).await;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key: key.clone(),
    };
    api.wait_ready(Duration::from_secs(30)).await;
    let w = api
        .ok(
            Method::POST,
            "/v1/webhooks",
            Some(json!({"url": url, "events": ["agent.state_changed"]})),
        )
        .await;
    *secret.lock().unwrap() = w["secret"].as_str().unwrap().to_owned();
    let agent = api
        .ok(
            Method::POST,
            "/v1/agents",
            Some(json!({"name": "Ana", "config": {"contact": "user/1000"}})),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    // Ten state changes: ten messages.
    for i in 0..5 {
        for body in [
            json!({"state": "available"}),
            json!({"state": "on-break", "reason": format!("break {i}")}),
        ] {
            api.ok(
                Method::PUT,
                &format!("/v1/agents/{agent}/state"),
                Some(body),
            )
            .await;
        }
    }
    // Deliveries are in flight (the receiver holds them): kill the sender now.
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "no delivery began");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.signal("KILL");
    let in_flight: BTreeSet<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    slow.store(false, Ordering::Relaxed);

    let (_second, base) = serve_with(&db, &esl_addr, &outbound, &args).await;
    let api = Api {
        http: reqwest::Client::new(),
        base,
        key,
    };
    api.wait_ready(Duration::from_secs(30)).await;
    let delivered = |log: &Value| -> BTreeSet<String> {
        log["deliveries"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["delivered"] == true)
            .filter_map(|d| d["message_id"].as_str().map(str::to_owned))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = api
            .ok(
                Method::GET,
                &format!("/v1/webhooks/{}/deliveries", w["id"]),
                None,
            )
            .await;
        let distinct: BTreeSet<String> = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(id, _)| id.clone())
            .collect();
        if distinct.len() >= 10 && delivered(&log).len() >= 10 {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "messages lost: {} seen, log {log}",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seen = seen.lock().unwrap().clone();
    let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (id, v) in seen {
        by_id.entry(id).or_default().push(v);
    }
    assert_eq!(by_id.len(), 10, "each state change once, by id: {by_id:?}");
    // What was in flight at the kill came again, the same message under the same id.
    for id in &in_flight {
        let copies = &by_id[id];
        assert!(copies.len() >= 2, "{id} was sent again after the restart");
        assert!(copies.iter().all(|c| c == &copies[0]), "{copies:?}");
    }
    let reasons: BTreeSet<String> = by_id
        .values()
        .filter_map(|v| v[0]["data"]["reason"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert_eq!(delivered(&log), by_id.keys().cloned().collect());
    let _ = std::fs::remove_dir_all(&dir);
}
