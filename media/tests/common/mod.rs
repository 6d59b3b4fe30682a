//! Test bed for the capture: senders that packetise known audio the way FreeSWITCH does,
//! a driver that pushes datagrams at their arrival times and polls on a 20 ms tick, and
//! Goertzel to tell tones apart by frequency and phase.
#![allow(dead_code)]

use std::time::Duration;

use switchyard_media::g711::linear_to_ulaw;
use switchyard_media::rtp::{TelephoneEvent, write_packet};
use switchyard_media::{Capture, CaptureConfig, CaptureEvent, CaptureOutput, Leg};

pub const RATE: u32 = 8000;
pub const PTIME: Duration = Duration::from_millis(20);
pub const SAMPLES_PER_PACKET: usize = 160;

/// `n` samples of a cosine at `freq` Hz, amplitude `amp`, whose sample 0 is at `phase`.
pub fn tone(freq: f64, amp: f64, phase: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            (amp * (2.0 * std::f64::consts::PI * freq * t + phase).cos()).round() as i16
        })
        .collect()
}

/// One RTP stream as a sender numbers it.
#[derive(Debug, Clone)]
pub struct Sender {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    pub payload_type: u8,
    pub first: bool,
}

impl Sender {
    pub fn new(ssrc: u32, seq: u16, ts: u32) -> Self {
        Sender {
            ssrc,
            seq,
            ts,
            payload_type: 0,
            first: true,
        }
    }

    /// The next PCMU packet carrying `samples`; the timestamp advances by their count.
    pub fn audio(&mut self, samples: &[i16]) -> Vec<u8> {
        let payload: Vec<u8> = samples.iter().map(|&s| linear_to_ulaw(s)).collect();
        let mut out = Vec::new();
        write_packet(
            &mut out,
            self.payload_type,
            self.first,
            self.seq,
            self.ts,
            self.ssrc,
            &payload,
        );
        self.first = false;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(samples.len() as u32);
        out
    }

    /// A telephone-event packet (PT 101) for an event starting at timestamp `start`.
    pub fn event(&mut self, start: u32, event: u8, duration: u16, end: bool) -> Vec<u8> {
        let payload = TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes();
        let mut out = Vec::new();
        write_packet(&mut out, 101, false, self.seq, start, self.ssrc, &payload);
        self.seq = self.seq.wrapping_add(1);
        out
    }
}

/// A datagram and when it reaches the recorder.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub at: Duration,
    pub leg: Leg,
    pub datagram: Vec<u8>,
}

/// Packetises `audio` (20 ms per packet) sent from `start` on; packet `k` arrives at
/// `start + k * 20 ms`.
pub fn stream(sender: &mut Sender, leg: Leg, start: Duration, audio: &[i16]) -> Vec<Arrival> {
    audio
        .chunks(SAMPLES_PER_PACKET)
        .enumerate()
        .map(|(k, chunk)| Arrival {
            at: start + PTIME * k as u32,
            leg,
            datagram: sender.audio(chunk),
        })
        .collect()
}

/// What came out of a capture.
#[derive(Debug, Default)]
pub struct Output {
    pub channels: Vec<Vec<i16>>,
    pub events: Vec<CaptureEvent>,
}

impl Output {
    pub fn left(&self) -> &[i16] {
        &self.channels[0]
    }
    pub fn right(&self) -> &[i16] {
        &self.channels[1]
    }
    pub fn frames(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }
}

/// Polls until `None`, appending audio per channel (checking blocks follow each other).
pub fn drain(capture: &mut Capture, now: Duration, out: &mut Output) {
    while let Some(output) = capture.poll(now) {
        match output {
            CaptureOutput::Audio(pcm) => {
                let channels = usize::from(pcm.channels);
                if out.channels.is_empty() {
                    out.channels = vec![Vec::new(); channels];
                }
                assert_eq!(
                    pcm.start as usize,
                    out.channels[0].len(),
                    "blocks are contiguous"
                );
                for frame in pcm.samples.chunks_exact(channels) {
                    for (c, &s) in frame.iter().enumerate() {
                        out.channels[c].push(s);
                    }
                }
            }
            CaptureOutput::Event(event) => out.events.push(event),
        }
    }
}

/// Runs a capture created at time zero over `arrivals` (in any order: they are sorted by
/// arrival time, ties kept in the given order), polling after each push and on a 20 ms tick,
/// and finishes it at `end`.
pub fn run(config: CaptureConfig, arrivals: &[Arrival], end: Duration) -> (Output, Capture) {
    run_with(config, arrivals, end, |_, _| {})
}

/// `run`, calling `on_tick(capture, now)` at every 20 ms tick before polling.
pub fn run_with(
    config: CaptureConfig,
    arrivals: &[Arrival],
    end: Duration,
    mut on_tick: impl FnMut(&mut Capture, Duration),
) -> (Output, Capture) {
    let mut capture = Capture::new(config, Duration::ZERO).expect("valid config");
    let mut arrivals = arrivals.to_vec();
    arrivals.sort_by_key(|a| a.at);
    let mut out = Output::default();
    let mut tick = Duration::ZERO;
    for arrival in &arrivals {
        while tick < arrival.at {
            on_tick(&mut capture, tick);
            drain(&mut capture, tick, &mut out);
            tick += PTIME;
        }
        capture.push(arrival.at, arrival.leg, &arrival.datagram);
        drain(&mut capture, arrival.at, &mut out);
    }
    while tick < end {
        on_tick(&mut capture, tick);
        drain(&mut capture, tick, &mut out);
        tick += PTIME;
    }
    capture.finish(end);
    drain(&mut capture, end, &mut out);
    assert!(capture.is_drained());
    (out, capture)
}

/// Goertzel: (magnitude normalised to the tone's amplitude, phase in radians) of `freq` in
/// `samples`.
pub fn goertzel(samples: &[i16], freq: f64) -> (f64, f64) {
    let n = samples.len() as f64;
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(RATE);
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &s) in samples.iter().enumerate() {
        let angle = w * i as f64;
        re += f64::from(s) * angle.cos();
        im -= f64::from(s) * angle.sin();
    }
    ((re * re + im * im).sqrt() * 2.0 / n, im.atan2(re))
}

/// The frequency among `candidates` with the most energy in `samples`.
pub fn dominant(samples: &[i16], candidates: &[f64]) -> f64 {
    candidates
        .iter()
        .copied()
        .max_by(|a, b| goertzel(samples, *a).0.total_cmp(&goertzel(samples, *b).0))
        .expect("candidates")
}

/// Phase difference a - b wrapped into (-pi, pi].
pub fn phase_diff(a: f64, b: f64) -> f64 {
    let mut d = a - b;
    while d > std::f64::consts::PI {
        d -= 2.0 * std::f64::consts::PI;
    }
    while d <= -std::f64::consts::PI {
        d += 2.0 * std::f64::consts::PI;
    }
    d
}

/// The decoded reference: what `audio` becomes after PCMU, for exact comparisons.
pub fn through_pcmu(audio: &[i16]) -> Vec<i16> {
    audio
        .iter()
        .map(|&s| switchyard_media::g711::ulaw_to_linear(linear_to_ulaw(s)))
        .collect()
}

// ---- the FreeSWITCH capture --------------------------------------------------------------

/// `../shared/esl-captures` beside the workspace; `SWITCHYARD_CAPTURES` overrides.
pub fn captures_dir() -> std::path::PathBuf {
    if let Ok(dir) = std::env::var("SWITCHYARD_CAPTURES") {
        return std::path::PathBuf::from(dir);
    }
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/esl-captures")
}

/// One frame of a UDPCAP/1 file: its flow (`sip`, `rtp-rec-a`, ...), direction (`FS>UAS`,
/// `UAS>FS`), arrival time in seconds and datagram.
#[derive(Debug, Clone)]
pub struct Frame {
    pub flow: String,
    pub dir: String,
    pub t: f64,
    pub body: Vec<u8>,
}

/// Every frame of `eavesdrop-recorder-leg.udp.bin`, in order.
pub fn recorder_leg_frames() -> Vec<Frame> {
    let path = captures_dir().join("eavesdrop-recorder-leg.udp.bin");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut frames = Vec::new();
    // Frames start at a line beginning with "@@ " (the header's comments mention "@@" too);
    // after a frame, its body and one "\n" separator.
    let mut rest = &bytes[..];
    while let Some(at) = rest.windows(4).position(|w| w == b"\n@@ ") {
        rest = &rest[at + 1..];
        let line_end = rest.iter().position(|&b| b == b'\n').expect("frame line");
        let line = std::str::from_utf8(&rest[..line_end]).expect("ascii frame line");
        let field = |name: &str| {
            line.split(' ')
                .find_map(|f| f.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} in {line}"))
                .to_owned()
        };
        let len: usize = field("len=").parse().unwrap();
        frames.push(Frame {
            flow: field("flow="),
            dir: field("dir="),
            t: field("t=").parse().unwrap(),
            body: rest[line_end + 1..line_end + 1 + len].to_vec(),
        });
        rest = &rest[line_end + len..];
    }
    frames
}
