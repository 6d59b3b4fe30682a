//! Callers: arrival, joining a queue, what they hear while waiting, and every way out.

use std::time::Duration;

use crate::call::{Call, CallTimers, Phase};
use crate::config::{EmptyRule, Exit};
use crate::ids::{CallId, QueueId};
use crate::io::{
    CallOutcome, CallRecord, CallerInfo, FlowExit, HangupCause, LegId, LiveEvent, Prompt, Record,
    SwitchCommand,
};
use crate::queueing::ewt;
use crate::stats::ExitReason;
use crate::timers::TimerKey;

use super::offers::TalkEnd;
use super::{Engine, LegRole};

impl Engine {
    pub(crate) fn on_call_arrived(&mut self, leg: LegId, queue: QueueId, caller: CallerInfo) {
        // A caller in conversation reaching the `socket` again was moved out of its bridge by
        // FreeSWITCH and through the dialplan: a transfer made on the agent's phone to a
        // number switchyard serves. Its REFER may be reported after this arrival (the agent
        // leg's hangup comes on another connection), so the arrival itself ends the talk.
        if let Some(LegRole::Caller(c)) = self.legs.get(&leg).copied()
            && matches!(
                self.calls.get(&c).map(|c| c.phase),
                Some(Phase::Talking { .. })
            )
        {
            self.end_talk(c, TalkEnd::Transferred);
        }
        if self.legs.contains_key(&leg) {
            return; // a repeated arrival for a leg we already hold
        }
        let id = CallId(self.next_call);
        self.next_call = self.next_call.wrapping_add(1).max(1);
        let now = self.now;
        // A caller coming back (see `CallerInfo::first_arrived_unix_ms`) keeps its place.
        let since = caller
            .first_arrived_unix_ms
            .and_then(|ms| self.instant_of_unix_ms(ms))
            .filter(|t| *t < now)
            .unwrap_or(now);
        let call = Call {
            id,
            leg,
            origin_leg: leg,
            caller_present: true,
            caller,
            arrived: since,
            wait_origin: since,
            priority: 0,
            queue,
            queue_entered: now,
            queues: Vec::new(),
            phase: Phase::Waiting,
            offers: Vec::new(),
            tried: Vec::new(),
            offers_made: 0,
            step: 0,
            max_level: u32::MAX,
            relax: 0,
            callback: false,
            callback_failures: 0,
            callback_held: None,
            // A recording still tapping this leg (the caller came back after a transfer) goes
            // on as the call's: the next agent is added to it, not a second file started.
            recording: self.recorded_legs.get(&leg).copied(),
            record_draw: crate::recording::draw(leg),
            timers: CallTimers::default(),
            campaign: None,
        };
        if self.calls.len() >= self.cfg.max_calls || self.queue(queue).is_none() {
            // Refused at the door: still a record, never a silent drop.
            let cause = if self.queue(queue).is_none() {
                "UNALLOCATED_NUMBER"
            } else {
                "NORMAL_CIRCUIT_CONGESTION"
            };
            self.refused += 1;
            self.switch(SwitchCommand::Hangup { leg, cause });
            self.calls.insert(id, call);
            self.end_call(id, CallOutcome::Dropped, false);
            return;
        }
        let arrived_unix_ms = self.unix_ms(since);
        let caller_number = call.caller.number.clone();
        self.calls.insert(id, call);
        self.legs.insert(leg, LegRole::Caller(id));
        // Before anything is done for it: a restart finds the call in the store.
        self.persist(Record::CallOpened(crate::io::CallOpen {
            call: id,
            leg,
            queue,
            caller_number,
            arrived_unix_ms,
        }));
        self.switch(SwitchCommand::Answer { leg });
        self.join_queue(id, queue);
    }

    /// Puts a call in a queue's line (arrival, or a move from another queue).
    pub(crate) fn join_queue(&mut self, id: CallId, q: QueueId) {
        let now = self.now;
        let Some(queue) = self.queue(q) else {
            self.drop_call(id, "UNALLOCATED_NUMBER");
            return;
        };
        let refuse = match queue.cfg.join_empty {
            EmptyRule::Never => false,
            EmptyRule::NoneLoggedIn => queue.logged_in == 0,
            EmptyRule::NoneAvailable => queue.available == 0,
        };
        let boost = queue.cfg.priority_boost;
        let initial_level = queue.cfg.initial_max_level;
        let music = queue.cfg.announcements.music.clone();
        let on_no_agents = queue.cfg.on_no_agents.clone();
        let moves = self.calls.get(&id).map_or(0, |c| c.queues.len());
        if moves >= self.cfg.max_queue_moves {
            self.drop_call(id, "NORMAL_CLEARING");
            return;
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.queue = q;
        call.queue_entered = now;
        call.queues.push(q);
        call.priority = call.caller.priority.saturating_add(boost);
        call.step = 0;
        call.max_level = initial_level;
        call.relax = 0;
        call.tried.clear();
        call.phase = Phase::Waiting;
        let leg = call.leg;
        let origin = call.origin_leg;
        let present = call.caller_present;
        let (caller_number, caller_name) = (call.caller.number.clone(), call.caller.name.clone());
        self.stats.call_entered(now, q, id);
        if refuse {
            self.exit_waiting(id, on_no_agents, ExitReason::NoAgents, false);
            return;
        }
        let key = call.wait_key();
        let Some(queue) = self.queue_mut(q) else {
            return;
        };
        queue.waiting.insert(key);
        queue.note_waiting(now);
        let position = queue.position(&key);
        let logged_in = queue.logged_in;
        let cfg = &queue.cfg;
        let ann = &cfg.announcements;
        let t_announce = ann
            .first_after
            .filter(|_| ann.position || ann.expected_wait)
            .map(|d| now + d);
        let t_periodic = ann.periodic.as_ref().map(|(every, _)| now + *every);
        let t_max = cfg.max_wait.map(|d| now + d);
        let t_no_agent = cfg
            .max_wait_no_agent
            .filter(|_| logged_in == 0)
            .map(|d| now + d);
        let t_escalate = cfg.escalation.first().map(|s| now + s.after);
        if present {
            self.switch(SwitchCommand::Music { leg, source: music });
        }
        self.set_call_timers(
            id,
            CallTimers {
                announce: t_announce.filter(|_| present),
                periodic: t_periodic.filter(|_| present),
                max_wait: t_max,
                no_agent: t_no_agent,
                escalate: t_escalate,
                ring_next: None,
            },
        );
        self.notify(LiveEvent::CallQueued {
            call: id,
            leg: origin,
            queue: q,
            position,
            caller_number,
            caller_name,
        });
        self.dirty_calls.push(id);
    }

    /// Replaces every armed timer of a call.
    pub(crate) fn set_call_timers(&mut self, id: CallId, new: CallTimers) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut call.timers, new);
        let t = &mut self.timers;
        t.rearm(old.announce, new.announce, TimerKey::Announce(id));
        t.rearm(old.periodic, new.periodic, TimerKey::Periodic(id));
        t.rearm(old.max_wait, new.max_wait, TimerKey::MaxWait(id));
        t.rearm(old.no_agent, new.no_agent, TimerKey::NoAgent(id));
        t.rearm(old.escalate, new.escalate, TimerKey::Escalate(id));
        t.rearm(old.ring_next, new.ring_next, TimerKey::RingNext(id));
    }

    /// Takes a call out of its queue's line (it is being offered, answered, or leaving).
    pub(crate) fn leave_line(&mut self, id: CallId) {
        let now = self.now;
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let key = call.wait_key();
        let q = call.queue;
        if let Some(queue) = self.queue_mut(q) {
            queue.waiting.remove(&key);
            queue.note_waiting(now);
        }
    }

    /// A caller leaves the queue without an agent, by `exit`. The call must be waiting (any
    /// offers are cancelled first by the caller of this function).
    pub(crate) fn exit_waiting(
        &mut self,
        id: CallId,
        exit: Exit,
        reason: ExitReason,
        was_in_line: bool,
    ) {
        let now = self.now;
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let q = call.queue;
        let leg = call.leg;
        let present = call.caller_present;
        let caller_number = call.caller.number.clone();
        // The caller's flow names a step for this exit: it takes precedence over the queue's
        // own (in whichever queue the caller waits), for a caller still on the line.
        let flow_exit = match reason {
            ExitReason::Timeout if call.caller.flow_exits.max_wait => Some(FlowExit::MaxWait),
            ExitReason::NoAgents if call.caller.flow_exits.no_agent => Some(FlowExit::NoAgent),
            _ => None,
        }
        .filter(|_| present && !call.callback);
        if was_in_line {
            self.leave_line(id);
            if let Some(queue) = self.queue_mut(q) {
                queue.departures.record_departure(now);
            }
        }
        self.set_call_timers(id, CallTimers::default());
        self.stats.call_exited(now, q, id, reason);
        if let Some(exit) = flow_exit {
            self.switch(SwitchCommand::ResumeFlow { leg, exit });
            self.forget_caller_leg(id);
            self.end_call(id, CallOutcome::FlowExit, false);
            return;
        }
        match exit {
            Exit::Hangup => self.drop_call(id, "NORMAL_CLEARING"),
            Exit::Queue(to) if self.queue(to).is_some() => {
                self.notify(LiveEvent::CallMoved {
                    call: id,
                    from: q,
                    to,
                });
                self.join_queue(id, to);
            }
            Exit::Queue(_) => self.drop_call(id, "NORMAL_CLEARING"),
            Exit::Voicemail(destination) => {
                if present {
                    self.switch(SwitchCommand::Transfer { leg, destination });
                }
                self.forget_caller_leg(id);
                self.end_call(id, CallOutcome::Voicemail, false);
            }
            Exit::Mailbox(mailbox) => {
                if present {
                    self.switch(SwitchCommand::Voicemail {
                        leg,
                        mailbox,
                        caller_number,
                    });
                }
                self.forget_caller_leg(id);
                self.end_call(id, CallOutcome::Voicemail, false);
            }
            Exit::Transfer(destination) => {
                if present {
                    self.switch(SwitchCommand::Transfer { leg, destination });
                }
                self.forget_caller_leg(id);
                self.end_call(id, CallOutcome::Transferred, false);
            }
            Exit::Callback => self.become_callback(id),
        }
    }

    /// The caller hangs up and keeps their place: the call stays in line without a leg.
    /// The caller first hears the queue's confirmation, so they know they will be called
    /// back rather than cut off.
    fn become_callback(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let (leg, present, q) = (call.leg, call.caller_present, call.queue);
        if present {
            let confirm = self.queue(q).and_then(|q| q.cfg.callback_confirm.clone());
            self.switch(match confirm {
                Some(path) => SwitchCommand::PlayThenHangup { leg, path },
                None => SwitchCommand::Hangup {
                    leg,
                    cause: "NORMAL_CLEARING",
                },
            });
        }
        self.forget_caller_leg(id);
        let now = self.now;
        let escalate = self.next_escalation(id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.callback = true;
        call.caller_present = false;
        call.phase = Phase::Waiting;
        let key = call.wait_key();
        if let Some(queue) = self.queue_mut(q) {
            queue.waiting.insert(key);
            queue.note_waiting(now);
        }
        // A callback waits for an agent however long it takes; only escalation still applies.
        self.set_call_timers(
            id,
            CallTimers {
                escalate,
                ..CallTimers::default()
            },
        );
        self.dirty_calls.push(id);
    }

    /// A callback's dial to the customer failed (busy, no answer, failed, or the customer or
    /// the agent went before the two were joined); the agent is already let go. The call goes
    /// back in line at its old place, held for the queue's `callback_retry`, until
    /// `callback_attempts` dials have failed: only then does it end `callback-failed`. A
    /// campaign's preview dial is not retried here; the campaign's own rules decide.
    pub(crate) fn callback_failed(&mut self, id: CallId) {
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.callback_failures = call.callback_failures.saturating_add(1);
        let (q, failures) = (call.queue, call.callback_failures);
        let campaign = call.campaign.is_some();
        let rule = self
            .queue(q)
            .map(|q| (q.cfg.callback_attempts.max(1), q.cfg.callback_retry));
        let retry = match rule {
            Some((attempts, retry)) if !campaign && failures < attempts => retry,
            _ => {
                self.end_call(id, CallOutcome::CallbackFailed, false);
                return;
            }
        };
        self.forget_caller_leg(id);
        let escalate = self.next_escalation(id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.phase = Phase::Waiting;
        call.caller_present = false;
        let at = now + retry;
        let old = call.callback_held.replace(at);
        let (key, origin) = (call.wait_key(), call.origin_leg);
        let (caller_number, caller_name) = (call.caller.number.clone(), call.caller.name.clone());
        self.timers
            .rearm(old, Some(at), TimerKey::CallbackRetry(id));
        let Some(queue) = self.queue_mut(q) else {
            return;
        };
        queue.waiting.insert(key);
        queue.note_waiting(now);
        let position = queue.position(&key);
        self.set_call_timers(
            id,
            CallTimers {
                escalate,
                ..CallTimers::default()
            },
        );
        self.notify(LiveEvent::CallQueued {
            call: id,
            leg: origin,
            queue: q,
            position,
            caller_number,
            caller_name,
        });
    }

    /// A callback's retry interval is over: it may be offered again, from its old place.
    pub(crate) fn on_callback_retry(&mut self, id: CallId) {
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.callback_held.is_none_or(|t| t > now) {
            return;
        }
        call.callback_held = None;
        // Only a call in line is matched; one a supervisor assigned meanwhile is already
        // ringing its agent.
        if call.phase == Phase::Waiting {
            self.dirty_calls.push(id);
        }
    }

    /// When the call's next escalation step is due in its queue (its clock runs from the
    /// queue entry, whatever happened since).
    pub(crate) fn next_escalation(&self, id: CallId) -> Option<std::time::Instant> {
        let call = self.calls.get(&id)?;
        let queue = self.queue(call.queue)?;
        queue
            .cfg
            .escalation
            .get(call.step)
            .map(|s| call.queue_entered + s.after)
    }

    pub(crate) fn forget_caller_leg(&mut self, id: CallId) {
        self.recording_detached(id);
        if let Some(call) = self.calls.get(&id)
            && self.legs.get(&call.leg) == Some(&LegRole::Caller(id))
        {
            self.legs.remove(&call.leg);
        }
    }

    /// Hangs the caller up and ends the call as dropped.
    pub(crate) fn drop_call(&mut self, id: CallId, cause: &'static str) {
        if let Some(call) = self.calls.get(&id)
            && call.caller_present
        {
            let leg = call.leg;
            self.switch(SwitchCommand::Hangup { leg, cause });
        }
        self.forget_caller_leg(id);
        self.end_call(id, CallOutcome::Dropped, false);
    }

    /// Writes the final record and forgets the call. Offers and agents must already be
    /// released by the caller.
    pub(crate) fn end_call(&mut self, id: CallId, outcome: CallOutcome, synthetic: bool) {
        self.set_call_timers(id, CallTimers::default());
        self.forget_caller_leg(id);
        let Some(call) = self.calls.remove(&id) else {
            return;
        };
        if let Some(t) = call.callback_held {
            self.timers.cancel(t, TimerKey::CallbackRetry(id));
        }
        let now = self.now;
        let (agent, wait, talk) = match call.phase {
            Phase::Talking { agent, since, .. } => (
                Some(agent),
                since.saturating_duration_since(call.wait_origin),
                now.saturating_duration_since(since),
            ),
            Phase::CallingBack { agent, .. } => (
                Some(agent),
                now.saturating_duration_since(call.wait_origin),
                Duration::ZERO,
            ),
            _ => (
                None,
                now.saturating_duration_since(call.wait_origin),
                Duration::ZERO,
            ),
        };
        let record = CallRecord {
            call: id,
            leg: call.origin_leg,
            callback_leg: call
                .callback
                .then_some(call.leg)
                .filter(|l| *l != call.origin_leg),
            caller_number: call.caller.number,
            queues: call.queues,
            agent,
            outcome,
            arrived_unix_ms: self.unix_ms(call.arrived),
            wait_s: wait.as_secs_f64(),
            talk_s: talk.as_secs_f64(),
            offers: call.offers_made,
            synthetic,
        };
        self.persist(Record::Call(record));
        self.notify(LiveEvent::CallEnded { call: id, outcome });
        if let Some(info) = call.campaign {
            // A preview (or agent-first progressive) call's real channel is the customer leg
            // dialled once the agent answered: the attempt and the disposition lookup go by it.
            let leg = if info.preview {
                call.leg
            } else {
                call.origin_leg
            };
            self.campaign_call_ended(id, leg, *info, outcome, agent, talk);
        }
    }

    /// The caller's leg hung up.
    pub(crate) fn on_caller_hangup(&mut self, id: CallId, cause: HangupCause) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(info) = &mut call.campaign {
            info.cause = Some(cause);
        }
        let now = self.now;
        match call.phase {
            Phase::Waiting | Phase::Offering => {
                let q = call.queue;
                let in_line = call.phase == Phase::Waiting;
                self.stop_offering(id);
                if in_line {
                    self.leave_line(id);
                }
                if let Some(queue) = self.queue_mut(q) {
                    queue.departures.record_departure(now);
                }
                let lost = cause == HangupCause::Lost;
                if !lost {
                    self.stats.call_abandoned(now, q, id);
                } else {
                    self.stats.call_exited(now, q, id, ExitReason::Other);
                }
                self.forget_caller_leg(id);
                self.end_call(
                    id,
                    if lost {
                        CallOutcome::Lost
                    } else {
                        CallOutcome::Abandoned
                    },
                    lost,
                );
            }
            Phase::CallingBack {
                agent, agent_leg, ..
            } => {
                // The callback customer did not come up: the agent is free at once (not its
                // fault), and the customer is tried again later.
                self.free_agent_leg(agent, agent_leg, "NORMAL_CLEARING");
                self.finish_agent_call(agent, id, Duration::ZERO, false);
                if cause == HangupCause::Lost {
                    self.end_call(id, CallOutcome::Lost, true);
                } else {
                    self.callback_failed(id);
                }
            }
            Phase::Connecting {
                agent,
                agent_leg,
                deadline,
                ..
            } => {
                // Gone before the bridge: never talked to the agent.
                let q = call.queue;
                self.timers.cancel(deadline, TimerKey::BridgeDeadline(id));
                if call.callback {
                    // The customer went in the moment before the bridge: never reached.
                    self.free_agent_leg(agent, agent_leg, "NORMAL_CLEARING");
                    self.finish_agent_call(agent, id, Duration::ZERO, false);
                    if cause == HangupCause::Lost {
                        self.end_call(id, CallOutcome::Lost, true);
                    } else {
                        self.callback_failed(id);
                    }
                    return;
                }
                self.free_agent_leg(agent, agent_leg, "ORIGINATOR_CANCEL");
                self.finish_agent_call(agent, id, Duration::ZERO, false);
                let lost = cause == HangupCause::Lost;
                if lost {
                    self.stats.call_exited(now, q, id, ExitReason::Other);
                } else {
                    self.stats.call_abandoned(now, q, id);
                }
                self.forget_caller_leg(id);
                let outcome = if lost {
                    CallOutcome::Lost
                } else {
                    CallOutcome::Abandoned
                };
                self.end_call(id, outcome, lost);
            }
            Phase::Talking { .. } => self.end_talk(
                id,
                if cause == HangupCause::Lost {
                    TalkEnd::Lost { caller_side: true }
                } else {
                    TalkEnd::CallerLeft
                },
            ),
        }
    }

    pub(crate) fn on_dtmf(&mut self, leg: LegId, digit: char) {
        let Some(LegRole::Caller(id)) = self.legs.get(&leg).copied() else {
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if !matches!(call.phase, Phase::Waiting | Phase::Offering) {
            return;
        }
        let Some(queue) = self.queue(call.queue) else {
            return;
        };
        let Some((_, exit)) = queue.cfg.dtmf_exits.iter().find(|(d, _)| *d == digit) else {
            return;
        };
        let exit = exit.clone();
        self.exit_call(id, exit, ExitReason::Dtmf);
    }

    /// Exit from any pre-answer phase: cancels offers, then leaves by `exit`.
    pub(crate) fn exit_call(&mut self, id: CallId, exit: Exit, reason: ExitReason) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let in_line = match call.phase {
            Phase::Waiting => true,
            Phase::Offering => false,
            _ => return,
        };
        self.stop_offering(id);
        self.exit_waiting(id, exit, reason, in_line);
    }

    pub(crate) fn on_announce(&mut self, id: CallId) {
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.timers.announce = None;
        if !call.caller_present || !matches!(call.phase, Phase::Waiting | Phase::Offering) {
            return;
        }
        let key = call.wait_key();
        let (leg, phase, q) = (call.leg, call.phase, call.queue);
        let Some(queue) = self.queue(q) else { return };
        let position = if phase == Phase::Waiting {
            queue.position(&key)
        } else {
            1
        };
        let ann = &queue.cfg.announcements;
        let mut prompts = Vec::new();
        if ann.position {
            prompts.push(Prompt::Position { position });
        }
        if ann.expected_wait {
            // Measured departure rate from the head of this line, blended with what the
            // staffing would give; the wait to reach the head is Gamma(position, rate).
            let serving = queue.available.max(1);
            let prior = ewt::prior_rate(serving, queue.mean_handle());
            let rate = queue.departures.blended_rate(now, prior);
            if let Some(est) = rate.and_then(|r| ewt::estimate(position, r)) {
                let minutes = match est.announce_minutes() {
                    ewt::Announcement::LessThanAMinute => 0,
                    ewt::Announcement::Minutes(m) => m,
                };
                prompts.push(Prompt::ExpectedWait {
                    minutes,
                    p50_s: u32::try_from(est.p50.as_secs()).unwrap_or(u32::MAX),
                    p90_s: u32::try_from(est.p90.as_secs()).unwrap_or(u32::MAX),
                });
            }
        }
        let next = ann.every.map(|d| now + d);
        let music = ann.music.clone();
        if !prompts.is_empty() {
            self.switch(SwitchCommand::Announce {
                leg,
                prompts,
                then_music: music,
            });
        }
        if let Some(t) = next {
            self.timers.arm(t, TimerKey::Announce(id));
            if let Some(call) = self.calls.get_mut(&id) {
                call.timers.announce = Some(t);
            }
        }
    }

    pub(crate) fn on_periodic(&mut self, id: CallId) {
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.timers.periodic = None;
        if !call.caller_present || !matches!(call.phase, Phase::Waiting | Phase::Offering) {
            return;
        }
        let (leg, q) = (call.leg, call.queue);
        let Some(queue) = self.queue(q) else { return };
        let Some((every, path)) = queue.cfg.announcements.periodic.clone() else {
            return;
        };
        let music = queue.cfg.announcements.music.clone();
        self.switch(SwitchCommand::Announce {
            leg,
            prompts: vec![Prompt::File { path }],
            then_music: music,
        });
        let t = now + every;
        self.timers.arm(t, TimerKey::Periodic(id));
        if let Some(call) = self.calls.get_mut(&id) {
            call.timers.periodic = Some(t);
        }
    }

    pub(crate) fn on_max_wait(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.timers.max_wait = None;
        let q = call.queue;
        let Some(queue) = self.queue(q) else { return };
        let exit = queue.cfg.on_timeout.clone();
        self.exit_call(id, exit, ExitReason::Timeout);
    }

    pub(crate) fn arm_no_agent(&mut self, id: CallId, limit: Duration) {
        let now = self.now;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.timers.no_agent.is_some() || call.callback {
            return;
        }
        let at = now + limit;
        call.timers.no_agent = Some(at);
        self.timers.arm(at, TimerKey::NoAgent(id));
    }

    pub(crate) fn cancel_no_agent_timers(&mut self, q: QueueId) {
        let Some(queue) = self.queue(q) else { return };
        let calls: Vec<CallId> = queue.waiting.iter().map(|k| k.call).collect();
        for id in calls {
            if let Some(call) = self.calls.get_mut(&id)
                && let Some(t) = call.timers.no_agent.take()
            {
                self.timers.cancel(t, TimerKey::NoAgent(id));
            }
        }
    }

    pub(crate) fn on_no_agent(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.timers.no_agent = None;
        let q = call.queue;
        let Some(queue) = self.queue(q) else { return };
        if queue.logged_in > 0 {
            return;
        }
        let exit = queue.cfg.on_no_agents.clone();
        self.exit_call(id, exit, ExitReason::NoAgents);
    }

    pub(crate) fn on_escalate(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.timers.escalate = None;
        let Some(queue) = self.queues.get(call.queue.index()).and_then(Option::as_ref) else {
            return;
        };
        let Some(step) = queue.cfg.escalation.get(call.step) else {
            return;
        };
        call.max_level = call.max_level.max(step.max_level);
        call.relax = call.relax.max(step.relax_by);
        call.step += 1;
        // A wider pool may include agents who failed before; give them another chance.
        call.tried.clear();
        let next = queue
            .cfg
            .escalation
            .get(call.step)
            .map(|s| call.queue_entered + s.after);
        if let Some(t) = next {
            call.timers.escalate = Some(t);
            self.timers.arm(t, TimerKey::Escalate(id));
        }
        self.dirty_calls.push(id);
    }
}
