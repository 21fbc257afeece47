//! Secrets in the OS keychain (Secret Service on Linux, Keychain on macOS, Credential Manager on
//! Windows) through the `keyring` crate. Used by the desktop app and by `verbio serve`.
//!
//! Precedence: an environment variable (`OPENAI_API_KEY`, `TWILIO_AUTH_TOKEN`, `NGROK_AUTHTOKEN`,
//! `VERBIO_API_KEY`, `VERBIO_TOOL_SECRET_<TOOL>`) overrides the keychain. Secrets are never written to files, never logged (they travel
//! as [`Secret`], whose `Debug` prints `***`), and the UI only ever gets them back [`mask`]ed.
//!
//! Besides the fixed [`SecretKind`]s, each HTTP tool may have a signing secret (`tools::http`), kept in
//! the same keychain service under the account `tool:<tool name>`.

use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::config::Config;
use crate::types::Secret;

/// Keychain "service" every Verbio secret is stored under (the app's identifier).
pub const KEYCHAIN_SERVICE: &str = "app.verbio.desktop";
/// Overrides [`KEYCHAIN_SERVICE`] (tests use their own, so they never touch a user's keys).
pub const KEYCHAIN_SERVICE_ENV: &str = "VERBIO_KEYCHAIN_SERVICE";

/// The secrets Verbio keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    OpenaiApiKey,
    TwilioAuthToken,
    NgrokAuthtoken,
    LocalApiKey,
}

impl SecretKind {
    pub const ALL: [SecretKind; 4] = [
        SecretKind::OpenaiApiKey,
        SecretKind::TwilioAuthToken,
        SecretKind::NgrokAuthtoken,
        SecretKind::LocalApiKey,
    ];

    /// The keychain account name.
    pub fn id(self) -> &'static str {
        match self {
            SecretKind::OpenaiApiKey => "openai_api_key",
            SecretKind::TwilioAuthToken => "twilio_auth_token",
            SecretKind::NgrokAuthtoken => "ngrok_authtoken",
            SecretKind::LocalApiKey => "local_api_key",
        }
    }

    /// The environment variable that overrides the keychain.
    pub fn env_var(self) -> &'static str {
        match self {
            SecretKind::OpenaiApiKey => "OPENAI_API_KEY",
            SecretKind::TwilioAuthToken => "TWILIO_AUTH_TOKEN",
            SecretKind::NgrokAuthtoken => "NGROK_AUTHTOKEN",
            SecretKind::LocalApiKey => "VERBIO_API_KEY",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SecretKind::OpenaiApiKey => "OpenAI API key",
            SecretKind::TwilioAuthToken => "Twilio auth token",
            SecretKind::NgrokAuthtoken => "ngrok authtoken",
            SecretKind::LocalApiKey => "local API key",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// No keychain service answers (no Secret Service on the session bus, locked collection, …).
    #[error("the OS keychain is not available: {0}")]
    Unavailable(String),
    /// The keychain answered with an error.
    #[error("the OS keychain refused: {0}")]
    Keychain(String),
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{0} is too long (at most 4096 characters)")]
    TooLong(&'static str),
    /// A key too weak to guard anything (the local API key; the reason never quotes the key).
    #[error("the {label} {why}")]
    Weak { label: &'static str, why: String },
}

/// Where secrets are kept. The keychain in production; memory in unit tests of callers.
///
/// Entries are named by keychain account: [`SecretKind::id`] for the fixed secrets, [`tool_account`]
/// for a tool's.
pub trait SecretStore: Send + Sync {
    fn get_account(&self, account: &str) -> Result<Option<Secret>, SecretsError>;
    fn set_account(&self, account: &str, value: &Secret) -> Result<(), SecretsError>;
    /// Deleting a secret that is not there is not an error.
    fn delete_account(&self, account: &str) -> Result<(), SecretsError>;

    fn get(&self, kind: SecretKind) -> Result<Option<Secret>, SecretsError> {
        self.get_account(kind.id())
    }
    fn set(&self, kind: SecretKind, value: &Secret) -> Result<(), SecretsError> {
        self.set_account(kind.id(), value)
    }
    /// Deleting a secret that is not there is not an error.
    fn delete(&self, kind: SecretKind) -> Result<(), SecretsError> {
        self.delete_account(kind.id())
    }
}

/// The OS keychain, one entry per [`SecretKind`] under `service`.
#[derive(Debug, Clone)]
pub struct KeychainStore {
    service: String,
}

impl KeychainStore {
    pub fn new(service: impl Into<String>) -> Self {
        KeychainStore {
            service: service.into(),
        }
    }

    /// The app's keychain service, or the one named by `VERBIO_KEYCHAIN_SERVICE`.
    pub fn from_env() -> Self {
        KeychainStore::new(
            std::env::var(KEYCHAIN_SERVICE_ENV)
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| KEYCHAIN_SERVICE.to_string()),
        )
    }

    fn entry(&self, account: &str) -> Result<keyring::Entry, SecretsError> {
        keyring::Entry::new(&self.service, account).map_err(map_keyring_error)
    }
}

/// Keyring errors never carry the secret itself, but they can carry platform detail; keep it short.
fn map_keyring_error(e: keyring::Error) -> SecretsError {
    match e {
        keyring::Error::NoStorageAccess(inner) | keyring::Error::PlatformFailure(inner) => {
            SecretsError::Unavailable(inner.to_string())
        }
        // keyring 4 connects to the platform store once per process, on first use; this is what
        // every entry reports when that failed (no Secret Service on the session bus, say).
        keyring::Error::NoDefaultStore => {
            SecretsError::Unavailable(match keyring::Entry::store_status() {
                Err(why) => why.to_string(),
                Ok(()) => keyring::Error::NoDefaultStore.to_string(),
            })
        }
        other => SecretsError::Keychain(other.to_string()),
    }
}

impl SecretStore for KeychainStore {
    fn get_account(&self, account: &str) -> Result<Option<Secret>, SecretsError> {
        match self.entry(account)?.get_password() {
            Ok(value) if value.is_empty() => Ok(None),
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_keyring_error(e)),
        }
    }

    fn set_account(&self, account: &str, value: &Secret) -> Result<(), SecretsError> {
        self.entry(account)?
            .set_password(value.expose())
            .map_err(map_keyring_error)
    }

    fn delete_account(&self, account: &str) -> Result<(), SecretsError> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_keyring_error(e)),
        }
    }
}

/// Secrets kept in memory only (tests, or a machine without a keychain for the session).
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// By keychain account.
    values: Mutex<std::collections::HashMap<String, Secret>>,
}

impl SecretStore for MemoryStore {
    fn get_account(&self, account: &str) -> Result<Option<Secret>, SecretsError> {
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(values.get(account).cloned())
    }
    fn set_account(&self, account: &str, value: &Secret) -> Result<(), SecretsError> {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values.insert(account.to_string(), value.clone());
        Ok(())
    }
    fn delete_account(&self, account: &str) -> Result<(), SecretsError> {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values.remove(account);
        Ok(())
    }
}

/// Where a secret's current value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    Env,
    Keychain,
    Missing,
}

/// What the UI may know about a secret: whether it is set, where from, and a masked hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretStatus {
    pub kind: SecretKind,
    pub label: &'static str,
    pub env_var: &'static str,
    pub source: SecretSource,
    /// e.g. `sk-…a1b2`; `None` when missing.
    pub masked: Option<String>,
}

/// A masked hint of a secret: its first 3 and last 4 characters for long ones, bullets otherwise.
pub fn mask(secret: &Secret) -> String {
    let chars: Vec<char> = secret.expose().chars().collect();
    if chars.len() >= 16 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    } else {
        "••••••••".to_string()
    }
}

/// Reads an environment variable (injectable for tests).
pub type EnvReader = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Environment over keychain, for every secret.
#[derive(Clone)]
pub struct Secrets {
    store: Arc<dyn SecretStore>,
    env: EnvReader,
}

impl Secrets {
    pub fn new(
        store: Arc<dyn SecretStore>,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Secrets {
            store,
            env: Arc::new(env),
        }
    }

    /// The OS keychain and the process environment.
    pub fn system() -> Self {
        Secrets::new(Arc::new(KeychainStore::from_env()), |name| {
            std::env::var(name).ok()
        })
    }

    fn env_value(&self, kind: SecretKind) -> Option<Secret> {
        (self.env)(kind.env_var())
            .filter(|v| !v.is_empty())
            .map(Secret::new)
    }

    /// The secret's value and where it came from.
    pub fn get(&self, kind: SecretKind) -> Result<(Option<Secret>, SecretSource), SecretsError> {
        if let Some(v) = self.env_value(kind) {
            return Ok((Some(v), SecretSource::Env));
        }
        match self.store.get(kind)? {
            Some(v) => Ok((Some(v), SecretSource::Keychain)),
            None => Ok((None, SecretSource::Missing)),
        }
    }

    /// Stores a secret in the keychain (trimmed). An env override keeps winning until it is unset.
    /// A weak local API key is refused (see [`crate::config::kinds::api_key_problem`]).
    pub fn set(&self, kind: SecretKind, value: &str) -> Result<SecretStatus, SecretsError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(SecretsError::Empty(kind.label()));
        }
        if value.chars().count() > 4096 {
            return Err(SecretsError::TooLong(kind.label()));
        }
        if let Some(why) = weakness(kind, value) {
            return Err(SecretsError::Weak {
                label: kind.label(),
                why,
            });
        }
        self.store.set(kind, &Secret::new(value))?;
        self.status(kind)
    }

    /// Makes a new local API key (32 random bytes, base64url: 43 characters) and stores it in the
    /// keychain. The key comes back this once, to be shown and copied; afterwards only its masked hint.
    /// It takes effect when the core restarts (and not while `VERBIO_API_KEY` overrides the keychain:
    /// the status says so).
    pub fn generate_local_api_key(&self) -> Result<GeneratedKey, SecretsError> {
        let key = new_api_key();
        self.store.set(SecretKind::LocalApiKey, &key)?;
        Ok(GeneratedKey {
            key,
            status: self.status(SecretKind::LocalApiKey)?,
        })
    }

    pub fn delete(&self, kind: SecretKind) -> Result<SecretStatus, SecretsError> {
        self.store.delete(kind)?;
        self.status(kind)
    }

    pub fn status(&self, kind: SecretKind) -> Result<SecretStatus, SecretsError> {
        let (value, source) = self.get(kind)?;
        Ok(SecretStatus {
            kind,
            label: kind.label(),
            env_var: kind.env_var(),
            source,
            masked: value.as_ref().map(mask),
        })
    }

    /// Every secret's status. A keychain that cannot be reached still reports the env overrides.
    pub fn statuses(&self) -> Result<Vec<SecretStatus>, SecretsError> {
        SecretKind::ALL.iter().map(|k| self.status(*k)).collect()
    }

    /// Fills the config's secrets that the environment did not set from the keychain. Env values
    /// (already applied by [`Config::load`]) are left alone. Returns which secrets came from the keychain.
    pub fn fill_config(&self, config: &mut Config) -> Result<Vec<SecretKind>, SecretsError> {
        let mut filled = Vec::new();
        let slots: [(SecretKind, &mut Secret); 4] = [
            (SecretKind::OpenaiApiKey, &mut config.openai_api_key),
            (SecretKind::TwilioAuthToken, &mut config.twilio_auth_token),
            (
                SecretKind::NgrokAuthtoken,
                &mut config.tunnel.ngrok_authtoken,
            ),
            (SecretKind::LocalApiKey, &mut config.api_key),
        ];
        for (kind, slot) in slots {
            if self.env_value(kind).is_some() || !slot.is_empty() {
                continue;
            }
            if let Some(v) = self.store.get(kind)? {
                if let Some(why) = weakness(kind, v.expose()) {
                    // Stored before keys were checked: left out, so `/api` refuses everything
                    // instead of trusting it. Setup makes a new one.
                    tracing::warn!(
                        "the {} in the OS keychain is not used: it {why}",
                        kind.label()
                    );
                    continue;
                }
                *slot = v;
                filled.push(kind);
            }
        }
        Ok(filled)
    }
}

/// The shortest tool secret accepted: an HMAC key shorter than this can be guessed offline from one
/// signed request.
pub const TOOL_SECRET_MIN_CHARS: usize = 16;
const TOOL_SECRET_LABEL: &str = "tool secret";

/// The keychain account of tool `name`'s signing secret: `tool:<name>`, in [`KEYCHAIN_SERVICE`] with
/// the other secrets.
pub fn tool_account(name: &str) -> String {
    format!("tool:{name}")
}

/// The environment variable that overrides tool `name`'s secret (for a headless `verbio serve`):
/// `VERBIO_TOOL_SECRET_` and the name upper-cased, anything but ASCII letters and digits as `_`
/// (`lookup-order` → `VERBIO_TOOL_SECRET_LOOKUP_ORDER`).
pub fn tool_secret_env_var(name: &str) -> String {
    let tail: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("VERBIO_TOOL_SECRET_{tail}")
}

/// What the UI may know about a tool's secret (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolSecretStatus {
    pub tool: String,
    pub env_var: String,
    pub source: SecretSource,
    /// e.g. `Zm9…a1b2`; `None` when missing.
    pub masked: Option<String>,
}

/// Tool secrets: environment over keychain, as for every other secret.
impl Secrets {
    /// Tool `name`'s signing secret, if it has one.
    pub fn tool_secret(&self, name: &str) -> Result<Option<Secret>, SecretsError> {
        Ok(self.tool_secret_with_source(name)?.0)
    }

    fn tool_secret_with_source(
        &self,
        name: &str,
    ) -> Result<(Option<Secret>, SecretSource), SecretsError> {
        check_tool_name(name)?;
        if let Some(v) = (self.env)(&tool_secret_env_var(name)).filter(|v| !v.is_empty()) {
            return Ok((Some(Secret::new(v)), SecretSource::Env));
        }
        match self.store.get_account(&tool_account(name))? {
            Some(v) if !v.is_empty() => Ok((Some(v), SecretSource::Keychain)),
            _ => Ok((None, SecretSource::Missing)),
        }
    }

    pub fn tool_secret_status(&self, name: &str) -> Result<ToolSecretStatus, SecretsError> {
        let (value, source) = self.tool_secret_with_source(name)?;
        Ok(ToolSecretStatus {
            tool: name.to_string(),
            env_var: tool_secret_env_var(name),
            source,
            masked: value.as_ref().map(mask),
        })
    }

    /// Stores a secret the user already shares with their endpoint (trimmed; at least
    /// [`TOOL_SECRET_MIN_CHARS`] characters).
    pub fn set_tool_secret(
        &self,
        name: &str,
        value: &str,
    ) -> Result<ToolSecretStatus, SecretsError> {
        check_tool_name(name)?;
        let value = value.trim();
        if value.is_empty() {
            return Err(SecretsError::Empty(TOOL_SECRET_LABEL));
        }
        let chars = value.chars().count();
        if chars > 4096 {
            return Err(SecretsError::TooLong(TOOL_SECRET_LABEL));
        }
        if chars < TOOL_SECRET_MIN_CHARS {
            return Err(SecretsError::Weak {
                label: TOOL_SECRET_LABEL,
                why: format!("is too short (at least {TOOL_SECRET_MIN_CHARS} characters)"),
            });
        }
        self.store
            .set_account(&tool_account(name), &Secret::new(value))?;
        self.tool_secret_status(name)
    }

    /// Makes a new secret for tool `name` (32 random bytes, base64url: 43 characters), stores it in the
    /// keychain and returns it, this once, for the user to give their endpoint.
    pub fn generate_tool_secret(&self, name: &str) -> Result<Secret, SecretsError> {
        check_tool_name(name)?;
        let secret = new_api_key();
        self.store.set_account(&tool_account(name), &secret)?;
        Ok(secret)
    }

    /// Removes tool `name`'s secret from the keychain (its calls go unsigned unless the environment
    /// still sets one). Deleting one that is not there is not an error.
    pub fn delete_tool_secret(&self, name: &str) -> Result<ToolSecretStatus, SecretsError> {
        check_tool_name(name)?;
        self.store.delete_account(&tool_account(name))?;
        self.tool_secret_status(name)
    }
}

fn check_tool_name(name: &str) -> Result<(), SecretsError> {
    if name.is_empty() {
        return Err(SecretsError::Empty("the tool name"));
    }
    Ok(())
}

/// Why `value` is too weak to be a `kind` secret: only the local API key, which Verbio's own door
/// checks, has rules; other services judge their own keys.
fn weakness(kind: SecretKind, value: &str) -> Option<String> {
    match kind {
        SecretKind::LocalApiKey => crate::config::kinds::api_key_problem(value),
        SecretKind::OpenaiApiKey | SecretKind::TwilioAuthToken | SecretKind::NgrokAuthtoken => None,
    }
}

/// 32 random bytes from the OS's generator (through `rand`'s thread RNG, seeded from it), base64url.
fn new_api_key() -> Secret {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A key Verbio just made: shown once, then only masked. `Debug` never prints it.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub key: Secret,
    pub status: SecretStatus,
}

impl Serialize for GeneratedKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        // The one place a secret is sent to the window: the key it asked Verbio to make.
        let mut out = serializer.serialize_struct("GeneratedKey", 2)?;
        out.serialize_field("key", self.key.expose())?;
        out.serialize_field("status", &self.status)?;
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn secrets_with(env: &[(&str, &str)]) -> (Secrets, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::default());
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (
            Secrets::new(store.clone(), move |k| env.get(k).cloned()),
            store,
        )
    }

    #[test]
    fn env_overrides_keychain_and_values_are_masked() {
        let (secrets, _) = secrets_with(&[("OPENAI_API_KEY", "sk-from-env-0123456789")]);
        secrets
            .set(SecretKind::OpenaiApiKey, "sk-from-keychain-abcdef")
            .unwrap();
        let status = secrets.status(SecretKind::OpenaiApiKey).unwrap();
        assert_eq!(status.source, SecretSource::Env);
        assert_eq!(status.masked.as_deref(), Some("sk-…6789"));
        let status = secrets
            .set(SecretKind::TwilioAuthToken, "  0123456789abcdef0123  ")
            .unwrap();
        assert_eq!(status.source, SecretSource::Keychain);
        assert_eq!(status.masked.as_deref(), Some("012…0123"));
        let json = serde_json::to_string(&secrets.statuses().unwrap()).unwrap();
        assert!(!json.contains("keychain-abcdef") && !json.contains("from-env-0123"));
        assert_eq!(mask(&Secret::new("short")), "••••••••");
    }

    #[test]
    fn fill_config_takes_keychain_only_where_env_is_silent() {
        let (secrets, _) = secrets_with(&[("TWILIO_AUTH_TOKEN", "env-token")]);
        secrets
            .set(SecretKind::OpenaiApiKey, "sk-keychain-key")
            .unwrap();
        secrets
            .set(SecretKind::TwilioAuthToken, "keychain-token")
            .unwrap();
        let mut config = Config {
            twilio_auth_token: Secret::new("env-token"),
            ..Config::default()
        };
        let filled = secrets.fill_config(&mut config).unwrap();
        assert_eq!(filled, vec![SecretKind::OpenaiApiKey]);
        assert_eq!(config.openai_api_key.expose(), "sk-keychain-key");
        assert_eq!(config.twilio_auth_token.expose(), "env-token");
        assert!(config.api_key.is_empty());
    }

    #[test]
    fn weak_local_api_keys_are_refused_and_generated_ones_are_strong() {
        let (secrets, store) = secrets_with(&[]);
        let err = secrets.set(SecretKind::LocalApiKey, "hunter2").unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, SecretsError::Weak { .. }), "{err:?}");
        assert!(
            message.starts_with("the local API key is too weak"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
        assert_eq!(store.get(SecretKind::LocalApiKey).unwrap(), None);
        // Other services judge their own keys.
        secrets.set(SecretKind::NgrokAuthtoken, "2abc").unwrap();

        let made = secrets.generate_local_api_key().unwrap();
        let key = made.key.expose().to_string();
        assert_eq!(key.len(), 43, "32 bytes, base64url without padding");
        assert!(crate::config::kinds::api_key_problem(&key).is_none());
        assert_eq!(
            store.get(SecretKind::LocalApiKey).unwrap(),
            Some(made.key.clone())
        );
        assert_eq!(made.status.source, SecretSource::Keychain);
        assert!(!format!("{made:?}").contains(&key), "Debug never prints it");
        let json = serde_json::to_value(&made).unwrap();
        assert_eq!(json["key"], key.as_str(), "shown once");
        assert_ne!(secrets.generate_local_api_key().unwrap().key, made.key);
        // A user's own strong key is fine too.
        secrets
            .set(
                SecretKind::LocalApiKey,
                "Zm9vYmFyLXJhbmRvbS1rZXktZm9yLXRlc3RzLTAwMDE",
            )
            .unwrap();
    }

    #[test]
    fn a_weak_key_left_in_the_keychain_is_not_used() {
        let (secrets, store) = secrets_with(&[]);
        store
            .set(SecretKind::LocalApiKey, &Secret::new("old-short-key"))
            .unwrap();
        let mut config = Config::default();
        let filled = secrets.fill_config(&mut config).unwrap();
        assert!(filled.is_empty());
        assert!(config.api_key.is_empty(), "/api refuses everything instead");
    }

    #[test]
    fn tool_secrets_live_under_tool_accounts_and_env_wins() {
        let (secrets, store) = secrets_with(&[(
            "VERBIO_TOOL_SECRET_BOOK_SLOT_V2",
            "from-env-0123456789abcdef",
        )]);
        assert_eq!(secrets.tool_secret("lookup_order").unwrap(), None);
        let status = secrets
            .set_tool_secret("lookup_order", "  kept-in-keychain-0123456789  ")
            .unwrap();
        assert_eq!(status.source, SecretSource::Keychain);
        assert_eq!(status.env_var, "VERBIO_TOOL_SECRET_LOOKUP_ORDER");
        assert_eq!(status.masked.as_deref(), Some("kep…6789"));
        assert_eq!(
            store.get_account("tool:lookup_order").unwrap(),
            Some(Secret::new("kept-in-keychain-0123456789"))
        );
        assert_eq!(
            secrets.tool_secret("lookup_order").unwrap(),
            Some(Secret::new("kept-in-keychain-0123456789"))
        );
        // Other secrets are untouched, and the fixed kinds keep their own accounts.
        assert_eq!(store.get(SecretKind::OpenaiApiKey).unwrap(), None);
        secrets.set(SecretKind::NgrokAuthtoken, "2abc").unwrap();
        assert_eq!(
            store.get_account("ngrok_authtoken").unwrap(),
            Some(Secret::new("2abc"))
        );

        // The environment wins over the keychain (headless `serve`).
        secrets
            .set_tool_secret("book-slot.v2", "in-keychain-but-overridden")
            .unwrap();
        let status = secrets.tool_secret_status("book-slot.v2").unwrap();
        assert_eq!(status.source, SecretSource::Env);
        assert_eq!(
            secrets.tool_secret("book-slot.v2").unwrap(),
            Some(Secret::new("from-env-0123456789abcdef"))
        );

        let status = secrets.delete_tool_secret("lookup_order").unwrap();
        assert_eq!(status.source, SecretSource::Missing);
        assert_eq!(secrets.tool_secret("lookup_order").unwrap(), None);
        secrets.delete_tool_secret("lookup_order").unwrap();
    }

    #[test]
    fn tool_secrets_are_generated_strong_and_never_printed() {
        let (secrets, store) = secrets_with(&[]);
        let made = secrets.generate_tool_secret("lookup_order").unwrap();
        let value = made.expose().to_string();
        assert_eq!(value.len(), 43, "32 bytes, base64url without padding");
        assert_eq!(
            store.get_account("tool:lookup_order").unwrap(),
            Some(made.clone())
        );
        assert_ne!(secrets.generate_tool_secret("lookup_order").unwrap(), made);
        assert!(!format!("{made:?}").contains(&value));
        let status = secrets.tool_secret_status("lookup_order").unwrap();
        let shown = format!("{status:?} {}", serde_json::to_string(&status).unwrap());
        assert!(!shown.contains(&value[3..39]), "{shown}");

        let err = secrets.set_tool_secret("t", "short-hunter2").unwrap_err();
        assert!(matches!(err, SecretsError::Weak { .. }), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(
            secrets.set_tool_secret("t", "  ").unwrap_err(),
            SecretsError::Empty("tool secret")
        );
        assert!(secrets.set_tool_secret("t", &"x".repeat(5000)).is_err());
        assert!(secrets.tool_secret("").is_err());
        assert_eq!(store.get_account("tool:t").unwrap(), None);
    }

    #[test]
    fn tool_secret_env_vars_upper_case_and_replace_punctuation() {
        assert_eq!(
            tool_secret_env_var("lookup_order"),
            "VERBIO_TOOL_SECRET_LOOKUP_ORDER"
        );
        assert_eq!(
            tool_secret_env_var("book-slot.v2"),
            "VERBIO_TOOL_SECRET_BOOK_SLOT_V2"
        );
        assert_eq!(tool_account("book-slot"), "tool:book-slot");
    }

    #[test]
    fn empty_and_oversized_values_are_refused() {
        let (secrets, store) = secrets_with(&[]);
        assert_eq!(
            secrets.set(SecretKind::NgrokAuthtoken, "   ").unwrap_err(),
            SecretsError::Empty("ngrok authtoken")
        );
        assert!(secrets
            .set(SecretKind::NgrokAuthtoken, &"x".repeat(5000))
            .is_err());
        assert_eq!(store.get(SecretKind::NgrokAuthtoken).unwrap(), None);
        secrets.set(SecretKind::NgrokAuthtoken, "2abc").unwrap();
        let status = secrets.delete(SecretKind::NgrokAuthtoken).unwrap();
        assert_eq!(status.source, SecretSource::Missing);
        assert_eq!(status.masked, None);
        secrets
            .delete(SecretKind::NgrokAuthtoken)
            .expect("deleting twice is fine");
    }
}
