//! Scale of the fake switch (issue 3: 10,000 concurrent channels and 500 originates per second
//! on one core). Prints figures; asserts nothing about speed.
//!
//! A. The sans-IO core in virtual time: 500 `bgapi originate`s per virtual second until
//!    10,000 channels are up, with one listener on `event plain ALL` whose every event is
//!    encoded to bytes (what the network shell does), then 60 virtual seconds holding them
//!    (heartbeats, timers), then `hupall`. Wall time and peak memory are measured. Every
//!    figure is read off the run: channels as the switch counts them, the virtual time at which
//!    the last of them appeared, and events and bytes encoded during the ramp only.
//! B. The real tokio fake switch on a single-threaded runtime (one core) over loopback: our
//!    own ESL client (another thread) fires 10,000 `bgapi originate`s with up to 500 in flight
//!    and waits for every BACKGROUND_JOB, while subscribed to every event. The rate is of the
//!    channels `show channels` reports, over the measured time to the last job reply.
//!
//! Run: `cargo bench --bench fakeswitch_scale`

use std::time::{Duration, Instant};

use bytes::BytesMut;
use switchyard_esl::client::{Auth, Client, ClientConfig, ClientEvent};
use switchyard_esl::codec::{CommandFrame, Headers};
use switchyard_esl::sim::{ConnKind, Output, SimConfig, Switch};

const CHANNELS: usize = 10_000;

/// `FAKESWITCH_CHANNELS` overrides the channel count (for profiling smaller runs).
fn channels() -> usize {
    std::env::var("FAKESWITCH_CHANNELS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CHANNELS)
}
const RATE: u32 = 500;

fn main() {
    // FAKESWITCH_BENCH=a or =b runs one part (each part's peak memory is then its own).
    let only = std::env::var("FAKESWITCH_BENCH").unwrap_or_default();
    if only == "a" {
        let a = core_in_virtual_time();
        println!(
            "A: {} channels, {:.0} originates/s, hold {:.2} ms per virtual s, peak {}",
            a.channels,
            a.channels as f64 / a.wall_ramp.as_secs_f64(),
            a.wall_hold_per_s.as_secs_f64() * 1e3,
            peak_rss()
        );
        return;
    }
    if only == "b" {
        let b = loopback_single_core();
        println!(
            "B: {} channels, {:.0} originates/s, p99 {:?}, peak {}",
            b.channels,
            b.rate,
            b.p99,
            peak_rss()
        );
        return;
    }
    let a = core_in_virtual_time();
    let b = loopback_single_core();
    println!();
    println!("| measure | figure |");
    println!("|---|---:|");
    println!(
        "| A: virtual seconds until the switch held {} channels (originates at {RATE}/s) | {:.1} |",
        a.channels,
        a.virtual_ramp.as_secs_f64()
    );
    println!(
        "| A: wall time for that ramp (one core) | {:.3} s |",
        a.wall_ramp.as_secs_f64()
    );
    println!(
        "| A: originates per wall second the core sustains | {:.0} |",
        a.channels as f64 / a.wall_ramp.as_secs_f64()
    );
    println!(
        "| A: events encoded during the ramp | {} ({:.1} MB) |",
        a.events,
        a.bytes as f64 / 1e6
    );
    println!(
        "| A: wall time per virtual second holding {} channels ({:.1} virtual s) | {:.2} ms |",
        a.channels,
        a.virtual_hold.as_secs_f64(),
        a.wall_hold_per_s.as_secs_f64() * 1e3
    );
    println!(
        "| A: resident memory holding {} channels (whole process) | {} |",
        a.channels, a.rss_holding
    );
    println!("| A: channels after hupall | {} |", a.after_hupall);
    println!(
        "| B: originates per second over loopback (switch on one core; {} channels up) | {:.0} |",
        b.channels, b.rate
    );
    println!(
        "| B: bgapi originate -> BACKGROUND_JOB p50 / p99 | {:.2} ms / {:.2} ms |",
        b.p50.as_secs_f64() * 1e3,
        b.p99.as_secs_f64() * 1e3
    );
    println!(
        "| B: events received by the subscriber until the last job reply | {} |",
        b.events
    );
    println!(
        "| peak resident memory of the whole bench (VmHWM) | {} |",
        peak_rss()
    );
}

struct CoreFigures {
    /// Channels the switch held at the end of the ramp (its own count).
    channels: usize,
    /// Virtual time from the first originate until the switch held `channels`.
    virtual_ramp: Duration,
    wall_ramp: Duration,
    /// Virtual time the hold actually covered (up to the last timer it fired).
    virtual_hold: Duration,
    wall_hold_per_s: Duration,
    /// Events and bytes encoded during the ramp (not the hold or the `hupall`).
    events: u64,
    bytes: u64,
    after_hupall: usize,
    /// Resident memory of the process while the channels are up (before `hupall`, whose
    /// burst of hangup events is the peak).
    rss_holding: String,
}

fn frame(line: &str) -> CommandFrame {
    CommandFrame {
        line: line.to_owned(),
        headers: Headers::default(),
        body: None,
    }
}

fn core_in_virtual_time() -> CoreFigures {
    let start = Instant::now();
    let mut now = start;
    let mut sw = Switch::new(SimConfig::default(), 1, now);
    let conn = sw.connection_opened(now, ConnKind::Inbound);
    let mut out = BytesMut::with_capacity(1 << 20);
    let mut events = 0u64;
    let mut bytes = 0u64;
    let mut drain = |sw: &mut Switch, events: &mut u64, bytes: &mut u64| {
        let mut n = 0;
        while let Some(o) = sw.poll_output() {
            if let Output::Send(c, m) = o {
                m.encode(&mut out);
                *events += 1;
                n += usize::from(c == conn);
            }
        }
        *bytes += out.len() as u64;
        out.clear();
        if n > 0 {
            sw.handle_flushed(conn, n);
        }
    };
    sw.handle_command(now, conn, frame("auth ClueCon"));
    sw.handle_command(now, conn, frame("event plain ALL"));
    drain(&mut sw, &mut events, &mut bytes);
    events = 0;
    bytes = 0;

    let step = Duration::from_secs(1) / RATE;
    let wall = Instant::now();
    let target = channels();
    let ramp_start = now;
    let mut reached = None;
    for i in 0..target {
        now += step;
        while sw.poll_timeout().is_some_and(|t| t <= now) {
            sw.handle_timeout(now);
        }
        sw.handle_command(
            now,
            conn,
            frame(&format!(
                "bgapi originate {{origination_uuid=bench-{i}}}loopback/{i}/default &park()"
            )),
        );
        drain(&mut sw, &mut events, &mut bytes);
        // The virtual time the switch itself reached the target, not the originate count
        // times the step.
        if reached.is_none() && sw.channel_count() >= target {
            reached = Some(now);
        }
    }
    let wall_ramp = wall.elapsed();
    let channels = sw.channel_count();
    let virtual_ramp = reached.unwrap_or(now) - ramp_start;
    assert_eq!(channels, target, "every originate made a channel");
    // The figures say "during the ramp": what the hold and the hangups encode is not counted.
    let (ramp_events, ramp_bytes) = (events, bytes);

    let hold = Instant::now();
    let hold_from = now;
    let until = now + Duration::from_secs(60);
    while let Some(t) = sw.poll_timeout().filter(|&t| t <= until) {
        now = t;
        sw.handle_timeout(now);
        drain(&mut sw, &mut events, &mut bytes);
    }
    let wall_hold = hold.elapsed();
    let virtual_hold = now - hold_from;
    let wall_hold_per_s = wall_hold.div_f64(virtual_hold.as_secs_f64().max(1e-9));
    let rss_holding = proc_status("VmRSS:");
    sw.handle_command(now, conn, frame("api hupall NORMAL_CLEARING"));
    drain(&mut sw, &mut events, &mut bytes);
    CoreFigures {
        channels,
        virtual_ramp,
        wall_ramp,
        virtual_hold,
        wall_hold_per_s,
        events: ramp_events,
        bytes: ramp_bytes,
        after_hupall: sw.channel_count(),
        rss_holding,
    }
}

struct LoopbackFigures {
    /// Channels up after the ramp, as `show channels` counts them.
    channels: u64,
    rate: f64,
    p50: Duration,
    p99: Duration,
    events: u64,
}

fn loopback_single_core() -> LoopbackFigures {
    // The switch: one thread, current_thread runtime.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let switch = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let handle = switchyard_esl::sim::spawn(listener, SimConfig::default(), 1);
            addr_tx.send(handle.local_addr()).expect("addr");
            let _ = stop_rx.await;
            handle.shutdown().await;
        });
    });
    let addr = addr_rx.recv().expect("switch started");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let figures = rt.block_on(async move {
        let mut cfg =
            ClientConfig::new(addr.to_string(), Auth::Password("ClueCon".into())).events("ALL");
        cfg.max_jobs = CHANNELS;
        cfg.max_pending = 1024;
        let (client, mut stream) = Client::connect(cfg).await.expect("connect");
        // Shared so the count can be read when the last job reply arrives: the `hupall` burst
        // after it is not part of the ramp.
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some(e) = stream.recv().await {
                    if let ClientEvent::Event(_) = e {
                        seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
        };
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(RATE as usize));
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..CHANNELS {
            let permit = sem.clone().acquire_owned().await.expect("semaphore");
            let client = client.clone();
            tasks.spawn(async move {
                let t = Instant::now();
                let r = client
                    .bgapi(&format!(
                        "originate {{origination_uuid=lb-{i}}}loopback/{i}/default &park()"
                    ))
                    .await
                    .expect("bgapi");
                assert!(r.is_ok(), "originate failed: {:?}", r.body_str());
                drop(permit);
                t.elapsed()
            });
        }
        let mut lat: Vec<Duration> = Vec::with_capacity(CHANNELS);
        while let Some(r) = tasks.join_next().await {
            lat.push(r.expect("task"));
        }
        let elapsed = start.elapsed();
        let events = seen.load(std::sync::atomic::Ordering::Relaxed);
        let count = client
            .api("show channels as json")
            .await
            .expect("show channels");
        let v: serde_json::Value = serde_json::from_slice(&count).expect("json");
        let channels = v["row_count"].as_u64().unwrap_or(0);
        assert_eq!(channels, CHANNELS as u64, "all channels up");
        client.api("hupall NORMAL_CLEARING").await.expect("hupall");
        tokio::time::sleep(Duration::from_millis(500)).await;
        client.shutdown().await.ok();
        let _ = counter.await;
        lat.sort();
        LoopbackFigures {
            channels,
            rate: channels as f64 / elapsed.as_secs_f64(),
            p50: lat[lat.len() / 2],
            p99: lat[lat.len() * 99 / 100],
            events,
        }
    });
    let _ = stop_tx.send(());
    let _ = switch.join();
    figures
}

fn peak_rss() -> String {
    proc_status("VmHWM:")
}

fn proc_status(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .map(|l| l.trim_start_matches(key).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}
