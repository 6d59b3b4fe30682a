//! The one error type of the storage layer, shaped so the HTTP layer can map it to a status
//! without looking at database text: `NotFound` 404, `Conflict` and `InUse` 409, `Invalid`
//! 400/422, the rest 500 (their text is for logs only).

use sqlx::error::ErrorKind;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An object the change refers to does not exist (or belongs to another tenant): a
    /// foreign-key target such as the tenant of a new queue. Lookups that may miss return
    /// `Option`/`bool` instead.
    #[error("not found")]
    NotFound,

    /// A unique constraint said no: `what` names it ("queue name", "tenant name", ...).
    /// Nothing was written.
    #[error("{what} already exists")]
    Conflict { what: &'static str },

    /// The object is still named by others, so it was not removed (nothing was written):
    /// `campaigns` (ascending ids) dial for the queue.
    #[error("{what} is in use by campaigns {campaigns:?}")]
    InUse {
        what: &'static str,
        campaigns: Vec<i64>,
    },

    /// History records (`what`: `call`, `cdr`, `trace`, `attempt`) whose id is already stored
    /// with other content: another record under the same id (a switch that reuses channel
    /// uuids), never the same record written again (that is a no-op). `ids` names them; the
    /// stored rows are kept as they were and nothing of the batch was written: write the rest
    /// again without them.
    #[error("{what} already stored under the same id with other content: {}", ids.join(", "))]
    Duplicate {
        what: &'static str,
        ids: Vec<String>,
    },

    /// An argument the store refuses before touching the database (an empty name, a bad
    /// cursor, a platform-admin key with a tenant...). Nothing was written.
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },

    /// The database failed or refused the statement for a reason callers cannot act on.
    /// Internal: its text may name tables and values, so it is logged, never shown.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),

    /// Applying the embedded migrations failed (or the database has migrations this build
    /// does not know, or edited ones).
    #[error("migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),

    /// Something that should not happen did: a stored row that does not decode (a bad uuid, a
    /// JSON column that is not JSON, an unknown role), or no randomness from the OS. Internal.
    #[error("internal storage error: {0}")]
    Internal(String),
}

impl StoreError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> StoreError {
        StoreError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// Maps a failed statement, naming the unique constraint it may have hit. Unique
    /// violations become `Conflict { what }`, foreign-key violations `NotFound` (the referenced
    /// row is missing), anything else `Database`.
    pub(crate) fn from_sqlx(error: sqlx::Error, what: &'static str) -> StoreError {
        let kind = error.as_database_error().map(|e| e.kind());
        match kind {
            Some(ErrorKind::UniqueViolation) => StoreError::Conflict { what },
            Some(ErrorKind::ForeignKeyViolation) => StoreError::NotFound,
            _ => StoreError::Database(error),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        StoreError::from_sqlx(error, "object")
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> StoreError {
        StoreError::Migrate(error)
    }
}
