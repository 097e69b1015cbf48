//! The self-contained HTML page: inline style, the summary table, the four inline SVG charts,
//! the phase table. Nothing is fetched when the page opens.

use std::fmt::Write as _;

use super::format;
use super::summary::{PhaseRow, Summary};
use crate::record::RunRecord;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;\
padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}th{background:#f3f3f3}\
td.n{text-align:right}figure{margin:1.5em 0}figcaption{color:#555;font-size:90%}\
footer{color:#777;font-size:85%;margin-top:2em}\
p.failure{color:#a00;background:#fdecec;border-left:4px solid #a00;padding:.5em 1em}";

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The page, given the charts already drawn (in the order they are shown, with captions).
pub fn page(record: &RunRecord, summary: &Summary, charts: &[(&str, String)]) -> String {
    let title = escape(&record.scenario);
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>wisp load test: {title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>wisp load test: {title}</h1>\n<p>{}</p>\n",
        escape(&record.description)
    );
    if let Some(failure) = &record.failure {
        let _ = writeln!(
            out,
            "<p class=\"failure\"><strong>{}</strong></p>",
            escape(&format::failure(failure))
        );
    }
    out.push_str("<table class=\"summary\">\n");
    for (what, value) in format::summary_rows(summary) {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
            escape(what),
            escape(&value)
        );
    }
    out.push_str("</table>\n");
    for (caption, svg) in charts {
        let _ = write!(
            out,
            "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
            escape(caption)
        );
    }
    out.push_str(&phase_table(&PhaseRow::all(record)));
    let _ = write!(
        out,
        "<footer>Machine: {}</footer>\n</body>\n</html>\n",
        escape(&record.machine)
    );
    out
}

fn phase_table(rows: &[PhaseRow]) -> String {
    let mut out = String::from(
        "<h2>Phases</h2>\n<table class=\"phases\">\n<tr><th>Kind</th><th>Label</th>\
         <th>Duration</th><th>Requests</th><th>Success rate</th><th>p99</th></tr>\n",
    );
    for row in rows {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&row.kind),
            escape(&row.label),
            escape(&format::duration(Some(row.duration))),
            row.requests,
            escape(&format::rate(row.success_rate)),
            escape(&format::duration(row.p99)),
        );
    }
    out.push_str("</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
