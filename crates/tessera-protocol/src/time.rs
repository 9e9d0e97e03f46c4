//! Time as the protocol sees it: a [`Timestamp`] the caller passes in. Nothing here reads a clock.

use std::time::Duration;

use time::{format_description::well_known::Rfc3339, OffsetDateTime, UtcOffset};

/// An instant, in milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `millis` milliseconds after the Unix epoch.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch.
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant moved `d` later, saturating at the end of time.
    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// How long after `earlier` this instant is (zero if it is not later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, UTC, whole seconds: the form CAS clients parse (pycas-sso reads SLO
    /// `IssueInstant` with `%Y-%m-%dT%H:%M:%SZ`).
    pub fn to_rfc3339_seconds(self) -> String {
        let dt = OffsetDateTime::from_unix_timestamp(self.unix_seconds())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(UtcOffset::UTC);
        // Rfc3339 renders UTC as `Z` and leaves out a zero fraction.
        dt.format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_whole_seconds_in_utc() {
        let t = Timestamp::from_unix_millis(1_738_318_530_999);
        assert_eq!(t.to_rfc3339_seconds(), "2025-01-31T10:15:30Z");
    }

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_unix_millis(1000);
        assert_eq!(t.plus(Duration::from_secs(60)).unix_millis(), 61_000);
        assert_eq!(t.since(Timestamp::from_unix_millis(5000)), Duration::ZERO);
        assert_eq!(
            Timestamp::from_unix_millis(i64::MAX)
                .plus(Duration::from_secs(1))
                .unix_millis(),
            i64::MAX
        );
    }
}
