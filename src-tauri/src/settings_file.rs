//! Writes the non-secret settings the onboarding asks for (public URL, Twilio Account SID, tunnel) into the
//! config file (`VERBIO_CONFIG` or the platform default), keeping every other key as it was.
//! Secrets never go here: they live in the keychain ([`crate::secrets`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::config_file_path;
use crate::config::kinds::{Kind, NgrokDomain, PublicUrl, Tunnel};

#[derive(Debug, thiserror::Error)]
pub enum SettingsFileError {
    #[error("there is no config directory on this system")]
    NoConfigDir,
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// What onboarding saves. `None` leaves a key alone; an empty string removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicSettings {
    pub public_url: Option<String>,
    pub twilio_account_sid: Option<String>,
    /// How Twilio reaches the app: `ngrok` (a tunnel at start) or `none` (`public_url`, or nothing).
    pub tunnel: Option<String>,
    /// A reserved ngrok domain (`example.ngrok.app`), so the number's webhook survives restarts.
    pub ngrok_domain: Option<String>,
}

/// The config file to write: `VERBIO_CONFIG` if set, else the platform default.
pub fn config_path() -> Result<PathBuf, SettingsFileError> {
    config_file_path().ok_or(SettingsFileError::NoConfigDir)
}

/// The saved values as the config file has them (env overrides are not applied).
pub fn read_basic(path: &Path) -> Result<BasicSettings, SettingsFileError> {
    let table = read_table(path)?;
    let get = |k: &str| table.get(k).and_then(|v| v.as_str()).map(str::to_string);
    Ok(BasicSettings {
        public_url: get("public_url"),
        twilio_account_sid: get("twilio_account_sid"),
        tunnel: get("tunnel"),
        ngrok_domain: get("ngrok_domain"),
    })
}

fn read_table(path: &Path) -> Result<toml::Table, SettingsFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .parse::<toml::Table>()
            .map_err(|e| SettingsFileError::Read {
                path: path.to_path_buf(),
                message: e.message().to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(toml::Table::new()),
        Err(e) => Err(SettingsFileError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

/// Checks `settings` with the parsers the config file is read with, then writes them (atomically: temp
/// file + rename).
pub fn save_basic(path: &Path, settings: &BasicSettings) -> Result<(), SettingsFileError> {
    check::<PublicUrl>("public_url", &settings.public_url)?;
    if let Some(sid) = settings
        .twilio_account_sid
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        if !crate::onboarding::valid_account_sid(sid) {
            return Err(SettingsFileError::Invalid(
                "a Twilio Account SID is AC followed by 32 hex digits".into(),
            ));
        }
    }
    check::<Tunnel>("tunnel", &settings.tunnel)?;
    check::<NgrokDomain>("ngrok_domain", &settings.ngrok_domain)?;
    let mut table = read_table(path)?;
    for (key, value) in [
        ("public_url", &settings.public_url),
        ("twilio_account_sid", &settings.twilio_account_sid),
        ("tunnel", &settings.tunnel),
        ("ngrok_domain", &settings.ngrok_domain),
    ] {
        match value.as_deref().map(str::trim) {
            None => {}
            Some("") => {
                table.remove(key);
            }
            Some(v) => {
                table.insert(key.to_string(), toml::Value::String(v.to_string()));
            }
        }
    }
    let text = toml::to_string(&table).map_err(|e| SettingsFileError::Invalid(e.to_string()))?;
    let write_err = |e: std::io::Error| SettingsFileError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let dir = path.parent().ok_or(SettingsFileError::NoConfigDir)?;
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    std::fs::write(tmp.path(), text).map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

/// `value` (if given) as the file key `key` would be read.
fn check<K: Kind>(key: &'static str, value: &Option<String>) -> Result<(), SettingsFileError> {
    match value {
        Some(text) => K::text(text)
            .map(drop)
            .map_err(|e| SettingsFileError::Invalid(e.named(key).to_string())),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigLayer};
    use crate::tunnel::TunnelKind;

    #[test]
    fn saves_settings_keeping_other_keys_and_refuses_bad_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "port = 9100\n[session]\nvoice = \"cedar\"\n").unwrap();
        let settings = BasicSettings {
            public_url: Some("https://abc.ngrok.app".into()),
            twilio_account_sid: Some("AC0123456789abcdef0123456789abcdef".into()),
            tunnel: Some("ngrok".into()),
            ngrok_domain: Some("abc.ngrok.app".into()),
        };
        save_basic(&path, &settings).unwrap();
        assert_eq!(read_basic(&path).unwrap(), settings);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("port = 9100") && text.contains("cedar"),
            "{text}"
        );
        // The file still loads as a config.
        let config = Config::from_layers([ConfigLayer::from_file(&path).unwrap()]);
        assert_eq!(config.public_url.as_deref(), Some("https://abc.ngrok.app"));
        assert_eq!(config.tunnel.kind, TunnelKind::Ngrok);
        assert_eq!(config.tunnel.ngrok_domain.as_deref(), Some("abc.ngrok.app"));
        for bad in [
            BasicSettings {
                tunnel: Some("cloudflared".into()),
                ..BasicSettings::default()
            },
            BasicSettings {
                ngrok_domain: Some("https://abc.ngrok.app".into()),
                ..BasicSettings::default()
            },
        ] {
            assert!(
                matches!(save_basic(&path, &bad), Err(SettingsFileError::Invalid(_))),
                "{bad:?}"
            );
        }

        let bad_url = BasicSettings {
            public_url: Some("ftp://nope".into()),
            ..BasicSettings::default()
        };
        assert!(matches!(
            save_basic(&path, &bad_url),
            Err(SettingsFileError::Invalid(_))
        ));
        let bad_sid = BasicSettings {
            twilio_account_sid: Some("AC12".into()),
            ..BasicSettings::default()
        };
        assert!(save_basic(&path, &bad_sid).is_err());
        // Empty removes.
        save_basic(
            &path,
            &BasicSettings {
                public_url: Some(String::new()),
                ..BasicSettings::default()
            },
        )
        .unwrap();
        let read = read_basic(&path).unwrap();
        assert_eq!(read.public_url, None);
        assert!(read.twilio_account_sid.is_some());
    }
}
