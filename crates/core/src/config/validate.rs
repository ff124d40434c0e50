//! Semantic validation: values that parse but make no sense are caught here,
//! before any run starts, each named by its field path. Single-field rules
//! are declared with their fields (`params.rs`); this file holds only the
//! rules that relate two or more fields.

use super::Scenario;
use super::params::{Checker, Problem, Section};

impl Checker {
    fn ordered_f(&mut self, lo_field: &str, lo: f64, hi_field: &str, hi: f64) {
        if lo.is_finite() && hi.is_finite() && lo > hi {
            self.push(lo_field, lo, format!("at most `{hi_field}` = {hi} (min must not exceed max)"));
        }
    }
    fn ordered_u(&mut self, lo_field: &str, lo: u64, hi_field: &str, hi: u64) {
        if lo > hi {
            self.push(lo_field, lo, format!("at most `{hi_field}` = {hi} (min must not exceed max)"));
        }
    }
}

/// Every problem of the scenario; empty when it is usable.
pub fn validate(s: &Scenario) -> Vec<Problem> {
    let mut c = Checker::default();
    macro_rules! fields {
        ($f:ident, $t:ty) => {
            <$t as Section>::check(&s.$f, &mut c);
        };
    }
    super::for_each_section!(fields);

    let d = &s.devices;
    c.ordered_f("devices.distance_min_m", d.distance_min_m, "devices.distance_max_m", d.distance_max_m);
    c.ordered_f("devices.p_max_min_w", d.p_max_min_w, "devices.p_max_max_w", d.p_max_max_w);
    c.ordered_f("devices.gpu_freq_min_hz", d.gpu_freq_min_hz, "devices.gpu_freq_max_hz", d.gpu_freq_max_hz);
    c.ordered_u("devices.cores_min", d.cores_min as u64, "devices.cores_max", d.cores_max as u64);
    c.ordered_u("devices.samples_min", d.samples_min, "devices.samples_max", d.samples_max);

    let sv = &s.server;
    c.ordered_u("server.cores_min", sv.cores_min as u64, "server.cores_max", sv.cores_max as u64);
    let (fmin, fmax) = (sv.flops_per_cycle_min as u64, sv.flops_per_cycle_max as u64);
    c.ordered_u("server.flops_per_cycle_min", fmin, "server.flops_per_cycle_max", fmax);

    let cl = &s.cells;
    if cl.layout == crate::config::CellLayout::File && cl.file.is_empty() {
        c.push("cells.file", "\"\"", "a .csv or .parquet table of the cells when cells.layout = \"file\"");
    }
    if d.placement == crate::config::Placement::File && d.positions_file.is_empty() {
        c.push(
            "devices.positions_file",
            "\"\"",
            "a .csv or .parquet table of positions when devices.placement = \"file\"",
        );
    }
    if cl.count > 1 && s.training.enabled && s.training.framework.profile().relay {
        // Each cell's server relays its own devices; one model trained in
        // one relay order would not be what the simulation times.
        c.push(
            "training.framework",
            s.training.framework.as_str(),
            "a framework without a relay (sflam, sfl, fl, ll) when training with cells.count > 1",
        );
    }

    let bh = &s.backhaul;
    if bh.enabled && bh.topology == crate::config::BackhaulTopology::File && bh.links_file.is_empty() {
        c.push("backhaul.links_file", "\"\"", "a .csv or .parquet table of links when backhaul.topology = \"file\"");
    }

    let av = &s.availability;
    if av.model == crate::config::AvailabilityModel::Trace {
        if !av.enabled {
            c.push("availability.enabled", false, "true when availability.model = \"trace\"");
        }
        if av.file.is_empty() {
            c.push(
                "availability.file",
                "\"\"",
                "a .csv or .parquet table of online intervals when availability.model = \"trace\"",
            );
        }
    }

    let q = &s.quantization;
    c.ordered_u("quantization.bits_min", q.bits_min as u64, "quantization.bits_max", q.bits_max as u64);

    let al = &s.allocator;
    // A file beside `assumed` is allowed (and not read), so that a sweep
    // can put both utilities on one grid axis.
    if al.utility == crate::config::UtilityKind::Table && al.utility_file.is_empty() {
        c.push("allocator.utility_file", "\"\"", "a .csv or .parquet utility table when allocator.utility = \"table\"");
    }
    if al.name == crate::config::AllocatorKind::Fixed && !(q.bits_min..=q.bits_max).contains(&al.fixed_bits) {
        // U(b) is defined on bits_min..=bits_max only; below it the utility,
        // and the objective with it, would go negative.
        c.push(
            "allocator.fixed_bits",
            al.fixed_bits,
            format!(
                "bits in quantization.bits_min..=bits_max = {}..={} (`fixed` plans at these bits)",
                q.bits_min, q.bits_max
            ),
        );
    }

    let t = &s.training;
    if t.micro_batches == 0 || t.micro_batches > t.batch {
        c.push("training.micro_batches", t.micro_batches, "an integer in 1..=training.batch");
    }
    if t.gpu_kind == crate::config::GpuKind::Cpu && t.gpu_index != 0 {
        // Vulkan's CPU devices have no index in Burn's device selection.
        c.push("training.gpu_index", t.gpu_index, "0 when training.gpu_kind = \"cpu\"");
    }
    if !(t.public_share >= 0.0 && t.public_share < 1.0) {
        c.push("training.public_share", t.public_share, "a share in [0, 1)");
    } else if t.data_part == crate::config::DataPart::Public && t.public_share == 0.0 {
        c.push("training.data_part", "public", "\"private\" unless training.public_share > 0");
    }
    let r = &s.run;
    if t.local_epochs > 0 && t.enabled && t.batch != s.model.batch {
        // One simulated iteration must be one trained mini-batch.
        c.push(
            "training.batch",
            t.batch,
            format!("equal to model.batch = {} when training.local_epochs > 0", s.model.batch),
        );
    }
    let steps = r.rounds as u64 * r.iterations as u64;
    // With local epochs the run's steps depend on the data; the trainer
    // checks the warm-up against them.
    if t.local_epochs == 0 && t.warmup_iterations >= steps.max(1) {
        c.push(
            "training.warmup_iterations",
            t.warmup_iterations,
            format!("fewer than the run's run.rounds x run.iterations = {steps} steps"),
        );
    }
    if let Some((est, m)) = super::memory::over_machine(s, s.network.rb_count) {
        c.push(est.driver(), est.driver_value(s), est.refusal(m));
    }
    if t.enabled && (s.devices.count as u64).saturating_mul(t.min_samples) > 10_000_000 {
        c.push(
            "training.min_samples",
            t.min_samples,
            "devices.count x min_samples within the data set: train with fewer devices or samples",
        );
    }
    c.out
}
