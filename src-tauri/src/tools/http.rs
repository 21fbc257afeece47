//! HTTP tools: a function tool backed by the user's own endpoint (Vapi and Retell call theirs the same
//! way).
//!
//! The core POSTs `{"call_sid", "tool", "call_id", "arguments"}` as JSON and hands the response body to
//! the model as the function output. When the tool has a secret, the body is signed
//! ([`SIGNATURE_HEADER`]: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, Stripe's
//! scheme, so the endpoint can refuse forged and replayed requests). Every failure becomes a
//! [`ToolFailure`] whose message the model can speak about and that names the tool and the host only:
//! never the secret, the path or the query (which may carry tokens).
//!
//! ```no_run
//! # async fn demo() -> Result<(), verbio::tools::ToolFailure> {
//! use verbio::tools::http::{HttpTools, ToolEndpoint};
//! use verbio::tools::ToolRequest;
//! use verbio::types::Secret;
//! let tools = HttpTools::new();
//! let endpoint = ToolEndpoint { url: "https://example.com/tools/order".into(), timeout_ms: 8000 };
//! let request = ToolRequest {
//!     call_sid: "CA…".into(),
//!     call_id: "call_1".into(),
//!     tool: "lookup_order".into(),
//!     arguments: serde_json::json!({"order": "42"}),
//! };
//! let output = tools.call(&endpoint, Some(&Secret::new("…")), &request).await?;
//! # Ok(()) }
//! ```

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tracing::{debug, warn};

use super::{FailureKind, ToolFailure, ToolRequest, MAX_OUTPUT_BYTES};
use crate::types::Secret;

/// The header carrying the request's signature: `t=<unix seconds>,v1=<lowercase hex>`.
pub const SIGNATURE_HEADER: &str = "X-Verbio-Signature";
/// A tool's timeout when its endpoint names none.
pub const DEFAULT_TIMEOUT_MS: u64 = 8000;
/// The shortest and longest timeouts a tool may have: below 100 ms nothing real answers, and a caller
/// will not wait on the line longer than a minute.
pub const TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 100..=60_000;
/// How much of a refusal's body is read (for its snippet): the rest is never fetched.
const ERROR_BODY_READ: usize = 4096;
/// The longest body snippet a non-2xx failure quotes.
const SNIPPET_CHARS: usize = 200;

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// Where an HTTP tool is served: `"endpoint": {"url": "https://…", "timeout_ms": 8000}` on a function
/// tool in the session config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolEndpoint {
    pub url: String,
    /// The whole exchange (connect, request, the full response) must fit in this.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl ToolEndpoint {
    /// Checks the endpoint before it is saved or called: `https://`, or plain `http://` only to this
    /// machine (anything else would send the caller's data readable on the wire); no user name or
    /// password in the URL (they would end up in logs and settings files: use the tool's secret); a
    /// timeout within [`TIMEOUT_RANGE_MS`]. Messages never quote the URL (its query may hold a token).
    pub fn validate(&self) -> Result<(), String> {
        let url =
            url::Url::parse(self.url.trim()).map_err(|e| format!("the URL is not valid ({e})"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "the URL must not carry a user name or password (give the tool a secret instead)"
                    .to_string(),
            );
        }
        let host = url.host().ok_or("the URL has no host")?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => {
                return Err(
                    "plain http:// is only allowed to this machine (localhost, 127.0.0.1, ::1); use https://"
                        .to_string(),
                )
            }
            other => return Err(format!("the URL must be https:// (not {other}://)")),
        }
        if !TIMEOUT_RANGE_MS.contains(&self.timeout_ms) {
            return Err(format!(
                "timeout_ms must be between {} and {} (got {})",
                TIMEOUT_RANGE_MS.start(),
                TIMEOUT_RANGE_MS.end(),
                self.timeout_ms
            ));
        }
        Ok(())
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    }
}

/// The [`SIGNATURE_HEADER`] value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex_lower(&mac(secret, timestamp, body))
    )
}

/// Checks a [`SIGNATURE_HEADER`] value: the MAC must match (compared in constant time; any of several
/// `v1=` entries may, for rotating secrets) and the timestamp must be within `tolerance_secs` of `now`
/// either way, so a captured request cannot be replayed later. What endpoints written in Rust (and the
/// test tool server) use.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: u64,
    tolerance_secs: u64,
) -> Result<(), String> {
    let mut timestamp = None;
    let mut claimed = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => {
                timestamp = Some(
                    t.parse::<u64>()
                        .map_err(|_| "the signature's timestamp is not a number".to_string())?,
                )
            }
            Some(("v1", hex)) => claimed.push(hex),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or("the signature has no timestamp (t=)")?;
    if claimed.is_empty() {
        return Err("the signature has no v1= entry".to_string());
    }
    if now.abs_diff(timestamp) > tolerance_secs {
        return Err(format!(
            "the signature's timestamp is {} s away from now (at most {tolerance_secs} s): a replay or a wrong clock",
            now.abs_diff(timestamp)
        ));
    }
    let expected = mac(secret, timestamp, body);
    let mut ok = subtle::Choice::from(0);
    for hex in claimed {
        if let Some(bytes) = hex_decode(hex) {
            ok |= expected.as_slice().ct_eq(&bytes);
        }
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err("the signature does not match the body".to_string())
    }
}

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0x0f) as usize] as char);
    }
    out
}

fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The JSON body every endpoint gets.
#[derive(Serialize)]
struct Payload<'a> {
    call_sid: &'a str,
    tool: &'a str,
    call_id: &'a str,
    arguments: &'a serde_json::Value,
}

/// Calls HTTP tools. One per core: its connection pools are shared by every call.
///
/// Redirects are not followed (a 3xx is a failure: a redirect would carry the signed body somewhere the
/// user did not name). Loopback endpoints never go through a proxy from the environment; others use it,
/// as a corporate network may need.
#[derive(Debug, Clone)]
pub struct HttpTools {
    clients: Result<Clients, String>,
}

#[derive(Debug, Clone)]
struct Clients {
    remote: reqwest::Client,
    loopback: reqwest::Client,
}

impl Default for HttpTools {
    fn default() -> Self {
        HttpTools::new()
    }
}

impl HttpTools {
    /// Builds the clients. If TLS cannot be set up, every call fails with that reason (never a panic).
    pub fn new() -> Self {
        crate::tls::install_crypto_provider();
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("verbio/", env!("CARGO_PKG_VERSION")))
                .pool_idle_timeout(Duration::from_secs(60))
        };
        let clients = builder()
            .build()
            .and_then(|remote| {
                Ok(Clients {
                    remote,
                    loopback: builder().no_proxy().build()?,
                })
            })
            .map_err(|e| {
                let why = e.without_url().to_string();
                warn!(%why, "HTTP tools are unavailable: no HTTP client");
                why
            });
        HttpTools { clients }
    }

    /// Calls the tool: POSTs the request as JSON (signed when `secret` is `Some` and not empty) and
    /// returns the response body as the function output. The body is read chunk by chunk and given up
    /// as soon as it passes [`MAX_OUTPUT_BYTES`]; a `Content-Type: application/json` answer must be valid
    /// JSON. The whole exchange is bounded by the endpoint's timeout.
    pub async fn call(
        &self,
        endpoint: &ToolEndpoint,
        secret: Option<&Secret>,
        request: &ToolRequest,
    ) -> Result<String, ToolFailure> {
        let tool = request.tool.as_str();
        let started = tokio::time::Instant::now();
        endpoint.validate().map_err(|why| {
            ToolFailure::new(
                FailureKind::Unreachable,
                format!("tool {tool} is not set up correctly: its endpoint {why}"),
            )
        })?;
        let url = url::Url::parse(endpoint.url.trim()).map_err(|_| {
            ToolFailure::new(
                FailureKind::Unreachable,
                format!("tool {tool} is not set up correctly: its endpoint URL is not valid"),
            )
        })?;
        let host = host_label(&url);
        let clients = self.clients.as_ref().map_err(|why| {
            ToolFailure::new(
                FailureKind::Unreachable,
                format!("tool {tool} cannot be called: Verbio has no HTTP client ({why})"),
            )
        })?;
        let client = match url.host() {
            Some(h) if is_loopback(&h) => &clients.loopback,
            _ => &clients.remote,
        };
        let body = serde_json::to_vec(&Payload {
            call_sid: &request.call_sid,
            tool,
            call_id: &request.call_id,
            arguments: &request.arguments,
        })
        .map_err(|e| {
            ToolFailure::new(
                FailureKind::Malformed,
                format!("tool {tool} could not be called: its arguments are not JSON ({e})"),
            )
        })?;
        let mut http = client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                reqwest::header::ACCEPT,
                "application/json, text/plain;q=0.9, */*;q=0.1",
            );
        if let Some(secret) = secret.filter(|s| !s.is_empty()) {
            http = http.header(
                SIGNATURE_HEADER,
                sign(secret.expose().as_bytes(), unix_now(), &body),
            );
        }
        let limit = Duration::from_millis(endpoint.timeout_ms);
        let exchange = Exchange {
            tool,
            host: &host,
            query: url.query().unwrap_or_default(),
            secret,
        };
        // The tool's timeout covers the body as well: a server that trickles its answer is no better
        // than one that never answers.
        let outcome = match tokio::time::timeout(limit, exchange.run(http.body(body))).await {
            Ok(outcome) => outcome,
            Err(_) => Err(timeout_failure(tool, endpoint.timeout_ms)),
        };
        let ms = started.elapsed().as_millis() as u64;
        match &outcome {
            Ok(output) => debug!(tool, %host, ms, bytes = output.len(), "HTTP tool answered"),
            Err(failure) => debug!(tool, %host, ms, kind = ?failure.kind, "HTTP tool failed"),
        }
        outcome
    }
}

/// One request's context for reading its answer and wording its failures.
struct Exchange<'a> {
    tool: &'a str,
    host: &'a str,
    /// Removed from snippets (an endpoint echoing its URL would otherwise leak a token).
    query: &'a str,
    secret: Option<&'a Secret>,
}

impl Exchange<'_> {
    async fn run(&self, http: reqwest::RequestBuilder) -> Result<String, ToolFailure> {
        let tool = self.tool;
        let mut response = http.send().await.map_err(|e| self.transport_failure(&e))?;
        let status = response.status();
        if !status.is_success() {
            let (head, _) = self.read_capped(&mut response, ERROR_BODY_READ).await?;
            let snippet = self.snippet(&head);
            let reason = status
                .canonical_reason()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            let mut message = format!(
                "tool {tool} failed: its endpoint answered HTTP {}{reason}",
                status.as_u16()
            );
            if !snippet.is_empty() {
                message.push_str(": ");
                message.push_str(&snippet);
            }
            return Err(ToolFailure::new(FailureKind::HttpStatus, message));
        }
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_type);
        if response
            .content_length()
            .is_some_and(|n| n > MAX_OUTPUT_BYTES as u64)
        {
            return Err(self.too_large());
        }
        let (bytes, complete) = self.read_capped(&mut response, MAX_OUTPUT_BYTES).await?;
        if !complete {
            return Err(self.too_large());
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            ToolFailure::new(
                FailureKind::Malformed,
                format!("tool {tool} answered with something that is not text (not UTF-8)"),
            )
        })?;
        if is_json {
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
                return Err(ToolFailure::new(
                    FailureKind::Malformed,
                    format!("tool {tool} answered with broken JSON ({e})"),
                ));
            }
        }
        Ok(text)
    }

    /// Reads at most `cap` bytes of the body, a chunk at a time; `false` when there was more (the rest
    /// is never read: the connection is dropped with the response).
    async fn read_capped(
        &self,
        response: &mut reqwest::Response,
        cap: usize,
    ) -> Result<(Vec<u8>, bool), ToolFailure> {
        let mut out = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if out.len() + chunk.len() > cap {
                        let room = cap - out.len();
                        out.extend_from_slice(&chunk[..room]);
                        return Ok((out, false));
                    }
                    out.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok((out, true)),
                Err(e) if e.is_timeout() => return Err(self.transport_failure(&e)),
                Err(_) => {
                    return Err(ToolFailure::new(
                        FailureKind::Unreachable,
                        format!(
                            "tool {}: the connection to {} broke while it was answering",
                            self.tool, self.host
                        ),
                    ))
                }
            }
        }
    }

    fn too_large(&self) -> ToolFailure {
        ToolFailure::new(
            FailureKind::TooLarge,
            format!(
                "tool {} answered with more than {} KB, too much to use",
                self.tool,
                MAX_OUTPUT_BYTES / 1024
            ),
        )
    }

    /// A send error in words, from its kind and its causes: never reqwest's own message, which quotes
    /// the whole URL.
    fn transport_failure(&self, e: &reqwest::Error) -> ToolFailure {
        let (tool, host) = (self.tool, self.host);
        if e.is_timeout() {
            return ToolFailure::new(
                FailureKind::Timeout,
                format!("tool {tool} did not answer in time"),
            );
        }
        let why = cause(e);
        ToolFailure::new(
            FailureKind::Unreachable,
            format!("tool {tool} could not reach {host} ({why})"),
        )
    }

    /// The start of a refusal's body, on one line, at most [`SNIPPET_CHARS`] characters, without the
    /// endpoint's query string or the tool's secret should the endpoint echo them.
    fn snippet(&self, body: &[u8]) -> String {
        let mut text = String::from_utf8_lossy(body).into_owned();
        if !self.query.is_empty() {
            text = text.replace(self.query, "…");
        }
        if let Some(secret) = self.secret.filter(|s| !s.is_empty()) {
            text = text.replace(secret.expose(), "***");
        }
        let one_line = text
            .split(|c: char| c.is_whitespace() || c.is_control())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if one_line.chars().count() <= SNIPPET_CHARS {
            one_line
        } else {
            let mut cut: String = one_line.chars().take(SNIPPET_CHARS - 1).collect();
            cut.push('…');
            cut
        }
    }
}

/// Why a connection failed, in a few words, from the error's causes (refused, name, TLS, …).
fn cause(e: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut texts = Vec::new();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused",
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                    return "the connection was dropped"
                }
                std::io::ErrorKind::TimedOut => return "the connection timed out",
                _ => {}
            }
        }
        texts.push(err.to_string().to_ascii_lowercase());
        source = err.source();
    }
    let said = |needle: &str| texts.iter().any(|t| t.contains(needle));
    if said("dns") || said("resolve") || said("lookup") {
        "its name did not resolve"
    } else if said("certificate") || said("tls") || said("handshake") {
        "the secure connection failed"
    } else if e.is_connect() {
        "the connection failed"
    } else {
        "the request failed"
    }
}

fn timeout_failure(tool: &str, timeout_ms: u64) -> ToolFailure {
    ToolFailure::new(
        FailureKind::Timeout,
        format!(
            "tool {tool} did not answer within {} s",
            seconds(timeout_ms)
        ),
    )
}

/// `8000` → `8`, `1500` → `1.5`, `250` → `0.25`: how a person says it.
fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        return (ms / 1000).to_string();
    }
    let text = format!("{}.{:03}", ms / 1000, ms % 1000);
    text.trim_end_matches('0').to_string()
}

/// `host` or `host:port` (an explicit port only): what failure messages may name.
fn host_label(url: &url::Url) -> String {
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        None => "its endpoint".to_string(),
    };
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// `application/json` and the `+json` family (`application/problem+json`, …).
fn is_json_type(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> ToolEndpoint {
        ToolEndpoint {
            url: url.to_string(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    #[test]
    fn endpoints_default_their_timeout_and_refuse_unknown_fields() {
        let e: ToolEndpoint = serde_json::from_str(r#"{"url": "https://x.example/t"}"#).unwrap();
        assert_eq!(e.timeout_ms, 8000);
        assert!(
            serde_json::from_str::<ToolEndpoint>(r#"{"url": "https://x", "tmeout": 1}"#).is_err()
        );
    }

    #[test]
    fn validate_allows_https_and_loopback_http_only() {
        for ok in [
            "https://api.example.com/tools/order?key=1",
            "http://127.0.0.1:8080/t",
            "http://127.8.9.10/t",
            "http://[::1]:9000/t",
            "http://localhost:3000/t",
            "http://LOCALHOST/t",
        ] {
            assert_eq!(endpoint(ok).validate(), Ok(()), "{ok}");
        }
        for bad in [
            "http://api.example.com/t",
            "http://10.0.0.1/t",
            "http://localhost.evil.com/t",
            "ftp://example.com/t",
            "https://user:pw@example.com/t?token=abc",
            "https://user@example.com/t",
            "not a url",
        ] {
            let why = endpoint(bad).validate().unwrap_err();
            assert!(
                !why.contains("pw") && !why.contains("token=abc"),
                "{bad}: {why}"
            );
        }
        for (ms, ok) in [(99, false), (100, true), (60_000, true), (60_001, false)] {
            let e = ToolEndpoint {
                timeout_ms: ms,
                ..endpoint("https://example.com")
            };
            assert_eq!(e.validate().is_ok(), ok, "{ms}");
        }
    }

    #[test]
    fn signatures_round_trip_and_refuse_tampering_and_replays() {
        let secret = b"tool-secret-0123456789";
        let body = br#"{"call_sid":"CA1","tool":"t","call_id":"c","arguments":{}}"#;
        let header = sign(secret, 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="), "{header}");
        assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
        assert_eq!(verify(secret, &header, body, 1_700_000_010, 300), Ok(()));
        assert!(verify(secret, &header, b"{}", 1_700_000_010, 300).is_err());
        assert!(verify(b"other", &header, body, 1_700_000_010, 300).is_err());
        assert!(verify(secret, &header, body, 1_700_000_301, 300)
            .unwrap_err()
            .contains("replay"));
        assert!(verify(secret, &header, body, 1_699_999_000, 300).is_err());
        assert!(verify(secret, "v1=00", body, 1_700_000_000, 300).is_err());
        assert!(verify(secret, "t=1700000000", body, 1_700_000_000, 300).is_err());
        assert!(verify(secret, "t=1700000000,v1=zz", body, 1_700_000_000, 300).is_err());
        // A rotated secret: the endpoint accepts either entry.
        let rotated = format!("{header},v1={}", "ab".repeat(32));
        assert_eq!(verify(secret, &rotated, body, 1_700_000_000, 300), Ok(()));
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"secret", b"1.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign(b"secret", 1, b"{}"),
            "t=1,v1=1122767b193110cfec322b6f199b599edbf608ed087f2d27afb0b97d99523908"
        );
    }

    #[test]
    fn seconds_read_as_people_say_them() {
        assert_eq!(seconds(8000), "8");
        assert_eq!(seconds(1500), "1.5");
        assert_eq!(seconds(250), "0.25");
        assert_eq!(seconds(100), "0.1");
        assert_eq!(
            timeout_failure("lookup_order", 8000).message,
            "tool lookup_order did not answer within 8 s"
        );
    }

    #[test]
    fn snippets_are_short_single_lines_without_query_or_secret() {
        let secret = Secret::new("s3cr3t-value");
        let exchange = Exchange {
            tool: "t",
            host: "example.com",
            query: "token=abc",
            secret: Some(&secret),
        };
        let snippet =
            exchange.snippet(b"<h1>Oops</h1>\n\n\tGET /t?token=abc failed, key s3cr3t-value\r\n");
        assert_eq!(snippet, "<h1>Oops</h1> GET /t?… failed, key ***");
        let long = exchange.snippet("é".repeat(500).as_bytes());
        assert_eq!(long.chars().count(), 200);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_type("application/json"));
        assert!(is_json_type("Application/JSON; charset=utf-8"));
        assert!(is_json_type("application/problem+json"));
        assert!(!is_json_type("text/plain"));
        assert!(!is_json_type("text/json+html"));
    }
}
