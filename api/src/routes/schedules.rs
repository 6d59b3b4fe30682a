//! `/v1/schedules`: business hours for inbound routing (the dialplan crate's `Schedule`: an
//! IANA zone, weekly ranges, dated overrides, recurring holidays, a manual switch). Each
//! document is validated whole (its shape by serde, its meaning by `Schedule::compile`), and
//! a refusal names the field (`config.weekly.monday[1].end`). `GET .../status?at=` says open or
//! closed at an instant, why, and when that changes next.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_dialplan::DialplanError;
use switchyard_dialplan::schedule::Schedule;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ADMINS, AppState, READERS, audit};
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, Auth, require_role, require_tenant};
use crate::ids::IdKind;
use crate::openapi::ErrorBody;
use crate::spec::check_name;
use crate::store::ScheduleRow;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, remove))
        .routes(routes!(status))
}

/// Most schedules a tenant keeps.
const MAX_SCHEDULES: usize = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    /// 1-100 characters, unique within the tenant.
    #[schema(min_length = 1)]
    name: String,
    /// The schedule: `time_zone` (IANA), `weekly` (per day a list of `{start, end}` in
    /// `HH:MM`; an end at or before the start runs past midnight; `24:00` ends the day),
    /// `overrides` (`{name?, date, through?, hours: "closed" | {open: [ranges]}}`),
    /// `holidays` (`{name, month, day}` or `{name, month, nth, weekday}`, `observed`,
    /// `first_year`, `last_year`), `force` (`none`, `open`, `closed`). README, "Inbound
    /// routing".
    #[schema(value_type = Object)]
    config: Schedule,
}

#[derive(Debug, Serialize, ToSchema)]
struct ScheduleView {
    id: i64,
    name: String,
    #[schema(value_type = Object)]
    config: Value,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl ScheduleView {
    fn of(st: &AppState, r: ScheduleRow) -> ScheduleView {
        ScheduleView {
            id: st.rt.ids.encode(IdKind::Schedule, r.id),
            name: r.name,
            config: r.config,
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct ScheduleList {
    schedules: Vec<ScheduleView>,
}

/// Checks a document's meaning and gives what is stored: the document as given.
fn checked(name: &str, config: &Schedule) -> Result<Value, ApiError> {
    check_name("name", name).map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    config.compile().map_err(|e| match e {
        DialplanError::Invalid { path, reason } => {
            ApiError::unprocessable(format!("config.{path}"), reason)
        }
        other => ApiError::unprocessable("config", other.to_string()),
    })?;
    serde_json::to_value(config).map_err(|e| ApiError::internal(e.to_string()))
}

/// The tenant's schedules.
#[utoipa::path(
    get,
    path = "/v1/schedules",
    tag = "routing",
    operation_id = "list_schedules",
    responses((status = 200, description = "The tenant's schedules", body = ScheduleList)),
)]
async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<ScheduleList>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let rows = st.rt.store.list_schedules(tenant).await?;
    Ok(Json(ScheduleList {
        schedules: rows.into_iter().map(|r| ScheduleView::of(&st, r)).collect(),
    }))
}

/// Adds a schedule (admin, audited).
#[utoipa::path(
    post,
    path = "/v1/schedules",
    tag = "routing",
    operation_id = "create_schedule",
    request_body = ScheduleBody,
    responses(
        (status = 201, description = "Created", body = ScheduleView),
        (status = 409, description = "A schedule of that name exists", body = ErrorBody),
        (status = 422, description = "The document refused, with the field's path", body = ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let config = checked(&body.name, &body.config)?;
    if st.rt.store.list_schedules(tenant).await?.len() >= MAX_SCHEDULES {
        return Err(ApiError::unprocessable(
            "name",
            format!("a tenant keeps at most {MAX_SCHEDULES} schedules"),
        ));
    }
    let a = audit(
        &p,
        Some(tenant),
        "schedule.create",
        "schedule",
        "",
        json!({ "name": body.name, "config": config }),
    );
    let row = st
        .rt
        .store
        .create_schedule(tenant, &body.name, config, &a)
        .await?;
    Ok((StatusCode::CREATED, Json(ScheduleView::of(&st, row))))
}

/// One schedule.
#[utoipa::path(
    get,
    path = "/v1/schedules/{id}",
    tag = "routing",
    operation_id = "get_schedule",
    params(("id" = i64, Path, description = "The schedule's id")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleView),
        (status = 404, description = "No such schedule", body = ErrorBody),
    ),
)]
async fn get_one(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<ScheduleView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let row = find(&st, tenant, shown).await?;
    Ok(Json(ScheduleView::of(&st, row)))
}

async fn find(
    st: &AppState,
    tenant: crate::model::TenantId,
    shown: i64,
) -> Result<ScheduleRow, ApiError> {
    let id = super::stored_id(st, IdKind::Schedule, shown)?;
    st.rt
        .store
        .get_schedule(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no schedule {shown}")))
}

/// Replaces a schedule's name and document (admin, audited); it applies from the next
/// question asked of it.
#[utoipa::path(
    put,
    path = "/v1/schedules/{id}",
    tag = "routing",
    operation_id = "replace_schedule",
    params(("id" = i64, Path, description = "The schedule's id")),
    request_body = ScheduleBody,
    responses(
        (status = 200, description = "The schedule as it now is", body = ScheduleView),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 409, description = "Another schedule has that name", body = ErrorBody),
        (status = 422, description = "The document refused, with the field's path", body = ErrorBody),
    ),
)]
async fn replace(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> Result<Json<ScheduleView>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Schedule, shown)?;
    let config = checked(&body.name, &body.config)?;
    let a = audit(
        &p,
        Some(tenant),
        "schedule.update",
        "schedule",
        id,
        json!({ "name": body.name, "config": config }),
    );
    let row = st
        .rt
        .store
        .update_schedule(tenant, id, Some(&body.name), Some(config), &a)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no schedule {shown}")))?;
    Ok(Json(ScheduleView::of(&st, row)))
}

/// Removes a schedule (admin, audited); 409 naming the flows that use it.
#[utoipa::path(
    delete,
    path = "/v1/schedules/{id}",
    tag = "routing",
    operation_id = "delete_schedule",
    params(("id" = i64, Path, description = "The schedule's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 409, description = "A flow uses it", body = ErrorBody),
    ),
)]
async fn remove(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Schedule, shown)?;
    let _one_at_a_time = st.rt.config_writes.lock().await;
    let me = shown.to_string();
    let users =
        super::flows::flows_using(&st, tenant, |f| super::flows::flow_uses_schedule(f, &me))
            .await?;
    super::flows::not_in_use("schedule", users)?;
    let a = audit(
        &p,
        Some(tenant),
        "schedule.delete",
        "schedule",
        id,
        Value::Null,
    );
    if st.rt.store.delete_schedule(tenant, id, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no schedule {shown}")))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StatusQuery {
    /// The instant asked about, RFC 3339 (`2026-11-26T15:00:00Z`, or with an offset);
    /// absent: now.
    at: Option<String>,
}

/// Open or closed, and why.
#[derive(Debug, Serialize, ToSchema)]
struct StatusView {
    schedule_id: i64,
    /// The instant asked about (UTC).
    at: String,
    open: bool,
    /// What decided: `{kind: "forced"}`, `{kind: "weekly", day, range, date}`,
    /// `{kind: "override", index, name, date, range}`, `{kind: "holiday", index, name, date}`,
    /// `{kind: "outside_hours"}`.
    #[schema(value_type = Object)]
    reason: Value,
    /// The instant as a wall-clock time in the schedule's zone.
    local: String,
    /// When `open` next flips (within 400 days), UTC; null when it does not.
    next_change: Option<String>,
}

/// Whether the schedule is open at `at` (default now), why, and when that next changes.
#[utoipa::path(
    get,
    path = "/v1/schedules/{id}/status",
    tag = "routing",
    operation_id = "schedule_status",
    params(("id" = i64, Path, description = "The schedule's id"), StatusQuery),
    responses(
        (status = 200, description = "Open or closed, and why", body = StatusView),
        (status = 404, description = "No such schedule", body = ErrorBody),
        (status = 422, description = "`at` is not an RFC 3339 instant", body = ErrorBody),
    ),
)]
async fn status(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiQuery(q): ApiQuery<StatusQuery>,
) -> Result<Json<StatusView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let at = match q.at.as_deref() {
        None => jiff::Timestamp::now(),
        Some(text) => text.parse::<jiff::Timestamp>().map_err(|_| {
            ApiError::unprocessable(
                "at",
                "must be an RFC 3339 instant, e.g. 2026-11-26T15:00:00Z",
            )
        })?,
    };
    let row = find(&st, tenant, shown).await?;
    // Stored documents were validated on the way in; one that no longer reads (a later
    // version's stricter rules) is the server's problem, not the caller's.
    let schedule: Schedule = serde_json::from_value(row.config.clone())
        .map_err(|e| ApiError::internal(format!("schedule {shown} does not read: {e}")))?;
    let compiled = schedule
        .compile()
        .map_err(|e| ApiError::internal(format!("schedule {shown} does not compile: {e}")))?;
    let s = compiled.status(at);
    let reason = serde_json::to_value(&s.reason).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(StatusView {
        schedule_id: shown,
        at: at.to_string(),
        open: s.open,
        reason,
        local: s.local.to_string(),
        next_change: s.next_change.map(|t| t.to_string()),
    }))
}
