//! HTTP tools against a local tool server (`sim::tool_server`): what the endpoint receives, the
//! signature it checks, and what the model hears for every kind of failure.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use verbio::sim::tool_server::{self, ToolServer};
use verbio::tools::http::{sign, verify, HttpTools, ToolEndpoint, SIGNATURE_HEADER};
use verbio::tools::{FailureKind, ToolRequest, MAX_OUTPUT_BYTES};
use verbio::types::Secret;

const SECRET: &str = "tool-secret-for-tests-0123456789abcdef";

fn request() -> ToolRequest {
    ToolRequest {
        call_sid: "CA0123456789abcdef0123456789abcdef".to_string(),
        call_id: "call_abc123".to_string(),
        tool: "lookup_order".to_string(),
        arguments: json!({"order": "42", "include": ["status", "eta"]}),
    }
}

fn endpoint(url: String, timeout_ms: u64) -> ToolEndpoint {
    ToolEndpoint { url, timeout_ms }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn signed_server() -> ToolServer {
    ToolServer::start(Some(SECRET.as_bytes().to_vec())).await
}

#[tokio::test]
async fn a_signed_call_returns_the_endpoints_json_and_sends_the_documented_body() {
    let server = signed_server().await;
    let tools = HttpTools::new();
    let output = tools
        .call(
            &endpoint(server.url("/ok"), 8000),
            Some(&Secret::new(SECRET)),
            &request(),
        )
        .await
        .expect("the tool answers");
    assert_eq!(output, tool_server::OK_BODY);

    let got = server.requests();
    assert_eq!(got.len(), 1);
    let got = &got[0];
    assert!(got.verified, "the server checked the signature");
    assert_eq!(got.method, "POST");
    assert_eq!(got.header("content-type"), Some("application/json"));
    let signature = got.header(SIGNATURE_HEADER).unwrap();
    assert!(signature.starts_with("t=") && signature.contains(",v1="));
    // Exactly the documented shape, in the documented order.
    let text = std::str::from_utf8(&got.body).unwrap();
    assert_eq!(
        text,
        r#"{"call_sid":"CA0123456789abcdef0123456789abcdef","tool":"lookup_order","call_id":"call_abc123","arguments":{"include":["status","eta"],"order":"42"}}"#
    );
    assert_eq!(
        got.json().unwrap(),
        json!({
            "call_sid": "CA0123456789abcdef0123456789abcdef",
            "tool": "lookup_order",
            "call_id": "call_abc123",
            "arguments": {"order": "42", "include": ["status", "eta"]},
        })
    );
    assert_eq!(
        verify(SECRET.as_bytes(), signature, &got.body, now(), 60),
        Ok(())
    );
}

#[tokio::test]
async fn an_unsigned_tool_sends_no_signature_and_plain_text_passes_through() {
    let server = ToolServer::start(None).await;
    let tools = HttpTools::new();
    let output = tools
        .call(&endpoint(server.url("/text"), 8000), None, &request())
        .await
        .unwrap();
    assert_eq!(output, tool_server::TEXT_BODY);
    let got = &server.requests()[0];
    assert_eq!(got.header(SIGNATURE_HEADER), None);
    assert!(!got.verified);
}

#[tokio::test]
async fn a_slow_endpoint_times_out_within_the_tools_timeout() {
    let server = signed_server().await;
    let tools = HttpTools::new();
    let started = Instant::now();
    let failure = tools
        .call(
            &endpoint(server.url("/slow"), 500),
            Some(&Secret::new(SECRET)),
            &request(),
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(failure.kind, FailureKind::Timeout);
    assert_eq!(
        failure.message,
        "tool lookup_order did not answer within 0.5 s"
    );
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_millis(900), "{took:?}");
}

#[tokio::test]
async fn a_500_becomes_http_status_with_a_snippet_and_no_query() {
    let server = signed_server().await;
    let tools = HttpTools::new();
    let url = format!("{}?api_token=hush-hush", server.url("/500"));
    let failure = tools
        .call(&endpoint(url, 8000), Some(&Secret::new(SECRET)), &request())
        .await
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::HttpStatus);
    assert_eq!(
        failure.message,
        format!(
            "tool lookup_order failed: its endpoint answered HTTP 500 (Internal Server Error): {}",
            tool_server::ERROR_BODY
        )
    );
    assert!(!failure.message.contains("hush") && !failure.message.contains(SECRET));
}

#[tokio::test]
async fn cut_json_is_malformed() {
    let server = signed_server().await;
    let failure = HttpTools::new()
        .call(
            &endpoint(server.url("/malformed"), 8000),
            Some(&Secret::new(SECRET)),
            &request(),
        )
        .await
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::Malformed);
    assert!(
        failure
            .message
            .starts_with("tool lookup_order answered with broken JSON"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn a_huge_body_is_too_large_and_reading_stops_at_the_limit() {
    let server = signed_server().await;
    let tools = HttpTools::new();
    let secret = Secret::new(SECRET);
    let failure = tools
        .call(
            &endpoint(server.url("/huge"), 8000),
            Some(&secret),
            &request(),
        )
        .await
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::TooLarge);
    assert_eq!(
        failure.message,
        format!(
            "tool lookup_order answered with more than {} KB, too much to use",
            MAX_OUTPUT_BYTES / 1024
        )
    );

    // A body that never ends: a client that buffered it whole would hit the timeout (or run out of
    // memory); this one gives up as soon as it has more than the limit.
    let started = Instant::now();
    let failure = tools
        .call(
            &endpoint(server.url("/endless"), 5000),
            Some(&secret),
            &request(),
        )
        .await
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::TooLarge);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // And the connection is dropped: the server stops streaming.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after_drop = server.streamed_bytes();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.streamed_bytes(), after_drop, "still streaming");
    assert!(
        after_drop < 64 * 1024 * 1024,
        "{after_drop} bytes were streamed"
    );
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let failure = HttpTools::new()
        .call(
            &endpoint(format!("http://127.0.0.1:{port}/tool?key=hush"), 2000),
            None,
            &request(),
        )
        .await
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::Unreachable);
    assert_eq!(
        failure.message,
        format!("tool lookup_order could not reach 127.0.0.1:{port} (connection refused)")
    );
}

#[tokio::test]
async fn a_wrong_missing_or_stale_signature_is_refused_by_the_endpoint() {
    let server = signed_server().await;
    let tools = HttpTools::new();
    for secret in [Some(Secret::new("not-the-right-secret-000000")), None] {
        let failure = tools
            .call(
                &endpoint(server.url("/ok"), 8000),
                secret.as_ref(),
                &request(),
            )
            .await
            .unwrap_err();
        assert_eq!(failure.kind, FailureKind::HttpStatus);
        assert!(
            failure
                .message
                .starts_with("tool lookup_order failed: its endpoint answered HTTP 401 (Unauthorized): bad signature"),
            "{}",
            failure.message
        );
        assert!(!failure.message.contains("not-the-right-secret"));
    }
    assert!(server.requests().iter().all(|r| !r.verified));

    // A request captured and replayed ten minutes later.
    let body =
        br#"{"call_sid":"CA1","tool":"lookup_order","call_id":"c1","arguments":{}}"#.to_vec();
    let stale = sign(SECRET.as_bytes(), now() - 600, &body);
    let answer = reqwest::Client::new()
        .post(server.url("/ok"))
        .header(SIGNATURE_HEADER, stale)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    // The same body signed now passes.
    let fresh = sign(SECRET.as_bytes(), now(), &body);
    let answer = reqwest::Client::new()
        .post(server.url("/ok"))
        .header(SIGNATURE_HEADER, fresh)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn an_invalid_endpoint_is_never_called() {
    let failure = HttpTools::new()
        .call(
            &endpoint("http://tools.example.com/order?token=hush".into(), 8000),
            None,
            &request(),
        )
        .await
        .unwrap_err();
    assert_eq!(failure.kind, FailureKind::Unreachable);
    assert!(failure.message.contains("only allowed to this machine"));
    assert!(!failure.message.contains("hush"));
}

#[test]
fn validate_refuses_plain_http_to_public_hosts_and_userinfo() {
    let check = |url: &str| endpoint(url.to_string(), 8000).validate();
    assert!(check("http://tools.example.com/order").is_err());
    assert!(check("http://8.8.8.8/order").is_err());
    assert!(check("https://tools.example.com/order").is_ok());
    assert!(check("http://127.0.0.1:8080/order").is_ok());
    assert!(check("http://localhost:8080/order").is_ok());
    assert!(check("http://[::1]:8080/order").is_ok());
    let why = check("https://admin:hunter2@tools.example.com/order").unwrap_err();
    assert!(why.contains("user name or password") && !why.contains("hunter2"));
    assert!(endpoint("https://tools.example.com".into(), 50)
        .validate()
        .is_err());
    assert!(endpoint("https://tools.example.com".into(), 120_000)
        .validate()
        .is_err());
}

#[test]
fn verify_refuses_a_replayed_old_timestamp_and_a_tampered_body() {
    let body = br#"{"call_sid":"CA1","tool":"t","call_id":"c","arguments":{"amount":10}}"#;
    let t = now();
    let header = sign(SECRET.as_bytes(), t, body);
    assert_eq!(verify(SECRET.as_bytes(), &header, body, t + 5, 300), Ok(()));
    let replay = verify(SECRET.as_bytes(), &header, body, t + 3600, 300).unwrap_err();
    assert!(replay.contains("replay"), "{replay}");
    let tampered = br#"{"call_sid":"CA1","tool":"t","call_id":"c","arguments":{"amount":1000}}"#;
    assert!(verify(SECRET.as_bytes(), &header, tampered, t, 300).is_err());
    // Moving the timestamp forward does not help: it is under the MAC.
    let moved = header.replacen(&format!("t={t}"), &format!("t={}", t + 3600), 1);
    assert!(verify(SECRET.as_bytes(), &moved, body, t + 3600, 300).is_err());
}
