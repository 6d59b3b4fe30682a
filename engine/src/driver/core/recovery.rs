//! Connections, resyncs, and the legs nobody uses.
//!
//! **Resync.** After a reconnect (or when the client had to drop events) the core asks
//! `show channels as json` and feeds [`SwitchEvent::Resync`] with the legs listed, plus the
//! legs it originated or saw arrive after the question was sent; `restarted` is the client's
//! Core-UUID comparison. The engine's Resync means "every leg not listed is gone", so a
//! resync of node A lists A's live legs *plus every leg the driver believes alive on the other
//! nodes*: A's restart closes A's calls and nobody else's.
//!
//! **Orphan checks.** A caller socket that closes without a hangup is checked with
//! `uuid_exists` after `orphan_grace` unless a resync covers it; a vanished leg is reported
//! as [`HangupCause::Lost`](crate::io::HangupCause::Lost).
//!
//! **Sweeps**, every `sweep_interval`, two of them:
//! - *tracked legs*: legs this driver originated that the engine has had no use for at two
//!   sweeps in a row (a kill that was lost, a leg left up by a failed originate, a leg whose
//!   hangup event was missed) are killed;
//! - *strays*: each connected node's `show channels` is compared with every table here.
//!   A channel none of them explains is asked for its `switchyard_leg` variable once (every
//!   leg switchyard originates carries it); one that has it, is not bridged (its `call_uuid`
//!   column, see [`ChannelRow`]) and is still there at the next sweep is killed. These are
//!   legs a restart of switchyard forgot, or whose tracking a resync dropped. Bridged ones are
//!   a conversation in progress and are left alone.
//!
//! Both count their kills in `orphans_killed` (`/metrics`: `switchyard_orphan_legs_killed`).

use std::collections::{HashMap, HashSet};

use switchyard_esl::EslError;
use tracing::{debug, error, info, warn};

use crate::io::{LegId, SwitchEvent};

use super::super::commands::{EslRequest, Tracking};
use super::super::config::LEG_VARIABLE;
use super::super::resync::{self, ChannelRow};
use super::timers::Chore;
use super::{Answer, DriverCore, Pending, RESYNC_RETRY, Reply, bump};

/// A resync question in flight.
#[derive(Debug)]
pub(crate) struct Resync {
    epoch: u64,
    restarted: bool,
    /// Legs originated or arrived after the question was sent: the answer cannot list them.
    pub(super) extra: HashSet<LegId>,
}

/// A question of the stray sweep.
#[derive(Debug)]
pub(crate) enum StrayAsk {
    /// `show channels as json` on a node.
    List { node: usize },
    /// `uuid_getvar <leg> switchyard_leg`.
    Var { leg: LegId },
}

/// Channels remembered by the stray sweep at once; beyond it new ones wait for room (a
/// switch with this many channels nobody here knows is not ours to judge in one sweep).
const MAX_STRAYS: usize = 100_000;

/// A channel the sweep saw that no table explains.
#[derive(Debug)]
struct Stray {
    node: usize,
    /// Whether it carries `switchyard_leg`; `None` while the question is out.
    ours: Option<bool>,
    /// Whether it was bridged when last listed.
    bridged: bool,
    /// Consecutive listings that found it ours, unexplained and not bridged.
    sightings: u8,
}

#[derive(Debug, Default)]
pub(super) struct Strays {
    seen: HashMap<LegId, Stray>,
    /// Nodes whose listing is out (one at a time per node).
    listing: HashSet<usize>,
}

impl DriverCore {
    // ---- connections --------------------------------------------------------------------

    /// `node`'s connection is up (again): a reconnect resyncs it; every connection has its
    /// sounds checked (it may be another machine).
    pub fn node_connected(
        &mut self,
        now: std::time::Instant,
        node: usize,
        core_uuid: &str,
        switch_restarted: bool,
    ) {
        self.at(now);
        let n = &mut self.nodes[node];
        n.connected = true;
        n.core_uuid = Some(core_uuid.to_owned());
        let c = &self.counters.nodes[node];
        c.connected
            .store(true, std::sync::atomic::Ordering::Relaxed);
        c.set_core_uuid(core_uuid);
        let name = self.nodes[node].name.clone();
        self.tell_reachable();
        let n = &mut self.nodes[node];
        if n.seen_connect {
            info!(node = %name, %core_uuid, switch_restarted, "reconnected to FreeSWITCH; resyncing this node");
            self.start_resync(node, switch_restarted);
        } else {
            n.seen_connect = true;
            info!(node = %name, %core_uuid, "connected to FreeSWITCH; taking over its channels");
            self.adopt_node(node);
        }
        // After the resync's question.
        self.check_sounds(node);
        self.check_joins(node);
        self.check_modules(node);
        self.settle();
    }

    /// `node`'s connection was lost; its client reconnects by itself.
    pub fn node_disconnected(&mut self, now: std::time::Instant, node: usize, reason: &EslError) {
        self.at(now);
        self.set_connected(node, false);
        warn!(node = %self.nodes[node].name, error = %reason, "lost the Event Socket connection");
    }

    /// `node`'s client dropped `dropped` events: what the core knows of it may be stale.
    pub fn node_lagged(&mut self, now: std::time::Instant, node: usize, dropped: u64) {
        self.at(now);
        self.counters
            .events_lagged
            .fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
        warn!(node = %self.nodes[node].name, dropped, "switch events were dropped; resyncing this node");
        if self.nodes[node].connected {
            self.start_resync(node, false);
        }
        self.settle();
    }

    /// `node`'s client stopped for good (a refused password, shutdown).
    pub fn node_stopped(&mut self, now: std::time::Instant, node: usize, why: Option<&EslError>) {
        self.at(now);
        self.set_connected(node, false);
        error!(node = %self.nodes[node].name, error = ?why, "the Event Socket client stopped for good; no more events from this node");
    }

    /// A [`super::CoreOutput::Connect`] succeeded: the connection's own `Connected` follows.
    pub fn node_reachable(&mut self, now: std::time::Instant, node: usize) {
        self.at(now);
        info!(node = %self.nodes[node].name, "FreeSWITCH node reachable");
    }

    /// A [`super::CoreOutput::Connect`] failed: try again later, unless the switch answered
    /// and refused us (a wrong password, its ACL). Retrying would only repeat the refusal; the
    /// client of a node that was up stops the same way (see [`DriverCore::node_stopped`]).
    pub fn node_unreachable(&mut self, now: std::time::Instant, node: usize, why: &EslError) {
        self.at(now);
        let name = &self.nodes[node].name;
        if matches!(
            why,
            EslError::AuthFailed { .. } | EslError::AccessDenied { .. }
        ) {
            error!(node = %name, error = %why, "FreeSWITCH node refused us; no more attempts to connect to it");
            return;
        }
        debug!(node = %name, error = %why, "FreeSWITCH node still unreachable");
        self.reconnect_later(node);
    }

    fn set_connected(&mut self, node: usize, up: bool) {
        self.nodes[node].connected = up;
        if !up {
            self.nodes[node].joins = None;
        }
        self.counters.nodes[node]
            .connected
            .store(up, std::sync::atomic::Ordering::Relaxed);
        self.tell_reachable();
        self.settle();
    }

    /// Tries a node never reached again after its current delay (doubling up to its backoff
    /// maximum). Once connected, its client reconnects by itself.
    pub(super) fn reconnect_later(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        let delay = n.retry;
        n.retry = (n.retry * 2).min(n.retry_max);
        self.later(delay, Chore::Reconnect { node });
    }

    // ---- resync -------------------------------------------------------------------------

    fn start_resync(&mut self, node: usize, restarted: bool) {
        let n = &mut self.nodes[node];
        n.resync_epoch += 1;
        let restarted = restarted || n.resync.as_ref().is_some_and(|r| r.restarted);
        let epoch = n.resync_epoch;
        n.resync = Some(Resync {
            epoch,
            restarted,
            extra: HashSet::new(),
        });
        self.ask(
            node,
            vec![EslRequest::Api("show channels as json".into())],
            Pending::Resync { node, epoch },
        );
    }

    pub(super) fn on_resync_retry(&mut self, node: usize, epoch: u64) {
        let again = self.nodes[node]
            .resync
            .as_ref()
            .filter(|r| r.epoch == epoch)
            .map(|r| r.restarted);
        if let (Some(restarted), true) = (again, self.nodes[node].connected) {
            self.start_resync(node, restarted);
        }
    }

    /// Reconciles one node: its legs not listed (nor originated or arrived since the question)
    /// are gone. The engine is told with a Resync that also lists every leg the driver
    /// believes alive on the other nodes, so that their calls are left alone.
    pub(super) fn on_resync_answer(&mut self, node: usize, epoch: u64, reply: Reply) {
        if self.nodes[node]
            .resync
            .as_ref()
            .is_none_or(|r| r.epoch != epoch)
        {
            return; // A later question supersedes this one.
        }
        let parsed = match reply {
            Ok(Answer::Api(body)) => resync::live_legs(&body),
            Ok(Answer::Job(_)) => Err("a job answer to an api".into()),
            // The next Connected asks again.
            Err(EslError::ConnectionClosed | EslError::Shutdown) => return,
            Err(e) => Err(e.to_string()),
        };
        let mut live = match parsed {
            Ok(l) => l,
            Err(e) => {
                warn!(node = %self.nodes[node].name, error = %e, "resync answer unusable; asking again");
                self.later(RESYNC_RETRY, Chore::ResyncRetry { node, epoch });
                return;
            }
        };
        let Some(r) = self.nodes[node].resync.take() else {
            return;
        };
        live.extend(r.extra);
        // Originates not sent yet have no node: alive in intent wherever they will go.
        live.extend(
            self.backlog
                .iter()
                .filter_map(super::pipeline::originated_leg),
        );
        live.sort_unstable();
        live.dedup();
        let alive = |l: &LegId| live.binary_search(l).is_ok();
        // This resync judges the legs of this node (and legs of no known node).
        let homes = &self.homes;
        let judged = |l: &LegId| homes.get(*l).is_none_or(|n| n == node);
        self.originated.retain(|l, _| !judged(l) || alive(l));
        self.callers.retain(|l| !judged(l) || alive(l));
        self.caller_queues.retain(|l, _| !judged(l) || alive(l));
        self.walked.retain(|l, _| !judged(l) || alive(l));
        // Callers gone unseen from a flow or a message: their journey and message are over.
        let gone: Vec<LegId> = self
            .flows
            .keys()
            .chain(self.queued_flows.keys())
            .copied()
            .chain(self.message_legs())
            .filter(|l| judged(l) && !alive(l))
            .collect();
        for leg in gone {
            self.flow_leg_gone(leg);
            self.voicemail_leg_gone(leg);
        }
        self.homes.prune(node, |l| alive(&l));
        self.publish_legs(node);
        let mut kills: Vec<(LegId, &'static str)> = self.nodes[node].failed_kills.drain().collect();
        kills.sort_unstable();
        if !r.restarted {
            for (leg, cause) in kills.into_iter().filter(|(l, _)| alive(l)) {
                self.send_kill(leg, cause, u32::MAX);
            }
        }
        let own = live.len();
        live.extend(self.homes.elsewhere(node));
        live.sort_unstable();
        live.dedup();
        bump(&self.counters.resyncs);
        bump(&self.counters.nodes[node].resyncs);
        info!(
            node = %self.nodes[node].name,
            live = own,
            elsewhere = live.len() - own,
            restarted = r.restarted,
            "resync fed to the core"
        );
        self.followups.push_back(SwitchEvent::Resync {
            live,
            restarted: r.restarted,
        });
    }

    // ---- orphan checks ------------------------------------------------------------------

    pub(super) fn on_orphan_check(&mut self, leg: LegId, node: usize, epoch: u64) {
        let n = &self.nodes[node];
        if !self.callers.contains(&leg) || epoch != n.resync_epoch {
            // Reported meanwhile, or a resync (done or under way) covers it.
            return;
        }
        if !n.connected {
            self.later(
                self.cfg.orphan_grace,
                Chore::OrphanCheck { leg, node, epoch },
            );
            return;
        }
        self.ask(
            node,
            vec![EslRequest::Api(format!("uuid_exists {leg}"))],
            Pending::OrphanExists { leg },
        );
    }

    pub(super) fn on_orphan_answer(&mut self, leg: LegId, replies: Vec<Reply>) {
        match replies.into_iter().next() {
            Some(Ok(Answer::Api(body))) if body.trim_ascii() == b"false" => self.caller_lost(leg),
            Some(Ok(_)) => debug!(%leg, "caller leg lives on without its socket"),
            Some(Err(e)) => debug!(%leg, error = %e, "uuid_exists failed; the next resync decides"),
            None => {}
        }
    }

    // ---- sweeps -------------------------------------------------------------------------

    pub(super) fn schedule_sweep(&mut self) {
        let every = self.cfg.sweep_interval;
        if !every.is_zero() {
            self.later(every, Chore::Sweep);
        }
    }

    pub(super) fn sweep(&mut self) {
        self.sweep_tracked();
        for node in 0..self.nodes.len() {
            if self.nodes[node].connected && self.strays.listing.insert(node) {
                self.ask(
                    node,
                    vec![EslRequest::Api("show channels as json".into())],
                    Pending::Stray(StrayAsk::List { node }),
                );
            }
        }
    }

    /// Kills legs this driver originated that the engine has had no use for at two sweeps in
    /// a row. Their replies count the orphans.
    fn sweep_tracked(&mut self) {
        let engine = &self.engine;
        let mut orphans = Vec::new();
        for (leg, o) in self.originated.iter_mut() {
            if o.exempt || !o.job_done || engine.owns_leg(*leg) {
                o.unowned_sweeps = 0;
                continue;
            }
            o.unowned_sweeps = o.unowned_sweeps.saturating_add(1);
            if o.unowned_sweeps >= 2 {
                orphans.push(*leg);
            }
        }
        // In leg order, not the map's: the same run sends the same requests.
        orphans.sort_unstable();
        for leg in orphans {
            self.sweep_kill(self.leg_node(leg), leg);
        }
    }

    fn sweep_kill(&mut self, node: usize, leg: LegId) {
        let req = EslRequest::Api(format!("uuid_kill {leg} NORMAL_CLEARING"));
        self.send_command(node, vec![req], Tracking::Sweep(leg), None);
    }

    /// Whether some table here explains the leg.
    fn explained(&self, leg: LegId) -> bool {
        self.originated.contains_key(&leg)
            || self.callers.contains(&leg)
            || self.engine.owns_leg(leg)
            || self.recorder_explained(leg)
    }

    pub(super) fn on_stray_answer(&mut self, ask: StrayAsk, replies: Vec<Reply>) {
        let reply = replies.into_iter().next();
        match ask {
            StrayAsk::List { node } => {
                self.strays.listing.remove(&node);
                match reply {
                    Some(Ok(Answer::Api(body))) => match resync::channel_rows(&body) {
                        Ok(rows) => {
                            self.awaited_listing(node, &rows);
                            self.judge_strays(node, &rows);
                        }
                        Err(e) => debug!(node, error = %e, "sweep listing unusable"),
                    },
                    other => debug!(node, reply = ?other, "sweep listing not answered"),
                }
            }
            StrayAsk::Var { leg } => {
                let ours = match reply {
                    Some(Ok(Answer::Api(body))) => {
                        let v = body.trim_ascii();
                        !(v.is_empty() || v == b"_undef_" || v.starts_with(b"-ERR"))
                    }
                    // Not known: asked again at the next listing.
                    _ => {
                        self.strays.seen.remove(&leg);
                        return;
                    }
                };
                if let Some(s) = self.strays.seen.get_mut(&leg) {
                    s.ours = Some(ours);
                    s.sightings = u8::from(ours && !s.bridged);
                }
            }
        }
    }

    /// One node's listing: unexplained channels of ours that are not bridged are counted,
    /// and killed at their second listing in a row.
    /// A channel whose `switchyard_leg` is known already (the takeover at start asked).
    pub(super) fn remember_stray(&mut self, leg: LegId, node: usize, ours: bool, bridged: bool) {
        if self.strays.seen.len() < MAX_STRAYS {
            self.strays.seen.insert(
                leg,
                Stray {
                    node,
                    ours: Some(ours),
                    bridged,
                    sightings: 0,
                },
            );
        }
    }

    fn judge_strays(&mut self, node: usize, rows: &[ChannelRow]) {
        let mut bridged = HashSet::new();
        for r in rows {
            if let Some(c) = r.call_uuid
                && c != r.uuid
            {
                bridged.insert(r.uuid);
                bridged.insert(c);
            }
        }
        let listed: HashSet<LegId> = rows.iter().map(|r| r.uuid).collect();
        self.strays
            .seen
            .retain(|l, s| s.node != node || listed.contains(l));
        let mut kills = Vec::new();
        let mut questions = Vec::new();
        for r in rows {
            let leg = r.uuid;
            if self.explained(leg) {
                self.strays.seen.remove(&leg);
                continue;
            }
            let is_bridged = bridged.contains(&leg);
            let room = self.strays.seen.len() < MAX_STRAYS;
            match self.strays.seen.get_mut(&leg) {
                Some(s) => {
                    s.bridged = is_bridged;
                    if s.ours != Some(true) {
                        continue;
                    }
                    s.sightings = if is_bridged { 0 } else { s.sightings + 1 };
                    if s.sightings >= 2 {
                        kills.push(leg);
                    }
                }
                None if room => {
                    self.strays.seen.insert(
                        leg,
                        Stray {
                            node,
                            ours: None,
                            bridged: is_bridged,
                            sightings: 0,
                        },
                    );
                    questions.push(leg);
                }
                None => {}
            }
        }
        for leg in questions {
            self.ask(
                node,
                vec![EslRequest::Api(format!("uuid_getvar {leg} {LEG_VARIABLE}"))],
                Pending::Stray(StrayAsk::Var { leg }),
            );
        }
        for leg in kills {
            self.strays.seen.remove(&leg);
            warn!(%leg, node = %self.nodes[node].name, "a leg switchyard originated is up, unbridged, and no call of this instance uses it; killing it");
            self.sweep_kill(node, leg);
        }
    }
}
