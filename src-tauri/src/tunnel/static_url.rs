//! A public URL the user supplies: their own tunnel, a reverse proxy, or a server's own address.

use super::{Tunnel, TunnelError};

#[derive(Debug, Clone)]
pub struct StaticUrl {
    url: String,
}

impl StaticUrl {
    /// Accepts `http(s)://host[:port]` without a path, query or credentials (Twilio signs the full URL,
    /// so a stray path would break every signature check).
    pub fn new(url: &str) -> Result<StaticUrl, TunnelError> {
        let bad = |reason: &str| TunnelError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad(
                "must start with https:// (or http:// for a local test)",
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad("must not contain credentials"));
        }
        if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(bad("must be just scheme and host, without a path or query"));
        }
        Ok(StaticUrl {
            url: url.trim_end_matches('/').to_string(),
        })
    }
}

impl Tunnel for StaticUrl {
    fn public_url(&self) -> &str {
        &self.url
    }

    fn kind(&self) -> &'static str {
        "public_url"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_scheme_and_host_only() {
        assert_eq!(
            StaticUrl::new("https://a.example:8443")
                .unwrap()
                .public_url(),
            "https://a.example:8443"
        );
        for bad in [
            "ftp://a.example",
            "https://a.example/twiml",
            "https://u:p@a.example",
            "https://a.example/?x=1",
            "not a url",
        ] {
            assert!(StaticUrl::new(bad).is_err(), "{bad}");
        }
    }
}
