//! One direction of a call: the RTP streams that carry it, their reorder queue, and the
//! leg's own timeline of written samples.
//!
//! Positions are sample indices on the capture's timeline (0 = when the capture started).
//! A stream is anchored once, by the arrival of its first packet; from then on its packets
//! are placed by RTP timestamp, so network jitter does not move audio, and a timestamp gap
//! (loss, FreeSWITCH's +320 step, a DTMF span) becomes exactly that much silence.
//!
//! ```text
//!   push ──> stream (SSRC): duplicate? stray? timestamp -> position
//!              │
//!              ├── telephone-event ──> tone span (silenced) + digit event
//!              └── audio ──> reorder queue ──(window)──> write: gap -> zeros, decode
//!                                                               │
//!                                  ready samples [out_pos, cursor) <─┘ ──> capture output
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use crate::capture::{Admission, CaptureEvent, Events};
use crate::config::{Leg, PayloadFormat};
use crate::g711::{alaw_to_linear, ulaw_to_linear};
use crate::jitter::{Queued, Release, ReorderQueue};
use crate::rtp::{RtpPacket, TelephoneEvent};
use crate::stream::{SeqVerdict, Stream};

/// SSRCs remembered per leg. A leg normally has one; a re-INVITE or transfer brings a new
/// one while stragglers of the old one may still arrive. At the bound the stream heard from
/// least recently is forgotten (its loss is kept in the totals).
const MAX_STREAMS: usize = 4;
/// DTMF spans remembered for silencing; more than this many events within one reorder
/// window is not a keypad. At the bound the oldest span is forgotten.
const MAX_TONE_SPANS: usize = 16;

/// What happened on one leg. `lost` counts sequence numbers never received (RFC 3550's
/// cumulative loss, per stream and per run of sequence numbers); a packet that came too late
/// to be written is `late`, not lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    /// Datagrams pushed, good or bad.
    pub packets: u64,
    /// Bytes of those datagrams.
    pub bytes: u64,
    pub lost: u64,
    /// Arrived after their place on the timeline was written, or had no place a stream can
    /// have: a lone sequence jump, a reordered packet from beyond `resync_after`.
    pub late: u64,
    pub duplicates: u64,
    /// Not RTP, truncated, or a payload whose length does not fit its format.
    pub malformed: u64,
    /// A payload type the capture was not told about (RTCP on the RTP port lands here too).
    pub unknown_payload: u64,
    /// RFC 4733 events (one per key press, however many packets carry it).
    pub dtmf: u64,
    /// Streams re-anchored on arrival: a timestamp jump past `resync_after`, a restart.
    pub resyncs: u64,
    /// SSRCs seen.
    pub streams: u64,
}

impl LegStats {
    /// Adds `other` into these counters (totals over legs or recordings).
    pub fn add(&mut self, other: &LegStats) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.lost += other.lost;
        self.late += other.late;
        self.duplicates += other.duplicates;
        self.malformed += other.malformed;
        self.unknown_payload += other.unknown_payload;
        self.dtmf += other.dtmf;
        self.resyncs += other.resyncs;
        self.streams += other.streams;
    }
}

/// The configuration in the units the legs work in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) sample_rate: u32,
    pub(crate) window: Duration,
    pub(crate) window_samples: u64,
    pub(crate) resync_samples: u64,
}

impl Limits {
    pub(crate) fn at(&self, pos: u64) -> Duration {
        let nanos = u128::from(pos) * 1_000_000_000 / u128::from(self.sample_rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// When a datagram arrived: the clock, and the timeline position the clock stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    pub(crate) now: Duration,
    pub(crate) pos: u64,
}

/// A span of the timeline to silence: [start, end).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    end: u64,
}

/// Samples written and not yet output: a `Vec` read from `start`, so decoding appends to a
/// plain slice and output reads one (a `VecDeque` costs a bounds-and-wrap check per sample,
/// which showed in the benchmark's profile). Output usually takes everything, which empties
/// it; otherwise the consumed front is dropped once it is the larger part.
const SHRINK_ABOVE: usize = 4096;

#[derive(Debug, Default)]
struct Ready {
    buf: Vec<i16>,
    start: usize,
}

impl Ready {
    fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    fn as_slice(&self) -> &[i16] {
        &self.buf[self.start..]
    }

    fn as_mut_slice(&mut self) -> &mut [i16] {
        &mut self.buf[self.start..]
    }

    fn silence(&mut self, samples: usize) {
        self.buf.resize(self.buf.len() + samples, 0);
    }

    fn consume(&mut self, samples: usize) {
        self.start = (self.start + samples).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            // A long silence written at once (a leg's first packet) is not kept as capacity.
            if self.buf.capacity() > SHRINK_ABOVE {
                self.buf.shrink_to(SHRINK_ABOVE / 4);
            }
        } else if self.start > self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[derive(Debug)]
pub(crate) struct LegState {
    leg: Leg,
    streams: Vec<Stream>,
    queue: ReorderQueue,
    /// Next position to write.
    cursor: u64,
    /// Written samples the capture has not output yet: positions [cursor - len, cursor).
    ready: Ready,
    tone_spans: VecDeque<Span>,
    /// (SSRC, extended start timestamp) of the last telephone-event reported.
    last_event: Option<(u32, i64)>,
    last_arrival: Option<Duration>,
    /// End of the newest audio placed on this leg: where a new stream continues.
    audio_end: Option<u64>,
    /// Counters; `lost` holds only what forgotten streams lost.
    stats: LegStats,
}

impl LegState {
    pub(crate) fn new(leg: Leg, max_queued: usize) -> Self {
        LegState {
            leg,
            streams: Vec::with_capacity(MAX_STREAMS),
            queue: ReorderQueue::new(max_queued),
            cursor: 0,
            ready: Ready::default(),
            tone_spans: VecDeque::new(),
            last_event: None,
            last_arrival: None,
            audio_end: None,
            stats: LegStats::default(),
        }
    }

    pub(crate) fn count_datagram(&mut self, bytes: usize) {
        self.stats.packets += 1;
        self.stats.bytes += bytes as u64;
    }

    pub(crate) fn count_malformed(&mut self) -> Admission {
        self.stats.malformed += 1;
        Admission::Malformed
    }

    pub(crate) fn count_unknown_payload(&mut self) -> Admission {
        self.stats.unknown_payload += 1;
        Admission::UnknownPayloadType
    }

    /// Takes one parsed packet of a known format.
    pub(crate) fn push(
        &mut self,
        arrival: Arrival,
        packet: &RtpPacket<'_>,
        format: PayloadFormat,
        limits: &Limits,
        events: &mut Events,
    ) -> Admission {
        // Length checks first: a packet that cannot be played must not move any state.
        let (samples, tone) = match format {
            PayloadFormat::Pcmu | PayloadFormat::Pcma => (packet.payload.len() as u64, None),
            PayloadFormat::L16 if packet.payload.len().is_multiple_of(2) => {
                (packet.payload.len() as u64 / 2, None)
            }
            PayloadFormat::L16 => return self.count_malformed(),
            PayloadFormat::TelephoneEvent => match TelephoneEvent::parse(packet.payload) {
                Ok(event) => (u64::from(event.duration), Some(event)),
                Err(_) => return self.count_malformed(),
            },
        };
        self.last_arrival = Some(arrival.now);

        let (index, extended_ts) = match self.place(arrival, packet, limits, events) {
            Ok(placed) => placed,
            Err(dropped) => return dropped,
        };
        let pos = self.streams[index].position(extended_ts);
        let Ok(pos) = u64::try_from(pos) else {
            // Before the capture started: only a straggler gets here.
            self.stats.late += 1;
            return Admission::Late;
        };
        let end = pos + samples;

        if let Some(event) = tone {
            self.note_tone(packet.ssrc, extended_ts, pos, end, &event, limits, events);
            self.audio_end = Some(self.audio_end.map_or(end, |e| e.max(end)));
            return Admission::Dtmf;
        }
        if end <= self.cursor {
            self.stats.late += 1;
            return Admission::Late;
        }
        let queued = Queued {
            pos,
            len: samples,
            arrival: arrival.now,
            format,
            payload: self.queue.buffer(packet.payload),
        };
        if let Err(refused) = self.queue.insert(queued) {
            self.queue.recycle(refused.payload);
            self.stats.duplicates += 1;
            return Admission::Duplicate;
        }
        self.audio_end = Some(self.audio_end.map_or(end, |e| e.max(end)));
        // The hard bound holds at every push, not only when the caller polls.
        self.release(Release {
            now: arrival.now,
            window: limits.window,
            window_samples: limits.window_samples,
            all: false,
        });
        Admission::Queued
    }

    /// Finds or opens the packet's stream, judges its sequence number, and returns its
    /// index and the packet's extended timestamp, or why the packet is dropped (a duplicate;
    /// a stray sequence jump, counted late).
    fn place(
        &mut self,
        arrival: Arrival,
        packet: &RtpPacket<'_>,
        limits: &Limits,
        events: &mut Events,
    ) -> Result<(usize, i64), Admission> {
        let Some(index) = self
            .streams
            .iter()
            .position(|stream| stream.ssrc == packet.ssrc)
        else {
            let start = self.start_position(arrival.pos, limits);
            self.open_stream(packet, start, arrival.now, limits, events);
            let index = self.streams.len() - 1;
            return Ok((
                index,
                self.streams[index].extend_timestamp(packet.timestamp),
            ));
        };
        let verdict = self.streams[index].accept_sequence(packet.sequence);
        self.streams[index].last_arrival = arrival.now;
        let extended = match verdict {
            SeqVerdict::Duplicate => {
                self.stats.duplicates += 1;
                return Err(Admission::Duplicate);
            }
            SeqVerdict::Stray => {
                self.stats.late += 1;
                return Err(Admission::Late);
            }
            SeqVerdict::Restarted => {
                // The sender started afresh: its timestamps mean nothing relative to the old
                // ones, so it continues this leg's timeline like a new stream would.
                self.stats.resyncs += 1;
                let start = self.start_position(arrival.pos, limits);
                self.streams[index].rebase(packet.timestamp, start)
            }
            SeqVerdict::Reordered => {
                let stream = &self.streams[index];
                let extended = stream.extend_timestamp(packet.timestamp);
                // An older packet cannot carry audio from further ahead than the newest may
                // (the fuzzer found one that would have stretched the recording by seconds).
                if stream.position(extended) - arrival.pos as i64 > limits.resync_samples as i64 {
                    self.stats.late += 1;
                    return Err(Admission::Late);
                }
                extended
            }
            SeqVerdict::Newest => {
                let stream = &mut self.streams[index];
                let extended = stream.extend_timestamp(packet.timestamp);
                let drift = stream.position(extended) - arrival.pos as i64;
                if drift.unsigned_abs() > limits.resync_samples {
                    // The RTP clock and the arrival clock disagree by more than jitter can
                    // explain: a timestamp jump, or drift built up over a long call. Trust
                    // the arrival, so the two legs stay together.
                    self.stats.resyncs += 1;
                    stream.rebase(packet.timestamp, arrival.pos.max(self.cursor))
                } else {
                    stream.advance_timestamp(extended);
                    extended
                }
            }
        };
        Ok((index, extended))
    }

    /// Where a new stream (or a restarted one) starts. When the leg's audio so far ends close
    /// to the arrival (within `resync_after`), the new stream continues exactly there: a
    /// source switch mid-call (re-INVITE, transfer) carries on without a gap or an overlap
    /// that jitter would otherwise cause. A stream after a longer silence starts at its
    /// arrival. Never before what is already written.
    fn start_position(&self, arrival_pos: u64, limits: &Limits) -> u64 {
        let start = match self.audio_end {
            Some(end) if end.abs_diff(arrival_pos) <= limits.resync_samples => end,
            _ => arrival_pos,
        };
        start.max(self.cursor)
    }

    fn open_stream(
        &mut self,
        packet: &RtpPacket<'_>,
        start: u64,
        now: Duration,
        limits: &Limits,
        events: &mut Events,
    ) {
        if self.streams.len() == MAX_STREAMS
            && let Some(quietest) = self
                .streams
                .iter()
                .enumerate()
                .min_by_key(|(_, stream)| stream.last_arrival)
                .map(|(i, _)| i)
        {
            let forgotten = self.streams.swap_remove(quietest);
            self.stats.lost += forgotten.lost();
        }
        self.streams.push(Stream::new(
            packet.ssrc,
            packet.sequence,
            packet.timestamp,
            start,
            now,
        ));
        self.stats.streams += 1;
        events.push(CaptureEvent::StreamStarted {
            leg: self.leg,
            ssrc: packet.ssrc,
            at: limits.at(start),
        });
    }

    /// Records a telephone-event packet: its span is silenced, its first packet reported.
    #[allow(clippy::too_many_arguments)]
    fn note_tone(
        &mut self,
        ssrc: u32,
        extended_ts: i64,
        start: u64,
        end: u64,
        event: &TelephoneEvent,
        limits: &Limits,
        events: &mut Events,
    ) {
        // Every packet of one event has the event's start as its timestamp; its duration grows.
        match self.tone_spans.iter_mut().find(|span| span.start == start) {
            Some(span) => span.end = span.end.max(end),
            None => {
                if self.tone_spans.len() == MAX_TONE_SPANS {
                    self.tone_spans.pop_front();
                }
                self.tone_spans.push_back(Span { start, end });
            }
        }
        if self.last_event != Some((ssrc, extended_ts)) {
            self.last_event = Some((ssrc, extended_ts));
            self.stats.dtmf += 1;
            if let Some(digit) = event.digit() {
                events.push(CaptureEvent::Dtmf {
                    leg: self.leg,
                    digit,
                    at: limits.at(start),
                });
            }
        }
        // Audio already written inside the span (a sender that also sends the in-band tone).
        self.silence_written(start, end);
    }

    /// Writes every queued packet that may leave.
    pub(crate) fn release(&mut self, release: Release) {
        while let Some(packet) = self.queue.pop_ready(release) {
            self.write(packet);
        }
    }

    fn write(&mut self, packet: Queued) {
        let end = packet.end();
        if end <= self.cursor {
            self.stats.late += 1;
            self.queue.recycle(packet.payload);
            return;
        }
        // Loss, a timestamp step, a telephone-event: the gap is silence.
        self.fill_to(packet.pos);
        let from = self.cursor;
        // Samples of an overlapping packet that are already written are skipped.
        let skip = usize::try_from(from - packet.pos).unwrap_or(usize::MAX);
        match packet.format {
            PayloadFormat::Pcmu => {
                let bytes = packet.payload.get(skip..).unwrap_or(&[]);
                self.ready
                    .buf
                    .extend(bytes.iter().map(|&b| ulaw_to_linear(b)));
            }
            PayloadFormat::Pcma => {
                let bytes = packet.payload.get(skip..).unwrap_or(&[]);
                self.ready
                    .buf
                    .extend(bytes.iter().map(|&b| alaw_to_linear(b)));
            }
            PayloadFormat::L16 => {
                let bytes = packet.payload.get(skip.saturating_mul(2)..).unwrap_or(&[]);
                self.ready.buf.extend(
                    bytes
                        .chunks_exact(2)
                        .map(|pair| i16::from_be_bytes([pair[0], pair[1]])),
                );
            }
            // Never queued: telephone-events become tone spans in `push`.
            PayloadFormat::TelephoneEvent => self.ready.silence((end - from) as usize),
        }
        self.cursor = end;
        self.silence_written(from, end);
        self.queue.recycle(packet.payload);
    }

    /// Zeroes the tone spans inside [from, to) of the written samples; forgets spans that are
    /// wholly written.
    fn silence_written(&mut self, from: u64, to: u64) {
        let first = self.cursor - self.ready.len() as u64;
        for span in &self.tone_spans {
            let start = span.start.max(from).max(first);
            let end = span.end.min(to).min(self.cursor);
            for pos in start..end {
                // `first <= pos < cursor`, so the index is inside `ready`.
                if let Some(sample) = self.ready.as_mut_slice().get_mut((pos - first) as usize) {
                    *sample = 0;
                }
            }
        }
        let cursor = self.cursor;
        self.tone_spans.retain(|span| span.end > cursor);
    }

    /// Writes silence up to `target` (nothing when the leg is already there).
    pub(crate) fn fill_to(&mut self, target: u64) {
        if target > self.cursor {
            let gap = usize::try_from(target - self.cursor).unwrap_or(usize::MAX);
            self.ready.silence(gap);
            self.cursor = target;
        }
    }

    /// Nothing queued and nothing heard for a window: the leg may be advanced with silence.
    pub(crate) fn idle(&self, now: Duration, window: Duration) -> bool {
        self.queue.is_empty() && self.last_arrival.is_none_or(|at| now >= at + window)
    }

    pub(crate) fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The written samples not output yet.
    pub(crate) fn ready(&self) -> &[i16] {
        self.ready.as_slice()
    }

    /// Forgets the first `frames` ready samples (the capture has output them).
    pub(crate) fn consume(&mut self, frames: usize) {
        self.ready.consume(frames);
    }

    pub(crate) fn stats(&self) -> LegStats {
        let mut stats = self.stats;
        stats.lost += self.streams.iter().map(Stream::lost).sum::<u64>();
        stats
    }
}
