//! `switchyard export`: a CSV export of the tenant's history through the API
//! (`POST /v1/analytics/export`, an admin or supervisor key), streamed to a file or stdout as
//! it arrives: the file is never held in memory here either.
//!
//! A transfer the server cut short (its database went away mid-export) is an error: with
//! `--out` nothing is left under the file's name (the download goes to `FILE.part`, renamed
//! when complete, removed when not); on stdout what came is written and the exit status says
//! it is incomplete.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::recordings::Endpoint;

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub api: Endpoint,
    /// What to export.
    #[arg(long, value_enum)]
    pub kind: ExportKind,
    /// Start of the range (included): RFC 3339 (2026-12-01T00:00:00Z) or unix milliseconds.
    #[arg(long)]
    pub from: String,
    /// End of the range (excluded), at most 366 days after --from.
    #[arg(long)]
    pub to: String,
    /// Only this queue (its id as the API shows it): calls and queue intervals.
    #[arg(long)]
    pub queue: Option<i64>,
    /// Only this agent (its id as the API shows it): calls and agent intervals.
    #[arg(long)]
    pub agent: Option<i64>,
    /// The file to write [default: stdout].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportKind {
    /// One row per call.
    Calls,
    /// One row per agent per 15-minute interval.
    Agents,
    /// One row per queue per 15-minute interval.
    #[value(name = "queue_intervals", alias = "queue-intervals")]
    QueueIntervals,
}

impl ExportKind {
    fn as_str(self) -> &'static str {
        match self {
            ExportKind::Calls => "calls",
            ExportKind::Agents => "agents",
            ExportKind::QueueIntervals => "queue_intervals",
        }
    }
}

/// A time as the API takes it: a number stays a number (unix ms), anything else is sent as
/// text for the API to read as RFC 3339 (and to refuse, naming the field, if it is not).
fn time_value(text: &str) -> Value {
    match text.trim().parse::<i64>() {
        Ok(ms) => Value::from(ms),
        Err(_) => Value::from(text.trim()),
    }
}

pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let key = super::read_secret(
        "SWITCHYARD_API_KEY",
        args.api.api_key_file.as_deref(),
        "--api-key-file",
    )?
    .context("an API key is needed: set SWITCHYARD_API_KEY or give --api-key-file PATH")?;
    let url = format!("{}/v1/analytics/export", args.api.url.trim_end_matches('/'));
    let mut body = json!({
        "kind": args.kind.as_str(),
        "from": time_value(&args.from),
        "to": time_value(&args.to),
    });
    if let Some(q) = args.queue {
        body["queue"] = Value::from(q);
    }
    if let Some(a) = args.agent {
        body["agent"] = Value::from(a);
    }
    let resp = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("sending to {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        let err: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let message = err["error"]["message"].as_str().unwrap_or(&text);
        match err["error"]["field"].as_str() {
            Some(field) => bail!("the export was refused ({status}): {field}: {message}"),
            None => bail!("the export was refused ({status}): {message}"),
        }
    }
    match &args.out {
        Some(out) => {
            let part = out.with_extension("csv.part");
            let file = tokio::fs::File::create(&part)
                .await
                .with_context(|| format!("creating {}", part.display()))?;
            match copy(resp, file).await {
                Ok(bytes) => {
                    tokio::fs::rename(&part, out)
                        .await
                        .with_context(|| format!("renaming to {}", out.display()))?;
                    eprintln!("{} ({bytes} bytes)", out.display());
                    Ok(())
                }
                Err(e) => {
                    let _ = tokio::fs::remove_file(&part).await;
                    Err(e)
                }
            }
        }
        None => copy(resp, tokio::io::stdout()).await.map(|_| ()),
    }
}

/// Copies the body to `to` chunk by chunk; the bytes written.
async fn copy(
    mut resp: reqwest::Response,
    mut to: impl tokio::io::AsyncWrite + Unpin,
) -> anyhow::Result<u64> {
    let mut bytes = 0u64;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => bail!(
                "the export was cut short after {bytes} bytes ({e}); what was received is \
                 incomplete"
            ),
        };
        to.write_all(&chunk).await.context("writing the export")?;
        bytes += chunk.len() as u64;
    }
    to.flush().await.context("writing the export")?;
    Ok(bytes)
}
