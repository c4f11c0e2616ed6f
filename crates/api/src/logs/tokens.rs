//! GetLogEvents tokens and FilterLogEvents event ids, in AWS's shapes.
//!
//! AWS's GetLogEvents tokens are `f/` (forward) or `b/` (backward) and 56
//! digits; clients treat them as opaque, except that they compare them
//! (the forward token repeats at the end of a stream). Ours are the same
//! shape: the direction, 20 digits of timestamp and 20 of sequence number
//! (the [`EventKey`] the token continues from, both biased so negatives
//! stay ordered digits), and 16 check digits. The check digits fold the
//! HMAC-signed token the shared codec issues for the same position, bound to
//! the account, region, group and stream: a forged, mistyped or foreign
//! token is refused, and the same position always gives the same token.

use super::LogsError;
use berth_core::pagination::{PageKey, TokenCodec};
use berth_store::EventKey;
use berth_wire::RequestContext;

const CHECK_MODULUS: u64 = 10_000_000_000_000_000; // 16 digits
const BIAS: i128 = 1 << 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

impl Direction {
    fn prefix(self) -> &'static str {
        match self {
            Direction::Forward => "f/",
            Direction::Backward => "b/",
        }
    }
}

/// Issues and checks the tokens of one stream.
pub struct StreamTokens<'a> {
    codec: &'a TokenCodec,
    account: &'a str,
    region: &'a str,
    /// `group \n stream`: names cannot contain newlines.
    stream: String,
}

/// FNV-1a: a small, stable hash; its inputs here are already keyed.
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn biased(v: i64) -> u64 {
    (i128::from(v) + BIAS) as u64
}

fn unbiased(v: u64) -> i64 {
    (i128::from(v) - BIAS) as i64
}

impl<'a> StreamTokens<'a> {
    pub fn new(codec: &'a TokenCodec, ctx: &'a RequestContext, group: &str, stream: &str) -> Self {
        StreamTokens {
            codec,
            account: &ctx.account_id,
            region: &ctx.region,
            stream: format!("{group}\n{stream}"),
        }
    }

    fn check(&self, position: &str) -> u64 {
        let page = PageKey {
            operation: "GetLogEvents",
            account: self.account,
            region: self.region,
            filter: &self.stream,
        };
        fnv1a(self.codec.encode(&page, position).as_bytes()) % CHECK_MODULUS
    }

    pub fn encode(&self, direction: Direction, key: EventKey) -> String {
        let position = format!(
            "{}{:020}{:020}",
            direction.prefix(),
            biased(key.timestamp),
            biased(key.seq)
        );
        let check = self.check(&position);
        format!("{position}{check:016}")
    }

    pub fn decode(&self, token: &str) -> Result<(Direction, EventKey), LogsError> {
        let invalid = || LogsError::invalid(format!("The specified nextToken is invalid: {token}"));
        let (direction, digits) = if let Some(d) = token.strip_prefix("f/") {
            (Direction::Forward, d)
        } else if let Some(d) = token.strip_prefix("b/") {
            (Direction::Backward, d)
        } else {
            return Err(invalid());
        };
        if digits.len() != 56 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let number = |r: std::ops::Range<usize>| digits[r].parse::<u64>().map_err(|_| invalid());
        let (timestamp, seq, check) = (number(0..20)?, number(20..40)?, number(40..56)?);
        if self.check(&token[..42]) != check {
            return Err(invalid());
        }
        Ok((
            direction,
            EventKey {
                timestamp: unbiased(timestamp),
                seq: unbiased(seq),
            },
        ))
    }
}

/// A 56-digit event id, unique within a group: timestamp, a hash of the
/// stream name, sequence number.
pub fn event_id(stream: &str, key: EventKey) -> String {
    format!(
        "{:020}{:016}{:020}",
        key.timestamp.max(0),
        fnv1a(stream.as_bytes()) % CHECK_MODULUS,
        key.seq.max(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext::for_account("123456789012", "us-east-1")
    }

    #[test]
    fn round_trips_every_position_and_direction() {
        let codec = TokenCodec::new(b"key".to_vec());
        let ctx = ctx();
        let t = StreamTokens::new(&codec, &ctx, "g", "s");
        for key in [
            EventKey {
                timestamp: 1_700_000_000_123,
                seq: 42,
            },
            EventKey {
                timestamp: 0,
                seq: -1,
            },
            EventKey {
                timestamp: i64::MIN,
                seq: i64::MAX,
            },
        ] {
            for dir in [Direction::Forward, Direction::Backward] {
                let token = t.encode(dir, key);
                assert_eq!(token.len(), 58, "{token}");
                assert!(token[2..].bytes().all(|b| b.is_ascii_digit()));
                assert_eq!(t.decode(&token).unwrap(), (dir, key));
                // Deterministic: the same position is the same token.
                assert_eq!(t.encode(dir, key), token);
            }
        }
    }

    #[test]
    fn refuses_malformed_forged_and_foreign_tokens() {
        let codec = TokenCodec::new(b"key".to_vec());
        let ctx = ctx();
        let t = StreamTokens::new(&codec, &ctx, "g", "s");
        let key = EventKey {
            timestamp: 1000,
            seq: 7,
        };
        let token = t.encode(Direction::Forward, key);
        for bad in [
            "",
            "f/",
            "x/123",
            "f/12ab",
            &token[..57],
            &format!("{token}0"),
        ] {
            assert!(t.decode(bad).is_err(), "{bad:?} accepted");
        }
        // Another position with the original check digits.
        let mut forged = token.clone();
        forged.replace_range(41..42, if &token[41..42] == "8" { "9" } else { "8" });
        assert!(t.decode(&forged).is_err());
        // The forward token is not a backward one.
        assert!(t.decode(&token.replacen("f/", "b/", 1)).is_err());
        // Nor valid for another stream, account or key.
        assert!(StreamTokens::new(&codec, &ctx, "g", "other")
            .decode(&token)
            .is_err());
        let other_ctx = RequestContext::for_account("210987654321", "us-east-1");
        assert!(StreamTokens::new(&codec, &other_ctx, "g", "s")
            .decode(&token)
            .is_err());
        let other_codec = TokenCodec::new(b"other".to_vec());
        assert!(StreamTokens::new(&other_codec, &ctx, "g", "s")
            .decode(&token)
            .is_err());
        let err = t.decode("f/nonsense").unwrap_err();
        assert_eq!(err.aws_code(), "InvalidParameterException");
    }

    #[test]
    fn event_ids_are_56_digits_and_distinct_across_streams() {
        let key = EventKey {
            timestamp: 1_700_000_000_000,
            seq: 3,
        };
        let a = event_id("a", key);
        assert_eq!(a.len(), 56);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(a, event_id("b", key));
    }
}
