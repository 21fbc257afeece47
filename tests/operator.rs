//! The operator in the loop, through the real core against the strict Realtime simulator: a whisper
//! reaches the model as a `system` item (and "say this now" is spoken, in a sequenced response); taking
//! over stops the agent at once and the caller hears only the operator (a synthetic microphone with a
//! 1 kHz "voice") while the model keeps listening without answering; handing back gives the model the
//! operator's turns and a note, and the agent answers; the recording has the operator on the agent
//! channel where the caller heard it. Errors are clear and never touch the call.

mod audio;
mod common;

use std::time::{Duration, Instant};

use common::{call_sid, eventually, speak, start, turn, wait_agent, Harness};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use verbio::audio::mulaw;
use verbio::events::{CallEvent, HandBackReason};
use verbio::sim::microphone::{Segment, ToneMicrophone};
use verbio::sim::realtime_server::{SessionLog, SimRealtimeConfig};
use verbio::sim::twilio_caller::{CallerProbe, CallerStep, SimCall};
use verbio::types::{Secret, Speaker};

const SECOND: Duration = Duration::from_secs(1);
const API_KEY: &str = "local-api-key-for-operator-tests-0001";
const AGENT_HZ: f64 = 880.0;
const OPERATOR_HZ: f64 = 1000.0;

async fn harness(model: SimRealtimeConfig) -> Harness {
    start(model, |c| c.api_key = Secret::new(API_KEY)).await
}

async fn api(h: &Harness, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    h.api_call(method, path, API_KEY, body).await
}

/// Power of `hz` in 8 kHz μ-law audio (the device tests' Goertzel).
fn power(mulaw_audio: &[u8], hz: f64) -> f64 {
    audio::power(&(mulaw::decode_all(mulaw_audio), 8000), hz)
}

/// Which voice a stretch of audio is: the agent's tone, the operator's, or quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Voice {
    Agent,
    Operator,
    Quiet,
}

fn voice(audio: &[u8]) -> Voice {
    if mulaw::rms(audio) < 500.0 {
        return Voice::Quiet;
    }
    if power(audio, AGENT_HZ) > power(audio, OPERATOR_HZ) {
        Voice::Agent
    } else {
        Voice::Operator
    }
}

/// The message items a session was given, as `(role, text)`.
fn messages(session: &SessionLog) -> Vec<(String, String)> {
    session
        .items_created
        .iter()
        .filter(|i| i["type"] == "message")
        .map(|i| {
            (
                i["role"].as_str().unwrap_or_default().to_string(),
                i["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// `create_response` of every turn detection the bridge sent, in order.
fn responding_updates(session: &SessionLog) -> Vec<bool> {
    session
        .client_events
        .iter()
        .filter(|e| e["type"] == "session.update")
        .filter_map(|e| e.pointer("/session/audio/input/turn_detection/create_response"))
        .filter_map(Value::as_bool)
        .collect()
}

fn assert_no_errors(h: &Harness) {
    for s in h.model.accepted_sessions() {
        assert!(
            s.errors.is_empty(),
            "session {} errors: {:?}",
            s.id,
            s.errors
        );
    }
}

/// What the caller received until the call ended: audio with arrival times, and when each `clear`
/// arrived.
type Received = (Vec<(Instant, Vec<u8>)>, Vec<Instant>);

fn received_audio(
    mut probes: mpsc::UnboundedReceiver<CallerProbe>,
) -> tokio::task::JoinHandle<Received> {
    tokio::spawn(async move {
        let (mut audio, mut clears) = (Vec::new(), Vec::new());
        while let Some(probe) = probes.recv().await {
            match probe {
                CallerProbe::MediaReceived { at, bytes, .. } => audio.push((at, bytes)),
                CallerProbe::ClearReceived { at, .. } => clears.push(at),
                _ => {}
            }
        }
        (audio, clears)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whisper_is_a_system_item_and_say_now_is_spoken_in_turn() {
    let mut h = harness(SimRealtimeConfig {
        script: vec![
            turn("Hello, how can I help?", 600),
            turn("We are open until six today.", 800),
        ],
        ..SimRealtimeConfig::default()
    })
    .await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![
            speak(600),
            // The answer, then the line the operator asked for.
            wait_agent(1300),
            CallerStep::Silence(300),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    call.wait_played(500, 10 * SECOND)
        .await
        .expect("the agent answered");
    // Empty, too long, unknown call: clear errors.
    let (status, body) = api(
        &h,
        "POST",
        &format!("/api/call/{sid}/whisper"),
        Some(json!({"text": "  "})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_value"))
    );
    let long = "x".repeat(2001);
    let (status, _) = api(
        &h,
        "POST",
        &format!("/api/call/{sid}/whisper"),
        Some(json!({"text": long})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, body) = api(
        &h,
        "POST",
        "/api/call/CA00000000000000000000000000000bad/whisper",
        Some(json!({"text": "hi"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = api(
        &h,
        "POST",
        &format!("/api/call/{sid}/whisper"),
        Some(json!({"text": "Tell them we close at six.", "say_now": true})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let report = call.finish().await;
    h.ended(&sid).await;
    assert!(
        report.heard_ms >= 1300,
        "the line was said: heard {} ms",
        report.heard_ms
    );
    let s = &h.model.accepted_sessions()[0];
    let system: Vec<_> = messages(s)
        .into_iter()
        .filter(|(r, _)| r == "system")
        .collect();
    assert_eq!(system.len(), 1, "{system:?}");
    assert!(
        system[0].1.ends_with("Tell them we close at six."),
        "{system:?}"
    );
    // The say-now response: the persona's instructions plus the line, after the first answer.
    assert_eq!(s.response_creates, 1);
    let instructions = s.response_requests[0]["instructions"]
        .as_str()
        .unwrap_or_default();
    let persona = h.running.services.session_config().instructions;
    assert!(
        instructions.starts_with(&persona) && instructions.ends_with("Tell them we close at six.")
    );
    assert_eq!(s.response_creates_refused, 0);
    assert_no_errors(&h);
    // Only the operator sees it: stored as a whisper line.
    let store = &h.running.services.store;
    store.flush().await.expect("flush");
    let lines = store.transcripts(&sid).await.expect("transcript");
    assert!(lines
        .iter()
        .any(|l| l.speaker == Speaker::Whisper && l.text == "Tell them we close at six."));
    h.validate_client_events("operator_whisper");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn take_over_silences_the_agent_and_hand_back_gives_the_call_back() {
    let mut h = harness(SimRealtimeConfig {
        script: vec![
            // Long enough that taking over cuts it.
            turn(
                "Let me tell you all about our opening hours and more.",
                3000,
            ),
            turn("Thanks for waiting, I am back with you.", 1500),
            turn("Anything else?", 600),
        ],
        caller_transcripts: vec!["I need a taxi".into(), "Is anyone there?".into()],
        ..SimRealtimeConfig::default()
    })
    .await;
    let sid = call_sid();
    let (probe_tx, probe_rx) = mpsc::unbounded_channel();
    let mut caller = h.caller(&sid);
    caller.probe = Some(probe_tx);
    let received = received_audio(probe_rx);
    let call = SimCall::place(
        caller,
        vec![
            speak(600),
            wait_agent(400),
            // The operator takes over here; the caller talks to them.
            CallerStep::Silence(1200),
            CallerStep::Speak {
                tone_hz: 440.0,
                ms: 700,
            },
            CallerStep::Silence(2500),
            // Handed back: the agent answers.
            wait_agent(600),
            CallerStep::Silence(500),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    call.wait_played(400, 10 * SECOND)
        .await
        .expect("the agent is talking");

    // No microphone: a clear error, and the call goes on with the agent.
    let (status, body) = api(
        &h,
        "POST",
        &format!("/api/call/{sid}/takeover"),
        Some(json!({"device": "No such microphone"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("no_input_device")),
        "{body}"
    );
    assert!(h.running.services.operator.state().is_none());

    // The operator speaks 1.2 s, pauses, speaks again (their turns), on a paced synthetic microphone.
    let (mic, frames) = ToneMicrophone::start(
        vec![
            Segment::quiet(200),
            Segment::tone(OPERATOR_HZ, 1200),
            Segment::quiet(900),
            Segment::tone(OPERATOR_HZ, 800),
        ],
        false,
    );
    let taken_at = Instant::now();
    let state = h
        .running
        .services
        .operator
        .take_over_with(&sid, Box::new(mic), frames)
        .await
        .expect("taken over");
    assert_eq!(state.call_sid, sid);
    // Holding it twice, "say this now" while held: refused, the hold goes on.
    let (status, body) = api(&h, "POST", &format!("/api/call/{sid}/takeover"), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_held"))
    );
    let (status, body) = api(
        &h,
        "POST",
        &format!("/api/call/{sid}/whisper"),
        Some(json!({"text": "say hi", "say_now": true})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("agent_silenced"))
    );
    let (status, body) = api(&h, "GET", "/api/operator", None).await;
    assert_eq!(
        (status, body["call_sid"].as_str()),
        (200, Some(sid.as_str()))
    );

    tokio::time::sleep(Duration::from_millis(4200)).await;
    let (status, body) = api(&h, "POST", &format!("/api/call/{sid}/handback"), None).await;
    assert_eq!(status, 202, "{body}");
    let handed_back = Instant::now();
    let (status, body) = api(&h, "POST", &format!("/api/call/{sid}/handback"), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_held"))
    );
    assert!(h.running.services.operator.state().is_none());

    let report = call.finish().await;
    h.ended(&sid).await;
    let (received, clears) = received.await.expect("probe collector");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(clears.len(), 1, "the agent was cut once, at the take-over");
    // Audio sent before the `clear` may still be on its way when the take-over returns: the caller's
    // side is judged from the `clear` on.
    let took_over = clears[0];
    assert!(took_over > taken_at);

    // What the caller received while the operator held the call: the operator, never the agent.
    let held: Vec<&Vec<u8>> = received
        .iter()
        .filter(|(at, _)| *at > took_over && *at < handed_back)
        .map(|(_, b)| b)
        .collect();
    assert!(
        held.iter().all(|b| voice(b) != Voice::Agent),
        "agent audio reached the caller while held"
    );
    let operator_frames = held.iter().filter(|b| voice(b) == Voice::Operator).count();
    assert!(
        operator_frames >= 90,
        "the operator's voice reached the caller: {operator_frames} frames"
    );
    // The first operator audio came soon after the take-over.
    let first = received
        .iter()
        .find(|(at, b)| *at > taken_at && voice(b) == Voice::Operator)
        .map(|(at, _)| at.duration_since(taken_at))
        .expect("operator audio");
    assert!(
        first < Duration::from_millis(400),
        "first operator audio after {first:?}"
    );
    // After the hand-back, the agent again.
    assert!(received
        .iter()
        .any(|(at, b)| *at > handed_back && voice(b) == Voice::Agent));

    // The model: only listened while held, heard the caller, got the operator's turns and a note.
    let s = &h.model.accepted_sessions()[0];
    assert_eq!(responding_updates(s), vec![true, false, true]);
    let msgs = messages(s);
    let operator_turns: Vec<_> = msgs
        .iter()
        .filter(|(r, t)| r == "assistant" && t.starts_with("(the operator spoke for"))
        .collect();
    assert_eq!(operator_turns.len(), 2, "{msgs:?}");
    let note = msgs
        .iter()
        .position(|(r, t)| r == "system" && t.contains("human operator took over"));
    let last_turn = msgs
        .iter()
        .rposition(|(r, t)| r == "assistant" && t.starts_with("(the operator"));
    assert!(
        note > last_turn,
        "the note comes after the operator's turns: {msgs:?}"
    );
    // Three responses: the cut first answer, none while held (the caller's turn was only committed),
    // the answer after the hand-back (asked for by the bridge).
    assert_eq!(s.responses.len(), 2, "{:?}", s.responses);
    assert_eq!(s.responses[0].status, "cancelled");
    assert_eq!(s.responses[1].status, "completed");
    assert_eq!(s.response_creates, 1);
    assert_eq!(s.response_creates_refused, 0);
    assert_no_errors(&h);

    // The library: the caller's words while held, the operator's turns, the span.
    let store = &h.running.services.store;
    store.flush().await.expect("flush");
    let lines = store.transcripts(&sid).await.expect("transcript");
    assert!(
        lines
            .iter()
            .any(|l| l.speaker == Speaker::Caller && l.text == "Is anyone there?"),
        "{lines:?}"
    );
    let operator_lines: Vec<_> = lines
        .iter()
        .filter(|l| l.speaker == Speaker::Operator)
        .collect();
    assert_eq!(operator_lines.len(), 2, "{lines:?}");
    let spans = store.operator_spans(&sid).await.expect("spans");
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.end_reason.as_deref(), Some("operator"));
    let (start_ms, end_ms) = (span.start_ms, span.end_ms.expect("closed"));
    assert!(
        end_ms - start_ms > 3500 && end_ms - start_ms < 6000,
        "{span:?}"
    );
    for line in &operator_lines {
        assert!(
            line.offset_ms >= start_ms && line.offset_ms < end_ms,
            "{line:?} in {span:?}"
        );
    }

    // The recording: the operator on the agent channel inside the span, the agent nowhere in it.
    let recording = loop {
        let recs = h
            .running
            .services
            .recordings
            .for_call(&sid)
            .await
            .expect("recordings");
        if let Some(r) = recs
            .into_iter()
            .find(|r| r.source == "local" && r.status != "recording")
        {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let detail = h
        .running
        .services
        .recordings
        .get(recording.id)
        .await
        .expect("detail");
    assert_eq!(
        detail.operator_spans, spans,
        "the recording says where the operator's voice is"
    );
    let path = h.data.path().join("recordings").join(&recording.file_name);
    let mut reader = hound::WavReader::open(&path).expect("a WAV");
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let agent: Vec<u8> = samples.chunks(2).map(|f| mulaw::encode(f[1])).collect();
    let window = |from_ms: u64, to_ms: u64| {
        &agent[(from_ms * 8) as usize..(to_ms * 8).min(agent.len() as u64) as usize]
    };
    let in_span = window(start_ms + 100, end_ms - 100);
    let operator_ms = in_span
        .chunks(160)
        .filter(|c| voice(c) == Voice::Operator)
        .count()
        * 20;
    let agent_ms = in_span
        .chunks(160)
        .filter(|c| voice(c) == Voice::Agent)
        .count()
        * 20;
    assert!(
        operator_ms >= 1800,
        "operator audio on the agent channel: {operator_ms} ms"
    );
    assert_eq!(agent_ms, 0, "agent audio in the operator's span");
    let after = window(end_ms, agent.len() as u64 / 8);
    assert!(
        after.chunks(160).any(|c| voice(c) == Voice::Agent),
        "the agent again after the hand-back"
    );
    h.validate_client_events("operator_take_over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_microphone_gives_the_call_back_and_a_second_take_over_works() {
    let mut h = harness(SimRealtimeConfig {
        script: vec![
            turn("Hello there.", 600),
            turn("I am back.", 1000),
            turn("Still here.", 1000),
        ],
        ..SimRealtimeConfig::default()
    })
    .await;
    let mut events = h.running.services.subscribe();
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![speak(600), CallerStep::Silence(30_000), CallerStep::HangUp],
    )
    .await
    .expect("call placed");
    call.wait_played(500, 10 * SECOND).await.expect("greeted");
    let desk = &h.running.services.operator;
    let (mic, frames) = ToneMicrophone::start(vec![Segment::tone(OPERATOR_HZ, 500)], true);
    desk.take_over_with(&sid, Box::new(mic), frames)
        .await
        .expect("taken over");
    // One microphone, one call.
    let (mic2, frames2) = ToneMicrophone::start(vec![], false);
    let other = desk
        .take_over_with(
            "CA00000000000000000000000000000002",
            Box::new(mic2),
            frames2,
        )
        .await;
    assert_eq!(other.expect_err("busy").body().code, "operator_busy");
    let held = desk.state().expect("held");
    assert_eq!(
        (held.device.as_str(), held.muted),
        ("Synthetic microphone", false)
    );
    assert!(desk.set_muted(true).expect("muted").muted);
    tokio::time::sleep(Duration::from_millis(600)).await;
    desk.hand_back(&sid).await.expect("handed back");
    let played = call.played_ms();
    call.wait_played(played + 500, 10 * SECOND)
        .await
        .expect("the agent answered the hand-back");

    // A second hold in the same call, whose microphone dies 400 ms in (its frames stop).
    let (mic, mut frames) = ToneMicrophone::start(vec![Segment::tone(OPERATOR_HZ, 400)], true);
    let (tx, rx) = mpsc::channel(10);
    let relay = tokio::spawn(async move {
        for _ in 0..20 {
            let Some(frame) = frames.recv().await else {
                return;
            };
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    });
    desk.take_over_with(&sid, Box::new(mic), rx)
        .await
        .expect("taken over again");
    relay.await.expect("relay");
    let reason = tokio::time::timeout(5 * SECOND, async {
        loop {
            match events.recv().await {
                Ok(CallEvent::OperatorHandedBack {
                    reason, call_sid, ..
                }) if call_sid == sid && reason != HandBackReason::Operator => return reason,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("handed back on its own");
    assert_eq!(reason, HandBackReason::MicrophoneLost);
    eventually(2 * SECOND, "the desk let the microphone go", || {
        desk.state().is_none()
    })
    .await;
    let played = call.played_ms();
    call.wait_played(played + 500, 10 * SECOND)
        .await
        .expect("the agent took the call back");
    call.hang_up_now();
    call.finish().await;
    h.ended(&sid).await;
    let s = &h.model.accepted_sessions()[0];
    assert_eq!(responding_updates(s), vec![true, false, true, false, true]);
    assert_no_errors(&h);
    let store = &h.running.services.store;
    store.flush().await.expect("flush");
    let spans = store.operator_spans(&sid).await.expect("spans");
    let reasons: Vec<_> = spans
        .iter()
        .map(|s| s.end_reason.clone().unwrap_or_default())
        .collect();
    assert_eq!(reasons, vec!["operator", "microphone_lost"]);
    let issues = store.issues(&sid).await.expect("issues");
    assert!(issues.iter().any(|i| i.code == "microphone_lost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_rolled_over_while_the_operator_holds_the_call_only_listens() {
    // The fresh session (a rollover at 3 s) is opened, and set up to answer, while the agent talks; it
    // takes over while the operator holds the call, so it must be told to only listen, and to answer
    // again at the hand-back.
    let mut h = start(
        SimRealtimeConfig {
            script: vec![
                turn("A long answer about everything.", 4000),
                turn("I am back.", 800),
            ],
            ..SimRealtimeConfig::default()
        },
        |c| {
            c.api_key = Secret::new(API_KEY);
            c.bridge.session_rollover_after = Duration::from_secs(3);
        },
    )
    .await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![speak(600), CallerStep::Silence(30_000), CallerStep::HangUp],
    )
    .await
    .expect("call placed");
    call.wait_played(1000, 10 * SECOND)
        .await
        .expect("the agent talks");
    eventually(10 * SECOND, "the fresh session is open", || {
        h.model.accepted_sessions().len() >= 2
    })
    .await;
    let (mic, frames) = ToneMicrophone::start(vec![Segment::tone(OPERATOR_HZ, 400)], false);
    h.running
        .services
        .operator
        .take_over_with(&sid, Box::new(mic), frames)
        .await
        .expect("taken over");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    h.running
        .services
        .operator
        .hand_back(&sid)
        .await
        .expect("handed back");
    let played = call.played_ms();
    call.wait_played(played + 600, 10 * SECOND)
        .await
        .expect("the agent answers on the new session");
    call.hang_up_now();
    call.finish().await;
    h.ended(&sid).await;
    let sessions = h.model.accepted_sessions();
    let fresh = &sessions[1];
    assert_eq!(
        responding_updates(fresh),
        vec![true, false, true],
        "set up to answer, then synced to the hold, then answering again"
    );
    assert_eq!(
        fresh.responses_started, 1,
        "only the answer after the hand-back"
    );
    assert_no_errors(&h);
}
