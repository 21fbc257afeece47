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

async fn connect_to(
    server: &SimRealtimeServer,
    model: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let url = match model {
        Some(model) => format!("{}?model={model}", server.url()),
        None => server.url(),
    };
    let mut request = url.into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(Client { ws })
}

async fn connect_with(
    server: &SimRealtimeServer,
    headers: &[(&str, &str)],
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    connect_to(server, Some("gpt-realtime-2.1"), headers).await
}

async fn connect_model(server: &SimRealtimeServer, model: &str) -> Client {
    let mut client = connect_to(server, Some(model), &[("Authorization", "Bearer sk-test")])
        .await
        .unwrap();
    let created = client.next_event().await;
    assert_eq!(created["type"], "session.created");
    client
}

async fn connect(server: &SimRealtimeServer) -> Client {
    connect_model(server, "gpt-realtime-2.1").await
}

/// Connects and switches the session to μ-law both ways (as a Twilio bridge does).
async fn connect_pcmu(server: &SimRealtimeServer) -> Client {
    let mut client = connect(server).await;
    client.send(ga_session_update()).await;
    assert_eq!(client.next_event().await["type"], "session.updated");
    client
}

fn ga_session_update() -> Value {
    json!({"type": "session.update", "event_id": "evt_update", "session": {
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

fn silence(ms: u32) -> Vec<u8> {
    vec![mulaw::SILENCE; ms as usize * 8]
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn decoded(event: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(event["delta"].as_str().unwrap())
        .unwrap()
}

fn delta_sizes(events: &[Value]) -> Vec<usize> {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .map(|e| decoded(e).len())
        .collect()
}

fn delta_bytes(events: &[Value]) -> usize {
    delta_sizes(events).iter().sum()
}

fn find<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(events)))
}

fn position(events: &[Value], kind: &str) -> usize {
    events
        .iter()
        .position(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(events)))
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
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    seen.push(serde_json::from_str(text.as_str()).unwrap())
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                _ => return seen,
            }
        }
    }

    /// Sends `event` and returns the `error` it draws.
    async fn error_for(&mut self, event: Value) -> Value {
        self.send(event).await;
        let error = self.next_event().await;
        assert_eq!(error["type"], "error", "{error}");
        error["error"].clone()
    }
}

fn fast() -> SimRealtimeConfig {
    SimRealtimeConfig {
        speed_factor: f64::INFINITY,
        ..SimRealtimeConfig::default()
    }
}

#[tokio::test]
async fn vad_turn_gets_the_whole_answer_then_the_transcript() {
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
    assert_eq!(
        created["session"]["audio"]["input"]["format"],
        json!({"type": "audio/pcm", "rate": 24000}),
        "the GA default is PCM16 at 24 kHz"
    );

    client.send(ga_session_update()).await;
    let updated = client.next_event().await;
    assert_eq!(updated["type"], "session.updated");
    assert_eq!(updated["session"]["audio"]["output"]["voice"], "cedar");
    assert_eq!(
        updated["session"]["audio"]["input"]["format"],
        json!({"type": "audio/pcmu"}),
        "a format is replaced, not merged"
    );
    assert_eq!(
        updated["session"]["audio"]["output"]["format"],
        json!({"type": "audio/pcmu"})
    );
    assert_eq!(
        updated["session"]["audio"]["input"]["turn_detection"]["type"], "server_vad",
        "merged, not replaced"
    );

    client.send(append(&speech_then_silence(400, 500))).await;
    let events = client
        .until("conversation.item.input_audio_transcription.completed")
        .await;
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
            "conversation.item.input_audio_transcription.completed",
        ]
    );
    assert_eq!(events[0]["audio_start_ms"], 0);
    assert_eq!(
        events[1]["audio_end_ms"], 800,
        "400 ms speech + 400 ms silence_ms"
    );
    assert_eq!(events[0]["item_id"], events[2]["item_id"]);
    assert_eq!(events[3]["item"]["role"], "user");
    let transcript = events.last().unwrap();
    assert_eq!(transcript["transcript"], "caller turn 1");
    assert_eq!(transcript["item_id"], events[2]["item_id"]);
    assert_eq!(transcript["content_index"], 0);
    assert_eq!(transcript["usage"]["type"], "tokens");
    assert_eq!(
        transcript["usage"]["input_tokens"], 8,
        "the turn's 800 ms of audio"
    );
    assert_eq!(delta_bytes(&events), 500 * 8);
    assert_eq!(
        find(&events, "response.output_audio_transcript.done")["transcript"],
        "hi there"
    );
    let done = find(&events, "response.done");
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
    assert_eq!(
        log.transcripts_sent,
        vec![(
            events[2]["item_id"].as_str().unwrap().to_string(),
            "caller turn 1".to_string()
        )]
    );

    // The second turn uses the next transcript; the script's last turn repeats.
    client.send(append(&speech_then_silence(200, 400))).await;
    let events = client
        .until("conversation.item.input_audio_transcription.completed")
        .await;
    assert_eq!(events.last().unwrap()["transcript"], "caller turn 2");
    assert_eq!(delta_bytes(&events), 500 * 8);

    drop(client);
    server.wait_for(|s| s[0].closed, STEP).await.unwrap();
}

#[tokio::test]
async fn answer_is_paced_at_the_speed_factor() {
    let config = SimRealtimeConfig {
        speed_factor: 2.0,
        delta_ms: 100,
        delta_ms_range: None,
        script: vec![AgentTurn::with_tone("paced", 500.0, 600)],
        ..SimRealtimeConfig::default()
    };
    let server = SimRealtimeServer::start(config).await.unwrap();
    let mut client = connect_pcmu(&server).await;
    client
        .send(json!({"type": "response.create", "response": {"instructions": "Greet the caller."}}))
        .await;
    let started = tokio::time::Instant::now();
    let events = client.until("response.done").await;
    let elapsed = started.elapsed();
    assert_eq!(
        delta_sizes(&events),
        vec![800; 6],
        "delta_ms fixes the size"
    );
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
async fn deltas_vary_in_size_repeatably_and_add_up() {
    async fn sizes() -> Vec<usize> {
        let config = SimRealtimeConfig {
            script: vec![AgentTurn::with_tone("long", 500.0, 3000)],
            ..fast()
        };
        let server = SimRealtimeServer::start(config).await.unwrap();
        let mut client = connect_pcmu(&server).await;
        client.send(json!({"type": "response.create"})).await;
        delta_sizes(&client.until("response.done").await)
    }
    let first = sizes().await;
    assert_eq!(
        first,
        sizes().await,
        "seeded by the session id: runs repeat"
    );
    assert_eq!(first.iter().sum::<usize>(), 3000 * 8);
    let (last, rest) = first.split_last().unwrap();
    assert!(rest
        .iter()
        .all(|bytes| (40 * 8..=240 * 8).contains(bytes) && bytes % 8 == 0));
    assert!(*last <= 240 * 8);
    let mut distinct = rest.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 3, "sizes vary: {first:?}");

    // Whole Twilio frames on request.
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        delta_ms_step: 20,
        script: vec![AgentTurn::with_tone("long", 500.0, 3000)],
        ..fast()
    })
    .await
    .unwrap();
    let mut client = connect_pcmu(&server).await;
    client.send(json!({"type": "response.create"})).await;
    let sizes = delta_sizes(&client.until("response.done").await);
    assert_eq!(sizes.iter().sum::<usize>(), 3000 * 8);
    assert!(sizes.iter().all(|bytes| bytes % 160 == 0), "{sizes:?}");
}

#[tokio::test]
async fn a_refused_session_update_changes_nothing() {
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let mut client = connect(&server).await;
    let mut update = ga_session_update();
    update["event_id"] = json!("evt_speed");
    update["session"]["audio"]["output"]["speed"] = json!(2.0);
    let error = client.error_for(update).await;
    assert_eq!(
        error,
        json!({
            "type": "invalid_request_error", "code": "decimal_above_max_value",
            "message": error["message"], "param": "session.audio.output.speed", "event_id": "evt_speed"
        })
    );
    // Still PCM16 at 24 kHz both ways: the default turn (1200 ms) comes as 48 bytes per ms.
    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.done").await;
    assert_eq!(delta_bytes(&events), 1200 * 48);
    assert_eq!(
        events.last().unwrap()["response"]["audio"]["output"]["format"],
        json!({"type": "audio/pcm", "rate": 24000})
    );
    // μ-law read as PCM16: a 600 ms μ-law tone is 100 ms of loud noise to the server.
    client.send(append(&mulaw::tone(300.0, 600, 0.5))).await;
    let started = client.next_event().await;
    assert_eq!(started["type"], "input_audio_buffer.speech_started");
    let log = &server.sessions()[0];
    assert_eq!(log.session_updates_rejected, 1);
    assert_eq!(log.session_config, None);
    assert_eq!(
        log.errors,
        vec![SimErrorRecord {
            code: "decimal_above_max_value".into(),
            message: error["message"].as_str().unwrap().into(),
            param: Some("session.audio.output.speed".into()),
            event_id: Some("evt_speed".into()),
        }]
    );
}

#[tokio::test]
async fn session_fields_are_checked_value_by_value() {
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let mut client = connect(&server).await;
    let cases = [
        (
            json!({"audio": {"input": {"format": {"type": "g711_ulaw"}}}}),
            "invalid_value",
            "session.audio.input.format.type",
        ),
        (
            json!({"audio": {"output": {"voice": "onyx"}}}),
            "invalid_value",
            "session.audio.output.voice",
        ),
        (
            json!({"audio": {"input": {"noise_reduction": {"type": "studio"}}}}),
            "invalid_value",
            "session.audio.input.noise_reduction.type",
        ),
        (
            json!({"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}}),
            "decimal_above_max_value",
            "session.audio.input.turn_detection.threshold",
        ),
        (
            json!({"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "very"}}}}),
            "invalid_value",
            "session.audio.input.turn_detection.eagerness",
        ),
        (
            json!({"audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe", "lang": "en"}}}}),
            "unknown_parameter",
            "session.audio.input.transcription.lang",
        ),
        (
            json!({"max_output_tokens": 5000}),
            "integer_above_max_value",
            "session.max_output_tokens",
        ),
        (
            json!({"output_modalities": ["audio", "text"]}),
            "invalid_value",
            "session.output_modalities",
        ),
        (
            json!({"tools": [{"type": "function", "name": "end call"}]}),
            "invalid_value",
            "session.tools[0].name",
        ),
        (
            json!({"tool_choice": "always"}),
            "invalid_value",
            "session.tool_choice",
        ),
        (
            json!({"reasoning": {"effort": "max"}}),
            "invalid_value",
            "session.reasoning.effort",
        ),
        (
            json!({"truncation": "sometimes"}),
            "invalid_value",
            "session.truncation",
        ),
        (json!({"speed": 1.0}), "unknown_parameter", "session.speed"),
    ];
    for (i, (fields, code, param)) in cases.iter().enumerate() {
        let mut session = fields.clone();
        session["type"] = json!("realtime");
        let event_id = format!("evt_{i}");
        let error = client
            .error_for(json!({"type": "session.update", "event_id": event_id, "session": session}))
            .await;
        assert_eq!(
            (&error["code"], &error["param"], &error["event_id"]),
            (&json!(code), &json!(param), &json!(event_id)),
            "{fields}"
        );
    }
    let log = &server.sessions()[0];
    assert_eq!(log.session_updates_rejected, cases.len());
    assert_eq!(log.session_config, None);
}

#[tokio::test]
async fn reasoning_is_refused_for_models_that_do_not_take_it() {
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    for (model, accepted) in [
        ("gpt-realtime", false),
        ("gpt-realtime-mini", false),
        ("gpt-realtime-1.5", false),
        ("gpt-realtime-2025-08-28", false),
        ("gpt-realtime-2", true),
        ("gpt-realtime-2.1", true),
        ("gpt-realtime-2.1-mini", true),
        ("gpt-realtime-2.1-2026-09-01", true),
    ] {
        let mut client = connect_model(&server, model).await;
        let update = json!({"type": "session.update", "event_id": "evt_r", "session": {
            "type": "realtime", "model": model, "reasoning": {"effort": "low"}
        }});
        client.send(update).await;
        let answer = client.next_event().await;
        if accepted {
            assert_eq!(answer["type"], "session.updated", "{model}");
            assert_eq!(answer["session"]["reasoning"]["effort"], "low");
        } else {
            assert_eq!(answer["error"]["param"], "session.reasoning", "{model}");
            assert_eq!(answer["error"]["event_id"], "evt_r");
        }
    }
}

#[tokio::test]
async fn reject_session_params_forces_a_refusal() {
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        reject_session_params: vec!["session.audio.input.noise_reduction".into()],
        ..fast()
    })
    .await
    .unwrap();
    let mut client = connect(&server).await;
    let mut update = ga_session_update();
    update["session"]["audio"]["input"]["noise_reduction"] = json!({"type": "near_field"});
    let error = client.error_for(update).await;
    assert_eq!(error["param"], "session.audio.input.noise_reduction");
    assert_eq!(error["event_id"], "evt_update");
    // The same update without the refused field goes through.
    client.send(ga_session_update()).await;
    assert_eq!(client.next_event().await["type"], "session.updated");
}

#[tokio::test]
async fn voice_is_locked_once_the_model_has_spoken() {
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let mut client = connect_pcmu(&server).await;
    let voice = |voice: &str| {
        json!({"type": "session.update", "event_id": "evt_voice", "session": {
            "type": "realtime", "audio": {"output": {"voice": voice}}
        }})
    };
    client.send(voice("ash")).await;
    assert_eq!(client.next_event().await["type"], "session.updated");
    client.send(json!({"type": "response.create"})).await;
    client.until("response.done").await;
    let error = client.error_for(voice("marin")).await;
    assert_eq!(error["code"], "cannot_update_voice");
    assert_eq!(error["event_id"], "evt_voice");
    client.send(voice("ash")).await;
    assert_eq!(client.next_event().await["type"], "session.updated");
}

#[tokio::test]
async fn truncate_is_checked_against_the_audio_sent() {
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let mut client = connect_pcmu(&server).await;
    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.done").await;
    let item_id = find(&events, "response.output_item.added")["item"]["id"].clone();
    assert_eq!(delta_bytes(&events), 1200 * 8, "default turn: 1200 ms");

    let truncate = |ms: u64, item: &Value| json!({"type": "conversation.item.truncate", "item_id": item, "content_index": 0, "audio_end_ms": ms});
    let error = client.error_for(truncate(1201, &item_id)).await;
    assert_eq!(
        (error["code"].as_str(), error["param"].as_str()),
        (Some("invalid_value"), Some("audio_end_ms"))
    );
    let error = client
        .error_for(truncate(700, &json!("item_unknown")))
        .await;
    assert_eq!(error["code"], "invalid_value");
    let mut bad_index = truncate(100, &item_id);
    bad_index["content_index"] = json!(1);
    assert_eq!(client.error_for(bad_index).await["param"], "content_index");
    let mut decimal = truncate(100, &item_id);
    decimal["audio_end_ms"] = json!(100.5);
    assert_eq!(client.error_for(decimal).await["code"], "invalid_type");
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
    client.send(truncate(900, &item_id)).await;
    assert_eq!(
        client.next_event().await["type"],
        "conversation.item.truncated"
    );
    // Now the item holds 900 ms.
    let error = client.error_for(truncate(1000, &item_id)).await;
    assert!(error["message"].as_str().unwrap().contains("900ms"));

    // Only assistant audio can be truncated: not a user item.
    client
        .send(json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}))
        .await;
    let user_item = client.until("conversation.item.done").await[0]["item"]["id"].clone();
    let error = client.error_for(truncate(0, &user_item)).await;
    assert_eq!(error["code"], "unsupported_content_type");

    let log = &server.sessions()[0];
    let item = item_id.as_str().unwrap().to_string();
    assert_eq!(log.truncates.len(), 7, "all but the one that did not parse");
    assert_eq!(log.truncates[0], (item.clone(), 1201));
    assert_eq!(log.truncates[1], ("item_unknown".into(), 700));
    assert_eq!(
        log.errors_sent,
        vec![
            "invalid_value",
            "invalid_value",
            "invalid_value",
            "invalid_type",
            "invalid_value",
            "unsupported_content_type"
        ]
    );
}

#[tokio::test]
async fn truncate_of_an_item_still_streaming_is_limited_to_what_was_sent() {
    let config = SimRealtimeConfig {
        speed_factor: 1.0,
        script: vec![AgentTurn::with_tone("long answer", 700.0, 3000)],
        ..SimRealtimeConfig::default()
    };
    let server = SimRealtimeServer::start(config).await.unwrap();
    let mut client = connect_pcmu(&server).await;
    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.output_audio.delta").await;
    let item_id = events.last().unwrap()["item_id"].clone();
    let first_ms = decoded(events.last().unwrap()).len() as u64 / 8;
    let error = client
        .error_for(json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 2500}))
        .await;
    assert_eq!(error["param"], "audio_end_ms");
    client
        .send(json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": first_ms}))
        .await;
    let events = client.until("conversation.item.truncated").await;
    assert_eq!(events.last().unwrap()["audio_end_ms"], first_ms);
}

#[tokio::test]
async fn caller_speech_cancels_the_response_asynchronously() {
    let config = SimRealtimeConfig {
        speed_factor: 1.0,
        cancel_delay: Duration::from_millis(80),
        script: vec![AgentTurn::with_tone("long answer", 700.0, 3000)],
        ..SimRealtimeConfig::default()
    };
    let server = SimRealtimeServer::start(config).await.unwrap();
    let mut client = connect_pcmu(&server).await;
    client.send(json!({"type": "response.create"})).await;
    let mut before = client.until("response.output_audio.delta").await;
    client.send(append(&mulaw::tone(300.0, 100, 0.5))).await;
    before.extend(client.until("input_audio_buffer.speech_started").await);
    let heard_at = tokio::time::Instant::now();
    let events = client.until("response.done").await;
    let cancel_took = heard_at.elapsed();
    assert!(
        cancel_took >= Duration::from_millis(60),
        "cancel is asynchronous: {cancel_took:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["type"] != "response.output_audio.delta"),
        "no audio after speech_started: {:?}",
        kinds(&events)
    );
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(
        done["response"]["status_details"],
        json!({"type": "cancelled", "reason": "turn_detected"})
    );
    assert_eq!(done["response"]["output"][0]["status"], "incomplete");
    assert_eq!(
        find(&events, "response.output_item.done")["item"]["status"],
        "incomplete"
    );
    let after = client.during(Duration::from_millis(300)).await;
    assert!(
        after
            .iter()
            .all(|e| e["type"] != "response.output_audio.delta"),
        "deltas after cancel: {after:?}"
    );
    let log = &server.sessions()[0];
    assert_eq!(log.audio_sent_bytes as usize, delta_bytes(&before));
    assert!(log.audio_sent_bytes < 3000 * 8);
    assert_eq!(log.responses_cancelled, 1);
    assert_eq!(log.responses[0].status, "cancelled");
    assert_eq!(log.responses[0].reason.as_deref(), Some("turn_detected"));
}

#[tokio::test]
async fn one_response_at_a_time_and_cancel_finishes_later() {
    let config = SimRealtimeConfig {
        speed_factor: 1.0,
        cancel_delay: Duration::from_millis(100),
        script: vec![AgentTurn::with_tone("long answer", 700.0, 3000)],
        ..SimRealtimeConfig::default()
    };
    let server = SimRealtimeServer::start(config).await.unwrap();
    let mut client = connect_pcmu(&server).await;
    let error = client
        .error_for(json!({"type": "response.cancel", "event_id": "evt_c0"}))
        .await;
    assert_eq!(
        (&error["code"], &error["event_id"]),
        (&json!("response_cancel_not_active"), &json!("evt_c0"))
    );
    client
        .send(json!({"type": "response.create", "event_id": "evt_1"}))
        .await;
    let events = client.until("response.output_audio.delta").await;
    let response_id = events[0]["response"]["id"].clone();
    client
        .send(json!({"type": "response.create", "event_id": "evt_2"}))
        .await;
    let events = client.until("error").await;
    let error = &events.last().unwrap()["error"];
    assert_eq!(
        (&error["code"], &error["event_id"]),
        (
            &json!("conversation_already_has_active_response"),
            &json!("evt_2")
        )
    );
    // The cancel is asynchronous: a create right after it is still refused.
    client
        .send(json!({"type": "response.cancel", "event_id": "evt_c1", "response_id": response_id}))
        .await;
    client
        .send(json!({"type": "response.create", "event_id": "evt_3"}))
        .await;
    let events = client.until("response.done").await;
    let refused = find(&events, "error");
    assert_eq!(refused["error"]["event_id"], "evt_3");
    assert!(position(&events, "error") < position(&events, "response.done"));
    let done = events.last().unwrap();
    assert_eq!(done["response"]["id"], response_id);
    assert_eq!(
        done["response"]["status_details"],
        json!({"type": "cancelled", "reason": "client_cancelled"})
    );
    // After response.done a create goes through.
    client
        .send(json!({"type": "response.create", "event_id": "evt_4"}))
        .await;
    assert_eq!(client.next_event().await["type"], "response.created");
    let log = &server.sessions()[0];
    assert_eq!(log.response_creates, 4);
    assert_eq!(log.response_creates_refused, 2);
    assert_eq!(log.cancels_received, 2);
    let refused: Vec<Option<&str>> = log.errors.iter().map(|e| e.event_id.as_deref()).collect();
    assert_eq!(refused, vec![Some("evt_c0"), Some("evt_2"), Some("evt_3")]);
}

#[tokio::test]
async fn a_turn_that_ends_while_the_cancel_finishes_is_answered_after_it() {
    let config = SimRealtimeConfig {
        speed_factor: 1.0,
        silence_ms: 100,
        cancel_delay: Duration::from_millis(400),
        script: vec![AgentTurn::with_tone("long answer", 700.0, 3000)],
        ..SimRealtimeConfig::default()
    };
    let server = SimRealtimeServer::start(config).await.unwrap();
    let mut client = connect_pcmu(&server).await;
    client.send(json!({"type": "response.create"})).await;
    client.until("response.output_audio.delta").await;
    // The whole turn (speech, then silence) arrives at once: it ends before the cancel lands.
    client.send(append(&speech_then_silence(200, 200))).await;
    let events = client.until("response.created").await;
    let stopped = position(&events, "input_audio_buffer.speech_stopped");
    let done = position(&events, "response.done");
    assert!(stopped < done, "{:?}", kinds(&events));
    assert_eq!(events[done]["response"]["status"], "cancelled");
    assert_eq!(server.sessions()[0].responses_started, 2);
}

#[tokio::test]
async fn tool_turn_streams_a_function_call_in_order() {
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
    let mut client = connect_pcmu(&server).await;
    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.done").await;
    let audio_done = position(&events, "response.output_audio.done");
    let call_added = events
        .iter()
        .position(|e| {
            e["type"] == "response.output_item.added" && e["item"]["type"] == "function_call"
        })
        .unwrap();
    let first_delta = position(&events, "response.function_call_arguments.delta");
    let args = position(&events, "response.function_call_arguments.done");
    let call_done = events
        .iter()
        .position(|e| {
            e["type"] == "response.output_item.done" && e["item"]["type"] == "function_call"
        })
        .unwrap();
    assert!(
        audio_done < call_added
            && call_added < first_delta
            && first_delta < args
            && args < call_done
            && call_done < events.len() - 1,
        "{:?}",
        kinds(&events)
    );
    let added = &events[call_added]["item"];
    assert_eq!(
        (&added["status"], &added["name"]),
        (&json!("in_progress"), &json!("end_call"))
    );
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| {
            assert_eq!(e["call_id"], added["call_id"]);
            e["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(deltas, r#"{"reason":"done"}"#);
    let args = &events[args];
    assert_eq!(
        (args["name"].as_str(), args["arguments"].as_str()),
        (Some("end_call"), Some(r#"{"reason":"done"}"#))
    );
    assert_eq!(args["call_id"], added["call_id"]);
    assert_eq!(args["item_id"], added["id"]);
    assert_eq!(events[call_done]["item"]["status"], "completed");
    let done = &events.last().unwrap()["response"];
    assert_eq!(done["output"].as_array().unwrap().len(), 2);
    assert_eq!(done["output"][1]["status"], "completed");
    let record = &server.sessions()[0].responses[0];
    assert_eq!(record.function_calls[0].status, "completed");
    assert_eq!(
        record.function_calls[0].call_id,
        added["call_id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_cancelled_function_call_still_gets_arguments_done_marked_incomplete() {
    let turn = AgentTurn {
        call_tool: Some((
            "transfer_call".into(),
            r#"{"reason":"wants a person"}"#.into(),
        )),
        ..AgentTurn::with_tone("one moment", 500.0, 100)
    };
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        script: vec![turn],
        speed_factor: 1.0,
        function_call_delta_ms: 300,
        ..SimRealtimeConfig::default()
    })
    .await
    .unwrap();
    let mut client = connect_pcmu(&server).await;
    client.send(json!({"type": "response.create"})).await;
    client.until("response.function_call_arguments.delta").await;
    client.send(json!({"type": "response.cancel"})).await;
    let events = client.until("response.done").await;
    assert_eq!(
        kinds(&events),
        vec![
            "response.function_call_arguments.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done"
        ]
    );
    let args = events[0]["arguments"].as_str().unwrap();
    assert!(
        args.len() < r#"{"reason":"wants a person"}"#.len(),
        "partial arguments: {args}"
    );
    assert_eq!(events[1]["item"]["status"], "incomplete");
    let response = &events[3]["response"];
    assert_eq!(response["status"], "cancelled");
    assert_eq!(
        response["output"][0]["status"], "completed",
        "the audio finished"
    );
    assert_eq!(response["output"][1]["status"], "incomplete");
    let record = &server.sessions()[0].responses[0];
    assert_eq!(record.function_calls[0].status, "incomplete");
    assert_eq!(record.function_calls[0].arguments, args);
}

#[tokio::test]
async fn after_a_function_call_output_the_model_waits_for_response_create() {
    let turn = AgentTurn {
        call_tool: Some(("lookup".into(), "{}".into())),
        ..AgentTurn::with_tone("let me check", 500.0, 200)
    };
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        script: vec![turn, AgentTurn::with_tone("found it", 500.0, 200)],
        ..fast()
    })
    .await
    .unwrap();
    let mut client = connect_pcmu(&server).await;
    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.done").await;
    let call_id = find(&events, "response.function_call_arguments.done")["call_id"].clone();
    let error = client
        .error_for(
            json!({"type": "conversation.item.create", "event_id": "evt_o", "item": {
                "type": "function_call_output", "call_id": "call_unknown", "output": "{}"
            }}),
        )
        .await;
    assert_eq!(
        (&error["param"], &error["event_id"]),
        (&json!("item.call_id"), &json!("evt_o"))
    );
    client
        .send(json!({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": call_id, "output": "{\"ok\":true}"
        }}))
        .await;
    let added = client.until("conversation.item.done").await;
    assert_eq!(added[0]["item"]["type"], "function_call_output");
    assert!(
        client.during(Duration::from_millis(300)).await.is_empty(),
        "the model says nothing on its own"
    );
    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.done").await;
    assert_eq!(
        find(&events, "response.output_audio_transcript.done")["transcript"],
        "found it"
    );
}

#[tokio::test]
async fn response_done_carries_status_details_and_usage() {
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        script: vec![AgentTurn::with_tone("twelve chars", 500.0, 1000)],
        response_outcomes: vec![
            TurnOutcome::Failed {
                code: "insufficient_quota".into(),
            },
            TurnOutcome::Incomplete {
                reason: "content_filter".into(),
            },
        ],
        ..fast()
    })
    .await
    .unwrap();
    let mut client = connect_pcmu(&server).await;

    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.done").await;
    assert_eq!(kinds(&events), vec!["response.created", "response.done"]);
    let response = &events[1]["response"];
    assert_eq!(response["status"], "failed");
    assert_eq!(
        response["status_details"],
        json!({"type": "failed", "error": {"type": "insufficient_quota", "code": "insufficient_quota"}})
    );
    assert_eq!(response["output"], json!([]));
    assert_eq!(response["usage"]["output_tokens"], 0);

    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.done").await;
    assert_eq!(
        delta_bytes(&events),
        500 * 8,
        "an incomplete answer stops halfway"
    );
    let response = &events.last().unwrap()["response"];
    assert_eq!(response["status"], "incomplete");
    assert_eq!(
        response["status_details"],
        json!({"type": "incomplete", "reason": "content_filter"})
    );
    assert_eq!(response["output"][0]["status"], "incomplete");
    assert_eq!(
        find(&events, "response.output_audio_transcript.done")["transcript"],
        "twelve"
    );

    // Past the list: completed, with usage from what was said.
    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.done").await;
    let response = &events.last().unwrap()["response"];
    assert_eq!(response["status"], "completed");
    assert_eq!(response["status_details"], Value::Null);
    let usage = &response["usage"];
    assert_eq!(
        usage["output_token_details"]["audio_tokens"], 20,
        "1000 ms at 50 ms a token"
    );
    assert_eq!(usage["output_token_details"]["text_tokens"], 3, "12 chars");
    assert_eq!(usage["output_tokens"], 23);
    let input = usage["input_tokens"].as_u64().unwrap();
    let details = &usage["input_token_details"];
    assert_eq!(
        input,
        details["text_tokens"].as_u64().unwrap() + details["audio_tokens"].as_u64().unwrap()
    );
    assert!(
        details["audio_tokens"].as_u64().unwrap() > 0,
        "earlier answers are context"
    );
    assert_eq!(usage["total_tokens"], input + 23);
    assert!(details["cached_tokens_details"].is_object());

    let log = &server.sessions()[0];
    let statuses: Vec<(&str, Option<&str>, Option<&str>)> = log
        .responses
        .iter()
        .map(|r| {
            (
                r.status.as_str(),
                r.reason.as_deref(),
                r.error_code.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("failed", None, Some("insufficient_quota")),
            ("incomplete", Some("content_filter"), None),
            ("completed", None, None)
        ]
    );
    assert_eq!(log.responses[1].audio_ms, 500);
}

#[tokio::test]
async fn max_output_tokens_cuts_the_answer() {
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        script: vec![AgentTurn::with_tone("long", 500.0, 3000)],
        ..fast()
    })
    .await
    .unwrap();
    let mut client = connect_pcmu(&server).await;
    client
        .send(json!({"type": "response.create", "response": {"max_output_tokens": 10}}))
        .await;
    let events = client.until("response.done").await;
    assert!(delta_bytes(&events) <= 500 * 8);
    let response = &events.last().unwrap()["response"];
    assert_eq!(
        response["status_details"],
        json!({"type": "incomplete", "reason": "max_output_tokens"})
    );
    assert_eq!(response["max_output_tokens"], 10);
}

#[tokio::test]
async fn transcripts_follow_the_configured_timing() {
    // With transcription off: none at all.
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let mut client = connect(&server).await;
    let mut update = ga_session_update();
    update["session"]["audio"]["input"]["transcription"] = Value::Null;
    client.send(update).await;
    client.until("session.updated").await;
    client.send(append(&speech_then_silence(300, 500))).await;
    client.until("response.done").await;
    let later = client.during(Duration::from_millis(1300)).await;
    assert!(
        later
            .iter()
            .all(|e| e["type"] != "conversation.item.input_audio_transcription.completed"),
        "{later:?}"
    );
    assert!(server.sessions()[0].transcripts_sent.is_empty());

    // At the commit (the old behaviour), on request.
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        transcript_timing: TranscriptTiming::AtCommit,
        ..fast()
    })
    .await
    .unwrap();
    let mut client = connect_pcmu(&server).await;
    client.send(append(&speech_then_silence(300, 500))).await;
    let events = client.until("response.done").await;
    assert!(
        position(
            &events,
            "conversation.item.input_audio_transcription.completed"
        ) < position(&events, "response.created")
    );

    // After a fixed delay, and whisper-1 reports a duration.
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        transcript_timing: TranscriptTiming::After(Duration::from_millis(200)),
        ..fast()
    })
    .await
    .unwrap();
    let mut client = connect(&server).await;
    let mut update = ga_session_update();
    update["session"]["audio"]["input"]["transcription"] =
        json!({"model": "whisper-1", "language": "en"});
    client.send(update).await;
    client.until("session.updated").await;
    client.send(append(&speech_then_silence(300, 500))).await;
    let committed_at = tokio::time::Instant::now();
    let events = client
        .until("conversation.item.input_audio_transcription.completed")
        .await;
    assert!(committed_at.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        events.last().unwrap()["usage"],
        json!({"type": "duration", "seconds": 0.7})
    );
}

#[tokio::test]
async fn speech_offsets_are_measured_on_the_audio_received() {
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        script: vec![AgentTurn::with_tone("ok", 500.0, 100)],
        ..fast()
    })
    .await
    .unwrap();
    let mut client = connect_pcmu(&server).await;
    client.send(append(&silence(200))).await;
    client.send(append(&speech_then_silence(300, 400))).await;
    let events = client.until("response.done").await;
    assert_eq!(
        find(&events, "input_audio_buffer.speech_started")["audio_start_ms"],
        200
    );
    assert_eq!(
        find(&events, "input_audio_buffer.speech_stopped")["audio_end_ms"],
        900
    );
    // A gap on the line: nothing is appended for 300 ms of wall time. The server's clock does not move.
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.send(append(&speech_then_silence(200, 400))).await;
    let events = client.until("input_audio_buffer.speech_stopped").await;
    assert_eq!(
        find(&events, "input_audio_buffer.speech_started")["audio_start_ms"],
        900
    );
    assert_eq!(events.last().unwrap()["audio_end_ms"], 1500);
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
    assert_eq!(
        log[0].close_sent,
        Some((4000, "beta_api_shape_disabled".to_string()))
    );
}

#[tokio::test]
async fn handshake_needs_a_bearer_token_a_known_model_and_obeys_reject() {
    use tokio_tungstenite::tungstenite::Error;
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let status = |r: Result<Client, Error>| match r {
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => 101,
    };
    let key = [("Authorization", "Bearer sk")];
    assert_eq!(status(connect_with(&server, &[]).await), 401);
    assert_eq!(
        status(connect_with(&server, &[("Authorization", "Bearer ")]).await),
        401
    );
    server.set_reject_connections(true);
    assert_eq!(status(connect_with(&server, &key).await), 503);
    server.set_reject_connections(false);
    server.set_reject_status(Some(401));
    assert_eq!(status(connect_with(&server, &key).await), 401);
    server.set_reject_status(Some(404));
    assert_eq!(status(connect_with(&server, &key).await), 404);
    server.set_reject_status(None);
    assert_eq!(
        status(connect_to(&server, Some("gpt-4o-realtime-preview"), &key).await),
        404
    );
    assert_eq!(
        status(connect_to(&server, Some("gpt-realtime-9"), &key).await),
        404
    );
    assert_eq!(status(connect_to(&server, None, &key).await), 404);
    assert_eq!(
        status(connect_to(&server, Some("gpt-realtime-2099-01-01"), &key).await),
        101
    );
    let _client = connect(&server).await;
    let rejected: Vec<Option<u16>> = server.sessions().iter().map(|s| s.rejected).collect();
    assert_eq!(
        rejected,
        vec![
            Some(401),
            Some(401),
            Some(503),
            Some(401),
            Some(404),
            Some(404),
            Some(404),
            Some(404),
            None,
            None
        ]
    );
    assert_eq!(server.accepted_sessions().len(), 2);
    assert!(!server.sessions()[0].authorization_present);

    // The refusal carries an OpenAI-style JSON error body.
    server.set_reject_status(Some(404));
    match connect_with(&server, &key).await {
        Err(Error::Http(response)) => {
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "model_not_found");
        }
        _ => panic!("expected a refusal"),
    }

    // The knob off: any model name goes.
    let lenient = SimRealtimeServer::start(SimRealtimeConfig::lenient())
        .await
        .unwrap();
    assert_eq!(
        status(connect_to(&lenient, Some("anything"), &key).await),
        101
    );
}

#[tokio::test]
async fn bad_input_gets_errors_with_params_and_the_session_stays_open() {
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let mut client = connect(&server).await;
    let cases = [
        (
            json!({"type": "input_audio_buffer.append", "audio": "***not base64***"}),
            "invalid_value",
            Some("audio"),
        ),
        (
            json!({"type": "input_audio_buffer.append"}),
            "missing_required_parameter",
            Some("audio"),
        ),
        (
            json!({"type": "response.audio.delta"}),
            "invalid_value",
            Some("type"),
        ),
        (
            json!({"type": "output_audio_buffer.clear"}),
            "invalid_value",
            Some("type"),
        ),
        (
            json!({"event_id": "x"}),
            "missing_required_parameter",
            Some("type"),
        ),
        (
            json!({"type": "input_audio_buffer.commit", "audio": "AAAA"}),
            "unknown_parameter",
            Some("audio"),
        ),
        (
            json!({"type": "response.create", "response": {"modalities": ["audio"]}}),
            "unknown_parameter",
            Some("response.modalities"),
        ),
        (
            json!({"type": "response.create", "response": {"instructions": 5}}),
            "invalid_type",
            Some("response.instructions"),
        ),
        (
            json!({"type": "response.cancel"}),
            "response_cancel_not_active",
            None,
        ),
        (
            json!({"type": "conversation.item.retrieve", "item_id": "item_nope"}),
            "invalid_value",
            Some("item_id"),
        ),
        (
            json!({"type": "conversation.item.delete"}),
            "missing_required_parameter",
            Some("item_id"),
        ),
        (
            json!({"type": "conversation.item.truncate", "item_id": "i", "audio_end_ms": 5}),
            "missing_required_parameter",
            Some("content_index"),
        ),
        (
            json!({"type": "input_audio_buffer.commit"}),
            "input_audio_buffer_commit_empty",
            None,
        ),
        (
            json!({"type": "session.update", "session": {"instructions": "x"}}),
            "missing_required_parameter",
            Some("session.type"),
        ),
    ];
    for (i, (mut event, code, param)) in cases.clone().into_iter().enumerate() {
        let event_id = format!("evt_{i}");
        event["event_id"] = json!(event_id);
        let error = client.error_for(event.clone()).await;
        assert_eq!(
            (&error["code"], &error["param"], &error["event_id"]),
            (&json!(code), &json!(param), &json!(event_id)),
            "{event}"
        );
    }
    client.ws.send(Message::text("{not json")).await.unwrap();
    assert_eq!(client.next_event().await["error"]["code"], "invalid_json");
    for beta in [
        json!({"type": "realtime", "input_audio_format": "g711_ulaw"}),
        json!({"type": "realtime", "voice": "alloy"}),
        json!({"type": "realtime", "modalities": ["audio", "text"]}),
        json!({"type": "realtime", "temperature": 0.8}),
        json!({"type": "realtime", "turn_detection": {"type": "server_vad"}}),
    ] {
        let error = client
            .error_for(json!({"type": "session.update", "session": beta}))
            .await;
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["code"], "unknown_parameter");
        let field = beta
            .as_object()
            .unwrap()
            .keys()
            .find(|k| *k != "type")
            .unwrap()
            .clone();
        assert_eq!(error["param"], format!("session.{field}"));
    }
    client.send(ga_session_update()).await;
    assert_eq!(client.next_event().await["type"], "session.updated");
    // Less than 100 ms cannot be committed.
    client.send(append(&silence(60))).await;
    let error = client
        .error_for(json!({"type": "input_audio_buffer.commit"}))
        .await;
    assert_eq!(error["code"], "input_audio_buffer_commit_empty");
    assert!(error["message"].as_str().unwrap().contains("60.00ms"));
    let log = &server.sessions()[0];
    assert!(!log.closed);
    assert_eq!(log.errors_sent.len(), cases.len() + 7);
    assert_eq!(log.errors.len(), log.errors_sent.len());
    assert_eq!(log.errors[0].param.as_deref(), Some("audio"));
    assert_eq!(log.errors[0].event_id.as_deref(), Some("evt_0"));
    assert_eq!(
        log.client_events[cases.len()],
        Value::String("{not json".into())
    );
}

#[tokio::test]
async fn items_are_checked_by_role_and_kind() {
    let server = SimRealtimeServer::start(fast()).await.unwrap();
    let mut client = connect(&server).await;
    let create = |item: Value| json!({"type": "conversation.item.create", "event_id": "evt_i", "item": item});
    let refused = [
        (
            json!({"type": "message", "role": "assistant", "content": [{"type": "output_audio", "transcript": "hello"}]}),
            "item.content[0].type",
        ),
        (
            json!({"type": "message", "role": "user", "content": [{"type": "output_text", "text": "hi"}]}),
            "item.content[0].type",
        ),
        (
            json!({"type": "message", "role": "system", "content": [{"type": "input_audio", "audio": "//8="}]}),
            "item.content[0].type",
        ),
        (
            json!({"type": "message", "role": "developer", "content": []}),
            "item.role",
        ),
        (
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi", "lang": "en"}]}),
            "item.content[0].lang",
        ),
        (
            json!({"type": "function_call_output", "output": "{}"}),
            "item.call_id",
        ),
    ];
    for (item, param) in refused {
        let error = client.error_for(create(item.clone())).await;
        assert_eq!(
            (&error["param"], &error["event_id"]),
            (&json!(param), &json!("evt_i")),
            "{item}"
        );
    }
    let error = client
        .error_for(
            json!({"type": "conversation.item.create", "previous_item_id": "item_nope", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]
            }}),
        )
        .await;
    assert_eq!(error["param"], "previous_item_id");

    // History seeded as text: user, assistant (output_text), system.
    let mut ids = Vec::new();
    for (role, kind) in [
        ("user", "input_text"),
        ("assistant", "output_text"),
        ("system", "input_text"),
    ] {
        let item =
            json!({"type": "message", "role": role, "content": [{"type": kind, "text": role}]});
        client.send(create(item.clone())).await;
        let events = client.until("conversation.item.done").await;
        assert_eq!(
            kinds(&events),
            vec!["conversation.item.added", "conversation.item.done"]
        );
        assert_eq!(events[0]["previous_item_id"], json!(ids.last()));
        ids.push(events[0]["item"]["id"].as_str().unwrap().to_string());
    }
    // Inserted after the first item.
    client
        .send(json!({"type": "conversation.item.create", "previous_item_id": ids[0], "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "inserted"}]
        }}))
        .await;
    let events = client.until("conversation.item.done").await;
    assert_eq!(events[0]["previous_item_id"], ids[0]);
    client
        .send(json!({"type": "conversation.item.retrieve", "item_id": ids[1]}))
        .await;
    let retrieved = client.next_event().await;
    assert_eq!(retrieved["type"], "conversation.item.retrieved");
    assert_eq!(retrieved["item"]["content"][0]["text"], "assistant");
    client
        .send(json!({"type": "conversation.item.delete", "item_id": ids[1]}))
        .await;
    assert_eq!(
        client.next_event().await["type"],
        "conversation.item.deleted"
    );
    assert_eq!(server.sessions()[0].items_created.len(), 4);
}

#[tokio::test]
async fn manual_turns_items_and_buffer_events() {
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        transcript_timing: TranscriptTiming::After(Duration::from_millis(50)),
        ..fast()
    })
    .await
    .unwrap();
    let mut client = connect(&server).await;
    let mut update = ga_session_update();
    update["session"]["audio"]["input"]["turn_detection"] =
        json!({"type": "server_vad", "create_response": false});
    client.send(update).await;
    let updated = client.until("session.updated").await;
    assert_eq!(
        updated.last().unwrap()["session"]["audio"]["input"]["turn_detection"],
        json!({
            "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 400,
            "create_response": false, "interrupt_response": true, "idle_timeout_ms": null
        })
    );
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
    client.send(append(&silence(120))).await;
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

    // Semantic VAD replaces server VAD with its own defaults.
    let mut update = ga_session_update();
    update["session"]["audio"]["input"]["turn_detection"] =
        json!({"type": "semantic_vad", "eagerness": "low"});
    client.send(update).await;
    let updated = client.until("session.updated").await;
    assert_eq!(
        updated.last().unwrap()["session"]["audio"]["input"]["turn_detection"],
        json!({"type": "semantic_vad", "eagerness": "low", "create_response": true, "interrupt_response": true})
    );

    // Turn detection off: no VAD events at all.
    let mut update = ga_session_update();
    update["session"]["audio"]["input"]["turn_detection"] = Value::Null;
    client.send(update).await;
    client.until("session.updated").await;
    client.send(append(&speech_then_silence(300, 500))).await;
    assert!(client.during(Duration::from_millis(200)).await.is_empty());
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
async fn pings_are_answered_only_by_a_reading_client_and_a_session_can_be_closed() {
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        ping_interval: Duration::from_millis(50),
        ..fast()
    })
    .await
    .unwrap();
    let mut reader = connect(&server).await;
    let mut standby = connect(&server).await;
    // The reader reads (tungstenite answers each ping as it reads); the standby does not read at all.
    reader.during(Duration::from_millis(400)).await;
    let logs = server.sessions();
    assert!(logs[0].pings_sent >= 4, "{}", logs[0].pings_sent);
    assert!(logs[0].pongs_received >= 3, "{}", logs[0].pongs_received);
    assert!(logs[1].pings_sent >= 4);
    assert_eq!(
        logs[1].pongs_received, 0,
        "a socket nobody reads answers no ping"
    );

    assert!(server.close_session(2, 4001, "idle standby"));
    let frame = loop {
        match standby.next_message().await {
            Some(Ok(Message::Close(frame))) => break frame.unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(
        (u16::from(frame.code), frame.reason.as_str()),
        (4001, "idle standby")
    );
    let logs = server.wait_for(|s| s[1].closed, STEP).await.unwrap();
    assert_eq!(logs[1].close_sent, Some((4001, "idle standby".to_string())));
    assert!(!logs[0].closed);
    assert!(!server.close_session(2, 1000, "again"), "already closed");
    assert!(!server.close_session(9, 1000, "no such session"));
}

#[tokio::test]
async fn lenient_config_keeps_the_old_forgiving_behaviour() {
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        speed_factor: f64::INFINITY,
        ..SimRealtimeConfig::lenient()
    })
    .await
    .unwrap();
    let mut client = connect_model(&server, "whatever-model").await;
    client
        .send(json!({"type": "session.update", "session": {
            "type": "realtime", "unknown_field": 1,
            "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}}
        }}))
        .await;
    assert_eq!(client.next_event().await["type"], "session.updated");
    client.send(append(&speech_then_silence(300, 500))).await;
    let events = client.until("response.done").await;
    // Transcript at the commit, fixed 100 ms deltas.
    assert!(
        position(
            &events,
            "conversation.item.input_audio_transcription.completed"
        ) < position(&events, "response.created")
    );
    let sizes = delta_sizes(&events);
    assert!(sizes.iter().all(|&s| s == 800), "{sizes:?}");
    // Cancel is synchronous.
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        speed_factor: 1.0,
        script: vec![AgentTurn::with_tone("long", 500.0, 3000)],
        ..SimRealtimeConfig::lenient()
    })
    .await
    .unwrap();
    let mut client = connect(&server).await;
    client.send(json!({"type": "response.create"})).await;
    client.until("response.output_audio.delta").await;
    client.send(json!({"type": "response.cancel"})).await;
    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.created").await;
    assert_eq!(
        find(&events, "response.done")["response"]["status"],
        "cancelled"
    );
    assert!(events.iter().all(|e| e["type"] != "error"));
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
    let mut client = connect_pcmu(&server).await;
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

#[tokio::test]
async fn text_only_responses_carry_text_and_no_audio() {
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        script: vec![AgentTurn::with_tone("in writing", 500.0, 400)],
        ..fast()
    })
    .await
    .unwrap();
    let mut client = connect_pcmu(&server).await;
    client
        .send(json!({"type": "response.create", "response": {"output_modalities": ["text"]}}))
        .await;
    let events = client.until("response.done").await;
    assert_eq!(delta_bytes(&events), 0);
    assert_eq!(
        find(&events, "response.output_text.done")["text"],
        "in writing"
    );
    assert_eq!(
        find(&events, "response.content_part.added")["part"]["type"],
        "text"
    );
    let response = &events.last().unwrap()["response"];
    assert_eq!(response["output_modalities"], json!(["text"]));
    assert_eq!(
        response["output"][0]["content"][0],
        json!({"type": "output_text", "text": "in writing"})
    );
}

#[tokio::test]
async fn a_tool_only_turn_is_the_function_call_alone() {
    let server = SimRealtimeServer::start(SimRealtimeConfig {
        script: vec![AgentTurn {
            call_tool: Some(("end_call".into(), "{}".into())),
            ..AgentTurn::with_tone("", 500.0, 0)
        }],
        ..fast()
    })
    .await
    .unwrap();
    let mut client = connect_pcmu(&server).await;
    client.send(json!({"type": "response.create"})).await;
    let events = client.until("response.done").await;
    let mut shape = kinds(&events);
    shape.dedup();
    assert_eq!(
        shape,
        vec![
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done"
        ]
    );
    assert_eq!(events[1]["output_index"], 0);
    assert_eq!(
        find(&events, "response.function_call_arguments.done")["arguments"],
        "{}"
    );
    assert_eq!(
        events.last().unwrap()["response"]["output"][0]["type"],
        "function_call"
    );
}
