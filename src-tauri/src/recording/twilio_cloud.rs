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
    pub auth_token: crate::types::Secret,
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

/// Twilio's `RecordingStartTime` (RFC 2822, e.g. `Tue, 10 Jun 2025 18:05:12 +0000`) in Unix ms;
/// `None` if it does not parse (the caller then uses the time the callback came).
pub fn parse_start_time_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    // The day of the week is optional and says nothing the date does not.
    let text = match text.split_once(',') {
        Some((_, rest)) => rest,
        None => text,
    };
    let mut parts = text.split_whitespace();
    let day: i64 = parts.next()?.parse().ok()?;
    let month = parts.next()?.to_ascii_lowercase();
    let month = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| *m == month)? as i64
        + 1;
    let year: i64 = match parts.next()?.parse().ok()? {
        // RFC 2822's obsolete two-digit years.
        y @ 0..=49 => y + 2000,
        y @ 50..=999 => y + 1900,
        y => y,
    };
    let mut hms = parts.next()?.split(':');
    let hour: i64 = hms.next()?.parse().ok()?;
    let minute: i64 = hms.next()?.parse().ok()?;
    let second: i64 = match hms.next() {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    if hms.next().is_some() {
        return None;
    }
    let offset_minutes = match parts.next().unwrap_or("+0000") {
        "GMT" | "UT" | "UTC" | "Z" => 0,
        zone => {
            let (sign, digits) = match zone.as_bytes().first()? {
                b'+' => (1, &zone[1..]),
                b'-' => (-1, &zone[1..]),
                _ => return None,
            };
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hh: i64 = digits[..2].parse().ok()?;
            let mm: i64 = digits[2..].parse().ok()?;
            sign * (hh * 60 + mm)
        }
    };
    if parts.next().is_some()
        || !(1..=31).contains(&day)
        || !(0..=23).contains(&hour)
        || !(0..=59).contains(&minute)
        || !(0..=60).contains(&second)
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    #[test]
    fn recording_start_times_parse_as_twilio_sends_them() {
        // 2025-06-10T18:05:12Z
        let at = 1_749_578_712_000;
        assert_eq!(
            parse_start_time_ms("Tue, 10 Jun 2025 18:05:12 +0000"),
            Some(at)
        );
        assert_eq!(parse_start_time_ms("10 Jun 2025 18:05:12 GMT"), Some(at));
        assert_eq!(
            parse_start_time_ms("Tue, 10 Jun 2025 20:05:12 +0200"),
            Some(at)
        );
        assert_eq!(
            parse_start_time_ms("Tue, 10 Jun 2025 13:05:12 -0500"),
            Some(at)
        );
        assert_eq!(
            parse_start_time_ms("Thu, 01 Jan 1970 00:00:00 +0000"),
            Some(0)
        );
        assert_eq!(
            parse_start_time_ms("Thu, 29 Feb 2024 23:59:59 +0000"),
            Some(1_709_251_199_000)
        );
        for bad in [
            "",
            "yesterday",
            "2025-06-10T18:05:12Z",
            "Tue, 10 Foo 2025 18:05:12 +0000",
            "Tue, 10 Jun 2025 25:05:12 +0000",
            "Tue, 10 Jun 2025 18:05:12 +00",
            "Tue, 10 Jun 2025 18:05:12 +0000 extra",
        ] {
            assert_eq!(parse_start_time_ms(bad), None, "{bad:?}");
        }
    }
}
