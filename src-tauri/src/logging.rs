//! Logging set-up (`tracing` to stderr) and helpers that keep secrets out of log lines.
//!
//! `VERBIO_LOG` takes `EnvFilter` syntax (`info`, `verbio=debug,tower_http=warn`, …; default `info`);
//! `VERBIO_LOG_FORMAT=json` switches to one JSON object per line for log shippers.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Environment variable holding the filter directives.
pub const FILTER_ENV: &str = "VERBIO_LOG";
/// Environment variable choosing the output format.
pub const FORMAT_ENV: &str = "VERBIO_LOG_FORMAT";

/// What replaces every query value in [`redact_query`].
pub const REDACTED: &str = "REDACTED";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (coloured when stderr is a terminal).
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Reads `VERBIO_LOG_FORMAT` (`json` or `pretty`, any case); anything else means `Pretty`.
    pub fn from_env() -> LogFormat {
        LogFormat::parse(std::env::var(FORMAT_ENV).ok().as_deref()).unwrap_or_default()
    }

    /// `Some` for a known name, `None` for a missing or unknown one.
    pub fn parse(value: Option<&str>) -> Option<LogFormat> {
        match value?.trim().to_ascii_lowercase().as_str() {
            "json" => Some(LogFormat::Json),
            "pretty" | "text" => Some(LogFormat::Pretty),
            _ => None,
        }
    }
}

/// Installs the global subscriber. Safe to call more than once: later calls change nothing
/// (tests and the desktop shell may both try).
pub fn init(format: LogFormat) {
    let (filter, bad_filter) = filter_from(std::env::var(FILTER_ENV).ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr on a full disk) is lost, not reported: the report
        // goes to stderr with `eprintln!`, which panics when that fails too, in whichever task logged.
        .log_internal_errors(false);
    let installed = match format {
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
            .is_ok(),
        LogFormat::Json => builder.json().with_ansi(false).try_init().is_ok(),
    };
    if installed {
        if let Some(error) = bad_filter {
            tracing::warn!("ignoring invalid {FILTER_ENV} ({error}); logging at info");
        }
        let format_name = std::env::var(FORMAT_ENV).ok();
        if format_name.is_some() && LogFormat::parse(format_name.as_deref()).is_none() {
            tracing::warn!("unknown {FORMAT_ENV}; expected json or pretty");
        }
    }
}

/// The filter for `directives`, or `info` plus the parse error when they are invalid
/// (a typo in `VERBIO_LOG` must not silence the app).
fn filter_from(directives: Option<&str>) -> (EnvFilter, Option<String>) {
    match directives.map(str::trim).filter(|d| !d.is_empty()) {
        None => (EnvFilter::new("info"), None),
        Some(d) => match EnvFilter::try_new(d) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new("info"), Some(e.to_string())),
        },
    }
}

/// Keeps a URL's path and its query parameter names, and replaces every value with `REDACTED`,
/// so a token in a query string (a stream token, a signed link) never lands in a log.
/// A fragment, never sent by clients but possible in a configured URL, is redacted whole.
///
/// ```
/// use verbio::logging::redact_query;
/// assert_eq!(redact_query("/media-stream?token=abc&x=1"), "/media-stream?token=REDACTED&x=REDACTED");
/// assert_eq!(redact_query("/twiml"), "/twiml");
/// ```
/// Given a full URL, user info (`user:password@`) is redacted too.
pub fn redact_query(path_and_query: &str) -> String {
    let (rest, fragment) = match path_and_query.split_once('#') {
        Some((rest, _)) => (rest, true),
        None => (path_and_query, false),
    };
    let mut out = String::with_capacity(path_and_query.len() + 16);
    let rest = match strip_userinfo(rest) {
        Some((scheme, after_userinfo)) => {
            out.push_str(scheme);
            out.push_str(REDACTED);
            out.push('@');
            after_userinfo
        }
        None => rest,
    };
    match rest.split_once('?') {
        None => out.push_str(rest),
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((name, _)) => {
                        out.push_str(name);
                        out.push('=');
                        out.push_str(REDACTED);
                    }
                    // A bare name has no value to hide.
                    None => out.push_str(pair),
                }
            }
        }
    }
    if fragment {
        out.push('#');
        out.push_str(REDACTED);
    }
    out
}

/// For `scheme://user:pass@host…`: (`scheme://`, `host…`). `None` when there is no user info.
fn strip_userinfo(url: &str) -> Option<(&str, &str)> {
    let authority_start = url.find("://")? + 3;
    let authority_len = url[authority_start..]
        .find(['/', '?'])
        .unwrap_or(url.len() - authority_start);
    let at = url[authority_start..authority_start + authority_len].rfind('@')?;
    Some((&url[..authority_start], &url[authority_start + at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_value_is_replaced() {
        assert_eq!(
            redact_query("/media-stream?token=tok_9f8e7d&call=CA123"),
            "/media-stream?token=REDACTED&call=REDACTED"
        );
        assert_eq!(redact_query("/a?k="), "/a?k=REDACTED");
        assert_eq!(redact_query("/a?k=v=w"), "/a?k=REDACTED");
        assert_eq!(redact_query("/a?flag&k=secret"), "/a?flag&k=REDACTED");
        assert_eq!(redact_query("/a?"), "/a?");
        assert_eq!(redact_query("/a?&&k=1"), "/a?&&k=REDACTED");
    }

    #[test]
    fn paths_without_query_are_untouched() {
        assert_eq!(redact_query("/twiml"), "/twiml");
        assert_eq!(redact_query(""), "");
        assert_eq!(redact_query("/"), "/");
    }

    #[test]
    fn full_urls_and_fragments() {
        assert_eq!(
            redact_query("wss://h.example/media?token=s3cret#frag=s3cret"),
            "wss://h.example/media?token=REDACTED#REDACTED"
        );
        assert!(!redact_query("/x?api_key=sk-live-123").contains("sk-live-123"));
        assert_eq!(
            redact_query("https://AC1:tok3n@api.example/a?b=c"),
            "https://REDACTED@api.example/a?b=REDACTED"
        );
        assert_eq!(
            redact_query("https://h/a?next=x@y"),
            "https://h/a?next=REDACTED"
        );
    }

    #[test]
    fn format_names() {
        assert_eq!(LogFormat::parse(Some("json")), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse(Some(" JSON ")), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse(Some("pretty")), Some(LogFormat::Pretty));
        assert_eq!(LogFormat::parse(Some("xml")), None);
        assert_eq!(LogFormat::parse(None), None);
        assert_eq!(LogFormat::default(), LogFormat::Pretty);
    }

    #[test]
    fn invalid_filter_falls_back_to_info() {
        let (filter, error) = filter_from(Some("verbio=loud[["));
        assert!(error.is_some());
        assert_eq!(filter.to_string(), "info");
        let (filter, error) = filter_from(Some("verbio=debug,warn"));
        assert!(error.is_none());
        assert!(filter.to_string().contains("verbio=debug"));
        assert_eq!(filter_from(None).0.to_string(), "info");
        assert_eq!(filter_from(Some("  ")).0.to_string(), "info");
    }

    #[test]
    fn init_twice_is_harmless() {
        init(LogFormat::Json);
        assert!(tracing::dispatcher::has_been_set());
        init(LogFormat::Pretty);
        tracing::info!("still logging");
    }
}
