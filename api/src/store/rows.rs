//! What the store hands out and takes in, and how a database row becomes one of those.
//!
//! Columns are portable on purpose (DESIGN §8): uuids are hyphenated TEXT, times BIGINT unix
//! milliseconds (`*_ms` in Rust), JSON documents TEXT (`serde_json::Value` here), small counts
//! INTEGER (`i32`), measurements REAL / DOUBLE PRECISION (`f64`), everything else BIGINT
//! (`i64`). Decoding goes through [`RowExt`], which both backends' row types implement, so each
//! decoder below is written once.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::error::StoreError;
use crate::model::{Role, TenantId};

/// A tenant. Tenants are never deleted, only disabled (their keys then stop working).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub disabled: bool,
    pub created_at_ms: i64,
    /// What the tenant may reach on the switch (see [`crate::grants`]).
    pub grants: crate::grants::DialGrants,
}

/// An API key as listed: never its hash, never the key (that is shown once, at creation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: Uuid,
    /// None for platform-admin keys.
    pub tenant: Option<TenantId>,
    pub name: String,
    pub role: Role,
    /// The agent an agent key acts for; None for other roles and for agent keys issued before
    /// keys were bound to agents.
    pub agent_id: Option<i64>,
    /// The 12 hex characters after `sy_`: enough to recognise a key in a list, useless to
    /// authenticate with.
    pub prefix: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
}

/// A skill; its `id` is the engine's `SkillId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skill {
    pub id: i64,
    pub tenant: TenantId,
    pub name: String,
}

/// A queue; `id` is the engine's `QueueId`, `config` the queue's settings as the API and the
/// engine agree on them (the store does not look inside).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueueRow {
    pub id: i64,
    pub tenant: TenantId,
    pub name: String,
    pub config: Value,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// An agent; `id` is the engine's `AgentId`. `presence` is the last state the runtime saved
/// (JSON `null` until it saves one); changing it does not move `updated_at_ms`, which tracks
/// configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentRow {
    pub id: i64,
    pub tenant: TenantId,
    pub name: String,
    pub config: Value,
    pub presence: Value,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// An agent's membership of a queue (its tier). The tenant is the queue's (and the agent's:
/// the store only links objects of one tenant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberRow {
    pub tenant: TenantId,
    pub queue_id: i64,
    pub agent_id: i64,
    pub level: i32,
    pub position: i32,
    pub weight: i32,
}

/// One inbound call as the ACD saw it, keyed by the caller's arrival leg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CallRow {
    pub id: Uuid,
    pub tenant: TenantId,
    /// The last queue the call was in.
    pub queue_id: i64,
    /// Every queue it passed through, in order.
    pub queues: Vec<i64>,
    pub agent_id: Option<i64>,
    pub caller_number: String,
    /// The engine's outcome name ("answered", "abandoned", ...); the store does not interpret it.
    pub outcome: String,
    pub arrived_at_ms: i64,
    pub wait_ms: i64,
    pub talk_ms: i64,
    pub offers: i32,
    /// Closed by recovery (the call vanished while switchyard was away), not by events.
    pub synthetic: bool,
    pub callback_leg: Option<Uuid>,
}

/// A call's recording: an open row (`status` "recording") written before capture starts,
/// replaced by the final one when it ended and its file was checked. Keyed by the
/// recording's UUID.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct RecordingRow {
    pub id: Uuid,
    pub tenant: TenantId,
    /// The call's arrival leg (`calls.id`).
    pub call_id: Uuid,
    /// The leg recorded (the customer's; a callback's customer leg).
    pub leg: Uuid,
    pub queue_id: i64,
    /// The campaign whose dial the call was (store id); `None` for other calls.
    #[serde(default)]
    pub campaign_id: Option<i64>,
    /// Every agent heard, in order.
    pub agents: Vec<i64>,
    pub caller_number: String,
    /// `never`, `on-demand`, `always`, `always-forced`: the mode that applied.
    pub mode: String,
    /// `live` or `switch`: how it was captured.
    pub capture: String,
    pub fell_back: bool,
    pub stereo: bool,
    /// Where the file is (empty when there is none).
    pub path: String,
    pub started_at_ms: i64,
    /// `None` while it runs.
    pub ended_at_ms: Option<i64>,
    /// `recording` (open), `completed`, `damaged`, `failed`.
    pub status: String,
    pub error: Option<String>,
    pub duration_ms: Option<i64>,
    pub sample_rate: Option<i32>,
    pub channels: Option<i32>,
    pub bytes: Option<i64>,
    pub silence_ratio: Option<f64>,
    /// The silent spans (JSON array of {kind, start_ms, end_ms, by, ended_by}).
    pub spans: Value,
    /// Per-channel peaks and waveform (JSON), `null` until measured.
    pub waveform: Value,
    /// `call` (a call's recording) or `voicemail` (a message left in a box). Journals written
    /// before voicemail read as `call`.
    #[serde(default = "call_kind")]
    pub kind: String,
    /// The queue whose box a voicemail message is in (store id); `None` otherwise.
    #[serde(default)]
    pub mailbox_queue: Option<i64>,
    /// The agent whose box a voicemail message is in (store id); `None` otherwise.
    #[serde(default)]
    pub mailbox_agent: Option<i64>,
}

/// A recording's kind when a journal from before voicemail does not name one.
fn call_kind() -> String {
    super::recordings::CALL_RECORDING.to_owned()
}

/// A call detail record of one leg, from CHANNEL_HANGUP_COMPLETE (or synthetic, for a leg that
/// vanished while switchyard was away).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CdrRow {
    pub leg: Uuid,
    pub tenant: Option<TenantId>,
    pub call_id: Option<Uuid>,
    pub direction: String,
    pub caller_number: String,
    pub destination: String,
    pub hangup_cause: String,
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: i64,
    pub billsec_ms: i64,
    /// Written by recovery rather than from CHANNEL_HANGUP_COMPLETE. A real CDR that arrives
    /// later for the same leg replaces a synthetic one; nothing replaces a real one.
    pub synthetic: bool,
}

/// Why the router offered a call to whom (or to nobody).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct TraceRow {
    /// Unique per decision, e.g. `"<call-uuid>:<offer-n>"`.
    pub id: String,
    pub tenant: TenantId,
    pub call_id: Uuid,
    pub at_ms: i64,
    pub queue_id: i64,
    pub agent_id: Option<i64>,
    pub trace: Value,
}

/// What an interval's figures are about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum IntervalScope {
    Total,
    Queue(i64),
    Agent(i64),
}

impl IntervalScope {
    pub fn kind(self) -> &'static str {
        match self {
            IntervalScope::Total => "total",
            IntervalScope::Queue(_) => "queue",
            IntervalScope::Agent(_) => "agent",
        }
    }

    /// The stored `scope_id`: 0 for totals (the column is NOT NULL so that the primary key
    /// makes a re-write idempotent; engine ids are never 0).
    pub(crate) fn id(self) -> i64 {
        match self {
            IntervalScope::Total => 0,
            IntervalScope::Queue(id) | IntervalScope::Agent(id) => id,
        }
    }

    fn from_parts(kind: &str, id: i64) -> Result<IntervalScope, StoreError> {
        match kind {
            "total" => Ok(IntervalScope::Total),
            "queue" => Ok(IntervalScope::Queue(id)),
            "agent" => Ok(IntervalScope::Agent(id)),
            other => Err(StoreError::Internal(format!(
                "unknown interval scope {other:?}"
            ))),
        }
    }
}

/// Figures for one interval (e.g. 15 minutes) of one scope. `tenant` None: platform-wide.
/// Writing the same (tenant, scope, start) again replaces `end_ms` and `figures`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct IntervalRow {
    pub tenant: Option<TenantId>,
    pub scope: IntervalScope,
    pub start_ms: i64,
    pub end_ms: i64,
    pub figures: Value,
}

/// Who changed what, written in the same transaction as the change it describes.
///
/// The row's tenant is `tenant`, except for methods that take a `tenant: TenantId` argument
/// (queues, agents, skills, members): those write that tenant, the owner of the changed
/// object, so a tenant's log is complete whoever acted. For `create_*` methods the store fills
/// `object_id` with the new object's id (the value given is not used).
#[derive(Clone, Debug)]
pub struct AuditEntry<'a> {
    pub tenant: Option<TenantId>,
    pub key_id: Option<Uuid>,
    /// e.g. "queue.create".
    pub action: &'a str,
    /// e.g. "queue".
    pub object_kind: &'a str,
    pub object_id: String,
    pub detail: Value,
}

/// An audit log entry as read back.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub tenant: Option<TenantId>,
    pub key_id: Option<Uuid>,
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    pub at_ms: i64,
    pub detail: Value,
}

/// Which audit entries `search_audit` returns: every filter optional; `from_ms` inclusive,
/// `to_ms` exclusive (on the entry's time); `before_id` pages (entries with smaller ids).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub key_id: Option<Uuid>,
    pub action: Option<String>,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// Which calls `list_calls` returns. Every filter is optional; `from_ms` is inclusive, `to_ms`
/// exclusive (on `arrived_at`). `cursor` is the `next` of the previous page. `limit` is
/// clamped to `1..=500`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallFilter {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub queue_id: Option<i64>,
    pub agent_id: Option<i64>,
    pub caller_number: Option<String>,
    pub outcome: Option<String>,
    pub cursor: Option<String>,
    pub limit: u32,
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Typed column access common to `SqliteRow` and `PgRow`, so decoders are written once.
pub(crate) trait RowExt {
    fn i64(&self, col: &str) -> Result<i64, StoreError>;
    fn opt_i64(&self, col: &str) -> Result<Option<i64>, StoreError>;
    fn i32(&self, col: &str) -> Result<i32, StoreError>;
    fn bool(&self, col: &str) -> Result<bool, StoreError>;
    fn opt_bool(&self, col: &str) -> Result<Option<bool>, StoreError>;
    fn string(&self, col: &str) -> Result<String, StoreError>;
    fn opt_string(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn opt_i32(&self, col: &str) -> Result<Option<i32>, StoreError>;
    fn opt_f64(&self, col: &str) -> Result<Option<f64>, StoreError>;
    /// By position, for wide rows read in bulk (analytics sums): a lookup by name costs a
    /// hash of the name per column and row, most of decoding such rows.
    fn opt_i64_at(&self, index: usize) -> Result<Option<i64>, StoreError>;
    fn opt_f64_at(&self, index: usize) -> Result<Option<f64>, StoreError>;

    fn uuid(&self, col: &str) -> Result<Uuid, StoreError> {
        parse_uuid(col, &self.string(col)?)
    }

    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>, StoreError> {
        self.opt_string(col)?
            .map(|s| parse_uuid(col, &s))
            .transpose()
    }

    fn tenant(&self, col: &str) -> Result<TenantId, StoreError> {
        self.uuid(col).map(TenantId)
    }

    fn opt_tenant(&self, col: &str) -> Result<Option<TenantId>, StoreError> {
        Ok(self.opt_uuid(col)?.map(TenantId))
    }

    fn json(&self, col: &str) -> Result<Value, StoreError> {
        let text = self.string(col)?;
        serde_json::from_str(&text)
            .map_err(|e| StoreError::Internal(format!("column {col} is not JSON: {e}")))
    }
}

fn parse_uuid(col: &str, text: &str) -> Result<Uuid, StoreError> {
    Uuid::try_parse(text)
        .map_err(|e| StoreError::Internal(format!("column {col} is not a uuid: {e}")))
}

macro_rules! impl_row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn i64(&self, col: &str) -> Result<i64, StoreError> {
                Ok(self.try_get(col)?)
            }
            fn opt_i64(&self, col: &str) -> Result<Option<i64>, StoreError> {
                Ok(self.try_get(col)?)
            }
            fn i32(&self, col: &str) -> Result<i32, StoreError> {
                Ok(self.try_get(col)?)
            }
            fn bool(&self, col: &str) -> Result<bool, StoreError> {
                Ok(self.try_get(col)?)
            }
            fn opt_bool(&self, col: &str) -> Result<Option<bool>, StoreError> {
                Ok(self.try_get(col)?)
            }
            fn string(&self, col: &str) -> Result<String, StoreError> {
                Ok(self.try_get(col)?)
            }
            fn opt_string(&self, col: &str) -> Result<Option<String>, StoreError> {
                Ok(self.try_get(col)?)
            }
            fn opt_i32(&self, col: &str) -> Result<Option<i32>, StoreError> {
                Ok(self.try_get(col)?)
            }
            fn opt_f64(&self, col: &str) -> Result<Option<f64>, StoreError> {
                Ok(self.try_get(col)?)
            }
            fn opt_i64_at(&self, index: usize) -> Result<Option<i64>, StoreError> {
                Ok(self.try_get(index)?)
            }
            fn opt_f64_at(&self, index: usize) -> Result<Option<f64>, StoreError> {
                Ok(self.try_get(index)?)
            }
        }
    };
}

impl_row_ext!(SqliteRow);
impl_row_ext!(PgRow);

/// A type one result row decodes into, on either backend.
pub(crate) trait FromStoreRow: Sized {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError>;
}

/// The `id` column alone (BIGINT ids from `RETURNING id`).
#[derive(Debug)]
pub(crate) struct IdRow(pub i64);

impl FromStoreRow for IdRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(IdRow(row.i64("id")?))
    }
}

/// The `id` column alone, as text (uuid ids from `RETURNING id`).
#[derive(Debug)]
pub(crate) struct TextIdRow(pub String);

impl FromStoreRow for TextIdRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(TextIdRow(row.string("id")?))
    }
}

/// Column lists, as macros so that `concat!` can build `&'static str` SQL from them.
macro_rules! tenant_cols {
    () => {
        "id, name, disabled, created_at, grants"
    };
}
macro_rules! key_cols {
    () => {
        "id, tenant_id, name, role, agent_id, prefix, created_at, expires_at, revoked_at, \
         last_used_at"
    };
}
macro_rules! skill_cols {
    () => {
        "id, tenant_id, name"
    };
}
macro_rules! queue_cols {
    () => {
        "id, tenant_id, name, config, created_at, updated_at"
    };
}
macro_rules! agent_cols {
    () => {
        "id, tenant_id, name, config, presence, created_at, updated_at"
    };
}
macro_rules! call_cols {
    () => {
        "id, tenant_id, queue_id, queues, agent_id, caller_number, outcome, arrived_at, \
         wait_ms, talk_ms, offers, synthetic, callback_leg"
    };
}
macro_rules! cdr_cols {
    () => {
        "leg, tenant_id, call_id, direction, caller_number, destination, hangup_cause, \
         started_at, answered_at, ended_at, billsec_ms, synthetic"
    };
}
macro_rules! trace_cols {
    () => {
        "id, tenant_id, call_id, at, queue_id, agent_id, trace"
    };
}
macro_rules! interval_cols {
    () => {
        "tenant_id, scope_kind, scope_id, start_ms, end_ms, figures"
    };
}
macro_rules! audit_cols {
    () => {
        "id, tenant_id, key_id, action, object_kind, object_id, at, detail"
    };
}
pub(crate) use {
    agent_cols, audit_cols, call_cols, cdr_cols, interval_cols, key_cols, queue_cols, skill_cols,
    tenant_cols, trace_cols,
};

impl FromStoreRow for Tenant {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(Tenant {
            id: row.tenant("id")?,
            name: row.string("name")?,
            disabled: row.bool("disabled")?,
            created_at_ms: row.i64("created_at")?,
            grants: serde_json::from_str(&row.string("grants")?)
                .map_err(|e| StoreError::Internal(format!("a tenant's grants: {e}")))?,
        })
    }
}

pub(crate) fn parse_role(text: &str) -> Result<Role, StoreError> {
    Role::parse(text).ok_or_else(|| StoreError::Internal(format!("unknown role {text:?}")))
}

impl FromStoreRow for ApiKey {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(ApiKey {
            id: row.uuid("id")?,
            tenant: row.opt_tenant("tenant_id")?,
            name: row.string("name")?,
            role: parse_role(&row.string("role")?)?,
            agent_id: row.opt_i64("agent_id")?,
            prefix: row.string("prefix")?,
            created_at_ms: row.i64("created_at")?,
            expires_at_ms: row.opt_i64("expires_at")?,
            revoked_at_ms: row.opt_i64("revoked_at")?,
            last_used_at_ms: row.opt_i64("last_used_at")?,
        })
    }
}

impl FromStoreRow for Skill {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(Skill {
            id: row.i64("id")?,
            tenant: row.tenant("tenant_id")?,
            name: row.string("name")?,
        })
    }
}

impl FromStoreRow for QueueRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(QueueRow {
            id: row.i64("id")?,
            tenant: row.tenant("tenant_id")?,
            name: row.string("name")?,
            config: row.json("config")?,
            created_at_ms: row.i64("created_at")?,
            updated_at_ms: row.i64("updated_at")?,
        })
    }
}

impl FromStoreRow for AgentRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(AgentRow {
            id: row.i64("id")?,
            tenant: row.tenant("tenant_id")?,
            name: row.string("name")?,
            config: row.json("config")?,
            presence: row.json("presence")?,
            created_at_ms: row.i64("created_at")?,
            updated_at_ms: row.i64("updated_at")?,
        })
    }
}

impl FromStoreRow for MemberRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(MemberRow {
            tenant: row.tenant("tenant_id")?,
            queue_id: row.i64("queue_id")?,
            agent_id: row.i64("agent_id")?,
            level: row.i32("level")?,
            position: row.i32("position")?,
            weight: row.i32("weight")?,
        })
    }
}

impl FromStoreRow for CallRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        let queues = row.json("queues")?;
        let queues = serde_json::from_value(queues)
            .map_err(|e| StoreError::Internal(format!("calls.queues is not [int]: {e}")))?;
        Ok(CallRow {
            id: row.uuid("id")?,
            tenant: row.tenant("tenant_id")?,
            queue_id: row.i64("queue_id")?,
            queues,
            agent_id: row.opt_i64("agent_id")?,
            caller_number: row.string("caller_number")?,
            outcome: row.string("outcome")?,
            arrived_at_ms: row.i64("arrived_at")?,
            wait_ms: row.i64("wait_ms")?,
            talk_ms: row.i64("talk_ms")?,
            offers: row.i32("offers")?,
            synthetic: row.bool("synthetic")?,
            callback_leg: row.opt_uuid("callback_leg")?,
        })
    }
}

impl FromStoreRow for CdrRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(CdrRow {
            leg: row.uuid("leg")?,
            tenant: row.opt_tenant("tenant_id")?,
            call_id: row.opt_uuid("call_id")?,
            direction: row.string("direction")?,
            caller_number: row.string("caller_number")?,
            destination: row.string("destination")?,
            hangup_cause: row.string("hangup_cause")?,
            started_at_ms: row.i64("started_at")?,
            answered_at_ms: row.opt_i64("answered_at")?,
            ended_at_ms: row.i64("ended_at")?,
            billsec_ms: row.i64("billsec_ms")?,
            synthetic: row.bool("synthetic")?,
        })
    }
}

impl FromStoreRow for TraceRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(TraceRow {
            id: row.string("id")?,
            tenant: row.tenant("tenant_id")?,
            call_id: row.uuid("call_id")?,
            at_ms: row.i64("at")?,
            queue_id: row.i64("queue_id")?,
            agent_id: row.opt_i64("agent_id")?,
            trace: row.json("trace")?,
        })
    }
}

impl FromStoreRow for IntervalRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        // '' stands for "no tenant" (platform-wide), see IntervalScope::id for why.
        let tenant = row.string("tenant_id")?;
        let tenant = if tenant.is_empty() {
            None
        } else {
            Some(TenantId(parse_uuid("tenant_id", &tenant)?))
        };
        Ok(IntervalRow {
            tenant,
            scope: IntervalScope::from_parts(&row.string("scope_kind")?, row.i64("scope_id")?)?,
            start_ms: row.i64("start_ms")?,
            end_ms: row.i64("end_ms")?,
            figures: row.json("figures")?,
        })
    }
}

impl FromStoreRow for AuditRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(AuditRow {
            id: row.i64("id")?,
            tenant: row.opt_tenant("tenant_id")?,
            key_id: row.opt_uuid("key_id")?,
            action: row.string("action")?,
            object_kind: row.string("object_kind")?,
            object_id: row.string("object_id")?,
            at_ms: row.i64("at")?,
            detail: row.json("detail")?,
        })
    }
}
