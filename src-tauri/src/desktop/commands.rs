//! Tauri commands: one line each into [`Services`](crate::services::Services). No logic lives here.
//!
//! Every command waits until the core has started (start-up takes milliseconds), so the UI never
//! sees a "starting" error; if the core could not start, each command fails with the reason.

use serde::{Serialize, Serializer};
use tauri::State;

use super::Core;
use crate::services::{ActiveCall, AppStatus, ServiceError};

/// What a command returns to the webview on failure: serialized as a plain message string.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The core did not start; carries the reason (shown in the window's header).
    #[error("{0}")]
    NotRunning(String),
    #[error("Verbio is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl Serialize for CommandError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

/// Where the app listens and what Twilio must be given, or why the core is not running.
#[tauri::command]
pub async fn app_status(core: State<'_, Core>) -> Result<AppStatus, CommandError> {
    Ok(core.services().await?.status())
}

/// The calls in progress, oldest first as the core lists them.
#[tauri::command]
pub async fn active_calls(core: State<'_, Core>) -> Result<Vec<ActiveCall>, CommandError> {
    Ok(core.services().await?.active_calls())
}

/// Ends a live call. The UI sees the end as a `call_ended` event.
#[tauri::command]
pub async fn hang_up(core: State<'_, Core>, call_sid: String) -> Result<(), CommandError> {
    Ok(core.services().await?.hang_up(&call_sid)?)
}
