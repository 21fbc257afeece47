//! Queries on `calls` and `call_issues`. Plain functions on a connection; the store thread calls them.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::StoreError;

/// Status of a call whose bridge is running (or whose end was never recorded).
pub const STATUS_IN_PROGRESS: &str = "in-progress";
pub const STATUS_COMPLETED: &str = "completed";
pub const STATUS_FAILED: &str = "failed";

/// One call in the library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    pub call_sid: String,
    pub stream_sid: Option<String>,
    pub direction: String,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub status: String,
    pub started_at_ms: i64,
    pub ended_at_ms: Option<i64>,
    pub end_reason: Option<String>,
    pub failed: bool,
}

/// A model-side problem recorded during a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueRecord {
    pub id: i64,
    pub call_sid: String,
    pub code: String,
    pub message: String,
    pub at_ms: i64,
}

const CALL_COLUMNS: &str = "call_sid, stream_sid, direction, from_number, to_number, status, \
     started_at_ms, ended_at_ms, end_reason, failed";

fn call_from_row(row: &Row) -> rusqlite::Result<CallRecord> {
    Ok(CallRecord {
        call_sid: row.get(0)?,
        stream_sid: row.get(1)?,
        direction: row.get(2)?,
        from_number: row.get(3)?,
        to_number: row.get(4)?,
        status: row.get(5)?,
        started_at_ms: row.get(6)?,
        ended_at_ms: row.get(7)?,
        end_reason: row.get(8)?,
        failed: row.get(9)?,
    })
}

/// Records a started call. If a row already exists (a placeholder made by an earlier transcript,
/// or a repeated start), it is completed rather than replaced, and an ended call stays ended.
pub fn insert_started(
    conn: &Connection,
    call_sid: &str,
    stream_sid: &str,
    from: Option<&str>,
    to: Option<&str>,
    at_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO calls (call_sid, stream_sid, from_number, to_number, status, started_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(call_sid) DO UPDATE SET
             stream_sid = excluded.stream_sid,
             from_number = COALESCE(excluded.from_number, calls.from_number),
             to_number = COALESCE(excluded.to_number, calls.to_number),
             started_at_ms = MIN(calls.started_at_ms, excluded.started_at_ms),
             status = CASE WHEN calls.ended_at_ms IS NULL THEN excluded.status ELSE calls.status END",
        params![call_sid, stream_sid, from, to, STATUS_IN_PROGRESS, at_ms],
    )?;
    Ok(())
}

/// Makes sure a row exists for `call_sid`, so rows referring to it are never lost.
/// Returns true when a placeholder was inserted.
pub fn ensure_exists(conn: &Connection, call_sid: &str, at_ms: i64) -> Result<bool, StoreError> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO calls (call_sid, status, started_at_ms) VALUES (?1, ?2, ?3)",
        params![call_sid, STATUS_IN_PROGRESS, at_ms],
    )?;
    Ok(inserted > 0)
}

/// Records a call's end (status `completed` or `failed`). A call never seen starting is still recorded.
pub fn mark_ended(
    conn: &Connection,
    call_sid: &str,
    reason: &str,
    failed: bool,
    at_ms: i64,
) -> Result<(), StoreError> {
    let status = if failed {
        STATUS_FAILED
    } else {
        STATUS_COMPLETED
    };
    conn.execute(
        "INSERT INTO calls (call_sid, status, started_at_ms, ended_at_ms, end_reason, failed)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5)
         ON CONFLICT(call_sid) DO UPDATE SET
             status = excluded.status,
             ended_at_ms = excluded.ended_at_ms,
             end_reason = excluded.end_reason,
             failed = excluded.failed",
        params![call_sid, status, at_ms, reason, failed],
    )?;
    Ok(())
}

/// Records a model-side issue, creating a placeholder call row if needed.
pub fn insert_issue(
    conn: &mut Connection,
    call_sid: &str,
    code: &str,
    message: &str,
    at_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    ensure_exists(&tx, call_sid, at_ms)?;
    tx.execute(
        "INSERT INTO call_issues (call_sid, code, message, at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![call_sid, code, message, at_ms],
    )?;
    tx.commit()?;
    Ok(())
}

/// Newest calls first.
pub fn list(conn: &Connection, limit: u32, offset: u32) -> Result<Vec<CallRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CALL_COLUMNS} FROM calls
         ORDER BY started_at_ms DESC, call_sid ASC LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt.query_map(params![limit, offset], call_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn get(conn: &Connection, call_sid: &str) -> Result<Option<CallRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE call_sid = ?1"
    ))?;
    Ok(stmt.query_row([call_sid], call_from_row).optional()?)
}

/// Deletes a call with its transcript and issues. Returns false when there was no such call.
pub fn delete(conn: &Connection, call_sid: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM calls WHERE call_sid = ?1", [call_sid])? > 0)
}

/// A call's issues, oldest first.
pub fn issues(conn: &Connection, call_sid: &str) -> Result<Vec<IssueRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, call_sid, code, message, at_ms FROM call_issues
         WHERE call_sid = ?1 ORDER BY at_ms, id",
    )?;
    let rows = stmt.query_map([call_sid], |row| {
        Ok(IssueRecord {
            id: row.get(0)?,
            call_sid: row.get(1)?,
            code: row.get(2)?,
            message: row.get(3)?,
            at_ms: row.get(4)?,
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

    #[test]
    fn start_then_end() {
        let conn = db();
        insert_started(&conn, "CA1", "MZ1", Some("+1555"), None, 1_000).unwrap();
        let call = get(&conn, "CA1").unwrap().unwrap();
        assert_eq!(call.status, STATUS_IN_PROGRESS);
        assert_eq!(call.direction, "inbound");
        assert_eq!(call.from_number.as_deref(), Some("+1555"));
        assert!(!call.failed);

        mark_ended(&conn, "CA1", "model gave up", true, 9_000).unwrap();
        let call = get(&conn, "CA1").unwrap().unwrap();
        assert_eq!(call.status, STATUS_FAILED);
        assert_eq!(call.ended_at_ms, Some(9_000));
        assert_eq!(call.end_reason.as_deref(), Some("model gave up"));
        assert!(call.failed);
        assert_eq!(call.started_at_ms, 1_000);

        // A late repeated start neither reopens the call nor loses its end.
        insert_started(&conn, "CA1", "MZ2", None, Some("+1666"), 2_000).unwrap();
        let call = get(&conn, "CA1").unwrap().unwrap();
        assert_eq!(call.status, STATUS_FAILED);
        assert_eq!(call.from_number.as_deref(), Some("+1555"));
        assert_eq!(call.to_number.as_deref(), Some("+1666"));
        assert_eq!(call.started_at_ms, 1_000);
    }

    #[test]
    fn placeholder_is_completed_by_a_late_start() {
        let conn = db();
        assert!(ensure_exists(&conn, "CA2", 5_000).unwrap());
        assert!(!ensure_exists(&conn, "CA2", 6_000).unwrap());
        insert_started(&conn, "CA2", "MZ2", Some("+1"), Some("+2"), 4_000).unwrap();
        let call = get(&conn, "CA2").unwrap().unwrap();
        assert_eq!(call.stream_sid.as_deref(), Some("MZ2"));
        assert_eq!(call.started_at_ms, 4_000);
        assert_eq!(call.status, STATUS_IN_PROGRESS);
    }

    #[test]
    fn end_of_unknown_call_is_kept() {
        let conn = db();
        mark_ended(&conn, "CA3", "hangup", false, 7_000).unwrap();
        let call = get(&conn, "CA3").unwrap().unwrap();
        assert_eq!(call.status, STATUS_COMPLETED);
        assert_eq!(call.started_at_ms, 7_000);
    }

    #[test]
    fn list_is_newest_first_and_paged() {
        let conn = db();
        for i in 0..5 {
            insert_started(&conn, &format!("CA{i}"), "MZ", None, None, i * 100).unwrap();
        }
        let sids =
            |calls: Vec<CallRecord>| calls.into_iter().map(|c| c.call_sid).collect::<Vec<_>>();
        assert_eq!(sids(list(&conn, 2, 0).unwrap()), ["CA4", "CA3"]);
        assert_eq!(sids(list(&conn, 2, 2).unwrap()), ["CA2", "CA1"]);
        assert_eq!(sids(list(&conn, 10, 4).unwrap()), ["CA0"]);
        assert!(list(&conn, 10, 5).unwrap().is_empty());
        assert!(get(&conn, "nope").unwrap().is_none());
    }

    #[test]
    fn issues_and_cascading_delete() {
        let mut conn = db();
        insert_issue(&mut conn, "CA9", "rate_limit", "slow down", 20).unwrap();
        insert_issue(&mut conn, "CA9", "reconnect", "socket dropped", 10).unwrap();
        let found = issues(&conn, "CA9").unwrap();
        let codes: Vec<_> = found.iter().map(|i| i.code.as_str()).collect();
        assert_eq!(codes, ["reconnect", "rate_limit"]);
        assert!(get(&conn, "CA9").unwrap().is_some(), "placeholder call row");
        assert!(delete(&conn, "CA9").unwrap());
        assert!(issues(&conn, "CA9").unwrap().is_empty());
        assert!(!delete(&conn, "CA9").unwrap());
    }
}
