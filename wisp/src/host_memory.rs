//! The machine's memory, as the default of what a node may give to replicas: like a kubelet
//! with no reservations, `wisp serve` admits replicas up to the host's total memory.

/// Used when `/proc/meminfo` cannot be read (not Linux, or a sandbox without `/proc`).
pub const FALLBACK_BYTES: u64 = 8 << 30;

/// `MemTotal` from `/proc/meminfo`, or [`FALLBACK_BYTES`].
pub fn total_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text))
        .unwrap_or(FALLBACK_BYTES)
}

/// Reads the `MemTotal:  16384 kB` line.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|line| line.starts_with("MemTotal:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let value: u64 = fields.next()?.parse().ok()?;
    let multiplier = match fields.next() {
        Some("kB") => 1024,
        None => 1,
        Some(_) => return None,
    };
    value.checked_mul(multiplier).filter(|bytes| *bytes > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total_in_kib() {
        let text = "MemFree:   100 kB\nMemTotal:       24576000 kB\nBuffers: 1 kB\n";
        assert_eq!(mem_total(text), Some(24_576_000 * 1024));
    }

    #[test]
    fn anything_unreadable_is_none() {
        assert_eq!(mem_total(""), None);
        assert_eq!(mem_total("MemTotal: lots kB\n"), None);
        assert_eq!(mem_total("MemTotal: 5 MB\n"), None);
        assert_eq!(mem_total("MemTotal: 0 kB\n"), None);
    }

    #[test]
    fn this_host_has_some_memory() {
        assert!(total_bytes() > 0);
    }
}
