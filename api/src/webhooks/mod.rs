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
//!
//! The outbox table, the delivery worker and the routes build on these.

pub mod schedule;
pub mod signing;
pub mod target;
