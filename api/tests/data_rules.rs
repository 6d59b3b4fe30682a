//! Issue 17, the data side: what each role may read of personal data (numbers masked for
//! read-only keys), the audit log route, what one tenant can learn of another (number
//! conflicts, live-feed sequence numbers), and input the API refuses with a JSON error naming
//! the field. Real HTTP on loopback, on both storage backends (SQLite always, PostgreSQL when
//! DATABASE_URL is set), with the engine running against the in-process fake switch.

#[path = "server_common/mod.rs"]
mod server_common;
#[path = "store_common/mod.rs"]
mod store_common;

use serde_json::{Value, json};
use server_common::*;

impl Server {
    /// A queue and a campaign on it; the campaign's id.
    async fn campaign_on_new_queue(&self, key: &str, name: &str) -> i64 {
        let (st, q) = self
            .call(
                "POST",
                "/v1/queues",
                Some(key),
                Some(json!({"name": format!("q-{name}")})),
            )
            .await;
        assert_eq!(st, 201, "{q}");
        let (st, c) = self
            .call(
                "POST",
                "/v1/campaigns",
                Some(key),
                Some(json!({"name": name, "config": {"queue": q["id"], "caller_id": "+12015550100"}})),
            )
            .await;
        assert_eq!(st, 201, "{c}");
        c["id"].as_i64().expect("a campaign id")
    }
}

fn assert_refused(st: u16, e: &Value, status: u16, field: &str) {
    assert_eq!(st, status, "{e}");
    assert_eq!(e["error"]["field"], field, "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_skills_must_be_the_tenants_and_priority_boosts_not_negative() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, a) = s.tenant("a").await;
        let (_, b) = s.tenant("b").await;
        let (_, theirs) = s
            .call("POST", "/v1/skills", Some(&b), Some(json!({"name": "french"})))
            .await;
        let (_, mine) = s
            .call("POST", "/v1/skills", Some(&a), Some(json!({"name": "spanish"})))
            .await;
        for unknown in [json!(987_654), theirs["id"].clone()] {
            let cfg = json!({"skills": [{"skill": mine["id"], "min": 1}, {"skill": unknown, "min": 2}]});
            let (st, e) = s
                .call("POST", "/v1/queues", Some(&a), Some(json!({"name": "q", "config": cfg})))
                .await;
            assert_refused(st, &e, 422, "config.skills[1].skill");
            let (st, e) = s
                .call(
                    "POST",
                    "/v1/agents",
                    Some(&a),
                    Some(json!({"name": "ana", "config": {"contact": "user/1000", "skills": [{"skill": unknown, "level": 3}]}})),
                )
                .await;
            assert_refused(st, &e, 422, "config.skills[0].skill");
        }
        let (st, e) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&a),
                Some(json!({"name": "q", "config": {"priority_boost": -5}})),
            )
            .await;
        assert_refused(st, &e, 422, "config.priority_boost");
        let (st, q) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&a),
                Some(json!({"name": "q", "config": {"priority_boost": 7, "skills": [{"skill": mine["id"], "min": 1}]}})),
            )
            .await;
        assert_eq!(st, 201, "{q}");
        let (st, e) = s
            .call(
                "PATCH",
                &format!("/v1/queues/{}", q["id"]),
                Some(&a),
                Some(json!({"config": {"priority_boost": -1}})),
            )
            .await;
        assert_refused(st, &e, 422, "config.priority_boost");
        let (_, list) = s.call("GET", "/v1/queues", Some(&a), None).await;
        assert_eq!(list["queues"].as_array().map(Vec::len), Some(1));
        assert_eq!(list["queues"][0]["config"]["priority_boost"], 7);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_bidi_overrides_or_c0_c1_controls_are_refused_everywhere() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, a) = s.tenant("a").await;
        let bad = [
            "admin\u{202E}txt.exe",
            "x\u{202A}y",
            "x\u{2066}y",
            "x\u{2069}",
            "tab\there",
            "del\u{7f}",
            "c1\u{85}",
            "c1\u{9b}",
        ];
        for name in bad {
            for (path, body) in [
                ("/v1/queues", json!({"name": name})),
                ("/v1/skills", json!({"name": name})),
                (
                    "/v1/agents",
                    json!({"name": name, "config": {"contact": "user/1000"}}),
                ),
            ] {
                let (st, e) = s.call("POST", path, Some(&a), Some(body)).await;
                assert_refused(st, &e, 422, "name");
                assert_eq!(e["error"]["code"], "invalid_field", "{path} {name:?}");
            }
        }
        for path in ["/v1/queues", "/v1/skills", "/v1/agents"] {
            let (_, list) = s.call("GET", path, Some(&a), None).await;
            let items = list.as_object().and_then(|o| o.values().next()).cloned();
            assert_eq!(items, Some(json!([])), "{path}: nothing was stored");
        }
        // Right-to-left text itself is a name like any other.
        let (st, q) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&a),
                Some(json!({"name": "מכירות"})),
            )
            .await;
        assert_eq!(st, 201, "{q}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_filters_refuse_unknown_outcomes_and_a_zero_limit_naming_the_parameter() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, a) = s.tenant("a").await;
        let (st, e) = s
            .call("GET", "/v1/calls?outcome=bogus", Some(&a), None)
            .await;
        assert_refused(st, &e, 400, "outcome");
        assert_eq!(e["error"]["code"], "invalid_query");
        let (st, e) = s.call("GET", "/v1/calls?limit=0", Some(&a), None).await;
        assert_refused(st, &e, 422, "limit");
        let (st, e) = s
            .call("GET", "/v1/campaigns/1/contacts?limit=0", Some(&a), None)
            .await;
        assert_eq!(st, 404, "no such campaign comes before the limit: {e}");
        for outcome in ["answered", "abandoned", "callback-answered", "in-progress"] {
            let (st, page) = s
                .call(
                    "GET",
                    &format!("/v1/calls?outcome={outcome}&limit=1"),
                    Some(&a),
                    None,
                )
                .await;
            assert_eq!(st, 200, "{outcome}: {page}");
            assert_eq!(page["calls"], json!([]));
        }
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_import_refuses_a_json_content_type_and_counts_blank_and_crlf_lines() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, a) = s.tenant("a").await;
        let cid = s.campaign_on_new_queue(&a, "renewals").await;
        let path = format!("/v1/campaigns/{cid}/contacts?default_region=US");
        let csv = "phone\r\n+12015550123\r\n\r\n\r\nnot-a-number\r\n";
        let (st, e) = s
            .raw(
                "POST",
                &path,
                &a,
                "application/json",
                csv.as_bytes().to_vec(),
            )
            .await;
        assert_refused(st, &e, 415, "content-type");
        assert_eq!(e["error"]["code"], "unsupported_media_type");
        let (_, page) = s
            .call(
                "GET",
                &format!("/v1/campaigns/{cid}/contacts"),
                Some(&a),
                None,
            )
            .await;
        assert_eq!(page["contacts"], json!([]), "nothing was imported");
        let (st, report) = s
            .raw(
                "POST",
                &path,
                &a,
                "text/csv; charset=utf-8",
                csv.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(st, 200, "{report}");
        assert_eq!(report["accepted"], 1, "{report}");
        assert_eq!(report["errors"][0]["line"], 5, "{report}");
        let lf = "phone\n\n\n+12015550199\nbad\n";
        let (st, report) = s
            .raw("POST", &path, &a, "text/csv", lf.as_bytes().to_vec())
            .await;
        assert_eq!(st, 200, "{report}");
        assert_eq!(report["errors"][0]["line"], 5, "{report}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_admin_only_filtered_paged_and_bounded() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("a").await;
        let (_, other) = s.tenant("b").await;
        let supervisor = s
            .key(Some(tenant), switchyard_api::model::Role::Supervisor)
            .await;
        let reader = s
            .key(Some(tenant), switchyard_api::model::Role::ReadOnly)
            .await;
        for k in [&supervisor, &reader] {
            let (st, e) = s.call("GET", "/v1/audit", Some(k), None).await;
            assert_eq!((st, error_code(&e)), (403, "forbidden"), "{e}");
        }
        let (_, q) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&admin),
                Some(json!({"name": "sales"})),
            )
            .await;
        let qid = q["id"].to_string();
        s.call(
            "POST",
            "/v1/skills",
            Some(&admin),
            Some(json!({"name": "one"})),
        )
        .await;
        s.call(
            "POST",
            "/v1/skills",
            Some(&admin),
            Some(json!({"name": "two"})),
        )
        .await;
        s.call(
            "PATCH",
            &format!("/v1/queues/{qid}"),
            Some(&admin),
            Some(json!({"config": {"wrapup_s": 5.0}})),
        )
        .await;
        s.call(
            "POST",
            "/v1/skills",
            Some(&other),
            Some(json!({"name": "theirs"})),
        )
        .await;
        let (st, all) = s.call("GET", "/v1/audit", Some(&admin), None).await;
        assert_eq!(st, 200, "{all}");
        let entries = all["entries"].as_array().expect("entries").clone();
        assert!(
            entries.iter().all(|e| e["detail"]["name"] != "theirs"),
            "another tenant's entries stay out: {all}"
        );
        // Ids are opaque (`switchyard_api::ids`): the order shows in the times.
        let at: Vec<i64> = entries.iter().filter_map(|e| e["at_ms"].as_i64()).collect();
        assert_eq!(at.len(), entries.len(), "{all}");
        assert!(at.windows(2).all(|w| w[0] >= w[1]), "newest first: {at:?}");
        // One object's history.
        let (_, queue) = s
            .call(
                "GET",
                &format!("/v1/audit?object_kind=queue&object_id={qid}"),
                Some(&admin),
                None,
            )
            .await;
        let actions: Vec<&str> = queue["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .collect();
        assert_eq!(actions, ["queue.update", "queue.create"], "{queue}");
        // By action, paged one at a time.
        let (_, p1) = s
            .call(
                "GET",
                "/v1/audit?action=skill.create&limit=1",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(p1["entries"].as_array().map(Vec::len), Some(1), "{p1}");
        let cursor = p1["next_cursor"].as_str().expect("a next page").to_owned();
        let (_, p2) = s
            .call(
                "GET",
                &format!("/v1/audit?action=skill.create&limit=1&cursor={cursor}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(p2["entries"][0]["detail"]["name"], "one", "{p2}");
        assert_eq!(p1["entries"][0]["detail"]["name"], "two", "{p1}");
        // By time: nothing before the epoch's first second, everything from it.
        let (_, none) = s.call("GET", "/v1/audit?to_ms=1", Some(&admin), None).await;
        assert_eq!(none["entries"], json!([]));
        // By key: the admin made all of them; a random key none.
        let (_, keys) = s.call("GET", "/v1/api-keys", Some(&admin), None).await;
        let admin_id = keys["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["role"] == "admin")
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .expect("the admin key");
        let (_, mine) = s
            .call(
                "GET",
                &format!("/v1/audit?key_id={admin_id}&limit=1000"),
                Some(&admin),
                None,
            )
            .await;
        assert!(mine["entries"].as_array().unwrap().len() >= 4, "{mine}");
        let (_, nobody) = s
            .call(
                "GET",
                "/v1/audit?key_id=00000000-0000-0000-0000-000000000001",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(nobody["entries"], json!([]));
        // Bad filters name their parameter.
        for (query, status, field) in [
            ("limit=0", 422, "limit"),
            ("from_ms=10&to_ms=5", 422, "to_ms"),
            ("cursor=abc", 422, "cursor"),
            ("key_id=nope", 400, "key_id"),
            ("action=a%00b", 422, "action"),
        ] {
            let (st, e) = s
                .call("GET", &format!("/v1/audit?{query}"), Some(&admin), None)
                .await;
            assert_refused(st, &e, status, field);
        }
        let long = "x".repeat(201);
        let (st, e) = s
            .call(
                "GET",
                &format!("/v1/audit?object_id={long}"),
                Some(&admin),
                None,
            )
            .await;
        assert_refused(st, &e, 422, "object_id");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_whole_for_supervisors_masked_without_fields_for_read_only_and_hidden_from_idle_agents()
 {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("a").await;
        let supervisor = s
            .key(Some(tenant), switchyard_api::model::Role::Supervisor)
            .await;
        let reader = s
            .key(Some(tenant), switchyard_api::model::Role::ReadOnly)
            .await;
        let aid = s.agent(&admin, "Ana", "user/1000").await;
        let agent = s.agent_key(tenant, aid).await;
        let cid = s.campaign_on_new_queue(&admin, "renewals").await;
        let csv = "phone,name\n+12015550123,Ada Lovelace\n";
        let (st, r) = s
            .raw(
                "POST",
                &format!("/v1/campaigns/{cid}/contacts"),
                &admin,
                "text/csv",
                csv.as_bytes().to_vec(),
            )
            .await;
        assert_eq!((st, &r["accepted"]), (200, &json!(1)), "{r}");
        let path = format!("/v1/campaigns/{cid}/contacts");
        for k in [&admin, &supervisor] {
            let (_, page) = s.call("GET", &path, Some(k), None).await;
            assert_eq!(page["contacts"][0]["number"], "+12015550123", "{page}");
            assert_eq!(
                page["contacts"][0]["fields"]["name"], "Ada Lovelace",
                "{page}"
            );
        }
        let (_, page) = s.call("GET", &path, Some(&reader), None).await;
        assert_eq!(page["contacts"][0]["number"], "+*********23", "{page}");
        assert_eq!(page["contacts"][0]["fields"], json!({}), "{page}");
        // The agent is on no call: it sees no contact at all.
        let (st, page) = s.call("GET", &path, Some(&agent), None).await;
        assert_eq!((st, &page["contacts"]), (200, &json!([])), "{page}");
        // DNC lists are numbers too.
        s.call(
            "POST",
            "/v1/dnc",
            Some(&admin),
            Some(json!({"numbers": ["+12015550199"]})),
        )
        .await;
        let (_, dnc) = s.call("GET", "/v1/dnc", Some(&reader), None).await;
        assert_eq!(dnc["numbers"][0]["number"], "+*********99", "{dnc}");
        let (_, dnc) = s.call("GET", "/v1/dnc", Some(&admin), None).await;
        assert_eq!(dnc["numbers"][0]["number"], "+12015550199", "{dnc}");
        s.stop().await;
    })
    .await;
}

/// Issue 17 item 4: the ids the API shows are a keyed permutation of the store's
/// (`switchyard_api::ids`): they do not count, do not follow creation order, do not reach
/// another tenant's objects, and stay the same across a restart; configs and the audit log
/// take and show the same ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_say_nothing_of_other_tenants_and_stay_the_same_across_a_restart() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let (_, a) = s.tenant("acme").await;
        let (_, b) = s.tenant("globex").await;
        let first = s.agent(&a, "first", "user/1000").await;
        let mut theirs = Vec::new();
        for i in 0..30 {
            let contact = format!("user/{}", 2000 + i);
            theirs.push(s.agent(&b, &format!("b{i}"), &contact).await);
        }
        let second = s.agent(&a, "second", "user/1001").await;

        // The store counts one by one across tenants...
        let stored: Vec<i64> = theirs.iter().map(|&t| s.stored_agent(t)).collect();
        assert!(stored.windows(2).all(|w| w[1] == w[0] + 1), "{stored:?}");
        assert_eq!(s.stored_agent(second) - s.stored_agent(first), 31);
        // ...and what the API shows does neither: no shown id is the stored one, the other
        // tenant's thirty are not in creation order (1 chance in 30! if they were random), and
        // this tenant's two say nothing of the thirty between them.
        assert!(theirs.iter().zip(&stored).all(|(t, st)| t != st));
        assert!(!theirs.windows(2).all(|w| w[0] < w[1]), "{theirs:?}");
        assert!(!theirs.windows(2).all(|w| w[0] > w[1]), "{theirs:?}");
        assert_ne!((second - first).abs(), 31);
        // Another tenant's id is not found, like a number never shown.
        for path in [
            format!("/v1/agents/{}", theirs[0]),
            format!("/v1/agents/{}", first + 1),
        ] {
            let (st, e) = s.call("GET", &path, Some(&a), None).await;
            assert_eq!(st, 404, "{path}: {e}");
        }

        // A queue needing a skill and overflowing to another queue: its config is written and
        // read with the ids the API shows.
        let (st, skill) = s
            .call("POST", "/v1/skills", Some(&a), Some(json!({"name": "es"})))
            .await;
        assert_eq!(st, 201, "{skill}");
        let sid = skill["id"].as_i64().unwrap();
        let (st, spill) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&a),
                Some(json!({"name": "spill"})),
            )
            .await;
        assert_eq!(st, 201, "{spill}");
        let spill = spill["id"].as_i64().unwrap();
        let (st, q) = s
            .call(
                "POST",
                "/v1/queues",
                Some(&a),
                Some(json!({"name": "main", "config": {
                    "skills": [{"skill": sid, "min": 1}],
                    "on_timeout": {"to": "queue", "queue": spill},
                }})),
            )
            .await;
        assert_eq!(st, 201, "{q}");
        assert_eq!(q["config"]["skills"][0]["skill"], json!(sid), "{q}");
        assert_eq!(q["config"]["on_timeout"]["queue"], json!(spill), "{q}");
        let qid = q["id"].as_i64().unwrap();
        let (st, patched) = s
            .call(
                "PATCH",
                &format!("/v1/queues/{qid}"),
                Some(&a),
                Some(json!({"config": {"max_wait_s": 90}})),
            )
            .await;
        assert_eq!(st, 200, "{patched}");
        assert_eq!(patched["config"]["skills"], q["config"]["skills"]);
        assert_eq!(patched["config"]["on_timeout"], q["config"]["on_timeout"]);
        // The other tenant's skill, by its shown id, is refused naming the field.
        let (_, their_skill) = s
            .call("POST", "/v1/skills", Some(&b), Some(json!({"name": "fr"})))
            .await;
        let (st, e) = s
            .call(
                "PATCH",
                &format!("/v1/queues/{qid}"),
                Some(&a),
                Some(json!({"config": {"skills": [{"skill": their_skill["id"], "min": 1}]}})),
            )
            .await;
        assert_refused(st, &e, 422, "config.skills[0].skill");

        // The audit log names objects by the same ids, and filters by them.
        let (st, log) = s
            .call(
                "GET",
                &format!("/v1/audit?object_kind=agent&object_id={second}"),
                Some(&a),
                None,
            )
            .await;
        assert_eq!(st, 200, "{log}");
        let entries = log["entries"].as_array().unwrap();
        assert!(!entries.is_empty(), "{log}");
        assert!(
            entries
                .iter()
                .all(|e| e["object_id"] == json!(second.to_string())),
            "{log}"
        );
        s.stop().await;

        // A restart shows the same ids.
        let s = Server::start(store.clone()).await;
        let (st, list) = s.call("GET", "/v1/agents", Some(&a), None).await;
        assert_eq!(st, 200, "{list}");
        let mut ids: Vec<i64> = list["agents"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["id"].as_i64())
            .collect();
        ids.sort_unstable();
        let mut want = vec![first, second];
        want.sort_unstable();
        assert_eq!(ids, want);
        s.stop().await;
    })
    .await;
}
