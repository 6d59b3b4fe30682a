//! `/v1/api-keys`: a tenant admin's keys (created keys are shown once).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ADMINS, AppState, audit};
use crate::http::{ApiError, ApiJson, ApiPath, Auth, require_role, require_tenant};
use crate::model::{Principal, Role, TenantId};
use crate::openapi::ErrorBody;
use crate::store::ApiKey;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    /// 1-100 characters, no control characters.
    #[schema(min_length = 1)]
    pub name: String,
    /// Any role but `platform-admin` (which answers 422).
    #[schema(value_type = crate::openapi::TenantRole)]
    pub role: Role,
    /// The agent (`/v1/agents/{id}`) an `agent` key acts for: required for that role (it may
    /// set only this agent's state and dispose only the calls this agent is on), refused for
    /// every other role. An id that is not one of the tenant's agents answers 422.
    pub agent_id: Option<i64>,
    /// When the key stops working (Unix milliseconds, in the future); none: never.
    pub expires_at_ms: Option<i64>,
}

/// An API key as listed: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct KeyView {
    id: Uuid,
    name: String,
    role: Role,
    /// The agent an `agent` key acts for; `null` for every other role, and for agent keys
    /// issued before keys were bound to agents (those may only read: issue a new one).
    agent_id: Option<i64>,
    /// The 12 hex characters after `sy_`, to recognise a key.
    prefix: String,
    created_at_ms: i64,
    expires_at_ms: Option<i64>,
    revoked_at_ms: Option<i64>,
    last_used_at_ms: Option<i64>,
}

impl KeyView {
    pub(super) fn of(ids: &crate::ids::IdCodec, k: &ApiKey) -> KeyView {
        KeyView {
            id: k.id,
            name: k.name.clone(),
            role: k.role,
            agent_id: k.agent_id.map(|a| ids.agent(a)),
            prefix: k.prefix.clone(),
            created_at_ms: k.created_at_ms,
            expires_at_ms: k.expires_at_ms,
            revoked_at_ms: k.revoked_at_ms,
            last_used_at_ms: k.last_used_at_ms,
        }
    }
}

/// A key just created, with the key itself: the only time it is ever shown.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedKey {
    #[serde(flatten)]
    pub view: KeyView,
    /// `sy_` and 64 hex characters; send it as `Authorization: Bearer <key>`.
    pub key: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct KeyList {
    api_keys: Vec<KeyView>,
}

/// The tenant's keys, revoked ones included (admin).
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api-keys",
    operation_id = "list_api_keys",
    responses((status = 200, description = "The tenant's keys", body = KeyList)),
)]
async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<KeyList>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let keys = st.rt.store.list_api_keys(Some(tenant)).await?;
    Ok(Json(KeyList {
        api_keys: keys.iter().map(|k| KeyView::of(&st.rt.ids, k)).collect(),
    }))
}

/// Creates a key for the tenant (admin); the answer is the only time the key is shown. An
/// `agent` key names the agent it acts for (`agent_id`).
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api-keys",
    operation_id = "create_api_key",
    request_body = CreateKey,
    responses(
        (status = 201, description = "Created", body = CreatedKey),
        (status = 422, description = "A field breaks a rule (`field` names it): `agent_id` missing for an agent key, given for another role, or not one of the tenant's agents; `role` platform-admin; `expires_at_ms` not in the future", body = ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    if body.role == Role::PlatformAdmin {
        return Err(ApiError::unprocessable(
            "role",
            "a tenant cannot create platform-admin keys",
        ));
    }
    create_for(&st, &p, tenant, body).await
}

/// Creates and audits a tenant's key once the caller may: the answer both creation routes give.
pub(super) async fn create_for(
    st: &AppState,
    p: &Principal,
    tenant: TenantId,
    body: CreateKey,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let a = audit(
        p,
        Some(tenant),
        "api_key.create",
        "api_key",
        "",
        json!({ "name": body.name, "role": body.role, "agent_id": body.agent_id }),
    );
    // The agent as the store numbers it; a number never shown is no agent of the tenant's,
    // which the store refuses as such.
    let agent = body
        .agent_id
        .map(|a| st.rt.ids.decode(crate::ids::IdKind::Agent, a).unwrap_or(-1));
    let (key, secret) = st
        .rt
        .store
        .create_api_key(
            Some(tenant),
            body.role,
            agent,
            &body.name,
            body.expires_at_ms,
            &a,
        )
        .await
        .map_err(super::key_error)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            view: KeyView::of(&st.rt.ids, &key),
            key: secret,
        }),
    ))
}

/// Revokes a key at once (admin).
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "api-keys",
    operation_id = "revoke_api_key",
    params(("id" = Uuid, Path, description = "The key's id")),
    responses((status = 204, description = "Revoked")),
)]
async fn revoke(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let a = audit(
        &p,
        Some(tenant),
        "api_key.revoke",
        "api_key",
        id,
        Value::Null,
    );
    if !st.rt.store.revoke_api_key(Some(tenant), id, &a).await? {
        return Err(ApiError::not_found(format!("no API key {id}")));
    }
    // Cached verifications would keep the key alive for a few seconds otherwise (and through
    // an outage). Only this key's: the others stay cached, so they ride out an outage.
    st.kit.invalidate(|p| p.key_id == id);
    Ok(StatusCode::NO_CONTENT)
}
