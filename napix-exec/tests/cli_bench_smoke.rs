//! Smoke test of `napix-exec bench`: runs the real binary with tiny counts and `--json`, and checks
//! the document's shape: every section, every contender, positive medians. No timing assertions.

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
            &c["throughput_per_s"],
            &format!("{what}: {name} throughput"),
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
    let plot = std::env::temp_dir().join(format!("napix-bench-smoke-{}.svg", std::process::id()));
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
            "--window-ms",
            "50",
            "--grace-ms",
            "100",
            "--json",
            "--plot",
        ])
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
        positive(&r["ratio_to_raw_1_thread"], "ratio_to_raw_1_thread");
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

    assert!(!doc["targets"].as_array().expect("targets").is_empty());

    let svg = std::fs::read_to_string(&plot).expect("plot written");
    let _ = std::fs::remove_file(&plot);
    assert!(svg.contains("<svg"), "not an SVG");
}
