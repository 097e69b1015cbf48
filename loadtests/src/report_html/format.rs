//! How the report's numbers read: the same words in the HTML and the Markdown.

use std::time::Duration;

use super::summary::Summary;
use crate::record::Failure;

/// `97.5%`, or a dash when there was nothing to divide.
pub fn rate(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// Milliseconds below ten seconds (latencies), seconds above (scaling times); a dash for none.
pub fn duration(duration: Option<Duration>) -> String {
    match duration {
        None => "—".to_owned(),
        Some(d) if d < Duration::from_secs(10) => format!("{:.1} ms", d.as_secs_f64() * 1000.0),
        Some(d) => format!("{:.1} s", d.as_secs_f64()),
    }
}

/// The line that says a run stopped early, where and why.
pub fn failure(failure: &Failure) -> String {
    format!(
        "The run stopped early: {} failed: {}. The figures below cover what ran until then.",
        failure.what,
        failure.message.trim_end_matches('.')
    )
}

/// The summary table's rows, as (what, value).
pub fn summary_rows(summary: &Summary) -> Vec<(&'static str, String)> {
    vec![
        ("Requests", summary.requests.to_string()),
        ("Success rate", rate(summary.success_rate)),
        ("Latency p50", duration(summary.latency.map(|l| l.p50))),
        ("Latency p99", duration(summary.latency.map(|l| l.p99))),
        ("Cold starts", summary.cold_starts.to_string()),
        ("Cold-start wait p50", duration(summary.cold_start_p50)),
        ("Cold-start wait p99", duration(summary.cold_start_p99)),
        ("Peak replicas", summary.peak_replicas.to_string()),
        ("Load step → peak replicas", duration(summary.time_to_peak)),
        (
            "Last request → zero replicas",
            duration(summary.time_to_zero),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_with_units_and_dashes_for_nothing() {
        assert_eq!(rate(Some(0.975)), "97.5%");
        assert_eq!(rate(None), "—");
        assert_eq!(duration(Some(Duration::from_micros(12_345))), "12.3 ms");
        assert_eq!(duration(Some(Duration::from_millis(12_500))), "12.5 s");
        assert_eq!(duration(None), "—");
    }

    #[test]
    fn a_failure_reads_as_one_sentence_naming_the_phase() {
        let line = failure(&Failure {
            phase: Some(3),
            what: "phases[3] (wait for 5 replicas)".to_owned(),
            message: "the Services did not reach 5 replicas within 3s (last seen: 1).".to_owned(),
        });
        assert_eq!(
            line,
            "The run stopped early: phases[3] (wait for 5 replicas) failed: the Services did not \
             reach 5 replicas within 3s (last seen: 1). The figures below cover what ran until then."
        );
    }
}
