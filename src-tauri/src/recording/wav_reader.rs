//! Reading recordings back (playback, waveform, checks), with clear errors for missing or damaged files.

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

/// Reads a 16-bit 8 kHz PCM WAV (mono is played on both sides) as stereo frames.
pub fn read_stereo(path: &Path) -> Result<Vec<[i16; 2]>, WavReadError> {
    if !path.is_file() {
        return Err(WavReadError::Missing(path.to_path_buf()));
    }
    let damaged = |e: hound::Error| WavReadError::Damaged {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut reader = hound::WavReader::open(path).map_err(damaged)?;
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
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(damaged)?;
    Ok(if spec.channels == 2 {
        samples.chunks_exact(2).map(|c| [c[0], c[1]]).collect()
    } else {
        samples.iter().map(|s| [*s, *s]).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
