//! `switchyard sim campaign`: the real engine and its pacing against a seeded customer model,
//! in virtual time, over working days.
//!
//! The harness plays the switch and the people. Each campaign dial reaches a person with
//! probability `answer_rate` after `answer_delay`, an answering machine with `machine_rate`
//! (detected after `amd_delay`), is busy with `busy_rate`, and otherwise rings out after
//! `no_answer_time` (or the campaign's ring timeout, whichever is first). A person bridged to
//! an agent talks for an exponential time with mean `aht`; the queue's wrap-up follows. Agent
//! phones auto-answer after `agent_answer` (predictive agents wear headsets on auto-answer),
//! for every call or, with `persistent_lines`, once a day for a line each call is bridged to.
//!
//! Each day the agents log in, the campaign runs `hours_per_day`, is paused, the lines in
//! flight finish, and the agents log out. Occupancy is measured from the engine's own agent
//! state records: talk (on a call) and busy (on a call or in wrap-up) over staffed time
//! (logged in, in any state).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::harness::SimError;
use crate::agent::AgentStateKind;
use crate::config::{AgentConfig, EngineConfig, Membership, QueueConfig};
use crate::dialer::{
    AmdPolicy, AttemptOutcome, CampaignConfig, CampaignControl, ContactSpec, DialMode, MIN_RING,
    MachineAction, RetryRule, RetryRules,
};
use crate::engine::Engine;
use crate::hash::{FastMap, FastSet};
use crate::ids::{AgentId, CampaignId, ContactId, QueueId};
use crate::io::{
    AmdResult, Command, HangupCause, Input, LegId, LegKind, Output, Presence, Record,
    SwitchCommand, SwitchEvent,
};

/// What `switchyard sim campaign` is given.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CampaignSimConfig {
    pub agents: u32,
    pub mode: DialMode,
    /// Dials that reach a person.
    pub answer_rate: f64,
    /// Dials answered by a machine.
    pub machine_rate: f64,
    pub busy_rate: f64,
    /// Mean talk time (exponential).
    pub aht: Duration,
    pub wrap: Duration,
    /// Uniform range of the time a person or machine takes to answer.
    pub answer_delay: (Duration, Duration),
    /// Uniform range after which an unanswered dial gives up on the network side.
    pub no_answer_time: (Duration, Duration),
    /// Uniform range of answering-machine detection time after answer.
    pub amd_delay: (Duration, Duration),
    pub agent_answer: Duration,
    /// Agents on persistent lines (called once a day, each call bridged at once) instead of
    /// rung for every call.
    pub persistent_lines: bool,
    pub ring_timeout: Duration,
    /// Early release of lines that rang this long (the campaign setting; at least the legal
    /// 15 s), or none.
    pub release_after: Option<Duration>,
    pub days: u32,
    pub hours_per_day: f64,
    pub abandon_target: f64,
    pub seed: u64,
}

impl Default for CampaignSimConfig {
    /// The reference case: 0.25 answer rate, 120 s talk, 10 s wrap, answer in
    /// 5-20 s, no answer after 15-30 s, 8-hour days over 30 days, 3% target.
    fn default() -> Self {
        let s = Duration::from_secs;
        CampaignSimConfig {
            agents: 10,
            mode: DialMode::Predictive,
            answer_rate: 0.25,
            machine_rate: 0.0,
            busy_rate: 0.0,
            aht: s(120),
            wrap: s(10),
            answer_delay: (s(5), s(20)),
            no_answer_time: (s(15), s(30)),
            amd_delay: (s(1), s(3)),
            agent_answer: Duration::from_millis(300),
            persistent_lines: false,
            ring_timeout: s(25),
            release_after: Some(MIN_RING),
            days: 30,
            hours_per_day: 8.0,
            abandon_target: 0.03,
            seed: 1,
        }
    }
}

impl CampaignSimConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, m: &str| Err((f.to_owned(), m.to_owned()));
        if self.agents == 0 || self.agents > 100_000 {
            return bad("agents", "must be 1..=100000");
        }
        for (f, v) in [
            ("answer_rate", self.answer_rate),
            ("machine_rate", self.machine_rate),
            ("busy_rate", self.busy_rate),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad(f, "must be in 0..=1");
            }
        }
        if self.answer_rate + self.machine_rate + self.busy_rate > 1.0 {
            return bad("answer_rate", "answer + machine + busy rates exceed 1");
        }
        for (f, (lo, hi)) in [
            ("answer_delay", self.answer_delay),
            ("no_answer_time", self.no_answer_time),
            ("amd_delay", self.amd_delay),
        ] {
            if lo > hi {
                return bad(f, "MIN must not exceed MAX");
            }
        }
        if self.release_after.is_some_and(|r| r < MIN_RING) {
            return bad("release_after", "must be at least 15 s");
        }
        if self.aht.is_zero() {
            return bad("aht", "must be positive");
        }
        if self.days == 0 || self.days > 366 {
            return bad("days", "must be 1..=366");
        }
        if !(self.hours_per_day > 0.0 && self.hours_per_day <= 20.0) {
            return bad("hours_per_day", "must be in (0, 20]");
        }
        if !(self.abandon_target > 0.0 && self.abandon_target <= 0.5) {
            return bad("abandon_target", "must be in (0, 0.5]");
        }
        Ok(())
    }
}

/// What `switchyard sim campaign` prints.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CampaignSimReport {
    pub mode: DialMode,
    pub agents: u32,
    pub days: u32,
    pub seed: u64,
    pub dialed: u64,
    /// Persons connected to an agent.
    pub connected: u64,
    pub abandoned: u64,
    pub machine: u64,
    pub no_answer: u64,
    pub busy: u64,
    /// Lines pacing released after the minimum ring (included in `no_answer`).
    pub released: u64,
    /// Abandoned / persons answered over the whole run (the 30-day rate for 30 days).
    pub abandon_rate: f64,
    /// The worst ledger day.
    pub abandon_rate_max_day: f64,
    /// Talk time / staffed time.
    pub talk_occupancy: f64,
    /// (Talk + wrap-up) / staffed time.
    pub busy_occupancy: f64,
    /// Staffed time spent ringing (reserved) and idle (available).
    pub reserved_share: f64,
    pub idle_share: f64,
    pub staffed_hours: f64,
    /// Engine inputs processed.
    pub engine_inputs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    DayStart(u32),
    /// Keep the list from running dry (a real list is loaded ahead of the dialer).
    TopUp,
    DayEnd(u32),
    /// Log the agents out once the paused campaign's lines are gone.
    Drain(u32),
    Answer(LegId),
    Verdict(LegId, bool),
    /// Busy (true) or no answer.
    Ends(LegId, bool),
    TalkEnd(LegId),
    /// The switch joined the two legs of a `Bridge` (at once in this model).
    Bridged(LegId, LegId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Party {
    Person,
    Machine,
}

/// 2026-01-05T09:00:00Z, a Monday: days start at 09:00 UTC (contacts are in UTC).
const ORIGIN_UNIX_MS: u64 = 1_767_603_600_000;
const CAMPAIGN: CampaignId = CampaignId(1);
const QUEUE: QueueId = QueueId(1);
/// Contacts handed to the engine per batch, topped up when fewer remain.
const CONTACT_BATCH: u64 = 20_000;

fn uniform(rng: &mut fastrand::Rng, (lo, hi): (Duration, Duration)) -> Duration {
    lo + (hi - lo).mul_f64(rng.f64())
}

fn exp_sample(rng: &mut fastrand::Rng, mean: Duration) -> Duration {
    Duration::from_secs_f64(-(1.0 - rng.f64()).ln() * mean.as_secs_f64())
}

/// Runs the campaign simulation.
pub fn run_campaign(sim: &CampaignSimConfig) -> Result<CampaignSimReport, SimError> {
    sim.validate()
        .map_err(|(field, message)| SimError::Scenario { field, message })?;
    let seed = sim.seed;
    let t0 = Instant::now();
    let ecfg = EngineConfig {
        origin_unix_ms: ORIGIN_UNIX_MS,
        persist_traces: false,
        persist_pacers: false,
        trace_memory: 0,
        max_calls: usize::MAX,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(ecfg, seed, t0);
    let mut rng = fastrand::Rng::with_seed(seed ^ 0xCA4A_16E0_0000_0001);
    let mut inputs = 0u64;
    let mut feed = |engine: &mut Engine, input: Input| -> Result<(), SimError> {
        inputs += 1;
        engine.handle_input(input)?;
        Ok(())
    };
    let queue = QueueConfig {
        id: QUEUE,
        name: "campaign".into(),
        wrapup: sim.wrap,
        offer_timeout: Duration::from_secs(10),
        ..QueueConfig::default()
    };
    feed(
        &mut engine,
        Input::Api(t0, Command::UpsertQueue(Box::new(queue))),
    )?;
    for i in 1..=sim.agents {
        let id = AgentId(i);
        let agent = AgentConfig {
            id,
            name: format!("agent {i}"),
            contact: format!("user/{i}"),
            max_no_answer: u32::MAX,
            persistent_line: sim.persistent_lines,
            ..AgentConfig::default()
        };
        feed(
            &mut engine,
            Input::Api(t0, Command::UpsertAgent(Box::new(agent))),
        )?;
        feed(
            &mut engine,
            Input::Api(
                t0,
                Command::SetMemberships {
                    agent: id,
                    memberships: vec![Membership::new(QUEUE)],
                },
            ),
        )?;
    }
    let amd = sim.machine_rate > 0.0;
    let campaign = CampaignConfig {
        id: CAMPAIGN,
        name: "sim".into(),
        mode: sim.mode,
        queue: QUEUE,
        max_lines: sim.agents.saturating_mul(10).max(10),
        ring_timeout: sim.ring_timeout,
        release_after: sim.release_after,
        abandon_target: sim.abandon_target,
        amd: AmdPolicy {
            enabled: amd,
            on_machine: MachineAction::Drop,
            timeout: sim.amd_delay.1 + Duration::from_secs(1),
        },
        // The customer model draws every dial afresh, so retries only shape the list.
        retry: RetryRules {
            busy: RetryRule::new(15 * 60, 3),
            no_answer: RetryRule::new(60 * 60, 3),
            failed: RetryRule::new(30 * 60, 1),
            machine: RetryRule::new(4 * 3600, 2),
            abandoned: RetryRule::new(2 * 3600, 2),
        },
        window: crate::dialer::CallingWindow {
            start_minute: 0,
            end_minute: 24 * 60,
        },
        ..CampaignConfig::default()
    };
    feed(
        &mut engine,
        Input::Api(t0, Command::UpsertCampaign(Box::new(campaign))),
    )?;

    let mut heap: BinaryHeap<Reverse<(Instant, u64, Ev)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |heap: &mut BinaryHeap<Reverse<(Instant, u64, Ev)>>, at: Instant, ev: Ev| {
        seq += 1;
        heap.push(Reverse((at, seq, ev)));
    };
    let day = Duration::from_secs(86_400);
    let open = Duration::from_secs_f64(sim.hours_per_day * 3600.0);
    for d in 0..sim.days {
        push(&mut heap, t0 + day * d, Ev::DayStart(d));
        let mut t = Duration::ZERO;
        while t < open {
            push(&mut heap, t0 + day * d + t, Ev::TopUp);
            t += Duration::from_secs(600);
        }
        push(&mut heap, t0 + day * d + open, Ev::DayEnd(d));
    }

    let mut next_contact = 0u64;
    // Customer legs: who answered (once answered), whether bridged.
    let mut customers: FastMap<LegId, (Option<Party>, bool)> = FastMap::default();
    let mut agent_legs: FastMap<LegId, u32> = FastMap::default();
    let mut busy_agents: FastSet<u32> = FastSet::default();
    // Agent state accounting from the engine's records.
    let mut agent_state: FastMap<AgentId, (AgentStateKind, u64)> = FastMap::default();
    let mut time_in = [0u64; 6];
    let mut attempts = [0u64; 8];
    let mut next_engine = t0;
    let mut now = t0;
    let mut checks = 0u64;
    let mut released = 0u64;
    let end_of_run = t0 + day * sim.days;

    loop {
        let heap_next = heap.peek().map(|Reverse((at, _, _))| *at);
        let input = match heap_next {
            Some(at) if at <= next_engine => {
                let Some(Reverse((at, _, ev))) = heap.pop() else {
                    break;
                };
                now = at;
                match ev {
                    Ev::TopUp => {
                        let remaining = engine
                            .campaign_stats(CAMPAIGN)
                            .map_or(0, |s| s.contacts_remaining);
                        if remaining >= CONTACT_BATCH * 3 {
                            continue;
                        }
                        let batch: Vec<ContactSpec> = (0..CONTACT_BATCH)
                            .map(|i| {
                                let id = next_contact + i;
                                ContactSpec {
                                    id: ContactId(id),
                                    number: format!("+1555{id:07}"),
                                    zone: "UTC".into(),
                                    attempts: 0,
                                    not_before_unix_ms: 0,
                                }
                            })
                            .collect();
                        next_contact += CONTACT_BATCH;
                        Input::Api(
                            at,
                            Command::AddContacts {
                                campaign: CAMPAIGN,
                                contacts: batch,
                            },
                        )
                    }
                    Ev::DayStart(_) => {
                        let remaining = engine
                            .campaign_stats(CAMPAIGN)
                            .map_or(0, |s| s.contacts_remaining);
                        if remaining < CONTACT_BATCH * 3 {
                            let batch: Vec<ContactSpec> = (0..CONTACT_BATCH * 3)
                                .map(|i| {
                                    let id = next_contact + i;
                                    ContactSpec {
                                        id: ContactId(id),
                                        number: format!("+1555{id:07}"),
                                        zone: "UTC".into(),
                                        attempts: 0,
                                        not_before_unix_ms: 0,
                                    }
                                })
                                .collect();
                            next_contact += CONTACT_BATCH * 3;
                            feed(
                                &mut engine,
                                Input::Api(
                                    at,
                                    Command::AddContacts {
                                        campaign: CAMPAIGN,
                                        contacts: batch,
                                    },
                                ),
                            )?;
                        }
                        for i in 1..=sim.agents {
                            feed(
                                &mut engine,
                                Input::Api(
                                    at,
                                    Command::SetAgentPresence {
                                        agent: AgentId(i),
                                        presence: Presence::Available,
                                    },
                                ),
                            )?;
                        }
                        Input::Api(
                            at,
                            Command::ControlCampaign {
                                campaign: CAMPAIGN,
                                control: CampaignControl::Start,
                            },
                        )
                    }
                    Ev::DayEnd(d) => {
                        push(&mut heap, at + Duration::from_secs(1), Ev::Drain(d));
                        Input::Api(
                            at,
                            Command::ControlCampaign {
                                campaign: CAMPAIGN,
                                control: CampaignControl::Pause,
                            },
                        )
                    }
                    Ev::Drain(d) => {
                        if engine.campaign_lines(CAMPAIGN) > 0 {
                            push(&mut heap, at + Duration::from_secs(1), Ev::Drain(d));
                            continue;
                        }
                        for i in 1..=sim.agents {
                            feed(
                                &mut engine,
                                Input::Api(
                                    at,
                                    Command::SetAgentPresence {
                                        agent: AgentId(i),
                                        presence: Presence::LoggedOut,
                                    },
                                ),
                            )?;
                        }
                        Input::Timeout(at)
                    }
                    Ev::Answer(leg) => {
                        if agent_legs.contains_key(&leg) {
                            Input::Switch(at, SwitchEvent::LegAnswered { leg })
                        } else if let Some((Some(party), _)) = customers.get(&leg).copied() {
                            if amd {
                                let d = uniform(&mut rng, sim.amd_delay);
                                push(&mut heap, at + d, Ev::Verdict(leg, party == Party::Person));
                            }
                            Input::Switch(at, SwitchEvent::LegAnswered { leg })
                        } else {
                            continue;
                        }
                    }
                    Ev::Verdict(leg, person) => {
                        if !customers.contains_key(&leg) {
                            continue;
                        }
                        let result = if person {
                            AmdResult::Human
                        } else {
                            AmdResult::Machine
                        };
                        Input::Switch(at, SwitchEvent::MachineDetection { leg, result })
                    }
                    Ev::Ends(leg, busy) => {
                        let cause = if busy {
                            HangupCause::Busy
                        } else {
                            HangupCause::NoAnswer
                        };
                        match customers.get(&leg) {
                            Some((None, _)) => {}
                            _ => continue,
                        }
                        customers.remove(&leg);
                        Input::Switch(at, SwitchEvent::LegHungUp { leg, cause })
                    }
                    Ev::Bridged(a, b) => {
                        if !customers.contains_key(&a) {
                            continue; // the person hung up meanwhile
                        }
                        Input::Switch(at, SwitchEvent::Bridged { a, b })
                    }
                    Ev::TalkEnd(leg) => {
                        if customers.remove(&leg).is_none() {
                            continue;
                        }
                        Input::Switch(
                            at,
                            SwitchEvent::LegHungUp {
                                leg,
                                cause: HangupCause::Normal,
                            },
                        )
                    }
                }
            }
            _ => {
                if heap_next.is_none() && now >= end_of_run {
                    break;
                }
                now = next_engine.max(now);
                Input::Timeout(now)
            }
        };
        feed(&mut engine, input)?;
        loop {
            match engine.poll_output() {
                Output::Timeout(at) => {
                    next_engine = at;
                    break;
                }
                Output::Switch(cmd) => match cmd {
                    SwitchCommand::Originate {
                        kind: LegKind::Agent,
                        leg,
                        dial,
                        ..
                    } => {
                        let Some(agent) = dial
                            .strip_prefix("user/")
                            .and_then(|n| n.parse::<u32>().ok())
                        else {
                            continue;
                        };
                        if !busy_agents.insert(agent) {
                            return Err(SimError::Invariant {
                                seed,
                                at_s: now.duration_since(t0).as_secs_f64(),
                                what: format!("agent {agent} rung while already on a leg"),
                            });
                        }
                        agent_legs.insert(leg, agent);
                        push(&mut heap, now + sim.agent_answer, Ev::Answer(leg));
                    }
                    SwitchCommand::Originate { leg, timeout, .. } => {
                        let u = rng.f64();
                        let answer = uniform(&mut rng, sim.answer_delay);
                        let answers = u < sim.answer_rate + sim.machine_rate;
                        if answers && answer < timeout {
                            let party = if u < sim.answer_rate {
                                Party::Person
                            } else {
                                Party::Machine
                            };
                            customers.insert(leg, (Some(party), false));
                            push(&mut heap, now + answer, Ev::Answer(leg));
                        } else if answers {
                            // Would have answered after the ring timeout: rings out.
                            customers.insert(leg, (None, false));
                            push(&mut heap, now + timeout, Ev::Ends(leg, false));
                        } else if u < sim.answer_rate + sim.machine_rate + sim.busy_rate {
                            customers.insert(leg, (None, false));
                            let d = Duration::from_millis(500 + rng.u64(0..2000));
                            push(&mut heap, now + d, Ev::Ends(leg, true));
                        } else {
                            customers.insert(leg, (None, false));
                            let d = uniform(&mut rng, sim.no_answer_time).min(timeout);
                            push(&mut heap, now + d, Ev::Ends(leg, false));
                        }
                    }
                    SwitchCommand::Bridge { a, b } => {
                        let Some(c) = customers.get_mut(&a) else {
                            return Err(SimError::Invariant {
                                seed,
                                at_s: now.duration_since(t0).as_secs_f64(),
                                what: format!("bridge of a customer leg that is gone ({a} to {b})"),
                            });
                        };
                        if c.1 {
                            return Err(SimError::Invariant {
                                seed,
                                at_s: now.duration_since(t0).as_secs_f64(),
                                what: format!("customer {a} bridged twice"),
                            });
                        }
                        c.1 = true;
                        let talk = exp_sample(&mut rng, sim.aht);
                        push(&mut heap, now, Ev::Bridged(a, b));
                        push(&mut heap, now + talk, Ev::TalkEnd(a));
                    }
                    SwitchCommand::Hangup { leg, cause } => {
                        if let Some(agent) = agent_legs.remove(&leg) {
                            busy_agents.remove(&agent);
                        }
                        if customers.remove(&leg).is_some() && cause == "ORIGINATOR_CANCEL" {
                            released += 1;
                        }
                    }
                    SwitchCommand::PlayThenHangup { leg, .. }
                    | SwitchCommand::Transfer { leg, .. }
                    | SwitchCommand::Voicemail { leg, .. }
                    | SwitchCommand::ResumeFlow { leg, .. } => {
                        customers.remove(&leg);
                    }
                    SwitchCommand::Answer { .. }
                    | SwitchCommand::Music { .. }
                    | SwitchCommand::Announce { .. }
                    | SwitchCommand::Eavesdrop { .. }
                    // Nothing is captured in the simulation.
                    | SwitchCommand::Recording(_)
                    | SwitchCommand::Park { .. } => {}
                },
                Output::Persist(Record::AgentState(s)) => {
                    let prev = agent_state.insert(s.agent, (s.state, s.at_unix_ms));
                    if let Some((state, since)) = prev {
                        time_in[state as usize] += s.at_unix_ms.saturating_sub(since);
                    }
                }
                Output::Persist(Record::Attempt(a)) => {
                    let i = match a.outcome {
                        AttemptOutcome::Connected => 0,
                        AttemptOutcome::Abandoned => 1,
                        AttemptOutcome::Machine => 2,
                        AttemptOutcome::NoAnswer => 3,
                        AttemptOutcome::Busy => 4,
                        AttemptOutcome::Failed => 5,
                        AttemptOutcome::HungUp => 6,
                        AttemptOutcome::Cancelled | AttemptOutcome::Lost => 7,
                    };
                    attempts[i] += 1;
                }
                Output::Persist(_) | Output::Notify(_) => {}
            }
        }
        checks += 1;
        if checks.is_multiple_of(1024)
            && let Err(v) = engine.check_invariants()
        {
            return Err(SimError::Invariant {
                seed,
                at_s: now.duration_since(t0).as_secs_f64(),
                what: v.0,
            });
        }
    }
    let stats = engine
        .campaign_stats(CAMPAIGN)
        .ok_or_else(|| SimError::Scenario {
            field: "campaign".into(),
            message: "the campaign vanished".into(),
        })?;
    let ledger = engine.campaign_ledger(CAMPAIGN);
    let (persons, abandoned) = ledger
        .iter()
        .fold((0u64, 0u64), |(h, a), d| (h + d.humans, a + d.abandoned));
    let worst = ledger
        .iter()
        .filter(|d| d.humans > 0)
        .map(|d| d.abandoned as f64 / d.humans as f64)
        .fold(0.0, f64::max);
    let ms = |k: AgentStateKind| time_in[k as usize] as f64;
    let staffed: f64 = AgentStateKind::ALL
        .iter()
        .filter(|k| **k != AgentStateKind::LoggedOut)
        .map(|k| ms(*k))
        .sum();
    let talk = ms(AgentStateKind::OnCall);
    let busy = talk + ms(AgentStateKind::WrapUp);
    let ratio = |x: f64| if staffed > 0.0 { x / staffed } else { 0.0 };
    Ok(CampaignSimReport {
        mode: sim.mode,
        agents: sim.agents,
        days: sim.days,
        seed,
        dialed: stats.dialed,
        connected: attempts[0],
        abandoned: attempts[1],
        machine: attempts[2],
        no_answer: attempts[3],
        busy: attempts[4],
        released,
        abandon_rate: if persons == 0 {
            0.0
        } else {
            abandoned as f64 / persons as f64
        },
        abandon_rate_max_day: worst,
        talk_occupancy: ratio(talk),
        busy_occupancy: ratio(busy),
        reserved_share: ratio(ms(AgentStateKind::Reserved)),
        idle_share: ratio(ms(AgentStateKind::Available)),
        staffed_hours: staffed / 3_600_000.0,
        engine_inputs: inputs,
    })
}
