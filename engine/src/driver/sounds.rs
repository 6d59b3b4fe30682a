//! Sounds exist on each node, or callers hear a tone: never dead air. Sans-IO: the loop asks
//! the node what this module wants asked and feeds the answers back.
//!
//! A FreeSWITCH without its sound packages plays nothing for a missing file: `playback` fails
//! at once, `endless_playback` gives up, and a caller in queue sits in silence. So at each
//! node's `Connected` (the first and after every reconnect: the node may be another machine
//! now) the driver asks `api file_exists <path>` (`mod_commands.c`, `file_exists_function`:
//! `switch_file_exists`, a `stat` that accepts files and directories, answers `true` /
//! `false`) for the music of every queue and every file the prompt templates can say, and a
//! sound found missing is replaced on that node by a tone (`fallback_music`,
//! `fallback_prompt`) when Music and Announce are rendered. Each missing path is logged at
//! WARN once per node and counted.
//!
//! What a path means on the switch, so that the right file is asked about:
//! - A relative path (`ivr/ivr-you_are_number.wav`) is under the channel's `sound_prefix`
//!   (`switch_ivr_play_say.c`); the driver reads the global one (`global_getvar sound_prefix`,
//!   set by vanilla `vars.xml` to `$${sounds_dir}/en/us/callie`).
//! - The standard sound packages keep a file one directory lower, by sample rate
//!   (`ivr/8000/ivr-you_are_number.wav`), and mod_sndfile tries `<dir>/<rate>/<file>` when
//!   `<dir>/<file>` does not open (`mod_sndfile.c`, `alt_path`). So a file counts as present
//!   when the path itself or one of its rate variants exists.
//! - `local_stream://moh` is a stream, not a file: mod_local_stream looks for a stream named
//!   `moh`, then `moh/<rate>`, then `default` (`mod_local_stream.c`, `local_stream_file_open`),
//!   and vanilla `local_stream.conf.xml` reads those from `$${sounds_dir}/music/<rate>` (the
//!   package freeswitch-music-default). For `moh` and `default` the driver checks that
//!   directory (`global_getvar sounds_dir`); other stream names are defined in the node's own
//!   configuration and cannot be checked from here: they are taken as given.
//! - Tone and silence streams, `file_string://`, `app::args` and URLs are not files: taken as
//!   given.
//!
//! ```text
//!   Connected ─► AskGlobals ─ Globals ─► AskExists per path ─ Exists(true)  ─► present
//!                                                          └─ Exists(false) ─► missing: WARN
//!                                                             (once per node), fallback tone
//!   a path never seen (a queue created later) ─► asked on its first use; used as given meanwhile
//! ```
//!
//! Bound: `MAX_PATHS` paths known per node; past it a new path is used as given, unchecked.

use std::collections::{HashMap, HashSet, VecDeque};

/// Sample-rate directories of the standard sound and music packages.
const RATES: [u32; 4] = [8000, 16000, 32000, 48000];
/// Paths whose state is kept per node.
pub(crate) const MAX_PATHS: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Asking,
    Present,
    Missing,
    /// Not a file we can ask about, or the question failed: used as given.
    Unchecked,
}

#[derive(Debug, Default)]
struct NodeSounds {
    /// Answers of a connection older than this are dropped.
    epoch: u64,
    /// `None` until the node answered `global_getvar`.
    globals: Option<Globals>,
    state: HashMap<String, State>,
    /// Paths to ask about once the globals are known.
    pending: Vec<String>,
    /// Missing paths already warned about (kept across reconnects: one warning per node).
    warned: HashSet<String>,
}

/// The node's sound directories (empty when the node has no such variable).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Globals {
    pub sound_prefix: String,
    pub sounds_dir: String,
}

#[derive(Debug)]
pub(crate) enum Input {
    /// The node's connection is (again) up; `paths` are the sounds configured now.
    Connected { node: usize, paths: Vec<String> },
    Globals {
        node: usize,
        epoch: u64,
        globals: Globals,
    },
    /// `file_exists` of a path's candidates: `Some(any true)`, `None` when unanswered.
    Exists {
        node: usize,
        epoch: u64,
        path: String,
        present: Option<bool>,
    },
    /// A sound to know about on every node (a queue created or changed).
    Configured { paths: Vec<String> },
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Output {
    AskGlobals {
        node: usize,
        epoch: u64,
    },
    /// `api file_exists <c>` for each candidate.
    AskExists {
        node: usize,
        epoch: u64,
        path: String,
        candidates: Vec<String>,
    },
    /// First time `path` was found missing on `node`: WARN and count.
    Missing {
        node: usize,
        path: String,
    },
}

#[derive(Debug)]
pub(crate) struct Sounds {
    nodes: Vec<NodeSounds>,
    fallback_music: String,
    fallback_prompt: String,
    out: VecDeque<Output>,
}

impl Sounds {
    pub(crate) fn new(nodes: usize, fallback_music: String, fallback_prompt: String) -> Sounds {
        Sounds {
            nodes: (0..nodes).map(|_| NodeSounds::default()).collect(),
            fallback_music,
            fallback_prompt,
            out: VecDeque::new(),
        }
    }

    pub(crate) fn handle_input(&mut self, input: Input) {
        match input {
            Input::Connected { node, paths } => {
                let Some(n) = self.nodes.get_mut(node) else {
                    return;
                };
                n.epoch += 1;
                n.globals = None;
                n.state.clear();
                n.pending.clear();
                let epoch = n.epoch;
                self.out.push_back(Output::AskGlobals { node, epoch });
                for p in paths {
                    self.want(node, &p);
                }
            }
            Input::Globals {
                node,
                epoch,
                globals,
            } => {
                let Some(n) = self.nodes.get_mut(node).filter(|n| n.epoch == epoch) else {
                    return;
                };
                n.globals = Some(globals);
                let pending = std::mem::take(&mut n.pending);
                for p in &pending {
                    n.state.remove(p);
                }
                for p in pending {
                    self.want(node, &p);
                }
            }
            Input::Exists {
                node,
                epoch,
                path,
                present,
            } => {
                let Some(n) = self.nodes.get_mut(node).filter(|n| n.epoch == epoch) else {
                    return;
                };
                let state = match present {
                    Some(true) => State::Present,
                    Some(false) => State::Missing,
                    None => State::Unchecked,
                };
                if state == State::Missing
                    && n.warned.len() < MAX_PATHS
                    && n.warned.insert(path.clone())
                {
                    self.out.push_back(Output::Missing {
                        node,
                        path: path.clone(),
                    });
                }
                n.state.insert(path, state);
            }
            Input::Configured { paths } => {
                for node in 0..self.nodes.len() {
                    // A node never connected asks at its first Connected.
                    if self.nodes[node].epoch == 0 {
                        continue;
                    }
                    for p in &paths {
                        self.want(node, p);
                    }
                }
            }
        }
    }

    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The music to broadcast on `node`: the source, or the tone when it is missing there.
    pub(crate) fn music(&mut self, node: usize, source: &str) -> String {
        match self.check(node, source) {
            State::Missing => self.fallback_music.clone(),
            _ => source.to_owned(),
        }
    }

    /// The files of one prompt on `node`: as given, or the fallback tone when any is missing
    /// there (half a sentence, "you are number ... 3", says something false).
    pub(crate) fn prompt(&mut self, node: usize, files: Vec<String>) -> Vec<String> {
        let mut missing = false;
        for f in &files {
            missing |= self.check(node, f) == State::Missing;
        }
        if missing {
            vec![self.fallback_prompt.clone()]
        } else {
            files
        }
    }

    /// What is known of `path` on `node`; asks about a path never seen.
    fn check(&mut self, node: usize, path: &str) -> State {
        match self.nodes.get(node).and_then(|n| n.state.get(path)) {
            Some(s) => *s,
            None => {
                self.want(node, path);
                State::Unchecked
            }
        }
    }

    /// Starts the question about `path` on `node` unless it is known or asked already.
    fn want(&mut self, node: usize, path: &str) {
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        if n.state.contains_key(path) || n.state.len() >= MAX_PATHS {
            return;
        }
        let Some(globals) = &n.globals else {
            n.state.insert(path.to_owned(), State::Asking);
            n.pending.push(path.to_owned());
            return;
        };
        match candidates(path, globals) {
            Some(candidates) => {
                n.state.insert(path.to_owned(), State::Asking);
                self.out.push_back(Output::AskExists {
                    node,
                    epoch: n.epoch,
                    path: path.to_owned(),
                    candidates,
                });
            }
            None => {
                n.state.insert(path.to_owned(), State::Unchecked);
            }
        }
    }
}

/// The files whose existence means `path` plays on a node with these directories; `None`
/// when it is not something `file_exists` can tell (see the module doc).
pub(crate) fn candidates(path: &str, g: &Globals) -> Option<Vec<String>> {
    let path = path.trim();
    // `file_exists <path>` is one api line: a path with spaces cannot be asked about.
    if path.is_empty()
        || path.contains("${")
        || path.contains("::")
        || path.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    if let Some(stream) = path.strip_prefix("local_stream://") {
        let name = stream.split('/').next().unwrap_or("");
        if !matches!(name, "moh" | "default") || g.sounds_dir.is_empty() {
            return None;
        }
        let dir = g.sounds_dir.trim_end_matches('/');
        return Some(RATES.iter().map(|r| format!("{dir}/music/{r}")).collect());
    }
    if path.contains("://") {
        return None;
    }
    let full = if path.starts_with('/') {
        path.to_owned()
    } else if g.sound_prefix.is_empty() {
        return None;
    } else {
        format!("{}/{path}", g.sound_prefix.trim_end_matches('/'))
    };
    let mut out = vec![full.clone()];
    if let Some((dir, file)) = full.rsplit_once('/') {
        out.extend(RATES.iter().map(|r| format!("{dir}/{r}/{file}")));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TONE: &str = "tone_stream://%(2000,4000,440,480);loops=-1";
    const BEEP: &str = "tone_stream://%(500,500,800)";

    fn globals() -> Globals {
        Globals {
            sound_prefix: "/usr/share/freeswitch/sounds/en/us/callie".into(),
            sounds_dir: "/usr/share/freeswitch/sounds".into(),
        }
    }

    fn drain(s: &mut Sounds) -> Vec<Output> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    /// Connects node 0 with `paths` and answers every question with `exists`.
    fn connected(paths: &[&str], exists: impl Fn(&str) -> bool) -> (Sounds, Vec<Output>) {
        let mut s = Sounds::new(2, TONE.into(), BEEP.into());
        s.handle_input(Input::Connected {
            node: 0,
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        });
        assert_eq!(drain(&mut s), [Output::AskGlobals { node: 0, epoch: 1 }]);
        s.handle_input(Input::Globals {
            node: 0,
            epoch: 1,
            globals: globals(),
        });
        let mut warnings = Vec::new();
        let mut asks = drain(&mut s);
        while !asks.is_empty() {
            for o in std::mem::take(&mut asks) {
                match o {
                    Output::AskExists {
                        node,
                        epoch,
                        path,
                        candidates,
                    } => s.handle_input(Input::Exists {
                        node,
                        epoch,
                        present: Some(candidates.iter().any(|c| exists(c))),
                        path,
                    }),
                    other => warnings.push(other),
                }
            }
            asks = drain(&mut s);
        }
        (s, warnings)
    }

    #[test]
    fn local_stream_moh_is_checked_as_the_music_directories_of_the_default_package() {
        assert_eq!(
            candidates("local_stream://moh", &globals()).unwrap(),
            [
                "/usr/share/freeswitch/sounds/music/8000",
                "/usr/share/freeswitch/sounds/music/16000",
                "/usr/share/freeswitch/sounds/music/32000",
                "/usr/share/freeswitch/sounds/music/48000",
            ]
        );
        assert_eq!(candidates("local_stream://jazz", &globals()), None);
        assert_eq!(candidates("tone_stream://%(1,1,440)", &globals()), None);
        assert_eq!(candidates("endless_playback::/a.wav", &globals()), None);
    }

    #[test]
    fn a_relative_prompt_is_looked_for_under_the_sound_prefix_and_its_rate_directories() {
        let c = candidates("ivr/ivr-you_are_number.wav", &globals()).unwrap();
        let base = "/usr/share/freeswitch/sounds/en/us/callie/ivr";
        assert_eq!(c[0], format!("{base}/ivr-you_are_number.wav"));
        assert_eq!(c[1], format!("{base}/8000/ivr-you_are_number.wav"));
        assert_eq!(c.len(), 5);
        let no_prefix = Globals {
            sound_prefix: String::new(),
            ..globals()
        };
        assert_eq!(candidates("ivr/x.wav", &no_prefix), None);
        assert_eq!(
            candidates("/abs/x.wav", &no_prefix).unwrap()[0],
            "/abs/x.wav"
        );
    }

    #[test]
    fn missing_music_becomes_the_tone_on_that_node_only_and_is_warned_once() {
        let (mut s, warnings) = connected(&["local_stream://moh", "/srv/hold.wav"], |c| {
            !c.contains("/music/")
        });
        assert_eq!(
            warnings,
            [Output::Missing {
                node: 0,
                path: "local_stream://moh".into()
            }]
        );
        assert_eq!(s.music(0, "local_stream://moh"), TONE);
        assert_eq!(s.music(0, "/srv/hold.wav"), "/srv/hold.wav");
        // Node 1 never said so: its music is used as given.
        assert_eq!(s.music(1, "local_stream://moh"), "local_stream://moh");
        // A reconnect asks again but does not warn again.
        s.handle_input(Input::Connected {
            node: 0,
            paths: vec!["local_stream://moh".into()],
        });
        let asked = drain(&mut s);
        assert_eq!(asked, [Output::AskGlobals { node: 0, epoch: 2 }]);
        s.handle_input(Input::Globals {
            node: 0,
            epoch: 2,
            globals: globals(),
        });
        for o in drain(&mut s) {
            if let Output::AskExists { path, .. } = o {
                s.handle_input(Input::Exists {
                    node: 0,
                    epoch: 2,
                    path,
                    present: Some(false),
                });
            }
        }
        assert_eq!(drain(&mut s), []);
        assert_eq!(s.music(0, "local_stream://moh"), TONE);
    }

    #[test]
    fn a_prompt_with_any_missing_file_becomes_the_beep() {
        let (mut s, warnings) =
            connected(&["digits/1.wav", "ivr/a.wav"], |c| !c.contains("digits"));
        assert_eq!(warnings.len(), 1);
        let files = vec!["ivr/a.wav".to_owned(), "digits/1.wav".to_owned()];
        assert_eq!(s.prompt(0, files), [BEEP]);
        assert_eq!(s.prompt(0, vec!["ivr/a.wav".into()]), ["ivr/a.wav"]);
    }

    #[test]
    fn answers_of_an_older_connection_are_ignored_and_unknown_paths_are_asked_on_first_use() {
        let mut s = Sounds::new(1, TONE.into(), BEEP.into());
        s.handle_input(Input::Connected {
            node: 0,
            paths: vec![],
        });
        s.handle_input(Input::Globals {
            node: 0,
            epoch: 1,
            globals: globals(),
        });
        drain(&mut s);
        // First use: as given, and asked.
        assert_eq!(s.music(0, "/srv/new.wav"), "/srv/new.wav");
        let asked = drain(&mut s);
        assert!(matches!(&asked[..], [Output::AskExists { path, .. }] if path == "/srv/new.wav"));
        s.handle_input(Input::Exists {
            node: 0,
            epoch: 0,
            path: "/srv/new.wav".into(),
            present: Some(false),
        });
        assert_eq!(
            s.music(0, "/srv/new.wav"),
            "/srv/new.wav",
            "stale answer ignored"
        );
        s.handle_input(Input::Exists {
            node: 0,
            epoch: 1,
            path: "/srv/new.wav".into(),
            present: Some(false),
        });
        assert_eq!(s.music(0, "/srv/new.wav"), TONE);
        assert!(matches!(
            &drain(&mut s)[..],
            [Output::Missing { node: 0, .. }]
        ));
        // A failed question leaves the path as given, without a warning.
        s.handle_input(Input::Configured {
            paths: vec!["/srv/other.wav".into()],
        });
        let asked = drain(&mut s);
        assert_eq!(asked.len(), 1);
        s.handle_input(Input::Exists {
            node: 0,
            epoch: 1,
            path: "/srv/other.wav".into(),
            present: None,
        });
        assert_eq!(drain(&mut s), []);
        assert_eq!(s.music(0, "/srv/other.wav"), "/srv/other.wav");
    }
}
