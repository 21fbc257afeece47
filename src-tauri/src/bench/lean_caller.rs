//! The lean fake Twilio caller of `verbio bench`: the same protocol as `sim::twilio_caller` (signed voice
//! webhook, signed Media Streams upgrade, `connected` + `start`, a `media` frame every 20 ms, marks echoed
//! once their audio has played, `clear` honoured to the byte, `stop` and a normal close), at a fraction of
//! its cost: `media` frames are assembled from pre-encoded pieces (the payload's base64 is computed once
//! per distinct frame; only the first 20 characters, which carry the tag, are re-encoded per send), what the
//! bridge sends is read with a borrowed scan (no `serde_json::Value`), the playout keeps byte counts rather
//! than audio, and everything one wake-up sends goes out in one socket write. Each call's 20 ms clock
//! starts at a random phase, so calls don't all send on the same tick.
//!
//! The strict simulator in `sim::` stays what the tests use; this one only serves the benchmark.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;

use super::meter::{LeanPlayout, Meter};
use super::scan::{find_str, push_u64, EncodedFrame};
use crate::audio::mulaw;
use crate::sim::frame_tag::read_tag;
use crate::sim::twiml_scan;
use crate::telephony::twilio::signature;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// The frames every caller sends, encoded once for all calls.
pub struct Frames {
    pub silence: EncodedFrame,
    /// Tones by index: 0 = the caller's turn (440 Hz, 600 ms), 1 = the barge-in (300 Hz, 500 ms).
    pub tones: Vec<Vec<EncodedFrame>>,
}

impl Frames {
    pub fn new() -> Self {
        let frames = |audio: Vec<u8>| {
            audio
                .chunks(160)
                .map(|chunk| {
                    let mut raw = [mulaw::SILENCE; 160];
                    raw[..chunk.len()].copy_from_slice(chunk);
                    EncodedFrame::new(raw)
                })
                .collect::<Vec<_>>()
        };
        Frames {
            silence: EncodedFrame::new([mulaw::SILENCE; 160]),
            tones: vec![
                frames(mulaw::tone(440.0, 600, 0.5)),
                frames(mulaw::tone(300.0, 500, 0.5)),
            ],
        }
    }
}

impl Default for Frames {
    fn default() -> Self {
        Self::new()
    }
}

/// One step of a lean caller's script (the subset of `CallerStep` the benchmark uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Silence frames for this many ms.
    Silence(u32),
    /// Speak tone `n` of [`Frames::tones`].
    Speak(usize),
    /// Silence until `min_ms` of agent audio has played since the step began (or `timeout_ms` passed).
    WaitAgent {
        min_ms: u64,
        timeout_ms: u64,
    },
    /// Silence until `after_ms` of the current utterance has played, then speak tone `tone` over it.
    Barge {
        after_ms: u64,
        tone: usize,
        timeout_ms: u64,
    },
    HangUp,
}

/// A call's script: turns of speech, each answered; every other turn interrupts the answer. Ends at a
/// quiet moment after about `ms` of stream time.
pub fn turns(ms: u64) -> Vec<Step> {
    let mut steps = vec![Step::Silence(300)];
    let mut planned_ms = 300u64;
    let mut turn = 0;
    while planned_ms + 4000 < ms {
        steps.push(Step::Speak(0));
        if turn % 2 == 0 {
            steps.push(Step::Barge {
                after_ms: 700,
                tone: 1,
                timeout_ms: 10_000,
            });
        }
        steps.push(Step::WaitAgent {
            min_ms: 1500,
            timeout_ms: 10_000,
        });
        steps.push(Step::Silence(500));
        planned_ms += 4000;
        turn += 1;
    }
    steps.push(Step::HangUp);
    steps
}

enum Active {
    Silence(u32),
    Tone { tone: usize, pos: usize },
    WaitAgent { from: u64, min: u64, until: u64 },
    Barge { after: u64, tone: usize, until: u64 },
}

/// What one tick sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Silence,
    Tone(usize, usize),
    HangUp,
}

/// The script stepped once per tick (pure, like `sim::script`).
pub struct Script {
    steps: std::vec::IntoIter<Step>,
    active: Option<Active>,
    pub errors: Vec<String>,
}

impl Script {
    pub fn new(steps: Vec<Step>) -> Self {
        Script {
            steps: steps.into_iter(),
            active: None,
            errors: Vec::new(),
        }
    }

    /// One tick at stream time `now_ms`, having heard `total_ms` of agent audio (`utterance_ms` of the
    /// current utterance).
    pub fn tick(&mut self, frames: &Frames, now_ms: u64, total_ms: u64, utterance_ms: u64) -> Out {
        loop {
            let Some(active) = self.active.as_mut() else {
                self.active = match self.steps.next() {
                    None | Some(Step::HangUp) => return Out::HangUp,
                    Some(Step::Silence(ms)) => Some(Active::Silence(ms.div_ceil(20))),
                    Some(Step::Speak(tone)) => Some(Active::Tone { tone, pos: 0 }),
                    Some(Step::WaitAgent { min_ms, timeout_ms }) => Some(Active::WaitAgent {
                        from: total_ms,
                        min: min_ms,
                        until: now_ms + timeout_ms,
                    }),
                    Some(Step::Barge {
                        after_ms,
                        tone,
                        timeout_ms,
                    }) => Some(Active::Barge {
                        after: after_ms,
                        tone,
                        until: now_ms + timeout_ms,
                    }),
                };
                continue;
            };
            match active {
                Active::Silence(0) => self.active = None,
                Active::Silence(ticks) => {
                    *ticks -= 1;
                    return Out::Silence;
                }
                Active::Tone { tone, pos } => {
                    if *pos >= frames.tones[*tone].len() {
                        self.active = None;
                        continue;
                    }
                    *pos += 1;
                    return Out::Tone(*tone, *pos - 1);
                }
                Active::WaitAgent { from, min, until } => {
                    if total_ms.saturating_sub(*from) >= *min {
                        self.active = None;
                        continue;
                    }
                    if now_ms >= *until {
                        self.errors.push(format!(
                            "waiting for {min} ms of agent audio timed out at {now_ms} ms"
                        ));
                        self.active = None;
                        continue;
                    }
                    return Out::Silence;
                }
                Active::Barge { after, tone, until } => {
                    let ready = utterance_ms >= *after;
                    if !ready && now_ms < *until {
                        return Out::Silence;
                    }
                    if !ready {
                        self.errors
                            .push(format!("barge-in wait timed out at {now_ms} ms"));
                    }
                    self.active = Some(Active::Tone {
                        tone: *tone,
                        pos: 0,
                    });
                }
            }
        }
    }
}

/// One lean call.
pub struct CallSpec {
    pub bridge_base: String,
    pub auth_token: String,
    pub call_sid: String,
    pub slot: usize,
    pub steps: Vec<Step>,
    pub max_duration: Duration,
}

/// What the caller saw.
#[derive(Debug, Clone, Default)]
pub struct CallOutcome {
    pub call_sid: String,
    pub slot: usize,
    /// Stream time when the caller hung up (20 ms per tick).
    pub stream_ms: u64,
    pub frames_sent: u64,
    pub media_received: u64,
    pub clears: u64,
    pub marks_echoed: u64,
    /// Set-up failed, protocol violations, timed-out waits.
    pub errors: Vec<String>,
    /// The bridge closed or dropped the socket before the caller hung up.
    pub server_closed: bool,
    /// Placed, ran its script and hung up.
    pub completed: bool,
}

/// The websocket settings of the generator's sockets: a small read buffer (tungstenite zeroes the free
/// part of it before every read).
pub fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Places the call, runs its script, hangs up.
pub async fn run_call(
    spec: CallSpec,
    client: reqwest::Client,
    frames: Arc<Frames>,
    meter: Arc<Meter>,
) -> CallOutcome {
    let mut outcome = CallOutcome {
        call_sid: spec.call_sid.clone(),
        slot: spec.slot,
        ..CallOutcome::default()
    };
    let account_sid = format!("AC{:032x}", spec.slot);
    let (ws, stream_sid) = match place(&spec, &account_sid, &client).await {
        Ok(placed) => placed,
        Err(e) => {
            outcome.errors.push(e);
            return outcome;
        }
    };
    let mut line = Line {
        ws,
        meter,
        frames,
        slot: spec.slot,
        seq: 1,
        chunk: 0,
        ticks: 0,
        playout: LeanPlayout::default(),
        echoes: Vec::new(),
        audio: Vec::with_capacity(4096),
        stream_sid,
        after_seq: String::new(),
        outcome,
    };
    line.after_seq = format!(
        "\",\"streamSid\":\"{}\",\"media\":{{\"track\":\"inbound\",\"chunk\":\"",
        line.stream_sid
    );
    let stop = json!({
        "event": "stop", "streamSid": line.stream_sid,
        "stop": {"accountSid": account_sid, "callSid": spec.call_sid}
    });
    line.run(Script::new(spec.steps), spec.max_duration, stop)
        .await
}

/// Webhook, TwiML, upgrade, `connected` + `start`.
async fn place(
    spec: &CallSpec,
    account_sid: &str,
    client: &reqwest::Client,
) -> Result<(Ws, String), String> {
    let params: Vec<(&str, &str)> = vec![
        ("AccountSid", account_sid),
        ("ApiVersion", "2010-04-01"),
        ("CallSid", &spec.call_sid),
        ("CallStatus", "ringing"),
        ("Direction", "inbound"),
        ("From", "+15005550006"),
        ("To", "+15005550001"),
    ];
    let url = format!("{}/twiml", spec.bridge_base.trim_end_matches('/'));
    let response = client
        .post(&url)
        .form(&params)
        .header(
            "X-Twilio-Signature",
            signature::compute(&spec.auth_token, &url, &params),
        )
        .timeout(CONNECT_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("webhook: {e}"))?;
    let status = response.status();
    let twiml = response.text().await.map_err(|e| format!("webhook: {e}"))?;
    if !status.is_success() {
        return Err(format!("webhook answered {status}: {twiml:.200}"));
    }
    let stream = twiml_scan::parse(&twiml).map_err(|e| format!("TwiML: {e}"))?;
    let mut request = stream
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("stream URL: {e}"))?;
    let sig = signature::compute::<&str, &str>(&spec.auth_token, &stream.url, &[]);
    request.headers_mut().insert(
        "X-Twilio-Signature",
        HeaderValue::from_str(&sig).map_err(|e| e.to_string())?,
    );
    let (mut ws, _) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(request, Some(socket_config()), true),
    )
    .await
    .map_err(|_| "media stream upgrade timed out".to_string())?
    .map_err(|e| format!("media stream upgrade: {e}"))?;
    let stream_sid = format!("MZ{:032x}", rand::random::<u128>());
    let parameters: serde_json::Map<String, serde_json::Value> = stream
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let connected = json!({"event": "connected", "protocol": "Call", "version": "1.0.0"});
    let start = json!({
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": stream_sid,
        "start": {
            "accountSid": account_sid,
            "streamSid": stream_sid,
            "callSid": spec.call_sid,
            "tracks": ["inbound"],
            "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        }
    });
    let opened = async {
        ws.feed(Message::text(connected.to_string())).await?;
        ws.feed(Message::text(start.to_string())).await?;
        ws.flush().await
    };
    tokio::time::timeout(SEND_TIMEOUT, opened)
        .await
        .map_err(|_| "sending start timed out".to_string())?
        .map_err(|e| format!("sending start: {e}"))?;
    Ok((ws, stream_sid))
}

struct Line {
    ws: Ws,
    meter: Arc<Meter>,
    frames: Arc<Frames>,
    slot: usize,
    /// Last `sequenceNumber` used.
    seq: u64,
    chunk: u64,
    ticks: u64,
    playout: LeanPlayout,
    echoes: Vec<String>,
    /// Decoded payload of the last media message.
    audio: Vec<u8>,
    stream_sid: String,
    /// `","streamSid":"MZ…","media":{"track":"inbound","chunk":"`: the constant run after the sequence number.
    after_seq: String,
    outcome: CallOutcome,
}

struct Gone;

impl Line {
    async fn run(
        mut self,
        mut script: Script,
        max_duration: Duration,
        stop: serde_json::Value,
    ) -> CallOutcome {
        let phase = Duration::from_micros(rand::random_range(0..20_000));
        let mut clock = tokio::time::interval_at(Instant::now() + phase, Duration::from_millis(20));
        clock.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let limit = tokio::time::sleep(max_duration);
        tokio::pin!(limit);
        let mut hang_up = false;
        loop {
            tokio::select! {
                biased;
                _ = &mut limit => {
                    self.outcome.errors.push(format!("call hit its limit of {max_duration:?}"));
                    hang_up = true;
                    break;
                }
                message = self.ws.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if self.on_text(text.as_str()).await.is_err() {
                            self.outcome.server_closed = true;
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => {
                        self.outcome.server_closed = true;
                        break;
                    }
                    Some(Ok(Message::Binary(_))) => self.outcome.errors.push("binary frame from bridge".into()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        self.outcome.server_closed = true;
                        self.outcome.errors.push(format!("socket error: {e}"));
                        break;
                    }
                },
                _ = clock.tick() => match self.on_tick(&mut script).await {
                    Ok(true) => {}
                    Ok(false) => {
                        hang_up = true;
                        break;
                    }
                    Err(Gone) => {
                        self.outcome.server_closed = true;
                        break;
                    }
                },
            }
        }
        self.outcome.errors.append(&mut script.errors);
        self.outcome.stream_ms = self.ticks * 20;
        self.outcome.frames_sent = self.chunk;
        if hang_up {
            self.hang_up(stop).await;
            self.outcome.completed = !self.outcome.server_closed;
        }
        self.outcome
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn mark_echo(&mut self, name: &str) -> Message {
        let mut text = String::with_capacity(96 + name.len() + self.stream_sid.len());
        text.push_str("{\"event\":\"mark\",\"sequenceNumber\":\"");
        let seq = self.next_seq();
        push_u64(&mut text, seq);
        text.push_str("\",\"streamSid\":\"");
        text.push_str(&self.stream_sid);
        text.push_str("\",\"mark\":{\"name\":\"");
        text.push_str(name); // as received: already valid inside a JSON string
        text.push_str("\"}}");
        self.outcome.marks_echoed += 1;
        Message::text(text)
    }

    /// Queues the echoes of `self.echoes` (not yet written).
    async fn feed_echoes(&mut self) -> Result<(), Gone> {
        let echoes = std::mem::take(&mut self.echoes);
        for name in &echoes {
            let message = self.mark_echo(name);
            self.ws.feed(message).await.map_err(|_| Gone)?;
        }
        self.echoes = echoes;
        self.echoes.clear();
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Gone> {
        match tokio::time::timeout(SEND_TIMEOUT, self.ws.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.outcome.errors.push(format!("send failed: {e}"));
                Err(Gone)
            }
            Err(_) => {
                self.outcome
                    .errors
                    .push(format!("send blocked for {SEND_TIMEOUT:?}"));
                Err(Gone)
            }
        }
    }

    /// One 20 ms tick: play, echo finished marks, send this tick's frame, all in one write.
    async fn on_tick(&mut self, script: &mut Script) -> Result<bool, Gone> {
        let now_ms = self.ticks * 20;
        self.ticks += 1;
        let total_ms = self.playout.total_played_ms();
        let utterance_ms = self.playout.utterance_played_ms();
        let at = std::time::Instant::now();
        let mut echoes = std::mem::take(&mut self.echoes);
        self.playout.tick(at, &mut echoes);
        self.echoes = echoes;
        self.feed_echoes().await?;
        let frames = self.frames.clone();
        let frame = match script.tick(&frames, now_ms, total_ms, utterance_ms) {
            Out::HangUp => {
                self.flush().await?;
                return Ok(false);
            }
            Out::Silence => &frames.silence,
            Out::Tone(tone, pos) => &frames.tones[tone][pos],
        };
        self.chunk += 1;
        let seq = self.next_seq();
        let mut text = String::with_capacity(420);
        text.push_str("{\"event\":\"media\",\"sequenceNumber\":\"");
        push_u64(&mut text, seq);
        text.push_str(&self.after_seq);
        push_u64(&mut text, self.chunk);
        text.push_str("\",\"timestamp\":\"");
        push_u64(&mut text, now_ms);
        text.push_str("\",\"payload\":\"");
        frame.push_tagged(&mut text, Meter::frame_tag(self.slot, self.chunk));
        text.push_str("\"}}");
        self.meter.frame_sent(self.slot, self.chunk);
        self.ws.feed(Message::text(text)).await.map_err(|_| Gone)?;
        self.flush().await?;
        Ok(true)
    }

    /// One message from the bridge: `media`, `mark` or `clear`.
    async fn on_text(&mut self, text: &str) -> Result<(), Gone> {
        let event = find_str(text, &["event"]).unwrap_or("");
        if find_str(text, &["streamSid"]) != Some(self.stream_sid.as_str()) {
            self.outcome.errors.push(format!(
                "{event:.40} message without this stream's streamSid"
            ));
            return Ok(());
        }
        match event {
            "media" => {
                let payload = find_str(text, &["media", "payload"]).unwrap_or("");
                self.audio.clear();
                if base64::engine::general_purpose::STANDARD
                    .decode_vec(payload, &mut self.audio)
                    .is_err()
                    || self.audio.is_empty()
                {
                    self.outcome
                        .errors
                        .push("media without a valid base64 payload".into());
                    return Ok(());
                }
                self.outcome.media_received += 1;
                let mut response = None;
                for offset in (0..self.audio.len()).step_by(160) {
                    if let Some(tag) = read_tag(&self.audio[offset..]) {
                        response = response.or(self.meter.delta_received(self.slot, tag));
                    }
                }
                self.playout.enqueue_audio(self.audio.len(), response);
            }
            "mark" => match find_str(text, &["mark", "name"]) {
                Some(name) => self.playout.enqueue_mark(name.to_string()),
                None => self.outcome.errors.push("mark without mark.name".into()),
            },
            "clear" => {
                let mut echoes = std::mem::take(&mut self.echoes);
                let heard = self.playout.clear(std::time::Instant::now(), &mut echoes);
                self.echoes = echoes;
                self.outcome.clears += 1;
                self.meter.clear_received(self.slot, heard);
                self.feed_echoes().await?;
                self.flush().await?;
            }
            other => self
                .outcome
                .errors
                .push(format!("unexpected event from bridge: {other:.40}")),
        }
        Ok(())
    }

    /// `stop`, then a normal close, then read until the close handshake is done (bounded).
    async fn hang_up(&mut self, mut stop: serde_json::Value) {
        self.meter.hung_up(self.slot);
        let seq = self.next_seq();
        stop["sequenceNumber"] = json!(seq.to_string());
        if self.ws.feed(Message::text(stop.to_string())).await.is_err() {
            return;
        }
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "call ended".into(),
        };
        if self.ws.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            // Audio still arriving counts as received (it reached the caller before the close).
            while let Some(Ok(message)) = self.ws.next().await {
                if let Message::Text(text) = message {
                    if find_str(text.as_str(), &["event"]) == Some("media") {
                        let payload = find_str(text.as_str(), &["media", "payload"]).unwrap_or("");
                        self.audio.clear();
                        if base64::engine::general_purpose::STANDARD
                            .decode_vec(payload, &mut self.audio)
                            .is_ok()
                        {
                            for offset in (0..self.audio.len()).step_by(160) {
                                if let Some(tag) = read_tag(&self.audio[offset..]) {
                                    self.meter.delta_received(self.slot, tag);
                                }
                            }
                        }
                    }
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_speaks_waits_and_barges_in() {
        let frames = Frames::new();
        let mut s = Script::new(vec![
            Step::Silence(40),
            Step::Speak(0),
            Step::Barge {
                after_ms: 100,
                tone: 1,
                timeout_ms: 1000,
            },
            Step::WaitAgent {
                min_ms: 200,
                timeout_ms: 100,
            },
            Step::HangUp,
        ]);
        let mut t = 0;
        let mut tick = |s: &mut Script, total, utt| {
            let out = s.tick(&frames, t, total, utt);
            t += 20;
            out
        };
        assert_eq!(tick(&mut s, 0, 0), Out::Silence);
        assert_eq!(tick(&mut s, 0, 0), Out::Silence);
        for pos in 0..30 {
            assert_eq!(tick(&mut s, 0, 0), Out::Tone(0, pos));
        }
        assert_eq!(tick(&mut s, 0, 60), Out::Silence, "barge-in waits");
        assert_eq!(tick(&mut s, 0, 100), Out::Tone(1, 0));
        for pos in 1..25 {
            assert_eq!(tick(&mut s, 0, 100), Out::Tone(1, pos));
        }
        // The wait for agent audio times out after 100 ms of silence, then the call hangs up.
        let outs: Vec<Out> = (0..7).map(|_| tick(&mut s, 120, 0)).collect();
        assert_eq!(outs.last(), Some(&Out::HangUp));
        assert_eq!(s.errors.len(), 1);
        assert!(turns(15_000).len() > 4);
        assert_eq!(turns(1000), vec![Step::Silence(300), Step::HangUp]);
    }

    #[test]
    fn frames_are_whole_and_encoded() {
        let f = Frames::new();
        assert_eq!(f.tones[0].len(), 30);
        assert_eq!(f.tones[1].len(), 25);
        assert_eq!(f.silence.base64.len(), 216);
    }
}
