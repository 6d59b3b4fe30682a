//! Connecting: from "the agent answered" to "FreeSWITCH joined the legs".
//!
//! An answered agent leg is not a connected call. FreeSWITCH's `originate` still owns the leg
//! for 0-20 ms after its CHANNEL_ANSWER, and a `uuid_bridge` that lands in that window can be
//! refused (`ORIGINATOR_CANCEL`, leg left up) or undone by the originate's own `&park()`
//! (captures `originate-bridge-race-*`). So the core asks for the bridge, waits for
//! CHANNEL_BRIDGE, and only then counts the call as answered:
//!
//! ```text
//!   accept_offer / callback customer answered
//!        │ Bridge{caller, agent}, BridgeDeadline armed
//!        ▼
//!   Connecting ── Bridged{a, b} ──────────────────────────► Talking (answered: stats, live,
//!        │                                                   records, campaign connected)
//!        ├─ BridgeFailed / deadline / agent leg hung up ──► agent leg hung up, agent free at
//!        │                                                   once, call back in line at its
//!        │                                                   old place (a callback's
//!        │                                                   customer is hung up too)
//!        └─ caller hung up ───────────────────────────────► Ended(Abandoned), agent leg hung up
//! ```
//!
//! A campaign person still connecting when its `connect_within` deadline passes gets the
//! abandon treatment (`campaigns.rs`): the 2-second rule counts from the person's answer to
//! the bridge, not to an agent's answer.

use std::time::Duration;

use crate::agent::Activity;
use crate::call::{CallTimers, Phase};
use crate::ids::CallId;
use crate::io::{BridgeFailure, LegId, LiveEvent, Record, SwitchCommand};
use crate::timers::TimerKey;

use super::{Engine, LegRole};

impl Engine {
    /// Asks FreeSWITCH to join the call's leg and `agent_leg`; the call is connecting until
    /// CHANNEL_BRIDGE. The agent must already be on the call (`Activity::OnCall`).
    pub(crate) fn start_bridge(
        &mut self,
        c: CallId,
        agent: crate::ids::AgentId,
        agent_leg: LegId,
        agent_lag: Option<Duration>,
    ) {
        let now = self.now;
        let deadline = now + self.cfg.bridge_timeout;
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        call.phase = Phase::Connecting {
            agent,
            agent_leg,
            since: now,
            deadline,
            agent_lag,
        };
        let caller_leg = call.leg;
        self.timers.arm(deadline, TimerKey::BridgeDeadline(c));
        self.switch(SwitchCommand::Bridge {
            a: caller_leg,
            b: agent_leg,
        });
    }

    /// The call a leg belongs to, when that call is connecting and the leg is one of its two.
    fn connecting_call(&self, leg: LegId) -> Option<CallId> {
        let c = match self.legs.get(&leg)? {
            LegRole::Caller(c) | LegRole::AgentOnCall(c) => *c,
            _ => return None,
        };
        matches!(self.calls.get(&c)?.phase, Phase::Connecting { .. }).then_some(c)
    }

    /// CHANNEL_BRIDGE: if it joins a connecting call's two legs, the call is answered now.
    pub(crate) fn on_bridged(&mut self, a: LegId, b: LegId) {
        let now = self.now;
        let Some(c) = self.connecting_call(a).or_else(|| self.connecting_call(b)) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        let Phase::Connecting {
            agent,
            agent_leg,
            deadline,
            agent_lag,
            ..
        } = call.phase
        else {
            return;
        };
        let pair = (call.leg == a && agent_leg == b) || (call.leg == b && agent_leg == a);
        if !pair {
            return;
        }
        call.phase = Phase::Talking {
            agent,
            agent_leg,
            since: now,
        };
        let (q, callback) = (call.queue, call.callback);
        let wait = if callback {
            Duration::ZERO
        } else {
            now.saturating_duration_since(call.queue_entered)
        };
        self.timers.cancel(deadline, TimerKey::BridgeDeadline(c));
        self.campaign_connected(c, agent_lag);
        if !callback {
            self.stats.call_answered(now, q, c, agent);
        }
        self.notify(LiveEvent::CallAnswered {
            call: c,
            agent,
            queue: q,
            wait_s: wait.as_secs_f64(),
        });
        if let Some(call) = self.calls.get(&c) {
            let answer = crate::io::CallAnswer {
                leg: call.origin_leg,
                queue: q,
                agent,
                caller_number: call.caller.number.clone(),
                answered_unix_ms: self.unix_ms(now),
                wait_s: wait.as_secs_f64(),
                callback_leg: call
                    .callback
                    .then_some(call.leg)
                    .filter(|l| *l != call.origin_leg),
            };
            self.persist(Record::CallAnswered(answer));
        }
        self.record_on_talking(c, agent);
    }

    /// `uuid_bridge` was refused, or a leg's originate failed under it.
    pub(crate) fn on_bridge_failed(&mut self, a: LegId, b: LegId) {
        if let Some(c) = self.connecting_call(a).or_else(|| self.connecting_call(b)) {
            self.bridge_lost(c, None, BridgeFailure::Refused);
        }
    }

    pub(crate) fn on_bridge_deadline(&mut self, c: CallId) {
        let Some(Phase::Connecting { deadline, .. }) = self.calls.get(&c).map(|c| c.phase) else {
            return;
        };
        if deadline <= self.now {
            self.bridge_lost(c, None, BridgeFailure::Timeout);
        }
    }

    /// The bridge will not happen: the agent side is let go (its leg hung up unless it is the
    /// agent's persistent line, or `gone` already), the agent is free at once (not its
    /// fault, so it may be offered the same call again), and the call goes back in line at
    /// its old place, ahead of everyone who came after it. A callback's customer leg is hung up and the call waits as a callback again.
    pub(crate) fn bridge_lost(&mut self, c: CallId, gone: Option<LegId>, reason: BridgeFailure) {
        let now = self.now;
        let Some(call) = self.calls.get(&c) else {
            return;
        };
        let Phase::Connecting {
            agent,
            agent_leg,
            deadline,
            ..
        } = call.phase
        else {
            return;
        };
        let (q, callback, leg) = (call.queue, call.callback, call.leg);
        self.timers.cancel(deadline, TimerKey::BridgeDeadline(c));
        self.notify(LiveEvent::CallBridgeFailed {
            call: c,
            agent,
            reason,
        });
        if gone == Some(agent_leg) {
            self.legs.remove(&agent_leg);
        } else {
            self.free_agent_leg(agent, agent_leg, "NORMAL_CLEARING");
        }
        if self
            .agent(agent)
            .is_some_and(|a| matches!(a.activity, Activity::OnCall(x, _) if x == c))
        {
            self.finish_agent_call(agent, c, Duration::ZERO, false);
        }
        if callback {
            if gone != Some(leg) {
                self.switch(SwitchCommand::Hangup {
                    leg,
                    cause: "NORMAL_CLEARING",
                });
            }
            self.legs.remove(&leg);
        }
        let present = !callback;
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        call.phase = Phase::Waiting;
        call.caller_present = present;
        let key = call.wait_key();
        let entered = call.queue_entered;
        let step = call.step;
        if let Some(queue) = self.queue_mut(q) {
            queue.waiting.insert(key);
            queue.note_waiting(now);
        }
        // The waits go on from where they were: max wait and escalation keep their clocks,
        // announcements start over.
        let (music, timers) = match self.queue(q) {
            Some(queue) => {
                let cfg = &queue.cfg;
                let ann = &cfg.announcements;
                let from_entry = |d: Duration| (entered + d).max(now);
                let timers = CallTimers {
                    announce: ann
                        .first_after
                        .filter(|_| present && (ann.position || ann.expected_wait))
                        .map(|d| now + d),
                    periodic: ann
                        .periodic
                        .as_ref()
                        .filter(|_| present)
                        .map(|(every, _)| now + *every),
                    max_wait: cfg.max_wait.filter(|_| present).map(from_entry),
                    no_agent: None,
                    escalate: cfg.escalation.get(step).map(|s| from_entry(s.after)),
                    ring_next: None,
                };
                (ann.music.clone(), timers)
            }
            None => (String::new(), CallTimers::default()),
        };
        self.set_call_timers(c, timers);
        if present {
            self.switch(SwitchCommand::Music { leg, source: music });
        }
        self.dirty_calls.push(c);
    }
}
