//! Durations as scenarios write them: `500ms`, `10s`, `2m`, `1h`, or several joined (`1m30s`).
//!
//! Whole numbers only, so a file says exactly how long a phase lasts; `humantime` is not a
//! dependency of this crate and the grammar is small enough to own.

use std::fmt;
use std::time::Duration;

/// Why a duration does not parse, phrased to follow "duration "x" ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("is empty; write a number and a unit, e.g. 10s")]
    Empty,
    #[error("has no unit after {0}; write a unit: ms, s, m or h (e.g. {0}s)")]
    MissingUnit(u64),
    #[error("has unknown unit {0:?}; write ms, s, m or h (e.g. 10s, 500ms, 2m)")]
    UnknownUnit(String),
    #[error("must start with a whole number; write e.g. 10s, 500ms or 1m30s")]
    NotANumber,
    #[error("is too long; write at most a few hours")]
    Overflow,
}

/// Parses `text`: one or more `<whole number><unit>` with units `ms`, `s`, `m`, `h`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::NotANumber);
        }
        let (number, tail) = rest.split_at(digits);
        let number: u64 = number.parse().map_err(|_| DurationError::Overflow)?;
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let millis_per_unit: u64 = match unit {
            "" if tail.is_empty() => return Err(DurationError::MissingUnit(number)),
            // Something else than a letter follows the number, e.g. `1.5s`.
            "" => return Err(DurationError::NotANumber),
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            other => return Err(DurationError::UnknownUnit(other.to_owned())),
        };
        let millis = number
            .checked_mul(millis_per_unit)
            .ok_or(DurationError::Overflow)?;
        total = total
            .checked_add(Duration::from_millis(millis))
            .ok_or(DurationError::Overflow)?;
        rest = tail;
    }
    Ok(total)
}

/// Writes `duration` back in the same grammar (`1m30s`, `500ms`, `0s`), for messages and reports.
pub fn format_duration(duration: Duration) -> String {
    struct Show(Duration);
    impl fmt::Display for Show {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let mut millis = self.0.as_millis();
            if millis == 0 {
                return f.write_str("0s");
            }
            for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
                if millis >= size {
                    write!(f, "{}{unit}", millis / size)?;
                    millis %= size;
                }
            }
            Ok(())
        }
    }
    Show(duration).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration(" 1m30s "), Ok(ms(90_000)));
        assert_eq!(parse_duration("1s250ms"), Ok(ms(1_250)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("10"), Err(DurationError::MissingUnit(10)));
        assert_eq!(
            parse_duration("10sec"),
            Err(DurationError::UnknownUnit("sec".into()))
        );
        assert_eq!(parse_duration("1.5s"), Err(DurationError::NotANumber));
        assert_eq!(parse_duration("-1s"), Err(DurationError::NotANumber));
        assert_eq!(parse_duration("s"), Err(DurationError::NotANumber));
        assert_eq!(parse_duration("10s 5s"), Err(DurationError::NotANumber));
        assert_eq!(
            parse_duration("99999999999999999999h"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("9999999999999999h"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn formats_back_in_the_same_grammar() {
        for text in ["500ms", "10s", "2m", "1h", "1m30s", "1s250ms", "0s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
