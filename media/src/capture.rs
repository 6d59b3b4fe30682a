//! A recorded call: up to two legs brought onto one timeline and handed out as PCM.
//!
//! The capture is sans-IO. Datagrams go in with the time they arrived, audio and events come
//! out of [`Capture::poll`], and time is only ever what the caller says it is:
//!
//! ```text
//!   push(now, leg, datagram) ─> leg: parse, place by timestamp, reorder window
//!   poll(now) ─> release what waited long enough ─> pad silent legs ─> pair the legs
//!             ─> silence paused spans ─> Audio(Pcm) | Event(...)        (None: nothing yet)
//!   finish(now) ─> everything queued is written, legs padded to a common end; poll drains
//! ```
//!
//! The timeline starts when the capture is created (position 0) and runs on the arrival
//! clock: a stream is placed where its first packet arrived, then by its RTP timestamps.
//! Both legs are written on the same timeline, so the output's frame `n` holds what each
//! direction carried at the same moment, and a leg that sends nothing still gets silence
//! (it trails the clock by `resync_after`, so a late first packet still finds its place).

use std::collections::VecDeque;
use std::time::Duration;

use crate::MediaError;
use crate::config::{CaptureConfig, Layout, Leg, PayloadMap};
use crate::jitter::Release;
use crate::leg::{Arrival, LegState, LegStats, Limits};
use crate::rtp::RtpPacket;

/// Events waiting for `poll`; at the bound newer events are dropped and counted (only a
/// caller that never polls, or a flood of SSRCs, gets there).
const MAX_EVENTS: usize = 64;
/// Pause spans not yet wholly output.
const MAX_PAUSE_SPANS: usize = 64;
/// Audio blocks hold at most a tenth of a second (the next `poll` continues), so the block
/// buffer, and a writer's, stay small even when a long silence is due at once.
const BLOCKS_PER_SECOND: usize = 10;
/// Written audio kept for a caller that does not poll; past it the oldest frames are
/// discarded (counted; the output's next block starts later, and a writer pads the hole).
const UNPOLLED_SECONDS: usize = 10;

/// What became of one pushed datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Audio waiting in the reorder window.
    Queued,
    /// An RFC 4733 event: its span is silence, its first packet a [`CaptureEvent::Dtmf`].
    Dtmf,
    Duplicate,
    /// Its place on the timeline was already written, or it has none a stream can have (a
    /// lone sequence jump; a reordered packet from further ahead than `resync_after`).
    Late,
    Malformed,
    UnknownPayloadType,
    /// Pushed after [`Capture::finish`].
    Finished,
}

/// Something other than audio that the capture noticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureEvent {
    /// A key pressed on `leg` at `at` on the recording's timeline (its span is silent).
    Dtmf { leg: Leg, digit: char, at: Duration },
    /// A new SSRC on `leg`, continuing its timeline at `at`.
    StreamStarted { leg: Leg, ssrc: u32, at: Duration },
}

/// The bounded queue of [`CaptureEvent`]s.
#[derive(Debug, Default)]
pub(crate) struct Events {
    queue: VecDeque<CaptureEvent>,
    dropped: u64,
}

impl Events {
    pub(crate) fn push(&mut self, event: CaptureEvent) {
        if self.queue.len() < MAX_EVENTS {
            self.queue.push_back(event);
        } else {
            self.dropped += 1;
        }
    }
}

/// Audio in the capture's layout: `channels` interleaved samples per frame (stereo: caller,
/// agent), starting at frame `start` of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pcm<'a> {
    pub start: u64,
    pub channels: u16,
    pub sample_rate: u32,
    pub samples: &'a [i16],
}

impl Pcm<'_> {
    pub fn frames(&self) -> u64 {
        (self.samples.len() / usize::from(self.channels.max(1))) as u64
    }
}

/// What `poll` hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureOutput<'a> {
    Audio(Pcm<'a>),
    Event(CaptureEvent),
}

/// Counters of a capture, per leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    pub caller: LegStats,
    pub agent: LegStats,
    /// Frames handed out (including silence).
    pub frames: u64,
    /// Frames discarded because the caller did not poll (see `UNPOLLED_SECONDS`).
    pub discarded_frames: u64,
    /// Events dropped at the event queue's bound.
    pub events_dropped: u64,
}

impl CaptureStats {
    pub fn leg(&self, leg: Leg) -> &LegStats {
        match leg {
            Leg::Caller => &self.caller,
            Leg::Agent => &self.agent,
        }
    }

    /// Both legs added up.
    pub fn total(&self) -> LegStats {
        let mut total = self.caller;
        total.add(&self.agent);
        total
    }
}

/// A span of the timeline written as silence whatever the legs carried; open while `end` is
/// `None`.
#[derive(Debug, Clone, Copy)]
struct PauseSpan {
    start: u64,
    end: Option<u64>,
}

/// One recorded call. See the module docs for the loop.
#[derive(Debug)]
pub struct Capture {
    config: CaptureConfig,
    limits: Limits,
    /// The caller's clock reading at position 0.
    started: Duration,
    legs: [LegState; 2],
    /// Payload types per leg: the configuration's until the SDP of a leg says otherwise
    /// (two recorder legs may negotiate different dynamic types).
    payload_types: [PayloadMap; 2],
    /// Frames handed out so far: every leg's ready samples start here.
    out_pos: u64,
    /// The last audio block (reused).
    block: Vec<i16>,
    pauses: VecDeque<PauseSpan>,
    events: Events,
    /// Set by `finish`: where the recording ends.
    end: Option<u64>,
    /// The `now` of the last `advance`, while nothing has changed since: advancing again at
    /// the same time would do nothing, and a poll loop asks once more after its last block.
    advanced_at: Option<Duration>,
    discarded_frames: u64,
}

impl Capture {
    /// A capture whose timeline starts at `now`.
    pub fn new(config: CaptureConfig, now: Duration) -> Result<Self, MediaError> {
        config.validate()?;
        let limits = Limits {
            sample_rate: config.sample_rate,
            window: config.reorder_window,
            window_samples: config.samples(config.reorder_window),
            resync_samples: config.samples(config.resync_after),
        };
        let max_queued = config.max_queued_packets;
        Ok(Capture {
            limits,
            started: now,
            legs: [
                LegState::new(Leg::Caller, max_queued),
                LegState::new(Leg::Agent, max_queued),
            ],
            payload_types: [config.payload_types.clone(), config.payload_types.clone()],
            out_pos: 0,
            block: Vec::new(),
            pauses: VecDeque::new(),
            events: Events::default(),
            end: None,
            advanced_at: None,
            discarded_frames: 0,
            config,
        })
    }

    pub fn config(&self) -> &CaptureConfig {
        &self.config
    }

    /// Replaces `leg`'s payload types, as its SDP offer/answer (or a re-INVITE) agreed them.
    /// Fails, changing nothing, when a format's clock does not suit the capture's rate.
    pub fn set_payload_types(
        &mut self,
        leg: Leg,
        payload_types: PayloadMap,
    ) -> Result<(), MediaError> {
        CaptureConfig {
            payload_types: payload_types.clone(),
            ..self.config.clone()
        }
        .validate()?;
        self.payload_types[leg.index()] = payload_types;
        Ok(())
    }

    /// Takes one datagram received on `leg` at `now`. Never fails: whatever is wrong with
    /// it is counted, and the answer says what became of it.
    pub fn push(&mut self, now: Duration, leg: Leg, datagram: &[u8]) -> Admission {
        let arrival = Arrival {
            now,
            pos: self.position_at(now),
        };
        self.advanced_at = None;
        let state = &mut self.legs[leg.index()];
        state.count_datagram(datagram.len());
        if self.end.is_some() {
            return Admission::Finished;
        }
        let Ok(packet) = RtpPacket::parse(datagram) else {
            return state.count_malformed();
        };
        let Some(format) = self.payload_types[leg.index()].get(packet.payload_type) else {
            return state.count_unknown_payload();
        };
        let admission = state.push(arrival, &packet, format, &self.limits, &mut self.events);
        self.bound_unpolled();
        admission
    }

    /// The next event or block of audio that is due at `now`; `None` when there is nothing
    /// until more datagrams arrive or time passes. Call it until `None` after every push
    /// (or batch of pushes) and on a timer (every packet time suits).
    pub fn poll(&mut self, now: Duration) -> Option<CaptureOutput<'_>> {
        if let Some(event) = self.events.queue.pop_front() {
            return Some(CaptureOutput::Event(event));
        }
        if self.advanced_at != Some(now) {
            self.advance(now);
            self.advanced_at = Some(now);
        }
        let frames = self
            .legs
            .iter()
            .map(|leg| leg.ready().len())
            .min()
            .unwrap_or(0)
            .min((self.config.sample_rate as usize / BLOCKS_PER_SECOND).max(1));
        if frames == 0 {
            return None;
        }
        let start = self.out_pos;
        self.fill_block(frames);
        for leg in &mut self.legs {
            leg.consume(frames);
        }
        self.out_pos += frames as u64;
        Some(CaptureOutput::Audio(Pcm {
            start,
            channels: self.config.layout.channels(),
            sample_rate: self.config.sample_rate,
            samples: &self.block,
        }))
    }

    /// Ends the capture at `now`: what is queued is written, and `poll` hands out the rest,
    /// up to the later of the last audio and `now`, so the recording is as long as the call.
    /// Datagrams pushed afterwards are refused.
    pub fn finish(&mut self, now: Duration) {
        if self.end.is_some() {
            return;
        }
        self.advanced_at = None;
        let release = self.release(now, true);
        for leg in &mut self.legs {
            leg.release(release);
        }
        let last_audio = self.legs.iter().map(LegState::cursor).max().unwrap_or(0);
        self.end = Some(last_audio.max(self.position_at(now)));
    }

    /// True once `finish` was called and everything has been handed out.
    pub fn is_drained(&self) -> bool {
        self.end.is_some_and(|end| self.out_pos >= end) && self.events.queue.is_empty()
    }

    /// Starts a span written as silence from `now` on, whatever the legs carry (PCI: a card
    /// number is being read). Unlike `uuid_record pause`, which leaves the span out, the
    /// span stays in the recording, so its timeline always matches the call's. Returns where
    /// the span starts on the timeline (not before what was already handed out); pausing a
    /// paused capture changes nothing.
    pub fn pause(&mut self, now: Duration) -> Result<Duration, MediaError> {
        if let Some(open) = self.pauses.back().filter(|span| span.end.is_none()) {
            return Ok(self.limits.at(open.start));
        }
        if self.pauses.len() >= MAX_PAUSE_SPANS {
            return Err(MediaError::PauseSpans {
                limit: MAX_PAUSE_SPANS,
            });
        }
        let start = self.position_at(now).max(self.out_pos);
        self.pauses.push_back(PauseSpan { start, end: None });
        Ok(self.limits.at(start))
    }

    /// Ends the open pause span at `now`; returns where it ends, or `None` when the capture
    /// was not paused.
    pub fn resume(&mut self, now: Duration) -> Option<Duration> {
        let pos = self.position_at(now);
        let open = self.pauses.back_mut().filter(|span| span.end.is_none())?;
        let end = pos.max(open.start);
        open.end = Some(end);
        Some(self.limits.at(end))
    }

    pub fn is_paused(&self) -> bool {
        self.pauses.back().is_some_and(|span| span.end.is_none())
    }

    /// Length of the audio handed out so far.
    pub fn position(&self) -> Duration {
        self.limits.at(self.out_pos)
    }

    pub fn stats(&self) -> CaptureStats {
        CaptureStats {
            caller: self.legs[Leg::Caller.index()].stats(),
            agent: self.legs[Leg::Agent.index()].stats(),
            frames: self.out_pos,
            discarded_frames: self.discarded_frames,
            events_dropped: self.events.dropped,
        }
    }

    /// The timeline position the clock reading `now` stands for.
    fn position_at(&self, now: Duration) -> u64 {
        self.config.samples(now.saturating_sub(self.started))
    }

    fn release(&self, now: Duration, all: bool) -> Release {
        Release {
            now,
            window: self.limits.window,
            window_samples: self.limits.window_samples,
            all,
        }
    }

    /// Writes what may be written at `now`, and keeps the legs within reach of each other.
    fn advance(&mut self, now: Duration) {
        let release = self.release(now, self.end.is_some());
        for leg in &mut self.legs {
            leg.release(release);
        }
        if let Some(end) = self.end {
            for leg in &mut self.legs {
                leg.fill_to(end);
            }
            return;
        }
        // A leg that has gone quiet gets silence up to `resync_after` behind the clock: far
        // enough back that its next packet, even drifted, still lands after it.
        let quiet_until = self
            .position_at(now)
            .saturating_sub(self.limits.resync_samples);
        for leg in &mut self.legs {
            if leg.idle(now, self.limits.window) {
                leg.fill_to(quiet_until);
            }
        }
        // A leg never trails the other by more than that plus two windows (a caller that
        // pushes bursts without advancing the clock would otherwise pile audio up).
        let lead = self.limits.resync_samples + 2 * self.limits.window_samples;
        let front = self.legs.iter().map(LegState::cursor).max().unwrap_or(0);
        for leg in &mut self.legs {
            leg.fill_to(front.saturating_sub(lead));
        }
    }

    /// Interleaves (stereo) or mixes (mono) the first `frames` ready samples of the legs into
    /// `block`, then silences the paused spans in it.
    fn fill_block(&mut self, frames: usize) {
        self.block.clear();
        let [caller, agent] = &self.legs;
        // `poll` took `frames` as the shorter of the two ready lengths.
        let (caller, agent) = (&caller.ready()[..frames], &agent.ready()[..frames]);
        match self.config.layout {
            Layout::Stereo => self.block.extend(
                caller
                    .iter()
                    .zip(agent)
                    .flat_map(|(&left, &right)| [left, right]),
            ),
            Layout::Mono => self
                .block
                .extend(caller.iter().zip(agent).map(|(&a, &b)| a.saturating_add(b))),
        }
        let channels = usize::from(self.config.layout.channels());
        let (from, to) = (self.out_pos, self.out_pos + frames as u64);
        for span in &self.pauses {
            let start = span.start.max(from);
            let end = span.end.unwrap_or(u64::MAX).min(to);
            if start < end {
                let range = (start - from) as usize * channels..(end - from) as usize * channels;
                self.block[range].fill(0);
            }
        }
        self.pauses
            .retain(|span| span.end.is_none_or(|end| end > to));
    }

    /// Keeps written-but-not-polled audio under `UNPOLLED_SECONDS`.
    fn bound_unpolled(&mut self) {
        let max = self.config.sample_rate as usize * UNPOLLED_SECONDS;
        let longest = self
            .legs
            .iter()
            .map(|leg| leg.ready().len())
            .max()
            .unwrap_or(0);
        if longest <= max {
            return;
        }
        let excess = longest - max;
        let target = self.out_pos + excess as u64;
        for leg in &mut self.legs {
            leg.fill_to(target);
            leg.consume(excess);
        }
        self.out_pos = target;
        self.discarded_frames += excess as u64;
    }
}
