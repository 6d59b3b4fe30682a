//! `/v1/display-tokens`: read-only credentials for wall screens (admin). A screen exchanges
//! its token at `POST /web/session` for a session that reads the live feed and what the
//! wallboard shows, and can never act. Shown once; revoking one ends its screens' sessions.

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
use crate::store::web::{DisplayToken, MAX_DISPLAY_LIFETIME_MS};
use crate::store::{StoreError, now_ms};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateDisplayToken {
    /// What the screen is (`2nd floor TV`): 1-200 characters, no control characters.
    #[schema(min_length = 1)]
    pub name: String,
    /// Seconds from now until the token stops working (1 to 31,622,400: 366 days). Give this
    /// or `expires_at_ms`, not both.
    pub expires_in_s: Option<i64>,
    /// When the token stops working (Unix milliseconds, in the future, at most 366 days away).
    pub expires_at_ms: Option<i64>,
}

/// A display token as listed: never the token itself.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DisplayTokenView {
    id: Uuid,
    name: String,
    /// The 12 hex characters after `syd_`, to recognise a token.
    prefix: String,
    created_at_ms: i64,
    expires_at_ms: i64,
    revoked_at_ms: Option<i64>,
    last_used_at_ms: Option<i64>,
}

impl DisplayTokenView {
    fn of(t: &DisplayToken) -> DisplayTokenView {
        DisplayTokenView {
            id: t.id,
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            created_at_ms: t.created_at_ms,
            expires_at_ms: t.expires_at_ms,
            revoked_at_ms: t.revoked_at_ms,
            last_used_at_ms: t.last_used_at_ms,
        }
    }
}

/// A display token just created, with the token itself: the only time it is ever shown.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedDisplayToken {
    #[serde(flatten)]
    view: DisplayTokenView,
    /// `syd_` and 64 hex characters: type it into the wall screen's sign-in at `/wallboard`.
    token: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct DisplayTokenList {
    display_tokens: Vec<DisplayTokenView>,
}

/// The tenant's display tokens, revoked and expired ones included (admin).
#[utoipa::path(
    get,
    path = "/v1/display-tokens",
    tag = "display-tokens",
    operation_id = "list_display_tokens",
    responses((status = 200, description = "The tenant's display tokens", body = DisplayTokenList)),
)]
async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<DisplayTokenList>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let tokens = st.rt.store.list_display_tokens(tenant).await?;
    Ok(Json(DisplayTokenList {
        display_tokens: tokens.iter().map(DisplayTokenView::of).collect(),
    }))
}

/// When a token asked for with `expires_in_s` or `expires_at_ms` stops, or the 422 naming
/// the field at fault.
fn expiry(body: &CreateDisplayToken, now: i64) -> Result<i64, ApiError> {
    match (body.expires_in_s, body.expires_at_ms) {
        (Some(_), Some(_)) => Err(ApiError::unprocessable(
            "expires_in_s",
            "give expires_in_s or expires_at_ms, not both",
        )),
        (None, None) => Err(ApiError::unprocessable(
            "expires_in_s",
            "a display token must expire: give expires_in_s or expires_at_ms",
        )),
        (Some(s), None) => {
            if !(1..=MAX_DISPLAY_LIFETIME_MS / 1000).contains(&s) {
                return Err(ApiError::unprocessable(
                    "expires_in_s",
                    format!("must be 1 to {} seconds", MAX_DISPLAY_LIFETIME_MS / 1000),
                ));
            }
            Ok(now.saturating_add(s * 1000))
        }
        (None, Some(at)) => Ok(at),
    }
}

/// Creates a display token (admin); the answer is the only time the token is shown.
#[utoipa::path(
    post,
    path = "/v1/display-tokens",
    tag = "display-tokens",
    operation_id = "create_display_token",
    request_body = CreateDisplayToken,
    responses(
        (status = 201, description = "Created", body = CreatedDisplayToken),
        (status = 422, description = "A field breaks a rule (`field` names it): `name` empty or too long, `expires_in_s` out of range or given with `expires_at_ms`, neither given, `expires_at_ms` not in the future or more than 366 days away", body = crate::openapi::ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<CreateDisplayToken>,
) -> Result<(StatusCode, Json<CreatedDisplayToken>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let expires_at_ms = expiry(&body, now_ms())?;
    let a = audit(
        &p,
        Some(tenant),
        "display_token.create",
        "display_token",
        "",
        json!({ "name": body.name, "expires_at_ms": expires_at_ms }),
    );
    let (listed, token) = st
        .rt
        .store
        .create_display_token(tenant, &body.name, expires_at_ms, &a)
        .await
        .map_err(|e| match e {
            StoreError::Invalid {
                field: "expires_at",
                message,
            } => ApiError::unprocessable(
                if body.expires_in_s.is_some() {
                    "expires_in_s"
                } else {
                    "expires_at_ms"
                },
                message,
            ),
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedDisplayToken {
            view: DisplayTokenView::of(&listed),
            token,
        }),
    ))
}

/// Revokes a display token at once (admin): the screens signed in with it are signed out.
#[utoipa::path(
    delete,
    path = "/v1/display-tokens/{id}",
    tag = "display-tokens",
    operation_id = "revoke_display_token",
    params(("id" = Uuid, Path, description = "The display token's id")),
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
        "display_token.revoke",
        "display_token",
        id,
        Value::Null,
    );
    if !st.rt.store.revoke_display_token(tenant, id, &a).await? {
        return Err(ApiError::not_found(format!("no display token {id}")));
    }
    // The token's sessions carry its id as their key id: their cached verifications go.
    st.kit.invalidate(|p| p.key_id == id);
    Ok(StatusCode::NO_CONTENT)
}
