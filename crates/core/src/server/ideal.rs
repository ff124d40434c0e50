use super::{JobId, ServerDiscipline, Wake};
use crate::units::{SimDuration, SimTime};

/// The paper's server: every job is served at full speed at once, in
/// parallel, with no waiting.
pub struct Ideal;

impl ServerDiscipline for Ideal {
    fn arrive(&mut self, now: SimTime, job: JobId, service: SimDuration) -> Option<Wake> {
        Some(Wake { at: now + service, token: job as u64 })
    }

    fn wake(&mut self, _now: SimTime, token: u64, done: &mut Vec<JobId>) -> Option<Wake> {
        done.push(token as JobId);
        None
    }

    fn clear(&mut self) {}
}
