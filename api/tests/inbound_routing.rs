//! `/v1/ivr-menus`, `/v1/flows` and `/v1/numbers` over HTTP on loopback, on SQLite and
//! PostgreSQL: documents created, read, replaced and removed (each audited); a flow validated
//! whole against the tenant's real queues, agents, schedules and stored menus, refused with the
//! field's path; a number routed to one flow and refused when this or another tenant routes it;
//! deleting what a flow or a number uses answered 409 saying what uses it; the tenant and role
//! matrix.

mod server_common;
mod store_common;

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::model::Role;

/// What a tenant's flows name: a queue, an agent and a schedule, by their API ids as strings.
struct World {
    queue: String,
    agent: String,
    schedule: String,
}

/// Queue numbers are unique across tenants: each tenant's world takes its own.
async fn world(s: &Server, k: &str, queue_number: &str) -> World {
    let (st, q) = s
        .call(
            "POST",
            "/v1/queues",
            Some(k),
            Some(json!({"name": "sales", "config": {"numbers": [queue_number]}})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    let agent = s.agent(k, "Ana", "user/1000").await;
    let (st, sch) = s
        .call(
            "POST",
            "/v1/schedules",
            Some(k),
            Some(
                json!({"name": "hours", "config": {"time_zone": "Europe/Paris",
                "weekly": {"monday": [{"start": "09:00", "end": "17:00"}]}}}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{sch}");
    World {
        queue: q["id"].as_i64().unwrap().to_string(),
        agent: agent.to_string(),
        schedule: sch["id"].as_i64().unwrap().to_string(),
    }
}

/// A menu for the flow below: 1 sales, 0 the operator; the operator on too many failures.
fn menu() -> Value {
    json!({
        "greet_long": "ivr/main.wav", "greet_short": "ivr/main_short.wav",
        "timeout_ms": 5000, "inter_digit_timeout_ms": 2000,
        "max_failures": 3, "max_timeouts": 3,
        "entries": [
            {"keys": {"exact": "1"}, "action": {"kind": "step", "step": "sales"}},
            {"keys": {"exact": "0"}, "action": {"kind": "step", "step": "operator"}}
        ],
        "on_max_failures": {"kind": "step", "step": "operator"},
        "on_max_timeouts": {"kind": "step", "step": "operator"}
    })
}

/// Hours, then the menu `menu` (a stored menu's id, or a menu of the flow), then the sales
/// queue (voicemail when no agent) or the operator; voicemail after hours.
fn flow(w: &World, menu: &str) -> Value {
    json!({
        "fallback": {"queue": w.queue},
        "steps": [
            {"kind": "schedule", "id": "hours", "schedule": w.schedule, "open": "greet", "closed": "after_hours"},
            {"kind": "menu", "id": "greet", "menu": menu},
            {"kind": "queue", "id": "sales", "queue": w.queue, "on_no_agent": "sales_vm"},
            {"kind": "voicemail", "id": "sales_vm", "mailbox": {"queue": w.queue}},
            {"kind": "agent", "id": "operator", "agent": w.agent},
            {"kind": "voicemail", "id": "after_hours", "mailbox": {"queue": w.queue}}
        ]
    })
}

/// The flow with its own menu "main" instead of a stored one.
fn flow_with_local_menu(w: &World) -> Value {
    let mut f = flow(w, "main");
    let mut m = menu();
    m["id"] = json!("main");
    f["menus"] = json!([m]);
    f
}

async fn create(s: &Server, k: &str, path: &str, body: Value) -> i64 {
    let (st, v) = s.call("POST", path, Some(k), Some(body)).await;
    assert_eq!(st, 201, "POST {path}: {v}");
    v["id"].as_i64().unwrap()
}

fn field(v: &Value) -> Option<&str> {
    v["error"]["field"].as_str()
}

#[tokio::test]
async fn a_menu_a_flow_and_numbers_round_trip_and_every_write_is_audited() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = key.as_str();
        let w = world(&s, k, "5000").await;

        let (st, m) = s
            .call(
                "POST",
                "/v1/ivr-menus",
                Some(k),
                Some(json!({"name": "main menu", "config": menu()})),
            )
            .await;
        assert_eq!(st, 201, "{m}");
        let menu_id = m["id"].as_i64().unwrap();
        assert_eq!(m["config"]["entries"][0]["action"]["step"], "sales");
        assert!(m["config"].get("id").is_none(), "the server names it: {m}");
        let (st, one) = s
            .call("GET", &format!("/v1/ivr-menus/{menu_id}"), Some(k), None)
            .await;
        assert_eq!((st, &one["name"]), (200, &json!("main menu")));

        // A flow naming the stored menu, the schedule, the queue and the agent.
        let (st, f) = s
            .call(
                "POST",
                "/v1/flows",
                Some(k),
                Some(json!({"name": "main", "config": flow(&w, &menu_id.to_string())})),
            )
            .await;
        assert_eq!(st, 201, "{f}");
        let flow_id = f["id"].as_i64().unwrap();
        assert_eq!(f["config"]["steps"][1]["menu"], menu_id.to_string());
        // And one with a menu of its own.
        let local = create(
            &s,
            k,
            "/v1/flows",
            json!({"name": "local", "config": flow_with_local_menu(&w)}),
        )
        .await;
        let (_, list) = s.call("GET", "/v1/flows", Some(k), None).await;
        assert_eq!(list["flows"].as_array().unwrap().len(), 2, "{list}");
        let (st, one) = s
            .call("GET", &format!("/v1/flows/{local}"), Some(k), None)
            .await;
        assert_eq!(
            (st, &one["config"]["menus"][0]["id"]),
            (200, &json!("main"))
        );

        // Numbers: one as E.164, one written loosely; the default flow.
        let (st, n) = s
            .call(
                "POST",
                "/v1/numbers",
                Some(k),
                Some(json!({"number": "+1 (555) 010-0100", "flow": flow_id})),
            )
            .await;
        assert_eq!(st, 201, "{n}");
        assert_eq!(
            (&n["normalised"], &n["flow"]),
            (&json!("15550100100"), &json!(flow_id))
        );
        let number_id = n["id"].as_i64().unwrap();
        create(
            &s,
            k,
            "/v1/numbers",
            json!({"number": "8001", "flow": local}),
        )
        .await;
        let (st, d) = s
            .call(
                "PUT",
                "/v1/numbers/default",
                Some(k),
                Some(json!({"flow": local})),
            )
            .await;
        assert_eq!((st, &d["flow"]), (200, &json!(local)), "{d}");
        let (_, plan) = s.call("GET", "/v1/numbers", Some(k), None).await;
        assert_eq!(plan["numbers"].as_array().unwrap().len(), 2, "{plan}");
        assert_eq!(plan["default_flow"], json!(local));
        let (st, d) = s.call("GET", "/v1/numbers/default", Some(k), None).await;
        assert_eq!((st, &d["flow"]), (200, &json!(local)));

        // Replacements apply at once: the number moves to the other flow, the menu changes.
        let (st, n) = s
            .call(
                "PUT",
                &format!("/v1/numbers/{number_id}"),
                Some(k),
                Some(json!({"number": "+15550100100", "flow": local})),
            )
            .await;
        assert_eq!((st, &n["flow"]), (200, &json!(local)), "{n}");
        let mut changed = menu();
        changed["greet_long"] = json!("ivr/new_main.wav");
        let (st, m) = s
            .call(
                "PUT",
                &format!("/v1/ivr-menus/{menu_id}"),
                Some(k),
                Some(json!({"name": "main menu", "config": changed})),
            )
            .await;
        assert_eq!(
            (st, &m["config"]["greet_long"]),
            (200, &json!("ivr/new_main.wav")),
            "{m}"
        );
        let mut renamed = flow(&w, &menu_id.to_string());
        renamed["fallback"] = json!({"agent": w.agent});
        let (st, f) = s
            .call(
                "PUT",
                &format!("/v1/flows/{flow_id}"),
                Some(k),
                Some(json!({"name": "main 2", "config": renamed})),
            )
            .await;
        assert_eq!(
            (st, &f["name"], &f["config"]["fallback"]),
            (200, &json!("main 2"), &json!({"agent": w.agent})),
            "{f}"
        );

        // Remove everything, users first.
        for path in [
            format!("/v1/numbers/{number_id}"),
            "/v1/numbers/default".to_owned(),
            format!("/v1/flows/{flow_id}"),
            format!("/v1/ivr-menus/{menu_id}"),
        ] {
            let (st, v) = s.call("DELETE", &path, Some(k), None).await;
            assert_eq!(st, 204, "DELETE {path}: {v}");
            let (st, _) = s.call("GET", &path, Some(k), None).await;
            let gone = if path.ends_with("default") { 200 } else { 404 };
            assert_eq!(st, gone, "GET {path} after its deletion");
        }
        let (_, d) = s.call("GET", "/v1/numbers/default", Some(k), None).await;
        assert_eq!(d["flow"], Value::Null);
        let (_, log) = s.call("GET", "/v1/audit", Some(k), None).await;
        let mut actions: Vec<&str> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .filter(|a| {
                ["ivr_menu.", "flow.", "number."]
                    .iter()
                    .any(|p| a.starts_with(p))
            })
            .collect();
        actions.sort_unstable();
        assert_eq!(
            actions,
            [
                "flow.create",
                "flow.create",
                "flow.delete",
                "flow.update",
                "ivr_menu.create",
                "ivr_menu.delete",
                "ivr_menu.update",
                "number.create",
                "number.create",
                "number.default_clear",
                "number.default_set",
                "number.delete",
                "number.update",
            ],
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_refused_flow_names_its_field_path_and_nothing_is_written() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = key.as_str();
        let w = world(&s, k, "5000").await;
        let menu_id = create(
            &s,
            k,
            "/v1/ivr-menus",
            json!({"name": "m", "config": menu()}),
        )
        .await;
        let m = menu_id.to_string();
        // Another tenant's queue is no queue of this one.
        let (_, globex) = s.tenant("globex").await;
        let theirs = world(&s, &globex, "6000").await;

        let with = |at: &[&str], value: Value| {
            let mut doc = flow(&w, &m);
            let mut node = &mut doc;
            for p in &at[..at.len() - 1] {
                node = match p.parse::<usize>() {
                    Ok(i) => &mut node[i],
                    Err(_) => &mut node[*p],
                };
            }
            node[at[at.len() - 1]] = value;
            doc
        };
        let mut unreachable = flow(&w, &m);
        unreachable["steps"]
            .as_array_mut()
            .unwrap()
            .push(json!({"kind": "queue", "id": "orphan", "queue": w.queue}));
        let looping = json!({
            "fallback": {"queue": w.queue},
            "steps": [
                {"kind": "goto", "id": "a", "step": "b"},
                {"kind": "goto", "id": "b", "step": "a"}
            ]
        });
        let mut shadowing = flow_with_local_menu(&w);
        shadowing["menus"][0]["id"] = json!(m);
        shadowing["steps"][1]["menu"] = json!(m);
        let mut with_id = flow(&w, &m);
        with_id["id"] = json!("main");
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "a missing queue",
                with(&["steps", "2", "queue"], json!("999")),
                "config.steps[2].queue",
            ),
            (
                "another tenant's queue",
                with(&["steps", "2", "queue"], json!(theirs.queue)),
                "config.steps[2].queue",
            ),
            (
                "a missing agent",
                with(&["steps", "4", "agent"], json!(theirs.agent)),
                "config.steps[4].agent",
            ),
            (
                "a missing schedule",
                with(&["steps", "0", "schedule"], json!(theirs.schedule)),
                "config.steps[0].schedule",
            ),
            (
                "a missing menu",
                with(&["steps", "1", "menu"], json!("12345")),
                "config.steps[1].menu",
            ),
            (
                "a missing step",
                with(&["steps", "2", "on_no_agent"], json!("nowhere")),
                "config.steps[2].on_no_agent",
            ),
            (
                "a missing fallback queue",
                with(&["fallback"], json!({"queue": "1"})),
                "config.fallback.queue",
            ),
            ("an unreachable step", unreachable, "config.steps[6]"),
            ("a loop with no exit", looping, "config.steps[0]"),
            (
                "a local menu with a stored menu's id",
                shadowing,
                "config.menus[0].id",
            ),
            ("an id given", with_id, "config.id"),
            (
                "an unknown field",
                with(&["bogus"], json!(1)),
                "config.bogus",
            ),
            (
                "an unknown step kind",
                with(&["steps", "5", "kind"], json!("fax")),
                "config.steps[5].kind",
            ),
        ];
        for (what, config, want) in cases {
            let (st, e) = s
                .call(
                    "POST",
                    "/v1/flows",
                    Some(k),
                    Some(json!({"name": "bad", "config": config})),
                )
                .await;
            assert_eq!((st, field(&e)), (422, Some(want)), "{what}: {e}");
        }
        // A problem inside the stored menu is told at the step that brings it in.
        let mut no_operator = flow(&w, &m);
        no_operator["steps"][4] = json!({"kind": "queue", "id": "support", "queue": w.queue});
        no_operator["steps"][1] = json!({"kind": "menu", "id": "greet", "menu": m});
        let (st, e) = s
            .call(
                "POST",
                "/v1/flows",
                Some(k),
                Some(json!({"name": "bad", "config": no_operator})),
            )
            .await;
        assert_eq!((st, field(&e)), (422, Some("config.steps[1].menu")), "{e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("operator"),
            "names the missing step: {message}"
        );
        let (_, list) = s.call("GET", "/v1/flows", Some(k), None).await;
        assert_eq!(list["flows"], json!([]), "nothing was written");
        // A name taken: 409.
        let body = json!({"name": "main", "config": flow(&w, &m)});
        assert_eq!(
            s.call("POST", "/v1/flows", Some(k), Some(body.clone()))
                .await
                .0,
            201
        );
        let (st, e) = s.call("POST", "/v1/flows", Some(k), Some(body)).await;
        assert_eq!(st, 409, "{e}");
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_refused_menu_names_its_field_path_and_a_replacement_that_breaks_a_flow_answers_409() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = key.as_str();
        let w = world(&s, k, "5000").await;
        let cases: Vec<(Value, &str)> = vec![
            (json!({"timeout_ms": 0}), "config.timeout_ms"),
            (json!({"max_failures": 11}), "config.max_failures"),
            (json!({"greet_long": "has space.wav"}), "config.greet_long"),
            (json!({"entries": []}), "config.entries"),
            (json!({"on_max_timeouts": {"kind": "repeat"}}), "config.on_max_timeouts"),
            (json!({"entries": [{"keys": {"exact": "1"}, "action": {"kind": "submenu", "menu": "777"}}]}),
             "config.entries[0].action.menu"),
            (json!({"id": "main"}), "config.id"),
            (json!({"bogus": true}), "config.bogus"),
        ];
        for (change, want) in cases {
            let mut config = menu();
            for (k2, v) in change.as_object().unwrap() {
                config[k2] = v.clone();
            }
            let (st, e) = s
                .call("POST", "/v1/ivr-menus", Some(k), Some(json!({"name": "bad", "config": config})))
                .await;
            assert_eq!((st, field(&e)), (422, Some(want)), "{change}: {e}");
        }
        let (_, list) = s.call("GET", "/v1/ivr-menus", Some(k), None).await;
        assert_eq!(list["ivr_menus"], json!([]), "nothing was written");

        // A stored submenu; a menu whose steps no flow has yet is fine alone.
        let sub = create(&s, k, "/v1/ivr-menus", json!({"name": "sub", "config": menu()})).await;
        let mut top = menu();
        top["entries"][1] = json!({"keys": {"exact": "2"}, "action": {"kind": "submenu", "menu": sub.to_string()}});
        let top_id = create(&s, k, "/v1/ivr-menus", json!({"name": "top", "config": top})).await;
        let flow_id = create(&s, k, "/v1/flows",
            json!({"name": "main", "config": flow(&w, &top_id.to_string())})).await;
        // The submenu, reached through the top menu, now names a step the flow lacks: 409
        // naming the flow, and the menu is left as it was.
        let mut broken = menu();
        broken["entries"][0]["action"]["step"] = json!("billing");
        let (st, e) = s
            .call("PUT", &format!("/v1/ivr-menus/{sub}"), Some(k),
                Some(json!({"name": "sub", "config": broken})))
            .await;
        assert_eq!((st, field(&e)), (409, Some("config")), "{e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains(&flow_id.to_string()) && message.contains("billing"), "{message}");
        let (_, now) = s.call("GET", &format!("/v1/ivr-menus/{sub}"), Some(k), None).await;
        assert_eq!(now["config"]["entries"][0]["action"]["step"], "sales");
        // A menu may not name itself as a submenu.
        let mut itself = menu();
        itself["entries"][1] = json!({"keys": {"exact": "2"}, "action": {"kind": "submenu", "menu": sub.to_string()}});
        let (st, e) = s
            .call("PUT", &format!("/v1/ivr-menus/{sub}"), Some(k),
                Some(json!({"name": "sub", "config": itself})))
            .await;
        assert_eq!((st, field(&e)), (422, Some("config.entries[1].action.menu")), "{e}");
        // Two stored menus naming each other: the flow that uses them would loop; refused.
        let mut back_to_top = menu();
        back_to_top["entries"][1] = json!({"keys": {"exact": "2"}, "action": {"kind": "submenu", "menu": top_id.to_string()}});
        let (st, e) = s
            .call("PUT", &format!("/v1/ivr-menus/{sub}"), Some(k),
                Some(json!({"name": "sub", "config": back_to_top})))
            .await;
        assert_eq!(st, 409, "{e}");
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_number_routes_to_one_flow_and_a_number_taken_by_any_tenant_is_refused() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = key.as_str();
        let w = world(&s, k, "5000").await;
        let f = create(
            &s,
            k,
            "/v1/flows",
            json!({"name": "main", "config": flow_with_local_menu(&w)}),
        )
        .await;
        let (_, globex) = s.tenant("globex").await;
        let gw = world(&s, &globex, "6000").await;
        let gf = create(
            &s,
            &globex,
            "/v1/flows",
            json!({"name": "main", "config": flow_with_local_menu(&gw)}),
        )
        .await;

        let n = create(
            &s,
            k,
            "/v1/numbers",
            json!({"number": "+15550100100", "flow": f}),
        )
        .await;
        let other = create(&s, k, "/v1/numbers", json!({"number": "8001", "flow": f})).await;
        // The same number written otherwise, by this tenant and by another: 409 naming it.
        for (who, key, flow) in [("acme", k, f), ("globex", globex.as_str(), gf)] {
            let (st, e) = s
                .call(
                    "POST",
                    "/v1/numbers",
                    Some(key),
                    Some(json!({"number": "1 555 010 0100", "flow": flow})),
                )
                .await;
            assert_eq!((st, field(&e)), (409, Some("number")), "{who}: {e}");
        }
        // Moving another number onto it: 409 too; onto itself is no conflict.
        let (st, e) = s
            .call(
                "PUT",
                &format!("/v1/numbers/{other}"),
                Some(k),
                Some(json!({"number": "+15550100100", "flow": f})),
            )
            .await;
        assert_eq!((st, field(&e)), (409, Some("number")), "{e}");
        let (st, e) = s
            .call(
                "PUT",
                &format!("/v1/numbers/{n}"),
                Some(k),
                Some(json!({"number": "+1-555-010-0100", "flow": f})),
            )
            .await;
        assert_eq!(st, 200, "{e}");
        // Not a number; a missing flow; another tenant's flow.
        for (body, want) in [
            (json!({"number": "call me", "flow": f}), "number"),
            (json!({"number": "", "flow": f}), "number"),
            (json!({"number": "1".repeat(40), "flow": f}), "number"),
            (json!({"number": "+15550100999", "flow": 12345}), "flow"),
            (json!({"number": "+15550100999", "flow": gf}), "flow"),
        ] {
            let (st, e) = s
                .call("POST", "/v1/numbers", Some(k), Some(body.clone()))
                .await;
            assert_eq!((st, field(&e)), (422, Some(want)), "{body}: {e}");
        }
        for body in [json!({"flow": 12345}), json!({"flow": gf})] {
            let (st, e) = s
                .call("PUT", "/v1/numbers/default", Some(k), Some(body.clone()))
                .await;
            assert_eq!((st, field(&e)), (422, Some("flow")), "{body}: {e}");
        }
        let (_, plan) = s.call("GET", "/v1/numbers", Some(k), None).await;
        let numbers: Vec<&str> = plan["numbers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["number"].as_str().unwrap())
            .collect();
        assert_eq!(numbers, ["+1-555-010-0100", "8001"], "{plan}");
        assert_eq!(plan["default_flow"], Value::Null);
        // globex's plan is its own.
        let (_, theirs) = s.call("GET", "/v1/numbers", Some(&globex), None).await;
        assert_eq!(theirs["numbers"], json!([]), "{theirs}");
        // A number freed by one tenant can be taken by another.
        assert_eq!(
            s.call("DELETE", &format!("/v1/numbers/{n}"), Some(k), None)
                .await
                .0,
            204
        );
        create(
            &s,
            &globex,
            "/v1/numbers",
            json!({"number": "+15550100100", "flow": gf}),
        )
        .await;
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn deleting_what_a_flow_or_a_number_uses_answers_409_saying_what_uses_it() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = key.as_str();
        let w = world(&s, k, "5000").await;
        let sub = create(
            &s,
            k,
            "/v1/ivr-menus",
            json!({"name": "sub", "config": menu()}),
        )
        .await;
        let mut top = menu();
        top["entries"][1] =
            json!({"keys": {"exact": "2"}, "action": {"kind": "submenu", "menu": sub.to_string()}});
        let top_id = create(
            &s,
            k,
            "/v1/ivr-menus",
            json!({"name": "top", "config": top}),
        )
        .await;
        let f = create(
            &s,
            k,
            "/v1/flows",
            json!({"name": "front door", "config": flow(&w, &top_id.to_string())}),
        )
        .await;
        let n = create(
            &s,
            k,
            "/v1/numbers",
            json!({"number": "+15550100100", "flow": f}),
        )
        .await;
        assert_eq!(
            s.call(
                "PUT",
                "/v1/numbers/default",
                Some(k),
                Some(json!({"flow": f}))
            )
            .await
            .0,
            200
        );

        let refused = |path: String, names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            let s = &s;
            async move {
                let (st, e) = s.call("DELETE", &path, Some(k), None).await;
                assert_eq!(
                    (st, e["error"]["code"].as_str()),
                    (409, Some("conflict")),
                    "{path}: {e}"
                );
                let message = e["error"]["message"].as_str().unwrap();
                for name in &names {
                    assert!(
                        message.contains(name.as_str()),
                        "{path}: {message:?} names {name:?}"
                    );
                }
                let (st, _) = s.call("GET", &path, Some(k), None).await;
                assert_eq!(st, 200, "{path} is still there");
            }
        };
        refused(format!("/v1/schedules/{}", w.schedule), &["front door"]).await;
        refused(format!("/v1/ivr-menus/{top_id}"), &["front door"]).await;
        refused(format!("/v1/ivr-menus/{sub}"), &["\"top\""]).await;
        refused(format!("/v1/flows/{f}"), &["+15550100100", "default route"]).await;
        refused(format!("/v1/agents/{}", w.agent), &["front door"]).await;
        refused(format!("/v1/queues/{}", w.queue), &[&f.to_string()]).await;
        let (_, e) = s
            .call("DELETE", &format!("/v1/queues/{}", w.queue), Some(k), None)
            .await;
        assert_eq!(e["used_by"]["flows"], json!([f]), "{e}");

        // Once nothing uses them, each goes.
        assert_eq!(
            s.call("DELETE", &format!("/v1/numbers/{n}"), Some(k), None)
                .await
                .0,
            204
        );
        refused(format!("/v1/flows/{f}"), &["default route"]).await;
        assert_eq!(
            s.call("DELETE", "/v1/numbers/default", Some(k), None)
                .await
                .0,
            204
        );
        for path in [
            format!("/v1/flows/{f}"),
            format!("/v1/schedules/{}", w.schedule),
            format!("/v1/ivr-menus/{top_id}"),
            format!("/v1/ivr-menus/{sub}"),
            format!("/v1/agents/{}", w.agent),
            format!("/v1/queues/{}", w.queue),
        ] {
            let (st, e) = s.call("DELETE", &path, Some(k), None).await;
            assert_eq!(st, 204, "{path}: {e}");
        }
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn every_menu_flow_and_number_route_answers_each_role_and_tenant_as_the_matrix_says() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let (_, globex) = s.tenant("globex").await;
        let w = world(&s, &admin, "5000").await;
        let agent: i64 = w.agent.parse().unwrap();
        let m = create(
            &s,
            &admin,
            "/v1/ivr-menus",
            json!({"name": "m", "config": menu()}),
        )
        .await;
        let f = create(
            &s,
            &admin,
            "/v1/flows",
            json!({"name": "f", "config": flow(&w, &m.to_string())}),
        )
        .await;
        let n = create(
            &s,
            &admin,
            "/v1/numbers",
            json!({"number": "+15550100100", "flow": f}),
        )
        .await;
        let keys = [
            ("admin", admin.clone()),
            ("supervisor", s.key(Some(tenant), Role::Supervisor).await),
            ("agent", s.agent_key(tenant, agent).await),
            ("read-only", s.key(Some(tenant), Role::ReadOnly).await),
            ("platform", s.key(None, Role::PlatformAdmin).await),
            ("globex admin", globex),
        ];
        let menu_body = json!({"name": "m", "config": menu()});
        let flow_body = json!({"name": "f", "config": flow(&w, &m.to_string())});
        let number_body = json!({"number": "+15550100100", "flow": f});
        let default_body = json!({"flow": f});
        // (method, path, body, what globex's admin gets)
        let routes: Vec<(&str, String, Option<Value>, u16)> = vec![
            ("GET", "/v1/ivr-menus".into(), None, 200),
            ("POST", "/v1/ivr-menus".into(), Some(menu_body.clone()), 201),
            ("GET", format!("/v1/ivr-menus/{m}"), None, 404),
            (
                "PUT",
                format!("/v1/ivr-menus/{m}"),
                Some(menu_body.clone()),
                404,
            ),
            ("DELETE", format!("/v1/ivr-menus/{m}"), None, 404),
            ("GET", "/v1/flows".into(), None, 200),
            // acme's queue, agent, schedule and menu are none of globex's.
            ("POST", "/v1/flows".into(), Some(flow_body.clone()), 422),
            ("GET", format!("/v1/flows/{f}"), None, 404),
            (
                "PUT",
                format!("/v1/flows/{f}"),
                Some(flow_body.clone()),
                404,
            ),
            ("DELETE", format!("/v1/flows/{f}"), None, 404),
            ("GET", "/v1/numbers".into(), None, 200),
            ("POST", "/v1/numbers".into(), Some(number_body.clone()), 422),
            ("GET", format!("/v1/numbers/{n}"), None, 404),
            (
                "PUT",
                format!("/v1/numbers/{n}"),
                Some(number_body.clone()),
                404,
            ),
            ("DELETE", format!("/v1/numbers/{n}"), None, 404),
            ("GET", "/v1/numbers/default".into(), None, 200),
            (
                "PUT",
                "/v1/numbers/default".into(),
                Some(default_body.clone()),
                422,
            ),
            ("DELETE", "/v1/numbers/default".into(), None, 404),
        ];
        for (method, path, body, for_globex) in &routes {
            let read = *method == "GET";
            for (who, want) in [
                ("supervisor", if read { 200 } else { 403 }),
                ("agent", if read { 200 } else { 403 }),
                ("read-only", if read { 200 } else { 403 }),
                ("platform", 403),
                ("globex admin", *for_globex),
            ] {
                let key = &keys.iter().find(|(n, _)| *n == who).expect("a key").1;
                let (st, v) = s.call(method, path, Some(key), body.clone()).await;
                assert_eq!(st, want, "{method} {path} as {who}: {v}");
            }
        }
        // acme's admin, users before what they use.
        for (method, path, body, want) in [
            ("PUT", format!("/v1/numbers/{n}"), Some(number_body), 200),
            ("PUT", "/v1/numbers/default".into(), Some(default_body), 200),
            ("DELETE", "/v1/numbers/default".into(), None, 204),
            ("DELETE", format!("/v1/numbers/{n}"), None, 204),
            ("PUT", format!("/v1/flows/{f}"), Some(flow_body), 200),
            ("DELETE", format!("/v1/flows/{f}"), None, 204),
            ("PUT", format!("/v1/ivr-menus/{m}"), Some(menu_body), 200),
            ("DELETE", format!("/v1/ivr-menus/{m}"), None, 204),
        ] {
            let (st, v) = s.call(method, &path, Some(&admin), body).await;
            assert_eq!(st, want, "{method} {path} as admin: {v}");
        }
        s.stop().await;
    })
    .await;
}
