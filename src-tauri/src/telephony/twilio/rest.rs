//! Twilio's REST API (2010-04-01): the calls Verbio places and controls, the account's numbers, and
//! its cloud recordings (download, delete).
//!
//! Basic auth with the account SID and auth token, form bodies, JSON answers. Twilio's error bodies
//! (`code`, `message`, `more_info`) become [`RestError::Api`]. Retries with backoff happen only where a
//! repeat cannot do anything twice: GETs (a download until its file starts to arrive), deleting a
//! recording (a repeat finds it gone, which counts as deleted), and a call creation that Twilio refused
//! with 429 or 5xx or that never reached Twilio (no call exists yet). Updates, and starting a live call's
//! recording, are retried only on 429 or when no connection was made.
//!
//! The base URL is configurable (`TWILIO_API_BASE`), so tests run this very client against Stoplight
//! Prism serving Twilio's own OpenAPI description.
//!
//! ```no_run
//! # async fn demo() -> Result<(), verbio::telephony::twilio::rest::RestError> {
//! use verbio::types::Secret;
//! use verbio::telephony::twilio::rest::{CreateCall, TwilioRest};
//! let twilio = TwilioRest::new("https://api.twilio.com", "AC…", Secret::new("token"))?;
//! let call = twilio
//!     .create_call(&CreateCall::new("+14155550123", "+14155550100", "<Response/>"))
//!     .await?;
//! println!("{} is {}", call.sid, call.status);
//! # Ok(()) }
//! ```

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::types::Secret;

/// Twilio's production API.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";
/// Twilio's code for "resource not found": hanging up a call that has already ended.
pub const ERROR_NOT_FOUND: i64 = 20404;
/// "Call is not in-progress. Cannot redirect.": updating a call that has already ended.
pub const ERROR_CALL_NOT_IN_PROGRESS: i64 = 21220;

/// A failed Twilio request, without credentials in any message.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("Twilio is not configured: set the account SID and auth token")]
    NotConfigured,
    #[error("{0:?} is not a Twilio account SID (AC followed by 32 hex digits)")]
    BadAccountSid(String),
    #[error("invalid Twilio API base URL {0:?}")]
    BadBaseUrl(String),
    #[error("{0}")]
    Api(TwilioApiError),
    #[error("cannot reach Twilio: {0}")]
    Transport(String),
    #[error("unexpected answer from Twilio (HTTP {status}): {reason}")]
    Decode { status: u16, reason: String },
}

impl RestError {
    /// Twilio's error code, when Twilio sent one.
    pub fn code(&self) -> Option<i64> {
        match self {
            RestError::Api(e) => e.code,
            _ => None,
        }
    }
}

/// Twilio's error body (`{"code": 21211, "message": …, "more_info": …, "status": 400}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TwilioApiError {
    pub status: u16,
    pub code: Option<i64>,
    pub message: String,
    pub more_info: Option<String>,
}

impl std::fmt::Display for TwilioApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Twilio refused the request (HTTP {}", self.status)?;
        if let Some(code) = self.code {
            write!(f, ", error {code}")?;
        }
        write!(f, "): {}", self.message)?;
        if let Some(more) = &self.more_info {
            write!(f, " (see {more})")?;
        }
        Ok(())
    }
}

/// The body shapes an error can come in: Twilio's own, or an RFC 7807 problem (API gateways, Prism).
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    message: Option<String>,
    more_info: Option<String>,
    title: Option<String>,
    detail: Option<String>,
}

fn api_error(status: StatusCode, body: &[u8]) -> TwilioApiError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (code, message, more_info) = match parsed {
        Some(b) => {
            let message = b
                .message
                .or_else(|| match (b.title, b.detail) {
                    (Some(t), Some(d)) => Some(format!("{t}: {d}")),
                    (t, d) => t.or(d),
                })
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
            (b.code, message, b.more_info)
        }
        None => (
            None,
            status.canonical_reason().unwrap_or("error").to_string(),
            None,
        ),
    };
    TwilioApiError {
        status: status.as_u16(),
        code,
        message,
        more_info,
    }
}

/// A call as Twilio describes it (the fields Verbio uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallResource {
    pub sid: String,
    /// Twilio's spec marks it nullable; a missing status reads as empty.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub status: String,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub answered_by: Option<String>,
    /// Seconds, as a string (Twilio's format).
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
}

/// A recording of a call (`Calls/{CallSid}/Recordings`), as Twilio describes it (the fields Verbio uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecordingResource {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub sid: String,
    #[serde(default)]
    pub call_sid: Option<String>,
    /// `in-progress`, `paused`, `stopped`, `processing`, `completed` or `absent`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub status: String,
    /// 1 or 2.
    #[serde(default)]
    pub channels: Option<u32>,
    /// `StartCallRecordingAPI` for a recording started through the REST API.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub track: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
}

/// One of the account's phone numbers: the "from" choices for outbound calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingNumber {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub sid: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub phone_number: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub voice_url: Option<String>,
    #[serde(default)]
    pub status_callback: Option<String>,
}

/// The account (used to check credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountResource {
    pub sid: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// `Full` or `Trial`.
    #[serde(default, rename = "type")]
    pub account_type: Option<String>,
}

/// A nullable string field read as `""` when null (the spec marks nearly every field nullable).
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct CallPage {
    #[serde(default)]
    calls: Vec<CallResource>,
    #[serde(default)]
    next_page_uri: Option<String>,
}

#[derive(Deserialize)]
struct NumberPage {
    #[serde(default)]
    incoming_phone_numbers: Vec<IncomingNumber>,
    #[serde(default)]
    next_page_uri: Option<String>,
}

/// `MachineDetection` for a new call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineDetection {
    /// A verdict as soon as the called party is identified: `human`, `machine_start`, `fax` or
    /// `unknown`.
    Enable,
    /// For a machine, wait for the end of its greeting (`machine_end_beep`, `_silence`, `_other`), for
    /// leaving a voicemail; people and faxes are reported as with `Enable`.
    DetectMessageEnd,
}

/// `Trim` on every cloud recording Verbio asks for: Twilio's `trim-silence` (the default on call
/// creation) would cut the silence before the first words, so the recording's offsets would no
/// longer match the transcript's.
pub const RECORDING_TRIM: &str = "do-not-trim";

/// Parameters of `POST Calls.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateCall {
    pub to: String,
    pub from: String,
    /// Inline TwiML run when the call is answered.
    pub twiml: String,
    pub status_callback: Option<String>,
    /// `initiated`, `ringing`, `answered`, `completed`.
    pub status_callback_events: Vec<&'static str>,
    pub machine_detection: Option<MachineDetection>,
    /// Where asynchronous AMD posts `AnsweredBy` (sets `AsyncAmd=true`).
    pub async_amd_callback: Option<String>,
    /// Twilio's own (cloud) recording of the call, two channels.
    pub record: bool,
    pub recording_status_callback: Option<String>,
    /// Seconds to let it ring.
    pub timeout_secs: Option<u32>,
}

impl CreateCall {
    pub fn new(to: impl Into<String>, from: impl Into<String>, twiml: impl Into<String>) -> Self {
        CreateCall {
            to: to.into(),
            from: from.into(),
            twiml: twiml.into(),
            status_callback: None,
            status_callback_events: Vec::new(),
            machine_detection: None,
            async_amd_callback: None,
            record: false,
            recording_status_callback: None,
            timeout_secs: None,
        }
    }

    /// The form body, in Twilio's parameter names (repeated keys for lists).
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let mut form = vec![
            ("To", self.to.clone()),
            ("From", self.from.clone()),
            ("Twiml", self.twiml.clone()),
        ];
        if let Some(url) = &self.status_callback {
            form.push(("StatusCallback", url.clone()));
            form.push(("StatusCallbackMethod", "POST".into()));
            for event in &self.status_callback_events {
                form.push(("StatusCallbackEvent", (*event).to_string()));
            }
        }
        if let Some(detection) = self.machine_detection {
            let value = match detection {
                MachineDetection::Enable => "Enable",
                MachineDetection::DetectMessageEnd => "DetectMessageEnd",
            };
            form.push(("MachineDetection", value.into()));
            if let Some(url) = &self.async_amd_callback {
                form.push(("AsyncAmd", "true".into()));
                form.push(("AsyncAmdStatusCallback", url.clone()));
                form.push(("AsyncAmdStatusCallbackMethod", "POST".into()));
            }
        }
        if self.record {
            form.push(("Record", "true".into()));
            form.push(("RecordingChannels", "dual".into()));
            form.push(("Trim", RECORDING_TRIM.into()));
            if let Some(url) = &self.recording_status_callback {
                form.push(("RecordingStatusCallback", url.clone()));
                form.push(("RecordingStatusCallbackMethod", "POST".into()));
                form.push(("RecordingStatusCallbackEvent", "completed".into()));
            }
        }
        if let Some(t) = self.timeout_secs {
            form.push(("Timeout", t.to_string()));
        }
        form
    }
}

/// What a hang-up did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HangUpOutcome {
    /// An answered call was ended (`Status=completed`).
    Completed,
    /// A call still queued or ringing was cancelled (`Status=canceled`).
    Canceled,
    /// Twilio no longer had the call live (error 20404 or 21220).
    AlreadyEnded,
}

/// Backoff for the requests that may be repeated.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(300),
            max_backoff: Duration::from_secs(3),
        }
    }
}

/// Which failures a request may be repeated after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Idempotence {
    /// GETs: any 429, 5xx or transport failure.
    Safe,
    /// Creating a call: 429 and 5xx (no call was made) and failures to connect.
    BeforeCallExists,
    /// Updates and recording starts: only when Twilio certainly did not act (429, no connection).
    NotProcessed,
}

/// Twilio's REST API for one account.
#[derive(Clone)]
pub struct TwilioRest {
    http: reqwest::Client,
    base: String,
    account_sid: String,
    auth_token: Secret,
    retry: RetryPolicy,
}

impl std::fmt::Debug for TwilioRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioRest")
            .field("base", &self.base)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &self.auth_token)
            .finish()
    }
}

/// True for `AC` followed by 32 hex digits.
pub fn is_account_sid(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("AC") && sid[2..].chars().all(|c| c.is_ascii_hexdigit())
}

impl TwilioRest {
    /// A client for `account_sid`. Fails early on a malformed SID or base URL, or missing credentials.
    pub fn new(
        base: impl Into<String>,
        account_sid: impl Into<String>,
        auth_token: Secret,
    ) -> Result<Self, RestError> {
        let base = base.into().trim_end_matches('/').to_string();
        let account_sid = account_sid.into();
        if account_sid.is_empty() || auth_token.is_empty() {
            return Err(RestError::NotConfigured);
        }
        if !is_account_sid(&account_sid) {
            return Err(RestError::BadAccountSid(account_sid));
        }
        match url::Url::parse(&base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return Err(RestError::BadBaseUrl(base)),
        }
        crate::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .user_agent(concat!("verbio/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RestError::Transport(e.to_string()))?;
        Ok(TwilioRest {
            http,
            base,
            account_sid,
            auth_token,
            retry: RetryPolicy::default(),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn account_sid(&self) -> &str {
        &self.account_sid
    }

    fn account_url(&self, tail: &str) -> String {
        account_url(&self.base, &self.account_sid, tail)
    }

    /// The resource URL of one of the account's recordings (no extension), as Twilio gives it in
    /// `RecordingUrl`.
    pub fn recording_url(&self, recording_sid: &str) -> String {
        recording_url(&self.base, &self.account_sid, recording_sid)
    }

    /// Places a call.
    pub async fn create_call(&self, call: &CreateCall) -> Result<CallResource, RestError> {
        self.request(
            Method::POST,
            self.account_url("/Calls.json"),
            Some(&call.form()),
            Idempotence::BeforeCallExists,
        )
        .await
    }

    pub async fn fetch_call(&self, call_sid: &str) -> Result<CallResource, RestError> {
        let url = self.account_url(&format!("/Calls/{}.json", path_segment(call_sid)));
        self.request(Method::GET, url, None, Idempotence::Safe)
            .await
    }

    /// Updates a live call (`Status`, or new `Twiml` that replaces what the call is doing).
    pub async fn update_call(
        &self,
        call_sid: &str,
        form: &[(&'static str, String)],
    ) -> Result<CallResource, RestError> {
        let url = self.account_url(&format!("/Calls/{}.json", path_segment(call_sid)));
        self.request(Method::POST, url, Some(form), Idempotence::NotProcessed)
            .await
    }

    /// Replaces what a live call is doing with `twiml` (a transfer, an apology and hang-up).
    pub async fn redirect_call(
        &self,
        call_sid: &str,
        twiml: &str,
    ) -> Result<CallResource, RestError> {
        self.update_call(call_sid, &[("Twiml", twiml.to_string())])
            .await
    }

    /// Ends a call: `completed` once answered, `canceled` while it is still queued or ringing. Twilio
    /// ignores `canceled` on a call answered meanwhile (it answers with the live status): then
    /// `completed` follows. A call Twilio no longer has live is [`HangUpOutcome::AlreadyEnded`], not
    /// an error.
    pub async fn hang_up(
        &self,
        call_sid: &str,
        answered: bool,
    ) -> Result<HangUpOutcome, RestError> {
        if !answered {
            match self.set_status(call_sid, "canceled").await? {
                None => return Ok(HangUpOutcome::AlreadyEnded),
                Some(call) if call.status == "in-progress" => {
                    debug!(%call_sid, "answered before it could be cancelled: completing it");
                }
                Some(_) => return Ok(HangUpOutcome::Canceled),
            }
        }
        Ok(match self.set_status(call_sid, "completed").await? {
            None => HangUpOutcome::AlreadyEnded,
            Some(_) => HangUpOutcome::Completed,
        })
    }

    /// `Status=…` on a call; `None` when Twilio no longer has it live (20404, 21220).
    async fn set_status(
        &self,
        call_sid: &str,
        status: &str,
    ) -> Result<Option<CallResource>, RestError> {
        match self
            .update_call(call_sid, &[("Status", status.to_string())])
            .await
        {
            Ok(call) => Ok(Some(call)),
            Err(e) if matches!(e.code(), Some(ERROR_NOT_FOUND | ERROR_CALL_NOT_IN_PROGRESS)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Starts Twilio's own two-channel recording of a live call (`POST Calls/{Sid}/Recordings.json`),
    /// untrimmed ([`RECORDING_TRIM`]), with `completed` reported to `status_callback` (POST). Repeated
    /// only when Twilio surely did not act (429, no connection): a repeat after a 5xx could start a
    /// second recording.
    pub async fn start_call_recording(
        &self,
        call_sid: &str,
        status_callback: Option<&str>,
    ) -> Result<CallRecordingResource, RestError> {
        let url = self.account_url(&format!(
            "/Calls/{}/Recordings.json",
            path_segment(call_sid)
        ));
        let mut form = vec![
            ("RecordingChannels", "dual".to_string()),
            ("Trim", RECORDING_TRIM.to_string()),
        ];
        if let Some(cb) = status_callback {
            form.push(("RecordingStatusCallback", cb.to_string()));
            form.push(("RecordingStatusCallbackMethod", "POST".to_string()));
            form.push(("RecordingStatusCallbackEvent", "completed".to_string()));
        }
        self.request(Method::POST, url, Some(&form), Idempotence::NotProcessed)
            .await
    }

    /// Calls that are connected now (`Status=in-progress`), every page.
    pub async fn list_active_calls(&self) -> Result<Vec<CallResource>, RestError> {
        let mut url = self.account_url("/Calls.json?Status=in-progress&PageSize=100");
        let mut calls = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: CallPage = self
                .request(Method::GET, url, None, Idempotence::Safe)
                .await?;
            calls.extend(page.calls);
            match page.next_page_uri.filter(|u| !u.is_empty()) {
                Some(next) => url = self.follow(&next)?,
                None => break,
            }
        }
        Ok(calls)
    }

    /// The account's phone numbers, every page.
    pub async fn list_numbers(&self) -> Result<Vec<IncomingNumber>, RestError> {
        let mut url = self.account_url("/IncomingPhoneNumbers.json?PageSize=100");
        let mut numbers = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: NumberPage = self
                .request(Method::GET, url, None, Idempotence::Safe)
                .await?;
            // A number without a SID or number cannot be offered or configured.
            numbers.extend(
                page.incoming_phone_numbers
                    .into_iter()
                    .filter(|n| !n.sid.is_empty() && !n.phone_number.is_empty()),
            );
            match page.next_page_uri.filter(|u| !u.is_empty()) {
                Some(next) => url = self.follow(&next)?,
                None => break,
            }
        }
        Ok(numbers)
    }

    /// Points a number's incoming calls at `voice_url` (POST), with call status sent to `status_callback`.
    pub async fn set_number_webhooks(
        &self,
        number_sid: &str,
        voice_url: &str,
        status_callback: Option<&str>,
    ) -> Result<IncomingNumber, RestError> {
        let url = self.account_url(&format!(
            "/IncomingPhoneNumbers/{}.json",
            path_segment(number_sid)
        ));
        let mut form = vec![
            ("VoiceUrl", voice_url.to_string()),
            ("VoiceMethod", "POST".to_string()),
        ];
        if let Some(cb) = status_callback {
            form.push(("StatusCallback", cb.to_string()));
            form.push(("StatusCallbackMethod", "POST".to_string()));
        }
        self.request(Method::POST, url, Some(&form), Idempotence::NotProcessed)
            .await
    }

    /// Fetches the account: the cheapest request that proves the credentials work.
    pub async fn fetch_account(&self) -> Result<AccountResource, RestError> {
        self.request(
            Method::GET,
            self.account_url(".json"),
            None,
            Idempotence::Safe,
        )
        .await
    }

    /// Starts downloading a recording's audio as a two-channel WAV
    /// (`GET Recordings/{Sid}.wav?RequestedChannels=2`). Repeated like any GET until the file
    /// starts to arrive; read it with [`RecordingDownload::chunk`].
    pub async fn download_recording(
        &self,
        recording_sid: &str,
    ) -> Result<RecordingDownload, RestError> {
        let url = format!(
            "{}.wav?RequestedChannels=2",
            self.recording_url(recording_sid)
        );
        let reply = self
            .exchange(Method::GET, &url, None, Idempotence::Safe, Answer::Stream)
            .await?;
        Ok(RecordingDownload {
            body: Some(reply.body),
        })
    }

    /// Deletes one of the account's recordings (`DELETE Recordings/{Sid}.json`). One that is
    /// already gone (404) counts as deleted, which also makes a repeat harmless.
    pub async fn delete_recording(&self, recording_sid: &str) -> Result<(), RestError> {
        let url = format!("{}.json", self.recording_url(recording_sid));
        match self
            .exchange(Method::DELETE, &url, None, Idempotence::Safe, Answer::Json)
            .await
        {
            Ok(_) => Ok(()),
            Err(RestError::Api(e)) if e.status == 404 || e.code == Some(ERROR_NOT_FOUND) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A `next_page_uri` (a path) made absolute; refuses to leave the configured host.
    fn follow(&self, next: &str) -> Result<String, RestError> {
        if next.starts_with('/') {
            Ok(format!("{}{}", self.base, next))
        } else {
            Err(RestError::Decode {
                status: 200,
                reason: format!("next_page_uri {next:?} is not a path"),
            })
        }
    }

    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        url: String,
        form: Option<&[(&'static str, String)]>,
        idempotence: Idempotence,
    ) -> Result<T, RestError> {
        let reply = self
            .exchange(method, &url, form, idempotence, Answer::Json)
            .await?;
        let status = reply.status.as_u16();
        let body = reply.body.into_bytes().await?;
        serde_json::from_slice(&body).map_err(|e| RestError::Decode {
            status,
            reason: e.to_string(),
        })
    }

    /// One request, repeated with backoff where `idempotence` allows. A refusal becomes
    /// [`RestError::Api`] with Twilio's error body; a successful answer is returned whole, or (for
    /// [`Answer::Stream`]) with its body still to be read.
    async fn exchange(
        &self,
        method: Method,
        url: &str,
        form: Option<&[(&'static str, String)]>,
        idempotence: Idempotence,
        answer: Answer,
    ) -> Result<Reply, RestError> {
        let mut backoff = self.retry.initial_backoff;
        let mut attempt = 1;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url)
                .basic_auth(&self.account_sid, Some(self.auth_token.expose()));
            request = match answer {
                Answer::Json => request.header(reqwest::header::ACCEPT, "application/json"),
                // A recording can take longer than the client's timeout for API calls.
                Answer::Stream => request.timeout(DOWNLOAD_TIMEOUT),
            };
            if let Some(form) = form {
                request = request.form(form);
            }
            let outcome = match request.send().await {
                Ok(response) if answer == Answer::Stream && response.status().is_success() => {
                    Ok(Reply {
                        status: response.status(),
                        body: Body::Open(response),
                    })
                }
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(body) => Ok(Reply {
                            status,
                            body: Body::Read(body.to_vec()),
                        }),
                        Err(e) => Err((e.is_connect(), transport_message(&e))),
                    }
                }
                Err(e) => Err((e.is_connect(), transport_message(&e))),
            };
            let retryable = match &outcome {
                Ok(Reply { status, .. }) => match idempotence {
                    Idempotence::Safe | Idempotence::BeforeCallExists => {
                        *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
                    }
                    Idempotence::NotProcessed => *status == StatusCode::TOO_MANY_REQUESTS,
                },
                Err((connect, _)) => idempotence == Idempotence::Safe || *connect,
            };
            if retryable && attempt < self.retry.attempts {
                let why = match &outcome {
                    Ok(reply) => format!("HTTP {}", reply.status.as_u16()),
                    Err((_, message)) => message.clone(),
                };
                warn!(%method, attempt, %why, "Twilio request failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.retry.max_backoff);
                attempt += 1;
                continue;
            }
            let reply = outcome.map_err(|(_, message)| RestError::Transport(message))?;
            debug!(%method, status = reply.status.as_u16(), "Twilio answered");
            if !reply.status.is_success() {
                let status = reply.status;
                // A refusal's body was read above; an unreadable one still gives the status.
                let body = reply.body.into_bytes().await.unwrap_or_default();
                return Err(RestError::Api(api_error(status, &body)));
            }
            return Ok(reply);
        }
    }
}

/// How long a recording download may take in all (a dual-channel hour is about 115 MB).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// What a successful answer is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// A JSON body, read whole.
    Json,
    /// Media, handed over unread to be streamed.
    Stream,
}

/// Twilio's answer to one request.
struct Reply {
    status: StatusCode,
    body: Body,
}

enum Body {
    Read(Vec<u8>),
    Open(reqwest::Response),
}

impl Body {
    async fn into_bytes(self) -> Result<Vec<u8>, RestError> {
        match self {
            Body::Read(bytes) => Ok(bytes),
            Body::Open(response) => response
                .bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| RestError::Transport(transport_message(&e))),
        }
    }
}

/// A recording's audio as Twilio sends it, read chunk by chunk ([`TwilioRest::download_recording`]).
pub struct RecordingDownload {
    body: Option<Body>,
}

impl RecordingDownload {
    /// The next piece of the file; `None` once it is complete. A broken connection is
    /// [`RestError::Transport`] (not retried: part of the file has been handed out already).
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, RestError> {
        match self.body.take() {
            Some(Body::Open(mut response)) => {
                let chunk = response
                    .chunk()
                    .await
                    .map_err(|e| RestError::Transport(transport_message(&e)))?;
                if chunk.is_some() {
                    self.body = Some(Body::Open(response));
                }
                Ok(chunk.map(|b| b.to_vec()))
            }
            // A body that was read whole is one chunk.
            Some(Body::Read(bytes)) => Ok(Some(bytes)),
            None => Ok(None),
        }
    }
}

/// The resource URL of a recording of `account_sid` under the API `base` (no extension).
fn recording_url(base: &str, account_sid: &str, recording_sid: &str) -> String {
    account_url(
        base,
        account_sid,
        &format!("/Recordings/{}", path_segment(recording_sid)),
    )
}

/// `{base}/2010-04-01/Accounts/{account_sid}{tail}`: where every resource of an account lives.
fn account_url(base: &str, account_sid: &str, tail: &str) -> String {
    format!(
        "{}/2010-04-01/Accounts/{}{}",
        base.trim_end_matches('/'),
        account_sid,
        tail
    )
}

/// Most pages a listing follows (100 per page): a runaway `next_page_uri` cannot loop forever.
const MAX_PAGES: usize = 50;

/// reqwest's message without the URL (it holds the account SID, which does not belong in UI errors).
fn transport_message(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut message = kind.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// A SID placed in a URL path: anything but letters and digits is refused by encoding it, so a crafted
/// SID cannot reach another resource.
fn path_segment(sid: &str) -> String {
    url::form_urlencoded::byte_serialize(sid.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_form_has_twilios_parameter_names() {
        let mut call = CreateCall::new("+14155550123", "+14155550100", "<Response/>");
        call.status_callback = Some("https://x.example/twilio/status".into());
        call.status_callback_events = vec!["initiated", "ringing", "answered", "completed"];
        call.machine_detection = Some(MachineDetection::DetectMessageEnd);
        call.async_amd_callback = Some("https://x.example/twilio/amd".into());
        call.record = true;
        let form = call.form();
        let get = |k: &str| {
            form.iter()
                .filter(|(name, _)| *name == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("To"), ["+14155550123"]);
        assert_eq!(get("Twiml"), ["<Response/>"]);
        assert_eq!(
            get("StatusCallbackEvent"),
            ["initiated", "ringing", "answered", "completed"]
        );
        assert_eq!(get("MachineDetection"), ["DetectMessageEnd"]);
        assert_eq!(get("AsyncAmd"), ["true"]);
        assert_eq!(get("RecordingChannels"), ["dual"]);
        assert_eq!(get("Trim"), ["do-not-trim"]);
        call.machine_detection = Some(MachineDetection::Enable);
        call.record = false;
        let form = call.form();
        let names: Vec<&str> = form.iter().map(|(name, _)| *name).collect();
        assert!(form.contains(&("MachineDetection", "Enable".into())));
        assert!(!names.contains(&"Trim") && !names.contains(&"Record"));
    }

    #[test]
    fn errors_read_twilio_and_problem_bodies() {
        let e = api_error(
            StatusCode::BAD_REQUEST,
            br#"{"code":21211,"message":"The 'To' number 5551 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#,
        );
        assert_eq!(e.code, Some(21211));
        assert!(e.to_string().contains("error 21211"), "{e}");
        let e = api_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            br#"{"title":"Invalid request","detail":"missing From","status":422}"#,
        );
        assert_eq!(e.message, "Invalid request: missing From");
        let e = api_error(StatusCode::BAD_GATEWAY, b"<html>");
        assert_eq!(e.message, "Bad Gateway");
    }

    #[test]
    fn construction_checks_credentials_and_sid() {
        let token = || Secret::new("t");
        assert!(matches!(
            TwilioRest::new(DEFAULT_API_BASE, "", token()),
            Err(RestError::NotConfigured)
        ));
        assert!(matches!(
            TwilioRest::new(DEFAULT_API_BASE, "ACnothex", token()),
            Err(RestError::BadAccountSid(_))
        ));
        assert!(matches!(
            TwilioRest::new("ftp://x", "AC0123456789abcdef0123456789abcdef", token()),
            Err(RestError::BadBaseUrl(_))
        ));
        let ok = TwilioRest::new(
            "http://127.0.0.1:1/",
            "AC0123456789abcdef0123456789abcdef",
            Secret::new("super-secret"),
        )
        .unwrap();
        assert!(!format!("{ok:?}").contains("super-secret"));
        assert_eq!(path_segment("CA12/../x"), "CA12%2F..%2Fx");
    }
}
