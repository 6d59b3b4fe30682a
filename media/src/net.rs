//! The socket shell: one UDP socket that receives the recorder legs' RTP, routes each
//! datagram by its source address to a capture and a leg, and writes WAV files.
//!
//! FreeSWITCH sends a leg's RTP from the port its SDP offer names (symmetric RTP), so the
//! SIP endpoint that answers the offer (`crate::sip`) knows each flow's source address before
//! the first packet and adds it with `Route`; many legs then share one local port. Datagrams
//! from an address no recording expects are counted and dropped. mod_oreka's forks are the
//! exception (`crate::sip`'s `oreka`): each direction's RTP goes to a port number FreeSWITCH
//! chose, ignoring the answer, so `Listen` binds a socket on that port whose datagrams a small
//! task hands to this one over a bounded channel, and routes them by the port they arrived at.
//!
//! ```text
//!   commands (Start/Pause/Resume/Stop) ─┐
//!   socket readable ─> recv_from ─> flows[source] ─> capture.push(now, leg, datagram)
//!   tick (20 ms) ─> every capture: poll(now) ─> WavSink::write / events logged
//!   commands closed ─> every recording stopped ─> RecorderReport
//! ```
//!
//! One task does it all: captures are cheap to poll, and one core carries thousands of
//! streams (benches/media_capture.rs).

use std::collections::HashMap;
use std::hash::Hash;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use crate::MediaError;
use crate::capture::{Capture, CaptureOutput, CaptureStats};
use crate::config::{CaptureConfig, Leg, PayloadMap};
use crate::wav::{WavSink, WavSummary};

/// Largest datagram read: L16 at 48 kHz in 20 ms packets is 1,932 bytes; anything longer is
/// read truncated (and then fails its length checks).
const DATAGRAM_BUFFER: usize = 2048;
/// Source addresses one recording may take RTP from (two legs, each of which may move once).
const MAX_FLOWS: usize = 4;
/// Datagrams read per system call (recvmmsg on Linux).
const PER_CALL: usize = 64;
/// System calls per wake-up before the tick and commands get a turn.
const CALLS_PER_WAKE: usize = 16;
/// Datagrams from fork ports waiting for the recorder; a full queue makes the port tasks
/// wait, and the kernel's socket buffers hold what comes meanwhile.
const FORK_QUEUE: usize = 1024;

/// How the recorder binds and paces itself.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub bind: SocketAddr,
    /// SO_RCVBUF to ask for (the kernel caps it at `net.core.rmem_max`); `None` keeps the
    /// system default. Bursts of thousands of streams need a few MB.
    pub recv_buffer_bytes: Option<usize>,
    /// How often every capture is polled and its audio written.
    pub tick: Duration,
    /// Recordings held at once; `Start` beyond it is refused.
    pub max_recordings: usize,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            recv_buffer_bytes: Some(8 << 20),
            tick: Duration::from_millis(20),
            max_recordings: 10_000,
        }
    }
}

/// What the recorder is asked to do. Every command but `Unroute` answers on its `reply`.
#[derive(Debug)]
pub enum RecorderCommand<K> {
    /// Starts recording `flows` (source address -> leg) into a WAV file at `path`.
    Start {
        key: K,
        capture: CaptureConfig,
        path: PathBuf,
        flows: Vec<(SocketAddr, Leg)>,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    /// Adds a flow to a running recording: RTP from `from` is `leg`, decoded with
    /// `payload_types` (what the leg's SDP agreed). `replaces` is the leg's previous flow (a
    /// re-INVITE that moved the sender), dropped only once the new one is in place.
    Route {
        key: K,
        leg: Leg,
        from: SocketAddr,
        replaces: Option<SocketAddr>,
        payload_types: PayloadMap,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    /// Stops taking RTP from `from` (the leg hung up); later datagrams from it are stray.
    Unroute { from: SocketAddr },
    /// Binds local `port` (on the recorder's address) and records what arrives there from
    /// `peers` as `leg` of recording `key`: an mod_oreka fork, which sends RTP to the port
    /// number it chose rather than to the answer's.
    Listen {
        key: K,
        leg: Leg,
        port: u16,
        peers: Vec<IpAddr>,
        payload_types: PayloadMap,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    /// Closes a `Listen` port (the fork's BYE); later datagrams to it are refused by the kernel.
    Unlisten { port: u16 },
    /// Starts a silent span (see [`Capture::pause`]); answers where it starts.
    Pause {
        key: K,
        reply: oneshot::Sender<Result<Duration, MediaError>>,
    },
    /// Ends the silent span; answers where it ends (`None`: was not paused).
    Resume {
        key: K,
        reply: oneshot::Sender<Result<Option<Duration>, MediaError>>,
    },
    /// Finishes the recording and closes its file.
    Stop {
        key: K,
        reply: oneshot::Sender<Result<RecordingSummary, MediaError>>,
    },
}

/// A finished recording: its file and what the capture counted.
#[derive(Debug)]
pub struct RecordingSummary {
    pub wav: WavSummary,
    pub stats: CaptureStats,
}

/// What the recorder saw, handed back when its command channel closes.
#[derive(Debug)]
pub struct RecorderReport<K> {
    pub datagrams: u64,
    pub bytes: u64,
    /// Datagrams from addresses no recording expected.
    pub stray: u64,
    /// The recordings still running at the end, stopped.
    pub recordings: Vec<(K, Result<RecordingSummary, MediaError>)>,
}

#[derive(Debug)]
struct Recording<K> {
    key: K,
    capture: Capture,
    /// `None` once writing failed (the error is kept for `Stop`).
    sink: Option<WavSink>,
    failure: Option<MediaError>,
    flows: Vec<SocketAddr>,
    /// Fork ports (`Listen`) feeding this recording.
    ports: Vec<u16>,
}

impl<K> Recording<K> {
    /// Hands everything the capture has due to the file.
    fn drain(&mut self, now: Duration) {
        while let Some(output) = self.capture.poll(now) {
            match output {
                CaptureOutput::Audio(pcm) => {
                    if let Some(sink) = &mut self.sink
                        && let Err(error) = sink.write(&pcm)
                    {
                        tracing::warn!(%error, "recording stopped writing");
                        self.failure = Some(error);
                        self.sink = None;
                    }
                }
                CaptureOutput::Event(event) => tracing::debug!(?event, "capture event"),
            }
        }
    }

    fn finish(mut self, now: Duration) -> Result<RecordingSummary, MediaError> {
        self.capture.finish(now);
        self.drain(now);
        let stats = self.capture.stats();
        match (self.sink, self.failure) {
            (_, Some(error)) => Err(error),
            (Some(sink), None) => Ok(RecordingSummary {
                wav: sink.finish()?,
                stats,
            }),
            // A sink is only dropped together with recording its failure.
            (None, None) => Err(MediaError::NoSuchRecording),
        }
    }
}

/// The UDP recorder. Build it with [`UdpRecorder::bind`], then `run` it with a command
/// channel.
#[derive(Debug)]
pub struct UdpRecorder<K> {
    socket: UdpSocket,
    config: RecorderConfig,
    origin: Instant,
    /// Recordings by slot; a slot is reused after `Stop`.
    slots: Vec<Option<Recording<K>>>,
    by_key: HashMap<K, usize>,
    flows: HashMap<SocketAddr, (usize, Leg)>,
    ports: HashMap<u16, ForkPort>,
    fork_tx: mpsc::Sender<ForkDatagram>,
    fork_rx: mpsc::Receiver<ForkDatagram>,
    batch: batch::Batch,
    datagrams: u64,
    bytes: u64,
    stray: u64,
}

impl<K: Hash + Eq + Clone> UdpRecorder<K> {
    pub async fn bind(config: RecorderConfig) -> Result<Self, MediaError> {
        let socket = UdpSocket::bind(config.bind).await?;
        if let Some(bytes) = config.recv_buffer_bytes {
            socket2::SockRef::from(&socket).set_recv_buffer_size(bytes)?;
        }
        let (fork_tx, fork_rx) = mpsc::channel(FORK_QUEUE);
        Ok(UdpRecorder {
            socket,
            config,
            origin: Instant::now(),
            slots: Vec::new(),
            by_key: HashMap::new(),
            flows: HashMap::new(),
            ports: HashMap::new(),
            fork_tx,
            fork_rx,
            batch: batch::Batch::new(),
            datagrams: 0,
            bytes: 0,
            stray: 0,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, MediaError> {
        Ok(self.socket.local_addr()?)
    }

    /// The receive buffer the kernel granted (Linux reports twice what was asked, for its
    /// bookkeeping).
    pub fn recv_buffer_bytes(&self) -> Result<usize, MediaError> {
        Ok(socket2::SockRef::from(&self.socket).recv_buffer_size()?)
    }

    /// Serves datagrams and commands until the command channel closes, then stops every
    /// recording still running.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<RecorderCommand<K>>,
    ) -> RecorderReport<K> {
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            // Commands and the tick before the socket: under a flood of datagrams the files
            // still get written and the recorder still obeys.
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    None => break,
                },
                _ = tick.tick() => self.poll_all(),
                Some(datagram) = self.fork_rx.recv() => self.push_fork(datagram),
                ready = self.socket.readable() => match ready {
                    Ok(()) => self.read_batch(),
                    Err(error) => tracing::warn!(%error, "RTP socket"),
                },
            }
        }
        let now = self.now();
        let recordings = self
            .slots
            .drain(..)
            .flatten()
            .map(|recording| (recording.key.clone(), recording.finish(now)))
            .collect();
        RecorderReport {
            datagrams: self.datagrams,
            bytes: self.bytes,
            stray: self.stray,
            recordings,
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn read_batch(&mut self) {
        for _ in 0..CALLS_PER_WAKE {
            let batch = &mut self.batch;
            match self.socket.try_io(tokio::io::Interest::READABLE, || {
                batch.receive(&self.socket)
            }) {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(error) => {
                    // ICMP port unreachable and the like: nothing to do but go on.
                    tracing::debug!(%error, "RTP receive");
                    return;
                }
            }
            let now = self.now();
            let received = self.batch.len();
            for i in 0..received {
                let (source, datagram) = self.batch.get(i);
                self.datagrams += 1;
                self.bytes += datagram.len() as u64;
                let Some(&(slot, leg)) = self.flows.get(&source) else {
                    self.stray += 1;
                    continue;
                };
                if let Some(Some(recording)) = self.slots.get_mut(slot) {
                    recording.capture.push(now, leg, datagram);
                }
            }
            if received < PER_CALL {
                // The queue is empty: let tokio wait for readiness again.
                return;
            }
        }
    }

    fn push_fork(&mut self, (port, source, datagram): ForkDatagram) {
        self.datagrams += 1;
        self.bytes += datagram.len() as u64;
        let now = self.now();
        match self.ports.get(&port) {
            Some(fork) if fork.peers.contains(&source.ip()) => {
                if let Some(Some(recording)) = self.slots.get_mut(fork.slot) {
                    recording.capture.push(now, fork.leg, &datagram);
                }
            }
            _ => self.stray += 1,
        }
    }

    fn listen(
        &mut self,
        key: &K,
        leg: Leg,
        port: u16,
        peers: Vec<IpAddr>,
        payload_types: PayloadMap,
    ) -> Result<(), MediaError> {
        let slot = *self.by_key.get(key).ok_or(MediaError::NoSuchRecording)?;
        if self.ports.contains_key(&port) {
            return Err(MediaError::FlowInUse {
                addr: SocketAddr::new(self.config.bind.ip(), port),
            });
        }
        let recording = self
            .slots
            .get_mut(slot)
            .and_then(Option::as_mut)
            .ok_or(MediaError::NoSuchRecording)?;
        if recording.ports.len() >= MAX_FLOWS {
            return Err(MediaError::Config {
                reason: "a recording takes RTP on at most 4 fork ports",
            });
        }
        let socket = std::net::UdpSocket::bind(SocketAddr::new(self.config.bind.ip(), port))?;
        socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(socket)?;
        recording.capture.set_payload_types(leg, payload_types)?;
        recording.ports.push(port);
        let task = tokio::spawn(forward_fork(socket, port, self.fork_tx.clone()));
        self.ports.insert(
            port,
            ForkPort {
                slot,
                leg,
                peers,
                task,
            },
        );
        Ok(())
    }

    fn unlisten(&mut self, port: u16) {
        if let Some(fork) = self.ports.remove(&port)
            && let Some(Some(recording)) = self.slots.get_mut(fork.slot)
        {
            recording.ports.retain(|&p| p != port);
        }
    }

    fn poll_all(&mut self) {
        let now = self.now();
        for recording in self.slots.iter_mut().flatten() {
            recording.drain(now);
        }
    }

    fn handle(&mut self, command: RecorderCommand<K>) {
        // A caller that stopped waiting for the answer is no reason to fail.
        match command {
            RecorderCommand::Start {
                key,
                capture,
                path,
                flows,
                reply,
            } => {
                let _ = reply.send(self.start(key, capture, path, flows));
            }
            RecorderCommand::Route {
                key,
                leg,
                from,
                replaces,
                payload_types,
                reply,
            } => {
                let _ = reply.send(self.route(&key, leg, from, replaces, payload_types));
            }
            RecorderCommand::Unroute { from } => self.unroute(from),
            RecorderCommand::Listen {
                key,
                leg,
                port,
                peers,
                payload_types,
                reply,
            } => {
                let _ = reply.send(self.listen(&key, leg, port, peers, payload_types));
            }
            RecorderCommand::Unlisten { port } => self.unlisten(port),
            RecorderCommand::Pause { key, reply } => {
                let now = self.now();
                let _ = reply.send(self.recording(&key).and_then(|r| r.capture.pause(now)));
            }
            RecorderCommand::Resume { key, reply } => {
                let now = self.now();
                let _ = reply.send(self.recording(&key).map(|r| r.capture.resume(now)));
            }
            RecorderCommand::Stop { key, reply } => {
                let _ = reply.send(self.stop(&key));
            }
        }
    }

    fn recording(&mut self, key: &K) -> Result<&mut Recording<K>, MediaError> {
        let slot = *self.by_key.get(key).ok_or(MediaError::NoSuchRecording)?;
        self.slots
            .get_mut(slot)
            .and_then(Option::as_mut)
            .ok_or(MediaError::NoSuchRecording)
    }

    fn start(
        &mut self,
        key: K,
        config: CaptureConfig,
        path: PathBuf,
        flows: Vec<(SocketAddr, Leg)>,
    ) -> Result<(), MediaError> {
        if self.by_key.contains_key(&key) {
            return Err(MediaError::RecordingExists);
        }
        if self.by_key.len() >= self.config.max_recordings {
            return Err(MediaError::RecorderFull {
                limit: self.config.max_recordings,
            });
        }
        if flows.len() > MAX_FLOWS {
            return Err(MediaError::Config {
                reason: "a recording takes RTP from at most 4 source addresses",
            });
        }
        if let Some(&(addr, _)) = flows.iter().find(|(addr, _)| self.flows.contains_key(addr)) {
            return Err(MediaError::FlowInUse { addr });
        }
        let capture = Capture::new(config, self.now())?;
        let sink = WavSink::for_capture(path, capture.config())?;
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        for &(addr, leg) in &flows {
            self.flows.insert(addr, (slot, leg));
        }
        self.slots[slot] = Some(Recording {
            key: key.clone(),
            capture,
            sink: Some(sink),
            failure: None,
            flows: flows.into_iter().map(|(addr, _)| addr).collect(),
            ports: Vec::new(),
        });
        self.by_key.insert(key, slot);
        Ok(())
    }

    fn route(
        &mut self,
        key: &K,
        leg: Leg,
        from: SocketAddr,
        replaces: Option<SocketAddr>,
        payload_types: PayloadMap,
    ) -> Result<(), MediaError> {
        let slot = *self.by_key.get(key).ok_or(MediaError::NoSuchRecording)?;
        match self.flows.get(&from) {
            Some(&(owner, owned_leg)) if owner == slot && owned_leg == leg => {}
            Some(_) => return Err(MediaError::FlowInUse { addr: from }),
            None => {}
        }
        let recording = self
            .slots
            .get_mut(slot)
            .and_then(Option::as_mut)
            .ok_or(MediaError::NoSuchRecording)?;
        let kept = recording
            .flows
            .iter()
            .filter(|&&addr| Some(addr) != replaces && addr != from)
            .count();
        if kept >= MAX_FLOWS {
            return Err(MediaError::Config {
                reason: "a recording takes RTP from at most 4 source addresses",
            });
        }
        recording.capture.set_payload_types(leg, payload_types)?;
        recording
            .flows
            .retain(|&addr| Some(addr) != replaces && addr != from);
        recording.flows.push(from);
        if let Some(old) = replaces.filter(|&old| old != from) {
            self.flows.remove(&old);
        }
        self.flows.insert(from, (slot, leg));
        Ok(())
    }

    fn unroute(&mut self, from: SocketAddr) {
        if let Some((slot, _)) = self.flows.remove(&from)
            && let Some(Some(recording)) = self.slots.get_mut(slot)
        {
            recording.flows.retain(|&addr| addr != from);
        }
    }

    fn stop(&mut self, key: &K) -> Result<RecordingSummary, MediaError> {
        let slot = self.by_key.remove(key).ok_or(MediaError::NoSuchRecording)?;
        let recording = self
            .slots
            .get_mut(slot)
            .and_then(Option::take)
            .ok_or(MediaError::NoSuchRecording)?;
        for addr in &recording.flows {
            self.flows.remove(addr);
        }
        for port in &recording.ports {
            self.ports.remove(port);
        }
        recording.finish(self.now())
    }
}

/// A datagram from a fork port: (the local port, its source, its bytes).
type ForkDatagram = (u16, SocketAddr, Vec<u8>);

/// A fork port's socket, read by its own task. Dropping it closes the socket.
#[derive(Debug)]
struct ForkPort {
    slot: usize,
    leg: Leg,
    peers: Vec<IpAddr>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ForkPort {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Hands what arrives at a fork port to the recorder, until aborted or the recorder is gone.
async fn forward_fork(socket: UdpSocket, port: u16, to: mpsc::Sender<ForkDatagram>) {
    let mut buffer = vec![0u8; DATAGRAM_BUFFER];
    loop {
        match socket.recv_from(&mut buffer).await {
            Ok((len, source)) => {
                if to
                    .send((port, source, buffer[..len].to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            // ICMP port unreachable and the like.
            Err(error) => tracing::debug!(%error, port, "fork RTP receive"),
        }
    }
}

/// Reading datagrams in batches: recvmmsg(2) on Linux (one system call for up to `PER_CALL`
/// datagrams; with 100,000 datagrams a second the per-call cost dominated the receiver's
/// profile), one recv_from at a time elsewhere. Datagrams of one batch share one arrival
/// time, which the batch's duration (microseconds) makes no difference to.
mod batch {
    use std::net::SocketAddr;

    use super::{DATAGRAM_BUFFER, PER_CALL};

    #[derive(Debug)]
    pub(super) struct Batch {
        buffers: Vec<u8>,
        received: Vec<(SocketAddr, usize)>,
    }

    #[cfg(target_os = "linux")]
    thread_local! {
        /// recvmmsg's message headers. They hold raw pointers, so they are not `Send`, and the
        /// recorder must be: one set per thread, reused by every recorder on it.
        static HEADERS: std::cell::RefCell<
            nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
        > = std::cell::RefCell::new(nix::sys::socket::MultiHeaders::preallocate(PER_CALL, None));
    }

    impl Batch {
        pub(super) fn new() -> Self {
            Batch {
                buffers: vec![0; DATAGRAM_BUFFER * PER_CALL],
                received: Vec::with_capacity(PER_CALL),
            }
        }

        pub(super) fn len(&self) -> usize {
            self.received.len()
        }

        /// Source and bytes of the `i`th datagram of the last batch.
        pub(super) fn get(&self, i: usize) -> (SocketAddr, &[u8]) {
            let (source, len) = self.received[i];
            let start = i * DATAGRAM_BUFFER;
            (
                source,
                &self.buffers[start..start + len.min(DATAGRAM_BUFFER)],
            )
        }

        /// Reads what the socket holds (up to `PER_CALL` datagrams) without waiting.
        #[cfg(target_os = "linux")]
        pub(super) fn receive(&mut self, socket: &tokio::net::UdpSocket) -> std::io::Result<()> {
            use std::io::IoSliceMut;
            use std::os::fd::AsRawFd;

            use nix::sys::socket::{MsgFlags, recvmmsg};

            self.received.clear();
            let (buffers, received) = (&mut self.buffers, &mut self.received);
            HEADERS.with_borrow_mut(|headers| {
                let mut slices: Vec<[IoSliceMut<'_>; 1]> = buffers
                    .chunks_mut(DATAGRAM_BUFFER)
                    .take(PER_CALL)
                    .map(|chunk| [IoSliceMut::new(chunk)])
                    .collect();
                let results = recvmmsg(
                    socket.as_raw_fd(),
                    headers,
                    slices.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                )?;
                for message in results {
                    let source = message.address.and_then(|a| {
                        a.as_sockaddr_in()
                            .map(|v4| SocketAddr::V4((*v4).into()))
                            .or_else(|| a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into())))
                    });
                    // A datagram without an IP source cannot be routed; it is dropped as
                    // stray under the unspecified address.
                    let source = source.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
                    received.push((source, message.bytes));
                }
                Ok::<(), std::io::Error>(())
            })?;
            Ok(())
        }

        #[cfg(not(target_os = "linux"))]
        pub(super) fn receive(&mut self, socket: &tokio::net::UdpSocket) -> std::io::Result<()> {
            self.received.clear();
            for chunk in self.buffers.chunks_mut(DATAGRAM_BUFFER) {
                match socket.try_recv_from(chunk) {
                    Ok((len, source)) => self.received.push((source, len)),
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            && !self.received.is_empty() =>
                    {
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
    }
}
