//! Inbound flows against the fake switch over loopback: the driver walks a caller through an
//! IVR menu with `play_and_get_digits` (sendmsg on the inbound connection), reads the result
//! from CHANNEL_EXECUTE_COMPLETE's variables, and routes the caller where the menu says, with
//! the skills and priority it set. The fake's callers press keys by script. After hours, and
//! when a queue's wait runs out, callers leave a message: the driver greets them and runs
//! `record` on their leg, and the fake writes what they say (`voicemail-record-app`).

#[path = "wire_support/mod.rs"]
mod wire_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_dialplan::flow::{Flow, NumberPlan};
use switchyard_dialplan::schedule::Schedule;
use switchyard_engine::config::{Announcements, EngineConfig};
use switchyard_engine::driver::{Driver, DriverConfig, DriverHandle, InboundPlan};
use switchyard_engine::{
    AgentConfig, AgentId, CallOutcome, Command, Engine, Exit, LegId, Mailbox, Membership, Presence,
    QueueConfig, QueueId, Record, SkillId, Strategy, VoicemailRecord,
};
use switchyard_esl::client::{Auth, Client, ClientConfig, ClientEvent, EventStream};
use switchyard_esl::sim::{
    AfterMessage, AgentBehaviour, AgentModel, CustomerModel, Dist, DtmfPress, DtmfScript,
    InboundCall, Scenario, SimConfig, SimHandle,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wire_support::Log;

const SALES: QueueId = QueueId(1);
const SUPPORT: QueueId = QueueId(2);
/// No agents; callers wait 1.5 s, then leave a message in its box (its own exit).
const BILLING: QueueId = QueueId(3);
/// The agent whose box the `held` flow sends callers to when billing's wait runs out.
const BOX_AGENT: AgentId = AgentId(9);
/// Runs the `after_hours` flow: its schedule has no opening hours.
const AFTER_HOURS: &str = "+15550199";
/// Runs the `held` flow: billing, then the agent's box when the wait runs out.
const HELD: &str = "+15550177";
/// Runs the `direct` flow: straight to agent 5 (a direct extension).
const DIRECT: &str = "+15550155";
const SPANISH: SkillId = SkillId(7);
const NUMBER: &str = "+15550100";
/// A number the support queue has as its own (the queue's `numbers`), not in the plan.
const SUPPORT_LINE: &str = "5000";

/// Press 1 for support, 2 for sales (in Spanish, priority 5); three invalid entries or three
/// silences end in a message and a hangup, each its own.
const FLOW: &str = r#"{
  "id": "main",
  "steps": [
    {"kind": "menu", "id": "greet", "menu": "main"},
    {"kind": "set", "id": "sales_vars", "next": "sales", "vars": [
      {"kind": "skill", "skill": "spanish", "level": {"literal": "3"}},
      {"kind": "priority", "value": {"literal": "5"}}
    ]},
    {"kind": "queue", "id": "sales", "queue": "sales"},
    {"kind": "queue", "id": "support", "queue": "support"},
    {"kind": "play_hangup", "id": "too_many_invalid", "prompt": "ivr/invalid-goodbye.wav"},
    {"kind": "play_hangup", "id": "too_many_timeouts", "prompt": "ivr/timeout-goodbye.wav"}
  ],
  "menus": [{
    "id": "main",
    "greet_long": "ivr/main.wav",
    "timeout_ms": 1500,
    "inter_digit_timeout_ms": 1000,
    "max_failures": 3,
    "max_timeouts": 3,
    "entries": [
      {"keys": {"exact": "1"}, "action": {"kind": "step", "step": "support"}},
      {"keys": {"exact": "2"}, "action": {"kind": "step", "step": "sales_vars"}}
    ],
    "on_max_failures": {"kind": "step", "step": "too_many_invalid"},
    "on_max_timeouts": {"kind": "step", "step": "too_many_timeouts"}
  }],
  "fallback": {"queue": "support"}
}"#;

/// Closed at all hours, then a message in sales' box.
const AFTER_HOURS_FLOW: &str = r#"{
  "id": "after_hours",
  "steps": [
    {"kind": "schedule", "id": "hours", "schedule": "office", "open": "sales", "closed": "vm"},
    {"kind": "queue", "id": "sales", "queue": "sales"},
    {"kind": "voicemail", "id": "vm", "mailbox": {"queue": "sales"}}
  ],
  "fallback": {"queue": "sales"}
}"#;

/// Billing; when its wait runs out the flow, not the queue, says where: an agent's box.
const HELD_FLOW: &str = r#"{
  "id": "held",
  "steps": [
    {"kind": "queue", "id": "billing", "queue": "billing", "on_max_wait": "agent_box"},
    {"kind": "voicemail", "id": "agent_box", "mailbox": {"agent": "nine"}}
  ],
  "fallback": {"queue": "billing"}
}"#;

/// A direct line to one agent.
const DIRECT_FLOW: &str = r#"{
  "id": "direct",
  "steps": [{"kind": "agent", "id": "ana", "agent": "five"}],
  "fallback": {"queue": "sales"}
}"#;

struct World {
    sim: SimHandle,
    /// Where the fake writes `record`'s files and the driver reads them.
    dir: std::path::PathBuf,
    api: DriverHandle,
    records: Log<Record>,
    /// CHANNEL_EXECUTE_COMPLETE seen on an observer's inbound connection: (leg, app, data).
    executed: Log<(String, String, String)>,
    observer: Client,
    _driver: Driver,
}

impl World {
    async fn start(name: &str) -> World {
        let dir =
            std::env::temp_dir().join(format!("switchyard-ivr-wire-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let outbound = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let esl = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = switchyard_esl::sim::spawn(
            esl,
            SimConfig {
                inbound_target: Some(outbound.local_addr().unwrap().to_string()),
                scenario: Scenario {
                    seed: 3,
                    agents: AgentModel {
                        extensions: vec!["1000-1099".into()],
                        behaviour: AgentBehaviour {
                            answer_delay: Dist::Fixed(0.2),
                            ..AgentBehaviour::default()
                        },
                        overrides: Vec::new(),
                    },
                    customers: CustomerModel::default(),
                    inbound: None,
                },
                ..SimConfig::default()
            },
            11,
        );
        let mut cfg = DriverConfig::new(sim.local_addr().to_string(), "ClueCon")
            .route("sales", SALES)
            .route("support", SUPPORT)
            .route("billing", BILLING)
            .route(SUPPORT_LINE, SUPPORT);
        cfg.recording.switch_path = format!("{}/{{file}}", dir.display());
        cfg.recording.switch_files = dir.clone();
        cfg.recording.switch_file_wait = Duration::from_secs(5);
        let engine = Engine::new(
            EngineConfig::default(),
            7,
            tokio::time::Instant::now().into_std(),
        );
        let (rec_tx, mut rec_rx) = mpsc::channel(100_000);
        let driver = Driver::start(cfg, engine, outbound, rec_tx).await.unwrap();
        let api = driver.handle().clone();
        let records = Log::new();
        let r = records.clone();
        tokio::spawn(async move {
            while let Some(rec) = rec_rx.recv().await {
                r.push(rec);
            }
        });
        let (observer, events) = Client::connect(
            ClientConfig::new(
                sim.local_addr().to_string(),
                Auth::Password("ClueCon".into()),
            )
            .events("CHANNEL_EXECUTE_COMPLETE"),
        )
        .await
        .unwrap();
        let executed = Log::new();
        tokio::spawn(collect_executions(events, executed.clone()));
        for (id, name) in [(SALES, "sales"), (SUPPORT, "support"), (BILLING, "billing")] {
            let (max_wait, on_timeout) = if id == BILLING {
                (
                    Some(Duration::from_millis(1500)),
                    Exit::Mailbox(Mailbox::Queue(BILLING)),
                )
            } else {
                (None, Exit::Hangup)
            };
            api.command(Command::UpsertQueue(Box::new(QueueConfig {
                id,
                name: name.into(),
                strategy: Strategy::LongestIdleAgent,
                announcements: Announcements {
                    first_after: None,
                    every: None,
                    ..Announcements::default()
                },
                max_wait,
                on_timeout,
                ..QueueConfig::default()
            })))
            .await
            .unwrap();
        }
        api.command(Command::UpsertAgent(Box::new(AgentConfig {
            id: BOX_AGENT,
            name: "nine".into(),
            contact: "user/1099".into(),
            ..AgentConfig::default()
        })))
        .await
        .unwrap();
        let flows: HashMap<String, Arc<Flow>> = [FLOW, AFTER_HOURS_FLOW, HELD_FLOW, DIRECT_FLOW]
            .into_iter()
            .map(|json| {
                let flow: Flow = serde_json::from_str(json).unwrap();
                (flow.id.clone(), Arc::new(flow))
            })
            .collect();
        let route = |number: &str, flow: &str| switchyard_dialplan::flow::NumberRoute {
            number: number.into(),
            flow: flow.into(),
        };
        let plan = NumberPlan {
            numbers: vec![
                route(NUMBER, "main"),
                route(AFTER_HOURS, "after_hours"),
                route(HELD, "held"),
                route(DIRECT, "direct"),
            ],
            default_flow: "main".into(),
        };
        // No opening hours at all: closed whenever the test runs.
        let office: Schedule = serde_json::from_str(r#"{"time_zone": "Europe/Paris"}"#).unwrap();
        api.set_inbound(Some(Arc::new(InboundPlan {
            numbers: plan.index(),
            flows,
            schedules: HashMap::from([("office".to_owned(), office.compile().unwrap())]),
            queues: HashMap::new(),
            skills: HashMap::from([("spanish".to_owned(), SPANISH)]),
            agents: HashMap::from([
                ("nine".to_owned(), BOX_AGENT),
                ("five".to_owned(), AgentId(5)),
            ]),
        })))
        .await
        .unwrap();
        World {
            sim,
            dir,
            api,
            records,
            executed,
            observer,
            _driver: driver,
        }
    }

    async fn agent(&self, id: u32, queue: QueueId, skills: Vec<(SkillId, u8)>) {
        self.api
            .command(Command::UpsertAgent(Box::new(AgentConfig {
                id: AgentId(id),
                name: format!("agent {id}"),
                contact: format!("user/{}", 1000 + id),
                skills,
                ..AgentConfig::default()
            })))
            .await
            .unwrap();
        self.api
            .command(Command::SetMemberships {
                agent: AgentId(id),
                memberships: vec![Membership::new(queue)],
            })
            .await
            .unwrap();
        self.api
            .command(Command::SetAgentPresence {
                agent: AgentId(id),
                presence: Presence::Available,
            })
            .await
            .unwrap();
    }

    async fn call(&self, presses: &[(u64, &str)]) -> String {
        self.call_to(NUMBER, presses).await
    }

    async fn call_to(&self, number: &str, presses: &[(u64, &str)]) -> String {
        let call = InboundCall {
            destination: number.into(),
            caller_number: "+15557770001".into(),
            talk_time: Some(Duration::from_secs(2)),
            ..InboundCall::default()
        };
        let presses = presses
            .iter()
            .map(|(ms, d)| DtmfPress::new(Duration::from_millis(*ms), d).unwrap())
            .collect();
        self.sim
            .place_scripted_call(call, DtmfScript::new(presses).unwrap())
            .await
            .expect("the fake switch places the call")
    }

    async fn call_record_of(&self, caller: &str) -> switchyard_engine::CallRecord {
        let leg = LegId::parse(caller).unwrap();
        match self
            .records
            .wait_for(
                "the call's record",
                |r| matches!(r, Record::Call(c) if c.leg == leg),
            )
            .await
        {
            Record::Call(c) => c,
            _ => unreachable!(),
        }
    }

    /// Once the caller's channel is gone: what was played on it.
    async fn ended_hearing(&self, caller: &str) -> Vec<String> {
        self.ended_hearing_after(caller, "hangup").await
    }

    /// Once the caller's channel is gone and `last` has completed on it: what was played.
    async fn ended_hearing_after(&self, caller: &str, last: &str) -> Vec<String> {
        let mut gone = false;
        for _ in 0..1500 {
            let body = self
                .observer
                .api(&format!("uuid_exists {caller}"))
                .await
                .unwrap();
            if String::from_utf8_lossy(&body).trim() == "false" {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone, "the caller's channel ends");
        // The observer's events are read on their own task: wait for the last one.
        self.executed
            .wait_for("the last application's completion", |(l, app, _)| {
                l == caller && app == last
            })
            .await;
        self.executed
            .snapshot()
            .into_iter()
            .filter(|(l, app, _)| l == caller && app == "playback")
            .map(|(_, _, data)| data)
            .collect()
    }

    /// A caller who says something for `message` when recorded, then hangs up.
    async fn call_leaving_message(&self, number: &str, message: Duration) -> String {
        let call = InboundCall {
            destination: number.into(),
            caller_number: "+15557770002".into(),
            ..InboundCall::default()
        };
        let script = DtmfScript::new(Vec::new())
            .unwrap()
            .with_message(message, AfterMessage::HangUp)
            .unwrap();
        self.sim
            .place_scripted_call(call, script)
            .await
            .expect("the fake switch places the call")
    }

    async fn message_of(&self, caller: &str) -> VoicemailRecord {
        let leg = LegId::parse(caller).unwrap();
        match self
            .records
            .wait_for(
                "the message's record",
                |r| matches!(r, Record::Voicemail(v) if v.leg == leg),
            )
            .await
        {
            Record::Voicemail(v) => *v,
            _ => unreachable!(),
        }
    }

    fn collections(&self, caller: &str) -> usize {
        self.executed
            .snapshot()
            .iter()
            .filter(|(l, app, _)| l == caller && app == "play_and_get_digits")
            .count()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn collect_executions(mut events: EventStream, log: Log<(String, String, String)>) {
    while let Some(e) = events.recv().await {
        let ClientEvent::Event(e) = e else { continue };
        let text = |h: &str| e.header(h).map(|v| v.into_owned()).unwrap_or_default();
        log.push((
            text("Unique-ID"),
            text("Application"),
            text("Application-Data"),
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_pressing_2_lands_in_sales_with_the_skill_and_priority_the_menu_set() {
    let w = World::start("a_caller_pressing_2_land").await;
    // Agent 3 has waited longest but lacks Spanish: only the menu's skill keeps the call from
    // them. Agent 4 serves support only.
    w.agent(3, SALES, vec![]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    w.agent(4, SUPPORT, vec![]).await;
    w.agent(5, SALES, vec![(SPANISH, 5)]).await;
    let caller = w.call(&[(800, "2")]).await;
    let record = w.call_record_of(&caller).await;
    assert_eq!(record.queues, vec![SALES]);
    assert_eq!(record.agent, Some(AgentId(5)), "the Spanish-speaking agent");
    assert_eq!(w.collections(&caller), 1, "one press, one collection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_pressing_1_lands_in_support() {
    let w = World::start("a_caller_pressing_1_land").await;
    w.agent(4, SUPPORT, vec![]).await;
    let caller = w.call(&[(800, "1")]).await;
    let record = w.call_record_of(&caller).await;
    assert_eq!(record.queues, vec![SUPPORT]);
    assert_eq!(record.agent, Some(AgentId(4)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_invalid_entries_lead_to_the_max_invalid_action() {
    let w = World::start("three_invalid_entries_le").await;
    w.agent(4, SUPPORT, vec![]).await;
    // 9 is no entry of the menu: FreeSWITCH's regex refuses it (digits_invalid).
    let caller = w.call(&[(800, "9"), (1500, "9"), (1500, "9")]).await;
    let heard = w.ended_hearing(&caller).await;
    assert_eq!(
        heard.last().map(String::as_str),
        Some("ivr/invalid-goodbye.wav")
    );
    assert!(!heard.iter().any(|p| p.contains("timeout-goodbye")));
    assert_eq!(w.collections(&caller), 3);
    let leg = LegId::parse(&caller).unwrap();
    assert!(
        !w.records
            .snapshot()
            .iter()
            .any(|r| matches!(r, Record::Call(c) if c.leg == leg)),
        "the caller never reached a queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_leads_to_the_max_timeout_action() {
    let w = World::start("silence_leads_to_the_max").await;
    w.agent(4, SUPPORT, vec![]).await;
    let caller = w.call(&[]).await;
    let heard = w.ended_hearing(&caller).await;
    assert_eq!(
        heard.last().map(String::as_str),
        Some("ivr/timeout-goodbye.wav")
    );
    assert_eq!(w.collections(&caller), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queues_own_number_goes_to_the_queue_not_to_the_default_flow() {
    let w = World::start("a_queues_own_number_goes").await;
    w.agent(4, SUPPORT, vec![]).await;
    let caller = w.call_to(SUPPORT_LINE, &[]).await;
    let record = w.call_record_of(&caller).await;
    assert_eq!(record.queues, vec![SUPPORT]);
    assert_eq!(w.collections(&caller), 0, "no menu on the queue's own line");
}

/// The file the driver filed, as the fake wrote it: its length is what the caller said.
fn assert_message_of_length(m: &VoicemailRecord, said: Duration) {
    assert_eq!(
        m.status,
        switchyard_engine::recording::RecordingStatus::Completed,
        "{m:?}"
    );
    let f = m.figures.as_ref().expect("the file was checked");
    let ms = u128::from(f.duration_ms);
    assert!(
        ms.abs_diff(said.as_millis()) <= 100,
        "the message is what was said ({} ms), not the silence after: {ms} ms",
        said.as_millis()
    );
    assert!(std::path::Path::new(&m.path).exists(), "{}", m.path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_hours_the_caller_is_greeted_and_leaves_a_message_in_the_queues_box() {
    let w = World::start("after_hours").await;
    let caller = w
        .call_leaving_message(AFTER_HOURS, Duration::from_secs(3))
        .await;
    let message = w.message_of(&caller).await;
    assert_eq!(message.mailbox, Mailbox::Queue(SALES));
    assert_eq!(message.caller_number, "+15557770002");
    assert_message_of_length(&message, Duration::from_secs(3));
    let heard = w.ended_hearing_after(&caller, "record").await;
    let greeting = switchyard_engine::driver::VoicemailSetup::default().greeting;
    assert!(heard.contains(&greeting), "{heard:?}");
    let leg = LegId::parse(&caller).unwrap();
    assert!(
        !w.records
            .snapshot()
            .iter()
            .any(|r| matches!(r, Record::Call(c) if c.leg == leg)),
        "the caller never reached a queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queues_max_wait_exit_leads_to_its_voicemail_box() {
    let w = World::start("max_wait").await;
    let caller = w
        .call_leaving_message("billing", Duration::from_secs(2))
        .await;
    let record = w.call_record_of(&caller).await;
    assert_eq!(record.outcome, CallOutcome::Voicemail);
    assert_eq!(record.queues, vec![BILLING]);
    let message = w.message_of(&caller).await;
    assert_eq!(message.mailbox, Mailbox::Queue(BILLING));
    assert_message_of_length(&message, Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flows_max_wait_step_takes_over_from_the_queue_and_fills_an_agents_box() {
    let w = World::start("flow_max_wait").await;
    let caller = w.call_leaving_message(HELD, Duration::from_secs(2)).await;
    let record = w.call_record_of(&caller).await;
    assert_eq!(record.outcome, CallOutcome::FlowExit);
    assert_eq!(record.queues, vec![BILLING]);
    let message = w.message_of(&caller).await;
    assert_eq!(
        message.mailbox,
        Mailbox::Agent(BOX_AGENT),
        "the flow's box, not billing's"
    );
    assert_message_of_length(&message, Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_hangs_up_during_the_greeting_leaves_no_message() {
    let w = World::start("greeting_hangup").await;
    let call = InboundCall {
        destination: AFTER_HOURS.into(),
        caller_number: "+15557770003".into(),
        // Gone before the greeting and the tone are over.
        patience: Some(Duration::from_millis(300)),
        ..InboundCall::default()
    };
    let caller = w
        .sim
        .place_scripted_call(call, DtmfScript::new(Vec::new()).unwrap())
        .await
        .unwrap();
    let message = w.message_of(&caller).await;
    assert_eq!(
        message.status,
        switchyard_engine::recording::RecordingStatus::Failed
    );
    assert!(message.path.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flows_agent_step_rings_that_agent_though_another_has_waited_longer() {
    let w = World::start("agent_step").await;
    w.agent(3, SALES, vec![]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    w.agent(5, SALES, vec![]).await;
    let caller = w.call_to(DIRECT, &[]).await;
    let record = w.call_record_of(&caller).await;
    assert_eq!(record.queues, vec![SALES], "the agent's queue");
    assert_eq!(
        record.agent,
        Some(AgentId(5)),
        "the flow's agent, not the longest idle"
    );
    let leg = LegId::parse(&caller).unwrap();
    let journey = match w
        .records
        .wait_for(
            "the journey",
            |r| matches!(r, Record::Journey(j) if j.leg == leg),
        )
        .await
    {
        Record::Journey(j) => j,
        _ => unreachable!(),
    };
    assert_eq!(journey.routed.as_deref(), Some("agent:five"));
}
