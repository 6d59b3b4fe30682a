//! Who owns what: queue, agent and call ids -> tenant, so the engine (which knows nothing of
//! tenants) can have its records and live events filed under the right tenant.

use std::collections::HashMap;
use std::sync::RwLock;

use switchyard_engine::{AgentId, CampaignId, QueueId};

use crate::model::TenantId;

/// Shared by the HTTP handlers (which update it as objects are created and deleted) and the
/// record writer and live forwarder (which read it).
#[derive(Debug, Default)]
pub struct Directory {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    queues: HashMap<QueueId, TenantId>,
    agents: HashMap<AgentId, TenantId>,
    campaigns: HashMap<CampaignId, TenantId>,
    /// Flows by the id the API shows (their records carry no queue). Never removed: a
    /// journey may end after its flow was deleted; flows are few.
    flows: HashMap<String, TenantId>,
    /// Agents kept logged out because their contact left their tenant's grants while they
    /// were on a call (`routes::tenants`): they may not log in until the contact is fixed.
    withheld: std::collections::HashSet<AgentId>,
}

impl Directory {
    pub fn queue_tenant(&self, q: QueueId) -> Option<TenantId> {
        self.inner.read().ok()?.queues.get(&q).copied()
    }

    pub fn agent_tenant(&self, a: AgentId) -> Option<TenantId> {
        self.inner.read().ok()?.agents.get(&a).copied()
    }

    pub fn set_queue(&self, q: QueueId, t: TenantId) {
        if let Ok(mut g) = self.inner.write() {
            g.queues.insert(q, t);
        }
    }

    pub fn remove_queue(&self, q: QueueId) {
        if let Ok(mut g) = self.inner.write() {
            g.queues.remove(&q);
        }
    }

    pub fn set_agent(&self, a: AgentId, t: TenantId) {
        if let Ok(mut g) = self.inner.write() {
            g.agents.insert(a, t);
        }
    }

    pub fn remove_agent(&self, a: AgentId) {
        if let Ok(mut g) = self.inner.write() {
            g.agents.remove(&a);
            g.withheld.remove(&a);
        }
    }

    /// Keeps `a` logged out (true) or lets it log in again (false).
    pub fn withhold_agent(&self, a: AgentId, withheld: bool) {
        if let Ok(mut g) = self.inner.write() {
            if withheld {
                g.withheld.insert(a);
            } else {
                g.withheld.remove(&a);
            }
        }
    }

    pub fn agent_withheld(&self, a: AgentId) -> bool {
        self.inner.read().is_ok_and(|g| g.withheld.contains(&a))
    }

    pub fn flow_tenant(&self, flow: &str) -> Option<TenantId> {
        self.inner.read().ok()?.flows.get(flow).copied()
    }

    pub fn note_flow(&self, flow: String, t: TenantId) {
        if let Ok(mut g) = self.inner.write() {
            g.flows.insert(flow, t);
        }
    }

    pub fn campaign_tenant(&self, c: CampaignId) -> Option<TenantId> {
        self.inner.read().ok()?.campaigns.get(&c).copied()
    }

    pub fn set_campaign(&self, c: CampaignId, t: TenantId) {
        if let Ok(mut g) = self.inner.write() {
            g.campaigns.insert(c, t);
        }
    }

    pub fn remove_campaign(&self, c: CampaignId) {
        if let Ok(mut g) = self.inner.write() {
            g.campaigns.remove(&c);
        }
    }

    /// The tenant's campaigns (a tenant-wide DNC entry reaches each of them).
    pub fn tenant_campaigns(&self, t: TenantId) -> Vec<CampaignId> {
        let Ok(g) = self.inner.read() else {
            return Vec::new();
        };
        let mut cs: Vec<CampaignId> = g
            .campaigns
            .iter()
            .filter(|(_, v)| **v == t)
            .map(|(k, _)| *k)
            .collect();
        cs.sort();
        cs
    }

    /// The tenant's queues and agents (for live snapshots).
    pub fn tenant_objects(&self, t: TenantId) -> (Vec<QueueId>, Vec<AgentId>) {
        let Ok(g) = self.inner.read() else {
            return (Vec::new(), Vec::new());
        };
        let mut qs: Vec<QueueId> = g
            .queues
            .iter()
            .filter(|(_, v)| **v == t)
            .map(|(k, _)| *k)
            .collect();
        let mut as_: Vec<AgentId> = g
            .agents
            .iter()
            .filter(|(_, v)| **v == t)
            .map(|(k, _)| *k)
            .collect();
        qs.sort();
        as_.sort();
        (qs, as_)
    }
}
