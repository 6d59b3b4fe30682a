//! `/v1/platform-admin/tenants`: tenants and their first keys (platform-admin keys only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::keys::{CreateKey, CreatedKey};
use super::{AppState, audit};
use crate::grants::{DialGrants, Outside, outside};
use crate::http::{ApiError, ApiJson, ApiPath, Auth, require_platform_admin};
use crate::model::{Role, TenantId};
use crate::spec::check_name;
use crate::store::Tenant;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update))
        .routes(routes!(create_key))
        .routes(routes!(read_grants, set_grants))
}

/// A tenant's grants, and the rows they leave out.
#[derive(Debug, Serialize, ToSchema)]
struct GrantsView {
    grants: DialGrants,
    /// Stored agents, queues and campaigns outside these grants: they are refused on any
    /// change and not loaded at the next start until fixed.
    outside: Vec<Outside>,
    /// What this change did to the running engine, one entry per row outside (empty on a
    /// read): nothing outside the grants stays dialable.
    applied: Vec<Applied>,
}

/// What narrowed grants did to one running row.
#[derive(Debug, Serialize, ToSchema)]
struct Applied {
    /// `agent`, `queue` or `campaign`.
    kind: &'static str,
    id: i64,
    /// `unloaded`: taken out of the engine, as the next start leaves it out (an idle agent, a
    /// queue with no calls and no campaigns, any campaign: its ringing lines hang up).
    /// `logged-out`: an agent on a call keeps the call, is logged out and may not log in
    /// until its contact is fixed. `restricted`: a queue with callers keeps running, its
    /// exits to destinations no longer granted hanging up instead (and its callbacks through
    /// the tenant's first gateway, or none). `absent`: the engine did not run it.
    action: &'static str,
}

async fn grants_view(st: &AppState, id: Uuid) -> Result<GrantsView, ApiError> {
    let t = st
        .rt
        .store
        .get_tenant(TenantId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant {id}")))?;
    let outside = outside(&st.rt.store, &st.rt.ids, t.id, &t.grants).await?;
    Ok(GrantsView {
        grants: t.grants,
        outside,
        applied: Vec::new(),
    })
}

/// Applies `tenant`'s stored grants to the running engine (see [`apply_narrowed`]): for
/// grants changed elsewhere (`routes::access`).
pub(super) async fn narrow_running(st: &AppState, tenant: TenantId) -> Result<(), ApiError> {
    let _one_at_a_time = st.rt.config_writes.lock().await;
    let Some(t) = st.rt.store.get_tenant(tenant).await? else {
        return Ok(());
    };
    let outside = outside(&st.rt.store, &st.rt.ids, tenant, &t.grants).await?;
    let applied = apply_narrowed(st, tenant, &t.grants, &outside).await?;
    for a in applied.iter().filter(|a| a.action != "absent") {
        tracing::info!(
            tenant = %tenant.0,
            kind = a.kind,
            id = a.id,
            action = a.action,
            "a row outside its tenant's narrowed grants"
        );
    }
    Ok(())
}

/// Takes what narrowed grants no longer allow out of the running engine (see [`Applied`]), so
/// that nothing outside them is dialled before the next start either.
async fn apply_narrowed(
    st: &AppState,
    tenant: TenantId,
    grants: &DialGrants,
    outside: &[Outside],
) -> Result<Vec<Applied>, ApiError> {
    use crate::ids::IdKind;
    use crate::spec::QueueSpec;
    use switchyard_engine::driver::DriverError;
    use switchyard_engine::{AgentId, CampaignId, Command, EngineError, Presence, QueueId};

    let engine = &st.rt.engine;
    let mut applied = Vec::with_capacity(outside.len());
    // Campaigns first: a campaign dialling for a queue keeps the queue in use.
    let mut order: Vec<&Outside> = outside.iter().collect();
    order.sort_by_key(|o| match o.kind {
        "campaign" => 0,
        "agent" => 1,
        _ => 2,
    });
    for o in order {
        let kind = match o.kind {
            "agent" => IdKind::Agent,
            "queue" => IdKind::Queue,
            _ => IdKind::Campaign,
        };
        let Some(id) = st.rt.ids.decode(kind, o.id).and_then(super::engine_id) else {
            continue;
        };
        let action = match kind {
            IdKind::Agent => {
                let a = AgentId(id);
                match engine.command(Command::RemoveAgent(a)).await {
                    Ok(()) => {
                        st.rt.directory.remove_agent(a);
                        st.rt.live.forget_agent(tenant, a);
                        "unloaded"
                    }
                    Err(DriverError::Engine(EngineError::AgentNotFree { .. })) => {
                        let out = Command::SetAgentPresence {
                            agent: a,
                            presence: Presence::LoggedOut,
                        };
                        engine.command(out).await.map_err(super::engine_error)?;
                        st.rt.directory.withhold_agent(a, true);
                        "logged-out"
                    }
                    Err(DriverError::Engine(EngineError::UnknownAgent(_))) => "absent",
                    Err(e) => return Err(super::engine_error(e)),
                }
            }
            IdKind::Queue => {
                let q = QueueId(id);
                match engine.command(Command::RemoveQueue(q)).await {
                    Ok(()) => {
                        st.rt.directory.remove_queue(q);
                        "unloaded"
                    }
                    Err(DriverError::Engine(EngineError::QueueInUse { .. })) => {
                        let Some(row) = st.rt.store.get_queue(tenant, i64::from(id)).await? else {
                            continue;
                        };
                        let spec: QueueSpec = serde_json::from_value(row.config.clone())
                            .map_err(ApiError::internal)?;
                        let narrowed = spec.within(grants);
                        super::queues::apply_spec(st, tenant, &row, &narrowed, grants).await?;
                        "restricted"
                    }
                    Err(DriverError::Engine(EngineError::UnknownQueue(_))) => "absent",
                    Err(e) => return Err(super::engine_error(e)),
                }
            }
            _ => {
                let c = CampaignId(id);
                match engine.command(Command::RemoveCampaign(c)).await {
                    Ok(()) => {
                        st.rt.directory.remove_campaign(c);
                        "unloaded"
                    }
                    Err(DriverError::Engine(EngineError::UnknownCampaign(_))) => "absent",
                    Err(e) => return Err(super::engine_error(e)),
                }
            }
        };
        applied.push(Applied {
            kind: o.kind,
            id: o.id,
            action,
        });
    }
    // Only an unloaded queue takes numbers out of the routes.
    if applied
        .iter()
        .any(|a| a.kind == "queue" && a.action == "unloaded")
    {
        st.rt.refresh_routes().await.map_err(ApiError::internal)?;
    }
    Ok(applied)
}

/// What a tenant may reach on the switch (platform-admin): its agent endpoints, carrier
/// gateways, caller ids and dialplan destinations.
#[utoipa::path(
    get,
    path = "/v1/platform-admin/tenants/{id}/grants",
    tag = "platform-admin",
    operation_id = "get_tenant_grants",
    params(("id" = Uuid, Path, description = "The tenant's id")),
    responses((status = 200, description = "The tenant's grants", body = GrantsView)),
)]
async fn read_grants(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<GrantsView>, ApiError> {
    require_platform_admin(&p)?;
    Ok(Json(grants_view(&st, id).await?))
}

/// Replaces what a tenant may reach (platform-admin). Every dial string, caller id and
/// destination the tenant's agents, queues and campaigns carry must fall within these; the
/// answer lists stored rows that no longer do.
#[utoipa::path(
    put,
    path = "/v1/platform-admin/tenants/{id}/grants",
    tag = "platform-admin",
    operation_id = "set_tenant_grants",
    params(("id" = Uuid, Path, description = "The tenant's id")),
    request_body = DialGrants,
    responses(
        (status = 200, description = "The grants as they are now", body = GrantsView),
        (status = 422, description = "A grant that is not safe to dial", body = crate::openapi::ErrorBody),
    ),
)]
async fn set_grants(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<DialGrants>,
) -> Result<Json<GrantsView>, ApiError> {
    require_platform_admin(&p)?;
    body.check()
        .map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    let a = audit(
        &p,
        None,
        "tenant.grants",
        "tenant",
        id,
        serde_json::to_value(&body).map_err(ApiError::internal)?,
    );
    // One change at a time, as every configuration change: no agent, queue or campaign is
    // checked against the old grants while the new ones are written and applied.
    let _one_at_a_time = st.rt.config_writes.lock().await;
    if !st
        .rt
        .store
        .set_tenant_grants(TenantId(id), &body, &a)
        .await?
    {
        return Err(ApiError::not_found(format!("no tenant {id}")));
    }
    let mut view = grants_view(&st, id).await?;
    view.applied = apply_narrowed(&st, TenantId(id), &body, &view.outside).await?;
    Ok(Json(view))
}

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
struct TenantView {
    id: Uuid,
    name: String,
    /// A disabled tenant's keys are refused.
    disabled: bool,
    created_at_ms: i64,
    /// The IANA zone analytics cut days in (shown by the update route).
    #[serde(skip_serializing_if = "Option::is_none")]
    time_zone: Option<String>,
}

impl From<&Tenant> for TenantView {
    fn from(t: &Tenant) -> TenantView {
        TenantView {
            id: t.id.0,
            name: t.name.clone(),
            disabled: t.disabled,
            created_at_ms: t.created_at_ms,
            time_zone: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct TenantList {
    tenants: Vec<TenantView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    /// 1-100 characters, no control characters, no `/`; unique.
    #[schema(min_length = 1)]
    name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PatchTenant {
    disabled: Option<bool>,
    /// An IANA time zone (`Europe/Paris`): analytics cut hours, days, weeks and months in it.
    time_zone: Option<String>,
}

/// Every tenant (platform-admin).
#[utoipa::path(
    get,
    path = "/v1/platform-admin/tenants",
    tag = "platform-admin",
    operation_id = "list_tenants",
    responses((status = 200, description = "Every tenant", body = TenantList)),
)]
async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<TenantList>, ApiError> {
    require_platform_admin(&p)?;
    let tenants = st.rt.store.list_tenants().await?;
    Ok(Json(TenantList {
        tenants: tenants.iter().map(TenantView::from).collect(),
    }))
}

/// Creates a tenant (platform-admin).
#[utoipa::path(
    post,
    path = "/v1/platform-admin/tenants",
    tag = "platform-admin",
    operation_id = "create_tenant",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "Created", body = TenantView),
        (status = 409, description = "A tenant of that name exists", body = crate::openapi::ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    require_platform_admin(&p)?;
    check_name("name", &body.name).map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    if body.name.contains('/') {
        // Queue routing names are "<tenant>/<queue>".
        return Err(ApiError::unprocessable("name", "must not contain '/'"));
    }
    let a = audit(
        &p,
        None,
        "tenant.create",
        "tenant",
        "",
        json!({ "name": body.name }),
    );
    let t = st.rt.store.create_tenant(&body.name, &a).await?;
    Ok((StatusCode::CREATED, Json(TenantView::from(&t))))
}

/// One tenant (platform-admin).
#[utoipa::path(
    get,
    path = "/v1/platform-admin/tenants/{id}",
    tag = "platform-admin",
    operation_id = "get_tenant",
    params(("id" = Uuid, Path, description = "The tenant's id")),
    responses((status = 200, description = "The tenant", body = TenantView)),
)]
async fn read(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<TenantView>, ApiError> {
    require_platform_admin(&p)?;
    let t = st
        .rt
        .store
        .get_tenant(TenantId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant {id}")))?;
    Ok(Json(TenantView::from(&t)))
}

/// Disables or re-enables a tenant, or sets its time zone (platform-admin); a disabled
/// tenant's keys stop at once.
#[utoipa::path(
    patch,
    path = "/v1/platform-admin/tenants/{id}",
    tag = "platform-admin",
    operation_id = "update_tenant",
    params(("id" = Uuid, Path, description = "The tenant's id")),
    request_body = PatchTenant,
    responses((status = 200, description = "The tenant as it is now", body = TenantView)),
)]
async fn update(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PatchTenant>,
) -> Result<Json<TenantView>, ApiError> {
    require_platform_admin(&p)?;
    if body.disabled.is_none() && body.time_zone.is_none() {
        return Err(ApiError::unprocessable(
            "disabled",
            "nothing to change: give disabled or time_zone",
        ));
    }
    if let Some(tz) = &body.time_zone {
        crate::analytics::zone("time_zone", tz)?;
    }
    let a = audit(
        &p,
        None,
        "tenant.update",
        "tenant",
        id,
        json!({ "disabled": body.disabled, "time_zone": body.time_zone }),
    );
    if let Some(tz) = &body.time_zone
        && !st
            .rt
            .store
            .set_tenant_time_zone(TenantId(id), tz, &a)
            .await?
    {
        return Err(ApiError::not_found(format!("no tenant {id}")));
    }
    if let Some(disabled) = body.disabled {
        if !st
            .rt
            .store
            .set_tenant_disabled(TenantId(id), disabled, &a)
            .await?
        {
            return Err(ApiError::not_found(format!("no tenant {id}")));
        }
        // A disabled tenant's keys stop at once, not when their cache entries expire.
        st.kit.invalidate(|p| p.tenant == Some(TenantId(id)));
    }
    let t = st
        .rt
        .store
        .get_tenant(TenantId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant {id}")))?;
    let mut view = TenantView::from(&t);
    view.time_zone = st.rt.store.tenant_time_zone(TenantId(id)).await?;
    Ok(Json(view))
}

/// Creates a key for a tenant (platform-admin): how a new tenant gets its first admin key. An
/// `agent` key names the tenant's agent it acts for (`agent_id`).
#[utoipa::path(
    post,
    path = "/v1/platform-admin/tenants/{id}/api-keys",
    tag = "platform-admin",
    operation_id = "create_tenant_api_key",
    params(("id" = Uuid, Path, description = "The tenant's id")),
    request_body = CreateKey,
    responses((status = 201, description = "Created; the only time the key is shown", body = CreatedKey)),
)]
async fn create_key(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    require_platform_admin(&p)?;
    if body.role == Role::PlatformAdmin {
        return Err(ApiError::unprocessable(
            "role",
            "platform-admin keys belong to no tenant",
        ));
    }
    let tenant = TenantId(id);
    st.rt
        .store
        .get_tenant(tenant)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant {id}")))?;
    super::keys::create_for(&st, &p, tenant, body).await
}
