//! `/v1/skills`: the tenant's skill catalogue (ids are what queues and agents refer to).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ADMINS, AppState, READERS, audit};
use crate::http::{ApiError, ApiJson, ApiPath, Auth, require_role, require_tenant};
use crate::ids::IdKind;
use crate::spec::check_name;
use crate::store::Skill;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(remove))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateSkill {
    /// 1-100 characters, no control characters; unique within the tenant.
    #[schema(min_length = 1)]
    name: String,
}

/// A skill; its id is what queues' `skills` and agents' `skills` refer to.
#[derive(Debug, Serialize, ToSchema)]
struct SkillView {
    id: i64,
    name: String,
}

impl SkillView {
    fn of(ids: &crate::ids::IdCodec, s: &Skill) -> SkillView {
        SkillView {
            id: ids.skill(s.id),
            name: s.name.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct SkillList {
    skills: Vec<SkillView>,
}

/// The tenant's skills.
#[utoipa::path(
    get,
    path = "/v1/skills",
    tag = "skills",
    operation_id = "list_skills",
    responses((status = 200, description = "The tenant's skills", body = SkillList)),
)]
async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<SkillList>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let skills = st.rt.store.list_skills(tenant).await?;
    Ok(Json(SkillList {
        skills: skills
            .iter()
            .map(|s| SkillView::of(&st.rt.ids, s))
            .collect(),
    }))
}

/// Adds a skill (admin).
#[utoipa::path(
    post,
    path = "/v1/skills",
    tag = "skills",
    operation_id = "create_skill",
    request_body = CreateSkill,
    responses(
        (status = 201, description = "Created", body = SkillView),
        (status = 409, description = "A skill of that name exists", body = crate::openapi::ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateSkill>,
) -> Result<(StatusCode, Json<SkillView>), ApiError> {
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
    Ok((StatusCode::CREATED, Json(SkillView::of(&st.rt.ids, &s))))
}

/// Removes a skill (admin).
#[utoipa::path(
    delete,
    path = "/v1/skills/{id}",
    tag = "skills",
    operation_id = "delete_skill",
    params(("id" = i64, Path, description = "The skill's id")),
    responses((status = 204, description = "Removed")),
)]
async fn remove(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Skill, shown)?;
    let a = audit(&p, Some(tenant), "skill.delete", "skill", id, Value::Null);
    if st.rt.store.delete_skill(tenant, id, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such skill"))
    }
}
