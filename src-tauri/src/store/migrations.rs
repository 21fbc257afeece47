//! The schema, as an ordered list of migrations.
//!
//! `PRAGMA user_version` holds how many have been applied. Each one runs in its own transaction
//! together with the version bump, so a crash mid-way leaves the file at the previous version and
//! the next start simply tries again. Append new migrations; never edit a released one.

use rusqlite::Connection;

use super::StoreError;

/// Migration `i` (0-based) brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: calls, transcripts, issues.
    "CREATE TABLE calls (
        call_sid      TEXT PRIMARY KEY,
        stream_sid    TEXT,
        direction     TEXT NOT NULL DEFAULT 'inbound',
        from_number   TEXT,
        to_number     TEXT,
        status        TEXT NOT NULL,
        started_at_ms INTEGER NOT NULL,
        ended_at_ms   INTEGER,
        end_reason    TEXT,
        failed        INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX calls_started_at ON calls(started_at_ms);
    CREATE TABLE transcripts (
        id          INTEGER PRIMARY KEY,
        call_sid    TEXT NOT NULL REFERENCES calls(call_sid) ON DELETE CASCADE,
        speaker     TEXT NOT NULL CHECK(speaker IN ('caller','agent')),
        text        TEXT NOT NULL,
        offset_ms   INTEGER NOT NULL,
        interrupted INTEGER NOT NULL DEFAULT 0,
        at_ms       INTEGER NOT NULL
    );
    CREATE INDEX transcripts_call_sid ON transcripts(call_sid);
    CREATE TABLE call_issues (
        id       INTEGER PRIMARY KEY,
        call_sid TEXT NOT NULL REFERENCES calls(call_sid) ON DELETE CASCADE,
        code     TEXT NOT NULL,
        message  TEXT NOT NULL,
        at_ms    INTEGER NOT NULL
    );
    CREATE INDEX call_issues_call_sid ON call_issues(call_sid);",
    // 2: Twilio's view of a call (status callbacks, answering-machine detection) and its history.
    "ALTER TABLE calls ADD COLUMN answered_by TEXT;
    ALTER TABLE calls ADD COLUMN duration_secs INTEGER;
    CREATE TABLE call_status_events (
        id          INTEGER PRIMARY KEY,
        call_sid    TEXT NOT NULL REFERENCES calls(call_sid) ON DELETE CASCADE,
        status      TEXT NOT NULL,
        answered_by TEXT,
        at_ms       INTEGER NOT NULL
    );
    CREATE INDEX call_status_events_call_sid ON call_status_events(call_sid);
    CREATE TABLE app_settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );",
    // 3: recordings (local WAVs and Twilio copies) and full-text search over transcripts.
    "CREATE TABLE recordings (
        id            INTEGER PRIMARY KEY,
        call_sid      TEXT NOT NULL,
        source        TEXT NOT NULL CHECK(source IN ('local','twilio')),
        file_name     TEXT NOT NULL UNIQUE,
        status        TEXT NOT NULL CHECK(status IN ('recording','complete','incomplete','repaired')),
        note          TEXT,
        started_at_ms INTEGER NOT NULL,
        duration_ms   INTEGER NOT NULL DEFAULT 0,
        channels      INTEGER NOT NULL DEFAULT 2,
        sample_rate   INTEGER NOT NULL DEFAULT 8000,
        size_bytes    INTEGER NOT NULL DEFAULT 0,
        twilio_sid    TEXT
    );
    CREATE INDEX recordings_call_sid ON recordings(call_sid);
    CREATE INDEX recordings_started_at ON recordings(started_at_ms);
    CREATE VIRTUAL TABLE transcripts_fts USING fts5(text, content='transcripts', content_rowid='id');
    CREATE TRIGGER transcripts_fts_ai AFTER INSERT ON transcripts BEGIN
        INSERT INTO transcripts_fts(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER transcripts_fts_ad AFTER DELETE ON transcripts BEGIN
        INSERT INTO transcripts_fts(transcripts_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    CREATE TRIGGER transcripts_fts_au AFTER UPDATE ON transcripts BEGIN
        INSERT INTO transcripts_fts(transcripts_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO transcripts_fts(rowid, text) VALUES (new.id, new.text);
    END;
    INSERT INTO transcripts_fts(transcripts_fts) VALUES ('rebuild');",
    // 4: every model response of a call: how it ended and the tokens it used (cost builds on it).
    "CREATE TABLE call_responses (
        id           INTEGER PRIMARY KEY,
        call_sid     TEXT NOT NULL REFERENCES calls(call_sid) ON DELETE CASCADE,
        response_id  TEXT,
        status       TEXT NOT NULL,
        reason       TEXT,
        input_text   INTEGER NOT NULL DEFAULT 0,
        input_audio  INTEGER NOT NULL DEFAULT 0,
        input_cached INTEGER NOT NULL DEFAULT 0,
        output_text  INTEGER NOT NULL DEFAULT 0,
        output_audio INTEGER NOT NULL DEFAULT 0,
        has_usage    INTEGER NOT NULL DEFAULT 0,
        at_ms        INTEGER NOT NULL
    );
    CREATE INDEX call_responses_call_sid ON call_responses(call_sid);",
    // 5: Twilio's recording callbacks are idempotent. Every recording a callback claimed (its
    // RecordingSid, with its call's) is kept, also after the user deletes that recording, so a
    // replayed callback neither downloads again nor brings a deleted recording back; one library row
    // per Twilio recording. File names are made from the two SIDs (and unique), so duplicates cannot
    // exist; the DELETE only makes the index safe. `calls_ended_at` serves the daily minute budget.
    "DELETE FROM recordings WHERE twilio_sid IS NOT NULL AND id NOT IN (
        SELECT MIN(id) FROM recordings WHERE twilio_sid IS NOT NULL GROUP BY twilio_sid, call_sid);
    CREATE UNIQUE INDEX recordings_twilio_sid ON recordings(twilio_sid, call_sid)
        WHERE twilio_sid IS NOT NULL;
    CREATE TABLE twilio_recording_claims (
        recording_sid TEXT NOT NULL,
        call_sid      TEXT NOT NULL,
        at_ms         INTEGER NOT NULL,
        PRIMARY KEY (recording_sid, call_sid)
    );
    INSERT OR IGNORE INTO twilio_recording_claims (recording_sid, call_sid, at_ms)
        SELECT twilio_sid, call_sid, started_at_ms FROM recordings WHERE twilio_sid IS NOT NULL;
    CREATE INDEX calls_ended_at ON calls(ended_at_ms);",
    // 6: the operator in the loop and tools. Transcript lines may be the operator's own turns, their
    // whispers to the agent, or a tool's line (SQLite cannot widen a CHECK: the table is rebuilt with
    // the same ids, so the full-text index stays valid); each stretch the operator held the call is
    // kept, every tool call (the tool log), and each answered turn's latency as heard.
    "CREATE TABLE transcripts_v6 (
        id          INTEGER PRIMARY KEY,
        call_sid    TEXT NOT NULL REFERENCES calls(call_sid) ON DELETE CASCADE,
        speaker     TEXT NOT NULL CHECK(speaker IN ('caller','agent','operator','whisper','tool')),
        text        TEXT NOT NULL,
        offset_ms   INTEGER NOT NULL,
        interrupted INTEGER NOT NULL DEFAULT 0,
        at_ms       INTEGER NOT NULL
    );
    INSERT INTO transcripts_v6 (id, call_sid, speaker, text, offset_ms, interrupted, at_ms)
        SELECT id, call_sid, speaker, text, offset_ms, interrupted, at_ms FROM transcripts;
    DROP TABLE transcripts;
    ALTER TABLE transcripts_v6 RENAME TO transcripts;
    CREATE INDEX transcripts_call_sid ON transcripts(call_sid);
    CREATE TRIGGER transcripts_fts_ai AFTER INSERT ON transcripts BEGIN
        INSERT INTO transcripts_fts(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER transcripts_fts_ad AFTER DELETE ON transcripts BEGIN
        INSERT INTO transcripts_fts(transcripts_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    CREATE TRIGGER transcripts_fts_au AFTER UPDATE ON transcripts BEGIN
        INSERT INTO transcripts_fts(transcripts_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO transcripts_fts(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TABLE operator_spans (
        id            INTEGER PRIMARY KEY,
        call_sid      TEXT NOT NULL REFERENCES calls(call_sid) ON DELETE CASCADE,
        device        TEXT NOT NULL,
        start_ms      INTEGER NOT NULL,
        end_ms        INTEGER,
        end_reason    TEXT,
        at_ms         INTEGER NOT NULL
    );
    CREATE INDEX operator_spans_call_sid ON operator_spans(call_sid);
    CREATE TABLE tool_calls (
        id          INTEGER PRIMARY KEY,
        call_sid    TEXT NOT NULL REFERENCES calls(call_sid) ON DELETE CASCADE,
        call_id     TEXT NOT NULL,
        tool        TEXT NOT NULL,
        arguments   TEXT NOT NULL,
        outcome     TEXT NOT NULL CHECK(outcome IN ('ok','failed','declined','cancelled')),
        output      TEXT,
        error       TEXT,
        failure     TEXT,
        latency_ms  INTEGER NOT NULL,
        approved_by TEXT,
        offset_ms   INTEGER NOT NULL,
        at_ms       INTEGER NOT NULL
    );
    CREATE INDEX tool_calls_call_sid ON tool_calls(call_sid);
    CREATE TABLE turn_latencies (
        id             INTEGER PRIMARY KEY,
        call_sid       TEXT NOT NULL REFERENCES calls(call_sid) ON DELETE CASCADE,
        offset_ms      INTEGER NOT NULL,
        total_ms       INTEGER NOT NULL,
        endpointing_ms INTEGER NOT NULL,
        model_ms       INTEGER NOT NULL,
        playout_ms     INTEGER NOT NULL,
        at_ms          INTEGER NOT NULL
    );
    CREATE INDEX turn_latencies_call_sid ON turn_latencies(call_sid);",
    // 7: what each call cost (a ledger: one row per priced usage) and its barge-ins.
    "CREATE TABLE call_costs (
        id           INTEGER PRIMARY KEY,
        call_sid     TEXT NOT NULL REFERENCES calls(call_sid) ON DELETE CASCADE,
        source       TEXT NOT NULL CHECK(source IN ('response','transcription','summary')),
        model        TEXT NOT NULL,
        input_text   INTEGER NOT NULL DEFAULT 0,
        input_audio  INTEGER NOT NULL DEFAULT 0,
        cached_text  INTEGER NOT NULL DEFAULT 0,
        cached_audio INTEGER NOT NULL DEFAULT 0,
        output_text  INTEGER NOT NULL DEFAULT 0,
        output_audio INTEGER NOT NULL DEFAULT 0,
        audio_ms     INTEGER NOT NULL DEFAULT 0,
        cost_pico    INTEGER NOT NULL,
        priced       INTEGER NOT NULL,
        at_ms        INTEGER NOT NULL
    );
    CREATE INDEX call_costs_call_sid ON call_costs(call_sid);
    CREATE INDEX call_costs_at ON call_costs(at_ms);
    CREATE TABLE barge_ins (
        id          INTEGER PRIMARY KEY,
        call_sid    TEXT NOT NULL REFERENCES calls(call_sid) ON DELETE CASCADE,
        offset_ms   INTEGER NOT NULL,
        reaction_ms INTEGER,
        heard_ms    INTEGER NOT NULL,
        at_ms       INTEGER NOT NULL
    );
    CREATE INDEX barge_ins_call_sid ON barge_ins(call_sid);
    CREATE INDEX turn_latencies_at ON turn_latencies(at_ms);",
    // 8: the post-call summary, one per call (re-running it replaces it), and its words in their own
    // full-text index (`call_summaries_fts`: the summary, the disposition and the field values, written
    // by `store::summaries`; the trigger empties it when the call and so its summary is deleted).
    "CREATE TABLE call_summaries (
        call_sid      TEXT PRIMARY KEY REFERENCES calls(call_sid) ON DELETE CASCADE,
        status        TEXT NOT NULL CHECK(status IN ('done','failed','invalid')),
        summary       TEXT,
        disposition   TEXT,
        fields_json   TEXT,
        error         TEXT,
        model         TEXT NOT NULL,
        input_tokens  INTEGER NOT NULL DEFAULT 0,
        cached_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        latency_ms    INTEGER NOT NULL DEFAULT 0,
        at_ms         INTEGER NOT NULL
    );
    CREATE VIRTUAL TABLE call_summaries_fts USING fts5(call_sid UNINDEXED, text);
    CREATE TRIGGER call_summaries_fts_ad AFTER DELETE ON call_summaries BEGIN
        DELETE FROM call_summaries_fts WHERE call_sid = old.call_sid;
    END;",
    // 9: new transcript lines are added to the search index in batches, not one statement each.
    // FTS5 writes out what it holds at every statement of a transaction that touches it, which made
    // indexing a line cost several times its insert (BENCHMARKS.md, issue 16). A new line's id waits
    // in `transcripts_fts_pending` until `transcripts::index_pending` adds the waiting lines in one
    // statement (after each batch of call events, and before every search); a waiting line that is
    // deleted or edited only leaves the queue or stays in it.
    "CREATE TABLE transcripts_fts_pending (id INTEGER PRIMARY KEY);
    DROP TRIGGER transcripts_fts_ai;
    DROP TRIGGER transcripts_fts_ad;
    DROP TRIGGER transcripts_fts_au;
    CREATE TRIGGER transcripts_fts_ai AFTER INSERT ON transcripts BEGIN
        INSERT INTO transcripts_fts_pending (id) VALUES (new.id);
    END;
    CREATE TRIGGER transcripts_fts_ad AFTER DELETE ON transcripts BEGIN
        INSERT INTO transcripts_fts(transcripts_fts, rowid, text)
            SELECT 'delete', old.id, old.text
            WHERE NOT EXISTS (SELECT 1 FROM transcripts_fts_pending WHERE id = old.id);
        DELETE FROM transcripts_fts_pending WHERE id = old.id;
    END;
    CREATE TRIGGER transcripts_fts_au AFTER UPDATE ON transcripts
        WHEN NOT EXISTS (SELECT 1 FROM transcripts_fts_pending WHERE id = old.id) BEGIN
        INSERT INTO transcripts_fts(transcripts_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO transcripts_fts(rowid, text) VALUES (new.id, new.text);
    END;",
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Connection settings every connection needs: WAL (readers never wait for the writer, and a
/// crash cannot tear a write), foreign keys (off by default in SQLite), and a busy timeout.
pub fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // In-memory databases cannot use WAL; everything else should.
        tracing::warn!(journal_mode = %mode, "SQLite did not switch to WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// The schema version recorded in the file.
pub fn current_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// Applies the migrations the file has not seen yet; returns the resulting version.
/// Running it again on an up-to-date file changes nothing.
pub fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let found = current_version(conn)?;
    let known = latest_version();
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let version = index + 1;
        let failed = |source| StoreError::Migration { version, source };
        let tx = conn.transaction().map_err(failed)?;
        tx.execute_batch(sql).map_err(failed)?;
        tx.pragma_update(None, "user_version", version as i64)
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
        tracing::info!(version, "applied call library migration");
    }
    Ok(known)
}

/// An in-memory database with every migration applied, for the store's unit tests.
#[cfg(test)]
pub(crate) fn test_db() -> Connection {
    let mut conn = Connection::open_in_memory().expect("in-memory SQLite");
    configure(&conn).expect("configure");
    migrate(&mut conn).expect("migrate");
    conn
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_names(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type IN ('table','index') ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn migrate_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lib.sqlite3");
        let mut conn = Connection::open(&path).unwrap();
        configure(&conn).unwrap();
        assert_eq!(current_version(&conn).unwrap(), 0);
        assert_eq!(migrate(&mut conn).unwrap(), latest_version());
        let first = table_names(&conn);
        assert!(
            first.contains(&"transcripts_call_sid".to_string()),
            "{first:?}"
        );
        drop(conn);

        let mut conn = Connection::open(&path).unwrap();
        configure(&conn).unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), latest_version());
        assert_eq!(current_version(&conn).unwrap(), latest_version());
        assert_eq!(table_names(&conn), first);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("lib.sqlite3")).unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    }

    #[test]
    fn a_failing_migration_leaves_the_version_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("lib.sqlite3")).unwrap();
        // A table already named `calls` makes migration 1 fail half-way.
        conn.execute_batch("CREATE TABLE calls(x)").unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { version: 1, .. }),
            "{err}"
        );
        assert_eq!(current_version(&conn).unwrap(), 0);
        assert!(!table_names(&conn).contains(&"transcripts".to_string()));
    }
}
