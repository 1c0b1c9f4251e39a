//! Durations on the command line, one syntax for `run` and `bench`: a bare number is seconds
//! (`10`, `0.5`, as GNU timeout and parallel take them); otherwise humantime's units (`500ms`,
//! `2s`, `1m30s`, `1h`).
//!
//! Every message about durations (the errors here, the `--help` texts) takes its unit list from
//! [`UNITS`], the units humantime accepts, so that no two lists can disagree. humantime's own
//! error text is not shown: it carries a second list of its own.

use std::time::Duration;

/// The short unit names humantime accepts, with what each means; each also has long forms
/// (`sec`, `min`, `hours`, ...).
pub const UNITS: [(&str, &str); 10] = [
    ("ns", "nanoseconds"),
    ("us", "microseconds"),
    ("ms", "milliseconds"),
    ("s", "seconds"),
    ("m", "minutes"),
    ("h", "hours"),
    ("d", "days"),
    ("w", "weeks"),
    ("M", "months of 30.44 days"),
    ("y", "years of 365.25 days"),
];

/// The syntax in one sentence, for errors and `--help`:
/// `seconds (10, 0.5), or numbers with units (500ms, 1m30s): ns, us, ms, s, m, h, d, w, M, y`.
pub fn syntax() -> String {
    let units: Vec<&str> = UNITS.iter().map(|(u, _)| *u).collect();
    format!(
        "a bare number is seconds (10, 0.5); otherwise numbers with units (500ms, 2s, 1m30s): \
         {} (also long forms: sec, min, hours, days, ...)",
        units.join(", ")
    )
}

/// `parse(s)`—Parses a duration: plain seconds, or humantime's `<number><unit>` terms.
///
/// ```text
/// parse("10") == Ok(10 s)    parse("500ms") == Ok(500 ms)    parse("1m30s") == Ok(90 s)
/// ```
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("empty duration; {}", syntax()));
    }
    // A bare number: seconds. Through humantime too, so that the arithmetic stays exact
    // (`0.1` is 100 ms, not the nearest f64).
    let with_unit;
    let t = if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        with_unit = format!("{t}s");
        &with_unit
    } else {
        t
    };
    humantime::parse_duration(t).map_err(|e| format!("{}; {}", what_is_wrong(s, &e), syntax()))
}

/// What is wrong with `s`, without humantime's own unit list.
fn what_is_wrong(s: &str, e: &humantime::DurationError) -> String {
    use humantime::DurationError as E;
    match e {
        E::InvalidCharacter(at) => format!("invalid duration {s:?}: unexpected character at {at}"),
        E::NumberExpected(at) => format!("invalid duration {s:?}: a number expected at {at}"),
        E::UnknownUnit { unit, .. } if unit.is_empty() => {
            format!("invalid duration {s:?}: a unit is missing")
        }
        E::UnknownUnit { unit, .. } => format!("invalid duration {s:?}: unknown unit {unit:?}"),
        E::NumberOverflow => format!("invalid duration {s:?}: too large, or finer than 1 ns"),
        E::Empty => "empty duration".to_owned(),
    }
}

/// `parse_positive(s)`—[`parse`], refusing zero (a zero timeout would kill every command at once).
pub fn parse_positive(s: &str) -> Result<Duration, String> {
    match parse(s)? {
        d if d.is_zero() => Err(format!("duration {s:?} must be more than zero")),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_number_is_seconds() {
        assert_eq!(parse("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0.1"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn accepts_the_usual_units() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("250us"), Ok(Duration::from_micros(250)));
    }

    #[test]
    fn every_listed_unit_is_accepted_and_means_what_it_says() {
        let second = Duration::from_secs(1);
        let expected = [
            Duration::from_nanos(2),
            Duration::from_micros(2),
            Duration::from_millis(2),
            2 * second,
            120 * second,
            7200 * second,
            2 * 86_400 * second,
            2 * 7 * 86_400 * second,
            2 * 2_630_016 * second,
            2 * 31_557_600 * second,
        ];
        for ((unit, _), want) in UNITS.iter().zip(expected) {
            assert_eq!(parse(&format!("2{unit}")), Ok(want), "unit {unit}");
        }
        for long in ["2sec", "2min", "2hours", "2days"] {
            assert!(parse(long).is_ok(), "{long}");
        }
    }

    #[test]
    fn an_error_carries_one_unit_list_and_says_what_is_wrong() {
        for (bad, why) in [
            ("5x", "unknown unit \"x\""),
            ("ms", "a number expected"),
            ("", "empty"),
            ("1..5", "invalid duration"),
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
            assert_eq!(e.matches("ms, s, m, h").count(), 1, "{bad:?}: {e}");
            assert!(!e.contains("supported units"), "humantime's list: {e}");
        }
    }

    #[test]
    fn refuses_malformed_input() {
        for bad in ["", "ms", "5x", "-1", "-1s", "1..5", "five", "1e3"] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn positive_refuses_zero() {
        assert!(parse_positive("0").is_err());
        assert!(parse_positive("0ms").is_err());
        assert_eq!(parse_positive("1ms"), Ok(Duration::from_millis(1)));
    }
}
