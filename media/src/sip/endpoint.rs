//! The recorder endpoint's socket shell: one UDP socket for SIP, the [`Uas`] core, and the
//! `net` recorder it routes RTP into.
//!
//! ```text
//!   SipCommand (Expect / Forget / Stats) ─> uas.expect / forget
//!   SIP socket readable ─> recv_from ─> uas.handle_datagram(now, source, bytes)
//!   tick (T1 / 10) ─> uas.handle_timeout(now)
//!   after each: uas.poll_output() until None:
//!       Send ─> send_to     Route ─> RecorderCommand::Route, await ─> uas.handle_routed
//!       Listen ─> RecorderCommand::Listen, await ─> uas.handle_listened (mod_oreka forks)
//!       Unroute ─> RecorderCommand::Unroute     Stop ─> RecorderCommand::Stop ─> Finished event
//!       Event ─> events channel (bounded; awaited, so a slow reader slows SIP, never loses
//!                an event: SIP waits in the socket buffer and UDP retransmits)
//! ```
//!
//! Orders run one at a time and in order, so a route exists before the 200 that announces
//! it is sent, and an Unroute never overtakes its Route.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use super::uas::{LegEvent, SipStats, Uas, UasConfig, UasOutput};
use crate::MediaError;
use crate::config::Leg;
use crate::net::RecorderCommand;

/// What the engine's driver asks of the endpoint. Every command answers on its `reply`.
#[derive(Debug)]
pub enum SipCommand<K> {
    /// Answer an INVITE for Request-URI user `user` and record it into `key` as `leg`.
    Expect {
        user: String,
        key: K,
        leg: Leg,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    /// Take mod_oreka's fork of channel `call_id` (its uuid) into `key`.
    ExpectFork {
        call_id: String,
        key: K,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    /// Withdraw a fork; answers whether there was one.
    ForgetFork {
        call_id: String,
        reply: oneshot::Sender<bool>,
    },
    /// Withdraw an expectation not yet used; answers whether there was one.
    Forget {
        user: String,
        reply: oneshot::Sender<bool>,
    },
    Stats {
        reply: oneshot::Sender<SipStats>,
    },
}

/// The recorder endpoint. Build it with [`SipEndpoint::bind`], then `run` it.
#[derive(Debug)]
pub struct SipEndpoint<K> {
    socket: UdpSocket,
    uas: Uas<K>,
    recorder: mpsc::Sender<RecorderCommand<K>>,
    events: mpsc::Sender<LegEvent<K>>,
    origin: Instant,
}

impl<K: Clone + Eq + std::fmt::Debug> SipEndpoint<K> {
    /// Binds `config.sip_addr` (port 0 picks one; the Contact then names the real port).
    /// `config.rtp_addr` must be the recorder's socket: every SDP answer names it.
    pub async fn bind(
        mut config: UasConfig,
        recorder: mpsc::Sender<RecorderCommand<K>>,
        events: mpsc::Sender<LegEvent<K>>,
    ) -> Result<Self, MediaError> {
        let socket = UdpSocket::bind(config.sip_addr).await?;
        config.sip_addr = socket.local_addr()?;
        Ok(SipEndpoint {
            socket,
            uas: Uas::new(config),
            recorder,
            events,
            origin: Instant::now(),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, MediaError> {
        Ok(self.socket.local_addr()?)
    }

    /// Serves SIP and commands until the command channel closes; answers what it counted.
    pub async fn run(mut self, mut commands: mpsc::Receiver<SipCommand<K>>) -> SipStats {
        let mut tick =
            tokio::time::interval((self.uas.config().t1 / 10).max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        // One byte more than allowed, so that an oversized datagram is seen as such.
        let mut buffer = vec![0u8; self.uas.config().max_message_bytes + 1];
        loop {
            tokio::select! {
                biased;
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    None => break,
                },
                _ = tick.tick() => {
                    let now = self.now();
                    self.uas.handle_timeout(now);
                }
                received = self.socket.recv_from(&mut buffer) => match received {
                    Ok((len, source)) => {
                        let now = self.now();
                        self.uas.handle_datagram(now, source, &buffer[..len]);
                    }
                    // ICMP port unreachable from an earlier send and the like.
                    Err(error) => tracing::debug!(%error, "SIP receive"),
                },
            }
            self.carry_out().await;
        }
        self.uas.stats()
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn handle(&mut self, command: SipCommand<K>) {
        // A caller that stopped waiting for the answer is no reason to fail.
        match command {
            SipCommand::Expect {
                user,
                key,
                leg,
                reply,
            } => {
                let _ = reply.send(self.uas.expect(user, key, leg));
            }
            SipCommand::ExpectFork {
                call_id,
                key,
                reply,
            } => {
                let _ = reply.send(self.uas.expect_fork(call_id, key));
            }
            SipCommand::ForgetFork { call_id, reply } => {
                let _ = reply.send(self.uas.forget_fork(&call_id));
            }
            SipCommand::Forget { user, reply } => {
                let _ = reply.send(self.uas.forget(&user));
            }
            SipCommand::Stats { reply } => {
                let _ = reply.send(self.uas.stats());
            }
        }
    }

    async fn carry_out(&mut self) {
        while let Some(output) = self.uas.poll_output() {
            match output {
                UasOutput::Send { to, datagram } => {
                    if let Err(error) = self.socket.send_to(&datagram, to).await {
                        tracing::debug!(%error, %to, "SIP send");
                    }
                }
                UasOutput::Route {
                    call_id,
                    key,
                    leg,
                    from,
                    replaces,
                    payload_types,
                } => {
                    let (reply, answer) = oneshot::channel();
                    let command = RecorderCommand::Route {
                        key,
                        leg,
                        from,
                        replaces,
                        payload_types,
                        reply,
                    };
                    let result = match self.recorder.send(command).await {
                        Ok(()) => answer.await.unwrap_or(Err(MediaError::RecorderGone)),
                        Err(_) => Err(MediaError::RecorderGone),
                    };
                    let now = self.now();
                    self.uas.handle_routed(now, &call_id, result);
                }
                UasOutput::Unroute { from } => {
                    let _ = self.recorder.send(RecorderCommand::Unroute { from }).await;
                }
                UasOutput::Listen {
                    call_id,
                    key,
                    leg,
                    port,
                    peers,
                    payload_types,
                } => {
                    let (reply, answer) = oneshot::channel();
                    let command = RecorderCommand::Listen {
                        key,
                        leg,
                        port,
                        peers,
                        payload_types,
                        reply,
                    };
                    let result = match self.recorder.send(command).await {
                        Ok(()) => answer.await.unwrap_or(Err(MediaError::RecorderGone)),
                        Err(_) => Err(MediaError::RecorderGone),
                    };
                    self.uas.handle_listened(&call_id, leg, result);
                }
                UasOutput::Unlisten { port } => {
                    let _ = self.recorder.send(RecorderCommand::Unlisten { port }).await;
                }
                UasOutput::Stop { key } => {
                    let (reply, answer) = oneshot::channel();
                    let command = RecorderCommand::Stop {
                        key: key.clone(),
                        reply,
                    };
                    let result = match self.recorder.send(command).await {
                        Ok(()) => answer.await.unwrap_or(Err(MediaError::RecorderGone)),
                        Err(_) => Err(MediaError::RecorderGone),
                    };
                    let _ = self.events.send(LegEvent::Finished { key, result }).await;
                }
                UasOutput::Event(event) => {
                    let _ = self.events.send(event).await;
                }
            }
        }
    }
}
