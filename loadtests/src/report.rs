//! Markdown tables of benchmark results, with ratios against a named baseline.

use crate::closed_loop::RunResult;

pub struct Row {
    pub name: String,
    pub result: Option<RunResult>,
    /// Why there is no result (a missing peer), shown instead of numbers.
    pub missing: Option<String>,
}

pub fn throughput_table(rows: &[Row], baseline: &str) -> String {
    let baseline_rps = rows
        .iter()
        .find(|row| row.name == baseline)
        .and_then(|row| row.result.as_ref())
        .map(RunResult::requests_per_second);
    let mut table = String::from(
        "| server | req/s | p50 | p99 | max | non-2xx | errors | vs wasmtime serve |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        match (&row.result, &row.missing) {
            (Some(result), _) => {
                let rps = result.requests_per_second();
                let ratio = baseline_rps
                    .filter(|base| *base > 0.0)
                    .map_or("n/a".to_owned(), |base| format!("{:.2}×", rps / base));
                table.push_str(&format!(
                    "| {} | {:.0} | {} | {} | {} | {} | {} | {} |\n",
                    row.name,
                    rps,
                    micros(result.latency_us.value_at_quantile(0.5)),
                    micros(result.latency_us.value_at_quantile(0.99)),
                    micros(result.latency_us.max()),
                    result.non_2xx,
                    result.errors,
                    ratio
                ));
            }
            (None, missing) => table.push_str(&format!(
                "| {} | — | — | — | — | — | — | {} |\n",
                row.name,
                missing.as_deref().unwrap_or("not measured")
            )),
        }
    }
    table
}

pub fn micros(value: u64) -> String {
    if value >= 10_000 {
        format!("{:.1} ms", value as f64 / 1000.0)
    } else {
        format!("{value} µs")
    }
}

/// A line naming the machine, so a table is never read without its context.
pub fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}
