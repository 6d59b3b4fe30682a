//! The ids the API shows are not the store's.
//!
//! The store numbers agents, queues, skills, campaigns, contacts, dials and audit entries from
//! one sequence per table, shared by every tenant, and the engine uses the same numbers as slab indices. Shown
//! as they are, they would let any tenant count the platform's objects: create an agent, read
//! 7412, create another a day later, read 7590. So the API shows each id through a keyed
//! permutation ([`IdCodec`]): a Feistel network over 32 bits (52 for contacts, the most that
//! stays an exact integer in JavaScript) keyed by a secret the store keeps
//! (`platform_secrets`, made on first use, shared by every instance on the database). Ids stay
//! integers, stay stable across restarts, and say nothing of their neighbours; guessing one
//! that decodes to a live object of one's own tenant is as likely as guessing it in the
//! store's numbering, and another tenant's answers 404 like a missing one.
//!
//! Each kind has its own key, so agent 5 and queue 5 do not read alike. Agents, queues, skills
//! and campaigns (below 2^20) and the engine's call and offer numbers take 32 bits; contacts, attempts,
//! do-not-call entries and audit entries 52. A number outside the permuted domain, or one
//! that decodes past the store's range, decodes to nothing.

use sha2::{Digest, Sha256};

/// What an id names; each kind is permuted with its own key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Agent,
    Queue,
    Skill,
    Campaign,
    /// The engine's number of a call (a campaign attempt's), counted per process.
    Call,
    /// The engine's number of an offer (in decision traces), counted per process.
    Offer,
    Contact,
    /// A campaign dial.
    Attempt,
    /// A do-not-call entry.
    Dnc,
    /// An audit-log entry.
    Audit,
    /// A business-hours schedule.
    Schedule,
    /// An IVR menu stored apart from any flow.
    IvrMenu,
    /// An inbound flow.
    Flow,
    /// A number of the tenant's number plan.
    Number,
    /// A webhook endpoint.
    Webhook,
}

impl IdKind {
    const ALL: [IdKind; 15] = [
        IdKind::Agent,
        IdKind::Queue,
        IdKind::Skill,
        IdKind::Campaign,
        IdKind::Call,
        IdKind::Offer,
        IdKind::Contact,
        IdKind::Attempt,
        IdKind::Dnc,
        IdKind::Audit,
        IdKind::Schedule,
        IdKind::IvrMenu,
        IdKind::Flow,
        IdKind::Number,
        IdKind::Webhook,
    ];

    /// The noun an error message uses (`no agent 123`).
    pub fn noun(self) -> &'static str {
        match self {
            IdKind::Agent => "agent",
            IdKind::Queue => "queue",
            IdKind::Skill => "skill",
            IdKind::Campaign => "campaign",
            IdKind::Call => "call",
            IdKind::Offer => "offer",
            IdKind::Contact => "contact",
            IdKind::Attempt => "attempt",
            IdKind::Dnc => "do-not-call entry",
            IdKind::Audit => "audit entry",
            IdKind::Schedule => "schedule",
            IdKind::IvrMenu => "IVR menu",
            IdKind::Flow => "flow",
            IdKind::Number => "number",
            IdKind::Webhook => "webhook",
        }
    }

    /// Half the permuted width: 16 bits (32-bit ids) for the engine's objects, 26 (52-bit ids)
    /// for rows of which the store may hold billions.
    fn half_bits(self) -> u32 {
        match self {
            IdKind::Agent
            | IdKind::Queue
            | IdKind::Skill
            | IdKind::Campaign
            | IdKind::Call
            | IdKind::Offer
            | IdKind::Schedule
            | IdKind::IvrMenu
            | IdKind::Flow
            | IdKind::Number
            | IdKind::Webhook => 16,
            IdKind::Contact | IdKind::Attempt | IdKind::Dnc | IdKind::Audit => 26,
        }
    }

    /// Agents, queues, skills and campaigns are numbered below 2^20 (`routes::engine_id`).
    fn engine_sized(self) -> bool {
        matches!(
            self,
            IdKind::Agent | IdKind::Queue | IdKind::Skill | IdKind::Campaign
        )
    }
}

/// Rounds of the Feistel network: 8 is beyond the 4 that make it a pseudorandom permutation.
const ROUNDS: u8 = 8;

/// Encodes and decodes the API's ids. Cheap to clone.
#[derive(Clone)]
pub struct IdCodec {
    /// Per kind: the hash state after absorbing the secret and the kind's name, cloned for
    /// every round so a round hashes only its own few bytes.
    keys: std::sync::Arc<[Sha256; 15]>,
}

impl std::fmt::Debug for IdCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdCodec(..)")
    }
}

impl IdCodec {
    /// A codec keyed by `secret` (the store's; see [`crate::store::Store::id_secret`]).
    pub fn new(secret: &[u8]) -> IdCodec {
        let keys = IdKind::ALL.map(|k| {
            let mut h = Sha256::new();
            h.update(b"switchyard-id-v1\0");
            h.update(secret);
            h.update(k.noun().as_bytes());
            h
        });
        IdCodec {
            keys: std::sync::Arc::new(keys),
        }
    }

    fn key(&self, kind: IdKind) -> &Sha256 {
        let i = IdKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_default();
        &self.keys[i]
    }

    fn round(&self, kind: IdKind, round: u8, half: u64) -> u64 {
        let mut h = self.key(kind).clone();
        h.update([round]);
        h.update(half.to_le_bytes());
        let d = h.finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        u64::from_le_bytes(b) & mask(kind)
    }

    /// The id the API shows for the store's `id`. Ids outside the kind's domain (never made
    /// by the store) are shown as -1, which decodes to nothing.
    pub fn encode(&self, kind: IdKind, id: i64) -> i64 {
        let bits = kind.half_bits();
        let Ok(v) = u64::try_from(id) else {
            return -1;
        };
        if v >> (2 * bits) != 0 {
            return -1;
        }
        let (mut l, mut r) = (v >> bits, v & mask(kind));
        for i in 0..ROUNDS {
            (l, r) = (r, l ^ self.round(kind, i, r));
        }
        ((l << bits) | r) as i64
    }

    /// The store's id behind an id the API showed; None for a number no store id encodes to.
    pub fn decode(&self, kind: IdKind, shown: i64) -> Option<i64> {
        let bits = kind.half_bits();
        let v = u64::try_from(shown).ok()?;
        if v >> (2 * bits) != 0 {
            return None;
        }
        let (mut l, mut r) = (v >> bits, v & mask(kind));
        for i in (0..ROUNDS).rev() {
            (l, r) = (r ^ self.round(kind, i, l), l);
        }
        let id = ((l << bits) | r) as i64;
        // A number that decodes past the store's range is one nobody was shown.
        (!kind.engine_sized() || id < (1 << 20)).then_some(id)
    }

    /// Shorthands for the kinds the routes use most.
    pub fn agent(&self, id: i64) -> i64 {
        self.encode(IdKind::Agent, id)
    }
    pub fn queue(&self, id: i64) -> i64 {
        self.encode(IdKind::Queue, id)
    }
    pub fn skill(&self, id: i64) -> i64 {
        self.encode(IdKind::Skill, id)
    }
    pub fn campaign(&self, id: i64) -> i64 {
        self.encode(IdKind::Campaign, id)
    }
    pub fn contact(&self, id: i64) -> i64 {
        self.encode(IdKind::Contact, id)
    }
}

fn mask(kind: IdKind) -> u64 {
    (1u64 << kind.half_bits()) - 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_id_decodes_back_and_no_two_share_an_encoding() {
        let c = IdCodec::new(b"a secret");
        for kind in IdKind::ALL {
            let mut seen = HashSet::new();
            for id in (0..5000).chain([(1 << 20) - 1]) {
                let e = c.encode(kind, id);
                assert!(e >= 0, "{kind:?} {id}");
                assert_eq!(c.decode(kind, e), Some(id), "{kind:?} {id}");
                assert!(seen.insert(e), "{kind:?}: {id} collides");
            }
        }
        let big = (1i64 << 52) - 1;
        assert_eq!(c.decode(IdKind::Contact, c.contact(big)), Some(big));
    }

    #[test]
    fn consecutive_ids_do_not_read_as_neighbours_and_kinds_and_secrets_differ() {
        let c = IdCodec::new(b"a secret");
        let shown: Vec<i64> = (1..=100).map(|i| c.agent(i)).collect();
        let close = shown
            .windows(2)
            .filter(|w| (w[0] - w[1]).abs() < 1000)
            .count();
        assert!(close <= 2, "{close} of 99 neighbours read close: {shown:?}");
        assert_ne!(c.agent(5), c.queue(5));
        assert_ne!(c.agent(5), IdCodec::new(b"another").agent(5));
        // Shown ids fill the whole width, not just the low numbers.
        assert!(shown.iter().any(|&e| e > 1 << 24));
    }

    #[test]
    fn numbers_nobody_was_shown_decode_to_nothing() {
        let c = IdCodec::new(b"k");
        assert_eq!(c.decode(IdKind::Agent, -1), None);
        assert_eq!(c.decode(IdKind::Agent, 1 << 32), None);
        assert_eq!(c.decode(IdKind::Contact, 1 << 52), None);
        assert_eq!(c.encode(IdKind::Agent, -5), -1);
        assert_eq!(c.encode(IdKind::Agent, 1 << 40), -1);
        // Of the 2^32 numbers an agent id may be, only those of the 2^20 engine ids decode:
        // about one in 4096.
        let hits = (0..40_000i64)
            .filter(|n| c.decode(IdKind::Agent, n * 107_339).is_some())
            .count();
        assert!(hits < 60, "{hits}");
    }
}
