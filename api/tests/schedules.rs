//! `/v1/schedules` over HTTP on loopback, on SQLite and PostgreSQL: a schedule created, listed,
//! read, replaced and removed (each audited); documents refused with the field's path and
//! nothing written; the status route saying open or closed, why and until when (a weekday, a
//! recurring holiday, an override, the manual switch); the tenant and role matrix.

mod server_common;
mod store_common;

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::model::Role;

/// New York, weekdays 09:00-17:00, Thanksgiving (the fourth Thursday of November) closed,
/// Christmas Eve 2026 until 13:00.
fn hours() -> Value {
    let day = json!([{"start": "09:00", "end": "17:00"}]);
    json!({
        "time_zone": "America/New_York",
        "weekly": {"monday": day, "tuesday": day, "wednesday": day, "thursday": day, "friday": day},
        "overrides": [{"name": "Christmas Eve", "date": "2026-12-24",
                       "hours": {"open": [{"start": "09:00", "end": "13:00"}]}}],
        "holidays": [{"name": "Thanksgiving", "month": 11, "nth": "fourth", "weekday": "thursday"}]
    })
}

async fn status(s: &Server, k: &str, id: i64, at: &str) -> Value {
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/schedules/{id}/status?at={at}"),
            Some(k),
            None,
        )
        .await;
    assert_eq!(st, 200, "{at}: {v}");
    v
}

#[tokio::test]
async fn a_schedule_is_created_read_replaced_and_removed_and_says_when_it_is_open() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = key.as_str();
        let (st, created) = s
            .call(
                "POST",
                "/v1/schedules",
                Some(k),
                Some(json!({"name": "support hours", "config": hours()})),
            )
            .await;
        assert_eq!(st, 201, "{created}");
        let id = created["id"].as_i64().unwrap();
        assert_eq!(created["config"]["time_zone"], "America/New_York");
        let (_, list) = s.call("GET", "/v1/schedules", Some(k), None).await;
        assert_eq!(list["schedules"].as_array().unwrap().len(), 1);
        let (st, one) = s
            .call("GET", &format!("/v1/schedules/{id}"), Some(k), None)
            .await;
        assert_eq!((st, &one["name"]), (200, &json!("support hours")));

        // Wednesday 25 November 2026, 10:00 in New York: open by the weekly range.
        let v = status(&s, k, id, "2026-11-25T15:00:00Z").await;
        assert_eq!(v["open"], true, "{v}");
        assert_eq!(v["reason"]["kind"], "weekly", "{v}");
        assert_eq!(v["local"], "2026-11-25T10:00:00");
        assert_eq!(
            v["next_change"], "2026-11-25T22:00:00Z",
            "closes at 17:00 EST"
        );
        // Thanksgiving, the next day: closed by the holiday, whatever the weekly hours say.
        let v = status(&s, k, id, "2026-11-26T15:00:00Z").await;
        assert_eq!(
            (v["open"].clone(), v["reason"]["kind"].clone()),
            (json!(false), json!("holiday"))
        );
        assert_eq!(v["reason"]["name"], "Thanksgiving");
        assert_eq!(
            v["next_change"], "2026-11-27T14:00:00Z",
            "opens Friday 09:00 EST"
        );
        // Christmas Eve at 14:00: the override's short day is over.
        let v = status(&s, k, id, "2026-12-24T19:00:00Z").await;
        assert_eq!(
            (v["open"].clone(), v["reason"]["kind"].clone()),
            (json!(false), json!("override"))
        );
        // An offset is an instant like any other.
        let v = status(&s, k, id, "2026-11-25T10:00:00-05:00").await;
        assert_eq!(v["open"], true, "{v}");
        let (st, e) = s
            .call(
                "GET",
                &format!("/v1/schedules/{id}/status?at=tomorrow"),
                Some(k),
                None,
            )
            .await;
        assert_eq!((st, e["error"]["field"].as_str()), (422, Some("at")), "{e}");

        // Forced closed: applied from the next question, no restart.
        let mut forced = hours();
        forced["force"] = json!("closed");
        let (st, r) = s
            .call(
                "PUT",
                &format!("/v1/schedules/{id}"),
                Some(k),
                Some(json!({"name": "support hours", "config": forced})),
            )
            .await;
        assert_eq!(st, 200, "{r}");
        let v = status(&s, k, id, "2026-11-25T15:00:00Z").await;
        assert_eq!(
            (v["open"].clone(), v["reason"]["kind"].clone()),
            (json!(false), json!("forced"))
        );

        let (st, _) = s
            .call("DELETE", &format!("/v1/schedules/{id}"), Some(k), None)
            .await;
        assert_eq!(st, 204);
        let (st, _) = s
            .call("GET", &format!("/v1/schedules/{id}"), Some(k), None)
            .await;
        assert_eq!(st, 404);
        let (_, log) = s.call("GET", "/v1/audit", Some(k), None).await;
        let actions: Vec<&str> = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["action"].as_str())
            .filter(|a| a.starts_with("schedule."))
            .collect();
        assert_eq!(
            actions.len(),
            3,
            "create, update, delete audited: {actions:?}"
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_refused_schedule_names_its_field_and_nothing_is_written() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_, key) = s.tenant("acme").await;
        let k = key.as_str();
        let with = |path: &[&str], value: Value| {
            let mut doc = hours();
            let mut at = &mut doc;
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at[path[path.len() - 1]] = value;
            doc
        };
        let cases: Vec<(Value, &str)> = vec![
            (
                with(&["time_zone"], json!("Mars/Olympus_Mons")),
                "config.time_zone",
            ),
            (
                with(
                    &["weekly", "monday"],
                    json!([{"start": "09:00", "end": "25:00"}]),
                ),
                "config.weekly.monday[0].end",
            ),
            (
                with(
                    &["weekly", "monday"],
                    json!([{"start": "09:00", "end": "09:00"}]),
                ),
                "config.weekly.monday[0].end",
            ),
            (with(&["bogus"], json!(1)), "config.bogus"),
            (
                with(&["holidays"], json!([{"name": "x", "month": 13, "day": 1}])),
                "config.holidays[0].month",
            ),
        ];
        for (config, field) in cases {
            let (st, e) = s
                .call(
                    "POST",
                    "/v1/schedules",
                    Some(k),
                    Some(json!({"name": "bad", "config": config})),
                )
                .await;
            assert_eq!(
                (st, e["error"]["field"].as_str()),
                (422, Some(field)),
                "{e}"
            );
        }
        let (_, list) = s.call("GET", "/v1/schedules", Some(k), None).await;
        assert_eq!(list["schedules"], json!([]), "nothing was written");
        // A name taken: 409.
        let body = json!({"name": "hours", "config": hours()});
        let (st, _) = s
            .call("POST", "/v1/schedules", Some(k), Some(body.clone()))
            .await;
        assert_eq!(st, 201);
        let (st, e) = s.call("POST", "/v1/schedules", Some(k), Some(body)).await;
        assert_eq!(st, 409, "{e}");
        s.stop().await;
    })
    .await;
}

#[tokio::test]
async fn every_schedule_route_answers_each_role_and_tenant_as_the_matrix_says() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let (_, globex) = s.tenant("globex").await;
        let agent = s.agent(&admin, "Ana", "user/1000").await;
        let body = || Some(json!({"name": "hours", "config": hours()}));
        let (st, created) = s.call("POST", "/v1/schedules", Some(&admin), body()).await;
        assert_eq!(st, 201, "{created}");
        let id = created["id"].as_i64().unwrap();
        let keys = [
            ("admin", admin.clone()),
            ("supervisor", s.key(Some(tenant), Role::Supervisor).await),
            ("agent", s.agent_key(tenant, agent).await),
            ("read-only", s.key(Some(tenant), Role::ReadOnly).await),
            ("platform", s.key(None, Role::PlatformAdmin).await),
            ("globex admin", globex),
        ];
        let one = format!("/v1/schedules/{id}");
        let at = format!("/v1/schedules/{id}/status?at=2026-11-25T15:00:00Z");
        // (method, path, with a body, who, status)
        let mut matrix: Vec<(&str, String, bool, &str, u16)> = Vec::new();
        for (who, read, write) in [
            ("supervisor", 200, 403),
            ("agent", 200, 403),
            ("read-only", 200, 403),
            ("platform", 403, 403),
            ("globex admin", 404, 404),
        ] {
            matrix.push(("GET", one.clone(), false, who, read));
            matrix.push(("GET", at.clone(), false, who, read));
            matrix.push(("PUT", one.clone(), true, who, write));
            matrix.push(("DELETE", one.clone(), false, who, write));
            let list = if who == "platform" { 403 } else { 200 };
            matrix.push(("GET", "/v1/schedules".into(), false, who, list));
            let create = match who {
                "globex admin" => 201,
                _ => 403,
            };
            matrix.push(("POST", "/v1/schedules".into(), true, who, create));
        }
        for (method, path, with_body, want) in [
            ("GET", one.clone(), false, 200),
            ("GET", at.clone(), false, 200),
            ("PUT", one.clone(), true, 200),
            ("DELETE", one.clone(), false, 204),
        ] {
            matrix.push((method, path, with_body, "admin", want));
        }
        for (method, path, with_body, who, want) in &matrix {
            let key = &keys.iter().find(|(n, _)| n == who).expect("a key").1;
            let b = if *with_body { body() } else { None };
            let (st, v) = s.call(method, path, Some(key), b).await;
            assert_eq!(st, *want, "{method} {path} as {who}: {v}");
        }
        // globex's own schedule is not acme's.
        let (_, list) = s.call("GET", "/v1/schedules", Some(&admin), None).await;
        assert_eq!(list["schedules"], json!([]), "{list}");
        s.stop().await;
    })
    .await;
}
