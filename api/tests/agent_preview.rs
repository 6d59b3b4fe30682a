//! Desktop previews over real HTTP on both backends: the live feed carries the reservation to
//! the agent with the contact's fields, the agent's key accepts or skips its own reservation
//! (`POST /v1/calls/{id}/preview/accept|skip`), typed errors for everyone else.

#[path = "server_common/mod.rs"]
mod server_common;
#[path = "store_common/mod.rs"]
mod store_common;

use std::time::Duration;

use serde_json::{Value, json};
use server_common::live::LiveStream;
use server_common::*;
use switchyard_api::model::Role;

/// A desktop-preview campaign on a new queue whose one member is `agent` (made available by
/// its own `desk` key), with one contact carrying fields; started. Returns the campaign id.
async fn desktop_campaign(s: &Server, admin: &str, agent: i64, desk: &str) -> i64 {
    campaign_with(
        s,
        admin,
        agent,
        desk,
        json!({"mode": "preview", "preview_accept": "desktop", "preview_timeout_s": 120}),
    )
    .await
}

/// A campaign with these settings (merged over the common ones), as [`desktop_campaign`].
async fn campaign_with(s: &Server, admin: &str, agent: i64, desk: &str, mode: Value) -> i64 {
    let (st, q) = s
        .call(
            "POST",
            "/v1/queues",
            Some(admin),
            Some(json!({"name": "outbound"})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    let qid = q["id"].as_i64().unwrap();
    let mut config = json!({
        "queue": qid, "caller_id": "+12015550100",
        "dispositions": ["sale", "no-sale", "call-back"],
        "window": {"start": "00:00", "end": "24:00"}
    });
    for (k, v) in mode.as_object().unwrap() {
        config[k] = v.clone();
    }
    let (st, c) = s
        .call(
            "POST",
            "/v1/campaigns",
            Some(admin),
            Some(json!({"name": "renewals", "config": config})),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    let cid = c["id"].as_i64().unwrap();
    let (st, e) = s
        .call(
            "POST",
            &format!("/v1/queues/{qid}/members"),
            Some(admin),
            Some(json!({"agent_id": agent})),
        )
        .await;
    assert_eq!(st, 201, "{e}");
    let (st, e) = s
        .call(
            "PUT",
            &format!("/v1/agents/{agent}/state"),
            Some(desk),
            Some(json!({"state": "available"})),
        )
        .await;
    assert_eq!(st, 200, "{e}");
    let (st, r) = s
        .raw(
            "POST",
            &format!("/v1/campaigns/{cid}/contacts"),
            admin,
            "text/csv",
            b"phone,name,plan\n+12015550123,Jane Roe,gold\n".to_vec(),
        )
        .await;
    assert_eq!((st, &r["accepted"]), (200, &json!(1)), "{r}");
    let (st, e) = s
        .call(
            "POST",
            &format!("/v1/campaigns/{cid}/start"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(st, 200, "{e}");
    cid
}

/// The next live event of this kind (others skipped), within `wait`.
async fn next_of(live: &mut LiveStream, kind: &str, wait: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ev = live
            .next(left)
            .await
            .unwrap_or_else(|| panic!("no {kind} within {wait:?}"));
        if ev.event == kind {
            return ev.data;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sees_its_desktop_preview_with_the_contact_and_accepts_it() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let bob = s.agent(&admin, "Bob", "user/1001").await;
        let anas_desk = s.agent_key(tenant, ana).await;
        let bobs_desk = s.agent_key(tenant, bob).await;
        let reader = s.key(Some(tenant), Role::ReadOnly).await;
        let mut live = LiveStream::open(&s, &anas_desk, None).await;
        let mut bobs_live = LiveStream::open(&s, &bobs_desk, None).await;
        let mut readers_live = LiveStream::open(&s, &reader, None).await;
        let cid = desktop_campaign(&s, &admin, ana, &anas_desk).await;

        // The reservation at once, then the store's details of the contact as a second delta.
        let p = next_of(&mut live, "call.preview", Duration::from_secs(20)).await;
        assert_eq!(p["state"], "reserved", "{p}");
        assert_eq!(p["preview"], true);
        assert_eq!(p["agent_id"], json!(ana));
        assert_eq!(p["campaign_id"], json!(cid));
        assert_eq!(p["contact_number"], "+12015550123");
        assert!(p["expires_ms"].as_u64().unwrap() > 0);
        let call = p["id"].as_str().unwrap().to_owned();
        let d = next_of(&mut live, "call.preview", Duration::from_secs(5)).await;
        assert_eq!(
            (d["id"].as_str(), &d["agent_id"]),
            (Some(call.as_str()), &json!(ana))
        );
        assert_eq!(d["campaign_name"], "renewals");
        assert_eq!(d["contact_number"], "+12015550123");
        assert_eq!(
            d["contact_fields"],
            json!({"name": "Jane Roe", "plan": "gold"})
        );
        assert_eq!(d["dispositions"], json!(["sale", "no-sale", "call-back"]));
        // Another agent and a read-only key see that a contact is reserved, not whom.
        for (who, feed) in [("Bob", &mut bobs_live), ("read-only", &mut readers_live)] {
            for _ in 0..2 {
                let seen = next_of(feed, "call.preview", Duration::from_secs(5)).await;
                assert_eq!(seen["contact_number"], "+*********23", "{who}: {seen}");
                assert!(seen.get("contact_fields").is_none(), "{who}: {seen}");
            }
        }
        drop((bobs_live, readers_live));
        // A page opened now (or reloaded) finds the reservation, fields and all, in its
        // snapshot.
        let mut later = LiveStream::open(&s, &anas_desk, None).await;
        let snap = later
            .next(Duration::from_secs(5))
            .await
            .expect("a snapshot");
        assert_eq!(snap.event, "snapshot");
        let shown = snap.data["state"]["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == json!(call))
            .cloned()
            .expect("the reservation is in the snapshot");
        assert_eq!(
            (
                &shown["state"],
                &shown["agent_id"],
                &shown["contact_fields"]
            ),
            (
                &json!("reserved"),
                &json!(ana),
                &json!({"name": "Jane Roe", "plan": "gold"})
            ),
            "{shown}"
        );
        drop(later);
        let accept = format!("/v1/calls/{call}/preview/accept");

        // Only Ana's key (or a supervisor) takes Ana's reservation.
        let (st, e) = s.call("POST", &accept, Some(&bobs_desk), None).await;
        assert_eq!((st, error_code(&e)), (409, "conflict"), "Bob: {e}");
        let (st, e) = s.call("POST", &accept, Some(&reader), None).await;
        assert_eq!(st, 403, "read-only: {e}");
        let (other, other_admin) = s.tenant("other").await;
        let carl = s.agent(&other_admin, "Carl", "user/1002").await;
        let carls_desk = s.agent_key(other, carl).await;
        let (st, e) = s.call("POST", &accept, Some(&carls_desk), None).await;
        assert_eq!(
            (st, error_code(&e)),
            (404, "not_found"),
            "other tenant: {e}"
        );
        let (st, e) = s
            .call(
                "POST",
                &format!("/v1/calls/{}/preview/accept", uuid::Uuid::new_v4()),
                Some(&anas_desk),
                None,
            )
            .await;
        assert_eq!(
            (st, error_code(&e)),
            (404, "not_found"),
            "no such call: {e}"
        );

        let (st, r) = s.call("POST", &accept, Some(&anas_desk), None).await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(r, json!({"id": call, "result": "accepted"}));
        let (st, e) = s.call("POST", &accept, Some(&anas_desk), None).await;
        assert_eq!(
            (st, error_code(&e)),
            (409, "conflict"),
            "accepted once: {e}"
        );

        // The fake switch answers Ana's phone, then the customer: the call is Ana's, under
        // the id the preview had.
        let t = next_of(&mut live, "call.answered", Duration::from_secs(30)).await;
        assert_eq!(
            (t["id"].as_str(), &t["agent_id"]),
            (Some(call.as_str()), &json!(ana))
        );
        // The campaign lists its codes: one it does not list is refused, naming the field.
        let (st, e) = s
            .call(
                "POST",
                &format!("/v1/calls/{call}/disposition"),
                Some(&anas_desk),
                Some(json!({"code": "maybe"})),
            )
            .await;
        assert_eq!((st, error_code(&e)), (422, "invalid_field"), "{e}");
        assert_eq!(e["error"]["field"], "code", "{e}");
        let (st, d) = s
            .call(
                "POST",
                &format!("/v1/calls/{call}/disposition"),
                Some(&anas_desk),
                Some(json!({"code": "call-back", "retry_at": "2030-01-02T15:00:00Z"})),
            )
            .await;
        assert_eq!(st, 202, "Ana disposes the preview she took: {d}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_desktop_preview_leaves_the_agents_screen_and_cannot_be_skipped_twice() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let anas_desk = s.agent_key(tenant, ana).await;
        let supervisor = s.key(Some(tenant), Role::Supervisor).await;
        let mut live = LiveStream::open(&s, &anas_desk, None).await;
        desktop_campaign(&s, &admin, ana, &anas_desk).await;
        let p = next_of(&mut live, "call.preview", Duration::from_secs(20)).await;
        let call = p["id"].as_str().unwrap().to_owned();
        let skip = format!("/v1/calls/{call}/preview/skip");
        let (st, r) = s.call("POST", &skip, Some(&anas_desk), None).await;
        assert_eq!((st, &r["result"]), (200, &json!("skipped")), "{r}");
        let ended = next_of(&mut live, "call.preview_ended", Duration::from_secs(5)).await;
        assert_eq!(
            (
                ended["id"].as_str(),
                &ended["state"],
                &ended["preview_ended"]
            ),
            (Some(call.as_str()), &json!("waiting"), &json!("skipped"))
        );
        // Ana's reject delay (10 s) keeps the contact waiting: nothing is reserved now.
        let (st, e) = s.call("POST", &skip, Some(&supervisor), None).await;
        assert_eq!((st, error_code(&e)), (409, "conflict"), "{e}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progressive_campaign_call_carries_its_contacts_fields_in_the_live_feed() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let anas_desk = s.agent_key(tenant, ana).await;
        let supervisor = s.key(Some(tenant), Role::Supervisor).await;
        let mut live = LiveStream::open(&s, &supervisor, None).await;
        let mut anas_live = LiveStream::open(&s, &anas_desk, None).await;
        let cid = campaign_with(
            &s,
            &admin,
            ana,
            &anas_desk,
            json!({"mode": "progressive", "progressive_dial": "customer-first"}),
        )
        .await;
        // The customer answers: a person in the campaign's queue, with whom Ana will talk.
        // Two deltas: the engine's facts, then the store's details looked up aside. The
        // supervisor sees them whole.
        let one = next_of(&mut live, "call.contact", Duration::from_secs(30)).await;
        let two = next_of(&mut live, "call.contact", Duration::from_secs(10)).await;
        assert_eq!(one["id"], two["id"], "{one} {two}");
        for d in [&one, &two] {
            assert_eq!(
                (&d["campaign_id"], &d["contact_number"]),
                (&json!(cid), &json!("+12015550123")),
                "{d}"
            );
        }
        assert_eq!(
            (&two["contact_fields"], &two["campaign_name"]),
            (
                &json!({"name": "Jane Roe", "plan": "gold"}),
                &json!("renewals")
            ),
            "{two}"
        );
        // Ana: the person is no one's while it waits (masked, no fields); once the call is
        // hers, the contact whole, fields and all, whichever came first of the answer and the
        // details.
        let call = one["id"].clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut hers = json!({});
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ev = anas_live
                .next(left)
                .await
                .unwrap_or_else(|| panic!("Ana never saw her contact whole: {hers}"));
            if ev.data["id"] != call {
                continue;
            }
            if ev.data["agent_id"] != json!(ana) {
                assert_ne!(ev.data["contact_number"], "+12015550123", "{ev:?}");
                assert!(ev.data.get("contact_fields").is_none(), "{ev:?}");
            }
            if let (Value::Object(h), Value::Object(d)) = (&mut hers, &ev.data) {
                h.extend(d.clone());
            }
            if hers["agent_id"] == json!(ana)
                && hers["contact_number"] == "+12015550123"
                && hers["contact_fields"] == json!({"name": "Jane Roe", "plan": "gold"})
            {
                break;
            }
        }
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_a_desktop_preview_reserves_the_same_contact_again() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let (tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let anas_desk = s.agent_key(tenant, ana).await;
        let mut live = LiveStream::open(&s, &anas_desk, None).await;
        let cid = desktop_campaign(&s, &admin, ana, &anas_desk).await;
        let p = next_of(&mut live, "call.preview", Duration::from_secs(20)).await;
        let (first, contact) = (p["id"].clone(), p["contact_id"].clone());
        drop(live);
        s.stop().await;

        // The new process knows nothing of the reservation; the contact was never dialled,
        // so it is reserved again (to Ana, available as she was), not lost and not dialled.
        let s = Server::start(store).await;
        let mut live = LiveStream::open(&s, &anas_desk, None).await;
        // Boot reserves it before the feed is open (then it is in the snapshot), or after.
        let p = loop {
            let ev = live
                .next(Duration::from_secs(30))
                .await
                .expect("a reservation after the restart");
            if ev.event == "call.preview" {
                break ev.data;
            }
            if ev.event == "snapshot"
                && let Some(c) = ev.data["state"]["calls"]
                    .as_array()
                    .and_then(|calls| calls.iter().find(|c| c["state"] == "reserved"))
            {
                break c.clone();
            }
        };
        assert_eq!(
            (&p["agent_id"], &p["campaign_id"], &p["contact_id"]),
            (&json!(ana), &json!(cid), &contact),
            "{p}"
        );
        assert_eq!(p["contact_number"], "+12015550123");
        // The same id (these test runtimes draw leg ids from the same seed), or the old one
        // is gone.
        let call = p["id"].as_str().unwrap().to_owned();
        if call != first.as_str().unwrap() {
            let old = format!("/v1/calls/{}/preview/accept", first.as_str().unwrap());
            let (st, e) = s.call("POST", &old, Some(&anas_desk), None).await;
            assert!(
                st == 404 || st == 409,
                "the old reservation is gone: {st} {e}"
            );
        }
        let (st, r) = s
            .call(
                "POST",
                &format!("/v1/calls/{call}/preview/accept"),
                Some(&anas_desk),
                None,
            )
            .await;
        assert_eq!((st, &r["result"]), (200, &json!("accepted")), "{r}");
        let t = next_of(&mut live, "call.answered", Duration::from_secs(30)).await;
        assert_eq!(t["id"], json!(call), "{t}");
        s.stop().await;
    })
    .await;
}
