//! Queries on `transcripts`.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{params, Connection};
use serde::Serialize;

use super::savepoint::atomically;
use super::{calls, StoreError};
use crate::types::Speaker;

/// One finished transcript turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TranscriptRecord {
    pub id: i64,
    pub call_sid: String,
    pub speaker: Speaker,
    pub text: String,
    /// Milliseconds from the stream's start.
    pub offset_ms: u64,
    /// The agent was talked over before finishing this turn.
    pub interrupted: bool,
    pub at_ms: i64,
}

/// A transcript line to store.
#[derive(Debug, Clone, Copy)]
pub struct NewTranscript<'a> {
    pub call_sid: &'a str,
    pub speaker: Speaker,
    pub text: &'a str,
    pub offset_ms: u64,
    pub interrupted: bool,
    pub at_ms: i64,
}

/// Stored as [`Speaker::as_str`]; the table's CHECK keeps anything else out.
struct SpeakerColumn(Speaker);

impl FromSql for SpeakerColumn {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        Speaker::parse(value.as_str()?)
            .map(SpeakerColumn)
            .ok_or(FromSqlError::InvalidType)
    }
}

/// Stores a line. If its call has no row yet (the start was lost or arrives later), a
/// placeholder call row is made first so the line is kept.
pub fn insert(conn: &mut Connection, line: &NewTranscript) -> Result<i64, StoreError> {
    atomically(conn, |tx| {
        calls::ensure_exists(tx, line.call_sid, line.at_ms)?;
        // SQLite integers are signed; an offset past i64::MAX (292 million years) is clamped.
        let offset = i64::try_from(line.offset_ms).unwrap_or(i64::MAX);
        tx.prepare_cached(
            "INSERT INTO transcripts (call_sid, speaker, text, offset_ms, interrupted, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            line.call_sid,
            line.speaker.as_str(),
            line.text,
            offset,
            line.interrupted,
            line.at_ms
        ])?;
        let id = tx.last_insert_rowid();
        Ok(id)
    })
}

/// Adds the lines waiting in `transcripts_fts_pending` to the search index, all in one statement
/// (migration 9 says why). The store calls it after each batch of call events and before a search.
pub fn index_pending(conn: &Connection) -> Result<(), StoreError> {
    atomically(conn, |tx| {
        tx.prepare_cached(
            "INSERT INTO transcripts_fts (rowid, text)
             SELECT t.id, t.text FROM transcripts_fts_pending p JOIN transcripts t ON t.id = p.id",
        )?
        .execute([])?;
        tx.prepare_cached("DELETE FROM transcripts_fts_pending")?
            .execute([])?;
        Ok(())
    })
}

/// A call's transcript in spoken order: by offset into the stream, then by arrival.
pub fn for_call(conn: &Connection, call_sid: &str) -> Result<Vec<TranscriptRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, call_sid, speaker, text, offset_ms, interrupted, at_ms FROM transcripts
         WHERE call_sid = ?1 ORDER BY offset_ms, id",
    )?;
    let rows = stmt.query_map([call_sid], |row| {
        let speaker: SpeakerColumn = row.get(2)?;
        let offset: i64 = row.get(4)?;
        Ok(TranscriptRecord {
            id: row.get(0)?,
            call_sid: row.get(1)?,
            speaker: speaker.0,
            text: row.get(3)?,
            offset_ms: u64::try_from(offset).unwrap_or(0),
            interrupted: row.get(5)?,
            at_ms: row.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations;

    fn db() -> Connection {
        migrations::test_db()
    }

    fn line<'a>(
        call_sid: &'a str,
        speaker: Speaker,
        text: &'a str,
        offset_ms: u64,
    ) -> NewTranscript<'a> {
        NewTranscript {
            call_sid,
            speaker,
            text,
            offset_ms,
            interrupted: false,
            at_ms: 1,
        }
    }

    fn found(conn: &Connection, word: &str) -> Vec<String> {
        let mut stmt = conn
            .prepare(
                "SELECT t.text FROM transcripts_fts f JOIN transcripts t ON t.id = f.rowid
                 WHERE transcripts_fts MATCH ?1 ORDER BY t.id",
            )
            .unwrap();
        let rows = stmt.query_map([word], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    fn index_is_consistent(conn: &Connection) {
        conn.execute(
            "INSERT INTO transcripts_fts (transcripts_fts) VALUES ('integrity-check')",
            [],
        )
        .expect("the search index matches the lines");
    }

    /// Lines wait to be indexed; waiting lines can be edited or deleted, indexed ones too, and the
    /// index always ends up matching the lines (FTS5's own integrity check).
    #[test]
    fn lines_are_indexed_in_batches_and_the_index_stays_consistent() {
        let mut conn = db();
        let taxi = insert(&mut conn, &line("CA1", Speaker::Caller, "a taxi please", 1)).unwrap();
        let parcel = insert(&mut conn, &line("CA1", Speaker::Agent, "your parcel", 2)).unwrap();
        let gone = insert(&mut conn, &line("CA1", Speaker::Caller, "forget it", 3)).unwrap();
        assert!(found(&conn, "taxi").is_empty(), "not indexed yet");
        conn.execute(
            "UPDATE transcripts SET text = 'a cab please' WHERE id = ?1",
            [taxi],
        )
        .unwrap();
        conn.execute("DELETE FROM transcripts WHERE id = ?1", [gone])
            .unwrap();
        index_pending(&conn).unwrap();
        index_is_consistent(&conn);
        assert_eq!(found(&conn, "cab"), ["a cab please"]);
        assert!(found(&conn, "taxi").is_empty());
        assert!(found(&conn, "forget").is_empty());

        // Indexed lines, edited and deleted.
        conn.execute(
            "UPDATE transcripts SET text = 'your letter' WHERE id = ?1",
            [parcel],
        )
        .unwrap();
        conn.execute("DELETE FROM transcripts WHERE id = ?1", [taxi])
            .unwrap();
        index_is_consistent(&conn);
        assert_eq!(found(&conn, "letter"), ["your letter"]);
        assert!(found(&conn, "parcel").is_empty());
        assert!(found(&conn, "cab").is_empty());

        // A new line that takes a deleted line's id is indexed like any other.
        let again = insert(&mut conn, &line("CA1", Speaker::Caller, "one more", 4)).unwrap();
        index_pending(&conn).unwrap();
        index_pending(&conn).unwrap();
        index_is_consistent(&conn);
        assert_eq!(found(&conn, "more"), ["one more"]);
        assert!(again > parcel);
    }

    #[test]
    fn ordered_by_offset_then_id() {
        let mut conn = db();
        calls::insert_started(&conn, "CA1", "MZ1", None, None, 0).unwrap();
        insert(&mut conn, &line("CA1", Speaker::Agent, "second", 2_000)).unwrap();
        insert(&mut conn, &line("CA1", Speaker::Caller, "first", 500)).unwrap();
        insert(&mut conn, &line("CA1", Speaker::Agent, "third", 2_000)).unwrap();
        insert(&mut conn, &line("CA2", Speaker::Agent, "other call", 0)).unwrap();
        let texts: Vec<_> = for_call(&conn, "CA1")
            .unwrap()
            .into_iter()
            .map(|t| (t.speaker, t.text))
            .collect();
        assert_eq!(
            texts,
            [
                (Speaker::Caller, "first".to_string()),
                (Speaker::Agent, "second".to_string()),
                (Speaker::Agent, "third".to_string()),
            ]
        );
    }

    #[test]
    fn unknown_call_gets_a_placeholder() {
        let mut conn = db();
        let mut l = line("CA7", Speaker::Caller, "hello?", 40);
        l.interrupted = true;
        l.at_ms = 123;
        insert(&mut conn, &l).unwrap();
        let call = calls::get(&conn, "CA7").unwrap().unwrap();
        assert_eq!(call.started_at_ms, 123);
        let stored = for_call(&conn, "CA7").unwrap();
        assert_eq!(stored.len(), 1);
        assert!(stored[0].interrupted);
        assert_eq!(stored[0].offset_ms, 40);
    }

    #[test]
    fn bad_speaker_is_an_error_not_a_panic() {
        let mut conn = db();
        insert(&mut conn, &line("CA1", Speaker::Agent, "x", 0)).unwrap();
        // Sneak a bad value past the CHECK to see that reading it fails cleanly.
        conn.execute_batch(
            "PRAGMA ignore_check_constraints = ON;
             UPDATE transcripts SET speaker = 'robot';",
        )
        .unwrap();
        assert!(for_call(&conn, "CA1").is_err());
    }
}
