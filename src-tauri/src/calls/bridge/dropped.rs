//! The model output a call must no longer play: items cut by a barge-in and responses cancelled with
//! them, whose late deltas are counted but never sent to Twilio.
//!
//! Every audio delta is checked against these ids. Checking the whole list each time compared up to 16
//! ids per delta (`memcmp` was 1.3 % of the bridge's user CPU at 300 calls); an item's deltas come in a
//! run, so the last id found live is remembered and its next delta costs one comparison.
//!
//! ```
//! # use verbio::calls::bridge::dropped::DroppedIds;
//! let mut dropped = DroppedIds::default();
//! assert!(!dropped.contains("item_1"));
//! dropped.insert("item_1".to_string());
//! assert!(dropped.contains("item_1"));
//! ```

use std::collections::VecDeque;

/// How many ids are kept: a late delta arrives within one or two responses of its cut.
const KEPT: usize = 16;

/// The latest 16 dropped ids.
#[derive(Debug, Default)]
pub struct DroppedIds {
    ids: VecDeque<String>,
    /// The id last looked up and not found (its buffer reused from one lookup to the next).
    live: String,
    /// Whether `live` holds such an id.
    live_known: bool,
}

impl DroppedIds {
    /// Drops `id` from now on.
    pub fn insert(&mut self, id: String) {
        if self.live_known && self.live == id {
            self.live_known = false;
        }
        if self.ids.len() >= KEPT {
            self.ids.pop_front();
        }
        self.ids.push_back(id);
    }

    /// Whether `id` was dropped.
    pub fn contains(&mut self, id: &str) -> bool {
        if self.live_known && self.live == id {
            return false;
        }
        let dropped = self.ids.iter().any(|d| d == id);
        if !dropped {
            self.live.clear();
            self.live.push_str(id);
            self.live_known = true;
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_found_live_is_dropped_once_inserted() {
        let mut dropped = DroppedIds::default();
        assert!(!dropped.contains("a"));
        assert!(!dropped.contains("a"));
        dropped.insert("a".into());
        assert!(dropped.contains("a"));
        assert!(!dropped.contains("b"));
        assert!(
            dropped.contains("a"),
            "looking up another id forgets nothing"
        );
    }

    #[test]
    fn only_the_latest_ids_are_kept() {
        let mut dropped = DroppedIds::default();
        for i in 0..=KEPT {
            dropped.insert(format!("item_{i}"));
        }
        assert!(!dropped.contains("item_0"));
        for i in 1..=KEPT {
            assert!(dropped.contains(&format!("item_{i}")), "item_{i}");
        }
    }
}
