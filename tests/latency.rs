//! Turn latency as the caller hears it, through the real bridge against the strict simulator, with
//! known delays injected in each part: the simulator's VAD waits `silence_ms` after the caller stops
//! (endpointing), the model thinks `first_audio_delay` before its first audio (model), and the fake
//! caller's jitter buffer holds each stretch of agent audio `playout_delay` before it plays on Twilio's
//! 20 ms clock (playout). The measure must find each within 20 ms. A barge-in's reaction (speech
//! start → `clear`) includes the VAD's `speech_detect_ms`.

mod common;

use common::{call_sid, speak, start, turn, wait_agent};
use std::time::Duration;
use verbio::realtime::session::TurnDetection;
use verbio::sim::realtime_server::SimRealtimeConfig;

use verbio::sim::twilio_caller::{CallerStep, SimCall};

const API_KEY: &str = "local-api-key-for-latency-tests-0001";
/// The injected delays, ms.
const ENDPOINTING_MS: u64 = 400;
const MODEL_MS: u64 = 300;
const PLAYOUT_MS: u64 = 120;
const DETECT_MS: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_answered_turn_is_measured_as_heard() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![
                turn("Hello.", 800),
                turn("Sure, let me tell you all about it.", 2_000),
                turn("Of course.", 600),
            ],
            silence_ms: 400,
            first_audio_delay: Duration::from_millis(MODEL_MS),
            speech_detect_ms: DETECT_MS as u32,
            ..SimRealtimeConfig::default()
        },
        // The simulator's VAD waits its own `silence_ms`; the session says the same, as a real one would.
        |c| {
            c.api_key = verbio::types::Secret::new(API_KEY);
            c.session.turn_detection = TurnDetection::ServerVad {
                threshold: 0.5,
                prefix_padding_ms: 300,
                silence_duration_ms: 400,
            }
        },
    )
    .await;
    let sid = call_sid();
    let mut caller = h.caller(&sid);
    caller.playout_delay = Duration::from_millis(PLAYOUT_MS);
    let call = SimCall::place(
        caller,
        vec![
            speak(600),
            wait_agent(800),
            CallerStep::Silence(300),
            speak(500),
            // The caller talks over the second answer once 500 ms of it played.
            CallerStep::SpeakWhenAgentHasPlayed {
                after_ms: 500,
                tone_hz: 440.0,
                ms: 600,
                timeout: Duration::from_secs(10),
            },
            wait_agent(600),
            CallerStep::Silence(200),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    let report = call.finish().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.clears.len(), 1, "one barge-in");
    h.ended(&sid).await;
    let services = &h.running.services;
    services.store.flush().await.expect("flush");
    let latency = services.turn_latency(&sid).await.expect("latency");
    // The cut answer was heard before the cut, so it counts: three answered turns.
    assert_eq!(latency.turns.len(), 3, "{latency:?}");
    for t in &latency.turns {
        // Each part is the injected delay, give or take the 20 ms frames audio moves in.
        for (part, measured, injected) in [
            ("endpointing", t.endpointing_ms, ENDPOINTING_MS),
            ("model", t.model_ms, MODEL_MS),
            ("playout", t.playout_ms, PLAYOUT_MS),
        ] {
            assert!(
                measured.abs_diff(injected) <= 20,
                "{part} {measured} ms, injected {injected}: {t:?}"
            );
        }
        let parts = t.endpointing_ms + t.model_ms + t.playout_ms;
        assert!(t.total_ms.abs_diff(parts) <= 3, "the parts add up: {t:?}");
    }
    // The barge-in: Twilio was told to stop once the VAD had heard 100 ms of the caller.
    assert_eq!(latency.interruptions, 1, "{:?}", latency.barge_ins);
    let reaction = latency.barge_ins[0].reaction_ms.expect("reaction measured");
    assert!(
        reaction.abs_diff(DETECT_MS) <= 20,
        "barge-in reaction {reaction} ms, the VAD needed {DETECT_MS}"
    );
    assert!(latency.barge_ins[0].heard_ms >= 500);
    assert!(latency.p50_ms.is_some() && latency.max_ms >= latency.p50_ms);
    // The caller's second turn ended after the first answer: offsets in stream order.
    assert!(latency.turns[0].offset_ms < latency.turns[1].offset_ms);
    // The same figures for a Prometheus scraper, and the API's view of the call.
    let api = |path: &str| {
        reqwest::Client::new()
            .get(format!("{}{path}", h.api))
            .header("x-api-key", API_KEY)
            .send()
    };
    let text = api("/api/metrics")
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for line in [
        "verbio_calls_started_total 1",
        "verbio_calls_ended_total{outcome=\"ok\"} 1",
        "verbio_turn_latency_seconds_count 3",
        "verbio_barge_in_reaction_seconds_count 1",
        "verbio_active_calls 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let body: serde_json::Value = api(&format!("/api/sessions/{sid}/latency"))
        .await
        .expect("latency")
        .json()
        .await
        .expect("JSON");
    assert_eq!(body["turns"].as_array().map(Vec::len), Some(3));
    assert_eq!(body["interruptions"], 1);
    assert_eq!(body["p50_ms"], latency.p50_ms.expect("p50"));
}
