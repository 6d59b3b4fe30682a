//! `switchyard serve`, `migrate`, `tenant create|list|disable|enable`,
//! `apikey create|list|revoke` and `demo`.
//!
//! The admin commands work on the database itself, like `migrate`: they need no running server
//! and no key (whoever can reach the database is already past every key). A running server
//! learns of a revocation or a disabled tenant made here when it next verifies the key: at
//! once for keys it has not cached, within its key cache's lifetime (5 s) for the others. The
//! API routes (`DELETE /v1/api-keys/{id}`, `PATCH /v1/platform-admin/tenants/{id}`) drop the
//! answering server's cache entries and act at once there.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::json;
use switchyard_api::app;
use switchyard_api::http::HttpConfig;
use switchyard_api::ids::{IdCodec, IdKind};
use switchyard_api::model::Role;
use switchyard_api::runtime::{DEFAULT_NODE_NAME, Runtime, SwitchConfig, SwitchNode};
use switchyard_api::spec::{AgentSpec, QueueSpec};
use switchyard_api::store::{AuditEntry, Store, StoreError};
use switchyard_engine::EngineConfig;

/// Where the database is unless told otherwise: a SQLite file in the working directory.
const DEFAULT_DATABASE: &str = "sqlite://switchyard.db?mode=rwc";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML file with any of the settings below (flags and environment win over it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// HTTP API address [default: 127.0.0.1:8080].
    #[arg(long, env = "SWITCHYARD_LISTEN")]
    listen: Option<SocketAddr>,
    /// sqlite://path?mode=rwc or postgres://user@host/db [default: sqlite://switchyard.db].
    #[arg(long, env = "SWITCHYARD_DATABASE_URL")]
    database_url: Option<String>,
    /// FreeSWITCH's Event Socket [default: 127.0.0.1:8021].
    #[arg(long, env = "SWITCHYARD_ESL")]
    esl: Option<String>,
    /// A file holding the Event Socket password (also of `--switch` nodes); without it
    /// SWITCHYARD_ESL_PASSWORD, the config file's `esl_password`, else ClueCon. Never a flag:
    /// `ps` would show it.
    #[arg(long)]
    esl_password_file: Option<PathBuf>,
    /// A FreeSWITCH node, `NAME=HOST:PORT` (repeat, or comma-separate in the environment,
    /// for several). With `--esl` too, that one is the first node (named fs1) and these are
    /// added; per-node passwords go in the config file's `[[switch]]` tables.
    #[arg(long = "switch", env = "SWITCHYARD_SWITCHES", value_delimiter = ',')]
    switches: Vec<String>,
    /// Where the dialplan's `socket` application connects [default: 127.0.0.1:8084].
    #[arg(long, env = "SWITCHYARD_OUTBOUND_LISTEN")]
    outbound_listen: Option<String>,
    /// Browser origins allowed to call the API (repeat; `*` for any).
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// Requests per second per API key (0: no limit) [default: 50, burst 100].
    #[arg(long)]
    rate_per_sec: Option<u32>,
    /// Requests per second per key to the live feed and the queue figures wallboards poll,
    /// a budget of their own (0: no limit) [default: 100, burst 1000].
    #[arg(long)]
    live_rate_per_sec: Option<u32>,
    /// Mark the wallboard's and agent page's session cookie `Secure`: set it when browsers
    /// reach this server over https (a TLS-terminating proxy in front).
    #[arg(long, env = "SWITCHYARD_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Where records, audit entries and presence wait while the database is unavailable
    /// [default: beside the SQLite file (`<file>.journal/`), `switchyard-journal/` in the
    /// working directory for PostgreSQL].
    #[arg(long, env = "SWITCHYARD_JOURNAL_DIR")]
    journal_dir: Option<PathBuf>,
    /// The journal's bound in bytes; past it new records are dropped and counted
    /// [default: 268435456, 256 MiB].
    #[arg(long, env = "SWITCHYARD_JOURNAL_MAX_BYTES")]
    journal_max_bytes: Option<u64>,
}

/// The `--config` file: the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    database_url: Option<String>,
    esl: Option<String>,
    esl_password: Option<String>,
    outbound_listen: Option<String>,
    #[serde(default)]
    cors_origins: Vec<String>,
    rate_per_sec: Option<u32>,
    live_rate_per_sec: Option<u32>,
    secure_cookies: Option<bool>,
    journal_dir: Option<PathBuf>,
    journal_max_bytes: Option<u64>,
    /// `[[switch]]` tables: several FreeSWITCH nodes.
    #[serde(default)]
    switch: Vec<FileSwitch>,
    /// `[recording]`: how calls are recorded (README, "Recording").
    #[serde(default)]
    recording: FileRecording,
    /// `[freeswitch]`: what `switchyard freeswitch config` prints for the dialplan (numbers,
    /// context, hold loop, fallback); `serve` does not use it.
    #[serde(default)]
    freeswitch: super::freeswitch::FileFreeSwitch,
    /// `[webhooks]`: what webhook endpoints may be.
    #[serde(default)]
    webhooks: FileWebhooks,
    /// `[history]`: how long raw history is kept.
    #[serde(default)]
    history: FileHistory,
}

/// The `[history]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHistory {
    /// Days of raw history kept (calls, CDRs, decision traces, journeys, agent states,
    /// webhook attempts); older rows are deleted once a day. 0 keeps everything [default: 0].
    /// The 15-minute interval figures that analytics read are kept whatever this says.
    #[serde(default)]
    keep_days: u32,
}

/// The `[webhooks]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWebhooks {
    /// Endpoints on private, loopback or link-local addresses (a receiver inside the
    /// operator's network; note that link-local includes cloud metadata services) are
    /// allowed [default: false].
    #[serde(default)]
    allow_private_targets: bool,
}

/// The `--config` file, or every default without one.
fn read_file_config(path: Option<&std::path::Path>) -> anyhow::Result<FileConfig> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("--config: reading {}", p.display()))?;
            Ok(toml::from_str(&text).with_context(|| format!("--config: {}", p.display()))?)
        }
        None => Ok(FileConfig::default()),
    }
}

/// What `switchyard freeswitch config` prints from: the nodes, passwords, outbound address
/// and recorder endpoint resolved exactly as `serve` resolves them (flags, environment, the
/// file, defaults), so that the printed configuration matches the running server.
pub(super) fn freeswitch_setup(
    a: &super::freeswitch::ConfigArgs,
) -> anyhow::Result<super::freeswitch::Setup> {
    let file = read_file_config(a.config())?;
    let password = super::read_secret(
        "SWITCHYARD_ESL_PASSWORD",
        a.esl_password_file(),
        "--esl-password-file",
    )?
    .or(file.esl_password.clone())
    .unwrap_or_else(|| "ClueCon".to_owned());
    let nodes = switch_nodes(
        a.esl().or(file.esl.clone()),
        &password,
        a.switches(),
        file.switch,
    )?;
    let rec = &file.recording;
    anyhow::ensure!(
        rec.sip.is_some() || !rec.oreka,
        "[recording] oreka needs sip: mod_oreka sends to the recorder endpoint"
    );
    let recorder = rec.sip.map(|sip| super::freeswitch::Recorder {
        sip,
        dial: rec
            .dial
            .clone()
            .unwrap_or_else(|| "sofia/internal/{user}@{addr}".to_owned()),
        oreka: rec.oreka,
    });
    Ok(super::freeswitch::Setup {
        outbound_listen: a
            .outbound_listen()
            .or(file.outbound_listen)
            .unwrap_or_else(|| "127.0.0.1:8084".to_owned()),
        nodes,
        recorder,
        freeswitch: file.freeswitch,
    })
}

/// The `[recording]` table. Without `sip` no recorder endpoint runs and every recording is
/// made by FreeSWITCH itself (`uuid_record`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRecording {
    /// The recorder endpoint's SIP address, e.g. "10.0.0.5:5090".
    sip: Option<SocketAddr>,
    /// Its RTP socket [default: the SIP address's host, a free port].
    rtp: Option<SocketAddr>,
    /// The recorder legs' dial string [default: "sofia/internal/{user}@{addr}"].
    dial: Option<String>,
    /// Where live recordings are written [default: "recordings/live"].
    dir: Option<PathBuf>,
    /// Live recordings at once [default: 5000].
    max_live: Option<usize>,
    /// mod_oreka is loaded on the nodes and its `oreka.conf` names `sip`: policies with
    /// capture `oreka` fork with `oreka_record` [default: false].
    #[serde(default)]
    oreka: bool,
    /// What `uuid_record` is given, `{file}` for the file name.
    switch_path: Option<String>,
    /// Where those files appear here (a shared directory, or the upload route's).
    switch_files: Option<PathBuf>,
    /// How long after RECORD_STOP a switch file may take to appear [default: 30].
    switch_file_wait_s: Option<f64>,
    /// A file holding the secret FreeSWITCH uploads recordings with (enables
    /// `PUT /v1/recordings/upload/{file}`).
    upload_token_file: Option<PathBuf>,
    /// `[recording.storage]`: where finished recordings are kept: `kind = "local"` with
    /// `dir`, or `kind = "s3"` with `bucket`, `region`, `endpoint`... [default: local,
    /// "recordings/store"].
    storage: Option<switchyard_media::storage::StorageConfig>,
    /// `[recording.voicemail]`: how messages are taken.
    #[serde(default)]
    voicemail: FileVoicemail,
}

/// The `[recording.voicemail]` table (every key optional; defaults in brackets).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVoicemail {
    /// Played first [default: "voicemail/vm-record_message.wav"].
    greeting: Option<String>,
    /// The tone after it [default: "tone_stream://%(1000,0,640)"].
    beep: Option<String>,
    /// The longest message, whole seconds, 1-3600 [default: 180].
    max_message_s: Option<u64>,
    /// `record`'s silence threshold (energy), 0-100000 [default: 200].
    silence_threshold: Option<u32>,
    /// Seconds of silence that end a message, 1-60 [default: 3].
    silence_hits_s: Option<u32>,
    /// A shorter message counts as none, 0-60 s [default: 0.5].
    min_message_s: Option<f64>,
}

impl FileVoicemail {
    fn to_setup(&self) -> anyhow::Result<switchyard_engine::driver::VoicemailSetup> {
        let mut v = switchyard_engine::driver::VoicemailSetup::default();
        // Both go into a `sendmsg` header: one line of printable characters, no spaces
        // (`playback` takes the whole argument as the file).
        let sound = |key: &str, s: &str| -> anyhow::Result<String> {
            anyhow::ensure!(
                !s.is_empty() && s.len() <= 512 && s.chars().all(|c| c.is_ascii_graphic()),
                "[recording.voicemail] {key}: a file or tone_stream:// of 1-512 printable characters, no spaces"
            );
            Ok(s.to_owned())
        };
        if let Some(g) = &self.greeting {
            v.greeting = sound("greeting", g)?;
        }
        if let Some(b) = &self.beep {
            v.beep = sound("beep", b)?;
        }
        if let Some(m) = self.max_message_s {
            anyhow::ensure!(
                (1..=3600).contains(&m),
                "[recording.voicemail] max_message_s must be 1-3600"
            );
            v.max_message = std::time::Duration::from_secs(m);
        }
        if let Some(t) = self.silence_threshold {
            anyhow::ensure!(
                t <= 100_000,
                "[recording.voicemail] silence_threshold must be 0-100000"
            );
            v.silence_threshold = t;
        }
        if let Some(h) = self.silence_hits_s {
            anyhow::ensure!(
                (1..=60).contains(&h),
                "[recording.voicemail] silence_hits_s must be 1-60"
            );
            v.silence_hits = h;
        }
        if let Some(m) = self.min_message_s {
            anyhow::ensure!(
                m.is_finite() && (0.0..=60.0).contains(&m),
                "[recording.voicemail] min_message_s must be 0-60"
            );
            v.min_message = std::time::Duration::from_secs_f64(m);
        }
        Ok(v)
    }
}

impl FileRecording {
    fn to_runtime(&self) -> anyhow::Result<switchyard_api::runtime::Recording> {
        use switchyard_engine::driver::{EndpointSetup, RecordingSetup};
        let mut capture = RecordingSetup::default();
        if let Some(sip) = self.sip {
            let rtp = self.rtp.unwrap_or_else(|| SocketAddr::new(sip.ip(), 0));
            capture.endpoint = Some(EndpointSetup {
                sip_bind: sip,
                rtp_bind: rtp,
                max_recordings: self.max_live.unwrap_or(5000).max(1),
            });
            capture.recorder_dial = Some(
                self.dial
                    .clone()
                    .unwrap_or_else(|| "sofia/internal/{user}@{addr}".to_owned()),
            );
            capture.oreka = self.oreka;
        } else {
            anyhow::ensure!(
                !self.oreka,
                "[recording] oreka needs sip: mod_oreka sends to the recorder endpoint"
            );
        }
        if let Some(d) = &self.dir {
            capture.live_dir = d.clone();
        }
        if let Some(p) = &self.switch_path {
            anyhow::ensure!(
                p.contains("{file}"),
                "[recording] switch_path must contain {{file}}"
            );
            capture.switch_path = p.clone();
        }
        if let Some(f) = &self.switch_files {
            capture.switch_files = f.clone();
        }
        if let Some(w) = self.switch_file_wait_s {
            anyhow::ensure!(
                w.is_finite() && (0.0..=3600.0).contains(&w),
                "[recording] switch_file_wait_s must be 0-3600"
            );
            capture.switch_file_wait = std::time::Duration::from_secs_f64(w);
        }
        let upload_token = match &self.upload_token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("[recording] upload_token_file: reading {}", path.display())
                })?;
                let token = text.trim().to_owned();
                anyhow::ensure!(
                    token.len() >= 16,
                    "[recording] upload_token_file: the secret must be at least 16 characters"
                );
                Some(token)
            }
            None => None,
        };
        let mut objects = switchyard_api::recording_objects::ObjectsConfig::default();
        if let Some(storage) = &self.storage {
            objects.storage = storage.clone();
        }
        Ok(switchyard_api::runtime::Recording {
            capture,
            upload_token,
            objects,
            voicemail: self.voicemail.to_setup()?,
        })
    }
}

/// One `[[switch]]` table: `name = "fs2"`, `esl = "10.0.0.2:8021"`, `password = "..."`
/// (default: `esl_password`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSwitch {
    name: String,
    esl: String,
    password: Option<String>,
}

struct Settings {
    listen: SocketAddr,
    database_url: String,
    switch: SwitchConfig,
    /// Every node, the first one first (`switch` describes the first only).
    nodes: Vec<SwitchNode>,
    http: HttpConfig,
    journal: Option<JournalSettings>,
    recording: switchyard_api::runtime::Recording,
    /// `[webhooks] allow_private_targets`.
    webhooks_private: bool,
    /// `[history] keep_days` (`None`: keep everything).
    keep_history: Option<Duration>,
}

/// Where the journal lives and how large it may grow.
struct JournalSettings {
    dir: PathBuf,
    max_bytes: u64,
}

/// The journal's directory for `url` when none is configured: beside a SQLite file, in the
/// working directory for PostgreSQL, none for an in-memory database (nothing to outlive).
fn default_journal_dir(url: &str) -> Option<PathBuf> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        if url.contains(":memory:") || url.contains("mode=memory") {
            return None;
        }
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() {
            return None;
        }
        return Some(PathBuf::from(format!("{path}.journal")));
    }
    Some(PathBuf::from("switchyard-journal"))
}

/// The nodes: `--esl` (or the file's `esl`) first if given, then `--switch` entries (they
/// replace the file's `[[switch]]` tables when any is given); with none of them, one node at
/// 127.0.0.1:8021. Names must be unique.
fn switch_nodes(
    esl: Option<String>,
    password: &str,
    flags: Vec<String>,
    file: Vec<FileSwitch>,
) -> anyhow::Result<Vec<SwitchNode>> {
    let mut nodes = Vec::new();
    let listed = !flags.is_empty() || !file.is_empty();
    if let Some(addr) = esl.or_else(|| (!listed).then(|| "127.0.0.1:8021".to_owned())) {
        nodes.push(SwitchNode {
            name: DEFAULT_NODE_NAME.to_owned(),
            esl: addr,
            password: password.to_owned(),
        });
    }
    if flags.is_empty() {
        for s in file {
            nodes.push(SwitchNode {
                name: s.name,
                esl: s.esl,
                password: s.password.unwrap_or_else(|| password.to_owned()),
            });
        }
    } else {
        for f in flags {
            let Some((name, addr)) = f.split_once('=') else {
                bail!("--switch: NAME=HOST:PORT, not {f:?}");
            };
            let (name, addr) = (name.trim(), addr.trim());
            if name.is_empty() || addr.is_empty() {
                bail!("--switch: NAME=HOST:PORT, not {f:?}");
            }
            nodes.push(SwitchNode {
                name: name.to_owned(),
                esl: addr.to_owned(),
                password: password.to_owned(),
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    for n in &nodes {
        if !seen.insert(n.name.as_str()) {
            bail!("FreeSWITCH node {:?} is listed twice", n.name);
        }
    }
    Ok(nodes)
}

fn settings(a: ServeArgs) -> anyhow::Result<Settings> {
    let file = read_file_config(a.config.as_deref())?;
    let mut http = HttpConfig::default();
    let origins = if a.cors_origins.is_empty() {
        file.cors_origins
    } else {
        a.cors_origins
    };
    http.cors_origins = origins;
    if let Some(r) = a.rate_per_sec.or(file.rate_per_sec) {
        http.rate_per_sec = r;
    }
    if let Some(r) = a.live_rate_per_sec.or(file.live_rate_per_sec) {
        http.live_rate_per_sec = r;
    }
    http.secure_cookies = a.secure_cookies || file.secure_cookies.unwrap_or(false);
    let password = super::read_secret(
        "SWITCHYARD_ESL_PASSWORD",
        a.esl_password_file.as_deref(),
        "--esl-password-file",
    )?
    .or(file.esl_password.clone())
    .unwrap_or_else(|| "ClueCon".to_owned());
    let nodes = switch_nodes(
        a.esl.clone().or(file.esl.clone()),
        &password,
        a.switches,
        file.switch,
    )?;
    let database_url = a
        .database_url
        .or(file.database_url)
        .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
    let journal = a
        .journal_dir
        .or(file.journal_dir)
        .or_else(|| default_journal_dir(&database_url))
        .map(|dir| JournalSettings {
            dir,
            max_bytes: a
                .journal_max_bytes
                .or(file.journal_max_bytes)
                .unwrap_or(switchyard_api::journal::DEFAULT_BOUND_BYTES),
        });
    let recording = file.recording.to_runtime()?;
    Ok(Settings {
        recording,
        webhooks_private: file.webhooks.allow_private_targets,
        keep_history: match file.history.keep_days {
            0 => None,
            d if d > 36_500 => bail!("[history] keep_days: at most 36500 (100 years), or 0"),
            d => Some(Duration::from_secs(u64::from(d) * 24 * 3600)),
        },
        listen: a
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        database_url,
        switch: SwitchConfig {
            // Always present: `switch_nodes` gives at least one node.
            esl: nodes.first().map(|n| n.esl.clone()).unwrap_or_default(),
            password: nodes
                .first()
                .map(|n| n.password.clone())
                .unwrap_or_default(),
            outbound_listen: a
                .outbound_listen
                .or(file.outbound_listen)
                .unwrap_or_else(|| "127.0.0.1:8084".to_owned()),
        },
        nodes,
        http,
        journal,
    })
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let s = settings(args)?;
    let store = open_store(&s.database_url).await?;
    let store = with_journal(store, s.journal).await?;
    run_server(
        store,
        s.switch,
        s.nodes,
        s.recording,
        s.http,
        s.listen,
        RunOptions {
            banner: None,
            webhooks_private: s.webhooks_private,
            keep_history: s.keep_history,
        },
    )
    .await
}

async fn open_store(url: &str) -> anyhow::Result<Store> {
    let store = Store::connect(url)
        .await
        .with_context(|| format!("opening the database {}", redact(url)))?;
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// How long start-up waits for a journal left by an earlier outage to be replayed before the
/// engine loads its state (presence, campaign ledgers) from the database.
const JOURNAL_REPLAY_AT_START: std::time::Duration = std::time::Duration::from_secs(60);

/// The store with its journal, and whatever the journal holds from before written first: the
/// engine loads agent presence and campaign ledgers from the database, so they must include
/// what was journaled. (Anything new goes behind the journal anyway.)
async fn with_journal(store: Store, journal: Option<JournalSettings>) -> anyhow::Result<Store> {
    let Some(j) = journal else {
        return Ok(store);
    };
    let store = store
        .with_journal(&j.dir, j.max_bytes)
        .with_context(|| format!("opening the journal in {}", j.dir.display()))?;
    if let Some(st) = store.spool_status()
        && st.pending_entries > 0
    {
        tracing::info!(
            entries = st.pending_entries,
            bytes = st.pending_bytes,
            dir = %j.dir.display(),
            "replaying journaled writes"
        );
        if !store.journal_drained(JOURNAL_REPLAY_AT_START).await {
            tracing::warn!(
                "the journal is not replayed yet; starting anyway (new writes queue behind it)"
            );
        }
    }
    Ok(store)
}

/// Database URLs may carry passwords: never print them.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// What `serve` and `demo` run differently.
struct RunOptions {
    /// Printed once the API listens.
    banner: Option<String>,
    /// Webhook endpoints may be private, loopback or link-local addresses.
    webhooks_private: bool,
    /// Raw history older than this is deleted daily.
    keep_history: Option<Duration>,
}

/// Runs the engine and the API until Ctrl-C.
async fn run_server(
    store: Store,
    switch: SwitchConfig,
    nodes: Vec<SwitchNode>,
    recording: switchyard_api::runtime::Recording,
    http: HttpConfig,
    listen: SocketAddr,
    opts: RunOptions,
) -> anyhow::Result<()> {
    let RunOptions {
        banner,
        webhooks_private,
        keep_history,
    } = opts;
    let rt = Runtime::start_recording(
        store,
        nodes.clone(),
        &switch.outbound_listen,
        recording,
        EngineConfig::default(),
        seed(),
    )
    .await
    .context("starting the engine")?;
    rt.allow_private_webhooks(webhooks_private);
    let _retention = keep_history.map(|keep| AbortOnDrop(rt.spawn_history_retention(keep)));
    let rt = Arc::new(rt);
    let http_rates = (http.rate_per_sec, http.live_rate_per_sec);
    let (router, _kit) = app::build(rt.clone(), http);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let addr = listener.local_addr()?;
    let esl: Vec<String> = nodes
        .iter()
        .map(|n| format!("{} {}", n.name, n.esl))
        .collect();
    // The line scripts wait for; with JSON logs the event below says the same in JSON.
    if !super::JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!(
            "switchyard: API on http://{addr}, FreeSWITCH Event Socket {}, dialplan socket target {}",
            esl.join(", "),
            rt.outbound_addr()
        );
    }
    tracing::info!(
        url = %format!("http://{addr}"),
        nodes = %esl.join(", "),
        rate_per_sec = http_rates.0,
        live_rate_per_sec = http_rates.1,
        "serving the API"
    );
    if let Some(b) = banner {
        // One write of whole lines, and no panic when stdout is gone: `println!` wrote the
        // banner's last line apart from the others, and a script that read the lines it
        // wanted and closed the pipe made that second write fail and the demo die (EPIPE).
        use std::io::Write;
        let text = format!("{}\n", b.replace("{addr}", &addr.to_string()));
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "the banner could not be written to stdout");
        }
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown({
        // Live streams never end by themselves: closing the hub ends them, or a connected
        // wallboard would hold the graceful stop (and the runtime's shutdown) forever.
        let hub = rt.hub.clone();
        async move {
            let _ = tokio::signal::ctrl_c().await;
            hub.close();
        }
    })
    .await
    .context("serving the API")?;
    // The runtime's own stop (the driver's: records flushed, the open interval filed for the
    // wallboard) needs the last handle. Connections that just ended may still be dropping
    // their clones when `serve` returns: wait for them a little rather than skip the stop
    // (it was skipped, silently, when a closed live stream let go a moment late).
    let mut rt = rt;
    let deadline = tokio::time::Instant::now() + SHUTDOWN_HANDLES_WAIT;
    loop {
        match Arc::try_unwrap(rt) {
            Ok(rt) => {
                rt.shutdown().await;
                break;
            }
            Err(shared) if tokio::time::Instant::now() < deadline => {
                rt = shared;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(shared) => {
                tracing::warn!(
                    handles = Arc::strong_count(&shared),
                    "the runtime is still in use {SHUTDOWN_HANDLES_WAIT:?} after the API stopped: exiting without the runtime's stop"
                );
                break;
            }
        }
    }
    Ok(())
}

/// How long a stopping server waits for the API's last handles on the runtime.
const SHUTDOWN_HANDLES_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// sqlite://path?mode=rwc or postgres://user@host/db [default: sqlite://switchyard.db].
    #[arg(long, env = "SWITCHYARD_DATABASE_URL")]
    database_url: Option<String>,
}

impl DbArgs {
    fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned())
    }
}

pub async fn migrate(args: DbArgs) -> anyhow::Result<()> {
    let store = open_store(&args.url()).await?;
    eprintln!("switchyard: migrations applied to {}", redact(&args.url()));
    // Rows their tenant's grants do not allow: reported here, and not loaded by `serve` (so
    // never dialled) until fixed or the grants widened.
    let ids = IdCodec::new(&store.id_secret().await?);
    for t in store.list_tenants().await? {
        for o in switchyard_api::grants::outside(&store, &ids, t.id, &t.grants).await? {
            println!(
                "{}",
                serde_json::to_string(&json!({
                    "tenant": t.name, "kind": o.kind, "id": o.id, "name": o.name,
                    "field": o.field, "message": o.message, "disabled": true,
                }))?
            );
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Creates a tenant.
    Create {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Replaces what a tenant may reach on the switch, and lists its stored agents, queues and
    /// campaigns that fall outside (they are not loaded at start until fixed).
    Grants {
        name: String,
        /// The grants as JSON: `{"agent_endpoints": ["user/{ext}@acme.example.com"],
        /// "gateways": ["acme-carrier"], "caller_ids": ["+1555123*"], "destinations":
        /// ["voicemail-*"]}` (README "Tenants and what they may dial").
        grants: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Lists the tenants, one JSON object a line.
    List {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Disables a tenant: its keys are refused (403 tenant_disabled) and nothing of it can be
    /// changed through the API. Its calls in progress, queued callers and inbound routing go
    /// on, and its running campaigns keep dialling: pause them first to stop that.
    Disable {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Enables a disabled tenant again: its keys work again as they were.
    Enable {
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn cli_audit<'a>(action: &'a str, kind: &'a str, detail: serde_json::Value) -> AuditEntry<'a> {
    AuditEntry {
        tenant: None,
        key_id: None,
        action,
        object_kind: kind,
        object_id: String::new(),
        detail,
    }
}

/// The tenant named `name`, or an error naming the argument.
async fn tenant_named(
    store: &Store,
    name: &str,
    arg: &str,
) -> anyhow::Result<switchyard_api::store::Tenant> {
    store
        .tenant_by_name(name)
        .await?
        .with_context(|| format!("{arg}: no tenant named {name}"))
}

/// `tenant disable` and `tenant enable`.
async fn set_disabled(name: &str, db: &DbArgs, disabled: bool) -> anyhow::Result<()> {
    let store = open_store(&db.url()).await?;
    let t = tenant_named(&store, name, "NAME").await?;
    let action = if disabled {
        "tenant.disable"
    } else {
        "tenant.enable"
    };
    let mut audit = cli_audit(
        action,
        "tenant",
        json!({ "disabled": disabled, "via": "cli" }),
    );
    audit.object_id = t.id.0.to_string();
    if !store.set_tenant_disabled(t.id, disabled, &audit).await? {
        bail!("NAME: no tenant named {name}");
    }
    println!(
        "{}",
        serde_json::to_string(&json!({ "id": t.id, "name": t.name, "disabled": disabled }))?
    );
    Ok(())
}

pub async fn tenant(cmd: TenantCommand) -> anyhow::Result<()> {
    match cmd {
        TenantCommand::List { db } => {
            let store = open_store(&db.url()).await?;
            for t in store.list_tenants().await? {
                println!(
                    "{}",
                    serde_json::to_string(&json!({
                        "id": t.id,
                        "name": t.name,
                        "disabled": t.disabled,
                        "created_at_ms": t.created_at_ms,
                    }))?
                );
            }
            Ok(())
        }
        TenantCommand::Disable { name, db } => set_disabled(&name, &db, true).await,
        TenantCommand::Enable { name, db } => set_disabled(&name, &db, false).await,
        TenantCommand::Create { name, db } => {
            let store = open_store(&db.url()).await?;
            if name.contains('/') {
                bail!("NAME: must not contain '/'");
            }
            let t = store
                .create_tenant(
                    &name,
                    &cli_audit(
                        "tenant.create",
                        "tenant",
                        json!({ "name": name, "via": "cli" }),
                    ),
                )
                .await
                .with_context(|| format!("creating tenant {name}"))?;
            println!(
                "{}",
                serde_json::to_string(&json!({ "id": t.id, "name": t.name }))?
            );
            Ok(())
        }
        TenantCommand::Grants { name, grants, db } => {
            let grants: switchyard_api::grants::DialGrants =
                serde_json::from_str(&grants).context("GRANTS: not the grants' JSON")?;
            if let Err(e) = grants.check() {
                bail!("GRANTS: {}: {}", e.field, e.message);
            }
            let store = open_store(&db.url()).await?;
            let t = store
                .tenant_by_name(&name)
                .await?
                .with_context(|| format!("no tenant {name}"))?;
            let mut audit = cli_audit(
                "tenant.grants",
                "tenant",
                json!({ "name": name, "via": "cli", "grants": &grants }),
            );
            // A running server follows the audit log and applies the grants by this id.
            audit.object_id = t.id.0.to_string();
            store.set_tenant_grants(t.id, &grants, &audit).await?;
            let ids = IdCodec::new(&store.id_secret().await?);
            let outside = switchyard_api::grants::outside(&store, &ids, t.id, &grants).await?;
            println!(
                "{}",
                serde_json::to_string(&json!({ "grants": grants, "outside": outside }))?
            );
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Creates an API key and prints it (it is shown once).
    Create {
        /// The tenant's name (not for platform-admin keys).
        #[arg(long)]
        tenant: Option<String>,
        /// admin, supervisor, agent, read-only or platform-admin.
        #[arg(long)]
        role: String,
        /// The agent (its id, as in /v1/agents/{id}) an agent key acts for: required with
        /// `--role agent`, refused with any other role.
        #[arg(long)]
        agent: Option<i64>,
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Lists the keys of a tenant (without --tenant: the platform-admin keys), one JSON object
    /// a line, revoked and expired ones included. Never the keys themselves.
    List {
        /// The tenant's name.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Revokes a key by its id (as `apikey list` shows it): it is refused from then on.
    Revoke {
        /// The key's id.
        id: uuid::Uuid,
        /// The tenant the key belongs to (without it: a platform-admin key).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

pub async fn apikey(cmd: ApiKeyCommand) -> anyhow::Result<()> {
    match cmd {
        ApiKeyCommand::List { tenant, db } => {
            let store = open_store(&db.url()).await?;
            let tenant_id = match &tenant {
                Some(t) => Some(tenant_named(&store, t, "--tenant").await?.id),
                None => None,
            };
            let ids = IdCodec::new(&store.id_secret().await?);
            for k in store.list_api_keys(tenant_id).await? {
                println!(
                    "{}",
                    serde_json::to_string(&json!({
                        "id": k.id,
                        "name": k.name,
                        "role": k.role,
                        "agent_id": k.agent_id.map(|a| ids.agent(a)),
                        "prefix": k.prefix,
                        "created_at_ms": k.created_at_ms,
                        "expires_at_ms": k.expires_at_ms,
                        "revoked_at_ms": k.revoked_at_ms,
                        "last_used_at_ms": k.last_used_at_ms,
                    }))?
                );
            }
            Ok(())
        }
        ApiKeyCommand::Revoke { id, tenant, db } => {
            let store = open_store(&db.url()).await?;
            let tenant_id = match &tenant {
                Some(t) => Some(tenant_named(&store, t, "--tenant").await?.id),
                None => None,
            };
            let mut audit = cli_audit("api_key.revoke", "api_key", json!({ "via": "cli" }));
            audit.tenant = tenant_id;
            audit.object_id = id.to_string();
            if !store.revoke_api_key(tenant_id, id, &audit).await? {
                match tenant {
                    Some(t) => bail!("ID: tenant {t} has no API key {id}"),
                    None => {
                        bail!("ID: no platform-admin key {id} (a tenant's key needs --tenant NAME)")
                    }
                }
            }
            println!(
                "{}",
                serde_json::to_string(&json!({ "id": id, "revoked": true }))?
            );
            Ok(())
        }
        ApiKeyCommand::Create {
            tenant,
            role,
            agent,
            name,
            db,
        } => {
            let Some(role) = Role::parse(&role) else {
                bail!("--role: one of admin, supervisor, agent, read-only, platform-admin");
            };
            let store = open_store(&db.url()).await?;
            let tenant_id = match (&tenant, role) {
                (Some(_), Role::PlatformAdmin) => {
                    bail!("--tenant: platform-admin keys belong to no tenant")
                }
                (None, Role::PlatformAdmin) => None,
                (None, _) => bail!("--tenant: required for this role"),
                (Some(t), _) => Some(
                    store
                        .tenant_by_name(t)
                        .await?
                        .with_context(|| format!("--tenant: no tenant named {t}"))?
                        .id,
                ),
            };
            // `--agent` is the id the API shows (`/v1/agents`); a number never shown is no
            // agent of the tenant's, which the store refuses as such.
            let ids = IdCodec::new(&store.id_secret().await?);
            let stored_agent = agent.map(|a| ids.decode(IdKind::Agent, a).unwrap_or(-1));
            let created = store
                .create_api_key(
                    tenant_id,
                    role,
                    stored_agent,
                    &name,
                    None,
                    &cli_audit(
                        "api_key.create",
                        "api_key",
                        json!({ "role": role, "agent_id": agent, "via": "cli" }),
                    ),
                )
                .await;
            let (_, key) = match created {
                Err(StoreError::Invalid {
                    field: "agent_id",
                    message,
                }) => bail!("--agent: {message}"),
                other => other.context("creating the key")?,
            };
            println!("API key: {key}");
            Ok(())
        }
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// HTTP API address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The demo's SQLite file (created, or reused with its tenant, on later runs).
    #[arg(long, default_value = "switchyard-demo.db")]
    database: PathBuf,
    /// Inbound callers per minute from the built-in fake switch.
    #[arg(long, default_value_t = 6.0)]
    calls_per_minute: f64,
}

/// The fake switch's behaviour in the demo: 20 agent phones for the inbound queues and 6 for
/// the outbound campaign (desk phones: 1-3 s to answer), customers behind the `demo`
/// gateway, steady inbound callers to 5000.
fn demo_scenario(calls_per_minute: f64) -> String {
    format!(
        r#"
seed = 7
[agents]
extensions = ["1000-1025"]
answer_delay = {{ uniform = [1.0, 3.0] }}
answer = 0.95
no_answer = 0.05
[customers]
human = 0.55
machine = 0.0
busy = 0.1
no_answer = 0.3
failed = 0.05
answer_delay = {{ uniform = [4.0, 15.0] }}
no_answer_after = {{ fixed = 30.0 }}
talk_time = {{ exp = 45.0 }}
[inbound]
calls_per_minute = {calls_per_minute}
destination = "5000"
patience = {{ exp = 120.0 }}
talk_time = {{ exp = 90.0 }}
dtmf = []
"#
    )
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    if !(args.calls_per_minute.is_finite() && (0.0..=600.0).contains(&args.calls_per_minute)) {
        bail!("--calls-per-minute: between 0 and 600");
    }
    let url = format!("sqlite://{}?mode=rwc", args.database.display());
    let store = open_store(&url).await?;
    let store = with_journal(
        store,
        default_journal_dir(&url).map(|dir| JournalSettings {
            dir,
            max_bytes: switchyard_api::journal::DEFAULT_BOUND_BYTES,
        }),
    )
    .await?;
    // The switch first: its Event Socket on a free port, inbound callers sent to ours.
    let outbound = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let esl_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let esl_addr = esl_listener.local_addr()?;
    let scenario: switchyard_esl::sim::Scenario =
        toml::from_str(&demo_scenario(args.calls_per_minute)).context("the demo scenario")?;
    // The scenario's seed replays the same traffic every run; the demo's database outlives a
    // run, so the switch stamps events with the real clock and salts its uuids per run (records
    // are keyed by call uuids: a second run must not reuse the first one's).
    let seed = scenario.seed;
    let sim_cfg = switchyard_esl::sim::SimConfig {
        inbound_target: Some(outbound.to_string()),
        scenario,
        ..switchyard_esl::sim::SimConfig::default()
    }
    .for_this_run();
    let switch = switchyard_esl::sim::spawn(esl_listener, sim_cfg, seed);
    let key = seed_demo(&store).await?;
    let banner = format!(
        "switchyard demo: http://{{addr}} (try: curl -H 'Authorization: Bearer {key}' http://{{addr}}/v1/queues)\nAPI key: {key}\nWallboard: http://{{addr}}/wallboard (sign in with the API key)"
    );
    let result = run_server(
        store,
        SwitchConfig {
            esl: esl_addr.to_string(),
            password: "ClueCon".into(),
            outbound_listen: outbound.to_string(),
        },
        vec![SwitchNode {
            name: DEFAULT_NODE_NAME.to_owned(),
            esl: esl_addr.to_string(),
            password: "ClueCon".into(),
        }],
        demo_recording(),
        HttpConfig::default(),
        args.listen,
        RunOptions {
            banner: Some(banner),
            // The demo runs on this machine: a receiver to try webhooks with is too.
            webhooks_private: true,
            keep_history: None,
        },
    )
    .await;
    switch.shutdown().await;
    result
}

/// The demo tenant with its skills, queues and agents (created once), and a fresh admin key.
/// The demo records live: the recorder endpoint on loopback (a free port), the fake switch
/// dialling it like FreeSWITCH would, files under `recordings/` in the working directory.
fn demo_recording() -> switchyard_api::runtime::Recording {
    use switchyard_engine::driver::{EndpointSetup, RecordingSetup};
    switchyard_api::runtime::Recording {
        capture: RecordingSetup {
            endpoint: Some(EndpointSetup {
                sip_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                rtp_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
                max_recordings: 1000,
            }),
            recorder_dial: Some("sofia/internal/{user}@{addr}".into()),
            live_dir: "recordings/live".into(),
            switch_path: "recordings/switch/{file}".into(),
            switch_files: "recordings/switch".into(),
            ..RecordingSetup::default()
        },
        upload_token: None,
        objects: Default::default(),
        voicemail: Default::default(),
    }
}

async fn seed_demo(store: &Store) -> anyhow::Result<String> {
    let audit = |action| cli_audit(action, "demo", json!({ "via": "demo" }));
    let tenant = match store.tenant_by_name("demo").await? {
        Some(t) => t,
        None => {
            let t = store.create_tenant("demo", &audit("tenant.create")).await?;
            let sales = store
                .create_skill(t.id, "sales", &audit("skill.create"))
                .await?;
            let support = store
                .create_skill(t.id, "support", &audit("skill.create"))
                .await?;
            // Stored as the API would store them: normalised through the specs.
            let queue = |skill: i64, numbers: Vec<&str>| -> anyhow::Result<serde_json::Value> {
                let v = json!({ "strategy": "longest-idle-agent", "numbers": numbers, "skills": [{ "skill": skill, "min": 3 }], "max_wait_s": 300.0, "wrapup_s": 5.0 });
                Ok(serde_json::to_value(serde_json::from_value::<QueueSpec>(
                    v,
                )?)?)
            };
            let q_sales = store
                .create_queue(
                    t.id,
                    "sales",
                    queue(sales.id, vec!["5000"])?,
                    &audit("queue.create"),
                )
                .await?;
            let q_support = store
                .create_queue(
                    t.id,
                    "support",
                    queue(support.id, vec!["5001"])?,
                    &audit("queue.create"),
                )
                .await?;
            for i in 0..20i32 {
                let ext = 1000 + i;
                let skills = if i % 2 == 0 {
                    json!([{ "skill": sales.id, "level": 8 }, { "skill": support.id, "level": 4 }])
                } else {
                    json!([{ "skill": support.id, "level": 8 }, { "skill": sales.id, "level": 4 }])
                };
                let spec: AgentSpec = serde_json::from_value(
                    json!({ "contact": format!("user/{ext}"), "skills": skills }),
                )?;
                let a = store
                    .create_agent(
                        t.id,
                        &format!("Agent {ext}"),
                        serde_json::to_value(spec)?,
                        &audit("agent.create"),
                    )
                    .await?;
                for q in [&q_sales, &q_support] {
                    store
                        .set_member(t.id, q.id, a.id, 1, i + 1, 1, &audit("member.set"))
                        .await?;
                }
                store
                    .set_agent_presence(t.id, a.id, json!({ "presence": "available" }))
                    .await?;
            }
            t
        }
    };
    // What the demo's rows dial (also set on a demo database from before grants existed).
    let grants = switchyard_api::grants::DialGrants {
        agent_endpoints: vec!["user/{ext}".into()],
        gateways: vec!["demo".into()],
        caller_ids: vec!["+15550100".into()],
        destinations: Vec::new(),
    };
    if tenant.grants != grants {
        store
            .set_tenant_grants(tenant.id, &grants, &audit("tenant.grants"))
            .await?;
    }
    seed_demo_campaign(store, tenant.id).await?;
    let (_, key) = store
        .create_api_key(
            Some(tenant.id),
            Role::Admin,
            None,
            "demo",
            None,
            &audit("api_key.create"),
        )
        .await?;
    Ok(key)
}

/// Agents of the demo's outbound campaign (extensions 1020-1025).
const DEMO_CAMPAIGN_AGENTS: i32 = 6;
/// Contacts the demo campaign starts with.
const DEMO_CONTACTS: usize = 4_000;

/// The demo's outbound campaign (created once, left in draft for the operator to start): a
/// queue of its own whose agents sit on persistent lines. Their desk phones take 1-3 s to
/// answer, which per-call legs cannot fit into the 2-second rule; a line that is already up
/// is bridged at once, so the campaign stays legal in predictive and progressive mode.
async fn seed_demo_campaign(
    store: &Store,
    tenant: switchyard_api::model::TenantId,
) -> anyhow::Result<()> {
    if store
        .list_campaigns(tenant)
        .await?
        .iter()
        .any(|c| c.name == "demo-outbound")
    {
        return Ok(());
    }
    let audit = |action| cli_audit(action, "demo", json!({ "via": "demo" }));
    let spec: QueueSpec = serde_json::from_value(
        json!({ "strategy": "longest-idle-agent", "numbers": [], "wrapup_s": 5.0 }),
    )?;
    let queue = store
        .create_queue(
            tenant,
            "outbound",
            serde_json::to_value(spec)?,
            &audit("queue.create"),
        )
        .await?;
    for i in 0..DEMO_CAMPAIGN_AGENTS {
        let ext = 1020 + i;
        let spec: AgentSpec = serde_json::from_value(
            json!({ "contact": format!("user/{ext}"), "persistent_line": true }),
        )?;
        let a = store
            .create_agent(
                tenant,
                &format!("Outbound {ext}"),
                serde_json::to_value(spec)?,
                &audit("agent.create"),
            )
            .await?;
        store
            .set_member(tenant, queue.id, a.id, 1, i + 1, 1, &audit("member.set"))
            .await?;
        store
            .set_agent_presence(tenant, a.id, json!({ "presence": "available" }))
            .await?;
    }
    let spec: switchyard_api::spec_campaign::CampaignSpec = serde_json::from_value(json!({
        "mode": "predictive",
        "queue": queue.id,
        "caller_id": "+15550100",
        "dial": "sofia/gateway/demo/{number}",
        "max_lines": 12,
        // Paced to 2%: a margin under the legal 3% for a short demo's few persons.
        "abandon_target": 0.02,
        "window": { "start": "00:00", "end": "24:00" },
        "ledger_zone": "UTC",
    }))?;
    let campaign = store
        .create_campaign(
            tenant,
            "demo-outbound",
            serde_json::to_value(spec)?,
            &audit("campaign.create"),
        )
        .await?;
    let contacts: Vec<switchyard_api::store::ContactInput> = (0..DEMO_CONTACTS)
        .map(|i| switchyard_api::store::ContactInput {
            number: format!("+1202555{i:04}"),
            zone: "UTC".into(),
            fields: serde_json::Map::new(),
        })
        .collect();
    for batch in contacts.chunks(switchyard_api::store::MAX_CONTACT_BATCH) {
        store
            .import_contacts(tenant, campaign.id, batch.to_vec())
            .await?;
    }
    Ok(())
}

/// Stops a background task when `serve` returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(nodes: &[SwitchNode]) -> Vec<(&str, &str, &str)> {
        nodes
            .iter()
            .map(|n| (n.name.as_str(), n.esl.as_str(), n.password.as_str()))
            .collect()
    }

    #[test]
    fn private_webhook_targets_are_refused_unless_the_operator_allows_them() {
        let file: FileConfig = toml::from_str("").unwrap();
        assert!(!file.webhooks.allow_private_targets);
        let file: FileConfig =
            toml::from_str("[webhooks]\nallow_private_targets = true\n").unwrap();
        assert!(file.webhooks.allow_private_targets);
        assert!(toml::from_str::<FileConfig>("[webhooks]\nallow_private = true\n").is_err());
        let file: FileConfig = toml::from_str("[history]\nkeep_days = 400\n").unwrap();
        assert_eq!(file.history.keep_days, 400);
        assert_eq!(
            toml::from_str::<FileConfig>("").unwrap().history.keep_days,
            0,
            "history is kept unless the operator says otherwise"
        );
        assert!(toml::from_str::<FileConfig>("[history]\nkeep = 4\n").is_err());
    }

    #[test]
    fn the_voicemail_table_sets_the_driver_and_refuses_what_would_break_a_sendmsg() {
        let rec: FileRecording = toml::from_str(
            "[voicemail]\ngreeting = \"acme/leave-a-message.wav\"\nmax_message_s = 60\n\
             silence_hits_s = 5\nmin_message_s = 1.5\n",
        )
        .unwrap();
        let v = rec.voicemail.to_setup().unwrap();
        assert_eq!(v.greeting, "acme/leave-a-message.wav");
        assert_eq!(v.max_message, std::time::Duration::from_secs(60));
        assert_eq!(v.silence_hits, 5);
        assert_eq!(v.min_message, std::time::Duration::from_millis(1500));
        assert_eq!(
            v.beep,
            switchyard_engine::driver::VoicemailSetup::default().beep
        );
        for bad in [
            "[voicemail]\ngreeting = \"two words.wav\"",
            "[voicemail]\nbeep = \"\"",
            "[voicemail]\nmax_message_s = 0",
            "[voicemail]\nsilence_hits_s = 61",
            "[voicemail]\nmin_message_s = -1.0",
        ] {
            let rec: FileRecording = toml::from_str(bad).unwrap();
            assert!(rec.voicemail.to_setup().is_err(), "{bad}");
        }
        assert!(toml::from_str::<FileRecording>("[voicemail]\ngreting = \"x\"").is_err());
    }

    #[test]
    fn one_switch_by_default_and_the_single_switch_flag_still_works() {
        let n = switch_nodes(None, "ClueCon", vec![], vec![]).unwrap();
        assert_eq!(names(&n), [("fs1", "127.0.0.1:8021", "ClueCon")]);
        let n = switch_nodes(Some("10.0.0.1:8021".into()), "pw", vec![], vec![]).unwrap();
        assert_eq!(names(&n), [("fs1", "10.0.0.1:8021", "pw")]);
    }

    #[test]
    fn repeated_switch_flags_and_switch_tables_list_several_nodes() {
        let flags = vec!["a=10.0.0.1:8021".to_owned(), "b=10.0.0.2:8021".to_owned()];
        let n = switch_nodes(None, "pw", flags.clone(), vec![]).unwrap();
        assert_eq!(
            names(&n),
            [("a", "10.0.0.1:8021", "pw"), ("b", "10.0.0.2:8021", "pw")]
        );
        // --esl comes first as fs1.
        let n = switch_nodes(Some("10.0.0.9:8021".into()), "pw", flags, vec![]).unwrap();
        assert_eq!(n[0].name, "fs1");
        assert_eq!(n.len(), 3);
        let file: FileConfig = toml::from_str(
            r#"
esl_password = "x"
[[switch]]
name = "east"
esl = "10.1.0.1:8021"
[[switch]]
name = "west"
esl = "10.2.0.1:8021"
password = "secret"
"#,
        )
        .unwrap();
        let n = switch_nodes(None, "x", vec![], file.switch).unwrap();
        assert_eq!(
            names(&n),
            [
                ("east", "10.1.0.1:8021", "x"),
                ("west", "10.2.0.1:8021", "secret")
            ]
        );
    }

    #[test]
    fn malformed_or_duplicate_nodes_are_refused() {
        assert!(switch_nodes(None, "pw", vec!["10.0.0.1:8021".into()], vec![]).is_err());
        assert!(switch_nodes(None, "pw", vec!["=10.0.0.1:8021".into()], vec![]).is_err());
        let dup = vec!["a=h:1".to_owned(), "a=h:2".to_owned()];
        assert!(switch_nodes(None, "pw", dup, vec![]).is_err());
        let fs1 = vec!["fs1=h:1".to_owned()];
        assert!(switch_nodes(Some("h:2".into()), "pw", fs1, vec![]).is_err());
    }

    #[test]
    fn a_switch_nodes_password_never_shows_in_debug_output() {
        let n = SwitchNode {
            name: "a".into(),
            esl: "h:1".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{n:?}").contains("hunter2"));
    }
}
