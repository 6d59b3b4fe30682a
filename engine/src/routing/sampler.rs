//! Weighted sampling of ready agents in O(log n) (random and weighted-random strategies): a
//! Fenwick tree over agent slots. An agent keeps its slot while it is a member; leaving the
//! ready set sets its weight to zero.

use crate::hash::FastMap;

use crate::ids::AgentId;

#[derive(Debug, Default, Clone)]
pub struct Sampler {
    tree: Vec<u64>,
    weights: Vec<u64>,
    slots: Vec<AgentId>,
    slot_of: FastMap<AgentId, usize>,
    total: u64,
}

impl Sampler {
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Sets an agent's weight (0 = not ready).
    pub fn set(&mut self, agent: AgentId, weight: u64) {
        let slot = match self.slot_of.get(&agent) {
            Some(&s) => s,
            None => {
                if weight == 0 {
                    return;
                }
                self.push_slot(agent)
            }
        };
        let old = self.weights[slot];
        if old == weight {
            return;
        }
        self.weights[slot] = weight;
        self.total = self.total - old + weight;
        let mut i = slot + 1;
        while i <= self.tree.len() {
            self.tree[i - 1] = self.tree[i - 1] - old + weight;
            i += i & i.wrapping_neg();
        }
    }

    fn push_slot(&mut self, agent: AgentId) -> usize {
        let slot = self.slots.len();
        self.slots.push(agent);
        self.weights.push(0);
        self.slot_of.insert(agent, slot);
        // The new node covers (i - lowbit(i), i]; every weight in it but its own is already in
        // place, so its sum is a difference of prefix sums.
        let i = slot + 1;
        let low = i - (i & i.wrapping_neg());
        let node = self.prefix(i - 1) - self.prefix(low);
        self.tree.push(node);
        slot
    }

    fn prefix(&self, mut i: usize) -> u64 {
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i - 1];
            i -= i & i.wrapping_neg();
        }
        sum
    }

    /// The agent whose cumulative weight range holds `r` (0 <= r < total).
    pub fn find(&self, mut r: u64) -> Option<AgentId> {
        if r >= self.total {
            return None;
        }
        let mut pos = 0usize;
        let mut step = self.tree.len().next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= self.tree.len() && self.tree[next - 1] <= r {
                pos = next;
                r -= self.tree[next - 1];
            }
            step >>= 1;
        }
        self.slots.get(pos).copied()
    }

    pub fn weight(&self, agent: AgentId) -> u64 {
        self.slot_of.get(&agent).map_or(0, |&s| self.weights[s])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_agents_in_proportion_to_weight() {
        let mut s = Sampler::default();
        s.set(AgentId(1), 1);
        s.set(AgentId(2), 3);
        s.set(AgentId(3), 0);
        s.set(AgentId(4), 6);
        assert_eq!(s.total(), 10);
        let mut counts = [0u32; 5];
        for r in 0..10 {
            counts[s.find(r).unwrap().index()] += 1;
        }
        assert_eq!(counts, [0, 1, 3, 0, 6]);
        s.set(AgentId(4), 0);
        assert_eq!(s.total(), 4);
        assert_eq!(s.find(3), Some(AgentId(2)));
        assert_eq!(s.find(4), None);
    }

    #[test]
    fn growth_keeps_prefix_sums_right() {
        let mut s = Sampler::default();
        for a in 0..100u32 {
            s.set(AgentId(a), u64::from(a % 7));
        }
        let mut r = 0;
        for a in 0..100u32 {
            for _ in 0..(a % 7) {
                assert_eq!(s.find(r), Some(AgentId(a)));
                r += 1;
            }
        }
        assert_eq!(s.total(), r);
    }
}
