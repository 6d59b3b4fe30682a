//! The wallboard's stored state (migration 0023): each tenant's tile thresholds, and the open
//! interval's counters carried over a graceful restart (`crate::wallboard`).

use serde_json::Value;

use super::rows::{FromStoreRow, RowExt, TextIdRow};
use super::{AuditEntry, AuditWrite, Store, StoreError, Use, now_ms};
use crate::model::TenantId;

/// Carried rows are kept this long (the wallboard reads today's only).
const CARRY_KEEP_MS: i64 = 3 * 86_400_000;

/// The most carried rows one read returns (a stop writes one per queue; a day has few stops).
const MAX_CARRY_ROWS: i64 = 100_000;

struct SettingsRow(Value);

impl FromStoreRow for SettingsRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(SettingsRow(row.json("settings")?))
    }
}

/// One queue's counters of an interval that was open at a graceful stop.
#[derive(Clone, Debug, PartialEq)]
pub struct CarryRow {
    pub tenant: TenantId,
    /// The queue's store id.
    pub queue_id: i64,
    /// The interval's start (unix ms).
    pub start_ms: i64,
    /// `crate::wallboard::counters_json`.
    pub counters: Value,
}

impl FromStoreRow for CarryRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(CarryRow {
            tenant: row.tenant("tenant_id")?,
            queue_id: row.i64("queue_id")?,
            start_ms: row.i64("start_ms")?,
            counters: row.json("counters")?,
        })
    }
}

impl Store {
    /// The tenant's stored wallboard settings (None: never set, the defaults apply).
    pub async fn wallboard_settings(&self, tenant: TenantId) -> Result<Option<Value>, StoreError> {
        const SQL: &str = "SELECT settings FROM wallboard_settings WHERE tenant_id = $1";
        let row: Option<SettingsRow> = self.fetch_optional(Use::Read, SQL, args![tenant]).await?;
        Ok(row.map(|r| r.0))
    }

    /// Stores the tenant's wallboard settings (checked by the caller), audited.
    pub async fn put_wallboard_settings(
        &self,
        tenant: TenantId,
        settings: &Value,
        audit: &AuditEntry<'_>,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO wallboard_settings (tenant_id, settings, updated_at) \
             VALUES ($1, $2, $3) ON CONFLICT (tenant_id) DO UPDATE SET \
             settings = excluded.settings, updated_at = excluded.updated_at \
             RETURNING tenant_id AS id";
        let changed: Option<TextIdRow> = self
            .change(
                "wallboard settings",
                SQL,
                args![tenant, settings, now_ms()],
                AuditWrite {
                    entry: audit,
                    tenant: Some(tenant),
                },
                |row: &TextIdRow| row.0.clone(),
            )
            .await?;
        changed
            .map(|_| ())
            .ok_or_else(|| StoreError::Internal("INSERT ... RETURNING returned no row".into()))
    }

    /// Files the open interval's counters at a graceful stop (one transaction), and forgets
    /// carried rows older than a few days.
    pub async fn insert_wallboard_carry(&self, rows: &[CarryRow]) -> Result<(), StoreError> {
        let saved = now_ms();
        let mut statements = vec![(
            sqlx::SqlStr::from_static("DELETE FROM wallboard_carry WHERE start_ms < $1"),
            args![saved - CARRY_KEEP_MS],
        )];
        for r in rows {
            statements.push((
                sqlx::SqlStr::from_static(
                    "INSERT INTO wallboard_carry (tenant_id, queue_id, start_ms, saved_at, counters) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                ),
                args![r.tenant, r.queue_id, r.start_ms, saved, &r.counters],
            ));
        }
        self.batch(statements).await
    }

    /// The tenant's carried rows of intervals starting at or after `from_ms`.
    pub async fn wallboard_carry(
        &self,
        tenant: TenantId,
        from_ms: i64,
    ) -> Result<Vec<CarryRow>, StoreError> {
        const SQL: &str = "SELECT tenant_id, queue_id, start_ms, counters FROM wallboard_carry \
             WHERE tenant_id = $1 AND start_ms >= $2 ORDER BY start_ms, queue_id LIMIT $3";
        self.fetch_all(Use::Read, SQL, args![tenant, from_ms, MAX_CARRY_ROWS])
            .await
    }
}
