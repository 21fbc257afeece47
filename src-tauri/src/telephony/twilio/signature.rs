//! Twilio request signatures (`X-Twilio-Signature`).
//!
//! `base64(HMAC(key, url + every form param name and value, sorted by name then value))`, with
//! HMAC-SHA1 and the account auth token by default, or HMAC-SHA256 and a shared webhook key when
//! Twilio announces it in `X-Twilio-Webhooks-Signature-Settings`. JSON bodies are not signed
//! directly: Twilio adds `bodySHA256=hex(sha256(body))` to the URL and signs the URL alone.
//!
//! Everything here is checked against `tests/fixtures/specs/twilio-signature-vectors.json`, made by
//! Twilio's own library. Errors never carry the key or the signature, so they are safe to log.

use std::borrow::Cow;

use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// Name of the header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";
/// Name of the header announcing shared-key signing (`key=NAME,algorithm=HMAC_SHA256`).
pub const SETTINGS_HEADER: &str = "X-Twilio-Webhooks-Signature-Settings";

/// Which MAC Twilio used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// The classic scheme: HMAC-SHA1 keyed with the account auth token.
    #[default]
    HmacSha1,
    /// Shared-key webhook signing: HMAC-SHA256 keyed with the webhook signing key.
    HmacSha256,
}

impl Algorithm {
    /// The algorithm a request announces in `X-Twilio-Webhooks-Signature-Settings`; HMAC-SHA1
    /// when the header is absent. A malformed or unknown announcement also yields HMAC-SHA1, so
    /// the request is then refused as a mismatch rather than trusted.
    pub fn from_headers(headers: &axum::http::HeaderMap) -> Algorithm {
        headers
            .get(SETTINGS_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_settings_header(v).ok())
            .map_or(Algorithm::HmacSha1, |s| s.algorithm)
    }
}

/// What `X-Twilio-Webhooks-Signature-Settings` announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureSettings {
    /// Name of the signing key (an identifier, not the key), if given.
    pub key_name: Option<String>,
    pub algorithm: Algorithm,
}

/// Why a request was rejected. Messages are short reasons; none carries the key or the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no signing key configured")]
    NoKey,
    #[error("missing request signature")]
    Missing,
    #[error("signature does not match")]
    Mismatch,
    #[error("JSON body without bodySHA256 in the URL")]
    BodyHashMissing,
    #[error("body does not match bodySHA256")]
    BodyHashMismatch,
    #[error("malformed signature settings header")]
    BadSettings,
    #[error("unsupported signature algorithm")]
    UnsupportedAlgorithm,
}

/// Parses `X-Twilio-Webhooks-Signature-Settings` (`key=NAME,algorithm=HMAC_SHA256`).
///
/// An unknown algorithm is an error rather than a silent fall-back to SHA-1: the key would not
/// match anyway, and the caller should say why.
pub fn parse_settings_header(value: &str) -> Result<SignatureSettings, SignatureError> {
    let mut key_name = None;
    let mut algorithm = None;
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, val) = part.split_once('=').ok_or(SignatureError::BadSettings)?;
        let val = val.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "key" => key_name = Some(val.to_string()),
            "algorithm" => {
                algorithm = Some(match val.to_ascii_uppercase().replace('-', "_").as_str() {
                    "HMAC_SHA256" => Algorithm::HmacSha256,
                    "HMAC_SHA1" => Algorithm::HmacSha1,
                    _ => return Err(SignatureError::UnsupportedAlgorithm),
                })
            }
            _ => {} // Unknown fields are ignored so new ones do not break us.
        }
    }
    let algorithm = algorithm.ok_or(SignatureError::BadSettings)?;
    Ok(SignatureSettings {
        key_name,
        algorithm,
    })
}

/// Computes the signature Twilio sends for a request to `url` with form `params` (HMAC-SHA1).
///
/// ```
/// use verbio::telephony::twilio::signature::compute;
/// let sig = compute("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &[
///     ("CallSid", "CA1234567890ABCDE"), ("Caller", "+12349013030"), ("Digits", "1234"),
///     ("From", "+12349013030"), ("To", "+18005551212"),
/// ]);
/// assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
/// ```
pub fn compute<K: AsRef<str>, V: AsRef<str>>(
    auth_token: &str,
    url: &str,
    params: &[(K, V)],
) -> String {
    compute_with(Algorithm::HmacSha1, auth_token, url, params)
}

/// Like [`compute`], with a chosen algorithm.
pub fn compute_with<K: AsRef<str>, V: AsRef<str>>(
    algorithm: Algorithm,
    key: &str,
    url: &str,
    params: &[(K, V)],
) -> String {
    let pairs = sorted_pairs(params);
    match algorithm {
        Algorithm::HmacSha1 => mac_base64::<Hmac<Sha1>>(key, url, &pairs),
        Algorithm::HmacSha256 => mac_base64::<Hmac<Sha256>>(key, url, &pairs),
    }
}

/// Checks an HMAC-SHA1 `signature` over `url` and form `params`, as Twilio's `RequestValidator`
/// does: the URL is also tried with its default port added or removed.
pub fn validate<K: AsRef<str>, V: AsRef<str>>(
    auth_token: &str,
    url: &str,
    params: &[(K, V)],
    signature: &str,
) -> bool {
    check_signature(Algorithm::HmacSha1, auth_token, url, params, signature).is_ok()
}

/// Checks a JSON request: `bodySHA256` in the URL's query must be the body's SHA-256 and the
/// HMAC-SHA1 `signature` must cover the URL (no params).
pub fn validate_json(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    check_json(Algorithm::HmacSha1, auth_token, url, body, signature).is_ok()
}

/// A request as the HTTP layer saw it, ready to be checked.
pub struct SignedRequest<'a> {
    /// The full public URL Twilio called (scheme, host, path and query), not the local one.
    pub url: &'a str,
    /// Decoded form fields of a `application/x-www-form-urlencoded` body; empty otherwise.
    pub form_params: &'a [(String, String)],
    /// The raw body of a JSON request. When set, `form_params` is ignored.
    pub json_body: Option<&'a [u8]>,
    /// The `X-Twilio-Signature` header value.
    pub signature: &'a str,
    pub algorithm: Algorithm,
}

impl<'a> SignedRequest<'a> {
    /// A form POST (or a GET / WebSocket upgrade, with no params), signed with HMAC-SHA1.
    pub fn form(url: &'a str, form_params: &'a [(String, String)], signature: &'a str) -> Self {
        SignedRequest {
            url,
            form_params,
            json_body: None,
            signature,
            algorithm: Algorithm::HmacSha1,
        }
    }

    /// A JSON POST, signed with HMAC-SHA1.
    pub fn json(url: &'a str, body: &'a [u8], signature: &'a str) -> Self {
        SignedRequest {
            url,
            form_params: &[],
            json_body: Some(body),
            signature,
            algorithm: Algorithm::HmacSha1,
        }
    }

    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }
}

/// Hand-written so the signature never reaches a log and a token in the query is masked.
impl std::fmt::Debug for SignedRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedRequest")
            .field("url", &crate::logging::redact_query(self.url))
            .field("form_params", &self.form_params.len())
            .field("json_body", &self.json_body.map(<[u8]>::len))
            .field("signature", &"***")
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

/// The one check the HTTP layer calls for every Twilio request (webhooks and WebSocket upgrades).
pub fn verify(key: &str, req: &SignedRequest) -> Result<(), SignatureError> {
    match req.json_body {
        Some(body) => check_json(req.algorithm, key, req.url, body, req.signature),
        None => check_signature(req.algorithm, key, req.url, req.form_params, req.signature),
    }
}

fn check_json(
    algorithm: Algorithm,
    key: &str,
    url: &str,
    body: &[u8],
    signature: &str,
) -> Result<(), SignatureError> {
    precheck(key, signature)?;
    let claimed = body_hash_param(url).ok_or(SignatureError::BodyHashMissing)?;
    let actual = hex_lower(&Sha256::digest(body));
    let claimed = claimed.to_ascii_lowercase();
    if !bool::from(actual.as_bytes().ct_eq(claimed.as_bytes())) {
        return Err(SignatureError::BodyHashMismatch);
    }
    check_signature::<&str, &str>(algorithm, key, url, &[], signature)
}

fn check_signature<K: AsRef<str>, V: AsRef<str>>(
    algorithm: Algorithm,
    key: &str,
    url: &str,
    params: &[(K, V)],
    signature: &str,
) -> Result<(), SignatureError> {
    precheck(key, signature)?;
    let signature = signature.trim().as_bytes();
    // Every candidate is computed and compared, so timing does not tell which one matched.
    let mut ok = Choice::from(0);
    for candidate in url_variants(url) {
        let expected = compute_with(algorithm, key, &candidate, params);
        ok |= expected.as_bytes().ct_eq(signature);
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// An empty key would make any request signed with an empty key pass: refuse instead.
fn precheck(key: &str, signature: &str) -> Result<(), SignatureError> {
    if key.is_empty() {
        return Err(SignatureError::NoKey);
    }
    if signature.trim().is_empty() {
        return Err(SignatureError::Missing);
    }
    Ok(())
}

/// Sorted by name, then value, with exact duplicates collapsed, as Twilio's library does
/// (it iterates `sorted(set(names))` and `sorted(set(values))`). Byte order equals code point order.
fn sorted_pairs<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

fn mac_base64<M: Mac + KeyInit>(key: &str, url: &str, pairs: &[(&str, &str)]) -> String {
    let mut mac = match <M as KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(url.as_bytes());
    for (k, v) in pairs {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0x0F) as usize] as char);
    }
    out
}

/// The first `bodySHA256` value in the URL's query, percent-decoded.
fn body_hash_param(url: &str) -> Option<String> {
    let without_fragment = url.split('#').next().unwrap_or(url);
    let (_, query) = without_fragment.split_once('?')?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "bodySHA256")
        .map(|(_, value)| value.into_owned())
}

/// The URL as given, plus the same URL with its default port removed (`:443` on https/wss,
/// `:80` on http/ws) or added (when it has none). Twilio signs inconsistently here, so its own
/// library tries both. A non-default port is never dropped.
fn url_variants(url: &str) -> Vec<Cow<'_, str>> {
    let mut out = vec![Cow::Borrowed(url)];
    let Some(scheme_end) = url.find("://") else {
        return out;
    };
    let default_port = match url[..scheme_end].to_ascii_lowercase().as_str() {
        "https" | "wss" => "443",
        "http" | "ws" => "80",
        _ => return out,
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    let authority = &url[authority_start..authority_end];
    // Skip any user info; the host may be an IPv6 literal in brackets.
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    let host_end = match host_port.strip_prefix('[') {
        Some(rest) => match rest.find(']') {
            Some(i) => i + 2,
            None => return out,
        },
        None => host_port.find(':').unwrap_or(host_port.len()),
    };
    let port = &host_port[host_end..];
    // Absolute offset in `url` where the host ends (and any `:port` begins).
    let at = authority_start + host_start + host_end;
    if port.is_empty() {
        out.push(Cow::Owned(format!(
            "{}:{}{}",
            &url[..at],
            default_port,
            &url[authority_end..]
        )));
    } else if port.strip_prefix(':') == Some(default_port) {
        out.push(Cow::Owned(format!(
            "{}{}",
            &url[..at],
            &url[authority_end..]
        )));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/specs/twilio-signature-vectors.json"
    ));

    struct Case {
        description: String,
        key: String,
        algorithm: Algorithm,
        settings_header: Option<String>,
        url: String,
        params: Vec<(String, String)>,
        body: Option<String>,
        body_sha256: Option<String>,
        signature: String,
        valid: bool,
    }

    fn cases() -> Vec<Case> {
        let doc: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let str_field = |c: &serde_json::Value, name: &str| c[name].as_str().map(str::to_string);
        doc["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Case {
                description: str_field(c, "description").unwrap(),
                key: str_field(c, "auth_token").unwrap(),
                algorithm: match c["algorithm"].as_str() {
                    None => Algorithm::HmacSha1,
                    Some("HMAC_SHA256") => Algorithm::HmacSha256,
                    Some(other) => panic!("unknown algorithm {other}"),
                },
                settings_header: str_field(c, "settings_header"),
                url: str_field(c, "url").unwrap(),
                params: c["params"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect(),
                body: str_field(c, "body"),
                body_sha256: str_field(c, "body_sha256"),
                signature: str_field(c, "signature").unwrap(),
                valid: c["valid"].as_bool().unwrap(),
            })
            .collect()
    }

    #[test]
    fn every_reference_vector_agrees() {
        let cases = cases();
        assert_eq!(cases.len(), 21, "the vectors file should hold 21 cases");
        assert_eq!(cases.iter().filter(|c| !c.valid).count(), 5);
        assert_eq!(
            cases
                .iter()
                .filter(|c| c.algorithm == Algorithm::HmacSha256)
                .count(),
            2
        );
        for c in &cases {
            let req = SignedRequest {
                url: &c.url,
                form_params: &c.params,
                json_body: c.body.as_deref().map(str::as_bytes),
                signature: &c.signature,
                algorithm: c.algorithm,
            };
            let result = verify(&c.key, &req);
            assert_eq!(result.is_ok(), c.valid, "{}: {result:?}", c.description);
            if !c.valid {
                assert_eq!(result, Err(SignatureError::Mismatch), "{}", c.description);
            }

            if let Some(header) = &c.settings_header {
                let settings = parse_settings_header(header).unwrap();
                assert_eq!(settings.algorithm, c.algorithm, "{}", c.description);
            }
            if let Some(expected) = &c.body_sha256 {
                let body = c.body.as_deref().unwrap();
                assert_eq!(&hex_lower(&Sha256::digest(body.as_bytes())), expected);
            }

            // The plain entry points agree with `verify` for the SHA-1 cases.
            if c.algorithm == Algorithm::HmacSha1 {
                let plain = match &c.body {
                    Some(body) => validate_json(&c.key, &c.url, body.as_bytes(), &c.signature),
                    None => validate(&c.key, &c.url, &c.params, &c.signature),
                };
                assert_eq!(plain, c.valid, "{}", c.description);
            }
            // A valid signature is exactly what `compute_with` produces for the URL as given.
            if c.valid {
                let params: &[(String, String)] = if c.body.is_some() { &[] } else { &c.params };
                assert_eq!(
                    compute_with(c.algorithm, &c.key, &c.url, params),
                    c.signature,
                    "{}",
                    c.description
                );
            }
        }
    }

    #[test]
    fn sha256_vector_fails_under_sha1() {
        let c = cases()
            .into_iter()
            .find(|c| c.algorithm == Algorithm::HmacSha256)
            .unwrap();
        let req = SignedRequest::form(&c.url, &c.params, &c.signature);
        assert_eq!(verify(&c.key, &req), Err(SignatureError::Mismatch));
        assert!(verify(&c.key, &req.with_algorithm(Algorithm::HmacSha256)).is_ok());
    }

    #[test]
    fn default_port_is_added_or_removed() {
        let params = [("CallSid", "CA1")];
        for (signed, received) in [
            ("https://example.com/twiml", "https://example.com:443/twiml"),
            ("https://example.com:443/twiml", "https://example.com/twiml"),
            (
                "wss://example.com/media?x=1",
                "wss://example.com:443/media?x=1",
            ),
            ("http://example.com/twiml", "http://example.com:80/twiml"),
            ("ws://example.com:80", "ws://example.com"),
            ("https://u@[::1]/a", "https://u@[::1]:443/a"),
        ] {
            let sig = compute("tok", signed, &params);
            assert!(
                validate("tok", received, &params, &sig),
                "{signed} vs {received}"
            );
        }
    }

    #[test]
    fn other_ports_are_not_interchangeable() {
        let params = [("CallSid", "CA1")];
        for (signed, received) in [
            (
                "https://example.com:8443/twiml",
                "https://example.com/twiml",
            ),
            (
                "https://example.com/twiml",
                "https://example.com:8443/twiml",
            ),
            ("https://example.com/twiml", "https://example.com:80/twiml"),
            ("http://example.com/twiml", "http://example.com:443/twiml"),
        ] {
            let sig = compute("tok", signed, &params);
            assert!(
                !validate("tok", received, &params, &sig),
                "{signed} vs {received}"
            );
        }
    }

    #[test]
    fn url_variants_keep_path_and_query() {
        let v = url_variants("https://h.example:443/p/q?a=1#f");
        assert_eq!(
            v,
            [
                "https://h.example:443/p/q?a=1#f",
                "https://h.example/p/q?a=1#f"
            ]
        );
        let v = url_variants("https://h.example?a=1");
        assert_eq!(v, ["https://h.example?a=1", "https://h.example:443?a=1"]);
        assert_eq!(url_variants("not a url"), ["not a url"]);
        assert_eq!(url_variants("ftp://h/x"), ["ftp://h/x"]);
    }

    #[test]
    fn params_sort_by_name_then_value_and_collapse_duplicates() {
        let sig = compute(
            "tok",
            "https://e.com/",
            &[("a", "2"), ("a", "1"), ("B", "x")],
        );
        let expected = mac_base64::<Hmac<Sha1>>(
            "tok",
            "https://e.com/",
            &[("B", "x"), ("a", "1"), ("a", "2")],
        );
        assert_eq!(sig, expected);
        let dup = compute("tok", "https://e.com/", &[("a", "1"), ("a", "1")]);
        assert_eq!(dup, compute("tok", "https://e.com/", &[("a", "1")]));
    }

    #[test]
    fn json_body_must_match_its_hash() {
        let body = br#"{"event":"call.completed"}"#;
        let url = format!(
            "https://e.com/events?bodySHA256={}",
            hex_lower(&Sha256::digest(body))
        );
        let sig = compute::<&str, &str>("tok", &url, &[]);
        assert!(validate_json("tok", &url, body, &sig));
        assert!(!validate_json("tok", &url, b"{}", &sig));
        assert_eq!(
            verify("tok", &SignedRequest::json(&url, b"{}", &sig)),
            Err(SignatureError::BodyHashMismatch)
        );
        assert_eq!(
            verify("other", &SignedRequest::json(&url, body, &sig)),
            Err(SignatureError::Mismatch)
        );
        // Uppercase hex from a proxy is still the same hash.
        let upper = format!(
            "https://e.com/events?bodySHA256={}",
            hex_lower(&Sha256::digest(body)).to_ascii_uppercase()
        );
        let sig_upper = compute::<&str, &str>("tok", &upper, &[]);
        assert!(validate_json("tok", &upper, body, &sig_upper));
        // No hash in the URL: a JSON body is not accepted on the URL signature alone.
        let bare = "https://e.com/events";
        let bare_sig = compute::<&str, &str>("tok", bare, &[]);
        assert_eq!(
            verify("tok", &SignedRequest::json(bare, body, &bare_sig)),
            Err(SignatureError::BodyHashMissing)
        );
    }

    #[test]
    fn empty_key_or_signature_is_refused() {
        let url = "https://e.com/twiml";
        let sig = compute::<&str, &str>("", url, &[]);
        assert_eq!(
            verify("", &SignedRequest::form(url, &[], &sig)),
            Err(SignatureError::NoKey)
        );
        assert!(!validate::<&str, &str>("", url, &[], &sig));
        assert_eq!(
            verify("tok", &SignedRequest::form(url, &[], "  ")),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn algorithm_from_headers() {
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(Algorithm::from_headers(&headers), Algorithm::HmacSha1);
        headers.insert(
            SETTINGS_HEADER,
            axum::http::HeaderValue::from_static("key=k1,algorithm=HMAC_SHA256"),
        );
        assert_eq!(Algorithm::from_headers(&headers), Algorithm::HmacSha256);
        headers.insert(
            SETTINGS_HEADER,
            axum::http::HeaderValue::from_static("algorithm=ROT13"),
        );
        assert_eq!(Algorithm::from_headers(&headers), Algorithm::HmacSha1);
    }

    #[test]
    fn signature_settings_header() {
        let s =
            parse_settings_header("key=webhooks_sharedkey_demo, algorithm=HMAC_SHA256").unwrap();
        assert_eq!(s.algorithm, Algorithm::HmacSha256);
        assert_eq!(s.key_name.as_deref(), Some("webhooks_sharedkey_demo"));
        assert_eq!(
            parse_settings_header("algorithm=hmac-sha1")
                .unwrap()
                .algorithm,
            Algorithm::HmacSha1
        );
        assert_eq!(
            parse_settings_header("algorithm=MD5"),
            Err(SignatureError::UnsupportedAlgorithm)
        );
        assert_eq!(
            parse_settings_header("key=x"),
            Err(SignatureError::BadSettings)
        );
        assert_eq!(
            parse_settings_header("garbage"),
            Err(SignatureError::BadSettings)
        );
    }

    #[test]
    fn errors_and_debug_never_show_secrets() {
        let key = "super-secret-token-123";
        let url = "https://e.com/media?token=tok_abc";
        let sig = compute::<&str, &str>(key, url, &[]);
        let req = SignedRequest::form(url, &[], "forged-signature-xyz");
        let err = verify(key, &req).unwrap_err();
        let shown = format!("{err} {err:?} {req:?}");
        for secret in [key, "forged-signature-xyz", &sig, "tok_abc"] {
            assert!(!shown.contains(secret), "{shown} leaks {secret}");
        }
    }
}
