//! The driver against the fake switch in virtual time (see `pair/mod.rs`): the cases that
//! depend on timing and order (the answer/bridge race, kills that overtake their originate,
//! restarts, resyncs, several nodes, legs a restart forgot) run here, stepped exactly,
//! without TCP. A few TCP smoke tests (`engine_wire`, `engine_multinode`, `bridge_race`)
//! keep the tokio shell honest.

#[path = "pair/mod.rs"]
mod pair;
#[path = "wire_support/mod.rs"]
mod wire_support;

use std::collections::HashMap;
use std::time::Duration;

use pair::Pair;
use switchyard_engine::agent::AgentStateKind;
use switchyard_engine::driver::OpenRecords;
use switchyard_engine::{AgentId, CallOutcome, Command, LegId, QueueId, Record};
use switchyard_esl::sim::{
    AgentBehaviour, AgentModel, CustomerModel, Dist, Fault, InboundCall, Scenario, SimConfig,
};
use wire_support::race_queue;

const QUEUE: QueueId = QueueId(1);

/// A switch whose agents (extensions 1000-1099) answer after `answer` seconds, with the
/// captures' handover window and race on (the switch's defaults).
fn switch(seed: u64, answer: Dist) -> SimConfig {
    SimConfig {
        inbound_target: Some("127.0.0.1:8084".into()),
        scenario: Scenario {
            seed,
            agents: AgentModel {
                extensions: vec!["1000-1099".into()],
                behaviour: AgentBehaviour {
                    answer_delay: answer,
                    ..AgentBehaviour::default()
                },
                overrides: Vec::new(),
            },
            customers: CustomerModel::default(),
            inbound: None,
        },
        ..SimConfig::default()
    }
}

/// One node, `agents` agents on extensions 1000.., routed by number 5000.
fn world(seed: u64, agents: u32) -> Pair {
    world_answering(seed, agents, Dist::Uniform([0.05, 0.15]))
}

fn world_answering(seed: u64, agents: u32, answer: Dist) -> Pair {
    world_tuned(seed, agents, answer, |_| {})
}

fn world_tuned(
    seed: u64,
    agents: u32,
    answer: Dist,
    tune: impl FnOnce(&mut switchyard_engine::driver::DriverConfig),
) -> Pair {
    let mut p = Pair::new(vec![switch(seed, answer)], |c| {
        c.routes.insert("5000".into(), QUEUE);
        tune(c);
    });
    p.queue(race_queue(QUEUE));
    for id in 1..=agents {
        p.agent(id, 999 + id, QUEUE, true);
    }
    p
}

fn caller(talk: Duration) -> InboundCall {
    InboundCall {
        caller_number: "+15550001111".into(),
        destination: "5000".into(),
        talk_time: Some(talk),
        ..InboundCall::default()
    }
}

fn agent_state(p: &Pair, id: u32) -> Option<AgentStateKind> {
    p.core.engine().agent_state(AgentId(id))
}

/// The leg `leg` is bridged to on `node`, if any.
fn bridged_to(p: &Pair, node: usize, leg: LegId) -> Option<String> {
    p.nodes[node]
        .wire
        .switch()
        .channel_var(&leg.to_string(), "bridge_uuid")
}

fn call_records(p: &Pair) -> Vec<&switchyard_engine::CallRecord> {
    p.records
        .iter()
        .filter_map(|r| match r {
            Record::Call(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn a_thousand_calls_through_the_race_are_all_bridged_with_true_records_and_no_leg_left() {
    let p = thousand_calls(world(11, 40));
    // Every agent leg joined its caller itself as its originate completed: nothing raced.
    let st = p.core.stats();
    assert_eq!(st.bridges_joined, 1_000);
    assert_eq!(st.bridges_held, 0);
    assert!(p.sent_like("api uuid_bridge").is_empty());
}

#[test]
fn a_thousand_calls_bridged_by_uuid_bridge_after_the_handover_are_all_bridged_too() {
    // The way every ring-all call, and every call on a node that does not expand API calls,
    // is bridged.
    let p = thousand_calls(world_tuned(11, 40, Dist::Uniform([0.05, 0.15]), |c| {
        c.join_on_answer = false
    }));
    let st = p.core.stats();
    assert!(st.bridges_held > 0, "no bridge met the handover window");
    assert_eq!(st.bridges_joined, 0);
    assert_eq!(
        p.sent_like("api uuid_bridge").len(),
        1_000,
        "one bridge per call"
    );
}

/// 1,000 callers 12 ms apart on `p`'s agents: each answered once, bridged, its record true, no
/// leg left, nothing failed.
fn thousand_calls(mut p: Pair) -> Pair {
    const CALLS: usize = 1_000;
    let mut callers = Vec::with_capacity(CALLS);
    for i in 0..CALLS {
        let mut c = caller(Duration::from_millis(300));
        c.caller_number = format!("+1555{i:07}");
        callers.push(p.call(0, c));
        p.run_for(Duration::from_millis(12));
    }
    let all = p.run_until_true(Duration::from_secs(120), |p| {
        call_records(p).len() >= CALLS && p.channels(0) == 0
    });
    assert!(
        all,
        "{} records, {} channels left",
        call_records(&p).len(),
        p.channels(0)
    );
    let mut by_leg: HashMap<LegId, usize> = HashMap::new();
    for r in call_records(&p) {
        *by_leg.entry(r.leg).or_default() += 1;
        assert_eq!(r.outcome, CallOutcome::Answered, "{r:?}");
        assert!(r.agent.is_some() && !r.synthetic, "{r:?}");
        // Talk is counted from the bridge: the caller talks 0.3 s after it.
        assert!(
            r.talk_s >= 0.25 && r.talk_s < 2.0,
            "talk {}: {r:?}",
            r.talk_s
        );
    }
    for leg in &callers {
        assert_eq!(by_leg.get(leg), Some(&1), "{leg}: one record");
    }
    let st = p.core.stats();
    assert_eq!(st.bridges_failed, 0);
    assert_eq!(st.originates_failed_after_answer, 0);
    assert_eq!(st.orphans_killed, 0);
    assert_eq!(st.commands_dropped, 0);
    assert_eq!(p.bridges_asked().len(), CALLS, "one bridge per call");
    p
}

#[test]
fn a_caller_who_leaves_while_the_agent_is_being_dialled_leaves_no_leg_ringing() {
    // The caller hangs up within milliseconds of arriving: the kill of the agent leg goes
    // out right behind the originate, often before the switch's job thread has created the
    // channel (`bgapi_start`), and must still take long before the agent would answer (3 s;
    // without the kill's retry the phone rang until then).
    let mut overtaken = 0;
    for patience_us in (0..4_000).step_by(250) {
        let mut p = world_answering(3 + patience_us, 1, Dist::Fixed(3.0));
        let leg = p.call(
            0,
            InboundCall {
                patience: Some(Duration::from_micros(patience_us)),
                ..caller(Duration::from_secs(5))
            },
        );
        // Well before the agent would answer, the agent leg was created and killed.
        p.run_for(Duration::from_millis(800));
        assert_eq!(
            p.channels(0),
            0,
            "patience {patience_us} us: a leg still rings"
        );
        assert!(p.call_record(leg).is_some());
        if p.sent_like("api uuid_kill").len() > 1 {
            overtaken += 1;
        }
        let rec = p.call_record(leg).unwrap();
        assert_eq!(
            rec.outcome,
            CallOutcome::Abandoned,
            "patience {patience_us} us"
        );
        p.run_for(Duration::from_secs(4));
        assert_eq!(agent_state(&p, 1), Some(AgentStateKind::Available));
        assert_eq!(p.channels(0), 0);
    }
    assert!(overtaken > 0, "no kill ever overtook its originate");
}

#[test]
fn a_switch_restart_mid_call_ends_the_call_as_lost_and_frees_the_agent() {
    let mut p = world(5, 1);
    let leg = p.call(0, caller(Duration::from_secs(60)));
    assert!(p.run_until_true(Duration::from_secs(5), |p| bridged_to(p, 0, leg).is_some()));
    assert_eq!(agent_state(&p, 1), Some(AgentStateKind::OnCall));

    p.fault(0, Fault::Restart);
    assert!(p.run_until_true(Duration::from_secs(5), |p| p.call_record(leg).is_some()));
    let rec = p.call_record(leg).unwrap().clone();
    assert_eq!(rec.outcome, CallOutcome::Lost);
    assert!(rec.synthetic);
    assert_eq!(rec.agent, Some(AgentId(1)));
    assert_eq!(p.core.stats().resyncs, 1);
    p.run_for(Duration::from_secs(2));
    assert_eq!(agent_state(&p, 1), Some(AgentStateKind::Available));
    assert_eq!(call_records(&p).len(), 1, "one record for the call");

    // And the restarted switch takes the next call.
    let next = p.call(0, caller(Duration::from_millis(300)));
    assert!(p.run_until_true(Duration::from_secs(5), |p| p.call_record(next).is_some()));
    assert_eq!(p.call_record(next).unwrap().outcome, CallOutcome::Answered);
}

#[test]
fn a_dropped_event_socket_reconnects_resyncs_and_the_call_carries_on() {
    let mut p = world(6, 1);
    let leg = p.call(0, caller(Duration::from_secs(2)));
    assert!(p.run_until_true(Duration::from_secs(5), |p| bridged_to(p, 0, leg).is_some()));
    p.fault(0, Fault::DropConnections);
    assert!(p.run_until_true(Duration::from_secs(2), |p| p.core.stats().resyncs >= 1));
    assert_eq!(agent_state(&p, 1), Some(AgentStateKind::OnCall));
    assert!(p.run_until_true(Duration::from_secs(5), |p| p.call_record(leg).is_some()));
    let rec = p.call_record(leg).unwrap();
    assert_eq!(rec.outcome, CallOutcome::Answered);
    assert!(!rec.synthetic);
    assert!(rec.talk_s >= 1.5, "talk {}", rec.talk_s);
}

fn two_nodes() -> Pair {
    let mut p = Pair::new(
        vec![switch(21, Dist::Fixed(0.1)), switch(22, Dist::Fixed(0.1))],
        |c| {
            c.routes.insert("5000".into(), QUEUE);
        },
    );
    p.queue(race_queue(QUEUE));
    p.agent(1, 1001, QUEUE, true);
    p.agent(2, 1002, QUEUE, true);
    p
}

/// A caller on each node, talking `talk_a` / `talk_b`, both bridged.
fn a_call_on_each_node(talk_a: Duration, talk_b: Duration) -> (Pair, LegId, LegId) {
    let mut p = two_nodes();
    let on_a = p.call(0, caller(talk_a));
    let on_b = p.call(1, caller(talk_b));
    assert!(p.run_until_true(Duration::from_secs(5), |p| {
        bridged_to(p, 0, on_a).is_some() && bridged_to(p, 1, on_b).is_some()
    }));
    (p, on_a, on_b)
}

#[test]
fn callers_on_each_node_get_their_agent_leg_on_their_own_node() {
    let (p, on_a, on_b) = a_call_on_each_node(Duration::from_secs(30), Duration::from_secs(30));
    let agent_a = bridged_to(&p, 0, on_a).unwrap();
    let agent_b = bridged_to(&p, 1, on_b).unwrap();
    assert!(p.nodes[0].wire.switch().has_channel(&agent_a));
    assert!(!p.nodes[1].wire.switch().has_channel(&agent_a));
    assert!(p.nodes[1].wire.switch().has_channel(&agent_b));
    assert!(!p.nodes[0].wire.switch().has_channel(&agent_b));
    assert_eq!(p.channels(0), 2);
    assert_eq!(p.channels(1), 2);
}

#[test]
fn a_node_restart_closes_its_own_calls_and_no_others() {
    let (mut p, on_a, on_b) = a_call_on_each_node(Duration::from_secs(60), Duration::from_secs(3));
    p.fault(0, Fault::Restart);
    assert!(p.run_until_true(Duration::from_secs(5), |p| p.call_record(on_a).is_some()));
    let rec = p.call_record(on_a).unwrap();
    assert_eq!(rec.outcome, CallOutcome::Lost);
    assert!(rec.synthetic);
    // Node B's call goes on, untouched, and ends normally when its caller hangs up.
    assert!(p.call_record(on_b).is_none(), "node B's call was closed");
    assert_eq!(p.channels(1), 2);
    assert!(
        p.sent_like("api uuid_kill")
            .iter()
            .all(|(node, _, _)| *node == 0),
        "nothing was killed on node B"
    );
    assert!(p.run_until_true(Duration::from_secs(5), |p| p.call_record(on_b).is_some()));
    let rec = p.call_record(on_b).unwrap();
    assert_eq!(rec.outcome, CallOutcome::Answered);
    assert!(!rec.synthetic);
}

#[test]
fn legs_a_restarted_switchyard_forgot_are_swept_unless_in_a_conversation() {
    let mut p = world(8, 2);
    // A call in progress, bridged, and an agent leg left parked on its own (its call gone
    // with the old process before the bridge).
    let talking = p.call(0, caller(Duration::from_secs(600)));
    assert!(p.run_until_true(Duration::from_secs(5), |p| {
        bridged_to(p, 0, talking).is_some()
    }));
    let talking_agent = bridged_to(&p, 0, talking).unwrap();
    let lonely = LegId::parse("5ca1ab1e-0000-4000-8000-00000000beef").unwrap();
    p.core.inject(
        p.now,
        switchyard_engine::SwitchCommand::Originate {
            kind: switchyard_engine::LegKind::Agent,
            leg: lonely,
            dial: "user/1001".into(),
            caller_id_number: String::new(),
            caller_id_name: String::new(),
            timeout: Duration::from_secs(20),
            vars: Vec::new(),
            join: None,
        },
    );
    assert!(p.run_until_true(Duration::from_secs(5), |p| {
        p.nodes[0]
            .wire
            .switch()
            .channel_var(&lonely.to_string(), "switchyard_leg")
            .is_some()
    }));
    p.run_for(Duration::from_secs(1));

    p.restart_driver(|c| {
        c.routes.insert("5000".into(), QUEUE);
    });
    // The first sweep asks, the second kills: 60 s at the default interval.
    p.run_for(Duration::from_secs(65));
    assert!(
        !p.has_channel(0, lonely),
        "the forgotten parked leg is gone"
    );
    assert!(p.has_channel(0, talking), "the conversation goes on");
    assert!(p.nodes[0].wire.switch().has_channel(&talking_agent));
    assert_eq!(p.core.stats().orphans_killed, 1);
    // Callers' own legs are never asked about twice, nor killed.
    let asked = p.sent_like("api uuid_getvar");
    let mut unique: Vec<&String> = asked.iter().map(|(_, _, l)| l).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        asked.len(),
        "one question per channel: {asked:?}"
    );
}

#[test]
fn the_same_seed_gives_the_same_requests_in_the_same_order() {
    let run = || {
        let mut p = world(13, 5);
        for i in 0..30 {
            let mut c = caller(Duration::from_millis(700));
            c.caller_number = format!("+1666{i:07}");
            p.call(0, c);
            p.run_for(Duration::from_millis(90));
        }
        p.run_for(Duration::from_secs(20));
        p.sent
            .iter()
            .map(|(n, t, l)| (*n, *t - p.t0, l.clone()))
            .collect::<Vec<_>>()
    };
    let (a, b) = (run(), run());
    assert!(a.len() > 100, "{} requests", a.len());
    assert_eq!(a, b);
}

#[test]
fn callers_waiting_through_a_switchyard_restart_are_answered_in_order_of_first_arrival() {
    const CALLERS: usize = 200;
    let mut p = Pair::new(vec![switch(17, Dist::Fixed(0.1))], |c| {
        c.routes.insert("5000".into(), QUEUE);
    });
    p.queue(race_queue(QUEUE));
    p.agent(1, 1000, QUEUE, false);
    let mut callers = Vec::with_capacity(CALLERS);
    for i in 0..CALLERS {
        let mut c = caller(Duration::from_millis(500));
        c.caller_number = format!("+1777{i:07}");
        let at = p.unix_ms(p.now);
        callers.push((p.call(0, c), at));
        p.run_for(Duration::from_millis(50));
    }
    p.run_for(Duration::from_secs(1));
    assert_eq!(p.channels(0), CALLERS, "every caller waits");

    // switchyard dies and stays down 5 s: the callers hear the hold tone and try again.
    p.kill_driver();
    p.run_for(Duration::from_secs(5));
    assert_eq!(p.channels(0), CALLERS, "nobody was hung up");
    p.start_driver(|c| {
        c.routes.insert("5000".into(), QUEUE);
    });
    p.queue(race_queue(QUEUE));
    p.agent(1, 1000, QUEUE, false);
    // Every caller is back in line within a hold loop's pass.
    p.run_for(Duration::from_secs(4));
    let waiting = p.core.engine().waiting_calls(QUEUE).len();
    assert_eq!(waiting, CALLERS, "every caller rejoined the line");
    let bridges_before = p.bridges_asked().len();
    p.command(switchyard_engine::Command::SetAgentPresence {
        agent: AgentId(1),
        presence: switchyard_engine::Presence::Available,
    });
    assert!(
        p.run_until_true(Duration::from_secs(1_000), |p| call_records(p).len()
            >= CALLERS),
        "{} of {CALLERS} answered",
        call_records(&p).len()
    );
    for r in call_records(&p) {
        assert_eq!(r.outcome, CallOutcome::Answered, "{r:?}");
    }
    // One agent takes them one by one: the order of the bridges is the order of the line.
    let bridged: Vec<String> = p.bridges_asked()[bridges_before..]
        .iter()
        .map(|(caller, _)| caller.clone())
        .collect();
    let first_arrival: Vec<String> = callers.iter().map(|(l, _)| l.to_string()).collect();
    assert_eq!(bridged, first_arrival, "answered in order of first arrival");
    // And each record says when the caller first arrived, not when it came back.
    for (leg, at) in &callers {
        let rec = p.call_record(*leg).expect("a record");
        assert!(
            rec.arrived_unix_ms.abs_diff(*at) <= 1,
            "{leg}: arrived {} want {at}",
            rec.arrived_unix_ms
        );
    }
}

/// What the store would hold open after the first driver: call rows and dial attempts
/// written before acting whose final record never came.
fn open_rows(p: &Pair) -> OpenRecords {
    let mut open = OpenRecords::default();
    for r in &p.records {
        match r {
            Record::CallOpened(o) => {
                open.calls.retain(|c| c.leg != o.leg);
                open.calls.push(o.clone());
            }
            Record::Call(c) => open.calls.retain(|o| o.leg != c.leg),
            _ => {}
        }
    }
    open
}

/// The configuration the runtime would load from the store: the race queue and `agents`
/// available agents on extensions 1000...
fn stored_config(agents: u32) -> Vec<Command> {
    let mut cmds = vec![Command::UpsertQueue(Box::new(race_queue(QUEUE)))];
    for id in 1..=agents {
        cmds.push(Command::UpsertAgent(Box::new(
            switchyard_engine::AgentConfig {
                id: AgentId(id),
                name: format!("agent{id}"),
                contact: format!("user/{}", 999 + id),
                ..switchyard_engine::AgentConfig::default()
            },
        )));
        cmds.push(Command::SetMemberships {
            agent: AgentId(id),
            memberships: vec![switchyard_engine::Membership {
                queue: QUEUE,
                level: 1,
                position: id,
                weight: 1,
            }],
        });
        cmds.push(Command::SetAgentPresence {
            agent: AgentId(id),
            presence: switchyard_engine::Presence::Available,
        });
    }
    cmds
}

#[test]
fn a_restarted_switchyard_takes_over_a_conversation_and_closes_calls_that_ended_while_it_was_down()
{
    // One agent now; a second one is available in the configuration the restart loads.
    let mut p = world(9, 1);
    let talking = p.call(0, caller(Duration::from_secs(30)));
    assert!(p.run_until_true(Duration::from_secs(5), |p| {
        bridged_to(p, 0, talking).is_some()
    }));
    let agent_leg = bridged_to(&p, 0, talking).unwrap();
    let (busy, idle) = (1, 2);
    assert_eq!(agent_state(&p, busy), Some(AgentStateKind::OnCall));
    // A caller nobody takes, who hangs up while switchyard is down: its row stays open.
    let mut short = caller(Duration::from_secs(600));
    short.patience = Some(Duration::from_secs(2));
    let gone = p.call(0, short);
    p.run_for(Duration::from_millis(300));
    let open = open_rows(&p);
    assert!(open.calls.iter().any(|c| c.leg == talking));
    assert!(open.calls.iter().any(|c| c.leg == gone));

    p.kill_driver();
    // The caller without an agent gives up meanwhile; the conversation goes on.
    p.run_for(Duration::from_secs(3));
    assert!(!p.has_channel(0, gone));
    let before_restart = p.records.len();
    p.start_driver_loaded(
        |c| {
            c.routes.insert("5000".into(), QUEUE);
            c.open_records = open;
        },
        stored_config(2),
    );
    p.run_for(Duration::from_millis(500));
    assert_eq!(
        agent_state(&p, busy),
        Some(AgentStateKind::OnCall),
        "the agent talking through the restart is on its call"
    );
    assert_eq!(agent_state(&p, idle), Some(AgentStateKind::Available));
    // The caller who left while nobody watched has its record: lost, synthetic.
    let lost = p.records[before_restart..]
        .iter()
        .find_map(|r| match r {
            Record::Call(c) if c.leg == gone => Some(c.clone()),
            _ => None,
        })
        .expect("a record for the call that ended while switchyard was down");
    assert_eq!(lost.outcome, CallOutcome::Lost);
    assert!(lost.synthetic);

    // A new caller goes to the idle agent, not the busy one.
    let next = p.call(0, caller(Duration::from_secs(2)));
    assert!(p.run_until_true(Duration::from_secs(5), |p| {
        bridged_to(p, 0, next).is_some()
    }));
    assert_ne!(bridged_to(&p, 0, next), Some(agent_leg.clone()));

    // The conversation ends: one record, answered by its agent, not synthetic.
    assert!(p.run_until_true(Duration::from_secs(40), |p| !p.has_channel(0, talking)));
    p.run_for(Duration::from_secs(1));
    let finals: Vec<_> = p.records[before_restart..]
        .iter()
        .filter_map(|r| match r {
            Record::Call(c) if c.leg == talking => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(finals.len(), 1, "{finals:?}");
    assert_eq!(finals[0].outcome, CallOutcome::Answered);
    assert_eq!(finals[0].agent, Some(AgentId(busy)));
    assert!(!finals[0].synthetic);
    assert!(!p.has_channel(0, LegId::parse(&agent_leg).unwrap()));
    assert_ne!(agent_state(&p, busy), Some(AgentStateKind::OnCall));
}

#[test]
fn a_restarted_switchyard_takes_back_a_persistent_line_instead_of_calling_the_phone_again() {
    let mut p = Pair::new(vec![switch(10, Dist::Fixed(0.2))], |c| {
        c.routes.insert("5000".into(), QUEUE);
    });
    p.queue(race_queue(QUEUE));
    let mut config = stored_config(1);
    for cmd in &mut config {
        if let Command::UpsertAgent(a) = cmd {
            a.persistent_line = true;
        }
    }
    for cmd in config.clone() {
        p.command(cmd);
    }
    assert!(p.run_until_true(Duration::from_secs(5), |p| {
        p.core
            .engine()
            .agent_info(AgentId(1))
            .and_then(|a| a.line)
            .is_some_and(|l| l.up)
    }));
    let line = p
        .core
        .engine()
        .agent_info(AgentId(1))
        .and_then(|a| a.line)
        .unwrap()
        .leg;
    let originates_before = p.sent_like("bgapi originate").len();

    p.restart_driver_loaded(
        |c| {
            c.routes.insert("5000".into(), QUEUE);
        },
        config,
    );
    p.run_for(Duration::from_secs(2));
    let now = p.core.engine().agent_info(AgentId(1)).and_then(|a| a.line);
    assert_eq!(
        now.map(|l| (l.leg, l.up)),
        Some((line, true)),
        "the agent's line is its old one, up"
    );
    assert_eq!(
        p.sent_like("bgapi originate").len(),
        originates_before,
        "the phone is not called again"
    );
    assert!(p.has_channel(0, line));
    // And a caller is bridged to it at once.
    let c = p.call(0, caller(Duration::from_secs(2)));
    assert!(p.run_until_true(Duration::from_secs(3), |p| {
        bridged_to(p, 0, c).as_deref() == Some(line.to_string().as_str())
    }));
}
