//! Scenarios: small YAML files (`loadtests/scenarios/*.yaml`) describing a load test as a list
//! of phases run in order, read into a checked [`Scenario`] for the runner.
//!
//! # Format
//!
//! ```yaml
//! name: scale-to-zero            # a DNS label; names the report
//! description: Idle, a burst from zero, a ramp, a hold, then back to zero.
//! target:
//!   gateway: 127.0.0.1:8080      # optional (default: the runner's `wisp up`); loopback only
//!   service: sleep               # or `host: sleep.default.localhost`,
//!   namespace: default           #    or `services: {prefix: many, count: 20, namespace: default,
//!   path: /?ms=50                #                   template: ../../samples/knative/hello.yaml}`
//! manifests:                     # optional: applied before the first phase
//!   - ../../samples/knative/sleep.yaml
//! autoscaling:                   # optional config-autoscaler overrides
//!   stable-window: 6s
//!   scale-to-zero-grace-period: 2s
//! phases:                        # each phase is a mapping with ONE key naming its kind
//!   - idle: 5s
//!   - burst: {requests: 20}                          # 20 concurrent requests at once
//!   - ramp: {from: 1, to: 30, duration: 20s}          # open loop, rate changes linearly
//!   - constant: {rate: 30, duration: 30s}             # open loop (requests/s)
//!   - constant: {concurrency: 4, duration: 10s}       # closed loop (workers)
//!   - step: {rates: [100, 200, 300], hold: 10s}       # each rate held 10s
//!   - wait-for: {replicas: 0, timeout: 90s}           # until the revision has 0 replicas
//!   - apply: manifests/hello-v2.yaml                  # e.g. a new revision, mid-load
//! ```
//!
//! Durations are whole numbers with units `ms`, `s`, `m`, `h`, possibly joined (`1m30s`).
//! Relative paths are relative to the scenario file. Unknown keys are errors everywhere.
//!
//! Why one key per phase rather than a `kind:` field: a phase reads as what it does
//! (`- idle: 5s`), and its settings are a mapping of their own, so a mistyped setting is
//! reported at its own line.
//!
//! # Errors
//!
//! Every value is checked while it is read, so an error names the file, line and column of the
//! offending phase or value (see `values` for how), says what is wrong and what to write:
//! `step.yaml:12:21: phases[2].constant.rate: rate -5 is negative; write a number of requests
//! per second above 0, e.g. 10`.

mod autoscaling;
mod duration;
mod phase;
mod target;
pub(crate) mod values;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

pub use autoscaling::Autoscaling;
pub use duration::{DurationError, format_duration, parse_duration};
pub use phase::{Burst, Constant, Load, PHASE_KINDS, Phase, Ramp, Step, WaitFor};
pub use target::{DOMAIN, ManyServices, ScenarioTarget, TargetServices, service_host};

/// A checked scenario: what the runner executes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Scenario {
    /// A DNS label; it names the report.
    #[serde(deserialize_with = "scenario_name")]
    pub name: String,
    /// What the scenario shows, for people reading the report.
    #[serde(deserialize_with = "description")]
    pub description: String,
    /// Where the load goes.
    pub target: ScenarioTarget,
    /// Manifests applied before the first phase, in order.
    #[serde(default, deserialize_with = "manifests")]
    pub manifests: Vec<PathBuf>,
    /// `config-autoscaler` overrides for the `wisp up` the runner starts.
    #[serde(default)]
    pub autoscaling: Autoscaling,
    /// What to do, in order (at least one).
    #[serde(deserialize_with = "phases")]
    pub phases: Vec<Phase>,
}

/// What a scenario plans, before running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Requests sent by open-loop phases and bursts.
    pub scheduled_requests: u64,
    /// Closed-loop phases, whose request counts come on top (they depend on the target).
    pub closed_loop_phases: usize,
    /// Time the phases' schedules take (load and idle); bursts, waits and applies count as 0.
    pub planned: Duration,
    /// `planned` plus every `wait-for` timeout: the longest the phases may take on schedule.
    pub max: Duration,
}

impl Scenario {
    /// The plan of the whole scenario, phase by phase.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            scheduled_requests: 0,
            closed_loop_phases: 0,
            planned: Duration::ZERO,
            max: Duration::ZERO,
        };
        for phase in &self.phases {
            match phase.scheduled_requests() {
                Some(requests) => totals.scheduled_requests += requests,
                None => totals.closed_loop_phases += 1,
            }
            totals.planned += phase.planned_duration();
            totals.max += phase.planned_duration() + phase.max_wait();
        }
        totals
    }

    /// Requests the scenario sends, or `None` when a closed-loop phase makes it unknowable.
    pub fn expected_requests(&self) -> Option<u64> {
        let totals = self.totals();
        (totals.closed_loop_phases == 0).then_some(totals.scheduled_requests)
    }

    /// Time the phases take on schedule (see [`Totals::planned`]).
    pub fn duration(&self) -> Duration {
        self.totals().planned
    }

    /// Every manifest path the scenario refers to: `manifests`, the many-services template and
    /// `apply` phases, in the order they are used.
    pub fn manifest_paths(&self) -> Vec<&Path> {
        let mut paths: Vec<&Path> = self.manifests.iter().map(PathBuf::as_path).collect();
        if let TargetServices::Many(ManyServices {
            template: Some(template),
            ..
        }) = &self.target.services
        {
            paths.push(template);
        }
        paths.extend(self.phases.iter().filter_map(|phase| match phase {
            Phase::Apply(path) => Some(path.as_path()),
            _ => None,
        }));
        paths
    }

    /// Makes relative manifest paths relative to `dir` (the scenario file's directory).
    fn resolve_paths(&mut self, dir: &Path) {
        let resolve = |path: &mut PathBuf| {
            if path.is_relative() {
                *path = dir.join(&*path);
            }
        };
        self.manifests.iter_mut().for_each(resolve);
        if let TargetServices::Many(ManyServices {
            template: Some(template),
            ..
        }) = &mut self.target.services
        {
            resolve(template);
        }
        for phase in &mut self.phases {
            if let Phase::Apply(path) = phase {
                resolve(path);
            }
        }
    }
}

/// A scenario file that cannot be used, located as precisely as the parser knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The path as given, for messages.
    pub file: String,
    /// 1-based line and column of the offending phase or value, when known.
    pub line: Option<usize>,
    /// 1-based column, with `line`.
    pub column: Option<usize>,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "{}:{line}:{column}: ", self.file)?,
            (Some(line), None) => write!(f, "{}:{line}: ", self.file)?,
            _ => write!(f, "{}: ", self.file)?,
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScenarioError {}

impl ScenarioError {
    pub(crate) fn from_yaml(file: &str, error: &serde_norway::Error) -> Self {
        let mut message = error.to_string();
        let location = error.location();
        if let Some(location) = &location {
            // The position goes in front, compiler-style, so it is not repeated at the end.
            let suffix = format!(" at line {} column {}", location.line(), location.column());
            if let Some(start) = message.find(&suffix) {
                message.replace_range(start..start + suffix.len(), "");
            }
        }
        Self {
            file: file.to_owned(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message,
        }
    }
}

/// Parses and checks `text`, the contents of the scenario file called `file` (for messages).
/// Relative paths are left as written.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    serde_norway::from_str(text).map_err(|error| ScenarioError::from_yaml(file, &error))
}

/// Reads, parses and checks the scenario file at `path`; relative manifest paths are made
/// relative to its directory.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let (file, text) = read(path, "a scenario file, e.g. loadtests/scenarios/step.yaml")?;
    let mut scenario = parse(&file, &text)?;
    if let Some(dir) = path.parent() {
        scenario.resolve_paths(dir);
    }
    Ok(scenario)
}

/// The file at `path` as `(its name for messages, its text)`; `what` says what it should be.
pub(crate) fn read(path: &Path, what: &str) -> Result<(String, String), ScenarioError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((file, text)),
        Err(error) => Err(ScenarioError {
            file,
            line: None,
            column: None,
            message: format!("cannot read it ({error}); give the path of {what}"),
        }),
    }
}

pub(crate) fn scenario_name<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    values::label(
        deserializer,
        "name",
        wisp_api::names::validate_dns1123_label,
    )
}

pub(crate) fn description<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    values::non_empty(
        deserializer,
        "the description",
        "`description: Idle, then a burst from zero.`",
    )
}

fn manifests<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<PathBuf>, D::Error> {
    struct ManifestPath(PathBuf);
    impl<'de> Deserialize<'de> for ManifestPath {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            values::non_empty(
                deserializer,
                "the manifest path",
                "../../samples/knative/hello.yaml",
            )
            .map(|path| ManifestPath(PathBuf::from(path)))
        }
    }
    Vec::<ManifestPath>::deserialize(deserializer)
        .map(|paths| paths.into_iter().map(|ManifestPath(path)| path).collect())
}

fn phases<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Phase>, D::Error> {
    struct PhasesVisitor;
    impl<'de> Visitor<'de> for PhasesVisitor {
        type Value = Vec<Phase>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of phases, e.g. `- idle: 10s`")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Phase>, A::Error> {
            let mut phases = Vec::new();
            while let Some(phase) = seq.next_element()? {
                phases.push(phase);
            }
            if phases.is_empty() {
                return Err(de::Error::custom(
                    "there are no phases; add at least one, e.g. `- constant: {rate: 10, duration: 10s}`",
                ));
            }
            Ok(phases)
        }
    }
    deserializer.deserialize_seq(PhasesVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name: t\ndescription: a test\ntarget:\n  service: hello\nphases:\n";

    fn scenario(phases: &str) -> Result<Scenario, ScenarioError> {
        parse("t.yaml", &format!("{MINIMAL}{phases}"))
    }

    #[test]
    fn reads_a_scenario_and_sums_its_plan() {
        let scenario = scenario(
            "  - idle: 5s\n  - burst: {requests: 20}\n  - ramp: {from: 0, to: 10, duration: 10s}\n  \
             - wait-for: {replicas: 0, timeout: 1m}\n  - constant: {rate: 10, duration: 3s}\n",
        )
        .unwrap();
        assert_eq!(scenario.name, "t");
        assert_eq!(scenario.target.hosts(), ["hello.default.localhost"]);
        assert_eq!(scenario.phases.len(), 5);
        assert_eq!(
            scenario.totals(),
            Totals {
                scheduled_requests: 20 + 50 + 30,
                closed_loop_phases: 0,
                planned: Duration::from_secs(18),
                max: Duration::from_secs(78),
            }
        );
        assert_eq!(scenario.expected_requests(), Some(100));
        assert_eq!(scenario.duration(), Duration::from_secs(18));

        let closed = self::scenario("  - constant: {concurrency: 2, duration: 1s}\n").unwrap();
        assert_eq!(closed.expected_requests(), None);
        assert_eq!(closed.totals().closed_loop_phases, 1);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let error = scenario("  - idle: 5s\n  - constant: {rate: -5, duration: 1s}\n").unwrap_err();
        assert_eq!((error.line, error.column), (Some(7), Some(22)));
        assert!(
            error
                .to_string()
                .starts_with("t.yaml:7:22: phases[1].constant.rate: rate -5 is negative"),
            "{error}"
        );
        assert!(!error.message.contains(" at line "), "{error}");

        let error = scenario("  - idle: 5s\n  - sprint: 5s\n").unwrap_err();
        assert_eq!(error.line, Some(7), "{error}");
        assert!(error.message.contains("unknown phase `sprint`"), "{error}");

        let error = parse("t.yaml", "name: t\n").unwrap_err();
        assert!(error.message.contains("missing field"), "{error}");
    }

    #[test]
    fn top_level_rules() {
        let error = scenario("  []\n").unwrap_err();
        assert!(error.message.contains("there are no phases"), "{error}");
        let error = parse("t.yaml", &format!("extra: 1\n{MINIMAL}  - idle: 1s\n")).unwrap_err();
        assert_eq!(error.line, Some(1), "{error}");
        assert!(error.message.contains("unknown field `extra`"), "{error}");
        let error = scenario("  - idle: 1s\n\t- idle: 2s\n").unwrap_err();
        assert_eq!(error.line, Some(7), "{error}");
        let error = parse("t.yaml", &MINIMAL.replace("name: t", "name: T_1")).unwrap_err();
        assert!(
            error.message.contains("name \"T_1\" is not valid"),
            "{error}"
        );
    }

    #[test]
    fn load_resolves_paths_next_to_the_file() {
        let dir = std::env::temp_dir().join(format!("wisp-scenario-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.yaml");
        std::fs::write(
            &path,
            format!("{MINIMAL}  - apply: v2.yaml\n  - apply: /abs.yaml\n")
                .replace("phases:", "manifests: [v1.yaml]\nphases:"),
        )
        .unwrap();
        let scenario = load(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            scenario.manifest_paths(),
            [
                dir.join("v1.yaml").as_path(),
                &dir.join("v2.yaml"),
                Path::new("/abs.yaml")
            ]
        );
        let missing = load(&dir.join("none.yaml")).unwrap_err();
        assert!(missing.message.contains("cannot read it"), "{missing}");
    }
}
