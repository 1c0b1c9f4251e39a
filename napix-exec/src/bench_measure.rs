//! The measurements: who is measured (contenders), the executors under test (the rig), and the
//! three kinds of run (interleaved latency, multi-thread throughput, latency with N tracked).
//!
//! Everything here goes through the library's public API; the raw contenders use
//! `napix_executor::direct`, which runs the library's own spawn code on the calling thread.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Barrier, Mutex, OnceLock, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use napix_executor::direct::Prepared;
use napix_executor::{ExecHandle, Executor, SpawnBackend, SpawnSite, Timeline};

use super::bench_hops::{CpuPerSpawn, HopSamples, process_cpu_ns, raw_timeline, thread_cpu_ns};

/// Errors of the bench: printed, never matched on.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, BoxError>;

/// The short name of a backend, as printed and in the JSON.
pub fn backend_name(b: SpawnBackend) -> &'static str {
    b.name()
}

/// How a contender spawns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `Executor::create_process` from the measuring (worker) thread + `ExecHandle::wait`.
    Executor(SpawnBackend),
    /// `direct::Prepared::spawn` + `DirectChild::wait` on the measuring thread.
    Raw(SpawnBackend),
    /// `std::process::Command::status()`.
    Std,
    /// `Executor::spawn` of a `Command` with the options of the `*-options` contenders
    /// (`OPTION_VARS` set, `OPTION_REMOVED` removed, a working directory, `OPTION_STDIN` as
    /// stdin), built once per program.
    ExecutorOptions(SpawnBackend),
    /// `std::process::Command` doing the same (stdin bytes through a pipe it writes).
    StdOptions,
    /// `Executor::create_process_async` + `ExecHandle::wait_async`, awaited on a tokio runtime.
    ExecutorAsync(SpawnBackend),
    /// `tokio::process::Command::status()` (spawn + wait) on the same runtime.
    Tokio,
}

/// The options of the `*-options` contenders: 3 variables set, 1 removed, a working directory
/// and stdin bytes.
const OPTION_VARS: [(&str, &str); 3] = [
    ("NAPIX_BENCH_A", "1"),
    ("NAPIX_BENCH_B", "two"),
    ("NAPIX_BENCH_C", "/three"),
];
const OPTION_REMOVED: &str = "HOME";
const OPTION_STDIN: &[u8] = b"bench input\n";

/// One measured way of spawning.
#[derive(Clone, Debug)]
pub struct Contender {
    pub name: String,
    pub kind: Kind,
}

impl Contender {
    /// `"executor"`, `"raw"` or `"std"`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Executor(_) | Kind::ExecutorOptions(_) => "executor",
            Kind::Raw(_) => "raw",
            Kind::Std | Kind::StdOptions => "std",
            Kind::ExecutorAsync(_) => "executor-async",
            Kind::Tokio => "tokio",
        }
    }

    /// The backend, for the executor and raw contenders.
    pub fn backend(&self) -> Option<SpawnBackend> {
        match self.kind {
            Kind::Executor(b)
            | Kind::Raw(b)
            | Kind::ExecutorOptions(b)
            | Kind::ExecutorAsync(b) => Some(b),
            Kind::Std | Kind::StdOptions | Kind::Tokio => None,
        }
    }

    /// A short key for `--contenders`: `exec-vfork`, `raw-fork`, `std`, ...
    pub fn key(&self) -> String {
        match self.kind {
            Kind::Executor(b) => format!("exec-{}", backend_name(b)),
            Kind::Raw(b) => format!("raw-{}", backend_name(b)),
            Kind::Std => "std".into(),
            Kind::ExecutorOptions(_) => "exec-options".into(),
            Kind::StdOptions => "std-options".into(),
            Kind::ExecutorAsync(b) => format!("exec-async-{}", backend_name(b)),
            Kind::Tokio => "tokio".into(),
        }
    }

    /// The raw clone-vfork contender: the floor the others are compared with.
    pub fn is_floor(&self) -> bool {
        self.kind == Kind::Raw(SpawnBackend::Vfork)
    }
}

/// The floor: the library's clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD) spawn + waitid, no executor.
pub fn floor() -> Contender {
    Contender {
        name: "raw clone-vfork (floor)".into(),
        kind: Kind::Raw(SpawnBackend::Vfork),
    }
}

/// The executor with its default backend.
pub fn default_executor() -> Contender {
    let b = SpawnBackend::default();
    Contender {
        name: format!("executor {} (default)", backend_name(b)),
        kind: Kind::Executor(b),
    }
}

/// Every contender: the executor with each backend (default first), then the raw ones and std.
pub fn all_contenders() -> Vec<Contender> {
    let default = SpawnBackend::default();
    let mut v = vec![default_executor()];
    for &b in SpawnBackend::ALL.iter().filter(|&&b| b != default) {
        v.push(Contender {
            name: format!("executor {}", backend_name(b)),
            kind: Kind::Executor(b),
        });
    }
    v.push(floor());
    for (b, name) in [
        (SpawnBackend::PosixSpawn, "raw posix_spawn"),
        (SpawnBackend::Fork, "raw fork+execve"),
    ] {
        v.push(Contender {
            name: name.into(),
            kind: Kind::Raw(b),
        });
    }
    v.push(Contender {
        name: "std Command".into(),
        kind: Kind::Std,
    });
    v.push(Contender {
        name: format!("executor {} + env/cwd/stdin", backend_name(default)),
        kind: Kind::ExecutorOptions(default),
    });
    v.push(Contender {
        name: "std Command + env/cwd/stdin".into(),
        kind: Kind::StdOptions,
    });
    v.push(Contender {
        name: format!("executor {} awaited (tokio)", backend_name(default)),
        kind: Kind::ExecutorAsync(default),
    });
    v.push(Contender {
        name: "tokio::process".into(),
        kind: Kind::Tokio,
    });
    v
}

/// The executor backends `contenders` need a rig for.
pub fn executor_backends(contenders: &[Contender]) -> Vec<SpawnBackend> {
    contenders
        .iter()
        .filter_map(|c| match c.kind {
            Kind::Executor(b) | Kind::ExecutorOptions(b) | Kind::ExecutorAsync(b) => Some(b),
            _ => None,
        })
        .collect()
}

/// A program made ready for every contender.
pub struct Target {
    /// argv for the executor and std.
    pub argv: Vec<OsString>,
    /// The same, prepared once (PATH lookup, CStrings) for the raw contenders.
    pub prepared: Prepared,
    /// Whether a non-zero exit is an error (true for the built-in programs).
    pub check: bool,
    /// The `exec-options` command and the `std-options` one: each built once and spawned for
    /// every sample, as a server spawns a configured command many times. Each spawn still
    /// does all of its work (the environment merged with ours, the directory checked or
    /// entered, the stdin bytes carried).
    options: napix_executor::Command,
    std_options: Mutex<Command>,
}

impl Target {
    pub fn new(argv: Vec<OsString>, check: bool) -> Res<Target> {
        let prepared = Prepared::new(&argv)?;
        let mut options = napix_executor::Command::new(&argv[0]);
        options
            .args(&argv[1..])
            .envs(OPTION_VARS)
            .env_remove(OPTION_REMOVED)
            .current_dir(std::env::temp_dir())
            .stdin(napix_executor::Stdio::from_bytes(OPTION_STDIN))
            .stdout(napix_executor::Stdio::null())
            .stderr(napix_executor::Stdio::null());
        let mut std_options = Command::new(&argv[0]);
        std_options
            .args(&argv[1..])
            .envs(OPTION_VARS)
            .env_remove(OPTION_REMOVED)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Ok(Target {
            argv,
            prepared,
            check,
            options,
            std_options: Mutex::new(std_options),
        })
    }
}

/// How the executors under test are built.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// Kill grace (SIGTERM to SIGKILL).
    pub grace: Duration,
    /// `ExecutorBuilder::spin` (the waiting callers' polling), when set; else the library's
    /// default.
    pub spin: Option<Duration>,
    /// `ExecutorBuilder::timeline`: record each child's timeline, for the hop breakdown.
    pub timeline: bool,
    /// `ExecutorBuilder::spawn_site`: which thread clones the children; `None` leaves the
    /// builder's default (no `spawn_site` call), as a user's executor has it.
    pub site: Option<SpawnSite>,
}

/// One executor under test, looping in `run()` on its own thread.
struct Unit {
    backend: SpawnBackend,
    exec: Arc<Executor>,
    /// Kernel thread id of the loop thread (for its CPU accounting in /proc).
    tid: i32,
    thread: Option<JoinHandle<(io::Result<()>, Instant)>>,
}

/// The executors of one section: built once, reused across iterations and repeats.
pub struct Rig {
    units: Vec<Unit>,
}

impl Rig {
    /// Builds one executor per backend and starts each loop on a thread.
    pub fn start(backends: &[SpawnBackend], tuning: Tuning) -> Res<Rig> {
        let mut rig = Rig { units: Vec::new() };
        for &backend in backends {
            let mut builder = Executor::builder()
                .backend(backend)
                .kill_grace(tuning.grace)
                .timeline(tuning.timeline);
            if let Some(site) = tuning.site {
                builder = builder.spawn_site(site);
            }
            if let Some(spin) = tuning.spin {
                builder = builder.spin(spin);
            }
            let exec = Arc::new(builder.build()?);
            let (tx, rx) = mpsc::channel();
            let looped = Arc::clone(&exec);
            let thread = thread::Builder::new()
                .name(format!("executor-{}", backend_name(backend)))
                .spawn(move || {
                    let _ = tx.send(rustix::thread::gettid().as_raw_nonzero().get());
                    let result = looped.run();
                    (result, Instant::now())
                })?;
            let tid = rx.recv().map_err(|_| "executor thread died at start")?;
            rig.units.push(Unit {
                backend,
                exec,
                tid,
                thread: Some(thread),
            });
        }
        Ok(rig)
    }

    /// The executor with `backend`.
    pub fn get(&self, backend: SpawnBackend) -> &Executor {
        &self.unit(backend).exec
    }

    /// Thread id of the loop of the executor with `backend`.
    pub fn tid(&self, backend: SpawnBackend) -> i32 {
        self.unit(backend).tid
    }

    fn unit(&self, backend: SpawnBackend) -> &Unit {
        self.units
            .iter()
            .find(|u| u.backend == backend)
            .expect("the rig was started with every backend it is asked for")
    }

    /// Stops every executor and waits for every `run()` to return. Returns the longest time from
    /// `stop()` to `run()` returning; an error if a loop failed or panicked.
    pub fn shutdown(mut self) -> Res<Duration> {
        let stopped_at = Instant::now();
        for u in &self.units {
            u.exec.stop();
        }
        let mut longest = Duration::ZERO;
        let mut first_err: Option<BoxError> = None;
        for u in &mut self.units {
            let Some(thread) = u.thread.take() else {
                continue;
            };
            match thread.join() {
                Ok((Ok(()), returned_at)) => {
                    longest = longest.max(returned_at.saturating_duration_since(stopped_at));
                }
                Ok((Err(e), _)) => {
                    first_err.get_or_insert_with(|| {
                        format!("executor {}: run() failed: {e}", backend_name(u.backend)).into()
                    });
                }
                Err(_) => {
                    first_err.get_or_insert_with(|| {
                        format!("executor {}: run() panicked", backend_name(u.backend)).into()
                    });
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(longest),
        }
    }
}

impl Drop for Rig {
    /// On an early return: stop every loop and join it, so that no child outlives the bench.
    fn drop(&mut self) {
        for u in &self.units {
            u.exec.stop();
        }
        for u in &mut self.units {
            if let Some(thread) = u.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

fn check_status(name: &str, target: &Target, status: ExitStatus) -> Res<()> {
    if target.check && !status.success() {
        return Err(format!(
            "{name}: {} exited with {status}, expected 0",
            target.argv[0].to_string_lossy()
        )
        .into());
    }
    Ok(())
}

/// Waits for an executor's child and takes its timeline (before the handle drops, inside the
/// measured time: a copy of a few instants).
fn wait_timed(handle: ExecHandle, timeline: &mut Option<Timeline>) -> ExitStatus {
    let status = handle.wait();
    *timeline = handle.timeline();
    status
}

/// One spawn + wait of `target` by contender `c`; returns its wall time, and the child's timeline
/// for an executor contender whose executor records them. Dropping the handle (closing its
/// pidfd) is part of the measured time, as it is part of every real use.
pub fn spawn_wait(c: &Contender, rig: &Rig, target: &Target) -> Res<(Duration, Option<Timeline>)> {
    let mut timeline = None;
    let start = Instant::now();
    let status = match c.kind {
        Kind::Executor(b) => wait_timed(
            rig.get(b).create_process(&target.argv, true)?,
            &mut timeline,
        ),
        Kind::Raw(b) => target.prepared.spawn(b)?.wait()?,
        Kind::Std => Command::new(&target.argv[0])
            .args(&target.argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?,
        Kind::ExecutorOptions(b) => wait_timed(rig.get(b).spawn(&target.options)?, &mut timeline),
        Kind::StdOptions => {
            let mut child = target
                .std_options
                .lock()
                .map_err(|_| "std-options command lock poisoned")?
                .spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                // The child may exit without reading: a broken pipe is not the bench's error.
                let _ = std::io::Write::write_all(&mut stdin, OPTION_STDIN);
            }
            child.wait()?
        }
        Kind::ExecutorAsync(b) => {
            let (status, t) = tokio_runtime()?.block_on(async {
                let child = rig.get(b).create_process_async(&target.argv, true).await?;
                let status = child.wait_async().await;
                Ok::<_, BoxError>((status, child.timeline()))
            })?;
            timeline = t;
            status
        }
        // Built inside the task: tokio registers the child with the runtime's reactor.
        Kind::Tokio => tokio_runtime()?.block_on(async {
            tokio::process::Command::new(&target.argv[0])
                .args(&target.argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
        })?,
    };
    let elapsed = start.elapsed();
    check_status(&c.name, target, status)?;
    Ok((elapsed, timeline))
}

/// The tokio runtime both async contenders are awaited on (current-thread: the awaiting task runs
/// on the measuring thread, as the other contenders do).
fn tokio_runtime() -> Res<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))
    })
    .as_ref()
    .map_err(|e| e.clone().into())
}

/// How many spawns each contender gets in one repeat.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Plan {
    /// Samples per contender per repeat (upper bound).
    pub iterations: usize,
    /// Consecutive spawns of one contender before the next one's turn.
    pub batch: usize,
    /// Unrecorded spawns per contender before measuring.
    pub warmup: usize,
    /// Time per contender per repeat after which it stops early (slow contenders, e.g. fork of a
    /// big parent), once it has `min_samples`.
    #[serde(rename = "budget_ms", serialize_with = "as_millis")]
    pub budget: Duration,
    /// Samples a contender gets even past its budget.
    pub min_samples: usize,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(d.as_millis())
}

/// Measures every contender on `target`, interleaved: round-robin in batches of `plan.batch`, the
/// starting contender rotating each round, so that noise (another process, frequency changes)
/// falls on all of them alike. Returns the samples (ns) per contender, in order; with `hops`
/// (one per contender), adds each measured spawn's hops there.
pub fn interleaved(
    contenders: &[Contender],
    rig: &Rig,
    target: &Target,
    plan: &Plan,
    mut hops: Option<&mut [HopSamples]>,
    mut tick: impl FnMut(),
) -> Res<Vec<Vec<u64>>> {
    for c in contenders {
        for _ in 0..plan.warmup {
            spawn_wait(c, rig, target)?;
        }
    }
    let n = contenders.len();
    let mut samples: Vec<Vec<u64>> = vec![Vec::with_capacity(plan.iterations); n];
    let mut spent = vec![Duration::ZERO; n];
    let done = |i: usize, samples: &[Vec<u64>], spent: &[Duration]| {
        samples[i].len() >= plan.iterations
            || (spent[i] >= plan.budget && samples[i].len() >= plan.min_samples)
    };
    let mut round = 0;
    loop {
        let mut any = false;
        for k in 0..n {
            let i = (round + k) % n;
            if done(i, &samples, &spent) {
                continue;
            }
            any = true;
            let left = plan.iterations - samples[i].len();
            for _ in 0..plan.batch.min(left) {
                let (t, timeline) = spawn_wait(&contenders[i], rig, target)?;
                if let Some(h) = hops.as_deref_mut().and_then(|h| h.get_mut(i)) {
                    h.record(timeline);
                }
                spent[i] += t;
                samples[i].push(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
            }
            tick();
        }
        if !any {
            return Ok(samples);
        }
        round += 1;
    }
}

/// Allocates `bytes` and writes one byte per page, so that the parent really has that much
/// resident memory (page tables and all) while it is alive.
pub fn touched_buffer(bytes: u64) -> Res<Vec<u8>> {
    let len = usize::try_from(bytes).map_err(|_| "size too large for this machine")?;
    // Zeroed allocation: fresh anonymous pages, nothing written yet; the loop below faults each
    // page in as private memory (a read would only map the shared zero page).
    let mut buf: Vec<u8> = vec![0; len];
    let page = rustix::param::page_size();
    for i in (0..len).step_by(page) {
        buf[i] = 1;
    }
    Ok(std::hint::black_box(buf))
}

/// Resident set size of this process, from /proc/self/statm.
pub fn parent_rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * rustix::param::page_size() as u64)
}

/// CPU accounting of one thread of this process, from /proc/self/task/TID.
#[derive(Clone, Copy, Default)]
pub struct ThreadCpu {
    /// On-CPU time (schedstat), ns.
    pub run_ns: u64,
    /// User and system time (stat), clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// Context switches (status): voluntary ones are the times the thread went to sleep.
    pub voluntary: u64,
    pub involuntary: u64,
}

impl ThreadCpu {
    pub fn read(tid: i32) -> ThreadCpu {
        let dir = format!("/proc/self/task/{tid}");
        let mut cpu = ThreadCpu::default();
        if let Ok(s) = std::fs::read_to_string(format!("{dir}/schedstat")) {
            cpu.run_ns = s
                .split_whitespace()
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
        }
        if let Ok(s) = std::fs::read_to_string(format!("{dir}/stat")) {
            // Fields after the command name (which may hold spaces) in parentheses; utime and
            // stime are fields 14 and 15 of the line, 12 and 13 after the ')'.
            if let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                cpu.utime = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0);
                cpu.stime = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0);
            }
        }
        if let Ok(s) = std::fs::read_to_string(format!("{dir}/status")) {
            for line in s.lines() {
                let mut it = line.split_whitespace();
                match (it.next(), it.next().and_then(|x| x.parse().ok())) {
                    (Some("voluntary_ctxt_switches:"), Some(v)) => cpu.voluntary = v,
                    (Some("nonvoluntary_ctxt_switches:"), Some(v)) => cpu.involuntary = v,
                    _ => {}
                }
            }
        }
        cpu
    }
}

/// Where the executor thread's time went during a throughput window.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LoopLoad {
    /// On-CPU time / wall time of the window (1.0 = the thread never slept: it is the wall).
    pub busy: f64,
    /// Share of its CPU time in user space and in the kernel.
    pub user_share: f64,
    pub sys_share: f64,
    /// Executor-thread CPU time per spawn+wait, ns.
    pub cpu_ns_per_spawn: f64,
    /// Times the loop went to sleep per spawn+wait.
    pub sleeps_per_spawn: f64,
    /// Times it was preempted per spawn+wait.
    pub preempted_per_spawn: f64,
    /// Share of the window the one spawning thread spent inside clone+exec (on CPU or blocked
    /// until the child's exec), from the children's timelines; `None` without timelines, or
    /// when the callers clone their own children (no one thread spawns).
    pub in_spawn: Option<f64>,
}

impl LoopLoad {
    fn between(a: ThreadCpu, b: ThreadCpu, wall: Duration, spawns: u64) -> LoopLoad {
        let run = b.run_ns.saturating_sub(a.run_ns) as f64;
        let (u, s) = (
            b.utime.saturating_sub(a.utime) as f64,
            b.stime.saturating_sub(a.stime) as f64,
        );
        let per = spawns.max(1) as f64;
        LoopLoad {
            busy: run / wall.as_nanos().max(1) as f64,
            user_share: if u + s > 0.0 { u / (u + s) } else { f64::NAN },
            sys_share: if u + s > 0.0 { s / (u + s) } else { f64::NAN },
            cpu_ns_per_spawn: run / per,
            sleeps_per_spawn: b.voluntary.saturating_sub(a.voluntary) as f64 / per,
            preempted_per_spawn: b.involuntary.saturating_sub(a.involuntary) as f64 / per,
            in_spawn: None,
        }
    }
}

/// What one throughput window produced.
pub struct Rate {
    pub per_second: f64,
    /// Only for the executor: its loop thread's load.
    pub load: Option<LoopLoad>,
    /// The bench process's CPU per spawn+wait, and the callers' and the loop's shares.
    pub cpu: CpuPerSpawn,
    /// Every spawn's hops: the executor's from its timelines (when it records them), raw
    /// threads' from timing their spawn and wait calls ([`raw_timeline`]).
    pub hops: HopSamples,
}

/// What one submitting thread did in a throughput window.
struct Worker {
    spawns: u64,
    finished: Instant,
    /// Its own CPU time over the window, ns.
    cpu_ns: u64,
    hops: HopSamples,
}

/// Who spawns in a throughput window.
#[derive(Clone, Copy)]
pub enum Spawner<'a> {
    /// Requests from every thread to one executor, with the kernel thread id of its loop (for
    /// the loop's CPU accounting), and whether one thread of the executor clones every child
    /// (`SpawnSite::ExecutorThread`): then its share of the window in clone+exec is reported.
    Executor {
        exec: &'a Executor,
        loop_tid: i32,
        one_spawning_thread: bool,
    },
    /// Each thread for itself through the library's raw spawn (`direct`) with this backend,
    /// then a blocking waitid.
    Raw(SpawnBackend),
}

/// `threads` threads each spawn+wait `argv` in a loop for `window`, as `spawner` says. With
/// `batch > 1` each round spawns `batch` children (through an executor: one `spawn_many`; raw:
/// one spawn after the other) and then waits for each.
pub fn throughput(
    spawner: Spawner<'_>,
    argv: &[OsString],
    check: bool,
    threads: usize,
    window: Duration,
    batch: usize,
) -> Res<Rate> {
    let batch = batch.max(1);
    let (exec, raw_backend, one_spawning_thread) = match spawner {
        Spawner::Executor {
            exec,
            loop_tid,
            one_spawning_thread,
        } => (
            Some((exec, loop_tid)),
            SpawnBackend::Vfork,
            one_spawning_thread,
        ),
        Spawner::Raw(backend) => (None, backend, false),
    };
    let barrier = Barrier::new(threads + 1);
    let start: OnceLock<Instant> = OnceLock::new();
    let before = exec.map(|(_, tid)| ThreadCpu::read(tid));
    let process_before = process_cpu_ns();
    let results: Vec<Result<Worker, String>> = thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (barrier, start) = (&barrier, &start);
                s.spawn(move || -> Result<Worker, String> {
                    // Prepared per thread: the raw path shares nothing between threads.
                    let prepared = match exec {
                        None => Some(Prepared::new(argv).map_err(|e| e.to_string())),
                        Some(_) => None,
                    }
                    .transpose();
                    // A batch through the executor: one spawn_many of `batch` commands.
                    let commands: Vec<napix_executor::Command> = match exec {
                        Some(_) if batch > 1 => (0..batch).map(|_| discarding(argv)).collect(),
                        _ => Vec::new(),
                    };
                    barrier.wait();
                    let prepared = prepared?;
                    let deadline = *start.get().expect("set before the barrier opens") + window;
                    let cpu_before = thread_cpu_ns();
                    let mut hops = HopSamples::default();
                    let mut n = 0u64;
                    loop {
                        let now = Instant::now();
                        if now >= deadline {
                            return Ok(Worker {
                                spawns: n,
                                finished: now,
                                cpu_ns: thread_cpu_ns().saturating_sub(cpu_before),
                                hops,
                            });
                        }
                        let statuses = match (exec, &prepared) {
                            (Some((e, _)), _) if batch > 1 => {
                                let children: Vec<ExecHandle> = e
                                    .spawn_many(&commands)
                                    .into_iter()
                                    .collect::<Result<_, _>>()
                                    .map_err(|e| e.to_string())?;
                                children
                                    .iter()
                                    .map(|child| {
                                        let status = child.wait();
                                        hops.record(child.timeline());
                                        status
                                    })
                                    .collect()
                            }
                            (Some((e, _)), _) => {
                                let child =
                                    e.create_process(argv, true).map_err(|e| e.to_string())?;
                                let status = child.wait();
                                hops.record(child.timeline());
                                vec![status]
                            }
                            (None, Some(p)) => {
                                // `batch` spawns, then `batch` waits.
                                let began = Instant::now();
                                let children = (0..batch)
                                    .map(|_| p.spawn(raw_backend))
                                    .collect::<Result<Vec<_>, _>>()
                                    .map_err(|e| e.to_string())?;
                                let spawned = Instant::now();
                                let mut statuses = Vec::with_capacity(batch);
                                for child in children {
                                    statuses.push(child.wait().map_err(|e| e.to_string())?);
                                    hops.record(Some(raw_timeline(began, spawned, Instant::now())));
                                }
                                statuses
                            }
                            (None, None) => unreachable!("raw threads always prepare"),
                        };
                        if let Some(bad) = statuses.iter().find(|s| check && !s.success()) {
                            return Err(format!("child exited with {bad}, expected 0"));
                        }
                        n += statuses.len() as u64;
                    }
                })
            })
            .collect();
        let _ = start.set(Instant::now());
        barrier.wait();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("worker panicked".into())))
            .collect()
    });
    let process_ns = process_cpu_ns().saturating_sub(process_before);
    let t0 = *start.get().expect("set above");
    let mut spawns = 0;
    let mut end = t0;
    let mut callers_ns = 0;
    let mut hops = HopSamples::default();
    for r in results {
        let w = r?;
        spawns += w.spawns;
        end = end.max(w.finished);
        callers_ns += w.cpu_ns;
        hops.merge(w.hops);
    }
    let wall = end.duration_since(t0);
    let load = exec.map(|(_, tid)| {
        let mut load = LoopLoad::between(
            before.expect("read when exec is given"),
            ThreadCpu::read(tid),
            wall,
            spawns,
        );
        load.in_spawn = one_spawning_thread
            .then(|| hops.clone_exec_total())
            .flatten()
            .map(|t| t.as_secs_f64() / wall.as_secs_f64());
        load
    });
    let loop_ns = load.as_ref().map(|l| l.cpu_ns_per_spawn);
    Ok(Rate {
        per_second: spawns as f64 / wall.as_secs_f64(),
        load,
        cpu: CpuPerSpawn::new(process_ns, callers_ns, loop_ns, spawns),
        hops,
    })
}

/// `argv` as a [`Command`](napix_executor::Command) with every stream on `/dev/null`, as
/// `create_process(argv, true)` spawns it.
fn discarding(argv: &[OsString]) -> napix_executor::Command {
    let mut cmd = napix_executor::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdout(napix_executor::Stdio::null())
        .stderr(napix_executor::Stdio::null());
    cmd
}

/// The tracked sleepers: plain `sleep 1000`, and a shell that ignores SIGTERM and then execs
/// `sleep 1000`. Ignored signals stay ignored across execve (POSIX; only caught ones are reset), so
/// the tracked pid itself, now `sleep`, ignores SIGTERM and needs the SIGKILL after the grace.
/// (A `while :; do sleep 1; done` loop would also do, but 5,000 of them spawn 5,000 processes a
/// second and would drown the measurement.)
pub const SLEEPER: [&str; 2] = ["sleep", "1000"];
pub const STUBBORN: [&str; 3] = ["sh", "-c", "trap '' TERM; exec sleep 1000"];

/// Outcome of one tracked-children run.
pub struct Tracked {
    /// Time to start the N sleepers and see them all settled.
    pub setup: Duration,
    /// Per repeat: samples of the default executor and of the floor, interleaved.
    pub samples: Vec<[Vec<u64>; 2]>,
    /// From `stop()` to `run()` returning with all N reaped.
    pub stop: Duration,
    /// How the N ended.
    pub by_term: usize,
    pub by_kill: usize,
    pub other: usize,
}

/// With `n` long sleepers tracked by one executor (default backend; half of them ignore SIGTERM),
/// measures one more spawn+wait of `target` (interleaved with the floor), then how long `stop()`
/// takes to bring `run()` back (the kill grace of `tuning` plus the reaping).
pub fn tracked(
    n: usize,
    target: &Target,
    plan: &Plan,
    repeats: usize,
    tuning: Tuning,
    mut progress: impl FnMut(&str),
) -> Res<Tracked> {
    let backend = SpawnBackend::default();
    let rig = Rig::start(&[backend], tuning)?;
    let exec = rig.get(backend);
    let t0 = Instant::now();
    let mut handles: Vec<(ExecHandle, bool)> = Vec::with_capacity(n);
    for i in 0..n {
        let stubborn = i % 2 == 1;
        let h = if stubborn {
            exec.create_process(&STUBBORN, true)
        } else {
            exec.create_process(&SLEEPER, true)
        }
        .map_err(|e| format!("starting tracked child {i} of {n}: {e}"))?;
        handles.push((h, stubborn));
        if i % 500 == 499 {
            progress(&format!("tracked {n}: started {}/{n} sleepers", i + 1));
        }
    }
    settle(&handles, &mut progress)?;
    let setup = t0.elapsed();
    let running = exec.running().len();
    if running < n {
        return Err(format!("only {running} of {n} tracked children are running").into());
    }
    let pair = [default_executor(), floor()];
    let mut samples = Vec::with_capacity(repeats);
    for r in 0..repeats {
        progress(&format!(
            "tracked {n}: spawn+wait, repeat {}/{repeats}",
            r + 1
        ));
        let s = interleaved(&pair, &rig, target, plan, None, || {})?;
        let mut it = s.into_iter();
        samples.push([it.next().unwrap_or_default(), it.next().unwrap_or_default()]);
    }
    progress(&format!("tracked {n}: stop()"));
    let stop = rig.shutdown()?;
    let (mut by_term, mut by_kill, mut other) = (0, 0, 0);
    for (h, _) in &handles {
        match h.return_code().and_then(|s| s.signal()) {
            Some(libc::SIGTERM) => by_term += 1,
            Some(libc::SIGKILL) => by_kill += 1,
            _ => other += 1,
        }
    }
    Ok(Tracked {
        setup,
        samples,
        stop,
        by_term,
        by_kill,
        other,
    })
}

/// The control for [`tracked`]: the same pair measured with `n` extra descriptors open in this
/// process (`/dev/null`, close-on-exec) and no children at all. Every tracked child costs the
/// executor one pidfd, and a vfork-style clone without CLONE_FILES copies the whole descriptor
/// table (and exec then closes the close-on-exec ones), so this separates the cost of the open
/// descriptors from the cost of the children. Per repeat: samples of the executor and the floor.
pub fn fd_control(
    n: usize,
    target: &Target,
    plan: &Plan,
    repeats: usize,
    tuning: Tuning,
) -> Res<Vec<[Vec<u64>; 2]>> {
    let rig = Rig::start(&[SpawnBackend::default()], tuning)?;
    let files = (0..n)
        .map(|_| std::fs::File::open("/dev/null"))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| format!("opening {n} descriptors: {e}"))?;
    let pair = [default_executor(), floor()];
    let mut samples = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let mut it = interleaved(&pair, &rig, target, plan, None, || {})?.into_iter();
        samples.push([it.next().unwrap_or_default(), it.next().unwrap_or_default()]);
    }
    drop(files);
    rig.shutdown()?;
    Ok(samples)
}

/// Waits until every tracked child has become `sleep` and every stubborn one ignores SIGTERM, so
/// that `stop()` does not catch a shell before its `trap` (which would end it by SIGTERM and make
/// the "half ignore SIGTERM" claim false).
fn settle(handles: &[(ExecHandle, bool)], progress: &mut impl FnMut(&str)) -> Res<()> {
    const SIGTERM_BIT: u64 = 1 << (libc::SIGTERM - 1);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut pending: Vec<&(ExecHandle, bool)> = handles.iter().collect();
    while !pending.is_empty() {
        if let Some((h, _)) = pending.iter().find(|(h, _)| h.return_code().is_some()) {
            return Err(format!(
                "tracked child {} ended early: {:?}",
                h.pid(),
                h.return_code()
            )
            .into());
        }
        pending.retain(|(h, stubborn)| {
            let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", h.pid())) else {
                return true;
            };
            let mut name_ok = false;
            let mut ign = 0u64;
            for line in status.lines() {
                if let Some(v) = line.strip_prefix("Name:") {
                    name_ok = v.trim() == "sleep";
                } else if let Some(v) = line.strip_prefix("SigIgn:") {
                    ign = u64::from_str_radix(v.trim(), 16).unwrap_or(0);
                }
            }
            !(name_ok && (!stubborn || ign & SIGTERM_BIT != 0))
        });
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} tracked children did not settle (exec sleep, SIGTERM ignored) in 120 s",
                pending.len()
            )
            .into());
        }
        progress(&format!("waiting for {} sleepers to settle", pending.len()));
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
