//! Persistent agent lines: the agent's phone is called once, calls are bridged to it at once,
//! the line outlives each call, and its loss is handled without a redial loop.

mod common;

use std::time::Duration;

use common::Bed;
use switchyard_engine::agent::AgentStateKind;
use switchyard_engine::{
    AgentConfig, AgentId, CallOutcome, Command, HangupCause, LineState, LiveEvent, Membership,
    Presence, QueueId, Strategy, SwitchCommand,
};

fn line_agent(id: u32) -> AgentConfig {
    AgentConfig {
        id: AgentId(id),
        contact: format!("user/{id}"),
        persistent_line: true,
        ..AgentConfig::default()
    }
}

fn membership(id: u32) -> Vec<Membership> {
    vec![Membership {
        queue: QueueId(1),
        level: 1,
        position: id,
        weight: 1,
    }]
}

/// A queue with `strategy`, 10 s wrap-up, and these agents on persistent lines (available,
/// lines not answered yet).
fn bed(strategy: Strategy, agents: u32) -> Bed {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, strategy);
    q.wrapup = Duration::from_secs(10);
    bed.queue(q);
    for id in 1..=agents {
        bed.agent_with(line_agent(id), membership(id), true);
    }
    bed
}

fn presence(bed: &mut Bed, agent: u32, presence: Presence) {
    bed.cmd(Command::SetAgentPresence {
        agent: AgentId(agent),
        presence,
    });
}

#[test]
fn the_line_is_called_once_and_every_call_is_bridged_to_it_without_ringing() {
    let mut b = bed(Strategy::TopDown, 1);
    let line = b.leg_of(1);
    let SwitchCommand::Originate { vars, .. } = &b.switch[b.switch.len() - 1] else {
        panic!("the line is originated on login");
    };
    assert!(
        vars.contains(&("park_after_bridge".into(), "true".into())),
        "the line must survive the end of each bridge: {vars:?}"
    );
    // Not ready until the phone answers: a call waits.
    let (c1, _) = b.call(1);
    assert_eq!(b.originations().len(), 1, "no per-call ring");
    assert_eq!(b.state(1), AgentStateKind::Available);
    b.answer(line);
    assert_eq!(
        b.bridges(),
        vec![(c1, line)],
        "bridged as soon as the line is up"
    );
    assert_eq!(b.state(1), AgentStateKind::OnCall);

    b.advance(Duration::from_secs(30));
    let from = b.switch.len();
    b.hangup(c1, HangupCause::Normal);
    assert!(
        !b.hangups().iter().any(|(l, _)| *l == line),
        "the customer's hangup leaves the line up"
    );
    assert_eq!(b.state(1), AgentStateKind::WrapUp);
    let rec = b.call_records()[0].clone();
    assert_eq!(
        (rec.outcome, rec.agent),
        (CallOutcome::Answered, Some(AgentId(1)))
    );
    assert!((rec.talk_s - 30.0).abs() < 1e-6);

    // The next call after wrap-up goes to the same line, again without an originate.
    let (c2, _) = b.call(1);
    b.advance(Duration::from_secs(10));
    assert!(b.originations_since(from).is_empty());
    assert_eq!(b.bridges(), vec![(c1, line), (c2, line)]);
    assert_eq!(b.state(1), AgentStateKind::OnCall);
}

#[test]
fn logging_out_hangs_the_line_up_after_the_call_not_during_it() {
    let mut b = bed(Strategy::TopDown, 1);
    let line = b.leg_of(1);
    b.answer(line);
    let (c1, _) = b.call(1);
    presence(&mut b, 1, Presence::LoggedOut);
    assert!(
        !b.hangups().iter().any(|(l, _)| *l == line),
        "still talking"
    );
    b.hangup(c1, HangupCause::Normal);
    assert!(b.hangups().contains(&(line, "NORMAL_CLEARING")));
    // Logging in again calls a new line.
    let from = b.switch.len();
    b.advance(Duration::from_secs(10));
    presence(&mut b, 1, Presence::Available);
    let again = b.originations_since(from);
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].0, line);
}

#[test]
fn a_line_that_drops_puts_the_agent_on_break_without_calling_it_again() {
    let mut b = bed(Strategy::TopDown, 1);
    let line = b.leg_of(1);
    b.answer(line);
    let from = b.switch.len();
    b.hangup(line, HangupCause::Normal);
    let a = b.engine.agent_info(AgentId(1)).expect("agent");
    assert_eq!(a.presence, Presence::OnBreak("agent-line-down".into()));
    assert!(b.originations_since(from).is_empty(), "no redial loop");
    // A call now waits rather than being bridged to a dead leg.
    let (c, _) = b.call(1);
    assert!(b.bridges().is_empty());
    // The agent comes back: a new line, and the waiting call is bridged once it is up.
    presence(&mut b, 1, Presence::Available);
    let new_line = b.originations_since(from)[0].0;
    assert_ne!(new_line, line);
    b.answer(new_line);
    assert_eq!(b.bridges(), vec![(c, new_line)]);

    // A line that never answers (phone unreachable) has the same end.
    let mut b = bed(Strategy::TopDown, 1);
    let line = b.leg_of(1);
    b.hangup(line, HangupCause::NoAnswer);
    let a = b.engine.agent_info(AgentId(1)).expect("agent");
    assert_eq!(a.presence, Presence::OnBreak("agent-line-down".into()));
}

#[test]
fn the_agent_hanging_up_mid_call_ends_the_call_and_the_line() {
    let mut b = bed(Strategy::TopDown, 1);
    let line = b.leg_of(1);
    b.answer(line);
    let (c, _) = b.call(1);
    b.advance(Duration::from_secs(5));
    b.hangup(line, HangupCause::Normal);
    assert!(
        b.hangups().contains(&(c, "NORMAL_CLEARING")),
        "customer hung up"
    );
    let rec = b.call_records()[0].clone();
    assert_eq!(rec.outcome, CallOutcome::Answered);
    assert_eq!(b.state(1), AgentStateKind::WrapUp);
    b.advance(Duration::from_secs(10));
    assert_eq!(b.state(1), AgentStateKind::OnBreak);
}

#[test]
fn ring_all_gives_a_call_to_one_line_and_leaves_the_others_up() {
    let mut b = bed(Strategy::RingAll, 3);
    let lines: Vec<_> = (1..=3).map(|a| b.leg_of(a)).collect();
    for l in &lines {
        b.answer(*l);
    }
    let (c, _) = b.call(1);
    let bridges = b.bridges();
    assert_eq!(bridges.len(), 1);
    assert_eq!(bridges[0].0, c);
    assert!(
        b.hangups().iter().all(|(l, _)| !lines.contains(l)),
        "losing lines are not hung up"
    );
    let on_call = (1..=3)
        .filter(|a| b.state(*a) == AgentStateKind::OnCall)
        .count();
    assert_eq!(on_call, 1);
    b.hangup(c, HangupCause::Normal);
    assert_eq!(
        b.call_records()[0].offers,
        1,
        "no offers made only to be cancelled"
    );
    // The other two take the next two calls at once.
    b.call(1);
    b.call(1);
    assert_eq!(b.bridges().len(), 3);
    let busy = (1..=3)
        .filter(|a| b.state(*a) == AgentStateKind::OnCall)
        .count();
    assert_eq!(busy, 2, "the first agent is in wrap-up, the other two talk");
}

#[test]
fn switching_the_line_off_hangs_it_up_when_idle() {
    let mut b = bed(Strategy::TopDown, 1);
    let line = b.leg_of(1);
    b.answer(line);
    b.cmd(Command::UpsertAgent(Box::new(AgentConfig {
        persistent_line: false,
        ..line_agent(1)
    })));
    assert!(b.hangups().contains(&(line, "NORMAL_CLEARING")));
    // Now rung per call again.
    let (c, _) = b.call(1);
    let leg = b.leg_of(1);
    assert_ne!(leg, line);
    b.answer(leg);
    assert_eq!(b.bridges(), vec![(c, leg)]);
}

#[test]
fn a_resync_that_misses_the_line_treats_it_as_dropped() {
    let mut b = bed(Strategy::TopDown, 1);
    let line = b.leg_of(1);
    b.answer(line);
    b.advance(Duration::from_secs(10));
    b.event(switchyard_engine::SwitchEvent::Resync {
        live: vec![],
        restarted: false,
    });
    let a = b.engine.agent_info(AgentId(1)).expect("agent");
    assert_eq!(a.presence, Presence::OnBreak("agent-line-down".into()));
    assert!(a.line.is_none());
}

/// The line states the live feed told of, in order, for `agent`.
fn line_events(bed: &Bed, agent: u32) -> Vec<LineState> {
    bed.live
        .iter()
        .filter_map(|e| match e {
            LiveEvent::AgentLine { agent: a, line } if *a == AgentId(agent) => Some(*line),
            _ => None,
        })
        .collect()
}

#[test]
fn the_live_feed_tells_when_a_line_rings_comes_up_and_goes_down() {
    let mut b = bed(Strategy::TopDown, 2);
    assert_eq!(line_events(&b, 1), vec![LineState::Ringing]);
    let line = b.leg_of(1);
    b.answer(line);
    assert_eq!(line_events(&b, 1), vec![LineState::Ringing, LineState::Up]);
    // Logging out closes the line: the engine's own hangup is reported.
    presence(&mut b, 1, Presence::LoggedOut);
    assert_eq!(
        line_events(&b, 1),
        vec![LineState::Ringing, LineState::Up, LineState::Down]
    );
    // A line lost on the switch side is reported before the agent goes on break.
    let other = b.leg_of(2);
    b.answer(other);
    let from = b.live.len();
    b.hangup(other, HangupCause::Normal);
    let after: Vec<&LiveEvent> = b.live[from..].iter().collect();
    let down = after
        .iter()
        .position(|e| matches!(e, LiveEvent::AgentLine { agent, line: LineState::Down } if *agent == AgentId(2)))
        .expect("line down reported");
    let on_break = after
        .iter()
        .position(|e| matches!(e, LiveEvent::AgentState { agent, .. } if *agent == AgentId(2)))
        .expect("break reported");
    assert!(down < on_break, "{after:?}");
    assert_eq!(b.state(2), AgentStateKind::OnBreak);
}
