//! Supervisor actions, and recovery after the switch connection comes back.

use crate::agent::Activity;
use crate::call::Phase;
use crate::config::Exit;
use crate::error::EngineError;
use crate::ids::{AgentId, CallId, QueueId};
use crate::io::{HangupCause, LegId, LiveEvent, MonitorMode, Presence, SwitchCommand};
use crate::stats::ExitReason;
use crate::trace::{Candidate, DecisionTrace};

use super::{Engine, LegRole, call_leg_of};

impl Engine {
    pub(crate) fn pause_queue(&mut self, q: QueueId, paused: bool) -> Result<(), EngineError> {
        let queue = self.queue_mut(q).ok_or(EngineError::UnknownQueue(q))?;
        if queue.cfg.paused == paused {
            return Ok(());
        }
        queue.cfg.paused = paused;
        self.notify(LiveEvent::QueuePaused { queue: q, paused });
        if !paused {
            self.mark_queue_dirty(q);
        }
        Ok(())
    }

    /// Offers a waiting call to a chosen agent now, whatever the strategy, skills or tiers
    /// say (the supervisor knows something the rules do not). The agent must be available
    /// and idle; a delay after a missed offer is waived.
    pub(crate) fn assign_call(&mut self, c: CallId, a: AgentId) -> Result<(), EngineError> {
        let call = self.calls.get(&c).ok_or(EngineError::UnknownCall(c))?;
        if call.phase != Phase::Waiting {
            return Err(EngineError::CallNotWaiting { call: c });
        }
        let agent = self.agent(a).ok_or(EngineError::UnknownAgent(a))?;
        if agent.presence != Presence::Available {
            return Err(EngineError::AgentNotFree {
                agent: a,
                why: "not available (logged out or on break)",
            });
        }
        if agent.activity != Activity::Idle {
            return Err(EngineError::AgentNotFree {
                agent: a,
                why: "busy with another call",
            });
        }
        let q = call.queue;
        let trace = DecisionTrace {
            offer: crate::ids::OfferId(0),
            call: c,
            call_leg: call_leg_of(self, c),
            queue: q,
            agent: a,
            at_unix_ms: 0,
            strategy: "supervisor-assign",
            wait_s: self
                .now
                .saturating_duration_since(call.wait_origin)
                .as_secs_f64(),
            priority: call.priority,
            max_level: call.max_level,
            relaxed_by: call.relax,
            matching_calls: 1,
            matching_agents: 1,
            candidates: vec![Candidate {
                agent: a,
                rank: 0,
                score: 0.0,
                level: 0,
                proficiency: 0,
            }],
            reason: "assigned by a supervisor".into(),
        };
        if let Some(agent) = self.agent_mut(a) {
            agent.not_before = None;
        }
        self.make_offer(c, a, Some(trace));
        Ok(())
    }

    pub(crate) fn move_call_cmd(&mut self, c: CallId, to: QueueId) -> Result<(), EngineError> {
        let call = self.calls.get(&c).ok_or(EngineError::UnknownCall(c))?;
        if !matches!(call.phase, Phase::Waiting | Phase::Offering) {
            return Err(EngineError::CallNotWaiting { call: c });
        }
        self.queue(to).ok_or(EngineError::UnknownQueue(to))?;
        self.exit_call(c, Exit::Queue(to), ExitReason::Supervisor);
        Ok(())
    }

    /// A call in conversation goes back to a queue (a blind transfer to a queue, mod_callcenter
    /// has none): the caller is parked alive out of the bridge first, then the agent's side is
    /// let go (hung up, or a persistent line back to park), the agent wraps up, and the call
    /// joins the queue as a new member with its old seniority. Its recording, tapping the
    /// caller's leg, goes on and will name the next agent too.
    pub(crate) fn transfer_call(
        &mut self,
        c: CallId,
        to: Option<QueueId>,
        by: Option<AgentId>,
    ) -> Result<(), EngineError> {
        let now = self.now;
        let call = self.calls.get(&c).ok_or(EngineError::UnknownCall(c))?;
        let Phase::Talking {
            agent,
            agent_leg,
            since,
        } = call.phase
        else {
            return Err(EngineError::CallNotTalking { call: c });
        };
        if let Some(a) = by
            && a != agent
        {
            return Err(EngineError::NotAgentsCall { call: c, agent: a });
        }
        if !call.caller_present {
            return Err(EngineError::CallNotTalking { call: c });
        }
        let q = to.unwrap_or(call.queue);
        self.queue(q).ok_or(EngineError::UnknownQueue(q))?;
        let (leg, from) = (call.leg, call.queue);
        // The caller first: once it is out of the bridge, the agent leg's end cannot take it
        // along (it carries hangup_after_bridge from its bridge).
        self.switch(SwitchCommand::Park { leg });
        self.free_agent_leg(agent, agent_leg, "NORMAL_CLEARING");
        let talk = now.saturating_duration_since(since);
        self.stats.call_talk_ended(now, from, c, agent, talk);
        self.finish_agent_call(agent, c, talk, true);
        self.join_queue(c, q);
        if let Some(call) = self.calls.get_mut(&c) {
            call.remember_tried(agent);
        }
        Ok(())
    }

    pub(crate) fn exit_call_cmd(&mut self, c: CallId, exit: Exit) -> Result<(), EngineError> {
        let call = self.calls.get(&c).ok_or(EngineError::UnknownCall(c))?;
        if !matches!(call.phase, Phase::Waiting | Phase::Offering) {
            return Err(EngineError::CallNotWaiting { call: c });
        }
        if let Exit::Queue(q) = exit {
            self.queue(q).ok_or(EngineError::UnknownQueue(q))?;
        }
        self.exit_call(c, exit, ExitReason::Supervisor);
        Ok(())
    }

    /// Changes a waiting call's priority; its place in line moves at once (seniority within
    /// the new priority is kept). A call already with an agent is refused: its priority
    /// would change nothing and the supervisor should hear so.
    pub(crate) fn set_priority(&mut self, c: CallId, priority: i32) -> Result<(), EngineError> {
        let call = self.calls.get(&c).ok_or(EngineError::UnknownCall(c))?;
        if !matches!(call.phase, Phase::Waiting | Phase::Offering) {
            return Err(EngineError::CallNotWaiting { call: c });
        }
        let in_line = call.phase == Phase::Waiting;
        let q = call.queue;
        let old_key = call.wait_key();
        let boost = self.queue(q).map_or(0, |q| q.cfg.priority_boost);
        let Some(call) = self.calls.get_mut(&c) else {
            return Ok(());
        };
        call.caller.priority = priority;
        call.priority = priority.saturating_add(boost);
        let new_key = call.wait_key();
        if in_line {
            if let Some(queue) = self.queue_mut(q) {
                queue.waiting.remove(&old_key);
                queue.waiting.insert(new_key);
            }
            self.dirty_calls.push(c);
        }
        Ok(())
    }

    pub(crate) fn monitor(
        &mut self,
        a: AgentId,
        dial: String,
        leg: LegId,
        mode: MonitorMode,
    ) -> Result<(), EngineError> {
        let agent = self.agent(a).ok_or(EngineError::UnknownAgent(a))?;
        let Activity::OnCall(_, agent_leg) = agent.activity else {
            return Err(EngineError::AgentNotOnCall { agent: a });
        };
        if self.legs.contains_key(&leg) {
            return Err(EngineError::InvalidConfig {
                field: "leg",
                message: "this leg id is already in use".into(),
            });
        }
        self.legs.insert(leg, LegRole::Monitor(a));
        self.monitors.insert(leg);
        self.switch(SwitchCommand::Eavesdrop {
            leg,
            dial,
            target: agent_leg,
            mode,
        });
        Ok(())
    }

    /// The Event Socket came back. `live` is every channel FreeSWITCH still has; anything we
    /// hold that is not in it ended while we could not see it.
    pub(crate) fn on_resync(&mut self, live: &[LegId], restarted: bool) {
        let live: crate::hash::FastSet<LegId> = live.iter().copied().collect();
        self.recordings_resynced(&live);
        let now = self.now;
        // An origination sent just before the disconnect may not exist yet: give offers
        // younger than this the benefit of the doubt (their own timeout still applies).
        let grace = std::time::Duration::from_secs(5);
        let mut gone: Vec<(LegId, LegRole)> = Vec::new();
        for (&leg, &role) in &self.legs {
            if live.contains(&leg) {
                continue;
            }
            if !restarted
                && let LegRole::Offer(o) = role
                && self
                    .offers
                    .get(&o)
                    .is_some_and(|o| now.saturating_duration_since(o.started) < grace)
            {
                continue;
            }
            if !restarted
                && let LegRole::AgentLine(a) = role
                && self
                    .agent(a)
                    .and_then(|a| a.line)
                    .is_some_and(|l| !l.up && now.saturating_duration_since(l.since) < grace)
            {
                continue;
            }
            if !restarted
                && let LegRole::Dial(c) = role
                && self.dial_age(c, leg).is_some_and(|age| age < grace)
            {
                continue;
            }
            gone.push((leg, role));
        }
        // Callers first (their calls end as lost), then agent legs.
        gone.sort_by_key(|(leg, role)| (!matches!(role, LegRole::Caller(_)), *leg));
        for (leg, _) in gone {
            self.on_leg_hangup(leg, HangupCause::Lost);
        }
    }
}
