//! What to do after a delivery attempt: the retry policy, pure (time and jitter are inputs).
//!
//! Follows the Standard Webhooks specification's delivery advice (retry on a schedule over
//! days with jitter; `410 Gone` disables the endpoint; 429, 502, 503 and 504 are throttling and
//! their `Retry-After` is honoured; redirects are not followed) with Svix's schedule, stretched
//! to about three days as Stripe's retries run:
//!
//! ```text
//! attempt          1   2    3      4       5    6    7     8     9     10    11    12
//! after previous   -   5s   5min   30min   2h   5h   10h   10h   10h   10h   10h   10h
//! (the last 2 d 19 h 35 min after the first, nominally; if it fails the message is given up)
//! ```
//!
//! Every delay is spread by ±20% ([`JITTER_FRACTION`]) so that messages that failed together
//! (an endpoint down for an hour) do not all come back in the same second: `jitter` in `[0, 1)`
//! maps linearly onto `[0.8, 1.2)` of the delay. Over the whole schedule the last attempt lands
//! between about 2.25 and 3.4 days after the first.
//!
//! ```text
//!              2xx ──────────────────────────────────────────▶ Delivered
//!              410 ──────────────────────────────────────────▶ Disable(Gone410)
//! any other    endpoint failing for 5 days (this failure too) ▶ Disable(FailingFor5Days)
//! failure ───▶ attempt 12 was the last ──────────────────────▶ GiveUp (this message only)
//!              otherwise ────────────────────────────────────▶ Retry { after }
//! ```
//!
//! Failures are every status outside 2xx (1xx and 3xx too: the client follows no redirects, and
//! a receiver that moved must have its URL changed by its owner), a timeout, and a transport
//! error (DNS, refused address, connection, TLS). A throttling answer (429, 502, 503, 504) is a
//! failure like the others, and uses up an attempt; what it changes is that its `Retry-After`
//! (seconds or an HTTP-date) pushes the retry later: the retry comes no sooner than the
//! schedule says and no sooner than the receiver asked, where the receiver's wish is capped at
//! [`RETRY_AFTER_CAP`] (a wish beyond it is treated as the cap, so a receiver cannot park a
//! message for a month) and spread upward by up to 20% so that throttled messages do not
//! return together. A `Retry-After` that does not parse is ignored.
//!
//! The five-day rule is the endpoint's, not the message's: the caller passes when the
//! endpoint's current run of failures began (reset by any success), and the first failure five
//! days or more into that run disables it, as Svix does.

use std::time::{Duration, SystemTime};

/// Wait after attempt `n` (1-based) failed, before attempt `n + 1`: Svix's
/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then 10 h more times until about three days are covered.
pub const SCHEDULE: [Duration; 11] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Attempts per message: the first, then one per [`SCHEDULE`] entry.
pub const MAX_ATTEMPTS: u32 = SCHEDULE.len() as u32 + 1;

/// Each delay is spread by this fraction either way.
pub const JITTER_FRACTION: f64 = 0.2;

/// The longest a `Retry-After` can push a retry (the schedule's longest step).
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(10 * 3600);

/// An endpoint failing this long (every attempt to it failing) is disabled.
pub const DISABLE_AFTER_FAILING: Duration = Duration::from_secs(5 * 24 * 3600);

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The endpoint answered. `retry_after` is the raw `Retry-After` header value, if one came.
    Response {
        status: u16,
        retry_after: Option<&'a str>,
    },
    /// No answer within the request timeout.
    Timeout,
    /// No answer at all: DNS, a refused address, connection refused or reset, TLS.
    Transport,
}

/// One finished attempt and what the decision needs besides.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attempt<'a> {
    /// Which attempt of this message it was, 1 for the first (0 is read as 1).
    pub number: u32,
    pub outcome: Outcome<'a>,
    /// When the endpoint's current run of failures began; `None` if the endpoint was healthy
    /// until this attempt (its failure, if it failed, starts the run).
    pub failing_since: Option<SystemTime>,
    /// The time the attempt ended (wall clock: `Retry-After` dates and the five-day run are
    /// wall-clock times, and both outlive a restart).
    pub now: SystemTime,
    /// Where in the ±20% window the next retry lands, in `[0, 1)` (the caller draws it; values
    /// outside are clamped, NaN reads as 0.5).
    pub jitter: f64,
}

/// Why an endpoint is disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisableReason {
    /// It answered `410 Gone`: the receiver says it will never take these again.
    Gone410,
    /// Every attempt to it has failed for [`DISABLE_AFTER_FAILING`].
    FailingFor5Days,
}

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The receiver took the message (2xx).
    Delivered,
    /// Try this message again after this long.
    Retry { after: Duration },
    /// Stop sending anything to this endpoint (this message is not delivered).
    Disable(DisableReason),
    /// This message's attempts are used up; the endpoint stays enabled.
    GiveUp,
}

/// The decision after `attempt`.
pub fn decide(attempt: &Attempt<'_>) -> Decision {
    let retry_after = match attempt.outcome {
        Outcome::Response { status, .. } if (200..300).contains(&status) => {
            return Decision::Delivered;
        }
        Outcome::Response { status: 410, .. } => return Decision::Disable(DisableReason::Gone410),
        Outcome::Response {
            status: 429 | 502 | 503 | 504,
            retry_after: Some(value),
        } => parse_retry_after(value, attempt.now),
        Outcome::Response { .. } | Outcome::Timeout | Outcome::Transport => None,
    };

    let failing_since = attempt.failing_since.unwrap_or(attempt.now);
    // A run that starts in the future (clocks stepped back) has lasted no time.
    let failing_for = attempt
        .now
        .duration_since(failing_since)
        .unwrap_or(Duration::ZERO);
    if failing_for >= DISABLE_AFTER_FAILING {
        return Decision::Disable(DisableReason::FailingFor5Days);
    }

    let number = attempt.number.max(1);
    let Some(&step) = SCHEDULE.get(number as usize - 1) else {
        return Decision::GiveUp;
    };
    let jitter = unit_jitter(attempt.jitter);
    let scheduled = step.mul_f64(1.0 - JITTER_FRACTION + 2.0 * JITTER_FRACTION * jitter);
    let after = match retry_after {
        Some(wish) => {
            let wish = wish
                .min(RETRY_AFTER_CAP)
                .mul_f64(1.0 + JITTER_FRACTION * jitter);
            scheduled.max(wish)
        }
        None => scheduled,
    };
    Decision::Retry { after }
}

/// A `Retry-After` value as a wait from `now`: delay-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2026 07:28:00 GMT`, and the obsolete forms RFC 9110 says to accept). A date in
/// the past is no wait. `None` if it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits, so the one way to fail is overflow: a wait that long is capped anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `jitter` forced into `[0, 1)`: `Duration::mul_f64` panics on a negative or non-finite
/// factor, and the caller's number is input like any other.
fn unit_jitter(jitter: f64) -> f64 {
    if jitter.is_nan() {
        0.5
    } else {
        jitter.clamp(0.0, 1.0 - f64::EPSILON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    fn t0() -> SystemTime {
        // 2026-12-07T00:00:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_065_600)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn response(status: u16) -> Outcome<'static> {
        Outcome::Response {
            status,
            retry_after: None,
        }
    }

    /// Attempt `number` ending in `outcome` at t0, endpoint healthy before, jitter at the middle
    /// of the window (factor 1.0, so delays read as the schedule writes them).
    fn attempt(number: u32, outcome: Outcome<'_>) -> Attempt<'_> {
        Attempt {
            number,
            outcome,
            failing_since: None,
            now: t0(),
            jitter: 0.5,
        }
    }

    fn retry(s: u64) -> Decision {
        Decision::Retry { after: secs(s) }
    }

    #[test]
    fn outcome_table() {
        let cases: &[(&str, Attempt<'_>, Decision)] = &[
            (
                "200 is delivered",
                attempt(1, response(200)),
                Decision::Delivered,
            ),
            (
                "204 is delivered",
                attempt(3, response(204)),
                Decision::Delivered,
            ),
            (
                "299 is delivered",
                attempt(1, response(299)),
                Decision::Delivered,
            ),
            (
                "2xx on the last attempt is delivered",
                attempt(MAX_ATTEMPTS, response(200)),
                Decision::Delivered,
            ),
            (
                "410 disables the endpoint",
                attempt(1, response(410)),
                Decision::Disable(DisableReason::Gone410),
            ),
            ("500 retries in 5 s", attempt(1, response(500)), retry(5)),
            ("404 retries", attempt(1, response(404)), retry(5)),
            ("400 retries", attempt(2, response(400)), retry(300)),
            (
                "302 is a failure: redirects are not followed",
                attempt(1, response(302)),
                retry(5),
            ),
            ("301 is a failure", attempt(1, response(301)), retry(5)),
            ("1xx is a failure", attempt(1, response(100)), retry(5)),
            (
                "a nonsense status is a failure",
                attempt(1, response(999)),
                retry(5),
            ),
            (
                "a timeout retries",
                attempt(3, Outcome::Timeout),
                retry(30 * 60),
            ),
            (
                "a transport error retries",
                attempt(4, Outcome::Transport),
                retry(2 * H),
            ),
            (
                "429 without Retry-After follows the schedule",
                attempt(1, response(429)),
                retry(5),
            ),
            (
                "failure on the last attempt gives the message up",
                attempt(MAX_ATTEMPTS, response(500)),
                Decision::GiveUp,
            ),
            (
                "410 on the last attempt still disables",
                attempt(MAX_ATTEMPTS, response(410)),
                Decision::Disable(DisableReason::Gone410),
            ),
            (
                "attempt 0 reads as the first",
                attempt(0, response(500)),
                retry(5),
            ),
            (
                "an attempt number past the end gives up",
                attempt(u32::MAX, Outcome::Timeout),
                Decision::GiveUp,
            ),
        ];
        for (name, a, want) in cases {
            assert_eq!(decide(a), *want, "{name}");
        }
    }

    #[test]
    fn schedule_is_svixs_then_ten_hours_to_about_three_days() {
        let mut total = Duration::ZERO;
        let mut delays = Vec::new();
        for n in 1..MAX_ATTEMPTS {
            let Decision::Retry { after } = decide(&attempt(n, response(500))) else {
                panic!("attempt {n} should retry");
            };
            delays.push(after.as_secs());
            total += after;
        }
        assert_eq!(
            delays,
            [
                5,
                300,
                1800,
                2 * H,
                5 * H,
                10 * H,
                10 * H,
                10 * H,
                10 * H,
                10 * H,
                10 * H
            ]
        );
        assert_eq!(MAX_ATTEMPTS, 12);
        // 2 d 19 h 35 min 5 s: about three days.
        assert_eq!(total, secs(2 * 24 * H + 19 * H + 35 * 60 + 5));
        assert_eq!(
            decide(&attempt(MAX_ATTEMPTS, response(500))),
            Decision::GiveUp
        );
    }

    #[test]
    fn jitter_spreads_each_delay_by_twenty_percent_either_way() {
        let at = |n, jitter| {
            decide(&Attempt {
                jitter,
                ..attempt(n, Outcome::Timeout)
            })
        };
        let cases: &[(u32, f64, Duration)] = &[
            (1, 0.0, Duration::from_secs(4)),
            (1, 0.25, Duration::from_millis(4500)),
            (1, 0.75, Duration::from_millis(5500)),
            (6, 0.0, secs(8 * H)),
            (6, 1.0 - 1e-12, secs(12 * H)),
            // Outside [0, 1) is clamped, NaN is the middle: never a panic.
            (6, -3.0, secs(8 * H)),
            (6, 7.0, secs(12 * H)),
            (6, f64::INFINITY, secs(12 * H)),
            (6, f64::NEG_INFINITY, secs(8 * H)),
            (6, f64::NAN, secs(10 * H)),
        ];
        for &(n, jitter, want) in cases {
            let Decision::Retry { after } = at(n, jitter) else {
                panic!("retry expected");
            };
            // Within a millisecond (f64 scaling of whole hours).
            let diff = after.abs_diff(want);
            assert!(
                diff < Duration::from_millis(1),
                "n={n} jitter={jitter}: {after:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn throttles_honour_retry_after_in_seconds_and_as_a_date() {
        // Jitter 0: the schedule's steps are at 80% (5 s reads 4 s, 2 h reads 96 min) and the
        // receiver's wish is exact, so each row shows which of the two won.
        let in_2h = httpdate::fmt_http_date(t0() + secs(2 * H));
        let past = httpdate::fmt_http_date(t0() - secs(60));
        let cases: &[(&str, u16, &str, u32, Decision)] = &[
            (
                "429 asking 120 s beats the 5 s step",
                429,
                "120",
                1,
                retry(120),
            ),
            ("502 asking 120 s", 502, "120", 1, retry(120)),
            ("503 asking 120 s", 503, "120", 1, retry(120)),
            ("504 asking 120 s", 504, "120", 1, retry(120)),
            ("whitespace around seconds", 429, " 120 ", 1, retry(120)),
            (
                "a shorter wish than the schedule keeps the schedule",
                429,
                "60",
                4,
                retry(96 * 60),
            ),
            ("an HTTP-date two hours ahead", 429, &in_2h, 1, retry(2 * H)),
            (
                "an HTTP-date in the past keeps the schedule",
                503,
                &past,
                1,
                retry(4),
            ),
            (
                "a wish past the cap is capped",
                429,
                "999999",
                1,
                retry(10 * H),
            ),
            (
                "overflowing seconds are capped",
                429,
                "99999999999999999999999",
                1,
                retry(10 * H),
            ),
            ("an unparseable value is ignored", 429, "soon", 1, retry(4)),
            ("a negative value is ignored", 429, "-5", 1, retry(4)),
            ("an empty value is ignored", 429, "", 2, retry(240)),
            (
                "Retry-After on a non-throttle status is ignored",
                500,
                "7200",
                1,
                retry(4),
            ),
            (
                "Retry-After on 410 does not stop the disable",
                410,
                "60",
                1,
                Decision::Disable(DisableReason::Gone410),
            ),
            (
                "a throttle on the last attempt gives up",
                429,
                "60",
                MAX_ATTEMPTS,
                Decision::GiveUp,
            ),
        ];
        for (name, status, value, n, want) in cases {
            let a = Attempt {
                jitter: 0.0,
                ..attempt(
                    *n,
                    Outcome::Response {
                        status: *status,
                        retry_after: Some(value),
                    },
                )
            };
            assert_eq!(decide(&a), *want, "{name}");
        }
    }

    #[test]
    fn retry_after_is_spread_upward_only() {
        // At jitter 0 the schedule's 5 s becomes 4 s, but the receiver's 120 s stays 120 s:
        // honouring it means never sooner.
        let throttled = |jitter| {
            decide(&Attempt {
                jitter,
                ..attempt(
                    1,
                    Outcome::Response {
                        status: 429,
                        retry_after: Some("120"),
                    },
                )
            })
        };
        assert_eq!(throttled(0.0), retry(120));
        assert_eq!(throttled(0.5), retry(132));
    }

    #[test]
    fn obsolete_http_date_forms_are_read() {
        // RFC 850 and asctime forms, which RFC 9110 says recipients accept.
        let now = SystemTime::UNIX_EPOCH + secs(784_111_777 - 60);
        for v in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_retry_after(v, now), Some(secs(60)), "{v}");
        }
    }

    #[test]
    fn endpoint_failing_for_five_days_is_disabled() {
        let since = |ago: Duration| Attempt {
            failing_since: Some(t0() - ago),
            ..attempt(3, response(500))
        };
        assert_eq!(decide(&since(DISABLE_AFTER_FAILING - secs(1))), retry(1800));
        assert_eq!(
            decide(&since(DISABLE_AFTER_FAILING)),
            Decision::Disable(DisableReason::FailingFor5Days)
        );
        // A success is a success however long the endpoint had failed.
        let ok = Attempt {
            outcome: response(200),
            ..since(DISABLE_AFTER_FAILING * 2)
        };
        assert_eq!(decide(&ok), Decision::Delivered);
        // Disabling wins over giving the message up.
        let last = Attempt {
            number: MAX_ATTEMPTS,
            ..since(DISABLE_AFTER_FAILING)
        };
        assert_eq!(
            decide(&last),
            Decision::Disable(DisableReason::FailingFor5Days)
        );
    }

    #[test]
    fn a_failure_run_starting_in_the_future_counts_as_just_begun() {
        let a = Attempt {
            failing_since: Some(t0() + secs(DISABLE_AFTER_FAILING.as_secs() * 3)),
            ..attempt(1, Outcome::Transport)
        };
        assert_eq!(decide(&a), retry(5));
    }
}
