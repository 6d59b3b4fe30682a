//! Types shared by the store, the HTTP layer and the runtime: tenants, roles, who is calling.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tenant: every row but the platform's own belongs to exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

/// What an API key may do. Platform-admin keys have no tenant and manage tenants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything within the tenant: configuration, keys, supervision.
    Admin,
    /// Supervision (pause queues, set agent states, assign, eavesdrop) and every read.
    Supervisor,
    /// Acts for one agent (the key's `agent_id`): that agent's state, dispositions of its
    /// calls, and the reads an agent desktop needs.
    Agent,
    /// Reads only.
    ReadOnly,
    /// Tenants only (no tenant of its own).
    PlatformAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
            Role::ReadOnly => "read-only",
            Role::PlatformAdmin => "platform-admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::Admin,
            Role::Supervisor,
            Role::Agent,
            Role::ReadOnly,
            Role::PlatformAdmin,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// The authenticated caller of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Principal {
    pub key_id: Uuid,
    /// None for platform-admin keys.
    pub tenant: Option<TenantId>,
    pub role: Role,
    /// The agent an agent key acts for (its id, as in `/v1/agents/{id}`). None for every other
    /// role, and for agent keys issued before keys were bound to agents (which may only read).
    pub agent_id: Option<i64>,
}
