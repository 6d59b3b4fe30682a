//! Validation: a [`Schedule`] document becomes a [`CompiledSchedule`] (zone resolved, times and
//! dates parsed, overrides sorted) or is refused with the JSON path of the first bad field.
//! Fields are checked in document order, so the path named is the first one a reader meets.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

use super::{
    Force, Holiday, MAX_HOLIDAYS, MAX_NAME_CHARS, MAX_OVERRIDES, MAX_RANGES_PER_DAY, Nth, Override,
    OverrideHours, Range, Schedule, Weekday,
};
use crate::DialplanError;

/// A validated schedule, ready to answer "open at this instant?". Built only by
/// [`Schedule::compile`], so every value in it has been checked.
#[derive(Debug, Clone)]
pub struct CompiledSchedule {
    pub(super) doc: Schedule,
    pub(super) tz: TimeZone,
    /// Indexed by `Weekday as usize` (Monday = 0).
    pub(super) weekly: [Vec<ClockRange>; 7],
    /// Sorted by `first`, and no two overlap (validation refuses that).
    pub(super) overrides: Vec<DatedHours>,
    pub(super) holidays: Vec<RecurringHoliday>,
    pub(super) force: Force,
}

/// A wall-clock time of day on a 24-hour clock, `00:00` through `24:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ClockTime {
    /// 0..=1440; 1440 is `24:00`, only ever an end.
    minute_of_day: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ClockRange {
    pub(super) start: ClockTime,
    pub(super) end: ClockTime,
}

/// One override: its hours on each date from `first` to `last` inclusive.
#[derive(Debug, Clone)]
pub(super) struct DatedHours {
    /// Position in the document, for the reason.
    pub(super) index: usize,
    pub(super) first: Date,
    pub(super) last: Date,
    /// `None`: closed all day.
    pub(super) ranges: Option<Vec<ClockRange>>,
}

#[derive(Debug, Clone)]
pub(super) struct RecurringHoliday {
    pub(super) index: usize,
    pub(super) month: i8,
    pub(super) rule: HolidayRule,
    pub(super) observed: bool,
    pub(super) first_year: Option<i16>,
    pub(super) last_year: Option<i16>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum HolidayRule {
    Fixed {
        day: i8,
    },
    /// 1..=5 counts from the month's start, -1 is the last.
    NthWeekday {
        nth: i8,
        weekday: jiff::civil::Weekday,
    },
}

impl Schedule {
    /// Validates the whole document and resolves its zone. The error is
    /// [`DialplanError::Invalid`] with the JSON path of the first bad field.
    pub fn compile(&self) -> Result<CompiledSchedule, DialplanError> {
        let tz = time_zone(&self.time_zone)?;
        let mut weekly: [Vec<ClockRange>; 7] = Default::default();
        for day in Weekday::ALL {
            let path = format!("weekly.{}", day.name());
            weekly[day as usize] = ranges(&path, self.weekly.day(day))?;
        }
        let overrides = overrides(&self.overrides)?;
        if self.holidays.len() > MAX_HOLIDAYS {
            return Err(DialplanError::invalid(
                "holidays",
                format!("at most {MAX_HOLIDAYS} holidays"),
            ));
        }
        let holidays = self
            .holidays
            .iter()
            .enumerate()
            .map(|(index, h)| holiday(index, h))
            .collect::<Result<_, _>>()?;
        Ok(CompiledSchedule {
            doc: self.clone(),
            tz,
            weekly,
            overrides,
            holidays,
            force: self.force,
        })
    }
}

impl CompiledSchedule {
    /// The document it was compiled from, e.g. to serialize it back.
    pub fn schedule(&self) -> &Schedule {
        &self.doc
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }
}

impl TryFrom<Schedule> for CompiledSchedule {
    type Error = DialplanError;
    fn try_from(doc: Schedule) -> Result<Self, DialplanError> {
        doc.compile()
    }
}

impl ClockTime {
    pub(super) const END_OF_DAY: ClockTime = ClockTime {
        minute_of_day: 1440,
    };

    /// The civil time, or `None` for `24:00` (which is the next date's `00:00`).
    pub(super) fn civil(self) -> Option<Time> {
        if self == Self::END_OF_DAY {
            return None;
        }
        // minute_of_day < 1440 here, so both parts fit a civil time.
        let hour = (self.minute_of_day / 60) as i8;
        let minute = (self.minute_of_day % 60) as i8;
        Time::new(hour, minute, 0, 0).ok()
    }
}

fn time_zone(name: &str) -> Result<TimeZone, DialplanError> {
    // An empty name or a path-like one is not an IANA zone; jiff would refuse it too, but say so
    // plainly rather than echo a parser error.
    if name.is_empty() || name.len() > MAX_NAME_CHARS {
        return Err(DialplanError::invalid(
            "time_zone",
            "an IANA zone name is required",
        ));
    }
    TimeZone::get(name).map_err(|_| {
        DialplanError::invalid(
            "time_zone",
            format!("{name:?} is not an IANA time zone (e.g. America/New_York)"),
        )
    })
}

fn ranges(path: &str, ranges: &[Range]) -> Result<Vec<ClockRange>, DialplanError> {
    if ranges.len() > MAX_RANGES_PER_DAY {
        return Err(DialplanError::invalid(
            path,
            format!("at most {MAX_RANGES_PER_DAY} ranges per day"),
        ));
    }
    ranges
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let start = clock_time(&r.start)
                .filter(|t| *t != ClockTime::END_OF_DAY)
                .ok_or_else(|| {
                    DialplanError::invalid(
                        format!("{path}[{i}].start"),
                        format!("{:?} is not a time HH:MM from 00:00 to 23:59", r.start),
                    )
                })?;
            let end = clock_time(&r.end).ok_or_else(|| {
                DialplanError::invalid(
                    format!("{path}[{i}].end"),
                    format!("{:?} is not a time HH:MM from 00:00 to 24:00", r.end),
                )
            })?;
            if start == end {
                return Err(DialplanError::invalid(
                    format!("{path}[{i}].end"),
                    "end equals start: empty or 24 hours? write 00:00-24:00 for a whole day",
                ));
            }
            Ok(ClockRange { start, end })
        })
        .collect()
}

/// `HH:MM` exactly (two digits each), `00:00` to `24:00`.
fn clock_time(text: &str) -> Option<ClockTime> {
    let b = text.as_bytes();
    if b.len() != 5 || b[2] != b':' {
        return None;
    }
    let hour = two_digits(b[0], b[1])?;
    let minute = two_digits(b[3], b[4])?;
    let valid = (hour < 24 && minute < 60) || (hour == 24 && minute == 0);
    valid.then_some(ClockTime {
        minute_of_day: hour * 60 + minute,
    })
}

fn two_digits(tens: u8, ones: u8) -> Option<u16> {
    (tens.is_ascii_digit() && ones.is_ascii_digit())
        .then(|| u16::from(tens - b'0') * 10 + u16::from(ones - b'0'))
}

/// `YYYY-MM-DD` exactly; jiff's own parser would also take a datetime or a basic-format date.
fn civil_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = two_digits(b[0], b[1])? * 100 + two_digits(b[2], b[3])?;
    let month = two_digits(b[5], b[6])?;
    let day = two_digits(b[8], b[9])?;
    // Year 0 has no use in a schedule and jiff's civil range starts at -9999 anyway.
    if year == 0 {
        return None;
    }
    // year <= 9999, month and day <= 99: the casts cannot truncate; Date::new checks the rest.
    Date::new(year as i16, month as i8, day as i8).ok()
}

fn overrides(list: &[Override]) -> Result<Vec<DatedHours>, DialplanError> {
    if list.len() > MAX_OVERRIDES {
        return Err(DialplanError::invalid(
            "overrides",
            format!("at most {MAX_OVERRIDES} overrides"),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (index, o) in list.iter().enumerate() {
        let path = format!("overrides[{index}]");
        name(&format!("{path}.name"), o.name.as_deref(), false)?;
        let first = civil_date(&o.date).ok_or_else(|| {
            DialplanError::invalid(
                format!("{path}.date"),
                format!("{:?} is not a date YYYY-MM-DD", o.date),
            )
        })?;
        let last = match &o.through {
            None => first,
            Some(text) => {
                let last = civil_date(text).ok_or_else(|| {
                    DialplanError::invalid(
                        format!("{path}.through"),
                        format!("{text:?} is not a date YYYY-MM-DD"),
                    )
                })?;
                if last < first {
                    return Err(DialplanError::invalid(
                        format!("{path}.through"),
                        "through is before date",
                    ));
                }
                last
            }
        };
        let ranges = match &o.hours {
            OverrideHours::Closed => None,
            OverrideHours::Open(list) if list.is_empty() => {
                return Err(DialplanError::invalid(
                    format!("{path}.hours.open"),
                    "open with no ranges: say \"closed\" for a closed day",
                ));
            }
            OverrideHours::Open(list) => Some(ranges(&format!("{path}.hours.open"), list)?),
        };
        out.push(DatedHours {
            index,
            first,
            last,
            ranges,
        });
    }
    // Two overrides for one date would need a tie-break nobody reads in the portal: refuse,
    // naming the later one in the document.
    let mut sorted: Vec<&DatedHours> = out.iter().collect();
    sorted.sort_by_key(|o| (o.first, o.index));
    for pair in sorted.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if b.first <= a.last {
            let later = a.index.max(b.index);
            let other = a.index.min(b.index);
            return Err(DialplanError::invalid(
                format!("overrides[{later}].date"),
                format!("overlaps overrides[{other}]"),
            ));
        }
    }
    out.sort_by_key(|o| o.first);
    Ok(out)
}

fn holiday(index: usize, h: &Holiday) -> Result<RecurringHoliday, DialplanError> {
    let path = format!("holidays[{index}]");
    name(&format!("{path}.name"), Some(&h.name), true)?;
    if !(1..=12).contains(&h.month) {
        return Err(DialplanError::invalid(
            format!("{path}.month"),
            "month is 1 (January) to 12",
        ));
    }
    // 1..=12 checked above.
    let month = h.month as i8;
    let rule = match (h.day, h.nth, h.weekday) {
        (Some(day), None, None) => {
            // 2000 is a leap year, so the 29th of February is allowed (and skipped in other
            // years, as documented).
            let longest = Date::new(2000, month, 1)
                .map(|d| d.days_in_month())
                .unwrap_or(31);
            if day < 1 || day > longest as u32 {
                return Err(DialplanError::invalid(
                    format!("{path}.day"),
                    format!("day is 1 to {longest} in month {month}"),
                ));
            }
            // 1..=31 checked above.
            HolidayRule::Fixed { day: day as i8 }
        }
        (None, Some(nth), Some(weekday)) => HolidayRule::NthWeekday {
            nth: match nth {
                Nth::First => 1,
                Nth::Second => 2,
                Nth::Third => 3,
                Nth::Fourth => 4,
                Nth::Fifth => 5,
                Nth::Last => -1,
            },
            weekday: weekday.to_jiff(),
        },
        (Some(_), _, _) => {
            return Err(DialplanError::invalid(
                format!("{path}.day"),
                "give either day or nth and weekday, not both",
            ));
        }
        (None, Some(_), None) => {
            return Err(DialplanError::invalid(
                format!("{path}.weekday"),
                "nth needs a weekday",
            ));
        }
        (None, None, Some(_)) => {
            return Err(DialplanError::invalid(
                format!("{path}.nth"),
                "weekday needs nth (first..fifth or last)",
            ));
        }
        (None, None, None) => {
            return Err(DialplanError::invalid(
                format!("{path}.day"),
                "give either day or nth and weekday",
            ));
        }
    };
    let first_year = year(&format!("{path}.first_year"), h.first_year)?;
    let last_year = year(&format!("{path}.last_year"), h.last_year)?;
    if let (Some(first), Some(last)) = (first_year, last_year)
        && last < first
    {
        return Err(DialplanError::invalid(
            format!("{path}.last_year"),
            "last_year is before first_year",
        ));
    }
    Ok(RecurringHoliday {
        index,
        month,
        rule,
        observed: h.observed,
        first_year,
        last_year,
    })
}

fn year(path: &str, year: Option<i32>) -> Result<Option<i16>, DialplanError> {
    match year {
        None => Ok(None),
        Some(y) if (1..=9999).contains(&y) => Ok(Some(y as i16)),
        Some(_) => Err(DialplanError::invalid(path, "year is 1 to 9999")),
    }
}

fn name(path: &str, name: Option<&str>, required: bool) -> Result<(), DialplanError> {
    match name {
        None if required => Err(DialplanError::invalid(path, "a name is required")),
        Some("") if required => Err(DialplanError::invalid(path, "a name is required")),
        Some(n) if n.chars().count() > MAX_NAME_CHARS => Err(DialplanError::invalid(
            path,
            format!("at most {MAX_NAME_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_are_strict_hh_mm() {
        for (text, minute) in [
            ("00:00", Some(0)),
            ("09:30", Some(570)),
            ("23:59", Some(1439)),
            ("24:00", Some(1440)),
            ("24:01", None),
            ("9:30", None),
            ("09:60", None),
            ("0930", None),
            ("09:3a", None),
            ("", None),
        ] {
            assert_eq!(
                clock_time(text).map(|t| t.minute_of_day),
                minute,
                "{text:?}"
            );
        }
    }

    #[test]
    fn dates_are_strict_iso() {
        assert_eq!(
            civil_date("2026-02-28"),
            Some(jiff::civil::date(2026, 2, 28))
        );
        for bad in [
            "2026-02-29",
            "2026-2-28",
            "20260228",
            "2026-02-28T00:00",
            "0000-01-01",
        ] {
            assert_eq!(civil_date(bad), None, "{bad:?}");
        }
    }
}
