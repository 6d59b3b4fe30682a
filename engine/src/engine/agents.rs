//! Agents: configuration, memberships, presence, and the ready indexes that routing reads.

use crate::agent::{Activity, Agent, AgentStateKind};
use crate::config::{AgentConfig, EmptyRule, Membership, QueueConfig};
use crate::error::EngineError;
use crate::ids::{AgentId, QueueId};
use crate::io::{AgentStateRecord, LiveEvent, Presence, Record};
use crate::queue::Queue;
use crate::routing::index::key_for;
use crate::timers::TimerKey;

use super::Engine;

impl Engine {
    fn check_id(&self, id: u32) -> Result<(), EngineError> {
        if id > self.cfg.max_id {
            return Err(EngineError::IdTooLarge {
                id,
                max: self.cfg.max_id,
            });
        }
        Ok(())
    }

    pub(crate) fn upsert_queue(&mut self, cfg: QueueConfig) -> Result<(), EngineError> {
        self.check_id(cfg.id.0)?;
        validate_queue(&cfg)?;
        let id = cfg.id;
        let idx = id.index();
        if self.queues.len() <= idx {
            self.queues.resize_with(idx + 1, || None);
        }
        self.stats.configure_queue(
            id,
            crate::stats::QueueStatsConfig {
                sl_threshold: cfg.sl_threshold,
                short_abandon: cfg.short_abandon,
            },
        );
        match self.queues[idx].as_mut() {
            None => self.queues[idx] = Some(Queue::new(cfg)),
            Some(q) => {
                let strategy_changed = q.cfg.strategy != cfg.strategy || q.cfg.skills != cfg.skills;
                let was_paused = q.cfg.paused;
                let mut cfg = cfg;
                cfg.escalation.sort_by_key(|s| s.after);
                q.cfg = cfg;
                if strategy_changed {
                    q.ready.clear();
                    q.rr_last = None;
                    let members = q.members.clone();
                    for a in members {
                        self.reindex_agent(a);
                    }
                }
                if was_paused {
                    self.mark_queue_dirty(id);
                }
            }
        }
        Ok(())
    }

    pub(crate) fn remove_queue(&mut self, id: QueueId) -> Result<(), EngineError> {
        let members = self
            .queue(id)
            .ok_or(EngineError::UnknownQueue(id))?
            .members
            .clone();
        // Refused, not drained: whoever deletes a queue decides where its calls and campaigns
        // go (move the calls, point the campaigns elsewhere or delete them), not the engine.
        let (calls, campaigns) = self.queue_users(id);
        if calls > 0 || !campaigns.is_empty() {
            return Err(EngineError::QueueInUse {
                queue: id,
                calls,
                campaigns,
            });
        }
        for &a in &members {
            // Keys are parallel to memberships: take the agent out before changing them.
            self.unindex_agent(a);
            if let Some(agent) = self.agent_mut(a) {
                agent.memberships.retain(|m| m.queue != id);
            }
        }
        self.queues[id.index()] = None;
        for a in members {
            self.refresh_agent(a);
        }
        Ok(())
    }

    pub(crate) fn upsert_agent(&mut self, cfg: AgentConfig) -> Result<(), EngineError> {
        self.check_id(cfg.id.0)?;
        validate_agent(&cfg)?;
        if let Some(&(skill, p)) = cfg.skills.iter().find(|(_, p)| !(1..=10).contains(p)) {
            return Err(EngineError::InvalidConfig {
                field: "skills",
                message: format!("proficiency of {skill} is {p}; it must be 1..=10"),
            });
        }
        let id = cfg.id;
        let idx = id.index();
        if self.agents.len() <= idx {
            self.agents.resize_with(idx + 1, || None);
        }
        match self.agents[idx].as_mut() {
            None => {
                let serial = self.rng.u64(..);
                self.agents[idx] = Some(Agent::new(cfg, self.now, serial));
            }
            Some(a) => {
                a.cfg = cfg;
                self.sync_agent_line(id);
                self.reindex_agent(id);
            }
        }
        Ok(())
    }

    pub(crate) fn remove_agent(&mut self, id: AgentId) -> Result<(), EngineError> {
        let agent = self.agent(id).ok_or(EngineError::UnknownAgent(id))?;
        if agent.activity != Activity::Idle {
            return Err(EngineError::AgentNotFree {
                agent: id,
                why: "has a call; log out after it",
            });
        }
        self.set_presence(id, Presence::LoggedOut)?;
        self.set_memberships(id, Vec::new())?;
        if let Some(t) = self.agent(id).and_then(|a| a.ready_timer) {
            self.timers.cancel(t, TimerKey::AgentReady(id));
        }
        self.agents[id.index()] = None;
        Ok(())
    }

    pub(crate) fn set_memberships(
        &mut self,
        id: AgentId,
        list: Vec<Membership>,
    ) -> Result<(), EngineError> {
        self.agent(id).ok_or(EngineError::UnknownAgent(id))?;
        if let Some(m) = list.iter().find(|m| self.queue(m.queue).is_none()) {
            return Err(EngineError::UnknownQueue(m.queue));
        }
        self.unindex_agent(id);
        let (logged, avail) = self.presence_flags(id);
        let old: Vec<QueueId> = self
            .agent(id)
            .map(|a| a.memberships.iter().map(|m| m.queue).collect())
            .unwrap_or_default();
        for q in &old {
            if let Some(queue) = self.queue_mut(*q) {
                queue.members.retain(|a| *a != id);
                queue.logged_in -= u32::from(logged);
                queue.available -= u32::from(avail);
            }
        }
        let mut list = list;
        list.dedup_by_key(|m| m.queue);
        for m in &list {
            if let Some(queue) = self.queue_mut(m.queue) {
                queue.members.push(id);
                queue.logged_in += u32::from(logged);
                queue.available += u32::from(avail);
            }
        }
        let queues: Vec<QueueId> = list.iter().map(|m| m.queue).collect();
        self.stats.agent_queues(self.now, id, &queues);
        if let Some(a) = self.agent_mut(id) {
            a.memberships = list;
        }
        for q in old {
            self.check_empty(q);
        }
        self.refresh_agent(id);
        Ok(())
    }

    fn presence_flags(&self, id: AgentId) -> (bool, bool) {
        self.agent(id).map_or((false, false), |a| {
            (a.is_logged_in(), a.presence == Presence::Available)
        })
    }

    pub(crate) fn set_presence(
        &mut self,
        id: AgentId,
        presence: Presence,
    ) -> Result<(), EngineError> {
        if presence != Presence::Available && self.agent(id).is_some_and(|a| a.presence != presence)
        {
            self.release_desktop_reservation(id);
        }
        let agent = self.agent(id).ok_or(EngineError::UnknownAgent(id))?;
        if agent.presence == presence {
            return Ok(());
        }
        let before = agent.state();
        let (was_logged, was_avail) = self.presence_flags(id);
        let now = self.now;
        if let Some(a) = self.agent_mut(id) {
            if !was_logged {
                // Counters are "since login" (least-talk-time, fewest-calls).
                a.talk_ms = 0;
                a.calls_answered = 0;
                a.no_answer_streak = 0;
                a.idle_since = now;
            }
            if presence == Presence::Available && a.activity == Activity::Idle {
                a.idle_since = now;
            }
            a.presence = presence;
        }
        let (logged, avail) = self.presence_flags(id);
        let queues: Vec<QueueId> = self
            .agent(id)
            .map(|a| a.memberships.iter().map(|m| m.queue).collect())
            .unwrap_or_default();
        for q in &queues {
            if let Some(queue) = self.queue_mut(*q) {
                queue.logged_in = queue.logged_in + u32::from(logged) - u32::from(was_logged);
                queue.available = queue.available + u32::from(avail) - u32::from(was_avail);
            }
        }
        self.reindex_agent(id);
        self.agent_changed(id, before);
        for q in queues {
            if was_logged && !logged || was_avail && !avail {
                self.check_empty(q);
            }
            // Only the first member to log in disarms the no-agent timers.
            if !was_logged && logged && self.queue(q).is_some_and(|queue| queue.logged_in == 1) {
                self.cancel_no_agent_timers(q);
            }
        }
        Ok(())
    }

    /// Emits the state change (live feed, record, statistics) if the reported state moved.
    pub(crate) fn agent_changed(&mut self, id: AgentId, before: AgentStateKind) {
        self.sync_agent_line(id);
        let Some(agent) = self.agent(id) else { return };
        let after = agent.state();
        if after == before {
            return;
        }
        let reason = agent.break_reason();
        let now = self.now;
        self.stats.agent_state(now, id, after);
        self.notify(LiveEvent::AgentState {
            agent: id,
            state: after,
            reason: reason.clone(),
        });
        let at_unix_ms = self.unix_ms(now);
        self.persist(Record::AgentState(AgentStateRecord {
            agent: id,
            at_unix_ms,
            state: after,
            reason,
        }));
        if !self.campaigns.is_empty() {
            self.touch_campaigns_of(id);
        }
    }

    /// The agent's keys may have changed (presence, skills, memberships): take it out of the
    /// indexes and look at it again.
    pub(crate) fn reindex_agent(&mut self, id: AgentId) {
        self.unindex_agent(id);
        self.refresh_agent(id);
    }

    /// Looks at an agent whose activity or presence changed.
    ///
    /// Index entries are kept while the agent is idle or reserved: an offer leaves them in
    /// place (scans skip agents that are not ready), so neither making an offer nor a
    /// cancelled offer touches the trees. They go when the agent takes a call or leaves.
    /// A ready agent is not indexed here but marked for the matching step, which first looks
    /// for a waiting call and indexes the agent only if it finds none: an agent freed while
    /// calls wait goes straight to its next call without a single index operation.
    pub(crate) fn refresh_agent(&mut self, id: AgentId) {
        let now = self.now;
        let Some(agent) = self.agents.get(id.index()).and_then(Option::as_ref) else {
            return;
        };
        let keep = agent.presence == Presence::Available
            && matches!(agent.activity, Activity::Idle | Activity::Reserved(_));
        if !keep {
            self.unindex_agent(id);
            return;
        }
        if agent.is_ready(now) {
            self.dirty_agents.push(id);
        } else if agent.activity == Activity::Idle
            && let Some(t) = agent.not_before
        {
            // In a delay: come back when it ends.
            let old = agent.ready_timer;
            let new = self.timers.rearm(old, Some(t), TimerKey::AgentReady(id));
            if let Some(a) = self.agent_mut(id) {
                a.ready_timer = new;
            }
        }
    }

    /// Puts a ready agent into its queues' ready indexes (the matching step found no call
    /// for it).
    pub(crate) fn index_agent(&mut self, id: AgentId) {
        let now = self.now;
        let origin = self.origin;
        let Some(agent) = self.agents.get_mut(id.index()).and_then(Option::as_mut) else {
            return;
        };
        if agent.indexed || !agent.is_ready(now) {
            return;
        }
        agent.ready_keys.clear();
        for m in &agent.memberships {
            let key = self
                .queues
                .get_mut(m.queue.index())
                .and_then(Option::as_mut)
                .map(|q| {
                    let key = key_for(origin, q.cfg.strategy, &q.cfg, agent, m);
                    q.ready.insert(key, q.cfg.strategy, m.weight);
                    key
                });
            agent.ready_keys.push(key);
        }
        agent.indexed = true;
    }

    pub(crate) fn unindex_agent(&mut self, id: AgentId) {
        let Some(agent) = self.agents.get_mut(id.index()).and_then(Option::as_mut) else {
            return;
        };
        if !agent.indexed {
            return;
        }
        agent.indexed = false;
        for (m, key) in agent.memberships.iter().zip(agent.ready_keys.drain(..)) {
            if let (Some(key), Some(q)) = (
                key,
                self.queues
                    .get_mut(m.queue.index())
                    .and_then(Option::as_mut),
            ) {
                q.ready.remove(&key);
            }
        }
    }

    /// Wrap-up or a delay ended.
    pub(crate) fn on_agent_ready(&mut self, id: AgentId) {
        let now = self.now;
        let Some(agent) = self.agent_mut(id) else {
            return;
        };
        agent.ready_timer = None;
        let before = agent.state();
        if let Activity::WrapUp(until) = agent.activity {
            if until > now {
                return;
            }
            agent.activity = Activity::Idle;
            agent.idle_since = now;
            if let Some((q, since)) = agent.wrap_from.take() {
                self.stats
                    .wrapup_ended(now, q, id, now.saturating_duration_since(since));
            }
        }
        if let Some(a) = self.agent_mut(id)
            && a.not_before.is_some_and(|t| t <= now)
        {
            a.not_before = None;
        }
        self.agent_changed(id, before);
        self.refresh_agent(id);
    }

    /// Returns an agent to idle after an offer that did not become a call, with an optional
    /// delay before the next offer.
    pub(crate) fn release_agent(&mut self, id: AgentId, delay: Option<std::time::Duration>) {
        let now = self.now;
        let Some(agent) = self.agent_mut(id) else {
            return;
        };
        let before = agent.state();
        agent.activity = Activity::Idle;
        if let Some(d) = delay.filter(|d| !d.is_zero()) {
            agent.not_before = Some(now + d);
        }
        self.agent_changed(id, before);
        self.refresh_agent(id);
    }

    /// Evicts waiting callers when the queue's leave-when-empty rule says so, and arms the
    /// max-wait-with-no-agent timers when the last member logs out.
    pub(crate) fn check_empty(&mut self, q: QueueId) {
        let Some(queue) = self.queue(q) else { return };
        let empty = match queue.cfg.leave_when_empty {
            EmptyRule::Never => false,
            EmptyRule::NoneLoggedIn => queue.logged_in == 0,
            EmptyRule::NoneAvailable => queue.available == 0,
        };
        // The line is walked only when something happens to it (an agent going on break in a
        // staffed queue costs nothing here).
        if empty {
            let exit = queue.cfg.on_no_agents.clone();
            let waiting: Vec<_> = queue.waiting.iter().map(|k| k.call).collect();
            for c in waiting {
                self.exit_call(c, exit.clone(), crate::stats::ExitReason::NoAgents);
            }
        } else if queue.logged_in == 0
            && let Some(limit) = queue.cfg.max_wait_no_agent
        {
            let waiting: Vec<_> = queue.waiting.iter().map(|k| k.call).collect();
            for c in waiting {
                self.arm_no_agent(c, limit);
            }
        }
    }

    pub(crate) fn mark_queue_dirty(&mut self, q: QueueId) {
        if let Some(queue) = self.queue(q) {
            let calls: Vec<_> = queue.waiting.iter().map(|k| k.call).collect();
            self.dirty_calls.extend(calls);
        }
    }
}

/// Longest duration accepted in configuration (a year): deadlines are `now + duration`, and an
/// absurd duration must be refused rather than overflow the clock.
const MAX_CONFIG_DURATION: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

fn check_duration(field: &'static str, d: Option<std::time::Duration>) -> Result<(), EngineError> {
    match d {
        Some(d) if d > MAX_CONFIG_DURATION => Err(EngineError::InvalidConfig {
            field,
            message: format!("{d:?} is longer than a year"),
        }),
        _ => Ok(()),
    }
}

fn validate_agent(cfg: &AgentConfig) -> Result<(), EngineError> {
    check_duration("wrapup", cfg.wrapup)?;
    check_duration("reject_delay", Some(cfg.reject_delay))?;
    check_duration("busy_delay", Some(cfg.busy_delay))?;
    check_duration("no_answer_delay", Some(cfg.no_answer_delay))
}

fn validate_queue(cfg: &QueueConfig) -> Result<(), EngineError> {
    let a = &cfg.announcements;
    cfg.recording.validate()?;
    check_duration("max_wait", cfg.max_wait)?;
    check_duration("max_wait_no_agent", cfg.max_wait_no_agent)?;
    check_duration("offer_timeout", Some(cfg.offer_timeout))?;
    check_duration("ring_progressively_step", Some(cfg.ring_progressively_step))?;
    check_duration("wrapup", Some(cfg.wrapup))?;
    check_duration("sl_threshold", Some(cfg.sl_threshold))?;
    check_duration("short_abandon", Some(cfg.short_abandon))?;
    check_duration("announcements.first_after", a.first_after)?;
    check_duration("announcements.every", a.every)?;
    check_duration("announcements.periodic", a.periodic.as_ref().map(|p| p.0))?;
    if a.every.is_some_and(|d| d.is_zero()) || a.periodic.as_ref().is_some_and(|p| p.0.is_zero()) {
        return Err(EngineError::InvalidConfig {
            field: "announcements.every",
            message: "a repeat interval must be positive".into(),
        });
    }
    if let Some(s) = cfg
        .escalation
        .iter()
        .find(|s| s.after > MAX_CONFIG_DURATION)
    {
        return check_duration("escalation.after", Some(s.after));
    }
    if cfg.ring_progressively_step.is_zero() {
        // A zero step would add agents forever at the same instant.
        return Err(EngineError::InvalidConfig {
            field: "ring_progressively_step",
            message: "must be positive".into(),
        });
    }
    if let Some(r) = cfg.skills.iter().find(|r| !(1..=10).contains(&r.min)) {
        return Err(EngineError::InvalidConfig {
            field: "skills",
            message: format!("minimum for {} is {}; it must be 1..=10", r.skill, r.min),
        });
    }
    if cfg.offer_timeout.is_zero() {
        return Err(EngineError::InvalidConfig {
            field: "offer_timeout",
            message: "must be positive".into(),
        });
    }
    if cfg.sl_threshold.is_zero() {
        return Err(EngineError::InvalidConfig {
            field: "sl_threshold",
            message: "must be positive".into(),
        });
    }
    if matches!(cfg.on_timeout, crate::config::Exit::Queue(q) if q == cfg.id)
        || matches!(cfg.on_no_agents, crate::config::Exit::Queue(q) if q == cfg.id)
    {
        return Err(EngineError::InvalidConfig {
            field: "on_timeout",
            message: "a queue cannot overflow into itself".into(),
        });
    }
    Ok(())
}
