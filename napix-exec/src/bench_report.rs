//! What the bench reports: the JSON document (serde), the tables, the Markdown export, and the
//! latency-vs-parent-memory plot.

use std::path::Path;

use serde::Serialize;

use super::bench_headline::Headline;
use super::bench_hops::{CpuRow, Hops};
use super::bench_measure::{Contender, LoopLoad, Plan, Res, backend_name};
use super::bench_stats::{
    Layout, Summary, Table, fmt_bytes, fmt_count, fmt_ns, fmt_ns_range, fmt_ratio, median, min_max,
    p99_cell, spread_cell,
};

/// The whole run, as printed by `--json`.
#[derive(Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub machine: Machine,
    pub settings: Settings,
    pub latency: Vec<LatencySection>,
    pub rss_sweep: Vec<LatencySection>,
    pub throughput: Vec<ThroughputRow>,
    pub tracked: Vec<TrackedRow>,
    /// CPU used by other processes during each section.
    pub other_load: Vec<OtherLoad>,
    pub notes: Vec<String>,
    /// The last line printed: the default executor's ratios against its goals. Set once
    /// everything is measured.
    pub headline: Option<Headline>,
}

/// The machine the numbers come from.
#[derive(Serialize)]
pub struct Machine {
    pub cores: usize,
    pub kernel: String,
    pub cpu: String,
    pub transparent_hugepages: String,
    /// The cpuidle driver, and for a guest's haltpoll driver its polling time: where idle
    /// vCPUs halt without polling, waking one costs the host's wake-up, and one thread's
    /// tight spawn+wait loop is sensitive to a few microseconds between spawns
    /// (`examples/gap_probe.rs`).
    pub cpu_idle: String,
    pub page_size: usize,
    /// Cores kept busy by other work in the 250 ms before the bench started (/proc/stat):
    /// anything well above 0 adds noise to every figure.
    pub busy_cores_before: f64,
}

impl Machine {
    pub fn probe() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
        let cpu = read("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease").unwrap_or_else(|_| "unknown".into()),
            cpu,
            transparent_hugepages: read("/sys/kernel/mm/transparent_hugepage/enabled")
                .unwrap_or_else(|_| "unknown".into()),
            cpu_idle: cpu_idle(&read),
            page_size: rustix::param::page_size(),
            busy_cores_before: busy_cores(std::time::Duration::from_millis(250)),
        }
    }
}

/// "haltpoll, guest_halt_poll_ns 0", "intel_idle", or "unknown".
fn cpu_idle(read: &dyn Fn(&str) -> std::io::Result<String>) -> String {
    let Ok(driver) = read("/sys/devices/system/cpu/cpuidle/current_driver") else {
        return "unknown".into();
    };
    match read("/sys/module/haltpoll/parameters/guest_halt_poll_ns") {
        Ok(ns) if driver == "haltpoll" => format!("{driver}, guest_halt_poll_ns {ns}"),
        _ => driver,
    }
}

/// Cores busy on the whole machine over `window` (the bench is idle meanwhile).
fn busy_cores(window: std::time::Duration) -> f64 {
    let meter = LoadMeter::start();
    std::thread::sleep(window);
    meter.other_cores()
}

/// Busy and total clock ticks of the whole machine, from the aggregate `cpu` line of /proc/stat.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// CPU ticks of this process and of its reaped children (utime, stime, cutime, cstime of
/// /proc/self/stat).
fn own_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            Some(
                rest.split_whitespace()
                    .skip(11)
                    .take(4)
                    .filter_map(|x| x.parse::<u64>().ok())
                    .sum(),
            )
        })
        .unwrap_or(0)
}

/// Measures how much CPU other work on the machine used over a stretch of the bench: machine
/// busy time minus this process's and its reaped children's. Noise the interleaving cannot
/// cancel (it hits the contenders differently) shows up here, so the run can say so.
pub struct LoadMeter {
    at: std::time::Instant,
    busy: u64,
    own: u64,
}

impl LoadMeter {
    pub fn start() -> LoadMeter {
        LoadMeter {
            at: std::time::Instant::now(),
            busy: machine_ticks().map_or(0, |(b, _)| b),
            own: own_ticks(),
        }
    }

    /// Cores kept busy by other processes, on average, since `start`.
    pub fn other_cores(&self) -> f64 {
        let busy = machine_ticks()
            .map_or(0, |(b, _)| b)
            .saturating_sub(self.busy);
        let own = own_ticks().saturating_sub(self.own);
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let wall = self.at.elapsed().as_secs_f64().max(1e-3);
        (busy.saturating_sub(own) as f64 / ticks / wall).max(0.0)
    }
}

/// Other work on the machine during one section.
#[derive(Serialize)]
pub struct OtherLoad {
    pub section: String,
    /// Cores kept busy by other processes, on average.
    pub cores: f64,
}

/// The settings the run used.
#[derive(Serialize)]
pub struct Settings {
    pub plan: Plan,
    pub repeat: usize,
    pub rss_bytes: Vec<u64>,
    pub threads: Vec<usize>,
    pub tracked: Vec<usize>,
    pub throughput_window_ms: u128,
    pub kill_grace_ms: u128,
    /// `ExecutorBuilder::spin` given to the executors under test (None: the library's default).
    pub spin_us: Option<u128>,
    pub default_backend: &'static str,
}

/// One contender's result in one section.
#[derive(Serialize)]
pub struct ContenderResult {
    pub name: String,
    /// Its `--contenders` key (`exec-vfork`, `raw-vfork`, `std`, ...).
    pub key: String,
    pub kind: &'static str,
    pub backend: Option<&'static str>,
    pub floor: bool,
    /// Over the samples of every repeat pooled.
    #[serde(flatten)]
    pub summary: Summary,
    /// Sequential spawn+wait per second on one thread at the median latency (1 / median).
    pub per_second_at_median: f64,
    /// The median of each repeat: their spread is the run-to-run noise.
    pub repeat_medians_ns: Vec<f64>,
    /// Ratio of medians to the raw clone-vfork floor and to std::process::Command.
    pub ratio_to_floor: Option<f64>,
    pub ratio_to_std: Option<f64>,
    /// Executor contenders: where the time of a spawn+wait goes (every repeat pooled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hops: Option<Hops>,
}

/// Results per contender from samples per repeat (`per_repeat[r][c]`).
pub fn contender_results(
    contenders: &[Contender],
    per_repeat: &[Vec<Vec<u64>>],
) -> Vec<ContenderResult> {
    let mut out: Vec<ContenderResult> = contenders
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let mut repeat_medians = Vec::new();
            let mut pooled = Vec::new();
            for rep in per_repeat {
                let mut s = rep.get(i).cloned().unwrap_or_default();
                if let Some(sum) = Summary::of(&mut s) {
                    repeat_medians.push(sum.median_ns);
                }
                pooled.extend_from_slice(&s);
            }
            let summary = Summary::of(&mut pooled)?;
            Some(ContenderResult {
                name: c.name.clone(),
                key: c.key(),
                kind: c.kind_name(),
                backend: c.backend().map(backend_name),
                floor: c.is_floor(),
                per_second_at_median: summary.per_second(),
                summary,
                repeat_medians_ns: repeat_medians,
                ratio_to_floor: None,
                ratio_to_std: None,
                hops: None,
            })
        })
        .collect();
    let floor = out.iter().find(|r| r.floor).map(|r| r.summary.median_ns);
    // Plain std only: `std-options` is of kind "std" too, but sets env, cwd and stdin.
    let std = out
        .iter()
        .find(|r| r.key == "std")
        .map(|r| r.summary.median_ns);
    for r in &mut out {
        r.ratio_to_floor = floor.map(|f| r.summary.median_ns / f);
        r.ratio_to_std = std.map(|s| r.summary.median_ns / s);
    }
    out
}

/// Latency of every contender on one program at one parent size.
#[derive(Serialize)]
pub struct LatencySection {
    pub program: String,
    pub path: String,
    /// Memory allocated and touched by the bench before measuring (0 outside the sweep).
    pub extra_memory_bytes: u64,
    /// The bench's resident set size while measuring.
    pub parent_rss_bytes: u64,
    pub contenders: Vec<ContenderResult>,
}

impl LatencySection {
    /// The first contender matching `pred`.
    pub fn find(&self, pred: impl Fn(&ContenderResult) -> bool) -> Option<&ContenderResult> {
        self.contenders.iter().find(|c| pred(c))
    }

    pub fn table(&self, title: &str) -> Table {
        let mut t = Table::new(
            title,
            &[
                "contender",
                "median",
                "p99",
                "medians of repeats",
                "1/median",
                "vs floor",
                "vs std",
            ],
        );
        t.wide_only([4]);
        for c in &self.contenders {
            let p99 = t.thin(p99_cell(c.summary.p99_ns, c.summary.samples));
            let spread = t.thin(spread_cell(&c.repeat_medians_ns, fmt_ns_range));
            t.row(vec![
                c.name.clone(),
                fmt_ns(c.summary.median_ns),
                p99,
                spread,
                format!("{}/s", fmt_count(c.per_second_at_median)),
                fmt_ratio(c.ratio_to_floor),
                fmt_ratio(c.ratio_to_std),
            ]);
        }
        let n: Vec<usize> = self.contenders.iter().map(|c| c.summary.samples).collect();
        let (lo, hi) = (
            n.iter().min().copied().unwrap_or(0),
            n.iter().max().copied().unwrap_or(0),
        );
        t.note(format!(
            "{}-{} samples per contender; parent RSS {}; vs floor and vs std are ratios of \
             medians to raw clone-vfork and to std::process::Command",
            lo,
            hi,
            fmt_bytes(self.parent_rss_bytes)
        ));
        t
    }
}

/// The parent-memory sweep as one table: median per contender per size.
pub fn sweep_table(points: &[LatencySection], plan: &Plan) -> Table {
    let mut headers: Vec<String> = vec!["contender".into()];
    for p in points {
        headers.push(format!("+{}", fmt_bytes(p.extra_memory_bytes)));
        headers.push("p99".into());
    }
    if points.len() > 1 {
        headers.push("last/first".into());
        headers.push("vs floor".into());
    }
    let hdr: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut t = Table::new(
        "parent-memory sweep: median spawn+wait of the tiny program with +N of parent memory \
         allocated and touched",
        &hdr,
    );
    t.wide_only((0..points.len()).map(|i| 2 + 2 * i));
    let Some(first) = points.first() else {
        return t;
    };
    for c in &first.contenders {
        let mut row = vec![c.name.clone()];
        let mut medians = Vec::new();
        for p in points {
            match p.find(|x| x.name == c.name) {
                Some(x) => {
                    row.push(fmt_ns(x.summary.median_ns));
                    row.push(t.thin(p99_cell(x.summary.p99_ns, x.summary.samples)));
                    medians.push(x.summary.median_ns);
                }
                None => row.extend(["-".to_string(), "-".to_string()]),
            }
        }
        if points.len() > 1 {
            let ratio = match (medians.first(), medians.last()) {
                (Some(a), Some(b)) if medians.len() == points.len() => Some(b / a),
                _ => None,
            };
            row.push(fmt_ratio(ratio));
            let last = points.last().and_then(|p| p.find(|x| x.name == c.name));
            row.push(fmt_ratio(last.and_then(|x| x.ratio_to_floor)));
        }
        t.row(row);
    }
    let rss: Vec<String> = points
        .iter()
        .map(|p| fmt_bytes(p.parent_rss_bytes))
        .collect();
    t.note(format!(
        "last/first: the largest size's median over the smallest's; vs floor: at the largest \
         size; parent RSS while measuring: {}; slow contenders stop after {} ms per repeat (at least {} \
         samples)",
        rss.join(", "),
        plan.budget.as_millis(),
        plan.min_samples
    ));
    t
}

/// A value measured once per repeat.
#[derive(Serialize, Clone)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub values: Vec<f64>,
}

impl Spread {
    pub fn of(values: Vec<f64>) -> Spread {
        let (min, max) = min_max(&values);
        Spread {
            median: median(&values),
            min,
            max,
            values,
        }
    }
}

/// Throughput with T submitting threads.
#[derive(Serialize)]
pub struct ThroughputRow {
    pub threads: usize,
    /// spawn+wait per second, T threads through one default executor (default backend, built
    /// with no site option).
    pub executor_per_s: Spread,
    /// spawn+wait per second, T threads each doing raw clone-vfork + waitid.
    pub raw_per_s: Spread,
    /// spawn+wait per second, T threads each doing raw posix_spawn + waitid(P_PID).
    pub raw_posix_spawn_per_s: Spread,
    pub ratio_to_raw_1_thread: Option<f64>,
    pub ratio_to_raw_2_threads: Option<f64>,
    /// Against T raw clone-vfork threads.
    pub ratio_to_raw_same_threads: f64,
    /// Against T raw posix_spawn threads.
    pub ratio_to_raw_posix_spawn_same_threads: f64,
    /// The executor thread's load in the window with the median rate.
    pub executor_thread: Option<LoopLoad>,
    /// CPU per spawn+wait, executor against raw clone-vfork threads.
    pub cpu: CpuRow,
    /// Where the time of the executor's spawn+waits goes (every repeat pooled).
    pub executor_hops: Option<Hops>,
    /// The raw threads' spawn call and wait (every repeat pooled), in the same terms.
    pub raw_hops: Option<Hops>,
    /// The `SpawnSite` the default executor does not use (`ExecutorThread`: a spawner thread
    /// the executor owns clones every child), and the same figures through an executor built
    /// with it.
    pub other_site: String,
    pub other_site_per_s: Spread,
    pub other_site_ratio_to_raw_same_threads: f64,
    pub other_site_thread: Option<LoopLoad>,
    pub other_site_cpu: CpuRow,
    pub other_site_hops: Option<Hops>,
    /// Batches: each thread spawns `batch` commands with one `spawn_many` and waits for them
    /// all, against raw threads spawning `batch` children and then waiting for each.
    pub batch: usize,
    pub many_per_s: Spread,
    pub raw_many_per_s: Spread,
    pub many_ratio_to_raw_many: f64,
}

/// A rate with its spread over the repeats (`-` for one repeat).
fn rate_cells(t: &mut Table, s: &Spread) -> [String; 2] {
    let spread = spread_cell(&s.values, |lo, hi| {
        format!("{}-{}", fmt_count(lo), fmt_count(hi))
    });
    [fmt_count(s.median), t.thin(spread)]
}

pub fn throughput_table(
    rows: &[ThroughputRow],
    window_ms: u128,
    backend: &str,
    other: &str,
) -> Table {
    let headers = [
        "threads".to_string(),
        "executor/s".into(),
        "min-max".into(),
        "raw vfork/s".into(),
        "min-max".into(),
        "raw posix_spawn/s".into(),
        "min-max".into(),
        "exec/raw1".into(),
        "exec/raw2".into(),
        "exec/vforkT".into(),
        "exec/pspawnT".into(),
        format!("{other}/s"),
        "min-max".into(),
        format!("{other}/vforkT"),
        "many/s".into(),
        "raw many/s".into(),
        "many/raw".into(),
        "loop busy".into(),
        "in spawn".into(),
        format!("{other} loop busy"),
        "user/sys".into(),
        "loop cpu/spawn".into(),
        "sleeps/spawn".into(),
    ];
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut t = Table::new(
        format!(
            "throughput: T threads spawn+wait the tiny program for {window_ms} ms \
             (executor = one default executor, {backend}; raw = each thread spawns for itself)"
        ),
        &headers,
    );
    t.wide_only([2, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 19, 20, 21, 22]);
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    for r in rows {
        let load = r.executor_thread.as_ref();
        let executor = rate_cells(&mut t, &r.executor_per_s);
        let raw = rate_cells(&mut t, &r.raw_per_s);
        let raw_posix_spawn = rate_cells(&mut t, &r.raw_posix_spawn_per_s);
        let site = rate_cells(&mut t, &r.other_site_per_s);
        // The one spawning thread's share in clone+exec: whichever executor has one.
        let in_spawn = load
            .and_then(|l| l.in_spawn)
            .or_else(|| r.other_site_thread.as_ref().and_then(|l| l.in_spawn));
        let [e, e_spread] = executor;
        let [rv, rv_spread] = raw;
        let [rp, rp_spread] = raw_posix_spawn;
        let [si, si_spread] = site;
        t.row(vec![
            r.threads.to_string(),
            e,
            e_spread,
            rv,
            rv_spread,
            rp,
            rp_spread,
            fmt_ratio(r.ratio_to_raw_1_thread),
            fmt_ratio(r.ratio_to_raw_2_threads),
            fmt_ratio(Some(r.ratio_to_raw_same_threads)),
            fmt_ratio(Some(r.ratio_to_raw_posix_spawn_same_threads)),
            si,
            si_spread,
            fmt_ratio(Some(r.other_site_ratio_to_raw_same_threads)),
            fmt_count(r.many_per_s.median),
            fmt_count(r.raw_many_per_s.median),
            fmt_ratio(Some(r.many_ratio_to_raw_many)),
            load.map_or("-".into(), |l| pct(l.busy)),
            in_spawn.map_or("-".into(), pct),
            r.other_site_thread
                .as_ref()
                .map_or("-".into(), |l| pct(l.busy)),
            load.map_or("-".into(), |l| {
                if l.user_share.is_finite() {
                    format!("{:.0}/{:.0}%", l.user_share * 100.0, l.sys_share * 100.0)
                } else {
                    "-".into()
                }
            }),
            load.map_or("-".into(), |l| fmt_ns(l.cpu_ns_per_spawn)),
            load.map_or("-".into(), |l| format!("{:.2}", l.sleeps_per_spawn)),
        ]);
    }
    let other_site = rows.first().map_or("", |r| r.other_site.as_str());
    t.note(format!(
        "exec/vforkT, exec/pspawnT: the default executor's rate over T raw threads' doing \
         clone-vfork + waitid, posix_spawn + waitid. {other} = an executor built with \
         SpawnSite::{other_site}. many = each thread spawns a batch with one spawn_many (the \
         default executor) and waits for all of it; raw many = each raw thread spawns the same \
         number of children, then waits for each (--wide shows both rates). loop busy = the \
         executor's loop thread on-CPU time / wall time; in spawn = the time the executor's one \
         spawning thread (SpawnSite::ExecutorThread) spent inside clone+exec (on CPU or blocked \
         until the child's exec, from the timelines) / wall time: near 100%, that thread is the \
         wall; user/sys from /proc/self/task/TID/stat; sleeps = voluntary context switches. \
         On a VM whose idle vCPUs halt (see cpuidle above), T=1 depends on a few microseconds \
         between one child's exit and the next clone: napix-exec/examples/gap_probe.rs shows it"
    ));
    t
}

/// Latency with N children tracked.
#[derive(Serialize)]
pub struct TrackedRow {
    pub tracked: usize,
    pub executor: ContenderResult,
    pub floor: ContenderResult,
    pub executor_ratio_to_none: Option<f64>,
    pub floor_ratio_to_none: Option<f64>,
    /// Starting the N sleepers and waiting until all exec'd (and half ignore SIGTERM).
    pub setup_ms: f64,
    /// From stop() to run() returning with all N reaped.
    pub stop_ms: f64,
    pub kill_grace_ms: f64,
    pub ended_by_sigterm: usize,
    pub ended_by_sigkill: usize,
    pub ended_otherwise: usize,
    /// The control: the same pair with N extra descriptors open and no children.
    pub fd_control: Option<FdControl>,
}

/// Latency with N descriptors open and no children (see `bench_measure::fd_control`).
#[derive(Serialize)]
pub struct FdControl {
    pub open_fds: usize,
    pub executor: ContenderResult,
    pub floor: ContenderResult,
}

pub fn tracked_table(rows: &[TrackedRow], grace_ms: u128) -> Table {
    let mut t = Table::new(
        format!(
            "scale: one more spawn+wait (tiny program) with N sleepers tracked (half ignore \
             SIGTERM), then stop() with {grace_ms} ms grace"
        ),
        &[
            "tracked",
            "executor median",
            "p99",
            "vs N=0",
            "floor median",
            "vs N=0",
            "exec vs floor",
            "stop() time",
            "TERM/KILL/other",
            "setup",
            "control: exec",
            "control: floor",
        ],
    );
    t.wide_only([2, 6, 9, 10, 11]);
    for r in rows {
        let p99 = t.thin(p99_cell(
            r.executor.summary.p99_ns,
            r.executor.summary.samples,
        ));
        t.row(vec![
            fmt_count(r.tracked as f64),
            fmt_ns(r.executor.summary.median_ns),
            p99,
            fmt_ratio(r.executor_ratio_to_none),
            fmt_ns(r.floor.summary.median_ns),
            fmt_ratio(r.floor_ratio_to_none),
            fmt_ratio(r.executor.ratio_to_floor),
            fmt_ns(r.stop_ms * 1e6),
            format!(
                "{}/{}/{}",
                r.ended_by_sigterm, r.ended_by_sigkill, r.ended_otherwise
            ),
            if r.tracked == 0 {
                "-".into()
            } else {
                fmt_ns(r.setup_ms * 1e6)
            },
            r.fd_control
                .as_ref()
                .map_or("-".into(), |c| fmt_ns(c.executor.summary.median_ns)),
            r.fd_control
                .as_ref()
                .map_or("-".into(), |c| fmt_ns(c.floor.summary.median_ns)),
        ]);
    }
    t.note(
        "stop() time: from stop() to run() returning with every sleeper reaped; \
         control = the same spawn+wait with N extra descriptors open (as the N pidfds are) and no \
         children: a vfork-style clone without CLONE_FILES copies the whole descriptor table",
    );
    t
}

/// The whole run as Markdown: the settings, every table (all columns), the notes.
pub fn markdown(report: &Report, tables: &[Table]) -> String {
    let m = &report.machine;
    let mut out = format!(
        "# {} {}\n\nMachine: {} cores ({}), Linux {}, transparent hugepages {}, cpuidle {}.\n\n",
        report.tool, report.version, m.cores, m.cpu, m.kernel, m.transparent_hugepages, m.cpu_idle
    );
    for t in tables {
        out.push_str(&t.render(Layout::Markdown));
        out.push('\n');
    }
    if !report.notes.is_empty() {
        out.push_str("### Notes\n\n");
        for n in &report.notes {
            out.push_str(&format!("- {n}\n"));
        }
    }
    out
}

/// Draws median spawn+wait latency against parent memory, one line per contender (log-log), and
/// under it each contender's ratio to the floor on a linear scale: the fast contenders lie within
/// a few tens of microseconds of each other, a band the log scale squeezes into one line.
pub fn plot(path: &Path, points: &[LatencySection]) -> Res<()> {
    use plotters::prelude::*;

    if points.is_empty() {
        return Err("--plot needs the rss section".into());
    }
    let mib = |b: u64| (b as f64 / (1u64 << 20) as f64).max(0.01);
    let (x_lo, x_hi) = min_max(
        &points
            .iter()
            .map(|p| mib(p.extra_memory_bytes))
            .collect::<Vec<_>>(),
    );
    let ys: Vec<f64> = points
        .iter()
        .flat_map(|p| p.contenders.iter().map(|c| c.summary.median_ns / 1e3))
        .collect();
    let (y_lo, y_hi) = min_max(&ys);
    // The ratio panel shows the contenders that stay within FAST_RATIO of the floor at every
    // size: fork's hundredfold at 1 GiB would squeeze the others into one line again.
    const FAST_RATIO: f64 = 3.0;
    let fast = |name: &str| {
        points.iter().all(|p| {
            p.find(|c| c.name == name)
                .and_then(|c| c.ratio_to_floor)
                .is_some_and(|r| r <= FAST_RATIO)
        })
    };
    let ratios: Vec<f64> = points
        .iter()
        .flat_map(|p| {
            p.contenders
                .iter()
                .filter(|c| fast(&c.name))
                .filter_map(|c| c.ratio_to_floor)
        })
        .collect();
    let (r_lo, r_hi) = min_max(&ratios);
    let (r_lo, r_hi) = if ratios.is_empty() {
        (0.5, 1.5)
    } else {
        let pad = ((r_hi - r_lo) * 0.08).max(0.05);
        ((r_lo - pad).max(0.0), r_hi + pad)
    };
    let names: Vec<String> = points[0]
        .contenders
        .iter()
        .map(|c| c.name.clone())
        .collect();
    let series = |name: &str, value: &dyn Fn(&ContenderResult) -> Option<f64>| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter_map(|p| {
                p.find(|c| c.name == name)
                    .and_then(value)
                    .map(|v| (mib(p.extra_memory_bytes), v))
            })
            .collect()
    };

    let root = SVGBackend::new(path, (960, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(540);
    let x_range = (x_lo / 1.5..x_hi * 1.5).log_scale();

    let mut chart = ChartBuilder::on(&top)
        .caption(
            "napix-exec bench: spawn+wait median vs parent memory (tiny program)",
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(72)
        .build_cartesian_2d(x_range.clone(), (y_lo / 1.5..y_hi * 1.5).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("memory allocated and touched by the parent (MiB)")
        .y_desc("median spawn+wait (us)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (i, name) in names.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let line = series(name, &|c| Some(c.summary.median_ns / 1e3));
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(PointSeries::of_element(
            line,
            4,
            color.filled(),
            &|coord, size, style| EmptyElement::at(coord) + Circle::new((0, 0), size, style),
        ))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    let mut ratio_chart = ChartBuilder::on(&bottom)
        .caption(
            "ratio to the floor (raw clone-vfork), linear scale; contenders within 3x of it",
            ("sans-serif", 18),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(72)
        .build_cartesian_2d(x_range, r_lo..r_hi)?;
    ratio_chart
        .configure_mesh()
        .x_desc("memory allocated and touched by the parent (MiB)")
        .y_desc("median / floor median")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.2}x"))
        .draw()?;
    for (i, name) in names.iter().enumerate() {
        if !fast(name) {
            continue;
        }
        let color = Palette99::pick(i).to_rgba();
        let line = series(name, &|c| c.ratio_to_floor);
        ratio_chart.draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?;
        // Markers of a shape per contender, so that lines that cross stay told apart.
        match i % 3 {
            0 => {
                ratio_chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, color.filled())))?
            }
            1 => ratio_chart.draw_series(
                line.iter()
                    .map(|&p| TriangleMarker::new(p, 5, color.filled())),
            )?,
            _ => ratio_chart.draw_series(
                line.iter()
                    .map(|&p| Cross::new(p, 4, color.stroke_width(2))),
            )?,
        };
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::bench_measure::all_contenders;

    fn pick(keys: &[&str]) -> Vec<Contender> {
        all_contenders()
            .into_iter()
            .filter(|c| keys.contains(&c.key().as_str()))
            .collect()
    }

    /// "vs std" is against plain std::process::Command, never the options contender (whose
    /// kind is "std" too), whatever the order or selection.
    #[test]
    fn vs_std_is_against_plain_std_only() {
        let c = pick(&["exec-vfork", "std-options", "std"]);
        // Medians: exec 100, std 200, std-options 400 (in the order of `c`).
        let medians: Vec<u64> = c
            .iter()
            .map(|x| match x.key().as_str() {
                "exec-vfork" => 100,
                "std" => 200,
                _ => 400,
            })
            .collect();
        let per_repeat = vec![medians.iter().map(|&m| vec![m]).collect::<Vec<_>>()];
        let r = contender_results(&c, &per_repeat);
        let exec = r.iter().find(|x| x.key == "exec-vfork").expect("exec");
        assert_eq!(exec.ratio_to_std, Some(0.5));

        let c = pick(&["exec-vfork", "std-options"]);
        let r = contender_results(&c, &[vec![vec![100], vec![400]]]);
        assert!(r.iter().all(|x| x.ratio_to_std.is_none()), "no plain std");
    }
}
