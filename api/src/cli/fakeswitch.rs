//! `switchyard fakeswitch`: the FreeSWITCH stand-in, standalone, for trying switchyard (and the
//! ESL tools) without a real switch.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use switchyard_esl::sim::{StandaloneConfig, run_standalone};

#[derive(Debug, Args)]
pub struct FakeSwitchArgs {
    /// Where the Event Socket listens (FreeSWITCH's default is 127.0.0.1:8021).
    #[arg(
        long,
        default_value = "127.0.0.1:8021",
        env = "SWITCHYARD_FAKESWITCH_LISTEN"
    )]
    listen: String,
    /// A file holding the Event Socket password; without it SWITCHYARD_FAKESWITCH_PASSWORD,
    /// else ClueCon (never a flag: `ps` would show it).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// A TOML scenario: agent phones, customers, inbound callers. Without one, user/1000 to
    /// user/1099 answer after about a second and stay up until hung up.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Where inbound callers are sent, as a dialplan `socket` application would
    /// (e.g. 127.0.0.1:8084). Without it no inbound callers arrive.
    #[arg(long)]
    inbound_target: Option<String>,
    /// Seed of the behaviour model (overrides the scenario's).
    #[arg(long)]
    seed: Option<u64>,
}

pub async fn run(args: FakeSwitchArgs) -> anyhow::Result<()> {
    let listen = args.listen.clone();
    let password = super::read_secret(
        "SWITCHYARD_FAKESWITCH_PASSWORD",
        args.password_file.as_deref(),
        "--password-file",
    )?
    .unwrap_or_else(|| "ClueCon".to_owned());
    eprintln!("switchyard: fake FreeSWITCH listening on {listen} (Ctrl-C stops it)");
    run_standalone(StandaloneConfig {
        listen: args.listen,
        password,
        scenario: args.scenario,
        inbound_target: args.inbound_target,
        seed: args.seed,
    })
    .await
    .with_context(|| format!("fake switch on {listen}"))
}
