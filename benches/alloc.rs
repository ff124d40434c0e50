//! Allocators on one real round problem: 1,000 candidates x 100 RBs x 13
//! bit levels (4..=16), taken from the engine on the million-device
//! scenario's settings. `cargo bench --bench alloc`.

use criterion::{Criterion, criterion_group, criterion_main};
use sflam_core::alloc::{Problem, allocator_from};
use sflam_core::config::Scenario;
use sflam_core::trace::VecSink;
use std::cell::RefCell;

/// A real round problem; `weight_j` sets how many pairs are worth their
/// energy (1000 J: a few percent, the default; 1e6 J: every feasible pair).
fn problem(weight_j: f64) -> Problem {
    let mut s = Scenario::default();
    s.allocator.weight_j = weight_j;
    s.devices.count = 5000;
    s.run.candidates = 1000;
    s.run.rounds = 1;
    s.network.rb_count = 100;
    s.allocator.name = "fixed".parse().unwrap();
    let got = RefCell::new(None);
    let mut sink = VecSink::default();
    sflam_core::run::simulate(
        &s,
        &mut sink,
        None,
        Some(Box::new(|_, p: &Problem, _: &_| {
            *got.borrow_mut() = Some(p.clone());
            Ok(())
        })),
        None,
    )
    .unwrap();
    got.into_inner().unwrap()
}

fn allocators(c: &mut Criterion) {
    for (label, w) in [("w1e3", 1e3), ("w1e6-dense", 1e6)] {
        let p = problem(w);
        assert_eq!((p.candidates.len(), p.rb_count, p.quantized_levels().len()), (1000, 100, 13));
        let mut g = c.benchmark_group(format!("allocate-1000x100x13-{label}"));
        g.sample_size(20);
        for name in ["exact", "bcd", "ep", "nq", "rb"] {
            let mut a = allocator_from(name, &Default::default()).unwrap();
            let mut rng = sflam_core::sim::rng::stream(1, "allocator", 0);
            g.bench_function(name, |b| b.iter(|| a.decide(&p, &mut rng).objective_j));
        }
        g.finish();
    }
}

criterion_group!(benches, allocators);
criterion_main!(benches);
