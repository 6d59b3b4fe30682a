//! Analytics over stored history, sans-IO: cutting a range into buckets in a time zone, summing
//! the engine's interval counters, and deriving the figures with the engine's definitions.
//!
//! ```text
//! let tz = zone("Europe/Paris")?;                            // the tenant's, or ?tz=
//! let range = Range::new(from_ms, to_ms, Granularity::Day, &tz)?;   // bounded
//! for row in store.rollup_by_start(..) {                      // one row per 15-minute start
//!     if let Some(i) = range.bucket_of(row.start_ms) { sums[i].add(&row) }
//! }
//! let figures = Figures::derive(&sums[i].counters, &sums[i].times);
//! ```
//!
//! # Definitions (the engine's, `switchyard_engine::stats`)
//!
//! The engine keeps counters (sums and counts, never ratios) per queue, per agent and per
//! 15-minute interval, and writes them as interval rows; analytics add the counters of the
//! rows in a range and derive ratios once from the sums (averaging ratios would weigh a quiet
//! quarter hour like a busy one). The ratios are the engine's (`stats/figures.rs`,
//! `QueueFigures::new`), so the stored history and the live statistics agree to the call:
//!
//! - **service_level** = answered within the queue's threshold / (answered + abandoned);
//!   **service_level_excl_short** leaves short abandons out of the denominator.
//! - **asa_s** = total wait of answered calls / answered (rows keep the mean; the sum is
//!   rebuilt as mean x answered per row).
//! - **abandon_rate** = abandoned / (answered + abandoned + exited otherwise).
//! - **aht_s** = (talk + wrap-up) / calls handled, counted when the wrap-up ends.
//! - **occupancy** = agent time (on call + wrap-up + reserved) / (that + available); break and
//!   logged-out time are left out. A tenant's occupancy adds its agents' time (agent rows),
//!   never the queues' (an agent in two queues would count twice there); a queue's is the
//!   engine's per-queue figure over its member agents.
//! - Counters go to the interval their event happened in (an answer at 10:15:02 counts at
//!   10:15). A row belongs to a bucket by its start; ranges therefore snap to quarter hours.
//! - **repeat caller** (first-contact-resolution proxy): an answered call whose caller number
//!   called the same tenant again (any queue) within 24 h after the answered call's arrival.
//!   `fcr_rate` = 1 - repeat / answered calls of the agent.
//! - **hold time** is not recorded anywhere yet (the switch's hold events are not stored):
//!   it is `null`, not zero.
//! - Campaign **abandon_rate** per day = abandoned / dials answered by a person (connected +
//!   abandoned + hung up within the connect deadline), the dialer's own rule.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};
use serde::Serialize;
use switchyard_engine::stats::{AgentFigures, PerState, QueueFigures};
use utoipa::ToSchema;

/// Length of one engine interval: rows start on multiples of it (and every zone's offset is a
/// multiple of it, so a row never straddles a local hour).
pub const SLOT_MS: i64 = 900_000;

/// The most buckets one answer holds (a month of quarter hours is 2,976).
pub const MAX_BUCKETS: usize = 3_000;

const DAY_MS: i64 = 86_400_000;

/// Why a request cannot be answered; each names the query parameter at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RangeError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> RangeError {
    RangeError {
        field,
        message: message.into(),
    }
}

/// An IANA zone by name, from the compiled-in database (`Europe/Paris`, `UTC`).
pub fn zone(field: &'static str, name: &str) -> Result<TimeZone, RangeError> {
    TimeZone::get(name).map_err(|_| bad(field, format!("{name:?} is not an IANA time zone")))
}

/// Bucket size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, Serialize, ToSchema)]
pub enum Granularity {
    #[serde(rename = "15m")]
    Quarter,
    #[serde(rename = "hour")]
    Hour,
    #[serde(rename = "day")]
    Day,
    #[serde(rename = "week")]
    Week,
    #[serde(rename = "month")]
    Month,
}

impl Granularity {
    /// The longest range asked for at this granularity (so an answer stays small and quick).
    pub fn max_span_ms(self) -> i64 {
        match self {
            Granularity::Quarter => 31 * DAY_MS,
            Granularity::Hour => 92 * DAY_MS,
            Granularity::Day => 731 * DAY_MS,
            Granularity::Week | Granularity::Month => 3_660 * DAY_MS,
        }
    }
}

/// Parses `from`/`to`: RFC 3339 (`2026-03-29T00:00:00+01:00`) or unix milliseconds.
pub fn parse_time(field: &'static str, text: &str) -> Result<i64, RangeError> {
    if let Ok(ms) = text.parse::<i64>() {
        return Timestamp::from_millisecond(ms)
            .map(|t| t.as_millisecond())
            .map_err(|_| bad(field, "unix milliseconds out of range"));
    }
    text.parse::<Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| {
            bad(
                field,
                "expected RFC 3339 (2026-03-29T00:00:00Z) or unix milliseconds",
            )
        })
}

/// One bucket: `[start_ms, end_ms)`, clipped to the range asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A checked range cut into buckets.
#[derive(Clone, Debug)]
pub struct Range {
    pub from_ms: i64,
    pub to_ms: i64,
    pub granularity: Granularity,
    pub buckets: Vec<Bucket>,
}

impl Range {
    /// Cuts `[from_ms, to_ms)` at the zone's local boundaries (a DST day is 23 or 25 hours
    /// long). Refuses an empty or reversed range, one longer than the granularity allows, and
    /// more than `max_buckets` buckets.
    pub fn new(
        from_ms: i64,
        to_ms: i64,
        granularity: Granularity,
        tz: &TimeZone,
        max_buckets: usize,
    ) -> Result<Range, RangeError> {
        if to_ms - from_ms > granularity.max_span_ms() {
            return Err(bad(
                "to",
                format!(
                    "the range may span at most {} days at this granularity",
                    granularity.max_span_ms() / DAY_MS
                ),
            ));
        }
        Range::cut(from_ms, to_ms, granularity, tz, max_buckets)
    }

    /// [`Range::new`] without the span check (the caller bounded the range already).
    pub fn cut(
        from_ms: i64,
        to_ms: i64,
        granularity: Granularity,
        tz: &TimeZone,
        max_buckets: usize,
    ) -> Result<Range, RangeError> {
        if to_ms <= from_ms {
            return Err(bad("to", "must be after from"));
        }
        let mut buckets = Vec::new();
        let mut start = align(from_ms, granularity, tz)?;
        while start < to_ms {
            let end = next(start, granularity, tz)?;
            if buckets.len() == max_buckets {
                return Err(bad(
                    "limit",
                    format!(
                        "more than {max_buckets} buckets: ask for a coarser granularity or a shorter range"
                    ),
                ));
            }
            buckets.push(Bucket {
                start_ms: start.max(from_ms),
                end_ms: end.min(to_ms),
            });
            start = end;
        }
        Ok(Range {
            from_ms,
            to_ms,
            granularity,
            buckets,
        })
    }

    /// The bucket holding `t_ms`, if it is in the range.
    pub fn bucket_of(&self, t_ms: i64) -> Option<usize> {
        if t_ms < self.from_ms || t_ms >= self.to_ms {
            return None;
        }
        let i = self.buckets.partition_point(|b| b.end_ms <= t_ms);
        (i < self.buckets.len()).then_some(i)
    }

    /// The period of the same length just before this one.
    pub fn previous(&self) -> (i64, i64) {
        (self.from_ms - (self.to_ms - self.from_ms), self.from_ms)
    }
}

fn zoned(ms: i64, tz: &TimeZone) -> Result<Zoned, RangeError> {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(tz.clone()))
        .map_err(|_| bad("from", "time out of range"))
}

fn ms_of(z: &Zoned) -> i64 {
    z.timestamp().as_millisecond()
}

fn calendar(r: Result<Zoned, jiff::Error>) -> Result<Zoned, RangeError> {
    r.map_err(|e| bad("from", format!("time out of range: {e}")))
}

/// The start of the bucket holding `ms`. Sub-day buckets are cut on local clock time (an
/// Indian hour starts at :30 UTC) with the offset in force at that instant, so the repeated
/// hour of a DST fold is two buckets, not one.
fn align(ms: i64, g: Granularity, tz: &TimeZone) -> Result<i64, RangeError> {
    let z = zoned(ms, tz)?;
    match g {
        Granularity::Quarter | Granularity::Hour => {
            let unit = if g == Granularity::Quarter {
                SLOT_MS
            } else {
                3_600_000
            };
            let offset_ms = i64::from(z.offset().seconds()) * 1000;
            let local = ms + offset_ms;
            Ok(local - local.rem_euclid(unit) - offset_ms)
        }
        Granularity::Day => Ok(ms_of(&calendar(z.start_of_day())?)),
        Granularity::Week => {
            let back = i64::from(z.weekday().to_monday_zero_offset());
            let monday = calendar(z.checked_sub(Span::new().days(back)))?;
            Ok(ms_of(&calendar(monday.start_of_day())?))
        }
        Granularity::Month => {
            let first = calendar(z.first_of_month())?;
            Ok(ms_of(&calendar(first.start_of_day())?))
        }
    }
}

/// The start of the bucket after the one starting at `start`.
fn next(start: i64, g: Granularity, tz: &TimeZone) -> Result<i64, RangeError> {
    match g {
        Granularity::Quarter | Granularity::Hour => {
            let unit = if g == Granularity::Quarter {
                SLOT_MS
            } else {
                3_600_000
            };
            // An offset change that is not a whole unit (a 30-minute DST shift) moves the
            // local boundary: realign after it.
            let plain = start + unit;
            let realigned = align(plain, g, tz)?;
            Ok(if realigned > start { realigned } else { plain })
        }
        Granularity::Day | Granularity::Week | Granularity::Month => {
            let z = zoned(start, tz)?;
            let span = match g {
                Granularity::Day => Span::new().days(1),
                Granularity::Week => Span::new().weeks(1),
                _ => Span::new().months(1),
            };
            let after = calendar(z.checked_add(span))?;
            Ok(ms_of(&calendar(after.start_of_day())?))
        }
    }
}

/// A bucket's start as the zone's wall clock (RFC 3339 with offset and zone name).
pub fn local_time(ms: i64, tz: &TimeZone) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(tz.clone()).to_string())
        .unwrap_or_default()
}

/// The counters of interval rows, added up (queue and agent rows share the shape; each field
/// says what it means for which).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counters {
    /// Queue: calls that entered. Agent: offers that ended, whatever the result.
    pub offered: u64,
    /// Calls connected to an agent.
    pub answered: u64,
    pub answered_within_sl: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    /// Left otherwise (timeout, overflow, voicemail, callback...).
    pub exited: u64,
    /// Left the queue for a callback.
    pub callbacks: u64,
    /// Left the queue for voicemail.
    pub voicemail_exits: u64,
    pub handled: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub no_answer: u64,
    pub busy: u64,
    pub failed: u64,
    pub answer_wait_s: f64,
    pub abandon_wait_s: f64,
    pub talk_s: f64,
    pub wrapup_s: f64,
    pub handle_s: f64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.offered += o.offered;
        self.answered += o.answered;
        self.answered_within_sl += o.answered_within_sl;
        self.abandoned += o.abandoned;
        self.short_abandoned += o.short_abandoned;
        self.exited += o.exited;
        self.callbacks += o.callbacks;
        self.voicemail_exits += o.voicemail_exits;
        self.handled += o.handled;
        self.accepted += o.accepted;
        self.rejected += o.rejected;
        self.no_answer += o.no_answer;
        self.busy += o.busy;
        self.failed += o.failed;
        self.answer_wait_s += o.answer_wait_s;
        self.abandon_wait_s += o.abandon_wait_s;
        self.talk_s += o.talk_s;
        self.wrapup_s += o.wrapup_s;
        self.handle_s += o.handle_s;
    }

    /// The counters behind a queue's figures (the engine's open interval, read live).
    pub fn of_queue(f: &QueueFigures) -> Counters {
        Counters {
            offered: f.offered,
            answered: f.answered,
            answered_within_sl: f.answered_within_sl,
            abandoned: f.abandoned,
            short_abandoned: f.short_abandoned,
            exited: f.exited_total,
            callbacks: f.exited.callback,
            voicemail_exits: f.exited.voicemail,
            handled: f.handled,
            accepted: f.offers.accepted,
            rejected: f.offers.rejected,
            no_answer: f.offers.no_answer,
            busy: f.offers.busy,
            failed: f.offers.failed,
            answer_wait_s: f.asa_s.unwrap_or(0.0) * f.answered as f64,
            abandon_wait_s: f.avg_abandon_wait_s.unwrap_or(0.0) * f.abandoned as f64,
            talk_s: f.talk_s,
            wrapup_s: f.wrapup_s,
            handle_s: f.handle_s,
        }
    }

    /// The counters behind an agent's figures.
    pub fn of_agent(f: &AgentFigures) -> Counters {
        Counters {
            offered: f.offered,
            answered: f.answered,
            handled: f.handled,
            accepted: f.accepted,
            rejected: f.rejected,
            no_answer: f.no_answer,
            busy: f.busy,
            failed: f.failed,
            talk_s: f.talk_s,
            wrapup_s: f.wrapup_s,
            handle_s: f.handle_s,
            ..Counters::default()
        }
    }
}

/// Agent-seconds by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct StateTimes {
    pub available: f64,
    pub on_call: f64,
    pub wrap_up: f64,
    pub reserved: f64,
    pub on_break: f64,
    pub logged_out: f64,
}

impl StateTimes {
    pub fn add(&mut self, o: &StateTimes) {
        self.available += o.available;
        self.on_call += o.on_call;
        self.wrap_up += o.wrap_up;
        self.reserved += o.reserved;
        self.on_break += o.on_break;
        self.logged_out += o.logged_out;
    }

    pub fn of(t: &PerState<f64>) -> StateTimes {
        StateTimes {
            available: t.available,
            on_call: t.on_call,
            wrap_up: t.wrap_up,
            reserved: t.reserved,
            on_break: t.on_break,
            logged_out: t.logged_out,
        }
    }

    /// The engine's occupancy (`stats::figures::occupancy`).
    pub fn occupancy(&self) -> Option<f64> {
        let busy = self.on_call + self.wrap_up + self.reserved;
        let denominator = busy + self.available;
        (denominator > 0.0).then(|| busy / denominator)
    }
}

/// Counters and agent time of one bucket, queue, agent or period.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sums {
    pub counters: Counters,
    pub times: StateTimes,
}

impl Sums {
    pub fn add(&mut self, o: &Sums) {
        self.counters.add(&o.counters);
        self.times.add(&o.times);
    }
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn mean(total_s: f64, n: u64) -> Option<f64> {
    (n > 0).then(|| total_s / n as f64)
}

/// The figures of a period, derived from summed counters with the engine's definitions (see
/// the module doc). Ratios and means are `null` when their denominator is zero; durations in
/// seconds.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Figures {
    pub offered: u64,
    pub answered: u64,
    pub answered_within_sl: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    /// Calls that left their queue otherwise (timeout, overflow, voicemail, callback...).
    pub exited: u64,
    /// Calls that left a queue for a callback.
    pub callbacks: u64,
    pub handled: u64,
    pub service_level: Option<f64>,
    pub service_level_excl_short: Option<f64>,
    pub asa_s: Option<f64>,
    pub avg_abandon_wait_s: Option<f64>,
    pub abandon_rate: Option<f64>,
    pub aht_s: Option<f64>,
    pub talk_s: f64,
    pub wrapup_s: f64,
    pub handle_s: f64,
    pub occupancy: Option<f64>,
}

impl Figures {
    pub fn derive(s: &Sums) -> Figures {
        let c = &s.counters;
        let sl_denominator = c.answered + c.abandoned;
        Figures {
            offered: c.offered,
            answered: c.answered,
            answered_within_sl: c.answered_within_sl,
            abandoned: c.abandoned,
            short_abandoned: c.short_abandoned,
            exited: c.exited,
            callbacks: c.callbacks,
            handled: c.handled,
            service_level: ratio(c.answered_within_sl, sl_denominator),
            service_level_excl_short: ratio(
                c.answered_within_sl,
                sl_denominator.saturating_sub(c.short_abandoned),
            ),
            asa_s: mean(c.answer_wait_s, c.answered),
            avg_abandon_wait_s: mean(c.abandon_wait_s, c.abandoned),
            abandon_rate: ratio(c.abandoned, c.answered + c.abandoned + c.exited),
            aht_s: mean(c.handle_s, c.handled),
            talk_s: c.talk_s,
            wrapup_s: c.wrapup_s,
            handle_s: c.handle_s,
            occupancy: s.times.occupancy(),
        }
    }
}

/// Offered, answered and abandoned calls by local weekday and hour.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct HeatCell {
    /// 1 = Monday ... 7 = Sunday (ISO 8601), in the answer's zone.
    pub weekday: u8,
    /// 0-23, local.
    pub hour: u8,
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
}

/// A weekday x hour grid (168 cells, Monday 00:00 first).
#[derive(Clone, Debug)]
pub struct Heatmap {
    cells: Vec<HeatCell>,
}

impl Default for Heatmap {
    fn default() -> Self {
        let cells = (1..=7u8)
            .flat_map(|weekday| {
                (0..24u8).map(move |hour| HeatCell {
                    weekday,
                    hour,
                    offered: 0,
                    answered: 0,
                    abandoned: 0,
                })
            })
            .collect();
        Heatmap { cells }
    }
}

impl Heatmap {
    /// Adds a row starting at `start_ms` to its local weekday and hour.
    pub fn add(&mut self, start_ms: i64, c: &Counters, tz: &TimeZone) {
        let Ok(t) = Timestamp::from_millisecond(start_ms) else {
            return;
        };
        let z = t.to_zoned(tz.clone());
        let weekday = usize::try_from(z.weekday().to_monday_zero_offset()).unwrap_or(0);
        let hour = usize::try_from(z.hour()).unwrap_or(0);
        if let Some(cell) = self.cells.get_mut(weekday * 24 + hour) {
            cell.offered += c.offered;
            cell.answered += c.answered;
            cell.abandoned += c.abandoned;
        }
    }

    pub fn into_cells(self) -> Vec<HeatCell> {
        self.cells
    }
}

/// A state an agent entered (a row of `agent_states`).
#[derive(Clone, Debug, PartialEq)]
pub struct StateChange {
    pub agent_id: i64,
    pub at_ms: i64,
    pub state: String,
    pub reason: Option<String>,
}

/// An agent's time from its state history within a range.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateHistory {
    /// Time in any state but logged-out.
    pub logged_in_ms: i64,
    pub on_call_ms: i64,
    /// Break time by reason (`""`: a break with no reason).
    pub breaks_ms: BTreeMap<String, i64>,
}

/// Time by state per agent within `[from_ms, to_ms)`. `changes` are sorted by agent and time
/// and may start with each agent's last change before the range (its state at `from_ms`).
/// A state lasts until the agent's next change, or until `to_ms` (or `now_ms`, whichever is
/// earlier: the future is not counted).
pub fn state_history(
    changes: &[StateChange],
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> BTreeMap<i64, StateHistory> {
    let end = to_ms.min(now_ms);
    let mut out: BTreeMap<i64, StateHistory> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate() {
        let until = changes
            .get(i + 1)
            .filter(|n| n.agent_id == c.agent_id)
            .map_or(end, |n| n.at_ms.min(end));
        let span = until - c.at_ms.max(from_ms);
        if span <= 0 {
            continue;
        }
        let h = out.entry(c.agent_id).or_default();
        if c.state != "logged-out" {
            h.logged_in_ms += span;
        }
        match c.state.as_str() {
            "on-call" => h.on_call_ms += span,
            "on-break" => {
                *h.breaks_ms
                    .entry(c.reason.clone().unwrap_or_default())
                    .or_default() += span
            }
            _ => {}
        }
    }
    out
}

/// The ids of the `n` best entries by `key` (higher first, or lower first when `ascending`);
/// entries with no value are left out; ties go to the lower id.
pub fn leaderboard<K: Copy + Ord>(
    entries: &[(K, Option<f64>)],
    n: usize,
    ascending: bool,
) -> Vec<(K, f64)> {
    let mut ranked: Vec<(K, f64)> = entries
        .iter()
        .filter_map(|(k, v)| v.filter(|v| v.is_finite()).map(|v| (*k, v)))
        .collect();
    ranked.sort_by(|a, b| {
        let by = if ascending {
            a.1.total_cmp(&b.1)
        } else {
            b.1.total_cmp(&a.1)
        };
        by.then(a.0.cmp(&b.0))
    });
    ranked.truncate(n);
    ranked
}

/// What a campaign's dials did on one local day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct CampaignDay {
    /// The local day's start (RFC 3339 in the answer's zone).
    pub day: String,
    pub dials: u64,
    pub connected: u64,
    pub abandoned: u64,
    /// Dials answered by a person: connected + abandoned + hung up within the connect
    /// deadline (the dialer's rule).
    pub person: u64,
    /// abandoned / person; null when no person answered.
    pub abandon_rate: Option<f64>,
}

impl CampaignDay {
    /// Counts `n` dials that ended as `outcome` (the engine's attempt outcomes).
    pub fn add(&mut self, outcome: &str, n: u64) {
        self.dials += n;
        match outcome {
            "connected" => {
                self.connected += n;
                self.person += n;
            }
            "abandoned" => {
                self.abandoned += n;
                self.person += n;
            }
            "hung-up" => self.person += n,
            _ => {}
        }
        self.abandon_rate = ratio(self.abandoned, self.person);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn a_spring_forward_day_is_23_hours_and_a_fall_back_day_25() {
        let tz = zone("tz", "Europe/Paris").unwrap();
        let from = ms("2026-03-28T23:00:00Z"); // 00:00 in Paris, 29 March
        let to = ms("2026-03-30T22:00:00Z"); // 00:00 in Paris, 31 March (summer time)
        let r = Range::new(from, to, Granularity::Day, &tz, MAX_BUCKETS).unwrap();
        let hours: Vec<i64> = r
            .buckets
            .iter()
            .map(|b| (b.end_ms - b.start_ms) / 3_600_000)
            .collect();
        assert_eq!(hours, [23, 24]);
        let from = ms("2026-10-24T22:00:00Z"); // 00:00 in Paris, 25 October
        let to = ms("2026-10-25T23:00:00Z");
        let r = Range::new(from, to, Granularity::Day, &tz, MAX_BUCKETS).unwrap();
        assert_eq!(r.buckets.len(), 1);
        assert_eq!(r.buckets[0].end_ms - r.buckets[0].start_ms, 25 * 3_600_000);
    }

    #[test]
    fn hours_of_a_fall_back_day_keep_the_repeated_hour_apart() {
        let tz = zone("tz", "Europe/Paris").unwrap();
        let from = ms("2026-10-24T22:00:00Z");
        let to = ms("2026-10-25T23:00:00Z");
        let r = Range::new(from, to, Granularity::Hour, &tz, MAX_BUCKETS).unwrap();
        assert_eq!(r.buckets.len(), 25);
        assert!(r.buckets.iter().all(|b| b.end_ms - b.start_ms == 3_600_000));
    }

    #[test]
    fn hours_follow_a_half_hour_zone() {
        let tz = zone("tz", "Asia/Kolkata").unwrap();
        let r = Range::new(
            ms("2026-01-01T00:00:00Z"),
            ms("2026-01-01T02:00:00Z"),
            Granularity::Hour,
            &tz,
            MAX_BUCKETS,
        )
        .unwrap();
        // 05:30, 06:00-07:00, 07:00-07:30 local.
        let starts: Vec<i64> = r.buckets.iter().map(|b| b.start_ms).collect();
        assert_eq!(
            starts,
            [
                ms("2026-01-01T00:00:00Z"),
                ms("2026-01-01T00:30:00Z"),
                ms("2026-01-01T01:30:00Z")
            ]
        );
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        let from = ms("2026-01-01T00:00:00Z"); // a Thursday
        let weeks = Range::new(
            from,
            ms("2026-01-20T00:00:00Z"),
            Granularity::Week,
            &utc(),
            MAX_BUCKETS,
        )
        .unwrap();
        assert_eq!(weeks.buckets[0].start_ms, from);
        assert_eq!(weeks.buckets[1].start_ms, ms("2026-01-05T00:00:00Z"));
        let months = Range::new(
            from,
            ms("2026-04-15T00:00:00Z"),
            Granularity::Month,
            &utc(),
            MAX_BUCKETS,
        )
        .unwrap();
        let starts: Vec<i64> = months.buckets.iter().map(|b| b.start_ms).collect();
        assert_eq!(
            starts,
            [
                from,
                ms("2026-02-01T00:00:00Z"),
                ms("2026-03-01T00:00:00Z"),
                ms("2026-04-01T00:00:00Z")
            ]
        );
        assert_eq!(months.buckets[3].end_ms, ms("2026-04-15T00:00:00Z"));
    }

    #[test]
    fn ranges_are_bounded_and_ordered() {
        let from = ms("2026-01-01T00:00:00Z");
        let e = Range::new(from, from, Granularity::Day, &utc(), MAX_BUCKETS).unwrap_err();
        assert_eq!(e.field, "to");
        let e = Range::new(
            from,
            from + 32 * DAY_MS,
            Granularity::Quarter,
            &utc(),
            MAX_BUCKETS,
        )
        .unwrap_err();
        assert_eq!(e.field, "to");
        let e = Range::new(from, from + 10 * DAY_MS, Granularity::Hour, &utc(), 100).unwrap_err();
        assert_eq!(e.field, "limit");
        assert!(
            Range::new(
                from,
                from + 31 * DAY_MS,
                Granularity::Quarter,
                &utc(),
                MAX_BUCKETS
            )
            .is_ok()
        );
    }

    #[test]
    fn rows_fall_in_the_bucket_of_their_start() {
        let from = ms("2026-01-01T00:00:00Z");
        let r = Range::new(
            from,
            from + 2 * DAY_MS,
            Granularity::Day,
            &utc(),
            MAX_BUCKETS,
        )
        .unwrap();
        assert_eq!(r.bucket_of(from), Some(0));
        assert_eq!(r.bucket_of(from + DAY_MS - SLOT_MS), Some(0));
        assert_eq!(r.bucket_of(from + DAY_MS), Some(1));
        assert_eq!(r.bucket_of(from + 2 * DAY_MS), None);
        assert_eq!(r.bucket_of(from - 1), None);
        assert_eq!(r.previous(), (from - 2 * DAY_MS, from));
    }

    #[test]
    fn times_parse_as_rfc3339_or_unix_ms() {
        assert_eq!(
            parse_time("from", "1767225600000").unwrap(),
            1_767_225_600_000
        );
        assert_eq!(
            parse_time("from", "2026-01-01T01:00:00+01:00").unwrap(),
            1_767_225_600_000
        );
        assert_eq!(parse_time("to", "yesterday").unwrap_err().field, "to");
        assert_eq!(zone("tz", "Mars/Olympus").unwrap_err().field, "tz");
    }

    #[test]
    fn ratios_come_from_summed_counters_not_averaged_ratios() {
        // A quiet quarter hour (1 of 1 within SL) and a busy one (10 of 20).
        let quiet = Counters {
            offered: 1,
            answered: 1,
            answered_within_sl: 1,
            answer_wait_s: 5.0,
            ..Counters::default()
        };
        let busy = Counters {
            offered: 20,
            answered: 20,
            answered_within_sl: 10,
            answer_wait_s: 600.0,
            handled: 20,
            handle_s: 2000.0,
            ..Counters::default()
        };
        let mut s = Sums::default();
        s.counters.add(&quiet);
        s.counters.add(&busy);
        let f = Figures::derive(&s);
        assert_eq!(f.service_level, Some(11.0 / 21.0));
        assert_eq!(f.asa_s, Some(605.0 / 21.0));
        assert_eq!(f.aht_s, Some(100.0));
        assert_eq!(f.abandon_rate, Some(0.0));
        assert_eq!(f.occupancy, None);
    }

    #[test]
    fn abandon_rate_counts_other_exits_in_its_denominator_but_service_level_does_not() {
        let s = Sums {
            counters: Counters {
                offered: 10,
                answered: 6,
                answered_within_sl: 3,
                abandoned: 2,
                short_abandoned: 1,
                exited: 2,
                ..Counters::default()
            },
            times: StateTimes {
                available: 30.0,
                on_call: 50.0,
                wrap_up: 10.0,
                reserved: 10.0,
                on_break: 500.0,
                logged_out: 1000.0,
            },
        };
        let f = Figures::derive(&s);
        assert_eq!(f.service_level, Some(3.0 / 8.0));
        assert_eq!(f.service_level_excl_short, Some(3.0 / 7.0));
        assert_eq!(f.abandon_rate, Some(0.2));
        assert_eq!(f.occupancy, Some(0.7));
    }

    #[test]
    fn heatmap_cells_are_local_weekday_and_hour() {
        let tz = zone("tz", "America/New_York").unwrap();
        let mut h = Heatmap::default();
        // Monday 2026-01-05 02:15 UTC is Sunday 21:15 in New York.
        let c = Counters {
            offered: 3,
            answered: 2,
            abandoned: 1,
            ..Counters::default()
        };
        h.add(ms("2026-01-05T02:15:00Z"), &c, &tz);
        let cells = h.into_cells();
        assert_eq!(cells.len(), 168);
        let hit: Vec<&HeatCell> = cells.iter().filter(|c| c.offered > 0).collect();
        assert_eq!(hit.len(), 1);
        assert_eq!((hit[0].weekday, hit[0].hour), (7, 21));
        assert_eq!((hit[0].answered, hit[0].abandoned), (2, 1));
    }

    fn change(agent: i64, at: i64, state: &str, reason: Option<&str>) -> StateChange {
        StateChange {
            agent_id: agent,
            at_ms: at,
            state: state.into(),
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn state_time_runs_to_the_next_change_clipped_to_the_range() {
        let changes = [
            change(1, -100, "available", None), // before the range: its state at 0
            change(1, 50, "on-break", Some("lunch")),
            change(1, 80, "on-call", None),
            change(1, 90, "on-break", Some("coffee")),
            change(1, 95, "on-break", Some("lunch")),
            change(2, 10, "available", None),
            change(2, 20, "logged-out", None),
        ];
        let h = state_history(&changes, 0, 100, 1_000);
        let a = &h[&1];
        assert_eq!(a.logged_in_ms, 100);
        assert_eq!(a.on_call_ms, 10);
        assert_eq!(a.breaks_ms["lunch"], 30 + 5);
        assert_eq!(a.breaks_ms["coffee"], 5);
        assert_eq!(h[&2].logged_in_ms, 10);
        // The future is not counted.
        assert_eq!(state_history(&changes, 0, 100, 60)[&1].logged_in_ms, 60);
    }

    #[test]
    fn leaderboards_rank_and_leave_out_agents_without_a_value() {
        let entries = [(3, Some(5.0)), (1, Some(7.0)), (2, None), (4, Some(5.0))];
        assert_eq!(leaderboard(&entries, 2, false), [(1, 7.0), (3, 5.0)]);
        assert_eq!(
            leaderboard(&entries, 5, true),
            [(3, 5.0), (4, 5.0), (1, 7.0)]
        );
    }

    #[test]
    fn campaign_days_use_the_dialers_abandon_rule() {
        let mut d = CampaignDay::default();
        d.add("connected", 90);
        d.add("abandoned", 3);
        d.add("hung-up", 7);
        d.add("no-answer", 50);
        assert_eq!((d.dials, d.person), (150, 100));
        assert_eq!(d.abandon_rate, Some(0.03));
    }
}
