//! `/healthz` (the process answers: always 200) and `/readyz` (every dependency answers: 200,
//! else 503 naming the ones that did not).
//!
//! ```text
//! let probes = Probes::new()
//!     .check("database", move || { let s = store.clone(); async move { s.ping().await.map_err(|e| e.to_string()) } })
//!     .check("switch", move || { let e = esl.clone(); async move { if e.connected() { Ok(()) } else { Err("not connected".into()) } } });
//! app.merge(probes.router())
//! ```
//!
//! Checks run concurrently, each bounded by a timeout (2 s by default). The body says `ok`,
//! `failed` or `timeout` per check; the failure detail is logged, not answered (load balancers
//! and whoever else can reach `/readyz` have no business with connection strings).
//!
//! A dependency can also describe a degraded state in words made for the answer
//! ([`Probes::report`]: e.g. "database unavailable since ..., journal pending 120 entries"):
//! while any report says something, `/readyz` is 503 with `"status": "degraded"` and the
//! reports under `degraded`, so an operator sees why without reading logs.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::BoxFuture;

type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;
type ReportFn = Arc<dyn Fn() -> Option<Value> + Send + Sync>;

/// The readiness checks. Cheap to clone.
#[derive(Clone)]
pub struct Probes {
    checks: Vec<(&'static str, CheckFn)>,
    reports: Vec<(&'static str, ReportFn)>,
    timeout: Duration,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.checks.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Probes")
            .field("checks", &names)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for Probes {
    fn default() -> Self {
        Probes::new()
    }
}

/// The result of one readiness check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    Failed,
    Timeout,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Failed => "failed",
            CheckStatus::Timeout => "timeout",
        }
    }
}

impl Probes {
    pub fn new() -> Probes {
        Probes {
            checks: Vec::new(),
            reports: Vec::new(),
            timeout: Duration::from_secs(2),
        }
    }

    /// Adds a degradation report: `Some(json)` (an object with at least a `message`, safe to
    /// show anyone who can reach `/readyz`) makes `/readyz` answer 503 `degraded` with it
    /// under `degraded.<name>`. Called on every `/readyz`; must be cheap and not block.
    pub fn report<F>(mut self, name: &'static str, f: F) -> Probes
    where
        F: Fn() -> Option<Value> + Send + Sync + 'static,
    {
        self.reports.push((name, Arc::new(f)));
        self
    }

    /// Adds a dependency: `Err(detail)` makes `/readyz` answer 503 (the detail is logged).
    pub fn check<F, Fut>(mut self, name: &'static str, f: F) -> Probes
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push((name, Arc::new(move || Box::pin(f()))));
        self
    }

    /// Longest a check may take before it counts as failed.
    pub fn timeout(mut self, timeout: Duration) -> Probes {
        self.timeout = timeout;
        self
    }

    /// Runs every check; `true` when all passed.
    pub async fn readiness(&self) -> (bool, Vec<(&'static str, CheckStatus)>) {
        let runs = self.checks.iter().map(|(name, f)| {
            let fut = f();
            let timeout = self.timeout;
            async move {
                let status = match tokio::time::timeout(timeout, fut).await {
                    Ok(Ok(())) => CheckStatus::Ok,
                    Ok(Err(detail)) => {
                        tracing::warn!(check = name, detail = %detail, "readiness check failed");
                        CheckStatus::Failed
                    }
                    Err(_) => {
                        tracing::warn!(check = name, ?timeout, "readiness check timed out");
                        CheckStatus::Timeout
                    }
                };
                (*name, status)
            }
        });
        let results = futures_util::future::join_all(runs).await;
        (results.iter().all(|(_, s)| *s == CheckStatus::Ok), results)
    }

    /// `GET /healthz` and `GET /readyz`.
    pub fn router(self) -> Router {
        let probes = Arc::new(self);
        Router::new()
            .route(
                "/healthz",
                get(|| async { axum::Json(json!({"status": "ok"})) }),
            )
            .route(
                "/readyz",
                get(move || {
                    let probes = probes.clone();
                    async move { probes.ready_response().await }
                }),
            )
    }

    async fn ready_response(&self) -> Response {
        let degraded: Map<String, Value> = self
            .reports
            .iter()
            .filter_map(|(name, f)| f().map(|v| ((*name).to_owned(), v)))
            .collect();
        if !degraded.is_empty() {
            let message = degraded
                .values()
                .filter_map(|v| v.get("message").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("; ");
            let body = json!({
                "status": "degraded",
                "degraded": degraded,
                "error": { "code": "unavailable", "message": format!("degraded: {message}") },
            });
            return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
        }
        let (ready, results) = self.readiness().await;
        let checks: Map<String, Value> = results
            .iter()
            .map(|(n, s)| ((*n).to_owned(), Value::from(s.as_str())))
            .collect();
        let failed: Vec<&str> = results
            .iter()
            .filter(|(_, s)| *s != CheckStatus::Ok)
            .map(|(n, _)| *n)
            .collect();
        if ready {
            (
                StatusCode::OK,
                axum::Json(json!({"status": "ready", "checks": checks})),
            )
                .into_response()
        } else {
            let body = json!({
                "status": "unavailable",
                "checks": checks,
                "error": {
                    "code": "unavailable",
                    "message": format!("not ready: {}", failed.join(", ")),
                },
            });
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tower::ServiceExt;

    async fn get(router: Router, path: &str) -> (StatusCode, Value) {
        let resp = router
            .oneshot(axum::http::Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn healthz_is_200_whatever_the_dependencies_say() {
        let probes = Probes::new().check("database", || async { Err("down".to_owned()) });
        let (status, body) = get(probes.router(), "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"status": "ok"}));
    }

    #[tokio::test]
    async fn readyz_is_200_when_every_check_passes() {
        let probes = Probes::new()
            .check("database", || async { Ok(()) })
            .check("switch", || async { Ok(()) });
        let (status, body) = get(probes.router(), "/readyz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"status": "ready", "checks": {"database": "ok", "switch": "ok"}})
        );
    }

    #[tokio::test]
    async fn readyz_is_503_naming_the_failed_dependency_without_its_detail() {
        let up = Arc::new(AtomicBool::new(false));
        let flag = up.clone();
        let probes =
            Probes::new()
                .check("database", || async { Ok(()) })
                .check("switch", move || {
                    let up = flag.load(Ordering::SeqCst);
                    async move {
                        if up {
                            Ok(())
                        } else {
                            Err("ESL 10.1.2.3:8021 refused".into())
                        }
                    }
                });
        let router = probes.router();
        let (status, body) = get(router.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body["checks"],
            json!({"database": "ok", "switch": "failed"})
        );
        assert_eq!(body["error"]["code"], "unavailable");
        assert_eq!(body["error"]["message"], "not ready: switch");
        assert!(!body.to_string().contains("10.1.2.3"));

        up.store(true, Ordering::SeqCst);
        assert_eq!(get(router, "/readyz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn a_hanging_check_times_out() {
        let probes = Probes::new()
            .timeout(Duration::from_millis(20))
            .check("database", std::future::pending::<Result<(), String>>);
        let (status, body) = get(probes.router(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["database"], "timeout");
    }
}
