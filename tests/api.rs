//! The local HTTP API: key on every route, JSON errors, limits, headers, CORS and the events socket.

mod common;

use std::time::Duration;

use common::{call_sid, start, AUTH_TOKEN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use verbio::server::api::API_ROUTES;
use verbio::sim::realtime_server::SimRealtimeConfig;
use verbio::sim::twilio_caller::{CallerStep, SimCall};
use verbio::types::Secret;

const API_KEY: &str = "local-api-key-for-tests-0001";

async fn harness(rate: u32) -> common::Harness {
    start(SimRealtimeConfig::default(), |c| {
        c.api_key = Secret::new(API_KEY);
        c.api_rate_per_minute = rate;
        c.cors_origins = vec!["https://crm.example".into()];
    })
    .await
}

fn url(h: &common::Harness, path: &str) -> String {
    format!(
        "{}{}",
        h.api,
        path.replace("{sid}", "CA123").replace("{id}", "CA123")
    )
}

async fn call(
    h: &common::Harness,
    method: &str,
    path: &str,
    key: Option<&str>,
) -> reqwest::Response {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = reqwest::Client::new().request(method, url(h, path));
    if let Some(key) = key {
        req = req.header("X-API-Key", key);
    }
    req.send().await.expect("request")
}

async fn error_code(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("JSON error body");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_string();
    assert!(
        body["error"]["message"].is_string(),
        "error.message present"
    );
    (status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_api_route_answers_without_the_key() {
    let h = harness(1000).await;
    for (method, path) in API_ROUTES {
        for key in [None, Some("wrong-key"), Some("")] {
            let resp = call(&h, method, path, key).await;
            assert_eq!(
                resp.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {key:?}"
            );
        }
        // With the key, the route exists (whatever it answers, it is not a missing route).
        let resp = call(&h, method, path, Some(API_KEY)).await;
        assert_ne!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_ne!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    // Paths not in the list are behind the key too.
    for path in [
        "/api",
        "/api/admin",
        "/api/calls/active/../../x",
        "/api/anything?x=1",
    ] {
        assert_eq!(
            call(&h, "GET", path, None).await.status(),
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(
        call(&h, "GET", "/api/nope", Some(API_KEY)).await.status(),
        StatusCode::NOT_FOUND
    );
}

/// The route list is made from the router's own table: every listed route is answered by a handler
/// (not the fallback), and every other method on a listed path is refused with 405, so a method the
/// router serves is never missing from the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_list_is_the_router() {
    let h = harness(1000).await;
    let mut seen = std::collections::HashSet::new();
    for (method, path) in API_ROUTES {
        assert!(seen.insert((method, path)), "{method} {path} listed twice");
        let resp = call(&h, method, path, Some(API_KEY)).await;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            !text.contains("no such API route"),
            "{method} {path} fell through to the fallback"
        );
    }
    for (_, path) in API_ROUTES {
        for method in ["GET", "POST", "PUT", "DELETE"] {
            if API_ROUTES.contains(&(method, path)) {
                continue;
            }
            let resp = call(&h, method, path, Some(API_KEY)).await;
            assert_eq!(
                resp.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is served but not listed"
            );
        }
    }
}

/// The public listener (what a tunnel forwards to) never serves `/api`, even with the right key: every
/// route of the table is a 404 there and no handler runs; the events socket does not upgrade.
/// Twilio's routes are not on the local listener either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_never_served_on_the_public_listener() {
    let h = harness(1000).await;
    let client = reqwest::Client::new();
    for (method, path) in API_ROUTES {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let public = format!(
            "{}{}",
            h.base,
            path.replace("{sid}", "CA123").replace("{id}", "1")
        );
        let resp = client
            .request(method.clone(), &public)
            .header("X-API-Key", API_KEY)
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("request");
        assert_eq!(
            resp.status(),
            StatusCode::NOT_FOUND,
            "{method} {path} on the public listener"
        );
        let text = resp.text().await.unwrap_or_default();
        assert!(
            !text.contains("no such API route"),
            "{method} {path}: {text}"
        );
    }
    // Nothing was done: no public URL set, no session changed.
    assert_eq!(h.running.services.public_url(), None);
    let ws = format!("{}/api/events", h.base.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws.as_str())
            .expect("request");
    request
        .headers_mut()
        .insert("X-API-Key", API_KEY.parse().expect("header"));
    let refused = tokio_tungstenite::connect_async(request).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 404),
        "events socket on the public listener: {refused:?}"
    );
    // The API is where it belongs.
    assert_eq!(
        call(&h, "GET", "/api/voices", Some(API_KEY)).await.status(),
        StatusCode::OK
    );
    // Twilio only ever reaches the public listener: its routes are not on the local one.
    let sid = call_sid();
    let params = [
        ("CallSid", sid.as_str()),
        ("AccountSid", common::ACCOUNT_SID),
    ];
    let resp = common::post_signed_form(&h.api, "/twiml", &params).await;
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "/twiml on the API listener"
    );
}

/// The internet may learn that the process answers, not how many calls are live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_local_health_check_has_figures() {
    let h = harness(1000).await;
    let health = |base: &str| {
        let url = format!("{base}/healthz");
        async move {
            let resp = reqwest::get(url).await.expect("health");
            resp.json::<Value>().await.expect("json")
        }
    };
    assert_eq!(health(&h.base).await, json!({"status": "ok"}));
    assert_eq!(
        health(&h.api).await,
        json!({"status": "ok", "active_calls": 0})
    );
}

/// `VERBIO_BIND` moves only the public listener; the API stays on loopback unless `VERBIO_API_BIND`
/// says otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_binds_loopback_even_when_the_public_listener_binds_everywhere() {
    let everywhere = verbio::config::ConfigLayer::from_env(|name| {
        (name == "VERBIO_BIND").then(|| "0.0.0.0".to_string())
    })
    .expect("env");
    let from_env = verbio::config::Config::from_layers([everywhere]);
    let h = start(SimRealtimeConfig::default(), |c| {
        c.api_key = Secret::new(API_KEY);
        c.bind_host = from_env.bind_host.clone();
        c.api_bind_host = from_env.api_bind_host.clone();
    })
    .await;
    assert!(
        h.running.local_addr.ip().is_unspecified(),
        "{}",
        h.running.local_addr
    );
    assert!(
        h.running.api_addr.ip().is_loopback(),
        "{}",
        h.running.api_addr
    );
    let status = h.running.services.status();
    assert_eq!(status.api_url, format!("http://{}", h.running.api_addr));
    assert_eq!(status.local_url, format!("http://{}", h.running.local_addr));
}

/// One port cannot be both doors: a clear start-up error naming both settings.
#[tokio::test]
async fn one_port_for_both_listeners_is_refused_at_start() {
    let data = tempfile::tempdir().expect("temp dir");
    let config = verbio::config::Config {
        port: 18_099,
        api_port: 18_099,
        data_dir: data.path().to_path_buf(),
        ..verbio::config::Config::default()
    };
    let Err(err) = verbio::app::start(config).await else {
        panic!("one port for both listeners started");
    };
    let message = err.to_string();
    assert!(
        message.contains("VERBIO_API_PORT") && message.contains("VERBIO_PORT"),
        "{message}"
    );
}

/// Every route that takes a call SID or a recording id checks it the same way, before anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_in_paths_are_checked_alike_on_every_route() {
    let h = harness(1000).await;
    let mut checked = 0;
    for (method, path) in API_ROUTES {
        let (bad, message) = if path.contains("{sid}") || path.contains("/sessions/{id}") {
            ("CA%20x", "call SIDs are 1 to 64 letters, digits, - or _")
        } else if path.contains("/recording/{id}") {
            ("0", "recording ids are positive numbers")
        } else {
            continue;
        };
        let url = format!(
            "{}{}",
            h.api,
            path.replace("{sid}", bad).replace("{id}", bad)
        );
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let resp = reqwest::Client::new()
            .request(method.clone(), url)
            .header("X-API-Key", API_KEY)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let body: Value = resp.json().await.expect("JSON error body");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}");
        assert_eq!(
            body,
            json!({"error": {"code": "bad_path", "message": message}}),
            "{method} {path}"
        );
        checked += 1;
    }
    assert!(checked >= 13, "only {checked} routes take an id");
    // Dashes and underscores are fine in a SID on the recordings routes too: it is just not a call.
    let resp = call(&h, "GET", "/api/call/CA-x_1/status", Some(API_KEY)).await;
    assert_eq!(error_code(resp).await.1, "not_found");
    let resp = call(&h, "GET", "/api/call/CA-x_1/recordings", Some(API_KEY)).await;
    assert_ne!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_reads_calls_transcripts_and_catalogues() {
    let mut h = harness(1000).await;
    let key = Some(API_KEY);
    let voices: Vec<String> = call(&h, "GET", "/api/voices", key)
        .await
        .json()
        .await
        .expect("voices");
    assert_eq!(voices.len(), 10);
    assert!(voices.contains(&"marin".to_string()));
    let models: Vec<String> = call(&h, "GET", "/api/models", key)
        .await
        .json()
        .await
        .expect("models");
    assert_eq!(models[0], "gpt-realtime-2.1");
    let tools: Value = call(&h, "GET", "/api/tools", key)
        .await
        .json()
        .await
        .expect("tools");
    assert_eq!(tools[0]["name"], "end_call");

    let sid = call_sid();
    let sim = SimCall::place(
        h.caller(&sid),
        vec![
            CallerStep::Speak {
                tone_hz: 440.0,
                ms: 600,
            },
            CallerStep::WaitForAgentAudio {
                min_ms: 300,
                timeout: Duration::from_secs(10),
            },
            CallerStep::Silence(8000),
        ],
    )
    .await
    .expect("call placed");
    common::eventually(Duration::from_secs(5), "call listed", || {
        h.running.services.active_calls().len() == 1
    })
    .await;
    let active: Value = call(&h, "GET", "/api/calls/active", key)
        .await
        .json()
        .await
        .expect("active");
    assert_eq!(active[0]["call_sid"], sid.as_str());
    let status: Value = call(&h, "GET", &format!("/api/call/{sid}/status"), key)
        .await
        .json()
        .await
        .expect("status");
    assert_eq!(status["live"], true);
    sim.wait_played(300, Duration::from_secs(10))
        .await
        .expect("agent answered");
    let ended = call(&h, "POST", &format!("/api/call/{sid}/end"), key).await;
    assert_eq!(ended.status(), StatusCode::ACCEPTED);
    h.ended(&sid).await;
    let report = sim.finish().await;
    assert!(
        report.server_closed,
        "ending from the API closed the stream"
    );
    h.running.services.store.flush().await.expect("flush");

    let (status, code) =
        error_code(call(&h, "POST", &format!("/api/call/{sid}/end"), key).await).await;
    assert_eq!((status, code.as_str()), (StatusCode::CONFLICT, "conflict"));
    let (status, _) = error_code(call(&h, "POST", "/api/call/CAunknown/end", key).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = error_code(call(&h, "GET", "/api/call/CAunknown/status", key).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        error_code(call(&h, "GET", "/api/sessions/CAunknown/transcriptions", key).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let sessions: Value = call(&h, "GET", "/api/sessions?limit=10", key)
        .await
        .json()
        .await
        .expect("sessions");
    assert_eq!(sessions[0]["call_sid"], sid.as_str());
    let turns: Value = call(
        &h,
        "GET",
        &format!("/api/sessions/{sid}/transcriptions"),
        key,
    )
    .await
    .json()
    .await
    .expect("turns");
    assert!(turns.as_array().is_some_and(|t| !t.is_empty()), "{turns}");

    let (status, code) = error_code(call(&h, "GET", "/api/sessions?limit=abc", key).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "bad_query")
    );
    let (status, _) = error_code(call(&h, "GET", "/api/sessions?limit=0", key).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_are_checked() {
    let h = harness(1000).await;
    let put = |body: String| {
        reqwest::Client::new()
            .put(url(&h, "/api/settings/session"))
            .header("X-API-Key", API_KEY)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    let (status, code) = error_code(put("{not json".into()).await.expect("send")).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "malformed_json")
    );
    let (status, _) = error_code(put(r#"{"speed":"fast"}"#.into()).await.expect("send")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "wrong type");
    let (status, _) = error_code(put(r#"{"temperature":0.8}"#.into()).await.expect("send")).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the GA API has no temperature"
    );
    let (status, _) = error_code(put(r#"{"speed":5.0}"#.into()).await.expect("send")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "out of range");
    let big = format!(r#"{{"instructions":"{}"}}"#, "x".repeat(200 * 1024));
    let (status, _) = error_code(put(big).await.expect("send")).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let ok = put(r#"{"voice":"cedar","speed":1.2}"#.into())
        .await
        .expect("send");
    assert_eq!(ok.status(), StatusCode::OK);
    let now: Value = call(&h, "GET", "/api/settings/session", Some(API_KEY))
        .await
        .json()
        .await
        .expect("get");
    assert_eq!(now["voice"], "cedar");
    // The status (the window's status bar) shows the session as it is now, not as the app started.
    let ok = put(r#"{"model":"gpt-realtime-mini"}"#.into())
        .await
        .expect("send");
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(h.running.services.status().model, "gpt-realtime-mini");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_headers_and_cors() {
    let h = harness(5).await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(call(&h, "GET", "/api/voices", Some(API_KEY)).await);
    }
    let limited = statuses.pop().expect("responses");
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(retry >= 1);
    // Twilio's webhook has its own budget: call setup still works while the API is limited.
    let call = SimCall::place(
        h.caller(&call_sid()),
        vec![CallerStep::Silence(100), CallerStep::HangUp],
    )
    .await
    .expect("the webhook is not blocked by the API's limit");
    call.finish().await;

    let resp = reqwest::get(format!("{}/healthz", h.base))
        .await
        .expect("health");
    for header in [
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "content-security-policy",
    ] {
        assert!(resp.headers().contains_key(header), "{header}");
    }
    assert!(
        !resp.headers().contains_key("strict-transport-security"),
        "no HSTS over plain http"
    );

    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(Method::OPTIONS, url(&h, "/api/calls/active"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "x-api-key")
            .send()
    };
    for origin in ["tauri://localhost", "https://crm.example"] {
        let resp = preflight(origin).await.expect("preflight");
        let allowed = resp
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok());
        assert_eq!(allowed, Some(origin));
    }
    let resp = preflight("https://evil.example").await.expect("preflight");
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_socket_authenticates_by_first_message() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let mut h = harness(1000).await;
    let ws_url = format!("{}/api/events", h.api.replace("http://", "ws://"));

    let (mut bad, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .expect("upgrade");
    bad.send(Message::text(
        json!({"type": "auth", "api_key": "wrong"}).to_string(),
    ))
    .await
    .expect("send");
    match bad.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1008),
        other => panic!("expected close 1008, got {other:?}"),
    }

    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .expect("upgrade");
    ws.send(Message::text(
        json!({"type": "auth", "api_key": API_KEY}).to_string(),
    ))
    .await
    .expect("send");
    let ready = ws.next().await.expect("ready").expect("ready frame");
    assert_eq!(ready.to_text().expect("text"), r#"{"type":"ready"}"#);
    let sid = call_sid();
    let sim = SimCall::place(
        h.caller(&sid),
        vec![CallerStep::Silence(200), CallerStep::HangUp],
    )
    .await
    .expect("call placed");
    sim.finish().await;
    h.ended(&sid).await;
    let mut kinds = Vec::new();
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
        let v: Value = serde_json::from_str(msg.to_text().unwrap_or("{}")).unwrap_or_default();
        if v["call_sid"] == sid.as_str() {
            kinds.push(v["type"].as_str().unwrap_or_default().to_string());
        }
        if kinds.last().is_some_and(|k| k == "call_ended") {
            break;
        }
    }
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("call_started"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("call_ended"),
        "{kinds:?}"
    );
    let _ = AUTH_TOKEN;
}
