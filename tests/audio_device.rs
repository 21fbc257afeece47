//! Through a real audio device: playback of a recording and live listen-in go out through `cpal`
//! (ALSA's default device → PulseAudio), are captured from the null sink's monitor with `parec`, and
//! the expected tone is found in what was captured.
//!
//! `scripts/test.sh` starts PulseAudio with a null sink and sets `VERBIO_AUDIO_DEVICE_TESTS=1`; then a
//! missing device is a failure. Without that variable (a plain `cargo test` on a laptop) these tests
//! say they are skipped and return.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{call_sid, start};
use verbio::recording::playback::{ChannelChoice, PlaybackEvent};
use verbio::recording::speaker::{self, SpeakerError};
use verbio::sim::realtime_server::{AgentTurn, SimRealtimeConfig};
use verbio::sim::twilio_caller::{CallerStep, SimCall};

const SECOND: Duration = Duration::from_secs(1);
const CAPTURE_RATE: u32 = 48_000;

fn device_expected() -> bool {
    if std::env::var("VERBIO_AUDIO_DEVICE_TESTS").is_ok_and(|v| v == "1") {
        return true;
    }
    eprintln!("SKIPPED: no test audio device (scripts/test.sh starts one and sets VERBIO_AUDIO_DEVICE_TESTS=1)");
    false
}

/// Captures the null sink's monitor while it runs.
struct Capture {
    child: std::process::Child,
}

impl Capture {
    fn start() -> Capture {
        let sink = std::env::var("VERBIO_TEST_SINK").unwrap_or_else(|_| "test_null".into());
        let child = Command::new("parec")
            .args([
                "-d",
                &format!("{sink}.monitor"),
                &format!("--rate={CAPTURE_RATE}"),
                "--channels=1",
                "--format=s16le",
                "--latency-msec=20",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("parec runs (pulseaudio-utils)");
        Capture { child }
    }

    fn stop(mut self) -> Vec<i16> {
        // SIGINT, so parec writes out what it holds before it exits.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let mut raw = Vec::new();
        if let Some(mut out) = self.child.stdout.take() {
            let _ = out.read_to_end(&mut raw);
        }
        let _ = self.child.wait();
        raw.chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }
}

/// Power of `freq` in `samples` (Goertzel), normalised by length.
fn power(samples: &[i16], freq: f64) -> f64 {
    let w = std::f64::consts::TAU * freq / CAPTURE_RATE as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for x in samples {
        let s0 = *x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len().max(1) as f64).powi(2)
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|s| (*s as f64).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

#[test]
fn an_unknown_device_is_a_clear_error() {
    struct Quiet;
    impl speaker::Source for Quiet {
        fn fill(&mut self, out: &mut [f32]) {
            out.fill(0.0);
        }
    }
    match speaker::open(Some("no such speakers"), Box::new(Quiet)) {
        Err(SpeakerError::NoDevice(Some(name))) => assert_eq!(name, "no such speakers"),
        Err(SpeakerError::Unusable(why)) => assert!(!why.is_empty()),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a device that does not exist opened"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_of_a_recording_is_heard_on_the_device_with_the_chosen_channel() {
    if !device_expected() {
        return;
    }
    let mut h = start(
        SimRealtimeConfig {
            script: vec![AgentTurn {
                text: "Hi.".into(),
                tone_hz: 880.0,
                tone_ms: 1500,
                call_tool: None,
            }],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    let steps = vec![
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 1500,
        },
        CallerStep::WaitForAgentAudio {
            min_ms: 1500,
            timeout: 10 * SECOND,
        },
        CallerStep::HangUp,
    ];
    SimCall::place(h.caller(&sid), steps)
        .await
        .expect("call")
        .finish()
        .await;
    h.ended(&sid).await;
    let lib = h.running.services.recordings.clone();
    let rec = loop {
        let recs = lib.for_call(&sid).await.expect("recordings");
        if let Some(r) = recs.into_iter().find(|r| r.status == "complete") {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        !lib.output_devices().is_empty(),
        "the test device is listed"
    );

    // Caller only: the 440 Hz tone (the first 1.5 s), not the agent's 880 Hz.
    let mut events = lib.playback_events();
    let capture = Capture::start();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let state = lib
        .play(rec.id, None, ChannelChoice::Caller)
        .await
        .expect("play on the test device");
    assert_eq!(state.channel, ChannelChoice::Caller);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let heard = capture.stop();
    let (p440, p880) = (power(&heard, 440.0), power(&heard, 880.0));
    eprintln!(
        "caller channel: rms {:.0}, 440 Hz {p440:.1}, 880 Hz {p880:.1}",
        rms(&heard)
    );
    assert!(rms(&heard) > 1000.0, "sound reached the sink");
    assert!(p440 > 20.0 * p880, "the caller's tone, not the agent's");

    // Position events move while playing and stop moving while paused.
    let mut last = 0;
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(300), events.recv()).await {
        if let PlaybackEvent::Position { position_ms, .. } = e {
            last = position_ms;
        }
        if last > 0 {
            break;
        }
    }
    assert!(last > 0, "position events arrive");
    let paused = lib.pause(true).expect("pause");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = lib.playback().expect("state");
    assert!(
        still.paused && still.position_ms.abs_diff(paused.position_ms) <= 20,
        "{still:?}"
    );

    // Seek to where the agent answered and switch to the agent's side: 880 Hz.
    let agent_at = {
        let frames = verbio::recording::wav_reader::read_stereo(
            &h.data.path().join("recordings").join(&rec.file_name),
        )
        .expect("read");
        frames
            .iter()
            .position(|f| f[1].abs() > 4000)
            .expect("agent audio") as u64
            / 8
    };
    lib.seek(agent_at + 100).expect("seek");
    lib.set_channel(ChannelChoice::Agent).expect("channel");
    let capture = Capture::start();
    tokio::time::sleep(Duration::from_millis(200)).await;
    lib.pause(false).expect("resume");
    tokio::time::sleep(Duration::from_millis(900)).await;
    let heard = capture.stop();
    let (p440, p880) = (power(&heard, 440.0), power(&heard, 880.0));
    eprintln!(
        "agent channel after seek: rms {:.0}, 440 Hz {p440:.1}, 880 Hz {p880:.1}",
        rms(&heard)
    );
    assert!(p880 > 20.0 * p440, "the agent's tone after seeking");

    // Deleting the recording that is playing stops playback first.
    lib.delete(rec.id, false)
        .await
        .expect("delete while playing");
    assert!(lib.playback().is_none(), "playback stopped");
    let mut stopped = false;
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
        if matches!(e, PlaybackEvent::Stopped { recording_id } if recording_id == rec.id) {
            stopped = true;
            break;
        }
    }
    assert!(stopped, "a Stopped event for the UI");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_in_plays_a_live_call_on_the_device() {
    if !device_expected() {
        return;
    }
    let mut h = start(SimRealtimeConfig::default(), |_| {}).await;
    let sid = call_sid();
    let steps = vec![
        CallerStep::Silence(500),
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 600,
        },
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 600,
        },
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 600,
        },
        CallerStep::Silence(200),
        CallerStep::HangUp,
    ];
    let call = SimCall::place(h.caller(&sid), steps).await.expect("call");
    let lib = h.running.services.recordings.clone();
    common::eventually(5 * SECOND, "call is live", || {
        !h.running.services.active_calls().is_empty()
    })
    .await;
    let capture = Capture::start();
    let state = lib
        .listen_in(&sid, None)
        .expect("listen on the test device");
    assert_eq!(state.call_sid, sid);
    // Agent muted: only the caller's tone can reach the speakers.
    lib.listen_mute(verbio::recording::wav_writer::Side::Agent, true)
        .expect("mute");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let heard = capture.stop();
    let p440 = power(&heard, 440.0);
    eprintln!("listen-in: rms {:.0}, 440 Hz {p440:.1}", rms(&heard));
    assert!(rms(&heard) > 1000.0, "live audio reached the sink");
    assert!(p440 > 20.0 * power(&heard, 1000.0), "the caller's tone");
    lib.listen_stop().expect("stop");
    call.finish().await;
    h.ended(&sid).await;
    assert!(
        lib.listen_in(&sid, None).is_err(),
        "an ended call cannot be listened to"
    );
}
