//! Reconnect delays: exponential with "equal jitter" (half fixed, half random), so that a fleet
//! of clients losing the same switch does not come back in one burst, yet none waits less than
//! half the nominal delay.

use std::time::Duration;

use super::config::BackoffConfig;

#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    rng: XorShift64,
}

impl Backoff {
    pub(crate) fn new(config: &BackoffConfig, fallback_seed: u64) -> Self {
        let initial = config.initial.max(Duration::from_millis(1));
        Backoff {
            initial,
            max: config.max.max(initial),
            next: initial,
            rng: XorShift64::new(config.seed.unwrap_or(fallback_seed)),
        }
    }

    /// The delay before the next attempt; doubles up to `max`.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let nominal = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = nominal / 2;
        let span_ns = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(self.rng.next() % span_ns.saturating_add(1));
        half + jitter
    }

    /// Called once a connection is fully up, so the next loss starts from `initial` again.
    pub(crate) fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Marsaglia's xorshift64: jitter needs spread, not cryptographic quality.
#[derive(Debug)]
struct XorShift64(u64);

impl XorShift64 {
    fn new(seed: u64) -> Self {
        // Zero is the one state xorshift never leaves.
        XorShift64(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// A seed that differs between processes and instants, for clients without a configured seed.
pub(crate) fn clock_seed(salt: &str) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // FNV-1a over the salt, so two clients started in the same nanosecond still differ.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.bytes().chain(std::process::id().to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ nanos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(initial_ms: u64, max_ms: u64) -> BackoffConfig {
        BackoffConfig {
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
            seed: Some(7),
        }
    }

    #[test]
    fn delays_double_up_to_the_cap_and_stay_within_half_to_full() {
        let mut b = Backoff::new(&cfg(100, 1000), 0);
        let nominal = [100, 200, 400, 800, 1000, 1000, 1000];
        for n in nominal {
            let d = b.next_delay();
            let n = Duration::from_millis(n);
            assert!(d >= n / 2 && d <= n, "{d:?} outside [{:?}, {n:?}]", n / 2);
        }
    }

    #[test]
    fn reset_starts_again_from_the_initial_delay() {
        let mut b = Backoff::new(&cfg(100, 10_000), 0);
        for _ in 0..5 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn same_seed_gives_the_same_jitter() {
        let mut a = Backoff::new(&cfg(100, 10_000), 0);
        let mut b = Backoff::new(&cfg(100, 10_000), 0);
        for _ in 0..10 {
            assert_eq!(a.next_delay(), b.next_delay());
        }
    }
}
