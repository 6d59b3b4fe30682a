//! The UDP shell over loopback: two recorder legs into one stereo WAV file, checked by
//! frequency per channel.

mod common;

use std::time::Duration;

use common::*;
use switchyard_media::net::{RecorderCommand, RecorderConfig, UdpRecorder};
use switchyard_media::{CaptureConfig, Leg, MediaError};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

async fn ask<T>(
    commands: &mpsc::Sender<RecorderCommand<u32>>,
    make: impl FnOnce(oneshot::Sender<T>) -> RecorderCommand<u32>,
) -> T {
    let (reply, answer) = oneshot::channel();
    commands.send(make(reply)).await.expect("recorder running");
    answer.await.expect("recorder answers")
}

#[tokio::test]
async fn two_legs_over_loopback_become_a_stereo_file_caller_left_agent_right() {
    let dir = std::env::temp_dir().join(format!("switchyard-media-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("call.wav");

    let recorder = UdpRecorder::<u32>::bind(RecorderConfig::default())
        .await
        .unwrap();
    let target = recorder.local_addr().unwrap();
    let (commands, inbox) = mpsc::channel(16);
    let running = tokio::spawn(recorder.run(inbox));

    let caller_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let agent_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let flows = vec![
        (caller_socket.local_addr().unwrap(), Leg::Caller),
        (agent_socket.local_addr().unwrap(), Leg::Agent),
    ];
    let started = ask(&commands, |reply| RecorderCommand::Start {
        key: 1,
        capture: CaptureConfig::default(),
        path: path.clone(),
        flows: flows.clone(),
        reply,
    })
    .await;
    started.unwrap();
    let again = ask(&commands, |reply| RecorderCommand::Start {
        key: 2,
        capture: CaptureConfig::default(),
        path: dir.join("other.wav"),
        flows: flows[..1].to_vec(),
        reply,
    })
    .await;
    assert!(matches!(again, Err(MediaError::FlowInUse { .. })));

    // One second of each direction, paced like FreeSWITCH (a packet per leg every 20 ms).
    let caller = tone(440.0, 8000.0, 0.3, RATE as usize);
    let agent = tone(1000.0, 8000.0, 0.1, RATE as usize);
    let mut caller_sender = Sender::new(0xCA11, 100, 160);
    let mut agent_sender = Sender::new(0xA6E7, 200, 160);
    let mut pace = tokio::time::interval(PTIME);
    for (c, a) in caller.chunks(160).zip(agent.chunks(160)) {
        pace.tick().await;
        caller_socket
            .send_to(&caller_sender.audio(c), target)
            .await
            .unwrap();
        agent_socket
            .send_to(&agent_sender.audio(a), target)
            .await
            .unwrap();
    }
    stranger.send_to(b"not for you", target).await.unwrap();
    // Let the last packets through the reorder window before stopping.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let summary = ask(&commands, |reply| RecorderCommand::Stop { key: 1, reply })
        .await
        .unwrap();
    drop(commands);
    let report = running.await.unwrap();

    assert_eq!(summary.stats.caller.packets, 50);
    assert_eq!(summary.stats.agent.packets, 50);
    assert_eq!(summary.stats.total().lost + summary.stats.total().late, 0);
    assert_eq!(report.stray, 1);
    assert_eq!(report.datagrams, 101);

    let mut reader = hound::WavReader::open(&path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert_eq!(u64::from(reader.duration()), summary.wav.frames);
    // The middle of the call, where both legs certainly played.
    let first = left.iter().position(|&s| s != 0).unwrap();
    let middle = first + 2000..first + 6000;
    assert_eq!(dominant(&left[middle.clone()], &[440.0, 1000.0]), 440.0);
    assert_eq!(dominant(&right[middle.clone()], &[440.0, 1000.0]), 1000.0);
    assert!(goertzel(&left[middle.clone()], 1000.0).0 < 50.0);
    assert!(goertzel(&right[middle], 440.0).0 < 50.0);
    std::fs::remove_dir_all(&dir).unwrap();
}
