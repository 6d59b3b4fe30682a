//! The checks behind the fuzz targets. `media/tests/fuzz_regressions.rs` includes this file by
//! path, so every input found here replays under `cargo test` with the very same oracle.
//!
//! `rtp_parse`: one datagram through the RTP and telephone-event readers.
//!
//! `rtp_capture`: the input is a script of operations on one stereo capture. Each operation
//! starts with a byte: bits 0-1 the kind, bit 2 the leg, bits 3-7 the time step (x 2 ms).
//! - kind 0, raw: a length byte, then that many bytes pushed as they are;
//! - kind 1, shaped RTP: 5 bytes (selector, sequence step as i8, timestamp step as i16 in
//!   units of 8 samples, payload length) built into a version-2 packet on one of three SSRCs
//!   with PCMU, PCMA, telephone-event (101) or L16 (96), so the fuzzer explores the capture's
//!   ordering logic instead of the parser's rejections;
//! - kind 2: pause, or resume when paused;
//! - kind 3: only time passes.
//!
//! `ingest_wav`: the bytes as an uploaded recording, through the inspector. The oracle: nothing
//! panics; a report (whole, or inside a `Truncated` error) is consistent with itself: one entry
//! per channel, at most the waveform pairs asked for, each pair ordered, ratios within 0..=1, a
//! duration that is the frames at the rate, and the size of the input. Run it with the
//! dictionary of chunk tags and format GUIDs (`-dict=media/fuzz/dicts/ingest_wav.dict`) and the
//! corpus seeded from real shapes (PCM, G.711, float, extensible, cut, never finalised).
//!
//! After every operation the capture is polled dry. The oracle: nothing panics; audio blocks
//! follow each other; paused spans are silent; every datagram is counted once; after
//! `finish` everything drains, the recording reaches the call's end, and it ends no later
//! than the last audio can land.

use std::time::Duration;

use switchyard_media::rtp::{RtpPacket, TelephoneEvent, write_packet};
use switchyard_media::{Capture, CaptureConfig, CaptureOutput, Leg, PayloadFormat, PayloadMap};

pub fn parse_datagram(data: &[u8]) {
    if let Ok(packet) = RtpPacket::parse(data) {
        assert!(packet.payload.len() <= data.len().saturating_sub(12));
        assert!(!packet.payload.is_empty());
        if let Ok(event) = TelephoneEvent::parse(packet.payload) {
            let _ = event.digit();
            assert_eq!(TelephoneEvent::parse(&event.to_bytes()), Ok(event));
        }
    }
}

fn config() -> CaptureConfig {
    CaptureConfig {
        payload_types: PayloadMap::default()
            .with(96, PayloadFormat::L16)
            .expect("96 is a 7-bit payload type"),
        ..CaptureConfig::default()
    }
}

/// Per leg and SSRC slot: the last sequence number and timestamp a shaped packet used.
#[derive(Default, Clone, Copy)]
struct Counter {
    seq: u16,
    ts: u32,
}

struct Checker {
    next_frame: u64,
    /// Paused spans as the capture reported them: [start, end) in frames.
    paused: Vec<(u64, Option<u64>)>,
}

impl Checker {
    fn drain(&mut self, capture: &mut Capture, now: Duration) {
        while let Some(output) = capture.poll(now) {
            let CaptureOutput::Audio(pcm) = output else {
                continue;
            };
            assert_eq!(pcm.start, self.next_frame, "blocks follow each other");
            assert_eq!(pcm.channels, 2);
            assert_eq!(pcm.samples.len() % 2, 0);
            for (i, frame) in pcm.samples.chunks_exact(2).enumerate() {
                let pos = pcm.start + i as u64;
                let in_pause = self
                    .paused
                    .iter()
                    .any(|&(start, end)| pos >= start && end.is_none_or(|end| pos < end));
                if in_pause {
                    assert_eq!(frame, [0, 0], "frame {pos} is paused");
                }
            }
            self.next_frame += pcm.frames();
        }
    }
}

fn frames(at: Duration) -> u64 {
    (at.as_nanos() * 8000 / 1_000_000_000) as u64
}

pub fn capture_ops(data: &[u8]) {
    let mut capture = Capture::new(config(), Duration::ZERO).expect("valid config");
    let mut checker = Checker {
        next_frame: 0,
        paused: Vec::new(),
    };
    let mut counters = [[Counter::default(); 3]; 2];
    let mut now = Duration::ZERO;
    let mut pushed = 0u64;
    let mut datagram = Vec::new();
    let mut rest = data;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let leg = if op & 0x04 == 0 {
            Leg::Caller
        } else {
            Leg::Agent
        };
        now += Duration::from_millis(2 * u64::from(op >> 3));
        match op & 0x03 {
            0 => {
                let Some((&len, tail)) = rest.split_first() else {
                    break;
                };
                let len = usize::from(len).min(tail.len());
                let (bytes, tail) = tail.split_at(len);
                rest = tail;
                capture.push(now, leg, bytes);
                pushed += 1;
            }
            1 => {
                let Some((fields, tail)) = rest.split_first_chunk::<5>() else {
                    break;
                };
                rest = tail;
                let [selector, seq_step, ts_hi, ts_lo, len] = *fields;
                let slot = usize::from(selector & 0x03) % 3;
                let counter = &mut counters[usize::from(op & 0x04 != 0)][slot];
                counter.seq = counter.seq.wrapping_add_signed(i16::from(seq_step as i8));
                let ts_step = i32::from(i16::from_be_bytes([ts_hi, ts_lo])) * 8;
                counter.ts = counter.ts.wrapping_add_signed(ts_step);
                let (payload_type, payload) = match (selector >> 2) & 0x03 {
                    0 => (0, vec![selector; usize::from(len)]),
                    1 => (8, vec![len; usize::from(len)]),
                    2 => {
                        let event = TelephoneEvent {
                            event: len % 17,
                            end: selector & 0x80 != 0,
                            volume: 10,
                            duration: u16::from(len) * 8,
                        };
                        (101, event.to_bytes().to_vec())
                    }
                    _ => (96, vec![selector; usize::from(len) & !1]),
                };
                let ssrc = 0x5500 + slot as u32;
                write_packet(
                    &mut datagram,
                    payload_type,
                    selector & 0x40 != 0,
                    counter.seq,
                    counter.ts,
                    ssrc,
                    &payload,
                );
                capture.push(now, leg, &datagram);
                pushed += 1;
            }
            2 => {
                if capture.is_paused() {
                    let end = capture.resume(now).expect("was paused");
                    if let Some(open) = checker.paused.last_mut() {
                        open.1 = Some(frames(end));
                    }
                } else if let Ok(start) = capture.pause(now) {
                    checker.paused.push((frames(start), None));
                }
            }
            _ => {}
        }
        checker.drain(&mut capture, now);
    }
    let end = now + Duration::from_millis(100);
    capture.finish(end);
    checker.drain(&mut capture, end);
    assert!(capture.is_drained());
    let stats = capture.stats();
    let total = stats.total();
    assert_eq!(total.packets, pushed);
    assert!(
        total.malformed + total.unknown_payload + total.duplicates + total.late <= total.packets
    );
    // At least the call's length; at most the last audio, which lands within `resync_after`
    // (1 s) of its arrival and is at most 255 samples long. Nothing was discarded: the
    // script polls after every push.
    assert_eq!(stats.discarded_frames, 0);
    assert!(checker.next_frame >= frames(end));
    assert!(checker.next_frame <= frames(end) + 8000 + 255);
}

#[cfg(feature = "ingest")]
pub fn inspect_bytes(data: &[u8]) {
    use switchyard_media::MediaError;
    use switchyard_media::ingest::{AudioReport, InspectOptions, MAX_CHANNELS, inspect_reader};

    // An odd, small number of pairs: the merging path runs whenever a header's length is off.
    let options = InspectOptions {
        peaks: 5,
        ..InspectOptions::default()
    };
    let check = |report: &AudioReport| {
        assert_eq!(report.bytes, data.len() as u64);
        assert!(report.sample_rate > 0);
        assert!((1..=MAX_CHANNELS).contains(&usize::from(report.channels)));
        assert_eq!(report.per_channel.len(), usize::from(report.channels));
        let nanos = u128::from(report.frames) * 1_000_000_000 / u128::from(report.sample_rate);
        assert_eq!(report.duration.as_nanos(), nanos);
        assert!((0.0..=1.0).contains(&report.silence_ratio));
        assert!(report.frames_per_peak >= 1);
        let pairs = report.per_channel[0].peaks.len();
        assert!(pairs <= options.peaks);
        assert_eq!(pairs as u64, report.frames.div_ceil(report.frames_per_peak));
        for channel in &report.per_channel {
            assert_eq!(channel.peaks.len(), pairs);
            assert!((0.0..=1.0).contains(&channel.silence_ratio));
            assert!(channel.silence_ratio >= report.silence_ratio);
            assert!(channel.peak_dbfs.is_none_or(f64::is_finite));
            assert!(channel.peaks.iter().all(|&(min, max)| min <= max));
        }
    };
    match inspect_reader(std::io::Cursor::new(data), &options) {
        Ok(report) => {
            assert!(report.frames > 0);
            check(&report);
        }
        Err(MediaError::Truncated { report, .. }) => check(&report),
        Err(_) => {}
    }
}
