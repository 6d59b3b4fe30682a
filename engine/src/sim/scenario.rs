//! A simulation scenario: queues with their traffic, groups of agents, how agents behave.
//! Deserialisable so the CLI can read it from a TOML file (`switchyard sim inbound --config`):
//!
//! ```toml
//! hours = 8.0
//! seed = 7
//! answer_delay_s = 0.0     # agents pick up after this long
//! no_answer = 0.0          # probability an agent lets an offer ring out
//!
//! [[queues]]
//! id = 1
//! name = "sales"
//! strategy = "longest-idle-agent"
//! sl_threshold_s = 20.0
//! arrivals_per_hour = 300.0
//! aht_s = 180.0
//! patience_s = 120.0       # omit for infinitely patient callers
//! skills = [[1, 5]]        # [skill id, minimum]
//! vip_fraction = 0.1       # share of callers with priority 1
//! max_wait_s = 600.0       # optional, then on_timeout
//! overflow_to = 2          # optional: on max wait, join queue 2
//!
//! [[agents]]
//! count = 25
//! skills = [[1, 7], [2, 4]]
//! queues = [1, 2]          # memberships, level 1
//! wrapup_s = 0.0
//! ```

use std::time::Duration;

use serde::Deserialize;

use crate::config::{AgentConfig, Exit, Membership, QueueConfig, SkillRequirement, Strategy};
use crate::ids::{AgentId, QueueId, SkillId};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueueScenario {
    pub id: u32,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub strategy: Option<Strategy>,
    #[serde(default = "default_sl")]
    pub sl_threshold_s: f64,
    pub arrivals_per_hour: f64,
    pub aht_s: f64,
    #[serde(default)]
    pub patience_s: Option<f64>,
    #[serde(default)]
    pub skills: Vec<(u32, u8)>,
    #[serde(default)]
    pub vip_fraction: f64,
    #[serde(default)]
    pub max_wait_s: Option<f64>,
    #[serde(default)]
    pub overflow_to: Option<u32>,
    /// Tier levels open at first, and (seconds, level) escalation steps.
    #[serde(default)]
    pub initial_max_level: Option<u32>,
    #[serde(default)]
    pub escalation: Vec<(f64, u32, u8)>,
}

fn default_sl() -> f64 {
    20.0
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentGroup {
    pub count: u32,
    #[serde(default)]
    pub skills: Vec<(u32, u8)>,
    pub queues: Vec<u32>,
    #[serde(default = "one")]
    pub level: u32,
    #[serde(default)]
    pub wrapup_s: f64,
}

fn one() -> u32 {
    1
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default = "default_hours")]
    pub hours: f64,
    /// Simulated time at the start whose calls are left out of the figures (the system
    /// starts empty; steady-state figures need it to fill up first).
    #[serde(default)]
    pub warmup_hours: f64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub answer_delay_s: f64,
    #[serde(default)]
    pub no_answer: f64,
    pub queues: Vec<QueueScenario>,
    pub agents: Vec<AgentGroup>,
    /// Check the engine's invariants after every step (slow; tests turn it on).
    #[serde(default)]
    pub check_invariants: bool,
}

/// Longest time accepted anywhere in a scenario (about 115 days).
const MAX_SECONDS: f64 = 1e7;

fn default_hours() -> f64 {
    8.0
}

impl Scenario {
    /// One queue, one skill, `agents` identical agents: the Erlang C / Erlang A setup.
    pub fn single_queue(
        agents: u32,
        arrivals_per_hour: f64,
        aht: Duration,
        patience: Option<Duration>,
    ) -> Scenario {
        Scenario {
            hours: 8.0,
            warmup_hours: 0.0,
            seed: 1,
            answer_delay_s: 0.0,
            no_answer: 0.0,
            queues: vec![QueueScenario {
                id: 1,
                name: "q1".into(),
                strategy: None,
                sl_threshold_s: 20.0,
                arrivals_per_hour,
                aht_s: aht.as_secs_f64(),
                patience_s: patience.map(|p| p.as_secs_f64()),
                skills: Vec::new(),
                vip_fraction: 0.0,
                max_wait_s: None,
                overflow_to: None,
                initial_max_level: None,
                escalation: Vec::new(),
            }],
            agents: vec![AgentGroup {
                count: agents,
                skills: Vec::new(),
                queues: vec![1],
                level: 1,
                wrapup_s: 0.0,
            }],
            check_invariants: false,
        }
    }

    /// Checks the numbers a user typed; the error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: &str, msg: &str| Err((field.to_owned(), msg.to_owned()));
        if !(self.hours.is_finite() && self.hours > 0.0 && self.hours <= 24.0 * 366.0) {
            return bad("hours", "must be > 0 and at most a year");
        }
        if !(self.warmup_hours.is_finite()
            && self.warmup_hours >= 0.0
            && self.warmup_hours < self.hours)
        {
            return bad("warmup_hours", "must be >= 0 and less than hours");
        }
        if !(self.answer_delay_s.is_finite() && self.answer_delay_s >= 0.0) {
            return bad("answer_delay_s", "must be >= 0");
        }
        if !(0.0..=1.0).contains(&self.no_answer) {
            return bad("no_answer", "must be a probability");
        }
        if self.queues.is_empty() {
            return bad("queues", "at least one queue");
        }
        for q in &self.queues {
            if !(q.arrivals_per_hour.is_finite()
                && q.arrivals_per_hour >= 0.0
                && q.arrivals_per_hour <= 1e7)
            {
                return bad("arrivals_per_hour", "must be between 0 and 10,000,000");
            }
            if !(q.aht_s.is_finite() && q.aht_s > 0.0 && q.aht_s < 1e6) {
                return bad("aht_s", "must be > 0");
            }
            if q.patience_s.is_some_and(|p| !(p.is_finite() && p > 0.0)) {
                return bad("patience_s", "must be > 0 (omit for infinite patience)");
            }
            if !(q.sl_threshold_s.is_finite() && q.sl_threshold_s > 0.0) {
                return bad("sl_threshold_s", "must be > 0");
            }
            if !(0.0..=1.0).contains(&q.vip_fraction) {
                return bad("vip_fraction", "must be a probability");
            }
            if q.skills.iter().any(|&(_, m)| !(1..=10).contains(&m)) {
                return bad("skills", "minimums must be 1..=10");
            }
            if q.max_wait_s.is_some_and(|p| !(p.is_finite() && p > 0.0)) {
                return bad("max_wait_s", "must be > 0");
            }
            if let Some(to) = q.overflow_to
                && (to == q.id || !self.queues.iter().any(|o| o.id == to))
            {
                return bad("overflow_to", "must name another queue of the scenario");
            }
        }
        let total: u64 = self.agents.iter().map(|g| u64::from(g.count)).sum();
        if total > 1_000_000 {
            return bad("agents", "at most 1,000,000 agents");
        }
        for g in &self.agents {
            if g.skills.iter().any(|&(_, p)| !(1..=10).contains(&p)) {
                return bad("agents.skills", "proficiency must be 1..=10");
            }
            if let Some(q) = g
                .queues
                .iter()
                .find(|q| !self.queues.iter().any(|s| s.id == **q))
            {
                return Err((
                    "agents.queues".into(),
                    format!("queue {q} is not in the scenario"),
                ));
            }
            if !(g.wrapup_s.is_finite() && g.wrapup_s >= 0.0) {
                return bad("agents.wrapup_s", "must be >= 0");
            }
        }
        // Times become `Duration`s and deadlines: bound them so nothing overflows.
        let secs_ok = |v: f64| v.is_finite() && (0.0..=MAX_SECONDS).contains(&v);
        for q in &self.queues {
            let times = [
                ("sl_threshold_s", Some(q.sl_threshold_s)),
                ("aht_s", Some(q.aht_s)),
                ("patience_s", q.patience_s),
                ("max_wait_s", q.max_wait_s),
            ];
            for (field, v) in times {
                if v.is_some_and(|v| !secs_ok(v)) {
                    return bad(field, "must be between 0 and 10,000,000 seconds");
                }
            }
            if q.escalation.iter().any(|&(after, _, _)| !secs_ok(after)) {
                return bad(
                    "escalation",
                    "each step's wait must be between 0 and 10,000,000 seconds",
                );
            }
        }
        if !secs_ok(self.answer_delay_s) {
            return bad("answer_delay_s", "must be between 0 and 10,000,000 seconds");
        }
        if self.agents.iter().any(|g| !secs_ok(g.wrapup_s)) {
            return bad(
                "agents.wrapup_s",
                "must be between 0 and 10,000,000 seconds",
            );
        }
        Ok(())
    }

    pub(crate) fn queue_configs(&self, default_strategy: Strategy) -> Vec<QueueConfig> {
        self.queues
            .iter()
            .map(|q| {
                let mut cfg = QueueConfig {
                    id: QueueId(q.id),
                    name: if q.name.is_empty() {
                        format!("q{}", q.id)
                    } else {
                        q.name.clone()
                    },
                    strategy: q.strategy.unwrap_or(default_strategy),
                    skills: q
                        .skills
                        .iter()
                        .map(|&(s, min)| SkillRequirement {
                            skill: SkillId(s),
                            min,
                        })
                        .collect(),
                    sl_threshold: Duration::from_secs_f64(q.sl_threshold_s),
                    max_wait: q.max_wait_s.map(Duration::from_secs_f64),
                    on_timeout: q
                        .overflow_to
                        .map_or(Exit::Hangup, |to| Exit::Queue(QueueId(to))),
                    // The simulator's agents answer or time out on their own model.
                    offer_timeout: Duration::from_secs(15),
                    ..QueueConfig::default()
                };
                if let Some(l) = q.initial_max_level {
                    cfg.initial_max_level = l;
                }
                cfg.escalation = q
                    .escalation
                    .iter()
                    .map(
                        |&(after, max_level, relax_by)| crate::config::EscalationStep {
                            after: Duration::from_secs_f64(after.clamp(0.0, MAX_SECONDS)),
                            max_level,
                            relax_by,
                        },
                    )
                    .collect();
                cfg
            })
            .collect()
    }

    pub(crate) fn agent_configs(&self) -> Vec<(AgentConfig, Vec<Membership>)> {
        let mut out = Vec::new();
        let mut next = 1u32;
        for g in &self.agents {
            for _ in 0..g.count {
                let id = AgentId(next);
                let cfg = AgentConfig {
                    id,
                    name: format!("agent{next}"),
                    contact: format!("user/{next}"),
                    skills: g.skills.iter().map(|&(s, p)| (SkillId(s), p)).collect(),
                    wrapup: Some(Duration::from_secs_f64(g.wrapup_s)),
                    no_answer_delay: Duration::from_secs(30),
                    ..AgentConfig::default()
                };
                let memberships = g
                    .queues
                    .iter()
                    .map(|&q| Membership {
                        queue: QueueId(q),
                        level: g.level,
                        position: next,
                        weight: 1,
                    })
                    .collect();
                out.push((cfg, memberships));
                next += 1;
            }
        }
        out
    }
}
