//! Bounds and timeouts of the outbound server and of each session it runs.

use std::time::Duration;

use crate::codec::DecoderLimits;

/// Settings of an [`OutboundServer`](super::OutboundServer).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Most connections alive at once, counting those still in the `connect` handshake and
    /// those waiting in [`accept`](super::OutboundServer::accept). A connection over the bound
    /// is closed at once (FreeSWITCH then runs the dialplan's failure path for `socket`) and
    /// counted in [`ServerStats::rejected`](super::ServerStats::rejected). Values below 1 are
    /// read as 1, values above `u32::MAX` as `u32::MAX`.
    pub max_connections: usize,
    /// Settings every accepted session gets.
    pub session: SessionConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            session: SessionConfig::default(),
        }
    }
}

/// Settings of one [`OutboundSession`](super::OutboundSession).
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// How long the switch has to answer `connect` with the channel data. We send `connect` the
    /// moment the socket is accepted (FreeSWITCH itself gives up on a socket that stays silent
    /// for about 25 s), so a switch that does not answer within this is broken or not a switch.
    pub connect_timeout: Duration,
    /// How long a command waits for its `command/reply`, queueing time included.
    pub reply_timeout: Duration,
    /// How long [`execute`](super::SessionHandle::execute) waits for CHANNEL_EXECUTE_COMPLETE.
    /// Applications such as `bridge` or a long `playback` legitimately run for many minutes;
    /// the bound only keeps a lost completion from pinning a waiter forever.
    pub execute_timeout: Duration,
    /// How long [`exit`](super::SessionHandle::exit) waits for `+OK bye` and the switch closing
    /// the socket before closing it ourselves.
    pub exit_timeout: Duration,
    /// Capacity of the session's event queue. When it is full the newest event is dropped and
    /// counted, the socket keeps being read, and a [`SessionEvent::Lagged`] marker reports the
    /// gap as soon as there is room again.
    ///
    /// [`SessionEvent::Lagged`]: super::SessionEvent::Lagged
    pub event_queue: usize,
    /// Commands accepted but not yet written. When full, senders wait (within their
    /// `reply_timeout`).
    pub command_queue: usize,
    /// Commands written whose reply has not arrived yet. When full, the writer waits for a
    /// reply before writing the next command, so senders wait (within their `reply_timeout`).
    pub max_in_flight: usize,
    /// Executions waiting for their CHANNEL_EXECUTE_COMPLETE. When full,
    /// [`execute`](super::SessionHandle::execute) fails with
    /// [`EslError::Overloaded`](crate::EslError::Overloaded) instead of waiting, since the
    /// slots only free up as applications finish on the channel.
    pub max_pending_executes: usize,
    /// Decoder bounds. The default 1 MiB header block lets a large CHANNEL_DATA (it travels as
    /// one header block, beyond 64 KiB with many variables) through.
    pub limits: DecoderLimits,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            connect_timeout: Duration::from_secs(5),
            reply_timeout: Duration::from_secs(10),
            execute_timeout: Duration::from_secs(3600),
            exit_timeout: Duration::from_secs(5),
            event_queue: 1024,
            command_queue: 64,
            max_in_flight: 64,
            max_pending_executes: 64,
            limits: DecoderLimits::default(),
        }
    }
}

impl SessionConfig {
    /// The same settings with every capacity at least 1 (tokio channels and semaphores cannot
    /// be empty, and a zero bound would deadlock rather than bound).
    pub(crate) fn normalized(mut self) -> Self {
        self.event_queue = self.event_queue.max(1);
        self.command_queue = self.command_queue.max(1);
        self.max_in_flight = self
            .max_in_flight
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        self.max_pending_executes = self.max_pending_executes.max(1);
        self
    }
}
