//! The legal abandon ledger: per campaign, per day (midnight to midnight in the ledger zone),
//! persons who answered and how many of them were abandoned, kept for 30 days. The rates the
//! rule speaks of are read from here, not from a moving average.

use std::collections::VecDeque;

use jiff::tz::TimeZone;

use super::LedgerDay;
use super::window;

/// Days the rolling rate covers (the FCC's 30-day campaign period).
pub const ROLLING_DAYS: i32 = 30;

#[derive(Debug)]
pub struct Ledger {
    zone: TimeZone,
    /// Oldest first, at most `ROLLING_DAYS` entries, days strictly increasing.
    days: VecDeque<LedgerDay>,
}

impl Ledger {
    pub fn new(zone: TimeZone) -> Ledger {
        Ledger {
            zone,
            days: VecDeque::new(),
        }
    }

    pub fn set_zone(&mut self, zone: TimeZone) {
        self.zone = zone;
    }

    pub fn day_of(&self, now_ms: u64) -> i32 {
        window::day_number(&self.zone, now_ms)
    }

    fn today(&mut self, now_ms: u64) -> &mut LedgerDay {
        let day = self.day_of(now_ms);
        if self.days.back().is_none_or(|d| d.day < day) {
            self.days.push_back(LedgerDay {
                day,
                humans: 0,
                abandoned: 0,
            });
        }
        self.trim(day);
        // Non-empty: pushed above when the last day was older. A clock that went back a
        // day (never from the engine) lands on the last day.
        let last = self.days.len() - 1;
        &mut self.days[last]
    }

    fn trim(&mut self, today: i32) {
        while self
            .days
            .front()
            .is_some_and(|d| d.day <= today - ROLLING_DAYS)
        {
            self.days.pop_front();
        }
    }

    /// A person answered; `abandoned` when no agent was connected in time.
    pub fn record(&mut self, now_ms: u64, abandoned: bool) {
        let d = self.today(now_ms);
        d.humans += 1;
        if abandoned {
            d.abandoned += 1;
        }
    }

    /// Days remembered elsewhere (the store, after a restart), merged by day.
    pub fn seed(&mut self, days: &[LedgerDay]) {
        let mut all: Vec<LedgerDay> = self.days.drain(..).collect();
        for d in days {
            match all.iter_mut().find(|x| x.day == d.day) {
                Some(x) => {
                    x.humans = x.humans.max(d.humans);
                    x.abandoned = x.abandoned.max(d.abandoned);
                }
                None => all.push(*d),
            }
        }
        all.sort_by_key(|d| d.day);
        if let Some(last) = all.last().map(|d| d.day) {
            all.retain(|d| d.day > last - ROLLING_DAYS);
        }
        self.days = all.into();
    }

    /// (persons, abandoned) today.
    pub fn day_counts(&self, now_ms: u64) -> (u64, u64) {
        let day = self.day_of(now_ms);
        self.days
            .iter()
            .rev()
            .find(|d| d.day == day)
            .map_or((0, 0), |d| (d.humans, d.abandoned))
    }

    /// (persons, abandoned) over the 30 days ending today.
    pub fn rolling_counts(&self, now_ms: u64) -> (u64, u64) {
        let day = self.day_of(now_ms);
        self.days
            .iter()
            .filter(|d| d.day > day - ROLLING_DAYS && d.day <= day)
            .fold((0, 0), |(h, a), d| (h + d.humans, a + d.abandoned))
    }

    pub fn rate_day(&self, now_ms: u64) -> f64 {
        rate(self.day_counts(now_ms))
    }

    pub fn rate_30d(&self, now_ms: u64) -> f64 {
        rate(self.rolling_counts(now_ms))
    }

    /// The worst day in the window (rate, with its persons), for reports.
    pub fn worst_day(&self) -> Option<(i32, f64)> {
        self.days
            .iter()
            .filter(|d| d.humans > 0)
            .map(|d| (d.day, rate((d.humans, d.abandoned))))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    pub fn days(&self) -> impl Iterator<Item = &LedgerDay> {
        self.days.iter()
    }
}

fn rate((humans, abandoned): (u64, u64)) -> f64 {
    if humans == 0 {
        0.0
    } else {
        abandoned as f64 / humans as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400_000;

    fn utc() -> Ledger {
        Ledger::new(window::zone("UTC").unwrap())
    }

    #[test]
    fn rates_are_abandoned_over_persons_per_day_and_over_thirty_days() {
        let mut l = utc();
        for i in 0..100 {
            l.record(DAY + i, i < 5);
        }
        for i in 0..100 {
            l.record(2 * DAY + i, i < 1);
        }
        assert!((l.rate_day(2 * DAY) - 0.01).abs() < 1e-12);
        assert!((l.rate_30d(2 * DAY) - 0.03).abs() < 1e-12);
        assert_eq!(l.worst_day(), Some((1, 0.05)));
    }

    #[test]
    fn days_older_than_thirty_leave_the_rolling_rate() {
        let mut l = utc();
        l.record(0, true);
        l.record(29 * DAY, false);
        assert_eq!(l.rolling_counts(29 * DAY), (2, 1));
        assert_eq!(l.rolling_counts(30 * DAY), (1, 0));
        l.record(31 * DAY, false);
        assert_eq!(l.days().count(), 2, "day 0 trimmed");
    }

    #[test]
    fn a_day_turns_at_midnight_in_the_ledger_zone() {
        let mut l = Ledger::new(window::zone("America/Chicago").unwrap());
        // 2026-01-02T05:59Z is 23:59 on Jan 1 in Chicago; 06:00Z is midnight.
        let before = 1_767_333_540_000;
        l.record(before, true);
        assert_eq!(l.day_counts(before + 60_000), (0, 0));
        assert_eq!(l.rolling_counts(before + 60_000), (1, 1));
    }

    #[test]
    fn seeded_days_count_after_a_restart() {
        let mut l = utc();
        l.seed(&[
            LedgerDay {
                day: 10,
                humans: 200,
                abandoned: 8,
            },
            LedgerDay {
                day: 11,
                humans: 100,
                abandoned: 1,
            },
        ]);
        l.record(11 * DAY + 5, true);
        assert_eq!(l.rolling_counts(11 * DAY + 5), (301, 10));
    }
}
