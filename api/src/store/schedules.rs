//! Business-hours schedules (migration 0014): the dialplan crate's `Schedule` documents, one
//! row each, validated by the route before they are written. Flows refer to them by id.

use serde_json::Value;

use super::rows::{FromStoreRow, IdRow, RowExt};
use super::{AuditEntry, AuditWrite, Store, StoreError, Use, check_name, now_ms};
use crate::model::TenantId;

/// A schedule as stored: its document in `config`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleRow {
    pub id: i64,
    pub tenant: TenantId,
    pub name: String,
    pub config: Value,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

macro_rules! schedule_cols {
    () => {
        "id, tenant_id, name, config, created_at, updated_at"
    };
}

impl FromStoreRow for ScheduleRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(ScheduleRow {
            id: row.i64("id")?,
            tenant: row.tenant("tenant_id")?,
            name: row.string("name")?,
            config: row.json("config")?,
            created_at_ms: row.i64("created_at")?,
            updated_at_ms: row.i64("updated_at")?,
        })
    }
}

fn tenant_audit<'e, 'a>(tenant: TenantId, entry: &'e AuditEntry<'a>) -> AuditWrite<'e, 'a> {
    AuditWrite {
        entry,
        tenant: Some(tenant),
    }
}

impl Store {
    /// `Conflict { what: "schedule name" }` if the tenant has one of that name.
    pub async fn create_schedule(
        &self,
        tenant: TenantId,
        name: &str,
        config: Value,
        audit: &AuditEntry<'_>,
    ) -> Result<ScheduleRow, StoreError> {
        check_name("name", name)?;
        let now = now_ms();
        let id = self
            .change(
                "schedule name",
                "INSERT INTO schedules (tenant_id, name, config, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) RETURNING id",
                args![tenant, name, config.to_string(), now],
                tenant_audit(tenant, audit),
                |row: &IdRow| row.0.to_string(),
            )
            .await?
            .ok_or_else(|| StoreError::Internal("INSERT ... RETURNING returned no row".into()))?;
        Ok(ScheduleRow {
            id: id.0,
            tenant,
            name: name.to_owned(),
            config,
            created_at_ms: now,
            updated_at_ms: now,
        })
    }

    pub async fn get_schedule(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<Option<ScheduleRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            schedule_cols!(),
            " FROM schedules WHERE tenant_id = $1 AND id = $2"
        );
        self.fetch_optional(Use::Read, SQL, args![tenant, id]).await
    }

    pub async fn list_schedules(&self, tenant: TenantId) -> Result<Vec<ScheduleRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            schedule_cols!(),
            " FROM schedules WHERE tenant_id = $1 ORDER BY id"
        );
        self.fetch_all(Use::Read, SQL, args![tenant]).await
    }

    /// Renames and/or replaces the document (None leaves it); None if the tenant has no such
    /// schedule (nothing written then).
    pub async fn update_schedule(
        &self,
        tenant: TenantId,
        id: i64,
        name: Option<&str>,
        config: Option<Value>,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<ScheduleRow>, StoreError> {
        if let Some(name) = name {
            check_name("name", name)?;
        }
        const SQL: &str = concat!(
            "UPDATE schedules SET name = COALESCE($3, name), config = COALESCE($4, config), \
             updated_at = $5 WHERE tenant_id = $1 AND id = $2 RETURNING ",
            schedule_cols!()
        );
        self.change(
            "schedule name",
            SQL,
            args![tenant, id, name, config.map(|c| c.to_string()), now_ms()],
            tenant_audit(tenant, audit),
            |row: &ScheduleRow| row.id.to_string(),
        )
        .await
    }

    /// False if the tenant has no such schedule (nothing written then).
    pub async fn delete_schedule(
        &self,
        tenant: TenantId,
        id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let deleted: Option<IdRow> = self
            .change(
                "schedule",
                "DELETE FROM schedules WHERE tenant_id = $1 AND id = $2 RETURNING id",
                args![tenant, id],
                tenant_audit(tenant, audit),
                |row: &IdRow| row.0.to_string(),
            )
            .await?;
        Ok(deleted.is_some())
    }
}
