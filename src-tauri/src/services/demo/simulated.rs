//! The demo call's two simulated parties and their scripts.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::{DemoCall, DEMO_FROM, DEMO_TO};
use crate::realtime::client::RealtimeClient;
use crate::realtime::session::FunctionTool;
use crate::services::private_line::LineSpec;
use crate::services::{ServiceError, Services};
use crate::sim::realtime_server::{AgentTurn, SimRealtimeConfig, SimRealtimeServer};
use crate::sim::twilio_caller::{CallerConfig, CallerStep, SimCall};
use crate::types::Secret;

/// What the caller "says" (the simulated transcription of each caller turn).
pub(super) const CALLER_LINES: &[&str] = &[
    "Hi, I'd like to check on my order, please.",
    "It's order 4 2 7 1. Will it arrive before Friday?",
    "Great, that's all. Thank you!",
];

/// What the simulated agent answers, in order. With a function tool in the session, the agent calls the
/// first one when given the order number (so the demo shows tools, their approval and their log).
fn agent_script(tool: Option<&FunctionTool>) -> Vec<AgentTurn> {
    let first = AgentTurn::with_tone(
        "Of course! This is a simulated call, so no real order is involved. What's the order number?",
        660.0,
        1600,
    );
    let last = AgentTurn::with_tone("You're welcome. Have a great day, goodbye!", 620.0, 1000);
    match tool {
        Some(tool) => vec![
            first,
            AgentTurn {
                call_tool: Some((tool.name.clone(), example_arguments(tool).to_string())),
                ..AgentTurn::with_tone("Let me check that for you.", 700.0, 1000)
            },
            AgentTurn::with_tone(
                "Thanks for waiting. Order 4271 is on its way and should arrive on Thursday.",
                700.0,
                1600,
            ),
            last,
        ],
        None => vec![
            first,
            AgentTurn::with_tone(
                "Thanks. Order 4271 is on its way and should arrive on Thursday.",
                700.0,
                1400,
            ),
            last,
        ],
    }
}

/// Arguments for `tool` made from its schema: "4271" for strings, 4271 for numbers, true for flags.
fn example_arguments(tool: &FunctionTool) -> serde_json::Value {
    let mut arguments = serde_json::Map::new();
    if let Some(properties) = tool
        .parameters
        .get("properties")
        .and_then(|p| p.as_object())
    {
        for (name, schema) in properties {
            let value = match schema.get("type").and_then(|t| t.as_str()) {
                Some("number") | Some("integer") => serde_json::json!(4271),
                Some("boolean") => serde_json::json!(true),
                _ => serde_json::json!("4271"),
            };
            arguments.insert(name.clone(), value);
        }
    }
    serde_json::Value::Object(arguments)
}

/// The caller's script: three turns, each after the agent's answer has played, then hang up. With a
/// tool, the second answer can wait for the operator's approval (up to a minute).
fn caller_script(tool: bool) -> Vec<CallerStep> {
    let wait = Duration::from_secs(15);
    let (second_ms, second_wait) = if tool {
        (2600, Duration::from_secs(60))
    } else {
        (1300, wait)
    };
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
            min_ms: second_ms,
            timeout: second_wait,
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

/// Starts the simulated model, opens a private line for it and places the call.
pub(super) async fn place(core: &Arc<Services>) -> Result<DemoCall, ServiceError> {
    let session = core.session.current();
    let tool = session.tools.first();
    let model = SimRealtimeServer::start(SimRealtimeConfig {
        script: agent_script(tool),
        filler: Some(AgentTurn::with_tone(
            "One moment, I'm still checking.",
            640.0,
            900,
        )),
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
    let line = core
        .lines
        .open(
            core,
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
    caller.max_duration = Duration::from_secs(if tool.is_some() { 150 } else { 90 });
    let call_sid = caller.call_sid.clone();
    let call = match SimCall::place(caller, caller_script(tool.is_some())).await {
        Ok(call) => call,
        Err(e) => {
            line.close().await;
            return Err(ServiceError::Invalid(format!(
                "the simulated call could not connect: {e}"
            )));
        }
    };
    info!(call_sid, "simulated call placed");
    let services = core.clone();
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
