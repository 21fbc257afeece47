//! `verbio bench --soak`: N recorded calls kept up for M minutes through the lean generator, calls of
//! mixed length started and ended continuously, a tenth of them longer than the model's session cap (so
//! the bridge rolls its model sessions over under load), every other turn a barge-in, every third answer
//! a function call (the built-in `transfer_call`, which the bridge answers itself). The bridge's RSS and
//! open descriptors are sampled throughout; at the end every call must have a complete WAV in the
//! recordings folder and the library, no audio may be lost, and RSS and descriptors must be flat after
//! warm-up. Prints a pass/fail summary; fails the command when anything does not hold.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::lean_caller::{run_call, turns, CallOutcome, CallSpec, Frames};
use super::lean_model::{LeanModel, ModelConfig};
use super::meter::{Meter, MAX_SLOTS};
use super::{fail, rss_kib, start_bridge, status_kib, BenchError};

#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub calls: usize,
    pub minutes: f64,
    /// The bridge's rollover (`VERBIO_SESSION_ROLLOVER_SECS`); `None`: its default (55 minutes).
    pub rollover_secs: Option<u64>,
    /// The fake model's session cap; default 60 minutes, or the rollover + 60 s when that is set.
    pub session_cap_secs: Option<u64>,
    pub sample_secs: u64,
    /// Check each call's recording as soon as its call ends and delete it through the local API.
    pub prune: bool,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: f64,
    rss_kib: f64,
    /// The heap and other anonymous memory (RSS less the binary's and libraries' pages).
    anon_kib: f64,
    fds: usize,
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A recording as the library has it.
struct Row {
    id: i64,
    file_name: String,
    status: String,
    duration_ms: i64,
    size_bytes: i64,
}

fn open_library(data: &Path) -> Result<rusqlite::Connection, String> {
    rusqlite::Connection::open_with_flags(
        data.join("verbio.sqlite3"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .map_err(|e| format!("opening the library: {e}"))
}

/// The library's local recordings (all, or one call's), by call.
fn recording_rows(
    db: &rusqlite::Connection,
    call_sid: Option<&str>,
) -> Result<HashMap<String, Vec<Row>>, String> {
    let mut rows: HashMap<String, Vec<Row>> = HashMap::new();
    let mut stmt = db
        .prepare(
            "SELECT call_sid, id, file_name, status, duration_ms, size_bytes FROM recordings \
             WHERE source = 'local' AND (?1 IS NULL OR call_sid = ?1)",
        )
        .map_err(|e| e.to_string())?;
    let mapped = stmt
        .query_map([call_sid], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Row {
                    id: r.get(1)?,
                    file_name: r.get(2)?,
                    status: r.get(3)?,
                    duration_ms: r.get(4)?,
                    size_bytes: r.get(5)?,
                },
            ))
        })
        .map_err(|e| e.to_string())?;
    for row in mapped {
        let (sid, row) = row.map_err(|e| e.to_string())?;
        rows.entry(sid).or_default().push(row);
    }
    Ok(rows)
}

fn library(data: &Path) -> Result<(HashMap<String, Vec<Row>>, usize), String> {
    let db = open_library(data)?;
    let rows = recording_rows(&db, None)?;
    let open_calls: usize = db
        .query_row(
            "SELECT COUNT(*) FROM calls WHERE ended_at_ms IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| e.to_string())? as usize;
    Ok((rows, open_calls))
}

/// One call's recording checked: its length's difference from the call's (ms), or what is wrong.
type Verdict = Result<i64, String>;
type Verdicts = Arc<std::sync::Mutex<HashMap<String, Verdict>>>;

/// A call's one WAV complete: status `complete`, the header's data size the file's, the library's size
/// and duration the file's, its length within 2 s of the call's stream.
fn check_recording(data: &Path, call_sid: &str, stream_ms: u64, rows: &[Row]) -> Verdict {
    let [row] = rows else {
        return Err(format!(
            "{call_sid}: {} recordings in the library, not one",
            rows.len()
        ));
    };
    let path = data.join("recordings").join(&row.file_name);
    let len = std::fs::metadata(&path)
        .map(|m| m.len() as i64)
        .unwrap_or(-1);
    let header = std::fs::File::open(&path)
        .and_then(|mut f| {
            use std::io::Read;
            let mut h = [0u8; 44];
            f.read_exact(&mut h).map(|()| h)
        })
        .map(|h| u32::from_le_bytes([h[40], h[41], h[42], h[43]]) as i64)
        .unwrap_or(-1);
    let length_off = (row.duration_ms - stream_ms as i64).abs();
    if row.status != "complete"
        || len != row.size_bytes
        || header != len - 44
        || row.duration_ms != (len - 44) / 32
        || length_off > 2000
    {
        return Err(format!(
            "{call_sid}: {} status {}, file {len} B (library {} B, header {header} B), {} ms recorded for a {stream_ms} ms call",
            row.file_name, row.status, row.size_bytes, row.duration_ms
        ));
    }
    Ok(length_off)
}

/// `--prune`: one ended call's recording checked, then deleted through the local API (the library's
/// own delete), and the row and file checked gone.
struct Prune {
    data: std::path::PathBuf,
    api: String,
    api_key: String,
    client: reqwest::Client,
    call_sid: String,
    stream_ms: u64,
    verdicts: Verdicts,
}

impl Prune {
    async fn run(self) {
        let verdict = self.check_and_delete().await;
        self.verdicts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.call_sid.clone(), verdict);
    }

    async fn check_and_delete(&self) -> Verdict {
        let sid = self.call_sid.as_str();
        // The writer finalizes the file once the call has ended; give it up to 10 s more.
        let mut rows = Vec::new();
        for _ in 0..10 {
            let db = open_library(&self.data)?;
            rows = recording_rows(&db, Some(sid))?
                .remove(sid)
                .unwrap_or_default();
            if !rows.is_empty() && rows.iter().all(|r| r.status != "recording") {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if rows.is_empty() {
            return Err(format!("{sid}: no recording in the library"));
        }
        let length_off = check_recording(&self.data, sid, self.stream_ms, &rows)?;
        for row in &rows {
            let url = format!("{}/api/recording/{}", self.api, row.id);
            let response = self
                .client
                .delete(&url)
                .header("x-api-key", &self.api_key)
                .send()
                .await
                .map_err(|e| format!("{sid}: deleting recording {}: {e}", row.id))?;
            if response.status() != reqwest::StatusCode::NO_CONTENT {
                return Err(format!(
                    "{sid}: deleting recording {} answered {}",
                    row.id,
                    response.status()
                ));
            }
            if self.data.join("recordings").join(&row.file_name).exists() {
                return Err(format!(
                    "{sid}: {} still on disk after its delete",
                    row.file_name
                ));
            }
        }
        let db = open_library(&self.data)?;
        if recording_rows(&db, Some(sid))?.contains_key(sid) {
            return Err(format!("{sid}: its library row survived the delete"));
        }
        Ok(length_off)
    }
}

/// Max of a stretch of samples.
fn max_of(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    samples.iter().map(f).fold(0.0, f64::max)
}

pub async fn run(opts: SoakOptions) -> Result<bool, BenchError> {
    let started = Instant::now();
    let window = Duration::from_secs_f64(opts.minutes * 60.0);
    let window_s = window.as_secs_f64();
    let cap_secs = opts
        .session_cap_secs
        .or(opts.rollover_secs.map(|r| r + 60))
        .unwrap_or(3600);
    let meter = Arc::new(Meter::default());
    let model = LeanModel::start(
        ModelConfig {
            tool_every: Some(3),
            session_cap: Some(Duration::from_secs(cap_secs)),
            ..ModelConfig::default()
        },
        meter.clone(),
    )
    .await
    .map_err(fail)?;
    let mut env = Vec::new();
    if let Some(secs) = opts.rollover_secs {
        env.push(("VERBIO_SESSION_ROLLOVER_SECS", secs.to_string()));
    }
    // The longest calls must outlive the model's session; the bridge's own cap on a call's length
    // (30 min by default) would end them first, with a goodbye, before any rollover.
    let long = if opts.minutes >= 10.0 {
        window_s + 120.0
    } else {
        window_s + 10.0
    };
    env.push(("VERBIO_MAX_CALL_SECS", format!("{:.0}", long + 600.0)));
    let bridge = start_bridge(&model.url(), true, &env)?;
    let pid = bridge.child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_idle = fds(pid);
    let rss_idle = rss_kib(pid);

    // Call lengths: most between `lo` and `hi`; a tenth of the first wave outlives the model's session.
    let lo = (window_s / 8.0).clamp(15.0, 30.0);
    let hi = (window_s / 2.0).clamp(45.0, 360.0);
    let long_calls = (opts.calls / 10).max(1);
    println!(
        "== soak: {} recorded calls for {:.1} min; lengths {lo:.0}–{hi:.0} s, {long_calls} calls of {long:.0} s; model session cap {cap_secs} s, bridge rollover {}",
        opts.calls,
        opts.minutes,
        opts.rollover_secs
            .map_or("default (55 min)".to_string(), |s| format!("{s} s"))
    );

    let frames = Arc::new(Frames::new());
    let client = reqwest::Client::new();
    let sampler = {
        let samples = Arc::new(std::sync::Mutex::new(Vec::<Sample>::new()));
        let s = samples.clone();
        let every = Duration::from_secs(opts.sample_secs.max(1));
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let sample = Sample {
                    at_s: started.elapsed().as_secs_f64(),
                    rss_kib: rss_kib(pid),
                    anon_kib: status_kib(pid, "RssAnon:"),
                    fds: fds(pid),
                };
                s.lock().unwrap_or_else(|p| p.into_inner()).push(sample);
            }
        });
        (samples, task)
    };

    let mut set: JoinSet<CallOutcome> = JoinSet::new();
    let mut next = 0usize;
    let mut lengths: HashMap<usize, f64> = HashMap::new();
    let spawn = |set: &mut JoinSet<CallOutcome>, n: usize, secs: f64| {
        let slot = n % (MAX_SLOTS - 1) + 1;
        let spec = CallSpec {
            bridge_base: bridge.base.clone(),
            auth_token: "bench-auth-token".into(),
            call_sid: format!("CA{:032x}", n + 1),
            slot,
            steps: turns((secs * 1000.0) as u64),
            max_duration: Duration::from_secs_f64(secs + 120.0),
        };
        set.spawn(run_call(
            spec,
            client.clone(),
            frames.clone(),
            meter.clone(),
        ));
    };
    let ramp = Duration::from_millis((opts.calls as u64 * 20).clamp(500, 10_000));
    for i in 0..opts.calls {
        let secs = if i < long_calls {
            long
        } else {
            rand::random_range(lo..hi)
        };
        lengths.insert(next, secs);
        spawn(&mut set, next, secs);
        next += 1;
        tokio::time::sleep(ramp / opts.calls.max(1) as u32).await;
    }
    let mut outcomes: Vec<CallOutcome> = Vec::new();
    let mut finishing = JoinSet::new();
    let pruned: Verdicts = Arc::default();
    while let Some(done) = set.join_next().await {
        let outcome = done.map_err(fail)?;
        // Account for the call once its last frames have had time to arrive.
        let slot = outcome.slot;
        let m = meter.clone();
        let prune = opts.prune.then(|| Prune {
            data: bridge.data.path().to_path_buf(),
            api: bridge.api.clone(),
            api_key: bridge.api_key.clone(),
            client: client.clone(),
            call_sid: outcome.call_sid.clone(),
            stream_ms: outcome.stream_ms,
            verdicts: pruned.clone(),
        });
        finishing.spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            m.finish_call(slot);
            if let Some(prune) = prune {
                prune.run().await;
            }
        });
        outcomes.push(outcome);
        if started.elapsed() < window {
            let secs = rand::random_range(lo..hi);
            lengths.insert(next, secs);
            spawn(&mut set, next, secs);
            next += 1;
        }
    }
    let ended_s = started.elapsed().as_secs_f64();
    while finishing.join_next().await.is_some() {}
    // Writers finish their files once their calls end.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fds_after = fds(pid);
    let rss_after = rss_kib(pid);
    let (samples, task) = sampler;
    task.abort();
    let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();

    // Flat after warm-up: the first and last quarter of the steady stretch (warm-up over, calls still
    // being replaced) compared by their peaks.
    let warm_up = (window_s / 4.0).clamp(20.0, 600.0);
    let steady: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.at_s >= warm_up && s.at_s <= window_s)
        .collect();
    let quarter = (steady.len() / 4).max(1);
    let (first, last) = if steady.len() >= 2 {
        (
            &steady[..quarter.min(steady.len())],
            &steady[steady.len().saturating_sub(quarter)..],
        )
    } else {
        (&steady[..], &steady[..])
    };
    let rss_first = max_of(first, |s| s.rss_kib);
    let rss_last = max_of(last, |s| s.rss_kib);
    let fds_first = max_of(first, |s| s.fds as f64);
    let fds_last = max_of(last, |s| s.fds as f64);
    let rss_growth = if rss_first > 0.0 {
        rss_last / rss_first - 1.0
    } else {
        f64::NAN
    };
    let fds_growth = if fds_first > 0.0 {
        fds_last / fds_first - 1.0
    } else {
        f64::NAN
    };

    // The recordings: every call's WAV complete, its header matching the file, its length the call's.
    let data = bridge.data.path().to_path_buf();
    let (rows, open_calls) = library(&data).map_err(fail)?;
    let mut problems: Vec<String> = Vec::new();
    let mut recorded_ok = 0usize;
    let mut worst_length_ms = 0i64;
    let mut files_seen = std::collections::HashSet::new();
    let pruned = pruned.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for o in &outcomes {
        let verdict = match pruned.get(&o.call_sid) {
            Some(verdict) => verdict.clone(),
            None => match rows.get(&o.call_sid) {
                Some(rows) => {
                    files_seen.extend(rows.iter().map(|r| r.file_name.clone()));
                    check_recording(&data, &o.call_sid, o.stream_ms, rows)
                }
                None => Err(format!("{}: no recording in the library", o.call_sid)),
            },
        };
        match verdict {
            Ok(length_off) => {
                recorded_ok += 1;
                worst_length_ms = worst_length_ms.max(length_off);
            }
            Err(problem) => problems.push(problem),
        }
    }
    let files: Vec<String> = std::fs::read_dir(data.join("recordings"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let stray_files = files.iter().filter(|f| !files_seen.contains(*f)).count();
    // Rows of no call the soak made, and rows of pruned calls that the delete left behind.
    let stray_rows = rows
        .keys()
        .filter(|sid| pruned.contains_key(*sid) || !outcomes.iter().any(|o| &o.call_sid == *sid))
        .count();

    let totals = meter.totals();
    let completed = outcomes.iter().filter(|o| o.completed).count();
    let with_errors: Vec<&CallOutcome> = outcomes.iter().filter(|o| !o.errors.is_empty()).collect();
    let c = &model.counters;
    let sessions = c.sessions.load(Ordering::Relaxed);
    let rollovers = sessions.saturating_sub(outcomes.len() as u64);
    let tool_calls = c.tool_calls.load(Ordering::Relaxed);
    let outputs = c.function_outputs.load(Ordering::Relaxed);
    let clears: u64 = outcomes.iter().map(|o| o.clears).sum();
    let inbound = meter.inbound.percentiles();
    let outbound = meter.outbound.percentiles();
    let barge = meter.barge_in.percentiles();

    let checks: Vec<(&str, bool, String)> = vec![
        (
            "every call completed",
            completed == outcomes.len(),
            format!("{completed} of {} calls", outcomes.len()),
        ),
        (
            "no caller errors",
            with_errors.is_empty(),
            with_errors.first().map_or("none".into(), |o| {
                format!("{} calls, first: {}: {}", with_errors.len(), o.call_sid, o.errors[0])
            }),
        ),
        (
            "zero audio lost",
            totals.inbound_bytes_lost == 0 && totals.outbound_bytes_lost == 0,
            format!(
                "inbound {} B, outbound {} B ({} frames out of order; {} deltas cut by a hang-up{})",
                totals.inbound_bytes_lost,
                totals.outbound_bytes_lost,
                totals.frames_out_of_order,
                totals.deltas_cut_by_hang_up,
                if totals.lost_deltas.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; lost deltas (slot, ms before the hang-up): {:?}",
                        &totals.lost_deltas[..totals.lost_deltas.len().min(10)]
                    )
                }
            ),
        ),
        (
            "every WAV finalized, its length the call's",
            recorded_ok == outcomes.len(),
            format!(
                "{recorded_ok} of {} (worst length difference {worst_length_ms} ms){}",
                outcomes.len(),
                problems.first().map_or(String::new(), |p| format!("; first problem: {p}"))
            ),
        ),
        (
            "library consistent",
            stray_files == 0 && stray_rows == 0 && open_calls == 0,
            format!(
                "{stray_files} files without a row, {stray_rows} rows without a call or left by a delete, {open_calls} calls not ended{}",
                if opts.prune {
                    format!("; {} recordings checked and deleted as their calls ended", pruned.len())
                } else {
                    String::new()
                }
            ),
        ),
        (
            "RSS flat after warm-up (≤ 5 %)",
            rss_growth.is_finite() && rss_growth <= 0.05,
            format!(
                "{:.1} MiB → {:.1} MiB ({:+.1} %); idle {:.1} MiB, after the calls {:.1} MiB",
                rss_first / 1024.0,
                rss_last / 1024.0,
                rss_growth * 100.0,
                rss_idle / 1024.0,
                rss_after / 1024.0
            ),
        ),
        (
            "open descriptors flat, back to idle after",
            fds_growth.is_finite() && fds_growth <= 0.05 && fds_after <= fds_idle + 4,
            format!(
                "peak {fds_first:.0} → {fds_last:.0} ({:+.1} %); idle {fds_idle}, after the calls {fds_after}",
                fds_growth * 100.0
            ),
        ),
        (
            "sessions rolled over under load",
            rollovers > 0,
            format!(
                "{sessions} model sessions for {} calls, {} expired at the cap",
                outcomes.len(),
                c.expired.load(Ordering::Relaxed)
            ),
        ),
        (
            "tool calls answered",
            tool_calls > 0 && outputs > 0,
            format!("{tool_calls} function calls, {outputs} outputs"),
        ),
        (
            "barge-ins, each item truncated to what the caller heard of it (±20 ms)",
            clears > 0 && totals.truncates > 0 && totals.truncate_error_ms_max <= 20.0,
            format!(
                "{clears} clears, {} truncates (error max {:.0} ms), {} responses cancelled",
                totals.truncates,
                totals.truncate_error_ms_max,
                c.cancelled.load(Ordering::Relaxed)
            ),
        ),
    ];
    println!(
        "  ran {:.1} min ({} calls, {} samples; warm-up {:.0} s)",
        ended_s / 60.0,
        outcomes.len(),
        samples.len(),
        warm_up
    );
    println!(
        "  latency: inbound p50 {:.2} / p99 {:.2} ms, outbound p50 {:.2} / p99 {:.2} ms, barge-in p99 {:.2} ms",
        inbound.p50_ms, inbound.p99_ms, outbound.p50_ms, outbound.p99_ms, barge.p99_ms
    );
    // The bridge's RSS and descriptors over time, about twelve points.
    let step = (samples.len() / 12).max(1);
    let timeline: Vec<String> = samples
        .iter()
        .step_by(step)
        .map(|s| {
            format!(
                "{:.0}s {:.1}MiB (anon {:.1})/{}fd",
                s.at_s,
                s.rss_kib / 1024.0,
                s.anon_kib / 1024.0,
                s.fds
            )
        })
        .collect();
    println!("  bridge over time: {}", timeline.join(", "));
    let mut pass = true;
    for (what, ok, detail) in &checks {
        pass &= *ok;
        println!("  [{}] {what}: {detail}", if *ok { "ok" } else { "FAIL" });
    }
    for p in problems.iter().skip(1).take(5) {
        println!("        {p}");
    }
    println!("  soak: {}", if pass { "PASS" } else { "FAIL" });
    drop(bridge);
    drop(model);
    Ok(pass)
}
