//! Kubernetes resource quantities for memory (`128Mi`, `1Gi`, `500M`, `1.5Gi`, `1048576`), as
//! written in `resources.limits.memory`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// The least memory a replica may be given (`resources.limits.memory` and `requests.memory`):
/// 2Mi. A request's instance needs its linear memory plus the host memory the runtime reserves
/// for its resource table (512 KiB, `wisp_runtime`'s `RESOURCE_TABLE_RESERVATION`); the
/// smallest sample (`hello-wasi`, a Rust guest with no async runtime) declares 17 64 KiB pages,
/// as rustc's default shadow stack alone is 1 MiB, so it needs about 1.6 MiB — less would be
/// admitted and then never run. Admission refuses less, and a node charges at least this much
/// for any replica, so a limit like `"1"` (one byte) can never make thousands of replicas look
/// free.
pub const MIN_REPLICA_MEMORY: u64 = 2 * 1024 * 1024;

/// [`MIN_REPLICA_MEMORY`] as a manifest writes it.
pub const MIN_REPLICA_MEMORY_TEXT: &str = "2Mi";

/// A resource quantity as written in a manifest (`128Mi`, `0.5`, `1e3`), kept as text.
///
/// Kubernetes accepts a bare YAML number where a quantity goes (`memory: 134217728`), so this
/// reads strings and numbers alike; it is interpreted only when used ([`Quantity::memory_bytes`]),
/// so an unusual CPU value cannot make a whole manifest unreadable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Quantity(pub String);

impl Quantity {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The quantity as a whole number of bytes ([`parse_memory`]).
    pub fn memory_bytes(&self) -> Result<u64, QuantityError> {
        parse_memory(&self.0)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;

        impl de::Visitor<'_> for QuantityVisitor {
            type Value = Quantity;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as 128Mi or 1Gi")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Quantity, E> {
                Ok(Quantity::new(value))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Quantity, E> {
                Ok(Quantity(value.to_string()))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Quantity, E> {
                Ok(Quantity(value.to_string()))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Quantity, E> {
                Ok(Quantity(value.to_string()))
            }
        }

        deserializer.deserialize_any(QuantityVisitor)
    }
}

/// A memory quantity that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid memory quantity {input:?}: {reason}; write a number of bytes with an optional suffix such as 128Mi, 1Gi or 500M"
)]
pub struct QuantityError {
    pub input: String,
    pub reason: &'static str,
}

const SUFFIXES: &[(&str, u64)] = &[
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("Pi", 1 << 50),
    ("Ei", 1 << 60),
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

/// Reads a memory quantity as a whole number of bytes (fractions of a byte round up, as
/// Kubernetes does).
pub fn parse_memory(input: &str) -> Result<u64, QuantityError> {
    let error = |reason| QuantityError {
        input: input.to_owned(),
        reason,
    };
    let trimmed = input.trim();
    let (number, multiplier) = SUFFIXES
        .iter()
        .find_map(|(suffix, multiplier)| {
            trimmed
                .strip_suffix(suffix)
                .map(|number| (number, *multiplier))
        })
        .unwrap_or((trimmed, 1));
    if number.is_empty() {
        return Err(error("the number is missing"));
    }
    if !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') || number.matches('.').count() > 1 {
        return Err(error("unknown suffix or not a number"));
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| error("the number is too large"))?
    };
    let mut bytes = whole
        .checked_mul(multiplier)
        .ok_or_else(|| error("the quantity is too large"))?;
    if !fraction.is_empty() {
        let digits = fraction.len().min(18) as u32;
        let fraction: u128 = fraction[..digits as usize]
            .parse()
            .map_err(|_| error("unknown suffix or not a number"))?;
        let scale = 10u128.pow(digits);
        let part = (fraction * u128::from(multiplier)).div_ceil(scale);
        bytes = u64::try_from(part)
            .ok()
            .and_then(|part| bytes.checked_add(part))
            .ok_or_else(|| error("the quantity is too large"))?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_binary_decimal_and_plain_quantities() {
        assert_eq!(parse_memory("1048576"), Ok(1 << 20));
        assert_eq!(parse_memory("128Mi"), Ok(128 << 20));
        assert_eq!(parse_memory("1Gi"), Ok(1 << 30));
        assert_eq!(parse_memory("500M"), Ok(500_000_000));
        assert_eq!(parse_memory("1.5Gi"), Ok(3 << 29));
        assert_eq!(parse_memory("0.5k"), Ok(500));
        assert_eq!(parse_memory(" 64Ki "), Ok(64 << 10));
    }

    #[test]
    fn quantities_read_strings_and_numbers() {
        let read = |json: &str| serde_json::from_str::<Quantity>(json).unwrap();
        assert_eq!(read(r#""128Mi""#), Quantity::new("128Mi"));
        assert_eq!(read("134217728"), Quantity::new("134217728"));
        assert_eq!(read("0.5"), Quantity::new("0.5"));
        assert_eq!(read(r#""1Gi""#).memory_bytes(), Ok(1 << 30));
        assert_eq!(read("1048576").memory_bytes(), Ok(1 << 20));
        assert!(serde_json::from_str::<Quantity>("[1]").is_err());
        assert_eq!(
            serde_json::to_string(&Quantity::new("64Mi")).unwrap(),
            r#""64Mi""#
        );
    }

    #[test]
    fn rejects_what_is_not_a_quantity() {
        for bad in ["", "Mi", "12XB", "1.2.3Mi", "-5Mi", "99999999999Ei"] {
            let error = parse_memory(bad).unwrap_err();
            assert!(
                error.to_string().contains("invalid memory quantity"),
                "{bad}: {error}"
            );
        }
    }
}
