//! Several connections to one switch. FreeSWITCH runs `api` inline on the connection's own
//! thread, so one slow `api` (an `originate` without `bgapi`, a big `show channels`) holds up
//! every reply behind it; a pool lets others pass.
//!
//! Connection 0 carries the caller's subscription and feeds the one [`EventStream`]; the others
//! subscribe only to what the client needs for itself (BACKGROUND_JOB for their own jobs, and
//! HEARTBEAT for the watchdog), so events are not received N times.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

use super::config::ClientConfig;
use super::stream::EventStream;
use super::{Client, JobResult};
use crate::codec::EventSet;
use crate::error::EslError;

/// A cheap-to-clone handle on N connections.
#[derive(Clone, Debug)]
pub struct ClientPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    clients: Vec<Client>,
    /// Where the search for the least busy connection starts, rotating so that ties (all idle)
    /// spread too.
    cursor: AtomicUsize,
}

impl ClientPool {
    /// Opens `size` connections (at least one). Fails, closing those already open, if any of
    /// them fails to connect.
    pub async fn connect(
        config: ClientConfig,
        size: usize,
    ) -> Result<(ClientPool, EventStream), EslError> {
        let size = size.max(1);
        let mut secondary = config.clone();
        secondary.events = EventSet::default();
        secondary.filters.clear();
        secondary.event_capacity = 1;

        let (first, events) = Client::connect(config).await?;
        let mut clients = vec![first];
        for _ in 1..size {
            match Client::connect(secondary.clone()).await {
                // Nobody reads a secondary's stream: dropping it makes its events vanish
                // without being counted as lag.
                Ok((client, _stream)) => clients.push(client),
                Err(e) => {
                    for c in &clients {
                        let _ = c.shutdown().await;
                    }
                    return Err(e);
                }
            }
        }
        let inner = Inner {
            clients,
            cursor: AtomicUsize::new(0),
        };
        Ok((
            ClientPool {
                inner: Arc::new(inner),
            },
            events,
        ))
    }

    /// `api` on the connection with the fewest calls in flight.
    pub async fn api(&self, command: &str) -> Result<Bytes, EslError> {
        self.pick().api(command).await
    }

    /// `bgapi` on the connection with the fewest calls in flight.
    pub async fn bgapi(&self, command: &str) -> Result<JobResult, EslError> {
        self.pick().bgapi(command).await
    }

    /// The connection with the fewest api/bgapi calls in flight.
    pub fn pick(&self) -> &Client {
        let clients = &self.inner.clients;
        let start = self.inner.cursor.fetch_add(1, Ordering::Relaxed) % clients.len();
        let mut best = start;
        for step in 1..clients.len() {
            let i = (start + step) % clients.len();
            if clients[i].in_flight() < clients[best].in_flight() {
                best = i;
            }
        }
        &clients[best]
    }

    /// The connection that carries the subscription (for `subscribe`, `filter`...).
    pub fn events_client(&self) -> &Client {
        // `connect` always opens at least one connection.
        &self.inner.clients[0]
    }

    /// Every connection, connection 0 first.
    pub fn clients(&self) -> &[Client] {
        &self.inner.clients
    }

    pub fn size(&self) -> usize {
        self.inner.clients.len()
    }

    /// Events dropped by the stream's consumer.
    pub fn dropped_events(&self) -> u64 {
        self.events_client().dropped_events()
    }

    /// Shuts every connection down.
    pub async fn shutdown(&self) -> Result<(), EslError> {
        for c in &self.inner.clients {
            c.shutdown().await?;
        }
        Ok(())
    }
}
