//! Scenario files: the shipped ones load and plan what they say; broken ones are rejected with
//! the line of the mistake. Nothing here plays a scenario: `scenarios_shipped.rs` does that.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wisp_loadtests::scenario::{
    self, Burst, Constant, Load, Phase, Ramp, Scenario, ScenarioError, Step, TargetServices,
    Totals, WaitFor,
};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn shipped(name: &str) -> Scenario {
    let path = scenarios_dir().join(format!("{name}.yaml"));
    scenario::load(&path).unwrap_or_else(|error| panic!("{error}"))
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Writes `text` to a scenario file of its own and loads it.
fn load_text(name: &str, text: &str) -> ScenarioError {
    let dir = std::env::temp_dir().join(format!("wisp-scenarios-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    let result = scenario::load(&path);
    std::fs::remove_file(&path).unwrap();
    // Other tests may still be using the directory; the last one out removes it.
    let _ = std::fs::remove_dir(&dir);
    let error = result.expect_err("the scenario should be rejected");
    assert_eq!(error.file, path.display().to_string());
    error
}

const GOOD: &str = "\
name: broken
description: one mistake per test
target:
  gateway: 127.0.0.1:8080
  service: hello
phases:
  - idle: 1s
  - burst: {requests: 10}
  - constant:
      rate: 20
      duration: 5s
";

#[test]
fn broken_files_are_rejected_at_the_line_of_the_mistake() {
    // Unknown phase, at the phase's line (8).
    let error = load_text(
        "unknown",
        &GOOD.replace("burst: {requests: 10}", "spike: 10"),
    );
    assert_eq!(error.line, Some(8), "{error}");
    assert!(error.message.contains("unknown phase `spike`"), "{error}");
    assert!(
        error
            .message
            .contains("write one of constant, ramp, step, burst"),
        "{error}"
    );
    assert!(error.to_string().contains(":8:"), "{error}");

    // Negative rate, at the value's line (10) and column.
    let error = load_text("negative", &GOOD.replace("rate: 20", "rate: -20"));
    assert_eq!((error.line, error.column), (Some(10), Some(13)), "{error}");
    assert!(error.message.contains("rate -20 is negative"), "{error}");
    assert!(error.message.contains("above 0"), "{error}");

    // Non-loopback targets, at the gateway's line (4).
    for (gateway, expected) in [
        ("10.0.0.1:8080", "10.0.0.1 is not a loopback address"),
        ("example.com:80", "host names are not resolved"),
    ] {
        let text = GOOD.replace("127.0.0.1:8080", gateway);
        let error = load_text("remote", &text);
        assert_eq!((error.line, error.column), (Some(4), Some(12)), "{error}");
        assert!(error.message.contains(expected), "{error}");
        assert!(
            error.message.contains("write e.g. 127.0.0.1:8080"),
            "{error}"
        );
    }

    // An unknown setting and a zero duration, each at its own line.
    let error = load_text("field", &GOOD.replace("rate: 20", "rps: 20"));
    assert_eq!(error.line, Some(10), "{error}");
    assert!(error.message.contains("unknown field `rps`"), "{error}");
    let error = load_text("zero", &GOOD.replace("duration: 5s", "duration: 0s"));
    assert_eq!(error.line, Some(11), "{error}");
    assert!(error.message.contains("is zero"), "{error}");

    // A burst of nothing and a ramp below zero.
    let error = load_text("burst", &GOOD.replace("requests: 10", "requests: 0"));
    assert_eq!(error.line, Some(8), "{error}");
    let error = load_text(
        "ramp",
        &GOOD.replace(
            "burst: {requests: 10}",
            "ramp: {from: 10, to: -1, duration: 5s}",
        ),
    );
    assert_eq!(error.line, Some(8), "{error}");
    assert!(error.message.contains("rate -1 is negative"), "{error}");
}

/// The soak plans among the scenario files: a format of their own (`wisp-loadtests soak`).
const SOAK_PLANS: &[&str] = &["soak"];

#[test]
fn every_shipped_scenario_loads_and_its_manifests_exist() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if SOAK_PLANS.contains(&stem.as_str()) {
            let plan =
                wisp_loadtests::soak::plan::load(&path).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(plan.name, stem, "the name matches the file");
            for service in &plan.services {
                assert!(
                    service.manifest.is_file(),
                    "{stem}: {}",
                    service.manifest.display()
                );
            }
            continue;
        }
        if path.extension().is_some_and(|ext| ext == "yaml") {
            let scenario = scenario::load(&path).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(scenario.name, stem, "the name matches the file");
            for manifest in scenario.manifest_paths() {
                assert!(manifest.is_file(), "{}: {}", stem, manifest.display());
            }
            names.push(stem);
        }
    }
    names.sort();
    assert_eq!(names, ["many-services", "rollout", "scale-to-zero", "step"]);
}

#[test]
fn the_scale_to_zero_file_reads_as_a_plan_from_zero_up_and_back() {
    let scenario = shipped("scale-to-zero");
    assert_eq!(scenario.target.hosts(), ["sleep.default.localhost"]);
    assert_eq!(scenario.target.path, "/?ms=100");
    assert_eq!(scenario.target.gateway, None);
    assert_eq!(
        scenario.autoscaling.config_map_data().get("stable-window"),
        Some(&"6s".to_owned())
    );
    let zero = |timeout| {
        Phase::WaitFor(WaitFor {
            replicas: 0,
            timeout: secs(timeout),
        })
    };
    assert_eq!(
        scenario.phases,
        [
            Phase::Idle(secs(2)),
            zero(60),
            Phase::Burst(Burst { requests: 20 }),
            Phase::Ramp(Ramp {
                from: 5.0,
                to: 150.0,
                duration: secs(20)
            }),
            Phase::Constant(Constant {
                load: Load::Rate(150.0),
                duration: secs(20)
            }),
            zero(90),
            Phase::Burst(Burst { requests: 20 }),
        ]
    );
    assert_eq!(
        scenario.totals(),
        Totals {
            scheduled_requests: 20 + 1550 + 3000 + 20,
            closed_loop_phases: 0,
            planned: secs(42),
            max: secs(42 + 60 + 90),
        }
    );
}

#[test]
fn the_step_file_reads_as_three_rates_from_zero() {
    let scenario = shipped("step");
    assert_eq!(scenario.target.hosts(), ["hello.default.localhost"]);
    assert_eq!(
        scenario.phases[1],
        Phase::Step(Step {
            rates: vec![100.0, 200.0, 300.0],
            hold: secs(10)
        })
    );
    assert_eq!(scenario.expected_requests(), Some(6000));
    assert_eq!(scenario.duration(), secs(30));
}

#[test]
fn rollout_applies_a_new_revision_under_steady_load() {
    let scenario = shipped("rollout");
    let kinds: Vec<&str> = scenario.phases.iter().map(Phase::kind).collect();
    assert_eq!(kinds, ["constant", "apply", "constant"]);
    let Phase::Apply(manifest) = &scenario.phases[1] else {
        panic!("the second phase applies");
    };
    assert!(manifest.ends_with("manifests/hello-v2.yaml"));
    assert!(
        manifest.starts_with(scenarios_dir()),
        "resolved next to the file"
    );
    assert_eq!(scenario.expected_requests(), Some(1000));
    assert_eq!(scenario.duration(), secs(20));
}

#[test]
fn many_services_hits_each_once() {
    let scenario = shipped("many-services");
    let TargetServices::Many(many) = &scenario.target.services else {
        panic!("many services");
    };
    assert_eq!(many.count, 50);
    let hosts = scenario.target.hosts();
    assert_eq!(hosts.len(), 50);
    assert_eq!(hosts[0], "many-1.default.localhost");
    assert_eq!(hosts[49], "many-50.default.localhost");
    assert_eq!(scenario.phases[1], Phase::Burst(Burst { requests: 50 }));
    assert_eq!(scenario.expected_requests(), Some(u64::from(many.count)));
}

/// Found by the `scenario_files` fuzz target: a file with old Mac line endings (a lone `\r`),
/// or Unicode's line and paragraph separators, is located by the YAML parser's own line count,
/// in which each of those ends a line — the line an editor that honours them shows — not by
/// `str::lines`, which knows only LF.
#[test]
fn mistakes_in_a_file_with_carriage_return_line_endings_are_located_by_yamls_lines() {
    let cr_only = GOOD.replace("rate: 20", "rate: -20").replace('\n', "\r");
    let error = scenario::parse("cr.yaml", &cr_only).expect_err("the rate is negative");
    assert_eq!((error.line, error.column), (Some(10), Some(13)), "{error}");
    assert_eq!(cr_only.lines().count(), 1, "str::lines sees one line");

    for separator in ['\u{2028}', '\u{2029}', '\u{85}'] {
        let separated = GOOD
            .replace("rate: 20", "rate: -20")
            .replace('\n', &separator.to_string());
        let error = scenario::parse("ls.yaml", &separated).expect_err("the rate is negative");
        assert_eq!(error.line, Some(10), "{separator:?}: {error}");
    }

    let crlf = GOOD.replace("rate: 20", "rate: -20").replace('\n', "\r\n");
    let error = scenario::parse("crlf.yaml", &crlf).expect_err("the rate is negative");
    assert_eq!((error.line, error.column), (Some(10), Some(13)), "{error}");
}
