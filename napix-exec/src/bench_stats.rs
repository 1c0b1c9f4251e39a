//! Statistics over latency samples, number formatting, and the tables (laid out by comfy-table).

use std::fmt::Write as _;

/// Summary of a set of latency samples (nanoseconds).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// Number of samples.
    pub samples: usize,
    /// Median (mean of the two middle samples for an even count).
    pub median_ns: f64,
    /// 99th percentile, nearest rank.
    pub p99_ns: f64,
    /// Arithmetic mean.
    pub mean_ns: f64,
    /// Fastest sample.
    pub min_ns: f64,
    /// Slowest sample.
    pub max_ns: f64,
}

impl Summary {
    /// Summarizes `samples` (sorted in place). `None` for an empty set.
    pub fn of(samples: &mut [u64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let n = samples.len();
        let median_ns = if n % 2 == 1 {
            samples[n / 2] as f64
        } else {
            (samples[n / 2 - 1] as f64 + samples[n / 2] as f64) / 2.0
        };
        let rank = (n * 99).div_ceil(100).max(1);
        let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        Some(Summary {
            samples: n,
            median_ns,
            p99_ns: samples[rank - 1] as f64,
            mean_ns: sum as f64 / n as f64,
            min_ns: samples[0] as f64,
            max_ns: samples[n - 1] as f64,
        })
    }

    /// Sequential spawn+wait rate on one thread at the median latency: 1 / median, so that it
    /// tells the same story as the median column beside it.
    pub fn per_second(&self) -> f64 {
        if self.median_ns > 0.0 {
            1e9 / self.median_ns
        } else {
            0.0
        }
    }
}

/// Median of plain values (for medians of repeats, rates).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Smallest and largest of plain values.
pub fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// A duration in nanoseconds, in a unit that keeps three significant digits: `55.1 us`, `16.2 ms`.
pub fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        return "-".into();
    }
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} us", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A range of durations `lo-hi`, both in the unit of `hi`.
pub fn fmt_ns_range(lo: f64, hi: f64) -> String {
    let (div, unit, prec) = if hi < 1e3 {
        (1.0, "ns", 0)
    } else if hi < 1e6 {
        (1e3, "us", 1)
    } else if hi < 1e9 {
        (1e6, "ms", 2)
    } else {
        (1e9, "s", 2)
    };
    format!("{:.prec$}-{:.prec$} {unit}", lo / div, hi / div)
}

/// A count with thousands separators: `17,800`.
pub fn fmt_count(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let s = format!("{:.0}", x.round());
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// A ratio: `0.68x`.
pub fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{r:.2}x"),
        _ => "-".into(),
    }
}

/// A byte count in binary units: `1 GiB`, `10 MiB`, `5.2 MiB`.
pub fn fmt_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if (v - v.round()).abs() < 0.05 {
        format!("{:.0} {}", v, UNITS[unit])
    } else {
        format!("{:.1} {}", v, UNITS[unit])
    }
}

/// Parses a byte size: `4096`, `512K`, `10M`, `1G`, `1.5GiB` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let (num, mult) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 1u64 << 10),
        Some('m') => (&body[..body.len() - 1], 1 << 20),
        Some('g') => (&body[..body.len() - 1], 1 << 30),
        Some('t') => (&body[..body.len() - 1], 1 << 40),
        _ => (body, 1),
    };
    let x: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a size like 10M, 1G, 4G"))?;
    if !(x.is_finite() && x >= 0.0) {
        return Err(format!("`{s}` is not a size like 10M, 1G, 4G"));
    }
    Ok((x * mult as f64).round() as u64)
}

/// How a table is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// For a terminal: the main columns, and everything within [`FIT_COLUMNS`] (cells wrap if
    /// they must).
    Fit,
    /// Every column, unbounded width (`--wide`).
    Wide,
    /// Every column, as a Markdown table (`--export-markdown`).
    Markdown,
}

/// The width the default layout fits in.
pub const FIT_COLUMNS: usize = 100;

/// No borders, a dashed line under the header.
const PLAIN: comfy_table::TableStyle = comfy_table::TableStyle::new()
    .header_separator(comfy_table::LineStyle::none().fill('-').junction('-'));

/// A table with a title and notes under it; some columns shown only in the wide layouts.
pub struct Table {
    title: String,
    headers: Vec<String>,
    wide_only: Vec<bool>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
    /// Some cell was left out as meaningless on this run's few samples ([`Table::thin`]).
    thin: bool,
}

/// Fewest samples for a p99 to be shown: with fewer, the nearest-rank p99 is the slowest sample
/// or next to it, not a tail.
pub const P99_MIN_SAMPLES: usize = 100;

/// The note under a table with thin cells.
pub const THIN_NOTE: &str = "-: left out on this run's few samples: a p99 of fewer than 100 \
                             samples (it would be about the slowest one; no p99 row then), a \
                             spread of one repeat";

/// A p99 cell: `None` below [`P99_MIN_SAMPLES`].
pub fn p99_cell(p99_ns: f64, samples: usize) -> Option<String> {
    (samples >= P99_MIN_SAMPLES).then(|| fmt_ns(p99_ns))
}

/// A spread cell (`lo-hi` of values measured once per repeat): `None` for fewer than two.
pub fn spread_cell(values: &[f64], fmt: impl Fn(f64, f64) -> String) -> Option<String> {
    (values.len() >= 2).then(|| {
        let (lo, hi) = min_max(values);
        fmt(lo, hi)
    })
}

impl Table {
    /// A table whose first column is left-aligned and the others right-aligned.
    pub fn new(title: impl Into<String>, headers: &[&str]) -> Table {
        Table {
            title: title.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            wide_only: vec![false; headers.len()],
            rows: Vec::new(),
            notes: Vec::new(),
            thin: false,
        }
    }

    /// A cell that may be left out as meaningless on few samples (`None`): printed `-`, and the
    /// table then says why under it.
    pub fn thin(&mut self, cell: Option<String>) -> String {
        cell.unwrap_or_else(|| {
            self.thin = true;
            "-".into()
        })
    }

    /// Marks the columns at `indexes` as details: left out of the [`Layout::Fit`] layout.
    pub fn wide_only(&mut self, indexes: impl IntoIterator<Item = usize>) {
        for i in indexes {
            if let Some(w) = self.wide_only.get_mut(i) {
                *w = true;
            }
        }
    }

    /// Appends a row (missing cells print empty).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Appends a note printed under the table.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Renders the table (ends with a newline).
    pub fn render(&self, layout: Layout) -> String {
        use comfy_table::{CellAlignment, ContentArrangement, presets};

        let keep: Vec<usize> = (0..self.headers.len())
            .filter(|&i| layout != Layout::Fit || !self.wide_only[i])
            .collect();
        let pick = |cells: &[String]| -> Vec<String> {
            keep.iter()
                .map(|&i| cells.get(i).cloned().unwrap_or_default())
                .collect()
        };
        let mut t = comfy_table::Table::new();
        t.set_header(pick(&self.headers));
        for row in &self.rows {
            t.add_row(pick(row));
        }
        match layout {
            Layout::Fit => {
                t.load_style(PLAIN)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_width(FIT_COLUMNS as u16);
            }
            Layout::Wide => {
                t.load_style(PLAIN)
                    .set_content_arrangement(ContentArrangement::Disabled);
            }
            Layout::Markdown => {
                t.load_style(presets::ASCII_MARKDOWN)
                    .set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        for (i, column) in t.column_iter_mut().enumerate() {
            if i > 0 {
                column.set_cell_alignment(CellAlignment::Right);
            }
        }
        let mut out = String::new();
        let width = match layout {
            Layout::Fit => FIT_COLUMNS,
            _ => usize::MAX,
        };
        if layout == Layout::Markdown {
            let _ = writeln!(out, "### {}\n", self.title);
        } else {
            out.push_str(&wrap(&self.title, width, ""));
        }
        for line in t.lines() {
            let _ = writeln!(out, "{}", line.trim_end());
        }
        let thin = self.thin.then_some(THIN_NOTE);
        for note in self.notes.iter().map(String::as_str).chain(thin) {
            if layout == Layout::Markdown {
                let _ = writeln!(out, "\n{note}");
            } else {
                out.push_str(&wrap(note, width, "  "));
            }
        }
        out
    }
}

/// `text` broken at spaces into lines of at most `width` characters (a longer word stays whole),
/// each after `indent`, each ending with a newline.
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = line.chars().count();
        if len > indent.len() && len + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_median_and_p99() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let s = Summary::of(&mut v).expect("test setup");
        assert_eq!(s.median_ns, 50.5);
        assert_eq!(s.p99_ns, 99.0);
        assert_eq!(s.min_ns, 1.0);
        let mut one = vec![7];
        assert_eq!(Summary::of(&mut one).expect("test setup").p99_ns, 7.0);
    }

    #[test]
    fn few_samples_leave_p99_and_spread_out_and_the_table_says_so() {
        assert_eq!(p99_cell(5e3, P99_MIN_SAMPLES - 1), None);
        assert_eq!(p99_cell(5e3, P99_MIN_SAMPLES), Some("5.0 us".into()));
        assert_eq!(spread_cell(&[1e3], fmt_ns_range), None);
        assert_eq!(
            spread_cell(&[2e3, 1e3], fmt_ns_range),
            Some("1.0-2.0 us".into())
        );
        let mut t = Table::new("t", &["a", "p99"]);
        let cell = t.thin(p99_cell(5e3, 20));
        t.row(vec!["x".into(), cell]);
        let text = t.render(Layout::Wide);
        assert!(text.lines().any(|l| l.trim() == "x     -"), "{text}");
        assert!(
            text.contains("-: left out on this run's few samples"),
            "{text}"
        );
        let mut full = Table::new("t", &["a", "p99"]);
        let cell = full.thin(p99_cell(5e3, 200));
        full.row(vec!["x".into(), cell]);
        assert!(!full.render(Layout::Wide).contains("left out"));
    }

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("10M"), Ok(10 << 20));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn the_fit_layout_stays_within_100_columns_and_wide_shows_the_rest() {
        let mut t = Table::new("title ".repeat(30), &["name", "a", "b", "detail"]);
        t.wide_only([3]);
        t.row(vec![
            "a long contender name".into(),
            "1.0x".into(),
            "x".repeat(120),
            "only wide".into(),
        ]);
        t.note("note ".repeat(40));
        let fit = t.render(Layout::Fit);
        assert!(
            fit.lines().all(|l| l.chars().count() <= FIT_COLUMNS),
            "{fit}"
        );
        assert!(
            !fit.contains("only wide") && !fit.contains("detail"),
            "{fit}"
        );
        let wide = t.render(Layout::Wide);
        assert!(
            wide.contains("only wide") && wide.contains("detail"),
            "{wide}"
        );
        let md = t.render(Layout::Markdown);
        assert!(md.starts_with("### title"), "{md}");
        assert!(md.contains("| name"), "{md}");
    }

    #[test]
    fn wrap_breaks_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5, ""), "aa bb\ncc\n");
        assert_eq!(wrap("aa bb", 4, "  "), "  aa\n  bb\n");
        assert_eq!(wrap("toolongword x", 4, ""), "toolongword\nx\n");
    }

    #[test]
    fn counts_get_separators() {
        assert_eq!(fmt_count(17800.4), "17,800");
        assert_eq!(fmt_count(999.0), "999");
        assert_eq!(fmt_count(1234567.0), "1,234,567");
    }
}
