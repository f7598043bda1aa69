//! RFC 3339 UTC timestamps without a calendar crate: the one format we emit.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, as `2026-11-28T09:15:00.123Z`.
pub fn now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_millis(since.as_millis() as i64)
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC.
pub fn format_millis(millis: i64) -> String {
    let (days, ms_of_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let secs = ms_of_day / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    )
}

/// Nanoseconds since the Unix epoch as RFC 3339 UTC, with every digit of
/// the fraction (as JetStream wants a time).
pub fn format_nanos(nanos: i128) -> String {
    let millis = nanos.div_euclid(1_000_000) as i64;
    let text = format_millis(millis);
    let fraction = nanos.rem_euclid(1_000_000_000);
    format!("{}.{fraction:09}Z", &text[..19])
}

/// An RFC 3339 date-time (`2026-11-28T09:15:00Z`, `...00.5+01:00`) as
/// nanoseconds since the Unix epoch; `None` if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| std::str::from_utf8(part).ok()?.parse().ok())?
    };
    let sep = |i: usize, c: u8| b.get(i).is_some_and(|x| *x == c);
    if !(sep(4, b'-')
        && sep(7, b'-')
        && b.get(10).is_some_and(|c| matches!(c, b'T' | b't' | b' '))
        && sep(13, b':')
        && sep(16, b':'))
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in[month as usize - 1]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut fraction: i128 = 0;
    if sep(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = &text[start..i];
        if digits.is_empty() {
            return None;
        }
        let kept: String = digits.chars().take(9).collect();
        fraction = format!("{kept:0<9}").parse().ok()?;
    }
    let offset_secs: i64 = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let h = i64::from(h1 - b'0') * 10 + i64::from(h2 - b'0');
            let m = i64::from(m1 - b'0') * 10 + i64::from(m2 - b'0');
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(i128::from(secs) * 1_000_000_000 + fraction)
}

/// Howard Hinnant's civil-to-days algorithm.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_millis(1_795_861_234_567), "2026-11-28T10:20:34.567Z");
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        let nanos = |s: &str| parse_rfc3339(s).unwrap_or_else(|| panic!("{s}"));
        assert_eq!(nanos("1970-01-01T00:00:00Z"), 0);
        assert_eq!(nanos("2026-11-28T10:20:34.567Z"), 1_795_861_234_567_000_000);
        assert_eq!(
            nanos("2026-11-28T11:20:34.567+01:00"),
            1_795_861_234_567_000_000
        );
        assert_eq!(
            nanos("2000-02-29T00:00:00.000000001Z"),
            951_782_400_000_000_001
        );
        assert_eq!(
            format_nanos(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-11-28",
            "2026-11-28T10:20:34",
            "yesterday",
            "2026-11-28T25:00:00Z",
            "2026-11-28T10:20:34.Z",
            "2026-11-28T10:20:34+0100",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
