use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A model `timestamp`: on the AWS JSON protocol, a number of seconds since
/// the Unix epoch, with fractional milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Timestamp(pub f64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(t: SystemTime) -> Self {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Self::from_millis(d.as_millis() as i64)
    }

    /// Millisecond precision is what AWS returns, and keeps values exact.
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(ms as f64 / 1000.0)
    }

    pub fn as_millis(&self) -> i64 {
        (self.0 * 1000.0).round() as i64
    }

    pub fn as_secs_f64(&self) -> f64 {
        self.0
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Whole seconds go out as integers, the rest with millisecond digits,
        // which is how AWS services render epoch timestamps.
        let ms = self.as_millis();
        if ms % 1000 == 0 {
            s.serialize_i64(ms / 1000)
        } else {
            s.serialize_f64(ms as f64 / 1000.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a timestamp in epoch seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                if v.is_finite() {
                    Ok(Timestamp(v))
                } else {
                    Err(E::custom("timestamp is not a finite number"))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_are_integers_and_millis_are_kept() {
        assert_eq!(
            serde_json::to_string(&Timestamp(1700000000.0)).unwrap(),
            "1700000000"
        );
        assert_eq!(
            serde_json::to_string(&Timestamp::from_millis(1700000000123)).unwrap(),
            "1700000000.123"
        );
        let t: Timestamp = serde_json::from_str("1700000000.5").unwrap();
        assert_eq!(t.as_millis(), 1700000000500);
        assert!(serde_json::from_str::<Timestamp>("\"2020-01-01\"").is_err());
    }
}
