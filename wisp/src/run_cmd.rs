//! `wisp run`: serve one component.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RunArgs {}

pub fn run(_args: RunArgs) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
