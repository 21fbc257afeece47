//! The call bridge end to end: a real core (axum server, bridge task, SQLite library) between the
//! simulator's fake Twilio caller and fake Realtime GA server, over loopback sockets.

mod common;

use std::time::Duration;

use common::{call_sid, eventually, speak, start, turn, wait_agent};
use verbio::events::CallEvent;
use verbio::realtime::session::Greeting;
use verbio::sim::realtime_server::{AgentTurn, SessionLog, SimRealtimeConfig};
use verbio::sim::twilio_caller::{CallerStep, SimCall};
use verbio::sim::SimError;
use verbio::types::Speaker;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_call_end_to_end() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Hello, how can I help?", 1000)],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![
            CallerStep::Silence(300),
            speak(700),
            wait_agent(1000),
            CallerStep::Silence(200),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    let report = call.finish().await;

    // The agent's answer reached the caller, byte for byte.
    assert!(
        report.heard.len() >= 8000,
        "heard {} bytes",
        report.heard.len()
    );
    let expected = verbio::audio::mulaw::tone(880.0, 1000, 0.5);
    assert_eq!(
        &report.heard[..8000],
        &expected[..8000],
        "agent audio passes through untouched"
    );

    // One GA session, configured for μ-law both ways, with no unprompted greeting.
    let sessions = h.model.accepted_sessions();
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(s.model.as_deref(), Some("gpt-realtime-2.1"));
    assert!(s.authorization_present);
    let update = s
        .client_events
        .iter()
        .find(|e| e["type"] == "session.update")
        .expect("session.update sent");
    assert_eq!(update["session"]["type"], "realtime");
    assert_eq!(
        update["session"]["audio"]["input"]["format"]["type"],
        "audio/pcmu"
    );
    assert_eq!(
        update["session"]["audio"]["output"]["format"]["type"],
        "audio/pcmu"
    );
    assert_eq!(s.response_creates, 0, "the agent waits for the caller");
    assert!(
        s.appended_audio_bytes >= 8000,
        "caller audio reached the model"
    );

    // Hang-up closes the model session and ends the call.
    let ended = h.ended(&sid).await;
    assert!(
        matches!(ended, CallEvent::CallEnded { failed: false, .. }),
        "{ended:?}"
    );
    eventually(5 * SECOND, "model socket closed", || {
        h.model.accepted_sessions()[0].closed
    })
    .await;
    assert!(h.running.services.active_calls().is_empty());

    // Transcripts of both sides are in the library.
    let store = &h.running.services.store;
    store.flush().await.expect("flush");
    let turns = store.transcripts(&sid).await.expect("transcripts");
    assert!(
        turns
            .iter()
            .any(|t| t.speaker == Speaker::Caller && !t.text.is_empty()),
        "caller turn stored: {turns:?}"
    );
    assert!(
        turns
            .iter()
            .any(|t| t.speaker == Speaker::Agent && t.text == "Hello, how can I help?"),
        "agent turn stored: {turns:?}"
    );
    let record = store.call(&sid).await.expect("query").expect("call stored");
    assert_eq!(record.status, "completed");
    h.validate_client_events("inbound_call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_clears_twilio_and_truncates_to_what_was_heard() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("A long answer that the caller will interrupt.", 4000)],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![
            speak(600),
            CallerStep::SpeakWhenAgentHasPlayed {
                after_ms: 1200,
                tone_hz: 300.0,
                ms: 600,
                timeout: 10 * SECOND,
            },
            CallerStep::Silence(1500),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    let report = call.finish().await;
    h.ended(&sid).await;

    assert!(!report.clears.is_empty(), "the bridge sent clear");
    assert_eq!(
        h.model.accepted_sessions()[0].appended_audio_bytes,
        report.media_frames_sent * 160,
        "every caller frame reached the model, barge-in included"
    );
    let played = report.played_ms_at_clear[0];
    assert!(
        (1150..2000).contains(&played),
        "caller heard {played} ms before interrupting"
    );
    let truncates = h.model.accepted_sessions()[0].truncates.clone();
    assert_eq!(truncates.len(), 1, "one truncate: {truncates:?}");
    let (_, audio_end_ms) = &truncates[0];
    let error = (*audio_end_ms as i64 - played as i64).abs();
    assert!(
        error <= 20,
        "truncate at {audio_end_ms} ms, caller heard {played} ms (error {error} ms)"
    );
    // Nothing of the interrupted answer played after the clear (late deltas were dropped): the next
    // audio the caller hears is the answer to their interruption, after they stopped speaking.
    let first = &report.heard_segments[0];
    assert!(
        first.end_ms <= report.clears[0] + 1,
        "first answer stopped at the clear"
    );
    if let Some(next) = report.heard_segments.get(1) {
        assert!(
            next.start_ms >= report.clears[0] + 500,
            "audio resumed {} ms after the clear",
            next.start_ms - report.clears[0]
        );
    }
    // The agent's interrupted turn is kept, marked as interrupted.
    let store = &h.running.services.store;
    store.flush().await.expect("flush");
    let turns = store.transcripts(&sid).await.expect("transcripts");
    assert!(
        turns
            .iter()
            .any(|t| t.speaker == Speaker::Agent && t.interrupted && !t.text.is_empty()),
        "{turns:?}"
    );
    h.validate_client_events("barge_in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speak_first_sends_exactly_one_response_create() {
    let mut h = start(SimRealtimeConfig::default(), |c| {
        c.session.greeting = Greeting::SpeakFirst {
            opening_line: "Thanks for calling Verbio.".into(),
        };
    })
    .await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![
            wait_agent(600),
            CallerStep::Silence(300),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    let report = call.finish().await;
    h.ended(&sid).await;
    assert!(
        report.heard.len() >= 600 * 8,
        "the agent greeted without being spoken to"
    );
    let s = &h.model.accepted_sessions()[0];
    assert_eq!(s.response_creates, 1);
    let create = s
        .client_events
        .iter()
        .find(|e| e["type"] == "response.create")
        .expect("response.create");
    let instructions = create["response"]["instructions"]
        .as_str()
        .unwrap_or_default();
    assert!(
        instructions.contains("Thanks for calling Verbio."),
        "{instructions}"
    );
    h.validate_client_events("speak_first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_greeting_until_the_caller_speaks() {
    let mut h = start(SimRealtimeConfig::default(), |_| {}).await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![CallerStep::Silence(1500), CallerStep::HangUp],
    )
    .await
    .expect("call placed");
    let report = call.finish().await;
    h.ended(&sid).await;
    assert!(report.heard.is_empty(), "the agent said nothing");
    assert_eq!(h.model.accepted_sessions()[0].response_creates, 0);
}

/// A call whose model session is rolled over after `rollover_after`: both answers are heard, a fresh
/// session takes over and gets the caller's later turn. Returns the sessions the model accepted.
async fn rolled_over_call(
    rollover_after: Duration,
    session_cap: Duration,
    steps: Vec<CallerStep>,
    label: &str,
) -> Vec<SessionLog> {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("First answer.", 500), turn("Second answer.", 500)],
            session_cap: Some(session_cap),
            ..SimRealtimeConfig::default()
        },
        |c| c.bridge.session_rollover_after = rollover_after,
    )
    .await;
    let sid = call_sid();
    let call = SimCall::place(h.caller(&sid), steps)
        .await
        .expect("call placed");
    let report = call.finish().await;
    let ended = h.ended(&sid).await;
    assert!(
        matches!(ended, CallEvent::CallEnded { failed: false, .. }),
        "{ended:?}"
    );
    assert!(
        report.heard.len() >= 2 * 500 * 8,
        "both answers heard: {} bytes",
        report.heard.len()
    );
    let sessions = h.model.accepted_sessions();
    assert!(sessions.len() >= 2, "a fresh session took over");
    assert!(
        sessions[1].appended_audio_bytes > 0,
        "the caller's second turn went to the new session"
    );
    h.validate_client_events(label);
    sessions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_rollover_keeps_the_call_and_the_conversation() {
    let steps = vec![
        speak(600),
        wait_agent(500),
        CallerStep::Silence(2500),
        speak(600),
        wait_agent(500),
        CallerStep::HangUp,
    ];
    let sessions = rolled_over_call(
        Duration::from_millis(2500),
        Duration::from_secs(6),
        steps,
        "rollover",
    )
    .await;
    assert!(sessions[0].closed, "the old session was closed");
    let seeded: Vec<String> = sessions[1]
        .items_created
        .iter()
        .map(|i| i.to_string())
        .collect();
    assert!(
        seeded
            .iter()
            .any(|i| i.contains("First answer.") && i.contains("assistant")),
        "new session got the agent's earlier turn: {seeded:?}"
    );
    assert!(
        seeded.iter().any(|i| i.contains("\"user\"")),
        "new session got the caller's earlier turn: {seeded:?}"
    );
}

/// The fresh session is ready while the caller is talking, so it waits in the standby slot (read all
/// the while) and takes over later, at a quiet moment: the call loop must then read it as the current
/// session (`calls::bridge::sources`: its socket had registered as the standby's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollover_held_back_by_speech_takes_over_later_and_is_heard() {
    let steps = vec![
        speak(2500),
        wait_agent(500),
        CallerStep::Silence(1500),
        speak(600),
        wait_agent(500),
        CallerStep::HangUp,
    ];
    rolled_over_call(
        Duration::from_millis(1000),
        Duration::from_secs(8),
        steps,
        "rollover held back",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_model_socket_is_reconnected_without_dropping_the_caller() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![
                turn("Before the outage.", 500),
                turn("After the outage.", 500),
            ],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![
            speak(600),
            wait_agent(500),
            CallerStep::Silence(1000),
            speak(600),
            wait_agent(500),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    eventually(10 * SECOND, "first answer sent", || {
        h.model
            .sessions()
            .first()
            .is_some_and(|s| s.responses_completed >= 1)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    h.model.drop_all();
    let report = call.finish().await;
    let ended = h.ended(&sid).await;
    assert!(
        matches!(ended, CallEvent::CallEnded { failed: false, .. }),
        "{ended:?}"
    );
    assert!(report.heard.len() >= 2 * 500 * 8, "both answers heard");
    let sessions = h.model.accepted_sessions();
    assert_eq!(sessions.len(), 2, "one reconnect");
    let seeded: Vec<String> = sessions[1]
        .items_created
        .iter()
        .map(|i| i.to_string())
        .collect();
    assert!(
        seeded.iter().any(|i| i.contains("Before the outage.")),
        "{seeded:?}"
    );
    let store = &h.running.services.store;
    store.flush().await.expect("flush");
    let issues = store.issues(&sid).await.expect("issues");
    assert!(
        issues.iter().any(|i| i.code == "model_disconnected"),
        "{issues:?}"
    );
    h.validate_client_events("reconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_model_ends_the_stream_cleanly_and_marks_the_call_failed() {
    let mut h = start(SimRealtimeConfig::default(), |c| {
        c.bridge.reconnect_attempts = 2
    })
    .await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![CallerStep::Silence(600), CallerStep::Silence(8000)],
    )
    .await
    .expect("call placed");
    eventually(5 * SECOND, "model session open", || {
        !h.model.accepted_sessions().is_empty()
    })
    .await;
    h.model.set_reject_connections(true);
    h.model.drop_all();
    let ended = h.ended(&sid).await;
    assert!(
        matches!(ended, CallEvent::CallEnded { failed: true, .. }),
        "{ended:?}"
    );
    let report = call.finish().await;
    assert!(report.server_closed, "the bridge closed the stream");
    let store = &h.running.services.store;
    store.flush().await.expect("flush");
    let record = store.call(&sid).await.expect("query").expect("stored");
    assert_eq!(record.status, "failed");
    assert!(record.failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_without_a_valid_token_is_closed_before_any_model_session() {
    let h = start(SimRealtimeConfig::default(), |_| {}).await;
    for token in ["", "not-a-token"] {
        let mut caller = h.caller(&call_sid());
        caller.token_override = Some(token.into());
        let call = SimCall::place(caller, vec![CallerStep::Silence(1000)])
            .await
            .expect("webhook answered");
        let report = call.finish().await;
        assert_eq!(report.close_code, Some(1008), "token {token:?}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        h.model.accepted_sessions().is_empty(),
        "no model session was opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_or_wrongly_signed_webhooks_are_refused() {
    let h = start(SimRealtimeConfig::default(), |_| {}).await;
    let mut caller = h.caller(&call_sid());
    caller.sign = false;
    match SimCall::place(caller, vec![]).await {
        Err(SimError::Webhook { status, .. }) => assert_eq!(status, 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let mut caller = h.caller(&call_sid());
    caller.auth_token = "some-other-token".into();
    match SimCall::place(caller, vec![]).await {
        Err(SimError::Webhook { status, .. }) => assert_eq!(status, 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    assert!(h.model.accepted_sessions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_are_ignored_and_the_call_goes_on() {
    let mut h = start(SimRealtimeConfig::default(), |_| {}).await;
    let sid = call_sid();
    let raw = |s: &str| CallerStep::Raw(s.to_string());
    let call = SimCall::place(
        h.caller(&sid),
        vec![
            raw("{not json"),
            raw(r#"{"event":"party","streamSid":"MZ1"}"#),
            raw(r#"{"event":"media","streamSid":"MZ1","media":{"track":"inbound","chunk":"1","timestamp":"1","payload":"!!not base64!!"}}"#),
            raw(r#"{"event":"start","streamSid":"MZ2","start":{"callSid":"CA-other","customParameters":{"token":"x"}}}"#),
            raw(r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"never-sent"}}"#),
            raw(&format!(r#"{{"event":"media","x":"{}"}}"#, "A".repeat(100_000))),
            speak(600),
            wait_agent(500),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    let report = call.finish().await;
    let ended = h.ended(&sid).await;
    assert!(
        matches!(ended, CallEvent::CallEnded { failed: false, .. }),
        "{ended:?}"
    );
    assert!(
        report.heard.len() >= 500 * 8,
        "the call went on after bad frames"
    );
    let s = &h.model.accepted_sessions()[0];
    assert!(
        s.client_events
            .iter()
            .all(|e| !e.to_string().contains("not base64")),
        "bad audio never reached the model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_reaches_the_model_as_a_user_message() {
    let mut h = start(SimRealtimeConfig::default(), |_| {}).await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![
            CallerStep::Silence(200),
            CallerStep::Dtmf('5'),
            CallerStep::Silence(400),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    call.finish().await;
    h.ended(&sid).await;
    let items: Vec<String> = h.model.accepted_sessions()[0]
        .items_created
        .iter()
        .map(|i| i.to_string())
        .collect();
    assert!(
        items
            .iter()
            .any(|i| i.contains("[caller pressed 5]") && i.contains("\"user\"")),
        "{items:?}"
    );
    h.validate_client_events("dtmf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_call_tool_hangs_up_after_the_goodbye_plays() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![AgentTurn {
                call_tool: Some(("end_call".into(), r#"{"reason":"caller is done"}"#.into())),
                ..turn("Goodbye!", 800)
            }],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let call = SimCall::place(h.caller(&sid), vec![speak(600), CallerStep::Silence(8000)])
        .await
        .expect("call placed");
    let report = call.finish().await;
    let ended = h.ended(&sid).await;
    match ended {
        CallEvent::CallEnded { reason, failed, .. } => {
            assert_eq!(reason, "agent ended the call");
            assert!(!failed);
        }
        other => panic!("{other:?}"),
    }
    assert!(report.server_closed);
    assert!(
        report.heard.len() >= 780 * 8,
        "the whole goodbye played first: {} bytes",
        report.heard.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_are_isolated() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Hello there.", 600)],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let good: Vec<String> = (0..3).map(|_| call_sid()).collect();
    let bad = call_sid();
    let mut calls = Vec::new();
    for sid in &good {
        calls.push(
            SimCall::place(
                h.caller(sid),
                vec![speak(600), wait_agent(600), CallerStep::HangUp],
            )
            .await
            .expect("call placed"),
        );
    }
    // A fourth call misbehaves and vanishes without a stop.
    let rude = SimCall::place(
        h.caller(&bad),
        vec![CallerStep::Raw("{garbage".into()), CallerStep::Silence(200)],
    )
    .await
    .expect("call placed");
    eventually(5 * SECOND, "four live calls", || {
        h.running.services.active_calls().len() == 4
    })
    .await;
    rude.hang_up_now();
    for call in calls {
        let report = call.finish().await;
        assert!(
            report.heard.len() >= 600 * 8,
            "every good call got its answer"
        );
    }
    for sid in &good {
        let ended = h.ended(sid).await;
        assert!(matches!(ended, CallEvent::CallEnded { failed: false, .. }));
    }
    let store = &h.running.services.store;
    store.flush().await.expect("flush");
    for sid in &good {
        let turns = store.transcripts(sid).await.expect("transcripts");
        assert!(
            turns.iter().any(|t| t.speaker == Speaker::Agent),
            "{sid}: {turns:?}"
        );
    }
}

/// A hand-driven Twilio socket: media before `start` is ignored, then the call proceeds normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_before_start_is_ignored() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    use verbio::telephony::twilio::signature::compute;

    let h = start(SimRealtimeConfig::default(), |_| {}).await;
    let sid = call_sid();
    let params = [
        ("AccountSid", common::ACCOUNT_SID),
        ("CallSid", sid.as_str()),
        ("From", "+14155550100"),
    ];
    let twiml = reqwest::Client::new()
        .post(format!("{}/twiml", h.base))
        .header(
            "X-Twilio-Signature",
            compute(common::AUTH_TOKEN, &format!("{}/twiml", h.base), &params),
        )
        .form(&params)
        .send()
        .await
        .expect("webhook")
        .text()
        .await
        .expect("twiml");
    let token = twiml
        .split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("token parameter")
        .to_string();
    let ws_url = format!("{}/media-stream", h.base.replace("http://", "ws://"));
    let mut request = ws_url.as_str().into_client_request().expect("request");
    let signature = compute(common::AUTH_TOKEN, &ws_url, &[] as &[(&str, &str)]);
    request.headers_mut().insert(
        "X-Twilio-Signature",
        signature.parse().expect("header value"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("socket opens");
    let media = r#"{"event":"media","sequenceNumber":"1","streamSid":"MZ1","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"//////////8="}}"#;
    ws.send(Message::text(media)).await.expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        h.model.accepted_sessions().is_empty(),
        "no session before start"
    );
    let start_msg = serde_json::json!({
        "event": "start", "sequenceNumber": "2", "streamSid": "MZ1",
        "start": {"accountSid": common::ACCOUNT_SID, "streamSid": "MZ1", "callSid": sid,
                  "tracks": ["inbound"], "customParameters": {"token": token},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}
    });
    ws.send(Message::text(start_msg.to_string()))
        .await
        .expect("send start");
    eventually(5 * SECOND, "model session opened after start", || {
        h.model.accepted_sessions().len() == 1
    })
    .await;
    ws.send(Message::text(media)).await.expect("send media");
    eventually(5 * SECOND, "audio after start reaches the model", || {
        h.model.accepted_sessions()[0].appended_audio_bytes == 8
    })
    .await;
    let _ = ws.close(None).await;
    while let Some(Ok(_)) = ws.next().await {}
}
