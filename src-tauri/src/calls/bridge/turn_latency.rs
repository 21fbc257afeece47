//! Turn latency as the caller hears it: from the end of the caller's speech (the server's
//! `speech_stopped` `audio_end_ms`, placed on the stream) to the moment the first audio of the answer
//! started playing at Twilio (the play start of its first chunk, from that chunk's mark echo), split
//! into the endpointing wait (speech end → `speech_stopped` arrives), the model (→ the first audio
//! delta) and the bridge with Twilio's playout (→ heard). Pure: the call's task feeds it stream times.

use crate::types::StreamUs;

/// One answered turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnMeasure {
    /// Where the caller stopped speaking, on the stream (ms).
    pub speech_end_ms: u64,
    pub total_ms: u64,
    pub endpointing_ms: u64,
    pub model_ms: u64,
    pub playout_ms: u64,
}

#[derive(Debug, Clone)]
struct Waiting {
    speech_end_us: StreamUs,
    stopped_us: StreamUs,
    /// The first answer audio: when its delta arrived, and its chunk's mark.
    first: Option<(StreamUs, String)>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct TurnLatency {
    waiting: Option<Waiting>,
}

impl TurnLatency {
    pub fn new() -> Self {
        Self::default()
    }

    /// The server says the caller's turn ended at `speech_end_us` (stream time); it said so at `now_us`.
    pub fn on_speech_stopped(&mut self, speech_end_us: StreamUs, now_us: StreamUs) {
        self.waiting = Some(Waiting {
            speech_end_us: speech_end_us.min(now_us),
            stopped_us: now_us,
            first: None,
        });
    }

    /// The caller speaks again (or the operator took the call): no answer to measure.
    pub fn on_speech_started(&mut self) {
        self.waiting = None;
    }

    /// Agent audio went to Twilio at `now_us` with `mark` after it: the first after the turn ended
    /// starts the answer.
    pub fn on_agent_audio(&mut self, mark: &str, now_us: StreamUs) {
        if let Some(w) = &mut self.waiting {
            if w.first.is_none() {
                w.first = Some((now_us, mark.to_string()));
            }
        }
    }

    /// Whether `mark` is the one that ends the turn being measured (most echoes are not: the call asks
    /// this before it looks up where a chunk started).
    pub fn awaits(&self, mark: &str) -> bool {
        self.waiting
            .as_ref()
            .and_then(|w| w.first.as_ref())
            .is_some_and(|(_, first)| first == mark)
    }

    /// Twilio echoed `mark`, whose chunk started playing at `started_us`: the measure, if that chunk
    /// began the answer.
    pub fn on_played(&mut self, mark: &str, started_us: StreamUs) -> Option<TurnMeasure> {
        let w = self.waiting.as_ref()?;
        let (first_us, first_mark) = w.first.as_ref()?;
        if first_mark != mark {
            return None;
        }
        let heard_us = started_us.max(*first_us);
        let measure = TurnMeasure {
            speech_end_ms: w.speech_end_us / 1000,
            total_ms: heard_us.saturating_sub(w.speech_end_us) / 1000,
            endpointing_ms: w.stopped_us.saturating_sub(w.speech_end_us) / 1000,
            model_ms: first_us.saturating_sub(w.stopped_us) / 1000,
            playout_ms: heard_us.saturating_sub(*first_us) / 1000,
        };
        self.waiting = None;
        Some(measure)
    }

    /// A `clear` dropped queued audio: an answer cut before it was heard is not measured.
    pub fn on_cleared(&mut self) {
        if self.waiting.as_ref().is_some_and(|w| w.first.is_some()) {
            self.waiting = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_splits_into_endpointing_model_and_playout() {
        let mut t = TurnLatency::new();
        // Speech ended at 10.0 s; the VAD said so at 10.5 s; the first delta came at 11.1 s and
        // started playing at 11.25 s.
        t.on_speech_stopped(10_000_000, 10_500_000);
        t.on_agent_audio("v7", 11_100_000);
        t.on_agent_audio("v8", 11_140_000);
        assert!(t.awaits("v7") && !t.awaits("v8"));
        assert_eq!(
            t.on_played("v6", 9_000_000),
            None,
            "an earlier answer's mark"
        );
        let m = t.on_played("v7", 11_250_000).expect("measured");
        assert_eq!(
            m,
            TurnMeasure {
                speech_end_ms: 10_000,
                total_ms: 1_250,
                endpointing_ms: 500,
                model_ms: 600,
                playout_ms: 150,
            }
        );
        assert_eq!(t.on_played("v8", 11_300_000), None, "once per turn");
    }

    #[test]
    fn speech_again_or_a_cut_answer_is_not_measured() {
        let mut t = TurnLatency::new();
        t.on_speech_stopped(1_000_000, 1_400_000);
        t.on_speech_started();
        t.on_agent_audio("v1", 2_000_000);
        assert_eq!(t.on_played("v1", 2_100_000), None);
        t.on_speech_stopped(3_000_000, 3_400_000);
        t.on_agent_audio("v2", 3_900_000);
        t.on_cleared();
        assert_eq!(t.on_played("v2", 4_000_000), None);
        // A clear before any answer audio keeps waiting (the answer may still come).
        t.on_speech_stopped(5_000_000, 5_400_000);
        t.on_cleared();
        t.on_agent_audio("v3", 5_900_000);
        assert_eq!(
            t.on_played("v3", 6_000_000).map(|m| m.total_ms),
            Some(1_000)
        );
    }
}
