//! The typed parsers: one [`Kind`] per sort of setting, turning an environment variable's or a flag's text
//! (and the config file's TOML value) into the value [`Config`](super::Config) holds. Pure: callers pass the
//! text, so every rule can be tested (and reused, as the onboarding's save does) without an environment.
//!
//! A refusal is an [`InvalidValue`] that says what is wrong with the value; whoever read it adds the
//! setting's name ([`InvalidValue::named`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::ConfigError;
use crate::realtime::session::SessionConfig;
use crate::tunnel::static_url::StaticUrl;
use crate::tunnel::{Tunnel as _, TunnelKind};
use crate::types::Secret;

/// Why a value was refused, without the setting's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl InvalidValue {
    /// The refusal of the setting `name` (an env var, a `--flag` or a file key).
    pub fn named(self, name: &'static str) -> ConfigError {
        ConfigError::Invalid {
            name,
            message: self.0,
        }
    }
}

/// A sort of setting: how its text and its file value become the typed value.
pub trait Kind {
    /// What the layer and `Config` hold.
    type Value;
    /// What the config file holds (TOML's own types: a port is an integer there, not text).
    type File: DeserializeOwned;
    /// Secrets never come from the file.
    const SECRET: bool = false;
    /// Two good texts, at least one of them not the default (the test that every setting reaches
    /// `Config` sets each).
    const EXAMPLES: [&'static str; 2];
    /// From an environment variable or a flag. `Ok(None)`: the text means "not set" (an empty URL).
    fn text(text: &str) -> Result<Option<Self::Value>, InvalidValue>;
    /// From the config file.
    fn file(value: Self::File) -> Result<Option<Self::Value>, InvalidValue>;
}

/// `fn file` of a kind the file holds as the value itself (a port is a TOML integer).
macro_rules! file_is_the_value {
    () => {
        fn file(value: Self::File) -> Result<Option<Self::Value>, InvalidValue> {
            Ok(Some(value))
        }
    };
}

/// `fn file` of a kind the file holds as text, read as the environment's is.
macro_rules! file_is_text {
    () => {
        fn file(value: String) -> Result<Option<Self::Value>, InvalidValue> {
            Self::text(&value)
        }
    };
}

/// Any text, kept as given (an empty one too).
pub struct Text;

impl Kind for Text {
    type Value = String;
    type File = String;
    const EXAMPLES: [&'static str; 2] = ["example-a", "example-b"];
    fn text(text: &str) -> Result<Option<String>, InvalidValue> {
        Ok(Some(text.to_string()))
    }
    file_is_the_value!();
}

/// Text where empty means "not set" (an API base, so an empty variable keeps the default).
pub struct NonEmpty;

impl Kind for NonEmpty {
    type Value = String;
    type File = String;
    const EXAMPLES: [&'static str; 2] = ["http://127.0.0.1:9", "http://127.0.0.1:10"];
    fn text(text: &str) -> Result<Option<String>, InvalidValue> {
        Ok(Some(text.to_string()).filter(|t| !t.is_empty()))
    }
    file_is_text!();
}

pub struct Port;

impl Kind for Port {
    type Value = u16;
    type File = u16;
    const EXAMPLES: [&'static str; 2] = ["9000", "9001"];
    fn text(text: &str) -> Result<Option<u16>, InvalidValue> {
        number(text, "is not a port number").map(Some)
    }
    file_is_the_value!();
}

/// The URL Twilio reaches the app at: `http(s)://host[:port]`, no path, query or credentials, trailing
/// slash trimmed ([`StaticUrl`]'s rules, so a URL the settings accept is one the tunnel opens). Empty
/// means "not set".
pub struct PublicUrl;

impl Kind for PublicUrl {
    type Value = String;
    type File = String;
    const EXAMPLES: [&'static str; 2] = ["https://a.example", "https://b.example"];
    fn text(text: &str) -> Result<Option<String>, InvalidValue> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        // The error quotes the URL without any `user:password@`.
        let url = StaticUrl::new(text).map_err(|e| InvalidValue(e.to_string()))?;
        Ok(Some(url.public_url().to_string()))
    }
    file_is_text!();
}

/// `ngrok`, or `none` / empty.
pub struct Tunnel;

impl Kind for Tunnel {
    type Value = TunnelKind;
    type File = String;
    const EXAMPLES: [&'static str; 2] = ["ngrok", "none"];
    fn text(text: &str) -> Result<Option<TunnelKind>, InvalidValue> {
        TunnelKind::from_name(text).map(Some).ok_or_else(|| {
            InvalidValue(format!(
                "{:?} is not a tunnel (use \"ngrok\" or \"none\")",
                text.trim()
            ))
        })
    }
    file_is_text!();
}

/// A reserved ngrok domain: a bare host name (`example.ngrok.app`). Empty means "not set".
pub struct NgrokDomain;

impl Kind for NgrokDomain {
    type Value = String;
    type File = String;
    const EXAMPLES: [&'static str; 2] = ["a.ngrok.app", "b.ngrok.app"];
    fn text(text: &str) -> Result<Option<String>, InvalidValue> {
        let domain = text.trim();
        if domain.is_empty() {
            return Ok(None);
        }
        if domain.contains("://")
            || domain.contains('/')
            || domain.chars().any(char::is_whitespace)
            || !domain.contains('.')
        {
            return Err(InvalidValue(format!(
                "{domain:?} is not an ngrok domain: use a bare host name such as example.ngrok.app"
            )));
        }
        Ok(Some(domain.to_string()))
    }
    file_is_text!();
}

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`, any case; a boolean in the file.
pub struct Flag;

impl Kind for Flag {
    type Value = bool;
    type File = bool;
    const EXAMPLES: [&'static str; 2] = ["true", "false"];
    fn text(text: &str) -> Result<Option<bool>, InvalidValue> {
        match text.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(InvalidValue(format!("{text:?} is not true or false"))),
        }
    }
    file_is_the_value!();
}

/// A positive number of seconds, fractions allowed (tests use short rollovers).
pub struct Seconds;

impl Kind for Seconds {
    type Value = Duration;
    type File = f64;
    const EXAMPLES: [&'static str; 2] = ["7", "8.5"];
    fn text(text: &str) -> Result<Option<Duration>, InvalidValue> {
        Seconds::file(number(text, "is not a number of seconds")?)
    }
    fn file(value: f64) -> Result<Option<Duration>, InvalidValue> {
        if !(value.is_finite() && value > 0.0) {
            return Err(InvalidValue(format!(
                "{value} must be a positive number of seconds"
            )));
        }
        Ok(Some(Duration::from_secs_f64(value)))
    }
}

/// A whole number of seconds, at least 1.
pub struct WholeSeconds;

impl Kind for WholeSeconds {
    type Value = Duration;
    type File = u32;
    const EXAMPLES: [&'static str; 2] = ["7", "8"];
    fn text(text: &str) -> Result<Option<Duration>, InvalidValue> {
        WholeSeconds::file(number(text, "is not a whole number of seconds")?)
    }
    fn file(value: u32) -> Result<Option<Duration>, InvalidValue> {
        Ok(Some(Duration::from_secs(at_least_one(value)?.into())))
    }
}

/// A count, 0 allowed.
pub struct Count;

impl Kind for Count {
    type Value = u32;
    type File = u32;
    const EXAMPLES: [&'static str; 2] = ["7", "8"];
    fn text(text: &str) -> Result<Option<u32>, InvalidValue> {
        number(text, "is not a count").map(Some)
    }
    file_is_the_value!();
}

/// Requests per minute, at least 1.
pub struct PerMinute;

impl Kind for PerMinute {
    type Value = u32;
    type File = u32;
    const EXAMPLES: [&'static str; 2] = ["7", "8"];
    fn text(text: &str) -> Result<Option<u32>, InvalidValue> {
        PerMinute::file(number(text, "is not a number of requests per minute")?)
    }
    fn file(value: u32) -> Result<Option<u32>, InvalidValue> {
        at_least_one(value).map(Some)
    }
}

/// Comma-separated in the environment (blanks dropped), an array in the file.
pub struct List;

impl Kind for List {
    type Value = Vec<String>;
    type File = Vec<String>;
    const EXAMPLES: [&'static str; 2] =
        ["https://a.example", "https://a.example, https://b.example"];
    fn text(text: &str) -> Result<Option<Vec<String>>, InvalidValue> {
        Ok(Some(
            text.split(',')
                .map(|item| item.trim().to_string())
                .filter(|item| !item.is_empty())
                .collect(),
        ))
    }
    file_is_the_value!();
}

pub struct Folder;

impl Kind for Folder {
    type Value = PathBuf;
    type File = PathBuf;
    const EXAMPLES: [&'static str; 2] = ["/tmp/verbio-a", "/tmp/verbio-b"];
    fn text(text: &str) -> Result<Option<PathBuf>, InvalidValue> {
        Ok(Some(PathBuf::from(text)))
    }
    file_is_the_value!();
}

/// A key or token: from the environment only (the keychain fills the rest, see `secrets`).
pub struct SecretText;

impl Kind for SecretText {
    type Value = Secret;
    /// Never read: a secret has no file key, and the file refuses one that names it.
    type File = String;
    const SECRET: bool = true;
    const EXAMPLES: [&'static str; 2] = ["example-secret-a", "example-secret-b"];
    fn text(text: &str) -> Result<Option<Secret>, InvalidValue> {
        Ok(Some(Secret::new(text)))
    }
    fn file(_: String) -> Result<Option<Secret>, InvalidValue> {
        Err(InvalidValue(
            "secrets are never read from the config file".into(),
        ))
    }
}

/// The local API key: from the environment only, and strong enough to face the internet (see
/// [`api_key_problem`]). Empty means "not set" (then `/api` refuses every request).
pub struct ApiKey;

impl Kind for ApiKey {
    type Value = Secret;
    /// Never read: a secret has no file key, and the file refuses one that names it.
    type File = String;
    const SECRET: bool = true;
    const EXAMPLES: [&'static str; 2] = [
        "example-local-api-key-aaaaaaaaaaaaaaaaaaaaaaa0",
        "example-local-api-key-bbbbbbbbbbbbbbbbbbbbbbb1",
    ];
    fn text(text: &str) -> Result<Option<Secret>, InvalidValue> {
        if text.is_empty() {
            return Ok(None);
        }
        match api_key_problem(text) {
            Some(why) => Err(InvalidValue(why)),
            None => Ok(Some(Secret::new(text))),
        }
    }
    fn file(_: String) -> Result<Option<Secret>, InvalidValue> {
        Err(InvalidValue(
            "secrets are never read from the config file".into(),
        ))
    }
}

/// The fewest characters a local API key may have: a generated key is 32 random bytes (43 characters
/// in base64url), and a typed one must not be much weaker.
pub const MIN_API_KEY_CHARS: usize = 32;
/// A key of fewer different characters is a pattern (`aaaa…`, `0101…`), not a secret.
const MIN_API_KEY_DISTINCT: usize = 10;

/// Why `key` cannot be the local API key, or `None`. The answer never contains the key.
pub fn api_key_problem(key: &str) -> Option<String> {
    let how = "Verbio generates one in Setup; or use `openssl rand -base64 32`";
    if !key.chars().all(|c| c.is_ascii_graphic()) {
        return Some(format!(
            "must be printable ASCII without spaces (it travels in the X-API-Key header); {how}"
        ));
    }
    if key.len() < MIN_API_KEY_CHARS {
        return Some(format!(
            "is too weak: {} characters, at least {MIN_API_KEY_CHARS} are needed; {how}",
            key.len()
        ));
    }
    let distinct = key.chars().collect::<std::collections::HashSet<_>>().len();
    if distinct < MIN_API_KEY_DISTINCT {
        return Some(format!(
            "is too weak: it repeats a few characters ({distinct} different ones); {how}"
        ));
    }
    None
}

/// A whole number, at least 1 (a cap of 0 would refuse everything).
pub struct AtLeastOne;

impl Kind for AtLeastOne {
    type Value = u32;
    type File = u32;
    const EXAMPLES: [&'static str; 2] = ["7", "8"];
    fn text(text: &str) -> Result<Option<u32>, InvalidValue> {
        AtLeastOne::file(number(text, "is not a whole number")?)
    }
    fn file(value: u32) -> Result<Option<u32>, InvalidValue> {
        at_least_one(value).map(Some)
    }
}

/// A number of minutes, or off: `0`, `off` or empty (the file: `0`) turns it off.
pub struct OptionalMinutes;

impl Kind for OptionalMinutes {
    type Value = Option<u32>;
    type File = u32;
    const EXAMPLES: [&'static str; 2] = ["600", "off"];
    fn text(text: &str) -> Result<Option<Option<u32>>, InvalidValue> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("off") {
            return Ok(Some(None));
        }
        OptionalMinutes::file(number(text, "is not a number of minutes (or off)")?)
    }
    fn file(value: u32) -> Result<Option<Option<u32>>, InvalidValue> {
        Ok(Some(Some(value).filter(|m| *m > 0)))
    }
}

/// Browser origins (`scheme://host[:port]`): comma-separated in the environment, an array in the file.
/// A wildcard is refused: `/api` is behind a key, and no page on the web may call it with one.
pub struct Origins;

impl Kind for Origins {
    type Value = Vec<String>;
    type File = Vec<String>;
    const EXAMPLES: [&'static str; 2] =
        ["https://a.example", "https://a.example, https://b.example"];
    fn text(text: &str) -> Result<Option<Vec<String>>, InvalidValue> {
        match List::text(text)? {
            Some(origins) => Origins::file(origins),
            None => Ok(None),
        }
    }
    fn file(origins: Vec<String>) -> Result<Option<Vec<String>>, InvalidValue> {
        for origin in &origins {
            if let Some(why) = origin_problem(origin) {
                return Err(InvalidValue(format!("{origin:?} {why}")));
            }
        }
        Ok(Some(origins))
    }
}

/// Why `origin` is not a browser origin a CORS allow-list can name, or `None`.
fn origin_problem(origin: &str) -> Option<&'static str> {
    if origin.contains('*') {
        return Some("is a wildcard: name each origin (https://host[:port])");
    }
    let Ok(url) = url::Url::parse(origin) else {
        return Some("is not an origin (https://host[:port])");
    };
    let bare = matches!(url.path(), "" | "/") && !origin.ends_with('/');
    let ok = matches!(url.scheme(), "http" | "https" | "tauri")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none()
        && bare;
    (!ok).then_some("is not an origin (https://host[:port], no path)")
}

/// The agent's session: a `[session]` table in the file, the same fields as JSON in the environment
/// (as `PUT /api/settings/session` takes them). Fields left out keep their defaults.
pub struct Session;

impl Kind for Session {
    type Value = SessionConfig;
    type File = SessionConfig;
    const EXAMPLES: [&'static str; 2] = [r#"{"voice": "cedar"}"#, r#"{"voice": "marin"}"#];
    fn text(text: &str) -> Result<Option<SessionConfig>, InvalidValue> {
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| InvalidValue(format!("is not a session as JSON ({e})")))
    }
    file_is_the_value!();
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, InvalidValue> {
    text.parse()
        .map_err(|_| InvalidValue(format!("{text:?} {what}")))
}

fn at_least_one(value: u32) -> Result<u32, InvalidValue> {
    if value == 0 {
        return Err(InvalidValue("must be at least 1".into()));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal<K: Kind>(text: &str) -> String
    where
        K::Value: std::fmt::Debug,
    {
        K::text(text).expect_err(text).to_string()
    }

    #[test]
    fn ports() {
        assert_eq!(Port::text("8081"), Ok(Some(8081)));
        assert_eq!(Port::text("0"), Ok(Some(0)), "0 picks a free port");
        assert!(Port::text(" 80").is_err(), "as exact as before");
        assert_eq!(refusal::<Port>("eighty"), "\"eighty\" is not a port number");
        assert!(Port::text("70000").is_err());
        assert!(Port::text("").is_err());
    }

    #[test]
    fn public_urls_are_scheme_and_host_only() {
        assert_eq!(
            PublicUrl::text("https://abc.ngrok.app/"),
            Ok(Some("https://abc.ngrok.app".into())),
            "trailing slash trimmed"
        );
        assert_eq!(
            PublicUrl::text("http://127.0.0.1:8081"),
            Ok(Some("http://127.0.0.1:8081".into()))
        );
        assert_eq!(PublicUrl::text(""), Ok(None), "empty is not set");
        for bad in [
            "ftp://x.example",
            "https://x.example/twiml",
            "https://x.example/?a=1",
            "not a url",
        ] {
            let message = refusal::<PublicUrl>(bad);
            assert!(message.contains(bad), "quotes the value: {message}");
        }
        assert!(refusal::<PublicUrl>("ftp://x").contains("https://"));
        let message = refusal::<PublicUrl>("https://user:hunter2@x.example");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn tunnel_kinds() {
        assert_eq!(Tunnel::text("ngrok"), Ok(Some(TunnelKind::Ngrok)));
        assert_eq!(Tunnel::text(" none "), Ok(Some(TunnelKind::None)));
        assert_eq!(Tunnel::text(""), Ok(Some(TunnelKind::None)));
        assert_eq!(
            refusal::<Tunnel>("cloudflared"),
            "\"cloudflared\" is not a tunnel (use \"ngrok\" or \"none\")"
        );
        assert!(Tunnel::text("Ngrok").is_err(), "names are exact, as before");
        for kind in [TunnelKind::None, TunnelKind::Ngrok] {
            assert_eq!(Tunnel::text(kind.name()), Ok(Some(kind)));
        }
    }

    #[test]
    fn flags() {
        for yes in ["1", "true", "TRUE", "yes", "on"] {
            assert_eq!(Flag::text(yes), Ok(Some(true)), "{yes}");
        }
        for no in ["0", "false", "No", "off"] {
            assert_eq!(Flag::text(no), Ok(Some(false)), "{no}");
        }
        assert_eq!(refusal::<Flag>("maybe"), "\"maybe\" is not true or false");
        assert!(Flag::text("").is_err());
    }

    #[test]
    fn durations_and_numbers() {
        assert_eq!(Seconds::text("2.5"), Ok(Some(Duration::from_millis(2500))));
        assert_eq!(Seconds::file(30.0), Ok(Some(Duration::from_secs(30))));
        assert_eq!(
            refusal::<Seconds>("soon"),
            "\"soon\" is not a number of seconds"
        );
        for bad in ["0", "-1", "inf", "NaN"] {
            assert!(
                refusal::<Seconds>(bad).contains("positive number of seconds"),
                "{bad}"
            );
        }
        assert_eq!(WholeSeconds::text("30"), Ok(Some(Duration::from_secs(30))));
        assert_eq!(
            WholeSeconds::file(0),
            Err(InvalidValue("must be at least 1".into()))
        );
        assert!(WholeSeconds::text("1.5").is_err());
        assert_eq!(Count::text("0"), Ok(Some(0)));
        assert_eq!(refusal::<Count>("three"), "\"three\" is not a count");
        assert_eq!(PerMinute::text("60"), Ok(Some(60)));
        assert_eq!(refusal::<PerMinute>("0"), "must be at least 1");
        assert_eq!(
            refusal::<PerMinute>("lots"),
            "\"lots\" is not a number of requests per minute"
        );
    }

    #[test]
    fn lists_texts_and_domains() {
        assert_eq!(
            List::text(" https://a.example, ,https://b.example "),
            Ok(Some(vec![
                "https://a.example".to_string(),
                "https://b.example".to_string()
            ]))
        );
        assert_eq!(List::text(""), Ok(Some(vec![])));
        assert_eq!(Text::text(""), Ok(Some(String::new())), "kept as given");
        assert_eq!(NonEmpty::text(""), Ok(None));
        assert_eq!(
            NgrokDomain::text(" abc.ngrok.app "),
            Ok(Some("abc.ngrok.app".into()))
        );
        assert_eq!(NgrokDomain::text(""), Ok(None));
        for bad in [
            "https://abc.ngrok.app",
            "abc.ngrok.app/x",
            "a b.app",
            "localhost",
        ] {
            assert!(
                refusal::<NgrokDomain>(bad).contains("bare host name"),
                "{bad}"
            );
        }
    }

    #[test]
    fn sessions_and_secrets() {
        let session = Session::text(r#"{"voice": "cedar"}"#).unwrap().unwrap();
        assert_eq!(session.voice.as_str(), "cedar");
        assert_eq!(session.model, SessionConfig::default().model);
        assert!(refusal::<Session>("{").contains("JSON"));
        assert!(refusal::<Session>(r#"{"voise": "cedar"}"#).contains("voise"));
        let secret = SecretText::text("sk-123").unwrap().unwrap();
        assert_eq!(secret.expose(), "sk-123");
        assert!(SecretText::file("sk-123".into()).is_err());
    }

    #[test]
    fn weak_api_keys_are_refused_without_being_quoted() {
        let strong = "Zm9vYmFyLXJhbmRvbS1rZXktZm9yLXRlc3RzLTAwMDE";
        assert_eq!(ApiKey::text(strong).unwrap().unwrap().expose(), strong);
        assert_eq!(ApiKey::text(""), Ok(None), "empty is not set");
        for weak in [
            "k",
            "local-api-key-for-tests-0001",
            &"a".repeat(64),
            &"01".repeat(20),
            "a key with spaces in it, long enough to pass",
            "ключ-ключ-ключ-ключ-ключ-ключ-ключ-ключ",
        ] {
            let message = refusal::<ApiKey>(weak);
            assert!(
                weak.len() < 4 || !message.contains(weak),
                "never quotes the key: {message}"
            );
            assert!(message.contains("Setup"), "says how to get one: {message}");
        }
        assert!(refusal::<ApiKey>("short").contains("at least 32"));
        assert!(ApiKey::file(strong.into()).is_err());
    }

    #[test]
    fn caps() {
        assert_eq!(AtLeastOne::text("10"), Ok(Some(10)));
        assert_eq!(refusal::<AtLeastOne>("0"), "must be at least 1");
        assert_eq!(OptionalMinutes::text("600"), Ok(Some(Some(600))));
        for off in ["", "0", "off", "OFF"] {
            assert_eq!(OptionalMinutes::text(off), Ok(Some(None)), "{off:?}");
        }
        assert_eq!(OptionalMinutes::file(0), Ok(Some(None)));
        assert!(refusal::<OptionalMinutes>("lots").contains("minutes"));
    }

    #[test]
    fn cors_origins_are_origins_never_a_wildcard() {
        assert_eq!(
            Origins::text("https://a.example, http://127.0.0.1:5173,tauri://localhost"),
            Ok(Some(vec![
                "https://a.example".to_string(),
                "http://127.0.0.1:5173".to_string(),
                "tauri://localhost".to_string()
            ]))
        );
        assert_eq!(Origins::text(""), Ok(Some(vec![])));
        assert!(refusal::<Origins>("*").contains("wildcard"));
        assert!(refusal::<Origins>("https://*.example").contains("wildcard"));
        for bad in [
            "a.example",
            "https://a.example/app",
            "https://a.example/",
            "null",
        ] {
            assert!(refusal::<Origins>(bad).contains("not an origin"), "{bad}");
        }
        assert!(Origins::file(vec!["*".into()]).is_err());
    }
}
