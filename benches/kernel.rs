//! PHOLD on the sflam kernel (radix heap) against the same PHOLD on a
//! plain `std::collections::BinaryHeap`, measured in the same run.
//! `cargo bench --bench kernel`; SimPy reference: docs/performance.md.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sflam_core::sim::phold::Phold;
use sflam_core::units::SimTime;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Events per measurement: enough for the queue to reach steady state.
fn events(lps: u32) -> u64 {
    (10 * lps as u64).clamp(2_000_000, 10_000_000)
}

fn phold_kernel(c: &mut Criterion) {
    let mut g = c.benchmark_group("phold");
    g.sample_size(10);
    for lps in [1_000u32, 1_000_000] {
        let n = events(lps);
        g.throughput(Throughput::Elements(n));
        g.bench_function(format!("sflam-kernel/{lps}"), |b| {
            b.iter_batched(
                || {
                    let mut m = Phold::new(lps, 0.1, 1.0, 1, n);
                    let k = m.kernel();
                    (m, k)
                },
                |(mut m, mut k)| {
                    k.run(&mut m, SimTime::MAX).unwrap();
                    k.processed()
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(format!("std-binaryheap/{lps}"), |b| {
            b.iter_batched(
                || {
                    let mut m = Phold::new(lps, 0.1, 1.0, 1, n);
                    let mut h = BinaryHeap::with_capacity(lps as usize + 1);
                    for lp in 0..lps {
                        h.push(Reverse((m.delay().0, lp as u64, lp)));
                    }
                    (m, h)
                },
                |(mut m, mut h)| {
                    for seq in lps as u64..lps as u64 + n {
                        let Reverse((t, _, lp)) = h.pop().unwrap();
                        m.counts[lp as usize] += 1;
                        let (d, to) = (m.delay(), m.dest());
                        h.push(Reverse((t + d.0, seq, to)));
                    }
                    h.len()
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, phold_kernel);
criterion_main!(benches);
