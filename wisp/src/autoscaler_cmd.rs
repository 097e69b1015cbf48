//! `wisp autoscaler …` subcommands.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum AutoscalerCommand {}

pub fn run(command: AutoscalerCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
