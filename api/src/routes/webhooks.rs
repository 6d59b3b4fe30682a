//! `/v1/webhooks`: the tenant's webhook endpoints (URL, event filter, description, enabled),
//! their signing secrets (made here, shown once, rotated with an overlap), a test send and the
//! delivery log (the newest 100 attempts). Every write is admin-only and audited.
//!
//! ```text
//!   POST   /v1/webhooks                  ─► 201, the endpoint and its secret (shown once)
//!   PATCH  /v1/webhooks/{id}             ─► url, events, description, enabled
//!   POST   /v1/webhooks/{id}/rotate-secret ─► the new secret (shown once); the old one signs
//!                                          alongside it for `overlap_s` (default 24 h)
//!   POST   /v1/webhooks/{id}/test        ─► a signed `webhook.test` now; what came back
//!   GET    /v1/webhooks/{id}/deliveries  ─► the newest 100 attempts
//!   POST   /v1/webhooks/{id}/replay      ─► every message since a time owed again
//!   POST   /v1/webhooks/{id}/messages/{message_id}/resend ─► one message owed again
//! ```
//!
//! The engine's events reach endpoints through the outbox and the delivery worker
//! (`store::outbox`, `webhooks::worker`): a replay or a resend makes messages owed again with
//! their own `webhook-id`, so a receiver that keeps ids drops what it already has.
//!
//! A URL is checked when written (`http`/`https`, no credentials in it, no private, loopback
//! or link-local address unless the operator allows them) and its addresses again at every
//! connect (`webhooks::target`), so a name that later resolves elsewhere gets nowhere. A test
//! send is judged as any delivery is: `410 Gone` disables the endpoint.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ADMINS, AppState, audit};
use crate::http::live::LiveMessage;
use crate::http::{ApiError, ApiJson, ApiPath, Auth, require_role, require_tenant};
use crate::ids::IdKind;
use crate::model::TenantId;
use crate::openapi::ErrorBody;
use crate::store::{StoredSecret, WebhookAttemptRow, WebhookRow};
use crate::webhooks::schedule::{Attempt, Decision, DisableReason, Outcome, decide};
use crate::webhooks::signing::{MessageId, Secret};
use crate::webhooks::target::{self, Target};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, remove))
        .routes(routes!(rotate_secret))
        .routes(routes!(test_send))
        .routes(routes!(deliveries))
        .routes(routes!(replay))
        .routes(routes!(resend))
}

/// Endpoints a tenant keeps.
const MAX_ENDPOINTS: usize = 50;
/// Event types one endpoint may list.
const MAX_EVENTS: usize = 32;
/// The longest description.
const MAX_DESCRIPTION: usize = 500;
/// How long a rotated-out secret signs alongside the new one, unless the request says.
const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// The longest overlap a rotation may ask for.
const MAX_OVERLAP: Duration = Duration::from_secs(30 * 24 * 3600);
/// Secrets one endpoint keeps at once (the signing header carries one signature each).
const MAX_SECRETS: usize = crate::webhooks::signing::MAX_SIGNATURES;

/// The event types an endpoint may ask for (DESIGN.md §7, issue 21).
pub const EVENT_TYPES: [&str; 11] = [
    "call.queued",
    "call.answered",
    "call.completed",
    "call.abandoned",
    "agent.state_changed",
    "campaign.started",
    "campaign.paused",
    "campaign.completed",
    "recording.completed",
    "voicemail.received",
    "webhook.test",
];

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// Where events are POSTed: `https://` (or `http://`), no credentials in it.
    url: String,
    /// Event types to deliver (see `EVENT_TYPES` in the README); empty or absent for all.
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
    /// `true` enables a disabled endpoint again (and forgets why it was disabled).
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the old secret keeps signing alongside the new one, 0 to 30 days [86400].
    overlap_s: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
struct WebhookView {
    id: i64,
    url: String,
    description: String,
    events: Vec<String>,
    enabled: bool,
    /// Why it was disabled (`gone`: the receiver answered 410; `failing`: 5 days of failures).
    disabled_reason: Option<String>,
    /// When its current run of failed attempts began.
    failing_since_ms: Option<i64>,
    /// Secrets signing now (the current one and those in their rotation overlap).
    secrets_active: usize,
    created_at_ms: i64,
    updated_at_ms: i64,
}

/// An endpoint with its new secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
struct WithSecret {
    #[serde(flatten)]
    webhook: WebhookView,
    /// `whsec_...`: receivers verify signatures with it. Not shown again.
    secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct WebhookList {
    webhooks: Vec<WebhookView>,
}

#[derive(Debug, Serialize, ToSchema)]
struct AttemptView {
    id: Uuid,
    /// The message's `webhook-id`.
    message_id: String,
    event_type: String,
    attempt: i32,
    at_ms: i64,
    status: Option<i32>,
    latency_ms: i64,
    /// The answer's first bytes (at most 1 KiB).
    response: Option<String>,
    error: Option<String>,
    delivered: bool,
}

#[derive(Debug, Serialize, ToSchema)]
struct AttemptList {
    deliveries: Vec<AttemptView>,
}

fn now_ms() -> i64 {
    crate::store::now_ms()
}

fn view(st: &AppState, r: &WebhookRow) -> WebhookView {
    WebhookView {
        id: st.rt.ids.encode(IdKind::Webhook, r.id),
        url: r.url.clone(),
        description: r.description.clone(),
        events: r.events.clone(),
        enabled: r.enabled,
        disabled_reason: r.disabled_reason.clone(),
        failing_since_ms: r.failing_since_ms,
        secrets_active: r.signing_secrets(now_ms()).len(),
        created_at_ms: r.created_at_ms,
        updated_at_ms: r.updated_at_ms,
    }
}

fn attempt_view(a: WebhookAttemptRow) -> AttemptView {
    AttemptView {
        id: a.id,
        message_id: a.message_id,
        event_type: a.event_type,
        attempt: a.attempt,
        at_ms: a.at_ms,
        status: a.status,
        latency_ms: a.latency_ms,
        response: a.response,
        error: a.error,
        delivered: a.delivered,
    }
}

/// The URL as stored, checked against the operator's rule for private targets.
fn checked_url(st: &AppState, url: &str) -> Result<Target, ApiError> {
    Target::parse(url, st.rt.webhooks_private())
        .map_err(|e| ApiError::unprocessable("url", e.to_string()))
}

fn checked_events(events: &[String]) -> Result<Vec<String>, ApiError> {
    if events.len() > MAX_EVENTS {
        return Err(ApiError::unprocessable(
            "events",
            format!("at most {MAX_EVENTS} event types"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for (i, e) in events.iter().enumerate() {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(ApiError::unprocessable(
                format!("events[{i}]"),
                format!("not an event type; one of {}", EVENT_TYPES.join(", ")),
            ));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

fn checked_description(d: &str) -> Result<(), ApiError> {
    if d.chars().count() > MAX_DESCRIPTION || d.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "description",
            format!("at most {MAX_DESCRIPTION} characters, no control characters"),
        ));
    }
    Ok(())
}

fn new_secret() -> Result<Secret, ApiError> {
    Secret::generate().map_err(ApiError::internal)
}

async fn find(st: &AppState, tenant: TenantId, shown: i64) -> Result<WebhookRow, ApiError> {
    let id = super::stored_id(st, IdKind::Webhook, shown)?;
    st.rt
        .store
        .get_webhook(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no webhook {shown}")))
}

/// The tenant's webhook endpoints (secrets are never listed).
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    operation_id = "list_webhooks",
    responses((status = 200, description = "The tenant's endpoints", body = WebhookList)),
)]
async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<WebhookList>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let rows = st.rt.store.list_webhooks(tenant).await?;
    Ok(Json(WebhookList {
        webhooks: rows.iter().map(|r| view(&st, r)).collect(),
    }))
}

/// Adds an endpoint with a new signing secret, shown in this answer only (admin, audited).
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    operation_id = "create_webhook",
    request_body = CreateBody,
    responses(
        (status = 201, description = "Created, with its secret", body = WithSecret),
        (status = 422, description = "A field refused (named in `field`)", body = ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<WithSecret>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let url = checked_url(&st, &body.url)?;
    let events = checked_events(&body.events)?;
    checked_description(&body.description)?;
    if st.rt.store.list_webhooks(tenant).await?.len() >= MAX_ENDPOINTS {
        return Err(ApiError::unprocessable(
            "url",
            format!("a tenant keeps at most {MAX_ENDPOINTS} webhook endpoints"),
        ));
    }
    let secret = new_secret()?;
    let shown = secret.expose();
    let a = audit(
        &p,
        Some(tenant),
        "webhook.create",
        "webhook",
        "",
        json!({ "url": url.as_str(), "events": events, "description": body.description }),
    );
    let row = st
        .rt
        .store
        .create_webhook(
            tenant,
            url.as_str(),
            &body.description,
            &events,
            StoredSecret {
                secret: shown.clone(),
                created_at_ms: now_ms(),
                expires_at_ms: None,
            },
            &a,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(WithSecret {
            webhook: view(&st, &row),
            secret: shown,
        }),
    ))
}

/// One endpoint.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    operation_id = "get_webhook",
    params(("id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookView),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ),
)]
async fn get_one(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<WebhookView>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let row = find(&st, tenant, shown).await?;
    Ok(Json(view(&st, &row)))
}

/// Changes an endpoint (admin, audited); `enabled: true` brings a disabled one back.
#[utoipa::path(
    patch,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    operation_id = "update_webhook",
    params(("id" = i64, Path, description = "The endpoint's id")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The endpoint as it now is", body = WebhookView),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 422, description = "A field refused (named in `field`)", body = ErrorBody),
    ),
)]
async fn update(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<WebhookView>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Webhook, shown)?;
    let url = body
        .url
        .as_deref()
        .map(|u| checked_url(&st, u))
        .transpose()?;
    let events = body.events.as_deref().map(checked_events).transpose()?;
    if let Some(d) = &body.description {
        checked_description(d)?;
    }
    let a = audit(
        &p,
        Some(tenant),
        "webhook.update",
        "webhook",
        id,
        json!({
            "url": url.as_ref().map(Target::as_str),
            "events": events,
            "description": body.description,
            "enabled": body.enabled,
        }),
    );
    let row = st
        .rt
        .store
        .update_webhook(
            tenant,
            id,
            url.as_ref().map(Target::as_str),
            body.description.as_deref(),
            events.as_deref(),
            body.enabled,
            &a,
        )
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no webhook {shown}")))?;
    Ok(Json(view(&st, &row)))
}

/// Removes an endpoint and its secrets (admin, audited); its delivery log stays.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    operation_id = "delete_webhook",
    params(("id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ),
)]
async fn remove(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Webhook, shown)?;
    let a = audit(&p, Some(tenant), "webhook.delete", "webhook", id, json!({}));
    if st.rt.store.delete_webhook(tenant, id, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no webhook {shown}")))
    }
}

/// A new signing secret, shown in this answer only (admin, audited). The previous one keeps
/// signing alongside it for `overlap_s`, so receivers can switch without losing a message.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/rotate-secret",
    tag = "webhooks",
    operation_id = "rotate_webhook_secret",
    params(("id" = i64, Path, description = "The endpoint's id")),
    request_body(content = RotateBody, description = "Optional", content_type = "application/json"),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = WithSecret),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 422, description = "`overlap_s` past 30 days", body = ErrorBody),
    ),
)]
async fn rotate_secret(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    raw: axum::body::Bytes,
) -> Result<Json<WithSecret>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    // The body is optional: none (or only whitespace) rotates with the default overlap.
    let body: RotateBody = if raw.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        serde_json::from_slice(&raw).map_err(|e| {
            ApiError::unprocessable("overlap_s", format!("not a rotation request: {e}"))
        })?
    };
    let overlap = match body.overlap_s {
        Some(s) if Duration::from_secs(s) > MAX_OVERLAP => {
            return Err(ApiError::unprocessable(
                "overlap_s",
                format!("at most {} (30 days)", MAX_OVERLAP.as_secs()),
            ));
        }
        Some(s) => Duration::from_secs(s),
        None => DEFAULT_OVERLAP,
    };
    let row = find(&st, tenant, shown).await?;
    let now = now_ms();
    let until = now.saturating_add(i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX));
    // The new secret first; the others end at the overlap's end at the latest; expired ones
    // go, and at most the header's share of signatures is kept.
    let secret = new_secret()?;
    let shown_secret = secret.expose();
    let mut secrets = vec![StoredSecret {
        secret: shown_secret.clone(),
        created_at_ms: now,
        expires_at_ms: None,
    }];
    for mut old in row.secrets {
        old.expires_at_ms = Some(old.expires_at_ms.map_or(until, |e| e.min(until)));
        if old.expires_at_ms.is_some_and(|e| e > now) && secrets.len() < MAX_SECRETS {
            secrets.push(old);
        }
    }
    let a = audit(
        &p,
        Some(tenant),
        "webhook.rotate_secret",
        "webhook",
        row.id,
        json!({ "overlap_s": overlap.as_secs() }),
    );
    let row = st
        .rt
        .store
        .set_webhook_secrets(tenant, row.id, &secrets, &a)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no webhook {shown}")))?;
    Ok(Json(WithSecret {
        webhook: view(&st, &row),
        secret: shown_secret,
    }))
}

/// What a test send gave.
#[derive(Debug, Serialize, ToSchema)]
struct TestResult {
    delivered: bool,
    /// The message's `webhook-id`.
    message_id: String,
    status: Option<u16>,
    latency_ms: u64,
    /// The answer's first bytes (at most 1 KiB).
    response: Option<String>,
    error: Option<String>,
    /// The endpoint was disabled by this answer (`410 Gone`).
    disabled: bool,
}

/// Sends a signed `webhook.test` message to the endpoint now and says what came back; the
/// attempt goes into its delivery log. Judged as any delivery: `410 Gone` disables it.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/test",
    tag = "webhooks",
    operation_id = "test_webhook",
    params(("id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "What the receiver answered", body = TestResult),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 409, description = "The endpoint is disabled", body = ErrorBody),
    ),
)]
async fn test_send(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<TestResult>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let row = find(&st, tenant, shown).await?;
    if !row.enabled {
        return Err(ApiError::conflict(format!(
            "webhook {shown} is disabled ({}); enable it first",
            row.disabled_reason.as_deref().unwrap_or("by request")
        )));
    }
    let allow_private = st.rt.webhooks_private();
    let url = Target::parse(&row.url, allow_private)
        .map_err(|e| ApiError::conflict(format!("the stored URL is no longer allowed: {e}")))?;
    let secrets: Vec<Secret> = row
        .signing_secrets(now_ms())
        .into_iter()
        .filter_map(|s| Secret::parse(s).ok())
        .collect();
    let msg = Uuid::new_v4();
    let id = MessageId::from_uuid(msg);
    let wall = SystemTime::now();
    let ts = wall
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    // Standard Webhooks' payload: the timestamp as an RFC 3339 instant (the header has the
    // seconds).
    let timestamp = jiff::Timestamp::from_second(ts)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let body = json!({
        "type": "webhook.test",
        "timestamp": timestamp,
        "data": { "webhook_id": view(&st, &row).id },
    });
    let body = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let client = target::client(allow_private).map_err(ApiError::internal)?;
    let sent = crate::webhooks::send::send(&client, &url, &id, ts, &body, &secrets).await;
    let outcome = match (sent.status, sent.timed_out) {
        (Some(status), _) => Outcome::Response {
            status,
            retry_after: sent.retry_after.as_deref(),
        },
        (None, true) => Outcome::Timeout,
        (None, false) => Outcome::Transport,
    };
    let decision = decide(&Attempt {
        number: 1,
        outcome,
        failing_since: row
            .failing_since_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
        now: SystemTime::now(),
        jitter: 0.5,
    });
    let delivered = decision == Decision::Delivered;
    let disable = match decision {
        Decision::Disable(DisableReason::Gone410) => Some("gone"),
        Decision::Disable(DisableReason::FailingFor5Days) => Some("failing"),
        _ => None,
    };
    let latency_ms = u64::try_from(sent.latency.as_millis()).unwrap_or(u64::MAX);
    st.rt
        .store
        .record_webhook_attempt(
            &WebhookAttemptRow {
                id: Uuid::new_v4(),
                tenant,
                endpoint_id: row.id,
                message_id: id.as_str().to_owned(),
                event_type: "webhook.test".into(),
                attempt: 1,
                at_ms: now_ms(),
                status: sent.status.map(i32::from),
                latency_ms: i64::try_from(latency_ms).unwrap_or(i64::MAX),
                response: sent.excerpt.clone(),
                error: sent.error.clone(),
                delivered,
            },
            disable,
        )
        .await?;
    if let Some(reason) = disable {
        // Never silently: whoever watches the tenant's feed hears of it.
        st.rt.hub.publish(LiveMessage {
            tenant,
            kind: "endpoint.disabled",
            data: json!({ "id": view(&st, &row).id, "url": row.url, "reason": reason }),
        });
    }
    Ok(Json(TestResult {
        delivered,
        message_id: id.as_str().to_owned(),
        status: sent.status,
        latency_ms,
        response: sent.excerpt,
        error: sent.error,
        disabled: disable.is_some(),
    }))
}

/// The endpoint's newest 100 delivery attempts, newest first.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries",
    tag = "webhooks",
    operation_id = "list_webhook_deliveries",
    params(("id" = i64, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The attempts", body = AttemptList),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ),
)]
async fn deliveries(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<AttemptList>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let row = find(&st, tenant, shown).await?;
    let rows = st.rt.store.webhook_attempts(tenant, row.id).await?;
    Ok(Json(AttemptList {
        deliveries: rows.into_iter().map(attempt_view).collect(),
    }))
}

/// What a replay asks for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// Messages from this instant on (RFC 3339, e.g. `2026-12-07T09:00:00Z`); at most the
    /// outbox's retention (30 days) back.
    since: String,
}

/// How many messages a replay made owed again.
#[derive(Debug, Serialize, ToSchema)]
struct Replayed {
    queued: u64,
}

/// Sends again every message since a time that the endpoint wants (its event filter),
/// delivered or not, each with its own `webhook-id` (a receiver that keeps ids drops what it
/// already has). For a receiver that was down past the retries, or lost what it took.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/replay",
    tag = "webhooks",
    operation_id = "replay_webhook",
    params(("id" = i64, Path, description = "The endpoint's id")),
    request_body = ReplayBody,
    responses(
        (status = 202, description = "The messages are owed again", body = Replayed),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 422, description = "`since` is not an instant within the retention", body = ErrorBody),
    ),
)]
async fn replay(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let since: jiff::Timestamp = body.since.parse().map_err(|_| {
        ApiError::unprocessable("since", "an RFC 3339 instant, e.g. 2026-12-07T09:00:00Z")
    })?;
    let now = now_ms();
    let since_ms = since.as_millisecond();
    let oldest = now.saturating_sub(crate::store::outbox::OUTBOX_RETENTION_MS);
    if since_ms < oldest {
        return Err(ApiError::unprocessable(
            "since",
            "messages are kept 30 days: give an instant within them",
        ));
    }
    let row = find(&st, tenant, shown).await?;
    let a = audit(
        &p,
        Some(tenant),
        "webhook.replay",
        "webhook",
        row.id,
        json!({ "since": body.since }),
    );
    let queued = st
        .rt
        .store
        .replay_webhook_since(tenant, row.id, since_ms, &row.events, now)
        .await?;
    st.rt.store.insert_audit(&a).await?;
    st.rt.webhooks.wake();
    Ok((StatusCode::ACCEPTED, Json(Replayed { queued })))
}

/// A message made owed again.
#[derive(Debug, Serialize, ToSchema)]
struct Resent {
    message_id: String,
    event_type: String,
}

/// Sends one message again (its `webhook-id` as before), whatever became of it.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/messages/{message_id}/resend",
    tag = "webhooks",
    operation_id = "resend_webhook_message",
    params(
        ("id" = i64, Path, description = "The endpoint's id"),
        ("message_id" = String, Path, description = "The message's `webhook-id`"),
    ),
    responses(
        (status = 202, description = "The message is owed again", body = Resent),
        (status = 404, description = "No such endpoint or message", body = ErrorBody),
    ),
)]
async fn resend(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath((shown, message_id)): ApiPath<(i64, String)>,
) -> Result<(StatusCode, Json<Resent>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let row = find(&st, tenant, shown).await?;
    if MessageId::parse(&message_id).is_err() {
        return Err(ApiError::not_found(format!("no message {message_id}")));
    }
    let event_type = st
        .rt
        .store
        .resend_webhook_message(tenant, row.id, &message_id, now_ms())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no message {message_id}")))?;
    let a = audit(
        &p,
        Some(tenant),
        "webhook.resend",
        "webhook",
        row.id,
        json!({ "message_id": message_id }),
    );
    st.rt.store.insert_audit(&a).await?;
    st.rt.webhooks.wake();
    Ok((
        StatusCode::ACCEPTED,
        Json(Resent {
            message_id,
            event_type,
        }),
    ))
}
