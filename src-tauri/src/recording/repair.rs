//! Repairing recordings the app did not finish (crash, kill, power cut).
//!
//! The writer writes settled audio about every 0.4 s and refreshes the header every 5 s, so a crash
//! leaves a playable file that may miss the last moments (under a second of audio; see `writer`) and
//! whose header may be a few seconds behind its data. On start, every recording still marked `recording` is fixed: the sizes in
//! the header are recomputed from the file's length (dropping a torn last frame), and the library row
//! says what happened.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::wav_writer::{header, FRAMES_PER_MS, FRAME_BYTES, HEADER_LEN, SAMPLE_RATE};
use crate::store::recordings::{RecordingOutcome, STATUS_INCOMPLETE, STATUS_REPAIRED};
use crate::store::{StoreError, StoreHandle};

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is not a recording this app wrote (no RIFF/WAVE header)")]
    NotOurs(PathBuf),
}

/// What a repair found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    pub frames: u64,
    /// The header's sizes were wrong and have been rewritten.
    pub header_fixed: bool,
    /// Bytes of a torn last frame that were cut off.
    pub trimmed_bytes: u64,
}

/// Rewrites the header of a stereo 16-bit 8 kHz WAV from the file's length.
pub fn repair_file(path: &Path) -> Result<Repaired, RepairError> {
    let io = |source| RepairError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut head = [0u8; 44];
    if len < HEADER_LEN || file.read_exact(&mut head).is_err() {
        return Err(RepairError::NotOurs(path.to_path_buf()));
    }
    if &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" || &head[36..40] != b"data" {
        return Err(RepairError::NotOurs(path.to_path_buf()));
    }
    let data = (len - HEADER_LEN).min(u32::MAX as u64 - HEADER_LEN);
    let frames = data / FRAME_BYTES;
    let trimmed = len - HEADER_LEN - frames * FRAME_BYTES;
    if trimmed > 0 {
        file.set_len(HEADER_LEN + frames * FRAME_BYTES)
            .map_err(io)?;
    }
    let fixed = header((frames * FRAME_BYTES) as u32);
    let header_fixed = fixed != head;
    if header_fixed {
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&fixed).map_err(io)?;
    }
    file.sync_all().map_err(io)?;
    Ok(Repaired {
        frames,
        header_fixed,
        trimmed_bytes: trimmed,
    })
}

/// Repairs every recording the library lists as still being written; returns how many.
/// Run once at start-up, before any call can start a new recording.
pub async fn repair_unfinished(store: &StoreHandle, dir: &Path) -> Result<usize, StoreError> {
    let unfinished = store.unfinished_recordings().await?;
    for rec in &unfinished {
        let path = dir.join(&rec.file_name);
        let outcome = match repair_file(&path) {
            Ok(r) => {
                info!(
                    recording_id = rec.id,
                    frames = r.frames,
                    header_fixed = r.header_fixed,
                    "repaired an unfinished recording"
                );
                RecordingOutcome {
                    status: STATUS_REPAIRED.into(),
                    note: Some(format!(
                        "the app stopped while recording; {} ms kept, header {}{}",
                        r.frames / FRAMES_PER_MS,
                        if r.header_fixed {
                            "rebuilt from the file length"
                        } else {
                            "was already current"
                        },
                        if r.trimmed_bytes > 0 {
                            format!(", {} torn bytes cut", r.trimmed_bytes)
                        } else {
                            String::new()
                        },
                    )),
                    duration_ms: (r.frames / FRAMES_PER_MS) as i64,
                    size_bytes: (HEADER_LEN + r.frames * FRAME_BYTES) as i64,
                    channels: 2,
                    sample_rate: SAMPLE_RATE as i64,
                }
            }
            Err(e) => {
                warn!(
                    recording_id = rec.id,
                    "unfinished recording could not be repaired: {e}"
                );
                RecordingOutcome {
                    status: STATUS_INCOMPLETE.into(),
                    note: Some(format!(
                        "the app stopped while recording and the file could not be repaired: {e}"
                    )),
                    duration_ms: 0,
                    size_bytes: std::fs::metadata(&path)
                        .map(|m| m.len() as i64)
                        .unwrap_or(0),
                    channels: 2,
                    sample_rate: SAMPLE_RATE as i64,
                }
            }
        };
        store.set_recording_outcome(rec.id, outcome).await?;
    }
    Ok(unfinished.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::wav_writer::{Side, TimelineWav};

    #[test]
    fn a_file_cut_off_mid_write_gets_its_sizes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.wav");
        let mut w = TimelineWav::create(&path).unwrap();
        w.put(Side::Caller, 0, &[0x20u8; 8000]).unwrap();
        w.commit_until(8000).unwrap();
        w.refresh_header().unwrap();
        w.put(Side::Caller, 8000, &[0x10u8; 4000]).unwrap();
        w.commit_until(12_000).unwrap();
        drop(w); // the header still says 1 s; the file holds 1.5 s
                 // And a torn half frame at the end.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&[7, 7])
            .unwrap();
        let r = repair_file(&path).unwrap();
        assert_eq!(
            (r.frames, r.header_fixed, r.trimmed_bytes),
            (12_000, true, 2)
        );
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.duration(), 12_000);
        // Running it again changes nothing.
        assert!(!repair_file(&path).unwrap().header_fixed);
        std::fs::write(&path, b"not a wav at all").unwrap();
        assert!(matches!(repair_file(&path), Err(RepairError::NotOurs(_))));
    }
}
