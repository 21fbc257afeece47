//! The call's one playout model: where on the stream's timeline the agent's audio plays, and so what the
//! caller has heard of it. Barge-in truncation, the recording's agent channel, listen-in and the
//! transcript's agent offsets all read it, so they cannot disagree.
//!
//! Each chunk sent to Twilio is followed by a named `mark`; Twilio echoes the mark once the audio before
//! it has played. Twilio plays its queue back to back, so a chunk plays from the later of its send time
//! and the end of the audio before it; an echo places the chunks it confirms to end at the echo (or right
//! after the audio before them, if they were queued behind it — echo jitter must not open a gap). Between
//! echoes, what is playing is interpolated at 8 bytes per ms and never beyond what was sent. All times
//! are stream time ([`StreamUs`], see [`super::timeline`]); the caller passes the clock in.

use std::collections::VecDeque;
use std::time::Duration;

use crate::telephony::twilio::media::BYTES_PER_MS;
use crate::types::StreamUs;

/// Stream time `bytes` of μ-law take to play.
fn bytes_us(bytes: u64) -> u64 {
    bytes * 1000 / BYTES_PER_MS
}

/// Whole bytes that play in `us`.
fn us_bytes(us: u64) -> u64 {
    us * BYTES_PER_MS / 1000
}

#[derive(Debug, Clone)]
struct Chunk {
    mark: u64,
    /// Sequence number of the item the chunk belongs to.
    item_seq: u64,
    bytes: u64,
    sent_us: StreamUs,
    /// The μ-law itself, kept only while a recording wants the agent's audio placed.
    audio: Option<Vec<u8>>,
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

/// Agent audio that played, at its place on the stream's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub start_us: StreamUs,
    /// μ-law bytes (8 per ms).
    pub audio: Vec<u8>,
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

/// Per-call playout. Pure bookkeeping.
///
/// Several items can be queued at Twilio at once (a short answer, then the next response's first
/// chunks), so a barge-in cuts every one of them at what was heard of it, not only the newest.
#[derive(Debug, Default)]
pub struct Playout {
    next_mark: u64,
    /// Marks at or below this were dropped by a `clear`.
    cleared_through: Option<u64>,
    pending: VecDeque<Chunk>,
    /// End of the agent audio known to have played (placed by an echo, or heard before a clear).
    played_until: Option<StreamUs>,
    /// Items with audio not yet confirmed played, oldest first; the last one is the newest item
    /// (kept while the model may still be adding to it).
    items: VecDeque<ItemAudio>,
    next_item_seq: u64,
    session: u64,
    /// Where the most recently echoed chunks started playing, by mark (for turn latency as heard).
    recent_starts: VecDeque<(u64, StreamUs)>,
}

/// Chunk play starts kept for [`Playout::started_at`].
const RECENT_STARTS: usize = 32;

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

    /// Records `bytes` of `item_id` audio sent to Twilio at `now`; returns the mark name to send after
    /// it. `audio` is the μ-law itself when a recording wants the played audio back ([`Placed`]).
    pub fn on_sent(
        &mut self,
        item_id: &str,
        bytes: usize,
        audio: Option<Vec<u8>>,
        now: StreamUs,
    ) -> String {
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
            sent_us: now,
            audio,
        });
        format!("{MARK_PREFIX}{}", self.next_mark)
    }

    /// Applies a mark echo from Twilio at `now`; returns the agent audio it confirmed, placed (only
    /// chunks sent with their audio).
    pub fn on_mark(&mut self, name: &str, now: StreamUs) -> (MarkOutcome, Vec<Placed>) {
        let Some(mark) = name
            .strip_prefix(MARK_PREFIX)
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return (MarkOutcome::Unknown, Vec::new());
        };
        if mark == 0 || mark > self.next_mark {
            return (MarkOutcome::Unknown, Vec::new());
        }
        if self.cleared_through.is_some_and(|c| mark <= c) {
            return (MarkOutcome::Cleared, Vec::new());
        }
        let Some(pos) = self.pending.iter().position(|c| c.mark == mark) else {
            // Already accounted for (a later mark arrived first); harmless.
            return (MarkOutcome::Played, Vec::new());
        };
        // Marks echo in order, so everything up to this one has played.
        let done: Vec<Chunk> = self.pending.drain(..=pos).collect();
        let total: u64 = done.iter().map(|c| bytes_us(c.bytes)).sum();
        let first_sent = done.first().map_or(now, |c| c.sent_us);
        // Audio already queued when the previous audio ended played right after it (an echo's network
        // jitter must not open a gap, a click in the recording); audio sent after the queue ran dry
        // played back to back and finished now, but not before it was sent.
        let mut at = match self.played_until {
            Some(end) if first_sent <= end => end,
            end => now
                .saturating_sub(total)
                .max(end.unwrap_or(0))
                .max(first_sent),
        };
        let mut placed = Vec::new();
        for chunk in done {
            if let Some(item) = self.items.iter_mut().find(|i| i.seq == chunk.item_seq) {
                item.played_bytes = (item.played_bytes + chunk.bytes).min(item.sent_bytes);
            }
            let start_us = at;
            if self.recent_starts.len() == RECENT_STARTS {
                self.recent_starts.pop_front();
            }
            self.recent_starts.push_back((chunk.mark, start_us));
            at += bytes_us(chunk.bytes);
            if let Some(audio) = chunk.audio {
                placed.push(Placed { start_us, audio });
            }
        }
        self.played_until = Some(at);
        // Fully played items are done, except the newest (the model may still add to it).
        while self.items.len() > 1
            && self
                .items
                .front()
                .is_some_and(|i| i.played_bytes >= i.sent_bytes)
        {
            self.items.pop_front();
        }
        (MarkOutcome::Played, placed)
    }

    /// Where the chunk before mark `name` started playing, once its echo placed it (recent chunks only).
    pub fn started_at(&self, name: &str) -> Option<StreamUs> {
        let mark = name.strip_prefix(MARK_PREFIX)?.parse::<u64>().ok()?;
        self.recent_starts
            .iter()
            .rev()
            .find(|(m, _)| *m == mark)
            .map(|(_, start)| *start)
    }

    /// Where each queued chunk plays: back to back from the end of the audio that played, each no
    /// earlier than it was sent.
    fn schedule(&self) -> impl Iterator<Item = (&Chunk, StreamUs)> + '_ {
        let mut end = self.played_until;
        self.pending.iter().map(move |chunk| {
            let start = end.map_or(chunk.sent_us, |e| e.max(chunk.sent_us));
            end = Some(start + bytes_us(chunk.bytes));
            (chunk, start)
        })
    }

    /// Bytes of a chunk that starts at `start` heard by `now`.
    fn heard_of(chunk: &Chunk, start: StreamUs, now: StreamUs) -> u64 {
        us_bytes(now.saturating_sub(start)).min(chunk.bytes)
    }

    /// Bytes of `item` heard at `now`: confirmed by echoes, plus what has played since by the schedule.
    fn heard_bytes(&self, item: &ItemAudio, now: StreamUs) -> u64 {
        let playing: u64 = self
            .schedule()
            .filter(|(c, _)| c.item_seq == item.seq)
            .map(|(c, start)| Self::heard_of(c, start, now))
            .sum();
        (item.played_bytes + playing).min(item.sent_bytes)
    }

    /// How much of the newest item the caller has heard at `now`: `(item_id, bytes heard, bytes sent)`.
    pub fn heard(&self, now: StreamUs) -> Option<(&str, u64, u64)> {
        let item = self.items.back()?;
        Some((
            item.item_id.as_str(),
            self.heard_bytes(item, now),
            item.sent_bytes,
        ))
    }

    /// Audio still queued at Twilio (sent, not yet played by the schedule) at `now`.
    pub fn unplayed(&self, now: StreamUs) -> Duration {
        let left: u64 = self
            .schedule()
            .map(|(c, start)| c.bytes - Self::heard_of(c, start, now))
            .sum();
        Duration::from_micros(bytes_us(left))
    }

    /// When audio sent at `now` starts to play: once the audio queued before it has played.
    pub fn play_start(&self, now: StreamUs) -> StreamUs {
        self.schedule()
            .last()
            .map_or(now, |(c, start)| (start + bytes_us(c.bytes)).max(now))
    }

    /// True when every chunk sent has been confirmed played.
    pub fn is_drained(&self) -> bool {
        self.pending.is_empty()
    }

    /// Queued audio stops at `now` (Twilio was told to `clear`, or the call ended): what played until
    /// then was heard, the rest never. Returns the heard part of chunks sent with their audio.
    fn stop(&mut self, now: StreamUs) -> Vec<Placed> {
        let heard: Vec<(u64, StreamUs, u64)> = self
            .schedule()
            .map(|(c, start)| (c.mark, start, Self::heard_of(c, start, now)))
            .take_while(|&(_, _, heard)| heard > 0)
            .collect();
        let mut placed = Vec::new();
        for (mark, start_us, bytes) in heard {
            self.played_until = Some(start_us + bytes_us(bytes));
            let audio = self
                .pending
                .iter_mut()
                .find(|c| c.mark == mark)
                .and_then(|c| c.audio.take());
            if let Some(mut audio) = audio {
                audio.truncate(bytes as usize);
                placed.push(Placed { start_us, audio });
            }
        }
        if !self.pending.is_empty() {
            self.cleared_through = Some(self.next_mark);
        }
        self.pending.clear();
        placed
    }

    /// The caller barged in at `now`: forget queued audio (the bridge sends `clear`) and say where to cut
    /// each item of the current session that was not heard in full, oldest first, with the agent audio
    /// that was heard. `response_active` means the model may still be producing the newest item, so it
    /// is cut even if everything sent so far has played.
    pub fn interrupt(
        &mut self,
        now: StreamUs,
        response_active: bool,
    ) -> (Vec<Truncation>, Vec<Placed>) {
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
        let placed = self.stop(now);
        self.items.clear();
        (cuts, placed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stream time of `n` ms.
    fn ms(n: u64) -> StreamUs {
        n * 1000
    }

    #[test]
    fn heard_follows_marks_and_the_schedule() {
        let mut p = Playout::new();
        // Three 100 ms chunks sent at once (the model streams faster than real time).
        let m1 = p.on_sent("item_a", 800, None, 0);
        p.on_sent("item_a", 800, None, 0);
        p.on_sent("item_a", 800, None, 0);
        assert_eq!(p.heard(ms(40)).unwrap().1, 320);
        // First echo arrives late (the caller's playout started 30 ms after we sent).
        assert_eq!(p.on_mark(&m1, ms(130)).0, MarkOutcome::Played);
        assert_eq!(p.heard(ms(130)).unwrap().1, 800);
        // 50 ms into the second chunk, which started when the first ended (the echo).
        assert_eq!(p.heard(ms(180)).unwrap().1, 1200);
        // Everything sent has had time to play; never more than sent.
        assert_eq!(p.heard(ms(5000)).unwrap().1, 2400);
        let (cut, _) = p.interrupt(ms(180), false);
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
        let mut p = Playout::new();
        let m1 = p.on_sent("a", 160, None, 0);
        p.interrupt(0, true);
        assert_eq!(p.on_mark(&m1, 0).0, MarkOutcome::Cleared);
        assert_eq!(p.on_mark("v99", 0).0, MarkOutcome::Unknown);
        assert_eq!(p.on_mark("hello", 0).0, MarkOutcome::Unknown);
    }

    #[test]
    fn fully_played_item_is_not_cut_unless_still_streaming() {
        let mut p = Playout::new();
        let m = p.on_sent("a", 160, None, 0);
        p.on_mark(&m, ms(20));
        assert_eq!(p.interrupt(ms(30), false).0, vec![]);
        let m = p.on_sent("b", 160, None, ms(40));
        p.on_mark(&m, ms(60));
        let (cut, _) = p.interrupt(ms(70), true);
        assert_eq!(cut.len(), 1);
        assert_eq!((cut[0].audio_end_ms, cut[0].sent_ms), (20, 20));
    }

    #[test]
    fn audio_sent_now_plays_after_the_audio_queued_before_it() {
        let mut p = Playout::new();
        assert_eq!(p.play_start(0), 0);
        // Two 100 ms chunks at 0, one more 250 ms later (after the first two have played).
        let m1 = p.on_sent("a", 800, None, 0);
        p.on_sent("a", 800, None, 0);
        assert_eq!(p.play_start(ms(50)), ms(200));
        // The first echo came late: the second chunk plays from it.
        p.on_mark(&m1, ms(130));
        assert_eq!(p.play_start(ms(150)), ms(230));
        p.on_sent("a", 800, None, ms(250));
        assert_eq!(p.play_start(ms(260)), ms(350));
        // Nothing queued any more (its echo is overdue): audio sent now plays now.
        assert_eq!(p.play_start(ms(400)), ms(400));
        p.interrupt(ms(300), false);
        assert_eq!(p.play_start(ms(300)), ms(300));
    }

    #[test]
    fn a_new_item_starts_counting_from_zero() {
        let mut p = Playout::new();
        p.on_sent("a", 800, None, 0);
        p.on_sent("b", 800, None, ms(10));
        // Item b's chunk waits behind a's unplayed chunk: nothing of b heard yet.
        let (id, heard, sent) = p.heard(ms(50)).unwrap();
        assert_eq!((id, heard, sent), ("b", 0, 800));
        // 50 ms of a have played: 150 ms of the 200 queued are left.
        assert_eq!(p.unplayed(ms(50)), Duration::from_millis(150));
    }

    #[test]
    fn a_barge_in_cuts_every_item_still_queued() {
        let mut p = Playout::new();
        // A short answer (a), then the next response's first chunk (b) queued behind it.
        let m1 = p.on_sent("a", 800, None, 0);
        p.on_sent("a", 800, None, 0);
        p.on_sent("b", 800, None, ms(10));
        p.on_mark(&m1, ms(100));
        let (cuts, _) = p.interrupt(ms(150), true);
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
    fn a_cut_reaches_past_a_chunk_whose_echo_is_late() {
        let mut p = Playout::new();
        p.on_sent("a", 800, None, 0);
        p.on_sent("b", 800, None, 0);
        // 150 ms in, before the first echo: all of a and half of b have played.
        let (cuts, _) = p.interrupt(ms(150), true);
        let got: Vec<_> = cuts
            .iter()
            .map(|c| (c.item_id.as_str(), c.audio_end_ms))
            .collect();
        assert_eq!(got, [("b", 50)]);
    }

    #[test]
    fn items_of_an_earlier_session_are_not_truncated() {
        let mut p = Playout::new();
        p.on_sent("old", 800, None, 0);
        p.new_session();
        p.on_sent("new", 800, None, ms(5));
        let (cuts, _) = p.interrupt(ms(50), true);
        assert_eq!(cuts.len(), 1);
        assert_eq!(cuts[0].item_id, "new");
        assert_eq!(cuts[0].audio_end_ms, 0);
        // A session change with nothing of the new one sent: nothing to cut, but Twilio still clears.
        p.on_sent("old2", 800, None, ms(60));
        p.new_session();
        assert!(p.interrupt(ms(70), false).0.is_empty());
    }

    // Placement of the played audio (the recording's agent channel) by the same schedule.

    fn sent(p: &mut Playout, fill: u8, bytes: usize, at: StreamUs) -> String {
        p.on_sent("item", bytes, Some(vec![fill; bytes]), at)
    }

    fn starts(placed: &[Placed]) -> Vec<(StreamUs, usize)> {
        placed.iter().map(|p| (p.start_us, p.audio.len())).collect()
    }

    #[test]
    fn echoed_chunks_end_at_the_echo() {
        let mut p = Playout::new();
        let v1 = sent(&mut p, 1, 800, ms(1000)); // 100 ms
        let v2 = sent(&mut p, 2, 800, ms(1000));
        assert_eq!(starts(&p.on_mark(&v1, ms(1130)).1), [(ms(1030), 800)]);
        // The second was queued behind the first: it played right after it, whatever its echo's delay.
        assert_eq!(starts(&p.on_mark(&v2, ms(1230)).1), [(ms(1130), 800)]);
        // Sent while the second was still queued: pushed after it, never overlapping.
        let v3 = sent(&mut p, 3, 800, ms(1150));
        assert_eq!(starts(&p.on_mark(&v3, ms(1300)).1), [(ms(1230), 800)]);
        assert!(p.on_mark(&v3, ms(1400)).1.is_empty());
    }

    #[test]
    fn a_lost_echo_is_covered_by_the_next() {
        let mut p = Playout::new();
        sent(&mut p, 1, 160, 0);
        let v2 = sent(&mut p, 2, 160, 0);
        assert_eq!(
            starts(&p.on_mark(&v2, ms(100)).1),
            [(ms(60), 160), (ms(80), 160)]
        );
    }

    #[test]
    fn a_clear_keeps_only_what_was_heard() {
        let mut p = Playout::new();
        let v1 = sent(&mut p, 1, 800, 0);
        p.on_mark(&v1, ms(100));
        let v2 = sent(&mut p, 2, 800, ms(20));
        sent(&mut p, 3, 800, ms(20));
        // Cleared 40 ms into v2 (which started when v1 ended).
        let (_, heard) = p.interrupt(ms(140), true);
        assert_eq!(starts(&heard), [(ms(100), 320)]);
        assert!(p.is_drained());
        // The cleared marks echo afterwards and add nothing.
        assert!(p.on_mark(&v2, ms(150)).1.is_empty());
        assert!(p.interrupt(ms(200), false).1.is_empty());
    }

    #[test]
    fn a_clear_keeps_what_was_heard_past_a_chunk_whose_echo_is_late() {
        let mut p = Playout::new();
        sent(&mut p, 1, 800, 0); // 100 ms
        sent(&mut p, 2, 800, 0);
        sent(&mut p, 3, 800, 0);
        // Cleared 150 ms in, before v1's echo arrived: all of v1 and half of v2 were heard.
        let (_, heard) = p.interrupt(ms(150), true);
        assert_eq!(starts(&heard), [(0, 800), (ms(100), 400)]);
        // Later agent audio follows what was kept.
        let v4 = sent(&mut p, 4, 80, ms(140));
        assert_eq!(starts(&p.on_mark(&v4, ms(160)).1), [(ms(150), 80)]);
    }

    #[test]
    fn queued_chunks_are_placed_back_to_back_whatever_the_echo_jitter() {
        let mut p = Playout::new();
        // Two 100 ms chunks sent together at 1 s; the second echo comes 7 ms late.
        let a = sent(&mut p, 1, 800, ms(1000));
        let b = sent(&mut p, 2, 800, ms(1000));
        assert_eq!(p.on_mark(&a, ms(1100)).1[0].start_us, ms(1000));
        assert_eq!(
            p.on_mark(&b, ms(1207)).1[0].start_us,
            ms(1100),
            "no gap, no click"
        );
        // After the queue ran dry, a chunk sent later starts no earlier than it was sent.
        let c = sent(&mut p, 3, 800, ms(2000));
        assert_eq!(p.on_mark(&c, ms(2100)).1[0].start_us, ms(2000));
    }

    #[test]
    fn chunks_sent_without_audio_are_tracked_but_not_placed() {
        let mut p = Playout::new();
        let m = p.on_sent("a", 800, None, 0);
        let (outcome, placed) = p.on_mark(&m, ms(100));
        assert_eq!(outcome, MarkOutcome::Played);
        assert!(placed.is_empty());
        assert_eq!(p.play_start(ms(100)), ms(100));
    }
}
