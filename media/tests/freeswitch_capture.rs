//! The capture against RTP that FreeSWITCH 1.10 really sent to two `&eavesdrop` recorder
//! legs (`../shared/esl-captures/eavesdrop-recorder-leg.udp.bin`: the first 50 packets of
//! each leg, with their arrival times), compared with the capture's own decode of each leg
//! (`raw/eavesdrop-recorder-leg.rec-{a,b}.wav`).

use std::time::Duration;

use switchyard_media::{Capture, CaptureConfig, CaptureOutput, Leg};

mod common;
use common::{captures_dir, recorder_leg_frames};

/// (arrival seconds, leg, datagram) of every RTP frame of the capture.
fn rtp_frames() -> Vec<(f64, Leg, Vec<u8>)> {
    recorder_leg_frames()
        .into_iter()
        .filter_map(|f| {
            let leg = match f.flow.as_str() {
                "rtp-rec-a" => Leg::Caller,
                "rtp-rec-b" => Leg::Agent,
                _ => return None,
            };
            Some((f.t, leg, f.body))
        })
        .collect()
}

fn wav(name: &str) -> Vec<i16> {
    let path = captures_dir().join("raw").join(name);
    hound::WavReader::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn freeswitch_recorder_legs_come_out_caller_left_agent_right_sample_exact() {
    let frames = rtp_frames();
    assert_eq!(frames.len(), 100);
    let start = Duration::from_secs_f64(frames[0].0);
    let mut capture = Capture::new(CaptureConfig::default(), start).unwrap();
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let mut collect = |capture: &mut Capture, now| {
        while let Some(output) = capture.poll(now) {
            if let CaptureOutput::Audio(pcm) = output {
                for frame in pcm.samples.chunks_exact(2) {
                    left.push(frame[0]);
                    right.push(frame[1]);
                }
            }
        }
    };
    for (t, leg, datagram) in &frames {
        let now = Duration::from_secs_f64(*t);
        capture.push(now, *leg, datagram);
        collect(&mut capture, now);
    }
    let end = Duration::from_secs_f64(frames.last().unwrap().0) + Duration::from_millis(20);
    capture.finish(end);
    collect(&mut capture, end);

    let stats = capture.stats();
    assert_eq!((stats.caller.packets, stats.agent.packets), (50, 50));
    let total = stats.total();
    assert_eq!(
        (total.lost, total.late, total.duplicates, total.malformed),
        (0, 0, 0, 0)
    );
    // rec-a (the caller, 440 Hz) starts the timeline; rec-b's first packet came 0.978 ms
    // later, which is 7 samples at 8 kHz.
    let caller = wav("eavesdrop-recorder-leg.rec-a.wav");
    let agent = wav("eavesdrop-recorder-leg.rec-b.wav");
    assert_eq!(&left[..8000], &caller[..8000]);
    assert!(right[..7].iter().all(|&s| s == 0));
    assert_eq!(&right[7..8007], &agent[..8000]);
}
