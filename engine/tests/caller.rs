//! Caller experience: music, position and expected-wait announcements, periodic messages,
//! max wait, no agents, join-empty and leave-when-empty, DTMF exits, overflow, voicemail and
//! callbacks that keep the caller's place.

mod common;

use std::time::Duration;

use common::Bed;
use switchyard_engine::config::{Announcements, EmptyRule};
use switchyard_engine::{
    AgentId, CallOutcome, Command, Exit, HangupCause, Presence, Prompt, QueueId, Strategy,
    SwitchCommand, SwitchEvent,
};

fn announcements(bed: &Bed, leg: switchyard_engine::LegId) -> Vec<Vec<Prompt>> {
    bed.switch
        .iter()
        .filter_map(|c| match c {
            SwitchCommand::Announce {
                leg: l, prompts, ..
            } if *l == leg => Some(prompts.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn waiting_callers_hear_their_position_and_expected_wait_then_periodic_messages() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.announcements = Announcements {
        music: "local_stream://moh".into(),
        first_after: Some(Duration::from_secs(30)),
        every: Some(Duration::from_secs(60)),
        position: true,
        expected_wait: true,
        periodic: Some((
            Duration::from_secs(45),
            "ivr/ivr-your_call_is_important.wav".into(),
        )),
    };
    bed.queue(q);
    let (first, _) = bed.call(1);
    let (second, _) = bed.call(1);
    assert!(bed.switch.contains(&SwitchCommand::Music {
        leg: second,
        source: "local_stream://moh".into()
    }));
    bed.advance(Duration::from_secs(29));
    assert!(announcements(&bed, second).is_empty());
    bed.advance(Duration::from_secs(1));
    let said = announcements(&bed, second);
    assert_eq!(said.len(), 1);
    assert_eq!(said[0][0], Prompt::Position { position: 2 });
    let Prompt::ExpectedWait { p50_s, p90_s, .. } = said[0][1] else {
        panic!("expected wait: {said:?}")
    };
    assert!(p90_s >= p50_s && p50_s > 0, "{p50_s} {p90_s}");
    assert_eq!(
        announcements(&bed, first)[0][0],
        Prompt::Position { position: 1 }
    );
    bed.advance(Duration::from_secs(15));
    let said = announcements(&bed, second);
    assert_eq!(
        said.last().unwrap(),
        &vec![Prompt::File {
            path: "ivr/ivr-your_call_is_important.wav".into()
        }]
    );
    // The first caller leaves: the second hears position 1 at the next announcement.
    bed.hangup(first, HangupCause::Normal);
    bed.advance(Duration::from_secs(45));
    let positions: Vec<_> = announcements(&bed, second)
        .into_iter()
        .filter_map(|p| p.first().cloned())
        .collect();
    assert!(
        positions.contains(&Prompt::Position { position: 1 }),
        "{positions:?}"
    );
}

#[test]
fn max_wait_sends_the_caller_to_voicemail() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.max_wait = Some(Duration::from_secs(120));
    q.on_timeout = Exit::Voicemail("voicemail_box_1000".into());
    bed.queue(q);
    let (leg, _) = bed.call(1);
    bed.advance(Duration::from_secs(120));
    assert!(bed.switch.contains(&SwitchCommand::Transfer {
        leg,
        destination: "voicemail_box_1000".into()
    }));
    assert_eq!(bed.call_records()[0].outcome, CallOutcome::Voicemail);
    assert_eq!(bed.engine.active_calls(), 0);
}

#[test]
fn max_wait_can_overflow_into_another_queue_keeping_the_wait() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.max_wait = Some(Duration::from_secs(60));
    q.on_timeout = Exit::Queue(QueueId(2));
    bed.queue(q);
    bed.simple_queue(2, Strategy::LongestIdleAgent);
    let (_, moved) = bed.call(1);
    bed.advance(Duration::from_secs(60));
    assert_eq!(bed.engine.waiting_calls(QueueId(2)), vec![moved]);
    bed.agent(1, &[2]);
    let leg = bed.leg_of(1);
    bed.answer(leg);
    let wait = bed.live.iter().find_map(|e| match e {
        switchyard_engine::LiveEvent::CallAnswered { wait_s, queue, .. } => Some((*wait_s, *queue)),
        _ => None,
    });
    assert_eq!(wait.map(|w| w.1), Some(QueueId(2)));
}

#[test]
fn join_empty_refuses_and_leave_when_empty_evicts() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.join_empty = EmptyRule::NoneLoggedIn;
    q.leave_when_empty = EmptyRule::NoneAvailable;
    q.on_no_agents = Exit::Voicemail("vm".into());
    bed.queue(q);
    let (refused, _) = bed.call(1);
    assert!(bed.switch.contains(&SwitchCommand::Transfer {
        leg: refused,
        destination: "vm".into()
    }));
    bed.agent(1, &[1]);
    let (talking, _) = bed.call(1);
    bed.answer(bed.leg_of(1));
    let (waiting, _) = bed.call(1);
    assert_eq!(bed.engine.waiting_calls(QueueId(1)).len(), 1);
    // The only agent logs out while on a call: nobody is left available, the waiting caller
    // is sent to voicemail; the call in progress is not touched.
    bed.cmd(Command::SetAgentPresence {
        agent: AgentId(1),
        presence: Presence::LoggedOut,
    });
    assert!(bed.switch.contains(&SwitchCommand::Transfer {
        leg: waiting,
        destination: "vm".into()
    }));
    assert!(!bed.hangups().iter().any(|(l, _)| *l == talking));
}

#[test]
fn max_wait_with_no_agent_logged_in() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.max_wait_no_agent = Some(Duration::from_secs(30));
    bed.queue(q);
    let (leg, _) = bed.call(1);
    bed.advance(Duration::from_secs(30));
    assert!(bed.hangups().contains(&(leg, "NORMAL_CLEARING")));
    assert_eq!(bed.call_records()[0].outcome, CallOutcome::Dropped);
}

#[test]
fn dtmf_exit_to_callback_keeps_the_place_then_rings_agent_then_customer() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.dtmf_exits = vec![('1', Exit::Callback), ('2', Exit::Voicemail("vm".into()))];
    bed.queue(q);
    let (first, c1) = bed.call(1);
    let (second, _) = bed.call(1);
    bed.event(SwitchEvent::Dtmf {
        leg: first,
        digit: '9',
    });
    assert_eq!(
        bed.engine.active_calls(),
        2,
        "keys without an exit do nothing"
    );
    bed.event(SwitchEvent::Dtmf {
        leg: first,
        digit: '1',
    });
    assert!(bed.hangups().contains(&(first, "NORMAL_CLEARING")));
    // Its caller leg's hangup event afterwards is not an abandon.
    bed.hangup(first, HangupCause::Normal);
    assert!(bed.call_records().is_empty());
    assert_eq!(
        bed.engine.waiting_calls(QueueId(1)).first(),
        Some(&c1),
        "kept its place"
    );
    bed.agent(1, &[1]);
    let agent_leg = bed.leg_of(1);
    assert_eq!(bed.engine.call_by_leg(agent_leg), Some(c1));
    bed.answer(agent_leg);
    let customer = bed
        .switch
        .iter()
        .rev()
        .find_map(|c| match c {
            SwitchCommand::Originate { leg, dial, .. }
                if dial.starts_with("sofia/gateway/default/") =>
            {
                Some(*leg)
            }
            _ => None,
        })
        .expect("the customer is called back");
    bed.answer(customer);
    assert_eq!(bed.bridges(), vec![(customer, agent_leg)]);
    bed.hangup(customer, HangupCause::Normal);
    assert_eq!(bed.call_records()[0].outcome, CallOutcome::CallbackAnswered);
    let _ = second;
}

#[test]
fn callback_customer_not_answering_ends_the_request_and_frees_the_agent() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.dtmf_exits = vec![('1', Exit::Callback)];
    bed.queue(q);
    let (leg, _) = bed.call(1);
    bed.event(SwitchEvent::Dtmf { leg, digit: '1' });
    bed.agent(1, &[1]);
    let agent_leg = bed.leg_of(1);
    bed.answer(agent_leg);
    let customer = bed.originations().len();
    assert_eq!(
        customer, 1,
        "callback customer legs are not agent originations"
    );
    let cust = bed
        .switch
        .iter()
        .rev()
        .find_map(|c| match c {
            SwitchCommand::Originate { leg, dial, .. } if !dial.starts_with("user/") => Some(*leg),
            _ => None,
        })
        .unwrap();
    bed.hangup(cust, HangupCause::NoAnswer);
    assert_eq!(bed.call_records()[0].outcome, CallOutcome::CallbackFailed);
    assert!(bed.hangups().contains(&(agent_leg, "NORMAL_CLEARING")));
    assert_eq!(
        bed.state(1),
        switchyard_engine::agent::AgentStateKind::Available
    );
}
