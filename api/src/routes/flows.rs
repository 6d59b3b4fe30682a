//! `/v1/flows`: inbound flows (the dialplan crate's `Flow`: steps, the flow's own menus, a
//! fallback target). A flow is validated whole against the tenant's real queues, agents,
//! schedules and stored IVR menus (`/v1/ivr-menus`), which it names by the ids the API shows,
//! written as strings (`{"kind": "queue", "id": "sales", "queue": "48213"}`); a missing
//! reference, a loop with no exit or an unreachable step is refused with the field's path
//! (`config.steps[2].queue`). The helpers here (what a tenant's flows may name, who uses what)
//! serve the menu, number, schedule, queue and agent routes too.
//!
//! Every write takes [`crate::runtime::Runtime::config_writes`] for its checks and its write:
//! a flow cannot be written naming a schedule or menu that a concurrent deletion is removing.

use std::collections::{BTreeMap, HashSet};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_dialplan::DialplanError;
use switchyard_dialplan::flow::{Fallback, Flow, Known, Menu, MenuAction, Step, VoicemailBox};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ADMINS, AppState, READERS, audit};
use crate::http::{ApiError, ApiJson, ApiPath, Auth, require_role, require_tenant};
use crate::ids::{IdCodec, IdKind};
use crate::model::TenantId;
use crate::openapi::ErrorBody;
use crate::spec::check_name;
use crate::store::{FlowRow, MenuRow};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, remove))
}

/// Most flows a tenant keeps.
const MAX_FLOWS: usize = 1000;
/// Users an "in use" answer names; the rest are counted.
const MAX_USERS_NAMED: usize = 10;

// ---------------------------------------------------------------------------------------------
// What a tenant's flows may name, and who uses what (shared with the menu, number and schedule
// routes).

/// The tenant's queues, agents, schedules and stored menus, by the ids the API shows (as
/// strings): what validation asks of [`Known`].
pub(super) struct TenantRefs {
    queues: HashSet<String>,
    agents: HashSet<String>,
    schedules: HashSet<String>,
    /// Stored menus by shown id, each under that id.
    pub(super) menus: BTreeMap<String, Menu>,
}

impl Known for TenantRefs {
    fn queue(&self, id: &str) -> bool {
        self.queues.contains(id)
    }
    fn agent(&self, id: &str) -> bool {
        self.agents.contains(id)
    }
    fn schedule(&self, id: &str) -> bool {
        self.schedules.contains(id)
    }
    fn menu(&self, id: &str) -> Option<&Menu> {
        self.menus.get(id)
    }
}

pub(super) async fn tenant_refs(st: &AppState, tenant: TenantId) -> Result<TenantRefs, ApiError> {
    let ids = &st.rt.ids;
    let store = &st.rt.store;
    let shown = |kind: IdKind, id: i64| ids.encode(kind, id).to_string();
    Ok(TenantRefs {
        queues: (store.list_queues(tenant).await?.iter())
            .map(|r| shown(IdKind::Queue, r.id))
            .collect(),
        agents: (store.list_agents(tenant).await?.iter())
            .map(|r| shown(IdKind::Agent, r.id))
            .collect(),
        schedules: (store.list_schedules(tenant).await?.iter())
            .map(|r| shown(IdKind::Schedule, r.id))
            .collect(),
        menus: (store.list_menus(tenant).await?.iter())
            .filter_map(|r| stored_menu(ids, r).map(|m| (m.id.clone(), m)))
            .collect(),
    })
}

/// A stored menu as flows see it: under its shown id. None if it no longer reads (it was
/// validated on the way in; a later version's stricter rules are logged, not answered).
pub(crate) fn stored_menu(ids: &IdCodec, row: &MenuRow) -> Option<Menu> {
    match serde_json::from_value::<Menu>(row.config.clone()) {
        Ok(mut m) => {
            m.id = ids.encode(IdKind::IvrMenu, row.id).to_string();
            Some(m)
        }
        Err(e) => {
            tracing::warn!(menu = row.id, error = %e, "a stored IVR menu does not read");
            None
        }
    }
}

/// A stored flow under its shown id; None (logged) if it no longer reads.
pub(crate) fn stored_flow(ids: &IdCodec, row: &FlowRow) -> Option<Flow> {
    match serde_json::from_value::<Flow>(row.config.clone()) {
        Ok(mut f) => {
            f.id = ids.encode(IdKind::Flow, row.id).to_string();
            Some(f)
        }
        Err(e) => {
            tracing::warn!(flow = row.id, error = %e, "a stored flow does not read");
            None
        }
    }
}

/// A dialplan refusal as a 422 naming `config.<path>`.
pub(super) fn refused(e: DialplanError) -> ApiError {
    match e {
        DialplanError::Invalid { path, reason } => {
            ApiError::unprocessable(format!("config.{path}"), reason)
        }
        other => ApiError::unprocessable("config", other.to_string()),
    }
}

/// The server names a stored document; one given in the body is refused rather than ignored.
pub(super) fn no_id_given(id: &str, what: &str) -> Result<(), ApiError> {
    if id.is_empty() {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "config.id",
            format!("leave it out: a stored {what} is named by its own id"),
        ))
    }
}

/// Whether a flow names the schedule (by shown id).
pub(super) fn flow_uses_schedule(flow: &Flow, schedule_id: &str) -> bool {
    flow.steps
        .iter()
        .any(|s| matches!(s, Step::Schedule { schedule, .. } if schedule == schedule_id))
}

/// Whether a menu names `menu_id` as a submenu.
pub(super) fn menu_names_menu(menu: &Menu, menu_id: &str) -> bool {
    menu.entries
        .iter()
        .map(|e| &e.action)
        .chain([&menu.on_max_failures, &menu.on_max_timeouts])
        .any(|a| matches!(a, MenuAction::Submenu { menu } if menu == menu_id))
}

/// Whether a flow names the stored menu (by shown id) in a step or one of its own menus.
pub(super) fn flow_uses_menu(flow: &Flow, menu_id: &str) -> bool {
    flow.steps
        .iter()
        .any(|s| matches!(s, Step::Menu { menu, .. } if menu == menu_id))
        || flow.menus.iter().any(|m| menu_names_menu(m, menu_id))
}

/// Whether a flow routes to the queue (by shown id): a queue step, its voicemail box, the
/// fallback.
pub(super) fn flow_uses_queue(flow: &Flow, queue_id: &str) -> bool {
    let is = |q: &String| q == queue_id;
    let boxed = |b: &VoicemailBox| matches!(b, VoicemailBox::Queue(q) if is(q));
    flow.steps.iter().any(|s| match s {
        Step::Queue { queue, .. } => is(queue),
        Step::Voicemail { mailbox, .. } => boxed(mailbox),
        _ => false,
    }) || match &flow.fallback {
        Fallback::Queue(q) => is(q),
        Fallback::Voicemail(b) => boxed(b),
        _ => false,
    }
}

/// Whether a flow routes to the agent (by shown id): an agent step, its voicemail box, the
/// fallback.
pub(super) fn flow_uses_agent(flow: &Flow, agent_id: &str) -> bool {
    let is = |a: &String| a == agent_id;
    let boxed = |b: &VoicemailBox| matches!(b, VoicemailBox::Agent(a) if is(a));
    flow.steps.iter().any(|s| match s {
        Step::Agent { agent, .. } => is(agent),
        Step::Voicemail { mailbox, .. } => boxed(mailbox),
        _ => false,
    }) || match &flow.fallback {
        Fallback::Agent(a) => is(a),
        Fallback::Voicemail(b) => boxed(b),
        _ => false,
    }
}

/// The tenant's flows that `uses`.
pub(super) async fn flow_rows_using(
    st: &AppState,
    tenant: TenantId,
    uses: impl Fn(&Flow) -> bool,
) -> Result<Vec<FlowRow>, ApiError> {
    let ids = &st.rt.ids;
    let mut rows = st.rt.store.list_flows(tenant).await?;
    rows.retain(|r| stored_flow(ids, r).is_some_and(|f| uses(&f)));
    Ok(rows)
}

/// The tenant's flows that `uses`, each named for an "in use" answer.
pub(super) async fn flows_using(
    st: &AppState,
    tenant: TenantId,
    uses: impl Fn(&Flow) -> bool,
) -> Result<Vec<String>, ApiError> {
    let ids = &st.rt.ids;
    Ok(flow_rows_using(st, tenant, uses)
        .await?
        .iter()
        .map(|r| format!("flow {} {:?}", ids.encode(IdKind::Flow, r.id), r.name))
        .collect())
}

/// 409 naming what uses the object (at most [`MAX_USERS_NAMED`], the rest counted); Ok when
/// nothing does.
pub(super) fn not_in_use(what: &str, users: Vec<String>) -> Result<(), ApiError> {
    if users.is_empty() {
        return Ok(());
    }
    let mut named = users
        .iter()
        .take(MAX_USERS_NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if users.len() > MAX_USERS_NAMED {
        named.push_str(&format!(" and {} more", users.len() - MAX_USERS_NAMED));
    }
    Err(ApiError::conflict(format!(
        "the {what} is in use by {named}; change or remove those first"
    )))
}

// ---------------------------------------------------------------------------------------------
// The routes.

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FlowBody {
    /// 1-100 characters, unique within the tenant.
    #[schema(min_length = 1)]
    name: String,
    /// The flow: `steps` (the first is the entry; `kind` one of `schedule`, `menu`, `set`,
    /// `queue`, `agent`, `voicemail`, `transfer`, `play_hangup`, `goto`), `menus` (the flow's
    /// own IVR menus), `fallback`. Queues, agents, schedules and stored IVR menus are named by
    /// their API ids as strings. No `id`: the flow is named by its own. README, "Inbound
    /// routing".
    #[schema(value_type = Object)]
    config: Flow,
}

#[derive(Debug, Serialize, ToSchema)]
struct FlowView {
    id: i64,
    name: String,
    #[schema(value_type = Object)]
    config: Value,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl FlowView {
    fn of(st: &AppState, r: FlowRow) -> FlowView {
        FlowView {
            id: st.rt.ids.encode(IdKind::Flow, r.id),
            name: r.name,
            config: r.config,
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct FlowList {
    flows: Vec<FlowView>,
}

/// Checks a flow whole against the tenant (as flow `id`, shown) and gives what is stored: the
/// document as given, without an id.
async fn checked(
    st: &AppState,
    tenant: TenantId,
    id: &str,
    name: &str,
    mut flow: Flow,
) -> Result<Value, ApiError> {
    check_name("name", name).map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    no_id_given(&flow.id, "flow")?;
    let refs = tenant_refs(st, tenant).await?;
    flow.id = id.to_owned();
    flow.validate(&refs).map_err(refused)?;
    flow.id.clear();
    serde_json::to_value(&flow).map_err(|e| ApiError::internal(e.to_string()))
}

/// The tenant's flows.
#[utoipa::path(
    get,
    path = "/v1/flows",
    tag = "routing",
    operation_id = "list_flows",
    responses((status = 200, description = "The tenant's flows", body = FlowList)),
)]
async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<FlowList>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let rows = st.rt.store.list_flows(tenant).await?;
    Ok(Json(FlowList {
        flows: rows.into_iter().map(|r| FlowView::of(&st, r)).collect(),
    }))
}

/// Adds a flow (admin, audited), validated whole against the tenant's queues, agents,
/// schedules and stored IVR menus.
#[utoipa::path(
    post,
    path = "/v1/flows",
    tag = "routing",
    operation_id = "create_flow",
    request_body = FlowBody,
    responses(
        (status = 201, description = "Created", body = FlowView),
        (status = 409, description = "A flow of that name exists", body = ErrorBody),
        (status = 422, description = "The flow refused, with the field's path", body = ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<FlowBody>,
) -> Result<(StatusCode, Json<FlowView>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let _one_at_a_time = st.rt.config_writes.lock().await;
    // Not yet numbered: no flow names itself, so any id validates alike.
    let config = checked(&st, tenant, "new", &body.name, body.config).await?;
    if st.rt.store.list_flows(tenant).await?.len() >= MAX_FLOWS {
        return Err(ApiError::unprocessable(
            "name",
            format!("a tenant keeps at most {MAX_FLOWS} flows"),
        ));
    }
    let a = audit(
        &p,
        Some(tenant),
        "flow.create",
        "flow",
        "",
        json!({ "name": body.name, "config": config }),
    );
    let row = st
        .rt
        .store
        .create_flow(tenant, &body.name, config, &a)
        .await?;
    Ok((StatusCode::CREATED, Json(FlowView::of(&st, row))))
}

/// One flow.
#[utoipa::path(
    get,
    path = "/v1/flows/{id}",
    tag = "routing",
    operation_id = "get_flow",
    params(("id" = i64, Path, description = "The flow's id")),
    responses(
        (status = 200, description = "The flow", body = FlowView),
        (status = 404, description = "No such flow", body = ErrorBody),
    ),
)]
async fn get_one(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<FlowView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Flow, shown)?;
    let row = st
        .rt
        .store
        .get_flow(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no flow {shown}")))?;
    Ok(Json(FlowView::of(&st, row)))
}

/// Replaces a flow's name and document (admin, audited), validated whole; the numbers that
/// route to it run the new document from the next call.
#[utoipa::path(
    put,
    path = "/v1/flows/{id}",
    tag = "routing",
    operation_id = "replace_flow",
    params(("id" = i64, Path, description = "The flow's id")),
    request_body = FlowBody,
    responses(
        (status = 200, description = "The flow as it now is", body = FlowView),
        (status = 404, description = "No such flow", body = ErrorBody),
        (status = 409, description = "Another flow has that name", body = ErrorBody),
        (status = 422, description = "The flow refused, with the field's path", body = ErrorBody),
    ),
)]
async fn replace(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<FlowBody>,
) -> Result<Json<FlowView>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Flow, shown)?;
    let _one_at_a_time = st.rt.config_writes.lock().await;
    if st.rt.store.get_flow(tenant, id).await?.is_none() {
        return Err(ApiError::not_found(format!("no flow {shown}")));
    }
    let config = checked(&st, tenant, &shown.to_string(), &body.name, body.config).await?;
    let a = audit(
        &p,
        Some(tenant),
        "flow.update",
        "flow",
        id,
        json!({ "name": body.name, "config": config }),
    );
    let row = st
        .rt
        .store
        .update_flow(tenant, id, &body.name, config, &a)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no flow {shown}")))?;
    Ok(Json(FlowView::of(&st, row)))
}

/// Removes a flow (admin, audited); 409 naming the numbers (or the default route) that use it.
#[utoipa::path(
    delete,
    path = "/v1/flows/{id}",
    tag = "routing",
    operation_id = "delete_flow",
    params(("id" = i64, Path, description = "The flow's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such flow", body = ErrorBody),
        (status = 409, description = "A number routes to it", body = ErrorBody),
    ),
)]
async fn remove(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Flow, shown)?;
    let _one_at_a_time = st.rt.config_writes.lock().await;
    let mut users: Vec<String> = Vec::new();
    if st.rt.store.default_flow(tenant).await? == Some(id) {
        users.push("the default route of the number plan".to_owned());
    }
    users.extend(
        st.rt
            .store
            .list_numbers(tenant)
            .await?
            .iter()
            .filter(|n| n.flow_id == id)
            .map(|n| format!("number {:?}", n.number)),
    );
    not_in_use("flow", users)?;
    let a = audit(&p, Some(tenant), "flow.delete", "flow", id, Value::Null);
    if st.rt.store.delete_flow(tenant, id, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no flow {shown}")))
    }
}
