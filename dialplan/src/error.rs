//! The crate's one error type.

/// What the dialplan refuses. Validation names the offending field by its path in the
/// submitted document (`weekly.monday[1].end`, `steps[3].menu`), so the API can answer with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialplanError {
    /// A schedule, menu, flow or number that cannot be used as given.
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

impl DialplanError {
    pub fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        DialplanError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
