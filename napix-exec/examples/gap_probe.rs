//! What the time between one child's exit and the next spawn costs a tight spawn+wait loop.
//!
//! `cargo run --release -p napix-exec --example gap_probe [-- PROGRAM]` (default: the bench's
//! tiny static program, else `/bin/true`). One thread, side by side in one process:
//!
//! - `raw`: clone-vfork + blocking `waitid` (`napix_executor::direct`, the bench's floor);
//! - `raw+Nus`: the same with N microseconds of busy work before each spawn, as if the caller
//!   did a little bookkeeping between its children;
//! - `raw+epoll`: raw, plus what the executor adds while the child runs (a pidfd put in an epoll
//!   set and taken out again; here with a `pidfd_open` too);
//! - `executor`: a default executor's `spawn` + `wait`.
//!
//! Each line: the median and p25/p75 of the spawn call (the clone until the exec) and of the
//! whole spawn+wait, the rate, and the process CPU per spawn+wait. Run it once as is and once
//! under `taskset -c 0`: on a 2-vCPU VM whose idle vCPUs halt, the vfork child runs on the idle
//! vCPU, and waking it costs tens of microseconds unless it comes soon after that vCPU went
//! idle (the host's halt polling): a few microseconds more between spawns are enough to fall off
//! that edge, on one vCPU there is none. `docs/measurements.md` has the numbers.

use std::time::{Duration, Instant};

#[path = "../src/bench_tiny.rs"]
mod bench_tiny;

use napix_executor::direct::Prepared;
use napix_executor::{Command, Executor, SpawnBackend};
use rustix::event::epoll;
use rustix::process::{Pid, PidfdFlags, pidfd_open};

const SPAWNS: usize = 3000;

#[derive(Clone, Copy)]
enum Contender {
    /// Raw clone-vfork + waitid, after this many microseconds of busy work.
    Raw(u64),
    /// Raw, plus a pidfd in and out of an epoll set while the child runs.
    RawEpoll,
    /// The default executor's spawn + wait.
    Executor,
}
const ROUNDS: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Kept alive to the end: dropping it deletes the tiny program.
    let (_tiny, tiny_path) = bench_tiny::tiny_or_bin_true();
    let program = std::env::args()
        .nth(1)
        .unwrap_or_else(|| tiny_path.display().to_string());
    println!("program: {program}");
    let executor = Executor::builder().start()?;
    let command = Command::new(&program);
    let raw = Prepared::new(&[&program])?;
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let contenders: [(&str, Contender); 6] = [
        ("raw", Contender::Raw(0)),
        ("raw+1us", Contender::Raw(1)),
        ("raw+3us", Contender::Raw(3)),
        ("raw+5us", Contender::Raw(5)),
        ("raw+epoll", Contender::RawEpoll),
        ("executor", Contender::Executor),
    ];
    for round in 0..ROUNDS {
        for (name, extra) in contenders {
            let mut spawn = Vec::with_capacity(SPAWNS);
            let mut total = Vec::with_capacity(SPAWNS);
            let cpu_before = process_cpu();
            let began = Instant::now();
            for _ in 0..SPAWNS {
                match extra {
                    Contender::Raw(us) => {
                        busy(Duration::from_micros(us));
                        let t = Instant::now();
                        let child = raw.spawn(SpawnBackend::Vfork)?;
                        spawn.push(t.elapsed());
                        let status = child.wait()?;
                        total.push(t.elapsed());
                        check(status)?;
                    }
                    Contender::RawEpoll => {
                        let t = Instant::now();
                        let child = raw.spawn(SpawnBackend::Vfork)?;
                        spawn.push(t.elapsed());
                        let pid = Pid::from_raw(child.pid() as i32).ok_or("pid 0")?;
                        let pidfd = pidfd_open(pid, PidfdFlags::empty())?;
                        let flags = epoll::EventFlags::IN | epoll::EventFlags::ONESHOT;
                        epoll::add(&epoll, &pidfd, epoll::EventData::new_u64(1), flags)?;
                        epoll::delete(&epoll, &pidfd)?;
                        let status = child.wait()?;
                        total.push(t.elapsed());
                        check(status)?;
                    }
                    Contender::Executor => {
                        let t = Instant::now();
                        let child = executor.spawn(&command)?;
                        spawn.push(t.elapsed());
                        let status = child.wait();
                        total.push(t.elapsed());
                        check(status)?;
                    }
                }
            }
            let wall = began.elapsed();
            let cpu = (process_cpu() - cpu_before) / SPAWNS as u32;
            spawn.sort();
            total.sort();
            println!(
                "round {round} {name:9} spawn {} total {} rate {:6.0}/s cpu/spawn {:5.1} us",
                quartiles(&spawn),
                quartiles(&total),
                SPAWNS as f64 / wall.as_secs_f64(),
                cpu.as_secs_f64() * 1e6,
            );
        }
    }
    Ok(())
}

fn busy(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn check(status: std::process::ExitStatus) -> Result<(), String> {
    match status.success() {
        true => Ok(()),
        false => Err(format!("child exited with {status}")),
    }
}

/// "median (p25-p75)" in microseconds, of sorted samples.
fn quartiles(sorted: &[Duration]) -> String {
    let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    format!(
        "{:6.1} us ({:5.1}-{:5.1})",
        us(at(0.5)),
        us(at(0.25)),
        us(at(0.75))
    )
}

fn process_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}
