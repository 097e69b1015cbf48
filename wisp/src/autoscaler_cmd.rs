//! `wisp autoscaler …` subcommands: argument parsing only; the behaviour is in `wisp-autoscaler`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use wisp_autoscaler::chart::render_svg;
use wisp_autoscaler::simulate::{DemandKind, SimulationOptions, Trace, simulate, to_csv};

use crate::cli_values;

#[derive(clap::Subcommand)]
pub enum AutoscalerCommand {
    /// Replay a per-second demand trace through the autoscaler on simulated time.
    ///
    /// Prints CSV `t,demand,stable,panic,panicking,desired,ready`, one row per second.
    Simulate(SimulateArgs),
}

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Trace CSV: header `t,concurrency` or `t,rps`, then `t,value` lines (t in whole seconds;
    /// a value holds until the next line).
    trace: PathBuf,
    /// A revision annotation, e.g. `min-scale=1` or `autoscaling.knative.dev/window=30s`
    /// (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// A `config-autoscaler` value, e.g. `scale-to-zero-grace-period=10s` (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// The revision's `containerConcurrency` (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    container_concurrency: u32,
    /// Milliseconds from asking for a replica to it being ready.
    #[arg(long, default_value_t = 1)]
    startup_ms: u64,
    /// Also write a chart of demand against replicas to this SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

pub fn run(command: AutoscalerCommand) -> anyhow::Result<ExitCode> {
    match command {
        AutoscalerCommand::Simulate(args) => simulate_cmd(args),
    }
}

fn simulate_cmd(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.trace)
        .with_context(|| format!("cannot read trace {}", args.trace.display()))?;
    let trace = Trace::parse(&text).with_context(|| format!("in {}", args.trace.display()))?;
    let options = SimulationOptions {
        annotations: cli_values::key_values("--annotation", &args.annotations)?,
        config: cli_values::key_values("--config", &args.config)?,
        container_concurrency: args.container_concurrency,
        startup: Duration::from_millis(args.startup_ms),
    };
    let rows = simulate(&trace, &options)?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(to_csv(&rows).as_bytes())
        .context("cannot write the CSV to stdout")?;
    if let Some(path) = args.svg {
        let label = match trace.kind {
            DemandKind::Concurrency => "concurrency",
            DemandKind::Rps => "rps",
        };
        std::fs::write(&path, render_svg(&rows, label))
            .with_context(|| format!("cannot write the chart to {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
