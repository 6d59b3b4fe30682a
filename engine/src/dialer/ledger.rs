//! The legal abandon ledger: per campaign, per day (midnight to midnight in the ledger zone),
//! persons who answered and how many of them were abandoned, kept for 30 days. The rates the
//! rule speaks of are read from here, not from a moving average.
//!
//! What one attempt puts in the ledger is decided by one rule, [`LedgerEntry::of`], used both
//! by the running engine (as each outcome becomes final) and by the store's reload after a
//! restart ([`days_from`] over the stored attempts), so the two cannot count differently:
//! - a person is a dial that became a queue call (answered, and not dropped as a machine
//!   before reaching the queue) whose answerer was not detected as a machine; a machine sent
//!   to an agent is not a person, even when it is connected;
//! - of those, `Connected` and `HungUp` (left before the deadline) are persons, `Abandoned`
//!   is a person abandoned; no other outcome is in the ledger;
//! - the day is the day of the answer in the ledger zone, not of the dial (which can be the
//!   day before) nor of the connection or the abandon (which can be the day after).

use std::collections::VecDeque;

use jiff::tz::TimeZone;

use super::window;
use super::{AttemptOutcome, AttemptRecord, LedgerDay};

/// One attempt's mark in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// When the person answered: the ledger day it counts on.
    pub answered_unix_ms: u64,
    pub abandoned: bool,
}

impl LedgerEntry {
    /// The rule (see the module doc): `queued` is whether the dial became a queue call (the
    /// attempt names a call), `machine` whether detection said machine.
    pub fn of(
        outcome: AttemptOutcome,
        machine: bool,
        queued: bool,
        answered_unix_ms: Option<u64>,
    ) -> Option<LedgerEntry> {
        if machine || !queued {
            return None;
        }
        let abandoned = match outcome {
            AttemptOutcome::Connected | AttemptOutcome::HungUp => false,
            AttemptOutcome::Abandoned => true,
            AttemptOutcome::NoAnswer
            | AttemptOutcome::Busy
            | AttemptOutcome::Failed
            | AttemptOutcome::Machine
            | AttemptOutcome::Cancelled
            | AttemptOutcome::Lost => return None,
        };
        Some(LedgerEntry {
            answered_unix_ms: answered_unix_ms?,
            abandoned,
        })
    }

    /// [`LedgerEntry::of`] an attempt record.
    pub fn of_attempt(a: &AttemptRecord) -> Option<LedgerEntry> {
        LedgerEntry::of(a.outcome, a.machine, a.call.is_some(), a.answered_unix_ms)
    }
}

/// The ledger days a set of entries makes in `zone` (the reload after a restart): exactly
/// the days a live ledger holds after recording the same entries, oldest first.
pub fn days_from(
    zone: &TimeZone,
    entries: impl IntoIterator<Item = LedgerEntry>,
) -> Vec<LedgerDay> {
    let mut l = Ledger::new(zone.clone());
    for e in entries {
        l.record(e);
    }
    l.days.into_iter().collect()
}

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

    /// The day `at_ms` falls on, made if missing; None for a day already out of the window
    /// (older than the 30 days ending on the newest day held).
    fn day_at(&mut self, at_ms: u64) -> Option<&mut LedgerDay> {
        let day = self.day_of(at_ms);
        let newest = self.days.back().map_or(day, |d| d.day.max(day));
        self.trim(newest);
        if day <= newest - ROLLING_DAYS {
            return None;
        }
        let i = match self.days.binary_search_by_key(&day, |d| d.day) {
            Ok(i) => i,
            Err(i) => {
                self.days.insert(
                    i,
                    LedgerDay {
                        day,
                        humans: 0,
                        abandoned: 0,
                    },
                );
                i
            }
        };
        self.days.get_mut(i)
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

    /// A person answered (on the entry's day, which may be before the newest day held: a
    /// person answered before midnight and connected after it counts on the day before).
    pub fn record(&mut self, e: LedgerEntry) {
        if let Some(d) = self.day_at(e.answered_unix_ms) {
            d.humans += 1;
            if e.abandoned {
                d.abandoned += 1;
            }
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

    fn person(at: u64, abandoned: bool) -> LedgerEntry {
        LedgerEntry {
            answered_unix_ms: at,
            abandoned,
        }
    }

    #[test]
    fn rates_are_abandoned_over_persons_per_day_and_over_thirty_days() {
        let mut l = utc();
        for i in 0..100 {
            l.record(person(DAY + i, i < 5));
        }
        for i in 0..100 {
            l.record(person(2 * DAY + i, i < 1));
        }
        assert!((l.rate_day(2 * DAY) - 0.01).abs() < 1e-12);
        assert!((l.rate_30d(2 * DAY) - 0.03).abs() < 1e-12);
        assert_eq!(l.worst_day(), Some((1, 0.05)));
    }

    #[test]
    fn days_older_than_thirty_leave_the_rolling_rate() {
        let mut l = utc();
        l.record(person(0, true));
        l.record(person(29 * DAY, false));
        assert_eq!(l.rolling_counts(29 * DAY), (2, 1));
        assert_eq!(l.rolling_counts(30 * DAY), (1, 0));
        l.record(person(31 * DAY, false));
        assert_eq!(l.days().count(), 2, "day 0 trimmed");
    }

    #[test]
    fn a_day_turns_at_midnight_in_the_ledger_zone() {
        let mut l = Ledger::new(window::zone("America/Chicago").unwrap());
        // 2026-01-02T05:59Z is 23:59 on Jan 1 in Chicago; 06:00Z is midnight.
        let before = 1_767_333_540_000;
        l.record(person(before, true));
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
        l.record(person(11 * DAY + 5, true));
        assert_eq!(l.rolling_counts(11 * DAY + 5), (301, 10));
    }

    #[test]
    fn a_late_entry_counts_on_its_own_day() {
        let mut l = utc();
        l.record(person(2 * DAY + 5, false));
        // Answered before midnight, recorded after it.
        l.record(person(2 * DAY - 5, true));
        assert_eq!(l.day_counts(2 * DAY - 1), (1, 1));
        assert_eq!(l.day_counts(2 * DAY), (1, 0));
        // Out of the window of the newest day: not counted.
        l.record(person(40 * DAY, false));
        l.record(person(DAY, true));
        assert_eq!(l.days().count(), 1);
    }

    #[test]
    fn only_persons_who_reached_the_queue_count() {
        use AttemptOutcome as O;
        let at = Some(DAY);
        assert_eq!(
            LedgerEntry::of(O::Connected, false, true, at),
            Some(person(DAY, false))
        );
        assert_eq!(
            LedgerEntry::of(O::HungUp, false, true, at),
            Some(person(DAY, false))
        );
        assert_eq!(
            LedgerEntry::of(O::Abandoned, false, true, at),
            Some(person(DAY, true))
        );
        assert_eq!(
            LedgerEntry::of(O::Connected, true, true, at),
            None,
            "a machine sent to an agent"
        );
        assert_eq!(LedgerEntry::of(O::Abandoned, true, true, at), None);
        assert_eq!(
            LedgerEntry::of(O::HungUp, false, false, at),
            None,
            "hung up in detection"
        );
        for o in [O::NoAnswer, O::Busy, O::Failed, O::Machine, O::Cancelled] {
            assert_eq!(LedgerEntry::of(o, false, true, at), None, "{o:?}");
        }
    }
}
