//! Tenant configuration: skills, queues, agents and queue membership.
//!
//! Every statement matches the tenant in its WHERE clause (or joins through an object that
//! does), so another tenant's object reads as absent and cannot be changed. Changes write their
//! audit row in the same transaction, with the object's tenant.

use serde_json::{Value, json};

use super::rows::{FromStoreRow, IdRow, RowExt, TextIdRow, agent_cols, queue_cols, skill_cols};
use super::{
    AgentRow, Arg, AuditEntry, AuditWrite, INSERT_AUDIT, Inner, MemberRow, QueueRow, Skill, Store,
    StoreError, Use, audit_args, check_name, now_ms,
};
use crate::model::TenantId;

/// Every campaign of a tenant with its settings (the queue it dials for is `config.queue`).
const CAMPAIGN_QUEUES: &str = "SELECT id, config FROM campaigns WHERE tenant_id = $1 ORDER BY id";

/// A campaign's id and settings, for [`users_of`].
struct CampaignQueue {
    id: i64,
    config: Value,
}

impl FromStoreRow for CampaignQueue {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(CampaignQueue {
            id: row.i64("id")?,
            config: row.json("config")?,
        })
    }
}

/// The campaigns (ascending) whose `config.queue` is `queue`.
fn users_of(campaigns: &[CampaignQueue], queue: i64) -> Vec<i64> {
    campaigns
        .iter()
        .filter(|c| c.config.get("queue").and_then(Value::as_i64) == Some(queue))
        .map(|c| c.id)
        .collect()
}

fn tenant_audit<'e, 'a>(tenant: TenantId, entry: &'e AuditEntry<'a>) -> AuditWrite<'e, 'a> {
    AuditWrite {
        entry,
        tenant: Some(tenant),
    }
}

fn check_tier(field: &'static str, value: i32) -> Result<(), StoreError> {
    if value < 0 {
        return Err(StoreError::invalid(field, "must not be negative"));
    }
    Ok(())
}

macro_rules! member_select {
    () => {
        "SELECT q.tenant_id, m.queue_id, m.agent_id, m.level, m.position, m.weight \
         FROM queue_members m JOIN queues q ON q.id = m.queue_id"
    };
}

impl Store {
    // -----------------------------------------------------------------------------------------
    // Skills

    /// `Conflict { what: "skill name" }` if the tenant has one of that name; `NotFound` if the
    /// tenant does not exist.
    pub async fn create_skill(
        &self,
        tenant: TenantId,
        name: &str,
        audit: &AuditEntry<'_>,
    ) -> Result<Skill, StoreError> {
        check_name("name", name)?;
        let id = self
            .change(
                "skill name",
                "INSERT INTO skills (tenant_id, name) VALUES ($1, $2) RETURNING id",
                args![tenant, name],
                tenant_audit(tenant, audit),
                |row: &IdRow| row.0.to_string(),
            )
            .await?
            .ok_or_else(no_row)?;
        Ok(Skill {
            id: id.0,
            tenant,
            name: name.to_owned(),
        })
    }

    pub async fn list_skills(&self, tenant: TenantId) -> Result<Vec<Skill>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            skill_cols!(),
            " FROM skills WHERE tenant_id = $1 ORDER BY id"
        );
        self.fetch_all(Use::Read, SQL, args![tenant]).await
    }

    /// False if the tenant has no such skill (nothing written then).
    pub async fn delete_skill(
        &self,
        tenant: TenantId,
        id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let deleted: Option<IdRow> = self
            .change(
                "skill",
                "DELETE FROM skills WHERE tenant_id = $1 AND id = $2 RETURNING id",
                args![tenant, id],
                tenant_audit(tenant, audit),
                |row: &IdRow| row.0.to_string(),
            )
            .await?;
        Ok(deleted.is_some())
    }

    // -----------------------------------------------------------------------------------------
    // Queues

    /// `Conflict { what: "queue name" }` if the tenant has one of that name; `NotFound` if the
    /// tenant does not exist.
    pub async fn create_queue(
        &self,
        tenant: TenantId,
        name: &str,
        config: Value,
        audit: &AuditEntry<'_>,
    ) -> Result<QueueRow, StoreError> {
        check_name("name", name)?;
        let now = now_ms();
        let id = self
            .change(
                "queue name",
                "INSERT INTO queues (tenant_id, name, config, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) RETURNING id",
                args![tenant, name, &config, now],
                tenant_audit(tenant, audit),
                |row: &IdRow| row.0.to_string(),
            )
            .await?
            .ok_or_else(no_row)?;
        Ok(QueueRow {
            id: id.0,
            tenant,
            name: name.to_owned(),
            config,
            created_at_ms: now,
            updated_at_ms: now,
        })
    }

    pub async fn get_queue(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<Option<QueueRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            queue_cols!(),
            " FROM queues WHERE tenant_id = $1 AND id = $2"
        );
        self.fetch_optional(Use::Read, SQL, args![tenant, id]).await
    }

    pub async fn list_queues(&self, tenant: TenantId) -> Result<Vec<QueueRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            queue_cols!(),
            " FROM queues WHERE tenant_id = $1 ORDER BY id"
        );
        self.fetch_all(Use::Read, SQL, args![tenant]).await
    }

    /// Every tenant's queues (the engine loads them at start).
    pub async fn all_queues(&self) -> Result<Vec<QueueRow>, StoreError> {
        const SQL: &str = concat!("SELECT ", queue_cols!(), " FROM queues ORDER BY id");
        self.fetch_all(Use::Read, SQL, args![]).await
    }

    /// Renames and/or replaces the config (None leaves it); `updated_at` moves either way.
    /// None if the tenant has no such queue (nothing written then); `Conflict { what: "queue
    /// name" }` on a rename to a taken name.
    pub async fn update_queue(
        &self,
        tenant: TenantId,
        id: i64,
        name: Option<&str>,
        config: Option<Value>,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<QueueRow>, StoreError> {
        if let Some(name) = name {
            check_name("name", name)?;
        }
        const SQL: &str = concat!(
            "UPDATE queues SET name = COALESCE($3, name), config = COALESCE($4, config), \
             updated_at = $5 WHERE tenant_id = $1 AND id = $2 RETURNING ",
            queue_cols!()
        );
        self.change(
            "queue name",
            SQL,
            args![tenant, id, name, config.map(|c| c.to_string()), now_ms()],
            tenant_audit(tenant, audit),
            |row: &QueueRow| row.id.to_string(),
        )
        .await
    }

    /// Puts a queue's name, config and `updated_at` back as `prev` holds them, with its audit
    /// row (the undo of an update the engine refused). None if the queue is gone meanwhile;
    /// `Conflict` if its old name was taken meanwhile.
    pub async fn restore_queue(
        &self,
        prev: &QueueRow,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<QueueRow>, StoreError> {
        const SQL: &str = concat!(
            "UPDATE queues SET name = $3, config = $4, updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2 RETURNING ",
            queue_cols!()
        );
        self.change(
            "queue name",
            SQL,
            args![
                prev.tenant,
                prev.id,
                prev.name.as_str(),
                prev.config.to_string(),
                prev.updated_at_ms
            ],
            tenant_audit(prev.tenant, audit),
            |row: &QueueRow| row.id.to_string(),
        )
        .await
    }

    /// Keeps a queue's pause in its stored config (so a restart does not silently resume it),
    /// with the audit entry; an outage journals it (see [`super::spool`]). The audit entry's
    /// detail records when it was asked for (`requested_at_ms`): a replay writes later.
    pub async fn set_queue_paused(
        &self,
        tenant: TenantId,
        id: i64,
        paused: bool,
        audit: &AuditEntry<'_>,
    ) -> Result<(), StoreError> {
        let at = now_ms();
        let mut entry = audit.clone();
        entry.detail = serde_json::json!({ "requested_at_ms": at });
        if let Some(done) = self
            .spooled(|| super::spool::Op::QueuePaused {
                tenant,
                queue: id,
                paused,
                audit: super::spool::JournalAudit::of(&entry, at),
            })
            .await
        {
            return done;
        }
        self.set_queue_paused_now(tenant, id, paused, &entry)
            .await
            .map(|_| ())
    }

    /// [`Store::set_queue_paused`] without the journal. False if the tenant has no such queue.
    pub(crate) async fn set_queue_paused_now(
        &self,
        tenant: TenantId,
        id: i64,
        paused: bool,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let Some(row) = self.get_queue(tenant, id).await? else {
            return Ok(false);
        };
        let mut config = row.config;
        if let Some(obj) = config.as_object_mut() {
            obj.insert("paused".to_owned(), Value::Bool(paused));
        }
        Ok(self
            .update_queue(tenant, id, None, Some(config), audit)
            .await?
            .is_some())
    }

    /// The tenant's campaigns that dial for the queue, whatever their state (a completed one
    /// still names it, and an update of it checks that the queue is there), ascending.
    pub async fn campaigns_using_queue(
        &self,
        tenant: TenantId,
        queue: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<CampaignQueue> = self
            .fetch_all(Use::Read, CAMPAIGN_QUEUES, args![tenant])
            .await?;
        Ok(users_of(&rows, queue))
    }

    /// Deletes the queue and its memberships. False if the tenant has no such queue;
    /// [`StoreError::InUse`] (nothing written) while a campaign names it, checked in the same
    /// transaction.
    pub async fn delete_queue(
        &self,
        tenant: TenantId,
        id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let check_args = args![tenant];
        let delete_args = args![tenant, id];
        let audit_row = audit_args(&tenant_audit(tenant, audit), id.to_string());
        with_pool!(self, Use::Write, |pool| {
            let mut tx = pool.begin().await?;
            let campaigns: Vec<CampaignQueue> =
                bind_args!(sqlx::query(CAMPAIGN_QUEUES), &check_args)
                    .fetch_all(&mut *tx)
                    .await?
                    .iter()
                    .map(CampaignQueue::from_row)
                    .collect::<Result<_, _>>()?;
            let users = users_of(&campaigns, id);
            if !users.is_empty() {
                tx.rollback().await?;
                return Err(StoreError::InUse {
                    what: "queue",
                    campaigns: users,
                });
            }
            let deleted = bind_args!(
                sqlx::query("DELETE FROM queues WHERE tenant_id = $1 AND id = $2 RETURNING id"),
                &delete_args
            )
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "queue"))?;
            if deleted.is_none() {
                tx.rollback().await?;
                return Ok(false);
            }
            bind_args!(sqlx::query(INSERT_AUDIT), &audit_row)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    // -----------------------------------------------------------------------------------------
    // Agents

    /// A new agent (presence JSON `null` until the runtime saves one). `Conflict { what:
    /// "agent name" }` if the tenant has one of that name; `NotFound` if the tenant does not
    /// exist.
    pub async fn create_agent(
        &self,
        tenant: TenantId,
        name: &str,
        config: Value,
        audit: &AuditEntry<'_>,
    ) -> Result<AgentRow, StoreError> {
        check_name("name", name)?;
        let now = now_ms();
        let id = self
            .change(
                "agent name",
                "INSERT INTO agents (tenant_id, name, config, presence, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'null', $4, $4) RETURNING id",
                args![tenant, name, &config, now],
                tenant_audit(tenant, audit),
                |row: &IdRow| row.0.to_string(),
            )
            .await?
            .ok_or_else(no_row)?;
        Ok(AgentRow {
            id: id.0,
            tenant,
            name: name.to_owned(),
            config,
            presence: Value::Null,
            created_at_ms: now,
            updated_at_ms: now,
        })
    }

    pub async fn get_agent(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<Option<AgentRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            agent_cols!(),
            " FROM agents WHERE tenant_id = $1 AND id = $2"
        );
        self.fetch_optional(Use::Read, SQL, args![tenant, id]).await
    }

    pub async fn list_agents(&self, tenant: TenantId) -> Result<Vec<AgentRow>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            agent_cols!(),
            " FROM agents WHERE tenant_id = $1 ORDER BY id"
        );
        self.fetch_all(Use::Read, SQL, args![tenant]).await
    }

    /// Every tenant's agents (the engine loads them at start).
    pub async fn all_agents(&self) -> Result<Vec<AgentRow>, StoreError> {
        const SQL: &str = concat!("SELECT ", agent_cols!(), " FROM agents ORDER BY id");
        self.fetch_all(Use::Read, SQL, args![]).await
    }

    /// As [`Store::update_queue`], for agents (`Conflict { what: "agent name" }`).
    pub async fn update_agent(
        &self,
        tenant: TenantId,
        id: i64,
        name: Option<&str>,
        config: Option<Value>,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<AgentRow>, StoreError> {
        if let Some(name) = name {
            check_name("name", name)?;
        }
        const SQL: &str = concat!(
            "UPDATE agents SET name = COALESCE($3, name), config = COALESCE($4, config), \
             updated_at = $5 WHERE tenant_id = $1 AND id = $2 RETURNING ",
            agent_cols!()
        );
        self.change(
            "agent name",
            SQL,
            args![tenant, id, name, config.map(|c| c.to_string()), now_ms()],
            tenant_audit(tenant, audit),
            |row: &AgentRow| row.id.to_string(),
        )
        .await
    }

    /// As [`Store::restore_queue`], for agents (presence is runtime state: left as it is).
    pub async fn restore_agent(
        &self,
        prev: &AgentRow,
        audit: &AuditEntry<'_>,
    ) -> Result<Option<AgentRow>, StoreError> {
        const SQL: &str = concat!(
            "UPDATE agents SET name = $3, config = $4, updated_at = $5 \
             WHERE tenant_id = $1 AND id = $2 RETURNING ",
            agent_cols!()
        );
        self.change(
            "agent name",
            SQL,
            args![
                prev.tenant,
                prev.id,
                prev.name.as_str(),
                prev.config.to_string(),
                prev.updated_at_ms
            ],
            tenant_audit(prev.tenant, audit),
            |row: &AgentRow| row.id.to_string(),
        )
        .await
    }

    /// Deletes the agent and its memberships, and revokes the keys that act for it (one
    /// `api_key.revoke` audit row each, as `audit`'s caller), all in one transaction. False,
    /// and nothing written, if the tenant has no such agent.
    pub async fn delete_agent(
        &self,
        tenant: TenantId,
        id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let revoke_args = args![tenant, id, now];
        let delete_args = args![tenant, id];
        let agent_audit = audit_args(&tenant_audit(tenant, audit), id.to_string());
        with_pool!(self, Use::Write, |pool| {
            let mut tx = pool.begin().await?;
            // Revoked before the delete: the keys' foreign key (ON DELETE SET NULL) alone would
            // leave them unbound but still able to read, and a gone agent's keys should stop.
            let revoked: Vec<TextIdRow> = bind_args!(
                sqlx::query(
                    "UPDATE api_keys SET revoked_at = $3 \
                     WHERE tenant_id = $1 AND agent_id = $2 AND revoked_at IS NULL \
                     RETURNING id"
                ),
                &revoke_args
            )
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(TextIdRow::from_row)
            .collect::<Result<_, _>>()?;
            let deleted = bind_args!(
                sqlx::query("DELETE FROM agents WHERE tenant_id = $1 AND id = $2 RETURNING id"),
                &delete_args
            )
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "agent"))?;
            if deleted.is_none() {
                tx.rollback().await?;
                return Ok(false);
            }
            bind_args!(sqlx::query(INSERT_AUDIT), &agent_audit)
                .execute(&mut *tx)
                .await?;
            for key in revoked {
                let entry = AuditEntry {
                    action: "api_key.revoke",
                    object_kind: "api_key",
                    object_id: key.0.clone(),
                    detail: json!({ "reason": "agent deleted", "agent_id": id }),
                    ..audit.clone()
                };
                let key_audit = audit_args(&tenant_audit(tenant, &entry), key.0);
                bind_args!(sqlx::query(INSERT_AUDIT), &key_audit)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Saves an agent's presence (runtime state, so no audit row; one statement, so atomic).
    /// False if the tenant has no such agent. With a journal, an outage journals it (true).
    pub async fn set_agent_presence(
        &self,
        tenant: TenantId,
        id: i64,
        presence: Value,
    ) -> Result<bool, StoreError> {
        if let Some(done) = self
            .spooled(|| super::spool::Op::Presence {
                tenant,
                agent: id,
                presence: presence.clone(),
            })
            .await
        {
            return done.map(|()| true);
        }
        let n = self
            .execute(
                "UPDATE agents SET presence = $3 WHERE tenant_id = $1 AND id = $2",
                args![tenant, id, &presence],
            )
            .await?;
        Ok(n > 0)
    }

    // -----------------------------------------------------------------------------------------
    // Queue membership

    /// Puts the agent in the queue with this tier, or changes its tier if it is there already.
    /// False (nothing written) unless both the queue and the agent are the tenant's. `level`,
    /// `position` and `weight` must not be negative.
    #[allow(clippy::too_many_arguments)] // each is a distinct column; a struct would only wrap them
    pub async fn set_member(
        &self,
        tenant: TenantId,
        queue_id: i64,
        agent_id: i64,
        level: i32,
        position: i32,
        weight: i32,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        check_tier("level", level)?;
        check_tier("position", position)?;
        check_tier("weight", weight)?;
        // INSERT ... SELECT inserts nothing unless both ids are the tenant's. (SQLite needs the
        // WHERE clause there to parse ON CONFLICT as the upsert, not as a join constraint.)
        let changed: Option<IdRow> = self
            .change(
                "member",
                "INSERT INTO queue_members (queue_id, agent_id, level, position, weight) \
                 SELECT q.id, a.id, $4, $5, $6 FROM queues q JOIN agents a ON a.tenant_id = q.tenant_id \
                 WHERE q.tenant_id = $1 AND q.id = $2 AND a.id = $3 \
                 ON CONFLICT (queue_id, agent_id) DO UPDATE SET \
                 level = excluded.level, position = excluded.position, weight = excluded.weight \
                 RETURNING queue_id AS id",
                args![tenant, queue_id, agent_id, level, position, weight],
                tenant_audit(tenant, audit),
                |_: &IdRow| audit.object_id.clone(),
            )
            .await?;
        Ok(changed.is_some())
    }

    /// Takes the agent out of the queue. False if it was not a member (or either object is not
    /// the tenant's); nothing is written then.
    pub async fn remove_member(
        &self,
        tenant: TenantId,
        queue_id: i64,
        agent_id: i64,
        audit: &AuditEntry<'_>,
    ) -> Result<bool, StoreError> {
        let removed: Option<IdRow> = self
            .change(
                "member",
                "DELETE FROM queue_members WHERE queue_id = $2 AND agent_id = $3 \
                 AND queue_id IN (SELECT id FROM queues WHERE tenant_id = $1 AND id = $2) \
                 RETURNING queue_id AS id",
                args![tenant, queue_id, agent_id],
                tenant_audit(tenant, audit),
                |_: &IdRow| audit.object_id.clone(),
            )
            .await?;
        Ok(removed.is_some())
    }

    /// The queue's members by level, position, agent. Empty if the tenant has no such queue.
    pub async fn list_members(
        &self,
        tenant: TenantId,
        queue_id: i64,
    ) -> Result<Vec<MemberRow>, StoreError> {
        const SQL: &str = concat!(
            member_select!(),
            " WHERE q.tenant_id = $1 AND m.queue_id = $2 ORDER BY m.level, m.position, m.agent_id"
        );
        self.fetch_all(Use::Read, SQL, args![tenant, queue_id])
            .await
    }

    /// One agent's memberships (after a change the engine is given the whole list again).
    pub async fn members_of_agent(
        &self,
        tenant: TenantId,
        agent_id: i64,
    ) -> Result<Vec<MemberRow>, StoreError> {
        const SQL: &str = concat!(
            member_select!(),
            " WHERE q.tenant_id = $1 AND m.agent_id = $2 ORDER BY m.queue_id"
        );
        self.fetch_all(Use::Read, SQL, args![tenant, agent_id])
            .await
    }

    /// Every tenant's memberships (the engine loads them at start).
    pub async fn all_members(&self) -> Result<Vec<MemberRow>, StoreError> {
        const SQL: &str = concat!(
            member_select!(),
            " ORDER BY m.queue_id, m.level, m.position, m.agent_id"
        );
        self.fetch_all(Use::Read, SQL, args![]).await
    }
}

fn no_row() -> StoreError {
    StoreError::Internal("INSERT ... RETURNING returned no row".into())
}
