//! Smoke test of `napix-exec bench`: runs the real binary with tiny counts and `--json`, and checks
//! the document's shape: every section, every contender, positive medians. No timing assertions.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Every contender of a latency section, as (kind, backend).
const CONTENDERS: [(&str, Option<&str>); 7] = [
    ("executor", Some("vfork")),
    ("executor", Some("posix_spawn")),
    ("executor", Some("fork")),
    ("raw", Some("vfork")),
    ("raw", Some("posix_spawn")),
    ("raw", Some("fork")),
    ("std", None),
];

fn positive(v: &Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x > 0.0 && x.is_finite(), "{what} = {x}, expected > 0");
    x
}

fn check_contenders(section: &Value, what: &str) {
    let list = section["contenders"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no contenders array"));
    for (kind, backend) in CONTENDERS {
        let c = list
            .iter()
            .find(|c| c["kind"] == kind && c["backend"].as_str() == backend)
            .unwrap_or_else(|| panic!("{what}: contender {kind} {backend:?} missing"));
        let name = c["name"].as_str().unwrap_or("?");
        positive(&c["median_ns"], &format!("{what}: {name} median_ns"));
        positive(&c["p99_ns"], &format!("{what}: {name} p99_ns"));
        positive(
            &c["per_second_at_median"],
            &format!("{what}: {name} per second"),
        );
        positive(
            &c["ratio_to_floor"],
            &format!("{what}: {name} ratio_to_floor"),
        );
        assert!(
            c["samples"].as_u64().unwrap_or(0) > 0,
            "{what}: {name} has no samples"
        );
    }
    assert_eq!(
        list.iter().filter(|c| c["floor"] == true).count(),
        1,
        "{what}: exactly one floor"
    );
}

#[test]
fn bench_quick_json_has_every_section_and_contender() {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a test directory");
    let plot = dir.join("plot.svg");
    let export = dir.join("bench.json");
    let markdown = dir.join("bench.md");
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_napix-exec"))
        .args([
            "bench",
            "--quick",
            "--iterations",
            "6",
            "--batch",
            "3",
            "--warmup",
            "1",
            "--repeat",
            "2",
            "--rss",
            "1M,8M",
            "--threads",
            "1,2",
            "--tracked",
            "0,4",
            "--window",
            "50ms",
            "--grace",
            "0.1",
            "--budget",
            "200ms",
            "--json",
            "--export-json",
        ])
        .arg(&export)
        .arg("--export-markdown")
        .arg(&markdown)
        .arg("--plot")
        .arg(&plot)
        .stdin(Stdio::null())
        .output()
        .expect("run napix-exec bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stderr}",
        out.status
    );
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "the quick bench should take seconds"
    );
    // The tables went to stderr, the JSON alone to stdout.
    assert!(
        stderr.contains("spawn+wait latency"),
        "no table on stderr:\n{stderr}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    assert!(doc["machine"]["cores"].as_u64().unwrap_or(0) >= 1);
    assert!(!doc["machine"]["kernel"].as_str().unwrap_or("").is_empty());

    let latency = doc["latency"].as_array().expect("latency array");
    assert!(latency.len() >= 2, "tiny program and /bin/true");
    for (i, s) in latency.iter().enumerate() {
        check_contenders(s, &format!("latency[{i}] {}", s["program"]));
    }

    let sweep = doc["rss_sweep"].as_array().expect("rss_sweep array");
    assert_eq!(sweep.len(), 2);
    assert_eq!(sweep[0]["extra_memory_bytes"], 1 << 20);
    assert_eq!(sweep[1]["extra_memory_bytes"], 8 << 20);
    for (i, s) in sweep.iter().enumerate() {
        check_contenders(s, &format!("rss_sweep[{i}]"));
        assert!(s["parent_rss_bytes"].as_u64().unwrap_or(0) > 1 << 20);
    }

    let tp = doc["throughput"].as_array().expect("throughput array");
    assert_eq!(
        tp.iter().map(|r| r["threads"].as_u64()).collect::<Vec<_>>(),
        [Some(1), Some(2)]
    );
    for r in tp {
        positive(&r["executor_per_s"]["median"], "executor_per_s");
        positive(&r["raw_per_s"]["median"], "raw_per_s");
        positive(
            &r["raw_posix_spawn_per_s"]["median"],
            "raw_posix_spawn_per_s",
        );
        positive(&r["other_site_per_s"]["median"], "other_site_per_s");
        positive(&r["ratio_to_raw_1_thread"], "ratio_to_raw_1_thread");
        positive(
            &r["ratio_to_raw_posix_spawn_same_threads"],
            "ratio_to_raw_posix_spawn_same_threads",
        );
        positive(&r["cpu"]["ratio"], "cpu ratio");
    }

    let tracked = doc["tracked"].as_array().expect("tracked array");
    assert_eq!(tracked.len(), 2);
    for r in tracked {
        positive(&r["executor"]["median_ns"], "tracked executor median");
        positive(&r["floor"]["median_ns"], "tracked floor median");
    }
    let four = &tracked[1];
    assert_eq!(four["tracked"], 4);
    // Two plain sleepers end by SIGTERM, two that ignore it by SIGKILL after the grace.
    assert_eq!(four["ended_by_sigterm"], 2, "{four}");
    assert_eq!(four["ended_by_sigkill"], 2, "{four}");
    positive(&four["stop_ms"], "stop_ms");

    // The headline: the last line printed, every goal with a ratio measured in this run, but
    // the 1 GiB one (the sweep here stops at 8 MiB).
    let headline = doc["headline"]["text"].as_str().expect("a headline");
    assert_eq!(stderr.trim_end().lines().last(), Some(headline), "{stderr}");
    assert!(
        headline.starts_with("headline: executor vs std::process "),
        "{headline}"
    );
    assert!(headline.contains("threads T=1/2: "), "{headline}");
    let ratios = doc["headline"]["ratios"].as_array().expect("ratios");
    assert_eq!(ratios.len(), 3 + 3 * 2 + 1, "{headline}");
    for r in ratios {
        let measured = r["name"] != "exec 1 GiB/10 MiB";
        assert_eq!(r["value"].is_number(), measured, "{r}");
        assert_eq!(r["met"].is_boolean(), measured, "{r}");
    }

    let exported: Value = serde_json::from_slice(&std::fs::read(&export).expect("JSON exported"))
        .expect("the exported JSON parses");
    assert_eq!(exported["latency"], doc["latency"], "the same document");
    let md = std::fs::read_to_string(&markdown).expect("Markdown exported");
    assert!(md.contains("### spawn+wait latency"), "{md}");
    assert!(md.contains("| contender"), "{md}");
    // Every column, even those the terminal leaves out by default.
    assert!(md.contains("loop cpu/spawn"), "{md}");

    let svg = std::fs::read_to_string(&plot).expect("plot written");
    assert!(svg.contains("<svg"), "not an SVG");
    assert!(svg.contains("ratio to the floor"), "no ratio panel");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `napix-exec bench ARGS` with a bound on its time.
fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_napix-exec"))
        .arg("bench")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run napix-exec bench")
}

#[test]
fn every_input_is_checked_before_measuring_and_usage_errors_exit_2() {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-usage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a test directory");
    let not_executable = dir.join("data.txt");
    std::fs::write(&not_executable, "not a program").expect("write a file");
    let not_executable = not_executable.to_str().expect("UTF-8 temp path");
    let cases: &[(&[&str], &str)] = &[
        (&["--plot", "/nonexistent-napix/dir/p.svg"], "--plot"),
        (
            &["--export-json", "/nonexistent-napix/x.json"],
            "--export-json",
        ),
        (
            &["--export-markdown", "/nonexistent-napix/x.md"],
            "--export-markdown",
        ),
        (&["--program", "/nonexistent-napix/prog"], "--program"),
        (&["--program", "no-such-program-napix-bench"], "--program"),
        (&["--program", not_executable], "not an executable"),
        (&["--iterations", "0"], "--iterations"),
        (&["--repeat", "0"], "--repeat"),
        (&["--rss", "0"], "--rss"),
        (&["--rss", "10M,0"], "--rss"),
        (&["--threads", "0"], "--threads"),
        (&["--batch", "0"], "--batch"),
        (&["--window", "0"], "--window"),
        (&["--grace", "soon"], "--grace"),
        (&["--budget-ms", "100"], "--budget-ms"),
        (&["--contenders", "bogus"], "--contenders"),
        (
            &["--only", "latency", "--plot", "/tmp/napix-unused.svg"],
            "--plot",
        ),
    ];
    for (args, named) in cases {
        let start = Instant::now();
        let out = bench(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: measured something");
        // Refused before any measurement (the machine probe alone takes 250 ms).
        assert!(start.elapsed() < Duration::from_secs(5), "{args:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Small settings: one section, two contenders, few samples.
const SMALL: [&str; 12] = [
    "--quick",
    "--only",
    "rss",
    "--rss",
    "1M",
    "--contenders",
    "raw-vfork,exec-vfork",
    "--iterations",
    "4",
    "--warmup",
    "1",
    "--no-bin-true",
];

#[test]
fn a_failed_plot_loses_no_measured_data() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-plotfail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a test directory");
    let export = dir.join("bench.json");
    // Writable when checked, but every write fails (ENOSPC).
    let mut args = SMALL.to_vec();
    args.extend(["--json", "--plot", "/dev/full", "--export-json"]);
    args.push(export.to_str().expect("UTF-8 temp path"));
    let out = bench(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--plot /dev/full"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("the JSON on stdout");
    assert_eq!(doc["rss_sweep"].as_array().map(Vec::len), Some(1));
    let exported: Value =
        serde_json::from_slice(&std::fs::read(&export).expect("the exported JSON"))
            .expect("the exported JSON parses");
    assert_eq!(exported["rss_sweep"], doc["rss_sweep"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tables_fit_100_columns_unless_wide() {
    let mut args = SMALL.to_vec();
    args[2] = "rss,threads,tracked";
    args.extend(["--threads", "1", "--tracked", "0", "--window", "50ms"]);
    let out = bench(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // All but the headline, the one line kept whole for `| tail -1`.
    let (tables, headline) = stdout
        .trim_end()
        .rsplit_once('\n')
        .expect("more than one line");
    assert!(headline.starts_with("headline: "), "{stdout}");
    let longest = tables.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(longest <= 100, "a line of {longest} characters:\n{stdout}");
    assert!(!stdout.contains("loop cpu/spawn"), "{stdout}");
    args.push("--wide");
    let out = bench(&args);
    let wide = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(wide.contains("loop cpu/spawn"), "{wide}");
}

/// `--contenders`' help lists every contender the option takes (both come from one list).
#[test]
fn contenders_help_lists_every_key() {
    let out = bench(&["--contenders", "bogus"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let known = stderr
        .split("(known: ")
        .nth(1)
        .and_then(|k| k.split(')').next())
        .unwrap_or_else(|| panic!("no list of known keys: {stderr}"));
    let keys: Vec<&str> = known.split(", ").collect();
    assert!(
        keys.contains(&"tokio") && keys.contains(&"exec-async-vfork"),
        "{known}"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_napix-exec"))
        .args(["bench", "--help"])
        .output()
        .expect("bench --help");
    // Wrapped to the terminal's width: compare with the line breaks as spaces.
    let help = String::from_utf8_lossy(&help.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for key in keys {
        assert!(
            help.contains(&format!("{key}: ")),
            "{key} not in --help: {help}"
        );
    }
    assert_eq!(
        help.matches("ns, us, ms, s, m, h, d, w, M, y").count(),
        1,
        "one unit list: {help}"
    );
}

/// With few samples and one repeat (`--quick`), p99 and the spread of repeats mean nothing:
/// they are shown as `-`, with a note; a bad duration gives one unit list.
#[test]
fn quick_runs_leave_out_what_few_samples_cannot_tell() {
    let out = bench(&[
        "--quick",
        "--only",
        "latency",
        "--contenders",
        "raw-vfork,exec-vfork",
        "--iterations",
        "4",
        "--warmup",
        "1",
        "--no-bin-true",
        "--no-hops",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let floor = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("raw clone-vfork (floor)"))
        .unwrap_or_else(|| panic!("no floor row: {stdout}"));
    let cells: Vec<&str> = floor.split_whitespace().collect();
    // name (3 words), median (2), p99, medians of repeats, vs floor, vs std
    assert_eq!(&cells[5..7], ["-", "-"], "{floor}");
    assert!(
        stdout.contains("-: left out on this run's few samples"),
        "{stdout}"
    );
    let out = bench(&["--grace", "soon"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.matches("ns, us, ms, s, m, h, d, w, M, y").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("supported units"), "{stderr}");
}
