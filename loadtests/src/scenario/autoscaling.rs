//! The `autoscaling:` settings a scenario asks `wisp up` to run with (short windows, so a demo
//! scales to zero in seconds rather than Knative's minute), as `config-autoscaler` keys.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::duration::{format_duration, parse_duration};
use super::values;

/// Knative's bounds on `stable-window` (whole seconds).
const WINDOW_MIN: Duration = Duration::from_secs(6);
const WINDOW_MAX: Duration = Duration::from_secs(3600);

/// Optional `config-autoscaler` overrides; unset ones keep the runner's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Autoscaling {
    /// `stable-window`: 6s to 1h in whole seconds.
    #[serde(default, deserialize_with = "stable_window")]
    pub stable_window: Option<Duration>,
    /// `scale-to-zero-grace-period`: above zero.
    #[serde(default, deserialize_with = "some_span")]
    pub scale_to_zero_grace_period: Option<Duration>,
}

impl Autoscaling {
    /// The settings as `config-autoscaler` ConfigMap data (Go-style durations such as `6s`).
    pub fn config_map_data(&self) -> BTreeMap<String, String> {
        let mut data = BTreeMap::new();
        if let Some(window) = self.stable_window {
            data.insert("stable-window".to_owned(), format_duration(window));
        }
        if let Some(grace) = self.scale_to_zero_grace_period {
            data.insert(
                "scale-to-zero-grace-period".to_owned(),
                format_duration(grace),
            );
        }
        data
    }
}

fn some_span<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    values::span(deserializer).map(Some)
}

fn stable_window<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    struct WindowVisitor;
    impl<'de> Visitor<'de> for WindowVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration from 6s to 1h in whole seconds")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            let window = parse_duration(text)
                .map_err(|error| E::custom(format!("duration {text:?} {error}")))?;
            if window < WINDOW_MIN || window > WINDOW_MAX || window.subsec_nanos() != 0 {
                return Err(E::custom(format!(
                    "stable-window {text:?} is outside what Knative allows; write a duration \
                     from 6s to 1h in whole seconds, e.g. 6s"
                )));
            }
            Ok(window)
        }
    }
    deserializer.deserialize_str(WindowVisitor).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_config_autoscaler_keys() {
        let settings: Autoscaling =
            serde_norway::from_str("{stable-window: 6s, scale-to-zero-grace-period: 1s500ms}")
                .unwrap();
        let data = settings.config_map_data();
        assert_eq!(data["stable-window"], "6s");
        assert_eq!(data["scale-to-zero-grace-period"], "1s500ms");
        assert!(Autoscaling::default().config_map_data().is_empty());
    }

    #[test]
    fn rejects_windows_knative_refuses() {
        for (yaml, expected) in [
            ("stable-window: 5s", "from 6s to 1h"),
            ("stable-window: 6s500ms", "whole seconds"),
            ("scale-to-zero-grace-period: 0s", "is zero"),
            ("panic-window: 1s", "unknown field `panic-window`"),
        ] {
            let message = serde_norway::from_str::<Autoscaling>(yaml)
                .unwrap_err()
                .to_string();
            assert!(message.contains(expected), "{yaml}: {message}");
        }
    }
}
