//! `napix-exec bench`: spawn+wait latency and throughput of the executor against the
//! alternatives, side by side in one process.
//!
//! Contenders, each spawn + wait with stdio on /dev/null:
//! - the executor with each backend, the request sent from the measuring (worker) thread while
//!   `run()` loops on its own thread;
//! - raw clone-vfork, raw posix_spawn and raw fork+execve: the library's own spawn code called on
//!   the measuring thread through `napix_executor::direct` (no queue, no executor thread), with
//!   waitid; raw clone-vfork is the floor every ratio is taken against;
//! - `std::process::Command::status()`;
//! - a pair with options: the default executor spawning a `napix_executor::Command` and std's
//!   `Command`, both with 3 variables set and 1 removed, a working directory and stdin bytes
//!   (a sealed memfd for the executor; a pipe std's caller writes).
//!
//! Sections: latency on the tiny program (a 185-byte static ELF written to a temporary file,
//! so that spawn machinery and not the dynamic loader dominates), on /bin/true and on any
//! `--program`; a parent-memory sweep (`--rss`); throughput with T submitting threads
//! (`--threads`: the default executor, one built with the other `SpawnSite`, T raw threads each
//! doing clone-vfork + waitid and T each doing posix_spawn + waitid, and batches); and the
//! latency of one more spawn with N children tracked, with the time `stop()` takes to bring
//! `run()` back (`--tracked`). The executors under test are built as a user builds one: no site
//! option unless one is measured on purpose.
//!
//! Where the time goes (`bench_hops.rs`): the executors under test record each child's
//! `Timeline` (`--no-hops` turns that off), so the latency section breaks every executor
//! contender's spawn+wait into hops (hand-off in, clone+exec, child run, exit to reap, hand-off
//! out) and the threads section does so per thread count, beside the raw threads' spawn call and
//! wait; the threads section also reports the bench process's CPU time per spawn+wait (callers,
//! executor thread, the rest) against raw threads'.
//!
//! Honesty rules: contenders run interleaved (round-robin in small batches, the first one rotating)
//! after a warm-up, so that noise hits all alike; each section repeats R times and shows the spread
//! of the per-repeat medians; the executors are built once per section and reused.
//!
//! Every input is checked before the first measurement (usage errors exit 2); what was measured
//! is written (`--json`, `--export-json`, `--export-markdown`) before the plot is drawn, and even
//! when a section fails. The tables report ratios without judging them; the last line, the
//! headline (`bench_headline.rs`), puts the default executor's main ratios beside the goals the
//! library holds itself to and marks a miss.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use napix_executor::{SpawnBackend, SpawnSite};

use crate::duration;

#[path = "bench_headline.rs"]
mod bench_headline;
#[path = "bench_hops.rs"]
mod bench_hops;
#[path = "bench_measure.rs"]
mod bench_measure;
#[path = "bench_report.rs"]
mod bench_report;
#[path = "bench_stats.rs"]
mod bench_stats;
#[path = "bench_tiny.rs"]
mod bench_tiny;

use bench_hops::{CpuRow, HopSamples};
use bench_measure::{
    Contender, Plan, Res, Rig, Spawner, Target, Tuning, all_contenders, backend_name,
};
use bench_report::{
    FdControl, LatencySection, LoadMeter, Machine, OtherLoad, Report, Settings, Spread,
    ThroughputRow, TrackedRow, contender_results,
};
use bench_stats::{FIT_COLUMNS, Layout, Table, fmt_bytes, parse_size};
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
#[command(after_help = bench_help())]
pub struct BenchArgs {
    /// A first look: tiny counts, a few seconds. Explicit flags still win.
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Heavy settings: --rss 10M,1G,4G --tracked 0,1000,10000 (minutes, about 5 GiB of memory).
    #[arg(long)]
    full: bool,
    /// Run only these sections [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Section>,
    /// Also measure this program (repeatable; PATH is searched when it has no slash).
    #[arg(long, value_name = "PATH")]
    program: Vec<PathBuf>,
    // The help lists every key, generated from the one list of contenders.
    #[arg(long, value_delimiter = ',', value_name = "KEYS", help = contenders_help())]
    contenders: Vec<String>,
    /// Skip the /bin/true latency section.
    #[arg(long)]
    no_bin_true: bool,
    /// Parent memory to allocate and touch before measuring [default: 10M,100M,1G].
    #[arg(long, value_delimiter = ',', value_parser = parse_positive_size, value_name = "SIZES")]
    rss: Option<Vec<u64>>,
    /// Submitting thread counts for the throughput section [default: 1,2,8].
    #[arg(long, value_delimiter = ',', value_name = "COUNTS",
          value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<Vec<u32>>,
    /// Tracked-children counts for the scale section [default: 0,1000].
    #[arg(long, value_delimiter = ',', value_name = "COUNTS")]
    tracked: Option<Vec<usize>>,
    /// Samples per contender per repeat (upper bound) [default: 1000].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    iterations: Option<u32>,
    /// Consecutive spawns of one contender before the next one's turn [default: 10].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    batch: Option<u32>,
    /// Unrecorded spawns per contender before measuring [default: 20].
    #[arg(long)]
    warmup: Option<u32>,
    /// Repeats of every measurement; the spread of their medians is shown [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: Option<u32>,
    /// Time per contender per repeat after which a slow contender stops early [default: 600ms].
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_positive)]
    budget: Option<Duration>,
    /// Length of each throughput window [default: 500ms].
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_positive)]
    window: Option<Duration>,
    /// Kill grace of the executors under test (the scale section's stop()) [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    grace: Option<Duration>,
    /// Build the executors under test with this `ExecutorBuilder::spin`: how long a caller
    /// waiting for its spawn reply or an exit status polls before it sleeps (0 turns polling
    /// off) [default: the library's].
    #[arg(long, value_name = "DURATION", value_parser = duration::parse)]
    spin: Option<Duration>,
    /// Build the executors under test without timelines (`ExecutorBuilder::timeline`): no
    /// breakdown of where the time goes; to see what recording them costs.
    #[arg(long)]
    no_hops: bool,
    /// Show every column (the default fits the tables in 100 columns).
    #[arg(long)]
    wide: bool,
    /// Print one JSON document on stdout (the tables go to stderr).
    #[arg(long)]
    json: bool,
    /// Also write the JSON document to FILE.
    #[arg(long, value_name = "FILE")]
    export_json: Option<PathBuf>,
    /// Also write every table, all columns, as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    export_markdown: Option<PathBuf>,
    /// Draw latency against parent memory per contender into this SVG file, with a second panel
    /// of the ratios to the floor.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// The text after `bench --help`'s options.
fn bench_help() -> String {
    format!(
        "\
The default run allocates and touches up to 1 GiB (--rss) and starts 1,000 sleeping processes \
(--tracked); see the README for how long it takes. --quick gives a first look in seconds.

The last line printed is the headline: the default executor's ratios against std::process and the \
raw spawns, each with the goal it is held to; '!' marks a missed goal, '-' a ratio whose data this \
run did not collect.

Durations: {}.

Exit status: 0 when the run completed and everything was written, 1 when a measurement or a \
write failed (what was measured is still written), 2 for a usage error.",
        duration::syntax()
    )
}

/// `--contenders`' help: every key, from the one list of contenders.
fn contenders_help() -> String {
    let keys: Vec<String> = all_contenders()
        .iter()
        .map(|c| format!("{}: {}", c.key(), c.name))
        .collect();
    format!(
        "Measure only these contenders in the latency and rss sections [default: all]; KEYS \
         from: {}",
        keys.join("; ")
    )
}

/// A size for --rss; zero is refused (it would measure nothing the no-allocation run does not).
fn parse_positive_size(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        0 => Err(format!("`{s}`: the size must be more than zero")),
        n => Ok(n),
    }
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
    fn resolve(a: &BenchArgs) -> Config {
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
        let count = |x: Option<u32>, quick: usize, normal: usize| {
            x.map_or(if q { quick } else { normal }, |n| n as usize)
        };
        let mut plan = Plan {
            iterations: count(a.iterations, 20, 1000),
            batch: count(a.batch, 5, 10),
            warmup: count(a.warmup, 2, 20),
            budget: a
                .budget
                .unwrap_or(Duration::from_millis(if q { 200 } else { 600 })),
            min_samples: if q { 3 } else { 20 },
        };
        plan.min_samples = plan.min_samples.min(plan.iterations);
        let grace = a
            .grace
            .unwrap_or(Duration::from_millis(if q { 200 } else { 1000 }));
        Config {
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
            threads: a
                .threads
                .as_ref()
                .map_or(threads, |t| t.iter().map(|&n| n as usize).collect()),
            tracked: a.tracked.clone().unwrap_or(tracked),
            plan,
            repeat: count(a.repeat, 1, 3),
            window: a
                .window
                .unwrap_or(Duration::from_millis(if q { 100 } else { 500 })),
            grace,
            tuning: Tuning {
                grace,
                spin: a.spin,
                timeline: !a.no_hops,
                // The executors under test are built as a user builds one: the default site.
                site: None,
            },
        }
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
/// stdout, or to stderr with `--json` so that stdout holds only the JSON document. Keeps every
/// table for `--export-markdown`.
struct Ui {
    bar: ProgressBar,
    json: bool,
    layout: Layout,
    tables: Mutex<Vec<Table>>,
}

impl Ui {
    fn new(steps: u64, json: bool, wide: bool) -> Ui {
        let bar = if std::io::stderr().is_terminal() {
            let style = ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:24}] {pos}/{len} {wide_msg}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            let bar = ProgressBar::new(steps).with_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        Ui {
            bar,
            json,
            layout: if wide { Layout::Wide } else { Layout::Fit },
            tables: Mutex::new(Vec::new()),
        }
    }

    fn step(&self, msg: impl Into<String>) {
        self.bar.set_message(msg.into());
    }

    fn done(&self) {
        self.bar.inc(1);
    }

    /// Text, wrapped to the layout's width.
    fn say(&self, text: &str) {
        let mut out = String::new();
        for para in text.split('\n') {
            if self.layout == Layout::Fit {
                out.push_str(&bench_stats::wrap(para, FIT_COLUMNS, ""));
            } else {
                out.push_str(para);
                out.push('\n');
            }
        }
        self.print(out.trim_end_matches('\n'));
    }

    fn table(&self, table: Table) {
        self.print(&table.render(self.layout));
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(table);
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
    let checked = match check_inputs(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("napix-exec bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args, checked) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("napix-exec bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the checks of the inputs resolved.
struct Checked {
    cfg: Config,
    contenders: Vec<Contender>,
    /// `--program`s as found (PATH searched).
    programs: Vec<PathBuf>,
}

/// Checks every input before anything is measured: a bad one is a usage error (exit 2), found
/// at once, not after minutes of measuring.
fn check_inputs(args: &BenchArgs) -> Result<Checked, String> {
    let cfg = Config::resolve(args);
    if args.plot.is_some() && (!cfg.has(Section::Rss) || cfg.rss.is_empty()) {
        return Err("--plot draws the rss section: do not leave it out".into());
    }
    let mut contenders = all_contenders();
    if !args.contenders.is_empty() {
        let keys: Vec<String> = contenders.iter().map(Contender::key).collect();
        if let Some(bad) = args.contenders.iter().find(|k| !keys.contains(k)) {
            return Err(format!(
                "--contenders: unknown `{bad}` (known: {})",
                keys.join(", ")
            ));
        }
        contenders.retain(|c| args.contenders.contains(&c.key()));
    }
    let programs = args
        .program
        .iter()
        .map(|p| find_program(p).map_err(|e| format!("--program {}: {e}", p.display())))
        .collect::<Result<Vec<_>, _>>()?;
    for (flag, path) in [
        ("--plot", &args.plot),
        ("--export-json", &args.export_json),
        ("--export-markdown", &args.export_markdown),
    ] {
        if let Some(path) = path {
            check_writable(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
        }
    }
    Ok(Checked {
        cfg,
        contenders,
        programs,
    })
}

/// The program as execve will find it: the path itself when it has a slash, else the first
/// match in PATH; it must be a regular file with an execute bit.
fn find_program(p: &Path) -> Result<PathBuf, String> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if p.as_os_str().as_encoded_bytes().contains(&b'/') {
        return match std::fs::metadata(p) {
            Err(e) => Err(e.to_string()),
            Ok(_) if executable(p) => Ok(p.to_path_buf()),
            Ok(_) => Err("not an executable file".into()),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(p))
        .find(|c| executable(c))
        .ok_or_else(|| "no executable of that name in PATH".into())
}

/// Whether `path` can be written: opened for writing when it exists (not truncated), else
/// created and removed again.
fn check_writable(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        if path.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        std::fs::OpenOptions::new().write(true).open(path)?;
        return Ok(());
    }
    std::fs::File::create_new(path)?;
    std::fs::remove_file(path)
}

fn run(args: BenchArgs, checked: Checked) -> Res<()> {
    let Checked {
        cfg,
        contenders,
        programs: program_paths,
    } = checked;
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
    for (p, found) in args.program.iter().zip(&program_paths) {
        let argv: Vec<OsString> = vec![found.clone().into()];
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
    let ui = Ui::new(steps as u64, args.json, args.wide);
    let default = SpawnBackend::default();
    ui.say(&format!(
        "napix-exec bench (napix-executor {})\n\
         machine: {} cores ({}), Linux {}, transparent hugepages {}, cpuidle {}, {:.2} cores busy \
         before start\n\
         method: spawn+wait, stdio /dev/null; contenders interleaved in batches of {} after {} \
         warm-up spawns; up to {} samples per contender per repeat ({} ms budget for slow ones); \
         {} repeat{}; default backend {}{}{}\n",
        env!("CARGO_PKG_VERSION"),
        machine.cores,
        machine.cpu,
        machine.kernel,
        machine.transparent_hugepages,
        machine.cpu_idle,
        machine.busy_cores_before,
        cfg.plan.batch,
        cfg.plan.warmup,
        cfg.plan.iterations,
        cfg.plan.budget.as_millis(),
        cfg.repeat,
        if cfg.repeat == 1 { "" } else { "s" },
        backend_name(default),
        cfg.tuning.spin.map_or(String::new(), |d| format!(
            "; executors built with spin {}",
            humantime::format_duration(d)
        )),
        if cfg.tuning.timeline {
            "; executors record each child's timeline (a few clock reads per spawn)"
        } else {
            "; no timelines (--no-hops)"
        },
    ));
    ui.print("");

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
            spin_us: cfg.tuning.spin.map(|d| d.as_micros()),
            default_backend: backend_name(default),
        },
        latency: Vec::new(),
        rss_sweep: Vec::new(),
        throughput: Vec::new(),
        tracked: Vec::new(),
        other_load: Vec::new(),
        notes,
        headline: None,
    };

    let measured = measure(
        &cfg,
        &ui,
        &contenders,
        &rig_backends,
        &main_prog,
        &programs,
        &mut report,
    );
    if let Err(e) = &measured {
        report
            .notes
            .push(format!("the run stopped early, on an error: {e}"));
    }
    for n in &report.notes {
        ui.say(&format!("note: {n}"));
    }
    let headline = bench_headline::Headline::of(&report);
    report.headline = Some(headline.clone());
    ui.bar.finish_and_clear();

    // The measured data first, each write on its own: one failing must not lose the others.
    let mut failures: Vec<String> = Vec::new();
    if args.json {
        let mut out = std::io::stdout().lock();
        let written = serde_json::to_writer_pretty(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out));
        if let Err(e) = written {
            failures.push(format!("--json: {e}"));
        }
    }
    if let Some(path) = &args.export_json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(std::io::Error::from)
            .and_then(|mut doc| {
                doc.push(b'\n');
                std::fs::write(path, doc)
            });
        match written {
            Ok(()) => ui.print(&format!("JSON written to {}", path.display())),
            Err(e) => failures.push(format!("--export-json {}: {e}", path.display())),
        }
    }
    if let Some(path) = &args.export_markdown {
        let tables = ui
            .tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match std::fs::write(path, bench_report::markdown(&report, &tables)) {
            Ok(()) => ui.print(&format!("Markdown written to {}", path.display())),
            Err(e) => failures.push(format!("--export-markdown {}: {e}", path.display())),
        }
    }
    if let Some(path) = &args.plot {
        match bench_report::plot(path, &report.rss_sweep) {
            Ok(()) => ui.print(&format!("plot written to {}", path.display())),
            Err(e) => failures.push(format!("--plot {}: {e}", path.display())),
        }
    }
    // Last, on one line however wide (for `| tail -1`).
    ui.print(&headline.text);
    drop(tiny);
    measured?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}

/// Every asked section, its results into `report` as each one ends.
fn measure(
    cfg: &Config,
    ui: &Ui,
    contenders: &[Contender],
    rig_backends: &[SpawnBackend],
    main_prog: &Program,
    programs: &[Program],
    report: &mut Report,
) -> Res<()> {
    let default = SpawnBackend::default();
    if cfg.has(Section::Latency) {
        let meter = LoadMeter::start();
        let rig = Rig::start(rig_backends, cfg.tuning)?;
        for prog in std::iter::once(main_prog).chain(programs) {
            let mut hops = vec![HopSamples::default(); contenders.len()];
            let per_repeat = repeats(
                cfg,
                ui,
                contenders,
                &rig,
                &prog.target,
                &prog.label,
                Some(&mut hops),
            )?;
            let mut section = LatencySection {
                program: prog.label.clone(),
                path: prog.target.argv[0].to_string_lossy().into_owned(),
                extra_memory_bytes: 0,
                parent_rss_bytes: bench_measure::parent_rss(),
                contenders: contender_results(contenders, &per_repeat),
            };
            for (c, h) in contenders.iter().zip(hops) {
                if let Some(r) = section.contenders.iter_mut().find(|r| r.name == c.name) {
                    r.hops = h.summarize();
                }
            }
            ui.table(section.table(&format!("spawn+wait latency: {}", prog.label)));
            let rows: Vec<(String, &bench_hops::Hops)> = section
                .contenders
                .iter()
                .filter_map(|r| Some((r.name.clone(), r.hops.as_ref()?)))
                .collect();
            if !rows.is_empty() {
                ui.table(bench_hops::hops_table(
                    &format!("where the time goes: {}", prog.label),
                    &rows,
                ));
            }
            report.latency.push(section);
        }
        rig.shutdown()?;
        other_load(report, "latency", &meter);
    }

    if cfg.has(Section::Rss) {
        let meter = LoadMeter::start();
        let rig = Rig::start(rig_backends, cfg.tuning)?;
        for &bytes in &cfg.rss {
            ui.step(format!("rss: allocating and touching {}", fmt_bytes(bytes)));
            let buffer = bench_measure::touched_buffer(bytes)?;
            let label = format!("+{} parent memory", fmt_bytes(bytes));
            let per_repeat = repeats(cfg, ui, contenders, &rig, &main_prog.target, &label, None)?;
            let section = LatencySection {
                program: main_prog.label.clone(),
                path: main_prog.target.argv[0].to_string_lossy().into_owned(),
                extra_memory_bytes: bytes,
                parent_rss_bytes: bench_measure::parent_rss(),
                contenders: contender_results(contenders, &per_repeat),
            };
            drop(buffer);
            report.rss_sweep.push(section);
        }
        rig.shutdown()?;
        other_load(report, "rss", &meter);
        ui.table(bench_report::sweep_table(&report.rss_sweep, &cfg.plan));
    }

    if cfg.has(Section::Threads) {
        let meter = LoadMeter::start();
        report.throughput =
            throughput_section(cfg, ui, &main_prog.target, &cfg.throughput_threads())?;
        other_load(report, "threads", &meter);
        let other = site_label(other_site());
        ui.table(bench_report::throughput_table(
            &report.throughput,
            cfg.window.as_millis(),
            backend_name(default),
            other,
        ));
        let mut rows: Vec<(String, &CpuRow)> = Vec::new();
        for r in &report.throughput {
            rows.push((format!("executor T={}", r.threads), &r.cpu));
            rows.push((format!("{other} T={}", r.threads), &r.other_site_cpu));
        }
        ui.table(bench_hops::cpu_table(&rows, other));
        let mut rows: Vec<(String, &bench_hops::Hops)> = Vec::new();
        for r in &report.throughput {
            let each = [
                ("executor", &r.executor_hops),
                (other, &r.other_site_hops),
                ("raw", &r.raw_hops),
            ];
            for (name, hops) in each {
                if let Some(h) = hops {
                    rows.push((format!("{name} T={}", r.threads), h));
                }
            }
        }
        if !rows.is_empty() {
            let mut table = bench_hops::hops_table(
                "where the time goes: T threads through one executor, and T raw threads (every \
                 repeat pooled)",
                &rows,
            );
            table.note(
                "raw: clone+exec = the spawn call, child run = the blocking waitid (exit and reap \
                 together); no hand-offs",
            );
            ui.table(table);
        }
    }

    if cfg.has(Section::Tracked) && !cfg.tracked.is_empty() {
        let meter = LoadMeter::start();
        report.tracked = tracked_section(cfg, ui, &main_prog.target, &mut report.notes)?;
        other_load(report, "tracked", &meter);
        ui.table(bench_report::tracked_table(
            &report.tracked,
            cfg.grace.as_millis(),
        ));
    }
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
    mut hops: Option<&mut [HopSamples]>,
) -> Res<Vec<Vec<Vec<u64>>>> {
    let mut per_repeat = Vec::with_capacity(cfg.repeat);
    for r in 0..cfg.repeat {
        ui.step(format!("{label}: repeat {}/{}", r + 1, cfg.repeat));
        per_repeat.push(bench_measure::interleaved(
            contenders,
            rig,
            target,
            &cfg.plan,
            hops.as_deref_mut(),
            || ui.bar.tick(),
        )?);
        ui.done();
    }
    Ok(per_repeat)
}

/// Commands per batch in the batched throughput contenders.
const BATCH: usize = 4;

/// The site the default executor does not use, measured beside it in the threads section: since
/// callers clone their own children by default, the spawner thread the executor owns
/// (`SpawnSite::ExecutorThread`).
pub fn other_site() -> SpawnSite {
    match SpawnSite::default() {
        SpawnSite::CallingThread => SpawnSite::ExecutorThread,
        _ => SpawnSite::CallingThread,
    }
}

/// How a site is named in the tables.
pub fn site_label(site: SpawnSite) -> &'static str {
    match site {
        SpawnSite::ExecutorThread => "spawner",
        _ => "caller-site",
    }
}

/// The throughput contenders, in the order of their rates.
#[derive(Clone, Copy)]
enum Tp {
    /// The default executor, one spawn+wait at a time.
    Executor,
    /// An executor built with [`other_site`].
    OtherSite,
    /// Raw threads: clone-vfork + waitid.
    RawVfork,
    /// Raw threads: posix_spawn + waitid(P_PID).
    RawPosixSpawn,
    /// The default executor's spawn_many of BATCH, then a wait for each.
    Many,
    /// Raw threads spawning BATCH with clone-vfork, then waiting for each.
    RawMany,
}

const TP: [Tp; 6] = [
    Tp::Executor,
    Tp::OtherSite,
    Tp::RawVfork,
    Tp::RawPosixSpawn,
    Tp::Many,
    Tp::RawMany,
];

/// T threads through one executor against T threads spawning raw, alternating which goes first.
fn throughput_section(
    cfg: &Config,
    ui: &Ui,
    target: &Target,
    counts: &[usize],
) -> Res<Vec<ThroughputRow>> {
    let backend = SpawnBackend::default();
    let other = other_site();
    // Two executors side by side: the default one (as `Executor::new()` builds it) and one with
    // the other site; then raw threads.
    let rig = Rig::start(&[backend], cfg.tuning)?;
    let sited = Rig::start(
        &[backend],
        Tuning {
            site: Some(other),
            ..cfg.tuning
        },
    )?;
    let spawner = |c: Tp| match c {
        Tp::Executor | Tp::Many => Spawner::Executor {
            exec: rig.get(backend),
            loop_tid: rig.tid(backend),
            one_spawning_thread: SpawnSite::default() == SpawnSite::ExecutorThread,
        },
        Tp::OtherSite => Spawner::Executor {
            exec: sited.get(backend),
            loop_tid: sited.tid(backend),
            one_spawning_thread: other == SpawnSite::ExecutorThread,
        },
        Tp::RawVfork | Tp::RawMany => Spawner::Raw(SpawnBackend::Vfork),
        Tp::RawPosixSpawn => Spawner::Raw(SpawnBackend::PosixSpawn),
    };
    let run = |c: Tp, threads: usize, window| {
        let batch = match c {
            Tp::Many | Tp::RawMany => BATCH,
            _ => 1,
        };
        bench_measure::throughput(
            spawner(c),
            &target.argv,
            target.check,
            threads,
            window,
            batch,
        )
    };
    // Warm-up: fault in the worker paths once.
    for c in TP {
        run(c, 1, cfg.window / 5)?;
    }
    // Per thread count, per contender, one window per repeat.
    let mut rates: Vec<[Vec<bench_measure::Rate>; TP.len()]> =
        counts.iter().map(|_| Default::default()).collect();
    for r in 0..cfg.repeat {
        for (i, &t) in counts.iter().enumerate() {
            ui.step(format!(
                "throughput: {t} threads, repeat {}/{}",
                r + 1,
                cfg.repeat
            ));
            // Interleaved, each repeat and thread count starting with another contender.
            for k in 0..TP.len() {
                let c = (r + i + k) % TP.len();
                rates[i][c].push(run(TP[c], t, cfg.window)?);
            }
            ui.done();
        }
    }
    rig.shutdown()?;
    sited.shutdown()?;
    let raw_median = |t: usize| {
        counts.iter().position(|&c| c == t).map(|i| {
            let rates: Vec<f64> = rates[i][Tp::RawVfork as usize]
                .iter()
                .map(|x| x.per_second)
                .collect();
            bench_stats::median(&rates)
        })
    };
    let (raw1, raw2) = (raw_median(1), raw_median(2));
    let mut rows = Vec::new();
    for (i, &t) in counts.iter().enumerate() {
        let [exec, site, raw, raw_posix_spawn, many, raw_many] =
            std::mem::take(&mut rates[i]).map(Windows::of);
        let (Some(exec_mid), Some(site_mid), Some(cpu), Some(other_site_cpu)) = (
            exec.median(),
            site.median(),
            exec.cpu_against(&raw),
            site.cpu_against(&raw),
        ) else {
            return Err("a throughput row without windows".into());
        };
        let executor_per_s = exec.spread();
        let other_site_per_s = site.spread();
        let raw_per_s = raw.spread();
        let raw_posix_spawn_per_s = raw_posix_spawn.spread();
        let (many_per_s, raw_many_per_s) = (many.spread(), raw_many.spread());
        rows.push(ThroughputRow {
            batch: BATCH,
            many_ratio_to_raw_many: many_per_s.median / raw_many_per_s.median,
            many_per_s,
            raw_many_per_s,
            threads: t,
            ratio_to_raw_1_thread: raw1.map(|r| executor_per_s.median / r),
            ratio_to_raw_2_threads: raw2.map(|r| executor_per_s.median / r),
            ratio_to_raw_same_threads: executor_per_s.median / raw_per_s.median,
            ratio_to_raw_posix_spawn_same_threads: executor_per_s.median
                / raw_posix_spawn_per_s.median,
            other_site: format!("{other:?}"),
            other_site_ratio_to_raw_same_threads: other_site_per_s.median / raw_per_s.median,
            executor_thread: exec_mid.load.clone(),
            other_site_thread: site_mid.load.clone(),
            cpu,
            other_site_cpu,
            executor_hops: exec.hops.summarize(),
            other_site_hops: site.hops.summarize(),
            raw_hops: raw.hops.summarize(),
            executor_per_s,
            other_site_per_s,
            raw_per_s,
            raw_posix_spawn_per_s,
        });
    }
    // Only the asked counts are shown; 1 and 2 were measured for the ratios.
    rows.retain(|r| cfg.threads.contains(&r.threads));
    Ok(rows)
}

/// One throughput contender's windows at one thread count, sorted by rate, their hops pooled.
struct Windows {
    windows: Vec<bench_measure::Rate>,
    hops: HopSamples,
}

impl Windows {
    fn of(mut windows: Vec<bench_measure::Rate>) -> Windows {
        let mut hops = HopSamples::default();
        for w in &mut windows {
            hops.merge(std::mem::take(&mut w.hops));
        }
        windows.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
        Windows { windows, hops }
    }

    /// The window with the median rate.
    fn median(&self) -> Option<&bench_measure::Rate> {
        self.windows.get(self.windows.len() / 2)
    }

    fn spread(&self) -> Spread {
        Spread::of(self.windows.iter().map(|x| x.per_second).collect())
    }

    /// CPU per spawn against `raw`: the median windows, and each repeat's pair (windows sorted
    /// by rate pair the n-th slowest with the n-th slowest).
    fn cpu_against(&self, raw: &Windows) -> Option<CpuRow> {
        let (mid, raw_mid) = (self.median()?, raw.median()?);
        let ratio_per_repeat = self
            .windows
            .iter()
            .zip(&raw.windows)
            .map(|(e, r)| e.cpu.process_ns / r.cpu.process_ns)
            .collect();
        Some(CpuRow {
            ratio: mid.cpu.process_ns / raw_mid.cpu.process_ns,
            executor: mid.cpu.clone(),
            raw: raw_mid.cpu.clone(),
            ratio_per_repeat,
        })
    }
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
