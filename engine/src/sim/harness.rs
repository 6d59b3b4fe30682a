//! The simulation loop: a virtual clock, an event heap for the switch side, and the engine.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::scenario::Scenario;
use crate::config::{EngineConfig, Strategy};
use crate::engine::Engine;
use crate::hash::{FastMap, FastSet};
use crate::ids::{CallId, QueueId};
use crate::io::{
    CallOutcome, CallRecord, CallerInfo, Command, HangupCause, Input, LegId, Output, Presence,
    Record, SwitchCommand, SwitchEvent,
};

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum SimError {
    #[error("{field}: {message}")]
    Scenario { field: String, message: String },
    #[error("engine rejected the scenario: {0}")]
    Engine(#[from] crate::error::EngineError),
    /// An invariant broke. The seed reproduces it.
    #[error("invariant broken at {at_s:.3} s (seed {seed}): {what}")]
    Invariant { seed: u64, at_s: f64, what: String },
}

/// Per-queue figures, attributed to the queue where each call ended.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct QueueReport {
    pub queue: u32,
    pub name: String,
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub service_level: f64,
    pub asa_s: f64,
    pub aht_s: f64,
    pub longest_wait_s: f64,
}

/// What `switchyard sim inbound` prints.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SimReport {
    pub seed: u64,
    pub hours: f64,
    pub agents: u64,
    /// Calls that arrived after the warm-up and ended (every one of them does: arrivals stop
    /// at the end and the run drains).
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// Calls that left otherwise (max wait, overflow chains ending in a hangup...).
    pub other: u64,
    /// Fraction of offered calls answered within their queue's threshold.
    pub service_level: f64,
    pub abandon_rate: f64,
    /// Mean wait of answered calls.
    pub asa_s: f64,
    /// Mean talk + wrap-up of answered calls.
    pub aht_s: f64,
    /// Agent time busy with calls over agent time staffed, during the measured window.
    pub occupancy: f64,
    pub longest_wait_s: f64,
    pub queues: Vec<QueueReport>,
    /// Engine inputs processed (switch events, timeouts, commands).
    pub engine_inputs: u64,
    /// Offers made (ring-all counts each agent rung).
    pub offers: u64,
    /// The engine's own statistics over the whole run (warm-up included), for cross-checks.
    #[serde(skip)]
    pub engine_totals: Option<crate::stats::QueueFigures>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Arrival(usize),
    /// The caller gives up (if still waiting).
    Patience(LegId),
    /// A leg the engine originated answers.
    Answer(LegId),
    /// The caller hangs up after talking.
    TalkEnd(LegId),
    /// The switch joined the two legs of a `Bridge` (at once: the simulated switch has no
    /// originate still holding the agent leg).
    Bridged(LegId, LegId),
}

#[derive(Clone, Copy, Debug)]
struct CallerLeg {
    talk: Duration,
    bridged: bool,
}

/// A configured, seeded run.
#[derive(Debug)]
pub struct Simulation {
    scenario: Scenario,
    strategy: Strategy,
    engine_cfg: EngineConfig,
}

fn exp_sample(rng: &mut fastrand::Rng, mean: f64) -> f64 {
    // Inverse transform; 1 - u is in (0, 1] so ln never sees 0.
    -(1.0 - rng.f64()).ln() * mean
}

impl Simulation {
    pub fn new(scenario: Scenario) -> Result<Simulation, SimError> {
        scenario
            .validate()
            .map_err(|(field, message)| SimError::Scenario { field, message })?;
        let engine_cfg = EngineConfig {
            persist_traces: false,
            trace_memory: 0,
            max_calls: usize::MAX,
            ..EngineConfig::default()
        };
        Ok(Simulation {
            scenario,
            strategy: Strategy::LongestIdleAgent,
            engine_cfg,
        })
    }

    /// Strategy for queues whose scenario names none.
    pub fn strategy(mut self, strategy: Strategy) -> Simulation {
        self.strategy = strategy;
        self
    }

    pub fn engine_config(mut self, cfg: EngineConfig) -> Simulation {
        self.engine_cfg = cfg;
        self
    }

    /// Runs to the end and drains; returns the figures.
    pub fn run(&self) -> Result<SimReport, SimError> {
        self.run_with(|_| {})
    }

    /// Runs, showing every engine output to `observe` (tests count and check them).
    pub fn run_with(&self, mut observe: impl FnMut(&Output)) -> Result<SimReport, SimError> {
        let sc = &self.scenario;
        let seed = sc.seed;
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs_f64(sc.hours * 3600.0);
        let warmup = t0 + Duration::from_secs_f64(sc.warmup_hours * 3600.0);
        let mut engine = Engine::new(self.engine_cfg.clone(), seed, t0);
        // The call model draws from its own stream so the engine's choices do not shift it.
        let mut rng = fastrand::Rng::with_seed(seed ^ 0x5EED_CA11_0000_0001);
        let queues = sc.queue_configs(self.strategy);
        let agents = sc.agent_configs();
        let mut inputs: u64 = 0;
        for q in &queues {
            engine.handle_input(Input::Api(t0, Command::UpsertQueue(Box::new(q.clone()))))?;
        }
        for (cfg, memberships) in &agents {
            let id = cfg.id;
            engine.handle_input(Input::Api(t0, Command::UpsertAgent(Box::new(cfg.clone()))))?;
            engine.handle_input(Input::Api(
                t0,
                Command::SetMemberships {
                    agent: id,
                    memberships: memberships.clone(),
                },
            ))?;
            engine.handle_input(Input::Api(
                t0,
                Command::SetAgentPresence {
                    agent: id,
                    presence: Presence::Available,
                },
            ))?;
            inputs += 3;
        }
        let mut heap: BinaryHeap<Reverse<(Instant, u64, Ev)>> = BinaryHeap::new();
        let mut seq = 0u64;
        let mut push = |heap: &mut BinaryHeap<Reverse<(Instant, u64, Ev)>>, at: Instant, ev: Ev| {
            seq += 1;
            heap.push(Reverse((at, seq, ev)));
        };
        for (i, q) in sc.queues.iter().enumerate() {
            if q.arrivals_per_hour > 0.0 {
                let gap = exp_sample(&mut rng, 3600.0 / q.arrivals_per_hour);
                push(&mut heap, t0 + Duration::from_secs_f64(gap), Ev::Arrival(i));
            }
        }
        let mut callers: FastMap<LegId, CallerLeg> = FastMap::default();
        let mut agent_legs: FastMap<LegId, u32> = FastMap::default();
        let mut busy_agents: FastSet<u32> = FastSet::default();
        // Figures are accumulated as records come (a day is a million records; keeping
        // them would dominate the simulator's memory).
        let window = (end.duration_since(warmup)).as_secs_f64();
        let origin_ms = self.engine_cfg.origin_unix_ms;
        let warmup_ms = origin_ms + (sc.warmup_hours * 3_600_000.0) as u64;
        let agents_n: u64 = sc.agents.iter().map(|g| u64::from(g.count)).sum();
        let thresholds: FastMap<QueueId, f64> = queues
            .iter()
            .map(|q| (q.id, q.sl_threshold.as_secs_f64()))
            .collect();
        let mut report = Totals::default();
        let mut per_queue: FastMap<QueueId, Totals> = FastMap::default();
        let mut busy_s = 0.0;
        let warm_s = sc.warmup_hours * 3600.0;
        let end_s = sc.hours * 3600.0;
        let mut records: u64 = 0;
        let mut seen_calls: FastSet<CallId> = FastSet::default();
        let mut arrivals: u64 = 0;
        let mut offers: u64 = 0;
        let mut next_engine = t0;
        let answer_delay = Duration::from_secs_f64(sc.answer_delay_s);
        let wrap_by_agent: FastMap<u32, f64> = agents
            .iter()
            .map(|(c, _)| (c.id.0, c.wrapup.map_or(0.0, |w| w.as_secs_f64())))
            .collect();
        let mut now = t0;
        loop {
            let heap_next = heap.peek().map(|Reverse((t, _, _))| *t);
            let active = engine.active_calls() > 0;
            let input = match heap_next {
                Some(t) if t <= next_engine || !active => {
                    let Some(Reverse((t, _, ev))) = heap.pop() else {
                        break;
                    };
                    now = t;
                    match ev {
                        Ev::Arrival(i) => {
                            let q = &sc.queues[i];
                            if t < end {
                                let gap = exp_sample(&mut rng, 3600.0 / q.arrivals_per_hour);
                                push(&mut heap, t + Duration::from_secs_f64(gap), Ev::Arrival(i));
                            } else {
                                continue;
                            }
                            arrivals += 1;
                            let leg = LegId((u128::from(rng.u64(..)) << 64) | u128::from(arrivals));
                            let talk = Duration::from_secs_f64(exp_sample(&mut rng, q.aht_s));
                            if let Some(p) = q.patience_s {
                                push(
                                    &mut heap,
                                    t + Duration::from_secs_f64(exp_sample(&mut rng, p)),
                                    Ev::Patience(leg),
                                );
                            }
                            let priority =
                                i32::from(q.vip_fraction > 0.0 && rng.f64() < q.vip_fraction);
                            callers.insert(
                                leg,
                                CallerLeg {
                                    talk,
                                    bridged: false,
                                },
                            );
                            let caller = CallerInfo {
                                number: format!("+1555{arrivals:07}"),
                                name: String::new(),
                                priority,
                                skills: Vec::new(),
                                first_arrived_unix_ms: None,
                                flow_exits: Default::default(),
                                agent: None,
                            };
                            Input::Switch(
                                t,
                                SwitchEvent::CallArrived {
                                    leg,
                                    queue: QueueId(q.id),
                                    caller,
                                },
                            )
                        }
                        Ev::Patience(leg) => match callers.get(&leg) {
                            Some(c) if !c.bridged => {
                                callers.remove(&leg);
                                Input::Switch(
                                    t,
                                    SwitchEvent::LegHungUp {
                                        leg,
                                        cause: HangupCause::Normal,
                                    },
                                )
                            }
                            _ => continue,
                        },
                        Ev::Answer(leg) => {
                            if !agent_legs.contains_key(&leg) {
                                continue; // hung up (offer timed out or cancelled) meanwhile
                            }
                            Input::Switch(t, SwitchEvent::LegAnswered { leg })
                        }
                        Ev::Bridged(a, b) => {
                            if !callers.contains_key(&a) || !agent_legs.contains_key(&b) {
                                continue; // one side hung up meanwhile
                            }
                            Input::Switch(t, SwitchEvent::Bridged { a, b })
                        }
                        Ev::TalkEnd(leg) => {
                            if callers.remove(&leg).is_none() {
                                continue;
                            }
                            Input::Switch(
                                t,
                                SwitchEvent::LegHungUp {
                                    leg,
                                    cause: HangupCause::Normal,
                                },
                            )
                        }
                    }
                }
                _ => {
                    if !active && heap_next.is_none() {
                        break;
                    }
                    now = next_engine.max(now);
                    Input::Timeout(now)
                }
            };
            inputs += 1;
            engine.handle_input(input)?;
            loop {
                let out = engine.poll_output();
                observe(&out);
                match out {
                    Output::Timeout(at) => {
                        next_engine = at;
                        break;
                    }
                    Output::Switch(cmd) => match cmd {
                        SwitchCommand::Originate { leg, dial, .. } => {
                            let Some(agent) = dial
                                .strip_prefix("user/")
                                .and_then(|n| n.parse::<u32>().ok())
                            else {
                                continue;
                            };
                            offers += 1;
                            if !busy_agents.insert(agent) {
                                return Err(SimError::Invariant {
                                    seed,
                                    at_s: now.duration_since(t0).as_secs_f64(),
                                    what: format!("agent {agent} rung while already on a leg"),
                                });
                            }
                            agent_legs.insert(leg, agent);
                            if sc.no_answer == 0.0 || rng.f64() >= sc.no_answer {
                                push(&mut heap, now + answer_delay, Ev::Answer(leg));
                            }
                        }
                        SwitchCommand::Bridge { a, b } => {
                            let Some(c) = callers.get_mut(&a) else {
                                return Err(SimError::Invariant {
                                    seed,
                                    at_s: now.duration_since(t0).as_secs_f64(),
                                    what: format!(
                                        "bridge of a caller leg that is gone ({a} to {b})"
                                    ),
                                });
                            };
                            if c.bridged {
                                return Err(SimError::Invariant {
                                    seed,
                                    at_s: now.duration_since(t0).as_secs_f64(),
                                    what: format!("caller {a} bridged twice"),
                                });
                            }
                            c.bridged = true;
                            let talk = c.talk;
                            push(&mut heap, now, Ev::Bridged(a, b));
                            push(&mut heap, now + talk, Ev::TalkEnd(a));
                        }
                        SwitchCommand::Hangup { leg, .. } => {
                            if let Some(agent) = agent_legs.remove(&leg) {
                                busy_agents.remove(&agent);
                            }
                            callers.remove(&leg);
                        }
                        SwitchCommand::Transfer { leg, .. }
                        | SwitchCommand::PlayThenHangup { leg, .. }
                        | SwitchCommand::Voicemail { leg, .. }
                        | SwitchCommand::ResumeFlow { leg, .. } => {
                            callers.remove(&leg);
                        }
                        SwitchCommand::Answer { .. }
                        | SwitchCommand::Music { .. }
                        | SwitchCommand::Announce { .. }
                        | SwitchCommand::Eavesdrop { .. }
                        // Nothing is captured in the simulation.
                        | SwitchCommand::Recording(_)
                        | SwitchCommand::Park { .. } => {}
                    },
                    Output::Persist(Record::Call(rec)) => {
                        if !seen_calls.insert(rec.call) {
                            return Err(SimError::Invariant {
                                seed,
                                at_s: now.duration_since(t0).as_secs_f64(),
                                what: format!("{} has two final records", rec.call),
                            });
                        }
                        // An agent on this call is free on the switch once its leg is hung
                        // up (the Hangup above); nothing else to do.
                        records += 1;
                        let r = &rec;
                        let wrap = r
                            .agent
                            .and_then(|a| wrap_by_agent.get(&a.0))
                            .copied()
                            .unwrap_or(0.0);
                        if r.outcome == CallOutcome::Answered {
                            // Busy time inside the measured window.
                            let arrived_s =
                                (r.arrived_unix_ms.saturating_sub(origin_ms)) as f64 / 1000.0;
                            let start = arrived_s + r.wait_s;
                            let stop = start + r.talk_s + wrap;
                            busy_s += (stop.min(end_s) - start.max(warm_s)).max(0.0);
                        }
                        if r.arrived_unix_ms >= warmup_ms {
                            let q = r.queues.last().copied().unwrap_or(QueueId(0));
                            let threshold = thresholds.get(&q).copied().unwrap_or(20.0);
                            report.add(r, threshold, wrap);
                            per_queue.entry(q).or_default().add(r, threshold, wrap);
                        }
                    }
                    Output::Persist(_) | Output::Notify(_) => {}
                }
            }
            if sc.check_invariants {
                engine.check_invariants().map_err(|v| SimError::Invariant {
                    seed,
                    at_s: now.duration_since(t0).as_secs_f64(),
                    what: v.0,
                })?;
            }
            if now > end + Duration::from_secs(48 * 3600) {
                break; // the drain should never take this long; report what we have
            }
        }
        if records != arrivals {
            return Err(SimError::Invariant {
                seed,
                at_s: now.duration_since(t0).as_secs_f64(),
                what: format!(
                    "{arrivals} callers arrived, {} final records, {} calls still active",
                    records,
                    engine.active_calls()
                ),
            });
        }
        let mut queues_out: Vec<QueueReport> = queues
            .iter()
            .map(|q| {
                let t = per_queue.get(&q.id).cloned().unwrap_or_default();
                QueueReport {
                    queue: q.id.0,
                    name: q.name.clone(),
                    offered: t.offered,
                    answered: t.answered,
                    abandoned: t.abandoned,
                    service_level: t.sl(),
                    asa_s: t.asa(),
                    aht_s: t.aht(),
                    longest_wait_s: t.longest,
                }
            })
            .collect();
        queues_out.sort_by_key(|q| q.queue);
        Ok(SimReport {
            seed,
            hours: sc.hours,
            agents: agents_n,
            offered: report.offered,
            answered: report.answered,
            abandoned: report.abandoned,
            other: report.offered - report.answered - report.abandoned,
            service_level: report.sl(),
            abandon_rate: ratio(report.abandoned as f64, report.offered as f64),
            asa_s: report.asa(),
            aht_s: report.aht(),
            occupancy: ratio(busy_s, agents_n as f64 * window),
            longest_wait_s: report.longest,
            queues: queues_out,
            engine_inputs: inputs,
            offers,
            engine_totals: Some(engine.stats().totals(now).since_start),
        })
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

#[derive(Clone, Debug, Default)]
struct Totals {
    offered: u64,
    answered: u64,
    abandoned: u64,
    within: u64,
    wait_sum: f64,
    handle_sum: f64,
    longest: f64,
}

impl Totals {
    fn add(&mut self, r: &CallRecord, threshold: f64, wrap: f64) {
        self.offered += 1;
        self.longest = self.longest.max(r.wait_s);
        match r.outcome {
            CallOutcome::Answered => {
                self.answered += 1;
                self.wait_sum += r.wait_s;
                self.handle_sum += r.talk_s + wrap;
                if r.wait_s <= threshold {
                    self.within += 1;
                }
            }
            CallOutcome::Abandoned => self.abandoned += 1,
            _ => {}
        }
    }
    fn sl(&self) -> f64 {
        ratio(self.within as f64, self.offered as f64)
    }
    fn asa(&self) -> f64 {
        ratio(self.wait_sum, self.answered as f64)
    }
    fn aht(&self) -> f64 {
        ratio(self.handle_sum, self.answered as f64)
    }
}
