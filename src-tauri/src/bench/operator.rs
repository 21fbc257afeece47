//! `verbio bench --operator N`: the operator's path, measured in this process on one simulated call
//! (the strict Realtime simulator, a fake Twilio caller, the real core and its desk) over N take-over
//! and hand-back cycles.
//!
//! Every operator frame is tagged (see `sim::frame_tag`) on its way from the microphone to the desk, with
//! the time it was captured; the fake caller reads the tag off the Twilio `media` it receives. That
//! gives:
//! - take-over → first operator frame at the caller (the agent cut, the open microphone re-routed, the first
//!   frame relayed; the microphone is opened ahead, as the window does, and its opening timed apart);
//! - microphone → Twilio frame for every frame (with a real device, from the capture time the driver
//!   reports, so its own buffer is included; cpal's figures are printed beside it);
//! - the caller's audio to the model around each switch: the longest gap between two caller frames
//!   reaching the model within 1 s of a take-over or hand-back (a switch that stalled the call's task
//!   would show here);
//! - hand-back → the agent's next audio at the caller (the simulator answers after its usual delay).
//!
//! `--microphone default` (or a device name) captures from a real input device (cpal); without it a
//! synthetic, paced microphone is used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use super::{fail, percentiles, BenchError, Percentiles};
use crate::audio::microphone::{self, MicFrame};
use crate::config::Config;
use crate::services::operator::MicControls;
use crate::sim::frame_tag::{read_tag, tag_frame};
use crate::sim::microphone::{Segment, ToneMicrophone};
use crate::sim::realtime_server::{AgentTurn, RealtimeProbe, SimRealtimeConfig, SimRealtimeServer};
use crate::sim::twilio_caller::{CallerConfig, CallerProbe, CallerStep, SimCall};
use crate::types::Secret;

/// Operator frame tags start here, far from the caller's own frame numbers.
const TAG_BASE: u32 = 0x4000_0000;
const AUTH_TOKEN: &str = "bench-twilio-auth-token-0001";
/// How long each hold lasts.
const HOLD: Duration = Duration::from_millis(1500);
/// The window around a switch in which the caller's audio to the model is watched.
const SWITCH_WINDOW: Duration = Duration::from_secs(1);

/// What the operator benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct OperatorReport {
    pub cycles: usize,
    /// `synthetic` or the input device's name.
    pub microphone: String,
    /// Take-over asked → first operator frame received by the caller.
    pub take_over_to_first_frame: Percentiles,
    /// Microphone capture → the frame received by the caller (Twilio's side of the socket).
    pub mic_to_twilio: Percentiles,
    /// The longest gap between caller frames reaching the model within 1 s of a switch, ms.
    pub caller_gap_at_switch_max_ms: f64,
    /// The longest gap between caller frames reaching the model over the whole call, ms.
    pub caller_gap_max_ms: f64,
    /// Hand-back asked → the agent's next audio received by the caller.
    pub hand_back_to_agent_audio: Percentiles,
    /// Opening the microphone → its first frame (before the take-overs: the window opens it ahead).
    pub cold_open_to_first_frame_ms: f64,
    /// The device's capture delay as cpal reports it (real devices).
    pub device_latency_ms: Option<f64>,
    /// The device's callback buffer, in frames at its own rate (real devices).
    pub device_buffer_frames: Option<u32>,
    /// The device's rate (real devices).
    pub device_rate: Option<u32>,
    pub holds_targets: bool,
}

impl OperatorReport {
    pub fn print(&self) {
        let p = |label: &str, v: &Percentiles| {
            println!(
                "  {label:<34} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  (n={})",
                v.p50_ms, v.p99_ms, v.max_ms, v.count
            )
        };
        println!(
            "operator: {} take-over/hand-back cycles, microphone: {}",
            self.cycles, self.microphone
        );
        p(
            "take over → first operator frame",
            &self.take_over_to_first_frame,
        );
        p("microphone → Twilio frame", &self.mic_to_twilio);
        p("hand back → agent audio", &self.hand_back_to_agent_audio);
        println!(
            "  caller audio to the model: longest gap {:.1} ms within 1 s of a switch, {:.1} ms overall",
            self.caller_gap_at_switch_max_ms, self.caller_gap_max_ms
        );
        println!(
            "  opening the microphone → its first frame: {:.1} ms (done before taking over)",
            self.cold_open_to_first_frame_ms
        );
        if let Some(rate) = self.device_rate {
            println!(
                "  device: {rate} Hz, buffer {} frames, capture delay (cpal) {}",
                self.device_buffer_frames
                    .map_or("unknown".into(), |f| f.to_string()),
                self.device_latency_ms
                    .map_or("unknown".into(), |ms| format!("{ms:.1} ms"))
            );
        }
        println!(
            "  targets (take over ≤ 100 ms, mic → Twilio ≤ 60 ms + device, switch gap ≤ 100 ms): {}",
            if self.holds_targets { "held" } else { "MISSED" }
        );
    }
}

/// Capture times of the tagged operator frames, by tag.
type Captures = Arc<Mutex<HashMap<u32, Instant>>>;

/// Tags each frame on its way from a microphone to the desk and remembers when it was captured.
fn tagging_relay(
    mut from: mpsc::Receiver<MicFrame>,
    captures: Captures,
    next: Arc<Mutex<u32>>,
) -> mpsc::Receiver<MicFrame> {
    let (tx, rx) = mpsc::channel(10);
    tokio::spawn(async move {
        while let Some(mut frame) = from.recv().await {
            let seq = {
                let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
                *n += 1;
                *n
            };
            tag_frame(&mut frame.mulaw, seq);
            captures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(seq, frame.captured_at);
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    });
    rx
}

/// An open microphone, its frames, and the device's rate (real devices).
type OpenedMicrophone = (Box<dyn MicControls>, mpsc::Receiver<MicFrame>, Option<u32>);

/// The operator's microphone: the real device, or the synthetic one.
fn open_microphone(device: Option<&str>) -> Result<OpenedMicrophone, BenchError> {
    match device {
        None => {
            let (mic, frames) = ToneMicrophone::start(vec![Segment::tone(1000.0, 1000)], true);
            Ok((Box::new(mic), frames, None))
        }
        Some(name) => {
            let (tx, rx) = mpsc::channel(10);
            let wanted = (name != "default").then_some(name);
            let mic = microphone::open(wanted, tx).map_err(fail)?;
            let rate = mic.rate;
            Ok((Box::new(mic), rx, Some(rate)))
        }
    }
}

/// Runs the benchmark: `cycles` take-overs and hand-backs on one call.
pub async fn run(cycles: usize, device: Option<String>) -> Result<OperatorReport, BenchError> {
    let (model_probe, mut model_probes) = mpsc::unbounded_channel();
    let model = SimRealtimeServer::start(SimRealtimeConfig {
        script: vec![AgentTurn::with_tone(
            "Let me tell you about it.",
            880.0,
            4000,
        )],
        probe: Some(model_probe),
        record_events: false,
        ..SimRealtimeConfig::default()
    })
    .await
    .map_err(fail)?;
    let data = tempfile::tempdir().map_err(fail)?;
    let config = Config {
        port: 0,
        api_port: 0,
        data_dir: data.path().to_path_buf(),
        openai_api_key: Secret::new("sk-bench-not-a-real-key"),
        realtime_url: model.url(),
        twilio_auth_token: Secret::new(AUTH_TOKEN),
        ..Config::default()
    };
    let running = crate::app::start(config).await.map_err(fail)?;
    let base = format!("http://{}", running.local_addr);
    let (caller_probe, mut caller_probes) = mpsc::unbounded_channel();
    let mut caller = CallerConfig::new(base, AUTH_TOKEN);
    caller.probe = Some(caller_probe);
    caller.tag_frames = true;
    caller.record_audio = false;
    caller.record_messages = false;
    caller.max_duration = Duration::from_secs(60 + cycles as u64 * 10);
    let call = SimCall::place(
        caller,
        vec![
            CallerStep::Speak {
                tone_hz: 440.0,
                ms: 600,
            },
            CallerStep::Silence(u32::MAX / 2),
        ],
    )
    .await
    .map_err(fail)?;
    let sid = call.call_sid().to_string();
    let desk = running.services.operator.clone();
    let captures: Captures = Arc::default();
    let next_tag = Arc::new(Mutex::new(TAG_BASE));
    // The microphone opens before the first take-over, as the window opens it when the operator looks
    // at a live call; how long its first frame took is reported on its own.
    let opened_at = Instant::now();
    let (controls, mut frames, device_rate) = open_microphone(device.as_deref())?;
    tokio::time::timeout(Duration::from_secs(10), frames.recv())
        .await
        .map_err(|_| fail("the microphone sent nothing for 10 s"))?
        .ok_or_else(|| fail("the microphone stopped"))?;
    let cold_open = opened_at.elapsed();
    // Let the device settle (PulseAudio reports a long capture delay for its first second or two).
    tokio::time::sleep(Duration::from_secs(2)).await;
    while frames.try_recv().is_ok() {}
    let device_name = controls.device();
    let device_latency = controls.device_latency();
    let device_buffer_frames = controls.buffer_frames();
    let frames = tagging_relay(frames, captures.clone(), next_tag.clone());
    desk.prepare_with(controls, frames);
    let mut take_overs = Vec::new();
    let mut hand_backs = Vec::new();
    for _ in 0..cycles {
        // The agent is talking when the operator steps in.
        let played = call.played_ms();
        call.wait_played(played + 300, Duration::from_secs(15))
            .await
            .map_err(fail)?;
        let asked = Instant::now();
        // The open microphone: what the window's take-over does.
        desk.take_over(&sid, Some(&device_name))
            .await
            .map_err(fail)?;
        take_overs.push(asked);
        tokio::time::sleep(HOLD).await;
        let asked = Instant::now();
        desk.hand_back(&sid).await.map_err(fail)?;
        hand_backs.push(asked);
    }
    let played = call.played_ms();
    let _ = call
        .wait_played(played + 300, Duration::from_secs(15))
        .await;
    call.hang_up_now();
    call.finish().await;
    running.shutdown().await;
    drop(model);

    // The caller's side: operator frames by tag, agent audio by arrival.
    let mut mic_to_twilio = Vec::new();
    let mut first_operator: Vec<Option<Instant>> = vec![None; take_overs.len()];
    let mut agent_audio = Vec::new();
    let captured = captures.lock().unwrap_or_else(|p| p.into_inner()).clone();
    while let Ok(probe) = caller_probes.try_recv() {
        let CallerProbe::MediaReceived { at, bytes, .. } = probe else {
            continue;
        };
        match read_tag(&bytes).filter(|t| *t > TAG_BASE) {
            Some(tag) => {
                if let Some(capture) = captured.get(&tag) {
                    mic_to_twilio.push(at.saturating_duration_since(*capture).as_micros() as u64);
                }
                if let Some(i) = take_overs.iter().rposition(|t| *t <= at) {
                    first_operator[i] = first_operator[i].or(Some(at));
                }
            }
            None => agent_audio.push(at),
        }
    }
    let mut take_over_us: Vec<u64> = take_overs
        .iter()
        .zip(&first_operator)
        .filter_map(|(asked, first)| first.map(|f| f.duration_since(*asked).as_micros() as u64))
        .collect();
    let mut hand_back_us: Vec<u64> = hand_backs
        .iter()
        .filter_map(|asked| {
            agent_audio
                .iter()
                .find(|at| *at > asked)
                .map(|at| at.duration_since(*asked).as_micros() as u64)
        })
        .collect();
    // The model's side: caller frames' arrival gaps.
    let mut arrivals = Vec::new();
    while let Ok(probe) = model_probes.try_recv() {
        if let RealtimeProbe::Append { at, .. } = probe {
            arrivals.push(at);
        }
    }
    arrivals.sort();
    let switches: Vec<Instant> = take_overs.iter().chain(&hand_backs).copied().collect();
    let (mut gap_max, mut gap_at_switch) = (Duration::ZERO, Duration::ZERO);
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        gap_max = gap_max.max(gap);
        let near = switches.iter().any(|s| {
            let (a, b) = (
                pair[0].max(*s) - pair[0].min(*s),
                pair[1].max(*s) - pair[1].min(*s),
            );
            a < SWITCH_WINDOW || b < SWITCH_WINDOW
        });
        if near {
            gap_at_switch = gap_at_switch.max(gap);
        }
    }
    let take_over = percentiles(&mut take_over_us);
    let mic = percentiles(&mut mic_to_twilio);
    let allowance = device_latency.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let holds_targets = take_over.count == cycles
        && take_over.max_ms <= 100.0
        && mic.p99_ms <= 60.0 + allowance
        && gap_at_switch <= Duration::from_millis(100);
    Ok(OperatorReport {
        cycles,
        microphone: device.unwrap_or_else(|| "synthetic".into()),
        take_over_to_first_frame: take_over,
        mic_to_twilio: mic,
        caller_gap_at_switch_max_ms: gap_at_switch.as_secs_f64() * 1000.0,
        caller_gap_max_ms: gap_max.as_secs_f64() * 1000.0,
        hand_back_to_agent_audio: percentiles(&mut hand_back_us),
        device_latency_ms: device_latency.map(|d| d.as_secs_f64() * 1000.0),
        device_buffer_frames,
        device_rate,
        cold_open_to_first_frame_ms: cold_open.as_secs_f64() * 1000.0,
        holds_targets,
    })
}
