//! A stereo 16-bit 8 kHz WAV written along the call's timeline (left = caller, right = agent).
//!
//! Audio is placed by sample position, not appended: caller frames land where Twilio's `timestamp`
//! says, agent audio where Twilio played it, and anything never written stays silent. Everything the
//! call carries is μ-law, so the frames not yet on disk sit in an in-memory window of μ-law pairs
//! (2 bytes a frame; agent audio is confirmed by a mark echo only after it played, so it arrives a
//! little late) and are decoded to PCM with the G.711 table only when they go to disk, in large
//! positioned writes (`pwrite`, no `lseek`). The rare audio that arrives for frames already on disk
//! is patched in place (positioned read-modify-write). The header is kept current by
//! [`TimelineWav::refresh_header`] so a crash leaves a playable file. `hound` cannot seek back into
//! a file it is writing, hence this writer; reading goes through `hound`.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::audio::mulaw;

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

/// Frames decoded and written per `pwrite` at most (32 KiB of PCM, 0.5 s).
const WRITE_FRAMES: usize = 4096;

thread_local! {
    /// PCM of the frames being written: one buffer per writing thread (the writer has one), reused
    /// by every recording, so a recording holds only its μ-law window.
    static PCM: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Positioned file I/O: no shared cursor, no `lseek` (the app ships on Unix and Windows).
mod positioned {
    use std::fs::File;
    use std::io;

    #[cfg(unix)]
    pub fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }

    #[cfg(unix)]
    pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }

    #[cfg(windows)]
    pub fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match file.seek_write(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    #[cfg(windows)]
    pub fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match file.seek_read(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The G.711 table as little-endian PCM bytes, as they go into the file.
const DECODE_LE: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = mulaw::decode(i as u8).to_le_bytes();
        i += 1;
    }
    t
};

/// The little-endian PCM of μ-law `pairs` (caller, agent), in `pcm` (sized once, then reused: no
/// zeroing per write).
fn decode_pairs<'a>(pairs: &[u8], pcm: &'a mut Vec<u8>) -> &'a [u8] {
    let len = pairs.len() * 2;
    if pcm.len() < len {
        pcm.resize(len, 0);
    }
    let out = &mut pcm[..len];
    for (dst, &b) in out.chunks_exact_mut(2).zip(pairs) {
        dst.copy_from_slice(&DECODE_LE[b as usize]);
    }
    out
}

/// A recording being written. Not thread-safe by design: one writer thread owns it.
pub struct TimelineWav {
    file: File,
    path: PathBuf,
    /// Frames on disk (everything before the window).
    committed: u64,
    /// μ-law pairs (caller, agent) of the frames from `committed` on, not yet on disk;
    /// [`mulaw::SILENCE`] (decodes to 0) where nothing was placed. Its capacity is kept across
    /// commits, so steady writing allocates nothing.
    window: Vec<u8>,
    header_frames: u64,
    /// Frames patched on disk so far (audio later than the window).
    patched: u64,
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
            window: Vec::new(),
            header_frames: 0,
            patched: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sizes the window for `frames` up front, so it does not grow by doubling past what steady
    /// writing needs (it still grows when audio runs further ahead).
    pub fn reserve_window(&mut self, frames: usize) {
        self.window.reserve_exact(frames * 2);
    }

    /// Frames on disk.
    pub fn committed_frames(&self) -> u64 {
        self.committed
    }

    /// Frames held in memory, not yet on disk.
    pub fn window_frames(&self) -> u64 {
        self.window.len() as u64 / 2
    }

    /// Frames that arrived after they were on disk and had to be patched in place.
    pub fn patched_frames(&self) -> u64 {
        self.patched
    }

    /// Frames known so far (disk + window).
    pub fn end_frame(&self) -> u64 {
        self.committed + self.window_frames()
    }

    fn write_err(&self, source: std::io::Error) -> WavError {
        WavError::Write {
            path: self.path.clone(),
            source,
        }
    }

    /// Places the μ-law `audio` of `side` starting at frame `start`, replacing what that side had
    /// there. Frames still in the window cost a strided copy; frames already on disk are patched.
    pub fn put(&mut self, side: Side, start: u64, audio: &[u8]) -> Result<(), WavError> {
        if audio.is_empty() {
            return Ok(());
        }
        let end = start + audio.len() as u64;
        if end > self.end_frame() + MAX_JUMP_FRAMES {
            return Err(WavError::Jump {
                ms: (end - self.end_frame()) / FRAMES_PER_MS,
            });
        }
        if (end * FRAME_BYTES) > MAX_DATA_BYTES {
            return Err(WavError::TooLong);
        }
        let (on_disk, in_window) = if start < self.committed {
            let n = ((self.committed - start) as usize).min(audio.len());
            audio.split_at(n)
        } else {
            (&[][..], audio)
        };
        if !on_disk.is_empty() {
            self.patch(side, start, on_disk)?;
        }
        if !in_window.is_empty() {
            let first = start.max(self.committed);
            let at = (first - self.committed) as usize * 2;
            let needed = at + in_window.len() * 2;
            if self.window.len() < needed {
                // Only the new frames are filled (each frame once, however it arrives).
                self.window.resize(needed, mulaw::SILENCE);
            }
            let slots = self.window[at + side as usize..needed]
                .iter_mut()
                .step_by(2);
            for (slot, &b) in slots.zip(in_window) {
                *slot = b;
            }
        }
        Ok(())
    }

    /// Read-modify-write of frames already on disk: audio later than the writer's commit lag (rare;
    /// positioned I/O, one read and one write).
    fn patch(&mut self, side: Side, start: u64, audio: &[u8]) -> Result<(), WavError> {
        let offset = HEADER_LEN + start * FRAME_BYTES;
        let mut buf = vec![0u8; audio.len() * FRAME_BYTES as usize];
        let io = (|| {
            positioned::read_exact_at(&self.file, &mut buf, offset)?;
            for (frame, &b) in buf.chunks_exact_mut(FRAME_BYTES as usize).zip(audio) {
                let at = side as usize * 2;
                frame[at..at + 2].copy_from_slice(&mulaw::decode(b).to_le_bytes());
            }
            positioned::write_all_at(&self.file, &buf, offset)
        })();
        io.map_err(|e| self.write_err(e))?;
        self.patched += audio.len() as u64;
        Ok(())
    }

    /// Writes window frames before `frame` to disk (silence where nothing was placed): decoded in
    /// the writer thread's one PCM buffer, one positioned write per 4096 frames.
    pub fn commit_until(&mut self, frame: u64) -> Result<(), WavError> {
        if frame <= self.committed {
            return Ok(());
        }
        let n = ((frame - self.committed) as usize).min(self.window.len() / 2);
        if n == 0 {
            return Ok(());
        }
        let io = PCM.with(|pcm| {
            let mut pcm = pcm.borrow_mut();
            let mut offset = HEADER_LEN + self.committed * FRAME_BYTES;
            for pairs in self.window[..n * 2].chunks(WRITE_FRAMES * 2) {
                let bytes = decode_pairs(pairs, &mut pcm);
                positioned::write_all_at(&self.file, bytes, offset)?;
                offset += bytes.len() as u64;
            }
            Ok(())
        });
        io.map_err(|e| self.write_err(e))?;
        self.window.drain(..n * 2);
        self.committed += n as u64;
        Ok(())
    }

    /// Brings the RIFF and data sizes up to what is on disk, so the file plays after a crash.
    pub fn refresh_header(&mut self) -> Result<(), WavError> {
        if self.header_frames == self.committed {
            return Ok(());
        }
        let data = (self.committed * FRAME_BYTES) as u32;
        positioned::write_all_at(&self.file, &header(data), 0).map_err(|e| self.write_err(e))?;
        self.header_frames = self.committed;
        Ok(())
    }

    /// Writes everything and fixes the header, without waiting for the disk: the file plays from
    /// the page cache at once, and [`SealedWav::sync`] makes it durable later, on a thread that may
    /// wait (an `fsync` under disk pressure can take seconds).
    pub fn seal(mut self) -> Result<SealedWav, WavError> {
        let end = self.end_frame();
        self.commit_until(end)?;
        self.refresh_header()?;
        Ok(SealedWav {
            file: self.file,
            path: self.path,
            frames: self.committed,
        })
    }

    /// Writes everything, fixes the header and syncs; returns the frames in the file.
    pub fn finish(self) -> Result<u64, WavError> {
        self.seal()?.sync()
    }
}

/// A recording with every frame written and its header right, not yet synced to disk.
#[derive(Debug)]
pub struct SealedWav {
    file: File,
    path: PathBuf,
    frames: u64,
}

impl SealedWav {
    /// Frames in the file.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Waits until the file is on disk; returns its frames.
    pub fn sync(self) -> Result<u64, WavError> {
        match self.file.sync_all() {
            Ok(()) => Ok(self.frames),
            Err(source) => Err(WavError::Write {
                path: self.path,
                source,
            }),
        }
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

    /// The PCM a μ-law byte stands for (0 for silence).
    fn d(b: u8) -> i16 {
        mulaw::decode(b)
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
        assert_eq!(frames, vec![[d(1), 0], [d(2), 0], [d(3), 0], [0, 0]]);
        // Agent audio straddling disk and window.
        w.put(Side::Agent, 2, &[11, 12, 13, 14]).unwrap();
        assert_eq!(w.patched_frames(), 2);
        assert_eq!(w.finish().unwrap(), 7);
        let (spec, frames) = read(&path);
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (2, 8000, 16)
        );
        assert_eq!(
            frames,
            vec![
                [d(1), 0],
                [d(2), 0],
                [d(3), d(11)],
                [0, d(12)],
                [0, d(13)],
                [d(6), d(14)],
                [d(7), 0]
            ]
        );
    }

    #[test]
    fn audio_ahead_and_late_within_the_window_never_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut w = TimelineWav::create(&path).unwrap();
        // Agent audio placed ahead of the caller (its play time), then the caller catches up.
        w.put(Side::Agent, 100, &[50; 40]).unwrap();
        assert_eq!(w.end_frame(), 140);
        for f in 0..20u64 {
            w.put(Side::Caller, f * 8, &[f as u8 + 1; 8]).unwrap();
        }
        w.commit_until(60).unwrap();
        // Late agent audio for frames still in the window; a barge-in's cut prefix overwriting
        // part of the earlier agent chunk with what was really heard.
        w.put(Side::Agent, 60, &[70; 20]).unwrap();
        w.put(Side::Agent, 120, &[0xFF; 20]).unwrap();
        assert_eq!(w.patched_frames(), 0);
        assert_eq!(w.finish().unwrap(), 160);
        let (_, frames) = read(&path);
        for (i, [l, r]) in frames.iter().enumerate() {
            let caller = d(i as u8 / 8 + 1);
            let agent = match i {
                60..=79 => d(70),
                100..=119 => d(50),
                _ => 0,
            };
            assert_eq!((*l, *r), (caller, agent), "frame {i}");
        }
    }

    #[test]
    fn long_commits_go_out_in_chunks_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let mut w = TimelineWav::create(&path).unwrap();
        let n = WRITE_FRAMES * 2 + 123;
        let caller: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        let agent: Vec<u8> = (0..n).map(|i| (i % 241) as u8).collect();
        w.put(Side::Caller, 0, &caller).unwrap();
        w.put(Side::Agent, 0, &agent).unwrap();
        w.commit_until(WRITE_FRAMES as u64 * 2 + 7).unwrap();
        assert_eq!(w.window_frames(), 116);
        w.refresh_header().unwrap();
        assert_eq!(w.finish().unwrap(), n as u64);
        let (_, frames) = read(&path);
        let want: Vec<[i16; 2]> = (0..n).map(|i| [d(caller[i]), d(agent[i])]).collect();
        assert_eq!(frames, want);
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
