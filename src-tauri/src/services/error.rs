//! What a service operation can fail with, and the one table that turns a failure into what both doors
//! show: a stable code (the UI and API clients match on it), the HTTP status `/api` answers with, and a
//! message safe to show (internal failures are logged here and shown without their details).

use axum::http::StatusCode;
use serde::Serialize;

use super::operator::OperatorError;
use crate::audio::microphone::MicrophoneError;
use crate::calls::registry::OperatorRefusal;
use crate::recording::listen_in::ListenError;
use crate::recording::playback::PlaybackError;
use crate::recording::LibraryError;
use crate::telephony::twilio::rest::RestError;

/// Why a service operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no call {0}")]
    UnknownCall(String),
    #[error("call {0} has already ended")]
    AlreadyEnded(String),
    /// The call exists but has no post-call summary.
    #[error("call {0} has no summary")]
    NoSummary(String),
    #[error("{0}")]
    Invalid(String),
    #[error("invalid phone number: {0}")]
    InvalidNumber(String),
    #[error("{0}")]
    UnknownFrom(String),
    /// Something the operation needs is not set up (Twilio credentials, a public URL).
    #[error("{0}")]
    NotConfigured(String),
    /// As many calls are live (or about to stream) as the cap allows (`VERBIO_MAX_CALLS`).
    #[error("all {0} lines are busy: wait for a call to end, or raise VERBIO_MAX_CALLS")]
    LinesBusy(u32),
    #[error(transparent)]
    Twilio(RestError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The recordings library (files, playback, listen-in, Twilio copies).
    #[error(transparent)]
    Recording(#[from] LibraryError),
    /// No tool call of that id waits for approval (answered already, timed out, or never asked).
    #[error("{0}")]
    NotPending(String),
    /// The operator's desk (whisper, take over, hand back).
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error(transparent)]
    Prices(crate::costs::prices::InvalidPrices),
    #[error(transparent)]
    Budget(crate::costs::budget::InvalidBudget),
    /// The day's money budget is spent: no new call until it frees up (or is raised).
    #[error("today's budget (${0:.2}) is spent: raise it in Settings, or wait until earlier calls leave the 24-hour window")]
    DayBudgetSpent(f64),
}

/// Declares [`ErrorKind`] from the table below: each kind once, with its HTTP status and code.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $kind:ident => ($status:ident, $code:literal),)*) => {
        /// The kinds of failure a door tells apart. Each has one code and one HTTP status
        /// ([`ErrorKind::code`], [`ErrorKind::status`]); codes are part of the API and never change meaning.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorKind {
            $($(#[$doc])* $kind,)*
        }

        impl ErrorKind {
            /// Every kind, in the table's order.
            pub const ALL: &[ErrorKind] = &[$(ErrorKind::$kind,)*];

            fn parts(self) -> (StatusCode, &'static str) {
                match self {
                    $(ErrorKind::$kind => (StatusCode::$status, $code),)*
                }
            }
        }
    };
}

error_kinds! {
    NotFound => (NOT_FOUND, "not_found"),
    Conflict => (CONFLICT, "conflict"),
    InvalidValue => (UNPROCESSABLE_ENTITY, "invalid_value"),
    InvalidPhoneNumber => (UNPROCESSABLE_ENTITY, "invalid_phone_number"),
    UnknownFromNumber => (UNPROCESSABLE_ENTITY, "unknown_from_number"),
    NotConfigured => (SERVICE_UNAVAILABLE, "not_configured"),
    /// The concurrent-call cap is reached.
    LinesBusy => (CONFLICT, "lines_busy"),
    /// Twilio refused the request: the user's input (a number, a permission) is the cause.
    TwilioRefused => (BAD_GATEWAY, "twilio_refused"),
    TwilioUnavailable => (BAD_GATEWAY, "twilio_unavailable"),
    /// Fetching or deleting Twilio's copy of a recording failed.
    TwilioRecording => (BAD_GATEWAY, "twilio"),
    RecordingUnreadable => (CONFLICT, "recording_unreadable"),
    StillRecording => (CONFLICT, "still_recording"),
    FileError => (CONFLICT, "file_error"),
    NoAudioDevice => (SERVICE_UNAVAILABLE, "no_audio_device"),
    /// Nothing is playing, or nobody is listening in.
    Idle => (CONFLICT, "idle"),
    NotLive => (CONFLICT, "not_live"),
    /// No microphone to take a call over with (the call goes on with the agent).
    NoInputDevice => (SERVICE_UNAVAILABLE, "no_input_device"),
    InputDeviceUnusable => (SERVICE_UNAVAILABLE, "input_device_unusable"),
    /// The operator already holds another call (one microphone, one call).
    OperatorBusy => (CONFLICT, "operator_busy"),
    AlreadyHeld => (CONFLICT, "already_held"),
    NotHeld => (CONFLICT, "not_held"),
    /// "Say this now" while the operator holds the call: the agent is silent then.
    AgentSilenced => (CONFLICT, "agent_silenced"),
    /// The call is saying its last words or being transferred.
    CallEnding => (CONFLICT, "call_ending"),
    /// No tool call of that id waits for approval.
    NotPending => (CONFLICT, "not_pending"),
    InvalidPrices => (UNPROCESSABLE_ENTITY, "invalid_prices"),
    InvalidBudget => (UNPROCESSABLE_ENTITY, "invalid_budget"),
    /// The day's money budget is spent.
    OverBudget => (CONFLICT, "over_budget"),
    /// The call's task did not answer in time.
    CallUnresponsive => (SERVICE_UNAVAILABLE, "call_unresponsive"),
    Internal => (INTERNAL_SERVER_ERROR, "internal"),
}

impl ErrorKind {
    /// The stable code both doors send.
    pub fn code(self) -> &'static str {
        self.parts().1
    }

    /// The status `/api` answers with.
    pub fn status(self) -> StatusCode {
        self.parts().0
    }
}

/// An error as a door shows it: `{"code", "message"}` (the desktop's command error; `/api` wraps it as
/// `{"error": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
}

impl ServiceError {
    /// Which kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::UnknownCall(_) => ErrorKind::NotFound,
            ServiceError::AlreadyEnded(_) => ErrorKind::Conflict,
            ServiceError::NoSummary(_) => ErrorKind::NotFound,
            ServiceError::Invalid(_) => ErrorKind::InvalidValue,
            ServiceError::InvalidNumber(_) => ErrorKind::InvalidPhoneNumber,
            ServiceError::LinesBusy(_) => ErrorKind::LinesBusy,
            ServiceError::UnknownFrom(_) => ErrorKind::UnknownFromNumber,
            ServiceError::NotConfigured(_) => ErrorKind::NotConfigured,
            ServiceError::Twilio(RestError::Api(api)) if api.status < 500 => {
                ErrorKind::TwilioRefused
            }
            ServiceError::Twilio(_) => ErrorKind::TwilioUnavailable,
            ServiceError::Store(_) => ErrorKind::Internal,
            ServiceError::Recording(e) => library_kind(e),
            ServiceError::Operator(e) => operator_kind(e),
            ServiceError::NotPending(_) => ErrorKind::NotPending,
            ServiceError::Prices(_) => ErrorKind::InvalidPrices,
            ServiceError::Budget(_) => ErrorKind::InvalidBudget,
            ServiceError::DayBudgetSpent(_) => ErrorKind::OverBudget,
        }
    }

    /// What a door shows. An internal failure is logged in full and shown without its details (paths,
    /// SQL), which mean nothing to the user and are in the log.
    pub fn body(&self) -> ErrorBody {
        let kind = self.kind();
        let message = if kind == ErrorKind::Internal {
            tracing::error!("library error: {self}");
            "the call library failed".to_string()
        } else {
            self.to_string()
        };
        ErrorBody {
            code: kind.code(),
            message,
        }
    }
}

fn operator_kind(e: &OperatorError) -> ErrorKind {
    match e {
        OperatorError::Busy(_) => ErrorKind::OperatorBusy,
        OperatorError::Refused(OperatorRefusal::AlreadyHeld) => ErrorKind::AlreadyHeld,
        OperatorError::Refused(OperatorRefusal::NotHeld) => ErrorKind::NotHeld,
        OperatorError::Refused(OperatorRefusal::AgentSilenced) => ErrorKind::AgentSilenced,
        OperatorError::Refused(OperatorRefusal::Ending) => ErrorKind::CallEnding,
        OperatorError::Microphone(MicrophoneError::NoInputDevice(_)) => ErrorKind::NoInputDevice,
        OperatorError::Microphone(MicrophoneError::Unusable(_)) => ErrorKind::InputDeviceUnusable,
        OperatorError::NoAnswer => ErrorKind::CallUnresponsive,
    }
}

fn library_kind(e: &LibraryError) -> ErrorKind {
    match e {
        LibraryError::NotFound(_) | LibraryError::UnknownCall(_) => ErrorKind::NotFound,
        LibraryError::Invalid(_) => ErrorKind::InvalidValue,
        LibraryError::File(_) | LibraryError::Playback(PlaybackError::File(_)) => {
            ErrorKind::RecordingUnreadable
        }
        LibraryError::Playback(PlaybackError::Speaker(_))
        | LibraryError::Listen(ListenError::Speaker(_)) => ErrorKind::NoAudioDevice,
        LibraryError::Playback(PlaybackError::NotPlaying)
        | LibraryError::Listen(ListenError::NotListening) => ErrorKind::Idle,
        LibraryError::Listen(ListenError::NotLive(_)) => ErrorKind::NotLive,
        LibraryError::Cloud(_) => ErrorKind::TwilioRecording,
        LibraryError::StillRecording(_) => ErrorKind::StillRecording,
        LibraryError::Export(_) => ErrorKind::FileError,
        LibraryError::Store(_) => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_distinct() {
        let codes: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn service_and_library_errors_share_the_table() {
        let not_found = ServiceError::UnknownCall("CA1".into());
        let library = ServiceError::from(LibraryError::UnknownCall("CA1".into()));
        assert_eq!(not_found.body(), library.body());
        assert_eq!(
            not_found.body(),
            ErrorBody {
                code: "not_found",
                message: "no call CA1".into()
            }
        );
        assert_eq!(not_found.kind().status(), StatusCode::NOT_FOUND);
        let idle = ServiceError::from(LibraryError::Playback(PlaybackError::NotPlaying));
        assert_eq!(
            (idle.kind().status(), idle.kind().code()),
            (StatusCode::CONFLICT, "idle")
        );
    }

    #[test]
    fn internal_failures_hide_their_details() {
        let e = ServiceError::from(LibraryError::Store(crate::store::StoreError::Closed));
        let body = e.body();
        assert_eq!(body.code, "internal");
        assert_eq!(body.message, "the call library failed");
        assert_eq!(e.kind().status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
