//! "Try a simulated call": the built-in simulators drive one whole call through the real core, so a new
//! user (no keys needed) sees a live call, its transcript and, where recording exists, a recording.
//!
//! A fake Realtime server plays the model and a fake Twilio caller rings a private door of the running
//! core: a second router on 127.0.0.1 with the same registry, event bus, call library and session config
//! as the real one, but its own throwaway Twilio token and the simulator as its model. Everything the
//! user sees (events, transcripts in SQLite, hang-up from the window) is the real core's; only the two
//! outside parties are simulated, so no key is ever sent anywhere.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tracing::{info, warn};

use super::private_line::LineSpec;
use super::{ServiceError, Services};
use crate::realtime::client::RealtimeClient;
use crate::sim::realtime_server::{AgentTurn, SimRealtimeConfig, SimRealtimeServer};
use crate::sim::twilio_caller::{CallerConfig, CallerStep, SimCall};
use crate::types::Secret;

/// The simulated caller's number (a Twilio magic test number) and the number it calls.
pub const DEMO_FROM: &str = "+15005550006";
pub const DEMO_TO: &str = "+15005550001";

/// What the caller "says" (the simulated transcription of each caller turn).
const CALLER_LINES: &[&str] = &[
    "Hi, I'd like to check on my order, please.",
    "It's order 4 2 7 1. Will it arrive before Friday?",
    "Great, that's all. Thank you!",
];

/// What the simulated agent answers, in order.
fn agent_script() -> Vec<AgentTurn> {
    vec![
        AgentTurn::with_tone(
            "Of course! This is a simulated call, so no real order is involved. What's the order number?",
            660.0,
            1600,
        ),
        AgentTurn::with_tone(
            "Thanks. Order 4271 is on its way and should arrive on Thursday.",
            700.0,
            1400,
        ),
        AgentTurn::with_tone(
            "You're welcome. Have a great day, goodbye!",
            620.0,
            1000,
        ),
    ]
}

/// The caller's script: three turns, each after the agent's answer has played, then hang up.
fn caller_script() -> Vec<CallerStep> {
    let wait = Duration::from_secs(15);
    vec![
        CallerStep::Silence(400),
        CallerStep::Speak {
            tone_hz: 300.0,
            ms: 900,
        },
        CallerStep::WaitForAgentAudio {
            min_ms: 1500,
            timeout: wait,
        },
        CallerStep::Silence(600),
        CallerStep::Speak {
            tone_hz: 320.0,
            ms: 900,
        },
        CallerStep::WaitForAgentAudio {
            min_ms: 1300,
            timeout: wait,
        },
        CallerStep::Silence(600),
        CallerStep::Speak {
            tone_hz: 310.0,
            ms: 700,
        },
        CallerStep::WaitForAgentAudio {
            min_ms: 900,
            timeout: wait,
        },
        CallerStep::Silence(800),
        CallerStep::HangUp,
    ]
}

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
        match self.place_demo_call().await {
            Ok(call) => Ok(call),
            Err(e) => {
                self.demo.0.store(false, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    async fn place_demo_call(self: &Arc<Self>) -> Result<DemoCall, ServiceError> {
        let model = SimRealtimeServer::start(SimRealtimeConfig {
            script: agent_script(),
            caller_transcripts: CALLER_LINES.iter().map(|s| s.to_string()).collect(),
            // Real-time streaming, as a live model would sound on the line.
            speed_factor: 1.5,
            record_events: false,
            ..SimRealtimeConfig::default()
        })
        .await
        .map_err(|e| ServiceError::Invalid(format!("cannot start the simulated model: {e}")))?;

        // A private line: its own token (never used anywhere else) and the simulator as the model.
        let token = format!("demo-{:032x}", rand::random::<u128>());
        let line = self
            .lines
            .open(
                self,
                LineSpec {
                    twilio_token: Secret::new(token.clone()),
                    connector: Arc::new(RealtimeClient::new(model.url(), Secret::new("simulated"))),
                },
            )
            .map_err(|e| ServiceError::Invalid(format!("cannot open the demo line: {e}")))?;
        let local_addr = line.local_addr();

        let mut caller = CallerConfig::new(format!("http://{local_addr}"), token);
        caller.from = DEMO_FROM.into();
        caller.to = DEMO_TO.into();
        caller.record_audio = false;
        caller.record_messages = false;
        caller.max_duration = Duration::from_secs(90);
        let call_sid = caller.call_sid.clone();
        let call = match SimCall::place(caller, caller_script()).await {
            Ok(call) => call,
            Err(e) => {
                line.close().await;
                return Err(ServiceError::Invalid(format!(
                    "the simulated call could not connect: {e}"
                )));
            }
        };
        info!(call_sid, "simulated call placed");
        let services = self.clone();
        tokio::spawn(async move {
            let report = call.finish().await;
            if !report.errors.is_empty() {
                warn!(errors = ?report.errors, "the simulated caller saw problems");
            }
            // Let the bridge finish its end-of-call work before the door closes.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), line.close()).await;
            drop(model);
            services.demo.0.store(false, Ordering::SeqCst);
            info!("simulated call finished");
        });
        Ok(DemoCall {
            call_sid,
            from: DEMO_FROM.into(),
            to: DEMO_TO.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::events::CallEvent;

    #[tokio::test]
    async fn a_demo_call_runs_through_the_real_core_without_keys() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            port: 0,
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
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
