//! The axum router: Twilio's webhook and media socket, health, and (later) the local `/api`.
//! Handlers are thin: they check the request and hand over to [`crate::services`] or [`crate::calls`].

pub mod public_url;
pub mod twilio;

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};

use crate::services::Services;

/// The whole HTTP surface of a running core.
pub fn router(services: Arc<Services>) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .merge(twilio::routes())
        .with_state(services)
}

async fn health(
    axum::extract::State(services): axum::extract::State<Arc<Services>>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "active_calls": services.registry.active_count()}))
}
