//! Delivery of events to the consumer, and the overflow policy.
//!
//! FreeSWITCH disconnects a listener that leaves 100,000 events unread, so the connection task
//! never waits for the consumer: it hands events to a bounded queue and, when the queue is full,
//! **drops the newest event**, counts it, and later delivers [`ClientEvent::Lagged`] with the
//! number dropped, just before the next event that fits. The count is also readable at any time
//! ([`EventStream::dropped_events`], [`super::Client::dropped_events`]).
//!
//! Events and log lines may occupy `event_capacity` slots of the queue. Connection notices
//! (`Connected`, `Disconnected`, `Lagged`) are rarer and matter more, so the queue has
//! [`STATUS_RESERVE`] more slots that only they use. A consumer that stops reading long enough
//! to exhaust the reserve too loses notices as well; each such loss is logged.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use super::Shared;
use crate::codec::{Event, LogData};
use crate::error::EslError;

/// Slots of the event queue kept for connection notices.
pub(crate) const STATUS_RESERVE: usize = 16;

/// What the event stream yields.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Authenticated and subscribed. `switch_restarted` is true when the switch's `Core-UUID`
    /// differs from the previous connection's: every call and job of the old instance is gone.
    Connected {
        core_uuid: String,
        switch_restarted: bool,
    },
    /// The connection was lost (or shut down); the client reconnects unless it was shut down,
    /// configured not to reconnect, or the error is fatal.
    Disconnected { reason: EslError },
    /// An event the subscription asked for.
    Event(Event),
    /// `dropped` events were discarded because the consumer fell behind (see the module doc).
    Lagged { dropped: u64 },
    /// A `log/data` line, after a `log` command.
    Log(LogData),
}

/// The consumer's side of a client's events.
///
/// Ends (yields `None`) after [`super::Client::shutdown`], after the connection is lost when
/// reconnecting is off, or after a fatal error such as a refused password, which
/// [`take_error`](Self::take_error) then returns.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<ClientEvent>,
    shared: Arc<Shared>,
}

impl EventStream {
    pub(crate) fn new(rx: mpsc::Receiver<ClientEvent>, shared: Arc<Shared>) -> Self {
        EventStream { rx, shared }
    }

    /// The next event, or `None` once the client has stopped for good.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        let ev = self.rx.recv().await;
        self.taken(&ev);
        ev
    }

    /// Frees the slot of a delivered event or log line (notices use the reserve).
    fn taken(&self, ev: &Option<ClientEvent>) {
        if matches!(ev, Some(ClientEvent::Event(_) | ClientEvent::Log(_))) {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The error that stopped the client, if one did (`AuthFailed` after a password change...).
    /// Available once the stream has ended.
    pub fn take_error(&mut self) -> Option<EslError> {
        self.shared.fatal.lock().ok()?.take()
    }

    /// Events dropped so far because this stream was not read fast enough.
    pub fn dropped_events(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl futures_util::Stream for EventStream {
    type Item = ClientEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(ev) = &polled {
            self.taken(ev);
        }
        polled
    }
}

/// The connection task's side: never blocks, applies the overflow policy.
#[derive(Debug)]
pub(crate) struct EventSink {
    tx: mpsc::Sender<ClientEvent>,
    shared: Arc<Shared>,
    /// Events and log lines the queue may hold (`event_capacity`).
    capacity: usize,
    /// Dropped since the last `Lagged` notice was delivered.
    lagged: u64,
}

impl EventSink {
    /// The queue behind `tx` must have `capacity + STATUS_RESERVE` slots.
    pub(crate) fn new(tx: mpsc::Sender<ClientEvent>, shared: Arc<Shared>, capacity: usize) -> Self {
        EventSink {
            tx,
            shared,
            capacity,
            lagged: 0,
        }
    }

    /// Delivers an event or log line, or drops and counts it when the consumer is behind.
    pub(crate) fn data(&mut self, ev: ClientEvent) {
        if self.tx.is_closed() {
            // Nobody listens (an api-only client, or a pool's secondary connection).
            return;
        }
        // Data may use `capacity` slots; the consumer frees one per item it takes. The Lagged
        // notice rides in the reserve.
        if self.shared.queued.load(Ordering::Acquire) < self.capacity {
            if self.lagged > 0 {
                let dropped = self.lagged;
                if self.tx.try_send(ClientEvent::Lagged { dropped }).is_ok() {
                    self.lagged = 0;
                }
            }
            // Counted before the send so the consumer's decrement can never run first.
            self.shared.queued.fetch_add(1, Ordering::AcqRel);
            if self.tx.try_send(ev).is_ok() {
                return;
            }
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
        }
        if self.lagged == 0 {
            tracing::warn!("event consumer is behind; dropping events until it catches up");
        }
        self.lagged += 1;
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Delivers a connection notice, using the reserve if need be.
    pub(crate) fn status(&mut self, ev: ClientEvent) {
        match self.tx.try_send(ev) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => {
                tracing::warn!(notice = ?ev, "event queue full, reserve included; notice dropped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(capacity: usize) -> (EventSink, EventStream) {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel(capacity + STATUS_RESERVE);
        (
            EventSink::new(tx, Arc::clone(&shared), capacity),
            EventStream::new(rx, shared),
        )
    }

    fn event(seq: u64) -> ClientEvent {
        ClientEvent::Event(Event::from_parts(
            crate::EventFormat::Plain,
            crate::codec::Headers::from_pairs([("Event-Sequence", seq.to_string())]),
            None,
        ))
    }

    #[tokio::test]
    async fn full_queue_drops_the_newest_and_notices_still_fit() {
        let (mut sink, mut stream) = sink(2);
        for seq in 1..=5 {
            sink.data(event(seq));
        }
        sink.status(ClientEvent::Disconnected {
            reason: EslError::ConnectionClosed,
        });
        assert_eq!(stream.dropped_events(), 3);
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(stream.recv().await.unwrap());
        }
        assert!(matches!(&got[0], ClientEvent::Event(e) if e.sequence() == Some(1)));
        assert!(matches!(&got[1], ClientEvent::Event(e) if e.sequence() == Some(2)));
        assert!(matches!(got[2], ClientEvent::Disconnected { .. }));
        // Room again: the next event is preceded by the count of what was lost.
        sink.data(event(6));
        assert!(matches!(
            stream.recv().await,
            Some(ClientEvent::Lagged { dropped: 3 })
        ));
        assert!(
            matches!(stream.recv().await, Some(ClientEvent::Event(e)) if e.sequence() == Some(6))
        );
    }

    #[tokio::test]
    async fn a_dropped_stream_is_not_counted_as_lag() {
        let (mut sink, stream) = sink(1);
        let shared = Arc::clone(&stream.shared);
        drop(stream);
        for seq in 0..10 {
            sink.data(event(seq));
        }
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 0);
    }
}
