//! Tenants: created and disabled by platform admins, never deleted.

use uuid::Uuid;

use super::rows::{TextIdRow, tenant_cols};
use super::{AuditEntry, AuditWrite, Store, StoreError, Tenant, Use, args, check_name, now_ms};
use crate::model::TenantId;

impl Store {
    /// A new, enabled tenant. `Conflict { what: "tenant name" }` if the name is taken. The
    /// audit row's tenant is `audit.tenant` (usually None: a platform admin acted).
    pub async fn create_tenant(
        &self,
        name: &str,
        audit: &AuditEntry<'_>,
    ) -> Result<Tenant, StoreError> {
        check_name("name", name)?;
        let tenant = Tenant {
            id: TenantId(Uuid::now_v7()),
            name: name.to_owned(),
            disabled: false,
            created_at_ms: now_ms(),
        };
        let inserted: Option<TextIdRow> = self
            .change(
                "tenant name",
                "INSERT INTO tenants (id, name, disabled, created_at) \
                 VALUES ($1, $2, FALSE, $3) RETURNING id",
                args![tenant.id, name, tenant.created_at_ms],
                AuditWrite {
                    entry: audit,
                    tenant: audit.tenant,
                },
                |row: &TextIdRow| row.0.clone(),
            )
            .await?;
        inserted
            .map(|_| tenant)
            .ok_or_else(|| StoreError::Internal("INSERT ... RETURNING returned no row".into()))
    }

    /// Every tenant, by name.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        const SQL: &str = concat!("SELECT ", tenant_cols!(), " FROM tenants ORDER BY name, id");
        self.fetch_all(Use::Read, SQL, args![]).await
    }

    pub async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        const SQL: &str = concat!("SELECT ", tenant_cols!(), " FROM tenants WHERE id = $1");
        self.fetch_optional(Use::Read, SQL, args![id]).await
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        const SQL: &str = concat!("SELECT ", tenant_cols!(), " FROM tenants WHERE name = $1");
        self.fetch_optional(Use::Read, SQL, args![name]).await
    }

    /// Disables (or re-enables) a tenant: its keys stop authenticating at once; its data stays.
    /// False if there is no such tenant (nothing written then, audit included).
    pub async fn set_tenant_disabled(
        &self,
        id: TenantId,
        disabled: bool,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let changed: Option<TextIdRow> = self
            .change(
                "tenant",
                "UPDATE tenants SET disabled = $2 WHERE id = $1 RETURNING id",
                args![id, disabled],
                AuditWrite {
                    entry: audit,
                    tenant: audit.tenant,
                },
                |_: &TextIdRow| audit.object_id.clone(),
            )
            .await?;
        Ok(changed.is_some())
    }
}
