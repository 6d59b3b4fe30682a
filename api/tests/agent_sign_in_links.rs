//! Sign-in links for the agent page on both backends: an admin makes one for an agent
//! (`POST /v1/agents/{id}/sign-in-links`), the browser spends its code once at
//! `POST /web/session` for the agent's session; reuse, expiry, the agent's deletion and other
//! tenants are refused with typed errors naming their field; sign-ins and sign-outs are in the
//! audit log.

#[path = "server_common/mod.rs"]
mod server_common;
#[path = "store_common/mod.rs"]
mod store_common;

use serde_json::{Value, json};
use server_common::*;
use switchyard_api::model::Role;
use switchyard_api::store::Pools;

/// POST /web/session with this body: (status, the session token if one was set, body).
async fn session_with(s: &Server, body: Value) -> (u16, Option<String>, Value) {
    let resp = s
        .http
        .post(format!("{}/web/session", s.base))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let token = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sy_session="))
        .and_then(|rest| rest.split(';').next())
        .map(str::to_owned);
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        token,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn field(v: &Value) -> &str {
    v["error"]["field"].as_str().unwrap_or("")
}

/// The code in a link's URL (`/agent#code=...`).
fn code_of(link: &Value) -> String {
    link["url"]
        .as_str()
        .and_then(|u| u.strip_prefix("/agent#code="))
        .expect("a /agent#code= URL")
        .to_owned()
}

async fn make_link(s: &Server, key: &str, agent: i64, body: Value) -> (u16, Value) {
    s.call(
        "POST",
        &format!("/v1/agents/{agent}/sign-in-links"),
        Some(key),
        Some(body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_link_signs_its_agent_in_once_and_is_audited() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let (_tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let before = switchyard_api::store::now_ms();
        let (st, link) = make_link(&s, &admin, ana, json!({})).await;
        assert_eq!(st, 201, "{link}");
        assert_eq!(link["agent_id"], json!(ana));
        let code = code_of(&link);
        assert!(code.starts_with("syl_") && code.len() == 68, "{code}");
        let expires = link["expires_at_ms"].as_i64().unwrap();
        assert!(
            (before + 600_000..before + 610_000).contains(&expires),
            "10 minutes by default: {expires} vs {before}"
        );
        // The store keeps the code's SHA-256, never the code.
        let sql = "SELECT code_hash FROM agent_sign_in_links";
        let hashes: Vec<(String,)> = match store.pools() {
            Pools::Sqlite { reader, .. } => sqlx::query_as(sql).fetch_all(reader).await,
            Pools::Postgres(pg) => sqlx::query_as(sql).fetch_all(pg).await,
        }
        .unwrap();
        assert_eq!(hashes.len(), 1);
        assert_eq!(hashes[0].0.len(), 64);
        assert!(!hashes[0].0.contains(&code[4..]));

        let (st, token, who) = session_with(&s, json!({ "code": code })).await;
        assert_eq!(st, 201, "{who}");
        let token = token.expect("a session cookie");
        assert_eq!(
            (&who["kind"], &who["role"], &who["agent_id"]),
            (&json!("person"), &json!("agent"), &json!(ana)),
            "{who}"
        );
        // The session acts as Ana: her own state.
        let resp = s
            .http
            .put(format!("{}/v1/agents/{ana}/state", s.base))
            .header("cookie", format!("sy_session={token}"))
            .header("x-csrf-token", who["csrf_token"].as_str().unwrap())
            .json(&json!({"state": "available"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);

        // Used once.
        let (st, token, e) = session_with(&s, json!({ "code": code })).await;
        assert_eq!((st, field(&e)), (401, "code"), "{e}");
        assert!(token.is_none());

        // A person signs out with the session's CSRF token.
        let (_, t2, who2) = session_with(&s, json!({ "key": admin })).await;
        let resp = s
            .http
            .delete(format!("{}/web/session", s.base))
            .header("cookie", format!("sy_session={}", t2.unwrap()))
            .header("x-csrf-token", who2["csrf_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204);

        // Every sign-in and the sign-out are in the audit log, with how.
        let (st, page) = s
            .call("GET", "/v1/audit?action=web.sign_in", Some(&admin), None)
            .await;
        assert_eq!(st, 200, "{page}");
        let methods: Vec<&str> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["detail"]["method"].as_str())
            .collect();
        assert_eq!(methods, vec!["key", "link"], "newest first: {page}");
        let link_entry = &page["entries"][1];
        assert_eq!(link_entry["detail"]["agent_id"], json!(ana), "{page}");
        let (_, page) = s
            .call("GET", "/v1/audit?action=web.sign_out", Some(&admin), None)
            .await;
        assert_eq!(page["entries"].as_array().unwrap().len(), 1, "{page}");
        let (_, page) = s
            .call(
                "GET",
                "/v1/audit?action=agent.sign_in_link",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            page["entries"][0]["object_id"],
            json!(ana.to_string()),
            "{page}"
        );
        assert!(
            !page.to_string().contains(&code),
            "the code is not in the audit log"
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn links_are_refused_when_expired_revoked_with_the_agent_or_not_the_tenants() {
    store_common::each_backend(|store| async move {
        let s = Server::start(store.clone()).await;
        let (tenant, admin) = s.tenant("acme").await;
        let ana = s.agent(&admin, "Ana", "user/1000").await;
        let bob = s.agent(&admin, "Bob", "user/1001").await;
        let supervisor = s.key(Some(tenant), Role::Supervisor).await;
        let anas_desk = s.agent_key(tenant, ana).await;

        // Lifetimes: 60 s to 24 h, named by field.
        for ttl in [json!(59), json!(86_401), json!(-1)] {
            let (st, e) = make_link(&s, &admin, ana, json!({ "expires_in_s": ttl })).await;
            assert_eq!((st, field(&e)), (422, "expires_in_s"), "{ttl}: {e}");
        }
        let (st, e) = make_link(&s, &admin, ana, json!({ "expires_in_s": 60, "x": 1 })).await;
        assert_eq!(st, 422, "unknown fields: {e}");
        let (st, l) = make_link(&s, &admin, ana, json!({ "expires_in_s": 86_400 })).await;
        assert_eq!(st, 201, "a day at most: {l}");
        // Admins only.
        for key in [&supervisor, &anas_desk] {
            let (st, e) = make_link(&s, key, ana, json!({})).await;
            assert_eq!(st, 403, "{e}");
        }
        // Another tenant's agent, or none: 404.
        let (_, other_admin) = s.tenant("other").await;
        let (st, e) = make_link(&s, &other_admin, ana, json!({})).await;
        assert_eq!((st, error_code(&e)), (404, "not_found"), "{e}");
        let (st, e) = make_link(&s, &admin, 123_456_789, json!({})).await;
        assert_eq!((st, error_code(&e)), (404, "not_found"), "{e}");

        // Expired: refused like a used one.
        let (_, expiring) = make_link(&s, &admin, ana, json!({ "expires_in_s": 60 })).await;
        // Its hour comes (set behind the store's back: the test does not wait a minute).
        let sql = "UPDATE agent_sign_in_links SET expires_at = 1 WHERE used_at IS NULL";
        match store.pools() {
            Pools::Sqlite { writer, .. } => sqlx::query(sql).execute(writer).await.map(|_| ()),
            Pools::Postgres(pg) => sqlx::query(sql).execute(pg).await.map(|_| ()),
        }
        .unwrap();
        let (st, _, e) = session_with(&s, json!({ "code": code_of(&expiring) })).await;
        assert_eq!((st, field(&e)), (401, "code"), "expired: {e}");

        // Revoked with the agent: Bob's link dies when Bob is deleted.
        let (_, bobs) = make_link(&s, &admin, bob, json!({})).await;
        let (st, e) = s
            .call("DELETE", &format!("/v1/agents/{bob}"), Some(&admin), None)
            .await;
        assert_eq!(st, 204, "{e}");
        let (st, _, e) = session_with(&s, json!({ "code": code_of(&bobs) })).await;
        assert_eq!((st, field(&e)), (401, "code"), "agent deleted: {e}");

        // A code of the wrong shape, and a key and a code at once.
        let (st, _, e) = session_with(&s, json!({ "code": "syl_nope" })).await;
        assert_eq!((st, field(&e)), (401, "code"), "{e}");
        let (st, _, e) = session_with(&s, json!({ "code": "x".repeat(10_000) })).await;
        assert_eq!((st, field(&e)), (401, "code"), "{e}");
        let (st, _, e) =
            session_with(&s, json!({ "code": code_of(&l), "key": anas_desk.clone() })).await;
        assert_eq!((st, field(&e)), (422, "key"), "{e}");
        s.stop().await;
    })
    .await;
}
