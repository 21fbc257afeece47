//! SQLite storage for calls and transcripts. Never called on the audio hot path.
//!
//! One dedicated OS thread owns the connection; everyone else holds a cheap [`StoreHandle`] and
//! sends it commands over a channel. Persisting a bus event never blocks (the channel is
//! unbounded), and reads answer through a oneshot, so a slow disk only ever delays the library
//! view, never a call.
//!
//! - [`migrations`]: the schema, applied in order and tracked with `PRAGMA user_version`.
//! - [`calls`]: the `calls` and `call_issues` tables.
//! - [`transcripts`]: the `transcripts` table.
//! - [`latency`]: each answered turn's latency as the caller heard it, and each barge-in.
//! - [`costs`]: what each call cost (a ledger of priced usage), per call and per day.
//! - [`operator`]: the stretches of calls the operator held with their own microphone.
//! - [`tool_calls`]: the tool log (also a `tool` line in the transcript).
//! - [`settings`]: small app choices remembered between runs (never secrets).
//! - [`summaries`]: each call's post-call summary, and its words for search.
//! - [`recordings`]: the `recordings` table and transcript search (FTS5).
//! - [`savepoint`]: atomic event writes with statements compiled once.

use std::path::PathBuf;

mod blocking;
pub mod calls;
pub mod costs;
mod handle;
pub mod latency;
pub mod migrations;
pub mod operator;
pub mod recordings;
pub mod savepoint;
pub mod settings;
pub mod summaries;
pub mod tool_calls;
pub mod transcripts;

pub use blocking::block_on;
pub use calls::{CallRecord, IssueRecord};
pub use handle::StoreHandle;
pub use transcripts::TranscriptRecord;

/// Why the call library could not be opened or answered.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the call library {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the call library {path} is damaged or not a Verbio database ({source}); \
         move it aside to start a new one"
    )]
    Corrupt {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the call library was written by a newer Verbio (schema version {found}, \
         this build knows up to {known})"
    )]
    TooNew { found: i64, known: i64 },
    #[error("database schema migration {version} failed: {source}")]
    Migration {
        version: usize,
        source: rusqlite::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot start the call library thread: {0}")]
    Thread(std::io::Error),
    #[error("the call library has stopped")]
    Closed,
}

impl StoreError {
    /// The SQLite error underneath, if any.
    pub fn sqlite(&self) -> Option<&rusqlite::Error> {
        match self {
            StoreError::Open { source, .. }
            | StoreError::Corrupt { source, .. }
            | StoreError::Migration { source, .. }
            | StoreError::Sqlite(source) => Some(source),
            StoreError::CreateDir { .. }
            | StoreError::TooNew { .. }
            | StoreError::Thread(_)
            | StoreError::Closed => None,
        }
    }

    /// True when SQLite says the file is not a database or is damaged.
    pub fn is_corruption(&self) -> bool {
        self.sqlite().is_some_and(|e| {
            matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            )
        })
    }
}
