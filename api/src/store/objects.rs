//! Where each recording's audio is kept (migration 0012): the spool file on this host, the
//! object in storage, and the state between (see the migration's comment). Written by the
//! recordings service (`crate::recording_objects`) before it acts, read by the API and by a
//! restart.
//!
//! ```text
//!   final recording row with audio ─► spooled ─(upload)─► stored
//!   DELETE / retention ─► deleting ─(object, spool file removed)─► deleted
//! ```

use sqlx::SqlStr;
use uuid::Uuid;

use super::rows::{FromStoreRow, RowExt};
use super::{AuditEntry, Store, StoreError, Use, now_ms};
use crate::model::TenantId;

/// A recording's storage row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRow {
    pub recording_id: Uuid,
    pub tenant: TenantId,
    pub state: ObjectState,
    pub object_key: String,
    pub spool_path: String,
    pub location: Option<String>,
    /// Lower-case hex.
    pub sha256: Option<String>,
    pub bytes: Option<i64>,
    pub spooled_at_ms: i64,
    pub stored_at_ms: Option<i64>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub legal_hold: bool,
    pub deleted_at_ms: Option<i64>,
}

/// See the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectState {
    Spooled,
    Stored,
    Deleting,
    Deleted,
}

impl ObjectState {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectState::Spooled => "spooled",
            ObjectState::Stored => "stored",
            ObjectState::Deleting => "deleting",
            ObjectState::Deleted => "deleted",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "spooled" => ObjectState::Spooled,
            "stored" => ObjectState::Stored,
            "deleting" => ObjectState::Deleting,
            "deleted" => ObjectState::Deleted,
            other => {
                return Err(StoreError::Internal(format!(
                    "recording_objects.state {other:?}"
                )));
            }
        })
    }
}

/// A recording to spool: its audio is whole at `spool_path`, to be stored under `object_key`.
#[derive(Clone, Debug)]
pub struct ObjectSpool {
    pub recording_id: Uuid,
    pub tenant: TenantId,
    pub object_key: String,
    pub spool_path: String,
}

/// What a deletion is asked with, for its audit entry.
#[derive(Clone, Copy, Debug)]
pub enum DeleteCause<'a> {
    /// `DELETE /v1/recordings/{id}` by this key.
    Request { key_id: Uuid },
    /// The tenant's retention (days).
    Retention { days: i64 },
    /// `switchyard recordings retention --apply` or a restart finishing one.
    Operator { by: &'a str },
}

/// Why a recording cannot be deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteRefused {
    NotFound,
    LegalHold,
}

macro_rules! object_cols {
    () => {
        "recording_id, tenant_id, state, object_key, spool_path, location, sha256, bytes, \
         spooled_at, stored_at, attempts, last_error, legal_hold, deleted_at"
    };
}

impl FromStoreRow for ObjectRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(ObjectRow {
            recording_id: row.uuid("recording_id")?,
            tenant: row.tenant("tenant_id")?,
            state: ObjectState::parse(&row.string("state")?)?,
            object_key: row.string("object_key")?,
            spool_path: row.string("spool_path")?,
            location: row.opt_string("location")?,
            sha256: row.opt_string("sha256")?,
            bytes: row.opt_i64("bytes")?,
            spooled_at_ms: row.i64("spooled_at")?,
            stored_at_ms: row.opt_i64("stored_at")?,
            attempts: row.i32("attempts")?,
            last_error: row.opt_string("last_error")?,
            legal_hold: row.bool("legal_hold")?,
            deleted_at_ms: row.opt_i64("deleted_at")?,
        })
    }
}

/// A final recording with audio and no storage row yet (a stop between the two writes).
#[derive(Debug)]
struct Unspooled {
    id: Uuid,
    tenant: TenantId,
    path: String,
}

impl FromStoreRow for Unspooled {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(Unspooled {
            id: row.uuid("id")?,
            tenant: row.tenant("tenant_id")?,
            path: row.string("path")?,
        })
    }
}

impl Store {
    /// Records that these recordings' audio is spooled (write before the upload). A
    /// recording spooled before keeps its row.
    pub async fn spool_objects(&self, rows: &[ObjectSpool]) -> Result<(), StoreError> {
        let at = now_ms();
        for r in rows {
            self.execute(
                "INSERT INTO recording_objects (recording_id, tenant_id, state, object_key, \
                 spool_path, spooled_at) VALUES ($1, $2, 'spooled', $3, $4, $5) \
                 ON CONFLICT (recording_id) DO NOTHING",
                args![
                    r.recording_id,
                    r.tenant,
                    r.object_key.as_str(),
                    r.spool_path.as_str(),
                    at
                ],
            )
            .await?;
        }
        Ok(())
    }

    /// The upload of a spooled recording is done.
    pub async fn object_stored(
        &self,
        id: Uuid,
        location: &str,
        sha256: &str,
        bytes: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE recording_objects SET state = 'stored', location = $2, sha256 = $3, \
                 bytes = $4, stored_at = $5, last_error = NULL \
                 WHERE recording_id = $1 AND state = 'spooled'",
                args![id, location, sha256, bytes, now_ms()],
            )
            .await?;
        Ok(n > 0)
    }

    /// An upload attempt failed (it is retried): counted, and its error kept for the API.
    pub async fn object_attempt_failed(
        &self,
        id: Uuid,
        attempt: u32,
        error: &str,
    ) -> Result<(), StoreError> {
        let attempt = i32::try_from(attempt).unwrap_or(i32::MAX);
        let error: String = error.chars().take(1000).collect();
        self.execute(
            "UPDATE recording_objects SET attempts = $2, last_error = $3 \
             WHERE recording_id = $1 AND state = 'spooled'",
            args![id, attempt, error.as_str()],
        )
        .await?;
        Ok(())
    }

    /// A recording's storage row, within its tenant.
    pub async fn recording_object(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<ObjectRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            object_cols!(),
            " FROM recording_objects WHERE tenant_id = $1 AND recording_id = $2"
        );
        self.fetch_optional(Use::Read, SQL, args![tenant, id]).await
    }

    /// A recording's storage row whatever its tenant (a signed playback URL names the
    /// recording, and its signature is the credential).
    pub async fn recording_object_any(&self, id: Uuid) -> Result<Option<ObjectRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            object_cols!(),
            " FROM recording_objects WHERE recording_id = $1"
        );
        self.fetch_optional(Use::Read, SQL, args![id]).await
    }

    /// What a restart must take up: spooled rows to upload, deletions to finish, and final
    /// recordings with audio whose storage row was never written (spooled here, then listed).
    pub async fn pending_objects(
        &self,
        key_of: impl Fn(TenantId, Uuid) -> Option<String> + Send,
    ) -> Result<Vec<ObjectRow>, StoreError> {
        let missing: Vec<Unspooled> = self
            .fetch_all(
                Use::Write,
                "SELECT r.id, r.tenant_id, r.path FROM recordings r \
                 LEFT JOIN recording_objects o ON o.recording_id = r.id \
                 WHERE o.recording_id IS NULL AND r.status IN ('completed', 'damaged') \
                 AND r.path <> ''",
                args![],
            )
            .await?;
        let spools: Vec<ObjectSpool> = missing
            .into_iter()
            .filter_map(|m| {
                Some(ObjectSpool {
                    object_key: key_of(m.tenant, m.id)?,
                    recording_id: m.id,
                    tenant: m.tenant,
                    spool_path: m.path,
                })
            })
            .collect();
        self.spool_objects(&spools).await?;
        const SQL: &str = concat!(
            "SELECT ",
            object_cols!(),
            " FROM recording_objects WHERE state IN ('spooled', 'deleting') \
             ORDER BY spooled_at, recording_id"
        );
        self.fetch_all(Use::Write, SQL, args![]).await
    }

    /// Puts a legal hold on a recording or lifts it (audited); false: no such recording of
    /// the tenant, or nothing stored for it.
    pub async fn set_legal_hold(
        &self,
        tenant: TenantId,
        id: Uuid,
        hold: bool,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE recording_objects SET legal_hold = $3 \
                 WHERE tenant_id = $1 AND recording_id = $2 AND state <> 'deleted'",
                args![tenant, id, hold],
            )
            .await?;
        if n > 0 {
            self.insert_audit(audit).await?;
        }
        Ok(n > 0)
    }

    /// Begins a deletion (write before you act): the row goes to `deleting` unless it is on
    /// legal hold; an audit entry says who or what asked. A recording already deleting or
    /// deleted is Ok (deleting is idempotent).
    pub async fn begin_delete(
        &self,
        tenant: TenantId,
        id: Uuid,
        audit: &AuditEntry<'_>,
    ) -> Result<Result<ObjectRow, DeleteRefused>, StoreError> {
        let Some(row) = self.recording_object(tenant, id).await? else {
            return Ok(Err(DeleteRefused::NotFound));
        };
        if row.legal_hold {
            return Ok(Err(DeleteRefused::LegalHold));
        }
        if matches!(row.state, ObjectState::Deleting | ObjectState::Deleted) {
            return Ok(Ok(row));
        }
        let n = self
            .execute(
                "UPDATE recording_objects SET state = 'deleting' \
                 WHERE recording_id = $1 AND legal_hold = FALSE \
                 AND state IN ('spooled', 'stored')",
                args![id],
            )
            .await?;
        if n == 0 {
            // A hold or another deletion came in between: read again.
            return Box::pin(self.begin_delete(tenant, id, audit)).await;
        }
        self.insert_audit(audit).await?;
        Ok(Ok(ObjectRow {
            state: ObjectState::Deleting,
            ..row
        }))
    }

    /// The object and the spool file are gone: the deletion is done.
    pub async fn object_deleted(&self, id: Uuid) -> Result<(), StoreError> {
        // The transcript is part of the recording (it may quote what was said).
        self.execute(
            "DELETE FROM recording_transcripts WHERE recording_id = $1",
            args![id],
        )
        .await?;
        self.execute(
            "UPDATE recording_objects SET state = 'deleted', deleted_at = $2 \
             WHERE recording_id = $1 AND state = 'deleting'",
            args![id, now_ms()],
        )
        .await?;
        Ok(())
    }

    /// Recordings of `tenant` past the retention that applies to each (its campaign's rule,
    /// else its queue's, else the tenant's days; see migration 0013): started before
    /// `now_ms` less those days, not on hold, not deleted; oldest first, at most `limit`.
    pub async fn objects_past_retention(
        &self,
        tenant: TenantId,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<PastRetention>, StoreError> {
        // The days are cast before the multiplication: INTEGER days times a day's
        // milliseconds overflows PostgreSQL's int4 past 24 days.
        macro_rules! keep_days {
            () => {
                "COALESCE(rc.days, rq.days, t.recording_retention_days)"
            };
        }
        const SQL: &str = concat!(
            "SELECT o.recording_id, o.tenant_id, o.state, o.object_key, o.spool_path, \
             o.location, o.sha256, o.bytes, o.spooled_at, o.stored_at, o.attempts, \
             o.last_error, o.legal_hold, o.deleted_at, ",
            keep_days!(),
            " AS keep_days, CASE WHEN rc.days IS NOT NULL THEN 'campaign' \
             WHEN rq.days IS NOT NULL THEN 'queue' ELSE 'tenant' END AS rule \
             FROM recording_objects o JOIN recordings r ON r.id = o.recording_id \
             JOIN tenants t ON t.id = o.tenant_id \
             LEFT JOIN recording_retention_rules rq ON rq.tenant_id = o.tenant_id \
             AND rq.scope = 'queue' AND rq.scope_id = r.queue_id \
             LEFT JOIN recording_retention_rules rc ON rc.tenant_id = o.tenant_id \
             AND rc.scope = 'campaign' AND rc.scope_id = r.campaign_id \
             WHERE o.tenant_id = $1 AND o.legal_hold = FALSE \
             AND o.state IN ('spooled', 'stored') AND ",
            keep_days!(),
            " IS NOT NULL AND r.started_at < $2 - CAST(",
            keep_days!(),
            " AS BIGINT) * 86400000 ORDER BY r.started_at, o.recording_id LIMIT $3"
        );
        self.fetch_all(Use::Read, SQL, args![tenant, now_ms, limit])
            .await
    }

    /// Sets a tenant's recording retention in days (`None`: keep until deleted) and, when
    /// `rules` is given, replaces its per-queue and per-campaign rules with them; one
    /// transaction, then the audit entry.
    pub async fn set_recording_retention(
        &self,
        tenant: TenantId,
        days: Option<i32>,
        rules: Option<&[RetentionRule]>,
        audit: &AuditEntry<'_>,
    ) -> Result<(), StoreError> {
        let mut statements = vec![(
            SqlStr::from_static("UPDATE tenants SET recording_retention_days = $2 WHERE id = $1"),
            args![tenant, days],
        )];
        if let Some(rules) = rules {
            statements.push((
                SqlStr::from_static("DELETE FROM recording_retention_rules WHERE tenant_id = $1"),
                args![tenant],
            ));
            for r in rules {
                statements.push((
                    SqlStr::from_static(
                        "INSERT INTO recording_retention_rules \
                         (tenant_id, scope, scope_id, days) VALUES ($1, $2, $3, $4)",
                    ),
                    args![tenant, r.scope.as_str(), r.id, r.days],
                ));
            }
        }
        self.batch(statements).await?;
        self.insert_audit(audit).await
    }

    /// A tenant's retention: its days (`None`: kept until deleted) and its rules, queues
    /// first, each by id.
    pub async fn recording_retention(
        &self,
        tenant: TenantId,
    ) -> Result<(Option<i32>, Vec<RetentionRule>), StoreError> {
        let days: Option<TenantDays> = self
            .fetch_optional(
                Use::Read,
                "SELECT recording_retention_days FROM tenants WHERE id = $1",
                args![tenant],
            )
            .await?;
        let rules = self
            .fetch_all(
                Use::Read,
                "SELECT scope, scope_id, days FROM recording_retention_rules \
                 WHERE tenant_id = $1 ORDER BY scope DESC, scope_id",
                args![tenant],
            )
            .await?;
        Ok((days.and_then(|d| d.0), rules))
    }

    /// Every tenant with a retention of some kind (days or a rule): the sweep's round.
    pub async fn tenants_with_retention(&self) -> Result<Vec<TenantId>, StoreError> {
        let rows: Vec<TenantOnly> = self
            .fetch_all(
                Use::Read,
                "SELECT id FROM tenants WHERE recording_retention_days IS NOT NULL \
                 UNION SELECT tenant_id FROM recording_retention_rules ORDER BY 1",
                args![],
            )
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

/// A recording past its retention, with the days that applied and where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PastRetention {
    pub object: ObjectRow,
    pub days: i64,
    /// `campaign`, `queue` or `tenant`.
    pub rule: String,
}

impl FromStoreRow for PastRetention {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(PastRetention {
            object: ObjectRow::from_row(row)?,
            days: i64::from(row.i32("keep_days")?),
            rule: row.string("rule")?,
        })
    }
}

/// What a retention rule covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetentionScope {
    Queue,
    Campaign,
}

impl RetentionScope {
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionScope::Queue => "queue",
            RetentionScope::Campaign => "campaign",
        }
    }
}

/// Days a queue's or a campaign's recordings are kept (store ids), whatever the tenant's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionRule {
    pub scope: RetentionScope,
    pub id: i64,
    pub days: i32,
}

impl FromStoreRow for RetentionRule {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        let scope = match row.string("scope")?.as_str() {
            "queue" => RetentionScope::Queue,
            "campaign" => RetentionScope::Campaign,
            other => {
                return Err(StoreError::Internal(format!(
                    "recording_retention_rules.scope {other:?}"
                )));
            }
        };
        Ok(RetentionRule {
            scope,
            id: row.i64("scope_id")?,
            days: row.i32("days")?,
        })
    }
}

struct TenantDays(Option<i32>);

impl FromStoreRow for TenantDays {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(TenantDays(row.opt_i32("recording_retention_days")?))
    }
}

struct TenantOnly(TenantId);

impl FromStoreRow for TenantOnly {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(TenantOnly(row.tenant("id")?))
    }
}
