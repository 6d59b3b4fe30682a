//! `/v1/queues`: CRUD, members (tiers), live statistics, waiting calls, pause/resume.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_engine::driver::DriverError;
use switchyard_engine::{AgentId, Command, EngineError, Membership, QueueId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    ADMINS, AppState, READERS, SUPERVISORS, audit, change, engine_error, engine_id, patched,
};
use crate::http::{ApiError, ApiJson, ApiPath, ApiQuery, Auth, require_role, require_tenant};
use crate::ids::{IdCodec, IdKind};
use crate::model::TenantId;
use crate::openapi::ErrorBody;
use crate::runtime::{read_now, route_name};
use crate::spec::{QueueSpec, check_name};
use crate::store::{MemberRow, QueueRow, StoreError};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
        .routes(routes!(members, add_member, remove_member))
        .routes(routes!(stats))
        .routes(routes!(waiting))
        .routes(routes!(pause))
        .routes(routes!(resume))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateQueue {
    /// 1-100 characters, no control characters; unique within the tenant.
    #[schema(min_length = 1)]
    name: String,
    #[serde(default)]
    config: QueueSpec,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PatchQueue {
    name: Option<String>,
    /// A JSON merge patch (RFC 7386) over the queue's config: members replace, `null` removes
    /// (back to the default).
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
}

/// A queue.
#[derive(Debug, Serialize, ToSchema)]
struct QueueView {
    id: i64,
    name: String,
    /// Every setting, defaults filled in.
    #[schema(value_type = QueueSpec)]
    config: Value,
    created_at_ms: i64,
    updated_at_ms: i64,
}

fn view(ids: &IdCodec, row: &QueueRow) -> QueueView {
    QueueView {
        id: ids.queue(row.id),
        name: row.name.clone(),
        config: super::shown_config::<QueueSpec>(ids, &row.config),
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct QueueList {
    queues: Vec<QueueView>,
}

/// The queue's id in a path.
#[derive(Debug, IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)] // Describes the path parameter; `ApiPath<i64>` reads it.
struct QueuePath(i64);

/// Validates a spec for the tenant: every field, and overflow targets that are its queues.
async fn check_spec(
    st: &AppState,
    tenant: TenantId,
    spec: &QueueSpec,
    name: &str,
    this_queue: Option<i64>,
) -> Result<(), ApiError> {
    // A dialled number reaches exactly one queue on the whole platform: one tenant must not
    // take over another's number.
    if !spec.numbers.is_empty() {
        for q in st.rt.store.all_queues().await? {
            if Some(q.id) == this_queue {
                continue;
            }
            let taken: Vec<String> = q
                .config
                .get("numbers")
                .and_then(|n| serde_json::from_value(n.clone()).ok())
                .unwrap_or_default();
            // One answer whoever holds the number (this tenant or another): saying "another
            // tenant's" would tell a tenant which numbers the platform's other customers own.
            if let Some((i, n)) = spec
                .numbers
                .iter()
                .enumerate()
                .find(|(_, n)| taken.contains(n))
            {
                return Err(
                    ApiError::conflict(format!("the number {n} is already taken"))
                        .with_field(format!("config.numbers[{i}]")),
                );
            }
        }
    }
    check_name("name", name).map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    spec.to_engine(1, name, &st.rt.store.tenant_grants(tenant).await?)?;
    super::check_skills(
        st,
        tenant,
        "config.skills",
        spec.skills.iter().map(|s| s.skill),
    )
    .await?;
    for (field, queue, agent) in spec.mailbox_targets() {
        let found = match (queue, agent) {
            (Some(q), _) => st.rt.store.get_queue(tenant, i64::from(q)).await?.is_some(),
            (_, Some(a)) => st.rt.store.get_agent(tenant, i64::from(a)).await?.is_some(),
            (None, None) => true,
        };
        if !found {
            return Err(ApiError::unprocessable(
                field,
                "the voicemail box is not one of your queues or agents",
            ));
        }
    }
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
                "not one of your queues",
            ));
        }
    }
    Ok(())
}

/// Pushes a stored queue into the running engine: the engine's command only (see
/// [`change`]); the routes and the directory follow in [`routed`].
async fn apply(st: &AppState, tenant: TenantId, row: &QueueRow) -> Result<(), ApiError> {
    let spec: QueueSpec = serde_json::from_value(row.config.clone()).map_err(ApiError::internal)?;
    let grants = st.rt.store.tenant_grants(tenant).await?;
    apply_spec(st, tenant, row, &spec, &grants).await
}

/// Runs queue `row` in the engine with `spec` (its own, or one narrowed to new grants).
pub(super) async fn apply_spec(
    st: &AppState,
    tenant: TenantId,
    row: &QueueRow,
    spec: &QueueSpec,
    grants: &crate::grants::DialGrants,
) -> Result<(), ApiError> {
    let tenant_name = st
        .rt
        .store
        .get_tenant(tenant)
        .await?
        .map(|t| t.name)
        .unwrap_or_default();
    let cfg = spec.to_engine(row.id, &route_name(&tenant_name, &row.name), grants)?;
    st.rt
        .engine
        .command(Command::UpsertQueue(Box::new(cfg)))
        .await
        .map_err(engine_error)
}

/// After the engine took a queue: its tenant in the directory, its numbers and name in the
/// routes.
async fn routed(st: &AppState, tenant: TenantId, row: &QueueRow) -> Result<(), ApiError> {
    if let Some(id) = engine_id(row.id) {
        st.rt.directory.set_queue(QueueId(id), tenant);
    }
    st.rt.refresh_routes().await.map_err(ApiError::internal)
}

async fn owned(st: &AppState, tenant: TenantId, id: i64) -> Result<QueueRow, ApiError> {
    st.rt
        .store
        .get_queue(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such queue"))
}

/// The tenant's queues.
#[utoipa::path(
    get,
    path = "/v1/queues",
    tag = "queues",
    operation_id = "list_queues",
    responses((status = 200, description = "The tenant's queues", body = QueueList)),
)]
async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<QueueList>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let rows = st.rt.store.list_queues(tenant).await?;
    Ok(Json(QueueList {
        queues: rows.iter().map(|r| view(&st.rt.ids, r)).collect(),
    }))
}

/// Creates a queue (admin) and starts routing to it at once.
#[utoipa::path(
    post,
    path = "/v1/queues",
    tag = "queues",
    operation_id = "create_queue",
    request_body = CreateQueue,
    responses(
        (status = 201, description = "Created and running", body = QueueView),
        (status = 409, description = "A queue of that name exists", body = ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(mut body): ApiJson<CreateQueue>,
) -> Result<(StatusCode, Json<QueueView>), ApiError> {
    body.config = super::received(&st.rt.ids, body.config);
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let a = audit(
        &p,
        Some(tenant),
        "queue.create",
        "queue",
        "",
        json!({ "name": body.name }),
    );
    let row = change(
        &st,
        check_spec(&st, tenant, &body.config, &body.name, None),
        async |()| {
            let config = serde_json::to_value(&body.config).map_err(ApiError::internal)?;
            Ok(st
                .rt
                .store
                .create_queue(tenant, &body.name, config, &a)
                .await?)
        },
        async |row: &QueueRow| apply(&st, tenant, row).await,
        async |row: &QueueRow| {
            let undo = audit(
                &p,
                Some(tenant),
                "queue.delete",
                "queue",
                row.id,
                json!({ "reason": "engine refused" }),
            );
            st.rt.store.delete_queue(tenant, row.id, &undo).await?;
            Ok(())
        },
    )
    .await?;
    routed(&st, tenant, &row).await?;
    Ok((StatusCode::CREATED, Json(view(&st.rt.ids, &row))))
}

/// One queue.
#[utoipa::path(
    get,
    path = "/v1/queues/{id}",
    tag = "queues",
    operation_id = "get_queue",
    params(QueuePath),
    responses((status = 200, description = "The queue", body = QueueView)),
)]
async fn read(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<QueueView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Queue, shown)?;
    Ok(Json(view(&st.rt.ids, &owned(&st, tenant, id).await?)))
}

/// Renames a queue and/or merges a patch into its config (admin); applied live.
#[utoipa::path(
    patch,
    path = "/v1/queues/{id}",
    tag = "queues",
    operation_id = "update_queue",
    params(QueuePath),
    request_body = PatchQueue,
    responses(
        (status = 200, description = "The queue as it is now", body = QueueView),
        (status = 409, description = "A queue of that name exists", body = ErrorBody),
    ),
)]
async fn update(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<PatchQueue>,
) -> Result<Json<QueueView>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Queue, shown)?;
    let validate = async {
        // Read again under the lock: the row this change replaces (and may put back).
        let prev = owned(&st, tenant, id).await?;
        let spec: QueueSpec = patched(&st.rt.ids, &prev.config, body.config.as_ref())?;
        let name = body.name.clone().unwrap_or_else(|| prev.name.clone());
        check_spec(&st, tenant, &spec, &name, Some(id)).await?;
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
        Ok((prev, config))
    };
    let a = audit(
        &p,
        Some(tenant),
        "queue.update",
        "queue",
        id,
        json!({ "name": body.name, "config": body.config }),
    );
    // The change's row is (the row written, the row it replaced).
    let (row, _) = change(
        &st,
        validate,
        async |(prev, config): (QueueRow, Value)| {
            let row = st
                .rt
                .store
                .update_queue(tenant, id, body.name.as_deref(), Some(config), &a)
                .await?
                .ok_or_else(|| ApiError::not_found("no such queue"))?;
            Ok((row, prev))
        },
        async |(row, _): &(QueueRow, QueueRow)| apply(&st, tenant, row).await,
        async |(_, prev): &(QueueRow, QueueRow)| {
            let undo = audit(
                &p,
                Some(tenant),
                "queue.update",
                "queue",
                id,
                json!({ "reason": "engine refused", "restored": { "name": prev.name, "config": prev.config } }),
            );
            st.rt.store.restore_queue(prev, &undo).await?;
            Ok(())
        },
    )
    .await?;
    routed(&st, tenant, &row).await?;
    Ok(Json(view(&st.rt.ids, &row)))
}

/// What keeps a queue from being deleted.
#[derive(Debug, Serialize, ToSchema)]
struct UsedBy {
    /// Calls in the queue now: waiting, being offered, talking or being called back (their
    /// records are filed under the queue).
    calls: usize,
    /// The campaigns that dial for the queue's agents, whatever their state.
    campaigns: Vec<i64>,
    /// The inbound flows that route to it (a queue step, its voicemail box, a fallback);
    /// absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    flows: Vec<i64>,
}

/// 409 for a queue in use: the usual error, and what uses the queue.
#[derive(Debug, Serialize, ToSchema)]
struct QueueInUse {
    error: crate::openapi::ErrorDetail,
    used_by: UsedBy,
}

/// The 409 answer naming what uses queue `id`.
fn in_use(ids: &IdCodec, id: i64, mut used_by: UsedBy) -> Response {
    let id = ids.queue(id);
    for c in &mut used_by.campaigns {
        *c = ids.campaign(*c);
    }
    for f in &mut used_by.flows {
        *f = ids.encode(IdKind::Flow, *f);
    }
    let mut what = Vec::new();
    if used_by.calls > 0 {
        what.push(format!(
            "{} call(s) are in it (let them end or move them)",
            used_by.calls
        ));
    }
    if !used_by.campaigns.is_empty() {
        let ids: Vec<String> = used_by.campaigns.iter().map(i64::to_string).collect();
        what.push(format!(
            "campaigns {} dial for it (point them at another queue or delete them)",
            ids.join(", ")
        ));
    }
    if !used_by.flows.is_empty() {
        let ids: Vec<String> = used_by.flows.iter().map(i64::to_string).collect();
        what.push(format!(
            "flows {} route to it (change them first)",
            ids.join(", ")
        ));
    }
    let body = QueueInUse {
        error: crate::openapi::ErrorDetail {
            code: "conflict".into(),
            message: format!("queue {id} is in use: {}", what.join("; ")),
            field: None,
        },
        used_by,
    };
    (StatusCode::CONFLICT, Json(body)).into_response()
}

/// Removes a queue (admin). Refused (409, naming them) while calls are in it, campaigns
/// dial for it or inbound flows route to it: the queue is never drained or its campaigns or
/// flows re-pointed on the operator's behalf.
#[utoipa::path(
    delete,
    path = "/v1/queues/{id}",
    tag = "queues",
    operation_id = "delete_queue",
    params(QueuePath),
    responses(
        (status = 204, description = "Removed"),
        (status = 409, description = "Calls are in the queue, campaigns dial for it or inbound flows route to it; `used_by` says which", body = QueueInUse),
    ),
)]
async fn remove(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Response, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Queue, shown)?;
    // Not between another change's write and its undo (see `change`).
    let _one_at_a_time = st.rt.config_writes.lock().await;
    let row = owned(&st, tenant, id).await?;
    let q = QueueId(engine_id(id).ok_or_else(|| ApiError::not_found("no such queue"))?);
    // The stored campaigns, every state; the engine's calls (and its campaigns, the same ones
    // once loaded).
    let mut campaigns = st.rt.store.campaigns_using_queue(tenant, id).await?;
    let (calls, running) = st
        .rt
        .engine
        .query(move |e| e.queue_users(q))
        .await
        .map_err(engine_error)?;
    let merge = |campaigns: &mut Vec<i64>, more: Vec<switchyard_engine::CampaignId>| {
        campaigns.extend(more.into_iter().map(|c| i64::from(c.0)));
        campaigns.sort_unstable();
        campaigns.dedup();
    };
    merge(&mut campaigns, running);
    let me = shown.to_string();
    let flows: Vec<i64> =
        super::flows::flow_rows_using(&st, tenant, |f| super::flows::flow_uses_queue(f, &me))
            .await?
            .iter()
            .map(|r| r.id)
            .collect();
    if calls > 0 || !campaigns.is_empty() || !flows.is_empty() {
        return Ok(in_use(
            &st.rt.ids,
            id,
            UsedBy {
                calls,
                campaigns,
                flows,
            },
        ));
    }
    // The engine checks again as it removes (a caller may have arrived since).
    match st.rt.engine.command(Command::RemoveQueue(q)).await {
        Ok(()) => {}
        Err(DriverError::Engine(EngineError::QueueInUse {
            calls,
            campaigns: c,
            ..
        })) => {
            let mut campaigns = Vec::new();
            merge(&mut campaigns, c);
            return Ok(in_use(
                &st.rt.ids,
                id,
                UsedBy {
                    calls,
                    campaigns,
                    flows: Vec::new(),
                },
            ));
        }
        Err(other) => return Err(engine_error(other)),
    }
    let a = audit(&p, Some(tenant), "queue.delete", "queue", id, Value::Null);
    match st.rt.store.delete_queue(tenant, id, &a).await {
        Ok(_) => {}
        // A campaign created for the queue since the check: the store refused in its
        // transaction, so the engine takes the queue (and its members) back.
        Err(StoreError::InUse { campaigns, .. }) => {
            restore(&st, tenant, &row).await?;
            return Ok(in_use(
                &st.rt.ids,
                id,
                UsedBy {
                    calls: 0,
                    campaigns,
                    flows: Vec::new(),
                },
            ));
        }
        Err(e) => {
            restore(&st, tenant, &row).await?;
            return Err(e.into());
        }
    }
    st.rt.directory.remove_queue(q);
    st.rt.refresh_routes().await.map_err(ApiError::internal)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Puts a queue the engine removed back, with its members' tiers (a delete the store refused).
async fn restore(st: &AppState, tenant: TenantId, row: &QueueRow) -> Result<(), ApiError> {
    apply(st, tenant, row).await?;
    for m in st.rt.store.list_members(tenant, row.id).await? {
        sync_memberships(st, tenant, m.agent_id).await?;
    }
    Ok(())
}

/// An agent's membership of a queue: its tier.
#[derive(Debug, Serialize, ToSchema)]
struct Member {
    agent_id: i64,
    /// Tier level: lower levels are offered calls first.
    level: i32,
    /// Order within the level (top-down, round-robin, ring-progressively).
    position: i32,
    /// Share for weighted-random.
    weight: i32,
}

impl Member {
    fn of(ids: &IdCodec, m: &MemberRow) -> Member {
        Member {
            agent_id: ids.agent(m.agent_id),
            level: m.level,
            position: m.position,
            weight: m.weight,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct MemberList {
    members: Vec<Member>,
}

/// The queue's members.
#[utoipa::path(
    get,
    path = "/v1/queues/{id}/members",
    tag = "queues",
    operation_id = "list_queue_members",
    params(QueuePath),
    responses((status = 200, description = "The queue's members", body = MemberList)),
)]
async fn members(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<MemberList>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Queue, shown)?;
    owned(&st, tenant, id).await?;
    let rows = st.rt.store.list_members(tenant, id).await?;
    Ok(Json(MemberList {
        members: rows.iter().map(|m| Member::of(&st.rt.ids, m)).collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddMember {
    /// One of the tenant's agents.
    agent_id: i64,
    #[serde(default = "one")]
    #[schema(default = 1)]
    level: i32,
    #[serde(default = "one")]
    #[schema(default = 1)]
    position: i32,
    #[serde(default = "one")]
    #[schema(default = 1)]
    weight: i32,
}

fn one() -> i32 {
    1
}

/// Re-sends an agent's whole membership list to the engine after a change: the memberships
/// of queues the engine runs (one whose stored configuration was refused at start would have
/// the engine refuse the whole list).
pub(super) async fn sync_memberships(
    st: &AppState,
    tenant: TenantId,
    agent_id: i64,
) -> Result<(), ApiError> {
    let Some(a) = engine_id(agent_id) else {
        return Ok(());
    };
    let memberships: Vec<Membership> = st
        .rt
        .store
        .members_of_agent(tenant, agent_id)
        .await?
        .into_iter()
        .filter_map(|m| {
            let queue = QueueId(engine_id(m.queue_id)?);
            st.rt.directory.queue_tenant(queue)?;
            Some(Membership {
                queue,
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

/// Adds an agent to the queue, or changes its tier (admin); applied live.
#[utoipa::path(
    post,
    path = "/v1/queues/{id}/members",
    tag = "queues",
    operation_id = "set_queue_member",
    params(QueuePath),
    request_body = AddMember,
    responses((status = 201, description = "The membership", body = Member)),
)]
async fn add_member(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(mut body): ApiJson<AddMember>,
) -> Result<(StatusCode, Json<Member>), ApiError> {
    // Another tenant's agent, or a number no agent was shown as, is refused alike below.
    let shown_agent = body.agent_id;
    body.agent_id = st.rt.ids.decode(IdKind::Agent, shown_agent).unwrap_or(-1);
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Queue, shown)?;
    let a = audit(
        &p,
        Some(tenant),
        "member.set",
        "queue",
        id,
        json!({ "agent_id": shown_agent, "level": body.level, "position": body.position, "weight": body.weight }),
    );
    let validate = async {
        owned(&st, tenant, id).await?;
        // The tier this change replaces, if the agent is a member already (the undo's).
        membership(&st, tenant, id, body.agent_id).await
    };
    change(
        &st,
        validate,
        async |prev: Option<MemberRow>| {
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
                    format!("agent {shown_agent} is not one of yours"),
                ));
            }
            Ok(prev)
        },
        async |_: &Option<MemberRow>| apply_membership(&st, tenant, id, body.agent_id).await,
        async |prev: &Option<MemberRow>| {
            undo_membership(&st, &p, tenant, id, body.agent_id, prev.as_ref()).await
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Member {
            agent_id: shown_agent,
            level: body.level,
            position: body.position,
            weight: body.weight,
        }),
    ))
}

/// The agent's membership of the queue as stored, if any.
async fn membership(
    st: &AppState,
    tenant: TenantId,
    queue: i64,
    agent: i64,
) -> Result<Option<MemberRow>, ApiError> {
    Ok(st
        .rt
        .store
        .members_of_agent(tenant, agent)
        .await?
        .into_iter()
        .find(|m| m.queue_id == queue))
}

/// Applies an agent's memberships after a change to its membership of `queue`: refused (a
/// 422 naming the path's queue) when the engine does not run that queue (its stored
/// configuration was refused at start, see `boot`).
async fn apply_membership(
    st: &AppState,
    tenant: TenantId,
    queue: i64,
    agent: i64,
) -> Result<(), ApiError> {
    let running = engine_id(queue)
        .and_then(|q| st.rt.directory.queue_tenant(QueueId(q)))
        .is_some();
    if !running {
        return Err(ApiError::unprocessable(
            "id",
            format!(
                "queue {queue} is not running: its stored configuration was refused at start \
                 (update the queue to load it)"
            ),
        ));
    }
    sync_memberships(st, tenant, agent).await
}

/// Puts an agent's membership of a queue back as it was before a change the engine refused:
/// the old tier, or no membership.
async fn undo_membership(
    st: &AppState,
    p: &crate::model::Principal,
    tenant: TenantId,
    queue: i64,
    agent: i64,
    prev: Option<&MemberRow>,
) -> Result<(), ApiError> {
    let detail = json!({ "agent_id": st.rt.ids.agent(agent), "reason": "engine refused" });
    match prev {
        Some(m) => {
            let undo = audit(p, Some(tenant), "member.set", "queue", queue, detail);
            st.rt
                .store
                .set_member(tenant, queue, agent, m.level, m.position, m.weight, &undo)
                .await?;
        }
        None => {
            let undo = audit(p, Some(tenant), "member.remove", "queue", queue, detail);
            st.rt
                .store
                .remove_member(tenant, queue, agent, &undo)
                .await?;
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct MemberQuery {
    /// The member to remove.
    agent_id: i64,
}

/// Removes an agent from the queue (admin); applied live.
#[utoipa::path(
    delete,
    path = "/v1/queues/{id}/members",
    tag = "queues",
    operation_id = "delete_queue_member",
    params(QueuePath, MemberQuery),
    responses((status = 204, description = "Removed")),
)]
async fn remove_member(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiQuery(mut q): ApiQuery<MemberQuery>,
) -> Result<StatusCode, ApiError> {
    let shown_agent = q.agent_id;
    q.agent_id = st.rt.ids.decode(IdKind::Agent, shown_agent).unwrap_or(-1);
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Queue, shown)?;
    let a = audit(
        &p,
        Some(tenant),
        "member.remove",
        "queue",
        id,
        json!({ "agent_id": shown_agent }),
    );
    let validate = async {
        owned(&st, tenant, id).await?;
        membership(&st, tenant, id, q.agent_id)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "agent {shown_agent} is not a member of queue {shown}"
                ))
            })
    };
    change(
        &st,
        validate,
        async |prev: MemberRow| {
            if !st
                .rt
                .store
                .remove_member(tenant, id, q.agent_id, &a)
                .await?
            {
                return Err(ApiError::not_found(format!(
                    "agent {shown_agent} is not a member of queue {shown}"
                )));
            }
            Ok(prev)
        },
        async |_: &MemberRow| sync_memberships(&st, tenant, q.agent_id).await,
        async |prev: &MemberRow| undo_membership(&st, &p, tenant, id, q.agent_id, Some(prev)).await,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Live figures of the queue: waiting callers, agents by state, figures since start and for
/// the open 15-minute interval.
#[utoipa::path(
    get,
    path = "/v1/queues/{id}/stats",
    tag = "queues",
    operation_id = "get_queue_stats",
    params(QueuePath),
    responses((status = 200, description = "The queue's figures as of now", body = crate::openapi::QueueSnapshot)),
)]
async fn stats(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<Value>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Queue, shown)?;
    let q = live_queue(&st, tenant, id)?;
    let snap = st
        .rt
        .engine
        .query(move |e| serde_json::to_value(e.stats().queue_snapshot(read_now(e), q)))
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
        .ok_or_else(|| ApiError::not_found("no such queue"))
}

/// A caller waiting in a queue.
#[derive(Debug, Serialize, ToSchema)]
struct WaitingCall {
    /// The call's id (its arrival leg), as in `/v1/calls/{id}`.
    id: uuid::Uuid,
    /// 1 is next.
    position: usize,
    caller_number: String,
    priority: i32,
    /// Since the caller arrived (kept across overflows).
    waited_s: f64,
    /// Since the caller entered this queue.
    in_queue_s: f64,
    /// Waiting for a callback rather than on the line.
    callback: bool,
}

#[derive(Debug, Serialize, ToSchema)]
struct WaitingList {
    calls: Vec<WaitingCall>,
}

/// The callers waiting in the queue, in the order they will be served.
#[utoipa::path(
    get,
    path = "/v1/queues/{id}/calls",
    tag = "queues",
    operation_id = "list_queue_calls",
    params(QueuePath),
    responses((status = 200, description = "Waiting callers, next first", body = WaitingList)),
)]
async fn waiting(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<WaitingList>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Queue, shown)?;
    let q = live_queue(&st, tenant, id)?;
    // A waiting caller has no agent yet: only admins and supervisors see the whole number.
    let sight = super::NumberSight::of(&p);
    let calls = st
        .rt
        .engine
        .query(move |e| {
            let now = read_now(e);
            e.waiting_calls(q)
                .into_iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let call = e.call_info(c)?;
                    Some(WaitingCall {
                        id: uuid::Uuid::from_u128(call.origin_leg.0),
                        position: i + 1,
                        caller_number: sight.show(&call.caller.number, None),
                        priority: call.priority,
                        waited_s: now
                            .saturating_duration_since(call.wait_origin)
                            .as_secs_f64(),
                        in_queue_s: now
                            .saturating_duration_since(call.queue_entered)
                            .as_secs_f64(),
                        callback: call.callback,
                    })
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(engine_error)?;
    Ok(Json(WaitingList { calls }))
}

/// Whether a queue is paused (a paused queue keeps its callers and offers nobody).
#[derive(Debug, Serialize, ToSchema)]
struct Paused {
    id: i64,
    paused: bool,
}

async fn set_paused(
    st: AppState,
    p: crate::model::Principal,
    shown: i64,
    paused: bool,
) -> Result<Json<Paused>, ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Queue, shown)?;
    // The engine's directory, not the store: pausing works while the database is away.
    let q = live_queue(&st, tenant, id)?;
    let cmd = if paused {
        Command::PauseQueue(q)
    } else {
        Command::ResumeQueue(q)
    };
    st.rt.engine.command(cmd).await.map_err(engine_error)?;
    // Kept in the config so a restart does not silently resume a paused queue; journaled
    // (with its audit entry) while the database is away.
    let action = if paused {
        "queue.pause"
    } else {
        "queue.resume"
    };
    let a = audit(&p, Some(tenant), action, "queue", id, Value::Null);
    match st.rt.store.set_queue_paused(tenant, id, paused, &a).await {
        Ok(()) => {}
        // As for presence: in effect now, not kept for a restart (logged and counted).
        Err(StoreError::JournalFull { .. }) => {
            tracing::warn!(
                queue = id,
                paused,
                "queue pause not saved: the journal is full"
            );
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Json(Paused {
        id: st.rt.ids.queue(id),
        paused,
    }))
}

/// Pauses the queue (supervisor): callers keep waiting, no offers are made. Survives a restart.
#[utoipa::path(
    post,
    path = "/v1/queues/{id}/pause",
    tag = "queues",
    operation_id = "pause_queue",
    params(QueuePath),
    responses((status = 200, description = "Paused", body = Paused)),
)]
async fn pause(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<Paused>, ApiError> {
    set_paused(st, p, shown, true).await
}

/// Resumes the queue (supervisor).
#[utoipa::path(
    post,
    path = "/v1/queues/{id}/resume",
    tag = "queues",
    operation_id = "resume_queue",
    params(QueuePath),
    responses((status = 200, description = "Resumed", body = Paused)),
)]
async fn resume(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<Paused>, ApiError> {
    set_paused(st, p, shown, false).await
}
