//! Predictive pacing: for each further line it could dial now, the chance that a person
//! answers it and finds no agent within `connect_within` (2 s). Lines are dialled while that
//! risk stays under a threshold, and the threshold is steered by the abandons the ledger
//! actually records, so the model's biases cost occupancy, never legality.
//!
//! The model, for a dial placed now whose person would be ready at time `t`:
//!
//! ```text
//!   supply(t) = agents free by t + connect_within - agent lag (offer to answer, learned)
//!             = Σ over the queue's agents of P(free by then)
//!                 free now: 1; wrap-up/delay ending at w: [w <= t]; talking for e:
//!                 P(talk ends within t - wrap | lasted e), from the learned talk times
//!   demand(t) = persons from lines already out, ready by t
//!                 ringing for r: p_person * (F(r + t) - F(r)) / P(unresolved at r)
//!                 in detection: P(person | answered) once the verdict is due; waiting: 1
//!             + persons from the other new dials of this round: p_person * F(t)
//!   risk      = Σ_t P(ready at t | person) * P(demand(t) >= supply(t))
//! ```
//!
//! Supply and demand are sums of independent Bernoulli variables, taken as normal (mean and
//! variance; half a call of continuity correction). Ring, answer and talk times are learned
//! from this campaign's own dials in fixed-width histograms that halve their counts when full,
//! so they follow a list whose answer rate drifts through the day.
//!
//! Release: a dial can raise the flow of persons only 5-20 s later, but a line that has rung
//! the legal minimum can be hung up at once. [`Pacer::release`] prices each such line's person
//! (ready at `t` with the conditional answer-time distribution) against the same picture and
//! releases it when that risk is above the threshold: the line would not be dialled now. The
//! released dial is learned as censored ([`Pacer::learn_released`]).
//!
//! Two things measured while building this (`switchyard sim campaign`, README): telling the
//! pacer every agent's exact end of talk (an oracle) gained +0.001 talk occupancy at 10 and 100
//! agents, so what limits occupancy is the randomness of when persons answer, not the talk
//! times; and a lower threshold for release than for dialling (0.25x, 0.5x) or a higher one
//! (2x) changed nothing beyond noise.

use std::time::Duration;

/// A duration histogram with fixed-width bins and a cumulative table rebuilt lazily.
#[derive(Clone, Debug)]
pub struct Histogram {
    width_s: f64,
    counts: Vec<f64>,
    total: f64,
    /// Halve every count once the total reaches this (forgetting old samples).
    cap: f64,
    cum: Vec<f64>,
    stale: u32,
}

/// Samples added before the cumulative table is rebuilt (it costs a pass over the bins).
const REBUILD_EVERY: u32 = 16;

impl Histogram {
    pub fn new(width: Duration, bins: usize, cap: f64) -> Histogram {
        Histogram {
            width_s: width.as_secs_f64().max(1e-3),
            counts: vec![0.0; bins.max(1)],
            total: 0.0,
            cap,
            cum: vec![0.0; bins.max(1) + 1],
            stale: u32::MAX,
        }
    }

    pub fn add(&mut self, x: Duration, weight: f64) {
        let i = ((x.as_secs_f64() / self.width_s) as usize).min(self.counts.len() - 1);
        self.counts[i] += weight;
        self.total += weight;
        if self.total >= self.cap {
            for c in &mut self.counts {
                *c *= 0.5;
            }
            self.total *= 0.5;
        }
        self.stale = self.stale.saturating_add(1);
    }

    /// Spreads `weight` over the bins at or beyond `from`, in proportion to what they hold
    /// (a sample known only to lie beyond `from`: a censored observation). Nothing is added
    /// when nothing is known beyond `from`.
    pub fn add_tail(&mut self, from: Duration, weight: f64) {
        let first = ((from.as_secs_f64() / self.width_s) as usize).min(self.counts.len() - 1);
        let beyond: f64 = self.counts[first..].iter().sum();
        if beyond <= 0.0 || weight <= 0.0 {
            return;
        }
        for c in &mut self.counts[first..] {
            *c += weight * *c / beyond;
        }
        self.total += weight;
        if self.total >= self.cap {
            for c in &mut self.counts {
                *c *= 0.5;
            }
            self.total *= 0.5;
        }
        self.stale = self.stale.saturating_add(1);
    }

    pub fn total(&self) -> f64 {
        self.total
    }

    /// Its counts, non-zero bins only (a campaign's histograms are mostly empty).
    fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bins: u32::try_from(self.counts.len()).unwrap_or(u32::MAX),
            counts: self
                .counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c != 0.0)
                .map(|(i, c)| (u32::try_from(i).unwrap_or(u32::MAX), *c))
                .collect(),
            total: self.total,
        }
    }

    /// This (empty) histogram's shape with a snapshot's counts, its table up to date.
    fn restored(mut self, s: &HistogramSnapshot, name: &str) -> Result<Histogram, String> {
        if s.bins as usize != self.counts.len() {
            return Err(format!(
                "{name}: {} bins, this version has {}",
                s.bins,
                self.counts.len()
            ));
        }
        if !s.total.is_finite() || s.total < 0.0 || s.total > self.cap {
            return Err(format!("{name}: total out of range"));
        }
        self.counts.iter_mut().for_each(|c| *c = 0.0);
        for (i, c) in &s.counts {
            let slot = self
                .counts
                .get_mut(*i as usize)
                .ok_or_else(|| format!("{name}: bin {i} out of range"))?;
            if !c.is_finite() || *c < 0.0 {
                return Err(format!("{name}: bin {i} out of range"));
            }
            *slot = *c;
        }
        self.total = s.total;
        self.stale = REBUILD_EVERY;
        self.refresh();
        Ok(self)
    }

    /// Rebuilds the cumulative table if enough has changed.
    pub fn refresh(&mut self) {
        if self.stale < REBUILD_EVERY {
            return;
        }
        self.stale = 0;
        let mut acc = 0.0;
        self.cum[0] = 0.0;
        for (i, c) in self.counts.iter().enumerate() {
            acc += c;
            self.cum[i + 1] = acc;
        }
    }

    /// P(X <= x), linear inside a bin. Call [`Histogram::refresh`] first.
    pub fn cdf(&self, x_s: f64) -> f64 {
        let total = self.cum[self.cum.len() - 1];
        if total <= 0.0 || x_s <= 0.0 {
            return 0.0;
        }
        let pos = x_s / self.width_s;
        let i = pos as usize;
        if i >= self.counts.len() {
            return 1.0;
        }
        let frac = pos - i as f64;
        (self.cum[i] + frac * (self.cum[i + 1] - self.cum[i])) / total
    }
}

/// What a [`Pacer`] has learned ([`Pacer::snapshot`]), kept by the store across restarts.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PacerSnapshot {
    person: HistogramSnapshot,
    resolve: HistogramSnapshot,
    talk: HistogramSnapshot,
    dials: f64,
    persons: f64,
    answered: f64,
    answered_persons: f64,
    theta: f64,
    agent_lag_s: f64,
    gain: f64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct HistogramSnapshot {
    bins: u32,
    /// `(bin, count)` of the non-zero bins.
    counts: Vec<(u32, f64)>,
    total: f64,
}

/// What an agent of the campaign's queue will be doing, as pacing sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AgentView {
    /// Ready for a call now.
    Free,
    /// Ready after this (wrap-up or a delay ending).
    FreeIn(Duration),
    /// On a call for `elapsed`, then `wrap` of wrap-up.
    Talking { elapsed: Duration, wrap: Duration },
    /// On break, logged out, or kept in reserve for inbound calls.
    Away,
}

/// A line already out, as pacing sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LineView {
    /// Not answered yet, dialled `elapsed` ago.
    Ringing { elapsed: Duration },
    /// Answered, detection running: a person with probability `person`, known `within`.
    Detecting { person: f64, within: Duration },
    /// A person waiting for an agent now.
    Waiting,
}

#[derive(Clone, Debug)]
pub struct Pacer {
    /// Dial -> person ready (answered, and detection done), for dials that reached a person.
    person: Histogram,
    /// Dial -> first resolution of any kind (answer, busy, no answer, failure).
    resolve: Histogram,
    talk: Histogram,
    dials: f64,
    persons: f64,
    /// Detection verdicts: answered legs, and those that were persons.
    answered: f64,
    answered_persons: f64,
    /// The risk a dial may carry (steered by the ledger).
    theta: f64,
    /// Offer to agent answer, smoothed: the part of the connect allowance the agent's phone
    /// takes (auto-answer, a headset's click).
    agent_lag_s: f64,
    /// Step of the threshold controller (log scale, per person answered).
    gain: f64,
    /// Lessons taken since the pacer was made (not part of its state: tells the campaign a
    /// snapshot is due).
    lessons: u64,
}

/// The horizon's bins are one second wide.
const STEP_S: f64 = 1.0;
/// Forget old samples beyond about this many (per histogram).
const MEMORY: f64 = 4000.0;

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new(0.03)
    }
}

impl Pacer {
    /// A pacer with a weak prior (a person answers one dial in four, within 3-20 s; talk
    /// about three minutes), which its own campaign's dials soon outweigh.
    pub fn new(theta: f64) -> Pacer {
        let mut p = Pacer {
            person: Histogram::new(Duration::from_millis(500), 240, MEMORY),
            resolve: Histogram::new(Duration::from_millis(500), 240, MEMORY),
            talk: Histogram::new(Duration::from_secs(4), 1800, MEMORY),
            dials: 0.0,
            persons: 0.0,
            answered: 4.0,
            answered_persons: 3.0,
            theta,
            agent_lag_s: 0.0,
            gain: 0.05,
            lessons: 0,
        };
        for i in 0..20u32 {
            let t = Duration::from_secs_f64(3.0 + 17.0 * (f64::from(i) + 0.5) / 20.0);
            p.person.add(t, 0.5);
            p.resolve.add(t, 0.5);
            p.resolve.add(t + Duration::from_secs(10), 1.0);
            // Exponential quantiles, mean 180 s.
            let q = (f64::from(i) + 0.5) / 20.0;
            p.talk
                .add(Duration::from_secs_f64(-180.0 * (1.0 - q).ln()), 0.5);
        }
        p.dials = 20.0;
        p.persons = 5.0;
        p.person.stale = u32::MAX;
        p.resolve.stale = u32::MAX;
        p.talk.stale = u32::MAX;
        p.refresh();
        p
    }

    pub fn theta(&self) -> f64 {
        self.theta
    }

    /// Share of dials that reach a person (learned).
    pub fn person_rate(&self) -> f64 {
        if self.dials <= 0.0 {
            0.0
        } else {
            (self.persons / self.dials).clamp(0.0, 1.0)
        }
    }

    /// A dial resolved after `elapsed`: a person became ready (`person`), or it ended otherwise
    /// (machine, busy, no answer, failure). Detection time counts as ringing for a person.
    pub fn learn_dial(&mut self, elapsed: Duration, person: bool) {
        self.lessons += 1;
        self.dials += 1.0;
        if person {
            self.persons += 1.0;
            self.person.add(elapsed, 1.0);
        }
        self.resolve.add(elapsed, 1.0);
        if self.dials >= MEMORY {
            self.dials *= 0.5;
            self.persons *= 0.5;
        }
    }

    /// A line released unanswered after `elapsed`: it might still have reached a person. It
    /// counts as a dial that reaches a person with the chance a line unresolved at `elapsed`
    /// has, and its timings as lying beyond `elapsed`, so releases do not teach the pacer
    /// that persons answer less, or sooner, than they do.
    pub fn learn_released(&mut self, elapsed: Duration) {
        self.lessons += 1;
        self.refresh();
        let r = elapsed.as_secs_f64();
        let unresolved = 1.0 - self.resolve.cdf(r);
        let q = if unresolved > 1e-9 {
            (self.person_rate() * (1.0 - self.person.cdf(r)) / unresolved).clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.dials += 1.0;
        self.persons += q;
        self.person.add_tail(elapsed, q);
        self.resolve.add_tail(elapsed, 1.0);
        if self.dials >= MEMORY {
            self.dials *= 0.5;
            self.persons *= 0.5;
        }
    }

    /// A detection verdict on an answered leg (a time-out counts as a person).
    pub fn learn_answered(&mut self, person: bool) {
        self.lessons += 1;
        self.answered += 1.0;
        if person {
            self.answered_persons += 1.0;
        }
        if self.answered >= MEMORY {
            self.answered *= 0.5;
            self.answered_persons *= 0.5;
        }
    }

    /// P(person | answered), from detection verdicts.
    pub fn person_given_answer(&self) -> f64 {
        (self.answered_persons / self.answered.max(1.0)).clamp(0.0, 1.0)
    }

    /// An agent answered a campaign offer `lag` after it was made.
    pub fn learn_agent_lag(&mut self, lag: Duration) {
        self.lessons += 1;
        self.agent_lag_s += 0.05 * (lag.as_secs_f64() - self.agent_lag_s);
    }

    pub fn learn_talk(&mut self, talk: Duration) {
        self.lessons += 1;
        self.talk.add(talk, 1.0);
    }

    /// A person answered one of our dials; steer the threshold so that the share abandoned
    /// tends to `goal` (a Robbins-Monro step on the log of the threshold).
    pub fn learn_outcome(&mut self, abandoned: bool, goal: f64) {
        self.lessons += 1;
        let hit = if abandoned { 1.0 } else { 0.0 };
        let next = self.theta.ln() + self.gain * (goal - hit);
        self.theta = next.exp().clamp(1e-4, 0.5);
    }

    fn refresh(&mut self) {
        self.person.refresh();
        self.resolve.refresh();
        self.talk.refresh();
    }

    /// Lessons taken since the pacer was made (see [`Pacer::snapshot`]).
    pub fn lessons(&self) -> u64 {
        self.lessons
    }

    /// What the pacer has learned, to be kept across a restart. Its tables are brought up to
    /// date first, so that the pacer restored from the snapshot decides exactly as this one.
    pub fn snapshot(&mut self) -> PacerSnapshot {
        for h in [&mut self.person, &mut self.resolve, &mut self.talk] {
            h.stale = REBUILD_EVERY;
            h.refresh();
        }
        PacerSnapshot {
            person: self.person.snapshot(),
            resolve: self.resolve.snapshot(),
            talk: self.talk.snapshot(),
            dials: self.dials,
            persons: self.persons,
            answered: self.answered,
            answered_persons: self.answered_persons,
            theta: self.theta,
            agent_lag_s: self.agent_lag_s,
            gain: self.gain,
        }
    }

    /// The pacer a snapshot describes; an error (and the caller keeps its prior) when the
    /// snapshot is not one this version makes: other table shapes, or figures out of range.
    pub fn restore(s: &PacerSnapshot) -> Result<Pacer, String> {
        let fresh = Pacer::new(0.03);
        let figures = [
            s.dials,
            s.persons,
            s.answered,
            s.answered_persons,
            s.agent_lag_s,
            s.gain,
        ];
        if figures.iter().any(|f| !f.is_finite() || *f < 0.0) || !(1e-4..=0.5).contains(&s.theta) {
            return Err("a figure is out of range".into());
        }
        Ok(Pacer {
            person: fresh.person.restored(&s.person, "person")?,
            resolve: fresh.resolve.restored(&s.resolve, "resolve")?,
            talk: fresh.talk.restored(&s.talk, "talk")?,
            dials: s.dials,
            persons: s.persons,
            answered: s.answered,
            answered_persons: s.answered_persons,
            theta: s.theta,
            agent_lag_s: s.agent_lag_s,
            gain: s.gain,
            lessons: 0,
        })
    }

    /// How many more lines to dial now (at most `max_new`), and the risk the last one
    /// carries. `horizon` bounds how far ahead a dial can still reach a person (ring timeout
    /// plus detection).
    pub fn plan(
        &mut self,
        agents: &[AgentView],
        lines: &[LineView],
        connect_within: Duration,
        horizon: Duration,
        max_new: u32,
    ) -> (u32, f64) {
        if max_new == 0 {
            return (0, 0.0);
        }
        match self.picture(agents, lines, connect_within, horizon) {
            Some(pic) => self.count_dials(&pic, max_new),
            // Nobody ever answers: risk-free, but also pointless beyond the line cap.
            None => (max_new, 0.0),
        }
    }

    /// [`release`](Self::release), then [`plan`](Self::plan) without the released lines, on
    /// one picture of supply and demand. `candidates` are the ages of lines (among `lines`)
    /// that have rung the minimum.
    pub fn plan_releasing(
        &mut self,
        agents: &[AgentView],
        lines: &[LineView],
        connect_within: Duration,
        horizon: Duration,
        max_new: u32,
        candidates: &[Duration],
    ) -> (Vec<bool>, u32) {
        if max_new == 0 && candidates.is_empty() {
            return (Vec::new(), 0);
        }
        let Some(mut pic) = self.picture(agents, lines, connect_within, horizon) else {
            return (vec![false; candidates.len()], max_new);
        };
        let verdicts: Vec<bool> = candidates
            .iter()
            .map(|e| self.release_verdict(&pic, e.as_secs_f64()))
            .collect();
        for (e, go) in candidates.iter().zip(&verdicts) {
            if *go {
                // A released line brings no one: its demand leaves the picture.
                let line = self.ringing(e.as_secs_f64());
                for i in 0..pic.bins() {
                    let q = self.share(pic.p_person, &line, i);
                    pic.d_mean[i] -= q;
                    pic.d_var[i] -= q * (1.0 - q);
                }
            }
        }
        let extra = u32::try_from(verdicts.iter().filter(|g| **g).count()).unwrap_or(u32::MAX);
        let n = if max_new == 0 && extra == 0 {
            0
        } else {
            self.count_dials(&pic, max_new.saturating_add(extra)).0
        };
        (verdicts, n)
    }

    /// New dials while the next one's risk stays under the threshold.
    fn count_dials(&self, pic: &Picture, max_new: u32) -> (u32, f64) {
        let mut k = 0u32;
        let mut last = 0.0;
        while k < max_new {
            let kf = f64::from(k);
            let mut risk = 0.0;
            for i in 0..pic.bins() {
                let w = pic.weight[i];
                if w <= 0.0 {
                    continue;
                }
                let a = pic.a_new[i];
                risk += w * pic.abandon_p(i, kf * a, kf * a * (1.0 - a));
            }
            risk /= pic.mass;
            if risk > self.theta {
                break;
            }
            last = risk;
            k += 1;
        }
        (k, last)
    }

    /// Which of the lines still ringing after `elapsed` (each at least the legal minimum
    /// ring) to release now: those whose person, should one answer, would carry more risk than
    /// a new dial may (they would not be dialled now). Risks are taken against the present
    /// picture, before any new dial.
    pub fn release(
        &mut self,
        agents: &[AgentView],
        lines: &[LineView],
        connect_within: Duration,
        horizon: Duration,
        candidates: &[Duration],
    ) -> Vec<bool> {
        self.plan_releasing(agents, lines, connect_within, horizon, 0, candidates)
            .0
    }

    /// Whether a line ringing for `r` seconds should be released (see [`release`](Self::release)).
    fn release_verdict(&self, pic: &Picture, r: f64) -> bool {
        let line = self.ringing(r);
        let base = line.base;
        let (mut risk, mut mass) = (0.0, 0.0);
        let mut before = 0.0;
        for i in 0..pic.bins() {
            let upto = self.person.cdf(r + (i + 1) as f64 * STEP_S) - base;
            let w = upto - before;
            before = upto;
            if w <= 0.0 {
                continue;
            }
            // This line's own share of the demand is not competition for itself.
            let q = self.share(pic.p_person, &line, i);
            risk += w * pic.abandon_p(i, -q, -q * (1.0 - q));
            mass += w;
        }
        // Zero mass: this line can no longer reach a person; ringing on costs nothing.
        mass > 0.0 && risk / mass > self.theta
    }

    /// A line ringing for `r` seconds: what [`share`](Self::share) needs about it.
    fn ringing(&self, r: f64) -> Ringing {
        Ringing {
            r,
            base: self.person.cdf(r),
            unresolved: (1.0 - self.resolve.cdf(r)).max(0.02),
        }
    }

    /// P(that line has brought a person by bin `i`).
    fn share(&self, p_person: f64, l: &Ringing, i: usize) -> f64 {
        (p_person * (self.person.cdf(l.r + t_of(i)) - l.base) / l.unresolved).clamp(0.0, 1.0)
    }

    /// Supply and demand over the horizon as the present state gives them.
    fn picture(
        &mut self,
        agents: &[AgentView],
        lines: &[LineView],
        connect_within: Duration,
        horizon: Duration,
    ) -> Option<Picture> {
        self.refresh();
        let p_person = self.person_rate();
        if p_person <= 0.0 {
            return None;
        }
        let bins = ((horizon.as_secs_f64() / STEP_S).ceil() as usize).clamp(1, 240);
        // An agent must be free early enough to answer the offer within the allowance.
        let c = (connect_within.as_secs_f64() - self.agent_lag_s).max(0.0);
        // Bin i holds person-ready times in [i, i+1) s; evaluated at its middle.
        let mut weight = Vec::with_capacity(bins);
        let mut a_new = Vec::with_capacity(bins);
        let mut mass = 0.0;
        for i in 0..bins {
            let lo = self.person.cdf(i as f64 * STEP_S);
            let hi = self.person.cdf((i + 1) as f64 * STEP_S);
            weight.push(hi - lo);
            mass += hi - lo;
            a_new.push(p_person * self.person.cdf(t_of(i)));
        }
        if mass <= 0.0 {
            return None;
        }
        let mut s_mean = vec![0.0; bins];
        let mut s_var = vec![0.0; bins];
        let mut free_now = 0.0;
        for a in agents {
            match *a {
                AgentView::Free => free_now += 1.0,
                AgentView::Away => {}
                AgentView::FreeIn(d) => {
                    let d = d.as_secs_f64();
                    for (i, s) in s_mean.iter_mut().enumerate() {
                        if d <= t_of(i) + c {
                            *s += 1.0;
                        }
                    }
                }
                AgentView::Talking { elapsed, wrap } => {
                    let e = elapsed.as_secs_f64();
                    let w = wrap.as_secs_f64();
                    let alive = (1.0 - self.talk.cdf(e)).max(1e-6);
                    for i in 0..bins {
                        let x = t_of(i) + c - w;
                        if x <= 0.0 {
                            continue;
                        }
                        let ended =
                            ((self.talk.cdf(e + x) - self.talk.cdf(e)) / alive).clamp(0.0, 1.0);
                        s_mean[i] += ended;
                        s_var[i] += ended * (1.0 - ended);
                    }
                }
            }
        }
        for s in &mut s_mean {
            *s += free_now;
        }
        let mut d_mean = vec![0.0; bins];
        let mut d_var = vec![0.0; bins];
        for l in lines {
            match *l {
                LineView::Waiting => {
                    for m in &mut d_mean {
                        *m += 1.0;
                    }
                }
                LineView::Detecting { person, within } => {
                    let w = within.as_secs_f64();
                    for i in 0..bins {
                        if t_of(i) >= w {
                            d_mean[i] += person;
                            d_var[i] += person * (1.0 - person);
                        }
                    }
                }
                LineView::Ringing { elapsed } => {
                    let line = self.ringing(elapsed.as_secs_f64());
                    for i in 0..bins {
                        let q = self.share(p_person, &line, i);
                        d_mean[i] += q;
                        d_var[i] += q * (1.0 - q);
                    }
                }
            }
        }
        Some(Picture {
            p_person,
            weight,
            a_new,
            mass,
            s_mean,
            s_var,
            d_mean,
            d_var,
        })
    }
}

/// Bin i holds person-ready times in [i, i+1) s; it is evaluated at its middle.
fn t_of(i: usize) -> f64 {
    (i as f64 + 0.5) * STEP_S
}

/// A ringing line as [`Pacer::share`] sees it.
struct Ringing {
    r: f64,
    base: f64,
    unresolved: f64,
}

/// Supply (agents free by each bin's time plus the connect allowance) and demand (persons
/// ready by then) per one-second bin, as means and variances.
struct Picture {
    p_person: f64,
    /// Where a new dial's person lands, by bin, and how much of it (`mass`) is in the horizon.
    weight: Vec<f64>,
    /// Persons one new dial has produced by each bin.
    a_new: Vec<f64>,
    mass: f64,
    s_mean: Vec<f64>,
    s_var: Vec<f64>,
    d_mean: Vec<f64>,
    d_var: Vec<f64>,
}

impl Picture {
    fn bins(&self) -> usize {
        self.weight.len()
    }

    /// P(a person ready in bin `i` finds every agent taken), with `extra` persons of demand
    /// (mean and variance) added to what is out already; half a call of continuity correction.
    fn abandon_p(&self, i: usize, extra_mean: f64, extra_var: f64) -> f64 {
        let gap = self.d_mean[i] + extra_mean - self.s_mean[i] + 0.5;
        let var = (self.s_var[i] + self.d_var[i] + extra_var).max(0.0);
        if var < 1e-9 {
            if gap > 0.0 { 1.0 } else { 0.0 }
        } else {
            normal_cdf(gap / var.sqrt())
        }
    }
}

/// Φ(z), the standard normal distribution function (Abramowitz & Stegun 7.1.26 for erf;
/// absolute error under 1e-7, plenty for a dial decision).
pub fn normal_cdf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    let erf = if x >= 0.0 { y } else { -y };
    0.5 * (1.0 + erf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    const C: Duration = Duration::from_secs(2);
    const H: Duration = Duration::from_secs(30);

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert!((normal_cdf(-1.0) - 0.158_655).abs() < 1e-5);
    }

    #[test]
    fn histogram_cdf_is_monotone_and_forgets_when_full() {
        let mut h = Histogram::new(secs(1), 10, 100.0);
        for i in 0..60 {
            h.add(Duration::from_millis(100 * i), 1.0);
        }
        h.stale = u32::MAX;
        h.refresh();
        let mut last = 0.0;
        for x in 0..12 {
            let v = h.cdf(f64::from(x));
            assert!(v >= last);
            last = v;
        }
        assert_eq!(h.cdf(20.0), 1.0);
        for _ in 0..60 {
            h.add(secs(9), 1.0);
        }
        assert!(h.total() < 100.0, "halved when the cap was reached");
    }

    #[test]
    fn no_free_agents_and_long_talks_means_no_dials() {
        let mut p = Pacer::new(0.03);
        let agents = vec![
            AgentView::Talking {
                elapsed: secs(1),
                wrap: secs(10)
            };
            5
        ];
        let (n, _) = p.plan(&agents, &[], C, H, 50);
        assert_eq!(n, 0);
    }

    #[test]
    fn free_agents_get_several_lines_each_when_few_answer() {
        let mut p = Pacer::new(0.03);
        let agents = vec![AgentView::Free; 10];
        let (n, risk) = p.plan(&agents, &[], C, H, 200);
        // About one dial in four reaches a person: well over one line per free agent.
        assert!(n > 20, "dialled {n}");
        assert!(risk <= 0.03);
    }

    #[test]
    fn lines_already_ringing_leave_less_room() {
        let mut p = Pacer::new(0.03);
        let agents = vec![AgentView::Free; 10];
        let (alone, _) = p.plan(&agents, &[], C, H, 200);
        let lines = vec![LineView::Ringing { elapsed: secs(2) }; 20];
        let (with_lines, _) = p.plan(&agents, &lines, C, H, 200);
        assert!(with_lines < alone, "{with_lines} vs {alone}");
        let waiting = vec![LineView::Waiting; 10];
        let (none, _) = p.plan(&agents, &waiting, C, H, 200);
        assert_eq!(none, 0, "ten persons already waiting for ten agents");
    }

    #[test]
    fn agents_in_wrap_up_count_once_their_wrap_up_ends() {
        let mut p = Pacer::new(0.03);
        let soon = vec![AgentView::FreeIn(secs(3)); 10];
        let late = vec![AgentView::FreeIn(secs(60)); 10];
        let (a, _) = p.plan(&soon, &[], C, H, 200);
        let (b, _) = p.plan(&late, &[], C, H, 200);
        assert!(a > 10 && b == 0, "soon {a}, late {b}");
    }

    #[test]
    fn a_higher_threshold_dials_more() {
        let agents = vec![AgentView::Free; 10];
        let (low, _) = Pacer::new(0.01).plan(&agents, &[], C, H, 500);
        let (high, _) = Pacer::new(0.10).plan(&agents, &[], C, H, 500);
        assert!(high > low, "{high} vs {low}");
    }

    #[test]
    fn abandons_lower_the_threshold_and_connections_raise_it() {
        let mut p = Pacer::new(0.03);
        p.learn_outcome(true, 0.03);
        assert!(p.theta() < 0.03);
        let mut q = Pacer::new(0.03);
        for _ in 0..100 {
            q.learn_outcome(false, 0.03);
        }
        assert!(q.theta() > 0.03);
    }

    #[test]
    fn a_late_line_is_released_only_when_its_person_would_find_no_agent() {
        let mut p = Pacer::new(0.03);
        let late = [secs(15)];
        let busy = vec![
            AgentView::Talking {
                elapsed: secs(1),
                wrap: secs(10)
            };
            5
        ];
        let lines = vec![LineView::Ringing { elapsed: secs(15) }];
        assert_eq!(p.release(&busy, &lines, C, H, &late), vec![true]);
        let free = vec![AgentView::Free; 5];
        assert_eq!(p.release(&free, &lines, C, H, &late), vec![false]);
        // Past the last answer a line can bring nobody: ringing on costs nothing.
        let dead = [secs(29)];
        let lines = vec![LineView::Ringing { elapsed: secs(29) }];
        assert_eq!(p.release(&busy, &lines, C, H, &dead), vec![false]);
    }

    #[test]
    fn released_lines_do_not_bias_the_learned_answer_rate() {
        // One dial in four reaches a person after U(5, 20) s; the rest ring out at 25 s.
        // Every other line still ringing at 15 s is released, whatever it would have done.
        let mut rng = fastrand::Rng::with_seed(7);
        let mut p = Pacer::new(0.03);
        let mut naive = Pacer::new(0.03);
        for i in 0..20_000u32 {
            let person = rng.f64() < 0.25;
            let t = if person { 5.0 + 15.0 * rng.f64() } else { 25.0 };
            if t > 15.0 && i % 2 == 0 {
                p.learn_released(secs(15));
                naive.learn_dial(secs(15), false);
            } else {
                p.learn_dial(Duration::from_secs_f64(t), person);
                naive.learn_dial(Duration::from_secs_f64(t), person);
            }
        }
        assert!(
            (p.person_rate() - 0.25).abs() < 0.015,
            "{}",
            p.person_rate()
        );
        assert!(naive.person_rate() < 0.24, "{}", naive.person_rate());
    }

    #[test]
    fn agents_slow_to_answer_leave_less_of_the_connect_allowance() {
        // Sixteen agents finish wrap-up one a second over the dial's answer window.
        let agents: Vec<AgentView> = (5..=20).map(|s| AgentView::FreeIn(secs(s))).collect();
        let mut quick = Pacer::new(0.03);
        let mut slow = Pacer::new(0.03);
        for _ in 0..200 {
            slow.learn_agent_lag(Duration::from_millis(1500));
        }
        let (a, _) = quick.plan(&agents, &[], C, H, 500);
        let (b, _) = slow.plan(&agents, &[], C, H, 500);
        assert!(b < a, "slow agents {b}, quick agents {a}");
    }

    #[test]
    fn the_learned_answer_rate_follows_the_dials() {
        let mut p = Pacer::new(0.03);
        for i in 0..2000 {
            p.learn_dial(secs(10), i % 10 == 0);
        }
        assert!((p.person_rate() - 0.1).abs() < 0.02, "{}", p.person_rate());
    }
}
