//! Ceph's text form of a `utime_t`, as `ceph mon dump` prints `last_changed` and `created`.

use crate::payload::UTime;
use std::fmt;

/// Seconds below which Ceph prints a `utime_t` as a relative time (ten 365-day years).
const RELATIVE_LIMIT: u32 = 60 * 60 * 24 * 365 * 10;

/// Displays a [`UTime`] like Ceph's `operator<<(ostream&, const utime_t&)`.
///
/// Ceph prints a stamp below ten years' worth of seconds as `SEC.USEC` (a duration, e.g.
/// `0.000000` for an unset time), anything else as ISO 8601 in the process's local time
/// zone with microseconds and a numeric offset: `2026-11-22T04:11:55.946826+0000`.
/// This type always prints UTC (`+0000`), so its output equals Ceph's on a host whose time
/// zone is UTC, as on the test machines and in containers; elsewhere only the wall-clock
/// part and offset differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CephStamp(pub UTime);

impl fmt::Display for CephStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let UTime { sec, nsec } = self.0;
        let usec = nsec / 1000;
        if sec < RELATIVE_LIMIT {
            return write!(f, "{sec}.{usec:06}");
        }
        let days = i64::from(sec / 86_400);
        let rem = sec % 86_400;
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{usec:06}+0000",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = if m <= 2 { y + 1 } else { y };
    // d and m are small and positive by construction
    (
        y,
        u32::try_from(m).unwrap_or(0),
        u32::try_from(d).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(sec: u32, nsec: u32) -> String {
        CephStamp(UTime { sec, nsec }).to_string()
    }

    #[test]
    fn absolute_times_print_as_utc_iso8601() {
        // `ceph mon dump` on the live test cluster (TZ=UTC)
        assert_eq!(
            show(1_795_320_715, 946_826_123),
            "2026-11-22T04:11:55.946826+0000"
        );
        assert_eq!(show(RELATIVE_LIMIT, 0), "1979-12-30T00:00:00.000000+0000");
        assert_eq!(show(951_782_400, 5_000), "2000-02-29T00:00:00.000005+0000");
        assert_eq!(
            show(u32::MAX, 999_999_999),
            "2106-02-07T06:28:15.999999+0000"
        );
    }

    /// Dates past 2100 (not a leap year: Feb 28 is followed by Mar 1) up to the end of the
    /// `u32` range.
    #[test]
    fn dates_up_to_2106() {
        for (sec, want) in [
            (946_684_799, "1999-12-31T23:59:59"),
            (4_102_444_800, "2100-01-01T00:00:00"),
            (4_107_456_000, "2100-02-28T00:00:00"),
            (4_107_542_400, "2100-03-01T00:00:00"),
            (u32::MAX, "2106-02-07T06:28:15"),
        ] {
            assert_eq!(show(sec, 0), format!("{want}.000000+0000"));
        }
    }

    #[test]
    fn small_times_print_as_durations() {
        assert_eq!(show(0, 0), "0.000000");
        assert_eq!(show(123, 456_789), "123.000456");
        assert_eq!(show(RELATIVE_LIMIT - 1, 0), "315359999.000000");
    }
}
