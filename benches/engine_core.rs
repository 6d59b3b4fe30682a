//! The routing core's speed, without I/O.
//!
//! 1. Decision latency, call ready -> offer issued, at 10,000 agents, 1,000 queues and 50
//!    skills: (a) a call arrives and ready agents exist; (b) an agent comes free while calls
//!    wait. Measured around `handle_input` + draining `poll_output`, per decision.
//! 2. A simulated day: 1,000,000 calls and 5,000 agents through the full simulator (the
//!    engine plus the virtual-time call model), wall time and peak memory.
//!
//! `cargo bench --bench engine_core` (release, one core: the engine is single-threaded);
//! `cargo bench --bench engine_core -- free` (or `day`, `arrival`, `mix`, a strategy name)
//! runs the matching parts only.

use std::hint::black_box;
use std::time::{Duration, Instant};

use switchyard_engine::config::SkillRequirement;
use switchyard_engine::sim::{AgentGroup, QueueScenario, Scenario, Simulation};
use switchyard_engine::{
    AgentConfig, AgentId, CallerInfo, Command, Engine, EngineConfig, HangupCause, Input, LegId,
    Membership, Output, Presence, QueueConfig, QueueId, SkillId, Strategy, SwitchCommand,
    SwitchEvent,
};

/// `SWITCHYARD_BENCH_SMALL=1` divides agents and queues by ten (for profiling under valgrind).
fn small() -> bool {
    std::env::var_os("SWITCHYARD_BENCH_SMALL").is_some()
}
fn agents_n() -> u32 {
    if small() { AGENTS / 10 } else { AGENTS }
}
fn queues_n() -> u32 {
    if small() { QUEUES / 10 } else { QUEUES }
}
const AGENTS: u32 = 10_000;
const QUEUES: u32 = 1_000;
const SKILLS: u32 = 50;
const QUEUES_PER_AGENT: usize = 10;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(label: &str, mut v: Vec<Duration>) {
    v.sort_unstable();
    println!(
        "{label}: n={} p50={:.2} us p99={:.2} us p99.9={:.2} us max={:.2} us",
        v.len(),
        percentile(&v, 0.5).as_secs_f64() * 1e6,
        percentile(&v, 0.99).as_secs_f64() * 1e6,
        percentile(&v, 0.999).as_secs_f64() * 1e6,
        v.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
    );
}

/// Fires timers that are due, as the driver does when it wakes (announcements, timeouts):
/// that work is not part of the next decision.
fn catch_up(engine: &mut Engine, now: Instant, due: &mut Instant) {
    if *due <= now {
        engine.handle_input(Input::Timeout(now)).unwrap();
        let mut sink = Vec::new();
        *due = drain(engine, &mut sink);
    }
}

/// Drains outputs; returns the agent legs originated and the next timeout.
fn drain(engine: &mut Engine, originated: &mut Vec<LegId>) -> Instant {
    loop {
        match engine.poll_output() {
            Output::Timeout(t) => return t,
            Output::Switch(SwitchCommand::Originate { leg, .. }) => originated.push(leg),
            other => {
                black_box(other);
            }
        }
    }
}

fn build(strategies: &[Strategy], rng: &mut fastrand::Rng, t0: Instant) -> Engine {
    let cfg = EngineConfig {
        persist_traces: true,
        trace_memory: 1000,
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg, 1, t0);
    for q in 0..queues_n() {
        let qc = QueueConfig {
            id: QueueId(q),
            name: format!("q{q}"),
            strategy: strategies[q as usize % strategies.len()],
            skills: vec![SkillRequirement {
                skill: SkillId(q % SKILLS),
                min: 5,
            }],
            ..QueueConfig::default()
        };
        e.handle_input(Input::Api(t0, Command::UpsertQueue(Box::new(qc))))
            .unwrap();
    }
    for a in 0..agents_n() {
        let mut queues: Vec<u32> = Vec::new();
        while queues.len() < QUEUES_PER_AGENT {
            let q = rng.u32(0..queues_n());
            if !queues.contains(&q) {
                queues.push(q);
            }
        }
        // The skills of its queues at 5..=10, plus a few others.
        let mut skills: Vec<(SkillId, u8)> = queues
            .iter()
            .map(|q| (SkillId(q % SKILLS), rng.u8(5..=10)))
            .collect();
        for _ in 0..3 {
            skills.push((SkillId(rng.u32(0..SKILLS)), rng.u8(1..=10)));
        }
        skills.sort_by_key(|s| s.0);
        skills.dedup_by_key(|s| s.0);
        let ac = AgentConfig {
            id: AgentId(a),
            contact: format!("user/{a}"),
            skills,
            ..AgentConfig::default()
        };
        e.handle_input(Input::Api(t0, Command::UpsertAgent(Box::new(ac))))
            .unwrap();
        let ms = queues
            .iter()
            .enumerate()
            .map(|(i, &q)| Membership {
                queue: QueueId(q),
                level: 1 + (i as u32 % 2),
                position: a,
                weight: 1 + a % 3,
            })
            .collect();
        e.handle_input(Input::Api(
            t0,
            Command::SetMemberships {
                agent: AgentId(a),
                memberships: ms,
            },
        ))
        .unwrap();
        e.handle_input(Input::Api(
            t0,
            Command::SetAgentPresence {
                agent: AgentId(a),
                presence: Presence::Available,
            },
        ))
        .unwrap();
    }
    let mut sink = Vec::new();
    drain(&mut e, &mut sink);
    e
}

/// (a) Calls arrive while about half the agents are busy: time from the arrival to the
/// offer. Calls are answered at once and the oldest is hung up to keep the busy share.
fn arrival_latency(label: &str, strategies: &[Strategy], decisions: usize) {
    let mut rng = fastrand::Rng::with_seed(7);
    let t0 = Instant::now();
    let mut e = build(strategies, &mut rng, t0);
    let mut now = t0;
    let mut active: std::collections::VecDeque<LegId> = std::collections::VecDeque::new();
    let mut lat = Vec::with_capacity(decisions);
    let mut originated = Vec::new();
    let mut no_agent = 0u64;
    let mut due = now;
    for i in 0..decisions + 20_000 {
        now += Duration::from_millis(3);
        let leg = LegId(0xCA11_0000_0000_0000_0000_0000_0000_0000 | i as u128);
        let queue = QueueId(rng.u32(0..queues_n()));
        originated.clear();
        catch_up(&mut e, now, &mut due);
        let start = Instant::now();
        e.handle_input(Input::Switch(
            now,
            SwitchEvent::CallArrived {
                leg,
                queue,
                caller: CallerInfo::default(),
            },
        ))
        .unwrap();
        due = drain(&mut e, &mut originated);
        let took = start.elapsed();
        if originated.is_empty() {
            no_agent += 1;
        } else if i >= 20_000 {
            // The first 20,000 fill the center up to about half busy.
            lat.push(took);
        }
        for leg in originated.drain(..) {
            e.handle_input(Input::Switch(now, SwitchEvent::LegAnswered { leg }))
                .unwrap();
        }
        let mut sink = Vec::new();
        drain(&mut e, &mut sink);
        active.push_back(leg);
        if active.len() > (agents_n() / 2) as usize {
            let old = active.pop_front().unwrap();
            e.handle_input(Input::Switch(
                now,
                SwitchEvent::LegHungUp {
                    leg: old,
                    cause: HangupCause::Normal,
                },
            ))
            .unwrap();
            drain(&mut e, &mut sink);
        }
    }
    report(&format!("{label}: call arrives, agents free"), lat);
    if no_agent > 0 {
        println!("  ({no_agent} arrivals found no eligible free agent and waited)");
    }
}

/// (b) Every agent busy and calls waiting everywhere; each decision is one agent coming free
/// and being offered the most urgent call it may take across its ten queues.
fn agent_free_latency(label: &str, strategies: &[Strategy], decisions: usize) {
    let mut rng = fastrand::Rng::with_seed(8);
    let t0 = Instant::now();
    let mut e = build(strategies, &mut rng, t0);
    let mut now = t0;
    let mut originated = Vec::new();
    let mut talking: std::collections::VecDeque<LegId> = std::collections::VecDeque::new();
    let mut leg_n: u128 = 0;
    let mut arrive =
        |e: &mut Engine, now: Instant, originated: &mut Vec<LegId>, rng: &mut fastrand::Rng| {
            leg_n += 1;
            let leg = LegId(0xB0B0_0000_0000_0000_0000_0000_0000_0000 | leg_n);
            let queue = QueueId(rng.u32(0..queues_n()));
            e.handle_input(Input::Switch(
                now,
                SwitchEvent::CallArrived {
                    leg,
                    queue,
                    caller: CallerInfo::default(),
                },
            ))
            .unwrap();
            drain(e, originated);
            leg
        };
    // Fill every agent, then leave about 20 calls waiting per queue.
    let mut callers = Vec::new();
    while e
        .agent_ids()
        .any(|a| e.agent_state(a) == Some(switchyard_engine::agent::AgentStateKind::Available))
        && callers.len() < 60_000
    {
        now += Duration::from_millis(1);
        let leg = arrive(&mut e, now, &mut originated, &mut rng);
        callers.push(leg);
        for l in originated.drain(..) {
            e.handle_input(Input::Switch(now, SwitchEvent::LegAnswered { leg: l }))
                .unwrap();
            talking.push_back(leg);
        }
        let mut sink = Vec::new();
        drain(&mut e, &mut sink);
    }
    for _ in 0..(queues_n() * 20) {
        now += Duration::from_millis(1);
        arrive(&mut e, now, &mut originated, &mut rng);
        originated.clear();
    }
    let mut lat = Vec::with_capacity(decisions);
    let mut due = now;
    for _ in 0..decisions {
        now += Duration::from_millis(3);
        let Some(done) = talking.pop_front() else {
            break;
        };
        originated.clear();
        catch_up(&mut e, now, &mut due);
        let start = Instant::now();
        e.handle_input(Input::Switch(
            now,
            SwitchEvent::LegHungUp {
                leg: done,
                cause: HangupCause::Normal,
            },
        ))
        .unwrap();
        due = drain(&mut e, &mut originated);
        let took = start.elapsed();
        if !originated.is_empty() {
            lat.push(took);
        }
        for l in originated.drain(..) {
            let call_leg = e.call_by_leg(l).and_then(|c| e.call_info(c)).map(|c| c.leg);
            e.handle_input(Input::Switch(now, SwitchEvent::LegAnswered { leg: l }))
                .unwrap();
            if let Some(c) = call_leg {
                talking.push_back(c);
            }
        }
        let mut sink = Vec::new();
        drain(&mut e, &mut sink);
        // Keep the lines full.
        arrive(&mut e, now, &mut originated, &mut rng);
        originated.clear();
    }
    report(&format!("{label}: agent frees, calls waiting"), lat);
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// 1,000,000 calls over 24 h to 5,000 agents: 50 queues with a skill each, agents in groups
/// of 100 covering five queues each, exponential talk (400 s: 93% occupancy) and patience
/// (120 s).
fn simulated_day() {
    let queues: Vec<QueueScenario> = (0..50)
        .map(|q| QueueScenario {
            id: q,
            name: format!("q{q}"),
            strategy: None,
            sl_threshold_s: 20.0,
            arrivals_per_hour: 1_000_000.0 / 24.0 / 50.0,
            aht_s: 400.0,
            patience_s: Some(120.0),
            skills: vec![(q, 5)],
            vip_fraction: 0.05,
            max_wait_s: None,
            overflow_to: None,
            initial_max_level: None,
            escalation: Vec::new(),
        })
        .collect();
    let agents: Vec<AgentGroup> = (0..50)
        .map(|g| AgentGroup {
            count: 100,
            skills: (0..5).map(|k| ((g + k * 10) % 50, 7)).collect(),
            queues: (0..5).map(|k| (g + k * 10) % 50).collect(),
            level: 1,
            wrapup_s: 0.0,
        })
        .collect();
    let scenario = Scenario {
        hours: 24.0,
        warmup_hours: 0.0,
        seed: 2026,
        answer_delay_s: 0.0,
        no_answer: 0.0,
        queues,
        agents,
        check_invariants: false,
    };
    let rss_before = peak_rss_mb();
    let start = Instant::now();
    let report = Simulation::new(scenario)
        .expect("valid")
        .run()
        .expect("runs");
    let took = start.elapsed();
    println!(
        "simulated day: {} calls, {} agents, 50 queues in {:.2} s wall ({:.0} calls/s, {} engine inputs); SL {:.3}, abandon {:.3}, occupancy {:.3}; peak RSS {:.0} MB (before: {:.0} MB)",
        report.offered,
        report.agents,
        took.as_secs_f64(),
        report.offered as f64 / took.as_secs_f64(),
        report.engine_inputs,
        report.service_level,
        report.abandon_rate,
        report.occupancy,
        peak_rss_mb().unwrap_or(f64::NAN),
        rss_before.unwrap_or(f64::NAN),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let only = |name: &str| {
        args.iter()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .all(|a| name.contains(a.as_str()))
    };
    // The day first, so that its peak memory is its own.
    if only("day") {
        simulated_day();
    }
    let main_mix = [
        Strategy::LongestIdleAgent,
        Strategy::SkillsBestMatch,
        Strategy::RoundRobin,
        Strategy::TopDown,
        Strategy::LeastTalkTime,
        Strategy::FewestCalls,
        Strategy::Random,
        Strategy::WeightedRandom,
    ];
    if only("latency arrival mix") {
        arrival_latency("8-strategy mix", &main_mix, 100_000);
    }
    if only("latency free mix") {
        agent_free_latency("8-strategy mix", &main_mix, 50_000);
    }
    for s in [
        Strategy::LongestIdleAgent,
        Strategy::SkillsBestMatch,
        Strategy::Random,
        Strategy::RingAll,
    ] {
        if only(&format!("latency arrival {}", s.name())) {
            arrival_latency(s.name(), &[s], 30_000);
        }
    }
}
