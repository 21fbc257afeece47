//! The recording writer's recordings, split into groups that take turns through its tick, so its work
//! comes in small slices instead of one burst.
//!
//! Why: the writer visits every recording once per tick (100 ms). At 300 recorded calls one visit of
//! all of them took ~1.7 ms of a core at once, and a caller frame arriving while the writer held a core
//! waited for the other one, shared with everything else: about 1.7 % of frames, enough to lift the
//! bridge's p99 by ~1 ms with recording on (BENCHMARKS.md, issue 16, ninth stretch). With the
//! recordings in up to [`GROUPS`] groups, one group a slice of the tick, each recording is still
//! visited once per tick and the writer's longest run is a tenth as long. A group opens only once the
//! open ones hold [`GROUP_FILL`] each: a few calls stay in one group and cost one wake-up a tick, as
//! before.
//!
//! ```
//! use verbio::recording::staggered::Staggered;
//!
//! let mut groups = Staggered::new(4, 2);
//! for call in 0..8 {
//!     groups.add(call);
//! }
//! // Each turn takes one group; four turns visit every item once.
//! let mut seen: Vec<i32> = (0..4).flat_map(|_| groups.turn().0.clone()).collect();
//! seen.sort();
//! assert_eq!(seen, (0..8).collect::<Vec<_>>());
//! ```

/// Groups a tick is split into at most.
pub const GROUPS: usize = 10;

/// Recordings per group before another group opens: a group's visit is then ~0.1 ms (300 recordings
/// took ~1.7 ms), and fewer recordings are not worth a wake-up of their own.
pub const GROUP_FILL: usize = 16;

/// Items in groups that take turns; an item added joins the smallest open group.
#[derive(Debug)]
pub struct Staggered<T> {
    groups: Vec<Vec<T>>,
    /// Items per group before the next group opens.
    fill: usize,
    /// The group whose turn is next.
    next: usize,
}

impl<T> Staggered<T> {
    /// Up to `groups` groups (at least one), all empty; a group opens once the open ones hold `fill`
    /// items each (at least one).
    pub fn new(groups: usize, fill: usize) -> Self {
        Staggered {
            groups: (0..groups.max(1)).map(|_| Vec::new()).collect(),
            fill: fill.max(1),
            next: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(Vec::is_empty)
    }

    pub fn len(&self) -> usize {
        self.groups.iter().map(Vec::len).sum()
    }

    /// Adds `item` to the smallest open group.
    pub fn add(&mut self, item: T) {
        let open = (self.len() / self.fill + 1).min(self.groups.len());
        let smallest = (0..open).min_by_key(|&g| self.groups[g].len()).unwrap_or(0);
        self.groups[smallest].push(item);
    }

    /// The group whose turn it is, and how many slices to wait before the next turn: empty groups
    /// are skipped (their slices slept through), so a few recordings still cost one wake-up a tick.
    pub fn turn(&mut self) -> (&mut Vec<T>, u32) {
        let n = self.groups.len();
        let current = self.next;
        let mut wait: usize = 1;
        while wait < n && self.groups[(current + wait) % n].is_empty() {
            wait += 1;
        }
        self.next = (current + wait) % n;
        // `wait` is at most the number of groups, which a `u32` holds.
        (&mut self.groups[current], wait as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_round_of_turns_visits_every_item_exactly_once_in_even_slices() {
        let mut groups = Staggered::new(GROUPS, GROUP_FILL);
        for call in 0..300 {
            groups.add(call);
        }
        let mut seen = Vec::new();
        for _ in 0..GROUPS {
            let (group, wait) = groups.turn();
            assert_eq!(group.len(), 30, "300 recordings in 10 slices of 30");
            assert_eq!(wait, 1);
            seen.extend(group.iter().copied());
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..300).collect::<Vec<_>>());
    }

    #[test]
    fn empty_groups_are_slept_through_so_one_recording_is_visited_once_a_tick() {
        let mut groups = Staggered::new(GROUPS, GROUP_FILL);
        groups.add("only");
        let (group, wait) = groups.turn();
        assert_eq!(group.as_slice(), ["only"]);
        assert_eq!(wait as usize, GROUPS, "the whole tick until its turn again");
        let (group, wait) = groups.turn();
        assert_eq!(group.as_slice(), ["only"]);
        assert_eq!(wait as usize, GROUPS);
    }

    #[test]
    fn an_item_added_joins_the_smallest_group_and_groups_stay_even_as_items_leave() {
        let mut groups = Staggered::new(3, 1);
        for call in 0..6 {
            groups.add(call);
        }
        // A group loses its items (calls ended): the next ones fill it first.
        groups.turn().0.clear();
        assert_eq!(groups.len(), 4);
        groups.add(100);
        groups.add(101);
        let sizes: Vec<usize> = (0..3).map(|_| groups.turn().0.len()).collect();
        assert_eq!(sizes, [2, 2, 2]);
    }

    #[test]
    fn a_few_recordings_share_one_group_and_one_wake_up_a_tick() {
        let mut groups = Staggered::new(GROUPS, GROUP_FILL);
        for call in 0..GROUP_FILL {
            groups.add(call);
        }
        let (group, wait) = groups.turn();
        assert_eq!(group.len(), GROUP_FILL);
        assert_eq!(wait as usize, GROUPS);
        // One more opens a second group.
        groups.add(GROUP_FILL);
        let sizes: Vec<usize> = (0..2).map(|_| groups.turn().0.len()).collect();
        assert_eq!(sizes, [GROUP_FILL, 1]);
    }

    #[test]
    fn nothing_is_empty_and_zero_groups_means_one() {
        let mut groups: Staggered<u8> = Staggered::new(0, 0);
        assert!(groups.is_empty());
        groups.add(7);
        assert!(!groups.is_empty());
        let (group, wait) = groups.turn();
        assert_eq!((group.as_slice(), wait), (&[7u8][..], 1));
    }

    /// The writer's loop as it runs: calls start before each turn and end during their group's turn,
    /// hundreds at once. No recording already visited waits more than one tick (`GROUPS` slices) for
    /// its next visit, and a new one waits at most two ticks for its first, whatever the churn (a
    /// feed holds ~2.5 s, 25 ticks).
    #[test]
    fn under_heavy_churn_no_recording_waits_more_than_a_tick_between_visits() {
        let mut groups: Staggered<(u64, u64)> = Staggered::new(GROUPS, GROUP_FILL);
        // A small LCG: the same churn every run.
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut rand = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        // (id, slice of its last visit or of its start); `seen` tells the first visit from the rest.
        let mut seen = std::collections::HashSet::new();
        let (mut now, mut next_id, mut visits) = (0u64, 0u64, 0u64);
        for _ in 0..20_000 {
            let target = if (now / 2_000) % 2 == 0 { 400 } else { 20 };
            let starts = if (groups.len() as u64) < target {
                rand(40)
            } else {
                rand(3)
            };
            for _ in 0..starts {
                groups.add((next_id, now));
                next_id += 1;
            }
            let (group, wait) = groups.turn();
            let mut i = 0;
            while i < group.len() {
                let (id, last) = group[i];
                let limit = if seen.insert(id) { 2 } else { 1 } * GROUPS as u64;
                assert!(
                    now - last <= limit,
                    "recording {id} waited {} slices (limit {limit})",
                    now - last
                );
                visits += 1;
                if rand(100) < 3 {
                    group.swap_remove(i);
                } else {
                    group[i].1 = now;
                    i += 1;
                }
            }
            now += u64::from(wait);
        }
        assert!(visits > 500_000, "{visits} visits");
    }
}
