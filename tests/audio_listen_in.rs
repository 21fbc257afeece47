//! Live listen-in through a real audio device, captured from the PulseAudio null sink's monitor.

mod audio;
mod common;

use std::time::Duration;

use audio::{device_expected, loudest, power, rms, Capture};
use common::{call_sid, start};
use verbio::sim::realtime_server::SimRealtimeConfig;
use verbio::sim::twilio_caller::{CallerStep, SimCall};

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_in_plays_a_live_call_on_the_device() {
    if !device_expected() {
        return;
    }
    let mut h = start(SimRealtimeConfig::default(), |_| {}).await;
    let sid = call_sid();
    let steps = vec![
        CallerStep::Silence(500),
        // Long enough to outlast a parec restart (see `audio::Capture::start`).
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 4000,
        },
        // Room for the agent's answer (880 Hz, 1.2 s), which starts once the sim's VAD hears 400 ms of
        // silence.
        CallerStep::Silence(3000),
        CallerStep::HangUp,
    ];
    let call = SimCall::place(h.caller(&sid), steps).await.expect("call");
    let lib = h.running.services.recordings.clone();
    // Live once the bridge has opened the call's feed (just after it registers the call).
    common::eventually(5 * SECOND, "call is live", || {
        lib.recorder().live().subscribe(&sid).is_some()
    })
    .await;
    let capture = Capture::start().await;
    let state = lib
        .listen_in(&sid, None)
        .await
        .expect("listen on the test device");
    assert_eq!(state.call_sid, sid);
    // Agent muted: only the caller's tone can reach the speakers (the agent is silent until the caller
    // stops anyway; the second half checks the agent's side).
    lib.listen_mute(verbio::recording::wav_writer::Side::Agent, true)
        .expect("mute");
    // Sample how far the speakers run behind the call while it talks.
    let mut worst = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        worst = worst.max(lib.listening().expect("listening").delay_ms);
    }
    let heard = loudest(&capture.stop(), 500);
    eprintln!("listen-in delay (monitor buffer + device): up to {worst} ms");
    assert!(worst <= 150, "listen-in ran {worst} ms behind the call");
    let p440 = power(&heard, 440.0);
    eprintln!("listen-in: rms {:.0}, 440 Hz {p440:.1}", rms(&heard));
    assert!(rms(&heard) > 1000.0, "live audio reached the sink");
    assert!(p440 > 20.0 * power(&heard, 1000.0), "the caller's tone");
    assert!(
        p440 > 20.0 * power(&heard, 880.0),
        "the agent was muted while the caller spoke"
    );

    // The other way round: caller muted, agent on. The agent's answer is heard, the caller is not.
    lib.listen_mute(verbio::recording::wav_writer::Side::Agent, false)
        .expect("unmute the agent");
    lib.listen_mute(verbio::recording::wav_writer::Side::Caller, true)
        .expect("mute the caller");
    let capture = Capture::start().await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let heard = loudest(&capture.stop(), 500);
    let p880 = power(&heard, 880.0);
    eprintln!(
        "listen-in, agent side: rms {:.0}, 880 Hz {p880:.1}",
        rms(&heard)
    );
    assert!(rms(&heard) > 1000.0, "the agent's answer reached the sink");
    assert!(
        p880 > 20.0 * power(&heard, 440.0),
        "the agent's tone, not the muted caller's"
    );
    lib.listen_stop().await.expect("stop");
    call.finish().await;
    h.ended(&sid).await;
    assert!(
        lib.listen_in(&sid, None).await.is_err(),
        "an ended call cannot be listened to"
    );
}
