//! Twilio's cloud recordings: the download of a finished dual-channel recording into the library,
//! and its deletion at Twilio afterwards.
//!
//! How it plugs into outbound calls: the call is created with `Record=true`, `RecordingChannels=dual`
//! and `RecordingStatusCallback=<public URL>/twilio/recording-status` (the REST client in
//! `telephony::twilio::rest` sets these when a call asks for a cloud recording). When the recording is
//! ready Twilio POSTs that route (signature-checked like every Twilio route); the handler calls
//! [`download`] with the callback's `RecordingUrl`, and [`delete`] if the user chose not to keep
//! the copy at Twilio. Credentials are only ever sent to the configured Twilio API base.

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

const TIMEOUT: Duration = Duration::from_secs(120);
/// A dual-channel 8 kHz recording is 32 KB/s; 4 GiB is the WAV limit anyway.
const MAX_BYTES: u64 = u32::MAX as u64;

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("recording URL {0:?} is not on the Twilio API ({1})")]
    ForeignUrl(String, String),
    #[error("Twilio request failed: {0}")]
    Http(String),
    #[error("Twilio answered {status} for the recording")]
    Status { status: u16 },
    #[error("the recording is larger than 4 GiB")]
    TooLarge,
    #[error("cannot save the recording: {0}")]
    Io(#[from] std::io::Error),
}

/// Basic-auth credentials for Twilio's REST API, and its base (`TWILIO_API_BASE`, the same one the
/// REST client uses): recordings are only downloaded from there.
#[derive(Clone)]
pub struct TwilioAuth {
    pub account_sid: String,
    pub auth_token: crate::config::Secret,
    pub api_base: String,
}

impl std::fmt::Debug for TwilioAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TwilioAuth({}, <token>)", self.account_sid)
    }
}

/// `RecordingUrl` must live under `api_base` (no credentials to other hosts, no odd schemes).
fn checked(recording_url: &str, api_base: &str) -> Result<String, CloudError> {
    let foreign = |why: &str| CloudError::ForeignUrl(recording_url.to_string(), why.to_string());
    let url = url::Url::parse(recording_url).map_err(|e| foreign(&e.to_string()))?;
    let base = url::Url::parse(api_base).map_err(|e| foreign(&e.to_string()))?;
    if url.origin() != base.origin() {
        return Err(foreign("different host"));
    }
    if !url.path().contains("/Recordings/") || url.query().is_some() {
        return Err(foreign("not a recording resource"));
    }
    Ok(recording_url
        .trim_end_matches(".json")
        .trim_end_matches(".wav")
        .to_string())
}

fn client() -> Result<reqwest::Client, CloudError> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| CloudError::Http(e.to_string()))
}

/// Downloads `{RecordingUrl}.wav?RequestedChannels=2` to `dest` (written to a temporary name first,
/// so a failed download never leaves a half file under the real name). Returns the bytes saved.
pub async fn download(
    recording_url: &str,
    api_base: &str,
    auth: &TwilioAuth,
    dest: &Path,
) -> Result<u64, CloudError> {
    let url = format!(
        "{}.wav?RequestedChannels=2",
        checked(recording_url, api_base)?
    );
    let mut response = client()?
        .get(&url)
        .basic_auth(&auth.account_sid, Some(auth.auth_token.expose()))
        .send()
        .await
        .map_err(|e| CloudError::Http(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(CloudError::Status {
            status: response.status().as_u16(),
        });
    }
    let partial = dest.with_extension("wav.part");
    let mut file = tokio::fs::File::create(&partial).await?;
    let mut written = 0u64;
    let result = async {
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| CloudError::Http(e.without_url().to_string()))?
        {
            written += chunk.len() as u64;
            if written > MAX_BYTES {
                return Err(CloudError::TooLarge);
            }
            file.write_all(&chunk).await?;
        }
        file.sync_all().await?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    tokio::fs::rename(&partial, dest).await?;
    Ok(written)
}

/// Deletes the recording at Twilio (`DELETE {RecordingUrl}.json`); a 404 counts as deleted.
pub async fn delete(
    recording_url: &str,
    api_base: &str,
    auth: &TwilioAuth,
) -> Result<(), CloudError> {
    let url = format!("{}.json", checked(recording_url, api_base)?);
    let response = client()?
        .delete(&url)
        .basic_auth(&auth.account_sid, Some(auth.auth_token.expose()))
        .send()
        .await
        .map_err(|e| CloudError::Http(e.without_url().to_string()))?;
    match response.status().as_u16() {
        200..=299 | 404 => Ok(()),
        status => Err(CloudError::Status { status }),
    }
}

/// The recording resource URL for a recording SID (for deleting a copy the library knows by SID).
pub fn recording_url(api_base: &str, account_sid: &str, recording_sid: &str) -> String {
    format!(
        "{}/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}",
        api_base.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_only_go_to_the_api_base() {
        let base = "https://api.twilio.com";
        let ok = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1";
        assert_eq!(checked(ok, base).unwrap(), ok);
        assert_eq!(checked(&format!("{ok}.json"), base).unwrap(), ok);
        for bad in [
            "https://evil.example/2010-04-01/Accounts/AC1/Recordings/RE1",
            "http://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls/CA1",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1?x=1",
            "file:///etc/passwd",
        ] {
            assert!(
                matches!(checked(bad, base), Err(CloudError::ForeignUrl(..))),
                "{bad}"
            );
        }
    }
}
