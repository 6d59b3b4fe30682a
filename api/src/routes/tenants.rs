//! `/v1/platform-admin/tenants`: tenants and their first keys (platform-admin keys only).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::keys::{CreateKey, view as key_view};
use super::{AppState, audit};
use crate::http::{ApiError, ApiJson, ApiPath, Auth, require_platform_admin};
use crate::model::{Role, TenantId};
use crate::spec::check_name;
use crate::store::Tenant;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/platform-admin/tenants", get(list).post(create))
        .route("/v1/platform-admin/tenants/{id}", get(read).patch(update))
        .route("/v1/platform-admin/tenants/{id}/api-keys", post(create_key))
}

fn view(t: &Tenant) -> Value {
    json!({ "id": t.id, "name": t.name, "disabled": t.disabled, "created_at_ms": t.created_at_ms })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchTenant {
    disabled: bool,
}

async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    require_platform_admin(&p)?;
    let tenants = st.rt.store.list_tenants().await?;
    Ok(Json(
        json!({ "tenants": tenants.iter().map(view).collect::<Vec<_>>() }),
    ))
}

async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    Ok((StatusCode::CREATED, Json(view(&t))))
}

async fn read(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    require_platform_admin(&p)?;
    let t = st
        .rt
        .store
        .get_tenant(TenantId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant {id}")))?;
    Ok(Json(view(&t)))
}

async fn update(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PatchTenant>,
) -> Result<Json<Value>, ApiError> {
    require_platform_admin(&p)?;
    let a = audit(
        &p,
        None,
        "tenant.update",
        "tenant",
        id,
        json!({ "disabled": body.disabled }),
    );
    if !st
        .rt
        .store
        .set_tenant_disabled(TenantId(id), body.disabled, &a)
        .await?
    {
        return Err(ApiError::not_found(format!("no tenant {id}")));
    }
    // A disabled tenant's keys stop at once, not when their cache entries expire.
    st.kit.auth().invalidate_all();
    let t = st
        .rt
        .store
        .get_tenant(TenantId(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant {id}")))?;
    Ok(Json(view(&t)))
}

async fn create_key(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    let a = audit(
        &p,
        Some(tenant),
        "api_key.create",
        "api_key",
        "",
        json!({ "name": body.name, "role": body.role }),
    );
    let (key, secret) = st
        .rt
        .store
        .create_api_key(Some(tenant), body.role, &body.name, body.expires_at_ms, &a)
        .await?;
    let mut v = key_view(&key);
    v["key"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)))
}
