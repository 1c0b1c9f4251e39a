//! Durations on the command line: `500ms`, `2s`, `1m`, `1.5s`, `1m30s`.
//!
//! A humantime-like parser kept to the three units a per-command timeout needs, so the binary needs
//! no crate for it. The arithmetic is exact (integers in nanoseconds): `0.1s` is 100 ms, not
//! 99.999… ms as an `f64` would make it.

use std::time::Duration;

const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SEC: u128 = 1_000_000_000;
const NANOS_PER_MIN: u128 = 60 * NANOS_PER_SEC;

/// The hint every error ends with.
const EXPECTED: &str = "expected a number and a unit: ms, s or m (e.g. 500ms, 2s, 1m, 1m30s)";

/// `parse(s)`—Parses one or more `<number><unit>` terms, added up.
///
/// The number is decimal with an optional fraction (`1.5s`); the unit is `ms`, `s` or `m`. No
/// spaces, no sign, and a bare number is refused: `--timeout 5` would otherwise be a guess.
///
/// ```text
/// parse("500ms") == Ok(500 ms)    parse("1m30s") == Ok(90 s)    parse("5") is an Err
/// ```
pub fn parse(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err(format!("empty duration: {EXPECTED}"));
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if number.is_empty() {
            return Err(format!("invalid duration {s:?}: {EXPECTED}"));
        }
        let unit_nanos = match unit {
            "ms" => NANOS_PER_MILLI,
            "s" => NANOS_PER_SEC,
            "m" => NANOS_PER_MIN,
            "" => return Err(format!("{s:?} has no unit: {EXPECTED}")),
            other => return Err(format!("unknown unit {other:?} in {s:?}: {EXPECTED}")),
        };
        let nanos = scale(number, unit_nanos)
            .ok_or_else(|| format!("invalid duration {s:?}: {EXPECTED}"))?;
        total = total
            .checked_add(nanos)
            .ok_or_else(|| format!("duration {s:?} is too large"))?;
        rest = after;
    }
    let secs =
        u64::try_from(total / NANOS_PER_SEC).map_err(|_| format!("duration {s:?} is too large"))?;
    // The remainder is below one second, so it fits in u32.
    let subsec = (total % NANOS_PER_SEC) as u32;
    Ok(Duration::new(secs, subsec))
}

/// `parse_positive(s)`—[`parse`], refusing zero (a zero timeout would kill every command at once).
pub fn parse_positive(s: &str) -> Result<Duration, String> {
    match parse(s)? {
        d if d.is_zero() => Err(format!("duration {s:?} must be more than zero")),
        d => Ok(d),
    }
}

/// `number` (digits, at most one `.`) times `unit_nanos`, truncated to whole nanoseconds; `None`
/// when malformed or too large for `u128`.
fn scale(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    // Digits below a nanosecond of a minute cannot matter; cutting them keeps 10^len in range.
    let fraction = &fraction[..fraction.len().min(12)];
    let parse = |digits: &str| -> Option<u128> {
        if digits.is_empty() {
            Some(0)
        } else {
            digits.parse().ok()
        }
    };
    let whole_nanos = parse(whole)?.checked_mul(unit_nanos)?;
    let denominator = 10u128.pow(fraction.len() as u32);
    let fraction_nanos = parse(fraction)?.checked_mul(unit_nanos)? / denominator;
    whole_nanos.checked_add(fraction_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_unit() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn fractions_are_exact() {
        assert_eq!(parse("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0.5m"), Ok(Duration::from_secs(30)));
        assert_eq!(parse(".25s"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2.s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse("0.0000000001s"), Ok(Duration::ZERO));
    }

    #[test]
    fn terms_add_up() {
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("1s500ms"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn refuses_a_bare_number() {
        let e = parse("5").unwrap_err();
        assert!(e.contains("no unit"), "{e}");
    }

    #[test]
    fn refuses_malformed_input() {
        for bad in [
            "", "ms", "s5", "5x", "5 s", " 5s", "5s ", "1..5s", ".s", "-1s", "+1s", "5sec", "1h",
            "5s5",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn refuses_overflow_instead_of_wrapping() {
        assert!(parse("99999999999999999999999999999999999999999m").is_err());
        assert!(parse("18446744073709551616s").is_err());
        assert_eq!(
            parse("18446744073709551615s"),
            Ok(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn positive_refuses_zero() {
        assert!(parse_positive("0ms").is_err());
        assert!(parse_positive("0.0s").is_err());
        assert_eq!(parse_positive("1ms"), Ok(Duration::from_millis(1)));
    }
}
