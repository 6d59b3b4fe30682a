//! Storage: configuration, credentials, history and the audit log, on SQLite (embedded
//! default) or PostgreSQL (production), behind one [`Store`].
//!
//! ```text
//! let store = Store::connect("sqlite://switchyard.db?mode=rwc").await?;   // or postgres://...
//! store.migrate().await?;                       // embedded migrations, idempotent
//! let queues = store.all_queues().await?;       // the engine loads configuration at start
//! // HTTP handlers: store.authenticate(key, now_ms), store.create_queue(tenant, .., &audit) ...
//! // the runtime, in batches: store.insert_calls(&rows), insert_cdrs, insert_traces,
//! // insert_recordings, ...
//! ```
//!
//! How it is built:
//! - Runtime queries only (no compile-time checks, no `sqlx::Any`). One SQL string serves both
//!   backends wherever the types allow: `$N` placeholders, uuids as TEXT, times as BIGINT unix
//!   milliseconds, JSON as TEXT, `RETURNING` and `ON CONFLICT` (both speak them). Only the DDL
//!   differs (`migrations/sqlite` vs `migrations/postgres`).
//! - Statements go through a few private helpers ([`Store::fetch_all`], [`Store::change`],
//!   [`Store::batch`]...) that take the SQL and an argument list ([`Arg`]); the helpers expand
//!   once per backend (`with_pool!`), so the rest of the store is backend-agnostic.
//! - Every configuration change and its audit row commit in one transaction: the change runs
//!   with `RETURNING`; no row back (not found, not the tenant's) rolls back and writes nothing.
//! - Tenant scoping is in the SQL: tenant-owned statements match `tenant_id` in their WHERE
//!   clause, so another tenant's object is simply absent.
//! - No call waits long for a database that is away: a connection is acquired within
//!   [`PG_ACQUIRE_TIMEOUT`] (PostgreSQL) and a statement runs at most [`PG_STATEMENT_TIMEOUT`]
//!   (`statement_timeout`, set per connection); SQLite waits [`SQLITE_BUSY_TIMEOUT`] for a
//!   lock. What fails that way is [`StoreError::Unavailable`] (HTTP 503).
//! - With a journal ([`Store::with_journal`]), the writes that must survive an outage
//!   (history records, presence, stand-alone audit entries, queue pause) go through the
//!   [`spool`]: to the database when it answers, to the on-disk journal when it does not.
//! - SQLite has exactly one writer connection (a pool of one; SQLite allows one writer at a
//!   time anyway, and queueing in the pool beats `SQLITE_BUSY` retries). For a file database
//!   reads use a second pool of up to [`SQLITE_READERS`] connections, which WAL lets run
//!   beside the writer; an in-memory database has only the one connection.

mod error;
mod keys;
mod rows;
pub mod spool;
mod tenants;
pub mod web;

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{SqlSafeStr, SqlStr};
use uuid::Uuid;

pub use error::StoreError;
pub use keys::KeyCheck;
pub use rows::{
    AgentRow, ApiKey, AuditEntry, AuditFilter, AuditRow, CallFilter, CallRow, CdrRow, IntervalRow,
    IntervalScope, MemberRow, QueueRow, RecordingRow, Skill, Tenant, TraceRow,
};
pub use spool::SpoolStatus;

use crate::model::TenantId;
use rows::FromStoreRow;

/// How long a SQLite statement waits for a lock held by another process (the sqlx CLI, a
/// backup) before failing with `SQLITE_BUSY` ([`StoreError::Unavailable`]). Within this process
/// the single writer never waits on itself.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a SQLite statement waits for a pooled connection. The one writer is shared, and
/// a 1,000-row contact batch holds it for a while: contention, not an outage, so longer than
/// PostgreSQL's (a local file has no network to lose).
pub const SQLITE_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a PostgreSQL statement waits for a connection. When the server is down, sqlx
/// retries refused connections until this passes, so it bounds how long a request waits
/// before its 503 (sqlx's default is 30 s). Well under a second: a healthy pool hands out a
/// connection in microseconds, and ten connections busy for this long is an overload.
pub const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_millis(500);

/// PostgreSQL's `statement_timeout` on every connection: a statement the server has not
/// finished by then is cancelled (SQLSTATE 57014, [`StoreError::Unavailable`]), so a server
/// that accepts connections but stalls (locks, I/O) cannot hold requests for long. Reads of
/// history pages and 1,000-row contact batches finish well inside it; migrations run without
/// it.
pub const PG_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// Read connections of a SQLite file database (WAL readers run beside the one writer).
pub const SQLITE_READERS: u32 = 4;

/// Connections of a PostgreSQL pool.
pub const PG_MAX_CONNECTIONS: u32 = 10;

/// Longest name (tenant, key, queue, agent, skill) the store accepts, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The storage handle: cheap to clone (pools are shared), safe to use from many tasks.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Inner,
    /// The journal for writes that must survive an outage (None: they fail instead).
    spool: Option<Arc<spool::Spool>>,
}

#[derive(Clone, Debug)]
enum Inner {
    /// `reader` is `writer` itself for an in-memory database.
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

/// The pools behind a store, for backend-specific work the store does not cover (advisory
/// locks, LISTEN/NOTIFY) and for tests. On SQLite, write only through `writer`.
#[derive(Clone, Copy, Debug)]
pub enum Pools<'a> {
    Sqlite {
        writer: &'a SqlitePool,
        reader: &'a SqlitePool,
    },
    Postgres(&'a PgPool),
}

/// Which SQLite pool a statement needs (PostgreSQL has one pool for both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    Read,
    Write,
}

/// Runs `$body` with `$pool` bound to the right pool of the right backend. The body is
/// expanded once per backend, so the same source code is type-checked against `Sqlite` and
/// `Postgres` (this is what keeps the helpers below single-source without a web of trait
/// bounds).
///
/// While the database is known to be down (a store with a journal whose writes or probes
/// failed, see [`Store::known_down`]) it returns `Unavailable` at once instead: every request
/// would otherwise wait out the acquire timeout for the same answer. The journal's replayer
/// probes through a store without a journal, so it still reaches the database.
macro_rules! with_pool {
    ($store:expr, $use:expr, |$pool:ident| $body:expr) => {{
        if let Some(down) = $store.refused_while_down() {
            return Err(down);
        }
        match &$store.inner {
            Inner::Sqlite { writer, reader } => {
                let $pool = if $use == Use::Write { writer } else { reader };
                $body
            }
            Inner::Postgres(pg) => {
                let $pool = pg;
                $body
            }
        }
    }};
}

/// Binds every [`Arg`] of `$args` (a slice) to the query `$q`, in order.
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for arg in $args {
            q = match arg {
                Arg::I64(v) => q.bind(*v),
                Arg::OptI64(v) => q.bind(*v),
                Arg::I32(v) => q.bind(*v),
                Arg::Bool(v) => q.bind(*v),
                Arg::OptBool(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_str()),
                Arg::OptText(v) => q.bind(v.as_deref()),
                Arg::OptI32(v) => q.bind(*v),
                Arg::OptF64(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// One bound value, in a form both backends encode the same way.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    I64(i64),
    OptI64(Option<i64>),
    I32(i32),
    OptI32(Option<i32>),
    Bool(bool),
    OptBool(Option<bool>),
    Text(String),
    OptText(Option<String>),
    /// Measurements (a recording's silence ratio): REAL / DOUBLE PRECISION, exact both ways.
    OptF64(Option<f64>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::I64(v)
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        Arg::OptI64(v)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Arg {
        Arg::I32(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Bool(v)
    }
}
impl From<Option<bool>> for Arg {
    fn from(v: Option<bool>) -> Arg {
        Arg::OptBool(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_owned())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(v)
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        Arg::OptText(v.map(str::to_owned))
    }
}
impl From<Option<i32>> for Arg {
    fn from(v: Option<i32>) -> Arg {
        Arg::OptI32(v)
    }
}
impl From<Option<f64>> for Arg {
    fn from(v: Option<f64>) -> Arg {
        Arg::OptF64(v)
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Arg {
        Arg::OptText(v)
    }
}
impl From<Uuid> for Arg {
    fn from(v: Uuid) -> Arg {
        Arg::Text(uuid_text(v))
    }
}
impl From<Option<Uuid>> for Arg {
    fn from(v: Option<Uuid>) -> Arg {
        Arg::OptText(v.map(uuid_text))
    }
}
impl From<TenantId> for Arg {
    fn from(v: TenantId) -> Arg {
        Arg::from(v.0)
    }
}
impl From<Option<TenantId>> for Arg {
    fn from(v: Option<TenantId>) -> Arg {
        Arg::from(v.map(|t| t.0))
    }
}
impl From<&serde_json::Value> for Arg {
    fn from(v: &serde_json::Value) -> Arg {
        Arg::Text(v.to_string())
    }
}

/// `args![a, b, c]`: a `Vec<Arg>` of values that convert into [`Arg`].
macro_rules! args {
    ($($v:expr),* $(,)?) => { vec![$(crate::store::Arg::from($v)),*] };
}
pub(crate) use args;

// After the macros above: the campaign store, the agent deletion (which revokes the agent's
// keys) and the history's record writes run multi-statement transactions of their own.
mod analytics;
mod campaigns;
mod checkpoints;
mod config;
mod export;
mod history;
mod journeys;
mod objects;
pub mod outbox;
mod recordings;
pub mod retention;
mod routing;
mod schedules;
pub mod sign_in_links;
mod transcripts;
mod voicemail;
mod wallboard;
mod webhooks;
pub use analytics::{MAX_SCOPES, RollupKind, RollupRow, Tally};
pub use campaigns::{
    AttemptRow, CampaignRow, ContactInput, ContactRow, DispositionRow, DncRow, ImportBatch,
    LedgerAttempt, MAX_BATCH as MAX_CONTACT_BATCH, OPEN_ATTEMPT, OpenDialRow,
};
pub use checkpoints::CheckpointRow;
pub use export::{
    CallsAfter, EXPORT_PAGE_ROWS, ExportCalls, ExportIntervals, ExportScope, IntervalsAfter,
};
pub use history::{MAX_AUDIT, OPEN_CALL};
pub use journeys::JourneyRow;
pub use objects::{
    DeleteCause, DeleteRefused, ObjectRow, ObjectSpool, ObjectState, PastRetention, RetentionRule,
    RetentionScope,
};
pub use recordings::{CALL_RECORDING, OPEN_RECORDING, VOICEMAIL};
pub use routing::{FlowRow, MenuRow, NumberRow};
pub use schedules::ScheduleRow;
pub use transcripts::{
    FieldProblem, MAX_RECORDINGS_PAGE, RecordingFilter, RecordingHit, SENTIMENTS, Segment,
    TranscriptInput, TranscriptRow, search_words,
};
pub use voicemail::{MAX_VOICEMAIL_PAGE, VoicemailFilter, VoicemailRow};
pub use webhooks::{StoredSecret, WebhookAttemptRow, WebhookRow};

/// The one textual form of uuids in the database: lowercase, hyphenated.
fn uuid_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// Wall-clock time as unix milliseconds (0 if the clock reads before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Names are free text, but not empty, not control characters, not unbounded.
fn check_name(field: &'static str, name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() {
        return Err(StoreError::invalid(field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(StoreError::invalid(
            field,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(crate::model::is_forbidden_in_text) {
        return Err(StoreError::invalid(
            field,
            "must not contain control or bidirectional formatting characters",
        ));
    }
    Ok(())
}

/// The audit row a change writes: the caller's entry, with the tenant the method decided on
/// and, for creations, the new object's id.
struct AuditWrite<'e, 'a> {
    entry: &'e AuditEntry<'a>,
    tenant: Option<TenantId>,
}

const INSERT_AUDIT: &str = "INSERT INTO audit_log \
     (tenant_id, key_id, action, object_kind, object_id, at, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

fn audit_args(audit: &AuditWrite<'_, '_>, object_id: String) -> Vec<Arg> {
    args![
        audit.tenant,
        audit.entry.key_id,
        audit.entry.action,
        audit.entry.object_kind,
        object_id,
        now_ms(),
        &audit.entry.detail,
    ]
}

static SQLITE_MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    embedded(&[
        (
            1,
            "init",
            include_str!("../../../migrations/sqlite/0001_init.sql"),
        ),
        (
            2,
            "campaigns",
            include_str!("../../../migrations/sqlite/0002_campaigns.sql"),
        ),
        (
            3,
            "agent keys",
            include_str!("../../../migrations/sqlite/0003_agent_keys.sql"),
        ),
        (
            4,
            "attempt legs",
            include_str!("../../../migrations/sqlite/0004_attempt_legs.sql"),
        ),
        (
            5,
            "attempt machine",
            include_str!("../../../migrations/sqlite/0005_attempt_machine.sql"),
        ),
        (
            6,
            "open rows",
            include_str!("../../../migrations/sqlite/0006_open_rows.sql"),
        ),
        (
            7,
            "campaign pacer",
            include_str!("../../../migrations/sqlite/0007_campaign_pacer.sql"),
        ),
        (
            8,
            "dial grants",
            include_str!("../../../migrations/sqlite/0008_dial_grants.sql"),
        ),
        (
            9,
            "platform secrets",
            include_str!("../../../migrations/sqlite/0009_platform_secrets.sql"),
        ),
        (
            10,
            "recordings",
            include_str!("../../../migrations/sqlite/0010_recordings.sql"),
        ),
        (
            11,
            "transcripts",
            include_str!("../../../migrations/sqlite/0011_transcripts.sql"),
        ),
        (
            12,
            "recording objects",
            include_str!("../../../migrations/sqlite/0012_recording_objects.sql"),
        ),
        (
            13,
            "retention rules",
            include_str!("../../../migrations/sqlite/0013_retention_rules.sql"),
        ),
        (
            14,
            "schedules",
            include_str!("../../../migrations/sqlite/0014_schedules.sql"),
        ),
        (
            15,
            "inbound flows",
            include_str!("../../../migrations/sqlite/0015_inbound_flows.sql"),
        ),
        (
            16,
            "voicemail",
            include_str!("../../../migrations/sqlite/0016_voicemail.sql"),
        ),
        (
            17,
            "call journeys",
            include_str!("../../../migrations/sqlite/0017_call_journeys.sql"),
        ),
        (
            18,
            "webhooks",
            include_str!("../../../migrations/sqlite/0018_webhooks.sql"),
        ),
        (
            19,
            "outbox and agent states",
            include_str!("../../../migrations/sqlite/0019_outbox_agent_states.sql"),
        ),
        (
            20,
            "analytics",
            include_str!("../../../migrations/sqlite/0020_analytics.sql"),
        ),
        (
            21,
            "analytics sums",
            include_str!("../../../migrations/sqlite/0021_analytics_sums.sql"),
        ),
        (
            22,
            "web sessions and display tokens",
            include_str!("../../../migrations/sqlite/0022_web_sessions.sql"),
        ),
        (
            23,
            "wallboard settings and carried counters",
            include_str!("../../../migrations/sqlite/0023_wallboard.sql"),
        ),
        (
            24,
            "agent sign-in links",
            include_str!("../../../migrations/sqlite/0024_agent_sign_in_links.sql"),
        ),
        (
            25,
            "pending deliveries in the claim's order",
            include_str!("../../../migrations/sqlite/0025_webhook_pending_index.sql"),
        ),
        (
            26,
            "pending deliveries per endpoint in the claim's order",
            include_str!("../../../migrations/sqlite/0026_webhook_endpoint_due_index.sql"),
        ),
        (
            27,
            "the open interval's counters, saved for the next start",
            include_str!("../../../migrations/sqlite/0027_interval_checkpoints.sql"),
        ),
    ])
});
static PG_MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    embedded(&[
        (
            1,
            "init",
            include_str!("../../../migrations/postgres/0001_init.sql"),
        ),
        (
            2,
            "campaigns",
            include_str!("../../../migrations/postgres/0002_campaigns.sql"),
        ),
        (
            3,
            "agent keys",
            include_str!("../../../migrations/postgres/0003_agent_keys.sql"),
        ),
        (
            4,
            "attempt legs",
            include_str!("../../../migrations/postgres/0004_attempt_legs.sql"),
        ),
        (
            5,
            "attempt machine",
            include_str!("../../../migrations/postgres/0005_attempt_machine.sql"),
        ),
        (
            6,
            "open rows",
            include_str!("../../../migrations/postgres/0006_open_rows.sql"),
        ),
        (
            7,
            "campaign pacer",
            include_str!("../../../migrations/postgres/0007_campaign_pacer.sql"),
        ),
        (
            8,
            "dial grants",
            include_str!("../../../migrations/postgres/0008_dial_grants.sql"),
        ),
        (
            9,
            "platform secrets",
            include_str!("../../../migrations/postgres/0009_platform_secrets.sql"),
        ),
        (
            10,
            "recordings",
            include_str!("../../../migrations/postgres/0010_recordings.sql"),
        ),
        (
            11,
            "transcripts",
            include_str!("../../../migrations/postgres/0011_transcripts.sql"),
        ),
        (
            12,
            "recording objects",
            include_str!("../../../migrations/postgres/0012_recording_objects.sql"),
        ),
        (
            13,
            "retention rules",
            include_str!("../../../migrations/postgres/0013_retention_rules.sql"),
        ),
        (
            14,
            "schedules",
            include_str!("../../../migrations/postgres/0014_schedules.sql"),
        ),
        (
            15,
            "inbound flows",
            include_str!("../../../migrations/postgres/0015_inbound_flows.sql"),
        ),
        (
            16,
            "voicemail",
            include_str!("../../../migrations/postgres/0016_voicemail.sql"),
        ),
        (
            17,
            "call journeys",
            include_str!("../../../migrations/postgres/0017_call_journeys.sql"),
        ),
        (
            18,
            "webhooks",
            include_str!("../../../migrations/postgres/0018_webhooks.sql"),
        ),
        (
            19,
            "outbox and agent states",
            include_str!("../../../migrations/postgres/0019_outbox_agent_states.sql"),
        ),
        (
            20,
            "analytics",
            include_str!("../../../migrations/postgres/0020_analytics.sql"),
        ),
        (
            21,
            "analytics sums",
            include_str!("../../../migrations/postgres/0021_analytics_sums.sql"),
        ),
        (
            22,
            "web sessions and display tokens",
            include_str!("../../../migrations/postgres/0022_web_sessions.sql"),
        ),
        (
            23,
            "wallboard settings and carried counters",
            include_str!("../../../migrations/postgres/0023_wallboard.sql"),
        ),
        (
            24,
            "agent sign-in links",
            include_str!("../../../migrations/postgres/0024_agent_sign_in_links.sql"),
        ),
        (
            25,
            "pending deliveries in the claim's order",
            include_str!("../../../migrations/postgres/0025_webhook_pending_index.sql"),
        ),
        (
            26,
            "pending deliveries per endpoint in the claim's order",
            include_str!("../../../migrations/postgres/0026_webhook_endpoint_due_index.sql"),
        ),
        (
            27,
            "the open interval's counters, saved for the next start",
            include_str!("../../../migrations/postgres/0027_interval_checkpoints.sql"),
        ),
    ])
});

/// The migrations, compiled in: (version, description, SQL). (`sqlx::migrate!` needs sqlx's
/// `macros` feature, which the workspace leaves off; checksums are the same either way, so
/// the sqlx CLI agrees.)
fn embedded(migrations: &[(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    )
}

impl Store {
    /// Opens `sqlite:...` (e.g. `sqlite://switchyard.db?mode=rwc`, `sqlite::memory:`) or
    /// `postgres://...`. Does not migrate.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::invalid("database_url", e.to_string()))?;
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            Store::open_sqlite(options, in_memory).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // The parse error is not echoed: it may quote the URL, password included.
            let options = PgConnectOptions::from_str(url)
                .map_err(|_| StoreError::invalid("database_url", "not a valid postgres URL"))?;
            Store::from_pg_options(options).await
        } else {
            Err(StoreError::invalid(
                "database_url",
                "expected sqlite:... or postgres://...",
            ))
        }
    }

    /// A fresh, private in-memory SQLite database (gone when the store is dropped).
    pub async fn sqlite_memory() -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        Store::open_sqlite(options, true).await
    }

    /// PostgreSQL with options built by the caller (pool of [`PG_MAX_CONNECTIONS`]); e.g. a
    /// `search_path` set with `PgConnectOptions::options`.
    pub async fn from_pg_options(options: PgConnectOptions) -> Result<Store, StoreError> {
        // Custom plans always: a prepared statement's generic plan is made once, from the
        // statistics of that moment, and kept; on tables that grow fast from empty (the
        // webhook deliveries, 10,000 rows a second under load) it stays a sequential scan
        // long after an index is the right way (the delivery updates took 44 ms instead of
        // 2). Planning these statements costs a fraction of a millisecond.
        let options = options.options([
            (
                "statement_timeout",
                format!("{}", PG_STATEMENT_TIMEOUT.as_millis()),
            ),
            ("plan_cache_mode", "force_custom_plan".to_owned()),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(PG_MAX_CONNECTIONS)
            .acquire_timeout(PG_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Store {
            inner: Inner::Postgres(pool),
            spool: None,
        })
    }

    async fn open_sqlite(
        options: SqliteConnectOptions,
        in_memory: bool,
    ) -> Result<Store, StoreError> {
        // WAL: readers never block the writer nor it them. `synchronous` stays at SQLite's
        // FULL: an acknowledged configuration change survives a power cut.
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        // The writer lives as long as the store: an in-memory database dies with its last
        // connection, and for a file it keeps the WAL index open for the readers.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(SQLITE_READERS)
                .acquire_timeout(SQLITE_ACQUIRE_TIMEOUT)
                .connect_with(options.create_if_missing(false))
                .await?
        };
        Ok(Store {
            inner: Inner::Sqlite { writer, reader },
            spool: None,
        })
    }

    /// Applies the embedded migrations that have not run yet (a no-op when up to date).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.inner {
            Inner::Sqlite { writer, .. } => SQLITE_MIGRATOR.run(writer).await?,
            Inner::Postgres(pg) => {
                // Without the statement timeout: an index built over a large table may take
                // longer. The connection gets the default back before it returns to the pool.
                let mut conn = pg.acquire().await?;
                sqlx::query("SET statement_timeout = 0")
                    .execute(&mut *conn)
                    .await?;
                let ran = PG_MIGRATOR.run_direct(None, &mut *conn, false).await;
                sqlx::query("RESET statement_timeout")
                    .execute(&mut *conn)
                    .await?;
                ran?
            }
        }
        Ok(())
    }

    /// This store with a journal in `dir` (at most `bound_bytes`; see [`crate::journal`]) for
    /// the writes that must survive an outage, and its replayer started: whatever the journal
    /// holds from before is written first, and anything new goes behind it. Every clone of
    /// the returned store shares the journal. One process per directory.
    pub fn with_journal(self, dir: &Path, bound_bytes: u64) -> Result<Store, StoreError> {
        let direct = Store {
            inner: self.inner.clone(),
            spool: None,
        };
        let spool = spool::Spool::start(direct, dir, bound_bytes)?;
        Ok(Store {
            inner: self.inner,
            spool: Some(spool),
        })
    }

    /// The journal's state, when this store has one.
    pub fn spool_status(&self) -> Option<SpoolStatus> {
        self.spool.as_ref().map(|s| s.status())
    }

    /// True while the database is known to be unavailable (a write or probe failed and no
    /// probe has succeeded since). Always false without a journal (nobody probes).
    pub fn known_down(&self) -> bool {
        self.spool.as_ref().is_some_and(|s| s.is_down())
    }

    /// `Unavailable` when the database is known to be down (see [`Store::known_down`]).
    fn refused_while_down(&self) -> Option<StoreError> {
        let spool = self.spool.as_ref()?;
        let st = spool.status();
        st.down_since_ms.map(|_| StoreError::Unavailable {
            reason: st
                .reason
                .unwrap_or_else(|| "the database is unavailable".to_owned()),
        })
    }

    /// Tells the journal's health tracking about a failure seen elsewhere (a readiness probe,
    /// a key lookup), so that writes go straight to the journal and probing starts.
    pub fn note_error(&self, error: &StoreError) {
        if let (Some(spool), StoreError::Unavailable { reason }) = (&self.spool, error) {
            spool.mark_down(reason);
        }
    }

    /// Waits until the journal is replayed and the database answers, at most `timeout`; true
    /// if so (also without a journal).
    pub async fn journal_drained(&self, timeout: Duration) -> bool {
        match &self.spool {
            Some(s) => s.drained(timeout).await,
            None => true,
        }
    }

    /// Runs `op` through the journal when there is one.
    async fn spooled(&self, op: impl FnOnce() -> spool::Op) -> Option<Result<(), StoreError>> {
        match &self.spool {
            Some(s) => Some(s.submit(op()).await),
            None => None,
        }
    }

    /// One round trip (readiness; the journal's probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, Use::Read, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sqlite { .. } => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// The pools themselves (see [`Pools`]).
    pub fn pools(&self) -> Pools<'_> {
        match &self.inner {
            Inner::Sqlite { writer, reader } => Pools::Sqlite { writer, reader },
            Inner::Postgres(pg) => Pools::Postgres(pg),
        }
    }

    /// Closes every connection, waiting for those in use to come back. Clones of this store
    /// fail from then on.
    pub async fn close(&self) {
        match &self.inner {
            Inner::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Inner::Postgres(pg) => pg.close().await,
        }
    }

    /// An audit row on its own, for actions that change no stored configuration (supervision:
    /// who listened to whom, who assigned a call). Written as given: tenant `entry.tenant`,
    /// object id `entry.object_id`. Configuration changes never need this: their methods
    /// write their own row, in their transaction.
    /// With a journal, an outage does not lose it (see [`spool`]); stamped now either way.
    pub async fn insert_audit(&self, entry: &AuditEntry<'_>) -> Result<(), StoreError> {
        let at = now_ms();
        if let Some(done) = self
            .spooled(|| spool::Op::Audit {
                entry: spool::JournalAudit::of(entry, at),
            })
            .await
        {
            return done;
        }
        self.insert_audit_at(entry, at, false).await
    }

    /// [`Store::insert_audit`] stamped `at_ms`. `once`: skip it if an entry with the same
    /// action, object, time and detail is stored (a journal replay that may have committed
    /// before).
    pub(crate) async fn insert_audit_at(
        &self,
        entry: &AuditEntry<'_>,
        at_ms: i64,
        once: bool,
    ) -> Result<(), StoreError> {
        let audit = AuditWrite {
            entry,
            tenant: entry.tenant,
        };
        let mut args = audit_args(&audit, entry.object_id.clone());
        args[5] = Arg::I64(at_ms);
        if once {
            self.execute(
                "INSERT INTO audit_log \
                 (tenant_id, key_id, action, object_kind, object_id, at, detail) \
                 SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS (SELECT 1 FROM audit_log \
                 WHERE action = $3 AND object_kind = $4 AND object_id = $5 AND at = $6 \
                 AND detail = $7)",
                args,
            )
            .await?;
        } else {
            self.execute(INSERT_AUDIT, args).await?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // The helpers every method goes through (the only code that names a backend).

    /// Every row of a query.
    async fn fetch_all<T: FromStoreRow + Send>(
        &self,
        on: Use,
        sql: impl SqlSafeStr,
        args: Vec<Arg>,
    ) -> Result<Vec<T>, StoreError> {
        let sql = sql.into_sql_str();
        with_pool!(self, on, |pool| {
            let rows = bind_args!(sqlx::query(sql), &args).fetch_all(pool).await?;
            rows.iter().map(T::from_row).collect()
        })
    }

    /// The first row of a query, if any.
    async fn fetch_optional<T: FromStoreRow + Send>(
        &self,
        on: Use,
        sql: impl SqlSafeStr,
        args: Vec<Arg>,
    ) -> Result<Option<T>, StoreError> {
        let sql = sql.into_sql_str();
        with_pool!(self, on, |pool| {
            let row = bind_args!(sqlx::query(sql), &args)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(T::from_row).transpose()
        })
    }

    /// One statement on its own (atomic by itself), no audit; returns the rows it affected.
    async fn execute(&self, sql: impl SqlSafeStr, args: Vec<Arg>) -> Result<u64, StoreError> {
        let sql = sql.into_sql_str();
        with_pool!(self, Use::Write, |pool| {
            let done = bind_args!(sqlx::query(sql), &args).execute(pool).await?;
            Ok(done.rows_affected())
        })
    }

    /// A configuration change: runs `sql` (which must `RETURNING` something decoding as `T`);
    /// if it returned a row, writes the audit row (with `object_id(&row)`) and commits both;
    /// if not, rolls back and returns None. A unique violation is `Conflict { what }`.
    async fn change<T, F>(
        &self,
        what: &'static str,
        sql: impl SqlSafeStr,
        args: Vec<Arg>,
        audit: AuditWrite<'_, '_>,
        object_id: F,
    ) -> Result<Option<T>, StoreError>
    where
        T: FromStoreRow + Send,
        F: FnOnce(&T) -> String + Send,
    {
        self.change_then(what, sql, args, audit, object_id, |_| Vec::new())
            .await
    }

    /// As [`Store::change`], with `then`'s statements (made from the changed row) in the same
    /// transaction: what the change causes (its webhook message) commits with it or not at all.
    async fn change_then<T, F, G>(
        &self,
        what: &'static str,
        sql: impl SqlSafeStr,
        args: Vec<Arg>,
        audit: AuditWrite<'_, '_>,
        object_id: F,
        then: G,
    ) -> Result<Option<T>, StoreError>
    where
        T: FromStoreRow + Send,
        F: FnOnce(&T) -> String + Send,
        G: FnOnce(&T) -> Vec<(SqlStr, Vec<Arg>)> + Send,
    {
        let sql = sql.into_sql_str();
        let map = |e| StoreError::from_sqlx(e, what);
        with_pool!(self, Use::Write, |pool| {
            let mut tx = pool.begin().await?;
            let row = bind_args!(sqlx::query(sql), &args)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map)?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(None);
            };
            let value = T::from_row(&row)?;
            let audit_args = audit_args(&audit, object_id(&value));
            bind_args!(sqlx::query(INSERT_AUDIT), &audit_args)
                .execute(&mut *tx)
                .await?;
            for (sql, args) in then(&value) {
                bind_args!(sqlx::query(sql), &args)
                    .execute(&mut *tx)
                    .await
                    .map_err(map)?;
            }
            tx.commit().await?;
            Ok(Some(value))
        })
    }

    /// Several statements in one transaction (history batches): all or nothing.
    async fn batch(&self, statements: Vec<(SqlStr, Vec<Arg>)>) -> Result<(), StoreError> {
        if statements.is_empty() {
            return Ok(());
        }
        with_pool!(self, Use::Write, |pool| {
            let mut tx = pool.begin().await?;
            for (sql, args) in statements {
                bind_args!(sqlx::query(sql), &args)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
