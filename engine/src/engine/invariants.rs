//! Consistency checks the simulations run after every step: no caller lost or duplicated, no
//! agent double-booked, indexes matching states. Cheap enough for tests, too slow for
//! production hot paths (it walks everything).

use crate::agent::Activity;
use crate::call::Phase;
use crate::hash::FastMap;
use crate::ids::{AgentId, CallId};

use super::{Engine, LegRole};

/// What was found broken, in words a test failure can print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvariantViolation(pub String);

impl Engine {
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let fail = |s: String| Err(InvariantViolation(s));
        // Every waiting call is in exactly one line: its own queue's.
        let mut seen: FastMap<CallId, usize> = FastMap::default();
        for q in self.queues.iter().flatten() {
            for key in &q.waiting {
                *seen.entry(key.call).or_default() += 1;
                let Some(call) = self.calls.get(&key.call) else {
                    return fail(format!(
                        "{} waits in {} but does not exist",
                        key.call, q.cfg.id
                    ));
                };
                if call.queue != q.cfg.id || call.phase != Phase::Waiting || call.wait_key() != *key
                {
                    return fail(format!(
                        "{} in {}'s line has queue {} phase {:?}",
                        key.call, q.cfg.id, call.queue, call.phase
                    ));
                }
            }
        }
        for (id, call) in &self.calls {
            let n = seen.get(id).copied().unwrap_or(0);
            if (call.phase == Phase::Waiting) != (n == 1) {
                return fail(format!("{id} phase {:?} appears in {n} lines", call.phase));
            }
            if (call.phase == Phase::Offering) == call.offers.is_empty() {
                return fail(format!(
                    "{id} phase {:?} with {} offers",
                    call.phase,
                    call.offers.len()
                ));
            }
            for o in &call.offers {
                match self.offers.get(o) {
                    Some(offer) if offer.call == *id => {}
                    _ => return fail(format!("{id} lists {o} which is not its offer")),
                }
            }
            if let Phase::Talking { agent, .. }
            | Phase::Connecting { agent, .. }
            | Phase::CallingBack { agent, .. } = call.phase
            {
                match self.agent(agent).map(|a| a.activity) {
                    Some(Activity::OnCall(c, _)) if c == *id => {}
                    other => {
                        return fail(format!("{id} talks to {agent} whose activity is {other:?}"));
                    }
                }
            }
        }
        // Offers: one per reserved agent, each agent at most one.
        let mut reserved: FastMap<AgentId, usize> = FastMap::default();
        for (o, offer) in &self.offers {
            *reserved.entry(offer.agent).or_default() += 1;
            match self.agent(offer.agent).map(|a| a.activity) {
                Some(Activity::Reserved(x)) if x == *o => {}
                other => {
                    return fail(format!(
                        "{o} reserves {} whose activity is {other:?}",
                        offer.agent
                    ));
                }
            }
            if self.legs.get(&offer.leg) != Some(&LegRole::Offer(*o)) {
                return fail(format!("{o}'s leg is not mapped to it"));
            }
            match self.calls.get(&offer.call) {
                Some(c) if c.phase == Phase::Offering && c.offers.contains(o) => {}
                _ => {
                    return fail(format!(
                        "{o} belongs to {} which is not offering it",
                        offer.call
                    ));
                }
            }
        }
        for agent in self.agents.iter().flatten() {
            let id = agent.cfg.id;
            if let Some(line) = agent.line {
                let ok = match self.legs.get(&line.leg) {
                    Some(LegRole::AgentLine(a)) => *a == id,
                    Some(LegRole::Offer(o)) => self.offers.get(o).is_some_and(|o| o.agent == id),
                    Some(LegRole::AgentOnCall(c)) => {
                        agent.activity == Activity::OnCall(*c, line.leg)
                    }
                    _ => false,
                };
                if !ok {
                    return fail(format!(
                        "{id}'s line {} maps to {:?}",
                        line.leg,
                        self.legs.get(&line.leg)
                    ));
                }
            }
            if reserved.get(&id).copied().unwrap_or(0) > 1 {
                return fail(format!("{id} holds several offers"));
            }
            if let Activity::Reserved(o) = agent.activity
                && !self.offers.contains_key(&o)
            {
                return fail(format!("{id} reserved for vanished {o}"));
            }
            if let Activity::OnCall(c, _) = agent.activity
                && !self.calls.contains_key(&c)
            {
                return fail(format!("{id} on vanished {c}"));
            }
            let ready = agent.is_ready(self.now);
            // Entries stay while an agent rings (reserved) and go when it takes a call.
            if agent.indexed
                && (agent.presence != crate::io::Presence::Available
                    || !matches!(agent.activity, Activity::Idle | Activity::Reserved(_)))
            {
                return fail(format!(
                    "{id} is indexed as ready while {:?}",
                    agent.activity
                ));
            }
            for m in &agent.memberships {
                let Some(q) = self.queue(m.queue) else {
                    continue;
                };
                let present = agent
                    .ready_key(m.queue)
                    .is_some_and(|k| q.ready.contains(&k));
                if present != agent.indexed {
                    return fail(format!(
                        "{id} indexed={} but {}'s index says {present}",
                        agent.indexed, m.queue
                    ));
                }
            }
            if ready && !agent.indexed && !agent.memberships.is_empty() {
                return fail(format!("{id} is ready but not indexed"));
            }
        }
        // Queue counters.
        for q in self.queues.iter().flatten() {
            let offering = self
                .calls
                .values()
                .filter(|c| c.queue == q.cfg.id && c.phase == Phase::Offering)
                .count();
            if offering != q.offering as usize {
                return fail(format!(
                    "{} counts {} ringing calls, there are {offering}",
                    q.cfg.id, q.offering
                ));
            }
            let logged = q
                .members
                .iter()
                .filter(|a| self.agent(**a).is_some_and(|a| a.is_logged_in()))
                .count();
            if logged != q.logged_in as usize {
                return fail(format!(
                    "{} counts {} logged in, there are {logged}",
                    q.cfg.id, q.logged_in
                ));
            }
        }
        Ok(())
    }
}
