//! `POST /v1/agents/{id}/sign-in-links`: an admin makes a short-lived, single-use link that
//! signs an agent in on `/agent` without typing a key. The code rides in the URL's fragment
//! (`/agent#code=...`), which browsers never send, so it reaches no server or proxy log; the
//! page posts it to `/web/session` and takes it out of the address bar. The store keeps only
//! its SHA-256; it works once, until it expires (10 minutes by default, 24 hours at most),
//! and goes with the agent.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ADMINS, AppState, audit};
use crate::http::{ApiError, ApiJson, ApiPath, Auth, require_role, require_tenant};
use crate::ids::IdKind;
use crate::openapi::ErrorBody;
use crate::store::{StoreError, now_ms};

/// A link's life when the admin names none.
pub const DEFAULT_LINK_TTL_S: i64 = 10 * 60;
/// The longest life a link may have.
pub const MAX_LINK_TTL_S: i64 = 24 * 3600;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateLink {
    /// Seconds the link works (60-86400; default 600).
    #[schema(minimum = 60, maximum = 86400)]
    expires_in_s: Option<i64>,
}

/// A link just made: `url` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
struct LinkMade {
    id: Uuid,
    agent_id: i64,
    /// The page's path with the code in its fragment (`/agent#code=...`): prefix it with the
    /// server's address and hand it to the agent. Works once.
    url: String,
    /// When it stops working (Unix milliseconds).
    expires_at_ms: i64,
}

/// Makes a single-use sign-in link for one of the tenant's agents (admin).
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/sign-in-links",
    tag = "agents",
    operation_id = "create_agent_sign_in_link",
    params(("id" = i64, Path, description = "The agent")),
    request_body = CreateLink,
    responses(
        (status = 201, description = "Made; the URL is shown this once", body = LinkMade),
        (status = 403, description = "Not an admin key", body = ErrorBody),
        (status = 404, description = "No such agent of the tenant's", body = ErrorBody),
        (status = 422, description = "`expires_in_s` outside 60-86400", body = ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<CreateLink>,
) -> Result<(StatusCode, Json<LinkMade>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let ttl = body.expires_in_s.unwrap_or(DEFAULT_LINK_TTL_S);
    if !(60..=MAX_LINK_TTL_S).contains(&ttl) {
        return Err(ApiError::unprocessable(
            "expires_in_s",
            "60 to 86400 seconds",
        ));
    }
    // An id that decodes to nothing is no agent of anyone's: 404 like another tenant's.
    let id = st
        .rt
        .ids
        .decode(IdKind::Agent, shown)
        .ok_or_else(|| ApiError::not_found("no such agent"))?;
    let expires_at_ms = now_ms().saturating_add(ttl * 1000);
    let link = match st
        .rt
        .store
        .create_sign_in_link(tenant, id, expires_at_ms)
        .await
    {
        Ok(link) => link,
        Err(StoreError::NotFound) => return Err(ApiError::not_found("no such agent")),
        Err(e) => return Err(e.into()),
    };
    let a = audit(
        &p,
        Some(tenant),
        "agent.sign_in_link",
        "agent",
        id,
        json!({ "link_id": link.id, "expires_at_ms": expires_at_ms }),
    );
    let _ = st.rt.store.insert_audit(&a).await;
    Ok((
        StatusCode::CREATED,
        Json(LinkMade {
            id: link.id,
            agent_id: shown,
            url: format!("/agent#code={}", link.code),
            expires_at_ms,
        }),
    ))
}
