//! What an operator relies on, over real HTTP on loopback on both storage backends (SQLite
//! always, PostgreSQL when DATABASE_URL is set): keys stop at their expiry, a disabled tenant
//! is refused with a clear error and keeps its configuration, and wallboards on one display key
//! are served without eating the key's API budget.

#[path = "server_common/mod.rs"]
mod server_common;
#[path = "store_common/mod.rs"]
mod store_common;

use std::time::Duration;

use serde_json::json;
use server_common::*;
use switchyard_api::http::HttpConfig;
use switchyard_api::model::Role;
use switchyard_api::store::now_ms;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_refused_from_its_expiry_on_although_its_verification_was_cached() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, _) = s.tenant("acme").await;
        // The shortest expiry that leaves time for the first request: the test waits for the
        // wall clock to pass it, not for the cache's 5 s.
        let expires = now_ms() + 1_500;
        let (_, key) = s
            .store
            .create_api_key(
                Some(tenant),
                Role::Admin,
                None,
                "short",
                Some(expires),
                &audit(),
            )
            .await
            .unwrap();
        let (st, body) = s.call("GET", "/v1/queues", Some(&key), None).await;
        assert_eq!(st, 200, "{body}");
        while now_ms() <= expires {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (st, body) = s.call("GET", "/v1/queues", Some(&key), None).await;
        assert_eq!(st, 401, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_tenants_keys_are_refused_at_once_with_a_json_error_and_its_queues_stay() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store).await;
        let (tenant, key) = s.tenant("acme").await;
        let (_, other) = s.tenant("globex").await;
        let root = s.key(None, Role::PlatformAdmin).await;
        let k = Some(key.as_str());
        let (st, q) = s
            .call("POST", "/v1/queues", k, Some(json!({"name": "sales", "config": {"strategy": "top-down", "numbers": ["5000"]}})))
            .await;
        assert_eq!(st, 201, "{q}");
        let qid = q["id"].as_i64().unwrap();
        let (st, a) = s
            .call("POST", "/v1/agents", k, Some(json!({"name": "Ana", "config": {"contact": "user/1000"}})))
            .await;
        assert_eq!(st, 201, "{a}");
        let aid = a["id"].as_i64().unwrap();
        let (st, _) = s.call("POST", &format!("/v1/queues/{qid}/members"), k, Some(json!({"agent_id": aid}))).await;
        assert_eq!(st, 201);
        let (st, _) = s.call("PUT", &format!("/v1/agents/{aid}/state"), k, Some(json!({"state": "available"}))).await;
        assert_eq!(st, 200);

        let path = format!("/v1/platform-admin/tenants/{}", tenant.0);
        let (st, t) = s.call("PATCH", &path, Some(&root), Some(json!({"disabled": true}))).await;
        assert_eq!((st, &t["disabled"]), (200, &json!(true)), "{t}");
        // The key was verified (and cached) a moment ago; it is refused on the next request,
        // reads and writes alike, with a code a client can act on.
        for (method, p) in [("GET", "/v1/queues".to_owned()), ("POST", format!("/v1/queues/{qid}/pause"))] {
            let (st, body) = s.call(method, &p, k, None).await;
            assert_eq!(st, 403, "{method} {p}: {body}");
            assert_eq!(body["error"]["code"], "tenant_disabled", "{body}");
            assert!(body["error"]["message"].as_str().unwrap().contains(&tenant.0.to_string()));
        }
        // Another tenant is untouched.
        let (st, _) = s.call("GET", "/v1/queues", Some(&other), None).await;
        assert_eq!(st, 200);

        // Enabled again: the same key works, and the queue kept its member and the agent
        // its state (disabling stops API access, not the engine's work).
        let (st, _) = s.call("PATCH", &path, Some(&root), Some(json!({"disabled": false}))).await;
        assert_eq!(st, 200);
        let (st, stats) = s.call("GET", &format!("/v1/queues/{qid}/stats"), k, None).await;
        assert_eq!(st, 200, "{stats}");
        assert_eq!(stats["agents"]["available"], 1, "{stats}");
        s.stop().await;
    })
    .await;
}

/// The number of answers of each status.
fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_wallboards_on_one_display_key_are_all_served_while_api_requests_keep_their_limit()
 {
    store_common::each_backend(|store| async move {
        // The production defaults: 50/s, burst 100 for the API; the live class above them.
        let s = Server::start_with(store, HttpConfig::default()).await;
        let (tenant, _) = s.tenant("acme").await;
        let display = s.key(Some(tenant), Role::ReadOnly).await;
        // 200 screens connect at once and stay connected (the streams are held open).
        let connects = (0..200).map(|_| {
            s.http
                .get(format!("{}/v1/live", s.base))
                .bearer_auth(&display)
                .send()
        });
        let streams: Vec<reqwest::Response> = futures_util::future::join_all(connects)
            .await
            .into_iter()
            .map(|r| r.expect("the live feed answers"))
            .collect();
        let statuses: Vec<u16> = streams.iter().map(|r| r.status().as_u16()).collect();
        assert_eq!(count(&statuses, 200), 200, "{statuses:?}");
        assert_eq!(streams[0].headers()["ratelimit-limit"], "1000");

        // The same key's ordinary requests still have their own, lower limit: a burst of them
        // past it is answered 429 with the headers a client needs to back off.
        let burst = (0..150).map(|_| {
            s.http
                .get(format!("{}/v1/queues", s.base))
                .bearer_auth(&display)
                .send()
        });
        let answers: Vec<reqwest::Response> = futures_util::future::join_all(burst)
            .await
            .into_iter()
            .map(|r| r.expect("the API answers"))
            .collect();
        let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
        assert!(
            count(&statuses, 200) >= 100,
            "the whole burst passes: {statuses:?}"
        );
        assert!(count(&statuses, 429) > 0, "past the burst: {statuses:?}");
        assert_eq!(count(&statuses, 200) + count(&statuses, 429), 150);
        for r in &answers {
            let h = r.headers();
            assert_eq!(h["ratelimit-limit"], "100");
            if r.status() == 429 {
                assert_eq!(h["ratelimit-remaining"], "0");
                assert!(h.contains_key("retry-after"));
                assert!(h.contains_key("ratelimit-reset"));
            }
        }
        drop(streams);
        s.stop().await;
    })
    .await;
}

/// Polls `GET path` with `key` until it answers `want` (the follower reads the audit log every
/// `access::EVERY`; the test allows five rounds, far inside the minute the cache would keep a
/// verification here).
async fn until_status(s: &Server, key: &str, path: &str, want: u16) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + 5 * switchyard_api::routes::access::EVERY;
    loop {
        let (st, body) = s.call("GET", path, Some(key), None).await;
        if st == want {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} still answers {st}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the admin CLI writes to the database (it reaches no server) holds on a running server
/// without waiting for its key cache: a revoked key, a disabled tenant, narrowed grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_written_to_the_database_by_the_cli_reach_a_running_server() {
    store_common::each_backend(|store| async move {
        // Cached verifications would live a minute: anything sooner is the follower's doing.
        let http = HttpConfig {
            rate_per_sec: 0,
            auth_cache_ttl: Duration::from_secs(60),
            ..HttpConfig::default()
        };
        let s = Server::start_with(store, http).await;
        let (acme, admin) = s.tenant("acme").await;
        let (globex, other) = s.tenant("globex").await;
        let extra = s.key(Some(acme), Role::ReadOnly).await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        for k in [&admin, &other, &extra] {
            until_status(&s, k, "/v1/queues", 200).await;
        }
        let cli = |action: &'static str, kind: &'static str, id: String| {
            let mut a = audit();
            a.action = action;
            a.object_kind = kind;
            a.object_id = id;
            a
        };

        // `switchyard apikey revoke`
        let listed = s.store.list_api_keys(Some(acme)).await.unwrap();
        let ro = listed.iter().find(|k| k.role == Role::ReadOnly).unwrap().id;
        let revoked = cli("api_key.revoke", "api_key", ro.to_string());
        assert!(
            s.store
                .revoke_api_key(Some(acme), ro, &revoked)
                .await
                .unwrap()
        );
        until_status(&s, &extra, "/v1/queues", 401).await;
        until_status(&s, &admin, "/v1/queues", 200).await;

        // `switchyard tenant disable globex`
        let disabled = cli("tenant.update", "tenant", globex.0.to_string());
        assert!(
            s.store
                .set_tenant_disabled(globex, true, &disabled)
                .await
                .unwrap()
        );
        let e = until_status(&s, &other, "/v1/queues", 403).await;
        assert_eq!(e["error"]["code"], "tenant_disabled", "{e}");

        // `switchyard tenant grants acme ...`: Ana's phone is no longer granted, and the
        // running engine lets her go.
        until_status(&s, &admin, &format!("/v1/agents/{ana}/state"), 200).await;
        let narrow = switchyard_api::grants::DialGrants {
            agent_endpoints: vec!["user/{ext}@acme.example.com".into()],
            ..switchyard_api::grants::DialGrants::lab()
        };
        let granted = cli("tenant.grants", "tenant", acme.0.to_string());
        assert!(
            s.store
                .set_tenant_grants(acme, &narrow, &granted)
                .await
                .unwrap()
        );
        until_status(&s, &admin, &format!("/v1/agents/{ana}/state"), 404).await;
        s.stop().await;
    })
    .await;
}
