//! Tenants reach only what the platform admin granted them (issue 17, item 1): every field
//! that reaches FreeSWITCH is refused with 422 naming the field when it names another tenant's
//! endpoint, an unlisted gateway, caller id or destination, or carries dial-string syntax; and
//! on the wire, the fake switch is never asked to originate anything but the granted phone.
//! On both storage backends, over real HTTP on loopback.

#[path = "server_common/mod.rs"]
mod server_common;
#[path = "store_common/mod.rs"]
mod store_common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::model::Role;
use switchyard_esl::client::{Auth, Client, ClientConfig, ClientEvent};

/// Every character FreeSWITCH reads as syntax in an originate or a transfer.
const INJECTIONS: [&str; 9] = ["{", "}", ",", "^^", "&", "|", "\n", "'", " "];

fn acme_grants() -> Value {
    json!({
        "agent_endpoints": ["user/{ext}@acme.example.com"],
        "gateways": ["acme-carrier"],
        "caller_ids": ["+1555123*"],
        "destinations": ["acme-vm-*"]
    })
}

/// The field a 422 names.
fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

/// Outbound channels the fake switch creates, by destination number.
async fn watch_originates(s: &Server) -> (Client, Arc<Mutex<BTreeSet<String>>>) {
    let addr = s.switch.as_ref().unwrap().local_addr();
    let (client, mut events) = Client::connect(
        ClientConfig::new(addr.to_string(), Auth::Password("ClueCon".into()))
            .events("CHANNEL_CREATE"),
    )
    .await
    .unwrap();
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let ClientEvent::Event(e) = ev
                && e.header("Call-Direction").as_deref() == Some("outbound")
            {
                let dest = e
                    .header("Caller-Destination-Number")
                    .map(|v| v.into_owned())
                    .unwrap_or_default();
                log.lock().unwrap().insert(dest);
            }
        }
    });
    (client, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_reaches_only_what_the_platform_granted_it() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_observer, originated) = watch_originates(&s).await;
        let platform = s.key(None, Role::PlatformAdmin).await;
        let (acme, key) = s.tenant("acme").await;
        let k = Some(key.as_str());
        let grants_path = format!("/v1/platform-admin/tenants/{}/grants", acme.0);

        // Only the platform admin sets grants, and grants cannot carry syntax themselves.
        let (st, _) = s.call("PUT", &grants_path, k, Some(acme_grants())).await;
        assert_eq!(st, 403);
        for bad in INJECTIONS {
            let g = json!({"gateways": [format!("acme{bad}carrier")]});
            let (st, e) = s.call("PUT", &grants_path, Some(&platform), Some(g)).await;
            assert_eq!((st, field(&e)), (422, "gateways[0]"), "{bad:?}: {e}");
        }
        let (st, g) = s
            .call("PUT", &grants_path, Some(&platform), Some(acme_grants()))
            .await;
        assert_eq!(st, 200, "{g}");
        assert_eq!(g["grants"], acme_grants());
        assert_eq!(g["outside"], json!([]));

        // Agent contacts: another tenant's phone, a bare extension, other endpoint kinds, a
        // carrier gateway, and every injection character.
        let mut contacts: Vec<String> = [
            "user/1002@beta.example.com",
            "user/1003",
            "loopback/1003",
            "error/user_busy",
            "sofia/gateway/default/+19005550100",
            "user/1001@acme.example.com@beta.example.com",
        ]
        .map(String::from)
        .to_vec();
        contacts.extend(INJECTIONS.map(|c| format!("user/10{c}01@acme.example.com")));
        for c in &contacts {
            let (st, e) = s
                .call("POST", "/v1/agents", k, Some(json!({"name": "Eve", "config": {"contact": c}})))
                .await;
            assert_eq!(st, 422, "{c:?}: {e}");
            assert!(field(&e).ends_with("contact"), "{c:?}: {e}");
        }
        let ana = s.agent(&key, "Ana", "user/1001@acme.example.com").await;
        let (st, e) = s
            .call("PATCH", &format!("/v1/agents/{ana}"), k, Some(json!({"config": {"contact": "user/1002@beta.example.com"}})))
            .await;
        assert_eq!(st, 422, "{e}");
        assert!(field(&e).ends_with("contact"), "{e}");

        // Queues: exits' destinations and the callback dial string.
        let queue = |config: Value| json!({"name": "sales", "config": config});
        for (config, want) in [
            (json!({"on_timeout": {"to": "voicemail", "destination": "beta-vm-1"}, "max_wait_s": 60.0}), "on_timeout.destination"),
            (json!({"on_no_agents": {"to": "transfer", "destination": "9001"}}), "on_no_agents.destination"),
            (json!({"callback_dial": "sofia/gateway/beta-carrier/{number}"}), "callback_dial"),
            (json!({"callback_dial": "user/{number}"}), "callback_dial"),
        ] {
            let (st, e) = s.call("POST", "/v1/queues", k, Some(queue(config.clone()))).await;
            assert_eq!(st, 422, "{config}: {e}");
            assert!(field(&e).ends_with(want), "{config}: {e}");
        }
        let (st, q) = s
            .call("POST", "/v1/queues", k, Some(queue(json!({
                "numbers": ["5000"],
                "on_timeout": {"to": "voicemail", "destination": "acme-vm-sales"},
                "max_wait_s": 60.0,
                "callback_dial": "sofia/gateway/acme-carrier/9{number}"
            }))))
            .await;
        assert_eq!(st, 201, "{q}");
        let qid = q["id"].as_i64().unwrap();

        // Campaigns: the dial string's gateway and the caller id presented.
        let campaign = |dial: &str, cid: &str| {
            json!({"name": "out", "config": {"queue": qid, "dial": dial, "caller_id": cid}})
        };
        for (body, want) in [
            (campaign("sofia/gateway/alpha-carrier/{number}", "+15551230000"), "dial"),
            (campaign("loopback/{number}", "+15551230000"), "dial"),
            (campaign("sofia/gateway/acme-carrier/{number}", "+19005550100"), "caller_id"),
        ] {
            let (st, e) = s.call("POST", "/v1/campaigns", k, Some(body.clone())).await;
            assert_eq!(st, 422, "{body}: {e}");
            assert!(field(&e).ends_with(want), "{body}: {e}");
        }
        for bad in INJECTIONS {
            let body = campaign(&format!("sofia/gateway/acme-carrier/{bad}{{number}}"), "");
            let (st, e) = s.call("POST", "/v1/campaigns", k, Some(body)).await;
            assert_eq!(st, 422, "{bad:?}: {e}");
        }
        let (st, c) = s
            .call("POST", "/v1/campaigns", k, Some(campaign("sofia/gateway/acme-carrier/{number}", "+15551230000")))
            .await;
        assert_eq!(st, 201, "{c}");

        // A supervisor's phone for monitoring is an endpoint like any other.
        let (st, e) = s
            .call("POST", &format!("/v1/agents/{ana}/monitor"), k, Some(json!({"dial": "user/1004@beta.example.com", "mode": "listen"})))
            .await;
        assert_eq!(st, 422, "{e}");
        assert_eq!(field(&e), "dial", "{e}");

        // On the wire: a caller reaches Ana, and the switch was asked to ring her phone only.
        let (st, _) = s
            .call("POST", &format!("/v1/queues/{qid}/members"), k, Some(json!({"agent_id": ana})))
            .await;
        assert_eq!(st, 201);
        let (st, _) = s
            .call("PUT", &format!("/v1/agents/{ana}/state"), k, Some(json!({"state": "available"})))
            .await;
        assert_eq!(st, 200);
        s.switch
            .as_ref()
            .unwrap()
            .place_inbound_call(switchyard_esl::sim::InboundCall {
                caller_number: "5550000".into(),
                destination: "5000".into(),
                talk_time: Some(Duration::from_millis(300)),
                ..switchyard_esl::sim::InboundCall::default()
            })
            .await
            .expect("the fake switch places the call");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (_, calls) = s.call("GET", "/v1/calls", k, None).await;
            if calls["calls"].as_array().is_some_and(|c| !c.is_empty()) {
                assert_eq!(calls["calls"][0]["outcome"], "answered", "{calls}");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "no call record: {calls}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = originated.lock().unwrap().clone();
        assert_eq!(seen, BTreeSet::from(["1001".to_owned()]), "originated: {seen:?}");

        // Narrowing the grants reports the rows now outside them.
        let (st, g) = s
            .call("PUT", &grants_path, Some(&platform), Some(json!({"agent_endpoints": ["user/{ext}@acme.example.com"]})))
            .await;
        assert_eq!(st, 200, "{g}");
        let outside: BTreeSet<String> = g["outside"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| format!("{} {}", o["kind"].as_str().unwrap(), o["field"].as_str().unwrap()))
            .collect();
        assert!(outside.contains("queue on_timeout.destination"), "{g}");
        assert!(outside.contains("campaign caller_id"), "{g}");
        assert!(!outside.iter().any(|o| o.starts_with("agent")), "{g}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_with_no_grants_reaches_nothing() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let t = store.create_tenant("bare", &audit()).await.unwrap();
        let (_, key) = store
            .create_api_key(Some(t.id), Role::Admin, None, "admin", None, &audit())
            .await
            .unwrap();
        let (st, e) = s
            .call(
                "POST",
                "/v1/agents",
                Some(&key),
                Some(json!({"name": "Ana", "config": {"contact": "user/1000"}})),
            )
            .await;
        assert_eq!(st, 422, "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no phone endpoints are granted"),
            "{e}"
        );
        s.stop().await;
    })
    .await;
}

/// The agent's state as `GET /v1/agents/{id}/state` reads it (status, state).
async fn agent_state(s: &Server, key: &str, agent: i64) -> (u16, Value) {
    let (st, v) = s
        .call("GET", &format!("/v1/agents/{agent}/state"), Some(key), None)
        .await;
    (st, v["state"].clone())
}

/// Narrowed grants take effect in the running engine at once, not at the next start: an idle
/// agent, an idle queue and a campaign are unloaded; an agent on a call keeps it but is
/// logged out and may not log in again; a queue with callers keeps them, its withdrawn exits
/// hanging up instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowed_grants_take_effect_in_the_running_engine_at_once() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let platform = s.key(None, Role::PlatformAdmin).await;
        let (acme, key) = s.tenant("acme").await;
        let k = Some(key.as_str());
        let grants_path = format!("/v1/platform-admin/tenants/{}/grants", acme.0);
        let (st, g) = s
            .call("PUT", &grants_path, Some(&platform), Some(acme_grants()))
            .await;
        assert_eq!(st, 200, "{g}");

        let ida = s.agent(&key, "Ida", "user/1001@acme.example.com").await;
        let bea = s.agent(&key, "Bea", "user/1002@acme.example.com").await;
        let (st, busy) = s
            .call("POST", "/v1/queues", k, Some(json!({"name": "busy", "config": {
                "numbers": ["5000"],
                "on_timeout": {"to": "voicemail", "destination": "acme-vm-sales"},
                "max_wait_s": 600.0,
            }})))
            .await;
        assert_eq!(st, 201, "{busy}");
        let busy = busy["id"].as_i64().unwrap();
        let (st, idle) = s
            .call("POST", "/v1/queues", k, Some(json!({"name": "idle", "config": {
                "on_no_agents": {"to": "transfer", "destination": "acme-vm-idle"},
            }})))
            .await;
        assert_eq!(st, 201, "{idle}");
        let idle = idle["id"].as_i64().unwrap();
        let (st, c) = s
            .call("POST", "/v1/campaigns", k, Some(json!({"name": "out", "config": {
                "queue": idle, "dial": "sofia/gateway/acme-carrier/{number}",
                "caller_id": "+15551230000",
            }})))
            .await;
        assert_eq!(st, 201, "{c}");
        let campaign = c["id"].as_i64().unwrap();
        for (path, body) in [
            (format!("/v1/queues/{busy}/members"), json!({"agent_id": bea})),
            (format!("/v1/agents/{bea}/state"), json!({"state": "available"})),
        ] {
            let method = if path.ends_with("state") { "PUT" } else { "POST" };
            let (st, e) = s.call(method, &path, k, Some(body)).await;
            assert!((200..300).contains(&st), "{path}: {e}");
        }
        // Bea takes a long call, and a second caller waits behind it.
        let switch = s.switch.as_ref().unwrap();
        for n in ["5550001", "5550002"] {
            switch
                .place_inbound_call(switchyard_esl::sim::InboundCall {
                    caller_number: n.into(),
                    destination: "5000".into(),
                    talk_time: Some(Duration::from_secs(120)),
                    ..switchyard_esl::sim::InboundCall::default()
                })
                .await
                .expect("the fake switch places the call");
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while agent_state(&s, &key, bea).await.1 != "on-call" {
            assert!(tokio::time::Instant::now() < deadline, "Bea never took the call");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Every phone, destination and caller id withdrawn.
        let narrow = json!({"agent_endpoints": ["user/{ext}@other.example.com"], "gateways": ["acme-carrier"]});
        let (st, g) = s.call("PUT", &grants_path, Some(&platform), Some(narrow)).await;
        assert_eq!(st, 200, "{g}");
        let applied: BTreeSet<String> = g["applied"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{} {} {}", a["kind"].as_str().unwrap(), a["id"], a["action"].as_str().unwrap()))
            .collect();
        let want: BTreeSet<String> = [
            format!("agent {ida} unloaded"),
            format!("agent {bea} logged-out"),
            format!("queue {busy} restricted"),
            format!("queue {idle} unloaded"),
            format!("campaign {campaign} unloaded"),
        ]
        .into();
        assert_eq!(applied, want, "{g}");

        // Ida is gone from the engine; Bea keeps her call, logged out, and may not log in.
        assert_eq!(agent_state(&s, &key, ida).await.0, 404);
        assert_eq!(agent_state(&s, &key, bea).await, (200, json!("on-call")));
        let (st, e) = s
            .call("PUT", &format!("/v1/agents/{bea}/state"), k, Some(json!({"state": "available"})))
            .await;
        assert_eq!((st, field(&e)), (409, "config.contact"), "{e}");
        // The busy queue keeps its callers; its voicemail exit now hangs up. The idle queue and
        // the campaign run no more.
        let stored_busy = s.rt.ids.decode(switchyard_api::ids::IdKind::Queue, busy).unwrap();
        let stored_idle = s.rt.ids.decode(switchyard_api::ids::IdKind::Queue, idle).unwrap();
        let (exit, idle_runs, campaigns) = s
            .rt
            .engine
            .query(move |e| {
                let q = switchyard_engine::QueueId(stored_busy as u32);
                (
                    e.queue_config(q).map(|c| c.on_timeout.clone()),
                    e.queue_ids().any(|q| i64::from(q.0) == stored_idle),
                    e.campaign_ids().count(),
                )
            })
            .await
            .unwrap();
        assert_eq!(exit, Some(switchyard_engine::Exit::Hangup));
        assert!(!idle_runs);
        assert_eq!(campaigns, 0);
        let (st, waiting) = s.call("GET", &format!("/v1/queues/{busy}/calls"), k, None).await;
        assert_eq!(st, 200, "{waiting}");
        assert_eq!(waiting["calls"].as_array().map(Vec::len), Some(1), "{waiting}");

        // A contact within the new grants lets Bea log in again.
        let (st, e) = s
            .call("PATCH", &format!("/v1/agents/{bea}"), k, Some(json!({"config": {"contact": "user/1002@other.example.com"}})))
            .await;
        assert_eq!(st, 200, "{e}");
        let (st, e) = s
            .call("PUT", &format!("/v1/agents/{bea}/state"), k, Some(json!({"state": "available"})))
            .await;
        assert_eq!(st, 200, "{e}");
        s.stop().await;
    })
    .await;
}
