//! Which hours a civil date gets (override, holiday or weekly), and the instants those hours
//! cover. Everything the status and next-change answers need, nothing about instants asked for.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};

use super::Weekday;
use super::compile::{ClockRange, CompiledSchedule, DatedHours, HolidayRule, RecurringHoliday};

/// The rule that decides one date's hours (see the precedence sketch in the module doc).
#[derive(Debug, Clone, Copy)]
pub(super) enum DayRule<'a> {
    Override(&'a DatedHours),
    Holiday(&'a RecurringHoliday),
    Weekly(Weekday),
}

/// One range of one date as instants: open over `start..end`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Interval {
    pub(super) start: Timestamp,
    pub(super) end: Timestamp,
    /// The date whose hours the range belongs to (the date it starts on).
    pub(super) date: Date,
    pub(super) range: usize,
}

/// The holidays (observed dates) falling in a span of dates, computed once per question so
/// that a 400-day look-ahead does not recompute 200 holidays per day.
#[derive(Debug)]
pub(super) struct HolidayDates<'a> {
    /// First holiday in document order wins a date two holidays share.
    by_date: BTreeMap<Date, &'a RecurringHoliday>,
}

impl CompiledSchedule {
    pub(super) fn holiday_dates(&self, first: Date, last: Date) -> HolidayDates<'_> {
        let mut by_date = BTreeMap::new();
        // Observing moves a date by one day at most, across a year's end too (a Saturday
        // 1 January is observed on 31 December), so look one year either side.
        let years = (i32::from(first.year()) - 1)..=(i32::from(last.year()) + 1);
        for h in &self.holidays {
            for year in years.clone() {
                let Ok(year) = i16::try_from(year) else {
                    continue;
                };
                if let Some(date) = observed_date(h, year)
                    && (first..=last).contains(&date)
                {
                    by_date.entry(date).or_insert(h);
                }
            }
        }
        HolidayDates { by_date }
    }

    /// The rule for `date`: an override beats a holiday, which beats the weekly hours.
    pub(super) fn day_rule<'a>(&'a self, date: Date, holidays: &HolidayDates<'a>) -> DayRule<'a> {
        // Overrides are sorted and disjoint: the only candidate is the last one starting on or
        // before `date`.
        let after = self.overrides.partition_point(|o| o.first <= date);
        if let Some(o) = after.checked_sub(1).map(|i| &self.overrides[i])
            && date <= o.last
        {
            return DayRule::Override(o);
        }
        if let Some(h) = holidays.by_date.get(&date) {
            return DayRule::Holiday(h);
        }
        DayRule::Weekly(Weekday::from_jiff(date.weekday()))
    }

    pub(super) fn ranges_of<'a>(&'a self, rule: DayRule<'a>) -> &'a [ClockRange] {
        match rule {
            DayRule::Override(o) => o.ranges.as_deref().unwrap_or(&[]),
            DayRule::Holiday(_) => &[],
            DayRule::Weekly(day) => &self.weekly[day as usize],
        }
    }

    /// Appends the intervals of `date`'s hours. A range whose instants come out empty (it lies
    /// in a spring-forward gap, see the module doc) is left out; so is one past jiff's range.
    pub(super) fn push_intervals(&self, date: Date, rule: DayRule<'_>, out: &mut Vec<Interval>) {
        for (range, r) in self.ranges_of(rule).iter().enumerate() {
            let Some(start) = r.start.civil().map(|t| date.to_datetime(t)) else {
                continue;
            };
            let end = match r.end.civil() {
                Some(t) if r.end > r.start => Some(date.to_datetime(t)),
                // At or before the start: the next date. ClockTime::END_OF_DAY is the next
                // date's midnight.
                Some(t) => date.tomorrow().ok().map(|d| d.to_datetime(t)),
                None => date
                    .tomorrow()
                    .ok()
                    .map(|d| d.to_datetime(Time::midnight())),
            };
            let Some(end) = end else { continue };
            let (Some(start), Some(end)) = (self.instant(start), self.instant(end)) else {
                continue;
            };
            if start < end {
                out.push(Interval {
                    start,
                    end,
                    date,
                    range,
                });
            }
        }
    }

    /// A wall-clock time in the schedule's zone as an instant, by jiff's compatible
    /// disambiguation (gap: the offset before it; fold: the first occurrence).
    pub(super) fn instant(&self, civil: DateTime) -> Option<Timestamp> {
        self.tz.to_ambiguous_timestamp(civil).compatible().ok()
    }
}

/// The date `h` is closed on in `year`, if it has one that year.
fn observed_date(h: &RecurringHoliday, year: i16) -> Option<Date> {
    if h.first_year.is_some_and(|first| year < first) || h.last_year.is_some_and(|last| year > last)
    {
        return None;
    }
    let date = match h.rule {
        // Date::new refuses the 29th of February in a common year: no holiday that year.
        HolidayRule::Fixed { day } => Date::new(year, h.month, day).ok()?,
        HolidayRule::NthWeekday { nth, weekday } => Date::new(year, h.month, 1)
            .ok()?
            .nth_weekday_of_month(nth, weekday)
            .ok()?,
    };
    if !h.observed {
        return Some(date);
    }
    match date.weekday() {
        jiff::civil::Weekday::Saturday => date.yesterday().ok(),
        jiff::civil::Weekday::Sunday => date.tomorrow().ok(),
        _ => Some(date),
    }
}
