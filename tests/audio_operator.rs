//! Taking a call over with a real microphone: the PulseAudio test source `test_mic` (a 440 Hz tone, see
//! `scripts/test-audio.sh`) through cpal, the local API's routes and the real core, to a simulated caller.
//! The caller must receive the microphone's tone after the take-over and none of the agent's (880 Hz)
//! until the hand-back; the take-over itself must not wait for the device (it was opened ahead).

mod audio;
mod common;

use std::time::{Duration, Instant};

use audio::device_expected;
use common::{call_sid, start, turn};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use verbio::audio::mulaw;
use verbio::sim::realtime_server::SimRealtimeConfig;
use verbio::sim::twilio_caller::{CallerProbe, CallerStep, SimCall};
use verbio::types::Secret;

const SECOND: Duration = Duration::from_secs(1);
const API_KEY: &str = "local-api-key-for-operator-tests-0002";

/// Power of `hz` in 8 kHz μ-law audio (the device tests' Goertzel).
fn power(audio: &[u8], hz: f64) -> f64 {
    audio::power(&(mulaw::decode_all(audio), 8000), hz)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_takes_over_with_the_test_microphone() {
    if !device_expected() {
        return;
    }
    let mut h = start(
        SimRealtimeConfig {
            script: vec![
                turn("Let me explain everything, at length.", 6000),
                turn("I am back.", 800),
            ],
            ..SimRealtimeConfig::default()
        },
        |c| c.api_key = Secret::new(API_KEY),
    )
    .await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", h.api))
            .header("x-api-key", API_KEY)
            .json(&body)
            .send()
    };
    let inputs: Vec<String> = client
        .get(format!("{}/api/audio/inputs", h.api))
        .header("x-api-key", API_KEY)
        .send()
        .await
        .expect("inputs")
        .json()
        .await
        .expect("a list");
    assert!(!inputs.is_empty(), "the test microphone is listed");

    let sid = call_sid();
    let (probe_tx, mut probes) = mpsc::unbounded_channel();
    let mut caller = h.caller(&sid);
    caller.probe = Some(probe_tx);
    let call = SimCall::place(
        caller,
        vec![
            CallerStep::Speak {
                tone_hz: 300.0,
                ms: 600,
            },
            CallerStep::Silence(12_000),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    // The window opens the microphone when the operator looks at a live call.
    let prepared = post("/api/operator/microphone", json!({"device": null}))
        .await
        .expect("prepare");
    assert_eq!(prepared.status().as_u16(), 200);
    let level_seen = async {
        for _ in 0..100 {
            let mic: Value = client
                .get(format!("{}/api/operator/microphone", h.api))
                .header("x-api-key", API_KEY)
                .send()
                .await
                .expect("microphone")
                .json()
                .await
                .expect("json");
            if mic["level_db"].as_f64().is_some_and(|db| db > -30.0) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(
        level_seen.await,
        "the microphone's level shows the test tone"
    );
    call.wait_played(500, 10 * SECOND)
        .await
        .expect("the agent talks");

    let asked = Instant::now();
    let taken = post(
        &format!("/api/call/{sid}/takeover"),
        json!({"device": null}),
    )
    .await
    .expect("take over");
    let took = asked.elapsed();
    assert_eq!(taken.status().as_u16(), 200, "{:?}", taken.text().await);
    assert!(
        took < Duration::from_millis(500),
        "the take-over took {took:?}"
    );
    tokio::time::sleep(2 * SECOND).await;
    // The hold ends when the hand-back is asked for: on a loaded machine the agent may already be
    // talking again before the answer to the request arrives.
    let handed_back = Instant::now();
    let back = post(&format!("/api/call/{sid}/handback"), json!({}))
        .await
        .expect("hand back");
    assert_eq!(back.status().as_u16(), 202);
    let played = call.played_ms();
    call.wait_played(played + 500, 10 * SECOND)
        .await
        .expect("the agent again");
    call.hang_up_now();
    call.finish().await;
    h.ended(&sid).await;

    let (mut audio, mut clear) = (Vec::new(), None);
    while let Ok(probe) = probes.try_recv() {
        match probe {
            CallerProbe::MediaReceived { at, bytes, .. } => audio.push((at, bytes)),
            CallerProbe::ClearReceived { at, .. } => clear = clear.or(Some(at)),
            _ => {}
        }
    }
    let clear = clear.expect("the agent was cut at the take-over");
    let held: Vec<u8> = audio
        .iter()
        .filter(|(at, _)| *at > clear && *at < handed_back)
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    let (mic, agent) = (power(&held, 440.0), power(&held, 880.0));
    eprintln!(
        "take-over answered in {took:?}; while held: {} ms of audio, 440 Hz {mic:.3e}, 880 Hz {agent:.3e}",
        held.len() / 8
    );
    assert!(
        held.len() >= 1500 * 8,
        "the microphone reached the caller: {} ms",
        held.len() / 8
    );
    assert!(
        mic > agent * 1000.0,
        "the caller heard the microphone, not the agent"
    );
    let after: Vec<u8> = audio
        .iter()
        .filter(|(at, _)| *at > handed_back)
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    assert!(
        power(&after, 880.0) > power(&after, 440.0),
        "the agent after the hand-back"
    );
    let closed = client
        .delete(format!("{}/api/operator/microphone", h.api))
        .header("x-api-key", API_KEY)
        .send()
        .await
        .expect("close");
    assert_eq!(closed.status().as_u16(), 204);
    assert!(h.running.services.operator.microphone().is_none());
}
