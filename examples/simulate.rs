//! A timing-only run of a scenario on the simulator crate alone (no Burn),
//! for measuring the simulator in release builds that skip the learning
//! half: `cargo run -p sflam-core --release --example simulate --
//! scenarios/million-cells.toml [OUT_DIR]`. Writes the same traces as
//! `sflam run --set training.enabled=false` and prints the summary.
fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "scenarios/default.toml".into());
    let mut overrides = vec!["training.enabled=false".to_string()];
    if let Some(out) = args.next() {
        overrides.push(format!("run.output_dir={out:?}"));
    }
    let s = match sflam_core::config::load_scenario(path.as_ref(), &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let opts = sflam_core::run::RunOptions::default();
    match sflam_core::run::run_to_dir(&s, &opts) {
        Ok((dir, summary)) => println!(
            "{}: {} rounds, {} scheduled, {} finished, {} events, {:.2} s wall",
            dir.display(),
            summary.rounds,
            summary.scheduled,
            summary.finished,
            summary.events,
            summary.wall_s
        ),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
