//! "Try a simulated call": the built-in simulators drive one whole call through the real core, so a new
//! user (no keys needed) sees a live call, its transcript and, where recording exists, a recording.
//!
//! A fake Realtime server plays the model and a fake Twilio caller rings a private line of the running
//! core ([`super::private_line`]): a second router on 127.0.0.1 with the same registry, event bus, call
//! library and session settings as the real one, but its own throwaway Twilio token and the simulator as
//! its model. Everything the
//! user sees (events, transcripts in SQLite, hang-up from the window) is the real core's; only the two
//! outside parties are simulated, so no key is ever sent anywhere.

//! Built without the `sim` feature (a lean `verbio serve`), the demo call is refused as not available.

#[cfg(feature = "sim")]
mod simulated;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;

use super::{ServiceError, Services};

/// The simulated caller's number (a Twilio magic test number) and the number it calls.
pub const DEMO_FROM: &str = "+15005550006";
pub const DEMO_TO: &str = "+15005550001";

/// A demo call that has been placed; it runs on in the background.
#[derive(Debug, Clone, Serialize)]
pub struct DemoCall {
    pub call_sid: String,
    pub from: String,
    pub to: String,
}

/// At most one demo call at a time.
#[derive(Debug, Default)]
pub struct DemoGate(AtomicBool);

impl Services {
    /// Places a simulated call through the real core and returns once it is connected; the call then
    /// plays out in the background (about 15 s) and ends by itself, or when the user hangs up.
    pub async fn start_demo_call(self: &Arc<Self>) -> Result<DemoCall, ServiceError> {
        if self.demo.0.swap(true, Ordering::SeqCst) {
            return Err(ServiceError::Invalid(
                "a simulated call is already running".into(),
            ));
        }
        #[cfg(feature = "sim")]
        let placed = simulated::place(self).await;
        #[cfg(not(feature = "sim"))]
        let placed = Err(ServiceError::NotConfigured(
            "this build of Verbio has no simulator (built without the `sim` feature)".into(),
        ));
        match placed {
            Ok(call) => Ok(call),
            Err(e) => {
                self.demo.0.store(false, Ordering::SeqCst);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::simulated::CALLER_LINES;
    use super::*;
    use crate::config::Config;
    use crate::events::CallEvent;
    use std::time::Duration;

    #[tokio::test]
    async fn a_demo_call_runs_through_the_real_core_without_keys() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::on_free_ports(dir.path());
        assert!(config.openai_api_key.is_empty() && config.twilio_auth_token.is_empty());
        let running = crate::app::start(config).await.unwrap();
        let services = running.services.clone();
        let mut events = services.subscribe();
        let call = services.start_demo_call().await.unwrap();
        assert!(
            services.start_demo_call().await.is_err(),
            "one demo call at a time"
        );
        let mut started = false;
        let mut agent_lines = Vec::new();
        let mut caller_lines = Vec::new();
        let ended = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match events.recv().await.unwrap() {
                    CallEvent::CallStarted { call_sid, from, .. } => {
                        assert_eq!(call_sid, call.call_sid);
                        assert_eq!(from.as_deref(), Some(DEMO_FROM));
                        started = true;
                    }
                    CallEvent::Transcript { speaker, text, .. } => match speaker {
                        crate::types::Speaker::Agent => agent_lines.push(text),
                        crate::types::Speaker::Caller => caller_lines.push(text),
                        _ => {}
                    },
                    CallEvent::CallEnded { failed, .. } => break failed,
                    _ => {}
                }
            }
        })
        .await
        .expect("the demo call ends by itself");
        assert!(started);
        assert!(!ended, "the demo call ends normally");
        assert_eq!(agent_lines.len(), 3, "{agent_lines:?}");
        assert!(agent_lines[0].contains("simulated call"));
        assert_eq!(
            caller_lines.first().map(String::as_str),
            Some(CALLER_LINES[0])
        );
        // The call is in the real library with its transcript.
        let turns = services.transcriptions(&call.call_sid).await.unwrap();
        assert!(turns.len() >= 4, "{turns:?}");
        // The gate opens again once the call is over.
        tokio::time::timeout(Duration::from_secs(10), async {
            while services.demo.0.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the demo gate reopens");
        running.shutdown().await;
    }
}
