//! Bridges held until FreeSWITCH hands the legs over.
//!
//! FreeSWITCH's `originate` owns the leg it creates until the originate completes: its job
//! reply comes 0-20 ms after the leg's CHANNEL_ANSWER, and a `uuid_bridge` that lands in
//! between can be refused (`-ERR ORIGINATOR_CANCEL`, the leg left up) or undone by the
//! originate's own `&park()` (captures `originate-bridge-race-*`: 1 call in 9 lost on a real
//! switch when bridging at CHANNEL_ANSWER). The same captures bridged every time (75 of 75)
//! when `uuid_bridge` went out after the job's `+OK` or on the leg's CHANNEL_PARK. So the
//! driver holds a core's `Bridge` while either leg is one it originated and has not been
//! handed over yet, and sends it at the first of those two signals.
//!
//! ```text
//!   Bridge{a, b} ─ both legs handed over ─────────────────────────► uuid_bridge a b
//!        └─ a leg still owned by its originate ─► held ─ job +OK / CHANNEL_PARK ─┘
//!                                                   └─ job -ERR / leg gone / core hangs a
//!                                                      leg up ─► dropped (BridgeFailed to
//!                                                      the core unless the core let go)
//! ```
//!
//! Bound: at most `cap` bridges are held (one per connecting call, so the bound is the
//! number of calls connecting at once); past it a bridge is sent at once and counted, which
//! is what the driver did before it knew about the race.

use crate::io::LegId;

#[derive(Debug)]
pub(crate) struct Handover {
    held: Vec<(LegId, LegId)>,
    cap: usize,
}

impl Handover {
    pub(crate) fn new(cap: usize) -> Handover {
        Handover {
            held: Vec::new(),
            cap,
        }
    }

    /// Holds a bridge; false when the bound is reached (send it now instead).
    pub(crate) fn hold(&mut self, a: LegId, b: LegId) -> bool {
        if self.held.len() >= self.cap {
            return false;
        }
        self.held.push((a, b));
        true
    }

    /// Takes out the bridges none of whose legs is still `pending`, in the order they came.
    pub(crate) fn release(&mut self, pending: impl Fn(LegId) -> bool) -> Vec<(LegId, LegId)> {
        let mut out = Vec::new();
        self.held.retain(|&(a, b)| {
            let ready = !pending(a) && !pending(b);
            if ready {
                out.push((a, b));
            }
            !ready
        });
        out
    }

    /// Takes out the bridges that involve `leg` (it failed or is being hung up).
    pub(crate) fn drop_leg(&mut self, leg: LegId) -> Vec<(LegId, LegId)> {
        let mut out = Vec::new();
        self.held.retain(|&(a, b)| {
            let hit = a == leg || b == leg;
            if hit {
                out.push((a, b));
            }
            !hit
        });
        out
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_bridge_is_released_once_every_leg_is_handed_over() {
        let (c, u, v) = (LegId(1), LegId(2), LegId(3));
        let mut h = Handover::new(8);
        assert!(h.hold(c, u));
        assert!(h.hold(v, u));
        // u still owned by its originate: nothing goes.
        assert!(h.release(|l| l == u).is_empty());
        assert_eq!(h.release(|_| false), vec![(c, u), (v, u)]);
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn a_failed_leg_drops_only_its_bridges() {
        let mut h = Handover::new(8);
        h.hold(LegId(1), LegId(2));
        h.hold(LegId(3), LegId(4));
        assert_eq!(h.drop_leg(LegId(2)), vec![(LegId(1), LegId(2))]);
        assert_eq!(h.release(|_| false), vec![(LegId(3), LegId(4))]);
    }

    #[test]
    fn holding_stops_at_the_bound() {
        let mut h = Handover::new(1);
        assert!(h.hold(LegId(1), LegId(2)));
        assert!(!h.hold(LegId(3), LegId(4)));
        assert_eq!(h.len(), 1);
    }
}
