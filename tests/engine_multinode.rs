//! One driver, two fake FreeSWITCH nodes, over loopback: callers of each node are served by
//! agent legs on their own node, a node's restart closes its own calls only, a node that is
//! down gets nothing new; and answering-machine detection and the inline play-then-hangup on
//! the wire.
//!
//! Short real time, as in `engine_wire.rs` (loopback I/O does not mix with a paused clock):
//! phones answer after 0.2 s, detection takes 0.3 s, a message plays for 0.4 s.

#[path = "wire_support/mod.rs"]
mod wire_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_engine::config::{Announcements, EngineConfig};
use switchyard_engine::driver::{Driver, DriverConfig, DriverHandle, Probe};
use switchyard_engine::{
    AgentConfig, AgentId, AmdResult, Command, Engine, Exit, LegId, LegKind, Membership, Presence,
    QueueConfig, QueueId, Record, Strategy, SwitchCommand,
};
use switchyard_esl::client::{Auth, BackoffConfig, Client, ClientConfig, ClientEvent};
use switchyard_esl::sim::{
    AgentBehaviour, AgentModel, CustomerModel, Dist, InboundCall, Scenario, SimConfig, SimHandle,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wire_support::{Log, eventually};

const QUEUE: QueueId = QueueId(1);
const NUMBER: &str = "5000";

/// A switch event as a node's observer saw it.
#[derive(Clone, Debug)]
struct SwEvent {
    name: String,
    subclass: String,
    uuid: String,
    channel: String,
    bridge_a: String,
    bridge_b: String,
    cause: String,
    application: String,
    amd_result: String,
    path: String,
    at: Instant,
}

/// What the driver fed the core about answering machines.
#[derive(Default)]
struct AmdProbe(Mutex<Vec<(LegId, AmdResult)>>);

impl Probe for AmdProbe {
    fn machine_detection(&self, leg: LegId, result: AmdResult, _at: std::time::Instant) {
        self.0.lock().unwrap().push((leg, result));
    }
}

struct Node {
    sim: Option<SimHandle>,
    /// Kept for its connection: the events below come through it.
    _observer: Client,
    events: Log<SwEvent>,
}

impl Node {
    async fn start(outbound: String, seed: u64) -> Node {
        let esl = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut customers = CustomerModel {
            answer_delay: Dist::Fixed(0.2),
            talk_time: Some(Dist::Fixed(30.0)),
            amd_delay: Dist::Fixed(0.3),
            ..CustomerModel::default()
        };
        customers
            .numbers
            .insert("+15550001".into(), "machine".into());
        customers.numbers.insert("+15550002".into(), "human".into());
        let sim = switchyard_esl::sim::spawn(
            esl,
            SimConfig {
                inbound_target: Some(outbound),
                default_playback: Duration::from_millis(400),
                scenario: Scenario {
                    seed,
                    agents: AgentModel {
                        extensions: vec!["1000-1099".into()],
                        behaviour: AgentBehaviour {
                            answer_delay: Dist::Fixed(0.2),
                            ..AgentBehaviour::default()
                        },
                        overrides: Vec::new(),
                    },
                    customers,
                    inbound: None,
                },
                ..SimConfig::default()
            },
            seed,
        );
        let (observer, mut stream) = Client::connect(
            ClientConfig::new(
                sim.local_addr().to_string(),
                Auth::Password("ClueCon".into()),
            )
            .events(
                "CHANNEL_CREATE CHANNEL_BRIDGE CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE_COMPLETE \
                 CHANNEL_PARK PLAYBACK_START PLAYBACK_STOP CUSTOM avmd::beep",
            ),
        )
        .await
        .unwrap();
        let events = Log::new();
        let log = events.clone();
        tokio::spawn(async move {
            while let Some(ev) = stream.recv().await {
                if let ClientEvent::Event(e) = ev {
                    let h = |n: &str| e.header(n).map(|v| v.into_owned()).unwrap_or_default();
                    log.push(SwEvent {
                        subclass: h("Event-Subclass"),
                        name: h("Event-Name"),
                        uuid: h("Unique-ID"),
                        channel: h("Channel-Name"),
                        bridge_a: h("Bridge-A-Unique-ID"),
                        bridge_b: h("Bridge-B-Unique-ID"),
                        cause: h("Hangup-Cause"),
                        application: h("Application"),
                        amd_result: h("variable_amd_result"),
                        path: h("Playback-File-Path"),
                        at: Instant::now(),
                    });
                }
            }
        });
        Node {
            sim: Some(sim),
            _observer: observer,
            events,
        }
    }

    fn sim(&self) -> &SimHandle {
        self.sim.as_ref().expect("the node runs")
    }

    async fn call(&self, call: InboundCall) -> String {
        self.sim()
            .place_inbound_call(InboundCall {
                destination: NUMBER.into(),
                ..call
            })
            .await
            .expect("the fake switch places the call")
    }

    /// The leg `uuid` was bridged to on this node.
    async fn bridged_to(&self, uuid: &str) -> String {
        let e = self
            .events
            .wait_for("a bridge", |e| {
                e.name == "CHANNEL_BRIDGE" && (e.bridge_a == uuid || e.bridge_b == uuid)
            })
            .await;
        if e.bridge_a == uuid {
            e.bridge_b
        } else {
            e.bridge_a
        }
    }

    fn created(&self, uuid: &str) -> bool {
        self.events
            .snapshot()
            .iter()
            .any(|e| e.name == "CHANNEL_CREATE" && e.uuid == uuid)
    }
}

struct World {
    a: Node,
    b: Node,
    driver: Driver,
    api: DriverHandle,
    /// The driver's records, drained so that the driver never parks them.
    _records: Log<Record>,
    amd: Arc<AmdProbe>,
}

impl World {
    async fn start(queue: QueueConfig) -> World {
        let outbound = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = outbound.local_addr().unwrap().to_string();
        let a = Node::start(target.clone(), 11).await;
        let b = Node::start(target, 22).await;
        let mut cfg = DriverConfig::new(a.sim().local_addr().to_string(), "ClueCon");
        cfg.esl.backoff = BackoffConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(300),
            seed: Some(3),
        };
        cfg.node_name = "fs-a".into();
        cfg = cfg
            .add_node("fs-b", b.sim().local_addr().to_string(), "ClueCon")
            .route(NUMBER, QUEUE);
        cfg.orphan_grace = Duration::from_millis(500);
        let amd = Arc::new(AmdProbe::default());
        cfg.probe = Some(amd.clone());
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
        api.command(Command::UpsertQueue(Box::new(queue)))
            .await
            .unwrap();
        let w = World {
            a,
            b,
            driver,
            api,
            _records: records,
            amd,
        };
        // Both nodes connected and their Core-UUIDs learned.
        eventually("both nodes up", || {
            let n = w.api.nodes();
            n.iter()
                .all(|n| n.connected && n.core_uuid.is_some())
                .then_some(())
        })
        .await;
        w
    }

    async fn agent(&self, id: u32, ext: u32, available: bool) {
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
                    position: id,
                    ..Membership::new(QUEUE)
                }],
            })
            .await
            .unwrap();
        if available {
            self.available(id).await;
        }
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

    fn legs_on(&self, node: &str) -> u64 {
        self.api
            .nodes()
            .into_iter()
            .find(|n| n.name == node)
            .map_or(0, |n| n.legs)
    }

    async fn stop(mut self) {
        let _ = self.driver.shutdown().await;
        for n in [&mut self.a, &mut self.b] {
            if let Some(s) = n.sim.take() {
                s.shutdown().await;
            }
        }
    }
}

fn queue(strategy: Strategy) -> QueueConfig {
    QueueConfig {
        id: QUEUE,
        name: "support".into(),
        strategy,
        offer_timeout: Duration::from_secs(2),
        wrapup: Duration::from_millis(500),
        announcements: Announcements {
            first_after: None,
            every: None,
            ..Announcements::default()
        },
        ..QueueConfig::default()
    }
}

// ---- several nodes ---------------------------------------------------------------------------

#[tokio::test]
async fn a_node_that_is_down_gets_no_new_originates() {
    let mut q = queue(Strategy::LongestIdleAgent);
    q.dtmf_exits = vec![('1', Exit::Callback)];
    let mut w = World::start(q).await;
    w.agent(1, 1001, false).await;
    // A caller on node B asks to be called back and leaves.
    let caller =
        w.b.call(InboundCall {
            caller_number: "+15550007777".into(),
            dtmf: Some((Duration::from_millis(300), "1".into())),
            ..InboundCall::default()
        })
        .await;
    w.b.events
        .wait_for("the caller's hangup", |e| {
            e.name == "CHANNEL_HANGUP_COMPLETE" && e.uuid == caller
        })
        .await;
    // Node A (the first node, and the one with no legs) goes away.
    if let Some(s) = w.a.sim.take() {
        s.shutdown().await;
    }
    eventually("node A seen down", || {
        (!w.api.nodes()[0].connected).then_some(())
    })
    .await;
    assert!(w.api.connected(), "one node is still up");
    // The callback's legs (no caller leg to follow any more) must all go to node B.
    w.available(1).await;
    let agent_leg =
        w.b.events
            .wait_for("the agent leg on B", |e| {
                e.name == "CHANNEL_CREATE" && e.channel.starts_with("sofia/internal/1001@")
            })
            .await;
    let customer =
        w.b.events
            .wait_for("the customer leg on B", |e| {
                e.name == "CHANNEL_CREATE" && e.channel == "sofia/gateway/cust/+15550007777"
            })
            .await;
    assert_eq!(w.b.bridged_to(&customer.uuid).await, agent_leg.uuid);
    assert_eq!(w.api.stats().commands_failed, 0);
    w.stop().await;
}

#[tokio::test]
async fn campaign_dials_spread_over_the_connected_nodes() {
    let w = World::start(queue(Strategy::LongestIdleAgent)).await;
    let mut legs = Vec::new();
    for i in 0..4u128 {
        let leg = LegId(0x1000 + i);
        legs.push(leg);
        w.api
            .inject_switch_command(campaign_dial(leg, "+15550002", &[]))
            .await
            .unwrap();
    }
    eventually("four customer legs", || {
        let n = w.api.nodes();
        (n.iter().map(|n| n.legs).sum::<u64>() == 4).then_some(())
    })
    .await;
    // Least legs first, round-robin on ties: two each.
    assert_eq!(w.legs_on("fs-a"), 2);
    assert_eq!(w.legs_on("fs-b"), 2);
    w.stop().await;
}

// ---- answering-machine detection and play-then-hangup ----------------------------------------

fn campaign_dial(leg: LegId, number: &str, vars: &[(&str, &str)]) -> SwitchCommand {
    SwitchCommand::Originate {
        kind: LegKind::Campaign,
        leg,
        dial: format!("sofia/gateway/carrier/{number}"),
        caller_id_number: "+15557770000".into(),
        caller_id_name: String::new(),
        timeout: Duration::from_secs(20),
        vars: vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        join: None,
    }
}

#[tokio::test]
async fn amd_verdicts_of_campaign_legs_reach_the_core() {
    let w = World::start(queue(Strategy::LongestIdleAgent)).await;
    let machine = LegId(0xA1);
    let human = LegId(0xA2);
    let beep = LegId(0xA3);
    let not_campaign = LegId(0xA4);
    let amd = [("execute_on_answer", "amd")];
    for (leg, number) in [(machine, "+15550001"), (human, "+15550002")] {
        w.api
            .inject_switch_command(campaign_dial(leg, number, &amd))
            .await
            .unwrap();
    }
    w.api
        .inject_switch_command(campaign_dial(
            beep,
            "+15550001",
            &[("execute_on_answer", "avmd_start")],
        ))
        .await
        .unwrap();
    let mut agent_dial = campaign_dial(not_campaign, "+15550001", &amd);
    if let SwitchCommand::Originate { kind, .. } = &mut agent_dial {
        *kind = LegKind::Customer;
    }
    w.api.inject_switch_command(agent_dial).await.unwrap();

    let verdict = |leg: LegId| {
        let amd = w.amd.clone();
        move || {
            amd.0
                .lock()
                .unwrap()
                .iter()
                .find(|(l, _)| *l == leg)
                .map(|(_, r)| *r)
        }
    };
    assert_eq!(
        eventually("machine", verdict(machine)).await,
        AmdResult::Machine
    );
    assert_eq!(eventually("human", verdict(human)).await, AmdResult::Human);
    let beeped = [&w.a, &w.b];
    eventually("the beep on the wire", || {
        beeped
            .iter()
            .flat_map(|n| n.events.snapshot())
            .find(|e| e.subclass == "avmd::beep" && e.uuid == beep.to_string())
    })
    .await;
    assert_eq!(
        eventually("avmd beep", verdict(beep)).await,
        AmdResult::Machine
    );
    // The switch did say so, shaped like the captures' CHANNEL_EXECUTE_COMPLETE.
    let events = [w.a.events.snapshot(), w.b.events.snapshot()].concat();
    let done = events
        .iter()
        .find(|e| {
            e.name == "CHANNEL_EXECUTE_COMPLETE"
                && e.application == "amd"
                && e.uuid == machine.to_string()
        })
        .expect("the amd application's completion");
    assert_eq!(done.amd_result, "MACHINE");
    // A leg that is not a campaign dial gets no verdict, even with detection running.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(verdict(not_campaign)().is_none());
    // Once per leg: the machine leg's later events add nothing.
    let machines = w
        .amd
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, _)| *l == machine)
        .count();
    assert_eq!(machines, 1);
    assert_eq!(w.api.stats().machine_detections, 3);
    w.stop().await;
}

#[tokio::test]
async fn play_then_hangup_plays_the_message_then_clears_the_leg() {
    let w = World::start(queue(Strategy::LongestIdleAgent)).await;
    let leg = LegId(0xB1);
    w.api
        .inject_switch_command(campaign_dial(leg, "+15550002", &[]))
        .await
        .unwrap();
    let uuid = leg.to_string();
    let node = eventually("the customer leg's node", || {
        [&w.a, &w.b].into_iter().find(|n| n.created(&uuid))
    })
    .await;
    // Answered and parked (the human talks for 30 s unless hung up).
    node.events
        .wait_for("the park", |e| e.name == "CHANNEL_PARK" && e.uuid == uuid)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    w.api
        .inject_switch_command(SwitchCommand::PlayThenHangup {
            leg,
            path: "/sounds/abandon.wav".into(),
        })
        .await
        .unwrap();
    let start = node
        .events
        .wait_for("the message starts", |e| {
            e.name == "PLAYBACK_START" && e.uuid == uuid
        })
        .await;
    assert_eq!(start.path, "/sounds/abandon.wav");
    let stop = node
        .events
        .wait_for("the message ends", |e| {
            e.name == "PLAYBACK_STOP" && e.uuid == uuid
        })
        .await;
    let hangup = node
        .events
        .wait_for("the hangup", |e| {
            e.name == "CHANNEL_HANGUP_COMPLETE" && e.uuid == uuid
        })
        .await;
    assert_eq!(hangup.cause, "NORMAL_CLEARING");
    assert!(
        stop.at.duration_since(start.at) >= Duration::from_millis(350),
        "the message played for its length (0.4 s)"
    );
    assert!(hangup.at >= stop.at && hangup.at.duration_since(sent) < Duration::from_secs(5));
    w.stop().await;
}

// ---- the runtime behind `switchyard serve` ---------------------------------------------------

#[tokio::test]
async fn serve_runtime_drives_two_nodes_and_is_ready_while_one_is_up() {
    use switchyard_api::runtime::{Runtime, SwitchNode, switch_readiness};
    use switchyard_api::store::Store;

    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let outbound = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut a = Node::start(outbound.clone(), 31).await;
    let mut b = Node::start(outbound.clone(), 32).await;
    let nodes = vec![
        SwitchNode {
            name: "east".into(),
            esl: a.sim().local_addr().to_string(),
            password: "ClueCon".into(),
        },
        SwitchNode {
            name: "west".into(),
            esl: b.sim().local_addr().to_string(),
            password: "ClueCon".into(),
        },
    ];
    let rt = Runtime::start_with_nodes(store, nodes, &outbound, EngineConfig::default(), 1)
        .await
        .expect("the runtime starts against both nodes");
    let view = || rt.engine.nodes();
    eventually("both nodes connected", || {
        view()
            .iter()
            .all(|n| n.connected && n.core_uuid.is_some())
            .then_some(())
    })
    .await;
    let names: Vec<String> = view().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["east", "west"]);
    assert_ne!(view()[0].core_uuid, view()[1].core_uuid);
    assert!(switch_readiness(&rt.engine).is_ok());

    if let Some(s) = a.sim.take() {
        s.shutdown().await;
    }
    eventually("east down", || (!view()[0].connected).then_some(())).await;
    assert!(switch_readiness(&rt.engine).is_ok(), "west still serves");
    if let Some(s) = b.sim.take() {
        s.shutdown().await;
    }
    eventually("west down", || (!view()[1].connected).then_some(())).await;
    let err = switch_readiness(&rt.engine).unwrap_err();
    assert!(err.contains("east") && err.contains("west"), "{err}");
    rt.shutdown().await;
}

#[tokio::test]
async fn a_node_unreachable_at_start_joins_when_it_comes_up() {
    let outbound = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = outbound.local_addr().unwrap().to_string();
    let a = Node::start(target.clone(), 41).await;
    // A free port nobody listens on yet.
    let later = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut cfg = DriverConfig::new(a.sim().local_addr().to_string(), "ClueCon");
    cfg.esl.backoff = BackoffConfig {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
        seed: Some(3),
    };
    cfg = cfg.add_node("late", later.to_string(), "ClueCon");
    let engine = Engine::new(
        EngineConfig::default(),
        7,
        tokio::time::Instant::now().into_std(),
    );
    let driver = Driver::start(cfg, engine, outbound, switchyard_engine::driver::NullSink)
        .await
        .expect("one node up is enough to start");
    let api = driver.handle().clone();
    assert!(api.connected());
    assert!(!api.nodes()[1].connected);
    // Campaign dials meanwhile all go to the node that is up.
    for i in 0..2u128 {
        api.inject_switch_command(campaign_dial(LegId(0x2000 + i), "+15550002", &[]))
            .await
            .unwrap();
    }
    eventually("two legs on fs1", || {
        (api.nodes()[0].legs == 2 && api.nodes()[1].legs == 0).then_some(())
    })
    .await;
    // The node comes up: the driver connects in the background.
    let listener = TcpListener::bind(later).await.unwrap();
    let late = switchyard_esl::sim::spawn(
        listener,
        SimConfig {
            inbound_target: Some(target),
            ..SimConfig::default()
        },
        42,
    );
    eventually("the late node connected", || {
        let n = &api.nodes()[1];
        (n.connected && n.core_uuid.is_some()).then_some(())
    })
    .await;
    // Now the emptier node gets the next dial.
    api.inject_switch_command(campaign_dial(LegId(0x2002), "+15550002", &[]))
        .await
        .unwrap();
    eventually("a leg on the late node", || {
        (api.nodes()[1].legs == 1).then_some(())
    })
    .await;
    let _ = driver.shutdown().await;
    late.shutdown().await;
    if let Some(s) = { a }.sim.take() {
        s.shutdown().await;
    }
}
