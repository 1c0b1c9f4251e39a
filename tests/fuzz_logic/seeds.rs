//! The seed corpus, written as code: each seed's name and bytes. `fuzz/corpus/{request,ops}/`
//! holds these files (`tests/fuzz_replay.rs` checks that they match, and rewrites them when
//! `NAPIX_WRITE_SEEDS=1`), plus whatever the fuzzer found worth keeping.

use super::ops::{self, Op};
use super::request::{self, Arg};

/// Options byte of a request seed.
fn opts(backend: u8, spawn: bool, via_executor: bool, discard: bool) -> u8 {
    backend | u8::from(spawn) << 2 | u8::from(via_executor) << 3 | u8::from(discard) << 4
}

pub fn request() -> Vec<(&'static str, Vec<u8>)> {
    use Arg::*;
    vec![
        ("empty-input", vec![]),
        (
            "empty-command",
            request::encode(opts(0, true, true, true), &[]),
        ),
        (
            "true-direct-vfork",
            request::encode(opts(2, true, false, true), &[Dict(b"true")]),
        ),
        (
            "false-executor-posix",
            request::encode(opts(0, true, true, true), &[Dict(b"false")]),
        ),
        (
            "echo-words-executor-pipes",
            request::encode(
                opts(1, true, true, false),
                &[Dict(b"/usr/bin/echo"), Lit(b"hello"), Lit(b"fuzz.world")],
            ),
        ),
        (
            "echo-bytes-executor-pipes",
            request::encode(
                opts(2, true, true, false),
                &[
                    Dict(b"echo"),
                    Lit(b"-nE"),
                    Lit(b""),
                    Lit(b" \t "),
                    Dict(b"\xff\xfe\x80"),
                    Lit(b"-n"),
                    Lit(b"--"),
                ],
            ),
        ),
        (
            "echo-options-and-empty-words",
            request::encode(
                opts(0, true, true, false),
                &[
                    Dict(b"/usr/bin/echo"),
                    Lit(b"-e"),
                    Lit(b"a b"),
                    Lit(b""),
                    Lit(b"-"),
                ],
            ),
        ),
        (
            "nul-in-argument",
            request::encode(opts(0, true, true, true), &[Dict(b"echo"), Dict(b"a\0b")]),
        ),
        (
            "nul-in-program",
            request::encode(opts(0, false, true, true), &[Lit(b"tr\0ue")]),
        ),
        (
            "empty-program",
            request::encode(opts(0, true, true, true), &[Dict(b"")]),
        ),
        (
            "directory-by-path",
            request::encode(opts(2, true, true, true), &[Dict(b"/tmp")]),
        ),
        (
            "directory-in-path",
            request::encode(opts(1, true, true, true), &[Dict(b"tmp")]),
        ),
        (
            "not-executable",
            request::encode(opts(0, true, false, true), &[Dict(b"/etc/passwd")]),
        ),
        (
            "enotdir",
            request::encode(opts(1, true, true, true), &[Dict(b"/etc/passwd/x")]),
        ),
        (
            "missing-bare-name",
            request::encode(
                opts(2, true, true, true),
                &[Dict(b"no-such-program-napix"), Lit(b"x")],
            ),
        ),
        (
            "dot-dot",
            request::encode(opts(0, true, true, true), &[Dict(b"..")]),
        ),
        (
            "non-utf8-program",
            request::encode(opts(0, true, true, true), &[Dict(b"\xff\xfe\x80")]),
        ),
        (
            "bin-slash-fuzz",
            request::encode(
                opts(2, true, false, true),
                &[DictThen(b"/bin/", b"\xc3\x28-nope")],
            ),
        ),
        (
            "huge-argument-e2big",
            request::encode(
                opts(2, true, false, true),
                &[
                    Dict(b"true"),
                    Fill {
                        byte: b'a',
                        len: 200_000,
                    },
                ],
            ),
        ),
        (
            "argument-at-limit",
            request::encode(
                opts(0, true, true, true),
                &[
                    Dict(b"echo"),
                    Fill {
                        byte: b'z',
                        len: 131_071,
                    },
                ],
            ),
        ),
        (
            "huge-program-name",
            request::encode(
                opts(1, true, true, true),
                &[Fill {
                    byte: b'p',
                    len: 70_000,
                }],
            ),
        ),
        (
            "huge-path-program",
            request::encode(
                opts(1, true, false, true),
                &[DictThen(b"/bin/", &[b'q'; 5000])],
            ),
        ),
        (
            "dotdot-true",
            request::encode(opts(1, true, true, true), &[Dict(b"/bin/../bin/true")]),
        ),
        (
            "self-exe-not-spawned",
            request::encode(opts(2, true, true, true), &[Dict(b"/proc/self/exe")]),
        ),
        // Command mode (option bit 5; layout in fuzz_logic/command.rs).
        (
            "command-everything-vfork",
            command(
                2,
                &[
                    3, 0, 0, 2, 1, 3, 0, 0, 2,
                    0, // set NAPIX_F1=two words, remove HOME, PATH=v
                    2, // cwd /tmp
                    2, 6, b'h', b'e', b'l', b'l', b'o', b'\n', // stdin bytes
                    1,     // stderr merged
                    2, 3, 7,    // extra fds 3 and 7
                    5,    // umask 0o31
                    0x32, // RLIMIT_NOFILE 128/192
                ],
            ),
        ),
        (
            "command-env-key-with-equals",
            command(0, &[1, 0, 5, 0, 0, 0, 0, 0, 0, 0]),
        ),
        (
            "command-missing-cwd-fork",
            command(1, &[0, 3, 0, 0, 0, 0, 0]),
        ),
        ("command-fd-twice", command(0, &[0, 0, 0, 0, 2, 4, 4, 0, 0])),
        (
            "command-umask-unsupported-posix-spawn",
            command(0, &[0, 0, 1, 0, 0, 5, 0]),
        ),
        (
            "command-rlimit-soft-above-hard",
            command(2, &[0, 0, 0, 0, 0, 0, 0x13]),
        ),
        (
            "command-clear-env-null-stdin-fork",
            command(1, &[2, 2, 0, 0, 0, 0, 0, 5, 1, 0, 1, 5, 0, 0]),
        ),
        // PATH mode: name, PATH kind (0 removed, 1 cleared, 2 empty, 3 entries), entry count,
        // entries (indices into path_search's table), working directory (1: `/`).
        (
            "path-found-late-after-eacces-enoent-enotdir",
            path(0, &[0, 3, 5, 3, 4, 11, 9, 0, 0]),
        ),
        ("path-eacces-wins", path(1, &[0, 3, 3, 3, 9, 11, 0])),
        (
            "path-enotdir-of-the-last-entry",
            path(2, &[0, 3, 2, 8, 9, 0]),
        ),
        ("path-eloop-ends-the-search", path(0, &[0, 3, 2, 10, 0, 0])),
        ("path-removed-default-finds-true", path(1, &[1, 0, 0, 0])),
        ("path-env-cleared-not-found", path(2, &[0, 1, 0, 0])),
        ("path-empty", path(0, &[1, 2, 0, 0])),
        (
            "path-relative-entry-with-cwd",
            path(1, &[0, 3, 2, 14, 15, 1]),
        ),
        ("path-false-before-true", path(2, &[0, 3, 2, 1, 0, 0])),
        ("path-long-entry-finds-sh", path(0, &[0, 3, 2, 12, 18, 0])),
        ("path-entry-over-path-max", path(1, &[0, 3, 2, 19, 0, 0])),
        ("path-name-over-name-max", path(2, &[3, 3, 2, 11, 0, 0])),
        (
            "path-component-over-name-max",
            path(0, &[0, 3, 2, 20, 0, 0]),
        ),
        (
            "path-system-dirs-and-links",
            path(1, &[0, 3, 5, 5, 6, 7, 16, 17, 0]),
        ),
    ]
}

/// A PATH-mode request seed: option bits 5 and 7, `backend`, then `body`.
fn path(backend: u8, body: &[u8]) -> Vec<u8> {
    super::path_search::encode(backend, body)
}

/// A command-mode request seed: option bit 5, `backend`, then `body`.
fn command(backend: u8, body: &[u8]) -> Vec<u8> {
    super::command::encode_spec(backend, body)
}

/// Header byte of an ops seed: backend index, grace index, thread count, SIGCHLD watch instead
/// of pidfds, waiter spin.
fn header(backend: u8, grace: u8, threads: u8, signal: bool, spin: bool) -> u8 {
    backend + 3 * grace + 12 * (threads - 1) + 36 * u8::from(signal) + 72 * u8::from(spin)
}

// Indices into ops::PROGRAMS.
const TRUE: usize = 0;
const FALSE: usize = 1;
const EXIT3: usize = 2;
const SLEEP: usize = 3;
const NO_TERM: usize = 4;
const ECHO: usize = 5;
const BG_QUIET: usize = 6;
const BG_PIPE: usize = 7;
const STOPS: usize = 8;
const SELF_KILL: usize = 9;
const SHORT: usize = 10;
const CAT: usize = 11;
const MISSING: usize = 12;
const NOEXEC: usize = 13;
const DIR: usize = 14;
const NOT_IN_PATH: usize = 15;
const EMPTY: usize = 16;
const NUL: usize = 17;
const CLOSES: usize = 18;

fn c(program: usize, discard: bool) -> Op {
    Op::Create { program, discard }
}

pub fn ops() -> Vec<(&'static str, Vec<u8>)> {
    assert_eq!(ops::PROGRAMS.len(), 19, "update the seed indices");
    use Op::*;
    let one = |ops: &[Op]| ops.iter().map(|&o| (0u8, o)).collect::<Vec<_>>();
    vec![
        ("empty-input", vec![]),
        (
            "probe-what-children-inherit",
            ops::encode(
                header(2, 1, 2, false, false),
                &[
                    (0, c(CAT, false)),
                    (1, Probe(0xff)),
                    (0, Probe(0x15)),
                    (1, c(SLEEP, false)),
                    (0, Probe(0)),
                    (1, KillStubborn),
                ],
            ),
        ),
        (
            "probe-signal-mode",
            ops::encode(
                header(0, 3, 1, true, false),
                &one(&[c(SLEEP, false), Probe(0x6a), KillStubborn, Probe(0x80)]),
            ),
        ),
        (
            "each-natural-status",
            ops::encode(
                header(0, 1, 1, false, false),
                &one(&[
                    c(TRUE, true),
                    c(FALSE, true),
                    c(EXIT3, true),
                    c(SELF_KILL, true),
                    c(SHORT, true),
                    c(CAT, false),
                    WaitTimeout(0, 45),
                    WaitTimeout(1, 45),
                    WaitTimeout(2, 45),
                    WaitTimeout(3, 45),
                    WaitTimeout(4, 45),
                    WaitTimeout(5, 45),
                    Poll(0),
                    Running,
                ]),
            ),
        ),
        (
            "failing-creates",
            ops::encode(
                header(1, 0, 1, true, false),
                &one(&[
                    c(MISSING, true),
                    c(NOEXEC, false),
                    c(DIR, true),
                    c(NOT_IN_PATH, true),
                    c(EMPTY, true),
                    c(NUL, false),
                    c(TRUE, true),
                    WaitTimeout(0, 45),
                ]),
            ),
        ),
        (
            "kill-escalation-fork",
            ops::encode(
                header(1, 2, 1, true, false),
                &one(&[
                    c(NO_TERM, true),
                    Sleep(5),
                    Kill(0),
                    c(SLEEP, false),
                    Terminate(1),
                ]),
            ),
        ),
        (
            "stop-midway-then-create",
            ops::encode(
                header(2, 3, 2, false, false),
                &[
                    (0, c(SLEEP, true)),
                    (1, c(NO_TERM, false)),
                    (0, Sleep(3)),
                    (1, Stop),
                    (0, c(TRUE, true)),
                    (1, c(ECHO, false)),
                    (0, Kill(0)),
                    (1, Poll(1)),
                ],
            ),
        ),
        (
            "signals-valid-and-invalid",
            ops::encode(
                header(0, 1, 1, false, true),
                &one(&[
                    c(SLEEP, true),
                    Signal(0, 0),
                    Signal(0, libc::SIGUSR1),
                    Signal(0, 65),
                    Signal(0, -1),
                    Signal(0, 1000),
                    Signal(0, 64),
                    WaitTimeout(0, 30),
                    Signal(0, 0),
                ]),
            ),
        ),
        (
            "stopped-child",
            ops::encode(
                header(2, 1, 1, true, false),
                &one(&[
                    c(STOPS, true),
                    c(SLEEP, true),
                    Signal(1, libc::SIGSTOP),
                    WaitTimeout(0, 15),
                    Kill(0),
                    Kill(1),
                ]),
            ),
        ),
        (
            "pipes-and-grandchildren",
            ops::encode(
                header(0, 0, 1, false, false),
                &one(&[
                    c(ECHO, false),
                    c(BG_PIPE, false),
                    c(BG_QUIET, false),
                    c(CLOSES, false),
                    TakeOutput(0),
                    TakeOutput(1),
                    TakeOutput(2),
                    TakeOutput(3),
                    WaitTimeout(1, 45),
                    Drop(2),
                ]),
            ),
        ),
        (
            "dropped-handles",
            ops::encode(
                header(2, 0, 1, true, false),
                &one(&[
                    c(SLEEP, false),
                    c(SHORT, true),
                    c(ECHO, false),
                    Drop(0),
                    Drop(0),
                    Drop(0),
                    c(TRUE, true),
                    Drop(0),
                ]),
            ),
        ),
        (
            "three-threads-race",
            ops::encode(
                header(2, 1, 3, true, true),
                &[
                    (0, c(SLEEP, true)),
                    (1, c(SLEEP, false)),
                    (2, c(TRUE, true)),
                    (0, Kill(1)),
                    (1, Kill(0)),
                    (2, Running),
                    (0, c(NO_TERM, true)),
                    (1, Drop(0)),
                    (2, Kill(2)),
                    (0, Running),
                    (1, c(ECHO, false)),
                    (2, TakeOutput(3)),
                ],
            ),
        ),
        (
            "zero-grace-kill",
            ops::encode(
                header(0, 0, 2, false, false),
                &[
                    (0, c(NO_TERM, true)),
                    (1, c(NO_TERM, true)),
                    (0, Sleep(5)),
                    (0, Kill(0)),
                    (1, Kill(1)),
                ],
            ),
        ),
        // The smallest input that caught the oracle out of date: in Signal mode a signal
        // refused after `stop()` answers `Stopped`, which the oracle did not accept.
        (
            "signal-after-stop-signal-mode",
            ops::encode(
                header(0, 0, 1, true, false),
                &one(&[c(SLEEP, true), Stop, Signal(0, 0)]),
            ),
        ),
        // A number that is no signal is `EINVAL` before and after `stop()`, alive or reaped, in
        // both watch modes.
        (
            "invalid-signal-after-stop-signal-mode",
            ops::encode(
                header(1, 3, 1, true, false),
                &one(&[
                    c(NO_TERM, true),
                    Signal(0, 65),
                    Stop,
                    Signal(0, 65),
                    Signal(0, -1),
                    Signal(0, 0),
                    WaitTimeout(0, 45),
                    Signal(0, 1000),
                ]),
            ),
        ),
        (
            "invalid-signal-after-stop-pidfd-mode",
            ops::encode(
                header(2, 3, 1, false, false),
                &one(&[
                    c(NO_TERM, true),
                    Signal(0, 65),
                    Stop,
                    Signal(0, 65),
                    Signal(0, -1),
                    Signal(0, 0),
                    WaitTimeout(0, 45),
                    Signal(0, 1000),
                ]),
            ),
        ),
        (
            "stop-twice",
            ops::encode(
                header(1, 1, 2, true, false),
                &[
                    (0, c(SLEEP, true)),
                    (0, Stop),
                    (1, Stop),
                    (1, c(SLEEP, true)),
                    (0, Poll(0)),
                ],
            ),
        ),
    ]
}
