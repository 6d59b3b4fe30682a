//! The listening socket: admission (`max_connections`), the `connect` handshake of each new
//! socket in its own task, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tracing::{debug, info, warn};

use super::config::{ServerConfig, SessionConfig};
use super::session::{self, OutboundSession, ServerLink, ServerState};
use crate::error::EslError;

/// After a failed `accept` (out of file descriptors, typically) retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Once the grace period is over and sessions were told to close, how long to wait for their
/// tasks to let go of the sockets. They stop at the next poll, so this is a safety net.
const FORCED_CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The outbound Event Socket server: FreeSWITCH's `socket` dialplan application connects here,
/// one connection per channel.
///
/// Each accepted socket gets `connect` at once; sessions whose channel data arrived are handed
/// out by [`accept`](Self::accept). Dropping the server stops accepting (sessions already
/// handed out carry on); [`shutdown`](Self::shutdown) also winds the sessions down.
#[derive(Debug)]
pub struct OutboundServer {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<OutboundSession>,
    state: watch::Sender<ServerState>,
    /// One permit per live connection (handshaking, waiting in `ready`, or handed out).
    slots: Arc<Semaphore>,
    max_connections: u32,
    counters: Arc<Counters>,
    acceptor: JoinHandle<()>,
}

/// Counters since the server started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections admitted (within `max_connections`).
    pub accepted: u64,
    /// Connections closed at once because `max_connections` were alive.
    pub rejected: u64,
    /// Admitted connections that failed before the channel data arrived.
    pub handshake_failed: u64,
    /// Connections alive now.
    pub active: usize,
}

/// What [`OutboundServer::shutdown`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Every connection ended within the grace period.
    pub drained: bool,
    /// Connections still alive at the end of the grace period, closed by force.
    pub forced: usize,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    rejected: AtomicU64,
    handshake_failed: AtomicU64,
}

impl OutboundServer {
    /// Binds and starts accepting.
    pub async fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> Result<Self, EslError> {
        let listener = TcpListener::bind(addr).await?;
        Self::from_listener(listener, config)
    }

    /// Starts accepting on an already bound listener. Must be called inside a tokio runtime.
    pub fn from_listener(listener: TcpListener, config: ServerConfig) -> Result<Self, EslError> {
        let local_addr = listener.local_addr()?;
        let max_connections = u32::try_from(config.max_connections.max(1)).unwrap_or(u32::MAX);
        let slots = Arc::new(Semaphore::new(max_connections as usize));
        // Every queued session holds a slot, so the queue can never hold more than
        // `max_connections` and sending to it never waits.
        let (ready_tx, ready) = mpsc::channel(max_connections as usize);
        let state = watch::Sender::new(ServerState::Running);
        let counters = Arc::new(Counters::default());
        let acceptor = tokio::spawn(accept_loop(Acceptor {
            listener,
            session: config.session,
            slots: slots.clone(),
            state: state.subscribe(),
            ready: ready_tx,
            counters: counters.clone(),
            max_connections,
        }));
        info!(%local_addr, max_connections, "outbound event socket server listening");
        Ok(OutboundServer {
            local_addr,
            ready,
            state,
            slots,
            max_connections,
            counters,
            acceptor,
        })
    }

    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next session whose channel data has arrived. `None` only if the accept loop is
    /// gone, which does not happen while the server runs.
    pub async fn accept(&mut self) -> Option<OutboundSession> {
        self.ready.recv().await
    }

    pub fn stats(&self) -> ServerStats {
        ServerStats {
            accepted: self.counters.accepted.load(Ordering::Relaxed),
            rejected: self.counters.rejected.load(Ordering::Relaxed),
            handshake_failed: self.counters.handshake_failed.load(Ordering::Relaxed),
            active: self.active(),
        }
    }

    /// Graceful shutdown: stop accepting and drop connections still in the handshake or not
    /// yet accepted; tell every live session ([`SessionEvent::Shutdown`]; their pending
    /// executions fail with [`EslError::Shutdown`]); wait up to `grace` for them to end; then
    /// close the rest.
    ///
    /// [`SessionEvent::Shutdown`]: super::SessionEvent::Shutdown
    pub async fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        info!(
            live = self.active(),
            ?grace,
            "outbound server shutting down"
        );
        self.state.send_replace(ServerState::Draining);
        // The accept loop returns at once and drops the listener.
        let _ = (&mut self.acceptor).await;
        // Sessions nobody accepted yet have no one to wind them down: dropping them closes
        // their sockets.
        self.ready.close();
        while self.ready.try_recv().is_ok() {}

        let all = self.max_connections;
        if timeout(grace, self.slots.acquire_many(all)).await.is_ok() {
            info!("outbound server shut down; every session ended in time");
            return ShutdownReport {
                drained: true,
                forced: 0,
            };
        }
        let forced = self.active();
        warn!(forced, "grace period over; closing the remaining sessions");
        self.state.send_replace(ServerState::Closing);
        if timeout(FORCED_CLOSE_WAIT, self.slots.acquire_many(all))
            .await
            .is_err()
        {
            warn!(
                left = self.active(),
                "sessions did not release their sockets in time"
            );
        }
        ShutdownReport {
            drained: false,
            forced,
        }
    }

    fn active(&self) -> usize {
        (self.max_connections as usize).saturating_sub(self.slots.available_permits())
    }
}

impl Drop for OutboundServer {
    fn drop(&mut self) {
        // Stop accepting; handshakes in flight see the state sender gone and give up.
        self.acceptor.abort();
    }
}

struct Acceptor {
    listener: TcpListener,
    session: SessionConfig,
    slots: Arc<Semaphore>,
    state: watch::Receiver<ServerState>,
    ready: mpsc::Sender<OutboundSession>,
    counters: Arc<Counters>,
    max_connections: u32,
}

async fn accept_loop(mut a: Acceptor) {
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = stopping(&mut a.state) => return,
            r = a.listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(slot) = a.slots.clone().try_acquire_owned() else {
            a.counters.rejected.fetch_add(1, Ordering::Relaxed);
            warn!(%peer, limit = a.max_connections, "max_connections reached; connection closed");
            drop(stream);
            continue;
        };
        a.counters.accepted.fetch_add(1, Ordering::Relaxed);
        // Commands are small and every reply is awaited: do not let Nagle hold them back.
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%peer, error = %e, "TCP_NODELAY not set");
        }
        tokio::spawn(handshake(
            stream,
            peer,
            a.session.clone(),
            slot,
            a.state.clone(),
            a.ready.clone(),
            a.counters.clone(),
        ));
    }
}

async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    config: SessionConfig,
    slot: OwnedSemaphorePermit,
    mut state: watch::Receiver<ServerState>,
    ready: mpsc::Sender<OutboundSession>,
    counters: Arc<Counters>,
) {
    let link = ServerLink {
        state: state.clone(),
        permit: slot,
    };
    let result = tokio::select! {
        biased;
        // Shutting down (or the server was dropped): a half-open connection is just closed.
        () = stopping(&mut state) => return,
        r = session::start(stream, config, Some(peer), Some(link)) => r,
    };
    match result {
        Ok(session) => {
            if ready.send(session).await.is_err() {
                debug!(%peer, "server gone; new session closed");
            }
        }
        Err(e) => {
            counters.handshake_failed.fetch_add(1, Ordering::Relaxed);
            warn!(%peer, error = %e, "outbound connection failed before its channel data");
        }
    }
}

/// Resolves once the server leaves `Running` (or is dropped). Returns nothing so no borrow of
/// the watch value lives across later awaits.
async fn stopping(state: &mut watch::Receiver<ServerState>) {
    let _ = state.wait_for(|s| *s != ServerState::Running).await;
}
