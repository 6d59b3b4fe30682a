//! Each queue's index of ready members, kept in the order its strategy wants them, so that a
//! decision looks at the head of a sorted set instead of scanning every agent (mod_callcenter
//! runs an SQL query per member per 100 ms tick; here a decision is a few tree lookups).
//!
//! Keys start with the tier level: lower levels are always tried first. Within a level:
//!
//! | strategy | order |
//! |---|---|
//! | longest-idle-agent | idle since, oldest first |
//! | round-robin | position, starting after the last position offered (the queue remembers) |
//! | top-down, ring-all, ring-progressively | position |
//! | least-talk-time | talk time since login, then idle since |
//! | fewest-calls | calls answered since login, then idle since |
//! | skills-best-match | proficiency over the queue's skills, highest first, then idle since |
//! | random, weighted-random | sampled (see [`super::sampler`]); the set order is only a fallback |

use std::collections::{BTreeMap, BTreeSet};

use std::time::Instant;

use super::sampler::Sampler;
use crate::agent::Agent;
use crate::config::{Membership, QueueConfig, Strategy};
use crate::ids::AgentId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadyKey {
    pub level: u32,
    pub a: u64,
    pub b: u64,
    pub agent: AgentId,
}

/// The ready members of one queue. Each agent remembers its own keys (one per membership),
/// so removal is a single tree operation with no lookup.
#[derive(Debug, Default)]
pub struct ReadyIndex {
    pub set: BTreeSet<ReadyKey>,
    /// Random strategies: one sampler per tier level.
    pub samplers: BTreeMap<u32, Sampler>,
}

/// Nanoseconds of `t` since `origin`, saturating (ordering only).
fn nanos(origin: Instant, t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(origin).as_nanos()).unwrap_or(u64::MAX)
}

/// An agent's proficiency summed over the queue's required skills.
pub fn queue_proficiency(agent: &Agent, queue: &QueueConfig) -> u32 {
    queue
        .skills
        .iter()
        .map(|r| u32::from(agent.skill(r.skill)))
        .sum()
}

pub fn key_for(
    origin: Instant,
    strategy: Strategy,
    queue: &QueueConfig,
    agent: &Agent,
    m: &Membership,
) -> ReadyKey {
    let idle = nanos(origin, agent.idle_since);
    let (a, b) = match strategy {
        Strategy::LongestIdleAgent => (idle, agent.serial),
        Strategy::RoundRobin
        | Strategy::TopDown
        | Strategy::RingAll
        | Strategy::RingProgressively => (u64::from(m.position), agent.serial),
        Strategy::LeastTalkTime => (agent.talk_ms, idle),
        Strategy::FewestCalls => (agent.calls_answered, idle),
        Strategy::SkillsBestMatch => (u64::from(u32::MAX - queue_proficiency(agent, queue)), idle),
        Strategy::Random | Strategy::WeightedRandom => (agent.serial, 0),
    };
    ReadyKey {
        level: m.level,
        a,
        b,
        agent: agent.cfg.id,
    }
}

impl ReadyIndex {
    pub fn insert(&mut self, key: ReadyKey, strategy: Strategy, weight: u32) {
        self.set.insert(key);
        if matches!(strategy, Strategy::Random | Strategy::WeightedRandom) {
            let w = if strategy == Strategy::Random {
                1
            } else {
                u64::from(weight.max(1))
            };
            self.samplers
                .entry(key.level)
                .or_default()
                .set(key.agent, w);
        }
    }

    pub fn remove(&mut self, key: &ReadyKey) {
        self.set.remove(key);
        if let Some(s) = self.samplers.get_mut(&key.level) {
            s.set(key.agent, 0);
        }
    }

    pub fn contains(&self, key: &ReadyKey) -> bool {
        self.set.contains(key)
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Forgets everything (after a strategy change: keys differ per strategy). Agents still
    /// hold their old keys; the caller re-indexes every member.
    pub fn clear(&mut self) {
        self.set.clear();
        self.samplers.clear();
    }
}
