//! A restarted engine takes over what the switch still has ([`SwitchEvent::Recovered`]).
//!
//! The driver lists every node's channels at its first connection, reads the variables
//! switchyard stamps on the legs it originates, pairs bridged legs, and hands the engine what
//! it found together with what the store held open (calls that had no final record, campaign
//! dials whose attempt was written before their originate):
//! - a caller (or campaign person) bridged to an agent's leg is a call in talk again, and its
//!   agent is on that call (not offered another one); its record comes at its hangup;
//! - an open call whose caller leg no node has any more ended while nobody watched: it gets a
//!   synthetic record, outcome `lost`;
//! - an open campaign dial whose leg is gone is `lost` (the dial counts, the contact is
//!   retried by the no-answer rule); one still ringing is cancelled (it costs the contact
//!   nothing) and one a person answered with no agent to take them is an abandon (they hear the
//!   abandon message and the ledger counts them);
//! - contacts of finished dials that are due again go back into the campaign's pool;
//! - an agent's persistent line up and parked is the agent's line again (its phone is not
//!   called a second time); one nobody wants any more is hung up.
//!
//! The driver tells the engine the switch is reachable only after this: persistent lines and
//! campaign dials wanted meanwhile wait for it.
//!
//! [`SwitchEvent::Recovered`]: crate::io::SwitchEvent::Recovered

use crate::agent::{Activity, AgentLine};
use crate::call::{Call, CallTimers, Phase};
use crate::dialer::ledger::LedgerEntry;
use crate::dialer::{AttemptOutcome, AttemptRecord, AttemptStart, ContactNext};
use crate::ids::{AgentId, QueueId};
use crate::io::{
    CallOpen, CallOutcome, CallRecord, CallerInfo, LegId, LineState, LiveEvent, Presence, Record,
    SwitchCommand,
};

use super::{Engine, LegRole};

/// What the driver found at its first look at the switch after a start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Conversations in progress: a caller (or campaign person) bridged to an agent's leg.
    pub talking: Vec<AdoptedCall>,
    /// Calls the store held open whose caller leg is on no node.
    pub calls_gone: Vec<CallOpen>,
    /// Campaign dials the store held open, with what the switch shows of their leg.
    pub dials: Vec<OpenDial>,
    /// Agents' persistent lines up and parked (on no call): `(agent, leg)`.
    pub lines: Vec<(AgentId, LegId)>,
}

/// A conversation the switch still carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdoptedCall {
    /// The caller's leg (or the campaign person's).
    pub caller_leg: LegId,
    pub agent_leg: LegId,
    pub agent: AgentId,
    pub queue: QueueId,
    pub caller_number: String,
    /// First arrival, when known (the open row, or the caller's `switchyard_arrived`).
    pub arrived_unix_ms: Option<u64>,
    /// A campaign person: the dial it came from, whose attempt is `connected`.
    pub dial: Option<OpenDial>,
    /// The agent leg is the agent's persistent line (it parks again after the call).
    pub line: bool,
}

/// A campaign dial under way at the restart (its open attempt row and its contact).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenDial {
    pub start: AttemptStart,
    pub number: String,
    pub zone: String,
    pub seen: DialSeen,
}

/// A campaign leg as the switch shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialSeen {
    /// On no node.
    Gone,
    /// Up, not answered.
    Ringing,
    /// Answered, and bridged to nobody.
    Answered,
    /// Bridged to an agent (adopted with its call).
    Bridged,
}

impl Engine {
    pub(crate) fn on_recovered(&mut self, r: Recovery) {
        for (agent, leg) in r.lines {
            self.adopt_line(agent, leg);
        }
        for call in r.talking {
            self.adopt_call(call);
        }
        for open in r.calls_gone {
            self.close_lost_call(open);
        }
        for dial in r.dials {
            if dial.seen != DialSeen::Bridged {
                self.close_open_dial(dial);
            }
        }
    }

    fn adopt_call(&mut self, a: AdoptedCall) {
        let now = self.now;
        if self.legs.contains_key(&a.caller_leg) || self.legs.contains_key(&a.agent_leg) {
            return; // already known (a repeated report)
        }
        let free = self
            .agent(a.agent)
            .is_some_and(|g| g.activity == Activity::Idle);
        if !free || self.queue(a.queue).is_none() {
            tracing::warn!(
                caller = %a.caller_leg,
                agent = %a.agent,
                queue = %a.queue,
                "a conversation on the switch names an agent or queue this engine cannot take it \
                 for; left alone (no record will be written for it)"
            );
            return;
        }
        let id = crate::ids::CallId(self.next_call);
        self.next_call = self.next_call.wrapping_add(1).max(1);
        if let Some(d) = &a.dial {
            let now_ms = self.unix_ms(now);
            self.finish_open_dial(
                d,
                AttemptOutcome::Connected,
                Some(a.agent),
                Some((id, now_ms)),
            );
        }
        let since = a
            .arrived_unix_ms
            .and_then(|ms| self.instant_of_unix_ms(ms))
            .filter(|t| *t <= now)
            .unwrap_or(now);
        let call = Call {
            id,
            leg: a.caller_leg,
            origin_leg: a.caller_leg,
            caller_present: true,
            caller: CallerInfo {
                number: a.caller_number,
                first_arrived_unix_ms: a.arrived_unix_ms,
                ..CallerInfo::default()
            },
            arrived: since,
            wait_origin: since,
            priority: 0,
            queue: a.queue,
            queue_entered: since,
            queues: vec![a.queue],
            phase: Phase::Talking {
                agent: a.agent,
                agent_leg: a.agent_leg,
                // The talk so far is not known: it counts from the takeover.
                since: now,
            },
            offers: Vec::new(),
            tried: Vec::new(),
            offers_made: 1,
            step: 0,
            max_level: u32::MAX,
            relax: 0,
            callback: false,
            callback_failures: 0,
            callback_held: None,
            recording: None,
            record_draw: crate::recording::draw(a.caller_leg),
            timers: CallTimers::default(),
            campaign: None,
        };
        self.calls.insert(id, call);
        self.legs.insert(a.caller_leg, LegRole::Caller(id));
        self.legs.insert(a.agent_leg, LegRole::AgentOnCall(id));
        self.stats.call_entered(now, a.queue, id);
        self.stats.call_answered(now, a.queue, id, a.agent);
        let Some(agent) = self.agent_mut(a.agent) else {
            return;
        };
        let before = agent.state();
        agent.activity = Activity::OnCall(id, a.agent_leg);
        if a.line && agent.cfg.persistent_line && agent.line.is_none() {
            agent.line = Some(AgentLine {
                leg: a.agent_leg,
                up: true,
                since: now,
            });
        }
        self.unindex_agent(a.agent);
        self.agent_changed(a.agent, before);
        // The recording of the time before the stop ended with it (its file is closed at
        // boot); the rest of the conversation is recorded anew under the same policy and the
        // same draw (the call's own, from its leg), so a restart loses no recorded audio but
        // the moments of the restart itself.
        self.record_on_talking(id, a.agent);
        tracing::info!(call = %id, leg = %a.caller_leg, agent = %a.agent, "took over a conversation in progress on the switch");
    }

    /// An agent's persistent line found up and parked: the agent's line again (no new call
    /// to its phone). One nobody here wants (no such agent, not a persistent-line agent any
    /// more, logged out, or with a line already) is hung up.
    fn adopt_line(&mut self, agent: AgentId, leg: LegId) {
        let now = self.now;
        if self.legs.contains_key(&leg) {
            return;
        }
        let wanted = self.agent(agent).is_some_and(|a| {
            a.cfg.persistent_line && a.presence != Presence::LoggedOut && a.line.is_none()
        });
        if !wanted {
            self.switch(SwitchCommand::Hangup {
                leg,
                cause: "NORMAL_CLEARING",
            });
            return;
        }
        if let Some(a) = self.agent_mut(agent) {
            a.line = Some(AgentLine {
                leg,
                up: true,
                since: now,
            });
        }
        self.legs.insert(leg, LegRole::AgentLine(agent));
        self.reindex_agent(agent);
        self.notify(LiveEvent::AgentLine {
            agent,
            line: LineState::Up,
        });
        tracing::info!(%agent, %leg, "took over an agent's persistent line");
    }

    fn close_lost_call(&mut self, open: CallOpen) {
        if self.legs.contains_key(&open.leg) {
            return; // it came back meanwhile
        }
        self.persist(Record::Call(CallRecord {
            call: open.call,
            leg: open.leg,
            callback_leg: None,
            caller_number: open.caller_number,
            queues: vec![open.queue],
            agent: None,
            outcome: CallOutcome::Lost,
            arrived_unix_ms: open.arrived_unix_ms,
            wait_s: 0.0,
            talk_s: 0.0,
            offers: 0,
            synthetic: true,
        }));
    }

    fn close_open_dial(&mut self, d: OpenDial) {
        let leg = d.start.leg;
        let outcome = match d.seen {
            DialSeen::Gone | DialSeen::Bridged => AttemptOutcome::Lost,
            DialSeen::Ringing => {
                self.switch(SwitchCommand::Hangup {
                    leg,
                    cause: "ORIGINATOR_CANCEL",
                });
                AttemptOutcome::Cancelled
            }
            DialSeen::Answered => {
                // A person waits on a line nobody will take: the abandon treatment, counted.
                let message = self
                    .campaigns
                    .get(&d.start.campaign)
                    .map(|c| c.cfg.abandon_message.clone())
                    .filter(|m| !m.is_empty());
                match message {
                    Some(path) => self.switch(SwitchCommand::PlayThenHangup { leg, path }),
                    None => self.switch(SwitchCommand::Hangup {
                        leg,
                        cause: "NORMAL_CLEARING",
                    }),
                }
                // The person became a queue call in the engine that stopped (unless detection
                // still ran: not known, so the abandon is counted, the rule's safe side).
                let now_ms = self.unix_ms(self.now);
                self.finish_open_dial(
                    &d,
                    AttemptOutcome::Abandoned,
                    None,
                    Some((crate::ids::CallId(0), now_ms)),
                );
                return;
            }
        };
        self.finish_open_dial(&d, outcome, None, None);
    }

    /// The final attempt of a dial found open (with the call a person became and when they
    /// answered, when there was one), in the ledger by its rule, and its contact back in the
    /// pool when due.
    fn finish_open_dial(
        &mut self,
        d: &OpenDial,
        outcome: AttemptOutcome,
        agent: Option<AgentId>,
        person: Option<(crate::ids::CallId, u64)>,
    ) {
        let now_ms = self.unix_ms(self.now);
        let s = &d.start;
        let attempts = match outcome {
            AttemptOutcome::Cancelled => s.attempt.saturating_sub(1),
            _ => s.attempt,
        };
        let next = match self.campaigns.get_mut(&s.campaign) {
            Some(c) => {
                let due = if c.contacts.is_blocked(&d.number) {
                    None
                } else if outcome == AttemptOutcome::Cancelled {
                    Some(s.dialed_unix_ms)
                } else {
                    c.next_due(outcome, s.attempt, now_ms)
                };
                if let Some(due) = due
                    && let Err(e) =
                        c.contacts
                            .add(s.contact, d.number.clone(), &d.zone, attempts, due)
                {
                    tracing::warn!(contact = %s.contact, error = ?e, "a contact found mid-dial could not go back in line");
                }
                c.counters.count(outcome);
                c.notify_owed = true;
                c.dirty = true;
                due
            }
            // The campaign is gone: the store keeps the contact pending.
            None => Some(now_ms),
        };
        let rec = AttemptRecord {
            campaign: s.campaign,
            contact: s.contact,
            leg: s.leg,
            attempt: s.attempt,
            outcome,
            call: person.map(|p| p.0),
            agent,
            dialed_unix_ms: s.dialed_unix_ms,
            answered_unix_ms: person.map(|p| p.1),
            ended_unix_ms: now_ms,
            next: match next {
                Some(at_unix_ms) => ContactNext::Retry { at_unix_ms },
                None => ContactNext::Done,
            },
            machine: false,
        };
        if let (Some(e), Some(c)) = (
            LedgerEntry::of_attempt(&rec),
            self.campaigns.get_mut(&s.campaign),
        ) {
            c.ledger.record(e);
        }
        self.persist(Record::Attempt(rec));
    }
}
