//! Instants as the API writes them: RFC 3339, UTC, exactly three fractional digits, `Z`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An instant with millisecond precision, the precision leads are stored and compared at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Milliseconds since the Unix epoch; `None` outside the years 0000..=9999 RFC 3339 can write.
    pub fn from_millis(millis: i64) -> Option<Self> {
        // 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z.
        const MIN: i64 = -62_167_219_200_000;
        const MAX: i64 = 253_402_300_799_999;
        (MIN..=MAX).contains(&millis).then_some(Self(millis))
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    /// Parses any RFC 3339 date-time. Sub-millisecond digits are truncated (floor); a leap
    /// second is the start of the next minute (see [`Timestamp::parse_with_rest`]).
    pub fn parse(text: &str) -> Option<Self> {
        Self::parse_with_rest(text).map(|(ts, _)| ts)
    }

    /// Parses RFC 3339 and also says whether digits below the millisecond were non-zero,
    /// so a caller can round an exclusive upper bound up instead of down. Every time the API
    /// reads goes through here.
    ///
    /// A leap second (second 60, which RFC 3339 allows) has no instant of its own in Unix time,
    /// where leads are stored, so it is read as the start of the next minute whatever its
    /// fraction: `00:52:60.500Z` is `00:53:00.000Z`, never a time after it, and never one before
    /// `00:52:59.999Z` either.
    pub fn parse_with_rest(text: &str) -> Option<(Self, bool)> {
        let parsed = DateTime::parse_from_rfc3339(text).ok()?;
        let utc = parsed.with_timezone(&Utc);
        let nanos = utc.timestamp_subsec_nanos();
        // chrono keeps a leap second as second 59 with 1e9 nanoseconds or more.
        if nanos >= 1_000_000_000 {
            let next_minute = utc.timestamp().checked_add(1)?.checked_mul(1000)?;
            return Self::from_millis(next_minute).map(|ts| (ts, false));
        }
        let sub_milli = nanos % 1_000_000 != 0;
        Self::from_millis(utc.timestamp_millis()).map(|ts| (ts, sub_milli))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::<Utc>::from_timestamp_millis(self.0) {
            Some(dt) => f.write_str(&dt.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => write!(f, "{}ms", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid RFC 3339 timestamp: {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_three_fraction_digits_and_z() {
        let ts = Timestamp::from_millis(1_701_406_800_000).unwrap();
        assert_eq!(ts.to_string(), "2023-12-01T05:00:00.000Z");
    }

    #[test]
    fn reads_offsets_and_truncates_below_the_millisecond() {
        let (ts, rest) = Timestamp::parse_with_rest("2023-12-01T06:00:00.4015+01:00").unwrap();
        assert_eq!(ts.to_string(), "2023-12-01T05:00:00.401Z");
        assert!(rest);
        assert!(Timestamp::parse("2023-12-01").is_none());
        assert!(Timestamp::parse("yesterday").is_none());
    }

    #[test]
    fn a_leap_second_is_the_start_of_the_next_minute_whatever_its_fraction() {
        for text in [
            "2026-06-22T00:52:60Z",
            "2026-06-22T00:52:60.000Z",
            "2026-06-22T00:52:60.500Z",
            "2026-06-22T00:52:60.999999999Z",
            "2026-06-22T01:52:60.5+01:00",
        ] {
            let (ts, rest) = Timestamp::parse_with_rest(text).unwrap();
            assert_eq!(ts.to_string(), "2026-06-22T00:53:00.000Z", "{text}");
            assert!(!rest, "{text}");
        }
        assert_eq!(
            Timestamp::parse("2016-12-31T23:59:60.250Z")
                .unwrap()
                .to_string(),
            "2017-01-01T00:00:00.000Z"
        );
        // The minute after the last one RFC 3339 can write is out of range.
        assert!(Timestamp::parse("9999-12-31T23:59:60Z").is_none());
        assert!(Timestamp::parse("2026-06-22T00:52:61Z").is_none());
    }
}
