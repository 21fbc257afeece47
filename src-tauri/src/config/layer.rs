//! The settings table: every setting once, with where it is read from. From it come [`ConfigLayer`] (one
//! source's values, every field optional), its readers (config file, environment, command line), the merge
//! and the step that puts a merged layer into [`Config`].

use std::path::Path;

use super::kinds::{
    ApiKey, AtLeastOne, Count, Flag, Folder, Kind, NgrokDomain, NonEmpty, OptionalMinutes, Origins,
    PerMinute, Port, PublicUrl, Seconds, SecretText, Session, Text, Tunnel, WholeSeconds,
};
use super::{Config, ConfigError};

/// A setting's command-line flag (only `verbio serve` has them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CliFlag {
    /// `public-url`.
    pub long: &'static str,
    /// `--public-url`, the name its errors give.
    pub shown: &'static str,
    /// `PUBLIC_URL`, in `--help`.
    pub value_name: &'static str,
}

/// Where one setting is read from.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The [`ConfigLayer`] field.
    pub field: &'static str,
    /// Every setting has one.
    pub env: &'static str,
    /// Its key in the config file (`recording.twilio_inbound` is `twilio_inbound` in `[recording]`);
    /// secrets have none.
    pub file: Option<&'static str>,
    pub flag: Option<CliFlag>,
    /// What it is (the field's doc), for `--help`.
    pub help: &'static str,
    pub secret: bool,
    pub examples: [&'static str; 2],
}

macro_rules! optional {
    () => {
        None
    };
    ($($value:tt)+) => {
        Some($($value)+)
    };
}

/// One line per setting: `field: Kind => path in Config; env "NAME"[, file "key"][, flag "long" "VALUE"];`.
/// The order is the order values are put into `Config`: `session` before `model`, which sets a field of it.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $kind:ty => $($target:ident).+;
        env $env:literal $(, file $file:literal)? $(, flag $flag:literal $value_name:literal)?;
    )*) => {
        /// One source's settings (the config file, the environment or the command line); `None` leaves a
        /// setting to the sources below. Every value is already checked by its [`Kind`].
        #[derive(Debug, Clone, Default)]
        pub struct ConfigLayer {
            $( $(#[doc = $doc])* pub $field: Option<<$kind as Kind>::Value>, )*
        }

        /// Every setting, in the order of [`ConfigLayer`]'s fields.
        pub const SETTINGS: &[Setting] = &[$(
            Setting {
                field: stringify!($field),
                env: $env,
                file: optional!($($file)?),
                flag: optional!($(CliFlag {
                    long: $flag,
                    shown: concat!("--", $flag),
                    value_name: $value_name,
                })?),
                help: concat!($($doc),*),
                secret: <$kind as Kind>::SECRET,
                examples: <$kind as Kind>::EXAMPLES,
            },
        )*];

        impl ConfigLayer {
            fn read(source: &mut impl Source) -> Result<ConfigLayer, ConfigError> {
                Ok(ConfigLayer {
                    $( $field: source.value::<$kind>(setting(stringify!($field)))?, )*
                })
            }

            /// `self` with `higher`'s values where it has them.
            pub fn over(self, higher: ConfigLayer) -> ConfigLayer {
                ConfigLayer {
                    $( $field: higher.$field.or(self.$field), )*
                }
            }

            /// Puts the values this layer has into `config`.
            pub fn apply(self, config: &mut Config) {
                $( if let Some(value) = self.$field {
                    config.$($target).+ = value.into();
                } )*
            }
        }
    };
}

settings! {
    /// Address of the public listener, Twilio's routes only (default 127.0.0.1).
    bind_host: Text => bind_host; env "VERBIO_BIND", file "bind_host", flag "bind" "BIND";
    /// Port for Twilio's webhook and media socket (default 8081).
    port: Port => port; env "VERBIO_PORT", file "port", flag "port" "PORT";
    /// Port of the local API, /api (default 8082; 0 picks a free one).
    api_port: Port => api_port; env "VERBIO_API_PORT", file "api_port", flag "api-port" "API_PORT";
    /// Address of the local API (default 127.0.0.1; anything else exposes /api).
    api_bind_host: Text => api_bind_host; env "VERBIO_API_BIND", file "api_bind_host";
    /// The URL Twilio reaches this server at.
    public_url: PublicUrl => public_url;
        env "VERBIO_PUBLIC_URL", file "public_url", flag "public-url" "PUBLIC_URL";
    /// Use X-Forwarded-Proto/Host (without a public URL): only behind a proxy you trust.
    trust_forwarded: Flag => trust_forwarded;
        env "VERBIO_TRUST_FORWARDED", file "trust_forwarded";
    /// Folder for the call library.
    data_dir: Folder => data_dir; env "VERBIO_DATA_DIR", file "data_dir", flag "data-dir" "DATA_DIR";
    /// Realtime WebSocket URL.
    realtime_url: Text => realtime_url;
        env "VERBIO_REALTIME_URL", file "realtime_url", flag "realtime-url" "REALTIME_URL";
    openai_api_key: SecretText => openai_api_key; env "OPENAI_API_KEY";
    /// OpenAI REST base URL for the post-call summary, the key check and the model list (default
    /// `https://api.openai.com`).
    openai_api_base: NonEmpty => openai_api_base;
        env "VERBIO_OPENAI_API_BASE", file "openai_api_base";
    twilio_account_sid: Text => twilio_account_sid;
        env "TWILIO_ACCOUNT_SID", file "twilio_account_sid";
    twilio_auth_token: SecretText => twilio_auth_token; env "TWILIO_AUTH_TOKEN";
    twilio_signing_key: SecretText => twilio_signing_key; env "TWILIO_WEBHOOK_SIGNING_KEY";
    session: Session => session; env "VERBIO_SESSION", file "session";
    model: Text => session.model; env "VERBIO_MODEL";
    session_rollover: Seconds => bridge.session_rollover_after;
        env "VERBIO_SESSION_ROLLOVER_SECS", file "session_rollover_secs";
    reconnect_attempts: Count => bridge.reconnect_attempts;
        env "VERBIO_RECONNECT_ATTEMPTS", file "reconnect_attempts";
    /// Calls live (or about to stream) at once; more are refused with a short message (default 10).
    max_concurrent_calls: AtLeastOne => bridge.max_concurrent_calls;
        env "VERBIO_MAX_CALLS", file "max_calls";
    /// A call is ended with a goodbye after this many seconds (default 1800).
    max_call_length: Seconds => bridge.max_call_length;
        env "VERBIO_MAX_CALL_SECS", file "max_call_secs";
    /// Minutes of calls in any 24 hours; new calls are refused beyond it (default off).
    daily_minutes: OptionalMinutes => bridge.daily_minutes;
        env "VERBIO_DAILY_MINUTES", file "daily_minutes";
    /// At least 32 characters (the desktop app generates one).
    api_key: ApiKey => api_key; env "VERBIO_API_KEY";
    cors_origins: Origins => cors_origins; env "VERBIO_CORS_ORIGINS", file "cors_origins";
    api_rate_per_minute: PerMinute => api_rate_per_minute;
        env "VERBIO_RATE_LIMIT", file "api_rate_per_minute";
    twilio_rate_per_minute: PerMinute => twilio_rate_per_minute;
        env "VERBIO_TWILIO_RATE_LIMIT", file "twilio_rate_per_minute";
    /// Twilio REST API base URL (default `https://api.twilio.com`).
    twilio_api_base: NonEmpty => telephony.api_base;
        env "TWILIO_API_BASE", file "twilio_api_base", flag "twilio-api-base" "TWILIO_API_BASE";
    apology_message: Text => telephony.apology_message;
        env "VERBIO_APOLOGY_MESSAGE", file "apology_message";
    voicemail_message: Text => telephony.voicemail_message;
        env "VERBIO_VOICEMAIL_MESSAGE", file "voicemail_message";
    ring_timeout: WholeSeconds => telephony.ring_timeout;
        env "VERBIO_RING_TIMEOUT_SECS", file "ring_timeout_secs";
    /// Open an ngrok tunnel for Twilio: `ngrok` or `none` (authtoken from NGROK_AUTHTOKEN, reserved
    /// domain from NGROK_DOMAIN).
    tunnel: Tunnel => tunnel.kind; env "VERBIO_TUNNEL", file "tunnel", flag "tunnel" "TUNNEL";
    ngrok_authtoken: SecretText => tunnel.ngrok_authtoken; env "NGROK_AUTHTOKEN";
    ngrok_domain: NgrokDomain => tunnel.ngrok_domain; env "NGROK_DOMAIN", file "ngrok_domain";
    record: Flag => recording.enabled; env "VERBIO_RECORD";
    delete_twilio_copy: Flag => recording.delete_twilio_copy; env "VERBIO_TWILIO_RECORDING_DELETE";
    twilio_inbound: Flag => recording.twilio_inbound;
        env "VERBIO_TWILIO_RECORDING_INBOUND", file "recording.twilio_inbound";
}

/// The table's line for `field` (the macro passes only names from the table).
fn setting(field: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|s| s.field == field)
        .unwrap_or_else(|| unreachable!("{field} is not in the settings table"))
}

/// Where a layer's values come from.
trait Source {
    fn value<K: Kind>(
        &mut self,
        setting: &'static Setting,
    ) -> Result<Option<K::Value>, ConfigError>;
}

/// Environment variables, read through `get` (the process environment, or a map in tests).
struct Env<F>(F);

impl<F: Fn(&str) -> Option<String>> Source for Env<F> {
    fn value<K: Kind>(
        &mut self,
        setting: &'static Setting,
    ) -> Result<Option<K::Value>, ConfigError> {
        match (self.0)(setting.env) {
            Some(text) => K::text(&text).map_err(|e| e.named(setting.env)),
            None => Ok(None),
        }
    }
}

/// The config file's table; keys are taken out as they are read, so what is left is unknown.
struct File<'a> {
    path: &'a Path,
    table: toml::Table,
}

impl File<'_> {
    fn problem(&self, message: String) -> ConfigError {
        ConfigError::Parse {
            path: self.path.to_path_buf(),
            message,
        }
    }

    /// Takes `a.b` out of the table, dropping `[a]` once it is empty.
    fn take(&mut self, key: &str) -> Option<toml::Value> {
        match key.split_once('.') {
            None => self.table.remove(key),
            Some((table, rest)) => {
                let inner = self.table.get_mut(table)?.as_table_mut()?;
                let value = inner.remove(rest);
                if inner.is_empty() {
                    self.table.remove(table);
                }
                value
            }
        }
    }

    /// The first key no setting read, said the way a person fixes it.
    fn leftover(&self) -> Option<String> {
        let (key, value) = self.table.iter().next()?;
        if let Some(secret) = SETTINGS
            .iter()
            .find(|s| s.secret && s.field == key.as_str())
        {
            return Some(format!(
                "{key} is a secret: it is never read from the config file (use {} or the OS keychain)",
                secret.env
            ));
        }
        let key = match value.as_table().and_then(|t| t.keys().next()) {
            // A known table with an unknown key in it.
            Some(inner)
                if SETTINGS
                    .iter()
                    .any(|s| s.file.is_some_and(|f| f.starts_with(&format!("{key}.")))) =>
            {
                format!("{key}.{inner}")
            }
            _ => key.clone(),
        };
        Some(format!("unknown key {key}"))
    }
}

impl Source for File<'_> {
    fn value<K: Kind>(
        &mut self,
        setting: &'static Setting,
    ) -> Result<Option<K::Value>, ConfigError> {
        let Some(key) = setting.file else {
            return Ok(None);
        };
        let Some(value) = self.take(key) else {
            return Ok(None);
        };
        let value: K::File = value
            .try_into()
            .map_err(|e: toml::de::Error| self.problem(format!("{key}: {}", e.message())))?;
        K::file(value).map_err(|e| self.problem(format!("invalid value for {key}: {e}")))
    }
}

/// `verbio serve`'s settings flags, as given; [`ConfigLayer::from_flags`] checks them. The flags are the
/// table's lines with a `flag`, added to the command by this type's [`clap::Args`].
#[derive(Debug, Clone, Default)]
pub struct CommandLine {
    /// (field, text).
    given: Vec<(&'static str, String)>,
}

impl Source for &CommandLine {
    fn value<K: Kind>(
        &mut self,
        setting: &'static Setting,
    ) -> Result<Option<K::Value>, ConfigError> {
        let (Some(flag), Some((_, text))) = (
            setting.flag,
            self.given.iter().find(|(field, _)| *field == setting.field),
        ) else {
            return Ok(None);
        };
        K::text(text).map_err(|e| e.named(flag.shown))
    }
}

impl clap::FromArgMatches for CommandLine {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut flags = CommandLine::default();
        flags.update_from_arg_matches(matches)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        for setting in SETTINGS {
            let Some(flag) = setting.flag else { continue };
            if let Some(text) = matches.get_one::<String>(flag.long) {
                self.given.retain(|(field, _)| *field != setting.field);
                self.given.push((setting.field, text.clone()));
            }
        }
        Ok(())
    }
}

impl clap::Args for CommandLine {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        SETTINGS
            .iter()
            .fold(cmd, |cmd, setting| match setting.flag {
                Some(flag) => cmd.arg(
                    clap::Arg::new(flag.long)
                        .long(flag.long)
                        .value_name(flag.value_name)
                        .value_parser(clap::value_parser!(String))
                        .help(format!(
                            "{} (env {})",
                            setting.help.trim().trim_end_matches('.'),
                            setting.env
                        )),
                ),
                None => cmd,
            })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl ConfigLayer {
    /// Reads environment variables through `get`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<ConfigLayer, ConfigError> {
        ConfigLayer::read(&mut Env(get))
    }

    /// Reads a TOML config file. Unknown keys and secrets are refused.
    pub fn from_file(path: &Path) -> Result<ConfigLayer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut file = File {
            path,
            table: toml::Table::new(),
        };
        file.table = text
            .parse()
            .map_err(|e: toml::de::Error| file.problem(e.message().to_string()))?;
        let layer = ConfigLayer::read(&mut file)?;
        match file.leftover() {
            Some(problem) => Err(file.problem(problem)),
            None => Ok(layer),
        }
    }

    /// Checks `verbio serve`'s flags.
    pub fn from_flags(flags: &CommandLine) -> Result<ConfigLayer, ConfigError> {
        ConfigLayer::read(&mut &*flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> ConfigLayer {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ConfigLayer::from_env(|name| map.get(name).cloned()).expect("good env")
    }

    fn file(text: &str) -> Result<ConfigLayer, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        ConfigLayer::from_file(&path)
    }

    /// Flags as `(long name, text)`, as if typed.
    fn flags<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> ConfigLayer {
        ConfigLayer::from_flags(&typed(pairs)).expect("good flags")
    }

    fn typed<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> CommandLine {
        let given = pairs
            .into_iter()
            .map(|(long, text)| {
                let setting = SETTINGS
                    .iter()
                    .find(|s| s.flag.is_some_and(|f| f.long == long))
                    .expect("a flag");
                (setting.field, text.to_string())
            })
            .collect();
        CommandLine { given }
    }

    fn config(layers: impl IntoIterator<Item = ConfigLayer>) -> Config {
        Config::from_layers(layers)
    }

    /// Adding a setting is two edits (the `Config` field with its default, and its line in the table);
    /// this holds every line to having an environment name and reaching `Config`.
    #[test]
    fn every_setting_has_an_env_name_and_reaches_config() {
        let default = format!("{:?}", Config::default());
        let mut names = std::collections::HashSet::new();
        for setting in SETTINGS {
            assert!(
                setting
                    .env
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_')
                    && !setting.env.is_empty(),
                "{}: env name {:?}",
                setting.field,
                setting.env
            );
            assert!(names.insert(setting.env), "{} used twice", setting.env);
            // Secrets print as `***` once set, so `Debug` shows every setting's effect.
            let reached = setting.examples.iter().any(|example| {
                let layer = env(&[(setting.env, example)]);
                format!("{:?}", config([layer])) != default
            });
            assert!(
                reached,
                "{} ({}) does not reach Config",
                setting.field, setting.env
            );
        }
    }

    #[test]
    fn file_keys_and_flags_are_the_documented_ones_and_secrets_stay_out_of_the_file() {
        let keys: Vec<&str> = SETTINGS.iter().filter_map(|s| s.file).collect();
        assert_eq!(
            keys,
            [
                "bind_host",
                "port",
                "api_port",
                "api_bind_host",
                "public_url",
                "trust_forwarded",
                "data_dir",
                "realtime_url",
                "openai_api_base",
                "twilio_account_sid",
                "session",
                "session_rollover_secs",
                "reconnect_attempts",
                "max_calls",
                "max_call_secs",
                "daily_minutes",
                "cors_origins",
                "api_rate_per_minute",
                "twilio_rate_per_minute",
                "twilio_api_base",
                "apology_message",
                "voicemail_message",
                "ring_timeout_secs",
                "tunnel",
                "ngrok_domain",
                "recording.twilio_inbound",
            ]
        );
        let flags: Vec<&str> = SETTINGS
            .iter()
            .filter_map(|s| s.flag.map(|f| f.long))
            .collect();
        assert_eq!(
            flags,
            [
                "bind",
                "port",
                "api-port",
                "public-url",
                "data-dir",
                "realtime-url",
                "twilio-api-base",
                "tunnel"
            ]
        );
        let secrets: Vec<&str> = SETTINGS
            .iter()
            .filter(|s| s.secret)
            .map(|s| s.env)
            .collect();
        assert_eq!(
            secrets,
            [
                "OPENAI_API_KEY",
                "TWILIO_AUTH_TOKEN",
                "TWILIO_WEBHOOK_SIGNING_KEY",
                "VERBIO_API_KEY",
                "NGROK_AUTHTOKEN"
            ]
        );
        assert!(SETTINGS.iter().all(|s| !(s.secret && s.file.is_some())));
        for secret in [
            "openai_api_key",
            "twilio_auth_token",
            "api_key",
            "ngrok_authtoken",
        ] {
            let err = file(&format!("{secret} = \"sk-in-the-file\"\n")).unwrap_err();
            let message = err.to_string();
            assert!(message.contains("is a secret"), "{message}");
            assert!(!message.contains("sk-in-the-file"), "{message}");
        }
    }

    #[test]
    fn the_keychain_and_the_layers_agree_on_secret_names() {
        use crate::secrets::SecretKind;
        for (kind, field) in [
            (SecretKind::OpenaiApiKey, "openai_api_key"),
            (SecretKind::TwilioAuthToken, "twilio_auth_token"),
            (SecretKind::NgrokAuthtoken, "ngrok_authtoken"),
            (SecretKind::LocalApiKey, "api_key"),
        ] {
            assert_eq!(setting(field).env, kind.env_var());
        }
    }

    #[test]
    fn defaults_then_file_then_env_then_command_line() {
        let from_file = file("port = 9100\nbind_host = \"0.0.0.0\"\ntunnel = \"ngrok\"\n").unwrap();
        let from_env = env(&[("VERBIO_PORT", "9200"), ("VERBIO_TUNNEL", "none")]);
        let from_flags = flags([("port", "9300")]);

        let c = config([from_file.clone(), from_env.clone(), from_flags.clone()]);
        assert_eq!(c.port, 9300, "the command line wins");
        assert_eq!(
            c.tunnel.kind,
            crate::tunnel::TunnelKind::None,
            "env over file"
        );
        assert_eq!(c.bind_host, "0.0.0.0", "the file over the defaults");
        assert_eq!(
            c.realtime_url,
            super::super::DEFAULT_REALTIME_URL,
            "defaults"
        );
        assert_eq!(config([from_file.clone(), from_env]).port, 9200);
        assert_eq!(config([from_file]).port, 9100);
        assert_eq!(config([]).port, super::super::DEFAULT_PORT);
    }

    #[test]
    fn session_then_model() {
        let from_file = file("[session]\nvoice = \"cedar\"\nmodel = \"gpt-file\"\n").unwrap();
        let c = config([from_file.clone()]);
        assert_eq!(
            (c.session.voice.as_str(), c.session.model.as_str()),
            ("cedar", "gpt-file")
        );
        let c = config([from_file, env(&[("VERBIO_MODEL", "gpt-env")])]);
        assert_eq!(
            c.session.voice.as_str(),
            "cedar",
            "the file's session stays"
        );
        assert_eq!(c.session.model, "gpt-env", "the model is set on top of it");
    }

    #[test]
    fn the_file_reads_every_key_with_its_type() {
        let layer = file(
            r#"
            bind_host = "0.0.0.0"
            port = 9100
            api_port = 9101
            api_bind_host = "0.0.0.0"
            public_url = "https://calls.example.com/"
            trust_forwarded = true
            data_dir = "/tmp/verbio-test"
            realtime_url = "ws://127.0.0.1:1/v1/realtime"
            twilio_account_sid = "AC0123456789abcdef0123456789abcdef"
            session_rollover_secs = 30
            reconnect_attempts = 0
            max_calls = 3
            max_call_secs = 90
            daily_minutes = 600
            cors_origins = ["https://a.example"]
            api_rate_per_minute = 10
            twilio_rate_per_minute = 20
            twilio_api_base = "http://127.0.0.1:9"
            apology_message = "sorry"
            voicemail_message = "call back"
            ring_timeout_secs = 15
            tunnel = "ngrok"
            ngrok_domain = "abc.ngrok.app"
            [session]
            voice = "cedar"
            [recording]
            twilio_inbound = true
            "#,
        )
        .unwrap();
        let c = config([layer]);
        assert_eq!(c.public_url.as_deref(), Some("https://calls.example.com"));
        assert_eq!((c.port, c.api_port), (9100, 9101));
        assert_eq!(c.api_bind_host, "0.0.0.0");
        assert!(c.trust_forwarded);
        assert_eq!(c.bridge.session_rollover_after.as_secs(), 30);
        assert_eq!(c.bridge.reconnect_attempts, 0);
        assert_eq!(c.bridge.max_concurrent_calls, 3);
        assert_eq!(c.bridge.max_call_length.as_secs(), 90);
        assert_eq!(c.bridge.daily_minutes, Some(600));
        assert_eq!(c.twilio_rate_per_minute, 20);
        assert_eq!(c.telephony.ring_timeout.as_secs(), 15);
        assert_eq!(c.telephony.api_base, "http://127.0.0.1:9");
        assert_eq!(c.tunnel.kind, crate::tunnel::TunnelKind::Ngrok);
        assert_eq!(c.tunnel.ngrok_domain.as_deref(), Some("abc.ngrok.app"));
        assert!(c.recording.twilio_inbound);
    }

    #[test]
    fn bad_values_name_the_setting_and_where_it_came_from() {
        let from_env = |name: &'static str, text: &'static str| {
            ConfigLayer::from_env(|n| (n == name).then(|| text.to_string()))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            from_env("VERBIO_PORT", "eighty"),
            "invalid value for VERBIO_PORT: \"eighty\" is not a port number"
        );
        assert!(from_env("VERBIO_PUBLIC_URL", "ftp://x").contains("VERBIO_PUBLIC_URL"));
        assert!(from_env("VERBIO_RECORD", "maybe").contains("VERBIO_RECORD"));
        assert!(from_env("VERBIO_SESSION", "{").contains("VERBIO_SESSION"));
        // A wildcard origin is a clear error at start, not a panic when the router is built.
        assert!(from_env("VERBIO_CORS_ORIGINS", "*")
            .starts_with("invalid value for VERBIO_CORS_ORIGINS"));
        let weak = from_env("VERBIO_API_KEY", "k");
        assert!(
            weak.starts_with("invalid value for VERBIO_API_KEY: is too weak"),
            "{weak}"
        );

        let err = ConfigLayer::from_flags(&typed([("tunnel", "frp")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid value for --tunnel: \"frp\""),
            "{err}"
        );

        for (text, says) in [
            ("port = \"9100\"", "port: invalid type"),
            ("port = 70000", "port:"),
            (
                "api_rate_per_minute = 0",
                "invalid value for api_rate_per_minute: must be at least 1",
            ),
            (
                "public_url = \"https://a.example/twiml\"",
                "invalid value for public_url",
            ),
            (
                "tunnel = \"frp\"",
                "invalid value for tunnel: \"frp\" is not a tunnel",
            ),
            (
                "[recording]\ntwilio_inbound = \"yes\"",
                "recording.twilio_inbound: invalid type",
            ),
            (
                "[recording]\nenabled = false",
                "unknown key recording.enabled",
            ),
            (
                "[session]\nvoise = \"cedar\"",
                "session: unknown field `voise`",
            ),
            ("prot = 9100", "unknown key prot"),
            ("port = ", "invalid config file"),
        ] {
            let message = file(text).unwrap_err().to_string();
            assert!(message.contains(says), "{text:?}: {message}");
            assert!(message.contains("config.toml"), "names the file: {message}");
        }
    }

    #[test]
    fn clap_fills_the_command_line_layer() {
        use clap::{Args, FromArgMatches};
        let cmd = CommandLine::augment_args(clap::Command::new("serve"));
        let matches = cmd
            .clone()
            .try_get_matches_from(["serve", "--port", "0", "--public-url", "https://a.example/"])
            .unwrap();
        let layer =
            ConfigLayer::from_flags(&CommandLine::from_arg_matches(&matches).unwrap()).unwrap();
        assert_eq!(layer.port, Some(0));
        assert_eq!(layer.public_url.as_deref(), Some("https://a.example"));
        assert_eq!(layer.bind_host, None);
        let help = cmd.clone().render_help().to_string();
        assert!(help.contains("--public-url <PUBLIC_URL>"), "{help}");
        assert!(help.contains("env VERBIO_PUBLIC_URL"), "{help}");
        assert!(
            cmd.try_get_matches_from(["serve", "--openai-api-key", "sk"])
                .is_err(),
            "no secrets on the command line"
        );
    }
}
