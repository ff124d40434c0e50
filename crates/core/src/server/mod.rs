//! The edge server's queueing discipline (SPEC section 3). A job is one
//! device's server-side training step for one iteration; its size is the
//! service time at full server speed [s]. Disciplines answer with wake-ups
//! the round engine schedules; a wake-up carries a token so a discipline can
//! ignore ones it has superseded (processor sharing re-plans on every
//! arrival).

mod fifo;
mod ideal;
mod processor_sharing;

pub use fifo::Fifo;
pub use ideal::Ideal;
pub use processor_sharing::ProcessorSharing;

use crate::config::ServerDisciplineKind;
use crate::units::{SimDuration, SimTime};

/// A job handle: the participant slot in the current round.
pub type JobId = u32;

/// A request to be woken at `at` with `token`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wake {
    pub at: SimTime,
    pub token: u64,
}

pub trait ServerDiscipline: Send {
    /// Job `job` of `service` [ns at full speed] arrives at `now`.
    fn arrive(&mut self, now: SimTime, job: JobId, service: SimDuration) -> Option<Wake>;
    /// A wake-up fires: push the jobs that completed into `done`; maybe
    /// request the next wake-up.
    fn wake(&mut self, now: SimTime, token: u64, done: &mut Vec<JobId>) -> Option<Wake>;
    /// Job `job` leaves before it completes (its device failed at `now`):
    /// it no longer holds the server; maybe request the next wake-up.
    fn cancel(&mut self, now: SimTime, job: JobId) -> Option<Wake>;
    /// Work done on job `job` by `now` [ns at full speed]: zero while it
    /// waits in a queue. Asked when a round is cut with the job unfinished.
    fn progress(&mut self, now: SimTime, job: JobId) -> SimDuration;
    /// Drops every job (round end).
    fn clear(&mut self);
}

pub fn discipline_from(kind: ServerDisciplineKind) -> Box<dyn ServerDiscipline> {
    match kind {
        ServerDisciplineKind::Ideal => Box::new(Ideal::default()),
        ServerDisciplineKind::Fifo => Box::new(Fifo::default()),
        ServerDisciplineKind::ProcessorSharing => Box::new(ProcessorSharing::default()),
    }
}
