//! Queueing theory the engine leans on: closed-form and numerical answers to "how long will
//! callers wait, how many give up, how many agents do we need".
//!
//! Two uses, kept apart in two files:
//!
//! - [`erlang`]: Erlang B, C and A (M/M/N/N, M/M/N, M/M/N+M). These are the yardsticks the
//!   simulation harness is checked against (a seeded simulated day must land on the formula's
//!   service level, ASA, abandon rate and occupancy), and what a staffing report quotes.
//! - [`ewt`]: the estimated-wait announcement a waiting caller hears. It reports calibrated
//!   quantiles ("about 3 minutes" is the median; 90% of callers are answered within the p90)
//!   from the queue's live departure rate, instead of a moving average of past waits, which
//!   lags every change in staffing and ignores the caller's position.
//!
//! Everything here is pure arithmetic: no clock, no I/O, no randomness. Times enter as
//! [`std::time::Instant`] arguments, like every other input to the engine. No function panics;
//! inputs outside a formula's domain give `None` or a documented clamp.

pub mod erlang;
pub mod ewt;

pub use erlang::{ErlangA, ErlangC, agents_for_service_level, erlang_b, erlang_c};
pub use ewt::{Announcement, EwtEstimate, RateEstimator, estimate, prior_rate, wait_quantile};

use std::time::Duration;

/// Seconds to a `Duration` without the panics of `Duration::from_secs_f64`: NaN and negative
/// values become zero, values beyond `Duration::MAX` (about 584 billion years) saturate.
fn duration_from_secs(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// The tests' only source of randomness: seeded, so a failure replays exactly.
#[cfg(test)]
mod test_rng {
    /// splitmix64 (Steele, Lea, Flood 2014): tiny, and good enough for Monte-Carlo checks.
    #[derive(Debug)]
    pub(crate) struct SplitMix64(u64);

    impl SplitMix64 {
        pub(crate) fn new(seed: u64) -> Self {
            Self(seed)
        }

        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in [0, 1), 53 random bits.
        pub(crate) fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
        }

        /// Exponential with the given rate; `1 - u` keeps the logarithm's argument in (0, 1].
        pub(crate) fn exp(&mut self, rate: f64) -> f64 {
            -(1.0 - self.uniform()).ln() / rate
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_from_secs_clamps_instead_of_panicking() {
        assert_eq!(duration_from_secs(f64::NAN), Duration::ZERO);
        assert_eq!(duration_from_secs(-3.0), Duration::ZERO);
        assert_eq!(duration_from_secs(f64::INFINITY), Duration::MAX);
        assert_eq!(duration_from_secs(1e30), Duration::MAX);
        assert_eq!(duration_from_secs(1.5), Duration::from_millis(1500));
    }
}
