//! What a service operation can fail with, and the one table that turns a failure into what both doors
//! show: a stable code (the UI and API clients match on it), the HTTP status `/api` answers with, and a
//! message safe to show (internal failures are logged here and shown without their details).

use axum::http::StatusCode;
use serde::Serialize;

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
    #[error("{0}")]
    Invalid(String),
    #[error("invalid phone number: {0}")]
    InvalidNumber(String),
    #[error("{0}")]
    UnknownFrom(String),
    /// Something the operation needs is not set up (Twilio credentials, a public URL).
    #[error("{0}")]
    NotConfigured(String),
    #[error(transparent)]
    Twilio(RestError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The recordings library (files, playback, listen-in, Twilio copies).
    #[error(transparent)]
    Recording(#[from] LibraryError),
}

/// The kinds of failure a door tells apart. Each has one code and one HTTP status ([`ErrorKind::code`],
/// [`ErrorKind::status`]); codes are part of the API and never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidValue,
    InvalidPhoneNumber,
    UnknownFromNumber,
    NotConfigured,
    /// Twilio refused the request: the user's input (a number, a permission) is the cause.
    TwilioRefused,
    TwilioUnavailable,
    /// Fetching or deleting Twilio's copy of a recording failed.
    TwilioRecording,
    RecordingUnreadable,
    StillRecording,
    FileError,
    NoAudioDevice,
    /// Nothing is playing, or nobody is listening in.
    Idle,
    NotLive,
    Internal,
}

impl ErrorKind {
    /// The table: (HTTP status, code).
    fn parts(self) -> (StatusCode, &'static str) {
        use ErrorKind::*;
        match self {
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Conflict => (StatusCode::CONFLICT, "conflict"),
            InvalidValue => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_value"),
            InvalidPhoneNumber => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_phone_number"),
            UnknownFromNumber => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_from_number"),
            NotConfigured => (StatusCode::SERVICE_UNAVAILABLE, "not_configured"),
            TwilioRefused => (StatusCode::BAD_GATEWAY, "twilio_refused"),
            TwilioUnavailable => (StatusCode::BAD_GATEWAY, "twilio_unavailable"),
            TwilioRecording => (StatusCode::BAD_GATEWAY, "twilio"),
            RecordingUnreadable => (StatusCode::CONFLICT, "recording_unreadable"),
            StillRecording => (StatusCode::CONFLICT, "still_recording"),
            FileError => (StatusCode::CONFLICT, "file_error"),
            NoAudioDevice => (StatusCode::SERVICE_UNAVAILABLE, "no_audio_device"),
            Idle => (StatusCode::CONFLICT, "idle"),
            NotLive => (StatusCode::CONFLICT, "not_live"),
            Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

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
            ServiceError::Invalid(_) => ErrorKind::InvalidValue,
            ServiceError::InvalidNumber(_) => ErrorKind::InvalidPhoneNumber,
            ServiceError::UnknownFrom(_) => ErrorKind::UnknownFromNumber,
            ServiceError::NotConfigured(_) => ErrorKind::NotConfigured,
            ServiceError::Twilio(RestError::Api(api)) if api.status < 500 => {
                ErrorKind::TwilioRefused
            }
            ServiceError::Twilio(_) => ErrorKind::TwilioUnavailable,
            ServiceError::Store(_) => ErrorKind::Internal,
            ServiceError::Recording(e) => library_kind(e),
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
        use ErrorKind::*;
        let all = [
            NotFound,
            Conflict,
            InvalidValue,
            InvalidPhoneNumber,
            UnknownFromNumber,
            NotConfigured,
            TwilioRefused,
            TwilioUnavailable,
            TwilioRecording,
            RecordingUnreadable,
            StillRecording,
            FileError,
            NoAudioDevice,
            Idle,
            NotLive,
            Internal,
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), all.len());
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
