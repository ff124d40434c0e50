use super::{JobId, ServerDiscipline, Wake};
use crate::units::{SimDuration, SimTime};
use std::collections::VecDeque;

/// One job at a time at full speed, first come first served.
#[derive(Default)]
pub struct Fifo {
    waiting: VecDeque<(JobId, SimDuration)>,
    /// The job in service and when its service began.
    busy: Option<(JobId, SimTime)>,
    /// Bumped whenever a requested wake-up is superseded (round end, the
    /// job in service cancelled).
    epoch: u64,
}

impl Fifo {
    fn start(&mut self, now: SimTime) -> Option<Wake> {
        let (job, service) = self.waiting.pop_front()?;
        self.busy = Some((job, now));
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
        if let Some((j, _)) = self.busy.take() {
            done.push(j);
        }
        self.start(now)
    }

    fn cancel(&mut self, now: SimTime, job: JobId) -> Option<Wake> {
        if self.busy.is_some_and(|(j, _)| j == job) {
            self.busy = None;
            self.epoch += 1;
            return self.start(now);
        }
        self.waiting.retain(|&(j, _)| j != job);
        None
    }

    fn progress(&mut self, now: SimTime, job: JobId) -> SimDuration {
        match self.busy {
            Some((j, since)) if j == job => now.saturating_sub(since),
            _ => SimDuration::ZERO,
        }
    }

    fn clear(&mut self) {
        self.waiting.clear();
        self.busy = None;
        self.epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A (100) in service from 0, B (100) queued at 10, C (50) at 20.
    /// Cancelling B leaves C next: C runs 100..150. Cancelling the job in
    /// service starts the next at once and voids the old wake-up.
    #[test]
    fn cancel_queued_and_in_service() {
        let mut f = Fifo::default();
        let w0 = f.arrive(SimTime(0), 0, SimDuration(100)).unwrap();
        assert!(f.arrive(SimTime(10), 1, SimDuration(100)).is_none());
        assert!(f.arrive(SimTime(20), 2, SimDuration(50)).is_none());
        assert_eq!(f.progress(SimTime(30), 1), SimDuration::ZERO, "queued: no service yet");
        assert_eq!(f.progress(SimTime(30), 0), SimDuration(30));
        assert!(f.cancel(SimTime(40), 1).is_none());
        let mut done = vec![];
        let w1 = f.wake(w0.at, w0.token, &mut done).unwrap();
        assert_eq!(done, vec![0]);
        assert_eq!(w1.at, SimTime(150));
        // Now cancel C mid-service: the server is free, C's wake-up is void.
        f.arrive(SimTime(120), 3, SimDuration(10));
        let w2 = f.cancel(SimTime(130), 2).unwrap();
        assert_eq!(w2.at, SimTime(140), "job 3 starts at the cancel instant");
        done.clear();
        assert!(f.wake(w1.at, w1.token, &mut done).is_none());
        assert!(done.is_empty(), "the cancelled job's wake-up is void");
        f.wake(w2.at, w2.token, &mut done);
        assert_eq!(done, vec![3]);
    }
}
