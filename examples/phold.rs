//! PHOLD on the sflam kernel from the command line, for profiling:
//! `cargo run --release --example phold -- LPS EVENTS`.
fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (lps, events) = (args.first().copied().unwrap_or(1_000_000), args.get(1).copied().unwrap_or(10_000_000));
    let mut m = sflam_core::sim::phold::Phold::new(lps as u32, 0.1, 1.0, 1, events);
    let mut k = m.kernel();
    let t = std::time::Instant::now();
    k.run(&mut m, sflam_core::units::SimTime::MAX).expect("PHOLD never schedules into the past");
    let s = t.elapsed().as_secs_f64();
    println!(
        "{{\"impl\":\"sflam\",\"N\":{lps},\"events\":{},\"run_s\":{s:.3},\"ev_per_s\":{:.0}}}",
        k.processed(),
        k.processed() as f64 / s
    );
}
