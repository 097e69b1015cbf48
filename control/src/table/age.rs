//! Ages the way the API server prints them in Tables (`5m`, `3h12m`, `2d4h`): kubectl shows
//! Table cells verbatim and never turns a timestamp into an age itself, so the server must.
//! The thresholds are apimachinery's `duration.HumanDuration`, so wisp's AGE column reads like
//! a real cluster's.

use std::time::{Duration, SystemTime};

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// The age of an RFC 3339 `timestamp` at `now`: `<unknown>` for an empty (unset) timestamp,
/// `<invalid>` for one that does not parse or lies more than a second in the future.
pub(super) fn age(timestamp: &str, now: SystemTime) -> String {
    if timestamp.is_empty() || timestamp == "null" {
        return "<unknown>".to_owned();
    }
    match parse_time(timestamp) {
        Some(then) => since(then, now),
        None => "<invalid>".to_owned(),
    }
}

/// `HumanDuration(now - then)`.
pub(super) fn since(then: SystemTime, now: SystemTime) -> String {
    let nanos = match now.duration_since(then) {
        Ok(elapsed) => signed(elapsed),
        Err(ahead) => -signed(ahead.duration()),
    };
    human_duration(nanos)
}

fn signed(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

/// An RFC 3339 time: `Z` (what Kubernetes writes) or a numeric offset, with optional fractions.
pub(super) fn parse_time(text: &str) -> Option<SystemTime> {
    if text.ends_with('Z') {
        return humantime::parse_rfc3339(text).ok();
    }
    // humantime only knows UTC, so shift a `±HH:MM` stamp by hand.
    let split = text.len().checked_sub(6)?;
    if !text.is_char_boundary(split) {
        return None;
    }
    let (stamp, offset) = text.split_at(split);
    let (sign, hhmm) = offset.split_at(1);
    let (hours, minutes) = hhmm.split_once(':')?;
    let digits = |s: &str| -> Option<u64> {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let shift = Duration::from_secs(digits(hours)? * 3600 + digits(minutes)? * 60);
    let utc = humantime::parse_rfc3339(&format!("{stamp}Z")).ok()?;
    match sign {
        "+" => utc.checked_sub(shift),
        "-" => utc.checked_add(shift),
        _ => None,
    }
}

/// apimachinery's `HumanDuration`: about two significant figures, coarser as time passes.
fn human_duration(nanos: i128) -> String {
    let seconds = nanos / NANOS_PER_SECOND;
    // Clocks disagree a little; a second in the future still reads as now.
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let d = days % 365;
        return if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        };
    }
    format!("{years}y")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(seconds: i128) -> String {
        human_duration(seconds * NANOS_PER_SECOND)
    }

    #[test]
    fn human_durations_match_apimachinery() {
        let cases = [
            (0, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 12 * 60, "3h12m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (52 * 3600, "2d4h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (731 * 86400, "2y1d"),
            (8 * 365 * 86400, "8y"),
            (-1, "0s"),
            (-2, "<invalid>"),
        ];
        for (seconds, want) in cases {
            assert_eq!(after(seconds), want, "{seconds}s");
        }
    }

    #[test]
    fn timestamps_parse_in_utc_and_with_offsets() {
        let utc = parse_time("2024-05-01T10:00:00Z").expect("utc");
        assert_eq!(parse_time("2024-05-01T12:00:00+02:00"), Some(utc));
        assert_eq!(parse_time("2024-05-01T07:30:00-02:30"), Some(utc));
        assert!(parse_time("2024-05-01T10:00:00.123456Z").is_some());
        for bad in [
            "yesterday",
            "2024-05-01",
            "2024-05-01T10:00:00",
            "2024-05-01T10:00:00*02:00",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn ages_of_timestamps() {
        let now = parse_time("2024-05-01T10:00:00Z").expect("now");
        assert_eq!(age("2024-05-01T09:55:00Z", now), "5m");
        assert_eq!(age("2024-04-30T10:00:00Z", now), "24h");
        assert_eq!(age("", now), "<unknown>");
        assert_eq!(age("soon", now), "<invalid>");
        assert_eq!(age("2024-05-01T10:05:00Z", now), "<invalid>");
    }
}
