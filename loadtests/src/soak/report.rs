//! The soak's report: the verdict, what became of the requests (stream by stream), the
//! rollouts, the trips to zero and `wisp up`'s memory over the run, as one set of tables
//! rendered twice — Markdown (for a terminal or a pull request) and a self-contained HTML page
//! with the RSS chart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::ledger::Tally;
use super::plan::Expect;
use super::run::SoakRecord;
use crate::report_html::{charts, escape};

/// A titled table.
struct Table {
    title: &'static str,
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

/// Writes `soak-<name>.md` and `soak-<name>.html` into `dir`; their paths, Markdown first.
pub fn write(record: &SoakRecord, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The name is a DNS label (checked when the plan was read): a safe file name.
    let stem = format!("soak-{}", record.plan.name);
    let markdown = dir.join(format!("{stem}.md"));
    let html = dir.join(format!("{stem}.html"));
    std::fs::write(&markdown, markdown_page(record))
        .with_context(|| format!("cannot write {}", markdown.display()))?;
    std::fs::write(&html, html_page(record))
        .with_context(|| format!("cannot write {}", html.display()))?;
    Ok((markdown, html))
}

/// `PASSED`, or `FAILED` and why.
pub fn verdict(record: &SoakRecord) -> String {
    let problems = record.problems();
    if problems.is_empty() {
        "PASSED: no request lost, memory under its limit, every rollout and trip to zero done"
            .to_owned()
    } else {
        format!("FAILED: {}", problems.join("; "))
    }
}

pub fn markdown_page(record: &SoakRecord) -> String {
    let mut out = format!(
        "# wisp soak: {}\n\n{}\n\n**{}**\n\n",
        record.plan.name,
        record.plan.description,
        verdict(record)
    );
    for table in tables(record) {
        let _ = write!(
            out,
            "## {}\n\n| {} |\n|",
            table.title,
            table.header.join(" | ")
        );
        for _ in &table.header {
            out.push_str("---|");
        }
        out.push('\n');
        for row in &table.rows {
            let cells: Vec<String> = row.iter().map(|cell| cell.replace('|', "\\|")).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "Machine: {}", record.machine);
    out
}

pub fn html_page(record: &SoakRecord) -> String {
    let title = escape(&record.plan.name);
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>wisp soak: {title}</title>\n<style>body{{font-family:system-ui,sans-serif;\
         max-width:1000px;margin:2em auto;padding:0 1em;color:#222}}table{{border-collapse:\
         collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}\
         th{{background:#f3f3f3}}p.verdict{{font-weight:bold}}</style>\n</head>\n<body>\n\
         <h1>wisp soak: {title}</h1>\n<p>{}</p>\n<p class=\"verdict\">{}</p>\n",
        escape(&record.plan.description),
        escape(&verdict(record))
    );
    let samples: Vec<(f64, f64)> = record
        .rss
        .iter()
        .map(|s| (s.at.as_secs_f64(), s.bytes as f64 / f64::from(1 << 20)))
        .collect();
    let outage = record
        .outage
        .map(|o| (o.killed.as_secs_f64(), o.back.as_secs_f64()));
    let _ = write!(
        out,
        "<figure>\n{}\n</figure>\n",
        charts::resident_memory(
            &samples,
            f64::from(record.plan.rss_limit_mib),
            outage,
            record.elapsed.as_secs_f64()
        )
    );
    for table in tables(record) {
        let _ = write!(out, "<h2>{}</h2>\n<table>\n<tr>", escape(table.title));
        for cell in &table.header {
            let _ = write!(out, "<th>{}</th>", escape(cell));
        }
        out.push_str("</tr>\n");
        for row in &table.rows {
            out.push_str("<tr>");
            for cell in row {
                let _ = write!(out, "<td>{}</td>", escape(cell));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
    }
    let _ = write!(
        out,
        "<footer>Machine: {}</footer>\n</body>\n</html>\n",
        escape(&record.machine)
    );
    out
}

fn tables(record: &SoakRecord) -> Vec<Table> {
    let mut tables = vec![summary(record), streams(record)];
    if !record.rollouts.is_empty() {
        tables.push(rollouts(record));
    }
    if !record.zero_cycles.is_empty() {
        tables.push(zero_cycles(record));
    }
    tables.push(memory(record));
    let lost = lost_examples(record);
    if !lost.rows.is_empty() {
        tables.push(lost);
    }
    tables
}

fn summary(record: &SoakRecord) -> Table {
    let total = record.total();
    let mib = |bytes: Option<u64>| bytes.map_or("—".to_owned(), |b| format!("{} MiB", b >> 20));
    let mut rows = vec![
        row("load", format!("{} s", record.plan.duration.as_secs())),
        row("requests sent", total.sent.to_string()),
        row("delivered", total.delivered.to_string()),
        row(
            "in flight in the killed process",
            total.cut_by_kill.to_string(),
        ),
        row(
            "sent while wisp up was down",
            total.sent_while_down.to_string(),
        ),
        row("lost", total.lost.to_string()),
        row("RSS peak", mib(record.peak_rss())),
        row(
            "RSS at the end",
            mib(record.rss.last().map(|sample| sample.bytes)),
        ),
        row("RSS limit", format!("{} MiB", record.plan.rss_limit_mib)),
    ];
    if let Some(outage) = record.outage {
        rows.push(row(
            "kill -9",
            format!(
                "at {:.1} s; the restarted wisp up announced itself {:.2} s later",
                outage.killed.as_secs_f64(),
                (outage.back - outage.killed).as_secs_f64()
            ),
        ));
    }
    let ready: Vec<Duration> = record
        .rollouts
        .iter()
        .filter_map(|r| r.ready.as_ref().map(|(_, after)| *after))
        .collect();
    rows.push(row(
        "rollouts Ready",
        format!(
            "{} of {} (slowest {})",
            ready.len(),
            record.rollouts.len(),
            seconds(ready.iter().max().copied())
        ),
    ));
    let zero: Vec<Duration> = record
        .zero_cycles
        .iter()
        .filter_map(|c| c.zero_after)
        .collect();
    rows.push(row(
        "trips to zero",
        format!(
            "{} of {} (slowest {})",
            zero.len(),
            record.zero_cycles.len(),
            seconds(zero.iter().max().copied())
        ),
    ));
    Table {
        title: "Summary",
        header: vec!["", ""],
        rows,
    }
}

fn streams(record: &SoakRecord) -> Table {
    let mut rows = Vec::new();
    for service in &record.services {
        for stream in &service.streams {
            rows.push(stream_row(
                &service.name,
                service.expect,
                &stream.path,
                stream.rate,
                &stream.tally,
            ));
        }
    }
    Table {
        title: "Requests",
        header: vec![
            "Service",
            "path",
            "rate/s",
            "expects",
            "sent",
            "delivered",
            "cut by the kill",
            "sent while down",
            "lost",
            "p50",
            "p99",
            "outcomes",
        ],
        rows,
    }
}

fn stream_row(service: &str, expect: Expect, path: &str, rate: f64, tally: &Tally) -> Vec<String> {
    let outcomes: Vec<String> = tally
        .outcomes
        .iter()
        .map(|(name, count)| format!("{name}: {count}"))
        .collect();
    vec![
        service.to_owned(),
        path.to_owned(),
        format!("{rate}"),
        match expect {
            Expect::Success => "2xx".to_owned(),
            Expect::Failures => "an answer".to_owned(),
        },
        tally.sent.to_string(),
        tally.delivered.to_string(),
        tally.cut_by_kill.to_string(),
        tally.sent_while_down.to_string(),
        tally.lost.to_string(),
        millis(tally.latency(0.5)),
        millis(tally.latency(0.99)),
        outcomes.join(", "),
    ]
}

fn rollouts(record: &SoakRecord) -> Table {
    let rows = record
        .rollouts
        .iter()
        .map(|r| {
            vec![
                format!("{:.1} s", r.at.as_secs_f64()),
                r.service.clone(),
                r.ready
                    .as_ref()
                    .map_or("—".to_owned(), |(name, _)| name.clone()),
                seconds(r.ready.as_ref().map(|(_, after)| *after)),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    Table {
        title: "Rollouts",
        header: vec!["at", "Service", "new revision", "Ready after", "error"],
        rows,
    }
}

fn zero_cycles(record: &SoakRecord) -> Table {
    let rows = record
        .zero_cycles
        .iter()
        .map(|c| {
            vec![
                c.service.clone(),
                format!("{:.1} s", c.paused_at.as_secs_f64()),
                seconds(c.zero_after),
                format!("{:.1} s", c.resumed_at.as_secs_f64()),
            ]
        })
        .collect();
    Table {
        title: "Trips to zero (load paused, then back: the next request is a cold start)",
        header: vec!["Service", "load paused at", "at zero after", "load back at"],
        rows,
    }
}

/// RSS at (about) every tenth of the run, for the Markdown page that has no chart.
fn memory(record: &SoakRecord) -> Table {
    let step = (record.rss.len() / 10).max(1);
    let mut rows: Vec<Vec<String>> = record
        .rss
        .iter()
        .step_by(step)
        .map(|s| {
            vec![
                format!("{} s", s.at.as_secs()),
                format!("{} MiB", s.bytes >> 20),
            ]
        })
        .collect();
    if let Some(last) = record.rss.last()
        && !(record.rss.len() - 1).is_multiple_of(step)
    {
        rows.push(vec![
            format!("{} s", last.at.as_secs()),
            format!("{} MiB", last.bytes >> 20),
        ]);
    }
    Table {
        title: "wisp up's RSS over the run",
        header: vec!["at", "RSS"],
        rows,
    }
}

fn lost_examples(record: &SoakRecord) -> Table {
    let mut rows = Vec::new();
    for service in &record.services {
        for stream in &service.streams {
            for request in &stream.tally.lost_examples {
                rows.push(vec![
                    service.name.clone(),
                    stream.path.clone(),
                    format!("{:.3} s", request.due.as_secs_f64()),
                    format!("{:.3} s", request.ended.as_secs_f64()),
                    super::ledger::outcome_name(request.outcome),
                ]);
            }
        }
    }
    Table {
        title: "Lost requests (the first of each stream)",
        header: vec!["Service", "path", "due at", "ended at", "outcome"],
        rows,
    }
}

fn row(what: &str, value: String) -> Vec<String> {
    vec![what.to_owned(), value]
}

fn seconds(duration: Option<Duration>) -> String {
    duration.map_or("—".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
}

fn millis(duration: Option<Duration>) -> String {
    duration.map_or("—".to_owned(), |d| {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    })
}
