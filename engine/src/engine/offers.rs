//! Offers are reservations: offer -> accept (the agent leg answered) / reject / time out,
//! then the next candidate. An agent holds at most one offer (its activity is `Reserved`),
//! and a call answered by one agent cancels every other offer before anything else happens,
//! so ring-all never lets two agents win.
//!
//! ```text
//!   make_offer ──► Ringing (agent Reserved, originate sent, timer armed)
//!                    │ LegAnswered ─────────────► Accepted: other offers of the call
//!                    │                              cancelled (LOSE_RACE), bridge
//!                    │ LegHungUp busy/rejected/no-answer/failed, or the timer
//!                    │                        ──► Failed: agent delay, no-answer streak,
//!                    │                              call back in line (same place)
//!                    └ caller gone / another agent won ──► Lost: agent free at once
//!   A leg that answers after its offer ended is hung up (LOSE_RACE), never bridged.
//! ```
//!
//! A desktop preview (a preview campaign with `preview_accept: desktop`) is an offer that
//! rings nothing at first: the agent is reserved and its screen shows the contact
//! (`PreviewReserved`) until it accepts (`AcceptPreview`: from there a ringing offer, or an
//! instant one on a persistent line), skips (`SkipPreview`: rejected), lets the campaign's
//! `preview_timeout` pass (no answer) or leaves (`release_desktop_reservation`: lost).
//!
//! An agent on a persistent line (`lines.rs`) skips the ringing: the offer is made on the
//! line's leg and accepted as soon as the matching step ends, and the leg is never hung up
//! when the offer or the call ends.

use std::time::Duration;

use crate::agent::Activity;
use crate::call::{Offer, Phase};
use crate::config::Strategy;
use crate::dialer::config::PreviewAccept;
use crate::error::EngineError;
use crate::ids::{AgentId, CallId, OfferId, QueueId};
use crate::io::{
    CallOutcome, HangupCause, LegId, LegKind, LiveEvent, Presence, Record, SwitchCommand,
};
use crate::stats::OfferResult;
use crate::timers::TimerKey;
use crate::trace::DecisionTrace;

use super::{Engine, LegRole};

impl Engine {
    /// Reserves `agent` for `call` and rings the agent's phone. The caller has checked that
    /// the agent is ready.
    pub(crate) fn make_offer(
        &mut self,
        call_id: CallId,
        agent_id: AgentId,
        trace: Option<DecisionTrace>,
    ) -> Option<OfferId> {
        let now = self.now;
        let call = self.calls.get(&call_id)?;
        if !matches!(call.phase, Phase::Waiting | Phase::Offering) {
            // Already taken (an agent on a persistent line accepted it in this step).
            return None;
        }
        let q = call.queue;
        let was_waiting = call.phase == Phase::Waiting;
        // A desktop preview reserves the agent without ringing: (its timeout, what the
        // screen shows).
        let desktop = call
            .campaign
            .as_ref()
            .filter(|i| i.preview)
            .and_then(|i| Some((i, self.campaigns.get(&i.campaign)?)))
            .filter(|(_, c)| c.cfg.preview_accept == PreviewAccept::Desktop)
            .map(|(i, c)| {
                (
                    c.cfg.preview_timeout,
                    (i.campaign, i.contact, i.number.clone()),
                )
            });
        let (number, name) = (call.caller.number.clone(), call.caller.name.clone());
        let caller_leg = (call.caller_present && !call.callback).then_some(call.leg);
        let queue = self.queue(q)?;
        let timeout = queue.cfg.offer_timeout;
        let queue_name = queue.cfg.name.clone();
        let strategy = queue.cfg.strategy;
        let agent = self.agent(agent_id)?;
        if agent.activity != Activity::Idle {
            return None;
        }
        let dial = agent.cfg.contact.clone();
        let line = agent.line_up();
        let level_pos = agent
            .membership(q)
            .map(|m| (m.level, u64::from(m.position)));
        let before = agent.state();
        let id = OfferId(self.next_offer);
        self.next_offer = self.next_offer.wrapping_add(1).max(1);
        let leg = line.unwrap_or_else(|| self.new_leg());
        if was_waiting {
            self.leave_line(call_id);
            if let Some(queue) = self.queue_mut(q) {
                queue.offering += 1;
                queue.note_waiting(now);
            }
        }
        if strategy == Strategy::RoundRobin
            && let Some(queue) = self.queue_mut(q)
        {
            queue.rr_last = level_pos;
        }
        // The agent's index entries stay while it rings (see `refresh_agent`).
        if let Some(a) = self.agent_mut(agent_id) {
            a.activity = Activity::Reserved(id);
        }
        let timeout_at = now + desktop.as_ref().map_or(timeout, |(t, _)| *t);
        self.offers.insert(
            id,
            Offer {
                id,
                call: call_id,
                agent: agent_id,
                leg,
                queue: q,
                started: now,
                timeout_at,
                desktop: desktop.is_some(),
            },
        );
        self.legs.insert(leg, LegRole::Offer(id));
        if line.is_none() || desktop.is_some() {
            self.timers.arm(timeout_at, TimerKey::OfferTimeout(id));
        }
        if let Some(call) = self.calls.get_mut(&call_id) {
            call.phase = Phase::Offering;
            call.offers.push(id);
            call.offers_made += 1;
        }
        // FreeSWITCH may join the legs itself as the agent answers (no event round trip, no
        // park): only where no other agent can answer this caller too.
        let join = caller_leg
            .filter(|_| !matches!(strategy, Strategy::RingAll | Strategy::RingProgressively));
        if desktop.is_some() {
            // Nothing rings yet: the agent's screen shows the contact (`PreviewReserved`).
        } else if line.is_some() {
            // The agent's phone is already connected: taken as answered once this matching
            // step is over (ring-all may still add offers to the call meanwhile).
            self.instant_accepts.push(id);
        } else {
            self.switch(SwitchCommand::Originate {
                kind: LegKind::Agent,
                leg,
                dial,
                caller_id_number: number,
                caller_id_name: name,
                timeout,
                vars: vec![
                    ("switchyard_call".into(), call_id.0.to_string()),
                    ("switchyard_queue".into(), queue_name),
                    ("switchyard_offer".into(), id.0.to_string()),
                    // Whose phone this is: a restarted switchyard finds its agent on the call.
                    ("switchyard_agent".into(), agent_id.0.to_string()),
                ],
                join,
            });
        }
        self.notify(LiveEvent::CallOffered {
            call: call_id,
            agent: agent_id,
            offer: id,
        });
        if let Some((_, (campaign, contact, number))) = desktop {
            let expires_unix_ms = self.unix_ms(timeout_at);
            self.notify(LiveEvent::PreviewReserved {
                call: call_id,
                agent: agent_id,
                campaign,
                contact,
                number,
                expires_unix_ms,
            });
        }
        self.agent_changed(agent_id, before);
        if let Some(mut t) = trace {
            t.offer = id;
            t.at_unix_ms = self.unix_ms(now);
            let t = std::sync::Arc::new(t);
            if self.cfg.persist_traces {
                self.persist(Record::Decision(t.clone()));
            }
            if self.cfg.trace_memory > 0 {
                if self.traces.len() >= self.cfg.trace_memory {
                    self.traces.pop_front();
                }
                self.traces.push_back(t);
            }
        }
        Some(id)
    }

    pub(crate) fn on_leg_answered(&mut self, leg: LegId) {
        match self.legs.get(&leg).copied() {
            Some(LegRole::Offer(o)) => self.accept_offer(o),
            Some(LegRole::Caller(c)) => self.callback_customer_answered(c, leg),
            Some(LegRole::Dial(c)) => self.on_dial_answered(c, leg),
            Some(LegRole::AgentLine(a)) => self.on_line_answered(a, leg),
            _ => {}
        }
    }

    /// Accepts the offers made to agents on persistent lines during the last matching step.
    /// True when there were any (their calls' other offers were cancelled: match again).
    pub(crate) fn accept_instant_offers(&mut self) -> bool {
        if self.instant_accepts.is_empty() {
            return false;
        }
        for o in std::mem::take(&mut self.instant_accepts) {
            self.accept_offer(o);
        }
        true
    }

    pub(crate) fn on_leg_hangup(&mut self, leg: LegId, cause: HangupCause) {
        self.recorded_leg_gone(leg);
        // A persistent line carrying an offer or a call ends them as any agent leg would,
        // then stops being the agent's line.
        let line = self.line_owner(leg);
        self.leg_gone(leg, cause);
        if let Some(agent) = line {
            self.line_down(agent, leg);
        }
    }

    fn leg_gone(&mut self, leg: LegId, cause: HangupCause) {
        match self.legs.get(&leg).copied() {
            Some(LegRole::Offer(o)) => {
                self.legs.remove(&leg);
                if let Some(i) = self.instant_accepts.iter().position(|x| *x == o) {
                    self.instant_accepts.swap_remove(i);
                }
                self.offer_failed(o, cause);
            }
            // An idle line: `on_leg_hangup` takes it down.
            Some(LegRole::AgentLine(_)) => {}
            Some(LegRole::Caller(c)) => {
                self.legs.remove(&leg);
                self.on_caller_hangup(c, cause);
            }
            Some(LegRole::AgentOnCall(c)) => {
                self.legs.remove(&leg);
                match self.calls.get(&c).map(|c| c.phase) {
                    Some(Phase::Talking { .. }) => self.end_talk(
                        c,
                        if cause == HangupCause::Lost {
                            TalkEnd::Lost { caller_side: false }
                        } else {
                            TalkEnd::AgentLeft
                        },
                    ),
                    // The agent (or a callback's customer) dropped before the bridge.
                    Some(Phase::Connecting { .. }) => {
                        self.bridge_lost(c, Some(leg), crate::io::BridgeFailure::LegGone)
                    }
                    Some(Phase::CallingBack {
                        agent,
                        customer_leg,
                        ..
                    }) => {
                        // The agent gave up before the customer answered: the customer was not
                        // reached, so this counts as a failed dial and is tried again later.
                        self.switch(SwitchCommand::Hangup {
                            leg: customer_leg,
                            cause: "ORIGINATOR_CANCEL",
                        });
                        self.legs.remove(&customer_leg);
                        self.finish_agent_call(agent, c, Duration::ZERO, false);
                        self.callback_failed(c);
                    }
                    _ => {}
                }
            }
            Some(LegRole::Monitor(_)) => {
                self.legs.remove(&leg);
                self.monitors.remove(&leg);
            }
            Some(LegRole::Dial(c)) => {
                self.legs.remove(&leg);
                self.on_dial_hangup(c, leg, cause);
            }
            None => {}
        }
    }

    fn accept_offer(&mut self, o: OfferId) {
        let now = self.now;
        let Some(offer) = self.offers.get(&o).copied() else {
            return;
        };
        let live = self
            .calls
            .get(&offer.call)
            .is_some_and(|c| c.phase == Phase::Offering && (c.caller_present || c.callback));
        if !live {
            // The call is gone or another agent already won it.
            self.retire_offer(o, OfferResult::Lost);
            self.free_agent_leg(offer.agent, offer.leg, "LOSE_RACE");
            self.release_agent(offer.agent, None);
            return;
        }
        // The winner: every other offer of this call is cancelled first.
        self.retire_offer(o, OfferResult::Accepted);
        self.campaign_agent_answered(offer.call, now.saturating_duration_since(offer.started));
        self.cancel_offers(offer.call);
        let Some(call) = self.calls.get_mut(&offer.call) else {
            return;
        };
        let q = call.queue;
        let callback = call.callback;
        if let Some(queue) = self.queue_mut(q) {
            queue.offering = queue.offering.saturating_sub(1);
            queue.departures.record_departure(now);
            queue.note_waiting(now);
        }
        self.set_call_timers(offer.call, crate::call::CallTimers::default());
        let Some(agent) = self.agent_mut(offer.agent) else {
            return;
        };
        let before = agent.state();
        agent.activity = Activity::OnCall(offer.call, offer.leg);
        agent.no_answer_streak = 0;
        agent.calls_answered += 1;
        // On a call now: out of the ready indexes (its keys change by the end of it anyway).
        self.unindex_agent(offer.agent);
        self.legs
            .insert(offer.leg, LegRole::AgentOnCall(offer.call));
        if callback {
            // A preview's customer is dialled on the leg the call was created with (its id
            // from the start, never originated before): the API, the live feed and the
            // disposition know the call by one leg from reservation to wrap-up. A preview
            // dials its customer once (a failed dial ends the call).
            let origin = self
                .calls
                .get(&offer.call)
                .filter(|c| c.campaign.as_ref().is_some_and(|i| i.preview))
                .map(|c| c.origin_leg)
                .filter(|l| !self.legs.contains_key(l));
            let customer_leg = match origin {
                Some(leg) => leg,
                None => self.new_leg(),
            };
            let Some(call) = self.calls.get_mut(&offer.call) else {
                return;
            };
            call.phase = Phase::CallingBack {
                agent: offer.agent,
                agent_leg: offer.leg,
                customer_leg,
            };
            call.leg = customer_leg;
            call.caller_present = true;
            let number = dial_safe(&call.caller.number);
            self.legs.insert(customer_leg, LegRole::Caller(offer.call));
            let template = self
                .queue(q)
                .and_then(|q| q.cfg.callback_dial.clone())
                .unwrap_or_else(|| self.cfg.callback_dial.clone());
            // A preview campaign's customer is dialled the campaign's way.
            let cmd = match self.preview_originate(offer.call, customer_leg) {
                Some(cmd) => cmd,
                None => SwitchCommand::Originate {
                    kind: LegKind::Customer,
                    leg: customer_leg,
                    dial: template.replace("{number}", &number),
                    caller_id_number: String::new(),
                    caller_id_name: String::new(),
                    timeout: self
                        .queue(q)
                        .map_or(Duration::from_secs(30), |q| q.cfg.offer_timeout),
                    vars: vec![("switchyard_call".into(), offer.call.0.to_string())],
                    join: None,
                },
            };
            self.switch(cmd);
        } else {
            let lag = now.saturating_duration_since(offer.started);
            self.start_bridge(offer.call, offer.agent, offer.leg, Some(lag));
        }
        self.agent_changed(offer.agent, before);
    }

    fn callback_customer_answered(&mut self, c: CallId, leg: LegId) {
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        let Phase::CallingBack {
            agent,
            agent_leg,
            customer_leg,
        } = call.phase
        else {
            return;
        };
        if customer_leg != leg {
            return;
        }
        self.start_bridge(c, agent, agent_leg, None);
    }

    /// Removes an offer's bookkeeping (not the agent's state).
    fn retire_offer(&mut self, o: OfferId, result: OfferResult) -> Option<Offer> {
        let offer = self.offers.remove(&o)?;
        self.timers
            .cancel(offer.timeout_at, TimerKey::OfferTimeout(o));
        if let Some(call) = self.calls.get_mut(&offer.call) {
            call.offers.retain(|x| *x != o);
        }
        self.stats
            .offer_result(self.now, offer.queue, offer.agent, result);
        Some(offer)
    }

    /// Cancels every live offer of a call (caller left, or another agent won): the agent legs
    /// are hung up and the agents are free again at once, with no penalty.
    pub(crate) fn cancel_offers(&mut self, c: CallId) {
        let Some(call) = self.calls.get(&c) else {
            return;
        };
        let offers = call.offers.clone();
        for o in offers {
            if let Some(offer) = self.retire_offer(o, OfferResult::Lost) {
                if let Some(i) = self.instant_accepts.iter().position(|x| *x == o) {
                    self.instant_accepts.swap_remove(i);
                }
                if offer.desktop {
                    self.let_go_of_desktop_leg(offer.agent, offer.leg);
                } else {
                    self.free_agent_leg(offer.agent, offer.leg, "LOSE_RACE");
                }
                self.release_agent(offer.agent, None);
            }
        }
        if let Some(call) = self.calls.get_mut(&c)
            && let Some(t) = call.timers.ring_next.take()
        {
            self.timers.cancel(t, TimerKey::RingNext(c));
        }
    }

    /// A call that was ringing agents stops (its caller left or it exits): offers cancelled,
    /// the queue's ringing count dropped. The call is then in no line; the caller decides
    /// what happens to it.
    pub(crate) fn stop_offering(&mut self, c: CallId) {
        self.cancel_offers(c);
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        if call.phase != Phase::Offering {
            return;
        }
        call.phase = Phase::Waiting;
        let q = call.queue;
        if let Some(queue) = self.queue_mut(q) {
            queue.offering = queue.offering.saturating_sub(1);
        }
    }

    pub(crate) fn on_offer_timeout(&mut self, o: OfferId) {
        let Some(offer) = self.offers.get(&o).copied() else {
            return;
        };
        if offer.desktop {
            self.let_go_of_desktop_leg(offer.agent, offer.leg);
            self.notify(LiveEvent::PreviewEnded {
                call: offer.call,
                agent: offer.agent,
                reason: "timeout",
            });
        } else {
            self.switch(SwitchCommand::Hangup {
                leg: offer.leg,
                cause: "NO_ANSWER",
            });
            self.legs.remove(&offer.leg);
        }
        self.offer_failed(o, HangupCause::NoAnswer);
    }

    /// A desktop reservation's leg when the reservation ends without a call: nothing was
    /// originated, so nothing is hung up; a persistent line is the agent's idle line again.
    fn let_go_of_desktop_leg(&mut self, agent: AgentId, leg: LegId) {
        if self.is_line(agent, leg) {
            self.legs.insert(leg, LegRole::AgentLine(agent));
        } else {
            self.legs.remove(&leg);
        }
    }

    /// The desktop preview reserved on `call` (to `by`, when an agent asks): its offer.
    fn reserved_offer(&self, call: CallId, by: Option<AgentId>) -> Result<Offer, EngineError> {
        let not = EngineError::NotReserved { call, agent: by };
        let c = self
            .calls
            .get(&call)
            .ok_or(EngineError::UnknownCall(call))?;
        let offer = c
            .offers
            .iter()
            .filter_map(|o| self.offers.get(o))
            .find(|o| o.desktop)
            .copied()
            .ok_or(not.clone())?;
        if by.is_some_and(|a| a != offer.agent) {
            return Err(not);
        }
        Ok(offer)
    }

    /// A preview call by the leg it is known by before its customer is dialled (that leg is
    /// not yet the switch's, so [`Engine::call_by_leg`] does not know it). A scan: only for
    /// an agent's click, never per event.
    pub fn preview_by_leg(&self, leg: LegId) -> Option<CallId> {
        self.calls
            .values()
            .find(|c| c.origin_leg == leg && c.campaign.as_ref().is_some_and(|i| i.preview))
            .map(|c| c.id)
    }

    /// The agent takes its desktop preview: from here it is a phone preview whose agent
    /// answers (a persistent line) or is rung now with the queue's offer timeout.
    pub(crate) fn accept_preview(
        &mut self,
        call: CallId,
        by: Option<AgentId>,
    ) -> Result<(), EngineError> {
        let offer = self.reserved_offer(call, by)?;
        let now = self.now;
        let o = offer.id;
        let Some(q) = self.queue(offer.queue) else {
            return Err(EngineError::UnknownQueue(offer.queue));
        };
        let timeout = q.cfg.offer_timeout;
        let queue_name = q.cfg.name.clone();
        let dial = self
            .agent(offer.agent)
            .map(|a| a.cfg.contact.clone())
            .unwrap_or_default();
        let (number, name) = self
            .calls
            .get(&call)
            .map(|c| (c.caller.number.clone(), c.caller.name.clone()))
            .unwrap_or_default();
        self.timers
            .cancel(offer.timeout_at, TimerKey::OfferTimeout(o));
        let line = self.is_line(offer.agent, offer.leg);
        let timeout_at = now + timeout;
        if let Some(x) = self.offers.get_mut(&o) {
            x.desktop = false;
            x.timeout_at = timeout_at;
        }
        // The screen's reservation is now an offer like any other (ringing, or answered at
        // once on a line).
        self.notify(LiveEvent::CallOffered {
            call,
            agent: offer.agent,
            offer: o,
        });
        if line {
            self.accept_offer(o);
            return Ok(());
        }
        self.timers.arm(timeout_at, TimerKey::OfferTimeout(o));
        self.switch(SwitchCommand::Originate {
            kind: LegKind::Agent,
            leg: offer.leg,
            dial,
            caller_id_number: number,
            caller_id_name: name,
            timeout,
            vars: vec![
                ("switchyard_call".into(), call.0.to_string()),
                ("switchyard_queue".into(), queue_name),
                ("switchyard_offer".into(), o.0.to_string()),
                ("switchyard_agent".into(), offer.agent.0.to_string()),
            ],
            join: None,
        });
        Ok(())
    }

    /// An agent who leaves (a break, logging out) gives back a desktop preview it has not
    /// accepted: the contact goes to the next agent at once, at no cost to the agent (nothing
    /// rang, nothing was refused).
    pub(crate) fn release_desktop_reservation(&mut self, agent: AgentId) {
        let Some(Activity::Reserved(o)) = self.agent(agent).map(|a| a.activity) else {
            return;
        };
        let Some(offer) = self.offers.get(&o).copied().filter(|x| x.desktop) else {
            return;
        };
        self.let_go_of_desktop_leg(agent, offer.leg);
        self.notify(LiveEvent::PreviewEnded {
            call: offer.call,
            agent,
            reason: "withdrawn",
        });
        self.offer_failed(o, HangupCause::Lost);
    }

    /// The agent passes over its desktop preview: a rejected offer (the agent's reject
    /// delay), the contact back in line for the next agent.
    pub(crate) fn skip_preview(
        &mut self,
        call: CallId,
        by: Option<AgentId>,
    ) -> Result<(), EngineError> {
        let offer = self.reserved_offer(call, by)?;
        self.let_go_of_desktop_leg(offer.agent, offer.leg);
        self.notify(LiveEvent::PreviewEnded {
            call,
            agent: offer.agent,
            reason: "skipped",
        });
        self.offer_failed(offer.id, HangupCause::Rejected);
        Ok(())
    }

    /// The agent's leg did not come up: apply the agent's delay for this cause, count
    /// no-answers, and put the call back in line (same place) for the next candidate.
    fn offer_failed(&mut self, o: OfferId, cause: HangupCause) {
        let result = match cause {
            HangupCause::Busy => OfferResult::Busy,
            HangupCause::Rejected => OfferResult::Rejected,
            HangupCause::NoAnswer => OfferResult::NoAnswer,
            HangupCause::Normal | HangupCause::Failed => OfferResult::Failed,
            HangupCause::Lost => OfferResult::Lost,
        };
        let Some(offer) = self.retire_offer(o, result) else {
            return;
        };
        let Some(agent) = self.agent_mut(offer.agent) else {
            return;
        };
        let cfg = &agent.cfg;
        let (delay, counts) = match cause {
            HangupCause::Busy => (cfg.busy_delay, false),
            HangupCause::Rejected => (cfg.reject_delay, false),
            HangupCause::NoAnswer | HangupCause::Failed | HangupCause::Normal => {
                (cfg.no_answer_delay, true)
            }
            HangupCause::Lost => (Duration::ZERO, false),
        };
        let mut to_break = false;
        if counts {
            agent.no_answer_streak += 1;
            to_break = cfg.max_no_answer > 0 && agent.no_answer_streak >= cfg.max_no_answer;
        }
        self.release_agent(offer.agent, Some(delay));
        if to_break {
            // mod_callcenter's max-no-answer: the agent is clearly not at the phone.
            let _ = self.set_presence(offer.agent, Presence::OnBreak("max-no-answer".into()));
        }
        self.offer_returned(offer.call, offer.agent, offer.queue);
    }

    /// After an offer ended without a call: if the call has no offers left it goes back in
    /// line (same place) and is matched again.
    fn offer_returned(&mut self, c: CallId, agent: AgentId, q: QueueId) {
        let now = self.now;
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        call.remember_tried(agent);
        if call.phase != Phase::Offering || !call.offers.is_empty() {
            return;
        }
        call.phase = Phase::Waiting;
        if let Some(t) = call.timers.ring_next.take() {
            self.timers.cancel(t, TimerKey::RingNext(c));
        }
        let key = call.wait_key();
        if let Some(queue) = self.queue_mut(q) {
            queue.offering = queue.offering.saturating_sub(1);
            queue.waiting.insert(key);
            queue.note_waiting(now);
        }
        self.dirty_calls.push(c);
    }

    /// Ring-progressively: add the next agent while the earlier ones keep ringing.
    pub(crate) fn on_ring_next(&mut self, c: CallId) {
        let Some(call) = self.calls.get_mut(&c) else {
            return;
        };
        call.timers.ring_next = None;
        if call.phase != Phase::Offering {
            return;
        }
        let q = call.queue;
        let Some(step) = self.queue(q).map(|q| q.cfg.ring_progressively_step) else {
            return;
        };
        if let Some((agent, trace)) = self.next_candidate(c) {
            self.make_offer(c, agent, Some(trace));
        }
        let t = self.now + step;
        if let Some(call) = self.calls.get_mut(&c)
            && call.phase == Phase::Offering
        {
            call.timers.ring_next = Some(t);
            self.timers.arm(t, TimerKey::RingNext(c));
        }
    }

    /// A bridged call ended: one side hung up (or the switch lost it).
    pub(crate) fn end_talk(&mut self, c: CallId, how: TalkEnd) {
        let now = self.now;
        let Some(call) = self.calls.get(&c) else {
            return;
        };
        let Phase::Talking {
            agent,
            agent_leg,
            since,
        } = call.phase
        else {
            return;
        };
        let caller_leg = call.leg;
        let callback = call.callback;
        let q = call.queue;
        // Hang up whichever side is still there; the driver ignores legs already gone. A
        // persistent agent line stays up: FreeSWITCH parks it again (park_after_bridge). A
        // transferred caller is FreeSWITCH's now: hanging it up would drop the person the
        // agent just handed on.
        match how {
            TalkEnd::CallerLeft if !self.is_line(agent, agent_leg) => {
                self.switch(SwitchCommand::Hangup {
                    leg: agent_leg,
                    cause: "NORMAL_CLEARING",
                });
            }
            TalkEnd::AgentLeft => self.switch(SwitchCommand::Hangup {
                leg: caller_leg,
                cause: "NORMAL_CLEARING",
            }),
            _ => {}
        }
        // A line whose phone made the transfer hangs up next (or is parked again): as an
        // idle line, its hangup still takes the line down.
        let line_stays = matches!(
            how,
            TalkEnd::CallerLeft | TalkEnd::Transferred | TalkEnd::Lost { caller_side: true }
        ) && self.is_line(agent, agent_leg);
        if line_stays {
            self.legs.insert(agent_leg, LegRole::AgentLine(agent));
        } else {
            self.legs.remove(&agent_leg);
        }
        self.legs.remove(&caller_leg);
        let talk = now.saturating_duration_since(since);
        self.stats.call_talk_ended(now, q, c, agent, talk);
        self.finish_agent_call(agent, c, talk, true);
        let lost = matches!(how, TalkEnd::Lost { .. });
        let outcome = match how {
            TalkEnd::Lost { .. } => CallOutcome::Lost,
            TalkEnd::Transferred => CallOutcome::Transferred,
            _ if callback => CallOutcome::CallbackAnswered,
            _ => CallOutcome::Answered,
        };
        self.end_call(c, outcome, lost);
    }

    /// The agent's phone handed its caller elsewhere in FreeSWITCH (SIP REFER, blind or
    /// attended): the conversation is over for the engine and the agent wraps up, but the
    /// caller's leg lives on, and so does its recording (it taps that leg and ends when the
    /// leg hangs up). The agent's leg hangs up next; that hangup finds nothing left to end.
    pub(crate) fn on_leg_transferred(&mut self, leg: LegId) {
        let Some(LegRole::AgentOnCall(c)) = self.legs.get(&leg).copied() else {
            return;
        };
        if matches!(
            self.calls.get(&c).map(|c| c.phase),
            Some(Phase::Talking { .. })
        ) {
            self.end_talk(c, TalkEnd::Transferred);
        }
    }

    /// The agent's part of a call is over: wrap-up (if any) then ready again.
    pub(crate) fn finish_agent_call(
        &mut self,
        id: AgentId,
        c: CallId,
        talk: Duration,
        talked: bool,
    ) {
        let now = self.now;
        let Some(q) = self.calls.get(&c).map(|c| c.queue) else {
            return;
        };
        let queue_wrap = self.queue(q).map_or(Duration::ZERO, |q| q.cfg.wrapup);
        let Some(agent) = self.agent_mut(id) else {
            return;
        };
        if !matches!(agent.activity, Activity::OnCall(call, _) if call == c) {
            return;
        }
        let before = agent.state();
        agent.talk_ms += u64::try_from(talk.as_millis()).unwrap_or(u64::MAX);
        let wrap = if talked {
            agent.cfg.wrapup.unwrap_or(queue_wrap)
        } else {
            Duration::ZERO
        };
        if wrap.is_zero() {
            agent.activity = Activity::Idle;
            agent.idle_since = now;
            if talked {
                self.stats.wrapup_ended(now, q, id, Duration::ZERO);
            }
        } else {
            agent.activity = Activity::WrapUp(now + wrap);
            agent.wrap_from = Some((q, now));
            let old = agent.ready_timer;
            let new = self
                .timers
                .rearm(old, Some(now + wrap), TimerKey::AgentReady(id));
            if let Some(a) = self.agent_mut(id) {
                a.ready_timer = new;
            }
        }
        if talked && let Some(queue) = self.queue_mut(q) {
            queue.aht_sum += talk + wrap;
            queue.aht_n += 1;
        }
        self.agent_changed(id, before);
        self.refresh_agent(id);
    }
}

/// A caller's number as it may go into a dial string. It comes from the caller ID, which the
/// caller controls: anything that could end the destination or start another (`,` `|` `&`
/// `^` `{` `[` spaces...) is dropped, leaving what numbers and SIP users are made of.
fn dial_safe(number: &str) -> String {
    number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '#' | '.' | '-' | '_'))
        .take(64)
        .collect()
}

/// How a conversation ended, which decides who the engine hangs up and what the record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TalkEnd {
    /// The caller hung up: the agent's leg is hung up (a persistent line stays).
    CallerLeft,
    /// The agent hung up: the caller's leg is hung up.
    AgentLeft,
    /// The agent's phone handed the caller elsewhere (SIP REFER): nobody is hung up.
    Transferred,
    /// The switch lost the legs; `caller_side` says whose leg reported it.
    Lost { caller_side: bool },
}
