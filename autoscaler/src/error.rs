//! Errors a user can cause: bad configuration values, bad annotations, bad traces.

use thiserror::Error;

/// A `config-autoscaler` value or a revision annotation that Knative would reject.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    #[error(
        "{key} = {value:?} is invalid: it must be {allowed}; fix the value or remove the key to get the default"
    )]
    Invalid {
        key: String,
        value: String,
        allowed: String,
    },
    #[error("unknown key {key:?}: it is not one of {known}; check the spelling")]
    UnknownKey { key: String, known: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, value: &str, allowed: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }
}

/// Why a demand trace could not be replayed.
#[derive(Debug, Error)]
pub enum SimulateError {
    #[error(
        "trace line {line}: {problem}; each line after the header must be `t,value` with t in whole seconds, increasing"
    )]
    Trace { line: usize, problem: String },
    #[error("trace header is {found:?}; the first line must be `t,concurrency` or `t,rps`")]
    Header { found: String },
    #[error("the trace has no data lines; add lines like `0,10` after the header")]
    EmptyTrace,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "the trace measures {trace} but the revision scales on {metric}; set the annotation metric={trace} or use a `t,{metric}` trace"
    )]
    MetricMismatch {
        trace: &'static str,
        metric: &'static str,
    },
    #[error("--startup-ms {0} is too large; use at most 3600000 (one hour)")]
    Startup(u64),
}
