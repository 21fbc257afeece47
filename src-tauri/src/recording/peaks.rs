//! The waveform the library draws: per bucket, the loudest sample of each side (0–1).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use super::wav_reader::{StereoReader, WavReadError, BLOCK_FRAMES};
use super::wav_writer::FRAMES_PER_MS;

pub const MAX_BUCKETS: u32 = 10_000;
/// Waveforms the library keeps (each at most `MAX_BUCKETS` × 8 bytes, so at most ~1.3 MB in all).
pub const CACHE_ENTRIES: usize = 16;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Peaks {
    pub duration_ms: u64,
    /// `[caller, agent]` per bucket.
    pub buckets: Vec<[f32; 2]>,
}

/// Splits `frames` into `buckets` equal stretches (fewer if the recording is shorter). The in-memory
/// reference [`from_file`] is tested against.
#[cfg(test)]
pub fn compute(frames: &[[i16; 2]], buckets: u32) -> Peaks {
    let n = (buckets.clamp(1, MAX_BUCKETS) as usize).min(frames.len().max(1));
    let mut out = vec![[0f32; 2]; if frames.is_empty() { 0 } else { n }];
    for (i, bucket) in out.iter_mut().enumerate() {
        let from = i * frames.len() / n;
        let to = (i + 1) * frames.len() / n;
        for [l, r] in &frames[from..to] {
            bucket[0] = bucket[0].max(l.unsigned_abs() as f32 / 32768.0);
            bucket[1] = bucket[1].max(r.unsigned_abs() as f32 / 32768.0);
        }
    }
    Peaks {
        duration_ms: frames.len() as u64 / FRAMES_PER_MS,
        buckets: out,
    }
}

/// The same waveform as `compute` (same bucket boundaries and values), read from the file in one
/// pass of [`BLOCK_FRAMES`]-frame blocks: memory stays bounded whatever the recording's length.
/// Blocks: call it on a blocking thread from async code.
pub fn from_file(path: &Path, buckets: u32) -> Result<Peaks, WavReadError> {
    let mut reader = StereoReader::open(path)?;
    let total = reader.frames();
    let n = (buckets.clamp(1, MAX_BUCKETS) as u64).min(total.max(1));
    let mut out = vec![[0f32; 2]; if total == 0 { 0 } else { n as usize }];
    let mut block = vec![[0i16; 2]; BLOCK_FRAMES];
    // Bucket `i` covers frames `i * total / n .. (i + 1) * total / n`, as in `compute`.
    let (mut i, mut frame) = (0u64, 0u64);
    let mut bucket_end = total / n;
    loop {
        let got = reader.read(&mut block)?;
        if got == 0 {
            break;
        }
        for [l, r] in &block[..got] {
            while frame >= bucket_end {
                i += 1;
                bucket_end = (i + 1) * total / n;
            }
            let bucket = &mut out[i as usize];
            bucket[0] = bucket[0].max(l.unsigned_abs() as f32 / 32768.0);
            bucket[1] = bucket[1].max(r.unsigned_abs() as f32 / 32768.0);
            frame += 1;
        }
    }
    Ok(Peaks {
        duration_ms: total / FRAMES_PER_MS,
        buckets: out,
    })
}

/// What a cached waveform was computed from: a changed file (length or modification time) misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    recording_id: i64,
    buckets: u32,
    len: u64,
    modified: Option<SystemTime>,
}

fn key_of(recording_id: i64, buckets: u32, path: &Path) -> Option<Key> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Key {
        recording_id,
        buckets,
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// The last [`CACHE_ENTRIES`] waveforms asked for, per (recording, buckets, file length and mtime).
#[derive(Default)]
pub struct PeaksCache {
    entries: Mutex<VecDeque<(Key, Arc<Peaks>)>>,
}

impl PeaksCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Key, Arc<Peaks>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The waveform of recording `recording_id` at `path`: from the cache when the file has not
    /// changed, else read with [`from_file`] (errors are not cached). Blocks while it reads.
    pub fn get_or_compute(
        &self,
        recording_id: i64,
        path: &Path,
        buckets: u32,
    ) -> Result<Arc<Peaks>, WavReadError> {
        let key = key_of(recording_id, buckets, path);
        if let Some(key) = key {
            let mut entries = self.lock();
            if let Some(at) = entries.iter().position(|(k, _)| *k == key) {
                // Most recently used at the back.
                if let Some(hit) = entries.remove(at) {
                    let peaks = hit.1.clone();
                    entries.push_back(hit);
                    return Ok(peaks);
                }
            }
        }
        let peaks = Arc::new(from_file(path, buckets)?);
        // Only keep it if the file did not change while it was read (a live recording grows).
        if let Some(key) = key.filter(|k| key_of(recording_id, buckets, path) == Some(*k)) {
            let mut entries = self.lock();
            entries.retain(|(k, _)| (k.recording_id, k.buckets) != (recording_id, buckets));
            if entries.len() >= CACHE_ENTRIES {
                entries.pop_front();
            }
            entries.push_back((key, peaks.clone()));
        }
        Ok(peaks)
    }

    /// Forgets a recording's waveforms (it was deleted; its id may come back).
    pub fn forget(&self, recording_id: i64) {
        self.lock().retain(|(k, _)| k.recording_id != recording_id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loud_parts_show_on_their_side() {
        let mut frames = vec![[0i16, 0i16]; 8000];
        frames[100] = [16384, 0];
        frames[7000] = [0, -32768];
        let p = compute(&frames, 4);
        assert_eq!(p.duration_ms, 1000);
        assert_eq!(
            p.buckets,
            vec![[0.5, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 1.0]]
        );
        assert_eq!(compute(&frames[..3], 100).buckets.len(), 3);
        assert!(compute(&[], 10).buckets.is_empty());
    }

    use crate::recording::wav_reader::read_stereo;
    use crate::recording::wav_reader::tests::{read_whole, write_test_wav};

    #[test]
    fn streaming_peaks_match_the_whole_file_algorithm_exactly() {
        let dir = tempfile::tempdir().unwrap();
        for (channels, frames) in [(2u16, 100_003u32), (1, 12_345), (2, 5), (2, 0)] {
            let path = dir.path().join(format!("{channels}-{frames}.wav"));
            write_test_wav(&path, channels, frames);
            let all = read_whole(&path).unwrap();
            for buckets in [1, 3, 7, 100, 999, 4096, 5000, MAX_BUCKETS] {
                let old = compute(&all, buckets);
                let new = from_file(&path, buckets).unwrap();
                assert_eq!(
                    new, old,
                    "{channels} ch, {frames} frames, {buckets} buckets"
                );
            }
        }
    }

    #[test]
    fn missing_and_damaged_files_are_the_same_errors_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let cache = PeaksCache::default();
        let missing = dir.path().join("gone.wav");
        let junk = dir.path().join("junk.wav");
        std::fs::write(&junk, b"RIFF\x24\0\0\0WAVEnot really a wav").unwrap();
        let cut = dir.path().join("cut.wav");
        write_test_wav(&cut, 2, 8000);
        let bytes = std::fs::read(&cut).unwrap();
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        for (path, word) in [(&missing, "missing"), (&junk, "damaged"), (&cut, "damaged")] {
            let before = read_stereo(path).unwrap_err().to_string();
            let err = from_file(path, 10).unwrap_err().to_string();
            assert_eq!(err, before);
            assert!(err.contains(word), "{err}");
            let cached = cache.get_or_compute(1, path, 10).unwrap_err().to_string();
            assert_eq!(cached, before);
        }
        // Errors are not cached.
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_answers_repeats_and_misses_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        write_test_wav(&path, 2, 16_000);
        let cache = PeaksCache::default();
        let first = cache.get_or_compute(7, &path, 50).unwrap();
        let again = cache.get_or_compute(7, &path, 50).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "a repeat comes from the cache");
        let other = cache.get_or_compute(7, &path, 20).unwrap();
        assert_eq!(other.buckets.len(), 20);
        assert_eq!(cache.len(), 2);
        // The file changes (new length): computed again, and replaces the stale entry.
        write_test_wav(&path, 2, 24_000);
        let changed = cache.get_or_compute(7, &path, 50).unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        assert_eq!(changed.duration_ms, 3000);
        assert_eq!(cache.len(), 2);
        // Bounded: old entries go first.
        for id in 100..100 + CACHE_ENTRIES as i64 {
            cache.get_or_compute(id, &path, 10).unwrap();
        }
        assert_eq!(cache.len(), CACHE_ENTRIES);
        let recomputed = cache.get_or_compute(7, &path, 50).unwrap();
        assert!(!Arc::ptr_eq(&changed, &recomputed), "evicted");
        cache.forget(7);
        assert_eq!(cache.len(), CACHE_ENTRIES - 1);
    }
}
