//! The delivery worker: takes what the outbox owes each endpoint to the endpoint, signed,
//! retried on the schedule, until it is delivered, runs out of attempts or the endpoint is
//! disabled.
//!
//! ```text
//!  wake (a record batch was filed) or the next due time or 1 s
//!    ─► fan out new messages ─► claim due deliveries (lease) ─► send them, at most
//!       CONCURRENCY at once ─► finish each (log, next try, disable + endpoint.disabled)
//! ```
//!
//! At least once: a delivery is claimed by pushing its next try past the attempt
//! ([`LEASE`]); a crash between the claim and the attempt's end leaves it due again after the
//! lease, and it is sent again with the same `webhook-id`. Everything the worker knows is in
//! the database: a restart picks up where the last one stopped.
//!
//! Time is [`Clock`]: the wall clock plus an offset that tests move forward to play a receiver
//! down for an hour in a second.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use uuid::Uuid;

use super::schedule::{Attempt, Decision, DisableReason, Outcome, decide};
use super::signing::{MessageId, Secret};
use super::target::{self, Target};
use crate::http::live::{LiveHub, LiveMessage};
use crate::ids::{IdCodec, IdKind};
use crate::store::outbox::{DeliveryState, DueDelivery, FinishedAttempt, OUTBOX_RETENTION_MS};
use crate::store::{Store, WebhookAttemptRow, WebhookRow};

/// How long a claimed delivery is left to its attempt before it is due again: longer than
/// the request timeout (15 s) with room for the answer to be filed.
pub const LEASE: Duration = Duration::from_secs(60);

/// Attempts in flight at once (across endpoints).
pub const CONCURRENCY: usize = 32;

/// Deliveries claimed per pass.
pub const CLAIM_BATCH: i64 = 256;

/// Longest sleep between passes when nothing wakes the worker (a delivery made due by
/// another process, a replay, the clock moved by a test).
pub const IDLE_POLL: Duration = Duration::from_secs(1);

/// How often messages past [`OUTBOX_RETENTION_MS`] are pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The worker's time: the wall clock plus an offset (zero in production; tests move it).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> SystemTime {
        let offset = self.offset_ms.load(Ordering::Relaxed);
        let wall = SystemTime::now();
        match u64::try_from(offset) {
            Ok(ahead) => wall + Duration::from_millis(ahead),
            Err(_) => wall - Duration::from_millis(offset.unsigned_abs()),
        }
    }

    pub fn now_ms(&self) -> i64 {
        unix_ms(self.now())
    }

    /// Moves this clock forward (tests: hours pass at once).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What the worker needs from the runtime.
#[derive(Clone, Debug)]
pub struct WorkerParts {
    pub store: Store,
    pub ids: IdCodec,
    pub hub: LiveHub,
    /// The operator's `[webhooks] allow_private_targets`, read at every attempt.
    pub allow_private: Arc<AtomicBool>,
    pub clock: Clock,
}

/// The running worker.
#[derive(Debug)]
pub struct WorkerHandle {
    wake: Arc<Notify>,
    clock: Clock,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Something was filed: look at the outbox now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A waker to hand to whoever files records.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Starts the worker.
pub fn start(parts: WorkerParts) -> WorkerHandle {
    let wake = Arc::new(Notify::new());
    let clock = parts.clock.clone();
    let task = tokio::spawn(run(parts, wake.clone()));
    WorkerHandle { wake, clock, task }
}

async fn run(parts: WorkerParts, wake: Arc<Notify>) {
    // What a killed predecessor was sending is owed again now, not after its lease.
    match parts.store.release_claims(parts.clock.now_ms()).await {
        Ok(0) => {}
        Ok(n) => debug!(
            deliveries = n,
            "webhook delivery: attempts cut off by the last stop are due again"
        ),
        Err(e) => warn!(error = %e, "webhook delivery: could not release the last run's attempts"),
    }
    let mut last_prune: Option<SystemTime> = None;
    let mut clients: Option<(bool, reqwest::Client)> = None;
    loop {
        let idle = match pass(&parts, &mut clients).await {
            Ok(true) => continue,
            Ok(false) => idle_for(&parts).await,
            Err(e) => {
                warn!(error = %e, "webhook delivery: the store did not answer; trying again");
                IDLE_POLL
            }
        };
        let now = parts.clock.now();
        let prune_due = last_prune.is_none_or(|t| {
            now.duration_since(t)
                .is_ok_and(|since| since >= PRUNE_EVERY)
        });
        if prune_due {
            last_prune = Some(now);
            match parts
                .store
                .prune_outbox(unix_ms(now).saturating_sub(OUTBOX_RETENTION_MS))
                .await
            {
                Ok(0) => {}
                Ok(n) => debug!(messages = n, "webhook outbox: pruned past retention"),
                Err(e) => warn!(error = %e, "webhook outbox: could not prune"),
            }
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(idle) => {}
        }
    }
}

/// How long to sleep with nothing due: until the next due delivery, at most [`IDLE_POLL`].
async fn idle_for(parts: &WorkerParts) -> Duration {
    match parts.store.next_delivery_due().await {
        Ok(Some(at)) => {
            let wait = at.saturating_sub(parts.clock.now_ms()).max(0);
            Duration::from_millis(wait as u64).min(IDLE_POLL)
        }
        Ok(None) | Err(_) => IDLE_POLL,
    }
}

/// One pass: fan out, claim, send. `true` if it did something (go again at once).
async fn pass(
    parts: &WorkerParts,
    clients: &mut Option<(bool, reqwest::Client)>,
) -> Result<bool, crate::store::StoreError> {
    let now = parts.clock.now_ms();
    let mut busy = false;
    loop {
        let fanned = parts.store.fan_out_outbox(now).await?;
        busy |= fanned > 0;
        if (fanned as i64) < crate::store::outbox::FAN_OUT_BATCH {
            break;
        }
    }
    let lease = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    let due = parts
        .store
        .claim_due_deliveries(now, lease, CLAIM_BATCH)
        .await?;
    if due.is_empty() {
        return Ok(busy);
    }
    let mut endpoints: HashMap<i64, Option<WebhookRow>> = HashMap::new();
    for d in &due {
        if let std::collections::hash_map::Entry::Vacant(slot) = endpoints.entry(d.endpoint_id) {
            slot.insert(parts.store.get_webhook(d.tenant, d.endpoint_id).await?);
        }
    }
    // One client (and its pool of kept-alive connections) for as long as the operator's
    // private-target switch stays as it is.
    let allow_private = parts.allow_private.load(Ordering::Relaxed);
    if clients
        .as_ref()
        .is_none_or(|(allowed, _)| *allowed != allow_private)
    {
        match target::client(allow_private) {
            Ok(c) => *clients = Some((allow_private, c)),
            Err(e) => {
                warn!(error = %e, "webhook delivery: no HTTP client");
                return Ok(false);
            }
        }
    }
    let Some((_, client)) = clients.as_ref() else {
        return Ok(false);
    };
    let endpoints = &endpoints;
    let finished: Vec<FinishedAttempt> = futures_util::stream::iter(due)
        .map(|d| async move {
            let Some(Some(endpoint)) = endpoints.get(&d.endpoint_id) else {
                // Deleted since it was claimed: nothing to send to.
                return None;
            };
            deliver(parts, client, endpoint, d).await
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    // One transaction for the pass's attempts (a busy endpoint set makes thousands a
    // second); if it fails, the leases make them due again: sent again, same ids.
    if let Err(e) = parts.store.finish_deliveries(&finished).await {
        warn!(error = %e, attempts = finished.len(), "webhook delivery: could not file the attempts");
    }
    Ok(true)
}

/// The body receivers get: Standard Webhooks' `{type, timestamp, data}`, ids as the API
/// shows them. The same message always serialises to the same bytes (keys sorted).
pub fn body(ids: &IdCodec, d: &DueDelivery) -> Vec<u8> {
    let timestamp = jiff::Timestamp::from_millisecond(d.occurred_at_ms)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut data = d.data.clone();
    present(ids, &mut data);
    let body = json!({ "type": d.event_type, "timestamp": timestamp, "data": data });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Store ids in a payload, shown as the API shows them (by field name; the outbox's payloads
/// name their ids this way and nothing else).
fn present(ids: &IdCodec, data: &mut Value) {
    let Value::Object(map) = data else {
        return;
    };
    for (key, value) in map.iter_mut() {
        let kind = match key.as_str() {
            "queue_id" | "mailbox_queue_id" | "queues" => IdKind::Queue,
            "agent_id" | "mailbox_agent_id" | "agents" => IdKind::Agent,
            "campaign_id" => IdKind::Campaign,
            _ => continue,
        };
        match value {
            Value::Number(n) => {
                if let Some(id) = n.as_i64() {
                    *value = json!(ids.encode(kind, id));
                }
            }
            Value::Array(items) => {
                for item in items.iter_mut() {
                    if let Some(id) = item.as_i64() {
                        *item = json!(ids.encode(kind, id));
                    }
                }
            }
            _ => {}
        }
    }
}

/// A uniform draw in [0, 1) for the retry's jitter.
fn jitter() -> f64 {
    getrandom::u32().map_or(0.5, |v| f64::from(v) / (f64::from(u32::MAX) + 1.0))
}

/// One attempt. Its end comes back to be filed with the pass's others, unless it disabled
/// the endpoint: that one is filed (and announced) at once.
async fn deliver(
    parts: &WorkerParts,
    client: &reqwest::Client,
    endpoint: &WebhookRow,
    d: DueDelivery,
) -> Option<FinishedAttempt> {
    let number = u32::try_from(d.attempts).unwrap_or(0).saturating_add(1);
    let started_ms = parts.clock.now_ms();
    let allow_private = parts.allow_private.load(Ordering::Relaxed);
    let id = MessageId::parse(&d.message_id).unwrap_or_else(|_| MessageId::from_uuid(Uuid::nil()));
    let secrets: Vec<Secret> = endpoint
        .signing_secrets(started_ms)
        .into_iter()
        .filter_map(|s| Secret::parse(s).ok())
        .collect();
    let sent = match Target::parse(&endpoint.url, allow_private) {
        Ok(url) => {
            let ts = started_ms / 1000;
            super::send::send(client, &url, &id, ts, &body(&parts.ids, &d), &secrets).await
        }
        // The operator stopped allowing private targets after it was stored: a failure like
        // any other, logged with why, so the endpoint's owner sees it.
        Err(e) => super::send::Sent {
            status: None,
            retry_after: None,
            latency: Duration::ZERO,
            excerpt: None,
            error: Some(format!("the URL is no longer allowed: {e}")),
            timed_out: false,
        },
    };
    let now = parts.clock.now();
    let outcome = match (sent.status, sent.timed_out) {
        (Some(status), _) => Outcome::Response {
            status,
            retry_after: sent.retry_after.as_deref(),
        },
        (None, true) => Outcome::Timeout,
        (None, false) => Outcome::Transport,
    };
    let decision = decide(&Attempt {
        number,
        outcome,
        failing_since: endpoint
            .failing_since_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
        now,
        jitter: jitter(),
    });
    let now_ms = unix_ms(now);
    let (state, disable) = match decision {
        Decision::Delivered => (DeliveryState::Delivered, None),
        Decision::Retry { after } => (
            DeliveryState::RetryAt(
                now_ms.saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
            ),
            None,
        ),
        // Left owed: an endpoint enabled again takes what it missed.
        Decision::Disable(DisableReason::Gone410) => (DeliveryState::RetryAt(now_ms), Some("gone")),
        Decision::Disable(DisableReason::FailingFor5Days) => {
            (DeliveryState::RetryAt(now_ms), Some("failing"))
        }
        Decision::GiveUp => (DeliveryState::Failed, None),
    };
    let attempt = WebhookAttemptRow {
        id: Uuid::new_v4(),
        tenant: d.tenant,
        endpoint_id: d.endpoint_id,
        message_id: d.message_id.clone(),
        event_type: d.event_type.clone(),
        attempt: i32::try_from(number).unwrap_or(i32::MAX),
        at_ms: now_ms,
        status: sent.status.map(i32::from),
        latency_ms: i64::try_from(sent.latency.as_millis()).unwrap_or(i64::MAX),
        response: sent.excerpt,
        error: sent.error,
        delivered: decision == Decision::Delivered,
    };
    if disable.is_none() {
        return Some(FinishedAttempt {
            attempt,
            claimed_at_ms: d.claimed_at_ms,
            state,
        });
    }
    match parts
        .store
        .finish_delivery(&attempt, d.claimed_at_ms, state, disable)
        .await
    {
        Ok(true) => {
            // Never silently: whoever watches the tenant's feed hears of it.
            parts.hub.publish(LiveMessage {
                tenant: d.tenant,
                kind: "endpoint.disabled",
                data: json!({
                    "id": parts.ids.encode(IdKind::Webhook, endpoint.id),
                    "url": endpoint.url,
                    "reason": disable,
                }),
            });
            warn!(endpoint = endpoint.id, reason = ?disable, "webhook endpoint disabled");
        }
        Ok(false) => {}
        // The lease makes it due again: it will be sent again, with the same id.
        Err(e) => {
            warn!(error = %e, message = %d.message_id, "webhook delivery: could not file the attempt")
        }
    }
    None
}
