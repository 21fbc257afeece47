//! The Responses API client: `POST {base}/v1/responses` with the user's key, one retry on 429 and 5xx,
//! and one deadline for the whole exchange. Its errors never carry the key (nor the request body).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::types::Secret;

/// The whole exchange (retry included) must end within this.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(20);
/// The pause before the one retry (a `Retry-After` of up to 3 s is honoured instead).
pub const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Longest answer body read.
const MAX_BODY: usize = 1024 * 1024;

/// Why no answer came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("no OpenAI API key is set")]
    NoKey,
    #[error("the Responses API base URL {0:?} is not an http(s) URL")]
    BadBase(String),
    #[error("the Responses API did not answer within {} s", TOTAL_TIMEOUT.as_secs())]
    Timeout,
    #[error("could not reach the Responses API: {0}")]
    Unreachable(String),
    /// A non-2xx answer: its status and the service's message.
    #[error("the Responses API answered {status}{}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        status: u16,
        message: Option<String>,
    },
    #[error("the Responses API's answer is larger than {} bytes", MAX_BODY)]
    TooLarge,
}

/// A 2xx answer's body.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub body: Vec<u8>,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct ResponsesClient {
    http: reqwest::Client,
    url: String,
    key: Secret,
}

impl std::fmt::Debug for ResponsesClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponsesClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ResponsesClient {
    /// A client for `base` (`https://api.openai.com`, or a stand-in); `/v1/responses` is appended.
    pub fn new(base: &str, key: Secret) -> Result<ResponsesClient, ClientError> {
        let base = base.trim_end_matches('/');
        let parsed = url::Url::parse(base).map_err(|_| ClientError::BadBase(base.into()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ClientError::BadBase(base.into()));
        }
        let http = reqwest::Client::builder()
            // The key goes with the request: never follow a redirect somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        Ok(ResponsesClient {
            http,
            url: format!("{base}/v1/responses"),
            key,
        })
    }

    /// Whether a key is set.
    pub fn has_key(&self) -> bool {
        !self.key.is_empty()
    }

    /// Sends `body`, retrying once on 429 or 5xx (or a dropped connection), all within
    /// [`TOTAL_TIMEOUT`].
    pub async fn create(&self, body: &Value) -> Result<RawAnswer, ClientError> {
        if self.key.is_empty() {
            return Err(ClientError::NoKey);
        }
        tokio::time::timeout(TOTAL_TIMEOUT, self.with_retry(body))
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn with_retry(&self, body: &Value) -> Result<RawAnswer, ClientError> {
        match self.once(body).await {
            Err(Attempt::Retry(error, pause)) => {
                tracing::info!(%error, "summary request failed; retrying once");
                tokio::time::sleep(pause).await;
                self.once(body).await.map_err(Attempt::into_error)
            }
            other => other.map_err(Attempt::into_error),
        }
    }

    async fn once(&self, body: &Value) -> Result<RawAnswer, Attempt> {
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(self.key.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| {
                let retry = e.is_connect();
                // reqwest's error names the URL only (never headers); drop it anyway.
                let error = ClientError::Unreachable(e.without_url().to_string());
                if retry {
                    Attempt::Retry(error, RETRY_PAUSE)
                } else {
                    Attempt::Final(error)
                }
            })?;
        let status = response.status();
        let pause = retry_after(response.headers()).unwrap_or(RETRY_PAUSE);
        let bytes = read_capped(response).await.map_err(Attempt::Final)?;
        if status.is_success() {
            return Ok(RawAnswer { body: bytes });
        }
        let error = ClientError::Status {
            status: status.as_u16(),
            message: super::answer::error_message(&bytes),
        };
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(Attempt::Retry(error, pause))
        } else {
            Err(Attempt::Final(error))
        }
    }
}

enum Attempt {
    Retry(ClientError, Duration),
    Final(ClientError),
}

impl Attempt {
    fn into_error(self) -> ClientError {
        match self {
            Attempt::Retry(e, _) | Attempt::Final(e) => e,
        }
    }
}

/// `Retry-After` in whole seconds, when it is short enough to wait for.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (secs <= 3).then(|| Duration::from_secs(secs))
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ClientError::Unreachable(e.without_url().to_string()))?
    {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(ClientError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_are_checked_and_the_key_never_prints() {
        assert!(matches!(
            ResponsesClient::new("ftp://x", Secret::new("k")),
            Err(ClientError::BadBase(_))
        ));
        assert!(ResponsesClient::new("not a url", Secret::new("k")).is_err());
        let c =
            ResponsesClient::new("https://api.openai.com/", Secret::new("sk-secret-1")).unwrap();
        assert_eq!(c.url, "https://api.openai.com/v1/responses");
        assert!(!format!("{c:?}").contains("sk-secret-1"));
    }

    #[tokio::test]
    async fn no_key_is_an_error_before_any_request() {
        let c = ResponsesClient::new("http://127.0.0.1:9", Secret::default()).unwrap();
        assert_eq!(
            c.create(&serde_json::json!({})).await.unwrap_err(),
            ClientError::NoKey
        );
    }
}
