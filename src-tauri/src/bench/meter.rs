//! What the lean load generator measures, shared by its fake callers and its fake model in one process:
//! no probe channels, no per-sample allocation. Each call has a slot; frame tags name the slot and the
//! frame, so the model side finds a frame's send time in the slot's ring, and the caller side finds a
//! delta's send time in the slot's queue of deltas in flight.
//!
//! Tags: caller frames are `slot << 18 | chunk` (slot < 8192, chunk < 2^18: 87 minutes of frames); model
//! deltas count up from `0x8000_0000`, as in the simulator.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use super::Percentiles;

pub const CHUNK_BITS: u32 = 18;
pub const MAX_SLOTS: usize = 1 << 13;
const SENT_RING: usize = 256;

/// Latency histogram in µs: 10 µs buckets to 10 ms, then 1 ms buckets to 10 s; lock-free.
pub struct Histogram {
    fine: Box<[AtomicU64]>,
    coarse: Box<[AtomicU64]>,
    over: AtomicU64,
    max_us: AtomicU64,
    count: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        let zeros = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Histogram {
            fine: zeros(1000).into_boxed_slice(),
            coarse: zeros(10_000).into_boxed_slice(),
            over: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn record(&self, us: u64) {
        if us < 10_000 {
            self.fine[(us / 10) as usize].fetch_add(1, Ordering::Relaxed);
        } else if us < 10_000_000 {
            self.coarse[(us / 1000) as usize].fetch_add(1, Ordering::Relaxed);
        } else {
            self.over.fetch_add(1, Ordering::Relaxed);
        }
        self.max_us.fetch_max(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Nearest-rank percentiles; a value is its bucket's upper edge (10 µs below 10 ms, 1 ms above).
    pub fn percentiles(&self) -> Percentiles {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return Percentiles::default();
        }
        let max_us = self.max_us.load(Ordering::Relaxed);
        let rank = |p: f64| -> f64 {
            let want = ((p / 100.0) * count as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, b) in self.fine.iter().enumerate() {
                seen += b.load(Ordering::Relaxed);
                if seen >= want {
                    return ((i as u64 + 1) * 10).min(max_us) as f64 / 1000.0;
                }
            }
            for (i, b) in self.coarse.iter().enumerate() {
                seen += b.load(Ordering::Relaxed);
                if seen >= want {
                    return ((i as u64 + 1) * 1000).min(max_us) as f64 / 1000.0;
                }
            }
            max_us as f64 / 1000.0
        };
        Percentiles {
            count: count as usize,
            p50_ms: rank(50.0),
            p99_ms: rank(99.0),
            max_ms: max_us as f64 / 1000.0,
        }
    }
}

/// A model delta on its way to the caller.
struct InFlight {
    tag: u32,
    sent_ns: u64,
    bytes: u32,
    response: u32,
}

#[derive(Default)]
struct Outbound {
    in_flight: VecDeque<InFlight>,
    /// Deltas passed over by a later one (their audio was dropped): lost unless their response was
    /// interrupted, which is only known for sure once the call is over.
    skipped: Vec<(u32, u32, u64)>,
    interrupted: Vec<u32>,
    responses: u32,
    /// Each truncate: the response whose item it cut, and its `audio_end_ms`.
    truncates: Vec<(u32, u64)>,
    /// At each clear, the response the caller was playing (or had played last) and the ms of it heard.
    heard_at_clear: Vec<(u32, u64)>,
}

/// One call's measurements.
pub struct Slot {
    sent_at: Box<[AtomicU64]>,
    frames_sent: AtomicU64,
    frames_received: AtomicU64,
    out_of_order: AtomicU64,
    next_chunk: AtomicU64,
    last_speech_ns: AtomicU64,
    /// When the caller sent `stop` (0: not yet).
    hung_up_ns: AtomicU64,
    outbound: Mutex<Outbound>,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            sent_at: (0..SENT_RING).map(|_| AtomicU64::new(0)).collect(),
            frames_sent: AtomicU64::new(0),
            frames_received: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            next_chunk: AtomicU64::new(1),
            last_speech_ns: AtomicU64::new(0),
            hung_up_ns: AtomicU64::new(0),
            outbound: Mutex::new(Outbound::default()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Totals of the calls already accounted for.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    pub inbound_bytes_lost: u64,
    pub outbound_bytes_lost: u64,
    pub truncates: usize,
    pub truncate_error_ms_max: f64,
    pub frames_out_of_order: u64,
    pub calls: usize,
    /// Deltas the model sent within [`HANG_UP_MARGIN_NS`] of the caller's `stop` (or after it) that never
    /// arrived: the call ended under them, so they are not counted as lost.
    pub deltas_cut_by_hang_up: u64,
    /// Each lost delta: (slot, ms from its sending to the caller's hang-up).
    pub lost_deltas: Vec<(usize, i64)>,
}

/// A delta sent this close before the caller's `stop` may still have been on its way when the call ended.
pub const HANG_UP_MARGIN_NS: u64 = 100_000_000;

pub struct Meter {
    epoch: Instant,
    pub inbound: Histogram,
    pub outbound: Histogram,
    pub barge_in: Histogram,
    slots: Box<[Slot]>,
    totals: Mutex<Totals>,
}

impl Default for Meter {
    fn default() -> Self {
        Meter {
            epoch: Instant::now(),
            inbound: Histogram::default(),
            outbound: Histogram::default(),
            barge_in: Histogram::default(),
            slots: (0..MAX_SLOTS).map(|_| Slot::default()).collect(),
            totals: Mutex::new(Totals::default()),
        }
    }
}

/// The slot a caller frame tag names (none for model delta tags).
pub fn slot_of(tag: u32) -> Option<usize> {
    (tag < 0x8000_0000).then_some((tag >> CHUNK_BITS) as usize)
}

impl Meter {
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn slot(&self, slot: usize) -> &Slot {
        &self.slots[slot % MAX_SLOTS]
    }

    /// The tag of `chunk` (1-based) of the call in `slot`.
    pub fn frame_tag(slot: usize, chunk: u64) -> u32 {
        ((slot as u32) << CHUNK_BITS) | (chunk as u32 & ((1 << CHUNK_BITS) - 1))
    }

    /// A caller is about to send `chunk`.
    pub fn frame_sent(&self, slot: usize, chunk: u64) {
        let s = self.slot(slot);
        s.sent_at[chunk as usize % SENT_RING].store(self.now_ns(), Ordering::Relaxed);
        s.frames_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// The model received a caller frame's tag.
    pub fn frame_received(&self, tag: u32) {
        let Some(slot) = slot_of(tag) else { return };
        let s = self.slot(slot);
        let chunk = u64::from(tag & ((1 << CHUNK_BITS) - 1));
        let sent = s.sent_at[chunk as usize % SENT_RING].load(Ordering::Relaxed);
        let now = self.now_ns();
        self.inbound.record(now.saturating_sub(sent) / 1000);
        s.frames_received.fetch_add(1, Ordering::Relaxed);
        if s.next_chunk.swap(chunk + 1, Ordering::Relaxed) != chunk {
            s.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A new response on the call in `slot`: its number (for interruption bookkeeping).
    pub fn response_started(&self, slot: usize) -> u32 {
        let mut o = lock(&self.slot(slot).outbound);
        o.responses += 1;
        o.responses
    }

    pub fn response_interrupted(&self, slot: usize, response: u32) {
        let mut o = lock(&self.slot(slot).outbound);
        if !o.interrupted.contains(&response) {
            o.interrupted.push(response);
        }
    }

    /// The model is about to send a tagged delta of `bytes`.
    pub fn delta_sent(&self, slot: usize, tag: u32, bytes: usize, response: u32) {
        let sent_ns = self.now_ns();
        lock(&self.slot(slot).outbound)
            .in_flight
            .push_back(InFlight {
                tag,
                sent_ns,
                bytes: bytes as u32,
                response,
            });
    }

    /// A caller received a delta's tag; the response it belongs to.
    pub fn delta_received(&self, slot: usize, tag: u32) -> Option<u32> {
        let now = self.now_ns();
        let mut o = lock(&self.slot(slot).outbound);
        if !o.in_flight.iter().any(|d| d.tag == tag) {
            return None;
        }
        while let Some(d) = o.in_flight.pop_front() {
            if d.tag == tag {
                self.outbound.record(now.saturating_sub(d.sent_ns) / 1000);
                return Some(d.response);
            }
            o.skipped.push((d.response, d.bytes, d.sent_ns));
        }
        None
    }

    /// The model heard the caller start speaking.
    pub fn speech_started(&self, slot: usize) {
        self.slot(slot)
            .last_speech_ns
            .store(self.now_ns(), Ordering::Relaxed);
    }

    /// A caller got a `clear` having heard `heard` (response, ms of it) last (`None`: no agent audio yet).
    pub fn clear_received(&self, slot: usize, heard: Option<(u32, u64)>) {
        let s = self.slot(slot);
        let speech = s.last_speech_ns.swap(0, Ordering::Relaxed);
        if speech != 0 {
            self.barge_in
                .record(self.now_ns().saturating_sub(speech) / 1000);
        }
        if let Some(heard) = heard {
            lock(&s.outbound).heard_at_clear.push(heard);
        }
    }

    /// The model received a `conversation.item.truncate` at `audio_end_ms` of `response`'s item.
    pub fn truncate_received(&self, slot: usize, response: u32, audio_end_ms: u64) {
        lock(&self.slot(slot).outbound)
            .truncates
            .push((response, audio_end_ms));
    }

    /// The caller in `slot` is sending `stop`.
    pub fn hung_up(&self, slot: usize) {
        self.slot(slot)
            .hung_up_ns
            .store(self.now_ns(), Ordering::Relaxed);
    }

    /// Accounts for a finished call (its last frames have had time to arrive) and clears its slot.
    pub fn finish_call(&self, slot: usize) {
        let s = self.slot(slot);
        let hung_up = s.hung_up_ns.swap(0, Ordering::Relaxed);
        let cut_from = if hung_up == 0 {
            u64::MAX
        } else {
            hung_up.saturating_sub(HANG_UP_MARGIN_NS)
        };
        let sent = s.frames_sent.swap(0, Ordering::Relaxed);
        let received = s.frames_received.swap(0, Ordering::Relaxed);
        let out_of_order = s.out_of_order.swap(0, Ordering::Relaxed);
        s.next_chunk.store(1, Ordering::Relaxed);
        s.last_speech_ns.store(0, Ordering::Relaxed);
        let o = std::mem::take(&mut *lock(&s.outbound));
        let mut lost_out = 0u64;
        let mut cut = 0u64;
        let mut lost_deltas = Vec::new();
        let to_hang_up_ms = |sent_ns: u64| (hung_up as i64 - sent_ns as i64) / 1_000_000;
        for (response, bytes, sent_ns, in_flight) in
            o.skipped.iter().map(|&(r, b, t)| (r, b, t, false)).chain(
                o.in_flight
                    .iter()
                    .map(|d| (d.response, d.bytes, d.sent_ns, true)),
            )
        {
            if o.interrupted.contains(&response) {
                continue;
            }
            if in_flight && sent_ns >= cut_from {
                cut += 1;
                continue;
            }
            lost_out += u64::from(bytes);
            lost_deltas.push((slot, to_hang_up_ms(sent_ns)));
        }
        let mut totals = lock(&self.totals);
        totals.deltas_cut_by_hang_up += cut;
        totals.lost_deltas.extend(lost_deltas);
        totals.calls += 1;
        totals.inbound_bytes_lost += sent.saturating_sub(received) * 160;
        totals.outbound_bytes_lost += lost_out;
        totals.frames_out_of_order += out_of_order;
        // Each truncate against what the caller heard of that response at the last clear that found
        // it playing (or just played out); none: the caller had not started it, so heard nothing.
        for &(response, end) in &o.truncates {
            let heard = o
                .heard_at_clear
                .iter()
                .rev()
                .find(|(r, _)| *r == response)
                .map_or(0, |(_, ms)| *ms);
            totals.truncates += 1;
            totals.truncate_error_ms_max = totals
                .truncate_error_ms_max
                .max((end as f64 - heard as f64).abs());
        }
    }

    pub fn totals(&self) -> Totals {
        lock(&self.totals).clone()
    }
}

/// Twilio's playout of the agent's audio, by byte counts only (the lean caller keeps no audio): the same
/// rules as `sim::playout` — a mark is echoed the tick after the audio before it finished, a `clear` drops
/// everything and cuts the frame playing at that instant, to the byte.
#[derive(Debug, Default)]
pub struct LeanPlayout {
    queued: u64,
    enqueued: u64,
    consumed: u64,
    marks: VecDeque<(u64, String)>,
    utterance: Option<u64>,
    playing: Option<(Instant, usize)>,
    total_played: u64,
    /// The response each stretch of queued audio belongs to, and where it ends (in `enqueued` bytes).
    responses: VecDeque<(Option<u32>, u64)>,
    /// The response playing or played last, and the bytes of it played.
    heard: Option<(u32, u64)>,
}

impl LeanPlayout {
    /// Queues `bytes` of `response`'s audio (`None`: not the model's, or not known).
    pub fn enqueue_audio(&mut self, bytes: usize, response: Option<u32>) {
        self.queued += bytes as u64;
        self.enqueued += bytes as u64;
        self.responses.push_back((response, self.enqueued));
    }

    pub fn enqueue_mark(&mut self, name: String) {
        self.marks.push_back((self.enqueued, name));
    }

    pub fn total_played_ms(&self) -> u64 {
        self.total_played / 8
    }

    pub fn utterance_played_ms(&self) -> u64 {
        self.utterance.unwrap_or(0) / 8
    }

    /// Drops the queue and the unplayed rest of the frame playing at `at`; the marks to echo now go to
    /// `echoes`. Returns the response playing (or played last) and the ms of it heard.
    pub fn clear(&mut self, at: Instant, echoes: &mut Vec<String>) -> Option<(u32, u64)> {
        if let Some((started, len)) = self.playing.take() {
            let elapsed_us = at.saturating_duration_since(started).as_micros();
            let heard = (elapsed_us * 8 / 1000).min(len as u128) as usize;
            let unplayed = (len - heard) as u64;
            self.total_played -= unplayed;
            self.utterance = self.utterance.map(|p| p - unplayed);
            if let Some((_, bytes)) = &mut self.heard {
                *bytes -= unplayed;
            }
        }
        self.queued = 0;
        self.consumed = self.enqueued;
        self.utterance = None;
        self.responses.clear();
        echoes.extend(self.marks.drain(..).map(|(_, name)| name));
        self.heard.map(|(response, bytes)| (response, bytes / 8))
    }

    /// One 20 ms tick at `at`: marks whose audio finished go to `echoes`, then up to 160 bytes start.
    pub fn tick(&mut self, at: Instant, echoes: &mut Vec<String>) -> usize {
        self.playing = None;
        while self
            .marks
            .front()
            .is_some_and(|(pos, _)| *pos <= self.consumed)
        {
            if let Some((_, name)) = self.marks.pop_front() {
                echoes.push(name);
            }
        }
        let until_mark = self
            .marks
            .front()
            .map_or(u64::MAX, |(pos, _)| pos - self.consumed);
        let n = 160u64.min(self.queued).min(until_mark) as usize;
        if n == 0 {
            self.utterance = None;
            return 0;
        }
        self.utterance = Some(self.utterance.unwrap_or(0) + n as u64);
        self.playing = Some((at, n));
        // A frame never crosses a mark, and the bridge marks every media message: one response.
        while self
            .responses
            .front()
            .is_some_and(|(_, end)| *end <= self.consumed)
        {
            self.responses.pop_front();
        }
        if let Some(&(Some(response), _)) = self.responses.front() {
            match &mut self.heard {
                Some((r, bytes)) if *r == response => *bytes += n as u64,
                heard => *heard = Some((response, n as u64)),
            }
        }
        self.queued -= n as u64;
        self.consumed += n as u64;
        self.total_played += n as u64;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn histogram_percentiles() {
        let h = Histogram::default();
        for us in 1..=100u64 {
            h.record(us * 100); // 0.1 .. 10 ms
        }
        let p = h.percentiles();
        assert_eq!(p.count, 100);
        assert!((p.p50_ms - 5.0).abs() <= 0.011, "{p:?}");
        assert!((p.p99_ms - 9.9).abs() <= 0.011, "{p:?}");
        assert_eq!(p.max_ms, 10.0);
        h.record(25_000_000);
        assert_eq!(h.percentiles().max_ms, 25_000.0);
        assert_eq!(Histogram::default().percentiles(), Percentiles::default());
    }

    #[test]
    fn frames_and_deltas_are_matched_and_losses_counted() {
        let m = Meter::default();
        for chunk in 1..=3 {
            m.frame_sent(5, chunk);
        }
        m.frame_received(Meter::frame_tag(5, 1));
        m.frame_received(Meter::frame_tag(5, 3));
        let r1 = m.response_started(5);
        let r2 = m.response_started(5);
        m.delta_sent(5, 0x8000_0001, 800, r1);
        m.delta_sent(5, 0x8000_0002, 800, r1);
        m.delta_sent(5, 0x8000_0003, 800, r2);
        m.delta_sent(5, 0x8000_0004, 800, r2);
        m.delta_received(5, 0x8000_0001);
        // r1's second delta was dropped by a barge-in; r2's first arrived, its second never did.
        m.response_interrupted(5, r1);
        m.delta_received(5, 0x8000_0003);
        m.speech_started(5);
        m.clear_received(5, Some((1, 700)));
        m.truncate_received(5, 1, 705);
        // The clear found response 2 played out, and cut response 3 before it started.
        m.clear_received(5, Some((2, 1500)));
        m.truncate_received(5, 3, 0);
        m.truncate_received(5, 2, 1500);
        m.finish_call(5);
        // A delta sent just before the caller hung up, that never arrived: cut, not lost.
        m.frame_sent(6, 1);
        m.frame_received(Meter::frame_tag(6, 1));
        let r = m.response_started(6);
        m.delta_sent(6, 0x8000_0009, 800, r);
        m.hung_up(6);
        m.finish_call(6);
        let t = m.totals();
        assert_eq!(t.deltas_cut_by_hang_up, 1);
        assert_eq!(t.inbound_bytes_lost, 160);
        assert_eq!(t.outbound_bytes_lost, 800);
        assert_eq!(t.frames_out_of_order, 1);
        assert_eq!((t.truncates, t.truncate_error_ms_max), (3, 5.0));
        assert_eq!(m.inbound.percentiles().count, 3);
        assert_eq!(m.outbound.percentiles().count, 2);
        assert_eq!(m.barge_in.percentiles().count, 1);
        assert_eq!(slot_of(0x8000_0001), None);
        assert_eq!(slot_of(Meter::frame_tag(77, 12)), Some(77));
    }

    #[test]
    fn lean_playout_matches_the_simulators_rules() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = LeanPlayout::default();
        let mut echoes = Vec::new();
        p.enqueue_audio(100, Some(1));
        p.enqueue_mark("a".into());
        p.enqueue_audio(100, Some(1));
        assert_eq!(p.tick(at(0), &mut echoes), 100, "never past a mark");
        assert_eq!(p.tick(at(20), &mut echoes), 100);
        assert_eq!(echoes, vec!["a".to_string()]);
        echoes.clear();
        p.enqueue_audio(1600, Some(1));
        p.enqueue_mark("b".into());
        p.enqueue_audio(1600, Some(2));
        p.enqueue_mark("c".into());
        for t in 2..5 {
            p.tick(at(t * 20), &mut echoes);
        }
        // The utterance so far: 200 bytes, then 3 × 160; a clear 10 ms into the last frame cuts 80 bytes.
        let played = p.clear(at(90), &mut echoes);
        // Response 1 played out (200 + 1600 bytes would be; 200 + 2 × 160 + 80 of it were heard).
        assert_eq!(played, Some((1, (200 + 160 * 2 + 80) / 8)));
        assert_eq!(echoes, vec!["b".to_string(), "c".to_string()]);
        assert_eq!(p.tick(at(100), &mut echoes), 0);
        assert_eq!(p.total_played_ms(), (200 + 160 * 2 + 80) / 8);
        // Nothing playing: the response heard last, as much as was heard.
        assert_eq!(
            p.clear(at(120), &mut echoes),
            Some((1, (200 + 160 * 2 + 80) / 8))
        );
        // Response 2 after response 1 in one stretch: each is counted on its own.
        p.enqueue_audio(320, Some(3));
        p.enqueue_mark("d".into());
        p.enqueue_audio(320, Some(4));
        p.enqueue_mark("e".into());
        for t in 7..10 {
            p.tick(at(t * 20), &mut echoes);
        }
        assert_eq!(p.clear(at(190), &mut echoes), Some((4, 10)));
        assert_eq!(LeanPlayout::default().clear(at(0), &mut echoes), None);
    }
}
