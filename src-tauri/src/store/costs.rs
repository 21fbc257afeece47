//! The `call_costs` ledger: one row per priced usage (a response, a transcribed turn, the summary),
//! with the counts it was priced from and what it cost then (a later price edit does not rewrite
//! history). Sums per call, per day and for the rolling budget window.

use rusqlite::{params, Connection};
use serde::Serialize;

use super::savepoint::atomically;
use super::{calls, StoreError};
use crate::costs::{pico_to_usd, CostSource, Metered};

/// One row to add.
#[derive(Debug, Clone, PartialEq)]
pub struct CostRecord {
    pub source: CostSource,
    pub model: String,
    pub usage: Metered,
    pub cost_pico: u64,
    pub priced: bool,
    pub at_ms: i64,
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn as_u64(v: i64) -> u64 {
    v.max(0) as u64
}

pub fn insert(conn: &mut Connection, call_sid: &str, r: &CostRecord) -> Result<(), StoreError> {
    atomically(conn, |tx| {
        calls::ensure_exists(tx, call_sid, r.at_ms)?;
        let u = &r.usage;
        tx.prepare_cached(
            "INSERT INTO call_costs (call_sid, source, model, input_text, input_audio, cached_text,
             cached_audio, output_text, output_audio, audio_ms, cost_pico, priced, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            call_sid,
            r.source.as_str(),
            r.model,
            as_i64(u.input_text),
            as_i64(u.input_audio),
            as_i64(u.cached_text),
            as_i64(u.cached_audio),
            as_i64(u.output_text),
            as_i64(u.output_audio),
            as_i64(u.audio_ms),
            as_i64(r.cost_pico),
            r.priced,
            r.at_ms
        ])?;
        Ok(())
    })
}

/// Dollars per source.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct BySource {
    pub response: f64,
    pub transcription: f64,
    pub summary: f64,
}

/// What a call cost.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct CallCostTotal {
    pub total_usd: f64,
    /// Exact, in picodollars.
    pub total_pico: u64,
    /// Every usage had a price (else the total leaves `unpriced_models` out).
    pub priced: bool,
    pub unpriced_models: Vec<String>,
    pub by_source: BySource,
}

pub fn call_total(conn: &Connection, call_sid: &str) -> Result<CallCostTotal, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT source, model, SUM(cost_pico), MIN(priced) FROM call_costs WHERE call_sid = ?1
         GROUP BY source, model ORDER BY source, model",
    )?;
    let mut rows = stmt.query(params![call_sid])?;
    let mut total = CallCostTotal {
        priced: true,
        ..CallCostTotal::default()
    };
    let mut pico = [0u64; 3];
    while let Some(row) = rows.next()? {
        let source: String = row.get(0)?;
        let model: String = row.get(1)?;
        let cost = as_u64(row.get(2)?);
        let priced: bool = row.get(3)?;
        if !priced {
            total.priced = false;
            total.unpriced_models.push(model);
        }
        let slot = match CostSource::parse(&source) {
            Some(CostSource::Response) => 0,
            Some(CostSource::Transcription) => 1,
            _ => 2,
        };
        pico[slot] = pico[slot].saturating_add(cost);
        total.total_pico = total.total_pico.saturating_add(cost);
    }
    total.total_usd = pico_to_usd(total.total_pico);
    total.by_source = BySource {
        response: pico_to_usd(pico[0]),
        transcription: pico_to_usd(pico[1]),
        summary: pico_to_usd(pico[2]),
    };
    Ok(total)
}

/// What was spent since `since_ms`, as (when, picodollars) rows: seeds the day's budget at start.
pub fn spent_since(conn: &Connection, since_ms: i64) -> Result<Vec<(i64, u64)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at_ms, cost_pico FROM call_costs WHERE at_ms >= ?1 AND cost_pico > 0 ORDER BY at_ms",
    )?;
    let rows = stmt.query_map(params![since_ms], |row| {
        Ok((row.get::<_, i64>(0)?, as_u64(row.get(1)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A call's cost and p95 turn latency, for a row of the library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallFigures {
    /// `None`: nothing was priced for the call.
    pub cost_pico: Option<u64>,
    pub p95_ms: Option<u64>,
}

/// [`CallFigures`] of each call in `call_sids`.
pub fn call_figures(
    conn: &Connection,
    call_sids: &[String],
) -> Result<std::collections::HashMap<String, CallFigures>, StoreError> {
    let mut cost =
        conn.prepare_cached("SELECT SUM(cost_pico), COUNT(*) FROM call_costs WHERE call_sid = ?1")?;
    let mut latency =
        conn.prepare_cached("SELECT total_ms FROM turn_latencies WHERE call_sid = ?1")?;
    let mut out = std::collections::HashMap::new();
    for sid in call_sids {
        if out.contains_key(sid) {
            continue;
        }
        let (pico, rows): (Option<i64>, i64) =
            cost.query_row(params![sid], |row| Ok((row.get(0)?, row.get(1)?)))?;
        let totals: Vec<u64> = latency
            .query_map(params![sid], |row| Ok(as_u64(row.get(0)?)))?
            .collect::<Result<_, _>>()?;
        out.insert(
            sid.clone(),
            CallFigures {
                cost_pico: (rows > 0).then(|| as_u64(pico.unwrap_or(0))),
                p95_ms: crate::types::percentiles::percentiles(&totals).map(|(_, p95, _)| p95),
            },
        );
    }
    Ok(out)
}

/// One day of the library, in the computer's local time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayStats {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Calls that started that day.
    pub calls: u64,
    /// Minutes streamed by those calls.
    pub minutes: f64,
    /// Money spent that day.
    pub cost_usd: f64,
    /// Nearest-rank 95th percentile of the turn latencies measured that day.
    pub p95_ms: Option<u64>,
}

/// The last `days` local days up to today, oldest first, every day present.
pub fn daily(conn: &Connection, days: u32) -> Result<Vec<DayStats>, StoreError> {
    let days = days.clamp(1, 366);
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE d(day) AS (
             SELECT date('now', 'localtime', '-' || (?1 - 1) || ' days')
             UNION ALL SELECT date(day, '+1 day') FROM d WHERE day < date('now', 'localtime')
         ),
         c AS (
             SELECT date(started_at_ms / 1000, 'unixepoch', 'localtime') AS day, COUNT(*) AS calls,
                 SUM(CASE WHEN stream_sid IS NOT NULL AND ended_at_ms >= started_at_ms
                     THEN ended_at_ms - started_at_ms ELSE 0 END) AS ms
             FROM calls GROUP BY 1
         ),
         k AS (
             SELECT date(at_ms / 1000, 'unixepoch', 'localtime') AS day, SUM(cost_pico) AS pico
             FROM call_costs GROUP BY 1
         )
         SELECT d.day, COALESCE(c.calls, 0), COALESCE(c.ms, 0), COALESCE(k.pico, 0)
         FROM d LEFT JOIN c ON c.day = d.day LEFT JOIN k ON k.day = d.day ORDER BY d.day",
    )?;
    let rows = stmt.query_map(params![days], |row| {
        Ok(DayStats {
            day: row.get(0)?,
            calls: as_u64(row.get(1)?),
            minutes: as_u64(row.get(2)?) as f64 / 60_000.0,
            cost_usd: pico_to_usd(as_u64(row.get(3)?)),
            p95_ms: None,
        })
    })?;
    let mut out: Vec<DayStats> = rows.collect::<Result<_, _>>()?;
    let mut latency = conn.prepare_cached(
        "SELECT total_ms FROM turn_latencies
         WHERE date(at_ms / 1000, 'unixepoch', 'localtime') = ?1",
    )?;
    for day in &mut out {
        let totals: Vec<u64> = latency
            .query_map(params![day.day], |row| Ok(as_u64(row.get(0)?)))?
            .collect::<Result<_, _>>()?;
        day.p95_ms = crate::types::percentiles::percentiles(&totals).map(|(_, p95, _)| p95);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations::test_db;

    fn row(
        source: CostSource,
        model: &str,
        cost_pico: u64,
        priced: bool,
        at_ms: i64,
    ) -> CostRecord {
        CostRecord {
            source,
            model: model.into(),
            usage: Metered {
                output_audio: 10,
                ..Metered::default()
            },
            cost_pico,
            priced,
            at_ms,
        }
    }

    #[test]
    fn a_call_sums_by_source_and_names_unpriced_models() {
        let mut conn = test_db();
        insert(
            &mut conn,
            "CA1",
            &row(CostSource::Response, "gpt-realtime", 3_000, true, 1),
        )
        .unwrap();
        insert(
            &mut conn,
            "CA1",
            &row(CostSource::Response, "gpt-realtime", 4_000, true, 2),
        )
        .unwrap();
        insert(
            &mut conn,
            "CA1",
            &row(CostSource::Transcription, "x-transcribe", 0, false, 3),
        )
        .unwrap();
        insert(
            &mut conn,
            "CA1",
            &row(CostSource::Summary, "gpt-4.1-mini", 500, true, 4),
        )
        .unwrap();
        insert(
            &mut conn,
            "CA2",
            &row(CostSource::Response, "gpt-realtime", 9, true, 5),
        )
        .unwrap();
        let total = call_total(&conn, "CA1").unwrap();
        assert_eq!(total.total_pico, 7_500);
        assert!(!total.priced);
        assert_eq!(total.unpriced_models, vec!["x-transcribe".to_string()]);
        assert_eq!(total.by_source.response, pico_to_usd(7_000));
        assert_eq!(total.by_source.summary, pico_to_usd(500));
        assert_eq!(call_total(&conn, "CA3").unwrap().total_pico, 0);
        assert_eq!(
            spent_since(&conn, 2).unwrap(),
            vec![(2, 4_000), (4, 500), (5, 9)]
        );
        let figures = call_figures(&conn, &["CA1".into(), "CA9".into()]).unwrap();
        assert_eq!(figures["CA1"].cost_pico, Some(7_500));
        assert_eq!(figures["CA9"], CallFigures::default());
    }

    #[test]
    fn days_are_all_there_oldest_first_with_todays_figures() {
        let mut conn = test_db();
        let now = crate::types::now_ms();
        insert(
            &mut conn,
            "CA1",
            &row(CostSource::Response, "m", 2_000_000_000_000, true, now),
        )
        .unwrap();
        let days = daily(&conn, 7).unwrap();
        assert_eq!(days.len(), 7);
        assert!(days.windows(2).all(|w| w[0].day < w[1].day));
        let today = days.last().unwrap();
        assert_eq!(today.cost_usd, 2.0);
        assert_eq!(today.calls, 1, "the cost row made the call exist");
        assert!(days[..6].iter().all(|d| d.calls == 0 && d.cost_usd == 0.0));
    }
}
