//! The `tool_calls` table: the tool log. Every tool call of a call (name, arguments, result or error,
//! latency, who approved it), also written as a `tool` line in the transcript at its moment, so it shows
//! there and full-text search finds it.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::transcripts::{self, NewTranscript};
use super::{calls, StoreError};
use crate::types::Speaker;

/// One tool call, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolCallRecord {
    pub call_id: String,
    pub tool: String,
    pub arguments: String,
    /// `ok`, `failed`, `declined` or `cancelled`.
    pub outcome: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub failure: Option<String>,
    pub latency_ms: u64,
    pub approved_by: Option<String>,
    pub offset_ms: u64,
    pub at_ms: i64,
}

/// The transcript's line for a tool call.
pub fn transcript_line(record: &ToolCallRecord) -> String {
    let arguments: String = record.arguments.chars().take(200).collect();
    let result = match (&record.output, &record.error) {
        (Some(output), _) => format!("→ {}", output.chars().take(300).collect::<String>()),
        (None, Some(error)) => format!("→ {}: {error}", record.outcome),
        (None, None) => format!("→ {}", record.outcome),
    };
    let approval = record
        .approved_by
        .as_deref()
        .map(|by| format!(", approved ({by})"))
        .unwrap_or_default();
    format!(
        "{} {arguments} {result} ({} ms{approval})",
        record.tool, record.latency_ms
    )
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Stores a finished tool call and its transcript line.
pub fn insert(
    conn: &mut Connection,
    call_sid: &str,
    record: &ToolCallRecord,
) -> Result<(), StoreError> {
    let line = transcript_line(record);
    transcripts::insert(
        conn,
        &NewTranscript {
            call_sid,
            speaker: Speaker::Tool,
            text: &line,
            offset_ms: record.offset_ms,
            interrupted: false,
            at_ms: record.at_ms,
        },
    )?;
    let tx = conn.savepoint()?;
    calls::ensure_exists(&tx, call_sid, record.at_ms)?;
    tx.execute(
        "INSERT INTO tool_calls (call_sid, call_id, tool, arguments, outcome, output, error, failure,
             latency_ms, approved_by, offset_ms, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            call_sid,
            record.call_id,
            record.tool,
            record.arguments,
            record.outcome,
            record.output,
            record.error,
            record.failure,
            as_i64(record.latency_ms),
            record.approved_by,
            as_i64(record.offset_ms),
            record.at_ms
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// A call's tool log, in the order the calls were made.
pub fn list(conn: &Connection, call_sid: &str) -> Result<Vec<ToolCallRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT call_id, tool, arguments, outcome, output, error, failure, latency_ms, approved_by,
                offset_ms, at_ms
         FROM tool_calls WHERE call_sid = ?1 ORDER BY offset_ms, id",
    )?;
    let rows = stmt.query_map(params![call_sid], |row| {
        Ok(ToolCallRecord {
            call_id: row.get(0)?,
            tool: row.get(1)?,
            arguments: row.get(2)?,
            outcome: row.get(3)?,
            output: row.get(4)?,
            error: row.get(5)?,
            failure: row.get(6)?,
            latency_ms: row.get::<_, i64>(7)?.max(0) as u64,
            approved_by: row.get(8)?,
            offset_ms: row.get::<_, i64>(9)?.max(0) as u64,
            at_ms: row.get(10)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations::test_db;

    fn record(call_id: &str, offset_ms: u64) -> ToolCallRecord {
        ToolCallRecord {
            call_id: call_id.into(),
            tool: "lookup_order".into(),
            arguments: r#"{"order":"42"}"#.into(),
            outcome: "ok".into(),
            output: Some(r#"{"status":"shipped"}"#.into()),
            error: None,
            failure: None,
            latency_ms: 120,
            approved_by: Some("api".into()),
            offset_ms,
            at_ms: 10,
        }
    }

    #[test]
    fn the_log_and_its_transcript_line_are_kept_in_order() {
        let mut conn = test_db();
        insert(&mut conn, "CA1", &record("c2", 9_000)).unwrap();
        insert(&mut conn, "CA1", &record("c1", 2_000)).unwrap();
        let log = list(&conn, "CA1").unwrap();
        assert_eq!(
            log.iter().map(|r| r.call_id.as_str()).collect::<Vec<_>>(),
            vec!["c1", "c2"]
        );
        assert_eq!(log[0], record("c1", 2_000));
        let lines = transcripts::for_call(&conn, "CA1").unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].speaker, Speaker::Tool);
        assert_eq!(
            lines[0].text,
            r#"lookup_order {"order":"42"} → {"status":"shipped"} (120 ms, approved (api))"#
        );
        let failed = ToolCallRecord {
            outcome: "declined".into(),
            output: None,
            error: Some("the operator declined".into()),
            approved_by: None,
            ..record("c3", 1)
        };
        assert!(transcript_line(&failed).ends_with("→ declined: the operator declined (120 ms)"));
    }
}
