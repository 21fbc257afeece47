//! Placeholder until the microphone capture lands (replaced by the capture module).

/// One Twilio frame of μ-law: 20 ms at 8 kHz.
pub const FRAME_BYTES: usize = 160;

/// 20 ms of the operator's microphone, μ-law at 8 kHz.
#[derive(Debug, Clone)]
pub struct MicFrame {
    pub mulaw: [u8; FRAME_BYTES],
    /// When the frame's last sample entered the device (best estimate).
    pub captured_at: std::time::Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MicrophoneError {
    #[error("no microphone (audio input device){}", .0.as_ref().map(|n| format!(" named {n:?}")).unwrap_or_default())]
    NoInputDevice(Option<String>),
    #[error("the microphone cannot be used: {0}")]
    Unusable(String),
}

pub fn input_devices() -> Vec<String> {
    Vec::new()
}

pub struct Microphone {
    pub device: String,
}

impl Microphone {
    pub fn level_db(&self) -> f32 {
        -60.0
    }
    pub fn device_latency(&self) -> Option<std::time::Duration> {
        None
    }
    pub fn set_muted(&self, _muted: bool) {}
    pub fn muted(&self) -> bool {
        false
    }
}

pub fn open(
    device: Option<&str>,
    _frames: tokio::sync::mpsc::Sender<MicFrame>,
) -> Result<Microphone, MicrophoneError> {
    Err(MicrophoneError::NoInputDevice(device.map(str::to_string)))
}
