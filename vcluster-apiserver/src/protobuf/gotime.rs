//! Go's text forms of `metav1.Time`, `metav1.MicroTime` and `time.Duration`,
//! reproduced exactly so protobuf bodies decode to the strings a Go JSON
//! client would have written.

/// Unix seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which
/// `metav1.Time` and `metav1.MicroTime` encode as JSON `null`.
pub(crate) const GO_ZERO_UNIX: i64 = -62_135_596_800;

/// Why a timestamp has no RFC 3339 form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {seconds}s is outside years 0000-9999")]
pub(crate) struct OutOfRange {
    pub(crate) seconds: i64,
}

/// `metav1.Time`: RFC 3339 in UTC, whole seconds (`2024-01-02T03:04:05Z`).
pub(crate) fn rfc3339(seconds: i64) -> Result<String, OutOfRange> {
    let (date, time) = civil(seconds)?;
    Ok(format!("{date}T{time}Z"))
}

/// `metav1.MicroTime`: RFC 3339 in UTC with six fractional digits,
/// truncated like Go's `.000000` layout (`2024-01-02T03:04:05.123456Z`).
pub(crate) fn rfc3339_micro(seconds: i64, nanos: u32) -> Result<String, OutOfRange> {
    let (date, time) = civil(seconds)?;
    Ok(format!("{date}T{time}.{:06}Z", nanos / 1000))
}

/// Splits Unix seconds into `YYYY-MM-DD` and `HH:MM:SS` (proleptic Gregorian).
fn civil(seconds: i64) -> Result<(String, String), OutOfRange> {
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return Err(OutOfRange { seconds });
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    let time = format!(
        "{:02}:{:02}:{:02}",
        secs_of_day / 3600,
        secs_of_day % 3600 / 60,
        secs_of_day % 60
    );
    Ok((date, time))
}

/// Go's `time.Duration.String()`: `1h0m0s`, `1.5s`, `300ms`, `2µs`, `0s`.
pub(crate) fn duration(nanos: i64) -> String {
    let mut u = nanos.unsigned_abs();
    // Built back to front, as Go does.
    let mut out: Vec<char> = Vec::with_capacity(24);
    const SECOND: u64 = 1_000_000_000;
    if u < SECOND {
        // Below a second Go switches to the largest unit that keeps an
        // integer part: ns, µs or ms.
        let (prec, unit) = match u {
            0 => return "0s".to_string(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "µs"),
            _ => (6, "ms"),
        };
        out.extend(unit.chars().rev());
        u = push_fraction(&mut out, u, prec);
        push_int(&mut out, u);
    } else {
        out.push('s');
        u = push_fraction(&mut out, u, 9);
        push_int(&mut out, u % 60);
        u /= 60;
        if u > 0 {
            out.push('m');
            push_int(&mut out, u % 60);
            u /= 60;
            // Go stops at hours: days have no fixed length.
            if u > 0 {
                out.push('h');
                push_int(&mut out, u);
            }
        }
    }
    if nanos < 0 {
        out.push('-');
    }
    out.iter().rev().collect()
}

/// Pushes (reversed) the fraction of `v / 10^prec` without trailing zeros,
/// and the dot when any digit remains; returns the integer part.
fn push_fraction(out: &mut Vec<char>, mut v: u64, prec: u32) -> u64 {
    let mut printing = false;
    for _ in 0..prec {
        let digit = v % 10;
        printing = printing || digit != 0;
        if printing {
            out.push(digit_char(digit));
        }
        v /= 10;
    }
    if printing {
        out.push('.');
    }
    v
}

/// Pushes (reversed) the decimal digits of `v`.
fn push_int(out: &mut Vec<char>, mut v: u64) {
    loop {
        out.push(digit_char(v % 10));
        v /= 10;
        if v == 0 {
            break;
        }
    }
}

fn digit_char(digit: u64) -> char {
    // `digit` is always below 10.
    char::from(b'0' + (digit % 10) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_match_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (300_000_000, "300ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (30_000_000_000, "30s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_661_000_000_001, "1h1m1.000000001s"),
            (-1_500_000_000, "-1.5s"),
            (-1, "-1ns"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(duration(nanos), want, "{nanos}ns");
        }
    }

    #[test]
    fn timestamps_match_go() {
        assert_eq!(rfc3339(0).as_deref(), Ok("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(1_704_164_645).as_deref(),
            Ok("2024-01-02T03:04:05Z")
        );
        assert_eq!(rfc3339(951_782_400).as_deref(), Ok("2000-02-29T00:00:00Z"));
        assert_eq!(rfc3339(-1).as_deref(), Ok("1969-12-31T23:59:59Z"));
        assert_eq!(rfc3339(GO_ZERO_UNIX).as_deref(), Ok("0001-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(253_402_300_799).as_deref(),
            Ok("9999-12-31T23:59:59Z")
        );
        assert!(rfc3339(253_402_300_800).is_err());
        assert!(rfc3339(i64::MIN).is_err());
        assert!(rfc3339(i64::MAX).is_err());
        assert_eq!(
            rfc3339_micro(1_704_164_645, 123_456_789).as_deref(),
            Ok("2024-01-02T03:04:05.123456Z")
        );
        assert_eq!(
            rfc3339_micro(0, 0).as_deref(),
            Ok("1970-01-01T00:00:00.000000Z")
        );
    }
}
