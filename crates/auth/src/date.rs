//! Request timestamps: the ISO-8601 basic form SigV4 uses, and the HTTP
//! `Date` header form accepted as a fallback.

use std::time::SystemTime;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// Formats as `YYYYMMDD'T'HHMMSS'Z'` (UTC).
pub fn format_amz(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

pub fn from_system(now: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(now)
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'`.
pub fn parse_amz(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let year = i32::try_from(num(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(num(6..8)?).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Parses an IMF-fixdate HTTP `Date` header (`Sun, 30 Aug 2015 12:36:00 GMT`).
pub fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(s.trim(), fmt)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = parse_amz("20150830T123600Z").unwrap();
        assert_eq!(format_amz(t), "20150830T123600Z");
        assert_eq!(t.unix_timestamp(), 1_440_938_160);
        assert!(parse_amz("20150830T1236Z").is_none());
        assert!(parse_amz("20151330T123600Z").is_none());
        assert!(parse_amz("2015-8-30T12360Z").is_none());
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"), Some(t));
    }
}
