//! The command pipeline: the engine's switch commands to Event Socket requests, and their
//! answers back to the engine.
//!
//! ```text
//!   engine Output::Switch ─▶ switch(): in flight < max? issue() : backlog (bounded) : drop+fail
//!   issue(): playback takes Music/Announce · bridges wait for the handover · the leg's node
//!            · commands::plan · track originates and kills · CoreOutput::Send
//!   answered ─▶ on_command_done: originate jobs, kills (retry while the originate runs),
//!               bridges (refusal = BridgeFailed), sweep kills, the rest (counted)
//! ```
//!
//! **Order.** Every request of every command leaves in the engine's emission order (the
//! shell enqueues each Send before the next); FreeSWITCH answers one connection's `api`s in
//! order, so one leg's commands (all on its home node) run in the order decided.
//!
//! **Kills that overtake their originate.** FreeSWITCH runs `bgapi originate` in a thread of
//! its own, so a `uuid_kill` right behind it can find no channel yet. Until the originate's
//! job reports, such a kill is retried (`kill_retry`), and a leg that answers after we wanted
//! it gone is killed again.

use tracing::{debug, error, warn};

use crate::ids::QueueId;
use crate::io::{HangupCause, LegId, LegKind, SwitchCommand, SwitchEvent};

use super::super::commands::{self, EslRequest, Tracking};
use super::super::nodes;
use super::{Answer, DriverCore, Originated, Reply, bump};
use switchyard_esl::EslError;

impl DriverCore {
    /// A command from the engine: through the record gate (module `gate`), then sent now
    /// or queued behind earlier ones.
    pub(super) fn switch(&mut self, cmd: SwitchCommand) {
        if let Some(cmd) = self.through_gate(cmd) {
            self.switch_now(cmd);
        }
    }

    /// A command past the record gate: sent now, or queued behind earlier ones.
    pub(super) fn switch_now(&mut self, cmd: SwitchCommand) {
        if self.backlog.is_empty()
            && self.inflight_commands < self.cfg.max_commands_in_flight.max(1)
        {
            self.issue(cmd);
            return;
        }
        if self.backlog.len() < self.cfg.command_backlog {
            self.backlog.push_back(cmd);
            return;
        }
        bump(&self.counters.commands_dropped);
        error!(command = ?cmd, "switch command dropped: in-flight and backlog bounds both full");
        self.fail_originate(&cmd);
    }

    pub(super) fn pump_backlog(&mut self) {
        let max = self.cfg.max_commands_in_flight.max(1);
        while self.inflight_commands < max {
            let Some(cmd) = self.backlog.pop_front() else {
                break;
            };
            self.issue(cmd);
        }
        self.publish_backlog();
    }

    fn issue(&mut self, cmd: SwitchCommand) {
        // Recordings have requests and answers of their own (module `capture`).
        let cmd = match cmd {
            SwitchCommand::Recording(r) => return self.on_recording_command(r),
            // A message and a flow's next steps are the core's own exchanges (modules
            // `voicemail` and `ivr`).
            SwitchCommand::Voicemail {
                leg,
                mailbox,
                caller_number,
            } => return self.start_voicemail(leg, mailbox, caller_number),
            SwitchCommand::ResumeFlow { leg, exit } => return self.resume_flow(leg, exit),
            other => other,
        };
        // Music and prompts go through the prompt queue (module `playback`).
        let Some(mut cmd) = self.before_issue(cmd) else {
            return;
        };
        match &cmd {
            SwitchCommand::Bridge { a, b }
                if self.bridge_joined_by_switch(*a, *b, self.leg_node(*a)) =>
            {
                return;
            }
            SwitchCommand::Bridge { a, b }
                if self.owned_by_originate(*a) || self.owned_by_originate(*b) =>
            {
                if self.handover.hold(*a, *b) {
                    bump(&self.counters.bridges_held);
                    debug!(%a, %b, "bridge held until FreeSWITCH hands the leg over");
                    return;
                }
                warn!(%a, %b, "too many bridges held; sending this one before the handover");
            }
            SwitchCommand::Hangup { leg, .. } => {
                // The engine let the leg go: a bridge held for it has no one waiting.
                self.handover.drop_leg(*leg);
            }
            SwitchCommand::Transfer { leg, .. } | SwitchCommand::PlayThenHangup { leg, .. } => {
                if let Some(o) = self.originated.get_mut(leg) {
                    o.exempt = true;
                }
            }
            _ => {}
        }
        let Some(node) = self.node_for(&cmd) else {
            // Only originates with no connected node to go to end up here.
            bump(&self.counters.commands_failed);
            warn!(command = ?cmd, "no FreeSWITCH node is connected; originate not sent");
            self.fail_originate(&cmd);
            return;
        };
        let joins = self.prepare_join(node, &mut cmd);
        let target_is_caller = match &cmd {
            SwitchCommand::Eavesdrop { target, .. } => self.is_caller_side(*target),
            _ => false,
        };
        let (requests, tracking) = match commands::plan(&cmd, &self.syntax, target_is_caller) {
            Ok(p) => p,
            Err(e) => {
                bump(&self.counters.commands_failed);
                warn!(error = %e, command = ?cmd, "switch command not sent");
                self.fail_originate(&cmd);
                return;
            }
        };
        let mut kill = None;
        match (tracking, &cmd) {
            (Tracking::Originate(leg), _) => {
                let kind = match &cmd {
                    SwitchCommand::Originate { kind, .. } => Some(*kind),
                    _ => None,
                };
                let call_leg = self
                    .engine
                    .call_by_leg(leg)
                    .and_then(|c| self.engine.call_info(c))
                    .map(|c| (c.origin_leg, c.queue));
                self.originated.insert(
                    leg,
                    Originated {
                        answered: false,
                        job_done: false,
                        kill: None,
                        customer: matches!(kind, Some(LegKind::Customer | LegKind::Campaign)),
                        call_leg,
                        campaign: kind == Some(LegKind::Campaign),
                        amd_reported: false,
                        handed_over: false,
                        exempt: false,
                        unowned_sweeps: 0,
                        joins,
                    },
                );
                self.set_home(leg, node);
                if let Some(r) = &mut self.nodes[node].resync {
                    r.extra.insert(leg);
                }
            }
            (Tracking::Kill(leg), SwitchCommand::Hangup { cause, .. }) => {
                if let Some(o) = self.originated.get_mut(&leg) {
                    o.kill = Some(*cause);
                }
                kill = Some((*cause, 1));
            }
            _ => {}
        }
        self.send_command(node, requests, tracking, kill);
        bump(&self.counters.commands_sent);
        if let Some(p) = &self.cfg.probe {
            p.command_sent(&cmd, self.now);
        }
    }

    /// An originate that cannot be sent: its leg is reported failed.
    fn fail_originate(&mut self, cmd: &SwitchCommand) {
        self.fail_unsent(cmd, HangupCause::Failed);
    }

    /// An originate that was never sent: its leg is reported gone with `cause`, except that
    /// a campaign's dial is reported lost (the engine cancels it: a dial never placed costs
    /// its contact nothing).
    pub(super) fn fail_unsent(&mut self, cmd: &SwitchCommand, cause: HangupCause) {
        let cause = match cmd {
            SwitchCommand::Originate {
                kind: LegKind::Campaign,
                ..
            } => HangupCause::Lost,
            _ => cause,
        };
        if let Some(leg) = originated_leg(cmd) {
            self.followups
                .push_back(SwitchEvent::LegHungUp { leg, cause });
        }
    }

    /// The node a command goes to (see the driver's doc on nodes). `None` only for an
    /// originate when no node is connected.
    fn node_for(&mut self, cmd: &SwitchCommand) -> Option<usize> {
        let home = |l: &LegId| self.homes.get(*l);
        match cmd {
            SwitchCommand::Originate { kind, leg, .. } => {
                let call_home = self.call_node(*leg);
                match (kind, call_home) {
                    // uuid_bridge needs both legs on one switch: the caller's, even when it
                    // is down (then the originate fails and the engine offers again).
                    (LegKind::Agent, Some(n)) => Some(n),
                    // A callback's or a preview's customer joins the agent already up.
                    (LegKind::Customer | LegKind::Campaign, Some(n)) if self.nodes[n].connected => {
                        Some(n)
                    }
                    _ => self.least_loaded(),
                }
            }
            SwitchCommand::Eavesdrop { target, .. } => home(target).or_else(|| self.least_loaded()),
            // Issued by the module `capture` on the recorded leg's node.
            SwitchCommand::Recording(_) => Some(self.fallback_node()),
            SwitchCommand::Bridge { a, b } => {
                let (ha, hb) = (home(a), home(b));
                if let (Some(x), Some(y)) = (ha, hb)
                    && x != y
                {
                    warn!(%a, %b, "bridging legs of two different nodes; this will fail");
                }
                ha.or(hb).or_else(|| Some(self.fallback_node()))
            }
            SwitchCommand::Answer { leg }
            | SwitchCommand::Music { leg, .. }
            | SwitchCommand::Announce { leg, .. }
            | SwitchCommand::Hangup { leg, .. }
            | SwitchCommand::Park { leg }
            | SwitchCommand::Transfer { leg, .. }
            | SwitchCommand::PlayThenHangup { leg, .. }
            | SwitchCommand::Voicemail { leg, .. }
            | SwitchCommand::ResumeFlow { leg, .. } => Some(self.leg_node(*leg)),
        }
    }

    /// The node the call `leg` is dialled for lives on: its caller leg's, its first leg's, or
    /// that of another leg dialled for it (a callback rings the agent, then the customer).
    fn call_node(&self, leg: LegId) -> Option<usize> {
        let call = self
            .engine
            .call_by_leg(leg)
            .and_then(|c| self.engine.call_info(c))?;
        let origin = call.origin_leg;
        self.homes
            .get(call.leg)
            .or_else(|| self.homes.get(origin))
            .or_else(|| {
                self.originated
                    .iter()
                    .filter(|(l, o)| **l != leg && o.call_leg.is_some_and(|c| c.0 == origin))
                    .find_map(|(l, _)| self.homes.get(*l))
            })
    }

    fn least_loaded(&mut self) -> Option<usize> {
        let up: Vec<bool> = self.nodes.iter().map(|n| n.connected).collect();
        nodes::least_loaded(&up, self.homes.counts(), &mut self.next_node)
    }

    fn is_caller_side(&self, leg: LegId) -> bool {
        self.callers.contains(&leg) || self.originated.get(&leg).is_some_and(|o| o.customer)
    }

    // ---- answers ------------------------------------------------------------------------

    pub(super) fn on_command_done(
        &mut self,
        node: usize,
        tracking: Tracking,
        kill: Option<(&'static str, u32)>,
        replies: Vec<Reply>,
    ) {
        match tracking {
            Tracking::Originate(leg) => {
                for r in replies {
                    self.on_originate_reply(leg, r);
                }
            }
            Tracking::Kill(leg) => {
                let (cause, attempt) = kill.unwrap_or(("NORMAL_CLEARING", 1));
                for r in replies {
                    self.on_kill_reply(node, leg, cause, attempt, r);
                }
            }
            Tracking::Bridge(a, b) => {
                // The last answer is `uuid_bridge`'s (the variables before it do not decide).
                if let Some(r) = replies.into_iter().last() {
                    let refused = match r {
                        Ok(Answer::Api(body)) if body.starts_with(b"-ERR") => {
                            Some(String::from_utf8_lossy(&body).trim_end().to_owned())
                        }
                        Ok(_) => None,
                        Err(e) => Some(e.to_string()),
                    };
                    if let Some(why) = refused {
                        bump(&self.counters.commands_failed);
                        bump(&self.counters.bridges_failed);
                        warn!(%a, %b, call = ?self.engine.call_by_leg(a).or_else(|| self.engine.call_by_leg(b)), reply = %why, "uuid_bridge refused");
                        self.followups.push_back(SwitchEvent::BridgeFailed { a, b });
                    }
                }
            }
            Tracking::Sweep(leg) => {
                for r in replies {
                    match r {
                        Ok(Answer::Api(body)) if body.starts_with(b"+OK") => {
                            bump(&self.counters.orphans_killed);
                            warn!(%leg, "orphan leg killed: originated by switchyard, no longer used by any call");
                        }
                        Ok(Answer::Api(_)) => {
                            // No such channel: its hangup was missed; stop tracking it.
                            if self.originated.remove(&leg).is_some() {
                                self.forget_home(leg);
                            }
                        }
                        Ok(Answer::Job(_)) => {}
                        Err(e) => debug!(%leg, error = %e, "sweep kill not answered"),
                    }
                }
            }
            Tracking::Recorder(_) | Tracking::SwitchRecord(_) | Tracking::Announcement(_) => {
                self.on_capture_reply(tracking, replies);
            }
            Tracking::Other => {
                for r in replies {
                    match r {
                        Ok(Answer::Api(body)) if body.starts_with(b"-ERR") => {
                            bump(&self.counters.commands_failed);
                            // Races with hangups make these routine (a broadcast to a caller
                            // who just left).
                            debug!(reply = %String::from_utf8_lossy(&body).trim_end(), "switch refused a command");
                        }
                        Ok(_) => {}
                        Err(e) => {
                            bump(&self.counters.commands_failed);
                            debug!(error = %e, "switch command failed");
                        }
                    }
                }
            }
        }
    }

    fn on_kill_reply(
        &mut self,
        node: usize,
        leg: LegId,
        cause: &'static str,
        attempt: u32,
        r: Reply,
    ) {
        match r {
            Ok(Answer::Api(body)) if body.starts_with(b"-ERR") => {
                // "No such channel": gone already, or not created yet.
                let pending = self.originated.get(&leg).is_some_and(|o| !o.job_done);
                if !pending && self.originated.remove(&leg).is_some() {
                    // Its hangup was missed (or it never existed): stop tracking.
                    self.forget_home(leg);
                }
                if pending && attempt <= self.cfg.kill_retries {
                    self.later(
                        self.cfg.kill_retry,
                        super::Chore::KillRetry {
                            leg,
                            cause,
                            attempt: attempt.saturating_add(1),
                        },
                    );
                }
            }
            Ok(_) => {}
            Err(EslError::ConnectionClosed) => {
                let node = self.homes.get(leg).unwrap_or(node);
                let kills = &mut self.nodes[node].failed_kills;
                if kills.len() < super::MAX_FAILED_KILLS {
                    kills.insert(leg, cause);
                }
            }
            Err(e) => {
                bump(&self.counters.commands_failed);
                warn!(%leg, error = %e, "uuid_kill failed");
            }
        }
    }

    fn on_originate_reply(&mut self, leg: LegId, reply: Reply) {
        match reply {
            Ok(Answer::Job(body)) if body.starts_with(b"+OK") => {
                let Some(o) = self.originated.get_mut(&leg) else {
                    return;
                };
                o.job_done = true;
                o.handed_over = true;
                if !o.answered {
                    o.answered = true;
                    self.followups.push_back(SwitchEvent::LegAnswered { leg });
                }
                let kill = o.kill;
                self.release_bridges();
                if let Some(cause) = kill {
                    // It answered after the engine let it go.
                    self.send_kill(leg, cause, u32::MAX);
                }
            }
            Ok(Answer::Job(body)) => self.on_originate_failed(leg, &String::from_utf8_lossy(&body)),
            Ok(Answer::Api(_)) => {}
            Err(EslError::ConnectionClosed | EslError::Shutdown) => {
                // It may have run: only the switch knows. The resync after the reconnect asks.
                if let Some(o) = self.originated.get_mut(&leg) {
                    o.job_done = true;
                }
            }
            Err(e) => {
                bump(&self.counters.commands_failed);
                warn!(%leg, error = %e, "originate failed");
                if matches!(e, EslError::Timeout { .. }) {
                    // The job's answer is lost, the leg may exist: make sure it does not.
                    let node = self.leg_node(leg);
                    let req = EslRequest::Api(format!("uuid_kill {leg} NORMAL_CLEARING"));
                    self.send_command(node, vec![req], Tracking::Other, None);
                }
                if self.originated.remove(&leg).is_some() {
                    self.forget_home(leg);
                    self.followups.push_back(SwitchEvent::LegHungUp {
                        leg,
                        cause: HangupCause::Failed,
                    });
                }
            }
        }
    }

    /// The job said `-ERR <CAUSE>`.
    fn on_originate_failed(&mut self, leg: LegId, body: &str) {
        let cause_name = body.split_ascii_whitespace().nth(1).unwrap_or("");
        let cause = if cause_name.is_empty() {
            HangupCause::Failed
        } else {
            HangupCause::from_freeswitch(cause_name)
        };
        let Some(o) = self.originated.get_mut(&leg) else {
            return;
        };
        o.job_done = true;
        // An originate that fails after its leg answered (FreeSWITCH's ORIGINATOR_CANCEL when
        // a bridge raced it) leaves the leg up: kill it and keep tracking it until its hangup.
        let may_be_up = o.answered || cause_name == "ORIGINATOR_CANCEL";
        // Our own kill of a leg that had just answered fails its originate with the kill's
        // cause (FreeSWITCH reports the hangup as the originate's failure): no surprise.
        let killed = o.kill.is_some();
        let call_leg = o.call_leg.map(|c| c.0);
        for (a, b) in self.handover.drop_leg(leg) {
            bump(&self.counters.bridges_failed);
            warn!(%a, %b, %leg, reply = %body.trim_end(), "bridge dropped: its leg's originate failed");
            self.followups.push_back(SwitchEvent::BridgeFailed { a, b });
        }
        if may_be_up {
            if killed {
                debug!(%leg, reply = %body.trim_end(), "originate ended by our kill after its leg answered");
            } else {
                bump(&self.counters.originates_failed_after_answer);
                warn!(%leg, call = ?call_leg, reply = %body.trim_end(), "originate failed after its leg answered; killing the leg");
            }
            let kill = self
                .originated
                .get(&leg)
                .and_then(|o| o.kill)
                .unwrap_or("NORMAL_CLEARING");
            if let Some(o) = self.originated.get_mut(&leg) {
                o.kill = Some(kill);
            }
            self.send_kill(leg, kill, u32::MAX);
        } else {
            self.originated.remove(&leg);
            self.forget_home(leg);
        }
        self.followups
            .push_back(SwitchEvent::LegHungUp { leg, cause });
    }

    // ---- the handover -------------------------------------------------------------------

    /// A leg this driver originated whose originate still owns it (see `handover`).
    pub(super) fn owned_by_originate(&self, leg: LegId) -> bool {
        self.originated.get(&leg).is_some_and(|o| !o.handed_over)
    }

    /// FreeSWITCH's originate let go of `leg` (its `&park()` ran, or its job said `+OK`).
    pub(super) fn handed_over(&mut self, leg: LegId) {
        if let Some(o) = self.originated.get_mut(&leg)
            && !o.handed_over
        {
            o.handed_over = true;
            self.release_bridges();
        }
    }

    /// Sends the held bridges whose legs are all handed over now.
    fn release_bridges(&mut self) {
        let ready = {
            let originated = &self.originated;
            self.handover
                .release(|l| originated.get(&l).is_some_and(|o| !o.handed_over))
        };
        for (a, b) in ready {
            self.switch(SwitchCommand::Bridge { a, b });
        }
    }

    /// The call a leg of ours belongs to: a caller's own leg, or the call an originated leg
    /// was dialled for.
    pub(super) fn call_leg_of(&self, leg: LegId) -> Option<(LegId, QueueId)> {
        if let Some(q) = self.caller_queues.get(&leg) {
            // The queue the caller is in now, if the call still exists; else where it arrived.
            let queue = self
                .engine
                .call_by_leg(leg)
                .and_then(|c| self.engine.call_info(c))
                .map_or(*q, |c| c.queue);
            return Some((leg, queue));
        }
        self.originated.get(&leg).and_then(|o| o.call_leg)
    }
}

/// The leg a command creates, if it creates one.
pub(super) fn originated_leg(cmd: &SwitchCommand) -> Option<LegId> {
    match cmd {
        SwitchCommand::Originate { leg, .. } | SwitchCommand::Eavesdrop { leg, .. } => Some(*leg),
        _ => None,
    }
}
