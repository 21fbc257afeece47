//! The `turn_latencies` table: every answered turn of a call, as the caller heard it (see
//! `calls::bridge::turn_latency`).

use rusqlite::{params, Connection};
use serde::Serialize;

use super::{calls, StoreError};

/// One answered turn, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TurnLatencyRecord {
    /// Where the caller stopped speaking, on the stream (ms).
    pub offset_ms: u64,
    pub total_ms: u64,
    pub endpointing_ms: u64,
    pub model_ms: u64,
    pub playout_ms: u64,
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn as_u64(v: i64) -> u64 {
    v.max(0) as u64
}

pub fn insert(
    conn: &mut Connection,
    call_sid: &str,
    turn: &TurnLatencyRecord,
    at_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    calls::ensure_exists(&tx, call_sid, at_ms)?;
    tx.execute(
        "INSERT INTO turn_latencies (call_sid, offset_ms, total_ms, endpointing_ms, model_ms,
             playout_ms, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            call_sid,
            as_i64(turn.offset_ms),
            as_i64(turn.total_ms),
            as_i64(turn.endpointing_ms),
            as_i64(turn.model_ms),
            as_i64(turn.playout_ms),
            at_ms
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// A call's answered turns, in stream order.
pub fn list(conn: &Connection, call_sid: &str) -> Result<Vec<TurnLatencyRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT offset_ms, total_ms, endpointing_ms, model_ms, playout_ms FROM turn_latencies
         WHERE call_sid = ?1 ORDER BY offset_ms, id",
    )?;
    let rows = stmt.query_map(params![call_sid], |row| {
        Ok(TurnLatencyRecord {
            offset_ms: as_u64(row.get(0)?),
            total_ms: as_u64(row.get(1)?),
            endpointing_ms: as_u64(row.get(2)?),
            model_ms: as_u64(row.get(3)?),
            playout_ms: as_u64(row.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations::test_db;

    #[test]
    fn turns_come_back_in_stream_order() {
        let mut conn = test_db();
        let turn = |offset_ms, total_ms| TurnLatencyRecord {
            offset_ms,
            total_ms,
            endpointing_ms: 500,
            model_ms: 300,
            playout_ms: total_ms - 800,
        };
        insert(&mut conn, "CA1", &turn(9_000, 1_100), 2).unwrap();
        insert(&mut conn, "CA1", &turn(2_000, 900), 1).unwrap();
        assert_eq!(
            list(&conn, "CA1").unwrap(),
            vec![turn(2_000, 900), turn(9_000, 1_100)]
        );
        assert!(list(&conn, "CA2").unwrap().is_empty());
    }
}
