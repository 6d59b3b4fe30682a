//! A campaign dialled over the wire: the driver runs the engine against the fake switch over
//! loopback; the fake switch's customer model answers as a person, a machine (detected with
//! mod_amd's `amd` application), busy or not at all, per number. Checked through the attempt
//! records the driver hands to the store.
//!
//! Short real time (loopback sockets do not mix with a paused clock): customers answer after
//! 0.3 s, detection takes 0.3 s, agents answer after 0.2 s, a person talks for 3 s.

#[path = "wire_support/mod.rs"]
mod wire_support;

use std::collections::BTreeMap;
use std::time::Duration;

use switchyard_engine::config::{Announcements, EngineConfig};
use switchyard_engine::dialer::{
    AmdPolicy, AttemptOutcome, AttemptRecord, CallingWindow, CampaignConfig, CampaignControl,
    ContactNext, ContactSpec, DialMode, MachineAction, RetryRule, RetryRules,
};
use switchyard_engine::driver::{Driver, DriverConfig};
use switchyard_engine::{
    AgentConfig, AgentId, CampaignId, Command, ContactId, Engine, Membership, Presence,
    QueueConfig, QueueId, Record,
};
use switchyard_esl::client::BackoffConfig;
use switchyard_esl::sim::{AgentBehaviour, AgentModel, CustomerModel, Dist, Scenario, SimConfig};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wire_support::{Log, eventually_within};

/// The no-answer contact rings out the whole (shortest allowed) ring timeout, 15 s.
const LIMIT: Duration = Duration::from_secs(30);
const QUEUE: QueueId = QueueId(1);
const CAMPAIGN: CampaignId = CampaignId(3);

fn number(i: u64) -> String {
    format!("+1555000{i:04}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progressive_campaign_dials_detects_bridges_and_schedules_retries_on_the_wire() {
    // Contact 1 is a person, 2 a machine, 3 busy, 4 never answers.
    let fixed: BTreeMap<String, String> = [
        (number(1), "human"),
        (number(2), "machine"),
        (number(3), "busy"),
        (number(4), "no_answer"),
    ]
    .into_iter()
    .map(|(n, k)| (n, k.to_owned()))
    .collect();
    let scenario = Scenario {
        seed: 9,
        agents: AgentModel {
            extensions: vec!["1000-1009".into()],
            behaviour: AgentBehaviour {
                answer_delay: Dist::Fixed(0.2),
                ..AgentBehaviour::default()
            },
            overrides: Vec::new(),
        },
        customers: CustomerModel {
            answer_delay: Dist::Fixed(0.3),
            amd_delay: Dist::Fixed(0.3),
            talk_time: Some(Dist::Fixed(3.0)),
            machine_greeting: Dist::Fixed(5.0),
            numbers: fixed,
            ..CustomerModel::default()
        },
        inbound: None,
    };
    let outbound = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let esl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = switchyard_esl::sim::spawn(
        esl,
        SimConfig {
            inbound_target: Some(outbound.local_addr().unwrap().to_string()),
            scenario,
            ..SimConfig::default()
        },
        42,
    );
    let mut cfg = DriverConfig::new(sim.local_addr().to_string(), "ClueCon");
    cfg.esl.backoff = BackoffConfig {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
        seed: Some(3),
    };
    let engine = Engine::new(
        EngineConfig::default(),
        7,
        tokio::time::Instant::now().into_std(),
    );
    let (rec_tx, mut rec_rx) = mpsc::channel(10_000);
    let driver = Driver::start(cfg, engine, outbound, rec_tx).await.unwrap();
    let api = driver.handle().clone();
    let attempts: Log<AttemptRecord> = Log::new();
    let log = attempts.clone();
    tokio::spawn(async move {
        while let Some(rec) = rec_rx.recv().await {
            if let Record::Attempt(a) = rec {
                log.push(a);
            }
        }
    });

    api.command(Command::UpsertQueue(Box::new(QueueConfig {
        id: QUEUE,
        name: "outbound".into(),
        offer_timeout: Duration::from_secs(2),
        wrapup: Duration::from_millis(200),
        announcements: Announcements {
            first_after: None,
            every: None,
            ..Announcements::default()
        },
        ..QueueConfig::default()
    })))
    .await
    .unwrap();
    for i in 0..4u32 {
        let agent = AgentId(i + 1);
        api.command(Command::UpsertAgent(Box::new(AgentConfig {
            id: agent,
            name: format!("agent {i}"),
            contact: format!("user/100{i}"),
            ..AgentConfig::default()
        })))
        .await
        .unwrap();
        api.command(Command::SetMemberships {
            agent,
            memberships: vec![Membership::new(QUEUE)],
        })
        .await
        .unwrap();
        api.command(Command::SetAgentPresence {
            agent,
            presence: Presence::Available,
        })
        .await
        .unwrap();
    }
    api.command(Command::UpsertCampaign(Box::new(CampaignConfig {
        id: CAMPAIGN,
        name: "wire".into(),
        mode: DialMode::Progressive,
        queue: QUEUE,
        dial: "sofia/gateway/carrier/{number}".into(),
        caller_id_number: "+15550100".into(),
        ring_timeout: Duration::from_secs(15),
        amd: AmdPolicy {
            enabled: true,
            on_machine: MachineAction::Drop,
            timeout: Duration::from_secs(3),
        },
        retry: RetryRules {
            busy: RetryRule::new(3600, 3),
            no_answer: RetryRule::new(3600, 3),
            ..RetryRules::default()
        },
        window: CallingWindow {
            start_minute: 0,
            end_minute: 24 * 60,
        },
        // Lines dialled customer-first (detection runs on them); the phones answer in 0.2 s.
        progressive_dial: switchyard_engine::dialer::connect::ProgressiveDial::CustomerFirst,
        ..CampaignConfig::default()
    })))
    .await
    .unwrap();
    api.command(Command::AddContacts {
        campaign: CAMPAIGN,
        contacts: (1..=4)
            .map(|i| ContactSpec {
                id: ContactId(i),
                number: number(i),
                zone: "UTC".into(),
                attempts: 0,
                not_before_unix_ms: 0,
            })
            .collect(),
    })
    .await
    .unwrap();
    api.command(Command::ControlCampaign {
        campaign: CAMPAIGN,
        control: CampaignControl::Start,
    })
    .await
    .unwrap();

    let done = eventually_within(LIMIT, "an attempt record per contact", || {
        let seen = attempts.snapshot();
        (seen.len() >= 4).then_some(seen)
    })
    .await;
    let outcome = |c: u64| {
        done.iter()
            .find(|a| a.contact == ContactId(c))
            .map(|a| (a.outcome, a.next))
            .unwrap_or_else(|| panic!("no attempt for contact {c}: {done:?}"))
    };
    assert_eq!(outcome(1), (AttemptOutcome::Connected, ContactNext::Done));
    assert_eq!(outcome(2).0, AttemptOutcome::Machine);
    assert_eq!(outcome(3).0, AttemptOutcome::Busy);
    assert_eq!(outcome(4).0, AttemptOutcome::NoAnswer);
    for c in 2..=4 {
        assert!(
            matches!(outcome(c).1, ContactNext::Retry { .. }),
            "contact {c} is tried again later"
        );
    }
    let person = done.iter().find(|a| a.contact == ContactId(1)).unwrap();
    assert!(person.agent.is_some() && person.answered_unix_ms.is_some());
    let stats = api
        .query(|e| e.campaign_stats(CAMPAIGN))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            stats.dialed,
            stats.connected,
            stats.machine,
            stats.busy,
            stats.no_answer
        ),
        (4, 1, 1, 1, 1)
    );
    assert_eq!(stats.abandoned, 0);
    drop(api);
    driver.shutdown().await.unwrap();
    sim.shutdown().await;
}
