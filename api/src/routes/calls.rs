//! `/v1/calls`: history (filters, cursor paging) with decision traces and CDRs, the live view
//! of a call in progress, and the supervisor's actions on a waiting call: assign it to an
//! agent, move it to another queue, change its priority.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchyard_engine::{AgentId, CallId, Command, LegId, QueueId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{
    AppState, NumberSight, READERS, SUPERVISORS, audit, engine_error, engine_id, shown_ref,
};
use crate::http::{
    ApiError, ApiJson, ApiPath, ApiQuery, Auth, acting_agent, require_role, require_tenant,
};
use crate::ids::{IdCodec, IdKind};
use crate::model::Role;
use crate::model::TenantId;
use crate::openapi::ErrorBody;
use crate::runtime::read_now;
use crate::store::{CallFilter, CallRow, CdrRow};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(read))
        .routes(routes!(read_journey))
        .routes(routes!(assign))
        .routes(routes!(move_call))
        .routes(routes!(set_priority))
        .routes(routes!(transfer))
        .routes(routes!(accept_preview))
        .routes(routes!(skip_preview))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Arrived at or after (Unix milliseconds).
    from_ms: Option<i64>,
    /// Arrived before (Unix milliseconds).
    to_ms: Option<i64>,
    /// Last queue the call was in.
    queue_id: Option<i64>,
    agent_id: Option<i64>,
    caller_number: Option<String>,
    /// How the call ended (`in-progress` while it has not). Another value is a 400 naming
    /// `outcome`, never an empty page.
    outcome: Option<OutcomeFilter>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size (default 50, at most 500: more is cut to 500; 0 is refused).
    #[param(minimum = 1)]
    limit: Option<u32>,
}

/// The outcomes a call row can hold: the engine's `CallOutcome` names and the open row's.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
enum OutcomeFilter {
    Answered,
    Abandoned,
    Voicemail,
    Transferred,
    Dropped,
    CallbackAnswered,
    CallbackFailed,
    Lost,
    InProgress,
}

impl OutcomeFilter {
    fn as_str(self) -> &'static str {
        match self {
            OutcomeFilter::Answered => "answered",
            OutcomeFilter::Abandoned => "abandoned",
            OutcomeFilter::Voicemail => "voicemail",
            OutcomeFilter::Transferred => "transferred",
            OutcomeFilter::Dropped => "dropped",
            OutcomeFilter::CallbackAnswered => "callback-answered",
            OutcomeFilter::CallbackFailed => "callback-failed",
            OutcomeFilter::Lost => "lost",
            OutcomeFilter::InProgress => crate::store::OPEN_CALL,
        }
    }
}

/// A finished call as the ACD saw it.
#[derive(Debug, Serialize, ToSchema)]
struct CallView {
    /// The caller's arrival leg.
    id: Uuid,
    /// The last queue the call was in.
    queue_id: i64,
    /// Every queue it passed through, in order.
    queues: Vec<i64>,
    agent_id: Option<i64>,
    caller_number: String,
    /// `answered`, `abandoned`, ...
    outcome: String,
    arrived_at_ms: i64,
    wait_ms: i64,
    talk_ms: i64,
    offers: i32,
    /// Closed by recovery (the call vanished while switchyard was away).
    synthetic: bool,
    callback_leg: Option<Uuid>,
}

fn view(ids: &IdCodec, c: &CallRow, sight: NumberSight) -> CallView {
    CallView {
        id: c.id,
        queue_id: ids.queue(c.queue_id),
        queues: c.queues.iter().map(|q| ids.queue(*q)).collect(),
        agent_id: c.agent_id.map(|a| ids.agent(a)),
        caller_number: sight.show(&c.caller_number, c.agent_id),
        outcome: c.outcome.clone(),
        arrived_at_ms: c.arrived_at_ms,
        wait_ms: c.wait_ms,
        talk_ms: c.talk_ms,
        offers: c.offers,
        synthetic: c.synthetic,
        callback_leg: c.callback_leg,
    }
}

/// A page of calls, newest first.
#[derive(Debug, Serialize, ToSchema)]
struct CallPage {
    calls: Vec<CallView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// Call history, newest first, filtered and paged.
#[utoipa::path(
    get,
    path = "/v1/calls",
    tag = "calls",
    operation_id = "list_calls",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of calls", body = CallPage),
        (status = 400, description = "A filter that does not parse, such as an unknown `outcome` (named in `field`)", body = ErrorBody),
        (status = 422, description = "`to_ms` before `from_ms`, a `cursor` not from a previous page, `limit=0`, or control characters in a filter", body = ErrorBody),
    ),
)]
async fn list(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<CallPage>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    // PostgreSQL refuses text with NUL in it (a 500); nothing stored has control characters.
    if q.caller_number
        .as_deref()
        .is_some_and(|v| v.chars().any(char::is_control))
    {
        return Err(ApiError::unprocessable(
            "caller_number",
            "must not contain control characters",
        ));
    }
    let limit = super::page_limit(q.limit, 50, 500)?;
    if let (Some(f), Some(t)) = (q.from_ms, q.to_ms)
        && f > t
    {
        return Err(ApiError::unprocessable(
            "to_ms",
            "must not be before from_ms",
        ));
    }
    let filter = CallFilter {
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        // A number never shown matches no call (-1 is no store id).
        queue_id: q
            .queue_id
            .map(|v| st.rt.ids.decode(IdKind::Queue, v).unwrap_or(-1)),
        agent_id: q
            .agent_id
            .map(|v| st.rt.ids.decode(IdKind::Agent, v).unwrap_or(-1)),
        caller_number: q.caller_number,
        outcome: q.outcome.map(|o| o.as_str().to_owned()),
        cursor: q.cursor,
        // `page_limit` keeps it in 1..=500.
        limit: u32::try_from(limit).unwrap_or(50),
    };
    let (rows, next) = st.rt.store.list_calls(tenant, &filter).await?;
    let sight = NumberSight::of(&p);
    Ok(Json(CallPage {
        calls: rows.iter().map(|c| view(&st.rt.ids, c, sight)).collect(),
        next_cursor: next,
    }))
}

/// A finished call with why it went where it went.
#[derive(Debug, Serialize, ToSchema)]
struct CallRecord {
    #[serde(flatten)]
    call: CallView,
    /// Always `false` here.
    live: bool,
    /// The router's decision traces, in order.
    #[schema(value_type = Vec<Object>)]
    decisions: Vec<Value>,
    /// The call detail records of its legs.
    #[schema(value_type = Vec<crate::openapi::Cdr>)]
    cdrs: Vec<CdrRow>,
    /// Its walk through an inbound flow, when it walked one.
    #[serde(skip_serializing_if = "Option::is_none")]
    journey: Option<JourneyView>,
}

/// An inbound caller's walk through its flow: every node visited, the keys pressed and what
/// came of each, and where the flow sent the caller.
#[derive(Debug, Serialize, ToSchema)]
struct JourneyView {
    call_id: Uuid,
    flow_id: String,
    dialled: String,
    caller_number: String,
    started_at_ms: i64,
    ended_at_ms: i64,
    /// `queue:<id>`, `agent:<id>`, `voicemail:queue:<id>`, `voicemail:agent:<id>`,
    /// `transfer:<number>` or `play_hangup`; `null`: the caller hung up in the flow.
    routed: Option<String>,
    /// In order: `{"node": {"step"|"menu": id} | "fallback", "outcome": ..}` (outcomes:
    /// `entered`, `schedule_open`, `schedule_closed`, `{"digits": ".."}`, `{"no_match": ".."}`,
    /// `timeout`, `{"invalid": ".."}`, `max_failures`, `max_timeouts`, `routed`,
    /// `{"queue_exit": "no_agent"|"max_wait"}`, ...).
    #[schema(value_type = Vec<Object>)]
    entries: Value,
    /// Entries past the bound a journey keeps, counted.
    dropped: u64,
}

fn journey_view(j: crate::store::JourneyRow, sight: NumberSight) -> JourneyView {
    JourneyView {
        call_id: j.call_id,
        flow_id: j.flow_id,
        dialled: sight.show(&j.dialled, None),
        caller_number: sight.show(&j.caller_number, None),
        started_at_ms: j.started_at_ms,
        ended_at_ms: j.ended_at_ms,
        routed: j.routed,
        entries: j
            .journey
            .get("entries")
            .cloned()
            .unwrap_or(Value::Array(Vec::new())),
        dropped: j
            .journey
            .get("dropped")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}

/// A call's walk through its inbound flow, also for a caller who hung up in the flow (who
/// never reached a queue, so has no call record).
#[utoipa::path(
    get,
    path = "/v1/calls/{id}/journey",
    tag = "calls",
    operation_id = "get_call_journey",
    params(("id" = Uuid, Path, description = "The call's id (its arrival leg)")),
    responses(
        (status = 200, description = "The journey; numbers masked as on the call", body = JourneyView),
        (status = 404, description = "The call walked no flow (or is another tenant's), or its walk is not over", body = ErrorBody),
    ),
)]
async fn read_journey(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<JourneyView>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let j = st
        .rt
        .store
        .journey(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no journey for call {id}")))?;
    Ok(Json(journey_view(j, NumberSight::of(&p))))
}

/// A call in progress, as the engine sees it.
#[derive(Debug, Serialize, ToSchema)]
struct LiveCall {
    id: Uuid,
    /// Always `true` here.
    live: bool,
    queue_id: u32,
    queues: Vec<u32>,
    caller_number: String,
    priority: i32,
    /// `waiting`, `offering`, `callingback` or `talking`.
    phase: String,
    /// Since the caller arrived, as of this read.
    waited_s: f64,
    /// The agent talking to the caller (or calling the customer back), or the one being
    /// offered the call; `null` while it waits, and while several agents ring at once.
    agent_id: Option<u32>,
    /// Offers made so far.
    offers: u32,
    /// The router's decision traces so far.
    #[schema(value_type = Vec<Object>)]
    decisions: Vec<Value>,
}

/// A call: the finished record, or the live view while in progress.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
enum CallDetail {
    Record(CallRecord),
    Live(LiveCall),
}

/// One call: the record with its decision traces and CDRs, or the live view while in progress.
#[utoipa::path(
    get,
    path = "/v1/calls/{id}",
    tag = "calls",
    operation_id = "get_call",
    params(("id" = Uuid, Path, description = "The call's id (its arrival leg)")),
    responses((status = 200, description = "The call; numbers masked for a read-only key, and for an agent key unless its agent is on the call", body = CallDetail)),
)]
async fn read(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CallDetail>, ApiError> {
    require_role(&p, READERS)?;
    let tenant = require_tenant(&p)?;
    let row = st.rt.store.get_call(tenant, id).await?;
    let sight = NumberSight::of(&p);
    // A call under way has an open row: the engine's view says more while it has the call.
    if row
        .as_ref()
        .is_none_or(|r| r.outcome == crate::store::OPEN_CALL)
        && let Some(mut c) = live_call(&st, tenant, id).await?
    {
        c.caller_number = sight.show(&c.caller_number, c.agent_id.map(i64::from));
        let ids = &st.rt.ids;
        c.queue_id = shown_ref(ids, IdKind::Queue, c.queue_id);
        for q in &mut c.queues {
            *q = shown_ref(ids, IdKind::Queue, *q);
        }
        c.agent_id = c.agent_id.map(|a| shown_ref(ids, IdKind::Agent, a));
        for d in &mut c.decisions {
            shown_trace(ids, d);
        }
        return Ok(Json(CallDetail::Live(c)));
    }
    if let Some(row) = row {
        let journey = st.rt.store.journey(tenant, id).await?;
        let traces = st.rt.store.traces_for_call(tenant, id).await?;
        let mut cdrs = st.rt.store.cdrs_for_call(tenant, id).await?;
        // Both ends of a leg are someone's number: the customer's, or the one dialled.
        for cdr in &mut cdrs {
            cdr.caller_number = sight.show(&cdr.caller_number, row.agent_id);
            cdr.destination = sight.show(&cdr.destination, row.agent_id);
        }
        return Ok(Json(CallDetail::Record(CallRecord {
            call: view(&st.rt.ids, &row, sight),
            live: false,
            decisions: traces
                .iter()
                .map(|t| {
                    let mut d = t.trace.clone();
                    shown_trace(&st.rt.ids, &mut d);
                    d
                })
                .collect(),
            cdrs,
            journey: journey.map(|j| journey_view(j, sight)),
        })));
    }
    Err(ApiError::not_found(format!("no call {id}")))
}

async fn live_call(
    st: &AppState,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<LiveCall>, ApiError> {
    let leg = LegId(id.as_u128());
    let dir = st.rt.directory.clone();
    st.rt
        .engine
        .query(move |e| {
            let c = e.call_info(e.call_by_leg(leg)?)?;
            if dir.queue_tenant(c.queue) != Some(tenant) {
                return None;
            }
            let now = read_now(e);
            Some(LiveCall {
                id,
                live: true,
                queue_id: c.queue.0,
                queues: c.queues.iter().map(|q| q.0).collect(),
                caller_number: c.caller.number.clone(),
                priority: c.priority,
                phase: format!("{:?}", c.phase)
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_end_matches('{')
                    .to_lowercase(),
                waited_s: now.saturating_duration_since(c.wait_origin).as_secs_f64(),
                agent_id: e.call_agent(c.id).map(|a| a.0),
                offers: c.offers_made,
                decisions: e
                    .traces_for(c.id)
                    .filter_map(|t| serde_json::to_value(t).ok())
                    .collect(),
            })
        })
        .await
        .map_err(engine_error)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Assign {
    /// One of the tenant's agents, free to take the call.
    agent_id: i64,
}

/// The assignment made.
#[derive(Debug, Serialize, ToSchema)]
struct Assigned {
    id: Uuid,
    agent_id: i64,
}

/// Offers a waiting call to a chosen agent now (supervisor).
#[utoipa::path(
    post,
    path = "/v1/calls/{id}/assign",
    tag = "calls",
    operation_id = "assign_call",
    params(("id" = Uuid, Path, description = "The call's id (its arrival leg)")),
    request_body = Assign,
    responses(
        (status = 202, description = "The agent is being offered the call", body = Assigned),
        (status = 409, description = "The call is not waiting, or the agent cannot take it now", body = ErrorBody),
    ),
)]
async fn assign(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Assign>,
) -> Result<(StatusCode, Json<Assigned>), ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    let agent = st
        .rt
        .ids
        .decode(IdKind::Agent, body.agent_id)
        .and_then(engine_id)
        .map(AgentId)
        .filter(|a| st.rt.directory.agent_tenant(*a) == Some(tenant))
        .ok_or_else(|| {
            ApiError::unprocessable(
                "agent_id",
                format!("agent {} is not one of yours", body.agent_id),
            )
        })?;
    let call = tenant_call(&st, tenant, id).await?;
    st.rt
        .engine
        .command(Command::AssignCall { call, agent })
        .await
        .map_err(engine_error)?;
    let a = audit(
        &p,
        Some(tenant),
        "call.assign",
        "call",
        id,
        json!({ "agent_id": body.agent_id }),
    );
    let _ = st.rt.store.insert_audit(&a).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(Assigned {
            id,
            agent_id: body.agent_id,
        }),
    ))
}

/// A decision trace (the engine's `DecisionTrace`, live or stored) with the ids the API shows:
/// its queue, agents, call and offer.
fn shown_trace(ids: &IdCodec, trace: &mut Value) {
    let Value::Object(t) = trace else {
        return;
    };
    for (key, kind) in [
        ("queue", IdKind::Queue),
        ("agent", IdKind::Agent),
        ("call", IdKind::Call),
        ("offer", IdKind::Offer),
    ] {
        if let Some(v) = t.get_mut(key)
            && let Some(n) = v.as_i64()
        {
            *v = Value::from(ids.encode(kind, n));
        }
    }
    if let Some(Value::Array(candidates)) = t.get_mut("candidates") {
        for c in candidates {
            if let Some(v) = c.get_mut("agent")
                && let Some(n) = v.as_i64()
            {
                *v = Value::from(ids.agent(n));
            }
        }
    }
}

/// The engine's call for a call id (its arrival leg), if it is in progress in one of the
/// tenant's queues; another tenant's call is not there (404).
pub(super) async fn tenant_call(
    st: &AppState,
    tenant: TenantId,
    id: Uuid,
) -> Result<CallId, ApiError> {
    let leg = LegId(id.as_u128());
    let dir = st.rt.directory.clone();
    st.rt
        .engine
        .query(move |e| {
            let c = e.call_by_leg(leg)?;
            let info = e.call_info(c)?;
            (dir.queue_tenant(info.queue) == Some(tenant)).then_some(c)
        })
        .await
        .map_err(engine_error)?
        .ok_or_else(|| ApiError::not_found(format!("no call {id} in progress")))
}

/// The engine's queue for a queue id a body names, if it is one of the tenant's (422 naming
/// `queue_id` otherwise: a body naming something not the tenant's is a bad request whatever
/// the call is).
fn tenant_queue(st: &AppState, tenant: TenantId, shown: i64) -> Result<QueueId, ApiError> {
    st.rt
        .ids
        .decode(IdKind::Queue, shown)
        .and_then(engine_id)
        .map(QueueId)
        .filter(|q| st.rt.directory.queue_tenant(*q) == Some(tenant))
        .ok_or_else(|| {
            ApiError::unprocessable("queue_id", format!("queue {shown} is not one of yours"))
        })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Move {
    /// One of the tenant's queues.
    queue_id: i64,
}

/// The move made.
#[derive(Debug, Serialize, ToSchema)]
struct Moved {
    id: Uuid,
    queue_id: i64,
}

/// Moves a waiting call to another queue (supervisor). It keeps its seniority (the time it
/// arrived) and its own priority, so it takes its place among the callers there by both;
/// the new queue's priority boost replaces the old one's.
#[utoipa::path(
    post,
    path = "/v1/calls/{id}/move",
    tag = "calls",
    operation_id = "move_call",
    params(("id" = Uuid, Path, description = "The call's id (its arrival leg)")),
    request_body = Move,
    responses(
        (status = 200, description = "The call waits in the new queue", body = Moved),
        (status = 404, description = "No such call in progress in the tenant's queues", body = ErrorBody),
        (status = 409, description = "The call is not waiting (an agent has it)", body = ErrorBody),
        (status = 422, description = "`queue_id` is not one of the tenant's queues", body = ErrorBody),
    ),
)]
async fn move_call(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Move>,
) -> Result<Json<Moved>, ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    // Checked before the call, like `assign`'s agent: a body naming something that is not
    // the tenant's is a bad request whatever the call is.
    let queue = tenant_queue(&st, tenant, body.queue_id)?;
    let call = tenant_call(&st, tenant, id).await?;
    st.rt
        .engine
        .command(Command::MoveCall { call, queue })
        .await
        .map_err(engine_error)?;
    let a = audit(
        &p,
        Some(tenant),
        "call.move",
        "call",
        id,
        json!({ "queue_id": body.queue_id }),
    );
    let _ = st.rt.store.insert_audit(&a).await;
    Ok(Json(Moved {
        id,
        queue_id: body.queue_id,
    }))
}

/// Highest priority a supervisor may give (and the lowest, negated): the same range as a
/// queue's priority boost, so one never swamps the other.
const MAX_PRIORITY: i32 = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetPriority {
    /// Higher is served first; callers of equal priority by seniority.
    #[schema(minimum = -1000, maximum = 1000)]
    priority: i32,
}

/// The priority set.
#[derive(Debug, Serialize, ToSchema)]
struct PrioritySet {
    id: Uuid,
    priority: i32,
}

/// Sets a waiting call's priority (supervisor): its place in line changes at once. The
/// queue's priority boost is added on top; `GET /v1/queues/{id}/calls` shows the sum.
#[utoipa::path(
    put,
    path = "/v1/calls/{id}/priority",
    tag = "calls",
    operation_id = "set_call_priority",
    params(("id" = Uuid, Path, description = "The call's id (its arrival leg)")),
    request_body = SetPriority,
    responses(
        (status = 200, description = "The call's priority is set", body = PrioritySet),
        (status = 404, description = "No such call in progress in the tenant's queues", body = ErrorBody),
        (status = 409, description = "The call is not waiting (an agent has it)", body = ErrorBody),
        (status = 422, description = "`priority` outside -1000..=1000", body = ErrorBody),
    ),
)]
async fn set_priority(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<SetPriority>,
) -> Result<Json<PrioritySet>, ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&body.priority) {
        return Err(ApiError::unprocessable(
            "priority",
            format!("must be between -{MAX_PRIORITY} and {MAX_PRIORITY}"),
        ));
    }
    let call = tenant_call(&st, tenant, id).await?;
    st.rt
        .engine
        .command(Command::SetCallPriority {
            call,
            priority: body.priority,
        })
        .await
        .map_err(engine_error)?;
    let a = audit(
        &p,
        Some(tenant),
        "call.priority",
        "call",
        id,
        json!({ "priority": body.priority }),
    );
    let _ = st.rt.store.insert_audit(&a).await;
    Ok(Json(PrioritySet {
        id,
        priority: body.priority,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Transfer {
    /// One of the tenant's queues; absent: the call's own queue.
    queue_id: Option<i64>,
}

/// The transfer made.
#[derive(Debug, Serialize, ToSchema)]
struct Transferred {
    id: Uuid,
    /// The queue the call waits in now.
    queue_id: i64,
}

/// Transfers a call in conversation back to a queue (the agent on the call, or a
/// supervisor): the caller hears the queue's music and waits with its old seniority, the
/// agent wraps up and is not offered the call again while others can take it, and the call's
/// recording goes on across both agents.
#[utoipa::path(
    post,
    path = "/v1/calls/{id}/transfer",
    tag = "calls",
    operation_id = "transfer_call",
    params(("id" = Uuid, Path, description = "The call's id (its arrival leg)")),
    request_body = Transfer,
    responses(
        (status = 200, description = "The call waits in the queue", body = Transferred),
        (status = 403, description = "A read-only key, an agent key bound to no agent, or an agent on another agent's call", body = ErrorBody),
        (status = 404, description = "No such call in progress in the tenant's queues", body = ErrorBody),
        (status = 409, description = "The call is not in conversation with an agent", body = ErrorBody),
        (status = 422, description = "`queue_id` is not one of the tenant's queues", body = ErrorBody),
    ),
)]
async fn transfer(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<Transfer>,
) -> Result<Json<Transferred>, ApiError> {
    require_role(&p, &[Role::Admin, Role::Supervisor, Role::Agent])?;
    let tenant = require_tenant(&p)?;
    let by = acting_agent(&p)?
        .and_then(|a| u32::try_from(a).ok())
        .map(AgentId);
    let queue = body
        .queue_id
        .map(|shown| tenant_queue(&st, tenant, shown))
        .transpose()?;
    let call = tenant_call(&st, tenant, id).await?;
    st.rt
        .engine
        .command(Command::TransferCall { call, queue, by })
        .await
        .map_err(engine_error)?;
    let shown_queue = match (body.queue_id, queue) {
        (Some(q), _) => q,
        (None, _) => {
            let q = st
                .rt
                .engine
                .query(move |e| e.call_info(call).map(|c| c.queue))
                .await
                .map_err(engine_error)?;
            q.map_or(0, |q| st.rt.ids.queue(i64::from(q.0)))
        }
    };
    let a = audit(
        &p,
        Some(tenant),
        "call.transfer",
        "call",
        id,
        json!({ "queue_id": shown_queue }),
    );
    let _ = st.rt.store.insert_audit(&a).await;
    Ok(Json(Transferred {
        id,
        queue_id: shown_queue,
    }))
}

/// What became of a desktop preview.
#[derive(Debug, Serialize, ToSchema)]
struct PreviewTaken {
    id: Uuid,
    /// `accepted` (the agent's phone rings, or its line is used, then the customer is
    /// dialled) or `skipped` (the contact goes to the next agent).
    result: &'static str,
}

/// Accept or skip, by the agent the preview is reserved to (its agent key) or a supervisor.
async fn preview_verb(
    st: &AppState,
    p: &crate::model::Principal,
    id: Uuid,
    accept: bool,
) -> Result<Json<PreviewTaken>, ApiError> {
    require_role(p, &[Role::Admin, Role::Supervisor, Role::Agent])?;
    let tenant = require_tenant(p)?;
    let by = acting_agent(p)?
        .and_then(|a| u32::try_from(a).ok())
        .map(AgentId);
    let leg = LegId(id.as_u128());
    let dir = st.rt.directory.clone();
    let call = st
        .rt
        .engine
        .query(move |e| {
            let c = e.call_by_leg(leg).or_else(|| e.preview_by_leg(leg))?;
            let info = e.call_info(c)?;
            (dir.queue_tenant(info.queue) == Some(tenant)).then_some(c)
        })
        .await
        .map_err(engine_error)?
        .ok_or_else(|| ApiError::not_found(format!("no call {id} in progress")))?;
    let cmd = if accept {
        Command::AcceptPreview { call, by }
    } else {
        Command::SkipPreview { call, by }
    };
    st.rt.engine.command(cmd).await.map_err(engine_error)?;
    let (action, result) = if accept {
        ("call.preview_accept", "accepted")
    } else {
        ("call.preview_skip", "skipped")
    };
    let a = audit(p, Some(tenant), action, "call", id, json!({}));
    let _ = st.rt.store.insert_audit(&a).await;
    Ok(Json(PreviewTaken { id, result }))
}

/// Accepts a desktop preview reserved to an agent: its phone is rung (or its persistent line
/// used), then the customer is dialled on the call's id.
#[utoipa::path(
    post,
    path = "/v1/calls/{id}/preview/accept",
    tag = "calls",
    operation_id = "accept_preview",
    params(("id" = Uuid, Path, description = "The call's id (its leg, as the live feed shows it)")),
    responses(
        (status = 200, description = "Accepted", body = PreviewTaken),
        (status = 403, description = "A read-only key or an agent key bound to no agent", body = ErrorBody),
        (status = 404, description = "No such call in progress in the tenant's queues", body = ErrorBody),
        (status = 409, description = "The call is not a desktop preview reserved to this agent (or to any agent)", body = ErrorBody),
    ),
)]
async fn accept_preview(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PreviewTaken>, ApiError> {
    preview_verb(&st, &p, id, true).await
}

/// Skips a desktop preview reserved to an agent: the offer ends as rejected (the agent's
/// reject delay) and the contact goes to the next agent.
#[utoipa::path(
    post,
    path = "/v1/calls/{id}/preview/skip",
    tag = "calls",
    operation_id = "skip_preview",
    params(("id" = Uuid, Path, description = "The call's id (its leg, as the live feed shows it)")),
    responses(
        (status = 200, description = "Skipped", body = PreviewTaken),
        (status = 403, description = "A read-only key or an agent key bound to no agent", body = ErrorBody),
        (status = 404, description = "No such call in progress in the tenant's queues", body = ErrorBody),
        (status = 409, description = "The call is not a desktop preview reserved to this agent (or to any agent)", body = ErrorBody),
    ),
)]
async fn skip_preview(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<PreviewTaken>, ApiError> {
    preview_verb(&st, &p, id, false).await
}
