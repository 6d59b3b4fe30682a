//! Inbound flows (issue 20): a caller whose number runs a flow walks it here, on its own
//! channel, before the engine hears of it; the flow's route then brings it to a queue as any
//! caller arrives.
//!
//! ```text
//!   caller_arrived, a number plan set, no switchyard_queue ─► Run (switchyard_dialplan)
//!   Output::Play             ─► sendmsg <leg> execute playback
//!   Output::PlayAndGetDigits ─► sendmsg <leg> execute play_and_get_digits (Event-UUID = ours,
//!                               a variable of its own per attempt)
//!   CHANNEL_EXECUTE_COMPLETE, Application-UUID ours ─► read_input(digits, read_result,
//!                               digits_invalid) ─► the run
//!   Output::Route(Queue)     ─► the engine's CallArrived, with the flow's skills and priority
//!   Output::Route(Transfer)  ─► uuid_transfer <leg> <number> (the caller leaves switchyard)
//!   Output::Route(PlayHangup)─► playback, then hangup
//! ```
//!
//! The executions go through `sendmsg <uuid>` on the node's inbound connection, queued on the
//! channel in order (a prompt, then the digit collection); their completions come there too.
//! `play_and_get_digits` answers only in channel variables (`Application-Response: _none_`,
//! capture `play-and-get-digits`), and variables outlive the application: each attempt
//! collects into a variable of its own, so an earlier attempt's digits are never read again.

use std::collections::HashMap;
use std::sync::Arc;

use switchyard_dialplan::flow::{self as dp, Flow, NumberIndex, Output, Run, Target};
use switchyard_dialplan::schedule::CompiledSchedule;
use switchyard_esl::Event;
use tracing::{debug, warn};

use crate::config::Mailbox;
use crate::ids::SkillId;
use crate::io::{CallerInfo, FlowExit, FlowExits, Input, LegId, SwitchEvent};

use super::DriverCore;
use super::timers::Chore;

/// Callers walking a flow at once; past it a caller goes straight to its queue by number.
pub(crate) const MAX_FLOW_CALLERS: usize = 100_000;

/// How long a collection's prompt may play when the driver sets no prompt deadline.
const COLLECTION_ALLOWANCE: std::time::Duration = std::time::Duration::from_secs(60);

/// What inbound routing needs on the call path, built whole when the configuration changes.
#[derive(Debug, Clone)]
pub struct InboundPlan {
    /// Dialled number -> flow id (a default flow for numbers it does not list).
    pub numbers: NumberIndex,
    pub flows: HashMap<String, Arc<Flow>>,
    pub schedules: HashMap<String, CompiledSchedule>,
    /// A flow's queue references -> the engine's queues; a reference not here is looked up in
    /// the driver's routes (queue names and numbers).
    pub queues: HashMap<String, crate::ids::QueueId>,
    /// Skill names a flow sets -> the engine's ids.
    pub skills: HashMap<String, SkillId>,
    /// A flow's agent references (voicemail boxes, agent steps) -> the engine's agents.
    pub agents: HashMap<String, crate::ids::AgentId>,
}

/// One caller in a flow.
#[derive(Debug)]
pub(crate) struct FlowCall {
    run: Run,
    /// What the caller brought, handed to the engine with the flow's variables.
    caller: CallerInfo,
    /// The execution awaited: its Event-UUID and the variable it collects into.
    waiting: Option<(String, String)>,
    attempts: u32,
    started_unix_ms: u64,
    /// Where the flow sent the caller, while a queue may still hand it back.
    routed: Option<String>,
}

impl DriverCore {
    /// Replaces the number plan and flows; callers already in a flow finish the one they
    /// started (each run holds its flow).
    pub fn set_inbound(&mut self, plan: Option<Arc<InboundPlan>>) {
        self.inbound = plan;
    }

    /// The flow a new caller runs: with a number plan set, a caller that does not name its
    /// queue (`switchyard_queue`) and is not coming back into its queue after a restart runs
    /// the flow of its number if the plan names it; else a number a queue has as its own goes
    /// to that queue (another tenant's default flow must not take it); else the default flow.
    pub(super) fn flow_for(&self, destination: Option<&str>) -> Option<Arc<Flow>> {
        let plan = self.inbound.as_ref()?;
        if self.flows.len() >= MAX_FLOW_CALLERS {
            warn!("too many callers in flows at once; this one goes by its number");
            return None;
        }
        let dialled = destination.unwrap_or("");
        let id = match plan.numbers.listed(dialled) {
            Some(id) => id,
            None if !dialled.is_empty() && self.lookup_route(dialled).is_some() => return None,
            None => plan.numbers.default_flow(),
        };
        if id.is_empty() {
            // Not a number of the plan, and no default flow: the caller goes by its number.
            return None;
        }
        let flow = plan.flows.get(id).cloned();
        if flow.is_none() {
            warn!(flow = id, "the number plan names a flow that is not loaded");
        }
        flow
    }

    /// Starts `leg` on `flow` (the caller's bookkeeping is done).
    pub(super) fn start_flow(
        &mut self,
        leg: LegId,
        flow: Arc<Flow>,
        caller: CallerInfo,
        dialled: String,
    ) {
        let who = dp::CallerInfo {
            caller_id: caller.number.clone(),
            dialled,
        };
        let run = Run::new(flow, who);
        if self.walked.len() < super::MAX_CALLER_QUEUES {
            self.walked.insert(leg, run.flow_id().to_owned());
        }
        // A menu answers the call first: prompts and keys in early media depend on the
        // carrier, and a caller in a menu is a call in progress (billing starts here).
        self.execute(leg, "answer", String::new(), None);
        self.flows.insert(
            leg,
            FlowCall {
                run,
                caller,
                waiting: None,
                attempts: 0,
                started_unix_ms: self.engine.unix_ms(self.now),
                routed: None,
            },
        );
        self.flow_input(leg, dp::Input::CallArrived);
    }

    /// A completion on a leg in a flow: `true` when it was the collection awaited.
    pub(super) fn flow_executed(&mut self, leg: LegId, e: &Event) -> bool {
        let Some(call) = self.flows.get_mut(&leg) else {
            return false;
        };
        let Some((id, var)) = &call.waiting else {
            return false;
        };
        if e.header("Application-UUID").as_deref() != Some(id.as_str()) {
            return false;
        }
        let digits = e.variable(var);
        let result = e.variable("read_result");
        let invalid = e.variable(&format!("{var}_invalid"));
        let input = dp::read_input(digits.as_deref(), result.as_deref(), invalid.as_deref());
        call.waiting = None;
        self.flow_input(leg, input);
        true
    }

    /// A collection's end was never reported: it counts as a silence (the run asks again or
    /// takes the menu's timeout exit), and the execution is interrupted in case it still runs.
    pub(super) fn collection_overdue(&mut self, leg: LegId, id: &str) {
        let Some(call) = self.flows.get_mut(&leg) else {
            return;
        };
        if call.waiting.as_ref().is_none_or(|(w, _)| w != id) {
            return;
        }
        call.waiting = None;
        warn!(%leg, execution = id, "a digit collection never reported its end; taken as a silence");
        self.api_on_leg(leg, format!("uuid_break {leg} all"));
        self.flow_input(leg, dp::Input::Timeout);
    }

    /// The caller hung up (or vanished) while in a flow, or in the queue a flow sent it to.
    pub(super) fn flow_leg_gone(&mut self, leg: LegId) {
        if let Some(call) = self.flows.remove(&leg) {
            debug!(%leg, journey = ?call.run.journey(), "caller left during its flow");
            self.journey_over(leg, &call);
        }
        if let Some(call) = self.queued_flows.remove(&leg) {
            self.journey_over(leg, &call);
        }
    }

    /// The flow `leg` walked, until its CHANNEL_HANGUP_COMPLETE (its CDR names it).
    pub(super) fn walked_flow(&mut self, leg: LegId) -> Option<String> {
        self.walked.remove(&leg)
    }

    /// Files the caller's walk through its flow: it is over (routed for good, or gone).
    fn journey_over(&mut self, leg: LegId, call: &FlowCall) {
        let journey = match serde_json::to_string(call.run.journey()) {
            Ok(j) => j,
            Err(e) => {
                warn!(%leg, error = %e, "a journey could not be written");
                return;
            }
        };
        let who = call.run.caller();
        self.record(crate::io::Record::Journey(Box::new(
            crate::io::JourneyRecord {
                leg,
                flow: call.run.flow_id().to_owned(),
                dialled: who.dialled.clone(),
                caller_number: who.caller_id.clone(),
                started_unix_ms: call.started_unix_ms,
                ended_unix_ms: self.engine.unix_ms(self.now),
                routed: call.routed.clone(),
                journey,
            },
        )));
    }

    /// The queue let the caller go by an exit its flow names a step for: the flow goes on.
    pub(super) fn resume_flow(&mut self, leg: LegId, exit: FlowExit) {
        let Some(call) = self.queued_flows.remove(&leg) else {
            // The engine sets flow exits only for callers with a run kept here.
            warn!(%leg, ?exit, "a queue handed back a caller whose flow is not kept; the caller is hung up");
            self.execute(leg, "hangup", self.cfg.unrouted_cause.clone(), None);
            return;
        };
        // The music on hold runs as a broadcast: only `uuid_break all` stops it, and the
        // flow's next prompts would queue behind it.
        self.prompt_leg_gone(leg);
        self.api_on_leg(leg, format!("uuid_break {leg} all"));
        self.flows.insert(leg, call);
        let exit = match exit {
            FlowExit::NoAgent => dp::QueueExit::NoAgent,
            FlowExit::MaxWait => dp::QueueExit::MaxWait,
        };
        self.flow_input(leg, dp::Input::QueueExit(exit));
    }

    /// A flow's voicemail box: a queue by its API id or name, an agent by its API id.
    fn mailbox_of(&self, mailbox: &dp::VoicemailBox) -> Option<Mailbox> {
        match mailbox {
            dp::VoicemailBox::Queue(q) => {
                let planned = self.inbound.as_ref().and_then(|p| p.queues.get(q).copied());
                planned.or_else(|| self.lookup_route(q)).map(Mailbox::Queue)
            }
            dp::VoicemailBox::Agent(a) => self
                .inbound
                .as_ref()
                .and_then(|p| p.agents.get(a).copied())
                .map(Mailbox::Agent),
        }
    }

    fn flow_input(&mut self, leg: LegId, input: dp::Input) {
        let at = self.engine.unix_ms(self.now);
        let Some(call) = self.flows.get_mut(&leg) else {
            return;
        };
        let plan = self.inbound.clone();
        let open = |schedule: &str| -> Option<bool> {
            let ts = jiff::Timestamp::from_millisecond(i64::try_from(at).ok()?).ok()?;
            plan.as_ref()?
                .schedules
                .get(schedule)
                .map(|s| s.is_open(ts))
        };
        if let Err(e) = call.run.handle_input(&open, input) {
            // An input the run did not expect (a completion after it moved on): logged only.
            debug!(%leg, error = %e, "flow input ignored");
        }
        while let Some(out) = self.flows.get_mut(&leg).and_then(|c| c.run.poll_output()) {
            match out {
                Output::Play { prompt } => self.execute(leg, "playback", prompt, None),
                Output::PlayAndGetDigits(mut p) => {
                    let Some(call) = self.flows.get_mut(&leg) else {
                        return;
                    };
                    call.attempts = call.attempts.saturating_add(1);
                    let var = format!("switchyard_ivr_{}", call.attempts);
                    let id = format!("switchyard-ivr-{leg}-{}", call.attempts);
                    p.var_name = var.clone();
                    call.waiting = Some((id.clone(), var));
                    // A collection whose end never comes (a refused sendmsg, a lost event)
                    // must not leave the caller in silence: past the prompt's allowance and
                    // the wait for keys, it counts as a silence.
                    let allowance = if self.cfg.prompt_timeout.is_zero() {
                        COLLECTION_ALLOWANCE
                    } else {
                        self.cfg.prompt_timeout
                    };
                    let keys = p.timeout + p.inter_digit_timeout * u32::from(p.max.max(1));
                    self.later(
                        allowance + keys,
                        Chore::CollectionOverdue {
                            leg,
                            id: id.clone(),
                        },
                    );
                    self.execute(leg, "play_and_get_digits", p.app_args(), Some(id));
                }
                Output::Route(target) => {
                    if let Some(call) = self.flows.remove(&leg) {
                        self.route_from_flow(leg, call, target);
                    }
                    return;
                }
            }
        }
    }

    fn route_from_flow(&mut self, leg: LegId, mut call: FlowCall, target: Target) {
        debug!(%leg, ?target, journey = ?call.run.journey(), "flow routed");
        // A queue step with exits of its own keeps the run, for the queue to hand back.
        let exits = call
            .run
            .queue_exits()
            .filter(|e| (e.0 || e.1) && self.queued_flows.len() < MAX_FLOW_CALLERS);
        let mut caller = std::mem::take(&mut call.caller);
        call.routed = Some(routed_to(&target));
        if !matches!(target, Target::Queue { .. }) || exits.is_none() {
            // Routed for good: no queue can hand the caller back.
            self.journey_over(leg, &call);
        }
        match target {
            Target::Queue { queue, vars } => {
                let planned = self
                    .inbound
                    .as_ref()
                    .and_then(|p| p.queues.get(&queue).copied());
                let Some(q) = planned
                    .or_else(|| self.lookup_route(&queue))
                    .or(self.cfg.default_queue)
                else {
                    warn!(%leg, queue, "the flow routes to a queue switchyard does not know");
                    self.execute(leg, "hangup", self.cfg.unrouted_cause.clone(), None);
                    return;
                };
                self.apply_vars(leg, &vars, &mut caller);
                if let Some((no_agent, max_wait)) = exits {
                    caller.flow_exits = FlowExits { no_agent, max_wait };
                    self.queued_flows.insert(leg, call);
                }
                self.hand_to_queue(leg, q, caller);
            }
            Target::Transfer { number } => {
                let (dialplan, context) = (
                    self.cfg.transfer_dialplan.clone(),
                    self.cfg.transfer_context.clone(),
                );
                self.api_on_leg(
                    leg,
                    format!("uuid_transfer {leg} {number} {dialplan} {context}"),
                );
            }
            Target::PlayHangup { prompt } => {
                self.execute(leg, "playback", prompt, None);
                self.execute(leg, "hangup", "NORMAL_CLEARING".into(), None);
            }
            Target::Agent { agent, vars } => {
                // A direct call waits for its agent alone in the agent's first queue (its
                // music, announcements and limits), as a caller to an extension would.
                let found = self
                    .inbound
                    .as_ref()
                    .and_then(|p| p.agents.get(&agent).copied())
                    .and_then(|a| {
                        let info = self.engine.agent_info(a)?;
                        let first = info
                            .memberships
                            .iter()
                            .min_by_key(|m| (m.level, m.position))?;
                        Some((a, first.queue))
                    });
                let Some((a, q)) = found else {
                    warn!(%leg, agent, "the flow routes to an agent switchyard does not know, or one in no queue; the caller is hung up");
                    self.execute(leg, "hangup", self.cfg.unrouted_cause.clone(), None);
                    return;
                };
                self.apply_vars(leg, &vars, &mut caller);
                caller.agent = Some(a);
                self.hand_to_queue(leg, q, caller);
            }
            Target::Voicemail { mailbox, .. } => match self.mailbox_of(&mailbox) {
                Some(mailbox) => self.start_voicemail(leg, mailbox, caller.number),
                None => {
                    warn!(%leg, ?mailbox, "the flow names a voicemail box switchyard does not know; the caller is hung up");
                    self.execute(leg, "hangup", self.cfg.unrouted_cause.clone(), None);
                }
            },
        }
    }

    /// The priority and skills a flow set, onto what the caller brings.
    fn apply_vars(&self, leg: LegId, vars: &dp::Vars, caller: &mut CallerInfo) {
        if let Some(p) = vars.priority {
            caller.priority = i32::try_from(p).unwrap_or(i32::MAX);
        }
        let skills = self.inbound.as_ref().map(|p| &p.skills);
        for (name, level) in &vars.skills {
            let id = skills
                .and_then(|s| s.get(name).copied())
                .or_else(|| name.parse::<u32>().ok().map(SkillId));
            match id {
                Some(id) if !caller.skills.iter().any(|(s, _)| *s == id) => {
                    caller.skills.push((id, *level))
                }
                Some(_) => {}
                None => {
                    warn!(%leg, skill = name, "the flow sets a skill switchyard does not know")
                }
            }
        }
    }

    /// The caller enters its queue as any caller does at arrival.
    fn hand_to_queue(&mut self, leg: LegId, queue: crate::ids::QueueId, caller: CallerInfo) {
        if self.caller_queues.len() < super::MAX_CALLER_QUEUES {
            self.caller_queues.insert(leg, queue);
        }
        if let Err(e) = self.feed(Input::Switch(
            self.now,
            SwitchEvent::CallArrived { leg, queue, caller },
        )) {
            warn!(%leg, error = %e, "the core refused a caller from its flow");
        }
        if self.engine.owns_leg(leg) {
            let node = self.leg_node(leg);
            self.stamp_caller(node, leg);
        }
    }
}

/// Where a flow sent a caller, for its journey's record.
fn routed_to(target: &Target) -> String {
    match target {
        Target::Queue { queue, .. } => format!("queue:{queue}"),
        Target::Agent { agent, .. } => format!("agent:{agent}"),
        Target::Voicemail {
            mailbox: dp::VoicemailBox::Queue(q),
            ..
        } => format!("voicemail:queue:{q}"),
        Target::Voicemail {
            mailbox: dp::VoicemailBox::Agent(a),
            ..
        } => format!("voicemail:agent:{a}"),
        Target::Transfer { number } => format!("transfer:{number}"),
        Target::PlayHangup { .. } => "play_hangup".to_owned(),
    }
}
