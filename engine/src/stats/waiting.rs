//! Waiting calls in entry order, for "longest wait" in O(1).
//!
//! Stats time never runs backwards (see `Stats::tick`), so entries are pushed in time order and
//! a deque is already sorted: the oldest caller is at the front. Calls leave from anywhere
//! (priority callers are answered first), so removal is lazy: the caller's map entry is removed,
//! and the line drops entries whose map entry is gone (or belongs to a later visit, told apart by
//! a sequence number). The front is always kept live, so reading needs no mutation.
//!
//! Bound: stale entries behind a long waiter are compacted away once they outnumber live ones
//! two to one (plus a small slack), so the deque holds at most `2 × live + COMPACT_SLACK`
//! entries and each removal costs O(1) amortised.

use std::collections::VecDeque;
use std::time::Instant;

/// Stale entries tolerated before compacting, so that small lines do not compact on every leave.
const COMPACT_SLACK: usize = 64;

#[derive(Clone, Copy, Debug)]
struct Entry<K> {
    since: Instant,
    seq: u64,
    key: K,
}

#[derive(Debug)]
pub(crate) struct WaitLine<K> {
    entries: VecDeque<Entry<K>>,
    live: usize,
}

impl<K: Copy> WaitLine<K> {
    pub fn new() -> Self {
        WaitLine {
            entries: VecDeque::new(),
            live: 0,
        }
    }

    /// `since` must not be earlier than any entry already pushed (the caller clamps time).
    pub fn push(&mut self, since: Instant, seq: u64, key: K) {
        self.entries.push_back(Entry { since, seq, key });
        self.live += 1;
    }

    /// Called after one of this line's callers was removed from the owner's map. `is_live`
    /// answers whether `(key, seq)` is still waiting.
    pub fn removed(&mut self, is_live: impl Fn(K, u64) -> bool) {
        self.live = self.live.saturating_sub(1);
        while let Some(front) = self.entries.front() {
            if is_live(front.key, front.seq) {
                break;
            }
            self.entries.pop_front();
        }
        if self.entries.len() > 2 * self.live + COMPACT_SLACK {
            self.entries.retain(|e| is_live(e.key, e.seq));
        }
    }

    /// Entry time of the longest-waiting caller.
    pub fn oldest(&self) -> Option<Instant> {
        self.entries.front().map(|e| e.since)
    }

    /// Callers waiting.
    pub fn len(&self) -> usize {
        self.live
    }

    #[cfg(test)]
    fn stored(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    /// A line plus the map it consults, as `Stats` keeps them.
    struct Fixture {
        line: WaitLine<u32>,
        map: HashMap<u32, u64>,
        seq: u64,
        t0: Instant,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                line: WaitLine::new(),
                map: HashMap::new(),
                seq: 0,
                t0: Instant::now(),
            }
        }

        fn enter(&mut self, key: u32, at_secs: u64) {
            self.seq += 1;
            self.map.insert(key, self.seq);
            self.line
                .push(self.t0 + Duration::from_secs(at_secs), self.seq, key);
        }

        fn leave(&mut self, key: u32) {
            assert!(self.map.remove(&key).is_some());
            let map = &self.map;
            self.line.removed(|k, seq| map.get(&k) == Some(&seq));
        }

        fn oldest_secs(&self) -> Option<u64> {
            self.line
                .oldest()
                .map(|t| t.duration_since(self.t0).as_secs())
        }
    }

    #[test]
    fn oldest_is_the_front_until_it_leaves() {
        let mut f = Fixture::new();
        f.enter(1, 0);
        f.enter(2, 10);
        f.enter(3, 20);
        assert_eq!(f.oldest_secs(), Some(0));
        f.leave(2);
        assert_eq!(f.oldest_secs(), Some(0));
        f.leave(1);
        // 2 already left, so the stale entry behind 1 is skipped too.
        assert_eq!(f.oldest_secs(), Some(20));
        assert_eq!(f.line.len(), 1);
        f.leave(3);
        assert_eq!(f.oldest_secs(), None);
        assert_eq!(f.line.len(), 0);
        assert_eq!(f.line.stored(), 0);
    }

    #[test]
    fn a_later_visit_of_the_same_key_is_not_mistaken_for_the_earlier_one() {
        let mut f = Fixture::new();
        f.enter(1, 0);
        f.enter(2, 5);
        f.leave(1);
        f.enter(1, 10);
        f.leave(2);
        // The entry at 0 belonged to 1's first visit; only the visit at 10 is live.
        assert_eq!(f.oldest_secs(), Some(10));
    }

    #[test]
    fn stale_entries_behind_a_long_waiter_stay_bounded() {
        let mut f = Fixture::new();
        f.enter(0, 0);
        for i in 1..10_000u32 {
            f.enter(i, u64::from(i));
            f.leave(i);
            assert!(f.line.stored() <= 2 * f.line.len() + COMPACT_SLACK);
        }
        assert_eq!(f.oldest_secs(), Some(0));
        assert_eq!(f.line.len(), 1);
    }
}
