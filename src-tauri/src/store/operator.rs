//! The `operator_spans` table: each stretch of a call the operator held with their own microphone
//! (its audio is on the recording's agent channel between `start_ms` and `end_ms`, stream time).

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{calls, StoreError};

/// A stretch the operator held a call; `end_ms` is `None` while it lasts (or if the app stopped
/// before the hand-back was stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorSpan {
    pub device: String,
    /// Stream offsets (the recording's timeline), ms.
    pub start_ms: u64,
    pub end_ms: Option<u64>,
    pub end_reason: Option<String>,
}

fn offset(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The operator took `call_sid` over at stream offset `offset_ms`.
pub fn took_over(
    conn: &mut Connection,
    call_sid: &str,
    device: &str,
    offset_ms: u64,
    at_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.savepoint()?;
    calls::ensure_exists(&tx, call_sid, at_ms)?;
    tx.execute(
        "INSERT INTO operator_spans (call_sid, device, start_ms, at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![call_sid, device, offset(offset_ms), at_ms],
    )?;
    tx.commit()?;
    Ok(())
}

/// The call went back to the agent: closes the open span (if its start was stored).
pub fn handed_back(
    conn: &mut Connection,
    call_sid: &str,
    reason: &str,
    offset_ms: u64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE operator_spans SET end_ms = ?2, end_reason = ?3
         WHERE id = (SELECT MAX(id) FROM operator_spans WHERE call_sid = ?1 AND end_ms IS NULL)",
        params![call_sid, offset(offset_ms), reason],
    )?;
    Ok(())
}

/// A call's operator spans, in order.
pub fn spans(conn: &Connection, call_sid: &str) -> Result<Vec<OperatorSpan>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT device, start_ms, end_ms, end_reason FROM operator_spans
         WHERE call_sid = ?1 ORDER BY start_ms, id",
    )?;
    let rows = stmt.query_map(params![call_sid], |row| {
        Ok(OperatorSpan {
            device: row.get(0)?,
            start_ms: row.get::<_, i64>(1)?.max(0) as u64,
            end_ms: row.get::<_, Option<i64>>(2)?.map(|v| v.max(0) as u64),
            end_reason: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations::test_db;

    #[test]
    fn spans_open_and_close_in_order() {
        let mut conn = test_db();
        took_over(&mut conn, "CA1", "Mic A", 4_000, 1).unwrap();
        handed_back(&mut conn, "CA1", "operator", 9_000).unwrap();
        took_over(&mut conn, "CA1", "Mic A", 12_000, 2).unwrap();
        // A hand-back with nothing open changes nothing.
        handed_back(&mut conn, "CA2", "operator", 1).unwrap();
        let spans = spans(&conn, "CA1").unwrap();
        assert_eq!(
            spans,
            vec![
                OperatorSpan {
                    device: "Mic A".into(),
                    start_ms: 4_000,
                    end_ms: Some(9_000),
                    end_reason: Some("operator".into())
                },
                OperatorSpan {
                    device: "Mic A".into(),
                    start_ms: 12_000,
                    end_ms: None,
                    end_reason: None
                },
            ]
        );
        assert!(super::spans(&conn, "CA2").unwrap().is_empty());
    }
}
