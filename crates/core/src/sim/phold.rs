//! PHOLD, the standard synthetic DES benchmark: `lps` logical processes,
//! one event each; handling an event sends a new one to a uniformly random
//! LP at now + lookahead + Exp(mean). Used by `benches/kernel.rs` and the
//! docs/performance.md.

use super::rng::{Rng, stream};
use super::{Context, Kernel, Model};
use crate::units::{SimDuration, SimTime};
use rand::Rng as _;
use rand_distr::{Distribution, Exp};

/// The PHOLD model over the sflam kernel.
pub struct Phold {
    lps: u32,
    lookahead_ns: f64,
    exp: Exp<f64>,
    rng: Rng,
    /// Events handled per LP.
    pub counts: Vec<u32>,
    /// Stop after this many events.
    pub budget: u64,
    handled: u64,
}

impl Phold {
    /// `lookahead_s` and `mean_s` in [s] of simulated time.
    pub fn new(lps: u32, lookahead_s: f64, mean_s: f64, seed: u64, budget: u64) -> Phold {
        Phold {
            lps,
            lookahead_ns: lookahead_s * 1e9,
            exp: Exp::new(1.0 / (mean_s * 1e9)).expect("positive mean"),
            rng: stream(seed, "phold", 0),
            counts: vec![0; lps as usize],
            budget,
            handled: 0,
        }
    }

    /// The next delay [ns].
    #[inline]
    pub fn delay(&mut self) -> SimDuration {
        SimDuration((self.lookahead_ns + self.exp.sample(&mut self.rng)) as u64)
    }

    /// A uniformly random destination LP.
    #[inline]
    pub fn dest(&mut self) -> u32 {
        self.rng.random_range(0..self.lps)
    }

    /// A kernel holding one initial event per LP.
    pub fn kernel(&mut self) -> Kernel<u32> {
        let mut k = Kernel::new();
        for lp in 0..self.lps {
            let d = self.delay();
            k.schedule(SimTime::ZERO + d, lp).expect("time zero is never in the past");
        }
        k
    }
}

impl Model for Phold {
    type Event = u32;

    /// The per-LP counters are the one random memory access per event: at
    /// a million LPs it is a cache miss that otherwise dominates the run.
    #[inline]
    fn prefetch(&self, next: &u32) {
        crate::sim::prefetch(self.counts.get(*next as usize));
    }

    #[inline]
    fn handle(&mut self, lp: u32, ctx: &mut Context<'_, u32>) -> crate::Result<()> {
        self.counts[lp as usize] += 1;
        self.handled += 1;
        let (d, to) = (self.delay(), self.dest());
        ctx.schedule_in(d, to);
        if self.handled >= self.budget {
            ctx.stop();
        }
        Ok(())
    }
}
