//! The wallboard's figures of the day and its tile thresholds.
//!
//! "Today" is from local midnight in the tenant's time zone to now. A queue's today is the
//! sum of two parts, each counted once:
//!
//! ```text
//!  midnight            open interval start S                 now
//!     |── closed interval rows (store) ──|── engine's open interval ──|
//! ```
//!
//! - Closed intervals are the engine's interval rows, summed by the analytics reads
//!   (`Store::rollup_by_scope`); they are re-read when an interval closes (its row is written
//!   asynchronously: until it is read, the last counters seen of that interval stand in).
//! - The open interval is read from the engine (`QueueSnapshot::interval`). It holds what
//!   earlier runs counted in it too: each run saves it every few seconds and at a graceful
//!   stop, and the next start carries it in (`crate::interval_carry`), so a restart, even a
//!   `kill -9`, loses at most the last few seconds of counting.
//!
//! Ratios are derived once from the summed counters with the engine's definitions
//! (`crate::analytics::Figures::derive`): service level, ASA, AHT, abandon rate.

pub mod publisher;
pub mod settings;

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::analytics::{Counters, Figures, Sums};

/// Local midnight of the day holding `now_ms`, in `tz` (unix ms). A zone whose day starts at
/// 01:00 on a DST change (there are some) starts it there.
pub fn day_start_ms(now_ms: i64, tz: &TimeZone) -> i64 {
    Timestamp::from_millisecond(now_ms)
        .ok()
        .and_then(|t| t.to_zoned(tz.clone()).start_of_day().ok())
        .map_or(now_ms, |z| z.timestamp().as_millisecond())
}

/// One queue as the engine shows it now.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenQueue {
    /// Store id.
    pub queue: i64,
    /// The id the API shows.
    pub shown: i64,
    pub sl_threshold_s: f64,
    /// Start of the engine's open interval (unix ms).
    pub open_start_ms: i64,
    /// The open interval's counters.
    pub open: Counters,
    /// Callers who chose a callback and wait for it (still in the queue).
    pub callbacks_waiting: u64,
}

/// What the store says of today, and what stands in for what it does not say yet.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stored {
    /// Closed interval rows from midnight to `closed_to`, summed per queue (store id).
    pub closed: HashMap<i64, Counters>,
    /// Where the rows read end (the open interval's start when they were read).
    pub closed_to: i64,
    /// The last open counters seen per (queue, interval start): they count for an interval
    /// that closed after `closed_to` was read and whose row is not read yet.
    pub stand_in: HashMap<(i64, i64), Counters>,
}

/// A queue's counters of today: closed rows + stand-in for the interval closed since they
/// were read + the open interval.
pub fn today(q: &OpenQueue, day_start: i64, stored: &Stored) -> Counters {
    let mut c = Counters::default();
    if stored.closed_to > day_start
        && let Some(closed) = stored.closed.get(&q.queue)
    {
        c.add(closed);
    }
    let read_from = stored.closed_to.max(day_start);
    for ((queue, start), counters) in &stored.stand_in {
        if *queue == q.queue && *start >= read_from && *start < q.open_start_ms {
            c.add(counters);
        }
    }
    if q.open_start_ms >= day_start {
        c.add(&q.open);
    }
    c
}

/// The figures a tile shows, derived from today's counters.
fn tile_figures(c: &Counters, callbacks_waiting: u64) -> Value {
    let f = Figures::derive(&Sums {
        counters: *c,
        ..Sums::default()
    });
    json!({
        "offered": f.offered,
        "answered": f.answered,
        "abandoned": f.abandoned,
        "handled": f.handled,
        "service_level": f.service_level,
        "asa_s": f.asa_s,
        "aht_s": f.aht_s,
        "abandon_rate": f.abandon_rate,
        "callbacks_scheduled": callbacks_waiting,
    })
}

/// One running campaign as the wallboard shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignTile {
    pub shown: i64,
    pub name: String,
    /// Lines in flight now.
    pub lines: u32,
    /// Dials that connected to an agent since local midnight (stored attempts).
    pub connects_today: u64,
    /// The dialer's ledger: abandoned / answered by a person, today and over 30 days.
    pub abandon_rate_day: f64,
    pub abandon_rate_30d: f64,
    /// The campaign's `abandon_target` (0.03 unless configured).
    pub abandon_target: f64,
}

/// The `figures` object of the live feed for one tenant: per queue (by shown id) and in total.
pub fn compose(
    day_start: i64,
    time_zone: &str,
    queues: &[OpenQueue],
    stored: &Stored,
    campaigns: &[CampaignTile],
) -> Value {
    let mut total = Counters::default();
    let mut callbacks = 0;
    let mut thresholds = Vec::new();
    let per_queue: Vec<Value> = queues
        .iter()
        .map(|q| {
            let c = today(q, day_start, stored);
            total.add(&c);
            callbacks += q.callbacks_waiting;
            thresholds.push(q.sl_threshold_s);
            let mut v = tile_figures(&c, q.callbacks_waiting);
            v["id"] = json!(q.shown);
            v["sl_threshold_s"] = json!(q.sl_threshold_s);
            v
        })
        .collect();
    let mut t = tile_figures(&total, callbacks);
    // Each queue counts within its own threshold; the total names one only when they agree.
    let same = thresholds
        .first()
        .filter(|f| thresholds.iter().all(|x| x == *f));
    t["sl_threshold_s"] = json!(same);
    json!({
        "day_start_ms": day_start,
        "time_zone": time_zone,
        "total": t,
        "queues": per_queue,
        "campaigns": campaigns.iter().map(|c| json!({
            "id": c.shown,
            "name": c.name,
            "lines": c.lines,
            "connects_today": c.connects_today,
            "abandon_rate_day": c.abandon_rate_day,
            "abandon_rate_30d": c.abandon_rate_30d,
            "abandon_target": c.abandon_target,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(answered: u64, within: u64, abandoned: u64, handled: u64) -> Counters {
        Counters {
            offered: answered + abandoned,
            answered,
            answered_within_sl: within,
            abandoned,
            handled,
            answer_wait_s: answered as f64 * 10.0,
            handle_s: handled as f64 * 100.0,
            ..Counters::default()
        }
    }

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn queue(open_start: i64, open: Counters) -> OpenQueue {
        OpenQueue {
            queue: 1,
            shown: 77,
            sl_threshold_s: 20.0,
            open_start_ms: open_start,
            open,
            callbacks_waiting: 2,
        }
    }

    #[test]
    fn midnight_is_local_in_a_zone_east_of_utc() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        // 23:30 UTC on 7 December is 00:30 on the 8th in Paris: its day began at 23:00 UTC.
        assert_eq!(
            day_start_ms(ms("2026-12-07T23:30:00Z"), &paris),
            ms("2026-12-07T23:00:00Z")
        );
        // 22:30 UTC is still the 7th in Paris.
        assert_eq!(
            day_start_ms(ms("2026-12-07T22:30:00Z"), &paris),
            ms("2026-12-06T23:00:00Z")
        );
        let ny = TimeZone::get("America/New_York").unwrap();
        assert_eq!(
            day_start_ms(ms("2026-12-08T03:00:00Z"), &ny),
            ms("2026-12-07T05:00:00Z")
        );
    }

    #[test]
    fn today_adds_closed_rows_and_the_open_interval_once_each() {
        let day = ms("2026-12-07T05:00:00Z");
        let open_start = ms("2026-12-07T15:45:00Z");
        let mut stored = Stored {
            closed_to: open_start,
            ..Stored::default()
        };
        stored.closed.insert(1, calls(10, 8, 2, 9));
        // Another queue's rows are not this one's.
        stored.closed.insert(2, calls(100, 100, 0, 100));
        // The open interval holds what an earlier run counted in it (`interval_carry`).
        let q = queue(open_start, calls(5, 4, 2, 5));
        let c = today(&q, day, &stored);
        assert_eq!(
            (c.answered, c.answered_within_sl, c.abandoned, c.handled),
            (15, 12, 4, 14)
        );
        let v = compose(day, "America/New_York", &[q], &stored, &[]);
        let t = &v["total"];
        assert_eq!(t["handled"], 14);
        assert_eq!(t["abandoned"], 4);
        assert_eq!(t["callbacks_scheduled"], 2);
        // The engine's definitions over the sums: SL = within / (answered + abandoned).
        assert_eq!(t["service_level"], json!(12.0 / 19.0));
        assert_eq!(t["abandon_rate"], json!(4.0 / 19.0));
        assert_eq!(t["asa_s"], json!(10.0));
        assert_eq!(t["aht_s"], json!(100.0));
        assert_eq!(t["sl_threshold_s"], json!(20.0));
        assert_eq!(v["queues"][0]["id"], 77);
        assert_eq!(v["day_start_ms"], day);
    }

    #[test]
    fn an_interval_closed_since_the_rows_were_read_counts_its_last_open_counters() {
        let day = ms("2026-12-07T00:00:00Z");
        let read_to = ms("2026-12-07T10:00:00Z");
        let mut stored = Stored {
            closed_to: read_to,
            ..Stored::default()
        };
        stored.closed.insert(1, calls(5, 5, 0, 5));
        stored.stand_in.insert((1, read_to), calls(4, 4, 0, 4));
        // The engine moved on to 10:15: the 10:00 row is not read yet.
        let q = queue(read_to + 900_000, calls(1, 1, 0, 1));
        assert_eq!(today(&q, day, &stored).handled, 10);
        // Once read, the row replaces the stand-in (which is then older than `closed_to`).
        stored.closed.insert(1, calls(9, 9, 0, 9));
        stored.closed_to = read_to + 900_000;
        assert_eq!(today(&q, day, &stored).handled, 10);
    }

    #[test]
    fn at_midnight_yesterdays_rows_no_longer_count() {
        let yesterday = ms("2026-12-06T23:00:00Z");
        let day = ms("2026-12-07T23:00:00Z");
        let mut stored = Stored {
            closed_to: day,
            ..Stored::default()
        };
        stored.closed.insert(1, calls(5, 5, 0, 5));
        stored
            .stand_in
            .insert((1, yesterday + 3_600_000), calls(1, 1, 0, 1));
        // Read for yesterday (closed_to at most this midnight): nothing of it counts today.
        let q = queue(day, calls(1, 0, 1, 1));
        let c = today(&q, day, &stored);
        assert_eq!((c.handled, c.abandoned), (1, 1));
    }

    #[test]
    fn campaigns_show_lines_connects_and_the_ledgers_rate_against_their_target() {
        let c = CampaignTile {
            shown: 9,
            name: "renewals".into(),
            lines: 4,
            connects_today: 31,
            abandon_rate_day: 0.025,
            abandon_rate_30d: 0.012,
            abandon_target: 0.03,
        };
        let v = compose(0, "UTC", &[], &Stored::default(), &[c]);
        assert_eq!(
            v["campaigns"][0],
            json!({"id": 9, "name": "renewals", "lines": 4, "connects_today": 31,
                "abandon_rate_day": 0.025, "abandon_rate_30d": 0.012, "abandon_target": 0.03})
        );
        // No queues: zeros and nulls, never a division by zero.
        assert_eq!(v["total"]["handled"], 0);
        assert_eq!(v["total"]["service_level"], Value::Null);
        assert_eq!(v["total"]["sl_threshold_s"], Value::Null);
    }
}
