//! A small seeded RNG (SplitMix64) and the distributions the behaviour model draws from.
//!
//! The simulator must replay a scenario exactly from its seed, so it never touches a thread
//! RNG; every random choice goes through one [`SimRng`] owned by the switch.

use std::time::Duration;

use serde::Deserialize;

/// SplitMix64: tiny, fast, and good enough for traffic models.
#[derive(Clone, Debug)]
pub struct SimRng {
    state: u64,
    /// Mixed into every [`SimRng::uuid`] and into nothing else (see
    /// [`super::SimConfig::uuid_salt`]).
    uuid_salt: u64,
}

impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng {
            state: seed,
            uuid_salt: 0,
        }
    }

    /// The same sequence, with uuids told apart from those of every other salt: two runs of
    /// one seed with different salts draw the same behaviour and share no uuid. Salt 0 leaves
    /// the uuids as the seed alone makes them.
    pub fn with_uuid_salt(mut self, salt: u64) -> Self {
        self.uuid_salt = salt;
        self
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        finalise(self.state)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = (1.0 - self.unit()).max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A random version-4 UUID, so channel ids are reproducible from the seed (and the salt).
    /// The salt is XORed into both halves (the low half through SplitMix64's finaliser, so
    /// that the halves do not move together): two salts give the same uuid only where the
    /// XOR of two draws equals the XOR of the salts, the odds of two random version-4 uuids.
    pub fn uuid(&mut self) -> String {
        let hi = (self.next_u64() ^ self.uuid_salt).to_be_bytes();
        let lo = (self.next_u64() ^ finalise(self.uuid_salt)).to_be_bytes();
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&hi);
        b[8..].copy_from_slice(&lo);
        uuid::Builder::from_random_bytes(b)
            .into_uuid()
            .hyphenated()
            .to_string()
    }
}

/// SplitMix64's output function: a bijection that spreads every input bit over the output.
fn finalise(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A duration distribution, as written in scenario files:
/// `{ fixed = 1.0 }`, `{ uniform = [0.5, 2.0] }`, `{ exp = 120.0 }` (mean),
/// `{ lognormal = { median = 180.0, sigma = 0.6 } }`,
/// `{ choice = [[0.6, 0.0005], [0.4, 0.020]] }` (weight, value: FreeSWITCH's 20 ms steps);
/// seconds throughout.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Dist {
    Fixed(f64),
    Uniform([f64; 2]),
    Exp(f64),
    Lognormal {
        median: f64,
        sigma: f64,
    },
    /// One of a few values, by relative weight (empty or weightless: zero).
    Choice(Vec<[f64; 2]>),
}

impl Dist {
    pub fn secs(s: f64) -> Self {
        Dist::Fixed(s)
    }

    pub fn sample(&self, rng: &mut SimRng) -> Duration {
        let s = match self {
            Dist::Fixed(s) => *s,
            Dist::Uniform([a, b]) => a + (b - a) * rng.unit(),
            Dist::Exp(mean) => rng.exp(*mean),
            Dist::Lognormal { median, sigma } => median * (sigma * rng.normal()).exp(),
            Dist::Choice(options) => {
                let total: f64 = options.iter().map(|[w, _]| w.max(0.0)).sum();
                let mut x = rng.unit() * total;
                let mut pick = options.last().map_or(0.0, |[_, v]| *v);
                for [w, v] in options {
                    if x < w.max(0.0) {
                        pick = *v;
                        break;
                    }
                    x -= w.max(0.0);
                }
                if total > 0.0 { pick } else { 0.0 }
            }
        };
        // Cap at a day: a scenario typo must not schedule a timer centuries away.
        Duration::from_secs_f64(s.clamp(0.0, 86_400.0))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SimRng::new(7);
        let mut b = SimRng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_eq!(SimRng::new(1).uuid(), SimRng::new(1).uuid());
        assert_ne!(SimRng::new(1).uuid(), SimRng::new(2).uuid());
    }

    #[test]
    fn a_salt_changes_every_uuid_and_nothing_else() {
        let mut plain = SimRng::new(7);
        let mut zero = SimRng::new(7).with_uuid_salt(0);
        let mut a = SimRng::new(7).with_uuid_salt(11);
        let mut b = SimRng::new(7).with_uuid_salt(12);
        let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
        for _ in 0..1000 {
            let u = plain.uuid();
            assert_eq!(zero.uuid(), u, "salt 0 keeps the seed's uuids");
            seen_a.push(a.uuid());
            seen_b.push(b.uuid());
            // The draws between uuids are the same whatever the salt.
            let n = plain.next_u64();
            assert_eq!((zero.next_u64(), a.next_u64(), b.next_u64()), (n, n, n));
        }
        let a: HashSet<&String> = seen_a.iter().collect();
        assert_eq!(a.len(), 1000);
        assert!(
            seen_b.iter().all(|u| !a.contains(u)),
            "two salts share no uuid"
        );
        assert!(
            seen_a
                .iter()
                .all(|u| uuid::Uuid::parse_str(u).is_ok_and(|u| u.get_version_num() == 4))
        );
    }

    #[test]
    fn distributions_stay_in_range() {
        let mut r = SimRng::new(3);
        for _ in 0..1000 {
            let d = Dist::Uniform([1.0, 2.0]).sample(&mut r);
            assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(2));
            assert!(r.range(3, 5) >= 3 && r.range(3, 5) <= 5);
        }
        let mean: f64 = (0..10_000)
            .map(|_| Dist::Exp(10.0).sample(&mut r).as_secs_f64())
            .sum::<f64>()
            / 10_000.0;
        assert!((9.0..11.0).contains(&mean), "{mean}");
        let steps = Dist::Choice(vec![[3.0, 0.040], [1.0, 0.060]]);
        let sixty = (0..10_000)
            .filter(|_| steps.sample(&mut r) == Duration::from_millis(60))
            .count();
        assert!((2_300..2_700).contains(&sixty), "{sixty}");
        assert_eq!(Dist::Choice(Vec::new()).sample(&mut r), Duration::ZERO);
    }
}
