//! Campaigns, contacts (CSV import), DNC lists and dispositions over real HTTP on loopback, on
//! both storage backends (SQLite always, PostgreSQL when DATABASE_URL is set), with the engine
//! running against the in-process fake switch.

#[path = "server_common/mod.rs"]
mod server_common;
#[path = "store_common/mod.rs"]
mod store_common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::http::HttpConfig;
use switchyard_api::model::Role;
use switchyard_api::store::Store;

#[allow(dead_code)]
impl Server {
    async fn csv(&self, path: &str, key: &str, body: &str) -> (u16, Value) {
        self.raw("POST", path, key, "text/csv", body.as_bytes().to_vec())
            .await
    }

    /// A queue and a campaign on it; returns (queue id, campaign id).
    async fn campaign(&self, key: &str, name: &str) -> (i64, i64) {
        let (st, q) = self
            .call(
                "POST",
                "/v1/queues",
                Some(key),
                Some(json!({"name": format!("q-{name}")})),
            )
            .await;
        assert_eq!(st, 201, "{q}");
        let qid = q["id"].as_i64().unwrap();
        let (st, c) = self
            .call(
                "POST",
                "/v1/campaigns",
                Some(key),
                Some(json!({"name": name, "config": {"queue": qid, "caller_id": "+12015550100"}})),
            )
            .await;
        assert_eq!(st, 201, "{c}");
        (qid, c["id"].as_i64().unwrap())
    }

    async fn contacts(&self, key: &str, cid: i64, query: &str) -> Vec<Value> {
        let (st, page) = self
            .call(
                "GET",
                &format!("/v1/campaigns/{cid}/contacts?limit=1000{query}"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(st, 200, "{page}");
        page["contacts"].as_array().unwrap().clone()
    }
}

fn by_number<'a>(list: &'a [Value], number: &str) -> &'a Value {
    list.iter()
        .find(|c| c["number"] == number)
        .unwrap_or_else(|| panic!("{number} not in {list:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_crud_round_trips_and_validation_errors_name_their_fields() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = Some(key.as_str());
        let (qid, cid) = s.campaign(&key, "renewals").await;
        let (st, c) = s
            .call("GET", &format!("/v1/campaigns/{cid}"), k, None)
            .await;
        assert_eq!(st, 200, "{c}");
        assert_eq!(c["state"], "draft");
        assert_eq!(c["config"]["queue"], qid);
        assert_eq!(c["config"]["abandon_target"], 0.03);
        assert_eq!(
            c["config"]["window"],
            json!({"start": "08:00", "end": "21:00"})
        );
        // Validation: each bad field is named.
        for (config, field) in [
            (
                json!({"queue": qid, "ring_timeout_s": 5}),
                "config.ring_timeout_s",
            ),
            (
                json!({"queue": qid, "window": {"start": "22:00", "end": "08:00"}}),
                "config.window.end",
            ),
            (json!({"queue": qid, "start": "not a time"}), "config.start"),
            (
                json!({"queue": qid, "amd": {"enabled": true, "on_machine": "leave-message"}}),
                "config.amd.message",
            ),
            (
                json!({"queue": qid, "retry": {"busy": {"interval_s": 60, "max_attempts": 0}}}),
                "config.retry.busy.max_attempts",
            ),
            (json!({"queue": 999_999}), "config.queue"),
        ] {
            let (st, e) = s
                .call(
                    "POST",
                    "/v1/campaigns",
                    k,
                    Some(json!({"name": "bad", "config": config})),
                )
                .await;
            assert_eq!(
                (st, e["error"]["field"].as_str()),
                (422, Some(field)),
                "{config}: {e}"
            );
        }
        let (st, e) = s
            .call(
                "POST",
                "/v1/campaigns",
                k,
                Some(json!({"name": "x", "config": {"queue": qid, "bogus": 1}})),
            )
            .await;
        assert_eq!(st, 422, "{e}");
        let (st, e) = s
            .call(
                "POST",
                "/v1/campaigns",
                k,
                Some(json!({"name": "renewals", "config": {"queue": qid}})),
            )
            .await;
        assert_eq!((st, error_code(&e)), (409, "conflict"), "{e}");
        // PATCH merges.
        let (st, c2) = s
            .call(
                "PATCH",
                &format!("/v1/campaigns/{cid}"),
                k,
                Some(json!({"config": {"mode": "progressive", "window": {"start": "09:00"}}})),
            )
            .await;
        assert_eq!(st, 200, "{c2}");
        assert_eq!(c2["config"]["mode"], "progressive");
        assert_eq!(
            c2["config"]["window"],
            json!({"start": "09:00", "end": "21:00"})
        );
        assert_eq!(c2["config"]["caller_id"], "+12015550100");
        let (st, e) = s
            .call(
                "PATCH",
                &format!("/v1/campaigns/{cid}"),
                k,
                Some(json!({"config": {"max_lines": 0}})),
            )
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some("config.max_lines")),
            "{e}"
        );
        let (_, list) = s.call("GET", "/v1/campaigns", k, None).await;
        assert_eq!(list["campaigns"].as_array().unwrap().len(), 1);
        let (st, _) = s
            .call("DELETE", &format!("/v1/campaigns/{cid}"), k, None)
            .await;
        assert_eq!(st, 204);
        let (st, _) = s
            .call("GET", &format!("/v1/campaigns/{cid}"), k, None)
            .await;
        assert_eq!(st, 404);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_follow_the_state_machine_and_refuse_with_409() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = Some(key.as_str());
        let (_, cid) = s.campaign(&key, "c").await;
        let go = |verb: &'static str| {
            let path = format!("/v1/campaigns/{cid}/{verb}");
            let s = &s;
            async move { s.call("POST", &path, k, None).await }
        };
        let (st, e) = go("pause").await;
        assert_eq!(
            (st, error_code(&e)),
            (409, "conflict"),
            "a draft cannot pause: {e}"
        );
        let (st, e) = go("resume").await;
        assert_eq!(st, 409, "{e}");
        let (st, c) = go("start").await;
        assert_eq!((st, c["state"].as_str()), (200, Some("running")), "{c}");
        let (st, c) = go("pause").await;
        assert_eq!((st, c["state"].as_str()), (200, Some("paused")), "{c}");
        let (st, c) = go("resume").await;
        assert_eq!((st, c["state"].as_str()), (200, Some("running")), "{c}");
        let (st, c) = go("stop").await;
        assert_eq!((st, c["state"].as_str()), (200, Some("completed")), "{c}");
        for verb in ["start", "pause", "resume", "stop"] {
            let (st, e) = go(verb).await;
            assert_eq!(st, 409, "completed cannot {verb}: {e}");
        }
        let (_, stats) = s
            .call("GET", &format!("/v1/campaigns/{cid}/stats"), k, None)
            .await;
        assert_eq!(stats["state"], "completed", "{stats}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_import_keeps_good_rows_and_reports_each_bad_row_with_its_line() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let (_, cid) = s.campaign(&key, "c").await;
        let csv = "name,phone,timezone,plan\n\
                   Ann,(201) 555-0123,,gold\n\
                   Bob,not a number,,silver\n\
                   Cy,+1 312 555 0142,America/Denver,\n\
                   Di,+1 415 555 0142,Mars/Base,\n\
                   Ed,,,\n\
                   Flo,+44 20 7946 0018,,\n\
                   Gus,+1 800 555 0199,,\n";
        let (st, r) = s
            .csv(
                &format!("/v1/campaigns/{cid}/contacts?default_region=US"),
                &key,
                csv,
            )
            .await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["accepted"], 3, "{r}");
        assert_eq!(r["rejected"], 4, "{r}");
        let errors = r["errors"].as_array().unwrap();
        let lines: Vec<(u64, &str)> = errors
            .iter()
            .map(|e| {
                (
                    e["line"].as_u64().unwrap(),
                    e["field"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            lines,
            vec![(3, "phone"), (5, "timezone"), (6, "phone"), (8, "timezone")],
            "{r}"
        );
        assert!(
            errors
                .iter()
                .all(|e| !e["reason"].as_str().unwrap().is_empty())
        );
        let list = s.contacts(&key, cid, "").await;
        assert_eq!(list.len(), 3);
        // E.164 with the default region, the zone derived from the area code, extra columns kept.
        let ann = by_number(&list, "+12015550123");
        assert_eq!(ann["zone"], "America/New_York");
        assert_eq!(ann["fields"], json!({"name": "Ann", "plan": "gold"}));
        assert_eq!(ann["status"], "pending");
        // A time zone column wins over the derived zone.
        assert_eq!(by_number(&list, "+13125550142")["zone"], "America/Denver");
        assert_eq!(by_number(&list, "+442079460018")["zone"], "Europe/London");
        // Without a default region, national numbers are refused; no phone column refuses the file.
        let (st, r) = s
            .csv(
                &format!("/v1/campaigns/{cid}/contacts"),
                &key,
                "phone\n(201) 555-0124\n",
            )
            .await;
        assert_eq!(
            (st, r["accepted"].as_u64(), r["rejected"].as_u64()),
            (200, Some(0), Some(1)),
            "{r}"
        );
        let (st, e) = s
            .csv(
                &format!("/v1/campaigns/{cid}/contacts"),
                &key,
                "name,email\nAnn,a@b\n",
            )
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some("phone")),
            "{e}"
        );
        let (st, e) = s
            .csv(
                &format!("/v1/campaigns/{cid}/contacts?default_region=Narnia"),
                &key,
                "phone\n",
            )
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some("default_region")),
            "{e}"
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_merge_with_later_non_empty_fields_winning() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let (_, cid) = s.campaign(&key, "c").await;
        let path = format!("/v1/campaigns/{cid}/contacts?default_region=US");
        let csv = "phone,name,plan\n2015550123,Ann,gold\n+1 (201) 555-0123,,platinum\n";
        let (st, r) = s.csv(&path, &key, csv).await;
        assert_eq!(
            (st, r["accepted"].as_u64(), r["merged"].as_u64()),
            (200, Some(2), Some(1)),
            "{r}"
        );
        // A second file merges into the stored contact.
        let (st, r) = s
            .csv(&path, &key, "phone,name,city\n201-555-0123,Annie,Newark\n")
            .await;
        assert_eq!((st, r["merged"].as_u64()), (200, Some(1)), "{r}");
        let list = s.contacts(&key, cid, "").await;
        assert_eq!(list.len(), 1);
        assert_eq!(
            list[0]["fields"],
            json!({"name": "Annie", "plan": "platinum", "city": "Newark"})
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnc_numbers_are_stored_as_dnc_per_tenant_and_per_campaign() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let (_, other) = s.tenant("other").await;
        let k = Some(key.as_str());
        let (_, c1) = s.campaign(&key, "c1").await;
        let (_, c2) = s.campaign(&key, "c2").await;
        let (_, c3) = s.campaign(&other, "c3").await;
        let (st, r) = s
            .call(
                "POST",
                "/v1/dnc",
                k,
                Some(json!({"numbers": ["(201) 555-0123"], "default_region": "US"})),
            )
            .await;
        assert_eq!((st, r["added"].as_u64()), (200, Some(1)), "{r}");
        assert_eq!(r["numbers"], json!(["+12015550123"]));
        let (st, r) = s
            .call(
                "POST",
                &format!("/v1/campaigns/{c1}/dnc"),
                k,
                Some(json!({"numbers": ["+13125550142"]})),
            )
            .await;
        assert_eq!(st, 200, "{r}");
        let (st, e) = s
            .call(
                "POST",
                "/v1/dnc",
                k,
                Some(json!({"numbers": ["+1", "nope"]})),
            )
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some("numbers[0]")),
            "{e}"
        );
        let csv = "phone\n+12015550123\n+13125550142\n+14155550142\n";
        let (_, r1) = s
            .csv(&format!("/v1/campaigns/{c1}/contacts"), &key, csv)
            .await;
        assert_eq!(
            (r1["accepted"].as_u64(), r1["dnc"].as_u64()),
            (Some(3), Some(2)),
            "{r1}"
        );
        let (_, r2) = s
            .csv(&format!("/v1/campaigns/{c2}/contacts"), &key, csv)
            .await;
        assert_eq!(
            r2["dnc"], 1,
            "campaign 1's list does not reach campaign 2: {r2}"
        );
        let (_, r3) = s
            .csv(&format!("/v1/campaigns/{c3}/contacts"), &other, csv)
            .await;
        assert_eq!(
            r3["dnc"], 0,
            "another tenant's list does not reach it: {r3}"
        );
        let dnc = s.contacts(&key, c1, "&status=dnc").await;
        assert_eq!(dnc.len(), 2);
        let pending = s.contacts(&key, c1, "&status=pending").await;
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0]["number"], "+14155550142");
        // Adding a number later closes the pending contact that holds it.
        let (st, _) = s
            .call(
                "POST",
                &format!("/v1/campaigns/{c1}/dnc"),
                k,
                Some(json!({"numbers": ["+14155550142"]})),
            )
            .await;
        assert_eq!(st, 200);
        assert!(s.contacts(&key, c1, "&status=pending").await.is_empty());
        // Lists, and removal.
        let (_, list) = s.call("GET", "/v1/dnc", k, None).await;
        assert_eq!(list["numbers"].as_array().unwrap().len(), 1, "{list}");
        let (_, list) = s
            .call("GET", &format!("/v1/campaigns/{c1}/dnc"), k, None)
            .await;
        assert_eq!(list["numbers"].as_array().unwrap().len(), 2, "{list}");
        let (st, _) = s
            .call("DELETE", "/v1/dnc?number=%2B12015550123", k, None)
            .await;
        assert_eq!(st, 204);
        let (st, _) = s
            .call("DELETE", "/v1/dnc?number=%2B12015550123", k, None)
            .await;
        assert_eq!(st, 404);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_page_with_a_cursor_and_filter_by_status() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let (_, cid) = s.campaign(&key, "c").await;
        let mut csv = String::from("phone,n\n");
        for i in 0..25 {
            csv.push_str(&format!("+1201555{:04},{i}\n", 100 + i));
        }
        let (st, r) = s
            .csv(&format!("/v1/campaigns/{cid}/contacts"), &key, &csv)
            .await;
        assert_eq!((st, r["accepted"].as_u64()), (200, Some(25)), "{r}");
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let (st, page) = s
                .call(
                    "GET",
                    &format!(
                        "/v1/campaigns/{cid}/contacts?limit=10&status=pending&cursor={cursor}"
                    ),
                    Some(&key),
                    None,
                )
                .await;
            assert_eq!(st, 200, "{page}");
            for c in page["contacts"].as_array().unwrap() {
                seen.push(c["fields"]["n"].as_str().unwrap().parse::<u32>().unwrap());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = c.to_owned(),
                None => break,
            }
        }
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
        let (st, e) = s
            .call(
                "GET",
                &format!("/v1/campaigns/{cid}/contacts?status=maybe"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some("status")),
            "{e}"
        );
        let (st, e) = s
            .call(
                "GET",
                &format!("/v1/campaigns/{cid}/contacts?cursor=zz"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(st, 422, "{e}");
        let (st, a) = s
            .call(
                "GET",
                &format!("/v1/campaigns/{cid}/attempts"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(
            (st, a["attempts"].as_array().map(Vec::len)),
            (200, Some(0)),
            "{a}"
        );
        let (st, stats) = s
            .call(
                "GET",
                &format!("/v1/campaigns/{cid}/stats"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(st, 200, "{stats}");
        assert_eq!(stats["contacts_remaining"], 25, "{stats}");
        assert_eq!(stats["released"], 0, "{stats}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_tenants_gate_the_campaign_routes() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let (_, stranger) = s.tenant("other").await;
        let supervisor = s.key(Some(tenant), Role::Supervisor).await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let agent = s.agent_key(tenant, ana).await;
        let reader = s.key(Some(tenant), Role::ReadOnly).await;
        let (qid, cid) = s.campaign(&admin, "c").await;
        let create = json!({"name": "new", "config": {"queue": qid}});
        // Supervisors manage campaigns; agents and readers do not.
        for (key, expect) in [(&supervisor, 201), (&agent, 403), (&reader, 403)] {
            let (st, e) = s
                .call("POST", "/v1/campaigns", Some(key), Some(create.clone()))
                .await;
            assert_eq!(st, expect, "{e}");
        }
        for (key, expect) in [(&agent, 403), (&reader, 403), (&supervisor, 200)] {
            let (st, e) = s
                .call(
                    "POST",
                    &format!("/v1/campaigns/{cid}/start"),
                    Some(key),
                    None,
                )
                .await;
            assert_eq!(st, expect, "{e}");
            let (st, e) = s
                .call(
                    "POST",
                    "/v1/dnc",
                    Some(key),
                    Some(json!({"numbers": ["+12015550123"]})),
                )
                .await;
            assert_eq!(st, expect, "{e}");
            let (st, e) = s
                .csv(
                    &format!("/v1/campaigns/{cid}/contacts"),
                    key,
                    "phone\n+12015550124\n",
                )
                .await;
            assert_eq!(st, expect, "{e}");
        }
        // Everyone of the tenant reads.
        for key in [&agent, &reader] {
            for path in [
                format!("/v1/campaigns/{cid}"),
                format!("/v1/campaigns/{cid}/contacts"),
                format!("/v1/campaigns/{cid}/attempts"),
                format!("/v1/campaigns/{cid}/stats"),
                format!("/v1/campaigns/{cid}/dnc"),
                "/v1/dnc".to_owned(),
            ] {
                let (st, e) = s.call("GET", &path, Some(key), None).await;
                assert_eq!(st, 200, "{path}: {e}");
            }
        }
        // Another tenant's campaign is not there.
        for (method, path) in [
            ("GET", format!("/v1/campaigns/{cid}")),
            ("PATCH", format!("/v1/campaigns/{cid}")),
            ("DELETE", format!("/v1/campaigns/{cid}")),
            ("POST", format!("/v1/campaigns/{cid}/pause")),
            ("GET", format!("/v1/campaigns/{cid}/contacts")),
            ("GET", format!("/v1/campaigns/{cid}/attempts")),
            ("GET", format!("/v1/campaigns/{cid}/stats")),
            ("GET", format!("/v1/campaigns/{cid}/dnc")),
        ] {
            let body = (method == "PATCH").then(|| json!({"name": "mine"}));
            let (st, e) = s.call(method, &path, Some(&stranger), body).await;
            assert_eq!(
                (st, error_code(&e)),
                (404, "not_found"),
                "{method} {path}: {e}"
            );
        }
        let (st, e) = s
            .csv(
                &format!("/v1/campaigns/{cid}/contacts"),
                &stranger,
                "phone\n+12015550125\n",
            )
            .await;
        assert_eq!(st, 404, "{e}");
        // A campaign may not use another tenant's queue.
        let (st, e) = s
            .call(
                "POST",
                "/v1/campaigns",
                Some(&stranger),
                Some(json!({"name": "x", "config": {"queue": qid}})),
            )
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some("config.queue")),
            "{e}"
        );
        let (st, _) = s.call("GET", "/v1/campaigns", None, None).await;
        assert_eq!(st, 401);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispositions_are_for_agents_and_for_calls_in_progress() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let agent = s.agent_key(tenant, ana).await;
        let reader = s.key(Some(tenant), Role::ReadOnly).await;
        let call = uuid::Uuid::new_v4();
        let path = format!("/v1/calls/{call}/disposition");
        let body = json!({"code": "sale", "retry_at": "2030-01-01T10:00:00Z"});
        let (st, e) = s
            .call("POST", &path, Some(&reader), Some(body.clone()))
            .await;
        assert_eq!(st, 403, "{e}");
        let (st, e) = s
            .call("POST", &path, Some(&agent), Some(body.clone()))
            .await;
        assert_eq!(
            (st, error_code(&e)),
            (404, "not_found"),
            "no such call: {e}"
        );
        let (st, e) = s
            .call("POST", &path, Some(&agent), Some(json!({"code": ""})))
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some("code")),
            "{e}"
        );
        let (st, e) = s
            .call(
                "POST",
                &path,
                Some(&admin),
                Some(json!({"code": "x", "retry_at": "soon"})),
            )
            .await;
        assert_eq!(
            (st, e["error"]["field"].as_str()),
            (422, Some("retry_at")),
            "{e}"
        );
        s.stop().await;
    })
    .await;
}

/// The campaign call agent `agent` is talking on, once there is one: its id (the customer's
/// leg, as the API names calls) and the agent the engine has on it (as the API shows it).
async fn campaign_call_of(s: &Server, agent: i64, within: Duration) -> (uuid::Uuid, Option<i64>) {
    use switchyard_engine::AgentId;
    use switchyard_engine::agent::Activity;
    let id = AgentId(u32::try_from(s.stored_agent(agent)).unwrap());
    let deadline = Instant::now() + within;
    loop {
        let ids = s.rt.ids.clone();
        let found =
            s.rt.engine
                .query(move |e| {
                    let Activity::OnCall(call, _) = e.agent_info(id)?.activity else {
                        return None;
                    };
                    let call = e.call_info(call).filter(|c| c.campaign.is_some())?;
                    Some((
                        uuid::Uuid::from_u128(call.leg.0),
                        call.agent().map(|a| ids.agent(i64::from(a.0))),
                    ))
                })
                .await
                .expect("the engine answers");
        if let Some(found) = found {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "agent {agent} got no campaign call within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One contact, progressive dialling at any hour, and `agent` (made available through its
/// own desk key) the only agent in the queue: the fake switch's customer answers and the call
/// is bridged to that agent.
async fn dial_one_contact_to(s: &Server, admin: &str, agent: i64, desk: &str) {
    let (qid, cid) = s.campaign(admin, "c").await;
    let (st, e) = s
            .call(
                "PATCH",
                &format!("/v1/campaigns/{cid}"),
                Some(admin),
                Some(json!({"config": {"mode": "progressive", "window": {"start": "00:00", "end": "24:00"}}})),
            )
            .await;
    assert_eq!(st, 200, "{e}");
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
        .csv(
            &format!("/v1/campaigns/{cid}/contacts"),
            admin,
            "phone\n+12015550123\n",
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_key_disposes_only_the_calls_its_own_agent_is_on() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let bob = s.agent(&admin, "Bob", "user/1001").await;
        let anas_desk = s.agent_key(tenant, ana).await;
        let bobs_desk = s.agent_key(tenant, bob).await;
        let unbound = s.legacy_agent_key(tenant, ana).await;
        let supervisor = s.key(Some(tenant), Role::Supervisor).await;
        let reader = s.key(Some(tenant), Role::ReadOnly).await;

        dial_one_contact_to(&s, &admin, ana, &anas_desk).await;
        let (call, on_call) = campaign_call_of(&s, ana, Duration::from_secs(30)).await;
        assert_eq!(on_call, Some(ana), "the engine has Ana on the call");

        let path = format!("/v1/calls/{call}/disposition");
        let body = json!({"code": "sale"});
        let (st, e) = s
            .call("POST", &path, Some(&bobs_desk), Some(body.clone()))
            .await;
        assert_eq!((st, error_code(&e)), (403, "forbidden"), "Bob's key: {e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains("its own agent"), "{message}");
        let (st, e) = s
            .call("POST", &path, Some(&unbound), Some(body.clone()))
            .await;
        assert_eq!((st, error_code(&e)), (403, "forbidden"), "unbound key: {e}");
        let (st, e) = s
            .call("POST", &path, Some(&reader), Some(body.clone()))
            .await;
        assert_eq!(st, 403, "read-only key: {e}");
        // Another tenant's agent key does not learn that the call exists.
        let (other, other_admin) = s.tenant("other").await;
        let carl = s.agent(&other_admin, "Carl", "user/1002").await;
        let carls_desk = s.agent_key(other, carl).await;
        let (st, e) = s
            .call("POST", &path, Some(&carls_desk), Some(body.clone()))
            .await;
        assert_eq!((st, error_code(&e)), (404, "not_found"), "{e}");

        let (st, d) = s
            .call("POST", &path, Some(&anas_desk), Some(body.clone()))
            .await;
        assert_eq!(st, 202, "Ana's own call: {d}");
        assert_eq!(
            (&d["id"], &d["code"]),
            (&json!(call), &json!("sale")),
            "{d}"
        );
        let (st, d) = s
            .call(
                "POST",
                &path,
                Some(&supervisor),
                Some(json!({"code": "callback"})),
            )
            .await;
        assert_eq!(st, 202, "supervisors dispose any call: {d}");
        s.stop().await;
    })
    .await;
}

/// The dispositions table's `(agent_id, code)` rows, read behind the store's back.
async fn stored_dispositions(store: &Store) -> Vec<(Option<i64>, String)> {
    use switchyard_api::store::Pools;
    let sql = "SELECT agent_id, code FROM dispositions ORDER BY id";
    match store.pools() {
        Pools::Sqlite { reader, .. } => sqlx::query_as(sql).fetch_all(reader).await,
        Pools::Postgres(pg) => sqlx::query_as(sql).fetch_all(pg).await,
    }
    .expect("read dispositions")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_disposes_its_call_in_wrap_up_after_the_customer_hung_up() {
    store_common::each_backend(|store| async move {
        // Customers hang up 6 s after answering: time enough to be bridged to Ana, and then the
        // call is over while Ana wraps up, which is when agents pick a disposition.
        let mut scenario = switchyard_esl::sim::Scenario::default();
        scenario.customers.talk_time = Some(switchyard_esl::sim::Dist::Fixed(6.0));
        let s = Server::start_with_scenario(
            store.clone(),
            HttpConfig {
                rate_per_sec: 0,
                ..HttpConfig::default()
            },
            scenario,
        )
        .await;
        let (tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let bob = s.agent(&admin, "Bob", "user/1001").await;
        let anas_desk = s.agent_key(tenant, ana).await;
        let bobs_desk = s.agent_key(tenant, bob).await;
        dial_one_contact_to(&s, &admin, ana, &anas_desk).await;
        let (call, on_call) = campaign_call_of(&s, ana, Duration::from_secs(30)).await;
        assert_eq!(on_call, Some(ana), "the engine has Ana on the call");
        let leg = switchyard_engine::io::LegId(call.as_u128());
        let deadline = Instant::now() + Duration::from_secs(30);
        while s
            .rt
            .engine
            .query(move |e| e.call_by_leg(leg))
            .await
            .unwrap()
            .is_some()
        {
            assert!(Instant::now() < deadline, "the customer never hung up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let path = format!("/v1/calls/{call}/disposition");
        let body = json!({"code": "sale"});
        let (st, e) = s
            .call("POST", &path, Some(&bobs_desk), Some(body.clone()))
            .await;
        assert_eq!((st, error_code(&e)), (403, "forbidden"), "Bob's key: {e}");
        let (other, other_admin) = s.tenant("other").await;
        let carl = s.agent(&other_admin, "Carl", "user/1002").await;
        let carls_desk = s.agent_key(other, carl).await;
        let (st, e) = s
            .call("POST", &path, Some(&carls_desk), Some(body.clone()))
            .await;
        assert_eq!(
            (st, error_code(&e)),
            (404, "not_found"),
            "other tenant: {e}"
        );
        let (st, d) = s.call("POST", &path, Some(&anas_desk), Some(body)).await;
        assert_eq!(st, 202, "Ana disposes her ended call: {d}");
        assert_eq!(
            (&d["id"], &d["code"]),
            (&json!(call), &json!("sale")),
            "{d}"
        );

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let rows = stored_dispositions(&store).await;
            if !rows.is_empty() {
                assert_eq!(rows, vec![(Some(s.stored_agent(ana)), "sale".to_owned())]);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the disposition was never stored"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_import_cli_streams_a_file_and_prints_the_report() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let (_, cid) = s.campaign(&key, "c").await;
        let dir = std::env::temp_dir().join(format!(
            "switchyard-import-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("contacts.csv");
        std::fs::write(&file, "phone,name\n(201) 555-0123,Ann\nbad,Bob\n").unwrap();
        let bin = env!("CARGO_BIN_EXE_switchyard");
        let run = |file: std::path::PathBuf, key: String, base: String| {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(bin)
                    .args([
                        "contacts",
                        "import",
                        "--campaign",
                        &cid.to_string(),
                        "--default-region",
                        "US",
                        "--url",
                        &base,
                    ])
                    .arg(file)
                    .env("SWITCHYARD_API_KEY", key)
                    .output()
                    .unwrap()
            })
        };
        let out = run(file.clone(), key.clone(), s.base.clone())
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (report["accepted"].as_u64(), report["rejected"].as_u64()),
            (Some(1), Some(1)),
            "{report}"
        );
        assert_eq!(report["errors"][0]["line"], 3);
        // Nothing accepted: a failing exit code (the report is still printed).
        std::fs::write(&file, "phone\nbad\n").unwrap();
        let out = run(file, key, s.base.clone()).await.unwrap();
        assert!(!out.status.success());
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["rejected"], 1);
        let _ = std::fs::remove_dir_all(&dir);
        s.stop().await;
    })
    .await;
}

/// Measures a 1,000,000-row import (SQLite in memory; run with `--ignored --nocapture`, in
/// release for figures worth quoting). Prints rows/s and the process's peak RSS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: about a minute"]
async fn import_of_a_million_rows_measured() {
    let store = Store::sqlite_memory().await.unwrap();
    store.migrate().await.unwrap();
    let s = Server::start_with(
        store,
        HttpConfig {
            rate_per_sec: 0,
            ..HttpConfig::default()
        },
    )
    .await;
    let (_, key) = s.tenant("acme").await;
    let (_, cid) = s.campaign(&key, "big").await;
    const ROWS: u64 = 1_000_000;
    let mut csv = String::with_capacity(60 * ROWS as usize);
    csv.push_str("phone,first_name,account\n");
    for i in 0..ROWS as u32 {
        // Valid NANP numbers across area codes 201-209 (exchange 2xx-9xx).
        let area = 201 + i % 9;
        let exch = 200 + (i / 9) % 800;
        let line = (i / 7200) % 10_000;
        csv.push_str(&format!("+1{area}{exch}{line:04},Name{i},A{i}\n"));
    }
    let bytes = csv.into_bytes();
    let size = bytes.len();
    let t = std::time::Instant::now();
    let (st, r) = s
        .raw(
            "POST",
            &format!("/v1/campaigns/{cid}/contacts"),
            &key,
            "text/csv",
            bytes,
        )
        .await;
    let secs = t.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .unwrap_or("VmHWM: ?")
        .to_owned();
    let accepted = r["accepted"].as_u64().unwrap_or(0);
    // The rate is of rows the import accepted, not of rows sent: rows it rejected would be
    // counted as imported in a figure over the rows sent.
    println!(
        "1M-row import: status {st}, {accepted} accepted, {} merged, {} rejected, {size} bytes in {secs:.1} s = {:.0} rows/s; {hwm} (whole test process, the CSV text itself included)",
        r["merged"],
        r["rejected"],
        accepted as f64 / secs
    );
    assert_eq!(st, 200, "{r}");
    // Every generated number is distinct and valid, so every row sent must be accepted.
    assert_eq!(accepted, ROWS, "{r}");
    assert_eq!(
        (r["merged"].as_u64(), r["rejected"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_update_their_contacts_and_dispositions_are_kept() {
    use switchyard_api::store::{AttemptRow, ContactInput, DispositionRow};
    store_common::each_backend(|store| async move {
        let t = store
            .create_tenant_granted("acme", &switchyard_api::grants::DialGrants::lab(), &audit())
            .await
            .unwrap();
        let q = store
            .create_queue(t.id, "q", json!({}), &audit())
            .await
            .unwrap();
        let c = store
            .create_campaign(t.id, "c", json!({"queue": q.id}), &audit())
            .await
            .unwrap();
        let input = |n: &str| ContactInput {
            number: n.into(),
            zone: "America/New_York".into(),
            fields: serde_json::Map::new(),
        };
        let batch = store
            .import_contacts(
                t.id,
                c.id,
                vec![input("+12015550123"), input("+12015550124")],
            )
            .await
            .unwrap();
        assert_eq!((batch.inserted, batch.pending.len()), (2, 2));
        let (a, b) = (batch.pending[0].id, batch.pending[1].id);
        let attempt = |contact: i64, outcome: &str, status: &str, next: i64| AttemptRow {
            tenant: t.id,
            campaign_id: c.id,
            contact_id: contact,
            leg: uuid::Uuid::new_v4().to_string(),
            attempt: 1,
            outcome: outcome.into(),
            call_id: None,
            agent_id: None,
            dialed_at_ms: 1_000,
            answered_at_ms: None,
            ended_at_ms: 2_000,
            contact_status: status.into(),
            contact_next_attempt_at_ms: next,
            contact_attempts: 1,
            machine: false,
        };
        store
            .insert_attempts(&[
                attempt(a, "busy", "pending", 900_000),
                attempt(b, "connected", "done", 0),
            ])
            .await
            .unwrap();
        let list = store.list_contacts(t.id, c.id, None, 0, 10).await.unwrap();
        assert_eq!(list[0].attempts, 1);
        assert_eq!(list[0].status, "pending");
        assert_eq!(list[0].next_attempt_at_ms, 900_000);
        assert_eq!(list[0].last_outcome.as_deref(), Some("busy"));
        assert_eq!(list[1].status, "done");
        assert_eq!(store.count_pending(t.id, c.id).await.unwrap(), 1);
        let page = store.list_attempts(t.id, c.id, 0, 10).await.unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].1.outcome, "connected", "newest first");
        let ledger = store.ledger_attempts(0).await.unwrap();
        assert_eq!(ledger.len(), 2);
        store
            .insert_dispositions(&[DispositionRow {
                tenant: t.id,
                campaign_id: c.id,
                contact_id: b,
                call_id: 7,
                agent_id: Some(3),
                code: "sale".into(),
                at_ms: 3_000,
                retry_at_ms: None,
            }])
            .await
            .unwrap();
        store
            .record_campaign_state(c.id, "completed", 0)
            .await
            .unwrap();
        assert_eq!(
            store.get_campaign(t.id, c.id).await.unwrap().unwrap().state,
            "completed"
        );
    })
    .await;
}
