//! Rate limits (the `governor` crate), the refusal log, security headers, CORS and request logging.
//!
//! Twilio's routes are limited by trust, not only by client IP: through a tunnel every client, Twilio
//! included, arrives from 127.0.0.1, so one shared per-IP quota would let anyone without a secret use up
//! Twilio's share. Requests without `X-Twilio-Signature`, and requests whose signature is refused, spend
//! a per-IP quota of their own ([`TwilioLimiter`]); a request whose signature checks out spends nothing and is
//! never refused here (it is bounded by the server's connection cap and timeouts, `server::http`).
//!
//! Refusals (any 4xx) are logged through [`RefusalLog`]: at most one line per kind every
//! [`REFUSAL_LOG_EVERY`], counting the ones in between, so a flood cannot flood the log.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{OnResponse, TraceLayer};
use tracing::Span;

use crate::logging::redact_query;
use crate::server::errors::ApiError;

/// Origins of the Tauri webview (always allowed).
pub const TAURI_ORIGINS: &[&str] = &[
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
];

/// `X-Twilio-Signature` (header names are lower case on the wire model).
const SIGNATURE: header::HeaderName = header::HeaderName::from_static("x-twilio-signature");

/// How often a limiter drops the keys it no longer needs (clients whose quota is whole again).
const PRUNE_EVERY: Duration = Duration::from_secs(30);
/// Keys kept before an early prune: a flood from many addresses must not grow the map for 30 s.
const PRUNE_ABOVE_KEYS: usize = 4096;
/// The shortest gap between two log lines for the same kind of refusal.
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Why a request was refused: read by [`twilio_rate_limit`] and the request log from the response's
/// extensions. Never holds a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `X-Twilio-Signature` missing, wrong or uncheckable; the reason is safe to log.
    Signature(&'static str),
    /// Over a rate limit.
    RateLimited,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Signature(reason) => reason,
            Refusal::RateLimited => "over the rate limit",
        }
    }

    /// `response`, marked as refused for this reason.
    pub fn mark(self, mut response: Response) -> Response {
        response.extensions_mut().insert(self);
        response
    }
}

/// A keyed (per client IP; per /64 for IPv6) limiter shared by the routes it guards. Its map is pruned
/// as it goes: keys whose quota is whole again are dropped every `PRUNE_EVERY`, or earlier once there
/// are more than `PRUNE_ABOVE_KEYS`.
#[derive(Clone)]
pub struct IpLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// When the map was last pruned, in ms since `epoch`.
    pruned_at_ms: Arc<AtomicU64>,
    epoch: Instant,
    checks: Arc<AtomicU64>,
}

impl IpLimiter {
    pub fn per_minute(n: u32) -> Self {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        IpLimiter {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(n))),
            pruned_at_ms: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
            checks: Arc::new(AtomicU64::new(0)),
        }
    }

    /// `Ok` or the whole seconds to wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.prune_if_due();
        self.limiter
            .check_key(&limiter_key(ip))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            })
    }

    /// Clients the limiter currently remembers.
    pub fn tracked_clients(&self) -> usize {
        self.limiter.len()
    }

    /// Forgets every client whose quota is whole again (it would be remembered exactly as a new one).
    pub fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn prune_if_due(&self) {
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let last = self.pruned_at_ms.load(Ordering::Relaxed);
        // `len` walks the map's shards: looked at on every 256th check only.
        let nth = self.checks.fetch_add(1, Ordering::Relaxed);
        let due = now_ms.saturating_sub(last) >= PRUNE_EVERY.as_millis() as u64
            || (nth % 256 == 255 && self.limiter.len() > PRUNE_ABOVE_KEYS);
        // One caller prunes; the others go on.
        if due
            && self
                .pruned_at_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.prune();
        }
    }
}

/// The address a quota belongs to: IPv6 clients by their /64 (one host usually holds the whole /64, so
/// per-address keys would give it 2^64 quotas and the map as many entries).
fn limiter_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// 429 with `Retry-After`, marked [`Refusal::RateLimited`].
fn too_many_requests(wait_secs: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; retry in {wait_secs} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&wait_secs.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Refusal::RateLimited.mark(response)
}

/// Middleware: 429 with `Retry-After` once a client IP spends its quota.
pub async fn rate_limit(
    State(limiter): State<IpLimiter>,
    request: Request,
    next: Next,
) -> Response {
    match limiter.check(client_ip(&request)) {
        Ok(()) => next.run(request).await,
        Err(wait_secs) => too_many_requests(wait_secs),
    }
}

/// The limit on Twilio's routes: only requests Twilio did not sign spend a quota (per client IP).
#[derive(Clone)]
pub struct TwilioLimiter {
    untrusted: IpLimiter,
}

impl TwilioLimiter {
    /// `untrusted_per_minute` unsigned or badly signed requests per client IP.
    pub fn per_minute(untrusted_per_minute: u32) -> Self {
        TwilioLimiter {
            untrusted: IpLimiter::per_minute(untrusted_per_minute),
        }
    }
}

/// Middleware for Twilio's routes.
/// - No `X-Twilio-Signature`: Twilio signs everything it sends, so this is never Twilio; it spends the
///   untrusted quota and, once that is gone, gets 429 before its body is read.
/// - A signature: checked by the route (`server::twilio`), since only the check can tell Twilio from a
///   forgery. A refused one then spends the untrusted quota (over it, its 403 becomes a 429); an
///   accepted one spends nothing, so no flood without the secret can make Twilio's requests fail here.
pub async fn twilio_rate_limit(
    State(limiter): State<TwilioLimiter>,
    request: Request,
    next: Next,
) -> Response {
    let ip = client_ip(&request);
    if !request.headers().contains_key(SIGNATURE) {
        if let Err(wait_secs) = limiter.untrusted.check(ip) {
            return too_many_requests(wait_secs);
        }
        return next.run(request).await;
    }
    let response = next.run(request).await;
    if let Some(Refusal::Signature(_)) = response.extensions().get::<Refusal>() {
        if let Err(wait_secs) = limiter.untrusted.check(ip) {
            return too_many_requests(wait_secs);
        }
    }
    response
}

/// Rate-limited logging of refusals: per kind (status and reason), the first one is logged, then at most
/// one line every `every`, saying how many went unlogged in between.
pub struct RefusalLog {
    every: Duration,
    kinds: Mutex<HashMap<(u16, &'static str), LogWindow>>,
}

struct LogWindow {
    logged_at: Instant,
    unlogged: u64,
}

impl RefusalLog {
    pub fn new(every: Duration) -> Self {
        RefusalLog {
            every,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a refusal at `now`. `Some(n)`: log it, with `n` refusals of its kind not logged since the
    /// last line; `None`: counted only. Kinds are few (status × a fixed set of reasons), so the map stays small.
    pub fn note(&self, status: u16, reason: &'static str, now: Instant) -> Option<u64> {
        let mut kinds = self.kinds.lock().unwrap_or_else(|p| p.into_inner());
        match kinds.get_mut(&(status, reason)) {
            None => {
                kinds.insert(
                    (status, reason),
                    LogWindow {
                        logged_at: now,
                        unlogged: 0,
                    },
                );
                Some(0)
            }
            Some(w) if now.saturating_duration_since(w.logged_at) >= self.every => {
                w.logged_at = now;
                Some(std::mem::take(&mut w.unlogged))
            }
            Some(w) => {
                w.unlogged += 1;
                None
            }
        }
    }
}

/// Middleware: security headers on every response; HSTS only while the live public URL is https.
pub async fn security_headers(
    State(services): State<std::sync::Arc<crate::services::Services>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let hsts = services
        .public_url()
        .is_some_and(|u| u.starts_with("https://"));
    let h = response.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
    );
    if hsts {
        h.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    response
}

/// Request logging through `tower-http`'s trace layer: a span per request with the method and the path
/// (every query value replaced by `REDACTED`), and one line when it is answered with status and latency;
/// refusals (4xx) go through a [`RefusalLog`] instead. Headers and bodies are never logged: they can hold
/// keys and tokens.
pub fn request_logging() -> RequestLogging {
    TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request) -> Span)
        .on_request(())
        .on_response(LogResponse {
            refusals: Arc::new(RefusalLog::new(REFUSAL_LOG_EVERY)),
        })
}

/// The trace layer as configured by [`request_logging`].
pub type RequestLogging =
    TraceLayer<SharedClassifier<ServerErrorsAsFailures>, fn(&Request) -> Span, (), LogResponse>;

fn request_span(request: &Request) -> Span {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| redact_query(p.as_str()))
        .unwrap_or_default();
    tracing::info_span!("http", method = %request.method(), %path)
}

/// The answer's log line: every answer, except that refusals are rate-limited.
#[derive(Clone)]
pub struct LogResponse {
    refusals: Arc<RefusalLog>,
}

impl<B> OnResponse<B> for LogResponse {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, _span: &Span) {
        let status = response.status().as_u16();
        let latency_ms = latency.as_secs_f64() * 1000.0;
        if !response.status().is_client_error() {
            tracing::info!(target: "verbio::http", status, latency_ms, "request");
            return;
        }
        let refusal = response.extensions().get::<Refusal>().copied();
        let reason = refusal.map_or("", Refusal::reason);
        let Some(unlogged) = self.refusals.note(status, reason, Instant::now()) else {
            return;
        };
        let every_s = REFUSAL_LOG_EVERY.as_secs();
        // A refused signature may be Twilio's own request (a wrong token, a URL that changed): worth a warning.
        if let Some(Refusal::Signature(reason)) = refusal {
            tracing::warn!(target: "verbio::http", status, latency_ms, reason, unlogged,
                "refused: Twilio signature (at most one such line every {every_s} s; `unlogged` = refused since the last)");
        } else {
            tracing::info!(target: "verbio::http", status, latency_ms, reason, unlogged,
                "refused (at most one such line every {every_s} s; `unlogged` = refused since the last)");
        }
    }
}

/// CORS for `/api`: the Tauri webview plus configured origins; only the API's methods and headers.
pub fn cors(extra_origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = TAURI_ORIGINS
        .iter()
        .map(|o| o.to_string())
        .chain(extra_origins.iter().cloned())
        .filter_map(|o| HeaderValue::from_str(&o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-api-key"),
        ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_of_one_kind_are_logged_once_per_window_with_a_count() {
        let log = RefusalLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(log.note(403, "missing", t0), Some(0), "the first is logged");
        let later =
            (1..1000).filter_map(|i| log.note(403, "missing", t0 + Duration::from_millis(i)));
        assert_eq!(later.count(), 0, "the rest of the window is only counted");
        assert_eq!(
            log.note(429, "", t0),
            Some(0),
            "another kind has its own window"
        );
        assert_eq!(
            log.note(403, "missing", t0 + Duration::from_secs(10)),
            Some(999),
            "the next line says how many went unlogged"
        );
        assert_eq!(log.note(403, "missing", t0 + Duration::from_secs(11)), None);
    }

    #[test]
    fn a_limiter_forgets_clients_whose_quota_is_whole_again() {
        // 6000 a minute: a spent cell comes back in 10 ms.
        let limiter = IpLimiter::per_minute(6000);
        for i in 0..200u8 {
            assert!(limiter.check(IpAddr::from([10, 0, 1, i])).is_ok());
        }
        assert_eq!(limiter.tracked_clients(), 200);
        std::thread::sleep(Duration::from_millis(50));
        limiter.prune();
        assert_eq!(limiter.tracked_clients(), 0);
    }

    #[test]
    fn ipv6_clients_share_a_quota_per_64() {
        let limiter = IpLimiter::per_minute(2);
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert!(limiter.check(a).is_ok());
        assert!(limiter.check(b).is_ok());
        assert!(limiter.check(a).is_err(), "same /64, quota spent");
        assert!(limiter.check(other).is_ok());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(limiter_key(mapped), IpAddr::from([192, 0, 2, 7]));
    }
}
