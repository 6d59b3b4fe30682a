//! Persistent agent lines (`AgentConfig::persistent_line`): the agent's phone is called once
//! when the agent becomes available and stays connected, parked between calls, until the
//! agent logs out. An offer to such an agent is accepted at once and the call is bridged to
//! the line: no ring, no answer, no per-call setup. That is what predictive agents expect
//! (ViciDial's agents sit in their session conference the same way): the connect allowance
//! is not spent on ringing the agent.
//!
//! ```text
//!   Available, no line ──► originate (parks on answer, park_after_bridge=true)
//!   line answered ───────► ready: offers are accepted at once and bridged to the line
//!   call ends ───────────► the line goes back to park (the engine does not hang it up)
//!   line hangs up ───────► its call (if any) ends; an available agent goes on break
//!                          "agent-line-down" (no redial loop); Available again calls anew
//!   logged out, no call ─► the engine hangs the line up
//! ```

use std::time::Duration;

use crate::agent::{Activity, AgentLine};
use crate::ids::AgentId;
use crate::io::{LegId, LegKind, LineState, LiveEvent, Presence, SwitchCommand};

use super::{Engine, LegRole};

/// How long the agent's phone may ring for its line.
const LINE_RING: Duration = Duration::from_secs(30);

/// The break an agent is put on when its line drops.
pub(crate) const LINE_DOWN: &str = "agent-line-down";

impl Engine {
    /// Calls or hangs up the agent's persistent line as its configuration, presence and
    /// activity now want: called when a persistent agent is available and has none; kept
    /// while logged in or while a call uses it; hung up otherwise.
    pub(crate) fn sync_agent_line(&mut self, id: AgentId) {
        let now = self.now;
        let Some(a) = self.agent(id) else { return };
        let on_line_call = matches!(
            (a.activity, a.line),
            (Activity::OnCall(_, leg), Some(l)) if l.leg == leg
        );
        let keep = on_line_call
            || (a.cfg.persistent_line && a.presence != Presence::LoggedOut)
            || matches!(a.activity, Activity::Reserved(_)) && a.line.is_some();
        match a.line {
            // Not while no switch can take it (nor before a restarted driver took over the
            // lines still up): the line is called when the switch is reachable.
            None if a.cfg.persistent_line
                && a.presence == Presence::Available
                && !self.switch_down =>
            {
                let dial = a.cfg.contact.clone();
                let leg = self.new_leg();
                if let Some(a) = self.agent_mut(id) {
                    a.line = Some(AgentLine {
                        leg,
                        up: false,
                        since: now,
                    });
                }
                self.legs.insert(leg, LegRole::AgentLine(id));
                self.switch(SwitchCommand::Originate {
                    kind: LegKind::Agent,
                    leg,
                    dial,
                    caller_id_number: String::new(),
                    caller_id_name: String::new(),
                    timeout: LINE_RING,
                    vars: vec![
                        ("switchyard_agent".into(), id.0.to_string()),
                        ("switchyard_agent_line".into(), "true".into()),
                        // Between calls the leg goes back to park instead of hanging up.
                        ("park_after_bridge".into(), "true".into()),
                    ],
                    join: None,
                });
                self.notify(LiveEvent::AgentLine {
                    agent: id,
                    line: LineState::Ringing,
                });
            }
            Some(line) if !keep => {
                self.switch(SwitchCommand::Hangup {
                    leg: line.leg,
                    cause: "NORMAL_CLEARING",
                });
                self.legs.remove(&line.leg);
                if let Some(a) = self.agent_mut(id) {
                    a.line = None;
                }
                self.reindex_agent(id);
                self.notify(LiveEvent::AgentLine {
                    agent: id,
                    line: LineState::Down,
                });
            }
            _ => {}
        }
    }

    /// The agent whose persistent line `leg` is.
    pub(crate) fn line_owner(&self, leg: LegId) -> Option<AgentId> {
        match self.legs.get(&leg)? {
            LegRole::AgentLine(a) => Some(*a),
            LegRole::Offer(o) => self
                .offers
                .get(o)
                .map(|o| o.agent)
                .filter(|a| self.is_line(*a, leg)),
            LegRole::AgentOnCall(c) => self
                .calls
                .get(c)
                .and_then(|c| c.agent())
                .filter(|a| self.is_line(*a, leg)),
            _ => None,
        }
    }

    pub(crate) fn is_line(&self, agent: AgentId, leg: LegId) -> bool {
        self.agent(agent)
            .and_then(|a| a.line)
            .is_some_and(|l| l.leg == leg)
    }

    /// The agent's side of a call is done with `leg`: a per-call leg is hung up, a
    /// persistent line stays up (FreeSWITCH parks it again) and is the agent's line again.
    pub(crate) fn free_agent_leg(&mut self, agent: AgentId, leg: LegId, cause: &'static str) {
        if self.is_line(agent, leg) {
            self.legs.insert(leg, LegRole::AgentLine(agent));
        } else {
            self.switch(SwitchCommand::Hangup { leg, cause });
            self.legs.remove(&leg);
        }
    }

    /// The line answered: the agent is ready for calls.
    pub(crate) fn on_line_answered(&mut self, agent: AgentId, leg: LegId) {
        let Some(a) = self.agent_mut(agent) else {
            return;
        };
        match a.line.as_mut() {
            Some(l) if l.leg == leg => l.up = true,
            _ => return,
        }
        self.notify(LiveEvent::AgentLine {
            agent,
            line: LineState::Up,
        });
        self.reindex_agent(agent);
        self.touch_campaigns_of(agent);
    }

    /// The line is gone (the agent hung up, the phone failed, the switch lost it). Whatever
    /// call used it has been ended by the caller of this; here the agent stops being ready.
    pub(crate) fn line_down(&mut self, agent: AgentId, leg: LegId) {
        let Some(a) = self.agent_mut(agent) else {
            return;
        };
        if a.line.is_none_or(|l| l.leg != leg) {
            return;
        }
        a.line = None;
        let available = a.presence == Presence::Available;
        if self.legs.get(&leg) == Some(&LegRole::AgentLine(agent)) {
            self.legs.remove(&leg);
        }
        self.notify(LiveEvent::AgentLine {
            agent,
            line: LineState::Down,
        });
        if available && self.agent(agent).is_some_and(|a| a.cfg.persistent_line) {
            // Not called again on its own: a phone that cannot be reached would be called
            // in a loop. The agent (or a supervisor) makes it available again.
            let _ = self.set_presence(agent, Presence::OnBreak(LINE_DOWN.into()));
        }
        self.reindex_agent(agent);
    }
}
