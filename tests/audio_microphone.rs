//! The operator's microphone on a real input device (`cpal` → ALSA default → PulseAudio, whose
//! default source `scripts/test-audio.sh` makes a 440 Hz sine): Twilio-sized frames at 50 a second
//! carrying the tone, a level well above the floor, silence while muted, and no more frames once the
//! microphone is dropped. Its own binary, like the other device tests, so no capture shares the
//! process.

mod audio;

use std::time::{Duration, Instant};

use audio::{device_expected, power};
use tokio::sync::mpsc;
use verbio::audio::microphone::{self, MicFrame, MicrophoneError, FRAME_BYTES};
use verbio::audio::mulaw;

/// One test at a time on the device.
static DEVICE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Frames arriving within `span`.
async fn collect(rx: &mut mpsc::Receiver<MicFrame>, span: Duration) -> Vec<MicFrame> {
    let until = tokio::time::Instant::now() + span;
    let mut frames = Vec::new();
    while let Ok(Some(f)) = tokio::time::timeout_at(until, rx.recv()).await {
        frames.push(f);
    }
    frames
}

fn decoded(frames: &[MicFrame]) -> (Vec<i16>, u32) {
    let pcm = frames
        .iter()
        .flat_map(|f| f.mulaw.iter().map(|&b| mulaw::decode(b)))
        .collect();
    (pcm, 8000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_microphone_sends_the_test_tone_in_twilio_frames() {
    if !device_expected() {
        return;
    }
    let _device = DEVICE.lock().await;
    let (tx, mut rx) = mpsc::channel(64);
    let mic = microphone::open(None, tx).expect("the default microphone opens");
    eprintln!("opened {:?} at {} Hz", mic.device, mic.rate);

    // Warm-up: the test source starts within about 2 s (its null sink finishes the long block it
    // renders while nobody listens closely), then the filter's run-in.
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert!(matches!(first, Ok(Some(_))), "frames start");
    // PulseAudio then reports a delay of ~115 ms that drops to ~15 ms within a second or two, and the
    // stamps follow it (ten or so steps of 40 ms).
    collect(&mut rx, Duration::from_secs(2)).await;
    let started = Instant::now();
    let frames = collect(&mut rx, Duration::from_secs(2)).await;
    let per_second = frames.len() as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "{} frames in 2 s ({per_second:.1}/s); device latency {:?}, buffer {:?} frames, level {:.1} dBFS, dropped {}",
        frames.len(),
        mic.device_latency(),
        mic.buffer_frames(),
        mic.level_db(),
        mic.dropped()
    );
    assert!(
        (45.0..=55.0).contains(&per_second),
        "about 50 frames a second, got {per_second:.1}"
    );
    assert_eq!(frames[0].mulaw.len(), FRAME_BYTES);
    assert!(mic.buffer_frames().is_some(), "the first callback was seen");
    // Stamped in order, 20 ms apart (but for jumps when the reported delay changes), never in the
    // future.
    let mut steps: Vec<Duration> = frames
        .windows(2)
        .map(|w| {
            assert!(w[1].captured_at > w[0].captured_at, "stamps increase");
            w[1].captured_at - w[0].captured_at
        })
        .collect();
    steps.sort();
    let median = steps[steps.len() / 2];
    let near = steps
        .iter()
        .filter(|s| s.abs_diff(Duration::from_millis(20)) < Duration::from_millis(3))
        .count();
    eprintln!(
        "stamp steps: median {median:?}, {near}/{} within 3 ms of 20 ms",
        steps.len()
    );
    assert!(
        median.abs_diff(Duration::from_millis(20)) < Duration::from_millis(1),
        "{median:?} between stamps"
    );
    assert!(near * 4 >= steps.len() * 3, "{steps:?}");
    assert!(frames[frames.len() - 1].captured_at <= Instant::now());

    // How old frames are when they arrive: device latency, the pipeline and the callback's batching.
    let mut ages = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Some(f)) = tokio::time::timeout_at(until, rx.recv()).await {
        ages.push(Instant::now().saturating_duration_since(f.captured_at));
    }
    ages.sort();
    eprintln!(
        "frame age on arrival: min {:?}, median {:?}, max {:?}",
        ages[0],
        ages[ages.len() / 2],
        ages[ages.len() - 1]
    );
    assert!(
        ages[ages.len() / 2] < Duration::from_millis(500),
        "{ages:?}"
    );

    let heard = decoded(&frames);
    let p440 = power(&heard, 440.0);
    let others = [300.0, 600.0, 1000.0, 2000.0, 3000.0].map(|f| power(&heard, f));
    eprintln!("440 Hz {p440:.1}, others {others:.2?}");
    for p in others {
        assert!(p440 > 100.0 * p, "the test source's tone stands out");
    }
    let level = mic.level_db();
    assert!(
        level > -40.0,
        "level {level:.1} dBFS is well above the floor"
    );

    // Muted: frames keep coming, silent. (Skip what was already in flight.)
    mic.set_muted(true);
    assert!(mic.muted());
    collect(&mut rx, Duration::from_millis(200)).await;
    let muted = collect(&mut rx, Duration::from_secs(1)).await;
    assert!(
        (40..=60).contains(&muted.len()),
        "{} frames in a muted second",
        muted.len()
    );
    assert!(
        muted
            .iter()
            .all(|f| f.mulaw == [mulaw::SILENCE; FRAME_BYTES]),
        "muted frames are μ-law silence"
    );
    assert!(
        mic.level_db() > -40.0,
        "the meter still shows the microphone"
    );

    mic.set_muted(false);
    collect(&mut rx, Duration::from_millis(200)).await;
    let back = collect(&mut rx, Duration::from_millis(500)).await;
    let back = decoded(&back);
    assert!(
        power(&back, 440.0) > 100.0 * power(&back, 1000.0),
        "the tone again after unmuting"
    );

    // Dropping the microphone closes the channel: what was queued, then nothing.
    assert_eq!(mic.dropped(), 0, "the test kept up");
    drop(mic);
    let mut after = 0;
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        while rx.recv().await.is_some() {
            after += 1;
        }
    })
    .await;
    assert!(closed.is_ok(), "the frame channel closes");
    assert!(after <= 64, "{after} frames after drop");

    // Last: enumerating ALSA devices probes every PCM.
    let names = tokio::task::spawn_blocking(microphone::input_devices)
        .await
        .expect("listing");
    eprintln!("input devices: {names:?}");
    assert!(!names.is_empty(), "the test source is listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_that_does_not_exist_is_a_clear_error() {
    if !device_expected() {
        return;
    }
    let _device = DEVICE.lock().await;
    let (tx, _rx) = mpsc::channel(4);
    match microphone::open(Some("no such mic"), tx) {
        Err(e @ MicrophoneError::NoInputDevice(Some(_))) => {
            assert_eq!(
                e,
                MicrophoneError::NoInputDevice(Some("no such mic".into()))
            );
            assert_eq!(e.code(), "no_input_device");
            assert!(e.to_string().contains("no such mic"), "{e}");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a microphone that does not exist opened"),
    }
}
