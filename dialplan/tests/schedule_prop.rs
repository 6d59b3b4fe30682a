//! Property: for random schedules and instants near DST transitions, holidays and overrides,
//! `status` agrees with a brute-force reference written straight from the documented rules
//! (no shared code: it scans overrides linearly and finds holidays by counting weekdays), and
//! `next_change` is a real flip with no flip before it.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use proptest::prelude::*;
use switchyard_dialplan::schedule::{
    Force, Holiday, Nth, Override, OverrideHours, Range, Schedule, Weekday,
};

// ---- the reference -------------------------------------------------------------------------

fn reference_open(doc: &Schedule, at: Timestamp) -> bool {
    match doc.force {
        Force::Open => return true,
        Force::Closed => return false,
        Force::None => {}
    }
    let tz = TimeZone::get(&doc.time_zone).unwrap();
    let today = tz.to_datetime(at).date();
    // Wider than the implementation's window on purpose.
    (-3..=2).any(|offset: i32| {
        let day = today.checked_add(offset.days()).unwrap();
        hours_of(doc, day).iter().any(|r| {
            let (start, end) = range_instants(&tz, day, r);
            start <= at && at < end
        })
    })
}

fn hours_of(doc: &Schedule, day: Date) -> Vec<Range> {
    for o in &doc.overrides {
        let first: Date = o.date.parse().unwrap();
        let last: Date = o.through.as_deref().map_or(first, |t| t.parse().unwrap());
        if first <= day && day <= last {
            return match &o.hours {
                OverrideHours::Closed => vec![],
                OverrideHours::Open(ranges) => ranges.clone(),
            };
        }
    }
    if doc.holidays.iter().any(|h| holiday_closes(h, day)) {
        return vec![];
    }
    let weekday = Weekday::ALL[day.weekday().to_monday_zero_offset() as usize];
    doc.weekly.day(weekday).to_vec()
}

fn holiday_closes(h: &Holiday, day: Date) -> bool {
    // The nominal date is the day itself or a neighbour the observed rule moved.
    [-1, 0, 1].into_iter().any(|offset: i32| {
        let nominal = day.checked_add(offset.days()).unwrap();
        is_nominal(h, nominal) && observed(h, nominal) == day
    })
}

fn is_nominal(h: &Holiday, d: Date) -> bool {
    let year = i32::from(d.year());
    if h.first_year.is_some_and(|f| year < f) || h.last_year.is_some_and(|l| year > l) {
        return false;
    }
    if d.month() as u32 != h.month {
        return false;
    }
    if let Some(day) = h.day {
        return d.day() as u32 == day;
    }
    if Some(Weekday::ALL[d.weekday().to_monday_zero_offset() as usize]) != h.weekday {
        return false;
    }
    let week_of_month = (d.day() - 1) / 7 + 1;
    match h.nth.unwrap() {
        Nth::First => week_of_month == 1,
        Nth::Second => week_of_month == 2,
        Nth::Third => week_of_month == 3,
        Nth::Fourth => week_of_month == 4,
        Nth::Fifth => week_of_month == 5,
        Nth::Last => d.day() + 7 > d.days_in_month(),
    }
}

fn observed(h: &Holiday, d: Date) -> Date {
    if !h.observed {
        return d;
    }
    match d.weekday() {
        jiff::civil::Weekday::Saturday => d.yesterday().unwrap(),
        jiff::civil::Weekday::Sunday => d.tomorrow().unwrap(),
        _ => d,
    }
}

fn range_instants(tz: &TimeZone, day: Date, r: &Range) -> (Timestamp, Timestamp) {
    let parse = |s: &str| -> (i8, i8) {
        let (h, m) = s.split_once(':').unwrap();
        (h.parse().unwrap(), m.parse().unwrap())
    };
    let (sh, sm) = parse(&r.start);
    let (eh, em) = parse(&r.end);
    let start = DateTime::from_parts(day, Time::new(sh, sm, 0, 0).unwrap());
    let end = if (eh, em) == (24, 0) {
        DateTime::from_parts(day.tomorrow().unwrap(), Time::midnight())
    } else if (eh, em) <= (sh, sm) {
        DateTime::from_parts(day.tomorrow().unwrap(), Time::new(eh, em, 0, 0).unwrap())
    } else {
        DateTime::from_parts(day, Time::new(eh, em, 0, 0).unwrap())
    };
    // DateTime::to_zoned is jiff's compatible disambiguation, reached by another door.
    (
        start.to_zoned(tz.clone()).unwrap().timestamp(),
        end.to_zoned(tz.clone()).unwrap().timestamp(),
    )
}

// ---- generators ----------------------------------------------------------------------------

const ZONES: [&str; 8] = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Sydney",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "UTC",
    "Pacific/Chatham",
];

/// Dates near DST transitions (several zones), year ends and a plain week.
const ANCHORS: [(i16, i8, i8); 10] = [
    (2026, 3, 8),
    (2026, 3, 29),
    (2026, 4, 5),
    (2026, 9, 6),
    (2026, 10, 4),
    (2026, 10, 25),
    (2026, 11, 1),
    (2026, 6, 15),
    (2026, 12, 31),
    (2027, 1, 1),
];

fn clock() -> impl Strategy<Value = (u32, u32)> {
    (0u32..24, prop::sample::select(vec![0u32, 15, 30, 45]))
}

fn range() -> impl Strategy<Value = Range> {
    (clock(), clock(), any::<bool>()).prop_map(|((sh, sm), (eh, em), to_midnight)| {
        let (eh, em) = if to_midnight {
            (24, 0)
        } else if (eh, em) == (sh, sm) {
            ((sh + 1) % 24, sm)
        } else {
            (eh, em)
        };
        Range::new(format!("{sh:02}:{sm:02}"), format!("{eh:02}:{em:02}"))
    })
}

fn holiday(anchor: Date) -> impl Strategy<Value = Holiday> {
    // Mostly near the anchor, so that holidays (and their observed shifts) fall in the window.
    let near = (-5i32..=5).prop_map(move |offset| {
        let d = anchor.checked_add(offset.days()).unwrap();
        (d.month() as u32, Ok(d.day() as u32))
    });
    let nth = (
        prop_oneof![Just(anchor.month() as u32), 1u32..=12],
        prop::sample::select(vec![
            Nth::First,
            Nth::Second,
            Nth::Third,
            Nth::Fourth,
            Nth::Fifth,
            Nth::Last,
        ]),
        prop::sample::select(Weekday::ALL.to_vec()),
    )
        .prop_map(|(month, nth, weekday)| (month, Err((nth, weekday))));
    let anywhere = (1u32..=12, 1u32..=28).prop_map(|(month, day)| (month, Ok(day)));
    (
        prop_oneof![3 => near, 2 => nth, 1 => anywhere],
        any::<bool>(),
        prop::option::of(2025i32..=2028),
    )
        .prop_map(|((month, rule), observed, first_year)| {
            let (day, nth, weekday) = match rule {
                Ok(day) => (Some(day), None, None),
                Err((nth, weekday)) => (None, Some(nth), Some(weekday)),
            };
            Holiday {
                name: "holiday".into(),
                month,
                day,
                nth,
                weekday,
                observed,
                first_year,
                last_year: None,
            }
        })
}

fn overrides(anchor: Date) -> impl Strategy<Value = Vec<Override>> {
    prop::collection::vec(
        (
            -5i32..=5,
            0i32..=2,
            prop::option::of(prop::collection::vec(range(), 1..3)),
        ),
        0..4,
    )
    .prop_map(move |raw| {
        // Keep them disjoint, as validation demands: drop any that touches one already taken.
        let mut taken: Vec<(Date, Date)> = Vec::new();
        let mut out = Vec::new();
        for (offset, len, hours) in raw {
            let first = anchor.checked_add(offset.days()).unwrap();
            let last = first.checked_add(len.days()).unwrap();
            if taken.iter().any(|&(a, b)| first <= b && a <= last) {
                continue;
            }
            taken.push((first, last));
            out.push(Override {
                name: Some(format!("override {offset}")),
                date: first.to_string(),
                through: (len > 0).then(|| last.to_string()),
                hours: hours.map_or(OverrideHours::Closed, OverrideHours::Open),
            });
        }
        out
    })
}

fn schedule_and_instant() -> impl Strategy<Value = (Schedule, Timestamp)> {
    (
        prop::sample::select(ANCHORS.to_vec()),
        prop::sample::select(ZONES.to_vec()),
    )
        .prop_flat_map(|((y, m, d), zone)| {
            let anchor = jiff::civil::date(y, m, d);
            let tz = TimeZone::get(zone).unwrap();
            let midnight = anchor.to_zoned(tz).unwrap().timestamp();
            let weekly = prop::collection::vec(prop::collection::vec(range(), 0..3), 7);
            let force = prop::sample::select(vec![
                Force::None,
                Force::None,
                Force::None,
                Force::None,
                Force::Open,
                Force::Closed,
            ]);
            // Within three days of the anchor, on a quarter hour half the time so that range
            // ends are hit exactly.
            let instant =
                (-3 * 86_400i64..3 * 86_400, any::<bool>()).prop_map(move |(s, align)| {
                    let s = if align { s - s.rem_euclid(900) } else { s };
                    midnight + SignedDuration::from_secs(s)
                });
            (
                weekly,
                overrides(anchor),
                prop::collection::vec(holiday(anchor), 0..3),
                force,
                instant,
            )
                .prop_map(move |(weekly, overrides, holidays, force, instant)| {
                    let mut doc = Schedule::new(zone);
                    for (day, ranges) in Weekday::ALL.into_iter().zip(weekly) {
                        *doc.weekly.day_mut(day) = ranges;
                    }
                    doc.overrides = overrides;
                    doc.holidays = holidays;
                    doc.force = force;
                    (doc, instant)
                })
        })
}

// ---- the property --------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn status_agrees_with_the_reference_and_next_change_is_the_next_flip(
        (doc, at) in schedule_and_instant()
    ) {
        let hours = doc.compile().map_err(|e| TestCaseError::fail(format!("generated an invalid schedule: {e}")))?;
        let status = hours.status(at);
        let open = reference_open(&doc, at);
        prop_assert_eq!(status.open, open, "status at {} ({})", at, status.local);
        prop_assert_eq!(hours.is_open(at), open);
        match status.next_change {
            Some(next) => {
                prop_assert!(next > at);
                prop_assert!(next.duration_since(at) <= SignedDuration::from_hours(24 * 402));
                prop_assert_ne!(reference_open(&doc, next), open, "flips at {}", next);
                prop_assert_eq!(reference_open(&doc, next - SignedDuration::from_nanos(1)), open, "same just before {}", next);
                // No flip in between: every quarter hour (all range ends are on one, in every
                // zone here) from `at` up to `next`, capped at ten days of them.
                let step = SignedDuration::from_mins(15);
                let aligned = Timestamp::from_second(at.as_second() - at.as_second().rem_euclid(900)).unwrap();
                let mut q = aligned + step;
                let limit = at + SignedDuration::from_hours(240);
                while q < next && q < limit {
                    prop_assert_eq!(reference_open(&doc, q), open, "no flip at {} before {}", q, next);
                    q += step;
                }
            }
            None => {
                if doc.force == Force::None {
                    // No change within the horizon: spot-check the next ten days quarter-hourly.
                    let mut q = at;
                    for _ in 0..(10 * 96) {
                        q += SignedDuration::from_mins(15);
                        prop_assert_eq!(reference_open(&doc, q), open, "no change claimed, but at {}", q);
                    }
                }
            }
        }
    }
}
