//! Kubernetes resource quantities for memory (`128Mi`, `1Gi`, `500M`, `1.5Gi`, `1048576`), as
//! written in `resources.limits.memory`.

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
