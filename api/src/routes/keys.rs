//! `/v1/api-keys`: a tenant admin's keys (created keys are shown once).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ADMINS, AppState, audit};
use crate::http::{ApiError, ApiJson, ApiPath, Auth, require_role, require_tenant};
use crate::model::Role;
use crate::store::ApiKey;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/api-keys", get(list).post(create))
        .route("/v1/api-keys/{id}", delete(revoke))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    pub name: String,
    pub role: Role,
    pub expires_at_ms: Option<i64>,
}

pub(super) fn view(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "role": k.role,
        "prefix": k.prefix,
        "created_at_ms": k.created_at_ms,
        "expires_at_ms": k.expires_at_ms,
        "revoked_at_ms": k.revoked_at_ms,
        "last_used_at_ms": k.last_used_at_ms,
    })
}

async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let keys = st.rt.store.list_api_keys(Some(tenant)).await?;
    Ok(Json(
        json!({ "api_keys": keys.iter().map(view).collect::<Vec<_>>() }),
    ))
}

async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    if body.role == Role::PlatformAdmin {
        return Err(ApiError::unprocessable(
            "role",
            "a tenant cannot create platform-admin keys",
        ));
    }
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
    let mut v = view(&key);
    // The only time the key is ever shown.
    v["key"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)))
}

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
    // Cached verifications would keep the key alive for a few seconds otherwise.
    st.kit.auth().invalidate_all();
    Ok(StatusCode::NO_CONTENT)
}
