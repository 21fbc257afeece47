//! Where the app can be reached: its one owner. The address of the public listener (Twilio's routes; what
//! a tunnel forwards to), the local API's, and the public URL Twilio uses now (a tunnel's, or the user's own), which every webhook and media-socket signature
//! check, every callback URL and the desktop read — so a URL changed at run time is used everywhere at once.

use std::net::SocketAddr;
use std::sync::{Mutex, RwLock};

use tracing::info;

use super::ServiceError;
use crate::tunnel::static_url::StaticUrl;
use crate::tunnel::{Tunnel, TunnelError};

/// The app's addresses. The open tunnel is kept here so it stays open as long as its URL is in use.
pub struct Reachability {
    local_addr: SocketAddr,
    api_addr: SocketAddr,
    public_url: RwLock<Option<String>>,
    tunnel: Mutex<Option<Box<dyn Tunnel>>>,
}

impl std::fmt::Debug for Reachability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reachability")
            .field("local_addr", &self.local_addr)
            .field("api_addr", &self.api_addr)
            .field("public_url", &self.public_url())
            .finish()
    }
}

impl Reachability {
    /// Twilio's routes listening on `local_addr`, reached from outside through `tunnel` (if any); the
    /// local API on `api_addr`.
    pub fn new(
        local_addr: SocketAddr,
        api_addr: SocketAddr,
        tunnel: Option<Box<dyn Tunnel>>,
    ) -> Self {
        Reachability {
            local_addr,
            api_addr,
            public_url: RwLock::new(tunnel.as_ref().map(|t| t.public_url().to_string())),
            tunnel: Mutex::new(tunnel),
        }
    }

    /// The public listener's address (Twilio's routes), which a tunnel forwards to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://` + [`Self::local_addr`].
    pub fn local_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The local API's address (`/api`, `/api/events`).
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// `http://` + [`Self::api_addr`].
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// The URL Twilio reaches this app at now.
    pub fn public_url(&self) -> Option<String> {
        self.public_url
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The URL Twilio reaches this app at, or why there is none.
    pub fn require_public_url(&self) -> Result<String, ServiceError> {
        self.public_url().ok_or_else(|| {
            ServiceError::NotConfigured(
                "no public URL: Twilio cannot reach this app; open a tunnel or set a public URL"
                    .into(),
            )
        })
    }

    /// What kind of public URL is in use: `ngrok`, `public_url`, or `None` when Twilio cannot reach
    /// the app.
    pub fn tunnel_kind(&self) -> Option<&'static str> {
        self.tunnel
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|t| t.kind())
    }

    /// Uses `url` (the user's own tunnel or proxy) from now on, or none; closes a tunnel in use.
    pub fn set_public_url(&self, url: Option<&str>) -> Result<Option<String>, TunnelError> {
        let tunnel: Option<Box<dyn Tunnel>> = match url.map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => Some(Box::new(StaticUrl::new(url)?)),
            None => None,
        };
        let public = tunnel.as_ref().map(|t| t.public_url().to_string());
        // The URL first: a check that reads it between the two writes sees the new URL, never a
        // closed tunnel's.
        *self.public_url.write().unwrap_or_else(|p| p.into_inner()) = public.clone();
        *self.tunnel.lock().unwrap_or_else(|p| p.into_inner()) = tunnel;
        info!(public_url = ?public, "public URL changed");
        Ok(public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8080))
    }

    fn api() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8082))
    }

    #[test]
    fn a_new_public_url_replaces_the_old_and_can_be_cleared() {
        let r = Reachability::new(
            addr(),
            api(),
            Some(Box::new(StaticUrl::new("https://a.example").unwrap())),
        );
        assert_eq!(r.public_url().as_deref(), Some("https://a.example"));
        assert_eq!(r.tunnel_kind(), Some("public_url"));
        assert_eq!(
            r.set_public_url(Some(" https://b.example/ "))
                .unwrap()
                .as_deref(),
            Some("https://b.example")
        );
        assert_eq!(r.public_url().as_deref(), Some("https://b.example"));
        assert_eq!(r.set_public_url(Some("")).unwrap(), None);
        assert_eq!(r.public_url(), None);
        assert_eq!(r.tunnel_kind(), None);
        assert_eq!(r.local_url(), "http://127.0.0.1:8080");
        assert_eq!(r.api_url(), "http://127.0.0.1:8082");
    }

    #[test]
    fn a_bad_url_changes_nothing() {
        let r = Reachability::new(
            addr(),
            api(),
            Some(Box::new(StaticUrl::new("https://a.example").unwrap())),
        );
        assert!(r.set_public_url(Some("ftp://nope")).is_err());
        assert_eq!(r.public_url().as_deref(), Some("https://a.example"));
    }
}
