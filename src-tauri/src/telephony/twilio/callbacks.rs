//! Twilio's webhooks translated into typed values, with no I/O: the HTTP layer checks the signature,
//! parses with these, and hands the result to a service.
//!
//! Empty parameters count as absent where Twilio sends them empty for values it does not have.

use super::answered_by::AnsweredBy;
use super::direction::Direction;
use super::form::{Form, FormError};
use super::status::CallStatus;

/// A webhook's parameters, read from its form.
pub trait FromForm: Sized {
    /// What the webhook is called in logs.
    const WHAT: &'static str;

    /// Reads the parameters; a missing required one is [`FormError::Missing`] naming it.
    fn from_form(form: &Form) -> Result<Self, FormError>;
}

/// The voice webhook (`POST /twiml`): a call is coming in, or a call the app placed asks for TwiML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceWebhook {
    pub call_sid: String,
    /// As sent (the caller; may be empty or `Anonymous`).
    pub from: Option<String>,
    /// As sent (the number called).
    pub to: Option<String>,
    pub direction: Option<Direction>,
}

impl FromForm for VoiceWebhook {
    const WHAT: &'static str = "voice webhook";

    /// Reads `CallSid` (required), `From`, `To`, `Direction`.
    fn from_form(form: &Form) -> Result<VoiceWebhook, FormError> {
        Ok(VoiceWebhook {
            call_sid: form.required("CallSid")?.to_string(),
            from: form.optional("From").map(str::to_string),
            to: form.optional("To").map(str::to_string),
            direction: form.non_empty("Direction").map(Direction::parse),
        })
    }
}

/// A call status callback (`StatusCallback`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    pub call_sid: String,
    /// Twilio's status as sent (a status Verbio does not know is still recorded); see
    /// [`StatusCallback::status`].
    pub call_status: String,
    pub direction: Option<Direction>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub answered_by: Option<AnsweredBy>,
    /// `CallDuration` (sent with `completed`); a value that is not a number is left out.
    pub duration_secs: Option<u32>,
}

impl FromForm for StatusCallback {
    const WHAT: &'static str = "status callback";

    /// Reads `CallSid`, `CallStatus` (both required), `Direction`, `From`, `To`, `AnsweredBy`,
    /// `CallDuration`.
    fn from_form(form: &Form) -> Result<StatusCallback, FormError> {
        Ok(StatusCallback {
            call_sid: form.required("CallSid")?.to_string(),
            call_status: form.required("CallStatus")?.to_string(),
            direction: form.non_empty("Direction").map(Direction::parse),
            from: form.non_empty("From").map(str::to_string),
            to: form.non_empty("To").map(str::to_string),
            answered_by: form.non_empty("AnsweredBy").map(AnsweredBy::parse),
            duration_secs: form.non_empty("CallDuration").and_then(|d| d.parse().ok()),
        })
    }
}

impl StatusCallback {
    /// The status, typed; `None` for one Verbio does not know.
    pub fn status(&self) -> Option<CallStatus> {
        CallStatus::parse(&self.call_status)
    }
}

/// Asynchronous answering-machine detection's verdict (`AsyncAmdStatusCallback`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmdCallback {
    pub call_sid: String,
    pub answered_by: AnsweredBy,
}

impl FromForm for AmdCallback {
    const WHAT: &'static str = "AMD callback";

    /// Reads `CallSid` and `AnsweredBy` (both required).
    fn from_form(form: &Form) -> Result<AmdCallback, FormError> {
        Ok(AmdCallback {
            call_sid: form.required("CallSid")?.to_string(),
            answered_by: AnsweredBy::parse(form.required("AnsweredBy")?),
        })
    }
}

/// A cloud recording's status (`RecordingStatusCallback`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingStatusCallback {
    pub call_sid: String,
    pub recording_sid: String,
    /// The recording resource (`…/Recordings/RE…`, no extension).
    pub recording_url: String,
    /// `completed`, `absent` or `failed` (`in-progress` when asked for).
    pub recording_status: String,
    /// `1` or `2`, as sent.
    pub recording_channels: Option<String>,
    /// When the recording started, RFC 2822 (`Tue, 10 Jun 2025 18:05:12 +0000`), as sent.
    pub recording_start_time: Option<String>,
}

impl FromForm for RecordingStatusCallback {
    const WHAT: &'static str = "recording status callback";

    /// Reads `CallSid`, `RecordingSid`, `RecordingUrl`, `RecordingStatus` (all required),
    /// `RecordingChannels`, `RecordingStartTime`.
    fn from_form(form: &Form) -> Result<RecordingStatusCallback, FormError> {
        Ok(RecordingStatusCallback {
            call_sid: form.required("CallSid")?.to_string(),
            recording_sid: form.required("RecordingSid")?.to_string(),
            recording_url: form.required("RecordingUrl")?.to_string(),
            recording_status: form.required("RecordingStatus")?.to_string(),
            recording_channels: form.optional("RecordingChannels").map(str::to_string),
            recording_start_time: form.optional("RecordingStartTime").map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn voice_webhook_needs_a_call_sid_and_keeps_the_numbers_as_sent() {
        let v = VoiceWebhook::from_form(&form(&[
            ("CallSid", "CA1"),
            ("From", "+14155550100"),
            ("To", ""),
            ("Direction", "inbound"),
        ]))
        .unwrap();
        assert_eq!(
            v,
            VoiceWebhook {
                call_sid: "CA1".into(),
                from: Some("+14155550100".into()),
                to: Some(String::new()),
                direction: Some(Direction::Inbound),
            }
        );
        let bare = VoiceWebhook::from_form(&form(&[("CallSid", "CA2")])).unwrap();
        assert_eq!((bare.from, bare.to, bare.direction), (None, None, None));
        for missing in [form(&[("From", "+1")]), form(&[("CallSid", "")])] {
            assert_eq!(
                VoiceWebhook::from_form(&missing),
                Err(FormError::Missing("CallSid"))
            );
        }
    }

    #[test]
    fn status_callback_types_its_values_and_drops_empty_ones() {
        let s = StatusCallback::from_form(&form(&[
            ("CallSid", "CA1"),
            ("CallStatus", "completed"),
            ("Direction", "outbound-api"),
            ("From", "+14155550100"),
            ("To", ""),
            ("AnsweredBy", "machine_end_beep"),
            ("CallDuration", "42"),
        ]))
        .unwrap();
        assert_eq!(s.call_status, "completed");
        assert_eq!(s.status(), Some(CallStatus::Completed));
        assert_eq!(s.direction, Some(Direction::OutboundApi));
        assert_eq!(s.from.as_deref(), Some("+14155550100"));
        assert_eq!(s.to, None, "empty counts as absent");
        assert_eq!(s.answered_by, Some(AnsweredBy::MachineEndBeep));
        assert_eq!(s.duration_secs, Some(42));

        let odd = StatusCallback::from_form(&form(&[
            ("CallSid", "CA1"),
            ("CallStatus", "on-hold"),
            ("Direction", "trunking-originating"),
            ("AnsweredBy", "robot"),
            ("CallDuration", "soon"),
        ]))
        .unwrap();
        assert_eq!(odd.call_status, "on-hold", "an unknown status is kept");
        assert_eq!(odd.status(), None);
        assert_eq!(
            odd.direction,
            Some(Direction::Other("trunking-originating".into()))
        );
        assert_eq!(odd.answered_by, Some(AnsweredBy::Other("robot".into())));
        assert_eq!(odd.duration_secs, None);

        assert_eq!(
            StatusCallback::from_form(&form(&[("CallStatus", "ringing")])),
            Err(FormError::Missing("CallSid"))
        );
        assert_eq!(
            StatusCallback::from_form(&form(&[("CallSid", "CA1"), ("CallStatus", "")])),
            Err(FormError::Missing("CallStatus"))
        );
    }

    #[test]
    fn amd_callback_needs_sid_and_verdict() {
        let a = AmdCallback::from_form(&form(&[
            ("CallSid", "CA1"),
            ("AnsweredBy", "machine_start"),
            ("MachineDetectionDuration", "2300"),
        ]))
        .unwrap();
        assert_eq!(a.answered_by, AnsweredBy::MachineStart);
        let new =
            AmdCallback::from_form(&form(&[("CallSid", "CA1"), ("AnsweredBy", "robot")])).unwrap();
        assert_eq!(new.answered_by, AnsweredBy::Other("robot".into()));
        assert_eq!(
            AmdCallback::from_form(&form(&[("CallSid", "CA1")])),
            Err(FormError::Missing("AnsweredBy"))
        );
        assert_eq!(
            AmdCallback::from_form(&form(&[("AnsweredBy", "human")])),
            Err(FormError::Missing("CallSid"))
        );
    }

    #[test]
    fn recording_status_callback_names_each_missing_field() {
        let full = [
            ("CallSid", "CA1"),
            ("RecordingSid", "RE1"),
            (
                "RecordingUrl",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
            ),
            ("RecordingStatus", "completed"),
            ("RecordingChannels", "2"),
            ("RecordingStartTime", "Tue, 10 Jun 2025 18:05:12 +0000"),
        ];
        let r = RecordingStatusCallback::from_form(&form(&full)).unwrap();
        assert_eq!(r.recording_sid, "RE1");
        assert_eq!(r.recording_status, "completed");
        assert_eq!(r.recording_channels.as_deref(), Some("2"));
        assert_eq!(
            r.recording_start_time.as_deref(),
            Some("Tue, 10 Jun 2025 18:05:12 +0000")
        );
        for name in ["CallSid", "RecordingSid", "RecordingUrl", "RecordingStatus"] {
            let without: Vec<_> = full.iter().copied().filter(|(k, _)| *k != name).collect();
            assert_eq!(
                RecordingStatusCallback::from_form(&form(&without)),
                Err(FormError::Missing(name)),
                "{name}"
            );
        }
        let minimal: Vec<_> = full[..4].to_vec();
        let r = RecordingStatusCallback::from_form(&form(&minimal)).unwrap();
        assert_eq!((r.recording_channels, r.recording_start_time), (None, None));
    }
}
