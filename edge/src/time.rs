//! UTC calendar dates from Unix time, without a time-zone database.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Howard Hinnant's days-to-civil algorithm: days since 1970-01-01 to (year, month 1-12,
/// day 1-31), proleptic Gregorian calendar.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A UTC date and time, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    /// Year.
    pub year: i64,
    /// Month, 1-12.
    pub month: u32,
    /// Day of the month, 1-31.
    pub day: u32,
    /// Hour, 0-23.
    pub hour: u32,
    /// Minute, 0-59.
    pub minute: u32,
    /// Second, 0-59.
    pub second: u32,
}

impl Utc {
    /// From seconds since the Unix epoch (negative: before it).
    pub fn from_unix(secs: i64) -> Utc {
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        Utc {
            year,
            month,
            day,
            hour: (sod / 3600) as u32,
            minute: (sod / 60 % 60) as u32,
            second: (sod % 60) as u32,
        }
    }

    /// From a system time (before the epoch counts backwards).
    pub fn from_system(t: SystemTime) -> Utc {
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        Utc::from_unix(secs)
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339).
    pub fn iso8601(&self) -> String {
        format!("{self}").replacen(' ', "T", 1) + "Z"
    }
}

impl fmt::Display for Utc {
    /// `YYYY-MM-DD HH:MM:SS`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(Utc::from_unix(0).iso8601(), "1970-01-01T00:00:00Z");
        assert_eq!(
            Utc::from_unix(784_111_777).to_string(),
            "1994-11-06 08:49:37"
        );
        assert_eq!(
            Utc::from_unix(951_782_400).iso8601(),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            Utc::from_unix(1_798_761_599).iso8601(),
            "2026-12-31T23:59:59Z"
        );
        assert_eq!(Utc::from_unix(-1).iso8601(), "1969-12-31T23:59:59Z");
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
    }
}
