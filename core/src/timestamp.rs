//! UTC timestamps, printed as Glance printed them (ISO 8601 without an offset).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{format_description::well_known::Rfc3339, macros::format_description, OffsetDateTime, PrimitiveDateTime};

/// A moment in UTC with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

const PRINTED: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]");
const ZULU: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
const NAIVE: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]");

impl Timestamp {
    /// The timestamp `micros` microseconds after the Unix epoch.
    pub fn from_unix_micros(micros: i64) -> Self {
        let t =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        Timestamp(t)
    }

    /// The form the Images API v2 prints: whole seconds, `Z` (`2012-03-13T10:00:00Z`).
    pub fn zulu(&self) -> String {
        self.0.format(ZULU).unwrap_or_default()
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1000) as i64
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.format(PRINTED).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

impl FromStr for Timestamp {
    type Err = crate::Error;

    /// Accepts RFC 3339 (`2012-03-13T10:00:00Z`, any offset) and the naive form this type
    /// prints, which is read as UTC.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
            return Ok(Timestamp::from_unix_micros((t.unix_timestamp_nanos() / 1000) as i64));
        }
        PrimitiveDateTime::parse(s, NAIVE)
            .map(|t| Timestamp::from_unix_micros((t.assume_utc().unix_timestamp_nanos() / 1000) as i64))
            .map_err(|_| crate::Error::invalid("timestamp", format!("{s:?} is not an ISO 8601 date and time")))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_naive_utc_with_micros() {
        let t = Timestamp::from_unix_micros(1_331_632_800_000_123);
        assert_eq!(t.to_string(), "2012-03-13T10:00:00.000123");
        assert_eq!(t.zulu(), "2012-03-13T10:00:00Z");
        assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
    }

    #[test]
    fn parses_rfc3339_with_offsets() {
        let a: Timestamp = "2012-03-13T10:00:00Z".parse().unwrap();
        let b: Timestamp = "2012-03-13T11:00:00+01:00".parse().unwrap();
        let c: Timestamp = "2012-03-13T10:00:00".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!("yesterday".parse::<Timestamp>().is_err());
    }
}
