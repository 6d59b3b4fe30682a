//! `/v1/agents`: CRUD, state (presence), skills, and supervisor monitoring of an agent's call.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_engine::{AgentId, Command, LegId, MonitorMode, Presence};

use super::{ADMINS, AppState, READERS, SUPERVISORS, audit, engine_error, engine_id, merge_patch};
use crate::http::{ApiError, ApiJson, ApiPath, Auth, require_role, require_tenant};
use crate::model::{Role, TenantId};
use crate::spec::{AgentSkill, AgentSpec, check_name};
use crate::store::AgentRow;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/agents", get(list).post(create))
        .route("/v1/agents/{id}", get(read).patch(update).delete(remove))
        .route("/v1/agents/{id}/state", get(state).put(set_state))
        .route("/v1/agents/{id}/skills", get(skills).put(set_skills))
        .route("/v1/agents/{id}/monitor", post(monitor))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAgent {
    name: String,
    #[serde(default)]
    config: AgentSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchAgent {
    name: Option<String>,
    config: Option<Value>,
}

fn view(row: &AgentRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "config": row.config,
        "presence": row.presence,
        "created_at_ms": row.created_at_ms,
        "updated_at_ms": row.updated_at_ms,
    })
}

async fn owned(st: &AppState, tenant: TenantId, id: i64) -> Result<AgentRow, ApiError> {
    st.rt
        .store
        .get_agent(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no agent {id}")))
}

fn live_agent(st: &AppState, tenant: TenantId, id: i64) -> Result<AgentId, ApiError> {
    engine_id(id)
        .map(AgentId)
        .filter(|a| st.rt.directory.agent_tenant(*a) == Some(tenant))
        .ok_or_else(|| ApiError::not_found(format!("no agent {id}")))
}

async fn apply(st: &AppState, tenant: TenantId, row: &AgentRow) -> Result<(), ApiError> {
    let spec: AgentSpec = serde_json::from_value(row.config.clone()).map_err(ApiError::internal)?;
    let cfg = spec.to_engine(row.id, &row.name)?;
    let id = cfg.id;
    st.rt
        .engine
        .command(Command::UpsertAgent(Box::new(cfg)))
        .await
        .map_err(engine_error)?;
    st.rt.directory.set_agent(id, tenant);
    Ok(())
}

async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let rows = st.rt.store.list_agents(tenant).await?;
    Ok(Json(
        json!({ "agents": rows.iter().map(view).collect::<Vec<_>>() }),
    ))
}

async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateAgent>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    check_name("name", &body.name).map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    body.config.to_engine(1, &body.name)?;
    let config = serde_json::to_value(&body.config).map_err(ApiError::internal)?;
    let a = audit(
        &p,
        Some(tenant),
        "agent.create",
        "agent",
        "",
        json!({ "name": body.name }),
    );
    let row = st
        .rt
        .store
        .create_agent(tenant, &body.name, config, &a)
        .await?;
    if let Err(e) = apply(&st, tenant, &row).await {
        let undo = audit(
            &p,
            Some(tenant),
            "agent.delete",
            "agent",
            row.id,
            json!({ "reason": "engine refused" }),
        );
        let _ = st.rt.store.delete_agent(tenant, row.id, &undo).await;
        return Err(e);
    }
    if let Some(id) = engine_id(row.id) {
        // New agents start logged out (the engine says nothing until they change).
        st.rt
            .live
            .seed_agent(tenant, AgentId(id), json!("logged-out"), None);
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
    ApiJson(body): ApiJson<PatchAgent>,
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
    let spec: AgentSpec = serde_json::from_value(config)
        .map_err(|e| ApiError::unprocessable("config", e.to_string()))?;
    let name = body.name.clone().unwrap_or_else(|| row.name.clone());
    check_name("name", &name).map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    spec.to_engine(id, &name)?;
    let config = serde_json::to_value(&spec).map_err(ApiError::internal)?;
    let a = audit(
        &p,
        Some(tenant),
        "agent.update",
        "agent",
        id,
        json!({ "name": body.name, "config": body.config }),
    );
    let row = st
        .rt
        .store
        .update_agent(tenant, id, body.name.as_deref(), Some(config), &a)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no agent {id}")))?;
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
    let agent = live_agent(&st, tenant, id)?;
    // The engine refuses while the agent has a call.
    st.rt
        .engine
        .command(Command::RemoveAgent(agent))
        .await
        .map_err(engine_error)?;
    let a = audit(&p, Some(tenant), "agent.delete", "agent", id, Value::Null);
    st.rt.store.delete_agent(tenant, id, &a).await?;
    st.rt.directory.remove_agent(agent);
    st.rt.live.forget_agent(tenant, agent);
    Ok(StatusCode::NO_CONTENT)
}

async fn state(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let agent = live_agent(&st, tenant, id)?;
    let view = st
        .rt
        .engine
        .query(move |e| {
            let a = e.agent_info(agent)?;
            Some(json!({
                "id": id,
                "state": a.state(),
                "reason": a.break_reason(),
                "snapshot": serde_json::to_value(e.stats().agent_snapshot(e.now(), agent)).ok(),
            }))
        })
        .await
        .map_err(engine_error)?
        .ok_or_else(|| ApiError::not_found(format!("no agent {id}")))?;
    Ok(Json(view))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", tag = "state")]
enum SetState {
    LoggedOut,
    Available,
    OnBreak {
        #[serde(default)]
        reason: String,
    },
}

async fn set_state(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<SetState>,
) -> Result<Json<Value>, ApiError> {
    // Agents set their own state from their desktops; supervisors anyone's.
    require_role(&p, &[Role::Admin, Role::Supervisor, Role::Agent])?;
    let tenant = require_tenant(&p)?;
    let agent = live_agent(&st, tenant, id)?;
    let presence = match body {
        SetState::LoggedOut => Presence::LoggedOut,
        SetState::Available => Presence::Available,
        SetState::OnBreak { reason } => {
            if reason.len() > 100 || reason.chars().any(char::is_control) {
                return Err(ApiError::unprocessable(
                    "reason",
                    "at most 100 characters, no control characters",
                ));
            }
            Presence::OnBreak(reason)
        }
    };
    st.rt
        .engine
        .command(Command::SetAgentPresence {
            agent,
            presence: presence.clone(),
        })
        .await
        .map_err(engine_error)?;
    // Saved now as well as through the engine's records: a restart right after keeps it.
    let value = serde_json::to_value(&presence).map_err(ApiError::internal)?;
    st.rt
        .store
        .set_agent_presence(tenant, id, value.clone())
        .await?;
    let kind = st
        .rt
        .engine
        .query(move |e| e.agent_state(agent))
        .await
        .map_err(engine_error)?;
    Ok(Json(json!({ "id": id, "presence": value, "state": kind })))
}

async fn skills(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let row = owned(&st, tenant, id).await?;
    Ok(Json(
        json!({ "skills": row.config.get("skills").cloned().unwrap_or(json!([])) }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetSkills {
    skills: Vec<AgentSkill>,
}

async fn set_skills(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<SetSkills>,
) -> Result<Json<Value>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let row = owned(&st, tenant, id).await?;
    let known: Vec<i64> = st
        .rt
        .store
        .list_skills(tenant)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    if let Some((i, s)) = body
        .skills
        .iter()
        .enumerate()
        .find(|(_, s)| !known.contains(&i64::from(s.skill)))
    {
        return Err(ApiError::unprocessable(
            format!("skills[{i}].skill"),
            format!("skill {} is not one of yours", s.skill),
        ));
    }
    let mut spec: AgentSpec =
        serde_json::from_value(row.config.clone()).map_err(ApiError::internal)?;
    spec.skills = body.skills;
    spec.to_engine(id, &row.name)
        .map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    let config = serde_json::to_value(&spec).map_err(ApiError::internal)?;
    let a = audit(
        &p,
        Some(tenant),
        "agent.skills",
        "agent",
        id,
        json!({ "skills": config.get("skills") }),
    );
    let row = st
        .rt
        .store
        .update_agent(tenant, id, None, Some(config), &a)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no agent {id}")))?;
    apply(&st, tenant, &row).await?;
    Ok(Json(
        json!({ "skills": row.config.get("skills").cloned().unwrap_or(json!([])) }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Monitor {
    /// listen (eavesdrop), whisper (only the agent hears the supervisor), barge.
    mode: MonitorMode,
    /// The supervisor's phone, a FreeSWITCH dial string.
    dial: String,
}

async fn monitor(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<Monitor>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    let agent = live_agent(&st, tenant, id)?;
    let probe = AgentSpec {
        contact: body.dial.clone(),
        ..AgentSpec::default()
    };
    probe.to_engine(1, "probe").map_err(|_| {
        ApiError::unprocessable("dial", "a FreeSWITCH dial string such as user/900")
    })?;
    let leg = LegId(uuid::Uuid::new_v4().as_u128());
    st.rt
        .engine
        .command(Command::Monitor {
            agent,
            dial: body.dial,
            leg,
            mode: body.mode,
        })
        .await
        .map_err(engine_error)?;
    let a = audit(
        &p,
        Some(tenant),
        "agent.monitor",
        "agent",
        id,
        json!({ "mode": body.mode }),
    );
    // Supervision is audited like configuration: who listened to whom, and how.
    let _ = st.rt.store.insert_audit(&a).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "leg": uuid::Uuid::from_u128(leg.0), "mode": body.mode })),
    ))
}
