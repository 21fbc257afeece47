//! Playback of a recording through a real audio device (`cpal` → ALSA default → PulseAudio null sink),
//! captured from the sink's monitor: the chosen channel's tone is heard; pause, seek, position events;
//! deleting a playing recording stops it first.

mod audio;
mod common;

use std::time::Duration;

use audio::{device_expected, power, rms, Capture};
use common::{call_sid, start};
use verbio::recording::playback::{ChannelChoice, PlaybackEvent};
use verbio::sim::realtime_server::{AgentTurn, SimRealtimeConfig};
use verbio::sim::twilio_caller::{CallerStep, SimCall};

const SECOND: Duration = Duration::from_secs(1);

/// One test at a time on the device (each captures everything the sink plays).
static DEVICE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_of_a_recording_is_heard_on_the_device_with_the_chosen_channel() {
    if !device_expected() {
        return;
    }
    let _device = DEVICE.lock().await;
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

    // Caller only: the 440 Hz tone (the first 1.5 s), not the agent's 880 Hz.
    let mut events = lib.playback_events();
    let capture = Capture::start().await;
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
    let capture = Capture::start().await;
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
    // Last: enumerating ALSA devices probes capture too, which disturbed later captures here.
    assert!(
        !lib.output_devices().await.expect("devices").is_empty(),
        "the test device is listed"
    );
}

/// A long recording streams: seeking far into it (outside what is read ahead) plays the audio there,
/// and seeking back plays the start again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_recording_streams_and_seeks_far_into_it() {
    if !device_expected() {
        return;
    }
    let _device = DEVICE.lock().await;
    let h = start(SimRealtimeConfig::default(), |_| {}).await;
    // 10 minutes: silence, a 440 Hz caller tone for the first 2 s, an 880 Hz agent tone at 9:00.
    let dir = h.data.path().join("recordings");
    std::fs::create_dir_all(&dir).expect("dir");
    let sid = call_sid();
    let file_name = format!("{sid}-long.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(dir.join(&file_name), spec).expect("wav");
    let tone =
        |hz: f64, i: u32| ((i as f64 * hz * std::f64::consts::TAU / 8000.0).sin() * 16000.0) as i16;
    for i in 0..8000 * 600u32 {
        let caller = if i < 16_000 { tone(440.0, i) } else { 0 };
        let agent = if (8000 * 540..8000 * 545).contains(&i) {
            tone(880.0, i)
        } else {
            0
        };
        w.write_sample(caller).expect("caller");
        w.write_sample(agent).expect("agent");
    }
    w.finalize().expect("finalize");
    let store = &h.running.services.store;
    let id = store
        .add_recording(verbio::store::recordings::NewRecording {
            call_sid: sid.clone(),
            source: "local".into(),
            file_name,
            status: "complete".into(),
            started_at_ms: 0,
            twilio_sid: None,
        })
        .await
        .expect("row");
    let lib = h.running.services.recordings.clone();

    let state = lib.play(id, None, ChannelChoice::Both).await.expect("play");
    assert_eq!(state.duration_ms, 600_000);
    let (level, p440, p880) = hear_after_seek(&lib, 540_200, "9:00").await;
    assert!(level > 1000.0, "sound after the far seek");
    assert!(p880 > 20.0 * p440, "the agent's tone at 9:00");
    let at = lib.playback().expect("state").position_ms;
    assert!((540_500..542_000).contains(&at), "playhead at {at} ms");

    // Back to the start: the caller's tone.
    let (_, p440, p880) = hear_after_seek(&lib, 100, "0:00").await;
    assert!(p440 > 20.0 * p880, "the caller's tone after seeking back");
    lib.stop().await.expect("stop");
}

/// Pauses, seeks to `ms`, captures the sink while about 0.9 s plays, and returns its (rms, 440 Hz,
/// 880 Hz) power.
async fn hear_after_seek(lib: &verbio::recording::Library, ms: u64, at: &str) -> (f64, f64, f64) {
    lib.pause(true).expect("pause");
    lib.seek(ms).expect("seek");
    let capture = Capture::start().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    lib.pause(false).expect("resume");
    tokio::time::sleep(Duration::from_millis(900)).await;
    let heard = capture.stop();
    let (level, p440, p880) = (rms(&heard), power(&heard, 440.0), power(&heard, 880.0));
    eprintln!("at {at}: rms {level:.0}, 440 Hz {p440:.1}, 880 Hz {p880:.1}");
    (level, p440, p880)
}
