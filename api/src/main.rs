//! The `switchyard` binary.
//!
//! ```text
//! switchyard esl events [--format json] [--events 'CHANNEL_CREATE ...'] [--filter 'H V']... [--once]
//! switchyard esl api status
//! switchyard sim inbound --agents 10 --erlangs 8 --aht 180 [--patience 120] [--hours 8] [--config f.toml]
//! switchyard fakeswitch [--listen 127.0.0.1:8021] [--password ClueCon] [--scenario f.toml] [--inbound-target 127.0.0.1:8084]
//! ```

mod cli;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing();
    match cli::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole chain: "connecting to ...: authentication rejected ...".
            eprintln!("switchyard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout carries command output). The CLI reports connection changes
/// itself, so the library's own logs are quiet unless RUST_LOG asks for them.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
