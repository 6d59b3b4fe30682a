//! The live feed: the runtime publishes what changes, supervisors' screens and wallboards
//! follow it over server-sent events (`GET /v1/live`).
//!
//! ```text
//! runtime ── publish(LiveMessage{tenant, kind, data}) ──> LiveHub
//!    stamps seq (the tenant's own, +1 per message of that tenant), renders the SSE frame
//!    once, keeps the last `ring_capacity` frames (resume), sends to the tenant's channel
//!                                   │
//!        one tokio::sync::broadcast per tenant with subscribers (capacity `subscriber_buffer`)
//!                                   │
//! Subscription (one per client) ── snapshot | replay ── then deltas ──> SSE body
//! ```
//!
//! A client first gets `event: snapshot` (`id:` the seq it is current to, data
//! `{"seq": S, "state": <the lead's snapshot of the tenant>}`), then every delta after S as
//! `id: <seq>`, `event: <kind>`, `data: <json>`. The snapshot is taken after subscribing, so it
//! reflects at least every event up to S and may already reflect some after it: deltas must be
//! states ("agent 7 is now ready"), not increments, so applying one twice is harmless.
//!
//! Reconnecting with `Last-Event-ID: n` (or `?last_event_id=n`): when every event after n is
//! still in the ring, the client gets this tenant's events after n and carries on, without a
//! snapshot; otherwise (too old, or an id from before a restart) a fresh snapshot.
//!
//! Sequence numbers are per tenant: a global counter would let any tenant measure the whole
//! platform's traffic from the gaps between its own ids. Each tenant's count starts at the
//! wall clock in microseconds when the hub starts, so they keep growing across restarts (as
//! long as a tenant publishes under a million events a second on average): an id from a
//! previous process is always older than the new ring, never mistaken for a new one.
//!
//! Bounds: the ring (`ring_capacity` events, shared by all tenants); each subscriber can fall
//! `subscriber_buffer` events behind its tenant's channel: further behind (a slow network or a
//! stalled client: hyper stops polling a stream whose socket is full) it gets `event: resync`
//! and a new snapshot, while the hub and the other subscribers carry on. At most
//! `max_subscribers` at once (503 past it). Publishing never waits for a subscriber.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::auth::{Auth, require_tenant};
use super::error::ApiError;
use super::json::ApiQuery;
use super::sight::{self, Sight};
use crate::ids::IdCodec;
use crate::model::TenantId;

/// What the runtime publishes. `kind` is the SSE event name (`call.queued`,
/// `agent.state_changed`...): letters, digits, `.`, `_`, `-`; anything else is sent as `message`.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveMessage {
    pub tenant: TenantId,
    pub kind: &'static str,
    pub data: Value,
}

/// The current state of a tenant, as its first event shows it.
pub type SnapshotFn = Arc<dyn Fn(TenantId) -> Value + Send + Sync>;

#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Events kept for resuming, all tenants together.
    pub ring_capacity: usize,
    /// How far (in its tenant's events) a subscriber may fall behind before a resync.
    pub subscriber_buffer: usize,
    /// A comment line after this long without an event, so proxies keep the connection.
    pub keep_alive: Duration,
    /// Concurrent subscriptions at most; more answer 503.
    pub max_subscribers: usize,
    /// Reconnection delay suggested to `EventSource` clients (`retry:`).
    pub retry: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            ring_capacity: 10_000,
            subscriber_buffer: 1024,
            keep_alive: Duration::from_secs(15),
            max_subscribers: 10_000,
            retry: Duration::from_secs(2),
        }
    }
}

/// One published event, stamped, rendered once as its SSE frame.
#[derive(Debug)]
pub struct LiveEvent {
    seq: u64,
    tenant: TenantId,
    kind: &'static str,
    frame: Bytes,
    data: Range<usize>,
    /// An event with personal fields (`http::sight`): its frame as those who may not see it
    /// whole get it, and the agent whose call it is (who may).
    masked: Option<MaskedFrame>,
}

#[derive(Debug)]
struct MaskedFrame {
    frame: Bytes,
    agent: Option<u64>,
}

impl LiveEvent {
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The data as JSON text (a slice of the frame: no copy). For a WebSocket feed.
    pub fn data_json(&self) -> Bytes {
        self.frame.slice(self.data.clone())
    }

    /// `id: <seq>\nevent: <kind>\ndata: <json>\n\n`, whole.
    pub fn sse_frame(&self) -> Bytes {
        self.frame.clone()
    }

    /// The frame as `sight` may see it: whole, or with its personal fields masked.
    pub fn sse_frame_for(&self, sight: Sight) -> Bytes {
        match &self.masked {
            Some(m) if !sight.sees_agents_call(m.agent) => m.frame.clone(),
            _ => self.frame.clone(),
        }
    }
}

/// The hub. Cheap to clone; the runtime keeps one clone to publish, the router another.
#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Hub>,
}

struct Hub {
    config: LiveConfig,
    state: Mutex<HubState>,
    subscribers: AtomicUsize,
}

struct HubState {
    ring: VecDeque<Arc<LiveEvent>>,
    /// Where every tenant's count starts (its first event is `base + 1`).
    base: u64,
    /// Per tenant that has published: its last seq, and the seq of its newest event that left
    /// the ring (a resume from before it cannot be replayed). One entry per tenant.
    tenants: HashMap<TenantId, TenantSeq>,
    /// Only tenants with subscribers; a channel goes when its last subscriber does.
    channels: HashMap<TenantId, broadcast::Sender<Arc<LiveEvent>>>,
    closed: bool,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("subscribers", &self.subscriber_count())
            .finish_non_exhaustive()
    }
}

impl LiveHub {
    pub fn new(config: LiveConfig) -> LiveHub {
        let base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
            .unwrap_or(0);
        LiveHub::starting_at(config, base)
    }

    /// A hub whose first event is `last_seq + 1` (tests; `new` starts at the clock).
    pub fn starting_at(mut config: LiveConfig, last_seq: u64) -> LiveHub {
        // broadcast::channel needs 1..=usize::MAX/2.
        config.subscriber_buffer = config.subscriber_buffer.clamp(1, 1 << 20);
        LiveHub {
            inner: Arc::new(Hub {
                state: Mutex::new(HubState {
                    ring: VecDeque::with_capacity(config.ring_capacity.min(1 << 16)),
                    base: last_seq,
                    tenants: HashMap::new(),
                    channels: HashMap::new(),
                    closed: false,
                }),
                config,
                subscribers: AtomicUsize::new(0),
            }),
        }
    }

    pub fn config(&self) -> &LiveConfig {
        &self.inner.config
    }

    /// Stamps, keeps and fans out a message; returns its seq (in its tenant's count). Never
    /// waits on subscribers. After [`LiveHub::close`] messages are dropped (the tenant's last
    /// seq is returned).
    pub fn publish(&self, msg: LiveMessage) -> u64 {
        let kind = if is_event_name(msg.kind) {
            msg.kind
        } else {
            tracing::error!(
                kind = msg.kind,
                "live event kind is not a valid SSE event name"
            );
            "message"
        };
        // Rendering the JSON outside the lock; `Value`'s Display is compact: one line.
        let json = msg.data.to_string();
        let masked = sight::is_personal(&msg.data).then(|| {
            (
                sight::masked(&msg.data).to_string(),
                msg.data.get("agent_id").and_then(Value::as_u64),
            )
        });
        let mut st = self.inner.lock();
        if st.closed {
            return st.last_seq(msg.tenant);
        }
        let base = st.base;
        let counter = st.tenants.entry(msg.tenant).or_insert(TenantSeq {
            last: base,
            evicted: base,
        });
        counter.last += 1;
        let seq = counter.last;
        let head = format!("id: {seq}\nevent: {kind}\ndata: ");
        let render = |json: &str| {
            let mut frame = Vec::with_capacity(head.len() + json.len() + 2);
            frame.extend_from_slice(head.as_bytes());
            frame.extend_from_slice(json.as_bytes());
            frame.extend_from_slice(b"\n\n");
            Bytes::from(frame)
        };
        let event = Arc::new(LiveEvent {
            seq,
            tenant: msg.tenant,
            kind,
            data: head.len()..head.len() + json.len(),
            frame: render(&json),
            masked: masked.map(|(json, agent)| MaskedFrame {
                frame: render(&json),
                agent,
            }),
        });
        let cap = self.inner.config.ring_capacity;
        if cap > 0 {
            if st.ring.len() >= cap
                && let Some(old) = st.ring.pop_front()
                && let Some(t) = st.tenants.get_mut(&old.tenant)
            {
                t.evicted = old.seq;
            }
            st.ring.push_back(event.clone());
        }
        // `send` stores the event once and wakes the receivers; it never waits for them. It
        // fails only without receivers (`Subscription::drop` normally removes the channel first).
        if let Some(tx) = st.channels.get(&msg.tenant)
            && tx.send(event).is_err()
        {
            st.channels.remove(&msg.tenant);
        }
        seq
    }

    /// The seq of the tenant's last published event.
    pub fn last_seq(&self, tenant: TenantId) -> u64 {
        self.inner.lock().last_seq(tenant)
    }

    pub fn subscriber_count(&self) -> usize {
        self.inner.subscribers.load(Ordering::Relaxed)
    }

    /// Ends every subscription (their streams finish once drained, letting a graceful shutdown
    /// complete) and refuses new ones.
    pub fn close(&self) {
        let mut st = self.inner.lock();
        st.closed = true;
        st.channels.clear();
    }

    /// Follows `tenant`: a snapshot (or, from `last_event_id`, the missed events), then deltas,
    /// with personal data as `sight` may see it. 503 when the hub is full or closed.
    pub fn subscribe(
        &self,
        tenant: TenantId,
        last_event_id: Option<u64>,
        snapshot: SnapshotFn,
        sight: Sight,
    ) -> Result<Subscription, ApiError> {
        let max = self.inner.config.max_subscribers;
        if self.inner.subscribers.fetch_add(1, Ordering::AcqRel) >= max {
            self.inner.subscribers.fetch_sub(1, Ordering::AcqRel);
            return Err(
                ApiError::unavailable("too many live subscribers; retry later")
                    .with_retry_after(self.inner.config.retry),
            );
        }
        let mut sub = Subscription {
            hub: self.inner.clone(),
            tenant,
            sight,
            snapshot,
            rx: None,
            pending: VecDeque::new(),
            last_seq: 0,
        };
        if !sub.attach(last_event_id) {
            return Err(ApiError::unavailable("the live feed is shutting down"));
        }
        Ok(sub)
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One tenant's count.
#[derive(Clone, Copy, Debug)]
struct TenantSeq {
    last: u64,
    evicted: u64,
}

impl HubState {
    fn last_seq(&self, tenant: TenantId) -> u64 {
        self.tenants.get(&tenant).map_or(self.base, |t| t.last)
    }
}

fn is_event_name(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// What a subscriber receives.
#[derive(Clone, Debug)]
pub enum LiveItem {
    /// The tenant's state, current to at least `seq`.
    Snapshot { seq: u64, data: Value },
    /// A delta.
    Event(Arc<LiveEvent>),
    /// This subscriber fell behind and lost events; a snapshot follows.
    Resync,
}

impl LiveItem {
    /// The SSE frame as `sight` may see it (a snapshot is already the subscriber's own).
    pub fn sse_frame(&self, sight: Sight) -> Bytes {
        match self {
            LiveItem::Snapshot { seq, data } => {
                let data = json!({ "seq": seq, "state": data });
                Bytes::from(format!("id: {seq}\nevent: snapshot\ndata: {data}\n\n"))
            }
            LiveItem::Event(e) => e.sse_frame_for(sight),
            LiveItem::Resync => {
                Bytes::from_static(b"event: resync\ndata: {\"reason\":\"lagged\"}\n\n")
            }
        }
    }
}

/// One client's view of its tenant's feed. Ends (`next` answers `None`) when the hub closes.
pub struct Subscription {
    hub: Arc<Hub>,
    tenant: TenantId,
    /// What this subscriber may see of personal data.
    sight: Sight,
    snapshot: SnapshotFn,
    rx: Option<broadcast::Receiver<Arc<LiveEvent>>>,
    pending: VecDeque<LiveItem>,
    /// Deltas up to here are in the snapshot or were delivered.
    last_seq: u64,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("tenant", &self.tenant)
            .field("last_seq", &self.last_seq)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next item. Cancel-safe (its only await is a broadcast receive), so it can sit in a
    /// `select!` with a keep-alive timer.
    pub async fn next(&mut self) -> Option<LiveItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            let Some(rx) = self.rx.as_mut() else {
                if !self.attach(None) {
                    return None;
                }
                continue;
            };
            match rx.recv().await {
                Ok(event) => {
                    if event.seq > self.last_seq {
                        self.last_seq = event.seq;
                        return Some(LiveItem::Event(event));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(tenant = %self.tenant.0, missed, "live subscriber fell behind");
                    // Reattached (with a snapshot) on the next call.
                    self.rx = None;
                    return Some(LiveItem::Resync);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// Subscribes to the tenant's channel and queues what comes first: the events after
    /// `resume` when the ring still has them all, else a snapshot. `false`: the hub is closed.
    fn attach(&mut self, resume: Option<u64>) -> bool {
        let mut st = self.hub.lock();
        if st.closed {
            return false;
        }
        let buffer = self.hub.config.subscriber_buffer;
        let rx = st
            .channels
            .entry(self.tenant)
            .or_insert_with(|| broadcast::channel(buffer).0)
            .subscribe();
        // Subscribing and reading the tenant's last seq under the same lock as `publish`: the
        // channel delivers exactly the events after `now`, and the ring holds those of them
        // after the tenant's last eviction.
        let now = st.last_seq(self.tenant);
        let evicted = st.tenants.get(&self.tenant).map_or(st.base, |t| t.evicted);
        let replay_from = resume.filter(|&n| n <= now && n >= evicted);
        if let Some(n) = replay_from
            && n < now
        {
            self.pending.extend(
                st.ring
                    .iter()
                    .filter(|e| e.tenant == self.tenant && e.seq > n)
                    .map(|e| LiveItem::Event(e.clone())),
            );
        }
        drop(st);
        self.rx = Some(rx);
        self.last_seq = now;
        if replay_from.is_none() {
            // Outside the lock: the callback reads the runtime's state and may take a while.
            let data = sight::snapshot_for((self.snapshot)(self.tenant), self.sight);
            self.pending
                .push_back(LiveItem::Snapshot { seq: now, data });
        }
        true
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.subscribers.fetch_sub(1, Ordering::AcqRel);
        drop(self.rx.take());
        let mut st = self.hub.lock();
        if st
            .channels
            .get(&self.tenant)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            st.channels.remove(&self.tenant);
        }
    }
}

/// The SSE body of a subscription: `retry:`, then items, with a keep-alive comment after each
/// `keep_alive` of silence. Ends when the subscription does.
pub fn sse_stream(
    sub: Subscription,
    keep_alive: Duration,
    retry: Duration,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let retry = Bytes::from(format!("retry: {}\n\n", retry.as_millis()));
    let first = futures_util::stream::once(std::future::ready(Ok(retry)));
    // One timer per subscriber, touched once per `keep_alive` whatever the event rate: when it
    // fires, it either sends the comment or moves to `keep_alive` after the last frame sent.
    let state = (
        sub,
        Box::pin(tokio::time::sleep(keep_alive)),
        Instant::now(),
    );
    let rest = futures_util::stream::unfold(state, move |(mut sub, mut timer, last)| async move {
        let sight = sub.sight;
        let frame = loop {
            tokio::select! {
                item = sub.next() => break item?.sse_frame(sight),
                () = timer.as_mut() => {
                    let due = last + keep_alive;
                    if Instant::now() >= due {
                        timer.as_mut().reset(Instant::now() + keep_alive);
                        break Bytes::from_static(b": keep-alive\n\n");
                    }
                    timer.as_mut().reset(due);
                }
            }
        };
        Some((Ok(frame), (sub, timer, Instant::now())))
    });
    first.chain(rest)
}

/// An SSE response for a subscription.
pub fn sse_response(sub: Subscription, keep_alive: Duration, retry: Duration) -> Response {
    let mut resp = (
        StatusCode::OK,
        Body::from_stream(sse_stream(sub, keep_alive, retry)),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx would otherwise buffer the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

#[derive(Clone)]
struct LiveState {
    hub: LiveHub,
    snapshot: SnapshotFn,
    /// Agent keys name their agent by store id; the feed shows API ids.
    ids: IdCodec,
}

#[derive(Debug, Default, Deserialize)]
struct LiveQuery {
    last_event_id: Option<String>,
}

/// `GET /v1/live`: any tenant key (a platform-admin key: 403).
pub fn router(hub: LiveHub, snapshot: SnapshotFn, ids: IdCodec) -> Router {
    Router::new()
        .route("/v1/live", get(live))
        .with_state(LiveState { hub, snapshot, ids })
}

async fn live(
    State(st): State<LiveState>,
    Auth(who): Auth,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<LiveQuery>,
) -> Result<Response, ApiError> {
    let tenant = require_tenant(&who)?;
    // A malformed id is not worth a 400: the client gets a snapshot and recovers.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or(query.last_event_id.as_deref())
        .and_then(|s| s.trim().parse::<u64>().ok());
    let sub = st.hub.subscribe(
        tenant,
        resume,
        st.snapshot.clone(),
        Sight::of(&who, |a| st.ids.agent(a)),
    )?;
    let config = st.hub.config();
    Ok(sse_response(sub, config.keep_alive, config.retry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn tenant(n: u128) -> TenantId {
        TenantId(Uuid::from_u128(n))
    }

    fn snapshot() -> SnapshotFn {
        Arc::new(|t: TenantId| json!({ "tenant": t.0 }))
    }

    fn hub(ring: usize, buffer: usize) -> LiveHub {
        LiveHub::starting_at(
            LiveConfig {
                ring_capacity: ring,
                subscriber_buffer: buffer,
                ..LiveConfig::default()
            },
            1000,
        )
    }

    fn msg(t: TenantId, n: u64) -> LiveMessage {
        LiveMessage {
            tenant: t,
            kind: "call.queued",
            data: json!({ "n": n }),
        }
    }

    async fn expect_snapshot(sub: &mut Subscription) -> u64 {
        match sub.next().await {
            Some(LiveItem::Snapshot { seq, data }) => {
                assert_eq!(data["tenant"], json!(sub.tenant.0));
                seq
            }
            other => panic!("expected a snapshot, got {other:?}"),
        }
    }

    async fn expect_event(sub: &mut Subscription) -> Arc<LiveEvent> {
        match tokio::time::timeout(Duration::from_secs(1), sub.next()).await {
            Ok(Some(LiveItem::Event(e))) => e,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    async fn expect_quiet(sub: &mut Subscription) {
        if let Ok(item) = tokio::time::timeout(Duration::from_millis(30), sub.next()).await {
            panic!("expected nothing, got {item:?}");
        }
    }

    #[tokio::test]
    async fn a_subscriber_gets_a_snapshot_then_the_deltas_in_order() {
        let hub = hub(100, 16);
        let a = tenant(1);
        hub.publish(msg(a, 0));
        let mut sub = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        assert_eq!(expect_snapshot(&mut sub).await, 1001);
        for n in 1..=3 {
            assert_eq!(hub.publish(msg(a, n)), 1001 + n);
        }
        for n in 1..=3 {
            let e = expect_event(&mut sub).await;
            assert_eq!(e.seq(), 1001 + n);
            assert_eq!(e.kind(), "call.queued");
            assert_eq!(&e.data_json()[..], format!("{{\"n\":{n}}}").as_bytes());
            assert_eq!(
                e.sse_frame(),
                Bytes::from(format!(
                    "id: {}\nevent: call.queued\ndata: {{\"n\":{n}}}\n\n",
                    1001 + n
                ))
            );
        }
        expect_quiet(&mut sub).await;
    }

    #[tokio::test]
    async fn personal_fields_reach_whole_only_those_who_may_see_them_live_and_in_replay() {
        let hub = hub(100, 16);
        let a = tenant(1);
        let snap: SnapshotFn = Arc::new(|_| {
            json!({"calls": [{"id": "x", "agent_id": 7, "caller_number": "+12015550123",
                              "caller_name": "Jane Roe"}]})
        });
        let whole = hub.subscribe(a, None, snap.clone(), Sight::Whole).unwrap();
        let ana = hub
            .subscribe(a, None, snap.clone(), Sight::Agent(7))
            .unwrap();
        let bob = hub
            .subscribe(a, None, snap.clone(), Sight::Agent(8))
            .unwrap();
        let wall = hub.subscribe(a, None, snap.clone(), Sight::Masked).unwrap();
        let call = |agent: Value| LiveMessage {
            tenant: a,
            kind: "call.answered",
            data: json!({"id": "x", "agent_id": agent, "contact_number": "+12015550123",
                         "contact_fields": {"plan": "gold"}}),
        };
        let first = hub.publish(call(json!(7)));
        hub.publish(call(Value::Null));
        let frames = |mut sub: Subscription, sight: Sight| async move {
            let mut out = Vec::new();
            for _ in 0..3 {
                let item = tokio::time::timeout(Duration::from_secs(1), sub.next())
                    .await
                    .unwrap()
                    .unwrap();
                out.push(String::from_utf8(item.sse_frame(sight).to_vec()).unwrap());
            }
            out
        };
        let whole_seen = frames(whole, Sight::Whole).await;
        assert!(
            whole_seen[0].contains("\"caller_name\":\"Jane Roe\""),
            "{whole_seen:?}"
        );
        assert!(whole_seen[1].contains("+12015550123") && whole_seen[2].contains("gold"));
        let ana_seen = frames(ana, Sight::Agent(7)).await;
        assert!(
            ana_seen[0].contains("+12015550123"),
            "her call in her snapshot"
        );
        assert!(ana_seen[1].contains("+12015550123") && ana_seen[1].contains("gold"));
        assert!(
            ana_seen[2].contains("+*********23") && !ana_seen[2].contains("gold"),
            "no one's call is not hers: {ana_seen:?}"
        );
        for (sub, sight) in [(bob, Sight::Agent(8)), (wall, Sight::Masked)] {
            for f in frames(sub, sight).await {
                assert!(!f.contains("+12015550123"), "{sight:?}: {f}");
                assert!(!f.contains("gold") && !f.contains("Jane"), "{sight:?}: {f}");
            }
        }
        // A resumed subscriber gets the replayed events masked the same way.
        let mut again = hub
            .subscribe(a, Some(first - 1), snap, Sight::Masked)
            .unwrap();
        let e = expect_event(&mut again).await;
        let f = e.sse_frame_for(Sight::Masked);
        assert!(
            std::str::from_utf8(&f)
                .unwrap()
                .contains("\"contact_number\":\"+*********23\""),
            "{f:?}"
        );
    }

    #[tokio::test]
    async fn resuming_replays_exactly_this_tenants_missed_events_without_a_snapshot() {
        let hub = hub(100, 16);
        let (a, b) = (tenant(1), tenant(2));
        let mut sub = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        expect_snapshot(&mut sub).await;
        hub.publish(msg(a, 1));
        let seen = expect_event(&mut sub).await.seq();
        drop(sub);
        let missed: Vec<u64> = [(a, 2), (b, 3), (a, 4), (b, 5), (a, 6)]
            .into_iter()
            .filter_map(|(t, n)| {
                let seq = hub.publish(msg(t, n));
                (t == a).then_some(seq)
            })
            .collect();
        let mut sub = hub
            .subscribe(a, Some(seen), snapshot(), Sight::Whole)
            .unwrap();
        for want in missed {
            assert_eq!(expect_event(&mut sub).await.seq(), want);
        }
        let next = hub.publish(msg(a, 7));
        assert_eq!(expect_event(&mut sub).await.seq(), next, "continues live");
        expect_quiet(&mut sub).await;
    }

    #[tokio::test]
    async fn resuming_when_nothing_was_missed_sends_nothing_first() {
        let hub = hub(100, 16);
        let a = tenant(1);
        let last = hub.publish(msg(a, 1));
        let mut sub = hub
            .subscribe(a, Some(last), snapshot(), Sight::Whole)
            .unwrap();
        expect_quiet(&mut sub).await;
        let next = hub.publish(msg(a, 2));
        assert_eq!(expect_event(&mut sub).await.seq(), next);
    }

    #[tokio::test]
    async fn resuming_from_before_the_ring_gets_a_fresh_snapshot() {
        let hub = hub(4, 16);
        let a = tenant(1);
        let old = hub.publish(msg(a, 0));
        for n in 1..=10 {
            hub.publish(msg(a, n));
        }
        let mut sub = hub
            .subscribe(a, Some(old), snapshot(), Sight::Whole)
            .unwrap();
        assert_eq!(expect_snapshot(&mut sub).await, hub.last_seq(a));
        // The boundary: the oldest event still held is `last - 3`; resuming right before it
        // replays; one earlier cannot.
        let last = hub.last_seq(a);
        let mut sub = hub
            .subscribe(a, Some(last - 4), snapshot(), Sight::Whole)
            .unwrap();
        assert_eq!(expect_event(&mut sub).await.seq(), last - 3);
        let mut sub = hub
            .subscribe(a, Some(last - 5), snapshot(), Sight::Whole)
            .unwrap();
        expect_snapshot(&mut sub).await;
    }

    #[tokio::test]
    async fn an_id_from_the_future_or_a_previous_process_gets_a_snapshot() {
        let hub = hub(100, 16);
        let a = tenant(1);
        hub.publish(msg(a, 1));
        let mut sub = hub
            .subscribe(a, Some(hub.last_seq(a) + 50), snapshot(), Sight::Whole)
            .unwrap();
        expect_snapshot(&mut sub).await;
        // A new process starts its seqs past any id the old one could have issued.
        let earlier = LiveHub::new(LiveConfig::default());
        let issued = earlier.publish(msg(a, 1)) + 5_000;
        std::thread::sleep(Duration::from_millis(10));
        let later = LiveHub::new(LiveConfig::default());
        assert!(later.last_seq(a) > issued);
    }

    #[tokio::test]
    async fn a_tenant_never_sees_another_tenants_events() {
        let hub = hub(100, 16);
        let (a, b) = (tenant(1), tenant(2));
        let mut sa = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        let mut sb = hub.subscribe(b, None, snapshot(), Sight::Whole).unwrap();
        expect_snapshot(&mut sa).await;
        expect_snapshot(&mut sb).await;
        let from_b = hub.publish(msg(b, 1));
        let from_a = hub.publish(msg(a, 2));
        assert_eq!(expect_event(&mut sa).await.seq(), from_a);
        expect_quiet(&mut sa).await;
        let e = expect_event(&mut sb).await;
        assert_eq!((e.seq(), e.tenant()), (from_b, b));
        expect_quiet(&mut sb).await;
        // Nor on resume.
        let mut sa = hub
            .subscribe(a, Some(from_b - 1), snapshot(), Sight::Whole)
            .unwrap();
        assert_eq!(expect_event(&mut sa).await.seq(), from_a);
        expect_quiet(&mut sa).await;
    }

    #[tokio::test]
    async fn each_tenant_counts_its_own_events_so_another_tenants_traffic_leaves_no_gap() {
        let hub = hub(100, 16);
        let (a, b) = (tenant(1), tenant(2));
        let first = hub.publish(msg(a, 1));
        for n in 0..20 {
            hub.publish(msg(b, n));
        }
        assert_eq!(hub.publish(msg(a, 2)), first + 1);
        assert_eq!(hub.last_seq(b), 1020);
        let mut sub = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        assert_eq!(expect_snapshot(&mut sub).await, first + 1);
    }

    #[tokio::test]
    async fn another_tenants_traffic_pushing_events_out_of_the_ring_forces_a_snapshot() {
        let hub = hub(4, 16);
        let (a, b) = (tenant(1), tenant(2));
        let seen = hub.publish(msg(a, 1));
        hub.publish(msg(a, 2));
        for n in 0..4 {
            hub.publish(msg(b, n));
        }
        // a's event 2 left the ring: resuming after event 1 cannot replay it.
        let mut sub = hub
            .subscribe(a, Some(seen), snapshot(), Sight::Whole)
            .unwrap();
        assert_eq!(expect_snapshot(&mut sub).await, seen + 1);
        // Resuming from a's last event needs nothing from the ring.
        let mut sub = hub
            .subscribe(a, Some(seen + 1), snapshot(), Sight::Whole)
            .unwrap();
        expect_quiet(&mut sub).await;
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_resynced_while_the_hub_and_others_carry_on() {
        let hub = hub(1000, 4);
        let a = tenant(1);
        let mut fast = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        let mut slow = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        expect_snapshot(&mut fast).await;
        expect_snapshot(&mut slow).await;
        let mut fast_seen = Vec::new();
        for n in 0..50 {
            let seq = hub.publish(msg(a, n)); // never blocks on `slow`
            fast_seen.push((seq, expect_event(&mut fast).await.seq()));
        }
        assert!(
            fast_seen.iter().all(|(p, s)| p == s),
            "the fast one saw every event"
        );
        assert!(matches!(slow.next().await, Some(LiveItem::Resync)));
        assert_eq!(expect_snapshot(&mut slow).await, hub.last_seq(a));
        let next = hub.publish(msg(a, 99));
        assert_eq!(expect_event(&mut slow).await.seq(), next);
        assert_eq!(expect_event(&mut fast).await.seq(), next);
    }

    #[tokio::test]
    async fn subscribers_are_capped_and_dropping_one_frees_its_place() {
        let hub = LiveHub::starting_at(
            LiveConfig {
                max_subscribers: 2,
                ..LiveConfig::default()
            },
            0,
        );
        let a = tenant(1);
        let s1 = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        let _s2 = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        let err = hub
            .subscribe(a, None, snapshot(), Sight::Whole)
            .unwrap_err();
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(hub.subscriber_count(), 2);
        drop(s1);
        assert!(hub.subscribe(a, None, snapshot(), Sight::Whole).is_ok());
    }

    #[tokio::test]
    async fn a_tenants_channel_goes_with_its_last_subscriber() {
        let hub = hub(10, 4);
        let a = tenant(1);
        let s1 = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        let s2 = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        drop(s1);
        assert_eq!(hub.inner.lock().channels.len(), 1);
        drop(s2);
        assert!(hub.inner.lock().channels.is_empty());
        hub.publish(msg(a, 1));
        assert!(hub.inner.lock().channels.is_empty());
    }

    #[tokio::test]
    async fn a_subscriber_dropped_between_resync_and_snapshot_leaves_no_channel() {
        let hub = hub(10, 2);
        let a = tenant(1);
        let mut sub = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        expect_snapshot(&mut sub).await;
        for n in 0..10 {
            hub.publish(msg(a, n));
        }
        assert!(matches!(sub.next().await, Some(LiveItem::Resync)));
        drop(sub);
        assert!(hub.inner.lock().channels.is_empty());
        assert_eq!(hub.subscriber_count(), 0);
    }

    #[tokio::test]
    async fn closing_the_hub_ends_subscriptions_and_refuses_new_ones() {
        let hub = hub(10, 4);
        let a = tenant(1);
        let mut sub = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        expect_snapshot(&mut sub).await;
        hub.close();
        assert!(sub.next().await.is_none());
        assert!(hub.subscribe(a, None, snapshot(), Sight::Whole).is_err());
    }

    #[tokio::test]
    async fn the_sse_stream_renders_frames_and_keeps_alive() {
        let hub = hub(10, 4);
        let a = tenant(1);
        let sub = hub.subscribe(a, None, snapshot(), Sight::Whole).unwrap();
        let mut stream = Box::pin(sse_stream(
            sub,
            Duration::from_millis(20),
            Duration::from_millis(1500),
        ));
        let mut next = async || stream.next().await.unwrap().unwrap();
        assert_eq!(next().await, Bytes::from_static(b"retry: 1500\n\n"));
        let snap = next().await;
        let text = std::str::from_utf8(&snap).unwrap();
        assert!(
            text.starts_with("id: 1000\nevent: snapshot\ndata: {"),
            "{text}"
        );
        assert!(
            text.contains("\"seq\":1000") && text.ends_with("}\n\n"),
            "{text}"
        );
        assert_eq!(next().await, Bytes::from_static(b": keep-alive\n\n"));
        hub.publish(msg(a, 1));
        assert_eq!(
            next().await,
            Bytes::from("id: 1001\nevent: call.queued\ndata: {\"n\":1}\n\n")
        );
    }

    #[test]
    fn event_kinds_that_would_break_the_frame_are_replaced() {
        assert!(is_event_name("agent.state_changed"));
        assert!(!is_event_name("a\nb"));
        assert!(!is_event_name(""));
        let hub = hub(10, 4);
        hub.publish(LiveMessage {
            tenant: tenant(1),
            kind: "bad\ndata: x",
            data: json!(1),
        });
        assert_eq!(hub.inner.lock().ring.back().unwrap().kind(), "message");
    }
}
