use super::{JobId, ServerDiscipline, Wake};
use crate::units::{SimDuration, SimTime};

/// The paper's server: every job is served at full speed at once, in
/// parallel, with no waiting.
#[derive(Default)]
pub struct Ideal {
    /// Arrival of each job in service, by job [ns].
    since: Vec<Option<SimTime>>,
}

impl ServerDiscipline for Ideal {
    fn arrive(&mut self, now: SimTime, job: JobId, service: SimDuration) -> Option<Wake> {
        let j = job as usize;
        if self.since.len() <= j {
            self.since.resize(j + 1, None);
        }
        self.since[j] = Some(now);
        Some(Wake { at: now + service, token: job as u64 })
    }

    fn wake(&mut self, _now: SimTime, token: u64, done: &mut Vec<JobId>) -> Option<Wake> {
        // A cancelled job's wake-up finds no job.
        if self.since.get_mut(token as usize).and_then(Option::take).is_some() {
            done.push(token as JobId);
        }
        None
    }

    fn cancel(&mut self, _now: SimTime, job: JobId) -> Option<Wake> {
        if let Some(s) = self.since.get_mut(job as usize) {
            *s = None;
        }
        None
    }

    fn progress(&mut self, now: SimTime, job: JobId) -> SimDuration {
        match self.since.get(job as usize) {
            Some(Some(s)) => now.saturating_sub(*s),
            _ => SimDuration::ZERO,
        }
    }

    fn clear(&mut self) {
        self.since.clear();
    }
}
