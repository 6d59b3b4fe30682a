//! `/v1/analytics/*` on SQLite and PostgreSQL: ranges and granularities, the tenant's time zone
//! (a DST day), the previous period, the heatmap, per queue and per agent figures (breaks by
//! reason, repeat callers, leaderboards), campaign results, bad input refused with its field,
//! and a simulated day run through the real record writer agreeing with the engine.

mod server_common;
mod store_common;

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::ids::IdKind;
use switchyard_api::model::{Role, TenantId};
use switchyard_api::store::{IntervalRow, IntervalScope, Pools, Store};
use switchyard_engine::io::{Output, Record};
use switchyard_engine::sim::{AgentGroup, QueueScenario, Scenario, Simulation};
use switchyard_engine::stats::{Figures, Scope};
use switchyard_engine::{AgentId, EngineConfig, QueueId};

const QUARTER: i64 = 900_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

fn ms(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// Runs raw SQL on the store's writer (rows that nothing in the API writes yet, or history
/// shaped by hand).
async fn exec(store: &Store, sql: &str) {
    match store.pools() {
        Pools::Sqlite { writer, .. } => {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(writer)
                .await
                .unwrap();
        }
        Pools::Postgres(pg) => {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(pg)
                .await
                .unwrap();
        }
    }
}

/// A queue's interval figures as the engine serialises them.
#[derive(Clone, Copy, Default)]
struct Q {
    offered: u64,
    answered: u64,
    within: u64,
    abandoned: u64,
    exited: u64,
    callbacks: u64,
    wait_s: f64,
    handled: u64,
    handle_s: f64,
}

fn queue_json(q: Q) -> Value {
    json!({
        "offered": q.offered,
        "answered": q.answered,
        "answered_within_sl": q.within,
        "abandoned": q.abandoned,
        "short_abandoned": 0,
        "exited": {"timeout": q.exited - q.callbacks, "no_agents": 0, "overflow": 0,
            "voicemail": 0, "callback": q.callbacks, "dtmf": 0, "supervisor": 0, "other": 0},
        "exited_total": q.exited,
        "offers": {"accepted": q.answered, "rejected": 0, "no_answer": 0, "busy": 0,
            "failed": 0, "lost": 0},
        "service_level": null,
        "service_level_excl_short": null,
        "asa_s": if q.answered > 0 { json!(q.wait_s / q.answered as f64) } else { Value::Null },
        "avg_abandon_wait_s": null,
        "abandon_rate": null,
        "talk_s": q.handle_s,
        "wrapup_s": 0.0,
        "handled": q.handled,
        "handle_s": q.handle_s,
        "aht_s": null,
        "occupancy": null,
        "agent_time_s": {"logged_out": 0.0, "available": 0.0, "on_break": 0.0,
            "reserved": 0.0, "on_call": 0.0, "wrap_up": 0.0},
    })
}

#[allow(clippy::too_many_arguments)]
fn agent_json(
    handled: u64,
    handle_s: f64,
    rejected: u64,
    no_answer: u64,
    available: f64,
    on_call: f64,
) -> Value {
    json!({
        "offered": handled + rejected + no_answer, "accepted": handled, "rejected": rejected,
        "no_answer": no_answer, "busy": 0, "failed": 0, "lost": 0, "answered": handled,
        "handled": handled, "talk_s": handle_s, "wrapup_s": 0.0, "handle_s": handle_s,
        "aht_s": null, "occupancy": null,
        "state_time_s": {"logged_out": 0.0, "available": available, "on_break": 0.0,
            "reserved": 0.0, "on_call": on_call, "wrap_up": 0.0},
    })
}

async fn put_queue(store: &Store, tenant: TenantId, queue: i64, start_ms: i64, q: Q) {
    store
        .insert_intervals(&[IntervalRow {
            tenant: Some(tenant),
            scope: IntervalScope::Queue(queue),
            start_ms,
            end_ms: start_ms + QUARTER,
            figures: queue_json(q),
        }])
        .await
        .unwrap();
}

async fn put_agent(store: &Store, tenant: TenantId, agent: i64, start_ms: i64, figures: Value) {
    store
        .insert_intervals(&[IntervalRow {
            tenant: Some(tenant),
            scope: IntervalScope::Agent(agent),
            start_ms,
            end_ms: start_ms + QUARTER,
            figures,
        }])
        .await
        .unwrap();
}

async fn get(s: &Server, key: &str, path: &str) -> Value {
    let (st, v) = s.call("GET", path, Some(key), None).await;
    assert_eq!(st, 200, "{path}: {v}");
    v
}

fn close(a: &Value, b: f64) {
    let a = a.as_f64().unwrap_or_else(|| panic!("a number, got {a}"));
    assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} != {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_sums_counters_per_bucket_derives_ratios_and_compares_the_previous_period() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let (acme, key) = s.tenant("acme").await;
        let (other, _) = s.tenant("other").await;
        let day1 = ms("2026-03-02T00:00:00Z"); // a Monday
        let day0 = day1 - DAY;
        // Day 0 (the previous period): 10 offered, 8 answered, 4 within SL.
        let q0 = Q { offered: 10, answered: 8, within: 4, abandoned: 2, wait_s: 80.0, handled: 8, handle_s: 800.0, ..Q::default() };
        put_queue(&store, acme, 1, day0 + 9 * HOUR, q0).await;
        // Day 1: a quiet quarter hour and a busy one in queue 1, one in queue 2.
        let quiet = Q { offered: 1, answered: 1, within: 1, wait_s: 5.0, handled: 1, handle_s: 100.0, ..Q::default() };
        let busy = Q { offered: 20, answered: 15, within: 10, abandoned: 3, exited: 2, callbacks: 1, wait_s: 300.0, handled: 14, handle_s: 2800.0 };
        put_queue(&store, acme, 1, day1 + 9 * HOUR, quiet).await;
        put_queue(&store, acme, 1, day1 + 14 * HOUR + QUARTER, busy).await;
        put_queue(&store, acme, 2, day1 + 14 * HOUR + QUARTER, quiet).await;
        // Another tenant's rows never show.
        put_queue(&store, other, 1, day1 + 9 * HOUR, busy).await;
        // Occupancy comes from the agents' own time, once per agent.
        put_agent(&store, acme, 7, day1 + 9 * HOUR, agent_json(2, 200.0, 0, 0, 300.0, 600.0)).await;

        let v = get(&s, &key, &format!("/v1/analytics/overview?from={day1}&to={}&granularity=hour", day1 + DAY)).await;
        let t = &v["totals"];
        assert_eq!(t["offered"], 22);
        assert_eq!(t["answered"], 17);
        assert_eq!(t["answered_within_sl"], 12);
        assert_eq!(t["abandoned"], 3);
        assert_eq!(t["exited"], 2);
        assert_eq!(t["callbacks"], 1);
        // Ratios from summed counters, the engine's definitions.
        close(&t["service_level"], 12.0 / 20.0);
        close(&t["asa_s"], 310.0 / 17.0);
        close(&t["abandon_rate"], 3.0 / 22.0);
        close(&t["aht_s"], 3000.0 / 16.0);
        close(&t["occupancy"], 600.0 / 900.0);
        assert_eq!(v["buckets"].as_array().unwrap().len(), 24);
        let nine = &v["buckets"][9];
        assert_eq!(nine["start_ms"], day1 + 9 * HOUR);
        assert_eq!(nine["offered"], 1);
        assert_eq!(v["buckets"][14]["offered"], 21);
        assert_eq!(v["buckets"][13]["service_level"], Value::Null);
        // The previous period is the day before.
        assert_eq!(v["previous"]["from_ms"], day0);
        assert_eq!(v["previous"]["totals"]["offered"], 10);
        close(&v["previous"]["totals"]["service_level"], 0.4);
        // Heatmap: Monday 14:00 holds the busy quarter hour.
        let cells = v["heatmap"].as_array().unwrap();
        assert_eq!(cells.len(), 168);
        let mon14 = cells.iter().find(|c| c["weekday"] == 1 && c["hour"] == 14).unwrap();
        assert_eq!((mon14["offered"].as_u64(), mon14["answered"].as_u64()), (Some(21), Some(16)));
        assert_eq!(v["open_interval"], false);

        // 15-minute and day granularity; a queue filter.
        let v = get(&s, &key, &format!("/v1/analytics/overview?from={day1}&to={}&granularity=15m", day1 + DAY)).await;
        assert_eq!(v["buckets"].as_array().unwrap().len(), 96);
        assert_eq!(v["buckets"][57]["offered"], 21);
        let shown = s.rt.ids.encode(IdKind::Queue, 2);
        let v = get(&s, &key, &format!("/v1/analytics/overview?from={day0}&to={}&granularity=day&queue={shown}", day1 + DAY)).await;
        let days: Vec<&Value> = v["buckets"].as_array().unwrap().iter().map(|b| &b["offered"]).collect();
        assert_eq!(days, [&json!(0), &json!(1)]);
        // RFC 3339 works as unix ms does.
        let v = get(&s, &key, "/v1/analytics/overview?from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z&granularity=day").await;
        assert_eq!(v["totals"]["offered"], 22);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_are_cut_in_the_tenants_zone_and_a_dst_day_has_23_hours() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let (acme, key) = s.tenant("acme").await;
        let platform = s.key(None, Role::PlatformAdmin).await;
        let path = format!("/v1/platform-admin/tenants/{}", acme.0);
        let (st, v) = s.call("PATCH", &path, Some(&platform), Some(json!({"time_zone": "Mars/Olympus"}))).await;
        assert_eq!(st, 422, "{v}");
        assert_eq!(v["error"]["field"], "time_zone");
        let (st, v) = s.call("PATCH", &path, Some(&platform), Some(json!({"time_zone": "Europe/Paris"}))).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["time_zone"], "Europe/Paris");
        assert_eq!(v["disabled"], false);

        // 29 March 2026: Paris moves from +01:00 to +02:00 at 02:00 local.
        let day = ms("2026-03-28T23:00:00Z"); // 00:00 local
        let q = Q { offered: 1, answered: 1, within: 1, handled: 1, handle_s: 60.0, ..Q::default() };
        put_queue(&store, acme, 1, day, q).await; // 00:00 local, 29th
        put_queue(&store, acme, 1, ms("2026-03-29T21:45:00Z"), q).await; // 23:45 local, 29th
        put_queue(&store, acme, 1, ms("2026-03-29T22:00:00Z"), q).await; // 00:00 local, 30th
        let v = get(&s, &key, "/v1/analytics/overview?from=2026-03-29T00:00:00%2B01:00&to=2026-03-31T00:00:00%2B02:00&granularity=day").await;
        assert_eq!(v["time_zone"], "Europe/Paris");
        let b = v["buckets"].as_array().unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0]["end_ms"].as_i64().unwrap() - b[0]["start_ms"].as_i64().unwrap(), 23 * HOUR);
        assert_eq!(b[0]["start"], "2026-03-29T00:00:00+01:00[Europe/Paris]");
        assert_eq!((b[0]["offered"].as_u64(), b[1]["offered"].as_u64()), (Some(2), Some(1)));
        // The same instants in UTC: the 23:45 local row is on the 29th both ways, the
        // midnight rows move to the previous UTC day.
        let v = get(&s, &key, "/v1/analytics/overview?from=2026-03-28T00:00:00Z&to=2026-03-30T00:00:00Z&granularity=day&tz=UTC").await;
        let b: Vec<u64> = v["buckets"].as_array().unwrap().iter().map(|b| b["offered"].as_u64().unwrap()).collect();
        assert_eq!(b, [1, 2]);
        // Hours of the short day: 23 of them.
        let v = get(&s, &key, "/v1/analytics/overview?from=2026-03-29T00:00:00%2B01:00&to=2026-03-30T00:00:00%2B02:00&granularity=hour").await;
        assert_eq!(v["buckets"].as_array().unwrap().len(), 23);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_show_breaks_by_reason_logged_in_time_repeat_callers_and_leaderboards() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let (acme, key) = s.tenant("acme").await;
        let (other, _) = s.tenant("other").await;
        let t = acme.0;
        let day = ms("2026-03-02T00:00:00Z");
        put_agent(&store, acme, 7, day + 9 * HOUR, agent_json(4, 400.0, 1, 2, 300.0, 600.0)).await;
        put_agent(&store, acme, 8, day + 9 * HOUR, agent_json(2, 100.0, 0, 0, 800.0, 100.0)).await;
        put_agent(&store, other, 9, day + 9 * HOUR, agent_json(9, 900.0, 0, 0, 0.0, 900.0)).await;
        // Agent 7: available since 22:00 the evening before (its state at the range's start), lunch 12:00-12:30, coffee 15:00-15:10, logged out 17:00.
        let states = [
            (7, day - 2 * HOUR, "available", "NULL"),
            (7, day + 12 * HOUR, "on-break", "'lunch'"),
            (7, day + 12 * HOUR + 30 * 60_000, "available", "NULL"),
            (7, day + 15 * HOUR, "on-break", "'coffee'"),
            (7, day + 15 * HOUR + 10 * 60_000, "on-call", "NULL"),
            (7, day + 17 * HOUR, "logged-out", "NULL"),
            (8, day + 9 * HOUR, "available", "NULL"),
            (8, day + 10 * HOUR, "logged-out", "NULL"),
        ];
        for (agent, at, state, reason) in states {
            exec(&store, &format!("INSERT INTO agent_states (tenant_id, agent_id, at, state, reason) VALUES ('{t}', {agent}, {at}, '{state}', {reason})")).await;
        }
        // Calls answered by agent 7: +1 called again 2 h later (a repeat), +2 again after 30 h
        // (not within 24 h), +3 once. Agent 8's caller +1 is the repeat itself.
        let calls = [
            ("+1", 7, day + 9 * HOUR),
            ("+1", 8, day + 11 * HOUR),
            ("+2", 7, day + 9 * HOUR + 60_000),
            ("+2", 7, day + 39 * HOUR),
            ("+3", 7, day + 10 * HOUR),
        ];
        for (i, (number, agent, at)) in calls.iter().enumerate() {
            exec(&store, &format!("INSERT INTO calls (id, tenant_id, queue_id, queues, agent_id, caller_number, outcome, arrived_at, wait_ms, talk_ms, offers, synthetic) VALUES ('00000000-0000-0000-0000-00000000000{i}', '{t}', 1, '[1]', {agent}, '{number}', 'answered', {at}, 0, 0, 1, FALSE)")).await;
        }
        // One outbound call connected to agent 8.
        exec(&store, &format!("INSERT INTO campaign_attempts (tenant_id, campaign_id, contact_id, leg, attempt, outcome, call_id, agent_id, dialed_at, answered_at, ended_at) VALUES ('{t}', 1, 1, 'leg-1', 1, 'connected', 1, 8, {}, NULL, {})", day + 9 * HOUR, day + 9 * HOUR + 60_000)).await;

        let v = get(&s, &key, &format!("/v1/analytics/agents?from={day}&to={}", day + DAY)).await;
        let agents = v["agents"].as_array().unwrap();
        assert_eq!(agents.len(), 2, "{v}");
        let a7 = agents.iter().find(|a| a["id"] == s.rt.ids.encode(IdKind::Agent, 7)).unwrap();
        assert_eq!(a7["handled_inbound"], 4);
        assert_eq!(a7["rejected"], 1);
        assert_eq!(a7["missed"], 2);
        close(&a7["aht_s"], 100.0);
        assert_eq!(a7["hold_s"], Value::Null);
        close(&a7["logged_in_s"], 17.0 * 3600.0);
        close(&a7["on_call_s"], 600.0);
        assert_eq!(a7["breaks"], json!([{"reason": "coffee", "seconds": 600.0}, {"reason": "lunch", "seconds": 1800.0}]));
        close(&a7["occupancy"], 600.0 / 900.0);
        // The +2 call of 09:01 has its repeat 30 h later: out of the window, and the 39:00 call
        // is not in the range.
        assert_eq!((a7["answered_calls"].as_u64(), a7["repeat_callers"].as_u64()), (Some(3), Some(1)));
        close(&a7["fcr_rate"], 2.0 / 3.0);
        let a8 = agents.iter().find(|a| a["id"] == s.rt.ids.encode(IdKind::Agent, 8)).unwrap();
        assert_eq!(a8["handled_outbound"], 1);
        close(&a8["logged_in_s"], 3600.0);
        assert_eq!(a8["repeat_callers"], 0);
        let lb = &v["leaderboards"];
        assert_eq!(lb["handled"][0]["id"], a7["id"]);
        assert_eq!(lb["aht_s"][0]["id"], a8["id"]);
        close(&lb["aht_s"][0]["value"], 50.0);
        assert_eq!(lb["occupancy"][0]["id"], a7["id"]);
        assert_eq!(lb["fcr_rate"][0]["id"], a8["id"]);
        // One agent only.
        let v = get(&s, &key, &format!("/v1/analytics/agents?from={day}&to={}&agent={}", day + DAY, a8["id"])).await;
        assert_eq!(v["agents"].as_array().unwrap().len(), 1);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_show_each_queue_with_its_previous_period_and_campaign_results_show_in_the_overview()
{
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let (acme, key) = s.tenant("acme").await;
        let t = acme.0;
        let day = ms("2026-03-02T00:00:00Z");
        let q = Q { offered: 4, answered: 3, within: 3, abandoned: 1, wait_s: 30.0, handled: 3, handle_s: 300.0, ..Q::default() };
        put_queue(&store, acme, 1, day + HOUR, q).await;
        put_queue(&store, acme, 2, day + HOUR, Q { offered: 2, answered: 2, within: 1, wait_s: 40.0, handled: 2, handle_s: 100.0, ..Q::default() }).await;
        put_queue(&store, acme, 1, day - HOUR, q).await;
        let v = get(&s, &key, &format!("/v1/analytics/queues?from={day}&to={}", day + DAY)).await;
        let queues = v["queues"].as_array().unwrap();
        assert_eq!(queues.len(), 2, "{v}");
        let q1 = &queues.iter().find(|x| x["id"] == s.rt.ids.encode(IdKind::Queue, 1)).unwrap();
        assert_eq!(q1["offered"], 4);
        close(&q1["service_level"], 0.75);
        close(&q1["asa_s"], 10.0);
        assert_eq!(q1["previous"]["offered"], 4);
        let q2 = &queues.iter().find(|x| x["id"] == s.rt.ids.encode(IdKind::Queue, 2)).unwrap();
        assert_eq!(q2["previous"]["offered"], 0);
        close(&q2["service_level"], 0.5);

        // A campaign: 3 contacts, 5 dials over two days, dispositions.
        exec(&store, &format!("INSERT INTO campaigns (id, tenant_id, name, config, state, created_at, updated_at) VALUES (5, '{t}', 'spring', '{{}}', 'running', 0, 0)")).await;
        let dials = [
            (1, "connected", day + 10 * HOUR),
            (1, "no-answer", day + 10 * HOUR),
            (2, "abandoned", day + 11 * HOUR),
            (3, "hung-up", day + 12 * HOUR),
            (3, "connected", day + DAY + HOUR),
        ];
        for (i, (contact, outcome, at)) in dials.iter().enumerate() {
            exec(&store, &format!("INSERT INTO campaign_attempts (tenant_id, campaign_id, contact_id, leg, attempt, outcome, call_id, agent_id, dialed_at, answered_at, ended_at) VALUES ('{t}', 5, {contact}, 'leg-{i}', 1, '{outcome}', NULL, NULL, {at}, NULL, {at})")).await;
        }
        for (code, at) in [("sale", day + 10 * HOUR), ("callback", day + 11 * HOUR), ("sale", day + DAY + HOUR)] {
            exec(&store, &format!("INSERT INTO dispositions (tenant_id, campaign_id, contact_id, call_id, agent_id, code, at, retry_at) VALUES ('{t}', 5, 1, 1, NULL, '{code}', {at}, NULL)")).await;
        }
        exec(&store, &format!("INSERT INTO recordings (id, tenant_id, call_id, leg, queue_id, agents, caller_number, mode, capture, fell_back, stereo, path, started_at, status, spans, waveform, kind) VALUES ('vm-1', '{t}', 'c', 'l', 1, '[]', '+1', 'voicemail', 'switch', FALSE, FALSE, '', {}, 'completed', '[]', 'null', 'voicemail')", day + 3 * HOUR)).await;
        let v = get(&s, &key, &format!("/v1/analytics/overview?from={day}&to={}&granularity=day", day + 2 * DAY)).await;
        assert_eq!(v["totals"]["voicemails"], 1);
        assert_eq!(v["totals"]["outbound_dials"], 5);
        assert_eq!(v["totals"]["outbound_connects"], 2);
        assert_eq!(v["buckets"][1]["outbound_dials"], 1);
        let c = &v["campaigns"][0];
        assert_eq!(c["name"], "spring");
        assert_eq!(c["id"], s.rt.ids.encode(IdKind::Campaign, 5));
        assert_eq!((c["dials"].as_u64(), c["contacts"].as_u64()), (Some(5), Some(3)));
        close(&c["attempts_per_contact"], 5.0 / 3.0);
        assert_eq!(c["dispositions"], json!([{"code": "callback", "count": 1}, {"code": "sale", "count": 2}]));
        let days = c["days"].as_array().unwrap();
        assert_eq!(days.len(), 2);
        assert_eq!((days[0]["dials"].as_u64(), days[0]["person"].as_u64(), days[0]["abandoned"].as_u64()), (Some(4), Some(3), Some(1)));
        close(&days[0]["abandon_rate"], 1.0 / 3.0);
        close(&days[1]["abandon_rate"], 0.0);
        s.stop().await;
    })
    .await;
}

/// Walks `path` page by page (`limit` each, `after` the previous `next`) and returns every
/// page's items under `list`, and each page's whole answer.
async fn walk(
    s: &Server,
    key: &str,
    path: &str,
    list: &str,
    limit: usize,
) -> (Vec<Value>, Vec<Value>) {
    let (mut items, mut pages) = (Vec::new(), Vec::new());
    let mut after: Option<String> = None;
    loop {
        let cursor = after
            .as_ref()
            .map(|a| format!("&after={a}"))
            .unwrap_or_default();
        let v = get(s, key, &format!("{path}&limit={limit}{cursor}")).await;
        let page = v[list].as_array().unwrap().clone();
        assert!(page.len() <= limit, "{v}");
        items.extend(page.iter().cloned());
        let next = v["next"].clone();
        pages.push(v);
        match next {
            Value::Null => break,
            Value::String(n) => {
                // `next` is the last id the page showed.
                assert_eq!(page.last().unwrap()["id"].as_i64().unwrap().to_string(), n);
                after = Some(n);
            }
            other => panic!("next: {other}"),
        }
        assert!(pages.len() <= 100, "pages do not end");
    }
    (items, pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_and_queue_pages_walk_every_one_exactly_once_and_the_leaderboards_cover_all_agents() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let (acme, key) = s.tenant("acme").await;
        let (other, _) = s.tenant("other").await;
        let day = ms("2026-03-02T00:00:00Z");
        // 23 agents with figures in the range (store ids with gaps, written out of order),
        // one with figures only the day before, and another tenant's.
        let agents: Vec<i64> = (0..23).map(|i| 3 + ((i * 7) % 23) * 5).collect();
        for (n, &id) in agents.iter().enumerate() {
            let handled = 1 + n as u64;
            put_agent(
                &store,
                acme,
                id,
                day + 9 * HOUR,
                agent_json(handled, 60.0 * handled as f64, 0, 0, 300.0, 600.0),
            )
            .await;
        }
        put_agent(
            &store,
            acme,
            500,
            day - 9 * HOUR,
            agent_json(99, 99.0, 0, 0, 0.0, 900.0),
        )
        .await;
        put_agent(
            &store,
            other,
            501,
            day + 9 * HOUR,
            agent_json(99, 99.0, 0, 0, 0.0, 900.0),
        )
        .await;
        let range = format!("from={day}&to={}", day + DAY);

        let mut expected: Vec<i64> = agents
            .iter()
            .map(|a| s.rt.ids.encode(IdKind::Agent, *a))
            .collect();
        expected.sort_unstable();
        for limit in [1, 5, 23, 1000] {
            let (items, pages) = walk(
                &s,
                &key,
                &format!("/v1/analytics/agents?{range}&top=100"),
                "agents",
                limit,
            )
            .await;
            assert_eq!(pages.len(), 23usize.div_ceil(limit), "limit {limit}");
            let mut shown: Vec<i64> = items.iter().map(|a| a["id"].as_i64().unwrap()).collect();
            // In the store's order, each once.
            let stored: Vec<i64> = shown
                .iter()
                .map(|id| s.rt.ids.decode(IdKind::Agent, *id).unwrap())
                .collect();
            assert!(
                stored.windows(2).all(|w| w[0] < w[1]),
                "limit {limit}: {stored:?}"
            );
            shown.sort_unstable();
            assert_eq!(shown, expected, "limit {limit}");
            // Each agent's figures are its own, whatever page it is on.
            for a in &items {
                let n = agents
                    .iter()
                    .position(|id| s.rt.ids.encode(IdKind::Agent, *id) == a["id"])
                    .unwrap();
                assert_eq!(a["handled_inbound"], 1 + n as u64);
            }
            // The leaderboards rank every agent of the range on every page, the same.
            for p in &pages {
                assert_eq!(p["leaderboards"], pages[0]["leaderboards"], "limit {limit}");
                let handled = p["leaderboards"]["handled"].as_array().unwrap();
                assert_eq!(handled.len(), 23);
                assert_eq!(handled[0]["id"], s.rt.ids.encode(IdKind::Agent, agents[22]));
                close(&handled[0]["value"], 23.0);
            }
        }
        // A range of whole days and quarter hours at both ends: agents[0] also worked the
        // half hour before it and the quarter hour after its last whole day.
        put_agent(
            &store,
            acme,
            agents[0],
            day - 2 * QUARTER,
            agent_json(5, 300.0, 0, 0, 0.0, 0.0),
        )
        .await;
        put_agent(
            &store,
            acme,
            agents[0],
            day + DAY,
            agent_json(7, 700.0, 0, 0, 0.0, 0.0),
        )
        .await;
        put_agent(
            &store,
            acme,
            agents[0],
            day + DAY + HOUR,
            agent_json(100, 100.0, 0, 0, 0.0, 0.0),
        )
        .await;
        let first = s.rt.ids.encode(IdKind::Agent, agents[0]);
        for (from, to, handled) in [
            (day, day + DAY, 1),
            (day - HOUR, day + DAY + HOUR, 13),
            (day - QUARTER, day + DAY + QUARTER, 8),
            (day + DAY, day + DAY + QUARTER, 7),
        ] {
            let v = get(
                &s,
                &key,
                &format!("/v1/analytics/agents?from={from}&to={to}&agent={first}"),
            )
            .await;
            assert_eq!(
                v["agents"][0]["handled_inbound"], handled,
                "[{from}, {to}): {v}"
            );
        }
        // A filter pages too: one agent, one page.
        let one = s.rt.ids.encode(IdKind::Agent, agents[4]);
        let (items, pages) = walk(
            &s,
            &key,
            &format!("/v1/analytics/agents?{range}&agent={one}"),
            "agents",
            1,
        )
        .await;
        assert_eq!((items.len(), pages.len()), (1, 1));
        assert_eq!(items[0]["id"], one);

        // Queues: 11 with figures in the range, 2 only in the previous period (listed, with
        // their previous figures), one after both.
        let q = Q {
            offered: 4,
            answered: 3,
            within: 3,
            abandoned: 1,
            wait_s: 30.0,
            handled: 3,
            handle_s: 300.0,
            ..Q::default()
        };
        let mut queues: Vec<i64> = (1..=11).map(|i| i * 3).collect();
        for &id in &queues {
            put_queue(&store, acme, id, day + HOUR, q).await;
        }
        for id in [4, 40] {
            put_queue(&store, acme, id, day - HOUR, q).await;
            queues.push(id);
        }
        put_queue(&store, acme, 41, day + DAY, q).await;
        put_queue(&store, other, 42, day + HOUR, q).await;
        let mut expected: Vec<i64> = queues
            .iter()
            .map(|id| s.rt.ids.encode(IdKind::Queue, *id))
            .collect();
        expected.sort_unstable();
        for limit in [1, 4, 13, 200] {
            let (items, pages) = walk(
                &s,
                &key,
                &format!("/v1/analytics/queues?{range}"),
                "queues",
                limit,
            )
            .await;
            assert_eq!(pages.len(), 13usize.div_ceil(limit), "limit {limit}");
            let mut shown: Vec<i64> = items.iter().map(|x| x["id"].as_i64().unwrap()).collect();
            shown.sort_unstable();
            assert_eq!(shown, expected, "limit {limit}");
            for x in &items {
                let id =
                    s.rt.ids
                        .decode(IdKind::Queue, x["id"].as_i64().unwrap())
                        .unwrap();
                let (now, before) = if id == 4 || id == 40 { (0, 4) } else { (4, 0) };
                assert_eq!(
                    (x["offered"].as_u64(), x["previous"]["offered"].as_u64()),
                    (Some(now), Some(before)),
                    "queue {id}"
                );
            }
        }
        s.stop().await;
    })
    .await;
}

/// A call as the repeat-caller test writes it.
struct TestCall {
    id: String,
    number: String,
    agent: Option<i64>,
    outcome: &'static str,
    at: i64,
}

async fn put_call(store: &Store, tenant: TenantId, c: &TestCall) {
    let agent = c.agent.map_or("NULL".to_owned(), |a| a.to_string());
    exec(store, &format!("INSERT INTO calls (id, tenant_id, queue_id, queues, agent_id, caller_number, outcome, arrived_at, wait_ms, talk_ms, offers, synthetic) VALUES ('{}', '{}', 1, '[1]', {agent}, '{}', '{}', {}, 0, 0, 1, FALSE)", c.id, tenant.0, c.number, c.outcome, c.at)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_callers_kept_by_triggers_equal_a_count_from_the_calls_after_scrambled_writes_replacements_and_deletes()
 {
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let (acme, _) = s.tenant("acme").await;
        let (other, _) = s.tenant("other").await;
        let day = ms("2026-03-02T00:00:00Z");
        // 160 calls over three days from 12 numbers (some none), agents 1-4, some abandoned.
        let mut x: u64 = 7;
        let mut next = move || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) as i64
        };
        let mut calls: Vec<TestCall> = (0..160)
            .map(|i| TestCall {
                id: format!("00000000-0000-4000-8000-{i:012}"),
                number: if i % 17 == 0 {
                    String::new()
                } else {
                    format!("+1{}", next() % 12)
                },
                agent: Some(1 + next() % 4),
                outcome: if i % 9 == 0 { "abandoned" } else { "answered" },
                at: day + next() % (3 * DAY),
            })
            .collect();
        // Written in a scrambled order (a later call often before an earlier one), every
        // eleventh first as an open row (no agent yet) that its final record replaces, as the
        // record writer does: the open row deleted, the final one inserted.
        for i in (0..160).map(|i| (i * 37) % 160) {
            let c = &calls[i];
            if i % 11 == 0 {
                put_call(
                    &store,
                    acme,
                    &TestCall {
                        id: c.id.clone(),
                        number: c.number.clone(),
                        agent: None,
                        outcome: "in-progress",
                        at: c.at,
                    },
                )
                .await;
                exec(&store, &format!("DELETE FROM calls WHERE id = '{}'", c.id)).await;
            }
            put_call(&store, acme, c).await;
        }
        // Another tenant's calls from the same numbers repeat nothing of acme's.
        for (i, c) in calls.iter().take(40).enumerate() {
            put_call(
                &store,
                other,
                &TestCall {
                    id: format!("10000000-0000-4000-8000-{i:012}"),
                    number: c.number.clone(),
                    agent: Some(1),
                    outcome: "answered",
                    at: c.at + 60_000,
                },
            )
            .await;
        }
        // Retention-like deletes (every seventh), and two calls still open.
        for i in (0..160).step_by(7) {
            exec(
                &store,
                &format!("DELETE FROM calls WHERE id = '{}'", calls[i].id),
            )
            .await;
        }
        calls = calls
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 7 != 0)
            .map(|(_, c)| c)
            .collect();
        for (i, at) in [(0, day + 30 * HOUR), (1, day + 31 * HOUR)] {
            let open = TestCall {
                id: format!("20000000-0000-4000-8000-{i:012}"),
                number: "+13".to_owned(),
                agent: None,
                outcome: "in-progress",
                at,
            };
            put_call(&store, acme, &open).await;
            calls.push(open);
        }

        // The definition, counted here: answered calls with an agent and a number arriving in
        // [day, day + 2 days), and those whose number called acme again within 24 h after.
        // Whole days only, whole days with quarter hours at both ends, and a few hours.
        for (from, to) in [
            (day, day + 2 * DAY),
            (day + 5 * HOUR + QUARTER, day + 2 * DAY + 3 * HOUR),
            (day + HOUR, day + 3 * HOUR),
        ] {
            let mut expected: std::collections::BTreeMap<i64, (i64, i64)> = Default::default();
            for c in &calls {
                if c.outcome == "answered"
                    && !c.number.is_empty()
                    && (from..to).contains(&c.at)
                    && let Some(agent) = c.agent
                {
                    let again = calls
                        .iter()
                        .any(|r| r.number == c.number && r.at > c.at && r.at <= c.at + DAY);
                    let e = expected.entry(agent).or_default();
                    e.0 += 1;
                    e.1 += i64::from(again);
                }
            }
            if to - from > DAY {
                assert!(
                    expected.values().map(|e| e.1).sum::<i64>() >= 10,
                    "the data has repeats: {expected:?}"
                );
            }
            let counted: std::collections::BTreeMap<i64, (i64, i64)> = store
                .repeat_callers_by_agent(acme, 0, from, to)
                .await
                .unwrap()
                .into_iter()
                .map(|t| (t.a, (t.n, t.m)))
                .collect();
            assert_eq!(counted, expected);
            let one = store
                .repeat_callers_by_agent(acme, 2, from, to)
                .await
                .unwrap();
            assert_eq!(
                one.iter().map(|t| (t.a, (t.n, t.m))).collect::<Vec<_>>(),
                expected
                    .get(&2)
                    .map(|e| (2, *e))
                    .into_iter()
                    .collect::<Vec<_>>()
            );
        }
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field_and_agents_may_not_read_analytics() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let (acme, key) = s.tenant("acme").await;
        let day = ms("2026-03-02T00:00:00Z");
        let cases = [
            (
                format!("/v1/analytics/overview?from=yesterday&to={day}"),
                422,
                "from",
            ),
            (
                format!("/v1/analytics/overview?from={day}&to={}", day - 1),
                422,
                "to",
            ),
            (
                format!(
                    "/v1/analytics/overview?from={day}&to={}&granularity=15m",
                    day + 32 * DAY
                ),
                422,
                "to",
            ),
            (
                format!(
                    "/v1/analytics/overview?from={day}&to={}&granularity=fortnight",
                    day + DAY
                ),
                400,
                "granularity",
            ),
            (
                format!("/v1/analytics/overview?from={day}&to={}&limit=0", day + DAY),
                422,
                "limit",
            ),
            (
                format!(
                    "/v1/analytics/overview?from={day}&to={}&granularity=15m&limit=10",
                    day + DAY
                ),
                422,
                "limit",
            ),
            (
                format!(
                    "/v1/analytics/overview?from={day}&to={}&tz=Nowhere/City",
                    day + DAY
                ),
                422,
                "tz",
            ),
            (
                format!(
                    "/v1/analytics/overview?from={day}&to={}&colour=red",
                    day + DAY
                ),
                400,
                "colour",
            ),
            (
                format!("/v1/analytics/agents?from={day}&to={}&top=0", day + DAY),
                422,
                "top",
            ),
            (
                format!("/v1/analytics/agents?from={day}&to={}", day + 93 * DAY),
                422,
                "to",
            ),
            (
                format!("/v1/analytics/queues?from={day}&to=soon"),
                422,
                "to",
            ),
            (
                format!("/v1/analytics/agents?from={day}&to={}&limit=0", day + DAY),
                422,
                "limit",
            ),
            (
                format!(
                    "/v1/analytics/agents?from={day}&to={}&limit=1001",
                    day + DAY
                ),
                422,
                "limit",
            ),
            (
                format!("/v1/analytics/queues?from={day}&to={}&limit=0", day + DAY),
                422,
                "limit",
            ),
            (
                format!(
                    "/v1/analytics/queues?from={day}&to={}&limit=5000",
                    day + DAY
                ),
                422,
                "limit",
            ),
            (
                format!(
                    "/v1/analytics/queues?from={day}&to={}&limit=many",
                    day + DAY
                ),
                400,
                "limit",
            ),
            (
                format!(
                    "/v1/analytics/agents?from={day}&to={}&after=last",
                    day + DAY
                ),
                422,
                "after",
            ),
            (
                format!("/v1/analytics/agents?from={day}&to={}&after=-3", day + DAY),
                422,
                "after",
            ),
            (
                format!("/v1/analytics/queues?from={day}&to={}&after=1.5", day + DAY),
                422,
                "after",
            ),
        ];
        for (path, status, field) in cases {
            let (st, v) = s.call("GET", &path, Some(&key), None).await;
            assert_eq!(st, status, "{path}: {v}");
            assert_eq!(v["error"]["field"], field, "{path}: {v}");
        }
        let agent = s.key(Some(acme), Role::ReadOnly).await;
        let (st, _) = s
            .call("GET", "/v1/analytics/overview", Some(&agent), None)
            .await;
        assert_eq!(st, 403);
        let supervisor = s.key(Some(acme), Role::Supervisor).await;
        let (st, v) = s
            .call("GET", "/v1/analytics/overview", Some(&supervisor), None)
            .await;
        assert_eq!(st, 200, "{v}");
        // Today so far includes the engine's open interval.
        assert_eq!(v["open_interval"], true);
        s.stop().await;
    })
    .await;
}

/// The seeded day: two queues of tenant acme sharing twelve agents, and a third queue of
/// another tenant, overloaded with patient callers, that keeps the engine running for hours
/// after acme's last call, so every interval acme's calls touched is closed and filed.
fn scenario() -> Scenario {
    let queue = |id: u32, name: &str, per_hour: f64, aht: f64, patience: f64| QueueScenario {
        id,
        name: name.into(),
        strategy: None,
        sl_threshold_s: 20.0,
        arrivals_per_hour: per_hour,
        aht_s: aht,
        patience_s: Some(patience),
        skills: Vec::new(),
        vip_fraction: 0.0,
        max_wait_s: None,
        overflow_to: None,
        initial_max_level: None,
        escalation: Vec::new(),
    };
    Scenario {
        hours: 8.0,
        warmup_hours: 0.0,
        seed: 2026,
        answer_delay_s: 0.0,
        no_answer: 0.0,
        queues: vec![
            queue(1, "sales", 120.0, 180.0, 60.0),
            queue(2, "support", 60.0, 240.0, 120.0),
            queue(3, "sentinel", 20.0, 600.0, 3600.0),
        ],
        agents: vec![
            AgentGroup {
                count: 12,
                skills: Vec::new(),
                queues: vec![1, 2],
                level: 1,
                wrapup_s: 10.0,
            },
            AgentGroup {
                count: 1,
                skills: Vec::new(),
                queues: vec![3],
                level: 1,
                wrapup_s: 0.0,
            },
        ],
        check_invariants: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_day_filed_by_the_runtime_agrees_with_the_engine_to_the_call() {
    let origin = ms("2026-03-02T08:00:00Z");
    let sim = Simulation::new(scenario())
        .unwrap()
        .engine_config(EngineConfig {
            origin_unix_ms: u64::try_from(origin).unwrap(),
            persist_traces: false,
            trace_memory: 0,
            max_calls: usize::MAX,
            ..EngineConfig::default()
        });
    let mut records: Vec<Record> = Vec::new();
    let report = sim
        .run_with(|out| {
            if let Output::Persist(r) = out {
                records.push(r.clone());
            }
        })
        .expect("the simulated day runs");
    // Precondition: every interval acme's calls touched was closed (the sentinel queue
    // outlasted them), so the stored rows hold all of acme's day.
    let last_interval_end = records
        .iter()
        .filter_map(|r| match r {
            Record::Interval(i) => Some(i.end_unix_ms),
            _ => None,
        })
        .max()
        .unwrap();
    let acme_last_activity = records
        .iter()
        .filter_map(|r| match r {
            Record::Call(c) if c.queues.iter().any(|q| q.0 != 3) => {
                Some(c.arrived_unix_ms + ((c.wait_s + c.talk_s + 10.0) * 1000.0).ceil() as u64)
            }
            _ => None,
        })
        .max()
        .unwrap();
    assert!(
        last_interval_end > acme_last_activity,
        "seed 2026: acme's last activity ({acme_last_activity}) is after the last closed interval ({last_interval_end})"
    );
    // The engine's own figures, summed from its interval records of acme's queues.
    let mut engine = (0u64, 0u64, 0u64, 0u64, 0u64);
    for r in &records {
        if let Record::Interval(i) = r
            && let (Scope::Queue(q), Figures::Queue(f)) = (i.scope, &i.figures)
            && q.0 != 3
        {
            engine.0 += f.offered;
            engine.1 += f.answered;
            engine.2 += f.answered_within_sl;
            engine.3 += f.abandoned;
            engine.4 += f.handled;
        }
    }
    let records = std::sync::Arc::new(records);
    let report = std::sync::Arc::new(report);

    store_common::each_backend(move |store| {
        let records = records.clone();
        let report = report.clone();
        async move {
            let s = Server::start(store.clone()).await;
            let (acme, key) = s.tenant("acme").await;
            let (other, other_key) = s.tenant("other").await;
            s.rt.directory.set_queue(QueueId(1), acme);
            s.rt.directory.set_queue(QueueId(2), acme);
            s.rt.directory.set_queue(QueueId(3), other);
            for a in 1..=12 {
                s.rt.directory.set_agent(AgentId(a), acme);
            }
            s.rt.directory.set_agent(AgentId(13), other);
            for chunk in records.chunks(2_000) {
                switchyard_api::runtime::file_records(&s.rt, chunk.to_vec()).await;
            }
            let day = ms("2026-03-02T00:00:00Z");
            let range = format!("from={day}&to={}", day + 2 * DAY);
            let v = get(
                &s,
                &key,
                &format!("/v1/analytics/overview?{range}&granularity=day"),
            )
            .await;
            let t = &v["totals"];
            let acme_q: Vec<_> = report.queues.iter().filter(|q| q.queue != 3).collect();
            let offered: u64 = acme_q.iter().map(|q| q.offered).sum();
            let answered: u64 = acme_q.iter().map(|q| q.answered).sum();
            let abandoned: u64 = acme_q.iter().map(|q| q.abandoned).sum();
            let within: u64 = acme_q
                .iter()
                .map(|q| (q.service_level * q.offered as f64).round() as u64)
                .sum();
            assert!(offered > 1_000, "a busy day: {offered} calls");
            // Counts to the call: the harness's (from the call records) and the engine's (its
            // interval figures).
            assert_eq!(t["offered"].as_u64(), Some(offered));
            assert_eq!(t["answered"].as_u64(), Some(answered));
            assert_eq!(t["abandoned"].as_u64(), Some(abandoned));
            assert_eq!(t["answered_within_sl"].as_u64(), Some(within));
            assert_eq!(t["exited"].as_u64(), Some(0));
            assert_eq!(
                (
                    t["offered"].as_u64(),
                    t["answered"].as_u64(),
                    t["answered_within_sl"].as_u64(),
                    t["abandoned"].as_u64(),
                    t["handled"].as_u64()
                ),
                (
                    Some(engine.0),
                    Some(engine.1),
                    Some(engine.2),
                    Some(engine.3),
                    Some(engine.4)
                )
            );
            // Ratios within floating-point tolerance.
            let weighted = |f: &dyn Fn(&switchyard_engine::sim::QueueReport) -> f64| {
                acme_q.iter().map(|q| f(q) * q.answered as f64).sum::<f64>() / answered as f64
            };
            close(
                &t["service_level"],
                within as f64 / (answered + abandoned) as f64,
            );
            close(&t["abandon_rate"], abandoned as f64 / offered as f64);
            let asa = t["asa_s"].as_f64().unwrap();
            let aht = t["aht_s"].as_f64().unwrap();
            assert!(
                (asa - weighted(&|q| q.asa_s)).abs() < 1e-6,
                "ASA {asa} vs {}",
                weighted(&|q| q.asa_s)
            );
            assert!(
                (aht - weighted(&|q| q.aht_s)).abs() < 1e-6,
                "AHT {aht} vs {}",
                weighted(&|q| q.aht_s)
            );
            // The day's bucket holds all of it.
            assert_eq!(v["buckets"][0]["offered"].as_u64(), Some(offered));

            // Per queue, against the harness's per-queue report.
            let v = get(&s, &key, &format!("/v1/analytics/queues?{range}")).await;
            for q in &acme_q {
                let shown = s.rt.ids.encode(IdKind::Queue, i64::from(q.queue));
                let row = v["queues"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["id"] == shown)
                    .unwrap();
                assert_eq!(row["offered"].as_u64(), Some(q.offered));
                assert_eq!(row["answered"].as_u64(), Some(q.answered));
                assert_eq!(row["abandoned"].as_u64(), Some(q.abandoned));
                close(
                    &row["service_level"],
                    q.service_level * q.offered as f64 / (q.answered + q.abandoned) as f64,
                );
                assert!(
                    (row["asa_s"].as_f64().unwrap() - q.asa_s).abs() < 1e-6,
                    "{row}"
                );
                assert!(
                    (row["aht_s"].as_f64().unwrap() - q.aht_s).abs() < 1e-6,
                    "{row}"
                );
                close(&row["abandon_rate"], q.abandoned as f64 / q.offered as f64);
            }
            assert_eq!(
                v["queues"].as_array().unwrap().len(),
                2,
                "the other tenant's queue is not acme's"
            );
            // The other tenant sees only its queue.
            let v = get(&s, &other_key, &format!("/v1/analytics/queues?{range}")).await;
            assert_eq!(v["queues"].as_array().unwrap().len(), 1);
            // Agents: acme's twelve, their handled calls adding up to the queues'.
            let v = get(&s, &key, &format!("/v1/analytics/agents?{range}")).await;
            let agents = v["agents"].as_array().unwrap();
            assert_eq!(agents.len(), 12);
            let handled: u64 = agents
                .iter()
                .map(|a| a["handled_inbound"].as_u64().unwrap())
                .sum();
            assert_eq!(handled, engine.4);
            s.stop().await;
        }
    })
    .await;
}
