//! Configuration of the fake switch and its behaviour model (Rust API and TOML scenarios).
//!
//! ```toml
//! seed = 42
//! [agents]                       # user/<ext>
//! extensions = ["1000-1099"]
//! answer_delay = { fixed = 1.0 }
//! answer = 1.0                   # outcome weights
//! reject = 0.0
//! no_answer = 0.0
//! busy = 0.0
//! # talk_time = { exp = 120.0 }  # absent: the agent stays up until hung up
//! [[agents.overrides]]
//! extensions = ["1005"]
//! no_answer = 1.0
//! [customers]                    # sofia/gateway/<gw>/<number>
//! human = 0.7
//! machine = 0.1
//! busy = 0.1
//! no_answer = 0.05
//! failed = 0.05
//! answer_delay = { uniform = [2.0, 8.0] }
//! talk_time = { lognormal = { median = 120.0, sigma = 0.5 } }
//! amd_delay = { fixed = 2.5 }  # answer -> AMD verdict (execute_on_answer=amd|avmd_start)
//! [inbound]                      # callers arriving over the outbound socket
//! calls_per_minute = 6.0
//! destination = "5000"
//! patience = { exp = 60.0 }
//! talk_time = { exp = 180.0 }
//! dtmf = ["1", "2"]
//! # A caller script instead (every generated caller follows it; `dtmf` is then ignored):
//! # press 2 three seconds after the answer, then 1234# one second after that.
//! dtmf_script = [{ after_s = 3.0, digits = "2" }, { after_s = 1.0, digits = "1234#" }]
//! dtmf_digit_gap = { uniform = [0.1, 0.2] }   # between the digits of one press
//! message = { uniform = [3.0, 8.0] }  # seconds each caller speaks into a `record` (absent:
//!                                # silent callers, the default)
//! after_message = "hang_up"      # or "silence" (default): stays on the line, silent
//! modules = ["mod_sofia", "mod_commands", "mod_dptools"]   # what module_exists says is
//!                                # loaded [default: DEFAULT_MODULES] (SimConfig::modules)
//! [switch]                       # the switch's own timing (ScenarioFile / SimConfig::switch)
//! originate_handover = { choice = [[114.0, 0.0005], [6.0, 0.003], [80.0, 0.020]] }
//! bgapi_start = { uniform = [0.005, 0.022] }         # bgapi read -> its command runs
//! bridge_delay = { choice = [[46.0, 0.040], [154.0, 0.060]] }  # uuid_bridge -> CHANNEL_BRIDGE
//! api_expansion = true           # ${api args} in eval runs the api (switch.conf.xml)
//! [switch.bridge_race]           # uuid_bridge inside the handover window: outcome weights
//! bridged = 12.0
//! cancel_bridged = 16.0
//! cancel_stuck = 2.0
//! parked = 1.0
//! stuck = 2.0
//! ```
//!
//! `[switch]` models what the captures `originate-bridge-race-*` show (DESIGN.md section 9):
//! `originate` owns the leg it creates until it completes, `originate_handover` after the leg's
//! CHANNEL_ANSWER; only then come its reply (BACKGROUND_JOB / api response) and its
//! application (`&park()`). A `uuid_bridge` naming a leg inside that window has one of the
//! `bridge_race` outcomes (see [`BridgeRace`]). Both are on by default.
//! - Race off, window kept: `[switch.bridge_race]` with `bridged = 1.0` and the others `0.0`
//!   (a bridge in the window waits for the originate and then always holds).
//! - No window at all (the originate completes with CHANNEL_ANSWER, as before the captures):
//!   `originate_handover = { fixed = 0.0 }`; `bridge_delay = { fixed = 0.0 }` bridges at once.
//!
//! Caller DTMF scripts ([`DtmfScript`]): presses are timed from the caller's answer (the
//! controller's `answer`, when media starts flowing, as the older `dtmf`/`dtmf_delay` are);
//! each press's `after_s` counts from the end of the press before it (its last digit), the
//! first from the answer. The digits of one press go `dtmf_digit_gap` apart. A press holds at
//! most [`MAX_PRESS_DIGITS`] digits of `0-9 * # A-D`, a script at most [`MAX_SCRIPT_PRESSES`]
//! presses; anything else is refused when the scenario is read. What the switch does with a
//! digit (collected by `play_and_get_digits`, or consumed by park and only reported as a DTMF
//! event) is in `core/digits.rs`.
//!
//! Voice messages ([`DtmfScript::with_message`], `[inbound] message`): what a caller says into
//! the `record` application (`core/record.rs`): its tone for the message's length from the
//! start of its first recording, then silence or a hangup ([`AfterMessage`]). A caller told
//! nothing says nothing.
//!
//! The file is read with [`ScenarioFile::from_toml`]; [`Scenario::from_toml`] reads the
//! behaviour model alone and rejects a `[switch]` section or `modules` like any unknown key.

use std::time::Duration;

use serde::Deserialize;

use super::rng::Dist;
use crate::error::EslError;

/// The switch itself: identity, credentials, timers, bounds.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Event-socket password (`ClueCon`).
    pub password: String,
    /// `FreeSWITCH-Hostname` / `FreeSWITCH-Switchname`.
    pub hostname: String,
    /// HEARTBEAT interval (FreeSWITCH: 20 s).
    pub heartbeat_interval: Duration,
    /// Events a listener may leave unread (FreeSWITCH's MAX_QUEUE_LEN, 100,000).
    pub max_event_queue: usize,
    /// Events dropped past the bound before the listener is killed (MAX_MISSED, 500).
    pub max_missed: usize,
    /// Where inbound calls go: the address of the dialplan's `socket` application.
    pub inbound_target: Option<String>,
    /// Length of a file played by `playback`/`uuid_broadcast` when the path says nothing
    /// (`silence_stream://<ms>` and `tone_stream://...;loops=N` carry their own).
    pub default_playback: Duration,
    /// Wall-clock time of the simulation start, in microseconds since the Unix epoch (event
    /// timestamps are this plus the virtual time elapsed). Fixed by default, so that tests
    /// see the same stamps every run; [`SimConfig::for_this_run`] makes it now.
    pub epoch_start_us: u64,
    /// Mixed into every uuid the switch makes (channels, jobs, its Core-UUID) and into nothing
    /// else. 0 (the default) keeps them a function of the seed alone, as tests want;
    /// [`SimConfig::for_this_run`] sets it per run, so that a second run of one seed against
    /// the same database reuses no uuid while it replays the same behaviour.
    pub uuid_salt: u64,
    pub scenario: Scenario,
    /// The switch's own timing: originate handover and uuid_bridge (the `[switch]` section).
    pub switch: SwitchModel,
    /// Which sound files exist (`file_exists`, `global_getvar sound_prefix` / `sounds_dir`,
    /// and a `playback` of a file marked missing).
    pub sounds: SoundFiles,
    /// mod_oreka loaded and its `oreka.conf` set (`None`: not loaded, as in a default
    /// FreeSWITCH build: `module_exists mod_oreka` is false and `oreka_record` does not exist).
    pub oreka: Option<super::core::OrekaSetup>,
    /// The modules loaded, as `module_exists` answers (`"true"` / `"false"`, the body of
    /// mod_commands' `module_exists_function`). Default: [`DEFAULT_MODULES`]. `mod_oreka`
    /// follows [`SimConfig::oreka`] whatever this says (the fake runs `oreka_record` only
    /// with an `oreka.conf`). Only the answer follows this list: the fake still runs `amd`
    /// and `avmd_start` when a leg asks for them.
    pub modules: Vec<String>,
}

/// The modules the fake switch says it has by default: what a FreeSWITCH 1.10 build loads
/// with vanilla `modules.conf.xml` that switchyard asks about, plus mod_amd and mod_avmd,
/// whose detection the fake does (a real node needs them built and loaded: mod_avmd is left
/// out of the default build, mod_amd is not in FreeSWITCH's tree).
pub const DEFAULT_MODULES: &[&str] = &[
    "mod_sofia",
    "mod_commands",
    "mod_dptools",
    "mod_event_socket",
    "mod_sndfile",
    "mod_native_file",
    "mod_tone_stream",
    "mod_local_stream",
    "mod_loopback",
    "mod_expr",
    "mod_hash",
    "mod_db",
    "mod_amd",
    "mod_avmd",
];

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            password: "ClueCon".into(),
            hostname: "fakeswitch".into(),
            heartbeat_interval: Duration::from_secs(20),
            max_event_queue: 100_000,
            max_missed: 500,
            inbound_target: None,
            default_playback: Duration::from_secs(2),
            epoch_start_us: 1_795_275_700_000_000,
            uuid_salt: 0,
            scenario: Scenario::default(),
            switch: SwitchModel::default(),
            sounds: SoundFiles::default(),
            oreka: None,
            modules: DEFAULT_MODULES.iter().map(|m| (*m).to_owned()).collect(),
        }
    }
}

impl SimConfig {
    /// This configuration for a run against the real world (the demo, `switchyard
    /// fakeswitch`): events stamped with the wall clock from now, and uuids salted with the
    /// wall clock and the process id, so that no two runs share a uuid (records are keyed by
    /// them) even with one seed. Tests keep the fixed defaults.
    pub fn for_this_run(self) -> SimConfig {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // Two runs of one process id are at least a clock tick apart; two processes alive at
        // once have different ids. Both go in whole, on different bits.
        let nanos = since_epoch.as_nanos() as u64;
        let salt = nanos ^ u64::from(std::process::id()).rotate_left(32);
        SimConfig {
            epoch_start_us: u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX),
            // 0 means "no salt": never hand it out.
            uuid_salt: salt.max(1),
            ..self
        }
    }
}

/// The switch's sound files, as vanilla FreeSWITCH with its sound packages installed lays
/// them out (`vars.xml`: `sound_prefix=$${sounds_dir}/en/us/callie`; the packages keep files
/// by sample rate, `ivr/8000/ivr-you_are_number.wav`; freeswitch-music-default fills
/// `$${sounds_dir}/music/<rate>`, which `local_stream://moh` plays).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoundFiles {
    pub sounds_dir: String,
    pub sound_prefix: String,
    /// Paths that exist; a directory makes everything below it exist. Default: `sounds_dir`
    /// (every standard sound installed).
    pub present: Vec<String>,
    /// Paths that do not exist even though `present` covers them: the path, everything below
    /// it, and its sample-rate variants (`dir/8000/file` of `dir/file`). A `playback` of such a
    /// file fails at once (`FILE NOT FOUND`, no PLAYBACK_START), as on a real switch; other
    /// files outside `present` still play (tests play made-up paths).
    pub missing: Vec<String>,
}

impl Default for SoundFiles {
    fn default() -> Self {
        let dir = "/usr/share/freeswitch/sounds".to_owned();
        SoundFiles {
            sound_prefix: format!("{dir}/en/us/callie"),
            present: vec![dir.clone()],
            sounds_dir: dir,
            missing: Vec::new(),
        }
    }
}

impl SoundFiles {
    /// The same files without `path` (see `missing`). A relative path is taken under
    /// `sound_prefix`; `local_stream://moh` means the music directory.
    pub fn without(mut self, path: &str) -> SoundFiles {
        let p = self.resolve(path);
        self.missing.push(p);
        self
    }

    /// What `file_exists <path>` answers.
    pub fn exists(&self, path: &str) -> bool {
        let covered = self.present.iter().any(|p| under(path, p));
        covered && !self.hidden(path)
    }

    /// Whether `path` (as a playback names it) was marked missing.
    pub fn hidden(&self, path: &str) -> bool {
        let path = self.resolve(path);
        let plain = strip_rate(&path);
        self.missing
            .iter()
            .any(|m| under(&path, m) || plain.as_deref().is_some_and(|p| under(p, m)))
    }

    /// A path as FreeSWITCH reads it: relative ones under `sound_prefix`, the vanilla
    /// `moh` / `default` local streams as the music directory.
    fn resolve(&self, path: &str) -> String {
        let path = path.trim();
        if let Some(stream) = path.strip_prefix("local_stream://") {
            return match stream.split('/').next() {
                Some("moh" | "default") => format!("{}/music", self.sounds_dir),
                _ => path.to_owned(),
            };
        }
        if path.starts_with('/') || path.contains("://") {
            return path.to_owned();
        }
        format!("{}/{path}", self.sound_prefix)
    }
}

/// `path` is `dir` or below it.
fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// `a/8000/b.wav` -> `a/b.wav`; `None` when the last directory is not a number.
fn strip_rate(path: &str) -> Option<String> {
    let (dir, file) = path.rsplit_once('/')?;
    let (parent, rate) = dir.rsplit_once('/')?;
    (!rate.is_empty() && rate.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{parent}/{file}"))
}

/// How FreeSWITCH's own machinery times an originate's completion and a `uuid_bridge`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SwitchModel {
    /// CHANNEL_ANSWER of a leg made by `originate` -> the originate completes (its reply, then
    /// its application), drawn per leg. The captures show ~19 ms for loopback legs (the 20 ms
    /// core tick) and 0-3 ms for SIP; a real FreeSWITCH 1.10.12 run of 200 loopback agents
    /// (issue 15) took under 1 ms in 114, 1-5 ms in 6 and 15-25 ms in 80: the default. `0`:
    /// no window (the originate completes with the answer).
    pub originate_handover: Dist,
    /// `bgapi` read -> its command starts. mod_event_socket answers `+OK Job-UUID` once the
    /// job's thread has started (`api_exec` sets `ack`) and reads the connection's next
    /// command while that thread runs, so an `api uuid_kill` sent right behind a `bgapi
    /// originate` can run before the originate has created its channel and find none. The
    /// captures show CHANNEL_CREATE 1.7-2.5 ms after the client sent the originate, the real
    /// run of issue 15 5-9 ms on a quiet switch and p50 8.6, p99 21.8 ms under load; the
    /// default is uniform 5-22 ms. `0`: the command runs as it is read.
    pub bgapi_start: Dist,
    /// `uuid_bridge` -> CHANNEL_BRIDGE when no originate is in the way: CHANNEL_UNPARK of the
    /// parked legs at half of it, CHANNEL_EXECUTE uuid_bridge + CHANNEL_BRIDGE at the end. The
    /// captures (`after-job-*`, `on-park-*`) show 20 ms ticks, 40-60 ms in all; the real run
    /// of issue 15: 40 ms in 46 of 200 bridges, 60 ms in 154 (the default). `0`: at once.
    pub bridge_delay: Dist,
    /// Outcome weights of a `uuid_bridge` that lands inside the handover window.
    pub bridge_race: BridgeRace,
    /// What the inbound callers' extension holds after `socket <addr> async full`.
    pub after_socket: AfterSocket,
    /// Chance that a `uuid_bridge` taking a caller out of its `socket` application lets the
    /// application return into the rest of its extension before the bridge has claimed the
    /// channel (FreeSWITCH's end-of-extension check, `switch_core_standard_on_execute`). With
    /// nothing after `socket` the caller is then hung up NORMAL_CLEARING
    /// `socket_fall_through_hangup` after its CHANNEL_UNPARK and the other leg stays parked;
    /// with a `park` after it the caller parks and the bridge goes on. Off by default: the
    /// first real-switch trial of issue 15 reported this drop on 8 of 19 calls, but a second
    /// one (350 calls, `socket` last, with and without a running broadcast, the race forced
    /// or not) saw none, and in FreeSWITCH's code `uuid_bridge` sets CF_TRANSFER before it
    /// changes state while both `socket`'s resume check and the end-of-extension hangup skip
    /// a channel with CF_TRANSFER set. Tests set it to prove the dialplan and the bridge
    /// sequence immune should it happen.
    pub socket_fall_through: f64,
    /// CHANNEL_UNPARK -> the hangup of a caller whose extension ran out (observed ~5 ms).
    pub socket_fall_through_hangup: Dist,
    /// The documented dialplan's hold loop for callers (README "FreeSWITCH dialplan";
    /// `esl-captures/socket-resume.md`): callers arrive with `socket_resume=true`, and when
    /// their controller dies or cannot be reached the `socket` application returns, they hear
    /// the hold tone and enter `socket` again, at most `max_tries` times, then are hung up
    /// NORMAL_TEMPORARY_FAILURE. `None`: the plain extension (`socket` then `after_socket`).
    pub resume_loop: Option<ResumeLoop>,
    /// `api-expansion` in `switch.conf.xml` (on by default in FreeSWITCH 1.10): `${name args}`
    /// in a variable expansion (the `eval` application and API, `expand`) runs API `name`.
    /// Off, every such call expands to `<API Execute Permission Denied>`
    /// (`switch_channel_expand_variables_check`, `switch_event_expand_headers_check`).
    pub api_expansion: bool,
}

/// See [`SwitchModel::resume_loop`].
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ResumeLoop {
    /// Passes through `socket` before giving up (`resume_max` in the dialplan).
    pub max_tries: u32,
    /// The hold tone between two passes (`tone_stream://%(500,500,440);loops=3`: 3 s).
    pub hold: Dist,
}

impl Default for ResumeLoop {
    fn default() -> Self {
        ResumeLoop {
            max_tries: 20,
            hold: Dist::Fixed(3.0),
        }
    }
}

/// The inbound callers' extension after the `socket` action (the documented dialplan puts a
/// `park` there; see README "FreeSWITCH dialplan").
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AfterSocket {
    /// `socket` is the last action: a socket that returns ends the extension, and FreeSWITCH
    /// hangs the caller up NORMAL_CLEARING.
    Nothing,
    /// `socket`, then `park`: a socket that returns early leaves the caller parked, where a
    /// `uuid_bridge` (or its hangup_after_bridge) still decides what happens to it.
    #[default]
    Park,
}

impl Default for SwitchModel {
    fn default() -> Self {
        SwitchModel {
            originate_handover: Dist::Choice(vec![[114.0, 0.0005], [6.0, 0.003], [80.0, 0.020]]),
            bgapi_start: Dist::Uniform([0.005, 0.022]),
            bridge_delay: Dist::Choice(vec![[46.0, 0.040], [154.0, 0.060]]),
            bridge_race: BridgeRace::default(),
            after_socket: AfterSocket::default(),
            socket_fall_through: 0.0,
            socket_fall_through_hangup: Dist::Fixed(0.005),
            resume_loop: Some(ResumeLoop::default()),
            api_expansion: true,
        }
    }
}

/// Relative weights of what a `uuid_bridge A B` does when A or B is an originated leg whose
/// originate has not completed yet (`api uuid_bridge` itself answers `+OK <B>` at once).
///
/// The defaults are the counts of the captures' server-side `bgapi uuid_bridge` on answer
/// with a loopback agent, two runs, 33 trials: 12 bridged; 18 `-ERR ORIGINATOR_CANCEL` (run 1
/// split them 8 bridged / 1 not; run 2's 9 are assumed to split alike: 16 / 2); 1 `+OK` with
/// the agent parked; 2 `+OK` never bridged nor parked. So 5 in 33 calls are never bridged.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BridgeRace {
    /// The bridge waits for the originate: job `+OK`, no park of the leg, then the bridge
    /// with the usual `bridge_delay`.
    pub bridged: f64,
    /// Job `-ERR ORIGINATOR_CANCEL` yet the leg stays up, and the bridge completes half a
    /// `bridge_delay` later (capture `a-originator-cancel-*`).
    pub cancel_bridged: f64,
    /// Job `-ERR ORIGINATOR_CANCEL`, the leg stays up, never bridged nor parked; the other
    /// leg is unparked and left waiting (a silent pair).
    pub cancel_stuck: f64,
    /// Job `+OK`, then the originate's own application (`&park()`) wins: the leg parks, the
    /// other leg is unparked, no bridge (capture `b-parked-*`).
    pub parked: f64,
    /// Job `+OK`, the leg never parks nor bridges, the other leg is unparked (capture
    /// `b-not-bridged-*`).
    pub stuck: f64,
}

impl Default for BridgeRace {
    fn default() -> Self {
        BridgeRace {
            bridged: 12.0,
            cancel_bridged: 16.0,
            cancel_stuck: 2.0,
            parked: 1.0,
            stuck: 2.0,
        }
    }
}

/// What a `uuid_bridge` inside an originate's handover window comes to (see [`BridgeRace`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaceOutcome {
    Bridged,
    CancelBridged,
    CancelStuck,
    Parked,
    Stuck,
}

impl BridgeRace {
    /// One outcome for `x` uniform in `[0, 1)`. Weights that are negative, not finite or all
    /// zero count as "always bridged": a scenario typo must not invent failures.
    pub fn pick(&self, x: f64) -> RaceOutcome {
        let w = [
            (self.bridged, RaceOutcome::Bridged),
            (self.cancel_bridged, RaceOutcome::CancelBridged),
            (self.cancel_stuck, RaceOutcome::CancelStuck),
            (self.parked, RaceOutcome::Parked),
            (self.stuck, RaceOutcome::Stuck),
        ];
        let clean = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
        let total: f64 = w.iter().map(|(v, _)| clean(*v)).sum();
        if total <= 0.0 {
            return RaceOutcome::Bridged;
        }
        let mut left = x * total;
        for (v, o) in w {
            let v = clean(v);
            if v > 0.0 && left < v {
                return o;
            }
            left -= v;
        }
        // Rounding at the top end: the last outcome with any weight.
        w.iter()
            .rev()
            .find(|(v, _)| clean(*v) > 0.0)
            .map_or(RaceOutcome::Bridged, |(_, o)| *o)
    }
}

/// A scenario file: the behaviour model plus the optional `[switch]` section and `modules`
/// list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScenarioFile {
    pub scenario: Scenario,
    pub switch: SwitchModel,
    /// The modules `module_exists` says are loaded (`None`: [`DEFAULT_MODULES`]).
    pub modules: Option<Vec<String>>,
}

impl ScenarioFile {
    /// Parses a scenario file; unknown keys, in `[switch]` too, are errors.
    pub fn from_toml(text: &str) -> Result<Self, EslError> {
        let bad = |e: &dyn std::fmt::Display| EslError::Protocol {
            reason: format!("bad scenario: {e}"),
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| bad(&e))?;
        // `switch` lives in SimConfig, not in Scenario (whose struct literal callers build),
        // so it is split off before the model is read.
        let switch = match table.remove("switch") {
            Some(v) => v
                .try_into::<SwitchModel>()
                .map_err(|e| bad(&format!("[switch]: {e}")))?,
            None => SwitchModel::default(),
        };
        // Like `switch`, a SimConfig setting, not part of the behaviour model.
        let modules = match table.remove("modules") {
            Some(v) => Some(
                v.try_into::<Vec<String>>()
                    .map_err(|e| bad(&format!("modules: {e}")))?,
            ),
            None => None,
        };
        let scenario = toml::Value::Table(table)
            .try_into::<Scenario>()
            .map_err(|e| bad(&e))?;
        Ok(ScenarioFile {
            scenario,
            switch,
            modules,
        })
    }
}

/// The behaviour model.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    pub seed: u64,
    pub agents: AgentModel,
    pub customers: CustomerModel,
    pub inbound: Option<InboundModel>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            seed: 1,
            agents: AgentModel::default(),
            customers: CustomerModel::default(),
            inbound: None,
        }
    }
}

impl Scenario {
    pub fn from_toml(text: &str) -> Result<Self, EslError> {
        toml::from_str(text).map_err(|e| EslError::Protocol {
            reason: format!("bad scenario: {e}"),
        })
    }
}

/// Agent phones (`user/<ext>`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentModel {
    /// Registered extensions: `"1000-1099"` ranges or single numbers. Others are
    /// USER_NOT_REGISTERED.
    pub extensions: Vec<String>,
    #[serde(flatten)]
    pub behaviour: AgentBehaviour,
    pub overrides: Vec<AgentOverride>,
}

impl Default for AgentModel {
    fn default() -> Self {
        AgentModel {
            extensions: vec!["1000-1099".into()],
            behaviour: AgentBehaviour::default(),
            overrides: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AgentOverride {
    pub extensions: Vec<String>,
    #[serde(flatten)]
    pub behaviour: AgentBehaviour,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct AgentBehaviour {
    pub answer: f64,
    pub reject: f64,
    pub no_answer: f64,
    pub busy: f64,
    pub answer_delay: Dist,
    /// Absent: the phone stays up until the far end or the API hangs up.
    pub talk_time: Option<Dist>,
    /// The phone's transfer key: a blind SIP REFER this long into the conversation.
    pub transfer: Option<PhoneTransfer>,
}

/// A blind transfer made on the agent's phone (module `core::refer`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PhoneTransfer {
    /// From the bridge.
    pub after: Dist,
    /// The Refer-To user: the extension the caller is sent to, in the caller's own context.
    pub to: String,
}

impl Default for AgentBehaviour {
    fn default() -> Self {
        AgentBehaviour {
            answer: 1.0,
            reject: 0.0,
            no_answer: 0.0,
            busy: 0.0,
            answer_delay: Dist::Fixed(1.0),
            talk_time: None,
            transfer: None,
        }
    }
}

/// Customers dialled through a gateway (`sofia/gateway/<gw>/<number>`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CustomerModel {
    pub human: f64,
    pub machine: f64,
    pub busy: f64,
    pub no_answer: f64,
    pub failed: f64,
    /// Cause of a failed call.
    pub failed_cause: String,
    pub answer_delay: Dist,
    /// Ringing before a no-answer gives up (the network's timer; the originate timeout may
    /// cut it short).
    pub no_answer_after: Dist,
    pub talk_time: Option<Dist>,
    /// How long an answering machine talks before it hangs up.
    pub machine_greeting: Dist,
    /// How long answering-machine detection takes on an answered leg (mod_amd's `amd` run by
    /// `execute_on_answer=amd`, or mod_avmd's beep after `execute_on_answer=avmd_start`).
    pub amd_delay: Dist,
    /// Numbers with a fixed outcome: `{ "+15550001" = "busy" }`.
    pub numbers: std::collections::BTreeMap<String, String>,
}

impl Default for CustomerModel {
    fn default() -> Self {
        CustomerModel {
            human: 1.0,
            machine: 0.0,
            busy: 0.0,
            no_answer: 0.0,
            failed: 0.0,
            failed_cause: "NORMAL_TEMPORARY_FAILURE".into(),
            answer_delay: Dist::Uniform([2.0, 6.0]),
            no_answer_after: Dist::Fixed(30.0),
            talk_time: None,
            machine_greeting: Dist::Fixed(8.0),
            amd_delay: Dist::Fixed(2.5),
            numbers: Default::default(),
        }
    }
}

/// Callers reaching the center: they arrive, the dialplan hands each to the socket target.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InboundModel {
    /// Poisson arrival rate; 0 = only calls placed through [`Switch::place_inbound_call`].
    ///
    /// [`Switch::place_inbound_call`]: super::Switch::place_inbound_call
    pub calls_per_minute: f64,
    /// Stop generating after this many calls.
    pub max_calls: Option<u64>,
    /// Dialled number (`Caller-Destination-Number`).
    pub destination: String,
    /// Caller hangs up (ORIGINATOR_CANCEL) when not bridged to someone by then.
    pub patience: Option<Dist>,
    /// Once bridged, caller hangs up after this long.
    pub talk_time: Option<Dist>,
    /// Digits the caller may press (one chosen at random), `dtmf_delay` after answer.
    pub dtmf: Vec<String>,
    pub dtmf_delay: Dist,
    /// What every generated caller presses, and when (takes the place of `dtmf`).
    pub dtmf_script: Option<DtmfScript>,
    /// Gap between the digits of one press, sampled once per caller.
    pub dtmf_digit_gap: Dist,
    /// How long every generated caller speaks when a `record` application records it
    /// (seconds, sampled per caller, capped at [`MAX_MESSAGE`]). Absent (the default): callers
    /// say nothing, so a `record` with a silence threshold ends by its silence rule with an
    /// empty file.
    pub message: Option<Dist>,
    /// What a generated caller does after its message (`"silence"`, the default, or
    /// `"hang_up"`).
    pub after_message: AfterMessage,
}

impl Default for InboundModel {
    fn default() -> Self {
        InboundModel {
            calls_per_minute: 0.0,
            max_calls: None,
            destination: "5000".into(),
            patience: None,
            talk_time: None,
            dtmf: Vec::new(),
            dtmf_delay: Dist::Fixed(2.0),
            dtmf_script: None,
            dtmf_digit_gap: Dist::Uniform([0.1, 0.2]),
            message: None,
            after_message: AfterMessage::Silence,
        }
    }
}

/// Digits one press may hold; a longer one is refused (a typo, not a caller).
pub const MAX_PRESS_DIGITS: usize = 64;
/// Presses one script may hold; a longer script is refused.
pub const MAX_SCRIPT_PRESSES: usize = 128;
/// The latest a press may come after the one before it (a day, as [`Dist`] caps its samples).
const MAX_PRESS_AFTER: Duration = Duration::from_secs(86_400);
/// The gap between two digits of a press when none is given (real phones: 100-200 ms).
pub const DEFAULT_DIGIT_GAP: Duration = Duration::from_millis(150);

/// One press of a caller's script: `digits`, `after` the press before it ended (the first:
/// after the answer). Built only through [`DtmfPress::new`], so the switch never meets a
/// digit it cannot send.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "PressToml")]
pub struct DtmfPress {
    after: Duration,
    digits: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PressToml {
    after_s: f64,
    digits: String,
}

impl TryFrom<PressToml> for DtmfPress {
    type Error = EslError;
    fn try_from(p: PressToml) -> Result<Self, EslError> {
        if !p.after_s.is_finite() || p.after_s < 0.0 {
            return Err(script_error(format!("after_s {} is not a time", p.after_s)));
        }
        let after = Duration::from_secs_f64(p.after_s.min(MAX_PRESS_AFTER.as_secs_f64()));
        DtmfPress::new(after, &p.digits)
    }
}

fn script_error(reason: String) -> EslError {
    EslError::Protocol {
        reason: format!("bad dtmf script: {reason}"),
    }
}

impl DtmfPress {
    /// `digits` (1 to [`MAX_PRESS_DIGITS`] of `0-9 * # A-D`, case-insensitive) pressed
    /// `after` the previous press (capped at a day).
    pub fn new(after: Duration, digits: &str) -> Result<Self, EslError> {
        if digits.is_empty() || digits.len() > MAX_PRESS_DIGITS {
            return Err(script_error(format!(
                "a press holds 1 to {MAX_PRESS_DIGITS} digits, not {}",
                digits.len()
            )));
        }
        if let Some(bad) = digits.chars().find(|c| !is_dtmf_digit(*c)) {
            return Err(script_error(format!("{bad:?} is not a DTMF digit")));
        }
        Ok(DtmfPress {
            after: after.min(MAX_PRESS_AFTER),
            digits: digits.to_ascii_uppercase(),
        })
    }

    pub fn after(&self) -> Duration {
        self.after
    }

    pub fn digits(&self) -> &str {
        &self.digits
    }
}

/// The longest voice message a caller leaves (longer ones are refused, sampled ones capped).
pub const MAX_MESSAGE: Duration = Duration::from_secs(3600);

/// What a caller does once its voice message is said.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterMessage {
    /// Stays on the line, silent: a `record` with a silence threshold ends by its silence rule
    /// (`silence_hits_exhausted=true`), one without it by its time limit.
    #[default]
    Silence,
    /// Hangs up (NORMAL_CLEARING) as soon as the message is said.
    HangUp,
}

/// A caller's voice message for the `record` application (see
/// [`DtmfScript::with_message`]): `length` of speech from the start of the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoiceMessage {
    length: Duration,
    then: AfterMessage,
}

impl VoiceMessage {
    /// At most [`MAX_MESSAGE`] of speech (zero: the caller says nothing, then does `then`).
    pub fn new(length: Duration, then: AfterMessage) -> Result<Self, EslError> {
        if length > MAX_MESSAGE {
            return Err(script_error(format!(
                "a voice message of {length:?}, at most {MAX_MESSAGE:?}"
            )));
        }
        Ok(VoiceMessage { length, then })
    }

    /// `length` capped at [`MAX_MESSAGE`] (a sampled length).
    pub(crate) fn capped(length: Duration, then: AfterMessage) -> Self {
        VoiceMessage {
            length: length.min(MAX_MESSAGE),
            then,
        }
    }

    pub fn length(&self) -> Duration {
        self.length
    }

    pub fn then(&self) -> AfterMessage {
        self.then
    }
}

/// What RFC 2833 / `uuid_send_dtmf` can carry.
pub fn is_dtmf_digit(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d')
}

/// A caller's DTMF: presses in order, each digit of a press `digit_gap` after the one before
/// (e.g. "press 2 after 3 s, then 1234# after 1 s"). See the module doc for the timing.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "Vec<DtmfPress>")]
pub struct DtmfScript {
    presses: Vec<DtmfPress>,
    digit_gap: Duration,
    /// What the caller says when a `record` application records it (none: silence).
    message: Option<VoiceMessage>,
}

impl TryFrom<Vec<DtmfPress>> for DtmfScript {
    type Error = EslError;
    fn try_from(presses: Vec<DtmfPress>) -> Result<Self, EslError> {
        DtmfScript::new(presses)
    }
}

impl DtmfScript {
    /// At most [`MAX_SCRIPT_PRESSES`] presses, digits [`DEFAULT_DIGIT_GAP`] apart.
    pub fn new(presses: Vec<DtmfPress>) -> Result<Self, EslError> {
        if presses.len() > MAX_SCRIPT_PRESSES {
            return Err(script_error(format!(
                "{} presses, at most {MAX_SCRIPT_PRESSES}",
                presses.len()
            )));
        }
        Ok(DtmfScript {
            presses,
            digit_gap: DEFAULT_DIGIT_GAP,
            message: None,
        })
    }

    /// The same presses, and a caller who leaves a voice message: once the first `record`
    /// application on its channel starts (RECORD_START, the caller hears the beep), it speaks
    /// (its tone, `sim_tone_hz`) for `length`, then does `then`. At most [`MAX_MESSAGE`].
    /// A caller without a message says nothing into a recording.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard_esl::sim::{AfterMessage, DtmfScript};
    /// let s = DtmfScript::new(vec![])?.with_message(Duration::from_secs(4), AfterMessage::HangUp)?;
    /// assert_eq!(s.message().map(|m| m.length()), Some(Duration::from_secs(4)));
    /// assert!(DtmfScript::new(vec![])?.with_message(Duration::from_secs(86_400), AfterMessage::Silence).is_err());
    /// # Ok::<(), switchyard_esl::EslError>(())
    /// ```
    pub fn with_message(mut self, length: Duration, then: AfterMessage) -> Result<Self, EslError> {
        self.message = Some(VoiceMessage::new(length, then)?);
        Ok(self)
    }

    /// The voice message, if the caller leaves one.
    pub fn message(&self) -> Option<&VoiceMessage> {
        self.message.as_ref()
    }

    /// A script with no presses carrying `message` (the arrival process's callers).
    pub(crate) fn only_message(message: VoiceMessage) -> Self {
        DtmfScript {
            presses: Vec::new(),
            digit_gap: DEFAULT_DIGIT_GAP,
            message: Some(message),
        }
    }

    /// The same script carrying `message` (already bounded).
    pub(crate) fn with_voice_message(mut self, message: VoiceMessage) -> Self {
        self.message = Some(message);
        self
    }

    /// The same presses with this gap between the digits of a press (capped at a minute).
    pub fn with_digit_gap(mut self, gap: Duration) -> Self {
        self.digit_gap = gap.min(Duration::from_secs(60));
        self
    }

    pub fn presses(&self) -> &[DtmfPress] {
        &self.presses
    }

    pub fn digit_gap(&self) -> Duration {
        self.digit_gap
    }

    /// Every digit with its offset from the answer.
    pub fn timeline(&self) -> Vec<(Duration, char)> {
        let mut out = Vec::new();
        let mut t = Duration::ZERO;
        for p in &self.presses {
            t += p.after;
            for (i, d) in p.digits.chars().enumerate() {
                if i > 0 {
                    t += self.digit_gap;
                }
                out.push((t, d));
            }
        }
        out
    }
}

impl AgentModel {
    /// The behaviour of `ext`, or `None` when it is not registered.
    pub fn lookup(&self, ext: &str) -> Option<&AgentBehaviour> {
        for o in self.overrides.iter().rev() {
            if matches_ext(&o.extensions, ext) {
                return Some(&o.behaviour);
            }
        }
        matches_ext(&self.extensions, ext).then_some(&self.behaviour)
    }
}

fn matches_ext(list: &[String], ext: &str) -> bool {
    list.iter().any(|spec| match spec.split_once('-') {
        Some((lo, hi)) => match (
            lo.trim().parse::<u64>(),
            hi.trim().parse::<u64>(),
            ext.parse::<u64>(),
        ) {
            (Ok(lo), Ok(hi), Ok(e)) => (lo..=hi).contains(&e),
            _ => false,
        },
        None => spec.trim() == ext || spec.trim() == "*",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_scenario() {
        let text = r#"
seed = 42
[agents]
extensions = ["1000-1099"]
answer_delay = { fixed = 1.0 }
[[agents.overrides]]
extensions = ["1005"]
answer = 0.0
no_answer = 1.0
[customers]
human = 0.7
busy = 0.3
answer_delay = { uniform = [2.0, 8.0] }
talk_time = { lognormal = { median = 120.0, sigma = 0.5 } }
numbers = { "+15550001" = "busy" }
[inbound]
calls_per_minute = 6.0
patience = { exp = 60.0 }
dtmf = ["1", "2"]
"#;
        let s = Scenario::from_toml(text).unwrap();
        assert_eq!(s.seed, 42);
        assert_eq!(s.agents.lookup("1005").unwrap().no_answer, 1.0);
        assert_eq!(s.agents.lookup("1006").unwrap().answer, 1.0);
        assert!(s.agents.lookup("2000").is_none());
        assert_eq!(s.customers.numbers["+15550001"], "busy");
        assert_eq!(s.inbound.unwrap().calls_per_minute, 6.0);
        assert!(Scenario::from_toml("nonsense = 1").is_err());
    }

    #[test]
    fn a_scenario_modules_list_is_split_off_and_must_be_a_list_of_names() {
        assert_eq!(ScenarioFile::from_toml("seed = 4").unwrap().modules, None);
        let lean = ScenarioFile::from_toml("modules = [\"mod_sofia\"]").unwrap();
        assert_eq!(lean.modules, Some(vec!["mod_sofia".to_owned()]));
        assert!(ScenarioFile::from_toml("modules = \"mod_sofia\"").is_err());
        assert!(Scenario::from_toml("modules = [\"mod_sofia\"]").is_err());
    }

    #[test]
    fn switch_section_parses_and_defaults_to_the_race_being_on() {
        let f = ScenarioFile::from_toml(
            r#"
seed = 3
[switch]
originate_handover = { uniform = [0.005, 0.010] }
bridge_delay = { fixed = 0.060 }
[switch.bridge_race]
bridged = 1.0
cancel_bridged = 0.0
"#,
        )
        .unwrap();
        assert_eq!(f.scenario.seed, 3);
        assert_eq!(f.switch.originate_handover, Dist::Uniform([0.005, 0.010]));
        assert_eq!(f.switch.bridge_delay, Dist::Fixed(0.060));
        assert_eq!(f.switch.bridge_race.cancel_bridged, 0.0);
        // Unset weights keep their defaults.
        assert_eq!(f.switch.bridge_race.stuck, 2.0);
        let plain = ScenarioFile::from_toml("seed = 4").unwrap();
        assert_eq!(plain.switch, SwitchModel::default());
        assert_eq!(SimConfig::default().switch, SwitchModel::default());
        assert_ne!(
            SwitchModel::default().bridge_race.pick(0.99),
            RaceOutcome::Bridged
        );
    }

    #[test]
    fn a_run_of_its_own_is_stamped_now_and_shares_no_uuid_with_another_run_of_its_seed() {
        use crate::sim::{SimRng, Switch};
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        let base = SimConfig {
            hostname: "demo".into(),
            ..SimConfig::default()
        };
        let (a, b) = (base.clone().for_this_run(), base.for_this_run());
        for c in [&a, &b] {
            assert!(c.epoch_start_us.abs_diff(now_us) < 5_000_000, "stamped now");
            assert_ne!(c.uuid_salt, 0);
            assert_eq!(c.hostname, "demo", "the rest is kept");
        }
        assert_ne!(a.uuid_salt, b.uuid_salt);
        // Tests keep the seed's own uuids; two runs of one seed have their own.
        let t0 = std::time::Instant::now();
        let fixed = Switch::new(SimConfig::default(), 7, t0);
        assert_eq!(fixed.core_uuid(), SimRng::new(7).uuid());
        assert_eq!(SimConfig::default().epoch_start_us, 1_795_275_700_000_000);
        let (run_a, run_b) = (Switch::new(a, 7, t0), Switch::new(b, 7, t0));
        assert_ne!(run_a.core_uuid(), run_b.core_uuid());
        assert_ne!(run_a.core_uuid(), fixed.core_uuid());
    }

    #[test]
    fn switch_section_rejects_unknown_keys_and_stays_out_of_scenario() {
        assert!(ScenarioFile::from_toml("[switch]\nhandover = 1").is_err());
        assert!(ScenarioFile::from_toml("[switch.bridge_race]\nlost = 1.0").is_err());
        assert!(ScenarioFile::from_toml("[switch]\nbridge_delay = { often = 1.0 }").is_err());
        assert!(ScenarioFile::from_toml("[agents]\nnonsense = 1").is_err());
        assert!(Scenario::from_toml("[switch]\nbridge_delay = { fixed = 0.0 }").is_err());
    }

    #[test]
    fn race_weights_pick_each_outcome_in_proportion() {
        let only = |o: RaceOutcome| {
            let one = |x: RaceOutcome| if x == o { 1.0 } else { 0.0 };
            BridgeRace {
                bridged: one(RaceOutcome::Bridged),
                cancel_bridged: one(RaceOutcome::CancelBridged),
                cancel_stuck: one(RaceOutcome::CancelStuck),
                parked: one(RaceOutcome::Parked),
                stuck: one(RaceOutcome::Stuck),
            }
        };
        for o in [
            RaceOutcome::Bridged,
            RaceOutcome::CancelBridged,
            RaceOutcome::CancelStuck,
            RaceOutcome::Parked,
            RaceOutcome::Stuck,
        ] {
            for x in [0.0, 0.5, 0.999_999] {
                assert_eq!(only(o).pick(x), o);
            }
        }
        let zero = BridgeRace {
            bridged: 0.0,
            cancel_bridged: f64::NAN,
            cancel_stuck: -1.0,
            parked: 0.0,
            stuck: 0.0,
        };
        assert_eq!(zero.pick(0.3), RaceOutcome::Bridged);
        let d = BridgeRace::default();
        assert_eq!(d.pick(0.0), RaceOutcome::Bridged);
        assert_eq!(d.pick(12.5 / 33.0), RaceOutcome::CancelBridged);
        assert_eq!(d.pick(28.5 / 33.0), RaceOutcome::CancelStuck);
        assert_eq!(d.pick(30.5 / 33.0), RaceOutcome::Parked);
        assert_eq!(d.pick(32.5 / 33.0), RaceOutcome::Stuck);
    }

    #[test]
    fn dtmf_scripts_parse_with_their_timeline_and_bad_ones_are_refused() {
        let text = r#"
[inbound]
dtmf_script = [{ after_s = 3.0, digits = "2" }, { after_s = 1.0, digits = "1234#" }]
dtmf_digit_gap = { fixed = 0.1 }
"#;
        let s = Scenario::from_toml(text).unwrap();
        let inbound = s.inbound.unwrap();
        let script = inbound.dtmf_script.unwrap();
        assert_eq!(script.presses().len(), 2);
        let ms = |n| Duration::from_millis(n);
        assert_eq!(
            script.with_digit_gap(ms(100)).timeline(),
            vec![
                (ms(3000), '2'),
                (ms(4000), '1'),
                (ms(4100), '2'),
                (ms(4200), '3'),
                (ms(4300), '4'),
                (ms(4400), '#'),
            ]
        );
        for bad in [
            r#"dtmf_script = [{ after_s = 1.0, digits = "12x" }]"#,
            r#"dtmf_script = [{ after_s = -1.0, digits = "1" }]"#,
            r#"dtmf_script = [{ after_s = 1.0, digits = "" }]"#,
            r#"dtmf_script = [{ after_s = 1.0, digits = "1", extra = 2 }]"#,
        ] {
            let text = format!("[inbound]\n{bad}\n");
            assert!(Scenario::from_toml(&text).is_err(), "{bad}");
        }
        let long = "1".repeat(MAX_PRESS_DIGITS + 1);
        assert!(DtmfPress::new(Duration::ZERO, &long).is_err());
        let one = DtmfPress::new(Duration::ZERO, "1").unwrap();
        assert!(DtmfScript::new(vec![one.clone(); MAX_SCRIPT_PRESSES]).is_ok());
        assert!(DtmfScript::new(vec![one; MAX_SCRIPT_PRESSES + 1]).is_err());
    }
}
