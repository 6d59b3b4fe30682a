//! The WAV shell: what a player reads back, and what a crash leaves behind.

mod common;

use std::time::Duration;

use common::*;
use switchyard_media::{CaptureConfig, Leg, Pcm, WavSink};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-media-wav-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn stereo_file_holds_the_caller_left_and_the_agent_right() {
    let caller = tone(440.0, 8000.0, 0.3, 2 * RATE as usize);
    let agent = tone(1000.0, 8000.0, 0.1, 2 * RATE as usize);
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
    let (out, _) = run(CaptureConfig::default(), &arrivals, Duration::from_secs(2));

    let path = scratch("stereo.wav");
    let mut sink = WavSink::for_capture(&path, &CaptureConfig::default()).unwrap();
    let interleaved: Vec<i16> = out
        .left()
        .iter()
        .zip(out.right())
        .flat_map(|(&l, &r)| [l, r])
        .collect();
    for (i, block) in interleaved.chunks(2 * 333).enumerate() {
        sink.write(&Pcm {
            start: 333 * i as u64,
            channels: 2,
            sample_rate: RATE,
            samples: block,
        })
        .unwrap();
    }
    let summary = sink.finish().unwrap();
    assert_eq!(summary.duration, Duration::from_secs(2));

    let mut reader = hound::WavReader::open(&path).unwrap();
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    assert_eq!(samples, interleaved);
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert_eq!(dominant(&left, &[440.0, 1000.0]), 440.0);
    assert_eq!(dominant(&right, &[440.0, 1000.0]), 1000.0);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_crash_leaves_a_playable_file_up_to_the_last_flush() {
    let path = scratch("crash.wav");
    let mut sink = WavSink::create(&path, 2, RATE, Duration::from_secs(1)).unwrap();
    let block = vec![1000i16; 2 * 160];
    // 1.5 s of audio: the header was last rewritten at 1.0 s.
    for k in 0..75u64 {
        sink.write(&Pcm {
            start: 160 * k,
            channels: 2,
            sample_rate: RATE,
            samples: &block,
        })
        .unwrap();
    }
    // The process dies: no finalisation, no destructor.
    std::mem::forget(sink);
    let reader = hound::WavReader::open(&path).unwrap();
    assert_eq!(reader.duration(), RATE);
    let samples: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
    assert!(samples.iter().all(|&s| s == 1000));
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_hole_in_the_blocks_is_written_as_silence() {
    let path = scratch("hole.wav");
    let mut sink = WavSink::create(&path, 1, RATE, Duration::from_secs(1)).unwrap();
    sink.write(&Pcm {
        start: 0,
        channels: 1,
        sample_rate: RATE,
        samples: &[7; 100],
    })
    .unwrap();
    sink.write(&Pcm {
        start: 10_100,
        channels: 1,
        sample_rate: RATE,
        samples: &[9; 100],
    })
    .unwrap();
    assert!(
        sink.write(&Pcm {
            start: 10_200,
            channels: 2,
            sample_rate: RATE,
            samples: &[1, 1]
        })
        .is_err()
    );
    sink.finish().unwrap();
    let samples: Vec<i16> = hound::WavReader::open(&path)
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect();
    assert_eq!(samples.len(), 10_200);
    assert!(samples[100..10_100].iter().all(|&s| s == 0));
    assert_eq!(samples[10_100], 9);
    std::fs::remove_file(path).unwrap();
}
