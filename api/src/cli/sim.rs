//! `switchyard sim inbound`: the real routing core in virtual time against a seeded call
//! model. Prints one JSON object (offered, answered, abandoned, service level, ASA, AHT,
//! occupancy, longest wait, per queue).
//!
//! `switchyard sim campaign`: the real engine and its pacing dialling a seeded customer
//! model over working days. Prints one JSON object (dialed, connected, abandoned, abandon
//! rates, talk and busy occupancy).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use switchyard_engine::Strategy;
use switchyard_engine::dialer::DialMode;
use switchyard_engine::sim::{CampaignSimConfig, Scenario, Simulation, run_campaign};

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Inbound queues: Poisson arrivals, exponential talk time and patience.
    Inbound(InboundArgs),
    /// An outbound campaign: seeded customers, agents on auto-answer, working days.
    Campaign(CampaignArgs),
}

#[derive(Debug, Args)]
pub struct CampaignArgs {
    #[arg(long, default_value_t = 10)]
    agents: u32,
    /// Dials answered by a person.
    #[arg(long, default_value_t = 0.25)]
    answer_rate: f64,
    /// Dials answered by a machine (detection is on when above 0; machines are dropped).
    #[arg(long, default_value_t = 0.0)]
    machine_rate: f64,
    /// Dials that are busy.
    #[arg(long, default_value_t = 0.0)]
    busy_rate: f64,
    /// Mean talk time in seconds (exponential).
    #[arg(long, default_value_t = 120.0)]
    aht: f64,
    /// Wrap-up after each call, seconds.
    #[arg(long, default_value_t = 10.0)]
    wrap: f64,
    /// MIN,MAX seconds a person or machine takes to answer (uniform).
    #[arg(long, default_value = "5,20")]
    answer_delay: String,
    /// MIN,MAX seconds before an unanswered dial gives up (uniform; the ring timeout caps it).
    #[arg(long, default_value = "15,30")]
    no_answer_time: String,
    /// MIN,MAX seconds of answering-machine detection after answer.
    #[arg(long, default_value = "1,3")]
    amd_delay: String,
    /// Seconds an agent's phone takes to auto-answer.
    #[arg(long, default_value_t = 0.3)]
    agent_answer: f64,
    /// per-call (the agent's phone is rung and auto-answers for every call) or persistent
    /// (each agent's phone is called once and calls are bridged to it at once).
    #[arg(long, default_value = "per-call")]
    agent_line: String,
    /// Seconds a dial rings before it counts as no answer (15 at least).
    #[arg(long, default_value_t = 25.0)]
    ring_timeout: f64,
    /// Seconds after which pacing may release a ringing line (15 at least), or `off`.
    #[arg(long, default_value = "15")]
    release_after: String,
    #[arg(long, default_value_t = 30)]
    days: u32,
    #[arg(long, default_value_t = 8.0)]
    hours_per_day: f64,
    /// Abandoned / answered by a person, per day and over 30 days.
    #[arg(long, default_value_t = 0.03)]
    abandon_target: f64,
    /// predictive, progressive or preview.
    #[arg(long, default_value = "predictive")]
    mode: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Pretty-print the JSON.
    #[arg(long)]
    pretty: bool,
}

fn seconds(flag: &str, v: f64) -> anyhow::Result<Duration> {
    if !(v.is_finite() && (0.0..1e7).contains(&v)) {
        bail!("--{flag}: must be a number of seconds, 0 or more");
    }
    Ok(Duration::from_secs_f64(v))
}

fn range(flag: &str, text: &str) -> anyhow::Result<(Duration, Duration)> {
    let Some((lo, hi)) = text.split_once(',') else {
        bail!("--{flag}: expected MIN,MAX in seconds, got {text:?}");
    };
    let parse = |s: &str| -> anyhow::Result<Duration> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--{flag}: {s:?} is not a number of seconds"))?;
        seconds(flag, v)
    };
    let (lo, hi) = (parse(lo)?, parse(hi)?);
    if lo > hi {
        bail!("--{flag}: MIN must not exceed MAX");
    }
    Ok((lo, hi))
}

fn campaign(a: CampaignArgs) -> anyhow::Result<()> {
    let Some(mode) = DialMode::from_name(&a.mode) else {
        bail!(
            "--mode: unknown mode {:?}; one of predictive, progressive, preview",
            a.mode
        );
    };
    let persistent_lines = match a.agent_line.as_str() {
        "per-call" => false,
        "persistent" => true,
        other => bail!("--agent-line: unknown {other:?}; one of per-call, persistent"),
    };
    let release_after = match a.release_after.trim() {
        "off" => None,
        text => {
            let v: f64 = text.parse().map_err(|_| {
                anyhow::anyhow!("--release-after: {text:?} is neither seconds nor off")
            })?;
            Some(seconds("release-after", v)?)
        }
    };
    let cfg = CampaignSimConfig {
        agents: a.agents,
        release_after,
        persistent_lines,
        mode,
        answer_rate: a.answer_rate,
        machine_rate: a.machine_rate,
        busy_rate: a.busy_rate,
        aht: seconds("aht", a.aht)?,
        wrap: seconds("wrap", a.wrap)?,
        answer_delay: range("answer-delay", &a.answer_delay)?,
        no_answer_time: range("no-answer-time", &a.no_answer_time)?,
        amd_delay: range("amd-delay", &a.amd_delay)?,
        agent_answer: seconds("agent-answer", a.agent_answer)?,
        ring_timeout: seconds("ring-timeout", a.ring_timeout)?,
        days: a.days,
        hours_per_day: a.hours_per_day,
        abandon_target: a.abandon_target,
        seed: a.seed,
    };
    let report = run_campaign(&cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    let json = if a.pretty {
        serde_json::to_string_pretty(&report)?
    } else {
        serde_json::to_string(&report)?
    };
    println!("{json}");
    Ok(())
}

#[derive(Debug, Args)]
pub struct InboundArgs {
    /// Agents in the single queue (ignored with --config).
    #[arg(long, default_value_t = 10)]
    agents: u32,
    /// Offered load in erlangs (arrival rate x AHT).
    #[arg(long, conflicts_with = "arrivals_per_hour")]
    erlangs: Option<f64>,
    /// Arrival rate instead of --erlangs.
    #[arg(long)]
    arrivals_per_hour: Option<f64>,
    /// Mean talk time in seconds (exponential).
    #[arg(long, default_value_t = 180.0)]
    aht: f64,
    /// Mean caller patience in seconds (exponential); omitted: callers never hang up.
    #[arg(long)]
    patience: Option<f64>,
    /// Service-level threshold in seconds.
    #[arg(long, default_value_t = 20.0)]
    sl_threshold: f64,
    /// Simulated hours [default: 8, or the --config file's].
    #[arg(long)]
    hours: Option<f64>,
    /// Simulated hours at the start left out of the figures (the center starts empty)
    /// [default: 0, or the --config file's].
    #[arg(long)]
    warmup_hours: Option<f64>,
    /// Seed of the call model and of random routing [default: 1, or the --config file's].
    #[arg(long)]
    seed: Option<u64>,
    /// Routing strategy (ring-all, longest-idle-agent, round-robin, top-down, least-talk-time,
    /// fewest-calls, random, weighted-random, ring-progressively, skills-best-match).
    #[arg(long, default_value = "longest-idle-agent")]
    strategy: String,
    /// A TOML scenario with several queues, skills and agent groups (see the engine's
    /// `sim::scenario` docs); --hours, --seed and --warmup-hours given here override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Pretty-print the JSON.
    #[arg(long)]
    pretty: bool,
}

pub fn run(cmd: SimCommand) -> anyhow::Result<()> {
    match cmd {
        SimCommand::Inbound(args) => inbound(args),
        SimCommand::Campaign(args) => campaign(args),
    }
}

fn inbound(a: InboundArgs) -> anyhow::Result<()> {
    let Some(strategy) = Strategy::from_name(&a.strategy) else {
        let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
        bail!(
            "--strategy: unknown strategy {:?}; one of {}",
            a.strategy,
            names.join(", ")
        );
    };
    let mut scenario = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--config: reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("--config: {}", path.display()))?
        }
        None => {
            if !(a.aht.is_finite() && a.aht > 0.0) {
                bail!("--aht: must be a positive number of seconds");
            }
            let per_hour = match (a.erlangs, a.arrivals_per_hour) {
                (Some(e), _) => e * 3600.0 / a.aht,
                (None, Some(r)) => r,
                (None, None) => {
                    bail!("--erlangs or --arrivals-per-hour: one is required (or --config)")
                }
            };
            let mut sc = Scenario::single_queue(
                a.agents,
                per_hour,
                Duration::from_secs_f64(a.aht),
                a.patience
                    .filter(|p| p.is_finite() && *p > 0.0)
                    .map(Duration::from_secs_f64),
            );
            if a.patience.is_some_and(|p| !(p.is_finite() && p > 0.0)) {
                bail!(
                    "--patience: must be a positive number of seconds (omit it for infinite patience)"
                );
            }
            sc.queues[0].sl_threshold_s = a.sl_threshold;
            sc.hours = 8.0;
            sc.warmup_hours = 0.0;
            sc.seed = 1;
            sc
        }
    };
    if let Some(h) = a.hours {
        scenario.hours = h;
    }
    if let Some(w) = a.warmup_hours {
        scenario.warmup_hours = w;
    }
    if let Some(seed) = a.seed {
        scenario.seed = seed;
    }
    if scenario.queues.iter().any(|q| q.strategy.is_none()) && a.config.is_none() {
        scenario.queues[0].strategy = Some(strategy);
    }
    let sim = Simulation::new(scenario)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .strategy(strategy);
    let report = sim.run().map_err(|e| anyhow::anyhow!("{e}"))?;
    let json = if a.pretty {
        serde_json::to_string_pretty(&report)?
    } else {
        serde_json::to_string(&report)?
    };
    println!("{json}");
    Ok(())
}
