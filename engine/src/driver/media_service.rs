//! The media side of a running driver: `switchyard_media`'s recorder endpoint (SIP) and UDP
//! recorder for live recordings, and its `ingest` checks for every file, behind the
//! [`MediaRequest`] / [`MediaReport`] protocol of [`super::media`].
//!
//! ```text
//!   shell ─ MediaRequest ─► service task ─► SipCommand / RecorderCommand (endpoint, recorder)
//!                                 ▲ LegEvent::Finished ─► inspect (blocking pool) ─┐
//!   shell ◀─ MediaReport ─────────┴────────────────────────────────────────────────┘
//! ```
//!
//! Every channel is bounded; the task owns its state, so nothing here locks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use switchyard_media::ingest::{AudioReport, InspectOptions, inspect};
use switchyard_media::net::{RecorderCommand, RecorderConfig, UdpRecorder};
use switchyard_media::sip::{LegEvent, SipCommand, SipEndpoint, UasConfig};
use switchyard_media::{CaptureConfig, Layout, Leg, MediaError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::config::EndpointSetup;
use super::media::{MediaReport, MediaRequest};
use crate::recording::{AudioFigures, RecordingId};

/// Requests and reports in flight between the shell and the service, each way.
const LINK_BOUND: usize = 4096;
/// Checks of files running at once (each holds a blocking-pool thread while it decodes).
const MAX_CHECKS: usize = 64;
/// How often a switch recording's file is looked for while it is awaited.
const FILE_POLL: Duration = Duration::from_millis(200);

/// The shell's ends of the service.
pub(crate) struct MediaLink {
    pub requests: mpsc::Sender<MediaRequest>,
    pub reports: mpsc::Receiver<MediaReport>,
}

/// Starts the service: with the recorder endpoint when `endpoint` is set (answers the SIP
/// address it bound, for the recorder legs' dial string).
pub(crate) async fn start(
    endpoint: Option<&EndpointSetup>,
) -> Result<(MediaLink, Option<SocketAddr>), MediaError> {
    let (requests, requests_rx) = mpsc::channel(LINK_BOUND);
    let (reports_tx, reports) = mpsc::channel(LINK_BOUND);
    let (live, sip_addr) = match endpoint {
        Some(setup) => {
            let (live, addr) = Live::start(setup).await?;
            (Some(live), Some(addr))
        }
        None => (None, None),
    };
    let service = Service {
        live,
        reports: reports_tx,
        expected: HashMap::new(),
        checks: JoinSet::new(),
        waiting: std::collections::VecDeque::new(),
        fork_deadlines: JoinSet::new(),
    };
    tokio::spawn(service.run(requests_rx));
    Ok((MediaLink { requests, reports }, sip_addr))
}

/// The running endpoint and recorder.
struct Live {
    sip: mpsc::Sender<SipCommand<RecordingId>>,
    recorder: mpsc::Sender<RecorderCommand<RecordingId>>,
    events: mpsc::Receiver<LegEvent<RecordingId>>,
}

impl Live {
    async fn start(setup: &EndpointSetup) -> Result<(Live, SocketAddr), MediaError> {
        let recorder = UdpRecorder::<RecordingId>::bind(RecorderConfig {
            bind: setup.rtp_bind,
            max_recordings: setup.max_recordings,
            ..RecorderConfig::default()
        })
        .await?;
        let rtp_addr = recorder.local_addr()?;
        let (recorder_tx, recorder_rx) = mpsc::channel(LINK_BOUND);
        tokio::spawn(recorder.run(recorder_rx));
        let (events_tx, events) = mpsc::channel(LINK_BOUND);
        let endpoint = SipEndpoint::bind(
            UasConfig {
                sip_addr: setup.sip_bind,
                rtp_addr,
                max_expected: setup.max_recordings.saturating_mul(2),
                max_dialogs: setup.max_recordings.saturating_mul(2),
                tag_seed: fastrand::u64(..),
                ..UasConfig::default()
            },
            recorder_tx.clone(),
            events_tx,
        )
        .await?;
        let sip_addr = endpoint.local_addr()?;
        let (sip, sip_rx) = mpsc::channel(LINK_BOUND);
        tokio::spawn(endpoint.run(sip_rx));
        Ok((
            Live {
                sip,
                recorder: recorder_tx,
                events,
            },
            sip_addr,
        ))
    }
}

/// A live recording's file and what the endpoint was told to expect, until it is finished
/// or abandoned.
struct Expected {
    path: PathBuf,
    announced: Announced,
    /// The endpoint answered one of its legs (a fork's INVITE came).
    answered: bool,
}

/// What feeds a live recording.
enum Announced {
    /// The two recorder legs' users.
    Legs([String; 2]),
    /// mod_oreka's fork of this channel (its uuid).
    Fork(String),
}

struct Service {
    live: Option<Live>,
    reports: mpsc::Sender<MediaReport>,
    expected: HashMap<RecordingId, Expected>,
    /// File checks (and waits for switch files) running.
    checks: JoinSet<MediaReport>,
    /// Checks waiting for a free slot (bounded by the recordings, which the engine bounds).
    waiting: std::collections::VecDeque<Check>,
    /// Forks whose INVITE is awaited: each wakes with its recording after its `wait`.
    fork_deadlines: JoinSet<RecordingId>,
}

/// A file to check, and what to report it as.
struct Check {
    id: RecordingId,
    path: PathBuf,
    live: bool,
    /// For a switch file: how long it may take to appear.
    wait: Duration,
    /// What the capture already knows went wrong.
    error: Option<String>,
}

impl Service {
    async fn run(mut self, mut requests: mpsc::Receiver<MediaRequest>) {
        loop {
            let live_events = async {
                match &mut self.live {
                    Some(live) => live.events.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                req = requests.recv() => match req {
                    Some(req) => self.on_request(req).await,
                    None => break,
                },
                Some(ev) = live_events => self.on_leg_event(ev),
                Some(Ok(id)) = self.fork_deadlines.join_next(), if !self.fork_deadlines.is_empty() => {
                    self.fork_deadline(id).await;
                }
                Some(done) = self.checks.join_next(), if !self.checks.is_empty() => {
                    if let Ok(report) = done
                        && self.reports.send(report).await.is_err()
                    {
                        break;
                    }
                    self.start_checks();
                }
            }
        }
    }

    async fn on_request(&mut self, req: MediaRequest) {
        match req {
            MediaRequest::Expect {
                id,
                path,
                stereo,
                caller_user,
                agent_user,
            } => {
                let announced = Announced::Legs([caller_user, agent_user]);
                let report = match self.expect(id, path, stereo, announced).await {
                    Ok(()) => MediaReport::Ready { id },
                    Err(e) => MediaReport::Refused {
                        id,
                        error: e.to_string(),
                    },
                };
                let _ = self.reports.send(report).await;
            }
            MediaRequest::ExpectFork {
                id,
                path,
                stereo,
                channel,
                wait,
            } => {
                let announced = Announced::Fork(channel);
                let report = match self.expect(id, path, stereo, announced).await {
                    Ok(()) => {
                        self.fork_deadlines.spawn(async move {
                            tokio::time::sleep(wait).await;
                            id
                        });
                        MediaReport::Ready { id }
                    }
                    Err(e) => MediaReport::Refused {
                        id,
                        error: e.to_string(),
                    },
                };
                let _ = self.reports.send(report).await;
            }
            MediaRequest::Silence { id, on } => {
                let Some(live) = &self.live else { return };
                let sent = if on {
                    let (reply, answer) = oneshot::channel();
                    live.recorder
                        .send(RecorderCommand::Pause { key: id, reply })
                        .await
                        .is_ok()
                        && answer.await.is_ok_and(|r| r.is_ok())
                } else {
                    let (reply, answer) = oneshot::channel();
                    live.recorder
                        .send(RecorderCommand::Resume { key: id, reply })
                        .await
                        .is_ok()
                        && answer.await.is_ok_and(|r| r.is_ok())
                };
                if !sent {
                    warn!(recording = %id, on, "the recorder did not take a silence request");
                }
            }
            MediaRequest::Abandon { id } => self.abandon(id).await,
            MediaRequest::Ingest { id, path, wait } => {
                self.waiting.push_back(Check {
                    id,
                    path,
                    live: false,
                    wait,
                    error: None,
                });
                self.start_checks();
            }
        }
    }

    async fn expect(
        &mut self,
        id: RecordingId,
        path: PathBuf,
        stereo: bool,
        announced: Announced,
    ) -> Result<(), MediaError> {
        let live = self.live.as_ref().ok_or(MediaError::RecorderGone)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let capture = CaptureConfig {
            layout: if stereo { Layout::Stereo } else { Layout::Mono },
            ..CaptureConfig::default()
        };
        let (reply, answer) = oneshot::channel();
        live.recorder
            .send(RecorderCommand::Start {
                key: id,
                capture,
                path: path.clone(),
                flows: Vec::new(),
                reply,
            })
            .await
            .map_err(|_| MediaError::RecorderGone)?;
        answer.await.map_err(|_| MediaError::RecorderGone)??;
        let mut commands = Vec::new();
        match &announced {
            Announced::Legs(users) => {
                for (user, leg) in users.iter().zip([Leg::Caller, Leg::Agent]) {
                    let (reply, answer) = oneshot::channel();
                    let command = SipCommand::Expect {
                        user: user.clone(),
                        key: id,
                        leg,
                        reply,
                    };
                    commands.push((command, answer));
                }
            }
            Announced::Fork(channel) => {
                let (reply, answer) = oneshot::channel();
                let command = SipCommand::ExpectFork {
                    call_id: channel.clone(),
                    key: id,
                    reply,
                };
                commands.push((command, answer));
            }
        }
        for (command, answer) in commands {
            let expected = async {
                live.sip
                    .send(command)
                    .await
                    .map_err(|_| MediaError::RecorderGone)?;
                answer.await.map_err(|_| MediaError::RecorderGone)?
            };
            if let Err(e) = expected.await {
                self.expected.insert(
                    id,
                    Expected {
                        path,
                        announced,
                        answered: false,
                    },
                );
                self.abandon(id).await;
                return Err(e);
            }
        }
        self.expected.insert(
            id,
            Expected {
                path,
                announced,
                answered: false,
            },
        );
        Ok(())
    }

    /// Forgets a live recording: its users, its capture and its file.
    async fn abandon(&mut self, id: RecordingId) {
        let (Some(live), Some(gone)) = (&self.live, self.expected.remove(&id)) else {
            return;
        };
        let forgets: Vec<_> = match gone.announced {
            Announced::Legs(users) => users
                .into_iter()
                .map(|user| {
                    let (reply, answer) = oneshot::channel();
                    (SipCommand::Forget { user, reply }, answer)
                })
                .collect(),
            Announced::Fork(call_id) => {
                let (reply, answer) = oneshot::channel();
                vec![(SipCommand::ForgetFork { call_id, reply }, answer)]
            }
        };
        for (command, answer) in forgets {
            if live.sip.send(command).await.is_ok() {
                let _ = answer.await;
            }
        }
        let (reply, answer) = oneshot::channel();
        if live
            .recorder
            .send(RecorderCommand::Stop { key: id, reply })
            .await
            .is_ok()
        {
            let _ = answer.await;
        }
        if let Err(e) = tokio::fs::remove_file(&gone.path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            debug!(recording = %id, error = %e, "abandoned recording's file not removed");
        }
    }

    /// A fork's wait is over: if mod_oreka never sent its INVITE, the fork is forgotten and
    /// the core told, so that the switch records the call instead.
    async fn fork_deadline(&mut self, id: RecordingId) {
        if self.expected.get(&id).is_none_or(|e| e.answered) {
            return;
        }
        warn!(recording = %id, "no INVITE from mod_oreka in time; FreeSWITCH records it instead");
        self.abandon(id).await;
        let error = "no INVITE from mod_oreka in time (does oreka.conf name this endpoint?)";
        let _ = self
            .reports
            .send(MediaReport::Refused {
                id,
                error: error.into(),
            })
            .await;
    }

    fn on_leg_event(&mut self, ev: LegEvent<RecordingId>) {
        if let LegEvent::Answered { key, .. } = &ev
            && let Some(e) = self.expected.get_mut(key)
        {
            e.answered = true;
        }
        let LegEvent::Finished { key, result } = ev else {
            debug!(event = ?ev, "recorder leg");
            return;
        };
        let Some(done) = self.expected.remove(&key) else {
            return;
        };
        let error = result.err().map(|e| e.to_string());
        self.waiting.push_back(Check {
            id: key,
            path: done.path,
            live: true,
            wait: Duration::ZERO,
            error,
        });
        self.start_checks();
    }

    fn start_checks(&mut self) {
        while self.checks.len() < MAX_CHECKS {
            let Some(check) = self.waiting.pop_front() else {
                return;
            };
            self.checks.spawn(run_check(check));
        }
    }
}

/// Waits for the file when it comes from the switch, checks it, and says what it holds.
async fn run_check(check: Check) -> MediaReport {
    let Check {
        id,
        path,
        live,
        wait,
        error,
    } = check;
    let mut result = if live {
        Ok(())
    } else {
        await_file(&path, wait).await
    };
    let (figures, error) = match result.as_mut() {
        Err(why) => (None, Some(std::mem::take(why))),
        Ok(()) => {
            let p = path.clone();
            let measured =
                tokio::task::spawn_blocking(move || inspect(&p, &InspectOptions::default())).await;
            match measured {
                Ok(Ok(report)) => (Some(figures_of(&report)), error),
                Ok(Err(MediaError::Truncated { report, .. })) => {
                    let why = format!("the file is cut short at {:?}", report.duration);
                    (Some(figures_of(&report)), Some(error.unwrap_or(why)))
                }
                Ok(Err(e)) => (None, Some(e.to_string())),
                Err(e) => (None, Some(format!("the check did not finish: {e}"))),
            }
        }
    };
    if live {
        MediaReport::Finished {
            id,
            path,
            figures,
            error,
        }
    } else {
        MediaReport::Ingested {
            id,
            path,
            figures,
            error,
        }
    }
}

/// A switch recording arrives after RECORD_STOP: on a shared directory at once, or a moment
/// later through an upload. It is taken once it exists and stopped growing.
async fn await_file(path: &Path, wait: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut last: Option<u64> = None;
    loop {
        let size = tokio::fs::metadata(path).await.ok().map(|m| m.len());
        match (size, last) {
            (Some(now), Some(before)) if now == before => return Ok(()),
            _ => last = size,
        }
        if tokio::time::Instant::now() >= deadline {
            return match size {
                Some(_) => Ok(()),
                None => Err(format!(
                    "the switch's file {} did not arrive within {wait:?}",
                    path.display()
                )),
            };
        }
        tokio::time::sleep(FILE_POLL).await;
    }
}

/// Checks a recording's file in place (blocking: run it off the async threads): its figures,
/// and why it is not whole if it is not. For a file left by a recording that was cut off (a
/// restart), the figures of what is there.
pub fn check_file(path: &Path) -> (Option<AudioFigures>, Option<String>) {
    match inspect(path, &InspectOptions::default()) {
        Ok(report) => (Some(figures_of(&report)), None),
        Err(MediaError::Truncated { report, .. }) => (
            Some(figures_of(&report)),
            Some(format!("the file is cut short at {:?}", report.duration)),
        ),
        Err(e) => (None, Some(e.to_string())),
    }
}

fn figures_of(r: &AudioReport) -> AudioFigures {
    AudioFigures {
        duration_ms: u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
        sample_rate: r.sample_rate,
        channels: r.channels,
        bytes: r.bytes,
        silence_ratio: r.silence_ratio,
        peak_dbfs: r.per_channel.iter().map(|c| c.peak_dbfs).collect(),
        channel_silence: r.per_channel.iter().map(|c| c.silence_ratio).collect(),
        peaks: r.per_channel.iter().map(|c| c.peaks.clone()).collect(),
        frames_per_peak: r.frames_per_peak,
    }
}
