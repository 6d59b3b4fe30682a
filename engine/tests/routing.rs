//! Routing: each strategy, skills, tiers and escalation, priorities, and the global matching
//! step, driven through the core's public inputs.

mod common;

use std::time::Duration;

use common::Bed;
use switchyard_engine::agent::AgentStateKind;
use switchyard_engine::config::{EscalationStep, SkillRequirement};
use switchyard_engine::{
    AgentConfig, AgentId, CallerInfo, Command, HangupCause, Membership, QueueConfig, QueueId,
    SkillId, Strategy, SwitchCommand,
};

/// Answers the agent's leg and ends the call at once from the caller's side.
fn serve(bed: &mut Bed, caller: switchyard_engine::LegId, agent: u32, talk: Duration) {
    let leg = bed.leg_of(agent);
    bed.answer(leg);
    bed.advance(talk);
    bed.hangup(caller, HangupCause::Normal);
}

fn first_offer_after(bed: &mut Bed, queue: u32) -> (switchyard_engine::LegId, u32) {
    let from = bed.switch.len();
    let (caller, _) = bed.call(queue);
    let offers = bed.originations_since(from);
    assert_eq!(offers.len(), 1, "exactly one agent rung: {offers:?}");
    (caller, offers[0].1)
}

#[test]
fn longest_idle_agent_gets_the_call() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.agent(2, &[1]);
    bed.advance(Duration::from_secs(1));
    bed.agent(3, &[1]);
    bed.advance(Duration::from_secs(1));
    bed.agent(1, &[1]);
    let (caller, agent) = first_offer_after(&mut bed, 1);
    assert_eq!(agent, 2);
    serve(&mut bed, caller, 2, Duration::from_secs(5));
    // Agent 2 just finished: now 3 has been idle longest.
    let (_, agent) = first_offer_after(&mut bed, 1);
    assert_eq!(agent, 3);
}

#[test]
fn round_robin_remembers_the_last_agent_offered() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::RoundRobin);
    for a in 1..=3 {
        bed.agent(a, &[1]);
    }
    let mut order = Vec::new();
    for _ in 0..5 {
        let (caller, agent) = first_offer_after(&mut bed, 1);
        order.push(agent);
        serve(&mut bed, caller, agent, Duration::from_secs(1));
    }
    assert_eq!(order, vec![1, 2, 3, 1, 2]);
}

#[test]
fn top_down_always_starts_from_the_top() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::TopDown);
    for a in [3, 1, 2] {
        bed.agent(a, &[1]);
    }
    for _ in 0..3 {
        let (caller, agent) = first_offer_after(&mut bed, 1);
        assert_eq!(agent, 1);
        serve(&mut bed, caller, agent, Duration::from_secs(1));
    }
    // With agent 1 busy, the next in position.
    let (_c1, a1) = first_offer_after(&mut bed, 1);
    bed.answer(bed.leg_of(a1));
    let (_, a2) = first_offer_after(&mut bed, 1);
    assert_eq!((a1, a2), (1, 2));
}

#[test]
fn least_talk_time_prefers_the_agent_who_talked_least() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LeastTalkTime);
    bed.agent(1, &[1]);
    bed.agent(2, &[1]);
    let (c1, first) = first_offer_after(&mut bed, 1);
    bed.answer(bed.leg_of(first));
    let (c2, second) = first_offer_after(&mut bed, 1);
    assert_ne!(first, second);
    bed.answer(bed.leg_of(second));
    bed.advance(Duration::from_secs(10));
    bed.hangup(c2, HangupCause::Normal); // second talked 10 s
    bed.advance(Duration::from_secs(90));
    bed.hangup(c1, HangupCause::Normal); // first talked 100 s and is now idle longer? no: just freed
    let (_, next) = first_offer_after(&mut bed, 1);
    assert_eq!(next, second);
}

#[test]
fn fewest_calls_prefers_the_agent_with_fewest_answered() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::FewestCalls);
    bed.agent(1, &[1]);
    bed.agent(2, &[1]);
    // Agent 1 takes two calls while 2 is on break, then 2 takes one.
    bed.cmd(Command::SetAgentPresence {
        agent: AgentId(2),
        presence: switchyard_engine::Presence::OnBreak("lunch".into()),
    });
    for _ in 0..2 {
        let (c, a) = first_offer_after(&mut bed, 1);
        assert_eq!(a, 1);
        serve(&mut bed, c, a, Duration::from_secs(1));
    }
    bed.cmd(Command::SetAgentPresence {
        agent: AgentId(2),
        presence: switchyard_engine::Presence::Available,
    });
    let (c, a) = first_offer_after(&mut bed, 1);
    assert_eq!(a, 2, "2 has answered none");
    serve(&mut bed, c, a, Duration::from_secs(1));
    let (_, a) = first_offer_after(&mut bed, 1);
    assert_eq!(a, 2, "2 has answered one, 1 has answered two");
}

fn offer_counts(strategy: Strategy, weights: &[u32], calls: usize) -> Vec<usize> {
    let mut bed = Bed::new();
    bed.simple_queue(1, strategy);
    for (i, &w) in weights.iter().enumerate() {
        let id = i as u32 + 1;
        let cfg = AgentConfig {
            id: AgentId(id),
            contact: format!("user/{id}"),
            ..AgentConfig::default()
        };
        bed.agent_with(
            cfg,
            vec![Membership {
                queue: QueueId(1),
                level: 1,
                position: id,
                weight: w,
            }],
            true,
        );
    }
    let mut counts = vec![0; weights.len()];
    for _ in 0..calls {
        let (c, a) = first_offer_after(&mut bed, 1);
        counts[a as usize - 1] += 1;
        serve(&mut bed, c, a, Duration::from_millis(10));
    }
    counts
}

#[test]
fn random_spreads_calls_evenly() {
    let counts = offer_counts(Strategy::Random, &[1, 1, 1, 1], 4000);
    for c in &counts {
        assert!((850..=1150).contains(c), "{counts:?}");
    }
}

#[test]
fn weighted_random_follows_member_weights() {
    let counts = offer_counts(Strategy::WeightedRandom, &[1, 3], 4000);
    let share = counts[0] as f64 / 4000.0;
    assert!(
        (0.22..=0.28).contains(&share),
        "weight-1 agent got {share:.3} of the calls: {counts:?}"
    );
}

#[test]
fn ring_all_rings_everyone_and_only_one_agent_wins() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::RingAll);
    for a in 1..=3 {
        bed.agent(a, &[1]);
    }
    let (caller, _) = bed.call(1);
    let rung: Vec<u32> = bed.originations().into_iter().map(|(_, a)| a).collect();
    assert_eq!(rung.len(), 3, "all three rung: {rung:?}");
    for a in 1..=3 {
        assert_eq!(bed.state(a), AgentStateKind::Reserved);
    }
    let (l2, l3) = (bed.leg_of(2), bed.leg_of(3));
    bed.answer(l2);
    // Agent 3 answers a moment later: the race is lost, never a second bridge.
    bed.answer(l3);
    assert_eq!(bed.bridges(), vec![(caller, l2)]);
    let cancelled: Vec<_> = bed
        .hangups()
        .into_iter()
        .filter(|(_, c)| *c == "LOSE_RACE")
        .map(|(l, _)| l)
        .collect();
    assert!(
        cancelled.contains(&bed.leg_of(1)) && cancelled.contains(&l3),
        "{cancelled:?}"
    );
    assert_eq!(bed.state(2), AgentStateKind::OnCall);
    assert_eq!(bed.state(1), AgentStateKind::Available);
    assert_eq!(bed.state(3), AgentStateKind::Available);
    // One decision trace per offer, the extra agents' included.
    let traced: Vec<AgentId> = bed
        .engine
        .traces_for(switchyard_engine::CallId(1))
        .map(|t| t.agent)
        .collect();
    assert_eq!(traced.len(), 3, "{traced:?}");
}

#[test]
fn ring_progressively_adds_the_next_agent_while_the_first_keeps_ringing() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::RingProgressively);
    q.ring_progressively_step = Duration::from_secs(5);
    q.offer_timeout = Duration::from_secs(30);
    bed.queue(q);
    for a in 1..=3 {
        bed.agent(a, &[1]);
    }
    let (caller, _) = bed.call(1);
    assert_eq!(
        bed.originations().iter().map(|o| o.1).collect::<Vec<_>>(),
        vec![1]
    );
    bed.advance(Duration::from_secs(5));
    assert_eq!(
        bed.originations().iter().map(|o| o.1).collect::<Vec<_>>(),
        vec![1, 2]
    );
    bed.advance(Duration::from_secs(5));
    assert_eq!(
        bed.originations().iter().map(|o| o.1).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let l1 = bed.leg_of(1);
    bed.answer(l1);
    assert_eq!(bed.bridges(), vec![(caller, l1)]);
    assert_eq!(bed.state(2), AgentStateKind::Available);
}

#[test]
fn skills_best_match_picks_the_most_proficient_eligible_agent() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::SkillsBestMatch);
    q.skills = vec![SkillRequirement {
        skill: SkillId(7),
        min: 3,
    }];
    bed.queue(q);
    bed.agent_skilled(1, &[1], &[(7, 4)]);
    bed.agent_skilled(2, &[1], &[(7, 9)]);
    bed.agent_skilled(3, &[1], &[(7, 6)]);
    bed.agent_skilled(4, &[1], &[(7, 2)]);
    let mut order = Vec::new();
    for _ in 0..4 {
        let from = bed.switch.len();
        bed.call(1);
        let o = bed.originations_since(from);
        if let Some(&(leg, a)) = o.first() {
            order.push(a);
            bed.answer(leg);
        }
    }
    assert_eq!(
        order,
        vec![2, 3, 1],
        "agent 4 (proficiency 2 < minimum 3) is never offered"
    );
    let trace = bed
        .engine
        .traces_for(switchyard_engine::CallId(1))
        .next()
        .expect("a trace");
    assert_eq!(trace.strategy, "skills-best-match");
    assert_eq!(trace.agent, AgentId(2));
    assert_eq!(trace.candidates[0].proficiency, 9);
    assert!(trace.candidates.iter().all(|c| c.agent != AgentId(4)));
}

#[test]
fn a_callers_own_skill_requirement_narrows_the_pool() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.agent_skilled(1, &[1], &[(1, 9)]);
    bed.agent_skilled(2, &[1], &[(1, 9), (2, 6)]);
    let from = bed.switch.len();
    bed.call_with(
        1,
        CallerInfo {
            skills: vec![(SkillId(2), 5)],
            ..CallerInfo::default()
        },
    );
    assert_eq!(
        bed.originations_since(from)
            .iter()
            .map(|o| o.1)
            .collect::<Vec<_>>(),
        vec![2]
    );
}

#[test]
fn escalation_opens_the_next_tier_after_the_wait() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.initial_max_level = 1;
    q.escalation = vec![EscalationStep {
        after: Duration::from_secs(30),
        max_level: 2,
        relax_by: 0,
    }];
    bed.queue(q);
    let cfg = AgentConfig {
        id: AgentId(9),
        contact: "user/9".into(),
        ..AgentConfig::default()
    };
    bed.agent_with(
        cfg,
        vec![Membership {
            queue: QueueId(1),
            level: 2,
            position: 1,
            weight: 1,
        }],
        true,
    );
    bed.call(1);
    assert!(bed.originations().is_empty(), "level 2 is closed at first");
    bed.advance(Duration::from_secs(29));
    assert!(bed.originations().is_empty());
    bed.advance(Duration::from_secs(1));
    assert_eq!(
        bed.originations().iter().map(|o| o.1).collect::<Vec<_>>(),
        vec![9]
    );
}

#[test]
fn escalation_relaxes_skill_minimums() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.skills = vec![SkillRequirement {
        skill: SkillId(1),
        min: 8,
    }];
    q.escalation = vec![EscalationStep {
        after: Duration::from_secs(20),
        max_level: u32::MAX,
        relax_by: 3,
    }];
    bed.queue(q);
    bed.agent_skilled(1, &[1], &[(1, 5)]);
    bed.call(1);
    bed.advance(Duration::from_secs(19));
    assert!(bed.originations().is_empty());
    bed.advance(Duration::from_secs(1));
    assert_eq!(bed.originations().len(), 1, "8 - 3 = 5 is met");
}

#[test]
fn vip_callers_are_served_first_and_keep_their_wait_across_queues() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.simple_queue(2, Strategy::LongestIdleAgent);
    let (_, normal) = bed.call(1);
    bed.advance(Duration::from_secs(10));
    let (_, vip) = bed.call_with(
        1,
        CallerInfo {
            priority: 5,
            ..CallerInfo::default()
        },
    );
    assert_eq!(bed.engine.waiting_calls(QueueId(1)), vec![vip, normal]);
    // A call that waited 60 s in queue 1 moves to queue 2, where a call has waited 30 s.
    let (_, old) = bed.call(1);
    bed.advance(Duration::from_secs(30));
    let (_, newer) = bed.call(2);
    bed.advance(Duration::from_secs(30));
    bed.cmd(Command::MoveCall {
        call: old,
        queue: QueueId(2),
    });
    assert_eq!(bed.engine.waiting_calls(QueueId(2)), vec![old, newer]);
    bed.agent(1, &[2]);
    let rung = bed.originations();
    assert_eq!(rung.len(), 1);
    assert_eq!(bed.engine.call_by_leg(rung[0].0), Some(old));
}

#[test]
fn global_matching_does_not_strand_a_call_only_one_agent_can_take() {
    // Agent 1 serves queues 1 and 2; agent 2 only queue 2. Call X (older) waits in queue 2,
    // call Y in queue 1. Both agents come free at the same instant: greedy would give agent 1
    // to the older X and leave Y waiting; the matching gives X to agent 2 and Y to agent 1.
    let mut bed = Bed::new();
    let mut q1 = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q1.wrapup = Duration::from_secs(10);
    bed.queue(q1);
    // Top-down makes agent 1 queue 2's first choice, so greedy would pick it for X.
    let mut q2 = bed.simple_queue(2, Strategy::TopDown);
    q2.wrapup = Duration::from_secs(10);
    bed.queue(q2);
    bed.agent(1, &[1, 2]);
    bed.agent(2, &[2]);
    let (c1, _) = bed.call(1);
    bed.answer(bed.leg_of(1));
    let (c2, _) = bed.call(2);
    bed.answer(bed.leg_of(2));
    let (_, x) = bed.call(2);
    bed.advance(Duration::from_secs(5));
    let (_, y) = bed.call(1);
    bed.hangup(c1, HangupCause::Normal);
    bed.hangup(c2, HangupCause::Normal);
    let from = bed.switch.len();
    bed.advance(Duration::from_secs(10));
    let rung = bed.originations_since(from);
    assert_eq!(rung.len(), 2, "both calls offered: {rung:?}");
    let by_agent: std::collections::HashMap<u32, _> = rung
        .iter()
        .map(|(leg, a)| (*a, bed.engine.call_by_leg(*leg).unwrap()))
        .collect();
    assert_eq!(by_agent[&1], y);
    assert_eq!(by_agent[&2], x);
}

#[test]
fn an_agent_in_several_queues_takes_the_call_closest_to_missing_its_service_level() {
    let mut bed = Bed::new();
    let mut fast = bed.simple_queue(1, Strategy::LongestIdleAgent);
    fast.sl_threshold = Duration::from_secs(20);
    bed.queue(fast);
    let mut slow = bed.simple_queue(2, Strategy::LongestIdleAgent);
    slow.sl_threshold = Duration::from_secs(300);
    bed.queue(slow);
    let (_, in_slow) = bed.call(2);
    bed.advance(Duration::from_secs(20));
    let (_, in_fast) = bed.call(1);
    bed.advance(Duration::from_secs(15));
    // 35 s of a 300 s target versus 15 s of a 20 s target.
    bed.agent(1, &[1, 2]);
    let rung = bed.originations();
    assert_eq!(bed.engine.call_by_leg(rung[0].0), Some(in_fast));
    let _ = in_slow;
}

#[test]
fn strategies_round_trip_by_name() {
    for s in Strategy::ALL {
        assert_eq!(Strategy::from_name(s.name()), Some(s));
    }
    let q = QueueConfig {
        strategy: Strategy::RoundRobin,
        ..QueueConfig::default()
    };
    let json = serde_json::to_string(&q.strategy).unwrap();
    assert_eq!(json, "\"round-robin\"");
    let _ = SwitchCommand::Answer {
        leg: switchyard_engine::LegId(1),
    };
}
