//! A stereo 16-bit 8 kHz WAV written along the call's timeline (left = caller, right = agent).
//!
//! Audio is placed by sample position, not appended: caller frames land where Twilio's `timestamp`
//! says, agent audio where Twilio played it, and anything never written stays silent. Recent frames
//! sit in a small in-memory window (agent audio is confirmed by a mark echo only after it played,
//! so it arrives a little late); older frames are on disk, and the rare audio that arrives for them
//! is patched in place. The header is kept current by [`TimelineWav::refresh_header`] so a crash
//! leaves a playable file. `hound` cannot seek back into a file it is writing, hence this writer;
//! reading goes through `hound`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const SAMPLE_RATE: u32 = 8000;
pub const CHANNELS: u16 = 2;
pub const HEADER_LEN: u64 = 44;
/// Bytes per stereo frame (two 16-bit samples).
pub const FRAME_BYTES: u64 = 4;
/// Frames per millisecond.
pub const FRAMES_PER_MS: u64 = SAMPLE_RATE as u64 / 1000;
/// A timestamp further ahead than this is treated as bogus rather than filled with silence.
pub const MAX_JUMP_FRAMES: u64 = 10 * 60 * SAMPLE_RATE as u64;
/// WAV sizes are 32-bit.
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - HEADER_LEN;

/// Which side of the call a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Caller = 0,
    Agent = 1,
}

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("write to {path} failed: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("timestamp jumps {ms} ms ahead; audio refused")]
    Jump { ms: u64 },
    #[error("recording reached the 4 GiB WAV limit")]
    TooLong,
}

/// The 44-byte canonical header for `data_bytes` of stereo 16-bit 8 kHz PCM.
pub fn header(data_bytes: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    let byte_rate = SAMPLE_RATE * FRAME_BYTES as u32;
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&data_bytes.saturating_add(36).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&CHANNELS.to_le_bytes());
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&(FRAME_BYTES as u16).to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

/// A recording being written. Not thread-safe by design: one writer thread owns it.
pub struct TimelineWav {
    file: File,
    path: PathBuf,
    /// Frames on disk (everything before the window).
    committed: u64,
    /// Frames from `committed` on, not yet on disk.
    window: VecDeque<[i16; 2]>,
    header_frames: u64,
}

impl TimelineWav {
    /// Creates a new file (never overwrites) with a header claiming no data yet.
    pub fn create(path: &Path) -> Result<Self, WavError> {
        let create = |source| WavError::Create {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(create)?;
        file.write_all(&header(0)).map_err(create)?;
        Ok(TimelineWav {
            file,
            path: path.to_path_buf(),
            committed: 0,
            window: VecDeque::new(),
            header_frames: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames on disk.
    pub fn committed_frames(&self) -> u64 {
        self.committed
    }

    /// Frames known so far (disk + window).
    pub fn end_frame(&self) -> u64 {
        self.committed + self.window.len() as u64
    }

    fn write_err(&self, source: std::io::Error) -> WavError {
        WavError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Places `samples` of `side` starting at frame `start`, replacing what that side had there.
    pub fn put(&mut self, side: Side, start: u64, samples: &[i16]) -> Result<(), WavError> {
        if samples.is_empty() {
            return Ok(());
        }
        let end = start + samples.len() as u64;
        if end > self.end_frame() + MAX_JUMP_FRAMES {
            return Err(WavError::Jump {
                ms: (end - self.end_frame()) / FRAMES_PER_MS,
            });
        }
        if (end * FRAME_BYTES) > MAX_DATA_BYTES {
            return Err(WavError::TooLong);
        }
        let (on_disk, in_window) = if start < self.committed {
            let n = ((self.committed - start) as usize).min(samples.len());
            samples.split_at(n)
        } else {
            (&[][..], samples)
        };
        if !on_disk.is_empty() {
            self.patch(side, start, on_disk)?;
        }
        if !in_window.is_empty() {
            let first = start.max(self.committed);
            let offset = (first - self.committed) as usize;
            let needed = offset + in_window.len();
            if self.window.len() < needed {
                self.window.resize(needed, [0, 0]);
            }
            for (i, s) in in_window.iter().enumerate() {
                self.window[offset + i][side as usize] = *s;
            }
        }
        Ok(())
    }

    /// Read-modify-write of frames already on disk (late agent audio; rare).
    fn patch(&mut self, side: Side, start: u64, samples: &[i16]) -> Result<(), WavError> {
        let offset = HEADER_LEN + start * FRAME_BYTES;
        let mut buf = vec![0u8; samples.len() * FRAME_BYTES as usize];
        let io = (|| {
            self.file.seek(SeekFrom::Start(offset))?;
            self.file.read_exact(&mut buf)?;
            for (i, s) in samples.iter().enumerate() {
                let at = i * FRAME_BYTES as usize + side as usize * 2;
                buf[at..at + 2].copy_from_slice(&s.to_le_bytes());
            }
            self.file.seek(SeekFrom::Start(offset))?;
            self.file.write_all(&buf)
        })();
        io.map_err(|e| self.write_err(e))
    }

    /// Writes window frames before `frame` to disk (silence where nothing was placed).
    pub fn commit_until(&mut self, frame: u64) -> Result<(), WavError> {
        if frame <= self.committed {
            return Ok(());
        }
        let n = ((frame - self.committed) as usize).min(self.window.len());
        if n == 0 {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(n * FRAME_BYTES as usize);
        for [left, right] in self.window.drain(..n) {
            buf.extend_from_slice(&left.to_le_bytes());
            buf.extend_from_slice(&right.to_le_bytes());
        }
        let offset = HEADER_LEN + self.committed * FRAME_BYTES;
        let io = (|| {
            self.file.seek(SeekFrom::Start(offset))?;
            self.file.write_all(&buf)
        })();
        io.map_err(|e| self.write_err(e))?;
        self.committed += n as u64;
        Ok(())
    }

    /// Brings the RIFF and data sizes up to what is on disk, so the file plays after a crash.
    pub fn refresh_header(&mut self) -> Result<(), WavError> {
        if self.header_frames == self.committed {
            return Ok(());
        }
        let data = (self.committed * FRAME_BYTES) as u32;
        let io = (|| {
            self.file.seek(SeekFrom::Start(0))?;
            self.file.write_all(&header(data))
        })();
        io.map_err(|e| self.write_err(e))?;
        self.header_frames = self.committed;
        Ok(())
    }

    /// Writes everything, fixes the header and syncs; returns the frames in the file.
    pub fn finish(mut self) -> Result<u64, WavError> {
        let end = self.end_frame();
        self.commit_until(end)?;
        self.refresh_header()?;
        self.file.sync_all().map_err(|e| self.write_err(e))?;
        Ok(self.committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> (hound::WavSpec, Vec<[i16; 2]>) {
        let mut r = hound::WavReader::open(path).expect("valid wav");
        let spec = r.spec();
        let s: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
        (spec, s.chunks(2).map(|c| [c[0], c[1]]).collect())
    }

    #[test]
    fn places_by_position_fills_gaps_and_patches_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut w = TimelineWav::create(&path).unwrap();
        w.put(Side::Caller, 0, &[1, 2, 3]).unwrap();
        // A gap of 2 frames, then more caller audio.
        w.put(Side::Caller, 5, &[6, 7]).unwrap();
        w.commit_until(4).unwrap();
        w.refresh_header().unwrap();
        // Mid-write the header already describes what is on disk.
        let (_, frames) = read(&path);
        assert_eq!(frames, vec![[1, 0], [2, 0], [3, 0], [0, 0]]);
        // Agent audio straddling disk and window.
        w.put(Side::Agent, 2, &[-1, -2, -3, -4]).unwrap();
        assert_eq!(w.finish().unwrap(), 7);
        let (spec, frames) = read(&path);
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        assert_eq!(
            frames,
            vec![[1, 0], [2, 0], [3, -1], [0, -2], [0, -3], [6, -4], [7, 0]]
        );
    }

    #[test]
    fn refuses_absurd_jumps_and_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut w = TimelineWav::create(&path).unwrap();
        let err = w.put(Side::Caller, MAX_JUMP_FRAMES + 10, &[1]).unwrap_err();
        assert!(matches!(err, WavError::Jump { .. }), "{err}");
        assert!(matches!(
            TimelineWav::create(&path),
            Err(WavError::Create { .. })
        ));
    }
}
