//! The matching step. After every input the core looks at what changed (calls that started
//! waiting or escalated, agents that became ready) and assigns calls to agents:
//!
//! 1. For each changed call, its best few eligible ready agents in its queue's strategy order.
//! 2. For each changed agent, the most urgent few calls it may take across all its queues.
//! 3. One maximum-weight matching over all those pairs, where a pair's weight is the call's
//!    urgency (priority first, then wait measured against its queue's service-level
//!    threshold) plus the agent's fit (its rank in the queue's strategy order). A call that
//!    only one agent can serve is not starved by a call that had alternatives, and an agent
//!    serving several queues takes the call most at risk of missing its service level.
//!
//! Usually one call or one agent changed and the step is a few tree lookups.

use crate::call::Phase;
use crate::config::Strategy;
use crate::hash::FastMap;
use crate::ids::{AgentId, CallId, QueueId};
use crate::routing::{Ineligible, eligible, matching};
use crate::timers::TimerKey;
use crate::trace::{Candidate, DecisionTrace};

use super::{Engine, call_leg_of};

/// Candidates gathered per changed call or agent.
const FANOUT: usize = 4;
/// Rounds of matching in one step (each round makes progress or stops).
const MAX_ROUNDS: usize = 64;
/// Most extra agents rung at once for one ring-all call.
const RING_ALL_MAX: usize = 256;

#[derive(Default)]
struct Graph {
    calls: Vec<CallId>,
    agents: Vec<AgentId>,
    call_ix: FastMap<CallId, usize>,
    agent_ix: FastMap<AgentId, usize>,
    /// Per call: candidate agents in the order found (call-side first).
    cands: Vec<Vec<(usize, u32)>>,
}

impl Graph {
    fn call(&mut self, c: CallId) -> usize {
        *self.call_ix.entry(c).or_insert_with(|| {
            self.calls.push(c);
            self.cands.push(Vec::new());
            self.calls.len() - 1
        })
    }
    fn agent(&mut self, a: AgentId) -> usize {
        *self.agent_ix.entry(a).or_insert_with(|| {
            self.agents.push(a);
            self.agents.len() - 1
        })
    }
    fn add(&mut self, c: CallId, a: AgentId, prof: u32) {
        let ci = self.call(c);
        let ai = self.agent(a);
        if !self.cands[ci].iter().any(|&(x, _)| x == ai) {
            self.cands[ci].push((ai, prof));
        }
    }
}

impl Engine {
    pub(crate) fn dispatch(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let mut seen: Vec<AgentId> = Vec::new();
            self.match_dirty(&mut seen);
            // Agents that found no call wait in their queues' indexes.
            seen.append(&mut self.dirty_agents);
            for a in seen {
                self.index_agent(a);
            }
            // Offers to persistent lines are taken now; agents they beat in a ring-all are
            // free again and match anew.
            if !self.accept_instant_offers() {
                return;
            }
        }
    }

    fn match_dirty(&mut self, seen: &mut Vec<AgentId>) {
        for _ in 0..MAX_ROUNDS {
            if self.dirty_calls.is_empty() && self.dirty_agents.is_empty() {
                return;
            }
            let mut calls = std::mem::take(&mut self.dirty_calls);
            let mut agents = std::mem::take(&mut self.dirty_agents);
            calls.sort_unstable();
            calls.dedup();
            agents.sort_unstable();
            agents.dedup();
            seen.extend_from_slice(&agents);
            // The common cases, one call or one agent changed, need no matching: the call's
            // first candidate in strategy order, or the agent's most urgent call.
            if agents.is_empty() && calls.len() == 1 {
                self.dispatch_one_call(calls[0]);
                continue;
            }
            if calls.is_empty() && agents.len() == 1 {
                self.dispatch_one_agent(agents[0]);
                continue;
            }
            let mut g = Graph::default();
            for &c in &calls {
                for (a, prof) in self.candidates_for_call(c, FANOUT) {
                    g.add(c, a, prof);
                }
            }
            for &a in &agents {
                for (c, prof) in self.candidates_for_agent(a, FANOUT) {
                    g.add(c, a, prof);
                }
            }
            if g.calls.is_empty() {
                return;
            }
            let mut edges = Vec::new();
            let mut ranked: Vec<Vec<(usize, u32, f64)>> = Vec::with_capacity(g.calls.len());
            for ci in 0..g.calls.len() {
                let order = self.rank_candidates(g.calls[ci], &g, ci);
                let urgency = self.urgency(g.calls[ci]);
                let n = order.len().max(1) as f64;
                let mut list = Vec::with_capacity(order.len());
                for (rank, &(ai, prof)) in order.iter().enumerate() {
                    let w = urgency + 1.0 - rank as f64 / n;
                    edges.push((ci, ai, w));
                    list.push((ai, prof, w));
                }
                ranked.push(list);
            }
            let pairs = matching::solve(
                g.calls.len(),
                g.agents.len(),
                &edges,
                self.cfg.exact_matching_limit,
            );
            let mut matched_calls = vec![false; g.calls.len()];
            let mut matched_agents = vec![false; g.agents.len()];
            for &(ci, ai) in &pairs {
                matched_calls[ci] = true;
                matched_agents[ai] = true;
            }
            for &(ci, ai) in &pairs {
                let (c, a) = (g.calls[ci], g.agents[ai]);
                let cands: Vec<(AgentId, u32, f64)> = ranked[ci]
                    .iter()
                    .map(|&(x, p, w)| (g.agents[x], p, w))
                    .collect();
                let trace =
                    self.build_trace(c, a, &cands, pairs.len(), (g.calls.len(), g.agents.len()));
                self.make_offer(c, a, Some(trace));
                self.after_first_offer(c);
            }
            if pairs.is_empty() {
                return;
            }
            // Calls and agents that had candidates but lost them to others in this round may
            // have further candidates beyond the few looked at: look again.
            for (ci, list) in ranked.iter().enumerate() {
                if !matched_calls[ci] && !list.is_empty() {
                    self.dirty_calls.push(g.calls[ci]);
                }
            }
            for (ai, &m) in matched_agents.iter().enumerate() {
                if !m {
                    self.dirty_agents.push(g.agents[ai]);
                }
            }
        }
    }

    fn dispatch_one_call(&mut self, c: CallId) {
        let cands = self.candidates_for_call(c, FANOUT);
        let Some(&(chosen, _)) = cands.first() else {
            return;
        };
        let urgency = self.urgency(c);
        let n = cands.len() as f64;
        let ranked: Vec<(AgentId, u32, f64)> = cands
            .iter()
            .enumerate()
            .map(|(rank, &(a, prof))| (a, prof, urgency + 1.0 - rank as f64 / n))
            .collect();
        let trace = self.build_trace(c, chosen, &ranked, 1, (1, cands.len()));
        self.make_offer(c, chosen, Some(trace));
        self.after_first_offer(c);
    }

    fn dispatch_one_agent(&mut self, a: AgentId) {
        let Some(&(c, prof)) = self.candidates_for_agent(a, 1).first() else {
            return;
        };
        let ranked = [(a, prof, self.urgency(c) + 1.0)];
        let trace = self.build_trace(c, a, &ranked, 1, (1, 1));
        self.make_offer(c, a, Some(trace));
        self.after_first_offer(c);
    }

    /// Ring-all rings every other eligible agent too; ring-progressively arms the next step.
    fn after_first_offer(&mut self, c: CallId) {
        let Some(call) = self.calls.get(&c) else {
            return;
        };
        // Taken already, or about to be by an agent on a persistent line: ringing others
        // would only make offers to cancel.
        if call.phase != Phase::Offering
            || call.offers.iter().any(|o| self.instant_accepts.contains(o))
        {
            return;
        }
        let Some(queue) = self.queue(call.queue) else {
            return;
        };
        match queue.cfg.strategy {
            Strategy::RingAll => {
                let others = self.candidates_for_call(c, RING_ALL_MAX);
                let urgency = self.urgency(c);
                let ranked: Vec<(AgentId, u32, f64)> =
                    others.iter().map(|&(a, p)| (a, p, urgency + 1.0)).collect();
                for &(a, _) in &others {
                    // Every agent rung gets its own trace: one offer, one record.
                    let mut trace = self.build_trace(c, a, &ranked, 1, (1, others.len()));
                    trace.reason = format!(
                        "ring-all: rung together with {} other eligible agent(s)",
                        others.len()
                    );
                    self.make_offer(c, a, Some(trace));
                }
            }
            Strategy::RingProgressively => {
                let t = self.now + queue.cfg.ring_progressively_step;
                if let Some(call) = self.calls.get_mut(&c)
                    && call.timers.ring_next.is_none()
                {
                    call.timers.ring_next = Some(t);
                    self.timers.arm(t, TimerKey::RingNext(c));
                }
            }
            _ => {}
        }
    }

    /// Ring-progressively's next agent for a call already ringing others.
    pub(crate) fn next_candidate(&mut self, c: CallId) -> Option<(AgentId, DecisionTrace)> {
        let (a, prof) = self.candidates_for_call(c, 1).into_iter().next()?;
        let call = self.calls.get(&c)?;
        let queue = self.queue(call.queue)?;
        let level = self
            .agent(a)
            .and_then(|ag| ag.membership(call.queue))
            .map_or(0, |m| m.level);
        Some((
            a,
            DecisionTrace {
                offer: crate::ids::OfferId(0),
                call: c,
                call_leg: call_leg_of(self, c),
                queue: call.queue,
                agent: a,
                at_unix_ms: 0,
                strategy: queue.cfg.strategy.name(),
                wait_s: self.now.saturating_duration_since(call.queue_entered).as_secs_f64(),
                priority: call.priority,
                max_level: call.max_level,
                relaxed_by: call.relax,
                matching_calls: 1,
                matching_agents: 1,
                candidates: vec![Candidate { agent: a, rank: 0, score: 1.0, level, proficiency: prof }],
                reason: "ring-progressively: next agent in tier order added while the others keep ringing".into(),
            },
        ))
    }

    /// How urgently a call needs an agent: priority dominates, then the fraction of its
    /// queue's service-level threshold already spent (a call at 18 s of a 20 s target beats
    /// one at 30 s of a 120 s target).
    fn urgency(&self, c: CallId) -> f64 {
        let Some(call) = self.calls.get(&c) else {
            return 0.0;
        };
        let threshold = self
            .queue(call.queue)
            .map_or(20.0, |q| q.cfg.sl_threshold.as_secs_f64().max(0.001));
        let waited = self
            .now
            .saturating_duration_since(call.wait_origin)
            .as_secs_f64();
        f64::from(call.priority) * 1e6 + 10.0 * (waited / threshold).min(1000.0) + 1.0
    }

    /// Eligible ready agents for a waiting call, best first by the queue's strategy.
    pub(crate) fn candidates_for_call(&mut self, c: CallId, want: usize) -> Vec<(AgentId, u32)> {
        let mut out = self.collect_for_call(c, want, false);
        if out.is_empty() {
            // Everyone eligible has already failed this call: try them again rather than
            // leave the caller waiting on nobody.
            out = self.collect_for_call(c, want, true);
        }
        out
    }

    fn collect_for_call(
        &mut self,
        c: CallId,
        want: usize,
        allow_tried: bool,
    ) -> Vec<(AgentId, u32)> {
        let now = self.now;
        let mut out = Vec::new();
        let Some(call) = self.calls.get(&c) else {
            return out;
        };
        if !matches!(call.phase, Phase::Waiting | Phase::Offering) {
            return out;
        }
        let Some(queue) = self.queues.get(call.queue.index()).and_then(Option::as_ref) else {
            return out;
        };
        if queue.cfg.paused || queue.ready.is_empty() {
            return out;
        }
        if let Some(a) = call.caller.agent {
            // A direct call: its one agent (ready and a member), however far down the ready
            // index it is.
            if let Some(agent) = self.agents.get(a.index()).and_then(Option::as_ref)
                && let Ok(p) = eligible_now(agent, call, &queue.cfg, allow_tried, now)
            {
                out.push((a, p));
            }
            return out;
        }
        let scan_limit = self.cfg.scan_limit.max(want);
        match queue.cfg.strategy {
            Strategy::Random | Strategy::WeightedRandom => {
                for (&level, sampler) in &queue.ready.samplers {
                    if level > call.max_level {
                        break;
                    }
                    if sampler.total() == 0 {
                        continue;
                    }
                    for _ in 0..want * 4 {
                        if out.len() >= want {
                            break;
                        }
                        let r = self.rng.u64(0..sampler.total());
                        let Some(a) = sampler.find(r) else { continue };
                        if out.iter().any(|&(x, _)| x == a) {
                            continue;
                        }
                        let Some(agent) = self.agents.get(a.index()).and_then(Option::as_ref)
                        else {
                            continue;
                        };
                        if let Ok(p) = eligible_now(agent, call, &queue.cfg, allow_tried, now) {
                            out.push((a, p));
                        }
                    }
                    if out.is_empty() {
                        // Sampling kept hitting ineligible agents: scan this level.
                        let lo = crate::routing::index::ReadyKey {
                            level,
                            a: 0,
                            b: 0,
                            agent: AgentId(0),
                        };
                        for key in queue
                            .ready
                            .set
                            .range(lo..)
                            .take_while(|k| k.level == level)
                            .take(scan_limit)
                        {
                            if out.len() >= want {
                                break;
                            }
                            if let Some(agent) =
                                self.agents.get(key.agent.index()).and_then(Option::as_ref)
                                && let Ok(p) =
                                    eligible_now(agent, call, &queue.cfg, allow_tried, now)
                            {
                                out.push((key.agent, p));
                            }
                        }
                    }
                    if !out.is_empty() {
                        break;
                    }
                }
            }
            strategy => {
                let rr = if strategy == Strategy::RoundRobin {
                    queue.rr_last
                } else {
                    None
                };
                let keys = queue
                    .ready
                    .set
                    .iter()
                    .take_while(|k| k.level <= call.max_level);
                let consider = |key: &crate::routing::index::ReadyKey,
                                out: &mut Vec<(AgentId, u32)>| {
                    if let Some(agent) = self.agents.get(key.agent.index()).and_then(Option::as_ref)
                        && let Ok(p) = eligible_now(agent, call, &queue.cfg, allow_tried, now)
                    {
                        out.push((key.agent, p));
                    }
                };
                match rr {
                    None => {
                        for key in keys.take(scan_limit) {
                            if out.len() >= want {
                                break;
                            }
                            consider(key, &mut out);
                        }
                    }
                    Some((level, pos)) => {
                        // Round-robin: within the level offered last, start after the last
                        // position and wrap; other levels in plain order.
                        let mut after = Vec::new();
                        let mut before = Vec::new();
                        for key in keys {
                            if key.level == level && key.a <= pos {
                                before.push(*key);
                            } else if key.level == level {
                                after.push(*key);
                            } else if key.level < level {
                                before.insert(0, *key);
                            } else {
                                before.push(*key);
                            }
                            if after.len() + before.len() >= scan_limit {
                                break;
                            }
                        }
                        let lower: Vec<_> =
                            before.iter().filter(|k| k.level < level).copied().collect();
                        let same: Vec<_> = before
                            .iter()
                            .filter(|k| k.level == level)
                            .copied()
                            .collect();
                        let higher: Vec<_> =
                            before.iter().filter(|k| k.level > level).copied().collect();
                        for key in lower
                            .iter()
                            .chain(after.iter())
                            .chain(same.iter())
                            .chain(higher.iter())
                        {
                            if out.len() >= want {
                                break;
                            }
                            consider(key, &mut out);
                        }
                    }
                }
            }
        }
        out
    }

    /// The most urgent waiting calls a newly ready agent may take, across its queues.
    fn candidates_for_agent(&self, a: AgentId, want: usize) -> Vec<(CallId, u32)> {
        let mut found: Vec<(f64, CallId, u32)> = Vec::new();
        let Some(agent) = self.agent(a) else {
            return Vec::new();
        };
        if !agent.is_ready(self.now) {
            return Vec::new();
        }
        for m in &agent.memberships {
            let Some(queue) = self.queue(m.queue) else {
                continue;
            };
            if queue.cfg.paused || queue.waiting.is_empty() {
                continue;
            }
            let mut taken = 0;
            for key in queue.waiting.iter().take(self.cfg.scan_limit) {
                if taken >= want {
                    break;
                }
                let Some(call) = self.calls.get(&key.call) else {
                    continue;
                };
                if let Ok(p) = eligible(agent, call, &queue.cfg, true) {
                    found.push((self.urgency(key.call), key.call, p));
                    taken += 1;
                }
            }
        }
        found.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        found.truncate(want);
        found.into_iter().map(|(_, c, p)| (c, p)).collect()
    }

    /// Orders a call's candidates by its queue's strategy: call-side candidates came in
    /// strategy order already; agent-side ones are placed by their ready key (random
    /// strategies keep the sampled order and append the rest).
    fn rank_candidates(&self, c: CallId, g: &Graph, ci: usize) -> Vec<(usize, u32)> {
        let mut list = g.cands[ci].clone();
        let Some(call) = self.calls.get(&c) else {
            return list;
        };
        let Some(queue) = self.queue(call.queue) else {
            return list;
        };
        if matches!(
            queue.cfg.strategy,
            Strategy::Random | Strategy::WeightedRandom
        ) || list.len() < 2
        {
            return list;
        }
        let rr = if queue.cfg.strategy == Strategy::RoundRobin {
            queue.rr_last
        } else {
            None
        };
        let key = |ai: usize| {
            let k = self
                .agent(g.agents[ai])
                .and_then(|a| a.ready_key(call.queue));
            k.map(|k| {
                let wrapped = rr.is_some_and(|(level, pos)| k.level == level && k.a <= pos);
                (k.level, wrapped, k.a, k.b, k.agent)
            })
        };
        list.sort_by_key(|&(ai, _)| key(ai));
        list
    }

    fn build_trace(
        &self,
        c: CallId,
        chosen: AgentId,
        ranked: &[(AgentId, u32, f64)],
        matched: usize,
        step: (usize, usize),
    ) -> DecisionTrace {
        let call = self.calls.get(&c);
        let q = call.map_or(QueueId(0), |c| c.queue);
        let queue = self.queue(q);
        let strategy = queue.map_or(Strategy::LongestIdleAgent, |q| q.cfg.strategy);
        let candidates: Vec<Candidate> = ranked
            .iter()
            .enumerate()
            .take(self.cfg.trace_candidates)
            .map(|(rank, &(agent, prof, score))| {
                let level = self
                    .agent(agent)
                    .and_then(|a| a.membership(q))
                    .map_or(0, |m| m.level);
                Candidate {
                    agent,
                    rank: rank as u32,
                    score,
                    level,
                    proficiency: prof,
                }
            })
            .collect();
        let chosen_rank = ranked
            .iter()
            .position(|&(a, _, _)| a == chosen)
            .unwrap_or(0);
        let reason = if chosen_rank == 0 {
            format!(
                "{}: first of {} eligible ready agent(s) in strategy order",
                strategy.name(),
                ranked.len()
            )
        } else {
            format!(
                "{}: rank {} chosen because the global matching gave the higher-ranked agent(s) to other calls ({} pair(s) matched across {} call(s))",
                strategy.name(),
                chosen_rank,
                matched,
                step.0
            )
        };
        let wait = call.map_or(0.0, |c| {
            self.now
                .saturating_duration_since(c.wait_origin)
                .as_secs_f64()
        });
        DecisionTrace {
            offer: crate::ids::OfferId(0),
            call: c,
            call_leg: call_leg_of(self, c),
            queue: q,
            agent: chosen,
            at_unix_ms: 0,
            strategy: strategy.name(),
            wait_s: wait,
            priority: call.map_or(0, |c| c.priority),
            max_level: call.map_or(0, |c| c.max_level),
            relaxed_by: call.map_or(0, |c| c.relax),
            matching_calls: step.0 as u32,
            matching_agents: step.1 as u32,
            candidates,
            reason,
        }
    }
}

/// Eligibility for an agent found in a ready index, whose entry may belong to an agent that
/// is ringing for another call or in a delay (entries stay while an agent is reserved).
fn eligible_now(
    agent: &crate::agent::Agent,
    call: &crate::call::Call,
    queue: &crate::config::QueueConfig,
    allow_tried: bool,
    now: std::time::Instant,
) -> Result<u32, Ineligible> {
    if !agent.is_ready(now) {
        return Err(Ineligible::NotReady);
    }
    eligible(agent, call, queue, allow_tried)
}
