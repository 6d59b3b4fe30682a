//! Command-line interface. Each top-level subcommand lives in its own module; `serve`, `demo`,
//! `fakeswitch` and `sim` slot into [`Commands`] the same way `esl` does.

mod esl;
mod fakeswitch;
mod sim;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A call-center engine beside FreeSWITCH"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
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
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Commands::Esl(cmd) => esl::run(cmd).await,
        Commands::FakeSwitch(args) => fakeswitch::run(args).await,
        // CPU-bound and seconds long: no point in the runtime's threads.
        Commands::Sim(cmd) => sim::run(cmd),
    }
}
