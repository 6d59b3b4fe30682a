//! Caller experience: music, position and expected-wait announcements, periodic messages,
//! max wait, no agents, join-empty and leave-when-empty, DTMF exits, overflow, voicemail and
//! callbacks that keep the caller's place.

mod common;

use std::time::Duration;

use common::Bed;
use switchyard_engine::agent::AgentStateKind;
use switchyard_engine::config::{Announcements, DEFAULT_CALLBACK_CONFIRM, EmptyRule};
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
    assert!(
        bed.switch.contains(&SwitchCommand::PlayThenHangup {
            leg: first,
            path: DEFAULT_CALLBACK_CONFIRM.into(),
        }),
        "the caller hears the confirmation before the hangup"
    );
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

/// The customer leg dialled since `from` for a callback (any origination not to an agent).
fn customer_dial(bed: &Bed, from: usize) -> Option<(switchyard_engine::LegId, String)> {
    bed.switch[from..].iter().rev().find_map(|c| match c {
        SwitchCommand::Originate { leg, dial, .. } if !dial.starts_with("user/") => {
            Some((*leg, dial.clone()))
        }
        _ => None,
    })
}

/// A queue whose callers may press 1 for a callback, dialled through `carrier`, tried
/// `attempts` times a minute apart.
fn callback_queue(bed: &mut Bed, attempts: u32) {
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.dtmf_exits = vec![('1', Exit::Callback)];
    q.callback_dial = Some("sofia/gateway/carrier/{number}".into());
    q.callback_attempts = attempts;
    q.callback_retry = Duration::from_secs(60);
    bed.queue(q);
}

#[test]
fn taking_the_callback_exit_plays_the_confirmation_then_hangs_up() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.dtmf_exits = vec![('1', Exit::Callback)];
    q.callback_confirm = Some("/sounds/we-will-call-you-back.wav".into());
    bed.queue(q.clone());
    let (leg, _) = bed.call(1);
    let from = bed.switch.len();
    bed.event(SwitchEvent::Dtmf { leg, digit: '1' });
    let told: Vec<&SwitchCommand> = bed.switch[from..]
        .iter()
        .filter(|c| {
            matches!(c, SwitchCommand::PlayThenHangup { leg: l, .. }
                | SwitchCommand::Hangup { leg: l, .. } if *l == leg)
        })
        .collect();
    assert_eq!(
        told,
        [&SwitchCommand::PlayThenHangup {
            leg,
            path: "/sounds/we-will-call-you-back.wav".into(),
        }],
        "played then hung up by the switch, never cut off first"
    );

    // Without a confirmation the caller is simply hung up.
    q.callback_confirm = None;
    bed.queue(q);
    let (leg, _) = bed.call(1);
    bed.event(SwitchEvent::Dtmf { leg, digit: '1' });
    assert!(bed.hangups().contains(&(leg, "NORMAL_CLEARING")));
}

#[test]
fn a_failed_callback_dial_frees_the_agent_keeps_the_place_and_is_retried_after_the_interval() {
    let mut bed = Bed::new();
    callback_queue(&mut bed, 3);
    let caller = switchyard_engine::CallerInfo {
        // A caller ID trying to add a second destination gets only its digits dialled.
        number: "+1555 0100,user/666".into(),
        ..Default::default()
    };
    let (leg, c1) = bed.call_with(1, caller);
    bed.event(SwitchEvent::Dtmf { leg, digit: '1' });
    bed.hangup(leg, HangupCause::Normal);
    bed.agent(1, &[1]);
    let agent_leg = bed.leg_of(1);
    let from = bed.switch.len();
    bed.answer(agent_leg);
    let (customer, dial) = customer_dial(&bed, from).expect("the customer is dialled");
    assert_eq!(dial, "sofia/gateway/carrier/+15550100user666");

    // Busy: the agent is let go at once, the call waits again with no record yet.
    bed.hangup(customer, HangupCause::Busy);
    assert!(bed.hangups().contains(&(agent_leg, "NORMAL_CLEARING")));
    assert_eq!(bed.state(1), AgentStateKind::Available);
    assert!(bed.call_records().is_empty(), "{:?}", bed.call_records());
    assert_eq!(bed.engine.waiting_calls(QueueId(1)), [c1]);

    // While it is held, a later caller is served and queues behind it, not ahead.
    let (_, c2) = bed.call(1);
    assert_eq!(
        bed.engine.call_agent(c2),
        Some(AgentId(1)),
        "the free agent takes the next caller, not the held callback"
    );
    let second_agent_leg = bed.leg_of(1);
    bed.hangup(second_agent_leg, HangupCause::NoAnswer);
    assert_eq!(
        bed.engine.waiting_calls(QueueId(1)),
        [c1, c2],
        "the callback keeps its place ahead of later callers"
    );
    bed.agent(2, &[1]);
    assert_eq!(bed.engine.call_agent(c2), Some(AgentId(2)));
    let talking = bed.leg_of(2);
    bed.answer(talking);

    // Agent 1's no-answer delay (30 s) ends well before the retry (60 s).
    let rung = bed.originations().len();
    bed.advance(Duration::from_secs(59));
    assert_eq!(
        bed.originations().len(),
        rung,
        "not offered before the retry interval"
    );
    bed.advance(Duration::from_secs(2));
    assert_eq!(bed.engine.call_agent(c1), Some(AgentId(1)), "offered again");
    let agent_leg = bed.leg_of(1);
    let from = bed.switch.len();
    bed.answer(agent_leg);
    let (customer, _) = customer_dial(&bed, from).expect("the customer is dialled again");
    bed.answer(customer);
    assert!(bed.bridges().contains(&(customer, agent_leg)));
    bed.hangup(customer, HangupCause::Normal);
    let records = bed.call_records();
    let rec = records.iter().find(|r| r.call == c1).expect("a record");
    assert_eq!(rec.outcome, CallOutcome::CallbackAnswered);
    assert_eq!(rec.callback_leg, Some(customer));
}

#[test]
fn a_callback_failing_every_attempt_ends_callback_failed_after_the_last_freeing_the_agent_each_time()
 {
    let mut bed = Bed::new();
    callback_queue(&mut bed, 3);
    let (leg, c) = bed.call(1);
    bed.event(SwitchEvent::Dtmf { leg, digit: '1' });
    bed.agent(1, &[1]);
    let causes = [
        HangupCause::NoAnswer,
        HangupCause::Failed,
        HangupCause::Busy,
    ];
    for (i, cause) in causes.into_iter().enumerate() {
        if i > 0 {
            bed.advance(Duration::from_secs(60));
        }
        assert_eq!(bed.engine.call_agent(c), Some(AgentId(1)), "attempt {i}");
        let agent_leg = bed.leg_of(1);
        let from = bed.switch.len();
        bed.answer(agent_leg);
        let (customer, _) = customer_dial(&bed, from).expect("the customer is dialled");
        bed.hangup(customer, cause);
        assert!(bed.hangups().contains(&(agent_leg, "NORMAL_CLEARING")));
        assert_eq!(bed.state(1), AgentStateKind::Available, "attempt {i}");
        let ended = bed.call_records().iter().any(|r| r.call == c);
        assert_eq!(ended, i == 2, "a record only after the last attempt ({i})");
    }
    let records = bed.call_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, CallOutcome::CallbackFailed);
    assert_eq!(records[0].agent, Some(AgentId(1)));
    assert!(bed.engine.waiting_calls(QueueId(1)).is_empty());
    let rung = bed.originations().len();
    bed.advance(Duration::from_secs(600));
    assert_eq!(bed.originations().len(), rung, "never dialled again");
}

#[test]
fn a_caller_who_comes_back_after_a_restart_keeps_its_place_by_first_arrival() {
    let mut bed = Bed::with_config(switchyard_engine::EngineConfig {
        origin_unix_ms: 1_000_000,
        ..switchyard_engine::EngineConfig::default()
    });
    bed.simple_queue(1, switchyard_engine::Strategy::LongestIdleAgent);
    bed.advance(Duration::from_secs(60));
    // Arrives now, for the first time.
    let (_, fresh) = bed.call(1);
    // Was first here 50 s ago (stamped on its channel by the previous run), comes back now.
    let (_, back) = bed.call_with(
        1,
        switchyard_engine::CallerInfo {
            first_arrived_unix_ms: Some(1_010_000),
            ..switchyard_engine::CallerInfo::default()
        },
    );
    // Says it arrived in the future: taken as arriving now, behind the fresh caller.
    let (_, liar) = bed.call_with(
        1,
        switchyard_engine::CallerInfo {
            first_arrived_unix_ms: Some(u64::MAX),
            ..switchyard_engine::CallerInfo::default()
        },
    );
    assert_eq!(
        bed.engine.waiting_calls(QueueId(1)),
        vec![back, fresh, liar]
    );
    // Its record says when it first arrived.
    bed.hangup(bed.engine.call_info(back).unwrap().leg, HangupCause::Normal);
    let rec = bed
        .records
        .iter()
        .find_map(|r| match r {
            switchyard_engine::Record::Call(c) if c.call == back => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(rec.arrived_unix_ms, 1_010_000);
    assert!(rec.wait_s >= 49.9, "waited {}", rec.wait_s);
}

#[test]
fn max_wait_to_a_mailbox_hands_the_caller_to_the_driver_for_a_message() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.max_wait = Some(Duration::from_secs(90));
    q.on_timeout = Exit::Mailbox(switchyard_engine::Mailbox::Queue(QueueId(1)));
    bed.queue(q);
    let (leg, _) = bed.call_with(
        1,
        switchyard_engine::CallerInfo {
            number: "+15550100".into(),
            ..switchyard_engine::CallerInfo::default()
        },
    );
    bed.advance(Duration::from_secs(90));
    assert!(bed.switch.contains(&SwitchCommand::Voicemail {
        leg,
        mailbox: switchyard_engine::Mailbox::Queue(QueueId(1)),
        caller_number: "+15550100".into(),
    }));
    // The caller is the driver's now: the engine neither hangs it up nor transfers it.
    assert!(bed.hangups().is_empty());
    assert_eq!(bed.call_records()[0].outcome, CallOutcome::Voicemail);
    assert_eq!(bed.engine.active_calls(), 0);
}

#[test]
fn a_flow_that_names_a_max_wait_step_takes_the_caller_back_instead_of_the_queue_exit() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.max_wait = Some(Duration::from_secs(60));
    q.on_timeout = Exit::Queue(QueueId(2));
    q.max_wait_no_agent = None;
    bed.queue(q);
    bed.simple_queue(2, Strategy::LongestIdleAgent);
    let flow_exits = switchyard_engine::FlowExits {
        no_agent: false,
        max_wait: true,
    };
    let (leg, _) = bed.call_with(
        1,
        switchyard_engine::CallerInfo {
            flow_exits,
            ..switchyard_engine::CallerInfo::default()
        },
    );
    bed.advance(Duration::from_secs(60));
    assert!(bed.switch.contains(&SwitchCommand::ResumeFlow {
        leg,
        exit: switchyard_engine::FlowExit::MaxWait,
    }));
    // Not moved to the overflow queue: the flow decides.
    assert!(bed.engine.waiting_calls(QueueId(2)).is_empty());
    assert_eq!(bed.call_records()[0].outcome, CallOutcome::FlowExit);
    assert_eq!(bed.engine.active_calls(), 0);
}

#[test]
fn a_flow_exit_the_flow_does_not_name_leaves_the_queue_exit_in_charge() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.max_wait = Some(Duration::from_secs(60));
    q.on_timeout = Exit::Voicemail("vm".into());
    bed.queue(q);
    let (leg, _) = bed.call_with(
        1,
        switchyard_engine::CallerInfo {
            flow_exits: switchyard_engine::FlowExits {
                no_agent: true,
                max_wait: false,
            },
            ..switchyard_engine::CallerInfo::default()
        },
    );
    bed.advance(Duration::from_secs(60));
    assert!(bed.switch.contains(&SwitchCommand::Transfer {
        leg,
        destination: "vm".into()
    }));
    assert!(
        !bed.switch
            .iter()
            .any(|c| matches!(c, SwitchCommand::ResumeFlow { .. }))
    );
}

#[test]
fn a_flow_with_a_no_agent_step_takes_back_a_caller_refused_at_join() {
    let mut bed = Bed::new();
    let mut q = bed.simple_queue(1, Strategy::LongestIdleAgent);
    q.join_empty = EmptyRule::NoneLoggedIn;
    q.on_no_agents = Exit::Hangup;
    bed.queue(q);
    let (leg, _) = bed.call_with(
        1,
        switchyard_engine::CallerInfo {
            flow_exits: switchyard_engine::FlowExits {
                no_agent: true,
                max_wait: false,
            },
            ..switchyard_engine::CallerInfo::default()
        },
    );
    assert!(bed.switch.contains(&SwitchCommand::ResumeFlow {
        leg,
        exit: switchyard_engine::FlowExit::NoAgent,
    }));
    assert!(bed.hangups().is_empty());
}

#[test]
fn a_direct_call_rings_only_its_agent_and_waits_for_it_while_others_are_free() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    // Agent 1 has waited longest: an ordinary caller would go to it.
    bed.agent(1, &[1]);
    bed.advance(Duration::from_secs(5));
    bed.agent(2, &[1]);
    let (_, direct) = bed.call_with(
        1,
        switchyard_engine::CallerInfo {
            agent: Some(AgentId(2)),
            ..switchyard_engine::CallerInfo::default()
        },
    );
    assert_eq!(bed.originations(), vec![(bed.leg_of(2), 2)]);
    // Agent 2 lets it ring out: the call waits for it again, agent 1 stays untouched.
    let rung = bed.leg_of(2);
    bed.hangup(rung, HangupCause::NoAnswer);
    bed.advance(Duration::from_secs(30));
    assert!(
        bed.originations().iter().all(|(_, a)| *a == 2),
        "{:?}",
        bed.originations()
    );
    assert!(
        bed.engine.call_info(direct).is_some(),
        "the direct call still waits"
    );
    // An ordinary caller still reaches agent 1.
    let from = bed.switch.len();
    bed.call(1);
    assert!(bed.originations_since(from).iter().any(|(_, a)| *a == 1));
}
