//! Where an exported recording goes: the checks a destination must pass, and the file name and folder
//! the window suggests (the user's Downloads folder, else home, with a name that says which call it was).

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::store::calls::CallRecord;
use crate::store::recordings::RecordingRecord;
use crate::store::summaries::SummaryRecord;
use crate::store::TranscriptRecord;

/// What an export writes beside the `.wav` (as `<same name>.json`): the call as the library knows it,
/// so the recording can be read without the app.
#[derive(Debug, Serialize)]
pub struct Sidecar<'a> {
    /// The sidecar's format; raised when a field changes meaning.
    pub format: &'static str,
    pub recording: &'a RecordingRecord,
    pub call: Option<&'a CallRecord>,
    pub transcript: Vec<SidecarLine<'a>>,
    pub summary: Option<&'a SummaryRecord>,
}

/// One transcript line in the sidecar.
#[derive(Debug, Serialize)]
pub struct SidecarLine<'a> {
    pub speaker: crate::types::Speaker,
    pub text: &'a str,
    /// Milliseconds from the start of the call's stream (and of the recording).
    pub offset_ms: u64,
    pub interrupted: bool,
}

/// The sidecar of `recording`.
pub fn sidecar<'a>(
    recording: &'a RecordingRecord,
    call: Option<&'a CallRecord>,
    transcript: &'a [TranscriptRecord],
    summary: Option<&'a SummaryRecord>,
) -> Sidecar<'a> {
    Sidecar {
        format: "verbio.call.v1",
        recording,
        call,
        transcript: transcript
            .iter()
            .map(|l| SidecarLine {
                speaker: l.speaker,
                text: &l.text,
                offset_ms: l.offset_ms,
                interrupted: l.interrupted,
            })
            .collect(),
        summary,
    }
}

/// Why a destination cannot be used. Only what the path itself says: whether anything exists there is
/// found out by creating the file, and told in one message whatever the reason (see
/// [`UNUSABLE_DESTINATION`]), so an export cannot be used to probe the disk.
pub fn destination_problem(dest: &Path) -> Option<&'static str> {
    if is_network_path(dest) {
        // Writing there would make Windows connect to the server (and send the user's credentials).
        return Some("must be on this computer, not a network path (\\\\server\\share)");
    }
    if !dest.is_absolute() {
        return Some("must be absolute");
    }
    if dest.components().any(|c| c == Component::ParentDir) {
        return Some("must not contain `..`");
    }
    if !dest
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
        || dest.file_stem().is_none()
    {
        return Some("must end in .wav");
    }
    if dest.parent().is_none() {
        return Some("needs a directory");
    }
    None
}

/// What an export says when its destination cannot be created, whether the folder is missing, the
/// file exists or writing is not allowed: one answer, so the error does not tell what is on the disk.
pub const UNUSABLE_DESTINATION: &str =
    "cannot be written: choose a new .wav file name in an existing folder you can write to";

/// A UNC or device path (`\\server\share\…`, `//server/share/…`, `\\?\UNC\…`, `\\.\…`): two
/// separators at the start, either kind, on every platform (the check must not depend on where the
/// app runs).
fn is_network_path(dest: &Path) -> bool {
    let text = dest.to_string_lossy();
    let mut start = text.chars().take(2);
    let sep = |c: Option<char>| matches!(c, Some('\\' | '/'));
    sep(start.next()) && sep(start.next())
}

/// `verbio-<other party>-<UTC start, YYYY-MM-DD_HHMMSS>-<id>.wav`, e.g.
/// `verbio-14155550100-2026-12-01_193002-7.wav`: sortable, and only characters every file system takes.
pub fn file_name(r: &RecordingRecord) -> String {
    let outbound = r
        .direction
        .as_deref()
        .is_some_and(|d| d.starts_with("outbound"));
    let other = if outbound {
        r.to_number.as_deref()
    } else {
        r.from_number.as_deref()
    };
    let party: String = other
        .unwrap_or("call")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(32)
        .collect();
    let party = if party.is_empty() {
        "call".into()
    } else {
        party
    };
    format!("verbio-{party}-{}-{}.wav", utc_stamp(r.started_at_ms), r.id)
}

/// A path in `dir` for `name` that does not exist yet (`name`, then `name-2`, `name-3`, …).
pub fn free_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let stem = name.strip_suffix(".wav").unwrap_or(name);
    (2..1000)
        .map(|n| dir.join(format!("{stem}-{n}.wav")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// The folder exports go to by default: Downloads, else the home folder.
pub fn default_folder() -> Option<PathBuf> {
    let dirs = directories::UserDirs::new()?;
    Some(
        dirs.download_dir()
            .filter(|d| d.is_dir())
            .unwrap_or_else(|| dirs.home_dir())
            .to_path_buf(),
    )
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD_HHMMSS` (UTC; before 1970 reads as 1970).
fn utc_stamp(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}_{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(direction: &str, from: &str, to: &str, started_at_ms: i64) -> RecordingRecord {
        RecordingRecord {
            id: 7,
            call_sid: "CA1".into(),
            source: "local".into(),
            file_name: "CA1-1.wav".into(),
            status: "complete".into(),
            note: None,
            started_at_ms,
            duration_ms: 1000,
            channels: 2,
            sample_rate: 8000,
            size_bytes: 44,
            twilio_sid: None,
            direction: Some(direction.into()),
            from_number: Some(from.into()),
            to_number: Some(to.into()),
        }
    }

    #[test]
    fn names_say_who_and_when() {
        // 2026-12-01T19:30:02.500Z
        let at = 1_796_153_402_500;
        assert_eq!(
            file_name(&record("inbound", "+1 415 555 0100", "+15005550006", at)),
            "verbio-14155550100-2026-12-01_193002-7.wav"
        );
        assert_eq!(
            file_name(&record("outbound-api", "+15005550006", "+442071838750", 0)),
            "verbio-442071838750-1970-01-01_000000-7.wav"
        );
        assert_eq!(
            file_name(&record("inbound", "../../etc", "", 951_782_400_000)),
            "verbio-etc-2000-02-29_000000-7.wav",
            "a leap day; nothing but letters and digits from the number"
        );
    }

    #[test]
    fn free_path_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let first = free_path(dir.path(), "a.wav");
        assert_eq!(first, dir.path().join("a.wav"));
        std::fs::write(&first, b"x").unwrap();
        assert_eq!(free_path(dir.path(), "a.wav"), dir.path().join("a-2.wav"));
    }

    #[test]
    fn destinations_are_checked() {
        assert_eq!(
            destination_problem(Path::new("a.wav")),
            Some("must be absolute")
        );
        assert_eq!(
            destination_problem(Path::new("/tmp/../etc/a.wav")),
            Some("must not contain `..`")
        );
        assert_eq!(
            destination_problem(Path::new("/tmp/a.mp3")),
            Some("must end in .wav")
        );
        assert_eq!(destination_problem(Path::new("/tmp/a.WAV")), None);
    }

    #[test]
    fn network_paths_are_refused_on_every_platform() {
        for unc in [
            r"\\server\share\a.wav",
            "//server/share/a.wav",
            r"\\?\UNC\server\share\a.wav",
            r"\\.\pipe\a.wav",
            r"\/server/share/a.wav",
        ] {
            assert_eq!(
                destination_problem(Path::new(unc)),
                Some("must be on this computer, not a network path (\\\\server\\share)"),
                "{unc}"
            );
        }
        assert_eq!(destination_problem(Path::new("/srv/share/a.wav")), None);
    }
}
