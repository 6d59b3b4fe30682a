//! Command-line interface. Each top-level subcommand lives in its own module; `serve`, `demo`,
//! `fakeswitch` and `sim` slot into [`Commands`] the same way `esl` does.

mod contacts;
mod esl;
mod export;
mod fakeswitch;
mod freeswitch;
mod recordings;
mod serve;
mod sim;

use std::path::Path;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A call-center engine beside FreeSWITCH"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
    /// Log lines as text (colours only on a terminal) or as one JSON object per line.
    #[arg(
        long,
        global = true,
        env = "SWITCHYARD_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// Set once at start when logs are JSON: then every line on stderr must be JSON, so the
/// commands' human notices (serve's "API on http://..." line) are left to the log events.
pub static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Cli {
    /// The log filter when `RUST_LOG` is not set. The long-running commands report what an
    /// operator needs (start, nodes, campaigns, warnings) at info; the one-shot tools print
    /// their own output and log only errors, so their stderr stays readable.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            // sqlx logs every slow statement at info: warnings are what an operator wants.
            Commands::Serve(_) | Commands::Demo(_) => "info,sqlx=warn",
            _ => "error",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Talk to FreeSWITCH's Event Socket directly (inbound, port 8021).
    #[command(subcommand)]
    Esl(esl::EslCommand),
    /// Run a FreeSWITCH stand-in that speaks the Event Socket like FreeSWITCH 1.10.
    #[command(name = "fakeswitch")]
    FakeSwitch(fakeswitch::FakeSwitchArgs),
    /// Run the routing core in virtual time against a seeded call model.
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Campaign contacts through the API (`contacts import --campaign ID FILE.csv`).
    #[command(subcommand)]
    Contacts(contacts::ContactsCommand),
    /// Recordings through the API: list, fetch, apply retention (a dry run unless --apply).
    #[command(subcommand)]
    Recordings(recordings::RecordingsCommand),
    /// A CSV export of calls, agent or queue intervals through the API, streamed to a file.
    Export(export::ExportArgs),
    /// What to configure on FreeSWITCH for this switchyard (`freeswitch config`).
    #[command(subcommand)]
    Freeswitch(freeswitch::FreeSwitchCommand),
    /// Run the engine against FreeSWITCH and serve the API.
    Serve(serve::ServeArgs),
    /// Apply the database migrations.
    Migrate(serve::DbArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(serve::TenantCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Apikey(serve::ApiKeyCommand),
    /// Everything at once with no setup: a SQLite file, the fake switch with steady callers, a
    /// seeded tenant, and the API on 127.0.0.1:8080; prints the base URL and an admin key.
    Demo(serve::DemoArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Commands::Esl(cmd) => esl::run(cmd).await,
        Commands::FakeSwitch(args) => fakeswitch::run(args).await,
        // CPU-bound and seconds long: no point in the runtime's threads.
        Commands::Sim(cmd) => sim::run(cmd),
        Commands::Contacts(cmd) => contacts::run(cmd).await,
        Commands::Recordings(cmd) => recordings::run(cmd).await,
        Commands::Export(args) => export::run(args).await,
        Commands::Freeswitch(cmd) => freeswitch::run(cmd),
        Commands::Serve(args) => serve::serve(args).await,
        Commands::Migrate(args) => serve::migrate(args).await,
        Commands::Tenant(cmd) => serve::tenant(cmd).await,
        Commands::Apikey(cmd) => serve::apikey(cmd).await,
        Commands::Demo(args) => serve::demo(args).await,
    }
}

/// Largest secret file read: a key or a password is a line, not a document.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// A secret (API key, password) from `env` or from the file `file`, never from a flag: the
/// command line of a process is visible to every user of the machine (`ps`, `/proc`), its
/// environment and a file with the right mode are not. The file's one line is taken without
/// its line end; giving both is refused, since one of them would be ignored without a word.
/// `flag` names the file flag in errors. `Ok(None)`: neither is given.
pub(crate) fn read_secret(
    env: &str,
    file: Option<&Path>,
    flag: &str,
) -> anyhow::Result<Option<String>> {
    let from_env = std::env::var(env).ok().filter(|v| !v.is_empty());
    let Some(path) = file else {
        return Ok(from_env);
    };
    if from_env.is_some() {
        bail!("{flag}: {env} is set too; give one of them");
    }
    let len = std::fs::metadata(path)
        .with_context(|| format!("{flag}: reading {}", path.display()))?
        .len();
    if len > MAX_SECRET_FILE_BYTES {
        bail!(
            "{flag}: {} is {len} bytes; a secret file holds one line (at most {MAX_SECRET_FILE_BYTES} bytes)",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{flag}: reading {}", path.display()))?;
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() || secret.contains(['\n', '\r']) {
        bail!(
            "{flag}: {} must hold the secret on one line",
            path.display()
        );
    }
    Ok(Some(secret.to_owned()))
}
