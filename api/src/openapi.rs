//! The OpenAPI document (`GET /openapi.json`) and Swagger UI (`/docs`).
//!
//! The resource routes describe themselves: every handler carries `#[utoipa::path]` and is
//! mounted through `utoipa_axum`'s `OpenApiRouter`, so a route cannot be served without being
//! in the document (see `routes::openapi_router`). The kit's routes (live feed, probes,
//! metrics) are described here, next to the schemas of what they and the engine send. Errors
//! every operation can answer (401, 403, 429, 503, and by shape 400, 404, 413, 415, 422) are
//! added to each operation from what it takes ([`standard_errors`]), so the statuses listed are
//! the ones the HTTP kit can really produce.
//!
//! ```text
//! let doc = openapi::document();            // resources + kit + shared schemas
//! let app = Router::new().merge(..).merge(openapi::router(doc));   // /openapi.json, /docs
//! ```

use axum::Router;
use serde::Serialize;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// Where Swagger UI is served (the kit exempts this prefix from its CSP).
pub const DOCS_PATH: &str = "/docs";

/// Operations that need no key.
const PUBLIC: &[&str] = &["/healthz", "/readyz", "/metrics", DOCUMENT_PATH];
/// Operations the rate limiter never answers for (the kit's `rate_limit_exempt` default).
const NOT_RATE_LIMITED: &[&str] = &["/healthz", "/readyz"];

/// The whole document: the resource routes, the kit's routes, shared schemas, security.
pub fn document() -> Document {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::routes::openapi_router().into_openapi());
    standard_errors(&mut doc);
    links(&mut doc);
    doc
}

/// Where a response's ids lead (OpenAPI links): clients and generated tests follow them from a
/// list to the object. (path, method, status, link name, target operationId, parameter, value)
const LINKS: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    (
        "/v1/calls",
        "get",
        "200",
        "GetCall",
        "get_call",
        "id",
        "$response.body#/calls/0/id",
    ),
    (
        "/v1/queues/{id}/calls",
        "get",
        "200",
        "GetCall",
        "get_call",
        "id",
        "$response.body#/calls/0/id",
    ),
    (
        "/v1/queues/{id}/calls",
        "get",
        "200",
        "AssignCall",
        "assign_call",
        "id",
        "$response.body#/calls/0/id",
    ),
];

fn links(doc: &mut Document) {
    for (path, method, status, name, target, param, value) in LINKS {
        let Some(item) = doc.paths.paths.get_mut(*path) else {
            continue;
        };
        let op = match *method {
            "get" => item.get.as_mut(),
            "post" => item.post.as_mut(),
            _ => None,
        };
        let Some(RefOr::T(response)) = op.and_then(|op| op.responses.responses.get_mut(*status))
        else {
            continue;
        };
        response.links.insert(
            (*name).to_owned(),
            RefOr::T(
                utoipa::openapi::link::LinkBuilder::new()
                    .operation_id(*target)
                    .parameter(*param, *value)
                    .build(),
            ),
        );
    }
}

/// `GET /openapi.json` and Swagger UI under `/docs` (`/docs` redirects to `/docs/`).
pub fn router(doc: Document) -> Router {
    SwaggerUi::new(DOCS_PATH).url(DOCUMENT_PATH, doc).into()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "switchyard",
        description = "switchyard's call-center API. Every request under /v1 carries \
            `Authorization: Bearer <key>`; everything is scoped to the key's tenant (another \
            tenant's object answers 404). Errors are `{\"error\": {\"code\", \"message\", \
            \"field\"?}}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(live, healthz, readyz, metrics, openapi_json),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerKeys),
    security(("bearer" = [])),
    tags(
        (name = "queues", description = "Queues, their members (tiers), live figures and waiting callers"),
        (name = "agents", description = "Agents, their state, skills, and supervisor monitoring"),
        (name = "skills", description = "The tenant's skill catalogue"),
        (name = "calls", description = "Call history with decision traces and CDRs; live calls"),
        (name = "campaigns", description = "Outbound campaigns: settings, state, contacts (CSV import), attempts, figures"),
        (name = "routing", description = "Inbound routing: business-hours schedules, IVR menus, flows and the number plan"),
        (name = "dnc", description = "The tenant's do-not-call list"),
        (name = "api-keys", description = "The tenant's API keys; an agent key acts for one agent (`agent_id`)"),
        (name = "display-tokens", description = "Read-only tokens for wall screens: exchanged at `POST /web/session` for a session that reads the live feed and never acts"),
        (name = "wallboard", description = "The wallboard's tile thresholds, stored per tenant (the figures themselves are in the live feed)"),
        (name = "audit", description = "The tenant's audit log (admin keys only)"),
        (name = "analytics", description = "Figures over a date range from the stored history, in the tenant's time zone"),
        (name = "platform-admin", description = "Tenants (platform-admin keys only)"),
        (name = "live", description = "The live feed (server-sent events)"),
        (name = "operations", description = "Probes, metrics and this document"),
    ),
)]
struct ApiDoc;

/// The `bearer` security scheme: an API key in `Authorization: Bearer <key>`.
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sy_<64 hex>")
                    .description(Some(
                        "An API key (`switchyard apikey create`, `POST /v1/api-keys`); an \
                         `agent` key acts for the one agent it names (`agent_id`)",
                    ))
                    .build(),
            ),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Every error answer: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `bad_request`, `malformed_json`, `invalid_path`,
    /// `invalid_query`, `unauthorized`, `forbidden`, `not_found`, `method_not_allowed`,
    /// `conflict`, `payload_too_large`, `unsupported_media_type`, `invalid_field`,
    /// `rate_limited`, `timeout`, `unavailable`, `internal`.
    #[schema(example = "invalid_field")]
    pub code: String,
    /// For people.
    pub message: String,
    /// The input at fault: a JSON path (`config.skills[0].min`), a path or query parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "config.sl_threshold_s")]
    pub field: Option<String>,
}

/// The error answers the HTTP kit gives, as `components/responses`: (name, status,
/// description).
const ERRORS: &[(&str, u16, &str)] = &[
    (
        "BadRequest",
        400,
        "Malformed: a path or query parameter that does not parse (or an unknown or missing \
         query parameter), or a body that is empty or not JSON; `code` and `field` say which",
    ),
    (
        "Unauthorized",
        401,
        "No key, or a key that is invalid, revoked or expired",
    ),
    (
        "Forbidden",
        403,
        "The key's role may not do this (or a platform-admin key on a tenant route, a tenant \
         key on a platform route, or an agent key writing for an agent other than its own); \
         `code` `tenant_disabled`: a good key of a tenant the platform admin disabled",
    ),
    ("NotFound", 404, "No such object (or another tenant's)"),
    ("PayloadTooLarge", 413, "The body is larger than 1 MiB"),
    (
        "UnsupportedMediaType",
        415,
        "The body is not `application/json`",
    ),
    (
        "Unprocessable",
        422,
        "A field is missing, unknown, of the wrong type or breaks a rule (`field` names it)",
    ),
    (
        "RateLimited",
        429,
        "Over the key's (or, without a valid key, the address's) rate",
    ),
    (
        "Unavailable",
        503,
        "The engine is stopping, a dependency is down, or the answer took too long",
    ),
];

/// Adds the error answers the HTTP kit gives to every operation, by what the operation takes.
/// Answers an operation lists itself (with its own description) are kept.
fn standard_errors(doc: &mut Document) {
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, status, description) in ERRORS {
        components.responses.insert(
            (*name).to_owned(),
            RefOr::T(error_response(*status, description)),
        );
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = PUBLIC.contains(&path.as_str());
        let limited = !NOT_RATE_LIMITED.contains(&path.as_str());
        // The kit's live feed ignores what it cannot parse in its query.
        let strict_query = path.starts_with("/v1/") && path != "/v1/live";
        for op in operations(item) {
            let mut answers = vec![503];
            if public {
                op.security = Some(Vec::new());
            } else {
                answers.extend([401, 403]);
            }
            if limited {
                answers.push(429);
            }
            if takes(op, "path") {
                answers.extend([400, 404]);
            }
            if takes(op, "query") && strict_query {
                answers.push(400);
            }
            if op.request_body.is_some() {
                answers.extend([400, 413, 415, 422]);
            }
            for status in answers {
                let (name, _, _) = ERRORS
                    .iter()
                    .find(|(_, s, _)| *s == status)
                    .unwrap_or_else(|| unreachable!("every status pushed above is in ERRORS"));
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(*name)));
            }
        }
    }
}

/// Whether `op` has a parameter `in` this place (`path`, `query`, `header`).
fn takes(op: &Operation, place: &str) -> bool {
    op.parameters.iter().flatten().any(|p| match p {
        RefOr::T(p) => {
            serde_json::to_value(&p.parameter_in).ok() == Some(serde_json::Value::from(place))
        }
        RefOr::Ref(_) => false,
    })
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn error_response(status: u16, description: &str) -> Response {
    let mut r = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    let header = |schema: ObjectBuilder, description: &str| {
        HeaderBuilder::new()
            .schema(Some(schema))
            .description(Some(description))
            .build()
    };
    match status {
        401 => {
            r = r.header(
                "WWW-Authenticate",
                header(ObjectBuilder::new().schema_type(Type::String), "`Bearer`"),
            );
        }
        429 => {
            r = r.header(
                "Retry-After",
                header(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                    "Whole seconds to wait",
                ),
            );
        }
        _ => {}
    }
    r.build()
}

// ---------------------------------------------------------------------------------------------
// The kit's routes (served by `http::live`, `http::probes`, `http::metrics`, and `router`).

/// The live feed: server-sent events of the key's tenant. The first event is a `snapshot` of
/// every agent and queue; then deltas (`agent.state_changed`, `agent.line`, `call.queued`,
/// ...) with increasing ids. Reconnecting with the last id seen replays what was missed (or
/// sends a fresh snapshot if it is too old).
#[utoipa::path(
    get,
    path = "/v1/live",
    tag = "live",
    operation_id = "live_feed",
    params(
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
        ("last_event_id" = Option<String>, Query, description = "Same as the header, for clients that cannot set it"),
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream` of these events (with `: keep-alive` comments between them)", content_type = "text/event-stream", body = LiveFeedEvent),
    ),
)]
#[allow(dead_code)] // Served by `http::live::router`; here for the document only.
fn live() {}

/// One event of the live feed (the `event:`, `id:` and `data:` lines of a `text/event-stream`
/// frame, as an `EventSource` reads them).
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveFeedEvent {
    /// `snapshot` first (`data`: `{"seq", "state"}`, the tenant's agents and queues), then
    /// deltas (`agent.state_changed`, `call.queued`, `call.answered`, ...), or `resync` when the
    /// client fell behind (a fresh snapshot follows).
    #[schema(example = "agent.state_changed")]
    pub event: String,
    /// The event's JSON document.
    #[schema(content_media_type = "application/json")]
    pub data: String,
    /// The sequence number (snapshots and deltas): send the last one seen as `Last-Event-ID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub id: Option<String>,
}

/// `{"status": "ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// Readiness: every dependency (the database, the Event Socket) answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    /// Each dependency's result: `ok`, `failed` or `timeout`.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub checks: serde_json::Value,
    /// Only when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<ErrorDetail>,
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    responses((status = 200, description = "Alive", body = Health)),
)]
#[allow(dead_code)] // Served by `http::probes`; here for the document only.
fn healthz() {}

/// Readiness: the database and the FreeSWITCH Event Socket.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: `checks` says which dependency failed", body = Readiness),
    ),
)]
#[allow(dead_code)] // Served by `http::probes`; here for the document only.
fn readyz() {}

/// Prometheus metrics (text exposition format).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain", body = String)),
)]
#[allow(dead_code)] // Served by `http::metrics`; here for the document only.
fn metrics() {}

/// This document (OpenAPI 3.1).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI document", body = Object)),
)]
#[allow(dead_code)] // Served by `router`; here for the document only.
fn openapi_json() {}

/// `QueueSpec.numbers`: up to 64 dialled numbers of 1-32 of `0-9 + * #`.
pub fn dialled_numbers() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9+*#]{1,32}$")),
        )
        .max_items(Some(64))
        .description(Some("Dialled numbers (DIDs) that reach this queue."))
        .build()
}

// ---------------------------------------------------------------------------------------------
// Schemas of engine and store types (which cannot derive `ToSchema` themselves). Each names
// exactly what the type serialises to; the tests below hold them to it.

/// How a queue picks among the agents who could take a call.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    RingAll,
    LongestIdleAgent,
    RoundRobin,
    TopDown,
    LeastTalkTime,
    FewestCalls,
    Random,
    WeightedRandom,
    RingProgressively,
    SkillsBestMatch,
}

/// When callers may join (`join_empty`) or are sent away (`leave_when_empty`) for lack of
/// agents.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EmptyRule {
    Never,
    NoneLoggedIn,
    NoneAvailable,
}

/// How a supervisor joins an agent's call: `listen` (nobody hears the supervisor), `whisper`
/// (only the agent does), `barge` (everybody does).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MonitorMode {
    Listen,
    Whisper,
    Barge,
}

/// The roles a tenant's key can have (`platform-admin` keys belong to no tenant).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TenantRole {
    Admin,
    Supervisor,
    Agent,
    ReadOnly,
}

/// An agent's state as the engine reports it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AgentState {
    LoggedOut,
    Available,
    OnBreak,
    Reserved,
    OnCall,
    WrapUp,
}

/// An agent's chosen presence as saved: `{"presence": "available"}`,
/// `{"presence": "on-break", "reason": "lunch"}`, `{"presence": "logged-out"}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "presence", content = "reason", rename_all = "kebab-case")]
pub enum Presence {
    LoggedOut,
    Available,
    OnBreak(String),
}

/// One count per agent state.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentsByState {
    pub logged_out: u32,
    pub available: u32,
    pub on_break: u32,
    pub reserved: u32,
    pub on_call: u32,
    pub wrap_up: u32,
}

/// Seconds per agent state.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondsByState {
    pub logged_out: f64,
    pub available: f64,
    pub on_break: f64,
    pub reserved: f64,
    pub on_call: f64,
    pub wrap_up: f64,
}

/// Calls that left a queue other than by answer or abandon, by reason.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExitCounts {
    pub timeout: u64,
    pub no_agents: u64,
    pub overflow: u64,
    pub voicemail: u64,
    pub callback: u64,
    pub dtmf: u64,
    pub supervisor: u64,
    pub other: u64,
}

/// Offers by result.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferCounts {
    pub accepted: u64,
    pub rejected: u64,
    pub no_answer: u64,
    pub busy: u64,
    pub failed: u64,
    pub lost: u64,
}

/// A queue's figures over one period. Ratios and means are `null` when their denominator is
/// zero; durations are seconds.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueFigures {
    pub offered: u64,
    pub answered: u64,
    pub answered_within_sl: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub exited: ExitCounts,
    pub exited_total: u64,
    pub offers: OfferCounts,
    pub service_level: Option<f64>,
    pub service_level_excl_short: Option<f64>,
    pub asa_s: Option<f64>,
    pub avg_abandon_wait_s: Option<f64>,
    pub abandon_rate: Option<f64>,
    pub talk_s: f64,
    pub wrapup_s: f64,
    pub handled: u64,
    pub handle_s: f64,
    pub aht_s: Option<f64>,
    pub occupancy: Option<f64>,
    pub agent_time_s: SecondsByState,
}

/// A queue as of now: live values, figures since start and for the open 15-minute interval.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueSnapshot {
    pub interval_start_unix_ms: u64,
    /// Calls waiting now.
    pub waiting: u64,
    /// Wait of the oldest waiting call as of the read (0 when nobody waits).
    pub longest_wait_s: f64,
    /// Member agents by current state.
    pub agents: AgentsByState,
    pub since_start: QueueFigures,
    pub interval: QueueFigures,
}

/// One agent's figures over one period (seconds).
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentFigures {
    pub offered: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub no_answer: u64,
    pub busy: u64,
    pub failed: u64,
    pub lost: u64,
    pub answered: u64,
    pub handled: u64,
    pub talk_s: f64,
    pub wrapup_s: f64,
    pub handle_s: f64,
    pub aht_s: Option<f64>,
    pub occupancy: Option<f64>,
    pub state_time_s: SecondsByState,
}

/// An agent as of now.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentSnapshot {
    pub state: AgentState,
    pub time_in_state_s: f64,
    /// Queues the agent is a member of.
    pub queues: u64,
    pub interval_start_unix_ms: u64,
    pub since_start: AgentFigures,
    pub interval: AgentFigures,
}

/// A call detail record of one leg.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cdr {
    pub leg: uuid::Uuid,
    pub tenant: Option<uuid::Uuid>,
    pub call_id: Option<uuid::Uuid>,
    pub direction: String,
    pub caller_number: String,
    pub destination: String,
    pub hangup_cause: String,
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: i64,
    pub billsec_ms: i64,
    /// Written by recovery (the leg vanished while switchyard was away).
    pub synthetic: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::collections::BTreeSet;

    fn names<T: Serialize>(values: impl IntoIterator<Item = T>) -> BTreeSet<String> {
        values
            .into_iter()
            .map(|v| {
                serde_json::to_value(v)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    fn schema_enum(doc: &Value, name: &str) -> BTreeSet<String> {
        doc["components"]["schemas"][name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is a string enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn mirrored_enums_name_exactly_the_engine_values() {
        use switchyard_engine::agent::AgentStateKind;
        use switchyard_engine::config::EmptyRule as E;
        use switchyard_engine::{MonitorMode as M, Strategy as S};
        let doc = serde_json::to_value(document()).unwrap();
        assert_eq!(schema_enum(&doc, "Strategy"), names(S::ALL));
        assert_eq!(
            schema_enum(&doc, "EmptyRule"),
            names([E::Never, E::NoneLoggedIn, E::NoneAvailable])
        );
        assert_eq!(
            schema_enum(&doc, "MonitorMode"),
            names([M::Listen, M::Whisper, M::Barge])
        );
        assert_eq!(schema_enum(&doc, "AgentState"), names(AgentStateKind::ALL));
        use crate::model::Role;
        assert_eq!(
            schema_enum(&doc, "TenantRole"),
            names([Role::Admin, Role::Supervisor, Role::Agent, Role::ReadOnly])
        );
        assert_eq!(
            schema_enum(&doc, "Role"),
            names([
                Role::Admin,
                Role::Supervisor,
                Role::Agent,
                Role::ReadOnly,
                Role::PlatformAdmin
            ])
        );
        for p in [
            switchyard_engine::Presence::LoggedOut,
            switchyard_engine::Presence::Available,
            switchyard_engine::Presence::OnBreak("lunch".into()),
        ] {
            let mirrored = match &p {
                switchyard_engine::Presence::LoggedOut => Presence::LoggedOut,
                switchyard_engine::Presence::Available => Presence::Available,
                switchyard_engine::Presence::OnBreak(r) => Presence::OnBreak(r.clone()),
            };
            assert_eq!(
                serde_json::to_value(&p).unwrap(),
                serde_json::to_value(&mirrored).unwrap()
            );
        }
    }

    /// The property names of an object schema (through `$ref`, `allOf`).
    fn properties(doc: &Value, schema: &Value) -> BTreeSet<String> {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.rsplit('/').next().unwrap();
            return properties(doc, &doc["components"]["schemas"][name]);
        }
        let mut out: BTreeSet<String> = schema["properties"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for part in schema["allOf"].as_array().into_iter().flatten() {
            out.extend(properties(doc, part));
        }
        out
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn mirrored_structs_have_exactly_the_engine_and_store_fields() {
        use std::time::Instant;
        use switchyard_engine::stats::{Stats, StatsConfig};
        let doc = serde_json::to_value(document()).unwrap();
        let schema = |name: &str| doc["components"]["schemas"][name].clone();
        let now = Instant::now();
        let stats = Stats::new(StatsConfig::new(now, 0));
        let q =
            serde_json::to_value(stats.queue_snapshot(now, switchyard_engine::QueueId(1))).unwrap();
        assert_eq!(keys(&q), properties(&doc, &schema("QueueSnapshot")));
        assert_eq!(
            keys(&q["agents"]),
            properties(&doc, &schema("AgentsByState"))
        );
        assert_eq!(
            keys(&q["interval"]),
            properties(&doc, &schema("QueueFigures"))
        );
        assert_eq!(
            keys(&q["interval"]["exited"]),
            properties(&doc, &schema("ExitCounts"))
        );
        assert_eq!(
            keys(&q["interval"]["offers"]),
            properties(&doc, &schema("OfferCounts"))
        );
        assert_eq!(
            keys(&q["interval"]["agent_time_s"]),
            properties(&doc, &schema("SecondsByState"))
        );
        let a =
            serde_json::to_value(stats.agent_snapshot(now, switchyard_engine::AgentId(1))).unwrap();
        assert_eq!(keys(&a), properties(&doc, &schema("AgentSnapshot")));
        assert_eq!(
            keys(&a["interval"]),
            properties(&doc, &schema("AgentFigures"))
        );
        let cdr = crate::store::CdrRow {
            leg: uuid::Uuid::nil(),
            tenant: Some(crate::model::TenantId(uuid::Uuid::nil())),
            call_id: None,
            direction: "inbound".into(),
            caller_number: String::new(),
            destination: String::new(),
            hangup_cause: String::new(),
            started_at_ms: 0,
            answered_at_ms: None,
            ended_at_ms: 0,
            billsec_ms: 0,
            synthetic: false,
        };
        assert_eq!(
            keys(&serde_json::to_value(&cdr).unwrap()),
            properties(&doc, &schema("Cdr"))
        );
    }

    #[test]
    fn api_keys_are_described_with_the_agent_they_act_for() {
        let doc = serde_json::to_value(document()).unwrap();
        let schema = |name: &str| doc["components"]["schemas"][name].clone();
        for name in ["CreateKey", "KeyView", "CreatedKey"] {
            assert!(
                properties(&doc, &schema(name)).contains("agent_id"),
                "{name} has agent_id"
            );
        }
        for (path, method) in [
            ("/v1/agents/{id}/state", "put"),
            ("/v1/calls/{id}/disposition", "post"),
        ] {
            let forbidden = &doc["paths"][path][method]["responses"]["403"]["description"];
            assert!(
                forbidden.as_str().is_some_and(|d| d.contains("agent key")),
                "{method} {path}: {forbidden}"
            );
        }
    }

    #[test]
    fn the_forbidden_answer_names_the_disabled_tenant_code() {
        let doc = serde_json::to_value(document()).unwrap();
        let forbidden = &doc["components"]["responses"]["Forbidden"]["description"];
        assert!(
            forbidden
                .as_str()
                .is_some_and(|d| d.contains("tenant_disabled")),
            "{forbidden}"
        );
        let on_agents = &doc["paths"]["/v1/agents"]["get"]["responses"]["403"]["$ref"];
        assert_eq!(on_agents, "#/components/responses/Forbidden");
    }

    #[test]
    fn links_lead_to_operations_that_exist() {
        let doc = serde_json::to_value(document()).unwrap();
        let ids: BTreeSet<String> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|op| op["operationId"].as_str().map(str::to_owned))
            .collect();
        for (path, method, status, name, target, _, _) in LINKS {
            let link = &doc["paths"][*path][*method]["responses"][*status]["links"][*name];
            assert_eq!(link["operationId"], *target, "{path} {method} {name}");
            assert!(ids.contains(*target), "{target} is an operation");
        }
    }

    #[test]
    fn error_answers_follow_what_an_operation_takes() {
        let doc = serde_json::to_value(document()).unwrap();
        let statuses = |path: &str, method: &str| -> BTreeSet<String> {
            keys(&doc["paths"][path][method]["responses"])
        };
        let s = statuses("/v1/queues", "post");
        for code in [
            "201", "400", "401", "403", "409", "413", "415", "422", "429",
        ] {
            assert!(s.contains(code), "POST /v1/queues lacks {code}: {s:?}");
        }
        assert!(!s.contains("404"), "no path parameter, no 404: {s:?}");
        let s = statuses("/v1/queues/{id}", "get");
        assert!(s.contains("404") && s.contains("400") && !s.contains("415"));
        let s = statuses("/healthz", "get");
        assert_eq!(
            s,
            ["200", "503"].into_iter().map(String::from).collect(),
            "probes need no key and are not rate limited"
        );
        assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([]));
        assert_eq!(doc["security"], json!([{"bearer": []}]));
    }
}
