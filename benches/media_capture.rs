//! Recording capture at scale: concurrent G.711 streams over loopback UDP into stereo WAV
//! files, the receiver on one core.
//!
//! 1,000 stereo calls = 2,000 streams (caller 440 Hz, agent 1,000 Hz), 20 ms PCMU packets as
//! FreeSWITCH's recorder legs send them: 100,000 packets/s for 20 s. A sender thread (its own
//! core) sends from one socket per stream, the streams spread evenly over each 20 ms; the
//! receiver is `switchyard_media::net::UdpRecorder` on a current-thread tokio runtime on a
//! thread pinned to CPU 0 (the sender to CPU 1, with `taskset`) at nice -10
//! (`MEDIA_CAPTURE_NICE=0` leaves it at 0: on this shared 2-core VM other builds then preempt
//! it), writing one stereo WAV per call (flushed every second of audio).
//!
//! ```sh
//! cargo bench --bench media_capture                          # 1000 calls, 20 s
//! MEDIA_CAPTURE_CALLS=200 MEDIA_CAPTURE_SECS=5 cargo bench --bench media_capture
//! MEDIA_CAPTURE_FLOOR=1 cargo bench --bench media_capture    # no recordings: socket path only
//! ```
//! A: the capture core alone first (the same 2,000 streams pushed in virtual time on one
//! core, no sockets, no files), then B over UDP. Figures: the receiver thread's CPU time over the traffic (from `/proc/self/task/<tid>/
//! schedstat`, the scheduler's own nanosecond count; `getrusage(RUSAGE_THREAD)` would need
//! `unsafe`, which the workspace forbids) as a share of one core and per stream; memory per
//! call (resident set growth / calls); packets lost at the socket (sent vs read, and the
//! kernel's UDP receive-buffer errors); bytes in (RTP payload) vs bytes out (WAV), whose
//! physical limit is 2: G.711 carries 8 bits a sample, the file 16. FreeSWITCH's own
//! `uuid_record` is not available here to compare with.
//! Target: < 30% of one core and no packet lost.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchyard_media::g711::linear_to_ulaw;
use switchyard_media::net::{RecorderCommand, RecorderConfig, RecorderReport, UdpRecorder};
use switchyard_media::rtp::write_packet;
use switchyard_media::{Capture, CaptureConfig, CaptureOutput, Leg, LegStats};
use tokio::sync::{mpsc, oneshot};

const PTIME: Duration = Duration::from_millis(20);
/// Send slots per packet time: the streams are spread over 20 slots of 1 ms.
const SLOTS: usize = 20;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One second of 20 ms PCMU frames of a tone (50 frames, played in a loop).
fn pcmu_frames(freq: f64) -> Vec<Vec<u8>> {
    (0..50)
        .map(|f| {
            (0..160)
                .map(|i| {
                    let t = f64::from(f * 160 + i) / 8000.0;
                    let sample = 8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin();
                    linear_to_ulaw(sample as i16)
                })
                .collect()
        })
        .collect()
}

fn thread_id() -> String {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|t| t.to_string_lossy().into_owned()))
        .expect("Linux /proc/thread-self")
}

/// Pins the thread `tid` to `cpu` (`taskset`); prints a note when that fails.
fn pin(tid: &str, cpu: usize) {
    let ok = std::process::Command::new("taskset")
        .args(["-cp", &cpu.to_string(), tid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("  (note: could not pin thread {tid} to CPU {cpu})");
    }
}

/// `renice` of thread `tid`; prints a note when that fails.
fn renice(tid: &str, nice: i64) {
    let ok = std::process::Command::new("renice")
        .args(["-n", &nice.to_string(), "-p", tid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("  (note: could not renice thread {tid} to {nice})");
    }
}

/// Nanoseconds thread `tid` has run (first field of its schedstat).
fn cpu_ns(tid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("schedstat")
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// The kernel's UDP receive-buffer errors so far (all sockets).
fn udp_rcvbuf_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn ask<T>(
    commands: &mpsc::Sender<RecorderCommand<u32>>,
    make: impl FnOnce(oneshot::Sender<T>) -> RecorderCommand<u32>,
) -> T {
    let (reply, answer) = oneshot::channel();
    commands
        .blocking_send(make(reply))
        .expect("recorder running");
    answer.blocking_recv().expect("recorder answers")
}

/// Counts of the sender.
struct Sent {
    packets: u64,
    payload_bytes: u64,
    behind_max: Duration,
    cpu_ns: u64,
}

/// Sends `secs` of audio on every stream, spread over the packet time.
fn send(sockets: &[(UdpSocket, Leg)], target: SocketAddr, secs: u64) -> Sent {
    let caller = pcmu_frames(440.0);
    let agent = pcmu_frames(1000.0);
    let tid = thread_id();
    pin(&tid, 1);
    let cpu_start = cpu_ns(&tid);
    let per_slot = sockets.len().div_ceil(SLOTS);
    let packets_per_stream = secs * 50;
    let mut datagram = Vec::with_capacity(200);
    let mut sent = Sent {
        packets: 0,
        payload_bytes: 0,
        behind_max: Duration::ZERO,
        cpu_ns: 0,
    };
    let start = Instant::now();
    for k in 0..packets_per_stream {
        for slot in 0..SLOTS {
            let due = start + PTIME * k as u32 + Duration::from_millis(slot as u64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            } else {
                sent.behind_max = sent.behind_max.max(now - due);
            }
            for (i, (socket, leg)) in sockets
                .iter()
                .enumerate()
                .skip(slot * per_slot)
                .take(per_slot)
            {
                let frames = if *leg == Leg::Caller { &caller } else { &agent };
                let payload = &frames[(k % 50) as usize];
                write_packet(
                    &mut datagram,
                    0,
                    k == 0,
                    (k as u16).wrapping_add(i as u16 * 7919),
                    (160 * k as u32).wrapping_add(i as u32 * 104_729),
                    0x1000_0000 + i as u32,
                    payload,
                );
                if socket.send_to(&datagram, target).is_ok() {
                    sent.packets += 1;
                    sent.payload_bytes += payload.len() as u64;
                }
            }
        }
    }
    sent.cpu_ns = cpu_ns(&tid) - cpu_start;
    sent
}

/// A: the sans-IO core alone, in virtual time: every call's two legs pushed packet by packet
/// and every capture polled each 20 ms, the audio summed instead of written. Returns the
/// wall time per packet.
fn core_alone(calls: usize, secs: u64) -> Duration {
    let caller = pcmu_frames(440.0);
    let agent = pcmu_frames(1000.0);
    let mut captures: Vec<Capture> = (0..calls)
        .map(|_| Capture::new(CaptureConfig::default(), Duration::ZERO).expect("config"))
        .collect();
    let mut datagram = Vec::with_capacity(200);
    let mut checksum = 0i64;
    let start = Instant::now();
    for k in 0..secs * 50 {
        let now = PTIME * k as u32;
        for (i, capture) in captures.iter_mut().enumerate() {
            for (leg, frames) in [(Leg::Caller, &caller), (Leg::Agent, &agent)] {
                write_packet(
                    &mut datagram,
                    0,
                    k == 0,
                    k as u16,
                    160 * k as u32,
                    i as u32,
                    &frames[(k % 50) as usize],
                );
                capture.push(now, leg, &datagram);
            }
            while let Some(output) = capture.poll(now) {
                if let CaptureOutput::Audio(pcm) = output {
                    checksum += pcm.samples.iter().map(|&s| i64::from(s)).sum::<i64>();
                }
            }
        }
    }
    let elapsed = start.elapsed();
    std::hint::black_box(checksum);
    elapsed / (calls as u32 * 2 * secs as u32 * 50)
}

fn main() {
    let calls = env_or("MEDIA_CAPTURE_CALLS", 1000) as usize;
    let secs = env_or("MEDIA_CAPTURE_SECS", 20);
    // A, on CPU 0 as B's receiver will be.
    let core_per_packet = std::thread::spawn(move || {
        pin(&thread_id(), 0);
        core_alone(calls, secs)
    })
    .join()
    .expect("core run");
    let keep = std::env::var("MEDIA_CAPTURE_KEEP").is_ok();
    // The socket path's floor: the same traffic read and dropped as stray, no recording.
    let floor_only = std::env::var("MEDIA_CAPTURE_FLOOR").is_ok();
    let tick_ms = env_or("MEDIA_CAPTURE_TICK_MS", 20);
    // The receiver's priority (a recorder in production has its cores; this VM is shared).
    let nice = std::env::var("MEDIA_CAPTURE_NICE")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(-10);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("media_capture");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    println!(
        "media_capture: {calls} stereo calls ({} streams), {secs} s of 20 ms PCMU",
        2 * calls
    );

    let rss_before = rss_kb();
    // The receiver: its own thread, pinned, on a current-thread runtime.
    let (setup_tx, setup_rx) = std::sync::mpsc::channel();
    let (commands, inbox) = mpsc::channel(1024);
    let receiver = std::thread::Builder::new()
        .name("media-recv".into())
        .spawn(move || -> RecorderReport<u32> {
            let tid = thread_id();
            pin(&tid, 0);
            if nice != 0 {
                renice(&tid, nice);
            }
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let config = RecorderConfig {
                    tick: Duration::from_millis(tick_ms),
                    ..RecorderConfig::default()
                };
                let recorder = UdpRecorder::<u32>::bind(config).await.expect("bind");
                let granted = recorder.recv_buffer_bytes().unwrap_or(0);
                setup_tx
                    .send((recorder.local_addr().expect("address"), tid, granted))
                    .expect("main waits");
                recorder.run(inbox).await
            })
        })
        .expect("a thread");
    let (target, receiver_tid, granted) = setup_rx.recv().expect("receiver starts");

    let mut sockets = Vec::with_capacity(2 * calls);
    for call in 0..calls {
        let pair = [Leg::Caller, Leg::Agent].map(|leg| {
            let socket = UdpSocket::bind("127.0.0.1:0").expect("sender socket");
            (socket, leg)
        });
        let flows = pair
            .iter()
            .map(|(socket, leg)| (socket.local_addr().expect("address"), *leg))
            .collect();
        if !floor_only {
            ask(&commands, |reply| RecorderCommand::Start {
                key: call as u32,
                capture: CaptureConfig::default(),
                path: dir.join(format!("call-{call}.wav")),
                flows,
                reply,
            })
            .expect("recording starts");
        }
        sockets.extend(pair);
    }
    let rss_setup = rss_kb();

    let errors_before = udp_rcvbuf_errors();
    let cpu_before = cpu_ns(&receiver_tid);
    let wall = Instant::now();
    let rss_mid = std::thread::scope(|scope| {
        let sender = scope.spawn(|| send(&sockets, target, secs));
        std::thread::sleep(Duration::from_secs(secs / 2));
        let rss_mid = rss_kb();
        (sender.join().expect("sender"), rss_mid)
    });
    let (sent, rss_mid) = rss_mid;
    // The last packets through the reorder window and one more tick.
    std::thread::sleep(Duration::from_millis(200));
    let receiver_cpu = cpu_ns(&receiver_tid) - cpu_before;
    let elapsed = wall.elapsed();
    let errors = udp_rcvbuf_errors() - errors_before;

    drop(commands);
    let report = receiver.join().expect("receiver");
    let mut legs = LegStats::default();
    let mut files_bytes = 0u64;
    let mut frames = 0u64;
    let mut failed = 0;
    for (_, result) in &report.recordings {
        match result {
            Ok(summary) => {
                legs.add(&summary.stats.caller);
                legs.add(&summary.stats.agent);
                frames += summary.wav.frames;
                files_bytes += std::fs::metadata(&summary.wav.path).map_or(0, |m| m.len());
            }
            Err(_) => failed += 1,
        }
    }
    let check = check_one(&dir.join("call-0.wav"));
    if !keep {
        let _ = std::fs::remove_dir_all(&dir);
    }

    let streams = (2 * calls) as f64;
    let core_share = receiver_cpu as f64 / elapsed.as_nanos() as f64;
    let payload_in = legs.bytes - 12 * legs.packets;
    println!("  SO_RCVBUF granted: {} KiB", granted / 1024);
    println!(
        "  sender: {} packets ({:.0}/s), CPU {:.1}% of a core, at most {:.1} ms behind schedule",
        sent.packets,
        sent.packets as f64 / elapsed.as_secs_f64(),
        100.0 * sent.cpu_ns as f64 / elapsed.as_nanos() as f64,
        sent.behind_max.as_secs_f64() * 1e3
    );
    println!("| measure | figure |");
    println!("|---|---:|");
    println!(
        "| A: the capture core alone (push, reorder, decode, interleave), per packet | {:.2} µs ({:.1}% of a core at this rate) |",
        core_per_packet.as_nanos() as f64 / 1e3,
        core_per_packet.as_nanos() as f64 * 1e-9 * report.datagrams as f64 / elapsed.as_secs_f64()
            * 100.0
    );
    println!(
        "| B: receiver CPU over {:.1} s of traffic (one core) | {:.1}% |",
        elapsed.as_secs_f64(),
        100.0 * core_share
    );
    println!(
        "| B: receiver CPU per stream | {:.4}% of a core ({:.2} µs per packet) |",
        100.0 * core_share / streams,
        receiver_cpu as f64 / 1e3 / report.datagrams.max(1) as f64
    );
    println!(
        "| packets sent / read by the recorder / lost at the socket | {} / {} / {} |",
        sent.packets,
        report.datagrams,
        sent.packets.saturating_sub(report.datagrams)
    );
    println!("| kernel UDP receive-buffer errors during the run | {errors} |");
    println!(
        "| captures: lost / late / duplicates / malformed (RTP's own view) | {} / {} / {} / {} |",
        legs.lost, legs.late, legs.duplicates, legs.malformed
    );
    println!(
        "| memory per call: after setup / during traffic (RSS growth / calls) | {:.1} KiB / {:.1} KiB |",
        (rss_setup.saturating_sub(rss_before)) as f64 / calls as f64,
        (rss_mid.saturating_sub(rss_before)) as f64 / calls as f64
    );
    println!(
        "| bytes in (RTP payload) / bytes out (WAV files) | {:.1} MB / {:.1} MB |",
        payload_in as f64 / 1e6,
        files_bytes as f64 / 1e6
    );
    println!(
        "| out / in (physical limit 2.0: 8-bit G.711 -> 16-bit PCM) | {:.3} |",
        files_bytes as f64 / payload_in.max(1) as f64
    );
    println!("| frames written (all files) / recordings failed | {frames} / {failed} |");
    println!("| call-0.wav: left / right dominant tone | {check} |");
}

/// The dominant tone (440 or 1000 Hz) of each channel in the middle of a file.
fn check_one(path: &std::path::Path) -> String {
    let Ok(reader) = hound::WavReader::open(path) else {
        return "unreadable".into();
    };
    let samples: Vec<i16> = reader.into_samples::<i16>().map_while(Result::ok).collect();
    let frames = samples.len() / 2;
    if frames < 16_000 {
        return format!("too short ({frames} frames)");
    }
    let window = frames / 2..frames / 2 + 8000;
    let channel = |c: usize| -> Vec<f64> {
        samples[window.start * 2..window.end * 2]
            .iter()
            .skip(c)
            .step_by(2)
            .map(|&s| f64::from(s))
            .collect()
    };
    let power = |x: &[f64], f: f64| {
        let w = 2.0 * std::f64::consts::PI * f / 8000.0;
        let (re, im) = x.iter().enumerate().fold((0.0, 0.0), |(re, im), (i, s)| {
            (re + s * (w * i as f64).cos(), im - s * (w * i as f64).sin())
        });
        re * re + im * im
    };
    let dominant = |x: &[f64]| {
        if power(x, 440.0) > power(x, 1000.0) {
            440
        } else {
            1000
        }
    };
    format!(
        "{} Hz / {} Hz",
        dominant(&channel(0)),
        dominant(&channel(1))
    )
}
