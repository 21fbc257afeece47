//! `verbio serve` as a real process: starts headless, answers a simulated call end to end, keeps secrets
//! out of its logs, and shuts down cleanly on SIGTERM.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ACCOUNT_SID, AUTH_TOKEN, OPENAI_KEY};

const API_KEY: &str = "serve-test-local-api-key-0001-strong-enough";
const QUERY_SECRET: &str = "query-secret-value-0001";
use verbio::sim::realtime_server::{SimRealtimeConfig, SimRealtimeServer};
use verbio::sim::twilio_caller::{CallerConfig, CallerStep, SimCall};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_bridge_headless() {
    let model = SimRealtimeServer::start(SimRealtimeConfig::default())
        .await
        .expect("fake Realtime server");
    let data = tempfile::tempdir().expect("temp dir");
    let mut child = spawn_serve(&model.url(), data.path(), Stdio::piped());
    let (base, api) = common::served_on(child.stdout.take().expect("stdout"));

    let health = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    assert_ne!(base, api, "Twilio's routes and the API listen apart");

    let report = speak_and_hear(&base).await;
    assert!(
        report.heard_ms >= 600,
        "the agent answered through the headless bridge"
    );
    common::eventually(Duration::from_secs(5), "model session closed", || {
        model.accepted_sessions().iter().all(|s| s.closed)
    })
    .await;

    // The API with its key in the header, and a secret-looking value in a query string.
    let client = reqwest::Client::new();
    let get = |url: String| client.get(url).header("X-API-Key", API_KEY).send();
    let sessions = get(format!("{api}/api/sessions?limit=5&token={QUERY_SECRET}"))
        .await
        .expect("api");
    assert_eq!(sessions.status(), 400, "unknown query parameter is refused");
    let voices = get(format!("{api}/api/voices")).await.expect("api");
    assert_eq!(voices.status(), 200);
    // Twilio's port (what a tunnel forwards to) never serves the API.
    let public = get(format!("{base}/api/voices"))
        .await
        .expect("public port");
    assert_eq!(public.status(), 404);

    // The heap on huge pages: `serve` restarted itself (same process) with glibc's tunables. (glibc
    // rewrites the variable in place as it reads it, so only its first tunable shows here.)
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let environ = std::fs::read(format!("/proc/{}/environ", child.id())).expect("environ");
        let var = |name: &str| {
            let prefix = format!("{name}=");
            environ
                .split(|b| *b == 0)
                .find_map(|var| var.strip_prefix(prefix.as_bytes()))
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let tunables = var("GLIBC_TUNABLES").unwrap_or_default();
        assert!(
            tunables.starts_with("glibc.malloc.hugetlb=1"),
            "GLIBC_TUNABLES={tunables}"
        );
        assert_eq!(var("VERBIO_HUGE_PAGES_RESTARTED").as_deref(), Some(""));

        // The threads' scheduling (`thread_sched`): the recording and library threads are
        // `SCHED_BATCH` (policy 3, the 41st field of a thread's `stat`), the async worker is not, and
        // a worker took the short slice where the kernel takes one and shows it. Per thread: name,
        // policy, slice.
        let threads: Vec<(String, String, Option<u64>)> =
            std::fs::read_dir(format!("/proc/{}/task", child.id()))
                .expect("threads")
                .flatten()
                .filter_map(|task| {
                    let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                    let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
                    let policy = rest.split(' ').nth(38)?.to_owned();
                    let slice = verbio::thread_sched::slice_ns(&task.path());
                    Some((name.to_owned(), policy, slice))
                })
                .collect();
        let policy = |thread: &str| {
            threads
                .iter()
                .find(|(name, ..)| name == thread)
                .map(|(_, policy, _)| policy.as_str())
        };
        for background in ["verbio-store", "verbio-recorder", "verbio-rec-clos"] {
            assert_eq!(policy(background), Some("3"), "{background}: {threads:?}");
        }
        assert_eq!(policy("verbio-worker"), Some("0"), "{threads:?}");
        if verbio::thread_sched::kernel_takes_slices() {
            // (tokio's blocking threads share the workers' name and keep the default slice.)
            assert!(
                threads
                    .iter()
                    .any(|(name, _, slice)| name == "verbio-worker" && *slice == Some(100_000)),
                "the threads: {threads:?}"
            );
        }
    }

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait().expect("serve exits");
    assert!(status.success(), "clean shutdown on SIGTERM: {status:?}");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("read logs");
    assert!(
        logs.contains("call ended"),
        "JSON logs carry the call's story"
    );
    assert!(logs.contains("/api/voices"), "requests are logged");
    assert!(logs.contains("token=REDACTED"), "query values are redacted");
    for secret in [OPENAI_KEY, AUTH_TOKEN, API_KEY, QUERY_SECRET] {
        assert!(!logs.contains(secret), "a secret leaked into the logs");
    }
    // Every file the app wrote (the SQLite file and its WAL, the recordings) is free of secrets.
    let mut files = Vec::new();
    let mut dirs = vec![data.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("data dir").flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            } else {
                files.push(entry);
            }
        }
    }
    assert!(
        files
            .iter()
            .any(|f| f.path().extension().is_some_and(|e| e == "wav")),
        "the call was recorded"
    );
    for entry in files {
        let bytes = std::fs::read(entry.path()).expect("read data file");
        for secret in [OPENAI_KEY, AUTH_TOKEN, API_KEY, QUERY_SECRET] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a secret leaked into {}",
                entry.path().display()
            );
        }
    }
}

/// Logs that cannot be written (stderr on a full disk: `/dev/full` answers every write with ENOSPC)
/// are lost, and nothing else: the bridge still answers a call end to end and shuts down cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_cannot_be_written_loses_only_the_log() {
    let model = SimRealtimeServer::start(SimRealtimeConfig::default())
        .await
        .expect("fake Realtime server");
    let data = tempfile::tempdir().expect("temp dir");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let mut child = spawn_serve(&model.url(), data.path(), Stdio::from(full));
    let (base, _api) = common::served_on(child.stdout.take().expect("stdout"));
    let report = speak_and_hear(&base).await;
    assert!(report.heard_ms >= 600, "the call went on without its logs");
    let health = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    assert!(child.try_wait().expect("wait").is_none(), "still running");
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs")
        .success());
    let status = child.wait().expect("serve exits");
    assert!(status.success(), "clean shutdown on SIGTERM: {status:?}");
}

/// `verbio serve` on free ports against the fake model at `model_url`, its data in `data`, JSON debug
/// logs to `stderr`; its addresses come on stdout.
fn spawn_serve(model_url: &str, data: &std::path::Path, stderr: Stdio) -> Served {
    let child = Command::new(env!("CARGO_BIN_EXE_verbio"))
        .args(["serve", "--port", "0", "--api-port", "0"])
        .env_remove("GLIBC_TUNABLES")
        .env_remove(verbio::huge_pages::SWITCH)
        .env_remove("VERBIO_HUGE_PAGES_RESTARTED")
        .env_remove("VERBIO_THREAD_SCHED")
        .env("VERBIO_REALTIME_URL", model_url)
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .env("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
        .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
        .env("TWILIO_API_BASE", "http://127.0.0.1:9")
        .env("VERBIO_API_KEY", API_KEY)
        .env("VERBIO_DATA_DIR", data)
        .env("VERBIO_CONFIG", data.join("absent.toml"))
        .env("VERBIO_LOG", "debug")
        .env("VERBIO_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("verbio serve starts");
    Served(child)
}

/// A `verbio serve` child that is killed if the test ends without stopping it (a failed assertion), so a
/// failing test leaves no server running behind it.
struct Served(std::process::Child);

impl std::ops::Deref for Served {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Served {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A simulated caller on `base`: 600 ms of tone, then waits to hear the agent, then hangs up.
async fn speak_and_hear(base: &str) -> verbio::sim::twilio_caller::CallerReport {
    let mut caller = CallerConfig::new(base.to_string(), AUTH_TOKEN);
    caller.account_sid = ACCOUNT_SID.into();
    let steps = vec![
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 600,
        },
        CallerStep::WaitForAgentAudio {
            min_ms: 600,
            timeout: Duration::from_secs(10),
        },
        CallerStep::HangUp,
    ];
    SimCall::place(caller, steps)
        .await
        .expect("call placed")
        .finish()
        .await
}
