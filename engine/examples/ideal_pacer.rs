//! An idealised pacer, to tell what the customer model allows from what `Pacer` leaves.
//!
//! `switchyard sim campaign` runs the real pacer. This runs a pacer that knows more and
//! controls more than any real one, on the same agents and people:
//!
//! - it knows when every agent's talk ends (an oracle; a real pacer only has elapsed time);
//! - it places every person's answer exactly `lead` seconds after the dial (a real dial's
//!   person answers anywhere in the 5-20 s window, so the pacer commits 20 s ahead);
//! - it may release dials as the legal minimum ring allows: of the persons due `u` seconds
//!   from now, the share from lines that have rung 15 s is (20 - 15 - u) / (20 - 5).
//!
//! What it cannot escape is the randomness of who answers: the persons due in the next
//! `lead` seconds come from dials already out, each adding a person with a small chance. With
//! answers spread over 5-20 s, no dial adds one to a 5 s window with a chance above
//! `--person-chance` (0.1 for one answer in four: 0.25 x 5/15 over the 1 - 0.25 x 10/15 still
//! unresolved at 15 s), so that is the chance each of this pacer's dials carries. With the
//! chance at the answer rate itself (0.25) persons arrive less randomly than any real list
//! allows; the row is printed for comparison.
//!
//! The policy: dial so the expected idle position `lead` + `grace` seconds out is `target`
//! agents; release every releasable line while the position is under `release_below`.
//! Both are swept and the best talk occupancy with abandons at most the goal is printed.
//!
//! ```sh
//! cargo run --release -p switchyard-engine --example ideal_pacer -- [--agents 100] [--hours 12] [--seed 1]
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

#[derive(Clone, Copy)]
struct Model {
    agents: u32,
    aht_s: f64,
    wrap_s: f64,
    /// Chance that one dial brings a person `lead_s` later.
    person_chance: f64,
    lead_s: f64,
    /// A person waits this long for an agent (the 2 s rule).
    grace_s: f64,
    /// Of the answer window (`spread_s` wide), the last `release_s` can be released.
    release_s: f64,
    spread_s: f64,
    step_s: f64,
}

#[derive(Clone, Copy, Debug)]
struct Outcome {
    idle_share: f64,
    abandon_rate: f64,
    released_share: f64,
}

impl Model {
    fn talk_occupancy(&self, o: &Outcome) -> f64 {
        (1.0 - o.idle_share) * self.aht_s / (self.aht_s + self.wrap_s)
    }

    /// `seconds` of work after `warm` seconds of ramp-up (not measured).
    fn run(
        &self,
        target: f64,
        release_below: Option<f64>,
        seconds: f64,
        warm: f64,
        seed: u64,
    ) -> Outcome {
        let mut rng = fastrand::Rng::with_seed(seed);
        let lead = (self.lead_s / self.step_s).round() as usize;
        let steps = ((seconds + warm) / self.step_s) as u64;
        // Dials landing 0..=lead steps from now, and how many each step had when placed.
        let mut pipe: VecDeque<u32> = std::iter::repeat_n(0, lead + 1).collect();
        let mut placed: VecDeque<u32> = pipe.clone();
        // When each busy agent is free again (the oracle).
        let mut frees: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
        let mut idle = i64::from(self.agents);
        let mut waiting: VecDeque<u64> = VecDeque::new();
        let (mut idle_steps, mut staffed_steps) = (0f64, 0f64);
        let (mut persons, mut abandoned, mut dials, mut released) = (0u64, 0u64, 0u64, 0u64);
        let to_steps = |s: f64| (s / self.step_s).round() as u64;
        let grace = to_steps(self.grace_s);
        let busy = |rng: &mut fastrand::Rng, frees: &mut BinaryHeap<Reverse<u64>>, now: u64| {
            let talk = -(1.0 - rng.f64()).ln() * self.aht_s;
            frees.push(Reverse(now + to_steps(talk + self.wrap_s).max(1)));
        };
        for now in 0..steps {
            let measured = now as f64 * self.step_s >= warm;
            while frees.peek().is_some_and(|Reverse(t)| *t <= now) {
                frees.pop();
                if waiting.pop_front().is_some() {
                    busy(&mut rng, &mut frees, now);
                } else {
                    idle += 1;
                }
            }
            let due = pipe.pop_front().unwrap_or(0);
            placed.pop_front();
            for _ in 0..due {
                if rng.f64() >= self.person_chance {
                    continue;
                }
                persons += u64::from(measured);
                if idle > 0 {
                    idle -= 1;
                    busy(&mut rng, &mut frees, now);
                } else {
                    waiting.push_back(now);
                }
            }
            while waiting.front().is_some_and(|t| t + grace <= now) {
                waiting.pop_front();
                abandoned += u64::from(measured);
            }
            if measured {
                idle_steps += idle as f64;
                staffed_steps += f64::from(self.agents);
            }
            // The position where a dial placed now lands: agents idle and freed by then
            // (or within the grace after), less persons waiting and expected from the pipe.
            let horizon = now + lead as u64 + grace;
            let freed = frees.iter().filter(|Reverse(t)| *t <= horizon).count() as f64;
            let expected: f64 =
                pipe.iter().map(|d| f64::from(*d)).sum::<f64>() * self.person_chance;
            let position = idle as f64 - waiting.len() as f64 + freed - expected;
            let n = ((position - target) / self.person_chance).round().max(0.0) as u32;
            pipe.push_back(n);
            placed.push_back(n);
            dials += u64::from(n) * u64::from(measured);
            if release_below.is_some_and(|r| position < r) {
                for (j, (d, p)) in pipe.iter_mut().zip(&placed).enumerate() {
                    let u = j as f64 * self.step_s;
                    let share = ((self.release_s - u) / self.spread_s).clamp(0.0, 1.0);
                    let keep = (f64::from(*p) * (1.0 - share)).ceil() as u32;
                    if *d > keep {
                        released += u64::from(*d - keep) * u64::from(measured);
                        *d = keep;
                    }
                }
            }
        }
        Outcome {
            idle_share: idle_steps / staffed_steps.max(1.0),
            abandon_rate: abandoned as f64 / persons.max(1) as f64,
            released_share: released as f64 / dials.max(1) as f64,
        }
    }
}

fn arg(args: &[String], name: &str, default: f64) -> f64 {
    args.windows(2)
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let agents = arg(&args, "--agents", 100.0).clamp(1.0, 10_000.0) as u32;
    let hours = arg(&args, "--hours", 12.0).clamp(0.1, 1000.0);
    let seed = arg(&args, "--seed", 1.0) as u64;
    let goal = arg(&args, "--abandon-target", 0.03);
    let chances = [arg(&args, "--person-chance", 0.1), 0.25];
    for chance in chances {
        let model = Model {
            agents,
            aht_s: 120.0,
            wrap_s: 10.0,
            person_chance: chance,
            lead_s: 5.0,
            grace_s: 2.0,
            release_s: 5.0,
            spread_s: 15.0,
            step_s: 0.1,
        };
        let mut best: Option<(f64, f64, f64, Outcome)> = None;
        for t in 0..=20 {
            let target = 1.0 + 0.125 * f64::from(t);
            for release in [
                None,
                Some(0.0),
                Some(-0.25),
                Some(-0.5),
                Some(-0.75),
                Some(-1.0),
            ] {
                let release_below = release.map(|d| target + d);
                let o = model.run(target, release_below, hours * 3600.0, 1800.0, seed);
                let occ = model.talk_occupancy(&o);
                println!(
                    "{{\"person_chance\":{chance},\"target\":{target},\"release_below\":{},\"abandon_rate\":{:.4},\"talk_occupancy\":{occ:.4},\"released_share\":{:.3}}}",
                    release_below.map_or("null".to_owned(), |r| r.to_string()),
                    o.abandon_rate,
                    o.released_share,
                );
                if o.abandon_rate <= goal && best.is_none_or(|b| occ > b.0) {
                    best = Some((occ, target, release_below.unwrap_or(f64::NAN), o));
                }
            }
        }
        if let Some((occ, target, release_below, o)) = best {
            println!(
                "best at person_chance {chance}: talk_occupancy {occ:.4} with abandons {:.4} (target {target}, release below {release_below})",
                o.abandon_rate
            );
        }
    }
}
