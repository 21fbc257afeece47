//! Queries on `calls` and `call_issues`. Plain functions on a connection; the store thread calls them.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use super::savepoint::atomically;
use super::StoreError;
use crate::telephony::twilio::direction::Direction;

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
    /// Answering-machine detection's verdict (`human`, `machine_end_beep`, …), outbound calls only.
    pub answered_by: Option<String>,
    /// Twilio's billed duration, once the call completed.
    pub duration_secs: Option<i64>,
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
     started_at_ms, ended_at_ms, end_reason, failed, answered_by, duration_secs";

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
        answered_by: row.get(10)?,
        duration_secs: row.get(11)?,
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
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO calls (call_sid, status, started_at_ms) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![call_sid, STATUS_IN_PROGRESS, at_ms])?;
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
    let tx = conn.savepoint()?;
    ensure_exists(&tx, call_sid, at_ms)?;
    tx.execute(
        "INSERT INTO call_issues (call_sid, code, message, at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![call_sid, code, message, at_ms],
    )?;
    tx.commit()?;
    Ok(())
}

/// One status callback (or the app's own `queued` when it placed the call).
#[derive(Debug, Clone, Copy)]
pub struct StatusUpdate<'a> {
    pub call_sid: &'a str,
    pub status: &'a str,
    pub direction: Option<&'a Direction>,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub answered_by: Option<&'a str>,
    pub duration_secs: Option<u32>,
    pub at_ms: i64,
}

/// Where a status sits in a call's life. Callbacks can arrive out of order, so a status only ever
/// moves forward, and a final status stays (a bridge's `failed` is not undone by Twilio's `completed`).
/// A status Verbio does not know ranks below every known one: it never ends a call or overrides one.
fn status_rank(status: &str) -> Option<u8> {
    crate::telephony::twilio::status::CallStatus::parse(status).map(|s| s.rank())
}

/// `inbound` or `outbound` from Twilio's `Direction` (`outbound-api`, `outbound-dial`).
fn direction_of(direction: &Direction) -> &'static str {
    if direction.is_outbound() {
        "outbound"
    } else {
        "inbound"
    }
}

/// Records a status report and keeps the history.
pub fn apply_status(conn: &mut Connection, update: &StatusUpdate<'_>) -> Result<(), StoreError> {
    let tx = conn.savepoint()?;
    let direction = update.direction.map(direction_of);
    tx.execute(
        "INSERT OR IGNORE INTO calls (call_sid, direction, from_number, to_number, status, started_at_ms)
         VALUES (?1, COALESCE(?2, 'inbound'), ?3, ?4, ?5, ?6)",
        params![
            update.call_sid,
            direction,
            update.from,
            update.to,
            update.status,
            update.at_ms
        ],
    )?;
    let current: String = tx.query_row(
        "SELECT status FROM calls WHERE call_sid = ?1",
        [update.call_sid],
        |row| row.get(0),
    )?;
    let old_rank = status_rank(&current);
    let new_rank = status_rank(update.status);
    let status = match (old_rank, new_rank) {
        // Unknown to Verbio: recorded in the history below, never the call's status.
        (_, None) => current.as_str(),
        (None, Some(_)) => update.status,
        (Some(old), Some(new)) if new > old || (new == old && old < 4) => update.status,
        _ => current.as_str(),
    };
    let status = if status == "answered" {
        STATUS_IN_PROGRESS
    } else {
        status
    };
    let ends = new_rank == Some(4);
    tx.execute(
        "UPDATE calls SET
             status = ?2,
             direction = COALESCE(?3, direction),
             from_number = COALESCE(from_number, ?4),
             to_number = COALESCE(to_number, ?5),
             answered_by = COALESCE(?6, answered_by),
             duration_secs = COALESCE(?7, duration_secs),
             ended_at_ms = CASE WHEN ?8 AND ended_at_ms IS NULL THEN ?9 ELSE ended_at_ms END,
             end_reason = CASE WHEN ?8 AND end_reason IS NULL THEN ?10 ELSE end_reason END
         WHERE call_sid = ?1",
        params![
            update.call_sid,
            status,
            direction,
            update.from,
            update.to,
            update.answered_by,
            update.duration_secs,
            ends,
            update.at_ms,
            update.status,
        ],
    )?;
    // Twilio reports each status of a call once: the same status again is a replay (or a retry of a
    // callback that did reach us), and adds nothing to the history.
    tx.execute(
        "INSERT INTO call_status_events (call_sid, status, answered_by, at_ms)
         SELECT ?1, ?2, ?3, ?4 WHERE NOT EXISTS (
             SELECT 1 FROM call_status_events WHERE call_sid = ?1 AND status = ?2)",
        params![
            update.call_sid,
            update.status,
            update.answered_by,
            update.at_ms
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// The status of a call a cap turned away before it streamed.
pub const STATUS_REFUSED: &str = "refused";

/// A cap that protects the bill refused or ended a call: kept as an issue (`code` names the cap). A
/// refused call (it never streamed) is also recorded as ended, `refused`, with `message` as its reason.
pub struct Capped<'a> {
    pub call_sid: &'a str,
    pub code: &'a str,
    pub message: &'a str,
    pub refused: bool,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub at_ms: i64,
}

pub fn record_capped(conn: &mut Connection, capped: &Capped<'_>) -> Result<(), StoreError> {
    let tx = conn.savepoint()?;
    if capped.refused {
        tx.execute(
            "INSERT INTO calls (call_sid, from_number, to_number, status, started_at_ms, ended_at_ms,
                 end_reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
             ON CONFLICT(call_sid) DO UPDATE SET
                 from_number = COALESCE(calls.from_number, excluded.from_number),
                 to_number = COALESCE(calls.to_number, excluded.to_number),
                 status = CASE WHEN calls.ended_at_ms IS NULL THEN excluded.status ELSE calls.status END,
                 ended_at_ms = COALESCE(calls.ended_at_ms, excluded.ended_at_ms),
                 end_reason = COALESCE(calls.end_reason, excluded.end_reason)",
            params![
                capped.call_sid,
                capped.from,
                capped.to,
                STATUS_REFUSED,
                capped.at_ms,
                capped.message
            ],
        )?;
    } else {
        ensure_exists(&tx, capped.call_sid, capped.at_ms)?;
    }
    tx.execute(
        "INSERT INTO call_issues (call_sid, code, message, at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![capped.call_sid, capped.code, capped.message, capped.at_ms],
    )?;
    tx.commit()?;
    Ok(())
}

/// Whether `/twiml` answered `call_sid` before: it had a media stream (the library keeps its stream
/// SID) or a cap refused it.
pub fn answered(conn: &Connection, call_sid: &str) -> Result<bool, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM calls WHERE call_sid = ?1 AND (stream_sid IS NOT NULL OR status = ?2)",
    )?;
    Ok(stmt.exists(params![call_sid, STATUS_REFUSED])?)
}

/// Milliseconds of media stream that ended at `since_ms` or later, counted from `since_ms` at the
/// earliest (a call that began before the window counts only its part in it). Live calls are not
/// here (their end is not recorded yet); the registry knows them.
pub fn streamed_ms_since(conn: &Connection, since_ms: i64) -> Result<i64, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT COALESCE(SUM(ended_at_ms - MAX(started_at_ms, ?1)), 0) FROM calls
         WHERE ended_at_ms >= ?1 AND stream_sid IS NOT NULL AND ended_at_ms >= started_at_ms",
    )?;
    Ok(stmt.query_row([since_ms], |row| row.get(0))?)
}

/// Records answering-machine detection's verdict and the action taken.
pub fn apply_machine_detection(
    conn: &mut Connection,
    call_sid: &str,
    answered_by: &str,
    action: &str,
    at_ms: i64,
) -> Result<(), StoreError> {
    let tx = conn.savepoint()?;
    ensure_exists(&tx, call_sid, at_ms)?;
    tx.execute(
        "UPDATE calls SET answered_by = ?2 WHERE call_sid = ?1",
        params![call_sid, answered_by],
    )?;
    tx.execute(
        "INSERT INTO call_status_events (call_sid, status, answered_by, at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![call_sid, format!("amd:{action}"), answered_by, at_ms],
    )?;
    tx.commit()?;
    Ok(())
}

/// A call's status history, oldest first: (status, answered_by, at_ms).
pub fn status_history(
    conn: &Connection,
    call_sid: &str,
) -> Result<Vec<(String, Option<String>, i64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT status, answered_by, at_ms FROM call_status_events
         WHERE call_sid = ?1 ORDER BY at_ms, id",
    )?;
    let rows = stmt.query_map([call_sid], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
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

/// One model response of a call, as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResponseRecord {
    pub response_id: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    /// `None` when the service reported no usage.
    pub usage: Option<crate::types::TokenUsage>,
    pub at_ms: i64,
}

/// Stores one finished model response.
pub fn insert_response(
    conn: &mut Connection,
    call_sid: &str,
    response: &ResponseRecord,
) -> Result<(), StoreError> {
    atomically(conn, |tx| {
        ensure_exists(tx, call_sid, response.at_ms)?;
        let u = response.usage.unwrap_or_default();
        tx.prepare_cached(
        "INSERT INTO call_responses (call_sid, response_id, status, reason, input_text, input_audio,
             input_cached, output_text, output_audio, has_usage, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(
        params![
            call_sid,
            response.response_id,
            response.status,
            response.reason,
            u.input_text as i64,
            u.input_audio as i64,
            u.input_cached as i64,
            u.output_text as i64,
            u.output_audio as i64,
            response.usage.is_some(),
            response.at_ms
        ],
    )?;
        Ok(())
    })
}

/// A call's model responses, oldest first.
pub fn responses(conn: &Connection, call_sid: &str) -> Result<Vec<ResponseRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT response_id, status, reason, input_text, input_audio, input_cached, output_text,
                output_audio, has_usage, at_ms
         FROM call_responses WHERE call_sid = ?1 ORDER BY at_ms, id",
    )?;
    let rows = stmt.query_map([call_sid], |row| {
        let has_usage: bool = row.get(8)?;
        let n = |i: usize| row.get::<_, i64>(i).map(|v| v.max(0) as u64);
        let usage = crate::types::TokenUsage {
            input_text: n(3)?,
            input_audio: n(4)?,
            input_cached: n(5)?,
            output_text: n(6)?,
            output_audio: n(7)?,
            // The text/audio split of the cached tokens is kept with the cost (`call_costs`).
            ..Default::default()
        };
        Ok(ResponseRecord {
            response_id: row.get(0)?,
            status: row.get(1)?,
            reason: row.get(2)?,
            usage: has_usage.then_some(usage),
            at_ms: row.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
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
    fn status_only_moves_forward_and_final_states_stay() {
        let mut conn = db();
        let update = |status: &'static str, at_ms: i64| StatusUpdate {
            call_sid: "CA7",
            status,
            direction: Some(&Direction::OutboundApi),
            from: Some("+14155550100"),
            to: Some("+14155550123"),
            answered_by: None,
            duration_secs: None,
            at_ms,
        };
        apply_status(&mut conn, &update("queued", 1)).unwrap();
        apply_status(&mut conn, &update("ringing", 2)).unwrap();
        apply_status(&mut conn, &update("initiated", 3)).unwrap(); // late: ignored
        let call = get(&conn, "CA7").unwrap().unwrap();
        assert_eq!(call.status, "ringing");
        // A status Verbio does not know neither ends the call nor replaces what it knows.
        let mut other = db();
        apply_status(&mut other, &update("ringing", 1)).unwrap();
        apply_status(&mut other, &update("on-hold", 2)).unwrap();
        let call = get(&other, "CA7").unwrap().unwrap();
        assert_eq!(call.status, "ringing");
        assert_eq!(call.ended_at_ms, None, "an unknown status is not final");
        assert_eq!(call.direction, "outbound");
        apply_status(&mut conn, &update("in-progress", 4)).unwrap();
        mark_ended(&conn, "CA7", "model unavailable", true, 5).unwrap();
        apply_status(
            &mut conn,
            &StatusUpdate {
                duration_secs: Some(42),
                ..update("completed", 6)
            },
        )
        .unwrap();
        let call = get(&conn, "CA7").unwrap().unwrap();
        assert_eq!(call.status, STATUS_FAILED, "the bridge's failure stays");
        assert_eq!(call.duration_secs, Some(42));
        assert_eq!(call.ended_at_ms, Some(5));
        apply_machine_detection(&mut conn, "CA7", "human", "continue", 7).unwrap();
        assert_eq!(
            get(&conn, "CA7").unwrap().unwrap().answered_by.as_deref(),
            Some("human")
        );
        let history: Vec<String> = status_history(&conn, "CA7")
            .unwrap()
            .into_iter()
            .map(|(s, _, _)| s)
            .collect();
        assert_eq!(
            history,
            [
                "queued",
                "ringing",
                "initiated",
                "in-progress",
                "completed",
                "amd:continue"
            ]
        );
    }

    #[test]
    fn a_replayed_status_sequence_changes_nothing() {
        let mut conn = db();
        let update = |status: &'static str, at_ms: i64| StatusUpdate {
            call_sid: "CA10",
            status,
            direction: Some(&Direction::Inbound),
            from: None,
            to: None,
            answered_by: None,
            duration_secs: (status == "completed").then_some(30),
            at_ms,
        };
        let sequence = [("ringing", 1), ("in-progress", 2), ("completed", 3)];
        for (status, at) in sequence {
            apply_status(&mut conn, &update(status, at)).unwrap();
        }
        let before = get(&conn, "CA10").unwrap().unwrap();
        let history = status_history(&conn, "CA10").unwrap();
        // The whole sequence again, later, and in the wrong order.
        for (status, at) in sequence.iter().rev() {
            apply_status(&mut conn, &update(status, at + 100)).unwrap();
        }
        assert_eq!(get(&conn, "CA10").unwrap().unwrap(), before);
        assert_eq!(status_history(&conn, "CA10").unwrap(), history);
        assert_eq!(before.status, "completed");
        assert_eq!(before.ended_at_ms, Some(3));
    }

    #[test]
    fn refused_calls_are_ended_and_streamed_minutes_are_counted() {
        let mut conn = db();
        record_capped(
            &mut conn,
            &Capped {
                call_sid: "CA11",
                code: "concurrent_calls",
                message: "all lines busy",
                refused: true,
                from: Some("+1555"),
                to: None,
                at_ms: 50,
            },
        )
        .unwrap();
        let call = get(&conn, "CA11").unwrap().unwrap();
        assert_eq!(call.status, STATUS_REFUSED);
        assert_eq!(call.ended_at_ms, Some(50));
        assert_eq!(call.end_reason.as_deref(), Some("all lines busy"));
        assert_eq!(call.from_number.as_deref(), Some("+1555"));
        assert_eq!(issues(&conn, "CA11").unwrap()[0].code, "concurrent_calls");
        assert!(answered(&conn, "CA11").unwrap(), "refused: answered");
        assert!(!answered(&conn, "CA99").unwrap());

        insert_started(&conn, "CA12", "MZ12", None, None, 1_000).unwrap();
        assert!(answered(&conn, "CA12").unwrap(), "streamed: answered");
        assert_eq!(streamed_ms_since(&conn, 0).unwrap(), 0, "still live");
        mark_ended(&conn, "CA12", "caller hung up", false, 61_000).unwrap();
        insert_started(&conn, "CA13", "MZ13", None, None, 100_000).unwrap();
        mark_ended(&conn, "CA13", "caller hung up", false, 130_000).unwrap();
        assert_eq!(streamed_ms_since(&conn, 0).unwrap(), 90_000);
        // Only the part inside the window counts.
        assert_eq!(streamed_ms_since(&conn, 31_000).unwrap(), 60_000);
        assert_eq!(streamed_ms_since(&conn, 200_000).unwrap(), 0);
        // The length cap ending a call is an issue of that call, not an end.
        record_capped(
            &mut conn,
            &Capped {
                call_sid: "CA14",
                code: "call_length",
                message: "reached 30 min",
                refused: false,
                from: None,
                to: None,
                at_ms: 7,
            },
        )
        .unwrap();
        assert_eq!(get(&conn, "CA14").unwrap().unwrap().ended_at_ms, None);
    }

    #[test]
    fn busy_call_ends_without_a_stream() {
        let mut conn = db();
        for (status, at) in [("queued", 1), ("ringing", 2), ("busy", 3)] {
            apply_status(
                &mut conn,
                &StatusUpdate {
                    call_sid: "CA8",
                    status,
                    direction: Some(&Direction::OutboundApi),
                    from: None,
                    to: None,
                    answered_by: None,
                    duration_secs: Some(0),
                    at_ms: at,
                },
            )
            .unwrap();
        }
        let call = get(&conn, "CA8").unwrap().unwrap();
        assert_eq!(call.status, "busy");
        assert_eq!(call.ended_at_ms, Some(3));
        assert_eq!(call.end_reason.as_deref(), Some("busy"));
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
