//! Sequence accounting: loss, duplicates, reordering and missed simulation passes.
//!
//! Definitions: `docs/METRICS.md` "Loss, duplicates, reordering, missed steps".
//!
//! Seqs are u32 and wrap. Each received seq is *extended* to an i64 relative to the highest
//! seq seen, using serial-number arithmetic (RFC 1982 §3.2): a seq less than 2³¹ ahead
//! (mod 2³²) is newer, otherwise older. This is the same idea as RFC 3550 A.1's cycle count and
//! keeps the counts right across the wrap from 4294967295 to 0. A real jump of 2³¹ or more is
//! misread (it cannot be told apart from an old seq); at 20 Hz that is 3.4 years of stamps.
//!
//! Duplicate detection uses a sliding bitmap of the [`SEQ_WINDOW`] seqs below the highest one,
//! so memory is constant. An arrival older than that window cannot be checked: it is counted as
//! received and reordered (assumed not to be a duplicate) and in [`SeqTracker::too_old`].

use super::LossStats;

/// How many seqs below the highest the duplicate bitmap remembers.
pub const SEQ_WINDOW: u64 = 4096;
const WORDS: usize = (SEQ_WINDOW / 64) as usize;

/// What one arrival was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqEvent {
    /// The first seq of the tracker.
    First,
    /// Higher than every seq before.
    InOrder,
    /// Lower than the highest seq, not seen before.
    Reordered,
    /// Seen before.
    Duplicate,
    /// Lower than the highest by at least [`SEQ_WINDOW`]: cannot be checked for duplicates.
    TooOld,
}

/// Extended seq and the step index that came with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    seq: i64,
    step: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct SeqTracker {
    lowest: Mark,
    highest: Mark,
    /// Last seq the sender announced in BYE, extended; may exceed `highest` (tail loss).
    announced_last: Option<i64>,
    received: u64,
    duplicates: u64,
    reordered: u64,
    too_old: u64,
    /// Bit `e mod SEQ_WINDOW` is set when extended seq `e` (within the window) was received.
    /// On the heap: 512 bytes of which one word is touched per arrival, kept out of the
    /// dummy's state block (see `metrics::table`).
    seen: Box<[u64; WORDS]>,
}

impl SeqTracker {
    /// Starts with the first received seq.
    pub fn new(seq: u32, step: Option<u32>) -> Self {
        let first = Mark {
            seq: i64::from(seq),
            step,
        };
        let mut t = Self {
            lowest: first,
            highest: first,
            announced_last: None,
            received: 1,
            duplicates: 0,
            reordered: 0,
            too_old: 0,
            seen: Box::new([0; WORDS]),
        };
        t.set(first.seq);
        t
    }

    /// Extends a wire seq relative to the highest seen (serial arithmetic, RFC 1982).
    pub fn extend(&self, seq: u32) -> i64 {
        let delta = seq.wrapping_sub(self.highest.seq as u32) as i32;
        self.highest.seq + i64::from(delta)
    }

    /// Accounts one arrival.
    pub fn push(&mut self, seq: u32, step: Option<u32>) -> SeqEvent {
        let e = self.extend(seq);
        let behind = self.highest.seq - e;
        let event = if behind < 0 {
            self.advance_to(e);
            self.highest = Mark { seq: e, step };
            SeqEvent::InOrder
        } else if behind as u64 >= SEQ_WINDOW {
            self.too_old += 1;
            self.reordered += 1;
            SeqEvent::TooOld
        } else if self.is_set(e) {
            self.duplicates += 1;
            return SeqEvent::Duplicate;
        } else {
            self.set(e);
            self.reordered += 1;
            SeqEvent::Reordered
        };
        self.received += 1;
        if e < self.lowest.seq {
            self.lowest = Mark { seq: e, step };
        }
        event
    }

    /// The sender's BYE says its last STAMP had this seq: stamps lost at the very end then
    /// count as lost too (they would otherwise be invisible).
    pub fn announce_last(&mut self, seq: u32) {
        let e = self.extend(seq);
        if e > self.highest.seq {
            self.announced_last = Some(e);
        }
    }

    /// Hints the CPU to load the bitmap word the next in-order seq will touch.
    pub fn prefetch(&self) {
        let (w, _) = Self::slot(self.highest.seq + 1);
        super::table::prefetch_lines(&self.seen[w]);
    }

    /// Arrivals too old for the duplicate window.
    pub fn too_old(&self) -> u64 {
        self.too_old
    }

    pub fn stats(&self) -> LossStats {
        let top = self
            .announced_last
            .unwrap_or(self.highest.seq)
            .max(self.highest.seq);
        let expected = (top - self.lowest.seq + 1) as u64;
        let lost = expected.saturating_sub(self.received);
        LossStats {
            expected,
            received: self.received,
            lost,
            loss_pct: 100.0 * lost as f64 / expected as f64,
            duplicates: self.duplicates,
            reordered: self.reordered,
            missed_steps: self.missed_steps(),
        }
    }

    /// Passes the step index moved over that the seq did not: (step at the highest seq − step
    /// at the lowest seq) − (highest seq − lowest seq), never negative. The sender increments
    /// seq for every STAMP it attempts, so datagrams lost on the way do not count here; only
    /// simulation passes that produced no STAMP do.
    fn missed_steps(&self) -> u64 {
        let (Some(lo), Some(hi)) = (self.lowest.step, self.highest.step) else {
            return 0;
        };
        // Steps wrap like seqs (serial arithmetic).
        let step_span = i64::from(hi.wrapping_sub(lo) as i32);
        let seq_span = self.highest.seq - self.lowest.seq;
        (step_span - seq_span).max(0) as u64
    }

    fn advance_to(&mut self, e: i64) {
        let gap = (e - self.highest.seq) as u64;
        if gap >= SEQ_WINDOW {
            *self.seen = [0; WORDS];
        } else {
            for k in self.highest.seq + 1..e {
                self.clear(k);
            }
        }
        self.set(e);
    }

    fn slot(e: i64) -> (usize, u64) {
        let bit = e.rem_euclid(SEQ_WINDOW as i64) as usize;
        (bit / 64, 1 << (bit % 64))
    }

    fn set(&mut self, e: i64) {
        let (w, m) = Self::slot(e);
        self.seen[w] |= m;
    }

    fn clear(&mut self, e: i64) {
        let (w, m) = Self::slot(e);
        self.seen[w] &= !m;
    }

    fn is_set(&self, e: i64) -> bool {
        let (w, m) = Self::slot(e);
        self.seen[w] & m != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seqs: &[u32]) -> LossStats {
        let mut t = SeqTracker::new(seqs[0], None);
        for &s in &seqs[1..] {
            t.push(s, None);
        }
        t.stats()
    }

    #[test]
    fn in_order_no_loss() {
        let s = run(&[0, 1, 2, 3, 4]);
        assert_eq!(
            (s.expected, s.received, s.lost, s.duplicates, s.reordered),
            (5, 5, 0, 0, 0)
        );
        assert_eq!(s.loss_pct, 0.0);
    }

    #[test]
    fn five_percent_skipped() {
        // 0..200 without every 20th seq: 10 of 200 lost (seq 199 is kept so the top is 199).
        let seqs: Vec<u32> = (0..200).filter(|s| s % 20 != 10).collect();
        let s = run(&seqs);
        assert_eq!((s.expected, s.received, s.lost), (200, 190, 10));
        assert!((s.loss_pct - 5.0).abs() < 1e-12);
    }

    #[test]
    fn duplicates_counted_once_each_extra_copy() {
        let s = run(&[0, 1, 1, 2, 2, 2, 3]);
        assert_eq!((s.expected, s.received, s.lost, s.duplicates), (4, 4, 0, 3));
    }

    #[test]
    fn reordering_and_late_arrival_filling_a_gap() {
        // 2 arrives after 3: reordered, not lost; then a duplicate of 2 is a duplicate only.
        let s = run(&[0, 1, 3, 2, 4, 2]);
        assert_eq!(
            (s.expected, s.received, s.lost, s.reordered, s.duplicates),
            (5, 5, 0, 1, 1)
        );
    }

    #[test]
    fn wrap_around_is_continuous() {
        let s = run(&[u32::MAX - 2, u32::MAX - 1, u32::MAX, 0, 2]);
        // Expected u32::MAX-2 ..= 2 (extended): 6 seqs; 1 lost.
        assert_eq!((s.expected, s.received, s.lost, s.reordered), (6, 5, 1, 0));
    }

    #[test]
    fn reordered_below_first_extends_expected() {
        let s = run(&[5, 6, 4]);
        assert_eq!((s.expected, s.received, s.lost, s.reordered), (3, 3, 0, 1));
    }

    #[test]
    fn too_old_is_counted_not_checked() {
        let mut t = SeqTracker::new(0, None);
        t.push(SEQ_WINDOW as u32 + 10, None);
        assert_eq!(t.push(1, None), SeqEvent::TooOld);
        assert_eq!(t.too_old(), 1);
        let s = t.stats();
        assert_eq!((s.received, s.reordered), (3, 1));
    }

    #[test]
    fn bitmap_forgets_old_bits_when_advancing() {
        // After moving a whole window ahead, the slot of seq 0 is reused by seq SEQ_WINDOW;
        // a reordered seq in the window must not be mistaken for a duplicate.
        let mut t = SeqTracker::new(0, None);
        let w = SEQ_WINDOW as u32;
        t.push(w + 5, None);
        assert_eq!(t.push(w, None), SeqEvent::Reordered);
        assert_eq!(t.push(w, None), SeqEvent::Duplicate);
        assert_eq!(t.push(w + 1, None), SeqEvent::Reordered);
    }

    #[test]
    fn missed_steps_from_step_index_not_from_loss() {
        let mut t = SeqTracker::new(0, Some(0));
        t.push(1, Some(1));
        t.push(3, Some(3)); // seq 2 lost in the network: a loss, not a missed step
        t.push(4, Some(6)); // steps 4 and 5 had no STAMP at all
        let s = t.stats();
        assert_eq!((s.lost, s.missed_steps), (1, 2));
    }

    #[test]
    fn bye_announces_tail_loss() {
        let mut t = SeqTracker::new(0, None);
        t.push(1, None);
        t.announce_last(4);
        let s = t.stats();
        assert_eq!((s.expected, s.lost), (5, 3));
        t.announce_last(0); // older than the highest: ignored
        assert_eq!(t.stats().expected, 5);
    }
}
