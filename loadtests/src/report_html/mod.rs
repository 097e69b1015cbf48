//! Scenario reports people look at: a self-contained HTML page with inline SVG charts (requests
//! and errors per second, latency percentiles, replicas with cold starts and panic periods, the
//! latency histogram, phases as bands) and a Markdown summary for the README, both rendered from
//! a [`RunRecord`]. Rendering is pure; only [`write`] touches the disk.

pub mod charts;
mod format;
mod html;
mod markdown;
mod summary;
mod ticks;

use std::path::{Path, PathBuf};

pub use html::escape;
pub use summary::{PhaseRow, Summary, is_load_phase};

use crate::record::RunRecord;

/// A rendered report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One self-contained HTML page.
    pub html: String,
    /// The summary and per-phase tables in Markdown.
    pub markdown: String,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Renders a run's report.
pub fn render(record: &RunRecord) -> Report {
    let summary = Summary::of(record);
    let charts = [
        (
            "Requests per second: succeeded, and errors (failed, timed out or dropped).",
            charts::requests(record),
        ),
        (
            "Latency of each second's answered requests: p50, p90, p99.",
            charts::latency(record),
        ),
        (
            "Desired and ready replicas; cold starts as marks, panic mode shaded.",
            charts::replicas(record),
        ),
        (
            "Latency of every answered request of the run.",
            charts::histogram(record),
        ),
    ];
    Report {
        html: html::page(record, &summary, &charts),
        markdown: markdown::page(record, &summary),
    }
}

/// Renders a run's report and writes `<scenario>.html` and `<scenario>.md` into `dir` (created
/// if missing); returns their paths, HTML first.
pub fn write(record: &RunRecord, dir: &Path) -> Result<(PathBuf, PathBuf), ReportError> {
    let report = render(record);
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let stem = file_stem(&record.scenario);
    let html = dir.join(format!("{stem}.html"));
    let markdown = dir.join(format!("{stem}.md"));
    for (path, text) in [(&html, &report.html), (&markdown, &report.markdown)] {
        std::fs::write(path, text).map_err(|source| ReportError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok((html, markdown))
}

/// The scenario's name as a file name: anything but letters, digits, `-`, `_` and `.` becomes
/// `-`, so a name cannot reach outside `dir`; an empty name becomes `report`.
fn file_stem(scenario: &str) -> String {
    let stem: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches('.');
    if stem.is_empty() {
        "report".to_owned()
    } else {
        stem.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_stems_stay_inside_the_directory() {
        assert_eq!(file_stem("scale-to-zero"), "scale-to-zero");
        assert_eq!(file_stem("../etc/passwd"), "-etc-passwd");
        assert_eq!(file_stem(".."), "report");
        assert_eq!(file_stem(""), "report");
    }
}
