//! Decision latency of the engine under its driver, over loopback against the fake switch.
//!
//! 500 agents (`user/1000`..`user/1499`, answering after 50 ms) are registered on the fake
//! switch and available in one longest-idle-agent queue. Callers arrive one after another
//! through real outbound sockets (each caller talks 200 ms once bridged, so agents keep
//! cycling); the next caller is placed as soon as the previous one's agent leg is on its way.
//! Two figures per call, both starting when the driver feeds `CallArrived` to the core (after
//! the caller's socket is up: CHANNEL_DATA read, `myevents` and `linger` acknowledged):
//!
//! - **decision**: until the agent's `bgapi originate` sits in the Event Socket client's queue,
//!   in order (the driver's [`Probe`] hook, same clock). Engine decision + command formatting +
//!   the loop's bookkeeping.
//! - **wire**: until the `bgapi originate` bytes are read off the socket by a byte-forwarding
//!   proxy between the driver and the fake switch. Adds the client task's wake-up, the socket
//!   write and one loopback hop.
//!
//! ```sh
//! cargo bench --bench engine_loopback            # 3000 calls at 100/s, first 200 warm-up
//! ENGINE_LOOPBACK_CALLS=10000 ENGINE_LOOPBACK_RATE=1000 cargo bench --bench engine_loopback
//! ```
//! The rate is an upper bound: a call is placed only once the previous one's originate was
//! seen, so a very high rate means "back to back".
//! Target: wire p99 <= 1 ms.
//!
//! The fake switch and the proxy run on threads of their own, the fake at nice 19 and the
//! proxy at nice -10 (`ENGINE_LOOPBACK_NICE=0` leaves both at 0). On a 2-vCPU machine the
//! fake switch uses about two thirds of the CPU; at equal priority its bursts preempt the
//! driver and the proxy, and the tail measures the kernel's scheduler (FreeSWITCH would run
//! on cores of its own). The median moves little either way.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_engine::config::{Announcements, EngineConfig};
use switchyard_engine::driver::{Driver, DriverConfig, NullSink, Probe};
use switchyard_engine::{
    AgentConfig, AgentId, Command, Engine, LegId, Membership, Presence, QueueConfig, QueueId,
    Strategy, SwitchCommand,
};
use switchyard_esl::sim::{
    AgentBehaviour, AgentModel, Dist, InboundCall, Scenario, SimConfig, SimHandle,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const AGENTS: u32 = 500;
const WARMUP: usize = 200;
const QUEUE: QueueId = QueueId(1);

/// Timestamps taken on the driver's loop.
#[derive(Default)]
struct Stamps {
    arrivals: Mutex<Vec<(LegId, Instant)>>,
    originates: Mutex<Vec<Instant>>,
}

impl Probe for Stamps {
    fn call_arrived(&self, leg: LegId, at: Instant) {
        self.arrivals.lock().unwrap().push((leg, at));
    }
    fn command_sent(&self, cmd: &SwitchCommand, at: Instant) {
        if matches!(cmd, SwitchCommand::Originate { .. }) {
            self.originates.lock().unwrap().push(at);
        }
    }
}

fn main() {
    let env = |name: &str, default: f64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(default)
    };
    let calls = (env("ENGINE_LOOPBACK_CALLS", 3000.0) as usize).max(WARMUP + 100);
    let rate = env("ENGINE_LOOPBACK_RATE", 100.0).clamp(1.0, 100_000.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(run(calls, rate));
}

async fn run(calls: usize, rate: f64) {
    let gap = Duration::from_secs_f64(1.0 / rate);
    let outbound = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = outbound.local_addr().unwrap();
    // The fake switch and the measuring proxy run on threads of their own, as FreeSWITCH
    // would: sharing the driver's two workers would measure tokio's cooperative scheduling
    // of the fake's bursts rather than the driver.
    let nice = env_flag("ENGINE_LOOPBACK_NICE", true);
    let (sim, sim_rt) = on_own_thread("fake switch", nice.then_some(19), move || async move {
        let sim = fake_switch(target).await;
        let addr = sim.local_addr();
        (sim, addr)
    });
    let (sim, sim_addr) = sim;
    let wire: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let w = Arc::clone(&wire);
    let (proxy_addr, proxy_rt) =
        on_own_thread("proxy", nice.then_some(-10), move || proxy(sim_addr, w));

    let stamps = Arc::new(Stamps::default());
    let mut cfg = DriverConfig::new(proxy_addr.to_string(), "ClueCon").route("5000", QUEUE);
    cfg.probe = Some(stamps.clone());
    let engine = Engine::new(
        EngineConfig::default(),
        1,
        tokio::time::Instant::now().into_std(),
    );
    let driver = Driver::start(cfg, engine, outbound, NullSink)
        .await
        .expect("driver starts");
    let api = driver.handle().clone();
    api.command(Command::UpsertQueue(Box::new(QueueConfig {
        id: QUEUE,
        name: "bench".into(),
        strategy: Strategy::LongestIdleAgent,
        offer_timeout: Duration::from_secs(10),
        announcements: Announcements {
            first_after: None,
            every: None,
            ..Announcements::default()
        },
        ..QueueConfig::default()
    })))
    .await
    .unwrap();
    for i in 0..AGENTS {
        let agent = AgentId(i + 1);
        api.command(Command::UpsertAgent(Box::new(AgentConfig {
            id: agent,
            name: format!("agent {i}"),
            contact: format!("user/{}", 1000 + i),
            ..AgentConfig::default()
        })))
        .await
        .unwrap();
        api.command(Command::SetMemberships {
            agent,
            memberships: vec![Membership::new(QUEUE)],
        })
        .await
        .unwrap();
        api.command(Command::SetAgentPresence {
            agent,
            presence: Presence::Available,
        })
        .await
        .unwrap();
    }

    let started = Instant::now();
    let mut next = tokio::time::Instant::now();
    for k in 0..calls {
        // Paced arrivals (a Poisson-free, steady rate): a busy switch, not a saturated one.
        tokio::time::sleep_until(next).await;
        next += gap;
        sim.place_inbound_call(InboundCall {
            caller_number: format!("+1555{k:07}"),
            destination: "5000".into(),
            talk_time: Some(Duration::from_millis(200)),
            ..InboundCall::default()
        })
        .await
        .expect("call placed");
        // One agent leg per call: wait until this call's originate is on the wire.
        let deadline = Instant::now() + Duration::from_secs(10);
        while wire.lock().unwrap().len() <= k {
            assert!(Instant::now() < deadline, "call {k} was never offered");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    let elapsed = started.elapsed();

    let arrivals = stamps.arrivals.lock().unwrap().clone();
    let originates = stamps.originates.lock().unwrap().clone();
    let wire = wire.lock().unwrap().clone();
    assert_eq!(arrivals.len(), calls, "every caller reached the core once");
    assert!(originates.len() >= calls && wire.len() >= calls);
    let decision: Vec<Duration> = (WARMUP..calls)
        .map(|k| originates[k].saturating_duration_since(arrivals[k].1))
        .collect();
    let on_wire: Vec<Duration> = (WARMUP..calls)
        .map(|k| wire[k].saturating_duration_since(arrivals[k].1))
        .collect();
    let stats = api.stats();
    let report = driver.shutdown().await.unwrap();
    let _ = sim_rt.send(Stop::Sim(sim));
    let _ = proxy_rt.send(Stop::Done);

    println!(
        "engine_loopback: {calls} calls one after another at up to {rate} calls/s \
         ({WARMUP} warm-up), {AGENTS} agents, helper threads reniced: {nice}"
    );
    println!(
        "  placed in {:.2} s ({:.0} calls/s; each call waits for its originate)",
        elapsed.as_secs_f64(),
        calls as f64 / elapsed.as_secs_f64()
    );
    print_figures(
        "decision (CallArrived -> originate queued on the ESL client)",
        decision,
    );
    print_figures(
        "wire     (CallArrived -> bgapi originate read off the socket)",
        on_wire,
    );
    println!(
        "  driver: {} commands sent, {} failed, {} records",
        stats.commands_sent, stats.commands_failed, report.stats.records
    );
}

fn print_figures(what: &str, mut v: Vec<Duration>) {
    v.sort_unstable();
    let pick = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "  {what}: p50 {:.0} us, p99 {:.0} us, max {:.0} us (n = {})",
        us(pick(0.50)),
        us(pick(0.99)),
        us(*v.last().unwrap_or(&Duration::ZERO)),
        v.len()
    );
}

enum Stop {
    Sim(SimHandle),
    Done,
}

fn env_flag(name: &str, default: bool) -> bool {
    std::env::var(name).map_or(default, |v| v != "0")
}

/// Runs `start` on a current-thread runtime on a new thread at niceness `nice` (best effort,
/// through `renice`; Linux), returns its output and a channel that stops the thread (shutting
/// the fake switch down first when it is handed back).
fn on_own_thread<T, F, Fut>(
    name: &str,
    nice: Option<i32>,
    start: F,
) -> (T, std::sync::mpsc::Sender<Stop>)
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    let (out_tx, out_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<Stop>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Some(n) = nice {
                renice_this_thread(n);
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let _ = out_tx.send(start().await);
                // Blocking this runtime's only thread would stop its tasks: poll instead.
                loop {
                    match stop_rx.try_recv() {
                        Ok(Stop::Sim(sim)) => return sim.shutdown().await,
                        Ok(Stop::Done) | Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                            return;
                        }
                        Err(std::sync::mpsc::TryRecvError::Empty) => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        })
        .expect("a thread");
    (out_rx.recv().expect("the thread starts"), stop_tx)
}

/// `renice` of the calling thread (its tid from `/proc/thread-self`). Failing (not Linux, no
/// `renice`, no permission for a negative value) only prints a note.
fn renice_this_thread(nice: i32) {
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|t| t.to_string_lossy().into_owned()));
    let ok = tid.is_some_and(|tid| {
        std::process::Command::new("renice")
            .args(["-n", &nice.to_string(), "-p", &tid])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        println!("  (note: could not renice a helper thread to {nice})");
    }
}

async fn fake_switch(inbound_target: SocketAddr) -> SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scenario = Scenario {
        seed: 9,
        agents: AgentModel {
            extensions: vec![format!("1000-{}", 1000 + AGENTS - 1)],
            behaviour: AgentBehaviour {
                answer_delay: Dist::Fixed(0.05),
                ..AgentBehaviour::default()
            },
            overrides: Vec::new(),
        },
        ..Scenario::default()
    };
    switchyard_esl::sim::spawn(
        listener,
        SimConfig {
            inbound_target: Some(inbound_target.to_string()),
            scenario,
            ..SimConfig::default()
        },
        9,
    )
}

/// Forwards bytes both ways and stamps every `bgapi originate` the client writes.
async fn proxy(upstream: SocketAddr, stamps: Arc<Mutex<Vec<Instant>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let _ = client.set_nodelay(true);
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let _ = server.set_nodelay(true);
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut sr, &mut cw).await;
            });
            let stamps = Arc::clone(&stamps);
            tokio::spawn(async move {
                const NEEDLE: &[u8] = b"bgapi originate";
                let mut buf = vec![0u8; 64 * 1024];
                // The tail of the previous read, so a needle split across reads is found.
                let mut carry: Vec<u8> = Vec::new();
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let at = Instant::now();
                    let mut hay = std::mem::take(&mut carry);
                    hay.extend_from_slice(&buf[..n]);
                    let found = hay.windows(NEEDLE.len()).filter(|w| *w == NEEDLE).count();
                    if found > 0 {
                        let mut s = stamps.lock().unwrap();
                        s.extend(std::iter::repeat_n(at, found));
                    }
                    let keep = hay.len().min(NEEDLE.len() - 1);
                    carry = hay[hay.len() - keep..].to_vec();
                    if sw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}
