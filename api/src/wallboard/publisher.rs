//! The task that keeps every tenant's `figures` current in the live feed: once a second it
//! reads the engine's open interval of every queue (one query), adds what the store holds of
//! today (read when an interval closes, at midnight, and at start) and publishes a tenant's
//! `figures` delta only when it changed. Screens never poll.
//!
//! Bounds: one entry per tenant with queues; per tenant, one entry per queue and campaign.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use serde_json::Value;
use switchyard_engine::driver::DriverHandle;
use switchyard_engine::{Engine, QueueId};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{CampaignTile, OpenQueue, Stored, compose};
use crate::analytics::Counters;
use crate::directory::Directory;
use crate::http::{LiveHub, LiveMessage};
use crate::ids::IdCodec;
use crate::live_state::LiveState;
use crate::model::TenantId;
use crate::runtime::read_now;
use crate::store::{MAX_SCOPES, RollupKind, Store};

/// At most one `figures` delta per tenant per this.
pub const EVERY: Duration = Duration::from_secs(1);
/// A closed interval's row is read this long after the engine closed it (the record writer
/// files it meanwhile), and once more later in case it was slow.
const ROW_DELAYS: [Duration; 2] = [Duration::from_secs(3), Duration::from_secs(60)];
/// A failed store read is tried again after this.
const RETRY: Duration = Duration::from_secs(5);
/// The tenant's time zone is read again after this (it is rarely changed).
const ZONE_EVERY: Duration = Duration::from_secs(60);
/// Campaign connects are read from the store at most this often, and only when the dialer's
/// counters moved.
const CAMPAIGN_EVERY: Duration = Duration::from_secs(5);

/// What the engine shows of one tenant now.
#[derive(Debug, Default)]
struct Reading {
    queues: Vec<OpenQueue>,
    campaigns: Vec<CampaignReading>,
}

#[derive(Debug)]
struct CampaignReading {
    id: i64,
    shown: i64,
    lines: u32,
    /// Dialled + connected + abandoned so far: when it moves, connects may have.
    moved: u64,
    abandon_rate_day: f64,
    abandon_rate_30d: f64,
    running: bool,
}

/// One engine query: every queue's open interval and every campaign's dialer figures, by
/// tenant.
fn read_engine(e: &Engine, dir: &Directory, ids: &IdCodec) -> HashMap<TenantId, Reading> {
    let now = read_now(e);
    let mut out: HashMap<TenantId, Reading> = HashMap::new();
    let queues: Vec<QueueId> = e.queue_ids().collect();
    for q in queues {
        let Some(tenant) = dir.queue_tenant(q) else {
            continue;
        };
        let snap = e.stats().queue_snapshot(now, q);
        let callbacks_waiting = e
            .waiting_calls(q)
            .iter()
            .filter(|c| e.call_info(**c).is_some_and(|c| c.callback))
            .count() as u64;
        let sl = e
            .queue_config(q)
            .map_or(0.0, |c| c.sl_threshold.as_secs_f64());
        out.entry(tenant).or_default().queues.push(OpenQueue {
            queue: i64::from(q.0),
            shown: ids.queue(i64::from(q.0)),
            sl_threshold_s: sl,
            open_start_ms: i64::try_from(snap.interval_start_unix_ms).unwrap_or(i64::MAX),
            open: Counters::of_queue(&snap.interval),
            callbacks_waiting,
        });
    }
    let tenants: Vec<TenantId> = out.keys().copied().collect();
    for t in tenants {
        for c in dir.tenant_campaigns(t) {
            if let Some(s) = e.campaign_stats(c) {
                let moved = s.dialed + s.connected + s.abandoned;
                let running = s.state == switchyard_engine::dialer::CampaignState::Running;
                if let Some(r) = out.get_mut(&t) {
                    r.campaigns.push(CampaignReading {
                        id: i64::from(c.0),
                        shown: ids.campaign(i64::from(c.0)),
                        lines: s.lines,
                        moved,
                        abandon_rate_day: s.abandon_rate_day,
                        abandon_rate_30d: s.abandon_rate_30d,
                        running,
                    });
                }
            }
        }
    }
    out
}

/// What is kept of one tenant between ticks.
#[derive(Debug)]
struct TenantCache {
    zone_name: String,
    zone: TimeZone,
    zone_read: Option<Instant>,
    day_start: i64,
    stored: Stored,
    /// When to read the closed rows again (soonest first); empty: nothing due.
    reread: Vec<Instant>,
    campaigns_read: Option<Instant>,
    campaigns_moved: u64,
    /// Store id -> (name, abandon target, connects today).
    campaign_info: HashMap<i64, (String, f64, u64)>,
    published: Option<Value>,
}

impl TenantCache {
    fn new() -> TenantCache {
        TenantCache {
            zone_name: "UTC".to_owned(),
            zone: TimeZone::UTC,
            zone_read: None,
            day_start: i64::MIN,
            stored: Stored::default(),
            reread: Vec::new(),
            campaigns_read: None,
            campaigns_moved: u64::MAX,
            campaign_info: HashMap::new(),
            published: None,
        }
    }
}

/// What the publisher reads and where it publishes.
pub struct Parts {
    pub store: Store,
    pub engine: DriverHandle,
    pub directory: Arc<Directory>,
    pub live: Arc<LiveState>,
    pub hub: LiveHub,
    pub ids: IdCodec,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts").finish_non_exhaustive()
    }
}

/// Starts the publisher; it ends when the engine stops answering.
pub fn spawn(p: Parts) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tenants: HashMap<TenantId, TenantCache> = HashMap::new();
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let dir = p.directory.clone();
            let ids = p.ids.clone();
            let Ok(readings) = p.engine.query(move |e| read_engine(e, &dir, &ids)).await else {
                return; // the engine stopped
            };
            // Tenants whose queues are all gone leave the cache (bounded by live tenants).
            tenants.retain(|t, _| readings.contains_key(t));
            for (tenant, reading) in readings {
                let cache = tenants.entry(tenant).or_insert_with(TenantCache::new);
                let figures = tenant_figures(&p.store, tenant, cache, reading).await;
                if cache.published.as_ref() != Some(&figures) {
                    p.live.set_figures(tenant, figures.clone());
                    p.hub.publish(LiveMessage {
                        tenant,
                        kind: "figures",
                        data: figures.clone(),
                    });
                    cache.published = Some(figures);
                }
            }
        }
    })
}

async fn tenant_figures(
    store: &Store,
    tenant: TenantId,
    c: &mut TenantCache,
    mut reading: Reading,
) -> Value {
    let now = Instant::now();
    let now_ms = crate::store::now_ms();
    if c.zone_read
        .is_none_or(|at| now.duration_since(at) >= ZONE_EVERY)
    {
        match store.tenant_time_zone(tenant).await {
            Ok(Some(name)) => {
                if let Ok(z) = TimeZone::get(&name) {
                    c.zone = z;
                    c.zone_name = name;
                }
                c.zone_read = Some(now);
            }
            Ok(None) => c.zone_read = Some(now),
            Err(e) => debug!(error = %e, "wallboard: tenant time zone not read"),
        }
    }
    let day_start = super::day_start_ms(now_ms, &c.zone);
    let open_start = reading
        .queues
        .iter()
        .map(|q| q.open_start_ms)
        .max()
        .unwrap_or(day_start);
    if day_start != c.day_start {
        // A new day (or the first tick): today's rows are read afresh.
        c.day_start = day_start;
        c.stored.closed.clear();
        c.stored.closed_to = day_start;
        c.stored.stand_in.clear();
        c.reread = vec![now];
        c.campaigns_read = None;
    } else if open_start > c.stored.closed_to && c.reread.is_empty() {
        c.reread = ROW_DELAYS.iter().map(|d| now + *d).collect();
    }
    if c.reread.first().is_some_and(|at| *at <= now) {
        let to = open_start.max(day_start);
        let read = if to > day_start {
            store
                .rollup_by_scope(
                    tenant,
                    RollupKind::Queue,
                    0,
                    (day_start, to),
                    i64::MIN,
                    MAX_SCOPES,
                )
                .await
                .map(|rows| {
                    rows.into_iter()
                        .map(|r| (r.scope_id, r.sums.counters))
                        .collect()
                })
        } else {
            Ok(HashMap::new())
        };
        match read {
            Ok(closed) => {
                c.stored.closed = closed;
                c.stored.closed_to = to;
                c.reread.remove(0);
            }
            Err(e) => {
                warn!(error = %e, "wallboard: today's interval rows not read; retrying");
                c.reread[0] = now + RETRY;
            }
        }
    }
    // The last counters seen of each open interval: they stand in for its row once it closes
    // until that row is read.
    for q in &reading.queues {
        c.stored.stand_in.insert((q.queue, q.open_start_ms), q.open);
    }
    // Kept until the row of their interval is read (or their queue is gone).
    let read_to = c.stored.closed_to;
    c.stored.stand_in.retain(|(queue, start), _| {
        *start >= read_to && reading.queues.iter().any(|q| q.queue == *queue)
    });

    let campaigns = campaign_tiles(store, tenant, c, &reading, now, day_start).await;
    reading.queues.sort_by_key(|q| q.shown);
    compose(
        day_start,
        &c.zone_name,
        &reading.queues,
        &c.stored,
        &campaigns,
    )
}

async fn campaign_tiles(
    store: &Store,
    tenant: TenantId,
    c: &mut TenantCache,
    reading: &Reading,
    now: Instant,
    day_start: i64,
) -> Vec<CampaignTile> {
    let moved: u64 = reading.campaigns.iter().map(|x| x.moved).sum();
    let due = c
        .campaigns_read
        .is_none_or(|at| moved != c.campaigns_moved && now.duration_since(at) >= CAMPAIGN_EVERY);
    if due && !reading.campaigns.is_empty() {
        let names = store.list_campaigns(tenant).await;
        let dials = store
            .dials_by_slot(tenant, day_start, crate::store::now_ms() + 1)
            .await;
        match (names, dials) {
            (Ok(names), Ok(dials)) => {
                let mut connects: BTreeMap<i64, u64> = BTreeMap::new();
                for d in dials.iter().filter(|d| d.key == "connected") {
                    *connects.entry(d.b).or_default() += u64::try_from(d.n).unwrap_or(0);
                }
                c.campaign_info = names
                    .into_iter()
                    .map(|row| {
                        let target = row.config["abandon_target"].as_f64().unwrap_or(0.03);
                        let n = connects.get(&row.id).copied().unwrap_or(0);
                        (row.id, (row.name, target, n))
                    })
                    .collect();
                c.campaigns_read = Some(now);
                c.campaigns_moved = moved;
            }
            (Err(e), _) | (_, Err(e)) => {
                debug!(error = %e, "wallboard: campaign figures not read");
            }
        }
    }
    let mut tiles: Vec<CampaignTile> = reading
        .campaigns
        .iter()
        .filter(|x| x.running)
        .map(|x| {
            let (name, target, connects) = c
                .campaign_info
                .get(&x.id)
                .cloned()
                .unwrap_or_else(|| (String::new(), 0.03, 0));
            CampaignTile {
                shown: x.shown,
                name,
                lines: x.lines,
                connects_today: connects,
                abandon_rate_day: x.abandon_rate_day,
                abandon_rate_30d: x.abandon_rate_30d,
                abandon_target: target,
            }
        })
        .collect();
    tiles.sort_by_key(|t| t.shown);
    tiles
}
