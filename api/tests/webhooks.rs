//! `/v1/webhooks` over HTTP on loopback, on SQLite and PostgreSQL: endpoints with their
//! secrets (shown once), a test send to a real receiver that checks every signature with an
//! independent Standard Webhooks implementation (the `standardwebhooks` crate), rotation with
//! overlap, the delivery log, 410 disabling the endpoint (announced, never silently), no
//! redirects followed, loopback targets refused unless the operator allows them, and tenant
//! isolation.

mod server_common;
mod store_common;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use server_common::live::LiveStream;
use server_common::*;
use standardwebhooks::Webhook;

/// What a receiver was sent: each request's headers and body.
type Received = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

/// A receiver on loopback: keeps what it is sent, answers with `status` (a 302 to `/elsewhere`
/// for 302).
struct Receiver {
    url: String,
    got: Received,
    status: Arc<AtomicU16>,
}

async fn receiver() -> Receiver {
    let got: Received = Arc::default();
    let status = Arc::new(AtomicU16::new(200));
    let (g, s) = (got.clone(), status.clone());
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (g, s) = (g.clone(), s.clone());
            async move {
                g.lock().unwrap().push((headers, body.to_vec()));
                let code = s.load(Ordering::Relaxed);
                let mut resp = axum::response::Response::new(axum::body::Body::from("thanks"));
                *resp.status_mut() = StatusCode::from_u16(code).unwrap();
                if code == 302 {
                    resp.headers_mut()
                        .insert("location", "/elsewhere".parse().unwrap());
                }
                resp
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got, status }
}

async fn create(s: &Server, key: &str, body: Value) -> Value {
    let (st, w) = s.call("POST", "/v1/webhooks", Some(key), Some(body)).await;
    assert_eq!(st, 201, "{w}");
    w
}

async fn test_send(s: &Server, key: &str, id: &Value) -> Value {
    let (st, r) = s
        .call("POST", &format!("/v1/webhooks/{id}/test"), Some(key), None)
        .await;
    assert_eq!(st, 200, "{r}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_send_is_signed_verified_independently_and_logged() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        s.rt.allow_private_webhooks(true);
        let (_, key) = s.tenant("acme").await;
        let r = receiver().await;
        let w = create(
            &s,
            &key,
            json!({"url": r.url, "events": ["call.completed", "webhook.test"], "description": "crm"}),
        )
        .await;
        let secret = w["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"), "{w}");
        assert_eq!(w["events"], json!(["call.completed", "webhook.test"]));
        assert_eq!(w["enabled"], true);
        // The secret is shown once: never listed, never read back.
        let (_, list) = s.call("GET", "/v1/webhooks", Some(&key), None).await;
        assert!(!list.to_string().contains(&secret), "{list}");
        let (_, one) = s
            .call("GET", &format!("/v1/webhooks/{}", w["id"]), Some(&key), None)
            .await;
        assert!(one.get("secret").is_none(), "{one}");

        let result = test_send(&s, &key, &w["id"]).await;
        assert_eq!(result["delivered"], true, "{result}");
        assert_eq!(result["status"], 200, "{result}");
        assert_eq!(result["response"], "thanks", "{result}");
        let (headers, body) = r.got.lock().unwrap()[0].clone();
        Webhook::new(&secret)
            .unwrap()
            .verify(&body, &headers)
            .expect("the receiver's own implementation accepts the signature");
        let sent: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent["type"], "webhook.test");
        assert_eq!(
            headers["webhook-id"].to_str().unwrap(),
            result["message_id"].as_str().unwrap()
        );

        let (st, log) = s
            .call(
                "GET",
                &format!("/v1/webhooks/{}/deliveries", w["id"]),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(st, 200, "{log}");
        let d = &log["deliveries"][0];
        assert_eq!(d["delivered"], true, "{log}");
        assert_eq!(d["status"], 200);
        assert_eq!(d["event_type"], "webhook.test");
        assert_eq!(d["attempt"], 1);
        assert_eq!(d["message_id"], result["message_id"]);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_both_secrets_sign_until_the_overlap_ends() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        s.rt.allow_private_webhooks(true);
        let (_, key) = s.tenant("acme").await;
        let r = receiver().await;
        let w = create(&s, &key, json!({"url": r.url})).await;
        let old = w["secret"].as_str().unwrap().to_owned();
        let path = format!("/v1/webhooks/{}/rotate-secret", w["id"]);
        let (st, rotated) = s.call("POST", &path, Some(&key), None).await;
        assert_eq!(st, 200, "{rotated}");
        let new = rotated["secret"].as_str().unwrap().to_owned();
        assert_ne!(old, new);
        assert_eq!(rotated["secrets_active"], 2, "{rotated}");
        test_send(&s, &key, &w["id"]).await;
        let (headers, body) = r.got.lock().unwrap()[0].clone();
        // A receiver still on the old secret and one already on the new both accept.
        Webhook::new(&old).unwrap().verify(&body, &headers).unwrap();
        Webhook::new(&new).unwrap().verify(&body, &headers).unwrap();
        // An overlap of 0 ends the old secrets at once: only the newest signs.
        let (st, again) = s
            .call("POST", &path, Some(&key), Some(json!({"overlap_s": 0})))
            .await;
        assert_eq!(st, 200, "{again}");
        assert_eq!(again["secrets_active"], 1, "{again}");
        let newest = again["secret"].as_str().unwrap().to_owned();
        test_send(&s, &key, &w["id"]).await;
        let (headers, body) = r.got.lock().unwrap()[1].clone();
        Webhook::new(&newest)
            .unwrap()
            .verify(&body, &headers)
            .unwrap();
        assert!(Webhook::new(&new).unwrap().verify(&body, &headers).is_err());
        let (st, e) = s
            .call(
                "POST",
                &path,
                Some(&key),
                Some(json!({"overlap_s": 99_999_999})),
            )
            .await;
        assert_eq!(
            (st, &e["error"]["field"]),
            (422, &json!("overlap_s")),
            "{e}"
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_disables_the_endpoint_loudly_and_a_redirect_is_not_followed() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        s.rt.allow_private_webhooks(true);
        let (_, key) = s.tenant("acme").await;
        let r = receiver().await;
        let w = create(&s, &key, json!({"url": r.url})).await;

        r.status.store(302, Ordering::Relaxed);
        let result = test_send(&s, &key, &w["id"]).await;
        assert_eq!(result["delivered"], false, "{result}");
        assert_eq!(result["status"], 302, "{result}");
        assert_eq!(
            r.got.lock().unwrap().len(),
            1,
            "nothing followed the redirect"
        );

        let mut live = LiveStream::open(&s, &key, None).await;
        live.next(Duration::from_secs(5)).await.expect("snapshot");
        r.status.store(410, Ordering::Relaxed);
        let result = test_send(&s, &key, &w["id"]).await;
        assert_eq!(result["disabled"], true, "{result}");
        let (_, one) = s
            .call(
                "GET",
                &format!("/v1/webhooks/{}", w["id"]),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(one["enabled"], false, "{one}");
        assert_eq!(one["disabled_reason"], "gone", "{one}");
        assert!(one["failing_since_ms"].is_i64(), "{one}");
        let ev = live.next(Duration::from_secs(5)).await.expect("an event");
        assert_eq!(ev.event, "endpoint.disabled", "{:?}", ev.data);
        assert_eq!(ev.data["reason"], "gone");
        // Disabled: no test send until it is enabled again.
        let (st, _) = s
            .call(
                "POST",
                &format!("/v1/webhooks/{}/test", w["id"]),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(st, 409);
        r.status.store(200, Ordering::Relaxed);
        let (st, back) = s
            .call(
                "PATCH",
                &format!("/v1/webhooks/{}", w["id"]),
                Some(&key),
                Some(json!({"enabled": true})),
            )
            .await;
        assert_eq!(st, 200, "{back}");
        assert_eq!(back["disabled_reason"], Value::Null, "{back}");
        assert_eq!(back["failing_since_ms"], Value::Null, "{back}");
        let result = test_send(&s, &key, &w["id"]).await;
        assert_eq!(result["delivered"], true, "{result}");
        let (_, log) = s
            .call(
                "GET",
                &format!("/v1/webhooks/{}/deliveries", w["id"]),
                Some(&key),
                None,
            )
            .await;
        let statuses: Vec<&Value> = log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["status"])
            .collect();
        assert_eq!(
            statuses,
            vec![&json!(200), &json!(410), &json!(302)],
            "{log}"
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_targets_bad_fields_and_other_tenants_are_refused() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        // The operator has not allowed private targets.
        for url in [
            "http://127.0.0.1:9/hook",
            "http://localhost/hook",
            "http://[::1]/hook",
            "http://10.0.0.5/hook",
        ] {
            let (st, e) = s
                .call("POST", "/v1/webhooks", Some(&key), Some(json!({"url": url})))
                .await;
            assert_eq!((st, &e["error"]["field"]), (422, &json!("url")), "{url}: {e}");
        }
        for (body, field) in [
            (json!({"url": "ftp://example.com/x"}), "url"),
            (json!({"url": "https://user:pw@example.com/x"}), "url"),
            (
                json!({"url": "https://example.com/x", "events": ["call.completed", "call.exploded"]}),
                "events[1]",
            ),
            (
                json!({"url": "https://example.com/x", "description": "a\nb"}),
                "description",
            ),
        ] {
            let (st, e) = s.call("POST", "/v1/webhooks", Some(&key), Some(body)).await;
            assert_eq!((st, &e["error"]["field"]), (422, &json!(field)), "{e}");
        }
        let w = create(
            &s,
            &key,
            json!({"url": "https://example.com/hook", "events": ["call.completed", "call.completed"]}),
        )
        .await;
        assert_eq!(w["events"], json!(["call.completed"]), "duplicates dropped");
        let (_, other) = s.tenant("other").await;
        for (method, path) in [
            ("GET", format!("/v1/webhooks/{}", w["id"])),
            ("PATCH", format!("/v1/webhooks/{}", w["id"])),
            ("DELETE", format!("/v1/webhooks/{}", w["id"])),
            ("POST", format!("/v1/webhooks/{}/test", w["id"])),
            ("POST", format!("/v1/webhooks/{}/rotate-secret", w["id"])),
            ("GET", format!("/v1/webhooks/{}/deliveries", w["id"])),
        ] {
            let body = (method == "PATCH").then(|| json!({"description": "mine"}));
            let (st, _) = s.call(method, &path, Some(&other), body).await;
            assert_eq!(st, 404, "{method} {path}");
        }
        let (_, theirs) = s.call("GET", "/v1/webhooks", Some(&other), None).await;
        assert_eq!(theirs["webhooks"], json!([]));
        let (st, _) = s
            .call("DELETE", &format!("/v1/webhooks/{}", w["id"]), Some(&key), None)
            .await;
        assert_eq!(st, 204);
        let (_, log) = s.call("GET", "/v1/audit", Some(&key), None).await;
        let actions: Vec<&str> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .filter(|a| a.starts_with("webhook."))
            .collect();
        assert!(actions.contains(&"webhook.create") && actions.contains(&"webhook.delete"), "{log}");
        s.stop().await;
    })
    .await;
}
