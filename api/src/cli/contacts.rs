//! `switchyard contacts import`: streams a CSV file to `POST /v1/campaigns/{id}/contacts` with a
//! progress bar (bytes sent, rows so far) and prints the import report.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::io::ReaderStream;

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// Import a CSV file of contacts into a campaign (header row with a `phone` column).
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The campaign's id.
    #[arg(long)]
    pub campaign: i64,
    /// The CSV file.
    pub file: PathBuf,
    /// Region of numbers written without `+` (e.g. US).
    #[arg(long)]
    pub default_region: Option<String>,
    /// The API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A file holding an admin or supervisor API key; without it the key is taken from
    /// SWITCHYARD_API_KEY (never from a flag: `ps` would show it).
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
}

pub async fn run(cmd: ContactsCommand) -> anyhow::Result<()> {
    match cmd {
        ContactsCommand::Import(args) => import(args).await,
    }
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let key = super::read_secret(
        "SWITCHYARD_API_KEY",
        args.api_key_file.as_deref(),
        "--api-key-file",
    )?
    .context("an API key is needed: set SWITCHYARD_API_KEY or give --api-key-file PATH")?;
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("opening {}", args.file.display()))?;
    let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ~{msg} rows",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let rows = Arc::new(AtomicU64::new(0));
    let (b, r) = (bar.clone(), rows.clone());
    // 64 KiB reads: the bar moves as the server takes the body (the stream is pulled by the
    // connection, so "sent" is what the server has been given).
    let stream = ReaderStream::with_capacity(file, 64 * 1024).map(move |chunk| {
        if let Ok(c) = &chunk {
            let lines = c.iter().filter(|b| **b == b'\n').count() as u64;
            let total = r.fetch_add(lines, Ordering::Relaxed) + lines;
            b.inc(c.len() as u64);
            b.set_message(total.saturating_sub(1).to_string());
        }
        chunk
    });
    let mut url = format!(
        "{}/v1/campaigns/{}/contacts",
        args.url.trim_end_matches('/'),
        args.campaign
    );
    if let Some(region) = &args.default_region {
        url.push_str("?default_region=");
        url.push_str(&form_urlencoded::byte_serialize(region.as_bytes()).collect::<String>());
    }
    let resp = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&key)
        .header("content-type", "text/csv")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .with_context(|| format!("sending to {url}"))?;
    bar.finish_and_clear();
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body: serde_json::Value =
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    println!(
        "{}",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    );
    let report = if status.is_success() {
        &body
    } else {
        &body["report"]
    };
    let accepted = report["accepted"].as_u64().unwrap_or(0);
    if !status.is_success() {
        let msg = body["error"]["message"].as_str().unwrap_or("");
        bail!("the import failed ({status}): {msg} ({accepted} rows were imported)");
    }
    if accepted == 0 {
        bail!("no contact was imported");
    }
    Ok(())
}
