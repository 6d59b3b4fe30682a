//! The resource routes of DESIGN.md §7: queues, agents, skills, calls, supervisor actions,
//! API keys, the audit log and platform-admin tenants. Every handler authenticates ([`Auth`]), checks the
//! key's role, scopes everything to the key's tenant (another tenant's object is a 404, never
//! a 403), validates the whole request before writing anything, writes configuration and its
//! audit entry in one transaction, and then applies the change to the running engine.

pub mod access;
mod agents;
mod analytics;
mod audit;
mod calls;
mod campaigns;
mod display_tokens;
mod export;
pub(crate) mod flows;
mod ivr_menus;
mod keys;
mod numbers;
mod queues;
mod recording_media;
mod recording_retention;
mod recording_search;
mod recordings;
mod schedules;
mod sign_in_links;
mod skills;
mod tenants;
mod voicemail;
mod wallboard;
pub mod web;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use serde_json::Value;
use switchyard_engine::EngineError;
use switchyard_engine::driver::DriverError;
use utoipa_axum::router::OpenApiRouter;

use crate::http::{ApiError, HttpKit};
use crate::ids::{IdCodec, IdKind};
use crate::model::{Principal, Role, TenantId, mask_number};
use crate::runtime::Runtime;
use crate::spec::{ConfigIds, FieldError};
use crate::store::{AuditEntry, StoreError};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub rt: Arc<Runtime>,
    pub kit: HttpKit,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// All resource routes (to be wrapped by `http::layers`).
pub fn router(state: AppState) -> Router {
    let (router, _doc) = openapi_router().split_for_parts();
    router
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(state, inbound_applied))
}

/// Where a caller goes is applied before a write that changes it is answered: after a
/// successful write to numbers, flows, IVR menus or schedules, the driver gets the rebuilt
/// number plan (a failure to rebuild is logged; the write stands and the next one retries).
async fn inbound_applied(
    axum::extract::State(st): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let routing = req.method() != axum::http::Method::GET
        && ["/v1/numbers", "/v1/flows", "/v1/ivr-menus", "/v1/schedules"]
            .iter()
            .any(|p| req.uri().path().starts_with(p));
    let response = next.run(req).await;
    if routing
        && response.status().is_success()
        && let Err(e) = st.rt.refresh_inbound().await
    {
        tracing::warn!(error = %e, "the number plan could not be rebuilt after a write");
    }
    response
}

/// The resource routes with their OpenAPI description: every handler is mounted through
/// `utoipa_axum::routes!`, which takes its method and path from the handler's
/// `#[utoipa::path]`, so what is served and what is documented cannot drift apart.
pub fn openapi_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(queues::routes())
        .merge(agents::routes())
        .merge(skills::routes())
        .merge(calls::routes())
        .merge(recordings::routes())
        .merge(recording_media::routes())
        .merge(recording_retention::routes())
        .merge(schedules::routes())
        .merge(ivr_menus::routes())
        .merge(flows::routes())
        .merge(numbers::routes())
        .merge(webhooks::routes())
        .merge(recording_search::routes())
        .merge(voicemail::routes())
        .merge(campaigns::routes())
        .merge(keys::routes())
        .merge(display_tokens::routes())
        .merge(sign_in_links::routes())
        .merge(tenants::routes())
        .merge(audit::routes())
        .merge(export::routes())
        .merge(analytics::routes())
        .merge(wallboard::routes())
}

/// Roles allowed to read.
pub(crate) const READERS: &[Role] = &[Role::Admin, Role::Supervisor, Role::Agent, Role::ReadOnly];
/// Roles allowed to supervise (pause, assign, eavesdrop, set agent states).
pub(crate) const SUPERVISORS: &[Role] = &[Role::Admin, Role::Supervisor];
/// Roles allowed to change configuration.
pub(crate) const ADMINS: &[Role] = &[Role::Admin];

/// What a 503 for an unavailable database tells clients to wait: a database restart or a
/// failover takes seconds, and a shorter hint only multiplies requests that fail.
pub(crate) const DATABASE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound => ApiError::not_found("no such object"),
            StoreError::Conflict { what } => ApiError::conflict(format!("{what} already exists")),
            StoreError::InUse { what, campaigns } => {
                ApiError::conflict(format!("the {what} is in use by campaigns {campaigns:?}"))
            }
            StoreError::Invalid { field, message } => ApiError::unprocessable(field, message),
            StoreError::Unavailable { .. } | StoreError::JournalFull { .. } => {
                // Logged at WARN (not as an internal error): an outage is not a bug, and the
                // client is told when to come back.
                tracing::warn!(error = %e, "answered 503: the database is unavailable");
                ApiError::unavailable("the database is unavailable; retry after Retry-After")
                    .with_retry_after(DATABASE_RETRY_AFTER)
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> ApiError {
        ApiError::unprocessable(format!("config.{}", e.field), e.message)
    }
}

/// A key-creation failure, with the store's field named as the API names it.
pub(crate) fn key_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Invalid {
            field: "expires_at",
            message,
        } => ApiError::unprocessable("expires_at_ms", message),
        other => other.into(),
    }
}

/// The one path of a configuration change (create or update of a queue, an agent, a queue
/// membership, a campaign): `validate`, `write` the row with its audit entry (one
/// transaction), `apply` it to the engine; when the engine refuses, `undo` the write (delete
/// what was created, put back what was replaced, each with its own audit entry: the log keeps
/// both the change and its undoing) and answer the engine's refusal (a JSON error naming the
/// field, see [`engine_error`]).
///
/// Changes run one at a time ([`Runtime::config_writes`]), validation included: an undo then
/// puts back exactly what this change replaced, never a row another change wrote since, and no
/// check reads a row that is about to be undone. `apply` must be only the engine's command:
/// whatever follows an accepted change (routes, the directory) comes after this returns, so a
/// failure there never undoes what the engine runs.
pub(crate) async fn change<V, R>(
    st: &AppState,
    validate: impl Future<Output = Result<V, ApiError>>,
    write: impl AsyncFnOnce(V) -> Result<R, ApiError>,
    apply: impl AsyncFnOnce(&R) -> Result<(), ApiError>,
    undo: impl AsyncFnOnce(&R) -> Result<(), ApiError>,
) -> Result<R, ApiError> {
    let _one_at_a_time = st.rt.config_writes.lock().await;
    let checked = validate.await?;
    let row = write(checked).await?;
    match apply(&row).await {
        Ok(()) => Ok(row),
        Err(refused) => {
            if let Err(e) = undo(&row).await {
                // The store keeps a change the engine does not run; the next start loads the
                // stored row (and logs it if the engine refuses it then).
                tracing::error!(
                    error = ?e,
                    refusal = ?refused,
                    "could not undo a configuration change the engine refused"
                );
            }
            Err(refused)
        }
    }
}

/// The engine's verdict on a command, as an HTTP answer.
pub(crate) fn engine_error(e: DriverError) -> ApiError {
    match e {
        DriverError::Engine(e) => match e {
            // The engine names its own numbers, which the API never shows (`crate::ids`).
            EngineError::UnknownQueue(_) => ApiError::not_found("no such queue"),
            EngineError::UnknownAgent(_) => ApiError::not_found("no such agent"),
            EngineError::UnknownCall(_) => ApiError::not_found("no such call"),
            EngineError::UnknownCampaign(_) => ApiError::not_found("no such campaign"),
            EngineError::CallNotWaiting { .. } => {
                ApiError::conflict("the call is not waiting in a queue")
            }
            EngineError::CampaignState { control, state, .. } => {
                ApiError::conflict(format!("the campaign cannot {control} while {state}"))
            }
            EngineError::AgentNotFree { why, .. } => {
                ApiError::conflict(format!("the agent cannot take an offer now: {why}"))
            }
            EngineError::AgentNotOnCall { .. } => ApiError::conflict("the agent is not on a call"),
            EngineError::CallNotTalking { .. } => {
                ApiError::conflict("the call is not in conversation with an agent")
            }
            EngineError::NotAgentsCall { .. } => {
                ApiError::forbidden("the call is not this agent's")
            }
            EngineError::Recording { why, .. } => ApiError::conflict(why),
            EngineError::NotReserved { agent, .. } => ApiError::conflict(match agent {
                Some(_) => "the call is not a preview reserved to this agent",
                None => "the call is not a preview reserved to an agent",
            }),
            EngineError::InvalidConfig { field, message } => {
                ApiError::unprocessable(format!("config.{field}"), message)
            }
            other => ApiError::internal(other),
        },
        DriverError::Stopped => ApiError::unavailable("the engine is stopping"),
        other => ApiError::internal(other),
    }
}

pub(crate) fn audit<'a>(
    p: &Principal,
    tenant: Option<TenantId>,
    action: &'a str,
    kind: &'a str,
    id: impl ToString,
    detail: Value,
) -> AuditEntry<'a> {
    AuditEntry {
        tenant,
        key_id: Some(p.key_id),
        action,
        object_kind: kind,
        object_id: id.to_string(),
        detail,
    }
}

/// A stored config as the API shows it: its ids the API's (`crate::ids`). A config that no
/// longer reads as its spec is shown as stored (boot reports it).
pub(crate) fn shown_config<T>(ids: &IdCodec, stored: &Value) -> Value
where
    T: serde::de::DeserializeOwned + serde::Serialize + ConfigIds,
{
    let Ok(mut spec) = serde_json::from_value::<T>(stored.clone()) else {
        return stored.clone();
    };
    spec.map_ids(&|kind, id| shown_ref(ids, kind, id));
    serde_json::to_value(&spec).unwrap_or_else(|_| stored.clone())
}

/// A config received from the API, its ids made the store's.
pub(crate) fn received<T: ConfigIds>(ids: &IdCodec, mut spec: T) -> T {
    spec.map_ids(&|kind, id| stored_ref(ids, kind, id));
    spec
}

/// A stored config with an optional merge patch applied, read back as its spec: the shared
/// first half of every PATCH. The patch names ids as the API shows them.
pub(crate) fn patched<T>(
    ids: &IdCodec,
    stored: &Value,
    patch: Option<&Value>,
) -> Result<T, ApiError>
where
    T: serde::de::DeserializeOwned + serde::Serialize + ConfigIds,
{
    let mut config = shown_config::<T>(ids, stored);
    if let Some(patch) = patch {
        if !patch.is_object() {
            return Err(ApiError::unprocessable(
                "config",
                "a JSON object (merge patch)",
            ));
        }
        merge_patch(&mut config, patch);
    }
    let spec: T = serde_json::from_value(config)
        .map_err(|e| ApiError::unprocessable("config", e.to_string()))?;
    Ok(received(ids, spec))
}

/// RFC 7386 JSON merge patch: `patch`'s members replace `target`'s, `null` removes.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Every skill id a queue needs or an agent has must be one of the tenant's skills: the engine
/// would take any id and simply never match it, so a typo (or another tenant's skill) would
/// strand every caller of a queue. `field` is the list's name (`config.skills`); the error
/// names the entry (`config.skills[2].skill`).
pub(crate) async fn check_skills(
    st: &AppState,
    tenant: TenantId,
    field: &str,
    ids: impl Iterator<Item = u32>,
) -> Result<(), ApiError> {
    let ids: Vec<u32> = ids.collect();
    if ids.is_empty() {
        return Ok(());
    }
    let known: Vec<i64> = st
        .rt
        .store
        .list_skills(tenant)
        .await?
        .iter()
        .map(|s| s.id)
        .collect();
    match ids
        .iter()
        .enumerate()
        .find(|(_, id)| !known.contains(&i64::from(**id)))
    {
        Some((i, _)) => Err(ApiError::unprocessable(
            format!("{field}[{i}].skill"),
            "not one of your skills",
        )),
        None => Ok(()),
    }
}

/// How much of a caller's or contact's number a key sees (README, "Roles and personal data"):
/// admins and supervisors all of it; an agent key the numbers of calls its own agent is on or
/// took, masked otherwise; a read-only key only masked numbers ([`mask_number`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumberSight {
    Full,
    OwnAgent(Option<i64>),
    Masked,
}

impl NumberSight {
    pub(crate) fn of(p: &Principal) -> NumberSight {
        match p.role {
            Role::Admin | Role::Supervisor | Role::PlatformAdmin => NumberSight::Full,
            Role::Agent => NumberSight::OwnAgent(p.agent_id),
            Role::ReadOnly => NumberSight::Masked,
        }
    }

    /// `number` as this key sees it, on a call that `agent` is (or was) on.
    pub(crate) fn show(self, number: &str, agent: Option<i64>) -> String {
        match self {
            NumberSight::Full => number.to_owned(),
            NumberSight::OwnAgent(Some(own)) if agent == Some(own) => number.to_owned(),
            NumberSight::OwnAgent(_) | NumberSight::Masked => mask_number(number),
        }
    }
}

/// A page size from `limit`: `default` when absent, at most `max` (a larger one is cut to it,
/// as documented on each route), and `limit=0` refused (422 naming `limit`): a page of nothing
/// is never what a client meant, and answering one row (as a clamp to 1 did) hid the mistake.
pub(crate) fn page_limit(limit: Option<u32>, default: u32, max: u32) -> Result<i64, ApiError> {
    match limit.unwrap_or(default) {
        0 => Err(ApiError::unprocessable("limit", "must be at least 1")),
        n => Ok(i64::from(n.min(max))),
    }
}

/// The store's id behind an id the API showed (`crate::ids`), from a path or a body: 404
/// naming the number asked for when no object of this kind was ever shown as it.
pub(crate) fn stored_id(st: &AppState, kind: IdKind, shown: i64) -> Result<i64, ApiError> {
    st.rt
        .ids
        .decode(kind, shown)
        .ok_or_else(|| ApiError::not_found(format!("no {} {shown}", kind.noun())))
}

/// A shown id inside a config (a queue's skill, an exit's queue): the store's, or one that no
/// object has (`u32::MAX`, past the engine's range) for the config's own checks to refuse
/// with the field's name.
pub(crate) fn stored_ref(ids: &IdCodec, kind: IdKind, shown: u32) -> u32 {
    ids.decode(kind, i64::from(shown))
        .and_then(|id| u32::try_from(id).ok())
        .unwrap_or(u32::MAX)
}

/// A store id inside a config as the API shows it (32 bits for engine objects).
pub(crate) fn shown_ref(ids: &IdCodec, kind: IdKind, stored: u32) -> u32 {
    u32::try_from(ids.encode(kind, i64::from(stored))).unwrap_or(u32::MAX)
}

/// A positive integer id from a path, in the engine's range.
pub(crate) fn engine_id(id: i64) -> Option<u32> {
    u32::try_from(id).ok().filter(|v| *v > 0 && *v < (1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_replaces_members_and_removes_nulls() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut t, &json!({"a": 5, "b": {"c": null, "e": 4}}));
        assert_eq!(t, json!({"a": 5, "b": {"d": 3, "e": 4}}));
    }
}
