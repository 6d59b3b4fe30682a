//! One RTP source (SSRC) on one leg: its 16-bit sequence numbers and 32-bit timestamps
//! extended to 64 bits across wraps, the duplicates it has sent, and the offset that turns
//! its timestamps into positions on the capture's timeline.
//!
//! Extension works on the wrapping difference to the newest value seen: a sequence number
//! 65535 followed by 0 is one step forward, and a timestamp 2^32 - 160 followed by 0 is 160
//! samples forward. A small step backward is a reordered packet; a jump (more than 3,000
//! ahead or more than the 128-packet history behind) is a stray, dropped, unless the next
//! packet continues from it: then the sender restarted its numbering (RFC 3550 A.1).

/// Sequence numbers remembered for duplicate detection (a bitmap of the newest 128).
const HISTORY: u64 = 128;
/// A forward step larger than this is a sender restart, not loss (RFC 3550 A.1's MAX_DROPOUT).
const MAX_DROPOUT: u64 = 3000;

/// What a sequence number means for the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqVerdict {
    /// The newest packet so far (the sequence moved forward).
    Newest,
    /// Not seen before, but older than the newest: a reordered packet.
    Reordered,
    /// Already received.
    Duplicate,
    /// Far outside the sequence (RFC 3550 A.1: more than `MAX_DROPOUT` ahead, or further
    /// behind than the history): dropped, unless the next packet continues from it.
    Stray,
    /// The packet after a stray continued from it: the sender restarted its numbering, and
    /// the stream starts over from here (the caller re-anchors its timestamps too).
    Restarted,
}

#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) ssrc: u32,
    /// Newest extended sequence number.
    max_seq: u64,
    /// First extended sequence number of the current run (since the start or a restart).
    base_seq: u64,
    /// Packets received in the current run (unique sequence numbers).
    received: u64,
    /// Bit i set: `max_seq - i` was received.
    seen: u128,
    /// Packets lost in runs before the last restart.
    lost_before: u64,
    /// After a stray: the sequence number that would confirm a restart.
    probation: Option<u16>,
    /// Newest extended timestamp.
    max_ts: i64,
    /// capture position = extended timestamp + offset.
    offset: i64,
    /// Last time a packet of this stream arrived (for eviction: the quietest goes first).
    pub(crate) last_arrival: std::time::Duration,
}

impl Stream {
    /// A stream whose first packet (`sequence`, `timestamp`) lands at capture position `pos`.
    pub(crate) fn new(
        ssrc: u32,
        sequence: u16,
        timestamp: u32,
        pos: u64,
        now: std::time::Duration,
    ) -> Self {
        // Starting one wrap up keeps extended values positive when the next packets are
        // reordered before the first one.
        let max_seq = (1 << 16) + u64::from(sequence);
        let max_ts = (1i64 << 32) + i64::from(timestamp);
        Stream {
            ssrc,
            max_seq,
            base_seq: max_seq,
            received: 1,
            seen: 1,
            lost_before: 0,
            probation: None,
            max_ts,
            offset: pos as i64 - max_ts,
            last_arrival: now,
        }
    }

    /// Records `sequence`.
    pub(crate) fn accept_sequence(&mut self, sequence: u16) -> SeqVerdict {
        let step = i64::from(sequence.wrapping_sub(self.max_seq as u16) as i16);
        let far = step > MAX_DROPOUT as i64 || -step >= HISTORY as i64;
        if far {
            // One stray packet (a corrupt header, a straggler from long ago) must not move the
            // stream; two in a row are a sender that started counting afresh.
            if self.probation == Some(sequence) {
                self.restart(sequence);
                return SeqVerdict::Restarted;
            }
            self.probation = Some(sequence.wrapping_add(1));
            return SeqVerdict::Stray;
        }
        self.probation = None;
        if step > 0 {
            let step = step as u32;
            self.seen = if u64::from(step) >= HISTORY {
                0
            } else {
                self.seen << step
            } | 1;
            self.max_seq += u64::from(step);
            self.received += 1;
            return SeqVerdict::Newest;
        }
        let bit = 1u128 << step.unsigned_abs();
        if self.seen & bit != 0 {
            return SeqVerdict::Duplicate;
        }
        self.seen |= bit;
        self.received += 1;
        SeqVerdict::Reordered
    }

    fn restart(&mut self, sequence: u16) {
        self.lost_before = self.lost();
        // A new 65536-block above the old one keeps extended numbers increasing.
        self.max_seq = (((self.max_seq >> 16) + 2) << 16) | u64::from(sequence);
        self.base_seq = self.max_seq;
        self.received = 1;
        self.seen = 1;
        self.probation = None;
    }

    /// Packets never received: expected (span of sequence numbers) minus received, per run.
    pub(crate) fn lost(&self) -> u64 {
        let expected = self.max_seq - self.base_seq + 1;
        self.lost_before + expected.saturating_sub(self.received)
    }

    /// The extended value of `timestamp`, by its wrapping distance to the newest one.
    pub(crate) fn extend_timestamp(&self, timestamp: u32) -> i64 {
        self.max_ts + i64::from(timestamp.wrapping_sub(self.max_ts as u32) as i32)
    }

    /// Notes the timestamp of the newest packet (by sequence) as the reference for extension.
    pub(crate) fn advance_timestamp(&mut self, extended_ts: i64) {
        self.max_ts = extended_ts;
    }

    /// Where an extended timestamp lands on the capture's timeline (may be negative for a
    /// straggler from before the capture started).
    pub(crate) fn position(&self, extended_ts: i64) -> i64 {
        extended_ts + self.offset
    }

    /// Starts the timestamp afresh: `timestamp` becomes the newest and lands at `pos`.
    pub(crate) fn rebase(&mut self, timestamp: u32, pos: u64) -> i64 {
        self.max_ts = (1i64 << 32) + i64::from(timestamp);
        self.offset = pos as i64 - self.max_ts;
        self.max_ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stream(sequence: u16, timestamp: u32) -> Stream {
        Stream::new(7, sequence, timestamp, 0, Duration::ZERO)
    }

    #[test]
    fn sequence_wraps_at_65535_without_loss_or_duplicates() {
        let mut s = stream(65534, 0);
        for seq in [65535, 0, 1, 2] {
            assert_eq!(s.accept_sequence(seq), SeqVerdict::Newest);
        }
        assert_eq!(s.lost(), 0);
        assert_eq!(s.accept_sequence(0), SeqVerdict::Duplicate);
        assert_eq!(s.accept_sequence(65535), SeqVerdict::Duplicate);
    }

    #[test]
    fn reordered_sequence_numbers_fill_the_gap_they_left() {
        let mut s = stream(10, 0);
        assert_eq!(s.accept_sequence(13), SeqVerdict::Newest);
        assert_eq!(s.lost(), 2);
        assert_eq!(s.accept_sequence(11), SeqVerdict::Reordered);
        assert_eq!(s.accept_sequence(12), SeqVerdict::Reordered);
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn a_lone_jump_is_stray_and_two_in_a_row_restart_the_numbering() {
        let mut s = stream(100, 0);
        s.accept_sequence(101);
        assert_eq!(s.accept_sequence(40_000), SeqVerdict::Stray);
        assert_eq!(s.accept_sequence(102), SeqVerdict::Newest);
        // Far behind (more than the history), twice in a row.
        assert_eq!(s.accept_sequence(65_000), SeqVerdict::Stray);
        assert_eq!(s.accept_sequence(65_001), SeqVerdict::Restarted);
        assert_eq!(s.accept_sequence(65_002), SeqVerdict::Newest);
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn timestamp_wraps_at_two_to_the_32() {
        let mut s = stream(0, u32::MAX - 159);
        let first = s.extend_timestamp(u32::MAX - 159);
        let next = s.extend_timestamp(0);
        assert_eq!(next - first, 160);
        s.advance_timestamp(next);
        let older = s.extend_timestamp(u32::MAX - 319);
        assert_eq!(first - older, 160);
        assert_eq!(s.position(next), 160);
    }
}
