//! The Parquet trace writer: rows per second into `device_rounds.parquet`,
//! inline (1 thread) and with the writer thread (2). `cargo bench --bench trace`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sflam_core::trace::{DeviceRoundRow, Outcome, ParquetSink, TraceSink};

const ROWS: u32 = 200_000;

fn row(i: u32) -> DeviceRoundRow {
    let f = i as f64;
    let finished = !i.is_multiple_of(10);
    DeviceRoundRow {
        round: i / 100,
        device: i % 100_000,
        cell: i % 100,
        rb: i % 100,
        distance_m: 50.0 + f % 950.0,
        gain: 1e-12 * (1.0 + f % 7.0),
        power_w: 0.5 + (f % 3.0) / 2.0,
        bits: 4 + i % 13,
        rate_bps: 1e7 + f,
        interference_w: 1e-13 * (f % 5.0),
        sinr_db: 10.0 + f % 20.0,
        payload_bits: 20_000_000 + i as u64,
        t_cmp_s: 5.0 + f * 1e-6,
        t_com_s: 0.2,
        t_srv_s: 0.05,
        t_wait_s: 0.0,
        t_down_s: 0.0,
        time_s: 5.25,
        predicted_time_s: 5.25,
        energy_cmp_j: 3.0,
        energy_com_j: 0.2,
        energy_j: 3.2,
        outcome: if finished { Outcome::Finished } else { Outcome::Straggler },
        cut_phase: (!finished).then_some("uplink"),
        cut_iteration: (!finished).then_some(0),
        train_loss: finished.then_some(2.3 - f * 1e-6),
        loss_scale_halvings: finished.then_some(0),
    }
}

fn writer(c: &mut Criterion) {
    let rows: Vec<DeviceRoundRow> = (0..ROWS).map(row).collect();
    let mut g = c.benchmark_group("trace-writer");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ROWS as u64));
    for threads in [1usize, 2] {
        g.bench_function(format!("device_rounds/threads={threads}"), |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |dir| {
                    let mut sink = ParquetSink::create(dir.path(), false, false, 65536, threads).unwrap();
                    for r in &rows {
                        sink.device_round(r).unwrap();
                    }
                    sink.finish().unwrap();
                    dir
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, writer);
criterion_main!(benches);
