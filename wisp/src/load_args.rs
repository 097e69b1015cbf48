//! How many components are fetched and compiled at once, and how many compiled ones stay in
//! memory: the flags `wisp node`, `wisp up` and `wisp serve` share.

use std::num::NonZeroUsize;

use wisp_runtime::{RuntimeConfig, default_concurrent_compiles, default_concurrent_fetches};

use crate::cli_values;

#[derive(clap::Args, Clone, Debug)]
pub struct LoadArgs {
    /// Components read or downloaded at once; more wait their turn. Default: 4 per core
    /// (at least 4, at most 64).
    #[arg(long, value_name = "N", default_value_t = nonzero(default_concurrent_fetches()))]
    pub max_concurrent_fetches: NonZeroUsize,
    /// Components compiled at once; more wait their turn. Default: one per core.
    #[arg(long, value_name = "N", default_value_t = nonzero(default_concurrent_compiles()))]
    pub max_concurrent_compiles: NonZeroUsize,
    /// Compiled components kept in memory for revisions that no longer run them (for a quick
    /// return), e.g. 1Gi; the least recently used go first. Components in use always stay.
    #[arg(long, value_name = "BYTES", value_parser = cli_values::memory, default_value = "512Mi")]
    pub compiled_memory: u64,
}

fn nonzero(value: usize) -> NonZeroUsize {
    NonZeroUsize::new(value).unwrap_or(NonZeroUsize::MIN)
}

impl LoadArgs {
    /// `config` with these limits.
    pub fn apply(&self, config: RuntimeConfig) -> RuntimeConfig {
        RuntimeConfig {
            max_concurrent_fetches: self.max_concurrent_fetches.get(),
            max_concurrent_compiles: self.max_concurrent_compiles.get(),
            compiled_memory_budget: self.compiled_memory,
            ..config
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_default_is_the_runtime_default() {
        assert_eq!(
            cli_values::memory("512Mi"),
            Ok(wisp_runtime::DEFAULT_COMPILED_MEMORY_BUDGET)
        );
    }
}
