//! Retention: how long a tenant keeps its recordings' audio, overall and per queue or
//! campaign, and the sweep that applies it now (README, "Recordings service").
//!
//! ```text
//!   days that apply to a recording = its campaign's rule ?? its queue's rule ?? the tenant's
//!   days (none: kept until deleted); legal holds are kept whatever applies
//!   PUT with `queues` / `campaigns` replaces those rules; without them keeps them
//! ```

use std::collections::HashSet;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ADMINS, AppState, READERS, audit};
use crate::http::{ApiError, ApiJson, Auth, require_role, require_tenant};
use crate::ids::IdKind;
use crate::model::TenantId;
use crate::openapi::ErrorBody;
use crate::store::{RetentionRule, RetentionScope};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_retention, put_retention))
        .routes(routes!(sweep_retention))
}

/// Most rules of each kind a tenant may set.
const MAX_RULES: usize = 1000;
/// Longest retention: a hundred years.
const MAX_DAYS: i32 = 36_500;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Retention {
    /// Days a recording's audio is kept after it started (1 to 36500); `null` keeps it until
    /// deleted. Recordings on legal hold are kept whatever this says.
    #[schema(minimum = 1, maximum = 36500)]
    days: Option<i32>,
    /// Days for the recordings of these queues, longer or shorter than `days`. In a PUT:
    /// absent keeps the queue rules as they are, a list replaces them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 1000)]
    queues: Option<Vec<QueueRetention>>,
    /// Days for the recordings of these campaigns' dials; a campaign's rule goes before its
    /// queue's. In a PUT: absent keeps the campaign rules, a list replaces them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 1000)]
    campaigns: Option<Vec<CampaignRetention>>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct QueueRetention {
    queue_id: i64,
    #[schema(minimum = 1, maximum = 36500)]
    days: i32,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CampaignRetention {
    campaign_id: i64,
    #[schema(minimum = 1, maximum = 36500)]
    days: i32,
}

/// The tenant's recording retention: its days and every queue and campaign rule.
#[utoipa::path(
    get,
    path = "/v1/recording-retention",
    tag = "recordings",
    operation_id = "get_recording_retention",
    responses((status = 200, description = "The retention", body = Retention)),
)]
async fn get_retention(
    State(st): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Retention>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    Ok(Json(current(&st, tenant).await?))
}

async fn current(st: &AppState, tenant: TenantId) -> Result<Retention, ApiError> {
    let (days, rules) = st.rt.store.recording_retention(tenant).await?;
    let ids = &st.rt.ids;
    let queues = rules
        .iter()
        .filter(|r| r.scope == RetentionScope::Queue)
        .map(|r| QueueRetention {
            queue_id: ids.queue(r.id),
            days: r.days,
        })
        .collect();
    let campaigns = rules
        .iter()
        .filter(|r| r.scope == RetentionScope::Campaign)
        .map(|r| CampaignRetention {
            campaign_id: ids.campaign(r.id),
            days: r.days,
        })
        .collect();
    Ok(Retention {
        days,
        queues: Some(queues),
        campaigns: Some(campaigns),
    })
}

/// Sets the tenant's recording retention (admin, audited): its days and, when listed, its
/// queue and campaign rules. The sweeper deletes what is past it.
#[utoipa::path(
    put,
    path = "/v1/recording-retention",
    tag = "recordings",
    operation_id = "put_recording_retention",
    request_body = Retention,
    responses(
        (status = 200, description = "The retention as it now is", body = Retention),
        (status = 422, description = "Days out of range, an unknown or repeated queue or \
            campaign, too many rules", body = ErrorBody),
    ),
)]
async fn put_retention(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<Retention>,
) -> Result<Json<Retention>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    if body.days.is_some_and(|d| !(1..=MAX_DAYS).contains(&d)) {
        return Err(ApiError::unprocessable(
            "days",
            "must be 1 to 36500, or null",
        ));
    }
    let queues = match &body.queues {
        Some(list) => {
            let shown: Vec<(i64, i32)> = list.iter().map(|q| (q.queue_id, q.days)).collect();
            Some(rules(&st, tenant, RetentionScope::Queue, &shown).await?)
        }
        None => None,
    };
    let campaigns = match &body.campaigns {
        Some(list) => {
            let shown: Vec<(i64, i32)> = list.iter().map(|c| (c.campaign_id, c.days)).collect();
            Some(rules(&st, tenant, RetentionScope::Campaign, &shown).await?)
        }
        None => None,
    };
    // What is not given is kept: the stored rules of that kind go back in unchanged.
    let replaced = if queues.is_some() || campaigns.is_some() {
        let (_, stored) = st.rt.store.recording_retention(tenant).await?;
        let keep = |scope: RetentionScope| -> Vec<RetentionRule> {
            stored
                .iter()
                .filter(|r| r.scope == scope)
                .copied()
                .collect()
        };
        let mut all = queues.unwrap_or_else(|| keep(RetentionScope::Queue));
        all.extend(campaigns.unwrap_or_else(|| keep(RetentionScope::Campaign)));
        Some(all)
    } else {
        None
    };
    let entry = audit(
        &p,
        Some(tenant),
        "recording.retention",
        "tenant",
        tenant.0,
        json!({ "days": body.days, "queues": body.queues, "campaigns": body.campaigns }),
    );
    st.rt
        .store
        .set_recording_retention(tenant, body.days, replaced.as_deref(), &entry)
        .await?;
    Ok(Json(current(&st, tenant).await?))
}

/// The rules a PUT lists, in store ids, each checked: days in range, the queue or campaign
/// the tenant's, none twice. Errors name the field (`queues[2].days`).
async fn rules(
    st: &AppState,
    tenant: TenantId,
    scope: RetentionScope,
    shown: &[(i64, i32)],
) -> Result<Vec<RetentionRule>, ApiError> {
    let (list, id_field, kind) = match scope {
        RetentionScope::Queue => ("queues", "queue_id", IdKind::Queue),
        RetentionScope::Campaign => ("campaigns", "campaign_id", IdKind::Campaign),
    };
    if shown.len() > MAX_RULES {
        return Err(ApiError::unprocessable(
            list,
            format!("at most {MAX_RULES} rules"),
        ));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(shown.len());
    for (i, &(shown_id, days)) in shown.iter().enumerate() {
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(ApiError::unprocessable(
                format!("{list}[{i}].days"),
                "must be 1 to 36500",
            ));
        }
        let field = format!("{list}[{i}].{id_field}");
        let id = st.rt.ids.decode(kind, shown_id);
        let exists = match (id, scope) {
            (None, _) => false,
            (Some(id), RetentionScope::Queue) => st.rt.store.get_queue(tenant, id).await?.is_some(),
            (Some(id), RetentionScope::Campaign) => {
                st.rt.store.get_campaign(tenant, id).await?.is_some()
            }
        };
        let Some(id) = id.filter(|_| exists) else {
            return Err(ApiError::unprocessable(
                field,
                format!("no {} {shown_id}", kind.noun()),
            ));
        };
        if !seen.insert(id) {
            return Err(ApiError::unprocessable(field, "listed twice"));
        }
        out.push(RetentionRule { scope, id, days });
    }
    Ok(out)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Sweep {
    /// Delete (`true`), or only list what would be deleted (`false`, a dry run).
    apply: bool,
}

/// What the retention deleted (or would delete).
#[derive(Debug, Serialize, ToSchema)]
struct Swept {
    applied: bool,
    /// The recordings, oldest first (at most 1000 a call: call again for more).
    recordings: Vec<Uuid>,
}

/// Applies the tenant's retention now (admin): the recordings past it, not on legal hold,
/// are listed, and deleted (audited as `recording.retention_delete`) with `apply: true`. The
/// hourly sweep does the same for every tenant.
#[utoipa::path(
    post,
    path = "/v1/recording-retention/sweep",
    tag = "recordings",
    operation_id = "sweep_recording_retention",
    request_body = Sweep,
    responses((status = 200, description = "What was (or would be) deleted", body = Swept)),
)]
async fn sweep_retention(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<Sweep>,
) -> Result<Json<Swept>, ApiError> {
    require_role(&p, ADMINS)?;
    let tenant = require_tenant(&p)?;
    let swept = st
        .rt
        .objects
        .sweep_tenant(tenant, crate::store::now_ms(), body.apply, 1000)
        .await
        .map_err(|e| ApiError::unavailable(format!("retention not applied: {e}")))?;
    Ok(Json(Swept {
        applied: body.apply,
        recordings: swept.into_iter().map(|r| r.recording_id).collect(),
    }))
}
