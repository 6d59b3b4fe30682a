//! Wallboards under load: `switchyard demo` (its own process: the real engine, the built-in
//! fake switch, SQLite) taking inbound callers at 10 calls/s, watched by 1,000 wallboards, each
//! an SSE subscriber of `/v1/live` over loopback, as the `/wallboard` page is.
//!
//! Measured:
//! - lag from the event to the SSE frame: for every caller a subscriber sees queued for the
//!   first time, the time it read the `call.queued` frame minus the frame's
//!   `waiting_since_ms`, which the server stamps (wall clock) when it takes the engine's event
//!   off the engine's channel and turns it into the live state; p50 / p99 / max over all
//!   subscribers. The load generator runs on the same 2 cores as the server, so its own
//!   parsing is in the figure.
//! - the server's CPU (its process's user + system time over the window, in % of one core) and
//!   memory (resident now and at peak), first for a window with no subscriber (the demo alone),
//!   then with every wallboard connected.
//! - resyncs (a subscriber fell so far behind that the hub sent it a new snapshot) and
//!   subscribers that did not connect or dropped.
//!
//! ```text
//! cargo build --release --bin switchyard
//! cargo bench --bench wallboard_load [-- WALLBOARDS SECONDS CALLS_PER_MINUTE]
//! ```
//! (defaults 1000 60 600). `SWITCHYARD_BIN` names another binary.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

/// The release binary beside this bench's own (`target/release/deps/..` -> `target/release`).
fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SWITCHYARD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("own path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>/deps");
    dir.join("switchyard")
}

/// The demo process, killed when dropped.
struct Demo {
    child: Child,
    _dir: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn start_demo(port: u16, calls_per_minute: f64) -> (Demo, String) {
    let bin = binary();
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release --bin switchyard` first (or set SWITCHYARD_BIN)",
        bin.display()
    );
    let dir =
        std::env::temp_dir().join(format!("switchyard-wallboard-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut child = Command::new(&bin)
        .arg("demo")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--database")
        .arg(dir.join("demo.db"))
        .arg("--calls-per-minute")
        .arg(calls_per_minute.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut key = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("the demo's output");
        if let Some(k) = line.strip_prefix("API key: ") {
            key = Some(k.trim().to_string());
            break;
        }
    }
    let key = key.expect("the demo printed its API key");
    (Demo { child, _dir: dir }, key)
}

/// The process's user + system CPU time, from `/proc/<pid>/stat` (clock ticks of 1/100 s,
/// Linux's USER_HZ on every architecture it exports it for).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// (VmRSS, VmHWM) in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 1024.0
    };
    (kib("VmRSS:"), kib("VmHWM:"))
}

#[derive(Default)]
struct Tally {
    lags: Mutex<Vec<f64>>,
    frames: AtomicU64,
    resyncs: AtomicU64,
    connected: AtomicU64,
    dropped: AtomicU64,
}

/// One wallboard: the snapshot, then every delta; records the lag of each first `call.queued`
/// of a caller. Stops at `until`.
async fn wallboard(
    http: reqwest::Client,
    url: String,
    key: String,
    tally: Arc<Tally>,
    until: Instant,
) {
    let Ok(mut resp) = http.get(&url).bearer_auth(&key).send().await else {
        return;
    };
    if resp.status().as_u16() != 200 {
        return;
    }
    tally.connected.fetch_add(1, Ordering::Relaxed);
    let mut buf = String::new();
    // Callers already seen (in the snapshot or an earlier delta): a caller queued again after
    // an offer nobody took keeps its first wait start, so only its first frame is timed.
    let mut seen: HashSet<String> = HashSet::new();
    let mut mine = Vec::new();
    let deadline = tokio::time::Instant::from_std(until);
    loop {
        let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Err(_) => break,
            Ok(Ok(Some(c))) => c,
            Ok(_) => {
                tally.dropped.fetch_add(1, Ordering::Relaxed);
                break;
            }
        };
        let at = now_ms();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            tally.frames.fetch_add(1, Ordering::Relaxed);
            let event = block
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("");
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or("");
            match event {
                "snapshot" | "resync" => {
                    if event == "resync" {
                        tally.resyncs.fetch_add(1, Ordering::Relaxed);
                    }
                    let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                    if let Some(calls) = v["state"]["calls"].as_array() {
                        for c in calls {
                            if let Some(id) = c["id"].as_str() {
                                seen.insert(id.to_string());
                            }
                        }
                    }
                }
                "call.queued" => {
                    let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                    if let (Some(id), Some(since)) =
                        (v["id"].as_str(), v["waiting_since_ms"].as_f64())
                        && seen.insert(id.to_string())
                    {
                        mine.push(at - since);
                    }
                }
                "call.completed" | "call.abandoned" => {
                    // Bounded: a caller that ended is not queued again.
                    let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                    if let Some(id) = v["id"].as_str() {
                        seen.remove(id);
                    }
                }
                _ => {}
            }
        }
    }
    tally.lags.lock().expect("lags").extend(mine);
}

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let boards = args.first().copied().unwrap_or(1000.0) as usize;
    let secs = args.get(1).copied().unwrap_or(60.0);
    let cpm = args.get(2).copied().unwrap_or(600.0);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let (demo, key) = start_demo(port, cpm);
    let pid = demo.child.id();
    let base = format!("http://127.0.0.1:{port}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        for _ in 0..100 {
            if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The demo alone first: the callers build up to their steady state, then one window.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let (c0, t0) = (cpu_time(pid), Instant::now());
        tokio::time::sleep(Duration::from_secs_f64(secs.min(30.0))).await;
        let alone = cpu_time(pid).saturating_sub(c0).as_secs_f64() / t0.elapsed().as_secs_f64();
        let (rss_alone, _) = memory(pid);
        println!(
            "demo at {cpm} calls/min, no wallboard: server CPU {:.1}% of one core, RSS {rss_alone:.1} MiB",
            alone * 100.0
        );

        let tally = Arc::new(Tally::default());
        let connect_for = Duration::from_secs(10);
        let until = Instant::now() + connect_for + Duration::from_secs_f64(secs);
        let mut subs = tokio::task::JoinSet::new();
        for i in 0..boards {
            subs.spawn(wallboard(
                http.clone(),
                format!("{base}/v1/live"),
                key.clone(),
                tally.clone(),
                until,
            ));
            // Spread over the connect window, as screens coming on would.
            if i % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        tokio::time::sleep_until(tokio::time::Instant::from_std(until - Duration::from_secs_f64(secs))).await;
        tally.lags.lock().expect("lags").clear();
        let (c1, t1) = (cpu_time(pid), Instant::now());
        while subs.join_next().await.is_some() {}
        let window = t1.elapsed().as_secs_f64();
        let with = cpu_time(pid).saturating_sub(c1).as_secs_f64() / window;
        let (rss, hwm) = memory(pid);
        let mut lags = std::mem::take(&mut *tally.lags.lock().expect("lags"));
        println!(
            "{boards} wallboards ({} connected, {} dropped, {} resyncs), {window:.0} s at {cpm} calls/min: {} first call.queued frames timed of {} frames read; lag event -> SSE frame p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; server CPU {:.1}% of one core; RSS {rss:.1} MiB (peak {hwm:.1} MiB)",
            tally.connected.load(Ordering::Relaxed),
            tally.dropped.load(Ordering::Relaxed),
            tally.resyncs.load(Ordering::Relaxed),
            lags.len(),
            tally.frames.load(Ordering::Relaxed),
            pct(&mut lags, 0.5),
            pct(&mut lags, 0.99),
            pct(&mut lags, 1.0),
            with * 100.0,
        );
    });
    drop(demo);
}
