//! What a request must get past before its body is read, and what reading
//! the body may cost: the content type, the declared length, a global
//! budget of body bytes in memory, a deadline for the body to arrive, and
//! per-key throttling.

use berth_wire::ApiError;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The largest request body accepted. ECS's own requests are far smaller;
/// CloudWatch Logs batches are at most 1 MiB.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How long a request waits for room in the body budget before it is
/// answered 503.
const BUDGET_WAIT: Duration = Duration::from_secs(2);

/// The budget counts KiB, so that a u32 of permits covers any budget.
const UNIT: usize = 1024;

/// The only media type of AWS JSON 1.1; botocore sends exactly this.
#[cfg(test)]
const JSON_1_1: &str = "application/x-amz-json-1.1";

/// `Content-Type` must be AWS JSON 1.1: `application/x-amz-json-1.1`, in
/// any case, optionally with `charset=utf-8` (some SDKs add it).
#[cfg(test)]
pub fn check_content_type(headers: &http::HeaderMap) -> Result<(), ApiError> {
    check_content_type_is(headers, JSON_1_1)
}

/// `Content-Type` must be `media` (the service's AWS JSON version; SQS
/// speaks 1.0), in any case, optionally with `charset=utf-8`.
pub fn check_content_type_is(headers: &http::HeaderMap, media: &str) -> Result<(), ApiError> {
    let values: Vec<&http::HeaderValue> =
        headers.get_all(http::header::CONTENT_TYPE).iter().collect();
    let given = match values.as_slice() {
        [one] => one.to_str().ok(),
        _ => None,
    };
    if given.is_some_and(|v| is_media(v, media)) {
        return Ok(());
    }
    let shown = match values.as_slice() {
        [] => "none".to_string(),
        [one] => format!("'{}'", String::from_utf8_lossy(one.as_bytes())),
        _ => "several".to_string(),
    };
    let version = media.rsplit('-').next().unwrap_or_default();
    Err(ApiError::client(
        "SerializationException",
        format!(
            "Unsupported Content-Type {shown}: this service speaks AWS JSON {version}, \
send Content-Type: {media}."
        ),
    ))
}

fn is_media(value: &str, want: &str) -> bool {
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case(want)
        && parts.all(|p| {
            let p = p.trim();
            p.is_empty()
                || p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("charset")
                        && v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
                })
        })
}

/// The body length the headers declare: `Some(n)` from `Content-Length`,
/// `None` for a chunked body. Longer than `MAX_BODY_BYTES` is refused here,
/// before a byte of it is read.
pub fn declared_length(headers: &http::HeaderMap) -> Result<Option<usize>, ApiError> {
    let mut lengths = headers.get_all(http::header::CONTENT_LENGTH).iter();
    let Some(value) = lengths.next() else {
        return Ok(None);
    };
    let n: u64 = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| ApiError::client("SerializationException", "Invalid Content-Length."))?;
    if n > MAX_BODY_BYTES as u64 {
        return Err(too_large());
    }
    Ok(Some(n as usize))
}

fn too_large() -> ApiError {
    ApiError::new(
        "RequestEntityTooLargeException",
        413,
        format!("The request body exceeds the limit of {MAX_BODY_BYTES} bytes."),
    )
}

/// The memory request bodies may hold at once, across all connections: a
/// semaphore of KiB. A request reserves its declared length (the largest
/// body, when it is chunked) before its body is read, and holds it until
/// its answer is ready. One that finds no room waits up to two seconds,
/// then gets `503 ServiceUnavailableException` (which SDKs retry).
#[derive(Clone)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
    total_units: usize,
}

/// Room held in the budget; given back on drop.
pub struct Reservation(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl BodyBudget {
    pub fn new(bytes: usize) -> BodyBudget {
        let total_units = bytes
            .div_ceil(UNIT)
            .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        BodyBudget {
            units: Arc::new(Semaphore::new(total_units)),
            total_units,
        }
    }

    /// Room for a body of `len` bytes (`None`: of unknown length).
    pub async fn reserve(&self, len: Option<usize>) -> Result<Reservation, ApiError> {
        let bytes = len.unwrap_or(MAX_BODY_BYTES);
        if bytes == 0 {
            return Ok(Reservation(None));
        }
        // A body larger than the whole budget could never fit: it may take
        // the whole budget instead.
        let units = bytes.div_ceil(UNIT).min(self.total_units) as u32;
        if let Ok(p) = self.units.clone().try_acquire_many_owned(units) {
            return Ok(Reservation(Some(p)));
        }
        match tokio::time::timeout(BUDGET_WAIT, self.units.clone().acquire_many_owned(units)).await
        {
            Ok(Ok(p)) => Ok(Reservation(Some(p))),
            _ => {
                tracing::warn!(
                    bytes,
                    "request bodies in flight fill the memory budget; refusing a request"
                );
                Err(ApiError::new(
                    "ServiceUnavailableException",
                    503,
                    "The server is busy receiving other requests. Please retry.",
                ))
            }
        }
    }

    #[cfg(test)]
    fn available_bytes(&self) -> usize {
        self.units.available_permits() * UNIT
    }
}

/// Reads the body: at most `MAX_BODY_BYTES`, within `timeout`. A client
/// that sends it too slowly gets `RequestTimeoutException` (408) and its
/// connection is closed.
pub async fn read_body<B>(body: B, timeout: Duration) -> Result<bytes::Bytes, ApiError>
where
    B: http_body::Body<Data = bytes::Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(ApiError::client(
            "SerializationException",
            format!("The request body could not be read: {e}"),
        )),
        Err(_) => Err(ApiError::new(
            "RequestTimeoutException",
            408,
            format!(
                "The request body did not arrive within {} seconds.",
                timeout.as_secs_f64()
            ),
        )),
    }
}

/// ECS's answer to a caller over its request rate.
pub fn throttled() -> ApiError {
    ApiError::client("ThrottlingException", "Rate exceeded")
}

/// Token buckets, one per access key (only keys the server knows get one).
pub struct Throttle {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Throttle {
    pub fn new(rate: f64, burst: u32) -> Throttle {
        Throttle {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn with_bucket<T>(&self, key: &str, now: Instant, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut buckets = self.buckets.lock();
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        f(b)
    }

    /// Whether `key` has a request left, without taking it: checked before
    /// the body is read and the signature verified, so that nobody can
    /// empty another key's bucket with requests they cannot sign.
    pub fn has_room(&self, key: &str, now: Instant) -> bool {
        self.with_bucket(key, now, |b| b.tokens >= 1.0)
    }

    /// Takes one request from `key`'s bucket; false when it is empty.
    pub fn take(&self, key: &str, now: Instant) -> bool {
        self.with_bucket(key, now, |b| {
            if b.tokens >= 1.0 {
                b.tokens -= 1.0;
                true
            } else {
                false
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn content_types() {
        for ok in [
            "application/x-amz-json-1.1",
            "Application/X-Amz-Json-1.1",
            "application/x-amz-json-1.1; charset=utf-8",
            "application/x-amz-json-1.1;charset=UTF-8",
            "application/x-amz-json-1.1; charset=\"utf-8\"",
        ] {
            assert!(
                check_content_type(&headers(&[("content-type", ok)])).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "application/json",
            "application/x-amz-json-1.0",
            "text/plain",
            "application/x-amz-json-1.1; charset=latin1",
            "application/x-amz-json-1.1; boundary=x",
            "application/x-amz-json-1.10",
            "",
        ] {
            let e = check_content_type(&headers(&[("content-type", bad)])).unwrap_err();
            assert_eq!(
                (&*e.code, e.status),
                ("SerializationException", 400),
                "{bad}"
            );
            assert!(
                e.message.contains("application/x-amz-json-1.1"),
                "{}",
                e.message
            );
        }
        assert!(check_content_type(&headers(&[])).is_err());
        let two = headers(&[
            ("content-type", "application/x-amz-json-1.1"),
            ("content-type", "application/x-amz-json-1.1"),
        ]);
        assert!(check_content_type(&two).is_err());
    }

    #[test]
    fn declared_lengths() {
        assert_eq!(declared_length(&headers(&[])).unwrap(), None);
        assert_eq!(
            declared_length(&headers(&[("content-length", "12")])).unwrap(),
            Some(12)
        );
        let e = declared_length(&headers(&[("content-length", "8388609")])).unwrap_err();
        assert_eq!(
            (&*e.code, e.status),
            ("RequestEntityTooLargeException", 413)
        );
        assert!(declared_length(&headers(&[("content-length", "x")])).is_err());
    }

    #[tokio::test]
    async fn budget_holds_and_returns_room() {
        let budget = BodyBudget::new(64 * 1024);
        let a = budget.reserve(Some(40 * 1024)).await.unwrap();
        assert_eq!(budget.available_bytes(), 24 * 1024);
        // No room for another 40 KiB: refused after the wait.
        let e = budget.reserve(Some(40 * 1024)).await.err().unwrap();
        assert_eq!((&*e.code, e.status), ("ServiceUnavailableException", 503));
        drop(a);
        assert_eq!(budget.available_bytes(), 64 * 1024);
        // Bigger than the whole budget: takes all of it, and still fits.
        let all = budget.reserve(None).await.unwrap();
        assert_eq!(budget.available_bytes(), 0);
        drop(all);
        // An empty body costs nothing.
        let _none = budget.reserve(Some(0)).await.unwrap();
        assert_eq!(budget.available_bytes(), 64 * 1024);
    }

    #[tokio::test]
    async fn a_waiting_request_gets_room_freed_meanwhile() {
        let budget = BodyBudget::new(8 * 1024);
        let a = budget.reserve(Some(8 * 1024)).await.unwrap();
        let b2 = budget.clone();
        let waiter = tokio::spawn(async move { b2.reserve(Some(1024)).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(a);
        assert!(waiter.await.unwrap());
    }

    #[test]
    fn token_buckets() {
        let t = Throttle::new(2.0, 3);
        let t0 = Instant::now();
        assert!(t.take("a", t0) && t.take("a", t0) && t.take("a", t0));
        assert!(!t.has_room("a", t0));
        assert!(!t.take("a", t0));
        // Another key has its own bucket.
        assert!(t.take("b", t0));
        // Half a second refills one token (rate 2/s), never past the burst.
        let t1 = t0 + Duration::from_millis(500);
        assert!(t.has_room("a", t1));
        assert!(t.take("a", t1));
        assert!(!t.take("a", t1));
        let t2 = t1 + Duration::from_secs(60);
        assert!(t.take("a", t2) && t.take("a", t2) && t.take("a", t2));
        assert!(!t.take("a", t2));
    }

    #[tokio::test]
    async fn slow_bodies_time_out_and_big_ones_are_refused() {
        use futures::StreamExt;
        // One byte, then nothing more: a half-sent body.
        let first = futures::stream::once(async {
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(bytes::Bytes::from_static(
                b"{",
            )))
        });
        let body = http_body_util::StreamBody::new(first.chain(futures::stream::pending()));
        let e = read_body(body, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert_eq!((&*e.code, e.status), ("RequestTimeoutException", 408));
        let big = http_body_util::Full::new(bytes::Bytes::from(vec![b' '; MAX_BODY_BYTES + 1]));
        let e = read_body(big, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(e.status, 413);
        let ok = http_body_util::Full::new(bytes::Bytes::from_static(b"{}"));
        assert_eq!(
            &read_body(ok, Duration::from_secs(5)).await.unwrap()[..],
            b"{}"
        );
    }
}
