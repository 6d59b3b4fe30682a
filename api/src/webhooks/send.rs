//! One delivery attempt over HTTP: the message signed with the endpoint's secrets, POSTed to
//! its target with the vetted client (no redirects, no private addresses unless allowed,
//! 15 s), and what came back: status, latency, the answer's first bytes, or the error.
//!
//! The answer is read only up to [`RESPONSE_EXCERPT`] bytes: a receiver that streams a large
//! body costs us that much, never more.

use std::time::{Duration, Instant};

use super::signing::{MessageId, Secret, sign_headers};
use super::target::Target;

/// How much of an answer is kept for the delivery log.
pub const RESPONSE_EXCERPT: usize = 1024;

/// What one attempt gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub status: Option<u16>,
    /// The raw `Retry-After` value of the answer, if any.
    pub retry_after: Option<String>,
    pub latency: Duration,
    /// The answer's first bytes (lossy UTF-8).
    pub excerpt: Option<String>,
    /// Why no answer came (timeout, refused target, transport).
    pub error: Option<String>,
    pub timed_out: bool,
}

/// POSTs `body` (JSON) to `target`, signed with `secrets` (at least one) at `timestamp_secs`.
pub async fn send(
    client: &reqwest::Client,
    target: &Target,
    id: &MessageId,
    timestamp_secs: i64,
    body: &[u8],
    secrets: &[Secret],
) -> Sent {
    let started = Instant::now();
    let failed = |error: String, timed_out: bool| Sent {
        status: None,
        retry_after: None,
        latency: started.elapsed(),
        excerpt: None,
        error: Some(error),
        timed_out,
    };
    let headers = match sign_headers(id, timestamp_secs, body, secrets) {
        Ok(h) => h,
        Err(e) => return failed(format!("not signed: {e}"), false),
    };
    let mut req = client
        .post(target.url().clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_vec());
    for (name, value) in headers.pairs() {
        req = req.header(name, value);
    }
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return failed(error_chain(&e), e.is_timeout()),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut excerpt = Vec::new();
    let mut error = None;
    while excerpt.len() < RESPONSE_EXCERPT {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_EXCERPT - excerpt.len();
                excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(e) => {
                // The status came: the attempt is judged by it; the cut answer is noted.
                error = Some(format!("reading the answer: {}", error_chain(&e)));
                break;
            }
        }
    }
    Sent {
        status: Some(status),
        retry_after,
        latency: started.elapsed(),
        excerpt: Some(String::from_utf8_lossy(&excerpt).into_owned()),
        error,
        timed_out: false,
    }
}

/// An error with its causes (reqwest's own message hides why a connect failed: a refused
/// address shows only in the chain).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
