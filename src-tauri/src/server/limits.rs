//! Per-client-IP rate limits (the `governor` crate), security headers, CORS and request logging.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::logging::redact_query;
use crate::server::errors::ApiError;

/// Origins of the Tauri webview (always allowed).
pub const TAURI_ORIGINS: &[&str] = &[
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
];

/// A keyed (per client IP) limiter shared by the routes it guards.
#[derive(Clone)]
pub struct IpLimiter {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl IpLimiter {
    pub fn per_minute(n: u32) -> Self {
        let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        IpLimiter {
            limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// `Ok` or the whole seconds to wait.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// Middleware: 429 with `Retry-After` once a client IP spends its quota.
pub async fn rate_limit(
    State(limiter): State<IpLimiter>,
    request: Request,
    next: Next,
) -> Response {
    match limiter.check(client_ip(&request)) {
        Ok(()) => next.run(request).await,
        Err(wait_secs) => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests; retry in {wait_secs} s"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait_secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            response
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
/// (every query value replaced by `REDACTED`), and one line when it is answered with status and latency.
/// Headers and bodies are never logged: they can hold keys and tokens.
pub fn request_logging() -> RequestLogging {
    TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request) -> Span)
        .on_request(())
        .on_response(log_response as fn(&Response, Duration, &Span))
}

/// The trace layer as configured by [`request_logging`].
pub type RequestLogging = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request) -> Span,
    (),
    fn(&Response, Duration, &Span),
>;

fn request_span(request: &Request) -> Span {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| redact_query(p.as_str()))
        .unwrap_or_default();
    tracing::info_span!("http", method = %request.method(), %path)
}

fn log_response(response: &Response, latency: Duration, _span: &Span) {
    tracing::info!(
        target: "verbio::http",
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
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
