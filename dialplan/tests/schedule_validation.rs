//! Every refusal of a schedule names the JSON path of the field at fault.

use serde_json::{Value, json};
use switchyard_dialplan::DialplanError;
use switchyard_dialplan::schedule::Schedule;

fn range(start: &str, end: &str) -> Value {
    json!({"start": start, "end": end})
}

fn refusal(doc: &Value) -> String {
    let schedule: Schedule = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{doc} has the right shape: {e}"));
    match schedule.validate() {
        Ok(()) => panic!("{doc} was accepted"),
        Err(DialplanError::Invalid { path, .. }) => path,
        Err(other) => panic!("{doc}: unexpected {other}"),
    }
}

#[test]
fn each_refusal_names_its_path() {
    let many_ranges: Vec<Value> = (0..17)
        .map(|h| range(&format!("{h:02}:00"), &format!("{h:02}:30")))
        .collect();
    let many_overrides: Vec<Value> = (0..1001)
        .map(|i| {
            let day = jiff::civil::date(2030, 1, 1)
                .checked_add(jiff::Span::new().days(i))
                .unwrap();
            json!({"date": day.to_string(), "hours": "closed"})
        })
        .collect();
    let many_holidays: Vec<Value> = (0..201)
        .map(|_| json!({"name": "H", "month": 1, "day": 1}))
        .collect();
    let long_name = "x".repeat(101);
    let holiday = |extra: Value| {
        let mut h = json!({"name": "H", "month": 1, "day": 1});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                h.as_object_mut().unwrap().remove(k);
            } else {
                h[k] = v.clone();
            }
        }
        json!({"time_zone": "UTC", "holidays": [json!({"name": "ok", "month": 2, "day": 2}), h]})
    };
    // (what, document, path)
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown zone",
            json!({"time_zone": "Mars/Olympus_Mons"}),
            "time_zone",
        ),
        ("empty zone", json!({"time_zone": ""}), "time_zone"),
        (
            "fixed offset is not a zone",
            json!({"time_zone": "+05:00"}),
            "time_zone",
        ),
        (
            "bad start",
            json!({"time_zone": "UTC", "weekly": {"monday": [range("9:00", "17:00")]}}),
            "weekly.monday[0].start",
        ),
        (
            "bad end",
            json!({"time_zone": "UTC", "weekly": {"monday": [range("09:00", "17:00"), range("18:00", "25:00")]}}),
            "weekly.monday[1].end",
        ),
        (
            "minutes past 59",
            json!({"time_zone": "UTC", "weekly": {"sunday": [range("09:60", "17:00")]}}),
            "weekly.sunday[0].start",
        ),
        (
            "24:00 is only an end",
            json!({"time_zone": "UTC", "weekly": {"tuesday": [range("24:00", "02:00")]}}),
            "weekly.tuesday[0].start",
        ),
        (
            "start equals end",
            json!({"time_zone": "UTC", "weekly": {"friday": [range("08:00", "08:00")]}}),
            "weekly.friday[0].end",
        ),
        (
            "too many ranges",
            json!({"time_zone": "UTC", "weekly": {"wednesday": many_ranges}}),
            "weekly.wednesday",
        ),
        (
            "bad override date",
            json!({"time_zone": "UTC", "overrides": [{"date": "2026-02-30", "hours": "closed"}]}),
            "overrides[0].date",
        ),
        (
            "datetime is not a date",
            json!({"time_zone": "UTC", "overrides": [{"date": "2026-02-03T00:00", "hours": "closed"}]}),
            "overrides[0].date",
        ),
        (
            "bad through",
            json!({"time_zone": "UTC", "overrides": [{"date": "2026-02-03", "through": "soon", "hours": "closed"}]}),
            "overrides[0].through",
        ),
        (
            "through before date",
            json!({"time_zone": "UTC", "overrides": [{"date": "2026-02-03", "through": "2026-02-02", "hours": "closed"}]}),
            "overrides[0].through",
        ),
        (
            "override range",
            json!({"time_zone": "UTC", "overrides": [{"date": "2026-02-03", "hours": {"open": [range("10:00", "1400")]}}]}),
            "overrides[0].hours.open[0].end",
        ),
        (
            "override open with no ranges",
            json!({"time_zone": "UTC", "overrides": [{"date": "2026-02-03", "hours": {"open": []}}]}),
            "overrides[0].hours.open",
        ),
        (
            "override name too long",
            json!({"time_zone": "UTC", "overrides": [{"name": long_name, "date": "2026-02-03", "hours": "closed"}]}),
            "overrides[0].name",
        ),
        (
            "overlapping overrides name the later",
            json!({"time_zone": "UTC", "overrides": [
            {"date": "2026-02-10", "hours": "closed"},
            {"date": "2026-01-01", "hours": "closed"},
            {"date": "2026-02-05", "through": "2026-02-10", "hours": "closed"}]}),
            "overrides[2].date",
        ),
        (
            "too many overrides",
            json!({"time_zone": "UTC", "overrides": many_overrides}),
            "overrides",
        ),
        (
            "too many holidays",
            json!({"time_zone": "UTC", "holidays": many_holidays}),
            "holidays",
        ),
        (
            "holiday month 13",
            holiday(json!({"month": 13})),
            "holidays[1].month",
        ),
        (
            "holiday month 0",
            holiday(json!({"month": 0})),
            "holidays[1].month",
        ),
        (
            "holiday day 31 in april",
            holiday(json!({"month": 4, "day": 31})),
            "holidays[1].day",
        ),
        (
            "holiday day 0",
            holiday(json!({"day": 0})),
            "holidays[1].day",
        ),
        (
            "holiday day and nth",
            holiday(json!({"nth": "first", "weekday": "monday"})),
            "holidays[1].day",
        ),
        (
            "holiday neither day nor nth",
            holiday(json!({"day": null})),
            "holidays[1].day",
        ),
        (
            "holiday nth without weekday",
            holiday(json!({"day": null, "nth": "last"})),
            "holidays[1].weekday",
        ),
        (
            "holiday weekday without nth",
            holiday(json!({"day": null, "weekday": "monday"})),
            "holidays[1].nth",
        ),
        (
            "holiday empty name",
            holiday(json!({"name": ""})),
            "holidays[1].name",
        ),
        (
            "holiday long name",
            holiday(json!({"name": "y".repeat(101)})),
            "holidays[1].name",
        ),
        (
            "holiday first year 0",
            holiday(json!({"first_year": 0})),
            "holidays[1].first_year",
        ),
        (
            "holiday last before first",
            holiday(json!({"first_year": 2030, "last_year": 2029})),
            "holidays[1].last_year",
        ),
    ];
    for (what, doc, path) in cases {
        assert_eq!(refusal(&doc), path, "{what}");
    }
}

#[test]
fn bounds_are_inclusive() {
    let sixteen: Vec<Value> = (0..16)
        .map(|h| range(&format!("{h:02}:00"), &format!("{h:02}:30")))
        .collect();
    let thousand: Vec<Value> = (0..1000)
        .map(|i| {
            let day = jiff::civil::date(2030, 1, 1)
                .checked_add(jiff::Span::new().days(i))
                .unwrap();
            json!({"date": day.to_string(), "hours": "closed"})
        })
        .collect();
    let two_hundred: Vec<Value> = (0..200)
        .map(|_| json!({"name": "n".repeat(100), "month": 2, "day": 29}))
        .collect();
    let doc = json!({"time_zone": "UTC", "weekly": {"monday": sixteen}, "overrides": thousand, "holidays": two_hundred});
    let schedule: Schedule = serde_json::from_value(doc).unwrap();
    schedule
        .validate()
        .expect("every bound reached, none passed");
}

#[test]
fn accepted_edge_values() {
    for doc in [
        json!({"time_zone": "UTC"}),
        json!({"time_zone": "UTC", "weekly": {"monday": [range("00:00", "24:00"), range("09:00", "12:00")]}}),
        json!({"time_zone": "UTC", "weekly": {"monday": [range("22:00", "00:00"), range("23:00", "06:00")]}}),
        json!({"time_zone": "Asia/Kathmandu", "overrides": [
            {"date": "2026-02-01", "through": "2026-02-03", "hours": "closed"},
            {"date": "2026-02-04", "hours": {"open": [range("23:00", "01:00")]}}]}),
        json!({"time_zone": "UTC", "holidays": [{"name": "Leap", "month": 2, "day": 29, "first_year": 1, "last_year": 9999}]}),
    ] {
        let schedule: Schedule = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(schedule.validate(), Ok(()), "{doc}");
    }
}
