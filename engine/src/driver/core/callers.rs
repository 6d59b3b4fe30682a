//! Callers arriving over the dialplan's `socket`: which node they are on, which queue they
//! go to, and what their socket reports until they leave.

use tracing::{info, warn};

use crate::ids::QueueId;
use crate::io::{HangupCause, Input, LegId, SwitchEvent};

use super::super::commands::{EslRequest, Tracking};
use super::super::config::ARRIVED_VARIABLE;
use super::super::nodes::{self, NodeView};
use super::super::session::{Arrival, CallerInput, RouteKeys};
use super::timers::Chore;
use super::{DriverCore, MAX_CALLER_QUEUES, bump};

/// The core's answer to a caller's socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The caller is in its queue.
    Accepted,
    /// Hang the caller up with this cause (no node or no queue matched).
    Refused { cause: String },
}

impl DriverCore {
    /// A caller's socket is ready (its channel data read, `myevents` and `linger` done).
    pub fn caller_arrived(&mut self, now: std::time::Instant, arrival: Arrival) -> Admission {
        self.at(now);
        let Arrival {
            leg,
            route,
            caller,
            origin,
        } = arrival;
        let returning = caller.first_arrived_unix_ms.is_some();
        bump(&self.counters.calls_arrived);
        let Some(node) = nodes::place_caller(&origin, &self.node_views()) else {
            bump(&self.counters.calls_without_node);
            warn!(%leg, ?origin, "no configured FreeSWITCH node matches this caller; hanging up");
            return Admission::Refused {
                cause: "NORMAL_TEMPORARY_FAILURE".into(),
            };
        };
        // A number plan decides where a new caller goes, through its flow.
        if !returning
            && route.queue_var.is_none()
            && let Some(flow) = self.flow_for(route.destination.as_deref())
        {
            self.callers.insert(leg);
            self.set_home(leg, node);
            if let Some(r) = &mut self.nodes[node].resync {
                r.extra.insert(leg);
            }
            let dialled = route.destination.unwrap_or_default();
            self.start_flow(leg, flow, caller, dialled);
            self.settle();
            return Admission::Accepted;
        }
        let Some(queue) = self.route(&route) else {
            bump(&self.counters.calls_unrouted);
            warn!(%leg, ?route, "no queue for this caller; hanging up");
            return Admission::Refused {
                cause: self.cfg.unrouted_cause.clone(),
            };
        };
        self.callers.insert(leg);
        self.set_home(leg, node);
        if self.caller_queues.len() < MAX_CALLER_QUEUES {
            self.caller_queues.insert(leg, queue);
        }
        if let Some(r) = &mut self.nodes[node].resync {
            r.extra.insert(leg);
        }
        if let Some(p) = &self.cfg.probe {
            p.call_arrived(leg, self.now);
        }
        if let Err(e) = self.feed(Input::Switch(
            self.now,
            SwitchEvent::CallArrived { leg, queue, caller },
        )) {
            warn!(%leg, error = %e, "the core refused an arrival");
        }
        if !returning && self.engine.owns_leg(leg) {
            self.stamp_caller(node, leg);
        }
        self.settle();
        Admission::Accepted
    }

    /// What an accepted caller's socket reported.
    pub fn caller_input(&mut self, now: std::time::Instant, input: CallerInput) {
        self.at(now);
        match input {
            CallerInput::Dtmf { leg, digit } => {
                if self.callers.contains(&leg) {
                    self.feed_switch(SwitchEvent::Dtmf { leg, digit });
                }
            }
            CallerInput::HungUp { leg, cause } => {
                self.prompt_leg_gone(leg);
                self.flow_leg_gone(leg);
                self.voicemail_leg_gone(leg);
                if self.callers.remove(&leg) {
                    self.forget_home(leg);
                    self.feed_switch(SwitchEvent::LegHungUp { leg, cause });
                }
            }
            CallerInput::Vanished { leg } => {
                if self.callers.contains(&leg) {
                    let node = self.leg_node(leg);
                    let epoch = self.nodes[node].resync_epoch;
                    self.later(
                        self.cfg.orphan_grace,
                        Chore::OrphanCheck { leg, node, epoch },
                    );
                }
            }
        }
        self.settle();
    }

    /// Writes on the caller's channel when it first arrived, for it to come back with its
    /// seniority if this process dies while it waits (see [`ARRIVED_VARIABLE`]). Its queue
    /// and priority come back as the dialplan gave them, or as `restamp_caller` rewrote them.
    pub(super) fn stamp_caller(&mut self, node: usize, leg: LegId) {
        let arrived = self.engine.unix_ms(self.now);
        self.send_command(
            node,
            vec![EslRequest::Api(format!(
                "uuid_setvar {leg} {ARRIVED_VARIABLE} {arrived}"
            ))],
            Tracking::Other,
            None,
        );
    }

    /// A call moved or reprioritised through the API: its caller's channel says so too, so
    /// that a caller who comes back through the hold loop rejoins where it was (the queue only
    /// when its name routes back to it as one word).
    pub(super) fn restamp_caller(&mut self, call: crate::ids::CallId) {
        let Some(c) = self.engine.call_info(call) else {
            return;
        };
        let (leg, queue, priority) = (c.leg, c.queue, c.priority);
        if !self.callers.contains(&leg) {
            return;
        }
        let mut vars = format!("switchyard_priority={priority}");
        let name = self.engine.queue(queue).map(|q| q.cfg.name.clone());
        if let Some(name) = name
            && !name.is_empty()
            && !name.contains(|c: char| c.is_whitespace() || c.is_control() || c == ';' || c == '=')
            && self.lookup_route(&name) == Some(queue)
        {
            vars.push_str(&format!(";switchyard_queue={name}"));
        }
        let node = self.leg_node(leg);
        self.send_command(
            node,
            vec![EslRequest::Api(format!("uuid_setvar_multi {leg} {vars}"))],
            Tracking::Other,
            None,
        );
    }

    /// The caller whose socket vanished is gone for good.
    pub(super) fn caller_lost(&mut self, leg: LegId) {
        if self.callers.remove(&leg) {
            self.forget_home(leg);
            bump(&self.counters.legs_lost);
            info!(%leg, "caller leg vanished with its socket");
            self.followups.push_back(SwitchEvent::LegHungUp {
                leg,
                cause: HangupCause::Lost,
            });
        }
    }

    /// The queue for a caller: its `switchyard_queue` variable decides when set (an unknown
    /// name is a configuration error, not a reason to guess), else its dialled number, else
    /// the default queue.
    fn route(&self, keys: &RouteKeys) -> Option<QueueId> {
        if let Some(name) = &keys.queue_var {
            return self.lookup_route(name);
        }
        keys.destination
            .as_deref()
            .and_then(|d| self.lookup_route(d))
            .or(self.cfg.default_queue)
    }

    /// A route key (a number or a queue name) to its queue.
    pub(super) fn lookup_route(&self, key: &str) -> Option<QueueId> {
        self.cfg
            .routes
            .get(key)
            .or_else(|| {
                self.cfg
                    .learn_queue_names
                    .then(|| self.learned.get(key))
                    .flatten()
            })
            .copied()
    }

    /// What `nodes::place_caller` needs of every node.
    fn node_views(&self) -> Vec<NodeView<'_>> {
        self.nodes
            .iter()
            .map(|n| NodeView {
                name: &n.name,
                core_uuid: n.core_uuid.as_deref(),
                connected: n.connected,
                ip: n.ip,
            })
            .collect()
    }
}
