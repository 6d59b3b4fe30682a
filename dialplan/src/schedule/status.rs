//! The answers: open or closed at an instant, the rule that says so, and when that flips.
//!
//! An instant's local date `D` is looked up in the zone; the ranges that can contain the
//! instant belong to dates `D-2..=D+1` (a range runs at most into the next date, and the extra
//! date either side absorbs DST shifts at midnight). The next change merges every interval of
//! `D-2` up to a horizon into disjoint open blocks: open now, it is the end of the block holding
//! the instant; closed now, the start of the next block. An answer at or past the first
//! instant of the date after the horizon could be moved by dates not looked at, so it is only
//! given from a wider look (8 days first, then [`NEXT_CHANGE_HORIZON_DAYS`]), else `None`.

use jiff::civil::{Date, DateTime};
use jiff::{Timestamp, ToSpan};
use serde::{Serialize, Serializer};

use super::calendar::{DayRule, Interval};
use super::compile::CompiledSchedule;
use super::{Force, NEXT_CHANGE_HORIZON_DAYS, Weekday};

/// Open or closed at an instant, and why. Serializes for `GET /v1/schedules/{id}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub open: bool,
    pub reason: Reason,
    /// The instant as a wall-clock time in the schedule's zone (`2026-11-26T10:00:00`).
    #[serde(serialize_with = "display")]
    pub local: DateTime,
    /// The next instant `open` flips, if it does within [`NEXT_CHANGE_HORIZON_DAYS`]; `None`
    /// when forced, or when the answer holds that long (always open, always closed).
    #[serde(serialize_with = "display_option")]
    pub next_change: Option<Timestamp>,
}

/// The rule behind a [`Status`]. Open: the range containing the instant. Closed: what decided
/// the instant's local date (a closed override, a holiday, or no weekly range covering it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The manual switch (`force`), which beats every rule.
    Forced,
    /// `weekly.<day>[range]` of the date `date` (the day before the instant's date when a range
    /// runs past midnight).
    Weekly {
        day: Weekday,
        range: usize,
        #[serde(serialize_with = "display")]
        date: Date,
    },
    /// `overrides[index]`, covering `date`; `range` is the open range containing the instant,
    /// `None` when closed.
    Override {
        index: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(serialize_with = "display")]
        date: Date,
        #[serde(skip_serializing_if = "Option::is_none")]
        range: Option<usize>,
    },
    /// `holidays[index]` is observed on `date`.
    Holiday {
        index: usize,
        name: String,
        #[serde(serialize_with = "display")]
        date: Date,
    },
    /// No range covers the instant on an ordinary day.
    OutsideHours,
}

impl CompiledSchedule {
    /// Open or closed at `at`, why, and when that next changes.
    pub fn status(&self, at: Timestamp) -> Status {
        let local = self.tz.to_datetime(at);
        let forced = match self.force {
            Force::None => None,
            Force::Open => Some(true),
            Force::Closed => Some(false),
        };
        if let Some(open) = forced {
            return Status {
                open,
                reason: Reason::Forced,
                local,
                next_change: None,
            };
        }
        let today = local.date();
        let (first, last) = (add_days(today, -2), add_days(today, 1));
        let holidays = self.holiday_dates(first, last);
        let mut intervals = Vec::new();
        // Own date first, so the reason prefers today's range over last night's spill.
        for offset in [0, -1, -2, 1] {
            let date = add_days(today, offset);
            let rule = self.day_rule(date, &holidays);
            let before = intervals.len();
            self.push_intervals(date, rule, &mut intervals);
            if let Some(hit) = intervals[before..]
                .iter()
                .find(|i| i.start <= at && at < i.end)
            {
                return Status {
                    open: true,
                    reason: self.reason_open(rule, hit),
                    local,
                    next_change: self.next_change(at, true),
                };
            }
        }
        Status {
            open: false,
            reason: self.reason_closed(self.day_rule(today, &holidays), today),
            local,
            next_change: self.next_change(at, false),
        }
    }

    /// Whether the schedule is open at `at`; [`Self::status`] without the reason and the
    /// look-ahead, for the call path.
    pub fn is_open(&self, at: Timestamp) -> bool {
        match self.force {
            Force::Open => return true,
            Force::Closed => return false,
            Force::None => {}
        }
        let today = self.tz.to_datetime(at).date();
        let (first, last) = (add_days(today, -2), add_days(today, 1));
        let holidays = self.holiday_dates(first, last);
        let mut intervals = Vec::new();
        for offset in -2..=1 {
            let date = add_days(today, offset);
            self.push_intervals(date, self.day_rule(date, &holidays), &mut intervals);
        }
        intervals.iter().any(|i| i.start <= at && at < i.end)
    }

    /// The first instant after `at` where `is_open` is no longer `open_now`.
    fn next_change(&self, at: Timestamp, open_now: bool) -> Option<Timestamp> {
        [8, NEXT_CHANGE_HORIZON_DAYS]
            .into_iter()
            .find_map(|days| self.next_change_within(at, open_now, days))
    }

    /// `None`: no change found that dates past the horizon could not move.
    fn next_change_within(&self, at: Timestamp, open_now: bool, days: i32) -> Option<Timestamp> {
        let today = self.tz.to_datetime(at).date();
        let first = add_days(today, -2);
        let last = add_days(today, days);
        let holidays = self.holiday_dates(first, last);
        let mut intervals: Vec<Interval> = Vec::new();
        let mut date = first;
        loop {
            self.push_intervals(date, self.day_rule(date, &holidays), &mut intervals);
            match date.tomorrow() {
                Ok(next) if next <= last => date = next,
                _ => break,
            }
        }
        // Intervals of later dates start at or after that date's first instant (compatible
        // disambiguation never maps a wall time earlier than the date's midnight). Past the
        // end of jiff's calendar there are no later dates at all.
        let horizon = match last.tomorrow() {
            Ok(next) => self
                .instant(next.to_datetime(jiff::civil::Time::midnight()))
                .unwrap_or(Timestamp::MAX),
            Err(_) => Timestamp::MAX,
        };
        intervals.sort_by_key(|i| i.start);
        let mut blocks = merged(&intervals);
        let change = if open_now {
            blocks
                .find(|&(start, end)| start <= at && at < end)
                .map(|(_, end)| end)
        } else {
            blocks
                .find(|&(start, _)| start > at)
                .map(|(start, _)| start)
        }?;
        (change < horizon).then_some(change)
    }
}

/// Disjoint, maximal open blocks of intervals sorted by start (touching ones join).
fn merged(sorted: &[Interval]) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
    let mut iter = sorted.iter().peekable();
    std::iter::from_fn(move || {
        let first = iter.next()?;
        let (start, mut end) = (first.start, first.end);
        while let Some(next) = iter.next_if(|i| i.start <= end) {
            end = end.max(next.end);
        }
        Some((start, end))
    })
}

impl CompiledSchedule {
    fn reason_open(&self, rule: DayRule<'_>, hit: &Interval) -> Reason {
        match rule {
            DayRule::Weekly(day) => Reason::Weekly {
                day,
                range: hit.range,
                date: hit.date,
            },
            DayRule::Override(o) => Reason::Override {
                index: o.index,
                name: self.override_name(o.index),
                date: hit.date,
                range: Some(hit.range),
            },
            // A holiday has no ranges, so it never opens anything; kept total all the same.
            DayRule::Holiday(h) => self.holiday_reason(h.index, hit.date),
        }
    }

    fn reason_closed(&self, rule: DayRule<'_>, date: Date) -> Reason {
        match rule {
            DayRule::Weekly(_) => Reason::OutsideHours,
            DayRule::Override(o) => Reason::Override {
                index: o.index,
                name: self.override_name(o.index),
                date,
                range: None,
            },
            DayRule::Holiday(h) => self.holiday_reason(h.index, date),
        }
    }

    fn override_name(&self, index: usize) -> Option<String> {
        self.doc.overrides.get(index).and_then(|o| o.name.clone())
    }

    fn holiday_reason(&self, index: usize, date: Date) -> Reason {
        Reason::Holiday {
            index,
            name: self
                .doc
                .holidays
                .get(index)
                .map(|h| h.name.clone())
                .unwrap_or_default(),
            date,
        }
    }
}

/// `date` moved by `days`, clamped to jiff's calendar (a date past its end repeats the edge,
/// which only ever repeats intervals already looked at).
fn add_days(date: Date, days: i32) -> Date {
    date.checked_add(days.days())
        .unwrap_or(if days < 0 { Date::MIN } else { Date::MAX })
}

fn display<T: std::fmt::Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

fn display_option<T: std::fmt::Display, S: Serializer>(
    value: &Option<T>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}
