//! The capture core end to end: RTP in, aligned PCM out, against references computed from
//! the audio that was sent. Every expectation is on samples (exact where the timeline is
//! exact) or on frequency and phase; none is on sizes or wall-clock time.

mod common;

use std::time::Duration;

use common::*;
use switchyard_media::{Admission, Capture, CaptureConfig, CaptureEvent, Layout, Leg};

const SECOND: usize = RATE as usize;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A caller stream of `seconds` of 440 Hz sent from time zero, on time.
fn caller_tone(seconds: usize) -> (Vec<i16>, Vec<Arrival>) {
    let audio = tone(440.0, 8000.0, 0.3, seconds * SECOND);
    let arrivals = stream(
        &mut Sender::new(0x1111, 1000, 5000),
        Leg::Caller,
        Duration::ZERO,
        &audio,
    );
    (audio, arrivals)
}

fn silence_where(reference: &[i16], packets: &[usize]) -> Vec<i16> {
    let mut expected = through_pcmu(reference);
    for &k in packets {
        expected[k * SAMPLES_PER_PACKET..(k + 1) * SAMPLES_PER_PACKET].fill(0);
    }
    expected
}

#[test]
fn in_order_packets_come_out_sample_exact_with_a_silent_right_channel() {
    let (audio, arrivals) = caller_tone(2);
    let (out, capture) = run(CaptureConfig::default(), &arrivals, ms(2000));
    assert_eq!(out.left(), through_pcmu(&audio).as_slice());
    assert!(out.right().iter().all(|&s| s == 0));
    let stats = capture.stats();
    assert_eq!(stats.caller.packets, 100);
    assert_eq!(stats.caller.bytes, 100 * 172);
    assert_eq!(
        (
            stats.caller.lost,
            stats.caller.late,
            stats.caller.duplicates
        ),
        (0, 0, 0)
    );
    assert_eq!(stats.agent.packets, 0);
}

#[test]
fn reorders_out_of_order_packets_within_the_window() {
    let (audio, mut arrivals) = caller_tone(2);
    // Swap neighbours and delay some by up to 60 ms (the window is 80 ms).
    for k in (1..99).step_by(3) {
        arrivals[k].at += ms(25);
    }
    for k in (2..99).step_by(7) {
        arrivals[k].at += ms(60);
    }
    let (out, capture) = run(CaptureConfig::default(), &arrivals, ms(2000));
    assert_eq!(out.left(), through_pcmu(&audio).as_slice());
    assert_eq!(capture.stats().caller.late, 0);
}

#[test]
fn fills_lost_packets_with_silence_of_their_length() {
    let (audio, mut arrivals) = caller_tone(2);
    let lost = [10, 11, 50, 99];
    for &k in lost.iter().rev() {
        arrivals.remove(k);
    }
    let (out, capture) = run(CaptureConfig::default(), &arrivals, ms(2000));
    assert_eq!(out.left(), silence_where(&audio, &lost).as_slice());
    // Packet 99 was the last: nothing after it tells it was lost.
    assert_eq!(capture.stats().caller.lost, 3);
}

#[test]
fn drops_duplicates_and_counts_them() {
    let (audio, arrivals) = caller_tone(1);
    let mut doubled = arrivals.clone();
    for arrival in &arrivals {
        doubled.push(Arrival {
            at: arrival.at + ms(5),
            ..arrival.clone()
        });
    }
    // One duplicate long after its original was written: still a duplicate, not late.
    doubled.push(Arrival {
        at: ms(600),
        ..arrivals[3].clone()
    });
    let (out, capture) = run(CaptureConfig::default(), &doubled, ms(1000));
    assert_eq!(out.left(), through_pcmu(&audio).as_slice());
    assert_eq!(capture.stats().caller.duplicates, 51);
    assert_eq!(capture.stats().caller.late, 0);
}

#[test]
fn late_packet_past_the_window_is_counted_and_dropped() {
    let (audio, mut arrivals) = caller_tone(2);
    arrivals[30].at += ms(300);
    let (out, capture) = run(CaptureConfig::default(), &arrivals, ms(2000));
    assert_eq!(out.left(), silence_where(&audio, &[30]).as_slice());
    let stats = capture.stats().caller;
    assert_eq!((stats.late, stats.lost), (1, 0));
}

#[test]
fn sequence_number_wraps_at_65535_without_a_gap() {
    let audio = tone(440.0, 8000.0, 0.3, 2 * SECOND);
    let arrivals = stream(
        &mut Sender::new(9, 65_500, 0),
        Leg::Caller,
        Duration::ZERO,
        &audio,
    );
    let (out, capture) = run(CaptureConfig::default(), &arrivals, ms(2000));
    assert_eq!(out.left(), through_pcmu(&audio).as_slice());
    assert_eq!(capture.stats().caller.lost, 0);
}

#[test]
fn timestamp_wraps_at_two_to_the_32_without_a_gap() {
    let audio = tone(440.0, 8000.0, 0.3, 2 * SECOND);
    let mut sender = Sender::new(9, 7, u32::MAX - 160 * 20 + 1);
    let mut arrivals = stream(&mut sender, Leg::Caller, Duration::ZERO, &audio);
    // Reordered across the wrap too.
    arrivals[20].at += ms(30);
    let (out, capture) = run(CaptureConfig::default(), &arrivals, ms(2000));
    assert_eq!(out.left(), through_pcmu(&audio).as_slice());
    assert_eq!(capture.stats().caller.resyncs, 0);
}

#[test]
fn ssrc_change_mid_call_continues_the_leg_timeline() {
    let audio = tone(440.0, 8000.0, 0.3, 3 * SECOND);
    let (first, second) = audio.split_at(75 * SAMPLES_PER_PACKET);
    let mut arrivals = stream(
        &mut Sender::new(1, 1000, 5000),
        Leg::Caller,
        Duration::ZERO,
        first,
    );
    let mut next = stream(
        &mut Sender::new(2, 60_000, 4_000_000_000),
        Leg::Caller,
        ms(1500),
        second,
    );
    // The new source's first packet is 15 ms late: it still continues where the old one ended.
    next[0].at += ms(15);
    arrivals.extend(next);
    let (out, capture) = run(CaptureConfig::default(), &arrivals, ms(3000));
    assert_eq!(out.left(), through_pcmu(&audio).as_slice());
    let started: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| match e {
            CaptureEvent::StreamStarted { ssrc, at, .. } => Some((*ssrc, *at)),
            _ => None,
        })
        .collect();
    assert_eq!(started, [(1, Duration::ZERO), (2, ms(1500))]);
    assert_eq!(capture.stats().caller.streams, 2);
}

#[test]
fn freeswitch_plus_320_step_leaves_one_packet_of_silence() {
    // As in esl-captures/eavesdrop-recorder-leg.md: seq +1, timestamp +320 once, on time.
    let audio = tone(440.0, 8000.0, 0.3, 2 * SECOND);
    let mut sender = Sender::new(1, 44_668, 160);
    let mut arrivals = Vec::new();
    for (k, chunk) in audio.chunks(SAMPLES_PER_PACKET).enumerate() {
        if k == 40 {
            sender.ts = sender.ts.wrapping_add(160);
        }
        arrivals.push(Arrival {
            at: PTIME * k as u32,
            leg: Leg::Caller,
            datagram: sender.audio(chunk),
        });
    }
    let (out, capture) = run(CaptureConfig::default(), &arrivals, ms(2020));
    let decoded = through_pcmu(&audio);
    let split = 40 * SAMPLES_PER_PACKET;
    assert_eq!(&out.left()[..split], &decoded[..split]);
    assert!(out.left()[split..split + 160].iter().all(|&s| s == 0));
    assert_eq!(&out.left()[split + 160..], &decoded[split..]);
    assert_eq!(capture.stats().caller.resyncs, 0);
}

#[test]
fn timestamp_jump_past_resync_is_reanchored_on_arrival() {
    let audio = tone(440.0, 8000.0, 0.3, 3 * SECOND);
    let mut sender = Sender::new(1, 1, 0);
    let mut arrivals = Vec::new();
    for (k, chunk) in audio.chunks(SAMPLES_PER_PACKET).enumerate() {
        if k == 51 {
            // Ten seconds of timestamps skipped while packets keep coming every 20 ms.
            sender.ts = sender.ts.wrapping_add(80_000);
        }
        arrivals.push(Arrival {
            at: PTIME * k as u32,
            leg: Leg::Caller,
            datagram: sender.audio(chunk),
        });
    }
    let (out, capture) = run(CaptureConfig::default(), &arrivals, ms(3000));
    assert_eq!(out.left(), through_pcmu(&audio).as_slice());
    assert_eq!(capture.stats().caller.resyncs, 1);
}

#[test]
fn both_directions_stay_aligned_to_the_sample_through_jitter_loss_and_duplicates() {
    // Caller: silence, then 440 Hz from 1.000 s. Agent: its stream starts 37 ms into the call
    // with unrelated sequence and timestamp bases; silence, then 1000 Hz from 1.250 s.
    let caller_onset = SECOND;
    let agent_start = 296; // 37 ms
    let agent_onset = SECOND + SECOND / 4;
    let mut caller_audio = vec![0i16; 3 * SECOND];
    caller_audio[caller_onset..].copy_from_slice(&tone(440.0, 8000.0, 0.0, 2 * SECOND));
    let mut agent_audio = vec![0i16; 3 * SECOND - agent_start];
    let agent_len = agent_audio.len() - (agent_onset - agent_start);
    agent_audio[agent_onset - agent_start..].copy_from_slice(&tone(1000.0, 8000.0, 0.0, agent_len));

    let mut arrivals = stream(
        &mut Sender::new(0xCA11, 3, 77),
        Leg::Caller,
        Duration::ZERO,
        &caller_audio,
    );
    let mut agent = stream(
        &mut Sender::new(0xA6E7, 64_000, 3_000_000_000),
        Leg::Agent,
        ms(37),
        &agent_audio,
    );
    // Jitter of 0-55 ms on all but each stream's first packet; a few lost; a few doubled.
    let mut rng = 0x2545_f491_u64;
    let mut jitter = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        ms(rng % 56)
    };
    for arrival in arrivals.iter_mut().skip(1).chain(agent.iter_mut().skip(1)) {
        arrival.at += jitter();
    }
    let duplicates: Vec<Arrival> = arrivals.iter().step_by(9).cloned().collect();
    arrivals.extend(duplicates);
    agent.remove(100);
    agent.remove(20);
    arrivals.remove(120);
    arrivals.extend(agent);
    let (out, capture) = run(CaptureConfig::default(), &arrivals, ms(3000));

    let onset = |samples: &[i16]| samples.iter().position(|&s| s != 0);
    assert_eq!(onset(out.left()), Some(caller_onset));
    assert_eq!(onset(out.right()), Some(agent_onset));
    let window = &(2 * SECOND..3 * SECOND);
    assert_eq!(
        dominant(&out.left()[window.clone()], &[440.0, 1000.0]),
        440.0
    );
    assert_eq!(
        dominant(&out.right()[window.clone()], &[440.0, 1000.0]),
        1000.0
    );
    // Both cosines start with phase 0 at their onsets, 2000 samples apart: measured over the
    // same frames, their phases must differ by exactly what those frames imply.
    let (_, left_phase) = goertzel(&out.left()[window.clone()], 440.0);
    let (_, right_phase) = goertzel(&out.right()[window.clone()], 1000.0);
    let tau = 2.0 * std::f64::consts::PI;
    let expected_left = tau * 440.0 * (window.start - caller_onset) as f64 / f64::from(RATE);
    let expected_right = tau * 1000.0 * (window.start - agent_onset) as f64 / f64::from(RATE);
    assert!(
        phase_diff(left_phase, expected_left).abs() < 0.05,
        "left phase {left_phase}"
    );
    assert!(
        phase_diff(right_phase, expected_right).abs() < 0.05,
        "right phase {right_phase}"
    );
    let stats = capture.stats();
    assert_eq!((stats.caller.lost, stats.agent.lost), (1, 2));
    assert_eq!(stats.caller.late + stats.agent.late, 0);
    assert_eq!(stats.caller.duplicates, 17);
}

#[test]
fn a_known_offset_between_two_sine_waves_survives_to_the_sample() {
    // The same 500 Hz wave on both legs, the agent's delayed by 3 samples: the phase
    // difference between the channels is 2*pi*500*3/8000 (one sample more would be 0.39 rad).
    let delay = 3.0;
    let agent_start = 296.0;
    let caller_audio = tone(500.0, 8000.0, 0.0, 3 * SECOND);
    let phase = -2.0 * std::f64::consts::PI * 500.0 * (delay - agent_start) / f64::from(RATE);
    let agent_audio = tone(500.0, 8000.0, phase, 3 * SECOND - 296);
    let mut arrivals = stream(
        &mut Sender::new(1, 1, 1),
        Leg::Caller,
        Duration::ZERO,
        &caller_audio,
    );
    let mut agent = stream(&mut Sender::new(2, 2, 2), Leg::Agent, ms(37), &agent_audio);
    for (k, arrival) in agent.iter_mut().enumerate().skip(1) {
        arrival.at += ms((k as u64 * 7) % 50);
    }
    arrivals.extend(agent);
    let (out, _) = run(CaptureConfig::default(), &arrivals, ms(3000));
    let window = SECOND..2 * SECOND;
    let (_, left) = goertzel(&out.left()[window.clone()], 500.0);
    let (_, right) = goertzel(&out.right()[window], 500.0);
    let expected = 2.0 * std::f64::consts::PI * 500.0 * delay / f64::from(RATE);
    let measured = phase_diff(left, right);
    assert!(
        (measured - expected).abs() < 0.02,
        "measured {measured}, expected {expected}"
    );
}

/// A caller tone with a key press on packets 50..60 (1.0-1.2 s), sent as RFC 4733 events with
/// growing durations and three end packets; `in_band` also keeps sending the audio packets.
fn dtmf_call(in_band: bool) -> (Vec<i16>, Vec<Arrival>) {
    let audio = tone(440.0, 8000.0, 0.3, 2 * SECOND);
    let mut sender = Sender::new(5, 100, 1000);
    let mut arrivals = Vec::new();
    let event_start = 1000 + 50 * 160;
    for (k, chunk) in audio.chunks(SAMPLES_PER_PACKET).enumerate() {
        let at = PTIME * k as u32;
        if (50..60).contains(&k) {
            let duration = (k as u16 - 49) * 160;
            arrivals.push(Arrival {
                at,
                leg: Leg::Caller,
                datagram: sender.event(event_start, 5, duration, k == 59),
            });
            if k == 59 {
                for extra in 1..=2 {
                    arrivals.push(Arrival {
                        at: at + ms(5 * extra),
                        leg: Leg::Caller,
                        datagram: sender.event(event_start, 5, duration, true),
                    });
                }
            }
            if !in_band {
                // Like FreeSWITCH: no audio while the event plays; the timestamp moves on.
                sender.ts = sender.ts.wrapping_add(160);
                continue;
            }
        }
        arrivals.push(Arrival {
            at,
            leg: Leg::Caller,
            datagram: sender.audio(chunk),
        });
    }
    (audio, arrivals)
}

#[test]
fn dtmf_is_never_written_into_audio_and_is_reported_once() {
    for in_band in [false, true] {
        let (audio, arrivals) = dtmf_call(in_band);
        let (out, capture) = run(CaptureConfig::default(), &arrivals, ms(2000));
        let span: Vec<usize> = (50..60).collect();
        assert_eq!(
            out.left(),
            silence_where(&audio, &span).as_slice(),
            "in_band {in_band}"
        );
        let digits: Vec<_> = out
            .events
            .iter()
            .filter_map(|e| match e {
                CaptureEvent::Dtmf { leg, digit, at } => Some((*leg, *digit, *at)),
                _ => None,
            })
            .collect();
        assert_eq!(digits, [(Leg::Caller, '5', ms(1000))]);
        let stats = capture.stats().caller;
        assert_eq!((stats.dtmf, stats.lost, stats.late), (1, 0, 0));
    }
}

#[test]
fn telephone_event_payload_type_comes_from_the_negotiation() {
    // Negotiated as 96 instead of 101: then 101 is unknown and 96 is the event.
    let config = CaptureConfig {
        payload_types: switchyard_media::PayloadMap::empty()
            .with(0, switchyard_media::PayloadFormat::Pcmu)
            .and_then(|m| m.with(96, switchyard_media::PayloadFormat::TelephoneEvent))
            .unwrap(),
        ..CaptureConfig::default()
    };
    let (_, arrivals) = dtmf_call(false);
    let (_, capture) = run(config.clone(), &arrivals, ms(2000));
    assert_eq!(capture.stats().caller.unknown_payload, 12);
    let renumbered: Vec<Arrival> = arrivals
        .into_iter()
        .map(|mut a| {
            if a.datagram[1] & 0x7F == 101 {
                a.datagram[1] = (a.datagram[1] & 0x80) | 96;
            }
            a
        })
        .collect();
    let (_, capture) = run(config, &renumbered, ms(2000));
    assert_eq!(capture.stats().caller.dtmf, 1);
}

#[test]
fn a_paused_span_is_exactly_silent_on_both_channels() {
    let caller = tone(440.0, 8000.0, 0.3, 3 * SECOND);
    let agent = tone(1000.0, 8000.0, 0.1, 3 * SECOND);
    let mut arrivals = stream(
        &mut Sender::new(1, 1, 1),
        Leg::Caller,
        Duration::ZERO,
        &caller,
    );
    arrivals.extend(stream(
        &mut Sender::new(2, 2, 2),
        Leg::Agent,
        Duration::ZERO,
        &agent,
    ));
    let mut spans = Vec::new();
    let (out, capture) = run_with(
        CaptureConfig::default(),
        &arrivals,
        ms(3000),
        |capture, now| {
            if now == ms(1000) {
                spans.push(capture.pause(now).unwrap());
                assert!(capture.is_paused());
            }
            if now == ms(1500) {
                spans.push(capture.resume(now).unwrap());
            }
        },
    );
    assert_eq!(spans, [ms(1000), ms(1500)]);
    assert!(!capture.is_paused());
    let (start, end) = (SECOND, SECOND + SECOND / 2);
    for channel in [out.left(), out.right()] {
        assert!(channel[start..end].iter().all(|&s| s == 0));
        assert!(channel[start - 8..start].iter().any(|&s| s != 0));
        assert!(channel[end..end + 8].iter().any(|&s| s != 0));
    }
    assert_eq!(&out.left()[..start], &through_pcmu(&caller)[..start]);
    assert_eq!(&out.right()[end..], &through_pcmu(&agent)[end..]);
    assert_eq!(out.frames(), 3 * SECOND);
}

#[test]
fn mono_layout_mixes_both_directions() {
    let caller = tone(440.0, 4000.0, 0.3, SECOND);
    let agent = tone(1000.0, 4000.0, 0.1, SECOND);
    let mut arrivals = stream(
        &mut Sender::new(1, 1, 1),
        Leg::Caller,
        Duration::ZERO,
        &caller,
    );
    arrivals.extend(stream(
        &mut Sender::new(2, 2, 2),
        Leg::Agent,
        Duration::ZERO,
        &agent,
    ));
    let config = CaptureConfig {
        layout: Layout::Mono,
        ..CaptureConfig::default()
    };
    let (out, _) = run(config, &arrivals, ms(1000));
    assert_eq!(out.channels.len(), 1);
    let expected: Vec<i16> = through_pcmu(&caller)
        .iter()
        .zip(through_pcmu(&agent))
        .map(|(&a, b)| a.saturating_add(b))
        .collect();
    assert_eq!(out.channels[0], expected);
}

#[test]
fn a_leg_that_starts_late_is_silent_until_its_first_packet() {
    // Only the agent sends, and only from 2 s on: the caller is silence all along, and the
    // recording still starts at the capture's start.
    let agent = tone(1000.0, 8000.0, 0.1, SECOND);
    let arrivals = stream(&mut Sender::new(2, 2, 2), Leg::Agent, ms(2000), &agent);
    let (out, _) = run(CaptureConfig::default(), &arrivals, ms(3000));
    assert_eq!(out.frames(), 3 * SECOND);
    assert!(out.left().iter().all(|&s| s == 0));
    assert!(out.right()[..2 * SECOND].iter().all(|&s| s == 0));
    assert_eq!(&out.right()[2 * SECOND..], through_pcmu(&agent).as_slice());
}

#[test]
fn finish_writes_silence_up_to_the_end_of_the_call() {
    let (audio, arrivals) = caller_tone(1);
    let (out, _) = run(CaptureConfig::default(), &arrivals, ms(2500));
    assert_eq!(out.frames(), 2 * SECOND + SECOND / 2);
    assert_eq!(&out.left()[..SECOND], through_pcmu(&audio).as_slice());
    assert!(out.left()[SECOND..].iter().all(|&s| s == 0));
}

#[test]
fn datagrams_after_finish_are_refused() {
    let mut capture = Capture::new(CaptureConfig::default(), Duration::ZERO).unwrap();
    capture.finish(ms(100));
    let datagram = Sender::new(1, 1, 1).audio(&[0; 160]);
    assert_eq!(
        capture.push(ms(110), Leg::Caller, &datagram),
        Admission::Finished
    );
}

#[test]
fn malformed_and_unknown_datagrams_are_counted_and_change_nothing() {
    let (audio, mut arrivals) = caller_tone(1);
    let garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x80],
        vec![0x00; 40],                                        // version 0
        vec![0x8F, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0],     // 15 CSRCs announced, none there
        vec![0xA0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 99], // padding past the end
        vec![0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1],           // header only
        vec![0x80, 101, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0x11, 5],   // telephone-event of 1 byte
    ];
    let malformed = garbage.len() as u64;
    for (i, datagram) in garbage.into_iter().enumerate() {
        arrivals.push(Arrival {
            at: ms(10 + 100 * i as u64),
            leg: Leg::Caller,
            datagram,
        });
    }
    // RTCP on the RTP port (PT 200 reads as marker + 72) and a payload type never mapped.
    let mut rtcp = vec![0x80, 200, 0, 6];
    rtcp.extend_from_slice(&[0; 24]);
    arrivals.push(Arrival {
        at: ms(333),
        leg: Leg::Caller,
        datagram: rtcp,
    });
    let mut opus = Sender::new(0x1111, 1, 1);
    opus.payload_type = 111;
    arrivals.push(Arrival {
        at: ms(444),
        leg: Leg::Caller,
        datagram: opus.audio(&[0; 160]),
    });
    let (out, capture) = run(CaptureConfig::default(), &arrivals, ms(1000));
    assert_eq!(out.left(), through_pcmu(&audio).as_slice());
    let stats = capture.stats().caller;
    assert_eq!(stats.malformed, malformed);
    assert_eq!(stats.unknown_payload, 2);
    assert_eq!(stats.packets, 50 + malformed + 2);
}

#[test]
fn pcma_and_l16_are_decoded() {
    use switchyard_media::g711::{alaw_to_linear, linear_to_alaw};
    use switchyard_media::rtp::write_packet;
    let audio = tone(700.0, 9000.0, 0.2, SECOND / 2);
    let mut arrivals = Vec::new();
    let mut datagram = Vec::new();
    for (k, chunk) in audio.chunks(SAMPLES_PER_PACKET).enumerate() {
        let alaw: Vec<u8> = chunk.iter().map(|&s| linear_to_alaw(s)).collect();
        write_packet(&mut datagram, 8, false, k as u16, 160 * k as u32, 1, &alaw);
        arrivals.push(Arrival {
            at: PTIME * k as u32,
            leg: Leg::Caller,
            datagram: datagram.clone(),
        });
        let l16: Vec<u8> = chunk.iter().flat_map(|s| s.to_be_bytes()).collect();
        write_packet(&mut datagram, 96, false, k as u16, 160 * k as u32, 2, &l16);
        arrivals.push(Arrival {
            at: PTIME * k as u32,
            leg: Leg::Agent,
            datagram: datagram.clone(),
        });
    }
    let config = CaptureConfig {
        payload_types: switchyard_media::PayloadMap::default()
            .with(96, switchyard_media::PayloadFormat::L16)
            .unwrap(),
        ..CaptureConfig::default()
    };
    let (out, _) = run(config, &arrivals, ms(500));
    let expected_alaw: Vec<i16> = audio
        .iter()
        .map(|&s| alaw_to_linear(linear_to_alaw(s)))
        .collect();
    assert_eq!(out.left(), expected_alaw.as_slice());
    assert_eq!(out.right(), audio.as_slice());
}

#[test]
fn l16_at_16_khz_keeps_its_rate() {
    use switchyard_media::rtp::write_packet;
    let config = CaptureConfig {
        sample_rate: 16_000,
        payload_types: switchyard_media::PayloadMap::empty()
            .with(96, switchyard_media::PayloadFormat::L16)
            .unwrap(),
        ..CaptureConfig::default()
    };
    let mut capture = Capture::new(config, Duration::ZERO).unwrap();
    let mut datagram = Vec::new();
    let mut out = Output::default();
    for k in 0..50u32 {
        let payload: Vec<u8> = (0..320)
            .flat_map(|i| ((i % 100) as i16 + 1).to_be_bytes())
            .collect();
        write_packet(&mut datagram, 96, false, k as u16, 320 * k, 3, &payload);
        let now = PTIME * k;
        capture.push(now, Leg::Caller, &datagram);
        drain(&mut capture, now, &mut out);
    }
    capture.finish(ms(1000));
    drain(&mut capture, ms(1000), &mut out);
    assert_eq!(out.frames(), 16_000);
    assert!(out.left().iter().all(|&s| s != 0));
}

#[test]
fn a_caller_that_never_polls_holds_bounded_audio() {
    let mut capture = Capture::new(CaptureConfig::default(), Duration::ZERO).unwrap();
    let mut sender = Sender::new(1, 1, 1);
    for k in 0..1000u32 {
        capture.push(PTIME * k, Leg::Caller, &sender.audio(&[100; 160]));
    }
    // 20 s pushed; at most 10 s kept (plus the reorder window); the rest discarded, counted.
    let stats = capture.stats();
    assert!(stats.discarded_frames >= 9 * SECOND as u64, "{stats:?}");
    let mut frames = 0;
    let mut first = None;
    while let Some(output) = capture.poll(PTIME * 1000) {
        if let switchyard_media::CaptureOutput::Audio(pcm) = output {
            first.get_or_insert(pcm.start);
            frames += pcm.frames();
        }
    }
    assert!(frames <= 10 * SECOND as u64 + 1000, "{frames}");
    // The first block starts where the discarded audio ended: the timeline has a hole a
    // writer can pad, not a shift.
    assert_eq!(first, Some(stats.discarded_frames));
}
