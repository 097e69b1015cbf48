//! Checked values: each is validated *inside* the serde visitor of its YAML node.
//!
//! Why inside: `serde_norway` stamps an error with the line and column of the node whose
//! `deserialize_*` call is running when the error is made. A check made after deserializing
//! would be stamped with an enclosing node (or nothing), so every check here happens in a
//! visitor: scalars in their own visitors, cross-field checks in [`deserialize_checked`], which
//! runs inside the mapping's visitor.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};

use super::duration::parse_duration;

/// A mapping read as the derived `Raw` type, then checked as a whole.
pub(crate) trait Checked: Sized {
    type Raw: DeserializeOwned;
    /// What the mapping is, for "invalid type: …, expected …" messages.
    const EXPECTING: &'static str;
    /// Whole-mapping rules; the message says what is wrong and what to write instead.
    fn check(raw: Self::Raw) -> Result<Self, String>;
}

/// Deserializes `T` from a mapping, reporting `T::check`'s error at the mapping's position.
pub(crate) fn deserialize_checked<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Checked,
{
    struct MappingVisitor<T>(PhantomData<T>);
    impl<'de, T: Checked> Visitor<'de> for MappingVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(T::EXPECTING)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = T::Raw::deserialize(MapAccessDeserializer::new(map))?;
            T::check(raw).map_err(de::Error::custom)
        }
    }
    deserializer.deserialize_map(MappingVisitor(PhantomData))
}

/// A rate in requests per second: finite and above zero, or (for ramp ends) zero as well.
pub(crate) fn rate<'de, D: Deserializer<'de>>(
    deserializer: D,
    allow_zero: bool,
) -> Result<f64, D::Error> {
    struct RateVisitor {
        allow_zero: bool,
    }
    impl RateVisitor {
        fn check<E: de::Error>(&self, value: f64) -> Result<f64, E> {
            let least = if self.allow_zero {
                "0 or more"
            } else {
                "above 0"
            };
            if !value.is_finite() {
                Err(E::custom(format!(
                    "rate {value} is not a number of requests per second; write a number {least}, e.g. 10"
                )))
            } else if value < 0.0 {
                Err(E::custom(format!(
                    "rate {value} is negative; write a number of requests per second {least}, e.g. 10"
                )))
            } else if value == 0.0 && !self.allow_zero {
                Err(E::custom(
                    "rate 0 sends nothing; write a rate above 0, or use an `idle` phase for a gap",
                ))
            } else {
                Ok(value)
            }
        }
    }
    impl<'de> Visitor<'de> for RateVisitor {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a rate in requests per second, e.g. 10")
        }
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<f64, E> {
            self.check(value)
        }
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<f64, E> {
            self.check(value as f64)
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<f64, E> {
            self.check(value as f64)
        }
    }
    deserializer.deserialize_f64(RateVisitor { allow_zero })
}

/// A whole number of at least `least` (a burst of 0, or concurrency 0, does nothing).
pub(crate) fn count<'de, D: Deserializer<'de>>(
    deserializer: D,
    what: &'static str,
    least: u32,
) -> Result<u32, D::Error> {
    struct CountVisitor {
        what: &'static str,
        least: u32,
    }
    impl CountVisitor {
        fn check<E: de::Error>(&self, value: i128) -> Result<u32, E> {
            let (what, least) = (self.what, self.least);
            match u32::try_from(value) {
                Ok(value) if value >= least => Ok(value),
                _ if value < i128::from(least) => Err(E::custom(format!(
                    "{what} {value} is too small; write a whole number of at least {least}"
                ))),
                _ => Err(E::custom(format!(
                    "{what} {value} is too large; write a whole number up to {}",
                    u32::MAX
                ))),
            }
        }
    }
    impl<'de> Visitor<'de> for CountVisitor {
        type Value = u32;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a whole number of at least {}", self.least)
        }
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<u32, E> {
            self.check(i128::from(value))
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<u32, E> {
            self.check(i128::from(value))
        }
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<u32, E> {
            Err(E::custom(format!(
                "{} {value} is not a whole number; write e.g. {}",
                self.what,
                self.least.max(10)
            )))
        }
    }
    deserializer.deserialize_any(CountVisitor { what, least })
}

/// A duration in the grammar of [`parse_duration`], above zero: every duration of a scenario
/// is a span something lasts or a time to wait, which zero makes meaningless.
pub(crate) fn span<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct SpanVisitor;
    impl<'de> Visitor<'de> for SpanVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as 10s, 500ms or 2m")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            let duration = parse_duration(text)
                .map_err(|error| E::custom(format!("duration {text:?} {error}")))?;
            if duration.is_zero() {
                return Err(E::custom(format!(
                    "duration {text:?} is zero; write a duration above zero, e.g. 10s (or remove the phase)"
                )));
            }
            Ok(duration)
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "duration {value} has no unit; write e.g. {value}s or {value}ms"
            )))
        }
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "duration {value} is not a duration; write e.g. 10s, 500ms or 2m"
            )))
        }
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "duration {value} is not a duration; write whole numbers with units, e.g. 1s500ms"
            )))
        }
    }
    deserializer.deserialize_str(SpanVisitor)
}

/// A non-empty string (a path or a name); `what` names it in the message.
pub(crate) fn non_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
    what: &'static str,
    example: &'static str,
) -> Result<String, D::Error> {
    struct TextVisitor {
        what: &'static str,
        example: &'static str,
    }
    impl<'de> Visitor<'de> for TextVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}, e.g. {}", self.what, self.example)
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
            if text.trim().is_empty() {
                return Err(E::custom(format!(
                    "{} is empty; write e.g. {}",
                    self.what, self.example
                )));
            }
            Ok(text.to_owned())
        }
    }
    deserializer.deserialize_str(TextVisitor { what, example })
}

/// A Kubernetes name checked by `validate` (a DNS label rule of `wisp_api::names`).
pub(crate) fn label<'de, D: Deserializer<'de>>(
    deserializer: D,
    what: &'static str,
    validate: fn(&str) -> Result<(), wisp_api::names::NameError>,
) -> Result<String, D::Error> {
    struct LabelVisitor {
        what: &'static str,
        validate: fn(&str) -> Result<(), wisp_api::names::NameError>,
    }
    impl<'de> Visitor<'de> for LabelVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}: a name such as hello", self.what)
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<String, E> {
            (self.validate)(text).map_err(|error| {
                E::custom(format!(
                    "{} {text:?} is not valid: {error}; write e.g. hello",
                    self.what
                ))
            })?;
            Ok(text.to_owned())
        }
    }
    deserializer.deserialize_str(LabelVisitor { what, validate })
}
