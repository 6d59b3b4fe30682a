//! Webhook delivery's pure parts, as DESIGN.md §7 and the Standard Webhooks specification
//! describe delivery: at least once from an outbox, signed, retried with backoff and jitter,
//! disabled after repeated failure, never redirected, never to private addresses unless the
//! operator allows them.
//!
//! - [`signing`]: `whsec_` secrets, `webhook-id` / `webhook-timestamp` / `webhook-signature`,
//!   several signatures while a secret is rotated.
//! - [`schedule`]: after an attempt, deliver / retry when / disable / give up (time and jitter
//!   are arguments).
//! - [`target`]: which addresses and URLs may be delivered to, and the reqwest client and
//!   resolver that enforce it at connect time.
//! - [`send`]: one signed attempt over HTTP, with what came back for the delivery log.
//!
//! The routes (`/v1/webhooks`: endpoints, a test send, the delivery log) use them; the
//! outbox and the delivery worker for the engine's events are still to come.

pub mod schedule;
pub mod send;
pub mod signing;
pub mod target;
pub mod worker;
