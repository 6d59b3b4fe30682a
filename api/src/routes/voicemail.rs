//! `/v1/voicemail`: the messages callers left in the tenant's boxes (a queue's or an agent's),
//! listed newest first, read one by one, marked heard or not heard, and deleted.
//!
//! ```text
//!   GET    /v1/voicemail?queue=&agent=&heard=&since=&until=&limit=&cursor= ─► page + next_cursor
//!   GET    /v1/voicemail/{id}
//!   PATCH  /v1/voicemail/{id} {"heard": true|false} ─► voicemail_heard row + audit entry
//!   DELETE /v1/voicemail/{id} ─► as DELETE /v1/recordings/{id}: audio gone, row 'deleted'
//! ```
//!
//! A message is a recording of kind `voicemail` (`store::voicemail`): its audio is served by
//! the recording routes (`media_url`). Who may: readers of the tenant see every box, an agent
//! key only its own agent's box (any other message answers 404, as another tenant's does);
//! supervisors mark heard, and an agent key for its own box; supervisors delete. A deleted
//! message is gone: no listing shows it and reading or marking it answers 404 (deleting it
//! again answers 204, as for recordings). Caller numbers as [`NumberSight`] says, the box's
//! agent taking the place of the call's.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{AppState, NumberSight, READERS, SUPERVISORS, audit};
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, Auth, require_role, require_tenant};
use crate::ids::IdKind;
use crate::model::{Principal, Role};
use crate::openapi::ErrorBody;
use crate::store::{
    DeleteRefused, MAX_VOICEMAIL_PAGE, ObjectState, StoreError, VoicemailFilter, VoicemailRow,
};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(read, mark, remove))
}

/// Who may mark a message heard: supervisors, and an agent key for its own box.
const MARKERS: &[Role] = &[Role::Admin, Role::Supervisor, Role::Agent];

/// Whether this key may see this message of its tenant: an agent key only its own agent's
/// box (none for a key bound to no agent), every other reader every box.
fn sees(p: &Principal, m: &VoicemailRow) -> bool {
    match (p.role, p.agent_id) {
        (Role::Agent, Some(a)) => m.recording.mailbox_agent == Some(a),
        (Role::Agent, None) => false,
        _ => true,
    }
}

/// The tenant's listed message `id` as this key may see it; 404 otherwise (another tenant's,
/// a call's recording, a deleted message, another box for an agent key).
async fn visible(st: &AppState, p: &Principal, id: Uuid) -> Result<VoicemailRow, ApiError> {
    let tenant = require_tenant(p)?;
    st.rt
        .store
        .voicemail(tenant, id)
        .await?
        .filter(|m| sees(p, m))
        .ok_or_else(|| not_found(id))
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::not_found(format!("no voicemail {id}"))
}

// ---- the view ------------------------------------------------------------------------------

/// The box a message was left in: `{"queue": id}` or `{"agent": id}`.
#[derive(Debug, Serialize, ToSchema)]
struct Mailbox {
    /// The queue whose box it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<i64>,
    /// The agent whose box it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<i64>,
}

/// A voicemail message.
#[derive(Debug, Serialize, ToSchema)]
struct VoicemailView {
    /// The message's id (its recording's).
    id: Uuid,
    mailbox: Mailbox,
    /// The call (its arrival leg).
    call_id: Uuid,
    /// Masked for keys that may not see it (as on recordings).
    caller_number: String,
    /// When the caller began leaving it (unix ms, as a recording's `started_at_ms`).
    left_at_ms: i64,
    duration_ms: Option<i64>,
    /// `completed`, `damaged` (audio, but not whole) or `failed` (no audio).
    status: String,
    heard: bool,
    /// When it was marked heard (unix ms); null when not heard.
    heard_at_ms: Option<i64>,
    /// The API key that marked it heard; null when not heard.
    heard_by: Option<String>,
    /// Its audio: the recording's download (with `Range`; `GET
    /// /v1/recordings/{id}/presigned-url` gives a URL a player can use without a key).
    media_url: String,
}

fn view(st: &AppState, m: VoicemailRow, sight: NumberSight) -> VoicemailView {
    let ids = &st.rt.ids;
    let heard = m.heard();
    let r = m.recording;
    // One box per message; an agent's box when the row names both.
    let mailbox = match (r.mailbox_agent, r.mailbox_queue) {
        (Some(a), _) => Mailbox {
            queue: None,
            agent: Some(ids.agent(a)),
        },
        (None, q) => Mailbox {
            queue: q.map(|q| ids.queue(q)),
            agent: None,
        },
    };
    VoicemailView {
        id: r.id,
        mailbox,
        call_id: r.call_id,
        // The box's agent is the one whose call it is.
        caller_number: sight.show(&r.caller_number, r.mailbox_agent),
        left_at_ms: r.started_at_ms,
        duration_ms: r.duration_ms,
        status: r.status,
        heard,
        heard_at_ms: m.heard_at_ms,
        heard_by: m.heard_by,
        media_url: format!("/v1/recordings/{}/download", r.id),
    }
}

// ---- the listing ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// A queue's box (the queue's id).
    queue: Option<i64>,
    /// An agent's box (the agent's id).
    agent: Option<i64>,
    /// Only messages marked heard (`true`) or not (`false`).
    heard: Option<bool>,
    /// Left at or after (unix ms).
    since: Option<i64>,
    /// Left before (unix ms).
    until: Option<i64>,
    /// Page size (default 50, at most 500: more is cut to 500; 0 is refused).
    #[param(minimum = 1)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page of voicemail, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct VoicemailPage {
    voicemail: Vec<VoicemailView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// The tenant's voicemail, newest first (by when it was left), filtered and paged like the
/// calls listing. Every filter applies (AND). An agent key finds only its own agent's box.
#[utoipa::path(
    get,
    path = "/v1/voicemail",
    tag = "voicemail",
    operation_id = "list_voicemail",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of messages", body = VoicemailPage),
        (status = 400, description = "A parameter that does not parse, such as `heard=maybe` (named in `field`)", body = ErrorBody),
        (status = 422, description = "`until` before `since`, a `cursor` not from a previous page, or `limit=0` (named in `field`)", body = ErrorBody),
    ),
)]
async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<VoicemailPage>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let limit = super::page_limit(q.limit, 50, MAX_VOICEMAIL_PAGE)?;
    if let (Some(since), Some(until)) = (q.since, q.until)
        && since > until
    {
        return Err(ApiError::unprocessable("until", "must not be before since"));
    }
    // A number never shown matches no box (-1 is no store id).
    let decode = |kind, v| st.rt.ids.decode(kind, v).unwrap_or(-1);
    let mut filter = VoicemailFilter {
        queue: q.queue.map(|v| decode(IdKind::Queue, v)),
        agent: q.agent.map(|v| decode(IdKind::Agent, v)),
        heard: q.heard,
        since_ms: q.since,
        until_ms: q.until,
        cursor: q.cursor,
        // `page_limit` keeps it in 1..=500.
        limit: u32::try_from(limit).unwrap_or(50),
    };
    let empty = Json(VoicemailPage {
        voicemail: Vec::new(),
        next_cursor: None,
    });
    if p.role == Role::Agent {
        // An agent key's listing is its own box: asking for another box finds nothing, and a
        // key bound to no agent has none.
        match p.agent_id {
            Some(own) if filter.agent.is_none_or(|a| a == own) => filter.agent = Some(own),
            _ => return Ok(empty),
        }
    }
    let (rows, next) = st
        .rt
        .store
        .list_voicemail(tenant, &filter)
        .await
        .map_err(|e| match e {
            StoreError::Invalid {
                field: "cursor",
                message,
            } => ApiError::unprocessable("cursor", message),
            other => other.into(),
        })?;
    let sight = NumberSight::of(&p);
    Ok(Json(VoicemailPage {
        voicemail: rows.into_iter().map(|m| view(&st, m, sight)).collect(),
        next_cursor: next,
    }))
}

// ---- one message ---------------------------------------------------------------------------

/// One message.
#[utoipa::path(
    get,
    path = "/v1/voicemail/{id}",
    tag = "voicemail",
    operation_id = "get_voicemail",
    params(("id" = Uuid, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The message", body = VoicemailView),
        (status = 404, description = "No such message of the tenant's (a call's recording, a deleted message, or, for an agent key, another box's)", body = ErrorBody),
    ),
)]
async fn read(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<VoicemailView>, ApiError> {
    require_role(&p, READERS)?;
    let m = visible(&st, &p, id).await?;
    Ok(Json(view(&st, m, NumberSight::of(&p))))
}

/// Whether the message was heard.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct HeardBody {
    heard: bool,
}

/// Marks a message heard (`true`; one already heard keeps when and by whom it was first) or
/// not heard (`false`). Supervisors, and an agent key for its own box; audited.
#[utoipa::path(
    patch,
    path = "/v1/voicemail/{id}",
    tag = "voicemail",
    operation_id = "mark_voicemail",
    params(("id" = Uuid, Path, description = "The message's id")),
    request_body = HeardBody,
    responses(
        (status = 200, description = "The message as it is now", body = VoicemailView),
        (status = 403, description = "A read-only key, or an agent key bound to no agent", body = ErrorBody),
        (status = 404, description = "No such message of the tenant's (or, for an agent key, another box's)", body = ErrorBody),
        (status = 422, description = "`heard` missing or not a boolean, or another field (named in `field`)", body = ErrorBody),
    ),
)]
async fn mark(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<HeardBody>,
) -> Result<Json<VoicemailView>, ApiError> {
    require_role(&p, MARKERS)?;
    crate::http::acting_agent(&p)?;
    let tenant = require_tenant(&p)?;
    visible(&st, &p, id).await?;
    let a = audit(
        &p,
        Some(tenant),
        "voicemail.heard",
        "voicemail",
        id,
        json!({ "heard": body.heard }),
    );
    let by = p.key_id.to_string();
    let found = st
        .rt
        .store
        .set_voicemail_heard(
            tenant,
            id,
            body.heard,
            crate::store::now_ms(),
            Some(&by),
            &a,
        )
        .await?;
    if !found {
        return Err(not_found(id));
    }
    let m = visible(&st, &p, id).await?;
    Ok(Json(view(&st, m, NumberSight::of(&p))))
}

/// Deletes a message: its audio goes (object, spool file, transcript) exactly as `DELETE
/// /v1/recordings/{id}` does, and the message leaves every listing. Supervisors; audited;
/// idempotent (deleting a deleted message is 204 again); 409 while its recording is on legal
/// hold.
#[utoipa::path(
    delete,
    path = "/v1/voicemail/{id}",
    tag = "voicemail",
    operation_id = "delete_voicemail",
    params(("id" = Uuid, Path, description = "The message's id")),
    responses(
        (status = 204, description = "Deleted (or already)"),
        (status = 403, description = "An agent or read-only key", body = ErrorBody),
        (status = 404, description = "No such message of the tenant's, or it never had audio", body = ErrorBody),
        (status = 409, description = "On legal hold", body = ErrorBody),
    ),
)]
async fn remove(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    // A call's recording is not a message: its id is unknown here.
    if st.rt.store.voicemail_any_state(tenant, id).await?.is_none() {
        return Err(not_found(id));
    }
    let entry = audit(
        &p,
        Some(tenant),
        "voicemail.delete",
        "voicemail",
        id,
        json!({ "via": "api" }),
    );
    let row = match st.rt.store.begin_delete(tenant, id, &entry).await? {
        Ok(row) => row,
        Err(DeleteRefused::NotFound) => {
            return Err(ApiError::not_found(format!("voicemail {id} has no audio")));
        }
        Err(DeleteRefused::LegalHold) => {
            return Err(ApiError::conflict(format!(
                "voicemail {id} is on legal hold"
            )));
        }
    };
    if row.state == ObjectState::Deleting {
        // The row says deleting: a failure here is finished by the next start.
        st.rt
            .objects
            .finish_delete(&row)
            .await
            .map_err(|e| ApiError::unavailable(format!("deleting the message: {e}")))?;
    }
    Ok(StatusCode::NO_CONTENT)
}
