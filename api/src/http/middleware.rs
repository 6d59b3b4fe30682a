//! The middleware of [`layers`](super::layers), outermost first. Each is an
//! `axum::middleware::from_fn` function, so each reads top-down.
//!
//! Logging rule: the access log carries method, route template, status, latency, request id and
//! key id. Headers are never logged (so neither is `Authorization`), nor are raw paths and query
//! strings (they can carry identifiers a tenant considers private); the route template says
//! which endpoint it was.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use uuid::Uuid;

use super::HttpKit;
use super::auth::{
    AuthOutcome, CSRF_HEADER, Presented, csrf_matches, presented_key, session_cookie,
};
use super::error::ApiError;
use super::ratelimit::{Allowance, BucketKey, RateClass, RateLimiter};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The bucket's size (the burst) of the request's class, on every rate-limited answer.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// Whole requests left in the bucket after this one (0 on a 429).
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// On a 429: seconds until the next request can pass (as `Retry-After`).
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
/// The `tracing` target of the access log (one event per request).
pub const ACCESS_LOG_TARGET: &str = "switchyard::access";

/// The request's id: the client's `x-request-id` when it is sane (1 to 128 characters of
/// `[A-Za-z0-9._:+/=@-]`), else a fresh UUID v4. In the request's extensions, the tracing span
/// and the response's `x-request-id`. Also an extractor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn from_headers(headers: &HeaderMap) -> RequestId {
        let given = headers
            .get(X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|s| {
                (1..=128).contains(&s.len())
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._:+/=@-".contains(&b))
            });
        match given {
            Some(s) => RequestId(s.into()),
            None => RequestId(Uuid::new_v4().to_string().into()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId("-".into())))
    }
}

tokio::task_local! {
    static CURRENT_REQUEST_ID: RequestId;
}

/// The id of the request this task is serving, if any (handlers run in the request's task;
/// tasks they spawn do not inherit it).
pub fn current_request_id() -> Option<RequestId> {
    CURRENT_REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Which key a response was made for, left by [`authenticate`] for the access log.
#[derive(Clone, Copy, Debug)]
struct KeyId(Uuid);

/// Request id, tracing span, access log, HTTP metrics.
pub async fn observe(State(kit): State<HttpKit>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = RequestId::from_headers(req.headers());
    req.extensions_mut().insert(id.clone());
    let method = req.method().clone();
    let route: Arc<str> = match req.extensions().get::<MatchedPath>() {
        Some(m) => m.as_str().into(),
        None => "unmatched".into(),
    };
    let span = tracing::info_span!(
        "http",
        request_id = %id.as_str(),
        method = %method,
        route = %route,
        key_id = tracing::field::Empty,
    );
    let mut resp = CURRENT_REQUEST_ID
        .scope(id.clone(), next.run(req).instrument(span))
        .await;
    let latency = started.elapsed();
    let status = resp.status();
    // A sane request id is a valid header value; a generated one is too.
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        resp.headers_mut().insert(X_REQUEST_ID, v);
    }
    let key_id = resp.extensions().get::<KeyId>().map(|k| k.0);
    tracing::info!(
        target: ACCESS_LOG_TARGET,
        request_id = %id.as_str(),
        method = %method,
        route = %route,
        status = status.as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        key_id = key_id.map(tracing::field::display),
        "request",
    );
    kit.metrics().record_http(&method, &route, status, latency);
    resp
}

/// `nosniff`, `DENY`, `no-referrer`, a deny-all CSP (not under the configured prefixes, and
/// not when the route set its own) and `cache-control: no-store` (unless the route set one:
/// the live feed says `no-cache`).
pub async fn security_headers(State(kit): State<HttpKit>, req: Request, next: Next) -> Response {
    let path = match req.extensions().get::<OriginalUri>() {
        Some(uri) => uri.path().to_owned(),
        None => req.uri().path().to_owned(),
    };
    let csp = !kit
        .config()
        .csp_exempt_prefixes
        .iter()
        .any(|p| has_path_prefix(&path, p));
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    if csp {
        h.entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(
                "default-src 'none'; frame-ancestors 'none'",
            ));
    }
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// `/docs` covers `/docs` and `/docs/...`, not `/docsearch`.
fn has_path_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.is_empty(),
        None => false,
    }
}

/// Any error answer that is not JSON (axum's 404 and 405, rejections of axum's own extractors,
/// a bare status from a handler) becomes the generic [`ApiError`] for its status. The original
/// body is dropped: it is at best plain text, at worst a detail we did not mean to send.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let status = resp.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The body was refused before it was read to its end: what is left of it would be
        // read as the next request, so the connection closes after this answer and the client
        // is told not to reuse it (a pooled client otherwise sends its next request into a
        // connection the server is closing).
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if !(status.is_client_error() || status.is_server_error()) || is_json(resp.headers()) {
        return resp;
    }
    let (mut parts, _) = resp.into_parts();
    let err = ApiError::from_status(status);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED && !parts.headers.contains_key(header::WWW_AUTHENTICATE) {
        parts
            .headers
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    Response::from_parts(parts, Body::from(err.body().to_string()))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
        })
        .unwrap_or(false)
}

/// The response head must come within `request_timeout`, else 503 `timeout`. The handler's
/// future is dropped (cancelled). A stream's body is not timed: only its head.
pub async fn timeout(State(kit): State<HttpKit>, req: Request, next: Next) -> Response {
    // Uploads read their body before they answer: a million-row import takes longer than any
    // request should, and is bounded by its own row and byte limits instead.
    let long = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .is_some_and(|p| {
            kit.config()
                .long_request_paths
                .iter()
                .any(|l| l == p.as_str())
        });
    let limit = if long {
        kit.config().long_request_timeout
    } else {
        kit.config().request_timeout
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(?limit, "request timed out");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the request took too long",
            )
            .into_response()
        }
    }
}

/// Resolves the bearer key (through the cache), then charges a rate-limit bucket of the
/// request's class ([`RateClass`]: live for `live_paths`, API otherwise):
/// - a valid key: its own bucket;
/// - no key, a malformed or known-bad key: the client address's bucket;
/// - a key not in the cache: the address's bucket, *before* asking the store, so made-up keys
///   reach the store no faster than the anonymous rate; then, if the key is valid, its own.
///
/// Over the rate: 429 with `Retry-After`, and the handler does not run. Under it, the outcome
/// goes into the request for [`Auth`](super::Auth); nothing is refused here for want of a key
/// (public routes have none). Every charged answer says `RateLimit-Limit` and
/// `RateLimit-Remaining` of the bucket it was charged to.
pub async fn authenticate(State(kit): State<HttpKit>, mut req: Request, next: Next) -> Response {
    let now = Instant::now();
    let matched = req.extensions().get::<MatchedPath>().map(|m| m.as_str());
    let class = match matched {
        Some(m) if kit.config().live_paths.iter().any(|p| p == m) => RateClass::Live,
        _ => RateClass::Api,
    };
    let limiter = kit.limiter_for(class);
    let limited = limiter.enabled()
        && !matched.is_some_and(|m| kit.config().rate_limit_exempt.iter().any(|p| p == m));
    let addr = BucketKey::addr(client_addr(&req, kit.config().trust_forwarded_for));
    // Owned: the request (its body is not `Sync`) must not be borrowed across the await.
    let presented = match presented_key(req.headers()) {
        Presented::None => None,
        Presented::Malformed => Some(None),
        Presented::Key(key) => Some(Some(key.to_owned())),
    };
    // Without an `Authorization` header, a browser session's cookie stands in for a key. Not
    // on sign-in itself, which authenticates by the key in its body (a stale cookie must not
    // stop a new sign-in).
    let on_session_path = matched == Some(SESSION_PATH);
    let session = match presented {
        None if !(on_session_path && req.method() == Method::POST) => {
            session_cookie(req.headers()).map(str::to_owned)
        }
        _ => None,
    };
    let by_cookie = session.is_some();
    let (presented, cache) = match session {
        Some(token) => (Some(Some(token)), kit.sessions()),
        None => (presented, kit.auth()),
    };
    let mut charged = None;
    let outcome = match &presented {
        None => AuthOutcome::Missing,
        Some(None) => AuthOutcome::Invalid,
        Some(Some(key)) => match cache.cached(key, now) {
            Some(verdict) => verdict.into(),
            None => {
                if limited {
                    match limiter.check(addr, now) {
                        Ok(a) => charged = Some(a),
                        Err(wait) => return rate_limited(limiter, wait, None),
                    }
                }
                match cache.verify_and_cache(key).await {
                    Ok(verdict) => verdict.into(),
                    Err(e) => AuthOutcome::Failed(e),
                }
            }
        },
    };
    let key_id = outcome.principal().map(|p| p.key_id);
    if let Some(id) = key_id {
        tracing::Span::current().record("key_id", tracing::field::display(id));
    }
    // A valid key is always charged to itself (also when its address paid for the lookup).
    let bucket = match key_id {
        Some(id) => Some(BucketKey::Key(id)),
        None if charged.is_some() => None,
        None => Some(addr),
    };
    let mut allowance = charged;
    if limited && let Some(bucket) = bucket {
        match limiter.check(bucket, now) {
            Ok(a) => allowance = Some(a),
            Err(wait) => return rate_limited(limiter, wait, key_id),
        }
    }
    // A browser session may write only with its CSRF token, and a wall screen's never: the
    // cookie goes with every request to this origin, whoever made the page that sent it.
    if by_cookie
        && outcome.principal().is_some()
        && let Some(Some(token)) = &presented
        && !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && let Some(refused) = session_write_refused(req.headers(), on_session_path, token)
    {
        let mut resp = refused.into_response();
        if let Some(id) = key_id {
            resp.extensions_mut().insert(KeyId(id));
        }
        return resp;
    }
    req.extensions_mut().insert(outcome);
    let mut resp = next.run(req).await;
    if let Some(id) = key_id {
        resp.extensions_mut().insert(KeyId(id));
    }
    if let Some(a) = allowance {
        set_allowance(resp.headers_mut(), a);
    }
    resp
}

/// The route of sign-in, sign-out and who-am-I of browser sessions.
pub const SESSION_PATH: &str = "/web/session";

/// Why a write by the session of `token` is refused, if it is: a display session may only
/// end itself (sign-out); any session needs its CSRF token in `X-CSRF-Token`.
fn session_write_refused(
    headers: &HeaderMap,
    on_session_path: bool,
    token: &str,
) -> Option<ApiError> {
    if crate::store::web::is_display_session(token) && !on_session_path {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "read_only",
            "a display session reads only: it cannot act",
        ));
    }
    let presented = headers.get(CSRF_HEADER).map(HeaderValue::as_bytes);
    match presented {
        Some(p) if csrf_matches(token, p) => None,
        _ => Some(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "a request signed in by a session cookie that changes anything needs the \
                 session's CSRF token in X-CSRF-Token (POST or GET /web/session gives it)",
            )
            .with_field("X-CSRF-Token"),
        ),
    }
}

/// The 429 of an empty bucket of `limiter`: `Retry-After`, `RateLimit-Reset` (the same whole
/// seconds, rounded up) and the bucket's `RateLimit-*`.
fn rate_limited(
    limiter: &RateLimiter,
    wait: std::time::Duration,
    key_id: Option<Uuid>,
) -> Response {
    let mut resp = ApiError::too_many_requests(wait).into_response();
    let h = resp.headers_mut();
    set_allowance(
        h,
        Allowance {
            limit: limiter.burst(),
            remaining: 0,
        },
    );
    let reset_s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    h.insert(RATELIMIT_RESET, HeaderValue::from(reset_s.max(1)));
    if let Some(id) = key_id {
        resp.extensions_mut().insert(KeyId(id));
    }
    resp
}

fn set_allowance(h: &mut HeaderMap, a: Allowance) {
    h.insert(RATELIMIT_LIMIT, HeaderValue::from(a.limit));
    h.insert(RATELIMIT_REMAINING, HeaderValue::from(a.remaining));
}

static WARNED_NO_ADDR: AtomicBool = AtomicBool::new(false);

/// The peer address, or the last `X-Forwarded-For` entry when trusted (and an address). Without either (the
/// app was served without `into_make_service_with_connect_info::<SocketAddr>()`), every
/// anonymous client shares one bucket: said once in the log.
fn client_addr(req: &Request, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for {
        // Only the last entry: the one our proxy appended. Earlier ones are the client's say.
        let last = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|s| s.trim().parse::<IpAddr>().ok());
        if let Some(ip) = last {
            return ip;
        }
    }
    match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(addr)) => addr.ip(),
        None => {
            if !WARNED_NO_ADDR.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "no client address (serve with into_make_service_with_connect_info); \
                     anonymous requests share one rate-limit bucket"
                );
            }
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Auth, HttpConfig, Metrics, StaticKeys, layers, require_tenant};
    use crate::model::{Principal, Role, TenantId};
    use axum::Router;
    use axum::routing::{get, post};
    use serde_json::Value;
    use std::io::Write;
    use std::sync::Mutex;
    use std::time::Duration;
    use tower::ServiceExt;

    const ADMIN_KEY: &str = "sk_live_admin_0123456789";
    const ROOT_KEY: &str = "sk_live_root_9876543210";

    fn admin() -> Principal {
        Principal {
            key_id: Uuid::from_u128(0xA),
            tenant: Some(TenantId(Uuid::from_u128(0x7E))),
            role: Role::Admin,
            agent_id: None,
        }
    }

    fn kit(config: HttpConfig) -> HttpKit {
        let keys = StaticKeys::new().with(ADMIN_KEY, admin()).with(
            ROOT_KEY,
            Principal {
                key_id: Uuid::from_u128(0xB),
                tenant: None,
                role: Role::PlatformAdmin,
                agent_id: None,
            },
        );
        HttpKit::new(config, Arc::new(keys), Metrics::new())
    }

    fn app(kit: &HttpKit) -> Router {
        let routes = Router::new()
            .route(
                "/v1/whoami",
                get(|Auth(p): Auth| async move {
                    let tenant = require_tenant(&p)?;
                    Ok::<_, ApiError>(tenant.0.to_string())
                }),
            )
            .route("/v1/public", get(|| async { "hello" }))
            .route("/v1/echo", post(|body: String| async move { body }))
            .route(
                "/v1/json",
                post(|axum::Json(v): axum::Json<Value>| async move { axum::Json(v) }),
            )
            .route(
                "/v1/boom",
                get(|| async { Err::<(), _>(ApiError::internal("disk /var/lib/secret full")) }),
            )
            .route("/v1/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
            .route(
                "/v1/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/docs", get(|| async { "swagger" }))
            .route("/healthz", get(|| async { "ok" }));
        layers(routes, kit)
    }

    fn req(method: &str, uri: &str) -> axum::http::request::Builder {
        axum::http::Request::builder().method(method).uri(uri)
    }

    async fn call(app: &Router, req: axum::http::Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, body)
    }

    fn with_key(b: axum::http::request::Builder, key: &str) -> axum::http::request::Builder {
        b.header("authorization", format!("Bearer {key}"))
    }

    #[tokio::test]
    async fn a_valid_key_reaches_the_handler() {
        let app = app(&kit(HttpConfig::default()));
        let (status, _, body) = call(
            &app,
            with_key(req("GET", "/v1/whoami"), ADMIN_KEY)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, Value::String(admin().tenant.unwrap().0.to_string()));
    }

    #[tokio::test]
    async fn missing_malformed_and_unknown_keys_are_401_json() {
        let app = app(&kit(HttpConfig::default()));
        for r in [
            req("GET", "/v1/whoami"),
            with_key(req("GET", "/v1/whoami"), "sk_unknown"),
            req("GET", "/v1/whoami").header("authorization", "Basic YTpi"),
        ] {
            let (status, headers, body) = call(&app, r.body(Body::empty()).unwrap()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }

    #[tokio::test]
    async fn a_platform_admin_key_on_a_tenant_route_is_403() {
        let app = app(&kit(HttpConfig::default()));
        let (status, _, body) = call(
            &app,
            with_key(req("GET", "/v1/whoami"), ROOT_KEY)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["error"]["code"], "forbidden");
    }

    #[tokio::test]
    async fn public_routes_need_no_key() {
        let app = app(&kit(HttpConfig::default()));
        let (status, _, body) =
            call(&app, req("GET", "/v1/public").body(Body::empty()).unwrap()).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, Value::String("hello".into()))
        );
    }

    #[tokio::test]
    async fn security_headers_are_on_every_answer() {
        let app = app(&kit(HttpConfig::default()));
        for uri in ["/v1/public", "/v1/whoami", "/nowhere"] {
            let (_, h, _) = call(&app, req("GET", uri).body(Body::empty()).unwrap()).await;
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
            assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
            assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
            assert_eq!(
                h[header::CONTENT_SECURITY_POLICY],
                "default-src 'none'; frame-ancestors 'none'"
            );
            assert_eq!(h[header::CACHE_CONTROL], "no-store");
        }
    }

    #[tokio::test]
    async fn docs_get_no_csp_from_the_stack() {
        let app = app(&kit(HttpConfig::default()));
        let (status, h, _) = call(&app, req("GET", "/docs").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(h.get(header::CONTENT_SECURITY_POLICY).is_none());
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(has_path_prefix("/docs/index.html", "/docs"));
        assert!(!has_path_prefix("/docsearch", "/docs"));
    }

    #[tokio::test]
    async fn a_route_may_set_its_own_csp() {
        let kit = kit(HttpConfig::default());
        let routes = Router::new().route(
            "/wallboard",
            get(|| async {
                (
                    [(header::CONTENT_SECURITY_POLICY, "default-src 'self'")],
                    "wb",
                )
            }),
        );
        let app = layers(routes, &kit);
        let (_, h, _) = call(&app, req("GET", "/wallboard").body(Body::empty()).unwrap()).await;
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], "default-src 'self'");
    }

    #[tokio::test]
    async fn request_id_is_echoed_or_generated() {
        let app = app(&kit(HttpConfig::default()));
        let (_, h, _) = call(
            &app,
            req("GET", "/v1/public")
                .header("x-request-id", "abc-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(h[X_REQUEST_ID], "abc-123");

        let (_, h, _) = call(&app, req("GET", "/v1/public").body(Body::empty()).unwrap()).await;
        let generated = h[X_REQUEST_ID].to_str().unwrap();
        assert_eq!(Uuid::parse_str(generated).unwrap().get_version_num(), 4);

        // Junk (spaces, quotes, overlong) is replaced rather than logged.
        for junk in ["a b", "\"x\"", &"x".repeat(200)] {
            let (_, h, _) = call(
                &app,
                req("GET", "/v1/public")
                    .header("x-request-id", junk)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            assert!(
                Uuid::parse_str(h[X_REQUEST_ID].to_str().unwrap()).is_ok(),
                "{junk}"
            );
        }
    }

    #[tokio::test]
    async fn unmatched_paths_and_methods_answer_json() {
        let app = app(&kit(HttpConfig::default()));
        let (status, h, body) =
            call(&app, req("GET", "/v1/nowhere").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
        assert!(h.contains_key(X_REQUEST_ID));

        let (status, h, body) = call(
            &app,
            req("DELETE", "/v1/public").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"]["code"], "method_not_allowed");
        assert!(h.contains_key(header::ALLOW), "Allow is kept");

        let (status, _, body) =
            call(&app, req("GET", "/v1/teapot").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::IM_A_TEAPOT);
        assert_eq!(body["error"]["code"], "error");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413_json_even_through_axums_extractors() {
        let app = app(&kit(HttpConfig {
            max_body_bytes: 100,
            ..HttpConfig::default()
        }));
        let (status, _, body) = call(
            &app,
            req("POST", "/v1/echo")
                .body(Body::from("x".repeat(101)))
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "payload_too_large");

        let (status, _, body) = call(
            &app,
            req("POST", "/v1/json")
                .header("content-type", "application/json")
                .body(Body::from(format!("\"{}\"", "x".repeat(200))))
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["error"]["code"], "payload_too_large");

        let (status, _, _) = call(
            &app,
            req("POST", "/v1/echo")
                .body(Body::from("x".repeat(100)))
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_slow_handler_is_cut_at_the_timeout_with_json_503() {
        let app = app(&kit(HttpConfig {
            request_timeout: Duration::from_millis(50),
            ..HttpConfig::default()
        }));
        let started = Instant::now();
        let (status, _, body) =
            call(&app, req("GET", "/v1/slow").body(Body::empty()).unwrap()).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["error"]["code"], "timeout");
    }

    fn limited(rate: u32, burst: u32) -> HttpConfig {
        HttpConfig {
            rate_per_sec: rate,
            burst,
            ..HttpConfig::default()
        }
    }

    #[tokio::test]
    async fn a_key_over_its_rate_gets_429_with_retry_after_then_recovers() {
        let app = app(&kit(limited(20, 2)));
        let get = || {
            with_key(req("GET", "/v1/whoami"), ADMIN_KEY)
                .body(Body::empty())
                .unwrap()
        };
        assert_eq!(call(&app, get()).await.0, StatusCode::OK);
        assert_eq!(call(&app, get()).await.0, StatusCode::OK);
        let (status, h, body) = call(&app, get()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h[header::RETRY_AFTER], "1");
        assert_eq!(body["error"]["code"], "rate_limited");
        // Anonymous requests (another bucket) are unaffected by the key's exhaustion.
        assert_eq!(
            call(&app, req("GET", "/v1/public").body(Body::empty()).unwrap())
                .await
                .0,
            StatusCode::OK
        );
        tokio::time::sleep(Duration::from_millis(60)).await; // 20/s: one token per 50 ms
        assert_eq!(call(&app, get()).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn probes_are_not_rate_limited() {
        let app = app(&kit(limited(1, 1)));
        for _ in 0..5 {
            assert_eq!(
                call(&app, req("GET", "/healthz").body(Body::empty()).unwrap())
                    .await
                    .0,
                StatusCode::OK
            );
        }
        assert_eq!(
            call(&app, req("GET", "/v1/public").body(Body::empty()).unwrap())
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            call(&app, req("GET", "/v1/public").body(Body::empty()).unwrap())
                .await
                .0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[test]
    fn the_client_address_is_the_peer_unless_a_trusted_proxy_says_otherwise() {
        let peer: SocketAddr = "10.0.0.9:5555".parse().unwrap();
        let request = |xff: Option<&str>| {
            let mut r = axum::http::Request::get("/").body(Body::empty()).unwrap();
            r.extensions_mut().insert(ConnectInfo(peer));
            if let Some(v) = xff {
                r.headers_mut()
                    .insert("x-forwarded-for", v.parse().unwrap());
            }
            r
        };
        let spoof = Some("6.6.6.6, 203.0.113.7");
        assert_eq!(client_addr(&request(spoof), false), peer.ip());
        assert_eq!(
            client_addr(&request(spoof), true),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // Only the proxy's own (last) entry counts; junk there means the peer, not an earlier one.
        assert_eq!(
            client_addr(&request(Some("6.6.6.6, junk")), true),
            peer.ip()
        );
        assert_eq!(client_addr(&request(None), true), peer.ip());
        let bare = axum::http::Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(client_addr(&bare, false), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }

    /// Counts verifications; every key is unknown.
    #[derive(Default)]
    struct CountingVerifier(std::sync::atomic::AtomicUsize);
    impl crate::http::KeyVerifier for CountingVerifier {
        fn verify<'a>(
            &'a self,
            _key: &'a str,
        ) -> crate::http::BoxFuture<'a, Result<crate::http::KeyVerdict, ApiError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(crate::http::KeyVerdict::Invalid) })
        }
    }

    #[tokio::test]
    async fn made_up_keys_reach_the_verifier_no_faster_than_the_anonymous_rate() {
        let verifier = Arc::new(CountingVerifier::default());
        let kit = HttpKit::new(limited(1, 3), verifier.clone(), Metrics::new());
        let app = app(&kit);
        let mut statuses = Vec::new();
        for i in 0..20 {
            let r = with_key(req("GET", "/v1/whoami"), &format!("guess-{i}"));
            statuses.push(call(&app, r.body(Body::empty()).unwrap()).await.0);
        }
        assert_eq!(verifier.0.load(Ordering::SeqCst), 3);
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == StatusCode::UNAUTHORIZED)
                .count(),
            3
        );
        assert_eq!(
            statuses
                .iter()
                .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
                .count(),
            17
        );
    }

    #[tokio::test]
    async fn a_verifier_failure_is_answered_without_detail() {
        struct Down;
        impl crate::http::KeyVerifier for Down {
            fn verify<'a>(
                &'a self,
                _key: &'a str,
            ) -> crate::http::BoxFuture<'a, Result<crate::http::KeyVerdict, ApiError>> {
                Box::pin(async { Err(ApiError::internal("sqlite: database is locked")) })
            }
        }
        let kit = HttpKit::new(HttpConfig::default(), Arc::new(Down), Metrics::new());
        let app = app(&kit);
        let (status, _, body) = call(
            &app,
            with_key(req("GET", "/v1/whoami"), "k")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["message"], "internal error");
    }

    #[tokio::test]
    async fn cors_preflight_from_an_allowed_origin_is_answered() {
        let app = app(&kit(HttpConfig {
            cors_origins: vec!["https://portal.example".into()],
            ..HttpConfig::default()
        }));
        let (status, h, _) = call(
            &app,
            req("OPTIONS", "/v1/whoami")
                .header("origin", "https://portal.example")
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "authorization")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://portal.example"
        );
        let allowed = h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
        assert!(allowed.contains("authorization"), "{allowed}");
        assert!(
            h[header::ACCESS_CONTROL_ALLOW_METHODS]
                .to_str()
                .unwrap()
                .contains("PATCH")
        );

        // The real request gets the origin back and can read the request id.
        let (_, h, _) = call(
            &app,
            with_key(req("GET", "/v1/whoami"), ADMIN_KEY)
                .header("origin", "https://portal.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://portal.example"
        );
        assert!(
            h[header::ACCESS_CONTROL_EXPOSE_HEADERS]
                .to_str()
                .unwrap()
                .contains("x-request-id")
        );
    }

    #[tokio::test]
    async fn cors_preflight_from_another_origin_gets_no_allowance() {
        let app = app(&kit(HttpConfig {
            cors_origins: vec!["https://portal.example".into()],
            ..HttpConfig::default()
        }));
        let (_, h, _) = call(
            &app,
            req("OPTIONS", "/v1/whoami")
                .header("origin", "https://evil.example")
                .header("access-control-request-method", "GET")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[tokio::test]
    async fn no_cors_origins_means_no_cors_headers() {
        let app = app(&kit(HttpConfig::default()));
        let (_, h, _) = call(
            &app,
            req("GET", "/v1/public")
                .header("origin", "https://portal.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        assert!(h.get(header::VARY).is_none());
    }

    #[tokio::test]
    async fn a_wildcard_origin_must_be_configured_explicitly_and_then_allows_any() {
        let app = app(&kit(HttpConfig {
            cors_origins: vec!["*".into()],
            ..HttpConfig::default()
        }));
        let (_, h, _) = call(
            &app,
            req("GET", "/v1/public")
                .header("origin", "https://anyone.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_template() {
        let kit = kit(HttpConfig::default());
        let app = app(&kit);
        call(
            &app,
            with_key(req("GET", "/v1/whoami"), ADMIN_KEY)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        call(
            &app,
            req("GET", "/v1/random/path/123")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        let text = kit.metrics().render();
        assert!(
            text.contains(r#"http_requests_total{method="GET",route="/v1/whoami",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
            "{text}"
        );
        assert!(!text.contains("/v1/random"));
    }

    /// A `MakeWriter` into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }
    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    /// Tests that capture logs take turns: tracing caches per-callsite interest process-wide,
    /// and a thread-local subscriber coming or going while another test captures can leave the
    /// other's spans disabled for a moment.
    static CAPTURING: Mutex<()> = Mutex::new(());

    struct Capture {
        out: Captured,
        _default: tracing::subscriber::DefaultGuard,
        _turn: std::sync::MutexGuard<'static, ()>,
    }

    fn capture() -> Capture {
        let turn = CAPTURING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish();
        let default = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        Capture {
            out,
            _default: default,
            _turn: turn,
        }
    }

    /// Runs the requests a capture test makes once without capturing, so that every tracing
    /// callsite involved is registered (interest cached) before the capture begins.
    async fn warm_up(app: &Router) {
        for r in [
            with_key(req("GET", "/v1/whoami"), ADMIN_KEY),
            with_key(req("GET", "/v1/whoami"), "sk_nope"),
            req("GET", "/v1/boom"),
        ] {
            call(app, r.body(Body::empty()).unwrap()).await;
        }
    }

    #[tokio::test]
    async fn the_access_log_has_the_request_and_key_ids_but_never_the_key() {
        let app = app(&kit(HttpConfig::default()));
        warm_up(&app).await;
        let capture = capture();
        call(
            &app,
            with_key(req("GET", "/v1/whoami"), ADMIN_KEY)
                .header("x-request-id", "req-42")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        call(
            &app,
            with_key(req("GET", "/v1/whoami"), "sk_wrong_key_555")
                .header("x-request-id", "req-43")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        let text = capture.out.text();
        assert!(text.contains("req-42") && text.contains("req-43"), "{text}");
        assert!(text.contains(&admin().key_id.to_string()), "{text}");
        assert!(text.contains("route=/v1/whoami"), "{text}");
        assert!(
            text.contains("status=200") && text.contains("status=401"),
            "{text}"
        );
        assert!(text.contains("latency_ms="), "{text}");
        for secret in [ADMIN_KEY, "sk_wrong_key_555", "Bearer", "authorization"] {
            assert!(
                !text.to_lowercase().contains(&secret.to_lowercase()),
                "{secret} in {text}"
            );
        }
    }

    #[tokio::test]
    async fn an_internal_error_is_logged_with_the_request_id_and_answered_generically() {
        let app = app(&kit(HttpConfig::default()));
        warm_up(&app).await;
        let capture = capture();
        let (status, h, body) = call(
            &app,
            req("GET", "/v1/boom")
                .header("x-request-id", "req-boom")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(h[X_REQUEST_ID], "req-boom");
        assert!(!body.to_string().contains("secret"), "{body}");
        let text = capture.out.text();
        let line = text
            .lines()
            .find(|l| l.contains("internal error"))
            .expect("logged");
        assert!(
            line.contains("req-boom") && line.contains("disk /var/lib/secret full"),
            "{line}"
        );
    }
}
