//! Webhook foundations against the outside world: signatures checked by an independent
//! Standard Webhooks implementation (the specification's own Rust crate, `standardwebhooks`),
//! and the delivery client against a real HTTP listener on loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::routing::get;
use standardwebhooks::Webhook;
use switchyard_api::webhooks::signing::{MessageId, Secret, SignedHeaders, sign_headers};
use switchyard_api::webhooks::target::{self, Target, TargetError};
use uuid::Uuid;

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The headers as a receiver gets them.
fn header_map(h: &SignedHeaders) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in h.pairs() {
        map.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    map
}

/// A verifier holding `secret` in the form its owner was shown.
fn receiver(secret: &Secret) -> Webhook {
    Webhook::new(&secret.expose()).unwrap()
}

const BODY: &[u8] = br#"{"type":"call.completed","data":{"call_id":"c_1","duration_s":42}}"#;

fn msg() -> MessageId {
    MessageId::from_uuid(Uuid::now_v7())
}

#[test]
fn independent_verifier_accepts_our_signature() {
    let secret = Secret::generate().unwrap();
    let h = sign_headers(&msg(), now_secs(), BODY, std::slice::from_ref(&secret)).unwrap();
    receiver(&secret).verify(BODY, &header_map(&h)).unwrap();
}

#[test]
fn independent_signer_and_ours_agree_byte_for_byte() {
    let secret = Secret::generate().unwrap();
    let id = msg();
    let ts = now_secs();
    let theirs = receiver(&secret).sign(id.as_str(), ts, BODY).unwrap();
    assert_eq!(secret.sign(&id, ts, BODY), theirs);
}

#[test]
fn during_rotation_a_receiver_with_either_secret_accepts() {
    let new = Secret::generate().unwrap();
    let old = Secret::generate().unwrap();
    let h = sign_headers(&msg(), now_secs(), BODY, &[new.clone(), old.clone()]).unwrap();
    let headers = header_map(&h);
    receiver(&new).verify(BODY, &headers).unwrap();
    receiver(&old).verify(BODY, &headers).unwrap();
    // And one holding neither refuses.
    let stranger = Secret::generate().unwrap();
    assert!(receiver(&stranger).verify(BODY, &headers).is_err());
}

#[test]
fn tampered_body_id_or_timestamp_is_refused() {
    let secret = Secret::generate().unwrap();
    let ts = now_secs();
    let h = sign_headers(&msg(), ts, BODY, std::slice::from_ref(&secret)).unwrap();
    let wh = receiver(&secret);

    let mut body = BODY.to_vec();
    body[10] ^= 1;
    assert!(matches!(
        wh.verify(&body, &header_map(&h)),
        Err(standardwebhooks::WebhookError::InvalidSignature)
    ));

    let mut other_id = header_map(&h);
    other_id.insert("webhook-id", HeaderValue::from_static("msg_other"));
    assert!(wh.verify(BODY, &other_id).is_err());

    // Another second, still within the verifier's tolerance: the signature no longer fits.
    let mut other_ts = header_map(&h);
    other_ts.insert("webhook-timestamp", HeaderValue::from(ts - 1));
    assert!(matches!(
        wh.verify(BODY, &other_ts),
        Err(standardwebhooks::WebhookError::InvalidSignature)
    ));
}

#[test]
fn verifier_applies_its_five_minute_tolerance_to_our_timestamp() {
    // standardwebhooks (like the specification's other libraries) accepts a timestamp within
    // five minutes of its clock either way: each retry must be signed afresh, not replayed.
    let secret = Secret::generate().unwrap();
    let wh = receiver(&secret);
    let id = msg();
    let signed_at =
        |ts: i64| header_map(&sign_headers(&id, ts, BODY, std::slice::from_ref(&secret)).unwrap());
    let now = now_secs();
    wh.verify(BODY, &signed_at(now - 240)).unwrap();
    wh.verify(BODY, &signed_at(now + 240)).unwrap();
    assert!(matches!(
        wh.verify(BODY, &signed_at(now - 360)),
        Err(standardwebhooks::WebhookError::TimestampTooOldError)
    ));
    assert!(matches!(
        wh.verify(BODY, &signed_at(now + 360)),
        Err(standardwebhooks::WebhookError::FutureTimestampError)
    ));
}

#[test]
fn independent_verifier_reads_a_secret_we_parsed() {
    // A secret made by the other implementation's convention parses here and signs alike.
    let text = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let ours = Secret::parse(text).unwrap();
    let theirs = Webhook::new(text).unwrap();
    let id = MessageId::parse("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk").unwrap();
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    assert_eq!(
        ours.sign(&id, 1649367553, body),
        theirs.sign(id.as_str(), 1649367553, body).unwrap()
    );
    assert_eq!(
        ours.sign(&id, 1649367553, body),
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    );
}

/// A listener on 127.0.0.1: `/` redirects to `/next`, `/ok` answers 204; counts every request.
async fn listener() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let (h1, h2, h3) = (hits.clone(), hits.clone(), hits.clone());
    let app = Router::new()
        .route(
            "/",
            get(move || {
                h1.fetch_add(1, Ordering::SeqCst);
                std::future::ready((StatusCode::FOUND, [(header::LOCATION, "/next")]))
            }),
        )
        .route(
            "/next",
            get(move || {
                h2.fetch_add(1, Ordering::SeqCst);
                std::future::ready(StatusCode::OK)
            }),
        )
        .route(
            "/ok",
            get(move || {
                h3.fetch_add(1, Ordering::SeqCst);
                std::future::ready(StatusCode::NO_CONTENT)
            }),
        );
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(tcp, app).await });
    (addr, hits)
}

/// The target error somewhere in a reqwest error's source chain.
fn target_error(err: &reqwest::Error) -> Option<&TargetError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(t) = e.downcast_ref::<TargetError>() {
            return Some(t);
        }
        source = e.source();
    }
    None
}

#[tokio::test]
async fn localhost_is_refused_at_connect_unless_private_targets_are_allowed() {
    let (addr, hits) = listener().await;
    let url = format!("http://localhost:{}/ok", addr.port());

    let err = target::client(false)
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    match target_error(&err) {
        Some(TargetError::NoAllowedAddress { host, refused }) => {
            assert_eq!(host, "localhost");
            assert!(!refused.is_empty());
        }
        other => panic!("expected NoAllowedAddress in {err:?}, got {other:?}"),
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the listener"
    );

    let ok = target::client(true)
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (addr, hits) = listener().await;
    let url = format!("http://localhost:{}/", addr.port());
    let res = target::client(true)
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()[header::LOCATION], "/next");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "only `/` was asked for");
}

#[tokio::test]
async fn ip_literal_urls_skip_the_resolver_so_target_parse_is_the_check() {
    // hyper's connector connects to a literal address without asking the resolver: the client
    // alone would reach 127.0.0.1 here. This is why deliveries go through `Target`, which
    // refuses the literal before any request is made.
    let (addr, hits) = listener().await;
    let url = format!("http://{addr}/ok");
    assert!(matches!(
        Target::parse(&url, false),
        Err(TargetError::Refused { .. })
    ));
    let res = target::client(false)
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn request_timeout_is_fifteen_seconds() {
    assert_eq!(target::REQUEST_TIMEOUT, std::time::Duration::from_secs(15));
}
