//! Business hours: weekly ranges in an IANA time zone, dated overrides, recurring holidays and
//! a manual switch; "is the center open at this instant, why, and until when".
//!
//! Pure and deterministic: the instant is an argument, nothing here reads a clock. A
//! [`Schedule`] is the document the API takes as JSON (snake_case fields, unknown fields
//! refused); [`Schedule::compile`] validates it whole (every refusal names the field's JSON path,
//! `weekly.monday[1].end`, `holidays[3].month`) and resolves the zone into a
//! [`CompiledSchedule`], which answers [`CompiledSchedule::status`] and
//! [`CompiledSchedule::is_open`]. The flow's schedule check holds a `CompiledSchedule`.
//!
//! # Which rule decides a day
//!
//! ```text
//!   force = open ───────────────────────────────▶ open   (reason: forced)
//!   force = closed ─────────────────────────────▶ closed (reason: forced)
//!   force = none: each civil date D gets exactly one set of hours:
//!       an override covers D?   ── yes ─▶ the override's hours (closed, or its own ranges)
//!              │ no
//!       a holiday falls on D?   ── yes ─▶ no hours (closed all of D)
//!              │ no
//!       weekly hours of D's weekday
//!   open at t  ⇔  some range of some date's hours contains t
//! ```
//!
//! A range belongs to the date it starts on. A range whose end is at or before its start runs
//! past midnight into the next date (`friday 22:00-02:00` is open until Saturday 02:00), and that
//! part after midnight stays Friday's: a holiday or closed override on Saturday does not cut it,
//! while a holiday on Friday removes the whole range, the part after midnight included. `24:00`
//! is accepted as an end (midnight at the end of the day); a range whose start equals its end is
//! refused as ambiguous (write `00:00`-`24:00` for a whole day). Overlapping ranges are allowed
//! and mean their union; the reason names the lowest-indexed range that contains the instant,
//! preferring a range of the instant's own date over one spilling from the day before.
//!
//! # Time zones and DST
//!
//! Range ends are civil (wall-clock) times on civil dates in `time_zone`, turned into instants
//! with jiff's *compatible* disambiguation (the rule of RFC 5545 and `java.time`):
//! - a wall time that does not exist (spring-forward gap) means the instant it would be with the
//!   offset before the gap, which lands after the gap: 02:30 on a New York spring-forward night
//!   is 03:30 EDT. So `01:00-03:00` that night is open one real hour, and a range whose start,
//!   so moved, is no earlier than its end (`02:00-03:00` on Berlin's spring-forward night, or
//!   New York's `02:30-03:00`) is not open at all that night;
//! - a wall time that occurs twice (fall-back fold) means its first occurrence: `00:00-01:30` on
//!   a New York fall-back night closes at the first 01:30 (EDT), 1 h 30 min after opening, and
//!   `01:30-03:00` opens at the first 01:30 and stays open through the repeated hour (2 h 30 min).
//!
//! Never fixed offsets: every conversion goes through jiff's bundled tz database.
//!
//! # Holidays and overrides
//!
//! A holiday is a fixed month and day (`month: 12, day: 25`) or the nth weekday of a month
//! (`month: 11, nth: "fourth", weekday: "thursday"`; `nth: "last"` counts from the end), with an
//! optional `first_year`/`last_year`. A year without that date (the 29th of February, a fifth
//! Monday) has no holiday. With `observed: true` a holiday on a Saturday is observed (closed) on
//! the Friday before and one on a Sunday on the Monday after, instead of on the day itself. An
//! override covers one date or `date` through `through` inclusive, is `"closed"` or
//! `{"open": [ranges]}`, and beats a holiday on the same date. Overrides may not overlap.
//!
//! # Bounds
//!
//! At most [`MAX_RANGES_PER_DAY`] ranges per day (and per override), [`MAX_OVERRIDES`]
//! overrides, [`MAX_HOLIDAYS`] holidays, names of at most [`MAX_NAME_CHARS`] characters; a
//! document past a bound is refused with the path of the list. [`Status::next_change`] looks
//! [`NEXT_CHANGE_HORIZON_DAYS`] days ahead and says `None` past that.
//!
//! # Example
//!
//! ```json
//! {
//!   "time_zone": "America/New_York",
//!   "weekly": {
//!     "monday": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
//!     "friday": [{"start": "09:00", "end": "17:00"}, {"start": "22:00", "end": "02:00"}],
//!     "saturday": [{"start": "10:00", "end": "24:00"}]
//!   },
//!   "overrides": [
//!     {"name": "Christmas Eve short day", "date": "2026-12-24",
//!      "hours": {"open": [{"start": "09:00", "end": "13:00"}]}},
//!     {"name": "Inventory", "date": "2026-12-28", "through": "2026-12-30", "hours": "closed"}
//!   ],
//!   "holidays": [
//!     {"name": "Thanksgiving", "month": 11, "nth": "fourth", "weekday": "thursday"},
//!     {"name": "Memorial Day", "month": 5, "nth": "last", "weekday": "monday"},
//!     {"name": "Christmas", "month": 12, "day": 25, "observed": true, "first_year": 2020}
//!   ],
//!   "force": "none"
//! }
//! ```
//!
//! ```
//! use switchyard_dialplan::schedule::{Schedule, Reason};
//! let doc: Schedule = serde_json::from_str(r#"{"time_zone": "Europe/Berlin",
//!     "weekly": {"friday": [{"start": "22:00", "end": "02:00"}]}}"#).unwrap();
//! let hours = doc.compile().expect("a valid schedule");
//! // Saturday 2026-03-07 01:30 in Berlin is 00:30 UTC: Friday's late shift.
//! let status = hours.status("2026-03-07T00:30:00Z".parse().unwrap());
//! assert!(status.open);
//! assert!(matches!(status.reason, Reason::Weekly { .. }));
//! ```

mod calendar;
mod compile;
mod status;

use serde::{Deserialize, Serialize};

pub use compile::CompiledSchedule;
pub use status::{Reason, Status};

/// Ranges allowed on one weekday or in one override.
pub const MAX_RANGES_PER_DAY: usize = 16;
/// Overrides allowed in one schedule (Amazon Connect allows 50).
pub const MAX_OVERRIDES: usize = 1000;
/// Recurring holidays allowed in one schedule.
pub const MAX_HOLIDAYS: usize = 200;
/// Characters allowed in a holiday's or override's name.
pub const MAX_NAME_CHARS: usize = 100;
/// How far [`Status::next_change`] looks ahead before saying `None`.
pub const NEXT_CHANGE_HORIZON_DAYS: i32 = 400;

/// A schedule as submitted: the JSON document of the module doc. Times and dates stay text
/// here so that [`Schedule::compile`] can refuse a bad one with its path; serde refuses only
/// what has the wrong shape (unknown fields, a number where text belongs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// IANA zone name, e.g. `America/New_York`.
    pub time_zone: String,
    #[serde(default)]
    pub weekly: Weekly,
    #[serde(default)]
    pub overrides: Vec<Override>,
    #[serde(default)]
    pub holidays: Vec<Holiday>,
    #[serde(default)]
    pub force: Force,
}

/// Opening ranges per weekday; a day left out is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weekly {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monday: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tuesday: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wednesday: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thursday: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub friday: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saturday: Vec<Range>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sunday: Vec<Range>,
}

/// Open from `start` until `end`, both `HH:MM` wall-clock times; `end` may be `24:00`, and an
/// `end` at or before `start` is on the next day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    pub start: String,
    pub end: String,
}

/// Hours for one date or an inclusive run of dates, replacing the weekly hours and any holiday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Last date covered, inclusive (`YYYY-MM-DD`); absent for a single date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<String>,
    pub hours: OverrideHours,
}

/// `"closed"` or `{"open": [ranges]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideHours {
    Closed,
    Open(Vec<Range>),
}

/// A holiday recurring every year: closed all day (unless an override covers the date).
/// Either `day` (a fixed date) or `nth` and `weekday` (a weekday of the month).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    pub name: String,
    /// 1 (January) to 12.
    pub month: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nth: Option<Nth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekday: Option<Weekday>,
    /// Saturday is observed on Friday, Sunday on Monday.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub observed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_year: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_year: Option<i32>,
}

/// Which weekday of the month a holiday is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nth {
    First,
    Second,
    Third,
    Fourth,
    Fifth,
    Last,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// The manual switch: `open` and `closed` beat every other rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Force {
    #[default]
    None,
    Open,
    Closed,
}

impl Schedule {
    /// A schedule in `time_zone` that is closed until ranges are added.
    pub fn new(time_zone: impl Into<String>) -> Self {
        Schedule {
            time_zone: time_zone.into(),
            weekly: Weekly::default(),
            overrides: Vec::new(),
            holidays: Vec::new(),
            force: Force::None,
        }
    }

    /// Checks the whole document; the error names the first bad field's path.
    pub fn validate(&self) -> Result<(), crate::DialplanError> {
        self.compile().map(drop)
    }
}

impl Weekly {
    /// The ranges of one weekday, with its JSON field name.
    pub fn day(&self, day: Weekday) -> &[Range] {
        match day {
            Weekday::Monday => &self.monday,
            Weekday::Tuesday => &self.tuesday,
            Weekday::Wednesday => &self.wednesday,
            Weekday::Thursday => &self.thursday,
            Weekday::Friday => &self.friday,
            Weekday::Saturday => &self.saturday,
            Weekday::Sunday => &self.sunday,
        }
    }

    pub fn day_mut(&mut self, day: Weekday) -> &mut Vec<Range> {
        match day {
            Weekday::Monday => &mut self.monday,
            Weekday::Tuesday => &mut self.tuesday,
            Weekday::Wednesday => &mut self.wednesday,
            Weekday::Thursday => &mut self.thursday,
            Weekday::Friday => &mut self.friday,
            Weekday::Saturday => &mut self.saturday,
            Weekday::Sunday => &mut self.sunday,
        }
    }
}

impl Range {
    pub fn new(start: impl Into<String>, end: impl Into<String>) -> Self {
        Range {
            start: start.into(),
            end: end.into(),
        }
    }
}

impl Weekday {
    /// Monday first, as in the document.
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// The JSON field name (`monday`), used in paths.
    pub fn name(self) -> &'static str {
        match self {
            Weekday::Monday => "monday",
            Weekday::Tuesday => "tuesday",
            Weekday::Wednesday => "wednesday",
            Weekday::Thursday => "thursday",
            Weekday::Friday => "friday",
            Weekday::Saturday => "saturday",
            Weekday::Sunday => "sunday",
        }
    }

    fn to_jiff(self) -> jiff::civil::Weekday {
        use jiff::civil::Weekday as J;
        match self {
            Weekday::Monday => J::Monday,
            Weekday::Tuesday => J::Tuesday,
            Weekday::Wednesday => J::Wednesday,
            Weekday::Thursday => J::Thursday,
            Weekday::Friday => J::Friday,
            Weekday::Saturday => J::Saturday,
            Weekday::Sunday => J::Sunday,
        }
    }

    fn from_jiff(day: jiff::civil::Weekday) -> Weekday {
        use jiff::civil::Weekday as J;
        match day {
            J::Monday => Weekday::Monday,
            J::Tuesday => Weekday::Tuesday,
            J::Wednesday => Weekday::Wednesday,
            J::Thursday => Weekday::Thursday,
            J::Friday => Weekday::Friday,
            J::Saturday => Weekday::Saturday,
            J::Sunday => Weekday::Sunday,
        }
    }
}
