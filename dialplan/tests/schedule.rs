//! Business hours, table-driven: DST in three zones, ranges across midnight, recurring holidays,
//! overrides, the manual switch, the next change, and the JSON shapes the API will use.

use jiff::civil::{Date, date};
use jiff::{Timestamp, Zoned};
use serde_json::json;
use switchyard_dialplan::schedule::{CompiledSchedule, Reason, Schedule, Status, Weekday};

fn compile(doc: serde_json::Value) -> CompiledSchedule {
    let doc: Schedule = serde_json::from_value(doc).expect("test document has the right shape");
    doc.compile().expect("test document is valid")
}

/// An instant written with its offset and zone (`2026-03-08T01:59-05:00[America/New_York]`),
/// so that a test names which side of a DST transition it means.
fn at(text: &str) -> Timestamp {
    text.parse::<Zoned>()
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp()
}

fn sunday(zone: &str, ranges: serde_json::Value) -> CompiledSchedule {
    compile(json!({"time_zone": zone, "weekly": {"sunday": ranges}}))
}

#[test]
fn dst_transitions_follow_compatible_disambiguation() {
    // (what, zone, sunday ranges, instant, open)
    let cases = [
        (
            "ny spring range ending before its moved start never opens",
            "America/New_York",
            json!([["02:30", "03:00"]]),
            "2026-03-08T03:00-04:00[America/New_York]",
            false,
        ),
        (
            "ny spring range ending before its moved start never opens (before)",
            "America/New_York",
            json!([["02:30", "03:00"]]),
            "2026-03-08T01:59-05:00[America/New_York]",
            false,
        ),
        // New York springs forward 2026-03-08 02:00 EST -> 03:00 EDT.
        (
            "ny spring 01:00-03:00 opens at 01:00",
            "America/New_York",
            json!([["01:00", "03:00"]]),
            "2026-03-08T01:00-05:00[America/New_York]",
            true,
        ),
        (
            "ny spring 01:00-03:00 open just before the gap",
            "America/New_York",
            json!([["01:00", "03:00"]]),
            "2026-03-08T01:59:59-05:00[America/New_York]",
            true,
        ),
        (
            "ny spring 01:00-03:00 is one real hour: closed at 03:00 EDT",
            "America/New_York",
            json!([["01:00", "03:00"]]),
            "2026-03-08T03:00-04:00[America/New_York]",
            false,
        ),
        (
            "ny spring start in the gap moves past it: closed 03:15",
            "America/New_York",
            json!([["02:30", "04:00"]]),
            "2026-03-08T03:15-04:00[America/New_York]",
            false,
        ),
        (
            "ny spring start in the gap moves past it: open 03:30",
            "America/New_York",
            json!([["02:30", "04:00"]]),
            "2026-03-08T03:30-04:00[America/New_York]",
            true,
        ),
        // New York falls back 2026-11-01 02:00 EDT -> 01:00 EST.
        (
            "ny fall end in the fold is its first occurrence: open",
            "America/New_York",
            json!([["00:00", "01:30"]]),
            "2026-11-01T01:15-04:00[America/New_York]",
            true,
        ),
        (
            "ny fall end in the fold is its first occurrence: closed after",
            "America/New_York",
            json!([["00:00", "01:30"]]),
            "2026-11-01T01:30-04:00[America/New_York]",
            false,
        ),
        (
            "ny fall second 01:15 is after the end",
            "America/New_York",
            json!([["00:00", "01:30"]]),
            "2026-11-01T01:15-05:00[America/New_York]",
            false,
        ),
        (
            "ny fall start in the fold opens at the first occurrence",
            "America/New_York",
            json!([["01:30", "03:00"]]),
            "2026-11-01T01:45-04:00[America/New_York]",
            true,
        ),
        (
            "ny fall range over the fold spans both passes",
            "America/New_York",
            json!([["01:30", "03:00"]]),
            "2026-11-01T01:45-05:00[America/New_York]",
            true,
        ),
        (
            "ny fall range over the fold ends at 03:00 EST",
            "America/New_York",
            json!([["01:30", "03:00"]]),
            "2026-11-01T03:00-05:00[America/New_York]",
            false,
        ),
        // Berlin springs forward 2026-03-29 02:00 CET -> 03:00 CEST.
        (
            "berlin spring 01:00-04:00 open before the gap",
            "Europe/Berlin",
            json!([["01:00", "04:00"]]),
            "2026-03-29T01:59+01:00[Europe/Berlin]",
            true,
        ),
        (
            "berlin spring 01:00-04:00 open after the gap",
            "Europe/Berlin",
            json!([["01:00", "04:00"]]),
            "2026-03-29T03:59+02:00[Europe/Berlin]",
            true,
        ),
        (
            "berlin spring 01:00-04:00 closed at 04:00",
            "Europe/Berlin",
            json!([["01:00", "04:00"]]),
            "2026-03-29T04:00+02:00[Europe/Berlin]",
            false,
        ),
        (
            "berlin spring range wholly in the gap never opens",
            "Europe/Berlin",
            json!([["02:00", "03:00"]]),
            "2026-03-29T03:00+02:00[Europe/Berlin]",
            false,
        ),
        (
            "berlin spring range wholly in the gap never opens (before)",
            "Europe/Berlin",
            json!([["02:00", "03:00"]]),
            "2026-03-29T01:59+01:00[Europe/Berlin]",
            false,
        ),
        // Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET.
        (
            "berlin fall 02:00-03:00 open on the first pass",
            "Europe/Berlin",
            json!([["02:00", "03:00"]]),
            "2026-10-25T02:30+02:00[Europe/Berlin]",
            true,
        ),
        (
            "berlin fall 02:00-03:00 open on the second pass",
            "Europe/Berlin",
            json!([["02:00", "03:00"]]),
            "2026-10-25T02:30+01:00[Europe/Berlin]",
            true,
        ),
        (
            "berlin fall 02:00-03:00 closed at 03:00 CET",
            "Europe/Berlin",
            json!([["02:00", "03:00"]]),
            "2026-10-25T03:00+01:00[Europe/Berlin]",
            false,
        ),
        // Sydney falls back 2026-04-05 03:00 AEDT -> 02:00 AEST (southern autumn).
        (
            "sydney fall end in the fold: first pass open",
            "Australia/Sydney",
            json!([["01:00", "02:30"]]),
            "2026-04-05T02:15+11:00[Australia/Sydney]",
            true,
        ),
        (
            "sydney fall end in the fold: second pass closed",
            "Australia/Sydney",
            json!([["01:00", "02:30"]]),
            "2026-04-05T02:15+10:00[Australia/Sydney]",
            false,
        ),
        // Sydney springs forward 2026-10-04 02:00 AEST -> 03:00 AEDT.
        (
            "sydney spring 01:00-03:00 open before the gap",
            "Australia/Sydney",
            json!([["01:00", "03:00"]]),
            "2026-10-04T01:59+10:00[Australia/Sydney]",
            true,
        ),
        (
            "sydney spring 01:00-03:00 is one real hour",
            "Australia/Sydney",
            json!([["01:00", "03:00"]]),
            "2026-10-04T03:00+11:00[Australia/Sydney]",
            false,
        ),
    ];
    for (what, zone, ranges, instant, open) in cases {
        let ranges: Vec<_> = ranges
            .as_array()
            .unwrap()
            .iter()
            .map(|r| json!({"start": r[0], "end": r[1]}))
            .collect();
        let hours = sunday(zone, json!(ranges));
        assert_eq!(hours.is_open(at(instant)), open, "{what}");
        assert_eq!(hours.status(at(instant)).open, open, "{what}");
    }
}

#[test]
fn dst_ranges_last_the_real_time_between_their_ends() {
    // (zone, day, range, opening instant, real open duration in minutes)
    let cases = [
        (
            "America/New_York",
            "sunday",
            ("01:30", "03:00"),
            "2026-11-01T01:30-04:00[America/New_York]",
            150,
        ),
        (
            "America/New_York",
            "sunday",
            ("01:00", "03:00"),
            "2026-03-08T01:00-05:00[America/New_York]",
            60,
        ),
        (
            "America/New_York",
            "saturday",
            ("22:00", "06:00"),
            "2026-03-07T22:00-05:00[America/New_York]",
            7 * 60,
        ),
        (
            "America/New_York",
            "sunday",
            ("00:00", "01:30"),
            "2026-11-01T00:00-04:00[America/New_York]",
            90,
        ),
        (
            "America/New_York",
            "saturday",
            ("22:00", "06:00"),
            "2026-10-31T22:00-04:00[America/New_York]",
            9 * 60,
        ),
        (
            "Europe/Berlin",
            "sunday",
            ("01:00", "04:00"),
            "2026-03-29T01:00+01:00[Europe/Berlin]",
            2 * 60,
        ),
        (
            "Europe/Berlin",
            "sunday",
            ("00:00", "24:00"),
            "2026-10-25T00:00+02:00[Europe/Berlin]",
            25 * 60,
        ),
        (
            "Australia/Sydney",
            "sunday",
            ("00:00", "24:00"),
            "2026-10-04T00:00+10:00[Australia/Sydney]",
            23 * 60,
        ),
        (
            "Australia/Sydney",
            "sunday",
            ("00:00", "24:00"),
            "2026-04-05T00:00+11:00[Australia/Sydney]",
            25 * 60,
        ),
    ];
    for (zone, day, (start, end), opens, minutes) in cases {
        let hours =
            compile(json!({"time_zone": zone, "weekly": {day: [{"start": start, "end": end}]}}));
        let opens = at(opens);
        let status = hours.status(opens);
        assert!(status.open, "{zone} {day} {start}-{end} opens at {opens}");
        let closes = status.next_change.expect("closes again");
        assert_eq!(
            closes.duration_since(opens),
            jiff::SignedDuration::from_mins(minutes),
            "{zone} {day} {start}-{end}"
        );
        assert!(!hours.is_open(closes));
    }
}

#[test]
fn ranges_across_midnight_belong_to_the_day_they_start() {
    // Friday 2026-06-05 22:00-02:00 in Berlin (summer, no transition nearby).
    let late = json!({"friday": [{"start": "22:00", "end": "02:00"}]});
    let plain = compile(json!({"time_zone": "Europe/Berlin", "weekly": late}));
    let holiday_saturday = compile(json!({"time_zone": "Europe/Berlin", "weekly": late,
        "holidays": [{"name": "Saturday off", "month": 6, "day": 6}]}));
    let holiday_friday = compile(json!({"time_zone": "Europe/Berlin", "weekly": late,
        "holidays": [{"name": "Friday off", "month": 6, "day": 5}]}));
    let closed_saturday = compile(json!({"time_zone": "Europe/Berlin", "weekly": late,
        "overrides": [{"date": "2026-06-06", "hours": "closed"}]}));
    let cases = [
        (
            "friday 21:59 closed",
            &plain,
            "2026-06-05T21:59+02:00[Europe/Berlin]",
            false,
        ),
        (
            "friday 22:00 open",
            &plain,
            "2026-06-05T22:00+02:00[Europe/Berlin]",
            true,
        ),
        (
            "saturday 01:30 open",
            &plain,
            "2026-06-06T01:30+02:00[Europe/Berlin]",
            true,
        ),
        (
            "saturday 02:00 closed",
            &plain,
            "2026-06-06T02:00+02:00[Europe/Berlin]",
            false,
        ),
        (
            "saturday 02:30 closed",
            &plain,
            "2026-06-06T02:30+02:00[Europe/Berlin]",
            false,
        ),
        (
            "saturday holiday keeps friday's late shift",
            &holiday_saturday,
            "2026-06-06T01:30+02:00[Europe/Berlin]",
            true,
        ),
        (
            "saturday closed override keeps friday's late shift",
            &closed_saturday,
            "2026-06-06T01:30+02:00[Europe/Berlin]",
            true,
        ),
        (
            "friday holiday removes the whole range",
            &holiday_friday,
            "2026-06-06T01:30+02:00[Europe/Berlin]",
            false,
        ),
        (
            "friday holiday removes the evening",
            &holiday_friday,
            "2026-06-05T23:00+02:00[Europe/Berlin]",
            false,
        ),
    ];
    for (what, hours, instant, open) in cases {
        assert_eq!(hours.status(at(instant)).open, open, "{what}");
    }
    let status = plain.status(at("2026-06-06T01:30+02:00[Europe/Berlin]"));
    assert_eq!(
        status.reason,
        Reason::Weekly {
            day: Weekday::Friday,
            range: 0,
            date: date(2026, 6, 5)
        }
    );
    assert_eq!(
        status.next_change,
        Some(at("2026-06-06T02:00+02:00[Europe/Berlin]"))
    );
}

#[test]
fn twenty_four_hundred_ends_the_day() {
    let hours = compile(json!({"time_zone": "UTC", "weekly": {
        "monday": [{"start": "20:00", "end": "24:00"}],
        "tuesday": [{"start": "00:00", "end": "08:00"}]}}));
    // 2026-06-08 is a Monday.
    assert!(hours.is_open(at("2026-06-08T23:59:59Z[UTC]")));
    let status = hours.status(at("2026-06-09T00:00Z[UTC]"));
    assert!(status.open);
    assert_eq!(
        status.reason,
        Reason::Weekly {
            day: Weekday::Tuesday,
            range: 0,
            date: date(2026, 6, 9)
        }
    );
    // Touching ranges are one open block: the next change is Tuesday 08:00, not midnight.
    let status = hours.status(at("2026-06-08T21:00Z[UTC]"));
    assert_eq!(status.next_change, Some(at("2026-06-09T08:00Z[UTC]")));
}

const THANKSGIVINGS: [(i16, i8, i8); 10] = [
    (2025, 11, 27),
    (2026, 11, 26),
    (2027, 11, 25),
    (2028, 11, 23),
    (2029, 11, 22),
    (2030, 11, 28),
    (2031, 11, 27),
    (2032, 11, 25),
    (2033, 11, 24),
    (2034, 11, 23),
];

fn noon_in_new_york(day: Date) -> Timestamp {
    day.at(12, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
        .unwrap()
        .timestamp()
}

#[test]
fn fourth_thursday_of_november_closes_ten_years_running() {
    let nine_to_five = json!([{"start": "09:00", "end": "17:00"}]);
    let hours = compile(json!({
        "time_zone": "America/New_York",
        "weekly": {"thursday": nine_to_five, "friday": nine_to_five},
        "holidays": [{"name": "Thanksgiving", "month": 11, "nth": "fourth", "weekday": "thursday"}]
    }));
    for (y, m, d) in THANKSGIVINGS {
        let day = date(y, m, d);
        assert_eq!(day.weekday(), jiff::civil::Weekday::Thursday, "{day}");
        let status = hours.status(noon_in_new_york(day));
        assert!(!status.open, "{day} is Thanksgiving");
        assert_eq!(
            status.reason,
            Reason::Holiday {
                index: 0,
                name: "Thanksgiving".into(),
                date: day
            },
            "{day}"
        );
        // The Friday after is an ordinary day: the holiday ends when Friday opens.
        let friday = day.tomorrow().unwrap();
        assert_eq!(
            status.next_change,
            Some(
                friday
                    .at(9, 0, 0, 0)
                    .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
                    .unwrap()
                    .timestamp()
            ),
            "{day}"
        );
        assert!(
            hours.status(noon_in_new_york(friday)).open,
            "{friday} after Thanksgiving"
        );
        let week_before = day.checked_sub(jiff::Span::new().days(7)).unwrap();
        assert!(
            hours.status(noon_in_new_york(week_before)).open,
            "{week_before} before Thanksgiving"
        );
    }
}

#[test]
fn holiday_rules_pick_their_dates() {
    let every_day: serde_json::Value = Weekday::ALL
        .iter()
        .map(|d| {
            (
                d.name().to_string(),
                json!([{"start": "00:00", "end": "24:00"}]),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    // (what, holiday, date, closed)
    let cases = [
        (
            "last monday of may 2026",
            json!({"name": "Memorial Day", "month": 5, "nth": "last", "weekday": "monday"}),
            date(2026, 5, 25),
            true,
        ),
        (
            "last monday of may 2027",
            json!({"name": "Memorial Day", "month": 5, "nth": "last", "weekday": "monday"}),
            date(2027, 5, 31),
            true,
        ),
        (
            "not the monday before",
            json!({"name": "Memorial Day", "month": 5, "nth": "last", "weekday": "monday"}),
            date(2027, 5, 24),
            false,
        ),
        (
            "fixed date",
            json!({"name": "Christmas", "month": 12, "day": 25}),
            date(2027, 12, 25),
            true,
        ),
        (
            "observed saturday -> friday",
            json!({"name": "Christmas", "month": 12, "day": 25, "observed": true}),
            date(2027, 12, 24),
            true,
        ),
        (
            "observed saturday itself is open",
            json!({"name": "Christmas", "month": 12, "day": 25, "observed": true}),
            date(2027, 12, 25),
            false,
        ),
        (
            "observed across the year's end",
            json!({"name": "New Year", "month": 1, "day": 1, "observed": true}),
            date(2027, 12, 31),
            true,
        ),
        (
            "observed sunday -> monday",
            json!({"name": "New Year", "month": 1, "day": 1, "observed": true}),
            date(2023, 1, 2),
            true,
        ),
        (
            "observed weekday stays",
            json!({"name": "Christmas", "month": 12, "day": 25, "observed": true}),
            date(2026, 12, 25),
            true,
        ),
        (
            "29 february in a leap year",
            json!({"name": "Leap", "month": 2, "day": 29}),
            date(2028, 2, 29),
            true,
        ),
        (
            "29 february skips common years",
            json!({"name": "Leap", "month": 2, "day": 29}),
            date(2027, 3, 1),
            false,
        ),
        (
            "fifth monday exists",
            json!({"name": "Fifth", "month": 3, "nth": "fifth", "weekday": "monday"}),
            date(2026, 3, 30),
            true,
        ),
        (
            "before first_year",
            json!({"name": "New", "month": 7, "day": 1, "first_year": 2027}),
            date(2026, 7, 1),
            false,
        ),
        (
            "from first_year",
            json!({"name": "New", "month": 7, "day": 1, "first_year": 2027}),
            date(2027, 7, 1),
            true,
        ),
        (
            "after last_year",
            json!({"name": "Old", "month": 7, "day": 1, "last_year": 2026}),
            date(2027, 7, 1),
            false,
        ),
    ];
    for (what, holiday, day, closed) in cases {
        let hours = compile(
            json!({"time_zone": "America/New_York", "weekly": every_day, "holidays": [holiday]}),
        );
        assert_eq!(
            !hours.is_open(noon_in_new_york(day)),
            closed,
            "{what}: {day}"
        );
    }
}

#[test]
fn override_beats_holiday_and_weekly() {
    let hours = compile(json!({
        "time_zone": "America/New_York",
        "weekly": {"friday": [{"start": "09:00", "end": "17:00"}], "thursday": [{"start": "09:00", "end": "17:00"}]},
        "overrides": [
            {"name": "Christmas short day", "date": "2026-12-25", "hours": {"open": [{"start": "10:00", "end": "14:00"}]}},
            {"name": "Inventory", "date": "2026-12-30", "through": "2027-01-01", "hours": "closed"}
        ],
        "holidays": [{"name": "Christmas", "month": 12, "day": 25}]
    }));
    let ny = |text: &str| at(&format!("{text}-05:00[America/New_York]"));
    let status = hours.status(ny("2026-12-25T12:00"));
    assert!(status.open, "special hours on a holiday are open");
    assert_eq!(
        status.reason,
        Reason::Override {
            index: 0,
            name: Some("Christmas short day".into()),
            date: date(2026, 12, 25),
            range: Some(0)
        }
    );
    assert_eq!(status.next_change, Some(ny("2026-12-25T14:00")));
    let status = hours.status(ny("2026-12-25T15:00"));
    assert!(
        !status.open,
        "outside the override's hours, even though Friday's weekly says open"
    );
    assert_eq!(
        status.reason,
        Reason::Override {
            index: 0,
            name: Some("Christmas short day".into()),
            date: date(2026, 12, 25),
            range: None
        }
    );
    let status = hours.status(ny("2027-12-25T12:00"));
    assert_eq!(
        status.reason,
        Reason::Holiday {
            index: 0,
            name: "Christmas".into(),
            date: date(2027, 12, 25)
        }
    );
    for day in ["2026-12-30T12:00", "2026-12-31T12:00", "2027-01-01T12:00"] {
        let status = hours.status(ny(day));
        assert!(!status.open, "{day} inside the closed run");
        assert!(
            matches!(status.reason, Reason::Override { index: 1, .. }),
            "{day}"
        );
    }
    // Thursday 2026-12-24 is an ordinary Thursday.
    assert!(hours.is_open(ny("2026-12-24T12:00")));
}

#[test]
fn force_beats_everything() {
    let base = json!({
        "time_zone": "Europe/Berlin",
        "weekly": {"monday": [{"start": "00:00", "end": "24:00"}]},
        "overrides": [{"date": "2026-06-09", "hours": {"open": [{"start": "00:00", "end": "24:00"}]}}],
        "holidays": [{"name": "Shut", "month": 6, "day": 10}]
    });
    let instants = [
        (
            "weekly open monday",
            "2026-06-08T12:00+02:00[Europe/Berlin]",
        ),
        (
            "override open tuesday",
            "2026-06-09T12:00+02:00[Europe/Berlin]",
        ),
        ("holiday wednesday", "2026-06-10T12:00+02:00[Europe/Berlin]"),
        ("no hours thursday", "2026-06-11T12:00+02:00[Europe/Berlin]"),
    ];
    for (force, open) in [("closed", false), ("open", true)] {
        let mut doc = base.clone();
        doc["force"] = json!(force);
        let hours = compile(doc);
        for (what, instant) in instants {
            let status = hours.status(at(instant));
            assert_eq!(
                (status.open, &status.reason, status.next_change),
                (open, &Reason::Forced, None),
                "force {force}: {what}"
            );
            assert_eq!(hours.is_open(at(instant)), open, "force {force}: {what}");
        }
    }
}

#[test]
fn next_change_finds_the_next_flip() {
    let nine_to_five = json!([{"start": "09:00", "end": "17:00"}]);
    let weekdays = json!({"time_zone": "America/Chicago", "weekly": {
        "monday": nine_to_five, "tuesday": nine_to_five, "wednesday": nine_to_five,
        "thursday": nine_to_five, "friday": nine_to_five}});
    let all_day = json!([{"start": "00:00", "end": "24:00"}]);
    let always: serde_json::Value = Weekday::ALL
        .iter()
        .map(|d| (d.name().to_string(), all_day.clone()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let chi = |text: &str| at(&format!("{text}-05:00[America/Chicago]"));
    // (what, schedule, instant, next change)
    let cases = [
        (
            "friday afternoon closes at five",
            compile(weekdays.clone()),
            chi("2026-06-05T16:00"),
            Some(chi("2026-06-05T17:00")),
        ),
        (
            "friday evening opens monday",
            compile(weekdays.clone()),
            chi("2026-06-05T18:00"),
            Some(chi("2026-06-08T09:00")),
        ),
        (
            "exactly at closing it is closed until monday",
            compile(weekdays.clone()),
            chi("2026-06-05T17:00"),
            Some(chi("2026-06-08T09:00")),
        ),
        (
            "always open never changes",
            compile(json!({"time_zone": "America/Chicago", "weekly": always})),
            chi("2026-06-05T16:00"),
            None,
        ),
        (
            "never open never changes",
            compile(json!({"time_zone": "America/Chicago"})),
            chi("2026-06-05T16:00"),
            None,
        ),
        (
            "a yearly holiday in an always-open week is found months ahead",
            compile(json!({"time_zone": "America/Chicago", "weekly": always,
            "holidays": [{"name": "Christmas", "month": 12, "day": 25}]})),
            chi("2026-06-05T16:00"),
            Some(at("2026-12-25T00:00-06:00[America/Chicago]")),
        ),
    ];
    for (what, hours, instant, expected) in cases {
        assert_eq!(hours.status(instant).next_change, expected, "{what}");
    }
}

/// The JSON example in the module doc, cut out of the source so the doc cannot drift.
fn documented_example() -> String {
    let source = include_str!("../src/schedule/mod.rs");
    let start = source
        .find("//! ```json\n")
        .expect("module doc has a json example")
        + "//! ```json\n".len();
    let end = start
        + source[start..]
            .find("//! ```\n")
            .expect("json example ends");
    source[start..end]
        .lines()
        .map(|l| l.strip_prefix("//!").unwrap_or(l).trim_start_matches(' '))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn documented_example_parses_validates_and_round_trips() {
    let text = documented_example();
    let doc: Schedule = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let hours = doc.compile().expect("the documented example is valid");
    let again: Schedule = serde_json::from_str(&serde_json::to_string(&doc).unwrap()).unwrap();
    assert_eq!(again, doc);
    let reparsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        serde_json::to_value(&doc).unwrap(),
        reparsed,
        "serializes back to the same JSON"
    );
    // Christmas Eve 2026 is a Thursday with special hours 09:00-13:00.
    let ny = |text: &str| at(&format!("{text}-05:00[America/New_York]"));
    assert!(hours.is_open(ny("2026-12-24T12:00")));
    assert!(!hours.is_open(ny("2026-12-24T13:00")));
    assert_eq!(hours.schedule(), &doc);
}

#[test]
fn unknown_fields_and_wrong_shapes_are_refused_by_serde() {
    for bad in [
        json!({"time_zone": "UTC", "timezone": "UTC"}),
        json!({"time_zone": "UTC", "weekly": {"mon": []}}),
        json!({"time_zone": "UTC", "weekly": {"monday": [{"start": "09:00", "end": "17:00", "x": 1}]}}),
        json!({"time_zone": "UTC", "force": "maybe"}),
        json!({"time_zone": "UTC", "overrides": [{"date": "2026-01-01", "hours": "open"}]}),
        json!({"time_zone": "UTC", "holidays": [{"name": "X", "month": 1, "day": 1, "nth": "sixth"}]}),
        json!({"weekly": {}}),
    ] {
        assert!(
            serde_json::from_value::<Schedule>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn status_serializes_with_snake_case_tags() {
    let hours = compile(json!({"time_zone": "America/New_York",
        "weekly": {"thursday": [{"start": "09:00", "end": "17:00"}]},
        "holidays": [{"name": "Thanksgiving", "month": 11, "nth": "fourth", "weekday": "thursday"}]}));
    let status: Status = hours.status(noon_in_new_york(date(2026, 11, 26)));
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        json!({
            "open": false,
            "reason": {"kind": "holiday", "index": 0, "name": "Thanksgiving", "date": "2026-11-26"},
            "local": "2026-11-26T12:00:00",
            "next_change": "2026-12-03T14:00:00Z"
        })
    );
    let status = hours.status(noon_in_new_york(date(2026, 12, 3)));
    assert_eq!(
        serde_json::to_value(&status.reason).unwrap(),
        json!({"kind": "weekly", "day": "thursday", "range": 0, "date": "2026-12-03"})
    );
    let forced = compile(json!({"time_zone": "UTC", "force": "closed"}));
    assert_eq!(
        serde_json::to_value(forced.status(Timestamp::UNIX_EPOCH)).unwrap(),
        json!({"open": false, "reason": {"kind": "forced"}, "local": "1970-01-01T00:00:00", "next_change": null})
    );
}

#[test]
fn extreme_instants_do_not_panic() {
    let hours = compile(json!({"time_zone": "Pacific/Kiritimati",
        "weekly": {"monday": [{"start": "22:00", "end": "02:00"}]},
        "holidays": [{"name": "New Year", "month": 1, "day": 1, "observed": true}]}));
    for instant in [Timestamp::MIN, Timestamp::MAX, Timestamp::UNIX_EPOCH] {
        let _ = hours.status(instant);
        let _ = hours.is_open(instant);
    }
}

#[test]
fn a_schedule_at_every_bound_answers_quickly() {
    // 16 ranges a day every day (always open, so the look-ahead runs its whole horizon), 1000
    // overrides and 200 holidays: the worst the validator lets through.
    let ranges: Vec<_> = (0..16)
        .map(|h| json!({"start": format!("{:02}:00", h), "end": if h == 15 { "24:00".to_string() } else { format!("{:02}:30", h + 1) }}))
        .collect();
    let weekly: serde_json::Value = Weekday::ALL
        .iter()
        .map(|d| (d.name().to_string(), json!(ranges)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let overrides: Vec<_> = (0..1000)
        .map(|i| {
            let day = date(2040, 1, 1)
                .checked_add(jiff::Span::new().days(i))
                .unwrap();
            json!({"date": day.to_string(), "hours": {"open": ranges}})
        })
        .collect();
    let holidays: Vec<_> = (0..200)
        .map(|i| json!({"name": format!("h{i}"), "month": 1 + i % 12, "nth": "last", "weekday": "sunday", "first_year": 2050}))
        .collect();
    let hours = compile(
        json!({"time_zone": "Europe/Berlin", "weekly": weekly, "overrides": overrides, "holidays": holidays}),
    );
    let started = std::time::Instant::now();
    let status = hours.status(at("2026-06-01T12:00+02:00[Europe/Berlin]"));
    let took = started.elapsed();
    assert!(status.open);
    assert_eq!(status.next_change, None);
    // Generous for an unoptimised build on a shared machine; the point is no blow-up.
    assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
    eprintln!("worst-case status took {took:?}");
}
