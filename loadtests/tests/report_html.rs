//! Reports of a synthetic scale-up then scale-to-zero run: four charts, nothing fetched from
//! outside, the right summary numbers, a phase table; an empty run renders too.

use std::time::Duration;

use http::StatusCode;
use wisp_loadtests::generator::{Outcome, Timeline};
use wisp_loadtests::record::{ColdStart, Failure, PhaseSpan, RunRecord, ScalingSample};
use wisp_loadtests::report_html::{self, Summary};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn phase(kind: &str, label: &str, start: u64, end: u64) -> PhaseSpan {
    PhaseSpan {
        kind: kind.into(),
        label: label.into(),
        start: secs(start),
        end: secs(end),
    }
}

fn sample(at: u64, desired: i64, actual: i64, panic: bool) -> ScalingSample {
    ScalingSample {
        at: secs(at),
        desired,
        actual,
        panic,
        queued: 0,
    }
}

/// idle 0–2s, burst 2–3s, ramp 3–8s, hold 8–12s, wait-for zero 12–30s, burst 30–31s.
fn scale_to_zero() -> RunRecord {
    let mut timeline = Timeline::new();
    let rate_at = |second: u64| -> u64 {
        match second {
            2 => 20,
            3..=7 => 10 * (second - 2),
            8..=11 => 50,
            30 => 5,
            _ => 0,
        }
    };
    for second in 0..32 {
        let rate = rate_at(second);
        for i in 0..rate {
            let at = secs(second) + Duration::from_millis(i * 1000 / rate.max(1));
            // The first burst meets a cold revision: slow answers, and two 503s.
            let outcome = if second == 2 && i < 2 {
                Outcome::Answered {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    latency: Duration::from_millis(900),
                }
            } else if second == 9 && i == 0 {
                Outcome::Timeout
            } else {
                let millis = if second == 2 || second == 30 {
                    400
                } else {
                    5 + i % 20
                };
                Outcome::Answered {
                    status: StatusCode::OK,
                    latency: Duration::from_millis(millis),
                }
            };
            timeline.record(at, outcome);
        }
    }
    timeline.finish(secs(32));

    let mut samples = vec![sample(0, -1, 0, false), sample(2, 0, 0, false)];
    samples.extend([
        sample(3, 4, 1, true),
        sample(4, 4, 2, true),
        sample(5, 4, 4, false),
        sample(8, 5, 5, false),
        sample(12, 5, 5, false),
        sample(20, 0, 2, false),
        sample(25, 0, 0, false),
        sample(30, 1, 0, false),
        sample(31, 1, 1, false),
    ]);
    RunRecord {
        scenario: "scale-to-zero".into(),
        description: "idle → burst from zero → ramp <up> & hold".into(),
        timeline,
        phases: vec![
            phase("idle", "idle 2s", 0, 2),
            phase("burst", "burst of 20", 2, 3),
            phase("ramp", "ramp 10→50 rps over 5s", 3, 8),
            phase("constant", "hold 50 rps | 4s", 8, 12),
            phase("wait-for", "wait for zero", 12, 30),
            phase("burst", "burst of 5 again", 30, 31),
        ],
        samples,
        cold_starts: vec![
            ColdStart {
                at: Duration::from_millis(2100),
                wait: Some(Duration::from_millis(850)),
            },
            ColdStart {
                at: Duration::from_millis(2200),
                wait: Some(Duration::from_millis(700)),
            },
            ColdStart {
                at: Duration::from_millis(30_050),
                wait: None,
            },
        ],
        machine: "2 cores, <test>".into(),
        failure: None,
    }
}

fn empty() -> RunRecord {
    RunRecord::default()
}

/// Every `http://` or `https://` in the page is an SVG/XML namespace, never a resource to fetch.
fn assert_self_contained(html: &str) {
    for scheme in ["http://", "https://"] {
        for (at, _) in html.match_indices(scheme) {
            assert!(
                html[at..].starts_with("http://www.w3.org/"),
                "external reference: {}",
                &html[at..(at + 60).min(html.len())]
            );
        }
    }
    for tag in ["<script", "<link", "<img", "@import", "url("] {
        assert!(!html.contains(tag), "found {tag}");
    }
}

#[test]
fn a_scale_to_zero_run_renders_four_charts_and_the_right_numbers() {
    let record = scale_to_zero();
    let report = report_html::render(&record);

    assert_eq!(report.html.matches("<svg").count(), 4);
    assert_eq!(report.html.matches("</svg>").count(), 4);
    assert!(!report.html.contains("could not be drawn"));
    assert_self_contained(&report.html);
    // Text from the record is escaped.
    assert!(report.html.contains("ramp &lt;up&gt; &amp; hold"));
    assert!(report.html.contains("2 cores, &lt;test&gt;"));
    assert!(!report.html.contains("<up>"));

    let total = 20 + (10 + 20 + 30 + 40 + 50) + 4 * 50 + 5;
    let summary = Summary::of(&record);
    assert_eq!(summary.requests, total);
    assert_eq!(summary.succeeded, total - 3);
    let rate = summary.success_rate.unwrap();
    assert!((rate - (total - 3) as f64 / total as f64).abs() < 1e-12);
    assert_eq!(summary.cold_starts, 3);
    assert_eq!(summary.cold_start_p50, Some(Duration::from_millis(700)));
    assert_eq!(summary.cold_start_p99, Some(Duration::from_millis(850)));
    assert_eq!(summary.peak_replicas, 5);
    // Load began with the burst at 2s; five replicas were first seen at 8s.
    assert_eq!(summary.time_to_peak, Some(secs(6)));
    // The hold ended at 12s; zero replicas were first seen at 25s.
    assert_eq!(summary.time_to_zero, Some(secs(13)));

    let success = format!("{:.1}%", rate * 100.0);
    assert!(report.html.contains(&success), "{success}");
    assert!(
        report
            .markdown
            .contains(&format!("| Success rate | {success} |"))
    );
    assert!(report.markdown.contains("| Cold starts | 3 |"));
    assert!(
        report
            .markdown
            .contains("| Last request → zero replicas | 13.0 s |")
    );
    for row in [
        "| idle | idle 2s | 2000.0 ms | 0 | — | — |",
        "| ramp | ramp 10→50 rps over 5s | 5000.0 ms | 150 | 100.0% |",
        "| constant | hold 50 rps \\| 4s | 4000.0 ms | 200 | 99.5% |",
        "| wait-for | wait for zero | 18.0 s | 0 | — | — |",
        "| burst | burst of 5 again | 1000.0 ms | 5 | 100.0% |",
    ] {
        assert!(
            report.markdown.contains(row),
            "{row} in\n{}",
            report.markdown
        );
    }
}

#[test]
fn a_run_that_stopped_early_says_where_and_why_in_both_reports() {
    let mut record = scale_to_zero();
    record.phases.truncate(5);
    record.failure = Some(Failure {
        phase: Some(4),
        what: "phases[4] (wait for zero)".into(),
        message: "the Services did not reach 0 replicas <in time>".into(),
    });
    let report = report_html::render(&record);
    assert!(
        report.html.contains(
            "<p class=\"failure\"><strong>The run stopped early: phases[4] (wait for zero) \
             failed: the Services did not reach 0 replicas &lt;in time&gt;."
        ),
        "{}",
        report.html
    );
    assert!(
        report.markdown.contains(
            "> **The run stopped early: phases[4] (wait for zero) failed: the Services did not \
             reach 0 replicas <in time>."
        ),
        "{}",
        report.markdown
    );
    // A run that did not fail says nothing of the kind.
    let whole = report_html::render(&scale_to_zero());
    assert!(!whole.html.contains("stopped early"));
    assert!(!whole.markdown.contains("stopped early"));
}

#[test]
fn an_empty_run_still_renders() {
    let report = report_html::render(&empty());
    assert_eq!(report.html.matches("<svg").count(), 4);
    assert!(!report.html.contains("could not be drawn"));
    assert_self_contained(&report.html);
    assert!(report.markdown.contains("| Requests | 0 |"));
    assert!(report.markdown.contains("| Success rate | — |"));
}

#[test]
fn write_puts_both_files_in_the_directory() {
    let dir = std::env::temp_dir().join(format!("wisp-report-html-{}", std::process::id()));
    let (html, markdown) = report_html::write(&scale_to_zero(), &dir.join("out")).unwrap();
    assert_eq!(html, dir.join("out/scale-to-zero.html"));
    assert_eq!(markdown, dir.join("out/scale-to-zero.md"));
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));
    assert!(
        std::fs::read_to_string(&markdown)
            .unwrap()
            .contains("| Kind |")
    );
    // To look at the charts: WISP_REPORT_KEEP=/tmp/report.html cargo test --test report_html
    if let Ok(keep) = std::env::var("WISP_REPORT_KEEP") {
        std::fs::copy(&html, keep).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
