//! The fake Realtime server against a tiny in-test client speaking the GA protocol.

use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::*;
use crate::audio::mulaw;

const STEP: Duration = Duration::from_secs(3);

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

async fn connect_with(
    server: &SimRealtimeServer,
    headers: &[(&str, &str)],
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("{}?model=gpt-realtime-2.1", server.url()).into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(Client { ws })
}

async fn connect(server: &SimRealtimeServer) -> Client {
    let mut client = connect_with(server, &[("Authorization", "Bearer sk-test")])
        .await
        .unwrap();
    let created = client.next_event().await;
    assert_eq!(created["type"], "session.created");
    client
}

fn ga_session_update() -> Value {
    json!({"type": "session.update", "session": {
        "type": "realtime", "instructions": "Be brief.", "output_modalities": ["audio"],
        "audio": {
            "input": {"format": {"type": "audio/pcmu"}, "transcription": {"model": "gpt-4o-mini-transcribe"}},
            "output": {"format": {"type": "audio/pcmu"}, "voice": "cedar"}
        }
    }})
}

fn append(audio: &[u8]) -> Value {
    json!({"type": "input_audio_buffer.append", "audio": base64::engine::general_purpose::STANDARD.encode(audio)})
}

fn speech_then_silence(speech_ms: u32, silence_ms: u32) -> Vec<u8> {
    let mut audio = mulaw::tone(300.0, speech_ms, 0.5);
    audio.extend(std::iter::repeat_n(mulaw::SILENCE, silence_ms as usize * 8));
    audio
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn delta_bytes(events: &[Value]) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .map(|e| {
            base64::engine::general_purpose::STANDARD
                .decode(e["delta"].as_str().unwrap())
                .unwrap()
                .len()
        })
        .sum()
}

impl Client {
    async fn send(&mut self, event: Value) {
        self.ws
            .send(Message::text(event.to_string()))
            .await
            .unwrap();
    }

    async fn next_message(
        &mut self,
    ) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
        tokio::time::timeout(STEP, self.ws.next())
            .await
            .expect("server went quiet")
    }

    async fn next_event(&mut self) -> Value {
        loop {
            match self.next_message().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(text.as_str()).unwrap()
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    /// Every event up to and including the first of type `kind`.
    async fn until(&mut self, kind: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let event = self.next_event().await;
            let done = event["type"] == kind;
            seen.push(event);
            if done {
                return seen;
            }
        }
    }

    /// Every event that arrives within `window`.
    async fn during(&mut self, window: Duration) -> Vec<Value> {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout_at(deadline, self.ws.next()).await
        {
            seen.push(serde_json::from_str(text.as_str()).unwrap());
        }
        seen
    }
}

fn fast() -> SimRealtimeConfig {
    SimRealtimeConfig {
        speed_factor: f64::INFINITY,
        ..SimRealtimeConfig::default()
    }
}

#[tokio::test]
async fn vad_turn_gets_transcript_and_the_whole_answer() {
    let config = SimRealtimeConfig {
        script: vec![AgentTurn::with_tone("hi there", 600.0, 500)],
        ..fast()
    };
    let server = SimRealtimeServer::start(config).await.unwrap();
    let mut client = connect_with(&server, &[("Authorization", "Bearer sk-test")])
        .await
        .unwrap();
    let created = client.next_event().await;
    assert_eq!(created["session"]["type"], "realtime");
    assert_eq!(created["session"]["model"], "gpt-realtime-2.1");

    client.send(ga_session_update()).await;
    let updated = client.next_event().await;
    assert_eq!(updated["type"], "session.updated");
    assert_eq!(updated["session"]["audio"]["output"]["voice"], "cedar");
    assert_eq!(
        updated["session"]["audio"]["input"]["turn_detection"]["type"], "server_vad",
        "merged, not replaced"
    );

    client.send(append(&speech_then_silence(400, 500))).await;
    let events = client.until("response.done").await;
    // Audio and transcript deltas interleave; the shape folds them into one step each.
    let mut shape: Vec<&str> = kinds(&events)
        .into_iter()
        .filter(|k| *k != "response.output_audio_transcript.delta")
        .collect();
    shape.dedup();
    assert!(kinds(&events).contains(&"response.output_audio_transcript.delta"));
    assert_eq!(
        shape,
        vec![
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.input_audio_transcription.completed",
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
            "response.output_audio.delta",
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
    );
    assert_eq!(events[0]["audio_start_ms"], 0);
    assert_eq!(
        events[1]["audio_end_ms"], 800,
        "400 ms speech + 400 ms silence_ms"
    );
    assert_eq!(events[0]["item_id"], events[2]["item_id"]);
    assert_eq!(events[3]["item"]["role"], "user");
    assert_eq!(events[4]["transcript"], "caller turn 1");
    assert_eq!(delta_bytes(&events), 500 * 8);
    assert_eq!(
        kinds(&events)
            .iter()
            .filter(|k| **k == "response.output_audio.delta")
            .count(),
        5
    );
    let transcript = events
        .iter()
        .find(|e| e["type"] == "response.output_audio_transcript.done")
        .unwrap();
    assert_eq!(transcript["transcript"], "hi there");
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "completed");
    assert!(events.iter().all(|e| e["event_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("event_"))));

    let log = &server.sessions()[0];
    assert_eq!(log.model.as_deref(), Some("gpt-realtime-2.1"));
    assert!(log.authorization_present && log.rejected.is_none() && !log.closed);
    assert_eq!(log.appended_audio_bytes, 900 * 8);
    assert_eq!(log.client_events.len(), 2);
    assert_eq!(log.audio_sent_bytes, 4000);
    assert_eq!(
        (
            log.responses_started,
            log.responses_completed,
            log.speech_started
        ),
        (1, 1, 1)
    );
    assert_eq!(
        log.session_config.as_ref().unwrap()["instructions"],
        "Be brief."
    );

    // The second turn uses the next transcript; the script's last turn repeats.
    client.send(append(&speech_then_silence(200, 400))).await;
    let events = client.until("response.done").await;
    let transcript = events
        .iter()
        .find(|e| e["type"] == "conversation.item.input_audio_transcription.completed");
    assert_eq!(transcript.unwrap()["transcript"], "caller turn 2");
    assert_eq!(delta_bytes(&events), 500 * 8);

    drop(client);
    server.wait_for(|s| s[0].closed, STEP).await.unwrap();
}

#[tokio::test]
async fn answer_is_paced_at_the_speed_factor() {
    let config = SimRealtimeConfig {
        speed_factor: 2.0,
        delta_ms: 100,
        script: vec![AgentTurn::with_tone("paced", 500.0, 600)],
        ..SimRealtimeConfig::default()
    };
    let server = SimRealtimeServer::start(config).await.unwrap();
    let mut client = connect(&server).await;
    client
        .send(json!({"type": "response.create", "response": {"instructions": "Greet the caller."}}))
        .await;
    let started = tokio::time::Instant::now();
    let events = client.until("response.done").await;
    let elapsed = started.elapsed();
    assert_eq!(delta_bytes(&events), 4800);
    // Six 100 ms chunks at twice real time: the last one is due 250 ms after the first.
    assert!(
        elapsed >= Duration::from_millis(240),
        "too fast: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(600),
        "too slow: {elapsed:?}"
    );
    let log = &server.sessions()[0];
    assert_eq!(log.response_creates, 1);
    assert_eq!(
        log.response_requests[0]["instructions"],
        "Greet the caller."
    );
}

#[tokio::test]
async fn truncate_is_checked_against_the_audio_sent() {
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let mut client = connect(&server).await;
    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.done").await;
    let item_id = events
        .iter()
        .find(|e| e["type"] == "response.output_item.added")
        .unwrap()["item"]["id"]
        .clone();
    assert_eq!(delta_bytes(&events), 1200 * 8, "default turn: 1200 ms");

    let truncate = |ms: u64, item: &Value| json!({"type": "conversation.item.truncate", "item_id": item, "content_index": 0, "audio_end_ms": ms});
    client.send(truncate(1201, &item_id)).await;
    let error = client.next_event().await;
    assert_eq!(
        (error["type"].as_str(), error["error"]["code"].as_str()),
        (Some("error"), Some("invalid_value"))
    );
    client.send(truncate(700, &json!("item_unknown"))).await;
    assert_eq!(client.next_event().await["error"]["code"], "invalid_value");
    client.send(truncate(1200, &item_id)).await;
    let truncated = client.next_event().await;
    assert_eq!(truncated["type"], "conversation.item.truncated");
    assert_eq!(
        (
            truncated["item_id"].clone(),
            truncated["audio_end_ms"].clone()
        ),
        (item_id.clone(), json!(1200))
    );

    let log = &server.sessions()[0];
    let item = item_id.as_str().unwrap().to_string();
    assert_eq!(
        log.truncates,
        vec![
            (item.clone(), 1201),
            ("item_unknown".into(), 700),
            (item, 1200)
        ]
    );
    assert_eq!(log.errors_sent, vec!["invalid_value", "invalid_value"]);
}

#[tokio::test]
async fn caller_speech_cancels_the_response_at_once() {
    let config = SimRealtimeConfig {
        speed_factor: 1.0,
        script: vec![AgentTurn::with_tone("long answer", 700.0, 3000)],
        ..SimRealtimeConfig::default()
    };
    let server = SimRealtimeServer::start(config).await.unwrap();
    let mut client = connect(&server).await;
    client.send(json!({"type": "response.create"})).await;
    let before = client.until("response.output_audio.delta").await;
    client.send(append(&mulaw::tone(300.0, 100, 0.5))).await;
    let events = client.until("response.done").await;
    assert_eq!(events.last().unwrap()["response"]["status"], "cancelled");
    assert_eq!(
        events.last().unwrap()["response"]["status_details"]["reason"],
        "turn_detected"
    );
    let speech = events
        .iter()
        .position(|e| e["type"] == "input_audio_buffer.speech_started")
        .unwrap();
    assert!(speech < events.len() - 1);
    let after = client.during(Duration::from_millis(300)).await;
    assert!(
        after
            .iter()
            .all(|e| e["type"] != "response.output_audio.delta"),
        "deltas after cancel: {after:?}"
    );
    let sent = server.sessions()[0].audio_sent_bytes as usize;
    assert_eq!(sent, delta_bytes(&before) + delta_bytes(&events));
    assert!(sent < 3000 * 8);
    assert_eq!(server.sessions()[0].responses_cancelled, 1);
}

#[tokio::test]
async fn beta_header_gets_an_error_and_close_4000() {
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let mut client = connect_with(
        &server,
        &[
            ("Authorization", "Bearer sk"),
            ("OpenAI-Beta", "realtime=v1"),
        ],
    )
    .await
    .unwrap();
    let error = client.next_event().await;
    assert_eq!(error["error"]["code"], "beta_api_shape_disabled");
    match client.next_message().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4000),
        other => panic!("expected close 4000, got {other:?}"),
    }
    let log = server.wait_for(|s| s[0].closed, STEP).await.unwrap();
    assert!(log[0].beta_header);
}

#[tokio::test]
async fn handshake_needs_a_bearer_token_and_obeys_reject() {
    use tokio_tungstenite::tungstenite::Error;
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let status = |r: Result<Client, Error>| match r {
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => 101,
    };
    assert_eq!(status(connect_with(&server, &[]).await), 401);
    assert_eq!(
        status(connect_with(&server, &[("Authorization", "Bearer ")]).await),
        401
    );
    server.set_reject_connections(true);
    assert_eq!(
        status(connect_with(&server, &[("Authorization", "Bearer sk")]).await),
        503
    );
    server.set_reject_connections(false);
    let _client = connect(&server).await;
    let rejected: Vec<Option<u16>> = server.sessions().iter().map(|s| s.rejected).collect();
    assert_eq!(rejected, vec![Some(401), Some(401), Some(503), None]);
    assert_eq!(server.accepted_sessions().len(), 1);
    assert!(!server.sessions()[0].authorization_present);
}

#[tokio::test]
async fn bad_input_gets_errors_and_the_session_stays_open() {
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let mut client = connect(&server).await;
    let code = |e: Value| e["error"]["code"].as_str().unwrap().to_string();

    client
        .send(json!({"type": "input_audio_buffer.append", "audio": "***not base64***"}))
        .await;
    assert_eq!(code(client.next_event().await), "invalid_value");
    client.ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(code(client.next_event().await), "invalid_json");
    client.send(json!({"type": "response.audio.delta"})).await;
    assert_eq!(code(client.next_event().await), "invalid_value");
    for beta in [
        json!({"type": "realtime", "input_audio_format": "g711_ulaw"}),
        json!({"type": "realtime", "voice": "alloy"}),
        json!({"type": "realtime", "modalities": ["audio", "text"]}),
        json!({"type": "realtime", "temperature": 0.8}),
        json!({"type": "realtime", "turn_detection": {"type": "server_vad"}}),
    ] {
        client
            .send(json!({"type": "session.update", "session": beta}))
            .await;
        let error = client.next_event().await;
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert_eq!(error["error"]["code"], "unknown_parameter");
        let field = beta
            .as_object()
            .unwrap()
            .keys()
            .find(|k| *k != "type")
            .unwrap()
            .clone();
        assert!(error["error"]["message"].as_str().unwrap().contains(&field));
    }
    client
        .send(json!({"type": "session.update", "session": {"instructions": "x"}}))
        .await;
    assert_eq!(
        code(client.next_event().await),
        "missing_required_parameter"
    );
    client.send(json!({"type": "response.cancel"})).await;
    assert_eq!(
        code(client.next_event().await),
        "response_cancel_not_active"
    );
    client
        .send(json!({"type": "input_audio_buffer.commit"}))
        .await;
    assert_eq!(
        code(client.next_event().await),
        "input_audio_buffer_commit_empty"
    );

    client.send(ga_session_update()).await;
    assert_eq!(client.next_event().await["type"], "session.updated");
    let log = &server.sessions()[0];
    assert!(!log.closed);
    assert_eq!(log.errors_sent.len(), 11);
    assert_eq!(log.client_events[1], Value::String("{not json".into()));
}

#[tokio::test]
async fn manual_turns_items_and_buffer_events() {
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let mut client = connect(&server).await;
    let mut update = ga_session_update();
    update["session"]["audio"]["input"]["turn_detection"] =
        json!({"type": "server_vad", "create_response": false});
    client.send(update).await;
    client.until("session.updated").await;
    client.send(append(&speech_then_silence(200, 400))).await;
    let events = client
        .until("conversation.item.input_audio_transcription.completed")
        .await;
    assert_eq!(kinds(&events)[0], "input_audio_buffer.speech_started");
    assert!(
        client.during(Duration::from_millis(200)).await.is_empty(),
        "create_response=false: no answer"
    );

    // Manual commit and clear.
    client.send(append(&[mulaw::SILENCE; 160])).await;
    client
        .send(json!({"type": "input_audio_buffer.commit"}))
        .await;
    let events = client
        .until("conversation.item.input_audio_transcription.completed")
        .await;
    assert_eq!(
        kinds(&events),
        vec![
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.input_audio_transcription.completed"
        ]
    );
    client
        .send(json!({"type": "input_audio_buffer.clear"}))
        .await;
    assert_eq!(
        client.next_event().await["type"],
        "input_audio_buffer.cleared"
    );

    // Items from the client (e.g. a seeded history or a tool result).
    let item = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]});
    client
        .send(json!({"type": "conversation.item.create", "item": item}))
        .await;
    let added = client.next_event().await;
    assert_eq!(added["type"], "conversation.item.added");
    assert!(added["item"]["id"].as_str().unwrap().starts_with("item_"));
    assert_eq!(client.next_event().await["type"], "conversation.item.done");
    assert_eq!(server.sessions()[0].items_created, vec![item]);

    // Turn detection off: no VAD events at all.
    let mut update = ga_session_update();
    update["session"]["audio"]["input"]["turn_detection"] = Value::Null;
    client.send(update).await;
    client.until("session.updated").await;
    client.send(append(&speech_then_silence(300, 500))).await;
    assert!(client.during(Duration::from_millis(200)).await.is_empty());
}

#[tokio::test]
async fn tool_turn_carries_a_function_call() {
    let turn = AgentTurn {
        call_tool: Some(("end_call".into(), r#"{"reason":"done"}"#.into())),
        ..AgentTurn::with_tone("bye", 500.0, 200)
    };
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        script: vec![turn],
        ..fast()
    })
    .await
    .unwrap();
    let mut client = connect(&server).await;
    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.done").await;
    let audio_done = events
        .iter()
        .position(|e| e["type"] == "response.output_audio.done")
        .unwrap();
    let call_added = events
        .iter()
        .position(|e| {
            e["type"] == "response.output_item.added" && e["item"]["type"] == "function_call"
        })
        .unwrap();
    let args = events
        .iter()
        .position(|e| e["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert!(audio_done < call_added && call_added < args && args < events.len() - 1);
    let args = &events[args];
    assert_eq!(
        (args["name"].as_str(), args["arguments"].as_str()),
        (Some("end_call"), Some(r#"{"reason":"done"}"#))
    );
    assert_eq!(args["call_id"], events[call_added]["item"]["call_id"]);
    assert_eq!(
        events.last().unwrap()["response"]["output"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn session_cap_expires_the_session() {
    let config = SimRealtimeConfig {
        session_cap: Some(Duration::from_millis(300)),
        ..fast()
    };
    let server = SimRealtimeServer::start(config).await.unwrap();
    let mut client = connect(&server).await;
    let started = tokio::time::Instant::now();
    let error = client.next_event().await;
    assert_eq!(error["error"]["code"], "session_expired");
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(matches!(
        client.next_message().await,
        Some(Ok(Message::Close(_)))
    ));
    server.wait_for(|s| s[0].closed, STEP).await.unwrap();
}

#[tokio::test]
async fn drop_all_cuts_every_socket_without_a_close_frame() {
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    server.drop_all();
    for client in [&mut a, &mut b] {
        match client.next_message().await {
            Some(Err(_)) | None => {}
            other => panic!("expected an abrupt end, got {other:?}"),
        }
    }
    server
        .wait_for(|s| s.len() == 2 && s.iter().all(|s| s.closed), STEP)
        .await
        .unwrap();
    // The server itself stays up: new sessions work.
    let mut c = connect(&server).await;
    c.send(json!({"type": "response.create"})).await;
    c.until("response.done").await;
}

#[tokio::test]
async fn probe_sees_appends_speech_and_deltas() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = SimRealtimeConfig {
        probe: Some(tx),
        record_events: false,
        script: vec![AgentTurn::with_tone("x", 500.0, 200)],
        ..fast()
    };
    let server = SimRealtimeServer::start(config).await.unwrap();
    let mut client = connect(&server).await;
    client.send(append(&speech_then_silence(100, 400))).await;
    client.until("response.done").await;
    let mut probes = Vec::new();
    while let Ok(probe) = rx.try_recv() {
        probes.push(probe);
    }
    assert!(matches!(
        &probes[0],
        RealtimeProbe::SpeechStarted { session: 1, .. }
    ));
    assert!(
        matches!(&probes[1], RealtimeProbe::Append { session: 1, audio, .. } if audio.len() == 4000)
    );
    let delta: usize = probes
        .iter()
        .filter_map(|p| {
            if let RealtimeProbe::DeltaSent { bytes, .. } = p {
                Some(*bytes)
            } else {
                None
            }
        })
        .sum();
    assert_eq!(delta, 1600);
    assert!(
        server.sessions()[0].client_events.is_empty(),
        "record_events = false"
    );
}
