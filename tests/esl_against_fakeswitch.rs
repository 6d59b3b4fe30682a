//! switchyard's own ESL client and outbound server against the fake switch, over loopback:
//! the pieces meet the way the engine will use them.

use std::time::Duration;

use switchyard_esl::client::{Auth, Client, ClientConfig, ClientEvent, EventStream};
use switchyard_esl::server::{OutboundServer, ServerConfig, SessionEvent};
use switchyard_esl::sim::{Fault, InboundCall, SimConfig, SimHandle};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn fake_switch(config: SimConfig) -> SimHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    switchyard_esl::sim::spawn(listener, config, 42)
}

async fn client(sim: &SimHandle, events: &str) -> (Client, EventStream) {
    let cfg = ClientConfig::new(
        sim.local_addr().to_string(),
        Auth::Password("ClueCon".into()),
    )
    .events(events);
    timeout(LIMIT, Client::connect(cfg)).await.unwrap().unwrap()
}

/// The next event called `name` (other stream items are skipped).
async fn next_event(stream: &mut EventStream, name: &str) -> switchyard_esl::Event {
    loop {
        match timeout(LIMIT, stream.recv()).await.expect("event in time") {
            Some(ClientEvent::Event(e)) if e.name().as_deref() == Some(name) => return e,
            Some(_) => {}
            None => panic!("stream ended before {name}"),
        }
    }
}

#[tokio::test]
async fn bgapi_originate_answers_and_events_arrive_with_our_uuid() {
    let sim = fake_switch(SimConfig::default()).await;
    let (client, mut stream) = client(
        &sim,
        "CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE",
    )
    .await;
    let job = client
        .bgapi("originate {origination_uuid=it-1}user/1000 &park()")
        .await
        .unwrap();
    assert!(job.is_ok(), "{:?}", job.body_str());
    assert_eq!(job.body_str().trim(), "+OK it-1");
    let answer = next_event(&mut stream, "CHANNEL_ANSWER").await;
    assert_eq!(answer.unique_id().as_deref(), Some("it-1"));

    let killed = client.api("uuid_kill it-1 USER_BUSY").await.unwrap();
    assert_eq!(&killed[..], b"+OK\n");
    let done = next_event(&mut stream, "CHANNEL_HANGUP_COMPLETE").await;
    assert_eq!(done.unique_id().as_deref(), Some("it-1"));
    assert_eq!(done.hangup_cause().as_deref(), Some("USER_BUSY"));
    client.shutdown().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_restarted_switch_is_reported_and_the_client_carries_on() {
    let sim = fake_switch(SimConfig::default()).await;
    let before = sim.core_uuid().await;
    let (client, mut stream) = client(&sim, "CHANNEL_CREATE").await;
    match timeout(LIMIT, stream.recv()).await.unwrap() {
        Some(ClientEvent::Connected {
            core_uuid,
            switch_restarted,
        }) => {
            assert_eq!(core_uuid, before);
            assert!(!switch_restarted);
        }
        other => panic!("{other:?}"),
    }
    sim.inject(Fault::Restart).await;
    let after = loop {
        match timeout(LIMIT, stream.recv()).await.unwrap() {
            Some(ClientEvent::Connected {
                core_uuid,
                switch_restarted,
            }) => {
                assert!(switch_restarted, "a new Core-UUID is a restart");
                break core_uuid;
            }
            Some(_) => {}
            None => panic!("stream ended"),
        }
    };
    assert_ne!(after, before);
    assert_eq!(after, sim.core_uuid().await);
    // The re-applied subscription works on the new switch.
    client.bgapi("originate user/1001 &park()").await.unwrap();
    next_event(&mut stream, "CHANNEL_CREATE").await;
    client.shutdown().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn an_inbound_call_reaches_our_outbound_server_and_is_answered() {
    let mut server = OutboundServer::bind("127.0.0.1:0", ServerConfig::default())
        .await
        .unwrap();
    let config = SimConfig {
        inbound_target: Some(server.local_addr().to_string()),
        ..SimConfig::default()
    };
    let sim = fake_switch(config).await;
    let uuid = sim
        .place_inbound_call(InboundCall {
            caller_number: "+15551230000".into(),
            destination: "5000".into(),
            ..InboundCall::default()
        })
        .await
        .expect("an inbound call");
    let mut session = timeout(LIMIT, server.accept())
        .await
        .unwrap()
        .expect("a session");
    assert_eq!(session.uuid(), uuid);
    assert_eq!(
        session
            .channel_data()
            .header("Channel-Destination-Number")
            .as_deref(),
        Some("5000")
    );
    assert_eq!(
        session
            .channel_data()
            .header("Channel-Caller-ID-Number")
            .as_deref(),
        Some("+15551230000")
    );
    session.myevents().await.unwrap();
    session.linger(None).await.unwrap();
    let answered = timeout(LIMIT, session.execute("answer", None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answered.application().as_deref(), Some("answer"));
    session.hangup("NORMAL_CLEARING").await.unwrap();
    // With linger, the switch says the channel is gone and keeps the socket for us.
    let notice = loop {
        match timeout(LIMIT, session.next_event()).await.unwrap() {
            Some(SessionEvent::Disconnect { disposition, .. }) => break disposition,
            Some(_) => {}
            None => panic!("session ended without a notice"),
        }
    };
    assert_eq!(notice, Some(switchyard_esl::codec::Disposition::Linger));
    session.exit().await.unwrap();
    sim.shutdown().await;
}
