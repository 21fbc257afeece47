//! The caller's end of one Media Streams socket: the 20 ms clock that sends the script's frames and plays
//! the bridge's audio, and the handling of what the bridge sends (`media`, `mark`, `clear`).
//!
//! One task per call owns all of it, so the clocks, counters and report need no locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use super::frame_tag::tag_frame;
use super::playout::Playout;
use super::script::{Frame, Heard, Instantly, Script};
use super::twilio_caller::{CallerConfig, CallerProbe, CallerReport, CallerWs, MarkEcho};
use super::SimError;

/// Time allowed for one send to the bridge before the line counts as dead (keeps every wait bounded).
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for the closing handshake.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The media stream from the caller's side: socket, clocks, counters and the report being built.
pub(crate) struct Line {
    ws: CallerWs,
    config: CallerConfig,
    stream_sid: String,
    /// Last `sequenceNumber` used (shared by every message after `connected`).
    seq: u64,
    /// Last media `chunk` number.
    chunk: u64,
    /// 20 ms ticks since the stream started (the stream clock).
    ticks: u64,
    /// Wall-clock time of the last tick.
    last_tick_at: Option<std::time::Instant>,
    playout: Playout,
    played_ms: Arc<AtomicU64>,
    pub(crate) report: CallerReport,
}

/// The socket can no longer be used.
struct Gone;

enum TickEnd {
    Continue,
    HangUp,
}

impl Line {
    pub(crate) fn new(
        ws: CallerWs,
        config: CallerConfig,
        stream_sid: String,
        played_ms: Arc<AtomicU64>,
    ) -> Self {
        let playout = Playout::new(config.record_audio).with_start_delay(config.playout_delay);
        Self {
            ws,
            config,
            stream_sid,
            seq: 0,
            chunk: 0,
            ticks: 0,
            last_tick_at: None,
            playout,
            played_ms,
            report: CallerReport::default(),
        }
    }

    /// Stream time of the next tick.
    fn now_ms(&self) -> u64 {
        self.ticks * 20
    }

    /// Stream time of an instant between ticks (exact to the ms, for clears).
    fn stream_ms_at(&self, at: std::time::Instant) -> u64 {
        match self.last_tick_at {
            Some(last) => {
                let since = at.saturating_duration_since(last).as_millis().min(20) as u64;
                (self.ticks.saturating_sub(1)) * 20 + since
            }
            None => 0,
        }
    }

    fn next_seq(&mut self) -> String {
        self.seq += 1;
        self.seq.to_string()
    }

    async fn send(&mut self, message: Message) -> Result<(), Gone> {
        match tokio::time::timeout(SEND_TIMEOUT, self.ws.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => {
                self.report.errors.push(format!("send failed: {err}"));
                Err(Gone)
            }
            Err(_) => {
                self.report
                    .errors
                    .push(format!("send blocked for {SEND_TIMEOUT:?}"));
                Err(Gone)
            }
        }
    }

    async fn send_json(&mut self, value: Value) -> Result<(), Gone> {
        self.send(Message::text(value.to_string())).await
    }

    /// `connected` then `start`, as Twilio opens every stream.
    pub(crate) async fn open(
        &mut self,
        custom_parameters: Map<String, Value>,
    ) -> Result<(), SimError> {
        let connected = json!({"event": "connected", "protocol": "Call", "version": "1.0.0"});
        let seq = self.next_seq();
        let start = json!({
            "event": "start",
            "sequenceNumber": seq,
            "streamSid": self.stream_sid,
            "start": {
                "accountSid": self.config.account_sid,
                "streamSid": self.stream_sid,
                "callSid": self.config.call_sid,
                "tracks": ["inbound"],
                "customParameters": custom_parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
            }
        });
        for message in [connected, start] {
            tokio::time::timeout(
                SEND_TIMEOUT,
                self.ws.send(Message::text(message.to_string())),
            )
            .await
            .map_err(|_| SimError::Timeout {
                what: "sending start".into(),
                after: SEND_TIMEOUT,
            })??;
        }
        Ok(())
    }

    pub(crate) async fn run(
        mut self,
        mut script: Script,
        mut hang_up: watch::Receiver<bool>,
    ) -> CallerReport {
        let mut clock = tokio::time::interval(Duration::from_millis(20));
        clock.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let limit = tokio::time::sleep(self.config.max_duration);
        tokio::pin!(limit);
        loop {
            tokio::select! {
                biased;
                _ = hang_up.changed() => {
                    self.hang_up().await;
                    break;
                }
                _ = &mut limit => {
                    self.report.errors.push(format!("call hit max_duration {:?}", self.config.max_duration));
                    self.hang_up().await;
                    break;
                }
                message = self.ws.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if self.on_message(text.as_str()).await.is_err() {
                            self.report.server_closed = true;
                            break;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        self.report.server_closed = true;
                        self.report.close_code = frame.map(|f| u16::from(f.code));
                        self.drain().await;
                        break;
                    }
                    Some(Ok(Message::Binary(_))) => self.report.errors.push("binary frame from bridge".into()),
                    Some(Ok(_)) => {}
                    Some(Err(err)) => {
                        self.report.server_closed = true;
                        self.report.errors.push(format!("socket error: {err}"));
                        break;
                    }
                    None => {
                        self.report.server_closed = true;
                        break;
                    }
                },
                _ = clock.tick() => match self.on_tick(&mut script).await {
                    Ok(TickEnd::Continue) => {}
                    Ok(TickEnd::HangUp) => {
                        self.hang_up().await;
                        break;
                    }
                    Err(Gone) => {
                        self.report.server_closed = true;
                        break;
                    }
                },
            }
        }
        self.into_report()
    }

    fn into_report(mut self) -> CallerReport {
        self.report.heard_ms = self.playout.total_played_ms();
        self.report.heard = std::mem::take(&mut self.playout.heard);
        self.report.heard_segments = std::mem::take(&mut self.playout.segments);
        self.report
    }

    /// One 20 ms tick: play, echo finished marks, then send what the script says.
    async fn on_tick(&mut self, script: &mut Script) -> Result<TickEnd, Gone> {
        let now_ms = self.now_ms();
        self.ticks += 1;
        let at = std::time::Instant::now();
        self.last_tick_at = Some(at);
        // Everything started before this tick has finished playing by now: that is what the script hears.
        self.played_ms
            .store(self.playout.total_played_ms(), Ordering::SeqCst);
        let heard = Heard {
            total_ms: self.playout.total_played_ms(),
            utterance_ms: self.playout.utterance_played_ms(),
        };
        let played = self.playout.tick(now_ms, at);
        for name in played.echoes {
            self.echo_mark(name, now_ms, false).await?;
        }
        let plan = script.tick(heard, Instant::now());
        self.report.errors.extend(plan.errors);
        for action in plan.instantly {
            match action {
                Instantly::Dtmf(digit) => {
                    let seq = self.next_seq();
                    let dtmf = json!({
                        "event": "dtmf", "sequenceNumber": seq, "streamSid": self.stream_sid,
                        "dtmf": {"track": "inbound_track", "digit": digit.to_string()}
                    });
                    self.send_json(dtmf).await?;
                }
                Instantly::Raw(text) => self.send(Message::text(text)).await?,
            }
        }
        match plan.frame {
            Some(Frame::Media(mut frame)) => {
                self.send_media(&mut frame, now_ms).await?;
                Ok(TickEnd::Continue)
            }
            Some(Frame::Skip) | None => Ok(TickEnd::Continue),
            Some(Frame::HangUp) | Some(Frame::Finished) => Ok(TickEnd::HangUp),
        }
    }

    async fn send_media(&mut self, frame: &mut [u8; 160], timestamp_ms: u64) -> Result<(), Gone> {
        self.chunk += 1;
        if self.config.tag_frames {
            tag_frame(frame, self.config.tag_base.wrapping_add(self.chunk as u32));
        }
        let seq = self.next_seq();
        let media = json!({
            "event": "media",
            "sequenceNumber": seq,
            "streamSid": self.stream_sid,
            "media": {
                "track": "inbound",
                "chunk": self.chunk.to_string(),
                "timestamp": timestamp_ms.to_string(),
                "payload": base64::engine::general_purpose::STANDARD.encode(&frame[..]),
            }
        });
        self.send_json(media).await?;
        self.report.media_frames_sent += 1;
        if let Some(probe) = &self.config.probe {
            let _ = probe.send(CallerProbe::MediaSent {
                call: self.config.call_sid.clone(),
                at: std::time::Instant::now(),
                seq: u64::from(self.config.tag_base.wrapping_add(self.chunk as u32)),
            });
        }
        Ok(())
    }

    async fn echo_mark(&mut self, name: String, at_ms: u64, via_clear: bool) -> Result<(), Gone> {
        let seq = self.next_seq();
        let echo = json!({"event": "mark", "sequenceNumber": seq, "streamSid": self.stream_sid, "mark": {"name": name}});
        self.send_json(echo).await?;
        self.report.marks_echoed += 1;
        self.report.mark_echoes.push(MarkEcho {
            name,
            at_ms,
            via_clear,
        });
        Ok(())
    }

    /// One message from the bridge: `media`, `mark` or `clear`.
    async fn on_message(&mut self, text: &str) -> Result<(), Gone> {
        let message: Value = match serde_json::from_str(text) {
            Ok(message) => message,
            Err(err) => {
                self.report
                    .errors
                    .push(format!("non-JSON message from bridge ({err}): {text:.200}"));
                if self.config.record_messages {
                    self.report.received.push(Value::String(text.to_string()));
                }
                return Ok(());
            }
        };
        if self.config.record_messages {
            self.report.received.push(message.clone());
        }
        let event = message.get("event").and_then(Value::as_str).unwrap_or("");
        if message.get("streamSid").and_then(Value::as_str) != Some(self.stream_sid.as_str()) {
            self.report
                .errors
                .push(format!("{event} message without this stream's streamSid"));
            return Ok(());
        }
        match event {
            "media" => {
                let payload = message.pointer("/media/payload").and_then(Value::as_str);
                let Some(audio) =
                    payload.and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
                else {
                    self.report
                        .errors
                        .push("media without a valid base64 payload".into());
                    return Ok(());
                };
                self.report.media_received += 1;
                self.playout.enqueue_audio(&audio);
                if let Some(probe) = &self.config.probe {
                    let _ = probe.send(CallerProbe::MediaReceived {
                        call: self.config.call_sid.clone(),
                        at: std::time::Instant::now(),
                        bytes: audio,
                    });
                }
            }
            "mark" => match message.pointer("/mark/name").and_then(Value::as_str) {
                Some(name) => {
                    self.report.marks_received += 1;
                    self.playout.enqueue_mark(name.to_string());
                }
                None => self.report.errors.push("mark without mark.name".into()),
            },
            "clear" => {
                let at = std::time::Instant::now();
                let now_ms = self.stream_ms_at(at);
                let (dropped_marks, played_ms) = self.playout.clear(at);
                self.report.clears.push(now_ms);
                self.report.played_ms_at_clear.push(played_ms);
                if let Some(probe) = &self.config.probe {
                    let _ = probe.send(CallerProbe::ClearReceived {
                        call: self.config.call_sid.clone(),
                        at: std::time::Instant::now(),
                    });
                }
                for name in dropped_marks {
                    self.echo_mark(name, now_ms, true).await?;
                }
            }
            other => self
                .report
                .errors
                .push(format!("unexpected event from bridge: {other:?}")),
        }
        Ok(())
    }

    /// Twilio's hang-up: `stop`, then a normal close.
    async fn hang_up(&mut self) {
        let seq = self.next_seq();
        let stop = json!({
            "event": "stop", "sequenceNumber": seq, "streamSid": self.stream_sid,
            "stop": {"accountSid": self.config.account_sid, "callSid": self.config.call_sid}
        });
        if self.send_json(stop).await.is_err() {
            return;
        }
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "call ended".into(),
        };
        if self.send(Message::Close(Some(frame))).await.is_ok() {
            self.drain().await;
        }
    }

    /// Reads until the closing handshake completes (bounded), so the close reaches the peer intact.
    async fn drain(&mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}
