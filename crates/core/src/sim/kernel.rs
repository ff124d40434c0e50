//! The kernel loop and the context a model sees.

use super::queue::EventQueue;
use crate::error::{Error, Result};
use crate::units::{SimDuration, SimTime};

/// What a model sees while it handles an event: the clock and a way to
/// schedule. It never sees the queue itself.
pub struct Context<'a, E> {
    now: SimTime,
    queue: &'a mut EventQueue<E>,
    bad_schedule: &'a mut Option<SimTime>,
    stop: &'a mut bool,
}

impl<E> Context<'_, E> {
    /// The current simulated time [ns].
    #[inline]
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Schedules `ev` at absolute time `at` (>= now).
    #[inline]
    pub fn schedule(&mut self, at: SimTime, ev: E) {
        if !self.queue.push(at, ev) && self.bad_schedule.is_none() {
            *self.bad_schedule = Some(at);
        }
    }

    /// Schedules `ev` after `delay`.
    #[inline]
    pub fn schedule_in(&mut self, delay: SimDuration, ev: E) {
        let at = self.now + delay;
        self.schedule(at, ev);
    }

    /// Ends the run after the current event.
    pub fn stop(&mut self) {
        *self.stop = true;
    }
}

/// A simulation model: one handler for its own event type. Components
/// inside the model receive the same context when the model delegates.
pub trait Model {
    type Event;
    fn handle(&mut self, ev: Self::Event, ctx: &mut Context<'_, Self::Event>) -> Result<()>;

    /// Called with the next pending event before the current one is
    /// handled, so a model whose state is too large for the cache can
    /// prefetch what that event will touch. A hint: the default does
    /// nothing, and the next event may still change.
    #[inline]
    fn prefetch(&self, _next: &Self::Event) {}
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// No events left.
    Drained,
    /// The next event lies beyond the horizon.
    Horizon,
    /// The model asked to stop.
    Stopped,
}

/// How far ahead the kernel asks the model to prefetch [events].
const PREFETCH_AHEAD: usize = 8;

/// The kernel: owns the queue and the clock.
pub struct Kernel<E> {
    queue: EventQueue<E>,
    now: SimTime,
    processed: u64,
}

impl<E> Default for Kernel<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> Kernel<E> {
    pub fn new() -> Self {
        Kernel { queue: EventQueue::new(), now: SimTime::ZERO, processed: 0 }
    }

    /// Wiring-time scheduling, before the run starts.
    pub fn schedule(&mut self, at: SimTime, ev: E) -> Result<()> {
        if self.queue.push(at, ev) {
            Ok(())
        } else {
            Err(Error::Numeric {
                checkpoint: "kernel.schedule",
                detail: format!("event at {at} before now {}", self.now),
            })
        }
    }

    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events handled so far.
    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// Runs events with time <= `horizon` until the queue drains or the
    /// model stops.
    pub fn run<M: Model<Event = E>>(&mut self, model: &mut M, horizon: SimTime) -> Result<StopReason> {
        let mut bad = None;
        let mut stop = false;
        loop {
            if horizon != SimTime::MAX {
                match self.queue.peek_time() {
                    None => return Ok(StopReason::Drained),
                    Some(t) if t > horizon => return Ok(StopReason::Horizon),
                    Some(_) => {}
                }
            }
            let Some((t, ev)) = self.queue.pop() else {
                return Ok(StopReason::Drained);
            };
            // Prefetch for the event PREFETCH_AHEAD places on where the
            // head holds it (a miss takes longer than one event), else for
            // the next one.
            match self.queue.ahead(PREFETCH_AHEAD) {
                Some(later) => model.prefetch(later),
                None => {
                    if let Some(next) = self.queue.peek() {
                        model.prefetch(next);
                    }
                }
            }
            self.now = t;
            self.processed += 1;
            let mut ctx = Context { now: t, queue: &mut self.queue, bad_schedule: &mut bad, stop: &mut stop };
            model.handle(ev, &mut ctx)?;
            if let Some(at) = bad {
                return Err(Error::Numeric {
                    checkpoint: "kernel.schedule",
                    detail: format!("an event was scheduled at {at}, before now ({t})"),
                });
            }
            if stop {
                return Ok(StopReason::Stopped);
            }
        }
    }
}
