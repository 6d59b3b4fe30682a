//! `/v1/campaigns`: CRUD, start/pause/resume/stop, contacts (CSV import, paging), attempts,
//! live statistics, the campaign's DNC list; `/v1/dnc` (the tenant's list) and
//! `/v1/calls/{id}/disposition` (agents).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_engine::agent::Activity;
use switchyard_engine::dialer::{CampaignControl, CampaignState, CampaignStats};
use switchyard_engine::{AgentId, CampaignId, Command, LegId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{
    AppState, NumberSight, READERS, SUPERVISORS, audit, change, engine_error, engine_id,
    page_limit, patched,
};
use crate::campaign_runtime::{self, send_campaign};
use crate::contacts::{self, ImportOptions, RowError};
use crate::http::auth::forbidden_for;
use crate::http::{
    ApiError, ApiJson, ApiPath, ApiQuery, Auth, acting_agent, require_role, require_tenant,
};
use crate::ids::{IdCodec, IdKind};
use crate::model::{Role, TenantId};
use crate::openapi::ErrorBody;
use crate::spec::check_name;
use crate::spec_campaign::CampaignSpec;
use crate::store::{CampaignRow, ContactRow, DncRow};

/// Who manages campaigns and DNC lists.
const MANAGERS: &[Role] = SUPERVISORS;
/// Who may post a disposition.
const DISPOSERS: &[Role] = &[Role::Admin, Role::Supervisor, Role::Agent];

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, update, remove))
        .routes(routes!(start))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(stop))
        .routes(routes!(list_contacts, import_contacts))
        .routes(routes!(list_attempts))
        .routes(routes!(stats))
        .routes(routes!(
            list_campaign_dnc,
            add_campaign_dnc,
            remove_campaign_dnc
        ))
        .routes(routes!(list_dnc, add_dnc, remove_dnc))
        .routes(routes!(disposition))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateCampaign {
    /// 1-100 characters, no control characters; unique within the tenant.
    #[schema(min_length = 1)]
    name: String,
    config: CampaignSpec,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PatchCampaign {
    name: Option<String>,
    /// A JSON merge patch (RFC 7386) over the campaign's config.
    #[schema(value_type = Option<Object>)]
    config: Option<Value>,
}

/// A campaign.
#[derive(Debug, Serialize, ToSchema)]
struct CampaignView {
    id: i64,
    name: String,
    /// `draft`, `running`, `paused` or `completed`.
    state: String,
    /// Every setting, defaults filled in.
    #[schema(value_type = CampaignSpec)]
    config: Value,
    created_at_ms: i64,
    updated_at_ms: i64,
}

fn view(ids: &IdCodec, row: &CampaignRow) -> CampaignView {
    CampaignView {
        id: ids.campaign(row.id),
        name: row.name.clone(),
        state: row.state.clone(),
        config: super::shown_config::<CampaignSpec>(ids, &row.config),
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct CampaignList {
    campaigns: Vec<CampaignView>,
}

/// The campaign's id in a path.
#[derive(Debug, IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
#[allow(dead_code)] // Describes the path parameter; `ApiPath<i64>` reads it.
struct CampaignPath(i64);

async fn owned(st: &AppState, tenant: TenantId, id: i64) -> Result<CampaignRow, ApiError> {
    st.rt
        .store
        .get_campaign(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such campaign"))
}

fn campaign_id(id: i64) -> Result<CampaignId, ApiError> {
    engine_id(id)
        .map(CampaignId)
        .ok_or_else(|| ApiError::not_found("no such campaign"))
}

/// Validates a spec for the tenant: every field, and a queue that is the tenant's.
async fn check_spec(
    st: &AppState,
    tenant: TenantId,
    spec: &CampaignSpec,
    name: &str,
) -> Result<(), ApiError> {
    check_name("name", name).map_err(|e| ApiError::unprocessable(e.field, e.message))?;
    spec.to_engine(1, name, &st.rt.store.tenant_grants(tenant).await?)?;
    if st.rt.store.get_queue(tenant, spec.queue).await?.is_none() {
        return Err(ApiError::unprocessable(
            "config.queue",
            "not one of your queues",
        ));
    }
    Ok(())
}

/// Pushes a stored campaign's config into the running engine (the engine's command only, see
/// [`change`]).
async fn apply(st: &AppState, tenant: TenantId, row: &CampaignRow) -> Result<(), ApiError> {
    let spec: CampaignSpec =
        serde_json::from_value(row.config.clone()).map_err(ApiError::internal)?;
    let cfg = spec.to_engine(row.id, &row.name, &st.rt.store.tenant_grants(tenant).await?)?;
    let id = cfg.id;
    st.rt.directory.set_campaign(id, tenant);
    send_campaign(&st.rt.engine, Command::UpsertCampaign(Box::new(cfg)))
        .await
        .map_err(engine_error)
}

/// The tenant's campaigns.
#[utoipa::path(
    get,
    path = "/v1/campaigns",
    tag = "campaigns",
    operation_id = "list_campaigns",
    responses((status = 200, description = "The tenant's campaigns", body = CampaignList)),
)]
async fn list(State(st): State<AppState>, Auth(p): Auth) -> Result<Json<CampaignList>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let rows = st.rt.store.list_campaigns(tenant).await?;
    Ok(Json(CampaignList {
        campaigns: rows.iter().map(|r| view(&st.rt.ids, r)).collect(),
    }))
}

/// Creates a campaign (admin, supervisor) as a draft; nothing is dialled until it starts.
#[utoipa::path(
    post,
    path = "/v1/campaigns",
    tag = "campaigns",
    operation_id = "create_campaign",
    request_body = CreateCampaign,
    responses(
        (status = 201, description = "Created, in draft", body = CampaignView),
        (status = 409, description = "A campaign of that name exists", body = ErrorBody),
        (status = 422, description = "A field is invalid (named in `field`)", body = ErrorBody),
    ),
)]
async fn create(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(mut body): ApiJson<CreateCampaign>,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    body.config = super::received(&st.rt.ids, body.config);
    require_role(&p, MANAGERS)?;
    let tenant = require_tenant(&p)?;
    let a = audit(
        &p,
        Some(tenant),
        "campaign.create",
        "campaign",
        "",
        json!({ "name": body.name }),
    );
    let row = change(
        &st,
        check_spec(&st, tenant, &body.config, &body.name),
        async |()| {
            let config = serde_json::to_value(&body.config).map_err(ApiError::internal)?;
            Ok(st
                .rt
                .store
                .create_campaign(tenant, &body.name, config, &a)
                .await?)
        },
        async |row: &CampaignRow| apply(&st, tenant, row).await,
        async |row: &CampaignRow| {
            if let Some(c) = engine_id(row.id) {
                st.rt.directory.remove_campaign(CampaignId(c));
            }
            let undo = audit(
                &p,
                Some(tenant),
                "campaign.delete",
                "campaign",
                row.id,
                json!({ "reason": "engine refused" }),
            );
            st.rt.store.delete_campaign(tenant, row.id, &undo).await?;
            Ok(())
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(&st.rt.ids, &row))))
}

/// One campaign.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}",
    tag = "campaigns",
    operation_id = "get_campaign",
    params(CampaignPath),
    responses((status = 200, description = "The campaign", body = CampaignView)),
)]
async fn read(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<CampaignView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Campaign, shown)?;
    Ok(Json(view(&st.rt.ids, &owned(&st, tenant, id).await?)))
}

/// Renames a campaign and/or merges a patch into its config; applied live.
#[utoipa::path(
    patch,
    path = "/v1/campaigns/{id}",
    tag = "campaigns",
    operation_id = "update_campaign",
    params(CampaignPath),
    request_body = PatchCampaign,
    responses(
        (status = 200, description = "The campaign as it is now", body = CampaignView),
        (status = 409, description = "A campaign of that name exists", body = ErrorBody),
        (status = 422, description = "A field is invalid (named in `field`)", body = ErrorBody),
    ),
)]
async fn update(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<PatchCampaign>,
) -> Result<Json<CampaignView>, ApiError> {
    require_role(&p, MANAGERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Campaign, shown)?;
    let validate = async {
        // Read under the lock: the row this change replaces (and may put back).
        let prev = owned(&st, tenant, id).await?;
        let spec: CampaignSpec = patched(&st.rt.ids, &prev.config, body.config.as_ref())?;
        let name = body.name.clone().unwrap_or_else(|| prev.name.clone());
        check_spec(&st, tenant, &spec, &name).await?;
        let config = serde_json::to_value(&spec).map_err(ApiError::internal)?;
        Ok((prev, config))
    };
    let a = audit(
        &p,
        Some(tenant),
        "campaign.update",
        "campaign",
        id,
        json!({ "name": body.name, "config": body.config }),
    );
    // The change's row is (the row written, the row it replaced).
    let (row, _) = change(
        &st,
        validate,
        async |(prev, config): (CampaignRow, Value)| {
            let row = st
                .rt
                .store
                .update_campaign(tenant, id, body.name.as_deref(), Some(config), &a)
                .await?
                .ok_or_else(|| ApiError::not_found("no such campaign"))?;
            Ok((row, prev))
        },
        async |(row, _): &(CampaignRow, CampaignRow)| apply(&st, tenant, row).await,
        async |(_, prev): &(CampaignRow, CampaignRow)| {
            let undo = audit(
                &p,
                Some(tenant),
                "campaign.update",
                "campaign",
                id,
                json!({ "reason": "engine refused", "restored": { "name": prev.name, "config": prev.config } }),
            );
            st.rt.store.restore_campaign(prev, &undo).await?;
            Ok(())
        },
    )
    .await?;
    Ok(Json(view(&st.rt.ids, &row)))
}

/// Removes a campaign with its contacts and its DNC list (history stays); lines in flight
/// are hung up, calls with agents finish.
#[utoipa::path(
    delete,
    path = "/v1/campaigns/{id}",
    tag = "campaigns",
    operation_id = "delete_campaign",
    params(CampaignPath),
    responses((status = 204, description = "Removed")),
)]
async fn remove(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, MANAGERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Campaign, shown)?;
    // Not between another change's write and its undo (see `change`).
    let _one_at_a_time = st.rt.config_writes.lock().await;
    owned(&st, tenant, id).await?;
    let c = campaign_id(id)?;
    send_campaign(&st.rt.engine, Command::RemoveCampaign(c))
        .await
        .map_err(engine_error)?;
    let a = audit(
        &p,
        Some(tenant),
        "campaign.delete",
        "campaign",
        id,
        Value::Null,
    );
    st.rt.store.delete_campaign(tenant, id, &a).await?;
    st.rt.directory.remove_campaign(c);
    Ok(StatusCode::NO_CONTENT)
}

async fn control(
    st: AppState,
    p: crate::model::Principal,
    shown: i64,
    control: CampaignControl,
) -> Result<Json<CampaignView>, ApiError> {
    require_role(&p, MANAGERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Campaign, shown)?;
    let row = owned(&st, tenant, id).await?;
    let from = CampaignState::from_name(&row.state).unwrap_or_default();
    let to = from.apply(control).ok_or_else(|| {
        ApiError::conflict(format!(
            "a {} campaign cannot {}",
            from.name(),
            match control {
                CampaignControl::Start => "start",
                CampaignControl::Pause => "pause",
                CampaignControl::Resume => "resume",
                CampaignControl::Stop => "stop",
            }
        ))
    })?;
    let c = campaign_id(id)?;
    send_campaign(
        &st.rt.engine,
        Command::ControlCampaign {
            campaign: c,
            control,
        },
    )
    .await
    .map_err(engine_error)?;
    let action = match control {
        CampaignControl::Start => "campaign.start",
        CampaignControl::Pause => "campaign.pause",
        CampaignControl::Resume => "campaign.resume",
        CampaignControl::Stop => "campaign.stop",
    };
    let a = audit(
        &p,
        Some(tenant),
        action,
        "campaign",
        id,
        json!({ "from": from.name(), "to": to.name() }),
    );
    let row = st
        .rt
        .store
        .set_campaign_state(tenant, id, to.name(), &a)
        .await?
        .ok_or_else(|| ApiError::not_found("no such campaign"))?;
    Ok(Json(view(&st.rt.ids, &row)))
}

/// Starts dialling (draft or paused -> running).
#[utoipa::path(
    post,
    path = "/v1/campaigns/{id}/start",
    tag = "campaigns",
    operation_id = "start_campaign",
    params(CampaignPath),
    responses(
        (status = 200, description = "Running", body = CampaignView),
        (status = 409, description = "The campaign is completed", body = ErrorBody),
    ),
)]
async fn start(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<CampaignView>, ApiError> {
    control(st, p, shown, CampaignControl::Start).await
}

/// Pauses dialling (running -> paused); calls in progress finish.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{id}/pause",
    tag = "campaigns",
    operation_id = "pause_campaign",
    params(CampaignPath),
    responses(
        (status = 200, description = "Paused", body = CampaignView),
        (status = 409, description = "The campaign is a draft or completed", body = ErrorBody),
    ),
)]
async fn pause(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<CampaignView>, ApiError> {
    control(st, p, shown, CampaignControl::Pause).await
}

/// Resumes dialling (paused -> running).
#[utoipa::path(
    post,
    path = "/v1/campaigns/{id}/resume",
    tag = "campaigns",
    operation_id = "resume_campaign",
    params(CampaignPath),
    responses(
        (status = 200, description = "Running", body = CampaignView),
        (status = 409, description = "The campaign is a draft or completed", body = ErrorBody),
    ),
)]
async fn resume(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<CampaignView>, ApiError> {
    control(st, p, shown, CampaignControl::Resume).await
}

/// Ends the campaign for good (-> completed).
#[utoipa::path(
    post,
    path = "/v1/campaigns/{id}/stop",
    tag = "campaigns",
    operation_id = "stop_campaign",
    params(CampaignPath),
    responses(
        (status = 200, description = "Completed", body = CampaignView),
        (status = 409, description = "The campaign is already completed", body = ErrorBody),
    ),
)]
async fn stop(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<CampaignView>, ApiError> {
    control(st, p, shown, CampaignControl::Stop).await
}

// ---------------------------------------------------------------------------------------------
// Contacts

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ImportQuery {
    /// Region of numbers written without `+` (ISO 3166 alpha-2, e.g. `US`).
    default_region: Option<String>,
}

/// What an import did. `accepted` counts the rows stored (new contacts and rows merged into
/// existing ones, DNC numbers included); `merged` and `dnc` are parts of it.
#[derive(Debug, Default, Serialize, ToSchema)]
struct ImportReport {
    accepted: u64,
    merged: u64,
    dnc: u64,
    rejected: u64,
    /// The first 1000 rejected rows (all are counted in `rejected`).
    errors: Vec<RowError>,
}

/// Imports contacts from a CSV body (streamed; at most 1,000,000 rows and 128 MiB).
///
/// A header row is required, with a `phone` (or `number`) column; an optional `timezone` (or
/// `tz`) column holds IANA zones, otherwise the zone is derived from the number. Every other
/// column is kept in the contact's `fields`. Numbers are normalised to E.164 (`default_region`
/// for numbers without `+`); a number already in the campaign merges into its contact (later
/// non-empty values win); numbers on the tenant's or the campaign's DNC list are stored as
/// `dnc`. Bad rows are reported with their line numbers and never stop the good ones. Over the
/// row or byte limit, the rows before it are kept and the answer is 413 with the report.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{id}/contacts",
    tag = "campaigns",
    operation_id = "import_contacts",
    params(CampaignPath, ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "A CSV file with a header row"),
    responses(
        (status = 200, description = "The import report", body = ImportReport),
        (status = 413, description = "Over 1,000,000 rows or 128 MiB: the rows before the limit were imported; `report` says what was", body = ErrorBody),
        (status = 415, description = "A body that is not CSV (`content-type` other than text/csv, application/csv or text/plain)", body = ErrorBody),
        (status = 422, description = "No header, or no phone column, or an unknown `default_region`", body = ErrorBody),
    ),
)]
async fn import_contacts(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_role(&p, MANAGERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Campaign, shown)?;
    check_csv_type(&headers)?;
    owned(&st, tenant, id).await?;
    let c = campaign_id(id)?;
    let default_region = match q.default_region.as_deref() {
        None | Some("") => None,
        Some(r) => Some(contacts::region(r).ok_or_else(|| {
            ApiError::unprocessable("default_region", "an ISO 3166 country code such as US")
        })?),
    };
    let (mut rx, parser) =
        contacts::parse(body.into_data_stream(), ImportOptions { default_region });
    let mut report = ImportReport::default();
    let mut to_engine: Vec<ContactRow> = Vec::new();
    let mut failed = None;
    while let Some(batch) = rx.recv().await {
        match st.rt.store.import_contacts(tenant, id, batch).await {
            Ok(done) => {
                report.accepted += done.inserted + done.merged;
                report.merged += done.merged;
                report.dnc += done.dnc;
                to_engine.extend(done.pending);
                if to_engine.len() >= campaign_runtime::ENGINE_BATCH {
                    campaign_runtime::add_contacts(
                        &st.rt.engine,
                        c,
                        std::mem::take(&mut to_engine),
                    )
                    .await;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(rx); // stops the parser if the store failed
    let summary = parser.await.map_err(ApiError::internal)?;
    campaign_runtime::add_contacts(&st.rt.engine, c, to_engine).await;
    report.rejected = summary.rejected;
    report.errors = summary.errors;
    let a = audit(
        &p,
        Some(tenant),
        "contacts.import",
        "campaign",
        id,
        json!({ "accepted": report.accepted, "merged": report.merged, "dnc": report.dnc, "rejected": report.rejected }),
    );
    let _ = st.rt.store.insert_audit(&a).await;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if let Some(f) = summary.fatal {
        if report.accepted == 0 {
            return Err(ApiError::unprocessable(
                f.field.unwrap_or_else(|| "body".into()),
                f.reason,
            ));
        }
        return Err(ApiError::bad_request(format!(
            "line {}: {} ({} rows were imported before it)",
            f.line, f.reason, report.accepted
        )));
    }
    if summary.too_many_rows || summary.too_many_bytes {
        let what = if summary.too_many_rows {
            format!("{} rows", contacts::MAX_ROWS)
        } else {
            format!("{} MiB", contacts::MAX_BYTES / (1024 * 1024))
        };
        let err = ApiError::payload_too_large();
        let mut body = err.body();
        body["error"]["message"] = json!(format!(
            "an import takes at most {what}: the rows before the limit were imported, the rest \
             were not read; split the file"
        ));
        body["error"]["field"] = json!("body");
        body["report"] = serde_json::to_value(&report).map_err(ApiError::internal)?;
        return Ok((StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response());
    }
    Ok(Json(report).into_response())
}

/// The import reads CSV: `text/csv` (or `application/csv`, `text/plain`), or no content type
/// at all (curl's `--data-binary` without `-H`). Any other type (a JSON document, a form) is
/// 415 before a byte is read: parsed as CSV it would be one odd header and rows of rejects.
fn check_csv_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if matches!(
        essence.as_str(),
        "text/csv" | "application/csv" | "text/plain"
    ) {
        Ok(())
    } else {
        Err(
            ApiError::unsupported_media_type("expected a CSV body with content-type text/csv")
                .with_field("content-type"),
        )
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ContactQuery {
    /// `pending`, `done` or `dnc`.
    status: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (default 100, at most 1000).
    limit: Option<u32>,
}

/// A campaign contact.
#[derive(Debug, Serialize, ToSchema)]
struct ContactView {
    id: i64,
    /// E.164.
    number: String,
    /// IANA zone.
    zone: String,
    /// The CSV's other columns.
    #[schema(value_type = Object)]
    fields: Value,
    /// `pending`, `done` or `dnc`.
    status: String,
    attempts: i32,
    /// Not dialled again before (Unix ms; 0 = no wait).
    next_attempt_at_ms: i64,
    last_outcome: Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
struct ContactPage {
    contacts: Vec<ContactView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// A page's position: the last row's id as the API shows it (`crate::ids`), read back.
fn cursor(ids: &IdCodec, kind: IdKind, c: Option<&str>) -> Result<i64, ApiError> {
    match c {
        None | Some("") => Ok(0),
        Some(c) => c
            .parse::<i64>()
            .ok()
            .and_then(|v| ids.decode(kind, v))
            .filter(|v| *v > 0)
            .ok_or_else(|| ApiError::unprocessable("cursor", "not a cursor from a previous page")),
    }
}

/// The cursor of the page after one whose last row is `last` (the store's id).
fn next_cursor(ids: &IdCodec, kind: IdKind, full: bool, last: Option<i64>) -> Option<String> {
    full.then(|| last.map(|id| ids.encode(kind, id).to_string()))
        .flatten()
}

/// The campaign's contacts in import order, paged, optionally of one status.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}/contacts",
    tag = "campaigns",
    operation_id = "list_contacts",
    params(CampaignPath, ContactQuery),
    responses(
        (status = 200, description = "A page of contacts. An agent key gets only the contact its agent is on a call with (or none); a read-only key gets masked numbers and no `fields`", body = ContactPage),
        (status = 422, description = "Unknown status, or a cursor not from a previous page", body = ErrorBody),
    ),
)]
async fn list_contacts(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ContactQuery>,
) -> Result<Json<ContactPage>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Campaign, shown)?;
    owned(&st, tenant, id).await?;
    if let Some(s) = q.status.as_deref()
        && !matches!(s, "pending" | "done" | "dnc")
    {
        return Err(ApiError::unprocessable(
            "status",
            "one of pending, done, dnc",
        ));
    }
    let after = cursor(&st.rt.ids, IdKind::Contact, q.cursor.as_deref())?;
    let limit = page_limit(q.limit, 100, 1000)?;
    let sight = NumberSight::of(&p);
    let (rows, next_cursor) = if let NumberSight::OwnAgent(own) = sight {
        // An agent key sees the one contact its agent is talking to in this campaign, whole,
        // and no other: an agent desktop needs the customer on the line, not the list.
        let rows = match own_contact(&st, own, id).await? {
            Some(contact) if contact > after => st
                .rt
                .store
                .list_contacts(tenant, id, q.status.as_deref(), contact - 1, 1)
                .await?
                .into_iter()
                .filter(|r| r.id == contact)
                .collect(),
            _ => Vec::new(),
        };
        (rows, None)
    } else {
        let rows = st
            .rt
            .store
            .list_contacts(tenant, id, q.status.as_deref(), after, limit)
            .await?;
        let next_cursor = next_cursor(
            &st.rt.ids,
            IdKind::Contact,
            rows.len() as i64 == limit,
            rows.last().map(|r| r.id),
        );
        (rows, next_cursor)
    };
    let masked = sight == NumberSight::Masked;
    Ok(Json(ContactPage {
        contacts: rows
            .into_iter()
            .map(|r| ContactView {
                id: st.rt.ids.contact(r.id),
                number: if masked {
                    crate::model::mask_number(&r.number)
                } else {
                    r.number
                },
                zone: r.zone,
                // The CSV's other columns are the customer's details (name, account...): a
                // read-only key gets none of them.
                fields: if masked { json!({}) } else { r.fields },
                status: r.status,
                attempts: r.attempts,
                next_attempt_at_ms: r.next_attempt_at_ms,
                last_outcome: r.last_outcome,
                created_at_ms: r.created_at_ms,
                updated_at_ms: r.updated_at_ms,
            })
            .collect(),
        next_cursor,
    }))
}

/// The contact of campaign `campaign` that the agent is talking to (or being connected to)
/// now, if any.
async fn own_contact(
    st: &AppState,
    agent: Option<i64>,
    campaign: i64,
) -> Result<Option<i64>, ApiError> {
    let (Some(agent), Some(campaign)) = (agent.and_then(engine_id), engine_id(campaign)) else {
        return Ok(None);
    };
    st.rt
        .engine
        .query(move |e| {
            let call = match e.agent_info(AgentId(agent))?.activity {
                Activity::OnCall(call, _) => call,
                _ => return None,
            };
            let c = e.call_info(call)?.campaign.as_ref()?;
            (c.campaign.0 == campaign)
                .then(|| i64::try_from(c.contact.0).ok())
                .flatten()
        })
        .await
        .map_err(engine_error)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (default 100, at most 1000).
    limit: Option<u32>,
}

/// One dial of a campaign.
#[derive(Debug, Serialize, ToSchema)]
struct AttemptView {
    id: i64,
    contact_id: i64,
    /// The dialled leg's UUID.
    leg: String,
    /// 1 for the contact's first dial.
    attempt: i32,
    /// `connected`, `abandoned`, `no-answer`, `busy`, `failed`, `machine`, `hung-up`,
    /// `cancelled`, `lost` (a restart found the dial gone); `dialing` while the dial is under
    /// way (written before its originate, replaced by its outcome).
    outcome: String,
    call_id: Option<i64>,
    agent_id: Option<i64>,
    dialed_at_ms: i64,
    answered_at_ms: Option<i64>,
    ended_at_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
struct AttemptPage {
    attempts: Vec<AttemptView>,
    next_cursor: Option<String>,
}

/// The campaign's dials, newest first, paged.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}/attempts",
    tag = "campaigns",
    operation_id = "list_attempts",
    params(CampaignPath, PageQuery),
    responses(
        (status = 200, description = "A page of attempts", body = AttemptPage),
        (status = 422, description = "A cursor not from a previous page", body = ErrorBody),
    ),
)]
async fn list_attempts(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<AttemptPage>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Campaign, shown)?;
    owned(&st, tenant, id).await?;
    let ids = &st.rt.ids;
    let before = cursor(ids, IdKind::Attempt, q.cursor.as_deref())?;
    let limit = page_limit(q.limit, 100, 1000)?;
    let rows = st.rt.store.list_attempts(tenant, id, before, limit).await?;
    let next_cursor = next_cursor(
        ids,
        IdKind::Attempt,
        rows.len() as i64 == limit,
        rows.last().map(|(i, _)| *i),
    );
    Ok(Json(AttemptPage {
        attempts: rows
            .into_iter()
            .map(|(i, r)| AttemptView {
                id: ids.encode(IdKind::Attempt, i),
                contact_id: ids.contact(r.contact_id),
                leg: r.leg,
                attempt: r.attempt,
                outcome: r.outcome,
                call_id: r.call_id.map(|c| ids.encode(IdKind::Call, c)),
                agent_id: r.agent_id.map(|a| ids.agent(a)),
                dialed_at_ms: r.dialed_at_ms,
                answered_at_ms: r.answered_at_ms,
                ended_at_ms: r.ended_at_ms,
            })
            .collect(),
        next_cursor,
    }))
}

/// A campaign's figures, live.
#[derive(Debug, Serialize, ToSchema)]
struct StatsView {
    campaign_id: i64,
    state: String,
    dialed: u64,
    connected: u64,
    no_answer: u64,
    busy: u64,
    failed: u64,
    machine: u64,
    abandoned: u64,
    /// Lines pacing hung up after the legal minimum ring because their person would have found
    /// no agent (included in `no_answer`; the contact is retried by the no-answer rule).
    released: u64,
    /// Abandoned / answered by a person, today (ledger day) and over 30 days.
    abandon_rate_day: f64,
    abandon_rate_30d: f64,
    /// Contacts not finished.
    contacts_remaining: u64,
    /// Lines in flight now.
    lines: u32,
    agents_staffed: u32,
    agents_busy: u32,
    /// Busy / staffed agents now.
    occupancy: f64,
    /// Progressive: `customer-first`, or `agent-first` when its agents are rung before the
    /// customer is dialled because they answer too slowly for the 2-second rule
    /// (`slow-agents`) or today's abandon rate is at the target (`over-target`), named by
    /// `brake`.
    pacing: String,
    #[schema(nullable)]
    brake: Option<String>,
    /// Whether the figures come from the running engine (else only the store's counts).
    live: bool,
}

/// The campaign's counters from the engine, and its remaining contacts.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}/stats",
    tag = "campaigns",
    operation_id = "get_campaign_stats",
    params(CampaignPath),
    responses((status = 200, description = "The campaign's figures as of now", body = StatsView)),
)]
async fn stats(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
) -> Result<Json<StatsView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Campaign, shown)?;
    let row = owned(&st, tenant, id).await?;
    let c = campaign_id(id)?;
    let live = st
        .rt
        .engine
        .query(move |e| campaign_runtime::engine_stats(e, c))
        .await
        .map_err(engine_error)?;
    let (s, is_live) = match live {
        Some(s) => (s, true),
        None => {
            let remaining = st.rt.store.count_pending(tenant, id).await?;
            (
                CampaignStats {
                    campaign: c,
                    state: CampaignState::from_name(&row.state).unwrap_or_default(),
                    contacts_remaining: u64::try_from(remaining).unwrap_or(0),
                    ..CampaignStats::default()
                },
                false,
            )
        }
    };
    Ok(Json(StatsView {
        campaign_id: shown,
        state: s.state.name().to_owned(),
        dialed: s.dialed,
        connected: s.connected,
        no_answer: s.no_answer,
        busy: s.busy,
        failed: s.failed,
        machine: s.machine,
        abandoned: s.abandoned,
        released: s.released,
        abandon_rate_day: s.abandon_rate_day,
        abandon_rate_30d: s.abandon_rate_30d,
        contacts_remaining: s.contacts_remaining,
        lines: s.lines,
        agents_staffed: s.agents_staffed,
        agents_busy: s.agents_busy,
        occupancy: s.occupancy,
        pacing: if s.pacing.is_empty() {
            "customer-first".to_owned()
        } else {
            s.pacing.to_owned()
        },
        brake: s.brake.map(|b| b.name().to_owned()),
        live: is_live,
    }))
}

// ---------------------------------------------------------------------------------------------
// Do-not-call

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddNumbers {
    /// 1-1000 numbers (E.164, or national with `default_region`).
    #[schema(min_items = 1, max_items = 1000)]
    numbers: Vec<String>,
    /// Region of numbers written without `+` (e.g. `US`).
    default_region: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Added {
    /// Numbers newly on the list (the rest were on it already).
    added: u64,
    /// The numbers as stored (E.164).
    numbers: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct DncView {
    id: i64,
    number: String,
    /// None: the tenant's list.
    campaign_id: Option<i64>,
    created_at_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
struct DncPage {
    numbers: Vec<DncView>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct NumberQuery {
    /// The number to take off the list (E.164).
    number: String,
}

fn dnc_numbers(body: &AddNumbers) -> Result<Vec<String>, ApiError> {
    if body.numbers.is_empty() || body.numbers.len() > 1000 {
        return Err(ApiError::unprocessable("numbers", "1-1000 numbers"));
    }
    let region = match body.default_region.as_deref() {
        None | Some("") => None,
        Some(r) => Some(contacts::region(r).ok_or_else(|| {
            ApiError::unprocessable("default_region", "an ISO 3166 country code such as US")
        })?),
    };
    let mut out = Vec::with_capacity(body.numbers.len());
    for (i, n) in body.numbers.iter().enumerate() {
        let pn = contacts::normalise(n, region)
            .map_err(|r| ApiError::unprocessable(format!("numbers[{i}]"), r))?;
        let e = contacts::e164(&pn);
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

fn dnc_page(ids: &IdCodec, rows: Vec<DncRow>, limit: i64, sight: NumberSight) -> DncPage {
    let next_cursor = next_cursor(
        ids,
        IdKind::Dnc,
        rows.len() as i64 == limit,
        rows.last().map(|r| r.id),
    );
    DncPage {
        numbers: rows
            .into_iter()
            .map(|r| DncView {
                id: ids.encode(IdKind::Dnc, r.id),
                // A DNC number is on no call: only admins and supervisors see it whole.
                number: sight.show(&r.number, None),
                campaign_id: r.campaign_id.map(|c| ids.campaign(c)),
                created_at_ms: r.created_at_ms,
            })
            .collect(),
        next_cursor,
    }
}

async fn add_numbers(
    st: &AppState,
    p: &crate::model::Principal,
    tenant: TenantId,
    campaign: Option<i64>,
    body: &AddNumbers,
) -> Result<Added, ApiError> {
    let numbers = dnc_numbers(body)?;
    let a = audit(
        p,
        Some(tenant),
        "dnc.add",
        if campaign.is_some() {
            "campaign"
        } else {
            "dnc"
        },
        campaign.map(|c| c.to_string()).unwrap_or_default(),
        json!({ "numbers": numbers }),
    );
    let added = st.rt.store.add_dnc(tenant, campaign, &numbers, &a).await?;
    let targets = match campaign {
        Some(c) => vec![campaign_id(c)?],
        None => st.rt.directory.tenant_campaigns(tenant),
    };
    for c in targets {
        send_campaign(
            &st.rt.engine,
            Command::BlockNumbers {
                campaign: c,
                numbers: numbers.clone(),
            },
        )
        .await
        .map_err(engine_error)?;
    }
    Ok(Added { added, numbers })
}

/// The tenant's do-not-call list (every campaign), paged.
#[utoipa::path(
    get,
    path = "/v1/dnc",
    tag = "dnc",
    operation_id = "list_dnc",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of numbers", body = DncPage),
        (status = 422, description = "A limit out of range, or a cursor not from a previous page", body = ErrorBody),
    ),
)]
async fn list_dnc(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<DncPage>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let after = cursor(&st.rt.ids, IdKind::Dnc, q.cursor.as_deref())?;
    let limit = page_limit(q.limit, 100, 1000)?;
    let rows = st.rt.store.list_dnc(tenant, None, after, limit).await?;
    Ok(Json(dnc_page(&st.rt.ids, rows, limit, NumberSight::of(&p))))
}

/// Adds numbers to the tenant's do-not-call list: pending contacts holding them in any
/// campaign are closed, and no campaign dials them again.
#[utoipa::path(
    post,
    path = "/v1/dnc",
    tag = "dnc",
    operation_id = "add_dnc",
    request_body = AddNumbers,
    responses(
        (status = 200, description = "On the list", body = Added),
        (status = 422, description = "A number that is not one (named in `field`)", body = ErrorBody),
    ),
)]
async fn add_dnc(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<AddNumbers>,
) -> Result<Json<Added>, ApiError> {
    require_role(&p, MANAGERS)?;
    let tenant = require_tenant(&p)?;
    Ok(Json(add_numbers(&st, &p, tenant, None, &body).await?))
}

/// Takes a number off the tenant's list (contacts it closed stay closed).
#[utoipa::path(
    delete,
    path = "/v1/dnc",
    tag = "dnc",
    operation_id = "delete_dnc",
    params(NumberQuery),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "The number is not on the list", body = ErrorBody),
        (status = 422, description = "Not a phone number", body = ErrorBody),
    ),
)]
async fn remove_dnc(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<NumberQuery>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, MANAGERS)?;
    let tenant = require_tenant(&p)?;
    remove_number(&st, &p, tenant, None, &q.number).await
}

async fn remove_number(
    st: &AppState,
    p: &crate::model::Principal,
    tenant: TenantId,
    campaign: Option<i64>,
    number: &str,
) -> Result<StatusCode, ApiError> {
    if number.chars().any(char::is_control) || number.len() > 64 {
        return Err(ApiError::unprocessable("number", "not a phone number"));
    }
    let a = audit(
        p,
        Some(tenant),
        "dnc.remove",
        if campaign.is_some() {
            "campaign"
        } else {
            "dnc"
        },
        campaign.map(|c| c.to_string()).unwrap_or_default(),
        json!({ "number": number }),
    );
    if st.rt.store.remove_dnc(tenant, campaign, number, &a).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("{number} is not on the list")))
    }
}

/// The campaign's own do-not-call list, paged.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{id}/dnc",
    tag = "campaigns",
    operation_id = "list_campaign_dnc",
    params(CampaignPath, PageQuery),
    responses(
        (status = 200, description = "A page of numbers", body = DncPage),
        (status = 422, description = "A limit out of range, or a cursor not from a previous page", body = ErrorBody),
    ),
)]
async fn list_campaign_dnc(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<DncPage>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Campaign, shown)?;
    owned(&st, tenant, id).await?;
    let after = cursor(&st.rt.ids, IdKind::Dnc, q.cursor.as_deref())?;
    let limit = page_limit(q.limit, 100, 1000)?;
    let rows = st.rt.store.list_dnc(tenant, Some(id), after, limit).await?;
    Ok(Json(dnc_page(&st.rt.ids, rows, limit, NumberSight::of(&p))))
}

/// Adds numbers to the campaign's do-not-call list.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{id}/dnc",
    tag = "campaigns",
    operation_id = "add_campaign_dnc",
    params(CampaignPath),
    request_body = AddNumbers,
    responses(
        (status = 200, description = "On the list", body = Added),
        (status = 422, description = "A number that is not one (named in `field`)", body = ErrorBody),
    ),
)]
async fn add_campaign_dnc(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiJson(body): ApiJson<AddNumbers>,
) -> Result<Json<Added>, ApiError> {
    require_role(&p, MANAGERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Campaign, shown)?;
    owned(&st, tenant, id).await?;
    Ok(Json(add_numbers(&st, &p, tenant, Some(id), &body).await?))
}

/// Takes a number off the campaign's list.
#[utoipa::path(
    delete,
    path = "/v1/campaigns/{id}/dnc",
    tag = "campaigns",
    operation_id = "delete_campaign_dnc",
    params(CampaignPath, NumberQuery),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "The number is not on the list", body = ErrorBody),
        (status = 422, description = "Not a phone number", body = ErrorBody),
    ),
)]
async fn remove_campaign_dnc(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(shown): ApiPath<i64>,
    ApiQuery(q): ApiQuery<NumberQuery>,
) -> Result<StatusCode, ApiError> {
    require_role(&p, MANAGERS)?;
    let tenant = require_tenant(&p)?;
    let id = super::stored_id(&st, IdKind::Campaign, shown)?;
    owned(&st, tenant, id).await?;
    remove_number(&st, &p, tenant, Some(id), &q.number).await
}

// ---------------------------------------------------------------------------------------------
// Dispositions

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DispositionBody {
    /// The outcome the agent chose (`sale`, `callback`, ...): 1-64 characters.
    #[schema(min_length = 1, max_length = 64)]
    code: String,
    /// Call the contact again then (RFC 3339).
    retry_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Disposed {
    id: Uuid,
    code: String,
    retry_at_ms: Option<u64>,
}

/// An agent's disposition of a campaign call in progress or in wrap-up: an agent key only of a
/// call its own agent is on, supervisors and admins of any of the tenant's calls.
#[utoipa::path(
    post,
    path = "/v1/calls/{id}/disposition",
    tag = "calls",
    operation_id = "dispose_call",
    params(("id" = Uuid, Path, description = "The call's id (its leg)")),
    request_body = DispositionBody,
    responses(
        (status = 202, description = "Recorded", body = Disposed),
        (status = 403, description = "A read-only key, an agent key on a call its agent is not on, or an agent key bound to no agent", body = ErrorBody),
        (status = 404, description = "No such campaign call of yours, or one that ended before the last 20,000 ended campaign calls", body = ErrorBody),
        (status = 422, description = "A code that is empty, too long, or not one of the campaign's `dispositions` when it lists them; a `retry_at` that is not an instant", body = ErrorBody),
    ),
)]
async fn disposition(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<DispositionBody>,
) -> Result<(StatusCode, Json<Disposed>), ApiError> {
    require_role(&p, DISPOSERS)?;
    let tenant = require_tenant(&p)?;
    // Before the lookup: an unbound agent key is refused whatever the call.
    let own = acting_agent(&p)?;
    let code = body.code.trim();
    if code.is_empty()
        || code.chars().count() > 64
        || code.chars().any(crate::model::is_forbidden_in_text)
    {
        return Err(ApiError::unprocessable(
            "code",
            "1-64 characters, no control characters",
        ));
    }
    let retry_at_ms = match body.retry_at.as_deref() {
        None => None,
        Some(s) => {
            let ts: jiff::Timestamp = s
                .parse()
                .map_err(|_| ApiError::unprocessable("retry_at", "an RFC 3339 instant"))?;
            Some(
                u64::try_from(ts.as_millisecond())
                    .map_err(|_| ApiError::unprocessable("retry_at", "must be after 1970"))?,
            )
        }
    };
    let leg = LegId(id.as_u128());
    let dir = st.rt.directory.clone();
    let (call, on_call, campaign) = st
        .rt
        .engine
        .query(move |e| {
            if let Some(c) = e.call_by_leg(leg)
                && let Some(info) = e.call_info(c)
            {
                let campaign = info.campaign.as_ref().map(|k| k.campaign);
                return (dir.queue_tenant(info.queue) == Some(tenant))
                    .then(|| (c, info.agent(), campaign));
            }
            // Dispositions usually come in wrap-up, after the customer hung up: the call is
            // gone from the live tables but the engine still remembers it.
            let (c, ended) = e.ended_campaign_call(leg)?;
            (dir.campaign_tenant(ended.campaign) == Some(tenant)).then_some((
                c,
                ended.agent,
                Some(ended.campaign),
            ))
        })
        .await
        .map_err(engine_error)?
        .ok_or_else(|| ApiError::not_found(format!("no campaign call {id} to dispose")))?;
    // After the lookup, so another tenant's call stays a 404. The agent a call belongs to is
    // the one talking on it (or calling the customer back), or the one who talked on it last;
    // a call still ringing or waiting belongs to no agent yet.
    if let Some(own) = own
        && on_call.map(|a| i64::from(a.0)) != Some(own)
    {
        return Err(forbidden_for());
    }
    // A campaign that lists its codes takes only those (the agent page offers the list; a
    // report grouped by code is only as good as the codes).
    if let Some(campaign) = campaign
        && let Some(c) = st
            .rt
            .store
            .get_campaign(tenant, i64::from(campaign.0))
            .await?
        && let Some(codes) = c.config.get("dispositions").and_then(|v| v.as_array())
        && !codes.is_empty()
        && !codes.iter().any(|v| v.as_str() == Some(code))
    {
        return Err(ApiError::unprocessable(
            "code",
            format!(
                "not one of the campaign's dispositions: {}",
                Value::from(codes.clone())
            ),
        ));
    }
    // Answered once its records (the contact's attempt and next call) are filed.
    st.rt
        .engine
        .command_filed(
            Command::Disposition {
                call,
                code: code.to_owned(),
                retry_at_unix_ms: retry_at_ms,
            },
            crate::runtime::FILED_WITHIN,
        )
        .await
        .map_err(engine_error)?;
    let a = audit(
        &p,
        Some(tenant),
        "call.disposition",
        "call",
        id,
        json!({ "code": code, "retry_at_ms": retry_at_ms }),
    );
    let _ = st.rt.store.insert_audit(&a).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(Disposed {
            id,
            code: code.to_owned(),
            retry_at_ms,
        }),
    ))
}
