//! The headline: one line with what a user of the executor wants to know first, the default
//! executor against std::process and against raw spawning, each ratio beside the goal the
//! library holds itself to, and a mark where a goal is missed.
//!
//! Built only from the numbers of this run ([`Report`]): a ratio whose data the run did not
//! collect (`--only`, `--contenders`, other `--rss` sizes or `--threads`) is shown as `-`,
//! never taken from elsewhere.

use serde::Serialize;

use super::bench_report::{ContenderResult, LatencySection, Report};

/// Printed after a value that misses its goal.
const MISSED: &str = "!";

/// A goal: the ratio must stay at or above, or at or below, a bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    /// Whether `value` meets the goal, compared as printed (two decimals), so that the mark
    /// agrees with what the reader sees.
    fn met(self, value: f64) -> bool {
        let shown = (value * 100.0).round() / 100.0;
        match self {
            Goal::AtLeast(b) => shown >= b,
            Goal::AtMost(b) => shown <= b,
        }
    }

    fn text(self) -> String {
        match self {
            // Debug keeps a decimal: `1.0`, `1.05`.
            Goal::AtLeast(b) => format!(">={b:?}"),
            Goal::AtMost(b) => format!("<={b:?}"),
        }
    }
}

/// One ratio of the headline.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct HeadlineRatio {
    /// What it compares: `exec/std`, `exec/raw-posix_spawn T=2`, ...
    pub name: String,
    /// `None` when this run did not measure it.
    pub value: Option<f64>,
    /// `>=1` or `<=1.05`.
    pub goal: String,
    /// `None` when not measured.
    pub met: Option<bool>,
}

/// The headline line and the ratios in it (for `--json`).
#[derive(Serialize, Clone, Debug)]
pub struct Headline {
    pub text: String,
    pub ratios: Vec<HeadlineRatio>,
}

/// Collects the ratios and writes them out, in the order of the line.
struct Builder {
    ratios: Vec<HeadlineRatio>,
}

impl Builder {
    /// Adds a ratio and returns its value as printed (`0.98`, `-` when not measured) with its
    /// unit, and the mark when the goal is missed: `0.98x!`.
    fn value(&mut self, name: String, value: Option<f64>, goal: Goal, unit: &str) -> String {
        let value = value.filter(|v| v.is_finite());
        let met = value.map(|v| goal.met(v));
        self.ratios.push(HeadlineRatio {
            name,
            value,
            goal: goal.text(),
            met,
        });
        match value {
            None => "-".into(),
            Some(v) if met == Some(false) => format!("{v:.2}{unit}{MISSED}"),
            Some(v) => format!("{v:.2}{unit}"),
        }
    }

    /// One ratio: `floor 1.03x (<=1.05)`.
    fn single(&mut self, label: &str, name: &str, value: Option<f64>, goal: Goal) -> String {
        let shown = self.value(name.to_owned(), value, goal, "x");
        format!("{label} {shown} ({})", goal.text())
    }

    /// One ratio per thread count: `exec/raw-vfork 0.97!/1.01/1.20 (>=1)`.
    fn per_thread(&mut self, label: &str, values: &[(usize, Option<f64>)], goal: Goal) -> String {
        let shown: Vec<String> = values
            .iter()
            .map(|&(t, v)| self.value(format!("{label} T={t}"), v, goal, ""))
            .collect();
        format!("{label} {} ({})", shown.join("/"), goal.text())
    }
}

/// The default executor's result in a latency section.
fn executor<'a>(section: &'a LatencySection, key: &str) -> Option<&'a ContenderResult> {
    section.find(|c| c.key == key)
}

impl Headline {
    /// The headline of `report`.
    pub fn of(report: &Report) -> Headline {
        let key = format!("exec-{}", report.settings.default_backend);
        let mut b = Builder { ratios: Vec::new() };

        // One caller, the main program (the first latency section) and /bin/true.
        let main = report.latency.first();
        let main_exec = main.and_then(|s| executor(s, &key));
        let bin_true = report.latency.iter().find(|s| s.path == "/bin/true");
        let std = b.single(
            "executor vs std::process",
            "exec/std",
            main_exec.and_then(|c| c.ratio_to_std),
            Goal::AtMost(0.85),
        );
        let floor = b.single(
            "vs the raw clone-vfork floor",
            "exec/raw-vfork",
            main_exec.and_then(|c| c.ratio_to_floor),
            Goal::AtMost(1.05),
        );
        let bin_true = b.single(
            "/bin/true vs std",
            "exec/std /bin/true",
            bin_true
                .and_then(|s| executor(s, &key))
                .and_then(|c| c.ratio_to_std),
            Goal::AtMost(1.0),
        );

        // T threads, at every count asked for.
        let counts = &report.settings.threads;
        let row = |t: usize| report.throughput.iter().find(|r| r.threads == t);
        let per =
            |f: &dyn Fn(&super::bench_report::ThroughputRow) -> f64| -> Vec<(usize, Option<f64>)> {
                counts.iter().map(|&t| (t, row(t).map(f))).collect()
            };
        let counts_text: Vec<String> = counts.iter().map(usize::to_string).collect();
        let posix_spawn = b.per_thread(
            "exec/raw-posix_spawn",
            &per(&|r| r.ratio_to_raw_posix_spawn_same_threads),
            Goal::AtLeast(1.0),
        );
        let vfork = b.per_thread(
            "exec/raw-vfork",
            &per(&|r| r.ratio_to_raw_same_threads),
            Goal::AtLeast(1.0),
        );
        let cpu = b.per_thread(
            "CPU/spawn vs raw",
            &per(&|r| r.cpu.ratio),
            Goal::AtMost(1.3),
        );

        // The parent at 1 GiB against 10 MiB.
        let at = |bytes: u64| {
            report
                .rss_sweep
                .iter()
                .find(|s| s.extra_memory_bytes == bytes)
                .and_then(|s| executor(s, &key))
                .map(|c| c.summary.median_ns)
        };
        let memory = match (at(1 << 30), at(10 << 20)) {
            (Some(big), Some(small)) => Some(big / small),
            _ => None,
        };
        let memory = b.single(
            "parent at 1 GiB vs 10 MiB",
            "exec 1 GiB/10 MiB",
            memory,
            Goal::AtMost(1.05),
        );

        let text = format!(
            "headline: {std}, {floor}, {bin_true} (median spawn+wait, one caller); threads T={}: \
             {posix_spawn}, {vfork}; {cpu}; {memory}; {MISSED} = goal missed, - = not measured",
            counts_text.join("/")
        );
        Headline {
            text,
            ratios: b.ratios,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::bench_hops::{CpuPerSpawn, CpuRow};
    use crate::bench::bench_measure::Plan;
    use crate::bench::bench_report::{Machine, Settings, Spread, ThroughputRow};
    use crate::bench::bench_stats::Summary;

    fn report(threads: Vec<usize>) -> Report {
        Report {
            tool: "napix-exec bench",
            version: "0",
            machine: Machine {
                cores: 2,
                kernel: "6".into(),
                cpu: "test".into(),
                transparent_hugepages: "never".into(),
                cpu_idle: "unknown".into(),
                page_size: 4096,
                busy_cores_before: 0.0,
            },
            settings: Settings {
                plan: Plan {
                    iterations: 20,
                    batch: 5,
                    warmup: 2,
                    budget: std::time::Duration::from_millis(200),
                    min_samples: 3,
                },
                repeat: 1,
                rss_bytes: Vec::new(),
                threads,
                tracked: Vec::new(),
                throughput_window_ms: 100,
                kill_grace_ms: 200,
                spin_us: None,
                default_backend: "vfork",
            },
            latency: Vec::new(),
            rss_sweep: Vec::new(),
            throughput: Vec::new(),
            tracked: Vec::new(),
            other_load: Vec::new(),
            notes: Vec::new(),
            headline: None,
        }
    }

    /// A contender with a median, and ratios to the floor and to std.
    fn contender(key: &str, median_ns: f64, floor: f64, std: f64) -> ContenderResult {
        let mut samples = vec![median_ns as u64];
        ContenderResult {
            name: key.into(),
            key: key.into(),
            kind: "executor",
            backend: None,
            floor: false,
            summary: Summary::of(&mut samples).expect("one sample"),
            per_second_at_median: 0.0,
            repeat_medians_ns: vec![median_ns],
            ratio_to_floor: Some(floor),
            ratio_to_std: Some(std),
            hops: None,
        }
    }

    fn section(path: &str, bytes: u64, contenders: Vec<ContenderResult>) -> LatencySection {
        LatencySection {
            program: path.into(),
            path: path.into(),
            extra_memory_bytes: bytes,
            parent_rss_bytes: 0,
            contenders,
        }
    }

    fn spread(x: f64) -> Spread {
        Spread::of(vec![x])
    }

    fn cpu(ratio: f64) -> CpuRow {
        let per = CpuPerSpawn::new(0, 0, None, 1);
        CpuRow {
            executor: per.clone(),
            raw: per,
            ratio,
            ratio_per_repeat: vec![ratio],
        }
    }

    fn row(threads: usize, posix_spawn: f64, vfork: f64, cpu_ratio: f64) -> ThroughputRow {
        ThroughputRow {
            threads,
            executor_per_s: spread(1.0),
            raw_per_s: spread(1.0),
            raw_posix_spawn_per_s: spread(1.0),
            ratio_to_raw_1_thread: None,
            ratio_to_raw_2_threads: None,
            ratio_to_raw_same_threads: vfork,
            ratio_to_raw_posix_spawn_same_threads: posix_spawn,
            executor_thread: None,
            cpu: cpu(cpu_ratio),
            executor_hops: None,
            raw_hops: None,
            other_site: "ExecutorThread".into(),
            other_site_per_s: spread(1.0),
            other_site_ratio_to_raw_same_threads: 1.0,
            other_site_thread: None,
            other_site_cpu: cpu(1.0),
            other_site_hops: None,
            batch: 4,
            many_per_s: spread(1.0),
            raw_many_per_s: spread(1.0),
            many_ratio_to_raw_many: 1.0,
        }
    }

    #[test]
    fn every_goal_is_shown_with_its_measured_ratio_and_a_mark_where_missed() {
        let mut r = report(vec![1, 2, 8]);
        r.latency = vec![
            section(
                "/tmp/tiny",
                0,
                vec![
                    contender("exec-vfork", 100e3, 1.03, 0.78),
                    contender("exec-options", 110e3, 1.2, 0.9),
                ],
            ),
            section(
                "/bin/true",
                0,
                vec![contender("exec-vfork", 1e6, 1.0, 1.02)],
            ),
        ];
        r.rss_sweep = vec![
            section(
                "/tmp/tiny",
                10 << 20,
                vec![contender("exec-vfork", 100e3, 1.0, 1.0)],
            ),
            section(
                "/tmp/tiny",
                100 << 20,
                vec![contender("exec-vfork", 500e3, 1.0, 1.0)],
            ),
            section(
                "/tmp/tiny",
                1 << 30,
                vec![contender("exec-vfork", 101e3, 1.0, 1.0)],
            ),
        ];
        r.throughput = vec![
            row(1, 1.02, 0.97, 1.2),
            row(2, 0.98, 1.01, 1.31),
            row(8, 1.1, 1.2, 1.25),
        ];
        let h = Headline::of(&r);
        assert_eq!(
            h.text,
            "headline: executor vs std::process 0.78x (<=0.85), vs the raw clone-vfork floor \
             1.03x (<=1.05), /bin/true vs std 1.02x! (<=1.0) (median spawn+wait, one caller); \
             threads T=1/2/8: exec/raw-posix_spawn 1.02/0.98!/1.10 (>=1.0), exec/raw-vfork \
             0.97!/1.01/1.20 (>=1.0); CPU/spawn vs raw 1.20/1.31!/1.25 (<=1.3); parent at 1 GiB \
             vs 10 MiB 1.01x (<=1.05); ! = goal missed, - = not measured"
        );
        assert!(!h.text.contains('\n'), "one line");
        let missed: Vec<&str> = h
            .ratios
            .iter()
            .filter(|x| x.met == Some(false))
            .map(|x| x.name.as_str())
            .collect();
        assert_eq!(
            missed,
            [
                "exec/std /bin/true",
                "exec/raw-posix_spawn T=2",
                "exec/raw-vfork T=1",
                "CPU/spawn vs raw T=2"
            ]
        );
        assert_eq!(h.ratios.len(), 3 + 3 * 3 + 1);
    }

    #[test]
    fn what_the_run_did_not_measure_is_a_dash_never_a_mark() {
        // As `--only latency --contenders exec-vfork,std`: no floor, no /bin/true, no sweep,
        // no threads.
        let mut r = report(vec![1, 2, 8]);
        let mut exec = contender("exec-vfork", 100e3, 1.0, 0.8);
        exec.ratio_to_floor = None;
        r.latency = vec![section("/tmp/tiny", 0, vec![exec])];
        let h = Headline::of(&r);
        assert_eq!(
            h.text,
            "headline: executor vs std::process 0.80x (<=0.85), vs the raw clone-vfork floor - \
             (<=1.05), /bin/true vs std - (<=1.0) (median spawn+wait, one caller); threads \
             T=1/2/8: exec/raw-posix_spawn -/-/- (>=1.0), exec/raw-vfork -/-/- (>=1.0); \
             CPU/spawn vs raw -/-/- (<=1.3); parent at 1 GiB vs 10 MiB - (<=1.05); ! = goal \
             missed, - = not measured"
        );
        assert_eq!(
            h.ratios.iter().filter(|x| x.value.is_some()).count(),
            1,
            "only exec/std was measured"
        );
        assert!(h.ratios.iter().all(|x| x.met != Some(false)));
    }

    #[test]
    fn a_goal_is_judged_on_the_value_as_printed() {
        assert!(Goal::AtMost(1.05).met(1.054));
        assert!(!Goal::AtMost(1.05).met(1.056));
        assert!(Goal::AtLeast(1.0).met(0.996));
        assert!(!Goal::AtLeast(1.0).met(0.994));
        assert_eq!(Goal::AtLeast(1.0).text(), ">=1.0");
        assert_eq!(Goal::AtMost(0.85).text(), "<=0.85");
    }
}
