//! `/v1/wallboard/settings`: the wallboard's tile thresholds, stored per tenant (readers read,
//! admins write). A write is audited and pushed to the tenant's screens at once as a
//! `wallboard.settings` live event.

use axum::Json;
use axum::extract::State;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ADMINS, AppState, READERS, audit};
use crate::http::{ApiError, ApiJson, Auth, LiveMessage, require_role, require_tenant};
use crate::wallboard::settings::WallboardSettings;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, put_settings))
}

/// The tenant's wallboard thresholds (the defaults until an admin stores some).
#[utoipa::path(
    get,
    path = "/v1/wallboard/settings",
    tag = "wallboard",
    operation_id = "get_wallboard_settings",
    responses((status = 200, description = "The thresholds in force", body = WallboardSettings)),
)]
async fn get_settings(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<WallboardSettings>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let stored = st.rt.store.wallboard_settings(tenant).await?;
    Ok(Json(WallboardSettings::from_stored(stored)))
}

/// Stores the tenant's wallboard thresholds (admin); a group left out takes its default.
#[utoipa::path(
    put,
    path = "/v1/wallboard/settings",
    tag = "wallboard",
    operation_id = "put_wallboard_settings",
    request_body = WallboardSettings,
    responses(
        (status = 200, description = "The thresholds now in force", body = WallboardSettings),
        (status = 422, description = "A threshold breaks a rule (`field` names it, e.g. `service_level_pct.red_below`): out of range, or amber and red in the wrong order", body = crate::openapi::ErrorBody),
    ),
)]
async fn put_settings(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<WallboardSettings>,
) -> Result<Json<WallboardSettings>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    body.validate()
        .map_err(|(field, message)| ApiError::unprocessable(field, message))?;
    let value = serde_json::to_value(body).map_err(ApiError::internal)?;
    let a = audit(
        &p,
        Some(tenant),
        "wallboard.settings",
        "wallboard",
        tenant.0,
        json!({ "settings": value }),
    );
    st.rt
        .store
        .put_wallboard_settings(tenant, &value, &a)
        .await?;
    st.rt.hub.publish(LiveMessage {
        tenant,
        kind: "wallboard.settings",
        data: value,
    });
    Ok(Json(body))
}
