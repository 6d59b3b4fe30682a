//! Offers as reservations and the agent state machine: accept, reject, busy, no answer,
//! timeouts, delays, max-no-answer, wrap-up, presence changes mid-call.

mod common;

use std::time::Duration;

use common::Bed;
use switchyard_engine::agent::AgentStateKind;
use switchyard_engine::{
    AgentConfig, AgentId, CallOutcome, Command, HangupCause, Membership, Presence, QueueId,
    Strategy, SwitchCommand,
};

fn agent_cfg(id: u32) -> AgentConfig {
    AgentConfig {
        id: AgentId(id),
        contact: format!("user/{id}"),
        reject_delay: Duration::from_secs(10),
        busy_delay: Duration::from_secs(60),
        no_answer_delay: Duration::from_secs(30),
        max_no_answer: 2,
        ..AgentConfig::default()
    }
}

fn bed_with_agents(n: u32) -> Bed {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::TopDown);
    q.offer_timeout = Duration::from_secs(15);
    q.wrapup = Duration::from_secs(20);
    bed.queue(q);
    for id in 1..=n {
        bed.agent_with(
            agent_cfg(id),
            vec![Membership {
                queue: QueueId(1),
                level: 1,
                position: id,
                weight: 1,
            }],
            true,
        );
    }
    bed
}

#[test]
fn accepted_offer_bridges_then_wrap_up_then_available() {
    let mut bed = bed_with_agents(1);
    let (caller, call) = bed.call(1);
    assert_eq!(bed.switch[0], SwitchCommand::Answer { leg: caller });
    assert!(matches!(&bed.switch[1], SwitchCommand::Music { leg, .. } if *leg == caller));
    assert_eq!(bed.state(1), AgentStateKind::Reserved);
    let leg = bed.leg_of(1);
    bed.answer(leg);
    assert_eq!(bed.bridges(), vec![(caller, leg)]);
    assert_eq!(bed.state(1), AgentStateKind::OnCall);
    bed.advance(Duration::from_secs(60));
    bed.hangup(caller, HangupCause::Normal);
    assert!(
        bed.hangups().contains(&(leg, "NORMAL_CLEARING")),
        "the agent leg is hung up too"
    );
    assert_eq!(bed.state(1), AgentStateKind::WrapUp);
    let rec = bed.call_records()[0].clone();
    assert_eq!(
        (rec.call, rec.outcome, rec.agent),
        (call, CallOutcome::Answered, Some(AgentId(1)))
    );
    assert!((rec.talk_s - 60.0).abs() < 1e-6);
    bed.advance(Duration::from_secs(19));
    assert_eq!(bed.state(1), AgentStateKind::WrapUp);
    bed.advance(Duration::from_secs(1));
    assert_eq!(bed.state(1), AgentStateKind::Available);
}

#[test]
fn a_call_waiting_during_wrap_up_is_offered_when_it_ends() {
    let mut bed = bed_with_agents(1);
    let (caller, _) = bed.call(1);
    bed.answer(bed.leg_of(1));
    bed.hangup(caller, HangupCause::Normal);
    bed.call(1);
    assert_eq!(bed.originations().len(), 1);
    bed.advance(Duration::from_secs(20));
    assert_eq!(bed.originations().len(), 2);
}

#[test]
fn rejected_offer_goes_to_the_next_agent_and_delays_the_rejecter() {
    let mut bed = bed_with_agents(2);
    let (_caller, call) = bed.call(1);
    let l1 = bed.leg_of(1);
    bed.hangup(l1, HangupCause::Rejected);
    assert_eq!(
        bed.originations().iter().map(|o| o.1).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(bed.state(1), AgentStateKind::Available);
    // Agent 1 is in its reject delay: a second call waits rather than ring it.
    let from = bed.switch.len();
    bed.call(1);
    assert!(bed.originations_since(from).is_empty());
    bed.advance(Duration::from_secs(10));
    assert_eq!(
        bed.originations_since(from)
            .iter()
            .map(|o| o.1)
            .collect::<Vec<_>>(),
        vec![1]
    );
    let _ = call;
}

#[test]
fn unanswered_offer_times_out_and_max_no_answer_puts_the_agent_on_break() {
    let mut bed = bed_with_agents(2);
    let (_c1, _) = bed.call(1);
    let l1 = bed.leg_of(1);
    bed.advance(Duration::from_secs(15));
    assert!(
        bed.hangups().contains(&(l1, "NO_ANSWER")),
        "the engine stops the ringing"
    );
    assert_eq!(
        bed.originations().iter().map(|o| o.1).collect::<Vec<_>>(),
        vec![1, 2]
    );
    // The switch's own report of the same leg afterwards changes nothing.
    bed.hangup(l1, HangupCause::NoAnswer);
    bed.answer(bed.leg_of(2));
    // Agent 1 misses a second call in a row (after its no-answer delay): on break.
    bed.advance(Duration::from_secs(30));
    bed.call(1);
    let l1b = bed.leg_of(1);
    assert_ne!(l1, l1b);
    bed.hangup(l1b, HangupCause::NoAnswer);
    assert_eq!(bed.state(1), AgentStateKind::OnBreak);
    let info = bed.engine.agent_info(AgentId(1)).unwrap();
    assert_eq!(info.break_reason().as_deref(), Some("max-no-answer"));
}

#[test]
fn busy_agent_waits_out_the_busy_delay() {
    let mut bed = bed_with_agents(1);
    bed.call(1);
    bed.hangup(bed.leg_of(1), HangupCause::Busy);
    assert_eq!(bed.originations().len(), 1);
    bed.advance(Duration::from_secs(59));
    assert_eq!(bed.originations().len(), 1);
    bed.advance(Duration::from_secs(1));
    assert_eq!(
        bed.originations().len(),
        2,
        "offered again once the busy delay ends"
    );
}

#[test]
fn caller_hanging_up_while_the_agent_rings_cancels_the_offer_without_penalty() {
    let mut bed = bed_with_agents(1);
    let (caller, _) = bed.call(1);
    let l1 = bed.leg_of(1);
    bed.advance(Duration::from_secs(3));
    bed.hangup(caller, HangupCause::Normal);
    assert!(bed.hangups().contains(&(l1, "LOSE_RACE")));
    assert_eq!(bed.state(1), AgentStateKind::Available);
    assert_eq!(bed.call_records()[0].outcome, CallOutcome::Abandoned);
    // The agent leg answering afterwards (a race) is hung up, never bridged.
    bed.answer(l1);
    assert!(bed.bridges().is_empty());
    // And the agent is free for the next caller at once.
    bed.call(1);
    assert_eq!(bed.originations().len(), 2);
}

#[test]
fn going_on_break_mid_call_takes_effect_after_the_call_and_wrap_up() {
    let mut bed = bed_with_agents(1);
    let (caller, _) = bed.call(1);
    bed.answer(bed.leg_of(1));
    bed.cmd(Command::SetAgentPresence {
        agent: AgentId(1),
        presence: Presence::OnBreak("coffee".into()),
    });
    assert_eq!(bed.state(1), AgentStateKind::OnCall);
    bed.hangup(caller, HangupCause::Normal);
    assert_eq!(bed.state(1), AgentStateKind::WrapUp);
    bed.advance(Duration::from_secs(20));
    assert_eq!(bed.state(1), AgentStateKind::OnBreak);
    bed.call(1);
    assert_eq!(bed.originations().len(), 1, "nobody rung while on break");
}

#[test]
fn agent_hanging_up_ends_the_call_and_frees_the_caller_leg() {
    let mut bed = bed_with_agents(1);
    let (caller, _) = bed.call(1);
    let l1 = bed.leg_of(1);
    bed.answer(l1);
    bed.hangup(l1, HangupCause::Normal);
    assert!(bed.hangups().contains(&(caller, "NORMAL_CLEARING")));
    assert_eq!(bed.call_records()[0].outcome, CallOutcome::Answered);
}

#[test]
fn agent_states_are_logged_and_streamed() {
    let mut bed = bed_with_agents(1);
    let (caller, _) = bed.call(1);
    bed.answer(bed.leg_of(1));
    bed.hangup(caller, HangupCause::Normal);
    bed.advance(Duration::from_secs(20));
    let states: Vec<AgentStateKind> = bed
        .records
        .iter()
        .filter_map(|r| match r {
            switchyard_engine::Record::AgentState(s) if s.agent == AgentId(1) => Some(s.state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        vec![
            AgentStateKind::Available,
            AgentStateKind::Reserved,
            AgentStateKind::OnCall,
            AgentStateKind::WrapUp,
            AgentStateKind::Available
        ]
    );
}

#[test]
fn an_agent_cannot_be_removed_mid_call_and_bad_skills_are_refused() {
    let mut bed = bed_with_agents(1);
    bed.call(1);
    assert!(bed.try_cmd(Command::RemoveAgent(AgentId(1))).is_err());
    let bad = AgentConfig {
        id: AgentId(5),
        skills: vec![(switchyard_engine::SkillId(1), 11)],
        ..AgentConfig::default()
    };
    let err = bed
        .try_cmd(Command::UpsertAgent(Box::new(bad)))
        .unwrap_err();
    assert!(err.to_string().contains("skills"), "{err}");
}

#[test]
fn absurd_or_looping_durations_are_refused_with_the_field_named() {
    let mut bed = Bed::new();
    let base = bed.simple_queue(1, Strategy::RingProgressively);
    let cases: Vec<(&str, switchyard_engine::QueueConfig)> = vec![
        (
            "max_wait",
            switchyard_engine::QueueConfig {
                max_wait: Some(Duration::from_secs(u64::MAX / 4)),
                ..base.clone()
            },
        ),
        (
            "ring_progressively_step",
            switchyard_engine::QueueConfig {
                ring_progressively_step: Duration::ZERO,
                ..base.clone()
            },
        ),
        (
            "announcements.every",
            switchyard_engine::QueueConfig {
                announcements: switchyard_engine::config::Announcements {
                    every: Some(Duration::ZERO),
                    ..Default::default()
                },
                ..base.clone()
            },
        ),
    ];
    for (field, cfg) in cases {
        let err = bed
            .try_cmd(Command::UpsertQueue(Box::new(cfg)))
            .unwrap_err();
        assert!(
            matches!(err, switchyard_engine::EngineError::InvalidConfig { field: f, .. } if f == field),
            "{field}: {err}"
        );
    }
    let agent = AgentConfig {
        busy_delay: Duration::from_secs(400 * 24 * 3600),
        ..agent_cfg(9)
    };
    let err = bed
        .try_cmd(Command::UpsertAgent(Box::new(agent)))
        .unwrap_err();
    assert!(err.to_string().contains("busy_delay"), "{err}");
    // Nothing accepted before is lost: the queue still routes.
    bed.agent_with(
        agent_cfg(1),
        vec![Membership {
            queue: QueueId(1),
            level: 1,
            position: 1,
            weight: 1,
        }],
        true,
    );
    bed.call(1);
    assert_eq!(bed.originations().len(), 1);
}

// ---- connecting: the agent answered, the bridge is not there yet --------------------------

fn answered(bed: &Bed) -> usize {
    bed.live
        .iter()
        .filter(|e| matches!(e, switchyard_engine::LiveEvent::CallAnswered { .. }))
        .count()
}

#[test]
fn a_call_is_answered_only_when_the_switch_reports_the_bridge() {
    let mut bed = bed_with_agents(1);
    bed.auto_bridge = false;
    let (caller, _) = bed.call(1);
    let leg = bed.leg_of(1);
    bed.answer(leg);
    assert_eq!(bed.bridges(), vec![(caller, leg)]);
    assert_eq!(bed.state(1), AgentStateKind::OnCall);
    assert_eq!(
        answered(&bed),
        0,
        "agent answer alone is not a connected call"
    );
    bed.advance(Duration::from_millis(60));
    // CHANNEL_BRIDGE names the legs in either order.
    bed.event(switchyard_engine::SwitchEvent::Bridged { a: leg, b: caller });
    assert_eq!(answered(&bed), 1);
    bed.advance(Duration::from_secs(30));
    bed.hangup(caller, HangupCause::Normal);
    let rec = bed.call_records()[0].clone();
    assert_eq!(rec.outcome, CallOutcome::Answered);
    // Talk counts from the bridge, the wait up to it.
    assert!((rec.talk_s - 30.0).abs() < 1e-6, "{rec:?}");
    assert!(rec.wait_s >= 0.06, "{rec:?}");
}

#[test]
fn a_refused_bridge_hangs_the_agent_leg_up_and_puts_the_call_back_first_in_line() {
    let mut bed = bed_with_agents(1);
    bed.auto_bridge = false;
    let (first, call) = bed.call(1);
    let (_second, later) = bed.call(1);
    let leg1 = bed.leg_of(1);
    bed.answer(leg1);
    bed.event(switchyard_engine::SwitchEvent::BridgeFailed { a: first, b: leg1 });
    // The agent leg goes, the agent is free at once (not its fault), no answered call.
    assert!(
        bed.hangups().contains(&(leg1, "NORMAL_CLEARING")),
        "{:?}",
        bed.hangups()
    );
    assert_eq!(answered(&bed), 0);
    assert!(bed.live.iter().any(|e| matches!(
        e,
        switchyard_engine::LiveEvent::CallBridgeFailed { call: c, agent, reason: switchyard_engine::BridgeFailure::Refused }
            if *c == call && *agent == AgentId(1)
    )));
    // The first caller gets its music back and is offered again before the second one.
    assert!(
        bed.switch
            .iter()
            .rev()
            .any(|c| matches!(c, SwitchCommand::Music { leg, .. } if *leg == first))
    );
    let again = bed.leg_of(1);
    assert_ne!(again, leg1);
    assert_eq!(bed.engine.call_by_leg(again), Some(call));
    assert_eq!(bed.engine.waiting_calls(QueueId(1)), vec![later]);
    bed.auto_bridge = true;
    bed.answer(again);
    assert_eq!(answered(&bed), 1);
    assert!(bed.call_records().is_empty());
}

#[test]
fn a_bridge_that_never_comes_times_out_like_a_refusal() {
    let mut bed = bed_with_agents(1);
    bed.auto_bridge = false;
    let (caller, call) = bed.call(1);
    let leg = bed.leg_of(1);
    bed.answer(leg);
    bed.advance(Duration::from_secs(4));
    assert!(bed.hangups().contains(&(leg, "NORMAL_CLEARING")));
    assert!(bed.live.iter().any(|e| matches!(
        e,
        switchyard_engine::LiveEvent::CallBridgeFailed {
            reason: switchyard_engine::BridgeFailure::Timeout,
            ..
        }
    )));
    assert_eq!(answered(&bed), 0);
    // A late CHANNEL_BRIDGE of the dead pair changes nothing.
    bed.event(switchyard_engine::SwitchEvent::Bridged { a: caller, b: leg });
    assert_eq!(answered(&bed), 0);
    assert!(bed.engine.call_by_leg(caller) == Some(call));
}

#[test]
fn a_caller_who_leaves_while_connecting_is_abandoned_and_the_agent_leg_cancelled() {
    let mut bed = bed_with_agents(1);
    bed.auto_bridge = false;
    let (caller, _) = bed.call(1);
    let leg = bed.leg_of(1);
    bed.answer(leg);
    bed.hangup(caller, HangupCause::Normal);
    let rec = bed.call_records()[0].clone();
    assert_eq!(rec.outcome, CallOutcome::Abandoned, "{rec:?}");
    assert_eq!(rec.talk_s, 0.0);
    assert!(bed.hangups().contains(&(leg, "ORIGINATOR_CANCEL")));
    // No wrap-up: the agent never talked.
    assert_eq!(bed.state(1), AgentStateKind::Available);
}

#[test]
fn an_agent_leg_lost_while_connecting_puts_the_call_back_in_line() {
    let mut bed = bed_with_agents(1);
    bed.auto_bridge = false;
    let (_caller, call) = bed.call(1);
    let leg = bed.leg_of(1);
    bed.answer(leg);
    let before = bed.hangups().len();
    bed.hangup(leg, HangupCause::Normal);
    // Already gone: not hung up again.
    assert_eq!(bed.hangups().len(), before);
    assert!(bed.call_records().is_empty());
    let again = bed.leg_of(1);
    assert_ne!(again, leg, "offered again");
    assert_eq!(bed.engine.call_by_leg(again), Some(call));
}
