//! How Twilio reaches a desktop behind NAT: a public URL that forwards to the local server.
//!
//! Two kinds, behind one [`Tunnel`] trait:
//! - [`static_url::StaticUrl`]: a URL the user already has (their own tunnel, a reverse proxy, a server's
//!   own address). Nothing is opened; the URL is checked and used.
//! - `ngrok::NgrokTunnel` (feature `ngrok`): the ngrok agent SDK opens an HTTPS endpoint that forwards
//!   to the local port, with the authtoken from the keychain and optionally a reserved domain.
//!
//! The chosen URL feeds TwiML stream URLs, status-callback URLs and Twilio signature checks.

#[cfg(feature = "ngrok")]
mod ngrok;
pub mod static_url;

use std::net::SocketAddr;

use crate::types::Secret;

/// How Twilio reaches this app: a user-supplied public URL (the config's `public_url`) or an ngrok tunnel.
#[derive(Debug, Clone, Default)]
pub struct TunnelSettings {
    /// What to open at start (`VERBIO_TUNNEL`).
    pub kind: TunnelKind,
    /// From the keychain in the desktop app, `NGROK_AUTHTOKEN` for `serve`.
    pub ngrok_authtoken: Secret,
    /// A reserved ngrok domain (`NGROK_DOMAIN`), so the Twilio number's webhook stays valid across runs.
    pub ngrok_domain: Option<String>,
}

/// What [`open`] opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TunnelKind {
    /// Nothing: the public URL, if one is set, is used as given.
    #[default]
    None,
    /// An ngrok endpoint; its URL replaces the public URL.
    Ngrok,
}

impl TunnelKind {
    /// `none` (or nothing) and `ngrok`, the names settings use.
    pub fn from_name(name: &str) -> Option<TunnelKind> {
        match name.trim() {
            "" | "none" => Some(TunnelKind::None),
            "ngrok" => Some(TunnelKind::Ngrok),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::None => "none",
            TunnelKind::Ngrok => "ngrok",
        }
    }
}

/// An open way in for Twilio. Dropping it closes it.
pub trait Tunnel: Send + Sync {
    /// `https://host` (no trailing slash).
    fn public_url(&self) -> &str;
    /// `public_url` or `ngrok`, for status displays.
    fn kind(&self) -> &'static str;
}

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("the ngrok tunnel needs an authtoken: add it in Settings (or set NGROK_AUTHTOKEN)")]
    MissingAuthtoken,
    #[error("cannot open the ngrok tunnel: {0}")]
    Ngrok(String),
    #[error(
        "this build has no ngrok support (built without the `ngrok` feature); use a public URL"
    )]
    NgrokNotBuilt,
    #[error("invalid public URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
}

/// Opens what the settings ask for: ngrok if enabled, else the user's public URL if set, else none
/// (Twilio's requests are then checked against the URL they arrive on, which only works on a host
/// Twilio can reach directly).
pub async fn open(
    settings: &TunnelSettings,
    public_url: Option<&str>,
    local_addr: SocketAddr,
) -> Result<Option<Box<dyn Tunnel>>, TunnelError> {
    if settings.kind == TunnelKind::Ngrok {
        crate::tls::install_crypto_provider();
        return open_ngrok(settings, local_addr).await.map(Some);
    }
    match public_url {
        Some(url) => Ok(Some(Box::new(static_url::StaticUrl::new(url)?))),
        None => Ok(None),
    }
}

#[cfg(feature = "ngrok")]
async fn open_ngrok(
    settings: &TunnelSettings,
    local_addr: SocketAddr,
) -> Result<Box<dyn Tunnel>, TunnelError> {
    if settings.ngrok_authtoken.is_empty() {
        return Err(TunnelError::MissingAuthtoken);
    }
    let tunnel = ngrok::NgrokTunnel::open(
        &settings.ngrok_authtoken,
        settings.ngrok_domain.as_deref(),
        local_addr,
    )
    .await?;
    Ok(Box::new(tunnel))
}

#[cfg(not(feature = "ngrok"))]
async fn open_ngrok(
    settings: &TunnelSettings,
    _local_addr: SocketAddr,
) -> Result<Box<dyn Tunnel>, TunnelError> {
    if settings.ngrok_authtoken.is_empty() {
        return Err(TunnelError::MissingAuthtoken);
    }
    Err(TunnelError::NgrokNotBuilt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8081))
    }

    #[tokio::test]
    async fn user_url_is_used_as_given() {
        let tunnel = open(
            &TunnelSettings::default(),
            Some("https://calls.example.com/"),
            local(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(tunnel.public_url(), "https://calls.example.com");
        assert_eq!(tunnel.kind(), "public_url");
        assert!(open(&TunnelSettings::default(), None, local())
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn ngrok_without_authtoken_is_a_clear_error() {
        let settings = TunnelSettings {
            kind: TunnelKind::Ngrok,
            ..TunnelSettings::default()
        };
        let err = open(&settings, Some("https://ignored.example"), local())
            .await
            .err()
            .expect("refused");
        assert!(matches!(err, TunnelError::MissingAuthtoken), "{err}");
    }

    #[tokio::test]
    async fn ngrok_unreachable_is_a_clear_error_without_the_token() {
        // No network here: the ngrok service cannot be reached (or this build has no ngrok).
        let settings = TunnelSettings {
            kind: TunnelKind::Ngrok,
            ngrok_authtoken: Secret::new("2abcdefghijklmnopqrstuvwxyz_test_token"),
            ngrok_domain: None,
        };
        let opened = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            open(&settings, None, local()),
        )
        .await
        .expect("gives up within 30 s");
        let err = opened.err().expect("no tunnel without the ngrok service");
        assert!(
            matches!(err, TunnelError::Ngrok(_) | TunnelError::NgrokNotBuilt),
            "{err}"
        );
        assert!(!err.to_string().contains("abcdefghijklmnop"), "{err}");
    }
}
