use super::{JobId, ServerDiscipline, Wake};
use crate::units::{SimDuration, SimTime};

/// Egalitarian processor sharing: n jobs in service each progress at 1/n
/// of full speed. Remaining work is kept in [ns at full speed] as integers,
/// re-planned at every arrival and completion.
#[derive(Default)]
pub struct ProcessorSharing {
    /// (job, remaining work, whole work) [ns at full speed]
    jobs: Vec<(JobId, u64, u64)>,
    last: SimTime,
    /// Fractional progress carried between updates [ns × jobs].
    carry: u64,
    generation: u64,
}

impl ProcessorSharing {
    /// Advances every job by the elapsed time divided among the jobs.
    fn advance(&mut self, now: SimTime) {
        let n = self.jobs.len() as u64;
        let total = now.saturating_sub(self.last).0 + self.carry;
        if let Some(each) = total.checked_div(n) {
            self.carry = total % n;
            for (_, rem, _) in &mut self.jobs {
                *rem = rem.saturating_sub(each);
            }
        } else {
            self.carry = 0;
        }
        self.last = now;
    }

    fn plan(&mut self, now: SimTime) -> Option<Wake> {
        self.generation += 1;
        let n = self.jobs.len() as u64;
        let min = self.jobs.iter().map(|j| j.1).min()?;
        // The smallest job ends after min * n, less the carried progress.
        let dt = (min * n).saturating_sub(self.carry);
        Some(Wake { at: now + SimDuration(dt), token: self.generation })
    }
}

impl ServerDiscipline for ProcessorSharing {
    fn arrive(&mut self, now: SimTime, job: JobId, service: SimDuration) -> Option<Wake> {
        self.advance(now);
        self.jobs.push((job, service.0, service.0));
        self.plan(now)
    }

    fn wake(&mut self, now: SimTime, token: u64, done: &mut Vec<JobId>) -> Option<Wake> {
        if token != self.generation {
            return None;
        }
        self.advance(now);
        // Jobs within the rounding slack of zero are done; keep arrival order.
        let n = self.jobs.len() as u64;
        self.jobs.retain(|&(j, rem, _)| {
            if rem <= n.saturating_sub(1) {
                done.push(j);
                false
            } else {
                true
            }
        });
        self.plan(now)
    }

    fn cancel(&mut self, now: SimTime, job: JobId) -> Option<Wake> {
        self.advance(now);
        let before = self.jobs.len();
        self.jobs.retain(|j| j.0 != job);
        if self.jobs.len() == before {
            return None;
        }
        // Its share goes to the others from now on.
        self.carry = 0;
        self.plan(now)
    }

    fn progress(&mut self, now: SimTime, job: JobId) -> SimDuration {
        // Advancing to `now` does not move the planned wake-up (the carry
        // keeps the remainder), so it is safe to do here.
        self.advance(now);
        self.jobs.iter().find(|j| j.0 == job).map_or(SimDuration::ZERO, |j| SimDuration(j.2 - j.1))
    }

    fn clear(&mut self) {
        self.jobs.clear();
        self.carry = 0;
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two equal jobs arriving together under PS both finish at 2x service.
    #[test]
    fn two_equal_jobs_finish_together_at_twice_the_service() {
        let mut ps = ProcessorSharing::default();
        ps.arrive(SimTime(0), 0, SimDuration(100));
        let w = ps.arrive(SimTime(0), 1, SimDuration(100)).unwrap();
        assert_eq!(w.at, SimTime(200));
        let mut done = vec![];
        assert!(ps.wake(w.at, w.token, &mut done).is_none());
        assert_eq!(done, vec![0, 1]);
    }

    /// Job A (100) at t=0, job B (100) at t=50: A alone for 50, then both
    /// at half speed: A needs 50 more -> ends at 150; B then has 50 left
    /// alone -> ends at 200.
    #[test]
    fn staggered_arrivals() {
        let mut ps = ProcessorSharing::default();
        ps.arrive(SimTime(0), 0, SimDuration(100));
        let w = ps.arrive(SimTime(50), 1, SimDuration(100)).unwrap();
        assert_eq!(w.at, SimTime(150));
        let mut done = vec![];
        let w2 = ps.wake(w.at, w.token, &mut done).unwrap();
        assert_eq!(done, vec![0]);
        assert_eq!(w2.at, SimTime(200));
        done.clear();
        ps.wake(w2.at, w2.token, &mut done);
        assert_eq!(done, vec![1]);
    }

    /// A and B (100 each) share from 0; at 60 each has done 30. Cancelling
    /// B gives A the whole server: its 70 left end at 130.
    #[test]
    fn cancel_gives_the_share_back() {
        let mut ps = ProcessorSharing::default();
        ps.arrive(SimTime(0), 0, SimDuration(100));
        let w = ps.arrive(SimTime(0), 1, SimDuration(100)).unwrap();
        assert_eq!(ps.progress(SimTime(60), 1), SimDuration(30));
        let w2 = ps.cancel(SimTime(60), 1).unwrap();
        assert_eq!(w2.at, SimTime(130));
        let mut done = vec![];
        assert!(ps.wake(w.at, w.token, &mut done).is_none() && done.is_empty(), "superseded wake-up");
        ps.wake(w2.at, w2.token, &mut done);
        assert_eq!(done, vec![0]);
    }
}
