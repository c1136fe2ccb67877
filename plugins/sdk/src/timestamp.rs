//! RFC 3339 timestamps written the way Periscope's Go backend writes them (spec 1.2).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A Kubernetes timestamp: an instant, or Go's zero time when the source lacks one.
///
/// Deserializes from an RFC 3339 string, `null` or a missing key (with
/// `#[serde(default)]`), and serializes in UTC with a literal `Z` and fractional
/// seconds only when non-zero, trailing zeros trimmed. The zero time serializes as
/// `"0001-01-01T00:00:00Z"`: summaries never omit or null a timestamp.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(Option<OffsetDateTime>);

/// Go's zero `time.Time`, as written on the wire.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl Timestamp {
    /// The zero time (what an absent timestamp becomes).
    pub const ZERO: Timestamp = Timestamp(None);

    /// An instant from seconds and nanoseconds since the Unix epoch; out-of-range input
    /// gives the zero time.
    pub fn from_unix(seconds: i64, nanos: u32) -> Timestamp {
        let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        Timestamp(OffsetDateTime::from_unix_timestamp_nanos(total).ok())
    }

    /// Parses an RFC 3339 string (any offset; stored as UTC).
    pub fn parse(text: &str) -> Result<Timestamp, time::error::Parse> {
        let at = OffsetDateTime::parse(text, &Rfc3339)?;
        Ok(Timestamp(Some(at.to_offset(UtcOffset::UTC))))
    }

    /// True for the zero time.
    pub fn is_zero(&self) -> bool {
        self.0.is_none()
    }

    /// The instant; `None` for the zero time.
    pub fn instant(&self) -> Option<OffsetDateTime> {
        self.0
    }

    /// `self - earlier`, clamped at zero; the zero time counts as its real instant
    /// (January 1st of year 1), as Go's `Sub` does.
    pub fn since(&self, earlier: &Timestamp) -> time::Duration {
        let zero = time::macros::datetime!(0001-01-01 0:00 UTC);
        let d = self.0.unwrap_or(zero) - earlier.0.unwrap_or(zero);
        d.max(time::Duration::ZERO)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(at) = self.0 else {
            return f.write_str(ZERO_TIME);
        };
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )?;
        let nanos = at.nanosecond();
        if nanos != 0 {
            let digits = format!("{nanos:09}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        match text.as_deref() {
            None | Some("") => Ok(Timestamp::ZERO),
            Some(text) => {
                Timestamp::parse(text).map_err(|e| serde::de::Error::custom(format!("invalid timestamp {text:?}: {e}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(input: &str) -> String {
        Timestamp::parse(input).unwrap().to_string()
    }

    #[test]
    fn second_precision_is_written_without_fraction() {
        assert_eq!(round_trip("2026-05-01T12:00:00Z"), "2026-05-01T12:00:00Z");
    }

    #[test]
    fn fractions_are_trimmed_of_trailing_zeros() {
        assert_eq!(round_trip("2026-05-01T12:00:00.120000Z"), "2026-05-01T12:00:00.12Z");
        assert_eq!(round_trip("2026-05-01T12:00:00.000Z"), "2026-05-01T12:00:00Z");
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        assert_eq!(round_trip("2026-05-01T14:30:00+02:00"), "2026-05-01T12:30:00Z");
    }

    #[test]
    fn null_missing_and_empty_are_the_zero_time() {
        let t: Timestamp = serde_json::from_str("null").unwrap();
        assert_eq!(t.to_string(), ZERO_TIME);
        let t: Timestamp = serde_json::from_str("\"\"").unwrap();
        assert!(t.is_zero());
        assert_eq!(Timestamp::default().to_string(), ZERO_TIME);
    }

    #[test]
    fn garbage_is_an_error_that_names_the_value() {
        let err = serde_json::from_str::<Timestamp>("\"yesterday\"").unwrap_err();
        assert!(err.to_string().contains("\"yesterday\""), "{err}");
    }

    #[test]
    fn since_clamps_at_zero() {
        let a = Timestamp::parse("2026-05-01T12:00:00Z").unwrap();
        let b = Timestamp::parse("2026-05-01T12:01:30Z").unwrap();
        assert_eq!(b.since(&a).whole_seconds(), 90);
        assert_eq!(a.since(&b).whole_seconds(), 0);
    }
}
