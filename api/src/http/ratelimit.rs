//! Token buckets keyed by API key or client address, sans-IO (time is an argument).
//!
//! Why not `tower_governor` (which DESIGN.md names): the bucket to charge is only known after
//! the key is verified (a valid key is charged to itself, anything else to its address, and an
//! uncached key to its address *before* the store is asked), which is a decision inside our
//! authentication step rather than a key extractor in front of it; governor's keyed store has
//! no hard cap on keys (only `retain_recent`, which someone must call); and the 429 must be our
//! JSON with `Retry-After`. This is ~100 lines with a hard bound, and no new dependencies
//! (governor, dashmap, quanta, and tonic by default).
//!
//! Classes: the middleware keeps one limiter per class ([`RateClass`]), each with its own
//! buckets, so one key has one bucket per class. Wallboards hold the live feed open and poll
//! queue figures; a display key shared by 200 screens would spend the ordinary API budget on
//! connecting alone (98 of 200 answered 429 when both shared one bucket), and the screens
//! would then starve the same key's ordinary requests. The live class has a higher rate and
//! burst, and what it spends is not taken from the API class.
//!
//! Memory: at most `max_buckets` buckets, in 16 mutex-guarded shards. When a shard is full,
//! buckets that have refilled to `burst` go first (forgetting them changes nothing: a new bucket
//! starts full); if that is not enough, arbitrary buckets go until the shard is 7/8 full, so the
//! sweep cost is amortised. An evicted busy client gets a fresh burst, which is the price of the
//! bound. IPv6 clients are keyed by their /64, which is what one host can pick addresses from.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

const SHARDS: usize = 16;

/// Whose bucket a request is charged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BucketKey {
    Key(Uuid),
    Addr(IpAddr),
}

impl BucketKey {
    /// An address bucket; IPv6 addresses are reduced to their /64.
    pub fn addr(ip: IpAddr) -> BucketKey {
        match ip {
            IpAddr::V4(_) => BucketKey::Addr(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => BucketKey::Addr(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    BucketKey::Addr(IpAddr::V6(prefix.into()))
                }
            },
        }
    }
}

/// Which budget a request is charged to (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateClass {
    /// Every route but the live ones.
    Api,
    /// The live feed and what wallboards poll ([`HttpConfig::live_paths`](super::HttpConfig)).
    Live,
}

impl RateClass {
    pub fn as_str(self) -> &'static str {
        match self {
            RateClass::Api => "api",
            RateClass::Live => "live",
        }
    }
}

/// What a bucket had left after a request it let through: the `RateLimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    /// The burst: what a full bucket holds.
    pub limit: u32,
    /// Whole tokens left after this request.
    pub remaining: u32,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

pub struct RateLimiter {
    rate_per_sec: f64,
    burst: f64,
    per_shard: usize,
    shards: Box<[Mutex<HashMap<BucketKey, Bucket>>]>,
    hasher: RandomState,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("rate_per_sec", &self.rate_per_sec)
            .field("burst", &self.burst)
            .field("buckets", &self.len())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// `rate_per_sec == 0` disables limiting. A burst below 1 is taken as 1.
    pub fn new(rate_per_sec: u32, burst: u32, max_buckets: usize) -> RateLimiter {
        RateLimiter {
            rate_per_sec: f64::from(rate_per_sec),
            burst: f64::from(burst.max(1)),
            per_shard: max_buckets.div_ceil(SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.rate_per_sec > 0.0
    }

    /// The burst, as a whole number (what `RateLimit-Limit` says).
    pub fn burst(&self) -> u32 {
        // `burst` came from a u32 (at least 1): the cast is exact.
        self.burst as u32
    }

    /// Takes a token from `key`'s bucket. `Err(wait)`: empty; one token is back after `wait`.
    /// With limiting off, the allowance is the burst, untouched.
    pub fn check(&self, key: BucketKey, now: Instant) -> Result<Allowance, Duration> {
        let allowance = |tokens: f64| Allowance {
            limit: self.burst(),
            // Between 0 and the burst (a u32): the cast saturates anyway.
            remaining: tokens.floor() as u32,
        };
        if !self.enabled() {
            return Ok(allowance(self.burst));
        }
        let i = self.hasher.hash_one(key) as usize % self.shards.len();
        let mut shard = self.shards[i]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(bucket) = shard.get_mut(&key) {
            let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * self.rate_per_sec).min(self.burst);
            bucket.last = now;
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                return Ok(allowance(bucket.tokens));
            }
            return Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.rate_per_sec,
            ));
        }
        if shard.len() >= self.per_shard {
            self.make_room(&mut shard, now);
        }
        shard.insert(
            key,
            Bucket {
                tokens: self.burst - 1.0,
                last: now,
            },
        );
        Ok(allowance(self.burst - 1.0))
    }

    fn make_room(&self, shard: &mut HashMap<BucketKey, Bucket>, now: Instant) {
        let (rate, burst) = (self.rate_per_sec, self.burst);
        shard.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
        });
        let target = self.per_shard - self.per_shard / 8 - 1;
        if shard.len() > target {
            let excess = shard.len() - target;
            let victims: Vec<BucketKey> = shard.keys().take(excess).copied().collect();
            for k in victims {
                shard.remove(&k);
            }
        }
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn key() -> BucketKey {
        BucketKey::Key(Uuid::new_v4())
    }

    #[test]
    fn burst_then_refusal_with_the_time_to_the_next_token() {
        let limiter = RateLimiter::new(10, 3, 1000);
        let k = key();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(k, t0).is_ok());
        }
        let wait = limiter.check(k, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(99) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // A refused request costs nothing: the wait does not grow.
        assert_eq!(limiter.check(k, t0).unwrap_err(), wait);
    }

    #[test]
    fn the_allowance_counts_down_from_the_burst() {
        let limiter = RateLimiter::new(1, 3, 1000);
        let (k, t0) = (key(), Instant::now());
        let remaining: Vec<u32> = (0..3)
            .map(|_| limiter.check(k, t0).unwrap().remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        assert_eq!(limiter.check(key(), t0).unwrap().limit, 3);
    }

    #[test]
    fn tokens_come_back_at_the_sustained_rate_up_to_the_burst() {
        let limiter = RateLimiter::new(10, 3, 1000);
        let k = key();
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check(k, t0).unwrap();
        }
        assert!(limiter.check(k, t0 + Duration::from_millis(50)).is_err());
        assert!(limiter.check(k, t0 + Duration::from_millis(101)).is_ok());
        assert!(limiter.check(k, t0 + Duration::from_millis(102)).is_err());
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.check(k, later).is_ok());
        }
        assert!(limiter.check(k, later).is_err());
    }

    #[test]
    fn buckets_are_independent() {
        let limiter = RateLimiter::new(1, 1, 1000);
        let t0 = Instant::now();
        let (a, b) = (key(), key());
        assert!(limiter.check(a, t0).is_ok());
        assert!(limiter.check(a, t0).is_err());
        assert!(limiter.check(b, t0).is_ok());
    }

    #[test]
    fn zero_rate_disables_limiting() {
        let limiter = RateLimiter::new(0, 1, 10);
        let k = key();
        for _ in 0..100 {
            assert!(limiter.check(k, Instant::now()).is_ok());
        }
        assert!(limiter.is_empty());
    }

    #[test]
    fn bucket_count_stays_bounded_under_a_flood_of_new_clients() {
        let limiter = RateLimiter::new(1, 5, 256);
        let t0 = Instant::now();
        for i in 0..100_000u32 {
            let _ = limiter.check(BucketKey::addr(IpAddr::V4(Ipv4Addr::from(i))), t0);
        }
        assert!(limiter.len() <= 256, "{}", limiter.len());
    }

    #[test]
    fn idle_buckets_are_evicted_before_busy_ones() {
        let limiter = RateLimiter::new(1, 2, SHARDS * 8);
        let busy = key();
        let shard_of = |k: BucketKey| limiter.hasher.hash_one(k) as usize % SHARDS;
        let mut same_shard = (0u32..)
            .map(|i| BucketKey::addr(IpAddr::V4(Ipv4Addr::from(i))))
            .filter(|k| shard_of(*k) == shard_of(busy));
        let t0 = Instant::now();
        limiter.check(busy, t0).unwrap();
        limiter.check(busy, t0).unwrap();
        for k in same_shard.by_ref().take(7) {
            limiter.check(k, t0).unwrap();
        }
        // Five seconds on, the one-off clients have refilled (idle); the busy key spends again.
        let t1 = t0 + Duration::from_secs(5);
        limiter.check(busy, t1).unwrap();
        limiter.check(busy, t1).unwrap();
        // The shard is full (8): a newcomer sweeps the idle buckets, not the busy one.
        limiter.check(same_shard.next().unwrap(), t1).unwrap();
        assert_eq!(limiter.len(), 2);
        assert!(
            limiter.check(busy, t1).is_err(),
            "the busy bucket kept its state"
        );
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_slash_64() {
        let a: Ipv6Addr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(BucketKey::addr(a.into()), BucketKey::addr(b.into()));
        assert_ne!(BucketKey::addr(a.into()), BucketKey::addr(c.into()));
        let mapped: Ipv6Addr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            BucketKey::addr(mapped.into()),
            BucketKey::addr(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
    }
}
