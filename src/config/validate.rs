//! Semantic validation: values that parse but make no sense are caught here,
//! before any run starts, each named by its field path.

use super::{FrameworkKind, Scenario};

/// One semantic problem: field path, the value, what is allowed.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub field: String,
    pub value: String,
    pub allowed: String,
}

struct Checker {
    out: Vec<Problem>,
}

impl Checker {
    fn push(&mut self, field: &str, value: impl ToString, allowed: impl Into<String>) {
        self.out.push(Problem { field: field.into(), value: value.to_string(), allowed: allowed.into() });
    }
    /// A finite float with `lo <= v` (or `lo < v` when `open`).
    fn min_f(&mut self, field: &str, v: f64, lo: f64, open: bool) {
        let ok = v.is_finite() && if open { v > lo } else { v >= lo };
        if !ok {
            let rel = if open { ">" } else { ">=" };
            self.push(field, v, format!("a finite number {rel} {lo}"));
        }
    }
    fn range_f(&mut self, field: &str, v: f64, lo: f64, hi: f64) {
        if !(v.is_finite() && v >= lo && v <= hi) {
            self.push(field, v, format!("a number in [{lo}, {hi}]"));
        }
    }
    fn min_u(&mut self, field: &str, v: u64, lo: u64) {
        if v < lo {
            self.push(field, v, format!("an integer >= {lo}"));
        }
    }
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
    let mut c = Checker { out: Vec::new() };
    let r = &s.run;
    c.min_u("run.rounds", r.rounds as u64, 1);
    c.min_f("run.deadline_s", r.deadline_s, 0.0, true);
    if r.deadline_s.is_finite() && r.deadline_s > 1e6 {
        c.push("run.deadline_s", r.deadline_s, "a deadline of at most 1e6 s");
    }
    c.min_u("run.iterations", r.iterations as u64, 1);
    c.min_u("run.candidates", r.candidates as u64, 1);
    c.min_u("run.row_group_rows", r.row_group_rows as u64, 1);
    if r.name.is_empty() || r.name.contains(['/', '\\']) {
        c.push("run.name", format!("{:?}", r.name), "a non-empty name without path separators");
    }

    let n = &s.network;
    c.min_u("network.rb_count", n.rb_count as u64, 1);
    c.min_f("network.rb_bandwidth_hz", n.rb_bandwidth_hz, 0.0, true);
    c.range_f("network.noise_dbm_per_hz", n.noise_dbm_per_hz, -300.0, 0.0);
    c.min_f("network.path_loss_slope_db", n.path_loss_slope_db, 0.0, true);
    c.range_f("network.path_loss_intercept_db", n.path_loss_intercept_db, 0.0, 400.0);
    c.min_f("network.carrier_hz", n.carrier_hz, 0.0, true);
    c.range_f("network.shadowing_std_db", n.shadowing_std_db, 0.0, 30.0);
    c.min_f("network.downlink_rate_bps", n.downlink_rate_bps, 0.0, true);

    let d = &s.devices;
    c.min_u("devices.count", d.count as u64, 1);
    if d.count > 100_000_000 {
        c.push("devices.count", d.count, "at most 100000000 devices");
    }
    c.min_f("devices.distance_min_m", d.distance_min_m, 0.0, true);
    c.min_f("devices.distance_max_m", d.distance_max_m, 0.0, true);
    c.ordered_f("devices.distance_min_m", d.distance_min_m, "devices.distance_max_m", d.distance_max_m);
    c.min_f("devices.p_max_min_w", d.p_max_min_w, 0.0, true);
    c.min_f("devices.p_max_max_w", d.p_max_max_w, 0.0, true);
    c.ordered_f("devices.p_max_min_w", d.p_max_min_w, "devices.p_max_max_w", d.p_max_max_w);
    c.min_f("devices.gpu_freq_min_hz", d.gpu_freq_min_hz, 0.0, true);
    c.min_f("devices.gpu_freq_max_hz", d.gpu_freq_max_hz, 0.0, true);
    c.ordered_f("devices.gpu_freq_min_hz", d.gpu_freq_min_hz, "devices.gpu_freq_max_hz", d.gpu_freq_max_hz);
    c.min_u("devices.cores_min", d.cores_min as u64, 1);
    c.ordered_u("devices.cores_min", d.cores_min as u64, "devices.cores_max", d.cores_max as u64);
    c.min_f("devices.flops_per_cycle", d.flops_per_cycle, 0.0, true);
    c.min_f("devices.kappa", d.kappa, 0.0, false);
    c.min_u("devices.samples_min", d.samples_min, 1);
    c.ordered_u("devices.samples_min", d.samples_min, "devices.samples_max", d.samples_max);

    let a = &s.availability;
    c.min_f("availability.mean_online_s", a.mean_online_s, 0.0, true);
    c.min_f("availability.mean_offline_s", a.mean_offline_s, 0.0, true);
    c.range_f("availability.dropout_probability", a.dropout_probability, 0.0, 1.0);
    c.min_f("mobility.step_std_m_per_sqrt_s", s.mobility.step_std_m_per_sqrt_s, 0.0, false);

    let sv = &s.server;
    c.min_f("server.freq_hz", sv.freq_hz, 0.0, true);
    c.min_u("server.cores_min", sv.cores_min as u64, 1);
    c.ordered_u("server.cores_min", sv.cores_min as u64, "server.cores_max", sv.cores_max as u64);
    c.min_u("server.flops_per_cycle_min", sv.flops_per_cycle_min as u64, 1);
    c.ordered_u(
        "server.flops_per_cycle_min",
        sv.flops_per_cycle_min as u64,
        "server.flops_per_cycle_max",
        sv.flops_per_cycle_max as u64,
    );

    if crate::workload::vit_config(&s.model.timing).is_none() {
        c.push(
            "model.timing",
            format!("{:?}", s.model.timing),
            format!("one of {}", crate::workload::config_names().join(", ")),
        );
    }
    c.min_u("model.batch", s.model.batch as u64, 1);

    let q = &s.quantization;
    for (f, b) in [("quantization.bits_min", q.bits_min), ("quantization.bits_max", q.bits_max)] {
        if !(1..=16).contains(&b) {
            c.push(f, b, "bits in 1..=16");
        }
    }
    c.ordered_u("quantization.bits_min", q.bits_min as u64, "quantization.bits_max", q.bits_max as u64);

    let al = &s.allocator;
    if !crate::alloc::allocator_names().contains(&al.name.as_str()) {
        c.push(
            "allocator.name",
            format!("{:?}", al.name),
            format!("one of {}", crate::alloc::allocator_names().join(", ")),
        );
    }
    if !(1..=16).contains(&al.fixed_bits) {
        c.push("allocator.fixed_bits", al.fixed_bits, "bits in 1..=16");
    }
    c.min_f("allocator.weight_j", al.weight_j, 0.0, false);
    c.min_f("allocator.epsilon_j", al.epsilon_j, 0.0, true);
    c.min_u("allocator.max_iterations", al.max_iterations as u64, 1);

    let t = &s.training;
    c.min_f("training.dirichlet_alpha", t.dirichlet_alpha, 0.0, true);
    c.min_u("training.min_samples", t.min_samples, 1);
    if crate::workload::vit_config(&t.model).is_none() {
        c.push(
            "training.model",
            format!("{:?}", t.model),
            format!("one of {}", crate::workload::config_names().join(", ")),
        );
    }
    c.min_u("training.participants", t.participants as u64, 1);
    c.min_u("training.batch", t.batch as u64, 1);
    if !(1..=16).contains(&t.bits) {
        c.push("training.bits", t.bits, "bits in 1..=16");
    }
    c.min_f("training.lr", t.lr, 0.0, true);
    if t.micro_batches == 0 || t.micro_batches > t.batch {
        c.push("training.micro_batches", t.micro_batches, "an integer in 1..=training.batch");
    } else if t.micro_batches > 1 && !matches!(t.framework, FrameworkKind::Fl | FrameworkKind::Ll) {
        // A split framework sends each mini-batch's activations as one
        // quantized message (one pair of bounds): parts would change it.
        c.push("training.micro_batches", t.micro_batches, "1 unless training.framework is \"fl\" or \"ll\"");
    }
    if !(0.0..1.0).contains(&t.momentum) {
        c.push("training.momentum", t.momentum, "a number in [0, 1)");
    }
    let steps = r.rounds as u64 * r.iterations as u64;
    if t.warmup_iterations >= steps.max(1) {
        c.push(
            "training.warmup_iterations",
            t.warmup_iterations,
            format!("fewer than the run's run.rounds x run.iterations = {steps} steps"),
        );
    }
    c.min_u("training.eval_every", t.eval_every as u64, 1);
    if !(t.init.is_empty() || t.init.ends_with(".bpk") || t.init.ends_with(".safetensors")) {
        c.push("training.init", format!("{:?}", t.init), "\"\", a .bpk checkpoint or a .safetensors file");
    }
    if t.enabled && s.devices.count as u64 * t.min_samples > 10_000_000 {
        c.push(
            "training.min_samples",
            t.min_samples,
            "devices.count x min_samples within the data set: train with fewer devices or samples",
        );
    }
    c.out
}
