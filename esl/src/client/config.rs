//! What a client needs to know before it connects: where, who, what to subscribe to, and the
//! bound on every queue and wait.

use std::time::Duration;

use crate::codec::{DecoderLimits, EventFormat, EventSet};

/// How to authenticate once FreeSWITCH sends `auth/request`.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// `auth <password>` (the `password` param of event_socket.conf.xml).
    Password(String),
    /// `userauth <user>@<domain>:<password>` (a directory user with `esl-password`).
    User { user: String, password: String },
}

// Hand-written so that a logged config never shows a password.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Password(_) => f.write_str("Password(***)"),
            Auth::User { user, .. } => write!(f, "User({user}:***)"),
        }
    }
}

/// Reconnect backoff: exponential from `initial` to `max`, with jitter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// First delay after a connection is lost.
    pub initial: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
    /// Seed of the jitter generator. `None` seeds from the clock, so that many clients restarted
    /// together do not reconnect in lockstep; tests pass a fixed seed.
    pub seed: Option<u64>,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            seed: None,
        }
    }
}

/// Configuration of one inbound connection (see [`super::Client::connect`]).
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `host:port` of mod_event_socket; resolved again on every reconnect.
    pub addr: String,
    pub auth: Auth,
    /// Wire format of events. Whatever it is, [`crate::Event`] reads the same.
    pub format: EventFormat,
    /// Events the caller wants. BACKGROUND_JOB and HEARTBEAT are always subscribed in addition
    /// (bgapi results and the watchdog need them) but only delivered when listed here or `ALL`
    /// is. Empty means "no events" (an api-only client).
    pub events: EventSet,
    /// `filter <header> <value>` pairs. FreeSWITCH ORs filters, so when there are any the
    /// client also adds `Event-Name BACKGROUND_JOB` and `Event-Name HEARTBEAT`.
    pub filters: Vec<(String, String)>,
    /// TCP connect plus the auth exchange.
    pub connect_timeout: Duration,
    /// Wait for the reply to `api` and ordinary commands. `api` runs inline in FreeSWITCH and
    /// blocks the connection, so a slow api delays every reply behind it.
    pub command_timeout: Duration,
    /// Wait for a bgapi result (its BACKGROUND_JOB event), counted from the call.
    pub bgapi_timeout: Duration,
    /// The connection is declared dead when no byte arrives for this long. FreeSWITCH sends a
    /// HEARTBEAT every 20 s, so the default of 60 s tolerates two lost beats.
    pub heartbeat_timeout: Duration,
    /// How long [`super::Client::shutdown`] waits for the switch to close after `exit`.
    pub shutdown_timeout: Duration,
    pub backoff: BackoffConfig,
    /// Reconnect after the connection is lost. `false` ends the event stream instead.
    pub reconnect: bool,
    /// Events buffered for a consumer that is not reading. At the bound the newest event is
    /// dropped and counted (see [`super::EventStream`]); the socket is always read.
    pub event_capacity: usize,
    /// Commands written but not yet answered, per connection. At the bound new requests wait in
    /// the request queue (of the same size) and, past that, in their callers.
    pub max_pending: usize,
    /// bgapi jobs awaiting their BACKGROUND_JOB. At the bound `bgapi` fails with
    /// [`crate::EslError::Overloaded`].
    pub max_jobs: usize,
    /// Bounds applied while decoding what the switch sends.
    pub limits: DecoderLimits,
}

impl ClientConfig {
    /// A config with defaults: plain events, no subscription, no filters, reconnecting.
    pub fn new(addr: impl Into<String>, auth: Auth) -> Self {
        ClientConfig {
            addr: addr.into(),
            auth,
            format: EventFormat::Plain,
            events: EventSet::default(),
            filters: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(30),
            bgapi_timeout: Duration::from_secs(300),
            heartbeat_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(5),
            backoff: BackoffConfig::default(),
            reconnect: true,
            event_capacity: 65_536,
            max_pending: 1024,
            max_jobs: 100_000,
            limits: DecoderLimits::default(),
        }
    }

    /// Sets the event subscription from FreeSWITCH's own spelling (`CHANNEL_CREATE CUSTOM a::b`).
    pub fn events(mut self, words: &str) -> Self {
        self.events = EventSet::parse(words);
        self
    }

    /// Adds a filter.
    pub fn filter(mut self, header: impl Into<String>, value: impl Into<String>) -> Self {
        self.filters.push((header.into(), value.into()));
        self
    }

    pub fn format(mut self, format: EventFormat) -> Self {
        self.format = format;
        self
    }
}
