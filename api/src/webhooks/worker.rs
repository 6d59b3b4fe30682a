//! The delivery worker: takes what the outbox owes each endpoint to the endpoint, signed,
//! retried on the schedule, until it is delivered, runs out of attempts or the endpoint is
//! disabled.
//!
//! ```text
//!  wake (a record batch was filed), an attempt's end, the next due time or 1 s
//!    ─► when half of MAX_IN_HAND is free, a claim beside the attempts: due deliveries
//!       first (lease; at most PER_ENDPOINT_IN_HAND per endpoint), then new messages fanned
//!       out with the room left, their first attempts filed claimed (the rest wait in the
//!       outbox) ─► start them as slots free up,
//!       CONCURRENCY at once and PER_ENDPOINT per endpoint, each a task
//!    ─► file the ended ones together every FILE_EVERY (log, next try; a disabling attempt
//!       is filed at once and announced as endpoint.disabled)
//! ```
//!
//! Claiming, sending and filing overlap: the store works while attempts are in flight, and an
//! endpoint that hangs holds its own slots only.
//!
//! At least once: a delivery is claimed by pushing its next try past the attempt
//! ([`LEASE`]); a crash between the claim and the attempt's end leaves it due again after the
//! lease, and it is sent again with the same `webhook-id`. Everything the worker knows is in
//! the database: a restart picks up where the last one stopped.
//!
//! Time is [`Clock`]: the wall clock plus an offset that tests move forward to play a receiver
//! down for an hour in a second.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};
use uuid::Uuid;

use super::schedule::{Attempt, Decision, DisableReason, Outcome, decide};
use super::signing::{MessageId, Secret};
use super::target::{self, Target};
use crate::http::live::{LiveHub, LiveMessage};
use crate::ids::{IdCodec, IdKind};
use crate::store::outbox::{
    DeliveryState, DueDelivery, FanOutClaim, FinishedAttempt, OUTBOX_RETENTION_MS,
};
use crate::store::{Store, StoreError, WebhookAttemptRow, WebhookRow};

/// How long a claimed delivery is left to its attempt before it is due again: longer than
/// the request timeout (15 s) with room for the answer to be filed.
pub const LEASE: Duration = Duration::from_secs(60);

/// Attempts in flight at once (across endpoints).
pub const CONCURRENCY: usize = 64;

/// Attempts one endpoint may have in flight at once: an endpoint that hangs for its 15 s
/// timeout holds this many slots, and the other endpoints' deliveries go on in the rest.
pub const PER_ENDPOINT: usize = 16;

/// Deliveries one endpoint may have in hand (claimed: waiting or in flight); its backlog
/// beyond waits in the database.
pub const PER_ENDPOINT_IN_HAND: usize = 512;

/// Deliveries in hand at once, at most; the worker claims when half are free.
pub const MAX_IN_HAND: usize = 2048;

/// A claimed delivery not started within this is left to its lease rather than started:
/// its attempt (up to the 15 s timeout) would outlast the lease.
const STALE_CLAIM_MS: i64 = 40_000;

/// Ended attempts filed in one transaction: at most this many, and none waits longer than
/// [`FILE_EVERY`] (a crash loses only the filing: those are sent again, same ids).
const FILE_BATCH: usize = 2048;
const FILE_EVERY: Duration = Duration::from_millis(50);

/// How long an endpoint's settings are reused before they are read again.
const ENDPOINT_FRESH: Duration = Duration::from_secs(1);

/// The least time between claims while an endpoint is full (its backlog is due now).
const FULL_ENDPOINT_PAUSE: Duration = Duration::from_millis(250);

/// Endpoints whose settings are kept between reads, at most (beyond it, only fresh ones).
const MAX_CACHED_ENDPOINTS: usize = 4096;

/// The least time between claims that found less than they could take (a wake for new
/// records claims at once).
const SHORT_CLAIM_PAUSE: Duration = Duration::from_millis(10);

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
    let parts = Arc::new(parts);
    let mut d = Dispatcher::new(parts.clone());
    let mut last_prune: Option<SystemTime> = None;
    loop {
        let idle = d.top_up();
        d.start_waiting();
        d.file();
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
        let wait = d.file_deadline().map_or(idle, |at| idle.min(at));
        let woke = {
            let in_flight = &mut d.in_flight;
            let filing = &mut d.filing;
            let claiming = &mut d.claiming;
            tokio::select! {
                Some(ended) = in_flight.join_next(), if !in_flight.is_empty() => Woke::Ended(ended),
                Some(claimed) = claiming.join_next(), if !claiming.is_empty() => Woke::Claimed(claimed),
                () = async {
                    if let Some((_, task)) = filing.as_mut() {
                        let _ = task.await;
                    }
                }, if filing.is_some() => Woke::Filed,
                () = wake.notified() => Woke::Records,
                () = tokio::time::sleep(wait) => Woke::Timer,
            }
        };
        match woke {
            Woke::Ended(ended) => d.ended(ended),
            Woke::Claimed(claimed) => d.claimed(claimed).await,
            Woke::Filed => d.filing = None,
            Woke::Records => d.more_due = true,
            Woke::Timer => {}
        }
    }
}

/// What ended the worker's wait.
enum Woke {
    Ended(Result<(i64, Option<FinishedAttempt>), tokio::task::JoinError>),
    Claimed(Result<Result<Claimed, StoreError>, tokio::task::JoinError>),
    Filed,
    Records,
    Timer,
}

/// The worker's hands: deliveries claimed and waiting for a slot, attempts in flight (each a
/// task of its own, so a slow endpoint holds its slots and nothing else), and ended attempts
/// waiting to be filed together.
struct Dispatcher {
    parts: Arc<WorkerParts>,
    client: Option<(bool, reqwest::Client)>,
    /// Endpoints as last read, and when (a changed URL or secret holds within
    /// [`ENDPOINT_FRESH`]; a disabled or deleted endpoint is not claimed for at all).
    endpoints: HashMap<i64, (Instant, Option<Arc<WebhookRow>>)>,
    waiting: VecDeque<DueDelivery>,
    in_flight: JoinSet<(i64, Option<FinishedAttempt>)>,
    /// Attempts in flight per endpoint (at most [`PER_ENDPOINT`]).
    flying: HashMap<i64, usize>,
    /// Deliveries in hand per endpoint, waiting or in flight (at most [`PER_ENDPOINT_IN_HAND`]).
    held: HashMap<i64, usize>,
    ended: Vec<FinishedAttempt>,
    first_ended_at: Option<Instant>,
    /// The filing under way (how many attempts, its task): one at a time, beside the
    /// attempts (a commit waits for the disk; the slots do not wait for it).
    filing: Option<(usize, JoinHandle<()>)>,
    /// Something may be due that is not claimed: new records, a full claim, room again on
    /// an endpoint that was full.
    more_due: bool,
    /// A claim that came back short is not repeated before this (unless woken or an endpoint
    /// that was full has room again).
    next_claim_at: Instant,
    /// The claim under way, beside the attempts (at most one; dropped with the worker).
    claiming: JoinSet<Result<Claimed, StoreError>>,
}

impl Dispatcher {
    fn new(parts: Arc<WorkerParts>) -> Dispatcher {
        Dispatcher {
            parts,
            client: None,
            endpoints: HashMap::new(),
            waiting: VecDeque::new(),
            in_flight: JoinSet::new(),
            flying: HashMap::new(),
            held: HashMap::new(),
            ended: Vec::new(),
            first_ended_at: None,
            filing: None,
            more_due: true,
            next_claim_at: Instant::now(),
            claiming: JoinSet::new(),
        }
    }

    /// Starts a claim (fan-out of new messages, then due deliveries) when half the hands
    /// are free and something may be due; it runs as a task of its own, so attempts start
    /// and end while the store works (a claim is a few commits: few large ones, not one per
    /// attempt). Returns how long the worker may sleep if nothing else happens.
    fn top_up(&mut self) -> Duration {
        if !self.claiming.is_empty() {
            // Its end wakes the worker.
            return IDLE_POLL;
        }
        // Ended attempts not yet filed count: their filing holds them, and a slow disk must
        // slow the claims, not grow the list.
        let in_hand: usize = self.waiting.len()
            + self.in_flight.len()
            + self.ended.len()
            + self.filing.as_ref().map_or(0, |(n, _)| *n);
        if in_hand > MAX_IN_HAND / 2 {
            return IDLE_POLL;
        }
        if !self.more_due && Instant::now() < self.next_claim_at {
            return self.next_claim_at.saturating_duration_since(Instant::now());
        }
        // Records filed from here on (a wake) are for the next claim.
        self.more_due = false;
        let pass = ClaimPass {
            held: self.held.clone(),
            room: MAX_IN_HAND - in_hand,
        };
        self.claiming.spawn(claim(self.parts.clone(), pass));
        IDLE_POLL
    }

    /// A claim ended: what it took joins the waiting list, and what it saw sets the next one.
    async fn claimed(
        &mut self,
        claimed: Result<Result<Claimed, StoreError>, tokio::task::JoinError>,
    ) {
        let c = match claimed {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                warn!(error = %e, "webhook delivery: the store did not answer; trying again");
                self.next_claim_at = Instant::now() + IDLE_POLL;
                return;
            }
            Err(e) => {
                warn!(error = %e, "webhook delivery: the claim's task failed; trying again");
                self.next_claim_at = Instant::now() + IDLE_POLL;
                return;
            }
        };
        let took = !c.due.is_empty();
        self.take_in_hand(c.due);
        if took {
            self.refresh_endpoints().await;
        }
        if c.full {
            self.more_due = true;
            return;
        }
        // Everything due then is in hand: the next look is when the next one falls due (a
        // wake for new records comes sooner), or when an endpoint that was full has room.
        // What is due now and was left is a full endpoint's: its room comes back with an
        // attempt's end (which sets `more_due`), so it is not polled for meanwhile.
        let floor = if self.held.values().any(|n| *n >= PER_ENDPOINT_IN_HAND) {
            FULL_ENDPOINT_PAUSE
        } else {
            SHORT_CLAIM_PAUSE
        };
        let wait = match c.next_due {
            Some(at) => Duration::from_millis(at.saturating_sub(c.now_ms).max(0) as u64),
            None => IDLE_POLL,
        }
        .clamp(floor, IDLE_POLL);
        self.next_claim_at = Instant::now() + wait;
    }

    /// Claimed deliveries join the waiting list.
    fn take_in_hand(&mut self, due: Vec<DueDelivery>) {
        for d in due {
            *self.held.entry(d.endpoint_id).or_default() += 1;
            self.waiting.push_back(d);
        }
    }

    /// Starts waiting deliveries while there are free slots, oldest first, passing over those
    /// of endpoints that have their share in flight.
    fn start_waiting(&mut self) {
        let now_ms = self.parts.clock.now_ms();
        let mut i = 0;
        while self.in_flight.len() < CONCURRENCY && i < self.waiting.len() {
            let endpoint_id = self.waiting[i].endpoint_id;
            if self.flying.get(&endpoint_id).copied().unwrap_or(0) >= PER_ENDPOINT {
                i += 1;
                continue;
            }
            let Some(d) = self.waiting.remove(i) else {
                return;
            };
            // Waited too long behind a slow endpoint: its lease may run out during the
            // attempt, and it could be claimed twice. Left to its lease, claimed afresh.
            let stale = now_ms.saturating_sub(d.claimed_at_ms) > STALE_CLAIM_MS;
            let endpoint = self.endpoint(endpoint_id);
            let client = self.client();
            let (Some(endpoint), Some(client), false) = (endpoint, client, stale) else {
                // Not known (deleted since, or the store did not answer), or stale: it
                // stays owed and is claimed again after its lease.
                self.release(endpoint_id);
                continue;
            };
            *self.flying.entry(endpoint_id).or_default() += 1;
            let parts = self.parts.clone();
            self.in_flight
                .spawn(async move { (endpoint_id, deliver(&parts, &client, &endpoint, d).await) });
        }
    }

    /// The endpoint as last read (at the claim of its delivery, or within [`ENDPOINT_FRESH`]
    /// before). None: deleted, or never read because the store did not answer; the delivery
    /// is then left to its lease.
    fn endpoint(&self, id: i64) -> Option<Arc<WebhookRow>> {
        self.endpoints.get(&id).and_then(|(_, row)| row.clone())
    }

    /// Reads the endpoints of what is waiting that are not freshly known.
    async fn refresh_endpoints(&mut self) {
        // Bounded: endpoints not read for a while (deleted ones, quiet ones) are forgotten.
        if self.endpoints.len() > MAX_CACHED_ENDPOINTS {
            self.endpoints
                .retain(|_, (at, _)| at.elapsed() < ENDPOINT_FRESH);
        }
        let stale: Vec<(i64, crate::model::TenantId)> = {
            let mut seen = std::collections::HashSet::new();
            self.waiting
                .iter()
                .filter(|d| {
                    self.endpoints
                        .get(&d.endpoint_id)
                        .is_none_or(|(at, _)| at.elapsed() >= ENDPOINT_FRESH)
                })
                .filter(|d| seen.insert(d.endpoint_id))
                .map(|d| (d.endpoint_id, d.tenant))
                .collect()
        };
        for (id, tenant) in stale {
            match self.parts.store.get_webhook(tenant, id).await {
                Ok(row) => {
                    self.endpoints
                        .insert(id, (Instant::now(), row.map(Arc::new)));
                }
                Err(e) => {
                    warn!(error = %e, endpoint = id, "webhook delivery: could not read the endpoint")
                }
            }
        }
    }

    /// One client (and its pool of kept-alive connections) for as long as the operator's
    /// private-target switch stays as it is.
    fn client(&mut self) -> Option<reqwest::Client> {
        let allow_private = self.parts.allow_private.load(Ordering::Relaxed);
        if self
            .client
            .as_ref()
            .is_none_or(|(allowed, _)| *allowed != allow_private)
        {
            match target::client(allow_private) {
                Ok(c) => self.client = Some((allow_private, c)),
                Err(e) => {
                    warn!(error = %e, "webhook delivery: no HTTP client");
                    return None;
                }
            }
        }
        self.client.as_ref().map(|(_, c)| c.clone())
    }

    /// One delivery of `endpoint` is out of hand. An endpoint that was full has room again:
    /// what the last claim left out for it may be claimed now.
    fn release(&mut self, endpoint: i64) {
        if let Some(n) = self.held.get_mut(&endpoint) {
            if *n >= PER_ENDPOINT_IN_HAND {
                self.more_due = true;
            }
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.held.remove(&endpoint);
            }
        }
    }

    /// An attempt's task ended: its slot is free, and its end waits to be filed with others
    /// (its claim keeps it from being claimed again meanwhile).
    fn ended(&mut self, ended: Result<(i64, Option<FinishedAttempt>), tokio::task::JoinError>) {
        match ended {
            Ok((endpoint, finished)) => {
                if let Some(n) = self.flying.get_mut(&endpoint) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.flying.remove(&endpoint);
                    }
                }
                self.release(endpoint);
                // None: filed by the attempt itself (it disabled the endpoint).
                if let Some(f) = finished {
                    self.first_ended_at.get_or_insert_with(Instant::now);
                    self.ended.push(f);
                }
            }
            // A panicked attempt (none is expected) is owed again after its lease; its
            // counts are recounted when nothing is in hand.
            Err(e) => warn!(error = %e, "webhook delivery: an attempt's task failed"),
        }
        if self.in_flight.is_empty() && self.waiting.is_empty() {
            self.held.clear();
            self.flying.clear();
        }
    }

    /// When the ended attempts must be filed, if there are any.
    fn file_deadline(&self) -> Option<Duration> {
        // While a filing is under way its end wakes the worker (the next one waits for it).
        if self.filing.is_some() {
            return None;
        }
        self.first_ended_at
            .map(|at| FILE_EVERY.saturating_sub(at.elapsed()))
    }

    /// Files the ended attempts in one transaction when there are enough of them, when the
    /// oldest has waited [`FILE_EVERY`], or when nothing else is in hand.
    fn file(&mut self) {
        if self.ended.is_empty() {
            return;
        }
        let quiet = self.in_flight.is_empty() && self.waiting.is_empty();
        let due = self.file_deadline().is_some_and(|d| d.is_zero());
        if !(quiet || due || self.ended.len() >= FILE_BATCH) {
            return;
        }
        if let Some((_, task)) = &self.filing {
            if !task.is_finished() {
                return;
            }
            self.filing = None;
        }
        let ended = std::mem::take(&mut self.ended);
        self.first_ended_at = None;
        let store = self.parts.store.clone();
        let count = ended.len();
        let task = tokio::spawn(async move {
            // If this fails, the leases make them due again: sent again, same ids.
            if let Err(e) = store.finish_deliveries(&ended).await {
                warn!(error = %e, attempts = ended.len(), "webhook delivery: could not file the attempts");
            }
        });
        self.filing = Some((count, task));
    }
}

/// What a claim starts from: the worker's hands as they were.
struct ClaimPass {
    held: HashMap<i64, usize>,
    /// Deliveries it may take in all.
    room: usize,
}

/// What a claim took, and what it saw.
struct Claimed {
    due: Vec<DueDelivery>,
    /// It took all it could: more may be due, or wait in the outbox.
    full: bool,
    /// When not full: the next pending delivery's due time.
    next_due: Option<i64>,
    now_ms: i64,
}

/// Claims what is due in the database first (retries, a full endpoint's backlog, what a
/// restart released), oldest first; then fans out new messages with the room left, their
/// first attempts filed claimed (one row write each, not two). An endpoint still full after
/// the claim gets its new deliveries filed pending, behind its backlog; messages there is
/// no room for stay in the outbox, in order, for the next pass.
async fn claim(parts: Arc<WorkerParts>, pass: ClaimPass) -> Result<Claimed, StoreError> {
    let store = &parts.store;
    let now = parts.clock.now_ms();
    let lease = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    let mut held = pass.held;
    let limit = i64::try_from(pass.room).unwrap_or(i64::MAX);
    let mut due = store
        .claim_due_deliveries_within(now, lease, limit, &held, PER_ENDPOINT_IN_HAND)
        .await?;
    let mut room = pass.room.saturating_sub(due.len());
    let mut full = room == 0;
    for d in &due {
        *held.entry(d.endpoint_id).or_default() += 1;
    }
    // An endpoint the claim left full may have more due: its new deliveries queue behind.
    let behind: HashSet<i64> = held
        .iter()
        .filter(|(_, n)| **n >= PER_ENDPOINT_IN_HAND)
        .map(|(e, _)| *e)
        .collect();
    while !full {
        let take = FanOutClaim {
            lease_ms: lease,
            held: &held,
            per_endpoint: PER_ENDPOINT_IN_HAND,
            behind: &behind,
            limit: room,
        };
        let fanned = store.fan_out_claiming(now, Some(take)).await?;
        room = room.saturating_sub(fanned.claimed.len());
        for d in &fanned.claimed {
            *held.entry(d.endpoint_id).or_default() += 1;
        }
        due.extend(fanned.claimed);
        full = fanned.stopped || room == 0;
        if (fanned.messages as i64) < crate::store::outbox::FAN_OUT_BATCH {
            break;
        }
    }
    let next_due = if full {
        None
    } else {
        store.next_delivery_due().await?
    };
    Ok(Claimed {
        due,
        full,
        next_due,
        now_ms: now,
    })
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
