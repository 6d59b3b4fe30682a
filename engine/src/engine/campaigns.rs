//! Campaigns inside the engine: operator verbs, the pacing step, and each dial's life from
//! originate to attempt record. The drawing is in [`crate::dialer`]; what is kept per campaign
//! is in [`crate::dialer::campaign`].
//!
//! A person who answers becomes an ordinary [`Call`] in the campaign's queue, with top
//! priority and a `ConnectDeadline` timer; offers, bridging, wrap-up and statistics are the
//! inbound machinery's. Preview dials are callbacks the other way round: the agent is rung
//! with the contact first and the customer is dialled when the agent answers (or, for a
//! desktop preview, the agent is reserved and shown the contact, and rung when it accepts:
//! see `offers.rs`).

use std::time::Duration;

use crate::agent::Activity;
use crate::call::{Call, CallTimers, CampaignCall, Phase};
use crate::dialer::campaign::{Campaign, Line, LinePhase, RecentCall, TICK};
use crate::dialer::connect::Pacing;
use crate::dialer::contacts::{Contact, Refused};
use crate::dialer::ledger::LedgerEntry;
use crate::dialer::pacing::{AgentView, LineView};
use crate::dialer::{
    AttemptOutcome, AttemptRecord, AttemptStart, CampaignConfig, CampaignControl, CampaignState,
    CampaignStats, ContactNext, ContactSpec, DialMode, DispositionRecord, LedgerDay, MachineAction,
    window,
};
use crate::error::EngineError;
use crate::ids::{AgentId, CallId, CampaignId, ContactId};
use crate::io::{
    AmdResult, CallOutcome, CallerInfo, HangupCause, LegId, LegKind, LiveEvent, Presence, Record,
    SwitchCommand,
};
use crate::stats::ExitReason;
use crate::timers::TimerKey;

use super::{Engine, LegRole};

/// Priority of a person on a campaign dial: above any inbound caller, because they hear the
/// abandon message two seconds after answering.
pub const CAMPAIGN_PRIORITY: i32 = 1_000_000;

/// Campaign live updates are sent at most this often (each carries the whole counters).
const NOTIFY_EVERY: Duration = Duration::from_secs(1);

impl Engine {
    // ----- operator verbs -----

    pub(crate) fn upsert_campaign(&mut self, cfg: CampaignConfig) -> Result<(), EngineError> {
        if cfg.id.0 > self.cfg.max_id {
            return Err(EngineError::IdTooLarge {
                id: cfg.id.0,
                max: self.cfg.max_id,
            });
        }
        cfg.validate()
            .map_err(|(field, message)| EngineError::InvalidConfig { field, message })?;
        let zone = window::zone(&cfg.ledger_zone).ok_or_else(|| EngineError::InvalidConfig {
            field: "ledger_zone",
            message: format!("unknown time zone {:?}", cfg.ledger_zone),
        })?;
        // Its persons join this queue: one the engine does not run (never loaded, or refused
        // at start) would take them nowhere.
        if self.queue(cfg.queue).is_none() {
            return Err(EngineError::InvalidConfig {
                field: "queue",
                message: format!("queue {} is not running", cfg.queue.0),
            });
        }
        match self.campaigns.get_mut(&cfg.id) {
            Some(c) => {
                c.ledger.set_zone(zone);
                c.cfg = cfg;
                c.dirty = true;
            }
            None => {
                self.campaigns.insert(cfg.id, Campaign::new(cfg, zone));
            }
        }
        Ok(())
    }

    pub(crate) fn remove_campaign(&mut self, id: CampaignId) -> Result<(), EngineError> {
        if !self.campaigns.contains_key(&id) {
            return Err(EngineError::UnknownCampaign(id));
        }
        self.withdraw_previews(id);
        let Some(mut c) = self.campaigns.remove(&id) else {
            return Err(EngineError::UnknownCampaign(id));
        };
        if let Some(at) = c.tick.take() {
            self.timers.cancel(at, TimerKey::DialerTick(id));
        }
        // Lines still ringing are hung up; persons already waiting keep their place (their
        // calls finish without the campaign).
        let now_ms = self.unix_ms(self.now);
        let lines: Vec<(LegId, Line)> = c.lines.drain().collect();
        for (leg, line) in lines {
            if let LinePhase::Waiting(_) = line.phase {
                continue;
            }
            if let LinePhase::Detecting(at) = line.phase {
                self.timers.cancel(at, TimerKey::AmdTimeout(leg));
            }
            self.legs.remove(&leg);
            self.switch(SwitchCommand::Hangup {
                leg,
                cause: "ORIGINATOR_CANCEL",
            });
            let rec = AttemptRecord {
                campaign: id,
                contact: line.contact,
                leg,
                attempt: line.attempt,
                outcome: AttemptOutcome::Cancelled,
                call: None,
                agent: None,
                dialed_unix_ms: self.unix_ms(line.dialed),
                answered_unix_ms: line.answered.map(|t| self.unix_ms(t)),
                ended_unix_ms: now_ms,
                next: ContactNext::Retry { at_unix_ms: now_ms },
                machine: false,
            };
            self.persist(Record::Attempt(rec));
        }
        Ok(())
    }

    pub(crate) fn control_campaign(
        &mut self,
        id: CampaignId,
        control: CampaignControl,
    ) -> Result<(), EngineError> {
        let now = self.now;
        let c = self
            .campaigns
            .get_mut(&id)
            .ok_or(EngineError::UnknownCampaign(id))?;
        let next = c.state.apply(control).ok_or(EngineError::CampaignState {
            campaign: id,
            control: match control {
                CampaignControl::Start => "start",
                CampaignControl::Pause => "pause",
                CampaignControl::Resume => "resume",
                CampaignControl::Stop => "stop",
            },
            state: c.state.name(),
        })?;
        c.state = next;
        let running = next == CampaignState::Running;
        if running && c.tick.is_none() {
            let at = now + TICK;
            c.tick = Some(at);
            c.dirty = true;
            self.timers.arm(at, TimerKey::DialerTick(id));
        } else if !running && let Some(at) = c.tick.take() {
            self.timers.cancel(at, TimerKey::DialerTick(id));
        }
        if !running {
            self.withdraw_previews(id);
        }
        self.persist(Record::CampaignState {
            campaign: id,
            state: next,
        });
        self.notify_campaign(id);
        Ok(())
    }

    /// Previews not yet accepted by an agent are taken back (pause, stop, removal): their
    /// contacts are due again at once, so a resumed campaign offers them first.
    fn withdraw_previews(&mut self, id: CampaignId) {
        let mut pending: Vec<(CallId, bool)> = self
            .calls
            .values()
            .filter(|call| {
                call.campaign
                    .as_ref()
                    .is_some_and(|i| i.campaign == id && i.preview)
                    && matches!(call.phase, Phase::Waiting | Phase::Offering)
            })
            .map(|call| (call.id, call.phase == Phase::Waiting))
            .collect();
        pending.sort_unstable();
        for (call, in_line) in pending {
            self.stop_offering(call);
            if in_line {
                self.leave_line(call);
            }
            self.end_call(call, CallOutcome::Dropped, false);
        }
    }

    pub(crate) fn add_contacts(
        &mut self,
        id: CampaignId,
        contacts: Vec<ContactSpec>,
    ) -> Result<(), EngineError> {
        let c = self
            .campaigns
            .get_mut(&id)
            .ok_or(EngineError::UnknownCampaign(id))?;
        let mut bad_zone = None;
        for spec in contacts {
            match c.contacts.add(
                spec.id,
                spec.number,
                &spec.zone,
                spec.attempts,
                spec.not_before_unix_ms,
            ) {
                Ok(()) | Err(Refused::Blocked) => {}
                Err(Refused::UnknownZone(z)) => {
                    bad_zone.get_or_insert((spec.id, z));
                }
            }
        }
        c.dirty = true;
        match bad_zone {
            None => Ok(()),
            Some((contact, zone)) => Err(EngineError::InvalidConfig {
                field: "zone",
                message: format!("{contact}: unknown time zone {zone:?} (the others were added)"),
            }),
        }
    }

    pub(crate) fn block_numbers(
        &mut self,
        id: CampaignId,
        numbers: Vec<String>,
    ) -> Result<(), EngineError> {
        let c = self
            .campaigns
            .get_mut(&id)
            .ok_or(EngineError::UnknownCampaign(id))?;
        c.contacts.block(numbers);
        c.notify_owed = true;
        Ok(())
    }

    pub(crate) fn seed_ledger(
        &mut self,
        id: CampaignId,
        days: &[LedgerDay],
    ) -> Result<(), EngineError> {
        let c = self
            .campaigns
            .get_mut(&id)
            .ok_or(EngineError::UnknownCampaign(id))?;
        c.ledger.seed(days);
        Ok(())
    }

    pub(crate) fn disposition(
        &mut self,
        call: CallId,
        code: String,
        retry_at_unix_ms: Option<u64>,
    ) -> Result<(), EngineError> {
        let found = match self.calls.get(&call) {
            Some(Call {
                campaign: Some(info),
                phase,
                leg,
                ..
            }) => Some(RecentCall {
                leg: *leg,
                campaign: info.campaign,
                contact: info.contact,
                number: info.number.clone(),
                zone: info.zone.clone(),
                attempt: info.attempt,
                agent: match phase {
                    Phase::Talking { agent, .. }
                    | Phase::Connecting { agent, .. }
                    | Phase::CallingBack { agent, .. } => Some(*agent),
                    _ => None,
                },
            }),
            _ => self.recent_campaign_calls.get(call).cloned(),
        };
        let Some(info) = found else {
            return Err(EngineError::UnknownCall(call));
        };
        if code.trim().is_empty() || code.len() > 64 {
            return Err(EngineError::InvalidConfig {
                field: "code",
                message: "a disposition code is 1 to 64 characters".into(),
            });
        }
        let at_unix_ms = self.unix_ms(self.now);
        if let Some(at) = retry_at_unix_ms
            && let Some(c) = self.campaigns.get_mut(&info.campaign)
            && !c.contacts.is_blocked(&info.number)
            && c.contacts.get(info.contact).is_none()
        {
            // An agent's "call back then" overrides the retry rules (and a finished contact).
            let _ = c.contacts.add(
                info.contact,
                info.number.clone(),
                &info.zone,
                info.attempt,
                at,
            );
            c.dirty = true;
        }
        self.persist(Record::Disposition(DispositionRecord {
            campaign: info.campaign,
            contact: info.contact,
            call,
            agent: info.agent,
            code,
            at_unix_ms,
            retry_at_unix_ms,
        }));
        Ok(())
    }

    // ----- pacing -----

    pub(crate) fn on_dialer_tick(&mut self, id: CampaignId) {
        let now = self.now;
        let Some(c) = self.campaigns.get_mut(&id) else {
            return;
        };
        c.tick = None;
        if c.state != CampaignState::Running {
            return;
        }
        let at = now + TICK;
        c.tick = Some(at);
        c.dirty = true;
        self.timers.arm(at, TimerKey::DialerTick(id));
    }

    /// Matching, then pacing for campaigns that may dial, then matching again for what
    /// pacing created (preview calls).
    pub(crate) fn settle(&mut self) {
        self.dispatch();
        if self.campaigns.is_empty() {
            return;
        }
        if self.switch_down {
            // Paced again (still dirty) once a node is back.
            self.flush_campaign_notices();
            self.save_pacers();
            return;
        }
        let dirty: Vec<CampaignId> = self
            .campaigns
            .values()
            .filter(|c| c.dirty && c.state == CampaignState::Running)
            .map(Campaign::id)
            .collect();
        let mut created = false;
        for id in dirty {
            created |= self.pace(id);
        }
        if created {
            self.dispatch();
        }
        self.flush_campaign_notices();
        self.save_pacers();
    }

    /// A snapshot of every pacer that learned something since its last one, for the store
    /// ([`Record::PacerState`]): a restart restores what the pacer knew at its last record.
    fn save_pacers(&mut self) {
        if !self.cfg.persist_pacers {
            return;
        }
        let mut due: Vec<CampaignId> = self
            .campaigns
            .values()
            .filter(|c| c.pacer.lessons() != c.pacer_saved)
            .map(Campaign::id)
            .collect();
        due.sort_unstable();
        for id in due {
            let Some(c) = self.campaigns.get_mut(&id) else {
                continue;
            };
            c.pacer_saved = c.pacer.lessons();
            let pacer = Box::new(c.pacer.snapshot());
            self.persist(Record::PacerState {
                campaign: id,
                pacer,
            });
        }
    }

    /// Puts back what a campaign's pacer had learned before a restart. A snapshot this version
    /// cannot take is refused (the pacer keeps its prior).
    pub(crate) fn seed_pacer(
        &mut self,
        id: CampaignId,
        snapshot: &crate::dialer::pacing::PacerSnapshot,
    ) -> Result<(), EngineError> {
        let c = self
            .campaigns
            .get_mut(&id)
            .ok_or(EngineError::UnknownCampaign(id))?;
        let pacer = crate::dialer::pacing::Pacer::restore(snapshot).map_err(|message| {
            EngineError::InvalidConfig {
                field: "pacer",
                message,
            }
        })?;
        c.pacer = pacer;
        c.pacer_saved = c.pacer.lessons();
        Ok(())
    }

    /// An agent's state changed: campaigns drawing on its queues may dial.
    pub(crate) fn touch_campaigns_of(&mut self, agent: AgentId) {
        let Some(a) = self.agent(agent) else { return };
        let queues: Vec<_> = a.memberships.iter().map(|m| m.queue).collect();
        for c in self.campaigns.values_mut() {
            if queues.contains(&c.cfg.queue) {
                c.dirty = true;
            }
        }
    }

    /// How the queue's agents look to pacing; `reserve` ready agents are held back.
    fn agent_views(&self, c: &Campaign) -> (Vec<AgentView>, usize) {
        let now = self.now;
        let Some(queue) = self.queue(c.cfg.queue) else {
            return (Vec::new(), 0);
        };
        let queue_wrap = queue.cfg.wrapup;
        let mut reserve = c.cfg.agent_reserve;
        let mut free = 0;
        let mut views = Vec::with_capacity(queue.members.len());
        for &id in &queue.members {
            let Some(a) = self.agent(id) else { continue };
            let available = a.presence == Presence::Available;
            let wrap = a.cfg.wrapup.unwrap_or(queue_wrap);
            let view = match a.activity {
                Activity::Idle if a.is_ready(now) => {
                    if reserve > 0 {
                        reserve -= 1;
                        AgentView::Away
                    } else {
                        free += 1;
                        AgentView::Free
                    }
                }
                Activity::Idle => match a.not_before {
                    Some(t) if available && t > now => AgentView::FreeIn(t - now),
                    _ => AgentView::Away,
                },
                Activity::Reserved(_) => AgentView::Talking {
                    elapsed: Duration::ZERO,
                    wrap,
                },
                Activity::OnCall(call, _) => {
                    let since = match self.calls.get(&call).map(|c| c.phase) {
                        Some(Phase::Talking { since, .. }) => since,
                        _ => now,
                    };
                    AgentView::Talking {
                        elapsed: now.saturating_duration_since(since),
                        wrap,
                    }
                }
                Activity::WrapUp(until) if available => {
                    AgentView::FreeIn(until.saturating_duration_since(now))
                }
                Activity::WrapUp(_) => AgentView::Away,
            };
            views.push(view);
        }
        (views, free)
    }

    /// Decides how many lines to dial now and dials them. True when preview calls were
    /// created (they need matching).
    fn pace(&mut self, id: CampaignId) -> bool {
        let now = self.now;
        let now_ms = self.unix_ms(now);
        let Some(c) = self.campaigns.get_mut(&id) else {
            return false;
        };
        c.dirty = false;
        if c.cfg.start_unix_ms.is_some_and(|s| now_ms < s) {
            return false;
        }
        if c.cfg.end_unix_ms.is_some_and(|e| now_ms >= e) {
            c.state = CampaignState::Completed;
            if let Some(at) = c.tick.take() {
                self.timers.cancel(at, TimerKey::DialerTick(id));
            }
            self.persist(Record::CampaignState {
                campaign: id,
                state: CampaignState::Completed,
            });
            self.notify_campaign(id);
            return false;
        }
        let Some(c) = self.campaigns.get(&id) else {
            return false;
        };
        if !c.contacts.any_due(now_ms) {
            return false;
        }
        let (views, free) = self.agent_views(c);
        // Who is in the queue's line (not yet offered: calls being offered already hold an
        // agent, who is not counted as free): this campaign's persons and previews, and
        // everybody else (inbound callers of a blended queue, who take free agents first).
        let (mut ours_in_line, mut others) = (0usize, 0usize);
        if let Some(q) = self.queue(c.cfg.queue) {
            for k in &q.waiting {
                match self
                    .calls
                    .get(&k.call)
                    .and_then(|call| call.campaign.as_ref())
                {
                    Some(info) if info.campaign == id => ours_in_line += 1,
                    _ => others += 1,
                }
            }
        }
        let ringing = c
            .lines
            .values()
            .filter(|l| !matches!(l.phase, LinePhase::Waiting(_)))
            .count();
        let in_flight = c.lines.len() + c.previews as usize;
        let mut capacity = (c.cfg.max_lines as usize).saturating_sub(in_flight);
        let agent_first = c.cfg.mode == DialMode::Progressive && {
            // The legal ledger brakes progressive too: a day at the target rings agents
            // first, so no further person can be abandoned today.
            let (persons, abandoned) = c.ledger.day_counts(now_ms);
            let over =
                abandoned > 0 && (abandoned as f64) >= c.cfg.abandon_target * (persons as f64);
            let (connect, setting) = (c.cfg.connect_within, c.cfg.progressive_dial);
            let Some(c) = self.campaigns.get_mut(&id) else {
                return false;
            };
            let (pacing, changed) = c.connect.decide(setting, connect, over);
            if changed {
                c.notify_owed = true;
                self.notify(LiveEvent::CampaignPacing {
                    campaign: id,
                    pacing: pacing.name(),
                    brake: pacing.brake(),
                });
            }
            matches!(pacing, Pacing::AgentFirst(_))
        };
        let Some(c) = self.campaigns.get(&id) else {
            return false;
        };
        let wanted = match c.cfg.mode {
            DialMode::Preview => free.saturating_sub(ours_in_line + others),
            DialMode::Progressive => free.saturating_sub(ringing + ours_in_line + others),
            DialMode::Predictive => {
                // Each line as pacing sees it, with its leg when it could be released.
                let release_after = c.cfg.release_after.unwrap_or(Duration::MAX);
                let mut seen: Vec<(Option<LegId>, LineView)> = c
                    .lines
                    .iter()
                    .filter_map(|(leg, l)| match l.phase {
                        LinePhase::Ringing => {
                            let elapsed = now.saturating_duration_since(l.dialed);
                            let releasable = (elapsed >= release_after).then_some(*leg);
                            Some((releasable, LineView::Ringing { elapsed }))
                        }
                        LinePhase::Detecting(until) => Some((
                            None,
                            LineView::Detecting {
                                person: c.pacer.person_given_answer(),
                                within: until.saturating_duration_since(now),
                            },
                        )),
                        // A person whose agent is already ringing needs no one else.
                        LinePhase::Waiting(call) => match self.calls.get(&call).map(|c| c.phase) {
                            Some(Phase::Waiting) | None => Some((None, LineView::Waiting)),
                            Some(_) => None,
                        },
                    })
                    .collect();
                seen.extend(std::iter::repeat_n((None, LineView::Waiting), others));
                let horizon = c.cfg.ring_timeout
                    + if c.cfg.amd.enabled {
                        c.cfg.amd.timeout
                    } else {
                        Duration::ZERO
                    };
                let connect = c.cfg.connect_within;
                let lines: Vec<LineView> = seen.iter().map(|(_, v)| *v).collect();
                let candidates: Vec<(usize, Duration)> = seen
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (leg, v))| match (leg, v) {
                        (Some(_), LineView::Ringing { elapsed }) => Some((i, *elapsed)),
                        _ => None,
                    })
                    .collect();
                let elapsed: Vec<Duration> = candidates.iter().map(|(_, e)| *e).collect();
                let cap = u32::try_from(capacity).unwrap_or(u32::MAX);
                let Some(c) = self.campaigns.get_mut(&id) else {
                    return false;
                };
                let (verdicts, n) = c
                    .pacer
                    .plan_releasing(&views, &lines, connect, horizon, cap, &elapsed);
                for ((i, _), release) in candidates.iter().zip(verdicts) {
                    if release && let Some(leg) = seen[*i].0 {
                        self.release_line(id, leg);
                        capacity += 1;
                    }
                }
                n as usize
            }
        };
        let n = wanted.min(capacity);
        let mut created = false;
        for _ in 0..n {
            let Some(c) = self.campaigns.get_mut(&id) else {
                break;
            };
            let window = c.cfg.window;
            let Some(contact) = c.contacts.next_dialable(now_ms, window) else {
                break;
            };
            if c.cfg.mode == DialMode::Preview || agent_first {
                self.create_preview(id, contact);
                created = true;
            } else {
                self.dial(id, contact);
            }
        }
        created
    }

    /// The originate of a campaign dial to `number`: a predictive or progressive line
    /// (`call` None: detection runs when the campaign wants it), or a preview's customer once
    /// the agent accepted (`call` Some). `None` when the campaign is gone.
    fn campaign_originate(
        &mut self,
        id: CampaignId,
        leg: LegId,
        contact: ContactId,
        attempt: u32,
        number: &str,
        call: Option<CallId>,
    ) -> Option<SwitchCommand> {
        let cfg = &self.campaigns.get(&id)?.cfg;
        let mut vars = vec![
            ("switchyard_campaign".to_owned(), id.0.to_string()),
            ("switchyard_contact".to_owned(), contact.0.to_string()),
            ("switchyard_attempt".to_owned(), attempt.to_string()),
        ];
        match call {
            Some(call) => vars.push(("switchyard_call".into(), call.0.to_string())),
            // mod_amd runs once the far end answers and sets `amd_result`.
            None if cfg.amd.enabled => vars.push(("execute_on_answer".into(), "amd".into())),
            None => {}
        }
        Some(SwitchCommand::Originate {
            kind: LegKind::Campaign,
            leg,
            dial: cfg.dial.replace("{number}", number),
            caller_id_number: cfg.caller_id_number.clone(),
            caller_id_name: cfg.caller_id_name.clone(),
            timeout: cfg.ring_timeout,
            vars,
            join: None,
        })
    }

    /// Places one predictive or progressive dial.
    fn dial(&mut self, id: CampaignId, contact: Contact) {
        let now = self.now;
        let leg = self.new_leg();
        let attempt = contact.attempts.saturating_add(1);
        let Some(originate) =
            self.campaign_originate(id, leg, contact.id, attempt, &contact.number, None)
        else {
            return;
        };
        let Some(c) = self.campaigns.get_mut(&id) else {
            return;
        };
        c.lines.insert(
            leg,
            Line {
                contact: contact.id,
                number: contact.number,
                zone: contact.zone_name,
                attempt,
                dialed: now,
                answered: None,
                phase: LinePhase::Ringing,
            },
        );
        c.counters.dialed += 1;
        c.notify_owed = true;
        self.legs.insert(leg, LegRole::Dial(id));
        let dialed_unix_ms = self.unix_ms(now);
        self.persist(Record::AttemptStarted(AttemptStart {
            campaign: id,
            contact: contact.id,
            leg,
            attempt,
            dialed_unix_ms,
        }));
        self.switch(originate);
    }

    /// A preview: a call without a customer leg, offered to an agent with the contact; the
    /// customer is dialled when the agent answers (the callback path).
    fn create_preview(&mut self, id: CampaignId, contact: Contact) {
        let Some(c) = self.campaigns.get_mut(&id) else {
            return;
        };
        c.previews += 1;
        c.counters.dialed += 1;
        c.notify_owed = true;
        let q = c.cfg.queue;
        let now = self.now;
        let call_id = CallId(self.next_call);
        self.next_call = self.next_call.wrapping_add(1).max(1);
        let leg = self.new_leg();
        let call = Call {
            id: call_id,
            leg,
            origin_leg: leg,
            caller_present: false,
            caller: CallerInfo {
                number: contact.number.clone(),
                name: String::new(),
                priority: 0,
                skills: Vec::new(),
                first_arrived_unix_ms: None,
                flow_exits: Default::default(),
                agent: None,
            },
            arrived: now,
            wait_origin: now,
            priority: 0,
            queue: q,
            queue_entered: now,
            queues: Vec::new(),
            phase: Phase::Waiting,
            offers: Vec::new(),
            tried: Vec::new(),
            offers_made: 0,
            step: 0,
            max_level: u32::MAX,
            relax: 0,
            callback: true,
            callback_failures: 0,
            callback_held: None,
            recording: None,
            record_draw: crate::recording::draw(leg),
            timers: CallTimers::default(),
            campaign: Some(Box::new(CampaignCall {
                campaign: id,
                contact: contact.id,
                attempt: contact.attempts.saturating_add(1),
                number: contact.number,
                zone: contact.zone_name,
                dialed: now,
                answered: None,
                preview: true,
                machine: false,
                connected: false,
                abandoned: false,
                overdue: false,
                deadline: None,
                cause: None,
            })),
        };
        self.calls.insert(call_id, call);
        self.join_queue(call_id, q);
        // A preview waits for an agent however long it takes (like a callback).
        let escalate = self.calls.get(&call_id).and_then(|c| c.timers.escalate);
        self.set_call_timers(
            call_id,
            CallTimers {
                escalate,
                ..CallTimers::default()
            },
        );
    }

    /// The originate for a preview's customer, the campaign's way (`None` for other calls).
    pub(crate) fn preview_originate(&mut self, call: CallId, leg: LegId) -> Option<SwitchCommand> {
        let info = self.calls.get(&call)?.campaign.as_ref()?;
        let (campaign, contact, attempt) = (info.campaign, info.contact, info.attempt);
        let number = info.number.clone();
        let cmd = self.campaign_originate(campaign, leg, contact, attempt, &number, Some(call))?;
        let dialed_unix_ms = self.unix_ms(self.now);
        self.persist(Record::AttemptStarted(AttemptStart {
            campaign,
            contact,
            leg,
            attempt,
            dialed_unix_ms,
        }));
        Some(cmd)
    }

    // ----- a dial's life -----

    pub(crate) fn dial_age(&self, id: CampaignId, leg: LegId) -> Option<Duration> {
        let line = self.campaigns.get(&id)?.lines.get(&leg)?;
        Some(self.now.saturating_duration_since(line.dialed))
    }

    pub(crate) fn on_dial_answered(&mut self, id: CampaignId, leg: LegId) {
        let now = self.now;
        let Some(c) = self.campaigns.get_mut(&id) else {
            return;
        };
        let amd = c.cfg.amd.enabled;
        let timeout = c.cfg.amd.timeout;
        let Some(line) = c.lines.get_mut(&leg) else {
            return;
        };
        if line.phase != LinePhase::Ringing {
            return;
        }
        line.answered = Some(now);
        if amd {
            let until = now + timeout;
            line.phase = LinePhase::Detecting(until);
            self.timers.arm(until, TimerKey::AmdTimeout(leg));
        } else {
            self.person_ready(id, leg, false);
        }
    }

    pub(crate) fn on_machine_detection(&mut self, leg: LegId, result: AmdResult) {
        let Some(LegRole::Dial(id)) = self.legs.get(&leg).copied() else {
            return;
        };
        let Some(c) = self.campaigns.get_mut(&id) else {
            return;
        };
        let Some(line) = c.lines.get(&leg) else {
            return;
        };
        let LinePhase::Detecting(until) = line.phase else {
            return;
        };
        self.timers.cancel(until, TimerKey::AmdTimeout(leg));
        c.pacer.learn_answered(result != AmdResult::Machine);
        match result {
            // Unsure is a person: the safe side of the abandon rule.
            AmdResult::Human | AmdResult::Unsure => self.person_ready(id, leg, false),
            AmdResult::Machine => {
                let action = c.cfg.amd.on_machine.clone();
                match action {
                    MachineAction::ToAgent => self.person_ready(id, leg, true),
                    MachineAction::Drop => {
                        self.switch(SwitchCommand::Hangup {
                            leg,
                            cause: "NORMAL_CLEARING",
                        });
                        self.machine_done(id, leg);
                    }
                    MachineAction::LeaveMessage(path) => {
                        self.switch(SwitchCommand::PlayThenHangup { leg, path });
                        self.machine_done(id, leg);
                    }
                }
            }
        }
    }

    fn machine_done(&mut self, id: CampaignId, leg: LegId) {
        self.legs.remove(&leg);
        let now = self.now;
        let Some(c) = self.campaigns.get_mut(&id) else {
            return;
        };
        let Some(line) = c.lines.remove(&leg) else {
            return;
        };
        c.pacer
            .learn_dial(now.saturating_duration_since(line.dialed), false);
        self.finish_attempt(id, leg, &line, AttemptOutcome::Machine, None, None, true);
    }

    pub(crate) fn on_amd_timeout(&mut self, leg: LegId) {
        let Some(LegRole::Dial(id)) = self.legs.get(&leg).copied() else {
            return;
        };
        let detecting = self
            .campaigns
            .get(&id)
            .and_then(|c| c.lines.get(&leg))
            .is_some_and(|l| matches!(l.phase, LinePhase::Detecting(_)));
        if detecting {
            if let Some(c) = self.campaigns.get_mut(&id) {
                c.pacer.learn_answered(true);
            }
            self.person_ready(id, leg, false);
        }
    }

    /// A person (or a machine sent to an agent) is on the line: it becomes a call in the
    /// campaign's queue with the connect deadline running.
    fn person_ready(&mut self, id: CampaignId, leg: LegId, machine: bool) {
        let now = self.now;
        let Some(c) = self.campaigns.get_mut(&id) else {
            return;
        };
        let connect = c.cfg.connect_within;
        let q = c.cfg.queue;
        let Some(line) = c.lines.get_mut(&leg) else {
            return;
        };
        let elapsed = now.saturating_duration_since(line.dialed);
        let call_id = CallId(self.next_call);
        self.next_call = self.next_call.wrapping_add(1).max(1);
        line.phase = LinePhase::Waiting(call_id);
        let shown = (line.contact, line.number.clone());
        let deadline = now + connect;
        let info = CampaignCall {
            campaign: id,
            contact: line.contact,
            attempt: line.attempt,
            number: line.number.clone(),
            zone: line.zone.clone(),
            dialed: line.dialed,
            answered: line.answered,
            preview: false,
            machine,
            connected: false,
            abandoned: false,
            overdue: false,
            deadline: Some(deadline),
            cause: None,
        };
        let number = line.number.clone();
        c.pacer.learn_dial(elapsed, !machine);
        let call = Call {
            id: call_id,
            leg,
            origin_leg: leg,
            caller_present: true,
            caller: CallerInfo {
                number,
                name: String::new(),
                priority: CAMPAIGN_PRIORITY,
                skills: Vec::new(),
                first_arrived_unix_ms: None,
                flow_exits: Default::default(),
                agent: None,
            },
            arrived: now,
            wait_origin: now,
            priority: CAMPAIGN_PRIORITY,
            queue: q,
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
            recording: None,
            record_draw: crate::recording::draw(leg),
            timers: CallTimers::default(),
            campaign: Some(Box::new(info)),
        };
        self.calls.insert(call_id, call);
        self.legs.insert(leg, LegRole::Caller(call_id));
        self.timers
            .arm(deadline, TimerKey::ConnectDeadline(call_id));
        self.join_queue(call_id, q);
        // Whom the agent will be talking to (its screen shows the contact).
        self.notify(LiveEvent::CampaignCall {
            call: call_id,
            campaign: id,
            contact: shown.0,
            number: shown.1,
        });
    }

    /// An agent answered an offer of a campaign call `lag` after it was made: progressive
    /// learns whether its agents are fast enough to dial customers first.
    pub(crate) fn campaign_agent_answered(&mut self, call: CallId, lag: Duration) {
        let Some(id) = self
            .calls
            .get(&call)
            .and_then(|c| c.campaign.as_ref())
            .map(|i| i.campaign)
        else {
            return;
        };
        if let Some(c) = self.campaigns.get_mut(&id) {
            c.connect.learn(lag);
        }
    }

    /// An agent was bridged to a campaign call (or a preview's customer answered).
    /// A campaign call was bridged to its agent; `agent_lag` is how long the agent took to
    /// answer the offer (none for calls whose agent was rung first).
    pub(crate) fn campaign_connected(&mut self, call: CallId, agent_lag: Option<Duration>) {
        let now = self.now;
        let now_ms = self.unix_ms(now);
        let Some(Call {
            campaign: Some(info),
            origin_leg,
            leg,
            ..
        }) = self.calls.get_mut(&call)
        else {
            return;
        };
        info.connected = true;
        if info.preview {
            info.answered = Some(now);
        }
        let (id, preview, machine, origin_leg, _leg) =
            (info.campaign, info.preview, info.machine, *origin_leg, *leg);
        let answered = info.answered;
        if let Some(at) = info.deadline.take() {
            self.timers.cancel(at, TimerKey::ConnectDeadline(call));
        }
        let entry = LedgerEntry::of(
            AttemptOutcome::Connected,
            machine,
            true,
            answered.map(|t| self.unix_ms(t)),
        );
        let Some(c) = self.campaigns.get_mut(&id) else {
            return;
        };
        if preview {
            c.previews = c.previews.saturating_sub(1);
        } else {
            c.lines.remove(&origin_leg);
        }
        if let Some(lag) = agent_lag {
            c.pacer.learn_agent_lag(lag);
        }
        if let Some(e) = entry {
            c.ledger.record(e);
        }
        if !machine && !preview {
            let goal = c.goal(now_ms);
            c.pacer.learn_outcome(false, goal);
        }
        c.dirty = true;
    }

    /// A person on a campaign dial had no agent within `connect_within`: the abandon message,
    /// then hang up; counted in the ledger.
    pub(crate) fn on_connect_deadline(&mut self, id: CallId) {
        let now = self.now;
        let now_ms = self.unix_ms(now);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(info) = call.campaign.as_mut() else {
            return;
        };
        info.deadline = None;
        let connecting = match call.phase {
            Phase::Connecting {
                agent,
                agent_leg,
                deadline,
                ..
            } => Some((agent, agent_leg, deadline)),
            _ => None,
        };
        if info.connected
            || (connecting.is_none() && !matches!(call.phase, Phase::Waiting | Phase::Offering))
        {
            return;
        }
        // An agent answered and the bridge is in flight: FreeSWITCH may be joining the legs
        // this instant (a join on answer cannot be called back), and hanging up both sides
        // now would tear a bridge down as it is made. The bridge gets its allowance once; the
        // person is connected if it comes, abandoned if not. The 2 s count from the person's
        // CHANNEL_ANSWER is already stricter than the rule's "completed greeting" by the time
        // the person takes to say hello.
        if connecting.is_some() && !info.overdue {
            info.overdue = true;
            let at = now + crate::dialer::connect::BRIDGE_ALLOWANCE;
            info.deadline = Some(at);
            self.timers.arm(at, TimerKey::ConnectDeadline(id));
            return;
        }
        info.abandoned = true;
        let (campaign, machine) = (info.campaign, info.machine);
        let answered = info.answered;
        let (leg, q, in_line) = (call.leg, call.queue, call.phase == Phase::Waiting);
        let message = self
            .campaigns
            .get(&campaign)
            .map(|c| c.cfg.abandon_message.clone());
        // An agent still ringing (or still being bridged) when the allowance ran out was too
        // slow for customer-first dialling: progressive learns it as such.
        if connecting.is_some() || !in_line {
            let slow = self
                .campaigns
                .get(&campaign)
                .map(|c| c.cfg.connect_within + crate::dialer::connect::BRIDGE_ALLOWANCE);
            if let (Some(lag), Some(c)) = (slow, self.campaigns.get_mut(&campaign)) {
                c.connect.learn(lag);
            }
        }
        if let Some((agent, agent_leg, deadline)) = connecting {
            // An agent answered but FreeSWITCH has not joined the legs within the allowance:
            // the person was not connected in time, whatever the agent's side says.
            self.timers.cancel(deadline, TimerKey::BridgeDeadline(id));
            self.notify(LiveEvent::CallBridgeFailed {
                call: id,
                agent,
                reason: crate::io::BridgeFailure::Timeout,
            });
            self.free_agent_leg(agent, agent_leg, "NORMAL_CLEARING");
            self.finish_agent_call(agent, id, Duration::ZERO, false);
        }
        self.stop_offering(id);
        if in_line {
            self.leave_line(id);
        }
        self.stats.call_exited(now, q, id, ExitReason::Timeout);
        self.forget_caller_leg(id);
        match message {
            Some(path) if !path.is_empty() && !machine => {
                self.switch(SwitchCommand::PlayThenHangup { leg, path });
            }
            _ => self.switch(SwitchCommand::Hangup {
                leg,
                cause: "NORMAL_CLEARING",
            }),
        }
        let entry = LedgerEntry::of(
            AttemptOutcome::Abandoned,
            machine,
            true,
            answered.map(|t| self.unix_ms(t)),
        );
        if let (Some(e), Some(c)) = (entry, self.campaigns.get_mut(&campaign)) {
            c.ledger.record(e);
        }
        if !machine && let Some(c) = self.campaigns.get_mut(&campaign) {
            let goal = c.goal(now_ms);
            c.pacer.learn_outcome(true, goal);
        }
        self.end_call(id, CallOutcome::Abandoned, false);
    }

    /// A campaign call ended (any way): its attempt record, the contact's next try.
    pub(crate) fn campaign_call_ended(
        &mut self,
        call: CallId,
        leg: LegId,
        info: CampaignCall,
        outcome: CallOutcome,
        agent: Option<AgentId>,
        talk: Duration,
    ) {
        let result = if info.connected {
            AttemptOutcome::Connected
        } else if info.abandoned {
            AttemptOutcome::Abandoned
        } else if info.preview {
            match info.cause {
                Some(HangupCause::Busy) => AttemptOutcome::Busy,
                Some(HangupCause::NoAnswer) => AttemptOutcome::NoAnswer,
                Some(HangupCause::Rejected | HangupCause::Failed) => AttemptOutcome::Failed,
                Some(HangupCause::Normal) if outcome == CallOutcome::CallbackFailed => {
                    AttemptOutcome::NoAnswer
                }
                // Ended before the customer was dialled (campaign stopped, queue removed...).
                _ => AttemptOutcome::Cancelled,
            }
        } else if outcome == CallOutcome::Lost {
            AttemptOutcome::Cancelled
        } else if info.machine {
            AttemptOutcome::Machine
        } else {
            AttemptOutcome::HungUp
        };
        // Connected and abandoned persons were counted when that became final; a person who
        // left before the deadline is counted now.
        let entry = (result == AttemptOutcome::HungUp)
            .then(|| {
                LedgerEntry::of(
                    result,
                    info.machine,
                    true,
                    info.answered.map(|t| self.unix_ms(t)),
                )
            })
            .flatten();
        if let Some(c) = self.campaigns.get_mut(&info.campaign) {
            if info.preview && !info.connected {
                c.previews = c.previews.saturating_sub(1);
            }
            if let Some(e) = entry {
                c.ledger.record(e);
            }
            if info.connected && !talk.is_zero() {
                c.pacer.learn_talk(talk);
            }
            c.dirty = true;
        }
        self.recent_campaign_calls.insert(
            call,
            RecentCall {
                leg,
                campaign: info.campaign,
                contact: info.contact,
                number: info.number.clone(),
                zone: info.zone.clone(),
                attempt: info.attempt,
                agent,
            },
        );
        let line = Line {
            contact: info.contact,
            number: info.number,
            zone: info.zone,
            attempt: info.attempt,
            dialed: info.dialed,
            answered: info.answered,
            phase: LinePhase::Waiting(call),
        };
        if let Some(c) = self.campaigns.get_mut(&info.campaign) {
            c.lines.remove(&leg);
        }
        self.finish_attempt(
            info.campaign,
            leg,
            &line,
            result,
            Some(call),
            agent,
            info.machine,
        );
    }

    /// A dial ended before a person was on it (busy, no answer, failure, hung up in
    /// detection, or lost).
    pub(crate) fn on_dial_hangup(&mut self, id: CampaignId, leg: LegId, cause: HangupCause) {
        let now = self.now;
        let Some(c) = self.campaigns.get_mut(&id) else {
            return;
        };
        let Some(line) = c.lines.remove(&leg) else {
            return;
        };
        if let LinePhase::Detecting(at) = line.phase {
            self.timers.cancel(at, TimerKey::AmdTimeout(leg));
        }
        let outcome = match cause {
            HangupCause::Busy => AttemptOutcome::Busy,
            HangupCause::NoAnswer => AttemptOutcome::NoAnswer,
            HangupCause::Rejected | HangupCause::Failed => AttemptOutcome::Failed,
            HangupCause::Lost => AttemptOutcome::Cancelled,
            HangupCause::Normal if line.answered.is_some() => AttemptOutcome::HungUp,
            HangupCause::Normal => AttemptOutcome::NoAnswer,
        };
        if outcome != AttemptOutcome::Cancelled {
            c.pacer
                .learn_dial(now.saturating_duration_since(line.dialed), false);
        }
        self.finish_attempt(id, leg, &line, outcome, None, None, false);
    }

    /// Pacing releases a line that rang the minimum and would bring a person no agent could
    /// take: it is hung up and counts as not answered (retried by the no-answer rule).
    fn release_line(&mut self, id: CampaignId, leg: LegId) {
        let now = self.now;
        let Some(c) = self.campaigns.get_mut(&id) else {
            return;
        };
        let Some(line) = c.lines.remove(&leg) else {
            return;
        };
        c.pacer
            .learn_released(now.saturating_duration_since(line.dialed));
        c.counters.released += 1;
        self.legs.remove(&leg);
        self.switch(SwitchCommand::Hangup {
            leg,
            cause: "ORIGINATOR_CANCEL",
        });
        self.finish_attempt(id, leg, &line, AttemptOutcome::NoAnswer, None, None, false);
    }

    /// Writes the attempt, schedules the contact's next try (or closes it), counts it.
    #[allow(clippy::too_many_arguments)] // the attempt's facts, each from a different place
    fn finish_attempt(
        &mut self,
        id: CampaignId,
        leg: LegId,
        line: &Line,
        outcome: AttemptOutcome,
        call: Option<CallId>,
        agent: Option<AgentId>,
        machine: bool,
    ) {
        let now_ms = self.unix_ms(self.now);
        let dialed_unix_ms = self.unix_ms(line.dialed);
        let answered_unix_ms = line.answered.map(|t| self.unix_ms(t));
        let next = match self.campaigns.get_mut(&id) {
            Some(c) => {
                // A dial we cancelled ourselves costs the contact nothing: same attempt count,
                // same place in line.
                let (attempts, due) = if c.contacts.is_blocked(&line.number) {
                    (line.attempt, None)
                } else if outcome == AttemptOutcome::Cancelled {
                    (line.attempt.saturating_sub(1), Some(dialed_unix_ms))
                } else {
                    (line.attempt, c.next_due(outcome, line.attempt, now_ms))
                };
                c.contacts.attempt_done(line.contact, attempts, due);
                c.counters.count(outcome);
                c.notify_owed = true;
                c.dirty = true;
                due
            }
            // The campaign is gone: the store keeps the contact pending.
            None => Some(now_ms),
        };
        self.persist(Record::Attempt(AttemptRecord {
            campaign: id,
            contact: line.contact,
            leg,
            attempt: line.attempt,
            outcome,
            call,
            agent,
            dialed_unix_ms,
            answered_unix_ms,
            ended_unix_ms: now_ms,
            next: match next {
                Some(at_unix_ms) => ContactNext::Retry { at_unix_ms },
                None => ContactNext::Done,
            },
            machine,
        }));
    }

    // ----- figures -----

    fn notify_campaign(&mut self, id: CampaignId) {
        if let Some(stats) = self.campaign_stats(id) {
            if let Some(c) = self.campaigns.get_mut(&id) {
                c.notified = Some(self.now);
                c.notify_owed = false;
            }
            self.notify(LiveEvent::Campaign(stats));
        }
    }

    fn flush_campaign_notices(&mut self) {
        let now = self.now;
        let due: Vec<CampaignId> = self
            .campaigns
            .values()
            .filter(|c| {
                c.notify_owed
                    && c.notified
                        .is_none_or(|t| now.saturating_duration_since(t) >= NOTIFY_EVERY)
            })
            .map(Campaign::id)
            .collect();
        for id in due {
            self.notify_campaign(id);
        }
    }

    pub fn campaign_state(&self, id: CampaignId) -> Option<CampaignState> {
        self.campaigns.get(&id).map(|c| c.state)
    }

    /// What the campaign's pacer has learned, as a restart would restore it.
    pub fn pacer_snapshot(&self, id: CampaignId) -> Option<crate::dialer::pacing::PacerSnapshot> {
        // A copy: taking the snapshot brings tables up to date, which is the live pacer's
        // own business.
        Some(self.campaigns.get(&id)?.pacer.clone().snapshot())
    }

    /// The queue a campaign's persons wait in.
    pub fn campaign_queue(&self, id: CampaignId) -> Option<crate::ids::QueueId> {
        self.campaigns.get(&id).map(|c| c.cfg.queue)
    }

    pub fn campaign_ids(&self) -> impl Iterator<Item = CampaignId> + '_ {
        self.campaigns.keys().copied()
    }

    /// The figures `GET /v1/campaigns/:id/stats` shows.
    pub fn campaign_stats(&self, id: CampaignId) -> Option<CampaignStats> {
        let c = self.campaigns.get(&id)?;
        let now_ms = self.unix_ms(self.now);
        let (mut staffed, mut busy) = (0u32, 0u32);
        if let Some(q) = self.queue(c.cfg.queue) {
            for &a in &q.members {
                let Some(agent) = self.agent(a) else { continue };
                if !agent.is_logged_in() {
                    continue;
                }
                staffed += 1;
                if agent.activity != Activity::Idle {
                    busy += 1;
                }
            }
        }
        let k = c.counters;
        let pacing = if c.cfg.mode == DialMode::Progressive {
            c.connect.pacing()
        } else {
            Pacing::CustomerFirst
        };
        Some(CampaignStats {
            campaign: id,
            state: c.state,
            dialed: k.dialed,
            connected: k.connected,
            no_answer: k.no_answer,
            busy: k.busy,
            failed: k.failed,
            machine: k.machine,
            abandoned: k.abandoned,
            released: k.released,
            abandon_rate_day: c.ledger.rate_day(now_ms),
            abandon_rate_30d: c.ledger.rate_30d(now_ms),
            contacts_remaining: c.contacts.remaining() as u64,
            lines: u32::try_from(c.lines.len()).unwrap_or(u32::MAX),
            agents_staffed: staffed,
            agents_busy: busy,
            occupancy: if staffed == 0 {
                0.0
            } else {
                f64::from(busy) / f64::from(staffed)
            },
            pacing: pacing.name(),
            brake: pacing.brake(),
        })
    }

    /// The campaign's ledger, for reports (day number, persons, abandoned).
    pub fn campaign_ledger(&self, id: CampaignId) -> Vec<LedgerDay> {
        self.campaigns
            .get(&id)
            .map(|c| c.ledger.days().copied().collect())
            .unwrap_or_default()
    }

    /// Lines in flight now (ringing, in detection, or a person waiting).
    pub fn campaign_lines(&self, id: CampaignId) -> usize {
        self.campaigns.get(&id).map_or(0, |c| c.lines.len())
    }
}
