//! What calls cost, through the real bridge against the strict simulator: every `response.done` and
//! transcription usage is priced from the price table (set through the local API) and must match a
//! computation by hand from the raw usage the simulator sent; the per-call budget tells the agent to
//! wrap up and then ends the call with the configured line right after the response that reached it; a
//! spent day's budget ends the call and refuses the next ones.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use verbio::events::{CallCap, CallEvent};
use verbio::realtime::session::DEFAULT_MODEL;
use verbio::sim::realtime_server::SimRealtimeConfig;
use verbio::sim::twilio_caller::{CallerStep, SimCall};

use common::{call_sid, post_signed_form, speak, start, turn, wait_agent};

const API_KEY: &str = "local-api-key-for-cost-tests-000001";
const GOODBYE: &str = "Our time is up for today, thank you and goodbye from Verbio.";

/// Dollars per million tokens → picodollars per token.
const PER_MILLION: u64 = 1_000_000;

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A price table with one row for the session's model and one for the transcription model.
fn table(realtime: Value, transcribe: Value) -> Value {
    json!({
        "as_of": "2026-12-01",
        "source": "test prices",
        "currency": "USD",
        "models": {DEFAULT_MODEL: realtime, "gpt-4o-mini-transcribe": transcribe}
    })
}

async fn put(h: &common::Harness, path: &str, body: Value) -> Value {
    let (status, answer) = h.api_call("PUT", path, API_KEY, Some(body)).await;
    assert_eq!(status, 200, "{path}: {answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_usage_is_priced_exactly_as_by_hand() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![
                turn("Hello there.", 700),
                turn("Sure thing.", 600),
                turn("Anything else?", 500),
            ],
            ..SimRealtimeConfig::default()
        },
        |c| {
            c.api_key = verbio::types::Secret::new(API_KEY);
            // Long instructions: past 1 024 input tokens the simulator serves part of the input from
            // its cache, so cached tokens are priced too.
            c.session.instructions = "Be brief and kind to every caller. ".repeat(160);
        },
    )
    .await;
    put(
        &h,
        "/api/prices",
        table(
            json!({"text_input": 1.5, "text_cached_input": 0.25, "text_output": 6.0,
                   "audio_input": 12.0, "audio_cached_input": 0.5, "audio_output": 24.0}),
            json!({"text_input": 1.0, "audio_input": 3.0, "text_output": 5.0}),
        ),
    )
    .await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![
            speak(600),
            wait_agent(700),
            CallerStep::Silence(300),
            speak(500),
            wait_agent(600),
            CallerStep::Silence(300),
            speak(400),
            wait_agent(500),
            CallerStep::Silence(600),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    let report = call.finish().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    h.ended(&sid).await;
    h.running.services.store.flush().await.expect("flush");

    // By hand, from what the simulator sent.
    let sessions = h.model.sessions();
    let mut responses = 0u64;
    let mut transcription = 0u64;
    let mut cached_seen = 0;
    for log in &sessions {
        for r in &log.responses {
            let u = &r.usage;
            if u.is_null() {
                continue;
            }
            let input = &u["input_token_details"];
            let cached = &input["cached_tokens_details"];
            let (text, audio) = (n(&input["text_tokens"]), n(&input["audio_tokens"]));
            let (cached_text, cached_audio) =
                (n(&cached["text_tokens"]), n(&cached["audio_tokens"]));
            cached_seen += cached_text + cached_audio;
            let output = &u["output_token_details"];
            // Dollars per million: 1.5, 0.25, 12, 0.5, 6, 24; in picodollars per token ×1e6.
            responses += (text - cached_text) * 1_500_000
                + cached_text * 250_000
                + (audio - cached_audio) * 12 * PER_MILLION
                + cached_audio * 500_000
                + n(&output["text_tokens"]) * 6 * PER_MILLION
                + n(&output["audio_tokens"]) * 24 * PER_MILLION;
        }
        for u in &log.transcription_usage {
            let input = &u["input_token_details"];
            transcription += n(&input["text_tokens"]) * PER_MILLION
                + n(&input["audio_tokens"]) * 3 * PER_MILLION
                + n(&u["output_tokens"]) * 5 * PER_MILLION;
        }
    }
    assert!(responses > 0 && transcription > 0);
    assert!(cached_seen > 0, "the test must price cached tokens too");

    let (status, cost) = h
        .api_call("GET", &format!("/api/sessions/{sid}/cost"), API_KEY, None)
        .await;
    assert_eq!(status, 200, "{cost}");
    assert_eq!(cost["total_pico"], responses + transcription, "{cost}");
    assert_eq!(cost["priced"], true);
    let usd = |pico: u64| pico as f64 / 1e12;
    assert_eq!(cost["by_source"]["response"], usd(responses));
    assert_eq!(cost["by_source"]["transcription"], usd(transcription));
    // The library's row and day show it too.
    let (_, rows) = h.api_call("GET", "/api/recordings", API_KEY, None).await;
    let row = rows
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["call_sid"] == sid.as_str()))
        .expect("the call's recording");
    assert_eq!(row["cost_usd"], usd(responses + transcription));
    let (_, days) = h
        .api_call("GET", "/api/library/daily?days=3", API_KEY, None)
        .await;
    let today = days.as_array().and_then(|d| d.last()).expect("today");
    assert_eq!(today["calls"], 1);
    assert_eq!(today["cost_usd"], usd(responses + transcription));
    // And a Prometheus scraper.
    let metrics = h.running.services.metrics_text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("verbio_cost_usd_total{source=\"response\"}")),
        "{metrics}"
    );
}

/// Only the agent's audio costs: 1 000 dollars per million output audio tokens is $0.001 a token, and
/// the simulator's 1 000 ms answers are 20 tokens: $0.02 each, exactly.
fn audio_only_prices() -> Value {
    table(json!({"audio_output": 1000.0}), json!({}))
}

fn cost_rig(script_turns: usize) -> SimRealtimeConfig {
    SimRealtimeConfig {
        script: (0..script_turns)
            .map(|i| turn(&format!("Answer {i}."), 1_000))
            .collect(),
        ..SimRealtimeConfig::default()
    }
}

fn no_transcription(c: &mut verbio::config::Config) {
    c.api_key = verbio::types::Secret::new(API_KEY);
    c.session.transcription = None;
}

/// The caller says something and listens to each answer, `turns` times, then stays on the line.
fn conversation(turns: usize) -> Vec<CallerStep> {
    let mut steps = Vec::new();
    for _ in 0..turns {
        steps.extend([speak(500), wait_agent(1_000), CallerStep::Silence(300)]);
    }
    steps.push(CallerStep::Silence(8_000));
    steps.push(CallerStep::HangUp);
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_budget_wraps_up_then_ends_the_call_with_the_line() {
    let mut h = start(cost_rig(5), no_transcription).await;
    put(&h, "/api/prices", audio_only_prices()).await;
    let budget = put(
        &h,
        "/api/budget",
        json!({"call_usd": 0.05, "daily_usd": null, "wrap_up_percent": 80, "goodbye": GOODBYE}),
    )
    .await;
    assert_eq!(budget["call_usd"], 0.05);
    let mut events = h.running.services.subscribe();
    let sid = call_sid();
    let call = SimCall::place(h.caller(&sid), conversation(4))
        .await
        .expect("call placed");
    let ended = h.ended(&sid).await;
    let report = call.finish().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    match ended {
        CallEvent::CallEnded { reason, failed, .. } => {
            assert_eq!(reason, "reached its budget");
            assert!(!failed);
        }
        other => panic!("{other:?}"),
    }
    // In the order the bus saw them: $0.02, $0.04 (80 %: wrap up), $0.06 (the cap: end).
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event {
            CallEvent::Cost {
                call_sid,
                call_total_usd,
                ..
            } if call_sid == sid => seen.push(format!("cost {call_total_usd:.2}")),
            CallEvent::BudgetWarning {
                call_sid,
                scope,
                spent_usd,
                cap_usd,
                ..
            } if call_sid == sid => {
                seen.push(format!("warn {scope:?} {spent_usd:.2}/{cap_usd:.2}"))
            }
            CallEvent::CallCapped { call_sid, cap, .. } if call_sid == sid => {
                seen.push(format!("capped {}", cap.as_str()))
            }
            _ => {}
        }
    }
    assert_eq!(
        seen[..5],
        [
            "cost 0.02",
            "cost 0.04",
            "warn Call 0.04/0.05",
            "cost 0.06",
            "capped call_budget"
        ],
        "{seen:?}"
    );
    // The model was told to wrap up after the second answer, and the last answer was the line.
    let log = &h.model.sessions()[0];
    let wrap_up = log
        .items_created
        .iter()
        .position(|item| item["role"] == "system" && item.to_string().contains("budget"))
        .expect("a wrap-up note");
    assert_eq!(wrap_up, 0, "the only system item");
    let last = log
        .response_requests
        .last()
        .expect("the goodbye's response");
    assert!(
        last["instructions"]
            .as_str()
            .is_some_and(|i| i.contains(GOODBYE)),
        "{last}"
    );
    assert_eq!(log.responses_started, 4, "three answers and the goodbye");
    assert!(
        report.heard_ms >= 3_900,
        "the goodbye was heard: {} ms",
        report.heard_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_day_budget_ends_the_call_and_refuses_the_next() {
    let mut h = start(cost_rig(4), no_transcription).await;
    put(&h, "/api/prices", audio_only_prices()).await;
    put(
        &h,
        "/api/budget",
        json!({"call_usd": null, "daily_usd": 0.03, "goodbye": GOODBYE}),
    )
    .await;
    let mut events = h.running.services.subscribe();
    let first = call_sid();
    let call = SimCall::place(h.caller(&first), conversation(3))
        .await
        .expect("call placed");
    assert!(
        matches!(h.ended(&first).await, CallEvent::CallEnded { ref reason, .. } if reason == "reached its budget")
    );
    call.finish().await;
    let (_, budget) = h.api_call("GET", "/api/budget", API_KEY, None).await;
    assert!(
        budget["spent_today_usd"]
            .as_f64()
            .is_some_and(|s| s >= 0.04),
        "{budget}"
    );

    // The next caller hears why and is hung up; the refusal is an event.
    let refused = call_sid();
    let caller = h.caller(&refused);
    let params = vec![
        ("AccountSid", caller.account_sid.as_str()),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", caller.call_sid.as_str()),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("From", caller.from.as_str()),
        ("To", caller.to.as_str()),
    ];
    let answer = post_signed_form(&h.base, "/twiml", &params).await;
    let twiml = answer.text().await.expect("TwiML");
    assert!(
        twiml.contains("<Say") && twiml.contains("<Hangup"),
        "{twiml}"
    );
    assert!(!twiml.contains("<Stream"), "{twiml}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let cap = loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("a call_capped event")
            .expect("bus open");
        if let CallEvent::CallCapped { call_sid, cap, .. } = event {
            if call_sid == refused {
                break cap;
            }
        }
    };
    assert_eq!(cap, CallCap::DailyBudget);
    // Placing a call is refused before anything is dialled.
    let (status, body) = h
        .api_call(
            "POST",
            "/api/call/outbound",
            API_KEY,
            Some(json!({"to": "+14155550123", "from": "+14155550199"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("over_budget")),
        "{body}"
    );
    // A restart counts what was spent from the library.
    let book = verbio::services::costs::open_cost_book(&h.running.services.store).await;
    book.set_budget(h.running.services.costs.budget().budget)
        .expect("valid");
    assert!(book.day_spent(verbio::types::now_ms()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_prices_and_budgets_are_refused_and_change_nothing() {
    let h = start(SimRealtimeConfig::default(), |c| {
        c.api_key = verbio::types::Secret::new(API_KEY);
    })
    .await;
    let (_, before) = h.api_call("GET", "/api/prices", API_KEY, None).await;
    assert_eq!(before["as_of"], "2025-08-28");
    for bad in [
        json!({"as_of": "2026-13-01", "source": "x", "currency": "USD", "models": {}}),
        json!({"as_of": "2026-12-01", "source": "x", "currency": "EUR", "models": {}}),
        table(json!({"audio_output": -1.0}), json!({})),
        table(json!({"audio_outptu": 1.0}), json!({})),
    ] {
        let (status, body) = h.api_call("PUT", "/api/prices", API_KEY, Some(bad)).await;
        assert_eq!(status, 422, "{body}");
    }
    let (_, after) = h.api_call("GET", "/api/prices", API_KEY, None).await;
    assert_eq!(after, before);
    let (status, body) = h
        .api_call(
            "PUT",
            "/api/budget",
            API_KEY,
            Some(json!({"call_usd": 0, "goodbye": "bye"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_budget")),
        "{body}"
    );
    let (_, budget) = h.api_call("GET", "/api/budget", API_KEY, None).await;
    assert_eq!(budget["call_usd"], Value::Null);
}
