//! The call's transcript: turns in the order they were *heard*, not the order events arrived.
//!
//! Input transcription can arrive after the agent's answer to that very turn, so turns are placed by
//! their position on the stream (a caller turn where the model heard speech start, an agent turn where
//! its audio started playing). An agent turn the caller cut short keeps only the words they heard,
//! estimated from the share of the item's audio that played. The same ordered list seeds a replacement
//! model session, so a reconnected agent never sees an answer before its question or words the caller
//! never heard; with transcription off, caller turns are seeded as placeholders. Pure state.

use std::collections::HashMap;

use crate::realtime::events::Role;
use crate::telephony::twilio::media::BYTES_PER_MS;
use crate::types::Speaker;

/// Seed text for a caller turn whose words are unknown (transcription off or failed).
pub const UNTRANSCRIBED: &str = "[the caller spoke here; their words were not transcribed]";

/// The newest turns a call keeps in memory: enough to seed a replacement session. The library has
/// every turn (each is stored as it ends), so a long call's memory stays flat.
pub const KEPT_TURNS: usize = 200;

/// One finished turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub speaker: Speaker,
    pub text: String,
    /// Where the turn starts on the stream (the recording's timeline), ms.
    pub offset_ms: u64,
    /// An agent turn the caller talked over.
    pub interrupted: bool,
    /// A caller turn whose words are unknown: seeded, never shown as a transcript line.
    pub placeholder: bool,
}

#[derive(Debug, Default)]
struct AgentItem {
    offset_ms: u64,
    /// Audio of the item received from the model (including deltas dropped after a barge-in), bytes.
    audio_bytes: u64,
    /// Set when the item was truncated: what the caller heard.
    heard_ms: Option<u64>,
    text: String,
}

/// A call's transcript.
#[derive(Debug)]
pub struct Transcript {
    turns: Vec<Turn>,
    agent: HashMap<String, AgentItem>,
    /// Caller items seen by the VAD, with where their speech started.
    caller: HashMap<String, u64>,
    transcription: bool,
}

impl Transcript {
    /// `transcription`: whether the session transcribes the caller (if not, caller turns are placeholders).
    pub fn new(transcription: bool) -> Self {
        Transcript {
            turns: Vec::new(),
            agent: HashMap::new(),
            caller: HashMap::new(),
            transcription,
        }
    }

    /// The session stopped transcribing the caller (its transcription was refused).
    pub fn set_transcription(&mut self, on: bool) {
        self.transcription = on;
    }

    /// The newest turns (at most [`KEPT_TURNS`]), in stream order.
    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    /// Agent audio for `item_id`; `offset_ms` (where it starts playing) is asked for only on the
    /// item's first delta, as this runs for every chunk.
    pub fn agent_audio(&mut self, item_id: &str, bytes: usize, offset_ms: impl FnOnce() -> u64) {
        match self.agent.get_mut(item_id) {
            Some(item) => item.audio_bytes += bytes as u64,
            None => {
                self.agent.insert(
                    item_id.to_string(),
                    AgentItem {
                        offset_ms: offset_ms(),
                        audio_bytes: bytes as u64,
                        ..AgentItem::default()
                    },
                );
            }
        }
    }

    /// Whether the item has audio (its offset is known).
    pub fn has_agent_item(&self, item_id: &str) -> bool {
        self.agent.contains_key(item_id)
    }

    pub fn agent_text_delta(&mut self, item_id: &str, delta: &str, now_ms: u64) {
        self.agent
            .entry(item_id.to_string())
            .or_insert_with(|| AgentItem {
                offset_ms: now_ms,
                ..AgentItem::default()
            })
            .text
            .push_str(delta);
    }

    /// The caller heard `heard_ms` of the item before cutting it off.
    pub fn agent_truncated(&mut self, item_id: &str, heard_ms: u64) {
        if let Some(item) = self.agent.get_mut(item_id) {
            item.heard_ms = Some(heard_ms);
        }
    }

    /// The item's full transcript (`output_audio_transcript.done`): its turn, if anything was heard.
    pub fn agent_done(&mut self, item_id: &str, transcript: String, now_ms: u64) -> Option<Turn> {
        let item = self.agent.remove(item_id).unwrap_or(AgentItem {
            offset_ms: now_ms,
            ..AgentItem::default()
        });
        self.finish_agent(item, transcript)
    }

    /// The response ended: items that never got their transcript's `done` (cut by a barge-in) become
    /// turns with the words streamed, cut to what was heard.
    pub fn response_done(&mut self) -> Vec<Turn> {
        let mut items: Vec<AgentItem> = self.agent.drain().map(|(_, item)| item).collect();
        items.sort_by_key(|i| i.offset_ms);
        items
            .into_iter()
            .filter_map(|mut item| {
                let text = std::mem::take(&mut item.text);
                self.finish_agent(item, text)
            })
            .collect()
    }

    fn finish_agent(&mut self, item: AgentItem, text: String) -> Option<Turn> {
        let (text, interrupted) = match item.heard_ms {
            Some(heard) => (
                heard_words(&text, heard, item.audio_bytes / BYTES_PER_MS),
                true,
            ),
            None => (text, false),
        };
        self.insert(Turn {
            speaker: Speaker::Agent,
            text,
            offset_ms: item.offset_ms,
            interrupted,
            placeholder: false,
        })
    }

    /// The VAD heard the caller start a turn at `offset_ms`.
    pub fn caller_started(&mut self, item_id: String, offset_ms: u64) {
        self.caller.insert(item_id, offset_ms);
    }

    /// The caller's turn ended. Without transcription its words will never come: a placeholder keeps
    /// its place for seeding.
    pub fn caller_stopped(&mut self, item_id: Option<&str>, now_ms: u64) {
        if self.transcription {
            return;
        }
        let offset = item_id
            .and_then(|id| self.caller.remove(id))
            .unwrap_or(now_ms);
        self.insert_placeholder(offset);
    }

    /// The caller's words for a turn.
    pub fn caller_text(&mut self, item_id: &str, text: String, now_ms: u64) -> Option<Turn> {
        let offset = self.caller.remove(item_id).unwrap_or(now_ms);
        self.insert(Turn {
            speaker: Speaker::Caller,
            text,
            offset_ms: offset,
            interrupted: false,
            placeholder: false,
        })
    }

    /// Transcription of a turn failed: keep its place.
    pub fn caller_failed(&mut self, item_id: &str, now_ms: u64) {
        let offset = self.caller.remove(item_id).unwrap_or(now_ms);
        self.insert_placeholder(offset);
    }

    /// A line the bridge itself adds (a key press).
    pub fn note(&mut self, speaker: Speaker, text: String, offset_ms: u64) -> Option<Turn> {
        self.insert(Turn {
            speaker,
            text,
            offset_ms,
            interrupted: false,
            placeholder: false,
        })
    }

    fn insert_placeholder(&mut self, offset_ms: u64) {
        self.insert(Turn {
            speaker: Speaker::Caller,
            text: UNTRANSCRIBED.into(),
            offset_ms,
            interrupted: false,
            placeholder: true,
        });
    }

    /// Places a turn by its offset (after turns at the same offset); empty text is no turn.
    fn insert(&mut self, turn: Turn) -> Option<Turn> {
        if turn.text.trim().is_empty() {
            return None;
        }
        let at = self
            .turns
            .partition_point(|t| t.offset_ms <= turn.offset_ms);
        self.turns.insert(at, turn.clone());
        if let Some(excess) = self.turns.len().checked_sub(KEPT_TURNS) {
            self.turns.drain(..excess);
        }
        Some(turn)
    }

    /// The newest `max` turns as conversation items for a fresh session, in stream order: the operator's
    /// turns were said on the agent's side of the line; a whisper stays a note for the model, and so
    /// does a tool's result (the function call itself cannot be carried over).
    pub fn seeds(&self, max: usize) -> Vec<(Role, String)> {
        let skip = self.turns.len().saturating_sub(max);
        self.turns[skip..]
            .iter()
            .map(|t| match t.speaker {
                Speaker::Caller => (Role::User, t.text.clone()),
                Speaker::Agent | Speaker::Operator => (Role::Assistant, t.text.clone()),
                Speaker::Whisper => (Role::System, super::operator::whisper_note(&t.text)),
                Speaker::Tool => (
                    Role::System,
                    format!("Earlier in this call you used a tool: {}", t.text),
                ),
            })
            .collect()
    }
}

/// The words of `text` the caller heard: the share `heard_ms / audio_ms` of its words (speech runs at
/// a roughly even rate through an item), rounded to whole words.
pub fn heard_words(text: &str, heard_ms: u64, audio_ms: u64) -> String {
    if audio_ms == 0 || heard_ms >= audio_ms {
        return if audio_ms == 0 && heard_ms == 0 {
            String::new()
        } else {
            text.to_string()
        };
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let keep = ((words.len() as u64 * heard_ms + audio_ms / 2) / audio_ms) as usize;
    words[..keep.min(words.len())].join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_caller_transcript_lands_before_the_answer_it_caused() {
        let mut t = Transcript::new(true);
        t.caller_started("u1".into(), 1_000);
        t.agent_audio("a1", 8_000, || 2_500);
        t.agent_text_delta("a1", "Sure, ", 2_600);
        assert!(t
            .agent_done("a1", "Sure, it is open.".into(), 3_000)
            .is_some());
        // The caller's words arrive after the answer.
        let turn = t
            .caller_text("u1", "Is the shop open?".into(), 3_500)
            .unwrap();
        assert_eq!(turn.offset_ms, 1_000);
        assert_eq!(
            t.seeds(10),
            vec![
                (Role::User, "Is the shop open?".to_string()),
                (Role::Assistant, "Sure, it is open.".to_string())
            ]
        );
    }

    #[test]
    fn an_interrupted_turn_keeps_only_what_was_heard() {
        let mut t = Transcript::new(true);
        // 2 s of audio for ten words; the caller heard 1 s.
        t.agent_audio("a1", 16_000, || 500);
        t.agent_text_delta(
            "a1",
            "one two three four five six seven eight nine ten",
            600,
        );
        t.agent_truncated("a1", 1_000);
        let turns = t.response_done();
        assert_eq!(turns.len(), 1);
        assert_eq!(turns[0].text, "one two three four five");
        assert!(turns[0].interrupted);
        // Cut before anything played: no turn at all.
        t.agent_audio("a2", 8_000, || 3_000);
        t.agent_text_delta("a2", "never heard", 3_000);
        t.agent_truncated("a2", 0);
        assert!(t.response_done().is_empty());
        assert_eq!(
            t.seeds(10),
            vec![(Role::Assistant, "one two three four five".to_string())]
        );
    }

    #[test]
    fn whispers_and_tool_lines_are_seeded_as_notes_for_the_model() {
        let mut t = Transcript::new(true);
        t.note(Speaker::Whisper, "offer 10 %".into(), 100);
        t.note(Speaker::Tool, "lookup_order {} → ok".into(), 200);
        t.note(
            Speaker::Operator,
            "(the operator spoke for 4 s)".into(),
            300,
        );
        let seeds = t.seeds(10);
        assert_eq!(seeds[0].0, Role::System);
        assert!(seeds[0].1.ends_with("offer 10 %") && seeds[0].1.contains("operator"));
        assert_eq!(seeds[1].0, Role::System);
        assert!(seeds[1].1.ends_with("lookup_order {} → ok"));
        assert_eq!(
            seeds[2],
            (Role::Assistant, "(the operator spoke for 4 s)".to_string())
        );
    }

    #[test]
    fn without_transcription_caller_turns_are_seeded_as_placeholders() {
        let mut t = Transcript::new(false);
        t.caller_started("u1".into(), 100);
        t.caller_stopped(Some("u1"), 900);
        t.agent_audio("a1", 800, || 1_200);
        t.agent_done("a1", "Hello!".into(), 1_300);
        let seeds = t.seeds(10);
        assert_eq!(
            seeds,
            vec![
                (Role::User, UNTRANSCRIBED.to_string()),
                (Role::Assistant, "Hello!".to_string())
            ]
        );
        assert!(t.turns()[0].placeholder);
    }

    #[test]
    fn seeds_keep_the_newest_turns() {
        let mut t = Transcript::new(true);
        for i in 0..5u64 {
            t.note(Speaker::Caller, format!("[caller pressed {i}]"), i * 10);
        }
        let seeds = t.seeds(2);
        assert_eq!(seeds.len(), 2);
        assert_eq!(seeds[1].1, "[caller pressed 4]");
    }

    #[test]
    fn a_long_call_keeps_only_the_newest_turns_in_memory() {
        let mut t = Transcript::new(true);
        for i in 0..(3 * KEPT_TURNS as u64) {
            t.note(Speaker::Caller, format!("turn {i}"), i * 10);
        }
        assert_eq!(t.turns().len(), KEPT_TURNS);
        let newest = 3 * KEPT_TURNS as u64 - 1;
        assert_eq!(t.turns()[KEPT_TURNS - 1].text, format!("turn {newest}"));
        assert_eq!(
            t.turns()[0].text,
            format!("turn {}", newest + 1 - KEPT_TURNS as u64)
        );
        // A late turn is still placed by its offset among the kept ones.
        t.note(Speaker::Agent, "late".into(), (newest - 1) * 10 + 5);
        assert_eq!(t.turns().len(), KEPT_TURNS);
        assert_eq!(t.turns()[KEPT_TURNS - 2].text, "late");
        assert_eq!(t.seeds(KEPT_TURNS).len(), KEPT_TURNS);
    }

    #[test]
    fn heard_words_rounds_to_whole_words() {
        assert_eq!(heard_words("a b c d", 500, 1000), "a b");
        assert_eq!(heard_words("a b c d", 1000, 1000), "a b c d");
        assert_eq!(heard_words("a b c d", 0, 1000), "");
        assert_eq!(heard_words("", 10, 0), "");
    }
}
