use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// A point in time, UTC, with microsecond precision.
///
/// Microseconds are what both PostgreSQL and our SQLite encoding keep exactly, so a
/// timestamp read back from storage compares equal to the one that was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    pub const fn from_unix_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// The time `duration` later, held at the end of the range rather than wrapping.
    pub fn saturating_add(self, duration: std::time::Duration) -> Self {
        let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(micros))
    }

    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Timestamp(at.timestamp_micros())
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        // Every i64 of microseconds is inside chrono's range, so this never falls back
        // in practice; the fallback keeps the function total.
        DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// RFC 3339 in UTC with a `Z` suffix and 0, 3, 6 or 9 fractional digits.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// Parses any RFC 3339 timestamp (any offset); sub-microsecond digits are dropped.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|at| Timestamp::from_datetime(at.with_timezone(&Utc)))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_z_and_si_fraction() {
        assert_eq!(
            Timestamp::from_unix_micros(0).to_rfc3339(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            Timestamp::from_unix_micros(1_732_292_825_645_000).to_rfc3339(),
            "2024-11-22T16:27:05.645Z"
        );
        assert_eq!(
            Timestamp::from_unix_micros(1_732_292_825_645_001).to_rfc3339(),
            "2024-11-22T16:27:05.645001Z"
        );
    }

    #[test]
    fn parses_offsets_into_utc() {
        let parsed = Timestamp::parse_rfc3339("2024-11-22T17:27:05.645+01:00");
        assert_eq!(
            parsed,
            Some(Timestamp::from_unix_micros(1_732_292_825_645_000))
        );
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn adding_a_duration_saturates_instead_of_wrapping() {
        let second = std::time::Duration::from_secs(1);
        assert_eq!(
            Timestamp::from_unix_micros(5).saturating_add(second),
            Timestamp::from_unix_micros(1_000_005)
        );
        assert_eq!(
            Timestamp::from_unix_micros(i64::MAX - 1).saturating_add(second),
            Timestamp::from_unix_micros(i64::MAX)
        );
        assert_eq!(
            Timestamp::UNIX_EPOCH.saturating_add(std::time::Duration::MAX),
            Timestamp::from_unix_micros(i64::MAX)
        );
    }
}
