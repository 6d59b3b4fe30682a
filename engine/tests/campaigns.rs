//! Campaigns in the core: dial modes, a dial's outcomes, retries, DNC, windows, pause and
//! resume, detection, preview, and the abandon deadline. Virtual time, exact outputs.

mod common;

use std::time::Duration;

use common::Bed;
use switchyard_engine::LiveEvent;
use switchyard_engine::agent::AgentStateKind;
use switchyard_engine::dialer::connect::{Brake, ProgressiveDial};
use switchyard_engine::dialer::{
    AmdPolicy, AttemptOutcome, AttemptRecord, CallingWindow, CampaignConfig, CampaignControl,
    CampaignState, ContactNext, ContactSpec, DialMode, MachineAction, RetryRule, RetryRules,
};
use switchyard_engine::{
    AgentId, AmdResult, CallId, CampaignId, Command, ContactId, EngineConfig, EngineError,
    HangupCause, LegId, LegKind, Presence, Record, Strategy, SwitchCommand, SwitchEvent,
};

const C: CampaignId = CampaignId(7);

fn campaign(mode: DialMode) -> CampaignConfig {
    CampaignConfig {
        id: C,
        name: "spring".into(),
        mode,
        queue: switchyard_engine::QueueId(1),
        caller_id_number: "+15550100".into(),
        dial: "sofia/gateway/carrier/{number}".into(),
        abandon_message: "/sounds/abandon.wav".into(),
        window: CallingWindow {
            start_minute: 0,
            end_minute: 24 * 60,
        },
        // These tests follow lines dialled customer-first; learning is tested on its own.
        progressive_dial: ProgressiveDial::CustomerFirst,
        ..CampaignConfig::default()
    }
}

fn contacts(n: u64) -> Vec<ContactSpec> {
    (1..=n)
        .map(|i| ContactSpec {
            id: ContactId(i),
            number: format!("+1212555{i:04}"),
            zone: "America/New_York".into(),
            attempts: 0,
            not_before_unix_ms: 0,
        })
        .collect()
}

/// A bed with queue 1, `agents` available agents in it, and the campaign loaded with
/// `n` contacts (not started).
fn bed_with(cfg: CampaignConfig, agents: u32, n: u64) -> Bed {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    for a in 1..=agents {
        bed.agent(a, &[1]);
    }
    bed.cmd(Command::UpsertCampaign(Box::new(cfg)));
    bed.cmd(Command::AddContacts {
        campaign: C,
        contacts: contacts(n),
    });
    bed
}

fn start(bed: &mut Bed) {
    control(bed, CampaignControl::Start);
}

fn control(bed: &mut Bed, control: CampaignControl) {
    bed.cmd(Command::ControlCampaign {
        campaign: C,
        control,
    });
}

/// Campaign dials issued since `from`: (leg, dial string).
fn dials_since(bed: &Bed, from: usize) -> Vec<(LegId, String)> {
    bed.switch[from..]
        .iter()
        .filter_map(|c| match c {
            SwitchCommand::Originate {
                kind: LegKind::Campaign,
                leg,
                dial,
                ..
            } => Some((*leg, dial.clone())),
            _ => None,
        })
        .collect()
}

fn attempts(bed: &Bed) -> Vec<&AttemptRecord> {
    bed.records
        .iter()
        .filter_map(|r| match r {
            Record::Attempt(a) => Some(a),
            _ => None,
        })
        .collect()
}

fn agent_leg_since(bed: &Bed, from: usize) -> Option<LegId> {
    bed.originations_since(from).first().map(|(leg, _)| *leg)
}

#[test]
fn progressive_dials_one_line_per_free_agent() {
    let mut bed = bed_with(campaign(DialMode::Progressive), 2, 10);
    assert!(dials_since(&bed, 0).is_empty(), "a draft dials nothing");
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let dials = dials_since(&bed, 0);
    assert_eq!(dials.len(), 2);
    assert_eq!(dials[0].1, "sofia/gateway/carrier/+12125550001");
    bed.advance(Duration::from_secs(5));
    assert_eq!(
        dials_since(&bed, 0).len(),
        2,
        "still two lines for two agents"
    );
}

#[test]
fn a_person_is_bridged_to_a_free_agent_and_the_contact_is_done() {
    let mut bed = bed_with(campaign(DialMode::Progressive), 1, 1);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let (leg, _) = dials_since(&bed, 0)[0].clone();
    let mark = bed.switch.len();
    bed.advance(Duration::from_secs(6));
    bed.event(SwitchEvent::LegAnswered { leg });
    let agent_leg = agent_leg_since(&bed, mark).expect("the agent is rung at once");
    bed.event(SwitchEvent::LegAnswered { leg: agent_leg });
    assert!(bed.switch.contains(&SwitchCommand::Bridge {
        a: leg,
        b: agent_leg
    }));
    bed.advance(Duration::from_secs(60));
    bed.event(SwitchEvent::LegHungUp {
        leg,
        cause: HangupCause::Normal,
    });
    let a = attempts(&bed);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].outcome, AttemptOutcome::Connected);
    assert_eq!(a[0].next, ContactNext::Done);
    assert_eq!(a[0].agent, Some(AgentId(1)));
    let stats = bed.engine.campaign_stats(C).unwrap();
    assert_eq!(
        (stats.dialed, stats.connected, stats.contacts_remaining),
        (1, 1, 0)
    );
}

#[test]
fn a_person_with_no_agent_within_two_seconds_hears_the_abandon_message() {
    let mut bed = bed_with(campaign(DialMode::Progressive), 1, 1);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let (leg, _) = dials_since(&bed, 0)[0].clone();
    // The only agent goes on break while the line rings.
    bed.cmd(Command::SetAgentPresence {
        agent: AgentId(1),
        presence: Presence::OnBreak("lunch".into()),
    });
    bed.event(SwitchEvent::LegAnswered { leg });
    bed.advance(Duration::from_millis(1900));
    assert!(attempts(&bed).is_empty(), "still inside the two seconds");
    bed.advance(Duration::from_millis(200));
    assert!(bed.switch.contains(&SwitchCommand::PlayThenHangup {
        leg,
        path: "/sounds/abandon.wav".into()
    }));
    let a = attempts(&bed);
    assert_eq!(a[0].outcome, AttemptOutcome::Abandoned);
    let stats = bed.engine.campaign_stats(C).unwrap();
    assert_eq!(stats.abandoned, 1);
    assert_eq!(stats.abandon_rate_day, 1.0);
    assert_eq!(stats.abandon_rate_30d, 1.0);
    // The leg's own hangup afterwards changes nothing.
    bed.event(SwitchEvent::LegHungUp {
        leg,
        cause: HangupCause::Normal,
    });
    assert_eq!(attempts(&bed).len(), 1);
}

/// A person whose agent has answered, with the bridge asked for just before the two seconds
/// ran out: (person leg, agent leg), the clock at the deadline plus 100 ms.
fn bridge_in_flight_at_the_deadline(bed: &mut Bed) -> (LegId, LegId) {
    // The test says when (and whether) FreeSWITCH joins the legs.
    bed.auto_bridge = false;
    start(bed);
    bed.advance(Duration::from_secs(1));
    let (leg, _) = dials_since(bed, 0)[0].clone();
    let mark = bed.switch.len();
    bed.event(SwitchEvent::LegAnswered { leg });
    let agent_leg = agent_leg_since(bed, mark).expect("the agent is rung at once");
    bed.advance(Duration::from_millis(1950));
    bed.event(SwitchEvent::LegAnswered { leg: agent_leg });
    assert!(bed.switch.contains(&SwitchCommand::Bridge {
        a: leg,
        b: agent_leg
    }));
    bed.advance(Duration::from_millis(150));
    (leg, agent_leg)
}

#[test]
fn a_bridge_in_flight_at_the_two_seconds_is_not_torn_down_and_connects_the_person() {
    let mut bed = bed_with(campaign(DialMode::Progressive), 1, 1);
    let (leg, agent_leg) = bridge_in_flight_at_the_deadline(&mut bed);
    let torn = bed.switch.iter().any(|c| {
        matches!(c, SwitchCommand::PlayThenHangup { .. })
            || matches!(c, SwitchCommand::Hangup { leg: l, .. } if *l == leg || *l == agent_leg)
    });
    assert!(!torn, "neither side hung up mid-bridge: {:?}", bed.switch);
    assert!(attempts(&bed).is_empty(), "nothing final yet");
    bed.event(SwitchEvent::Bridged {
        a: leg,
        b: agent_leg,
    });
    bed.advance(Duration::from_secs(30));
    bed.event(SwitchEvent::LegHungUp {
        leg,
        cause: HangupCause::Normal,
    });
    let a = attempts(&bed);
    assert_eq!(a[0].outcome, AttemptOutcome::Connected);
    let stats = bed.engine.campaign_stats(C).unwrap();
    assert_eq!((stats.connected, stats.abandoned), (1, 0));
}

#[test]
fn a_bridge_in_flight_at_the_two_seconds_that_never_completes_abandons_after_its_allowance() {
    let mut bed = bed_with(campaign(DialMode::Progressive), 1, 1);
    let (leg, agent_leg) = bridge_in_flight_at_the_deadline(&mut bed);
    assert!(attempts(&bed).is_empty());
    // The allowance (300 ms) from the deadline runs out.
    bed.advance(Duration::from_millis(250));
    assert!(bed.switch.contains(&SwitchCommand::PlayThenHangup {
        leg,
        path: "/sounds/abandon.wav".into()
    }));
    assert!(
        bed.switch
            .iter()
            .any(|c| matches!(c, SwitchCommand::Hangup { leg: l, .. } if *l == agent_leg)),
        "the agent leg is let go"
    );
    let a = attempts(&bed);
    assert_eq!(a[0].outcome, AttemptOutcome::Abandoned);
    assert_eq!(bed.engine.campaign_stats(C).unwrap().abandoned, 1);
}

#[test]
fn busy_is_retried_after_its_interval_until_the_attempts_run_out() {
    let mut cfg = campaign(DialMode::Progressive);
    cfg.retry = RetryRules {
        busy: RetryRule::new(60, 2),
        ..RetryRules::default()
    };
    let mut bed = bed_with(cfg, 1, 1);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let (leg, _) = dials_since(&bed, 0)[0].clone();
    bed.event(SwitchEvent::LegHungUp {
        leg,
        cause: HangupCause::Busy,
    });
    let first = attempts(&bed)[0].clone();
    assert_eq!(first.outcome, AttemptOutcome::Busy);
    let ContactNext::Retry { at_unix_ms } = first.next else {
        panic!("busy is retried: {:?}", first.next);
    };
    assert_eq!(at_unix_ms - first.ended_unix_ms, 60_000);
    let mark = bed.switch.len();
    bed.advance(Duration::from_secs(59));
    assert!(
        dials_since(&bed, mark).is_empty(),
        "not before the interval"
    );
    bed.advance(Duration::from_secs(2));
    let again = dials_since(&bed, mark);
    assert_eq!(again.len(), 1);
    bed.event(SwitchEvent::LegHungUp {
        leg: again[0].0,
        cause: HangupCause::Busy,
    });
    let second = attempts(&bed)[1].clone();
    assert_eq!((second.attempt, second.next), (2, ContactNext::Done));
    assert_eq!(bed.engine.campaign_stats(C).unwrap().contacts_remaining, 0);
}

#[test]
fn no_answer_and_failures_follow_their_own_rules() {
    let mut cfg = campaign(DialMode::Progressive);
    cfg.retry = RetryRules {
        no_answer: RetryRule::new(3600, 3),
        failed: RetryRule::new(60, 1),
        ..RetryRules::default()
    };
    let mut bed = bed_with(cfg, 2, 2);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let dials = dials_since(&bed, 0);
    bed.event(SwitchEvent::LegHungUp {
        leg: dials[0].0,
        cause: HangupCause::NoAnswer,
    });
    bed.event(SwitchEvent::LegHungUp {
        leg: dials[1].0,
        cause: HangupCause::Failed,
    });
    let a = attempts(&bed);
    assert_eq!(a[0].outcome, AttemptOutcome::NoAnswer);
    assert!(matches!(a[0].next, ContactNext::Retry { .. }));
    assert_eq!(a[1].outcome, AttemptOutcome::Failed);
    assert_eq!(
        a[1].next,
        ContactNext::Done,
        "one attempt allowed for failures"
    );
}

#[test]
fn numbers_on_the_dnc_list_are_never_dialled() {
    let mut bed = bed_with(campaign(DialMode::Progressive), 3, 3);
    bed.cmd(Command::BlockNumbers {
        campaign: C,
        numbers: vec!["+12125550002".into()],
    });
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let dialled: Vec<String> = dials_since(&bed, 0).into_iter().map(|d| d.1).collect();
    assert_eq!(dialled.len(), 2);
    assert!(dialled.iter().all(|d| !d.ends_with("+12125550002")));
    assert_eq!(bed.engine.campaign_stats(C).unwrap().contacts_remaining, 2);
}

#[test]
fn pause_and_resume_lose_no_contact() {
    let mut cfg = campaign(DialMode::Progressive);
    cfg.retry.no_answer = RetryRule::new(0, 1);
    let mut bed = bed_with(cfg, 2, 6);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let first = dials_since(&bed, 0);
    assert_eq!(first.len(), 2);
    control(&mut bed, CampaignControl::Pause);
    assert_eq!(bed.engine.campaign_state(C), Some(CampaignState::Paused));
    // Lines in flight finish while paused; nothing new is dialled.
    for (leg, _) in &first {
        bed.event(SwitchEvent::LegHungUp {
            leg: *leg,
            cause: HangupCause::NoAnswer,
        });
    }
    bed.advance(Duration::from_secs(30));
    assert_eq!(dials_since(&bed, 0).len(), 2);
    assert_eq!(bed.engine.campaign_stats(C).unwrap().contacts_remaining, 4);
    control(&mut bed, CampaignControl::Resume);
    let mut numbers: Vec<String> = first.iter().map(|d| d.1.clone()).collect();
    for _ in 0..3 {
        bed.advance(Duration::from_secs(1));
        let mark = numbers.len();
        let now: Vec<(LegId, String)> = dials_since(&bed, 0).into_iter().skip(mark).collect();
        for (leg, n) in now {
            numbers.push(n);
            bed.event(SwitchEvent::LegHungUp {
                leg,
                cause: HangupCause::NoAnswer,
            });
        }
    }
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 6, "every contact dialled once: {numbers:?}");
    assert_eq!(bed.engine.campaign_stats(C).unwrap().contacts_remaining, 0);
}

#[test]
fn controls_follow_the_state_machine() {
    let mut bed = bed_with(campaign(DialMode::Progressive), 1, 1);
    let err = bed.try_cmd(Command::ControlCampaign {
        campaign: C,
        control: CampaignControl::Resume,
    });
    assert!(matches!(err, Err(EngineError::CampaignState { .. })));
    control(&mut bed, CampaignControl::Stop);
    assert_eq!(bed.engine.campaign_state(C), Some(CampaignState::Completed));
    assert!(
        bed.try_cmd(Command::ControlCampaign {
            campaign: C,
            control: CampaignControl::Start,
        })
        .is_err()
    );
    bed.advance(Duration::from_secs(5));
    assert!(dials_since(&bed, 0).is_empty());
    assert!(bed.records.iter().any(|r| matches!(
        r,
        Record::CampaignState {
            state: CampaignState::Completed,
            ..
        }
    )));
}

#[test]
fn answering_machines_get_the_message_and_are_retried_later() {
    let mut cfg = campaign(DialMode::Progressive);
    cfg.amd = AmdPolicy {
        enabled: true,
        on_machine: MachineAction::LeaveMessage("/sounds/vm.wav".into()),
        timeout: Duration::from_secs(4),
    };
    let mut bed = bed_with(cfg, 1, 1);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let SwitchCommand::Originate { leg, vars, .. } = bed
        .switch
        .iter()
        .find(|c| {
            matches!(
                c,
                SwitchCommand::Originate {
                    kind: LegKind::Campaign,
                    ..
                }
            )
        })
        .cloned()
        .unwrap()
    else {
        unreachable!()
    };
    assert!(vars.contains(&("execute_on_answer".into(), "amd".into())));
    let mark = bed.switch.len();
    bed.event(SwitchEvent::LegAnswered { leg });
    assert!(
        bed.originations_since(mark).is_empty(),
        "no agent before the verdict"
    );
    bed.advance(Duration::from_secs(2));
    bed.event(SwitchEvent::MachineDetection {
        leg,
        result: AmdResult::Machine,
    });
    assert!(bed.switch.contains(&SwitchCommand::PlayThenHangup {
        leg,
        path: "/sounds/vm.wav".into()
    }));
    assert!(
        bed.originations_since(mark).is_empty(),
        "never reaches an agent"
    );
    let a = attempts(&bed);
    assert_eq!(a[0].outcome, AttemptOutcome::Machine);
    assert!(matches!(a[0].next, ContactNext::Retry { .. }));
}

#[test]
fn a_detection_that_never_comes_is_treated_as_a_person() {
    let mut cfg = campaign(DialMode::Progressive);
    cfg.amd.enabled = true;
    let mut bed = bed_with(cfg, 1, 1);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let (leg, _) = dials_since(&bed, 0)[0].clone();
    let mark = bed.switch.len();
    bed.event(SwitchEvent::LegAnswered { leg });
    bed.advance(Duration::from_secs(5));
    assert!(
        agent_leg_since(&bed, mark).is_some(),
        "offered after the detection timeout"
    );
}

#[test]
fn preview_rings_the_agent_first_then_dials_the_customer() {
    let mut bed = bed_with(campaign(DialMode::Preview), 1, 2);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    assert!(
        dials_since(&bed, 0).is_empty(),
        "the customer waits for the agent"
    );
    let agent_leg = agent_leg_since(&bed, 0).expect("the agent is offered the contact");
    let offered_with = bed.switch.iter().find_map(|c| match c {
        SwitchCommand::Originate {
            kind: LegKind::Agent,
            caller_id_number,
            ..
        } => Some(caller_id_number.clone()),
        _ => None,
    });
    assert_eq!(
        offered_with.as_deref(),
        Some("+12125550001"),
        "the agent sees who"
    );
    bed.event(SwitchEvent::LegAnswered { leg: agent_leg });
    let dials = dials_since(&bed, 0);
    assert_eq!(dials.len(), 1);
    let customer = dials[0].0;
    bed.event(SwitchEvent::LegHungUp {
        leg: customer,
        cause: HangupCause::Busy,
    });
    let a = attempts(&bed);
    assert_eq!(a[0].outcome, AttemptOutcome::Busy);
    assert_eq!(a[0].agent, Some(AgentId(1)));
}

#[test]
fn a_blended_reserve_keeps_agents_for_inbound() {
    let mut cfg = campaign(DialMode::Progressive);
    cfg.agent_reserve = 1;
    let mut bed = bed_with(cfg, 2, 5);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    assert_eq!(dials_since(&bed, 0).len(), 1, "one of two agents held back");
}

#[test]
fn contacts_outside_their_calling_window_wait_for_it() {
    // 2026-03-02T12:00Z: 07:00 in New York, 13:00 in London.
    let origin = 1_772_452_800_000;
    let mut bed = Bed::with_config(EngineConfig {
        origin_unix_ms: origin,
        ..EngineConfig::default()
    });
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.agent(1, &[1]);
    bed.agent(2, &[1]);
    let mut cfg = campaign(DialMode::Progressive);
    cfg.window = CallingWindow::default();
    cfg.retry.busy = RetryRule::new(60, 1);
    bed.cmd(Command::UpsertCampaign(Box::new(cfg)));
    let mut list = contacts(2);
    list[1].zone = "Europe/London".into();
    bed.cmd(Command::AddContacts {
        campaign: C,
        contacts: list,
    });
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let dials = dials_since(&bed, 0);
    assert_eq!(dials.len(), 1, "only London is awake");
    assert!(dials[0].1.ends_with("+12125550002"));
    bed.event(SwitchEvent::LegHungUp {
        leg: dials[0].0,
        cause: HangupCause::Busy,
    });
    bed.advance(Duration::from_secs(3600) - Duration::from_secs(2));
    assert_eq!(
        dials_since(&bed, 0).len(),
        1,
        "New York opens at 08:00 local"
    );
    bed.advance(Duration::from_secs(2));
    let dials = dials_since(&bed, 0);
    assert_eq!(dials.len(), 2);
    assert!(dials[1].1.ends_with("+12125550001"));
}

#[test]
fn predictive_dials_ahead_of_free_agents_and_stays_within_max_lines() {
    let mut cfg = campaign(DialMode::Predictive);
    cfg.max_lines = 12;
    let mut bed = bed_with(cfg, 4, 100);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let n = dials_since(&bed, 0).len();
    assert!(n > 4, "more lines than free agents: {n}");
    assert!(n <= 12, "never above max_lines: {n}");
    assert_eq!(bed.engine.campaign_lines(C), n);
}

#[test]
fn a_disposition_with_a_callback_time_puts_the_contact_back() {
    let mut bed = bed_with(campaign(DialMode::Progressive), 1, 1);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let (leg, _) = dials_since(&bed, 0)[0].clone();
    let mark = bed.switch.len();
    bed.event(SwitchEvent::LegAnswered { leg });
    let agent_leg = agent_leg_since(&bed, mark).unwrap();
    bed.event(SwitchEvent::LegAnswered { leg: agent_leg });
    let call = bed.engine.call_by_leg(leg).unwrap();
    bed.event(SwitchEvent::LegHungUp {
        leg,
        cause: HangupCause::Normal,
    });
    assert_eq!(bed.engine.campaign_stats(C).unwrap().contacts_remaining, 0);
    let retry_at = attempts(&bed)[0].ended_unix_ms + 600_000;
    bed.cmd(Command::Disposition {
        call,
        code: "call-back".into(),
        retry_at_unix_ms: Some(retry_at),
    });
    assert!(
        bed.records
            .iter()
            .any(|r| matches!(r, Record::Disposition(d) if d.code == "call-back"))
    );
    assert_eq!(bed.engine.campaign_stats(C).unwrap().contacts_remaining, 1);
    let unknown = bed.try_cmd(Command::Disposition {
        call: switchyard_engine::CallId(9999),
        code: "x".into(),
        retry_at_unix_ms: None,
    });
    assert!(matches!(unknown, Err(EngineError::UnknownCall(_))));
}

#[test]
fn bad_campaign_settings_are_refused_with_the_field() {
    let mut bed = Bed::new();
    let mut cfg = campaign(DialMode::Predictive);
    cfg.ring_timeout = Duration::from_secs(10);
    let err = bed.try_cmd(Command::UpsertCampaign(Box::new(cfg)));
    assert!(matches!(
        err,
        Err(EngineError::InvalidConfig {
            field: "ring_timeout",
            ..
        })
    ));
    let mut cfg = campaign(DialMode::Predictive);
    cfg.ledger_zone = "Atlantis/Capital".into();
    assert!(bed.try_cmd(Command::UpsertCampaign(Box::new(cfg))).is_err());
    let missing = bed.try_cmd(Command::ControlCampaign {
        campaign: CampaignId(99),
        control: CampaignControl::Start,
    });
    assert!(matches!(missing, Err(EngineError::UnknownCampaign(_))));
}

mod simulated {
    use switchyard_engine::dialer::DialMode;
    use switchyard_engine::sim::{CampaignSimConfig, run_campaign};

    #[test]
    fn predictive_keeps_the_abandon_rule_and_beats_progressive() {
        let base = CampaignSimConfig {
            agents: 10,
            days: 2,
            ..CampaignSimConfig::default()
        };
        let predictive = run_campaign(&base).unwrap();
        let progressive = run_campaign(&CampaignSimConfig {
            mode: DialMode::Progressive,
            ..base.clone()
        })
        .unwrap();
        // The rule: under 3% of answered persons over the period, no day above 5%.
        assert!(predictive.abandon_rate < 0.03, "{predictive:?}");
        assert!(predictive.abandon_rate_max_day < 0.05, "{predictive:?}");
        assert_eq!(
            progressive.abandoned, 0,
            "one line per free agent never abandons"
        );
        assert!(
            predictive.talk_occupancy > progressive.talk_occupancy + 0.1,
            "{} vs {}",
            predictive.talk_occupancy,
            progressive.talk_occupancy
        );
        assert!(predictive.busy_occupancy > predictive.talk_occupancy);
        assert_eq!(
            run_campaign(&base).unwrap(),
            predictive,
            "a seed replays exactly"
        );
    }

    #[test]
    fn persistent_agent_lines_spend_no_time_ringing_agents_and_keep_the_rule() {
        let base = CampaignSimConfig {
            agents: 10,
            days: 2,
            ..CampaignSimConfig::default()
        };
        let per_call = run_campaign(&base).unwrap();
        let lines = run_campaign(&CampaignSimConfig {
            persistent_lines: true,
            ..base
        })
        .unwrap();
        // Per call, every connect reserves its agent for the 0.3 s auto-answer; on a line
        // an offer is taken at once (the line's own ring, once a day, is idle time).
        assert!(per_call.reserved_share > 0.001, "{per_call:?}");
        assert!(lines.reserved_share < 0.000_1, "{lines:?}");
        assert!(lines.abandon_rate < 0.03, "{lines:?}");
        assert!(lines.abandon_rate_max_day < 0.05, "{lines:?}");
        assert!(lines.connected > 1000, "{lines:?}");
    }

    #[test]
    fn machines_are_detected_and_never_reach_agents() {
        let report = run_campaign(&CampaignSimConfig {
            agents: 5,
            days: 1,
            hours_per_day: 2.0,
            machine_rate: 0.2,
            ..CampaignSimConfig::default()
        })
        .unwrap();
        assert!(report.machine > 0);
        let share = report.machine as f64 / report.dialed as f64;
        assert!((share - 0.2).abs() < 0.03, "machine share {share}");
    }

    #[test]
    fn bad_simulation_settings_name_the_flag() {
        let err = run_campaign(&CampaignSimConfig {
            answer_rate: 0.9,
            machine_rate: 0.3,
            ..CampaignSimConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("answer_rate"), "{err}");
    }
}

#[test]
fn preview_offers_a_contact_to_an_agent_who_logs_in_while_another_rings() {
    let mut bed = bed_with(campaign(DialMode::Preview), 1, 10);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    assert_eq!(bed.originations_since(0).len(), 1);
    bed.agent(2, &[1]);
    bed.advance(Duration::from_secs(1));
    let rung: Vec<u32> = bed
        .originations_since(0)
        .into_iter()
        .map(|(_, a)| a)
        .collect();
    assert_eq!(rung, vec![1, 2], "the newcomer gets a contact too");
    bed.advance(Duration::from_secs(2));
    assert_eq!(
        bed.originations_since(0).len(),
        2,
        "and no more while they ring"
    );
}

#[test]
fn progressive_does_not_count_a_ringing_agent_twice() {
    let mut bed = bed_with(campaign(DialMode::Progressive), 2, 10);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let dials = dials_since(&bed, 0);
    assert_eq!(dials.len(), 2);
    let mark = bed.switch.len();
    // One person answers: their agent rings; the other agent is still free for the other line.
    bed.event(SwitchEvent::LegAnswered { leg: dials[0].0 });
    assert_eq!(bed.originations_since(mark).len(), 1);
    bed.event(SwitchEvent::LegHungUp {
        leg: dials[1].0,
        cause: HangupCause::NoAnswer,
    });
    bed.advance(Duration::from_secs(1));
    assert_eq!(
        dials_since(&bed, 0).len(),
        3,
        "the line that rang out is replaced for the agent still free"
    );
}

#[test]
fn pausing_takes_back_previews_no_agent_accepted_yet() {
    let mut bed = bed_with(campaign(DialMode::Preview), 1, 3);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let (agent_leg, _) = bed.originations_since(0)[0];
    control(&mut bed, CampaignControl::Pause);
    assert!(
        bed.switch
            .iter()
            .any(|c| matches!(c, SwitchCommand::Hangup { leg, .. } if *leg == agent_leg)),
        "the agent stops ringing"
    );
    let a = attempts(&bed);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].outcome, AttemptOutcome::Cancelled);
    assert!(matches!(a[0].next, ContactNext::Retry { .. }));
    assert_eq!(bed.engine.campaign_stats(C).unwrap().contacts_remaining, 3);
    let mark = bed.switch.len();
    control(&mut bed, CampaignControl::Resume);
    bed.advance(Duration::from_secs(1));
    let again = bed.switch[mark..].iter().find_map(|c| match c {
        SwitchCommand::Originate {
            kind: LegKind::Agent,
            caller_id_number,
            ..
        } => Some(caller_id_number.clone()),
        _ => None,
    });
    assert_eq!(
        again.as_deref(),
        Some("+12125550001"),
        "the same contact first"
    );
}

/// Predictive lines whose person would find no agent are released once they have rung the
/// legal minimum (15 s), never before; with `release_after: None` they ring to the timeout.
#[test]
fn unneeded_lines_are_released_after_the_minimum_ring_and_not_before() {
    for release_after in [Some(Duration::from_secs(15)), None] {
        let mut cfg = campaign(DialMode::Predictive);
        cfg.max_lines = 20;
        cfg.release_after = release_after;
        let mut bed = bed_with(cfg, 2, 100);
        start(&mut bed);
        bed.advance(Duration::from_secs(1));
        let lines = dials_since(&bed, 0);
        assert!(!lines.is_empty());
        // Both agents leave: nobody could take a person any more.
        for a in 1..=2 {
            bed.cmd(Command::SetAgentPresence {
                agent: AgentId(a),
                presence: Presence::OnBreak("meeting".into()),
            });
        }
        let released = |bed: &Bed| {
            bed.switch
                .iter()
                .filter(|c| {
                    matches!(c, SwitchCommand::Hangup { leg, cause: "ORIGINATOR_CANCEL" }
                        if lines.iter().any(|(l, _)| l == leg))
                })
                .count()
        };
        bed.advance(Duration::from_secs(13));
        assert_eq!(released(&bed), 0, "nothing is cut before 15 s of ringing");
        assert!(attempts(&bed).is_empty());
        bed.advance(Duration::from_secs(2));
        if release_after.is_some() {
            assert_eq!(released(&bed), lines.len(), "every line is released");
            let a = attempts(&bed);
            assert_eq!(a.len(), lines.len());
            for rec in a {
                assert_eq!(rec.outcome, AttemptOutcome::NoAnswer);
                assert!(rec.ended_unix_ms - rec.dialed_unix_ms >= 15_000);
                assert!(matches!(rec.next, ContactNext::Retry { .. }));
            }
            assert_eq!(bed.engine.campaign_lines(C), 0);
            let stats = bed.engine.campaign_stats(C).unwrap();
            assert_eq!(stats.no_answer, lines.len() as u64);
            assert_eq!(stats.released, lines.len() as u64);
            // The switch's own hangup of a released leg changes nothing.
            bed.event(SwitchEvent::LegHungUp {
                leg: lines[0].0,
                cause: HangupCause::Normal,
            });
            assert_eq!(attempts(&bed).len(), lines.len());
        } else {
            assert_eq!(released(&bed), 0, "release switched off: lines ring on");
            assert_eq!(bed.engine.campaign_lines(C), lines.len());
            assert_eq!(bed.engine.campaign_stats(C).unwrap().released, 0);
        }
    }
}

#[test]
fn progressive_on_agents_too_slow_for_the_allowance_rings_them_first_after_one_abandon() {
    let mut bed = bed_with(campaign(DialMode::Progressive), 1, 5);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let (leg, _) = dials_since(&bed, 0)[0].clone();
    bed.event(SwitchEvent::LegAnswered { leg });
    // The agent's desk phone rings past the 2 s allowance: the person is abandoned.
    let first_agent_leg = bed.leg_of(1);
    let mark = bed.switch.len();
    bed.advance(Duration::from_millis(2100));
    assert!(
        bed.switch[mark..]
            .iter()
            .any(|c| matches!(c, SwitchCommand::PlayThenHangup { leg: l, .. } if *l == leg))
    );
    // The ledger is at the target at once: the next dial rings the agent first...
    bed.event(SwitchEvent::LegHungUp {
        leg,
        cause: HangupCause::Normal,
    });
    bed.advance(Duration::from_secs(1));
    assert!(bed.live.iter().any(|e| matches!(
        e,
        LiveEvent::CampaignPacing {
            pacing: "agent-first",
            brake: Some(Brake::OverTarget),
            ..
        }
    )));
    let agent_leg = agent_leg_since(&bed, mark).expect("the agent is rung first");
    assert_ne!(agent_leg, first_agent_leg);
    assert!(
        dials_since(&bed, mark).is_empty(),
        "no customer before the agent"
    );
    let stats = bed.engine.campaign_stats(C).unwrap();
    assert_eq!(
        (stats.pacing, stats.brake),
        ("agent-first", Some(Brake::OverTarget))
    );
    // ... and the customer is dialled once the agent is on the line, bridged at its answer.
    bed.advance(Duration::from_secs(3));
    bed.event(SwitchEvent::LegAnswered { leg: agent_leg });
    let (customer, _) = dials_since(&bed, mark)[0].clone();
    bed.advance(Duration::from_secs(8));
    bed.event(SwitchEvent::LegAnswered { leg: customer });
    bed.advance(Duration::from_secs(30));
    bed.event(SwitchEvent::LegHungUp {
        leg: customer,
        cause: HangupCause::Normal,
    });
    let a = attempts(&bed);
    assert_eq!(
        a.iter().map(|a| a.outcome).collect::<Vec<_>>(),
        vec![AttemptOutcome::Abandoned, AttemptOutcome::Connected]
    );
    let stats = bed.engine.campaign_stats(C).unwrap();
    assert_eq!((stats.connected, stats.abandoned), (1, 1));
}

#[test]
fn progressive_learns_its_agents_by_ringing_them_first_then_dials_customers_first() {
    let mut cfg = campaign(DialMode::Progressive);
    cfg.progressive_dial = ProgressiveDial::Auto;
    let mut bed = bed_with(cfg, 1, 10);
    start(&mut bed);
    for round in 0..4 {
        let mark = bed.switch.len();
        bed.advance(Duration::from_millis(100));
        let stats = bed.engine.campaign_stats(C).unwrap();
        assert_eq!(
            (stats.pacing, stats.brake),
            ("agent-first", Some(Brake::Learning))
        );
        let agent_leg = bed
            .originations()
            .last()
            .map(|(l, _)| *l)
            .expect("the agent is rung");
        assert!(
            dials_since(&bed, mark).is_empty(),
            "round {round}: no customer yet"
        );
        // A phone that answers in 0.4 s.
        bed.advance(Duration::from_millis(400));
        bed.event(SwitchEvent::LegAnswered { leg: agent_leg });
        let (customer, _) = dials_since(&bed, mark)[0].clone();
        bed.advance(Duration::from_secs(5));
        bed.event(SwitchEvent::LegAnswered { leg: customer });
        bed.advance(Duration::from_secs(10));
        bed.event(SwitchEvent::LegHungUp {
            leg: customer,
            cause: HangupCause::Normal,
        });
    }
    // Four answers in 0.4 s: fast enough for the 2 s rule, so the next customer is dialled
    // with no agent rung for it.
    bed.advance(Duration::from_secs(1));
    assert_eq!(
        dials_since(&bed, 0).len(),
        5,
        "a fifth, customer-first line"
    );
    assert_eq!(
        bed.originations().len(),
        4,
        "agents rung only for the first four"
    );
    assert!(bed.live.iter().any(|e| matches!(
        e,
        LiveEvent::CampaignPacing {
            pacing: "customer-first",
            brake: None,
            ..
        }
    )));
}

/// Campaign dial number `n` (from 0) of the whole test: waits up to two minutes of virtual
/// time for it (the dialer ticks every half second).
fn nth_dial(bed: &mut Bed, n: usize) -> LegId {
    for _ in 0..240 {
        if let Some((leg, _)) = dials_since(bed, 0).get(n) {
            return *leg;
        }
        bed.advance(Duration::from_millis(500));
    }
    panic!(
        "no dial {n} within two minutes: {:?}",
        bed.engine.campaign_stats(C)
    );
}

/// Dial `n`: a person who answers, passes detection as `verdict`, and is put through to
/// the agent, who answers after `agent_after` and talks for a minute.
fn put_through(bed: &mut Bed, n: usize, verdict: AmdResult, agent_after: Duration) {
    let leg = nth_dial(bed, n);
    bed.advance(Duration::from_secs(2));
    bed.event(SwitchEvent::LegAnswered { leg });
    let ring = bed.switch.len();
    bed.event(SwitchEvent::MachineDetection {
        leg,
        result: verdict,
    });
    let agent_leg = agent_leg_since(bed, ring).expect("the agent is rung");
    bed.advance(agent_after);
    bed.event(SwitchEvent::LegAnswered { leg: agent_leg });
    bed.advance(Duration::from_secs(60));
    bed.event(SwitchEvent::LegHungUp {
        leg,
        cause: HangupCause::Normal,
    });
    bed.advance(Duration::from_secs(30));
}

#[test]
fn a_ledger_rebuilt_from_the_attempts_equals_the_live_one() {
    use switchyard_engine::dialer::ledger::{LedgerEntry, days_from};
    use switchyard_engine::dialer::window;
    // 2026-03-03T04:50:00Z: 23:50 on March 2 in New York, the ledger's zone.
    let origin = 1_772_513_400_000u64;
    let midnight = origin + 10 * 60 * 1000;
    let mut bed = Bed::with_config(EngineConfig {
        origin_unix_ms: origin,
        ..EngineConfig::default()
    });
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.agent(1, &[1]);
    let mut cfg = campaign(DialMode::Progressive);
    cfg.ledger_zone = "America/New_York".into();
    cfg.amd = AmdPolicy {
        enabled: true,
        on_machine: MachineAction::ToAgent,
        timeout: Duration::from_secs(4),
    };
    bed.cmd(Command::UpsertCampaign(Box::new(cfg)));
    bed.cmd(Command::AddContacts {
        campaign: C,
        contacts: contacts(20),
    });
    start(&mut bed);
    let break_ = |bed: &mut Bed, on: bool| {
        bed.cmd(Command::SetAgentPresence {
            agent: AgentId(1),
            presence: if on {
                Presence::OnBreak("hold".into())
            } else {
                Presence::Available
            },
        })
    };

    // A person, connected.
    put_through(&mut bed, 0, AmdResult::Human, Duration::from_secs(1));
    // A machine sent to the agent: connected, but not a person.
    put_through(&mut bed, 1, AmdResult::Machine, Duration::from_secs(1));
    // No answer.
    let leg = nth_dial(&mut bed, 2);
    bed.advance(Duration::from_secs(20));
    bed.event(SwitchEvent::LegHungUp {
        leg,
        cause: HangupCause::NoAnswer,
    });
    bed.advance(Duration::from_secs(30));
    // A person who leaves inside the two seconds, the agent still ringing.
    let leg = nth_dial(&mut bed, 3);
    bed.advance(Duration::from_secs(2));
    bed.event(SwitchEvent::LegAnswered { leg });
    bed.event(SwitchEvent::MachineDetection {
        leg,
        result: AmdResult::Human,
    });
    bed.advance(Duration::from_secs(1));
    bed.event(SwitchEvent::LegHungUp {
        leg,
        cause: HangupCause::Normal,
    });
    bed.advance(Duration::from_secs(30));
    // Held back until just before midnight: answered on March 2, connected on March 3.
    break_(&mut bed, true);
    let now_ms = |bed: &Bed| origin + bed.now.duration_since(bed.t0).as_millis() as u64;
    let left = midnight - 3_500 - now_ms(&bed);
    bed.advance(Duration::from_millis(left));
    break_(&mut bed, false);
    put_through(&mut bed, 4, AmdResult::Human, Duration::from_millis(1800));
    assert!(now_ms(&bed) > midnight);
    // March 3: a person connected, then one abandoned (the agent is away).
    put_through(&mut bed, 5, AmdResult::Human, Duration::from_secs(1));
    let leg = nth_dial(&mut bed, 6);
    break_(&mut bed, true);
    bed.advance(Duration::from_secs(2));
    bed.event(SwitchEvent::LegAnswered { leg });
    bed.event(SwitchEvent::MachineDetection {
        leg,
        result: AmdResult::Human,
    });
    bed.advance(Duration::from_secs(3));
    bed.event(SwitchEvent::LegHungUp {
        leg,
        cause: HangupCause::Normal,
    });

    let all = attempts(&bed);
    let outcomes: Vec<AttemptOutcome> = all.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            AttemptOutcome::Connected,
            AttemptOutcome::Connected,
            AttemptOutcome::NoAnswer,
            AttemptOutcome::HungUp,
            AttemptOutcome::Connected,
            AttemptOutcome::Connected,
            AttemptOutcome::Abandoned,
        ]
    );
    assert!(all[1].machine, "the second was a machine");
    // The fifth was answered before midnight and connected after it (1.8 s later).
    let answered = all[4].answered_unix_ms.unwrap();
    assert!(
        answered < midnight && answered + 1_800 > midnight,
        "{answered}"
    );
    let zone = window::zone("America/New_York").unwrap();
    let rebuilt = days_from(&zone, all.iter().filter_map(|a| LedgerEntry::of_attempt(a)));
    let live = bed.engine.campaign_ledger(C);
    assert_eq!(rebuilt, live);
    let counts: Vec<(u64, u64)> = live.iter().map(|d| (d.humans, d.abandoned)).collect();
    assert_eq!(counts, [(3, 0), (2, 1)], "{live:?}");
    assert_eq!(live[1].day, live[0].day + 1);
}

#[test]
fn a_pacer_restored_from_its_last_snapshot_knows_what_it_knew() {
    let mut cfg = campaign(DialMode::Predictive);
    cfg.max_lines = 6;
    let mut bed = bed_with(cfg.clone(), 2, 40);
    start(&mut bed);
    // Some persons, some no-answers: the pacer learns from each.
    for n in 0..6 {
        let leg = nth_dial(&mut bed, n);
        bed.advance(Duration::from_secs(3));
        if n % 2 == 0 {
            bed.event(SwitchEvent::LegAnswered { leg });
            bed.advance(Duration::from_secs(20));
        }
        bed.event(SwitchEvent::LegHungUp {
            leg,
            cause: if n % 2 == 0 {
                HangupCause::Normal
            } else {
                HangupCause::NoAnswer
            },
        });
        bed.advance(Duration::from_secs(5));
    }
    let last = bed
        .records
        .iter()
        .rev()
        .find_map(|r| match r {
            Record::PacerState { campaign, pacer } if *campaign == C => Some((**pacer).clone()),
            _ => None,
        })
        .expect("the pacer's snapshots are records");
    let live = bed.engine.pacer_snapshot(C).expect("the campaign");
    assert_eq!(live, last, "the last record holds what the pacer knows now");
    let prior = bed_with(cfg.clone(), 2, 0)
        .engine
        .pacer_snapshot(C)
        .expect("a fresh campaign");
    assert_ne!(live, prior, "it learned something");

    // A restarted engine seeded with it knows exactly that.
    let mut again = bed_with(cfg.clone(), 2, 40);
    again.cmd(Command::SeedPacer {
        campaign: C,
        pacer: Box::new(last.clone()),
    });
    assert_eq!(again.engine.pacer_snapshot(C), Some(last.clone()));

    // A snapshot this version cannot take is refused with its field; the pacer keeps its
    // prior.
    let mut bad = serde_json::to_value(&last).unwrap();
    bad["theta"] = serde_json::json!(7.0);
    let bad: switchyard_engine::dialer::pacing::PacerSnapshot =
        serde_json::from_value(bad).unwrap();
    let mut other = bed_with(cfg, 2, 40);
    let before = other.engine.pacer_snapshot(C);
    let refused = other.engine.handle_input(switchyard_engine::Input::Api(
        other.now,
        Command::SeedPacer {
            campaign: C,
            pacer: Box::new(bad),
        },
    ));
    assert!(
        matches!(
            refused,
            Err(switchyard_engine::EngineError::InvalidConfig { field: "pacer", .. })
        ),
        "{refused:?}"
    );
    assert_eq!(other.engine.pacer_snapshot(C), before);
}

// ----- desktop previews -----

fn desktop_preview() -> CampaignConfig {
    CampaignConfig {
        preview_accept: switchyard_engine::dialer::config::PreviewAccept::Desktop,
        preview_timeout: Duration::from_secs(60),
        ..campaign(DialMode::Preview)
    }
}

/// The reservations announced since `from`: (call, agent, contact, number, expires).
fn reservations_since(bed: &Bed, from: usize) -> Vec<(CallId, u32, u64, String, u64)> {
    bed.live[from..]
        .iter()
        .filter_map(|e| match e {
            LiveEvent::PreviewReserved {
                call,
                agent,
                campaign,
                contact,
                number,
                expires_unix_ms,
            } => {
                assert_eq!(*campaign, C);
                Some((*call, agent.0, contact.0, number.clone(), *expires_unix_ms))
            }
            _ => None,
        })
        .collect()
}

fn origin_ms(bed: &Bed) -> u64 {
    EngineConfig::default().origin_unix_ms + (bed.now - bed.t0).as_millis() as u64
}

#[test]
fn a_desktop_preview_reserves_the_agent_without_ringing_until_it_accepts() {
    let mut bed = bed_with(desktop_preview(), 1, 2);
    let reserved_at = origin_ms(&bed);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    assert!(bed.switch.is_empty(), "nothing rings: {:?}", bed.switch);
    let r = reservations_since(&bed, 0);
    assert_eq!(r.len(), 1);
    let (call, agent, contact, number, expires) = r[0].clone();
    assert_eq!((agent, contact, number.as_str()), (1, 1, "+12125550001"));
    assert_eq!(expires, reserved_at + 60_000, "the campaign's timeout");
    assert_eq!(bed.state(1), AgentStateKind::Reserved);
    assert_eq!(bed.engine.call_agent(call), Some(AgentId(1)));

    // Another agent cannot take it; the agent it is reserved to can.
    assert_eq!(
        bed.try_cmd(Command::AcceptPreview {
            call,
            by: Some(AgentId(2)),
        }),
        Err(EngineError::NotReserved {
            call,
            agent: Some(AgentId(2)),
        })
    );
    bed.cmd(Command::AcceptPreview {
        call,
        by: Some(AgentId(1)),
    });
    let rung = bed.originations_since(0);
    assert_eq!(rung.len(), 1, "the agent's phone rings now");
    let agent_leg = rung[0].0;
    assert!(
        dials_since(&bed, 0).is_empty(),
        "the customer waits for the agent"
    );
    // Accepted once: a second accept finds no reservation.
    assert_eq!(
        bed.try_cmd(Command::AcceptPreview { call, by: None }),
        Err(EngineError::NotReserved { call, agent: None })
    );
    bed.answer(agent_leg);
    let dials = dials_since(&bed, 0);
    assert_eq!(dials.len(), 1);
    assert_eq!(dials[0].1, "sofia/gateway/carrier/+12125550001");
    let customer = dials[0].0;
    assert_eq!(
        bed.engine.call_by_leg(customer),
        Some(call),
        "the customer is dialled on the call's own leg"
    );
    bed.answer(customer);
    assert_eq!(bed.bridges(), vec![(customer, agent_leg)]);
    bed.advance(Duration::from_secs(30));
    bed.hangup(customer, HangupCause::Normal);
    let a = attempts(&bed);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].outcome, AttemptOutcome::Connected);
    assert_eq!(a[0].agent, Some(AgentId(1)));
    assert_eq!(a[0].leg, customer);
    // The call is disposed by the leg the API showed from the reservation on.
    let (ended, _) = bed
        .engine
        .ended_campaign_call(customer)
        .expect("remembered");
    assert_eq!(ended, call);
}

#[test]
fn a_skipped_desktop_preview_goes_to_the_next_agent() {
    let mut bed = bed_with(desktop_preview(), 1, 1);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let (call, agent, ..) = reservations_since(&bed, 0)[0].clone();
    assert_eq!(agent, 1);
    bed.agent(2, &[1]);
    let mark = bed.live.len();
    bed.cmd(Command::SkipPreview {
        call,
        by: Some(AgentId(1)),
    });
    let r = reservations_since(&bed, mark);
    assert_eq!(r.len(), 1, "{:?}", &bed.live[mark..]);
    assert_eq!(
        (r[0].0, r[0].1, r[0].2),
        (call, 2, 1),
        "same call, same contact"
    );
    assert!(bed.switch.is_empty(), "nothing rang and nothing is hung up");
    assert!(
        matches!(
            &bed.live[mark],
            LiveEvent::PreviewEnded { call: c, agent: AgentId(1), reason: "skipped" } if *c == call
        ),
        "the first agent's screen is cleared first: {:?}",
        bed.live[mark]
    );
    assert!(attempts(&bed).is_empty(), "a skip is not an attempt");
    assert_eq!(
        bed.engine
            .stats()
            .agent_snapshot(bed.now, AgentId(1))
            .since_start
            .rejected,
        1,
        "counted as a rejected offer"
    );
    // The agent who skipped is free again (after its reject delay, zero here).
    assert_eq!(bed.state(1), AgentStateKind::Available);
}

#[test]
fn an_unanswered_desktop_preview_times_out_as_no_answer() {
    let mut cfg = desktop_preview();
    cfg.preview_timeout = Duration::from_secs(20);
    let mut bed = bed_with(cfg, 1, 1);
    start(&mut bed);
    let (call, ..) = reservations_since(&bed, 0)[0].clone();
    let mark = bed.live.len();
    bed.advance(Duration::from_secs(19));
    assert_eq!(bed.state(1), AgentStateKind::Reserved, "not yet");
    bed.advance(Duration::from_secs(1));
    assert!(
        bed.switch.is_empty(),
        "nothing to hang up: {:?}",
        bed.switch
    );
    assert_eq!(
        bed.engine
            .stats()
            .agent_snapshot(bed.now, AgentId(1))
            .since_start
            .no_answer,
        1
    );
    assert!(bed.engine.call_info(call).is_some(), "the contact waits on");
    assert!(
        bed.live[mark..].iter().any(|e| matches!(
            e,
            LiveEvent::AgentState { agent, state: AgentStateKind::Available, .. } if *agent == AgentId(1)
        )),
        "the reservation ended"
    );
    assert!(attempts(&bed).is_empty());
}

#[test]
fn pausing_a_campaign_withdraws_a_desktop_reservation_before_the_agent_accepts() {
    let mut bed = bed_with(desktop_preview(), 1, 3);
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let (call, ..) = reservations_since(&bed, 0)[0].clone();
    control(&mut bed, CampaignControl::Pause);
    assert!(bed.switch.is_empty(), "nothing rang, nothing is hung up");
    assert_eq!(bed.state(1), AgentStateKind::Available);
    let a = attempts(&bed);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].outcome, AttemptOutcome::Cancelled);
    assert!(matches!(a[0].next, ContactNext::Retry { .. }));
    // The agent's click arrives after the pause: refused, nothing rings.
    assert_eq!(
        bed.try_cmd(Command::AcceptPreview {
            call,
            by: Some(AgentId(1)),
        }),
        Err(EngineError::UnknownCall(call))
    );
    assert!(bed.switch.is_empty());
    control(&mut bed, CampaignControl::Resume);
    bed.advance(Duration::from_secs(1));
    let r = reservations_since(&bed, 0);
    assert_eq!(r.len(), 2);
    assert_eq!(r[1].2, 1, "the same contact first");
}

#[test]
fn a_desktop_preview_accepted_on_a_persistent_line_dials_the_customer_at_once() {
    let mut bed = Bed::new();
    bed.simple_queue(1, Strategy::LongestIdleAgent);
    bed.agent_with(
        switchyard_engine::AgentConfig {
            id: AgentId(1),
            contact: "user/1".into(),
            persistent_line: true,
            ..switchyard_engine::AgentConfig::default()
        },
        vec![switchyard_engine::Membership {
            queue: switchyard_engine::QueueId(1),
            level: 1,
            position: 1,
            weight: 1,
        }],
        true,
    );
    let line = bed.leg_of(1);
    bed.answer(line);
    bed.cmd(Command::UpsertCampaign(Box::new(desktop_preview())));
    bed.cmd(Command::AddContacts {
        campaign: C,
        contacts: contacts(1),
    });
    start(&mut bed);
    bed.advance(Duration::from_secs(1));
    let (call, ..) = reservations_since(&bed, 0)[0].clone();
    assert!(dials_since(&bed, 0).is_empty(), "the line is not used yet");
    bed.cmd(Command::AcceptPreview { call, by: None });
    let dials = dials_since(&bed, 0);
    assert_eq!(
        dials.len(),
        1,
        "the line is up: the customer is dialled now"
    );
    bed.answer(dials[0].0);
    assert_eq!(bed.bridges(), vec![(dials[0].0, line)]);
}

#[test]
fn an_agent_going_on_break_gives_back_its_desktop_preview_to_the_next_agent() {
    let mut bed = bed_with(desktop_preview(), 1, 1);
    start(&mut bed);
    let (call, agent, ..) = reservations_since(&bed, 0)[0].clone();
    assert_eq!(agent, 1);
    bed.agent(2, &[1]);
    let mark = bed.live.len();
    bed.cmd(Command::SetAgentPresence {
        agent: AgentId(1),
        presence: Presence::OnBreak("lunch".into()),
    });
    assert!(
        matches!(
            &bed.live[mark],
            LiveEvent::PreviewEnded { call: c, agent: AgentId(1), reason: "withdrawn" } if *c == call
        ),
        "{:?}",
        bed.live[mark]
    );
    assert_eq!(bed.state(1), AgentStateKind::OnBreak);
    let r = reservations_since(&bed, mark);
    assert_eq!((r[0].0, r[0].1), (call, 2), "the next agent at once");
    assert_eq!(
        bed.engine
            .stats()
            .agent_snapshot(bed.now, AgentId(1))
            .since_start
            .rejected,
        0,
        "leaving is not refusing"
    );
    assert!(bed.switch.is_empty());
}
