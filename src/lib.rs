//! Run and manage child processes from a multi-threaded program.
//!
//! Any thread asks for a process with [`Executor::create_process`] and clones it with raw
//! syscalls; one executor thread tracks it, reaps it and kills it with escalation (SIGTERM, a
//! grace of 3 s, SIGKILL). This is the Rust form of the Napix server's `executor` module.
//!
//! ```
//! use std::time::Duration;
//! use napix_executor::Executor;
//!
//! // The loop runs on a thread the executor owns; building with `new()` or `build()` alone runs
//! // nothing (see "Running the loop").
//! let ex = Executor::builder().kill_grace(Duration::from_millis(200)).start()?;
//! let echo = ex.create_process(&["sh", "-c", "echo hello"], false)?;
//! let mut out = String::new();
//! let mut stdout = echo.take_stdout().expect("pipes were asked for");
//! std::io::Read::read_to_string(&mut stdout, &mut out)?;
//! assert_eq!(out, "hello\n");
//! assert!(echo.wait().success());
//!
//! let sleeper = ex.create_process(&["sleep", "30"], true)?;
//! let status = sleeper.kill(); // SIGTERM; SIGKILL after the grace
//! assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(15));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! New here? Coming from `std::process` or `tokio::process`, read [the guide][guide] first: it
//! says which names mean something else here (`kill()` escalates and blocks, `start_kill()`
//! sends SIGTERM, stdin defaults to `/dev/null`). Every benchmark figure quoted below is in
//! [the measurements][measurements], with the command and the commit that produced it.
//!
//! [guide]: https://github.com/napix/napix-executor/blob/main/docs/coming-from-std-and-tokio.md
//! [measurements]: https://github.com/napix/napix-executor/blob/main/docs/measurements.md
//!
//! # Running the loop
//!
//! | way | where the loop runs | when it stops |
//! |---|---|---|
//! | [`Executor::start`] / [`ExecutorBuilder::start`] | a thread the executor owns | the last clone of the executor drops, or [`Executor::shutdown`] |
//! | [`Executor::run_with`] | the calling thread, while a closure runs on another | the closure returns, errs or panics |
//! | [`Executor::run`] (the seed's way; [`executor()`] expects it) | the calling thread | [`Executor::stop`] |
//!
//! **The drop rule.** Dropping the last owner of an executor never waits for a kill grace: the
//! children it still tracks get SIGKILL (their whole [`KillScope`]) and are reaped before the
//! drop returns, in milliseconds, whichever way the loop ran. The graceful stop (SIGTERM, the
//! kill grace, SIGKILL) is [`Executor::stop`], or [`Executor::shutdown`], a future that
//! resolves once every child is reaped, for async code.
//!
//! [`Executor::new`], [`ExecutorBuilder::build`] and [`executor()`] build an executor without
//! running its loop (the seed's shape: a program may make requests before its main thread
//! enters `run`, and they are served once it does). A request waiting for a loop nobody runs
//! logs a `tracing` warning after a second that names these fixes; when the waiting thread has
//! no `tracing` subscriber, the same line goes to stderr, once per executor. It fails with
//! [`SpawnError::NotServed`] after [`ExecutorBuilder::request_timeout`] if one is set (there is
//! no default limit): a blocking one on its own, an async one woken by one timer thread for the
//! process (see [`Executor::spawn_async`]).
//!
//! # Async
//!
//! No runtime dependency: [`ExecHandle::wait_async`], [`Executor::spawn_async`] and
//! [`Executor::create_process_async`] return
//! `Send + 'static` futures woken by the executor thread (a waker stored beside the status or in
//! the reply slot: no polling, no thread per child), and `ExecHandle` is [`AsFd`](std::os::fd::AsFd)
//! (the pidfd: readable once the child exited) for event loops such as tokio's `AsyncFd`.
//!
//! ```
//! # let ex = napix_executor::Executor::start()?;
//! # pollster::block_on(async {
//! let child = ex.create_process_async(&["sh", "-c", "exit 3"], true).await?;
//! assert_eq!(child.wait_async().await.code(), Some(3));
//! # Ok::<(), napix_executor::SpawnError>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Speed: awaited from a tokio task, a spawn and wait cost 0.83-0.87x `tokio::process` on the
//! 2-vCPU VM of [the measurements][measurements] (the table and the command are there); no spawner can reach 0.6x there, as
//! the floor itself (one clone-vfork and `waitid`, no executor) costs 0.65-0.70x.
//!
//! Dropping either future is harmless: a dropped wait leaves the child running and reaped; a
//! dropped spawn withdraws the request (a child spawned for it meanwhile is killed and reaped).
//! A spawn future dropped after its child was spawned drops the handle it held: the child runs
//! on, or is killed with [`Command::kill_on_drop`].
//!
//! The pipes too, with no runtime: [`ExecHandle::take_stdout_async`],
//! [`take_stderr_async`](ExecHandle::take_stderr_async) and
//! [`take_stdin_async`](ExecHandle::take_stdin_async) give [`AsyncChildStdout`],
//! [`AsyncChildStderr`] and [`AsyncChildStdin`] (`read`, `read_to_end`, `write`, `write_all`,
//! and `poll_*` forms), and [`ExecHandle::wait_with_output_async`] and
//! [`ExecHandle::wait_with_output_bounded_async`] collect output as their blocking forms do,
//! with the same [`OutputLimits`] ([`Executor::output_async`]: spawn, then collect, with std's
//! `output()` defaults). A pipe joins the executor's own epoll set, edge-triggered,
//! the first time it has to wait, and the loop wakes its task when it turns ready; a time limit
//! or linger is a timerfd in the same set. No thread per child or per pipe, and 100 children
//! captured at once from one task set leave the thread count unchanged (`tests/async_pipes.rs`).
//! Reads are cancel-safe: a dropped read took no byte, and a dropped `read_to_end` leaves what
//! it read in the caller's vector; a dropped pipe or capture leaves the poll set and closes its
//! descriptors. With the `tokio` cargo feature (off by default) the pipes are also tokio's
//! `AsyncRead`/`AsyncWrite`, with `futures-io` (off by default) those of the `futures` crate. Like [`ExecHandle::wait_async`] they need the loop running; a wait
//! that begins or is pending once the executor is dropped fails instead of hanging.
//!
//! ```
//! # let ex = napix_executor::Executor::start()?;
//! # pollster::block_on(async {
//! use napix_executor::{Command, Stdio};
//! let mut cat = Command::new("cat");
//! cat.stdin(Stdio::piped()).stdout(Stdio::piped());
//! let child = ex.spawn(&cat)?;
//! let mut stdin = child.take_stdin_async().expect("piped");
//! stdin.write_all(b"hello").await?;
//! drop(stdin); // end of file for cat
//! let out = child.wait_with_output_async().await?;
//! assert_eq!(out.stdout, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Stopping gracefully from async code is [`Executor::shutdown`] (see "Running the loop").
//!
//! # Spawning a [`Command`]
//!
//! [`Executor::spawn`] takes a [`Command`] built with std's names; `create_process` is the
//! shortcut for a bare argument vector. Every option is checked and prepared on the calling
//! thread (C strings, `envp`, `PATH` search, descriptors, stdin bytes in a filled pipe or a sealed
//! memfd); the
//! child applies it with raw system calls between clone and execve, in the order
//! `sys/spawn/setup.rs` documents. A bad option is a typed error before anything is spawned
//! ([`SpawnError::InvalidOption`], [`SpawnError::OptionFailed`] at stage
//! [`SpawnStage::Prepare`]); a step that fails in the child names the option, the stage and the
//! errno ([`SpawnError::OptionFailed`], e.g. stage [`SpawnStage::Setuid`] with `EPERM`). The
//! PosixSpawn backend gets one errno back from glibc for a failed file action and a failed exec
//! alike; it attributes a failure to the `dup2` (`EBADF`) or the `chdir` (a directory that is
//! now missing or not searchable) by looking again after the fact, so the same failure gives
//! the same stage on every backend.
//!
//! ```
//! use napix_executor::{Command, Executor, Stdio};
//! let ex = Executor::start()?;
//! let mut cmd = Command::new("sh");
//! cmd.args(["-c", "echo \"$GREETING from $(pwd)\" >&2; wc -c"])
//!     .env("GREETING", "hi")
//!     .env_remove("HOME")
//!     .current_dir("/tmp")
//!     .stdin(Stdio::from_bytes(vec![b'x'; 100_000])) // no writer thread, no deadlock
//!     .stdout(Stdio::piped())
//!     .stderr(Stdio::merge_stdout());
//! let child = ex.spawn(&cmd)?;
//! let mut out = String::new();
//! std::io::Read::read_to_string(&mut child.take_stdout().expect("piped"), &mut out)?;
//! assert_eq!(out, "hi from /tmp\n100000\n");
//! assert!(child.wait().success());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Command options against `std::process::Command`
//!
//! | option | std | here | Vfork, Fork | PosixSpawn |
//! |---|---|---|---|---|
//! | program, `PATH` search | `new` | `new` (the child's `PATH` when the command sets one; relative entries from the command's `current_dir`; the path `execve` gets spelled as glibc's `execvp` spells it, so a script's `$0` is std's; a bad `current_dir` or a NUL anywhere is reported before the search: all as std; an entry of `PATH_MAX` bytes or more is skipped as glibc's `execvp` does, and with nothing tried the error is `NotFound`, where std reports the errno glibc left, 0) | yes | yes |
//! | arguments | `arg`, `args`, `CommandExt::arg0` | `arg`, `args`, `arg0` | yes | yes |
//! | environment | `env`, `envs`, `env_remove`, `env_clear` | the same; a bad key or value is an error (std only refuses a NUL in what it sets: here also an empty key, a key with `=`, a removed key with a NUL); a changed environment lists the inherited variables in the parent's order, then the set ones (std sorts them by key) | yes | yes |
//! | working directory | `current_dir` | `current_dir`; a missing directory fails before spawning | yes | glibc 2.29+ (`addchdir_np`, looked up at run time), else `UnsupportedOption` |
//! | stdin | `stdin(Stdio)`, default inherit | `stdin(Stdio)`, default `/dev/null`; also [`Stdio::from_bytes`] (a filled pipe up to 4 KiB, else a sealed memfd) | yes | yes |
//! | stdout, stderr | `stdout`/`stderr(Stdio)`, default inherit | the same, default inherit (`create_process`: null or pipes); [`Stdio::merge_stdout`] for `2>&1` | yes | yes |
//! | `Stdio` kinds | `null`, `inherit`, `piped`, `From<OwnedFd>`, `From<File>`, `From<ChildStdout>` | the same, and `From<ChildStdin>`/`From<ChildStderr>` | yes | yes |
//! | parent's pipe ends | `Child::stdin/stdout/stderr` fields | [`ExecHandle::take_stdin`], `take_stdout`, `take_stderr` | yes | yes |
//! | extra descriptors | (none; `pre_exec` + `dup2`) | [`Command::fd`]`(n, fd)`, `n >= 3`, each once; every other descriptor closed | yes | yes |
//! | umask | (`pre_exec`) | [`Command::umask`] | yes | `UnsupportedOption` |
//! | resource limits | (`pre_exec`) | [`Command::rlimit`]`(`[`Resource`]`, soft, hard)` | yes | `UnsupportedOption` |
//! | user, group, groups | `CommandExt::uid`, `gid`, `groups` (unstable) | `uid`, `gid`, `groups` (setgroups, setgid, setuid in that order; root dropping to a uid without `groups` drops its groups, as std) | yes | `UnsupportedOption` |
//! | build once, spawn many | `spawn(&mut self)` | `spawn(&Command)`; stdin bytes get a fresh pipe or memfd per spawn | | |
//!
//! `tests/differential_std.rs` runs random commands through std and through every backend,
//! child-watch mode and spawn site and compares statuses, output, stdin, environment, working
//! directory, umask, arguments and every failure's kind and errno; the differences above are the
//! ones it allows (its `expected` function), with std told to use `/dev/null` for stdin.
//!
//! What the options cost: a command with 3 variables set, 1 removed, a working directory and
//! stdin bytes spawns and is waited for in 1.06-1.07x the option-less time on the VM of
//! [the measurements][measurements] (0.74-0.76x of std doing the same; the command is there). `Executor::spawn`
//! announces the request to the executor thread before preparing it, so the thread's wake-up
//! overlaps the preparation. With extra descriptors the Vfork child still copies only the low
//! slots of the descriptor table that hold what it installs, not the whole table.
//!
//! # How a request flows
//!
//! 1. The caller's thread validates the command, searches `PATH` and builds the C strings
//!    ([`request`](crate) module).
//! 2. It clones the child itself through the chosen [`SpawnBackend`]:
//!    `clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD)` (default), `posix_spawn`, or `fork`+`execve`
//!    (see "Which thread spawns"). It puts the child in the table and its pidfd in the loop's
//!    epoll set, and tells the loop by a message only what the loop must act on (a deadline, a
//!    stop the child may have missed, a signal-mode child that may have exited already).
//!    Requests that must not be cloned there are queued (a lock-free queue, an eventfd rung
//!    only if the loop may be asleep); the loop hands them to the executor's spawner thread,
//!    which does the same and answers through the caller's reply slot.
//! 3. A thread blocked in [`ExecHandle::wait`] on a child the loop has nothing else to do for
//!    (pidfd mode, no deadline, a kill that reaches only the child, no cgroup of its own) takes
//!    the pidfd out of the loop's epoll set, sleeps on it and reaps the child itself under the
//!    child's reap gate, as a raw `waitpid` caller would: the loop is not woken for it. Every
//!    other child is reaped by the loop when its pidfd turns readable (`waitid(P_PIDFD)`), which
//!    removes the entry and wakes every waiter of the handle; the loop also reaps a waited child
//!    whenever it gets there first (a kill's escalation, `stop()`), and the reap gate lets only
//!    one of them reap. A reap on the waiter's side tells the loop only while the loop has the
//!    child in its books (a kill under way, a stop waiting for the table to empty).
//! 4. [`ExecHandle::kill`] and [`Executor::stop`] send SIGTERM (plus SIGCONT) through the pidfd and
//!    put a SIGKILL deadline in a heap served by one timerfd. A command's own deadline (its
//!    timeout) waits in the same heap and starts that escalation by itself;
//!    [`ExecHandle::start_kill`] starts it without waiting.
//! 5. The reap's `waitid` (raw, with its fifth argument; `wait4` in signal mode) also returns the
//!    child's resource usage: [`ExecHandle::rusage`].
//!
//! The loop never spawns and serves at most a bounded batch of queued messages per pass before
//! it looks at its timer and its children again: no child stuck before its exec, and no flood
//! of requests, delays a reap, a kill or a deadline.
//!
//! Built with [`ExecutorBuilder::timeline(true)`](ExecutorBuilder::timeline), the executor
//! stamps each child's way through these steps (queued, spawn started, spawned, exit observed,
//! reaped, and the caller's reply and wait): [`ExecHandle::timeline`] gives them as a
//! [`Timeline`], with the time of each hop. `napix-exec bench` prints them per contender.
//!
//! # Capturing output
//!
//! A child that fills a pipe nobody reads blocks in `write`, and a caller that waits for it
//! before reading then waits forever (64 KiB is enough). Reading stdout to its end while the
//! child fills stderr blocks the same way. Collect both with
//! [`ExecHandle::wait_with_output`] (std's shape: a [`std::process::Output`]), or within limits
//! with [`ExecHandle::wait_with_output_bounded`]: bytes kept per stream, a time limit after
//! which the child is killed with escalation, and a short linger after the child's exit, so
//! that a process it left in the background holding the pipe open does not hold the caller too
//! ([`LimitedOutput`] says which limit cut it short).
//!
//! Both drain the pipes on the **caller's thread**: its read ends are made non-blocking and
//! `poll(2)` waits on stdout, stderr and the child's exit together (the handle's descriptor: the
//! pidfd, or in [`ChildWatch::Signal`] mode the eventfd written at the reap). No thread is started
//! per child or per pipe, no timer wakes the caller, and the executor thread copies nothing, so
//! its spawn and reap latency does not depend on how much children write.
//!
//! ```
//! # let ex = std::sync::Arc::new(napix_executor::Executor::new()?);
//! # let runner = { let ex = ex.clone(); std::thread::spawn(move || ex.run()) };
//! use std::time::Duration;
//! use napix_executor::OutputLimits;
//! // 200 KB on each stream: waiting before reading would deadlock.
//! let script = "head -c 200000 /dev/zero; head -c 200000 /dev/zero >&2";
//! let out = ex.create_process(&["sh", "-c", script], false)?.wait_with_output()?;
//! assert_eq!((out.stdout.len(), out.stderr.len()), (200_000, 200_000));
//!
//! let limits = OutputLimits::default().max_output(1024).timeout(Duration::from_secs(30));
//! let got = ex.create_process(&["sh", "-c", script], false)?.wait_with_output_bounded(limits)?;
//! assert!(got.stdout_truncated && got.stderr_truncated && !got.timed_out);
//! assert_eq!(got.output.stdout.len(), 1024);
//! # ex.stop(); runner.join().expect("run thread")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Executor::output`] spawns a [`Command`] and collects it the same way, with std's defaults for
//! `output()`: stdout and stderr piped, stdin null, unless the command sets them.
//!
//! The pipe types ([`ChildStdin`], [`ChildStdout`], [`ChildStderr`]) also give their descriptor ([`AsFd`],
//! `Into<OwnedFd>`) and can be made non-blocking (`set_nonblocking`) for an event loop.
//!
//! [`AsFd`]: std::os::fd::AsFd
//!
//! # Guarantees
//!
//! - The child gets fds 0, 1, 2 and the command's extra descriptors only (by default stdin
//!   `/dev/null`; from `create_process` stdout/stderr `/dev/null` or pipes), an empty signal mask
//!   and the default disposition for every signal (a Rust parent ignores SIGPIPE; the child does
//!   not). Descriptors handed to a [`Command`] may themselves sit on 0, 1 or 2 (a host that
//!   closed its stdio): they are moved above every number the child installs first.
//! - Exec failures are errors from `create_process`, never a child exiting 127.
//! - A signal after the reap fails with `ESRCH` and never reaches a process that recycled the
//!   pid. With pidfds ([`ChildWatch::Pidfd`]) every signal goes through the child's pidfd. Without
//!   them ([`ChildWatch::Signal`]) the executor thread alone signals and reaps, and it names a
//!   child by its pid *and* its start time (`/proc/<pid>/stat`, read right after the spawn),
//!   checking both before every signal and every wait; a child whose pid went to another process
//!   is reported gone (a lost status, `ESRCH`). Where signal mode cannot tell: see the caveats.
//! - A dropped handle's process is still reaped (and killed first with
//!   [`Command::kill_on_drop`]); an idle executor sleeps without a timeout.
//! - A cgroup made for a child ([`Command::cgroup_per_child`]) is removed however the request
//!   ends without a child (an error, a withdrawn request, a stop), and after the child's reap.
//! - Dropping an [`Executor`] kills (SIGKILL) and reaps the children it still tracks.
//!
//! # Kernel and libc needs
//!
//! | piece | needs |
//! |---|---|
//! | [`ChildWatch::Pidfd`] (chosen by `Auto` when it works) | Linux 5.4: `pidfd_open` (5.3), `waitid(P_PIDFD)` (5.4) |
//! | [`ChildWatch::Signal`] (the fallback, e.g. RHEL 8's 4.18) | any Linux; a signalfd if [`block_sigchld`] was called in `main`, else a signal-hook SIGCHLD handler |
//! | [`SpawnBackend::Vfork`] (default) | `CLONE_PIDFD` (5.2) in pidfd mode |
//! | [`SpawnBackend::PosixSpawn`] | glibc 2.34+ (`posix_spawn_file_actions_addclosefrom_np`) |
//! | closing fds in the Fork/Vfork child | `close_range` (5.9), else a loop of `close` |
//! | [`Command::cgroup`], [`Command::cgroup_per_child`] (Fork, Vfork on x86-64) | cgroup v2; `clone3` with `CLONE_INTO_CGROUP` (5.7) |
//! | [`KillScope::Cgroup`] | `cgroup.kill` (5.14) |
//! | [`Command::parent_death_signal`] (Fork, Vfork) | `PR_SET_PDEATHSIG` (any) |
//!
//! # Lifetime: the whole tree, deadlines, parent death, usage
//!
//! | [`Command`] option | what happens | backends |
//! |---|---|---|
//! | `process_group(pgid)` (std's) | `setpgid(0, pgid)` in the child | all (PosixSpawn: `POSIX_SPAWN_SETPGROUP`) |
//! | `setsid()` | `setsid()` in the child | all (PosixSpawn: `POSIX_SPAWN_SETSID`) |
//! | `kill_scope(KillScope::Group)` | kills reach the child's group; implies `process_group(0)` | all |
//! | `kill_scope(KillScope::Cgroup)` | kills reach the child's cgroup (`cgroup.kill` for SIGKILL) | Fork, Vfork |
//! | `cgroup(dir)`, `cgroup_per_child(parent)` | the child starts in the cgroup (`clone3`) | Fork, Vfork (x86-64) |
//! | `parent_death_signal(sig)` | `PR_SET_PDEATHSIG`, then exit if the parent already died | Fork, Vfork |
//! | `timeout(d)` | the kill escalation starts by itself after `d` | all |
//! | `kill_grace(d)` | this child's SIGTERM-to-SIGKILL time | all |
//! | `kill_on_drop(true)` (tokio's) | dropping the handle (or a spawn future holding it) starts the kill escalation | all |
//!
//! A backend without a step answers [`SpawnError::UnsupportedOption`]. A process group is
//! signalled only while its leader is unreaped (its zombie pins the group id); when a leader
//! exits while a kill of it is under way (`kill`, `start_kill`, a deadline, `stop`), the loop
//! looks with `waitid(WEXITED | WNOWAIT)`, SIGKILLs what is left of the scope, then reaps. That
//! look happens wherever the loop reaps: a pidfd turning readable, SIGCHLD or signal mode's own
//! looks, the timer's retries, an escalation finding the child gone. Without a kill under way the
//! rest of a group is left alone. [`ExecHandle::rusage`] gives what a child used, from the
//! reaping `waitid` (`wait4` in signal mode).
//!
//! Some kernels kill every child cloned with `CLONE_INTO_CGROUP` into a cgroup
//! that was once emptied through `cgroup.kill`: such a spawn fails with an `ECANCELED`
//! [`SpawnError::OptionFailed`] naming the cgroup. [`Command::cgroup_per_child`] never reuses a
//! cgroup and so never meets it.
//!
//! # Which thread spawns
//!
//! Never the loop. By default ([`SpawnSite::CallingThread`]) the thread calling
//! [`Executor::spawn`], `create_process`, `spawn_many` or an async spawn clones the child
//! itself, with every backend and in both watch modes, puts it in the table and its pidfd in the
//! epoll set, and returns: no hand-off, as many clones at once as there are calling threads, and
//! a child stuck before its exec (a frozen cgroup, a program on a hung NFS or FUSE mount) holds
//! up only the thread that asked for it (a `CLONE_VFORK` clone suspends the cloning thread until
//! the exec). The executor thread escalates and tracks every child, and reaps every child
//! nobody is blocked waiting for (see "Who reaps" below). An async spawn
//! clones on the task's thread too, as `tokio::process` does: it blocks that thread for the
//! clone and exec only, as tokio's own synchronous spawn does.
//!
//! What is not cloned there goes to the executor's *spawner thread* (one per running loop,
//! started at its first request, never the loop itself), through the request queue:
//!
//! - a [`Command::parent_death_signal`]: `PR_SET_PDEATHSIG` fires when the spawning *thread*
//!   exits, and a calling thread may end long before the executor does; the spawner thread
//!   lives as long as the loop;
//! - an async spawn made while no thread runs the loop (a task must not block waiting for one);
//!   a blocking call made then waits for the loop to start, and clones on its own thread;
//! - every request of an executor built with
//!   [`ExecutorBuilder::spawn_site`]`(`[`SpawnSite::ExecutorThread`]`)`: one thread clones every
//!   child, the seed's shape, for programs that want every child to inherit one thread's
//!   attributes.
//!
//! The seed keeps every spawn on one thread because of the POSIX advice about `fork` in a
//! multi-threaded process: the child is a copy of one thread, and a lock another thread held at
//! the fork (malloc's, stdio's, a Rust `Mutex`) stays locked in it for ever, so the child may only
//! call async-signal-safe functions. That advice is about what the *child* does before `execve`,
//! not about which parent thread clones. The child of every backend calls no library function
//! and takes no lock between the clone and `execve`: it runs raw system calls on a plan built
//! before the clone (`sys/spawn/child.rs`; glibc's `posix_spawn` does the same on its side).
//! `CLONE_VFORK` suspends only the cloning thread until the exec, so the plan on that thread's
//! stack stays valid while the other threads run on; the cloning thread blocks every signal
//! around the clone so that no handler of ours runs in the child, which resets every
//! disposition and empties its mask before `execve`; `CLONE_PIDFD` hands the pidfd back with
//! the clone, so the child is never untracked. None of that depends on being the executor
//! thread. In signal mode ([`ChildWatch::Signal`]) the pid names the child only until it is
//! reaped; the loop alone reaps, so the cloning thread reads the child's start time while it
//! is surely unreaped, and hands the child to the loop, which looks at it at once (its SIGCHLD
//! may have come before it was in the table).
//!
//! The child inherits the per-thread attributes of the thread that cloned it: CPU affinity,
//! nice value, seccomp filters, a working directory or umask made per thread with
//! `unshare(CLONE_FS)`, credentials changed per thread with a raw `setresuid`. A spawn racing
//! [`Executor::stop`] is refused, or its child is killed with the others: `run` does not return
//! while a spawning thread is between its check and the table. A calling thread keeps no
//! descriptor between its spawns (the executor lends it its `/proc/self/status` and a pool of
//! the Vfork backend's stdio slots). The throughput table in [the measurements][measurements]
//! measures both sites against threads spawning for themselves.
//!
//! # Who reaps
//!
//! The seed, and the design it came with, have one reaper: the executor thread takes every
//! status, and a waiting caller only waits for it. That costs every spawn+wait two wake-ups on
//! two threads: the loop's for the exit, then the caller's for the stored status. Measured on a
//! 2-vCPU VM, the loop's share (an idle vCPU woken, a pass, the `waitid`) came to 10-18 us per
//! child, and spawn+wait cost 1.7-2.5x the CPU of a thread doing `clone` + `waitid` for itself.
//! So a thread blocked in [`ExecHandle::wait`] reaps its own child where the loop has nothing
//! else to do at the reap (pidfd mode; no [`Command::timeout`]; [`KillScope::Process`]; no
//! cgroup made for the child): it takes the pidfd out of the loop's epoll set and blocks in
//! `waitid(P_PIDFD)` as a raw caller would, then stores the status, the resource usage and the
//! table entry's removal exactly where the loop would. The status is still taken once and kept
//! in one place: the kernel gives it to one `waitid`; the loop (a kill's escalation, `stop()`)
//! and the executor's drop may get there first, and whoever reaps sets the child's reap gate,
//! which the others read after an `ECHILD`. Signals still go through the pidfd, so a handle
//! signalling after either reap gets `ESRCH`, never a stranger. The loop is told only when it
//! has the child in its books: a kill under way (its deadline is forgotten) or a stop waiting
//! for the table to empty. Every other wait (`wait_timeout`, `try_wait`, async waits, signal
//! mode, children with deadlines or group and cgroup scopes) waits for the loop's reap as before.
//!
//! # Caveats
//!
//! - The loop must run for `create_process` and `wait` to make progress (see "Running the
//!   loop"); the global [`executor()`]'s runs where the program calls [`Executor::run`].
//! - An executor belongs to the process that built it: in a child forked without exec,
//!   `create_process` and `run` fail at once with [`SpawnError::ForkedChild`], and so do the
//!   signalling methods of a handle inherited from the parent (it never reaches the parent's
//!   child from there); the child builds its own with [`Executor::new`] (see [`Executor`],
//!   "After `fork()`").
//! - By default killing targets the child only, not the processes it started (a shell's `sleep`
//!   survives the shell's SIGKILL); a command's [`KillScope`] widens that to its process group
//!   (race-free: only while the child is unreaped) or its cgroup v2.
//! - A parent-death signal follows the *thread* that spawned the child, which is the executor's
//!   spawner thread (with either [`SpawnSite`]); it lives as long as the loop, and fires the
//!   signal when the loop ends or the process dies (Go's `Pdeathsig` bites programs that spawn
//!   from short-lived threads; here the spawning thread is the executor's).
//! - If the host sets SIGCHLD to SIG_IGN the kernel reaps children itself: statuses are then lost,
//!   reported as exit code 255 with [`ExecHandle::status_lost`] true. In pidfd mode the executor
//!   still learns of each exit at once; in signal mode it looks at every child every 10 ms while
//!   it has children.
//! - Signal mode learns of exits from SIGCHLD, which the host can take away: a thread waiting in
//!   `sigtimedwait`, a thread that unblocks SIGCHLD (the default disposition then drops what that
//!   thread gets), or a handler that replaces ours without chaining (SIG_DFL, SIG_IGN, its own).
//!   A lost SIGCHLD only delays an exit: while children are tracked the loop asks the kernel for
//!   an exited child every 100 ms (`waitid(P_ALL, WNOWAIT)`, which takes no status) and looks at
//!   every child every second. An exit is seen at most **100 ms** late, **1 s** while the host
//!   keeps an exited child of its own unwaited (the kernel names that one first). A replaced
//!   handler is noticed within 100 ms; the loop then looks every 10 ms until ours is back (it
//!   does not re-install it). These looks wake the loop 10 times a second while signal mode
//!   tracks children; an idle executor, and pidfd mode, never wake for them.
//! - Without pidfds a pid can be recycled once reaped. Signal mode's executor thread alone reaps,
//!   so a pid stays its child's until then, unless the kernel reaps behind its back (the host
//!   ignores SIGCHLD, or waits on any child with `waitpid(-1)`). Then the start time tells the
//!   child from a process that took over its pid, with three limits: a process that got the pid
//!   within the same clock tick (10 ms) as the child's own start looks the same; the pid is
//!   checked, then signalled (`kill`), and a recycle between the two (microseconds; it needs the
//!   whole pid space to wrap) is not seen; without a readable `/proc` (none mounted) the pid
//!   alone names the child (the executor keeps one descriptor in reserve to read `/proc` when
//!   the process is out of them). Pidfd mode has these windows only for a child that runs but whose
//!   pidfd could not be opened after the spawn (out of descriptors; `posix_spawn` cannot return
//!   one): the spawn fails with `ResourceExhausted`, and that child, named by pid and start time
//!   the same way, is killed and reaped by pid if it is still ours.
//! - The start time itself must be read while the pid is surely the child's. In signal mode the
//!   Vfork and Fork backends get a pidfd with the clone (`CLONE_PIDFD`) for that moment only: the
//!   start time counts if the pidfd's process still exists after the read, and a child already
//!   gone is reported lost. The PosixSpawn backend gets no pidfd with its clone, so in signal
//!   mode it is **refused while SIGCHLD is ignored** (or `SA_NOCLDWAIT` set): `create_process`
//!   fails with [`SpawnError::Unsupported`] (kind `Unsupported`) naming the backend and the
//!   reason; use pidfd mode, or Vfork or Fork. Left for a spawn without a pidfd (PosixSpawn;
//!   Vfork and Fork on a kernel without `CLONE_PIDFD`, or with no descriptor free for it): a
//!   host that switches SIGCHLD to SIG_IGN *during* the spawn while the child exits and another
//!   process takes its pid, all before the read (microseconds). The decision is in
//!   `src/sys/spawn/naming.rs`.
//! - Each tracked child holds one fd (three with pipes); see [`raise_fd_limit`]. Only the Vfork
//!   backend's spawn cost stays flat as that number grows (extra descriptors included): glibc's
//!   `posix_spawn` and `fork` copy
//!   the whole descriptor table into every child (about 1 ms at 10,000 fds here).
//! - A waiting caller sleeps on its child's pidfd until the child exits, then polls briefly
//!   for the status the loop is storing before it sleeps ([`ExecutorBuilder::spin`]); in
//!   signal mode (no pidfd) it polls briefly from the start.
//!
//! # Anatomy of the crate
//!
//! A reader who wants to know what happens to a request reads, in this order:
//!
//! | file | owns |
//! |---|---|
//! | `executor.rs` | the public face: builder, `create_process`, `run`, `stop` |
//! | `handoff.rs` | the callers' side of a spawn: prepare, clone here or queue for the spawner thread and await the answer (blocking, a batch, a future); withdrawing |
//! | `command.rs`, `stdio.rs` | [`Command`], [`Stdio`]: what the caller asks for, plain data |
//! | `request.rs` (+ `request/env.rs`, `request/fds.rs`) | checking and preparing a command on the caller's thread: C strings, `PATH` search, `envp`, descriptors, stdin bytes, child setup |
//! | `queue.rs`, `reply_slot.rs` | where a message for the loop enters: the message queue, its doorbell, the stop protocol (closing the queue); the reply slots callers await |
//! | `spawn_site.rs` | which thread clones a child: the caller ([`SpawnSite::CallingThread`]) or the spawner thread |
//! | `spawner_thread.rs` | the executor's spawner thread: the requests that come through the queue |
//! | `spawn.rs` | where a child is spawned and put under watch: pipes, backend, pidfd or start time, table insert, poll set, what the loop must hear |
//! | `reactor.rs` | the loop: what each readiness event means, a bounded batch of messages per pass |
//! | `child_stdio.rs` | the child's stdio on the spawning thread: pipes, `/dev/null`, merged stderr |
//! | `sys/spawn/` | one file per backend; `exec.rs` what they share (a plain view of the program, the child's stdio, the outcome); `child.rs` is the code between fork and exec, `setup.rs` the command's steps there (cwd, umask, rlimits, credentials, extra fds) and their order; `naming.rs` when a signal-mode child's start time names it for sure (a pidfd with the clone, or a refusal) |
//! | `table.rs` | the children spawned and not yet reaped |
//! | `reap.rs` | where a child is reaped: `waitid`, stalled children, orphans; the kernel behind five one-concern seams (reaping a tracked child, reaping by pid, `/proc`, kills by pid, SIGCHLD) |
//! | `sigchld.rs` | signal mode: what tells the loop of exits (signalfd, handler), and when it looks by itself |
//! | `escalation.rs` | where a kill is timed: SIGTERM, the grace, SIGKILL |
//! | `handle.rs` | [`ExecHandle`], the caller's view of one child |
//! | `run_modes.rs` | where the loop runs: the calling thread, an owned thread, beside a closure |
//! | `exit_future.rs`, `spawn_future.rs` | [`ExitFuture`], [`SpawnFuture`]: the same waits for async code |
//! | `output.rs` | collecting a child's stdout and stderr on the caller's thread: [`OutputLimits`], and the drain's rules both forms share |
//! | `output_async.rs`, `async_io.rs` | the same for async code: [`ExecHandle::wait_with_output_async`]; the async pipes ([`AsyncChildStdout`], ...) and timer, woken by the loop |
//! | `shutdown.rs` | [`Executor::shutdown`]: stop and await every reap |
//!
//! and beside them `lifetime.rs` (a child's deadline, kill grace and [`KillScope`]),
//! `kill_scope.rs` (signalling a cgroup's members), `cgroup.rs` (finding cgroup v2, checking,
//! killing and removing cgroups), `request_timer.rs` (the one thread that ends async requests
//! at their request timeout), `rusage.rs`
//! ([`ResourceUsage`]), `shared.rs` (the state one executor's threads share), `proc_state.rs` (one
//! child's state: status, waiters, signalling), `waiter_reap.rs` (a blocking waiter reaping its
//! own child), `poller.rs` (epoll, timerfd and doorbell behind one
//! type), `io_registry.rs` (the readiness of the async pipes and timers in the epoll set), `spin.rs` (bounded polling before sleeping), `timeline.rs` ([`Timeline`]: where one
//! child's time went, recorded with `ExecutorBuilder::timeline`), `waker_list.rs` (the tasks
//! waiting for one event), `direct.rs` (spawning without the loop),
//! `error.rs`. All `unsafe` lives in `sys/`.
//!
//! Every module depends only on the ones below it; no two import each other, directly or
//! through others (`tests/layering.rs` reads `src/` and fails on a circle). Each line lists what a module imports (its `crate::` and `super::` paths, its
//! own child modules, and the public types it names through the crate root), and every name on
//! the right comes further down:
//!
//! ```text
//! output_async -> output, async_io, handle, exit_future, poller
//! output -> executor, handle, request, command
//! shutdown -> executor, shared, proc_state
//! executor -> run_modes, handoff, spawn_future, spawn_site, handle, shared, table, request, sys,
//!             command
//! run_modes -> reactor, shared
//! handoff -> spawn_future, spawn_site, handle, shared, queue, proc_state, request, sys, command,
//!            request_timer
//! reactor -> spawner_thread, shared, queue, escalation, reap, proc_state, cgroup, poller, sigchld
//! async_io -> handle, shared, poller, sys, io_registry
//! spawn_future -> handle, shared, queue, proc_state, request_timer
//! spawn_site -> spawn, shared, proc_state, request, sys
//! spawner_thread -> spawn, shared, queue, sys
//! handle -> shared, queue, exit_future, proc_state, rusage, stdio, timeline, waiter_reap
//! waiter_reap -> shared, proc_state, rusage, sys
//! spawn -> shared, queue, exit_future, reap, table, child_stdio, proc_state, request, sys,
//!          timeline
//! shared -> queue, reap, table, poller, sys, not_served, spin
//! queue -> reap, proc_state, request, poller, reply_slot
//! direct -> proc_state, request, sys
//! escalation -> proc_state
//! exit_future -> proc_state, sys
//! reap -> proc_state, sigchld, sys, rusage
//! table -> proc_state
//! child_stdio -> request, sys
//! proc_state -> kill_scope, sys, lifetime, rusage, spin, timeline, waker_list
//! kill_scope -> cgroup, sys
//! request -> cgroup, sys, command, lifetime, stdio
//! cgroup -> sys
//! poller -> sys, io_registry
//! sigchld -> sys
//! command_lifetime -> command, lifetime
//! sys -> error, resource
//! command -> lifetime, resource, stdio
//! error -> not_served, resource
//! io_registry -> waker_list
//! reply_slot -> request_timer, spin
//! (imports nothing of the crate) lifetime, not_served, request_timer, resource, rusage, spin,
//!     stdio, timeline, waker_list
//! ```
//!
//! (`error` is left out on the right of the lines above `sys`: nearly everything names it.)
//! Inside `sys/` the same holds file by file: one topic per file (`fd.rs`, `pidfd.rs`,
//! `kill.rs`, `signal_mask.rs`, `signal_dispositions.rs`, `sigchld_disposition.rs`,
//! `signalfd.rs`, `fd_limit.rs`, `environ.rs`, `procfs.rs`, `wait.rs`, `clone3.rs`,
//! `cstring_array.rs`), which import each other directly and never through `sys/mod.rs`, whose
//! re-exports are for the rest of the crate. In `sys/spawn/`, `mod.rs` picks the backend; the
//! backends (`fork.rs`, `vfork.rs`, `posix_spawn.rs`) import `exec.rs` (what they share: the
//! program view, stdio, the outcome), `child.rs` and `setup.rs`; `child.rs` imports `setup.rs`,
//! which imports `lifetime_steps.rs`, and all three import the leaf `child_raw.rs` (errno,
//! `exit_group`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

// Only with the `bench-internals` cargo feature (not covered by semver): for napix-exec's
// benchmarks and this crate's own tests, like `Executor::round_trip`.
mod async_io;
mod cgroup;
mod child_stdio;
mod command;
mod command_lifetime;
#[cfg(feature = "bench-internals")]
pub mod direct;
mod error;
mod escalation;
mod executor;
mod exit_future;
mod handle;
mod handoff;
mod io_registry;
mod kill_scope;
mod lifetime;
mod not_served;
mod output;
mod output_async;
mod poller;
mod proc_state;
mod queue;
mod reactor;
mod reap;
mod reply_slot;
mod request;
mod request_timer;
mod resource;
mod run_modes;
mod rusage;
mod shared;
mod shutdown;
mod sigchld;
mod spawn;
mod spawn_future;
mod spawn_site;
mod spawner_thread;
mod spin;
mod stdio;
mod sys;
mod table;
#[cfg(test)]
mod test_support;
mod timeline;
mod waiter_reap;
mod waker_list;

pub use async_io::{AsyncChildStderr, AsyncChildStdin, AsyncChildStdout};
pub use cgroup::cgroup2_mount;
pub use command::{Command, CommandArgs, CommandEnvs};
pub use error::{CommandOption, SpawnError, SpawnStage};
pub use executor::{DEFAULT_KILL_GRACE, Executor, ExecutorBuilder, executor};
pub use exit_future::ExitFuture;
pub use handle::{ChildStderr, ChildStdin, ChildStdout, ExecHandle};
pub use lifetime::KillScope;
pub use output::{DEFAULT_LINGER, LimitedOutput, OutputLimits};
pub use resource::Resource;
pub use rusage::ResourceUsage;
pub use shared::{ChildWatch, SpawnSite};
pub use shutdown::Shutdown;
pub use spawn_future::SpawnFuture;
pub use stdio::Stdio;
pub use sys::spawn::SpawnBackend;
pub use sys::{block_sigchld, raise_fd_limit};
pub use table::ProcessInfo;
pub use timeline::Timeline;

// The front page's and the guide's examples are doctests, so that `cargo test` compiles and
// runs every one of them (in the packaged crate too: both files are in the package).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

#[cfg(doctest)]
#[doc = include_str!("../docs/coming-from-std-and-tokio.md")]
struct GuideExamples;
