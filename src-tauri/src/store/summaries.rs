//! The post-call summary of each call (`call_summaries`), and its words in the library's search
//! (`call_summaries_fts`).
//!
//! Search: a second FTS5 table rather than lines in `transcripts_fts`, so a summary is never mistaken
//! for something said in the call, and re-running it replaces its words without touching the
//! transcript's index. It holds the summary, the disposition and the field *values* (not the field
//! names, which every call shares and would make every call match "order").

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{calls, StoreError};
use crate::summary::SummaryStatus;

/// A call's summary as kept and shown (`GET /api/sessions/{id}/summary`, the recording detail).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRecord {
    pub call_sid: String,
    pub status: SummaryStatus,
    pub summary: Option<String>,
    pub disposition: Option<String>,
    /// The user's fields (an object), when the summary is `done`.
    pub fields: Option<Map<String, Value>>,
    pub error: Option<String>,
    pub model: String,
    pub input_tokens: u64,
    pub cached_tokens: u64,
    pub output_tokens: u64,
    pub latency_ms: u64,
    pub at_ms: i64,
}

const COLUMNS: &str = "call_sid, status, summary, disposition, fields_json, error, model, \
     input_tokens, cached_tokens, output_tokens, latency_ms, at_ms";

fn from_row(row: &Row) -> rusqlite::Result<SummaryRecord> {
    let status: String = row.get(1)?;
    let fields: Option<String> = row.get(4)?;
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, i64>(i)?.max(0) as u64) };
    Ok(SummaryRecord {
        call_sid: row.get(0)?,
        // The table's CHECK keeps anything else out.
        status: SummaryStatus::parse(&status).unwrap_or(SummaryStatus::Failed),
        summary: row.get(2)?,
        disposition: row.get(3)?,
        // Written by `save` from a JSON object; anything else reads as no fields.
        fields: fields.and_then(|f| serde_json::from_str(&f).ok()),
        error: row.get(5)?,
        model: row.get(6)?,
        input_tokens: count(7)?,
        cached_tokens: count(8)?,
        output_tokens: count(9)?,
        latency_ms: count(10)?,
        at_ms: row.get(11)?,
    })
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The words a search finds a summary by: the summary, the disposition and every field value.
fn search_text(r: &SummaryRecord) -> String {
    let mut words = vec![];
    words.extend(r.summary.clone());
    words.extend(r.disposition.clone());
    for value in r.fields.iter().flat_map(Map::values) {
        match value {
            Value::Null => {}
            Value::String(s) => words.push(s.clone()),
            other => words.push(other.to_string()),
        }
    }
    words.join("\n")
}

/// Keeps `r` as its call's summary, replacing an earlier one (a re-run).
pub fn save(conn: &mut Connection, r: &SummaryRecord) -> Result<(), StoreError> {
    let tx = conn.savepoint()?;
    calls::ensure_exists(&tx, &r.call_sid, r.at_ms)?;
    let fields = r
        .fields
        .as_ref()
        .map(|f| Value::Object(f.clone()).to_string());
    // cost: the summary's model and token usage are kept here (priced by `crate::costs`).
    tx.execute(
        "INSERT INTO call_summaries (call_sid, status, summary, disposition, fields_json, error, model,
             input_tokens, cached_tokens, output_tokens, latency_ms, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT(call_sid) DO UPDATE SET status = excluded.status, summary = excluded.summary,
             disposition = excluded.disposition, fields_json = excluded.fields_json,
             error = excluded.error, model = excluded.model, input_tokens = excluded.input_tokens,
             cached_tokens = excluded.cached_tokens, output_tokens = excluded.output_tokens,
             latency_ms = excluded.latency_ms, at_ms = excluded.at_ms",
        params![
            r.call_sid,
            r.status.as_str(),
            r.summary,
            r.disposition,
            fields,
            r.error,
            r.model,
            as_i64(r.input_tokens),
            as_i64(r.cached_tokens),
            as_i64(r.output_tokens),
            as_i64(r.latency_ms),
            r.at_ms
        ],
    )?;
    tx.execute(
        "DELETE FROM call_summaries_fts WHERE call_sid = ?1",
        [&r.call_sid],
    )?;
    let text = search_text(r);
    if !text.is_empty() {
        tx.execute(
            "INSERT INTO call_summaries_fts (call_sid, text) VALUES (?1, ?2)",
            params![r.call_sid, text],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub fn get(conn: &Connection, call_sid: &str) -> Result<Option<SummaryRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM call_summaries WHERE call_sid = ?1");
    Ok(conn.query_row(&sql, [call_sid], from_row).optional()?)
}

impl super::StoreHandle {
    /// Keeps a call's summary (replacing an earlier one).
    pub fn save_summary(
        &self,
        record: SummaryRecord,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        self.request(move |conn| save(conn, &record))
    }

    /// A call's summary, if one was made.
    pub fn summary(
        &self,
        call_sid: &str,
    ) -> impl std::future::Future<Output = Result<Option<SummaryRecord>, StoreError>> + Send + 'static
    {
        let call_sid = call_sid.to_string();
        self.request(move |conn| get(conn, &call_sid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{migrations, recordings};
    use serde_json::json;

    fn record(call_sid: &str, order: &str) -> SummaryRecord {
        SummaryRecord {
            call_sid: call_sid.into(),
            status: SummaryStatus::Done,
            summary: Some("The caller asked where their parcel is.".into()),
            disposition: Some("callback_requested".into()),
            fields: json!({"order_number": order, "items": 2, "note": null})
                .as_object()
                .cloned(),
            error: None,
            model: "gpt-4.1-mini".into(),
            input_tokens: 500,
            cached_tokens: 100,
            output_tokens: 60,
            latency_ms: 900,
            at_ms: 10,
        }
    }

    fn recording(conn: &mut Connection, call_sid: &str, file: &str) -> i64 {
        recordings::insert(
            conn,
            &recordings::NewRecording {
                call_sid: call_sid.into(),
                source: "local".into(),
                file_name: file.into(),
                status: recordings::STATUS_COMPLETE.into(),
                started_at_ms: 1,
                twilio_sid: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn saved_read_back_replaced_and_searchable() {
        let mut conn = migrations::test_db();
        let a = recording(&mut conn, "CA1", "a.wav");
        recording(&mut conn, "CA2", "b.wav");
        save(&mut conn, &record("CA1", "ZX-4411")).unwrap();
        assert_eq!(get(&conn, "CA1").unwrap(), Some(record("CA1", "ZX-4411")));
        assert_eq!(get(&conn, "CA2").unwrap(), None);

        fn ids(conn: &Connection, q: &str) -> Vec<i64> {
            recordings::list(conn, Some(q), 10, 0)
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect()
        }
        assert_eq!(ids(&conn, "zx-4411"), [a], "a field value");
        assert_eq!(ids(&conn, "parcel"), [a], "the summary");
        assert_eq!(ids(&conn, "callback_requested"), [a], "the disposition");
        assert!(
            ids(&conn, "order_number").is_empty(),
            "field names are not indexed"
        );

        // A re-run replaces the words.
        let mut failed = record("CA1", "");
        failed.status = SummaryStatus::Failed;
        failed.summary = None;
        failed.disposition = None;
        failed.fields = None;
        failed.error = Some("the Responses API answered 500".into());
        save(&mut conn, &failed).unwrap();
        assert_eq!(
            get(&conn, "CA1").unwrap().unwrap().status,
            SummaryStatus::Failed
        );
        assert!(ids(&conn, "parcel").is_empty());

        // Deleting the call deletes its summary and its words.
        save(&mut conn, &record("CA1", "ZX-4411")).unwrap();
        assert!(calls::delete(&conn, "CA1").unwrap());
        assert_eq!(get(&conn, "CA1").unwrap(), None);
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM call_summaries_fts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }
}
