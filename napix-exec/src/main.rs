//! `napix-exec`: the command line of napix-executor.
//!
//! - `napix-exec bench`: spawn latency against std::process, raw posix_spawn, raw fork and the
//!   clone-vfork floor, side by side in one run.
//! - `napix-exec run [FILE]`: run a file of commands through one executor from worker threads.
//!
//! This binary has no executor logic of its own: it drives the library's public API.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod duration;
mod run;

#[derive(Parser)]
#[command(
    name = "napix-exec",
    version,
    about = "Run and measure child processes through napix-executor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure spawn latency and throughput against the alternatives, side by side.
    Bench(Box<bench::BenchArgs>),
    /// Run commands (one per line, shell quoting) from FILE or stdin through one executor.
    Run(run::RunArgs),
}

fn main() -> ExitCode {
    // Off unless RUST_LOG asks for it; always on stderr so stdout stays machine-readable.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(args) => bench::main(*args),
        Command::Run(args) => run::main(args),
    }
}
