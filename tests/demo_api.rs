//! "Try a simulated call" through the HTTP door: `POST /api/demo/call` places a call through the real core,
//! which then shows as live, fills the call library with its transcript and ends by itself.

mod common;

use std::time::Duration;

use common::start;
use reqwest::StatusCode;
use serde_json::Value;
use verbio::sim::realtime_server::SimRealtimeConfig;
use verbio::types::Secret;

const API_KEY: &str = "local-api-key-for-demo-tests-01";

#[tokio::test]
async fn the_demo_call_runs_through_the_core_and_lands_in_the_library() {
    let mut h = start(SimRealtimeConfig::default(), |c| {
        c.api_key = Secret::new(API_KEY);
    })
    .await;
    let client = reqwest::Client::new();
    let post = |key: &'static str| {
        client
            .post(format!("{}/api/demo/call", h.api))
            .header("X-API-Key", key)
            .send()
    };
    assert_eq!(
        post("wrong").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let resp = post(API_KEY).await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: Value = resp.json().await.unwrap();
    let sid = body["call_sid"].as_str().expect("call_sid").to_string();
    assert!(sid.starts_with("CA"), "{body}");
    // A second one while the first runs is refused.
    let again = post(API_KEY).await.unwrap();
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let ended = tokio::time::timeout(Duration::from_secs(60), h.ended(&sid))
        .await
        .expect("the demo call ends by itself");
    assert!(
        matches!(
            ended,
            verbio::events::CallEvent::CallEnded { failed: false, .. }
        ),
        "{ended:?}"
    );
    let turns: Value = client
        .get(format!("{}/api/sessions/{sid}/transcriptions", h.api))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let texts: Vec<&str> = turns
        .as_array()
        .expect("turns")
        .iter()
        .filter_map(|t| t["text"].as_str())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("simulated call")),
        "{texts:?}"
    );
    assert!(texts.len() >= 5, "{texts:?}");
}
