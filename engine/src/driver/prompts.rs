//! Prompts queue behind each other; the music comes back after the last one. Sans-IO: the
//! loop feeds what the core asked for and what the switch reported, and sends what comes out.
//!
//! Why the driver holds the queue and not FreeSWITCH. `uuid_broadcast` does not play at once:
//! it queues a private `execute` event on the session with `event-lock` set
//! (`switch_ivr_async.c`, `switch_ivr_broadcast`), and a locked event keeps the next one in
//! the queue until it has run (`switch_core_session.c`,
//! `switch_core_session_dequeue_private_event`: `CF_EVENT_LOCK` -> not dequeued). So two
//! broadcasts do play one after the other. But:
//! - the music is a broadcast that never ends (`local_stream://`, `endless_playback`), so a
//!   prompt queued behind it never plays: something must stop the music first;
//! - the only way to drop what is queued is `uuid_break <leg> all` (`mod_commands.c`,
//!   `break_function`: `all` flushes the private events), and every `uuid_break` also stops
//!   the broadcast playing now (`switch_channel_stop_broadcast`, or `CF_BREAK`). So once the
//!   music is queued behind a prompt, a second prompt can only be added by cutting the first:
//!   that is the 2.66 s announcement cut after 0.86 s on the real switch;
//! - `uuid_bridge` stops the broadcast playing but leaves the queue alone
//!   (`switch_ivr_bridge.c`, `switch_ivr_uuid_bridge`: `switch_channel_stop_broadcast` only),
//!   and a bridged session keeps parsing private events: whatever is still queued would play
//!   to the caller over the agent.
//!
//! So FreeSWITCH holds at most one of our broadcasts per caller at a time and this module
//! holds the rest. A `uuid_break <leg> all` is sent only to stop the music; the next prompt
//! and the music after the last go out without one: nothing of ours plays or waits there
//! then, and if a prompt we counted as ended (see the deadline below) still plays, the new
//! broadcast waits behind it instead of cutting it. (A break that finds nothing playing is
//! harmless: `switch_core_session_exec` clears `CF_BREAK` before each application.) The end
//! of a prompt is its CHANNEL_EXECUTE_COMPLETE (application `playback`,
//! `Application-Data` the path we broadcast), which FreeSWITCH fires however the playback
//! ended, a missing file included (PLAYBACK_STOP only follows a PLAYBACK_START).
//!
//! ```text
//!             Announce(p) ─► break all, broadcast p
//!   Music ──────────────────────────────────────────► Prompting { playing p, waiting [], music }
//!     ▲                                                 │  Announce(q): waiting += q
//!     │ broadcast music                                 │  Music(m): music = m
//!     └── p ended (or overdue), nothing waiting ◄───────┤
//!                     p ended (or overdue), q waiting ──┴─► broadcast q, playing q
//!   bridge / transfer / hangup: the leg is forgotten (FreeSWITCH stops what plays itself)
//! ```
//!
//! A lost event must not leave a caller in silence: each prompt has a deadline
//! (`prompt_timeout`) after which it counts as ended. If it was still playing, the next
//! broadcast just queues behind it in FreeSWITCH, which is the right order anyway.
//!
//! Bounds: `MAX_WAITING` prompts per leg (past it the oldest waiting one is dropped: a position
//! said late is worth less than the newest), `MAX_LEGS` legs tracked (past it a leg gets the
//! old behaviour: break, prompt, music queued behind it in FreeSWITCH).

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::io::LegId;

/// Prompts waiting behind the one playing, per leg.
pub(crate) const MAX_WAITING: usize = 4;
/// Legs with a prompt playing at once.
pub(crate) const MAX_LEGS: usize = 1_000_000;

/// What to send for a leg, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Sound {
    /// `uuid_break <leg> all`: stop the music and drop anything queued.
    BreakAll,
    /// `uuid_broadcast <leg> <path> aleg` of a prompt.
    Prompt(String),
    /// `uuid_broadcast` of the music (the loop makes a file loop).
    Music(String),
}

#[derive(Debug)]
pub(crate) enum Input<'a> {
    /// Play a prompt (one broadcast path; `None`: nothing to say), then `music`.
    Announce {
        leg: LegId,
        path: Option<String>,
        music: String,
    },
    /// Music on hold from now on.
    Music { leg: LegId, music: String },
    /// CHANNEL_EXECUTE_COMPLETE of `app` with `data` on `leg`.
    Executed {
        leg: LegId,
        app: &'a str,
        data: &'a str,
    },
    /// The prompt started as `generation` may have been lost: count it as ended.
    Overdue { leg: LegId, generation: u64 },
    /// The leg stopped waiting (bridged, transferred, hung up).
    Gone { leg: LegId },
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Output {
    Send {
        leg: LegId,
        sound: Sound,
    },
    /// A prompt started: feed `Overdue` with this generation if it has not ended by then.
    Started {
        leg: LegId,
        generation: u64,
    },
}

#[derive(Debug)]
struct Playing {
    path: String,
    generation: u64,
    waiting: VecDeque<String>,
    music: String,
}

/// Counters for the stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PromptCounts {
    /// Prompts held back because another was playing.
    pub queued: u64,
    /// Waiting prompts dropped at `MAX_WAITING`.
    pub dropped: u64,
    /// Prompts whose end was never reported (counted as ended at their deadline).
    pub overdue: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Prompts {
    legs: HashMap<LegId, Playing>,
    out: VecDeque<Output>,
    next_generation: u64,
    pub counts: PromptCounts,
}

impl Prompts {
    pub(crate) fn handle_input(&mut self, _now: Instant, input: Input<'_>) {
        match input {
            Input::Announce { leg, path, music } => self.announce(leg, path, music),
            Input::Music { leg, music } => match self.legs.get_mut(&leg) {
                Some(p) => p.music = music,
                None => self.send(leg, Sound::Music(music)),
            },
            Input::Executed { leg, app, data } => {
                let ended = self
                    .legs
                    .get(&leg)
                    .is_some_and(|p| app == "playback" && p.path == data);
                if ended {
                    self.next(leg);
                }
            }
            Input::Overdue { leg, generation } => {
                if self
                    .legs
                    .get(&leg)
                    .is_some_and(|p| p.generation == generation)
                {
                    self.counts.overdue += 1;
                    self.next(leg);
                }
            }
            Input::Gone { leg } => {
                self.legs.remove(&leg);
            }
        }
    }

    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Whether a prompt is playing on `leg` (for tests and logs).
    #[cfg(test)]
    pub(crate) fn playing(&self, leg: LegId) -> Option<&str> {
        self.legs.get(&leg).map(|p| p.path.as_str())
    }

    fn announce(&mut self, leg: LegId, path: Option<String>, music: String) {
        if let Some(p) = self.legs.get_mut(&leg) {
            p.music = music;
            let Some(path) = path else { return };
            // The same prompt twice in a row says nothing new (a periodic message due again).
            if p.waiting.back() == Some(&path) {
                return;
            }
            if p.waiting.len() >= MAX_WAITING {
                p.waiting.pop_front();
                self.counts.dropped += 1;
            }
            p.waiting.push_back(path);
            self.counts.queued += 1;
            return;
        }
        let Some(path) = path else { return };
        // Over music (or nothing): stop it, then the prompt.
        self.send(leg, Sound::BreakAll);
        if self.legs.len() >= MAX_LEGS {
            // Untracked: the old way, the music queued behind the prompt in FreeSWITCH.
            self.send(leg, Sound::Prompt(path));
            self.send(leg, Sound::Music(music));
            return;
        }
        self.start(leg, path, VecDeque::new(), music);
    }

    /// The prompt playing on `leg` ended: the next one, or the music.
    fn next(&mut self, leg: LegId) {
        let Some(mut p) = self.legs.remove(&leg) else {
            return;
        };
        match p.waiting.pop_front() {
            // Nothing of ours plays now: no break (if the prompt outlived its deadline, this
            // one waits behind it in FreeSWITCH instead of cutting it).
            Some(path) => self.start(leg, path, p.waiting, p.music),
            None => self.send(leg, Sound::Music(std::mem::take(&mut p.music))),
        }
    }

    fn start(&mut self, leg: LegId, path: String, waiting: VecDeque<String>, music: String) {
        self.next_generation += 1;
        let generation = self.next_generation;
        self.send(leg, Sound::Prompt(path.clone()));
        self.out.push_back(Output::Started { leg, generation });
        self.legs.insert(
            leg,
            Playing {
                path,
                generation,
                waiting,
                music,
            },
        );
    }

    fn send(&mut self, leg: LegId, sound: Sound) {
        self.out.push_back(Output::Send { leg, sound });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0b4e4b9c-8a5e-4c8f-9d3c-2a4f5e6d7c8b";
    const MOH: &str = "local_stream://moh";

    fn leg() -> LegId {
        LegId::parse(A).unwrap()
    }

    fn drain(p: &mut Prompts) -> (Vec<Sound>, Vec<u64>) {
        let (mut sounds, mut started) = (Vec::new(), Vec::new());
        while let Some(o) = p.poll_output() {
            match o {
                Output::Send { sound, .. } => sounds.push(sound),
                Output::Started { generation, .. } => started.push(generation),
            }
        }
        (sounds, started)
    }

    fn announce(p: &mut Prompts, path: &str) {
        p.handle_input(
            Instant::now(),
            Input::Announce {
                leg: leg(),
                path: Some(path.into()),
                music: MOH.into(),
            },
        );
    }

    fn ended(p: &mut Prompts, path: &str) {
        p.handle_input(
            Instant::now(),
            Input::Executed {
                leg: leg(),
                app: "playback",
                data: path,
            },
        );
    }

    #[test]
    fn a_prompt_over_music_breaks_the_music_and_the_music_comes_back_when_it_ends() {
        let mut p = Prompts::default();
        announce(&mut p, "a.wav");
        let (sounds, started) = drain(&mut p);
        assert_eq!(sounds, [Sound::BreakAll, Sound::Prompt("a.wav".into())]);
        assert_eq!(started.len(), 1);
        ended(&mut p, "a.wav");
        assert_eq!(drain(&mut p).0, [Sound::Music(MOH.into())]);
        assert_eq!(p.playing(leg()), None);
    }

    #[test]
    fn a_prompt_due_while_another_plays_waits_for_its_end_without_a_break() {
        let mut p = Prompts::default();
        announce(&mut p, "position.wav");
        drain(&mut p);
        announce(&mut p, "periodic.wav");
        assert_eq!(drain(&mut p).0, [], "nothing is sent while a prompt plays");
        // The music's own completion (stopped by the break) is not the prompt's end.
        p.handle_input(
            Instant::now(),
            Input::Executed {
                leg: leg(),
                app: "playback",
                data: MOH,
            },
        );
        assert_eq!(drain(&mut p).0, []);
        ended(&mut p, "position.wav");
        assert_eq!(drain(&mut p).0, [Sound::Prompt("periodic.wav".into())]);
        ended(&mut p, "periodic.wav");
        assert_eq!(drain(&mut p).0, [Sound::Music(MOH.into())]);
        assert_eq!(p.counts.queued, 1);
    }

    #[test]
    fn music_asked_for_during_a_prompt_is_what_resumes_after_it() {
        let mut p = Prompts::default();
        announce(&mut p, "a.wav");
        drain(&mut p);
        p.handle_input(
            Instant::now(),
            Input::Music {
                leg: leg(),
                music: "/sounds/other.wav".into(),
            },
        );
        assert_eq!(drain(&mut p).0, []);
        ended(&mut p, "a.wav");
        assert_eq!(drain(&mut p).0, [Sound::Music("/sounds/other.wav".into())]);
        // With nothing playing, music goes out at once.
        p.handle_input(
            Instant::now(),
            Input::Music {
                leg: leg(),
                music: MOH.into(),
            },
        );
        assert_eq!(drain(&mut p).0, [Sound::Music(MOH.into())]);
    }

    #[test]
    fn a_lost_end_counts_as_an_end_at_the_deadline_and_a_stale_deadline_is_ignored() {
        let mut p = Prompts::default();
        announce(&mut p, "a.wav");
        let (_, started) = drain(&mut p);
        announce(&mut p, "b.wav");
        p.handle_input(
            Instant::now(),
            Input::Overdue {
                leg: leg(),
                generation: started[0],
            },
        );
        let (sounds, again) = drain(&mut p);
        assert_eq!(sounds, [Sound::Prompt("b.wav".into())]);
        // The first prompt's deadline again (a duplicate) changes nothing.
        p.handle_input(
            Instant::now(),
            Input::Overdue {
                leg: leg(),
                generation: started[0],
            },
        );
        assert_eq!(drain(&mut p).0, []);
        ended(&mut p, "b.wav");
        assert_eq!(drain(&mut p).0, [Sound::Music(MOH.into())]);
        assert_eq!(p.counts.overdue, 1);
        assert_ne!(again[0], started[0]);
    }

    #[test]
    fn waiting_prompts_are_bounded_and_the_oldest_goes_first() {
        let mut p = Prompts::default();
        announce(&mut p, "now.wav");
        for i in 0..MAX_WAITING + 2 {
            announce(&mut p, &format!("w{i}.wav"));
        }
        drain(&mut p);
        assert_eq!(p.counts.dropped, 2);
        ended(&mut p, "now.wav");
        assert_eq!(drain(&mut p).0, [Sound::Prompt("w2.wav".into())]);
    }

    #[test]
    fn a_repeated_prompt_is_queued_once_and_nothing_to_say_sends_nothing() {
        let mut p = Prompts::default();
        p.handle_input(
            Instant::now(),
            Input::Announce {
                leg: leg(),
                path: None,
                music: MOH.into(),
            },
        );
        assert_eq!(drain(&mut p).0, []);
        announce(&mut p, "a.wav");
        announce(&mut p, "p.wav");
        announce(&mut p, "p.wav");
        drain(&mut p);
        ended(&mut p, "a.wav");
        assert_eq!(drain(&mut p).0, [Sound::Prompt("p.wav".into())]);
        ended(&mut p, "p.wav");
        assert_eq!(drain(&mut p).0, [Sound::Music(MOH.into())]);
    }

    #[test]
    fn a_bridged_leg_is_forgotten_so_nothing_plays_over_the_agent() {
        let mut p = Prompts::default();
        announce(&mut p, "a.wav");
        announce(&mut p, "b.wav");
        drain(&mut p);
        p.handle_input(Instant::now(), Input::Gone { leg: leg() });
        // uuid_bridge stops the playback: its completion must not start b or the music.
        ended(&mut p, "a.wav");
        assert_eq!(drain(&mut p).0, []);
        assert_eq!(p.playing(leg()), None);
    }
}
