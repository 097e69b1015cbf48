//! Replaying a per-second demand trace through the real autoscaler on simulated time, so a user
//! can see what their annotations will do before deploying (`wisp autoscaler simulate`).
//!
//! The trace is CSV: a header `t,concurrency` or `t,rps`, then `t,value` lines with `t` in whole
//! seconds, strictly increasing. A value holds until the next line, so a step is two lines.
//! Blank lines and lines starting with `#` are ignored.
//!
//! The simulated data plane records the demand once a second, starts the replicas the autoscaler
//! asks for (ready `startup` later) and stops surplus ones at once. Output rows are taken after
//! each second's loop step.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::annotations::PREFIX;
use crate::clock::{Clock, ManualClock, Timestamp};
use crate::config::AutoscalerConfig;
use crate::error::SimulateError;
use crate::multiscaler::{Autoscaler, RevisionHandle};
use crate::reporter::Stat;
use crate::spec::{Reachability, RevisionSpec};
use wisp_api::revision_key::RevisionKey;

/// Longest trace accepted (a week of seconds), so a typo in `t` cannot run for hours.
const MAX_TRACE_SECONDS: u64 = 7 * 24 * 3600;
const MAX_STARTUP_MS: u64 = 3_600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemandKind {
    Concurrency,
    Rps,
}

/// A parsed demand trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub kind: DemandKind,
    /// `(t, value)`, t strictly increasing.
    pub points: Vec<(u64, f64)>,
}

impl Trace {
    /// Parses trace CSV; errors name the line and what a correct line looks like.
    pub fn parse(text: &str) -> Result<Trace, SimulateError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let (_, header) = lines.next().ok_or(SimulateError::EmptyTrace)?;
        let columns: Vec<&str> = header.split(',').map(str::trim).collect();
        let kind = match columns.as_slice() {
            ["t", "concurrency"] => DemandKind::Concurrency,
            ["t", "rps"] => DemandKind::Rps,
            _ => {
                return Err(SimulateError::Header {
                    found: header.to_string(),
                });
            }
        };
        let mut points: Vec<(u64, f64)> = Vec::new();
        for (line, text) in lines {
            let fail = |problem: String| SimulateError::Trace { line, problem };
            let fields: Vec<&str> = text.split(',').map(str::trim).collect();
            let [t, value] = fields.as_slice() else {
                return Err(fail(format!("expected 2 fields, found {}", fields.len())));
            };
            let t: u64 = t
                .parse()
                .map_err(|_| fail(format!("t = {t:?} is not a whole number of seconds")))?;
            let value: f64 = value
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| fail(format!("value {value:?} is not a number ≥ 0")))?;
            if let Some(&(previous, _)) = points.last()
                && t <= previous
            {
                return Err(fail(format!("t = {t} does not come after t = {previous}")));
            }
            if let Some(&(first, _)) = points.first()
                && t - first > MAX_TRACE_SECONDS
            {
                return Err(fail(format!(
                    "t = {t} makes the trace longer than a week ({MAX_TRACE_SECONDS} s)"
                )));
            }
            points.push((t, value));
        }
        if points.is_empty() {
            return Err(SimulateError::EmptyTrace);
        }
        Ok(Trace { kind, points })
    }

    fn span(&self) -> (u64, u64) {
        let first = self.points.first().map_or(0, |p| p.0);
        let last = self.points.last().map_or(first, |p| p.0);
        (first, last)
    }
}

/// Knobs of one simulation.
#[derive(Clone, Debug, Default)]
pub struct SimulationOptions {
    /// Revision annotations; keys without a `/` get the `autoscaling.knative.dev/` prefix.
    pub annotations: BTreeMap<String, String>,
    /// `config-autoscaler` keys (and `progress-deadline`); unknown keys are errors.
    pub config: BTreeMap<String, String>,
    pub container_concurrency: u32,
    /// Time from asking for a replica to it being ready.
    pub startup: Duration,
}

/// One second of the simulation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    pub t: u64,
    pub demand: f64,
    /// The decider's stable and panic observations; `None` when it had no data.
    pub stable: Option<f64>,
    pub panic: Option<f64>,
    pub panicking: bool,
    /// Replicas the autoscaler asks the data plane to run.
    pub desired: u32,
    pub ready: u32,
}

pub const CSV_HEADER: &str = "t,demand,stable,panic,panicking,desired,ready";

/// Runs the trace through the autoscaler and returns one row per second from the first to the
/// last `t` of the trace.
pub fn simulate(trace: &Trace, options: &SimulationOptions) -> Result<Vec<Row>, SimulateError> {
    if options.startup > Duration::from_millis(MAX_STARTUP_MS) {
        return Err(SimulateError::Startup(options.startup.as_millis() as u64));
    }
    let config = AutoscalerConfig::from_map_strict(&options.config)?;
    let annotations = revision_annotations(trace.kind, &options.annotations);
    let metric = annotations
        .get(&format!("{PREFIX}metric"))
        .map_or("concurrency", String::as_str);
    let trace_metric = match trace.kind {
        DemandKind::Concurrency => "concurrency",
        DemandKind::Rps => "rps",
    };
    // Each trace feeds one metric; scaling on the other would read nothing.
    if metric != trace_metric && (metric == "rps" || metric == "concurrency") {
        return Err(SimulateError::MetricMismatch {
            trace: trace_metric,
            metric: if metric == "rps" {
                "rps"
            } else {
                "concurrency"
            },
        });
    }
    let spec = RevisionSpec {
        annotations,
        container_concurrency: options.container_concurrency,
        reachability: Reachability::Reachable,
    };
    let (first, last) = trace.span();
    let clock = Arc::new(ManualClock::new(Timestamp::from_secs(first)));
    let autoscaler = Autoscaler::new(config, clock.clone());
    let handle = autoscaler.register(RevisionKey::new("default", "simulated"), spec, 0)?;
    let mut plane = SimulatedPlane {
        handle,
        startup: options.startup,
        ready: 0,
        starting: Vec::new(),
    };
    plane.apply(clock.now());

    let mut rows = Vec::with_capacity((last - first + 1) as usize);
    let mut next_point = 0;
    let mut demand = 0.0;
    for second in first..=last {
        let now = Timestamp::from_secs(second);
        plane.become_ready_until(&clock, now);
        clock.set(now);
        while next_point < trace.points.len() && trace.points[next_point].0 <= second {
            demand = trace.points[next_point].1;
            next_point += 1;
        }
        if demand > 0.0 {
            plane.handle.record(demand_stat(trace.kind, demand));
            plane.apply(now);
        }
        autoscaler.step(now);
        plane.apply(now);
        let status = plane.handle.status();
        rows.push(Row {
            t: second,
            demand,
            stable: status.observed.map(|o| o.stable),
            panic: status.observed.map(|o| o.panic),
            panicking: status.view.panicking,
            desired: status.view.replicas,
            ready: plane.ready,
        });
    }
    Ok(rows)
}

/// Renders rows as CSV with [`CSV_HEADER`]; an unknown stable/panic value is an empty field.
pub fn to_csv(rows: &[Row]) -> String {
    let mut out = String::with_capacity(rows.len() * 32 + CSV_HEADER.len() + 1);
    out.push_str(CSV_HEADER);
    out.push('\n');
    let opt = |v: Option<f64>| v.map(fmt_value).unwrap_or_default();
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            r.t,
            fmt_value(r.demand),
            opt(r.stable),
            opt(r.panic),
            u8::from(r.panicking),
            r.desired,
            r.ready
        );
    }
    out
}

/// At most 6 decimals (Knative's own precision), without trailing zeros: float noise such as
/// `590.4000000000001` helps nobody reading the CSV.
fn fmt_value(v: f64) -> String {
    let text = format!("{v:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

fn revision_annotations(
    kind: DemandKind,
    given: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut annotations: BTreeMap<String, String> = given
        .iter()
        .map(|(k, v)| {
            let key = if k.contains('/') {
                k.clone()
            } else {
                format!("{PREFIX}{k}")
            };
            (key, v.clone())
        })
        .collect();
    if kind == DemandKind::Rps {
        // An RPS trace scales on RPS unless the user explicitly chose otherwise.
        annotations
            .entry(format!("{PREFIX}metric"))
            .or_insert_with(|| "rps".to_string());
    }
    annotations
}

fn demand_stat(kind: DemandKind, demand: f64) -> Stat {
    match kind {
        DemandKind::Concurrency => Stat {
            concurrency: demand,
            requests: 0.0,
        },
        // The trace has no concurrency; the rate also goes into the concurrency series so the
        // cold-start poke (keyed on concurrency, as in Knative) still fires.
        DemandKind::Rps => Stat {
            concurrency: demand,
            requests: demand,
        },
    }
}

/// Replicas as a data plane would run them: asked for, ready after `startup`, stopped at once.
struct SimulatedPlane {
    handle: RevisionHandle,
    startup: Duration,
    ready: u32,
    /// Replicas still starting, as (ready time, count) batches, oldest first. Batches rather
    /// than one entry per replica: a runaway scale-up must not cost memory per replica.
    starting: Vec<(Timestamp, u32)>,
}

impl SimulatedPlane {
    fn starting_total(&self) -> u64 {
        self.starting.iter().map(|&(_, n)| u64::from(n)).sum()
    }

    fn apply(&mut self, now: Timestamp) {
        let target = u64::from(self.handle.view().replicas);
        let have = u64::from(self.ready) + self.starting_total();
        if target > have {
            let more = u32::try_from(target - have).unwrap_or(u32::MAX);
            self.starting.push((now + self.startup, more));
        } else if target < have {
            // Stop the newest starting replicas first, then ready ones.
            let mut surplus = have - target;
            while surplus > 0 {
                let Some(last) = self.starting.last_mut() else {
                    break;
                };
                let cut = u64::from(last.1).min(surplus);
                last.1 -= cut as u32;
                surplus -= cut;
                if last.1 == 0 {
                    self.starting.pop();
                }
            }
            self.ready -= u32::try_from(surplus).unwrap_or(u32::MAX).min(self.ready);
            self.handle.set_ready(self.ready);
        }
    }

    /// Moves the clock through each replica start before `until`, reporting it ready then.
    fn become_ready_until(&mut self, clock: &ManualClock, until: Timestamp) {
        while let Some(&(at, count)) = self.starting.first() {
            if at > until {
                break;
            }
            clock.set(at.max(clock.now()));
            self.starting.remove(0);
            self.ready = self.ready.saturating_add(count);
            self.handle.set_ready(self.ready);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_concurrency_and_rps_traces() {
        let t = Trace::parse("t,concurrency\n0,0\n10,500\n# comment\n\n70,0\n").unwrap();
        assert_eq!(t.kind, DemandKind::Concurrency);
        assert_eq!(t.points, vec![(0, 0.0), (10, 500.0), (70, 0.0)]);
        let t = Trace::parse("t, rps\r\n0, 12.5\r\n").unwrap();
        assert_eq!(t.kind, DemandKind::Rps);
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let cases = [
            ("t,concurrency\n0,1\nx,2\n", 3, "whole number"),
            ("t,concurrency\n0,1\n1,-2\n", 3, "≥ 0"),
            ("t,concurrency\n5,1\n5,2\n", 3, "does not come after"),
            ("t,concurrency\n0,1,2\n", 2, "2 fields"),
        ];
        for (text, line_no, fragment) in cases {
            match Trace::parse(text) {
                Err(SimulateError::Trace { line, problem }) => {
                    assert_eq!(line, line_no, "{text:?}");
                    assert!(problem.contains(fragment), "{problem}");
                }
                other => panic!("{text:?} gave {other:?}"),
            }
        }
        assert!(matches!(
            Trace::parse("time,load\n"),
            Err(SimulateError::Header { .. })
        ));
        assert!(matches!(
            Trace::parse("t,rps\n"),
            Err(SimulateError::EmptyTrace)
        ));
    }

    #[test]
    fn csv_has_the_documented_header_and_one_row_per_second() {
        let trace = Trace::parse("t,concurrency\n0,5\n4,5\n").unwrap();
        let options = SimulationOptions {
            startup: Duration::from_millis(1),
            ..SimulationOptions::default()
        };
        let rows = simulate(&trace, &options).unwrap();
        assert_eq!(rows.len(), 5);
        let csv = to_csv(&rows);
        assert!(csv.starts_with("t,demand,stable,panic,panicking,desired,ready\n0,5,"));
        assert_eq!(csv.lines().count(), 6);
    }

    #[test]
    fn runaway_demand_costs_no_memory_per_replica() {
        let trace = Trace::parse("t,concurrency\n0,1000000000000\n20,1000000000000\n").unwrap();
        let mut options = SimulationOptions::default();
        options.annotations.insert("target".into(), "0.01".into());
        let rows = simulate(&trace, &options).unwrap();
        assert!(rows.last().unwrap().desired > 1_000_000);
    }

    #[test]
    fn values_print_with_at_most_six_decimals() {
        assert_eq!(fmt_value(590.4000000000001), "590.4");
        assert_eq!(fmt_value(83.3333333), "83.333333");
        assert_eq!(fmt_value(500.0), "500");
        assert_eq!(fmt_value(-0.0), "0");
    }

    #[test]
    fn an_rps_trace_cannot_scale_on_concurrency() {
        let trace = Trace::parse("t,rps\n0,5\n").unwrap();
        let mut options = SimulationOptions::default();
        options
            .annotations
            .insert("metric".into(), "concurrency".into());
        assert!(matches!(
            simulate(&trace, &options),
            Err(SimulateError::MetricMismatch { .. })
        ));
        let trace = Trace::parse("t,concurrency\n0,5\n").unwrap();
        let mut options = SimulationOptions::default();
        options.annotations.insert("metric".into(), "rps".into());
        let err = simulate(&trace, &options).unwrap_err().to_string();
        assert!(err.contains("metric=concurrency"), "{err}");
    }

    #[test]
    fn unknown_config_and_invalid_annotations_are_errors() {
        let trace = Trace::parse("t,concurrency\n0,5\n").unwrap();
        let mut options = SimulationOptions::default();
        options.config.insert("stable-windw".into(), "30s".into());
        assert!(
            simulate(&trace, &options)
                .unwrap_err()
                .to_string()
                .contains("stable-windw")
        );
        let mut options = SimulationOptions::default();
        options.annotations.insert("window".into(), "3s".into());
        let err = simulate(&trace, &options).unwrap_err().to_string();
        assert!(
            err.contains("autoscaling.knative.dev/window") && err.contains("6s to 1h"),
            "{err}"
        );
    }
}
