//! Supervisor actions, decision traces, statistics, and recovery after the switch restarts.

mod common;

use std::time::Duration;

use common::Bed;
use switchyard_engine::agent::AgentStateKind;
use switchyard_engine::{
    AgentId, CallOutcome, Command, EngineError, HangupCause, LegId, MonitorMode, Presence, QueueId,
    Record, Strategy, SwitchCommand, SwitchEvent,
};

#[test]
fn paused_queue_holds_its_calls_until_resumed() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.agent(1, &[1]);
    bed.cmd(Command::PauseQueue(QueueId(1)));
    bed.call(1);
    assert!(bed.originations().is_empty());
    bed.cmd(Command::ResumeQueue(QueueId(1)));
    assert_eq!(bed.originations().len(), 1);
}

#[test]
fn supervisor_assigns_a_waiting_call_to_a_chosen_agent() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.simple_queue(2, Strategy::LongestIdleAgent);
    bed.agent(7, &[2]); // not even a member of queue 1
    let (_, call) = bed.call(1);
    bed.cmd(Command::AssignCall {
        call,
        agent: AgentId(7),
    });
    assert_eq!(
        bed.originations().iter().map(|o| o.1).collect::<Vec<_>>(),
        vec![7]
    );
    let trace = bed.engine.last_trace().unwrap();
    assert_eq!(trace.strategy, "supervisor-assign");
    // Assigning a call that is already ringing someone is refused with a reason.
    let err = bed
        .try_cmd(Command::AssignCall {
            call,
            agent: AgentId(7),
        })
        .unwrap_err();
    assert_eq!(err, EngineError::CallNotWaiting { call });
}

#[test]
fn supervisor_sets_agent_state_and_it_is_reported() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.agent(1, &[1]);
    bed.cmd(Command::SetAgentPresence {
        agent: AgentId(1),
        presence: Presence::OnBreak("training".into()),
    });
    assert_eq!(bed.state(1), AgentStateKind::OnBreak);
    let snap = bed.engine.stats().queue_snapshot(bed.now, QueueId(1));
    assert_eq!(snap.agents.on_break, 1);
    bed.cmd(Command::SetAgentPresence {
        agent: AgentId(1),
        presence: Presence::LoggedOut,
    });
    assert_eq!(bed.state(1), AgentStateKind::LoggedOut);
}

#[test]
fn supervisor_barges_into_an_agents_call() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.agent(1, &[1]);
    bed.call(1);
    let agent_leg = bed.leg_of(1);
    let sup = LegId(0x5u128 << 100);
    let err = bed.try_cmd(Command::Monitor {
        agent: AgentId(1),
        dial: "user/900".into(),
        leg: sup,
        mode: MonitorMode::Barge,
    });
    assert_eq!(
        err,
        Err(EngineError::AgentNotOnCall { agent: AgentId(1) }),
        "only a live call can be joined"
    );
    bed.answer(agent_leg);
    bed.cmd(Command::Monitor {
        agent: AgentId(1),
        dial: "user/900".into(),
        leg: sup,
        mode: MonitorMode::Barge,
    });
    assert!(bed.switch.contains(&SwitchCommand::Eavesdrop {
        leg: sup,
        dial: "user/900".into(),
        target: agent_leg,
        mode: MonitorMode::Barge
    }));
    // The supervisor hanging up touches nothing else.
    bed.hangup(sup, HangupCause::Normal);
    assert_eq!(bed.state(1), AgentStateKind::OnCall);
}

#[test]
fn every_offer_has_a_decision_trace_with_its_candidates() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::TopDown);
    for a in 1..=3 {
        bed.agent(a, &[1]);
    }
    let (_, call) = bed.call(1);
    let traces: Vec<_> = bed
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Decision(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(traces.len(), 1);
    let t = &traces[0];
    assert_eq!(
        (t.call, t.agent, t.strategy),
        (call, AgentId(1), "top-down")
    );
    assert_eq!(
        t.candidates.iter().map(|c| c.agent).collect::<Vec<_>>(),
        vec![AgentId(1), AgentId(2), AgentId(3)]
    );
    assert!(t.candidates[0].score > t.candidates[1].score);
    assert!(t.reason.contains("top-down"), "{}", t.reason);
    assert_ne!(t.offer.0, 0);
}

#[test]
fn live_statistics_add_up() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.sl_threshold = Duration::from_secs(20);
    bed.queue(q);
    bed.agent(1, &[1]);
    // Answered after 0 s; another answered after 30 s; a third abandons after 10 s.
    let (c1, _) = bed.call(1);
    bed.answer(bed.leg_of(1));
    let (c2, _) = bed.call(1);
    let (c3, _) = bed.call(1);
    bed.advance(Duration::from_secs(10));
    bed.hangup(c3, HangupCause::Normal);
    bed.advance(Duration::from_secs(20));
    bed.hangup(c1, HangupCause::Normal);
    bed.answer(bed.leg_of(1));
    bed.advance(Duration::from_secs(60));
    bed.hangup(c2, HangupCause::Normal);
    let s = bed
        .engine
        .stats()
        .queue_snapshot(bed.now, QueueId(1))
        .since_start;
    assert_eq!(
        (s.offered, s.answered, s.abandoned, s.answered_within_sl),
        (3, 2, 1, 1)
    );
    assert_eq!(s.service_level, Some(1.0 / 3.0));
    assert!((s.asa_s.unwrap() - 15.0).abs() < 1e-6);
    assert!(
        (s.aht_s.unwrap() - 45.0).abs() < 1e-6,
        "talks of 30 s and 60 s"
    );
}

#[test]
fn fifteen_minute_intervals_are_persisted() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.agent(1, &[1]);
    bed.call(1);
    bed.advance(Duration::from_secs(31 * 60));
    let intervals = bed
        .records
        .iter()
        .filter(|r| matches!(r, Record::Interval(_)))
        .count();
    assert!(
        intervals >= 2,
        "one or two boundaries passed, each with queue, agent and total records: {intervals}"
    );
}

#[test]
fn a_switch_restart_ends_calls_with_synthetic_records_and_frees_agents() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.agent(1, &[1]);
    bed.agent(2, &[1]);
    let (talking, _) = bed.call(1);
    let first = bed.originations()[0].0;
    bed.answer(first);
    let (ringing, _) = bed.call(1);
    let (_waiting, _) = bed.call(1);
    let _ = (talking, ringing);
    bed.event(SwitchEvent::Resync {
        live: vec![],
        restarted: true,
    });
    let outcomes: Vec<_> = bed
        .call_records()
        .iter()
        .map(|r| (r.outcome, r.synthetic))
        .collect();
    assert_eq!(outcomes, vec![(CallOutcome::Lost, true); 3]);
    assert_eq!(bed.engine.active_calls(), 0);
    assert_eq!(bed.state(1), AgentStateKind::Available);
    assert_eq!(bed.state(2), AgentStateKind::Available);
}

#[test]
fn a_reconnect_keeps_what_the_switch_still_has() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.agent(1, &[1]);
    let (kept, _) = bed.call(1);
    let agent_leg = bed.leg_of(1);
    bed.answer(agent_leg);
    let (gone, _) = bed.call(1);
    bed.event(SwitchEvent::Resync {
        live: vec![kept, agent_leg],
        restarted: false,
    });
    assert_eq!(bed.engine.active_calls(), 1);
    assert_eq!(bed.call_records().len(), 1);
    assert_eq!(bed.call_records()[0].leg, gone);
    assert_eq!(bed.state(1), AgentStateKind::OnCall);
}
