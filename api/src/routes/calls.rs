//! `/v1/calls`: history (filters, cursor paging) with decision traces and CDRs, the live view
//! of a call in progress, and assigning a waiting call to an agent.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_engine::{AgentId, Command, LegId};
use uuid::Uuid;

use super::{AppState, READERS, SUPERVISORS, audit, engine_error, engine_id};
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, Auth, require_role, require_tenant};
use crate::model::TenantId;
use crate::store::{CallFilter, CallRow};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/calls", get(list))
        .route("/v1/calls/{id}", get(read))
        .route("/v1/calls/{id}/assign", post(assign))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    queue_id: Option<i64>,
    agent_id: Option<i64>,
    caller_number: Option<String>,
    outcome: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

fn view(c: &CallRow) -> Value {
    json!({
        "id": c.id,
        "queue_id": c.queue_id,
        "queues": c.queues,
        "agent_id": c.agent_id,
        "caller_number": c.caller_number,
        "outcome": c.outcome,
        "arrived_at_ms": c.arrived_at_ms,
        "wait_ms": c.wait_ms,
        "talk_ms": c.talk_ms,
        "offers": c.offers,
        "synthetic": c.synthetic,
        "callback_leg": c.callback_leg,
    })
}

async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    if let (Some(f), Some(t)) = (q.from_ms, q.to_ms)
        && f > t
    {
        return Err(ApiError::unprocessable(
            "to_ms",
            "must not be before from_ms",
        ));
    }
    let filter = CallFilter {
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        queue_id: q.queue_id,
        agent_id: q.agent_id,
        caller_number: q.caller_number,
        outcome: q.outcome,
        cursor: q.cursor,
        limit: q.limit.unwrap_or(50),
    };
    let (rows, next) = st.rt.store.list_calls(tenant, &filter).await?;
    Ok(Json(
        json!({ "calls": rows.iter().map(view).collect::<Vec<_>>(), "next_cursor": next }),
    ))
}

async fn read(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    if let Some(row) = st.rt.store.get_call(tenant, id).await? {
        let traces = st.rt.store.traces_for_call(tenant, id).await?;
        let cdrs = st.rt.store.cdrs_for_call(tenant, id).await?;
        let mut v = view(&row);
        v["live"] = json!(false);
        v["decisions"] = json!(traces.iter().map(|t| t.trace.clone()).collect::<Vec<_>>());
        v["cdrs"] = serde_json::to_value(&cdrs).map_err(ApiError::internal)?;
        return Ok(Json(v));
    }
    // Not finished yet: the engine's view of it, if it is this tenant's.
    live_call(&st, tenant, id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no call {id}")))
}

async fn live_call(st: &AppState, tenant: TenantId, id: Uuid) -> Result<Option<Value>, ApiError> {
    let leg = LegId(id.as_u128());
    let dir = st.rt.directory.clone();
    st.rt
        .engine
        .query(move |e| {
            let c = e.call_info(e.call_by_leg(leg)?)?;
            if dir.queue_tenant(c.queue) != Some(tenant) {
                return None;
            }
            let now = e.now();
            Some(json!({
                "id": id,
                "live": true,
                "queue_id": c.queue.0,
                "queues": c.queues.iter().map(|q| q.0).collect::<Vec<_>>(),
                "caller_number": c.caller.number,
                "priority": c.priority,
                "phase": format!("{:?}", c.phase).split_whitespace().next().unwrap_or("").trim_end_matches('{').to_lowercase(),
                "waited_s": now.saturating_duration_since(c.wait_origin).as_secs_f64(),
                "offers": c.offers_made,
                "decisions": e.traces_for(c.id).filter_map(|t| serde_json::to_value(t).ok()).collect::<Vec<_>>(),
            }))
        })
        .await
        .map_err(engine_error)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Assign {
    agent_id: i64,
}

async fn assign(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Assign>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    let agent = engine_id(body.agent_id)
        .map(AgentId)
        .filter(|a| st.rt.directory.agent_tenant(*a) == Some(tenant))
        .ok_or_else(|| {
            ApiError::unprocessable(
                "agent_id",
                format!("agent {} is not one of yours", body.agent_id),
            )
        })?;
    let leg = LegId(id.as_u128());
    let dir = st.rt.directory.clone();
    let call = st
        .rt
        .engine
        .query(move |e| {
            let c = e.call_by_leg(leg)?;
            let info = e.call_info(c)?;
            (dir.queue_tenant(info.queue) == Some(tenant)).then_some(c)
        })
        .await
        .map_err(engine_error)?
        .ok_or_else(|| ApiError::not_found(format!("no call {id} in progress")))?;
    st.rt
        .engine
        .command(Command::AssignCall { call, agent })
        .await
        .map_err(engine_error)?;
    let a = audit(
        &p,
        Some(tenant),
        "call.assign",
        "call",
        id,
        json!({ "agent_id": body.agent_id }),
    );
    let _ = st.rt.store.insert_audit(&a).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "agent_id": body.agent_id })),
    ))
}
