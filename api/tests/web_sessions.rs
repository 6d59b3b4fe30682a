//! Browser sessions and display tokens (issue 22, items 5 and 1's sign-in), over real HTTP on
//! loopback, on both storage backends: a key exchanged at `POST /web/session` for an HttpOnly
//! cookie that then stands in for the key, writes by cookie only with the session's CSRF
//! token, sign-out, revocation of the key ending its sessions, display tokens giving a
//! read-only session of one tenant, typed errors naming the field, and the key's rate limit.

#[path = "server_common/mod.rs"]
mod server_common;
#[path = "store_common/mod.rs"]
mod store_common;

use std::time::Duration;

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::http::HttpConfig;
use switchyard_api::model::Role;

/// What an answer said: status, `Set-Cookie`, JSON body.
struct Answer {
    status: u16,
    set_cookie: Option<String>,
    body: Value,
}

/// A request with an optional session cookie, CSRF header and JSON body (no bearer key).
async fn by_cookie(
    s: &Server,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = s.http.request(m, format!("{}{path}", s.base));
    if let Some(c) = cookie {
        req = req.header("cookie", format!("sy_session={c}"));
    }
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap_or_default();
    Answer {
        status,
        set_cookie,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// Signs in with `key` (or a display token): the session token from the cookie, and the body.
async fn sign_in(s: &Server, key: &str) -> (String, Value) {
    let a = by_cookie(
        s,
        "POST",
        "/web/session",
        None,
        None,
        Some(json!({ "key": key })),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let set = a.set_cookie.expect("a session cookie");
    let token = set
        .strip_prefix("sy_session=")
        .and_then(|rest| rest.split(';').next())
        .expect("sy_session=<token>; ...")
        .to_owned();
    (token, a.body)
}

fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_exchanged_for_a_cookie_acts_as_the_key_and_writes_need_the_csrf_token() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let a = by_cookie(
            &s,
            "POST",
            "/web/session",
            None,
            None,
            Some(json!({ "key": admin })),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.body);
        let set = a.set_cookie.clone().unwrap();
        for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
            assert!(set.contains(part), "{set} lacks {part}");
        }
        assert!(!set.contains("Secure"), "plain http: {set}");
        assert!(!set.contains(&admin), "the cookie is not the key");
        assert_eq!(a.body["kind"], "person");
        assert_eq!(a.body["role"], "admin");
        assert_eq!(a.body["tenant_id"], json!(tenant.0));
        let (cookie, who) = sign_in(&s, &admin).await;
        let csrf = who["csrf_token"].as_str().unwrap().to_owned();
        assert_eq!(csrf.len(), 64);

        // Reads by cookie alone; who-am-I gives the same CSRF token back to a reloaded page.
        let r = by_cookie(&s, "GET", "/v1/queues", Some(&cookie), None, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let w = by_cookie(&s, "GET", "/web/session", Some(&cookie), None, None).await;
        assert_eq!(w.status, 200, "{}", w.body);
        assert_eq!(w.body["csrf_token"], csrf.as_str());
        assert_eq!(w.body["role"], "admin");

        // A write without the token, or with another's, is refused before the handler.
        let q = json!({ "name": "sales", "config": {} });
        let r = by_cookie(
            &s,
            "POST",
            "/v1/queues",
            Some(&cookie),
            None,
            Some(q.clone()),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(error_code(&r.body), "csrf");
        assert_eq!(field(&r.body), "X-CSRF-Token");
        let (_, other) = sign_in(&s, &admin).await;
        let wrong = other["csrf_token"].as_str().unwrap();
        assert_ne!(wrong, csrf);
        let r = by_cookie(
            &s,
            "POST",
            "/v1/queues",
            Some(&cookie),
            Some(wrong),
            Some(q.clone()),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body);
        let (_, queues) = s.call("GET", "/v1/queues", Some(&admin), None).await;
        assert_eq!(queues["queues"], json!([]), "nothing was written");
        let r = by_cookie(
            &s,
            "POST",
            "/v1/queues",
            Some(&cookie),
            Some(&csrf),
            Some(q),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);

        // Sign-out needs the token too, ends the session and clears the cookie.
        let r = by_cookie(&s, "DELETE", "/web/session", Some(&cookie), None, None).await;
        assert_eq!(r.status, 403, "{}", r.body);
        let r = by_cookie(
            &s,
            "DELETE",
            "/web/session",
            Some(&cookie),
            Some(&csrf),
            None,
        )
        .await;
        assert_eq!(r.status, 204);
        assert!(r.set_cookie.unwrap().contains("Max-Age=0"));
        let r = by_cookie(&s, "GET", "/v1/queues", Some(&cookie), None, None).await;
        assert_eq!(r.status, 401, "{}", r.body);
        let r = by_cookie(&s, "GET", "/web/session", Some(&cookie), None, None).await;
        assert_eq!(r.status, 401, "{}", r.body);
        // A request with an Authorization header is the header's, whatever cookie it carries.
        let resp = s
            .http
            .get(format!("{}/v1/queues", s.base))
            .bearer_auth(&admin)
            .header("cookie", format!("sy_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        // A bearer key on the session routes is no session.
        let (st, _) = s.call("GET", "/web/session", Some(&admin), None).await;
        assert_eq!(st, 401);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_the_key_ends_the_sessions_made_from_it_at_once() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_tenant, admin) = s.tenant("acme").await;
        let (st, created) = s
            .call(
                "POST",
                "/v1/api-keys",
                Some(&admin),
                Some(json!({ "name": "sup", "role": "supervisor" })),
            )
            .await;
        assert_eq!(st, 201, "{created}");
        let sup = created["key"].as_str().unwrap();
        let (cookie, who) = sign_in(&s, sup).await;
        assert_eq!(who["role"], "supervisor");
        let r = by_cookie(&s, "GET", "/v1/agents", Some(&cookie), None, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let id = created["id"].as_str().unwrap();
        let (st, _) = s
            .call("DELETE", &format!("/v1/api-keys/{id}"), Some(&admin), None)
            .await;
        assert_eq!(st, 204);
        // No wait for the cache: the revocation dropped the session's verification.
        let r = by_cookie(&s, "GET", "/v1/agents", Some(&cookie), None, None).await;
        assert_eq!(r.status, 401, "{}", r.body);
        // Nor can the revoked key make a new one.
        let r = by_cookie(
            &s,
            "POST",
            "/web/session",
            None,
            None,
            Some(json!({ "key": sup })),
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(field(&r.body), "key");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_sign_ins_are_typed_json_errors_naming_the_field() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_tenant, admin) = s.tenant("acme").await;
        let root = s.key(None, Role::PlatformAdmin).await;
        let cases: Vec<(Value, u16, &str)> = vec![
            (json!({}), 422, "key"),
            (json!({ "key": "" }), 422, "key"),
            (json!({ "key": "   " }), 422, "key"),
            (json!({ "key": 5 }), 422, "key"),
            (json!({ "key": admin, "remember": true }), 422, "remember"),
            (
                json!({ "key": format!("sy_{}", "0".repeat(64)) }),
                401,
                "key",
            ),
            (
                json!({ "key": format!("syd_{}", "0".repeat(64)) }),
                401,
                "key",
            ),
            (json!({ "key": "x".repeat(10_000) }), 401, "key"),
            (json!({ "key": "line\nbreak" }), 401, "key"),
            (json!({ "key": root }), 422, "key"),
        ];
        for (body, status, want) in cases {
            let r = by_cookie(&s, "POST", "/web/session", None, None, Some(body.clone())).await;
            assert_eq!(r.status, status, "{body}: {}", r.body);
            assert_eq!(field(&r.body), want, "{body}: {}", r.body);
            assert!(r.set_cookie.is_none(), "{body}: no cookie on a refusal");
        }
        // Not JSON: 415, as every JSON route.
        let resp = s
            .http
            .post(format!("{}/web/session", s.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("key={admin}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 415);
        // A cookie that is no session is a 401 where a key is needed, nothing where none is.
        for junk in ["nope", "sys_zz", &format!("sys_{}", "a".repeat(64))] {
            let r = by_cookie(&s, "GET", "/v1/queues", Some(junk), None, None).await;
            assert_eq!(r.status, 401, "{junk}: {}", r.body);
            let r = by_cookie(&s, "GET", "/healthz", Some(junk), None, None).await;
            assert_eq!(r.status, 200, "{junk}");
        }
        // A stale cookie does not stand in the way of a new sign-in.
        let r = by_cookie(
            &s,
            "POST",
            "/web/session",
            Some("stale"),
            None,
            Some(json!({ "key": admin })),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_display_token_gives_a_read_only_session_of_its_tenant_that_ends_when_revoked() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let (_other, other_admin) = s.tenant("globex").await;
        let agent = s.agent(&admin, "Ana", "user/1000").await;
        let (st, created) = s
            .call(
                "POST",
                "/v1/display-tokens",
                Some(&admin),
                Some(json!({ "name": "floor 2 TV", "expires_in_s": 3600 })),
            )
            .await;
        assert_eq!(st, 201, "{created}");
        let token = created["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("syd_") && token.len() == 68, "{token}");
        assert_eq!(&token[4..16], created["prefix"].as_str().unwrap());
        let id = created["id"].as_str().unwrap().to_owned();
        let (st, list) = s
            .call("GET", "/v1/display-tokens", Some(&admin), None)
            .await;
        assert_eq!(st, 200);
        assert_eq!(list["display_tokens"].as_array().unwrap().len(), 1);
        assert!(
            list["display_tokens"][0].get("token").is_none(),
            "shown once"
        );
        assert!(!list.to_string().contains(&token));
        // Another tenant neither sees nor revokes it.
        let (_, theirs) = s
            .call("GET", "/v1/display-tokens", Some(&other_admin), None)
            .await;
        assert_eq!(theirs["display_tokens"], json!([]));
        let (st, _) = s
            .call(
                "DELETE",
                &format!("/v1/display-tokens/{id}"),
                Some(&other_admin),
                None,
            )
            .await;
        assert_eq!(st, 404);
        // A display token is no API key.
        let (st, _) = s.call("GET", "/v1/queues", Some(&token), None).await;
        assert_eq!(st, 401);

        let (cookie, who) = sign_in(&s, &token).await;
        assert_eq!(who["kind"], "display");
        assert_eq!(who["role"], "read-only");
        assert_eq!(who["tenant_id"], json!(tenant.0));
        let expires = who["expires_at_ms"].as_i64().unwrap();
        assert_eq!(
            expires,
            created["expires_at_ms"].as_i64().unwrap(),
            "as long as the token"
        );
        let csrf = who["csrf_token"].as_str().unwrap().to_owned();

        // It reads what a wallboard needs, and the live feed starts with the snapshot.
        for path in ["/v1/queues", "/v1/agents", "/web/session"] {
            let r = by_cookie(&s, "GET", path, Some(&cookie), None, None).await;
            assert_eq!(r.status, 200, "{path}: {}", r.body);
        }
        let mut live = s
            .http
            .get(format!("{}/v1/live", s.base))
            .header("cookie", format!("sy_session={cookie}"))
            .send()
            .await
            .unwrap();
        assert_eq!(live.status().as_u16(), 200);
        // The first frames: `retry:`, then the snapshot.
        let mut first = String::new();
        while !first.contains("\n\n{") && !first.contains("server_time_ms") {
            let chunk = tokio::time::timeout(Duration::from_secs(5), live.chunk())
                .await
                .expect("the snapshot within 5 s")
                .unwrap()
                .expect("the feed stays open");
            first.push_str(&String::from_utf8_lossy(&chunk));
            assert!(first.len() < 1 << 20, "no snapshot in {first}");
        }
        assert!(first.contains("event: snapshot"), "{first}");
        drop(live);

        // It never acts: with its CSRF token or without, whatever the route.
        let writes = [
            (
                "POST",
                "/v1/queues".to_owned(),
                json!({ "name": "x", "config": {} }),
            ),
            (
                "PUT",
                format!("/v1/agents/{agent}/state"),
                json!({ "state": "available" }),
            ),
            (
                "POST",
                "/v1/display-tokens".to_owned(),
                json!({ "name": "x", "expires_in_s": 60 }),
            ),
            ("DELETE", format!("/v1/display-tokens/{id}"), Value::Null),
        ];
        for (method, path, body) in writes {
            for token in [None, Some(csrf.as_str())] {
                let r =
                    by_cookie(&s, method, &path, Some(&cookie), token, Some(body.clone())).await;
                assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
                assert_eq!(error_code(&r.body), "read_only", "{}", r.body);
            }
        }
        let (_, state) = s
            .call(
                "GET",
                &format!("/v1/agents/{agent}/state"),
                Some(&admin),
                None,
            )
            .await;
        assert_ne!(state["state"], "available", "nothing was done: {state}");

        // Revoked: its sessions end at once, and it signs in no more.
        let (st, _) = s
            .call(
                "DELETE",
                &format!("/v1/display-tokens/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(st, 204);
        let r = by_cookie(&s, "GET", "/v1/queues", Some(&cookie), None, None).await;
        assert_eq!(r.status, 401, "{}", r.body);
        let r = by_cookie(
            &s,
            "POST",
            "/web/session",
            None,
            None,
            Some(json!({ "key": token })),
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.body);
        let (_, list) = s
            .call("GET", "/v1/display-tokens", Some(&admin), None)
            .await;
        assert!(
            list["display_tokens"][0]["revoked_at_ms"].is_i64(),
            "{list}"
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_display_session_signs_itself_out_with_its_csrf_token() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (_tenant, admin) = s.tenant("acme").await;
        let (_, created) = s
            .call(
                "POST",
                "/v1/display-tokens",
                Some(&admin),
                Some(json!({ "name": "lobby", "expires_at_ms": switchyard_api::store::now_ms() + 86_400_000 })),
            )
            .await;
        let (cookie, who) = sign_in(&s, created["token"].as_str().unwrap()).await;
        let csrf = who["csrf_token"].as_str().unwrap();
        let r = by_cookie(&s, "DELETE", "/web/session", Some(&cookie), Some(csrf), None).await;
        assert_eq!(r.status, 204, "{}", r.body);
        let r = by_cookie(&s, "GET", "/v1/queues", Some(&cookie), None, None).await;
        assert_eq!(r.status, 401);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn display_tokens_must_expire_within_a_year_and_only_admins_make_them() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let now = switchyard_api::store::now_ms();
        let cases = [
            (json!({ "name": "tv" }), "expires_in_s"),
            (
                json!({ "name": "tv", "expires_in_s": 60, "expires_at_ms": now + 60_000 }),
                "expires_in_s",
            ),
            (json!({ "name": "tv", "expires_in_s": 0 }), "expires_in_s"),
            (
                json!({ "name": "tv", "expires_in_s": 400 * 86_400 }),
                "expires_in_s",
            ),
            (
                json!({ "name": "tv", "expires_at_ms": now - 1 }),
                "expires_at_ms",
            ),
            (
                json!({ "name": "tv", "expires_at_ms": now + 400 * 86_400_000_i64 }),
                "expires_at_ms",
            ),
            (json!({ "name": "", "expires_in_s": 60 }), "name"),
            (
                json!({ "name": "tv", "expires_in_s": 60, "role": "admin" }),
                "role",
            ),
        ];
        for (body, want) in cases {
            let (st, v) = s
                .call(
                    "POST",
                    "/v1/display-tokens",
                    Some(&admin),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(st, 422, "{body}: {v}");
            assert_eq!(field(&v), want, "{body}: {v}");
        }
        let sup = s.key(Some(tenant), Role::Supervisor).await;
        let (st, _) = s
            .call(
                "POST",
                "/v1/display-tokens",
                Some(&sup),
                Some(json!({ "name": "tv", "expires_in_s": 60 })),
            )
            .await;
        assert_eq!(st, 403);
        let (st, _) = s.call("GET", "/v1/display-tokens", Some(&sup), None).await;
        assert_eq!(st, 403);
        let (st, v) = s
            .call("GET", "/v1/display-tokens", Some(&admin), None)
            .await;
        assert_eq!(
            (st, &v["display_tokens"]),
            (200, &json!([])),
            "nothing was made"
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_shares_its_keys_rate_limit_and_is_secure_when_configured() {
    store_common::each_backend(|store| async move {
        let s = Server::start_with(
            store,
            HttpConfig {
                rate_per_sec: 1,
                burst: 4,
                secure_cookies: true,
                ..HttpConfig::default()
            },
        )
        .await;
        let (_tenant, admin) = s.tenant("acme").await;
        let a = by_cookie(
            &s,
            "POST",
            "/web/session",
            None,
            None,
            Some(json!({ "key": admin })),
        )
        .await;
        assert_eq!(a.status, 201, "{}", a.body);
        let set = a.set_cookie.unwrap();
        assert!(set.ends_with("; Secure"), "{set}");
        let cookie = set
            .strip_prefix("sy_session=")
            .and_then(|r| r.split(';').next())
            .unwrap()
            .to_owned();
        // The key's bucket (4) is spent by cookie requests, and then the key is refused too:
        // a session is its key's client, not a way around its limit.
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(
                by_cookie(&s, "GET", "/v1/queues", Some(&cookie), None, None)
                    .await
                    .status,
            );
        }
        statuses.push(s.call("GET", "/v1/queues", Some(&admin), None).await.0);
        assert_eq!(statuses, [200, 200, 200, 200, 429], "{statuses:?}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_display_token_revoked_elsewhere_ends_its_sessions_within_the_audit_followers_round() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, admin) = s.tenant("acme").await;
        let (_, created) = s
            .call(
                "POST",
                "/v1/display-tokens",
                Some(&admin),
                Some(json!({ "name": "lobby", "expires_in_s": 600 })),
            )
            .await;
        let (cookie, _) = sign_in(&s, created["token"].as_str().unwrap()).await;
        let r = by_cookie(&s, "GET", "/v1/queues", Some(&cookie), None, None).await;
        assert_eq!(r.status, 200);
        // As another server or the admin CLI would: the database only, with its audit entry.
        let id: uuid::Uuid = created["id"].as_str().unwrap().parse().unwrap();
        let mut entry = audit();
        entry.tenant = Some(tenant);
        entry.action = "display_token.revoke";
        entry.object_kind = "display_token";
        entry.object_id = id.to_string();
        assert!(
            s.store
                .revoke_display_token(tenant, id, &entry)
                .await
                .unwrap()
        );
        // The follower reads the audit log every 2 s; the kit's cache alone would keep the
        // session 5 s.
        let started = std::time::Instant::now();
        loop {
            let r = by_cookie(&s, "GET", "/v1/queues", Some(&cookie), None, None).await;
            if r.status == 401 {
                break;
            }
            assert_eq!(r.status, 200, "{}", r.body);
            assert!(
                started.elapsed() < Duration::from_millis(4_500),
                "still signed in {:?} after the revocation",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s.stop().await;
    })
    .await;
}
