//! `/v1/agents`: CRUD, state (presence), skills, and supervisor monitoring of an agent's call.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_engine::agent::AgentStateKind;
use switchyard_engine::{AgentId, Command, LegId, MonitorMode, Presence};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    ADMINS, AppState, READERS, SUPERVISORS, audit, change, engine_error, engine_id, patched,
};
use crate::http::{
    ApiError, ApiJson, ApiPath, Auth, require_acts_for, require_role, require_tenant,
};
use crate::ids::{IdCodec, IdKind};
use crate::model::{Role, TenantId};
use crate::openapi::ErrorBody;
use crate::runtime::read_now;
use crate::spec::{AgentSkill, AgentSpec, check_name};
use crate::store::{AgentRow, StoreError};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
        .routes(routes!(state, set_state))
        .routes(routes!(skills, set_skills))
        .routes(routes!(monitor))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateAgent {
    /// 1-100 characters, no control characters; unique within the tenant.
    #[schema(min_length = 1)]
    name: String,
    /// `contact` is required in practice: the agent's phone.
    #[serde(default)]
    config: AgentSpec,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PatchAgent {
    name: Option<String>,
    /// A JSON merge patch (RFC 7386) over the agent's config.
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
}

/// An agent.
#[derive(Debug, Serialize, ToSchema)]
struct AgentView {
    id: i64,
    name: String,
    /// Every setting, defaults filled in.
    #[schema(value_type = AgentSpec)]
    config: Value,
    /// The presence last saved; `null` until the agent's state first changes.
    #[schema(value_type = Option<crate::openapi::Presence>)]
    presence: Value,
    created_at_ms: i64,
    updated_at_ms: i64,
}

fn view(ids: &IdCodec, row: &AgentRow) -> AgentView {
    AgentView {
        id: ids.agent(row.id),
        name: row.name.clone(),
        config: super::shown_config::<AgentSpec>(ids, &row.config),
        presence: row.presence.clone(),
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct AgentList {
    agents: Vec<AgentView>,
}

/// The agent's id in a path.
#[derive(Debug, IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)] // Describes the path parameter; `ApiPath<i64>` reads it.
struct AgentPath(i64);

async fn owned(st: &AppState, tenant: TenantId, id: i64) -> Result<AgentRow, ApiError> {
    st.rt
        .store
        .get_agent(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such agent"))
}

fn live_agent(st: &AppState, tenant: TenantId, id: i64) -> Result<AgentId, ApiError> {
    engine_id(id)
        .map(AgentId)
        .filter(|a| st.rt.directory.agent_tenant(*a) == Some(tenant))
        .ok_or_else(|| ApiError::not_found("no such agent"))
}

/// Pushes a stored agent into the running engine (the engine's command only, see [`change`]).
async fn apply(st: &AppState, tenant: TenantId, row: &AgentRow) -> Result<(), ApiError> {
    let spec: AgentSpec = serde_json::from_value(row.config.clone()).map_err(ApiError::internal)?;
    let cfg = spec.to_engine(row.id, &row.name, &st.rt.store.tenant_grants(tenant).await?)?;
    let id = cfg.id;
    st.rt
        .engine
        .command(Command::UpsertAgent(Box::new(cfg)))
        .await
        .map_err(engine_error)?;
    st.rt.directory.set_agent(id, tenant);
    // The engine took a contact within the grants: the agent may log in again.
    st.rt.directory.withhold_agent(id, false);
    Ok(())
}

/// The tenant's agents.
#[utoipa::path(
    get,
    path = "/v1/agents",
    tag = "agents",
    operation_id = "list_agents",
    responses((status = 200, description = "The tenant's agents", body = AgentList)),
)]
async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<AgentList>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let rows = st.rt.store.list_agents(tenant).await?;
    Ok(Json(AgentList {
        agents: rows.iter().map(|r| view(&st.rt.ids, r)).collect(),
    }))
}

/// Creates an agent (admin), logged out.
#[utoipa::path(
    post,
    path = "/v1/agents",
    tag = "agents",
    operation_id = "create_agent",
    request_body = CreateAgent,
    responses(
        (status = 201, description = "Created", body = AgentView),
        (status = 409, description = "An agent of that name exists", body = ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(mut body): ApiJson<CreateAgent>,
) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    body.config = super::received(&st.rt.ids, body.config);
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let a = audit(
        &p,
        Some(tenant),
        "agent.create",
        "agent",
        "",
        json!({ "name": body.name }),
    );
    let validate = async {
        check_name("name", &body.name).map_err(|e| ApiError::unprocessable(e.field, e.message))?;
        body.config
            .to_engine(1, &body.name, &st.rt.store.tenant_grants(tenant).await?)?;
        let skills = body.config.skills.iter().map(|s| s.skill);
        super::check_skills(&st, tenant, "config.skills", skills).await?;
        serde_json::to_value(&body.config).map_err(ApiError::internal)
    };
    let row = change(
        &st,
        validate,
        async |config: Value| {
            Ok(st
                .rt
                .store
                .create_agent(tenant, &body.name, config, &a)
                .await?)
        },
        async |row: &AgentRow| apply(&st, tenant, row).await,
        async |row: &AgentRow| {
            let undo = audit(
                &p,
                Some(tenant),
                "agent.delete",
                "agent",
                row.id,
                json!({ "reason": "engine refused" }),
            );
            st.rt.store.delete_agent(tenant, row.id, &undo).await?;
            Ok(())
        },
    )
    .await?;
    if let Some(id) = engine_id(row.id) {
        // New agents start logged out (the engine says nothing until they change).
        st.rt
            .live
            .seed_agent(tenant, AgentId(id), json!("logged-out"), None);
    }
    Ok((StatusCode::CREATED, Json(view(&st.rt.ids, &row))))
}

/// One agent.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}",
    tag = "agents",
    operation_id = "get_agent",
    params(AgentPath),
    responses((status = 200, description = "The agent", body = AgentView)),
)]
async fn read(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<AgentView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Agent, shown)?;
    Ok(Json(view(&st.rt.ids, &owned(&st, tenant, id).await?)))
}

/// Renames an agent and/or merges a patch into its config (admin); applied live.
#[utoipa::path(
    patch,
    path = "/v1/agents/{id}",
    tag = "agents",
    operation_id = "update_agent",
    params(AgentPath),
    request_body = PatchAgent,
    responses(
        (status = 200, description = "The agent as it is now", body = AgentView),
        (status = 409, description = "An agent of that name exists", body = ErrorBody),
    ),
)]
async fn update(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<PatchAgent>,
) -> Result<Json<AgentView>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Agent, shown)?;
    let validate = async {
        // Read under the lock: the row this change replaces (and may put back).
        let prev = owned(&st, tenant, id).await?;
        let spec: AgentSpec = patched(&st.rt.ids, &prev.config, body.config.as_ref())?;
        let name = body.name.clone().unwrap_or_else(|| prev.name.clone());
        check_name("name", &name).map_err(|e| ApiError::unprocessable(e.field, e.message))?;
        spec.to_engine(id, &name, &st.rt.store.tenant_grants(tenant).await?)?;
        // Only a patch that sets the list is checked: a PATCH of the name must not fail on a
        // list the agent already has.
        if body
            .config
            .as_ref()
            .is_some_and(|c| c.get("skills").is_some())
        {
            let skills = spec.skills.iter().map(|s| s.skill);
            super::check_skills(&st, tenant, "config.skills", skills).await?;
        }
        let config = serde_json::to_value(&spec).map_err(ApiError::internal)?;
        Ok((prev, config))
    };
    let a = audit(
        &p,
        Some(tenant),
        "agent.update",
        "agent",
        id,
        json!({ "name": body.name, "config": body.config }),
    );
    // The change's row is (the row written, the row it replaced).
    let (row, _) = change(
        &st,
        validate,
        async |(prev, config): (AgentRow, Value)| {
            let row = st
                .rt
                .store
                .update_agent(tenant, id, body.name.as_deref(), Some(config), &a)
                .await?
                .ok_or_else(|| ApiError::not_found("no such agent"))?;
            Ok((row, prev))
        },
        async |(row, _): &(AgentRow, AgentRow)| apply(&st, tenant, row).await,
        async |(_, prev): &(AgentRow, AgentRow)| {
            let undo = audit(
                &p,
                Some(tenant),
                "agent.update",
                "agent",
                id,
                json!({ "reason": "engine refused", "restored": { "name": prev.name, "config": prev.config } }),
            );
            st.rt.store.restore_agent(prev, &undo).await?;
            Ok(())
        },
    )
    .await?;
    Ok(Json(view(&st.rt.ids, &row)))
}

/// Removes an agent (admin); refused while the agent has a call or an inbound flow routes to
/// it (409 naming the flows). The API keys bound to the agent are revoked with it.
#[utoipa::path(
    delete,
    path = "/v1/agents/{id}",
    tag = "agents",
    operation_id = "delete_agent",
    params(AgentPath),
    responses(
        (status = 204, description = "Removed"),
        (status = 409, description = "The agent has a call, or a flow routes to it", body = ErrorBody),
    ),
)]
async fn remove(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Agent, shown)?;
    // Not between another change's write and its undo (see `change`).
    let _one_at_a_time = st.rt.config_writes.lock().await;
    owned(&st, tenant, id).await?;
    let me = shown.to_string();
    let flows =
        super::flows::flows_using(&st, tenant, |f| super::flows::flow_uses_agent(f, &me)).await?;
    super::flows::not_in_use("agent", flows)?;
    let agent = live_agent(&st, tenant, id)?;
    // The engine refuses while the agent has a call.
    st.rt
        .engine
        .command(Command::RemoveAgent(agent))
        .await
        .map_err(engine_error)?;
    let a = audit(&p, Some(tenant), "agent.delete", "agent", id, Value::Null);
    st.rt.store.delete_agent(tenant, id, &a).await?;
    // Deleting the agent revoked the keys bound to it; cached verifications would keep them
    // alive for a few seconds otherwise.
    st.kit
        .auth()
        .invalidate(|p| p.tenant == Some(tenant) && p.agent_id == Some(id));
    st.rt.directory.remove_agent(agent);
    st.rt.live.forget_agent(tenant, agent);
    Ok(StatusCode::NO_CONTENT)
}

/// An agent's state as the engine sees it, with its figures.
#[derive(Debug, Serialize, ToSchema)]
struct AgentStateView {
    id: i64,
    #[schema(value_type = crate::openapi::AgentState)]
    state: AgentStateKind,
    /// The break's reason while on break.
    reason: Option<String>,
    #[schema(value_type = Option<crate::openapi::AgentSnapshot>)]
    snapshot: Option<Value>,
}

/// The agent's live state and figures.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}/state",
    tag = "agents",
    operation_id = "get_agent_state",
    params(AgentPath),
    responses((status = 200, description = "The agent's state", body = AgentStateView)),
)]
async fn state(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<AgentStateView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Agent, shown)?;
    let agent = live_agent(&st, tenant, id)?;
    let view = st
        .rt
        .engine
        .query(move |e| {
            let a = e.agent_info(agent)?;
            Some(AgentStateView {
                id: shown,
                state: a.state(),
                reason: a.break_reason(),
                snapshot: serde_json::to_value(e.stats().agent_snapshot(read_now(e), agent)).ok(),
            })
        })
        .await
        .map_err(engine_error)?
        .ok_or_else(|| ApiError::not_found("no such agent"))?;
    Ok(Json(view))
}

/// The presence to set: `{"state": "available"}`, `{"state": "on-break", "reason": "lunch"}`,
/// `{"state": "logged-out"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", tag = "state")]
enum SetState {
    LoggedOut,
    Available,
    OnBreak {
        /// At most 100 characters, no control characters.
        #[serde(default)]
        reason: String,
    },
}

/// The presence just set and the state the engine put the agent in.
#[derive(Debug, Serialize, ToSchema)]
struct StateSet {
    id: i64,
    #[schema(value_type = crate::openapi::Presence)]
    presence: Value,
    /// `null` if the engine no longer knows the agent.
    #[schema(value_type = Option<crate::openapi::AgentState>)]
    state: Option<AgentStateKind>,
}

/// Sets the agent's presence: an agent key its own agent's, supervisors and admins anyone's.
#[utoipa::path(
    put,
    path = "/v1/agents/{id}/state",
    tag = "agents",
    operation_id = "set_agent_state",
    params(AgentPath),
    request_body = SetState,
    responses(
        (status = 200, description = "Set", body = StateSet),
        (status = 403, description = "A read-only key, an agent key of another agent, or an agent key bound to no agent", body = ErrorBody),
    ),
)]
async fn set_state(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<SetState>,
) -> Result<Json<StateSet>, ApiError> {
    // Agents set their own state from their desktops; supervisors anyone's.
    require_role(&p, &[Role::Admin, Role::Supervisor, Role::Agent])?;
    let tenant = require_tenant(&p)?;
    // An agent key gets 403 for any agent but its own, one never shown included: a 404 would
    // let it probe which numbers are agents.
    let decoded = st.rt.ids.decode(IdKind::Agent, shown);
    require_acts_for(&p, decoded.unwrap_or(-1))?;
    let id = super::stored_id(&st, IdKind::Agent, shown)?;
    let agent = live_agent(&st, tenant, id)?;
    let presence = match body {
        SetState::LoggedOut => Presence::LoggedOut,
        SetState::Available => Presence::Available,
        SetState::OnBreak { reason } => {
            if reason.len() > 100 || reason.chars().any(crate::model::is_forbidden_in_text) {
                return Err(ApiError::unprocessable(
                    "reason",
                    "at most 100 characters, no control characters",
                ));
            }
            Presence::OnBreak(reason)
        }
    };
    if presence != Presence::LoggedOut && st.rt.directory.agent_withheld(agent) {
        return Err(ApiError::conflict(
            "the agent's contact is outside the tenant's grants since they were narrowed: an \
             admin changes the contact (PATCH /v1/agents/{id}) before the agent logs in",
        )
        .with_field("config.contact"));
    }
    // Answered once the change's records (its history row, its webhook message) are filed:
    // a `kill -9` right after the answer loses neither.
    st.rt
        .engine
        .command_filed(
            Command::SetAgentPresence {
                agent,
                presence: presence.clone(),
            },
            crate::runtime::FILED_WITHIN,
        )
        .await
        .map_err(engine_error)?;
    // Saved now as well as through the engine's records: a restart right after keeps it.
    let value = serde_json::to_value(&presence).map_err(ApiError::internal)?;
    match st
        .rt
        .store
        .set_agent_presence(tenant, id, value.clone())
        .await
    {
        Ok(_) => {}
        // The change took effect in the engine; only its copy for a restart is lost (the
        // journal's bound is logged at ERROR and counted by the store).
        Err(StoreError::JournalFull { .. }) => {
            tracing::warn!(agent = id, "presence not saved: the journal is full");
        }
        Err(e) => return Err(e.into()),
    }
    let kind = st
        .rt
        .engine
        .query(move |e| e.agent_state(agent))
        .await
        .map_err(engine_error)?;
    Ok(Json(StateSet {
        id: shown,
        presence: value,
        state: kind,
    }))
}

/// An agent's skills.
#[derive(Debug, Serialize, ToSchema)]
struct AgentSkills {
    #[schema(value_type = Vec<AgentSkill>)]
    skills: Value,
}

fn skills_of(ids: &IdCodec, row: &AgentRow) -> AgentSkills {
    let shown = super::shown_config::<AgentSpec>(ids, &row.config);
    AgentSkills {
        skills: shown.get("skills").cloned().unwrap_or(json!([])),
    }
}

/// The agent's skills.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}/skills",
    tag = "agents",
    operation_id = "get_agent_skills",
    params(AgentPath),
    responses((status = 200, description = "The agent's skills", body = AgentSkills)),
)]
async fn skills(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<AgentSkills>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Agent, shown)?;
    let row = owned(&st, tenant, id).await?;
    Ok(Json(skills_of(&st.rt.ids, &row)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetSkills {
    /// The whole list (replaces the old one); skills must be the tenant's.
    skills: Vec<AgentSkill>,
}

/// Replaces the agent's skills (admin); applied live.
#[utoipa::path(
    put,
    path = "/v1/agents/{id}/skills",
    tag = "agents",
    operation_id = "set_agent_skills",
    params(AgentPath),
    request_body = SetSkills,
    responses((status = 200, description = "The agent's skills now", body = AgentSkills)),
)]
async fn set_skills(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(mut body): ApiJson<SetSkills>,
) -> Result<Json<AgentSkills>, ApiError> {
    for s in &mut body.skills {
        s.skill = super::stored_ref(&st.rt.ids, IdKind::Skill, s.skill);
    }
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Agent, shown)?;
    let row = owned(&st, tenant, id).await?;
    super::check_skills(&st, tenant, "skills", body.skills.iter().map(|s| s.skill)).await?;
    let mut spec: AgentSpec =
        serde_json::from_value(row.config.clone()).map_err(ApiError::internal)?;
    spec.skills = body.skills;
    spec.to_engine(id, &row.name, &st.rt.store.tenant_grants(tenant).await?)
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
        .ok_or_else(|| ApiError::not_found("no such agent"))?;
    apply(&st, tenant, &row).await?;
    Ok(Json(skills_of(&st.rt.ids, &row)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Monitor {
    /// listen (eavesdrop), whisper (only the agent hears the supervisor), barge.
    #[schema(value_type = crate::openapi::MonitorMode)]
    mode: MonitorMode,
    /// The supervisor's phone, a FreeSWITCH dial string (as an agent's `contact`).
    #[schema(pattern = r#"^[!#-&(-Z\\^-z|~]{1,256}$"#)]
    dial: String,
}

/// The supervisor's leg being dialled into the agent's call.
#[derive(Debug, Serialize, ToSchema)]
struct MonitorStarted {
    /// The supervisor's new leg.
    leg: uuid::Uuid,
    #[schema(value_type = crate::openapi::MonitorMode)]
    mode: MonitorMode,
}

/// Dials a supervisor into the agent's current call (supervisor).
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/monitor",
    tag = "agents",
    operation_id = "monitor_agent",
    params(AgentPath),
    request_body = Monitor,
    responses(
        (status = 202, description = "The supervisor's phone is being dialled", body = MonitorStarted),
        (status = 409, description = "The agent is not on a call", body = ErrorBody),
    ),
)]
async fn monitor(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<Monitor>,
) -> Result<(StatusCode, Json<MonitorStarted>), ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Agent, shown)?;
    let agent = live_agent(&st, tenant, id)?;
    // The supervisor's phone is one of the tenant's granted endpoints, as an agent's is.
    let dial = st
        .rt
        .store
        .tenant_grants(tenant)
        .await?
        .endpoint("dial", &body.dial)
        .map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    let leg = LegId(uuid::Uuid::new_v4().as_u128());
    st.rt
        .engine
        .command(Command::Monitor {
            agent,
            dial,
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
        Json(MonitorStarted {
            leg: uuid::Uuid::from_u128(leg.0),
            mode: body.mode,
        }),
    ))
}
