//! The desktop door: a Tauri window over the core.
//!
//! [`run`] builds the app, starts the core ([`crate::services::start`]) on Tauri's async runtime,
//! forwards every [`CallEvent`](crate::calls::events::CallEvent) to the webview as a `call-event`
//! and exposes the thin commands in [`commands`]. A core that fails to start (port in use, bad
//! settings) does not stop the window: the UI shows why, through `app_status`.

mod commands;
mod state;

use std::time::Duration;

use tauri::{AppHandle, Emitter, Manager, RunEvent};
use tokio::sync::broadcast::{self, error::RecvError};
use tracing::{error, info, warn};

use crate::calls::events::CallEvent;
use crate::config::{Config, ConfigError};

pub use self::commands::CommandError;
pub use self::state::Core;

/// Tauri event carrying one serialized `CallEvent`.
pub const CALL_EVENT: &str = "call-event";
/// Tauri event sent when the forwarder fell behind the bus; the payload is how many events were lost.
pub const CALL_EVENTS_SKIPPED: &str = "call-events-skipped";

/// How long closing the window waits for the core's server to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    #[error("cannot run the desktop window: {0}")]
    Tauri(#[from] tauri::Error),
}

/// Runs the desktop app until its window is closed.
pub fn run() -> Result<(), DesktopError> {
    let config = Config::load();
    let app = tauri::Builder::default()
        .manage(Core::new())
        .invoke_handler(tauri::generate_handler![
            commands::app_status,
            commands::active_calls,
            commands::hang_up,
        ])
        .setup(move |app| {
            tauri::async_runtime::spawn(start_core(app.handle().clone(), config));
            Ok(())
        })
        .build(tauri::generate_context!())?;

    app.run(|app, event| {
        if let RunEvent::Exit = event {
            let core = app.state::<Core>();
            tauri::async_runtime::block_on(async {
                if tokio::time::timeout(SHUTDOWN_GRACE, core.shutdown())
                    .await
                    .is_err()
                {
                    warn!("the call bridge did not stop within {SHUTDOWN_GRACE:?}; exiting anyway");
                }
            });
        }
    });
    Ok(())
}

/// Starts the core, records the outcome in [`Core`] and then forwards its events for the app's lifetime.
async fn start_core(app: AppHandle, config: Result<Config, ConfigError>) {
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            error!(error = %e, "invalid settings; the call bridge is not running");
            app.state::<Core>().failed(format!("invalid settings: {e}"));
            return;
        }
    };
    match crate::services::start(config).await {
        Ok(running) => {
            info!(local_addr = %running.local_addr, "call bridge started");
            let events = running.services.subscribe();
            app.state::<Core>().started(running);
            forward_events(&app, events).await;
        }
        Err(e) => {
            error!(error = %e, "the call bridge did not start");
            app.state::<Core>().failed(e.to_string());
        }
    }
}

/// Forwards bus events to the webview until the bus closes. A slow webview loses events (the bus never
/// waits for it); it is told how many, so it can re-sync with `active_calls`.
async fn forward_events(app: &AppHandle, mut events: broadcast::Receiver<CallEvent>) {
    loop {
        match events.recv().await {
            Ok(event) => {
                if let Err(e) = app.emit(CALL_EVENT, &event) {
                    warn!(error = %e, "cannot forward a call event to the window");
                }
            }
            Err(RecvError::Lagged(skipped)) => {
                warn!(skipped, "the window fell behind the call events");
                let _ = app.emit(CALL_EVENTS_SKIPPED, skipped);
                continue;
            }
            Err(RecvError::Closed) => break,
        }
    }
}
