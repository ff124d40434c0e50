//! The pending-event set: a monotone radix heap with 256-way digits on
//! integer nanoseconds, FIFO among equal times.
//!
//! Chosen by measurement (docs/performance.md, docs/history.md). Simulated time only
//! moves forward, so a radix heap applies: an event waits in the bucket
//! (level, digit) of the highest 8-bit digit in which its time differs from
//! the last popped time. An event moves down at most 8 times in its life, in
//! sequential `Vec` passes that stay cache-friendly at a million pending
//! events, where a binary heap's sift-downs are memory-bound. Two other
//! designs were measured: the `radix-heap` crate (binary digits) pops equal
//! keys last-in-first-out, so FIFO needs 128-bit (time, sequence) keys, which
//! made it slower than `BinaryHeap` at 1,000 events; a binary-digit version
//! of this queue moved each event ~20 times at a million events.

use crate::units::SimTime;
use std::collections::VecDeque;

/// Bits per digit and digits per 64-bit time.
const DIGIT: u32 = 8;
const LEVELS: usize = 8;
const WAYS: usize = 1 << DIGIT;
/// Buckets up to this size are sorted by rank counting (see `sort_into_head`).
const RANK_MAX: usize = 32;
/// Buckets up to this size are sorted into the head at once (PHOLD at a
/// million LPs has ~1 pending event per simulated us, so its lowest
/// buckets, level 2 at 65.5 us each, hold ~60); larger ones are
/// redistributed, linear in their size.
const SORT_MAX: usize = 512;

/// No sequence number is stored: events of equal time always share a
/// bucket (their bucket depends only on the time and `last`), pushes
/// append, and redistribution moves a bucket front to back, so insertion
/// order survives every move.
struct Entry<E> {
    time: u64,
    ev: E,
}

/// A min-queue of events ordered by (time, insertion order).
pub struct EventQueue<E> {
    /// `buckets[level * 256 + digit]`.
    buckets: Vec<Vec<Entry<E>>>,
    /// Non-empty buckets, one bit each, per level.
    occupied: [[u64; WAYS / 64]; LEVELS],
    /// Events at or before `last`, sorted by time, FIFO among equal times.
    /// (Before `last` only when a push lands between the last pop and a
    /// `peek` that refilled ahead.)
    head: VecDeque<Entry<E>>,
    /// Scratch for [`Self::sort_into_head`]: (time, position) keys.
    order: Vec<u64>,
    /// The radix base: every bucketed event is later than it.
    last: u64,
    /// The time of the last pop [ns]: nothing earlier may be pushed.
    floor: u64,
    len: usize,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue {
            buckets: (0..LEVELS * WAYS).map(|_| Vec::new()).collect(),
            occupied: [[0; WAYS / 64]; LEVELS],
            head: VecDeque::new(),
            order: Vec::new(),
            last: 0,
            floor: 0,
            len: 0,
        }
    }

    /// Files `e` (with `e.time > last`) under its bucket.
    #[inline]
    fn file(&mut self, e: Entry<E>) {
        let x = e.time ^ self.last;
        let level = ((63 - x.leading_zeros()) / DIGIT) as usize;
        let digit = ((e.time >> (level as u32 * DIGIT)) as usize) & (WAYS - 1);
        self.occupied[level][digit / 64] |= 1 << (digit % 64);
        self.buckets[level * WAYS + digit].push(e);
    }

    /// Inserts `ev` at `at`. Returns `false` (and inserts nothing) when `at`
    /// lies before the last popped time: the kernel reports that as a bug
    /// in the model instead of reordering history.
    #[inline]
    pub fn push(&mut self, at: SimTime, ev: E) -> bool {
        if at.0 < self.floor {
            return false;
        }
        self.len += 1;
        let e = Entry { time: at.0, ev };
        if at.0 > self.last {
            self.file(e);
        } else if self.head.back().is_none_or(|b| b.time <= at.0) {
            self.head.push_back(e);
        } else {
            // Earlier than `last` after a look-ahead refill: keep `head`
            // sorted, after the events of equal time.
            let i = self.head.partition_point(|h| h.time <= at.0);
            self.head.insert(i, e);
        }
        true
    }

    /// Removes the earliest event (FIFO among equal times).
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        if self.head.is_empty() {
            self.refill();
        }
        let e = self.head.pop_front()?;
        self.len -= 1;
        self.floor = e.time;
        Some((SimTime(e.time), e.ev))
    }

    /// The lowest non-empty bucket holds the earliest events, and every one
    /// of them precedes every other bucketed event. A small bucket is
    /// sorted (stably: FIFO among equal times) straight into `head`, which
    /// lets the kernel see the next events and prefetch for them; a large
    /// one is moved down around its minimum.
    fn refill(&mut self) {
        let Some(b) = self.lowest_bucket() else {
            return;
        };
        let (level, digit) = (b / WAYS, b % WAYS);
        self.occupied[level][digit / 64] &= !(1 << (digit % 64));
        let mut moving = std::mem::take(&mut self.buckets[b]);
        if moving.len() == 1 {
            self.last = moving[0].time;
            self.head.extend(moving.drain(..));
        } else if moving.len() <= SORT_MAX && level < 4 {
            // Other buckets stay valid when `last` moves anywhere inside
            // this bucket's range: each event keeps its highest byte that
            // differs from `last`, and that byte.
            self.sort_into_head(&mut moving);
        } else {
            let min = moving.iter().map(|e| e.time).min().unwrap_or(self.last);
            self.last = min;
            for e in moving.drain(..) {
                if e.time == min { self.head.push_back(e) } else { self.file(e) }
            }
        }
        // Keep the allocation of the drained bucket for reuse.
        self.buckets[b] = moving;
    }

    /// Appends `moving`, a bucket below level 4, to the head sorted by
    /// (time, position in `moving`), i.e. FIFO among equal times, and
    /// leaves it empty. Its times agree above bit 32, so each sorts by one
    /// u64 key, time's low 32 bits over the position: an unstable sort of
    /// plain integers in a reused buffer, several times faster than a
    /// stable sort of the entries (which allocates per call).
    fn sort_into_head(&mut self, moving: &mut Vec<Entry<E>>) {
        self.order.clear();
        self.order.extend(moving.iter().enumerate().map(|(i, e)| (e.time << 32) | i as u64));
        let n = moving.len();
        if n <= RANK_MAX {
            // Keys are distinct, so a key's rank is how many keys are
            // smaller: n^2 comparisons without a data-dependent branch
            // (they vectorize), cheaper than the branchy insertion sort a
            // general sort uses on so few elements.
            let mut sorted = [0u64; RANK_MAX];
            for &k in &self.order {
                sorted[self.order.iter().filter(|&&x| x < k).count()] = k;
            }
            self.order.copy_from_slice(&sorted[..n]);
        } else {
            self.order.sort_unstable();
        }
        self.last = moving[(self.order[n - 1] & 0xffff_ffff) as usize].time;
        self.head.reserve(n);
        // SAFETY: `order` names every index below n exactly once, so each
        // entry is moved out exactly once, and the length is 0 before any
        // is (the head has room: pushing cannot panic, nothing is dropped twice).
        unsafe {
            moving.set_len(0);
            let base = moving.as_ptr();
            for &k in &self.order {
                self.head.push_back(std::ptr::read(base.add((k & 0xffff_ffff) as usize)));
            }
        }
    }

    /// The event `k` places behind the earliest one when it is already
    /// sorted into the head (a prefetch hint: no refill).
    #[inline]
    pub fn ahead(&self, k: usize) -> Option<&E> {
        self.head.get(k).map(|e| &e.ev)
    }

    fn lowest_bucket(&self) -> Option<usize> {
        for (level, words) in self.occupied.iter().enumerate() {
            for (w, &bits) in words.iter().enumerate() {
                if bits != 0 {
                    return Some(level * WAYS + w * 64 + bits.trailing_zeros() as usize);
                }
            }
        }
        None
    }

    /// The earliest pending entry; refills `head` when it is empty.
    fn front(&mut self) -> Option<&Entry<E>> {
        if self.head.is_empty() {
            self.refill();
        }
        self.head.front()
    }

    /// The earliest pending event, without removing it.
    pub fn peek(&mut self) -> Option<&E> {
        self.front().map(|e| &e.ev)
    }

    /// Time of the earliest pending event, without removing it.
    pub fn peek_time(&mut self) -> Option<SimTime> {
        self.front().map(|e| SimTime(e.time))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn equal_times_pop_fifo() {
        let mut q = EventQueue::new();
        for i in 0..100u32 {
            assert!(q.push(SimTime(5), i));
        }
        q.push(SimTime(1), 1000);
        assert_eq!(q.pop(), Some((SimTime(1), 1000)));
        for i in 0..100u32 {
            assert_eq!(q.pop(), Some((SimTime(5), i)));
        }
        assert!(q.is_empty());
    }

    #[test]
    fn refuses_the_past() {
        let mut q = EventQueue::new();
        q.push(SimTime(10), ());
        q.pop();
        assert!(!q.push(SimTime(9), ()));
        assert!(q.push(SimTime(10), ()));
    }

    /// Against a sorted reference: random pushes at or after the last pop,
    /// many ties, interleaved pops.
    #[test]
    fn matches_a_stable_sort() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(5);
        let mut q = EventQueue::new();
        let mut reference: Vec<(u64, u64)> = Vec::new(); // (time, seq)
        let (mut seq, mut now) = (0u64, 0u64);
        for _ in 0..20_000 {
            if rng.random_bool(0.2) {
                // A look-ahead must not stop pushes before the peeked time.
                let _ = q.peek();
            }
            if rng.random_bool(0.55) {
                let bits: u32 = rng.random_range(1..40);
                let t = now + if rng.random_bool(0.3) { 0 } else { rng.random_range(0..1u64 << bits) };
                q.push(SimTime(t), seq);
                reference.push((t, seq));
                seq += 1;
            } else if let Some((t, s)) = q.pop() {
                reference.sort();
                let want = reference.remove(0);
                assert_eq!((t.0, s), want);
                now = t.0;
            }
        }
        reference.sort();
        for want in reference {
            let (t, s) = q.pop().unwrap();
            assert_eq!((t.0, s), want);
        }
        assert!(q.pop().is_none());
    }

    /// Buckets far above the sorting size (and with many ties) are moved
    /// down, not sorted: the pop order is still the stable sort's.
    #[test]
    fn crowded_buckets_pop_in_stable_order() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(9);
        let mut q = EventQueue::new();
        let mut reference: Vec<(u64, u32)> = Vec::new();
        for i in 0..40 * SORT_MAX as u32 {
            let t = if rng.random_bool(0.3) { 777 } else { rng.random_range(1..1u64 << 19) };
            q.push(SimTime(t), i);
            reference.push((t, i));
        }
        reference.sort_by_key(|&(t, _)| t);
        let got: Vec<(u64, u32)> = std::iter::from_fn(|| q.pop()).map(|(t, e)| (t.0, e)).collect();
        assert_eq!(got, reference);
    }

    #[test]
    fn look_ahead_allows_earlier_pushes() {
        let mut q = EventQueue::new();
        q.push(SimTime(5), 0u32);
        q.push(SimTime(300), 1);
        assert_eq!(q.pop(), Some((SimTime(5), 0)));
        assert_eq!(q.peek(), Some(&1)); // refills ahead: the base moves to 300
        q.push(SimTime(250), 2);
        q.push(SimTime(200), 3);
        q.push(SimTime(250), 4);
        q.push(SimTime(1000), 5);
        let got: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        let want = [(200, 3), (250, 2), (250, 4), (300, 1), (1000, 5)];
        assert_eq!(got, want.iter().map(|&(t, e)| (SimTime(t), e)).collect::<Vec<_>>());
    }
}
