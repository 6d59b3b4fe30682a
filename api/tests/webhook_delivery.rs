//! The engine's events delivered to webhook endpoints, over HTTP on loopback, on SQLite and
//! PostgreSQL: a caller of the fake switch answered by an agent reaches a real receiver as
//! `call.queued`, `call.answered`, `call.completed` and the agent's `agent.state_changed`,
//! every one signed (checked by the independent `standardwebhooks` crate), with ids as the
//! API shows them and one `webhook-id` per message; another tenant's endpoint gets nothing;
//! a receiver down for an hour gets everything after; replay and resend send again under the
//! same ids; a 410 disables the endpoint with a live event.

mod server_common;
mod store_common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use server_common::live::LiveStream;
use server_common::*;
use standardwebhooks::Webhook;
use switchyard_api::store::outbox::AgentStateRow;
use switchyard_esl::sim::{DtmfScript, InboundCall};

const DID: &str = "+15550100100";

/// One request a receiver got: the answer it gave, the headers, the body.
type Received = Arc<Mutex<Vec<(u16, HeaderMap, Vec<u8>)>>>;

struct Receiver {
    url: String,
    got: Received,
    status: Arc<AtomicU16>,
}

async fn receiver() -> Receiver {
    let got: Received = Arc::default();
    let status = Arc::new(AtomicU16::new(200));
    let (g, s) = (got.clone(), status.clone());
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (g, s) = (g.clone(), s.clone());
            async move {
                let code = s.load(Ordering::Relaxed);
                g.lock().unwrap().push((code, headers, body.to_vec()));
                (StatusCode::from_u16(code).unwrap(), "ok")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got, status }
}

impl Receiver {
    /// Every message taken (answered 2xx), by id: its type and body. Checks every signature
    /// (of every request, taken or not) against `secret`.
    fn taken(&self, secret: &str) -> BTreeMap<String, Value> {
        let wh = Webhook::new(secret).unwrap();
        let mut out = BTreeMap::new();
        for (code, headers, body) in self.got.lock().unwrap().iter() {
            // The worker's clock may have been moved hours ahead (the outage test): its
            // timestamps are then outside the crate's tolerance of now, so the signature is
            // checked with the crate's own signing of id.timestamp.body instead.
            let ts: i64 = headers["webhook-timestamp"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let now = jiff::Timestamp::now().as_second();
            if (ts - now).abs() < 300 {
                wh.verify(body, headers)
                    .expect("every request is signed as Standard Webhooks says");
            } else {
                let id = headers["webhook-id"].to_str().unwrap();
                let expected = wh.sign(id, ts, body).unwrap();
                let sent = headers["webhook-signature"].to_str().unwrap();
                assert!(
                    sent.split(' ').any(|sig| sig == expected),
                    "signed as Standard Webhooks says: {sent}"
                );
            }
            let id = headers["webhook-id"].to_str().unwrap().to_owned();
            let v: Value = serde_json::from_slice(body).unwrap();
            if (200..300).contains(code) {
                if let Some(seen) = out.get(&id) {
                    assert_eq!(seen, &v, "a message sent twice is the same message");
                }
                out.insert(id, v);
            }
        }
        out
    }

    fn requests(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

async fn until<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A tenant with a queue, an available agent, and a number whose flow goes to the queue.
async fn contact_center(s: &Server, key: &str) -> (i64, i64) {
    let (st, q) = s
        .call(
            "POST",
            "/v1/queues",
            Some(key),
            Some(json!({"name": "sales", "config": {}})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    let queue = q["id"].as_i64().unwrap();
    let agent = s.agent(key, "Ana", "user/1000").await;
    let (st, m) = s
        .call(
            "POST",
            &format!("/v1/queues/{queue}/members"),
            Some(key),
            Some(json!({"agent_id": agent})),
        )
        .await;
    assert!((200..300).contains(&st), "{m}");
    let (st, f) = s
        .call(
            "POST",
            "/v1/flows",
            Some(key),
            Some(json!({"name": "front door", "config": {
                "steps": [{"kind": "queue", "id": "sales", "queue": queue.to_string()}],
                "fallback": {"queue": queue.to_string()}
            }})),
        )
        .await;
    assert_eq!(st, 201, "{f}");
    let (st, n) = s
        .call(
            "POST",
            "/v1/numbers",
            Some(key),
            Some(json!({"number": DID, "flow": f["id"]})),
        )
        .await;
    assert_eq!(st, 201, "{n}");
    (queue, agent)
}

async fn set_available(s: &Server, key: &str, agent: i64) {
    let (st, a) = s
        .call(
            "PUT",
            &format!("/v1/agents/{agent}/state"),
            Some(key),
            Some(json!({"state": "available"})),
        )
        .await;
    assert_eq!(st, 200, "{a}");
}

async fn caller(s: &Server) -> String {
    s.switch
        .as_ref()
        .unwrap()
        .place_scripted_call(
            InboundCall {
                caller_number: "5557770001".into(),
                destination: DID.into(),
                talk_time: Some(Duration::from_secs(1)),
                ..InboundCall::default()
            },
            DtmfScript::new(Vec::new()).unwrap(),
        )
        .await
        .expect("the fake switch places the call")
}

async fn endpoint(s: &Server, key: &str, url: &str) -> (Value, String) {
    let (st, w) = s
        .call(
            "POST",
            "/v1/webhooks",
            Some(key),
            Some(json!({"url": url, "description": "crm"})),
        )
        .await;
    assert_eq!(st, 201, "{w}");
    let secret = w["secret"].as_str().unwrap().to_owned();
    (w["id"].clone(), secret)
}

fn of_type<'a>(taken: &'a BTreeMap<String, Value>, t: &str) -> Vec<&'a Value> {
    taken.values().filter(|v| v["type"] == t).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_reaches_the_endpoint_as_signed_events_with_api_ids() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        s.rt.allow_private_webhooks(true);
        let (_, key) = s.tenant("acme").await;
        let (_, other_key) = s.tenant("globex").await;
        let r = receiver().await;
        let theirs = receiver().await;
        let (_, secret) = endpoint(&s, &key, &r.url).await;
        endpoint(&s, &other_key, &theirs.url).await;
        let (queue, agent) = contact_center(&s, &key).await;
        set_available(&s, &key, agent).await;
        let leg = caller(&s).await;

        let taken = until("the call's events", Duration::from_secs(20), || {
            let t = r.taken(&secret);
            let done = ["call.queued", "call.answered", "call.completed"]
                .iter()
                .all(|ty| !of_type(&t, ty).is_empty());
            done.then_some(t)
        })
        .await;
        for ty in ["call.queued", "call.answered", "call.completed"] {
            let v = of_type(&taken, ty);
            assert_eq!(v.len(), 1, "one {ty}: {taken:?}");
            let data = &v[0]["data"];
            assert_eq!(data["call_id"], leg, "{ty}: {data}");
            assert_eq!(data["queue_id"], queue, "the API's queue id: {data}");
            assert!(
                v[0]["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
                "{}",
                v[0]
            );
        }
        let completed = of_type(&taken, "call.completed")[0];
        assert_eq!(completed["data"]["outcome"], "answered");
        assert_eq!(completed["data"]["agent_id"], agent, "the API's agent id");
        let answered = of_type(&taken, "call.answered")[0];
        assert_eq!(answered["data"]["agent_id"], agent);
        let states: Vec<&str> = of_type(&taken, "agent.state_changed")
            .iter()
            .filter_map(|v| v["data"]["state"].as_str())
            .collect();
        assert!(states.contains(&"available"), "{states:?}");
        assert!(states.contains(&"on-call"), "{states:?}");
        for v in of_type(&taken, "agent.state_changed") {
            assert_eq!(v["data"]["agent_id"], agent);
        }

        // The delivery log shows them (a pass files its attempts once they all ended); the
        // other tenant's receiver heard nothing of it.
        let path = format!("/v1/webhooks/{}/deliveries", r_id(&s, &key).await);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, log) = s.call("GET", &path, Some(&key), None).await;
            let logged: BTreeSet<&str> = log["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["delivered"] == true)
                .filter_map(|d| d["message_id"].as_str())
                .collect();
            if taken.keys().all(|id| logged.contains(id.as_str())) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "every delivery logged: {log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(theirs.requests(), 0, "tenant isolation");
        s.stop().await;
    })
    .await;
}

/// The first endpoint's id of the tenant.
async fn r_id(s: &Server, key: &str) -> Value {
    let (_, list) = s.call("GET", "/v1/webhooks", Some(key), None).await;
    list["webhooks"][0]["id"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_an_hour_gets_everything_after_and_replay_sends_it_again() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        s.rt.allow_private_webhooks(true);
        let started = jiff::Timestamp::now();
        let (tenant, key) = s.tenant("acme").await;
        let r = receiver().await;
        let (id, secret) = endpoint(&s, &key, &r.url).await;
        let (_, agent) = contact_center(&s, &key).await;
        // Down: every answer is a 503 for the next hour.
        r.status.store(503, Ordering::Relaxed);
        set_available(&s, &key, agent).await;
        caller(&s).await;
        caller(&s).await;
        let owed = until("the calls' events", Duration::from_secs(20), || {
            let n = r
                .got
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, h, b)| {
                    let _ = h;
                    serde_json::from_slice::<Value>(b).is_ok_and(|v| v["type"] == "call.completed")
                })
                .count();
            (n >= 2).then_some(())
        });
        owed.await;
        // An hour passes, in steps; every retry due meanwhile fails.
        let clock = s.rt.webhooks.clock().clone();
        for _ in 0..6 {
            clock.advance(Duration::from_secs(600));
            s.rt.webhooks.wake();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(r.taken(&secret).is_empty(), "nothing was taken while down");
        let tried = r.requests();
        // Back up; the schedule's next step (2 h after the 30 min one, ±20%) comes.
        r.status.store(200, Ordering::Relaxed);
        clock.advance(Duration::from_secs(3 * 3600));
        s.rt.webhooks.wake();
        let outbox = s.rt.store.outbox_messages(tenant).await.unwrap();
        let expected: BTreeSet<String> = outbox.iter().map(|(id, _, _)| id.clone()).collect();
        let taken = until(
            "everything after the outage",
            Duration::from_secs(20),
            || {
                let t = r.taken(&secret);
                (t.keys().cloned().collect::<BTreeSet<_>>() == expected).then_some(t)
            },
        )
        .await;
        assert!(
            tried > expected.len(),
            "retried while down ({tried} requests)"
        );
        assert!(taken.len() >= 8, "{taken:?}");
        let (_, log) = s
            .call(
                "GET",
                &format!("/v1/webhooks/{id}/deliveries"),
                Some(&key),
                None,
            )
            .await;
        let max_attempt = log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|d| d["attempt"].as_i64())
            .max()
            .unwrap();
        assert!(max_attempt >= 4, "the log numbers the attempts: {log}");

        // Replay since the start: everything again, under the same ids.
        let before = r.requests();
        let (st, rep) = s
            .call(
                "POST",
                &format!("/v1/webhooks/{id}/replay"),
                Some(&key),
                Some(json!({"since": started.to_string()})),
            )
            .await;
        assert_eq!(st, 202, "{rep}");
        assert_eq!(rep["queued"].as_u64(), Some(expected.len() as u64));
        until("the replay", Duration::from_secs(20), || {
            (r.requests() >= before + expected.len()).then_some(())
        })
        .await;
        let again: BTreeSet<String> = r.got.lock().unwrap()[before..]
            .iter()
            .map(|(_, h, _)| h["webhook-id"].to_str().unwrap().to_owned())
            .collect();
        assert_eq!(again, expected, "replayed under the same ids");

        // One message resent.
        let one = expected.iter().next().unwrap().clone();
        let before = r.requests();
        let (st, res) = s
            .call(
                "POST",
                &format!("/v1/webhooks/{id}/messages/{one}/resend"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(st, 202, "{res}");
        until("the resend", Duration::from_secs(20), || {
            (r.requests() > before).then_some(())
        })
        .await;
        assert_eq!(
            r.got.lock().unwrap()[before].1["webhook-id"]
                .to_str()
                .unwrap(),
            one
        );
        let (st, e) = s
            .call(
                "POST",
                &format!("/v1/webhooks/{id}/messages/msg_nothing/resend"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(st, 404, "{e}");
        let (st, e) = s
            .call(
                "POST",
                &format!("/v1/webhooks/{id}/replay"),
                Some(&key),
                Some(json!({"since": "yesterday"})),
            )
            .await;
        assert_eq!(st, 422, "{e}");
        assert_eq!(e["error"]["field"], "since");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_from_the_receiver_disables_the_endpoint_and_says_so_on_the_live_feed() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        s.rt.allow_private_webhooks(true);
        let (_, key) = s.tenant("acme").await;
        let r = receiver().await;
        r.status.store(410, Ordering::Relaxed);
        let (id, _) = endpoint(&s, &key, &r.url).await;
        let mut live = LiveStream::open(&s, &key, None).await;
        let (_, agent) = contact_center(&s, &key).await;
        set_available(&s, &key, agent).await;
        let ev = loop {
            let ev = live
                .next(Duration::from_secs(20))
                .await
                .expect("endpoint.disabled on the feed");
            if ev.event == "endpoint.disabled" {
                break ev.data;
            }
        };
        assert_eq!(ev["id"], id, "{ev}");
        assert_eq!(ev["reason"], "gone", "{ev}");
        let (_, w) = s
            .call("GET", &format!("/v1/webhooks/{id}"), Some(&key), None)
            .await;
        assert_eq!(w["enabled"], false, "{w}");
        // Nothing more is sent to it.
        let n = r.requests();
        caller(&s).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(r.requests(), n);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_controls_make_their_messages_and_a_stop_completes_once() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, key) = s.tenant("acme").await;
        let (st, q) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&key),
                Some(json!({"name": "out"})),
            )
            .await;
        assert_eq!(st, 201, "{q}");
        let (st, c) = s
            .call(
                "POST",
                "/v1/campaigns",
                Some(&key),
                Some(
                    json!({"name": "c", "config": {"queue": q["id"], "caller_id": "+12015550100"}}),
                ),
            )
            .await;
        assert_eq!(st, 201, "{c}");
        let cid = c["id"].as_i64().unwrap();
        for verb in ["start", "pause", "resume", "stop"] {
            let (st, r) = s
                .call(
                    "POST",
                    &format!("/v1/campaigns/{cid}/{verb}"),
                    Some(&key),
                    None,
                )
                .await;
            assert_eq!(st, 200, "{verb}: {r}");
        }
        // The engine's own record of the stop comes too; give it time to be filed.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let messages = s.rt.store.outbox_messages(tenant).await.unwrap();
        let campaign: Vec<&str> = messages
            .iter()
            .filter(|(_, t, _)| t.starts_with("campaign."))
            .map(|(_, t, _)| t.as_str())
            .collect();
        assert_eq!(
            campaign,
            [
                "campaign.started",
                "campaign.paused",
                "campaign.started",
                "campaign.completed"
            ]
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_hangs_does_not_hold_back_the_others() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        s.rt.allow_private_webhooks(true);
        let (tenant, key) = s.tenant("acme").await;
        // One receiver never answers within the 15 s timeout; the other answers at once.
        let hung = Arc::new(Mutex::new(0usize));
        let h = hung.clone();
        let app = Router::new().route(
            "/hook",
            post(move || {
                let h = h.clone();
                async move {
                    *h.lock().unwrap() += 1;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hung_url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let quick = receiver().await;
        endpoint(&s, &key, &hung_url).await;
        let (_, secret) = endpoint(&s, &key, &quick.url).await;

        let file = |from: i64, n: i64| {
            let store = s.rt.store.clone();
            async move {
                let at = jiff::Timestamp::now().as_millisecond();
                let rows: Vec<AgentStateRow> = (from..from + n)
                    .map(|agent| AgentStateRow {
                        tenant,
                        agent_id: agent,
                        at_ms: at,
                        state: "available".into(),
                        reason: None,
                    })
                    .collect();
                store.insert_agent_states(&rows).await.unwrap();
            }
        };
        // The first messages: the hanging endpoint's attempts take their slots and hang.
        file(1, 40).await;
        s.rt.webhooks.wake();
        until(
            "the hanging endpoint is being tried",
            Duration::from_secs(10),
            || (*hung.lock().unwrap() > 0).then_some(()),
        )
        .await;
        until(
            "the quick endpoint has the first messages",
            Duration::from_secs(10),
            || (quick.taken(&secret).len() == 40).then_some(()),
        )
        .await;
        // Messages made while those attempts hang reach the quick endpoint long before the
        // hanging attempts time out (15 s).
        let started = tokio::time::Instant::now();
        file(100, 40).await;
        s.rt.webhooks.wake();
        until(
            "the quick endpoint has the later messages",
            Duration::from_secs(5),
            || (quick.taken(&secret).len() == 80).then_some(()),
        )
        .await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "delivered while the other endpoint hangs"
        );
        // The hanging endpoint holds a bounded share of the slots, not all of them.
        let tried = *hung.lock().unwrap();
        assert!(
            (1..=switchyard_api::webhooks::worker::PER_ENDPOINT).contains(&tried),
            "the hanging endpoint has at most its share in flight: {tried}"
        );
        s.stop().await;
    })
    .await;
}
