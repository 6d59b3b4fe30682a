//! Reads for the CSV export (`POST /v1/analytics/export`): a tenant's calls and interval
//! figures over a range, one keyset page at a time, oldest first.
//!
//! ```text
//! let mut after = CallsAfter::start(from_ms);
//! loop {
//!     let page = store.export_calls(tenant, &filter, after, EXPORT_PAGE_ROWS).await?;
//!     // ... write the page ...
//!     match page.last() { Some(c) => after = CallsAfter::row(c), None => break }
//! }
//! ```
//!
//! Why pages and not one long statement: an export of a year is millions of rows, and one
//! statement would hold a connection (and, on SQLite, a read snapshot that keeps the WAL from
//! being checkpointed) for as long as the slowest client takes to download it, while
//! PostgreSQL cuts every statement at `PG_STATEMENT_TIMEOUT` anyway. A page is a short index
//! range scan that starts after the last row of the page before (never an OFFSET), so pages
//! neither overlap nor skip rows, and each costs the same however deep into the export it is.
//! Rows written meanwhile may appear if they sort after the cursor; nothing already read is
//! read again.
//!
//! Every statement is static text (one per filter combination) so that each uses the index made
//! for its filter: `calls_tenant_arrived`, `calls_tenant_queue` or `calls_tenant_agent` for
//! calls, and `interval_stats`' primary key `(tenant_id, scope_kind, scope_id, start_ms)` for
//! interval figures, which is why those come per scope (agent or queue), then by time.

use uuid::Uuid;

use super::rows::{call_cols, interval_cols};
use super::{CallRow, IntervalRow, OPEN_CALL, Store, StoreError, Use};
use crate::model::TenantId;

/// Rows per page: large enough that a page's round trip is a small part of its cost, small
/// enough that a page (and the CSV written from it) stays well under a megabyte.
pub const EXPORT_PAGE_ROWS: i64 = 1000;

/// Which calls an export reads: arrived in `from_ms..to_ms`, optionally of one last queue
/// and/or one agent (store ids). Calls under way (`in-progress`) are never exported: history
/// is of calls that ended, as in `list_calls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportCalls {
    pub from_ms: i64,
    pub to_ms: i64,
    pub queue_id: Option<i64>,
    pub agent_id: Option<i64>,
}

/// Where the next page of calls starts: after this (arrived_at, id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallsAfter {
    arrived_at_ms: i64,
    /// The id as stored (hyphenated lowercase text, which is also how the key orders).
    id: String,
}

impl CallsAfter {
    /// Before the first call arrived at `from_ms`: every stored id sorts after the empty text.
    pub fn start(from_ms: i64) -> CallsAfter {
        CallsAfter {
            arrived_at_ms: from_ms,
            id: String::new(),
        }
    }

    /// Right after `row`.
    pub fn row(row: &CallRow) -> CallsAfter {
        CallsAfter {
            arrived_at_ms: row.arrived_at_ms,
            id: uuid_key(row.id),
        }
    }
}

fn uuid_key(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// Which interval figures an export reads: those of `scope` (`agent` or `queue`) starting in
/// `from_ms..to_ms`, of every agent or queue of the tenant or of one (store id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportIntervals {
    pub scope: ExportScope,
    pub from_ms: i64,
    pub to_ms: i64,
    pub scope_id: Option<i64>,
}

/// The interval scopes a tenant owns. Totals are platform-wide (tenant `''`) and never
/// exported to a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportScope {
    Agent,
    Queue,
}

impl ExportScope {
    fn kind(self) -> &'static str {
        match self {
            ExportScope::Agent => "agent",
            ExportScope::Queue => "queue",
        }
    }
}

/// Where the next page of interval figures starts: after this (scope_id, start_ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntervalsAfter {
    scope_id: i64,
    start_ms: i64,
}

impl IntervalsAfter {
    /// Before every row: scope ids are positive and `start_ms` is at least the range's start.
    pub fn start() -> IntervalsAfter {
        IntervalsAfter {
            scope_id: i64::MIN,
            start_ms: i64::MIN,
        }
    }

    /// Right after `row`.
    pub fn row(row: &IntervalRow) -> IntervalsAfter {
        IntervalsAfter {
            scope_id: row.scope.id(),
            start_ms: row.start_ms,
        }
    }
}

/// The SELECT of a calls page: the filter in `$1..`, then the cursor and the limit.
macro_rules! calls_page {
    ($filter:literal, $next:literal) => {
        concat!(
            "SELECT ",
            call_cols!(),
            " FROM calls WHERE tenant_id = $1",
            $filter,
            " AND outcome <> $2 AND arrived_at < $3 AND (arrived_at, id) > ($4, $5)",
            " ORDER BY arrived_at, id LIMIT ",
            $next
        )
    };
}

impl Store {
    /// The next page of a calls export after `after`, oldest first (by arrival, then id), at
    /// most `limit` rows (clamped to `1..=`[`EXPORT_PAGE_ROWS`]); empty when there are no more.
    pub async fn export_calls(
        &self,
        tenant: TenantId,
        filter: &ExportCalls,
        after: &CallsAfter,
        limit: i64,
    ) -> Result<Vec<CallRow>, StoreError> {
        const ALL: &str = calls_page!("", "$6");
        const QUEUE: &str = calls_page!(" AND queue_id = $6", "$7");
        const AGENT: &str = calls_page!(" AND agent_id = $6", "$7");
        const BOTH: &str = calls_page!(" AND queue_id = $6 AND agent_id = $7", "$8");
        let limit = limit.clamp(1, EXPORT_PAGE_ROWS);
        let mut args = args![
            tenant,
            OPEN_CALL,
            filter.to_ms,
            after.arrived_at_ms,
            after.id.as_str(),
        ];
        let sql = match (filter.queue_id, filter.agent_id) {
            (None, None) => ALL,
            (Some(q), None) => {
                args.extend(args![q]);
                QUEUE
            }
            (None, Some(a)) => {
                args.extend(args![a]);
                AGENT
            }
            (Some(q), Some(a)) => {
                args.extend(args![q, a]);
                BOTH
            }
        };
        args.extend(args![limit]);
        self.fetch_all(Use::Read, sql, args).await
    }

    /// The next page of an interval export after `after`: per scope (agent or queue id), then
    /// by start; at most `limit` rows (clamped to `1..=`[`EXPORT_PAGE_ROWS`]).
    pub async fn export_intervals(
        &self,
        tenant: TenantId,
        filter: &ExportIntervals,
        after: IntervalsAfter,
        limit: i64,
    ) -> Result<Vec<IntervalRow>, StoreError> {
        const EVERY: &str = concat!(
            "SELECT ",
            interval_cols!(),
            " FROM interval_stats WHERE tenant_id = $1 AND scope_kind = $2 \
             AND start_ms >= $3 AND start_ms < $4 AND (scope_id, start_ms) > ($5, $6) \
             ORDER BY scope_id, start_ms LIMIT $7"
        );
        const ONE: &str = concat!(
            "SELECT ",
            interval_cols!(),
            " FROM interval_stats WHERE tenant_id = $1 AND scope_kind = $2 \
             AND start_ms >= $3 AND start_ms < $4 AND scope_id = $5 AND start_ms > $6 \
             ORDER BY start_ms LIMIT $7"
        );
        let limit = limit.clamp(1, EXPORT_PAGE_ROWS);
        let kind = filter.scope.kind();
        let (sql, scope_id) = match filter.scope_id {
            Some(id) => (ONE, id),
            None => (EVERY, after.scope_id),
        };
        let args = args![
            tenant,
            kind,
            filter.from_ms,
            filter.to_ms,
            scope_id,
            after.start_ms,
            limit
        ];
        self.fetch_all(Use::Read, sql, args).await
    }
}
