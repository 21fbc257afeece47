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
            url: without_userinfo(url),
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

/// `url` with any `user:password@` replaced by `***@`, so a rejected URL can be quoted in errors and
/// logs. Works on the raw text: a URL that does not parse may still carry credentials.
fn without_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_string(),
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

    #[test]
    fn a_rejected_url_is_quoted_without_its_credentials() {
        for (bad, quoted) in [
            (
                "https://user:s3cret-pass@a.example",
                "https://***@a.example",
            ),
            (
                "https://user:s3cret-pass@a.example/x?y",
                "https://***@a.example/x?y",
            ),
            (
                "https://user:s3cret-pass@a.example:99999",
                "https://***@a.example:99999",
            ),
            ("user:s3cret-pass@a.example", "***@a.example"),
        ] {
            let message = StaticUrl::new(bad).unwrap_err().to_string();
            assert!(!message.contains("s3cret-pass"), "{message}");
            assert!(!message.contains("user:"), "{message}");
            assert!(message.contains(quoted), "{message}");
        }
        // Nothing to hide: quoted as given.
        let message = StaticUrl::new("https://a.example/twiml")
            .unwrap_err()
            .to_string();
        assert!(message.contains("https://a.example/twiml"), "{message}");
    }
}
