//! `verbio bench`: load-tests the bridge with simulated calls over loopback.
//!
//! The bridge runs as a child process (`verbio serve`), so its CPU and memory are its own; the load
//! generator (fake Twilio callers and the fake Realtime server) runs in this process: by default the lean
//! one in `bench/` (pre-encoded frames, borrowed scans, batched writes; see `lean_caller` and
//! `lean_model`), with `--sim-generator` the strict simulator's. Every caller frame
//! and every model audio delta carries a tag, so each one is matched across the bridge:
//! - inbound: caller `media` sent → `input_audio_buffer.append` received by the model;
//! - outbound: model `response.output_audio.delta` sent → Twilio `media` received by the caller;
//! - barge-in: model `speech_started` sent → Twilio `clear` received by the caller;
//! - truncate error: `audio_end_ms` of each truncate vs the ms the caller had actually played at the clear.
//!
//! `--operator N` measures the operator's take-over path instead (see [`operator`]).
//!
//! `--soak` keeps N recorded calls up for M minutes and checks memory, descriptors, loss and every WAV
//! (see `soak`).
//!
//! `--setup-burst N` measures call set-up instead: N signed voice webhooks and media-stream upgrades fired
//! at once, as Twilio sends them when many calls come in together; none may be refused.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::sim::frame_tag::read_tag;
use crate::sim::realtime_server::{AgentTurn, RealtimeProbe, SimRealtimeConfig, SimRealtimeServer};
use crate::sim::twilio_caller::{CallerConfig, CallerProbe, CallerReport, CallerStep, SimCall};
use crate::sim::SimError;

mod lean_caller;
mod lean_model;
mod meter;
pub mod operator;
pub mod scan;
mod soak;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrent calls.
    #[arg(long, default_value_t = 100)]
    pub calls: usize,
    /// Seconds each call lasts.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Run several call counts one after another (fresh bridge each), e.g. `100,200,400`.
    #[arg(long, value_delimiter = ',')]
    pub sweep: Vec<usize>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Run the bridge with call recording turned off (for comparing its cost).
    #[arg(long)]
    pub no_record: bool,
    /// Instead: N signed call set-ups (voice webhook + media-stream upgrade + `start`) fired at once, each
    /// call kept open until all are set up; reports set-up latency and refusals.
    #[arg(long, value_name = "N")]
    pub setup_burst: Option<usize>,
    /// Instead: N operator take-over / hand-back cycles on one call (in this process); reports the
    /// take-over delay, microphone → Twilio latency and the caller's audio at each switch.
    #[arg(long, value_name = "N")]
    pub operator: Option<usize>,
    /// Drive the load with the strict simulator's caller and model (`sim::`, the generator used before
    /// issue 16) instead of the lean generator: for comparing the generators' own cost.
    #[arg(long)]
    pub sim_generator: bool,
    /// Worker threads of the load generator's runtime (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub gen_threads: usize,
    /// Instead: the soak. `--calls` recorded calls kept up for `--minutes`, mixed lengths, some longer
    /// than the model's session (rollover), barge-ins, tool calls; RSS and descriptors sampled; every WAV
    /// and the library checked at the end. Exits non-zero when a check fails.
    #[arg(long)]
    pub soak: bool,
    /// With `--soak`: minutes during which calls are started (each call that ends is replaced).
    #[arg(long, default_value_t = 60.0)]
    pub minutes: f64,
    /// With `--soak`: the bridge's session rollover (`VERBIO_SESSION_ROLLOVER_SECS`); default its own (55 min).
    #[arg(long, value_name = "SECS")]
    pub rollover_secs: Option<u64>,
    /// With `--soak`: the fake model's session cap (default 60 min, or the rollover + 60 s).
    #[arg(long, value_name = "SECS")]
    pub session_cap_secs: Option<u64>,
    /// With `--soak`: seconds between samples of the bridge's RSS and descriptors.
    #[arg(long, default_value_t = 5)]
    pub sample_secs: u64,
    /// With `--soak`: check each call's WAV and library row as soon as the call ends, then delete the
    /// recording through the local API (`DELETE /api/recording/{id}`), so an hour of 200 recorded calls
    /// (~11.5 GB) does not need the disk space.
    #[arg(long)]
    pub prune: bool,
    /// With `--operator`: capture from this input device (`default` for the system's) instead of a
    /// synthetic microphone.
    #[arg(long, value_name = "DEVICE")]
    pub microphone: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("benchmark failed: {0}")]
    Failed(String),
}

fn fail(e: impl std::fmt::Display) -> BenchError {
    BenchError::Failed(e.to_string())
}

/// Percentiles of a latency sample, in ms.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentiles of microsecond samples.
pub fn percentiles(samples: &mut [u64]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    samples.sort_unstable();
    let rank = |p: f64| {
        let i = ((p / 100.0) * samples.len() as f64).ceil() as usize;
        samples[i.clamp(1, samples.len()) - 1] as f64 / 1000.0
    };
    Percentiles {
        count: samples.len(),
        p50_ms: rank(50.0),
        p99_ms: rank(99.0),
        max_ms: samples[samples.len() - 1] as f64 / 1000.0,
    }
}

/// One run's measurements.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchReport {
    pub calls: usize,
    pub seconds: u64,
    pub completed_calls: usize,
    pub inbound: Percentiles,
    pub outbound: Percentiles,
    pub barge_in: Percentiles,
    pub truncate_error_ms_max: f64,
    pub truncates: usize,
    pub inbound_bytes_lost: u64,
    pub outbound_bytes_lost: u64,
    pub cpu_seconds_per_call_minute: f64,
    pub bridge_cpu_seconds_per_call_minute: f64,
    /// The load generator (this process) alone.
    pub generator_cpu_seconds_per_call_minute: f64,
    /// Cores used by every other process on the host during the window (from /proc/stat), so a noisy
    /// machine shows in the numbers.
    pub other_processes_cores: f64,
    /// The load average (1 min) at the start and end of the window.
    pub load_average: (f64, f64),
    /// `lean` or `sim`.
    pub generator: String,
    pub rss_kib_per_call: f64,
    /// Every call was recorded to a WAV.
    pub recorded: bool,
    /// Recording data written during the window, all calls together.
    pub recording_kib_per_second: f64,
    /// Recordings whose header matched the file length once their calls ended.
    pub recordings_finalized: usize,
    pub holds_targets: bool,
}

impl BenchReport {
    fn check(&mut self) {
        self.holds_targets = self.completed_calls == self.calls
            && self.inbound.p50_ms <= 1.0
            && self.inbound.p99_ms <= 5.0
            && self.outbound.p50_ms <= 1.0
            && self.outbound.p99_ms <= 5.0
            && self.barge_in.p99_ms <= 5.0
            && self.truncate_error_ms_max <= 20.0
            && self.inbound_bytes_lost == 0
            && self.outbound_bytes_lost == 0
            && self.cpu_seconds_per_call_minute <= 0.03
            && self.rss_kib_per_call <= 64.0
            && (!self.recorded || self.recordings_finalized == self.calls);
    }

    fn print(&self) {
        let p = |x: &Percentiles| {
            format!(
                "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={})",
                x.p50_ms, x.p99_ms, x.max_ms, x.count
            )
        };
        println!(
            "== {} calls × {} s ({} completed)",
            self.calls, self.seconds, self.completed_calls
        );
        println!(
            "  inbound  (Twilio media → append):        {}",
            p(&self.inbound)
        );
        println!(
            "  outbound (audio delta → Twilio media):   {}",
            p(&self.outbound)
        );
        println!(
            "  barge-in (speech_started → clear):       {}",
            p(&self.barge_in)
        );
        println!(
            "  truncate error: max {:.1} ms over {} truncates",
            self.truncate_error_ms_max, self.truncates
        );
        println!(
            "  bytes lost: inbound {}, outbound {}",
            self.inbound_bytes_lost, self.outbound_bytes_lost
        );
        println!(
            "  CPU per call-minute: {:.4} s total ({:.4} s bridge alone, {:.4} s {} generator)",
            self.cpu_seconds_per_call_minute,
            self.bridge_cpu_seconds_per_call_minute,
            self.generator_cpu_seconds_per_call_minute,
            self.generator
        );
        println!(
            "  host: other processes used {:.2} cores; load average {:.2} → {:.2}",
            self.other_processes_cores, self.load_average.0, self.load_average.1
        );
        println!("  bridge RSS per call: {:.1} KiB", self.rss_kib_per_call);
        if self.recorded {
            println!(
                "  recording: {:.0} KiB/s to disk, {} of {} WAVs finalized",
                self.recording_kib_per_second, self.recordings_finalized, self.calls
            );
        } else {
            println!("  recording: off");
        }
        println!(
            "  targets hold: {}",
            if self.holds_targets { "yes" } else { "NO" }
        );
    }
}

pub fn run(args: BenchArgs) -> Result<(), BenchError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if args.gen_threads > 0 {
        builder.worker_threads(args.gen_threads);
    }
    let runtime = builder.enable_all().build().map_err(fail)?;
    if args.soak {
        let pass = runtime.block_on(soak::run(soak::SoakOptions {
            calls: args.calls,
            minutes: args.minutes,
            rollover_secs: args.rollover_secs,
            session_cap_secs: args.session_cap_secs,
            sample_secs: args.sample_secs,
            prune: args.prune,
        }))?;
        return if pass {
            Ok(())
        } else {
            Err(fail("the soak's checks did not all hold"))
        };
    }
    if let Some(cycles) = args.operator {
        let report = runtime.block_on(operator::run(cycles, args.microphone.clone()))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report).map_err(fail)?);
        } else {
            report.print();
        }
        return Ok(());
    }
    if let Some(calls) = args.setup_burst {
        let report = runtime.block_on(run_setup_burst(calls))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report).map_err(fail)?);
        } else {
            report.print();
        }
        return Ok(());
    }
    let levels = if args.sweep.is_empty() {
        vec![args.calls]
    } else {
        args.sweep.clone()
    };
    let mut reports = Vec::new();
    for calls in levels {
        let report = if args.sim_generator {
            runtime.block_on(run_level(calls, args.seconds, !args.no_record))?
        } else {
            runtime.block_on(run_level_lean(calls, args.seconds, !args.no_record))?
        };
        if !args.json {
            report.print();
        }
        reports.push(report);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports).map_err(fail)?);
    } else if reports.len() > 1 {
        let best = reports
            .iter()
            .filter(|r| r.holds_targets)
            .map(|r| r.calls)
            .max();
        println!(
            "largest N holding every target: {}",
            best.map_or("none".into(), |n| n.to_string())
        );
    }
    Ok(())
}

/// Names a `verbio` binary to run as the bridge instead of this one.
pub const BRIDGE_EXE_ENV: &str = "VERBIO_BENCH_BRIDGE";

/// Kills the bridge child when dropped, also on error paths.
struct Bridge {
    child: Child,
    base: String,
    /// The local API (`http://127.0.0.1:<port>`) and its key.
    api: String,
    api_key: String,
    data: tempfile::TempDir,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bridge(
    realtime_url: &str,
    record: bool,
    extra_env: &[(&str, String)],
) -> Result<Bridge, BenchError> {
    let data = tempfile::tempdir().map_err(fail)?;
    // Another build's `verbio` can be the bridge (A/B against an older commit); this one by default.
    let exe = match std::env::var_os(BRIDGE_EXE_ENV) {
        Some(exe) => std::path::PathBuf::from(exe),
        None => std::env::current_exe().map_err(fail)?,
    };
    // A fresh key each run (the API wants ≥ 32 characters); only the soak's pruning uses the API.
    let api_key: String = (0..40)
        .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
        .collect();
    let mut child = Command::new(exe)
        .args(["serve", "--port", "0", "--api-port", "0"])
        .env("VERBIO_API_KEY", &api_key)
        .env("VERBIO_REALTIME_URL", realtime_url)
        .env("OPENAI_API_KEY", "bench-openai-key")
        .env("TWILIO_AUTH_TOKEN", "bench-auth-token")
        .env("VERBIO_DATA_DIR", data.path())
        .env("VERBIO_CONFIG", data.path().join("none.toml"))
        .env("VERBIO_LOG", "warn")
        .env("VERBIO_RECORD", if record { "true" } else { "false" })
        // The load is the point: the caps that protect a user's bill would refuse most of it.
        .env("VERBIO_MAX_CALLS", "1000000")
        // The soak's `--prune` deletes a recording through `/api` as each call ends (~4 a second).
        .env("VERBIO_RATE_LIMIT", "1000000")
        .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(fail)?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| fail("no stdout from the bridge"))?;
    // Kept open for the bridge's life: a later line printed into a closed pipe would end it.
    let mut stdout = BufReader::new(stdout);
    // `verbio serve` prints Twilio's address, then the API's.
    let mut address = |prefix: &str| -> Result<String, BenchError> {
        let mut line = String::new();
        stdout.read_line(&mut line).map_err(fail)?;
        line.trim()
            .strip_prefix(prefix)
            .map(str::to_string)
            .ok_or_else(|| fail(format!("unexpected bridge output {line:?}")))
    };
    let base = address("verbio serving on ")?;
    let api = address("verbio API on ")?;
    Ok(Bridge {
        child,
        base,
        api,
        api_key,
        data,
        _stdout: stdout,
    })
}

/// Bytes in the recordings folder.
fn recording_bytes(data: &std::path::Path) -> u64 {
    std::fs::read_dir(data.join("recordings"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// WAVs whose header's data size matches the file (written to the end and closed).
fn finalized_recordings(data: &std::path::Path) -> usize {
    let Ok(dir) = std::fs::read_dir(data.join("recordings")) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            let Ok(bytes) = std::fs::read(e.path()) else {
                return false;
            };
            bytes.len() >= 44
                && u32::from_le_bytes([bytes[40], bytes[41], bytes[42], bytes[43]]) as usize
                    == bytes.len() - 44
        })
        .count()
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_kib(pid: u32) -> f64 {
    status_kib(pid, "VmRSS:")
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS:`, `RssAnon:`, …); 0 when unreadable.
fn status_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

/// Busy CPU seconds of the whole host (user + nice + system + irq + softirq + steal, all cores).
fn host_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0.0);
    (at(0) + at(1) + at(2) + at(5) + at(6) + at(7)) / 100.0
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// CPU of the bridge, this process and the host, read at the start and end of a window.
struct CpuWindow {
    at: Instant,
    bridge: f64,
    generator: f64,
    host: f64,
    load: f64,
}

impl CpuWindow {
    fn read(bridge_pid: u32) -> Self {
        CpuWindow {
            at: Instant::now(),
            bridge: cpu_seconds(bridge_pid),
            generator: cpu_seconds(std::process::id()),
            host: host_busy_seconds(),
            load: load_average(),
        }
    }
}

/// What the bridge used over the steady middle of a run (both generators measure it the same way).
struct SteadyWindow {
    secs: f64,
    bridge_cpu: f64,
    generator_cpu: f64,
    /// Cores the rest of the host used meanwhile.
    other_cores: f64,
    load: (f64, f64),
    rss_during_kib: f64,
    /// Bytes the recordings grew by.
    disk: u64,
}

impl SteadyWindow {
    /// Measures from now over a run of `seconds` (its middle, less a little at each end): CPU at both
    /// ends, RSS as the median of a sample a second, the recordings' growth.
    ///
    /// A median, not one sample: RSS moves by whole huge pages (2 MiB) as `khugepaged` collapses the
    /// heap and the periodic trim splits it again, so one sample lands anywhere in a swing of several
    /// MiB (BENCHMARKS.md, issue 16, seventh stretch).
    async fn measure(bridge_pid: u32, data: &std::path::Path, seconds: u64) -> Self {
        let w0 = CpuWindow::read(bridge_pid);
        let disk0 = recording_bytes(data);
        let window = Duration::from_secs(seconds.saturating_sub(4).max(2));
        let samples = window.as_secs().clamp(2, 120) as u32;
        let mut rss = Vec::with_capacity(samples as usize);
        for _ in 0..samples {
            tokio::time::sleep(window / samples).await;
            // Whole kB, as /proc gives them.
            rss.push(rss_kib(bridge_pid) as u64);
        }
        let rss_during_kib = crate::types::percentiles::percentiles(&rss)
            .map_or(0.0, |(median, _, _)| median as f64);
        let w1 = CpuWindow::read(bridge_pid);
        let secs = w1.at.duration_since(w0.at).as_secs_f64();
        let bridge_cpu = w1.bridge - w0.bridge;
        let generator_cpu = w1.generator - w0.generator;
        SteadyWindow {
            secs,
            bridge_cpu,
            generator_cpu,
            other_cores: (w1.host - w0.host - bridge_cpu - generator_cpu).max(0.0)
                / secs.max(f64::MIN_POSITIVE),
            load: (w0.load, w1.load),
            rss_during_kib,
            disk: recording_bytes(data).saturating_sub(disk0),
        }
    }

    /// Fills the report's CPU, host, memory and disk figures for `calls` calls (RSS above `rss_before_kib`).
    fn fill(&self, report: &mut BenchReport, rss_before_kib: f64) {
        let call_minutes = (report.calls as f64 * self.secs / 60.0).max(f64::MIN_POSITIVE);
        report.cpu_seconds_per_call_minute = (self.bridge_cpu + self.generator_cpu) / call_minutes;
        report.bridge_cpu_seconds_per_call_minute = self.bridge_cpu / call_minutes;
        report.generator_cpu_seconds_per_call_minute = self.generator_cpu / call_minutes;
        report.other_processes_cores = self.other_cores;
        report.load_average = self.load;
        report.rss_kib_per_call =
            (self.rss_during_kib - rss_before_kib).max(0.0) / report.calls.max(1) as f64;
        report.recording_kib_per_second =
            self.disk as f64 / 1024.0 / self.secs.max(f64::MIN_POSITIVE);
    }
}

/// A call's script: turns of speech, each answered; every other turn interrupts the answer.
fn script(seconds: u64) -> Vec<CallerStep> {
    let mut steps = vec![CallerStep::Silence(300)];
    let mut planned_ms = 300u64;
    let mut turn = 0;
    while planned_ms + 4000 < seconds * 1000 {
        steps.push(CallerStep::Speak {
            tone_hz: 440.0,
            ms: 600,
        });
        if turn % 2 == 0 {
            steps.push(CallerStep::SpeakWhenAgentHasPlayed {
                after_ms: 700,
                tone_hz: 300.0,
                ms: 500,
                timeout: Duration::from_secs(10),
            });
        }
        steps.push(CallerStep::WaitForAgentAudio {
            min_ms: 1500,
            timeout: Duration::from_secs(10),
        });
        steps.push(CallerStep::Silence(500));
        planned_ms += 4000;
        turn += 1;
    }
    steps.push(CallerStep::HangUp);
    steps
}

fn micros(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_micros() as u64
}

#[derive(Default)]
struct Tally {
    inbound_pending: HashMap<u32, Instant>,
    /// Arrivals whose send probe has not been read yet (the two probe channels race).
    inbound_early: HashMap<u32, Instant>,
    inbound: Vec<u64>,
    outbound_pending: HashMap<u32, (Instant, String, usize)>,
    outbound_early: HashMap<u32, Instant>,
    outbound: Vec<u64>,
    /// session → call index (learned from the tags in its audio)
    session_call: HashMap<u64, u32>,
    /// Every `speech_started` and every `clear`, per call; paired at the end (the probes race).
    speech: HashMap<u32, Vec<Instant>>,
    clears: HashMap<u32, Vec<Instant>>,
}

impl Tally {
    /// Barge-in reaction: each `clear` against the latest `speech_started` of its call before it.
    fn barge_in_micros(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for (call, clears) in &self.clears {
            let speech = self.speech.get(call).map(Vec::as_slice).unwrap_or(&[]);
            for clear in clears {
                if let Some(start) = speech.iter().filter(|s| *s <= clear).max() {
                    out.push(micros(*start, *clear));
                }
            }
        }
        out
    }

    fn realtime(&mut self, probe: RealtimeProbe) {
        match probe {
            RealtimeProbe::Append { session, at, audio } => {
                if let Some(tag) = read_tag(&audio) {
                    self.session_call.entry(session).or_insert(tag >> 20);
                    match self.inbound_pending.remove(&tag) {
                        Some(sent) => self.inbound.push(micros(sent, at)),
                        None => {
                            self.inbound_early.insert(tag, at);
                        }
                    }
                }
            }
            RealtimeProbe::DeltaSent {
                at,
                item_id,
                bytes,
                tag: Some(tag),
                ..
            } => match self.outbound_early.remove(&tag) {
                Some(received) => self.outbound.push(micros(at, received)),
                None => {
                    self.outbound_pending.insert(tag, (at, item_id, bytes));
                }
            },
            RealtimeProbe::SpeechStarted { session, at } => {
                if let Some(call) = self.session_call.get(&session) {
                    self.speech.entry(*call).or_default().push(at);
                }
            }
            _ => {}
        }
    }

    fn caller(&mut self, probe: CallerProbe, call_index: &HashMap<String, u32>) {
        match probe {
            CallerProbe::MediaSent { at, seq, .. } => {
                let tag = seq as u32;
                match self.inbound_early.remove(&tag) {
                    Some(received) => self.inbound.push(micros(at, received)),
                    None => {
                        self.inbound_pending.insert(tag, at);
                    }
                }
            }
            CallerProbe::MediaReceived { at, bytes, .. } => {
                if let Some(tag) = read_tag(&bytes) {
                    match self.outbound_pending.remove(&tag) {
                        Some((sent, _, _)) => self.outbound.push(micros(sent, at)),
                        None => {
                            self.outbound_early.insert(tag, at);
                        }
                    }
                }
            }
            CallerProbe::ClearReceived { call, at } => {
                if let Some(i) = call_index.get(&call) {
                    self.clears.entry(*i).or_default().push(at);
                }
            }
        }
    }
}

/// One level through the lean generator (see [`lean_caller`] and [`lean_model`]).
async fn run_level_lean(
    calls: usize,
    seconds: u64,
    record: bool,
) -> Result<BenchReport, BenchError> {
    let meter = std::sync::Arc::new(meter::Meter::default());
    let model = lean_model::LeanModel::start(lean_model::ModelConfig::default(), meter.clone())
        .await
        .map_err(fail)?;
    let bridge = start_bridge(&model.url(), record, &[])?;
    let bridge_pid = bridge.child.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib(bridge_pid);
    let frames = std::sync::Arc::new(lean_caller::Frames::new());
    let client = reqwest::Client::new();
    let ramp = Duration::from_millis((calls as u64 * 5).clamp(500, 5000));
    let mut tasks = Vec::with_capacity(calls);
    for i in 0..calls.min(meter::MAX_SLOTS - 1) {
        let spec = lean_caller::CallSpec {
            bridge_base: bridge.base.clone(),
            auth_token: "bench-auth-token".into(),
            call_sid: format!("CA{:032x}", i + 1),
            slot: i + 1,
            steps: lean_caller::turns(seconds * 1000),
            max_duration: Duration::from_secs(seconds + 60),
        };
        tasks.push(tokio::spawn(lean_caller::run_call(
            spec,
            client.clone(),
            frames.clone(),
            meter.clone(),
        )));
        tokio::time::sleep(ramp / calls.max(1) as u32).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let steady = SteadyWindow::measure(bridge_pid, bridge.data.path(), seconds).await;
    let mut outcomes = Vec::with_capacity(calls);
    for task in tasks {
        outcomes.push(task.await.map_err(fail)?);
    }
    if let Some(o) = outcomes.iter().find(|o| !o.errors.is_empty()) {
        eprintln!("first caller error ({}): {}", o.call_sid, o.errors[0]);
    }
    // Last frames arrive, writers finish their files once their calls end.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for o in &outcomes {
        meter.finish_call(o.slot);
    }
    let recordings_finalized = finalized_recordings(bridge.data.path());
    let totals = meter.totals();
    let mut report = BenchReport {
        calls,
        seconds,
        completed_calls: outcomes
            .iter()
            .filter(|o| o.completed && o.errors.is_empty() && o.frames_sent > 0)
            .count(),
        inbound: meter.inbound.percentiles(),
        outbound: meter.outbound.percentiles(),
        barge_in: meter.barge_in.percentiles(),
        truncate_error_ms_max: totals.truncate_error_ms_max,
        truncates: totals.truncates,
        inbound_bytes_lost: totals.inbound_bytes_lost,
        outbound_bytes_lost: totals.outbound_bytes_lost,
        generator: "lean".into(),
        recorded: record,
        recordings_finalized,
        ..BenchReport::default()
    };
    steady.fill(&mut report, rss_before);
    report.check();
    drop(bridge);
    drop(model);
    Ok(report)
}

async fn run_level(calls: usize, seconds: u64, record: bool) -> Result<BenchReport, BenchError> {
    let (rt_tx, mut rt_rx) = mpsc::unbounded_channel();
    let (caller_tx, mut caller_rx) = mpsc::unbounded_channel();
    let model = SimRealtimeServer::start(SimRealtimeConfig {
        probe: Some(rt_tx),
        record_events: false,
        tag_deltas: true,
        speed_factor: 2.0,
        script: vec![AgentTurn::with_tone("Here is my answer.", 880.0, 2000)],
        // The harness shares the machine with the bridge: the strict server's per-event checks and
        // varying deltas would cost harness CPU and blur the latency tags. Correctness tests use strict.
        ..SimRealtimeConfig::lenient()
    })
    .await
    .map_err(fail)?;
    let bridge = start_bridge(&model.url(), record, &[])?;
    let bridge_pid = bridge.child.id();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_kib(bridge_pid);

    let call_index: HashMap<String, u32> = (0..calls)
        .map(|i| (format!("CA{:032x}", i + 1), i as u32 + 1))
        .collect();
    let tally = std::sync::Arc::new(std::sync::Mutex::new(Tally::default()));
    let aggregator = {
        let tally = tally.clone();
        let index = call_index.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(p) = rt_rx.recv() => tally.lock().unwrap_or_else(|p| p.into_inner()).realtime(p),
                    Some(p) = caller_rx.recv() => tally.lock().unwrap_or_else(|p| p.into_inner()).caller(p, &index),
                    else => break,
                }
            }
        })
    };

    // Ramp up over a few seconds so setup is not one thundering herd.
    let ramp = Duration::from_millis((calls as u64 * 5).clamp(500, 5000));
    let mut tasks = Vec::new();
    for i in 0..calls {
        let mut config = CallerConfig::new(bridge.base.clone(), "bench-auth-token");
        config.call_sid = format!("CA{:032x}", i + 1);
        config.tag_frames = true;
        config.tag_base = (i as u32 + 1) << 20;
        config.record_audio = false;
        config.record_messages = false;
        config.probe = Some(caller_tx.clone());
        config.max_duration = Duration::from_secs(seconds + 60);
        let steps = script(seconds);
        tasks.push(tokio::spawn(async move {
            match SimCall::place(config, steps).await {
                Ok(call) => Some(call.finish().await),
                Err(e) => {
                    eprintln!("call {i} failed to start: {e}");
                    None
                }
            }
        }));
        tokio::time::sleep(ramp / calls.max(1) as u32).await;
    }
    drop(caller_tx);
    // Measure CPU and memory over the steady middle of the run.
    let settle = Duration::from_secs(2);
    tokio::time::sleep(settle).await;
    let steady = SteadyWindow::measure(bridge_pid, bridge.data.path(), seconds).await;

    let mut reports: Vec<CallerReport> = Vec::new();
    for task in tasks {
        if let Ok(Some(report)) = task.await {
            reports.push(report);
        }
    }
    // Writers finish their files once their calls end.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let recordings_finalized = finalized_recordings(bridge.data.path());
    let sessions = model.sessions();
    drop(model);
    let _ = aggregator.await;
    let mut tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));

    // Truncate error: each session's truncates against its call's played-at-clear, in order.
    let mut truncate_error: f64 = 0.0;
    let mut truncates = 0;
    let mut interrupted: HashSet<String> = HashSet::new();
    let played_by_call: HashMap<u32, &Vec<u64>> = reports
        .iter()
        .filter_map(|r| {
            call_index
                .get(&r.call_sid)
                .map(|i| (*i, &r.played_ms_at_clear))
        })
        .collect();
    for s in &sessions {
        interrupted.extend(s.truncates.iter().map(|(item, _)| item.clone()));
        let played = tally
            .session_call
            .get(&s.id)
            .and_then(|c| played_by_call.get(c));
        if let Some(played) = played {
            for ((_, end_ms), heard) in s.truncates.iter().zip(played.iter()) {
                truncates += 1;
                truncate_error = truncate_error.max((*end_ms as f64 - *heard as f64).abs());
            }
        }
    }
    if std::env::var_os("VERBIO_BENCH_DEBUG").is_some() {
        let mut chunks: Vec<u32> = tally.inbound_pending.keys().map(|t| t & 0xFFFFF).collect();
        chunks.sort_unstable();
        eprintln!("unmatched inbound chunks: {chunks:?}");
    }
    let inbound_bytes_lost = tally.inbound_pending.len() as u64 * 160;
    let outbound_bytes_lost = tally
        .outbound_pending
        .values()
        .filter(|(_, item, _)| !interrupted.contains(item))
        .map(|(_, _, bytes)| *bytes as u64)
        .sum();
    let mut report = BenchReport {
        calls,
        seconds,
        completed_calls: reports
            .iter()
            .filter(|r| r.errors.is_empty() && r.media_frames_sent > 0)
            .count(),
        inbound: percentiles(&mut tally.inbound),
        outbound: percentiles(&mut tally.outbound),
        barge_in: percentiles(&mut tally.barge_in_micros()),
        truncate_error_ms_max: truncate_error,
        truncates,
        inbound_bytes_lost,
        outbound_bytes_lost,
        generator: "sim".into(),
        recorded: record,
        recordings_finalized,
        ..BenchReport::default()
    };
    steady.fill(&mut report, rss_before);
    report.check();
    drop(bridge);
    Ok(report)
}

/// A burst of call set-ups: what Twilio does when many calls come in at once.
#[derive(Debug, Clone, Serialize)]
pub struct SetupBurstReport {
    pub calls: usize,
    /// Webhook answered with TwiML, stream upgraded and `start` sent.
    pub set_up: usize,
    /// Set-ups refused with 429 (webhook or upgrade).
    pub refused_429: usize,
    /// Set-ups that failed otherwise (first error kept in `first_failure`).
    pub failed_other: usize,
    pub first_failure: Option<String>,
    /// From the first webhook sent to the last call set up.
    pub burst_seconds: f64,
    /// Each call: webhook sent → TwiML → upgrade → `start` sent.
    pub setup: Percentiles,
    /// Model sessions the bridge opened for the burst (one per call that reached `start`).
    pub model_sessions: usize,
    /// Calls open at once when the last was set up (every call is held until then).
    pub open_at_once: usize,
    pub all_accepted: bool,
}

impl SetupBurstReport {
    fn print(&self) {
        println!(
            "== burst of {} signed call set-ups (webhook + media-stream upgrade), fired at once",
            self.calls
        );
        println!(
            "  set up: {} (open at once: {}), refused 429: {}, other failures: {}{}",
            self.set_up,
            self.open_at_once,
            self.refused_429,
            self.failed_other,
            self.first_failure
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
        println!(
            "  set-up latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; whole burst {:.2} s",
            self.setup.p50_ms, self.setup.p99_ms, self.setup.max_ms, self.burst_seconds
        );
        println!("  model sessions opened: {}", self.model_sessions);
        println!(
            "  all accepted: {}",
            if self.all_accepted { "yes" } else { "NO" }
        );
    }
}

/// Fires `calls` signed call set-ups at once against a fresh bridge (default settings, recording off:
/// only the set-up is measured) and holds every call open until the last is set up.
async fn run_setup_burst(calls: usize) -> Result<SetupBurstReport, BenchError> {
    let model = SimRealtimeServer::start(SimRealtimeConfig {
        record_events: false,
        ..SimRealtimeConfig::lenient()
    })
    .await
    .map_err(fail)?;
    let bridge = start_bridge(&model.url(), false, &[])?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (release, released) = tokio::sync::watch::channel(false);
    // One outcome per call as soon as its set-up is done (or failed), before it waits to be released.
    type Outcome = (u64, Instant, Result<(), Option<String>>);
    let (outcome_tx, mut outcome_rx) = mpsc::unbounded_channel::<Outcome>();
    let started = Instant::now();
    let tasks: Vec<_> = (0..calls)
        .map(|i| {
            let mut config = CallerConfig::new(bridge.base.clone(), "bench-auth-token");
            config.call_sid = format!("CA{:032x}", i + 1);
            config.record_audio = false;
            config.record_messages = false;
            config.max_duration = Duration::from_secs(120);
            let mut released = released.clone();
            let outcome_tx = outcome_tx.clone();
            tokio::spawn(async move {
                let t0 = Instant::now();
                // Silence until released (a real line sends frames from the first moment).
                let call = SimCall::place(config, vec![CallerStep::Silence(110_000)]).await;
                let outcome = call.as_ref().map(|_| ()).map_err(|e| match e {
                    SimError::Webhook { status: 429, .. }
                    | SimError::Handshake { status: 429, .. } => None,
                    other => Some(other.to_string()),
                });
                let done = Instant::now();
                let _ = outcome_tx.send((micros(t0, done), done, outcome));
                if let Ok(call) = call {
                    let _ = released.wait_for(|go| *go).await;
                    call.hang_up_now();
                    call.finish().await;
                }
            })
        })
        .collect();
    drop(outcome_tx);
    // Exactly one each (a call set up keeps its sender while it waits to be released).
    let mut outcomes = Vec::with_capacity(calls);
    while outcomes.len() < calls {
        match outcome_rx.recv().await {
            Some(outcome) => outcomes.push(outcome),
            None => return Err(fail("a set-up task ended without an outcome")),
        }
    }
    let last_done = outcomes.iter().map(|(_, done, _)| *done).max();
    let mut latencies: Vec<u64> = Vec::new();
    let (mut set_up, mut refused, mut failed) = (0, 0, 0);
    let mut first_failure = None;
    for (us, _, outcome) in outcomes {
        match outcome {
            Ok(()) => {
                set_up += 1;
                latencies.push(us);
            }
            Err(None) => refused += 1,
            Err(Some(e)) => {
                failed += 1;
                first_failure.get_or_insert(e);
            }
        }
    }
    // Every call set up opens its model session once `start` is read; give the stragglers a moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while model.sessions().len() < set_up && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open_at_once = model.sessions().iter().filter(|s| !s.closed).count();
    let _ = release.send(true);
    for task in tasks {
        task.await.map_err(fail)?;
    }
    let model_sessions = model.sessions().len();
    drop(bridge);
    Ok(SetupBurstReport {
        calls,
        set_up,
        refused_429: refused,
        failed_other: failed,
        first_failure,
        burst_seconds: last_done
            .map_or(0.0, |t| t.saturating_duration_since(started).as_secs_f64()),
        setup: percentiles(&mut latencies),
        model_sessions,
        open_at_once,
        all_accepted: set_up == calls && refused == 0 && model_sessions == calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        let p = percentiles(&mut samples);
        assert_eq!(
            (p.count, p.p50_ms, p.p99_ms, p.max_ms),
            (100, 50.0, 99.0, 100.0)
        );
        assert_eq!(percentiles(&mut []), Percentiles::default());
        let mut one = vec![2500];
        assert_eq!(percentiles(&mut one).p99_ms, 2.5);
    }
}
