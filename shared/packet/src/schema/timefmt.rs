//! RFC 3339 UTC timestamps with nanoseconds (`2018-01-28T23:06:05.123456789Z`), written without
//! `fmt` or a date library: the civil-date conversion is Howard Hinnant's `civil_from_days`.

/// Length of one formatted timestamp.
pub const TS_LEN: usize = 30;

/// Writes `ts_ns` (nanoseconds since the Unix epoch, may be negative) as
/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`. Every `i64` falls in years 1677..=2262, so the year always
/// has four digits.
pub fn write_rfc3339_ns(out: &mut Vec<u8>, ts_ns: i64) {
    let secs = ts_ns.div_euclid(1_000_000_000);
    let nanos = ts_ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    let mut b = [0u8; TS_LEN];
    put_digits(&mut b[0..4], year as u32);
    b[4] = b'-';
    put_digits(&mut b[5..7], month);
    b[7] = b'-';
    put_digits(&mut b[8..10], day);
    b[10] = b'T';
    put_digits(&mut b[11..13], sod / 3600);
    b[13] = b':';
    put_digits(&mut b[14..16], (sod / 60) % 60);
    b[16] = b':';
    put_digits(&mut b[17..19], sod % 60);
    b[19] = b'.';
    put_digits(&mut b[20..29], nanos);
    b[29] = b'Z';
    out.extend_from_slice(&b);
}

/// Fills `dst` with the low decimal digits of `v`, zero-padded to the slice length.
fn put_digits(dst: &mut [u8], mut v: u32) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, SecondsFormat};

    fn ours(ts: i64) -> String {
        let mut v = Vec::new();
        write_rfc3339_ns(&mut v, ts);
        String::from_utf8(v).unwrap()
    }

    fn chrono_fmt(ts: i64) -> String {
        DateTime::from_timestamp_nanos(ts).to_rfc3339_opts(SecondsFormat::Nanos, true)
    }

    #[test]
    fn known_values() {
        assert_eq!(ours(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(ours(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            ours(1_517_180_765_123_456_789),
            "2018-01-28T23:06:05.123456789Z"
        );
        assert_eq!(
            ours(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn matches_chrono_across_the_whole_range() {
        // Every day boundary (and one odd instant per day) from 1970 to 2110, plus leap days.
        let day_ns = 86_400 * 1_000_000_000i64;
        for d in 0..(140 * 366) {
            for ts in [d * day_ns, d * day_ns - 1, d * day_ns + 45_296_000_000_007] {
                assert_eq!(ours(ts), chrono_fmt(ts), "ts {ts}");
            }
        }
        for ts in [i64::MIN, i64::MAX, i64::MIN + 1, i64::MAX - 1] {
            assert_eq!(ours(ts), chrono_fmt(ts), "ts {ts}");
        }
    }

    #[test]
    fn matches_chrono_on_pseudo_random_instants() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ts = x as i64;
            assert_eq!(ours(ts), chrono_fmt(ts), "ts {ts}");
        }
    }
}
