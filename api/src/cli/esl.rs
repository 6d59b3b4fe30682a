//! `switchyard esl ...`: the inbound client from a shell, against a real FreeSWITCH or the fake
//! switch.

use std::io::Write;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use switchyard_esl::EventFormat;
use switchyard_esl::client::{Auth, Client, ClientConfig, ClientEvent};

#[derive(Debug, Subcommand)]
pub enum EslCommand {
    /// Print every event, one JSON object per line (FreeSWITCH's own JSON layout, whatever the
    /// wire format). Notices go to stderr. Reconnects until Ctrl-C, unless --once.
    Events(EventsArgs),
    /// Run one `api` command and print its output exactly.
    Api(ApiArgs),
}

/// Where the event socket is and how to log in.
#[derive(Debug, Args)]
pub struct ConnArgs {
    #[arg(long, env = "SWITCHYARD_ESL_HOST", default_value = "127.0.0.1")]
    host: String,
    #[arg(long, env = "SWITCHYARD_ESL_PORT", default_value_t = 8021)]
    port: u16,
    /// A file holding the Event Socket password; without it SWITCHYARD_ESL_PASSWORD, else
    /// FreeSWITCH's default ClueCon (never a flag: `ps` would show it).
    #[arg(long)]
    password_file: Option<std::path::PathBuf>,
    /// Log in with `userauth <user@domain>:<password>` instead of `auth <password>`.
    #[arg(long, env = "SWITCHYARD_ESL_USER")]
    user: Option<String>,
}

impl ConnArgs {
    fn config(&self) -> anyhow::Result<ClientConfig> {
        let password = super::read_secret(
            "SWITCHYARD_ESL_PASSWORD",
            self.password_file.as_deref(),
            "--password-file",
        )?
        .unwrap_or_else(|| "ClueCon".to_owned());
        let auth = match &self.user {
            Some(user) => Auth::User {
                user: user.clone(),
                password,
            },
            None => Auth::Password(password),
        };
        Ok(ClientConfig::new(self.addr(), auth))
    }

    fn addr(&self) -> String {
        // A bare IPv6 address needs brackets before the port.
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum WireFormat {
    Plain,
    Json,
    Xml,
}

impl From<WireFormat> for EventFormat {
    fn from(f: WireFormat) -> Self {
        match f {
            WireFormat::Plain => EventFormat::Plain,
            WireFormat::Json => EventFormat::Json,
            WireFormat::Xml => EventFormat::Xml,
        }
    }
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// Wire format to ask FreeSWITCH for; the output is the same JSON either way.
    #[arg(long, value_enum, default_value = "plain")]
    format: WireFormat,
    /// Events in FreeSWITCH's spelling: 'CHANNEL_CREATE CHANNEL_ANSWER CUSTOM callcenter::info'.
    #[arg(long, default_value = "ALL")]
    events: String,
    /// A filter 'Header Value' (repeatable; FreeSWITCH passes an event matching any filter).
    #[arg(long = "filter", value_name = "HEADER VALUE")]
    filters: Vec<String>,
    /// Exit (status 0) when the switch closes the connection instead of reconnecting.
    #[arg(long)]
    once: bool,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// The api command and its arguments, e.g. `status` or `show channels as json`.
    #[arg(required = true, num_args = 1.., trailing_var_arg = true)]
    command: Vec<String>,
}

pub async fn run(cmd: EslCommand) -> anyhow::Result<()> {
    match cmd {
        EslCommand::Events(args) => events(args).await,
        EslCommand::Api(args) => api(args).await,
    }
}

async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let addr = args.conn.addr();
    let mut config = args.conn.config()?;
    config.reconnect = false;
    let (client, _events) = Client::connect(config)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let command = args.command.join(" ");
    let result = client.api(&command).await;
    // Leave politely whatever the outcome; the switch logs abrupt closes.
    let _ = client.shutdown().await;
    let body = result.with_context(|| format!("api {command}"))?;
    let mut out = std::io::stdout().lock();
    out.write_all(&body)?;
    out.flush()?;
    Ok(())
}

async fn events(args: EventsArgs) -> anyhow::Result<()> {
    let addr = args.conn.addr();
    let mut config = args
        .conn
        .config()?
        .format(args.format.into())
        .events(&args.events);
    for f in &args.filters {
        let Some((header, value)) = f.trim().split_once(' ') else {
            bail!("--filter {f:?}: expected 'Header Value'");
        };
        config = config.filter(header, value.trim());
    }
    config.reconnect = !args.once;

    let (client, mut stream) = Client::connect(config)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut interrupted = false;
    loop {
        let item = tokio::select! {
            item = stream.recv() => item,
            _ = &mut ctrl_c, if !interrupted => {
                interrupted = true;
                eprintln!("interrupted; closing");
                // The stream then yields what is left and ends.
                client.shutdown().await?;
                continue;
            }
        };
        let Some(item) = item else { break };
        match item {
            ClientEvent::Event(event) => {
                let mut out = std::io::stdout().lock();
                if let Err(e) = writeln!(out, "{}", event.to_json_string()) {
                    // `| head` closed the pipe: a normal way to stop.
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        client.shutdown().await?;
                        return Ok(());
                    }
                    return Err(e.into());
                }
            }
            ClientEvent::Connected {
                core_uuid,
                switch_restarted,
            } => {
                let restarted = if switch_restarted {
                    " (the switch restarted)"
                } else {
                    ""
                };
                eprintln!("connected to {addr}, Core-UUID {core_uuid}{restarted}");
            }
            ClientEvent::Disconnected { reason } => eprintln!("disconnected: {reason}"),
            ClientEvent::Lagged { dropped } => {
                eprintln!("output too slow: {dropped} events dropped");
            }
            ClientEvent::Log(log) => {
                eprint!("{}", String::from_utf8_lossy(log.body()));
            }
            other => eprintln!("{other:?}"),
        }
    }
    if let Some(e) = stream.take_error() {
        return Err(e).with_context(|| format!("connection to {addr}"));
    }
    Ok(())
}
