//! The engine's driver against the fake switch over loopback: real Event Socket traffic, real
//! outbound sockets for callers, the fake's behaviour model for phones. Each test is one
//! contact-center scenario, checked on three sides: the records the driver hands to the store,
//! the live events, and what the switch itself did (seen by a separate observer connection).
//!
//! Timings are short real time (the fake switch and the driver both run on tokio's clock,
//! but loopback I/O does not mix with a paused clock): agents answer after 0.2 s, offers time
//! out after 1-2 s.

#[path = "wire_support/mod.rs"]
mod wire_support;

use std::time::Duration;

use switchyard_engine::agent::AgentStateKind;
use switchyard_engine::config::{Announcements, EngineConfig};
use switchyard_engine::driver::{Driver, DriverConfig, DriverHandle};
use switchyard_engine::{
    AgentConfig, AgentId, CallOutcome, CallRecord, Command, Engine, Exit, LegId, LiveEvent,
    Membership, MonitorMode, Presence, QueueConfig, QueueId, Record, Strategy,
};
use switchyard_esl::client::{Auth, BackoffConfig, Client, ClientConfig, ClientEvent};
use switchyard_esl::sim::{
    AfterSocket, AgentBehaviour, AgentModel, AgentOverride, CustomerModel, Dist, Fault,
    InboundCall, Scenario, SimConfig, SimHandle, SoundFiles, SwitchModel,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wire_support::{LIMIT, Log, eventually};

const QUEUE: QueueId = QueueId(1);
const NUMBER: &str = "5000";

// ---- the world ------------------------------------------------------------------------------

/// A switch event as the observer saw it.
#[derive(Clone, Debug)]
struct SwEvent {
    name: String,
    uuid: String,
    channel: String,
    bridge_a: String,
    bridge_b: String,
    cause: String,
    /// PLAYBACK_*: the file and how it ended (`done` / `break`).
    path: String,
    status: String,
    /// Event-Date-Timestamp (microseconds, the switch's clock).
    at_us: u64,
}

struct World {
    sim: SimHandle,
    driver: Driver,
    api: DriverHandle,
    observer: Client,
    records: Log<Record>,
    live: Log<LiveEvent>,
    switch: Log<SwEvent>,
}

fn agent_model() -> AgentModel {
    AgentModel {
        extensions: vec!["1000-1099".into()],
        behaviour: AgentBehaviour {
            answer_delay: Dist::Fixed(0.2),
            ..AgentBehaviour::default()
        },
        // 1005: never picks up.
        overrides: vec![AgentOverride {
            extensions: vec!["1005".into()],
            behaviour: AgentBehaviour {
                answer: 0.0,
                no_answer: 1.0,
                answer_delay: Dist::Fixed(0.2),
                ..AgentBehaviour::default()
            },
        }],
    }
}

fn scenario() -> Scenario {
    Scenario {
        seed: 5,
        agents: agent_model(),
        customers: CustomerModel {
            answer_delay: Dist::Fixed(0.2),
            talk_time: Some(Dist::Fixed(0.5)),
            ..CustomerModel::default()
        },
        inbound: None,
    }
}

fn queue(strategy: Strategy) -> QueueConfig {
    QueueConfig {
        id: QUEUE,
        name: "support".into(),
        strategy,
        offer_timeout: Duration::from_secs(2),
        wrapup: Duration::from_millis(500),
        // No announcements in these short scenarios: music only.
        announcements: Announcements {
            first_after: None,
            every: None,
            ..Announcements::default()
        },
        ..QueueConfig::default()
    }
}

impl World {
    async fn start(queue: QueueConfig) -> World {
        World::start_with(queue, SimConfig::default()).await
    }

    /// With the switch configured as `sim` (its scenario and outbound target are the world's).
    async fn start_with(queue: QueueConfig, sim: SimConfig) -> World {
        // The driver's outbound listener first: the switch needs its address.
        let outbound = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let esl = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim = switchyard_esl::sim::spawn(
            esl,
            SimConfig {
                inbound_target: Some(outbound.local_addr().unwrap().to_string()),
                scenario: scenario(),
                ..sim
            },
            42,
        );
        let mut cfg = DriverConfig::new(sim.local_addr().to_string(), "ClueCon");
        cfg.esl.backoff = BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            seed: Some(3),
        };
        cfg.orphan_grace = Duration::from_millis(500);
        cfg = cfg.route(NUMBER, QUEUE);
        let engine = Engine::new(
            EngineConfig {
                callback_dial: "sofia/gateway/cust/{number}".into(),
                ..EngineConfig::default()
            },
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
        let live = Log::new();
        let l = live.clone();
        let mut live_rx = api.subscribe();
        tokio::spawn(async move {
            loop {
                match live_rx.recv().await {
                    Ok(ev) => l.push(ev),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        panic!("the test's live feed lagged by {n}")
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        let (observer, mut events) = Client::connect(
            ClientConfig::new(
                sim.local_addr().to_string(),
                Auth::Password("ClueCon".into()),
            )
            .events("CHANNEL_CREATE CHANNEL_BRIDGE CHANNEL_HANGUP_COMPLETE PLAYBACK_START PLAYBACK_STOP"),
        )
        .await
        .unwrap();
        let switch = Log::new();
        let s = switch.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if let ClientEvent::Event(e) = ev {
                    let h = |n: &str| e.header(n).map(|v| v.into_owned()).unwrap_or_default();
                    s.push(SwEvent {
                        name: h("Event-Name"),
                        uuid: h("Unique-ID"),
                        channel: h("Channel-Name"),
                        bridge_a: h("Bridge-A-Unique-ID"),
                        bridge_b: h("Bridge-B-Unique-ID"),
                        cause: h("Hangup-Cause"),
                        path: h("Playback-File-Path"),
                        status: h("Playback-Status"),
                        at_us: h("Event-Date-Timestamp").parse().unwrap_or(0),
                    });
                }
            }
        });
        api.command(Command::UpsertQueue(Box::new(queue)))
            .await
            .unwrap();
        World {
            sim,
            driver,
            api,
            observer,
            records,
            live,
            switch,
        }
    }

    /// An agent reached at `user/<ext>`, member of the queue at `position`.
    async fn agent(&self, id: u32, ext: u32, position: u32, available: bool) {
        let agent = AgentId(id);
        self.api
            .command(Command::UpsertAgent(Box::new(AgentConfig {
                id: agent,
                name: format!("agent {id}"),
                contact: format!("user/{ext}"),
                ..AgentConfig::default()
            })))
            .await
            .unwrap();
        self.api
            .command(Command::SetMemberships {
                agent,
                memberships: vec![Membership {
                    position,
                    ..Membership::new(QUEUE)
                }],
            })
            .await
            .unwrap();
        if available {
            self.available(id).await;
        }
    }

    /// Whether the agent's persistent line is answered.
    async fn line_up(&self, id: u32) -> Option<LegId> {
        self.api
            .query(move |e| e.agent_info(AgentId(id)).and_then(|a| a.line_up()))
            .await
            .unwrap()
    }

    async fn available(&self, id: u32) {
        self.api
            .command(Command::SetAgentPresence {
                agent: AgentId(id),
                presence: Presence::Available,
            })
            .await
            .unwrap();
    }

    async fn call(&self, call: InboundCall) -> String {
        self.sim
            .place_inbound_call(InboundCall {
                destination: NUMBER.into(),
                ..call
            })
            .await
            .expect("the fake switch places the call")
    }

    async fn call_record(&self, what: &str, leg: &str) -> CallRecord {
        let leg = LegId::parse(leg).unwrap();
        match self
            .records
            .wait_for(what, |r| matches!(r, Record::Call(c) if c.leg == leg))
            .await
        {
            Record::Call(c) => c,
            _ => unreachable!(),
        }
    }

    async fn agent_state(&self, id: u32) -> Option<AgentStateKind> {
        self.api
            .query(move |e| e.agent_state(AgentId(id)))
            .await
            .unwrap()
    }

    async fn wait_agent_state(&self, id: u32, want: AgentStateKind) {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let got = self.agent_state(id).await;
            if got == Some(want) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "agent {id} never became {want:?} (last {got:?})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `show channels as json`, as rows.
    async fn channels(&self) -> Vec<serde_json::Value> {
        let body = self.observer.api("show channels as json").await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v.get("rows")
            .and_then(|r| r.as_array())
            .cloned()
            .unwrap_or_default()
    }

    async fn channel(&self, uuid: &str) -> Option<serde_json::Value> {
        self.channels()
            .await
            .into_iter()
            .find(|r| r["uuid"].as_str() == Some(uuid))
    }

    fn offered_to(&self) -> Vec<AgentId> {
        self.live
            .snapshot()
            .iter()
            .filter_map(|e| match e {
                LiveEvent::CallOffered { agent, .. } => Some(*agent),
                _ => None,
            })
            .collect()
    }

    /// The bridge FreeSWITCH made with `leg` on one side; returns the other side.
    async fn bridged_to(&self, leg: &str) -> String {
        let ev = self
            .switch
            .wait_for("CHANNEL_BRIDGE", |e| {
                e.name == "CHANNEL_BRIDGE" && (e.bridge_a == leg || e.bridge_b == leg)
            })
            .await;
        if ev.bridge_a == leg {
            ev.bridge_b
        } else {
            ev.bridge_a
        }
    }

    /// The PLAYBACK_START / PLAYBACK_STOP events of `leg` so far, in order.
    fn playbacks(&self, leg: &str) -> Vec<SwEvent> {
        self.switch
            .snapshot()
            .into_iter()
            .filter(|e| e.uuid == leg && e.name.starts_with("PLAYBACK_"))
            .collect()
    }

    async fn no_channels_within(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let n = self.sim.channel_count().await;
            if n == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} channels left on the switch: {:?}",
                self.channels().await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        let report = self.driver.shutdown().await.unwrap();
        assert_eq!(report.stats.records_dropped, 0);
        assert_eq!(report.stats.commands_dropped, 0);
        let _ = self.observer.shutdown().await;
        self.sim.shutdown().await;
    }
}

// ---- the scenarios ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_is_queued_answered_by_an_agent_and_the_agent_wraps_up() {
    let w = World::start(queue(Strategy::LongestIdleAgent)).await;
    w.agent(1, 1001, 1, true).await;
    let caller = w
        .call(InboundCall {
            caller_number: "+15550001111".into(),
            talk_time: Some(Duration::from_secs(1)),
            ..InboundCall::default()
        })
        .await;

    // FreeSWITCH bridged the caller to the agent's phone.
    let agent_leg = w.bridged_to(&caller).await;
    let agent_chan = w
        .switch
        .wait_for("the agent leg's CHANNEL_CREATE", |e| {
            e.name == "CHANNEL_CREATE" && e.uuid == agent_leg
        })
        .await;
    assert!(
        agent_chan.channel.starts_with("sofia/internal/1001@"),
        "{agent_chan:?}"
    );
    w.live
        .wait_for("CallAnswered", |e| {
            matches!(e, LiveEvent::CallAnswered { agent, queue, .. } if *agent == AgentId(1) && *queue == QUEUE)
        })
        .await;

    // The caller hangs up after a second of talk: an answered call, not synthetic.
    let rec = w.call_record("the call record", &caller).await;
    assert_eq!(rec.outcome, CallOutcome::Answered);
    assert_eq!(rec.agent, Some(AgentId(1)));
    assert_eq!(rec.queues, vec![QUEUE]);
    assert_eq!(rec.caller_number, "+15550001111");
    assert_eq!(rec.offers, 1);
    assert!(!rec.synthetic);
    assert!(rec.talk_s >= 0.8, "talk {}", rec.talk_s);

    // Wrap-up, then available again.
    w.live
        .wait_for("wrap-up", |e| {
            matches!(e, LiveEvent::AgentState { agent, state: AgentStateKind::WrapUp, .. } if *agent == AgentId(1))
        })
        .await;
    w.wait_agent_state(1, AgentStateKind::Available).await;
    // Both legs are gone from the switch, and each left its CDR (from CHANNEL_HANGUP_COMPLETE),
    // filed under the call.
    w.no_channels_within(LIMIT).await;
    let caller_leg = LegId::parse(&caller).unwrap();
    for what in ["the caller's CDR", "the agent leg's CDR"] {
        let want_caller = what.contains("caller");
        let cdr = w
            .records
            .wait_for(what, |r| {
                matches!(r, Record::Cdr(c) if c.call_leg == Some(caller_leg) && (c.leg == caller_leg) == want_caller)
            })
            .await;
        let Record::Cdr(cdr) = cdr else {
            unreachable!()
        };
        assert!(!cdr.hangup_cause.is_empty(), "{cdr:?}");
        assert!(cdr.ended_unix_ms >= cdr.started_unix_ms, "{cdr:?}");
        assert!(
            cdr.answered_unix_ms.is_some(),
            "both legs were answered: {cdr:?}"
        );
    }
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_hangs_up_while_an_agent_rings_is_abandoned_and_the_ringing_stops() {
    let mut q = queue(Strategy::LongestIdleAgent);
    q.offer_timeout = Duration::from_secs(10);
    let w = World::start(q).await;
    // 1005 never answers: the offer keeps ringing until the caller gives up.
    w.agent(1, 1005, 1, true).await;
    let caller = w
        .call(InboundCall {
            caller_number: "+15550002222".into(),
            patience: Some(Duration::from_millis(1500)),
            ..InboundCall::default()
        })
        .await;
    w.live
        .wait_for("the offer", |e| matches!(e, LiveEvent::CallOffered { .. }))
        .await;
    let ringing = w
        .switch
        .wait_for("the agent leg", |e| {
            e.name == "CHANNEL_CREATE" && e.channel.starts_with("sofia/internal/1005@")
        })
        .await;

    let rec = w.call_record("the abandoned record", &caller).await;
    assert_eq!(rec.outcome, CallOutcome::Abandoned);
    assert_eq!(rec.agent, None);
    assert!(!rec.synthetic);
    assert!(rec.wait_s >= 1.0, "wait {}", rec.wait_s);

    // The agent's phone stopped ringing (the engine cancelled the offer), well before the
    // 10 s offer timeout, and the agent is free again.
    let hung = w
        .switch
        .wait_for("the agent leg's hangup", |e| {
            e.name == "CHANNEL_HANGUP_COMPLETE" && e.uuid == ringing.uuid
        })
        .await;
    assert_ne!(hung.cause, "NO_ANSWER", "{hung:?}");
    w.no_channels_within(Duration::from_secs(3)).await;
    w.wait_agent_state(1, AgentStateKind::Available).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_hangs_up_while_waiting_for_a_free_agent_is_abandoned() {
    let w = World::start(queue(Strategy::LongestIdleAgent)).await;
    // The only agent is logged out: the caller waits with music until giving up.
    w.agent(1, 1000, 1, false).await;
    let caller = w
        .call(InboundCall {
            caller_number: "+15550003333".into(),
            patience: Some(Duration::from_millis(1200)),
            ..InboundCall::default()
        })
        .await;
    w.live
        .wait_for("the call queued", |e| {
            matches!(e, LiveEvent::CallQueued { .. })
        })
        .await;
    let rec = w.call_record("the abandoned record", &caller).await;
    assert_eq!(rec.outcome, CallOutcome::Abandoned);
    assert_eq!((rec.agent, rec.offers), (None, 0));
    assert!(rec.wait_s >= 1.0, "wait {}", rec.wait_s);
    assert!(w.offered_to().is_empty(), "nobody was rung");
    w.no_channels_within(Duration::from_secs(3)).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_nobody_answers_goes_to_the_next_agent() {
    let mut q = queue(Strategy::TopDown);
    q.offer_timeout = Duration::from_secs(1);
    let w = World::start(q).await;
    w.agent(1, 1005, 1, true).await; // first in line, never answers
    w.agent(2, 1006, 2, true).await;
    let caller = w
        .call(InboundCall {
            caller_number: "+15550003333".into(),
            talk_time: Some(Duration::from_millis(500)),
            ..InboundCall::default()
        })
        .await;
    let other = w.bridged_to(&caller).await;
    let chan = w
        .switch
        .wait_for("the second agent's leg", |e| {
            e.name == "CHANNEL_CREATE" && e.uuid == other
        })
        .await;
    assert!(chan.channel.starts_with("sofia/internal/1006@"), "{chan:?}");
    assert_eq!(w.offered_to(), vec![AgentId(1), AgentId(2)]);
    // The first agent's leg was given up after the offer timeout.
    let first = w
        .switch
        .wait_for("the first agent's leg", |e| {
            e.name == "CHANNEL_CREATE" && e.channel.starts_with("sofia/internal/1005@")
        })
        .await;
    w.switch
        .wait_for("the first leg's hangup", |e| {
            e.name == "CHANNEL_HANGUP_COMPLETE" && e.uuid == first.uuid
        })
        .await;

    let rec = w.call_record("the call record", &caller).await;
    assert_eq!(rec.outcome, CallOutcome::Answered);
    assert_eq!(rec.agent, Some(AgentId(2)));
    assert_eq!(rec.offers, 2);
    assert!(rec.wait_s >= 1.0, "wait {}", rec.wait_s);
    // The agent who did not answer is not available right away (no-answer delay).
    assert_ne!(w.agent_state(1).await, Some(AgentStateKind::OnCall));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_past_max_wait_is_transferred_to_voicemail() {
    let mut q = queue(Strategy::LongestIdleAgent);
    q.max_wait = Some(Duration::from_secs(1));
    q.on_timeout = Exit::Voicemail("*98".into());
    let w = World::start(q).await;
    // A member who is logged out: nobody can take the call.
    w.agent(1, 1001, 1, false).await;
    let caller = w
        .call(InboundCall {
            caller_number: "+15550004444".into(),
            ..InboundCall::default()
        })
        .await;
    let rec = w.call_record("the voicemail record", &caller).await;
    assert_eq!(rec.outcome, CallOutcome::Voicemail);
    assert_eq!(rec.agent, None);
    assert!(rec.wait_s >= 0.9, "wait {}", rec.wait_s);
    // The caller's channel lives on, transferred to the voicemail extension.
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let chan = w.channel(&caller).await.expect("the caller is still up");
        if chan["dest"].as_str() == Some("*98") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not transferred: {chan}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(w.offered_to().is_empty());
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_rings_the_agent_first_then_calls_the_customer_back() {
    let mut q = queue(Strategy::LongestIdleAgent);
    q.dtmf_exits = vec![('1', Exit::Callback)];
    let w = World::start(q).await;
    w.agent(1, 1001, 1, false).await;
    let caller = w
        .call(InboundCall {
            caller_number: "+15550005555".into(),
            dtmf: Some((Duration::from_millis(300), "1".into())),
            ..InboundCall::default()
        })
        .await;
    // The caller pressed 1 and was let go (their place is kept).
    w.switch
        .wait_for("the caller's hangup", |e| {
            e.name == "CHANNEL_HANGUP_COMPLETE" && e.uuid == caller
        })
        .await;
    assert!(w.offered_to().is_empty());
    // An agent frees up: rung first, then the customer is called back and both are bridged.
    w.available(1).await;
    let agent_leg = w
        .switch
        .wait_for("the agent leg", |e| {
            e.name == "CHANNEL_CREATE" && e.channel.starts_with("sofia/internal/1001@")
        })
        .await;
    let customer = w
        .switch
        .wait_for("the customer leg", |e| {
            e.name == "CHANNEL_CREATE" && e.channel == "sofia/gateway/cust/+15550005555"
        })
        .await;
    let events = w.switch.snapshot();
    let pos = |u: &str| {
        events
            .iter()
            .position(|e| e.name == "CHANNEL_CREATE" && e.uuid == u)
            .unwrap()
    };
    assert!(
        pos(&agent_leg.uuid) < pos(&customer.uuid),
        "the agent must be rung before the customer is dialled"
    );
    assert_eq!(w.bridged_to(&customer.uuid).await, agent_leg.uuid);

    // The customer talks for half a second (the fake's customer model) and hangs up.
    let rec = w
        .records
        .wait_for(
            "the callback record",
            |r| matches!(r, Record::Call(c) if c.outcome == CallOutcome::CallbackAnswered),
        )
        .await;
    let Record::Call(rec) = rec else {
        unreachable!()
    };
    assert_eq!(rec.agent, Some(AgentId(1)));
    assert_eq!(rec.caller_number, "+15550005555");
    assert!(!rec.synthetic);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_that_fails_is_dialled_again_after_its_retry_interval_and_connects() {
    // The callback's dial target is broken at first (the gateway answers busy), then fixed.
    let mut q = queue(Strategy::LongestIdleAgent);
    q.dtmf_exits = vec![('1', Exit::Callback)];
    q.callback_dial = Some("error/USER_BUSY".into());
    q.callback_retry = Duration::from_secs(1);
    q.callback_attempts = 3;
    let w = World::start(q.clone()).await;
    w.agent(1, 1001, 1, true).await;
    w.api
        .command(Command::SetAgentPresence {
            agent: AgentId(1),
            presence: Presence::OnBreak("lunch".into()),
        })
        .await
        .unwrap();
    let caller = w
        .call(InboundCall {
            caller_number: "+15550006666".into(),
            dtmf: Some((Duration::from_millis(300), "1".into())),
            ..InboundCall::default()
        })
        .await;
    w.switch
        .wait_for("the caller's hangup", |e| {
            e.name == "CHANNEL_HANGUP_COMPLETE" && e.uuid == caller
        })
        .await;
    // First try: the agent is rung, the customer's dial fails busy, the agent is let go.
    w.available(1).await;
    w.switch
        .wait_for("the first agent leg's hangup", |e| {
            e.name == "CHANNEL_HANGUP_COMPLETE" && e.channel.starts_with("sofia/internal/1001@")
        })
        .await;
    w.wait_agent_state(1, AgentStateKind::Available).await;
    assert!(
        !w.records
            .snapshot()
            .iter()
            .any(|r| matches!(r, Record::Call(_))),
        "a failed callback keeps its place: no final record yet"
    );
    // The target is fixed; the retry (1 s later) rings the agent again and reaches the customer.
    q.callback_dial = None;
    w.api
        .command(Command::UpsertQueue(Box::new(q)))
        .await
        .unwrap();
    let customer = w
        .switch
        .wait_for("the customer leg", |e| {
            e.name == "CHANNEL_CREATE" && e.channel == "sofia/gateway/cust/+15550006666"
        })
        .await;
    let agent_leg = w.bridged_to(&customer.uuid).await;
    assert!(!agent_leg.is_empty());
    let rec = w
        .records
        .wait_for("the callback record", |r| matches!(r, Record::Call(_)))
        .await;
    let Record::Call(rec) = rec else {
        unreachable!()
    };
    assert_eq!(rec.outcome, CallOutcome::CallbackAnswered, "{rec:?}");
    assert_eq!(rec.agent, Some(AgentId(1)));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_barges_into_an_agents_call() {
    let w = World::start(queue(Strategy::LongestIdleAgent)).await;
    w.agent(1, 1001, 1, true).await;
    let caller = w
        .call(InboundCall {
            caller_number: "+15550006666".into(),
            talk_time: Some(Duration::from_secs(30)),
            ..InboundCall::default()
        })
        .await;
    let agent_leg = w.bridged_to(&caller).await;
    let sup = LegId::parse("5e0b1a6c-0d7e-4b55-9a11-2f3c4d5e6f70").unwrap();
    w.api
        .command(Command::Monitor {
            agent: AgentId(1),
            dial: "user/1050".into(),
            leg: sup,
            mode: MonitorMode::Barge,
        })
        .await
        .unwrap();
    // The supervisor's phone answers and the leg runs eavesdrop on the agent's leg.
    let sup_uuid = sup.to_string();
    let deadline = tokio::time::Instant::now() + LIMIT;
    let row = loop {
        if let Some(row) = w.channel(&sup_uuid).await
            && row["application"].as_str() == Some("eavesdrop")
        {
            break row;
        }
        assert!(tokio::time::Instant::now() < deadline, "no eavesdrop leg");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(row["application_data"].as_str(), Some(agent_leg.as_str()));
    assert!(
        row["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("sofia/internal/1050@")
    );
    // Barge: mixed both ways (the flags of mod_dptools three_way).
    for var in ["eavesdrop_whisper_aleg", "eavesdrop_whisper_bleg"] {
        let v = w
            .observer
            .api(&format!("uuid_getvar {sup_uuid} {var}"))
            .await
            .unwrap();
        assert_eq!(&v[..], b"true", "{var}");
    }
    let v = w
        .observer
        .api(&format!("uuid_getvar {sup_uuid} eavesdrop_enable_dtmf"))
        .await
        .unwrap();
    assert_eq!(&v[..], b"false");
    // The call itself is untouched.
    assert!(w.channel(&caller).await.is_some());
    assert_eq!(w.agent_state(1).await, Some(AgentStateKind::OnCall));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_routed_by_number_or_queue_name_and_the_rest_are_refused() {
    let w = World::start(queue(Strategy::LongestIdleAgent)).await;
    w.agent(1, 1001, 1, true).await;
    // By the queue's name, learned from UpsertQueue (the dialplan may dial it).
    let by_name = w
        .sim
        .place_inbound_call(InboundCall {
            caller_number: "+15550009991".into(),
            destination: "support".into(),
            talk_time: Some(Duration::from_millis(300)),
            ..InboundCall::default()
        })
        .await
        .unwrap();
    assert_eq!(w.bridged_to(&by_name).await.len(), 36);
    let rec = w.call_record("the routed call", &by_name).await;
    assert_eq!(rec.queues, vec![QUEUE]);
    // A number nobody routes: hung up at once, and the core never hears of it.
    let stray = w
        .sim
        .place_inbound_call(InboundCall {
            caller_number: "+15550009992".into(),
            destination: "9999".into(),
            ..InboundCall::default()
        })
        .await
        .unwrap();
    let gone = w
        .switch
        .wait_for("the stray caller's hangup", |e| {
            e.name == "CHANNEL_HANGUP_COMPLETE" && e.uuid == stray
        })
        .await;
    assert_eq!(gone.cause, "NO_ROUTE_DESTINATION");
    assert_eq!(w.api.stats().calls_unrouted, 1);
    let stray_leg = LegId::parse(&stray).unwrap();
    assert!(
        w.api
            .query(move |e| e.call_by_leg(stray_leg))
            .await
            .unwrap()
            .is_none()
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_event_socket_reconnects_and_the_call_carries_on() {
    let w = World::start(queue(Strategy::LongestIdleAgent)).await;
    w.agent(1, 1001, 1, true).await;
    let caller = w
        .call(InboundCall {
            caller_number: "+15550009993".into(),
            talk_time: Some(Duration::from_secs(2)),
            ..InboundCall::default()
        })
        .await;
    w.bridged_to(&caller).await;
    // The inbound connection drops (the switch stays up): the driver reconnects, resyncs,
    // and finds both legs alive.
    w.sim.inject(Fault::DropConnections).await;
    eventually("the resync", || (w.api.stats().resyncs >= 1).then_some(())).await;
    assert_eq!(w.agent_state(1).await, Some(AgentStateKind::OnCall));
    // The call ends normally when the caller hangs up, seen over the new connection.
    let rec = w.call_record("the call record", &caller).await;
    assert_eq!(rec.outcome, CallOutcome::Answered);
    assert!(!rec.synthetic);
    assert!(rec.talk_s >= 1.5, "talk {}", rec.talk_s);
    w.wait_agent_state(1, AgentStateKind::Available).await;
    w.stop().await;
}

#[tokio::test]
async fn a_persistent_agent_line_outlives_each_call_and_takes_the_next_one_without_ringing() {
    let w = World::start(queue(Strategy::LongestIdleAgent)).await;
    w.api
        .command(Command::UpsertAgent(Box::new(AgentConfig {
            id: AgentId(1),
            name: "agent 1".into(),
            contact: "user/1001".into(),
            persistent_line: true,
            ..AgentConfig::default()
        })))
        .await
        .unwrap();
    w.api
        .command(Command::SetMemberships {
            agent: AgentId(1),
            memberships: vec![Membership::new(QUEUE)],
        })
        .await
        .unwrap();
    w.available(1).await;
    // The phone is called once and answers (0.2 s): the line is up and parked.
    let mut line = None;
    for _ in 0..500 {
        line = w.line_up(1).await;
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let line = line.expect("the agent's line came up").to_string();
    assert!(
        w.channel(&line).await.is_some(),
        "the line is a live channel"
    );

    for (i, number) in ["+15550001111", "+15550002222"].into_iter().enumerate() {
        let caller = w
            .call(InboundCall {
                caller_number: number.into(),
                talk_time: Some(Duration::from_millis(500)),
                ..InboundCall::default()
            })
            .await;
        assert_eq!(
            w.bridged_to(&caller).await,
            line,
            "call {i} goes to the line"
        );
        let rec = w.call_record("the call record", &caller).await;
        assert_eq!(rec.outcome, CallOutcome::Answered);
        assert_eq!(rec.agent, Some(AgentId(1)));
        // The customer hung up; the line went back to park and stays.
        assert!(
            w.channel(&line).await.is_some(),
            "the line survives call {i}"
        );
        w.wait_agent_state(1, AgentStateKind::Available).await;
    }
    let agent_legs = w
        .switch
        .snapshot()
        .iter()
        .filter(|e| e.name == "CHANNEL_CREATE" && e.channel.starts_with("sofia/internal/1001@"))
        .count();
    assert_eq!(agent_legs, 1, "the phone was called once for both calls");
    assert!(
        !w.switch
            .snapshot()
            .iter()
            .any(|e| e.name == "CHANNEL_HANGUP_COMPLETE" && e.uuid == line),
        "the line was never hung up"
    );

    // Logging out hangs the line up.
    w.api
        .command(Command::SetAgentPresence {
            agent: AgentId(1),
            presence: Presence::LoggedOut,
        })
        .await
        .unwrap();
    w.switch
        .wait_for("the line's hangup", |e| {
            e.name == "CHANNEL_HANGUP_COMPLETE" && e.uuid == line
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_socket_fall_through_forced_every_caller_is_still_bridged() {
    // Every uuid_bridge lets the caller's `socket` return early (issue 15, item 8); the
    // documented dialplan parks it after `socket`, so the bridge still claims it, and
    // hangup_after_bridge (set at arrival) ends it with the agent instead of parking it.
    let w = World::start_with(
        queue(Strategy::LongestIdleAgent),
        SimConfig {
            switch: SwitchModel {
                after_socket: AfterSocket::Park,
                socket_fall_through: 1.0,
                ..SwitchModel::default()
            },
            ..SimConfig::default()
        },
    )
    .await;
    w.agent(1, 1001, 1, true).await;
    for n in 0..3 {
        let caller = w
            .call(InboundCall {
                caller_number: format!("+1555000200{n}"),
                talk_time: Some(Duration::from_millis(300)),
                ..InboundCall::default()
            })
            .await;
        let agent_leg = w.bridged_to(&caller).await;
        let rec = w.call_record("the call record", &caller).await;
        assert_eq!(rec.outcome, CallOutcome::Answered, "call {n}");
        assert_eq!(rec.agent, Some(AgentId(1)), "call {n}");
        assert!(rec.talk_s >= 0.2, "call {n}: talk {}", rec.talk_s);
        // Both legs end: nobody is left parked.
        for leg in [&caller, &agent_leg] {
            w.switch
                .wait_for("the leg's CHANNEL_HANGUP_COMPLETE", |e| {
                    e.name == "CHANNEL_HANGUP_COMPLETE" && &e.uuid == leg
                })
                .await;
        }
        w.wait_agent_state(1, AgentStateKind::Available).await;
    }
    w.no_channels_within(LIMIT).await;
    w.stop().await;
}

// ---- prompts and sounds ---------------------------------------------------------------------

/// How long the fake switch plays one sound file in these tests.
const FILE_LEN: Duration = Duration::from_millis(300);

/// How long the fake plays a broadcast path: each file of a `file_string://` for `FILE_LEN`.
fn played_len(path: &str) -> Duration {
    let files = path
        .strip_prefix("file_string://")
        .map_or(1, |l| l.split('!').count());
    FILE_LEN * u32::try_from(files).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_prompts_due_together_are_both_heard_in_full_and_the_music_resumes_after_the_last() {
    // The position / expected-wait announcement and the periodic message fall due at the same
    // moment, a second after the caller joined. No agent: the caller keeps waiting.
    let periodic = "ivr/ivr-thank_you_for_holding.wav";
    let q = QueueConfig {
        announcements: Announcements {
            first_after: Some(Duration::from_secs(1)),
            every: None,
            position: true,
            expected_wait: true,
            periodic: Some((Duration::from_secs(1), periodic.into())),
            ..Announcements::default()
        },
        ..queue(Strategy::LongestIdleAgent)
    };
    let w = World::start_with(
        q,
        SimConfig {
            default_playback: FILE_LEN,
            ..SimConfig::default()
        },
    )
    .await;
    let caller = w.call(InboundCall::default()).await;

    // Music, its break by the first prompt, both prompts, the music again.
    let heard = eventually("both prompts and the music after them", || {
        let p = w.playbacks(&caller);
        let starts = p.iter().filter(|e| e.name == "PLAYBACK_START").count();
        (starts >= 4).then_some(p)
    })
    .await;
    let moh = "local_stream://moh";
    assert_eq!(heard[0].name, "PLAYBACK_START");
    assert_eq!(heard[0].path, moh);
    assert_eq!(
        (
            heard[1].name.as_str(),
            heard[1].path.as_str(),
            heard[1].status.as_str()
        ),
        ("PLAYBACK_STOP", moh, "break"),
        "the first prompt stops the music: {heard:#?}"
    );
    let prompts = &heard[2..6];
    let mut said = Vec::new();
    for pair in prompts.chunks(2) {
        let (start, stop) = (&pair[0], &pair[1]);
        assert_eq!(start.name, "PLAYBACK_START", "{heard:#?}");
        assert_eq!(stop.name, "PLAYBACK_STOP", "{heard:#?}");
        assert_eq!(start.path, stop.path);
        // Heard to the end: stopped by itself, after its whole length.
        assert_eq!(stop.status, "done", "{} was cut: {heard:#?}", stop.path);
        let played = Duration::from_micros(stop.at_us - start.at_us);
        assert!(
            played >= played_len(&stop.path),
            "{} played {played:?}",
            stop.path
        );
        said.push(stop.path.clone());
    }
    // The second prompt began once the first had ended.
    assert!(prompts[2].at_us >= prompts[1].at_us);
    assert!(said.iter().any(|p| p == periodic), "{said:?}");
    assert!(
        said.iter().any(|p| p.contains("ivr-you_are_number.wav")),
        "{said:?}"
    );
    // Then the music, and only then.
    assert_eq!(heard[6].name, "PLAYBACK_START");
    assert_eq!(heard[6].path, moh);
    assert!(heard[6].at_us >= prompts[3].at_us);
    assert!(w.api.stats().prompts_queued >= 1);

    w.observer
        .api(&format!("uuid_kill {caller}"))
        .await
        .unwrap();
    w.call_record("the call record", &caller).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_music_on_the_switch_is_warned_once_and_the_caller_hears_a_tone() {
    let w = World::start_with(
        queue(Strategy::LongestIdleAgent),
        SimConfig {
            sounds: SoundFiles::default().without("local_stream://moh"),
            ..SimConfig::default()
        },
    )
    .await;
    // The driver asked the switch at connect (and when the queue was created).
    eventually("the missing music is counted", || {
        (w.api.stats().sounds_missing > 0).then_some(())
    })
    .await;

    let caller = w.call(InboundCall::default()).await;
    let start = w
        .switch
        .wait_for("the caller's music", |e| {
            e.uuid == caller && e.name == "PLAYBACK_START"
        })
        .await;
    assert_eq!(start.path, "tone_stream://%(2000,4000,440,480);loops=-1");
    // A second caller: no second warning (once per file per node); the standard prompt files
    // are all there.
    let second = w.call(InboundCall::default()).await;
    w.switch
        .wait_for("the second caller's music", |e| {
            e.uuid == second && e.name == "PLAYBACK_START"
        })
        .await;
    assert_eq!(w.api.stats().sounds_missing, 1);

    for leg in [&caller, &second] {
        w.observer.api(&format!("uuid_kill {leg}")).await.unwrap();
    }
    w.stop().await;
}
