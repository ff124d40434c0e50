//! Shared by the fuzz tests of the simulator (`crates/core/tests/core`)
//! and of the learning half (`tests/sflam/fuzz.rs`, which includes this
//! file by path): the case count, the hang bound and the mutations.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::time::Duration;

/// Cases per target: `SFLAM_FUZZ_CASES`, else a CI-sized 64.
pub fn cases() -> u32 {
    std::env::var("SFLAM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

/// How long one case may take before it counts as a hang (generous: a
/// debug build on a loaded 2-core machine).
const HANG: Duration = Duration::from_secs(60);

/// Runs `f` on a thread; a case that does not return within [`HANG`] fails.
pub fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, TestCaseError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG).map_err(|_| TestCaseError::fail(format!("no answer within {HANG:?}: a hang")))
}

/// Edits that turn a valid input into a nearly valid one: bytes flipped,
/// inserted or removed, and numbers swapped for extremes.
#[derive(Clone, Debug)]
pub enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Number(usize, usize),
}

pub const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "1e308",
    "-1e308",
    "1e-300",
    "nan",
    "inf",
    "18446744073709551615",
    "4294967295",
    "9223372036854775807",
    "-0",
    "\"\"",
    "[]",
    "1.5",
];

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), 0..EXTREMES.len()).prop_map(|(i, k)| Edit::Number(i, k)),
    ]
}

/// `seed` with `edits` applied.
pub fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let n = v.len().max(1);
        match *e {
            Edit::Flip(i, b) if !v.is_empty() => v[i % n] ^= b,
            Edit::Insert(i, b) => v.insert(i % (v.len() + 1), b),
            Edit::Remove(i) if !v.is_empty() => {
                v.remove(i % n);
            }
            Edit::Number(i, k) => {
                // Replace the number (digits, '.', 'e', '-') at or after i.
                let start = (i % n..v.len()).find(|&j| v[j].is_ascii_digit()).unwrap_or(v.len());
                let end =
                    (start..v.len()).find(|&j| !(v[j].is_ascii_digit() || b".e-+".contains(&v[j]))).unwrap_or(v.len());
                v.splice(start..end, EXTREMES[k].bytes());
            }
            _ => {}
        }
    }
    v
}

/// A runner on a fixed seed, so that a CI run is a pure function of the
/// code: `SFLAM_FUZZ_SEED` (any u64) draws other cases in a campaign.
pub fn runner() -> TestRunner {
    use proptest::test_runner::{RngAlgorithm, TestRng};
    let seed: u64 = std::env::var("SFLAM_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config { cases: cases(), failure_persistence: None, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key))
}

/// A valid input as it is (`raw` false: mutated), or arbitrary bytes.
pub fn inputs() -> impl Strategy<Value = (bool, Vec<u8>, Vec<Edit>)> {
    (any::<bool>(), prop::collection::vec(any::<u8>(), 0..256), prop::collection::vec(edit(), 1..8))
}
