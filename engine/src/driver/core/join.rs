//! Joining at the answer: FreeSWITCH bridges a caller and its agent's leg by itself the moment
//! the agent's originate completes (module `commands`, "Joining at the answer").
//!
//! ```text
//!   node connected ─► api eval ${echo switchyard-join} ─► echoed: the node joins
//!                                                      └► anything else: WARN once, it does not
//!   Originate{join: Some(c)} on a node that joins ─► '&eval(${uuid_bridge c leg})', remembered
//!                            on one that does not (or not known yet) ─► join dropped: &park()
//!   Bridge{c, leg} for a remembered pair ─► only the caller's after-bridge variables; the
//!                                           switch is already joining them (no hold, no
//!                                           uuid_bridge). CHANNEL_BRIDGE decides, as always.
//! ```
//!
//! A join that does not happen shows as the agent leg's hangup (the caller was gone, so
//! `uuid_bridge` failed and the leg ran out of dialplan) or as the core's bridge deadline: the
//! core's usual "bridge lost" path, nothing special here.

use tracing::{debug, warn};

use crate::io::{LegId, SwitchCommand};

use super::super::commands::{self, EslRequest, Tracking};
use super::{DriverCore, Pending, bump};

/// What `eval` must answer on a node whose `${api args}` expansion works.
const ECHO: &str = "switchyard-join";

impl DriverCore {
    /// At each connection: ask whether the node expands API calls in variables (a node can
    /// come back with another configuration).
    pub(super) fn check_joins(&mut self, node: usize) {
        self.nodes[node].joins = None;
        if !self.cfg.join_on_answer {
            return;
        }
        let req = EslRequest::Api(format!("eval ${{echo {ECHO}}}"));
        self.ask(node, vec![req], Pending::JoinCheck { node });
    }

    pub(super) fn on_join_check(&mut self, node: usize, replies: Vec<super::Reply>) {
        let Some(reply) = replies.into_iter().next() else {
            return;
        };
        let body = match reply {
            Ok(super::Answer::Api(body)) => body,
            // The connection went: the next one asks again.
            Ok(super::Answer::Job(_)) | Err(_) => return,
        };
        let text = String::from_utf8_lossy(&body);
        let joins = text.trim() == ECHO;
        if !joins {
            warn!(
                node = %self.nodes[node].name,
                answer = %text.trim(),
                "this FreeSWITCH does not expand API calls in variables (api-expansion off?); \
                 its agents are bridged with uuid_bridge after the originate completes, \
                 one event round trip slower"
            );
        }
        self.nodes[node].joins = Some(joins);
    }

    /// Drops the join of an originate that goes to a node not known to join, and remembers it
    /// otherwise.
    pub(super) fn prepare_join(&mut self, node: usize, cmd: &mut SwitchCommand) -> Option<LegId> {
        let SwitchCommand::Originate { join, .. } = cmd else {
            return None;
        };
        // A caller that is itself a leg still owned by its originate (a campaign's person
        // answering this instant) is no safe target for a bridge from the switch's side.
        let unsafe_target = join.is_some_and(|c| self.owned_by_originate(c));
        if join.is_some() && (self.nodes[node].joins != Some(true) || unsafe_target) {
            *join = None;
        }
        *join
    }

    /// A core `Bridge` the switch is making by itself: sends what must still go (the caller's
    /// after-bridge variables) and says so.
    pub(super) fn bridge_joined_by_switch(&mut self, a: LegId, b: LegId, node: usize) -> bool {
        let joined = |leg: LegId, caller: LegId| {
            self.originated
                .get(&leg)
                .is_some_and(|o| o.joins == Some(caller))
        };
        let caller = if joined(b, a) {
            a
        } else if joined(a, b) {
            b
        } else {
            return false;
        };
        bump(&self.counters.bridges_joined);
        debug!(%a, %b, "FreeSWITCH joins these legs itself; no uuid_bridge");
        let req = EslRequest::Api(commands::after_bridge_vars(caller));
        self.send_command(node, vec![req], Tracking::Other, None);
        true
    }
}
