//! Scenario loading: errors name file, line, field, value and what is allowed.

use sflam_core::Error;
use sflam_core::config::{Scenario, load_scenario, load_scenario_str};
use std::path::Path;

fn errors(text: &str, overrides: &[&str]) -> Vec<String> {
    let ov: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    match load_scenario_str(text, Path::new("bad.toml"), &ov) {
        Err(Error::Config(es)) => es.iter().map(|e| e.to_string()).collect(),
        Err(e) => panic!("expected a config error, got {e}"),
        Ok(_) => panic!("expected an error for {text:?}"),
    }
}

#[test]
fn every_shipped_scenario_is_valid() {
    for entry in std::fs::read_dir(crate::repo("scenarios")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            load_scenario(&p, &[]).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        }
    }
}

#[test]
fn empty_file_gives_the_documented_defaults() {
    let s = load_scenario_str("", Path::new("empty.toml"), &[]).unwrap();
    assert_eq!(s, Scenario::default());
    assert_eq!(s.network.rb_bandwidth_hz, 20e6);
    assert_eq!(s.devices.distance_min_m, 50.0);
    assert_eq!(s.devices.kappa, 1e-28);
    assert_eq!(s.quantization.bits_min, 4);
    assert_eq!(s.model.batch, 64);
}

#[test]
fn unknown_key_suggests_the_nearest() {
    let e = errors("[network]\nrb_cont = 5\n", &[]);
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("bad.toml:2:"), "{}", e[0]);
    assert!(e[0].contains("did you mean `rb_count`"), "{}", e[0]);
}

#[test]
fn unknown_choice_suggests_the_nearest() {
    let e = errors("[server]\ndiscipline = \"fifoo\"\n", &[]);
    assert!(e[0].contains("bad.toml:2:"), "{}", e[0]);
    assert!(e[0].contains("did you mean `fifo`"), "{}", e[0]);
}

#[test]
fn wrong_type_names_field_and_line() {
    let e = errors("[network]\nrb_count = \"ten\"\n", &[]);
    assert!(e[0].contains("bad.toml:2:") && e[0].contains("network.rb_count"), "{}", e[0]);
}

#[test]
fn syntax_error_has_a_position() {
    let e = errors("[run\nx = 1", &[]);
    assert!(e[0].starts_with("bad.toml:1:"), "{}", e[0]);
}

#[test]
fn impossible_values_are_caught_with_their_lines() {
    let text = "[run]\ndeadline_s = -1.0\n[devices]\ndistance_min_m = 2000.0\n[quantization]\nbits_max = 17\n[network]\nrb_count = 0\n[availability]\ndropout_probability = 1.5\n";
    let e = errors(text, &[]).join("\n");
    for (line, field) in [
        (2, "run.deadline_s"),
        (4, "devices.distance_min_m"),
        (6, "quantization.bits_max"),
        (8, "network.rb_count"),
        (10, "availability.dropout_probability"),
    ] {
        assert!(
            e.contains(&format!("bad.toml:{line}:")) && e.contains(field),
            "{field} not reported at line {line}:\n{e}"
        );
    }
    assert!(e.contains("bits in 1..=16"));
    assert!(e.contains("[0, 1]"));
}

#[test]
fn negative_distance_and_zero_deadline() {
    let e = errors("[devices]\ndistance_min_m = -5.0\n[run]\ndeadline_s = 0.0\n", &[]).join("\n");
    assert!(e.contains("devices.distance_min_m") && e.contains("run.deadline_s"), "{e}");
}

#[test]
fn overrides_apply_and_are_checked() {
    let s = load_scenario_str("", Path::new("x.toml"), &["network.rb_count=20".into(), "run.mode=\"sync\"".into()])
        .unwrap();
    assert_eq!(s.network.rb_count, 20);
    assert_eq!(s.run.mode, sflam_core::config::RoundMode::Sync);
    // A bare string works too.
    let s = load_scenario_str("", Path::new("x.toml"), &["allocator.name=fixed".into()]).unwrap();
    assert_eq!(s.allocator.name, "fixed");
    let e = errors("", &["network.rb_count=0"]);
    assert!(e[0].starts_with("--set network.rb_count=0"), "{}", e[0]);
    let e = errors("", &["network.rb_cnt=3"]);
    assert!(e[0].contains("did you mean `rb_count`"), "{}", e[0]);
    let e = errors("", &["nonsense"]);
    assert!(e[0].contains("KEY=VALUE"), "{}", e[0]);
}

#[test]
fn resolved_scenario_round_trips() {
    let s = load_scenario_str("[run]\nseed = 42\n", Path::new("x.toml"), &[]).unwrap();
    let text = s.resolved_toml();
    assert!(text.contains("# seed = 42"));
    let back = load_scenario_str(&text, Path::new("resolved.toml"), &[]).unwrap();
    assert_eq!(back, s);
}

#[test]
fn guide_documents_every_scenario_key() {
    let readme = std::fs::read_to_string(crate::repo("docs/scenarios.md")).unwrap();
    let table: toml::Table = toml::from_str(&toml::to_string(&Scenario::default()).unwrap()).unwrap();
    for (section, v) in &table {
        for key in v.as_table().unwrap().keys() {
            assert!(readme.contains(&format!("`{section}.{key}`")), "docs/scenarios.md lacks `{section}.{key}`");
        }
    }
}

/// The guide's scenario reference is the one generated from the
/// parameters' declarations (`sflam reference` prints it).
#[test]
fn guide_scenario_reference_is_generated() {
    let readme = std::fs::read_to_string(crate::repo("docs/scenarios.md")).unwrap();
    let start = "<!-- scenario reference: generated by `sflam reference`; do not edit by hand -->\n";
    let end = "<!-- end of scenario reference -->";
    let body = readme.split_once(start).and_then(|(_, rest)| rest.split_once(end)).map(|(b, _)| b);
    let want = sflam_core::config::reference_markdown();
    assert_eq!(
        body.unwrap_or("(no generated reference between the markers)"),
        want,
        "docs/scenarios.md's scenario reference is stale: replace it with the output of `cargo run -- reference`"
    );
}

/// Every declared parameter's default is the `Default` value, and every
/// declared rule accepts its own default.
#[test]
fn declared_defaults_are_valid() {
    assert!(sflam_core::config::validate(&Scenario::default()).is_empty());
    let n: usize = sflam_core::config::reference().iter().map(|(_, _, rows)| rows.len()).sum();
    let table: toml::Table = toml::from_str(&toml::to_string(&Scenario::default()).unwrap()).unwrap();
    let fields: usize = table.values().map(|v| v.as_table().unwrap().len()).sum();
    assert_eq!(n, fields, "every field is declared with its doc, default and rule");
}

#[test]
fn bad_training_values_name_their_fields() {
    let e =
        errors("[training]\nmodel = \"vit-huge\"\nbits = 0\nlr = -1.0\nmomentum = 1.5\ninit = \"weights.bin\"\nmicro_batches = 0\n", &[])
            .join("\n");
    for field in [
        "training.model",
        "training.bits",
        "training.lr",
        "training.momentum",
        "training.init",
        "training.micro_batches",
    ] {
        assert!(e.contains(field), "{field} missing in:\n{e}");
    }
    assert!(e.contains("vit-tiny-28"), "the allowed models are listed:\n{e}");
}

/// A seed above TOML's largest integer (sweeps derive such seeds) passes
/// through `--set` and through the resolved scenario unchanged.
#[test]
fn seeds_above_2_pow_63_pass_through_set_and_the_resolved_file() {
    for seed in [u64::MAX, (1u64 << 63) + 12345, 7] {
        let s = load_scenario_str("", Path::new("x.toml"), &[format!("run.seed={seed}")]).unwrap();
        assert_eq!(s.run.seed, seed);
        let back = load_scenario_str(&s.resolved_toml(), Path::new("resolved.toml"), &[]).unwrap();
        assert_eq!(back, s);
    }
    let e = errors("", &["run.seed=-1"]);
    assert!(e[0].contains("run.seed"), "{}", e[0]);
    let e = errors("", &["run.seed=18446744073709551616"]);
    assert!(e[0].contains("run.seed"), "{}", e[0]);
}

/// A scenario file that is not UTF-8 is bad input (exit 2) named by its path.
#[test]
fn a_file_that_is_not_text_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("binary.toml");
    std::fs::write(&path, b"[run]\nname = \"x\xff\xfe\"\n").unwrap();
    let e = load_scenario(&path, &[]).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("binary.toml") && msg.contains("UTF-8") && msg.contains("byte 15"), "{msg}");
}

/// `fixed` plans at `fixed_bits`, so they must lie where U(b) is defined.
#[test]
fn fixed_bits_outside_the_bit_range_are_refused_for_fixed() {
    let e = errors("[allocator]\nname = \"fixed\"\nfixed_bits = 2\n", &[]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("allocator.fixed_bits") && e[0].contains("4..=16"), "{}", e[0]);
    let e = errors("[allocator]\nfixed_bits = 12\n[quantization]\nbits_max = 10\n", &[]);
    assert!(e[0].contains("allocator.fixed_bits") && e[0].contains("4..=10"), "{}", e[0]);
    // Unused by another allocator: no problem.
    load_scenario_str("[allocator]\nname = \"exact\"\nfixed_bits = 2\n", Path::new("x.toml"), &[]).unwrap();
}

/// The learning-data fields added with local epochs and the public share
/// are checked at load: each error names the field and what is allowed.
#[test]
fn local_epochs_and_public_share_are_checked() {
    let e = errors("[model]\nbatch = 64\n[training]\nenabled = true\nlocal_epochs = 2\nbatch = 32\n", &[]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("training.batch") && e[0].contains("model.batch = 64"), "{}", e[0]);
    // Without local epochs the two batches may differ.
    load_scenario_str("[model]\nbatch = 64\n[training]\nenabled = true\nbatch = 32\n", Path::new("x.toml"), &[])
        .unwrap();
    let e = errors("[training]\npublic_share = 1.0\n", &[]);
    assert!(e.len() == 1 && e[0].contains("training.public_share") && e[0].contains("[0, 1)"), "{e:?}");
    let e = errors("[training]\ndata_part = \"public\"\n", &[]);
    assert!(e.len() == 1 && e[0].contains("training.data_part") && e[0].contains("public_share > 0"), "{e:?}");
}

/// A choice parsed from text (a tool's flag) names the type and every
/// allowed value when the text is none of them.
#[test]
fn a_choice_parses_its_names_and_refuses_others_listing_them() {
    use sflam_core::config::BackendKind;
    assert_eq!("wgpu".parse::<BackendKind>(), Ok(BackendKind::Wgpu));
    for k in BackendKind::ALL {
        assert_eq!(k.as_str().parse::<BackendKind>(), Ok(*k));
    }
    let e = "cuda".parse::<BackendKind>().unwrap_err();
    assert_eq!(e, "unknown BackendKind `cuda`; allowed: flex, ndarray, wgpu, libtorch");
}

/// `training.gpu_kind` picks the kind of Vulkan device; the CPU kind has
/// one device, so an index there is refused, naming both fields.
#[test]
fn the_gpu_kind_is_a_choice_and_the_cpu_kind_takes_no_index() {
    let s =
        load_scenario_str("[training]\ngpu_kind = \"integrated\"\ngpu_index = 1\n", Path::new("x.toml"), &[]).unwrap();
    assert_eq!((s.training.gpu_kind.as_str(), s.training.gpu_index), ("integrated", 1));
    assert_eq!(Scenario::default().training.gpu_kind.as_str(), "discrete");
    let e = errors("[training]\ngpu_kind = \"cpu\"\ngpu_index = 1\n", &[]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("training.gpu_index") && e[0].contains("training.gpu_kind = \"cpu\""), "{}", e[0]);
    load_scenario_str("[training]\ngpu_kind = \"cpu\"\n", Path::new("x.toml"), &[]).unwrap();
    let e = errors("[training]\ngpu_kind = \"tpu\"\n", &[]);
    assert!(e[0].contains("training.gpu_kind") && e[0].contains("integrated"), "{}", e[0]);
}
