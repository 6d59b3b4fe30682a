//! Event timestamps: FreeSWITCH's `Event-Date-*` spellings from microseconds since the epoch.

/// `(Event-Date-Local, Event-Date-GMT)`, with local time = UTC.
pub(crate) fn date_strings(us: u64) -> (String, String) {
    let secs = us / 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let (y, mo, d) = civil_from_days(days);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let wd = WD[days.rem_euclid(7) as usize];
    let local = format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}");
    let gmt = format!(
        "{wd}, {d:02} {} {y:04} {h:02}:{m:02}:{s:02} GMT",
        MON[(mo - 1) as usize]
    );
    (local, gmt)
}

/// Howard Hinnant's days -> (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_like_the_capture() {
        let (l, g) = super::date_strings(1_795_275_756_939_977);
        assert_eq!(l, "2026-11-21 15:42:36");
        assert_eq!(g, "Sat, 21 Nov 2026 15:42:36 GMT");
    }
}
