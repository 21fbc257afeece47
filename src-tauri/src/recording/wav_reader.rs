//! Reading recordings back (playback, waveform, checks), with clear errors for missing or damaged files.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::wav_writer::SAMPLE_RATE;

#[derive(Debug, thiserror::Error)]
pub enum WavReadError {
    #[error("the recording file {0} is missing")]
    Missing(PathBuf),
    #[error("the recording file {path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
    #[error("the recording file {path} is {reason}; only 8 kHz 16-bit PCM is supported")]
    Unsupported { path: PathBuf, reason: String },
}

/// Frames per read from the file when streaming (0.5 s, 16 KiB of stereo samples).
pub const BLOCK_FRAMES: usize = 4096;

/// hound's words for a data chunk that ends early (kept so the error reads as it always did).
const SHORT_READ: &str = "Failed to read enough bytes.";

/// A checked recording read front to back in blocks (bounded memory), with frame-accurate seeks.
///
/// Opening checks what reading the whole file used to: it exists, its header parses, it is 8 kHz
/// 16-bit PCM, and the file holds every sample its header announces (a cut-off file is `Damaged`).
pub struct StereoReader {
    path: PathBuf,
    file: BufReader<File>,
    channels: u16,
    data_start: u64,
    frames: u64,
    /// The next frame [`StereoReader::read`] returns.
    pos: u64,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for StereoReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StereoReader({}, {} frames)",
            self.path.display(),
            self.frames
        )
    }
}

impl StereoReader {
    pub fn open(path: &Path) -> Result<Self, WavReadError> {
        if !path.is_file() {
            return Err(WavReadError::Missing(path.to_path_buf()));
        }
        let damaged = |e: hound::Error| WavReadError::Damaged {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let reader = hound::WavReader::open(path).map_err(damaged)?;
        let spec = reader.spec();
        if spec.sample_format != hound::SampleFormat::Int
            || spec.bits_per_sample != 16
            || spec.sample_rate != SAMPLE_RATE
            || !(1..=2).contains(&spec.channels)
        {
            return Err(WavReadError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "{} Hz, {} bit, {} channel(s)",
                    spec.sample_rate, spec.bits_per_sample, spec.channels
                ),
            });
        }
        let channels = spec.channels;
        // A stereo file with an odd sample count drops the half frame, as reading it whole did.
        let frames = reader.duration() as u64;
        let samples = reader.len() as u64;
        let mut file = reader.into_inner();
        // hound stops right at the first sample.
        let data_start = file
            .stream_position()
            .map_err(|e| damaged(hound::Error::IoError(e)))?;
        let on_disk = file
            .get_ref()
            .metadata()
            .map_err(|e| damaged(hound::Error::IoError(e)))?
            .len();
        if on_disk < data_start + samples * 2 {
            return Err(short(path));
        }
        Ok(StereoReader {
            path: path.to_path_buf(),
            file,
            channels,
            data_start,
            frames,
            pos: 0,
            bytes: Vec::new(),
        })
    }

    /// Frames in the file (its duration at 8 kHz).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The frame the next read starts at.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Moves to `frame` (clamped to the end).
    pub fn seek(&mut self, frame: u64) -> Result<(), WavReadError> {
        let frame = frame.min(self.frames);
        let at = self.data_start + frame * self.channels as u64 * 2;
        self.file
            .seek(SeekFrom::Start(at))
            .map_err(|e| self.damaged(e))?;
        self.pos = frame;
        Ok(())
    }

    /// Fills the front of `out` with the next frames (mono is played on both sides); returns how
    /// many, 0 at the end.
    pub fn read(&mut self, out: &mut [[i16; 2]]) -> Result<usize, WavReadError> {
        let n = out.len().min((self.frames - self.pos) as usize);
        if n == 0 {
            return Ok(0);
        }
        let width = self.channels as usize * 2;
        self.bytes.resize(n * width, 0);
        if let Err(e) = self.file.read_exact(&mut self.bytes) {
            return Err(if e.kind() == ErrorKind::UnexpectedEof {
                short(&self.path)
            } else {
                self.damaged(e)
            });
        }
        for (frame, b) in out.iter_mut().zip(self.bytes.chunks_exact(width)) {
            let l = i16::from_le_bytes([b[0], b[1]]);
            *frame = if width == 4 {
                [l, i16::from_le_bytes([b[2], b[3]])]
            } else {
                [l, l]
            };
        }
        self.pos += n as u64;
        Ok(n)
    }

    fn damaged(&self, e: std::io::Error) -> WavReadError {
        WavReadError::Damaged {
            path: self.path.clone(),
            reason: hound::Error::IoError(e).to_string(),
        }
    }
}

fn short(path: &Path) -> WavReadError {
    WavReadError::Damaged {
        path: path.to_path_buf(),
        reason: hound::Error::IoError(std::io::Error::other(SHORT_READ)).to_string(),
    }
}

/// Checks a recording and returns its length in frames without reading its samples.
pub fn check(path: &Path) -> Result<u64, WavReadError> {
    StereoReader::open(path).map(|r| r.frames())
}

/// Reads a 16-bit 8 kHz PCM WAV (mono is played on both sides) as stereo frames, all in memory.
/// For checks and tests on short files; long ones go through [`StereoReader`].
pub fn read_stereo(path: &Path) -> Result<Vec<[i16; 2]>, WavReadError> {
    let mut reader = StereoReader::open(path)?;
    let mut frames = vec![[0i16; 2]; reader.frames() as usize];
    let mut at = 0;
    while at < frames.len() {
        let end = (at + BLOCK_FRAMES).min(frames.len());
        match reader.read(&mut frames[at..end])? {
            0 => break,
            n => at += n,
        }
    }
    frames.truncate(at);
    Ok(frames)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The whole-file read this module used to do (hound's sample iterator), as the reference.
    pub(crate) fn read_whole(path: &Path) -> Result<Vec<[i16; 2]>, String> {
        let mut reader = hound::WavReader::open(path).map_err(|e| e.to_string())?;
        let channels = reader.spec().channels;
        let samples: Vec<i16> = reader
            .samples::<i16>()
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        Ok(if channels == 2 {
            samples.chunks_exact(2).map(|c| [c[0], c[1]]).collect()
        } else {
            samples.iter().map(|s| [*s, *s]).collect()
        })
    }

    /// A WAV of `frames` frames whose samples are all different (a seek off by one frame shows).
    pub(crate) fn write_test_wav(path: &Path, channels: u16, frames: u32) {
        let spec = hound::WavSpec {
            channels,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..frames {
            for c in 0..channels as u32 {
                let v = (i.wrapping_mul(2_654_435_761).wrapping_add(c * 40_503) >> 16) as i16;
                w.write_sample(v).unwrap();
            }
        }
        w.finalize().unwrap();
    }

    #[test]
    fn streaming_reads_what_the_whole_file_read_did_and_seeks_to_the_frame() {
        let dir = tempfile::tempdir().unwrap();
        for channels in [1u16, 2] {
            let path = dir.path().join(format!("{channels}.wav"));
            write_test_wav(&path, channels, 10_001);
            let whole = read_whole(&path).unwrap();
            assert_eq!(read_stereo(&path).unwrap(), whole);
            let mut r = StereoReader::open(&path).unwrap();
            assert_eq!(r.frames(), 10_001);
            for at in [0u64, 1, 4095, 4096, 9_999, 10_000] {
                r.seek(at).unwrap();
                let mut buf = [[0i16; 2]; 3];
                let n = r.read(&mut buf).unwrap();
                assert_eq!(
                    &buf[..n],
                    &whole[at as usize..(at as usize + 3).min(10_001)]
                );
                assert_eq!(r.position(), at + n as u64);
            }
            r.seek(20_000).unwrap();
            assert_eq!(r.read(&mut [[0i16; 2]; 8]).unwrap(), 0);
        }
        // A file cut short (its header promises more): the same "damaged" error as before, at open.
        let cut = dir.path().join("cut.wav");
        write_test_wav(&cut, 2, 1000);
        let bytes = std::fs::read(&cut).unwrap();
        std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
        let before = read_whole(&cut).unwrap_err();
        let err = StereoReader::open(&cut).unwrap_err();
        match &err {
            WavReadError::Damaged { reason, .. } => assert_eq!(*reason, before),
            other => panic!("{other:?}"),
        }
        assert_eq!(read_stereo(&cut).unwrap_err().to_string(), err.to_string());
        assert!(check(&cut).is_err());
    }

    #[test]
    fn missing_damaged_and_unsupported_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone.wav");
        assert!(matches!(
            read_stereo(&missing),
            Err(WavReadError::Missing(_))
        ));
        let junk = dir.path().join("junk.wav");
        std::fs::write(&junk, b"RIFF\x10\0\0\0WAVEjunkjunkjunk").unwrap();
        let err = read_stereo(&junk).unwrap_err();
        assert!(matches!(err, WavReadError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("damaged"), "{err}");
        let hi = dir.path().join("hi.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&hi, spec).unwrap();
        w.write_sample(0i16).unwrap();
        w.finalize().unwrap();
        assert!(matches!(
            read_stereo(&hi),
            Err(WavReadError::Unsupported { .. })
        ));
    }
}
