//! Where the time and the CPU go: the per-hop breakdown of executor spawns, from each child's
//! [`Timeline`] (the executors under test record them: `ExecutorBuilder::timeline`), and the CPU
//! time the bench process spends per spawn+wait, split by thread.

use std::time::Instant;

use serde::Serialize;

use napix_executor::Timeline;

use super::bench_stats::{Summary, Table, fmt_ns, fmt_ratio};

/// How one hop is read from a timeline.
type HopOf = fn(&Timeline) -> Option<std::time::Duration>;

/// The hops of one spawn+wait through the executor, in the order a request goes, and how each is
/// read from a timeline. The reply to the caller runs beside `child run` and is left out: the
/// five hops add up to the caller's whole spawn+wait.
const HOPS: [(&str, HopOf); 5] = [
    ("hand-off in", Timeline::hand_off_in),
    ("clone+exec", Timeline::clone_exec),
    ("child run", Timeline::child_run),
    ("exit to reap", Timeline::exit_to_reap),
    ("hand-off out", Timeline::hand_off_out),
];

/// The index of clone+exec in [`HOPS`]: the executor thread's own time per spawn.
const CLONE_EXEC: usize = 1;

/// Hop durations (ns) of many spawns, one list per hop.
#[derive(Default, Clone)]
pub struct HopSamples {
    per_hop: [Vec<u64>; 5],
    /// Spawns whose timeline lacked a moment (or had none): not in the lists.
    incomplete: u64,
}

impl HopSamples {
    /// Adds the hops of one finished spawn+wait.
    pub fn record(&mut self, timeline: Option<Timeline>) {
        let hops = timeline.map(|t| HOPS.map(|(_, hop)| hop(&t)));
        match hops {
            Some(hops) if hops.iter().all(Option::is_some) => {
                for (list, hop) in self.per_hop.iter_mut().zip(hops) {
                    let ns = hop.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                    list.push(ns);
                }
            }
            _ => self.incomplete += 1,
        }
    }

    pub fn merge(&mut self, other: HopSamples) {
        for (mine, theirs) in self.per_hop.iter_mut().zip(other.per_hop) {
            mine.extend(theirs);
        }
        self.incomplete += other.incomplete;
    }

    /// The clone+exec hops added up: how long the executor thread spent spawning. `None`
    /// without a complete sample.
    pub fn clone_exec_total(&self) -> Option<std::time::Duration> {
        let list = &self.per_hop[CLONE_EXEC];
        (!list.is_empty()).then(|| std::time::Duration::from_nanos(list.iter().sum()))
    }

    /// Median and p99 per hop; `None` without a complete sample.
    pub fn summarize(mut self) -> Option<Hops> {
        let hops: Vec<HopSummary> = HOPS
            .iter()
            .zip(self.per_hop.iter_mut())
            .map(|((name, _), samples)| {
                Summary::of(samples).map(|s| HopSummary {
                    hop: name,
                    median_ns: s.median_ns,
                    p99_ns: s.p99_ns,
                    mean_ns: s.mean_ns,
                })
            })
            .collect::<Option<_>>()?;
        Some(Hops {
            samples: self.per_hop[0].len(),
            incomplete: self.incomplete,
            hops,
        })
    }
}

/// One hop over many spawns.
#[derive(Serialize, Clone, Debug)]
pub struct HopSummary {
    pub hop: &'static str,
    pub median_ns: f64,
    pub p99_ns: f64,
    /// The means add up to the mean spawn+wait (medians need not).
    pub mean_ns: f64,
}

/// The breakdown of one contender's spawns, as in the JSON.
#[derive(Serialize, Clone, Debug)]
pub struct Hops {
    pub samples: usize,
    /// Spawns left out because their timeline missed a moment.
    pub incomplete: u64,
    /// In request order: hand-off in, clone+exec, child run, exit to reap, hand-off out.
    pub hops: Vec<HopSummary>,
}

impl Hops {
    /// The hop with the largest mean: where most of the time goes.
    pub fn largest(&self) -> Option<&HopSummary> {
        self.hops
            .iter()
            .max_by(|a, b| a.mean_ns.total_cmp(&b.mean_ns))
    }
}

/// A table of breakdowns, three rows per labelled breakdown: medians, p99s (from
/// [`P99_MIN_SAMPLES`](super::bench_stats::P99_MIN_SAMPLES) samples up), means.
pub fn hops_table(title: &str, rows: &[(String, &Hops)]) -> Table {
    let mut headers = vec![""];
    headers.extend(HOPS.iter().map(|(name, _)| *name));
    headers.extend(["sum", "most time"]);
    let mut t = Table::new(title, &headers);
    t.wide_only([7]);
    for (label, hops) in rows {
        let stat_row = |name: String, stat: fn(&HopSummary) -> f64, sum: bool| {
            let mut row = vec![name];
            row.extend(hops.hops.iter().map(|h| fmt_ns(stat(h))));
            row.push(if sum {
                fmt_ns(hops.hops.iter().map(stat).sum())
            } else {
                String::new()
            });
            row
        };
        let mut median = stat_row(label.clone(), |h| h.median_ns, true);
        median.push(String::new());
        t.row(median);
        if hops.samples >= super::bench_stats::P99_MIN_SAMPLES {
            t.row(stat_row("  p99".into(), |h| h.p99_ns, false));
        } else {
            // Too few samples for a tail: no p99 row (the table's note says why).
            t.thin(None);
        }
        let mut mean = stat_row("  mean".into(), |h| h.mean_ns, true);
        mean.push(hops.largest().map_or("-", |h| h.hop).to_string());
        t.row(mean);
    }
    t.note(
        "per contender: medians, then p99, then means (the means add up to the mean spawn+wait; \
         most time = the hop with the largest mean). From each child's timeline \
         (ExecutorBuilder::timeline): hand-off in = queued -> the loop starts the spawn; \
         clone+exec = until the backend knows the exec succeeded; child run = exec -> the loop \
         woke with the exit (or the blocked caller's own waitid returned: it reaps); exit to \
         reap = that wake-up -> status stored; hand-off out = status stored -> the caller's wait \
         returned",
    );
    t
}

/// A raw spawn+wait (a thread spawning for itself) in the executor's terms, for comparison:
/// clone+exec = the spawn call (`began` to `spawned`), child run = the blocking `waitid` (the
/// child's run, its exit and the reap together, to `waited`); no hand-offs, so those hops and
/// exit to reap are zero.
pub fn raw_timeline(began: Instant, spawned: Instant, waited: Instant) -> Timeline {
    let mut t = Timeline::default();
    t.queued = Some(began);
    t.spawn_started = Some(began);
    t.spawned = Some(spawned);
    t.replied = Some(spawned);
    t.exit_observed = Some(waited);
    t.reaped = Some(waited);
    t.wait_returned = Some(waited);
    t
}

/// CPU time of one thread (`CLOCK_THREAD_CPUTIME_ID`), ns.
pub fn thread_cpu_ns() -> u64 {
    timespec_ns(rustix::time::clock_gettime(
        rustix::time::ClockId::ThreadCPUTime,
    ))
}

/// CPU time of this whole process, every thread (`CLOCK_PROCESS_CPUTIME_ID`), ns. Children are
/// other processes (a vfork-style child too: no `CLONE_THREAD`): not counted.
pub fn process_cpu_ns() -> u64 {
    timespec_ns(rustix::time::clock_gettime(
        rustix::time::ClockId::ProcessCPUTime,
    ))
}

fn timespec_ns(t: rustix::time::Timespec) -> u64 {
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}

/// The bench process's CPU time per spawn+wait in one throughput window, and whose it is.
#[derive(Serialize, Clone, Debug)]
pub struct CpuPerSpawn {
    /// Every thread of the bench process (`CLOCK_PROCESS_CPUTIME_ID`), ns per spawn+wait.
    pub process_ns: f64,
    /// The submitting threads together (each its `CLOCK_THREAD_CPUTIME_ID`), ns per spawn+wait.
    pub callers_ns: f64,
    /// The executor thread (its schedstat run time), ns per spawn+wait; `None` for raw threads.
    pub loop_ns: Option<f64>,
}

impl CpuPerSpawn {
    pub fn new(process_ns: u64, callers_ns: u64, loop_ns: Option<f64>, spawns: u64) -> Self {
        let per = spawns.max(1) as f64;
        CpuPerSpawn {
            process_ns: process_ns as f64 / per,
            callers_ns: callers_ns as f64 / per,
            loop_ns,
        }
    }
}

/// CPU per spawn in one throughput row: the executor's and the raw threads' (each from the
/// window with the median rate), and their ratio.
#[derive(Serialize, Clone, Debug)]
pub struct CpuRow {
    pub executor: CpuPerSpawn,
    pub raw: CpuPerSpawn,
    /// Executor process CPU per spawn / raw process CPU per spawn (the target: <= 1.1).
    pub ratio: f64,
    /// The same ratio in each repeat (each repeat's executor window against its raw window).
    pub ratio_per_repeat: Vec<f64>,
}

/// One row per contender and thread count, labelled; `other` names the executor built with the
/// site the default does not use.
pub fn cpu_table(rows: &[(String, &CpuRow)], other: &str) -> Table {
    let mut t = Table::new(
        "CPU per spawn+wait: the bench process's own CPU time (children excluded) / spawns, in \
         the throughput windows",
        &[
            "contender",
            "executor",
            "callers",
            "loop",
            "other",
            "raw",
            "exec/raw",
            "exec/raw per repeat",
        ],
    );
    t.wide_only([7]);
    for (label, r) in rows {
        let e = &r.executor;
        let other = e.process_ns - e.callers_ns - e.loop_ns.unwrap_or(0.0);
        let spread = super::bench_stats::spread_cell(&r.ratio_per_repeat, |lo, hi| {
            format!("{}-{}", fmt_ratio(Some(lo)), fmt_ratio(Some(hi)))
        });
        let spread = t.thin(spread);
        t.row(vec![
            label.clone(),
            fmt_ns(e.process_ns),
            fmt_ns(e.callers_ns),
            e.loop_ns.map_or("-".into(), fmt_ns),
            fmt_ns(other.max(0.0)),
            fmt_ns(r.raw.process_ns),
            fmt_ratio(Some(r.ratio)),
            spread,
        ]);
    }
    t.note(format!(
        "executor = CLOCK_PROCESS_CPUTIME_ID / spawns with T threads submitting to one default \
         executor; callers = the T submitting threads' own CPU (CLOCK_THREAD_CPUTIME_ID, summed); \
         loop = the executor's loop thread's (schedstat); other = the rest of the process (a \
         spawner thread's among it); raw = the same with T threads each spawning (clone-vfork + \
         waitid) for itself. Windows with the median rate. {other} = the same through the \
         executor built with the other SpawnSite (see the throughput table)"
    ));
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timeline(t0: Instant, us: [u64; 7]) -> Timeline {
        let at = |i: usize| Some(t0 + Duration::from_micros(us[i]));
        let mut t = Timeline::default();
        t.queued = at(0);
        t.spawn_started = at(1);
        t.spawned = at(2);
        t.replied = at(3);
        t.exit_observed = at(4);
        t.reaped = at(5);
        t.wait_returned = at(6);
        t
    }

    #[test]
    fn hops_are_summarized_per_hop_and_incomplete_timelines_are_counted_apart() {
        let t0 = Instant::now();
        let mut s = HopSamples::default();
        s.record(Some(timeline(t0, [0, 10, 60, 70, 300, 305, 320])));
        s.record(Some(timeline(t0, [0, 30, 100, 110, 400, 410, 440])));
        let mut running = timeline(t0, [0, 1, 2, 3, 4, 5, 6]);
        running.reaped = None;
        s.record(Some(running));
        s.record(None);
        assert_eq!(s.clone_exec_total(), Some(Duration::from_micros(50 + 70)));
        let h = s.summarize().expect("two complete samples");
        assert_eq!((h.samples, h.incomplete), (2, 2));
        let medians: Vec<f64> = h.hops.iter().map(|x| x.median_ns).collect();
        assert_eq!(medians, [20e3, 60e3, 270e3, 7.5e3, 22.5e3]);
        assert_eq!(h.largest().map(|x| x.hop), Some("child run"));
        let mean_sum: f64 = h.hops.iter().map(|x| x.mean_ns).sum();
        assert_eq!(mean_sum, 380e3, "the means add up to the mean total");
    }

    #[test]
    fn a_raw_spawn_has_only_its_spawn_call_and_its_wait() {
        let t0 = Instant::now();
        let us = |n| t0 + Duration::from_micros(n);
        let mut s = HopSamples::default();
        s.record(Some(raw_timeline(t0, us(60), us(200))));
        let h = s.summarize().expect("complete");
        let medians: Vec<f64> = h.hops.iter().map(|x| x.median_ns).collect();
        assert_eq!(medians, [0.0, 60e3, 140e3, 0.0, 0.0]);
    }

    #[test]
    fn no_complete_sample_gives_no_breakdown() {
        let mut s = HopSamples::default();
        s.record(None);
        assert_eq!(s.clone_exec_total(), None);
        assert!(s.summarize().is_none());
    }

    #[test]
    fn merged_samples_keep_both_sides() {
        let t0 = Instant::now();
        let (mut a, mut b) = (HopSamples::default(), HopSamples::default());
        a.record(Some(timeline(t0, [0, 10, 20, 30, 40, 50, 60])));
        b.record(Some(timeline(t0, [0, 10, 20, 30, 40, 50, 60])));
        b.record(None);
        a.merge(b);
        let h = a.summarize().expect("samples");
        assert_eq!((h.samples, h.incomplete), (2, 1));
    }

    #[test]
    fn the_process_clock_covers_this_thread() {
        // The thread's span inside the process's: p0, t0, work, t1, p1.
        let p0 = process_cpu_ns();
        let t0 = thread_cpu_ns();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let t1 = thread_cpu_ns();
        let p1 = process_cpu_ns();
        assert!(t1 > t0, "the thread burnt CPU");
        assert!(p1 - p0 >= t1 - t0, "the process clock counts every thread");
    }
}
