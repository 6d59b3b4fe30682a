//! Inbound routing, before any queue: which number was called, whether the center is open (in
//! its own time zone, with its holidays), the IVR menu, then a target (a queue with the skills
//! and priority the caller's choices imply, an agent, voicemail, a number, or a message and
//! hang-up). Pure and deterministic like the engine: time and the caller's input are inputs;
//! nothing here does I/O or reads a clock.
//!
//! - [`schedule`]: business hours in an IANA zone, dated overrides, recurring holidays, a
//!   manual switch; "open or closed at this instant, and why".
//! - [`flow`]: numbers to flows of steps, IVR menus, their validation (a field path for every
//!   refusal) and the sans-IO runner that walks a caller through them.

pub mod error;
pub mod flow;
pub mod schedule;

pub use error::DialplanError;
