//! Quantize + pack throughput at b = 8 on one core, in GB/s of f32 input
//! (criterion reports bytes/s). Reference in the same sitting:
//! `python3 benches/quant_numpy.py`. `cargo bench --bench quant`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sflam_core::quant::{quantize_pack, quantize_pack_into, unpack};

fn quant(c: &mut Criterion) {
    // One ViT-B/32 mini-batch at the cut: 64 x 49 x 768 activations.
    let d = 64 * 49 * 768;
    let a: Vec<f32> = (0..d).map(|i| ((i as f32) * 0.618_034).sin() * 3.0).collect();
    let mut g = c.benchmark_group("quantize");
    g.sample_size(20);
    g.throughput(Throughput::Bytes((d * 4) as u64));
    for bits in [4u32, 8, 16] {
        g.bench_function(format!("pack/b={bits}"), |b| {
            let (mut key, mut out) = (0u64, Vec::new());
            b.iter(|| {
                key += 1;
                quantize_pack_into(&a, bits, key, &mut out).unwrap();
                out.len()
            })
        });
    }
    let bytes = quantize_pack(&a, 8, 1).unwrap();
    g.bench_function("unpack/b=8", |b| b.iter(|| unpack(&bytes, d, 8).unwrap().len()));
    g.finish();
}

criterion_group!(benches, quant);
criterion_main!(benches);
