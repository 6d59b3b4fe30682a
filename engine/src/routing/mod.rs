//! Routing: who may take a call (membership, tiers, skills, escalation) and in which order
//! (the queue's strategy), plus the global matching step that assigns many calls to many
//! agents at once.

pub mod index;
pub mod matching;
pub mod sampler;

use crate::agent::Agent;
use crate::call::Call;
use crate::config::QueueConfig;

/// Why an agent may not take a call (for traces and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ineligible {
    /// Ringing for another call, in a delay, or no longer available.
    NotReady,
    NotMember,
    LevelClosed,
    MissingSkill,
    TriedAlready,
    /// A callback waiting out the retry interval after a failed dial.
    CallbackHeld,
    /// The call is for another agent (a flow's agent step: a direct call).
    OtherAgent,
}

/// Whether `agent` may take `call` waiting in `queue`, ignoring readiness (the ready index
/// holds only ready agents). Returns the agent's proficiency over the required skills.
pub fn eligible(
    agent: &Agent,
    call: &Call,
    queue: &QueueConfig,
    allow_tried: bool,
) -> Result<u32, Ineligible> {
    if call.callback_held.is_some() {
        return Err(Ineligible::CallbackHeld);
    }
    if call.caller.agent.is_some_and(|a| a != agent.cfg.id) {
        return Err(Ineligible::OtherAgent);
    }
    let m = agent.membership(queue.id).ok_or(Ineligible::NotMember)?;
    if m.level > call.max_level {
        return Err(Ineligible::LevelClosed);
    }
    if !allow_tried && call.tried.contains(&agent.cfg.id) {
        return Err(Ineligible::TriedAlready);
    }
    let mut prof = 0u32;
    for r in &queue.skills {
        let have = agent.skill(r.skill);
        if have < r.min.saturating_sub(call.relax).max(1) {
            return Err(Ineligible::MissingSkill);
        }
        prof += u32::from(have);
    }
    for &(skill, min) in &call.caller.skills {
        let have = agent.skill(skill);
        if have < min.saturating_sub(call.relax).max(1) {
            return Err(Ineligible::MissingSkill);
        }
        prof += u32::from(have);
    }
    Ok(prof)
}
