//! The `turn_latencies` table: every answered turn of a call, as the caller heard it (see
//! `calls::bridge::turn_latency`); and `barge_ins`: each time the caller talked over the agent.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::savepoint::atomically;
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
    /// When it was measured (wall clock).
    pub at_ms: i64,
}

/// The caller talked over the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BargeInRecord {
    /// Where the caller started speaking, on the stream (ms).
    pub offset_ms: u64,
    /// Speech start → Twilio told to stop playing; `None` for a further item cut by the same one.
    pub reaction_ms: Option<u64>,
    /// How much of the cut item the caller had heard.
    pub heard_ms: u64,
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
) -> Result<(), StoreError> {
    let at_ms = turn.at_ms;
    atomically(conn, |tx| {
        calls::ensure_exists(tx, call_sid, at_ms)?;
        tx.prepare_cached(
            "INSERT INTO turn_latencies (call_sid, offset_ms, total_ms, endpointing_ms, model_ms,
             playout_ms, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            call_sid,
            as_i64(turn.offset_ms),
            as_i64(turn.total_ms),
            as_i64(turn.endpointing_ms),
            as_i64(turn.model_ms),
            as_i64(turn.playout_ms),
            at_ms
        ])?;
        Ok(())
    })
}

/// A call's answered turns, in stream order.
pub fn list(conn: &Connection, call_sid: &str) -> Result<Vec<TurnLatencyRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT offset_ms, total_ms, endpointing_ms, model_ms, playout_ms, at_ms FROM turn_latencies
         WHERE call_sid = ?1 ORDER BY offset_ms, id",
    )?;
    let rows = stmt.query_map(params![call_sid], |row| {
        Ok(TurnLatencyRecord {
            offset_ms: as_u64(row.get(0)?),
            total_ms: as_u64(row.get(1)?),
            endpointing_ms: as_u64(row.get(2)?),
            model_ms: as_u64(row.get(3)?),
            playout_ms: as_u64(row.get(4)?),
            at_ms: row.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert_barge_in(
    conn: &mut Connection,
    call_sid: &str,
    b: &BargeInRecord,
    at_ms: i64,
) -> Result<(), StoreError> {
    atomically(conn, |tx| {
        calls::ensure_exists(tx, call_sid, at_ms)?;
        tx.prepare_cached(
            "INSERT INTO barge_ins (call_sid, offset_ms, reaction_ms, heard_ms, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            call_sid,
            as_i64(b.offset_ms),
            b.reaction_ms.map(as_i64),
            as_i64(b.heard_ms),
            at_ms
        ])?;
        Ok(())
    })
}

/// A call's barge-ins, in stream order.
pub fn barge_ins(conn: &Connection, call_sid: &str) -> Result<Vec<BargeInRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT offset_ms, reaction_ms, heard_ms FROM barge_ins WHERE call_sid = ?1
         ORDER BY offset_ms, id",
    )?;
    let rows = stmt.query_map(params![call_sid], |row| {
        Ok(BargeInRecord {
            offset_ms: as_u64(row.get(0)?),
            reaction_ms: row.get::<_, Option<i64>>(1)?.map(as_u64),
            heard_ms: as_u64(row.get(2)?),
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
        let turn = |offset_ms, total_ms, at_ms| TurnLatencyRecord {
            offset_ms,
            total_ms,
            endpointing_ms: 500,
            model_ms: 300,
            playout_ms: total_ms - 800,
            at_ms,
        };
        insert(&mut conn, "CA1", &turn(9_000, 1_100, 2)).unwrap();
        insert(&mut conn, "CA1", &turn(2_000, 900, 1)).unwrap();
        assert_eq!(
            list(&conn, "CA1").unwrap(),
            vec![turn(2_000, 900, 1), turn(9_000, 1_100, 2)]
        );
        assert!(list(&conn, "CA2").unwrap().is_empty());
        let b = |offset_ms, reaction_ms| BargeInRecord {
            offset_ms,
            reaction_ms,
            heard_ms: 700,
        };
        insert_barge_in(&mut conn, "CA1", &b(5_000, None), 3).unwrap();
        insert_barge_in(&mut conn, "CA1", &b(4_000, Some(180)), 3).unwrap();
        assert_eq!(
            barge_ins(&conn, "CA1").unwrap(),
            vec![b(4_000, Some(180)), b(5_000, None)]
        );
    }
}
