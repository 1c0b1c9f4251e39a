//! Durations on the command line, one syntax for `run` and `bench`: a bare number is seconds
//! (`10`, `0.5`, as GNU timeout and parallel take them); otherwise humantime's units (`500ms`,
//! `2s`, `1m30s`, `1h`, `1.5s`).

use std::time::Duration;

/// The hint every error ends with.
const EXPECTED: &str = "expected seconds (e.g. 10, 0.5) or a number with a unit: ms, s, m, h \
                        (e.g. 500ms, 2s, 1m30s, 1h)";

/// `parse(s)`—Parses a duration: plain seconds, or humantime's `<number><unit>` terms.
///
/// ```text
/// parse("10") == Ok(10 s)    parse("500ms") == Ok(500 ms)    parse("1m30s") == Ok(90 s)
/// ```
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(format!("empty duration: {EXPECTED}"));
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
    humantime::parse_duration(t).map_err(|e| format!("invalid duration {s:?} ({e}): {EXPECTED}"))
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
