//! Every dummy's [`DummyMetrics`], laid out for the receive path's cache behaviour.
//!
//! At 1,000 dummies and more, handling one message is dominated by cache misses on that
//! dummy's state: its turn comes once per pass, after every other dummy's, so nothing of it
//! is left in the L2 cache (docs/PERFORMANCE.md has the profile). Two things keep that cost
//! down: the states sit in one `Vec` (a hash lookup by id, then one contiguous block, no
//! tree nodes to walk), and [`DummyTable::prefetch_ahead`] asks the CPU to load the states
//! of the next few dummies of a batch while the current one is handled, so those misses
//! overlap instead of queueing one after another. Iteration is in id order, as every
//! snapshot lists dummies.

use rustc_hash::FxHashMap;

use super::DummyMetrics;
use crate::event::ArrivalBatch;

/// One dummy's place: what the caller routes by (`R`, e.g. which source owns the id), and
/// its statistics once it is registered. Both in one block, so one prefetch covers them.
#[derive(Debug, Clone, Default)]
pub struct Slot<R> {
    pub route: R,
    pub metrics: Option<DummyMetrics>,
}

/// Dummy id → [`Slot`], with id-ordered iteration over the registered dummies.
#[derive(Debug, Clone)]
pub struct DummyTable<R> {
    slots: Vec<Slot<R>>,
    index: FxHashMap<u32, usize>,
    /// Slots holding statistics, sorted by dummy id.
    order: Vec<usize>,
}

impl<R> Default for DummyTable<R> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            index: FxHashMap::default(),
            order: Vec::new(),
        }
    }
}

impl<R: Default> DummyTable<R> {
    /// Registered dummies (with statistics).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Whether dummy `id` is registered.
    pub fn contains(&self, id: u32) -> bool {
        self.index
            .get(&id)
            .is_some_and(|&s| self.slots[s].metrics.is_some())
    }

    /// Slots in use (routed or registered ids): what `--max-dummies` bounds.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Whether `id` has a slot.
    pub fn has_slot(&self, id: u32) -> bool {
        self.index.contains_key(&id)
    }

    /// The slot of `id`, if it was ever routed or registered.
    pub fn slot(&self, id: u32) -> Option<&Slot<R>> {
        self.slots.get(*self.index.get(&id)?)
    }

    /// The slot of `id`, if it was ever routed or registered.
    pub fn slot_mut(&mut self, id: u32) -> Option<&mut Slot<R>> {
        let slot = *self.index.get(&id)?;
        self.slots.get_mut(slot)
    }

    /// The slot of `id`, created empty if needed.
    pub fn slot_or_default(&mut self, id: u32) -> &mut Slot<R> {
        let next = self.slots.len();
        let slot = *self.index.entry(id).or_insert(next);
        if slot == next {
            self.slots.push(Slot::default());
        }
        &mut self.slots[slot]
    }

    /// The statistics of registered dummy `id`.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut DummyMetrics> {
        self.slot_mut(id)?.metrics.as_mut()
    }

    /// Registers dummy `id` with `d` (replacing statistics it already had).
    pub fn insert(&mut self, id: u32, d: DummyMetrics) {
        let fresh = !self.contains(id);
        self.slot_or_default(id).metrics = Some(d);
        if fresh {
            let slot = self.index[&id];
            let at = self.order.partition_point(|&s| self.id_of(s) < id);
            self.order.insert(at, slot);
        }
    }

    fn id_of(&self, slot: usize) -> u32 {
        self.slots[slot].metrics.as_ref().map_or(0, |d| d.info().id)
    }

    /// The registered ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.iter().map(|d| d.info().id)
    }

    /// The registered dummies' statistics, by ascending id.
    pub fn iter(&self) -> impl Iterator<Item = &DummyMetrics> + '_ {
        self.order
            .iter()
            .filter_map(|&s| self.slots[s].metrics.as_ref())
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut DummyMetrics> + '_ {
        self.slots.iter_mut().filter_map(|s| s.metrics.as_mut())
    }

    /// Every slot's route.
    pub fn routes(&self) -> impl Iterator<Item = &R> + '_ {
        self.slots.iter().map(|s| &s.route)
    }

    /// The slot of each arrival's dummy in `batch` (`usize::MAX` when unknown or not v1),
    /// into `out`: the plan [`DummyTable::prefetch_ahead`] follows.
    pub fn slots_of(&self, batch: &ArrivalBatch, out: &mut Vec<usize>) {
        out.clear();
        out.extend(batch.iter().map(|a| {
            v1_dummy_id(a.payload)
                .and_then(|id| self.index.get(&id).copied())
                .unwrap_or(usize::MAX)
        }));
    }

    /// Called before handling arrival `i` of a batch whose slots are `slots`: hints the CPU
    /// to load the block of the dummy [`BLOCK_AHEAD`] arrivals on, and the heap buffers of
    /// the one [`HEAP_AHEAD`] on (its block was asked for earlier, so its pointers can be
    /// followed). A hint only: nothing changes. Far enough ahead for the loads to land, near
    /// enough for them to still be in the L2 cache when used.
    pub fn prefetch_ahead(&self, slots: &[usize], i: usize) {
        if i == 0 {
            for &s in slots.iter().take(BLOCK_AHEAD) {
                self.prefetch_block(s);
            }
        }
        if let Some(&s) = slots.get(i + BLOCK_AHEAD) {
            self.prefetch_block(s);
        }
        if let Some(d) = slots
            .get(i + HEAP_AHEAD)
            .and_then(|&s| self.slots.get(s)?.metrics.as_ref())
        {
            d.prefetch_heap();
        }
    }

    fn prefetch_block(&self, slot: usize) {
        if let Some(s) = self.slots.get(slot) {
            prefetch_lines(s);
        }
    }
}

/// How many arrivals ahead a dummy's state block is prefetched.
pub const BLOCK_AHEAD: usize = 8;
/// How many arrivals ahead the heap buffers are (after the block).
pub const HEAP_AHEAD: usize = 4;

/// The dummy id of a v1 message (`CB`, version 1, any kind: the id is at bytes 4..8), without
/// decoding the rest.
fn v1_dummy_id(payload: &[u8]) -> Option<u32> {
    match payload {
        [b'C', b'B', 1, _, a, b, c, d, ..] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// Prefetches every cache line of `*value`.
pub(crate) fn prefetch_lines<T>(value: &T) {
    prefetch_bytes((value as *const T).cast(), std::mem::size_of::<T>());
}

/// Prefetches the cache lines of `len` bytes from `p` (a hint: it never faults).
pub(crate) fn prefetch_bytes(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let mut off = 0;
        while off < len {
            // SAFETY: a prefetch is only a hint to the cache: it has no effect on memory and
            // does not fault, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off).cast()) };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{DummyInfo, MetricsConfig, Transport};

    fn dummy(id: u32) -> DummyMetrics {
        DummyMetrics::new(
            DummyInfo {
                id,
                name: format!("Dummy{id}"),
                transport: Transport::Udp,
                dt_s: Some(0.05),
                source: ([127, 0, 0, 1], 1).into(),
            },
            &MetricsConfig::default(),
        )
    }

    #[test]
    fn iterates_in_id_order_whatever_the_arrival_order() {
        let mut t = DummyTable::<()>::default();
        for id in [7, 3, 9, 1, 5] {
            t.insert(id, dummy(id));
        }
        assert_eq!(t.ids().collect::<Vec<_>>(), [1, 3, 5, 7, 9]);
        assert!(t.contains(9) && !t.contains(2));
        assert_eq!(t.get_mut(5).unwrap().info().id, 5);
        t.insert(5, dummy(5));
        assert_eq!(t.len(), 5, "replacing keeps one slot");
    }

    #[test]
    fn a_routed_id_is_not_registered_until_it_has_statistics() {
        let mut t = DummyTable::<u8>::default();
        t.slot_or_default(4).route = 9;
        assert!(!t.contains(4));
        assert_eq!(t.ids().count(), 0);
        assert_eq!(t.routes().copied().collect::<Vec<_>>(), [9]);
        t.insert(4, dummy(4));
        assert!(t.contains(4));
        assert_eq!(t.slot_mut(4).unwrap().route, 9, "the route is kept");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn only_v1_messages_name_their_dummy() {
        assert_eq!(v1_dummy_id(b"CB\x01\x02\x07\x00\x00\x00rest"), Some(7));
        assert_eq!(v1_dummy_id(b"CB\x02\x02\x07\x00\x00\x00"), None, "version");
        assert_eq!(v1_dummy_id(b"3"), None, "legacy registration");
        assert_eq!(v1_dummy_id(&0.5f64.to_le_bytes()), None);
    }

    #[test]
    fn prefetching_changes_nothing() {
        let mut t = DummyTable::<()>::default();
        t.insert(2, dummy(2));
        let mut b = ArrivalBatch::default();
        for payload in [
            &b"CB\x01\x02\x02\x00\x00\x00"[..],
            b"CB\x01\x02\x09\x00\x00\x00",
            b"x",
        ] {
            b.push(crate::event::Arrival {
                source: crate::event::Source::Udp(([127, 0, 0, 1], 1).into()),
                payload,
                kernel_ns: None,
                read_ns: 0,
                truncated: false,
            });
        }
        let mut slots = Vec::new();
        t.slots_of(&b, &mut slots);
        assert_eq!(slots, [0, usize::MAX, usize::MAX]);
        for i in 0..slots.len() {
            t.prefetch_ahead(&slots, i);
        }
        assert_eq!(t.len(), 1);
    }
}
