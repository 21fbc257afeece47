//! Without a usable output device, opening the speakers is a clear error, never a panic or a hang.
//!
//! ALSA is pointed at an empty configuration (so no device exists for this process), which also keeps
//! this test away from the PulseAudio test sink: probing the real devices here emptied the `parec`
//! captures of the device tests that ran next.

use verbio::recording::speaker::{self, SpeakerError};

struct Quiet;

impl speaker::Source for Quiet {
    fn fill(&mut self, out: &mut [f32]) {
        out.fill(0.0);
    }
}

#[test]
fn no_device_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("dir");
    let empty = dir.path().join("asound.conf");
    std::fs::write(&empty, "").expect("empty ALSA config");
    // The only test in this binary, set before ALSA is first loaded.
    std::env::set_var("ALSA_CONFIG_PATH", &empty);
    match speaker::open(Some("no such speakers"), Box::new(Quiet)) {
        Err(SpeakerError::NoDevice(Some(name))) => assert_eq!(name, "no such speakers"),
        Err(SpeakerError::Unusable(why)) => assert!(!why.is_empty()),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a device that does not exist opened"),
    }
    let err = speaker::open(None, Box::new(Quiet))
        .err()
        .expect("no default device either");
    eprintln!("without a device: {err}");
    assert!(
        err.to_string().contains("audio output device"),
        "clear message: {err}"
    );
}
