//! Target `ops`: an arbitrary sequence of operations against one live executor, from one to three
//! threads at once.
//!
//! Operations: `create_process` of one of [`PROGRAMS`] (cheap programs, long sleepers, a child
//! that ignores SIGTERM, one that stops itself, one that leaves a grandchild, and requests that
//! fail: missing program, directory, non-executable, empty, NUL), `kill`, `terminate`,
//! `send_signal` (valid, zero and invalid numbers), `poll`/`return_code`, `wait_timeout`, drop of a
//! handle, `take_stdout`/`take_stderr`, `running`/`children_of`, a short sleep, and `stop` at any
//! point (later creates must then say `Stopped`).
//!
//! Checked during the sequence: every call returns (a watchdog bounds the whole case); a create
//! gives the program's expected result (or `Stopped` once `stop()` was called); a status seen
//! before `stop()` for a child no one signalled is its natural one; `poll` and `return_code`
//! agree; a number that is no signal always gets `EINVAL`, a signal gets `Ok`, `ESRCH` only
//! once the child is gone (never `Stopped`: a signal reaches an unreaped child after `stop()`);
//! `running()` lists only commands we asked for, owned by our threads, and holds every child
//! `children_of` lists.
//!
//! Checked after it: `run()` returns `Ok` within the grace plus a margin after `stop()`; the table
//! is empty; every handle has a status (not "lost"), signals then give `ESRCH` and `kill` returns
//! the same status at once; a create after stop is `Stopped`; a second `run()` returns at once;
//! every taken pipe reaches EOF; once everything is dropped no process of ours is left (no
//! zombie, no live child) and the descriptor set is the one from before the case.
//!
//! Input layout: one header byte `h` (backend `h % 3`, kill grace
//! `[0, 5, 20, 100] ms[(h / 3) % 4]`, threads `1 + (h / 12) % 3`, `ChildWatch::Signal` if
//! `(h / 36) % 2 == 1` else `Pidfd`, a 20 µs waiter spin if `(h / 72) % 2 == 1` else none), then
//! `(op, arg)` byte pairs, at most [`MAX_OPS`]: thread `(op >> 5) % threads`, kind `op & 31` (see
//! [`Op::decode`]).

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use napix_executor::{
    ChildStderr, ChildStdout, ChildWatch, ExecHandle, Executor, SpawnBackend, SpawnError,
};

use super::input::Bytes;
use super::{probe, procfs};

/// Operations per case, all threads together.
pub const MAX_OPS: usize = 64;

pub const GRACES_MS: [u64; 4] = [0, 5, 20, 100];

/// How long one case may take before it counts as hung.
const CASE_LIMIT: Duration = Duration::from_secs(60);

/// How long `run()` may take to return after the final `stop()`, beyond the grace.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// What a program does when nobody signals it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Exit(i32),
    Signal(i32),
    /// Runs until killed (or for seconds).
    Runs,
    /// `create_process` fails.
    NotFound,
    Denied,
    Empty,
    Nul,
}

pub struct Program {
    pub argv: &'static [&'static str],
    pub expect: Expect,
}

pub const PROGRAMS: &[Program] = &[
    Program {
        argv: &["/bin/true"],
        expect: Expect::Exit(0),
    },
    Program {
        argv: &["false"],
        expect: Expect::Exit(1),
    },
    Program {
        argv: &["sh", "-c", "exit 3"],
        expect: Expect::Exit(3),
    },
    Program {
        argv: &["sleep", "30"],
        expect: Expect::Runs,
    },
    Program {
        argv: &["sh", "-c", "trap '' TERM; exec sleep 30"],
        expect: Expect::Runs,
    },
    Program {
        argv: &["sh", "-c", "echo out; echo err >&2"],
        expect: Expect::Exit(0),
    },
    Program {
        argv: &["sh", "-c", "sleep 0.3 </dev/null >/dev/null 2>&1 & exit 0"],
        expect: Expect::Exit(0),
    },
    // The grandchild keeps the pipes open after the child is reaped.
    Program {
        argv: &["sh", "-c", "sleep 0.3 & exit 0"],
        expect: Expect::Exit(0),
    },
    Program {
        argv: &["sh", "-c", "kill -STOP $$; exit 4"],
        expect: Expect::Runs,
    },
    Program {
        argv: &["sh", "-c", "kill -KILL $$"],
        expect: Expect::Signal(libc::SIGKILL),
    },
    Program {
        argv: &["sleep", "0.02"],
        expect: Expect::Exit(0),
    },
    Program {
        argv: &["cat"],
        expect: Expect::Exit(0),
    },
    Program {
        argv: &["/nonexistent/napix-fuzz"],
        expect: Expect::NotFound,
    },
    Program {
        argv: &["/etc/passwd"],
        expect: Expect::Denied,
    },
    Program {
        argv: &["/tmp"],
        expect: Expect::Denied,
    },
    Program {
        argv: &["napix-no-such-program"],
        expect: Expect::NotFound,
    },
    Program {
        argv: &[],
        expect: Expect::Empty,
    },
    Program {
        argv: &["/bin/true", "a\0b"],
        expect: Expect::Nul,
    },
    Program {
        argv: &["sh", "-c", "exec >&- 2>&-; sleep 0.05"],
        expect: Expect::Exit(0),
    },
];

/// Signal numbers for `send_signal`: 0 (probe), common ones, realtime ones and invalid ones.
/// No core-dumping signal: a core file would land in the fuzzer's directory.
pub const SIGNALS: [i32; 16] = [
    0,
    libc::SIGTERM,
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGCONT,
    libc::SIGUSR1,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGWINCH,
    34,
    64,
    65,
    -1,
    1000,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create {
        program: usize,
        discard: bool,
    },
    Kill(u8),
    Terminate(u8),
    Signal(u8, i32),
    Poll(u8),
    WaitTimeout(u8, u64),
    Drop(u8),
    TakeOutput(u8),
    Running,
    Sleep(u64),
    Stop,
    /// Spawns the probe child (with the arguments [`probe::args`] picks) and checks what it
    /// inherited.
    Probe(u8),
    /// Spawns a child that ignores SIGTERM and kills it: SIGKILL must land after the grace.
    KillStubborn,
}

impl Op {
    /// Kinds 0-7 create (half of all opcodes: processes are what the other operations need),
    /// 8-9 kill, 10 terminate, 11-12 signal, 13-14 poll, 15-17 wait_timeout, 18-19 drop,
    /// 20 take output, 21 running, 22 sleep, 23 stop, 24 probe, 25 kill a stubborn child,
    /// 26-31 create again.
    pub fn decode(kind: u8, arg: u8) -> Op {
        let program = usize::from(arg & 0x7f) % PROGRAMS.len();
        let discard = arg & 0x80 != 0;
        match kind & 31 {
            0..=7 | 26..=31 => Op::Create { program, discard },
            24 => Op::Probe(arg),
            25 => Op::KillStubborn,
            8 | 9 => Op::Kill(arg),
            10 => Op::Terminate(arg),
            11 | 12 => Op::Signal(arg & 15, SIGNALS[usize::from(arg >> 4)]),
            13 | 14 => Op::Poll(arg),
            15..=17 => Op::WaitTimeout(arg & 15, u64::from(arg >> 4) * 3),
            18 | 19 => Op::Drop(arg),
            20 => Op::TakeOutput(arg),
            21 => Op::Running,
            22 => Op::Sleep(u64::from(arg % 8)),
            _ => Op::Stop,
        }
    }

    /// The `(kind, arg)` pair that decodes to this op (for the seed corpus).
    pub fn encode(self) -> (u8, u8) {
        let sig = |s: i32| {
            SIGNALS
                .iter()
                .position(|&x| x == s)
                .expect("signal in SIGNALS") as u8
        };
        match self {
            Op::Create { program, discard } => (0, program as u8 | if discard { 0x80 } else { 0 }),
            Op::Kill(i) => (8, i),
            Op::Terminate(i) => (10, i),
            Op::Signal(i, s) => (11, (i & 15) | sig(s) << 4),
            Op::Poll(i) => (13, i),
            Op::WaitTimeout(i, ms) => (15, (i & 15) | ((ms / 3) as u8) << 4),
            Op::Drop(i) => (18, i),
            Op::TakeOutput(i) => (20, i),
            Op::Running => (21, 0),
            Op::Sleep(ms) => (22, ms as u8),
            Op::Stop => (23, 0),
            Op::Probe(arg) => (24, arg),
            Op::KillStubborn => (25, 0),
        }
    }
}

/// A decoded case.
#[derive(Debug, Clone)]
pub struct Plan {
    pub backend: SpawnBackend,
    pub grace: Duration,
    pub watch: ChildWatch,
    pub spin: Duration,
    /// One list of operations per thread.
    pub threads: Vec<Vec<Op>>,
}

pub fn decode(data: &[u8]) -> Plan {
    let mut b = Bytes::new(data);
    let h = b.u8();
    let nthreads = 1 + usize::from(h / 12) % 3;
    let mut threads = vec![Vec::new(); nthreads];
    let mut n = 0;
    while !b.is_empty() && n < MAX_OPS {
        let op = b.u8();
        let arg = b.u8();
        threads[usize::from(op >> 5) % nthreads].push(Op::decode(op, arg));
        n += 1;
    }
    Plan {
        backend: super::backend(SpawnBackend::ALL[usize::from(h) % 3]),
        grace: Duration::from_millis(GRACES_MS[usize::from(h / 3) % 4]),
        watch: if (h / 36) % 2 == 1 {
            ChildWatch::Signal
        } else {
            ChildWatch::Pidfd
        },
        spin: Duration::from_micros(if (h / 72) % 2 == 1 { 20 } else { 0 }),
        threads,
    }
}

/// The bytes that [`decode`] turns into this plan (thread index `t` of each op is taken modulo
/// the thread count).
pub fn encode(header: u8, ops: &[(u8, Op)]) -> Vec<u8> {
    let mut out = vec![header];
    for &(t, op) in ops {
        let (kind, arg) = op.encode();
        out.push(kind | t << 5);
        out.push(arg);
    }
    out
}

/// One handle and what we know about it.
struct Slot {
    handle: Arc<ExecHandle>,
    program: usize,
    discard: bool,
    /// Set before any signal reaches it through us: its status is then no longer "natural".
    touched: AtomicBool,
}

struct Case {
    ex: Arc<Executor>,
    plan_grace: Duration,
    slots: Mutex<Vec<Arc<Slot>>>,
    pipes: Mutex<Vec<Pipe>>,
    /// Set before our `stop()` call.
    stop_called: AtomicBool,
    threads: Mutex<Vec<ThreadId>>,
    spawned: AtomicUsize,
}

enum Pipe {
    Out(ChildStdout),
    Err(ChildStderr),
}

/// What one case did (for statistics).
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    pub ops: usize,
    pub spawned: usize,
    pub elapsed: Duration,
}

pub fn run(data: &[u8]) -> Report {
    let plan = decode(data);
    let _guard = super::exclusive();
    run_plan(&plan)
}

pub fn run_plan(plan: &Plan) -> Report {
    let started = Instant::now();
    let fds_before = procfs::fds();
    let ex = Arc::new(
        Executor::builder()
            .backend(plan.backend)
            .kill_grace(plan.grace)
            .child_watch(plan.watch)
            .spin(plan.spin)
            .build()
            .expect("build executor"),
    );
    let for_loop = Arc::clone(&ex);
    let run_thread = thread::Builder::new()
        .name("fuzz-ops-run".into())
        .spawn(move || for_loop.run())
        .expect("spawn run() thread");

    let case = Arc::new(Case {
        ex: Arc::clone(&ex),
        plan_grace: plan.grace,
        slots: Mutex::new(Vec::new()),
        pipes: Mutex::new(Vec::new()),
        stop_called: AtomicBool::new(false),
        threads: Mutex::new(Vec::new()),
        spawned: AtomicUsize::new(0),
    });
    let barrier = Arc::new(Barrier::new(plan.threads.len()));
    let workers: Vec<JoinHandle<()>> = plan
        .threads
        .iter()
        .enumerate()
        .map(|(i, ops)| {
            let case = Arc::clone(&case);
            let barrier = Arc::clone(&barrier);
            let ops = ops.clone();
            thread::Builder::new()
                .name(format!("fuzz-ops-{i}"))
                .spawn(move || {
                    case.threads.lock().unwrap().push(thread::current().id());
                    barrier.wait();
                    for op in ops {
                        apply(&case, op);
                    }
                })
                .expect("spawn op thread")
        })
        .collect();
    for w in workers {
        join_bounded(w, started + CASE_LIMIT, "an operation thread");
    }

    // The end of every sequence: stop, and everything must be accounted for.
    case.stop_called.store(true, Ordering::SeqCst);
    ex.stop();
    let ran = join_bounded(
        run_thread,
        Instant::now() + plan.grace + STOP_LIMIT,
        "run() after stop()",
    );
    if let Err(e) = ran {
        panic!("run() returned an error: {e}");
    }
    assert!(
        ex.running().is_empty(),
        "table not empty after run() returned: {:?}",
        ex.running()
    );
    let slots = std::mem::take(&mut *case.slots.lock().unwrap());
    for slot in &slots {
        let h = &slot.handle;
        let status = h
            .poll()
            .unwrap_or_else(|| panic!("pid {} has no status after run() returned", h.pid()));
        assert_eq!(h.return_code(), Some(status));
        assert_eq!(h.wait_timeout(Duration::ZERO), Some(status));
        assert!(!h.status_lost(), "pid {}: status lost", h.pid());
        assert_esrch(h.send_signal(0), h);
        assert_esrch(h.terminate(), h);
        assert_eq!(h.kill(), status, "kill() after the end changed the status");
    }
    match ex.create_process(&["/bin/true"], true) {
        Err(SpawnError::Stopped) => {}
        other => panic!("create_process after stop: {other:?}"),
    }
    // A second run() on a stopped, empty executor returns at once.
    let again = {
        let ex = Arc::clone(&ex);
        thread::spawn(move || ex.run())
    };
    if let Err(e) = join_bounded(again, Instant::now() + STOP_LIMIT, "a second run()") {
        panic!("second run() after stop: {e}");
    }

    // Every pipe we took reaches EOF: no write end is left open in this process.
    let pipes = std::mem::take(&mut *case.pipes.lock().unwrap());
    let reader = thread::spawn(move || {
        for pipe in pipes {
            let mut buf = Vec::new();
            match pipe {
                Pipe::Out(mut p) => p.read_to_end(&mut buf),
                Pipe::Err(mut p) => p.read_to_end(&mut buf),
            }
            .expect("read a child's pipe");
        }
    });
    join_bounded(reader, Instant::now() + STOP_LIMIT, "reading pipes to EOF");

    let report = Report {
        ops: plan.threads.iter().map(Vec::len).sum(),
        spawned: case.spawned.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    };
    drop(slots);
    drop(case);
    assert_eq!(
        Arc::strong_count(&ex),
        1,
        "someone still holds the executor"
    );
    drop(ex);

    // (Without AddressSanitizer's `llvm-symbolizer`: see `procfs::children`.)
    let left = procfs::children();
    assert!(
        left.is_empty(),
        "processes of ours left after the case: {left:?}"
    );
    let fds_after = procfs::fds();
    assert_eq!(
        fds_before,
        fds_after,
        "descriptors differ: before [{}], after [{}]",
        procfs::describe_fds(&fds_before),
        procfs::describe_fds(&fds_after)
    );
    report
}

/// Spawns the probe child, reads its report and checks what it inherited: its own pipes and
/// nothing else (no pidfd, no other child's pipe end), an empty mask, default dispositions, the
/// arguments byte for byte.
fn run_probe(case: &Case, arg: u8) {
    let path = probe::path();
    let mut argv = vec![path.as_os_str().to_owned()];
    argv.extend(probe::args(arg));
    let h = match case.ex.create_process(&argv, false) {
        Ok(h) => h,
        Err(SpawnError::Stopped) if case.stop_called.load(Ordering::SeqCst) => return,
        Err(e) => panic!("create_process(probe): {e:?}"),
    };
    case.spawned.fetch_add(1, Ordering::Relaxed);
    let mut out = h.take_stdout().expect("the probe's stdout pipe");
    let err = h.take_stderr().expect("the probe's stderr pipe");
    let (out_name, err_name) = (probe::pipe_name(&out), probe::pipe_name(&err));
    let mut report = Vec::new();
    out.read_to_end(&mut report)
        .expect("read the probe's report");
    let status = h.wait_timeout(STOP_LIMIT).expect("the probe exits at once");
    if status.code() != Some(0) {
        // Killed by stop() before it reported: nothing to look at.
        assert!(
            case.stop_called.load(Ordering::SeqCst),
            "the probe ended with {status:?}"
        );
        return;
    }
    let report = probe::parse(&report);
    probe::check(
        &report,
        &argv,
        Some(&out_name),
        Some(&err_name),
        "ops probe",
    );
}

/// Kills a child that ignores SIGTERM: the status is SIGKILL, and `kill()` returns no sooner than
/// the grace after it was called (SIGKILL never lands before the grace), unless `stop()` started
/// the escalation first.
fn kill_stubborn(case: &Case) {
    let stubborn = PROGRAMS
        .iter()
        .find(|p| p.argv.first() == Some(&"sh") && p.argv[2].starts_with("trap"))
        .expect("a stubborn program");
    let h = match case.ex.create_process(stubborn.argv, true) {
        Ok(h) => h,
        Err(SpawnError::Stopped) if case.stop_called.load(Ordering::SeqCst) => return,
        Err(e) => panic!("create_process(stubborn): {e:?}"),
    };
    case.spawned.fetch_add(1, Ordering::Relaxed);
    let term = 1u64 << (libc::SIGTERM - 1);
    let deadline = Instant::now() + STOP_LIMIT;
    while procfs::ignored(h.pid()).is_some_and(|set| set & term == 0) {
        if h.poll().is_some() || Instant::now() > deadline {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    let stop_before = case.stop_called.load(Ordering::SeqCst);
    let ignores_term = procfs::ignored(h.pid()).is_some_and(|set| set & term != 0);
    let t = Instant::now();
    let status = h.kill();
    let took = t.elapsed();
    if stop_before || case.stop_called.load(Ordering::SeqCst) || !ignores_term {
        return;
    }
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "a stubborn child's kill"
    );
    assert!(
        took >= case.plan_grace,
        "SIGKILL landed {took:?} after kill(), before the grace of {:?}",
        case.plan_grace
    );
    assert!(
        took < case.plan_grace + STOP_LIMIT,
        "kill() took {took:?} with a grace of {:?}",
        case.plan_grace
    );
}

fn join_bounded<T>(h: JoinHandle<T>, deadline: Instant, what: &str) -> T {
    while !h.is_finished() {
        if Instant::now() > deadline {
            panic!("{what} did not finish in time: a call hangs");
        }
        thread::sleep(Duration::from_millis(1));
    }
    match h.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn assert_esrch(r: io::Result<()>, h: &ExecHandle) {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
        other => panic!(
            "pid {}: signal after the reap gave {other:?}, not ESRCH",
            h.pid()
        ),
    }
}

fn pick(case: &Case, i: u8) -> Option<Arc<Slot>> {
    let slots = case.slots.lock().unwrap();
    if slots.is_empty() {
        None
    } else {
        Some(Arc::clone(&slots[usize::from(i) % slots.len()]))
    }
}

fn apply(case: &Case, op: Op) {
    match op {
        Op::Create { program, discard } => create(case, program, discard),
        Op::Kill(i) => {
            if let Some(slot) = pick(case, i) {
                slot.touched.store(true, Ordering::SeqCst);
                let status = slot.handle.kill();
                assert_eq!(slot.handle.poll(), Some(status), "kill() returned early");
            }
        }
        Op::Terminate(i) => {
            if let Some(slot) = pick(case, i) {
                slot.touched.store(true, Ordering::SeqCst);
                check_signal_result(case, &slot, libc::SIGTERM, slot.handle.terminate());
            }
        }
        Op::Signal(i, sig) => {
            if let Some(slot) = pick(case, i) {
                if sig != 0 {
                    slot.touched.store(true, Ordering::SeqCst);
                }
                check_signal_result(case, &slot, sig, slot.handle.send_signal(sig));
            }
        }
        Op::Poll(i) => {
            if let Some(slot) = pick(case, i) {
                let a = slot.handle.poll();
                let b = slot.handle.return_code();
                if let Some(a) = a {
                    assert_eq!(b, Some(a), "return_code disagrees with poll");
                    check_natural(case, &slot, a);
                }
            }
        }
        Op::WaitTimeout(i, ms) => {
            if let Some(slot) = pick(case, i)
                && let Some(status) = slot.handle.wait_timeout(Duration::from_millis(ms))
            {
                assert_eq!(slot.handle.poll(), Some(status));
                check_natural(case, &slot, status);
            }
        }
        Op::Drop(i) => {
            let mut slots = case.slots.lock().unwrap();
            if !slots.is_empty() {
                let n = usize::from(i) % slots.len();
                slots.swap_remove(n);
            }
        }
        Op::TakeOutput(i) => {
            if let Some(slot) = pick(case, i) {
                let out = slot.handle.take_stdout();
                let err = slot.handle.take_stderr();
                if slot.discard {
                    assert!(out.is_none() && err.is_none(), "pipes with discard_output");
                }
                assert!(slot.handle.take_stdout().is_none(), "stdout taken twice");
                assert!(slot.handle.take_stderr().is_none(), "stderr taken twice");
                let mut pipes = case.pipes.lock().unwrap();
                pipes.extend(out.map(Pipe::Out));
                pipes.extend(err.map(Pipe::Err));
            }
        }
        Op::Running => {
            let all = case.ex.running();
            let mine = case.ex.children_of(thread::current().id());
            let ours = case.threads.lock().unwrap().clone();
            for p in &all {
                assert!(
                    ours.contains(&p.owner),
                    "running() owner {:?} unknown",
                    p.owner
                );
                let is_probe = p.command.first().map(std::path::Path::new) == Some(probe::path());
                assert!(
                    is_probe
                        || PROGRAMS.iter().any(|prog| prog
                            .argv
                            .iter()
                            .map(OsString::from)
                            .eq(p.command.clone())),
                    "running() lists a command we never asked for: {:?}",
                    p.command
                );
            }
            for p in &mine {
                assert_eq!(p.owner, thread::current().id());
                assert!(
                    all.iter().any(|q| q.pid == p.pid),
                    "children_of lists pid {} that running() did not",
                    p.pid
                );
            }
        }
        Op::Sleep(ms) => thread::sleep(Duration::from_millis(ms)),
        Op::Probe(arg) => run_probe(case, arg),
        Op::KillStubborn => kill_stubborn(case),
        Op::Stop => {
            case.stop_called.store(true, Ordering::SeqCst);
            let t = Instant::now();
            case.ex.stop();
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "stop() blocked for {:?}",
                t.elapsed()
            );
        }
    }
}

fn create(case: &Case, program: usize, discard: bool) {
    let prog = &PROGRAMS[program];
    let stopped_before = case.ex.is_stopped();
    let result = case.ex.create_process(prog.argv, discard);
    match result {
        Ok(h) => {
            assert!(
                !stopped_before,
                "create_process after stop() gave pid {}",
                h.pid()
            );
            assert!(
                matches!(
                    prog.expect,
                    Expect::Exit(_) | Expect::Signal(_) | Expect::Runs
                ),
                "{:?} should have failed ({:?}) but gave pid {}",
                prog.argv,
                prog.expect,
                h.pid()
            );
            case.spawned.fetch_add(1, Ordering::Relaxed);
            case.slots.lock().unwrap().push(Arc::new(Slot {
                handle: Arc::new(h),
                program,
                discard,
                touched: AtomicBool::new(false),
            }));
        }
        Err(SpawnError::Stopped) => {
            assert!(
                case.ex.is_stopped() && case.stop_called.load(Ordering::SeqCst),
                "Stopped although stop() was never called"
            );
        }
        Err(e) => {
            assert!(
                !stopped_before,
                "after stop() create_process must say Stopped, said {e:?}"
            );
            assert!(!e.to_string().is_empty());
            let ok = matches!(
                (prog.expect, &e),
                (Expect::NotFound, SpawnError::NotFound { .. })
                    | (Expect::Denied, SpawnError::PermissionDenied { .. })
                    | (Expect::Empty, SpawnError::EmptyCommand)
                    | (Expect::Nul, SpawnError::NulByte { index: 1, .. })
            );
            assert!(
                ok,
                "{:?} ({:?}) failed with {e:?}: {e}",
                prog.argv, prog.expect
            );
        }
    }
}

/// A status seen before our `stop()` for a child nobody signalled must be its natural one.
fn check_natural(case: &Case, slot: &Slot, status: ExitStatus) {
    assert!(!slot.handle.status_lost());
    // Read the flags after the status: if stop() had not been called by now, the status was set
    // before any escalation.
    if slot.touched.load(Ordering::SeqCst) || case.stop_called.load(Ordering::SeqCst) {
        return;
    }
    let prog = &PROGRAMS[slot.program];
    match prog.expect {
        Expect::Exit(code) => assert_eq!(
            status.code(),
            Some(code),
            "{:?} (untouched) ended with {status:?}",
            prog.argv
        ),
        Expect::Signal(sig) => assert_eq!(
            status.signal(),
            Some(sig),
            "{:?} (untouched) ended with {status:?}",
            prog.argv
        ),
        Expect::Runs => panic!(
            "{:?} (untouched, grace {:?}) ended on its own with {status:?}",
            prog.argv, case.plan_grace
        ),
        _ => unreachable!("a failed create has no handle"),
    }
}

/// The answers `send_signal` documents, in its order: `EINVAL` for a number that is no signal,
/// always (before and after `stop()`, alive or reaped); for a signal, `Ok`, or `ESRCH` once the
/// child is gone (before and after `stop()`, in both watch modes).
fn check_signal_result(case: &Case, slot: &Slot, sig: i32, r: io::Result<()>) {
    // Linux signal numbers: 0 (probe) to SIGRTMAX, 64 on every architecture we run on.
    let valid = (0..=64).contains(&sig);
    let pid = slot.handle.pid();
    match r {
        Err(e) if !valid => assert_eq!(
            e.raw_os_error(),
            Some(libc::EINVAL),
            "send_signal({sig}) to pid {pid}: {e}, not EINVAL"
        ),
        Ok(()) if !valid => panic!("send_signal({sig}) to pid {pid} succeeded"),
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
            // Gone: reaped, so the status is there or about to be stored.
            assert!(
                slot.handle.wait_timeout(Duration::from_secs(5)).is_some(),
                "ESRCH for pid {pid} but no status"
            );
        }
        // `Stopped` included: a signal still reaches an unreaped child after `stop()`, in both
        // watch modes.
        Err(e) => panic!(
            "send_signal({sig}) to pid {pid}: {e} (watch {:?}, stop() called: {})",
            case.ex.child_watch(),
            case.stop_called.load(Ordering::SeqCst)
        ),
    }
}
