//! The soak plan (`loadtests/scenarios/soak.yaml`): Services under steady load side by side for
//! a long time, with events on their own clocks — a new revision every so often, a Service
//! scaled to zero and back, one `kill -9` of `wisp up` — read and checked like a scenario file
//! (errors name the file, line and column).
//!
//! ```yaml
//! name: soak
//! description: Steady load on three Services beside a hostile one, for ten minutes.
//! duration: 10m
//! kill-at: 5m                      # optional: `wisp up` is killed (SIGKILL) and restarted then
//! rss-limit-mib: 1024              # the run fails if wisp up's RSS ever goes above it
//! autoscaling: {stable-window: 6s, scale-to-zero-grace-period: 2s}
//! services:
//!   - service: hello               # its name (namespace: default unless given)
//!     manifest: ../../samples/knative/hello.yaml
//!     load: [{path: /, rate: 20}]  # open loop, requests per second, one stream per entry
//!     rollout-every: 30s           # optional: a new revision this often
//!   - service: sleep
//!     manifest: ../../samples/knative/sleep.yaml
//!     load: [{path: /?ms=20, rate: 20}]
//!     scale-to-zero-every: 1m      # optional: load paused half of each period, until zero
//!   - service: hostile
//!     manifest: manifests/hostile.yaml
//!     expect: failures             # its requests fail by design: any HTTP answer is delivered
//!     load: [{path: /?what=trap, rate: 2}]
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::Deserializer;

use crate::scenario::values::{self, Checked, deserialize_checked};
use crate::scenario::{Autoscaling, ScenarioError, format_duration, service_host};

/// The shortest scale-to-zero period: half of it is without load, which must cover Knative's
/// shortest stable window (6 s), the grace period and the last replica's drain.
pub const MIN_SCALE_TO_ZERO_EVERY: Duration = Duration::from_secs(20);

/// The most requests a plan may schedule: every one is recorded (24 bytes) until the report.
pub const MAX_SCHEDULED_REQUESTS: u64 = 20_000_000;

/// A checked soak plan.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SoakPlan {
    /// A DNS label; it names the report.
    #[serde(deserialize_with = "crate::scenario::scenario_name")]
    pub name: String,
    #[serde(deserialize_with = "crate::scenario::description")]
    pub description: String,
    /// How long the load lasts.
    #[serde(deserialize_with = "values::span")]
    pub duration: Duration,
    /// When (from the start of the load) `wisp up` is killed with SIGKILL and started again.
    #[serde(default, deserialize_with = "some_span")]
    pub kill_at: Option<Duration>,
    /// The most resident memory `wisp up` may use at any sample, in MiB.
    #[serde(deserialize_with = "rss_limit")]
    pub rss_limit_mib: u32,
    /// `config-autoscaler` overrides.
    #[serde(default)]
    pub autoscaling: Autoscaling,
    /// The Services, each with its own load and events.
    pub services: Vec<SoakService>,
}

/// One Service of the soak.
#[derive(Debug, Clone, PartialEq)]
pub struct SoakService {
    pub name: String,
    pub namespace: String,
    /// The Knative Service manifest applied at the start; relative to the plan's file.
    pub manifest: PathBuf,
    /// Open-loop request streams, each at its own rate.
    pub load: Vec<Stream>,
    /// What its requests should get.
    pub expect: Expect,
    /// A new revision this often (a changed template annotation), if set.
    pub rollout_every: Option<Duration>,
    /// Its load pauses for the second half of each such period, until it is at zero replicas.
    pub scale_to_zero_every: Option<Duration>,
}

impl SoakService {
    /// The Host header that routes to it through the gateway.
    pub fn host(&self) -> String {
        service_host(&self.name, &self.namespace)
    }
}

/// One open-loop stream: `{path: /, rate: 20}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    #[serde(deserialize_with = "request_path")]
    pub path: String,
    /// Requests per second.
    #[serde(deserialize_with = "stream_rate")]
    pub rate: f64,
}

/// What a Service's requests should get.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// A 2xx answer; anything else is a lost request.
    #[default]
    Success,
    /// They are hostile and fail by design: any HTTP answer is delivered, only requests that
    /// get none are lost.
    Failures,
}

/// The mapping as written, before `check`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawService {
    #[serde(deserialize_with = "service_name")]
    service: String,
    #[serde(default, deserialize_with = "namespace")]
    namespace: Option<String>,
    #[serde(deserialize_with = "manifest")]
    manifest: String,
    load: Vec<Stream>,
    #[serde(default)]
    expect: Expect,
    #[serde(default, deserialize_with = "some_span")]
    rollout_every: Option<Duration>,
    #[serde(default, deserialize_with = "some_span")]
    scale_to_zero_every: Option<Duration>,
}

impl Checked for SoakService {
    type Raw = RawService;
    const EXPECTING: &'static str = "a Service mapping such as {service: hello, manifest: hello.yaml, load: [{path: /, rate: 10}]}";

    fn check(raw: RawService) -> Result<Self, String> {
        if raw.load.is_empty() {
            return Err(format!(
                "Service {} has no load; write e.g. `load: [{{path: /, rate: 10}}]`",
                raw.service
            ));
        }
        if let Some(every) = raw.scale_to_zero_every
            && every < MIN_SCALE_TO_ZERO_EVERY
        {
            return Err(format!(
                "scale-to-zero-every {} is too short: half of it is without load, which must \
                 cover the stable window and the grace period; write at least {}",
                format_duration(every),
                format_duration(MIN_SCALE_TO_ZERO_EVERY)
            ));
        }
        Ok(SoakService {
            name: raw.service,
            namespace: raw.namespace.unwrap_or_else(|| "default".to_owned()),
            manifest: PathBuf::from(raw.manifest),
            load: raw.load,
            expect: raw.expect,
            rollout_every: raw.rollout_every,
            scale_to_zero_every: raw.scale_to_zero_every,
        })
    }
}

impl<'de> Deserialize<'de> for SoakService {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_checked(deserializer)
    }
}

/// Shorter timings for a quick run of a long plan (the test's, or `wisp-loadtests soak
/// --duration 2m …`): each one given replaces the plan's, for every Service that has that event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overrides {
    pub duration: Option<Duration>,
    pub kill_at: Option<Duration>,
    pub rollout_every: Option<Duration>,
    pub scale_to_zero_every: Option<Duration>,
}

impl SoakPlan {
    /// The plan with `overrides` applied, checked again.
    pub fn with(mut self, overrides: Overrides) -> Result<Self, String> {
        if let Some(duration) = overrides.duration {
            self.duration = duration;
        }
        if let Some(kill_at) = overrides.kill_at {
            self.kill_at = Some(kill_at);
        }
        for service in &mut self.services {
            if let (Some(_), Some(every)) = (service.rollout_every, overrides.rollout_every) {
                service.rollout_every = Some(every);
            }
            if let (Some(_), Some(every)) =
                (service.scale_to_zero_every, overrides.scale_to_zero_every)
            {
                service.scale_to_zero_every = Some(every);
            }
        }
        self.check()?;
        Ok(self)
    }

    /// The rules across fields (each field's own rules were checked while reading it).
    fn check(&self) -> Result<(), String> {
        if self.services.is_empty() {
            return Err("there are no services; add at least one under `services:`".into());
        }
        let mut seen = BTreeSet::new();
        for service in &self.services {
            if !seen.insert((&service.namespace, &service.name)) {
                return Err(format!(
                    "Service {}/{} is listed twice; give each a name of its own",
                    service.namespace, service.name
                ));
            }
            if let Some(every) = service.scale_to_zero_every
                && every < MIN_SCALE_TO_ZERO_EVERY
            {
                return Err(format!(
                    "{}: scale-to-zero-every {} is too short; write at least {}",
                    service.name,
                    format_duration(every),
                    format_duration(MIN_SCALE_TO_ZERO_EVERY)
                ));
            }
        }
        if self.scheduled_requests() > MAX_SCHEDULED_REQUESTS {
            return Err(format!(
                "the plan schedules {} requests, more than the {MAX_SCHEDULED_REQUESTS} a soak \
                 keeps a record of; lower the rates or the duration",
                self.scheduled_requests()
            ));
        }
        if !self.services.iter().any(|s| s.expect == Expect::Success) {
            return Err(
                "no Service expects success, so nothing shows the others are unharmed; add one \
                 without `expect: failures`"
                    .into(),
            );
        }
        if let Some(kill_at) = self.kill_at
            && kill_at >= self.duration
        {
            return Err(format!(
                "kill-at {} is not before the end of the load ({}); kill it earlier",
                format_duration(kill_at),
                format_duration(self.duration)
            ));
        }
        Ok(())
    }

    /// Requests the plan schedules (every stream for the whole duration, pauses not counted).
    pub fn scheduled_requests(&self) -> u64 {
        let seconds = self.duration.as_secs_f64();
        self.services
            .iter()
            .flat_map(|service| &service.load)
            .map(|stream| (stream.rate * seconds).ceil() as u64)
            .sum()
    }

    /// Makes relative manifest paths relative to `dir`.
    fn resolve_paths(&mut self, dir: &Path) {
        for service in &mut self.services {
            if service.manifest.is_relative() {
                service.manifest = dir.join(&service.manifest);
            }
        }
    }
}

/// Parses and checks `text`, the soak plan called `file` (for messages).
pub fn parse(file: &str, text: &str) -> Result<SoakPlan, ScenarioError> {
    let plan: SoakPlan =
        serde_norway::from_str(text).map_err(|error| ScenarioError::from_yaml(file, &error))?;
    plan.check().map_err(|message| ScenarioError {
        file: file.to_owned(),
        line: None,
        column: None,
        message,
    })?;
    Ok(plan)
}

/// Reads, parses and checks the soak plan at `path`; manifest paths made relative to its directory.
pub fn load(path: &Path) -> Result<SoakPlan, ScenarioError> {
    let (file, text) =
        crate::scenario::read(path, "a soak plan, e.g. loadtests/scenarios/soak.yaml")?;
    let mut plan = parse(&file, &text)?;
    if let Some(dir) = path.parent() {
        plan.resolve_paths(dir);
    }
    Ok(plan)
}

fn service_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    values::label(
        deserializer,
        "service",
        wisp_api::names::validate_dns1035_label,
    )
}

fn namespace<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    values::label(
        deserializer,
        "namespace",
        wisp_api::names::validate_dns1123_label,
    )
    .map(Some)
}

fn manifest<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    values::non_empty(
        deserializer,
        "the manifest path",
        "../../samples/knative/hello.yaml",
    )
}

fn request_path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let path = values::non_empty(deserializer, "the request path", "/?ms=20")?;
    if !path.starts_with('/') {
        return Err(serde::de::Error::custom(format!(
            "path {path:?} does not start with `/`; write e.g. /{path}"
        )));
    }
    Ok(path)
}

fn stream_rate<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    values::rate(deserializer, false)
}

fn some_span<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    values::span(deserializer).map(Some)
}

fn rss_limit<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    values::count(deserializer, "rss-limit-mib", 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = "name: s\ndescription: a soak\nduration: 1m\nrss-limit-mib: 512\n\
                        services:\n  - service: hello\n    manifest: hello.yaml\n    \
                        load: [{path: /, rate: 10}]\n    rollout-every: 30s\n";

    #[test]
    fn reads_a_plan_and_counts_its_requests() {
        let plan = parse("s.yaml", PLAN).unwrap();
        assert_eq!(plan.duration, Duration::from_secs(60));
        assert_eq!(plan.services[0].host(), "hello.default.localhost");
        assert_eq!(plan.services[0].expect, Expect::Success);
        assert_eq!(plan.scheduled_requests(), 600);
        assert_eq!(plan.kill_at, None);
    }

    #[test]
    fn overrides_replace_only_the_events_a_service_has() {
        let plan = parse("s.yaml", PLAN).unwrap();
        let short = plan
            .with(Overrides {
                duration: Some(Duration::from_secs(20)),
                kill_at: Some(Duration::from_secs(10)),
                rollout_every: Some(Duration::from_secs(5)),
                scale_to_zero_every: Some(Duration::from_secs(30)),
            })
            .unwrap();
        assert_eq!(short.kill_at, Some(Duration::from_secs(10)));
        assert_eq!(
            short.services[0].rollout_every,
            Some(Duration::from_secs(5))
        );
        assert_eq!(short.services[0].scale_to_zero_every, None);
        let late = short.with(Overrides {
            kill_at: Some(Duration::from_secs(20)),
            ..Overrides::default()
        });
        assert!(late.unwrap_err().contains("kill-at 20s is not before"));
    }

    #[test]
    fn mistakes_are_named_where_they_are() {
        let error = parse("s.yaml", &PLAN.replace("rate: 10", "rate: -1")).unwrap_err();
        assert_eq!(error.line, Some(8), "{error}");
        assert!(error.message.contains("rate -1 is negative"), "{error}");
        let error = parse("s.yaml", &PLAN.replace("path: /", "path: x")).unwrap_err();
        assert!(error.message.contains("does not start with `/`"), "{error}");
        let error = parse(
            "s.yaml",
            &PLAN.replace("rollout-every: 30s", "scale-to-zero-every: 5s"),
        )
        .unwrap_err();
        assert!(error.message.contains("too short"), "{error}");
        let error = parse(
            "s.yaml",
            &PLAN.replace("rollout-every: 30s", "expect: failures"),
        )
        .unwrap_err();
        assert!(
            error.message.contains("no Service expects success"),
            "{error}"
        );
        let error = parse(
            "s.yaml",
            &PLAN.replace("load: [{path: /, rate: 10}]", "load: []"),
        )
        .unwrap_err();
        assert!(error.message.contains("has no load"), "{error}");
        let error = parse("s.yaml", &PLAN.replace("rate: 10", "rate: 1000000")).unwrap_err();
        assert!(error.message.contains("more than the 20000000"), "{error}");
    }
}
