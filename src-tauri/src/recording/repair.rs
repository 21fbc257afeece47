//! Repairing recordings the app did not finish (crash, kill, power cut).
//!
//! The writer writes settled audio about every 0.4 s and refreshes the header every 5 s, so a crash
//! leaves a playable file that may miss the last moments (under a second of audio; see `writer`) and
//! whose header may be a few seconds behind its data. On start, every recording still marked `recording` is fixed: the sizes in
//! the header are recomputed from the file's length (dropping a torn last frame), and the library row
//! says what happened.
//!
//! A call recorded while the library could not be written (a full disk answers every insert with
//! `SQLITE_FULL`, while the WAV may still get its audio) leaves a file without a row: the writer keeps
//! the audio rather than drop it. On start such files are repaired the same way and listed
//! ([`adopt_unlisted`]), so the user sees them and can delete them.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::wav_writer::{header, FRAMES_PER_MS, FRAME_BYTES, HEADER_LEN, SAMPLE_RATE};
use crate::store::recordings::{
    NewRecording, RecordingOutcome, STATUS_INCOMPLETE, STATUS_RECORDING, STATUS_REPAIRED,
};
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

impl Repaired {
    /// Milliseconds of audio the file holds.
    pub fn duration_ms(&self) -> u64 {
        self.frames / FRAMES_PER_MS
    }

    /// The library's record of a repaired file: its length and size as repaired, and `note`.
    fn outcome(&self, note: String) -> RecordingOutcome {
        super::wav_outcome(STATUS_REPAIRED, Some(note), self.frames)
    }
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
                r.outcome(format!(
                    "the app stopped while recording; {} ms kept, header {}{}",
                    r.duration_ms(),
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
                ))
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

/// The call and start time in a name the recorder gave (`CA…-<ms>.wav`, see
/// [`super::recorder::file_name`]); `None` for any other file.
fn recorder_name(file_name: &str) -> Option<(String, i64)> {
    let (sid, ms) = file_name.strip_suffix(".wav")?.rsplit_once('-')?;
    let ms: i64 = ms.parse().ok()?;
    let ours = !sid.is_empty() && sid.chars().all(|c| c.is_ascii_alphanumeric());
    ours.then(|| (sid.to_string(), ms))
}

/// Lists the recorder's WAVs that the library has no row for, repaired; returns how many. Run at
/// start-up, after [`repair_unfinished`] and before any call can start a recording.
pub async fn adopt_unlisted(store: &StoreHandle, dir: &Path) -> Result<usize, StoreError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0); // no recordings folder yet
    };
    let listed = store.recording_file_names().await?;
    let mut adopted = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if listed.contains(&name) {
            continue;
        }
        let Some((call_sid, started_at_ms)) = recorder_name(&name) else {
            continue;
        };
        let repaired = match repair_file(&entry.path()) {
            Ok(r) => r,
            Err(e) => {
                warn!("a recording without a library entry could not be repaired: {e}");
                continue;
            }
        };
        let id = store
            .add_finished_recording(
                NewRecording {
                    call_sid,
                    source: "local".into(),
                    file_name: name,
                    status: STATUS_RECORDING.into(),
                    started_at_ms,
                    twilio_sid: None,
                },
                repaired.outcome(format!(
                    "found without a library entry (the library could not be written while it was recorded, e.g. a full disk); {} ms kept",
                    repaired.duration_ms()
                )),
            )
            .await?;
        info!(
            recording_id = id,
            "listed a recording found without a library entry"
        );
        adopted += 1;
    }
    Ok(adopted)
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

    #[test]
    fn only_the_recorders_names_are_adopted() {
        assert_eq!(
            recorder_name("CA0123abcd-1796516247062.wav"),
            Some(("CA0123abcd".into(), 1_796_516_247_062))
        );
        for other in [
            "CA1-twilio-RE1.wav",
            "CA1-12.wav.part",
            "-12.wav",
            "notes.txt",
            "CA/1-12.wav",
        ] {
            assert_eq!(recorder_name(other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn a_file_recorded_while_the_library_was_full_is_listed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreHandle::open(&dir.path().join("lib.sqlite3")).unwrap();
        let recordings = dir.path().join("recordings");
        std::fs::create_dir_all(&recordings).unwrap();
        // A listed recording, an unlisted one cut off mid-write, and files that are not ours.
        let listed = recordings.join("CA1-1000.wav");
        let mut w = TimelineWav::create(&listed).unwrap();
        w.put(Side::Caller, 0, &[0x20u8; 800]).unwrap();
        w.commit_until(800).unwrap();
        drop(w);
        store
            .add_recording(NewRecording {
                call_sid: "CA1".into(),
                source: "local".into(),
                file_name: "CA1-1000.wav".into(),
                status: crate::store::recordings::STATUS_COMPLETE.into(),
                started_at_ms: 1000,
                twilio_sid: None,
            })
            .await
            .unwrap();
        let orphan = recordings.join("CA2-2000.wav");
        let mut w = TimelineWav::create(&orphan).unwrap();
        w.put(Side::Agent, 0, &[0x30u8; 1600]).unwrap();
        w.commit_until(1600).unwrap();
        drop(w); // header never refreshed: says 0 frames
        std::fs::write(recordings.join("CA3-twilio-RE3.wav"), b"RIFF").unwrap();
        std::fs::write(recordings.join("CA4-4000.wav"), b"garbage").unwrap();

        assert_eq!(adopt_unlisted(&store, &recordings).await.unwrap(), 1);
        let rows = store.recordings_for_call("CA2").await.unwrap();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(
            (row.status.as_str(), row.duration_ms, row.size_bytes),
            (STATUS_REPAIRED, 200, 44 + 1600 * 4)
        );
        assert!(row
            .note
            .as_deref()
            .is_some_and(|n| n.contains("without a library entry")));
        assert_eq!(hound::WavReader::open(&orphan).unwrap().duration(), 1600);
        // The listed one is untouched, and a second start adopts nothing.
        assert_eq!(store.recordings_for_call("CA1").await.unwrap().len(), 1);
        assert_eq!(adopt_unlisted(&store, &recordings).await.unwrap(), 0);
    }
}
