//! [`StoreHandle`]: the only way the rest of the app reaches the database.
//!
//! A single OS thread owns the `rusqlite::Connection` and works through commands in the order
//! they were sent. Writes are fire-and-forget over an unbounded channel, so a call's task never
//! waits on the disk; reads come back through a oneshot. When the last handle is dropped the
//! thread finishes what was queued and closes the database.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::Thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::transcripts::NewTranscript;
use super::{
    calls, costs, latency, migrations, operator, savepoint, tool_calls, transcripts, StoreError,
};
use super::{CallRecord, IssueRecord, TranscriptRecord};
use crate::events::CallEvent;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

enum Command {
    Apply(CallEvent),
    Run(Job),
}

/// Cheap to clone, `Send + Sync`; every clone talks to the same store thread.
#[derive(Clone)]
pub struct StoreHandle {
    tx: mpsc::Sender<Command>,
    bell: Arc<QueryBell>,
}

/// How a query cuts a batch's window short. Events never ring it: while a batch waits for company the
/// store thread is parked, not blocked on the channel, so an event sent then costs its sender no wake-up
/// (at 300 calls that was ~1,000 futex wake-ups and store-thread switches a second, one per event).
struct QueryBell {
    /// Set by a query, cleared by the store thread when it wakes for it.
    rung: Arc<AtomicBool>,
    store_thread: Thread,
}

impl QueryBell {
    fn ring(&self) {
        self.rung.store(true, Ordering::Release);
        self.store_thread.unpark();
    }
}

/// Parks the store thread until `deadline`, or until a query rings (sets `rung`). (A park may also end
/// early for no reason, hence the loop.)
fn wait_until(rung: &AtomicBool, deadline: Instant) {
    loop {
        if rung.swap(false, Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        std::thread::park_timeout(deadline - now);
    }
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreHandle")
    }
}

impl StoreHandle {
    /// Opens (or creates) the library at `path`, creating its directory and applying migrations,
    /// and starts the store thread. Blocks briefly; call it at start-up.
    pub fn open(path: &Path) -> Result<StoreHandle, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let conn = open_connection(path)?;
        let (tx, rx) = mpsc::channel();
        let rung = Arc::new(AtomicBool::new(false));
        let heard = rung.clone();
        let store_thread = std::thread::Builder::new()
            .name("verbio-store".into())
            .spawn(move || {
                crate::thread_sched::background();
                run(conn, rx, &heard)
            })
            .map_err(StoreError::Thread)?;
        let bell = Arc::new(QueryBell {
            rung,
            store_thread: store_thread.thread().clone(),
        });
        Ok(StoreHandle { tx, bell })
    }

    /// Persists a bus event, fire-and-forget: never blocks, never fails the caller. Problems are
    /// logged with the call's SID.
    pub fn apply(&self, event: &CallEvent) {
        if self.tx.send(Command::Apply(event.clone())).is_err() {
            tracing::warn!(
                call_sid = %event.call_sid(),
                event = event_kind(event),
                "call library has stopped; event not saved"
            );
        }
    }

    /// Calls, newest first.
    pub fn list_calls(
        &self,
        limit: u32,
        offset: u32,
    ) -> impl Future<Output = Result<Vec<CallRecord>, StoreError>> + Send + 'static {
        self.request(move |conn| calls::list(conn, limit, offset))
    }

    pub fn call(
        &self,
        call_sid: &str,
    ) -> impl Future<Output = Result<Option<CallRecord>, StoreError>> + Send + 'static {
        let call_sid = call_sid.to_string();
        self.request(move |conn| calls::get(conn, &call_sid))
    }

    /// A call's transcript, ordered by offset into the stream, then by arrival.
    pub fn transcripts(
        &self,
        call_sid: &str,
    ) -> impl Future<Output = Result<Vec<TranscriptRecord>, StoreError>> + Send + 'static {
        let call_sid = call_sid.to_string();
        self.request(move |conn| transcripts::for_call(conn, &call_sid))
    }

    /// A call's model-side issues, oldest first.
    pub fn issues(
        &self,
        call_sid: &str,
    ) -> impl Future<Output = Result<Vec<IssueRecord>, StoreError>> + Send + 'static {
        let call_sid = call_sid.to_string();
        self.request(move |conn| calls::issues(conn, &call_sid))
    }

    /// A call's model responses (status, reason, tokens), oldest first.
    pub fn responses(
        &self,
        call_sid: &str,
    ) -> impl Future<Output = Result<Vec<calls::ResponseRecord>, StoreError>> + Send + 'static {
        let call_sid = call_sid.to_string();
        self.request(move |conn| calls::responses(conn, &call_sid))
    }

    /// A call's answered turns and their latency as heard, in order.
    pub fn turn_latencies(
        &self,
        call_sid: &str,
    ) -> impl Future<Output = Result<Vec<latency::TurnLatencyRecord>, StoreError>> + Send + 'static
    {
        let call_sid = call_sid.to_string();
        self.request(move |conn| latency::list(conn, &call_sid))
    }

    /// A call's barge-ins, in order.
    pub fn barge_ins(
        &self,
        call_sid: &str,
    ) -> impl Future<Output = Result<Vec<latency::BargeInRecord>, StoreError>> + Send + 'static
    {
        let call_sid = call_sid.to_string();
        self.request(move |conn| latency::barge_ins(conn, &call_sid))
    }

    /// What a call cost, by source.
    pub fn call_cost(
        &self,
        call_sid: &str,
    ) -> impl Future<Output = Result<costs::CallCostTotal, StoreError>> + Send + 'static {
        let call_sid = call_sid.to_string();
        self.request(move |conn| costs::call_total(conn, &call_sid))
    }

    /// Cost and p95 turn latency of each call, for the library's rows.
    pub fn call_figures(
        &self,
        call_sids: Vec<String>,
    ) -> impl Future<
        Output = Result<std::collections::HashMap<String, costs::CallFigures>, StoreError>,
    > + Send
           + 'static {
        self.request(move |conn| costs::call_figures(conn, &call_sids))
    }

    /// Money spent since `since_ms`, row by row (seeds the day's budget).
    pub fn spent_since(
        &self,
        since_ms: i64,
    ) -> impl Future<Output = Result<Vec<(i64, u64)>, StoreError>> + Send + 'static {
        self.request(move |conn| costs::spent_since(conn, since_ms))
    }

    /// Calls, minutes, cost and p95 turn latency for each of the last `days` local days.
    pub fn daily_stats(
        &self,
        days: u32,
    ) -> impl Future<Output = Result<Vec<costs::DayStats>, StoreError>> + Send + 'static {
        self.request(move |conn| costs::daily(conn, days))
    }

    /// A call's tool log, in order.
    pub fn tool_calls(
        &self,
        call_sid: &str,
    ) -> impl Future<Output = Result<Vec<tool_calls::ToolCallRecord>, StoreError>> + Send + 'static
    {
        let call_sid = call_sid.to_string();
        self.request(move |conn| tool_calls::list(conn, &call_sid))
    }

    /// The stretches of a call the operator held, in order.
    pub fn operator_spans(
        &self,
        call_sid: &str,
    ) -> impl Future<Output = Result<Vec<operator::OperatorSpan>, StoreError>> + Send + 'static
    {
        let call_sid = call_sid.to_string();
        self.request(move |conn| operator::spans(conn, &call_sid))
    }

    /// Deletes a call with its transcript and issues; false when there was no such call.
    pub fn delete_call(
        &self,
        call_sid: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static {
        let call_sid = call_sid.to_string();
        self.request(move |conn| calls::delete(conn, &call_sid))
    }

    /// A remembered app choice.
    pub fn setting(
        &self,
        key: &'static str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send + 'static {
        self.request(move |conn| super::settings::get(conn, key))
    }

    pub fn set_setting(
        &self,
        key: &'static str,
        value: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        self.request(move |conn| super::settings::set(conn, key, &value))
    }

    /// A call's status history, oldest first: (status, answered_by, at_ms).
    pub fn status_history(
        &self,
        call_sid: &str,
    ) -> impl Future<Output = Result<Vec<(String, Option<String>, i64)>, StoreError>> + Send + 'static
    {
        let call_sid = call_sid.to_string();
        self.request(move |conn| calls::status_history(conn, &call_sid))
    }

    /// Whether `/twiml` answered `call_sid` before (it streamed, or a cap refused it): a `/twiml` for it
    /// again is a replay.
    pub fn call_answered(
        &self,
        call_sid: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send + 'static {
        let call_sid = call_sid.to_string();
        self.request(move |conn| calls::answered(conn, &call_sid))
    }

    /// Milliseconds of media stream of calls that ended at `since_ms` or later (the part after it).
    pub fn streamed_ms_since(
        &self,
        since_ms: i64,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send + 'static {
        self.request(move |conn| calls::streamed_ms_since(conn, since_ms))
    }

    /// Resolves once every command sent before this call has been carried out.
    pub fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        self.request(|_| Ok(()))
    }

    /// Queues `job` now (so it is ordered after everything already sent) and returns its answer.
    pub(super) fn request<T, F>(
        &self,
        job: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let run: Job = Box::new(move |conn| {
            let _ = reply.send(job(conn));
        });
        let sent = self.tx.send(Command::Run(run)).is_ok();
        if sent {
            self.bell.ring();
        }
        async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            answer.await.unwrap_or(Err(StoreError::Closed))
        }
    }
}

/// Opens and migrates, turning "not a database" into a clear [`StoreError::Corrupt`].
fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let classify = |err: StoreError| {
        let corrupt = err.is_corruption();
        match err {
            StoreError::Sqlite(source) | StoreError::Migration { source, .. } if corrupt => {
                StoreError::Corrupt {
                    path: path.to_path_buf(),
                    source,
                }
            }
            StoreError::Sqlite(source) => StoreError::Open {
                path: path.to_path_buf(),
                source,
            },
            other => other,
        }
    };
    let mut conn = Connection::open(path).map_err(|e| classify(StoreError::Sqlite(e)))?;
    migrations::configure(&conn).map_err(classify)?;
    // Room for every statement the event writers and the library's queries cache.
    conn.set_prepared_statement_cache_capacity(64);
    migrations::migrate(&mut conn).map_err(classify)?;
    Ok(conn)
}

/// Events that arrive together are written in one transaction: under load a commit every tenth of
/// a second, not one per event (one per transcript line, response, cost and barge-in of every call).
/// Each commit rewrites the pages it touched in the WAL, and the same index pages are touched by
/// every batch, so fewer, larger batches cost the store thread less. A batch waits this long for
/// company after its first event, and never for a read: a query ends the wait at once.
const BATCH_WINDOW: Duration = Duration::from_millis(100);
const BATCH_MAX: usize = 1024;

/// The store thread's loop. Ends when every handle is gone and the queue is drained.
fn run(mut conn: Connection, rx: mpsc::Receiver<Command>, rung: &AtomicBool) {
    let mut next: Option<Command> = None;
    // A full batch left events queued: the next one takes them without waiting.
    let mut backlog = false;
    loop {
        let command = match next.take() {
            Some(command) => command,
            None => match rx.recv() {
                Ok(command) => command,
                Err(_) => return,
            },
        };
        match command {
            Command::Apply(event) => {
                let mut batch = vec![event];
                if !backlog {
                    wait_until(rung, Instant::now() + BATCH_WINDOW);
                }
                backlog = false;
                loop {
                    if batch.len() == BATCH_MAX {
                        backlog = true;
                        break;
                    }
                    match rx.try_recv() {
                        Ok(Command::Apply(event)) => batch.push(event),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                apply_batch(&mut conn, &batch);
            }
            Command::Run(job) => guarded(|| job(&mut conn)),
        }
    }
}

/// A bug in one command must not take the library down for the rest of the session.
fn guarded(f: impl FnOnce()) {
    if std::panic::catch_unwind(AssertUnwindSafe(f)).is_err() {
        tracing::error!("call library command panicked; continuing");
    }
}

fn apply_one(conn: &mut Connection, event: &CallEvent) {
    guarded(|| {
        if let Err(e) = apply_event(conn, event) {
            tracing::warn!(
                call_sid = %event.call_sid(),
                event = event_kind(event),
                error = %e,
                "could not save call event"
            );
        }
    });
}

/// Applies `batch` in one transaction. First all together (no savepoint per event); if any event
/// fails, that is undone and the batch is written again with each event in its own savepoint, so a bad
/// event loses only itself. If no transaction can be begun or committed, one by one.
fn apply_batch(conn: &mut Connection, batch: &[CallEvent]) {
    if batch.len() > 1 && conn.execute_batch("BEGIN IMMEDIATE").is_ok() {
        let all_written = savepoint::all_or_nothing(|| {
            batch.iter().all(|event| {
                std::panic::catch_unwind(AssertUnwindSafe(|| apply_event(conn, event)))
                    .is_ok_and(|written| written.is_ok())
            }) && transcripts::index_pending(conn).is_ok()
        });
        if all_written && conn.execute_batch("COMMIT").is_ok() {
            return;
        }
        let _ = conn.execute_batch("ROLLBACK");
        if conn.execute_batch("BEGIN IMMEDIATE").is_ok() {
            for event in batch {
                apply_one(conn, event);
            }
            index_pending(conn);
            match conn.execute_batch("COMMIT") {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(
                        events = batch.len(),
                        "could not commit a batch of call events; saving them one by one: {e}"
                    );
                    let _ = conn.execute_batch("ROLLBACK");
                }
            }
        }
    }
    for event in batch {
        apply_one(conn, event);
    }
    index_pending(conn);
}

/// Brings the transcript search index up to date; a failure leaves the lines waiting for the next try.
fn index_pending(conn: &Connection) {
    if let Err(e) = transcripts::index_pending(conn) {
        tracing::warn!("could not index transcript lines for search: {e}");
    }
}

fn apply_event(conn: &mut Connection, event: &CallEvent) -> Result<(), StoreError> {
    match event {
        CallEvent::CallStarted {
            call_sid,
            stream_sid,
            from,
            to,
            at_ms,
        } => calls::insert_started(
            conn,
            call_sid,
            stream_sid,
            from.as_deref(),
            to.as_deref(),
            *at_ms,
        ),
        CallEvent::Transcript {
            call_sid,
            speaker,
            text,
            offset_ms,
            interrupted,
            at_ms,
        } => transcripts::insert(
            conn,
            &NewTranscript {
                call_sid,
                speaker: *speaker,
                text,
                offset_ms: *offset_ms,
                interrupted: *interrupted,
                at_ms: *at_ms,
            },
        )
        .map(|_| ()),
        CallEvent::ModelIssue {
            call_sid,
            code,
            message,
            at_ms,
        } => calls::insert_issue(conn, call_sid, code, message, *at_ms),
        CallEvent::CallEnded {
            call_sid,
            reason,
            failed,
            at_ms,
        } => calls::mark_ended(conn, call_sid, reason, *failed, *at_ms),
        CallEvent::BargeIn {
            call_sid,
            heard_ms,
            offset_ms,
            reaction_ms,
            at_ms,
            ..
        } => latency::insert_barge_in(
            conn,
            call_sid,
            &latency::BargeInRecord {
                offset_ms: *offset_ms,
                reaction_ms: *reaction_ms,
                heard_ms: *heard_ms,
            },
            *at_ms,
        ),
        CallEvent::Cost {
            call_sid,
            source,
            model,
            usage,
            cost_pico,
            priced,
            at_ms,
            ..
        } => costs::insert(
            conn,
            call_sid,
            &costs::CostRecord {
                source: *source,
                model: model.clone(),
                usage: *usage,
                cost_pico: *cost_pico,
                priced: *priced,
                at_ms: *at_ms,
            },
        ),
        // Live only: the cap that follows it (if any) is a `call_capped`.
        CallEvent::BudgetWarning { .. } => Ok(()),
        CallEvent::CallStatus {
            call_sid,
            status,
            direction,
            from,
            to,
            answered_by,
            duration_secs,
            at_ms,
        } => calls::apply_status(
            conn,
            &calls::StatusUpdate {
                call_sid,
                status,
                direction: direction.as_ref(),
                from: from.as_deref(),
                to: to.as_deref(),
                answered_by: answered_by.as_ref().map(|a| a.as_str()),
                duration_secs: *duration_secs,
                at_ms: *at_ms,
            },
        ),
        CallEvent::MachineDetection {
            call_sid,
            answered_by,
            action,
            at_ms,
        } => calls::apply_machine_detection(conn, call_sid, answered_by.as_str(), action, *at_ms),
        CallEvent::CallCapped {
            call_sid,
            cap,
            message,
            from,
            to,
            at_ms,
        } => calls::record_capped(
            conn,
            &calls::Capped {
                call_sid,
                code: cap.as_str(),
                message,
                refused: cap.refuses(),
                from: from.as_deref(),
                to: to.as_deref(),
                at_ms: *at_ms,
            },
        ),
        CallEvent::Whisper {
            call_sid,
            text,
            offset_ms,
            at_ms,
            ..
        } => transcripts::insert(
            conn,
            &NewTranscript {
                call_sid,
                speaker: crate::types::Speaker::Whisper,
                text,
                offset_ms: *offset_ms,
                interrupted: false,
                at_ms: *at_ms,
            },
        )
        .map(|_| ()),
        CallEvent::OperatorTookOver {
            call_sid,
            device,
            offset_ms,
            at_ms,
        } => operator::took_over(conn, call_sid, device, *offset_ms, *at_ms),
        CallEvent::OperatorHandedBack {
            call_sid,
            reason,
            offset_ms,
            ..
        } => operator::handed_back(conn, call_sid, reason.as_str(), *offset_ms),
        CallEvent::ToolFinished {
            call_sid,
            call_id,
            tool,
            arguments,
            outcome,
            output,
            error,
            failure,
            latency_ms,
            approved_by,
            offset_ms,
            at_ms,
        } => tool_calls::insert(
            conn,
            call_sid,
            &tool_calls::ToolCallRecord {
                call_id: call_id.clone(),
                tool: tool.clone(),
                arguments: arguments.clone(),
                outcome: outcome.as_str().into(),
                output: output.clone(),
                error: error.clone(),
                failure: failure.map(|f| f.as_str().to_string()),
                latency_ms: *latency_ms,
                approved_by: approved_by.clone(),
                offset_ms: *offset_ms,
                at_ms: *at_ms,
            },
        ),
        CallEvent::TurnLatency {
            call_sid,
            offset_ms,
            total_ms,
            endpointing_ms,
            model_ms,
            playout_ms,
            at_ms,
        } => latency::insert(
            conn,
            call_sid,
            &latency::TurnLatencyRecord {
                offset_ms: *offset_ms,
                total_ms: *total_ms,
                endpointing_ms: *endpointing_ms,
                model_ms: *model_ms,
                playout_ms: *playout_ms,
                at_ms: *at_ms,
            },
        ),
        // Live only: the finished call is what the log keeps.
        CallEvent::ToolStarted { .. }
        | CallEvent::ToolApprovalRequested { .. }
        | CallEvent::ToolApprovalSettled { .. } => Ok(()),
        // Kept with its usage by `save_summary` before it is announced.
        CallEvent::Summary { .. } => Ok(()),
        CallEvent::ResponseDone {
            call_sid,
            response_id,
            status,
            reason,
            usage,
            at_ms,
        } => calls::insert_response(
            conn,
            call_sid,
            &calls::ResponseRecord {
                response_id: response_id.clone(),
                status: status.clone(),
                reason: reason.clone(),
                usage: *usage,
                at_ms: *at_ms,
            },
        ),
    }
}

fn event_kind(event: &CallEvent) -> &'static str {
    match event {
        CallEvent::CallStarted { .. } => "call_started",
        CallEvent::Transcript { .. } => "transcript",
        CallEvent::BargeIn { .. } => "barge_in",
        CallEvent::ModelIssue { .. } => "model_issue",
        CallEvent::CallEnded { .. } => "call_ended",
        CallEvent::CallStatus { .. } => "call_status",
        CallEvent::MachineDetection { .. } => "machine_detection",
        CallEvent::ResponseDone { .. } => "response_done",
        CallEvent::CallCapped { .. } => "call_capped",
        CallEvent::Whisper { .. } => "whisper",
        CallEvent::OperatorTookOver { .. } => "operator_took_over",
        CallEvent::OperatorHandedBack { .. } => "operator_handed_back",
        CallEvent::ToolStarted { .. } => "tool_started",
        CallEvent::ToolApprovalRequested { .. } => "tool_approval_requested",
        CallEvent::ToolApprovalSettled { .. } => "tool_approval_settled",
        CallEvent::ToolFinished { .. } => "tool_finished",
        CallEvent::TurnLatency { .. } => "turn_latency",
        CallEvent::Cost { .. } => "cost",
        CallEvent::BudgetWarning { .. } => "budget_warning",
        CallEvent::Summary { .. } => "summary",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Speaker;

    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

    #[test]
    fn handle_is_shareable() {
        assert_send_sync_clone::<StoreHandle>();
    }

    fn started(call_sid: &str, at_ms: i64) -> CallEvent {
        CallEvent::CallStarted {
            call_sid: call_sid.into(),
            stream_sid: format!("MZ{call_sid}"),
            from: Some("+14155550100".into()),
            to: Some("+14155550199".into()),
            at_ms,
        }
    }

    fn transcript(call_sid: &str, speaker: Speaker, text: &str, offset_ms: u64) -> CallEvent {
        CallEvent::Transcript {
            call_sid: call_sid.into(),
            speaker,
            text: text.into(),
            offset_ms,
            interrupted: false,
            at_ms: 5_000 + offset_ms as i64,
        }
    }

    #[tokio::test]
    async fn events_are_applied_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreHandle::open(&dir.path().join("nested/dir/verbio.sqlite3")).unwrap();

        store.apply(&started("CA1", 1_000));
        store.apply(&transcript(
            "CA1",
            Speaker::Agent,
            "Hello, how can I help?",
            200,
        ));
        store.apply(&transcript("CA1", Speaker::Caller, "I need a taxi", 3_400));
        store.apply(&CallEvent::BargeIn {
            call_sid: "CA1".into(),
            item_id: "item_1".into(),
            heard_ms: 800,
            offset_ms: 3_000,
            reaction_ms: Some(150),
            at_ms: 4_000,
        });
        store.apply(&CallEvent::ModelIssue {
            call_sid: "CA1".into(),
            code: "reconnect".into(),
            message: "model socket dropped; reconnected".into(),
            at_ms: 6_000,
        });
        store.apply(&CallEvent::CallEnded {
            call_sid: "CA1".into(),
            reason: "caller hung up".into(),
            failed: false,
            at_ms: 9_000,
        });
        store.apply(&started("CA2", 2_000));
        store.apply(&CallEvent::CallEnded {
            call_sid: "CA2".into(),
            reason: "model unavailable".into(),
            failed: true,
            at_ms: 2_500,
        });
        store.flush().await.unwrap();

        let call = store.call("CA1").await.unwrap().unwrap();
        assert_eq!(call.stream_sid.as_deref(), Some("MZCA1"));
        assert_eq!(call.from_number.as_deref(), Some("+14155550100"));
        assert_eq!(call.status, "completed");
        assert_eq!(call.ended_at_ms, Some(9_000));
        assert_eq!(call.end_reason.as_deref(), Some("caller hung up"));
        assert!(!call.failed);

        let failed = store.call("CA2").await.unwrap().unwrap();
        assert_eq!(failed.status, "failed");
        assert!(failed.failed);

        let lines = store.transcripts("CA1").await.unwrap();
        let texts: Vec<_> = lines.iter().map(|l| (l.speaker, l.text.as_str())).collect();
        assert_eq!(
            texts,
            [
                (Speaker::Agent, "Hello, how can I help?"),
                (Speaker::Caller, "I need a taxi")
            ]
        );
        assert_eq!(lines[1].offset_ms, 3_400);

        let issues = store.issues("CA1").await.unwrap();
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].code, "reconnect");

        let listed = store.list_calls(10, 0).await.unwrap();
        let sids: Vec<_> = listed.iter().map(|c| c.call_sid.as_str()).collect();
        assert_eq!(sids, ["CA2", "CA1"]);
        assert!(store.call("CA404").await.unwrap().is_none());

        // Records serialize for the UI.
        let json = serde_json::to_value(&lines[0]).unwrap();
        assert_eq!(json["speaker"], "agent");
        assert_eq!(serde_json::to_value(&call).unwrap()["status"], "completed");

        assert!(store.delete_call("CA1").await.unwrap());
        assert!(store.transcripts("CA1").await.unwrap().is_empty());
        assert!(store.issues("CA1").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn transcript_for_unknown_call_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreHandle::open(&dir.path().join("verbio.sqlite3")).unwrap();
        store.apply(&transcript("CAghost", Speaker::Caller, "anyone there?", 10));
        store.flush().await.unwrap();
        let lines = store.transcripts("CAghost").await.unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "anyone there?");
        let call = store.call("CAghost").await.unwrap().unwrap();
        assert_eq!(call.status, "in-progress");
        assert_eq!(call.stream_sid, None);

        // The start arriving late fills the placeholder in.
        store.apply(&started("CAghost", 4_000));
        let call = store.call("CAghost").await.unwrap().unwrap();
        assert_eq!(call.stream_sid.as_deref(), Some("MZCAghost"));
        assert_eq!(call.started_at_ms, 4_000);
    }

    /// A batch is written without a savepoint per event; one that fails is undone and the batch
    /// written again event by event, so the bad event loses only itself, including what it wrote
    /// before it failed (here the placeholder row of a call not yet started).
    #[tokio::test]
    async fn a_bad_event_in_a_batch_loses_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreHandle::open(&dir.path().join("verbio.sqlite3")).unwrap();
        store
            .request(|conn| {
                Ok(conn.execute_batch(
                    "CREATE TEMP TRIGGER poison BEFORE INSERT ON transcripts WHEN new.text = 'poison'
                     BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
                )?)
            })
            .await
            .unwrap();
        // Busy for a moment, so the events below queue up and are written as one batch.
        let busy = store.request(|_| {
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        });
        store.apply(&started("CA1", 1));
        store.apply(&transcript("CA1", Speaker::Caller, "hello", 10));
        store.apply(&transcript("CAghost", Speaker::Caller, "poison", 20));
        store.apply(&transcript("CA1", Speaker::Agent, "goodbye", 30));
        busy.await.unwrap();
        store.flush().await.unwrap();
        let lines: Vec<_> = store.transcripts("CA1").await.unwrap();
        let texts: Vec<_> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["hello", "goodbye"]);
        assert!(store.call("CAghost").await.unwrap().is_none());
        assert!(store.call("CA1").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("verbio.sqlite3");
        {
            let store = StoreHandle::open(&path).unwrap();
            store.apply(&started("CA1", 1));
            store.flush().await.unwrap();
        }
        for _ in 0..2 {
            let store = StoreHandle::open(&path).unwrap();
            let version = store
                .request(|conn| migrations::current_version(conn))
                .await
                .unwrap();
            assert_eq!(version, migrations::latest_version());
            let (wal, fk): (String, i64) = store
                .request(|conn| {
                    let wal = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
                    let fk = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
                    Ok((wal, fk))
                })
                .await
                .unwrap();
            assert_eq!((wal.as_str(), fk), ("wal", 1));
            assert_eq!(store.list_calls(10, 0).await.unwrap().len(), 1);
        }
    }

    #[tokio::test]
    async fn flush_waits_for_everything_sent_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreHandle::open(&dir.path().join("verbio.sqlite3")).unwrap();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        store.apply(&transcript("CA1", Speaker::Caller, &format!("{w}-{i}"), i));
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        store.flush().await.unwrap();
        assert_eq!(store.transcripts("CA1").await.unwrap().len(), 200);
    }

    #[tokio::test]
    async fn a_failing_query_does_not_stop_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreHandle::open(&dir.path().join("verbio.sqlite3")).unwrap();
        let err = store
            .request(|conn| Ok(conn.execute_batch("SELECT * FROM no_such_table")?))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Sqlite(_)), "{err}");
        let panicked: Result<(), _> = store.request(|_| panic!("bug")).await;
        assert!(matches!(panicked, Err(StoreError::Closed)));
        store.apply(&started("CA1", 1));
        assert!(store.call("CA1").await.unwrap().is_some());
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("verbio.sqlite3");
        std::fs::write(&path, vec![0x5Au8; 8192]).unwrap();
        let err = StoreHandle::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("damaged or not a Verbio database"),
            "{message}"
        );
        assert!(message.contains("verbio.sqlite3"), "{message}");

        // A valid header followed by garbage is caught as well.
        let mut bytes = b"SQLite format 3\0".to_vec();
        bytes.extend(std::iter::repeat_n(0xA5u8, 8192));
        std::fs::write(&path, bytes).unwrap();
        let err = StoreHandle::open(&path).unwrap_err();
        assert!(err.is_corruption(), "{err:?}");
    }

    #[test]
    fn unusable_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = StoreHandle::open(&blocker.join("verbio.sqlite3")).unwrap_err();
        assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    }
}
