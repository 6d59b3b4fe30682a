//! Decision traces: for every offer, which strategy ran, who was considered, their scores, and
//! why this agent. Operators ask "why did Bob get that call and not Alice?"; the trace answers.

use serde::Serialize;

use crate::ids::{AgentId, CallId, OfferId, QueueId};

/// One candidate the routing step looked at.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Candidate {
    pub agent: AgentId,
    /// Rank in the queue's strategy order among the candidates (0 = first choice).
    pub rank: u32,
    /// The weight the matching step maximised (urgency of the call plus the agent's fit).
    pub score: f64,
    pub level: u32,
    /// The agent's proficiency summed over the call's required skills.
    pub proficiency: u32,
}

/// Why an offer went to this agent.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DecisionTrace {
    pub offer: OfferId,
    pub call: CallId,
    /// The leg the caller arrived on (the call's lasting identity, as in its record).
    pub call_leg: crate::io::LegId,
    pub queue: QueueId,
    pub agent: AgentId,
    pub at_unix_ms: u64,
    pub strategy: &'static str,
    /// Waiting time of the call when offered, seconds.
    pub wait_s: f64,
    pub priority: i32,
    /// Tier levels open to the call at this point (escalation), and skill relaxation applied.
    pub max_level: u32,
    pub relaxed_by: u8,
    /// Calls and agents in the matching step that produced this offer.
    pub matching_calls: u32,
    pub matching_agents: u32,
    pub candidates: Vec<Candidate>,
    /// In words.
    pub reason: String,
}
