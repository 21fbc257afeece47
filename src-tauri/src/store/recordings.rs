//! Queries on `recordings`, and full-text search over transcripts (`transcripts_fts`, FTS5) and
//! summaries (`call_summaries_fts`).

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{calls, StoreError};

pub const STATUS_RECORDING: &str = "recording";
pub const STATUS_COMPLETE: &str = "complete";
pub const STATUS_INCOMPLETE: &str = "incomplete";
pub const STATUS_REPAIRED: &str = "repaired";

/// One recording in the library, with its call's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordingRecord {
    pub id: i64,
    pub call_sid: String,
    /// `local` (written by the bridge) or `twilio` (downloaded cloud recording).
    pub source: String,
    /// File name inside the recordings folder.
    pub file_name: String,
    /// `recording`, `complete`, `incomplete` (see `note`) or `repaired` (after a crash).
    pub status: String,
    pub note: Option<String>,
    pub started_at_ms: i64,
    pub duration_ms: i64,
    pub channels: i64,
    pub sample_rate: i64,
    pub size_bytes: i64,
    pub twilio_sid: Option<String>,
    pub direction: Option<String>,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
}

/// A recording to add.
#[derive(Debug, Clone)]
pub struct NewRecording {
    pub call_sid: String,
    pub source: String,
    pub file_name: String,
    pub status: String,
    pub started_at_ms: i64,
    pub twilio_sid: Option<String>,
}

/// How a recording ended up on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingOutcome {
    pub status: String,
    pub note: Option<String>,
    pub duration_ms: i64,
    pub size_bytes: i64,
    pub channels: i64,
    pub sample_rate: i64,
}

const COLUMNS: &str =
    "r.id, r.call_sid, r.source, r.file_name, r.status, r.note, r.started_at_ms, \
     r.duration_ms, r.channels, r.sample_rate, r.size_bytes, r.twilio_sid, \
     c.direction, c.from_number, c.to_number";

fn from_row(row: &Row) -> rusqlite::Result<RecordingRecord> {
    Ok(RecordingRecord {
        id: row.get(0)?,
        call_sid: row.get(1)?,
        source: row.get(2)?,
        file_name: row.get(3)?,
        status: row.get(4)?,
        note: row.get(5)?,
        started_at_ms: row.get(6)?,
        duration_ms: row.get(7)?,
        channels: row.get(8)?,
        sample_rate: row.get(9)?,
        size_bytes: row.get(10)?,
        twilio_sid: row.get(11)?,
        direction: row.get(12)?,
        from_number: row.get(13)?,
        to_number: row.get(14)?,
    })
}

pub fn insert(conn: &mut Connection, r: &NewRecording) -> Result<i64, StoreError> {
    let tx = conn.savepoint()?;
    calls::ensure_exists(&tx, &r.call_sid, r.started_at_ms)?;
    tx.execute(
        "INSERT INTO recordings (call_sid, source, file_name, status, started_at_ms, twilio_sid)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            r.call_sid,
            r.source,
            r.file_name,
            r.status,
            r.started_at_ms,
            r.twilio_sid
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.commit()?;
    Ok(id)
}

pub fn set_outcome(conn: &Connection, id: i64, o: &RecordingOutcome) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE recordings SET status = ?2, note = ?3, duration_ms = ?4, size_bytes = ?5,
             channels = ?6, sample_rate = ?7 WHERE id = ?1",
        params![
            id,
            o.status,
            o.note,
            o.duration_ms,
            o.size_bytes,
            o.channels,
            o.sample_rate
        ],
    )?;
    Ok(n > 0)
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<RecordingRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM recordings r LEFT JOIN calls c ON c.call_sid = r.call_sid WHERE r.id = ?1"
    );
    Ok(conn.query_row(&sql, [id], from_row).optional()?)
}

pub fn for_call(conn: &Connection, call_sid: &str) -> Result<Vec<RecordingRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM recordings r LEFT JOIN calls c ON c.call_sid = r.call_sid
         WHERE r.call_sid = ?1 ORDER BY r.id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([call_sid], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every file name the library lists (local and Twilio copies).
pub fn file_names(conn: &Connection) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT file_name FROM recordings")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Recordings left in `recording` state (the app stopped while writing them).
pub fn unfinished(conn: &Connection) -> Result<Vec<RecordingRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM recordings r LEFT JOIN calls c ON c.call_sid = r.call_sid
         WHERE r.status = 'recording' ORDER BY r.id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Turns free text into an FTS5 query matching every word (as a prefix), so user input can never be
/// an FTS5 syntax error.
pub fn fts_query(text: &str) -> Option<String> {
    let terms: Vec<String> = text
        .split_whitespace()
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// Newest first; with `search`, only recordings whose call has a transcript line, or a summary (its
/// text, disposition or field values, see [`super::summaries`]), that matches every word.
pub fn list(
    conn: &Connection,
    search: Option<&str>,
    limit: u32,
    offset: u32,
) -> Result<Vec<RecordingRecord>, StoreError> {
    let query = search.and_then(fts_query);
    if query.is_some() {
        // Lines written since the last batch of call events are found too.
        super::transcripts::index_pending(conn)?;
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM recordings r LEFT JOIN calls c ON c.call_sid = r.call_sid
         WHERE ?1 IS NULL OR r.call_sid IN (
             SELECT t.call_sid FROM transcripts_fts f JOIN transcripts t ON t.id = f.rowid
             WHERE transcripts_fts MATCH ?1)
           OR r.call_sid IN (
             SELECT call_sid FROM call_summaries_fts WHERE call_summaries_fts MATCH ?1)
         ORDER BY r.started_at_ms DESC, r.id DESC LIMIT ?2 OFFSET ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![query, limit, offset], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delete(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM recordings WHERE id = ?1", [id])? > 0)
}

/// Claims a Twilio recording for download: true the first time its `recording_sid` is seen (for
/// `call_sid`: a signed callback cannot change it), false for a replayed (or concurrent duplicate)
/// callback. The claim outlives the recording's row.
pub fn claim_twilio(
    conn: &Connection,
    recording_sid: &str,
    call_sid: &str,
    at_ms: i64,
) -> Result<bool, StoreError> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO twilio_recording_claims (recording_sid, call_sid, at_ms)
         VALUES (?1, ?2, ?3)",
        params![recording_sid, call_sid, at_ms],
    )?;
    Ok(inserted > 0)
}

/// Gives a claim back (its download failed), so Twilio's next attempt is not taken for a replay.
pub fn release_twilio(
    conn: &Connection,
    recording_sid: &str,
    call_sid: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM twilio_recording_claims WHERE recording_sid = ?1 AND call_sid = ?2",
        [recording_sid, call_sid],
    )?;
    Ok(())
}

/// Async access through the store thread (the library view and the recorder; never the hot path).
impl super::StoreHandle {
    pub fn add_recording(
        &self,
        r: NewRecording,
    ) -> impl std::future::Future<Output = Result<i64, StoreError>> + Send + 'static {
        self.request(move |conn| insert(conn, &r))
    }

    /// Adds a recording that is already complete (a Twilio copy) with its outcome, in one step.
    pub fn add_finished_recording(
        &self,
        r: NewRecording,
        o: RecordingOutcome,
    ) -> impl std::future::Future<Output = Result<i64, StoreError>> + Send + 'static {
        self.request(move |conn| {
            let id = insert(conn, &r)?;
            set_outcome(conn, id, &o)?;
            Ok(id)
        })
    }

    pub fn set_recording_outcome(
        &self,
        id: i64,
        o: RecordingOutcome,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send + 'static {
        self.request(move |conn| set_outcome(conn, id, &o))
    }

    pub fn recording(
        &self,
        id: i64,
    ) -> impl std::future::Future<Output = Result<Option<RecordingRecord>, StoreError>> + Send + 'static
    {
        self.request(move |conn| get(conn, id))
    }

    pub fn recordings_for_call(
        &self,
        call_sid: &str,
    ) -> impl std::future::Future<Output = Result<Vec<RecordingRecord>, StoreError>> + Send + 'static
    {
        let call_sid = call_sid.to_string();
        self.request(move |conn| for_call(conn, &call_sid))
    }

    pub fn unfinished_recordings(
        &self,
    ) -> impl std::future::Future<Output = Result<Vec<RecordingRecord>, StoreError>> + Send + 'static
    {
        self.request(|conn| unfinished(conn))
    }

    /// See [`file_names`].
    pub fn recording_file_names(
        &self,
    ) -> impl std::future::Future<Output = Result<std::collections::HashSet<String>, StoreError>>
           + Send
           + 'static {
        self.request(|conn| file_names(conn))
    }

    pub fn list_recordings(
        &self,
        search: Option<String>,
        limit: u32,
        offset: u32,
    ) -> impl std::future::Future<Output = Result<Vec<RecordingRecord>, StoreError>> + Send + 'static
    {
        self.request(move |conn| list(conn, search.as_deref(), limit, offset))
    }

    pub fn delete_recording(
        &self,
        id: i64,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send + 'static {
        self.request(move |conn| delete(conn, id))
    }

    /// See [`claim_twilio`].
    pub fn claim_twilio_recording(
        &self,
        recording_sid: &str,
        call_sid: &str,
        at_ms: i64,
    ) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send + 'static {
        let (recording_sid, call_sid) = (recording_sid.to_string(), call_sid.to_string());
        self.request(move |conn| claim_twilio(conn, &recording_sid, &call_sid, at_ms))
    }

    /// See [`release_twilio`].
    pub fn release_twilio_recording(
        &self,
        recording_sid: &str,
        call_sid: &str,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let (recording_sid, call_sid) = (recording_sid.to_string(), call_sid.to_string());
        self.request(move |conn| release_twilio(conn, &recording_sid, &call_sid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations;
    use crate::store::transcripts::{self, NewTranscript};
    use crate::types::Speaker;

    fn add(conn: &mut Connection, call_sid: &str, file: &str, at: i64) -> i64 {
        insert(
            conn,
            &NewRecording {
                call_sid: call_sid.into(),
                source: "local".into(),
                file_name: file.into(),
                status: STATUS_RECORDING.into(),
                started_at_ms: at,
                twilio_sid: None,
            },
        )
        .unwrap()
    }

    fn say(conn: &mut Connection, call_sid: &str, text: &str) {
        transcripts::insert(
            conn,
            &NewTranscript {
                call_sid,
                speaker: Speaker::Caller,
                text,
                offset_ms: 0,
                interrupted: false,
                at_ms: 1,
            },
        )
        .unwrap();
    }

    #[test]
    fn a_twilio_recording_is_claimed_once_and_kept_once() {
        let mut conn = migrations::test_db();
        assert!(claim_twilio(&conn, "RE1", "CA1", 1).unwrap());
        assert!(!claim_twilio(&conn, "RE1", "CA1", 2).unwrap(), "a replay");
        let twilio = |file: &str| NewRecording {
            call_sid: "CA1".into(),
            source: "twilio".into(),
            file_name: file.into(),
            status: STATUS_COMPLETE.into(),
            started_at_ms: 1,
            twilio_sid: Some("RE1".into()),
        };
        let id = insert(&mut conn, &twilio("a.wav")).unwrap();
        // Even under another file name, a second row for the same Twilio recording is refused.
        assert!(insert(&mut conn, &twilio("b.wav")).is_err());
        // Deleting the recording keeps the claim: a replay does not bring it back.
        assert!(delete(&conn, id).unwrap());
        assert!(!claim_twilio(&conn, "RE1", "CA1", 3).unwrap());
        // A failed download gives the claim back.
        release_twilio(&conn, "RE1", "CA1").unwrap();
        assert!(claim_twilio(&conn, "RE1", "CA1", 4).unwrap());
    }

    #[test]
    fn fts5_is_compiled_in() {
        let conn = migrations::test_db();
        let ok: i64 = conn
            .query_row("SELECT sqlite_compileoption_used('ENABLE_FTS5')", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(ok, 1);
    }

    #[test]
    fn search_lists_outcomes_and_delete() {
        let mut conn = migrations::test_db();
        calls::insert_started(&conn, "CA1", "MZ1", Some("+1555"), None, 10).unwrap();
        let a = add(&mut conn, "CA1", "a.wav", 10);
        let b = add(&mut conn, "CA2", "b.wav", 20);
        say(&mut conn, "CA1", "I would like a taxi to the airport");
        say(&mut conn, "CA2", "Where is my parcel?");

        let all = list(&conn, None, 10, 0).unwrap();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), [b, a]);
        assert_eq!(all[1].from_number.as_deref(), Some("+1555"));
        let hits = list(&conn, Some("AIRPORT tax"), 10, 0).unwrap();
        assert_eq!(hits.iter().map(|r| r.id).collect::<Vec<_>>(), [a]);
        // Syntax characters are only words.
        assert!(list(&conn, Some("\"parcel OR (*"), 10, 0)
            .unwrap()
            .is_empty());
        assert_eq!(list(&conn, Some("parcel"), 10, 0).unwrap()[0].id, b);
        assert_eq!(list(&conn, None, 1, 1).unwrap()[0].id, a);

        assert_eq!(unfinished(&conn).unwrap().len(), 2);
        let outcome = RecordingOutcome {
            status: STATUS_INCOMPLETE.into(),
            note: Some("disk full".into()),
            duration_ms: 1500,
            size_bytes: 48_044,
            channels: 2,
            sample_rate: 8000,
        };
        assert!(set_outcome(&conn, a, &outcome).unwrap());
        let got = get(&conn, a).unwrap().unwrap();
        assert_eq!((got.status.as_str(), got.duration_ms), ("incomplete", 1500));
        assert_eq!(unfinished(&conn).unwrap().len(), 1);
        assert_eq!(for_call(&conn, "CA2").unwrap()[0].id, b);

        // Deleting a transcript removes it from the index too.
        conn.execute("DELETE FROM transcripts WHERE call_sid = 'CA2'", [])
            .unwrap();
        assert!(list(&conn, Some("parcel"), 10, 0).unwrap().is_empty());
        assert!(delete(&conn, a).unwrap());
        assert!(!delete(&conn, a).unwrap());
        assert!(get(&conn, a).unwrap().is_none());
    }
}
