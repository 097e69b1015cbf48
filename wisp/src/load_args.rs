//! How many components are fetched and compiled at once, how many compiled ones stay in
//! memory, which registries are reached over plain HTTP, and how instance memory is reset: the
//! flags `wisp node`, `wisp up` and `wisp serve` share (`wisp run` takes the last two too).

use std::num::NonZeroUsize;

use wisp_runtime::{
    MemoryReset, RuntimeConfig, default_concurrent_compiles, default_concurrent_fetches,
};

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
    #[command(flatten)]
    pub registries: RegistryArgs,
    #[command(flatten)]
    pub reset: ResetArgs,
}

/// How a finished instance's memory is made pristine for the next (`wisp run` takes this too).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ResetArgs {
    /// How an instance's memory slot is reset for the next instance. All give every instance the
    /// component's initial memory; they differ in cost. `dirty-pages` rewrites only the pages
    /// the instance wrote (cheapest for most guests); `whole-prefix` rewrites the first 16 MiB
    /// of linear memory whole, which is faster for guests that write all over a large heap,
    /// such as componentize-py's Python (about twice the requests with a fresh instance each);
    /// `auto` counts the page faults of 32 fresh WASIp2 instances of each component
    /// and moves the components that fault their heap in (hundreds of faults each) to
    /// `whole-prefix`
    #[arg(long, value_enum, default_value_t)]
    pub memory_reset: MemoryResetChoice,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemoryResetChoice {
    /// dirty-pages, and whole-prefix for the components whose instances take hundreds of page
    /// faults
    #[default]
    Auto,
    /// Rewrite the pages the instance wrote (found with PAGEMAP_SCAN, Linux 6.7+)
    DirtyPages,
    /// Rewrite the first 16 MiB whole, keep it mapped
    WholePrefix,
}

impl ResetArgs {
    pub fn memory_reset(&self) -> MemoryReset {
        match self.memory_reset {
            MemoryResetChoice::Auto => MemoryReset::Auto,
            MemoryResetChoice::DirtyPages => MemoryReset::DirtyPages,
            MemoryResetChoice::WholePrefix => MemoryReset::WholePrefix,
        }
    }
}

/// Registries reached over plain HTTP (`wisp run` takes this too).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RegistryArgs {
    /// A registry reached over plain HTTP instead of HTTPS, as HOST:PORT exactly as image
    /// references spell it (repeatable), e.g. a local `localhost:5000`. Default: none, every
    /// registry over HTTPS.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT", value_parser = registry_host)]
    pub insecure_registry: Vec<String>,
}

/// Accepts what may stand before the first `/` of an image reference.
fn registry_host(text: &str) -> Result<String, String> {
    match wisp_oci::ImageReference::parse(&format!("{text}/probe")) {
        Ok(reference) if reference.registry() == text => Ok(text.to_owned()),
        _ => Err(format!(
            "{text:?} is not a registry: write HOST:PORT (or HOST) as image references spell it, e.g. localhost:5000"
        )),
    }
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
            insecure_registries: self.registries.insecure_registry.clone(),
            memory_reset: self.reset.memory_reset(),
            ..config
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_registries_are_hosts_with_optional_ports() {
        assert_eq!(registry_host("localhost:5000"), Ok("localhost:5000".into()));
        assert_eq!(registry_host("registry.local"), Ok("registry.local".into()));
        assert!(registry_host("localhost:5000/x").is_err());
        assert!(registry_host("http://localhost:5000").is_err());
        assert!(registry_host("plainname").is_err());
    }

    #[derive(clap::Parser)]
    struct ResetProbe {
        #[command(flatten)]
        reset: ResetArgs,
    }

    fn reset_from(args: &[&str]) -> Result<MemoryReset, clap::Error> {
        use clap::Parser;
        let args = std::iter::once("probe").chain(args.iter().copied());
        ResetProbe::try_parse_from(args).map(|probe| probe.reset.memory_reset())
    }

    #[test]
    fn memory_reset_defaults_to_auto_and_names_the_other_choices() {
        assert_eq!(reset_from(&[]).unwrap(), MemoryReset::Auto);
        assert_eq!(
            reset_from(&["--memory-reset", "whole-prefix"]).unwrap(),
            MemoryReset::WholePrefix
        );
        assert_eq!(
            reset_from(&["--memory-reset", "dirty-pages"]).unwrap(),
            MemoryReset::DirtyPages
        );
        let refused = reset_from(&["--memory-reset", "all"])
            .unwrap_err()
            .to_string();
        assert!(
            ["auto", "dirty-pages", "whole-prefix"]
                .iter()
                .all(|choice| refused.contains(choice)),
            "{refused}"
        );
    }

    #[test]
    fn the_memory_default_is_the_runtime_default() {
        assert_eq!(
            cli_values::memory("512Mi"),
            Ok(wisp_runtime::DEFAULT_COMPILED_MEMORY_BUDGET)
        );
    }
}
