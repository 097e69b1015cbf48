//! Parsers for command-line values: durations (`30s`, `1500ms`, `2m`, or plain seconds),
//! memory quantities (`128Mi`, `1Gi`) and repeated `KEY=VALUE` flags.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::bail;

pub fn duration(input: &str) -> Result<Duration, String> {
    let trimmed = input.trim();
    let (number, unit) = match trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(index) => trimmed.split_at(index),
        None => (trimmed, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {input:?}: write e.g. 30s, 1500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration {input:?}: unknown unit {unit:?}; use ms, s, m or h"
            ));
        }
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!(
            "invalid duration {input:?}: it must be greater than zero"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A duration that may be zero (`0`, `0s`): "no delay".
pub fn duration_or_zero(input: &str) -> Result<Duration, String> {
    let trimmed = input.trim();
    if trimmed
        .trim_end_matches(['m', 's', 'h'])
        .chars()
        .all(|c| c == '0' || c == '.')
        && trimmed.starts_with('0')
    {
        return Ok(Duration::ZERO);
    }
    duration(input)
}

pub fn memory(input: &str) -> Result<u64, String> {
    wisp_api::quantity::parse_memory(input).map_err(|error| error.to_string())
}

pub fn env_pair(input: &str) -> Result<(String, String), String> {
    match input.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!(
            "invalid environment variable {input:?}: write KEY=VALUE"
        )),
    }
}

/// Collects repeated `KEY=VALUE` values of `flag` (e.g. `--config`) into a map, keys and values
/// trimmed; a later key wins.
pub fn key_values(flag: &str, pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("{flag} {pair:?} is not KEY=VALUE; write it like {flag} min-scale=1");
        };
        if key.trim().is_empty() {
            bail!("{flag} {pair:?} has an empty key; write it like {flag} min-scale=1");
        }
        map.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration_or_zero("0"), Ok(Duration::ZERO));
        assert_eq!(duration_or_zero("0ms"), Ok(Duration::ZERO));
        assert_eq!(duration_or_zero("5s"), Ok(Duration::from_secs(5)));
        assert!(duration_or_zero("-1s").is_err());
        assert_eq!(duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("5"), Ok(Duration::from_secs(5)));
        assert!(duration("0s").is_err());
        assert!(duration("5 days").is_err());
        assert!(duration("").is_err());
    }

    #[test]
    fn env_pairs() {
        assert_eq!(env_pair("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(env_pair("=x").is_err());
        assert!(env_pair("novalue").is_err());
    }

    #[test]
    fn key_value_flags() {
        let pairs = ["a=1".to_owned(), " b = x=y ".to_owned(), "a=2".to_owned()];
        let map = key_values("--config", &pairs).unwrap();
        assert_eq!(map["a"], "2");
        assert_eq!(map["b"], "x=y");
        let error = key_values("--config", &["novalue".to_owned()]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("--config \"novalue\" is not KEY=VALUE")
        );
        assert!(key_values("--config", &["=1".to_owned()]).is_err());
    }
}
