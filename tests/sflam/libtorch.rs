//! The LibTorch backend (`training.backend = "libtorch"`, cargo feature
//! `libtorch`: PyTorch's CPU kernels under Burn's autodiff). Without the
//! feature, asking for it is a clear error; with it, its updates match
//! flex's from the same start, within float summation order.

use crate::backends::scenario;

#[cfg(not(feature = "libtorch"))]
#[test]
fn libtorch_without_the_feature_is_a_clear_error() {
    let err = sflam::train::trainer_of(&scenario("libtorch", "")).err().expect("no LibTorch backend in this build");
    assert_eq!(err.exit_code(), 2);
    let msg = err.to_string();
    assert!(msg.contains("training.backend") && msg.contains("--features libtorch"), "{msg}");
}

#[cfg(feature = "libtorch")]
#[test]
fn libtorch_updates_match_flex() {
    let flex = sflam::train::trainer_of(&scenario("flex", "momentum = 0.0\n")).unwrap();
    let torch = sflam::train::trainer_of(&scenario("libtorch", "momentum = 0.0\n")).unwrap();
    crate::backends::updates_match_the_cpu(&flex, &torch, "libtorch");
}
