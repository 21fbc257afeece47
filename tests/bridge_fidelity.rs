//! The behaviours a lenient simulator hides, each driven through the real bridge (a real core over
//! loopback sockets) against the strict Realtime simulator: tool follow-ups, refused session updates,
//! tool calls from cancelled responses, the greeting's persona, gaps in Twilio's media, seeding in
//! heard order, truncating every queued item, reading the standby session, failed responses, items of
//! an earlier session, and handshake refusals that no retry can fix.

mod common;

use std::time::Duration;

use common::{call_sid, eventually, speak, start, turn, wait_agent, Harness};
use serde_json::Value;
use verbio::events::CallEvent;
use verbio::realtime::session::Greeting;
use verbio::sim::realtime_server::{AgentTurn, SessionLog, SimRealtimeConfig, TurnOutcome};
use verbio::sim::twilio_caller::{CallerReport, CallerStep, SimCall};

const SECOND: Duration = Duration::from_secs(1);

fn interrupt_after(after_ms: u32) -> CallerStep {
    CallerStep::SpeakWhenAgentHasPlayed {
        after_ms,
        tone_hz: 300.0,
        ms: 600,
        timeout: 10 * SECOND,
    }
}

fn tool_turn(text: &str, tone_ms: u32, tool: &str, arguments: &str) -> AgentTurn {
    AgentTurn {
        call_tool: Some((tool.into(), arguments.into())),
        ..turn(text, tone_ms)
    }
}

async fn run_call(h: &Harness, sid: &str, script: Vec<CallerStep>) -> CallerReport {
    let call = SimCall::place(h.caller(sid), script)
        .await
        .expect("call placed");
    call.finish().await
}

/// `(role, text)` of the message items a session was given, in order.
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

async fn ended_reason(h: &mut Harness, sid: &str) -> (String, bool) {
    match h.ended(sid).await {
        CallEvent::CallEnded { reason, failed, .. } => (reason, failed),
        other => panic!("{other:?}"),
    }
}

async fn issues(h: &Harness, sid: &str) -> Vec<(String, String)> {
    let store = &h.running.services.store;
    store.flush().await.expect("flush");
    store
        .issues(sid)
        .await
        .expect("issues")
        .into_iter()
        .map(|i| (i.code, i.message))
        .collect()
}

/// Every client event carries an `event_id`, and the strict server refused none of them.
fn assert_clean(h: &Harness) {
    for s in h.model.accepted_sessions() {
        for e in &s.client_events {
            assert!(
                e["event_id"].as_str().is_some_and(|id| !id.is_empty()),
                "client event without event_id: {e}"
            );
        }
        assert!(
            s.errors.is_empty(),
            "session {} errors: {:?}",
            s.id,
            s.errors
        );
    }
}

// 1. A tool call is answered and the agent goes on talking: the follow-up `response.create` waits for
//    the response that made the call to finish (arguments-done always comes before its response.done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_call_is_followed_by_a_sequenced_response() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![
                tool_turn(
                    "Let me look that up.",
                    500,
                    "lookup_order",
                    r#"{"order":"42"}"#,
                ),
                turn("That order is not something I can check.", 800),
            ],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let report = run_call(
        &h,
        &sid,
        vec![
            speak(600),
            wait_agent(1300),
            CallerStep::Silence(300),
            CallerStep::HangUp,
        ],
    )
    .await;
    h.ended(&sid).await;
    assert!(
        report.heard_ms >= 1300,
        "the agent answered after its tool call: heard {} ms",
        report.heard_ms
    );
    let s = &h.model.accepted_sessions()[0];
    let output = s
        .items_created
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .expect("tool output sent");
    assert!(output["output"]
        .as_str()
        .is_some_and(|o| o.contains("nothing behind it")));
    assert_eq!(s.response_creates, 1, "one follow-up response");
    assert_eq!(s.response_creates_refused, 0, "never while a response ran");
    assert_eq!(s.responses.len(), 2);
    assert_eq!(s.responses[1].status, "completed");
    assert_clean(&h);
    h.validate_client_events("fidelity_tool_follow_up");
}

// 2a. A `session.update` refused for an optional field is retried without it, and the call works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_optional_field_is_retried_without_it() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Hello.", 600)],
            reject_session_params: vec!["session.audio.input.noise_reduction".into()],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let report = run_call(
        &h,
        &sid,
        vec![speak(600), wait_agent(600), CallerStep::HangUp],
    )
    .await;
    h.ended(&sid).await;
    let expected = verbio::audio::mulaw::tone(880.0, 600, 0.5);
    assert!(report.heard.len() >= 4800, "heard {}", report.heard.len());
    assert_eq!(&report.heard[..4800], &expected[..4800], "μ-law, not noise");
    let s = &h.model.accepted_sessions()[0];
    assert_eq!(s.session_updates_rejected, 1);
    let updates: Vec<&Value> = s
        .client_events
        .iter()
        .filter(|e| e["type"] == "session.update")
        .collect();
    assert_eq!(updates.len(), 2);
    assert!(updates[1]["session"]["audio"]["input"]
        .get("noise_reduction")
        .is_none());
    // The refusal is tied to the update by its event id, and its param is kept with the call.
    assert_eq!(
        s.errors[0].event_id.as_ref(),
        updates[0]["event_id"].as_str().map(str::to_string).as_ref()
    );
    let issues = issues(&h, &sid).await;
    assert!(
        issues
            .iter()
            .any(|(code, m)| code == "session_update_retried"
                && m.contains("session.audio.input.noise_reduction")),
        "{issues:?}"
    );
}

// 2b. A refused required field: the caller hears the apology path, never PCM16 played as μ-law.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_audio_format_ends_the_call_instead_of_playing_noise() {
    let mut h = start(
        SimRealtimeConfig {
            reject_session_params: vec!["session.audio.output.format".into()],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let report = run_call(
        &h,
        &sid,
        vec![speak(600), CallerStep::Silence(3000), CallerStep::HangUp],
    )
    .await;
    let (reason, failed) = ended_reason(&mut h, &sid).await;
    assert!(failed, "{reason}");
    assert!(reason.contains("model unavailable"), "{reason}");
    assert!(report.heard.is_empty(), "nothing was played to the caller");
    let s = &h.model.accepted_sessions()[0];
    assert_eq!(
        s.appended_audio_bytes, 0,
        "no μ-law sent to a PCM16 session"
    );
    let issues = issues(&h, &sid).await;
    assert!(
        issues
            .iter()
            .any(|(code, m)| code == "session_update_refused"
                && m.contains("session.audio.output.format")),
        "{issues:?}"
    );
}

// 2c. `reasoning` only for models that take it: the dated snapshot of the original gpt-realtime does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reasoning_for_a_dated_non_reasoning_snapshot() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Hello.", 500)],
            ..SimRealtimeConfig::default()
        },
        |c| c.session.model = "gpt-realtime-2025-08-28".into(),
    )
    .await;
    let sid = call_sid();
    let report = run_call(
        &h,
        &sid,
        vec![speak(600), wait_agent(500), CallerStep::HangUp],
    )
    .await;
    h.ended(&sid).await;
    assert!(report.heard_ms >= 500);
    let s = &h.model.accepted_sessions()[0];
    let update = s
        .client_events
        .iter()
        .find(|e| e["type"] == "session.update")
        .expect("update");
    assert!(update["session"].get("reasoning").is_none(), "{update}");
    assert_eq!(s.session_updates_rejected, 0);
    assert_clean(&h);
}

// 3a. A function call in a cancelled response (the caller spoke while the model was still making the
//     call) is never carried out: the call goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_call_from_a_cancelled_response_is_ignored() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![
                tool_turn("Goodbye then.", 300, "end_call", r#"{"reason":"done"}"#),
                turn("Of course, what else?", 600),
            ],
            // Slow arguments, so the caller's next words land while the call is being made.
            function_call_delta_ms: 1500,
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let report = run_call(
        &h,
        &sid,
        vec![
            speak(600),
            wait_agent(300),
            CallerStep::Silence(100),
            speak(600),
            wait_agent(600),
            CallerStep::Silence(300),
            CallerStep::HangUp,
        ],
    )
    .await;
    let (reason, failed) = ended_reason(&mut h, &sid).await;
    assert_eq!(reason, "caller hung up");
    assert!(!failed);
    assert!(report.heard_ms >= 900, "heard {}", report.heard_ms);
    let s = &h.model.accepted_sessions()[0];
    let first = &s.responses[0];
    assert_eq!(first.status, "cancelled");
    assert_eq!(first.function_calls.len(), 1);
    assert_eq!(first.function_calls[0].status, "incomplete");
    assert_clean(&h);
}

// 3b. "Wait, one more thing": speaking over the goodbye undoes the agent's end_call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_barge_in_during_the_goodbye_undoes_the_end() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![
                tool_turn("Thanks for calling, goodbye.", 3000, "end_call", "{}"),
                turn("Sure, what is it?", 600),
            ],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let report = run_call(
        &h,
        &sid,
        vec![
            speak(600),
            interrupt_after(2000),
            wait_agent(600),
            CallerStep::Silence(300),
            CallerStep::HangUp,
        ],
    )
    .await;
    let (reason, _) = ended_reason(&mut h, &sid).await;
    assert_eq!(
        reason, "caller hung up",
        "the call went on after the barge-in"
    );
    assert!(!report.clears.is_empty());
    let s = &h.model.accepted_sessions()[0];
    assert_eq!(s.responses[0].function_calls[0].status, "completed");
    assert!(
        s.responses.len() >= 2,
        "the agent answered the caller's last words"
    );
    assert_clean(&h);
}

// 5. The speak-first greeting keeps the persona: per-response instructions replace the session's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_greeting_keeps_the_persona() {
    let mut h = start(SimRealtimeConfig::default(), |c| {
        c.session.instructions = "You are Ada, the booking assistant of Verbio Dental.".into();
        c.session.greeting = Greeting::SpeakFirst {
            opening_line: "Thanks for calling Verbio Dental.".into(),
        };
    })
    .await;
    let sid = call_sid();
    let report = run_call(&h, &sid, vec![wait_agent(600), CallerStep::HangUp]).await;
    h.ended(&sid).await;
    assert!(report.heard_ms >= 600);
    let s = &h.model.accepted_sessions()[0];
    assert_eq!(s.response_creates, 1);
    let instructions = s.response_requests[0]["instructions"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(instructions.contains("You are Ada"), "{instructions}");
    assert!(
        instructions.contains("Thanks for calling Verbio Dental."),
        "{instructions}"
    );
    // The greeting was asked for only once the session was confirmed: the update comes first.
    let kinds: Vec<&str> = s
        .client_events
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(kinds[0], "session.update");
    assert_clean(&h);
}

// 6. Gaps in Twilio's media are filled with silence: the model's VAD ends the turn inside the gap, and
//    the audio it received covers the whole stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_in_twilio_media_are_padded_with_silence() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Yes?", 400)],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let report = run_call(
        &h,
        &sid,
        vec![
            CallerStep::Silence(200),
            speak(600),
            CallerStep::Gap(1500),
            speak(600),
            CallerStep::Silence(1000),
            CallerStep::HangUp,
        ],
    )
    .await;
    h.ended(&sid).await;
    let s = &h.model.accepted_sessions()[0];
    let sent = report.media_frames_sent * 160;
    assert!(
        s.appended_audio_bytes >= sent + 1500 * 8 - 320,
        "model got {} bytes for {} bytes of frames and a 1.5 s gap",
        s.appended_audio_bytes,
        sent
    );
    assert_eq!(
        s.speech_started, 2,
        "two turns: the padded gap ended the first one"
    );
    assert_clean(&h);
}

// 7a. A replacement session is seeded in heard order (a caller transcript that arrived after the answer
//     still comes first) and with only the words of an interrupted turn that were heard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnected_session_is_seeded_in_heard_order_with_heard_words() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![
                turn("one two three four five six seven eight nine ten", 4000),
                turn("Second answer.", 500),
            ],
            caller_transcripts: vec!["First question.".into(), "Wait, stop.".into()],
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
            interrupt_after(1000),
            wait_agent(500),
            CallerStep::Silence(4000),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    // Once both caller transcripts were sent (after the answers), the model drops.
    h.model
        .wait_for(
            |s| s.first().is_some_and(|s| s.transcripts_sent.len() == 2),
            10 * SECOND,
        )
        .await
        .expect("both transcripts sent");
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.model.drop_all();
    h.model
        .wait_for(
            |s| {
                s.iter().filter(|s| s.rejected.is_none()).count() >= 2
                    && s[1].items_created.len() >= 4
            },
            10 * SECOND,
        )
        .await
        .expect("a second session was seeded");
    call.finish().await;
    h.ended(&sid).await;
    let seeded = messages(&h.model.accepted_sessions()[1]);
    let roles: Vec<&str> = seeded.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        roles,
        ["user", "assistant", "user", "assistant"],
        "{seeded:?}"
    );
    assert_eq!(seeded[0].1, "First question.");
    let heard = &seeded[1].1;
    let all = "one two three four five six seven eight nine ten";
    assert!(
        all.starts_with(heard.as_str()) && !heard.is_empty() && heard.len() < all.len() / 2,
        "only the heard words: {heard:?}"
    );
    assert_eq!(seeded[2].1, "Wait, stop.");
    assert_eq!(seeded[3].1, "Second answer.");
    assert_clean(&h);
}

// 7b. With transcription off, caller turns are still seeded (as placeholders).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_transcription_caller_turns_are_seeded_as_placeholders() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Hello there.", 500)],
            ..SimRealtimeConfig::default()
        },
        |c| c.session.transcription = None,
    )
    .await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![
            speak(600),
            wait_agent(500),
            CallerStep::Silence(3000),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    call.wait_played(500, 10 * SECOND)
        .await
        .expect("answer played");
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.model.drop_all();
    h.model
        .wait_for(
            |s| s.len() >= 2 && s[1].items_created.len() >= 2,
            10 * SECOND,
        )
        .await
        .expect("a second session was seeded");
    call.finish().await;
    h.ended(&sid).await;
    let seeded = messages(&h.model.accepted_sessions()[1]);
    assert_eq!(seeded.len(), 2, "{seeded:?}");
    assert_eq!(seeded[0].0, "user");
    assert!(seeded[0].1.contains("not transcribed"), "{seeded:?}");
    assert_eq!(seeded[1], ("assistant".into(), "Hello there.".into()));
    assert_clean(&h);
}

// 8. A barge-in truncates every item still queued at Twilio, each at what was heard of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_barge_in_truncates_every_queued_item() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![
                tool_turn("Let me check.", 2000, "lookup_order", "{}"),
                turn("I could not check it.", 2000),
            ],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let report = run_call(
        &h,
        &sid,
        vec![
            speak(600),
            interrupt_after(1500),
            CallerStep::Silence(1500),
            CallerStep::HangUp,
        ],
    )
    .await;
    h.ended(&sid).await;
    let s = &h.model.accepted_sessions()[0];
    assert!(
        s.truncates.len() >= 2,
        "both the playing item and the one queued behind it: {:?}",
        s.truncates
    );
    let played = report.played_ms_at_clear[0];
    let first = s.truncates[0].1 as i64;
    assert!(
        (first - played as i64).abs() <= 20,
        "first item cut at {first} ms, caller heard {played} ms"
    );
    assert_eq!(s.truncates[1].1, 0, "nothing of the second item was heard");
    assert_clean(&h);
}

// 9. The standby session is read while it waits: its pings are answered and its close is noticed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_session_is_read_while_it_waits() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Answer.", 400)],
            ping_interval: Duration::from_millis(100),
            ..SimRealtimeConfig::default()
        },
        |c| c.bridge.session_rollover_after = Duration::from_millis(800),
    )
    .await;
    let sid = call_sid();
    // The caller keeps talking, so there is no quiet moment to switch sessions.
    let call = SimCall::place(
        h.caller(&sid),
        vec![speak(4000), CallerStep::Silence(2000), CallerStep::HangUp],
    )
    .await
    .expect("call placed");
    let sessions = h
        .model
        .wait_for(|s| s.len() >= 2 && s[1].pongs_received >= 3, 5 * SECOND)
        .await
        .expect("the standby answered pings while waiting");
    let standby = sessions[1].id;
    assert!(h.model.close_session(standby, 1000, "going away"));
    eventually(3 * SECOND, "standby loss noticed", || {
        h.model.sessions()[1].closed
    })
    .await;
    call.finish().await;
    let (reason, failed) = ended_reason(&mut h, &sid).await;
    assert_eq!(reason, "caller hung up");
    assert!(!failed);
    let issues = issues(&h, &sid).await;
    assert!(
        issues.iter().any(|(code, _)| code == "standby_lost"),
        "{issues:?}"
    );
    assert_eq!(
        h.model.sessions()[1].appended_audio_bytes,
        0,
        "the closed standby never took over"
    );
}

// 10. A failed response is kept with its reason; every response's usage is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_responses_are_kept_with_their_reason_and_usage_is_stored() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Second try works.", 500)],
            response_outcomes: vec![TurnOutcome::Failed {
                code: "insufficient_quota".into(),
            }],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let report = run_call(
        &h,
        &sid,
        vec![
            speak(600),
            CallerStep::Silence(800),
            speak(600),
            wait_agent(500),
            CallerStep::HangUp,
        ],
    )
    .await;
    h.ended(&sid).await;
    assert!(report.heard_ms >= 500);
    let issues = issues(&h, &sid).await;
    assert!(
        issues
            .iter()
            .any(|(code, m)| code == "response_failed" && m.contains("insufficient_quota")),
        "{issues:?}"
    );
    let responses = h
        .running
        .services
        .store
        .responses(&sid)
        .await
        .expect("responses");
    assert_eq!(responses.len(), 2, "{responses:?}");
    assert_eq!(responses[0].status, "failed");
    assert_eq!(responses[0].reason.as_deref(), Some("insufficient_quota"));
    assert_eq!(responses[1].status, "completed");
    let usage = responses[1].usage.expect("usage stored");
    assert!(usage.output_audio > 0 && usage.input_audio > 0, "{usage:?}");
}

// 12a. After a reconnect, an item of the old session still playing is not truncated in the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_of_an_earlier_session_are_not_truncated_after_a_reconnect() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("A long answer.", 4000), turn("Yes?", 400)],
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
            interrupt_after(2500),
            wait_agent(400),
            CallerStep::Silence(300),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    // The whole answer is at Twilio (streamed at twice real time) and half of it played: the model drops.
    call.wait_played(2000, 10 * SECOND)
        .await
        .expect("answer playing");
    h.model.drop_all();
    let report = call.finish().await;
    h.ended(&sid).await;
    assert!(
        !report.clears.is_empty(),
        "Twilio's buffer was still cleared"
    );
    let sessions = h.model.accepted_sessions();
    assert!(sessions.len() >= 2, "reconnected");
    assert!(
        sessions[1].truncates.is_empty(),
        "the new session never heard of the old item: {:?}",
        sessions[1].truncates
    );
    assert_clean(&h);
}

// 12b. A 401 at the handshake (bad key) is not retried: the caller gets the apology at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_not_retried() {
    let mut h = start(SimRealtimeConfig::default(), |_| {}).await;
    h.model.set_reject_status(Some(401));
    let sid = call_sid();
    let report = run_call(
        &h,
        &sid,
        vec![speak(600), CallerStep::Silence(3000), CallerStep::HangUp],
    )
    .await;
    let (reason, failed) = ended_reason(&mut h, &sid).await;
    assert!(failed && reason.contains("401"), "{reason}");
    assert_eq!(h.model.sessions().len(), 1, "one handshake, no retries");
    assert!(report.server_closed);
}
