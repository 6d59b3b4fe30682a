//! Command-line interface. Each top-level subcommand lives in its own module; `serve`, `demo`,
//! `fakeswitch` and `sim` slot into [`Commands`] the same way `esl` does.

mod contacts;
mod esl;
mod fakeswitch;
mod serve;
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
    /// Campaign contacts through the API (`contacts import --campaign ID FILE.csv`).
    #[command(subcommand)]
    Contacts(contacts::ContactsCommand),
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
        Commands::Serve(args) => serve::serve(args).await,
        Commands::Migrate(args) => serve::migrate(args).await,
        Commands::Tenant(cmd) => serve::tenant(cmd).await,
        Commands::Apikey(cmd) => serve::apikey(cmd).await,
        Commands::Demo(args) => serve::demo(args).await,
    }
}
