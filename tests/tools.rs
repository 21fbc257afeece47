//! Tools that do real work, through the real core against the strict Realtime simulator: the operator's
//! approval (granted, declined, timed out) through the local API, the line kept alive while waiting, the
//! tool's output always followed by a spoken answer, nothing sent while a response is active, and the
//! tool log (stored, in the transcript, searchable, on `/api/sessions/{id}/tools`).

mod common;

use std::time::Duration;

use common::{call_sid, speak, start, turn, Harness};
use serde_json::{json, Value};
use verbio::events::CallEvent;
use verbio::realtime::session::{FunctionTool, SessionConfig};
use verbio::sim::realtime_server::{AgentTurn, SessionLog, SimRealtimeConfig};
use verbio::sim::twilio_caller::{CallerStep, SimCall};
use verbio::types::{Secret, Speaker};

const SECOND: Duration = Duration::from_secs(1);
const API_KEY: &str = "local-api-key-for-tools-tests-00001";

fn tool_turn(text: &str, tone_ms: u32, tool: &str, arguments: &str) -> AgentTurn {
    AgentTurn {
        call_tool: Some((tool.into(), arguments.into())),
        ..turn(text, tone_ms)
    }
}

fn refund_tool() -> FunctionTool {
    FunctionTool {
        name: "refund".into(),
        description: "Refund an order".into(),
        parameters: json!({"type": "object", "properties": {"order": {"type": "string"}}}),
        needs_approval: true,
        endpoint: None,
    }
}

/// The HTTP tools' signing secrets, as a headless `verbio serve` takes them (the environment wins over
/// the keychain). Set once, before any test starts a core: changing the environment while other
/// threads read it is not safe.
const TOOL_SECRETS: &[(&str, &str)] = &[
    ("lookup_signed", "tool-secret-for-the-lookup-test-0001"),
    ("lookup_500", "tool-secret-for-the-failure-tests-01"),
    ("lookup_bad_json", "tool-secret-for-the-failure-tests-01"),
    ("lookup_huge", "tool-secret-for-the-failure-tests-01"),
    ("lookup_slow", "tool-secret-for-the-slow-tool-test1"),
];

fn secret_of(tool: &str) -> &'static str {
    TOOL_SECRETS
        .iter()
        .find(|(name, _)| *name == tool)
        .map(|(_, secret)| *secret)
        .expect("a test tool")
}

async fn harness(model: SimRealtimeConfig, session: SessionConfig) -> Harness {
    static SECRETS: std::sync::Once = std::sync::Once::new();
    SECRETS.call_once(|| {
        for (tool, secret) in TOOL_SECRETS {
            std::env::set_var(verbio::secrets::tool_secret_env_var(tool), secret);
        }
    });
    let h = start(model, |c| c.api_key = Secret::new(API_KEY)).await;
    h.running
        .services
        .update_session_config(session)
        .expect("session with tools");
    h
}

async fn post(h: &Harness, path: &str) -> (u16, Value) {
    h.api_call("POST", path, API_KEY, None).await
}

async fn get(h: &Harness, path: &str) -> Value {
    let (status, body) = h.api_call("GET", path, API_KEY, None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Waits for the call's next event matching `pick`.
async fn next_event<T>(
    events: &mut tokio::sync::broadcast::Receiver<CallEvent>,
    mut pick: impl FnMut(CallEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(20 * SECOND, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("the event came")
}

/// The tool's output item the model got, and every response after it completed with audio.
fn assert_answered_after_output(s: &SessionLog, expect_in_output: &str) {
    let output = s
        .items_created
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .expect("a function output was sent");
    let text = output["output"].as_str().unwrap_or_default();
    assert!(text.contains(expect_in_output), "output {text:?}");
    assert_eq!(
        s.response_creates_refused, 0,
        "nothing created while a response ran"
    );
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    let last = s.responses.last().expect("responses");
    assert_eq!(
        last.status, "completed",
        "the answer after the output was spoken"
    );
}

fn session_with(tools: Vec<FunctionTool>, timeout_secs: u32) -> SessionConfig {
    SessionConfig {
        tools,
        tool_approval_timeout_secs: timeout_secs,
        ..SessionConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_tool_is_not_run_and_the_agent_says_so() {
    let mut h = harness(
        SimRealtimeConfig {
            script: vec![
                tool_turn("Let me see.", 400, "refund", r#"{"order":"42"}"#),
                turn("One moment please.", 600),
                turn("I am sorry, I cannot refund that.", 800),
            ],
            ..SimRealtimeConfig::default()
        },
        session_with(vec![refund_tool()], 30),
    )
    .await;
    let mut events = h.running.services.subscribe();
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![speak(600), CallerStep::Silence(20_000), CallerStep::HangUp],
    )
    .await
    .expect("call placed");
    let (call_id, expires) = next_event(&mut events, |e| match e {
        CallEvent::ToolApprovalRequested {
            call_id,
            tool,
            arguments,
            expires_at_ms,
            ..
        } => {
            assert_eq!(
                (tool.as_str(), arguments.as_str()),
                ("refund", r#"{"order":"42"}"#)
            );
            Some((call_id, expires_at_ms))
        }
        _ => None,
    })
    .await;
    assert!(expires > verbio::types::now_ms() + 20_000);
    let pending = get(&h, "/api/tools/pending").await;
    assert_eq!(pending[0]["call_id"], call_id.as_str());
    // The caller hears the agent say it is checking while the operator decides.
    call.wait_played(900, 10 * SECOND)
        .await
        .expect("the checking line");
    let (status, body) = post(&h, &format!("/api/call/{sid}/tool/{call_id}/decline")).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = post(&h, &format!("/api/call/{sid}/tool/{call_id}/approve")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_pending"))
    );
    let finished = next_event(&mut events, |e| match e {
        CallEvent::ToolFinished { outcome, error, .. } => Some((outcome, error)),
        _ => None,
    })
    .await;
    assert_eq!(finished.0, verbio::events::ToolOutcome::Declined);
    let played = call.played_ms();
    call.wait_played(played + 700, 10 * SECOND)
        .await
        .expect("the agent answered the refusal");
    call.hang_up_now();
    call.finish().await;
    h.ended(&sid).await;
    let s = &h.model.accepted_sessions()[0];
    assert_answered_after_output(s, "declined");
    // The checking line had no tools: the decision is the operator's.
    assert_eq!(s.response_requests[0]["tool_choice"], "none");
    let log = get(&h, &format!("/api/sessions/{sid}/tools")).await;
    assert_eq!(log[0]["outcome"], "declined");
    assert_eq!(log[0]["tool"], "refund");
    let store = &h.running.services.store;
    let lines = store.transcripts(&sid).await.expect("transcript");
    assert!(lines
        .iter()
        .any(|l| l.speaker == Speaker::Tool && l.text.starts_with("refund ")));
    h.validate_client_events("tools_declined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_nobody_gives_times_out_as_declined() {
    let mut h = harness(
        SimRealtimeConfig {
            script: vec![
                tool_turn("Let me see.", 400, "refund", r#"{"order":"7"}"#),
                turn("One moment please.", 500),
                turn("Still checking.", 500),
                turn("Still checking.", 500),
                turn("I could not get that approved.", 600),
            ],
            ..SimRealtimeConfig::default()
        },
        session_with(vec![refund_tool()], 5),
    )
    .await;
    let mut events = h.running.services.subscribe();
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![speak(600), CallerStep::Silence(20_000), CallerStep::HangUp],
    )
    .await
    .expect("call placed");
    let settled = next_event(&mut events, |e| match e {
        CallEvent::ToolApprovalSettled { approved, by, .. } => Some((approved, by)),
        _ => None,
    })
    .await;
    assert_eq!(settled, (false, "timeout".to_string()));
    let played = call.played_ms();
    call.wait_played(played + 500, 10 * SECOND)
        .await
        .expect("the agent said so");
    call.hang_up_now();
    call.finish().await;
    h.ended(&sid).await;
    let s = &h.model.accepted_sessions()[0];
    assert_answered_after_output(s, "did not approve");
    // While waiting 5 s, the line was kept alive: the checking line and at least one more.
    let fillers = s
        .response_requests
        .iter()
        .filter(|r| r["tool_choice"] == "none")
        .count();
    assert!(fillers >= 2, "keep-alive lines while waiting: {fillers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_tool_runs_and_a_tool_with_nothing_behind_it_is_a_failure_the_agent_talks_about(
) {
    let mut h = harness(
        SimRealtimeConfig {
            script: vec![
                tool_turn("Let me see.", 400, "refund", r#"{"order":"9"}"#),
                turn("One moment please.", 500),
                turn("The refund system is not connected.", 700),
            ],
            ..SimRealtimeConfig::default()
        },
        session_with(vec![refund_tool()], 30),
    )
    .await;
    let mut events = h.running.services.subscribe();
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![speak(600), CallerStep::Silence(20_000), CallerStep::HangUp],
    )
    .await
    .expect("call placed");
    let call_id = next_event(&mut events, |e| match e {
        CallEvent::ToolApprovalRequested { call_id, .. } => Some(call_id),
        _ => None,
    })
    .await;
    let (status, _) = post(&h, &format!("/api/call/{sid}/tool/{call_id}/approve")).await;
    assert_eq!(status, 202);
    let (outcome, approved_by) = next_event(&mut events, |e| match e {
        CallEvent::ToolFinished {
            outcome,
            approved_by,
            ..
        } => Some((outcome, approved_by)),
        _ => None,
    })
    .await;
    assert_eq!(outcome, verbio::events::ToolOutcome::Failed);
    assert_eq!(approved_by.as_deref(), Some("api"));
    let played = call.played_ms();
    call.wait_played(played + 600, 10 * SECOND)
        .await
        .expect("spoken");
    call.hang_up_now();
    call.finish().await;
    h.ended(&sid).await;
    assert_answered_after_output(&h.model.accepted_sessions()[0], "nothing behind it");
    // Unknown call, unknown call id.
    let (status, _) = post(
        &h,
        "/api/call/CA00000000000000000000000000000bad/tool/x/approve",
    )
    .await;
    assert_eq!(status, 404);
}

fn http_tool(name: &str, url: String, timeout_ms: u64) -> FunctionTool {
    FunctionTool {
        name: name.into(),
        description: "Look up an order".into(),
        parameters: json!({"type": "object", "properties": {"order": {"type": "string"}}}),
        needs_approval: false,
        endpoint: Some(
            serde_json::from_value(json!({"url": url, "timeout_ms": timeout_ms}))
                .expect("endpoint"),
        ),
    }
}

/// A call where the model calls `tool` once, then answers; returns the harness after the call ended.
async fn call_with_tool(tool: FunctionTool, filler: bool) -> (Harness, String) {
    let name = tool.name.clone();
    let mut h = harness(
        SimRealtimeConfig {
            script: vec![
                tool_turn("Let me look that up.", 400, &name, r#"{"order":"42"}"#),
                turn("Here is what I found.", 900),
            ],
            filler: filler.then(|| turn("Still on it.", 500)),
            ..SimRealtimeConfig::default()
        },
        session_with(vec![tool], 30),
    )
    .await;
    let mut events = h.running.services.subscribe();
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![speak(600), CallerStep::Silence(30_000), CallerStep::HangUp],
    )
    .await
    .expect("call placed");
    next_event(&mut events, |e| match e {
        CallEvent::ToolFinished { .. } => Some(()),
        _ => None,
    })
    .await;
    let played = call.played_ms();
    call.wait_played(played + 800, 10 * SECOND)
        .await
        .expect("the agent answered the tool's result");
    call.hang_up_now();
    call.finish().await;
    h.ended(&sid).await;
    (h, sid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_tool_is_called_signed_and_its_result_is_spoken() {
    let secret = secret_of("lookup_signed");
    let server =
        verbio::sim::tool_server::ToolServer::start(Some(secret.as_bytes().to_vec())).await;
    let (h, sid) = call_with_tool(http_tool("lookup_signed", server.url("/ok"), 8000), false).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].verified, "the signature checked out");
    let body = requests[0].json().expect("JSON body");
    assert_eq!(body["call_sid"], sid.as_str());
    assert_eq!(body["tool"], "lookup_signed");
    assert_eq!(body["arguments"], json!({"order": "42"}));
    let s = &h.model.accepted_sessions()[0];
    assert_answered_after_output(s, "shipped");
    let log = get(&h, &format!("/api/sessions/{sid}/tools")).await;
    assert_eq!(log[0]["outcome"], "ok");
    assert!(log[0]["latency_ms"].as_u64().is_some());
    // The secret the endpoint verifies with, for the user to copy (the env var wins over the keychain).
    let shown = get(&h, "/api/tools/lookup_signed/secret").await;
    assert_eq!(shown["secret"], secret);
    assert_eq!(shown["env_var"], "VERBIO_TOOL_SECRET_LOOKUP_SIGNED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_outputs_the_agent_talks_about() {
    let secret = secret_of("lookup_500");
    let server =
        verbio::sim::tool_server::ToolServer::start(Some(secret.as_bytes().to_vec())).await;
    for (name, path, expect) in [
        ("lookup_500", "/500", "500"),
        ("lookup_bad_json", "/malformed", "broken JSON"),
        ("lookup_huge", "/huge", "more than 16 KB"),
    ] {
        let (h, _) = call_with_tool(http_tool(name, server.url(path), 8000), false).await;
        let s = &h.model.accepted_sessions()[0];
        let output = s
            .items_created
            .iter()
            .find(|i| i["type"] == "function_call_output")
            .and_then(|i| i["output"].as_str().map(str::to_string))
            .expect("output");
        assert!(
            output.contains("error") && output.contains(expect),
            "{name}: {output}"
        );
        assert_answered_after_output(s, "error");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tool_keeps_the_line_alive_and_times_out() {
    let secret = secret_of("lookup_slow");
    let server =
        verbio::sim::tool_server::ToolServer::start(Some(secret.as_bytes().to_vec())).await;
    let started = std::time::Instant::now();
    let (h, sid) = call_with_tool(http_tool("lookup_slow", server.url("/slow"), 5000), true).await;
    assert!(started.elapsed() < Duration::from_secs(15));
    let s = &h.model.accepted_sessions()[0];
    assert_answered_after_output(s, "did not answer within 5 s");
    // 5 s of waiting: the agent spoke every ~2 s of quiet.
    let fillers = s
        .response_requests
        .iter()
        .filter(|r| r["tool_choice"] == "none")
        .count();
    assert!((1..=3).contains(&fillers), "keep-alive lines: {fillers}");
    let log = get(&h, &format!("/api/sessions/{sid}/tools")).await;
    assert_eq!(
        (log[0]["outcome"].as_str(), log[0]["failure"].as_str()),
        (Some("failed"), Some("timeout"))
    );
    // Searchable with the transcript.
    let found = get(&h, "/api/recordings?q=lookup_slow").await;
    assert_eq!(found[0]["call_sid"], sid.as_str(), "{found}");
}

fn mcp_session(servers: serde_json::Value) -> SessionConfig {
    SessionConfig {
        mcp_servers: serde_json::from_value(servers).expect("MCP config"),
        ..SessionConfig::default()
    }
}

/// Waits until every configured MCP server is ready.
async fn mcp_ready(h: &Harness) {
    common::eventually(20 * SECOND, "the MCP servers are ready", || {
        let statuses = h.running.services.tools.mcp_statuses();
        !statuses.is_empty()
            && statuses
                .iter()
                .all(|s| s.state == verbio::tools::mcp::McpState::Ready)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_tool_over_stdio_answers_and_a_crash_mid_call_withdraws_its_tools() {
    let mut h = harness(
        SimRealtimeConfig {
            script: vec![
                tool_turn("Let me check.", 400, "orders__lookup_order", r#"{"order":"42"}"#),
                turn("It has shipped.", 700),
                tool_turn("One more check.", 300, "orders__crash", "{}"),
                turn("The order system went away, sorry.", 700),
            ],
            ..SimRealtimeConfig::default()
        },
        mcp_session(json!([{
            "name": "orders",
            "transport": {"type": "stdio", "command": env!("CARGO_BIN_EXE_verbio"), "args": ["sim-mcp", "--stdio"]},
            "allowed_tools": ["lookup_order", "crash"],
        }])),
    )
    .await;
    mcp_ready(&h).await;
    let mut mcp_states = h.running.services.tools.subscribe_mcp();
    let tools = get(&h, "/api/tools").await;
    let names: Vec<&str> = tools
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"orders__lookup_order") && names.contains(&"end_call"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"orders__slow"),
        "only allowed tools: {names:?}"
    );
    let mut events = h.running.services.subscribe();
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![
            speak(600),
            CallerStep::Silence(2_500),
            speak(600),
            CallerStep::Silence(20_000),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        outcomes.push(
            next_event(&mut events, |e| match e {
                CallEvent::ToolFinished {
                    tool,
                    outcome,
                    failure,
                    ..
                } => Some((tool, outcome, failure)),
                _ => None,
            })
            .await,
        );
    }
    let played = call.played_ms();
    call.wait_played(played + 600, 10 * SECOND)
        .await
        .expect("the agent talked about it");
    call.hang_up_now();
    call.finish().await;
    h.ended(&sid).await;
    assert_eq!(outcomes[0].0, "orders__lookup_order");
    assert_eq!(outcomes[0].1, verbio::events::ToolOutcome::Ok);
    assert_eq!(outcomes[1].1, verbio::events::ToolOutcome::Failed);
    assert_eq!(
        outcomes[1].2,
        Some(verbio::tools::FailureKind::ServerUnavailable)
    );
    let s = &h.model.accepted_sessions()[0];
    let outputs: Vec<&str> = s
        .items_created
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .filter_map(|i| i["output"].as_str())
        .collect();
    assert!(outputs[0].contains("shipped"), "{outputs:?}");
    assert_eq!(s.response_creates_refused, 0);
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(
        s.responses.last().map(|r| r.status.as_str()),
        Some("completed")
    );
    // The dead server is a visible problem (the window hears it as it happens), and its tools are
    // withdrawn from new calls.
    let mut failed = false;
    while let Ok(status) = mcp_states.try_recv() {
        failed |= status.name == "orders" && status.state == verbio::tools::mcp::McpState::Failed;
    }
    assert!(failed, "the failure was published");
    let servers = get(&h, "/api/mcp/servers").await;
    assert_eq!(servers[0]["state"], "failed", "{servers}");
    assert!(
        servers[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("exited")),
        "{servers}"
    );
    let tools = get(&h, "/api/tools").await;
    assert!(
        tools
            .as_array()
            .expect("list")
            .iter()
            .all(|t| t["kind"] != "mcp"),
        "{tools}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_tool_over_streamable_http_needs_approval_when_configured() {
    let (addr, _server) = verbio::sim::mcp_server::serve_http("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("MCP server");
    let mut h = harness(
        SimRealtimeConfig {
            script: vec![
                tool_turn(
                    "Let me check.",
                    400,
                    "shop__lookup_order",
                    r#"{"order":"7"}"#,
                ),
                turn("Let me check that with a colleague.", 500),
                turn("It has shipped.", 700),
            ],
            ..SimRealtimeConfig::default()
        },
        mcp_session(json!([{
            "name": "shop",
            "transport": {"type": "http", "url": format!("http://{addr}/mcp")},
            "allowed_tools": ["lookup_order"],
            "needs_approval": ["lookup_order"],
        }])),
    )
    .await;
    mcp_ready(&h).await;
    let mut events = h.running.services.subscribe();
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![speak(600), CallerStep::Silence(20_000), CallerStep::HangUp],
    )
    .await
    .expect("call placed");
    let call_id = next_event(&mut events, |e| match e {
        CallEvent::ToolApprovalRequested { call_id, tool, .. } if tool == "shop__lookup_order" => {
            Some(call_id)
        }
        _ => None,
    })
    .await;
    let (status, _) = post(&h, &format!("/api/call/{sid}/tool/{call_id}/approve")).await;
    assert_eq!(status, 202);
    let outcome = next_event(&mut events, |e| match e {
        CallEvent::ToolFinished {
            outcome, output, ..
        } => Some((outcome, output)),
        _ => None,
    })
    .await;
    assert_eq!(outcome.0, verbio::events::ToolOutcome::Ok);
    assert!(outcome.1.is_some_and(|o| o.contains("shipped")));
    let played = call.played_ms();
    call.wait_played(played + 600, 10 * SECOND)
        .await
        .expect("spoken");
    call.hang_up_now();
    call.finish().await;
    h.ended(&sid).await;
    assert_answered_after_output(&h.model.accepted_sessions()[0], "shipped");
}
