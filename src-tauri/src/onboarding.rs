//! First-run checks of the user's keys: OpenAI (`GET /v1/models`) and Twilio (account fetch
//! `GET /2010-04-01/Accounts/{sid}.json`), with errors a person can act on. Base URLs are configurable
//! (`VERBIO_OPENAI_API_BASE`, `TWILIO_API_BASE`, the same base the REST client uses) so tests and proxies can stand in for the services.
//!
//! Keys are sent only to their owner, never logged, never part of an error message.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::realtime::session::KNOWN_MODELS;
use crate::types::Secret;

pub const DEFAULT_OPENAI_API_BASE: &str = "https://api.openai.com";
pub const DEFAULT_TWILIO_API_BASE: &str = "https://api.twilio.com";
pub const OPENAI_API_BASE_ENV: &str = "VERBIO_OPENAI_API_BASE";

const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the key checks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBases {
    pub openai: String,
    pub twilio: String,
}

impl Default for ApiBases {
    fn default() -> Self {
        ApiBases {
            openai: DEFAULT_OPENAI_API_BASE.into(),
            twilio: DEFAULT_TWILIO_API_BASE.into(),
        }
    }
}

impl ApiBases {
    /// OpenAI's default base, overridden by `VERBIO_OPENAI_API_BASE`; Twilio's is the one the config gives
    /// the REST client (`telephony.api_base`), so a key is checked where calls will go.
    pub fn from_env(twilio: &str) -> Self {
        ApiBases {
            openai: std::env::var(OPENAI_API_BASE_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_OPENAI_API_BASE.into()),
            twilio: twilio.into(),
        }
    }
}

/// Why a key check failed; every message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", content = "message", rename_all = "snake_case")]
pub enum KeyCheckError {
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Unexpected(String),
}

/// A working OpenAI key: the realtime models it can use (newest first), or the built-in list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpenAiCheck {
    pub realtime_models: Vec<String>,
    /// Models the key can use in total.
    pub model_count: usize,
}

/// A working Twilio account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TwilioCheck {
    pub account_sid: String,
    pub friendly_name: String,
    pub status: String,
    pub account_type: String,
}

fn client() -> Result<reqwest::Client, KeyCheckError> {
    reqwest::Client::builder()
        .timeout(CHECK_TIMEOUT)
        .build()
        .map_err(|e| KeyCheckError::Unexpected(format!("cannot make an HTTP client: {e}")))
}

fn join(base: &str, path: &str) -> Result<reqwest::Url, KeyCheckError> {
    let text = format!("{}{}", base.trim_end_matches('/'), path);
    reqwest::Url::parse(&text).map_err(|e| {
        KeyCheckError::Malformed(format!("the API address {base:?} is not a URL ({e})"))
    })
}

fn unreachable(service: &str, url: &reqwest::Url, e: &reqwest::Error) -> KeyCheckError {
    let host = url.host_str().unwrap_or("?");
    let why = if e.is_timeout() {
        "it did not answer in time".to_string()
    } else if e.is_connect() {
        "the connection failed (offline, a proxy or a firewall?)".to_string()
    } else {
        "the request failed".to_string()
    };
    KeyCheckError::Unreachable(format!("Could not reach {service} at {host}: {why}."))
}

/// `{"error": {"message": "…"}}` (OpenAI) or `{"message": "…"}` (Twilio), if present.
fn provider_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let m = v
        .pointer("/error/message")
        .or_else(|| v.get("message"))?
        .as_str()?;
    // Providers sometimes echo part of the key; never pass that on.
    let cleaned: String = m
        .split_whitespace()
        .map(|w| {
            if w.len() > 12 && (w.starts_with("sk-") || w.contains("***")) {
                "[key]"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    Some(cleaned.chars().take(300).collect())
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ModelEntry>,
}

#[derive(Deserialize)]
struct ModelEntry {
    id: String,
}

/// Checks an OpenAI key with `GET {base}/v1/models`.
pub async fn check_openai(base: &str, key: &Secret) -> Result<OpenAiCheck, KeyCheckError> {
    let key = key.expose().trim();
    if key.is_empty() {
        return Err(KeyCheckError::Missing(
            "Enter your OpenAI API key (it starts with sk-).".into(),
        ));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(KeyCheckError::Malformed(
            "The OpenAI key contains spaces or line breaks; copy it again.".into(),
        ));
    }
    let url = join(base, "/v1/models")?;
    let response = client()?
        .get(url.clone())
        .bearer_auth(key)
        .send()
        .await
        .map_err(|e| unreachable("OpenAI", &url, &e))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| unreachable("OpenAI", &url, &e))?;
    match status {
        200 => {
            let list: ModelList = serde_json::from_str(&body).map_err(|_| {
                KeyCheckError::Unexpected(
                    "OpenAI answered, but not with a model list; is the API address right?".into(),
                )
            })?;
            Ok(OpenAiCheck {
                model_count: list.data.len(),
                realtime_models: realtime_models(list.data.into_iter().map(|m| m.id)),
            })
        }
        401 => Err(KeyCheckError::Rejected(format!(
            "OpenAI rejected the key (HTTP 401). Check that it was copied whole and has not been revoked.{}",
            provider_message(&body).map(|m| format!(" OpenAI said: {m}")).unwrap_or_default()
        ))),
        403 => Err(KeyCheckError::Forbidden(format!(
            "The key works but may not list models (HTTP 403): give it the model read permission, or use another project's key.{}",
            provider_message(&body).map(|m| format!(" OpenAI said: {m}")).unwrap_or_default()
        ))),
        429 => Err(KeyCheckError::Rejected(
            "OpenAI says the key is over its rate limit or quota (HTTP 429): check billing, then try again.".into(),
        )),
        code => Err(KeyCheckError::Unexpected(format!(
            "OpenAI answered HTTP {code}.{}",
            provider_message(&body).map(|m| format!(" It said: {m}")).unwrap_or_default()
        ))),
    }
}

/// Whether a model id from `GET /v1/models` is a GA Realtime speech-to-speech model a call can use:
/// `gpt-realtime`, its versions (`gpt-realtime-2.1`), sizes (`-mini`) and dated snapshots
/// (`gpt-realtime-2025-08-28`). Not the shut-down beta models (`gpt-4o-realtime-preview*`,
/// `gpt-4o-mini-realtime-preview*`), nor anything preview, transcription-only or text-to-speech,
/// which a live account lists too.
pub fn is_realtime_speech_model(id: &str) -> bool {
    // `preview` also covers the audio previews.
    const NOT_SPEECH: [&str; 3] = ["preview", "transcribe", "tts"];
    id.starts_with("gpt-realtime") && !NOT_SPEECH.iter().any(|word| id.contains(word))
}

/// The realtime models among `ids` ([`is_realtime_speech_model`]), newest-looking first; the built-in
/// list when there are none.
pub fn realtime_models(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut models: Vec<String> = ids
        .into_iter()
        .filter(|id| is_realtime_speech_model(id))
        .collect();
    if models.is_empty() {
        return KNOWN_MODELS.iter().map(|m| m.to_string()).collect();
    }
    // Known models in their curated order first, then the rest alphabetically (reverse: newer dates last).
    models.sort_by(|a, b| {
        let rank = |m: &str| {
            KNOWN_MODELS
                .iter()
                .position(|k| *k == m)
                .unwrap_or(usize::MAX)
        };
        rank(a).cmp(&rank(b)).then_with(|| b.cmp(a))
    });
    models.dedup();
    models
}

/// `AC` followed by 32 hex digits.
pub fn valid_account_sid(sid: &str) -> bool {
    crate::telephony::twilio::rest::is_account_sid(sid)
}

/// Checks a Twilio account SID and auth token by fetching the account
/// (`GET {base}/2010-04-01/Accounts/{sid}.json`) with the same REST client that places calls.
pub async fn check_twilio(
    base: &str,
    account_sid: &str,
    auth_token: &Secret,
) -> Result<TwilioCheck, KeyCheckError> {
    use crate::telephony::twilio::rest::{RestError, RetryPolicy, TwilioRest};
    let sid = account_sid.trim();
    if sid.is_empty() {
        return Err(KeyCheckError::Missing(
            "Enter your Twilio Account SID (Console → Account info; it starts with AC).".into(),
        ));
    }
    if !valid_account_sid(sid) {
        return Err(KeyCheckError::Malformed(
            "A Twilio Account SID is AC followed by 32 hex digits (0-9, a-f).".into(),
        ));
    }
    let token = auth_token.expose().trim();
    if token.is_empty() {
        return Err(KeyCheckError::Missing(
            "Enter your Twilio auth token (Console → Account info).".into(),
        ));
    }
    let host = reqwest::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let twilio = TwilioRest::new(base, sid, Secret::new(token))
        .map_err(|e| KeyCheckError::Malformed(e.to_string()))?
        // A key check answers now or says why; it does not wait through retries.
        .with_retry(RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        });
    let account = twilio.fetch_account().await.map_err(|e| match e {
        RestError::Api(api) => match api.status {
            401 => KeyCheckError::Rejected(
                "Twilio rejected the Account SID and auth token (HTTP 401). Use the auth token of this account (not an API key secret).".into(),
            ),
            403 => KeyCheckError::Forbidden(
                "Twilio refused access to this account (HTTP 403): the token may belong to another account or a subaccount.".into(),
            ),
            404 => KeyCheckError::NotFound(format!(
                "Twilio has no account {sid} (HTTP 404): check the Account SID."
            )),
            code => KeyCheckError::Unexpected(format!(
                "Twilio answered HTTP {code}. It said: {}",
                api.message.chars().take(300).collect::<String>()
            )),
        },
        RestError::Transport(why) => KeyCheckError::Unreachable(format!(
            "Could not reach Twilio at {host}: {why}."
        )),
        RestError::Decode { .. } => KeyCheckError::Unexpected(
            "Twilio answered, but not with an account; is the API address right?".into(),
        ),
        other => KeyCheckError::Malformed(other.to_string()),
    })?;
    let status = account.status.unwrap_or_default();
    if status != "active" && !status.is_empty() {
        return Err(KeyCheckError::Forbidden(format!(
            "The Twilio account {} is {status}; calls need an active account.",
            account.sid
        )));
    }
    Ok(TwilioCheck {
        account_sid: account.sid,
        friendly_name: account.friendly_name.unwrap_or_default(),
        status,
        account_type: account.account_type.unwrap_or_default(),
    })
}

/// The model picker's list: live from OpenAI when a key works, else the built-in list with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelChoices {
    pub models: Vec<String>,
    pub live: bool,
    /// Why the built-in list is shown, when it is.
    pub note: Option<String>,
}

fn stored(
    secrets: &crate::secrets::Secrets,
    kind: crate::secrets::SecretKind,
) -> Result<Secret, KeyCheckError> {
    match secrets.get(kind) {
        Ok((Some(v), _)) => Ok(v),
        Ok((None, _)) => Err(KeyCheckError::Missing(format!(
            "No {} is stored yet: enter it first.",
            kind.label()
        ))),
        Err(e) => Err(KeyCheckError::Missing(e.to_string())),
    }
}

/// Checks the stored (or env) OpenAI key.
pub async fn check_stored_openai(
    secrets: &crate::secrets::Secrets,
    bases: &ApiBases,
) -> Result<OpenAiCheck, KeyCheckError> {
    let key = stored(secrets, crate::secrets::SecretKind::OpenaiApiKey)?;
    check_openai(&bases.openai, &key).await
}

/// Checks `account_sid` with the stored (or env) Twilio auth token.
pub async fn check_stored_twilio(
    secrets: &crate::secrets::Secrets,
    bases: &ApiBases,
    account_sid: &str,
) -> Result<TwilioCheck, KeyCheckError> {
    let token = stored(secrets, crate::secrets::SecretKind::TwilioAuthToken)?;
    check_twilio(&bases.twilio, account_sid, &token).await
}

/// Realtime models the stored key can use, or the built-in list (never an error).
pub async fn model_choices(secrets: &crate::secrets::Secrets, bases: &ApiBases) -> ModelChoices {
    match check_stored_openai(secrets, bases).await {
        Ok(check) => ModelChoices {
            models: check.realtime_models,
            live: true,
            note: None,
        },
        Err(e) => ModelChoices {
            models: KNOWN_MODELS.iter().map(|m| m.to_string()).collect(),
            live: false,
            note: Some(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Path;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use axum::{Json, Router};

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    async fn fake_providers() -> String {
        async fn models(headers: HeaderMap) -> (StatusCode, Json<serde_json::Value>) {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match auth {
                "Bearer sk-good-key-0123456789" => (
                    StatusCode::OK,
                    Json(serde_json::json!({"object": "list", "data": [
                        {"id": "gpt-4o"}, {"id": "gpt-realtime-mini"}, {"id": "gpt-realtime-2.1"},
                        {"id": "gpt-realtime-2099-01-01"}
                    ]})),
                ),
                "Bearer sk-no-perms-0123456789" => (
                    StatusCode::FORBIDDEN,
                    Json(serde_json::json!({"error": {"message": "Missing scopes: model.read"}})),
                ),
                _ => (
                    StatusCode::UNAUTHORIZED,
                    Json(
                        serde_json::json!({"error": {"message": "Incorrect API key provided: sk-bad-k*****6789."}}),
                    ),
                ),
            }
        }
        async fn account(
            Path(file): Path<String>,
            headers: HeaderMap,
        ) -> (StatusCode, Json<serde_json::Value>) {
            use base64::Engine;
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{SID}:tw-good"))
            );
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if file != format!("{SID}.json") {
                return (
                    StatusCode::NOT_FOUND,
                    Json(serde_json::json!({"message": "not found"})),
                );
            }
            if auth != expected {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(serde_json::json!({"message": "Authenticate", "code": 20003})),
                );
            }
            (
                StatusCode::OK,
                Json(
                    serde_json::json!({"sid": SID, "friendly_name": "My first account", "status": "active", "type": "Trial"}),
                ),
            )
        }
        let app = Router::new()
            .route("/v1/models", get(models))
            .route("/2010-04-01/Accounts/{file}", get(account));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn openai_key_checks_give_models_or_clear_errors() {
        let base = fake_providers().await;
        let ok = check_openai(&base, &Secret::new("sk-good-key-0123456789"))
            .await
            .unwrap();
        assert_eq!(ok.model_count, 4);
        assert_eq!(
            ok.realtime_models,
            vec![
                "gpt-realtime-2.1",
                "gpt-realtime-mini",
                "gpt-realtime-2099-01-01"
            ]
        );
        let err = check_openai(&base, &Secret::new("sk-bad-key-0123456789"))
            .await
            .unwrap_err();
        assert!(matches!(err, KeyCheckError::Rejected(_)), "{err:?}");
        assert!(err.to_string().contains("HTTP 401"));
        assert!(!err.to_string().contains("sk-bad-k*****6789"), "{err}");
        let err = check_openai(&base, &Secret::new("sk-no-perms-0123456789"))
            .await
            .unwrap_err();
        assert!(matches!(err, KeyCheckError::Forbidden(_)));
        assert!(err.to_string().contains("model.read"));
        assert!(matches!(
            check_openai(&base, &Secret::new("")).await,
            Err(KeyCheckError::Missing(_))
        ));
        assert!(matches!(
            check_openai(&base, &Secret::new("sk-a b")).await,
            Err(KeyCheckError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn twilio_checks_give_the_account_or_clear_errors() {
        let base = fake_providers().await;
        let ok = check_twilio(&base, SID, &Secret::new("tw-good"))
            .await
            .unwrap();
        assert_eq!(ok.friendly_name, "My first account");
        assert_eq!(ok.account_type, "Trial");
        let err = check_twilio(&base, SID, &Secret::new("tw-bad"))
            .await
            .unwrap_err();
        assert!(matches!(err, KeyCheckError::Rejected(_)), "{err:?}");
        let other = "ACffffffffffffffffffffffffffffffff";
        let err = check_twilio(&base, other, &Secret::new("tw-good"))
            .await
            .unwrap_err();
        assert!(matches!(err, KeyCheckError::NotFound(_)), "{err:?}");
        assert!(matches!(
            check_twilio(&base, "AC123", &Secret::new("x")).await,
            Err(KeyCheckError::Malformed(_))
        ));
        assert!(matches!(
            check_twilio(&base, SID, &Secret::new("")).await,
            Err(KeyCheckError::Missing(_))
        ));
    }

    #[tokio::test]
    async fn an_unreachable_service_says_so() {
        // A port that was just free: nothing listens there.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = check_openai(&base, &Secret::new("sk-good-key-0123456789"))
            .await
            .unwrap_err();
        assert!(matches!(err, KeyCheckError::Unreachable(_)), "{err:?}");
        assert!(err.to_string().contains("127.0.0.1"));
        let err = check_openai("not a url", &Secret::new("sk-x"))
            .await
            .unwrap_err();
        assert!(matches!(err, KeyCheckError::Malformed(_)));
    }

    #[tokio::test]
    async fn model_choices_are_live_with_a_good_stored_key_else_builtin() {
        use crate::secrets::{MemoryStore, SecretKind, Secrets};
        let base = fake_providers().await;
        let bases = ApiBases {
            openai: base.clone(),
            twilio: base,
        };
        let secrets = Secrets::new(std::sync::Arc::new(MemoryStore::default()), |_| None);
        let none = model_choices(&secrets, &bases).await;
        assert!(!none.live);
        assert_eq!(none.models.len(), KNOWN_MODELS.len());
        assert!(none.note.unwrap().contains("No OpenAI API key"));
        secrets
            .set(SecretKind::OpenaiApiKey, "sk-good-key-0123456789")
            .unwrap();
        let live = model_choices(&secrets, &bases).await;
        assert!(live.live, "{live:?}");
        assert_eq!(live.models[0], "gpt-realtime-2.1");
        secrets.set(SecretKind::TwilioAuthToken, "tw-good").unwrap();
        let account = check_stored_twilio(&secrets, &bases, SID).await.unwrap();
        assert_eq!(account.account_sid, SID);
    }

    #[test]
    fn only_ga_realtime_speech_models_are_offered() {
        let listed = [
            "gpt-4o-realtime-preview",
            "gpt-4o-realtime-preview-2024-12-17",
            "gpt-4o-realtime-preview-2025-06-03",
            "gpt-4o-mini-realtime-preview",
            "gpt-4o-mini-realtime-preview-2024-12-17",
            "gpt-4o-transcribe",
            "gpt-4o-mini-transcribe",
            "gpt-4o-mini-tts",
            "gpt-4o-audio-preview",
            "gpt-4o",
            "whisper-1",
            "gpt-realtime-transcribe",
            "gpt-realtime-mini-tts",
            "gpt-realtime-preview",
            "gpt-realtime-audio-preview-2026-01-01",
            "gpt-realtime",
            "gpt-realtime-2025-08-28",
            "gpt-realtime-mini",
            "gpt-realtime-mini-2025-10-06",
            "gpt-realtime-1.5",
            "gpt-realtime-2",
            "gpt-realtime-2.1",
            "gpt-realtime-2.1-mini",
        ];
        let offered = realtime_models(listed.iter().map(|m| m.to_string()));
        assert_eq!(
            offered,
            [
                // The curated order first, then the rest newest-looking first.
                "gpt-realtime-2.1",
                "gpt-realtime-2.1-mini",
                "gpt-realtime-2",
                "gpt-realtime-1.5",
                "gpt-realtime",
                "gpt-realtime-mini",
                "gpt-realtime-mini-2025-10-06",
                "gpt-realtime-2025-08-28",
            ]
        );
        for id in [
            "gpt-realtime-2025-08-28",
            "gpt-realtime-mini",
            "gpt-realtime",
        ] {
            assert!(is_realtime_speech_model(id), "{id}");
        }
        for id in [
            "gpt-4o-realtime-preview-2024-12-17",
            "gpt-4o-mini-realtime-preview",
            "gpt-4o-transcribe",
            "gpt-realtime-transcribe",
            "gpt-realtime-mini-tts",
            "gpt-realtime-preview",
            "omni-realtime",
            "",
        ] {
            assert!(!is_realtime_speech_model(id), "{id}");
        }
        // An account that lists only the shut-down beta models gets the built-in list.
        assert_eq!(
            realtime_models(vec![
                "gpt-4o-realtime-preview".to_string(),
                "gpt-4o-mini-transcribe".to_string()
            ]),
            KNOWN_MODELS
        );
    }

    #[test]
    fn the_builtin_list_is_the_fallback() {
        assert_eq!(
            realtime_models(vec!["gpt-4o".to_string()]).len(),
            KNOWN_MODELS.len()
        );
    }
}
