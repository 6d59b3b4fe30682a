//! How Music and Announce reach FreeSWITCH: the loop's glue around two sans-IO cores, the
//! prompt queue (`prompts`: one prompt at a time per caller, music after the last) and the
//! sound check (`sounds`: a file missing on a node becomes a tone there).
//!
//! ```text
//!   core: Music / Announce ─► sounds (substitute) ─► prompts ─► uuid_break / uuid_broadcast
//!   CHANNEL_EXECUTE_COMPLETE playback ─► prompts ─► the next prompt, or the music
//!   prompt_timeout after a start ─► prompts (Overdue)
//!   Connected / UpsertQueue ─► sounds ─► global_getvar, file_exists ─► sounds ─► WARN once
//!   bridge / hangup / transfer of a leg ─► prompts forget it
//! ```

use switchyard_esl::Event;
use tracing::{debug, warn};

use crate::ids::QueueId;
use crate::io::{LegId, SwitchCommand};

use super::super::commands::{self, EslRequest, Tracking};
use super::super::prompts::{self, Sound};
use super::super::sounds::{self, Globals};
use super::timers::Chore;
use super::{Answer, DriverCore, Pending, Reply, bump};

/// A question of the sound check.
#[derive(Debug)]
pub(crate) enum PlaybackAsk {
    /// `global_getvar sound_prefix`, then `global_getvar sounds_dir`.
    Globals { node: usize, epoch: u64 },
    /// `file_exists` for each candidate of `path`.
    Exists {
        node: usize,
        epoch: u64,
        path: String,
    },
}

impl DriverCore {
    /// First step of `issue`: Music and Announce are played from here (`None`); a command that
    /// ends a caller's wait makes the queue forget the caller (FreeSWITCH's bridge, transfer
    /// and hangup stop the broadcast playing, and nothing of ours is queued there).
    pub(super) fn before_issue(&mut self, cmd: SwitchCommand) -> Option<SwitchCommand> {
        match &cmd {
            SwitchCommand::Music { leg, source } => {
                let node = self.leg_node(*leg);
                let music = self.sounds.music(node, source);
                self.prompts
                    .handle_input(self.now, prompts::Input::Music { leg: *leg, music });
                self.after_playback_input(&cmd);
                None
            }
            SwitchCommand::Announce {
                leg,
                prompts,
                then_music,
            } => {
                let node = self.leg_node(*leg);
                let mut files = Vec::new();
                for p in prompts {
                    let mut said = Vec::new();
                    commands::render(p, &self.syntax.prompts, &mut said);
                    files.extend(self.sounds.prompt(node, said));
                }
                let path = match commands::file_string(&files) {
                    Ok(p) => p,
                    Err(e) => {
                        bump(&self.counters.commands_failed);
                        warn!(error = %e, %leg, "announcement not played");
                        return None;
                    }
                };
                let music = self.sounds.music(node, then_music);
                self.prompts.handle_input(
                    self.now,
                    prompts::Input::Announce {
                        leg: *leg,
                        path,
                        music,
                    },
                );
                self.after_playback_input(&cmd);
                None
            }
            SwitchCommand::Bridge { a, b } => {
                self.prompt_leg_gone(*a);
                self.prompt_leg_gone(*b);
                Some(cmd)
            }
            SwitchCommand::Hangup { leg, .. }
            | SwitchCommand::Transfer { leg, .. }
            | SwitchCommand::PlayThenHangup { leg, .. } => {
                self.prompt_leg_gone(*leg);
                Some(cmd)
            }
            _ => Some(cmd),
        }
    }

    /// The leg no longer waits: whatever it had queued is dropped.
    pub(super) fn prompt_leg_gone(&mut self, leg: LegId) {
        self.prompts
            .handle_input(self.now, prompts::Input::Gone { leg });
    }

    /// A CHANNEL_EXECUTE_COMPLETE: the end of a prompt, perhaps.
    pub(super) fn on_executed(&mut self, leg: LegId, e: &Event) {
        let (Some(app), Some(data)) = (e.header("Application"), e.header("Application-Data"))
        else {
            return;
        };
        if app.ends_with("playback") {
            let hung_up = e.header("Answer-State").as_deref() == Some("hangup");
            self.announcement_played(leg, &data, hung_up);
        }
        self.prompts.handle_input(
            self.now,
            prompts::Input::Executed {
                leg,
                app: &app,
                data: &data,
            },
        );
        self.flush_prompts();
    }

    /// A node's connection is up: ask it about every configured sound.
    pub(super) fn check_sounds(&mut self, node: usize) {
        let mut paths = commands::template_files(&self.syntax.prompts);
        let queues: Vec<QueueId> = self.engine.queue_ids().collect();
        for q in queues {
            paths.extend(self.queue_sounds(q));
        }
        paths.sort();
        paths.dedup();
        self.sounds
            .handle_input(sounds::Input::Connected { node, paths });
        self.flush_sounds();
    }

    /// A queue was created or changed: ask every connected node about its sounds.
    pub(super) fn check_queue_sounds(&mut self, queue: QueueId) {
        let paths = self.queue_sounds(queue);
        self.sounds
            .handle_input(sounds::Input::Configured { paths });
        self.flush_sounds();
    }

    pub(super) fn on_prompt_overdue(&mut self, leg: LegId, generation: u64) {
        self.prompts
            .handle_input(self.now, prompts::Input::Overdue { leg, generation });
        self.flush_prompts();
    }

    pub(super) fn on_playback_answer(&mut self, ask: PlaybackAsk, replies: Vec<Reply>) {
        match ask {
            PlaybackAsk::Globals { node, epoch } => {
                let text = |r: Option<Reply>| match r {
                    Some(Ok(Answer::Api(b))) if !b.starts_with(b"-ERR") => {
                        String::from_utf8_lossy(&b).trim().to_owned()
                    }
                    _ => String::new(),
                };
                let mut replies = replies.into_iter();
                let globals = Globals {
                    sound_prefix: text(replies.next()),
                    sounds_dir: text(replies.next()),
                };
                debug!(node = %self.nodes[node].name, ?globals, "sound directories");
                self.sounds.handle_input(sounds::Input::Globals {
                    node,
                    epoch,
                    globals,
                });
                self.flush_sounds();
            }
            PlaybackAsk::Exists { node, epoch, path } => {
                let mut present = Some(false);
                for r in replies {
                    match r {
                        Ok(Answer::Api(b)) if b.trim_ascii() == b"true" => {
                            present = Some(true);
                        }
                        Ok(Answer::Api(b)) if b.trim_ascii() == b"false" => {}
                        // Not asked, or not understood: the path stays as given.
                        _ => {
                            if present == Some(false) {
                                present = None;
                            }
                        }
                    }
                }
                self.sounds.handle_input(sounds::Input::Exists {
                    node,
                    epoch,
                    path,
                    present,
                });
                self.flush_sounds();
            }
        }
    }

    // ---- inside ----------------------------------------------------------------------------

    /// The music and periodic message of a queue.
    fn queue_sounds(&self, queue: QueueId) -> Vec<String> {
        let Some(q) = self.engine.queue(queue) else {
            return Vec::new();
        };
        let ann = &q.cfg.announcements;
        let mut out = vec![ann.music.clone()];
        if let Some((_, path)) = &ann.periodic {
            out.push(path.clone());
        }
        out
    }

    fn after_playback_input(&mut self, cmd: &SwitchCommand) {
        self.flush_sounds();
        if self.flush_prompts() {
            bump(&self.counters.commands_sent);
            if let Some(p) = &self.cfg.probe {
                p.command_sent(cmd, self.now);
            }
        }
    }

    /// Sends what the prompt queue decided; true if anything went out.
    fn flush_prompts(&mut self) -> bool {
        let mut sent = false;
        while let Some(o) = self.prompts.poll_output() {
            match o {
                prompts::Output::Send { leg, sound } => {
                    let line = match sound {
                        Sound::BreakAll => format!("uuid_break {leg} all"),
                        Sound::Prompt(path) => commands::broadcast(leg, &path),
                        Sound::Music(source) => match commands::music(&source) {
                            Ok(m) => commands::broadcast(leg, &m),
                            Err(e) => {
                                bump(&self.counters.commands_failed);
                                warn!(error = %e, %leg, "music not played");
                                continue;
                            }
                        },
                    };
                    let node = self.leg_node(leg);
                    self.send_command(node, vec![EslRequest::Api(line)], Tracking::Other, None);
                    sent = true;
                }
                prompts::Output::Started { leg, generation } => {
                    let after = self.cfg.prompt_timeout;
                    if !after.is_zero() {
                        self.later(after, Chore::PromptOverdue { leg, generation });
                    }
                }
            }
        }
        let c = self.prompts.counts;
        let store = |a: &std::sync::atomic::AtomicU64, v: u64| {
            a.store(v, std::sync::atomic::Ordering::Relaxed);
        };
        store(&self.counters.prompts_queued, c.queued);
        store(&self.counters.prompts_overdue, c.overdue);
        sent
    }

    /// Asks the nodes what the sound check wants to know; warns about what it found missing.
    fn flush_sounds(&mut self) {
        while let Some(o) = self.sounds.poll_output() {
            match o {
                sounds::Output::AskGlobals { node, epoch } => {
                    let requests = ["global_getvar sound_prefix", "global_getvar sounds_dir"]
                        .map(|l| EslRequest::Api(l.to_owned()))
                        .to_vec();
                    self.ask(
                        node,
                        requests,
                        Pending::Playback(PlaybackAsk::Globals { node, epoch }),
                    );
                }
                sounds::Output::AskExists {
                    node,
                    epoch,
                    path,
                    candidates,
                } => {
                    let requests = candidates
                        .iter()
                        .map(|c| EslRequest::Api(format!("file_exists {c}")))
                        .collect();
                    self.ask(
                        node,
                        requests,
                        Pending::Playback(PlaybackAsk::Exists { node, epoch, path }),
                    );
                }
                sounds::Output::Missing { node, path } => {
                    bump(&self.counters.sounds_missing);
                    let fallback = if path.starts_with("local_stream://")
                        || self.engine.queue_ids().any(|q| {
                            self.engine
                                .queue(q)
                                .is_some_and(|q| q.cfg.announcements.music == path)
                        }) {
                        &self.cfg.fallback_music
                    } else {
                        &self.cfg.fallback_prompt
                    };
                    warn!(node = %self.nodes[node].name, %path, %fallback, "sound file missing on this FreeSWITCH node; callers hear a tone instead (see README: sound packages)");
                }
            }
        }
    }
}
