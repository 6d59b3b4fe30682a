//! The one error type of the storage layer, shaped so the HTTP layer can map it to a status
//! without looking at database text: `NotFound` 404, `Conflict` and `InUse` 409, `Invalid`
//! 400/422, `Unavailable` and `JournalFull` 503 with `Retry-After`, the rest 500 (their text
//! is for logs only).

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

    /// History records (`what`: `call`, `cdr`, `trace`, `attempt`, `recording`) whose id is already stored
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

    /// The database cannot be reached or did not answer in time: no connection within the
    /// pool's acquire timeout (refused, down), a connection that broke, a statement cancelled
    /// by `statement_timeout`, a server shutting down, SQLite busy or out of disk. Nothing is
    /// known to have been written; the same call may succeed later (HTTP 503, `Retry-After`).
    /// `reason` is for logs and `/readyz`; it names no table or value.
    #[error("database unavailable: {reason}")]
    Unavailable { reason: String },

    /// The database is unavailable and the on-disk journal that holds writes meanwhile is at
    /// its byte bound ([`crate::journal`]): this write was neither stored nor journaled, and
    /// retrying it will not help until the database returns. Callers count it as dropped.
    #[error("database unavailable and the journal is full ({bound_bytes} bytes)")]
    JournalFull { bound_bytes: u64 },

    /// The journal's file system failed (its directory cannot be created, a write or an
    /// fsync failed): a write that needed the journal was not kept. Internal.
    #[error("journal: {0}")]
    Journal(#[source] crate::journal::JournalError),

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
    /// row is missing), a database that cannot answer `Unavailable`, anything else `Database`.
    pub(crate) fn from_sqlx(error: sqlx::Error, what: &'static str) -> StoreError {
        if let Some(reason) = unavailable_reason(&error) {
            return StoreError::Unavailable { reason };
        }
        let kind = error.as_database_error().map(|e| e.kind());
        match kind {
            Some(ErrorKind::UniqueViolation) => StoreError::Conflict { what },
            Some(ErrorKind::ForeignKeyViolation) => StoreError::NotFound,
            _ => StoreError::Database(error),
        }
    }

    /// The database could not be reached (or did not answer in time): retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// Why `error` means "the database is unavailable" (rather than "the statement is wrong"), or
/// None. The reason is short and fixed, never the server's text (which may quote values).
fn unavailable_reason(error: &sqlx::Error) -> Option<String> {
    use sqlx::Error as E;
    let reason = match error {
        E::PoolTimedOut => "no connection within the pool's acquire timeout".to_owned(),
        E::PoolClosed => "the connection pool is closed".to_owned(),
        E::Io(e) => format!("connection failed ({:?})", e.kind()),
        E::Tls(_) => "TLS to the database failed".to_owned(),
        E::Protocol(_) => "the connection broke (protocol error)".to_owned(),
        E::WorkerCrashed => "the database worker stopped".to_owned(),
        E::Database(db) => {
            let code = db.code()?;
            match code.as_ref() {
                // PostgreSQL: class 08 connection exceptions; 57P01-57P03 the server is
                // shutting down, crashed or starting; 57014 statement_timeout (or a cancel);
                // 53300 too many connections; 55P03 lock_timeout.
                c if c.len() == 5 && c.starts_with("08") => {
                    format!("connection exception (SQLSTATE {c})")
                }
                "57P01" | "57P02" | "57P03" => format!("server shutting down ({code})"),
                "57014" => "statement timed out (statement_timeout)".to_owned(),
                "53300" => "too many connections".to_owned(),
                "55P03" => "lock wait timed out".to_owned(),
                // SQLite primary result codes (the low byte of extended ones): BUSY (the busy
                // timeout ran out), LOCKED, IOERR, FULL, CANTOPEN.
                c => match c.parse::<i64>().ok().map(|n| n & 0xff) {
                    Some(5) => "database busy (busy_timeout ran out)".to_owned(),
                    Some(6) => "database table locked".to_owned(),
                    Some(10) => "disk I/O error".to_owned(),
                    Some(13) => "database or disk is full".to_owned(),
                    Some(14) => "cannot open the database file".to_owned(),
                    _ => return None,
                },
            }
        }
        _ => return None,
    };
    Some(reason)
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
