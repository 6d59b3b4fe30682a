//! Expected-wait announcements: "you are number 4 in line, your wait is about 3 minutes".
//!
//! The announcement is a quantile, not an average of past waits. A caller at position `n`
//! (1 = next) is answered once `n` callers have left the head of the line. While everyone is
//! busy, the head advances at the queue's departure rate `r`; if departures are Poisson (they
//! are, for exponential handle times and all agents busy), the remaining wait is the sum of
//! `n` exponential gaps, Gamma(shape `n`, rate `r`). Its median is what we say ("about"), its
//! p90 is what we can promise ("within").
//!
//! `r` is measured live by [`RateEstimator`] and blended with a staffing prior
//! (agents / AHT) while evidence is thin. Known biases toward announcing too long: callers
//! ahead who abandon move the caller up faster than `r` says (`r` counts answered callers
//! only), agents who log in after the announcement, and the estimator's own selection bias
//! (see [`RateEstimator`]). Priority callers who jump ahead bias it the other way.
//! Re-announce periodically rather than correcting for these.
//!
//! Gamma quantiles use the integer-shape identity `P(Gamma(n, 1) <= x) = P(Poisson(x) >= n)`,
//! summing Poisson terms outward from `n` with Loader's saddle-point terms: no factorial is
//! ever formed, and the CDF stays accurate to about 1e-12 at positions in the thousands.

use std::fmt;
use std::time::{Duration, Instant};

use super::duration_from_secs;

/// How far back the rate estimator looks: the time constant of its exponential decay.
/// Fifteen minutes spans dozens of departures in a staffed queue but still follows a change
/// of shift within half an hour.
pub const DEFAULT_TAU: Duration = Duration::from_secs(15 * 60);

/// Decayed departures needed before [`RateEstimator::rate`] trusts its own measurement: three
/// recent departures (three spread over up to about 5.5 minutes reach 2.5 with the default
/// `tau`; the threshold sits below 3 because a departure decays from the moment it counts).
/// With fewer, a Poisson count's relative error is above 60% and the staffing prior is better.
pub const MIN_EVIDENCE: f64 = 2.5;

/// Weight of the staffing prior in [`RateEstimator::blended_rate`], in departures: the prior
/// counts as this many departures seen at the prior rate.
pub const PRIOR_WEIGHT: f64 = 3.0;

/// Estimates the rate at which callers leave the head of one queue for an agent.
///
/// Rate = decayed count of departures / decayed time during which someone was waiting. Both
/// decay with time constant `tau`, so old evidence fades smoothly and the ratio is the
/// maximum-likelihood Poisson rate with exponential weights. Time with nobody waiting adds no
/// exposure: the head of an empty line cannot move, and counting that time would make a
/// quiet queue announce absurdly long waits when the next caller arrives.
///
/// The engine reports two things, with its own clock readings: [`Self::set_waiting`] when the
/// line becomes non-empty or empty, and [`Self::record_departure`] for each caller answered
/// out of the line. Departures while the line is recorded as empty are ignored (a caller
/// answered without waiting never was at the head); one stamped at the very instant the line
/// emptied still counts, so the two reports may come in either order. Timestamps earlier than
/// the latest seen are treated as the latest (no decay, no exposure) rather than rejected.
///
/// Known bias, measured in the tests on a simulated M/M/s queue: the rate a waiting caller
/// is quoted runs a few percent low, so the announced median covers about 55% of callers
/// rather than 50% (the p90 covers about 90-91%). Callers who must wait arrive in stretches
/// where departures have been slow (fast stretches empty the line and stop the exposure), so
/// the evidence they see is a selected sample. A longer `tau` dilutes it (one hour: ~53%).
#[derive(Clone, Debug)]
pub struct RateEstimator {
    tau_s: f64,
    /// Time the decayed sums below refer to; `None` before the first report.
    last: Option<Instant>,
    waiting: bool,
    emptied_at: Option<Instant>,
    /// Departures, each weighted exp(-age / tau).
    count: f64,
    /// Seconds with someone waiting, each weighted exp(-age / tau).
    exposure_s: f64,
}

impl Default for RateEstimator {
    fn default() -> Self {
        Self::new(DEFAULT_TAU)
    }
}

impl RateEstimator {
    /// `tau` is the decay time constant, clamped to at least one second (a shorter horizon
    /// holds no departures worth the name, and zero would divide by zero).
    pub fn new(tau: Duration) -> Self {
        Self {
            tau_s: tau.as_secs_f64().max(1.0),
            last: None,
            waiting: false,
            emptied_at: None,
            count: 0.0,
            exposure_s: 0.0,
        }
    }

    /// The line has callers waiting (`true`) or is empty (`false`) from `now` on.
    pub fn set_waiting(&mut self, now: Instant, waiting: bool) {
        self.advance(now);
        if self.waiting && !waiting {
            self.emptied_at = Some(now);
        }
        self.waiting = waiting;
    }

    /// A caller left the head of the line for an agent at `now`.
    pub fn record_departure(&mut self, now: Instant) {
        self.advance(now);
        if self.waiting || self.emptied_at == Some(now) {
            self.count += 1.0;
        }
    }

    /// Departures in the decayed window: how much evidence [`Self::rate`] rests on.
    pub fn evidence(&self, now: Instant) -> f64 {
        self.decayed(now).0
    }

    /// Measured departure rate per second, or `None` while the decayed departure count is
    /// below [`MIN_EVIDENCE`] (roughly: fewer than three recent departures).
    pub fn rate(&self, now: Instant) -> Option<f64> {
        let (count, exposure_s) = self.decayed(now);
        (count >= MIN_EVIDENCE && exposure_s > 0.0).then(|| count / exposure_s)
    }

    /// Measured rate blended with a prior rate (from [`prior_rate`]) by weight of evidence.
    ///
    /// The prior is read as [`PRIOR_WEIGHT`] departures observed over `PRIOR_WEIGHT / prior`
    /// seconds and pooled with the decayed measurement: `(count + w) / (exposure + w / prior)`,
    /// the posterior mean of a Gamma prior on a Poisson rate. With no measurement it is the
    /// prior; with 30 decayed departures, a prior within a factor of 2 of the measured rate
    /// moves the answer by under 10%.
    ///
    /// A prior that is not a positive finite number is ignored (then this is [`Self::rate`]).
    pub fn blended_rate(&self, now: Instant, prior_per_s: f64) -> Option<f64> {
        if !(prior_per_s.is_finite() && prior_per_s > 0.0) {
            return self.rate(now);
        }
        let (count, exposure_s) = self.decayed(now);
        Some((count + PRIOR_WEIGHT) / (exposure_s + PRIOR_WEIGHT / prior_per_s))
    }

    /// Moves the decayed sums forward to `now`.
    fn advance(&mut self, now: Instant) {
        let (count, exposure_s) = self.decayed(now);
        self.count = count;
        self.exposure_s = exposure_s;
        if self.last.is_none_or(|last| now > last) {
            self.last = Some(now);
        }
    }

    /// The decayed sums as they would stand at `now`.
    fn decayed(&self, now: Instant) -> (f64, f64) {
        let Some(last) = self.last else {
            return (0.0, 0.0);
        };
        let x = now.saturating_duration_since(last).as_secs_f64() / self.tau_s;
        let keep = (-x).exp();
        // Integral of exp(-(now - s)/tau) ds over the elapsed interval; expm1 keeps it exact
        // for intervals much shorter than tau.
        let accrued = if self.waiting {
            -(-x).exp_m1() * self.tau_s
        } else {
            0.0
        };
        (self.count * keep, self.exposure_s * keep + accrued)
    }
}

/// Staffing prior for the departure rate: `agents_serving / aht` per second, the rate at which
/// the head moves when every serving agent is busy. 0.0 ("no prior", see
/// [`RateEstimator::blended_rate`]) when `aht` is zero.
pub fn prior_rate(agents_serving: u32, aht: Duration) -> f64 {
    if aht.is_zero() {
        0.0
    } else {
        agents_serving as f64 / aht.as_secs_f64()
    }
}

/// Median and 90th percentile of a waiting caller's remaining wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EwtEstimate {
    /// Half of callers at this position are answered sooner: what "about" means.
    pub p50: Duration,
    /// Nine in ten are answered sooner: what "within" can promise.
    pub p90: Duration,
}

impl EwtEstimate {
    /// What to say for the median: whole minutes rounded up, or "less than a minute".
    pub fn announce_minutes(&self) -> Announcement {
        Announcement::from_wait(self.p50)
    }
}

/// A wait as a caller hears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// The wait is under 60 s.
    LessThanAMinute,
    /// Whole minutes, rounded up: "about 2 minutes" for a 61 s wait. Rounding up because a
    /// caller forgives a wait shorter than announced and not one longer.
    Minutes(u32),
}

impl Announcement {
    /// How a wait is rounded for a caller's ears (see [`Announcement::Minutes`]).
    pub fn from_wait(wait: Duration) -> Self {
        let minutes = wait.as_nanos().div_ceil(60_000_000_000);
        if wait < Duration::from_secs(60) {
            Self::LessThanAMinute
        } else {
            Self::Minutes(u32::try_from(minutes).unwrap_or(u32::MAX))
        }
    }
}

impl fmt::Display for Announcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LessThanAMinute => f.write_str("less than a minute"),
            Self::Minutes(1) => f.write_str("about 1 minute"),
            Self::Minutes(m) => write!(f, "about {m} minutes"),
        }
    }
}

/// p50 and p90 of the remaining wait at `position` (1 = next) when the head of the line
/// advances at `rate_per_s`. `None` for position 0 or a rate that is not positive and finite
/// (nobody serving: no wait can be promised).
pub fn estimate(position: u32, rate_per_s: f64) -> Option<EwtEstimate> {
    Some(EwtEstimate {
        p50: wait_quantile(position, rate_per_s, 0.5)?,
        p90: wait_quantile(position, rate_per_s, 0.9)?,
    })
}

/// Any quantile `p` in [0, 1) of the remaining wait, Gamma(`position`, `rate_per_s`). `None`
/// as for [`estimate`], and for `p` NaN or at least 1 (that wait is unbounded). Cost is a
/// few Newton steps, each a sum of O(sqrt(position)) terms.
pub fn wait_quantile(position: u32, rate_per_s: f64, p: f64) -> Option<Duration> {
    if !(rate_per_s.is_finite() && rate_per_s > 0.0) {
        return None;
    }
    let unit = gamma_quantile(position, p)?;
    Some(duration_from_secs(unit / rate_per_s))
}

/// Relative size below which a Poisson term no longer changes a sum.
const SUM_EPS: f64 = 1e-17;

/// Inverse of [`gamma_p`] in `x` for unit rate: `x` with `P(Gamma(shape, 1) <= x) = p`.
///
/// Newton's method on the CDF (its derivative is the density, one Poisson term), kept inside
/// a bracket that bisects whenever a Newton step would leave it. Converges in a handful of
/// steps from the mean; the bracket makes it unconditional.
fn gamma_quantile(shape: u32, p: f64) -> Option<f64> {
    if shape == 0 || p.is_nan() || p >= 1.0 {
        return None;
    }
    if p <= 0.0 {
        return Some(0.0);
    }
    let n = shape as f64;
    let mut lo = 0.0_f64;
    let mut hi = n + 10.0 * n.sqrt() + 10.0;
    // For p extremely close to 1 the upper bracket grows; 64 doublings reach any f64 needed.
    for _ in 0..64 {
        if gamma_p(shape, hi) >= p {
            break;
        }
        lo = hi;
        hi *= 2.0;
    }
    let mut x = n.clamp(lo, hi);
    for _ in 0..200 {
        let f = gamma_p(shape, x) - p;
        if f == 0.0 {
            return Some(x);
        }
        if f < 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let density = gamma_density(shape, x);
        let newton = x - f / density;
        let next = if density > 0.0 && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if (next - x).abs() <= 1e-14 * x.max(1e-300) || hi - lo <= 1e-14 * hi {
            return Some(next);
        }
        x = next;
    }
    Some(x)
}

/// Regularised lower incomplete gamma `P(shape, x)` for integer shape: the CDF at `x` of a
/// sum of `shape` unit exponentials, equal to `P(Poisson(x) >= shape)`.
///
/// Sums whichever Poisson tail does not contain the mode, starting next to `shape` and
/// moving away, so the terms shrink geometrically and the sum stops once the rest is provably
/// below 1e-17 of it (a tail past a term with ratio `r` is at most `term * r / (1 - r)`).
fn gamma_p(shape: u32, x: f64) -> f64 {
    if shape == 0 {
        return 1.0;
    }
    if x.is_nan() || x <= 0.0 {
        return 0.0;
    }
    if x.is_infinite() {
        return 1.0;
    }
    let n = shape as u64;
    if ((n - 1) as f64) < x {
        // Lower tail P(Poisson <= n-1): from k = n-1 down, ratio k / x < 1 and shrinking.
        let mut k = n - 1;
        let mut term = poisson_pmf(k, x);
        let mut sum = 0.0;
        while term > 0.0 {
            sum += term;
            if k == 0 {
                break;
            }
            let ratio = k as f64 / x;
            term *= ratio;
            k -= 1;
            if term * ratio / (1.0 - ratio) < SUM_EPS * sum {
                sum += term;
                break;
            }
        }
        (1.0 - sum).clamp(0.0, 1.0)
    } else {
        // Upper tail P(Poisson >= n): from k = n up, ratio x / (k+1) < 1 and shrinking.
        let mut k = n;
        let mut term = poisson_pmf(k, x);
        let mut sum = 0.0;
        while term > 0.0 {
            sum += term;
            k += 1;
            let ratio = x / k as f64;
            term *= ratio;
            if term * ratio / (1.0 - ratio) < SUM_EPS * sum {
                sum += term;
                break;
            }
        }
        sum.clamp(0.0, 1.0)
    }
}

/// Density of Gamma(shape, 1) at `x > 0`: `x^(n-1) e^(-x) / (n-1)!`, which is one Poisson
/// term.
fn gamma_density(shape: u32, x: f64) -> f64 {
    if shape == 0 || x.is_nan() || x <= 0.0 || x.is_infinite() {
        return 0.0;
    }
    poisson_pmf(u64::from(shape) - 1, x)
}

/// `P(Poisson(x) = k)` for `x > 0`, by Loader's saddle-point form
/// `exp(-stirlerr(k) - bd0(k, x)) / sqrt(2 pi k)`: no factorials and no cancellation between
/// large logarithms, so it keeps ~1e-15 relative accuracy for k and x in the billions.
fn poisson_pmf(k: u64, x: f64) -> f64 {
    if k == 0 {
        return (-x).exp();
    }
    let kf = k as f64;
    (-stirling_error(k) - bd0(kf, x)).exp() / (std::f64::consts::TAU * kf).sqrt()
}

/// `ln(k!) - ln(sqrt(2 pi k) (k/e)^k)` for k >= 1.
fn stirling_error(k: u64) -> f64 {
    let kf = k as f64;
    if k <= 15 {
        // Exact: ln(k!) is a short sum here, and the cancellation against k ln k is mild.
        let ln_fact: f64 = (2..=k).map(|i| (i as f64).ln()).sum();
        return ln_fact - (kf + 0.5) * kf.ln() + kf - 0.5 * std::f64::consts::TAU.ln();
    }
    // Stirling series; the first omitted term is below 1e-16 for k > 15.
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    let kk = kf * kf;
    (S0 - (S1 - (S2 - (S3 - S4 / kk) / kk) / kk) / kk) / kf
}

/// `k ln(k / x) + x - k`, computed without cancellation when `k` is close to `x` (series in
/// `v = (k - x) / (k + x)`), which is where the Poisson mass is.
fn bd0(k: f64, x: f64) -> f64 {
    if (k - x).abs() < 0.1 * (k + x) {
        let v = (k - x) / (k + x);
        let mut sum = (k - x) * v;
        let mut ej = 2.0 * k * v;
        let v2 = v * v;
        for j in 1..1000 {
            ej *= v2;
            let next = sum + ej / (2 * j + 1) as f64;
            if next == sum {
                return sum;
            }
            sum = next;
        }
        sum
    } else {
        k * (k / x).ln() + x - k
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_rng::SplitMix64;
    use super::*;
    use std::collections::VecDeque;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn one_position_wait_is_exponential() {
        let r = 0.05;
        let e = estimate(1, r).unwrap();
        // Duration keeps nanoseconds, hence 1e-10 rather than f64 precision.
        assert!(
            close(e.p50.as_secs_f64(), std::f64::consts::LN_2 / r, 1e-10),
            "{e:?}"
        );
        assert!(
            close(e.p90.as_secs_f64(), std::f64::consts::LN_10 / r, 1e-10),
            "{e:?}"
        );
    }

    #[test]
    fn gamma_quantiles_match_published_values() {
        // Gamma(10, 1) median 9.668714614714 and p90 = chi-square(20) p90 / 2 = 28.41198/2.
        assert!(close(
            gamma_quantile(10, 0.5).unwrap(),
            9.668_714_614_714,
            1e-11
        ));
        assert!(close(
            gamma_quantile(10, 0.9).unwrap(),
            28.411_980_584_305 / 2.0,
            1e-11
        ));
        // Gamma(3, 1) median: chi-square(6) median / 2 = 5.348120627447 / 2.
        assert!(close(
            gamma_quantile(3, 0.5).unwrap(),
            5.348_120_627_447 / 2.0,
            1e-11
        ));
    }

    #[test]
    fn gamma_cdf_matches_naive_poisson_sum_for_small_shapes() {
        for n in 1..=30u32 {
            for x in [0.1_f64, 1.0, 5.5, 17.0, 40.0] {
                let mut term = (-x).exp();
                let mut below = 0.0;
                for k in 0..n {
                    below += term;
                    term *= x / (k + 1) as f64;
                }
                let naive = 1.0 - below;
                let p = gamma_p(n, x);
                assert!((p - naive).abs() < 1e-13, "n={n} x={x}: {p} vs {naive}");
            }
        }
    }

    #[test]
    fn gamma_quantiles_stay_accurate_at_ten_thousand_positions() {
        let n = 10_000u32;
        let median = gamma_quantile(n, 0.5).unwrap();
        // Median of Gamma(n, 1) = n - 1/3 + 8/(405 n) + O(n^-2).
        assert!(
            (median - (n as f64 - 1.0 / 3.0 + 8.0 / 405e4)).abs() < 1e-6,
            "{median}"
        );
        let p90 = gamma_quantile(n, 0.9).unwrap();
        assert!((gamma_p(n, p90) - 0.9).abs() < 1e-12);
        // Wilson-Hilferty, accurate to O(1/n) relative here.
        let z = 1.281_551_565_544_600_5;
        let wh = n as f64 * (1.0 - 1.0 / (9.0 * n as f64) + z / (3.0 * 100.0)).powi(3);
        assert!(close(p90, wh, 1e-5), "{p90} vs {wh}");
        // Positions far beyond a real queue still answer, by the same method.
        let huge = gamma_quantile(u32::MAX, 0.5).unwrap();
        assert!(close(huge, u32::MAX as f64 - 1.0 / 3.0, 1e-12), "{huge}");
    }

    #[test]
    fn estimate_rejects_what_has_no_answer() {
        assert_eq!(estimate(0, 1.0), None);
        assert_eq!(estimate(3, 0.0), None);
        assert_eq!(estimate(3, -1.0), None);
        assert_eq!(estimate(3, f64::NAN), None);
        assert_eq!(estimate(3, f64::INFINITY), None);
        assert_eq!(wait_quantile(3, 1.0, 1.0), None);
        assert_eq!(wait_quantile(3, 1.0, 0.0), Some(Duration::ZERO));
        // A vanishing rate saturates instead of overflowing Duration.
        assert_eq!(estimate(3, 1e-300).unwrap().p90, Duration::MAX);
    }

    #[test]
    fn announcement_rounds_the_median_up_to_whole_minutes() {
        let say = |secs: f64| Announcement::from_wait(Duration::from_secs_f64(secs));
        assert_eq!(say(0.0), Announcement::LessThanAMinute);
        assert_eq!(say(59.9), Announcement::LessThanAMinute);
        assert_eq!(say(60.0), Announcement::Minutes(1));
        assert_eq!(say(60.5), Announcement::Minutes(2));
        assert_eq!(say(179.0), Announcement::Minutes(3));
        assert_eq!(
            Announcement::from_wait(Duration::MAX),
            Announcement::Minutes(u32::MAX)
        );
        assert_eq!(say(150.0).to_string(), "about 3 minutes");
        assert_eq!(say(30.0).to_string(), "less than a minute");
        // Position 3 at one departure a minute: median 2.67 min -> "about 3 minutes".
        let e = estimate(3, 1.0 / 60.0).unwrap();
        assert_eq!(e.announce_minutes(), Announcement::Minutes(3));
    }

    #[test]
    fn rate_needs_three_departures_before_it_answers() {
        let t0 = Instant::now();
        let mut est = RateEstimator::default();
        est.set_waiting(t0, true);
        for i in 1..=2 {
            est.record_departure(t0 + Duration::from_secs(10 * i));
        }
        let now = t0 + Duration::from_secs(20);
        assert_eq!(est.rate(now), None);
        // The prior carries the answer meanwhile: 10 agents at 200 s AHT = 0.05/s.
        let prior = prior_rate(10, Duration::from_secs(200));
        assert!(close(prior, 0.05, 1e-15));
        let blended = est.blended_rate(now, prior).unwrap();
        // (2 + 3) / (20 + 3/0.05) = 5 / 80.
        assert!(close(blended, 5.0 / 80.0, 1e-3), "{blended}");
        est.record_departure(t0 + Duration::from_secs(30));
        let r = est.rate(t0 + Duration::from_secs(30)).unwrap();
        assert!(close(r, 0.1, 0.02), "{r}");
    }

    #[test]
    fn rate_converges_on_a_poisson_departure_stream() {
        let t0 = Instant::now();
        let mut rng = SplitMix64::new(42);
        let mut est = RateEstimator::new(Duration::from_secs(3600));
        est.set_waiting(t0, true);
        let rate = 0.2;
        let mut t = 0.0;
        while t < 4.0 * 3600.0 {
            t += rng.exp(rate);
            est.record_departure(t0 + Duration::from_secs_f64(t));
        }
        let now = t0 + Duration::from_secs_f64(t);
        // About 720 decayed departures of evidence: relative standard error ~3.7%.
        assert!(est.evidence(now) > 600.0, "{}", est.evidence(now));
        let measured = est.rate(now).unwrap();
        assert!(close(measured, rate, 0.12), "{measured}");
        // With that much evidence a wrong prior barely moves the blend.
        let blended = est.blended_rate(now, 1.0).unwrap();
        assert!(close(blended, measured, 0.01), "{blended} vs {measured}");
    }

    #[test]
    fn idle_time_does_not_dilute_the_rate() {
        let t0 = Instant::now();
        let mut est = RateEstimator::default();
        let mut t = 0u64;
        // Ten minutes busy (a departure every 5 s), then half an hour with nobody waiting.
        for _ in 0..6 {
            est.set_waiting(t0 + Duration::from_secs(t), true);
            for _ in 0..120 {
                t += 5;
                est.record_departure(t0 + Duration::from_secs(t));
            }
            est.set_waiting(t0 + Duration::from_secs(t), false);
            // Answered without waiting: not from the head of the line, must not count.
            est.record_departure(t0 + Duration::from_secs(t + 60));
            t += 1800;
        }
        let r = est.rate(t0 + Duration::from_secs(t)).unwrap();
        // Counting idle time would give 0.2 * 10/40 = 0.05.
        assert!(close(r, 0.2, 0.02), "{r}");
    }

    #[test]
    fn departure_at_the_instant_the_line_empties_counts_in_either_order() {
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(30);
        let mut a = RateEstimator::default();
        let mut b = RateEstimator::default();
        for est in [&mut a, &mut b] {
            est.set_waiting(t0, true);
            est.record_departure(t0 + Duration::from_secs(10));
            est.record_departure(t0 + Duration::from_secs(20));
        }
        a.record_departure(end);
        a.set_waiting(end, false);
        b.set_waiting(end, false);
        b.record_departure(end);
        assert!(close(a.rate(end).unwrap(), 0.1, 0.02));
        assert_eq!(a.rate(end), b.rate(end));
    }

    #[test]
    fn rate_follows_a_staffing_change_within_a_few_time_constants() {
        let t0 = Instant::now();
        let mut est = RateEstimator::new(Duration::from_secs(600));
        est.set_waiting(t0, true);
        let mut t = 0u64;
        for gap in [10, 2] {
            for _ in 0..(3 * 3600 / gap) {
                t += gap;
                est.record_departure(t0 + Duration::from_secs(t));
            }
            let r = est.rate(t0 + Duration::from_secs(t)).unwrap();
            assert!(close(r, 1.0 / gap as f64, 0.01), "gap {gap}: {r}");
        }
    }

    #[test]
    fn estimator_tolerates_time_going_backwards() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let mut est = RateEstimator::default();
        est.set_waiting(t0, true);
        est.record_departure(t0 - Duration::from_secs(50));
        assert!(est.evidence(t0 - Duration::from_secs(99)) > 0.99);
        assert_eq!(est.rate(t0 - Duration::from_secs(99)), None);
    }

    /// Plays an M/M/s queue (FCFS, no abandonment) and announces to each caller who has to
    /// wait, exactly as the engine would: from the estimator's live rate blended with the
    /// staffing prior (`live`), or from the true rate (to check the model alone). Returns the
    /// fraction of those callers answered within their announced p50 and p90.
    fn calibration(
        seed: u64,
        servers: usize,
        aht_s: f64,
        load: f64,
        calls: usize,
        live: bool,
    ) -> (f64, f64) {
        let mut rng = SplitMix64::new(seed);
        let arrival_rate = load * servers as f64 / aht_s;
        // Callers in arrival order; service starts computed FCFS caller by caller.
        let mut free_at = vec![0.0_f64; servers];
        let mut arrivals = Vec::with_capacity(calls);
        let mut starts = Vec::with_capacity(calls);
        let mut now = 0.0;
        for _ in 0..calls {
            now += rng.exp(arrival_rate);
            let (agent, free) =
                free_at
                    .iter()
                    .copied()
                    .enumerate()
                    .fold(
                        (0, f64::INFINITY),
                        |best, (i, f)| {
                            if f < best.1 { (i, f) } else { best }
                        },
                    );
            let start = free.max(now);
            free_at[agent] = start + rng.exp(1.0 / aht_s);
            arrivals.push(now);
            starts.push(start);
        }

        // Replay in time order: a caller who waits joins at arrival and leaves at its start.
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let mut est = RateEstimator::default();
        let prior = prior_rate(servers as u32, Duration::from_secs_f64(aht_s));
        let mut line: VecDeque<f64> = VecDeque::new(); // starts of callers now waiting
        let (mut waited, mut within_p50, mut within_p90) = (0u32, 0u32, 0u32);
        for (&arrival, &start) in arrivals.iter().zip(&starts) {
            while line.front().is_some_and(|&s| s <= arrival) {
                let s = line.pop_front().unwrap(); // just checked non-empty
                est.record_departure(at(s));
                if line.is_empty() {
                    est.set_waiting(at(s), false);
                }
            }
            if start <= arrival {
                continue;
            }
            let position = line.len() as u32 + 1;
            let rate = if live {
                est.blended_rate(at(arrival), prior).unwrap() // prior is positive
            } else {
                prior
            };
            let e = estimate(position, rate).unwrap(); // position >= 1, rate > 0
            let wait = start - arrival;
            waited += 1;
            within_p50 += u32::from(wait <= e.p50.as_secs_f64());
            within_p90 += u32::from(wait <= e.p90.as_secs_f64());
            line.push_back(start);
            est.set_waiting(at(arrival), true);
        }
        (
            within_p50 as f64 / waited as f64,
            within_p90 as f64 / waited as f64,
        )
    }

    #[test]
    fn gamma_model_is_exactly_calibrated_when_the_rate_is_known() {
        // With the true departure rate the wait at position n is Gamma(n, s/AHT) exactly.
        let (p50, p90) = calibration(0xCA11_CE47, 20, 180.0, 0.92, 200_000, false);
        assert!((p50 - 0.5).abs() < 0.01, "p50 coverage {p50}");
        assert!((p90 - 0.9).abs() < 0.006, "p90 coverage {p90}");
    }

    #[test]
    fn announced_quantiles_are_calibrated_on_a_simulated_queue() {
        // 20 agents, 3 min AHT, 92% occupancy: about 60% of callers wait.
        let (p50, p90) = calibration(0xCA11_CE47, 20, 180.0, 0.92, 200_000, true);
        assert!((0.43..=0.57).contains(&p50), "p50 coverage {p50}");
        assert!((0.85..=0.95).contains(&p90), "p90 coverage {p90}");
    }

    #[test]
    fn announced_quantiles_are_calibrated_for_a_small_team() {
        // 3 agents, 5 min AHT, 85%: thin evidence, so the prior blend matters.
        let (p50, p90) = calibration(7, 3, 300.0, 0.85, 100_000, true);
        assert!((0.43..=0.57).contains(&p50), "p50 coverage {p50}");
        assert!((0.85..=0.95).contains(&p90), "p90 coverage {p90}");
    }
}
