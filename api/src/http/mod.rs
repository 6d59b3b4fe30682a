//! The HTTP kit every route plugs into: JSON errors and extractors, bearer-key authentication
//! with a small cache, the middleware stack (request id, access log, metrics, security headers,
//! CORS, body limit, timeout, per-key rate limit), the live feed (SSE) and the probes.
//!
//! How the binary puts it together:
//!
//! ```text
//! let metrics = Metrics::new();
//! let kit = HttpKit::new(config, Arc::new(StoreKeys::new(store)), metrics.clone());
//! let hub = LiveHub::new(LiveConfig::default());      // runtime: hub.publish(LiveMessage { .. })
//! let app = Router::new()
//!     .merge(resource_routes.with_state(app_state))  // handlers take Auth, ApiJson, ApiPath...
//!     .merge(live::router(hub.clone(), snapshot_fn, ids))  // GET /v1/live
//!     .merge(metrics.router())                        // GET /metrics
//!     .merge(probes.router());                        // GET /healthz, /readyz
//! let app = http::layers(app, &kit);                  // after every route: layers wrap routes
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
//!     .with_graceful_shutdown(async move { shutdown.await; hub.close() })
//!     .await?;
//! ```
//!
//! A request goes through, outermost first: [`middleware::observe`] (request id, tracing span,
//! access log, metrics), security headers, JSON error bodies for whatever answered an error in
//! another shape, CORS (when configured), the request timeout, the body limit, then
//! [`middleware::authenticate`] (resolves the bearer key through the cache and charges the
//! rate-limit bucket of the key, or of the client address when there is no valid key, in the
//! request's class: API or live), then the handler. Handlers never see a request that was over its rate.

pub mod auth;
pub mod error;
pub mod json;
pub mod live;
pub mod metrics;
pub mod middleware;
pub mod probes;
pub mod ratelimit;
pub mod sight;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use auth::{
    Auth, AuthCache, KeyVerdict, KeyVerifier, StaticKeys, acting_agent, require_acts_for,
    require_platform_admin, require_role, require_tenant,
};
pub use error::ApiError;
pub use json::{ApiJson, ApiPath, ApiQuery};
pub use live::{LiveConfig, LiveHub, LiveMessage, SnapshotFn};
pub use metrics::Metrics;
pub use middleware::RequestId;
pub use probes::Probes;
pub use ratelimit::{RateClass, RateLimiter};

/// A boxed future, for the object-safe callbacks the lead plugs in ([`KeyVerifier`], probes).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Settings of the HTTP layer. `Default` is what a single-machine install wants.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Origins allowed to call the API from a browser. Empty: no CORS headers at all (same-origin
    /// portals and server-side callers need none). `"*"` allows any origin, only when listed
    /// explicitly; credentials (cookies) are never allowed, keys travel in `Authorization`.
    pub cors_origins: Vec<String>,
    /// Largest request body an extractor reads; more answers 413. A route that takes uploads
    /// raises it for itself with `.layer(DefaultBodyLimit::max(..))` on that route.
    pub max_body_bytes: usize,
    /// Time to produce the response head; past it the client gets a JSON 503 `timeout`. Streams
    /// (the live feed) are not cut: their head is sent at once.
    pub request_timeout: Duration,
    /// Route templates (`MatchedPath`) that get `long_request_timeout` instead: uploads.
    pub long_request_paths: Vec<String>,
    pub long_request_timeout: Duration,
    /// Sustained requests per second per API key (or per client address without a valid key).
    /// 0 turns rate limiting off.
    pub rate_per_sec: u32,
    /// Requests a key may make at once above the sustained rate.
    pub burst: u32,
    /// Route templates (`MatchedPath`) of the live class: the feed and what wallboards poll.
    /// They are charged to a bucket of their own per key, at `live_rate_per_sec` and
    /// `live_burst`, so screens sharing a display key neither hit the API limit nor use it up.
    pub live_paths: Vec<String>,
    /// Sustained live-class requests per second per key (or address). 0: no limit on them.
    pub live_rate_per_sec: u32,
    /// Live-class requests a key may make at once: every screen on one display key
    /// (re)connecting together, as after a restart of the server or of the screens.
    pub live_burst: u32,
    /// Cap on rate-limit buckets kept in memory; idle buckets go first (see [`RateLimiter`]).
    pub max_rate_buckets: usize,
    /// Route templates (`MatchedPath`) that are never rate limited: the load balancer's probes.
    pub rate_limit_exempt: Vec<String>,
    /// Use the last address of `X-Forwarded-For` as the client address. Only behind a proxy that
    /// sets it, otherwise anyone picks their own rate-limit bucket.
    pub trust_forwarded_for: bool,
    /// How long a key's verification (valid or not) is reused before asking the store again.
    /// A revoked key keeps working at most this long unless [`AuthCache::invalidate_all`] runs.
    pub auth_cache_ttl: Duration,
    /// Cap on cached verifications.
    pub auth_cache_capacity: usize,
    /// Mark the session cookie `Secure` whatever the request came over (behind a proxy that
    /// terminates TLS without saying so). Without it the cookie is `Secure` when the request
    /// came over https: `X-Forwarded-Proto: https` from a trusted proxy
    /// (`trust_forwarded_for`).
    pub secure_cookies: bool,
    /// Path prefixes that get no `Content-Security-Policy` from the stack (Swagger UI needs
    /// scripts and styles); a route can also set its own CSP header, which is kept.
    pub csp_exempt_prefixes: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            cors_origins: Vec::new(),
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            long_request_paths: vec![
                "/v1/campaigns/{id}/contacts".to_owned(),
                "/v1/recordings/upload/{file}".to_owned(),
            ],
            long_request_timeout: Duration::from_secs(3600),
            rate_per_sec: 50,
            burst: 100,
            live_paths: vec!["/v1/live".to_owned(), "/v1/queues/{id}/stats".to_owned()],
            live_rate_per_sec: 100,
            live_burst: 1000,
            max_rate_buckets: 100_000,
            rate_limit_exempt: vec!["/healthz".to_owned(), "/readyz".to_owned()],
            trust_forwarded_for: false,
            auth_cache_ttl: Duration::from_secs(5),
            auth_cache_capacity: 10_000,
            csp_exempt_prefixes: vec!["/docs".to_owned()],
            secure_cookies: false,
        }
    }
}

/// What the middleware shares: configuration, the key cache, the rate limiter, the metrics.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpKit {
    inner: Arc<KitInner>,
}

#[derive(Debug)]
struct KitInner {
    config: HttpConfig,
    auth: AuthCache,
    /// Browser sessions (the `sy_session` cookie), verified and cached as keys are.
    sessions: AuthCache,
    limiter: RateLimiter,
    live_limiter: RateLimiter,
    metrics: Metrics,
}

impl HttpKit {
    /// A kit whose session cookies are never valid (no session store): bearer keys only.
    pub fn new(config: HttpConfig, verifier: Arc<dyn KeyVerifier>, metrics: Metrics) -> HttpKit {
        HttpKit::with_sessions(config, verifier, Arc::new(NoSessions), metrics)
    }

    /// A kit that also accepts browser sessions, verified by `sessions` (which answers for
    /// session tokens as a [`KeyVerifier`] does for keys).
    pub fn with_sessions(
        config: HttpConfig,
        verifier: Arc<dyn KeyVerifier>,
        sessions: Arc<dyn KeyVerifier>,
        metrics: Metrics,
    ) -> HttpKit {
        let auth = AuthCache::new(verifier, config.auth_cache_capacity, config.auth_cache_ttl);
        let sessions = AuthCache::new(sessions, config.auth_cache_capacity, config.auth_cache_ttl);
        let limiter = RateLimiter::new(config.rate_per_sec, config.burst, config.max_rate_buckets);
        let live_limiter = RateLimiter::new(
            config.live_rate_per_sec,
            config.live_burst,
            config.max_rate_buckets,
        );
        HttpKit {
            inner: Arc::new(KitInner {
                config,
                auth,
                sessions,
                limiter,
                live_limiter,
                metrics,
            }),
        }
    }

    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    /// The key cache: call [`AuthCache::invalidate_all`] after revoking or changing a key.
    pub fn auth(&self) -> &AuthCache {
        &self.inner.auth
    }

    /// The session cache: [`AuthCache::forget`] a session that ended.
    pub fn sessions(&self) -> &AuthCache {
        &self.inner.sessions
    }

    /// Drops the cached verifications, of keys and of sessions, whose principal `revoked`
    /// says: call it after revoking a key or a display token (a session's principal carries
    /// the id of the credential it was made from, so its sessions go too).
    pub fn invalidate(&self, revoked: impl Fn(&crate::model::Principal) -> bool) {
        self.inner.auth.invalidate(&revoked);
        self.inner.sessions.invalidate(&revoked);
    }

    /// The limiter of the API class.
    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// The limiter of `class`.
    pub fn limiter_for(&self, class: RateClass) -> &RateLimiter {
        match class {
            RateClass::Api => &self.inner.limiter,
            RateClass::Live => &self.inner.live_limiter,
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Same as [`layers`].
    pub fn layers(&self, router: Router) -> Router {
        layers(router, self)
    }
}

/// The session verifier of a kit without a session store: every token is unknown.
struct NoSessions;

impl KeyVerifier for NoSessions {
    fn verify<'a>(&'a self, _token: &'a str) -> BoxFuture<'a, Result<KeyVerdict, ApiError>> {
        Box::pin(async { Ok(KeyVerdict::Invalid) })
    }
}

/// Wraps every route of `router` (call it after the last `route`/`merge`/`nest`/`fallback`:
/// axum applies layers to the routes that exist) in the stack described in the module docs.
pub fn layers(router: Router, kit: &HttpKit) -> Router {
    use axum::middleware::{from_fn, from_fn_with_state};
    let config = kit.config();
    // `Router::layer` wraps what is there, so the first call is the innermost layer.
    let router = router
        .layer(from_fn_with_state(kit.clone(), middleware::authenticate))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(from_fn_with_state(kit.clone(), middleware::timeout));
    let router = match cors_layer(&config.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(from_fn(middleware::json_errors))
        .layer(from_fn_with_state(
            kit.clone(),
            middleware::security_headers,
        ))
        .layer(from_fn_with_state(kit.clone(), middleware::observe))
}

/// `None` when no origin is configured (no CORS headers at all). Origins that are not valid
/// header values are skipped with a warning rather than failing startup.
pub fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| match HeaderValue::from_str(o.trim_end_matches('/')) {
                Ok(v) => Some(v),
                Err(_) => {
                    tracing::warn!(origin = %o, "ignoring a CORS origin that is not a header value");
                    None
                }
            })
            .collect();
        AllowOrigin::list(list)
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("last-event-id"),
                middleware::X_REQUEST_ID,
            ])
            .expose_headers([
                middleware::X_REQUEST_ID,
                header::RETRY_AFTER,
                middleware::RATELIMIT_LIMIT,
                middleware::RATELIMIT_REMAINING,
                middleware::RATELIMIT_RESET,
            ])
            .max_age(Duration::from_secs(600)),
    )
}
