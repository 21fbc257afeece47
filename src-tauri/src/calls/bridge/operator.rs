//! The operator's hold on a call: where their microphone frames play on the call's timeline, where their
//! turns begin and end, and what the model is told when the call comes back to it. Pure state; the
//! call's task does the sending.
//!
//! While the operator holds a call the model keeps listening (its turn detection neither creates nor
//! interrupts responses), so caller transcripts go on, and nothing of the model reaches the caller.
//! The operator's turns are found with a simple level gate on their own frames (the microphone is
//! theirs alone, so no echo of the caller confuses it).

use std::time::Duration;

use crate::audio::mulaw;
use crate::types::StreamUs;

/// One Twilio frame: 20 ms of μ-law.
pub const FRAME_US: StreamUs = 20_000;
/// A frame this loud (peak, of full scale) or louder is the operator speaking: about -36 dBFS, well
/// above a quiet room through a headset, well below speech.
const SPEECH_PEAK: i32 = 520;
/// This much quiet ends an operator turn.
const TURN_END_QUIET_US: StreamUs = 700_000;
/// Shorter bursts (a cough, a click) are not turns.
const MIN_TURN_US: StreamUs = 300_000;
/// Operator frames are never placed further ahead of "now" than this: a burst of late frames from the
/// device then plays right away instead of drifting behind (Twilio plays what it has, in order).
const MAX_AHEAD_US: StreamUs = 200_000;

/// A stretch the operator spoke, on the stream's timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorTurn {
    pub offset_ms: u64,
    pub duration_ms: u64,
}

impl OperatorTurn {
    /// The transcript's line for a turn whose words were not transcribed.
    pub fn note(&self) -> String {
        format!(
            "(the operator spoke for {})",
            describe_duration(self.duration_ms)
        )
    }
}

/// The operator holds the call.
#[derive(Debug)]
pub struct Hold {
    device: String,
    started_us: StreamUs,
    /// Where the next frame plays: right after the previous one, never behind "now".
    cursor_us: StreamUs,
    /// The turn being spoken: (start, last loud frame's end).
    speaking: Option<(StreamUs, StreamUs)>,
    turns: Vec<OperatorTurn>,
    frames: u64,
}

impl Hold {
    pub fn new(device: String, now_us: StreamUs) -> Self {
        Hold {
            device,
            started_us: now_us,
            cursor_us: now_us,
            speaking: None,
            turns: Vec::new(),
            frames: 0,
        }
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    pub fn started_us(&self) -> StreamUs {
        self.started_us
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn turns(&self) -> &[OperatorTurn] {
        &self.turns
    }

    /// An operator frame arrives at `now_us`: where it plays on the stream, and the turn it ended, if
    /// any.
    pub fn on_frame(&mut self, frame: &[u8], now_us: StreamUs) -> (StreamUs, Option<OperatorTurn>) {
        let ahead_limit = now_us + MAX_AHEAD_US;
        let at = self.cursor_us.max(now_us).min(ahead_limit);
        let length = frame.len() as u64 * 1000 / 8;
        self.cursor_us = at + length;
        self.frames += 1;
        let loud = frame
            .iter()
            .any(|&b| i32::from(mulaw::decode(b)).abs() >= SPEECH_PEAK);
        let ended = match (&mut self.speaking, loud) {
            (Some((_, last)), true) => {
                *last = at + length;
                None
            }
            (None, true) => {
                self.speaking = Some((at, at + length));
                None
            }
            (Some((_, last)), false) if at.saturating_sub(*last) >= TURN_END_QUIET_US => {
                self.close_turn()
            }
            _ => None,
        };
        (at, ended)
    }

    fn close_turn(&mut self) -> Option<OperatorTurn> {
        let (start, end) = self.speaking.take()?;
        if end - start < MIN_TURN_US {
            return None;
        }
        let turn = OperatorTurn {
            offset_ms: start / 1000,
            duration_ms: (end - start) / 1000,
        };
        self.turns.push(turn);
        Some(turn)
    }

    /// The operator hands the call back (or it ends): the turn being spoken, if any.
    pub fn finish(&mut self) -> Option<OperatorTurn> {
        self.close_turn()
    }

    /// How long the operator has held the call at `now_us`.
    pub fn held_for(&self, now_us: StreamUs) -> Duration {
        Duration::from_micros(now_us.saturating_sub(self.started_us))
    }
}

/// The `system` item a whisper becomes: a note from the person supervising the call, which the
/// caller never hears.
pub fn whisper_note(text: &str) -> String {
    format!(
        "Private instruction from the human operator supervising this call (the caller cannot hear \
         this; do not read it out or mention it): {text}"
    )
}

/// The instructions of a "say this now" response: the persona's own, and the line to say.
pub fn say_now_instructions(persona: &str, line: &str) -> String {
    format!(
        "{persona}\n\nThe human operator supervising this call asks you to say this to the caller now, \
         in your own words and voice, keeping your persona: {line}"
    )
}

/// The `system` item that tells the model a human handled part of the call.
pub fn hand_back_note(held: Duration, turns: usize) -> String {
    let spoke = match turns {
        0 => "did not say anything the caller heard as a turn".to_string(),
        1 => "spoke to the caller once".to_string(),
        n => format!("spoke to the caller {n} times"),
    };
    format!(
        "A human operator took over this call for {} and {spoke}; their turns appear above as \
         assistant messages. The call is yours again: continue helping the caller from where the \
         conversation stands, without repeating what was already said and without commenting on the \
         hand-over unless the caller asks.",
        describe_duration(held.as_millis() as u64)
    )
}

/// `4 s`, `1 min 20 s`.
fn describe_duration(ms: u64) -> String {
    let secs = (ms + 500) / 1000;
    match secs {
        0 => "less than a second".to_string(),
        1..=59 => format!("{secs} s"),
        _ if secs.is_multiple_of(60) => format!("{} min", secs / 60),
        _ => format!("{} min {} s", secs / 60, secs % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: [u8; 160] = [0xFF; 160];

    fn loud() -> Vec<u8> {
        mulaw::tone(440.0, 20, 0.5)
    }

    #[test]
    fn frames_play_back_to_back_and_never_behind_now() {
        let mut hold = Hold::new("Mic".into(), 1_000_000);
        // Two frames arriving together play one after the other.
        assert_eq!(hold.on_frame(&QUIET, 1_000_000).0, 1_000_000);
        assert_eq!(hold.on_frame(&QUIET, 1_000_000).0, 1_020_000);
        // A stall: the next frame plays now, not in the past.
        assert_eq!(hold.on_frame(&QUIET, 2_000_000).0, 2_000_000);
        // A burst far ahead is capped near now.
        for _ in 0..50 {
            hold.on_frame(&QUIET, 2_000_000);
        }
        assert!(hold.on_frame(&QUIET, 2_000_000).0 <= 2_000_000 + MAX_AHEAD_US);
        assert_eq!(hold.frames(), 54);
    }

    #[test]
    fn a_turn_is_speech_closed_by_quiet() {
        let mut hold = Hold::new("Mic".into(), 0);
        let mut now = 0;
        let mut ended = Vec::new();
        let mut feed = |hold: &mut Hold, frame: &[u8], n: usize, ended: &mut Vec<OperatorTurn>| {
            for _ in 0..n {
                if let (_, Some(turn)) = hold.on_frame(frame, now) {
                    ended.push(turn);
                }
                now += FRAME_US;
            }
        };
        feed(&mut hold, &QUIET, 10, &mut ended); // 200 ms of quiet
        feed(&mut hold, &loud(), 75, &mut ended); // 1.5 s of speech
        feed(&mut hold, &QUIET, 40, &mut ended); // 800 ms: ends the turn
        assert_eq!(
            ended,
            vec![OperatorTurn {
                offset_ms: 200,
                duration_ms: 1_500
            }]
        );
        // A click is not a turn; speech still going at the hand-back is one.
        feed(&mut hold, &loud(), 5, &mut ended);
        feed(&mut hold, &QUIET, 40, &mut ended);
        feed(&mut hold, &loud(), 50, &mut ended);
        assert_eq!(ended.len(), 1);
        let last = hold.finish().expect("the turn under way");
        assert_eq!(last.duration_ms, 1_000);
        assert_eq!(hold.turns().len(), 2);
        assert_eq!(hold.finish(), None);
    }

    #[test]
    fn notes_say_what_happened() {
        assert_eq!(
            OperatorTurn {
                offset_ms: 0,
                duration_ms: 4_200
            }
            .note(),
            "(the operator spoke for 4 s)"
        );
        let note = hand_back_note(Duration::from_secs(80), 2);
        assert!(
            note.contains("1 min 20 s") && note.contains("2 times"),
            "{note}"
        );
        assert!(whisper_note("offer 10 %").ends_with("offer 10 %"));
        let say = say_now_instructions("You are Ava.", "We are open until 6.");
        assert!(say.starts_with("You are Ava.") && say.ends_with("We are open until 6."));
        assert_eq!(describe_duration(300), "less than a second");
        assert_eq!(describe_duration(120_000), "2 min");
    }
}
