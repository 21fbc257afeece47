//! Bringing a model session up: one `session.update`, confirmed before the call relies on it.
//!
//! A refused `session.update` leaves the service on its defaults — 24 kHz PCM16 audio both ways — so
//! a bridge that does not wait for `session.updated` would send μ-law the model hears as PCM16 and play
//! PCM16 to the caller as μ-law: noise both ways. So a session counts as ready only once
//! `session.updated` shows `audio/pcmu` in and out. A refusal naming an optional field (reasoning,
//! noise reduction, …) is retried once without it; any other refusal ends the call through the apology
//! path. Pure state: the bridge sends the updates and watches the deadline.

use std::time::Duration;

use tokio::time::Instant;

use crate::realtime::client::RealtimeError;
use crate::realtime::events::ApiError;
use crate::realtime::session::OptionalField;

/// How long a session may take to confirm its configuration.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The μ-law format both directions must end up in.
pub const PCMU: &str = "audio/pcmu";

/// Where a session's configuration stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setup {
    /// `session.update` sent as `event_id`; no answer yet.
    Pending {
        event_id: String,
        dropped: Vec<OptionalField>,
        deadline: Instant,
    },
    /// The service runs the session as configured.
    Confirmed,
}

/// What an answer to the update means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupStep {
    /// Not about this session's update.
    NotOurs,
    Confirmed,
    /// Send the update again without these optional fields.
    Retry(Vec<OptionalField>),
    /// The session cannot carry the call.
    Failed(String),
}

impl Setup {
    pub fn new(event_id: String, dropped: Vec<OptionalField>, now: Instant) -> Self {
        Setup::Pending {
            event_id,
            dropped,
            deadline: now + SETUP_TIMEOUT,
        }
    }

    pub fn confirmed(&self) -> bool {
        matches!(self, Setup::Confirmed)
    }

    pub fn deadline(&self) -> Option<Instant> {
        match self {
            Setup::Pending { deadline, .. } => Some(*deadline),
            Setup::Confirmed => None,
        }
    }

    /// `session.updated` arrived with these audio formats.
    pub fn on_updated(&mut self, input: Option<&str>, output: Option<&str>) -> SetupStep {
        if input != Some(PCMU) || output != Some(PCMU) {
            // Also once confirmed: a later update (none is sent today) must not change the audio.
            return SetupStep::Failed(format!(
                "the session runs {} in / {} out, not {PCMU}",
                input.unwrap_or("an unknown format"),
                output.unwrap_or("an unknown format")
            ));
        }
        if self.confirmed() {
            // A duplicate.
            return SetupStep::NotOurs;
        }
        *self = Setup::Confirmed;
        SetupStep::Confirmed
    }

    /// An `error` arrived: if it refused this session's update, retry without the optional field it
    /// names (once per field), or give up.
    pub fn on_error(&mut self, error: &ApiError) -> SetupStep {
        let Setup::Pending {
            event_id, dropped, ..
        } = self
        else {
            return SetupStep::NotOurs;
        };
        if error.event_id.as_deref() != Some(event_id.as_str()) {
            return SetupStep::NotOurs;
        }
        let reason = format!(
            "{} ({})",
            error.message.as_deref().unwrap_or("no message"),
            error
                .param
                .as_deref()
                .or(error.code.as_deref())
                .unwrap_or("no param")
        );
        match error.param.as_deref().and_then(OptionalField::from_param) {
            Some(field) if !dropped.contains(&field) => {
                let mut fields = dropped.clone();
                fields.push(field);
                SetupStep::Retry(fields)
            }
            _ => SetupStep::Failed(format!(
                "the model refused the session configuration: {reason}"
            )),
        }
    }
}

/// Connection failures no retry can fix: a bad key, an unknown model, a bad URL.
pub fn is_permanent(error: &RealtimeError) -> bool {
    match error {
        RealtimeError::Rejected(status) => matches!(status, 400 | 401 | 403 | 404),
        RealtimeError::MissingKey | RealtimeError::BadUrl(_) => true,
        RealtimeError::Connect(_) | RealtimeError::Timeout => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(event_id: &str, param: Option<&str>) -> ApiError {
        ApiError {
            code: Some("invalid_value".into()),
            message: Some("refused".into()),
            param: param.map(str::to_string),
            event_id: Some(event_id.into()),
            ..ApiError::default()
        }
    }

    #[test]
    fn confirmed_only_with_pcmu_both_ways() {
        let mut s = Setup::new("e1".into(), vec![], Instant::now());
        assert!(matches!(
            s.on_updated(Some("audio/pcm"), Some(PCMU)),
            SetupStep::Failed(_)
        ));
        let mut s = Setup::new("e1".into(), vec![], Instant::now());
        assert_eq!(s.on_updated(Some(PCMU), Some(PCMU)), SetupStep::Confirmed);
        assert!(s.confirmed());
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn a_refused_optional_field_is_retried_once_without_it() {
        let mut s = Setup::new("e1".into(), vec![], Instant::now());
        assert_eq!(
            s.on_error(&err("e0", Some("session.reasoning"))),
            SetupStep::NotOurs
        );
        assert_eq!(
            s.on_error(&err("e1", Some("session.reasoning.effort"))),
            SetupStep::Retry(vec![OptionalField::Reasoning])
        );
        let mut s = Setup::new("e2".into(), vec![OptionalField::Reasoning], Instant::now());
        assert!(matches!(
            s.on_error(&err("e2", Some("session.reasoning"))),
            SetupStep::Failed(_)
        ));
        let mut s = Setup::new("e3".into(), vec![], Instant::now());
        assert!(matches!(
            s.on_error(&err("e3", Some("session.audio.input.format"))),
            SetupStep::Failed(_)
        ));
    }

    #[test]
    fn bad_keys_and_unknown_models_are_not_retried() {
        assert!(is_permanent(&RealtimeError::Rejected(401)));
        assert!(is_permanent(&RealtimeError::Rejected(404)));
        assert!(!is_permanent(&RealtimeError::Rejected(503)));
        assert!(!is_permanent(&RealtimeError::Timeout));
    }
}
