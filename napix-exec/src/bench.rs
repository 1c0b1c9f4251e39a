//! `napix-exec bench`: spawn+wait latency and throughput of the executor against the
//! alternatives, side by side in one process (issue 3).
//!
//! Contenders, each spawn + wait with stdio on /dev/null:
//! - the executor with each backend, the request sent from the measuring (worker) thread while
//!   `run()` loops on its own thread;
//! - raw clone-vfork, raw posix_spawn and raw fork+execve: the library's own spawn code called on
//!   the measuring thread through `napix_executor::direct` (no queue, no executor thread), with
//!   waitid; raw clone-vfork is the floor every ratio is taken against;
//! - `std::process::Command::status()`.
//!
//! Sections: latency on the tiny program (a 185-byte static ELF written to a temporary file,
//! so that spawn machinery and not the dynamic loader dominates), on /bin/true and on any
//! `--program`; a parent-memory sweep (`--rss`); throughput with T submitting threads
//! (`--threads`); and the latency of one more spawn with N children tracked, with the time
//! `stop()` takes to bring `run()` back (`--tracked`).
//!
//! Honesty rules: contenders run interleaved (round-robin in small batches, the first one rotating)
//! after a warm-up, so that noise hits all alike; each section repeats R times and shows the spread
//! of the per-repeat medians; the executors are built once per section and reused.
//!
//! The default run takes about a minute; `--full` uses the heavy settings
//! (`--rss 10M,1G,4G --tracked 0,1000,10000`, several GiB of memory) and `--quick` tiny counts
//! (for the smoke test).

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use napix_executor::SpawnBackend;

#[path = "bench_measure.rs"]
mod bench_measure;
#[path = "bench_report.rs"]
mod bench_report;
#[path = "bench_stats.rs"]
mod bench_stats;
#[path = "bench_tiny.rs"]
mod bench_tiny;

use bench_measure::{Contender, Plan, Res, Rig, Target, Tuning, all_contenders, backend_name};
use bench_report::{
    FdControl, LatencySection, LoadMeter, Machine, OtherLoad, Report, Settings, Spread,
    TargetCheck, ThroughputRow, TrackedRow, contender_results,
};
use bench_stats::{fmt_bytes, parse_size};
use bench_tiny::{TINY_SIZE, TinyProgram};

/// A part of the bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// spawn+wait latency per program (tiny, /bin/true, --program).
    Latency,
    /// The parent-memory sweep (--rss).
    Rss,
    /// Throughput with T submitting threads (--threads).
    Threads,
    /// One more spawn with N children tracked, and stop() (--tracked).
    Tracked,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Tiny counts (a few seconds; for smoke tests). Explicit flags still win.
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// The heavy settings: --rss 10M,1G,4G --tracked 0,1000,10000 (minutes, ~7 GiB).
    #[arg(long)]
    full: bool,
    /// Run only these sections [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
    /// Also measure this program (repeatable; PATH is searched when it has no slash).
    #[arg(long, value_name = "PATH")]
    program: Vec<PathBuf>,
    /// Measure only these contenders in the latency and rss sections [default: all]:
    /// exec-vfork, exec-posix_spawn, exec-fork, raw-vfork (the floor), raw-posix_spawn, raw-fork,
    /// std.
    #[arg(long, value_delimiter = ',', value_name = "KEYS")]
    contenders: Vec<String>,
    /// Skip the /bin/true latency section.
    #[arg(long)]
    no_bin_true: bool,
    /// Parent memory to allocate and touch before measuring [default: 10M,100M,1G].
    #[arg(long, value_delimiter = ',', value_parser = parse_size, value_name = "SIZES")]
    rss: Option<Vec<u64>>,
    /// Submitting thread counts for the throughput section [default: 1,2,8].
    #[arg(long, value_delimiter = ',', value_name = "COUNTS")]
    threads: Option<Vec<usize>>,
    /// Tracked-children counts for the scale section [default: 0,1000].
    #[arg(long, value_delimiter = ',', value_name = "COUNTS")]
    tracked: Option<Vec<usize>>,
    /// Samples per contender per repeat (upper bound) [default: 1000].
    #[arg(long)]
    iterations: Option<usize>,
    /// Consecutive spawns of one contender before the next one's turn [default: 10].
    #[arg(long)]
    batch: Option<usize>,
    /// Unrecorded spawns per contender before measuring [default: 20].
    #[arg(long)]
    warmup: Option<usize>,
    /// Repeats of every measurement; the spread of their medians is shown [default: 3].
    #[arg(long)]
    repeat: Option<usize>,
    /// Time per contender per repeat after which a slow contender stops early [default: 600].
    #[arg(long, value_name = "MS")]
    budget_ms: Option<u64>,
    /// Length of each throughput window [default: 500].
    #[arg(long, value_name = "MS")]
    window_ms: Option<u64>,
    /// Kill grace of the executors under test (the scale section's stop()) [default: 1000].
    #[arg(long, value_name = "MS")]
    grace_ms: Option<u64>,
    /// Build the executors under test with this `idle_spin` (microseconds) instead of the
    /// library's default: how long the loop polls its queue before sleeping.
    #[arg(long, value_name = "US")]
    idle_spin_us: Option<u64>,
    /// Print one JSON document on stdout (the tables go to stderr).
    #[arg(long)]
    json: bool,
    /// Draw latency against parent memory per contender into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// The resolved settings.
struct Config {
    sections: Vec<Section>,
    rss: Vec<u64>,
    threads: Vec<usize>,
    tracked: Vec<usize>,
    plan: Plan,
    repeat: usize,
    window: Duration,
    grace: Duration,
    tuning: Tuning,
}

impl Config {
    fn resolve(a: &BenchArgs) -> Res<Config> {
        let (rss, threads, tracked): (Vec<u64>, Vec<usize>, Vec<usize>) = if a.quick {
            (vec![1 << 20, 16 << 20], vec![1, 2], vec![0, 4])
        } else if a.full {
            (
                vec![10 << 20, 1 << 30, 4 << 30],
                vec![1, 2, 8],
                vec![0, 1000, 10000],
            )
        } else {
            (
                vec![10 << 20, 100 << 20, 1 << 30],
                vec![1, 2, 8],
                vec![0, 1000],
            )
        };
        let q = a.quick;
        let plan = Plan {
            iterations: a.iterations.unwrap_or(if q { 20 } else { 1000 }).max(1),
            batch: a.batch.unwrap_or(if q { 5 } else { 10 }).max(1),
            warmup: a.warmup.unwrap_or(if q { 2 } else { 20 }),
            budget: Duration::from_millis(a.budget_ms.unwrap_or(if q { 200 } else { 600 })),
            min_samples: if q { 3 } else { 20 },
        };
        let mut plan = plan;
        plan.min_samples = plan.min_samples.min(plan.iterations);
        let grace = Duration::from_millis(a.grace_ms.unwrap_or(if q { 200 } else { 1000 }));
        let threads = a.threads.clone().unwrap_or(threads);
        if threads.contains(&0) {
            return Err("--threads: counts start at 1".into());
        }
        Ok(Config {
            sections: if a.only.is_empty() {
                vec![
                    Section::Latency,
                    Section::Rss,
                    Section::Threads,
                    Section::Tracked,
                ]
            } else {
                a.only.clone()
            },
            rss: a.rss.clone().unwrap_or(rss),
            threads,
            tracked: a.tracked.clone().unwrap_or(tracked),
            plan,
            repeat: a.repeat.unwrap_or(if q { 1 } else { 3 }).max(1),
            window: Duration::from_millis(a.window_ms.unwrap_or(if q { 100 } else { 500 })),
            grace,
            tuning: Tuning {
                grace,
                idle_spin: a.idle_spin_us.map(Duration::from_micros),
            },
        })
    }

    fn has(&self, s: Section) -> bool {
        self.sections.contains(&s)
    }

    /// Thread counts measured in the throughput section: the asked ones plus 1 and 2 (the raw
    /// rates every executor rate is compared with).
    fn throughput_threads(&self) -> Vec<usize> {
        let mut t = self.threads.clone();
        t.extend([1, 2]);
        t.sort_unstable();
        t.dedup();
        t
    }
}

/// The progress indicator (stderr, only on a terminal) and the printer of the tables, which go to
/// stdout, or to stderr with `--json` so that stdout holds only the JSON document.
struct Ui {
    bar: ProgressBar,
    json: bool,
}

impl Ui {
    fn new(steps: u64, json: bool) -> Ui {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(steps).with_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:24}] {pos}/{len} {wide_msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        Ui { bar, json }
    }

    fn step(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
    }

    fn done(&self) {
        self.bar.inc(1);
    }

    fn print(&self, text: &str) {
        self.bar.suspend(|| {
            if self.json {
                eprintln!("{text}");
            } else {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        });
    }
}

/// A program every contender spawns.
struct Program {
    label: String,
    target: Target,
}

pub fn main(args: BenchArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("napix-exec bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: BenchArgs) -> Res<()> {
    let cfg = Config::resolve(&args)?;
    if args.plot.is_some() && (!cfg.has(Section::Rss) || cfg.rss.is_empty()) {
        return Err("--plot draws the rss section: do not leave it out".into());
    }
    let mut contenders = all_contenders();
    if !args.contenders.is_empty() {
        let keys: Vec<String> = contenders.iter().map(Contender::key).collect();
        if let Some(bad) = args.contenders.iter().find(|k| !keys.contains(k)) {
            return Err(
                format!("--contenders: unknown `{bad}` (known: {})", keys.join(", ")).into(),
            );
        }
        contenders.retain(|c| args.contenders.contains(&c.key()));
    }
    let rig_backends = bench_measure::executor_backends(&contenders);
    let mut notes = Vec::new();

    // The tiny program is written, closed and checked before any thread exists (ETXTBSY).
    let tiny = match TinyProgram::create() {
        Ok(t) => Some(t),
        Err(e) => {
            notes.push(format!(
                "the tiny program is unavailable ({e}); /bin/true takes its place, so the \
                 dynamic loader dominates every figure"
            ));
            None
        }
    };
    let main_prog = match &tiny {
        Some(t) => Program {
            label: format!("tiny program (static ELF, {TINY_SIZE} B, exit(0) only)"),
            target: Target::new(vec![t.path().into()], true)?,
        },
        None => Program {
            label: "/bin/true (in place of the tiny program)".into(),
            target: Target::new(vec!["/bin/true".into()], true)?,
        },
    };
    let mut programs = vec![];
    if tiny.is_some() && !args.no_bin_true {
        programs.push(Program {
            label: "/bin/true (dynamic, the loader dominates)".into(),
            target: Target::new(vec!["/bin/true".into()], true)?,
        });
    }
    for p in &args.program {
        let argv: Vec<OsString> = vec![p.clone().into()];
        programs.push(Program {
            label: p.display().to_string(),
            target: Target::new(argv, false)?,
        });
    }

    let machine = Machine::probe();
    if machine.busy_cores_before > 0.25 {
        notes.push(format!(
            "other work kept {:.2} of {} cores busy just before the bench started: it adds noise \
             to every figure (compare ratios within one run, and the spread of the repeats)",
            machine.busy_cores_before, machine.cores
        ));
    }
    let tp_threads = cfg.throughput_threads();
    let steps = (if cfg.has(Section::Latency) {
        (1 + programs.len()) * cfg.repeat
    } else {
        0
    }) + (if cfg.has(Section::Rss) {
        cfg.rss.len() * cfg.repeat
    } else {
        0
    }) + (if cfg.has(Section::Threads) {
        tp_threads.len() * cfg.repeat
    } else {
        0
    }) + (if cfg.has(Section::Tracked) {
        cfg.tracked.len()
    } else {
        0
    });
    let ui = Ui::new(steps as u64, args.json);
    let default = SpawnBackend::default();
    ui.print(&format!(
        "napix-exec bench (napix-executor {})\n\
         machine: {} cores ({}), Linux {}, transparent hugepages {}, {:.2} cores busy before start\n\
         method:  spawn+wait, stdio /dev/null; contenders interleaved in batches of {} after {} \
         warm-up spawns; up to {} samples per contender per repeat ({} ms budget for slow ones); \
         {} repeats; default backend {}{}\n",
        env!("CARGO_PKG_VERSION"),
        machine.cores,
        machine.cpu,
        machine.kernel,
        machine.transparent_hugepages,
        machine.busy_cores_before,
        cfg.plan.batch,
        cfg.plan.warmup,
        cfg.plan.iterations,
        cfg.plan.budget.as_millis(),
        cfg.repeat,
        backend_name(default),
        cfg.tuning.idle_spin.map_or(String::new(), |d| format!(
            "; executors built with idle_spin {} us",
            d.as_micros()
        )),
    ));

    let mut report = Report {
        tool: "napix-exec bench",
        version: env!("CARGO_PKG_VERSION"),
        machine,
        settings: Settings {
            plan: cfg.plan,
            repeat: cfg.repeat,
            rss_bytes: cfg.rss.clone(),
            threads: cfg.threads.clone(),
            tracked: cfg.tracked.clone(),
            throughput_window_ms: cfg.window.as_millis(),
            kill_grace_ms: cfg.grace.as_millis(),
            idle_spin_us: cfg.tuning.idle_spin.map(|d| d.as_micros()),
            default_backend: backend_name(default),
        },
        latency: Vec::new(),
        rss_sweep: Vec::new(),
        throughput: Vec::new(),
        tracked: Vec::new(),
        targets: Vec::new(),
        other_load: Vec::new(),
        notes,
    };

    if cfg.has(Section::Latency) {
        let meter = LoadMeter::start();
        let rig = Rig::start(&rig_backends, cfg.tuning)?;
        for prog in std::iter::once(&main_prog).chain(&programs) {
            let per_repeat = repeats(&cfg, &ui, &contenders, &rig, &prog.target, &prog.label)?;
            let section = LatencySection {
                program: prog.label.clone(),
                path: prog.target.argv[0].to_string_lossy().into_owned(),
                extra_memory_bytes: 0,
                parent_rss_bytes: bench_measure::parent_rss(),
                contenders: contender_results(&contenders, &per_repeat),
            };
            ui.print(
                &section
                    .table(&format!("spawn+wait latency: {}", prog.label))
                    .render(),
            );
            report.latency.push(section);
        }
        rig.shutdown()?;
        other_load(&mut report, "latency", &meter);
    }

    if cfg.has(Section::Rss) {
        let meter = LoadMeter::start();
        let rig = Rig::start(&rig_backends, cfg.tuning)?;
        for &bytes in &cfg.rss {
            ui.step(format!("rss: allocating and touching {}", fmt_bytes(bytes)));
            let buffer = bench_measure::touched_buffer(bytes)?;
            let label = format!("+{} parent memory", fmt_bytes(bytes));
            let per_repeat = repeats(&cfg, &ui, &contenders, &rig, &main_prog.target, &label)?;
            let section = LatencySection {
                program: main_prog.label.clone(),
                path: main_prog.target.argv[0].to_string_lossy().into_owned(),
                extra_memory_bytes: bytes,
                parent_rss_bytes: bench_measure::parent_rss(),
                contenders: contender_results(&contenders, &per_repeat),
            };
            drop(buffer);
            report.rss_sweep.push(section);
        }
        rig.shutdown()?;
        other_load(&mut report, "rss", &meter);
        ui.print(&bench_report::sweep_table(&report.rss_sweep, &cfg.plan).render());
    }

    if cfg.has(Section::Threads) {
        let meter = LoadMeter::start();
        report.throughput = throughput_section(&cfg, &ui, &main_prog.target, &tp_threads)?;
        other_load(&mut report, "threads", &meter);
        ui.print(
            &bench_report::throughput_table(
                &report.throughput,
                cfg.window.as_millis(),
                backend_name(default),
            )
            .render(),
        );
    }

    if cfg.has(Section::Tracked) && !cfg.tracked.is_empty() {
        let meter = LoadMeter::start();
        report.tracked = tracked_section(&cfg, &ui, &main_prog.target, &mut report.notes)?;
        other_load(&mut report, "tracked", &meter);
        ui.print(&bench_report::tracked_table(&report.tracked, cfg.grace.as_millis()).render());
    }

    report.targets = targets(&report, &cfg);
    ui.print(&bench_report::targets_table(&report.targets).render());
    if let Some(path) = &args.plot {
        bench_report::plot(path, &report.rss_sweep)
            .map_err(|e| format!("--plot {}: {e}", path.display()))?;
        ui.print(&format!("plot written to {}", path.display()));
    }
    for n in &report.notes {
        ui.print(&format!("note: {n}"));
    }
    ui.bar.finish_and_clear();
    if args.json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    }
    drop(tiny);
    Ok(())
}

/// Records how much other work ran during a section, with a note when it is enough to matter.
fn other_load(report: &mut Report, section: &str, meter: &LoadMeter) {
    let cores = meter.other_cores();
    if cores > 0.25 {
        report.notes.push(format!(
            "other processes kept {cores:.2} cores busy on average during the {section} section: \
             its figures are noisy, and may favour some contenders over others"
        ));
    }
    report.other_load.push(OtherLoad {
        section: section.to_string(),
        cores,
    });
}

/// `cfg.repeat` interleaved measurements of every contender; samples per repeat per contender.
fn repeats(
    cfg: &Config,
    ui: &Ui,
    contenders: &[Contender],
    rig: &Rig,
    target: &Target,
    label: &str,
) -> Res<Vec<Vec<Vec<u64>>>> {
    let mut per_repeat = Vec::with_capacity(cfg.repeat);
    for r in 0..cfg.repeat {
        ui.step(format!("{label}: repeat {}/{}", r + 1, cfg.repeat));
        per_repeat.push(bench_measure::interleaved(
            contenders,
            rig,
            target,
            &cfg.plan,
            || ui.bar.tick(),
        )?);
        ui.done();
    }
    Ok(per_repeat)
}

/// T threads through one executor against T threads spawning raw, alternating which goes first.
fn throughput_section(
    cfg: &Config,
    ui: &Ui,
    target: &Target,
    counts: &[usize],
) -> Res<Vec<ThroughputRow>> {
    let backend = SpawnBackend::default();
    let rig = Rig::start(&[backend], cfg.tuning)?;
    let exec = (rig.get(backend), rig.tid(backend));
    // Warm-up: fault in the worker paths once.
    bench_measure::throughput(Some(exec), &target.argv, target.check, 1, cfg.window / 5)?;
    bench_measure::throughput(None, &target.argv, target.check, 1, cfg.window / 5)?;
    let mut exec_rates: Vec<Vec<bench_measure::Rate>> = counts.iter().map(|_| vec![]).collect();
    let mut raw_rates: Vec<Vec<f64>> = counts.iter().map(|_| vec![]).collect();
    for r in 0..cfg.repeat {
        for (i, &t) in counts.iter().enumerate() {
            ui.step(format!(
                "throughput: {t} threads, repeat {}/{}",
                r + 1,
                cfg.repeat
            ));
            let exec_run =
                || bench_measure::throughput(Some(exec), &target.argv, target.check, t, cfg.window);
            let raw_run =
                || bench_measure::throughput(None, &target.argv, target.check, t, cfg.window);
            if (r + i) % 2 == 0 {
                exec_rates[i].push(exec_run()?);
                raw_rates[i].push(raw_run()?.per_second);
            } else {
                raw_rates[i].push(raw_run()?.per_second);
                exec_rates[i].push(exec_run()?);
            }
            ui.done();
        }
    }
    rig.shutdown()?;
    let raw_median = |t: usize| {
        counts
            .iter()
            .position(|&c| c == t)
            .map(|i| bench_stats::median(&raw_rates[i]))
    };
    let (raw1, raw2) = (raw_median(1), raw_median(2));
    let mut rows = Vec::new();
    for (i, &t) in counts.iter().enumerate() {
        let mut rates = std::mem::take(&mut exec_rates[i]);
        rates.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
        let executor_per_s = Spread::of(rates.iter().map(|x| x.per_second).collect());
        let load = rates.get(rates.len() / 2).and_then(|x| x.load.clone());
        let raw_per_s = Spread::of(std::mem::take(&mut raw_rates[i]));
        rows.push(ThroughputRow {
            threads: t,
            ratio_to_raw_1_thread: raw1.map(|r| executor_per_s.median / r),
            ratio_to_raw_2_threads: raw2.map(|r| executor_per_s.median / r),
            ratio_to_raw_same_threads: executor_per_s.median / raw_per_s.median,
            executor_per_s,
            raw_per_s,
            executor_thread: load,
        });
    }
    // Only the asked counts are shown; 1 and 2 were measured for the ratios.
    rows.retain(|r| cfg.threads.contains(&r.threads));
    Ok(rows)
}

/// The scale section: one rig per N (its executor tracks the N sleepers).
fn tracked_section(
    cfg: &Config,
    ui: &Ui,
    target: &Target,
    notes: &mut Vec<String>,
) -> Res<Vec<TrackedRow>> {
    let max = cfg.tracked.iter().copied().max().unwrap_or(0);
    match napix_executor::raise_fd_limit() {
        Ok(limit) if (limit as usize) < max + 64 => notes.push(format!(
            "RLIMIT_NOFILE is {limit}: {max} tracked children (one pidfd each) may not fit"
        )),
        Ok(_) => {}
        Err(e) => notes.push(format!("raise_fd_limit failed: {e}")),
    }
    let pair = [bench_measure::default_executor(), bench_measure::floor()];
    let mut rows: Vec<TrackedRow> = Vec::new();
    for &n in &cfg.tracked {
        ui.step(format!("tracked {n}: starting sleepers"));
        let t = bench_measure::tracked(n, target, &cfg.plan, cfg.repeat, cfg.tuning, |m| {
            ui.step(m.to_string())
        })?;
        let pair_results = |samples: Vec<[Vec<u64>; 2]>| {
            let per_repeat: Vec<Vec<Vec<u64>>> = samples.into_iter().map(Vec::from).collect();
            let mut results = contender_results(&pair, &per_repeat).into_iter();
            match (results.next(), results.next()) {
                (Some(executor), Some(floor)) => Ok((executor, floor)),
                _ => Err("tracked: no samples"),
            }
        };
        let (executor, floor) = pair_results(t.samples)?;
        let fd_control = if n > 0 {
            ui.step(format!("tracked {n}: control with {n} open descriptors"));
            let samples = bench_measure::fd_control(n, target, &cfg.plan, cfg.repeat, cfg.tuning)?;
            let (executor, floor) = pair_results(samples)?;
            Some(FdControl {
                open_fds: n,
                executor,
                floor,
            })
        } else {
            None
        };
        rows.push(TrackedRow {
            tracked: n,
            executor,
            floor,
            executor_ratio_to_none: None,
            floor_ratio_to_none: None,
            setup_ms: t.setup.as_secs_f64() * 1e3,
            stop_ms: t.stop.as_secs_f64() * 1e3,
            kill_grace_ms: cfg.grace.as_secs_f64() * 1e3,
            ended_by_sigterm: t.by_term,
            ended_by_sigkill: t.by_kill,
            ended_otherwise: t.other,
            fd_control,
        });
        ui.done();
    }
    let base = rows
        .iter()
        .find(|r| r.tracked == 0)
        .map(|r| (r.executor.summary.median_ns, r.floor.summary.median_ns));
    if let Some((e0, f0)) = base {
        for r in &mut rows {
            r.executor_ratio_to_none = Some(r.executor.summary.median_ns / e0);
            r.floor_ratio_to_none = Some(r.floor.summary.median_ns / f0);
        }
    }
    Ok(rows)
}

/// The targets of issue 3, checked against this run's numbers.
fn targets(r: &Report, cfg: &Config) -> Vec<TargetCheck> {
    let mut v = Vec::new();
    let is_default_exec = |c: &bench_report::ContenderResult| c.name.ends_with("(default)");
    if let Some(tiny) = r.latency.first() {
        let e = tiny.find(is_default_exec);
        v.push(TargetCheck::ratio(
            "executor (default) <= 0.80x std::process::Command (tiny)",
            e.and_then(|e| e.ratio_to_std),
            |x| x <= 0.80,
        ));
        v.push(TargetCheck::ratio(
            "executor (default) <= 1.15x raw clone-vfork floor (tiny)",
            e.and_then(|e| e.ratio_to_floor),
            |x| x <= 1.15,
        ));
    }
    if let Some(t) = r.latency.iter().find(|s| s.path == "/bin/true") {
        let e = t.find(is_default_exec).map(|c| c.summary.median_ns);
        let p = t
            .find(|c| c.kind == "raw" && c.backend == Some("posix_spawn"))
            .map(|c| c.summary.median_ns);
        v.push(TargetCheck::ratio(
            "executor (default) <= 1.05x raw posix_spawn (/bin/true)",
            e.zip(p).map(|(e, p)| e / p),
            |x| x <= 1.05,
        ));
    }
    if let (Some(first), Some(last)) = (r.rss_sweep.first(), r.rss_sweep.last())
        && r.rss_sweep.len() > 1
    {
        let e0 = first.find(is_default_exec).map(|c| c.summary.median_ns);
        let e1 = last.find(is_default_exec).map(|c| c.summary.median_ns);
        v.push(TargetCheck::ratio(
            format!(
                "executor at +{} <= 1.2x its +{} figure (issue: 4 GiB vs 10 MiB)",
                fmt_bytes(last.extra_memory_bytes),
                fmt_bytes(first.extra_memory_bytes)
            ),
            e0.zip(e1).map(|(a, b)| b / a),
            |x| x <= 1.2,
        ));
    }
    if let Some(row) = r.throughput.iter().max_by_key(|row| row.threads) {
        v.push(TargetCheck::ratio(
            format!(
                "{} threads through one executor >= 0.9x one raw thread's rate (issue: 8)",
                row.threads
            ),
            row.ratio_to_raw_1_thread,
            |x| x >= 0.9,
        ));
        v.push(TargetCheck {
            target: format!(
                "{} threads through one executor vs two raw threads (reported)",
                row.threads
            ),
            measured: bench_stats::fmt_ratio(row.ratio_to_raw_2_threads),
            met: None,
        });
    }
    if let Some(row) = r
        .tracked
        .iter()
        .filter(|x| x.tracked > 0)
        .max_by_key(|x| x.tracked)
    {
        v.push(TargetCheck::ratio(
            format!(
                "{} tracked: one more spawn+wait <= 1.5x with none (issue: 10,000)",
                row.tracked
            ),
            row.executor_ratio_to_none,
            |x| x <= 1.5,
        ));
        let limit_ms = cfg.grace.as_secs_f64() * 1e3 + 1000.0;
        v.push(TargetCheck {
            target: format!(
                "{} tracked: stop() brings run() back within grace + 1 s ({:.0} ms)",
                row.tracked, limit_ms
            ),
            measured: bench_stats::fmt_ns(row.stop_ms * 1e6),
            met: Some(row.stop_ms <= limit_ms),
        });
    }
    v
}
