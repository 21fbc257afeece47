//! What the caller has actually heard of the agent's audio.
//!
//! Each chunk sent to Twilio is followed by a named `mark`; Twilio echoes the mark once the audio
//! before it has played. Echoed marks give exact "played up to here" points; inside the chunk that is
//! playing now, the position is interpolated from the moment it started (the later of its send time and
//! the previous echo) at 8 bytes per ms, and never beyond what was sent. This is what
//! `conversation.item.truncate` needs on barge-in: audio heard, not wall-clock time since sending.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::telephony::twilio::media::BYTES_PER_MS;

#[derive(Debug, Clone)]
struct Chunk {
    mark: u64,
    /// Sequence number of the item the chunk belongs to.
    item_seq: u64,
    bytes: u64,
    sent_at: Instant,
}

#[derive(Debug, Clone)]
struct ItemAudio {
    seq: u64,
    item_id: String,
    /// The model session the item belongs to: an item of an earlier session cannot be truncated.
    session: u64,
    sent_bytes: u64,
    played_bytes: u64,
}

/// A barge-in cut: truncate `item_id` at `audio_end_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    pub item_id: String,
    pub audio_end_ms: u64,
    /// Audio of the item that was sent to Twilio, in ms (`audio_end_ms` never exceeds it).
    pub sent_ms: u64,
}

/// What an echoed mark meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkOutcome {
    /// Audio up to this mark has played.
    Played,
    /// An echo for audio that a `clear` already dropped: expected, nothing to do.
    Cleared,
    /// A name this call never sent.
    Unknown,
}

/// Per-call playout tracker. Pure bookkeeping: the caller passes the clock in.
///
/// Several items can be queued at Twilio at once (a short answer, then the next response's first
/// chunks), so a barge-in cuts every one of them at what was heard of it, not only the newest.
#[derive(Debug, Default)]
pub struct Playout {
    next_mark: u64,
    /// Marks at or below this were dropped by a `clear`.
    cleared_through: Option<u64>,
    pending: VecDeque<Chunk>,
    last_echo_at: Option<Instant>,
    /// Items with audio not yet confirmed played, oldest first; the last one is the newest item
    /// (kept while the model may still be adding to it).
    items: VecDeque<ItemAudio>,
    next_item_seq: u64,
    session: u64,
}

const MARK_PREFIX: &str = "v";

impl Playout {
    pub fn new() -> Self {
        Self::default()
    }

    /// A new model session took over: items sent so far belong to the old one and are never
    /// truncated in the new one (it does not know them).
    pub fn new_session(&mut self) {
        self.session += 1;
    }

    /// Records `bytes` of `item_id` audio sent to Twilio at `now`; returns the mark name to send after it.
    pub fn on_sent(&mut self, item_id: &str, bytes: usize, now: Instant) -> String {
        let item_seq = match self.items.back_mut() {
            Some(item) if item.item_id == item_id && item.session == self.session => {
                item.sent_bytes += bytes as u64;
                item.seq
            }
            _ => {
                self.next_item_seq += 1;
                self.items.push_back(ItemAudio {
                    seq: self.next_item_seq,
                    item_id: item_id.to_string(),
                    session: self.session,
                    sent_bytes: bytes as u64,
                    played_bytes: 0,
                });
                self.next_item_seq
            }
        };
        self.next_mark += 1;
        self.pending.push_back(Chunk {
            mark: self.next_mark,
            item_seq,
            bytes: bytes as u64,
            sent_at: now,
        });
        format!("{MARK_PREFIX}{}", self.next_mark)
    }

    /// Applies a mark echo from Twilio.
    pub fn on_mark(&mut self, name: &str, now: Instant) -> MarkOutcome {
        let Some(mark) = name
            .strip_prefix(MARK_PREFIX)
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return MarkOutcome::Unknown;
        };
        if mark == 0 || mark > self.next_mark {
            return MarkOutcome::Unknown;
        }
        if self.cleared_through.is_some_and(|c| mark <= c) {
            return MarkOutcome::Cleared;
        }
        if !self.pending.iter().any(|c| c.mark == mark) {
            // Already accounted for (a later mark arrived first); harmless.
            return MarkOutcome::Played;
        }
        // Marks echo in order, so everything up to this one has played.
        while let Some(chunk) = self.pending.pop_front() {
            if let Some(item) = self.items.iter_mut().find(|i| i.seq == chunk.item_seq) {
                item.played_bytes = (item.played_bytes + chunk.bytes).min(item.sent_bytes);
            }
            if chunk.mark == mark {
                break;
            }
        }
        // Fully played items are done, except the newest (the model may still add to it).
        while self.items.len() > 1
            && self
                .items
                .front()
                .is_some_and(|i| i.played_bytes >= i.sent_bytes)
        {
            self.items.pop_front();
        }
        self.last_echo_at = Some(now);
        MarkOutcome::Played
    }

    /// Bytes of `item` heard at `now`: confirmed by echoes, plus the part of the chunk playing now.
    fn heard_bytes(&self, item: &ItemAudio, now: Instant) -> u64 {
        let mut heard = item.played_bytes;
        if let Some(chunk) = self.pending.front().filter(|c| c.item_seq == item.seq) {
            let started = match self.last_echo_at {
                Some(echo) if echo > chunk.sent_at => echo,
                _ => chunk.sent_at,
            };
            let elapsed_ms = now.saturating_duration_since(started).as_millis() as u64;
            heard += (elapsed_ms * BYTES_PER_MS).min(chunk.bytes);
        }
        heard.min(item.sent_bytes)
    }

    /// How much of the newest item the caller has heard at `now`: `(item_id, bytes heard, bytes sent)`.
    pub fn heard(&self, now: Instant) -> Option<(&str, u64, u64)> {
        let item = self.items.back()?;
        Some((
            item.item_id.as_str(),
            self.heard_bytes(item, now),
            item.sent_bytes,
        ))
    }

    /// Audio still queued at Twilio (sent but not confirmed played), estimated at `now`.
    pub fn unplayed(&self, now: Instant) -> Duration {
        let queued: u64 = self.pending.iter().map(|c| c.bytes).sum();
        let in_progress = self
            .pending
            .front()
            .and_then(|c| self.items.iter().find(|i| i.seq == c.item_seq))
            .map_or(0, |item| {
                self.heard_bytes(item, now)
                    .saturating_sub(item.played_bytes)
            });
        Duration::from_millis(queued.saturating_sub(in_progress) / BYTES_PER_MS)
    }

    /// When audio sent at `now` starts to play: once the audio queued before it has played. Each queued
    /// chunk plays from the later of its send time and the end of the one before it (the first one: the
    /// later of its send time and the last echo), so this is the later of `now` and the queue's end.
    pub fn play_start(&self, now: Instant) -> Instant {
        let mut end = self.last_echo_at;
        for chunk in &self.pending {
            let start = match end {
                Some(end) if end > chunk.sent_at => end,
                _ => chunk.sent_at,
            };
            end = Some(start + Duration::from_micros(chunk.bytes * 1000 / BYTES_PER_MS));
        }
        match end {
            Some(end) if end > now => end,
            _ => now,
        }
    }

    /// True when every chunk sent has been confirmed played.
    pub fn is_drained(&self) -> bool {
        self.pending.is_empty()
    }

    /// The caller barged in at `now`: forget queued audio (the bridge sends `clear`) and say where to cut
    /// each item of the current session that was not heard in full, oldest first. `response_active`
    /// means the model may still be producing the newest item, so it is cut even if everything sent so
    /// far has played.
    pub fn interrupt(&mut self, now: Instant, response_active: bool) -> Vec<Truncation> {
        let newest = self.items.back().map(|i| i.seq);
        let cuts = self
            .items
            .iter()
            .filter(|item| item.session == self.session)
            .filter_map(|item| {
                let heard = self.heard_bytes(item, now);
                let still_streaming = response_active && Some(item.seq) == newest;
                (heard < item.sent_bytes || still_streaming).then(|| Truncation {
                    item_id: item.item_id.clone(),
                    audio_end_ms: heard / BYTES_PER_MS,
                    sent_ms: item.sent_bytes / BYTES_PER_MS,
                })
            })
            .collect();
        if !self.pending.is_empty() {
            self.cleared_through = Some(self.next_mark);
        }
        self.pending.clear();
        self.items.clear();
        cuts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn heard_follows_marks_and_interpolates_inside_a_chunk() {
        let t0 = Instant::now();
        let mut p = Playout::new();
        // Three 100 ms chunks sent at once (the model streams faster than real time).
        let m1 = p.on_sent("item_a", 800, t0);
        let _m2 = p.on_sent("item_a", 800, t0);
        let _m3 = p.on_sent("item_a", 800, t0);
        assert_eq!(p.heard(t0 + ms(40)).unwrap().1, 320);
        // First echo arrives late (the caller's playout started 30 ms after we sent).
        assert_eq!(p.on_mark(&m1, t0 + ms(130)), MarkOutcome::Played);
        assert_eq!(p.heard(t0 + ms(130)).unwrap().1, 800);
        // 50 ms into the second chunk, measured from the echo, not from sending.
        assert_eq!(p.heard(t0 + ms(180)).unwrap().1, 1200);
        // Never more than sent.
        assert_eq!(p.heard(t0 + ms(5000)).unwrap().1, 1600);
        let cut = p.interrupt(t0 + ms(180), false);
        assert_eq!(
            cut,
            vec![Truncation {
                item_id: "item_a".into(),
                audio_end_ms: 150,
                sent_ms: 300
            }]
        );
        assert!(p.is_drained());
    }

    #[test]
    fn cleared_and_unknown_marks() {
        let t0 = Instant::now();
        let mut p = Playout::new();
        let m1 = p.on_sent("a", 160, t0);
        p.interrupt(t0, true);
        assert_eq!(p.on_mark(&m1, t0), MarkOutcome::Cleared);
        assert_eq!(p.on_mark("v99", t0), MarkOutcome::Unknown);
        assert_eq!(p.on_mark("hello", t0), MarkOutcome::Unknown);
    }

    #[test]
    fn fully_played_item_is_not_cut_unless_still_streaming() {
        let t0 = Instant::now();
        let mut p = Playout::new();
        let m = p.on_sent("a", 160, t0);
        p.on_mark(&m, t0 + ms(20));
        assert_eq!(p.interrupt(t0 + ms(30), false), vec![]);
        let m = p.on_sent("b", 160, t0 + ms(40));
        p.on_mark(&m, t0 + ms(60));
        let cut = p.interrupt(t0 + ms(70), true);
        assert_eq!(cut.len(), 1);
        assert_eq!((cut[0].audio_end_ms, cut[0].sent_ms), (20, 20));
    }

    #[test]
    fn audio_sent_now_plays_after_the_audio_queued_before_it() {
        let t0 = Instant::now();
        let mut p = Playout::new();
        assert_eq!(p.play_start(t0), t0);
        // Two 100 ms chunks at t0, one more 250 ms later (after the first two have played).
        let m1 = p.on_sent("a", 800, t0);
        p.on_sent("a", 800, t0);
        assert_eq!(p.play_start(t0 + ms(50)), t0 + ms(200));
        // The first echo came late: the second chunk plays from it.
        p.on_mark(&m1, t0 + ms(130));
        assert_eq!(p.play_start(t0 + ms(150)), t0 + ms(230));
        p.on_sent("a", 800, t0 + ms(250));
        assert_eq!(p.play_start(t0 + ms(260)), t0 + ms(350));
        // Nothing queued any more (its echo is overdue): audio sent now plays now.
        assert_eq!(p.play_start(t0 + ms(400)), t0 + ms(400));
        p.interrupt(t0 + ms(300), false);
        assert_eq!(p.play_start(t0 + ms(300)), t0 + ms(300));
    }

    #[test]
    fn a_new_item_starts_counting_from_zero() {
        let t0 = Instant::now();
        let mut p = Playout::new();
        p.on_sent("a", 800, t0);
        p.on_sent("b", 800, t0 + ms(10));
        // Item b's chunk waits behind a's unplayed chunk: nothing of b heard yet.
        let (id, heard, sent) = p.heard(t0 + ms(50)).unwrap();
        assert_eq!((id, heard, sent), ("b", 0, 800));
        // 50 ms of a have played: 150 ms of the 200 queued are left.
        assert_eq!(p.unplayed(t0 + ms(50)), ms(150));
    }

    #[test]
    fn a_barge_in_cuts_every_item_still_queued() {
        let t0 = Instant::now();
        let mut p = Playout::new();
        // A short answer (a), then the next response's first chunk (b) queued behind it.
        let m1 = p.on_sent("a", 800, t0);
        p.on_sent("a", 800, t0);
        p.on_sent("b", 800, t0 + ms(10));
        p.on_mark(&m1, t0 + ms(100));
        let cuts = p.interrupt(t0 + ms(150), true);
        assert_eq!(
            cuts,
            vec![
                Truncation {
                    item_id: "a".into(),
                    audio_end_ms: 150,
                    sent_ms: 200
                },
                Truncation {
                    item_id: "b".into(),
                    audio_end_ms: 0,
                    sent_ms: 100
                },
            ]
        );
    }

    #[test]
    fn items_of_an_earlier_session_are_not_truncated() {
        let t0 = Instant::now();
        let mut p = Playout::new();
        p.on_sent("old", 800, t0);
        p.new_session();
        p.on_sent("new", 800, t0 + ms(5));
        let cuts = p.interrupt(t0 + ms(50), true);
        assert_eq!(cuts.len(), 1);
        assert_eq!(cuts[0].item_id, "new");
        assert_eq!(cuts[0].audio_end_ms, 0);
        // A session change with nothing of the new one sent: nothing to cut, but Twilio still clears.
        p.on_sent("old2", 800, t0 + ms(60));
        p.new_session();
        assert!(p.interrupt(t0 + ms(70), false).is_empty());
    }
}
