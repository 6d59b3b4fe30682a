//! The one error type of switchyard-esl.

use std::time::Duration;

/// Everything that can go wrong while speaking the Event Socket.
///
/// Decoding errors carry enough context to log without the offending bytes (which may hold
/// credentials or personal data): the limit that was hit, or a short excerpt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EslError {
    /// A header block grew past the configured cap without its terminating empty line.
    #[error("header block exceeds {limit} bytes without an empty line")]
    HeaderBlockTooLarge { limit: usize },

    /// `Content-Length` was not a decimal number within `0..=max`.
    #[error("Content-Length {value:?} is not a number in 0..={max}")]
    BadContentLength { value: String, max: usize },

    /// A header line without a `:` separator, or with an empty name.
    #[error("malformed header line {excerpt:?}")]
    MalformedHeader { excerpt: String },

    /// An event body that does not parse in its declared format.
    #[error("malformed {format} event: {reason}")]
    MalformedEvent {
        format: &'static str,
        reason: String,
    },

    /// A command that cannot be put on the wire as asked (a newline inside a header value, an
    /// empty event list...). Nothing was sent.
    #[error("invalid command: {reason}")]
    InvalidCommand { reason: String },

    /// The switch refused our password (`-ERR invalid`). Retrying with the same credentials
    /// would only repeat the refusal, so clients stop instead of reconnecting.
    #[error("authentication rejected by the switch: {reply}")]
    AuthFailed { reply: String },

    /// The switch's ACL refused the connection (`text/rude-rejection`).
    #[error("connection refused by the switch's ACL: {message}")]
    AccessDenied { message: String },

    /// The peer did not follow the protocol (a reply where none was expected, a missing
    /// `auth/request`...).
    #[error("protocol violation: {reason}")]
    Protocol { reason: String },

    /// A reply, job or event did not arrive in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: &'static str, after: Duration },

    /// The connection is gone (peer closed, reconnecting, or shut down) before the answer came.
    #[error("connection closed")]
    ConnectionClosed,

    /// The client or server was shut down.
    #[error("shut down")]
    Shutdown,

    /// The switch answered a command with `-ERR ...` where the client needed `+OK` (a bgapi
    /// that was not accepted, a refused subscription, an `api` answered by a command reply).
    #[error("the switch refused `{command}`: {reply}")]
    Rejected { command: String, reply: String },

    /// A bounded queue of pending requests is full.
    #[error("too many requests in flight (limit {limit})")]
    Overloaded { limit: usize },

    /// Socket-level failure.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl EslError {
    /// Whether a client should reconnect after this error (as opposed to giving up).
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            EslError::AuthFailed { .. } | EslError::InvalidCommand { .. } | EslError::Shutdown
        )
    }
}

/// A short printable excerpt of raw bytes, for error messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 80;
    let cut = &bytes[..bytes.len().min(MAX)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if bytes.len() > MAX {
        s.push_str("...");
    }
    s
}
