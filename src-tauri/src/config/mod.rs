//! Settings, in layers: defaults < the TOML config file < environment variables < `verbio serve`'s flags.
//!
//! - [`Config`] (this file): what the core runs with, and every default.
//! - `layer.rs`: the settings table. Each line names one setting's [`ConfigLayer`] field, its [`kinds`]
//!   parser, where it goes in `Config`, its environment variable, and its file key and flag if it has them.
//!   Each source fills a `ConfigLayer` (all optional), the layers are merged in the order above, and the
//!   merged layer is put into `Config::default()`.
//! - [`kinds`]: the typed parsers (port, public URL, tunnel kind, flags, durations, …), pure functions that
//!   callers such as the onboarding's save reuse instead of faking an environment.
//!
//! **Adding a setting takes two edits:** the field and its default in `Config` (or the room's settings it
//! belongs to), and one line in the table in `layer.rs` (`field: Kind => path.in.config; env "NAME"`, plus
//! `file "key"` and `flag "long" "VALUE"` if it has them). A test holds every line to having an environment
//! name and reaching `Config`.
//!
//! Secrets (OpenAI key, Twilio auth token, …) are never read from or written to the TOML file: they come
//! from the environment here and from the OS keychain (the `secrets` module); the file refuses a key naming one.

pub mod kinds;
mod layer;

pub use layer::{CliFlag, CommandLine, ConfigLayer, Setting, SETTINGS};

use std::path::PathBuf;
use std::time::Duration;

use crate::realtime::session::SessionConfig;
use crate::recording::RecordingConfig;
use crate::tunnel::TunnelSettings;
use crate::types::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong type or out of range (the message names the key).
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value refused by its [`kinds`] parser; `name` is the variable, the `--flag` or the key.
    #[error("invalid value for {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

/// Everything the core needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the public listener binds to: Twilio's routes only (what a tunnel or proxy forwards to).
    pub bind_host: String,
    /// Port of the public listener.
    pub port: u16,
    /// Port of the local listener (`/api`, `/api/events`, the full health); 0 picks a free one.
    pub api_port: u16,
    /// Address the local listener binds to. Loopback unless the user exposes the API on purpose (a
    /// warning is logged then): `bind_host` never moves it.
    pub api_bind_host: String,
    /// The URL Twilio reaches (tunnel or reverse proxy). `None` means "derive from the request".
    pub public_url: Option<String>,
    /// Without a public URL, whether `X-Forwarded-Proto`/`X-Forwarded-Host` say what Twilio signed. Only
    /// a proxy the user trusts may set them: from anyone else they would choose the signed URL.
    pub trust_forwarded: bool,
    pub data_dir: PathBuf,
    pub openai_api_key: Secret,
    /// Realtime WebSocket base, `wss://api.openai.com/v1/realtime` by default; `?model=` is appended.
    pub realtime_url: String,
    /// OpenAI's REST base (`https://api.openai.com`): the post-call summary's `POST /v1/responses`.
    pub openai_api_base: String,
    pub twilio_account_sid: String,
    pub twilio_auth_token: Secret,
    /// Twilio's shared webhook signing key (HMAC-SHA256 signatures), if the account uses one.
    pub twilio_signing_key: Secret,
    /// The agent's default session (model, voice, instructions, VAD, …).
    pub session: SessionConfig,
    pub bridge: BridgeSettings,
    /// Key for the local `/api` (keychain in the desktop app, `VERBIO_API_KEY` for `serve`).
    /// Empty means the API refuses every request.
    pub api_key: Secret,
    /// Extra browser origins allowed to call `/api` (the Tauri webview's origins are always allowed).
    pub cors_origins: Vec<String>,
    /// Requests per minute per client IP on `/api`.
    pub api_rate_per_minute: u32,
    /// Unsigned or badly signed requests per minute per client IP on Twilio's routes (a correctly
    /// signed request spends nothing; limited separately from `/api`).
    pub twilio_rate_per_minute: u32,
    pub telephony: TelephonySettings,
    pub tunnel: TunnelSettings,
    /// Call recordings (on by default).
    pub recording: RecordingConfig,
}

/// Placing and controlling calls through Twilio's REST API.
#[derive(Debug, Clone)]
pub struct TelephonySettings {
    /// `https://api.twilio.com`, or a stand-in (`TWILIO_API_BASE`).
    pub api_base: String,
    /// What a caller hears when the model cannot be reached, before the call ends.
    pub apology_message: String,
    /// What the agent says on a voicemail when a call does not give its own message.
    pub voicemail_message: String,
    /// How long an outbound call may ring before Twilio gives up.
    pub ring_timeout: Duration,
}

impl Default for TelephonySettings {
    fn default() -> Self {
        TelephonySettings {
            api_base: crate::telephony::twilio::rest::DEFAULT_API_BASE.into(),
            apology_message:
                "Sorry, our assistant is unavailable right now. Please call again later. Goodbye."
                    .into(),
            voicemail_message:
                "Hello, this is a message from Verbio. Please call us back at your convenience. Thank you."
                    .into(),
            ring_timeout: Duration::from_secs(30),
        }
    }
}

/// Timing knobs of the bridge and the caps that protect the bill; tests shrink them to seconds.
#[derive(Debug, Clone)]
pub struct BridgeSettings {
    /// Calls live or holding a stream token at once; `/twiml` refuses more (the caller hears why).
    pub max_concurrent_calls: u32,
    /// A call is ended with a goodbye once it has streamed this long.
    pub max_call_length: Duration,
    /// Minutes of calls in any 24 hours (counted from the call library); `None`: no budget.
    pub daily_minutes: Option<u32>,
    /// Open a fresh model session after this long (Realtime sessions end at 60 minutes).
    pub session_rollover_after: Duration,
    /// How many times a dropped model socket is retried before the call is ended as failed.
    pub reconnect_attempts: u32,
    /// Pause before the first reconnect; doubles each attempt.
    pub reconnect_backoff: Duration,
    /// How long a stream may take to send `start` after the socket opens.
    pub start_timeout: Duration,
    /// How long a one-time stream token stays valid after `/twiml` issued it.
    pub token_ttl: Duration,
    /// Caller audio kept while the model socket is being re-opened, in 20 ms frames.
    pub reconnect_buffer_frames: usize,
}

impl Default for BridgeSettings {
    fn default() -> Self {
        BridgeSettings {
            max_concurrent_calls: 10,
            max_call_length: Duration::from_secs(30 * 60),
            daily_minutes: None,
            session_rollover_after: Duration::from_secs(55 * 60),
            reconnect_attempts: 3,
            reconnect_backoff: Duration::from_millis(250),
            start_timeout: Duration::from_secs(10),
            token_ttl: Duration::from_secs(120),
            reconnect_buffer_frames: 250,
        }
    }
}

pub const DEFAULT_PORT: u16 = 8081;
pub const DEFAULT_API_PORT: u16 = 8082;
pub const DEFAULT_REALTIME_URL: &str = "wss://api.openai.com/v1/realtime";
/// OpenAI's REST API (the onboarding's key check uses the same default).
pub const DEFAULT_OPENAI_API_BASE: &str = "https://api.openai.com";

impl Default for Config {
    fn default() -> Self {
        Config {
            bind_host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            api_port: DEFAULT_API_PORT,
            api_bind_host: "127.0.0.1".into(),
            public_url: None,
            trust_forwarded: false,
            data_dir: default_data_dir(),
            openai_api_key: Secret::default(),
            realtime_url: DEFAULT_REALTIME_URL.into(),
            openai_api_base: DEFAULT_OPENAI_API_BASE.into(),
            twilio_account_sid: String::new(),
            twilio_auth_token: Secret::default(),
            twilio_signing_key: Secret::default(),
            session: SessionConfig::default(),
            bridge: BridgeSettings::default(),
            api_key: Secret::default(),
            cors_origins: Vec::new(),
            api_rate_per_minute: 100,
            twilio_rate_per_minute: 1200,
            telephony: TelephonySettings::default(),
            tunnel: TunnelSettings::default(),
            recording: RecordingConfig::default(),
        }
    }
}

/// Names the config file to read and write instead of the platform's.
pub const CONFIG_FILE_ENV: &str = "VERBIO_CONFIG";

/// The config file to read and write: `VERBIO_CONFIG` if set, else the platform's (which may not exist).
pub fn config_file_path() -> Option<PathBuf> {
    std::env::var_os(CONFIG_FILE_ENV)
        .map(PathBuf::from)
        .or_else(default_config_file)
}

/// Platform config file: e.g. `~/.config/verbio/config.toml` on Linux.
fn default_config_file() -> Option<PathBuf> {
    directories::ProjectDirs::from("app", "verbio", "verbio")
        .map(|d| d.config_dir().join("config.toml"))
}

fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("app", "verbio", "verbio")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("verbio-data"))
}

impl Config {
    /// The config file (if present) over the defaults, the environment over both.
    pub fn load() -> Result<Config, ConfigError> {
        Config::load_with(ConfigLayer::default())
    }

    /// Like [`Config::load`], with `flags` (the command line) over everything.
    pub fn load_with(flags: ConfigLayer) -> Result<Config, ConfigError> {
        let file = match config_file_path().filter(|p| p.exists()) {
            Some(path) => ConfigLayer::from_file(&path)?,
            None => ConfigLayer::default(),
        };
        let env = ConfigLayer::from_env(|name| std::env::var(name).ok())?;
        Ok(Config::from_layers([file, env, flags]))
    }

    /// The defaults with each layer's values over the ones before it.
    pub fn from_layers(layers: impl IntoIterator<Item = ConfigLayer>) -> Config {
        let mut config = Config::default();
        layers
            .into_iter()
            .fold(ConfigLayer::default(), ConfigLayer::over)
            .apply(&mut config);
        config
    }

    /// Folder of the call recordings inside the data dir.
    pub fn recordings_dir(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }

    /// Path of the SQLite database inside the data dir.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("verbio.sqlite3")
    }
}

#[cfg(test)]
impl Config {
    /// The defaults on free ports (both listeners) with the library in `data_dir`: for tests that start
    /// the core.
    pub(crate) fn on_free_ports(data_dir: &std::path::Path) -> Config {
        Config {
            port: 0,
            api_port: 0,
            data_dir: data_dir.to_path_buf(),
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let layer = ConfigLayer::from_env(|name| match name {
            "VERBIO_PUBLIC_URL" => Some("https://abc.ngrok.app/".into()),
            "OPENAI_API_KEY" => Some("sk-test-123".into()),
            _ => None,
        })
        .unwrap();
        let c = Config::from_layers([layer]);
        assert_eq!(c.public_url.as_deref(), Some("https://abc.ngrok.app"));
        assert!(
            !format!("{c:?}").contains("sk-test-123"),
            "secrets never print"
        );
    }
}
