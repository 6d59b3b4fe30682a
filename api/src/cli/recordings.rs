//! `switchyard recordings`: the recordings service from a shell, through the API (an admin or
//! supervisor key): list and search, fetch one's audio to a file, and apply the tenant's
//! retention now (a dry run unless `--apply`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum RecordingsCommand {
    /// List the tenant's recordings, newest first (one JSON object per line).
    List(ListArgs),
    /// Write a recording's audio to a file.
    Fetch(FetchArgs),
    /// Show what the tenant's retention deletes now; `--apply` deletes it.
    Retention(RetentionArgs),
}

/// Where the API is and the key to use.
#[derive(Debug, Args)]
pub struct Endpoint {
    /// The API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// A file holding the API key; without it the key is taken from SWITCHYARD_API_KEY (never
    /// from a flag: `ps` would show it).
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
}

impl Endpoint {
    fn key(&self) -> anyhow::Result<String> {
        super::read_secret(
            "SWITCHYARD_API_KEY",
            self.api_key_file.as_deref(),
            "--api-key-file",
        )?
        .context("an API key is needed: set SWITCHYARD_API_KEY or give --api-key-file PATH")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub api: Endpoint,
    /// Started at or after (unix ms).
    #[arg(long)]
    pub from_ms: Option<i64>,
    /// Started before (unix ms).
    #[arg(long)]
    pub to_ms: Option<i64>,
    #[arg(long)]
    pub queue_id: Option<i64>,
    #[arg(long)]
    pub agent_id: Option<i64>,
    #[arg(long)]
    pub caller_number: Option<String>,
    /// Words the transcript must hold.
    #[arg(long)]
    pub q: Option<String>,
    /// At most this many (every page is followed until then).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub api: Endpoint,
    /// The recording's id.
    pub id: uuid::Uuid,
    /// The file to write [default: <id>.wav].
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub api: Endpoint,
    /// Delete (without it, only list what would be deleted).
    #[arg(long)]
    pub apply: bool,
}

pub async fn run(cmd: RecordingsCommand) -> anyhow::Result<()> {
    match cmd {
        RecordingsCommand::List(args) => list(args).await,
        RecordingsCommand::Fetch(args) => fetch(args).await,
        RecordingsCommand::Retention(args) => retention(args).await,
    }
}

/// Reads a JSON answer; a refusal becomes an error with the API's message.
async fn json_of(resp: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let msg = body["error"]["message"].as_str().unwrap_or("");
        bail!("{what} failed ({status}): {msg}");
    }
    Ok(body)
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let key = args.api.key()?;
    let http = reqwest::Client::new();
    let mut query: Vec<(&str, String)> = Vec::new();
    let mut add = |name, v: Option<String>| {
        if let Some(v) = v {
            query.push((name, v));
        }
    };
    add("from_ms", args.from_ms.map(|v| v.to_string()));
    add("to_ms", args.to_ms.map(|v| v.to_string()));
    add("queue_id", args.queue_id.map(|v| v.to_string()));
    add("agent_id", args.agent_id.map(|v| v.to_string()));
    add("caller_number", args.caller_number.clone());
    add("q", args.q.clone());
    let mut printed = 0usize;
    let mut cursor: Option<String> = None;
    while printed < args.limit {
        let page = (args.limit - printed).min(500);
        let mut q = query.clone();
        q.push(("limit", page.to_string()));
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let resp = http
            .get(args.api.url(&format!("/v1/recordings?{query}")))
            .bearer_auth(&key)
            .send()
            .await
            .context("listing recordings")?;
        let body = json_of(resp, "listing recordings").await?;
        let rows = body["recordings"].as_array().cloned().unwrap_or_default();
        for r in &rows {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
        }
        printed += rows.len();
        cursor = body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() || rows.is_empty() {
            break;
        }
    }
    Ok(())
}

async fn fetch(args: FetchArgs) -> anyhow::Result<()> {
    let key = args.api.key()?;
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.wav", args.id)));
    let mut resp = reqwest::Client::new()
        .get(
            args.api
                .url(&format!("/v1/recordings/{}/download", args.id)),
        )
        .bearer_auth(&key)
        .send()
        .await
        .context("fetching the recording")?;
    if !resp.status().is_success() {
        json_of(resp, "fetching the recording").await?;
        bail!("fetching the recording failed");
    }
    // Written beside the target and renamed when whole: a cut download leaves no file that
    // looks complete.
    let part = out.with_extension("wav.part");
    let mut file = tokio::fs::File::create(&part)
        .await
        .with_context(|| format!("creating {}", part.display()))?;
    let mut bytes = 0u64;
    while let Some(chunk) = resp.chunk().await.context("reading the recording")? {
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
        bytes += chunk.len() as u64;
    }
    tokio::io::AsyncWriteExt::flush(&mut file).await?;
    drop(file);
    tokio::fs::rename(&part, &out)
        .await
        .with_context(|| format!("renaming to {}", out.display()))?;
    println!("{} ({bytes} bytes)", out.display());
    Ok(())
}

async fn retention(args: RetentionArgs) -> anyhow::Result<()> {
    let key = args.api.key()?;
    let resp = reqwest::Client::new()
        .post(args.api.url("/v1/recording-retention/sweep"))
        .bearer_auth(&key)
        .json(&json!({ "apply": args.apply }))
        .send()
        .await
        .context("applying retention")?;
    let body = json_of(resp, "applying retention").await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    );
    if !args.apply {
        eprintln!("a dry run: nothing was deleted (--apply deletes)");
    }
    Ok(())
}
