//! The compile-cache flags every command that runs components shares (`--cache-dir`,
//! `--no-cache`, `--cache-max-size`, `--image-cache-size`), so `wisp run` and `wisp serve` read
//! them, and default them, the same way; the size limits ([`CacheLimits`]) also serve the node
//! role of `wisp node` and `wisp up`.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CacheArgs {
    /// Where precompiled components are kept between runs.
    #[arg(long, env = "WISP_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Keep compiled components in memory only.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
    #[command(flatten)]
    pub limits: CacheLimits,
}

impl CacheArgs {
    /// The directory for `RuntimeConfig::cache_dir`: none with `--no-cache`, else `--cache-dir`,
    /// else `$XDG_CACHE_HOME/wisp` or `~/.cache/wisp`.
    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(default_cache_dir)
        }
    }
}

/// How large the caches on disk may grow: the flags of every command that runs components,
/// `wisp node` and `wisp up` included. (`--cache-dir` is not here: its default differs by
/// command, and so does its help; `--no-cache` is not for a node.)
#[derive(clap::Args, Clone, Debug)]
pub struct CacheLimits {
    /// Most bytes the compile cache directory holds; the least recently used entries are
    /// removed when a new one is written, e.g. 10Gi.
    #[arg(long, value_name = "BYTES", value_parser = crate::cli_values::memory, default_value = "4Gi")]
    cache_max_size: u64,
    /// Most bytes of images pulled from registries (manifests and components) kept on disk
    /// beside the compile cache; the least recently used are removed when a new one would not
    /// fit, never one a pull in progress is using. A component larger than this still runs,
    /// without being kept.
    #[arg(long, value_name = "BYTES", value_parser = crate::cli_values::memory, default_value = "10Gi")]
    image_cache_size: u64,
}

impl CacheLimits {
    /// `RuntimeConfig::cache_max_bytes`.
    pub fn compile_cache_bytes(&self) -> u64 {
        self.cache_max_size
    }

    /// `RuntimeConfig::image_cache_max_bytes`.
    pub fn image_cache_bytes(&self) -> u64 {
        self.image_cache_size
    }
}

/// `$XDG_CACHE_HOME/wisp` or `~/.cache/wisp`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("wisp"))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Probe {
        #[command(flatten)]
        cache: CacheArgs,
    }

    #[test]
    fn the_image_cache_defaults_to_the_oci_default_and_takes_quantities() {
        let default = Probe::try_parse_from(["probe"]).unwrap();
        assert_eq!(
            default.cache.limits.image_cache_bytes(),
            wisp_oci::DEFAULT_IMAGE_CACHE_BYTES
        );
        let set = Probe::try_parse_from(["probe", "--image-cache-size", "512Mi"]).unwrap();
        assert_eq!(set.cache.limits.image_cache_bytes(), 512 * 1024 * 1024);
        assert!(Probe::try_parse_from(["probe", "--image-cache-size", "lots"]).is_err());
    }
}
