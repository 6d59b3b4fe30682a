//! `POST /v1/analytics/export` over real HTTP, on SQLite and PostgreSQL: each kind's header and
//! rows for a range (its edges included and excluded as documented), the queue and agent
//! filters, tenant isolation, bad input refused with its field, and a 20,000-call export that
//! arrives complete and in order.

mod server_common;
mod store_common;

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::ids::IdKind;
use switchyard_api::model::{Role, TenantId};
use switchyard_api::store::{CallRow, IntervalRow, IntervalScope};
use uuid::Uuid;

/// 2026-11-02T00:00:00Z: the day the tests' history happened (long before the test runs, so
/// the runtime's own interval writes never fall in it).
const DAY: i64 = 1_793_577_600_000;
const QUARTER: i64 = 15 * 60 * 1000;

/// An export's status, content type and body.
async fn export(s: &Server, key: &str, body: Value) -> (u16, String, String) {
    let resp = s
        .http
        .post(format!("{}/v1/analytics/export", s.base))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, ctype, resp.text().await.expect("a complete body"))
}

/// A CSV export's rows, header first.
async fn rows(s: &Server, key: &str, body: Value) -> Vec<Vec<String>> {
    let (st, ctype, text) = export(s, key, body.clone()).await;
    assert_eq!(st, 200, "{body}: {text}");
    assert_eq!(ctype, "text/csv; charset=utf-8");
    parse(&text)
}

fn parse(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("valid CSV").iter().map(str::to_owned).collect())
        .collect()
}

/// The column `name` of every data row.
fn column(rows: &[Vec<String>], name: &str) -> Vec<String> {
    let i = rows[0]
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", rows[0]));
    rows[1..].iter().map(|r| r[i].clone()).collect()
}

/// A new queue of the key's tenant: (its id as the API shows it, its store id).
async fn queue(s: &Server, admin: &str, name: &str) -> (i64, i64) {
    let (st, q) = s
        .call(
            "POST",
            "/v1/queues",
            Some(admin),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(st, 201, "{q}");
    let shown = q["id"].as_i64().unwrap();
    (shown, s.rt.ids.decode(IdKind::Queue, shown).unwrap())
}

/// A new agent of the key's tenant: (shown id, store id).
async fn agent(s: &Server, admin: &str, name: &str) -> (i64, i64) {
    let shown = s.agent(admin, name, &format!("user/{name}")).await;
    (shown, s.stored_agent(shown))
}

fn call(tenant: TenantId, queue: i64, agent: Option<i64>, at: i64, caller: &str) -> CallRow {
    CallRow {
        id: Uuid::new_v4(),
        tenant,
        queue_id: queue,
        queues: vec![queue],
        agent_id: agent,
        caller_number: caller.into(),
        outcome: if agent.is_some() {
            "answered"
        } else {
            "abandoned"
        }
        .into(),
        arrived_at_ms: at,
        wait_ms: 12_345,
        talk_ms: if agent.is_some() { 61_250 } else { 0 },
        offers: 1,
        synthetic: false,
        callback_leg: None,
    }
}

fn agent_figures(offered: u64) -> Value {
    json!({
        "offered": offered, "accepted": offered, "rejected": 0, "no_answer": 0, "busy": 0,
        "failed": 0, "lost": 0, "answered": offered, "handled": offered,
        "talk_s": 120.5, "wrapup_s": 30.0, "handle_s": 150.5,
        "aht_s": if offered > 0 { json!(150.5 / offered as f64) } else { Value::Null },
        "occupancy": 0.25,
        "state_time_s": {"logged_out": 0.0, "available": 600.0, "on_break": 0.0,
                         "reserved": 10.0, "on_call": 120.5, "wrap_up": 30.0}
    })
}

fn queue_figures(offered: u64, answered: u64) -> Value {
    let abandoned = offered - answered;
    json!({
        "offered": offered, "answered": answered, "answered_within_sl": answered,
        "abandoned": abandoned, "short_abandoned": 0,
        "exited": {"timeout": 0, "no_agents": 0, "overflow": 0, "voicemail": 0, "callback": 0,
                   "dtmf": 0, "supervisor": 0, "other": 0},
        "exited_total": 0,
        "offers": {"accepted": answered, "rejected": 0, "no_answer": 0, "busy": 0, "failed": 0,
                   "lost": 0},
        "service_level": if offered > 0 { json!(answered as f64 / offered as f64) } else { Value::Null },
        "service_level_excl_short": Value::Null,
        "asa_s": if answered > 0 { json!(4.5) } else { Value::Null },
        "avg_abandon_wait_s": Value::Null,
        "abandon_rate": if offered > 0 { json!(abandoned as f64 / offered as f64) } else { Value::Null },
        "talk_s": 100.0, "wrapup_s": 0.0, "handled": answered, "handle_s": 100.0,
        "aht_s": Value::Null, "occupancy": Value::Null,
        "agent_time_s": {"logged_out": 0.0, "available": 0.0, "on_break": 0.0, "reserved": 0.0,
                         "on_call": 0.0, "wrap_up": 0.0}
    })
}

fn interval(
    tenant: Option<TenantId>,
    scope: IntervalScope,
    start: i64,
    figures: Value,
) -> IntervalRow {
    IntervalRow {
        tenant,
        scope,
        start_ms: start,
        end_ms: start + QUARTER,
        figures,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_export_one_row_per_ended_call_in_the_range_with_the_apis_ids() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let (q1, q1_stored) = queue(&s, &admin, "sales").await;
        let (q2, q2_stored) = queue(&s, &admin, "support").await;
        let (a1, a1_stored) = agent(&s, &admin, "ana").await;

        let first = call(tenant, q1_stored, Some(a1_stored), DAY, "+15550100199");
        let mut moved = call(
            tenant,
            q2_stored,
            None,
            DAY + 1_000,
            "=HYPERLINK(\"http://x\")",
        );
        moved.queues = vec![q1_stored, q2_stored];
        moved.callback_leg = Some(Uuid::new_v4());
        let last = call(
            tenant,
            q2_stored,
            Some(a1_stored),
            DAY + 86_399_999,
            "-1+cmd|' /C calc'!A0",
        );
        let before = call(tenant, q1_stored, None, DAY - 1, "+15550100001");
        let at_the_end = call(tenant, q1_stored, None, DAY + 86_400_000, "+15550100002");
        let mut open = call(tenant, q1_stored, None, DAY + 5_000, "+15550100003");
        open.outcome = "in-progress".into();
        s.store
            .insert_calls(&[
                last.clone(),
                before,
                first.clone(),
                at_the_end,
                open,
                moved.clone(),
            ])
            .await
            .unwrap();

        let range =
            json!({"kind": "calls", "from": "2026-11-02T00:00:00Z", "to": DAY + 86_400_000});
        let all = rows(&s, &admin, range.clone()).await;
        assert_eq!(
            all[0],
            [
                "id",
                "arrived_at",
                "arrived_at_ms",
                "queue",
                "queues",
                "agent",
                "caller",
                "outcome",
                "wait_s",
                "talk_s",
                "offers",
                "callback"
            ]
        );
        // `from` is in, `to` is out, the call under way is not history yet; oldest first.
        assert_eq!(
            column(&all, "id"),
            [first.id, moved.id, last.id].map(|u| u.to_string())
        );
        assert_eq!(
            all[1],
            [
                first.id.to_string(),
                "2026-11-02T00:00:00.000Z".into(),
                DAY.to_string(),
                q1.to_string(),
                q1.to_string(),
                a1.to_string(),
                "+15550100199".into(),
                "answered".into(),
                "12.345".into(),
                "61.250".into(),
                "1".into(),
                String::new(),
            ]
        );
        assert_eq!(all[2][4], format!("{q1} {q2}"), "every queue, in order");
        assert_eq!(all[2][5], "", "no agent");
        assert_eq!(all[2][11], moved.callback_leg.unwrap().to_string());
        // Formulas are defused; phone numbers are left alone.
        assert_eq!(all[2][6], "'=HYPERLINK(\"http://x\")");
        assert_eq!(all[3][6], "'-1+cmd|' /C calc'!A0");
        assert_eq!(all[3][1], "2026-11-02T23:59:59.999Z");

        let mut only_q2 = range.clone();
        only_q2["queue"] = json!(q2);
        let by_queue = rows(&s, &admin, only_q2).await;
        assert_eq!(
            column(&by_queue, "id"),
            [moved.id, last.id].map(|u| u.to_string())
        );
        let mut only_a1 = range.clone();
        only_a1["agent"] = json!(a1);
        let by_agent = rows(&s, &admin, only_a1.clone()).await;
        assert_eq!(
            column(&by_agent, "id"),
            [first.id, last.id].map(|u| u.to_string())
        );
        only_a1["queue"] = json!(q1);
        let both = rows(&s, &admin, only_a1).await;
        assert_eq!(column(&both, "id"), [first.id.to_string()]);

        // Supervisors export too; the export is in the audit log.
        let supervisor = s.key(Some(tenant), Role::Supervisor).await;
        assert_eq!(rows(&s, &supervisor, range).await.len(), 4);
        let (_, log) = s.call("GET", "/v1/audit", Some(&admin), None).await;
        let exports = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "analytics.export")
            .count();
        assert_eq!(exports, 5, "{log}");

        // A range with nothing in it is the header alone.
        let empty = rows(&s, &admin, json!({"kind": "calls", "from": 0, "to": 1000})).await;
        assert_eq!(empty.len(), 1);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_exports_give_each_agent_and_queue_its_figures_per_interval() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let (q1, q1_stored) = queue(&s, &admin, "sales").await;
        let (q2, q2_stored) = queue(&s, &admin, "support").await;
        let (a1, a1_stored) = agent(&s, &admin, "ana").await;
        let (a2, a2_stored) = agent(&s, &admin, "bo").await;
        let t = Some(tenant);
        s.store
            .insert_intervals(&[
                interval(t, IntervalScope::Agent(a1_stored), DAY, agent_figures(2)),
                interval(
                    t,
                    IntervalScope::Agent(a1_stored),
                    DAY + QUARTER,
                    agent_figures(0),
                ),
                interval(t, IntervalScope::Agent(a2_stored), DAY, agent_figures(4)),
                // Outside the range on both sides.
                interval(
                    t,
                    IntervalScope::Agent(a1_stored),
                    DAY - QUARTER,
                    agent_figures(9),
                ),
                interval(
                    t,
                    IntervalScope::Agent(a1_stored),
                    DAY + 4 * QUARTER,
                    agent_figures(9),
                ),
                interval(t, IntervalScope::Queue(q1_stored), DAY, queue_figures(4, 3)),
                interval(
                    t,
                    IntervalScope::Queue(q2_stored),
                    DAY + 3 * QUARTER,
                    queue_figures(0, 0),
                ),
                // Platform-wide totals are nobody's.
                interval(None, IntervalScope::Total, DAY, queue_figures(99, 99)),
            ])
            .await
            .unwrap();
        let range = |kind: &str| json!({"kind": kind, "from": DAY, "to": DAY + 4 * QUARTER});

        let agents = rows(&s, &admin, range("agents")).await;
        assert_eq!(
            agents[0],
            [
                "interval_start",
                "interval_end",
                "interval_start_ms",
                "interval_end_ms",
                "agent",
                "offered",
                "accepted",
                "rejected",
                "no_answer",
                "busy",
                "failed",
                "lost",
                "answered",
                "handled",
                "talk_s",
                "wrapup_s",
                "handle_s",
                "aht_s",
                "occupancy",
                "logged_out_s",
                "available_s",
                "on_break_s",
                "reserved_s",
                "on_call_s",
                "wrap_up_s"
            ]
        );
        // Per agent (in store order), then by time.
        let mut expected = [
            (a1_stored, a1, DAY, "2"),
            (a1_stored, a1, DAY + QUARTER, "0"),
            (a2_stored, a2, DAY, "4"),
        ];
        expected.sort();
        let got: Vec<(String, String, String)> = agents[1..]
            .iter()
            .map(|r| (r[4].clone(), r[2].clone(), r[5].clone()))
            .collect();
        let want: Vec<(String, String, String)> = expected
            .iter()
            .map(|(_, shown, at, offered)| (shown.to_string(), at.to_string(), offered.to_string()))
            .collect();
        assert_eq!(got, want);
        let a1_first = agents[1..]
            .iter()
            .find(|r| r[4] == a1.to_string() && r[2] == DAY.to_string())
            .unwrap();
        assert_eq!(a1_first[0], "2026-11-02T00:00:00.000Z");
        assert_eq!(a1_first[1], "2026-11-02T00:15:00.000Z");
        assert_eq!(a1_first[14], "120.5", "talk_s");
        assert_eq!(a1_first[17], "75.25", "aht_s");
        assert_eq!(a1_first[18], "0.25", "occupancy");
        assert_eq!(a1_first[20], "600.0", "available_s");
        let a1_idle = agents[1..]
            .iter()
            .find(|r| r[4] == a1.to_string() && r[2] == (DAY + QUARTER).to_string())
            .unwrap();
        assert_eq!(a1_idle[17], "", "no AHT without a handled call");

        let mut one_agent = range("agents");
        one_agent["agent"] = json!(a2);
        let only = rows(&s, &admin, one_agent).await;
        assert_eq!(column(&only, "agent"), [a2.to_string()]);

        let queues = rows(&s, &admin, range("queue_intervals")).await;
        assert_eq!(
            &queues[0][..6],
            [
                "interval_start",
                "interval_end",
                "interval_start_ms",
                "interval_end_ms",
                "queue",
                "offered"
            ]
        );
        for name in [
            "service_level",
            "asa_s",
            "abandon_rate",
            "aht_s",
            "exited_overflow",
        ] {
            assert!(
                queues[0].iter().any(|h| h == name),
                "{name}: {:?}",
                queues[0]
            );
        }
        let mut want = [(q1_stored, q1, "4"), (q2_stored, q2, "0")];
        want.sort();
        assert_eq!(
            column(&queues, "queue"),
            want.iter().map(|w| w.1.to_string()).collect::<Vec<_>>()
        );
        assert_eq!(
            column(&queues, "offered"),
            want.iter().map(|w| w.2.to_owned()).collect::<Vec<_>>()
        );
        let sales = &queues[1..].iter().find(|r| r[4] == q1.to_string()).unwrap();
        let at = |name: &str| {
            let i = queues[0].iter().position(|h| h == name).unwrap();
            sales[i].clone()
        };
        assert_eq!(at("service_level"), "0.75");
        assert_eq!(at("abandon_rate"), "0.25");
        assert_eq!(at("asa_s"), "4.5");
        assert_eq!(at("avg_abandon_wait_s"), "");
        let mut one_queue = range("queue_intervals");
        one_queue["queue"] = json!(q2);
        let only = rows(&s, &admin, one_queue).await;
        assert_eq!(column(&only, "queue"), [q2.to_string()]);
        assert_eq!(column(&only, "service_level"), [""]);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_rows_never_appear_and_its_ids_are_refused() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (acme, acme_key) = s.tenant("acme").await;
        let (globex, globex_key) = s.tenant("globex").await;
        let (_, acme_q) = queue(&s, &acme_key, "sales").await;
        let (_, acme_a) = agent(&s, &acme_key, "ana").await;
        let (globex_q_shown, globex_q) = queue(&s, &globex_key, "sales").await;
        let (globex_a_shown, globex_a) = agent(&s, &globex_key, "gus").await;
        let mine = call(acme, acme_q, Some(acme_a), DAY + 10, "+15550100199");
        let theirs = call(globex, globex_q, Some(globex_a), DAY + 20, "+15550100777");
        s.store.insert_calls(&[mine.clone(), theirs]).await.unwrap();
        s.store
            .insert_intervals(&[
                interval(
                    Some(acme),
                    IntervalScope::Agent(acme_a),
                    DAY,
                    agent_figures(1),
                ),
                interval(
                    Some(globex),
                    IntervalScope::Agent(globex_a),
                    DAY,
                    agent_figures(7),
                ),
                interval(
                    Some(acme),
                    IntervalScope::Queue(acme_q),
                    DAY,
                    queue_figures(1, 1),
                ),
                interval(
                    Some(globex),
                    IntervalScope::Queue(globex_q),
                    DAY,
                    queue_figures(7, 7),
                ),
            ])
            .await
            .unwrap();
        let range = |kind: &str| json!({"kind": kind, "from": DAY, "to": DAY + 86_400_000});
        let calls = rows(&s, &acme_key, range("calls")).await;
        assert_eq!(column(&calls, "id"), [mine.id.to_string()]);
        let agents = rows(&s, &acme_key, range("agents")).await;
        assert_eq!(column(&agents, "offered"), ["1"]);
        let queues = rows(&s, &acme_key, range("queue_intervals")).await;
        assert_eq!(column(&queues, "offered"), ["1"]);

        // The other tenant's queue and agent are unknown here, like ones that never existed.
        for (field, id, kind) in [
            ("queue", globex_q_shown, "calls"),
            ("agent", globex_a_shown, "calls"),
            ("queue", globex_q_shown, "queue_intervals"),
            ("agent", globex_a_shown, "agents"),
        ] {
            let mut body = range(kind);
            body[field] = json!(id);
            let (st, _, text) = export(&s, &acme_key, body).await;
            let err: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(st, 422, "{text}");
            assert_eq!(err["error"]["field"], field, "{text}");
        }
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_its_field_before_any_csv() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let (q, _) = queue(&s, &admin, "sales").await;
        let (a, _) = agent(&s, &admin, "ana").await;
        let year = 366 * 86_400_000_i64;
        for (body, field) in [
            (json!({"kind": "cdrs", "from": DAY, "to": DAY + 1}), "kind"),
            (json!({"from": DAY, "to": DAY + 1}), "kind"),
            (
                json!({"kind": "calls", "from": "last tuesday", "to": DAY}),
                "from",
            ),
            (
                json!({"kind": "calls", "from": "2026-11-02T00:00:00", "to": DAY}),
                "from",
            ),
            (json!({"kind": "calls", "from": DAY, "to": [1]}), "to"),
            (json!({"kind": "calls", "from": DAY}), "to"),
            (json!({"kind": "calls", "from": DAY, "to": DAY}), "to"),
            (json!({"kind": "calls", "from": DAY, "to": DAY - 1}), "to"),
            (
                json!({"kind": "calls", "from": DAY, "to": DAY + year + 1}),
                "to",
            ),
            (
                json!({"kind": "calls", "from": DAY, "to": DAY + 1, "queue": 12345}),
                "queue",
            ),
            (
                json!({"kind": "calls", "from": DAY, "to": DAY + 1, "queue": -1}),
                "queue",
            ),
            (
                json!({"kind": "calls", "from": DAY, "to": DAY + 1, "agent": 12345}),
                "agent",
            ),
            (
                json!({"kind": "agents", "from": DAY, "to": DAY + 1, "queue": q}),
                "queue",
            ),
            (
                json!({"kind": "queue_intervals", "from": DAY, "to": DAY + 1, "agent": a}),
                "agent",
            ),
            (
                json!({"kind": "calls", "from": DAY, "to": DAY + 1, "format": "xlsx"}),
                "format",
            ),
        ] {
            let (st, ctype, text) = export(&s, &admin, body.clone()).await;
            assert_eq!(st, 422, "{body}: {text}");
            assert!(ctype.starts_with("application/json"), "{body}: {ctype}");
            let err: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(err["error"]["field"], field, "{body}: {text}");
            assert!(
                err["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
        // A year (366 days) is the longest range, and it is accepted.
        let (st, _, _) = export(
            &s,
            &admin,
            json!({"kind": "calls", "from": DAY, "to": DAY + year}),
        )
        .await;
        assert_eq!(st, 200);
        // Readers who are not supervisors may not export; nor may a key of no tenant.
        for role in [Role::Agent, Role::ReadOnly] {
            let key = if role == Role::Agent {
                s.agent_key(tenant, a).await
            } else {
                s.key(Some(tenant), role).await
            };
            let (st, _, text) = export(
                &s,
                &key,
                json!({"kind": "calls", "from": DAY, "to": DAY + 1}),
            )
            .await;
            assert_eq!(st, 403, "{role:?}: {text}");
        }
        let platform = s.key(None, Role::PlatformAdmin).await;
        let (st, _, _) = export(
            &s,
            &platform,
            json!({"kind": "calls", "from": DAY, "to": DAY + 1}),
        )
        .await;
        assert_eq!(st, 403);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twenty_thousand_call_export_arrives_complete_and_in_order() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let (q, q_stored) = queue(&s, &admin, "sales").await;
        const N: i64 = 20_000;
        // Arrival times repeat (ten calls each millisecond), so the order inside a millisecond
        // is the id's: pages must cut between calls of one millisecond without losing any.
        let mut calls: Vec<CallRow> = (0..N)
            .map(|i| call(tenant, q_stored, None, DAY + i / 10, "+15550100199"))
            .collect();
        for batch in calls.chunks(2_000) {
            s.store.insert_calls(batch).await.unwrap();
        }
        calls.sort_by_key(|c| c.arrived_at_ms);

        let resp = s
            .http
            .post(format!("{}/v1/analytics/export", s.base))
            .bearer_auth(&admin)
            .json(&json!({"kind": "calls", "from": DAY, "to": DAY + 86_400_000, "queue": q}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(
            resp.headers().get("content-length").is_none(),
            "streamed in chunks, not sized up front"
        );
        let text = resp.text().await.expect("the transfer completes");
        let got = parse(&text);
        assert_eq!(got.len() as i64, N + 1, "header and every call");
        // Every call once (the order of ids within a millisecond is the database's collation).
        let ids = column(&got, "id");
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        let want: std::collections::BTreeSet<String> =
            calls.iter().map(|c| c.id.to_string()).collect();
        assert_eq!(distinct.len(), ids.len(), "no call twice");
        assert_eq!(
            distinct
                .into_iter()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>(),
            want
        );
        // Oldest first.
        let arrived: Vec<i64> = column(&got, "arrived_at_ms")
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        let sorted: Vec<i64> = calls.iter().map(|c| c.arrived_at_ms).collect();
        assert_eq!(arrived, sorted);
        s.stop().await;
    })
    .await;
}
