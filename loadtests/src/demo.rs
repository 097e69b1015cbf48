//! The scale-to-zero demo: `wisp up` in a temporary data directory, a scenario played against
//! it with a line of progress a second, then a summary and an HTML/Markdown report.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::record::{Failure, RunRecord};
use crate::report_html::{self, Summary};
use crate::runner::{self, Progress, RunFailure};
use crate::scenario;
use crate::wisp_up::WispUp;

/// What the demo needs.
pub struct DemoOptions {
    /// The `wisp` binary.
    pub wisp: PathBuf,
    /// The scenario file (default: `loadtests/scenarios/scale-to-zero.yaml`).
    pub scenario: PathBuf,
    /// Where the report goes.
    pub report_dir: PathBuf,
    /// Relative image paths of the manifests resolve against it (the repository root).
    pub image_dir: PathBuf,
    /// Print progress and the summary to stdout.
    pub verbose: bool,
}

/// What the demo produced.
pub struct DemoOutcome {
    pub record: RunRecord,
    pub summary: Summary,
    pub html: PathBuf,
    pub markdown: PathBuf,
}

/// Runs the demo. When the scenario fails part-way, the report of what ran until then is
/// written all the same (it says which phase failed and why), the summary printed, and then the
/// error returned.
pub async fn run(options: &DemoOptions) -> anyhow::Result<DemoOutcome> {
    let (outcome, _stopped_when_dropped) = run_keeping_cluster(options).await?;
    Ok(outcome)
}

/// [`run`], handing back the `wisp up` the scenario ran against, still running, so that a
/// caller can look at what the run left (with kubectl and `wisp.endpoints.kubeconfig`, say);
/// dropping it stops it. On an error it is stopped before returning.
pub async fn run_keeping_cluster(options: &DemoOptions) -> anyhow::Result<(DemoOutcome, WispUp)> {
    let scenario = match scenario::load(&options.scenario) {
        Ok(scenario) => scenario,
        Err(error) if crate::soak::plan::load(&options.scenario).is_ok() => {
            anyhow::bail!(
                "{}: this is a soak plan, not a scenario; play it with `wisp-loadtests soak \
                 --plan {}` ({error})",
                options.scenario.display(),
                options.scenario.display()
            )
        }
        Err(error) => return Err(error.into()),
    };
    let wisp = WispUp::start(&options.wisp, &options.image_dir)?;
    if options.verbose {
        println!(
            "wisp up: gateway {}, metrics {}, kubeconfig {}",
            wisp.endpoints.gateway,
            wisp.endpoints.metrics,
            wisp.endpoints.kubeconfig.display()
        );
        println!("scenario {}: {}", scenario.name, scenario.description);
    }
    let verbose = options.verbose;
    let result = runner::run(&scenario, &wisp.endpoints, move |progress| {
        if verbose {
            print_progress(progress);
        }
    })
    .await;
    let (record, error) = match result {
        Ok(record) => (record, None),
        Err(RunFailure { record, error }) => (*record, Some(error)),
    };
    let summary = Summary::of(&record);
    let (html, markdown) = report_html::write(&record, &options.report_dir)?;
    if options.verbose {
        print_summary(&summary, record.failure.as_ref(), &html, &markdown);
    }
    if let Some(error) = error {
        return Err(anyhow::Error::new(error).context(format!(
            "scenario {} failed; the report of what ran is in {} and {}",
            scenario.name,
            html.display(),
            markdown.display()
        )));
    }
    Ok((
        DemoOutcome {
            record,
            summary,
            html,
            markdown,
        },
        wisp,
    ))
}

fn print_progress(progress: &Progress) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", progress_line(progress));
}

/// `[  23s] ramp      142 rps, 141 ok/s, p99 104.2 ms, 0 errors | replicas 3 ready / 3 desired`.
fn progress_line(progress: &Progress) -> String {
    let requests = &progress.requests;
    format!(
        "[{:>4}s] {:<9} {:>4} rps, {:>4} ok/s, p99 {}, {} errors | replicas {} ready / {} desired{}{}",
        progress.second,
        progress.phase,
        requests.sent,
        requests.succeeded,
        requests.p99.map_or_else(
            || "-".to_owned(),
            |p99| format!("{:.1} ms", p99.as_secs_f64() * 1e3)
        ),
        requests.errors,
        progress.actual,
        progress.desired.max(0),
        if progress.queued > 0 {
            format!(", {} queued", progress.queued)
        } else {
            String::new()
        },
        if progress.panic { ", panic mode" } else { "" },
    )
}

fn print_summary(summary: &Summary, failure: Option<&Failure>, html: &Path, markdown: &Path) {
    let millis = |d: Option<std::time::Duration>| {
        d.map_or_else(
            || "-".to_owned(),
            |d| {
                // Cold-start waits are microseconds: "0.0 ms" would say nothing.
                if d < std::time::Duration::from_millis(1) {
                    format!("{} µs", d.as_micros())
                } else {
                    format!("{:.1} ms", d.as_secs_f64() * 1e3)
                }
            },
        )
    };
    let seconds = |d: Option<std::time::Duration>| {
        d.map_or_else(|| "-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
    };
    println!();
    println!(
        "requests: {} sent, {} succeeded ({})",
        summary.requests,
        summary.succeeded,
        summary
            .success_rate
            .map_or_else(|| "-".to_owned(), |r| format!("{:.2}%", r * 100.0))
    );
    if let Some(latency) = summary.latency {
        println!(
            "latency: p50 {}, p99 {}",
            millis(Some(latency.p50)),
            millis(Some(latency.p99))
        );
    }
    println!(
        "cold starts: {} (wait p50 {}, p99 {})",
        summary.cold_starts,
        millis(summary.cold_start_p50),
        millis(summary.cold_start_p99)
    );
    println!(
        "replicas: peak {} reached {} after the load began; back to zero {} after the last request",
        summary.peak_replicas,
        seconds(summary.time_to_peak),
        seconds(summary.time_to_zero)
    );
    if let Some(failure) = failure {
        println!(
            "the run stopped early: {} failed: {}",
            failure.what, failure.message
        );
    }
    println!("report: {} and {}", html.display(), markdown.display());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::LiveFigures;
    use std::time::Duration;

    #[test]
    fn the_progress_line_shows_rates_latency_errors_and_replicas() {
        let mut progress = Progress {
            phase: "ramp".to_owned(),
            second: 23,
            requests: LiveFigures {
                second: 22,
                sent: 142,
                succeeded: 141,
                errors: 1,
                p99: Some(Duration::from_micros(104_249)),
            },
            desired: 3,
            actual: 3,
            panic: false,
            queued: 0,
        };
        assert_eq!(
            progress_line(&progress),
            "[  23s] ramp       142 rps,  141 ok/s, p99 104.2 ms, 1 errors | replicas 3 ready / 3 desired"
        );
        progress.requests = LiveFigures::default();
        (progress.desired, progress.queued, progress.panic) = (-1, 4, true);
        assert_eq!(
            progress_line(&progress),
            "[  23s] ramp         0 rps,    0 ok/s, p99 -, 0 errors | replicas 3 ready / 0 desired, 4 queued, panic mode"
        );
    }
}
