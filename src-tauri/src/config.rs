//! Settings: a TOML file in the platform config dir, overridden by environment variables
//! (and, for `verbio serve`, by command-line flags, which clap maps onto the same env names).
//!
//! Secrets (OpenAI key, Twilio auth token) are never read from or written to the TOML file:
//! they come from the environment here and from the OS keychain in the desktop app.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::realtime::session::SessionConfig;
use crate::types::Secret;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

/// Everything the core needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP server binds to (Twilio routes and `/api`).
    pub bind_host: String,
    pub port: u16,
    /// The URL Twilio reaches (tunnel or reverse proxy). `None` means "derive from the request's Host".
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
    pub openai_api_key: Secret,
    /// Realtime WebSocket base, `wss://api.openai.com/v1/realtime` by default; `?model=` is appended.
    pub realtime_url: String,
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
    /// Requests per minute per client IP on Twilio's routes (limited separately from `/api`).
    pub twilio_rate_per_minute: u32,
    pub telephony: TelephonySettings,
    pub tunnel: TunnelSettings,
    /// Call recordings (on by default).
    pub recording: crate::recording::RecordingConfig,
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

/// How Twilio reaches this app: a user-supplied public URL (`public_url`) or an ngrok tunnel.
#[derive(Debug, Clone, Default)]
pub struct TunnelSettings {
    /// Open an ngrok tunnel at start (`VERBIO_TUNNEL=ngrok`).
    pub ngrok: bool,
    /// From the keychain in the desktop app, `NGROK_AUTHTOKEN` for `serve`.
    pub ngrok_authtoken: Secret,
    /// A reserved ngrok domain (`NGROK_DOMAIN`), so the Twilio number's webhook stays valid across runs.
    pub ngrok_domain: Option<String>,
}

/// Timing knobs of the bridge; tests shrink them to seconds.
#[derive(Debug, Clone)]
pub struct BridgeSettings {
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
pub const DEFAULT_REALTIME_URL: &str = "wss://api.openai.com/v1/realtime";

impl Default for Config {
    fn default() -> Self {
        Config {
            bind_host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            public_url: None,
            data_dir: default_data_dir(),
            openai_api_key: Secret::default(),
            realtime_url: DEFAULT_REALTIME_URL.into(),
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
            recording: crate::recording::RecordingConfig::default(),
        }
    }
}

/// The TOML file's shape. Every field optional; no secrets.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind_host: Option<String>,
    port: Option<u16>,
    public_url: Option<String>,
    data_dir: Option<PathBuf>,
    realtime_url: Option<String>,
    twilio_account_sid: Option<String>,
    session: Option<SessionConfig>,
    session_rollover_secs: Option<f64>,
    reconnect_attempts: Option<u32>,
    cors_origins: Option<Vec<String>>,
    api_rate_per_minute: Option<u32>,
    twilio_rate_per_minute: Option<u32>,
    twilio_api_base: Option<String>,
    apology_message: Option<String>,
    voicemail_message: Option<String>,
    ring_timeout_secs: Option<u32>,
    tunnel: Option<String>,
    ngrok_domain: Option<String>,
    recording: Option<FileRecording>,
}

/// The file's `[recording]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRecording {
    /// Twilio's own recording of inbound calls (`VERBIO_TWILIO_RECORDING_INBOUND`).
    twilio_inbound: Option<bool>,
}

/// `ngrok` → true; `none` or empty → false.
fn tunnel_kind(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim() {
        "ngrok" => Ok(true),
        "" | "none" => Ok(false),
        other => Err(ConfigError::Invalid {
            name,
            message: format!("{other:?} is not a tunnel (use \"ngrok\" or \"none\")"),
        }),
    }
}

/// Platform config file: e.g. `~/.config/verbio/config.toml` on Linux.
pub fn default_config_file() -> Option<PathBuf> {
    directories::ProjectDirs::from("app", "verbio", "verbio")
        .map(|d| d.config_dir().join("config.toml"))
}

fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("app", "verbio", "verbio")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("verbio-data"))
}

impl Config {
    /// Loads the config file (`VERBIO_CONFIG` or the platform default, if present), then applies env overrides.
    pub fn load() -> Result<Config, ConfigError> {
        let path = std::env::var_os("VERBIO_CONFIG")
            .map(PathBuf::from)
            .or_else(default_config_file);
        let mut config = Config::default();
        if let Some(path) = path.filter(|p| p.exists()) {
            config.apply_file(&path)?;
        }
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    pub fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })?;
        if let Some(v) = file.bind_host {
            self.bind_host = v;
        }
        if let Some(v) = file.port {
            self.port = v;
        }
        if let Some(v) = file.public_url {
            self.public_url = Some(v);
        }
        if let Some(v) = file.data_dir {
            self.data_dir = v;
        }
        if let Some(v) = file.realtime_url {
            self.realtime_url = v;
        }
        if let Some(v) = file.twilio_account_sid {
            self.twilio_account_sid = v;
        }
        if let Some(v) = file.session {
            self.session = v;
        }
        if let Some(v) = file.session_rollover_secs {
            self.bridge.session_rollover_after = secs("session_rollover_secs", v)?;
        }
        if let Some(v) = file.reconnect_attempts {
            self.bridge.reconnect_attempts = v;
        }
        if let Some(v) = file.cors_origins {
            self.cors_origins = v;
        }
        if let Some(v) = file.api_rate_per_minute {
            self.api_rate_per_minute = positive("api_rate_per_minute", v)?;
        }
        if let Some(v) = file.twilio_rate_per_minute {
            self.twilio_rate_per_minute = positive("twilio_rate_per_minute", v)?;
        }
        if let Some(v) = file.twilio_api_base {
            self.telephony.api_base = v;
        }
        if let Some(v) = file.apology_message {
            self.telephony.apology_message = v;
        }
        if let Some(v) = file.voicemail_message {
            self.telephony.voicemail_message = v;
        }
        if let Some(v) = file.ring_timeout_secs {
            self.telephony.ring_timeout =
                Duration::from_secs(positive("ring_timeout_secs", v)?.into());
        }
        if let Some(v) = file.tunnel {
            self.tunnel.ngrok = tunnel_kind("tunnel", &v)?;
        }
        if let Some(v) = file.ngrok_domain {
            self.tunnel.ngrok_domain = Some(v);
        }
        if let Some(v) = file.recording.and_then(|r| r.twilio_inbound) {
            self.recording.twilio_inbound = v;
        }
        Ok(())
    }

    /// Applies `VERBIO_*`, `OPENAI_API_KEY` and `TWILIO_*` overrides read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("VERBIO_BIND") {
            self.bind_host = v;
        }
        if let Some(v) = get("VERBIO_PORT") {
            self.port = v.parse().map_err(|_| ConfigError::Invalid {
                name: "VERBIO_PORT",
                message: format!("{v:?} is not a port number"),
            })?;
        }
        if let Some(v) = get("VERBIO_PUBLIC_URL").filter(|v| !v.is_empty()) {
            self.public_url = Some(v);
        }
        if let Some(v) = get("VERBIO_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("OPENAI_API_KEY") {
            self.openai_api_key = Secret::new(v);
        }
        if let Some(v) = get("VERBIO_REALTIME_URL") {
            self.realtime_url = v;
        }
        if let Some(v) = get("TWILIO_ACCOUNT_SID") {
            self.twilio_account_sid = v;
        }
        if let Some(v) = get("TWILIO_AUTH_TOKEN") {
            self.twilio_auth_token = Secret::new(v);
        }
        if let Some(v) = get("VERBIO_MODEL") {
            self.session.model = v;
        }
        if let Some(v) = get("VERBIO_SESSION_ROLLOVER_SECS") {
            let n: f64 = v.parse().map_err(|_| ConfigError::Invalid {
                name: "VERBIO_SESSION_ROLLOVER_SECS",
                message: format!("{v:?} is not a number of seconds"),
            })?;
            self.bridge.session_rollover_after = secs("VERBIO_SESSION_ROLLOVER_SECS", n)?;
        }
        if let Some(v) = get("VERBIO_RECONNECT_ATTEMPTS") {
            self.bridge.reconnect_attempts = v.parse().map_err(|_| ConfigError::Invalid {
                name: "VERBIO_RECONNECT_ATTEMPTS",
                message: format!("{v:?} is not a count"),
            })?;
        }
        if let Some(v) = get("TWILIO_WEBHOOK_SIGNING_KEY") {
            self.twilio_signing_key = Secret::new(v);
        }
        if let Some(v) = get("VERBIO_API_KEY") {
            self.api_key = Secret::new(v);
        }
        if let Some(v) = get("VERBIO_CORS_ORIGINS") {
            self.cors_origins = v
                .split(',')
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect();
        }
        if let Some(v) = get("VERBIO_RATE_LIMIT") {
            let n = v.parse().map_err(|_| ConfigError::Invalid {
                name: "VERBIO_RATE_LIMIT",
                message: format!("{v:?} is not a number of requests per minute"),
            })?;
            self.api_rate_per_minute = positive("VERBIO_RATE_LIMIT", n)?;
        }
        if let Some(v) = get("TWILIO_API_BASE").filter(|v| !v.is_empty()) {
            self.telephony.api_base = v;
        }
        if let Some(v) = get("VERBIO_TUNNEL") {
            self.tunnel.ngrok = tunnel_kind("VERBIO_TUNNEL", &v)?;
        }
        if let Some(v) = get("NGROK_AUTHTOKEN") {
            self.tunnel.ngrok_authtoken = Secret::new(v);
        }
        if let Some(v) = get("NGROK_DOMAIN").filter(|v| !v.is_empty()) {
            self.tunnel.ngrok_domain = Some(v);
        }
        self.recording.apply_env(&get)?;
        if let Some(url) = &self.public_url {
            validate_public_url(url)?;
        }
        Ok(())
    }

    /// The `ws://`/`wss://` URL of the media socket as Twilio must reach it, if a public URL is set.
    pub fn public_stream_url(&self) -> Option<String> {
        self.public_url.as_deref().map(stream_url_for)
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

/// `https://host/base` → `wss://host/base/media-stream`; `http` → `ws`.
pub fn stream_url_for(public_url: &str) -> String {
    crate::telephony::twilio::webhooks::WebhookUrls::new(public_url).media_stream()
}

fn validate_public_url(url: &str) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(url).map_err(|e| ConfigError::Invalid {
        name: "VERBIO_PUBLIC_URL",
        message: format!("{url:?} is not a URL ({e})"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::Invalid {
            name: "VERBIO_PUBLIC_URL",
            message: format!("{url:?} must be an http:// or https:// URL with a host"),
        });
    }
    Ok(())
}

fn positive(name: &'static str, v: u32) -> Result<u32, ConfigError> {
    if v == 0 {
        return Err(ConfigError::Invalid {
            name,
            message: "must be at least 1".into(),
        });
    }
    Ok(v)
}

fn secs(name: &'static str, v: f64) -> Result<Duration, ConfigError> {
    if !(v.is_finite() && v > 0.0) {
        return Err(ConfigError::Invalid {
            name,
            message: format!("{v} must be a positive number of seconds"),
        });
    }
    Ok(Duration::from_secs_f64(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn env_overrides_and_stream_urls() {
        let env: HashMap<&str, &str> = HashMap::from([
            ("VERBIO_PORT", "9000"),
            ("VERBIO_PUBLIC_URL", "https://abc.ngrok.app/"),
            ("OPENAI_API_KEY", "sk-test-123"),
        ]);
        let mut c = Config::default();
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(
            c.public_stream_url().unwrap(),
            "wss://abc.ngrok.app/media-stream"
        );
        assert_eq!(
            stream_url_for("http://127.0.0.1:8081"),
            "ws://127.0.0.1:8081/media-stream"
        );
        assert!(
            !format!("{c:?}").contains("sk-test-123"),
            "secrets never print"
        );
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let mut c = Config::default();
        let err = c
            .apply_env(|k| (k == "VERBIO_PORT").then(|| "eighty".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("VERBIO_PORT"));
        let err = c
            .apply_env(|k| (k == "VERBIO_PUBLIC_URL").then(|| "ftp://x".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("http"));
    }

    #[test]
    fn file_overrides_defaults_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "port = 9100\n[session]\nvoice = \"cedar\"\n").unwrap();
        let mut c = Config::default();
        c.apply_file(&path).unwrap();
        assert_eq!(c.port, 9100);
        assert_eq!(c.session.voice.as_str(), "cedar");
        assert!(!c.recording.twilio_inbound, "off by default");
        std::fs::write(&path, "[recording]\ntwilio_inbound = true\n").unwrap();
        c.apply_file(&path).unwrap();
        assert!(c.recording.twilio_inbound);
        c.apply_env(|k| (k == "VERBIO_TWILIO_RECORDING_INBOUND").then(|| "false".to_string()))
            .unwrap();
        assert!(
            !c.recording.twilio_inbound,
            "the environment wins over the file"
        );
        std::fs::write(&path, "openai_api_key = \"sk\"\n").unwrap();
        assert!(
            c.apply_file(&path).is_err(),
            "secrets are not file settings"
        );
    }
}
