//! Several FreeSWITCH nodes under one driver: which node a leg lives on, which node a new leg
//! goes to, and what the API can see of each node. Pure bookkeeping, unit-tested below; the
//! loop in the parent module does the I/O.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::io::LegId;

use super::session::Origin;

/// One node as the API sees it ([`super::DriverHandle::nodes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub name: String,
    /// Its Event Socket address (`host:port`).
    pub addr: String,
    /// The inbound Event Socket connection is up.
    pub connected: bool,
    /// Legs the driver tracks on this node now (callers, agents, customers, supervisors).
    pub legs: u64,
    /// The node's `Core-UUID` as last seen (it changes when FreeSWITCH restarts).
    pub core_uuid: Option<String>,
    /// Resyncs of this node fed to the core.
    pub resyncs: u64,
    /// What will not work on this node for want of a module, as it answered `module_exists`
    /// since its latest connection: `None` until it answered, `Some([])` when nothing the
    /// configured features need is missing.
    pub features_unavailable: Option<Vec<super::FeatureGap>>,
}

/// The shared, lock-free (but for the Core-UUID) view of one node.
#[derive(Debug, Default)]
pub(crate) struct NodeCounters {
    pub name: String,
    pub addr: String,
    pub connected: AtomicBool,
    pub legs: AtomicU64,
    pub resyncs: AtomicU64,
    pub core_uuid: Mutex<Option<String>>,
    /// The module check's latest report (module `core::modules`).
    pub unavailable: Mutex<Option<Vec<super::FeatureGap>>>,
}

impl NodeCounters {
    pub fn new(name: String, addr: String) -> Self {
        NodeCounters {
            name,
            addr,
            ..NodeCounters::default()
        }
    }

    pub fn status(&self) -> NodeStatus {
        NodeStatus {
            name: self.name.clone(),
            addr: self.addr.clone(),
            connected: self.connected.load(Ordering::Relaxed),
            legs: self.legs.load(Ordering::Relaxed),
            core_uuid: self.core_uuid.lock().ok().and_then(|g| g.clone()),
            resyncs: self.resyncs.load(Ordering::Relaxed),
            features_unavailable: self
                .unavailable
                .lock()
                .map(|g| g.clone())
                .unwrap_or_default(),
        }
    }

    pub fn set_core_uuid(&self, uuid: &str) {
        if let Ok(mut g) = self.core_uuid.lock() {
            *g = Some(uuid.to_owned());
        }
    }
}

/// Beyond this many legs the map stops growing: a leg left out has its commands sent to the
/// first connected node (see [`Homes::insert`]). A million legs is far beyond what any set of
/// nodes one engine drives can carry at once.
pub(crate) const MAX_HOMES: usize = 1_000_000;

/// Which node each leg lives on, with a count per node (the "legs in flight" that new
/// originates are balanced on).
#[derive(Debug)]
pub(crate) struct Homes {
    map: HashMap<LegId, usize>,
    per_node: Vec<usize>,
}

impl Homes {
    pub fn new(nodes: usize) -> Self {
        Homes {
            map: HashMap::new(),
            per_node: vec![0; nodes],
        }
    }

    /// Records `leg` on `node` (moving it if it was elsewhere). Returns false at the bound.
    pub fn insert(&mut self, leg: LegId, node: usize) -> bool {
        if node >= self.per_node.len() {
            return false;
        }
        match self.map.get(&leg).copied() {
            Some(old) if old == node => return true,
            Some(old) => self.per_node[old] = self.per_node[old].saturating_sub(1),
            None if self.map.len() >= MAX_HOMES => return false,
            None => {}
        }
        self.map.insert(leg, node);
        self.per_node[node] += 1;
        true
    }

    pub fn remove(&mut self, leg: LegId) -> Option<usize> {
        let node = self.map.remove(&leg)?;
        self.per_node[node] = self.per_node[node].saturating_sub(1);
        Some(node)
    }

    pub fn get(&self, leg: LegId) -> Option<usize> {
        self.map.get(&leg).copied()
    }

    pub fn count(&self, node: usize) -> usize {
        self.per_node.get(node).copied().unwrap_or(0)
    }

    pub fn counts(&self) -> &[usize] {
        &self.per_node
    }

    /// Legs on nodes other than `node`.
    pub fn elsewhere(&self, node: usize) -> impl Iterator<Item = LegId> + '_ {
        self.map
            .iter()
            .filter(move |(_, n)| **n != node)
            .map(|(l, _)| *l)
    }

    /// Forgets the legs of `node` that `keep` rejects.
    pub fn prune(&mut self, node: usize, mut keep: impl FnMut(LegId) -> bool) {
        let per_node = &mut self.per_node;
        self.map.retain(|l, n| {
            if *n != node || keep(*l) {
                return true;
            }
            per_node[*n] = per_node[*n].saturating_sub(1);
            false
        });
    }
}

/// The connected node with the fewest legs; ties go round-robin from `cursor`, which moves past
/// the node chosen. `None` when no node is connected.
pub(crate) fn least_loaded(
    connected: &[bool],
    legs: &[usize],
    cursor: &mut usize,
) -> Option<usize> {
    let n = connected.len();
    if n == 0 {
        return None;
    }
    let mut best: Option<usize> = None;
    for k in 0..n {
        let i = (*cursor + k) % n;
        if !connected[i] {
            continue;
        }
        let load = legs.get(i).copied().unwrap_or(0);
        if best.is_none_or(|b| load < legs.get(b).copied().unwrap_or(0)) {
            best = Some(i);
        }
    }
    if let Some(b) = best {
        *cursor = (b + 1) % n;
    }
    best
}

/// What [`place_caller`] knows of a node.
#[derive(Clone, Debug)]
pub(crate) struct NodeView<'a> {
    pub name: &'a str,
    pub core_uuid: Option<&'a str>,
    pub connected: bool,
    /// The node's Event Socket host, when it is an IP address.
    pub ip: Option<IpAddr>,
}

/// The node a caller's socket belongs to, in order of trust:
/// 1. the CHANNEL_DATA's `Core-UUID` equals a node's current one (FreeSWITCH stamps it on
///    every event; it cannot be misconfigured, and the driver learns it on every connect);
/// 2. the `switchyard_node` channel variable names a node (a dialplan shared by every node
///    cannot tell them apart, so this only comes second);
/// 3. exactly one node's Event Socket IP equals the socket's peer address;
/// 4. exactly one node has no known Core-UUID or is disconnected: a node that restarted and
///    whose connection has not come back yet is the only one a stranger can come from;
/// 5. there is one node only.
///
/// `None` otherwise: the caller is hung up (there is no node to send its commands to).
pub(crate) fn place_caller(origin: &Origin, nodes: &[NodeView<'_>]) -> Option<usize> {
    if let Some(cu) = origin.core_uuid.as_deref()
        && let Some(i) = nodes.iter().position(|n| n.core_uuid == Some(cu))
    {
        return Some(i);
    }
    if let Some(name) = origin.node_var.as_deref()
        && let Some(i) = nodes.iter().position(|n| n.name == name)
    {
        return Some(i);
    }
    let only = |f: &dyn Fn(&NodeView<'_>) -> bool| {
        let mut hits = nodes.iter().enumerate().filter(|(_, n)| f(n));
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    };
    if let Some(peer) = origin.peer
        && let Some(i) = only(&|n| n.ip == Some(peer))
    {
        return Some(i);
    }
    if origin.core_uuid.is_some()
        && let Some(i) = only(&|n| n.core_uuid.is_none() || !n.connected)
    {
        return Some(i);
    }
    (nodes.len() == 1).then_some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(n: u128) -> LegId {
        LegId(n)
    }

    #[test]
    fn homes_count_legs_per_node_and_move_them() {
        let mut h = Homes::new(2);
        assert!(h.insert(leg(1), 0));
        assert!(h.insert(leg(2), 1));
        assert!(h.insert(leg(3), 1));
        assert_eq!(h.counts(), [1, 2]);
        assert!(h.insert(leg(3), 0));
        assert_eq!(h.counts(), [2, 1]);
        assert_eq!(h.remove(leg(1)), Some(0));
        assert_eq!(h.remove(leg(1)), None);
        assert_eq!(h.counts(), [1, 1]);
        let mut other: Vec<_> = h.elsewhere(0).collect();
        other.sort();
        assert_eq!(other, [leg(2)]);
        h.prune(1, |_| false);
        assert_eq!(h.counts(), [1, 0]);
        assert_eq!(h.get(leg(3)), Some(0));
        assert!(!h.insert(leg(9), 5), "no such node");
    }

    #[test]
    fn least_loaded_skips_down_nodes_and_round_robins_ties() {
        let mut cur = 0;
        let up = [true, true, true];
        let picks: Vec<_> = (0..4)
            .map(|_| least_loaded(&up, &[0, 0, 0], &mut cur).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0]);
        assert_eq!(least_loaded(&up, &[3, 1, 2], &mut cur), Some(1));
        assert_eq!(
            least_loaded(&[true, false, true], &[5, 0, 4], &mut cur),
            Some(2)
        );
        assert_eq!(least_loaded(&[false, false], &[0, 0], &mut cur), None);
        assert_eq!(least_loaded(&[], &[], &mut cur), None);
    }

    #[test]
    fn callers_are_placed_by_core_uuid_then_variable_then_address() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let nodes = [
            NodeView {
                name: "fs1",
                core_uuid: Some("cu-1"),
                connected: true,
                ip: Some(a),
            },
            NodeView {
                name: "fs2",
                core_uuid: Some("cu-2"),
                connected: true,
                ip: Some(b),
            },
        ];
        let o = |cu: Option<&str>, var: Option<&str>, peer: Option<IpAddr>| Origin {
            core_uuid: cu.map(str::to_owned),
            node_var: var.map(str::to_owned),
            peer,
        };
        // Core-UUID beats a wrong variable and a wrong address.
        assert_eq!(
            place_caller(&o(Some("cu-2"), Some("fs1"), Some(a)), &nodes),
            Some(1)
        );
        assert_eq!(
            place_caller(&o(None, Some("fs2"), Some(a)), &nodes),
            Some(1)
        );
        assert_eq!(
            place_caller(&o(Some("cu-x"), None, Some(b)), &nodes),
            Some(1)
        );
        // Nothing tells: no node.
        assert_eq!(place_caller(&o(Some("cu-x"), None, None), &nodes), None);
        // A node that restarted and has not reconnected is the only candidate for a stranger.
        let mut restarting = nodes.clone();
        restarting[0].connected = false;
        assert_eq!(
            place_caller(&o(Some("cu-new"), None, None), &restarting),
            Some(0)
        );
        // One node: every caller is its.
        assert_eq!(place_caller(&o(None, None, None), &nodes[..1]), Some(0));
    }
}
