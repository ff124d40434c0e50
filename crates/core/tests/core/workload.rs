//! The workload model against the paper's Table I.

use sflam_core::workload::{Workload, table_one, vit_config};

fn row(name: &str) -> sflam_core::workload::TableRow {
    table_one(64).into_iter().find(|r| r.model == name).unwrap()
}

/// The paper prints 2 decimals (params 1 decimal).
fn printed(x: f64, decimals: i32) -> f64 {
    let m = 10f64.powi(decimals);
    (x * m).round() / m
}

#[test]
fn b32_and_l32_match_the_paper() {
    let b = row("vit-b32");
    assert_eq!(printed(b.device_params_mib, 1), 9.0);
    assert_eq!(printed(b.device_gflops_batch64, 2), 14.80);
    assert_eq!(printed(b.device_memory_mib, 2), 18.38);
    assert_eq!(b.output_shape, "(b, 50, 768)");
    let l = row("vit-l32");
    assert_eq!(printed(l.device_params_mib, 1), 12.0);
    assert_eq!(printed(l.device_gflops_batch64, 2), 19.73);
    assert_eq!(printed(l.device_memory_mib, 2), 24.50);
    assert_eq!(l.output_shape, "(b, 50, 1024)");
}

#[test]
fn b16_and_l16_params_compute_shape_and_consistent_memory() {
    let b = row("vit-b16");
    assert_eq!(printed(b.device_params_mib, 2), 2.25);
    assert_eq!(printed(b.device_gflops_batch64, 2), 14.80);
    assert_eq!(b.output_shape, "(b, 197, 768)");
    // Consistent rule: params + (64 x 197 x 768) f32.
    assert_eq!(printed(b.device_memory_mib, 2), 39.19);
    assert_eq!(b.paper_memory_mib, Some(74.0));
    let l = row("vit-l16");
    assert_eq!(printed(l.device_params_mib, 2), 3.0);
    assert_eq!(printed(l.device_gflops_batch64, 2), 19.73);
    assert_eq!(l.output_shape, "(b, 197, 1024)");
    assert_eq!(printed(l.device_memory_mib, 2), 52.25);
    assert_eq!(l.paper_memory_mib, Some(98.0));
}

#[test]
fn server_side_is_the_rest_of_vit_base() {
    // ViT-B/32 has about 88M parameters in all (timm, 1000 classes); with a
    // 10-class head the server holds the rest of them.
    let w = Workload::of(vit_config("vit-b32").unwrap());
    let total = (w.device_params + w.server_params) as f64;
    assert!((87.0e6..88.5e6).contains(&total), "{total}");
    assert_eq!(w.cut_elements, 49 * 768);
    assert!((w.device_train_flops / w.device_fwd_flops - 2.0).abs() < 1e-12);
    assert!((w.server_train_flops / w.server_fwd_flops - 3.0).abs() < 1e-12);
}
