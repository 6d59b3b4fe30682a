//! What a browser gets from switchyard itself: the pages (`/wallboard`, `/agent`) with their
//! scripts and styles compiled into the binary (no CDN, no build step), and browser sessions
//! (`/web/session`).
//!
//! A person signs in with an API key, a wall screen with a display token, both sent in a JSON
//! body (never in a URL, where logs and history would keep it). The answer sets an HttpOnly,
//! `SameSite=Strict`, `Path=/` cookie (`Secure` over https) holding a random session token, of
//! which the store keeps only the hash; the page keeps nothing in local storage. The session
//! then stands in for the key on every route (`http::middleware::authenticate`), with the
//! key's role and agent, checked against the key on each verification: revoking the key ends
//! it. A write by cookie needs the session's CSRF token in `X-CSRF-Token`; a display session
//! never writes (403 `read_only`), only signs itself out.
//!
//! Lifetimes (fixed, not sliding: a stolen cookie does not live longer by being used): a
//! person's session 12 hours, or until its key expires if sooner; a display session as long
//! as its display token (a wall screen signs in once and runs unattended until the token
//! expires or is revoked).
//!
//! These routes are not in the OpenAPI document: they are the pages' own, for browsers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AppState;
use crate::http::auth::{SESSION_COOKIE, csrf_token, session_cookie};
use crate::http::middleware::SESSION_PATH;
use crate::http::{ApiError, ApiJson, Auth, HttpKit, KeyVerdict};
use crate::model::{Principal, Role};
use crate::store::web::{DISPLAY_TAG, SessionSource, is_display_session};
use crate::store::{AuditEntry, now_ms};

/// A person's session lasts this long at most.
pub const PERSON_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// The pages' policy: scripts, styles and connections to this origin only; no inline script
/// or style, no frames, no plugins, forms post here only.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Longest key or token a sign-in reads (keys are 67 characters, tokens 68).
const MAX_CREDENTIAL_LEN: usize = 512;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(SESSION_PATH, get(who_am_i).post(sign_in).delete(sign_out))
        .route("/wallboard", get(wallboard_page))
        .route("/agent", get(agent_page))
        .route("/web/assets/{name}", get(asset))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    /// An API key (`sy_...`) or a display token (`syd_...`).
    #[serde(default)]
    key: Option<String>,
    /// Or a sign-in link's code (`syl_...`, from `/agent#code=...`): works once.
    #[serde(default)]
    code: Option<String>,
}

/// Who a session is, and the CSRF token its writes carry.
#[derive(Debug, Serialize)]
struct SessionView {
    /// `person` (made from an API key) or `display` (from a display token: read-only).
    kind: &'static str,
    role: Role,
    tenant_id: Uuid,
    /// The agent an agent key acts for, as `/v1/agents/{id}` numbers it.
    agent_id: Option<i64>,
    csrf_token: String,
    /// When the session ends (Unix ms); null: it does not expire by itself.
    expires_at_ms: Option<i64>,
}

fn view(st: &AppState, p: &Principal, token: &str, expires_at_ms: Option<i64>) -> SessionView {
    SessionView {
        kind: if is_display_session(token) {
            "display"
        } else {
            "person"
        },
        role: p.role,
        tenant_id: p.tenant.map(|t| t.0).unwrap_or_default(),
        agent_id: p.agent_id.map(|a| st.rt.ids.agent(a)),
        csrf_token: csrf_token(token),
        expires_at_ms,
    }
}

fn ms_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `Secure` when configured, or when a trusted proxy says the request came over https.
fn secure(kit: &HttpKit, headers: &HeaderMap) -> bool {
    let config = kit.config();
    config.secure_cookies
        || (config.trust_forwarded_for
            && headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https")))
}

fn cookie(value: &str, max_age_s: i64, secure: bool) -> Result<HeaderValue, ApiError> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .map_err(ApiError::internal)
}

fn bad_credential() -> ApiError {
    ApiError::unauthorized("the key or display token is invalid, revoked or expired")
        .with_field("key")
}

/// `POST /web/session`: exchanges a key or a display token for a session cookie (201).
async fn sign_in(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let key = match (&body.key, &body.code) {
        (Some(key), None) => key.trim().to_owned(),
        (None, Some(code)) => link_key(&st, code.trim()).await?,
        _ => {
            return Err(ApiError::unprocessable(
                "key",
                "send either `key` (a key or display token) or `code` (a sign-in link's)",
            ));
        }
    };
    let method = match (&body.code, key.starts_with(DISPLAY_TAG)) {
        (Some(_), _) => "link",
        (None, true) => "display_token",
        (None, false) => "key",
    };
    let key = key.as_str();
    if key.is_empty() {
        return Err(ApiError::unprocessable("key", "must not be empty"));
    }
    if key.len() > MAX_CREDENTIAL_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad_credential());
    }
    let now = now_ms();
    let (verdict, display) = if key.starts_with(DISPLAY_TAG) {
        let found = st
            .rt
            .store
            .check_display_token(key, now)
            .await
            .map_err(|e| {
                st.rt.store.note_error(&e);
                ApiError::from(e)
            })?;
        (crate::app::verdict(found), true)
    } else {
        (st.kit.auth().resolve(key).await?, false)
    };
    let (principal, credential_expires) = match verdict {
        KeyVerdict::Valid { principal, expires } => (principal, expires.map(ms_of)),
        KeyVerdict::Invalid => return Err(bad_credential()),
        KeyVerdict::TenantDisabled(t) => return Err(crate::http::auth::tenant_disabled(t)),
    };
    if principal.tenant.is_none() {
        return Err(ApiError::unprocessable(
            "key",
            "a platform-admin key has no tenant to show pages of: sign in with a tenant's key",
        ));
    }
    let (source, expires_at_ms) = if display {
        // A display token always expires; its session lasts as long.
        let until = credential_expires.unwrap_or(now);
        (SessionSource::Display(principal.key_id), until)
    } else {
        let ttl = i64::try_from(PERSON_SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
        let until = now.saturating_add(ttl);
        (
            SessionSource::Key(principal.key_id),
            credential_expires.map_or(until, |at| at.min(until)),
        )
    };
    let session = st
        .rt
        .store
        .create_web_session(&principal, source, expires_at_ms)
        .await?;
    // Every sign-in is in the tenant's audit log: how, as whom (a display token is named in
    // the detail: it is no API key).
    let a = AuditEntry {
        tenant: principal.tenant,
        key_id: (!display).then_some(principal.key_id),
        action: "web.sign_in",
        object_kind: "web_session",
        object_id: session.id.to_string(),
        detail: serde_json::json!({
            "method": method,
            "role": principal.role.as_str(),
            "agent_id": principal.agent_id.map(|a| st.rt.ids.agent(a)),
            "display_token_id": display.then_some(principal.key_id),
        }),
    };
    let _ = st.rt.store.insert_audit(&a).await;
    let max_age_s = (session.expires_at_ms - now).max(0) / 1000;
    let set = cookie(&session.token, max_age_s, secure(&st.kit, &headers))?;
    let body = view(&st, &principal, &session.token, Some(session.expires_at_ms));
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, set);
    Ok(resp)
}

fn bad_link() -> ApiError {
    ApiError::unauthorized("the sign-in link is invalid, already used or expired")
        .with_field("code")
}

/// A sign-in link's code spent for an agent key of the link's agent, made for this one
/// session (it expires with it, and goes with the agent like its other keys): a session
/// hangs on a key, which is what revokes it.
async fn link_key(st: &AppState, code: &str) -> Result<String, ApiError> {
    if code.len() > MAX_CREDENTIAL_LEN {
        return Err(bad_link());
    }
    let now = now_ms();
    let link = st
        .rt
        .store
        .redeem_sign_in_link(code, now)
        .await?
        .ok_or_else(bad_link)?;
    let ttl = i64::try_from(PERSON_SESSION_TTL.as_millis()).unwrap_or(i64::MAX);
    let a = AuditEntry {
        tenant: Some(link.tenant),
        key_id: None,
        action: "api_key.create",
        object_kind: "api_key",
        object_id: String::new(),
        detail: serde_json::json!({
            "role": "agent",
            "agent_id": st.rt.ids.agent(link.agent_id),
            "sign_in_link_id": link.id,
        }),
    };
    let made = st
        .rt
        .store
        .create_api_key(
            Some(link.tenant),
            Role::Agent,
            Some(link.agent_id),
            "sign-in link",
            Some(now.saturating_add(ttl)),
            &a,
        )
        .await;
    match made {
        Ok((_, key)) => Ok(key),
        // The agent went between the link's redemption and the key: the link is spent.
        Err(crate::store::StoreError::Invalid { .. }) => Err(bad_link()),
        Err(e) => Err(e.into()),
    }
}

/// The session token of a request that the middleware let in by its cookie (401 otherwise:
/// these routes are about the session, a bearer key has none).
fn own_session(headers: &HeaderMap) -> Result<String, ApiError> {
    match (
        headers.contains_key(header::AUTHORIZATION),
        session_cookie(headers),
    ) {
        (false, Some(token)) => Ok(token.to_owned()),
        _ => Err(ApiError::unauthorized(
            "no browser session: sign in at POST /web/session",
        )),
    }
}

/// `GET /web/session`: who the session is, and its CSRF token (for a page just loaded).
async fn who_am_i(
    State(st): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
) -> Result<axum::Json<SessionView>, ApiError> {
    let token = own_session(&headers)?;
    // From the kit's cache, as the middleware just verified it: no second lookup.
    let expires = match st.kit.sessions().resolve(&token).await? {
        KeyVerdict::Valid { expires, .. } => expires.map(ms_of),
        _ => return Err(bad_credential()),
    };
    Ok(axum::Json(view(&st, &p, &token, expires)))
}

/// `DELETE /web/session`: signs out (204) and clears the cookie. Needs the CSRF token (the
/// middleware checks it), so another site cannot sign a screen out.
async fn sign_out(
    State(st): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = own_session(&headers)?;
    st.rt.store.end_web_session(&token).await?;
    let display = is_display_session(&token);
    let a = AuditEntry {
        tenant: p.tenant,
        key_id: (!display).then_some(p.key_id),
        action: "web.sign_out",
        object_kind: "web_session",
        object_id: String::new(),
        detail: serde_json::json!({
            "role": p.role.as_str(),
            "agent_id": p.agent_id.map(|a| st.rt.ids.agent(a)),
            "display_token_id": display.then_some(p.key_id),
        }),
    };
    let _ = st.rt.store.insert_audit(&a).await;
    st.kit.sessions().forget(&token);
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        cookie("", 0, secure(&st.kit, &headers))?,
    );
    Ok(resp)
}

/// A page or an asset, compiled in.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../web/app.css"),
    },
    Asset {
        name: "session.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/session.js"),
    },
    Asset {
        name: "wallboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/wallboard.js"),
    },
    Asset {
        name: "agent.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../web/agent.js"),
    },
];

const WALLBOARD_HTML: &str = include_str!("../../web/wallboard.html");
const AGENT_HTML: &str = include_str!("../../web/agent.html");

/// Every page and asset carries [`PAGE_CSP`] (the kit keeps a CSP a route set). Pages are
/// never cached (a new binary serves new ones); assets are revalidated each time.
fn serve(content_type: &'static str, body: &'static str, cache: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

async fn wallboard_page() -> Response {
    serve("text/html; charset=utf-8", WALLBOARD_HTML, "no-store")
}

async fn agent_page() -> Response {
    serve("text/html; charset=utf-8", AGENT_HTML, "no-store")
}

async fn asset(Path(name): Path<String>) -> Result<Response, ApiError> {
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map(|a| serve(a.content_type, a.body, "no-cache"))
        .ok_or_else(|| ApiError::not_found("no such asset"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_load_only_assets_that_are_served_and_carry_no_inline_script_or_style() {
        for page in [WALLBOARD_HTML, AGENT_HTML] {
            let mut rest = page;
            let mut found = 0;
            while let Some(at) = rest.find("/web/assets/") {
                rest = &rest[at + "/web/assets/".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                    .collect();
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{name} is not served"
                );
                found += 1;
            }
            assert!(found >= 2, "a page loads its script and its styles");
            // The CSP would refuse these; a test says so before a browser does.
            assert!(!page.contains("<script>"), "inline script");
            assert!(!page.contains("style="), "inline style");
            assert!(
                !page.contains("onclick") && !page.contains("onload"),
                "inline handler"
            );
            assert!(
                !page.contains("http://") && !page.contains("https://"),
                "no CDN"
            );
        }
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_and_secure_when_asked() {
        let c = cookie("sys_abc", 60, false).unwrap();
        let c = c.to_str().unwrap();
        assert!(c.starts_with("sy_session=sys_abc; "), "{c}");
        for part in ["Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=60"] {
            assert!(c.contains(part), "{c} lacks {part}");
        }
        assert!(!c.contains("Secure"));
        let s = cookie("sys_abc", 60, true).unwrap();
        assert!(s.to_str().unwrap().ends_with("; Secure"));
    }
}
