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
    init_tracing(args.default_log_filter(), args.log_format);
    match cli::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole chain: "connecting to ...: authentication rejected ...".
            eprintln!("switchyard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout carries command output). `RUST_LOG` wins over the command's
/// default filter. Colours only when stderr is a terminal and `NO_COLOR` is not set: escape
/// codes in a journal or a log file are noise an operator has to strip.
fn init_tracing(default_filter: &str, format: cli::LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // One object per line with the span fields (request id, route, key id) flattened in
        // beside the event's own: what log shippers index.
        cli::LogFormat::Json => {
            cli::JSON_LOGS.store(true, std::sync::atomic::Ordering::Relaxed);
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .init()
        }
        cli::LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).init()
        }
    }
}
