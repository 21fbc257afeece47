//! The recording writer's slow half: one thread that lists each recording in the library when it
//! starts and, when it ends, waits for its file to reach the disk and saves its outcome.
//!
//! Why a thread of its own: the writer must visit every live recording each tick, or their feeds fill
//! and audio is dropped (a feed holds ~2.5 s). Both jobs here can wait for seconds: an `fsync` while
//! something else fills the page cache, or a library busy with a checkpoint or held by another
//! process. When the writer did them itself, one such wait cost every live call its audio (issue 16,
//! ninth stretch: 196 recordings incomplete in one stall). Now a slow disk or library only delays
//! when a row appears or turns `complete`.
//!
//! Jobs are done in the order they were sent, so a recording's row is always inserted before its
//! outcome is saved.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};

use tracing::{info, warn};

use super::wav_writer::SealedWav;
use crate::store::recordings::{
    NewRecording, RecordingOutcome, STATUS_COMPLETE, STATUS_INCOMPLETE,
};
use crate::store::StoreHandle;

/// Which recording a job is about: the writer numbers them as they start.
pub(super) type RecordingKey = u64;

/// Work handed over by the writer.
pub(super) enum CloseJob {
    /// A recording started: insert its row.
    List {
        key: RecordingKey,
        row: NewRecording,
    },
    /// A recording ended with `frames` in its file: sync the file (if it has one), then save the
    /// outcome, incomplete if `note` says why or the sync fails.
    Close {
        key: RecordingKey,
        call_sid: String,
        file: Option<SealedWav>,
        frames: u64,
        note: Option<String>,
        patched_ms: u64,
    },
}

/// The sending side; dropping it ends the thread once its jobs are done.
pub(super) struct Closer {
    jobs: Sender<CloseJob>,
}

impl Closer {
    /// Starts the thread.
    pub fn spawn(store: StoreHandle) -> std::io::Result<Closer> {
        let (jobs, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("verbio-rec-close".into())
            .spawn(move || {
                crate::thread_sched::background();
                run(rx, store)
            })?;
        Ok(Closer { jobs })
    }

    /// Queues `job`; never waits. A stopped thread (it only stops when this is dropped, or if the
    /// process is going down) loses the library update, never audio.
    pub fn send(&self, job: CloseJob) {
        if self.jobs.send(job).is_err() {
            warn!("the recording library updater has stopped");
        }
    }
}

fn run(jobs: Receiver<CloseJob>, store: StoreHandle) {
    // Rows of recordings still running, by key.
    let mut rows: HashMap<RecordingKey, i64> = HashMap::new();
    for job in jobs {
        match job {
            CloseJob::List { key, row } => {
                let call_sid = row.call_sid.clone();
                match crate::store::block_on(store.add_recording(row)) {
                    Ok(id) => {
                        rows.insert(key, id);
                    }
                    Err(e) => warn!(%call_sid, "recording not listed in the library: {e}"),
                }
            }
            CloseJob::Close {
                key,
                call_sid,
                file,
                frames,
                note,
                patched_ms,
            } => {
                let note = match file.map(SealedWav::sync) {
                    Some(Err(e)) => Some(e.to_string()),
                    _ => note,
                };
                let outcome = outcome(frames, note);
                info!(%call_sid, status = %outcome.status, duration_ms = outcome.duration_ms, patched_ms, "recording finished");
                if let Some(id) = rows.remove(&key) {
                    if let Err(e) = crate::store::block_on(store.set_recording_outcome(id, outcome))
                    {
                        warn!(%call_sid, "recording outcome not saved: {e}");
                    }
                }
            }
        }
    }
}

/// The outcome of a recording of `frames` frames; `note` says why it is incomplete, if it is.
fn outcome(frames: u64, note: Option<String>) -> RecordingOutcome {
    let status = if note.is_some() {
        STATUS_INCOMPLETE
    } else {
        STATUS_COMPLETE
    };
    super::wav_outcome(status, note, frames)
}
