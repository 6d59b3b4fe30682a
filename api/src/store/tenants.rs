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
            grants: crate::grants::DialGrants::default(),
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

    /// A new tenant that may reach what `grants` allow (the platform admin's two steps at once).
    pub async fn create_tenant_granted(
        &self,
        name: &str,
        grants: &crate::grants::DialGrants,
        audit: &AuditEntry<'_>,
    ) -> Result<Tenant, StoreError> {
        let mut t = self.create_tenant(name, audit).await?;
        self.set_tenant_grants(t.id, grants, audit).await?;
        t.grants = grants.clone();
        Ok(t)
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

    /// Replaces what a tenant may reach (checked by the caller). False if there is no such
    /// tenant (nothing written then, audit included).
    pub async fn set_tenant_grants(
        &self,
        id: TenantId,
        grants: &crate::grants::DialGrants,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(grants)
            .map_err(|e| StoreError::Internal(format!("grants: {e}")))?;
        self.update_tenant(
            "UPDATE tenants SET grants = $2 WHERE id = $1 RETURNING id",
            args![id, json],
            audit,
        )
        .await
    }

    /// One audited UPDATE of a tenant row (`$1` its id); false if there is no such tenant.
    async fn update_tenant(
        &self,
        sql: &'static str,
        args: Vec<crate::store::Arg>,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let changed: Option<TextIdRow> = self
            .change(
                "tenant",
                sql,
                args,
                AuditWrite {
                    entry: audit,
                    tenant: audit.tenant,
                },
                |_: &TextIdRow| audit.object_id.clone(),
            )
            .await?;
        Ok(changed.is_some())
    }

    /// What `tenant` may reach; no grants (reaches nothing) for an unknown tenant.
    pub async fn tenant_grants(
        &self,
        tenant: TenantId,
    ) -> Result<crate::grants::DialGrants, StoreError> {
        Ok(self
            .get_tenant(tenant)
            .await?
            .map(|t| t.grants)
            .unwrap_or_default())
    }

    /// Disables (or re-enables) a tenant: its keys stop authenticating at once; its data stays.
    /// False if there is no such tenant (nothing written then, audit included).
    pub async fn set_tenant_disabled(
        &self,
        id: TenantId,
        disabled: bool,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        self.update_tenant(
            "UPDATE tenants SET disabled = $2 WHERE id = $1 RETURNING id",
            args![id, disabled],
            audit,
        )
        .await
    }
}

/// A row of `platform_secrets`: its value.
struct SecretRow(String);

impl super::rows::FromStoreRow for SecretRow {
    fn from_row<R: super::rows::RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(SecretRow(row.string("value")?))
    }
}

impl Store {
    /// The key of the ids the API shows (`crate::ids`): made at random on first use; every
    /// instance on this database reads the same one. Two instances starting at once both try to
    /// insert, one wins, and both read the winner's.
    pub async fn id_secret(&self) -> Result<Vec<u8>, StoreError> {
        self.platform_secret("ids").await
    }

    /// The key that signs playback URLs (`routes::recording_media`), made like the ids key.
    pub async fn playback_secret(&self) -> Result<Vec<u8>, StoreError> {
        self.platform_secret("playback").await
    }

    /// A platform secret by name: 32 random bytes made on first use, the same for every
    /// instance on this database (two racing to make it both read the winner's).
    async fn platform_secret(&self, name: &'static str) -> Result<Vec<u8>, StoreError> {
        const READ: &str = "SELECT value FROM platform_secrets WHERE name = $1";
        let decode = |v: String| {
            hex::decode(v).map_err(|e| StoreError::Internal(format!("{name} secret: {e}")))
        };
        if let Some(SecretRow(v)) = self.fetch_optional(Use::Write, READ, args![name]).await? {
            return decode(v);
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Internal(format!("random: {e}")))?;
        self.execute(
            "INSERT INTO platform_secrets (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
            args![name, hex::encode(bytes)],
        )
        .await?;
        let Some(SecretRow(v)) = self.fetch_optional(Use::Write, READ, args![name]).await? else {
            return Err(StoreError::Internal(format!("{name} secret vanished")));
        };
        decode(v)
    }
}
