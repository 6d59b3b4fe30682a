//! `/v1/queues`: CRUD, members (tiers), live statistics, waiting calls, pause/resume.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_engine::{AgentId, Command, Membership, QueueId};

use super::{ADMINS, AppState, READERS, SUPERVISORS, audit, engine_error, engine_id, merge_patch};
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, Auth, require_role, require_tenant};
use crate::model::TenantId;
use crate::runtime::route_name;
use crate::spec::{QueueSpec, check_name};
use crate::store::QueueRow;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/queues", get(list).post(create))
        .route("/v1/queues/{id}", get(read).patch(update).delete(remove))
        .route(
            "/v1/queues/{id}/members",
            get(members).post(add_member).delete(remove_member),
        )
        .route("/v1/queues/{id}/stats", get(stats))
        .route("/v1/queues/{id}/calls", get(waiting))
        .route("/v1/queues/{id}/pause", post(pause))
        .route("/v1/queues/{id}/resume", post(resume))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateQueue {
    name: String,
    #[serde(default)]
    config: QueueSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchQueue {
    name: Option<String>,
    /// A JSON merge patch over the queue's config.
    config: Option<Value>,
}

fn view(row: &QueueRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "config": row.config,
        "created_at_ms": row.created_at_ms,
        "updated_at_ms": row.updated_at_ms,
    })
}

/// Validates a spec for the tenant: every field, and overflow targets that are its queues.
async fn check_spec(
    st: &AppState,
    tenant: TenantId,
    spec: &QueueSpec,
    name: &str,
) -> Result<(), ApiError> {
    check_name("name", name).map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    spec.to_engine(1, name)?;
    for target in spec.exit_targets() {
        if st
            .rt
            .store
            .get_queue(tenant, i64::from(target))
            .await?
            .is_none()
        {
            return Err(ApiError::unprocessable(
                "config.on_timeout",
                format!("queue {target} is not one of yours"),
            ));
        }
    }
    Ok(())
}

/// Pushes a stored queue into the running engine (and its numbers into the routes).
async fn apply(st: &AppState, tenant: TenantId, row: &QueueRow) -> Result<(), ApiError> {
    let spec: QueueSpec = serde_json::from_value(row.config.clone()).map_err(ApiError::internal)?;
    let tenant_name = st
        .rt
        .store
        .get_tenant(tenant)
        .await?
        .map(|t| t.name)
        .unwrap_or_default();
    let cfg = spec.to_engine(row.id, &route_name(&tenant_name, &row.name))?;
    let id = cfg.id;
    st.rt
        .engine
        .command(Command::UpsertQueue(Box::new(cfg)))
        .await
        .map_err(engine_error)?;
    st.rt.directory.set_queue(id, tenant);
    st.rt.refresh_routes().await.map_err(ApiError::internal)?;
    Ok(())
}

async fn owned(st: &AppState, tenant: TenantId, id: i64) -> Result<QueueRow, ApiError> {
    st.rt
        .store
        .get_queue(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no queue {id}")))
}

async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let rows = st.rt.store.list_queues(tenant).await?;
    Ok(Json(
        json!({ "queues": rows.iter().map(view).collect::<Vec<_>>() }),
    ))
}

async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateQueue>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    check_spec(&st, tenant, &body.config, &body.name).await?;
    let config = serde_json::to_value(&body.config).map_err(ApiError::internal)?;
    let a = audit(
        &p,
        Some(tenant),
        "queue.create",
        "queue",
        "",
        json!({ "name": body.name }),
    );
    let row = st
        .rt
        .store
        .create_queue(tenant, &body.name, config, &a)
        .await?;
    if let Err(e) = apply(&st, tenant, &row).await {
        // The engine refused what validation let through: take the row back out.
        let undo = audit(
            &p,
            Some(tenant),
            "queue.delete",
            "queue",
            row.id,
            json!({ "reason": "engine refused" }),
        );
        let _ = st.rt.store.delete_queue(tenant, row.id, &undo).await;
        return Err(e);
    }
    Ok((StatusCode::CREATED, Json(view(&row))))
}

async fn read(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    Ok(Json(view(&owned(&st, tenant, id).await?)))
}

async fn update(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<PatchQueue>,
) -> Result<Json<Value>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let row = owned(&st, tenant, id).await?;
    let mut config = row.config.clone();
    if let Some(patch) = &body.config {
        if !patch.is_object() {
            return Err(ApiError::unprocessable(
                "config",
                "a JSON object (merge patch)",
            ));
        }
        merge_patch(&mut config, patch);
    }
    let spec: QueueSpec = serde_json::from_value(config.clone())
        .map_err(|e| ApiError::unprocessable("config", e.to_string()))?;
    let name = body.name.clone().unwrap_or_else(|| row.name.clone());
    check_spec(&st, tenant, &spec, &name).await?;
    if spec
        .exit_targets()
        .contains(&u32::try_from(id).unwrap_or(0))
    {
        return Err(ApiError::unprocessable(
            "config.on_timeout",
            "a queue cannot overflow into itself",
        ));
    }
    let config = serde_json::to_value(&spec).map_err(ApiError::internal)?;
    let a = audit(
        &p,
        Some(tenant),
        "queue.update",
        "queue",
        id,
        json!({ "name": body.name, "config": body.config }),
    );
    let row = st
        .rt
        .store
        .update_queue(tenant, id, body.name.as_deref(), Some(config), &a)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no queue {id}")))?;
    apply(&st, tenant, &row).await?;
    Ok(Json(view(&row)))
}

async fn remove(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    owned(&st, tenant, id).await?;
    let q = QueueId(engine_id(id).ok_or_else(|| ApiError::not_found(format!("no queue {id}")))?);
    // The engine may refuse (callers still waiting): ask it first, then forget the row.
    st.rt
        .engine
        .command(Command::RemoveQueue(q))
        .await
        .map_err(engine_error)?;
    let a = audit(&p, Some(tenant), "queue.delete", "queue", id, Value::Null);
    st.rt.store.delete_queue(tenant, id, &a).await?;
    st.rt.directory.remove_queue(q);
    st.rt.refresh_routes().await.map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn members(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    owned(&st, tenant, id).await?;
    let rows = st.rt.store.list_members(tenant, id).await?;
    let members: Vec<Value> = rows
        .iter()
        .map(|m| json!({ "agent_id": m.agent_id, "level": m.level, "position": m.position, "weight": m.weight }))
        .collect();
    Ok(Json(json!({ "members": members })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMember {
    agent_id: i64,
    #[serde(default = "one")]
    level: i32,
    #[serde(default = "one")]
    position: i32,
    #[serde(default = "one")]
    weight: i32,
}

fn one() -> i32 {
    1
}

/// Re-sends an agent's whole membership list to the engine after a change.
pub(super) async fn sync_memberships(st: &AppState, agent_id: i64) -> Result<(), ApiError> {
    let Some(a) = engine_id(agent_id) else {
        return Ok(());
    };
    let memberships: Vec<Membership> = st
        .rt
        .store
        .all_members()
        .await?
        .into_iter()
        .filter(|m| m.agent_id == agent_id)
        .filter_map(|m| {
            Some(Membership {
                queue: QueueId(engine_id(m.queue_id)?),
                level: u32::try_from(m.level).ok()?,
                position: u32::try_from(m.position).ok()?,
                weight: u32::try_from(m.weight).ok()?,
            })
        })
        .collect();
    st.rt
        .engine
        .command(Command::SetMemberships {
            agent: AgentId(a),
            memberships,
        })
        .await
        .map_err(engine_error)
}

async fn add_member(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<AddMember>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    owned(&st, tenant, id).await?;
    let a = audit(
        &p,
        Some(tenant),
        "member.set",
        "queue",
        id,
        json!({ "agent_id": body.agent_id, "level": body.level, "position": body.position, "weight": body.weight }),
    );
    let ok = st
        .rt
        .store
        .set_member(
            tenant,
            id,
            body.agent_id,
            body.level,
            body.position,
            body.weight,
            &a,
        )
        .await?;
    if !ok {
        return Err(ApiError::unprocessable(
            "agent_id",
            format!("agent {} is not one of yours", body.agent_id),
        ));
    }
    sync_memberships(&st, body.agent_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "agent_id": body.agent_id, "level": body.level, "position": body.position, "weight": body.weight }),
        ),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberQuery {
    agent_id: i64,
}

async fn remove_member(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<MemberQuery>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    owned(&st, tenant, id).await?;
    let a = audit(
        &p,
        Some(tenant),
        "member.remove",
        "queue",
        id,
        json!({ "agent_id": q.agent_id }),
    );
    if !st
        .rt
        .store
        .remove_member(tenant, id, q.agent_id, &a)
        .await?
    {
        return Err(ApiError::not_found(format!(
            "agent {} is not a member of queue {id}",
            q.agent_id
        )));
    }
    sync_memberships(&st, q.agent_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn stats(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let q = live_queue(&st, tenant, id)?;
    let snap = st
        .rt
        .engine
        .query(move |e| serde_json::to_value(e.stats().queue_snapshot(e.now(), q)))
        .await
        .map_err(engine_error)?
        .map_err(ApiError::internal)?;
    Ok(Json(snap))
}

/// A queue the engine runs for this tenant (the directory is the engine's view: cheap, and
/// another tenant's queue is simply not there).
fn live_queue(st: &AppState, tenant: TenantId, id: i64) -> Result<QueueId, ApiError> {
    engine_id(id)
        .map(QueueId)
        .filter(|q| st.rt.directory.queue_tenant(*q) == Some(tenant))
        .ok_or_else(|| ApiError::not_found(format!("no queue {id}")))
}

async fn waiting(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let q = live_queue(&st, tenant, id)?;
    let calls = st
        .rt
        .engine
        .query(move |e| {
            let now = e.now();
            e.waiting_calls(q)
                .into_iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let call = e.call_info(c)?;
                    Some(json!({
                        "id": uuid::Uuid::from_u128(call.origin_leg.0),
                        "position": i + 1,
                        "caller_number": call.caller.number,
                        "priority": call.priority,
                        "waited_s": now.saturating_duration_since(call.wait_origin).as_secs_f64(),
                        "in_queue_s": now.saturating_duration_since(call.queue_entered).as_secs_f64(),
                        "callback": call.callback,
                    }))
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(engine_error)?;
    Ok(Json(json!({ "calls": calls })))
}

async fn set_paused(
    st: AppState,
    p: crate::model::Principal,
    id: i64,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    let row = owned(&st, tenant, id).await?;
    let q = live_queue(&st, tenant, id)?;
    let cmd = if paused {
        Command::PauseQueue(q)
    } else {
        Command::ResumeQueue(q)
    };
    st.rt.engine.command(cmd).await.map_err(engine_error)?;
    // Kept in the config so a restart does not silently resume a paused queue.
    let mut config = row.config.clone();
    merge_patch(&mut config, &json!({ "paused": paused }));
    let action = if paused {
        "queue.pause"
    } else {
        "queue.resume"
    };
    let a = audit(&p, Some(tenant), action, "queue", id, Value::Null);
    st.rt
        .store
        .update_queue(tenant, id, None, Some(config), &a)
        .await?;
    Ok(Json(json!({ "id": id, "paused": paused })))
}

async fn pause(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    set_paused(st, p, id, true).await
}

async fn resume(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    set_paused(st, p, id, false).await
}
