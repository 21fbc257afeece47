//! Turn latency as the caller hears it, through the real bridge against the strict simulator: the
//! simulator's VAD waits a known `silence_ms` after the caller stops, answers at once, and the fake
//! caller plays on Twilio's 20 ms clock, so each part of the measure has a known size.

mod common;

use common::{call_sid, speak, start, turn, wait_agent};
use verbio::realtime::session::TurnDetection;
use verbio::sim::realtime_server::SimRealtimeConfig;
use verbio::sim::twilio_caller::{CallerStep, SimCall};

const API_KEY: &str = "local-api-key-for-latency-tests-0001";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_answered_turn_is_measured_as_heard() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Hello.", 800), turn("Sure.", 600)],
            silence_ms: 400,
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
    let call = SimCall::place(
        h.caller(&sid),
        vec![
            speak(600),
            wait_agent(800),
            CallerStep::Silence(300),
            speak(500),
            wait_agent(600),
            CallerStep::Silence(200),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    let report = call.finish().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    h.ended(&sid).await;
    let services = &h.running.services;
    services.store.flush().await.expect("flush");
    let latency = services.turn_latency(&sid).await.expect("latency");
    assert_eq!(latency.turns.len(), 2, "{latency:?}");
    for t in &latency.turns {
        // The simulator's VAD needs 400 ms of silence (in 20 ms frames) before it says the turn ended.
        assert!(
            t.endpointing_ms.abs_diff(400) <= 40,
            "endpointing {} ms, expected about 400: {t:?}",
            t.endpointing_ms
        );
        // It answers at once, and the caller plays what arrives on its next 20 ms tick.
        assert!(t.model_ms <= 60, "model {} ms: {t:?}", t.model_ms);
        assert!(t.playout_ms <= 60, "playout {} ms: {t:?}", t.playout_ms);
        let parts = t.endpointing_ms + t.model_ms + t.playout_ms;
        assert!(t.total_ms.abs_diff(parts) <= 3, "the parts add up: {t:?}");
    }
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
        "verbio_turn_latency_seconds_count 2",
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
    assert_eq!(body["turns"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["p50_ms"], latency.p50_ms.expect("p50"));
}
