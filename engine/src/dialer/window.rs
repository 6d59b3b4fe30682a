//! Calling windows: may this number be dialled now, in the callee's own local time, and if
//! not, from when? DST is the time zone database's business (jiff): a window of 08:00-21:00
//! means local wall-clock hours on every day, including the days clocks change.

use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;

use super::config::CallingWindow;

/// Resolves an IANA zone name from the compiled-in database.
pub fn zone(name: &str) -> Option<TimeZone> {
    jiff::tz::db().get(name).ok()
}

fn ts(unix_ms: u64) -> Option<Timestamp> {
    Timestamp::from_millisecond(i64::try_from(unix_ms).ok()?).ok()
}

fn ms(t: Timestamp) -> u64 {
    u64::try_from(t.as_millisecond()).unwrap_or(0)
}

fn civil(minute: u16) -> Time {
    let m = minute.min(24 * 60 - 1);
    // In range by construction (hour < 24, minute < 60).
    Time::constant(i8::try_from(m / 60).unwrap_or(0), i8::try_from(m % 60).unwrap_or(0), 0, 0)
}

/// The first instant at or after `now` when a callee in `tz` is inside `window` (Unix ms).
/// `now` itself when already inside. `None` only for instants jiff cannot represent.
pub fn next_open(window: CallingWindow, tz: &TimeZone, now_unix_ms: u64) -> Option<u64> {
    let now = ts(now_unix_ms)?;
    let local = now.to_zoned(tz.clone());
    let start = civil(window.start_minute);
    let t = local.time();
    let in_window = if window.end_minute >= 24 * 60 {
        t >= start
    } else {
        t >= start && t < civil(window.end_minute)
    };
    if in_window {
        return Some(now_unix_ms);
    }
    let mut date = local.date();
    if t >= start {
        // Past today's window: tomorrow's.
        date = date.tomorrow().ok()?;
    }
    // A start inside a DST gap (02:30 on a spring-forward day) resolves to the instant after
    // the gap (jiff's "compatible" rule), which is inside the window.
    let open = date.to_datetime(start).to_zoned(tz.clone()).ok()?;
    Some(ms(open.timestamp()).max(now_unix_ms))
}

/// Whether `now` is inside the window in `tz`.
pub fn is_open(window: CallingWindow, tz: &TimeZone, now_unix_ms: u64) -> bool {
    next_open(window, tz, now_unix_ms) == Some(now_unix_ms)
}

/// Days since 1970-01-01 in `tz` at `now` (the ledger's day number).
pub fn day_number(tz: &TimeZone, now_unix_ms: u64) -> i32 {
    let Some(now) = ts(now_unix_ms) else {
        return 0;
    };
    let date = now.to_zoned(tz.clone()).date();
    let epoch = jiff::civil::date(1970, 1, 1);
    epoch
        .until(date)
        .map(|span| span.get_days())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(zone_name: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> u64 {
        let tz = zone(zone_name).unwrap();
        let z = jiff::civil::date(y, mo, d)
            .at(h, mi, 0, 0)
            .to_zoned(tz)
            .unwrap();
        ms(z.timestamp())
    }

    fn local_hm(zone_name: &str, unix_ms: u64) -> (i8, i8) {
        let z = ts(unix_ms).unwrap().to_zoned(zone(zone_name).unwrap());
        (z.hour(), z.minute())
    }

    const TCPA: CallingWindow = CallingWindow {
        start_minute: 8 * 60,
        end_minute: 21 * 60,
    };

    #[test]
    fn inside_the_window_dials_now() {
        let now = at("America/Chicago", 2026, 3, 2, 12, 0);
        assert_eq!(next_open(TCPA, &zone("America/Chicago").unwrap(), now), Some(now));
    }

    #[test]
    fn before_eight_waits_for_eight_local_and_after_nine_for_tomorrow() {
        let tz = zone("America/New_York").unwrap();
        let early = at("America/New_York", 2026, 6, 10, 7, 59);
        let open = next_open(TCPA, &tz, early).unwrap();
        assert_eq!(open, at("America/New_York", 2026, 6, 10, 8, 0));
        let late = at("America/New_York", 2026, 6, 10, 21, 0);
        let open = next_open(TCPA, &tz, late).unwrap();
        assert_eq!(open, at("America/New_York", 2026, 6, 11, 8, 0));
    }

    #[test]
    fn the_same_instant_is_open_in_one_zone_and_closed_in_another() {
        // 13:30 UTC: 09:30 in New York (summer), 06:30 in Los Angeles.
        let now = at("UTC", 2026, 7, 1, 13, 30);
        assert!(is_open(TCPA, &zone("America/New_York").unwrap(), now));
        assert!(!is_open(TCPA, &zone("America/Los_Angeles").unwrap(), now));
        let la = next_open(TCPA, &zone("America/Los_Angeles").unwrap(), now).unwrap();
        assert_eq!(local_hm("America/Los_Angeles", la), (8, 0));
        assert_eq!(la - now, 90 * 60 * 1000);
    }

    #[test]
    fn windows_follow_local_time_across_spring_forward() {
        // US clocks jump 02:00 -> 03:00 on 2026-03-08. 07:00 local the day before and on the
        // day itself are 23 hours apart in absolute time; 08:00 local stays 08:00 local.
        let tz = zone("America/Denver").unwrap();
        let sat = at("America/Denver", 2026, 3, 7, 22, 0);
        let sun_open = next_open(TCPA, &tz, sat).unwrap();
        assert_eq!(local_hm("America/Denver", sun_open), (8, 0));
        assert_eq!(sun_open - sat, 9 * 3600 * 1000, "one hour lost overnight");
        let sun_late = at("America/Denver", 2026, 3, 8, 20, 59);
        assert!(is_open(TCPA, &tz, sun_late));
        assert!(!is_open(TCPA, &tz, sun_late + 60_000));
    }

    #[test]
    fn windows_follow_local_time_across_fall_back() {
        // Clocks go 02:00 -> 01:00 on 2026-11-01: the night is 25 hours long.
        let tz = zone("America/New_York").unwrap();
        let sat = at("America/New_York", 2026, 10, 31, 21, 30);
        let open = next_open(TCPA, &tz, sat).unwrap();
        assert_eq!(local_hm("America/New_York", open), (8, 0));
        assert_eq!(open - sat, (10 * 3600 + 30 * 60 + 3600) * 1000);
    }

    #[test]
    fn a_window_starting_inside_a_dst_gap_opens_after_the_gap() {
        let w = CallingWindow {
            start_minute: 2 * 60 + 30,
            end_minute: 21 * 60,
        };
        let tz = zone("Europe/Berlin").unwrap();
        // Europe springs forward 02:00 -> 03:00 on 2026-03-29: 02:30 does not exist.
        let before = at("Europe/Berlin", 2026, 3, 29, 0, 30);
        let open = next_open(w, &tz, before).unwrap();
        assert_eq!(local_hm("Europe/Berlin", open), (3, 30));
    }

    #[test]
    fn southern_hemisphere_zones_change_the_other_way() {
        // Sydney leaves DST on 2026-04-05 (03:00 -> 02:00).
        let tz = zone("Australia/Sydney").unwrap();
        let sat = at("Australia/Sydney", 2026, 4, 4, 22, 0);
        let open = next_open(TCPA, &tz, sat).unwrap();
        assert_eq!(local_hm("Australia/Sydney", open), (8, 0));
        assert_eq!(open - sat, 11 * 3600 * 1000);
    }

    #[test]
    fn ledger_days_turn_at_local_midnight() {
        let tz = zone("America/Chicago").unwrap();
        let before = at("America/Chicago", 2026, 1, 1, 23, 59);
        let after = at("America/Chicago", 2026, 1, 2, 0, 0);
        assert_eq!(day_number(&tz, after), day_number(&tz, before) + 1);
        assert_eq!(day_number(&zone("UTC").unwrap(), 0), 0);
        assert_eq!(day_number(&zone("UTC").unwrap(), 86_400_000), 1);
    }

    #[test]
    fn unknown_zones_are_refused() {
        assert!(zone("Mars/Olympus_Mons").is_none());
        assert!(zone("Europe/Paris").is_some());
    }
}
