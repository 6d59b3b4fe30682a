//! The reorder window of one leg: packets waiting, in timeline order, for the ones before
//! them.
//!
//! A packet leaves the queue (is written) when the first of these holds:
//! - it has waited `reorder_window` since it arrived (the steady state: a fixed delay);
//! - a window's worth of later audio is queued behind it (a burst read from a socket backlog
//!   at once does not pile up waiting for the clock);
//! - the queue holds more than `max_queued_packets` (the hard bound);
//! - the capture is finishing.
//!
//! Packets mostly arrive in order, so the queue is a `VecDeque` kept sorted by position:
//! appending is the common case, and a reordered packet is inserted a few slots from the end.
//! Payload buffers are recycled, so a steady stream allocates nothing.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::PayloadFormat;

/// One audio packet waiting to be written.
#[derive(Debug)]
pub(crate) struct Queued {
    /// Where its first sample lands on the capture's timeline.
    pub(crate) pos: u64,
    /// Samples it carries.
    pub(crate) len: u64,
    pub(crate) arrival: Duration,
    pub(crate) format: PayloadFormat,
    pub(crate) payload: Vec<u8>,
}

impl Queued {
    pub(crate) fn end(&self) -> u64 {
        self.pos + self.len
    }
}

#[derive(Debug)]
pub(crate) struct ReorderQueue {
    entries: VecDeque<Queued>,
    /// Payload buffers of written packets, for the next ones (at most `max` kept).
    spare: Vec<Vec<u8>>,
    max: usize,
}

/// Why the head of the queue may leave.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Release {
    pub(crate) now: Duration,
    pub(crate) window: Duration,
    pub(crate) window_samples: u64,
    /// Everything goes (the capture is finishing).
    pub(crate) all: bool,
}

impl ReorderQueue {
    pub(crate) fn new(max: usize) -> Self {
        ReorderQueue {
            // Grows to what the stream needs (a window's worth of packets), not to the bound.
            entries: VecDeque::new(),
            spare: Vec::new(),
            max,
        }
    }

    /// A buffer holding `payload`, recycled when one is free.
    pub(crate) fn buffer(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut buffer = self.spare.pop().unwrap_or_default();
        buffer.clear();
        buffer.extend_from_slice(payload);
        buffer
    }

    pub(crate) fn recycle(&mut self, buffer: Vec<u8>) {
        if self.spare.len() < self.max {
            self.spare.push(buffer);
        }
    }

    /// Queues a packet in position order. Gives it back when a packet already holds that
    /// position (a duplicate that slipped past the sequence history, e.g. after a restart).
    pub(crate) fn insert(&mut self, packet: Queued) -> Result<(), Queued> {
        let at = match self.entries.back() {
            Some(last) if last.pos < packet.pos => self.entries.len(),
            None => 0,
            Some(_) => match self
                .entries
                .binary_search_by_key(&packet.pos, |queued| queued.pos)
            {
                Ok(_) => return Err(packet),
                Err(at) => at,
            },
        };
        self.entries.insert(at, packet);
        Ok(())
    }

    /// The head, if it may leave now.
    pub(crate) fn pop_ready(&mut self, release: Release) -> Option<Queued> {
        let head = self.entries.front()?;
        // Present: the front exists, so the back does too.
        let newest_end = self.entries.back().map_or(0, Queued::end);
        let ready = release.all
            || self.entries.len() > self.max
            || release.now >= head.arrival + release.window
            || newest_end >= head.end() + release.window_samples;
        if ready {
            self.entries.pop_front()
        } else {
            None
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pos: u64, arrival_ms: u64) -> Queued {
        Queued {
            pos,
            len: 160,
            arrival: Duration::from_millis(arrival_ms),
            format: PayloadFormat::Pcmu,
            payload: vec![0xFF; 160],
        }
    }

    fn release(now_ms: u64) -> Release {
        Release {
            now: Duration::from_millis(now_ms),
            window: Duration::from_millis(80),
            window_samples: 640,
            all: false,
        }
    }

    #[test]
    fn keeps_packets_in_timeline_order_whatever_the_arrival_order() {
        let mut queue = ReorderQueue::new(50);
        for pos in [320, 0, 480, 160] {
            queue.insert(packet(pos, 0)).unwrap();
        }
        assert!(queue.insert(packet(160, 0)).is_err());
        let order: Vec<u64> = std::iter::from_fn(|| {
            queue.pop_ready(Release {
                all: true,
                ..release(0)
            })
        })
        .map(|q| q.pos)
        .collect();
        assert_eq!(order, [0, 160, 320, 480]);
    }

    #[test]
    fn holds_a_packet_for_the_window_then_lets_it_go() {
        let mut queue = ReorderQueue::new(50);
        queue.insert(packet(0, 100)).unwrap();
        assert!(queue.pop_ready(release(179)).is_none());
        assert!(queue.pop_ready(release(180)).is_some());
    }

    #[test]
    fn lets_a_packet_go_early_when_a_window_of_audio_is_queued_behind_it() {
        let mut queue = ReorderQueue::new(50);
        for (i, pos) in (0..5u64).map(|i| (i, i * 160)) {
            queue.insert(packet(pos, 100 + i)).unwrap();
        }
        // The last packet ends 640 samples (80 ms) after the first one ends.
        assert_eq!(queue.pop_ready(release(101)).map(|q| q.pos), Some(0));
        assert!(queue.pop_ready(release(101)).is_none());
    }

    #[test]
    fn never_holds_more_than_its_bound() {
        let mut queue = ReorderQueue::new(3);
        for pos in [0, 160, 320, 480] {
            queue.insert(packet(pos, 0)).unwrap();
        }
        assert_eq!(queue.len(), 4);
        assert!(queue.pop_ready(release(0)).is_some());
        assert!(queue.pop_ready(release(0)).is_none());
    }
}
