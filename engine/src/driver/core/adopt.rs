//! A started driver takes over what the switch carries: at each node's first connection it
//! lists the channels (`show channels as json`), asks every channel it cannot explain for
//! the variables switchyard stamps (`switchyard_leg`, `switchyard_agent`, `switchyard_queue`,
//! `switchyard_arrived`), and once every node is listed hands the engine a [`Recovery`]:
//! conversations in progress (two channels sharing a `call_uuid`, one of them an agent's leg
//! of ours), the calls the store held open whose caller leg is gone, and the campaign dials
//! the store held open with what the switch shows of each leg.
//!
//! Taken-over legs join the core's tables (callers, originated legs, homes), so their
//! hangups are reported like any other. An agent leg of ours that is on no conversation
//! (an offer that was ringing at the stop) is hung up: the caller it was for comes back
//! through the dialplan's hold loop and is offered again.
//!
//! A node that stays unreachable holds the judgement back for `ADOPT_WAIT`; after that the
//! conversations found are taken over and the open rows are left open (logged), since legs
//! on the missing node cannot be told from legs that are gone.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tracing::{info, warn};

use crate::engine::{AdoptedCall, DialSeen, OpenDial, Recovery};
use crate::ids::AgentId;
use crate::io::{LegId, SwitchCommand, SwitchEvent};

use super::super::commands::{EslRequest, Tracking};
use super::super::config::{ARRIVED_VARIABLE, LEG_VARIABLE};
use super::super::resync::{self, ChannelRow};
use super::timers::Chore;
use super::{Answer, DriverCore, Originated, Pending, Reply};

/// How long the first judgement waits for every node to be listed.
pub(super) const ADOPT_WAIT: Duration = Duration::from_secs(30);
/// Channels looked at, at most, per node (a switch this busy with channels we cannot explain
/// is not ours to take over in one go; the sweep looks again).
const MAX_CHANNELS: usize = 50_000;
/// The variables asked of each channel, in this order.
const VARS: [&str; 5] = [
    LEG_VARIABLE,
    "switchyard_agent",
    "switchyard_queue",
    ARRIVED_VARIABLE,
    "switchyard_agent_line",
];

/// A question of the takeover.
#[derive(Debug)]
pub(crate) enum AdoptAsk {
    List { node: usize },
    Vars { node: usize, leg: LegId },
}

/// One channel as the takeover saw it.
#[derive(Debug)]
struct Seen {
    node: usize,
    row: ChannelRow,
    /// `VARS`' values (`None` while asked, or unset).
    vars: Option<[Option<String>; 5]>,
}

#[derive(Debug, Default)]
pub(super) struct Adoption {
    /// Whether the takeover may start (at once, or at [`DriverCore::admit`] for a driver
    /// that holds callers while its configuration is fed in).
    allowed: bool,
    /// Whether the takeover is over (judged once per driver). Until it is, the engine is not
    /// told the switch can take originates: nothing is dialled or offered to an agent who may
    /// be on a call the takeover has not seen yet.
    pub(super) done: bool,
    listed: Vec<bool>,
    /// Open calls whose caller leg was up but on no conversation at the takeover (in the
    /// dialplan's hold loop, on its way back): closed as lost if their leg goes before they
    /// come back (looked at with each sweep's listing of their node).
    awaiting: HashMap<LegId, (usize, crate::io::CallOpen)>,
    /// Variable questions out, per node.
    asking: HashMap<usize, usize>,
    seen: BTreeMap<LegId, Seen>,
}

impl DriverCore {
    /// The configuration is in: callers held since the start are let in (the shell does that)
    /// and the switch is taken over on every node reached so far.
    pub fn admit(&mut self, now: std::time::Instant) {
        self.at(now);
        if !self.adoption.allowed {
            self.adoption.allowed = true;
            self.schedule_adoption();
            for node in 0..self.nodes.len() {
                if self.nodes[node].connected && self.nodes[node].seen_connect {
                    self.adopt_node(node);
                }
            }
        }
        self.settle();
    }

    /// Starts the takeover on `node` at its first connection (once allowed).
    pub(super) fn adopt_node(&mut self, node: usize) {
        if self.adoption.done || !self.adoption.allowed {
            return;
        }
        if self.adoption.listed.len() != self.nodes.len() {
            self.adoption.listed = vec![false; self.nodes.len()];
        }
        self.ask(
            node,
            vec![EslRequest::Api("show channels as json".into())],
            Pending::Adopt(AdoptAsk::List { node }),
        );
    }

    pub(super) fn on_adopt_answer(&mut self, ask: AdoptAsk, replies: Vec<Reply>) {
        if self.adoption.done {
            return;
        }
        match ask {
            AdoptAsk::List { node } => self.on_adopt_listing(node, replies.into_iter().next()),
            AdoptAsk::Vars { node, leg } => {
                let mut vars: [Option<String>; 5] = Default::default();
                for (slot, reply) in vars.iter_mut().zip(replies) {
                    // `_undef_`, `-ERR ...` or a lost answer: unset.
                    if let Ok(Answer::Api(body)) = reply {
                        let v = String::from_utf8_lossy(body.trim_ascii());
                        if !(v.is_empty() || v == "_undef_" || v.starts_with("-ERR")) {
                            *slot = Some(v.chars().take(256).collect());
                        }
                    }
                }
                if let Some(s) = self.adoption.seen.get_mut(&leg) {
                    s.vars = Some(vars);
                }
                if let Some(n) = self.adoption.asking.get_mut(&node) {
                    *n = n.saturating_sub(1);
                }
                self.node_listed(node);
            }
        }
    }

    fn on_adopt_listing(&mut self, node: usize, reply: Option<Reply>) {
        let rows = match reply {
            Some(Ok(Answer::Api(body))) => resync::channel_rows(&body),
            other => Err(format!("{other:?}")),
        };
        let rows = match rows {
            Ok(r) => r,
            Err(e) => {
                // The node's next connection asks again.
                warn!(node = %self.nodes[node].name, error = %e, "could not list the channels to take over");
                self.nodes[node].seen_connect = false;
                return;
            }
        };
        let mut asked = 0;
        for row in rows.into_iter().take(MAX_CHANNELS) {
            let leg = row.uuid;
            if self.explained_now(leg) {
                continue;
            }
            let reqs = VARS
                .iter()
                .map(|v| EslRequest::Api(format!("uuid_getvar {leg} {v}")))
                .collect();
            self.ask(node, reqs, Pending::Adopt(AdoptAsk::Vars { node, leg }));
            self.adoption.seen.insert(
                leg,
                Seen {
                    node,
                    row,
                    vars: None,
                },
            );
            asked += 1;
        }
        self.adoption.asking.insert(node, asked);
        self.node_listed(node);
    }

    /// Whether some table here explains the leg already (a caller that came back on its
    /// socket before the listing).
    fn explained_now(&self, leg: LegId) -> bool {
        self.originated.contains_key(&leg)
            || self.callers.contains(&leg)
            || self.engine.owns_leg(leg)
    }

    fn node_listed(&mut self, node: usize) {
        if self.adoption.asking.get(&node).copied().unwrap_or(1) != 0 {
            return;
        }
        if let Some(l) = self.adoption.listed.get_mut(node) {
            *l = true;
        }
        if self.adoption.listed.iter().all(|l| *l) {
            self.judge(true);
        }
    }

    pub(super) fn on_adopt_deadline(&mut self) {
        if !self.adoption.done {
            warn!(
                "not every FreeSWITCH node could be listed; taking over what was found, leaving the store's open rows open"
            );
            self.judge(false);
        }
    }

    /// Builds the [`Recovery`] from what was seen and hands it to the engine.
    fn judge(&mut self, complete: bool) {
        self.adoption.done = true;
        let seen = std::mem::take(&mut self.adoption.seen);
        let open = std::mem::take(&mut self.cfg.open_records);
        let var = |s: &Seen, i: usize| s.vars.as_ref().and_then(|v| v[i].clone());
        let mut by_call: HashMap<LegId, Vec<LegId>> = HashMap::new();
        for (leg, s) in &seen {
            by_call
                .entry(s.row.call_uuid.unwrap_or(*leg))
                .or_default()
                .push(*leg);
        }
        let open_calls: HashMap<LegId, &crate::io::CallOpen> =
            open.calls.iter().map(|c| (c.leg, c)).collect();
        let open_dials: HashMap<LegId, &(crate::dialer::AttemptStart, String, String)> =
            open.dials.iter().map(|d| (d.0.leg, d)).collect();
        let dial_of =
            |d: &(crate::dialer::AttemptStart, String, String), seen: DialSeen| OpenDial {
                start: d.0.clone(),
                number: d.1.clone(),
                zone: d.2.clone(),
                seen,
            };
        let mut recovery = Recovery::default();
        let mut taken: Vec<(LegId, LegId, usize, crate::ids::QueueId)> = Vec::new();
        let mut idle_agent_legs = Vec::new();
        let mut idle_lines = Vec::new();
        for (leg, s) in &seen {
            if var(s, 0).as_deref() != Some("agent") {
                continue;
            }
            let agent = var(s, 1).and_then(|a| a.parse::<u32>().ok()).map(AgentId);
            let partner = by_call
                .get(&s.row.call_uuid.unwrap_or(*leg))
                .and_then(|g| {
                    (g.len() == 2)
                        .then(|| g.iter().find(|l| *l != leg))
                        .flatten()
                })
                .copied();
            let line = var(s, 4).as_deref() == Some("true");
            let (Some(agent), Some(other)) = (agent, partner) else {
                if let Some(agent) = agent
                    && s.row.call_uuid.is_none_or(|c| c == *leg)
                {
                    if line && s.row.answered {
                        idle_lines.push((agent, *leg, s.node));
                    } else {
                        idle_agent_legs.push((*leg, s.node));
                    }
                }
                continue;
            };
            let Some(o) = seen.get(&other) else { continue };
            let dial = open_dials
                .get(&other)
                .map(|d| dial_of(d, DialSeen::Bridged));
            let queue = match &dial {
                Some(d) => self.engine.campaign_queue(d.start.campaign),
                None => var(s, 2)
                    .or_else(|| var(o, 2))
                    .and_then(|q| self.lookup_route(&q))
                    .or_else(|| open_calls.get(&other).map(|c| c.queue)),
            };
            let Some(queue) = queue else {
                warn!(caller = %other, agent_leg = %leg, "a conversation on the switch names no queue known here; left alone");
                continue;
            };
            let arrived = open_calls
                .get(&other)
                .map(|c| c.arrived_unix_ms)
                .or_else(|| var(o, 3).and_then(|a| a.parse().ok()));
            let number = open_calls
                .get(&other)
                .map(|c| c.caller_number.clone())
                .unwrap_or_else(|| o.row.cid_num.clone());
            recovery.talking.push(AdoptedCall {
                caller_leg: other,
                agent_leg: *leg,
                agent,
                queue,
                caller_number: number,
                arrived_unix_ms: arrived,
                dial,
                line,
            });
            taken.push((other, *leg, s.node, queue));
        }
        for (caller, agent_leg, node, queue) in &taken {
            self.callers.insert(*caller);
            self.caller_queues.insert(*caller, *queue);
            self.set_home(*caller, *node);
            self.set_home(*agent_leg, *node);
            self.originated
                .insert(*agent_leg, Originated::taken_over(Some((*caller, *queue))));
        }
        // Persistent lines parked between calls: the engine takes them back (or hangs up one
        // nobody wants).
        for (agent, leg, node) in &idle_lines {
            self.set_home(*leg, *node);
            self.originated.insert(*leg, Originated::taken_over(None));
            recovery.lines.push((*agent, *leg));
        }
        // A recorder leg of the last run feeds an endpoint that no longer expects it (its
        // recording was closed at boot; a taken-over conversation is recorded anew): it goes
        // now rather than at the next two sweeps.
        let recorders: Vec<(LegId, usize)> = seen
            .iter()
            .filter(|(_, s)| var(s, 0).as_deref() == Some(super::super::media::RECORDER_LEG))
            .map(|(l, s)| (*l, s.node))
            .collect();
        for (leg, node) in &recorders {
            info!(%leg, "a recorder leg from before the start; hanging it up");
            self.set_home(*leg, *node);
            let req = EslRequest::Api(format!("uuid_kill {leg} NORMAL_CLEARING"));
            self.ask(
                *node,
                vec![req],
                Pending::Capture {
                    tracking: Tracking::Other,
                },
            );
        }
        let mut killed: Vec<LegId> = idle_agent_legs.iter().map(|(l, _)| *l).collect();
        killed.extend(recorders.iter().map(|(l, _)| *l));
        for (leg, node) in idle_agent_legs {
            info!(%leg, "an agent leg of ours from before the start carries no call; hanging it up");
            self.set_home(leg, node);
            self.switch(SwitchCommand::Hangup {
                leg,
                cause: "NORMAL_CLEARING",
            });
        }
        // What was learned of the rest is the stray sweep's: it does not ask again.
        let handled: std::collections::HashSet<LegId> = taken
            .iter()
            .flat_map(|(c, a, _, _)| [*c, *a])
            .chain(killed.iter().copied())
            .chain(idle_lines.iter().map(|(_, l, _)| *l))
            .collect();
        for (leg, s) in &seen {
            if handled.contains(leg) || s.vars.is_none() {
                continue;
            }
            let in_pair = by_call
                .get(&s.row.call_uuid.unwrap_or(*leg))
                .is_some_and(|g| g.len() == 2);
            self.remember_stray(*leg, s.node, var(s, 0).is_some(), in_pair);
        }
        if complete {
            let bridged: std::collections::HashSet<LegId> =
                taken.iter().map(|(c, _, _, _)| *c).collect();
            for c in &open.calls {
                if self.explained_now(c.leg) || bridged.contains(&c.leg) {
                    continue;
                }
                match seen.get(&c.leg) {
                    None => recovery.calls_gone.push(c.clone()),
                    Some(s) if self.adoption.awaiting.len() < MAX_CHANNELS => {
                        self.adoption.awaiting.insert(c.leg, (s.node, c.clone()));
                    }
                    Some(_) => {}
                }
            }
            for d in &open.dials {
                let leg = d.0.leg;
                if bridged.contains(&leg) {
                    continue;
                }
                let how = match seen.get(&leg) {
                    None => DialSeen::Gone,
                    Some(s) if s.row.answered => DialSeen::Answered,
                    Some(_) => DialSeen::Ringing,
                };
                if let Some(s) = seen.get(&leg) {
                    self.set_home(leg, s.node);
                }
                recovery.dials.push(dial_of(d, how));
            }
        }
        info!(
            lines = recovery.lines.len(),
            talking = recovery.talking.len(),
            calls_gone = recovery.calls_gone.len(),
            dials = recovery.dials.len(),
            complete,
            "took over the switch as it is"
        );
        self.followups
            .push_back(SwitchEvent::Recovered(Box::new(recovery)));
        // After the takeover: lines and campaigns wanted meanwhile are called now, and no
        // sooner (a line still up would be called twice, a busy agent offered a call).
        self.tell_reachable();
    }

    /// A sweep listed `node`: open calls awaited there that came back are forgotten, those
    /// whose leg is gone are closed as lost.
    pub(super) fn awaited_listing(&mut self, node: usize, rows: &[ChannelRow]) {
        if self.adoption.awaiting.is_empty() {
            return;
        }
        let listed: std::collections::HashSet<LegId> = rows.iter().map(|r| r.uuid).collect();
        let mut gone = Vec::new();
        let legs: Vec<LegId> = self.adoption.awaiting.keys().copied().collect();
        for leg in legs {
            if self.explained_now(leg) {
                self.adoption.awaiting.remove(&leg);
            } else if self
                .adoption
                .awaiting
                .get(&leg)
                .is_some_and(|(n, _)| *n == node)
                && !listed.contains(&leg)
                && let Some((_, c)) = self.adoption.awaiting.remove(&leg)
            {
                gone.push(c);
            }
        }
        if !gone.is_empty() {
            gone.sort_by_key(|c| c.leg);
            info!(
                calls = gone.len(),
                "callers awaited since the start left before coming back"
            );
            self.followups
                .push_back(SwitchEvent::Recovered(Box::new(Recovery {
                    calls_gone: gone,
                    ..Recovery::default()
                })));
        }
    }

    /// Starts the wait for every node's listing (when the takeover is allowed).
    pub(super) fn schedule_adoption(&mut self) {
        self.later(ADOPT_WAIT, Chore::AdoptDeadline);
    }

    /// A core that takes the switch over as soon as it connects (no callers held).
    pub(super) fn allow_adoption_at_once(&mut self) {
        self.adoption.allowed = true;
        self.schedule_adoption();
    }
}
