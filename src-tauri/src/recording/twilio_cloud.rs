//! Twilio's cloud recordings in the library: which recording a callback names, and where its file
//! goes. The requests themselves (download, delete) are the REST client's
//! ([`TwilioRest::download_recording`], [`TwilioRest::delete_recording`]), with its retries and
//! error mapping.
//!
//! How it plugs into calls: a call is created (or an inbound call's recording started) with
//! `RecordingChannels=dual` and the `RecordingStatusCallback` from
//! [`crate::telephony::twilio::webhooks::WebhookUrls`]. When the recording is ready Twilio POSTs that
//! route (signature-checked like every Twilio route); the library calls [`download`] with the
//! callback's `RecordingUrl`, and [`delete`] if the user chose not to keep the copy at Twilio.
//! Credentials only ever go to the configured Twilio API base.

use std::path::Path;

use tokio::io::AsyncWriteExt;

use super::library::RecordingStatus;
use crate::telephony::twilio::callbacks::RecordingStatusCallback;
use crate::telephony::twilio::rest::{RestError, TwilioRest};

/// A dual-channel 8 kHz recording is 32 KB/s; 4 GiB is the WAV limit anyway.
const MAX_BYTES: u64 = u32::MAX as u64;

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("recording URL {0:?} is not on the Twilio API ({1})")]
    ForeignUrl(String, String),
    #[error(transparent)]
    Rest(#[from] RestError),
    #[error("the recording is larger than 4 GiB")]
    TooLarge,
    #[error("cannot save the recording: {0}")]
    Io(#[from] std::io::Error),
}

impl From<RecordingStatusCallback> for RecordingStatus {
    fn from(c: RecordingStatusCallback) -> Self {
        RecordingStatus {
            call_sid: c.call_sid,
            recording_sid: c.recording_sid,
            recording_url: c.recording_url,
            recording_status: c.recording_status,
            recording_channels: c.recording_channels,
            recording_start_time: c.recording_start_time,
        }
    }
}

/// The SID of the recording `recording_url` names, which must be one of `rest`'s account's
/// recordings under its API base (`…/Recordings/RE…`, optionally `.json` or `.wav`): no credentials
/// for other hosts or accounts, no odd schemes.
fn recording_sid(rest: &TwilioRest, recording_url: &str) -> Result<String, CloudError> {
    let foreign = |why: &str| CloudError::ForeignUrl(recording_url.to_string(), why.to_string());
    let url = url::Url::parse(recording_url).map_err(|e| foreign(&e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(foreign("not a recording resource"));
    }
    let path = url.path();
    let path = path
        .strip_suffix(".json")
        .or_else(|| path.strip_suffix(".wav"))
        .unwrap_or(path);
    let sid = path.rsplit('/').next().unwrap_or_default();
    if sid.is_empty() || !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(foreign("not a recording resource"));
    }
    let expected =
        url::Url::parse(&rest.recording_url(sid)).map_err(|e| foreign(&e.to_string()))?;
    if url.origin() != expected.origin() {
        return Err(foreign("different host"));
    }
    if path != expected.path() {
        return Err(foreign("not a recording of this account"));
    }
    Ok(sid.to_string())
}

/// Downloads the recording at `recording_url` as two channels to `dest` (written to a temporary
/// name first, so a failed download never leaves a half file under the real name). Returns the
/// bytes saved.
pub async fn download(
    rest: &TwilioRest,
    recording_url: &str,
    dest: &Path,
) -> Result<u64, CloudError> {
    let sid = recording_sid(rest, recording_url)?;
    let mut download = rest.download_recording(&sid).await?;
    let partial = dest.with_extension("wav.part");
    let mut file = tokio::fs::File::create(&partial).await?;
    let mut written = 0u64;
    let result = async {
        while let Some(chunk) = download.chunk().await? {
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

/// Deletes the recording at `recording_url` at Twilio; one already gone counts as deleted.
pub async fn delete(rest: &TwilioRest, recording_url: &str) -> Result<(), CloudError> {
    let sid = recording_sid(rest, recording_url)?;
    Ok(rest.delete_recording(&sid).await?)
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

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

    fn rest(base: &str) -> TwilioRest {
        TwilioRest::new(base, ACCOUNT, crate::types::Secret::new("t")).unwrap()
    }

    #[test]
    fn credentials_only_go_to_the_api_base_for_this_account() {
        let rest = rest("https://api.twilio.com");
        let ok = format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE1");
        assert_eq!(ok, rest.recording_url("RE1"));
        for url in [
            ok.clone(),
            format!("{ok}.json"),
            format!("{ok}.wav"),
            ok.replace("api.twilio.com", "api.twilio.com:443"),
        ] {
            assert_eq!(recording_sid(&rest, &url).unwrap(), "RE1", "{url}");
        }
        for bad in [
            format!("https://evil.example/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE1"),
            format!("http://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE1"),
            format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Calls/CA1"),
            format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE1?x=1"),
            format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/../RE1"),
            format!("https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/"),
            "https://api.twilio.com/2010-04-01/Accounts/ACffffffffffffffffffffffffffffffff/Recordings/RE1"
                .to_string(),
            "file:///etc/passwd".to_string(),
            "not a url".to_string(),
        ] {
            assert!(
                matches!(recording_sid(&rest, &bad), Err(CloudError::ForeignUrl(..))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_callback_becomes_the_librarys_status_field_for_field() {
        let status = RecordingStatus::from(RecordingStatusCallback {
            call_sid: "CA1".into(),
            recording_sid: "RE1".into(),
            recording_url: "https://u".into(),
            recording_status: "completed".into(),
            recording_channels: Some("2".into()),
            recording_start_time: Some("Tue, 10 Jun 2025 18:05:12 +0000".into()),
        });
        assert_eq!(
            (
                status.call_sid.as_str(),
                status.recording_sid.as_str(),
                status.recording_url.as_str(),
                status.recording_status.as_str(),
                status.recording_channels.as_deref(),
                status.recording_start_time.as_deref(),
            ),
            (
                "CA1",
                "RE1",
                "https://u",
                "completed",
                Some("2"),
                Some("Tue, 10 Jun 2025 18:05:12 +0000")
            )
        );
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
