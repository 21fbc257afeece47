//! The two routers a running core serves, one per listener:
//!
//! - [`public_router`]: what a tunnel or proxy forwards to, so what the internet reaches. Only Twilio's
//!   routes (signature first, see [`twilio`]) and a bare `/healthz` without figures; everything else,
//!   `/api` included, is a 404 without running any `/api` code.
//! - [`local_router`]: `/api` (the API key on every route), `/api/events` and the full `/healthz` (live
//!   call count). Bound to loopback unless the user exposes it on purpose.
//!
//! Handlers are thin: they check the request and hand over to [`crate::services`] or [`crate::calls`].
//! `/api` handlers take their inputs through [`extract`] (a bad request is an [`errors::ApiError`]) and
//! its routes are one table in [`api`].
//!
//! Layers, outermost first: request logging (no secrets), security headers, then per area: `/api` gets
//! CORS, its own rate limit, a body limit and the API key; Twilio's routes get their own limit, spent only
//! by requests Twilio did not sign ([`limits::twilio_rate_limit`]), so no flood without a secret can block
//! call set-up. Connections, request heads and bodies are bounded below the router ([`http`]).
//!
//! `verbio serve` runs all of it on a runtime sized by [`runtime`].

pub mod api;
pub mod auth;
pub mod errors;
pub mod extract;
pub mod http;
pub mod limits;
pub mod media_upgrade;
pub mod operator_api;
pub mod public_url;
pub mod range;
pub mod recordings_api;
pub mod runtime;
pub mod tools_api;
pub mod twilio;
pub mod twilio_recordings;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::{Json, Router};

use crate::services::Services;

/// The public listener's router: Twilio's routes and a bare health check, nothing else.
pub fn public_router(services: Arc<Services>) -> Router {
    let twilio = twilio::routes().layer(from_fn_with_state(
        limits::TwilioLimiter::per_minute(services.config.twilio_rate_per_minute),
        limits::twilio_rate_limit,
    ));
    Router::new()
        .route("/healthz", get(bare_health))
        .merge(twilio)
        .fallback(not_found)
        .with_state(services.clone())
        .layer(from_fn_with_state(services, limits::security_headers))
        .layer(limits::request_logging())
}

/// The local listener's router: `/api` and the full health. Twilio's routes are not here (404): Twilio
/// only ever reaches the public listener.
pub fn local_router(services: Arc<Services>) -> Router {
    let config = &services.config;
    let api = api::routes()
        .layer(from_fn_with_state(services.clone(), auth::require_api_key))
        .layer(DefaultBodyLimit::max(api::API_BODY_LIMIT))
        .layer(from_fn_with_state(
            limits::IpLimiter::per_minute(config.api_rate_per_minute),
            limits::rate_limit,
        ))
        .layer(limits::cors(&config.cors_origins));
    Router::new()
        .route("/healthz", get(health))
        .nest("/api", api)
        .fallback(not_found)
        .with_state(services.clone())
        .layer(from_fn_with_state(services, limits::security_headers))
        .layer(limits::request_logging())
}

/// What the internet may know: the process answers.
async fn bare_health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// For this machine: with the live call count.
async fn health(
    axum::extract::State(services): axum::extract::State<Arc<Services>>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "active_calls": services.registry.active_count()}))
}

async fn not_found() -> errors::ApiError {
    errors::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}
