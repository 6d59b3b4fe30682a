//! Prometheus metrics: the `metrics` facade with `metrics-exporter-prometheus` (no HTTP listener
//! or push gateway: `/metrics` is one of our routes).
//!
//! The HTTP stack records, per request:
//! - `http_requests_total{method, route, status}` (counter),
//! - `http_request_duration_seconds{method, route}` (histogram, time to the response head).
//!
//! `route` is the route template (`/v1/queues/{id}`), `unmatched` for paths no route knows, so
//! the number of series is bounded by the routes, never by what clients send.
//!
//! Engine gauges: either through this handle (`metrics.gauge("calls_waiting", &[("queue", q)])
//! .set(n)`), or, after [`Metrics::install_global`] in the binary, with the `metrics` macros
//! (`metrics::gauge!("agents", "state" => "ready").set(n)`) from any crate.
//!
//! Histograms buffer samples until "upkeep" folds them into buckets. Nothing else bounds that
//! buffer, so the HTTP middleware runs upkeep at most every [`UPKEEP_EVERY`] and `/metrics`
//! before rendering.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ::metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SetRecorderError,
    SharedString, Unit,
};
use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
/// How often request handling folds buffered histogram samples into buckets.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Latency buckets, seconds: API calls are meant to be milliseconds; the top ones catch stalls.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const METADATA: Metadata<'static> = Metadata::new(
    "switchyard_api::http",
    ::metrics::Level::INFO,
    Some(module_path!()),
);

/// The registry. Cheap to clone; every clone is the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    started: Instant,
    last_upkeep_ms: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::with_buckets(&[])
    }

    /// With histogram buckets for metrics of the engine: `(metric name, upper bounds)`.
    /// Histograms without buckets are rendered as summaries.
    pub fn with_buckets(extra: &[(&str, &[f64])]) -> Metrics {
        let mut builder = PrometheusBuilder::new();
        for (name, bounds) in
            std::iter::once((HTTP_DURATION, &LATENCY_BUCKETS[..])).chain(extra.iter().copied())
        {
            if bounds.is_empty() {
                continue;
            }
            builder = builder
                .set_buckets_for_metric(Matcher::Full(name.into()), bounds)
                .expect("invariant: the only error is empty bounds, skipped above");
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics {
            inner: Arc::new(Inner {
                recorder,
                handle,
                started: Instant::now(),
                last_upkeep_ms: AtomicU64::new(0),
            }),
        };
        metrics.describe_counter(HTTP_REQUESTS, "HTTP requests answered");
        metrics.describe_histogram(HTTP_DURATION, "Time to the response head", Unit::Seconds);
        metrics
    }

    /// Makes this registry the process-wide recorder of the `metrics` macros. Once per process
    /// (the binary); tests keep their own registries.
    pub fn install_global(&self) -> Result<(), SetRecorderError<SharedRecorder>> {
        ::metrics::set_global_recorder(SharedRecorder(self.clone()))
    }

    /// A recorder handle for `metrics::with_local_recorder` or `set_global_recorder`.
    pub fn recorder(&self) -> SharedRecorder {
        SharedRecorder(self.clone())
    }

    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, String)]) -> Gauge {
        self.inner
            .recorder
            .register_gauge(&key(name, labels), &METADATA)
    }

    pub fn counter(&self, name: &'static str, labels: &[(&'static str, String)]) -> Counter {
        self.inner
            .recorder
            .register_counter(&key(name, labels), &METADATA)
    }

    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, String)]) -> Histogram {
        self.inner
            .recorder
            .register_histogram(&key(name, labels), &METADATA)
    }

    pub fn describe_gauge(&self, name: &'static str, help: &'static str) {
        self.inner
            .recorder
            .describe_gauge(KeyName::from(name), None, SharedString::from(help));
    }

    pub fn describe_counter(&self, name: &'static str, help: &'static str) {
        self.inner
            .recorder
            .describe_counter(KeyName::from(name), None, SharedString::from(help));
    }

    pub fn describe_histogram(&self, name: &'static str, help: &'static str, unit: Unit) {
        self.inner.recorder.describe_histogram(
            KeyName::from(name),
            Some(unit),
            SharedString::from(help),
        );
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.inner.handle.run_upkeep();
        self.inner.handle.render()
    }

    /// `GET /metrics`. Unauthenticated, like every Prometheus target: expose it only where the
    /// scraper can reach it (or wrap it in a route layer that checks a key).
    pub fn router(&self) -> Router {
        let metrics = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { metrics.exposition() }
            }),
        )
    }

    fn exposition(&self) -> Response {
        let mut resp = (StatusCode::OK, self.render()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        resp
    }

    /// One answered request (called by the middleware).
    pub(crate) fn record_http(
        &self,
        method: &Method,
        route: &str,
        status: StatusCode,
        latency: Duration,
    ) {
        let method = method_label(method);
        let route = SharedString::from(route.to_owned());
        let labels = [
            Label::new("method", method),
            Label::new("route", route.clone()),
            Label::new("status", SharedString::from(status.as_str().to_owned())),
        ];
        self.inner
            .recorder
            .register_counter(&Key::from_parts(HTTP_REQUESTS, labels.to_vec()), &METADATA)
            .increment(1);
        let labels = [Label::new("method", method), Label::new("route", route)];
        self.inner
            .recorder
            .register_histogram(&Key::from_parts(HTTP_DURATION, labels.to_vec()), &METADATA)
            .record(latency.as_secs_f64());
        self.maybe_upkeep();
    }

    fn maybe_upkeep(&self) {
        let now_ms = u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.inner.last_upkeep_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < UPKEEP_EVERY.as_millis() as u64 {
            return;
        }
        // One request does it; the others carry on.
        if self
            .inner
            .last_upkeep_ms
            .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.inner.handle.run_upkeep();
        }
    }
}

fn key(name: &'static str, labels: &[(&'static str, String)]) -> Key {
    Key::from_parts(
        name,
        labels
            .iter()
            .map(|(k, v)| Label::new(*k, v.clone()))
            .collect::<Vec<_>>(),
    )
}

/// Standard methods by name; anything else is one label value, so clients cannot mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// [`Metrics`] as a `metrics::Recorder`.
#[derive(Clone, Debug)]
pub struct SharedRecorder(Metrics);

impl Recorder for SharedRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0
            .inner
            .recorder
            .describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0.inner.recorder.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.0
            .inner
            .recorder
            .describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.0.inner.recorder.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.0.inner.recorder.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0.inner.recorder.register_histogram(key, metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[test]
    fn http_requests_are_counted_by_method_route_and_status() {
        let m = Metrics::new();
        m.record_http(
            &Method::GET,
            "/v1/queues/{id}",
            StatusCode::OK,
            Duration::from_millis(3),
        );
        m.record_http(
            &Method::GET,
            "/v1/queues/{id}",
            StatusCode::OK,
            Duration::from_millis(4),
        );
        m.record_http(
            &Method::POST,
            "/v1/queues",
            StatusCode::CREATED,
            Duration::from_millis(30),
        );
        let text = m.render();
        assert!(
            text.contains(
                r#"http_requests_total{method="GET",route="/v1/queues/{id}",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"http_requests_total{method="POST",route="/v1/queues",status="201"} 1"#
            )
        );
        assert!(
            text.contains("# HELP http_requests_total HTTP requests answered"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE http_request_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains(
            r#"http_request_duration_seconds_bucket{method="GET",route="/v1/queues/{id}",le="0.005"} 2"#
        ), "{text}");
        assert!(text.contains(
            r#"http_request_duration_seconds_count{method="POST",route="/v1/queues"} 1"#
        ));
    }

    #[test]
    fn odd_methods_share_one_label() {
        let m = Metrics::new();
        let odd = Method::from_bytes(b"BREW").unwrap();
        m.record_http(&odd, "unmatched", StatusCode::NOT_FOUND, Duration::ZERO);
        assert!(m.render().contains(r#"method="other""#));
    }

    #[test]
    fn engine_gauges_show_up_with_their_labels() {
        let m = Metrics::new();
        m.describe_gauge("switchyard_calls_waiting", "Callers waiting in queue");
        m.gauge("switchyard_calls_waiting", &[("queue", "sales".into())])
            .set(4.0);
        m.gauge("switchyard_esl_connected", &[]).set(1.0);
        let text = m.render();
        assert!(
            text.contains(r#"switchyard_calls_waiting{queue="sales"} 4"#),
            "{text}"
        );
        assert!(text.contains("switchyard_esl_connected 1"), "{text}");
        assert!(text.contains("# HELP switchyard_calls_waiting Callers waiting in queue"));
    }

    #[test]
    fn the_local_recorder_serves_the_metrics_macros() {
        let m = Metrics::new();
        ::metrics::with_local_recorder(&m.recorder(), || {
            ::metrics::gauge!("switchyard_agents", "state" => "ready").set(7.0);
        });
        assert!(m.render().contains(r#"switchyard_agents{state="ready"} 7"#));
    }

    #[test]
    fn extra_buckets_make_engine_histograms_real_histograms() {
        let m = Metrics::with_buckets(&[("switchyard_wait_seconds", &[1.0, 10.0, 60.0])]);
        m.histogram("switchyard_wait_seconds", &[]).record(5.0);
        let text = m.render();
        assert!(
            text.contains(r#"switchyard_wait_seconds_bucket{le="10"} 1"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn metrics_route_serves_the_text_format() {
        let m = Metrics::new();
        m.counter("switchyard_test_total", &[]).increment(3);
        let resp = m
            .router()
            .oneshot(
                axum::http::Request::get("/metrics")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        assert!(
            std::str::from_utf8(&body)
                .unwrap()
                .contains("switchyard_test_total 3")
        );
    }
}
