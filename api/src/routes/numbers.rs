//! `/v1/numbers`: the tenant's number plan. Each number (E.164 `+15550100`, a DID or an
//! extension as dialled) routes to one flow; the default flow takes any number the plan does
//! not name (`/v1/numbers/default`). Numbers compare in the dialplan crate's light normal form
//! (spaces, `-`, `.`, `(`, `)` and a leading `+` ignored), and since a dialled number reaches
//! one tenant, a number is refused (409 naming `number`) when this or any other tenant routes
//! it already. A flow that a number or the default route uses cannot be deleted.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_dialplan::flow::{MAX_NUMBERS, normalise_number};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ADMINS, AppState, READERS, audit};
use crate::http::{ApiError, ApiJson, ApiPath, Auth, require_role, require_tenant};
use crate::ids::IdKind;
use crate::model::TenantId;
use crate::openapi::ErrorBody;
use crate::store::{NumberRow, StoreError};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_default, set_default, clear_default))
        .routes(routes!(get_one, replace, remove))
}

/// The longest number as written (separators included).
const MAX_NUMBER_CHARS: usize = 64;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NumberBody {
    /// As dialled: `+15550100`, `+1 (555) 010-0100`, `8001`; digits, `*` and `#` with an
    /// optional leading `+` (spaces, dashes, dots and parentheses are ignored), at most 32 keys.
    #[schema(min_length = 1, max_length = 64)]
    number: String,
    /// The flow's id.
    flow: i64,
}

#[derive(Debug, Serialize, ToSchema)]
struct NumberView {
    id: i64,
    /// As written.
    number: String,
    /// The form numbers compare in (what a dialled number is matched against).
    normalised: String,
    flow: i64,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl NumberView {
    fn of(st: &AppState, r: NumberRow) -> NumberView {
        NumberView {
            id: st.rt.ids.encode(IdKind::Number, r.id),
            number: r.number,
            normalised: r.number_key,
            flow: st.rt.ids.encode(IdKind::Flow, r.flow_id),
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
        }
    }
}

/// The number plan.
#[derive(Debug, Serialize, ToSchema)]
struct NumberPlanView {
    numbers: Vec<NumberView>,
    /// The flow for numbers the plan does not name; null: none (such calls are not routed by
    /// a flow).
    default_flow: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DefaultBody {
    /// The flow's id.
    flow: i64,
}

#[derive(Debug, Serialize, ToSchema)]
struct DefaultView {
    /// The default flow's id; null: none.
    flow: Option<i64>,
}

/// The tenant's flow behind a flow id from a body: 422 naming `field` if it has none such.
async fn flow_ref(
    st: &AppState,
    tenant: TenantId,
    field: &'static str,
    shown: i64,
) -> Result<i64, ApiError> {
    let missing = || ApiError::unprocessable(field, format!("no flow {shown}"));
    let id = st.rt.ids.decode(IdKind::Flow, shown).ok_or_else(missing)?;
    match st.rt.store.get_flow(tenant, id).await? {
        Some(_) => Ok(id),
        None => Err(missing()),
    }
}

/// The number's comparison form, or 422 naming `number`.
fn number_key(number: &str) -> Result<String, ApiError> {
    if number.chars().count() > MAX_NUMBER_CHARS {
        return Err(ApiError::unprocessable(
            "number",
            format!("longer than {MAX_NUMBER_CHARS} characters"),
        ));
    }
    normalise_number(number).ok_or_else(|| {
        ApiError::unprocessable(
            "number",
            "not a number: digits, * and # with an optional leading + (spaces, dashes, dots \
             and parentheses are ignored), at most 32 keys",
        )
    })
}

/// A number taken: by one of the tenant's own (named), or by another tenant (not named).
async fn taken(
    st: &AppState,
    tenant: TenantId,
    key: &str,
    except: Option<i64>,
) -> Result<(), ApiError> {
    let own = st.rt.store.list_numbers(tenant).await?;
    if let Some(n) = own
        .iter()
        .find(|n| n.number_key == key && Some(n.id) != except)
    {
        return Err(ApiError::conflict(format!(
            "the number is already routed, as number {} ({:?})",
            st.rt.ids.encode(IdKind::Number, n.id),
            n.number
        ))
        .with_field("number"));
    }
    Ok(())
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict { what: "number" } => {
            ApiError::conflict("the number is routed by another tenant").with_field("number")
        }
        other => other.into(),
    }
}

/// The tenant's number plan: its numbers and its default flow.
#[utoipa::path(
    get,
    path = "/v1/numbers",
    tag = "routing",
    operation_id = "list_numbers",
    responses((status = 200, description = "The tenant's number plan", body = NumberPlanView)),
)]
async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<NumberPlanView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let rows = st.rt.store.list_numbers(tenant).await?;
    let default_flow = st.rt.store.default_flow(tenant).await?;
    Ok(Json(NumberPlanView {
        numbers: rows.into_iter().map(|r| NumberView::of(&st, r)).collect(),
        default_flow: default_flow.map(|f| st.rt.ids.encode(IdKind::Flow, f)),
    }))
}

/// Routes a number to a flow (admin, audited).
#[utoipa::path(
    post,
    path = "/v1/numbers",
    tag = "routing",
    operation_id = "create_number",
    request_body = NumberBody,
    responses(
        (status = 201, description = "Created", body = NumberView),
        (status = 409, description = "The number is routed already (by this or another tenant)", body = ErrorBody),
        (status = 422, description = "Not a number, or no such flow", body = ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<NumberBody>,
) -> Result<(StatusCode, Json<NumberView>), ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let number = body.number.trim();
    let key = number_key(number)?;
    let _one_at_a_time = st.rt.config_writes.lock().await;
    let flow = flow_ref(&st, tenant, "flow", body.flow).await?;
    taken(&st, tenant, &key, None).await?;
    if st.rt.store.list_numbers(tenant).await?.len() >= MAX_NUMBERS {
        return Err(ApiError::unprocessable(
            "number",
            format!("a tenant routes at most {MAX_NUMBERS} numbers"),
        ));
    }
    let a = audit(
        &p,
        Some(tenant),
        "number.create",
        "number",
        "",
        json!({ "number": number, "flow": body.flow }),
    );
    let row = st
        .rt
        .store
        .create_number(tenant, number, &key, flow, &a)
        .await
        .map_err(store_error)?;
    Ok((StatusCode::CREATED, Json(NumberView::of(&st, row))))
}

/// One number.
#[utoipa::path(
    get,
    path = "/v1/numbers/{id}",
    tag = "routing",
    operation_id = "get_number",
    params(("id" = i64, Path, description = "The number's id")),
    responses(
        (status = 200, description = "The number", body = NumberView),
        (status = 404, description = "No such number", body = ErrorBody),
    ),
)]
async fn get_one(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<NumberView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Number, shown)?;
    let row = st
        .rt
        .store
        .get_number(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no number {shown}")))?;
    Ok(Json(NumberView::of(&st, row)))
}

/// Replaces a number and its flow (admin, audited); calls to it run the flow from the next one.
#[utoipa::path(
    put,
    path = "/v1/numbers/{id}",
    tag = "routing",
    operation_id = "replace_number",
    params(("id" = i64, Path, description = "The number's id")),
    request_body = NumberBody,
    responses(
        (status = 200, description = "The number as it now is", body = NumberView),
        (status = 404, description = "No such number", body = ErrorBody),
        (status = 409, description = "The number is routed already (by this or another tenant)", body = ErrorBody),
        (status = 422, description = "Not a number, or no such flow", body = ErrorBody),
    ),
)]
async fn replace(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<NumberBody>,
) -> Result<Json<NumberView>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Number, shown)?;
    let number = body.number.trim();
    let key = number_key(number)?;
    let _one_at_a_time = st.rt.config_writes.lock().await;
    if st.rt.store.get_number(tenant, id).await?.is_none() {
        return Err(ApiError::not_found(format!("no number {shown}")));
    }
    let flow = flow_ref(&st, tenant, "flow", body.flow).await?;
    taken(&st, tenant, &key, Some(id)).await?;
    let a = audit(
        &p,
        Some(tenant),
        "number.update",
        "number",
        id,
        json!({ "number": number, "flow": body.flow }),
    );
    let row = st
        .rt
        .store
        .update_number(tenant, id, number, &key, flow, &a)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format!("no number {shown}")))?;
    Ok(Json(NumberView::of(&st, row)))
}

/// Removes a number from the plan (admin, audited); calls to it then take the default flow.
#[utoipa::path(
    delete,
    path = "/v1/numbers/{id}",
    tag = "routing",
    operation_id = "delete_number",
    params(("id" = i64, Path, description = "The number's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such number", body = ErrorBody),
    ),
)]
async fn remove(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Number, shown)?;
    let a = audit(&p, Some(tenant), "number.delete", "number", id, Value::Null);
    if st.rt.store.delete_number(tenant, id, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no number {shown}")))
    }
}

/// The default flow: the one a number the plan does not name runs.
#[utoipa::path(
    get,
    path = "/v1/numbers/default",
    tag = "routing",
    operation_id = "get_default_flow",
    responses((status = 200, description = "The default flow (null: none)", body = DefaultView)),
)]
async fn get_default(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<DefaultView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let flow = st.rt.store.default_flow(tenant).await?;
    Ok(Json(DefaultView {
        flow: flow.map(|f| st.rt.ids.encode(IdKind::Flow, f)),
    }))
}

/// Sets the default flow (admin, audited).
#[utoipa::path(
    put,
    path = "/v1/numbers/default",
    tag = "routing",
    operation_id = "set_default_flow",
    request_body = DefaultBody,
    responses(
        (status = 200, description = "The default flow as it now is", body = DefaultView),
        (status = 422, description = "No such flow", body = ErrorBody),
    ),
)]
async fn set_default(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<DefaultBody>,
) -> Result<Json<DefaultView>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let _one_at_a_time = st.rt.config_writes.lock().await;
    let flow = flow_ref(&st, tenant, "flow", body.flow).await?;
    let a = audit(
        &p,
        Some(tenant),
        "number.default_set",
        "number",
        "default",
        json!({ "flow": body.flow }),
    );
    st.rt.store.set_default_flow(tenant, flow, &a).await?;
    Ok(Json(DefaultView {
        flow: Some(body.flow),
    }))
}

/// Removes the default flow (admin, audited): numbers the plan does not name are then not
/// routed by a flow.
#[utoipa::path(
    delete,
    path = "/v1/numbers/default",
    tag = "routing",
    operation_id = "clear_default_flow",
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No default flow was set", body = ErrorBody),
    ),
)]
async fn clear_default(State(st): State<AppState>, Auth(p): Auth) -> Result<StatusCode, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let a = audit(
        &p,
        Some(tenant),
        "number.default_clear",
        "number",
        "default",
        Value::Null,
    );
    if st.rt.store.clear_default_flow(tenant, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no default flow is set"))
    }
}
