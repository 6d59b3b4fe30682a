//! `/v1/analytics/overview | agents | queues`: figures over a range from the stored history,
//! in the tenant's time zone, with the previous period of the same length; definitions in
//! `crate::analytics` (the engine's). Supervisors and admins of the tenant; a range that
//! covers the engine's open 15-minute interval includes it (read live: it is not stored yet).

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use switchyard_engine::{AgentId, QueueId};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, SUPERVISORS, engine_error};
use crate::analytics::{
    self, CampaignDay, Counters, Figures, Granularity, HeatCell, Heatmap, MAX_BUCKETS, Range,
    RangeError, StateTimes, Sums,
};
use crate::http::{ApiError, ApiQuery, Auth, require_role, require_tenant};
use crate::ids::IdKind;
use crate::model::TenantId;
use crate::openapi::ErrorBody;
use crate::runtime::read_now;
use crate::store::{MAX_SCOPES, RollupKind, RollupRow, Tally};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(overview))
        .routes(routes!(agents))
        .routes(routes!(queues))
}

impl From<RangeError> for ApiError {
    fn from(e: RangeError) -> ApiError {
        ApiError::unprocessable(e.field, e.message)
    }
}

/// The range parameters every analytics route takes.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct OverviewQuery {
    /// Start (inclusive): RFC 3339 or unix milliseconds. Default: the start of `to`'s local
    /// day.
    from: Option<String>,
    /// End (exclusive): RFC 3339 or unix milliseconds. Default: now.
    to: Option<String>,
    /// `15m`, `hour` (default), `day`, `week` or `month`, cut in the time zone. At most 31
    /// days at `15m`, 92 at `hour`, 731 at `day`.
    granularity: Option<Granularity>,
    /// Only this queue (its id as the API shows it).
    queue: Option<i64>,
    /// An IANA time zone overriding the tenant's (`PATCH /v1/platform-admin/tenants/{id}`).
    tz: Option<String>,
    /// The most buckets (1-3000, default 3000): more is refused naming `limit`.
    #[param(minimum = 1, maximum = 3000)]
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AgentsQuery {
    /// Start (inclusive): RFC 3339 or unix milliseconds. Default: the start of `to`'s local
    /// day.
    from: Option<String>,
    /// End (exclusive): RFC 3339 or unix milliseconds. Default: now. At most 92 days.
    to: Option<String>,
    /// Only this agent (its id as the API shows it).
    agent: Option<i64>,
    /// An IANA time zone overriding the tenant's.
    tz: Option<String>,
    /// Entries per leaderboard (1-100, default 10).
    #[param(minimum = 1, maximum = 100)]
    top: Option<u32>,
    /// Agents per page (1-1000, default 200): more is refused naming `limit`.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The previous page's `next` (the last agent id it showed): this page starts after it.
    after: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct QueuesQuery {
    /// Start (inclusive): RFC 3339 or unix milliseconds. Default: the start of `to`'s local
    /// day.
    from: Option<String>,
    /// End (exclusive): RFC 3339 or unix milliseconds. Default: now. At most 731 days.
    to: Option<String>,
    /// Only this queue (its id as the API shows it).
    queue: Option<i64>,
    /// An IANA time zone overriding the tenant's.
    tz: Option<String>,
    /// Queues per page (1-1000, default 200): more is refused naming `limit`.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The previous page's `next` (the last queue id it showed): this page starts after it.
    after: Option<String>,
}

/// A period's figures (see `crate::analytics` for the definitions) and what is counted
/// beside the interval rollup.
#[derive(Debug, Serialize, ToSchema)]
struct PeriodFigures {
    #[serde(flatten)]
    figures: Figures,
    /// Voicemail messages left (tenant-wide, whatever the queue filter).
    voicemails: u64,
    /// Campaign dials made (tenant-wide).
    outbound_dials: u64,
    /// Campaign dials connected to an agent (tenant-wide).
    outbound_connects: u64,
}

#[derive(Debug, Serialize, ToSchema)]
struct BucketView {
    /// The bucket's start in the answer's zone (RFC 3339 with offset and zone).
    start: String,
    start_ms: i64,
    end_ms: i64,
    #[serde(flatten)]
    figures: PeriodFigures,
}

#[derive(Debug, Serialize, ToSchema)]
struct PreviousView {
    from_ms: i64,
    to_ms: i64,
    totals: PeriodFigures,
}

#[derive(Debug, Serialize, ToSchema)]
struct DispositionCount {
    code: String,
    count: u64,
}

/// A campaign's results over the range.
#[derive(Debug, Serialize, ToSchema)]
struct CampaignResult {
    id: i64,
    name: String,
    dials: u64,
    /// Distinct contacts dialled.
    contacts: u64,
    /// dials / contacts; null with no contact.
    attempts_per_contact: Option<f64>,
    dispositions: Vec<DispositionCount>,
    /// Per local day: dials, connects, abandons and the abandon rate (abandoned / answered by a
    /// person: connected + abandoned + hung up within the connect deadline).
    days: Vec<CampaignDay>,
}

/// `GET /v1/analytics/overview`.
#[derive(Debug, Serialize, ToSchema)]
struct Overview {
    /// The zone buckets, days and the heatmap are cut in.
    time_zone: String,
    from_ms: i64,
    to_ms: i64,
    granularity: Granularity,
    totals: PeriodFigures,
    /// The same figures for the period of the same length just before.
    previous: PreviousView,
    buckets: Vec<BucketView>,
    /// Calls by local weekday x hour (168 cells, Monday 00:00 first).
    heatmap: Vec<HeatCell>,
    campaigns: Vec<CampaignResult>,
    /// Whether the engine's open 15-minute interval (not stored yet) is part of the figures.
    open_interval: bool,
}

/// The engine's open interval for a tenant, read live: per queue and per agent.
struct OpenInterval {
    start_ms: i64,
    queues: Vec<(i64, Sums)>,
    agents: Vec<(i64, Sums)>,
}

/// Reads the open interval if `[from, to)` covers its start.
async fn open_interval(
    st: &AppState,
    tenant: TenantId,
    from_ms: i64,
    to_ms: i64,
) -> Result<Option<OpenInterval>, ApiError> {
    let (queues, agents) = st.rt.directory.tenant_objects(tenant);
    let open = st
        .rt
        .engine
        .query(move |e| {
            let now = read_now(e);
            let stats = e.stats();
            let start = stats.interval_start_unix_ms();
            let queues: Vec<(i64, Sums)> = queues
                .iter()
                .map(|q: &QueueId| {
                    let f = stats.queue_snapshot(now, *q).interval;
                    let sums = Sums {
                        counters: Counters::of_queue(&f),
                        times: StateTimes::of(&f.agent_time_s),
                    };
                    (i64::from(q.0), sums)
                })
                .collect();
            let agents: Vec<(i64, Sums)> = agents
                .iter()
                .map(|a: &AgentId| {
                    let f = stats.agent_snapshot(now, *a).interval;
                    let sums = Sums {
                        counters: Counters::of_agent(&f),
                        times: StateTimes::of(&f.state_time_s),
                    };
                    (i64::from(a.0), sums)
                })
                .collect();
            (start, queues, agents)
        })
        .await
        .map_err(engine_error)?;
    let start_ms = i64::try_from(open.0).unwrap_or(i64::MAX);
    Ok(
        (from_ms <= start_ms && start_ms < to_ms).then_some(OpenInterval {
            start_ms,
            queues: open.1,
            agents: open.2,
        }),
    )
}

/// The zone of the answer: `?tz=`, else the tenant's.
async fn answer_zone(
    st: &AppState,
    tenant: TenantId,
    tz: Option<&str>,
) -> Result<(String, TimeZone), ApiError> {
    if let Some(name) = tz {
        return Ok((name.to_owned(), analytics::zone("tz", name)?));
    }
    let name = st
        .rt
        .store
        .tenant_time_zone(tenant)
        .await?
        .unwrap_or_else(|| "UTC".to_owned());
    // A stored name was checked when it was set; a tz database without it reads as UTC.
    let zone = TimeZone::get(&name).unwrap_or(TimeZone::UTC);
    Ok((name, zone))
}

/// `[from, to)` from the query: defaults to today so far, in the zone.
fn period(from: Option<&str>, to: Option<&str>, tz: &TimeZone) -> Result<(i64, i64), ApiError> {
    let to_ms = match to {
        Some(t) => analytics::parse_time("to", t)?,
        None => crate::store::now_ms(),
    };
    let from_ms = match from {
        Some(f) => analytics::parse_time("from", f)?,
        None => start_of_day(to_ms - 1, tz),
    };
    if to_ms <= from_ms {
        return Err(ApiError::unprocessable("to", "must be after from"));
    }
    Ok((from_ms, to_ms))
}

fn start_of_day(ms: i64, tz: &TimeZone) -> i64 {
    jiff::Timestamp::from_millisecond(ms)
        .ok()
        .and_then(|t| t.to_zoned(tz.clone()).start_of_day().ok())
        .map_or(ms, |z| z.timestamp().as_millisecond())
}

/// A queue (agent) filter: the store's id, or 0 for none. An id never shown matches nothing
/// (-1 is no store id), like another tenant's.
fn scope_filter(st: &AppState, kind: IdKind, shown: Option<i64>) -> i64 {
    shown.map_or(0, |s| st.rt.ids.decode(kind, s).unwrap_or(-1))
}

/// Queues (agents) per page of `/queues` and `/agents` unless `limit` says otherwise.
const PAGE_DEFAULT: usize = 200;
/// The most queues (agents) one page holds.
const PAGE_MAX: usize = 1000;

/// `limit`: 1-[`PAGE_MAX`]; anything else is refused, not clamped, so a client learns it.
fn page_size(limit: Option<u32>) -> Result<usize, ApiError> {
    match limit.map(|n| n as usize) {
        None => Ok(PAGE_DEFAULT),
        Some(n @ 1..=PAGE_MAX) => Ok(n),
        Some(_) => Err(ApiError::unprocessable(
            "limit",
            format!("must be 1-{PAGE_MAX}"),
        )),
    }
}

/// `after`: the store's id behind the last id a previous page showed (its `next`); 0 for the
/// first page (store ids start at 1).
fn page_after(st: &AppState, kind: IdKind, after: Option<&str>) -> Result<i64, ApiError> {
    match after {
        None | Some("") => Ok(0),
        Some(a) => a
            .parse::<i64>()
            .ok()
            .and_then(|shown| st.rt.ids.decode(kind, shown))
            .filter(|id| *id > 0)
            .ok_or_else(|| ApiError::unprocessable("after", "not a `next` from a previous page")),
    }
}

/// A page of queues (agents), in the store's id order (not the order of the ids shown,
/// which are encoded).
struct Page {
    ids: Vec<i64>,
    /// Whether another page follows.
    more: bool,
    /// The page's last id, or `i64::MAX` on the last page: reads bounded by it miss none.
    through: i64,
}

impl Page {
    /// The first `limit` of `ids` (in any order, repeats allowed), from candidates that hold
    /// at least the first `limit + 1` ids after the cursor of every source.
    fn of(mut ids: Vec<i64>, limit: usize) -> Page {
        ids.sort_unstable();
        ids.dedup();
        let more = ids.len() > limit;
        ids.truncate(limit);
        let through = match ids.last() {
            Some(last) if more => *last,
            _ => i64::MAX,
        };
        Page { ids, more, through }
    }

    /// The `next` of this page: the last id it shows, as the API shows it.
    fn next(&self, st: &AppState, kind: IdKind) -> Option<String> {
        self.more
            .then(|| st.rt.ids.encode(kind, self.through).to_string())
    }
}

/// The open interval's queues (agents) when `[from, to)` covers it and the rollup does not
/// hold it yet (it is filed when it closes; counting it then as well would count it twice),
/// those of the filter only.
async fn open_unstored(
    st: &AppState,
    tenant: TenantId,
    kind: RollupKind,
    scope: i64,
    (from_ms, to_ms): (i64, i64),
) -> Result<Vec<(i64, Sums)>, ApiError> {
    let Some(open) = open_interval(st, tenant, from_ms, to_ms).await? else {
        return Ok(Vec::new());
    };
    let stored = !st
        .rt
        .store
        .rollup_by_start(tenant, kind, scope, open.start_ms, open.start_ms + 1)
        .await?
        .is_empty();
    if stored {
        return Ok(Vec::new());
    }
    let all = match kind {
        RollupKind::Queue => open.queues,
        RollupKind::Agent => open.agents,
    };
    Ok(all
        .into_iter()
        .filter(|(id, _)| scope == 0 || *id == scope)
        .collect())
}

/// Counts per slot start.
fn by_slot(rows: &[Tally]) -> BTreeMap<i64, (u64, u64, u64)> {
    let mut out: BTreeMap<i64, (u64, u64, u64)> = BTreeMap::new();
    for r in rows {
        let e = out.entry(r.a).or_default();
        let n = u64::try_from(r.n).unwrap_or(0);
        match r.key.as_str() {
            // voicemail rows have no key
            "" => e.0 += n,
            "connected" => {
                e.1 += n;
                e.2 += n;
            }
            _ => e.1 += n,
        }
    }
    out
}

fn period_figures(s: &Sums, extra: (u64, u64, u64)) -> PeriodFigures {
    PeriodFigures {
        figures: Figures::derive(s),
        voicemails: extra.0,
        outbound_dials: extra.1,
        outbound_connects: extra.2,
    }
}

/// What one period adds up to: queue counters, agent time (a tenant's occupancy), and the
/// history counted beside them, per 15-minute start.
struct PeriodRows {
    queues: Vec<RollupRow>,
    agents: Vec<RollupRow>,
    slots: BTreeMap<i64, (u64, u64, u64)>,
    dials: Vec<Tally>,
}

async fn period_rows(
    st: &AppState,
    tenant: TenantId,
    queue: i64,
    from_ms: i64,
    to_ms: i64,
) -> Result<PeriodRows, ApiError> {
    let store = &st.rt.store;
    let queues = store
        .rollup_by_start(tenant, RollupKind::Queue, queue, from_ms, to_ms)
        .await?;
    // With a queue filter, occupancy is the engine's per-queue figure over its members (the
    // queue rows' agent time); without, the tenant's agents' time, each agent once.
    let agents = if queue == 0 {
        store
            .rollup_by_start(tenant, RollupKind::Agent, 0, from_ms, to_ms)
            .await?
    } else {
        Vec::new()
    };
    let mut slot_rows = store.voicemails_by_slot(tenant, from_ms, to_ms).await?;
    let dials = store.dials_by_slot(tenant, from_ms, to_ms).await?;
    slot_rows.extend(dials.iter().cloned());
    Ok(PeriodRows {
        queues,
        agents,
        slots: by_slot(&slot_rows),
        dials,
    })
}

/// The sum of a period's rows (and the open interval's, when it is in it and not stored).
fn row_sums(rows: &PeriodRows, queue_filter: i64, open: Option<&OpenInterval>) -> Vec<(i64, Sums)> {
    let mut out: BTreeMap<i64, Sums> = BTreeMap::new();
    for r in &rows.queues {
        let e = out.entry(r.start_ms).or_default();
        e.counters.add(&r.sums.counters);
        if queue_filter != 0 {
            e.times.add(&r.sums.times);
        }
    }
    for r in &rows.agents {
        out.entry(r.start_ms).or_default().times.add(&r.sums.times);
    }
    if let Some(o) = open {
        let stored = rows.queues.iter().any(|r| r.start_ms == o.start_ms);
        if !stored {
            let e = out.entry(o.start_ms).or_default();
            for (id, s) in &o.queues {
                if queue_filter == 0 || *id == queue_filter {
                    e.counters.add(&s.counters);
                    if queue_filter != 0 {
                        e.times.add(&s.times);
                    }
                }
            }
            if queue_filter == 0 {
                for (_, s) in &o.agents {
                    e.times.add(&s.times);
                }
            }
        }
    }
    out.into_iter().collect()
}

/// Analytics overview: the tenant's (or one queue's) figures over a range, per bucket, with the
/// previous period, a weekday x hour heatmap and campaign results.
///
/// Definitions (the engine's): service_level = answered within threshold / (answered +
/// abandoned); asa_s = answer wait / answered; abandon_rate = abandoned / (answered + abandoned
/// + exited); aht_s = (talk + wrap-up) / handled, counted at wrap-up end; occupancy = agent
/// time (on call + wrap-up + reserved) / (that + available), each agent counted once.
/// Counters sum 15-minute rows by their start (ranges snap to quarter hours); ratios are
/// derived from the sums, never averaged.
#[utoipa::path(
    get,
    path = "/v1/analytics/overview",
    tag = "analytics",
    operation_id = "analytics_overview",
    params(OverviewQuery),
    responses(
        (status = 200, description = "Figures over the range", body = Overview),
        (status = 400, description = "A parameter that does not parse (e.g. `granularity`), named in `field`", body = ErrorBody),
        (status = 422, description = "A bad range, zone or limit, named in `field`", body = ErrorBody),
    ),
)]
async fn overview(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<OverviewQuery>,
) -> Result<Json<Overview>, ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    let limit = match q.limit {
        Some(0) => return Err(ApiError::unprocessable("limit", "must be at least 1")),
        Some(n) if n as usize > MAX_BUCKETS => {
            return Err(ApiError::unprocessable(
                "limit",
                format!("at most {MAX_BUCKETS}"),
            ));
        }
        Some(n) => n as usize,
        None => MAX_BUCKETS,
    };
    let (zone_name, tz) = answer_zone(&st, tenant, q.tz.as_deref()).await?;
    let (from_ms, to_ms) = period(q.from.as_deref(), q.to.as_deref(), &tz)?;
    let granularity = q.granularity.unwrap_or(Granularity::Hour);
    let range = Range::new(from_ms, to_ms, granularity, &tz, limit)?;
    let queue = scope_filter(&st, IdKind::Queue, q.queue);

    let open = open_interval(&st, tenant, from_ms, to_ms).await?;
    let rows = period_rows(&st, tenant, queue, from_ms, to_ms).await?;
    let sums = row_sums(&rows, queue, open.as_ref());
    let mut buckets = vec![(Sums::default(), (0u64, 0u64, 0u64)); range.buckets.len()];
    let mut totals = Sums::default();
    let mut heat = Heatmap::default();
    for (start, s) in &sums {
        totals.add(s);
        heat.add(*start, &s.counters, &tz);
        if let Some(i) = range.bucket_of(*start) {
            buckets[i].0.add(s);
        }
    }
    let mut extra_total = (0, 0, 0);
    for (start, e) in &rows.slots {
        extra_total = (
            extra_total.0 + e.0,
            extra_total.1 + e.1,
            extra_total.2 + e.2,
        );
        if let Some(i) = range.bucket_of((*start).max(from_ms)) {
            let b = &mut buckets[i].1;
            *b = (b.0 + e.0, b.1 + e.1, b.2 + e.2);
        }
    }

    // The previous period needs only its totals: summed in the database (one row per kind).
    let (prev_from, prev_to) = range.previous();
    let store = &st.rt.store;
    let prev_queues = store
        .rollup_total(tenant, RollupKind::Queue, queue, prev_from, prev_to)
        .await?;
    let mut prev = Sums {
        counters: prev_queues.sums.counters,
        times: StateTimes::default(),
    };
    if queue == 0 {
        let agents = store
            .rollup_total(tenant, RollupKind::Agent, 0, prev_from, prev_to)
            .await?;
        prev.times = agents.sums.times;
    } else {
        prev.times = prev_queues.sums.times;
    }
    let mut prev_slots = store.voicemails_by_slot(tenant, prev_from, prev_to).await?;
    prev_slots.extend(store.dials_by_slot(tenant, prev_from, prev_to).await?);
    let prev_extra = by_slot(&prev_slots)
        .values()
        .fold((0, 0, 0), |a, e| (a.0 + e.0, a.1 + e.1, a.2 + e.2));

    let campaigns = campaign_results(&st, tenant, &range, &tz, &rows.dials).await?;
    Ok(Json(Overview {
        time_zone: zone_name,
        from_ms,
        to_ms,
        granularity,
        totals: period_figures(&totals, extra_total),
        previous: PreviousView {
            from_ms: prev_from,
            to_ms: prev_to,
            totals: period_figures(&prev, prev_extra),
        },
        buckets: range
            .buckets
            .iter()
            .zip(buckets)
            .map(|(b, (s, e))| BucketView {
                start: analytics::local_time(b.start_ms, &tz),
                start_ms: b.start_ms,
                end_ms: b.end_ms,
                figures: period_figures(&s, e),
            })
            .collect(),
        heatmap: heat.into_cells(),
        campaigns,
        open_interval: open.is_some(),
    }))
}

async fn campaign_results(
    st: &AppState,
    tenant: TenantId,
    range: &Range,
    tz: &TimeZone,
    dials: &[Tally],
) -> Result<Vec<CampaignResult>, ApiError> {
    let store = &st.rt.store;
    let contacts = store
        .campaign_contacts(tenant, range.from_ms, range.to_ms)
        .await?;
    if contacts.is_empty() {
        return Ok(Vec::new());
    }
    let names: HashMap<i64, String> = store
        .campaign_names(tenant)
        .await?
        .into_iter()
        .map(|t| (t.a, t.key))
        .collect();
    let mut dispositions: HashMap<i64, Vec<DispositionCount>> = HashMap::new();
    for d in store
        .dispositions_by_code(tenant, range.from_ms, range.to_ms)
        .await?
    {
        dispositions.entry(d.a).or_default().push(DispositionCount {
            code: d.key,
            count: u64::try_from(d.n).unwrap_or(0),
        });
    }
    // Local days over the range, whatever the overview's granularity (at most 3,660 days).
    let days = Range::cut(range.from_ms, range.to_ms, Granularity::Day, tz, usize::MAX)?;
    Ok(contacts
        .iter()
        .map(|c| {
            let mut per_day: Vec<CampaignDay> = days
                .buckets
                .iter()
                .map(|b| CampaignDay {
                    day: analytics::local_time(b.start_ms, tz),
                    ..CampaignDay::default()
                })
                .collect();
            for d in dials.iter().filter(|d| d.b == c.a) {
                if let Some(i) = days.bucket_of(d.a.max(range.from_ms)) {
                    per_day[i].add(&d.key, u64::try_from(d.n).unwrap_or(0));
                }
            }
            per_day.retain(|d| d.dials > 0);
            let dials = u64::try_from(c.n).unwrap_or(0);
            let contacts = u64::try_from(c.m).unwrap_or(0);
            CampaignResult {
                id: st.rt.ids.encode(IdKind::Campaign, c.a),
                name: names.get(&c.a).cloned().unwrap_or_default(),
                dials,
                contacts,
                attempts_per_contact: (contacts > 0).then(|| dials as f64 / contacts as f64),
                dispositions: dispositions.remove(&c.a).unwrap_or_default(),
                days: per_day,
            }
        })
        .collect())
}

/// One queue's figures.
#[derive(Debug, Serialize, ToSchema)]
struct QueueAnalytics {
    id: i64,
    name: String,
    #[serde(flatten)]
    figures: Figures,
    /// The same figures for the period of the same length just before.
    previous: Figures,
}

/// `GET /v1/analytics/queues`.
#[derive(Debug, Serialize, ToSchema)]
struct QueuesView {
    time_zone: String,
    from_ms: i64,
    to_ms: i64,
    previous_from_ms: i64,
    previous_to_ms: i64,
    queues: Vec<QueueAnalytics>,
    /// Pass as `after` for the next page; `null` on the last.
    next: Option<String>,
}

/// Analytics per queue: each queue's figures over the range and the previous period
/// (definitions as in the overview; a queue's occupancy is over its member agents, so an
/// agent in two queues counts in both).
///
/// Paged: the queues with figures in the range or the previous period (or in the engine's
/// open interval, when the range covers it), `limit` at a time in the store's id order
/// (which is not the order of the ids shown); pass `next` as `after` for the next page. The
/// store groups only the page's queues (`WHERE scope_id > after ... ORDER BY scope_id
/// LIMIT`), so a page costs the same whatever page it is.
#[utoipa::path(
    get,
    path = "/v1/analytics/queues",
    tag = "analytics",
    operation_id = "analytics_queues",
    params(QueuesQuery),
    responses(
        (status = 200, description = "A page of figures per queue", body = QueuesView),
        (status = 400, description = "A parameter that does not parse, named in `field`", body = ErrorBody),
        (status = 422, description = "A bad range, zone, `limit` or `after`, named in `field`", body = ErrorBody),
    ),
)]
async fn queues(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<QueuesQuery>,
) -> Result<Json<QueuesView>, ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    let limit = page_size(q.limit)?;
    let after = page_after(&st, IdKind::Queue, q.after.as_deref())?;
    let (zone_name, tz) = answer_zone(&st, tenant, q.tz.as_deref()).await?;
    let (from_ms, to_ms) = period(q.from.as_deref(), q.to.as_deref(), &tz)?;
    // Checks the span (731 days).
    let range = Range::new(from_ms, to_ms, Granularity::Day, &tz, usize::MAX)?;
    let (prev_from, prev_to) = range.previous();
    let queue = scope_filter(&st, IdKind::Queue, q.queue);
    let store = &st.rt.store;
    // One more than the page from each source: the page is the first `limit` of their union,
    // and the one past it says whether another page follows.
    let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    let now_rows = store
        .rollup_by_scope(
            tenant,
            RollupKind::Queue,
            queue,
            (from_ms, to_ms),
            after,
            fetch,
        )
        .await?;
    let before_rows = store
        .rollup_by_scope(
            tenant,
            RollupKind::Queue,
            queue,
            (prev_from, prev_to),
            after,
            fetch,
        )
        .await?;
    let open: Vec<(i64, Sums)> =
        open_unstored(&st, tenant, RollupKind::Queue, queue, (from_ms, to_ms))
            .await?
            .into_iter()
            .filter(|(id, _)| *id > after)
            .collect();
    let page = Page::of(
        now_rows
            .iter()
            .chain(&before_rows)
            .map(|r| r.scope_id)
            .chain(open.iter().map(|(id, _)| *id))
            .collect(),
        limit,
    );
    let mut now: BTreeMap<i64, Sums> = now_rows.into_iter().map(|r| (r.scope_id, r.sums)).collect();
    for (id, s) in &open {
        now.entry(*id).or_default().add(s);
    }
    let before: HashMap<i64, Sums> = before_rows
        .into_iter()
        .map(|r| (r.scope_id, r.sums))
        .collect();
    let names: HashMap<i64, String> = store
        .queue_names(tenant)
        .await?
        .into_iter()
        .map(|t| (t.a, t.key))
        .collect();
    let queues = page
        .ids
        .iter()
        .map(|id| QueueAnalytics {
            id: st.rt.ids.encode(IdKind::Queue, *id),
            name: names.get(id).cloned().unwrap_or_default(),
            figures: Figures::derive(&now.get(id).copied().unwrap_or_default()),
            previous: Figures::derive(&before.get(id).copied().unwrap_or_default()),
        })
        .collect();
    Ok(Json(QueuesView {
        time_zone: zone_name,
        from_ms,
        to_ms,
        previous_from_ms: prev_from,
        previous_to_ms: prev_to,
        queues,
        next: page.next(&st, IdKind::Queue),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
struct BreakTime {
    /// The break's reason (`""` when none was given).
    reason: String,
    seconds: f64,
}

/// One agent's figures over the range.
#[derive(Debug, Serialize, ToSchema)]
struct AgentAnalytics {
    id: i64,
    name: String,
    /// Offers that ended, whatever the result.
    offered: u64,
    accepted: u64,
    /// Offers the agent declined.
    rejected: u64,
    /// Offers the agent did not take without declining: rang out, busy or failed.
    missed: u64,
    /// Inbound calls connected to the agent.
    answered: u64,
    /// Inbound calls whose wrap-up ended.
    handled_inbound: u64,
    /// Campaign dials connected to the agent.
    handled_outbound: u64,
    /// (talk + wrap-up) / handled inbound calls; null with none.
    aht_s: Option<f64>,
    talk_s: f64,
    wrapup_s: f64,
    /// Always null: hold is not recorded yet (no hold events are stored), so it is not
    /// invented.
    hold_s: Option<f64>,
    /// Time in any state but logged-out, from the agent's state history.
    logged_in_s: f64,
    /// Time on call, from the engine's interval figures.
    on_call_s: f64,
    /// Break time by reason, from the agent's state history.
    breaks: Vec<BreakTime>,
    /// The engine's occupancy: (on call + wrap-up + reserved) / (that + available).
    occupancy: Option<f64>,
    /// The engine's agent time by state.
    state_time_s: StateTimes,
    /// Answered inbound calls that arrived in the range (the repeat-caller base).
    answered_calls: u64,
    /// Of those, calls whose caller number called the same tenant again (any queue) within
    /// 24 h after the call's arrival.
    repeat_callers: u64,
    /// First-contact-resolution proxy: 1 - repeat_callers / answered_calls; null with none.
    fcr_rate: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
struct LeaderEntry {
    id: i64,
    name: String,
    value: f64,
}

#[derive(Debug, Serialize, ToSchema)]
struct Leaderboards {
    /// Most inbound calls handled.
    handled: Vec<LeaderEntry>,
    /// Shortest average handle time (agents with at least one handled call).
    aht_s: Vec<LeaderEntry>,
    /// Highest occupancy.
    occupancy: Vec<LeaderEntry>,
    /// Highest first-contact-resolution proxy.
    fcr_rate: Vec<LeaderEntry>,
}

/// `GET /v1/analytics/agents`.
#[derive(Debug, Serialize, ToSchema)]
struct AgentsView {
    time_zone: String,
    from_ms: i64,
    to_ms: i64,
    agents: Vec<AgentAnalytics>,
    /// Over every agent in the range, whatever the page.
    leaderboards: Leaderboards,
    /// Pass as `after` for the next page; `null` on the last.
    next: Option<String>,
}

/// Analytics per agent: calls handled inbound and outbound, AHT, talk / wrap-up time, missed
/// and rejected offers, logged-in and on-call time, break time by reason, occupancy, and
/// repeat callers: an answered call whose caller number called the same tenant again (any
/// queue) within 24 h after the call's arrival, the first-contact-resolution proxy. Hold time
/// is null: nothing records hold yet. With leaderboards.
///
/// Paged: the agents with interval figures in the range (an agent logged in, offered a call
/// or on one has them) or in the engine's open interval when the range covers it, `limit` at
/// a time in the store's id order (not the order of the ids shown); pass `next` as `after`
/// for the next page. The page's rollup sums, state history and outbound dials are read for
/// its agents only (`WHERE scope_id > after ... ORDER BY scope_id LIMIT`, then the page's id
/// span). The leaderboards are top-N over every agent, the same on every page, and are kept
/// the way they were: ranked here from one per-agent sum of the whole range (grouped in SQL,
/// at most `MAX_SCOPES` agents; plus the open interval, so the live quarter hour ranks too)
/// and the repeat-caller counts of every agent (`call_repeat_sums`, which the page's agents
/// take theirs from). On a first page that is also the last, the page's sum is the whole
/// range's and is not read twice.
#[utoipa::path(
    get,
    path = "/v1/analytics/agents",
    tag = "analytics",
    operation_id = "analytics_agents",
    params(AgentsQuery),
    responses(
        (status = 200, description = "A page of figures per agent, and leaderboards over all of them", body = AgentsView),
        (status = 400, description = "A parameter that does not parse, named in `field`", body = ErrorBody),
        (status = 422, description = "A bad range, zone, `top`, `limit` or `after`, named in `field`", body = ErrorBody),
    ),
)]
async fn agents(
    State(st): State<AppState>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<AgentsQuery>,
) -> Result<Json<AgentsView>, ApiError> {
    require_role(&p, SUPERVISORS)?;
    let tenant = require_tenant(&p)?;
    let top = match q.top {
        None => 10,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(ApiError::unprocessable("top", "must be 1-100")),
    };
    let limit = page_size(q.limit)?;
    let after = page_after(&st, IdKind::Agent, q.after.as_deref())?;
    let (zone_name, tz) = answer_zone(&st, tenant, q.tz.as_deref()).await?;
    let (from_ms, to_ms) = period(q.from.as_deref(), q.to.as_deref(), &tz)?;
    // Checks the span (92 days) without keeping the buckets.
    Range::new(from_ms, to_ms, Granularity::Hour, &tz, usize::MAX)?;
    let agent = scope_filter(&st, IdKind::Agent, q.agent);
    let store = &st.rt.store;
    let range = (from_ms, to_ms);
    let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    let rows = store
        .rollup_by_scope(tenant, RollupKind::Agent, agent, range, after, fetch)
        .await?;
    let open = open_unstored(&st, tenant, RollupKind::Agent, agent, range).await?;
    let page = Page::of(
        rows.iter()
            .map(|r| r.scope_id)
            .chain(open.iter().map(|(id, _)| *id).filter(|id| *id > after))
            .collect(),
        limit,
    );
    // The page's own figures, from its keyset read.
    let mut page_sums: BTreeMap<i64, Sums> = rows
        .iter()
        .filter(|r| r.scope_id <= page.through)
        .map(|r| (r.scope_id, r.sums))
        .collect();
    for (id, s) in open
        .iter()
        .filter(|(id, _)| *id > after && *id <= page.through)
    {
        page_sums.entry(*id).or_default().add(s);
    }
    // Every agent's, for the leaderboards: a first page that is also the last has them.
    let whole_rows = if after == 0 && !page.more {
        rows
    } else {
        store
            .rollup_by_scope(
                tenant,
                RollupKind::Agent,
                agent,
                range,
                i64::MIN,
                MAX_SCOPES,
            )
            .await?
    };
    let mut whole: BTreeMap<i64, Sums> = whole_rows
        .into_iter()
        .map(|r| (r.scope_id, r.sums))
        .collect();
    for (id, s) in &open {
        whole.entry(*id).or_default().add(s);
    }
    let repeats: HashMap<i64, (u64, u64)> = store
        .repeat_callers_by_agent(tenant, agent, from_ms, to_ms)
        .await?
        .into_iter()
        .map(|t| {
            (
                t.a,
                (
                    u64::try_from(t.n).unwrap_or(0),
                    u64::try_from(t.m).unwrap_or(0),
                ),
            )
        })
        .collect();
    let names: HashMap<i64, String> = store
        .agent_names(tenant)
        .await?
        .into_iter()
        .map(|t| (t.a, t.key))
        .collect();
    let leaderboards = leaderboards(&st, &whole, &repeats, &names, top);
    let span = (after, page.through);
    let (history, outbound) = if page.ids.is_empty() {
        (BTreeMap::new(), HashMap::new())
    } else {
        let changes = store
            .agent_state_changes(tenant, agent, range, span)
            .await?;
        let history = analytics::state_history(&changes, from_ms, to_ms, crate::store::now_ms());
        let outbound: HashMap<i64, u64> = store
            .outbound_by_agent(tenant, agent, range, span)
            .await?
            .into_iter()
            .map(|t| (t.a, u64::try_from(t.n).unwrap_or(0)))
            .collect();
        (history, outbound)
    };
    let list: Vec<AgentAnalytics> = page
        .ids
        .iter()
        .map(|&id| {
            let s = page_sums.get(&id).copied().unwrap_or_default();
            let c = &s.counters;
            let h = history.get(&id).cloned().unwrap_or_default();
            let (answered_calls, repeat_callers) = repeats.get(&id).copied().unwrap_or((0, 0));
            AgentAnalytics {
                id: st.rt.ids.encode(IdKind::Agent, id),
                name: names.get(&id).cloned().unwrap_or_default(),
                offered: c.offered,
                accepted: c.accepted,
                rejected: c.rejected,
                missed: c.no_answer + c.busy + c.failed,
                answered: c.answered,
                handled_inbound: c.handled,
                handled_outbound: outbound.get(&id).copied().unwrap_or(0),
                aht_s: aht(&s),
                talk_s: c.talk_s,
                wrapup_s: c.wrapup_s,
                hold_s: None,
                logged_in_s: h.logged_in_ms as f64 / 1000.0,
                on_call_s: s.times.on_call,
                breaks: h
                    .breaks_ms
                    .into_iter()
                    .map(|(reason, ms)| BreakTime {
                        reason,
                        seconds: ms as f64 / 1000.0,
                    })
                    .collect(),
                occupancy: s.times.occupancy(),
                state_time_s: s.times,
                answered_calls,
                repeat_callers,
                fcr_rate: fcr((answered_calls, repeat_callers)),
            }
        })
        .collect();
    Ok(Json(AgentsView {
        time_zone: zone_name,
        from_ms,
        to_ms,
        agents: list,
        leaderboards,
        next: page.next(&st, IdKind::Agent),
    }))
}

/// (talk + wrap-up) / handled inbound calls; None with none.
fn aht(s: &Sums) -> Option<f64> {
    (s.counters.handled > 0).then(|| s.counters.handle_s / s.counters.handled as f64)
}

/// 1 - repeat callers / answered calls; None with none.
fn fcr((answered, repeats): (u64, u64)) -> Option<f64> {
    (answered > 0).then(|| 1.0 - repeats as f64 / answered as f64)
}

/// The top `top` of every agent in `sums` or `repeats` (the whole range's, not a page's);
/// ties go to the lower store id.
fn leaderboards(
    st: &AppState,
    sums: &BTreeMap<i64, Sums>,
    repeats: &HashMap<i64, (u64, u64)>,
    names: &HashMap<i64, String>,
    top: usize,
) -> Leaderboards {
    let mut ids: Vec<i64> = sums.keys().chain(repeats.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let board = |value: &dyn Fn(i64, &Sums) -> Option<f64>, ascending: bool| {
        let entries: Vec<(i64, Option<f64>)> = ids
            .iter()
            .map(|&id| (id, value(id, &sums.get(&id).copied().unwrap_or_default())))
            .collect();
        analytics::leaderboard(&entries, top, ascending)
            .into_iter()
            .map(|(id, value)| LeaderEntry {
                id: st.rt.ids.encode(IdKind::Agent, id),
                name: names.get(&id).cloned().unwrap_or_default(),
                value,
            })
            .collect::<Vec<_>>()
    };
    Leaderboards {
        handled: board(
            &|_, s| (s.counters.handled > 0).then_some(s.counters.handled as f64),
            false,
        ),
        aht_s: board(&|_, s| aht(s), true),
        occupancy: board(&|_, s| s.times.occupancy(), false),
        fcr_rate: board(
            &|id, _| fcr(repeats.get(&id).copied().unwrap_or((0, 0))),
            false,
        ),
    }
}
