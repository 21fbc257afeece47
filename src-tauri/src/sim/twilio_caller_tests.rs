//! The fake caller against a tiny axum "bridge" that checks signatures and hands the socket to the test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{
    CloseFrame as AxumCloseFrame, Message as AxumMessage, WebSocket, WebSocketUpgrade,
};
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::audio::mulaw;

const TOKEN: &str = "test-auth-token";
const STEP: Duration = Duration::from_secs(3);

struct HarnessState {
    base: String,
    webhooks: Mutex<Vec<Vec<(String, String)>>>,
    refuse_ws: AtomicBool,
    sockets: mpsc::UnboundedSender<WebSocket>,
}

struct Harness {
    base: String,
    state: Arc<HarnessState>,
    sockets: mpsc::UnboundedReceiver<WebSocket>,
}

async fn twiml(
    State(state): State<Arc<HarnessState>>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let expected = signature::compute(TOKEN, &format!("{}/twiml", state.base), &form);
    if headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return (StatusCode::FORBIDDEN, "bad signature").into_response();
    }
    state.webhooks.lock().unwrap().push(form);
    let stream = format!("{}/media-stream", state.base.replace("http://", "ws://"));
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="{stream}"><Parameter name="token" value="tok&amp;&lt;1&gt;"/><Parameter name="lang" value="fr"/></Stream></Connect></Response>"#
    );
    ([("content-type", "text/xml")], body).into_response()
}

async fn media(
    State(state): State<Arc<HarnessState>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let stream = format!("{}/media-stream", state.base.replace("http://", "ws://"));
    let expected = signature::compute::<&str, &str>(TOKEN, &stream, &[]);
    let signed = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str());
    if !signed || state.refuse_ws.load(Ordering::SeqCst) {
        return (StatusCode::FORBIDDEN, "no").into_response();
    }
    ws.on_upgrade(move |socket| async move {
        let _ = state.sockets.send(socket);
    })
}

async fn harness() -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, sockets) = mpsc::unbounded_channel();
    let state = Arc::new(HarnessState {
        base: base.clone(),
        webhooks: Mutex::new(Vec::new()),
        refuse_ws: AtomicBool::new(false),
        sockets: tx,
    });
    let app = Router::new()
        .route("/twiml", post(twiml))
        .route("/media-stream", any(media))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Harness {
        base,
        state,
        sockets,
    }
}

impl Harness {
    async fn socket(&mut self) -> Bridge {
        let ws = tokio::time::timeout(STEP, self.sockets.recv())
            .await
            .unwrap()
            .unwrap();
        Bridge {
            ws,
            stream_sid: String::new(),
        }
    }
}

/// The test's side of the media socket: plays the bridge.
struct Bridge {
    ws: WebSocket,
    stream_sid: String,
}

impl Bridge {
    async fn recv(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(STEP, self.ws.recv())
                .await
                .expect("caller went quiet")
            {
                Some(Ok(AxumMessage::Text(text))) => {
                    return Some(
                        serde_json::from_str(text.as_str())
                            .unwrap_or(Value::String(text.to_string())),
                    )
                }
                Some(Ok(AxumMessage::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Reads `connected` and `start`; returns `start`.
    async fn open(&mut self) -> Value {
        let connected = self.recv().await.unwrap();
        assert_eq!(
            connected,
            json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        );
        let start = self.recv().await.unwrap();
        assert_eq!(start["event"], "start");
        self.stream_sid = start["streamSid"].as_str().unwrap().to_string();
        start
    }

    /// Reads until a message with `event == kind`; returns everything read.
    async fn until(&mut self, kind: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(message) = self.recv().await {
            let done = message["event"] == kind;
            seen.push(message);
            if done {
                return seen;
            }
        }
        panic!(
            "socket ended before {kind}: {:?}",
            seen.iter().map(|m| m["event"].clone()).collect::<Vec<_>>()
        );
    }

    /// Reads (and returns) whatever arrives for `window`.
    async fn during(&mut self, window: Duration) -> Vec<Value> {
        let deadline = Instant::now() + window;
        let mut seen = Vec::new();
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, self.ws.recv()).await {
            if let AxumMessage::Text(text) = message {
                seen.push(
                    serde_json::from_str(text.as_str()).unwrap_or(Value::String(text.to_string())),
                );
            }
        }
        seen
    }

    async fn send(&mut self, message: Value) {
        self.ws
            .send(AxumMessage::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    async fn send_audio(&mut self, audio: &[u8], chunk: usize) {
        for part in audio.chunks(chunk) {
            let payload = base64::engine::general_purpose::STANDARD.encode(part);
            self.send(json!({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})).await;
        }
    }

    async fn send_mark(&mut self, name: &str) {
        self.send(json!({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}))
            .await;
    }
}

fn payload(message: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(message["media"]["payload"].as_str().unwrap())
        .unwrap()
}

#[tokio::test]
async fn signed_call_streams_and_echoes_marks_only_after_playout() {
    let mut h = harness().await;
    let config = CallerConfig::new(&h.base, TOKEN);
    let script = vec![
        CallerStep::WaitForAgentAudio {
            min_ms: 400,
            timeout: STEP,
        },
        CallerStep::Silence(60),
        CallerStep::HangUp,
    ];
    let call = SimCall::place(config.clone(), script).await.unwrap();
    let mut bridge = h.socket().await;
    let start = bridge.open().await;
    assert_eq!(start["sequenceNumber"], "1");
    let sid = start["streamSid"].as_str().unwrap();
    assert!(sid.starts_with("MZ") && sid.len() == 34 && sid == call.stream_sid());
    assert_eq!(start["start"]["callSid"], config.call_sid.as_str());
    assert_eq!(start["start"]["accountSid"], config.account_sid.as_str());
    assert_eq!(start["start"]["tracks"], json!(["inbound"]));
    assert_eq!(
        start["start"]["customParameters"],
        json!({"token": "tok&<1>", "lang": "fr"})
    );
    assert_eq!(
        start["start"]["mediaFormat"],
        json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
    );

    let webhook = h.state.webhooks.lock().unwrap()[0].clone();
    for (k, v) in [
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("ApiVersion", "2010-04-01"),
    ] {
        assert!(
            webhook.contains(&(k.to_string(), v.to_string())),
            "{k} missing in {webhook:?}"
        );
    }

    // The line sends silence from the start, 20 ms apart on the stream clock.
    let first: Vec<Value> = [bridge.recv().await.unwrap(), bridge.recv().await.unwrap()].into();
    for (i, media) in first.iter().enumerate() {
        assert_eq!(media["event"], "media");
        assert_eq!(media["sequenceNumber"], (i + 2).to_string());
        assert_eq!(media["media"]["chunk"], (i + 1).to_string());
        assert_eq!(media["media"]["timestamp"], (i * 20).to_string());
        assert_eq!(media["media"]["track"], "inbound");
        assert_eq!(payload(media), vec![mulaw::SILENCE; 160]);
    }

    let answer = mulaw::tone(700.0, 400, 0.5);
    bridge.send_audio(&answer, 800).await;
    bridge.send_mark("m1").await;
    let sent_at = Instant::now();
    let read = bridge.until("mark").await;
    let waited = sent_at.elapsed();
    assert!(
        waited >= Duration::from_millis(395),
        "mark echoed after {waited:?}, before its 400 ms played"
    );
    assert!(
        waited < Duration::from_millis(600),
        "mark echoed late: {waited:?}"
    );
    let echo = read.last().unwrap();
    assert_eq!(echo["mark"]["name"], "m1");
    assert_eq!(echo["streamSid"], sid);
    assert!(echo["sequenceNumber"].as_str().is_some());

    let stop = bridge.until("stop").await.pop().unwrap();
    assert_eq!(
        stop["stop"],
        json!({"accountSid": config.account_sid, "callSid": config.call_sid})
    );
    assert!(bridge.recv().await.is_none(), "caller closes after stop");

    let report = call.finish().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.heard, answer);
    assert_eq!(report.heard_ms, 400);
    assert_eq!(report.heard_segments.len(), 1);
    assert_eq!(
        report.heard_segments[0].end_ms - report.heard_segments[0].start_ms,
        400
    );
    assert_eq!((report.marks_received, report.marks_echoed), (1, 1));
    assert!(!report.mark_echoes[0].via_clear);
    assert!(!report.server_closed && report.close_code.is_none());
    assert!(report.media_frames_sent >= 23);
    assert_eq!(report.received.len(), 5, "four media messages and a mark");
}

#[tokio::test]
async fn clear_drops_audio_echoes_pending_marks_and_records_played_ms() {
    let mut h = harness().await;
    let call = SimCall::place(
        CallerConfig::new(&h.base, TOKEN),
        vec![CallerStep::Silence(5000)],
    )
    .await
    .unwrap();
    let mut bridge = h.socket().await;
    bridge.open().await;
    bridge.send_audio(&mulaw::tone(500.0, 2000, 0.5), 160).await;
    bridge.send_mark("a").await;
    bridge
        .send_audio(&mulaw::tone(600.0, 1000, 0.5), 4000)
        .await;
    bridge.send_mark("b").await;
    bridge.during(Duration::from_millis(300)).await;
    bridge
        .send(json!({"event": "clear", "streamSid": bridge.stream_sid}))
        .await;
    let cleared_at = Instant::now();
    let mut echoes = Vec::new();
    while echoes.len() < 2 {
        let message = bridge.recv().await.unwrap();
        if message["event"] == "mark" {
            echoes.push(message["mark"]["name"].as_str().unwrap().to_string());
        }
    }
    assert!(
        cleared_at.elapsed() < Duration::from_millis(100),
        "echoes not immediate"
    );
    assert_eq!(echoes, vec!["a", "b"]);
    // Nothing more plays after the clear. `played_ms` is published at the caller's next tick (and then
    // includes the part of the frame the clear cut), so read it once a few ticks have passed.
    bridge.during(Duration::from_millis(60)).await;
    let played = call.played_ms();
    bridge.during(Duration::from_millis(100)).await;
    assert_eq!(call.played_ms(), played);

    call.hang_up_now();
    bridge.until("stop").await;
    let report = call.finish().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.clears.len(), 1);
    let at_clear = report.played_ms_at_clear[0];
    assert!(
        (240..=380).contains(&at_clear),
        "played {at_clear} ms before the clear"
    );
    assert_eq!(report.heard_ms, at_clear);
    assert_eq!(
        report.heard.len() as u64 / 8,
        at_clear,
        "heard exactly what played, to the byte"
    );
    assert!(report.mark_echoes.iter().all(|m| m.via_clear));
    assert_eq!(report.marks_echoed, 2);
}

#[tokio::test]
async fn barge_in_step_speaks_over_the_agent_after_after_ms() {
    let mut h = harness().await;
    let script = vec![
        CallerStep::SpeakWhenAgentHasPlayed {
            after_ms: 300,
            tone_hz: 440.0,
            ms: 200,
            timeout: STEP,
        },
        CallerStep::Silence(100),
    ];
    let call = SimCall::place(CallerConfig::new(&h.base, TOKEN), script)
        .await
        .unwrap();
    let mut bridge = h.socket().await;
    bridge.open().await;
    bridge
        .send_audio(&mulaw::tone(500.0, 2000, 0.5), 1600)
        .await;
    let loud = loop {
        let message = bridge.recv().await.unwrap();
        if message["event"] == "media" && mulaw::rms(&payload(&message)) > 500.0 {
            break message;
        }
    };
    bridge
        .send(json!({"event": "clear", "streamSid": bridge.stream_sid}))
        .await;
    bridge.until("stop").await;
    let report = call.finish().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let spoke_at: u64 = loud["media"]["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let agent_from = report.heard_segments[0].start_ms;
    assert!(
        (300..=340).contains(&(spoke_at - agent_from)),
        "spoke {} ms into the agent audio",
        spoke_at - agent_from
    );
    assert!(report.played_ms_at_clear[0] >= 300);
}

#[tokio::test]
async fn unsigned_or_missigned_calls_and_refused_streams_are_errors() {
    let h = harness().await;
    let unsigned = CallerConfig {
        sign: false,
        ..CallerConfig::new(&h.base, TOKEN)
    };
    match SimCall::place(unsigned, vec![]).await {
        Err(SimError::Webhook { status: 403, body }) => assert_eq!(body, "bad signature"),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let wrong = CallerConfig::new(&h.base, "not-the-token");
    assert!(matches!(
        SimCall::place(wrong, vec![]).await,
        Err(SimError::Webhook { status: 403, .. })
    ));
    h.state.refuse_ws.store(true, Ordering::SeqCst);
    let refused = SimCall::place(CallerConfig::new(&h.base, TOKEN), vec![]).await;
    assert!(
        matches!(refused, Err(SimError::Handshake { status: 403, .. })),
        "{:?}",
        refused.map(|_| ())
    );
}

#[tokio::test]
async fn gap_dtmf_raw_token_override_and_tags() {
    let mut h = harness().await;
    let config = CallerConfig {
        token_override: Some("forged".into()),
        tag_frames: true,
        ..CallerConfig::new(&h.base, TOKEN)
    };
    let script = vec![
        CallerStep::Silence(40),
        CallerStep::Gap(100),
        CallerStep::Dtmf('7'),
        CallerStep::Raw("not json".into()),
        CallerStep::Speak {
            tone_hz: 300.0,
            ms: 40,
        },
        CallerStep::HangUp,
    ];
    let call = SimCall::place(config, script).await.unwrap();
    assert_eq!(
        call.custom_parameters()
            .iter()
            .find(|(k, _)| k == "token")
            .unwrap()
            .1,
        "forged"
    );
    let mut bridge = h.socket().await;
    let start = bridge.open().await;
    assert_eq!(start["start"]["customParameters"]["token"], "forged");
    let messages = bridge.until("stop").await;
    let report = call.finish().await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    let events: Vec<&str> = messages
        .iter()
        .map(|m| m["event"].as_str().unwrap_or("raw"))
        .collect();
    assert_eq!(
        events,
        vec!["media", "media", "dtmf", "raw", "media", "media", "stop"]
    );
    assert_eq!(messages[3], Value::String("not json".into()));
    assert_eq!(
        messages[2]["dtmf"],
        json!({"track": "inbound_track", "digit": "7"})
    );
    let media: Vec<&Value> = messages.iter().filter(|m| m["event"] == "media").collect();
    let stamps: Vec<&str> = media
        .iter()
        .map(|m| m["media"]["timestamp"].as_str().unwrap())
        .collect();
    assert_eq!(
        stamps,
        vec!["0", "20", "140", "160"],
        "a 100 ms gap advances the clock"
    );
    let chunks: Vec<&str> = media
        .iter()
        .map(|m| m["media"]["chunk"].as_str().unwrap())
        .collect();
    assert_eq!(chunks, vec!["1", "2", "3", "4"]);
    for (i, m) in media.iter().enumerate() {
        assert_eq!(read_tag(&payload(m)), Some(i as u32 + 1));
    }
    assert!(mulaw::rms(&payload(media[0])) < 50.0 && mulaw::rms(&payload(media[2])) > 5000.0);
    let seqs: Vec<u64> = messages
        .iter()
        .filter_map(|m| {
            m.get("sequenceNumber")
                .and_then(Value::as_str)
                .map(|s| s.parse().unwrap())
        })
        .collect();
    assert_eq!(seqs, (2..=7).collect::<Vec<u64>>());
    assert_eq!(report.media_frames_sent, 4);
}

#[tokio::test]
async fn bridge_closing_the_socket_ends_the_call_with_its_code() {
    let mut h = harness().await;
    let call = SimCall::place(
        CallerConfig::new(&h.base, TOKEN),
        vec![CallerStep::Silence(10_000)],
    )
    .await
    .unwrap();
    let mut bridge = h.socket().await;
    bridge.open().await;
    bridge
        .send(json!({"event": "media", "streamSid": "MZwrong", "media": {"payload": ""}}))
        .await;
    let frame = AxumCloseFrame {
        code: 1011,
        reason: "bridge failed".into(),
    };
    bridge
        .ws
        .send(AxumMessage::Close(Some(frame)))
        .await
        .unwrap();
    let started = Instant::now();
    let report = call.finish().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(report.server_closed);
    assert_eq!(report.close_code, Some(1011));
    assert_eq!(
        report.errors.len(),
        1,
        "wrong streamSid noted: {:?}",
        report.errors
    );
}

#[test]
fn stream_on_the_public_host_is_dialled_through_the_bridge() {
    let url = connect_url(
        "wss://abc.ngrok.app/media-stream?x=1",
        "https://abc.ngrok.app",
        "http://127.0.0.1:4000",
    )
    .unwrap();
    assert_eq!(url.as_str(), "ws://127.0.0.1:4000/media-stream?x=1");
    let url = connect_url(
        "ws://127.0.0.1:4000/media-stream",
        "http://127.0.0.1:4000",
        "http://127.0.0.1:4000",
    )
    .unwrap();
    assert_eq!(url.as_str(), "ws://127.0.0.1:4000/media-stream");
    assert!(connect_url("not a url", "http://a", "http://b").is_err());
}
