//! The desktop door: a Tauri window and tray icon over the core.
//!
//! [`run`] builds the app (single instance, notifications, tray), starts the core
//! ([`crate::app::start`]) on Tauri's async runtime with secrets from the OS keychain, forwards every
//! [`CallEvent`](crate::events::CallEvent) to the webview as a `call-event` (and to the tray and
//! notifications), forwards recording playback positions as `playback-position` and live calls' levels as
//! `call-levels` ([`levels`], while the window is visible), and exposes the thin
//! commands in [`commands`], `call_commands`, `operator_commands`, `tool_commands` and `summary_commands`. A core that fails to start (port in use,
//! bad settings) does not stop the window: the UI shows why, through `app_status`.
//!
//! Closing the window hides it when the tray icon was built: calls keep running and the tray icon stays.
//! Without a tray icon (nothing could bring the window back) closing it quits instead ([`close_action`]).
//! "Quit" (tray, window or a close without tray) asks for confirmation when calls are live, then ends them
//! cleanly.

pub mod alerts;
mod call_commands;
mod commands;
mod insight_commands;
mod levels;
mod operator_commands;
mod state;
mod summary_commands;
mod tool_commands;
mod tray;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, RunEvent, WindowEvent};
use tokio::sync::broadcast::{self, error::RecvError};
use tracing::{error, info, warn};

use crate::config::{Config, ConfigError};
use crate::events::CallEvent;
use crate::onboarding::ApiBases;
use crate::secrets::Secrets;

pub use self::commands::CommandError;
pub use self::state::Core;

/// Tauri event carrying one serialized `CallEvent`.
pub const CALL_EVENT: &str = "call-event";
/// Tauri event sent when the forwarder fell behind the bus; the payload is how many events were lost.
pub const CALL_EVENTS_SKIPPED: &str = "call-events-skipped";
/// Tauri event sent after the core (re)started, so the window re-reads its status.
pub const CORE_RESTARTED: &str = "core-restarted";
/// Tauri event carrying one serialized [`PlaybackEvent`](crate::recording::playback::PlaybackEvent):
/// the position of the recording playing through the speakers, and when it finished or stopped.
pub const PLAYBACK_POSITION: &str = "playback-position";

/// How long exiting waits for the core's server to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    #[error("cannot run the desktop window: {0}")]
    Tauri(#[from] tauri::Error),
}

/// What the window may know about the shell.
#[derive(Debug, Clone, Serialize)]
pub struct DesktopInfo {
    pub notifications: bool,
    pub tray: bool,
}

/// Desktop-only state shared by the commands.
pub struct Desktop {
    pub secrets: Secrets,
    pub bases: ApiBases,
    notifier: std::sync::Arc<alerts::Notifier>,
    tray: AtomicBool,
    alerts: Mutex<alerts::AlertTracker>,
    /// When `run` began, for the start-up time.
    started: std::time::Instant,
    interactive: AtomicBool,
}

impl Desktop {
    /// The live calls the tray lists, with their other party.
    fn live_calls(&self) -> Vec<(String, Option<String>)> {
        self.alerts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .live()
    }

    /// The window asks once it has rendered and the core answered: that moment is logged as the start-up time.
    pub fn info(&self) -> DesktopInfo {
        if !self.interactive.swap(true, Ordering::Relaxed) {
            info!(
                startup_ms = self.started.elapsed().as_millis() as u64,
                "window interactive"
            );
        }
        DesktopInfo {
            notifications: self.notifier.native(),
            tray: self.tray.load(Ordering::Relaxed),
        }
    }
}

/// What closing the main window does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseAction {
    /// Hide it: the app and its calls keep running, the tray icon brings it back.
    HideToTray,
    /// Quit through [`tray::request_quit`] (which confirms first while calls are live).
    Quit,
}

/// Hiding is only safe when there is a tray icon to show the window again and to quit from.
fn close_action(tray_built: bool) -> CloseAction {
    if tray_built {
        CloseAction::HideToTray
    } else {
        CloseAction::Quit
    }
}

/// Settings file and env, then secrets the environment did not set from the OS keychain.
fn load_config(secrets: &Secrets) -> Result<Config, ConfigError> {
    let mut config = Config::load()?;
    match secrets.fill_config(&mut config) {
        Ok(filled) if !filled.is_empty() => {
            let names: Vec<&str> = filled.iter().map(|k| k.id()).collect();
            info!(secrets = ?names, "secrets read from the OS keychain");
        }
        Ok(_) => {}
        Err(e) => {
            warn!(error = %e, "cannot read secrets from the OS keychain; using the environment only")
        }
    }
    Ok(config)
}

/// Runs the desktop app until the user quits.
pub fn run() -> Result<(), DesktopError> {
    let started = std::time::Instant::now();
    let secrets = Secrets::system();
    let config = load_config(&secrets);
    let app = tauri::Builder::default()
        // First, so a second launch only brings the running window forward.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            info!("Verbio was started again; showing the running window");
            tray::show_window(app);
        }))
        .plugin(tauri_plugin_notification::init())
        .manage(Core::new())
        .manage(Desktop {
            secrets,
            bases: ApiBases::from_env(config.as_ref().map_or(
                crate::onboarding::DEFAULT_TWILIO_API_BASE,
                |c| c.telephony.api_base.as_str(),
            )),
            notifier: alerts::Notifier::probe(),
            tray: AtomicBool::new(false),
            alerts: Mutex::new(alerts::AlertTracker::default()),
            started,
            interactive: AtomicBool::new(false),
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_status,
            commands::active_calls,
            commands::hang_up,
            commands::transcriptions,
            commands::session_config,
            commands::update_session_config,
            commands::voices,
            commands::tools,
            commands::model_choices,
            commands::start_demo_call,
            commands::secrets_status,
            commands::set_secret,
            commands::generate_api_key,
            commands::delete_secret,
            commands::check_openai,
            commands::check_twilio,
            commands::basic_settings,
            commands::save_basic_settings,
            commands::apply_settings,
            commands::desktop_info,
            commands::quit_app,
            commands::request_quit,
            call_commands::place_call,
            call_commands::phone_numbers,
            call_commands::transfer_call,
            call_commands::webhook_setup,
            call_commands::choose_webhook_mode,
            call_commands::recordings,
            call_commands::recording,
            call_commands::call_recordings,
            call_commands::recording_peaks,
            call_commands::delete_recording,
            call_commands::export_recording,
            call_commands::suggested_export_path,
            call_commands::playback_play,
            call_commands::playback_pause,
            call_commands::playback_seek,
            call_commands::playback_stop,
            call_commands::playback_state,
            call_commands::audio_devices,
            call_commands::listen_in,
            call_commands::listen_mute,
            call_commands::listen_state,
            call_commands::listen_stop,
            operator_commands::operator_whisper,
            operator_commands::operator_take_over,
            operator_commands::operator_prepare,
            operator_commands::operator_hand_back,
            operator_commands::operator_mute,
            operator_commands::operator_state,
            operator_commands::input_devices,
            tool_commands::tools_pending,
            tool_commands::tool_decide,
            tool_commands::tool_log,
            tool_commands::tool_secret_status,
            tool_commands::tool_secret,
            tool_commands::mcp_statuses,
            insight_commands::call_latency,
            insight_commands::call_cost,
            insight_commands::daily_stats,
            insight_commands::get_prices,
            insight_commands::set_prices,
            insight_commands::get_budget,
            insight_commands::set_budget,
            summary_commands::call_summary,
            summary_commands::rerun_summary,
        ])
        .on_window_event(|window, event| {
            // Closing the window keeps the app (and its calls) running in the tray, if there is one.
            if let WindowEvent::CloseRequested { api, .. } = event {
                if window.label() == "main" {
                    api.prevent_close();
                    let tray_built = window.state::<Desktop>().tray.load(Ordering::Relaxed);
                    match close_action(tray_built) {
                        CloseAction::HideToTray => {
                            let _ = window.hide();
                            info!("window hidden; Verbio keeps running in the tray");
                        }
                        CloseAction::Quit => {
                            info!("window closed and there is no tray icon; quitting");
                            tray::request_quit(window.app_handle());
                        }
                    }
                }
            }
        })
        .setup(move |app| {
            alerts::register_actions(app.handle());
            match tray::build(app.handle()) {
                Ok(_) => app.state::<Desktop>().tray.store(true, Ordering::Relaxed),
                Err(e) => warn!(error = %e, "no tray icon on this desktop; closing the window quits Verbio (confirming first while calls are live)"),
            }
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

/// Starts the core, records the outcome in [`Core`] and then forwards its events until it stops.
async fn start_core(app: AppHandle, config: Result<Config, ConfigError>) {
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            error!(error = %e, "invalid settings; the call bridge is not running");
            app.state::<Core>().failed(format!("invalid settings: {e}"));
            return;
        }
    };
    match crate::app::start(config).await {
        Ok(running) => {
            info!(local_addr = %running.local_addr, api_addr = %running.api_addr, "call bridge started");
            let events = running.services.subscribe();
            let playback = running.services.recordings.playback_events();
            tauri::async_runtime::spawn(forward_playback(app.clone(), playback));
            let mcp = running.services.tools.subscribe_mcp();
            tauri::async_runtime::spawn(forward_mcp(app.clone(), mcp));
            app.state::<Core>().started(running);
            let _ = app.emit(CORE_RESTARTED, ());
            forward_events(&app, events).await;
        }
        Err(e) => {
            error!(error = %e, "the call bridge did not start");
            app.state::<Core>().failed(e.to_string());
        }
    }
}

/// Stops the core and starts it again with freshly loaded settings and secrets.
async fn restart_core(app: AppHandle) -> Result<(), CommandError> {
    let core = app.state::<Core>();
    // The session edited in the window (in memory, like `PUT /api/settings/session`) survives the restart.
    let session = core
        .current()
        .map(|services| services.prepare_restart())
        .transpose()
        .map_err(|refused| CommandError::Busy(refused.to_string()))?;
    core.stop_for_restart().await;
    let config = load_config(&app.state::<Desktop>().secrets).map(|mut config| {
        if let Some(session) = session {
            config.session = session;
        }
        config
    });
    tauri::async_runtime::spawn(start_core(app.clone(), config));
    core.services().await.map(|_| ())
}

/// Forwards bus events to the webview, the tray and notifications until the bus closes. A slow webview
/// loses events (the bus never waits for it); it is told how many, so it can re-sync with `active_calls`, and
/// the tray's call list is re-synced the same way ([`resync_tray`]).
/// Tauri event carrying an MCP server's new state ([`crate::tools::mcp::McpServerStatus`]).
pub const MCP_STATUS: &str = "mcp-status";

/// Forwards MCP servers' states to the window; a server that fails is also an alert (in the window
/// and as a notification), so a dead tool provider is seen wherever the operator is looking.
async fn forward_mcp(
    app: AppHandle,
    mut statuses: broadcast::Receiver<crate::tools::mcp::McpServerStatus>,
) {
    loop {
        match statuses.recv().await {
            Ok(status) => {
                if let Err(e) = app.emit(MCP_STATUS, &status) {
                    warn!(error = %e, "cannot forward an MCP status to the window");
                }
                if status.state == crate::tools::mcp::McpState::Failed {
                    let alert = alerts::mcp_failed(&status);
                    app.state::<Desktop>().notifier.deliver(&app, alert);
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        }
    }
}

async fn forward_events(app: &AppHandle, mut events: broadcast::Receiver<CallEvent>) {
    // The call the operator held when the tray was last built: its entry says "Hand back" instead.
    let mut held: Option<String> = None;
    loop {
        match events.recv().await {
            Ok(event) => {
                if let Err(e) = app.emit(CALL_EVENT, &event) {
                    warn!(error = %e, "cannot forward a call event to the window");
                }
                let desktop = app.state::<Desktop>();
                let (alert, live, new_call) = {
                    let mut tracker = desktop
                        .alerts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    // A call a re-sync already added has its level meter running.
                    let new_call = match &event {
                        CallEvent::CallStarted { call_sid, .. } => !tracker.is_live(call_sid),
                        _ => false,
                    };
                    (tracker.on_event(&event), tracker.live(), new_call)
                };
                let held_now = app
                    .state::<Core>()
                    .current()
                    .and_then(|services| services.operator.state())
                    .map(|state| state.call_sid);
                if matches!(
                    event,
                    CallEvent::CallStarted { .. } | CallEvent::CallEnded { .. }
                ) || held_now != held
                {
                    held = held_now;
                    tray::refresh(app, &live);
                }
                if let Some(alert) = alert {
                    desktop.notifier.deliver(app, alert);
                }
                if let CallEvent::CallStarted { call_sid, .. } = &event {
                    if new_call {
                        if let Some(services) = app.state::<Core>().current() {
                            tauri::async_runtime::spawn(levels::meter_call(
                                app.clone(),
                                services,
                                call_sid.clone(),
                            ));
                        }
                    }
                }
            }
            Err(RecvError::Lagged(skipped)) => {
                warn!(skipped, "the window fell behind the call events");
                let _ = app.emit(CALL_EVENTS_SKIPPED, skipped);
                resync_tray(app);
                continue;
            }
            Err(RecvError::Closed) => break,
        }
    }
}

/// After lost events, re-reads the live calls from the core ([`Services::active_calls`]) for the tray's call
/// list (built from `call_started`/`call_ended`, one of which may have been lost), and starts the level
/// meters of calls whose `call_started` was lost.
///
/// [`Services::active_calls`]: crate::services::Services::active_calls
fn resync_tray(app: &AppHandle) {
    let Some(services) = app.state::<Core>().current() else {
        return;
    };
    let active: Vec<alerts::LiveCall> = services.active_calls().iter().map(Into::into).collect();
    let desktop = app.state::<Desktop>();
    let (added, live) = {
        let mut tracker = desktop
            .alerts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (tracker.sync_active(&active), tracker.live())
    };
    tray::refresh(app, &live);
    for call_sid in added {
        tauri::async_runtime::spawn(levels::meter_call(app.clone(), services.clone(), call_sid));
    }
}

/// Forwards playback positions to the window until the player goes away. Positions are frequent and each
/// supersedes the last, so a lagging receiver just carries on with the newest.
async fn forward_playback(
    app: AppHandle,
    mut events: broadcast::Receiver<crate::recording::playback::PlaybackEvent>,
) {
    loop {
        match events.recv().await {
            Ok(event) => {
                if let Err(e) = app.emit(PLAYBACK_POSITION, &event) {
                    warn!(error = %e, "cannot forward a playback event to the window");
                }
            }
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_the_window_hides_it_only_when_the_tray_can_bring_it_back() {
        assert_eq!(close_action(true), CloseAction::HideToTray);
        assert_eq!(close_action(false), CloseAction::Quit);
    }
}
