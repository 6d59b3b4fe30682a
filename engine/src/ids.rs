//! Typed ids. Every entity lives in a slab or map addressed by one of these; mixing an agent id
//! with a queue id is a compile error, not a routing bug.

use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id!(
    /// A caller's journey through the contact center, from arrival to its final record.
    CallId,
    "call-"
);
id!(
    /// A person who takes calls.
    AgentId,
    "agent-"
);
id!(
    /// A queue: a waiting line with its own routing policy and service-level target.
    QueueId,
    "queue-"
);
id!(
    /// One offer of one call to one agent (a reservation).
    OfferId,
    "offer-"
);
id!(
    /// A skill (language, product, tier...), interned from its name.
    SkillId,
    "skill-"
);
id!(
    /// An outbound campaign.
    CampaignId,
    "campaign-"
);

/// A campaign contact, by the store's id (64 bits: a campaign may hold millions).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ContactId(pub u64);

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "contact-{}", self.0)
    }
}
