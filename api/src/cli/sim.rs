//! `switchyard sim inbound`: the real routing core in virtual time against a seeded call
//! model. Prints one JSON object (offered, answered, abandoned, service level, ASA, AHT,
//! occupancy, longest wait, per queue).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use switchyard_engine::Strategy;
use switchyard_engine::sim::{Scenario, Simulation};

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Inbound queues: Poisson arrivals, exponential talk time and patience.
    Inbound(InboundArgs),
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
