//! The soak: hours-long stability in minutes — steady load on several Services while a hostile
//! one is attacked, new revisions rolled out, a Service taken to zero and back, and `wisp up`
//! killed with SIGKILL and restarted, all at once on one clock. Every request is accounted for
//! ([`ledger`]: lost unless delivered or explained by the kill) and `wisp up`'s memory is
//! sampled throughout; the report says whether anything was lost and plots the memory.
//!
//! The plan is a YAML file ([`plan`]); `wisp-loadtests soak` plays `loadtests/scenarios/soak.yaml`
//! in full and a test plays it shortened.

pub mod events;
pub mod ledger;
pub mod plan;
pub mod report;
pub mod run;
pub mod streams;

pub use plan::{Overrides, SoakPlan};
pub use run::{SoakRecord, run};

use std::path::PathBuf;

use anyhow::Context;

use crate::wisp_up::WispUp;

/// What a soak needs.
pub struct SoakOptions {
    /// The `wisp` binary.
    pub wisp: PathBuf,
    /// The plan file.
    pub plan: PathBuf,
    /// Shorter timings than the plan's, if any.
    pub overrides: Overrides,
    /// Where the report goes.
    pub report_dir: PathBuf,
    /// Relative image paths of the manifests resolve against it (the repository root).
    pub image_dir: PathBuf,
}

/// What a soak produced: the record, the report's Markdown and HTML paths, and wisp up's log.
pub struct SoakOutcome {
    pub record: SoakRecord,
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub log: PathBuf,
}

/// Reads the plan, starts `wisp up` on a fresh data directory, plays the plan against it and
/// writes the report (whatever the verdict; [`SoakRecord::problems`] says it).
pub async fn play(
    options: &SoakOptions,
    progress: impl Fn(&str) + Send + Sync + 'static,
) -> anyhow::Result<SoakOutcome> {
    let plan = plan::load(&options.plan)?
        .with(options.overrides)
        .map_err(|message| anyhow::anyhow!("{}: {message}", options.plan.display()))?;
    std::fs::create_dir_all(&options.report_dir)
        .with_context(|| format!("cannot create {}", options.report_dir.display()))?;
    let log = options
        .report_dir
        .join(format!("soak-{}-wisp-up.log", plan.name));
    // A fresh log per run (the restart appends to it).
    std::fs::write(&log, "").with_context(|| format!("cannot write {}", log.display()))?;
    let wisp = WispUp::start_logging(&options.wisp, &options.image_dir, &[], Some(&log))?;
    progress(&format!(
        "soak {}: {} s of load on {} Services; wisp up pid {}, gateway {}, kubeconfig {}, log {}",
        plan.name,
        plan.duration.as_secs(),
        plan.services.len(),
        wisp.pid(),
        wisp.endpoints.gateway,
        wisp.endpoints.kubeconfig.display(),
        log.display()
    ));
    let (record, _stopped_when_dropped) = run(&plan, wisp, progress).await?;
    let (markdown, html) = report::write(&record, &options.report_dir).with_context(|| {
        format!(
            "cannot write the report into {}",
            options.report_dir.display()
        )
    })?;
    Ok(SoakOutcome {
        record,
        markdown,
        html,
        log,
    })
}
