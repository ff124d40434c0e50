//! The pending-event set: a radix heap keyed on (time [ns], sequence).
//!
//! Chosen by measurement (README, performance table): simulated time only
//! moves forward, so a monotone radix heap applies, and at a million pending
//! events it beats `std::collections::BinaryHeap`, whose sift-downs are
//! memory-bound at that size. The sequence number makes every key unique and
//! keeps equal-time events in insertion (FIFO) order.

use crate::units::SimTime;
use radix_heap::RadixHeapMap;
use std::cmp::Reverse;

/// A min-queue of events ordered by (time, insertion sequence).
pub struct EventQueue<E> {
    heap: RadixHeapMap<Reverse<(u64, u64)>, E>,
    next_seq: u64,
    /// The time of the last pop: nothing earlier may be pushed.
    floor: SimTime,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    pub fn new() -> Self {
        EventQueue { heap: RadixHeapMap::new(), next_seq: 0, floor: SimTime::ZERO }
    }

    /// Inserts `ev` at `at`. Returns `false` (and inserts nothing) when `at`
    /// lies before the last popped time: the kernel reports that as a bug
    /// in the model instead of reordering history.
    #[inline]
    pub fn push(&mut self, at: SimTime, ev: E) -> bool {
        if at < self.floor {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse((at.0, seq)), ev);
        true
    }

    /// Removes the earliest event (FIFO among equal times).
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        let (Reverse((t, _)), ev) = self.heap.pop()?;
        self.floor = SimTime(t);
        Some((SimTime(t), ev))
    }

    /// Time of the earliest pending event, without removing it.
    pub fn peek_time(&self) -> Option<SimTime> {
        // The radix heap only knows its top after a pop; a pending-event
        // peek is rare (used by `run_until`), so a linear scan is fine.
        self.heap.keys().map(|Reverse((t, _))| SimTime(*t)).min()
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
