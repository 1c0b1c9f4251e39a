//! Placeholder replaced by the bench implementation (work in progress in this session).
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct BenchArgs {}

pub fn main(_args: BenchArgs) -> ExitCode {
    eprintln!("napix-exec bench: not implemented yet");
    ExitCode::FAILURE
}
