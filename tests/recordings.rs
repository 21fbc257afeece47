//! Recordings end to end: the WAV the bridge writes lines up with what was played, the library's API
//! (ranges, waveform, bad files, delete, export), and Twilio's cloud copy fetched on its callback.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{call_sid, small_wav, start, ACCOUNT_SID, AUTH_TOKEN};
use reqwest::StatusCode;
use serde_json::Value;
use verbio::events::CallEvent;
use verbio::sim::realtime_server::{AgentTurn, SimRealtimeConfig};
use verbio::sim::twilio_caller::{CallerReport, CallerStep, SimCall};
use verbio::store::recordings::RecordingRecord;
use verbio::types::Secret;
use verbio::types::Speaker;

const SECOND: Duration = Duration::from_secs(1);
const API_KEY: &str = "recordings-test-api-key-0001";
/// Tones are at amplitude 0.5 (±16 000); anything above this is sound, silence decodes to 0.
const LOUD: i32 = 4000;

fn turn(text: &str, tone_hz: f64, tone_ms: u32) -> AgentTurn {
    AgentTurn {
        text: text.into(),
        tone_hz,
        tone_ms,
        call_tool: None,
    }
}

async fn harness(model: SimRealtimeConfig) -> common::Harness {
    start(model, |c| c.api_key = Secret::new(API_KEY)).await
}

/// Waits until the call's local recording is finished and returns it.
async fn finished_recording(h: &common::Harness, sid: &str) -> RecordingRecord {
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    loop {
        let recs = h.running.services.recordings.for_call(sid).await;
        if let Ok(recs) = recs {
            if let Some(r) = recs
                .into_iter()
                .find(|r| r.source == "local" && r.status != "recording")
            {
                return r;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "recording of {sid} never finished"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn wav_path(h: &common::Harness, r: &RecordingRecord) -> PathBuf {
    h.data.path().join("recordings").join(&r.file_name)
}

/// `(caller, agent)` samples of a stereo recording.
fn channels(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).expect("a playable WAV");
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let s: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    (
        s.iter().step_by(2).copied().collect(),
        s.iter().skip(1).step_by(2).copied().collect(),
    )
}

fn ms(samples: usize) -> i64 {
    samples as i64 / 8
}

/// First loud sample at or after `from_ms`, in ms.
fn onset(ch: &[i16], from_ms: u64) -> Option<i64> {
    let from = (from_ms * 8) as usize;
    ch.get(from..)?
        .iter()
        .position(|s| (*s as i32).abs() > LOUD)
        .map(|i| ms(from + i))
}

/// End (ms) of the loud stretch starting at `from_ms`: the first 10 ms of quiet after it.
fn offset(ch: &[i16], from_ms: u64) -> i64 {
    let mut quiet = 0;
    let start = (from_ms * 8) as usize;
    for (i, s) in ch.iter().enumerate().skip(start) {
        if (*s as i32).abs() > LOUD {
            quiet = 0;
        } else {
            quiet += 1;
            if quiet == 80 {
                return ms(i + 1 - 80);
            }
        }
    }
    ms(ch.len())
}

fn loud_between(ch: &[i16], from_ms: u64, to_ms: u64) -> bool {
    let to = ((to_ms * 8) as usize).min(ch.len());
    let from = ((from_ms * 8) as usize).min(to);
    ch[from..to].iter().any(|s| (*s as i32).abs() > LOUD)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_land_where_they_were_played_and_cleared_audio_is_not_recorded() {
    let mut h = harness(SimRealtimeConfig {
        script: vec![
            turn("First answer.", 880.0, 800),
            turn("A long answer the caller interrupts.", 660.0, 4000),
            turn("Sorry, go on.", 880.0, 400),
        ],
        ..SimRealtimeConfig::default()
    })
    .await;
    let sid = call_sid();
    let steps = vec![
        CallerStep::Silence(400),
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 500,
        },
        CallerStep::WaitForAgentAudio {
            min_ms: 800,
            timeout: 10 * SECOND,
        },
        CallerStep::Silence(300),
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 400,
        },
        CallerStep::SpeakWhenAgentHasPlayed {
            after_ms: 1000,
            tone_hz: 300.0,
            ms: 400,
            timeout: 10 * SECOND,
        },
        CallerStep::WaitForAgentAudio {
            min_ms: 400,
            timeout: 10 * SECOND,
        },
        CallerStep::Silence(300),
        CallerStep::HangUp,
    ];
    let report: CallerReport = SimCall::place(h.caller(&sid), steps)
        .await
        .expect("call placed")
        .finish()
        .await;
    h.ended(&sid).await;
    assert_eq!(report.clears.len(), 1, "one barge-in: {:?}", report.clears);
    let rec = finished_recording(&h, &sid).await;
    assert_eq!(rec.status, "complete", "{rec:?}");
    let (caller, agent) = channels(&wav_path(&h, &rec));

    // One timeline: the file is as long as the stream the caller sent (20 ms per frame).
    let stream_ms = report.media_frames_sent as i64 * 20;
    assert!(
        (ms(caller.len()) - stream_ms).abs() <= 40,
        "file {} ms, stream {stream_ms} ms",
        ms(caller.len())
    );
    assert_eq!(rec.duration_ms, ms(caller.len()));

    // The caller's first tone starts at stream time 400 ms (its media timestamp).
    let c = onset(&caller, 0).expect("caller tone recorded");
    assert!(
        (c - 400).abs() <= 20,
        "caller onset at {c} ms, sent at 400 ms"
    );
    assert!((offset(&caller, 400) - 900).abs() <= 20);

    // Every stretch the caller heard is in the agent channel, where and as long as it played.
    assert!(
        report.heard_segments.len() >= 3,
        "{:?}",
        report
            .heard_segments
            .iter()
            .map(|s| (s.start_ms, s.end_ms))
            .collect::<Vec<_>>()
    );
    for seg in &report.heard_segments {
        let on = onset(&agent, seg.start_ms.saturating_sub(40)).expect("agent audio recorded");
        assert!(
            (on - seg.start_ms as i64).abs() <= 20,
            "agent onset at {on} ms, played at {} ms",
            seg.start_ms
        );
        let off = offset(&agent, seg.start_ms);
        eprintln!(
            "agent segment played {}–{} ms, recorded {on}–{off} ms",
            seg.start_ms, seg.end_ms
        );
        assert!(
            (off - seg.end_ms as i64).abs() <= 20,
            "agent audio ends at {off} ms, played until {} ms",
            seg.end_ms
        );
    }
    // The interrupted answer stops where `clear` cut it; what Twilio discarded is not in the file.
    let clear = report.clears[0];
    let cut = report
        .heard_segments
        .iter()
        .find(|s| s.end_ms <= clear + 1 && s.end_ms + 40 >= clear)
        .expect("segment cut by the clear");
    let off = offset(&agent, cut.start_ms);
    assert!(
        (off - clear as i64).abs() <= 20,
        "interrupted answer recorded until {off} ms, cleared at {clear} ms"
    );
    let next = report
        .heard_segments
        .iter()
        .find(|s| s.start_ms > clear)
        .expect("the answer after the barge-in");
    assert!(
        !loud_between(&agent, clear + 20, next.start_ms.saturating_sub(20)),
        "no discarded agent audio between the clear and the next answer"
    );
    // No cross-talk between channels: the agent's tones are not on the caller's side.
    assert!(
        !loud_between(&caller, cut.start_ms + 20, clear.saturating_sub(20))
            || clear - cut.start_ms < 60
    );

    // The library lists it with the call's numbers and the transcript with offsets into the file.
    let detail = h
        .running
        .services
        .recordings
        .get(rec.id)
        .await
        .expect("detail");
    assert_eq!(
        detail.recording.from_number.as_deref(),
        Some("+14155550100")
    );
    assert!(
        detail.transcript.iter().any(|t| t.interrupted),
        "{:?}",
        detail.transcript
    );
    for t in &detail.transcript {
        assert!(
            (t.offset_ms as i64) < rec.duration_ms,
            "offset {} inside the recording",
            t.offset_ms
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_streams_ranges_draws_peaks_searches_exports_and_deletes() {
    let mut h = harness(SimRealtimeConfig {
        script: vec![turn("Your parcel arrives tomorrow.", 880.0, 600)],
        caller_transcripts: vec!["where is my parcel".into()],
        ..SimRealtimeConfig::default()
    })
    .await;
    let sid = call_sid();
    let steps = vec![
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 500,
        },
        CallerStep::WaitForAgentAudio {
            min_ms: 600,
            timeout: 10 * SECOND,
        },
        CallerStep::HangUp,
    ];
    SimCall::place(h.caller(&sid), steps)
        .await
        .expect("call placed")
        .finish()
        .await;
    h.ended(&sid).await;
    let rec = finished_recording(&h, &sid).await;
    h.running.services.store.flush().await.expect("flush");
    let file = std::fs::read(wav_path(&h, &rec)).expect("file");
    let client = reqwest::Client::new();
    let get = |path: String| {
        client
            .get(format!("{}{path}", h.api))
            .header("X-API-Key", API_KEY)
    };

    // Whole file, then a range, a suffix range, and one past the end.
    let full = get(format!("/api/recording/{}/audio", rec.id))
        .send()
        .await
        .expect("audio");
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(full.headers()["content-type"], "audio/wav");
    assert_eq!(full.bytes().await.expect("body").as_ref(), &file[..]);
    let part = get(format!("/api/recording/{}/audio", rec.id))
        .header("Range", "bytes=44-1043")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 44-1043/{}", file.len()).as_str()
    );
    assert_eq!(part.bytes().await.expect("body").as_ref(), &file[44..1044]);
    let tail = get(format!("/api/recording/{}/audio", rec.id))
        .header("Range", "bytes=-4")
        .send()
        .await
        .expect("suffix");
    assert_eq!(
        tail.bytes().await.expect("body").as_ref(),
        &file[file.len() - 4..]
    );
    let past = get(format!("/api/recording/{}/audio", rec.id))
        .header("Range", format!("bytes={}-", file.len()))
        .send()
        .await
        .expect("past");
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // Waveform: loud where the tones are.
    let peaks: Value = get(format!("/api/recording/{}/peaks?buckets=50", rec.id))
        .send()
        .await
        .expect("peaks")
        .json()
        .await
        .expect("json");
    let buckets = peaks["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 50);
    assert!(
        buckets.iter().any(|b| b[0].as_f64().unwrap_or(0.0) > 0.3),
        "caller tone in the waveform"
    );
    assert!(
        buckets.iter().any(|b| b[1].as_f64().unwrap_or(0.0) > 0.3),
        "agent tone in the waveform"
    );
    let bad = get(format!("/api/recording/{}/peaks?buckets=0", rec.id))
        .send()
        .await
        .expect("peaks");
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Listing, paging and full-text search over the transcript.
    let listed: Vec<Value> = get("/api/recordings?q=parcel".into())
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["call_sid"], sid.as_str());
    let none: Vec<Value> = get("/api/recordings?q=zebra%20crossing".into())
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert!(none.is_empty());
    let by_call: Vec<Value> = get(format!("/api/call/{sid}/recordings"))
        .send()
        .await
        .expect("by call")
        .json()
        .await
        .expect("json");
    assert_eq!(by_call.len(), 1);
    let detail: Value = get(format!("/api/recording/{}", rec.id))
        .send()
        .await
        .expect("detail")
        .json()
        .await
        .expect("json");
    assert_eq!(detail["channels"], 2);
    assert!(detail["transcript"]
        .as_array()
        .is_some_and(|t| !t.is_empty()));

    // Where an export goes by default: a free `verbio-….wav` path in Downloads (else home).
    let suggested: Value = client
        .get(format!("{}/api/recording/{}/export", h.api, rec.id))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .expect("suggested path")
        .json()
        .await
        .expect("json");
    if let Some(path) = suggested["path"].as_str() {
        let path = Path::new(path);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(path.is_absolute() && !path.exists(), "{}", path.display());
        assert!(
            name.starts_with("verbio-") && name.ends_with(&format!("-{}.wav", rec.id)),
            "{name}"
        );
    } else {
        assert!(suggested["path"].is_null(), "{suggested}");
    }

    // Export to a chosen path; never over an existing file.
    let out = tempfile::tempdir().expect("dir");
    let dest = out.path().join("copy.wav");
    let export = |dest: &Path| {
        client
            .post(format!("{}/api/recording/{}/export", h.api, rec.id))
            .header("X-API-Key", API_KEY)
            .json(&serde_json::json!({"path": dest}))
    };
    assert_eq!(
        export(&dest).send().await.expect("export").status(),
        StatusCode::OK
    );
    assert_eq!(std::fs::read(&dest).expect("exported"), file);
    // Never over an existing file, and the refusal is the one a missing folder gets: an export must
    // not tell what exists on the disk.
    let again = export(&dest).send().await.expect("export");
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = again.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "invalid_value");
    let unusable = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(unusable.contains("existing folder"), "{unusable}");
    // Refused before anything is written: relative, `..`, not .wav, a network path; no such
    // directory and a file as the directory answer exactly as an existing file does.
    let not_a_dir = out.path().join("plain-file");
    std::fs::write(&not_a_dir, b"x").expect("file");
    for (bad, why) in [
        (PathBuf::from("relative.wav"), "must be absolute"),
        (out.path().join("sub/../up.wav"), "must not contain `..`"),
        (out.path().join("copy.mp3"), "must end in .wav"),
        (out.path().join("copy"), "must end in .wav"),
        (PathBuf::from(r"\\server\share\copy.wav"), "network path"),
        (PathBuf::from("//server/share/copy.wav"), "network path"),
        (out.path().join("missing/copy.wav"), unusable.as_str()),
        (not_a_dir.join("copy.wav"), unusable.as_str()),
    ] {
        std::fs::create_dir_all(out.path().join("sub")).expect("sub");
        let resp = export(&bad).send().await.expect("export");
        assert_eq!(
            resp.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            bad.display()
        );
        let body: Value = resp.json().await.expect("json error");
        assert_eq!(body["error"]["code"], "invalid_value");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{}: {message}", bad.display());
    }
    assert!(!out.path().join("up.wav").exists());
    assert!(!out.path().join("copy.mp3").exists());
    assert!(!out.path().join("missing").exists());

    // Delete: file and row gone.
    let del = client
        .delete(format!("{}/api/recording/{}", h.api, rec.id))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    assert!(!wav_path(&h, &rec).exists());
    assert_eq!(
        get(format!("/api/recording/{}", rec.id))
            .send()
            .await
            .expect("gone")
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_or_missing_files_are_clear_errors_and_recording_can_be_off() {
    let mut h = harness(SimRealtimeConfig::default()).await;
    let mut recs = Vec::new();
    for _ in 0..2 {
        let sid = call_sid();
        let steps = vec![
            CallerStep::Speak {
                tone_hz: 440.0,
                ms: 300,
            },
            CallerStep::HangUp,
        ];
        SimCall::place(h.caller(&sid), steps)
            .await
            .expect("call placed")
            .finish()
            .await;
        h.ended(&sid).await;
        recs.push(finished_recording(&h, &sid).await);
    }
    // One file garbled, one gone.
    std::fs::write(
        wav_path(&h, &recs[0]),
        b"RIFF\x24\0\0\0WAVEnot really a wav",
    )
    .expect("garble");
    std::fs::remove_file(wav_path(&h, &recs[1])).expect("remove");
    let client = reqwest::Client::new();
    for (rec, word) in [(&recs[0], "damaged"), (&recs[1], "missing")] {
        for what in ["audio", "peaks"] {
            let resp = client
                .get(format!("{}/api/recording/{}/{what}", h.api, rec.id))
                .header("X-API-Key", API_KEY)
                .send()
                .await
                .expect("request");
            assert_eq!(
                resp.status(),
                StatusCode::CONFLICT,
                "{what} of a {word} file"
            );
            let body: Value = resp.json().await.expect("json error");
            assert_eq!(body["error"]["code"], "recording_unreadable");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(word), "{message}");
        }
    }
    // Playing it is the same clear error (checked before any device is touched).
    let err = h
        .running
        .services
        .recordings
        .play(recs[0].id, None, Default::default())
        .await
        .expect_err("damaged");
    assert!(err.to_string().contains("damaged"), "{err}");
    // The library still works, and deleting a recording whose file is gone succeeds.
    h.running
        .services
        .recordings
        .delete(recs[1].id, false)
        .await
        .expect("delete without file");

    // Turned off globally: calls go on, nothing is written.
    let off = reqwest::Client::new()
        .put(format!("{}/api/settings/recording", h.api))
        .header("X-API-Key", API_KEY)
        .json(&serde_json::json!({"enabled": false}))
        .send()
        .await
        .expect("settings");
    assert_eq!(off.status(), StatusCode::OK);
    assert!(!h.running.services.recordings.settings().enabled);
    let sid = call_sid();
    let steps = vec![
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 300,
        },
        CallerStep::HangUp,
    ];
    SimCall::place(h.caller(&sid), steps)
        .await
        .expect("call placed")
        .finish()
        .await;
    h.ended(&sid).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h
        .running
        .services
        .recordings
        .for_call(&sid)
        .await
        .expect("list")
        .is_empty());
}

/// The call ended the ordinary way: the caller hung up, nothing failed, the caller's script ran.
/// Runs the call to its end, which must be normal (the agent heard for 600 ms or more) whatever happened
/// to its recording; returns the caller's report and the recording, which must be `incomplete`.
async fn a_normal_call_with_an_incomplete_recording(
    h: &mut common::Harness,
    sid: &str,
    steps: Vec<CallerStep>,
) -> (CallerReport, RecordingRecord) {
    let report = SimCall::place(h.caller(sid), steps)
        .await
        .expect("call placed")
        .finish()
        .await;
    let ended = h.ended(sid).await;
    assert_call_completed_normally(&ended, &report, 600);
    let rec = finished_recording(h, sid).await;
    assert_eq!(rec.status, "incomplete", "{rec:?}");
    (report, rec)
}

fn assert_call_completed_normally(ended: &CallEvent, report: &CallerReport, min_heard_ms: u64) {
    assert!(
        matches!(ended, CallEvent::CallEnded { failed: false, reason, .. } if reason == "caller hung up"),
        "{ended:?}"
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(!report.server_closed, "the bridge did not cut the call");
    assert!(
        report.heard_ms >= min_heard_ms,
        "the agent's answer was heard: {} ms",
        report.heard_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_disk_marks_the_recording_incomplete_and_the_call_goes_on() {
    // A one-slot queue, drained once per writer tick (100 ms): at most 10 pieces of audio a second
    // get through while the caller alone sends 50 frames a second, so most of them must be dropped on
    // any machine, however fast its disk.
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Hello.", 880.0, 600)],
            ..SimRealtimeConfig::default()
        },
        |c| c.recording.recorder.queue_len = 1,
    )
    .await;
    let sid = call_sid();
    let steps = vec![
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 1000,
        },
        CallerStep::WaitForAgentAudio {
            min_ms: 600,
            timeout: 10 * SECOND,
        },
        CallerStep::HangUp,
    ];
    let (report, rec) = a_normal_call_with_an_incomplete_recording(&mut h, &sid, steps).await;
    assert!(
        report.media_frames_sent >= 50,
        "{}",
        report.media_frames_sent
    );
    let note = rec.note.as_deref().unwrap_or_default();
    assert!(
        note.contains("audio were dropped because the disk could not keep up"),
        "{rec:?}"
    );
    let dropped: u64 = note
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("the note counts what was dropped");
    assert!(
        dropped * 2 >= report.media_frames_sent,
        "{dropped} of {} caller frames dropped",
        report.media_frames_sent
    );
    // What did get through is still a playable file.
    let (caller, _) = channels(&wav_path(&h, &rec));
    assert_eq!(rec.duration_ms, ms(caller.len()));
}

/// Set in the child process [`a_write_error_mid_call_marks_the_recording_incomplete_and_the_call_goes_on`]
/// starts under a file size limit.
const WRITE_ERROR_CHILD: &str = "VERBIO_TEST_WRITE_ERROR_CHILD";
/// The child's file size limit: far above the database and the first seconds of WAV, far below the
/// five minutes of silence one jumped timestamp makes the writer put on disk (≈ 9.6 MB).
const WRITE_ERROR_FSIZE: u64 = 2 * 1024 * 1024;

/// A disk that fails mid-call. Tests run as root (permission bits stop nothing) and the WAV is
/// opened when the call starts, so the failure comes from a file size limit (`RLIMIT_FSIZE`, set
/// with `prlimit`, `SIGXFSZ` ignored so the write returns `EFBIG`). The limit applies to the whole
/// process, so the scenario runs in a child process: this test binary again, with only this test.
#[test]
fn a_write_error_mid_call_marks_the_recording_incomplete_and_the_call_goes_on() {
    const NAME: &str = "a_write_error_mid_call_marks_the_recording_incomplete_and_the_call_goes_on";
    if std::env::var_os(WRITE_ERROR_CHILD).is_some() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(write_error_scenario());
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new("sh")
        .args(["-c", "trap '' XFSZ; exec \"$@\"", "sh", "prlimit"])
        .arg(format!("--fsize={WRITE_ERROR_FSIZE}"))
        .arg("--")
        .arg(exe)
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(WRITE_ERROR_CHILD, "1")
        .output()
        .expect("sh and prlimit (util-linux) run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child under a {WRITE_ERROR_FSIZE}-byte file size limit: {}\n{stdout}\n{stderr}",
        out.status
    );
}

async fn write_error_scenario() {
    let mut h = start(
        SimRealtimeConfig {
            script: vec![turn("Hello.", 880.0, 600)],
            ..SimRealtimeConfig::default()
        },
        |_| {},
    )
    .await;
    let sid = call_sid();
    // A caller frame stamped five minutes ahead (within what the writer accepts): the writer fills the
    // gap with silence and its next write runs into the size limit while the call goes on.
    let jump = serde_json::json!({
        "event": "media",
        "sequenceNumber": "100000",
        "streamSid": "MZ00000000000000000000000000000001",
        "media": {
            "track": "inbound",
            "chunk": "100000",
            "timestamp": "300000",
            "payload": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0xFFu8; 160]),
        }
    });
    let steps = vec![
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 500,
        },
        CallerStep::WaitForAgentAudio {
            min_ms: 600,
            timeout: 10 * SECOND,
        },
        CallerStep::Raw(jump.to_string()),
        CallerStep::Silence(800),
        CallerStep::HangUp,
    ];
    let (_, rec) = a_normal_call_with_an_incomplete_recording(&mut h, &sid, steps).await;
    eprintln!("after a write error: {rec:?}");
    let note = rec.note.as_deref().unwrap_or_default();
    assert!(
        note.starts_with("write to ") && note.contains("failed") && note.contains(&rec.file_name),
        "the reason names the failed write: {note}"
    );
    // Writing stopped at the error, with the header current: the file plays up to there.
    let path = wav_path(&h, &rec);
    assert!(std::fs::metadata(&path).expect("file").len() <= WRITE_ERROR_FSIZE);
    let (caller, _) = channels(&path);
    assert_eq!(rec.duration_ms, ms(caller.len()));
    assert!(
        rec.duration_ms >= 400 && rec.duration_ms < 300_000,
        "{rec:?}"
    );
    assert!(
        onset(&caller, 0).is_some(),
        "the caller's tone before the error is kept"
    );
    assert!(h.running.services.recordings.get(rec.id).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_still_being_written_cannot_be_exported() {
    let h = harness(SimRealtimeConfig::default()).await;
    let sid = call_sid();
    let steps = vec![
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 300,
        },
        CallerStep::Silence(20_000),
        CallerStep::HangUp,
    ];
    let call = SimCall::place(h.caller(&sid), steps)
        .await
        .expect("call placed");
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    let live = loop {
        let recs = h.running.services.recordings.for_call(&sid).await;
        if let Some(r) = recs
            .ok()
            .and_then(|r| r.into_iter().find(|r| r.source == "local"))
        {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recording started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(live.status, "recording");
    let out = tempfile::tempdir().expect("dir");
    let dest = out.path().join("live.wav");
    let resp = reqwest::Client::new()
        .post(format!("{}/api/recording/{}/export", h.api, live.id))
        .header("X-API-Key", API_KEY)
        .json(&serde_json::json!({"path": dest}))
        .send()
        .await
        .expect("export");
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let body: Value = resp.json().await.expect("json error");
    assert_eq!(body["error"]["code"], "still_recording");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("still being recorded"), "{message}");
    assert!(!dest.exists(), "nothing written");
    // The same refusal for the desktop's door.
    let err = h
        .running
        .services
        .recordings
        .export(live.id, &dest)
        .await
        .expect_err("live");
    assert!(err.to_string().contains("still being recorded"), "{err}");
    call.hang_up_now();
    call.finish().await;
    // Once the call has ended, the same export works.
    let done = finished_recording(&h, &sid).await;
    assert_eq!(done.id, live.id);
    let bytes = h
        .running
        .services
        .recordings
        .export(done.id, &dest)
        .await
        .expect("export after the call");
    assert_eq!(bytes, std::fs::metadata(&dest).expect("exported").len());
}

/// Starts a core on an existing data directory, as the app does at its next start.
async fn start_on(
    data: &Path,
    model: &verbio::sim::realtime_server::SimRealtimeServer,
) -> verbio::app::Running {
    let mut config = verbio::config::Config {
        port: 0,
        api_port: 0,
        data_dir: data.to_path_buf(),
        openai_api_key: Secret::new(common::OPENAI_KEY),
        realtime_url: model.url(),
        twilio_account_sid: ACCOUNT_SID.into(),
        twilio_auth_token: Secret::new(AUTH_TOKEN),
        api_key: Secret::new(API_KEY),
        ..verbio::config::Config::default()
    };
    config.telephony.api_base = "http://127.0.0.1:9".into();
    verbio::app::start(config).await.expect("core starts")
}

async fn put_recording_switch(base: &str, enabled: bool) -> Value {
    let resp = reqwest::Client::new()
        .put(format!("{base}/api/settings/recording"))
        .header("X-API-Key", API_KEY)
        .json(&serde_json::json!({ "enabled": enabled }))
        .send()
        .await
        .expect("settings");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("json")
}

async fn get_recording_switch(base: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}/api/settings/recording"))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .expect("settings")
        .json()
        .await
        .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recording_switch_survives_a_restart() {
    let h = harness(SimRealtimeConfig::default()).await;
    let common::Harness {
        model,
        running,
        data,
        ..
    } = h;
    assert!(
        running.services.recordings.settings().enabled,
        "on by default"
    );
    let api = format!("http://{}", running.api_addr);
    assert_eq!(
        put_recording_switch(&api, false).await,
        serde_json::json!({"enabled": false})
    );
    running.shutdown().await;

    // Next start: still off, and a call is not recorded.
    let running = start_on(data.path(), &model).await;
    let api = format!("http://{}", running.api_addr);
    assert!(
        !running.services.recordings.settings().enabled,
        "remembered off"
    );
    assert_eq!(
        get_recording_switch(&api).await,
        serde_json::json!({"enabled": false})
    );
    let sid = call_sid();
    let base = format!("http://{}", running.local_addr);
    let mut caller = verbio::sim::twilio_caller::CallerConfig::new(base.clone(), AUTH_TOKEN);
    caller.account_sid = ACCOUNT_SID.into();
    caller.call_sid = sid.clone();
    let steps = vec![
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 300,
        },
        CallerStep::HangUp,
    ];
    SimCall::place(caller, steps)
        .await
        .expect("call placed")
        .finish()
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.services.store.flush().await.expect("flush");
    let recs = running
        .services
        .recordings
        .for_call(&sid)
        .await
        .expect("the call is in the library");
    assert!(recs.is_empty(), "{recs:?}");

    // Turned back on: remembered on at the start after.
    put_recording_switch(&api, true).await;
    running.shutdown().await;
    let running = start_on(data.path(), &model).await;
    assert!(
        running.services.recordings.settings().enabled,
        "remembered on"
    );
    running.shutdown().await;
}

/// A stand-in for Twilio's media host: serves one WAV behind basic auth, records DELETEs.
async fn fake_twilio_media(
    wav: Vec<u8>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::extract::{Query, State};
    use axum::http::HeaderMap;
    use axum::routing::get;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let expected_auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{ACCOUNT_SID}:{AUTH_TOKEN}")
        )
    );
    let path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE0001");
    let state = (wav, expected_auth, seen.clone());
    type S = (
        Vec<u8>,
        String,
        std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    );
    let app = axum::Router::new()
        .route(
            &format!("{path}.wav"),
            get(
                |State((wav, auth, seen)): State<S>,
                 headers: HeaderMap,
                 Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some(auth.as_str())
                    {
                        return (axum::http::StatusCode::UNAUTHORIZED, Vec::new());
                    }
                    seen.lock().expect("lock").push(format!(
                        "GET channels={}",
                        q.get("RequestedChannels").cloned().unwrap_or_default()
                    ));
                    (axum::http::StatusCode::OK, wav)
                },
            ),
        )
        .route(
            &format!("{path}.json"),
            axum::routing::delete(
                |State((_, auth, seen)): State<S>, headers: HeaderMap| async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some(auth.as_str())
                    {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    seen.lock().expect("lock").push("DELETE".into());
                    axum::http::StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(state);
    (common::serve_on_loopback(app).await, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_recording_callback_downloads_the_dual_channel_copy() {
    let wav = small_wav();
    let (api_base, seen) = fake_twilio_media(wav.clone()).await;
    let h = start(SimRealtimeConfig::default(), |c| {
        c.api_key = Secret::new(API_KEY);
        c.telephony.api_base = api_base.clone();
        c.recording.delete_twilio_copy = true;
    })
    .await;
    let sid = call_sid();
    let url = format!("{}/twilio/recording-status", h.base);
    let params = [
        ("AccountSid", ACCOUNT_SID.to_string()),
        ("CallSid", sid.clone()),
        ("RecordingSid", "RE0001".to_string()),
        (
            "RecordingUrl",
            format!("{api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE0001"),
        ),
        ("RecordingStatus", "completed".to_string()),
        ("RecordingChannels", "2".to_string()),
        ("RecordingDuration", "1".to_string()),
    ];
    let client = reqwest::Client::new();
    // Unsigned: refused, nothing fetched.
    let refused = client.post(&url).form(&params).send().await.expect("post");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let sig = verbio::telephony::twilio::signature::compute(AUTH_TOKEN, &url, &params);
    let ok = client
        .post(&url)
        .header("X-Twilio-Signature", sig)
        .form(&params)
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);

    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    let rec = loop {
        if let Ok(recs) = h.running.services.recordings.for_call(&sid).await {
            if let Some(r) = recs.into_iter().find(|r| r.source == "twilio") {
                break r;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Twilio recording never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (rec.status.as_str(), rec.duration_ms, rec.channels),
        ("complete", 1000, 2)
    );
    assert_eq!(rec.twilio_sid.as_deref(), Some("RE0001"));
    assert_eq!(std::fs::read(wav_path(&h, &rec)).expect("saved"), wav);
    common::eventually(5 * SECOND, "Twilio copy deleted after download", || {
        seen.lock().expect("lock").len() == 2
    })
    .await;
    assert_eq!(*seen.lock().expect("lock"), ["GET channels=2", "DELETE"]);
    // The saved copy is a library recording like any other.
    let peaks = h
        .running
        .services
        .recordings
        .peaks(rec.id, 10)
        .await
        .expect("peaks");
    assert_eq!(peaks.duration_ms, 1000);
    // Deleting it from the library can delete Twilio's copy too (by its SID, under the API base).
    let del = client
        .delete(format!("{}/api/recording/{}?twilio=true", h.api, rec.id))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .expect("delete");
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        seen.lock().expect("lock").len(),
        3,
        "a second DELETE reached Twilio"
    );
    assert!(!wav_path(&h, &rec).exists());
}

/// Twilio's copy is saved with its final status in one go (never `recording`, which start-up repair
/// would take for a local recording cut off by a crash), dated by the callback's
/// `RecordingStartTime` (RFC 2822) or, without a usable one, by when it arrived; a restart leaves it
/// alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_copy_is_saved_final_dated_by_its_start_time_and_left_alone_by_repair() {
    let (api_base, _seen) = fake_twilio_media(small_wav()).await;
    let h = start(SimRealtimeConfig::default(), |c| {
        c.api_key = Secret::new(API_KEY);
        c.telephony.api_base = api_base.clone();
    })
    .await;
    let lib = h.running.services.recordings.clone();
    let recording_url = format!("{api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE0001");
    let cases = [
        (call_sid(), Some("Tue, 10 Jun 2025 18:05:12 +0000")),
        (call_sid(), Some("Tue, 10 Jun 2025 20:05:12 +0200")),
        (call_sid(), Some("not a date")),
        (call_sid(), None),
    ];
    let mut saved = Vec::new();
    for (sid, start_time) in &cases {
        // Everything the library shows for this call while the copy is saved.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (lib, sid, stop) = (lib.clone(), sid.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(recs) = lib.for_call(&sid).await {
                        seen.extend(recs.into_iter().map(|r| r.status));
                    }
                    tokio::task::yield_now().await;
                }
                seen
            })
        };
        let mut fields = serde_json::json!({
            "AccountSid": ACCOUNT_SID,
            "CallSid": sid,
            "RecordingSid": "RE0001",
            "RecordingUrl": recording_url,
            "RecordingStatus": "completed",
            "RecordingChannels": "2",
        });
        if let Some(t) = start_time {
            fields["RecordingStartTime"] = Value::String(t.to_string());
        }
        let status: verbio::recording::library::RecordingStatus =
            serde_json::from_value(fields).expect("callback fields");
        let before = verbio::types::now_ms();
        let id = lib
            .twilio_recording_ready(status)
            .await
            .expect("saved")
            .expect("an id");
        let after = verbio::types::now_ms();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let seen = watcher.await.expect("watcher");
        assert!(
            seen.iter().all(|s| s == "complete"),
            "{sid}: the library showed {seen:?}"
        );
        let rec = lib.get(id).await.expect("row").recording;
        assert_eq!(
            (rec.status.as_str(), rec.source.as_str(), rec.duration_ms),
            ("complete", "twilio", 1000)
        );
        match start_time {
            Some(t) if t.contains("Jun 2025") => {
                assert_eq!(rec.started_at_ms, 1_749_578_712_000, "{t}")
            }
            _ => assert!(
                (before..=after).contains(&rec.started_at_ms),
                "no usable start time: dated when it came ({before}..{after}, got {})",
                rec.started_at_ms
            ),
        }
        saved.push(rec);
    }
    // The next start's repair only touches rows still `recording`: these stay as they are.
    let common::Harness {
        model,
        running,
        data,
        ..
    } = h;
    drop(lib);
    running.services.store.flush().await.expect("flush");
    running.shutdown().await;
    let running = start_on(data.path(), &model).await;
    for rec in &saved {
        let again = running
            .services
            .recordings
            .get(rec.id)
            .await
            .expect("still there")
            .recording;
        assert_eq!(&again, rec);
    }
    running.shutdown().await;
}

/// The same cloud-recording flow with Prism as Twilio's REST API: the `.wav` is served by the test
/// (Twilio's media host, which the API description does not cover); the DELETE of Twilio's copy goes to
/// Prism, which checks it against Twilio's published description of `Recordings/{Sid}.json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_recording_download_and_delete_against_prism() {
    const RECORDING_SID: &str = "RE0123456789abcdef0123456789abcdef";
    let wav = small_wav();
    let tap = common::prism_tap().await;
    tap.serve_media(
        &format!("/Recordings/{RECORDING_SID}.wav"),
        "audio/x-wav",
        wav.clone(),
    );
    let api_base = tap.url();
    let h = start(SimRealtimeConfig::default(), |c| {
        c.telephony.api_base = api_base.clone();
        c.recording.delete_twilio_copy = true;
    })
    .await;
    let sid = call_sid();
    let path = "/twilio/recording-status";
    let recording_url =
        format!("{api_base}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}");
    let resp = common::post_signed_form(
        &h.base,
        path,
        &[
            ("AccountSid", ACCOUNT_SID),
            ("CallSid", sid.as_str()),
            ("RecordingSid", RECORDING_SID),
            ("RecordingUrl", recording_url.as_str()),
            ("RecordingStatus", "completed"),
            ("RecordingChannels", "2"),
            ("RecordingDuration", "1"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let deleted = tap
        .wait_for("delete at Twilio", 10 * SECOND, |r| r.method == "DELETE")
        .await
        .expect("Twilio's copy deleted after the download");
    assert_eq!(
        deleted.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}.json")
    );
    assert!(deleted.had_basic_auth);
    assert!(
        deleted.status < 300,
        "Prism accepted the DELETE: {}",
        deleted.status
    );
    let download = tap
        .requests()
        .into_iter()
        .find(|r| r.method == "GET")
        .expect("download");
    assert!(
        download.path.ends_with(".wav?RequestedChannels=2"),
        "{}",
        download.path
    );
    let recs = h
        .running
        .services
        .recordings
        .for_call(&sid)
        .await
        .expect("recordings");
    let rec = recs
        .iter()
        .find(|r| r.source == "twilio")
        .expect("Twilio copy in the library");
    assert_eq!(std::fs::read(wav_path(&h, rec)).expect("saved"), wav);
}

/// Where (ms) a tone of about `hz` first fills a 20 ms window at or after `from_ms`, found by counting
/// zero crossings (two per cycle), so a tone that follows another without a gap is found too.
fn tone_onset(ch: &[i16], hz: f64, from_ms: u64) -> Option<i64> {
    const WINDOW: usize = 160;
    let expected = 2.0 * hz * WINDOW as f64 / 8000.0;
    let mut at = (from_ms * 8) as usize;
    while at + WINDOW <= ch.len() {
        let window = &ch[at..at + WINDOW];
        let loud = window.iter().filter(|s| (**s as i32).abs() > LOUD).count();
        let crossings = window
            .windows(2)
            .filter(|p| (p[0] >= 0) != (p[1] >= 0))
            .count() as f64;
        if loud >= WINDOW / 4 && (crossings - expected).abs() <= 3.0 {
            return Some(ms(at));
        }
        at += 8;
    }
    None
}

/// The UI highlights the line being heard by `offset_ms`: each turn's offset must be where its audio
/// starts in the file, on the stream's clock — a caller turn where the caller started speaking (not
/// when the model's VAD said so, and not shifted by a reconnect that restarts the model's audio
/// counter), an agent turn where its audio started playing (not when it was sent, queued behind the
/// previous answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcript_offsets_are_where_each_turn_starts_in_the_recording() {
    const TOLERANCE_MS: i64 = 60;
    let mut h = start(
        SimRealtimeConfig {
            script: vec![
                turn("First answer.", 880.0, 1500),
                turn("Second answer.", 660.0, 600),
            ],
            // Each answer's audio arrives at once: the second is sent while the first still plays.
            speed_factor: f64::INFINITY,
            ..SimRealtimeConfig::default()
        },
        |c| {
            c.api_key = Secret::new(API_KEY);
            c.bridge.reconnect_attempts = 10;
        },
    )
    .await;
    let sid = call_sid();
    let call = SimCall::place(
        h.caller(&sid),
        vec![
            CallerStep::Silence(400),
            CallerStep::Speak {
                tone_hz: 440.0,
                ms: 500,
            },
            CallerStep::WaitForAgentAudio {
                min_ms: 300,
                timeout: 10 * SECOND,
            },
            // A key press asks for the second answer while the first is still playing.
            CallerStep::Dtmf('1'),
            CallerStep::WaitForAgentAudio {
                min_ms: 1700,
                timeout: 10 * SECOND,
            },
            CallerStep::Silence(1000),
            // Spoken while the model is unreachable: held, and sent to a new session later.
            CallerStep::Speak {
                tone_hz: 440.0,
                ms: 400,
            },
            CallerStep::WaitForAgentAudio {
                min_ms: 1400,
                timeout: 15 * SECOND,
            },
            CallerStep::Silence(300),
            CallerStep::HangUp,
        ],
    )
    .await
    .expect("call placed");
    // After the second answer (stream time ≈ 3.8 s, by the caller audio the model got), before the
    // caller speaks again: the model goes away for a while.
    common::eventually(15 * SECOND, "3.8 s of caller audio at the model", || {
        h.model
            .accepted_sessions()
            .first()
            .is_some_and(|s| s.appended_audio_bytes >= 3800 * 8)
    })
    .await;
    h.model.set_reject_connections(true);
    h.model.drop_all();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.model.set_reject_connections(false);
    let report = call.finish().await;
    h.ended(&sid).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.clears.len(), 0, "no barge-in: {:?}", report.clears);
    assert_eq!(h.model.accepted_sessions().len(), 2, "one reconnect");
    let rec = finished_recording(&h, &sid).await;
    assert_eq!(rec.status, "complete", "{rec:?}");
    let (caller, agent) = channels(&wav_path(&h, &rec));

    // Onsets in the file: the caller's two tones; the agent's three answers (the second follows the
    // first without a gap, so it is found by its pitch).
    let caller1 = onset(&caller, 0).expect("caller's first tone");
    let caller2 = onset(&caller, caller1 as u64 + 1000).expect("caller's second tone");
    let agent1 = onset(&agent, 0).expect("first answer");
    let agent2 = tone_onset(&agent, 660.0, agent1 as u64).expect("second answer");
    let agent3 = onset(&agent, caller2 as u64).expect("answer after the reconnect");
    assert!(
        (caller1 - 400).abs() <= 20,
        "caller's tone at {caller1} ms, sent at 400 ms"
    );
    assert!(
        agent2 - agent1 >= 1400,
        "the second answer played after the first ({agent1} ms, {agent2} ms)"
    );

    let detail = h
        .running
        .services
        .recordings
        .get(rec.id)
        .await
        .expect("detail");
    // In the order they were heard (input transcripts arrive after the answer; the library orders
    // by position, as the window shows them).
    let mut turns = detail.transcript.clone();
    turns.sort_by_key(|t| (t.offset_ms, t.id));
    let spoken: Vec<_> = turns
        .iter()
        .filter(|t| !t.text.starts_with("[caller pressed"))
        .collect();
    let got: Vec<_> = spoken
        .iter()
        .map(|t| (t.speaker, t.text.as_str(), t.offset_ms))
        .collect();
    assert_eq!(spoken.len(), 5, "{got:?}");
    let expected = [
        (Speaker::Caller, caller1),
        (Speaker::Agent, agent1),
        (Speaker::Agent, agent2),
        (Speaker::Caller, caller2),
        (Speaker::Agent, agent3),
    ];
    let mut worst = 0;
    for (t, (speaker, at)) in spoken.iter().zip(expected) {
        let error = t.offset_ms as i64 - at;
        eprintln!(
            "{:?} {:?}: offset {} ms, onset in the file {at} ms, error {error} ms",
            t.speaker, t.text, t.offset_ms
        );
        assert_eq!(t.speaker, speaker, "{got:?}");
        worst = worst.max(error.abs());
    }
    assert!(
        worst <= TOLERANCE_MS,
        "a turn's offset is {worst} ms from where it starts in the recording: {got:?}"
    );
}

/// Places one inbound simulated call (speak, hang up) and returns how it ended.
async fn short_inbound_call(h: &mut common::Harness, sid: &str) -> CallEvent {
    let steps = vec![
        CallerStep::Speak {
            tone_hz: 440.0,
            ms: 300,
        },
        CallerStep::HangUp,
    ];
    SimCall::place(h.caller(sid), steps)
        .await
        .expect("call placed")
        .finish()
        .await;
    h.ended(sid).await
}

/// `[recording] twilio_inbound`: an inbound call's stream start asks Twilio (Prism, through the tap)
/// for exactly one dual-channel recording whose status comes back to the recording callback; a refused
/// start leaves the call alone; with the option off nothing is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_calls_start_a_twilio_recording_when_asked_to() {
    let tap = common::prism_tap().await;
    let api_base = tap.url();
    let recording_starts = |sid: &str| {
        let path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}/Recordings.json");
        tap.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/Recordings.json"))
            .inspect(|r| assert_eq!(r.path, path, "a recording of another call"))
            .collect::<Vec<_>>()
    };

    let mut h = start(SimRealtimeConfig::default(), |c| {
        c.telephony.api_base = api_base.clone();
        c.recording.twilio_inbound = true;
    })
    .await;
    let sid = call_sid();
    let ended = short_inbound_call(&mut h, &sid).await;
    assert!(
        matches!(ended, CallEvent::CallEnded { failed: false, .. }),
        "{ended:?}"
    );
    tap.wait_for("the recording start", 10 * SECOND, |r| {
        r.path.ends_with("/Recordings.json")
    })
    .await
    .expect("the inbound call asked Twilio to record it");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let starts = recording_starts(&sid);
    assert_eq!(starts.len(), 1, "exactly one recording: {starts:#?}");
    let request = &starts[0];
    assert_eq!(request.method, "POST");
    assert!(request.had_basic_auth);
    assert!(
        (200..300).contains(&request.status),
        "Prism accepted the request as Twilio's API describes it: {request:?}"
    );
    assert_eq!(request.field("RecordingChannels"), Some("dual"));
    // Untrimmed, so the cloud copy keeps the transcript's offsets.
    assert_eq!(request.field("Trim"), Some("do-not-trim"));
    assert_eq!(
        request.field("RecordingStatusCallback"),
        Some(format!("{}/twilio/recording-status", h.base).as_str())
    );
    assert_eq!(request.field("RecordingStatusCallbackMethod"), Some("POST"));
    assert_eq!(
        request.fields("RecordingStatusCallbackEvent"),
        ["completed"]
    );

    // Twilio refuses the recording: the call goes on and ends as usual, and the start is not repeated.
    tap.fail_next("/Recordings.json", 500, 20500, "Internal error");
    let refused = call_sid();
    let ended = short_inbound_call(&mut h, &refused).await;
    assert!(
        matches!(&ended, CallEvent::CallEnded { failed: false, reason, .. } if reason == "caller hung up"),
        "{ended:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tries: Vec<u16> = tap
        .requests()
        .iter()
        .filter(|r| {
            r.path
                .contains(&format!("/Calls/{refused}/Recordings.json"))
        })
        .map(|r| r.status)
        .collect();
    assert_eq!(tries, [500]);
    drop(h);

    // Off (the default): no recording is asked for.
    let mut h = start(SimRealtimeConfig::default(), |c| {
        c.telephony.api_base = api_base.clone();
    })
    .await;
    assert!(!h.running.services.config.recording.twilio_inbound);
    let off = call_sid();
    let ended = short_inbound_call(&mut h, &off).await;
    assert!(
        matches!(ended, CallEvent::CallEnded { failed: false, .. }),
        "{ended:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        tap.requests()
            .iter()
            .all(|r| !r.path.contains(&format!("/Calls/{off}/"))),
        "no request about the call reached Twilio"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_callbacks_and_hsts_follow_the_live_public_url() {
    // The public URL changes at run time (a tunnel's new address, or one the user sets): the recording
    // callback is checked against it like every other Twilio route, and HSTS follows it.
    let h = start(SimRealtimeConfig::default(), |c| {
        c.api_key = Secret::new(API_KEY);
    })
    .await;
    let health = reqwest::get(format!("{}/healthz", h.base))
        .await
        .expect("health");
    assert!(
        health.headers().get("strict-transport-security").is_none(),
        "no HSTS without an https public URL"
    );
    const PUBLIC: &str = "https://verbio-live.example";
    let set = reqwest::Client::new()
        .put(format!("{}/api/settings/public-url", h.api))
        .header("X-API-Key", API_KEY)
        .json(&serde_json::json!({ "url": PUBLIC }))
        .send()
        .await
        .expect("set public URL");
    assert_eq!(set.status(), StatusCode::OK);
    let health = reqwest::get(format!("{}/healthz", h.base))
        .await
        .expect("health");
    assert!(
        health.headers().get("strict-transport-security").is_some(),
        "HSTS once the live public URL is https"
    );
    let sid = call_sid();
    let params = [
        ("AccountSid", ACCOUNT_SID),
        ("CallSid", sid.as_str()),
        ("RecordingSid", "RE0123456789abcdef0123456789abcdef"),
        ("RecordingStatus", "failed"),
    ];
    let path = "/twilio/recording-status";
    // Signed for the address Twilio was given: accepted.
    let live = common::post_form_signed_for(&h.base, PUBLIC, path, &params).await;
    // (It gets past the signature check; the callback itself lacks a RecordingUrl, which is a 400.)
    assert_eq!(
        live.status(),
        StatusCode::BAD_REQUEST,
        "signed for the live URL"
    );
    // Signed for the local address (what the start-up config implied): refused.
    let local = common::post_form_signed_for(&h.base, &h.base, path, &params).await;
    assert_eq!(local.status(), StatusCode::FORBIDDEN);
}
