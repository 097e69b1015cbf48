//! The compile-cache flags every command that runs components shares (`--cache-dir`,
//! `--no-cache`), so `wisp run` and `wisp serve` read them, and default them, the same way.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CacheArgs {
    /// Where precompiled components are kept between runs.
    #[arg(long, env = "WISP_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Keep compiled components in memory only.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
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

/// `$XDG_CACHE_HOME/wisp` or `~/.cache/wisp`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("wisp"))
}
