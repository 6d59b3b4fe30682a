//! Properties of the capture over generated calls: whatever the jitter (within the window),
//! loss, duplication, starting sequence number and timestamp (wraps included) and the offset
//! between the legs, the output is the sent audio, sample-exact, with silence exactly where
//! packets were lost or the call was paused; and no input at all makes it panic.

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use switchyard_media::{Admission, Capture, CaptureConfig, CaptureOutput, Leg};

/// How one packet travels: dropped, or delivered once or twice with jitter.
#[derive(Debug, Clone)]
struct Fate {
    jitter_ms: u64,
    copies: u8,
    second_ms: u64,
}

fn fates(n: usize) -> impl Strategy<Value = Vec<Fate>> {
    prop::collection::vec(
        (
            0u64..60,
            prop_oneof![8 => Just(1u8), 1 => Just(0u8), 1 => Just(2u8)],
            0u64..60,
        )
            .prop_map(|(jitter_ms, copies, second_ms)| Fate {
                jitter_ms,
                copies,
                second_ms,
            }),
        n,
    )
}

/// Delivers `audio` from `sender` on `leg`, starting at `start`, each packet as its fate
/// says; the first packet always arrives on time (it anchors the leg). Returns the arrivals
/// and the indices of the packets lost.
fn deliver(
    sender: &mut Sender,
    leg: Leg,
    start: Duration,
    audio: &[i16],
    fates: &[Fate],
) -> (Vec<Arrival>, Vec<usize>) {
    let mut arrivals = Vec::new();
    let mut lost = Vec::new();
    for (k, (arrival, fate)) in stream(sender, leg, start, audio)
        .into_iter()
        .zip(fates)
        .enumerate()
    {
        let copies = if k == 0 { 1 } else { fate.copies };
        let jitter = if k == 0 { 0 } else { fate.jitter_ms };
        if copies == 0 {
            lost.push(k);
            continue;
        }
        arrivals.push(Arrival {
            at: arrival.at + Duration::from_millis(jitter),
            ..arrival.clone()
        });
        if copies == 2 {
            arrivals.push(Arrival {
                at: arrival.at + Duration::from_millis(fate.second_ms),
                ..arrival
            });
        }
    }
    (arrivals, lost)
}

fn expected(audio: &[i16], lost: &[usize], offset: usize, total: usize) -> Vec<i16> {
    let mut decoded = through_pcmu(audio);
    for &k in lost {
        decoded[k * SAMPLES_PER_PACKET..(k + 1) * SAMPLES_PER_PACKET].fill(0);
    }
    let mut channel = vec![0; offset];
    channel.extend(decoded);
    channel.resize(total, 0);
    channel
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn jitter_loss_duplicates_and_wraps_leave_both_legs_sample_exact(
        caller_fates in fates(100),
        agent_fates in fates(100),
        caller_seq in any::<u16>(),
        agent_seq in prop_oneof![any::<u16>(), 65_480u16..=65_535],
        caller_ts in any::<u32>(),
        agent_ts in prop_oneof![any::<u32>(), (u32::MAX - 16_000)..=u32::MAX],
        agent_offset_ms in 0u64..400,
    ) {
        let caller_audio = tone(440.0, 8000.0, 0.3, 100 * SAMPLES_PER_PACKET);
        let agent_audio = tone(1000.0, 8000.0, 0.1, 100 * SAMPLES_PER_PACKET);
        let (mut arrivals, caller_lost) = deliver(
            &mut Sender::new(0xCA11, caller_seq, caller_ts), Leg::Caller, Duration::ZERO, &caller_audio, &caller_fates);
        let (agent_arrivals, agent_lost) = deliver(
            &mut Sender::new(0xA6E7, agent_seq, agent_ts), Leg::Agent,
            Duration::from_millis(agent_offset_ms), &agent_audio, &agent_fates);
        arrivals.extend(agent_arrivals);
        let end = Duration::from_millis(2000 + agent_offset_ms);
        let (out, capture) = run(CaptureConfig::default(), &arrivals, end);

        let total = (end.as_millis() * 8) as usize;
        prop_assert_eq!(out.frames(), total);
        let left = expected(&caller_audio, &caller_lost, 0, total);
        prop_assert_eq!(out.left(), left.as_slice());
        let offset = agent_offset_ms as usize * 8;
        let right = expected(&agent_audio, &agent_lost, offset, total);
        prop_assert_eq!(out.right(), right.as_slice());
        let stats = capture.stats();
        prop_assert_eq!(stats.caller.late + stats.agent.late, 0);
        // Loss is only visible up to the last packet received.
        let visible = |lost: &[usize], fates: &[Fate]| {
            let last = fates.iter().rposition(|f| f.copies > 0).unwrap_or(0);
            lost.iter().filter(|&&k| k < last).count() as u64
        };
        prop_assert_eq!(stats.caller.lost, visible(&caller_lost, &caller_fates));
        prop_assert_eq!(stats.agent.lost, visible(&agent_lost, &agent_fates));
        let doubled = |fates: &[Fate]| fates.iter().skip(1).filter(|f| f.copies == 2).count() as u64;
        prop_assert_eq!(stats.caller.duplicates, doubled(&caller_fates));
        prop_assert_eq!(stats.agent.duplicates, doubled(&agent_fates));
    }

    #[test]
    fn a_paused_span_is_silent_and_nothing_else_is(from_ms in 100u64..1500, len_ms in 0u64..500) {
        let audio = tone(440.0, 8000.0, 0.3, 2 * RATE as usize);
        let arrivals = stream(&mut Sender::new(1, 1, 1), Leg::Caller, Duration::ZERO, &audio);
        let (pause, resume) = (Duration::from_millis(from_ms), Duration::from_millis(from_ms + len_ms));
        let mut paused = false;
        let (out, _) = run_with(CaptureConfig::default(), &arrivals, Duration::from_secs(2), |capture, now| {
            if now >= pause && !paused {
                paused = true;
                capture.pause(pause).unwrap();
            }
            if now >= resume && capture.is_paused() {
                capture.resume(resume);
            }
        });
        let mut expected = through_pcmu(&audio);
        let (start, end) = (from_ms as usize * 8, ((from_ms + len_ms) as usize * 8).min(expected.len()));
        expected[start..end].fill(0);
        prop_assert_eq!(out.left(), expected.as_slice());
    }

    #[test]
    fn arbitrary_datagrams_never_panic_and_every_one_is_counted(
        datagrams in prop::collection::vec(
            (0u64..3000, any::<bool>(), prop_oneof![
                prop::collection::vec(any::<u8>(), 0..200),
                // RTP-shaped: version 2, a mapped or unmapped type, any header fields.
                (any::<u8>(), prop_oneof![Just(0u8), Just(8), Just(101), any::<u8>()], any::<[u8; 10]>(),
                 prop::collection::vec(any::<u8>(), 0..400))
                    .prop_map(|(flags, pt, header, payload)| {
                        let mut d = vec![0x80 | (flags & 0x3F), pt];
                        d.extend_from_slice(&header);
                        d.extend(payload);
                        d
                    }),
            ]),
            0..300,
        ),
    ) {
        let mut datagrams = datagrams;
        datagrams.sort_by_key(|(at, _, _)| *at);
        let mut capture = Capture::new(CaptureConfig::default(), Duration::ZERO).unwrap();
        let mut next_frame = 0;
        let mut admissions = 0u64;
        let mut check = |capture: &mut Capture, now| {
            while let Some(output) = capture.poll(now) {
                if let CaptureOutput::Audio(pcm) = output {
                    assert_eq!(pcm.start, next_frame);
                    next_frame += pcm.frames();
                }
            }
        };
        for (at, agent, datagram) in &datagrams {
            let leg = if *agent { Leg::Agent } else { Leg::Caller };
            let now = Duration::from_millis(*at);
            let admission = capture.push(now, leg, datagram);
            prop_assert_ne!(admission, Admission::Finished);
            admissions += 1;
            check(&mut capture, now);
        }
        let end = Duration::from_millis(3000);
        capture.finish(end);
        check(&mut capture, end);
        prop_assert!(capture.is_drained());
        let total = capture.stats().total();
        prop_assert_eq!(total.packets, admissions);
        prop_assert!(total.malformed + total.unknown_payload + total.duplicates + total.late <= total.packets);
        // The recording ends at the later of the call's end (3 s) and the last audio, which
        // lands at most `resync_after` (1 s) past its arrival and is at most 400 samples long.
        prop_assert!((24_000..=24_000 + 8_000 + 400).contains(&next_frame), "{}", next_frame);
    }
}
