//! The engine's one error type. "No agent available" is never an error: it is an outcome the
//! core reports through its outputs. `Err` means the caller misused the API.

use crate::ids::{AgentId, CallId, CampaignId, QueueId};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineError {
    #[error("unknown queue {0}")]
    UnknownQueue(QueueId),
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    #[error("unknown call {0}")]
    UnknownCall(CallId),
    #[error("unknown campaign {0}")]
    UnknownCampaign(CampaignId),
    #[error("campaign {campaign} cannot {control} while {state}")]
    CampaignState {
        campaign: CampaignId,
        control: &'static str,
        state: &'static str,
    },
    #[error("{field}: {message}")]
    InvalidConfig {
        field: &'static str,
        message: String,
    },
    #[error("id {id} is above the configured maximum {max}")]
    IdTooLarge { id: u32, max: u32 },
    /// A queue cannot go while something uses it: calls in it (waiting, being offered, talking
    /// or being called back; their records are filed under it) or campaigns dialling for its
    /// agents (ascending ids).
    #[error("{queue} is in use: {calls} call(s) in it, campaigns {campaigns:?} dial for it")]
    QueueInUse {
        queue: QueueId,
        calls: usize,
        campaigns: Vec<CampaignId>,
    },
    #[error("call {call} is not waiting in a queue")]
    CallNotWaiting { call: CallId },
    #[error("agent {agent} cannot take an offer now: {why}")]
    AgentNotFree { agent: AgentId, why: &'static str },
    #[error("agent {agent} is not on a call")]
    AgentNotOnCall { agent: AgentId },
    #[error("call {call} is not in conversation with an agent")]
    CallNotTalking { call: CallId },
    #[error("call {call} is not agent {agent}'s")]
    NotAgentsCall { call: CallId, agent: AgentId },
    /// A preview verb for a call that is not a desktop preview reserved (to that agent).
    #[error("call {call} is not a preview reserved {}", match .agent { Some(a) => format!("to agent {a}"), None => "to an agent".into() })]
    NotReserved {
        call: CallId,
        agent: Option<AgentId>,
    },
    /// Counters of an open interval that is no longer open (`Command::SeedInterval`): they
    /// belong in that interval's own records.
    #[error("the interval starting at {start_unix_ms} is not the open one")]
    StaleInterval { start_unix_ms: u64 },
    /// A recording request the call's policy or state does not allow.
    #[error("call {call}: cannot {action} the recording: {why}")]
    Recording {
        call: CallId,
        action: &'static str,
        why: &'static str,
    },
}
