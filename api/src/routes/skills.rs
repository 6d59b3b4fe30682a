//! `/v1/skills`: the tenant's skill catalogue (ids are what queues and agents refer to).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ADMINS, AppState, READERS, audit};
use crate::http::{ApiError, ApiJson, ApiPath, Auth, require_role, require_tenant};
use crate::spec::check_name;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/skills", get(list).post(create))
        .route("/v1/skills/{id}", delete(remove))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateSkill {
    name: String,
}

async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let skills = st.rt.store.list_skills(tenant).await?;
    Ok(Json(
        json!({ "skills": skills.iter().map(|s| json!({ "id": s.id, "name": s.name })).collect::<Vec<_>>() }),
    ))
}

async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateSkill>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    check_name("name", &body.name).map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    let a = audit(
        &p,
        Some(tenant),
        "skill.create",
        "skill",
        "",
        json!({ "name": body.name }),
    );
    let s = st.rt.store.create_skill(tenant, &body.name, &a).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": s.id, "name": s.name })),
    ))
}

async fn remove(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let a = audit(&p, Some(tenant), "skill.delete", "skill", id, Value::Null);
    if st.rt.store.delete_skill(tenant, id, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no skill {id}")))
    }
}
