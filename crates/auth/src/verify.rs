//! Server-side verification of SigV4-signed requests (header and presigned forms).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::canonical::{self, percent_decode, sha256_hex, ALGORITHM, TERMINATOR};
use crate::credentials::{Credential, CredentialStore};
use crate::date;
use crate::error::{AuthError, SIGNATURE_MISMATCH};
use crate::key::{hmac_sha256, KeyCache};
use crate::session::{SessionClaims, SessionError, SessionKey, TEMPORARY_KEY_PREFIX};

/// Longest presigned validity AWS allows (one week).
pub const MAX_PRESIGN_EXPIRES_SECS: u64 = 604_800;
/// Default allowed difference between request time and server time.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// Derived keys kept before the cache is reset.
const KEY_CACHE_CAPACITY: usize = 4096;

/// The parts of an HTTP request that SigV4 covers, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Raw path as received, e.g. "/".
    pub path: &'a str,
    /// Raw query string without '?', may be "".
    pub query: &'a str,
    /// Names any case, values raw; repeated names allowed.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Who signed a request, and for what scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub account_id: String,
    pub principal_arn: String,
    pub region: String,
    pub service: String,
    /// Scope date, `yyyymmdd`.
    pub date: String,
    /// For temporary credentials: the session their token carries.
    pub session: Option<SessionClaims>,
}

/// Verifies SigV4 signatures against a credential store.
pub struct Verifier {
    store: Arc<dyn CredentialStore>,
    max_skew: Duration,
    keys: KeyCache,
    /// Verifies temporary credentials (`ASIA…` keys with a session token).
    sessions: Option<Arc<SessionKey>>,
}

/// A request that passed every check [`Verifier::begin`] can make from its
/// headers; [`Verifier::finish`] completes it once the body is read.
#[derive(Debug)]
pub struct Pending {
    cred: Credential,
    /// Lowercase, in the order the client listed them.
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    scope_date: String,
    region: String,
    service: String,
    presigned: bool,
    session: Option<SessionClaims>,
}

impl Pending {
    /// The access key the request names (known to the credential store,
    /// but not yet proven: the signature is checked by `finish`).
    pub fn access_key_id(&self) -> &str {
        &self.cred.access_key_id
    }
}

/// The operation an AWS JSON request asks for: its `X-Amz-Target` header,
/// else (a presigned URL may carry it there) its `X-Amz-Target` query
/// parameter.
pub fn request_target(headers: &[(&str, &str)], query: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(TARGET_HEADER))
        .map(|(_, v)| v.trim().to_owned())
        .or_else(|| query_param(query, TARGET_QUERY))
}

/// The service a request's credential scope names (`AKID/date/region/SERVICE/aws4_request`,
/// from the Authorization header or a presigned URL's `X-Amz-Credential`), read
/// before anything is verified: it tells which protocol to answer in, even a refusal.
pub fn scope_service(headers: &[(&str, &str)], query: &str) -> Option<String> {
    let credential = match headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
    {
        Some((_, authz)) => authz
            .split([',', ' '])
            .find_map(|p| p.trim().strip_prefix("Credential="))
            .map(str::to_owned),
        None => query_param(query, "X-Amz-Credential"),
    }?;
    credential.split('/').nth(3).map(str::to_owned)
}

const TARGET_HEADER: &str = "x-amz-target";
const TARGET_QUERY: &str = "X-Amz-Target";

/// The operation must be covered by the signature, or a request signed for
/// one operation could be replayed as another with the same body (a
/// presigned DescribeClusters `{"cluster": "prod"}` as DeleteCluster): an
/// `X-Amz-Target` header must be a signed header, unless the query string
/// (signed in both forms) carries the same target.
fn check_target_bound(
    req: &SignedRequest,
    signed_lower: &[String],
    presigned: bool,
) -> Result<(), AuthError> {
    let in_header = header(req, TARGET_HEADER).map(str::trim);
    let in_query = query_param(req.query, TARGET_QUERY);
    match (in_header, in_query.as_deref()) {
        (Some(h), Some(q)) if h != q => Err(AuthError::InvalidSignature(
            "The X-Amz-Target header and the X-Amz-Target query parameter differ.".to_owned(),
        )),
        (Some(_), Some(_)) | (None, _) => Ok(()),
        (Some(_), None) if signed_lower.iter().any(|h| h == TARGET_HEADER) => Ok(()),
        (Some(_), None) if presigned => Err(incomplete(
            "'X-Amz-Target' must be one of the X-Amz-SignedHeaders of a presigned request, \
or be given as its X-Amz-Target query parameter.",
        )),
        (Some(_), None) => Err(incomplete(
            "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.",
        )),
    }
}

/// Signature material pulled from either the header or the query string.
struct Material<'a> {
    credential: String,
    signed_headers: String,
    signature: String,
    /// Raw request timestamp and where it came from.
    amz_date: String,
    time: OffsetDateTime,
    /// `Some(seconds)` for a presigned URL.
    expires: Option<u64>,
    /// For error messages that quote the header, as AWS does.
    authorization: Option<&'a str>,
}

fn header<'a>(req: &SignedRequest<'a>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The first value of query parameter `name`, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .find(|(k, _)| percent_decode(k) == name.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(&percent_decode(v)).into_owned())
}

fn incomplete(msg: impl Into<String>) -> AuthError {
    AuthError::IncompleteSignature(msg.into())
}

/// "15 min." / "90 sec." as AWS phrases the skew window.
fn describe(d: Duration) -> String {
    // Not `is_multiple_of`: that is newer than the workspace MSRV (1.85).
    let (mins, rem) = (d.as_secs() / 60, d.as_secs() % 60);
    if rem == 0 {
        format!("{mins} min.")
    } else {
        format!("{} sec.", d.as_secs())
    }
}

fn parse_header_form<'a>(
    req: &SignedRequest<'a>,
    authz: &'a str,
) -> Result<Material<'a>, AuthError> {
    let authz_trimmed = authz.trim();
    let (algorithm, rest) = authz_trimmed
        .split_once(char::is_whitespace)
        .unwrap_or((authz_trimmed, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. Authorization={authz}"
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        if let Some((k, v)) = part.trim().split_once('=') {
            let slot = match k.trim() {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                _ => continue,
            };
            *slot = Some(v.trim().to_owned());
        }
    }
    let mut missing = String::new();
    for (name, value) in [
        ("Credential", &credential),
        ("Signature", &signature),
        ("SignedHeaders", &signed_headers),
    ] {
        if value.as_deref().is_none_or(str::is_empty) {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if !missing.is_empty() {
        return Err(incomplete(format!("{missing}Authorization={authz}")));
    }

    // Prefer X-Amz-Date; fall back to the HTTP Date header, which must then be signed.
    let (date_header, raw, time) = if let Some(v) = header(req, "x-amz-date") {
        let v = v.trim();
        let t = date::parse_amz(v).ok_or_else(|| {
            incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{v}'. See http://en.wikipedia.org/wiki/ISO_8601"
            ))
        })?;
        ("x-amz-date", v.to_owned(), t)
    } else if let Some(v) = header(req, "date") {
        let t = date::parse_http_date(v)
            .or_else(|| date::parse_amz(v.trim()))
            .ok_or_else(|| incomplete(format!("Date header is malformed: '{}'.", v.trim())))?;
        ("date", date::format_amz(t), t)
    } else {
        return Err(incomplete(format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={authz}"
        )));
    };
    let signed_headers = signed_headers.unwrap_or_default();
    if !signed_headers
        .split(';')
        .any(|h| h.eq_ignore_ascii_case(date_header))
    {
        return Err(incomplete(format!(
            "'{}' must be a 'SignedHeader' in the AWS Authorization.",
            if date_header == "date" {
                "Date"
            } else {
                "X-Amz-Date"
            }
        )));
    }
    Ok(Material {
        credential: credential.unwrap_or_default(),
        signed_headers,
        signature: signature.unwrap_or_default(),
        amz_date: raw,
        time,
        expires: None,
        authorization: Some(authz),
    })
}

fn parse_query_form<'a>(req: &SignedRequest<'a>) -> Result<Material<'a>, AuthError> {
    const REQUIRED: &str = "Query-string authentication version 4 requires the X-Amz-Algorithm, \
X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.";
    let get = |name: &str| query_param(req.query, name).filter(|v| !v.is_empty());
    let (
        Some(algorithm),
        Some(credential),
        Some(signature),
        Some(amz_date),
        Some(signed_headers),
        Some(expires),
    ) = (
        get("X-Amz-Algorithm"),
        get("X-Amz-Credential"),
        get("X-Amz-Signature"),
        get("X-Amz-Date"),
        get("X-Amz-SignedHeaders"),
        get("X-Amz-Expires"),
    )
    else {
        return Err(incomplete(REQUIRED));
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\"; got '{algorithm}'."
        )));
    }
    let time = date::parse_amz(&amz_date).ok_or_else(|| {
        incomplete(format!(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"; got '{amz_date}'."
        ))
    })?;
    let expires: u64 = expires.parse().map_err(|_| {
        incomplete(format!(
            "X-Amz-Expires should be a number; got '{expires}'."
        ))
    })?;
    if expires > MAX_PRESIGN_EXPIRES_SECS {
        return Err(incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES_SECS}"
        )));
    }
    Ok(Material {
        credential,
        signed_headers,
        signature,
        amz_date,
        time,
        expires: Some(expires),
        authorization: None,
    })
}

impl Verifier {
    pub fn new(store: Arc<dyn CredentialStore>) -> Self {
        Verifier {
            store,
            max_skew: DEFAULT_MAX_SKEW,
            keys: KeyCache::new(KEY_CACHE_CAPACITY),
            sessions: None,
        }
    }

    /// Also accept temporary credentials sealed under `key`.
    pub fn with_sessions(mut self, key: Arc<SessionKey>) -> Self {
        self.sessions = Some(key);
        self
    }

    /// Allowed difference between the request's time and `now` (default 15 min).
    pub fn with_max_skew(mut self, d: Duration) -> Self {
        self.max_skew = d;
        self
    }

    /// Verifies `req`: [`Verifier::begin`] then [`Verifier::finish`].
    ///
    /// `expected_service`: the signing name the endpoint serves for this request
    /// ("ecs", "logs", ...); `region_ok`: whether a region in the scope is acceptable.
    pub fn verify(
        &self,
        req: &SignedRequest,
        expected_service: &str,
        region_ok: &dyn Fn(&str) -> bool,
        now: SystemTime,
    ) -> Result<Verified, AuthError> {
        let pending = self.begin(req, expected_service, region_ok, now)?;
        self.finish(pending, req)
    }

    /// Everything that can be checked before the body is read: the
    /// signature material is well-formed, scoped to this service and an
    /// acceptable region, signs `host`, the date and the operation
    /// (`X-Amz-Target`), is fresh, and names a known access key. `req.body`
    /// is not looked at, so a server can refuse a request from its headers
    /// alone, before it spends memory on the body.
    ///
    /// Checks run cheapest-first, and the credential store is consulted only
    /// once the request is well-formed and fresh.
    pub fn begin(
        &self,
        req: &SignedRequest,
        expected_service: &str,
        region_ok: &dyn Fn(&str) -> bool,
        now: SystemTime,
    ) -> Result<Pending, AuthError> {
        let m = if let Some(authz) = header(req, "authorization") {
            parse_header_form(req, authz)?
        } else if query_param(req.query, "X-Amz-Algorithm").is_some() {
            parse_query_form(req)?
        } else {
            return Err(AuthError::MissingAuthenticationToken);
        };

        // Scope: keyid/date/region/service/aws4_request.
        let parts: Vec<&str> = m.credential.split('/').collect();
        let [access_key_id, scope_date, region, service, terminator] = parts[..] else {
            return Err(incomplete(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
                m.credential
            )));
        };
        if terminator != TERMINATOR {
            return Err(incomplete(format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'. "
            )));
        }
        if service != expected_service {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped to correct service: '{expected_service}'. "
            )));
        }
        if !region_ok(region) {
            return Err(AuthError::InvalidSignature(
                "Credential should be scoped to a valid region. ".to_owned(),
            ));
        }
        if scope_date != &m.amz_date[..8] {
            return Err(AuthError::InvalidSignature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{}', from '{}'.",
                &m.amz_date[..8],
                m.amz_date
            )));
        }

        let signed: Vec<String> = m
            .signed_headers
            .split(';')
            .map(|h| h.to_ascii_lowercase())
            .collect();
        if !signed.iter().any(|h| h == "host") {
            let quoted = m
                .authorization
                .map(|a| format!(" Authorization={a}"))
                .unwrap_or_default();
            return Err(incomplete(format!(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.{quoted}"
            )));
        }
        check_target_bound(req, &signed, m.expires.is_some())?;

        self.check_time(&m, now)?;

        let (cred, session) = match self.store.lookup(access_key_id) {
            Some(cred) => (cred, None),
            None => self.session_credential(req, access_key_id, now)?,
        };

        Ok(Pending {
            cred,
            signed_headers: signed,
            signature: m.signature,
            amz_date: m.amz_date,
            scope_date: scope_date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            presigned: m.expires.is_some(),
            session,
        })
    }

    /// The credential of a temporary key: its session token (header, or
    /// query parameter of a presigned URL) must be one this server sealed
    /// for that key, and unexpired.
    fn session_credential(
        &self,
        req: &SignedRequest,
        access_key_id: &str,
        now: SystemTime,
    ) -> Result<(Credential, Option<SessionClaims>), AuthError> {
        let sessions = self
            .sessions
            .as_ref()
            .filter(|_| access_key_id.starts_with(TEMPORARY_KEY_PREFIX))
            .ok_or(AuthError::UnrecognizedClient)?;
        let token = header(req, "x-amz-security-token")
            .map(str::to_owned)
            .or_else(|| query_param(req.query, "X-Amz-Security-Token"))
            .ok_or(AuthError::UnrecognizedClient)?;
        let now = date::from_system(now).unix_timestamp();
        let (claims, secret) = sessions
            .open(access_key_id, &token, now)
            .map_err(|e| match e {
                SessionError::Invalid => AuthError::UnrecognizedClient,
                SessionError::Expired => AuthError::ExpiredToken,
            })?;
        let cred = Credential {
            access_key_id: claims.access_key_id.clone(),
            secret_access_key: secret,
            account_id: claims.account_id.clone(),
            principal_arn: claims.principal_arn(),
        };
        Ok((cred, Some(claims)))
    }

    /// The rest of the verification, once the body is there: the declared
    /// payload hash (if any) and the signature over the canonical request.
    /// `req` must be the request `pending` came from, now with its body.
    pub fn finish(&self, pending: Pending, req: &SignedRequest) -> Result<Verified, AuthError> {
        // This JSON API always signs the real body: a declared hash must match it.
        let payload_hash = sha256_hex(req.body);
        if let Some(declared) = header(req, "x-amz-content-sha256") {
            if !declared.trim().eq_ignore_ascii_case(&payload_hash) {
                return Err(AuthError::InvalidSignature(
                    "The provided 'x-amz-content-sha256' header does not match what was computed."
                        .to_owned(),
                ));
            }
        }
        let Pending {
            cred,
            signed_headers,
            signature,
            amz_date,
            scope_date,
            region,
            service,
            presigned,
            session,
        } = pending;

        let signed: Vec<&str> = signed_headers.iter().map(String::as_str).collect();
        let creq = canonical::canonical_request(
            req.method,
            req.path,
            req.query,
            req.headers,
            &signed,
            &payload_hash,
            presigned,
        );
        let scope = canonical::credential_scope(&scope_date, &region, &service);
        let sts = canonical::string_to_sign(&amz_date, &scope, &creq);
        let key = self.keys.get_or_derive(
            &cred.access_key_id,
            &cred.secret_access_key,
            &scope_date,
            &region,
            &service,
        );
        let expected = hex::encode(hmac_sha256(&key, sts.as_bytes()));
        if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
            return Err(AuthError::InvalidSignature(SIGNATURE_MISMATCH.to_owned()));
        }

        Ok(Verified {
            access_key_id: cred.access_key_id,
            account_id: cred.account_id,
            principal_arn: cred.principal_arn,
            region,
            service,
            date: scope_date,
            session,
        })
    }

    /// Clock skew for both forms; expiry for presigned URLs.
    fn check_time(&self, m: &Material, now: SystemTime) -> Result<(), AuthError> {
        let now = date::from_system(now);
        let skew = time::Duration::try_from(self.max_skew).unwrap_or(time::Duration::MAX);
        let fmt = date::format_amz;
        if m.time > now.saturating_add(skew) {
            return Err(AuthError::SignatureExpired(format!(
                "Signature not yet current: {} is still later than {} ({} + {})",
                m.amz_date,
                fmt(now.saturating_add(skew)),
                fmt(now),
                describe(self.max_skew)
            )));
        }
        match m.expires {
            None if m.time < now.saturating_sub(skew) => Err(AuthError::SignatureExpired(format!(
                "Signature expired: {} is now earlier than {} ({} - {})",
                m.amz_date,
                fmt(now.saturating_sub(skew)),
                fmt(now),
                describe(self.max_skew)
            ))),
            Some(secs) => {
                let expiry = m.time.saturating_add(time::Duration::seconds(secs as i64));
                if now > expiry {
                    Err(AuthError::SignatureExpired(format!(
                        "Request has expired: {} + {secs} sec. is now earlier than {}.",
                        m.amz_date,
                        fmt(now)
                    )))
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }
}
