//! `Dur`: a duration written as text in the config ("250ms", "30s", "1m30s").

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a duration must look like; also the "expected" part of config errors.
pub(crate) const DUR_EXPECTED: &str = "a duration like \"30s\" (an integer and a unit: ms, s, m, h or d; combinations like \"1m30s\")";

/// Units from largest to smallest, with their length in nanoseconds.
const UNITS: [(&str, u128); 7] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// A duration written "250ms", "30s", "5m", "2h", "7d" (integer + unit; also
/// combinations like "1m30s"); deserializes from such a string, serializes
/// back to a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// The wrapped [`Duration`].
    pub fn get(self) -> Duration {
        self.0
    }

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Dur {
        Dur(Duration::from_secs(secs))
    }

    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Dur {
        Dur(Duration::from_millis(millis))
    }
}

impl Deref for Dur {
    type Target = Duration;

    fn deref(&self) -> &Duration {
        &self.0
    }
}

impl From<Duration> for Dur {
    fn from(d: Duration) -> Dur {
        Dur(d)
    }
}

impl From<Dur> for Duration {
    fn from(d: Dur) -> Duration {
        d.0
    }
}

/// A string that is not a valid [`Dur`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: expected {DUR_EXPECTED}")]
pub struct DurParseError {
    input: String,
}

impl FromStr for Dur {
    type Err = DurParseError;

    fn from_str(s: &str) -> Result<Dur, DurParseError> {
        let err = || DurParseError {
            input: s.to_owned(),
        };
        if s.is_empty() {
            return Err(err());
        }
        let mut rest = s;
        let mut total: u128 = 0;
        // Units must strictly decrease ("1m30s", not "30s1m" or "1s1s"), which
        // catches typos instead of silently summing them.
        let mut last_rank = usize::MAX;
        while !rest.is_empty() {
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                return Err(err());
            }
            let number: u128 = rest[..digits].parse().map_err(|_| err())?;
            rest = &rest[digits..];
            let letters = rest.len()
                - rest
                    .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .len();
            let unit = &rest[..letters];
            rest = &rest[letters..];
            let (rank, nanos) = UNITS
                .iter()
                .enumerate()
                .find(|(_, (name, _))| *name == unit)
                .map(|(rank, (_, nanos))| (rank, *nanos))
                .ok_or_else(err)?;
            if last_rank != usize::MAX && rank <= last_rank {
                return Err(err());
            }
            last_rank = rank;
            total = number
                .checked_mul(nanos)
                .and_then(|n| total.checked_add(n))
                .ok_or_else(err)?;
        }
        let secs = u64::try_from(total / 1_000_000_000).map_err(|_| err())?;
        // The remainder is < 1e9, so it always fits.
        let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| err())?;
        Ok(Dur(Duration::new(secs, nanos)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.as_nanos();
        if rest == 0 {
            return f.write_str("0s");
        }
        for (name, nanos) in UNITS {
            let n = rest / nanos;
            if n > 0 {
                write!(f, "{n}{name}")?;
                rest %= nanos;
            }
        }
        Ok(())
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dur, D::Error> {
        struct DurVisitor;

        impl Visitor<'_> for DurVisitor {
            type Value = Dur;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(DUR_EXPECTED)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                v.parse()
                    .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
            }
        }

        deserializer.deserialize_str(DurVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_units() {
        assert_eq!(
            "250ms".parse::<Dur>().unwrap().get(),
            Duration::from_millis(250)
        );
        assert_eq!("30s".parse::<Dur>().unwrap().get(), Duration::from_secs(30));
        assert_eq!("5m".parse::<Dur>().unwrap().get(), Duration::from_secs(300));
        assert_eq!(
            "2h".parse::<Dur>().unwrap().get(),
            Duration::from_secs(7200)
        );
        assert_eq!(
            "7d".parse::<Dur>().unwrap().get(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!("0s".parse::<Dur>().unwrap().get(), Duration::ZERO);
    }

    #[test]
    fn parses_combinations() {
        assert_eq!(
            "1m30s".parse::<Dur>().unwrap().get(),
            Duration::from_secs(90)
        );
        assert_eq!(
            "1h2m3s4ms".parse::<Dur>().unwrap().get(),
            Duration::from_millis(3_723_004)
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "30",
            "s",
            "30 seconds",
            "30sec",
            "1.5s",
            "-1s",
            " 30s",
            "30s ",
            "30s1m",
            "1s1s",
            "99999999999999999999999d",
        ] {
            let err = bad.parse::<Dur>().unwrap_err();
            assert!(
                err.to_string().contains("expected a duration like \"30s\""),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for (text, canonical) in [
            ("250ms", "250ms"),
            ("90s", "1m30s"),
            ("1m30s", "1m30s"),
            ("7d", "7d"),
            ("0ms", "0s"),
            ("1500ms", "1s500ms"),
            ("3us", "3us"),
        ] {
            let d: Dur = text.parse().unwrap();
            assert_eq!(d.to_string(), canonical);
            assert_eq!(canonical.parse::<Dur>().unwrap(), d);
        }
    }

    #[test]
    fn serde_as_string() {
        let d: Dur = serde_json::from_str("\"5m\"").unwrap();
        assert_eq!(*d, Duration::from_secs(300));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"5m\"");
        assert!(serde_json::from_str::<Dur>("30").is_err());
        let err = serde_json::from_str::<Dur>("\"30 seconds\"").unwrap_err();
        assert!(err.to_string().contains("a duration like"), "{err}");
    }
}
