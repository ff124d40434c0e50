use super::{JobId, ServerDiscipline, Wake};
use crate::units::{SimDuration, SimTime};
use std::collections::VecDeque;

/// One job at a time at full speed, first come first served.
#[derive(Default)]
pub struct Fifo {
    waiting: VecDeque<(JobId, SimDuration)>,
    busy: Option<JobId>,
    epoch: u64,
}

impl Fifo {
    fn start(&mut self, now: SimTime) -> Option<Wake> {
        let (job, service) = self.waiting.pop_front()?;
        self.busy = Some(job);
        Some(Wake { at: now + service, token: self.epoch })
    }
}

impl ServerDiscipline for Fifo {
    fn arrive(&mut self, now: SimTime, job: JobId, service: SimDuration) -> Option<Wake> {
        self.waiting.push_back((job, service));
        if self.busy.is_none() { self.start(now) } else { None }
    }

    fn wake(&mut self, now: SimTime, token: u64, done: &mut Vec<JobId>) -> Option<Wake> {
        if token != self.epoch {
            return None;
        }
        if let Some(j) = self.busy.take() {
            done.push(j);
        }
        self.start(now)
    }

    fn clear(&mut self) {
        self.waiting.clear();
        self.busy = None;
        self.epoch += 1;
    }
}
