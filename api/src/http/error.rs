//! Errors as the API answers them: `{"error": {"code", "message", "field"?}}` with the status
//! that fits. `code` is stable and machine-readable; `message` is for people; `field` names the
//! offending input (a JSON path such as `members[0].level`, a path or query parameter).
//!
//! Internals never leak: [`ApiError::internal`] logs its detail with the request id and answers
//! a generic 500.

use std::fmt;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer. Build it with the constructors; handlers return `Result<_, ApiError>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Sent as `Retry-After` (whole seconds, rounded up, at least 1) with 429 and 503.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// Names the input at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }

    /// Sends `Retry-After` (429, 503).
    pub fn with_retry_after(mut self, after: Duration) -> ApiError {
        self.retry_after = Some(after);
        self
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 `not_found`; also what another tenant's object answers.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422 `invalid_field`: well-formed input that breaks a rule.
    pub fn unprocessable(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).with_field(field)
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large() -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than this endpoint accepts",
        )
    }

    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 401 `unauthorized`, with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`: the key is valid but may not do this.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 429 `rate_limited` with `Retry-After`.
    pub fn too_many_requests(retry_after: Duration) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry after the time in Retry-After",
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// 503 `unavailable`: a dependency is down or the server is at a limit.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500 `internal`. The detail is logged at error level with the request id (when built
    /// while serving a request); the client only learns that something failed.
    pub fn internal(detail: impl fmt::Display) -> ApiError {
        let request_id = super::middleware::current_request_id();
        tracing::error!(
            request_id = request_id.as_ref().map(|id| id.as_str()),
            detail = %detail,
            "internal error"
        );
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// The generic answer for a status that some layer produced without a JSON body (axum's
    /// 404 and 405, a 413 from a body extractor...). Nothing of the original body is kept.
    pub fn from_status(status: StatusCode) -> ApiError {
        let (code, message) = match status {
            StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
            StatusCode::UNAUTHORIZED => ("unauthorized", "a valid API key is required"),
            StatusCode::FORBIDDEN => ("forbidden", "this key may not do that"),
            StatusCode::NOT_FOUND => ("not_found", "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this resource does not support that method",
            ),
            StatusCode::NOT_ACCEPTABLE => ("not_acceptable", "no acceptable representation"),
            StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
            StatusCode::CONFLICT => ("conflict", "the request conflicts with the current state"),
            StatusCode::PAYLOAD_TOO_LARGE => {
                return ApiError::payload_too_large();
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "unsupported content type")
            }
            StatusCode::UNPROCESSABLE_ENTITY => ("invalid_field", "the request is invalid"),
            StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests"),
            StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "the service is unavailable"),
            s if s.is_server_error() => ("internal", "internal error"),
            _ => ("error", "the request failed"),
        };
        ApiError::new(status, code, message)
    }

    /// The JSON body, `{"error": {...}}`.
    pub fn body(&self) -> serde_json::Value {
        let mut inner = json!({ "code": self.code, "message": self.message });
        if let Some(field) = &self.field {
            inner["field"] = json!(field);
        }
        json!({ "error": inner })
    }
}

/// Whole seconds, rounded up, never 0 (`Retry-After: 0` invites an immediate retry storm).
pub(crate) fn retry_after_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut resp = (self.status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(d) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs(d)));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(e: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let resp = e.into_response();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn error_body_has_code_and_message_and_no_field_unless_set() {
        let (status, headers, body) = parts(ApiError::not_found("queue not found")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            body,
            json!({"error": {"code": "not_found", "message": "queue not found"}})
        );
    }

    #[tokio::test]
    async fn unprocessable_names_the_field() {
        let (status, _, body) =
            parts(ApiError::unprocessable("members[0].level", "must be 1..=9")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["error"]["code"], "invalid_field");
        assert_eq!(body["error"]["field"], "members[0].level");
        assert_eq!(body["error"]["message"], "must be 1..=9");
    }

    #[tokio::test]
    async fn unauthorized_carries_www_authenticate_bearer() {
        let (status, headers, body) = parts(ApiError::unauthorized("missing API key")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body["error"]["code"], "unauthorized");
    }

    #[tokio::test]
    async fn too_many_requests_rounds_retry_after_up_to_whole_seconds() {
        let (status, headers, body) =
            parts(ApiError::too_many_requests(Duration::from_millis(1200))).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "2");
        assert_eq!(body["error"]["code"], "rate_limited");
        let (_, headers, _) = parts(ApiError::too_many_requests(Duration::from_millis(3))).await;
        assert_eq!(headers[header::RETRY_AFTER], "1");
    }

    #[tokio::test]
    async fn internal_hides_the_detail() {
        let (status, _, body) = parts(ApiError::internal("pool timed out on 10.0.0.7:5432")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            json!({"error": {"code": "internal", "message": "internal error"}})
        );
    }

    #[tokio::test]
    async fn constructors_map_to_their_statuses() {
        for (e, status, code) in [
            (
                ApiError::bad_request("x"),
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (ApiError::conflict("x"), StatusCode::CONFLICT, "conflict"),
            (
                ApiError::payload_too_large(),
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
            ),
            (ApiError::forbidden("x"), StatusCode::FORBIDDEN, "forbidden"),
            (
                ApiError::unavailable("x"),
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
            ),
            (
                ApiError::unsupported_media_type("x"),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (
                ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED),
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
            ),
        ] {
            let (got, _, body) = parts(e).await;
            assert_eq!(got, status);
            assert_eq!(body["error"]["code"], code);
        }
    }
}
