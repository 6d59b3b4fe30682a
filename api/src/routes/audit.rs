//! `/v1/audit`: the tenant's audit log, for its admins. Every configuration change, key
//! issue and revocation, supervisor action and import writes an entry (with the key that made
//! it) in the same transaction as the change; this route reads them back, newest first,
//! filtered and paged.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ADMINS, AppState, page_limit};
use crate::http::{ApiError, ApiQuery, Auth, require_role, require_tenant};
use crate::ids::{IdCodec, IdKind};
use crate::openapi::ErrorBody;
use crate::store::{AuditFilter, AuditRow, MAX_AUDIT};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// Longest text filter: actions, kinds and ids are short names, and a bound keeps a query
/// parameter from becoming a megabyte of SQL argument.
const MAX_FILTER_CHARS: usize = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Entries at or after (Unix milliseconds).
    from_ms: Option<i64>,
    /// Entries before (Unix milliseconds).
    to_ms: Option<i64>,
    /// Entries made with this API key (its `id` in `/v1/api-keys`).
    key_id: Option<Uuid>,
    /// What was done, exactly as listed (`queue.create`, `api_key.revoke`, `contacts.import`).
    #[param(max_length = 200)]
    action: Option<String>,
    /// The kind of object changed (`queue`, `agent`, `api_key`, `campaign`, ...).
    #[param(max_length = 200)]
    object_kind: Option<String>,
    /// The object's id (with `object_kind`: one object's history).
    #[param(max_length = 200)]
    object_id: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (default 100, at most 1000: more is cut to 1000; 0 is refused).
    #[param(minimum = 1)]
    limit: Option<u32>,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
struct AuditView {
    id: i64,
    /// When it was made (Unix milliseconds).
    at_ms: i64,
    /// The key that made the change; `null` for the server's own (start-up, the demo).
    key_id: Option<Uuid>,
    action: String,
    object_kind: String,
    object_id: String,
    /// What changed, as the route recorded it (null when it recorded nothing, as a removal).
    #[schema(value_type = Option<Object>)]
    detail: Value,
}

/// The kind of id an entry's `object_kind` names, for those the API shows through
/// `crate::ids` (the others are UUIDs or empty, shown as stored).
fn numbered(object_kind: &str) -> Option<IdKind> {
    match object_kind {
        "agent" => Some(IdKind::Agent),
        "queue" => Some(IdKind::Queue),
        "skill" => Some(IdKind::Skill),
        "campaign" => Some(IdKind::Campaign),
        _ => None,
    }
}

impl AuditView {
    fn of(ids: &IdCodec, r: AuditRow) -> AuditView {
        let object_id = match (numbered(&r.object_kind), r.object_id.parse::<i64>()) {
            (Some(kind), Ok(id)) => ids.encode(kind, id).to_string(),
            _ => r.object_id,
        };
        AuditView {
            id: ids.encode(IdKind::Audit, r.id),
            at_ms: r.at_ms,
            key_id: r.key_id,
            action: r.action,
            object_kind: r.object_kind,
            object_id,
            // Routes record objects or nothing; anything else is shown as `{"value": ...}` so
            // the answer keeps to its schema.
            detail: match r.detail {
                d @ (Value::Object(_) | Value::Null) => d,
                other => serde_json::json!({ "value": other }),
            },
        }
    }
}

/// A page of audit entries, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct AuditPage {
    entries: Vec<AuditView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

fn text_filter(field: &'static str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(v) if v.chars().count() > MAX_FILTER_CHARS => Err(ApiError::unprocessable(
            field,
            format!("at most {MAX_FILTER_CHARS} characters"),
        )),
        // PostgreSQL refuses text with NUL (a 500); nothing stored has control characters.
        Some(v) if v.chars().any(char::is_control) => Err(ApiError::unprocessable(
            field,
            "must not contain control characters",
        )),
        other => Ok(other),
    }
}

/// The tenant's audit log, newest first, filtered and paged (admin).
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "audit",
    operation_id = "list_audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit entries", body = AuditPage),
        (status = 400, description = "A parameter that does not parse (named in `field`)", body = ErrorBody),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 422, description = "`to_ms` before `from_ms`, `limit=0`, a `cursor` not from a previous page, or a text filter over 200 characters or with control characters", body = ErrorBody),
    ),
)]
async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    if let (Some(f), Some(t)) = (q.from_ms, q.to_ms)
        && f > t
    {
        return Err(ApiError::unprocessable(
            "to_ms",
            "must not be before from_ms",
        ));
    }
    let ids = &st.rt.ids;
    let before_id = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .and_then(|v| ids.decode(IdKind::Audit, v))
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    ApiError::unprocessable("cursor", "not a cursor from a previous page")
                })?,
        ),
    };
    let object_kind = text_filter("object_kind", q.object_kind)?;
    let object_id = text_filter("object_id", q.object_id)?.map(|shown| {
        // An id as the API showed it, read back for the store; one that was never shown
        // matches nothing.
        match (
            object_kind.as_deref().and_then(numbered),
            shown.parse::<i64>(),
        ) {
            (Some(kind), Ok(v)) => ids
                .decode(kind, v)
                .map_or_else(|| "-".to_owned(), |id| id.to_string()),
            _ => shown,
        }
    });
    let limit = page_limit(q.limit, 100, MAX_AUDIT)?;
    let filter = AuditFilter {
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        key_id: q.key_id,
        action: text_filter("action", q.action)?,
        object_kind,
        object_id,
        before_id,
        // `page_limit` keeps it in 1..=MAX_AUDIT.
        limit: u32::try_from(limit).unwrap_or(MAX_AUDIT),
    };
    let rows = st.rt.store.search_audit(tenant, &filter).await?;
    let next_cursor = (rows.len() as i64 == limit)
        .then(|| {
            rows.last()
                .map(|r| ids.encode(IdKind::Audit, r.id).to_string())
        })
        .flatten();
    Ok(Json(AuditPage {
        entries: rows.into_iter().map(|r| AuditView::of(ids, r)).collect(),
        next_cursor,
    }))
}
