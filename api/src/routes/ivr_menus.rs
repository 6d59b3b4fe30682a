//! `/v1/ivr-menus`: IVR menus stored apart from any flow (the dialplan crate's `Menu`), so that
//! several flows can share one. A flow names a stored menu by its API id as a string, in a
//! `menu` step or a `submenu` action (`{"kind": "menu", "id": "greet", "menu": "48213"}`), and
//! is validated (and will run) as if the menu were among its own; a flow's own menu may not
//! take a stored menu's id. A stored menu is checked alone when written (everything but the
//! steps it names, which belong to the flows that use it; its submenus must be stored menus),
//! and a replacement is checked again inside every flow that uses it: one that would break a
//! flow is refused with 409 naming the flow and the field. A menu that a flow or another menu
//! uses cannot be deleted (409 naming them).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_dialplan::DialplanError;
use switchyard_dialplan::flow::Menu;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::flows::{
    flow_uses_menu, flows_using, menu_names_menu, no_id_given, not_in_use, refused, stored_flow,
    stored_menu, tenant_refs,
};
use super::{ADMINS, AppState, READERS, audit};
use crate::http::{ApiError, ApiJson, ApiPath, Auth, require_role, require_tenant};
use crate::ids::IdKind;
use crate::model::TenantId;
use crate::openapi::ErrorBody;
use crate::spec::check_name;
use crate::store::MenuRow;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, replace, remove))
}

/// Most stored menus a tenant keeps.
const MAX_IVR_MENUS: usize = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MenuBody {
    /// 1-100 characters, unique within the tenant.
    #[schema(min_length = 1)]
    name: String,
    /// The menu, in mod_ivr's vocabulary: `greet_long`, `greet_short`, `invalid_sound`,
    /// `exit_sound`, `timeout_ms`, `inter_digit_timeout_ms`, `max_failures`, `max_timeouts`,
    /// `digit_len`, `terminators`, `entries` (`{keys: {exact | pattern | length}, action}`),
    /// `on_max_failures`, `on_max_timeouts`; an action is `{kind: step, step}`,
    /// `{kind: submenu, menu}` (a stored menu's id), `back`, `top` or `repeat`. No `id`: the
    /// menu is named by its own. README, "Inbound routing".
    #[schema(value_type = Object)]
    config: Menu,
}

#[derive(Debug, Serialize, ToSchema)]
struct MenuView {
    id: i64,
    name: String,
    #[schema(value_type = Object)]
    config: Value,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl MenuView {
    fn of(st: &AppState, r: MenuRow) -> MenuView {
        MenuView {
            id: st.rt.ids.encode(IdKind::IvrMenu, r.id),
            name: r.name,
            config: r.config,
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct MenuList {
    ivr_menus: Vec<MenuView>,
}

/// Checks a menu alone (as stored menu `id`, shown) and, when it replaces one, inside every
/// flow that uses it; gives what is stored: the document as given, without an id.
async fn checked(
    st: &AppState,
    tenant: TenantId,
    id: &str,
    name: &str,
    mut menu: Menu,
    replacing: bool,
) -> Result<Value, ApiError> {
    check_name("name", name).map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    no_id_given(&menu.id, "IVR menu")?;
    let mut refs = tenant_refs(st, tenant).await?;
    menu.validate_stored(id, &refs).map_err(refused)?;
    if replacing {
        menu.id = id.to_owned();
        refs.menus.insert(id.to_owned(), menu.clone());
        let ids = &st.rt.ids;
        for row in st.rt.store.list_flows(tenant).await? {
            let Some(flow) = stored_flow(ids, &row) else {
                continue;
            };
            let uses = flow
                .resolve_menus(&refs)
                .is_ok_and(|f| f.menus.iter().any(|m| m.id == id));
            if !uses {
                continue;
            }
            if let Err(DialplanError::Invalid { path, reason }) = flow.validate(&refs) {
                return Err(ApiError::conflict(format!(
                    "flow {} {:?} uses this menu and would be refused with it: {path}: {reason}",
                    flow.id, row.name
                ))
                .with_field("config"));
            }
        }
    }
    menu.id.clear();
    serde_json::to_value(&menu).map_err(|e| ApiError::internal(e.to_string()))
}

/// The tenant's stored IVR menus.
#[utoipa::path(
    get,
    path = "/v1/ivr-menus",
    tag = "routing",
    operation_id = "list_ivr_menus",
    responses((status = 200, description = "The tenant's stored IVR menus", body = MenuList)),
)]
async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<MenuList>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let rows = st.rt.store.list_menus(tenant).await?;
    Ok(Json(MenuList {
        ivr_menus: rows.into_iter().map(|r| MenuView::of(&st, r)).collect(),
    }))
}

/// Adds a stored IVR menu (admin, audited).
#[utoipa::path(
    post,
    path = "/v1/ivr-menus",
    tag = "routing",
    operation_id = "create_ivr_menu",
    request_body = MenuBody,
    responses(
        (status = 201, description = "Created", body = MenuView),
        (status = 409, description = "A menu of that name exists", body = ErrorBody),
        (status = 422, description = "The menu refused, with the field's path", body = ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<MenuBody>,
) -> Result<(StatusCode, Json<MenuView>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let _one_at_a_time = st.rt.config_writes.lock().await;
    // Not yet numbered: nothing names it, and it cannot name itself.
    let config = checked(&st, tenant, "new", &body.name, body.config, false).await?;
    if st.rt.store.list_menus(tenant).await?.len() >= MAX_IVR_MENUS {
        return Err(ApiError::unprocessable(
            "name",
            format!("a tenant keeps at most {MAX_IVR_MENUS} IVR menus"),
        ));
    }
    let a = audit(
        &p,
        Some(tenant),
        "ivr_menu.create",
        "ivr_menu",
        "",
        json!({ "name": body.name, "config": config }),
    );
    let row = st
        .rt
        .store
        .create_menu(tenant, &body.name, config, &a)
        .await?;
    Ok((StatusCode::CREATED, Json(MenuView::of(&st, row))))
}

/// One stored IVR menu.
#[utoipa::path(
    get,
    path = "/v1/ivr-menus/{id}",
    tag = "routing",
    operation_id = "get_ivr_menu",
    params(("id" = i64, Path, description = "The menu's id")),
    responses(
        (status = 200, description = "The menu", body = MenuView),
        (status = 404, description = "No such menu", body = ErrorBody),
    ),
)]
async fn get_one(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<MenuView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::IvrMenu, shown)?;
    let row = st
        .rt
        .store
        .get_menu(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no IVR menu {shown}")))?;
    Ok(Json(MenuView::of(&st, row)))
}

/// Replaces a stored menu's name and document (admin, audited); checked again inside every
/// flow that uses it, which run it from their next call.
#[utoipa::path(
    put,
    path = "/v1/ivr-menus/{id}",
    tag = "routing",
    operation_id = "replace_ivr_menu",
    params(("id" = i64, Path, description = "The menu's id")),
    request_body = MenuBody,
    responses(
        (status = 200, description = "The menu as it now is", body = MenuView),
        (status = 404, description = "No such menu", body = ErrorBody),
        (status = 409, description = "Another menu has that name, or a flow that uses this one would be refused with it", body = ErrorBody),
        (status = 422, description = "The menu refused, with the field's path", body = ErrorBody),
    ),
)]
async fn replace(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<MenuBody>,
) -> Result<Json<MenuView>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::IvrMenu, shown)?;
    let _one_at_a_time = st.rt.config_writes.lock().await;
    if st.rt.store.get_menu(tenant, id).await?.is_none() {
        return Err(ApiError::not_found(format!("no IVR menu {shown}")));
    }
    let config = checked(
        &st,
        tenant,
        &shown.to_string(),
        &body.name,
        body.config,
        true,
    )
    .await?;
    let a = audit(
        &p,
        Some(tenant),
        "ivr_menu.update",
        "ivr_menu",
        id,
        json!({ "name": body.name, "config": config }),
    );
    let row = st
        .rt
        .store
        .update_menu(tenant, id, &body.name, config, &a)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no IVR menu {shown}")))?;
    Ok(Json(MenuView::of(&st, row)))
}

/// Removes a stored menu (admin, audited); 409 naming the flows and menus that use it.
#[utoipa::path(
    delete,
    path = "/v1/ivr-menus/{id}",
    tag = "routing",
    operation_id = "delete_ivr_menu",
    params(("id" = i64, Path, description = "The menu's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such menu", body = ErrorBody),
        (status = 409, description = "A flow or another menu uses it", body = ErrorBody),
    ),
)]
async fn remove(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::IvrMenu, shown)?;
    let _one_at_a_time = st.rt.config_writes.lock().await;
    let me = shown.to_string();
    let mut users = flows_using(&st, tenant, |f| flow_uses_menu(f, &me)).await?;
    let ids = &st.rt.ids;
    users.extend(
        st.rt
            .store
            .list_menus(tenant)
            .await?
            .iter()
            .filter(|r| r.id != id)
            .filter(|r| stored_menu(ids, r).is_some_and(|m| menu_names_menu(&m, &me)))
            .map(|r| {
                format!(
                    "IVR menu {} {:?}",
                    ids.encode(IdKind::IvrMenu, r.id),
                    r.name
                )
            }),
    );
    not_in_use("IVR menu", users)?;
    let a = audit(
        &p,
        Some(tenant),
        "ivr_menu.delete",
        "ivr_menu",
        id,
        Value::Null,
    );
    if st.rt.store.delete_menu(tenant, id, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no IVR menu {shown}")))
    }
}
