//! Placeholder replaced by the run implementation (work in progress in this session).
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RunArgs {}

pub fn main(_args: RunArgs) -> ExitCode {
    eprintln!("napix-exec run: not implemented yet");
    ExitCode::FAILURE
}
