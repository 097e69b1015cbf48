//! The Markdown summary: the summary table and a per-phase table, for the README.

use std::fmt::Write as _;

use super::format;
use super::summary::{PhaseRow, Summary};
use crate::record::RunRecord;

/// Makes text safe inside a Markdown table cell: pipes would split the cell, newlines the row.
pub fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// The Markdown page.
pub fn page(record: &RunRecord, summary: &Summary) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "## Load test: {}\n", cell(&record.scenario));
    if !record.description.is_empty() {
        let _ = writeln!(out, "{}\n", cell(&record.description));
    }
    if let Some(failure) = &record.failure {
        let _ = writeln!(out, "> **{}**\n", cell(&format::failure(failure)));
    }
    out.push_str("| Metric | Value |\n|---|---:|\n");
    for (what, value) in format::summary_rows(summary) {
        let _ = writeln!(out, "| {what} | {} |", cell(&value));
    }
    out.push_str(
        "\n| Kind | Label | Duration | Requests | Success rate | p99 |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    for row in PhaseRow::all(record) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&row.kind),
            cell(&row.label),
            format::duration(Some(row.duration)),
            row.requests,
            format::rate(row.success_rate),
            format::duration(row.p99),
        );
    }
    if !record.machine.is_empty() {
        let _ = writeln!(out, "\nMachine: {}", cell(&record.machine));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_pipes_and_newlines_from_breaking_the_table() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
