//! The wallboard's stored state (migration 0023): each tenant's tile thresholds.

use serde_json::Value;

use super::rows::{FromStoreRow, RowExt, TextIdRow};
use super::{AuditEntry, AuditWrite, Store, StoreError, Use, now_ms};
use crate::model::TenantId;

struct SettingsRow(Value);

impl FromStoreRow for SettingsRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(SettingsRow(row.json("settings")?))
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
}
