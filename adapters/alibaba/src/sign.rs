//! Request signing: ACS3-HMAC-SHA256, the legacy ROA HMAC-SHA1 (`acs AK:sig`) and OpenSearch's
//! scheme (`OPENSEARCH AK:sig`).
//!
//! Each scheme is a pure function of its inputs (method, path, query, headers, body, keys), so
//! the reference vectors run as unit tests. The time and the nonce come from a [`Clock`] and a
//! [`NonceSource`], both injectable: [`Signer::fixed`] pins them for tests.
//!
//! | scheme | used by | string to sign | signature |
//! |---|---|---|---|
//! | ACS3-HMAC-SHA256 | AIRec (and any POP API) | `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request | hex HMAC-SHA256 |
//! | ROA HMAC-SHA1 | legacy POP clients | method, accept, content-md5, content-type, date, `x-acs-*` headers, resource with raw query | base64 HMAC-SHA1 |
//! | OpenSearch | OpenSearch v3 API | method, content-md5, content-type, date, `x-opensearch-*` headers, resource with encoded query | base64 HMAC-SHA1 |
//!
//! Percent-encoding is RFC 3986 everywhere: every byte but `A-Z a-z 0-9 - _ . ~` becomes
//! `%XX` (upper-case hex), so a space is `%20`, never `+`, and `*` is `%2A`.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use md5::Md5;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The bytes RFC 3986 leaves alone: letters, digits and `-_.~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `s` per RFC 3986 (space `%20`, `*` `%2A`, `~` kept).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Percent-encodes each segment of `path`, keeping the `/` separators.
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// The query string both signed and sent: pairs sorted by key (then value), each key and value
/// percent-encoded, `k=v` joined by `&`. Pairs with an empty value are kept as `k=`.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Hex SHA-256 of `body` (the `x-acs-content-sha256` value).
pub fn sha256_hex(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

/// Hex MD5 of `body` (OpenSearch's `Content-MD5`).
pub fn md5_hex(body: &[u8]) -> String {
    hex(&Md5::digest(body))
}

/// Base64 MD5 of `body` (the POP `Content-MD5`).
pub fn md5_base64(body: &[u8]) -> String {
    B64.encode(Md5::digest(body))
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// An AccessKey pair (and an optional STS token) for Alibaba Cloud's signed APIs.
///
/// `Debug` shows neither the secret nor the token, nor the key id.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: SecretString,
    access_key_secret: SecretString,
    security_token: Option<SecretString>,
}

impl Credentials {
    /// A key pair.
    pub fn new(access_key_id: SecretString, access_key_secret: SecretString) -> Self {
        Credentials {
            access_key_id,
            access_key_secret,
            security_token: None,
        }
    }
    /// Adds an STS security token (sent as `x-acs-security-token` and signed).
    #[must_use]
    pub fn with_security_token(mut self, token: SecretString) -> Self {
        self.security_token = Some(token);
        self
    }
    /// The key id (goes into the Authorization header).
    pub fn access_key_id(&self) -> &str {
        self.access_key_id.expose_secret()
    }
    fn secret(&self) -> &[u8] {
        self.access_key_secret.expose_secret().as_bytes()
    }
    /// The STS token, if any.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_ref().map(|t| t.expose_secret())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &"[REDACTED]")
            .field("access_key_secret", &"[REDACTED]")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

/// One HTTP request as the signing schemes see it. Header names are compared without regard
/// to case; `path` is the already percent-encoded path.
#[derive(Debug, Clone, Copy)]
pub struct SignInput<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The encoded path, e.g. `/v2/openapi/instances/x/actions/recommend`.
    pub path: &'a str,
    /// Query pairs, unencoded.
    pub query: &'a [(String, String)],
    /// Headers, in any order and case.
    pub headers: &'a [(String, String)],
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The ACS3 canonical request. Signed headers are `host`, `content-type` and every `x-acs-*`
/// header, lower-cased, sorted, values trimmed; the body hash is taken from
/// `x-acs-content-sha256`.
pub fn acs3_canonical_request(req: &SignInput<'_>) -> (String, String) {
    let mut signed: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .filter(|(k, _)| k == "host" || k == "content-type" || k.starts_with("x-acs-"))
        .collect();
    signed.sort();
    let mut canon_headers = String::new();
    for (k, v) in &signed {
        canon_headers.push_str(k);
        canon_headers.push(':');
        canon_headers.push_str(v);
        canon_headers.push('\n');
    }
    let names = signed
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let hashed = header(req.headers, "x-acs-content-sha256")
        .map(str::to_owned)
        .unwrap_or_else(|| sha256_hex(b""));
    let path = if req.path.is_empty() { "/" } else { req.path };
    let cr = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        path,
        canonical_query(req.query),
        canon_headers,
        names,
        hashed
    );
    (cr, names)
}

/// The `Authorization` value of ACS3-HMAC-SHA256 for `req` (whose headers already include
/// `x-acs-content-sha256`, `x-acs-date`, `x-acs-signature-nonce` and the rest).
pub fn acs3_authorization(creds: &Credentials, req: &SignInput<'_>) -> String {
    let (cr, names) = acs3_canonical_request(req);
    let sts = format!("ACS3-HMAC-SHA256\n{}", sha256_hex(cr.as_bytes()));
    let sig = hex(&hmac_sha256(creds.secret(), sts.as_bytes()));
    format!(
        "ACS3-HMAC-SHA256 Credential={},SignedHeaders={names},Signature={sig}",
        creds.access_key_id()
    )
}

/// The legacy ROA string to sign: method, `accept`, `content-md5`, `content-type`, `date`
/// (each on its own line, empty when absent), then the sorted `x-acs-*` headers as
/// `name:value\n`, then the path with the query sorted and **not** encoded.
pub fn roa_string_to_sign(req: &SignInput<'_>) -> String {
    let h = |n| header(req.headers, n).unwrap_or_default();
    let mut acs: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .filter(|(k, _)| k.starts_with("x-acs-"))
        .collect();
    acs.sort();
    let mut s = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        req.method.to_ascii_uppercase(),
        h("accept"),
        h("content-md5"),
        h("content-type"),
        h("date")
    );
    for (k, v) in &acs {
        s.push_str(&format!("{k}:{v}\n"));
    }
    s.push_str(req.path);
    if !req.query.is_empty() {
        let mut q: Vec<&(String, String)> = req.query.iter().collect();
        q.sort();
        let parts: Vec<String> = q
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        s.push('?');
        s.push_str(&parts.join("&"));
    }
    s
}

/// The `Authorization` value of the legacy ROA scheme: `acs AK:base64(hmac-sha1)`.
pub fn roa_authorization(creds: &Credentials, req: &SignInput<'_>) -> String {
    let sig = B64.encode(hmac_sha1(
        creds.secret(),
        roa_string_to_sign(req).as_bytes(),
    ));
    format!("acs {}:{sig}", creds.access_key_id())
}

/// OpenSearch's string to sign: method, `Content-MD5`, `Content-Type`, `Date`, the sorted
/// `x-opensearch-*` headers (names lower-cased) as `name:value\n`, then the path and, when any
/// non-empty parameter remains, `?` and the canonical query (empty values dropped).
pub fn opensearch_string_to_sign(req: &SignInput<'_>) -> String {
    let h = |n| header(req.headers, n).unwrap_or_default();
    let mut os: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .filter(|(k, v)| k.starts_with("x-opensearch-") && !v.is_empty())
        .collect();
    os.sort();
    let mut s = format!(
        "{}\n{}\n{}\n{}\n",
        req.method.to_ascii_uppercase(),
        h("content-md5"),
        h("content-type"),
        h("date")
    );
    for (k, v) in &os {
        s.push_str(&format!("{k}:{v}\n"));
    }
    s.push_str(req.path);
    let q = opensearch_query(req.query);
    if !q.is_empty() {
        s.push('?');
        s.push_str(&q);
    }
    s
}

/// The query OpenSearch signs and receives: [`canonical_query`] without empty values.
pub fn opensearch_query(query: &[(String, String)]) -> String {
    let kept: Vec<(String, String)> = query
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .cloned()
        .collect();
    canonical_query(&kept)
}

/// The `Authorization` value of OpenSearch: `OPENSEARCH AK:base64(hmac-sha1)`.
pub fn opensearch_authorization(creds: &Credentials, req: &SignInput<'_>) -> String {
    let sig = B64.encode(hmac_sha1(
        creds.secret(),
        opensearch_string_to_sign(req).as_bytes(),
    ));
    format!("OPENSEARCH {}:{sig}", creds.access_key_id())
}

/// Where signing reads the time from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stuck at one instant (tests, replays).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Where signing reads nonces from. A nonce must not repeat within the vendor's replay window
/// (15 minutes for POP APIs).
pub trait NonceSource: Send + Sync + fmt::Debug {
    /// A fresh nonce of 32 lower-case hex digits (the `x-acs-signature-nonce` form).
    fn nonce(&self) -> String;
}

/// Nonces from the process's random hasher keys, the time and a counter: 128 bits, hex.
#[derive(Debug, Default)]
pub struct RandomNonce {
    counter: AtomicU64,
}

impl NonceSource for RandomNonce {
    fn nonce(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let t = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
        let mut words = [0u64; 2];
        for (i, w) in words.iter_mut().enumerate() {
            // Each RandomState has fresh random keys.
            let mut h = RandomState::new().build_hasher();
            h.write_u64(n);
            h.write_u64(t);
            h.write_usize(i);
            *w = h.finish();
        }
        format!("{:016x}{:016x}", words[0], words[1])
    }
}

/// One nonce, always (tests).
#[derive(Debug, Clone)]
pub struct FixedNonce(pub String);

impl NonceSource for FixedNonce {
    fn nonce(&self) -> String {
        self.0.clone()
    }
}

/// Signs requests with one key pair, one clock and one nonce source.
#[derive(Debug, Clone)]
pub struct Signer {
    creds: Credentials,
    clock: Arc<dyn Clock>,
    nonces: Arc<dyn NonceSource>,
}

/// What a signer adds to a request: headers to send (the Authorization among them).
pub type SignedHeaders = Vec<(String, String)>;

impl Signer {
    /// A signer on the system clock with random nonces.
    pub fn new(creds: Credentials) -> Self {
        Signer {
            creds,
            clock: Arc::new(SystemClock),
            nonces: Arc::new(RandomNonce::default()),
        }
    }
    /// A signer with the given clock and nonce source.
    pub fn with_sources(
        creds: Credentials,
        clock: Arc<dyn Clock>,
        nonces: Arc<dyn NonceSource>,
    ) -> Self {
        Signer {
            creds,
            clock,
            nonces,
        }
    }
    /// A signer stuck at `at` with the nonce `nonce` (tests).
    pub fn fixed(creds: Credentials, at: DateTime<Utc>, nonce: &str) -> Self {
        Self::with_sources(
            creds,
            Arc::new(FixedClock(at)),
            Arc::new(FixedNonce(nonce.to_owned())),
        )
    }
    /// The credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.creds
    }

    /// The headers of an ACS3-signed POP request: `host`, `x-acs-action`, `x-acs-version`,
    /// `x-acs-date`, `x-acs-signature-nonce`, `x-acs-content-sha256`, the STS token if any,
    /// `content-type` when given, and `Authorization`.
    #[allow(clippy::too_many_arguments)]
    pub fn acs3(
        &self,
        method: &str,
        host: &str,
        path: &str,
        query: &[(String, String)],
        action: &str,
        version: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> SignedHeaders {
        let mut h: Vec<(String, String)> = vec![
            ("host".into(), host.to_owned()),
            ("x-acs-action".into(), action.to_owned()),
            ("x-acs-version".into(), version.to_owned()),
            (
                "x-acs-date".into(),
                self.clock.now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ),
            ("x-acs-signature-nonce".into(), self.nonces.nonce()),
            ("x-acs-content-sha256".into(), sha256_hex(body)),
        ];
        if let Some(t) = self.creds.security_token() {
            h.push(("x-acs-security-token".into(), t.to_owned()));
        }
        if let Some(ct) = content_type {
            h.push(("content-type".into(), ct.to_owned()));
        }
        let auth = acs3_authorization(
            &self.creds,
            &SignInput {
                method,
                path,
                query,
                headers: &h,
            },
        );
        h.push(("authorization".into(), auth));
        h
    }

    /// The headers of a legacy ROA request signed with HMAC-SHA1: `date` (RFC 1123, GMT),
    /// `accept: application/json`, `x-acs-signature-nonce`, `x-acs-signature-method`,
    /// `x-acs-signature-version`, `x-acs-version`, `x-acs-action`, the STS token if any,
    /// `content-type` and base64 `content-md5` for a body, and `Authorization: acs AK:sig`.
    #[allow(clippy::too_many_arguments)]
    pub fn roa(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        action: &str,
        version: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> SignedHeaders {
        let mut h: Vec<(String, String)> = vec![
            (
                "date".into(),
                self.clock
                    .now()
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string(),
            ),
            ("accept".into(), "application/json".into()),
            ("x-acs-signature-nonce".into(), self.nonces.nonce()),
            ("x-acs-signature-method".into(), "HMAC-SHA1".into()),
            ("x-acs-signature-version".into(), "1.0".into()),
            ("x-acs-version".into(), version.to_owned()),
            ("x-acs-action".into(), action.to_owned()),
        ];
        if let Some(t) = self.creds.security_token() {
            h.push(("x-acs-security-token".into(), t.to_owned()));
        }
        if let Some(ct) = content_type {
            h.push(("content-type".into(), ct.to_owned()));
            h.push(("content-md5".into(), md5_base64(body)));
        }
        let auth = roa_authorization(
            &self.creds,
            &SignInput {
                method,
                path,
                query,
                headers: &h,
            },
        );
        h.push(("authorization".into(), auth));
        h
    }

    /// The headers of an OpenSearch-signed request: `Content-Type: application/json`, `Date`,
    /// `X-Opensearch-Nonce` (milliseconds and five more digits), `Content-MD5` (hex) for a
    /// body, and `Authorization`.
    pub fn opensearch(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&[u8]>,
    ) -> SignedHeaders {
        let now = self.clock.now();
        let nonce = self.nonces.nonce();
        // The SDKs send the time in milliseconds followed by five random digits.
        let digits: u64 = nonce
            .get(..12)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .unwrap_or_else(|| {
                nonce
                    .bytes()
                    .fold(0u64, |a, b| a.wrapping_mul(131).wrapping_add(u64::from(b)))
            });
        let os_nonce = format!("{}{:05}", now.timestamp_millis(), digits % 100_000);
        let mut h: Vec<(String, String)> = vec![
            ("content-type".into(), "application/json".into()),
            ("date".into(), now.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            ("x-opensearch-nonce".into(), os_nonce),
        ];
        if let Some(b) = body {
            h.push(("content-md5".into(), md5_hex(b)));
        }
        let auth = opensearch_authorization(
            &self.creds,
            &SignInput {
                method,
                path,
                query,
                headers: &h,
            },
        );
        h.push(("authorization".into(), auth));
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(id: &str, secret: &str) -> Credentials {
        Credentials::new(SecretString::from(id), SecretString::from(secret))
    }
    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const V2_BODY: &str = r#"[{"cmd":"add","fields":{"user_id":"u1","item_id":"i1","item_type":"item","bhv_type":"click","trace_id":"ali","scene_id":"home","bhv_time":"1704164645"}}]"#;
    const NONCE: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn v1_acs3_rpc_run_instances() {
        let h = pairs(&[
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-content-sha256", EMPTY),
        ]);
        let q = pairs(&[
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
            ("RegionId", "cn-shanghai"),
        ]);
        let req = SignInput {
            method: "POST",
            path: "/",
            query: &q,
            headers: &h,
        };
        let (cr, _) = acs3_canonical_request(&req);
        assert_eq!(
            sha256_hex(cr.as_bytes()),
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            acs3_authorization(&creds("YourAccessKeyId", "YourAccessKeySecret"), &req),
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn v2_acs3_roa_post_with_json_body() {
        assert_eq!(
            sha256_hex(V2_BODY.as_bytes()),
            "61d7e6b639074341672f7984c9985380aa08c31daa799b690068a2d9f1bf4f95"
        );
        let path = "/v2/openapi/instances/airec-cn-test/tables/behavior/actions/bulk";
        let h = pairs(&[
            ("host", "airec.cn-hangzhou.aliyuncs.com"),
            ("x-acs-action", "PushDocument"),
            ("x-acs-version", "2020-11-26"),
            ("x-acs-date", "2024-01-02T03:04:05Z"),
            ("x-acs-signature-nonce", NONCE),
            ("x-acs-content-sha256", &sha256_hex(V2_BODY.as_bytes())),
            ("content-type", "application/json; charset=utf-8"),
        ]);
        let req = SignInput {
            method: "POST",
            path,
            query: &[],
            headers: &h,
        };
        let (cr, _) = acs3_canonical_request(&req);
        assert_eq!(
            sha256_hex(cr.as_bytes()),
            "a1e63d3e24a40c85f04245bc004768dd72df3e3f854e6df9feb4f52bbaa5b8d4"
        );
        let want = "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=a969a277e6ac601fca2d17876c33e4c4cb0a76a2cc2731cc9cc763b317b3247e";
        assert_eq!(
            acs3_authorization(&creds("testid", "testsecret"), &req),
            want
        );
        // The Signer with a pinned clock and nonce produces the same header.
        let s = Signer::fixed(
            creds("testid", "testsecret"),
            at("2024-01-02T03:04:05Z"),
            NONCE,
        );
        let out = s.acs3(
            "POST",
            "airec.cn-hangzhou.aliyuncs.com",
            path,
            &[],
            "PushDocument",
            "2020-11-26",
            Some("application/json; charset=utf-8"),
            V2_BODY.as_bytes(),
        );
        let auth = &out.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert_eq!(auth, want);
    }

    fn v3_headers(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut h = pairs(&[
            ("host", "airec.cn-hangzhou.aliyuncs.com"),
            ("x-acs-action", "Recommend"),
            ("x-acs-version", "2020-11-26"),
            ("x-acs-date", "2024-01-02T03:04:05Z"),
            ("x-acs-signature-nonce", NONCE),
            ("x-acs-content-sha256", EMPTY),
        ]);
        h.extend(pairs(extra));
        h
    }

    fn v3_query() -> Vec<(String, String)> {
        pairs(&[
            ("userId", "u 1*"),
            ("sceneId", "home"),
            ("returnCount", "10"),
            ("items", "i1,i2~x"),
        ])
    }

    #[test]
    fn v3_acs3_get_with_encoded_query() {
        let q = v3_query();
        let h = v3_headers(&[]);
        let req = SignInput {
            method: "GET",
            path: "/v2/openapi/instances/airec-cn-test/actions/recommend",
            query: &q,
            headers: &h,
        };
        assert_eq!(
            canonical_query(&q),
            "items=i1%2Ci2~x&returnCount=10&sceneId=home&userId=u%201%2A"
        );
        let (cr, _) = acs3_canonical_request(&req);
        let expected_cr = "GET\n/v2/openapi/instances/airec-cn-test/actions/recommend\nitems=i1%2Ci2~x&returnCount=10&sceneId=home&userId=u%201%2A\nhost:airec.cn-hangzhou.aliyuncs.com\nx-acs-action:Recommend\nx-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-acs-date:2024-01-02T03:04:05Z\nx-acs-signature-nonce:0123456789abcdef0123456789abcdef\nx-acs-version:2020-11-26\n\nhost;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(cr, expected_cr);
        assert_eq!(
            sha256_hex(cr.as_bytes()),
            "9f1c2744b9e8d043a3e7e6ef19c594cb930f3e71a2e7d79f6ee00c4b675e3ca2"
        );
        assert_eq!(
            acs3_authorization(&creds("testid", "testsecret"), &req),
            "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=623b49fc7f962b6fbdd54561b99d4dd2ccb460adf5349b373ff4f6b6037781db"
        );
    }

    #[test]
    fn v3b_acs3_with_security_token() {
        let q = v3_query();
        let h = v3_headers(&[("x-acs-security-token", "sts-token-xyz")]);
        let req = SignInput {
            method: "GET",
            path: "/v2/openapi/instances/airec-cn-test/actions/recommend",
            query: &q,
            headers: &h,
        };
        let want = "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-security-token;x-acs-signature-nonce;x-acs-version,Signature=cfcb4e944a4cc8df5004a0053c7a40f2ec205d3d172dbf4e8522a094f6b549d8";
        assert_eq!(
            acs3_authorization(&creds("testid", "testsecret"), &req),
            want
        );
        // Through the Signer: the token header is added and signed.
        let c =
            creds("testid", "testsecret").with_security_token(SecretString::from("sts-token-xyz"));
        let s = Signer::fixed(c, at("2024-01-02T03:04:05Z"), NONCE);
        let out = s.acs3(
            "GET",
            "airec.cn-hangzhou.aliyuncs.com",
            "/v2/openapi/instances/airec-cn-test/actions/recommend",
            &q,
            "Recommend",
            "2020-11-26",
            None,
            b"",
        );
        assert_eq!(
            &out.iter().find(|(k, _)| k == "authorization").unwrap().1,
            want
        );
    }

    fn roa_headers(extra: &[(&str, &str)], action: &str) -> Vec<(String, String)> {
        let mut h = pairs(&[
            ("date", "Tue, 02 Jan 2024 03:04:05 GMT"),
            ("accept", "application/json"),
            ("x-acs-signature-nonce", NONCE),
            ("x-acs-signature-method", "HMAC-SHA1"),
            ("x-acs-signature-version", "1.0"),
            ("x-acs-version", "2020-11-26"),
            ("x-acs-action", action),
        ]);
        h.extend(pairs(extra));
        h
    }

    #[test]
    fn v4_roa_hmac_sha1_get() {
        let q = pairs(&[("userId", "u1"), ("sceneId", "home"), ("returnCount", "10")]);
        let h = roa_headers(&[], "Recommend");
        let req = SignInput {
            method: "GET",
            path: "/v2/openapi/instances/airec-cn-test/actions/recommend",
            query: &q,
            headers: &h,
        };
        assert_eq!(
            roa_string_to_sign(&req),
            "GET\napplication/json\n\n\nTue, 02 Jan 2024 03:04:05 GMT\nx-acs-action:Recommend\nx-acs-signature-method:HMAC-SHA1\nx-acs-signature-nonce:0123456789abcdef0123456789abcdef\nx-acs-signature-version:1.0\nx-acs-version:2020-11-26\n/v2/openapi/instances/airec-cn-test/actions/recommend?returnCount=10&sceneId=home&userId=u1"
        );
        assert_eq!(
            roa_authorization(&creds("testid", "testsecret"), &req),
            "acs testid:BhCpyaLJ/b13AXB6PnPQPR2jByw="
        );
    }

    #[test]
    fn v5_roa_hmac_sha1_post() {
        assert_eq!(md5_base64(V2_BODY.as_bytes()), "RNUxOvIJpAOzemzSpdKbvw==");
        let h = roa_headers(
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("content-md5", "RNUxOvIJpAOzemzSpdKbvw=="),
            ],
            "PushDocument",
        );
        let req = SignInput {
            method: "POST",
            path: "/v2/openapi/instances/airec-cn-test/tables/behavior/actions/bulk",
            query: &[],
            headers: &h,
        };
        assert_eq!(
            roa_authorization(&creds("testid", "testsecret"), &req),
            "acs testid:7v19d3/hIpXd/KcUMNaN9IYNRNU="
        );
    }

    #[test]
    fn signer_roa_reproduces_v4_and_v5() {
        let at = DateTime::parse_from_rfc2822("Tue, 02 Jan 2024 03:04:05 GMT")
            .unwrap()
            .with_timezone(&Utc);
        let s = Signer::fixed(creds("testid", "testsecret"), at, NONCE);
        let auth = |h: &SignedHeaders| {
            h.iter()
                .find(|(k, _)| k == "authorization")
                .unwrap()
                .1
                .clone()
        };
        let q = pairs(&[("userId", "u1"), ("sceneId", "home"), ("returnCount", "10")]);
        let get = s.roa(
            "GET",
            "/v2/openapi/instances/airec-cn-test/actions/recommend",
            &q,
            "Recommend",
            "2020-11-26",
            None,
            b"",
        );
        assert_eq!(auth(&get), "acs testid:BhCpyaLJ/b13AXB6PnPQPR2jByw=");
        let post = s.roa(
            "POST",
            "/v2/openapi/instances/airec-cn-test/tables/behavior/actions/bulk",
            &[],
            "PushDocument",
            "2020-11-26",
            Some("application/json; charset=utf-8"),
            V2_BODY.as_bytes(),
        );
        assert_eq!(auth(&post), "acs testid:7v19d3/hIpXd/KcUMNaN9IYNRNU=");
    }

    #[test]
    fn v6_opensearch_search() {
        let q = pairs(&[
            (
                "query",
                "query=name:'文档'&&sort=id&&config=format:fulljson",
            ),
            ("fetch_fields", "name"),
            ("empty", ""),
        ]);
        let h = pairs(&[
            ("Content-Type", "application/json"),
            ("Date", "2019-02-25T10:09:57Z"),
            ("X-Opensearch-Nonce", "1551089397451704"),
        ]);
        let req = SignInput {
            method: "GET",
            path: "/v3/openapi/apps/app_schema_demo/search",
            query: &q,
            headers: &h,
        };
        assert_eq!(
            opensearch_string_to_sign(&req),
            "GET\n\napplication/json\n2019-02-25T10:09:57Z\nx-opensearch-nonce:1551089397451704\n/v3/openapi/apps/app_schema_demo/search?fetch_fields=name&query=query%3Dname%3A%27%E6%96%87%E6%A1%A3%27%26%26sort%3Did%26%26config%3Dformat%3Afulljson"
        );
        assert_eq!(
            opensearch_authorization(&creds("LTAIEXAMPLE", "yourAccessKeySecret"), &req),
            "OPENSEARCH LTAIEXAMPLE:Mv5FyQxr6myxxnwMPqJ6f6F9+9Y="
        );
    }

    #[test]
    fn v7_opensearch_push() {
        let body = br#"[{"cmd":"ADD","fields":{"id":1,"name":"doc"}}]"#;
        assert_eq!(md5_hex(body), "a70ab8d99b737f716356b0de7fd3c2de");
        let h = pairs(&[
            ("Content-MD5", "a70ab8d99b737f716356b0de7fd3c2de"),
            ("Content-Type", "application/json"),
            ("Date", "2024-01-02T03:04:05Z"),
            ("X-Opensearch-Nonce", "170416464512345"),
        ]);
        let req = SignInput {
            method: "POST",
            path: "/v3/openapi/apps/app_schema_demo/main/actions/bulk",
            query: &[],
            headers: &h,
        };
        let want = "OPENSEARCH testid:9zce2AqHi1oklKNlZWGVxp8AFHc=";
        assert_eq!(
            opensearch_authorization(&creds("testid", "testsecret"), &req),
            want
        );
        // Through the Signer, with a clock and a nonce giving the same header values.
        struct N;
        impl fmt::Debug for N {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("N")
            }
        }
        impl NonceSource for N {
            fn nonce(&self) -> String {
                // 0x3039 = 12345.
                "000000003039".into()
            }
        }
        let at = DateTime::from_timestamp_millis(1_704_164_645_000).unwrap();
        assert_eq!(
            at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "2024-01-02T03:04:05Z"
        );
        let s = Signer::with_sources(
            creds("testid", "testsecret"),
            Arc::new(FixedClock(at)),
            Arc::new(N),
        );
        let out = s.opensearch(
            "POST",
            "/v3/openapi/apps/app_schema_demo/main/actions/bulk",
            &[],
            Some(body),
        );
        let get = |n: &str| out.iter().find(|(k, _)| k == n).unwrap().1.clone();
        assert_eq!(get("x-opensearch-nonce"), "170416464500012345");
        // That nonce differs from the vector's, so check the vector's nonce directly too.
        let h2: Vec<(String, String)> = out
            .iter()
            .filter(|(k, _)| k != "authorization")
            .map(|(k, v)| {
                if k == "x-opensearch-nonce" {
                    (k.clone(), "170416464512345".into())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect();
        let req2 = SignInput {
            method: "POST",
            path: "/v3/openapi/apps/app_schema_demo/main/actions/bulk",
            query: &[],
            headers: &h2,
        };
        assert_eq!(
            opensearch_authorization(&creds("testid", "testsecret"), &req2),
            want
        );
    }

    #[test]
    fn percent_encoding_edge_cases() {
        assert_eq!(percent_encode("a b"), "a%20b");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("~-_."), "~-_.");
        assert_eq!(percent_encode("+/=&?#%"), "%2B%2F%3D%26%3F%23%25");
        assert_eq!(percent_encode("文"), "%E6%96%87");
        assert_eq!(percent_encode(""), "");
        assert_eq!(encode_path("/v2/a b/c"), "/v2/a%20b/c");
    }

    #[test]
    fn empty_query_and_header_order() {
        // An empty query gives an empty canonical line (and no `?` in OpenSearch).
        assert_eq!(canonical_query(&[]), "");
        let h1 = pairs(&[("X-Acs-B", " 2 "), ("host", "h"), ("x-acs-a", "1")]);
        let h2 = pairs(&[("x-acs-a", "1"), ("X-ACS-B", "2"), ("Host", "h")]);
        let mk = |h: &[(String, String)]| {
            acs3_canonical_request(&SignInput {
                method: "get",
                path: "",
                query: &[],
                headers: h,
            })
        };
        let (a, names) = mk(&h1);
        assert_eq!(a, mk(&h2).0, "header order and case do not matter");
        assert_eq!(names, "host;x-acs-a;x-acs-b");
        assert!(a.starts_with("GET\n/\n\nhost:h\nx-acs-a:1\nx-acs-b:2\n\n"));
        // Unsigned headers (accept, user-agent) stay out.
        let h3 = pairs(&[("accept", "x"), ("host", "h")]);
        assert_eq!(mk(&h3).1, "host");
        let os = opensearch_string_to_sign(&SignInput {
            method: "POST",
            path: "/p",
            query: &pairs(&[("e", "")]),
            headers: &[],
        });
        assert_eq!(os, "POST\n\n\n\n/p");
        // Duplicate keys are sorted by value too.
        assert_eq!(
            canonical_query(&pairs(&[("a", "2"), ("a", "1")])),
            "a=1&a=2"
        );
    }

    #[test]
    fn any_nonce_source_is_safe_for_opensearch() {
        let at = DateTime::from_timestamp_millis(1_704_164_645_000).unwrap();
        for n in ["", "é", "ééééééé", "not-hex-at-all!"] {
            let s = Signer::fixed(creds("a", "b"), at, n);
            let h = s.opensearch("GET", "/p", &[], None);
            let nonce = &h.iter().find(|(k, _)| k == "x-opensearch-nonce").unwrap().1;
            assert_eq!(nonce.len(), 18, "{n:?}");
        }
    }

    #[test]
    fn nonces_differ_and_are_hex() {
        let n = RandomNonce::default();
        let a = n.nonce();
        let b = n.nonce();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn credentials_debug_hides_everything() {
        let c = creds("LTAIkeyid", "topsecret").with_security_token(SecretString::from("tok"));
        let d = format!("{c:?} {:?}", Signer::new(c.clone()));
        assert!(!d.contains("LTAIkeyid") && !d.contains("topsecret") && !d.contains("tok\""));
    }
}
