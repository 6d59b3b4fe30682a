//! Recording decisions: which calls are recorded, who may start, stop, pause or mask, what
//! the record says, in the engine alone (the driver's capture has its own tests).

mod common;

use std::time::Duration;

use common::Bed;
use switchyard_engine::recording::{
    AudioFigures, RecordingCapture, RecordingOutcome, RecordingRecord, RecordingStatus, SpanKind,
};
use switchyard_engine::{
    AgentConfig, AgentId, CallId, Command, EngineError, HangupCause, LegId, LiveEvent, Membership,
    QueueConfig, QueueId, Record, RecordingAction, RecordingCommand, RecordingId, RecordingMode,
    RecordingPolicy, Requester, Strategy, SwitchCommand, SwitchEvent,
};

fn queue_recording(bed: &mut Bed, policy: RecordingPolicy) {
    bed.queue(QueueConfig {
        id: QueueId(1),
        name: "q1".into(),
        strategy: Strategy::LongestIdleAgent,
        announcements: switchyard_engine::config::Announcements {
            first_after: None,
            ..Default::default()
        },
        recording: policy,
        ..QueueConfig::default()
    });
}

fn always(percent: u8) -> RecordingPolicy {
    RecordingPolicy {
        mode: RecordingMode::Always,
        sample_percent: percent,
        ..RecordingPolicy::default()
    }
}

fn starts(bed: &Bed) -> Vec<(RecordingId, LegId, bool)> {
    bed.switch
        .iter()
        .filter_map(|c| match c {
            SwitchCommand::Recording(RecordingCommand::Start {
                id, leg, stereo, ..
            }) => Some((*id, *leg, *stereo)),
            _ => None,
        })
        .collect()
}

fn recording_records(bed: &Bed) -> Vec<&RecordingRecord> {
    bed.records
        .iter()
        .filter_map(|r| match r {
            Record::Recording(r) => Some(&**r),
            _ => None,
        })
        .collect()
}

/// A caller answered by agent 1 (bridged): its leg, call and the agent's leg.
fn talking(bed: &mut Bed) -> (LegId, CallId, LegId) {
    let (leg, call) = bed.call(1);
    let agent_leg = bed.leg_of(1);
    bed.answer(agent_leg);
    (leg, call, agent_leg)
}

fn by_supervisor() -> Requester {
    Requester {
        name: "key 7 (supervisor)".into(),
        agent: None,
    }
}

fn by_agent(id: u32) -> Requester {
    Requester {
        name: format!("key 9 (agent {id})"),
        agent: Some(AgentId(id)),
    }
}

fn ended(id: RecordingId, figures: bool) -> SwitchEvent {
    SwitchEvent::RecordingEnded(Box::new(RecordingOutcome {
        id,
        capture: RecordingCapture::Live,
        fell_back: false,
        path: format!("/rec/{id}.wav"),
        figures: figures.then(|| AudioFigures {
            duration_ms: 5000,
            sample_rate: 8000,
            channels: 2,
            bytes: 160_044,
            silence_ratio: 0.1,
            peak_dbfs: vec![Some(-6.0), Some(-6.0)],
            channel_silence: vec![0.1, 0.1],
            peaks: vec![vec![(-0.5, 0.5)], vec![(-0.5, 0.5)]],
            frames_per_peak: 40_000,
        }),
        error: None,
    }))
}

#[test]
fn an_always_queue_records_each_call_from_its_bridge_and_writes_the_open_row_first() {
    let mut bed = Bed::new();
    queue_recording(&mut bed, always(100));
    bed.agent(1, &[1]);
    let (leg, _call) = bed.call(1);
    assert!(
        starts(&bed).is_empty(),
        "nothing is recorded before the bridge"
    );
    bed.answer(bed.leg_of(1));
    let started = starts(&bed);
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].1, leg, "the customer's leg is tapped");
    assert!(started[0].2, "stereo by default");
    let opened = bed
        .records
        .iter()
        .position(|r| matches!(r, Record::RecordingOpened(o) if o.id == started[0].0))
        .expect("an open row");
    assert!(bed.records[opened].must_precede_action());
}

#[test]
fn a_never_queue_records_nothing_and_refuses_to_start_on_request() {
    let mut bed = Bed::new();
    queue_recording(&mut bed, RecordingPolicy::default());
    bed.agent(1, &[1]);
    let (_, call, _) = talking(&mut bed);
    assert!(starts(&bed).is_empty());
    let err = bed
        .try_cmd(Command::RecordCall {
            call,
            action: RecordingAction::Start,
            by: by_supervisor(),
        })
        .unwrap_err();
    assert!(matches!(err, EngineError::Recording { why, .. } if why.contains("never")));
}

#[test]
fn a_thirty_percent_policy_records_about_thirty_percent_of_a_thousand_calls() {
    let mut bed = Bed::new();
    queue_recording(&mut bed, always(30));
    bed.agent(1, &[1]);
    for _ in 0..1000 {
        let (leg, _call, agent_leg) = talking(&mut bed);
        bed.hangup(leg, HangupCause::Normal);
        bed.hangup(agent_leg, HangupCause::Normal);
        bed.advance(Duration::from_secs(1));
    }
    let n = starts(&bed).len();
    eprintln!("{n} of 1000 calls recorded at 30%");
    // Binomial(1000, 0.3): sd 14.5; 4.5 sd either side.
    assert!((235..=365).contains(&n), "{n} of 1000 recorded");
    let calls = bed.call_records().len();
    assert_eq!(calls, 1000, "every call ended");
}

#[test]
fn the_draw_is_the_calls_own_so_a_rerun_records_the_same_calls() {
    let run = || {
        let mut bed = Bed::new();
        queue_recording(&mut bed, always(50));
        bed.agent(1, &[1]);
        let mut recorded = Vec::new();
        for _ in 0..50 {
            let (leg, _call, agent_leg) = talking(&mut bed);
            recorded.push(starts(&bed).iter().any(|s| s.1 == leg));
            bed.hangup(leg, HangupCause::Normal);
            bed.hangup(agent_leg, HangupCause::Normal);
        }
        recorded
    };
    assert_eq!(run(), run());
}

#[test]
fn on_demand_starts_only_when_asked_and_stops_when_asked() {
    let mut bed = Bed::new();
    queue_recording(
        &mut bed,
        RecordingPolicy {
            mode: RecordingMode::OnDemand,
            ..RecordingPolicy::default()
        },
    );
    bed.agent(1, &[1]);
    let (leg, call, _) = talking(&mut bed);
    assert!(starts(&bed).is_empty());
    bed.cmd(Command::RecordCall {
        call,
        action: RecordingAction::Start,
        by: by_agent(1),
    });
    let (id, tapped, _) = starts(&bed)[0];
    assert_eq!(tapped, leg);
    let again = bed.try_cmd(Command::RecordCall {
        call,
        action: RecordingAction::Start,
        by: by_agent(1),
    });
    assert!(matches!(again, Err(EngineError::Recording { why, .. }) if why.contains("already")));
    bed.advance(Duration::from_secs(3));
    bed.cmd(Command::RecordCall {
        call,
        action: RecordingAction::Stop,
        by: by_agent(1),
    });
    assert!(bed.switch.iter().any(
        |c| matches!(c, SwitchCommand::Recording(RecordingCommand::Stop { id: i, .. }) if *i == id)
    ));
    bed.event(ended(id, true));
    let rec = recording_records(&bed);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].status, RecordingStatus::Completed);
    assert_eq!(rec[0].agents, vec![AgentId(1)]);
    assert_eq!(rec[0].ended_unix_ms - rec[0].started_unix_ms, 3000);
}

#[test]
fn agents_cannot_pause_or_stop_a_forced_recording_but_may_mask_a_card_number() {
    let mut bed = Bed::new();
    queue_recording(
        &mut bed,
        RecordingPolicy {
            mode: RecordingMode::AlwaysForced,
            ..RecordingPolicy::default()
        },
    );
    bed.agent(1, &[1]);
    let (_, call, _) = talking(&mut bed);
    let try_as = |bed: &mut Bed, action, by| bed.try_cmd(Command::RecordCall { call, action, by });
    let pause = try_as(&mut bed, RecordingAction::Pause, by_agent(1));
    assert!(matches!(pause, Err(EngineError::Recording { why, .. }) if why.contains("pause")));
    let stop = try_as(&mut bed, RecordingAction::Stop, by_supervisor());
    assert!(
        matches!(stop, Err(EngineError::Recording { why, .. }) if why.contains("cannot be stopped"))
    );
    try_as(&mut bed, RecordingAction::Mask, by_agent(1)).expect("masking a card number");
    try_as(&mut bed, RecordingAction::Unmask, by_agent(1)).expect("unmasked");
    try_as(&mut bed, RecordingAction::Pause, by_supervisor()).expect("a supervisor may pause");
}

#[test]
fn an_agent_cannot_act_on_a_call_that_is_not_theirs() {
    let mut bed = Bed::new();
    queue_recording(&mut bed, always(100));
    bed.agent(1, &[1]);
    let (_, call, _) = talking(&mut bed);
    let r = bed.try_cmd(Command::RecordCall {
        call,
        action: RecordingAction::Pause,
        by: by_agent(2),
    });
    assert!(
        matches!(r, Err(EngineError::Recording { why, .. }) if why.contains("not this agent's"))
    );
}

#[test]
fn pause_and_mask_spans_are_logged_with_who_asked_and_closed_at_the_hangup() {
    let mut bed = Bed::new();
    queue_recording(&mut bed, always(100));
    bed.agent(1, &[1]);
    let (leg, call, agent_leg) = talking(&mut bed);
    let id = starts(&bed)[0].0;
    let act = |bed: &mut Bed, action, by| bed.cmd(Command::RecordCall { call, action, by });
    bed.advance(Duration::from_secs(2));
    act(&mut bed, RecordingAction::Pause, by_agent(1));
    bed.advance(Duration::from_secs(3));
    act(&mut bed, RecordingAction::Resume, by_supervisor());
    bed.advance(Duration::from_secs(1));
    act(&mut bed, RecordingAction::Mask, by_agent(1));
    let silences: Vec<(SpanKind, bool)> = bed
        .switch
        .iter()
        .filter_map(|c| match c {
            SwitchCommand::Recording(RecordingCommand::Silence { kind, on, .. }) => {
                Some((*kind, *on))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        silences,
        vec![
            (SpanKind::Paused, true),
            (SpanKind::Paused, false),
            (SpanKind::Masked, true)
        ]
    );
    let live: Vec<&str> = bed
        .live
        .iter()
        .filter_map(|e| match e {
            LiveEvent::CallRecording { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(
        live,
        ["recording", "paused", "recording", "masked"],
        "supervisors see it live"
    );
    bed.advance(Duration::from_secs(4));
    bed.hangup(leg, HangupCause::Normal);
    bed.hangup(agent_leg, HangupCause::Normal);
    bed.event(ended(id, true));
    let rec = recording_records(&bed);
    let spans: Vec<_> = rec[0]
        .spans
        .iter()
        .map(|s| {
            (
                s.kind,
                s.start_ms,
                s.end_ms,
                s.by.as_str(),
                s.ended_by.as_str(),
            )
        })
        .collect();
    assert_eq!(
        spans,
        vec![
            (
                SpanKind::Paused,
                2000,
                5000,
                "key 9 (agent 1)",
                "key 7 (supervisor)"
            ),
            (SpanKind::Masked, 6000, 10_000, "key 9 (agent 1)", ""),
        ]
    );
}

#[test]
fn a_recording_the_driver_never_reports_is_written_as_failed_after_the_allowance() {
    let mut bed = Bed::new();
    queue_recording(&mut bed, always(100));
    bed.agent(1, &[1]);
    let (leg, _call, agent_leg) = talking(&mut bed);
    bed.hangup(leg, HangupCause::Normal);
    bed.hangup(agent_leg, HangupCause::Normal);
    assert!(recording_records(&bed).is_empty());
    bed.advance(Duration::from_secs(121));
    let rec = recording_records(&bed);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].status, RecordingStatus::Failed);
    assert!(
        rec[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("never reported")
    );
    assert_eq!(bed.engine.recordings_open(), 0);
}

#[test]
fn an_agents_own_mode_replaces_the_queues() {
    let mut bed = Bed::new();
    queue_recording(&mut bed, RecordingPolicy::default());
    bed.agent_with(
        AgentConfig {
            id: AgentId(1),
            name: "trainee".into(),
            contact: "user/1".into(),
            recording: Some(RecordingMode::Always),
            ..AgentConfig::default()
        },
        vec![Membership {
            queue: QueueId(1),
            level: 1,
            position: 1,
            weight: 1,
        }],
        true,
    );
    talking(&mut bed);
    assert_eq!(starts(&bed).len(), 1);
}

#[test]
fn a_sample_percent_above_a_hundred_is_refused() {
    let mut bed = Bed::new();
    let r = bed.try_cmd(Command::UpsertQueue(Box::new(QueueConfig {
        id: QueueId(1),
        name: "q1".into(),
        recording: always(101),
        ..QueueConfig::default()
    })));
    assert!(
        matches!(r, Err(EngineError::InvalidConfig { field, .. }) if field == "recording.sample_percent")
    );
}

#[test]
fn a_recording_whose_leg_is_gone_at_a_resync_ends_there() {
    let mut bed = Bed::new();
    queue_recording(&mut bed, always(100));
    bed.agent(1, &[1]);
    let (_leg, _call, _agent_leg) = talking(&mut bed);
    let id = starts(&bed)[0].0;
    bed.advance(Duration::from_secs(2));
    // The switch restarted: nothing of the call is left.
    bed.event(SwitchEvent::Resync {
        live: Vec::new(),
        restarted: true,
    });
    bed.event(ended(id, false));
    let rec = recording_records(&bed);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].ended_unix_ms - rec[0].started_unix_ms, 2000);
    assert_eq!(rec[0].status, RecordingStatus::Failed);
    assert_eq!(bed.engine.recordings_open(), 0);
}

#[test]
fn a_call_transferred_to_the_queue_stays_in_one_recording_naming_both_agents() {
    let mut bed = Bed::new();
    // The agent who transfers wraps up (without wrap-up it could be offered the call again
    // when nobody else can take it, as after a missed offer).
    bed.queue(QueueConfig {
        id: QueueId(1),
        name: "q1".into(),
        strategy: Strategy::LongestIdleAgent,
        wrapup: Duration::from_secs(10),
        announcements: switchyard_engine::config::Announcements {
            first_after: None,
            ..Default::default()
        },
        recording: always(100),
        ..QueueConfig::default()
    });
    bed.agent(1, &[1]);
    bed.agent(2, &[1]);
    let (leg, call) = bed.call(1);
    let first = bed.originations()[0];
    bed.answer(first.0);
    let id = starts(&bed)[0].0;
    // The other agent may not transfer this one's call.
    let refused = bed.try_cmd(Command::TransferCall {
        call,
        queue: None,
        by: Some(AgentId(3 - first.1)),
    });
    assert!(matches!(refused, Err(EngineError::NotAgentsCall { .. })));
    bed.cmd(Command::TransferCall {
        call,
        queue: None,
        by: Some(AgentId(first.1)),
    });
    // The caller is parked alive first, then the agent's leg goes.
    let park = bed
        .switch
        .iter()
        .position(|c| matches!(c, SwitchCommand::Park { leg: l } if *l == leg))
        .expect("the caller is taken out of the bridge");
    let hangup = bed
        .switch
        .iter()
        .position(|c| matches!(c, SwitchCommand::Hangup { leg: l, .. } if *l == first.0))
        .expect("the first agent's leg goes");
    assert!(park < hangup);
    let second = bed
        .originations()
        .into_iter()
        .find(|o| o.1 != first.1)
        .expect("the next agent is offered the call, not the one who transferred it");
    bed.answer(second.0);
    assert_eq!(starts(&bed).len(), 1, "no second recording");
    bed.hangup(leg, HangupCause::Normal);
    bed.hangup(second.0, HangupCause::Normal);
    bed.event(ended(id, true));
    let rec = recording_records(&bed);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].agents, vec![AgentId(first.1), AgentId(second.1)]);
    let calls = bed.call_records();
    assert_eq!(calls.len(), 1, "one call, one record");
    assert_eq!(calls[0].agent, Some(AgentId(second.1)));
}

#[test]
fn a_transfer_made_on_the_agents_phone_ends_the_talk_and_leaves_the_caller_and_its_recording() {
    let mut bed = Bed::new();
    bed.queue(QueueConfig {
        id: QueueId(1),
        name: "q1".into(),
        strategy: Strategy::LongestIdleAgent,
        wrapup: Duration::from_secs(10),
        announcements: switchyard_engine::config::Announcements {
            first_after: None,
            ..Default::default()
        },
        recording: always(100),
        ..QueueConfig::default()
    });
    bed.agent(1, &[1]);
    let (leg, _call, agent_leg) = talking(&mut bed);
    let id = starts(&bed)[0].0;
    bed.advance(Duration::from_secs(30));
    let before = bed.switch.len();
    // The driver reports the REFER (the agent leg's endpoint_disposition), then its hangup.
    bed.event(SwitchEvent::Transferred { leg: agent_leg });
    bed.hangup(agent_leg, HangupCause::Normal);
    let after = &bed.switch[before..];
    assert!(
        !after
            .iter()
            .any(|c| matches!(c, SwitchCommand::Hangup { leg: l, .. } if *l == leg)),
        "the transferred caller is not hung up: {after:?}"
    );
    assert!(
        !after
            .iter()
            .any(|c| matches!(c, SwitchCommand::Recording(RecordingCommand::Stop { .. }))),
        "the recording is not stopped: it follows the caller's leg"
    );
    let calls = bed.call_records();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].outcome,
        switchyard_engine::CallOutcome::Transferred
    );
    assert_eq!(calls[0].agent, Some(AgentId(1)));
    assert!((calls[0].talk_s - 30.0).abs() < 0.01, "{}", calls[0].talk_s);
    assert_eq!(
        bed.state(1),
        switchyard_engine::agent::AgentStateKind::WrapUp,
        "the agent wraps up the call it handed on"
    );
    // The caller talks on elsewhere; when its leg goes, the recording ends with it, and the
    // call is not ended a second time.
    bed.advance(Duration::from_secs(20));
    bed.hangup(leg, HangupCause::Normal);
    bed.event(ended(id, true));
    let rec = recording_records(&bed);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].status, RecordingStatus::Completed);
    assert_eq!(rec[0].agents, vec![AgentId(1)]);
    assert_eq!(bed.call_records().len(), 1, "one call, one record");
}

#[test]
fn a_transfer_report_for_a_call_not_in_conversation_changes_nothing() {
    let mut bed = Bed::new();
    queue_recording(&mut bed, always(100));
    bed.agent(1, &[1]);
    let (leg, _call) = bed.call(1);
    let offered = bed.leg_of(1);
    // Ringing, not bridged: a disposition seen on such a leg moved nobody the engine holds.
    bed.event(SwitchEvent::Transferred { leg: offered });
    bed.event(SwitchEvent::Transferred { leg });
    assert!(bed.call_records().is_empty());
    bed.answer(offered);
    assert_eq!(starts(&bed).len(), 1, "the call goes on to its bridge");
}

#[test]
fn a_caller_transferred_by_phone_to_a_queue_number_arrives_anew_in_the_same_recording() {
    let mut bed = Bed::new();
    bed.queue(QueueConfig {
        id: QueueId(1),
        name: "q1".into(),
        strategy: Strategy::LongestIdleAgent,
        wrapup: Duration::from_secs(10),
        announcements: switchyard_engine::config::Announcements {
            first_after: None,
            ..Default::default()
        },
        recording: always(100),
        ..QueueConfig::default()
    });
    bed.agent(1, &[1]);
    bed.agent(2, &[1]);
    let (leg, first_call) = bed.call(1);
    let first = bed.originations()[0];
    bed.answer(first.0);
    let id = starts(&bed)[0].0;
    bed.advance(Duration::from_secs(20));
    // The agent's phone sent the caller to the queue's number: FreeSWITCH runs the
    // extension's `socket` again before the agent leg's hangup is seen.
    bed.event(SwitchEvent::CallArrived {
        leg,
        queue: QueueId(1),
        caller: switchyard_engine::CallerInfo {
            number: "+15550001".into(),
            ..Default::default()
        },
    });
    let calls = bed.call_records();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].call, first_call);
    assert_eq!(
        calls[0].outcome,
        switchyard_engine::CallOutcome::Transferred
    );
    let second_call = bed.engine.call_by_leg(leg).expect("the caller waits again");
    assert_ne!(second_call, first_call);
    assert!(
        !bed.hangups().iter().any(|(l, _)| *l == leg),
        "the caller is never hung up"
    );
    // The late report of the agent leg changes nothing more.
    bed.event(SwitchEvent::Transferred { leg: first.0 });
    bed.hangup(first.0, HangupCause::Normal);
    assert_eq!(bed.call_records().len(), 1);
    let second = bed
        .originations()
        .into_iter()
        .find(|o| o.1 != first.1)
        .expect("the other agent is offered the caller");
    bed.answer(second.0);
    assert_eq!(
        starts(&bed).len(),
        1,
        "the recording running on the leg goes on"
    );
    bed.hangup(leg, HangupCause::Normal);
    bed.event(ended(id, true));
    let rec = recording_records(&bed);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].agents, vec![AgentId(first.1), AgentId(second.1)]);
    let calls = bed.call_records();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].outcome, switchyard_engine::CallOutcome::Answered);
}
