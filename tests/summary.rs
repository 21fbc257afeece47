//! The post-call summary, through the real core: calls through the strict Realtime simulator, the
//! summary asked of a stand-in Responses API (`sim::responses_server`, as strict about structured
//! outputs as the live service), then read back through the local API, the event bus, the library's
//! search and an export. A failed or invalid answer is kept and announced, and touches no other call.

mod common;

use std::time::Duration;

use common::{call_sid, speak, start, turn, wait_agent, Harness, OPENAI_KEY};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use verbio::events::CallEvent;
use verbio::sim::realtime_server::SimRealtimeConfig;
use verbio::sim::responses_server::{Reply, ResponsesServer};
use verbio::sim::twilio_caller::{CallerStep, SimCall};
use verbio::summary::{SummaryConfig, SummaryStatus};
use verbio::types::Secret;

const API_KEY: &str = "local-api-key-for-summary-tests-0001";
/// "Within 10 s of hang-up on a normal call".
const SUMMARY_DEADLINE: Duration = Duration::from_secs(10);

fn summary_config() -> SummaryConfig {
    SummaryConfig {
        enabled: true,
        dispositions: vec![
            "resolved".into(),
            "callback_requested".into(),
            "other".into(),
        ],
        fields_schema: json!({
            "type": "object",
            "properties": {
                "order_number": {"type": "string", "description": "The order's number"},
                "callback_time": {"type": "string"},
                "items": {"type": "integer"}
            },
            "required": ["order_number"]
        }),
        ..SummaryConfig::default()
    }
}

async fn harness(responses: &ResponsesServer) -> Harness {
    let base = responses.base();
    start(
        SimRealtimeConfig {
            script: vec![turn("Your order ZX-4411 ships tomorrow.", 500)],
            caller_transcripts: vec!["where is my order ZX-4411".into()],
            ..SimRealtimeConfig::default()
        },
        move |c| {
            c.api_key = Secret::new(API_KEY);
            c.openai_api_base = base;
            c.session.summary = summary_config();
        },
    )
    .await
}

/// One caller turn, the agent's answer, then the caller hangs up after `linger_ms` more.
async fn place_call(h: &Harness, sid: &str, linger_ms: u32) -> SimCall {
    SimCall::place(
        h.caller(sid),
        vec![
            speak(500),
            wait_agent(500),
            CallerStep::Silence(linger_ms),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed")
}

/// Waits for `sid`'s `summary` event; also returns how long after its `call_ended` it came.
async fn summary_event(
    events: &mut broadcast::Receiver<CallEvent>,
    sid: &str,
) -> (CallEvent, Duration) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut ended_at = None;
    loop {
        let next = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no summary event for {sid}"));
        match next {
            Ok(CallEvent::CallEnded {
                call_sid, failed, ..
            }) if call_sid == sid => {
                assert!(!failed, "the call itself ended normally");
                ended_at = Some(tokio::time::Instant::now());
            }
            Ok(e @ CallEvent::Summary { .. }) if e.call_sid() == sid => {
                let ended = ended_at.expect("the summary comes after the call ended");
                return (e, ended.elapsed());
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(e) => panic!("event bus closed: {e}"),
        }
    }
}

fn status_of(event: &CallEvent) -> SummaryStatus {
    match event {
        CallEvent::Summary { status, .. } => *status,
        other => panic!("not a summary: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_summarised_kept_announced_searchable_and_exported() {
    let responses = ResponsesServer::start(Some(OPENAI_KEY)).await;
    responses.script([Reply::Json(json!({
        "summary": "The caller asked about order ZX-4411; it ships tomorrow.",
        "disposition": "resolved",
        "fields": {"order_number": "ZX-4411", "callback_time": null, "items": 2}
    }))]);
    let h = harness(&responses).await;
    let mut events = h.running.services.subscribe();
    let sid = call_sid();
    let report = place_call(&h, &sid, 200).await.finish().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let (event, after) = summary_event(&mut events, &sid).await;
    assert!(after < SUMMARY_DEADLINE, "summary {after:?} after hang-up");
    let event = serde_json::to_value(&event).expect("event JSON");
    assert_eq!(event["type"], "summary");
    assert_eq!(event["status"], "done");
    assert_eq!(event["disposition"], "resolved");
    assert_eq!(event["fields"]["order_number"], "ZX-4411");
    assert!(event["error"].is_null() && event["at_ms"].as_i64().is_some());

    // What the stand-in got: the key, the transcript, a strict schema with the user's fields.
    let requests = responses.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request.status, 200);
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    let body = request.body.as_ref().expect("a JSON body");
    assert_eq!(body["model"], "gpt-4.1-mini");
    assert_eq!(body["store"], false);
    let input = body["input"].as_str().expect("input text");
    assert!(
        input.contains("Caller: where is my order ZX-4411"),
        "{input}"
    );
    assert!(
        input.contains("Agent: Your order ZX-4411 ships tomorrow."),
        "{input}"
    );
    let format = &body["text"]["format"];
    assert_eq!(
        (format["type"].as_str(), format["strict"].as_bool()),
        (Some("json_schema"), Some(true))
    );
    let schema = &format["schema"];
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["properties"]["disposition"]["enum"],
        json!(["resolved", "callback_requested", "other"])
    );
    let fields = &schema["properties"]["fields"];
    // Every field required (the key order is the schema's: serde_json keeps keys sorted).
    let mut required: Vec<&str> = fields["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["callback_time", "items", "order_number"]);
    assert_eq!(
        fields["properties"]["callback_time"]["type"],
        json!(["string", "null"])
    );

    // Kept with the call, with its usage, on the API.
    let (status, record) = h
        .api_call(
            "GET",
            &format!("/api/sessions/{sid}/summary"),
            API_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["status"], "done");
    assert_eq!(record["call_sid"], sid.as_str());
    assert_eq!(
        record["summary"],
        "The caller asked about order ZX-4411; it ships tomorrow."
    );
    assert_eq!(
        record["fields"],
        json!({"order_number": "ZX-4411", "callback_time": null, "items": 2})
    );
    assert_eq!(record["model"], "gpt-4.1-mini");
    let usage = request.usage.as_ref().expect("usage answered");
    assert_eq!(record["input_tokens"], usage["input_tokens"]);
    assert_eq!(
        record["cached_tokens"],
        usage["input_tokens_details"]["cached_tokens"]
    );
    assert_eq!(record["output_tokens"], usage["output_tokens"]);
    assert!(record["latency_ms"].as_u64().is_some());
    // Its own cost is the call's: gpt-4.1-mini at $0.40 / $0.10 cached / $1.60 per million tokens.
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let cached = n(&usage["input_tokens_details"]["cached_tokens"]);
    let by_hand = (n(&usage["input_tokens"]) - cached) * 400_000
        + cached * 100_000
        + n(&usage["output_tokens"]) * 1_600_000;
    assert!(by_hand > 0);
    let (status, cost) = h
        .api_call("GET", &format!("/api/sessions/{sid}/cost"), API_KEY, None)
        .await;
    assert_eq!(status, 200, "{cost}");
    assert_eq!(
        cost["by_source"]["summary"],
        by_hand as f64 / 1e12,
        "{cost}"
    );

    // Searchable by a field value, a word of the summary and the disposition; on the recording.
    let (status, found) = h
        .api_call("GET", "/api/recordings?q=zx-4411", API_KEY, None)
        .await;
    assert_eq!(status, 200);
    let recording = found
        .as_array()
        .and_then(|list| list.iter().find(|r| r["call_sid"] == sid.as_str()))
        .cloned()
        .expect("the call's recording is found by its order number");
    for q in ["tomorrow%20ships", "resolved"] {
        let (_, found) = h
            .api_call("GET", &format!("/api/recordings?q={q}"), API_KEY, None)
            .await;
        assert!(
            found
                .as_array()
                .is_some_and(|l| l.iter().any(|r| r["call_sid"] == sid.as_str())),
            "{q}"
        );
    }
    let id = recording["id"].as_i64().expect("recording id");
    let mut detail = Value::Null;
    for _ in 0..200 {
        let (_, d) = h
            .api_call("GET", &format!("/api/recording/{id}"), API_KEY, None)
            .await;
        detail = d;
        if detail["status"] != "recording" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(detail["summary"], record);

    // An export writes the call beside the WAV.
    let out = tempfile::tempdir().expect("dir");
    let dest = out.path().join("call.wav");
    let (status, answer) = h
        .api_call(
            "POST",
            &format!("/api/recording/{id}/export"),
            API_KEY,
            Some(json!({"path": dest})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let sidecar: Value = serde_json::from_slice(
        &std::fs::read(out.path().join("call.json")).expect("the sidecar is written"),
    )
    .expect("sidecar JSON");
    assert_eq!(sidecar["summary"], record);
    assert_eq!(sidecar["recording"]["call_sid"], sid.as_str());
    assert_eq!(sidecar["call"]["call_sid"], sid.as_str());
    let lines = sidecar["transcript"].as_array().expect("transcript");
    assert!(lines
        .iter()
        .any(|l| l["speaker"] == "caller" && l["text"] == "where is my order ZX-4411"));
    // Never over an existing sidecar; the WAV is not left behind either.
    let again = out.path().join("again.wav");
    std::fs::write(out.path().join("again.json"), b"{}").expect("file");
    let (status, _) = h
        .api_call(
            "POST",
            &format!("/api/recording/{id}/export"),
            API_KEY,
            Some(json!({"path": again})),
        )
        .await;
    assert_eq!(status, 422);
    assert!(!again.exists());

    // A re-run replaces it (the stand-in's script is used up: it answers from the schema).
    let (status, rerun) = h
        .api_call(
            "POST",
            &format!("/api/sessions/{sid}/summary"),
            API_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{rerun}");
    assert_eq!(rerun["status"], "done");
    assert_eq!(rerun["disposition"], "resolved");
    assert_eq!(rerun["fields"]["callback_time"], Value::Null);
    assert_eq!(responses.requests().len(), 2);
    let (_, record) = h
        .api_call(
            "GET",
            &format!("/api/sessions/{sid}/summary"),
            API_KEY,
            None,
        )
        .await;
    assert_eq!(record, rerun);
    // No summary for an unknown call.
    let (status, body) = h
        .api_call("GET", "/api/sessions/CAnope/summary", API_KEY, None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_invalid_answers_are_visible_and_touch_no_other_call() {
    let responses = ResponsesServer::start(Some(OPENAI_KEY)).await;
    // The first call to end gets a 500 twice (the one retry fails too); the second a disposition that
    // is not in the list; the third a field of the wrong type; the fourth a 429, then an answer.
    responses.script([
        Reply::Http(500),
        Reply::Http(500),
        Reply::Json(json!({"summary": "s", "disposition": "won_the_lottery",
            "fields": {"order_number": "A1", "callback_time": null, "items": 1}})),
        Reply::Json(json!({"summary": "s", "disposition": "other",
            "fields": {"order_number": "A1", "callback_time": null, "items": "two"}})),
        Reply::Http(429),
        Reply::Auto,
    ]);
    let h = harness(&responses).await;
    let mut events = h.running.services.subscribe();
    // Two calls at once: the first hangs up while the second is still talking.
    let (first, second) = (call_sid(), call_sid());
    let call_a = place_call(&h, &first, 100).await;
    let call_b = place_call(&h, &second, 3_000).await;
    let (a, b) = tokio::join!(call_a.finish(), call_b.finish());
    assert!(
        a.errors.is_empty() && b.errors.is_empty(),
        "{:?} {:?}",
        a.errors,
        b.errors
    );

    let (failed, _) = summary_event(&mut events, &first).await;
    assert_eq!(status_of(&failed), SummaryStatus::Failed);
    let CallEvent::Summary { error, summary, .. } = &failed else {
        unreachable!()
    };
    let error = error.as_deref().expect("a reason");
    assert!(error.contains("500"), "{error}");
    assert!(!error.contains(OPENAI_KEY) && summary.is_none());
    let (invalid, _) = summary_event(&mut events, &second).await;
    assert_eq!(status_of(&invalid), SummaryStatus::Invalid);
    let CallEvent::Summary { error, .. } = &invalid else {
        unreachable!()
    };
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("won_the_lottery")),
        "{error:?}"
    );

    // Both kept as they ended, each with its own call; the calls themselves ended normally.
    for (sid, status) in [(&first, "failed"), (&second, "invalid")] {
        let (code, record) = h
            .api_call(
                "GET",
                &format!("/api/sessions/{sid}/summary"),
                API_KEY,
                None,
            )
            .await;
        assert_eq!(
            (code, record["status"].as_str()),
            (200, Some(status)),
            "{record}"
        );
        let (_, call) = h
            .api_call("GET", &format!("/api/call/{sid}/status"), API_KEY, None)
            .await;
        assert_eq!(call["status"], "completed", "{call}");
    }

    // A third call: a field of the wrong type is invalid too.
    let third = call_sid();
    let report = place_call(&h, &third, 100).await.finish().await;
    assert!(report.errors.is_empty());
    let (wrong_type, _) = summary_event(&mut events, &third).await;
    let CallEvent::Summary { status, error, .. } = &wrong_type else {
        unreachable!()
    };
    assert_eq!(*status, SummaryStatus::Invalid);
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("\"items\" is not integer")),
        "{error:?}"
    );

    // Re-running the failed one: a 429 is retried once, then it is done.
    let (status, rerun) = h
        .api_call(
            "POST",
            &format!("/api/sessions/{first}/summary"),
            API_KEY,
            None,
        )
        .await;
    assert_eq!(
        (status, rerun["status"].as_str()),
        (200, Some("done")),
        "{rerun}"
    );
    let statuses: Vec<u16> = responses.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200, 200, 429, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_asked_when_the_summary_is_off_or_the_call_said_nothing() {
    let responses = ResponsesServer::start(Some(OPENAI_KEY)).await;
    let h = harness(&responses).await;
    let mut events = h.running.services.subscribe();
    // A call with no transcript line: nothing to summarise.
    let silent = call_sid();
    let call = SimCall::place(
        h.caller(&silent),
        vec![CallerStep::Silence(300), CallerStep::HangUp],
    )
    .await
    .expect("call placed");
    call.finish().await;
    // Then the summary is turned off: the next call is not summarised.
    let mut session = h.running.services.session_config();
    session.summary.enabled = false;
    h.running
        .services
        .update_session_config(session)
        .expect("valid session");
    let off = call_sid();
    place_call(&h, &off, 100).await.finish().await;
    for sid in [&silent, &off] {
        loop {
            match events.recv().await {
                Ok(CallEvent::CallEnded { call_sid, .. }) if &call_sid == sid => break,
                Ok(e @ CallEvent::Summary { .. }) => panic!("unexpected {e:?}"),
                _ => {}
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        responses.requests().is_empty(),
        "{:?}",
        responses.requests()
    );
    let (status, _) = h
        .api_call(
            "GET",
            &format!("/api/sessions/{off}/summary"),
            API_KEY,
            None,
        )
        .await;
    assert_eq!(status, 404);
    // An invalid summary setting is refused with its name.
    let mut bad = h.running.services.session_config();
    bad.summary.dispositions = vec![];
    let err = h
        .running
        .services
        .update_session_config(bad)
        .expect_err("refused");
    assert!(err.to_string().contains("summary.dispositions"), "{err}");
}
