//! The webhook outbox (migration 0019): every event a tenant's endpoints may want, written in
//! the same transaction as the record that caused it, and what is owed to each endpoint.
//!
//! ```text
//!  record write (calls, recordings, agent states, answers, campaign state)
//!    └─ same transaction ─► webhook_outbox (id derived from the record: written twice, kept once)
//!  worker: fan_out ─► webhook_deliveries (pending, one per endpoint that wants the type;
//!          or claimed at once, for an endpoint with nothing older due)
//!          due ─► claim (next_at pushed past the attempt) ─► send ─► finish (attempt logged,
//!          delivered / next try / failed; the endpoint's failure run and disable in the same
//!          transaction)
//!  replay since a time, resend one message ─► pending again, same message id
//! ```
//!
//! Events are derived from rows alone ([`call_events`], [`recording_events`], ...), never from
//! what the writer knew besides: the journal replays rows through the same inserts after an
//! outage, and must make the same messages. Payloads keep store ids; the sender shows them as
//! the API does.
//!
//! A message's id is a hash of what caused it (`call.completed` and the call's id, say), so a
//! record written again (a journal replay after a crash between commit and journal removal)
//! makes no second message, and a receiver sees one `webhook-id` however often it is sent.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::SqlStr;
use uuid::Uuid;

use super::history::insert_statements;
use super::rows::{CallRow, FromStoreRow, RecordingRow, RowExt};
use super::{Arg, Store, StoreError, Use, now_ms};
use crate::model::TenantId;
use crate::webhooks::signing::MessageId;

/// Event types the engine's records make (`webhook.test` is sent by the route, not stored).
pub const CALL_QUEUED: &str = "call.queued";
pub const CALL_ANSWERED: &str = "call.answered";
pub const CALL_COMPLETED: &str = "call.completed";
pub const CALL_ABANDONED: &str = "call.abandoned";
pub const AGENT_STATE_CHANGED: &str = "agent.state_changed";
pub const CAMPAIGN_STARTED: &str = "campaign.started";
pub const CAMPAIGN_PAUSED: &str = "campaign.paused";
pub const CAMPAIGN_COMPLETED: &str = "campaign.completed";
pub const RECORDING_COMPLETED: &str = "recording.completed";

/// How long outbox messages and their delivery state are kept (replay reaches this far
/// back); older ones are pruned by the worker. Svix keeps 90 days on paid plans and Stripe
/// 30 days of events; 30 days covers any outage a receiver recovers from.
pub const OUTBOX_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// Messages fanned out per pass, and deliveries claimed per pass.
pub const FAN_OUT_BATCH: i64 = 500;

/// One event, ready to be filed.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEvent {
    /// `msg_<hex>`, derived from what caused it.
    pub id: String,
    pub tenant: TenantId,
    pub event_type: &'static str,
    pub occurred_at_ms: i64,
    /// The payload's `data`, with store ids.
    pub data: Value,
}

impl OutboxEvent {
    /// `source` names what caused it uniquely (the event type is part of the id).
    fn new(
        source: &str,
        tenant: TenantId,
        event_type: &'static str,
        occurred_at_ms: i64,
        data: Value,
    ) -> OutboxEvent {
        OutboxEvent {
            id: message_id(&format!("{event_type}:{source}")),
            tenant,
            event_type,
            occurred_at_ms,
            data,
        }
    }
}

/// A stable message id for `source`: its SHA-256, the first 16 bytes as a UUID (version 8,
/// "custom"), so the same cause always gives the same `webhook-id`.
pub fn message_id(source: &str) -> String {
    let digest = Sha256::digest(source.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    MessageId::from_uuid(uuid::Builder::from_custom_bytes(bytes).into_uuid())
        .as_str()
        .to_owned()
}

/// What a call's row says happened: an open row is the call queued; a final row is the call
/// abandoned (outcome `abandoned`) or otherwise completed (answered, timed out, sent to
/// voicemail, ...; the outcome says which).
pub fn call_events(row: &CallRow) -> Vec<OutboxEvent> {
    let id = row.id.to_string();
    if row.outcome == super::OPEN_CALL {
        let data = json!({
            "call_id": id,
            "queue_id": row.queue_id,
            "caller_number": row.caller_number,
            "arrived_at_ms": row.arrived_at_ms,
        });
        return vec![OutboxEvent::new(
            &id,
            row.tenant,
            CALL_QUEUED,
            row.arrived_at_ms,
            data,
        )];
    }
    let event_type = if row.outcome == "abandoned" {
        CALL_ABANDONED
    } else {
        CALL_COMPLETED
    };
    // The row has no end time: arrival plus the wait and the talk is when it ended.
    let ended = row
        .arrived_at_ms
        .saturating_add(row.wait_ms)
        .saturating_add(row.talk_ms);
    let data = json!({
        "call_id": id,
        "queue_id": row.queue_id,
        "queues": row.queues,
        "agent_id": row.agent_id,
        "caller_number": row.caller_number,
        "outcome": row.outcome,
        "arrived_at_ms": row.arrived_at_ms,
        "wait_ms": row.wait_ms,
        "talk_ms": row.talk_ms,
        "offers": row.offers,
        "callback_leg": row.callback_leg.map(|l| l.to_string()),
        "synthetic": row.synthetic,
    });
    vec![OutboxEvent::new(&id, row.tenant, event_type, ended, data)]
}

/// A finished recording that was kept (`completed`); voicemail messages too, with their kind
/// and box.
pub fn recording_events(row: &RecordingRow) -> Vec<OutboxEvent> {
    if row.status != "completed" {
        return Vec::new();
    }
    let id = row.id.to_string();
    let data = json!({
        "recording_id": id,
        "call_id": row.call_id.to_string(),
        "kind": row.kind,
        "queue_id": row.queue_id,
        "campaign_id": row.campaign_id,
        "agents": row.agents,
        "mailbox_queue_id": row.mailbox_queue,
        "mailbox_agent_id": row.mailbox_agent,
        "caller_number": row.caller_number,
        "started_at_ms": row.started_at_ms,
        "ended_at_ms": row.ended_at_ms,
        "duration_ms": row.duration_ms,
        "media_url": format!("/v1/recordings/{id}/download"),
    });
    let at = row.ended_at_ms.unwrap_or(row.started_at_ms);
    vec![OutboxEvent::new(
        &id,
        row.tenant,
        RECORDING_COMPLETED,
        at,
        data,
    )]
}

/// A call answered by its agent (the engine's `CallAnswered`).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct AnswerRow {
    pub call_id: Uuid,
    pub tenant: TenantId,
    pub queue_id: i64,
    pub agent_id: i64,
    pub caller_number: String,
    pub answered_at_ms: i64,
    pub wait_ms: i64,
    pub callback_leg: Option<Uuid>,
}

pub fn answer_events(row: &AnswerRow) -> Vec<OutboxEvent> {
    let id = row.call_id.to_string();
    let data = json!({
        "call_id": id,
        "queue_id": row.queue_id,
        "agent_id": row.agent_id,
        "caller_number": row.caller_number,
        "answered_at_ms": row.answered_at_ms,
        "wait_ms": row.wait_ms,
        "callback_leg": row.callback_leg.map(|l| l.to_string()),
    });
    // A call is answered once per agent at most... and a call may be answered again after a
    // failed transfer: the time keeps such answers apart.
    let source = format!("{id}:{}:{}", row.agent_id, row.answered_at_ms);
    vec![OutboxEvent::new(
        &source,
        row.tenant,
        CALL_ANSWERED,
        row.answered_at_ms,
        data,
    )]
}

/// One state an agent entered (`agent_states`).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct AgentStateRow {
    pub tenant: TenantId,
    pub agent_id: i64,
    pub at_ms: i64,
    /// The engine's name: `logged-out`, `available`, `on-break`, `reserved`, `on-call`,
    /// `wrap-up`.
    pub state: String,
    pub reason: Option<String>,
}

impl FromStoreRow for AgentStateRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(AgentStateRow {
            tenant: row.tenant("tenant_id")?,
            agent_id: row.i64("agent_id")?,
            at_ms: row.i64("at")?,
            state: row.string("state")?,
            reason: row.opt_string("reason")?,
        })
    }
}

pub fn agent_state_events(row: &AgentStateRow) -> Vec<OutboxEvent> {
    let data = json!({
        "agent_id": row.agent_id,
        "state": row.state,
        "reason": row.reason,
        "at_ms": row.at_ms,
    });
    let source = format!("{}:{}:{}", row.agent_id, row.at_ms, row.state);
    vec![OutboxEvent::new(
        &source,
        row.tenant,
        AGENT_STATE_CHANGED,
        row.at_ms,
        data,
    )]
}

/// The event a campaign's new state makes (`draft` makes none).
pub fn campaign_event_type(state: &str) -> Option<&'static str> {
    match state {
        "running" => Some(CAMPAIGN_STARTED),
        "paused" => Some(CAMPAIGN_PAUSED),
        "completed" => Some(CAMPAIGN_COMPLETED),
        _ => None,
    }
}

/// A campaign's state change, when its tenant is known.
pub fn campaign_events(
    tenant: TenantId,
    campaign: i64,
    state: &str,
    at_ms: i64,
    by: &str,
) -> Vec<OutboxEvent> {
    let Some(event_type) = campaign_event_type(state) else {
        return Vec::new();
    };
    let data = json!({ "campaign_id": campaign, "state": state, "at_ms": at_ms, "by": by });
    if event_type == CAMPAIGN_COMPLETED {
        return vec![OutboxEvent {
            id: completed_message_id(campaign),
            tenant,
            event_type,
            occurred_at_ms: at_ms,
            data,
        }];
    }
    vec![OutboxEvent::new(
        &format!("{campaign}:{at_ms}"),
        tenant,
        event_type,
        at_ms,
        data,
    )]
}

/// A campaign completes once (a completed campaign takes no controls but stop): its message
/// id is the campaign's, so the API's stop and the engine's own record of it make one message.
pub fn completed_message_id(campaign: i64) -> String {
    message_id(&format!("{CAMPAIGN_COMPLETED}:{campaign}"))
}

const OUTBOX_HEAD: &str =
    "INSERT INTO webhook_outbox (id, tenant_id, event_type, occurred_at, data)";
const OUTBOX_TAIL: &str = "ON CONFLICT (id) DO NOTHING";

/// The statements that file `events` (appended to the transaction of their records).
pub(super) fn outbox_statements(events: &[OutboxEvent]) -> Vec<(SqlStr, Vec<Arg>)> {
    insert_statements(OUTBOX_HEAD, OUTBOX_TAIL, events, |e| {
        args![
            e.id.as_str(),
            e.tenant,
            e.event_type,
            e.occurred_at_ms,
            &e.data
        ]
    })
}

/// A message owed to an endpoint, due now, with what sending it needs.
#[derive(Clone, Debug, PartialEq)]
pub struct DueDelivery {
    pub message_id: String,
    pub endpoint_id: i64,
    pub tenant: TenantId,
    pub event_type: String,
    pub occurred_at_ms: i64,
    pub data: Value,
    /// Attempts made so far (this one is `attempts + 1`).
    pub attempts: i32,
    pub first_at_ms: i64,
    /// When this attempt was claimed: its end is filed against this claim only (a replay or
    /// resend meanwhile made the message owed afresh, and that stands).
    pub claimed_at_ms: i64,
}

impl FromStoreRow for DueDelivery {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(DueDelivery {
            message_id: row.string("message_id")?,
            endpoint_id: row.i64("endpoint_id")?,
            tenant: row.tenant("tenant_id")?,
            event_type: row.string("event_type")?,
            occurred_at_ms: row.i64("occurred_at")?,
            data: row.json("data")?,
            attempts: row.i32("attempts")?,
            first_at_ms: row.i64("first_at")?,
            claimed_at_ms: 0,
        })
    }
}

/// An attempt's end, to be filed with others ([`Store::finish_deliveries`]).
#[derive(Clone, Debug)]
pub struct FinishedAttempt {
    pub attempt: super::webhooks::WebhookAttemptRow,
    pub claimed_at_ms: i64,
    pub state: DeliveryState,
}

/// How one attempt left a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    Delivered,
    /// Tried again at this time (unix ms).
    RetryAt(i64),
    /// No more attempts (the schedule ran out, or the endpoint was disabled).
    Failed,
}

/// A message an endpoint's delivery log shows by id.
#[derive(Clone, Debug, PartialEq)]
struct MessageRow {
    event_type: String,
}

impl FromStoreRow for MessageRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(MessageRow {
            event_type: row.string("event_type")?,
        })
    }
}

#[derive(Debug)]
struct Unfanned {
    seq: i64,
    id: String,
    event_type: String,
}

impl FromStoreRow for Unfanned {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(Unfanned {
            seq: row.i64("seq")?,
            id: row.string("id")?,
            event_type: row.string("event_type")?,
        })
    }
}

/// A message being fanned out, with what its claimed deliveries are sent with.
#[derive(Debug)]
struct Fanning {
    seq: i64,
    id: String,
    tenant: TenantId,
    event_type: String,
    occurred_at_ms: i64,
    data: Value,
}

impl FromStoreRow for Fanning {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(Fanning {
            seq: row.i64("seq")?,
            id: row.string("id")?,
            tenant: row.tenant("tenant_id")?,
            event_type: row.string("event_type")?,
            occurred_at_ms: row.i64("occurred_at")?,
            data: row.json("data")?,
        })
    }
}

/// One delivery row a fan-out files.
#[derive(Debug)]
struct Owed<'a> {
    /// Its message's place in the fanned batch.
    message: usize,
    message_id: &'a str,
    endpoint: i64,
    tenant: TenantId,
    /// Filed claimed (in the worker's hands at once) rather than pending.
    claimed: bool,
}

/// What a fan-out did ([`Store::fan_out_claiming`]).
#[derive(Debug, Default)]
pub struct FannedOut {
    /// Messages fanned (the caller goes on while it is [`FAN_OUT_BATCH`]).
    pub messages: usize,
    /// First attempts filed claimed, in the caller's hands now.
    pub claimed: Vec<DueDelivery>,
    /// It stopped at a message its claims had no room for: more wait in the outbox.
    pub stopped: bool,
}

/// What a fan-out may take in hand for the worker as it files the rows
/// ([`Store::fan_out_claiming`]): first attempts of endpoints with nothing older due in the
/// database, up to each one's room and the worker's.
#[derive(Clone, Copy, Debug)]
pub struct FanOutClaim<'a> {
    /// As [`Store::claim_due_deliveries`]'s: the claimed rows are due again after it.
    pub lease_ms: i64,
    /// Deliveries the worker has in hand per endpoint.
    pub held: &'a HashMap<i64, usize>,
    /// An endpoint's deliveries in hand, at most.
    pub per_endpoint: usize,
    /// Endpoints with deliveries due in the database still (full ones): theirs are filed
    /// pending, behind those (a claim takes them in due order).
    pub behind: &'a HashSet<i64>,
    /// Claimed in all, at most.
    pub limit: usize,
}

/// A fan-out's running count of what it claims.
struct ClaimRoom<'a> {
    claim: FanOutClaim<'a>,
    taken: HashMap<i64, usize>,
    total: usize,
}

impl<'a> ClaimRoom<'a> {
    fn new(claim: FanOutClaim<'a>) -> ClaimRoom<'a> {
        ClaimRoom {
            claim,
            taken: HashMap::new(),
            total: 0,
        }
    }

    /// Whether the claimable deliveries of a message to `endpoints` fit what is left.
    fn fits(&self, endpoints: &[i64]) -> bool {
        let claimable = endpoints.iter().filter(|e| self.would_take(**e)).count();
        self.total + claimable <= self.claim.limit
    }

    fn would_take(&self, endpoint: i64) -> bool {
        if self.claim.behind.contains(&endpoint) {
            return false;
        }
        let held = self.claim.held.get(&endpoint).copied().unwrap_or(0);
        self.taken.get(&endpoint).copied().unwrap_or(held) < self.claim.per_endpoint
    }

    /// Whether the endpoint's next new delivery is claimed (and counts it if so).
    fn take(&mut self, endpoint: i64) -> bool {
        if self.total >= self.claim.limit || self.claim.behind.contains(&endpoint) {
            return false;
        }
        let held = self.claim.held.get(&endpoint).copied().unwrap_or(0);
        let taken = self.taken.entry(endpoint).or_insert(held);
        if *taken >= self.claim.per_endpoint {
            return false;
        }
        *taken += 1;
        self.total += 1;
        true
    }
}

#[derive(Debug)]
struct EndpointFilter {
    id: i64,
    tenant: TenantId,
    events: Vec<String>,
}

impl FromStoreRow for EndpointFilter {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(EndpointFilter {
            id: row.i64("id")?,
            tenant: row.tenant("tenant_id")?,
            events: serde_json::from_value(row.json("events")?).unwrap_or_default(),
        })
    }
}

impl Store {
    /// Files calls answered by their agents, each with its `call.answered` message (the
    /// answer has no row of its own: the message is its record). Journaled through outages.
    pub async fn insert_answers(&self, rows: &[AnswerRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        if let Some(done) = self
            .spooled(|| super::spool::Op::Answers {
                rows: rows.to_vec(),
            })
            .await
        {
            return done;
        }
        let events: Vec<OutboxEvent> = rows.iter().flat_map(answer_events).collect();
        self.batch(outbox_statements(&events)).await
    }

    /// Files agents' states, each with its `agent.state_changed` message, in one transaction.
    /// A state filed again (same agent, time and state) is skipped. Journaled through outages.
    pub async fn insert_agent_states(&self, rows: &[AgentStateRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        if let Some(done) = self
            .spooled(|| super::spool::Op::AgentStates {
                rows: rows.to_vec(),
            })
            .await
        {
            return done;
        }
        const HEAD: &str = "INSERT INTO agent_states (tenant_id, agent_id, at, state, reason)";
        const TAIL: &str = "ON CONFLICT (tenant_id, agent_id, at, state) DO NOTHING";
        let mut statements = insert_statements(HEAD, TAIL, rows, |r| {
            args![
                r.tenant,
                r.agent_id,
                r.at_ms,
                r.state.as_str(),
                r.reason.as_deref()
            ]
        });
        let events: Vec<OutboxEvent> = rows.iter().flat_map(agent_state_events).collect();
        statements.extend(outbox_statements(&events));
        self.batch(statements).await
    }

    /// The state (and break reason) an agent last entered, as kept.
    pub async fn last_agent_state(
        &self,
        tenant: TenantId,
        agent: i64,
    ) -> Result<Option<AgentStateRow>, StoreError> {
        self.fetch_optional(
            Use::Read,
            "SELECT tenant_id, agent_id, at, state, reason FROM agent_states \
             WHERE tenant_id = $1 AND agent_id = $2 ORDER BY at DESC, id DESC LIMIT 1",
            args![tenant, agent],
        )
        .await
    }

    /// An agent's states from `from_ms` (inclusive) to `to_ms` (exclusive), oldest first.
    pub async fn agent_states(
        &self,
        tenant: TenantId,
        agent: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<AgentStateRow>, StoreError> {
        self.fetch_all(
            Use::Read,
            "SELECT tenant_id, agent_id, at, state, reason FROM agent_states \
             WHERE tenant_id = $1 AND agent_id = $2 AND at >= $3 AND at < $4 ORDER BY at, id",
            args![tenant, agent, from_ms, to_ms],
        )
        .await
    }

    /// Gives the oldest messages not yet fanned out their delivery rows: one per enabled
    /// endpoint of the message's tenant that wants its type, due at once. Returns how many
    /// messages were fanned (the caller goes on while it is [`FAN_OUT_BATCH`]).
    pub async fn fan_out_outbox(&self, now_ms: i64) -> Result<usize, StoreError> {
        Ok(self.fan_out_claiming(now_ms, None).await?.messages)
    }

    /// As [`Store::fan_out_outbox`], filing the first attempts `claim` allows already
    /// claimed (leased as [`Store::claim_due_deliveries`] would) and returning them: the
    /// worker then skips the claim's own row write and round trips for them. Messages are
    /// fanned whole, only while their claimed rows fit `claim.limit` (the first always).
    pub async fn fan_out_claiming(
        &self,
        now_ms: i64,
        claim: Option<FanOutClaim<'_>>,
    ) -> Result<FannedOut, StoreError> {
        let pending: Vec<Fanning> = self
            .fetch_all(
                Use::Write,
                "SELECT seq, id, tenant_id, event_type, occurred_at, data FROM webhook_outbox \
                 WHERE fanned = FALSE ORDER BY seq LIMIT $1",
                args![FAN_OUT_BATCH],
            )
            .await?;
        if pending.is_empty() {
            return Ok(FannedOut::default());
        }
        let endpoints: Vec<EndpointFilter> = self
            .fetch_all(
                Use::Write,
                "SELECT id, tenant_id, events FROM webhook_endpoints WHERE enabled = TRUE",
                args![],
            )
            .await?;
        let mut room = claim.map(ClaimRoom::new);
        let mut owed: Vec<Owed<'_>> = Vec::new();
        let mut stopped = false;
        let mut fanned = 0;
        for (i, m) in pending.iter().enumerate() {
            let wanted: Vec<i64> = endpoints
                .iter()
                .filter(|e| {
                    e.tenant == m.tenant
                        && (e.events.is_empty() || e.events.contains(&m.event_type))
                })
                .map(|e| e.id)
                .collect();
            // Whole messages while the worker has room for them: the rest wait in the
            // outbox, in order, and are born claimed at a later pass (the first always goes,
            // whatever its size, so that no message waits for room it can never have).
            if let Some(r) = &room
                && i > 0
                && !r.fits(&wanted)
            {
                stopped = true;
                break;
            }
            for &endpoint in &wanted {
                let claimed = room.as_mut().is_some_and(|r| r.take(endpoint));
                owed.push(Owed {
                    message: i,
                    message_id: m.id.as_str(),
                    endpoint,
                    tenant: m.tenant,
                    claimed,
                });
            }
            fanned = i + 1;
        }
        let pending = &pending[..fanned];
        let lease_ms = room.as_ref().map_or(0, |r| r.claim.lease_ms);
        let last = pending.last().map_or(0, |m| m.seq);
        let filed_claimed: Vec<(String, i64)> = if let super::Inner::Postgres(pool) = &self.inner {
            pg::fan_out(pool, &owed, now_ms, lease_ms, last).await?
        } else {
            const HEAD: &str = "INSERT INTO webhook_deliveries (message_id, endpoint_id, \
                 tenant_id, state, attempts, first_at, next_at, claimed_at, updated_at)";
            // A row already there (a replay reached the message before its fan-out) stays
            // as it is, unless it is owed and unclaimed: then this claim takes it. Unlike
            // PostgreSQL's, this statement cannot say which rows it filed: one a replay
            // filed and a claim took between the two reads (both within milliseconds of the
            // message) is sent once more, with its id, and the filing of that send matches
            // no claim, so the row keeps its own state. At least once either way.
            const TAIL: &str = "ON CONFLICT (message_id, endpoint_id) DO UPDATE SET \
                 next_at = excluded.next_at, claimed_at = excluded.claimed_at, \
                 updated_at = excluded.updated_at WHERE excluded.claimed_at IS NOT NULL \
                 AND webhook_deliveries.state = 'pending' \
                 AND webhook_deliveries.claimed_at IS NULL";
            let mut statements = insert_statements(HEAD, TAIL, &owed, |o| {
                let (next_at, claimed_at) = if o.claimed {
                    (now_ms.saturating_add(lease_ms), Some(now_ms))
                } else {
                    (now_ms, None)
                };
                args![
                    o.message_id,
                    o.endpoint,
                    o.tenant,
                    "pending",
                    0i32,
                    now_ms,
                    next_at,
                    claimed_at,
                    now_ms
                ]
            });
            statements.push((
                SqlStr::from_static(
                    "UPDATE webhook_outbox SET fanned = TRUE WHERE fanned = FALSE AND seq <= $1",
                ),
                args![last],
            ));
            self.batch(statements).await?;
            owed.iter()
                .filter(|o| o.claimed)
                .map(|o| (o.message_id.to_owned(), o.endpoint))
                .collect()
        };
        // Only the claimed rows are looked up (most fan-outs under a backlog claim none).
        let by_key: HashMap<(&str, i64), usize> = owed
            .iter()
            .filter(|o| o.claimed)
            .map(|o| ((o.message_id, o.endpoint), o.message))
            .collect();
        let claimed = filed_claimed
            .iter()
            .filter_map(|(message_id, endpoint)| {
                let m = &pending[*by_key.get(&(message_id.as_str(), *endpoint))?];
                Some(DueDelivery {
                    message_id: m.id.clone(),
                    endpoint_id: *endpoint,
                    tenant: m.tenant,
                    event_type: m.event_type.clone(),
                    occurred_at_ms: m.occurred_at_ms,
                    data: m.data.clone(),
                    attempts: 0,
                    first_at_ms: now_ms,
                    claimed_at_ms: now_ms,
                })
            })
            .collect();
        Ok(FannedOut {
            messages: pending.len(),
            claimed,
            stopped,
        })
    }

    /// Deliveries due by `now_ms` to enabled endpoints, oldest due first, at most `limit`;
    /// each is claimed: its next try moves to `now_ms + lease_ms`, so a crash during the
    /// attempt leaves it to be tried again then (at least once), and a second worker does
    /// not take it meanwhile.
    pub async fn claim_due_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        self.claim_due_deliveries_within(now_ms, lease_ms, limit, &HashMap::new(), usize::MAX)
            .await
    }

    /// As [`Store::claim_due_deliveries`], leaving out what would give an endpoint more than
    /// `per_endpoint` deliveries in hand, counting the `held` ones the caller has (claimed,
    /// not yet filed): a slow endpoint's backlog then waits in the database, not in the
    /// worker's slots, and the other endpoints' deliveries go past it.
    pub async fn claim_due_deliveries_within(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
        held: &HashMap<i64, usize>,
        per_endpoint: usize,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        if let Some(down) = self.refused_while_down() {
            return Err(down);
        }
        if let super::Inner::Postgres(pool) = &self.inner {
            return pg::claim(pool, now_ms, lease_ms, limit, held, per_endpoint).await;
        }
        let full: Vec<i64> = held
            .iter()
            .filter(|(_, n)| **n >= per_endpoint)
            .map(|(e, _)| *e)
            .collect();
        let mut b = super::history::SqlBuilder::default();
        b.push(
            "SELECT d.message_id, d.endpoint_id, d.tenant_id, o.event_type, \
             o.occurred_at, o.data, d.attempts, d.first_at \
             FROM webhook_deliveries d \
             JOIN webhook_outbox o ON o.id = d.message_id \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.state = 'pending' AND d.next_at <= ",
        )
        .bind(now_ms)
        .push(" AND e.enabled = TRUE");
        if !full.is_empty() {
            b.push(" AND d.endpoint_id NOT IN (");
            for (i, e) in full.iter().enumerate() {
                if i > 0 {
                    b.push(", ");
                }
                b.bind(*e);
            }
            b.push(")");
        }
        b.push(" ORDER BY d.next_at, d.message_id LIMIT ")
            .bind(limit);
        let (sql, args) = b.finish();
        let found: Vec<DueDelivery> = self.fetch_all(Use::Write, sql, args).await?;
        // What the endpoints not excluded can still take: the first of theirs, in due order.
        let mut room: HashMap<i64, usize> = HashMap::new();
        let mut due: Vec<DueDelivery> = Vec::with_capacity(found.len());
        for mut d in found {
            let taken = room
                .entry(d.endpoint_id)
                .or_insert_with(|| held.get(&d.endpoint_id).copied().unwrap_or(0));
            if *taken >= per_endpoint {
                continue;
            }
            *taken += 1;
            d.claimed_at_ms = now_ms;
            due.push(d);
        }
        if due.is_empty() {
            return Ok(due);
        }
        // One UPDATE per chunk (a pass claims hundreds): keys as row values.
        let statements = due
            .chunks(super::history::MAX_STATEMENT_PARAMS / 2)
            .map(|chunk| {
                let mut b = super::history::SqlBuilder::default();
                b.push("UPDATE webhook_deliveries SET next_at = ")
                    .bind(now_ms.saturating_add(lease_ms))
                    .push(", claimed_at = ")
                    .bind(now_ms)
                    .push(", updated_at = ")
                    .bind(now_ms)
                    .push(" WHERE state = 'pending' AND (message_id, endpoint_id) IN (VALUES ");
                for (i, d) in chunk.iter().enumerate() {
                    if i > 0 {
                        b.push(", ");
                    }
                    b.push("(")
                        .bind(d.message_id.as_str())
                        .push(", ")
                        .bind(d.endpoint_id)
                        .push(")");
                }
                b.push(")");
                b.finish()
            })
            .collect();
        self.batch(statements).await?;
        Ok(due)
    }

    /// Makes the attempts a previous process claimed and never finished (it was killed) due
    /// at once: they are sent again, with their message ids. Only the one worker of a
    /// database calls this, at its start. Returns how many.
    pub async fn release_claims(&self, now_ms: i64) -> Result<u64, StoreError> {
        self.execute(
            "UPDATE webhook_deliveries SET next_at = $1, claimed_at = NULL \
             WHERE claimed_at IS NOT NULL AND state = 'pending'",
            args![now_ms],
        )
        .await
    }

    /// The next time a pending delivery to an enabled endpoint is due (unix ms), if any.
    pub async fn next_delivery_due(&self) -> Result<Option<i64>, StoreError> {
        if let Some(down) = self.refused_while_down() {
            return Err(down);
        }
        if let super::Inner::Postgres(pool) = &self.inner {
            return pg::next_due(pool).await;
        }
        let row: Option<MinRow> = self
            .fetch_optional(
                Use::Read,
                "SELECT MIN(d.next_at) AS v FROM webhook_deliveries d \
                 JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 WHERE d.state = 'pending' AND e.enabled = TRUE",
                args![],
            )
            .await?;
        Ok(row.and_then(|r| r.0))
    }

    /// Files an attempt's end in one transaction: its log row, the delivery's new state, and
    /// what it says of the endpoint (a delivery clears the failure run, a failure starts it
    /// if it is not running, `disable` stops the endpoint with its reason). Returns whether
    /// this attempt disabled the endpoint (it was enabled until now).
    pub async fn finish_delivery(
        &self,
        attempt: &super::webhooks::WebhookAttemptRow,
        claimed_at_ms: i64,
        state: DeliveryState,
        disable: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (name, next_at) = match state {
            DeliveryState::Delivered => ("delivered", None),
            DeliveryState::RetryAt(at) => ("pending", Some(at)),
            DeliveryState::Failed => ("failed", None),
        };
        let mut statements = super::webhooks::attempt_statements(attempt, disable);
        statements.push((
            SqlStr::from_static(
                "UPDATE webhook_deliveries SET state = $3, attempts = $4, next_at = $5, \
                 claimed_at = NULL, updated_at = $6 \
                 WHERE message_id = $1 AND endpoint_id = $2 AND claimed_at = $7",
            ),
            args![
                attempt.message_id.as_str(),
                attempt.endpoint_id,
                name,
                attempt.attempt,
                next_at,
                attempt.at_ms,
                claimed_at_ms
            ],
        ));
        let was_enabled: Option<EnabledRow> = if disable.is_some() {
            self.fetch_optional(
                Use::Write,
                "SELECT enabled AS v FROM webhook_endpoints WHERE id = $1",
                args![attempt.endpoint_id],
            )
            .await?
        } else {
            None
        };
        self.batch(statements).await?;
        Ok(disable.is_some() && was_enabled.is_some_and(|r| r.0))
    }

    /// Files the ends of many attempts that disabled nothing, in one transaction: their log
    /// rows, each delivery's new state (against its claim, as [`Store::finish_delivery`]), and
    /// per endpoint what its latest attempt says of it (delivered: the failure run is over;
    /// failed: it runs from then, if it was not running).
    pub async fn finish_deliveries(&self, done: &[FinishedAttempt]) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        if let Some(down) = self.refused_while_down() {
            return Err(down);
        }
        if let super::Inner::Postgres(pool) = &self.inner {
            return pg::finish(pool, done).await;
        }
        let attempts: Vec<&super::webhooks::WebhookAttemptRow> =
            done.iter().map(|f| &f.attempt).collect();
        let mut statements = super::webhooks::attempt_rows_statements(&attempts);
        // Each delivery's new state, many to a statement (one statement each cost PostgreSQL
        // a round trip per delivery): the values as a table, joined on the key and the claim.
        const HEAD: &str = "UPDATE webhook_deliveries SET state = v.column3, \
             attempts = v.column4, next_at = v.column5, claimed_at = NULL, \
             updated_at = v.column6 FROM (";
        const TAIL: &str = ") AS v WHERE webhook_deliveries.message_id = v.column1 \
             AND webhook_deliveries.endpoint_id = v.column2 \
             AND webhook_deliveries.claimed_at = v.column7";
        statements.extend(insert_statements(HEAD, TAIL, done, |f| {
            let (name, next_at) = match f.state {
                DeliveryState::Delivered => ("delivered", None),
                DeliveryState::RetryAt(at) => ("pending", Some(at)),
                DeliveryState::Failed => ("failed", None),
            };
            args![
                f.attempt.message_id.as_str(),
                f.attempt.endpoint_id,
                name,
                f.attempt.attempt,
                next_at,
                f.attempt.at_ms,
                f.claimed_at_ms
            ]
        }));
        let mut latest: std::collections::BTreeMap<i64, &super::webhooks::WebhookAttemptRow> =
            std::collections::BTreeMap::new();
        for a in &attempts {
            let e = latest.entry(a.endpoint_id).or_insert(a);
            if a.at_ms >= e.at_ms {
                *e = a;
            }
        }
        for a in latest.values() {
            statements.push((
                SqlStr::from_static(
                    "UPDATE webhook_endpoints SET failing_since = CASE WHEN $3 THEN NULL \
                     ELSE $4 END \
                     WHERE tenant_id = $1 AND id = $2 AND (failing_since IS NULL) <> $3",
                ),
                args![a.tenant, a.endpoint_id, a.delivered, a.at_ms],
            ));
        }
        self.batch(statements).await
    }

    /// Makes every message of the endpoint's tenant since `since_ms` that the endpoint wants
    /// owed to it again (pending now, its schedule restarted; delivered ones are sent again,
    /// with the same message id). Returns how many.
    pub async fn replay_webhook_since(
        &self,
        tenant: TenantId,
        endpoint: i64,
        since_ms: i64,
        events: &[String],
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        // The filter is applied here, not in SQL: it is a JSON list, read the same way on
        // both backends; messages are read in pages so a month of events is never one list.
        const PAGE: &str = "SELECT seq, id, event_type FROM webhook_outbox \
             WHERE tenant_id = $1 AND occurred_at >= $2 AND seq > $3 ORDER BY seq LIMIT $4";
        let mut after = 0i64;
        let mut total = 0u64;
        loop {
            let page: Vec<Unfanned> = self
                .fetch_all(
                    Use::Write,
                    PAGE,
                    args![tenant, since_ms, after, FAN_OUT_BATCH],
                )
                .await?;
            let Some(last) = page.last() else {
                return Ok(total);
            };
            after = last.seq;
            let wanted: Vec<&Unfanned> = page
                .iter()
                .filter(|m| events.is_empty() || events.contains(&m.event_type))
                .collect();
            total += wanted.len() as u64;
            let statements = insert_statements(
                "INSERT INTO webhook_deliveries (message_id, endpoint_id, tenant_id, state, \
                 attempts, first_at, next_at, updated_at)",
                "ON CONFLICT (message_id, endpoint_id) DO UPDATE SET state = 'pending', \
                 attempts = 0, first_at = EXCLUDED.first_at, next_at = EXCLUDED.next_at, \
                 claimed_at = NULL, updated_at = EXCLUDED.updated_at",
                &wanted,
                |m| {
                    args![
                        m.id.as_str(),
                        endpoint,
                        tenant,
                        "pending",
                        0i32,
                        now_ms,
                        now_ms,
                        now_ms
                    ]
                },
            );
            self.batch(statements).await?;
            if (page.len() as i64) < FAN_OUT_BATCH {
                return Ok(total);
            }
        }
    }

    /// Makes one message owed to the endpoint again (pending now, its schedule restarted).
    /// `None`: no such message of this tenant. Returns its event type.
    pub async fn resend_webhook_message(
        &self,
        tenant: TenantId,
        endpoint: i64,
        message_id: &str,
        now_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let found: Option<MessageRow> = self
            .fetch_optional(
                Use::Write,
                "SELECT event_type FROM webhook_outbox WHERE tenant_id = $1 AND id = $2",
                args![tenant, message_id],
            )
            .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        self.execute(
            "INSERT INTO webhook_deliveries (message_id, endpoint_id, tenant_id, state, \
             attempts, first_at, next_at, updated_at) VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) \
             ON CONFLICT (message_id, endpoint_id) DO UPDATE SET state = 'pending', \
             attempts = 0, first_at = EXCLUDED.first_at, next_at = EXCLUDED.next_at, \
             claimed_at = NULL, updated_at = EXCLUDED.updated_at",
            args![message_id, endpoint, tenant, now_ms],
        )
        .await?;
        Ok(Some(found.event_type))
    }

    /// Deletes messages older than `before_ms` and what was owed of them. Returns how many
    /// messages went.
    pub async fn prune_outbox(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM webhook_deliveries WHERE message_id IN \
             (SELECT id FROM webhook_outbox WHERE occurred_at < $1 AND fanned = TRUE)",
            args![before_ms],
        )
        .await?;
        self.execute(
            "DELETE FROM webhook_outbox WHERE occurred_at < $1 AND fanned = TRUE",
            args![before_ms],
        )
        .await
    }

    /// The outbox's messages of a tenant, oldest first (tests and the operator's eye).
    pub async fn outbox_messages(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(String, String, Value)>, StoreError> {
        let rows: Vec<OutboxListRow> = self
            .fetch_all(
                Use::Read,
                "SELECT id, event_type, data FROM webhook_outbox WHERE tenant_id = $1 \
                 ORDER BY seq",
                args![tenant],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.id, r.event_type, r.data))
            .collect())
    }
}

struct MinRow(Option<i64>);

impl FromStoreRow for MinRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(MinRow(row.opt_i64("v")?))
    }
}

struct EnabledRow(bool);

impl FromStoreRow for EnabledRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(EnabledRow(row.bool("v")?))
    }
}

struct OutboxListRow {
    id: String,
    event_type: String,
    data: Value,
}

impl FromStoreRow for OutboxListRow {
    fn from_row<R: RowExt>(row: &R) -> Result<Self, StoreError> {
        Ok(OutboxListRow {
            id: row.string("id")?,
            event_type: row.string("event_type")?,
            data: row.json("data")?,
        })
    }
}

/// Milliseconds now (the worker passes its own clock; this is for callers without one).
pub fn wall_ms() -> i64 {
    now_ms()
}

/// PostgreSQL's own statements for the worker's hot path (SQLite keeps the portable ones
/// above, whose costs it already meets).
///
/// - One statement per batch, whatever its size: the rows travel as arrays (`UNNEST`), so
///   filing 2,048 attempts is three statements, not three hundred (the portable statements
///   stop at 256 parameters, a limit SQLite needs and PostgreSQL does not), and the text never
///   changes, so each is prepared once per connection.
/// - Plans that do not depend on the statistics. `webhook_deliveries` grows by thousands of
///   rows a second under load, faster than autovacuum analyses it; a planner that believes a
///   few hundred rows are pending takes a bitmap scan and a sort over all of them (65-100 ms
///   a claim with 30,000 pending). The claim walks each enabled endpoint's pending rows in
///   due order on the partial index of migration 0026 and stops at what it may take, and its
///   transaction turns bitmap and sequential scans, hash and merge joins off (`SET LOCAL`),
///   so that walk and primary-key look-ups are the only plans left: the cost is what is
///   taken, not what waits.
mod pg {
    use std::collections::HashMap;

    use sqlx::postgres::{PgPool, Postgres};
    use sqlx::{Row, Transaction};

    use super::{DeliveryState, DueDelivery, FinishedAttempt};
    use crate::store::rows::FromStoreRow;
    use crate::store::{StoreError, uuid_text};

    /// For this transaction only: index walks and nested loops are the only plans left (see
    /// the module's note). Without it, the same claim statements were seen taking a bitmap
    /// scan and a sort over 95,830 pending rows (735 ms instead of 30), and the keyed updates
    /// a hash of every pending row (500 ms instead of 20). JIT off: the plans turned off carry
    /// a huge nominal cost, which would otherwise make PostgreSQL compile a 20 ms statement
    /// for seconds.
    const PLANS: &str = "SELECT set_config('enable_seqscan', 'off', true), \
         set_config('enable_bitmapscan', 'off', true), \
         set_config('enable_hashjoin', 'off', true), \
         set_config('enable_mergejoin', 'off', true), set_config('jit', 'off', true)";

    /// The oldest due deliveries of enabled endpoints, each endpoint's walk stopped at its
    /// room (`$4` minus what the worker holds of it, at most `$5`), then the `$5` oldest of
    /// those. A disabled or deleted endpoint's backlog is never read. Bound: a claim reads
    /// at most (enabled endpoints) x min(room, `$5`) index entries (10 x 512 in the benchmark,
    /// for 2,048 taken), and sorts those.
    const DUE_KEYS: &str = "SELECT d.message_id, d.endpoint_id FROM webhook_endpoints e \
         LEFT JOIN UNNEST($1::bigint[], $2::bigint[]) AS h(id, n) ON h.id = e.id \
         CROSS JOIN LATERAL (SELECT message_id, endpoint_id, next_at FROM webhook_deliveries \
             WHERE endpoint_id = e.id AND state = 'pending' AND next_at <= $3 \
             ORDER BY next_at, message_id \
             LIMIT LEAST(GREATEST($4::bigint - COALESCE(h.n, 0), 0), $5::bigint)) d \
         WHERE e.enabled ORDER BY d.next_at, d.message_id LIMIT $5::bigint";

    /// Claims the keys (lease: next try at `$3`, claimed at `$4`) and returns what sending
    /// needs, message by message. Still pending is spelt as neither delivered nor failed (the
    /// only other states): `state = 'pending'` would make the partial index a candidate, and
    /// a key looked up there reads its endpoint's whole backlog; the primary key reads one.
    const CLAIM: &str = "WITH claimed AS (UPDATE webhook_deliveries d \
             SET next_at = $3, claimed_at = $4, updated_at = $4 \
             FROM UNNEST($1::text[], $2::bigint[]) AS k(message_id, endpoint_id) \
             WHERE d.message_id = k.message_id AND d.endpoint_id = k.endpoint_id \
             AND d.state <> 'delivered' AND d.state <> 'failed' \
             RETURNING d.message_id, d.endpoint_id, d.tenant_id, d.attempts, d.first_at) \
         SELECT c.message_id, c.endpoint_id, c.tenant_id, o.event_type, o.occurred_at, o.data, \
             c.attempts, c.first_at \
         FROM claimed c JOIN webhook_outbox o ON o.id = c.message_id";

    /// The earliest next try of an enabled endpoint's pending delivery: each endpoint's
    /// first on the same index.
    const NEXT_DUE: &str = "SELECT MIN(n.next_at) AS v FROM webhook_endpoints e \
         CROSS JOIN LATERAL (SELECT next_at FROM webhook_deliveries \
             WHERE endpoint_id = e.id AND state = 'pending' ORDER BY next_at LIMIT 1) n \
         WHERE e.enabled";

    /// The attempts' log rows (the columns of `webhook_attempts`, in order).
    const INSERT_ATTEMPTS: &str = "INSERT INTO webhook_attempts (id, tenant_id, endpoint_id, \
         message_id, event_type, attempt, at, status, latency_ms, response, error, delivered) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], \
         $6::int[], $7::bigint[], $8::int[], $9::bigint[], $10::text[], $11::text[], \
         $12::bool[])";

    /// Each delivery's new state, against its claim (a replay or resend meanwhile stands).
    const FINISH: &str = "UPDATE webhook_deliveries d SET state = v.state, \
             attempts = v.attempts, next_at = v.next_at, claimed_at = NULL, updated_at = v.at \
         FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::int[], $5::bigint[], \
             $6::bigint[], $7::bigint[]) \
             AS v(message_id, endpoint_id, state, attempts, next_at, at, claimed_at) \
         WHERE d.message_id = v.message_id AND d.endpoint_id = v.endpoint_id \
         AND d.claimed_at = v.claimed_at";

    /// Per endpoint, what its latest attempt says: delivered ends the failure run, failed
    /// starts it if it is not running.
    const FAILURE_RUNS: &str = "UPDATE webhook_endpoints e SET failing_since = \
             CASE WHEN v.delivered THEN NULL ELSE v.at END \
         FROM UNNEST($1::text[], $2::bigint[], $3::bool[], $4::bigint[]) \
             AS v(tenant_id, id, delivered, at) \
         WHERE e.tenant_id = v.tenant_id AND e.id = v.id \
         AND (e.failing_since IS NULL) <> v.delivered";

    /// The fan-out's rows, each due at once or already claimed (`$5`: claimed at `$4`, due
    /// again at `$6`); returns the claimed ones it filed. A row a replay filed first stays as
    /// it is, unless it is owed and unclaimed: then the claim takes it (as SQLite's does).
    const FAN_OUT: &str = "WITH filed AS (INSERT INTO webhook_deliveries \
             (message_id, endpoint_id, tenant_id, state, attempts, first_at, next_at, \
             claimed_at, updated_at) \
         SELECT v.message_id, v.endpoint_id, v.tenant_id, 'pending', 0, $4, \
             CASE WHEN v.claimed THEN $6 ELSE $4 END, \
             CASE WHEN v.claimed THEN $4::bigint END, $4 \
         FROM UNNEST($1::text[], $2::bigint[], $3::text[], $5::bool[]) \
             AS v(message_id, endpoint_id, tenant_id, claimed) \
         ON CONFLICT (message_id, endpoint_id) DO UPDATE SET next_at = EXCLUDED.next_at, \
             claimed_at = EXCLUDED.claimed_at, updated_at = EXCLUDED.updated_at \
             WHERE EXCLUDED.claimed_at IS NOT NULL AND webhook_deliveries.state = 'pending' \
             AND webhook_deliveries.claimed_at IS NULL \
         RETURNING message_id, endpoint_id, claimed_at) \
         SELECT message_id, endpoint_id FROM filed WHERE claimed_at IS NOT NULL";

    const MARK_FANNED: &str =
        "UPDATE webhook_outbox SET fanned = TRUE WHERE fanned = FALSE AND seq <= $1";

    async fn planned(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = pool.begin().await?;
        sqlx::query(PLANS).execute(&mut *tx).await?;
        Ok(tx)
    }

    pub(super) async fn claim(
        pool: &PgPool,
        now_ms: i64,
        lease_ms: i64,
        limit: i64,
        held: &HashMap<i64, usize>,
        per_endpoint: usize,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let (held_ids, held_counts): (Vec<i64>, Vec<i64>) = held
            .iter()
            .map(|(e, n)| (*e, i64::try_from(*n).unwrap_or(i64::MAX)))
            .unzip();
        let per_endpoint = i64::try_from(per_endpoint).unwrap_or(i64::MAX);
        let mut tx = planned(pool).await?;
        let keys = sqlx::query(DUE_KEYS)
            .bind(held_ids)
            .bind(held_counts)
            .bind(now_ms)
            .bind(per_endpoint)
            .bind(limit.max(0))
            .fetch_all(&mut *tx)
            .await?;
        if keys.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let mut order: HashMap<(String, i64), usize> = HashMap::with_capacity(keys.len());
        let mut messages = Vec::with_capacity(keys.len());
        let mut endpoints = Vec::with_capacity(keys.len());
        for (i, row) in keys.iter().enumerate() {
            let message: String = row.try_get("message_id")?;
            let endpoint: i64 = row.try_get("endpoint_id")?;
            order.insert((message.clone(), endpoint), i);
            messages.push(message);
            endpoints.push(endpoint);
        }
        let rows = sqlx::query(CLAIM)
            .bind(messages)
            .bind(endpoints)
            .bind(now_ms.saturating_add(lease_ms))
            .bind(now_ms)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut due = rows
            .iter()
            .map(|r| {
                let mut d = DueDelivery::from_row(r)?;
                d.claimed_at_ms = now_ms;
                Ok(d)
            })
            .collect::<Result<Vec<DueDelivery>, StoreError>>()?;
        // Oldest due first, as the keys came.
        due.sort_by_key(|d| {
            order
                .get(&(d.message_id.clone(), d.endpoint_id))
                .copied()
                .unwrap_or(usize::MAX)
        });
        Ok(due)
    }

    pub(super) async fn next_due(pool: &PgPool) -> Result<Option<i64>, StoreError> {
        let mut tx = planned(pool).await?;
        let row = sqlx::query(NEXT_DUE).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(row.try_get("v")?)
    }

    pub(super) async fn finish(pool: &PgPool, done: &[FinishedAttempt]) -> Result<(), StoreError> {
        let n = done.len();
        let mut ids = Vec::with_capacity(n);
        let mut tenants = Vec::with_capacity(n);
        let mut endpoints = Vec::with_capacity(n);
        let mut messages = Vec::with_capacity(n);
        let mut types = Vec::with_capacity(n);
        let mut numbers = Vec::with_capacity(n);
        let mut ats = Vec::with_capacity(n);
        let mut statuses = Vec::with_capacity(n);
        let mut latencies = Vec::with_capacity(n);
        let mut responses = Vec::with_capacity(n);
        let mut errors = Vec::with_capacity(n);
        let mut delivered = Vec::with_capacity(n);
        let mut states = Vec::with_capacity(n);
        let mut next_ats = Vec::with_capacity(n);
        let mut claims = Vec::with_capacity(n);
        // Per endpoint, its latest attempt.
        let mut latest: std::collections::BTreeMap<i64, (String, bool, i64)> =
            std::collections::BTreeMap::new();
        for f in done {
            let a = &f.attempt;
            let (state, next_at) = match f.state {
                DeliveryState::Delivered => ("delivered", None),
                DeliveryState::RetryAt(at) => ("pending", Some(at)),
                DeliveryState::Failed => ("failed", None),
            };
            let tenant = uuid_text(a.tenant.0);
            if latest
                .get(&a.endpoint_id)
                .is_none_or(|(_, _, at)| *at <= a.at_ms)
            {
                latest.insert(a.endpoint_id, (tenant.clone(), a.delivered, a.at_ms));
            }
            ids.push(uuid_text(a.id));
            tenants.push(tenant);
            endpoints.push(a.endpoint_id);
            messages.push(a.message_id.clone());
            types.push(a.event_type.clone());
            numbers.push(a.attempt);
            ats.push(a.at_ms);
            statuses.push(a.status);
            latencies.push(a.latency_ms);
            responses.push(a.response.clone());
            errors.push(a.error.clone());
            delivered.push(a.delivered);
            states.push(state);
            next_ats.push(next_at);
            claims.push(f.claimed_at_ms);
        }
        let mut run_tenants = Vec::with_capacity(latest.len());
        let mut run_ids = Vec::with_capacity(latest.len());
        let mut run_delivered = Vec::with_capacity(latest.len());
        let mut run_ats = Vec::with_capacity(latest.len());
        for (id, (tenant, ok, at)) in latest {
            run_tenants.push(tenant);
            run_ids.push(id);
            run_delivered.push(ok);
            run_ats.push(at);
        }
        let mut tx = planned(pool).await?;
        sqlx::query(INSERT_ATTEMPTS)
            .bind(ids)
            .bind(tenants)
            .bind(&endpoints)
            .bind(&messages)
            .bind(types)
            .bind(&numbers)
            .bind(&ats)
            .bind(statuses)
            .bind(latencies)
            .bind(responses)
            .bind(errors)
            .bind(delivered)
            .execute(&mut *tx)
            .await?;
        sqlx::query(FINISH)
            .bind(messages)
            .bind(endpoints)
            .bind(states)
            .bind(numbers)
            .bind(next_ats)
            .bind(ats)
            .bind(claims)
            .execute(&mut *tx)
            .await?;
        sqlx::query(FAILURE_RUNS)
            .bind(run_tenants)
            .bind(run_ids)
            .bind(run_delivered)
            .bind(run_ats)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Files the delivery rows of messages up to `last_seq` and marks them fanned, in one
    /// transaction. Returns the keys of the claimed rows it filed.
    pub(super) async fn fan_out(
        pool: &PgPool,
        owed: &[super::Owed<'_>],
        now_ms: i64,
        lease_ms: i64,
        last_seq: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let messages: Vec<&str> = owed.iter().map(|o| o.message_id).collect();
        let endpoints: Vec<i64> = owed.iter().map(|o| o.endpoint).collect();
        let tenants: Vec<String> = owed.iter().map(|o| uuid_text(o.tenant.0)).collect();
        let claimed: Vec<bool> = owed.iter().map(|o| o.claimed).collect();
        let mut tx = pool.begin().await?;
        let mut filed = Vec::new();
        if !owed.is_empty() {
            let rows = sqlx::query(FAN_OUT)
                .bind(messages)
                .bind(endpoints)
                .bind(tenants)
                .bind(now_ms)
                .bind(claimed)
                .bind(now_ms.saturating_add(lease_ms))
                .fetch_all(&mut *tx)
                .await?;
            for row in &rows {
                filed.push((row.try_get("message_id")?, row.try_get("endpoint_id")?));
            }
        }
        sqlx::query(MARK_FANNED)
            .bind(last_seq)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(filed)
    }
}
