//! Erlang B, C and A: the steady-state formulas the simulation harness is validated against.
//!
//! Notation, used throughout: `N` agents (servers), offered load `A` in erlangs (arrival rate
//! times average handle time, AHT), service rate `mu = 1 / AHT`, and for Erlang A an
//! exponential patience with mean `patience`, so each waiting caller abandons at rate
//! `theta = 1 / patience`.
//!
//! - Erlang B (M/M/N/N): probability an arrival finds every agent busy when there is no queue.
//! - Erlang C (M/M/N): infinite patience. Probability of waiting, service level, ASA. It has no
//!   steady state once `A >= N`; the functions say so rather than return garbage.
//! - Erlang A (M/M/N+M): callers abandon. Always stable, and what a real queue with
//!   abandonment looks like. There is no usable closed form at large `N`, so the birth-death
//!   chain is solved numerically in log space (see [`ErlangA::new`]).
//!
//! Internally everything is measured in units of one AHT (so `mu = 1`, the arrival rate is `A`
//! and the abandonment rate per waiting caller is `AHT / patience`); times are converted back
//! to `Duration` at the API.

use std::time::Duration;

use super::duration_from_secs;

/// Probability mass the Erlang A solver may leave beyond its last state. Far below anything a
/// service-level report shows, and far above `f64` rounding over 10^5 terms.
const TAIL_MASS: f64 = 1e-12;

/// Most states the Erlang A chain may need before the solver gives up (returns `None`). A
/// queue that long in steady state means patience so long relative to an overload that the
/// model is Erlang C in disguise with no steady state; 100,000 states also bound memory to
/// under 1 MB and the solve to a few milliseconds.
pub const MAX_STATES: usize = 100_000;

/// Work bound (state-vector updates) for [`ErlangA::service_level`]: about 0.3 s in a release
/// build, 3 s in a debug one. Realistic inputs need far less (5,000 agents at full load, 20 s
/// threshold: about 10^6 updates, 2 ms in release); only queues tens of thousands long with
/// thresholds of hours reach it.
const MAX_SERVICE_LEVEL_WORK: u64 = 50_000_000;

/// Largest staffing [`agents_for_service_level`] searches. Each step is O(1), so this bounds
/// the search to milliseconds; loads that need more are beyond any single queue.
const MAX_AGENTS: u32 = 1_000_000;

/// Offered load as the formulas accept it: NaN and negative loads are no traffic.
fn sanitize_load(erlangs: f64) -> f64 {
    if erlangs.is_nan() || erlangs < 0.0 {
        0.0
    } else {
        erlangs
    }
}

/// Erlang B: probability that an arrival finds all `servers` busy in a loss system (M/M/N/N)
/// offered `erlangs` of traffic.
///
/// Uses the recursion `B(0) = 1`, `B(k) = A*B(k-1) / (k + A*B(k-1))`, which never forms
/// `A^N / N!` and so neither overflows nor loses precision at thousands of servers. Cost is
/// O(`servers`), cut short once the probability underflows to zero.
///
/// Conventions: with no servers every call is blocked (1.0); NaN or negative load is no
/// traffic (0.0 with at least one server); infinite load blocks everything (1.0).
pub fn erlang_b(servers: u32, erlangs: f64) -> f64 {
    let a = sanitize_load(erlangs);
    if servers == 0 || a.is_infinite() {
        return 1.0;
    }
    let mut b = 1.0;
    for k in 1..=servers {
        b = a * b / (k as f64 + a * b);
        if b == 0.0 {
            // Underflowed: every further step multiplies by something < 1.
            break;
        }
    }
    b
}

/// Erlang C: probability that an arrival has to wait in an M/M/N queue with infinite
/// patience, `C = N*B / (N - A*(1 - B))` with `B` from [`erlang_b`].
///
/// Returns 1.0 when `erlangs >= servers` (no steady state: the queue grows without bound, so
/// in the long run everyone waits) and when there are no servers. NaN or negative load is no
/// traffic (0.0).
pub fn erlang_c(servers: u32, erlangs: f64) -> f64 {
    let a = sanitize_load(erlangs);
    let n = servers as f64;
    if servers == 0 || a >= n {
        return 1.0;
    }
    let b = erlang_b(servers, a);
    (n * b / (n - a * (1.0 - b))).clamp(0.0, 1.0)
}

/// An M/M/N queue with infinite patience: the textbook staffing model.
///
/// Fields are public and the methods are cheap (O(`servers`)); NaN or negative `erlangs` are
/// read as no traffic, as in [`erlang_c`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ErlangC {
    /// Agents taking calls.
    pub servers: u32,
    /// Offered load: arrival rate times `aht`.
    pub erlangs: f64,
    /// Average handle time (talk plus wrap-up: however long an agent is kept from the next call).
    pub aht: Duration,
}

impl ErlangC {
    /// Same as the struct literal; there is nothing to precompute.
    pub fn new(servers: u32, erlangs: f64, aht: Duration) -> Self {
        Self {
            servers,
            erlangs,
            aht,
        }
    }

    /// Whether a steady state exists (`A < N`).
    pub fn is_stable(&self) -> bool {
        let a = sanitize_load(self.erlangs);
        a < self.servers as f64
    }

    /// Probability that an arrival waits at all: [`erlang_c`].
    pub fn prob_wait(&self) -> f64 {
        erlang_c(self.servers, self.erlangs)
    }

    /// Fraction of callers answered within `threshold`: `1 - C * exp(-(N - A) * t / AHT)`.
    ///
    /// 0.0 when unstable: waits grow without bound, so in the long run nobody is answered
    /// within any fixed threshold. A zero threshold gives `1 - C` (answered without waiting);
    /// a zero AHT with a positive threshold gives 1.0 (the queue drains instantly).
    pub fn service_level(&self, threshold: Duration) -> f64 {
        if !self.is_stable() {
            return 0.0;
        }
        let c = self.prob_wait();
        if threshold.is_zero() {
            return 1.0 - c;
        }
        if self.aht.is_zero() {
            return 1.0;
        }
        let slack = self.servers as f64 - sanitize_load(self.erlangs);
        let x = slack * threshold.as_secs_f64() / self.aht.as_secs_f64();
        (1.0 - c * (-x).exp()).clamp(0.0, 1.0)
    }

    /// Average speed of answer over all callers (those answered at once count as zero):
    /// `C * AHT / (N - A)`. `None` when unstable, because the mean wait is unbounded.
    pub fn asa(&self) -> Option<Duration> {
        if !self.is_stable() {
            return None;
        }
        let slack = self.servers as f64 - sanitize_load(self.erlangs);
        Some(duration_from_secs(
            self.prob_wait() * self.aht.as_secs_f64() / slack,
        ))
    }

    /// Fraction of agent time spent handling calls, `A / N`, capped at 1.0 (an overloaded
    /// queue keeps every agent busy, it cannot make them busier). 0.0 with no agents.
    pub fn occupancy(&self) -> f64 {
        if self.servers == 0 {
            return 0.0;
        }
        (sanitize_load(self.erlangs) / self.servers as f64).min(1.0)
    }
}

/// Fewest agents such that an Erlang C queue offered `erlangs` answers at least `target`
/// (a fraction, 0.8 for "80/20") of callers within `threshold`.
///
/// The answer is always at least the smallest stable staffing (`N > A`) and at least 1; zero
/// load needs `Some(0)` agents. `None` when the question has no answer: load NaN, negative or
/// infinite, `target` NaN or above 1.0, or more than 1,000,000 agents needed. A target at or
/// below zero returns the smallest stable staffing.
///
/// Walks `N` upward carrying the Erlang B recursion along, so each step is O(1).
pub fn agents_for_service_level(
    erlangs: f64,
    aht: Duration,
    threshold: Duration,
    target: f64,
) -> Option<u32> {
    if !erlangs.is_finite() || erlangs < 0.0 || target.is_nan() || target > 1.0 {
        return None;
    }
    if erlangs == 0.0 {
        return Some(0);
    }
    let mut b = 1.0;
    for n in 1..=MAX_AGENTS {
        b = erlangs * b / (n as f64 + erlangs * b);
        let nf = n as f64;
        if nf <= erlangs {
            continue;
        }
        let c = (nf * b / (nf - erlangs * (1.0 - b))).clamp(0.0, 1.0);
        let sl = if threshold.is_zero() {
            1.0 - c
        } else if aht.is_zero() {
            1.0
        } else {
            1.0 - c * (-(nf - erlangs) * threshold.as_secs_f64() / aht.as_secs_f64()).exp()
        };
        if sl >= target {
            return Some(n);
        }
    }
    None
}

/// An M/M/N+M queue (Erlang A): Poisson arrivals, exponential handle times, FCFS, and callers
/// who abandon after an exponential patience. Solved once by [`ErlangA::new`]; the accessors
/// are then cheap, except [`ErlangA::service_level`] which integrates a small Markov chain.
///
/// All probabilities are as seen by an arriving caller, which for Poisson arrivals (PASTA)
/// equals the time-average state of the queue.
#[derive(Clone, Debug, PartialEq)]
pub struct ErlangA {
    servers: u32,
    erlangs: f64,
    aht: Duration,
    patience: Duration,
    /// Abandonment rate of one waiting caller per unit of service rate (`AHT / patience`);
    /// infinite when patience is zero.
    gamma: f64,
    /// `queue[i]` = steady-state probability of `servers + i` callers in the system, which is
    /// the probability that an arrival finds everyone busy and becomes position `i + 1`.
    queue: Vec<f64>,
    /// Probability an arrival finds a free agent.
    prob_free: f64,
    /// Expected number of busy agents.
    mean_busy: f64,
}

impl ErlangA {
    /// Solves the birth-death chain of the number of callers in the system.
    ///
    /// State `k` moves up at rate `A` and down at rate `min(k, N) + max(k - N, 0) * AHT/patience`
    /// (in units of the service rate). Stationary weights are products of up/down ratios,
    /// which for `N` in the thousands are far beyond `f64` range (`A^N / N!`), so they are
    /// accumulated as logarithms and normalised against the largest one at the end. States
    /// are added until the rest of the chain provably holds under 1e-12 of the mass: past the
    /// mode every ratio is smaller than the current one `r`, so the tail is at most
    /// `w_k * r / (1 - r)`.
    ///
    /// `None` when the inputs have no meaning (`erlangs` NaN, negative or infinite, zero AHT)
    /// or when more than [`MAX_STATES`] states would be needed, which happens only when
    /// patience is so long relative to an overload (`A >= N`) that the steady-state queue
    /// holds tens of thousands of callers. Zero patience is allowed: every caller who would
    /// wait abandons at once, and the model becomes Erlang B.
    pub fn new(servers: u32, erlangs: f64, aht: Duration, patience: Duration) -> Option<Self> {
        if !erlangs.is_finite() || erlangs < 0.0 || aht.is_zero() {
            return None;
        }
        let gamma = if patience.is_zero() {
            f64::INFINITY
        } else {
            aht.as_secs_f64() / patience.as_secs_f64()
        };
        let n = servers as usize;
        let death = |k: usize| -> f64 {
            // Written so an infinite gamma never meets a zero (inf * 0 is NaN).
            if k <= n {
                k as f64
            } else {
                n as f64 + (k - n) as f64 * gamma
            }
        };

        let mut log_w: Vec<f64> = vec![0.0];
        if erlangs > 0.0 {
            let ln_a = erlangs.ln();
            // Running log-sum-exp: `scaled_sum` is the sum of weights divided by exp(max).
            let mut max = 0.0_f64;
            let mut scaled_sum = 1.0_f64;
            loop {
                let k = log_w.len() - 1;
                let next_death = death(k + 1);
                let ratio = erlangs / next_death;
                if ratio < 1.0 {
                    let tail = (log_w[k] - max).exp() * ratio / (1.0 - ratio);
                    if tail < TAIL_MASS * scaled_sum {
                        break;
                    }
                }
                if log_w.len() >= MAX_STATES {
                    return None;
                }
                let next = log_w[k] + ln_a - next_death.ln();
                if next > max {
                    scaled_sum = scaled_sum * (max - next).exp() + 1.0;
                    max = next;
                } else {
                    scaled_sum += (next - max).exp();
                }
                log_w.push(next);
            }
        }

        let max = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = log_w.iter().map(|lw| (lw - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut prob_free = 0.0;
        let mut mean_busy = 0.0;
        let mut queue = Vec::new();
        for (k, w) in weights.iter().enumerate() {
            let p = w / total;
            mean_busy += k.min(n) as f64 * p;
            if k < n {
                prob_free += p;
            } else {
                queue.push(p);
            }
        }
        Some(Self {
            servers,
            erlangs,
            aht,
            patience,
            gamma,
            queue,
            prob_free,
            mean_busy,
        })
    }

    /// Agents taking calls, as given.
    pub fn servers(&self) -> u32 {
        self.servers
    }

    /// Offered load, as given.
    pub fn erlangs(&self) -> f64 {
        self.erlangs
    }

    /// Average handle time, as given.
    pub fn aht(&self) -> Duration {
        self.aht
    }

    /// Mean patience of a waiting caller, as given.
    pub fn patience(&self) -> Duration {
        self.patience
    }

    /// Probability that an arrival finds every agent busy and joins the line (`P(k >= N)`).
    pub fn prob_wait(&self) -> f64 {
        // Clamped: summing normalised terms can overshoot 1 by a rounding error.
        self.queue.iter().sum::<f64>().clamp(0.0, 1.0)
    }

    /// Probability that an arrival abandons.
    ///
    /// An arrival at position `p` leaves that position at rate `N + p*gamma` (a service or an
    /// abandonment of one of the `p - 1` ahead moves it forward; its own patience ends it), and
    /// the chance of ever being served telescopes to `N / (N + p*gamma)`. Summed over the
    /// positions arrivals find, this equals `theta * E[queue] / lambda` exactly, without
    /// dividing by the arrival rate, so it stays defined at zero load and zero patience.
    pub fn prob_abandon(&self) -> f64 {
        if self.gamma.is_infinite() {
            return self.prob_wait();
        }
        let n = self.servers as f64;
        self.per_position(|p| p * self.gamma / (n + p * self.gamma))
            .clamp(0.0, 1.0)
    }

    /// Expected number of callers waiting (not yet with an agent).
    pub fn mean_queue_length(&self) -> f64 {
        self.queue
            .iter()
            .enumerate()
            .map(|(i, q)| i as f64 * q)
            .sum()
    }

    /// Mean wait over all arrivals: those answered at once (zero), those answered after a wait
    /// and those who abandon (their time until they hung up). Equals `E[queue] / lambda` by
    /// Little's law; computed per position (expected wait `p / (N + p*gamma)` AHTs at
    /// position `p`) so it stays defined at zero load.
    pub fn asa_all(&self) -> Duration {
        if self.gamma.is_infinite() {
            return Duration::ZERO;
        }
        let n = self.servers as f64;
        let mean_aht_units = self.per_position(|p| p / (n + p * self.gamma));
        duration_from_secs(mean_aht_units * self.aht.as_secs_f64())
    }

    /// Fraction of agent time spent handling calls: `E[busy agents] / N`. Below `A / N`
    /// because abandoned callers take no handle time. 0.0 with no agents.
    pub fn occupancy(&self) -> f64 {
        if self.servers == 0 {
            0.0
        } else {
            (self.mean_busy / self.servers as f64).clamp(0.0, 1.0)
        }
    }

    /// Fraction of ALL arrivals answered having waited at most `threshold` (abandoned callers
    /// count against it, as in an operator's service level).
    ///
    /// An arrival finding a free agent counts. An arrival at position `p` is answered within
    /// `t` iff it reaches the head and is taken before both `t` and its own patience run out.
    /// Its position is a small continuous-time Markov chain: from `p` it moves to `p - 1`
    /// (or, from 1, to "answered") at rate `N + (p-1)*gamma`, and to "abandoned" at rate
    /// `gamma`; callers behind never matter under FCFS. All arrivals are integrated in one
    /// pass by starting the chain from the distribution of positions they find, using
    /// uniformisation: every term is a non-negative sum (no cancellation, unlike the
    /// closed-form hypoexponential CDF, whose alternating coefficients blow up past a few
    /// dozen positions). Time is cut into slices of at most 32 expected jumps so the Poisson
    /// weights never underflow, and the integration stops early once under 1e-15 of the mass
    /// is still waiting.
    ///
    /// `None` only if the integration would exceed its work bound (5*10^7 updates), which takes
    /// a queue of many thousands of positions and a threshold of hours. Error is about 1e-12
    /// (the solver's truncated tail); the tests check it against a closed form to 1e-11.
    pub fn service_level(&self, threshold: Duration) -> Option<f64> {
        let t = threshold.as_secs_f64() / self.aht.as_secs_f64();
        let n = self.servers as f64;
        let g = self.gamma;
        let uniform_rate = n + self.queue.len() as f64 * g;
        if self.queue.is_empty() || t == 0.0 || g.is_infinite() || uniform_rate <= 0.0 {
            // Nobody waits, nobody is answered in zero time after waiting, or everyone who
            // would wait hangs up at once: only arrivals finding a free agent count.
            return Some(self.prob_free);
        }

        // step_prob[i]: chance one uniformised jump moves position i+1 forward.
        let step_prob: Vec<f64> = (0..self.queue.len())
            .map(|i| (n + i as f64 * g) / uniform_rate)
            .collect();
        let answer_prob = n / uniform_rate;
        let mut waiting = self.queue.clone();
        let mut answered = 0.0;
        let mut jumps_left = t * uniform_rate;
        let mut work: u64 = 0;
        let mut current = waiting.clone();
        let mut next = waiting.clone();

        while jumps_left > 0.0 {
            let slice = jumps_left.min(32.0);
            jumps_left -= slice;
            // acc = sum over n of Poisson(n; slice) * state after n jumps.
            let mut weight = (-slice).exp();
            let mut cum = weight;
            current.copy_from_slice(&waiting);
            let mut current_answered = answered;
            let mut acc: Vec<f64> = current.iter().map(|v| v * weight).collect();
            let mut acc_answered = current_answered * weight;
            let mut jumps = 0u32;
            while cum < 1.0 - 1e-15 && jumps < 400 {
                jumps += 1;
                // One jump of the uniformised chain. Position i+1 stays with the leftover
                // probability (its own exit rate is N + (i+1)*gamma, which is step_prob[i+1]'s
                // numerator), and receives from position i+2.
                current_answered += current[0] * answer_prob;
                for i in 0..current.len() {
                    let exit = (n + (i + 1) as f64 * g) / uniform_rate;
                    let inflow = current.get(i + 1).map_or(0.0, |v| v * step_prob[i + 1]);
                    next[i] = current[i] * (1.0 - exit) + inflow;
                }
                std::mem::swap(&mut current, &mut next);
                work += current.len() as u64;
                if work > MAX_SERVICE_LEVEL_WORK {
                    return None;
                }
                weight *= slice / jumps as f64;
                cum += weight;
                for (a, v) in acc.iter_mut().zip(&current) {
                    *a += v * weight;
                }
                acc_answered += current_answered * weight;
            }
            // The Poisson tail left out (< 1e-15) goes to the last state, so no mass is lost.
            let rest = (1.0 - cum).max(0.0);
            for (a, v) in acc.iter_mut().zip(&current) {
                *a += v * rest;
            }
            acc_answered += current_answered * rest;
            waiting = acc;
            answered = acc_answered;
            if waiting.iter().sum::<f64>() < 1e-15 {
                break;
            }
        }
        Some((self.prob_free + answered).clamp(0.0, 1.0))
    }

    /// Sum over positions `p = 1..` of P(arrival becomes position p) * f(p).
    fn per_position(&self, f: impl Fn(f64) -> f64) -> f64 {
        self.queue
            .iter()
            .enumerate()
            .map(|(i, q)| q * f((i + 1) as f64))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_rng::SplitMix64;
    use super::*;

    const AHT: Duration = Duration::from_secs(180);

    /// Erlang C from its textbook definition with factorials, independent of the recursion.
    fn erlang_c_by_factorials(n: u32, a: f64) -> f64 {
        let mut term = 1.0; // a^k / k!
        let mut below = 0.0;
        for k in 0..n {
            below += term;
            term *= a / (k + 1) as f64;
        }
        let top = term * n as f64 / (n as f64 - a);
        top / (below + top)
    }

    #[test]
    fn erlang_b_matches_published_table_value() {
        // B(5, 3) = (3^5/5!) / sum_{k<=5} 3^k/k! = 2.025 / 18.4 = 0.110054...
        assert!((erlang_b(5, 3.0) - 0.110_054_347_8).abs() < 1e-9);
        assert!((erlang_b(1, 1.0) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn erlang_c_ten_agents_eight_erlangs_waits_forty_one_percent() {
        let c = erlang_c(10, 8.0);
        assert!((c - 0.409_2).abs() < 1e-4, "{c}");
        assert!((c - erlang_c_by_factorials(10, 8.0)).abs() < 1e-12);
    }

    #[test]
    fn erlang_c_recursion_agrees_with_factorial_form() {
        for (n, a) in [(1, 0.5), (2, 1.9), (7, 3.3), (20, 17.5), (30, 29.9)] {
            let rec = erlang_c(n, a);
            let direct = erlang_c_by_factorials(n, a);
            assert!(
                (rec - direct).abs() < 1e-11,
                "n={n} a={a}: {rec} vs {direct}"
            );
        }
    }

    #[test]
    fn erlang_b_and_c_stay_finite_at_thousands_of_servers() {
        // A^N/N! overflows f64 here; the recursion must not.
        let b = erlang_b(5000, 4950.0);
        let c = erlang_c(5000, 4950.0);
        assert!(b > 0.0 && b < 0.01, "{b}");
        assert!(c > b && c < 1.0, "{c}");
        // Half-Whitt: beta = (N - A)/sqrt(A) = 0.71 puts P(wait) near 0.4 at this scale.
        assert!(c > 0.3 && c < 0.5, "{c}");
    }

    #[test]
    fn erlang_functions_clamp_nonsense_loads() {
        assert_eq!(erlang_b(3, f64::NAN), 0.0);
        assert_eq!(erlang_b(3, -1.0), 0.0);
        assert_eq!(erlang_b(3, f64::INFINITY), 1.0);
        assert_eq!(erlang_b(0, 2.0), 1.0);
        assert_eq!(erlang_c(3, 3.0), 1.0);
        assert_eq!(erlang_c(3, 7.0), 1.0);
        assert_eq!(erlang_c(0, 0.0), 1.0);
        assert_eq!(erlang_c(3, f64::NAN), 0.0);
    }

    #[test]
    fn erlang_c_service_level_and_asa_match_closed_forms() {
        // 10 agents, 8 erlangs, AHT 180 s: C = 0.40918, N - A = 2.
        let q = ErlangC::new(10, 8.0, AHT);
        let c = erlang_c_by_factorials(10, 8.0);
        let sl = q.service_level(Duration::from_secs(20));
        assert!((sl - (1.0 - c * (-2.0_f64 * 20.0 / 180.0).exp())).abs() < 1e-12);
        assert!((sl - 0.672_4).abs() < 1e-3, "{sl}");
        let asa = q.asa().unwrap(); // stable: 8 < 10
        assert!((asa.as_secs_f64() - c * 90.0).abs() < 1e-6, "{asa:?}");
        assert!((q.occupancy() - 0.8).abs() < 1e-15);
        assert!((q.service_level(Duration::ZERO) - (1.0 - c)).abs() < 1e-12);
    }

    #[test]
    fn unstable_erlang_c_reports_no_asa_and_zero_service_level() {
        let q = ErlangC::new(10, 10.0, AHT);
        assert_eq!(q.asa(), None);
        assert_eq!(q.service_level(Duration::from_secs(20)), 0.0);
        assert_eq!(q.occupancy(), 1.0);
        assert_eq!(ErlangC::new(10, 25.0, AHT).occupancy(), 1.0);
    }

    #[test]
    fn staffing_for_eighty_twenty_is_the_smallest_that_meets_it() {
        // 100 calls per 30 min at 180 s AHT = 10 erlangs, 80% within 20 s.
        let threshold = Duration::from_secs(20);
        let n = agents_for_service_level(10.0, AHT, threshold, 0.8).unwrap();
        let sl = |n| ErlangC::new(n, 10.0, AHT).service_level(threshold);
        assert!(sl(n) >= 0.8, "{}", sl(n));
        assert!(sl(n - 1) < 0.8, "{}", sl(n - 1));
        assert_eq!(n, 14);
        // The usual worked example: 13 agents answer 79.6% within 20 s, 14 answer 88.8%.
        assert!((sl(13) - 0.795_6).abs() < 1e-4 && (sl(14) - 0.888_4).abs() < 1e-4);
    }

    #[test]
    fn staffing_search_handles_edges_without_panicking() {
        let t = Duration::from_secs(20);
        assert_eq!(agents_for_service_level(0.0, AHT, t, 0.8), Some(0));
        assert_eq!(agents_for_service_level(f64::NAN, AHT, t, 0.8), None);
        assert_eq!(agents_for_service_level(f64::INFINITY, AHT, t, 0.8), None);
        assert_eq!(agents_for_service_level(5.0, AHT, t, 1.5), None);
        assert_eq!(agents_for_service_level(5.0, AHT, t, f64::NAN), None);
        // A non-positive target still needs a stable queue.
        assert_eq!(agents_for_service_level(5.0, AHT, t, 0.0), Some(6));
        assert_eq!(agents_for_service_level(5.5, AHT, t, -1.0), Some(6));
        assert_eq!(agents_for_service_level(2e6, AHT, t, 0.8), None);
        // A target of exactly 1.0 is reachable: C underflows far enough above the load.
        let n = agents_for_service_level(5.0, AHT, t, 1.0).unwrap();
        assert!(n > 5 && n < 200, "{n}");
    }

    #[test]
    fn erlang_a_converges_to_erlang_c_when_patience_is_very_long() {
        let c = ErlangC::new(10, 8.0, AHT);
        let a = ErlangA::new(10, 8.0, AHT, AHT * 100_000).unwrap();
        assert!(
            (a.prob_wait() - c.prob_wait()).abs() < 1e-4,
            "{}",
            a.prob_wait()
        );
        let (asa_a, asa_c) = (a.asa_all().as_secs_f64(), c.asa().unwrap().as_secs_f64());
        assert!((asa_a - asa_c).abs() / asa_c < 1e-3, "{asa_a} vs {asa_c}");
        assert!((a.occupancy() - 0.8).abs() < 1e-4);
        assert!(a.prob_abandon() < 1e-4);
        let t = Duration::from_secs(20);
        let (sl_a, sl_c) = (a.service_level(t).unwrap(), c.service_level(t));
        assert!((sl_a - sl_c).abs() < 1e-4, "{sl_a} vs {sl_c}");
    }

    #[test]
    fn erlang_a_abandonment_grows_with_load() {
        let mut last = 0.0;
        for a in [6.0, 8.0, 9.0, 10.0, 11.0, 13.0, 16.0] {
            let p = ErlangA::new(10, a, AHT, AHT * 2).unwrap().prob_abandon();
            assert!(p > last, "load {a}: {p} <= {last}");
            last = p;
        }
        // At 160% load at least the excess 6 erlangs of 16 must leave unserved.
        assert!(last > 6.0 / 16.0, "{last}");
    }

    #[test]
    fn erlang_a_per_position_forms_agree_with_little_and_flow_balance() {
        let q = ErlangA::new(10, 11.0, AHT, Duration::from_secs(90)).unwrap();
        let lambda = 11.0 / 180.0;
        let theta = 1.0 / 90.0;
        // Abandonment: theta * E[Lq] / lambda.
        let little_abandon = theta * q.mean_queue_length() / lambda;
        assert!((q.prob_abandon() - little_abandon).abs() < 1e-10);
        // Mean wait: E[Lq] / lambda.
        let little_wait = q.mean_queue_length() / lambda;
        assert!((q.asa_all().as_secs_f64() - little_wait).abs() < 1e-6);
        // Served throughput lambda*(1 - P(ab)) equals mu * E[busy].
        let busy = q.occupancy() * 10.0;
        assert!(
            (busy - 11.0 * (1.0 - q.prob_abandon())).abs() < 1e-9,
            "{busy}"
        );
    }

    #[test]
    fn erlang_a_solves_five_thousand_agents_at_full_load() {
        // Critical load (A = N): Erlang C has no answer, Erlang A does. With patience = AHT
        // every caller in the system leaves at the same rate whether talking or waiting, so
        // the chain is exactly M/M/infinity: Poisson(A) callers in the system. Check against
        // that, summed here in log space independently of the solver.
        let (n, a) = (5000_usize, 5000.0_f64);
        let q = ErlangA::new(n as u32, a, AHT, AHT).unwrap();
        let mut ln_fact = 0.0;
        let (mut p_wait, mut lq) = (0.0, 0.0);
        for k in 0..20_000_usize {
            if k > 0 {
                ln_fact += (k as f64).ln();
            }
            let pmf = (-a + k as f64 * a.ln() - ln_fact).exp();
            if k >= n {
                p_wait += pmf;
                lq += (k - n) as f64 * pmf;
            }
        }
        assert!(
            (q.prob_wait() - p_wait).abs() < 1e-9,
            "{} vs {p_wait}",
            q.prob_wait()
        );
        assert!(
            (q.mean_queue_length() - lq).abs() < 1e-7,
            "{} vs {lq}",
            q.mean_queue_length()
        );
        // Diffusion scale: about half wait, sqrt(N) * E[max(Z, 0)] = 28.2 callers in line.
        assert!(
            (p_wait - 0.5).abs() < 0.01 && (lq - 28.2).abs() < 0.5,
            "{p_wait} {lq}"
        );
        let busy = q.occupancy() * 5000.0;
        assert!(
            (busy - 5000.0 * (1.0 - q.prob_abandon())).abs() < 1e-6,
            "{busy}"
        );
        let sl = q.service_level(Duration::from_secs(20)).unwrap();
        assert!(sl > 1.0 - p_wait && sl < 1.0 - q.prob_abandon(), "{sl}");
    }

    #[test]
    fn erlang_a_matches_erlang_c_at_five_thousand_agents_with_long_patience() {
        let q = ErlangA::new(5000, 4950.0, AHT, AHT * 1_000_000).unwrap();
        let c = ErlangC::new(5000, 4950.0, AHT);
        assert!(
            (q.prob_wait() - c.prob_wait()).abs() < 1e-4,
            "{}",
            q.prob_wait()
        );
        let t = Duration::from_secs(20);
        let (sl_a, sl_c) = (q.service_level(t).unwrap(), c.service_level(t));
        assert!((sl_a - sl_c).abs() < 1e-4, "{sl_a} vs {sl_c}");
    }

    #[test]
    fn erlang_a_with_zero_patience_is_erlang_b() {
        let q = ErlangA::new(5, 3.0, AHT, Duration::ZERO).unwrap();
        let b = erlang_b(5, 3.0);
        assert!((q.prob_wait() - b).abs() < 1e-12);
        assert!((q.prob_abandon() - b).abs() < 1e-12);
        assert_eq!(q.asa_all(), Duration::ZERO);
        assert!((q.service_level(Duration::from_secs(20)).unwrap() - (1.0 - b)).abs() < 1e-12);
        assert!((q.occupancy() - 3.0 * (1.0 - b) / 5.0).abs() < 1e-12);
    }

    #[test]
    fn erlang_a_edges_answer_instead_of_panicking() {
        assert_eq!(ErlangA::new(5, f64::NAN, AHT, AHT), None);
        assert_eq!(ErlangA::new(5, -1.0, AHT, AHT), None);
        assert_eq!(ErlangA::new(5, 1.0, Duration::ZERO, AHT), None);
        // Overload with near-infinite patience needs more than MAX_STATES states.
        assert_eq!(ErlangA::new(10, 12.0, AHT, Duration::MAX), None);

        let idle = ErlangA::new(5, 0.0, AHT, AHT).unwrap();
        assert_eq!(idle.prob_wait(), 0.0);
        assert_eq!(idle.service_level(Duration::from_secs(20)), Some(1.0));

        // Nobody staffed: everyone waits out their patience and leaves.
        let empty = ErlangA::new(0, 2.0, AHT, Duration::from_secs(60)).unwrap();
        assert!((empty.prob_wait() - 1.0).abs() < 1e-12);
        assert!((empty.prob_abandon() - 1.0).abs() < 1e-12);
        assert!((empty.asa_all().as_secs_f64() - 60.0).abs() < 1e-6);
        assert_eq!(empty.service_level(Duration::from_secs(20)), Some(0.0));
        assert_eq!(empty.occupancy(), 0.0);
    }

    /// Result of simulating an M/M/N+M queue, FCFS.
    struct Simulated {
        answered_within: f64,
        abandoned: f64,
        mean_wait: f64,
    }

    /// Seeded M/M/N+M simulation. FCFS with abandonment can be played caller by caller in
    /// arrival order: the agent a caller would get is the earliest free one once everyone
    /// ahead has been placed, and a caller who abandons takes nothing from anyone behind.
    fn simulate(
        n: usize,
        erlangs: f64,
        patience_s: f64,
        threshold_s: f64,
        calls: u32,
    ) -> Simulated {
        let aht_s = AHT.as_secs_f64();
        let mut rng = SplitMix64::new(0x5EED_E71A);
        let mut free_at = vec![0.0_f64; n];
        let mut now = 0.0;
        let (mut within, mut abandoned, mut total_wait) = (0u32, 0u32, 0.0);
        for _ in 0..calls {
            now += rng.exp(erlangs / aht_s);
            let patience = rng.exp(1.0 / patience_s);
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
            let wait = (free - now).max(0.0);
            if wait > patience {
                abandoned += 1;
                total_wait += patience;
            } else {
                total_wait += wait;
                if wait <= threshold_s {
                    within += 1;
                }
                free_at[agent] = now + wait + rng.exp(1.0 / aht_s);
            }
        }
        let calls = calls as f64;
        Simulated {
            answered_within: within as f64 / calls,
            abandoned: abandoned as f64 / calls,
            mean_wait: total_wait / calls,
        }
    }

    #[test]
    fn erlang_a_service_level_matches_monte_carlo() {
        // Overloaded on purpose (110%): a long line, many abandons, threshold inside the wait.
        let (n, a, patience, threshold) = (4, 4.4, 120.0, 30.0);
        let q = ErlangA::new(n, a, AHT, Duration::from_secs_f64(patience)).unwrap();
        let sim = simulate(n as usize, a, patience, threshold, 1_000_000);
        let sl = q.service_level(Duration::from_secs_f64(threshold)).unwrap();
        assert!(
            (sl - sim.answered_within).abs() < 0.01,
            "{sl} vs {}",
            sim.answered_within
        );
        assert!((q.prob_abandon() - sim.abandoned).abs() < 0.01);
        let wait = q.asa_all().as_secs_f64();
        assert!(
            (wait - sim.mean_wait).abs() / wait < 0.03,
            "{wait} vs {}",
            sim.mean_wait
        );
        // And the model is not trivially right: most callers wait, many past the threshold.
        assert!(q.prob_wait() > 0.55 && sl < 0.55, "{} {sl}", q.prob_wait());
    }

    #[test]
    fn erlang_a_service_level_matches_monte_carlo_when_underloaded() {
        let (n, a, patience, threshold) = (12, 10.0, 300.0, 20.0);
        let q = ErlangA::new(n, a, AHT, Duration::from_secs_f64(patience)).unwrap();
        let sim = simulate(n as usize, a, patience, threshold, 1_000_000);
        let sl = q.service_level(Duration::from_secs_f64(threshold)).unwrap();
        assert!(
            (sl - sim.answered_within).abs() < 0.01,
            "{sl} vs {}",
            sim.answered_within
        );
        assert!((q.prob_abandon() - sim.abandoned).abs() < 0.005);
    }

    #[test]
    fn erlang_a_service_level_matches_closed_form_for_a_short_queue() {
        // 2 agents, 1.5 erlangs, patience 2 AHT (gamma = 0.5), threshold 0.5 AHT. Positions
        // beyond ~25 carry < 1e-17, so the hypoexponential closed form (whose alternating
        // coefficients ruin it for long queues) is still accurate: an independent check of
        // both the position model and the uniformisation.
        let (n, a, g, t) = (2.0_f64, 1.5_f64, 0.5_f64, 0.5_f64);
        let mut weights = vec![1.0_f64];
        for k in 1..=40_usize {
            let death = if k <= 2 {
                k as f64
            } else {
                n + (k - 2) as f64 * g
            };
            weights.push(weights[k - 1] * a / death);
        }
        let total: f64 = weights.iter().sum();
        let mut expected = (weights[0] + weights[1]) / total;
        for p in 1..=30_usize {
            // Served within t = N/(N + p g) * P(sum of Exp(N + i g), i = 1..=p, <= t).
            let rates: Vec<f64> = (1..=p).map(|i| n + i as f64 * g).collect();
            let mut survival = 0.0;
            for (i, ri) in rates.iter().enumerate() {
                let coef: f64 = rates
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, rj)| rj / (rj - ri))
                    .product();
                survival += coef * (-ri * t).exp();
            }
            let served = n / (n + p as f64 * g) * (1.0 - survival);
            expected += weights[p + 1] / total * served;
        }
        let aht = Duration::from_secs(100);
        let q = ErlangA::new(2, a, aht, aht * 2).unwrap();
        let sl = q.service_level(aht / 2).unwrap();
        assert!((sl - expected).abs() < 1e-11, "{sl} vs {expected}");
        assert!(sl > 0.6 && sl < 0.95, "{sl}");
    }

    #[test]
    fn erlang_a_service_level_grows_with_threshold_towards_answered_share() {
        let q = ErlangA::new(10, 10.0, AHT, AHT).unwrap();
        let mut last = q.service_level(Duration::ZERO).unwrap();
        assert!((last - (1.0 - q.prob_wait())).abs() < 1e-12);
        for secs in [5, 20, 60, 300, 3600] {
            let sl = q.service_level(Duration::from_secs(secs)).unwrap();
            assert!(sl > last, "{secs}s: {sl} <= {last}");
            last = sl;
        }
        // With an hour's threshold everybody answered counts: 1 - P(abandon).
        assert!((last - (1.0 - q.prob_abandon())).abs() < 1e-9, "{last}");
    }
}
