//! The session new calls start with: its one owner. Either door edits it at run time; a call keeps the
//! config it started with, and an outbound call may carry its own (see [`crate::calls::plan`]).

use std::sync::{Arc, RwLock};

use crate::realtime::session::{SessionConfig, SessionConfigError};

/// The live session settings. Cheap to read (an `Arc` clone under a short read lock).
#[derive(Debug)]
pub struct SessionSettings {
    current: RwLock<Arc<SessionConfig>>,
}

impl SessionSettings {
    /// Starts with `initial`, which must be valid.
    pub fn new(initial: SessionConfig) -> Result<Self, SessionConfigError> {
        initial.validate()?;
        Ok(SessionSettings {
            current: RwLock::new(Arc::new(initial)),
        })
    }

    /// The config for a call starting now.
    pub fn current(&self) -> Arc<SessionConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the config for calls that start from now on; an invalid one changes nothing.
    pub fn replace(&self, session: SessionConfig) -> Result<(), SessionConfigError> {
        session.validate()?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(session);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_session_is_refused_and_the_current_one_stays() {
        let settings = SessionSettings::new(SessionConfig::default()).unwrap();
        let bad = SessionConfig {
            model: String::new(),
            ..SessionConfig::default()
        };
        assert!(settings.replace(bad).is_err());
        assert_eq!(*settings.current(), SessionConfig::default());

        let good = SessionConfig {
            instructions: "Be brief.".into(),
            ..SessionConfig::default()
        };
        settings.replace(good.clone()).unwrap();
        assert_eq!(*settings.current(), good);
    }

    #[test]
    fn an_invalid_start_is_refused() {
        let bad = SessionConfig {
            model: String::new(),
            ..SessionConfig::default()
        };
        assert!(SessionSettings::new(bad).is_err());
    }
}
