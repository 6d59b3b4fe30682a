//! Inbound routing's documents (migration 0015): IVR menus stored apart from any flow, flows,
//! and the number plan (numbers to flows, and a default flow per tenant). Each document is the
//! dialplan crate's, one row each, validated whole by the route before it is written; what a
//! flow or a number uses is checked by the route too (under `Runtime::config_writes`), the
//! foreign keys from numbers to flows being the backstop.

use serde_json::Value;

use super::rows::{FromStoreRow, IdRow, RowExt};
use super::{AuditEntry, AuditWrite, Store, StoreError, Use, check_name, now_ms};
use crate::model::TenantId;

/// A stored document (an IVR menu or a flow): its name and its document in `config`.
#[derive(Clone, Debug, PartialEq)]
pub struct DocRow {
    pub id: i64,
    pub tenant: TenantId,
    pub name: String,
    pub config: Value,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// An IVR menu as stored.
pub type MenuRow = DocRow;
/// A flow as stored.
pub type FlowRow = DocRow;

impl FromStoreRow for DocRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(DocRow {
            id: row.i64("id")?,
            tenant: row.tenant("tenant_id")?,
            name: row.string("name")?,
            config: row.json("config")?,
            created_at_ms: row.i64("created_at")?,
            updated_at_ms: row.i64("updated_at")?,
        })
    }
}

/// A number of the plan: as the tenant wrote it, its comparison form, its flow.
#[derive(Clone, Debug, PartialEq)]
pub struct NumberRow {
    pub id: i64,
    pub tenant: TenantId,
    pub number: String,
    pub number_key: String,
    pub flow_id: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl FromStoreRow for NumberRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(NumberRow {
            id: row.i64("id")?,
            tenant: row.tenant("tenant_id")?,
            number: row.string("number")?,
            number_key: row.string("number_key")?,
            flow_id: row.i64("flow_id")?,
            created_at_ms: row.i64("created_at")?,
            updated_at_ms: row.i64("updated_at")?,
        })
    }
}

/// The `flow_id` column alone.
#[derive(Debug)]
struct FlowIdRow(i64);

impl FromStoreRow for FlowIdRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(FlowIdRow(row.i64("flow_id")?))
    }
}

macro_rules! doc_cols {
    () => {
        "id, tenant_id, name, config, created_at, updated_at"
    };
}
macro_rules! number_cols {
    () => {
        "id, tenant_id, number, number_key, flow_id, created_at, updated_at"
    };
}

/// The statements of one document table, `&'static str` each.
struct DocSql {
    /// The unique name, for `Conflict { what }`.
    name_taken: &'static str,
    what: &'static str,
    insert: &'static str,
    get: &'static str,
    list: &'static str,
    update: &'static str,
    delete: &'static str,
}

macro_rules! doc_sql {
    ($table:literal, $what:literal) => {
        DocSql {
            name_taken: concat!($what, " name"),
            what: $what,
            insert: concat!(
                "INSERT INTO ",
                $table,
                " (tenant_id, name, config, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) RETURNING id"
            ),
            get: concat!(
                "SELECT ",
                doc_cols!(),
                " FROM ",
                $table,
                " WHERE tenant_id = $1 AND id = $2"
            ),
            list: concat!(
                "SELECT ",
                doc_cols!(),
                " FROM ",
                $table,
                " WHERE tenant_id = $1 ORDER BY id"
            ),
            update: concat!(
                "UPDATE ",
                $table,
                " SET name = $3, config = $4, updated_at = $5 \
                 WHERE tenant_id = $1 AND id = $2 RETURNING ",
                doc_cols!()
            ),
            delete: concat!(
                "DELETE FROM ",
                $table,
                " WHERE tenant_id = $1 AND id = $2 RETURNING id"
            ),
        }
    };
}

const MENUS: DocSql = doc_sql!("ivr_menus", "IVR menu");
const FLOWS: DocSql = doc_sql!("flows", "flow");

fn tenant_audit<'e, 'a>(tenant: TenantId, entry: &'e AuditEntry<'a>) -> AuditWrite<'e, 'a> {
    AuditWrite {
        entry,
        tenant: Some(tenant),
    }
}

impl Store {
    async fn create_doc(
        &self,
        sql: &DocSql,
        tenant: TenantId,
        name: &str,
        config: Value,
        audit: &AuditEntry<'_>,
    ) -> Result<DocRow, StoreError> {
        check_name("name", name)?;
        let now = now_ms();
        let id = self
            .change(
                sql.name_taken,
                sql.insert,
                args![tenant, name, config.to_string(), now],
                tenant_audit(tenant, audit),
                |row: &IdRow| row.0.to_string(),
            )
            .await?
            .ok_or_else(|| StoreError::Internal("INSERT ... RETURNING returned no row".into()))?;
        Ok(DocRow {
            id: id.0,
            tenant,
            name: name.to_owned(),
            config,
            created_at_ms: now,
            updated_at_ms: now,
        })
    }

    async fn update_doc(
        &self,
        sql: &DocSql,
        tenant: TenantId,
        id: i64,
        name: &str,
        config: Value,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<DocRow>, StoreError> {
        check_name("name", name)?;
        self.change(
            sql.name_taken,
            sql.update,
            args![tenant, id, name, config.to_string(), now_ms()],
            tenant_audit(tenant, audit),
            |row: &DocRow| row.id.to_string(),
        )
        .await
    }

    async fn delete_doc(
        &self,
        sql: &DocSql,
        tenant: TenantId,
        id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let deleted: Option<IdRow> = self
            .change(
                sql.what,
                sql.delete,
                args![tenant, id],
                tenant_audit(tenant, audit),
                |row: &IdRow| row.0.to_string(),
            )
            .await?;
        Ok(deleted.is_some())
    }

    /// `Conflict { what: "IVR menu name" }` if the tenant has one of that name.
    pub async fn create_menu(
        &self,
        tenant: TenantId,
        name: &str,
        config: Value,
        audit: &AuditEntry<'_>,
    ) -> Result<MenuRow, StoreError> {
        self.create_doc(&MENUS, tenant, name, config, audit).await
    }

    pub async fn get_menu(&self, tenant: TenantId, id: i64) -> Result<Option<MenuRow>, StoreError> {
        self.fetch_optional(Use::Read, MENUS.get, args![tenant, id])
            .await
    }

    pub async fn list_menus(&self, tenant: TenantId) -> Result<Vec<MenuRow>, StoreError> {
        self.fetch_all(Use::Read, MENUS.list, args![tenant]).await
    }

    /// Replaces name and document; None if the tenant has no such menu (nothing written).
    pub async fn update_menu(
        &self,
        tenant: TenantId,
        id: i64,
        name: &str,
        config: Value,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<MenuRow>, StoreError> {
        self.update_doc(&MENUS, tenant, id, name, config, audit)
            .await
    }

    /// False if the tenant has no such menu (nothing written then).
    pub async fn delete_menu(
        &self,
        tenant: TenantId,
        id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        self.delete_doc(&MENUS, tenant, id, audit).await
    }

    /// `Conflict { what: "flow name" }` if the tenant has one of that name.
    pub async fn create_flow(
        &self,
        tenant: TenantId,
        name: &str,
        config: Value,
        audit: &AuditEntry<'_>,
    ) -> Result<FlowRow, StoreError> {
        self.create_doc(&FLOWS, tenant, name, config, audit).await
    }

    pub async fn get_flow(&self, tenant: TenantId, id: i64) -> Result<Option<FlowRow>, StoreError> {
        self.fetch_optional(Use::Read, FLOWS.get, args![tenant, id])
            .await
    }

    pub async fn list_flows(&self, tenant: TenantId) -> Result<Vec<FlowRow>, StoreError> {
        self.fetch_all(Use::Read, FLOWS.list, args![tenant]).await
    }

    /// Replaces name and document; None if the tenant has no such flow (nothing written).
    pub async fn update_flow(
        &self,
        tenant: TenantId,
        id: i64,
        name: &str,
        config: Value,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<FlowRow>, StoreError> {
        self.update_doc(&FLOWS, tenant, id, name, config, audit)
            .await
    }

    /// False if the tenant has no such flow (nothing written then). The route first checks
    /// that no number uses it.
    pub async fn delete_flow(
        &self,
        tenant: TenantId,
        id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        self.delete_doc(&FLOWS, tenant, id, audit).await
    }

    pub async fn list_numbers(&self, tenant: TenantId) -> Result<Vec<NumberRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            number_cols!(),
            " FROM numbers WHERE tenant_id = $1 ORDER BY id"
        );
        self.fetch_all(Use::Read, SQL, args![tenant]).await
    }

    pub async fn get_number(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<Option<NumberRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            number_cols!(),
            " FROM numbers WHERE tenant_id = $1 AND id = $2"
        );
        self.fetch_optional(Use::Read, SQL, args![tenant, id]).await
    }

    /// `Conflict { what: "number" }` if any tenant has a number of that comparison form.
    pub async fn create_number(
        &self,
        tenant: TenantId,
        number: &str,
        number_key: &str,
        flow_id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<NumberRow, StoreError> {
        const SQL: &str = concat!(
            "INSERT INTO numbers (tenant_id, number, number_key, flow_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING ",
            number_cols!()
        );
        self.change(
            "number",
            SQL,
            args![tenant, number, number_key, flow_id, now_ms()],
            tenant_audit(tenant, audit),
            |row: &NumberRow| row.id.to_string(),
        )
        .await?
        .ok_or_else(|| StoreError::Internal("INSERT ... RETURNING returned no row".into()))
    }

    /// None if the tenant has no such number (nothing written then); `Conflict` as above.
    pub async fn update_number(
        &self,
        tenant: TenantId,
        id: i64,
        number: &str,
        number_key: &str,
        flow_id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<NumberRow>, StoreError> {
        const SQL: &str = concat!(
            "UPDATE numbers SET number = $3, number_key = $4, flow_id = $5, updated_at = $6 \
             WHERE tenant_id = $1 AND id = $2 RETURNING ",
            number_cols!()
        );
        self.change(
            "number",
            SQL,
            args![tenant, id, number, number_key, flow_id, now_ms()],
            tenant_audit(tenant, audit),
            |row: &NumberRow| row.id.to_string(),
        )
        .await
    }

    /// False if the tenant has no such number (nothing written then).
    pub async fn delete_number(
        &self,
        tenant: TenantId,
        id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let deleted: Option<IdRow> = self
            .change(
                "number",
                "DELETE FROM numbers WHERE tenant_id = $1 AND id = $2 RETURNING id",
                args![tenant, id],
                tenant_audit(tenant, audit),
                |row: &IdRow| row.0.to_string(),
            )
            .await?;
        Ok(deleted.is_some())
    }

    /// The tenant's default flow (for numbers the plan does not name), if it has one.
    pub async fn default_flow(&self, tenant: TenantId) -> Result<Option<i64>, StoreError> {
        let row: Option<FlowIdRow> = self
            .fetch_optional(
                Use::Read,
                "SELECT flow_id FROM number_defaults WHERE tenant_id = $1",
                args![tenant],
            )
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Sets (or replaces) the tenant's default flow.
    pub async fn set_default_flow(
        &self,
        tenant: TenantId,
        flow_id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<(), StoreError> {
        let set: Option<FlowIdRow> = self
            .change(
                "default flow",
                "INSERT INTO number_defaults (tenant_id, flow_id, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id) DO UPDATE SET flow_id = excluded.flow_id, \
                 updated_at = excluded.updated_at RETURNING flow_id",
                args![tenant, flow_id, now_ms()],
                tenant_audit(tenant, audit),
                |row: &FlowIdRow| row.0.to_string(),
            )
            .await?;
        set.map(drop)
            .ok_or_else(|| StoreError::Internal("INSERT ... RETURNING returned no row".into()))
    }

    /// False if the tenant had no default flow (nothing written then).
    pub async fn clear_default_flow(
        &self,
        tenant: TenantId,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let deleted: Option<FlowIdRow> = self
            .change(
                "default flow",
                "DELETE FROM number_defaults WHERE tenant_id = $1 RETURNING flow_id",
                args![tenant],
                tenant_audit(tenant, audit),
                |row: &FlowIdRow| row.0.to_string(),
            )
            .await?;
        Ok(deleted.is_some())
    }
}
