//! Tauri commands: one line each into the core ([`Services`](crate::services::Services),
//! [`secrets`](crate::secrets), [`onboarding`](crate::onboarding), [`settings_file`](crate::settings_file)).
//! No logic lives here.
//!
//! Every command that needs the core waits until it has started (start-up takes milliseconds), so the UI
//! never sees a "starting" error; if the core could not start, each such command fails with the reason.

use std::time::Duration;

use serde::{Serialize, Serializer};
use tauri::{AppHandle, State};

use super::{Core, Desktop};
use crate::calls::registry::ActiveCall;
use crate::onboarding::{KeyCheckError, ModelChoices, OpenAiCheck, TwilioCheck};
use crate::realtime::session::SessionConfig;
use crate::recording::LibraryError;
use crate::secrets::{GeneratedKey, SecretKind, SecretStatus, SecretsError};
use crate::services::demo::DemoCall;
use crate::services::{AppStatus, ErrorBody, ErrorKind, ServiceError, ToolInfo};
use crate::settings_file::{BasicSettings, SettingsFileError};
use crate::store::TranscriptRecord;
use crate::types::CallSid;

/// How long quitting waits for live calls to end after hanging them up.
const QUIT_GRACE: Duration = Duration::from_secs(5);

/// What a command returns to the webview on failure, serialized as `{"code", "message"}`: the shape of
/// `/api`'s errors, and for a service failure the same code (the services' one table, [`ErrorKind`]).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The core did not start; carries the reason (shown in the window's header).
    #[error("{0}")]
    NotRunning(String),
    #[error("Verbio is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Busy(String),
    /// A service failure, recordings included.
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    KeyCheck(#[from] KeyCheckError),
    #[error(transparent)]
    Settings(#[from] SettingsFileError),
}

impl From<LibraryError> for CommandError {
    fn from(e: LibraryError) -> Self {
        CommandError::Service(e.into())
    }
}

impl CommandError {
    /// The code and message the webview gets. Errors only the desktop has (keychain, key checks, the
    /// settings file, the core's own state) use the table's codes where one fits.
    pub fn body(&self) -> ErrorBody {
        let code = match self {
            CommandError::Service(e) => return e.body(),
            CommandError::NotRunning(_) => "not_running",
            CommandError::ShuttingDown => "shutting_down",
            CommandError::Busy(_) => "busy",
            CommandError::Secrets(
                SecretsError::Empty(_) | SecretsError::TooLong(_) | SecretsError::Weak { .. },
            )
            | CommandError::KeyCheck(KeyCheckError::Malformed(_))
            | CommandError::Settings(SettingsFileError::Invalid(_)) => {
                ErrorKind::InvalidValue.code()
            }
            CommandError::Secrets(SecretsError::Unavailable(_) | SecretsError::Keychain(_)) => {
                "keychain_unavailable"
            }
            CommandError::KeyCheck(KeyCheckError::Missing(_))
            | CommandError::Settings(SettingsFileError::NoConfigDir) => {
                ErrorKind::NotConfigured.code()
            }
            CommandError::KeyCheck(KeyCheckError::Rejected(_) | KeyCheckError::Forbidden(_)) => {
                "key_rejected"
            }
            CommandError::KeyCheck(KeyCheckError::NotFound(_)) => ErrorKind::NotFound.code(),
            CommandError::KeyCheck(
                KeyCheckError::Unreachable(_) | KeyCheckError::Unexpected(_),
            ) => "unreachable",
            CommandError::Settings(
                SettingsFileError::Read { .. } | SettingsFileError::Write { .. },
            ) => ErrorKind::FileError.code(),
        };
        ErrorBody {
            code,
            message: self.to_string(),
        }
    }
}

impl Serialize for CommandError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.body().serialize(serializer)
    }
}

pub(super) type Res<T> = Result<T, CommandError>;

/// Where the app listens and what Twilio must be given, or why the core is not running.
#[tauri::command]
pub async fn app_status(core: State<'_, Core>) -> Res<AppStatus> {
    Ok(core.services().await?.status())
}

/// The calls in progress, oldest first as the core lists them.
#[tauri::command]
pub async fn active_calls(core: State<'_, Core>) -> Res<Vec<ActiveCall>> {
    Ok(core.services().await?.active_calls())
}

/// Ends a call, the same way `POST /api/call/{sid}/end` does: its stream, and at Twilio (a ringing call
/// the app placed is cancelled). The UI sees the end as a `call_ended` event.
#[tauri::command]
pub async fn hang_up(core: State<'_, Core>, call_sid: CallSid) -> Res<()> {
    Ok(core.services().await?.end_call(&call_sid).await?)
}

#[tauri::command]
pub async fn transcriptions(
    core: State<'_, Core>,
    call_sid: CallSid,
) -> Res<Vec<TranscriptRecord>> {
    Ok(core.services().await?.transcriptions(&call_sid).await?)
}

#[tauri::command]
pub async fn session_config(core: State<'_, Core>) -> Res<SessionConfig> {
    Ok(core.services().await?.session_config())
}

#[tauri::command]
pub async fn update_session_config(
    core: State<'_, Core>,
    session: SessionConfig,
) -> Res<SessionConfig> {
    Ok(core.services().await?.update_session_config(session)?)
}

#[tauri::command]
pub async fn voices(core: State<'_, Core>) -> Res<Vec<&'static str>> {
    Ok(core.services().await?.voices())
}

#[tauri::command]
pub async fn tools(core: State<'_, Core>) -> Res<Vec<ToolInfo>> {
    Ok(core.services().await?.tools())
}

/// The realtime models the stored OpenAI key can use, or the built-in list.
#[tauri::command]
pub async fn model_choices(desktop: State<'_, Desktop>) -> Res<ModelChoices> {
    Ok(crate::onboarding::model_choices(&desktop.secrets, &desktop.bases).await)
}

/// "Try a simulated call".
#[tauri::command]
pub async fn start_demo_call(core: State<'_, Core>) -> Res<DemoCall> {
    Ok(core.services().await?.start_demo_call().await?)
}

/// Every secret's status, masked.
#[tauri::command(async)]
pub fn secrets_status(desktop: State<'_, Desktop>) -> Res<Vec<SecretStatus>> {
    Ok(desktop.secrets.statuses()?)
}

/// Stores a secret in the OS keychain; only its masked status comes back.
#[tauri::command(async)]
pub fn set_secret(
    desktop: State<'_, Desktop>,
    kind: SecretKind,
    value: String,
) -> Res<SecretStatus> {
    Ok(desktop.secrets.set(kind, &value)?)
}

/// Makes a new local API key and stores it in the keychain; the key comes back this once (to show
/// and copy), afterwards only masked. It takes effect once the core restarts (`apply_settings`).
#[tauri::command(async)]
pub fn generate_api_key(desktop: State<'_, Desktop>) -> Res<GeneratedKey> {
    Ok(desktop.secrets.generate_local_api_key()?)
}

#[tauri::command(async)]
pub fn delete_secret(desktop: State<'_, Desktop>, kind: SecretKind) -> Res<SecretStatus> {
    Ok(desktop.secrets.delete(kind)?)
}

/// Tests the stored OpenAI key (`GET /v1/models`).
#[tauri::command]
pub async fn check_openai(desktop: State<'_, Desktop>) -> Res<OpenAiCheck> {
    Ok(crate::onboarding::check_stored_openai(&desktop.secrets, &desktop.bases).await?)
}

/// Tests the stored Twilio auth token with `account_sid` (account fetch).
#[tauri::command]
pub async fn check_twilio(desktop: State<'_, Desktop>, account_sid: String) -> Res<TwilioCheck> {
    Ok(
        crate::onboarding::check_stored_twilio(&desktop.secrets, &desktop.bases, &account_sid)
            .await?,
    )
}

/// Public URL and Account SID as saved in the config file.
#[tauri::command(async)]
pub fn basic_settings() -> Res<BasicSettings> {
    Ok(crate::settings_file::read_basic(
        &crate::settings_file::config_path()?,
    )?)
}

#[tauri::command(async)]
pub fn save_basic_settings(settings: BasicSettings) -> Res<()> {
    Ok(crate::settings_file::save_basic(
        &crate::settings_file::config_path()?,
        &settings,
    )?)
}

/// Restarts the core so saved keys and settings take effect (refused while calls are live).
#[tauri::command]
pub async fn apply_settings(app: AppHandle) -> Res<()> {
    super::restart_core(app).await
}

/// Whether notifications and the tray work here.
#[tauri::command]
pub fn desktop_info(desktop: State<'_, Desktop>) -> super::DesktopInfo {
    desktop.info()
}

/// Quit from the window (its Quit control, Ctrl+Q), the same path as the tray's Quit: exits at once when
/// no call is live, otherwise emits `confirm-quit` so the window asks first (then calls `quit_app`).
#[tauri::command]
pub fn request_quit(app: AppHandle) {
    super::tray::request_quit(&app);
}

/// Quit after the user confirmed: hang up every call, wait briefly for them to end, exit.
#[tauri::command]
pub async fn quit_app(app: AppHandle, core: State<'_, Core>) -> Res<()> {
    if let Ok(services) = core.services().await {
        services.hang_up_all();
        services.wait_for_no_calls(QUIT_GRACE).await;
    }
    app.exit(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;
    use serde_json::{json, Value};

    use super::*;
    use crate::recording::listen_in::ListenError;
    use crate::server::errors::ApiError;
    use crate::telephony::twilio::rest::RestError;

    /// One of each kind of service failure, made afresh for each door (errors are not `Clone`).
    fn service_errors() -> Vec<fn() -> ServiceError> {
        vec![
            || ServiceError::UnknownCall("CA1".into()),
            || ServiceError::AlreadyEnded("CA1".into()),
            || ServiceError::Invalid("limit 0 is outside 1–500".into()),
            || ServiceError::InvalidNumber("to: too short".into()),
            || ServiceError::UnknownFrom("+15550000000 is not yours".into()),
            || ServiceError::NotConfigured("no public URL".into()),
            || ServiceError::Twilio(RestError::Transport("timed out".into())),
            || ServiceError::Store(crate::store::StoreError::Closed),
            || LibraryError::StillRecording(3).into(),
            || LibraryError::Listen(ListenError::NotLive("CA1".into())).into(),
        ]
    }

    async fn http_error(e: ServiceError) -> Value {
        let response = ApiError::from(e).into_response();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let body: Value = serde_json::from_slice(&bytes).expect("JSON");
        body["error"].clone()
    }

    #[tokio::test]
    async fn a_service_error_reads_the_same_from_both_doors() {
        let mut codes = Vec::new();
        for make in service_errors() {
            let desktop = serde_json::to_value(CommandError::from(make())).expect("serializes");
            assert_eq!(desktop, http_error(make()).await);
            let keys: Vec<&str> = desktop
                .as_object()
                .expect("an object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys, ["code", "message"]);
            codes.push(desktop["code"].as_str().unwrap_or_default().to_string());
        }
        assert_eq!(
            codes,
            [
                "not_found",
                "conflict",
                "invalid_value",
                "invalid_phone_number",
                "unknown_from_number",
                "not_configured",
                "twilio_unavailable",
                "internal",
                "still_recording",
                "not_live",
            ]
        );
    }

    #[test]
    fn desktop_only_errors_have_codes_too() {
        let cases = [
            (
                CommandError::NotRunning("cannot bind 127.0.0.1:8765".into()),
                json!({"code": "not_running", "message": "cannot bind 127.0.0.1:8765"}),
            ),
            (
                CommandError::ShuttingDown,
                json!({"code": "shutting_down", "message": "Verbio is shutting down"}),
            ),
            (
                SecretsError::Empty("the OpenAI key").into(),
                json!({"code": "invalid_value", "message": "the OpenAI key must not be empty"}),
            ),
            (
                SecretsError::Weak {
                    label: "local API key",
                    why: "is too weak: 5 characters, at least 32 are needed".into(),
                }
                .into(),
                json!({"code": "invalid_value", "message": "the local API key is too weak: 5 characters, at least 32 are needed"}),
            ),
            (
                KeyCheckError::Rejected("OpenAI refused the key".into()).into(),
                json!({"code": "key_rejected", "message": "OpenAI refused the key"}),
            ),
            (
                LibraryError::NotFound(9).into(),
                json!({"code": "not_found", "message": "no recording 9"}),
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(serde_json::to_value(&error).expect("serializes"), expected);
        }
    }
}
