//! The files a run reads besides its scenario, and their content hashes.
//!
//! A run's `scenario.resolved.toml` records one header line per file
//! (`# input FIELD PATH sha256:HEX`), so that a resumed sweep point or
//! training run can tell that a file it read has changed since (a positions
//! table edited between two invocations) and refuse, naming the file,
//! instead of mixing results of two inputs.

use super::{BackhaulTopology, CellLayout, DatasetKind, Placement, Scenario};
use crate::error::{Error, Result};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Debian's `dataset-fashion-mnist` folder.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The subset of Fashion-MNIST shipped with the repository (6,000 training
/// and 1,000 test images, MIT-licensed; see its README), read when the
/// full set is not installed.
pub const FASHION_MNIST_SUBSET_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../train/data/fashion-mnist-subset");

/// Where Fashion-MNIST is read from when `training.data_dir` is empty:
/// Debian's full set when installed, else the shipped subset.
pub fn fashion_mnist_default_dir() -> &'static Path {
    let full = Path::new(FASHION_MNIST_DIR);
    if full.join("train-images-idx3-ubyte.gz").exists() || full.join("train-images-idx3-ubyte").exists() {
        full
    } else {
        Path::new(FASHION_MNIST_SUBSET_DIR)
    }
}

/// The Fashion-MNIST file of `stem` in `dir`: gzipped when that exists.
pub fn fashion_mnist_file(dir: &Path, stem: &str) -> PathBuf {
    let gz = dir.join(format!("{stem}.gz"));
    if gz.exists() { gz } else { dir.join(stem) }
}

/// The files a data set of `kind` in `dir` is read from (`dir` empty: the
/// default location), train files first.
pub fn data_files(kind: DatasetKind, dir: &str) -> Vec<PathBuf> {
    match kind {
        DatasetKind::FashionMnist => {
            let dir = if dir.is_empty() { fashion_mnist_default_dir() } else { Path::new(dir) };
            ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
                .iter()
                .map(|s| fashion_mnist_file(dir, s))
                .collect()
        }
        DatasetKind::Cifar10 if !dir.is_empty() => (1..=5)
            .map(|i| format!("data_batch_{i}.bin"))
            .chain(["test_batch.bin".to_string()])
            .map(|f| Path::new(dir).join(f))
            .collect(),
        DatasetKind::Cifar100 if !dir.is_empty() => {
            ["train.bin", "test.bin"].iter().map(|f| Path::new(dir).join(f)).collect()
        }
        _ => Vec::new(),
    }
}

/// Every file a run of `s` reads besides the scenario, with the field that
/// names it. `trains`: the learning half runs (`sflam train`, or a
/// co-simulation with `training.enabled`).
pub fn input_files(s: &Scenario, trains: bool) -> Vec<(&'static str, PathBuf)> {
    let mut v = Vec::new();
    if s.availability.enabled && s.availability.model == crate::config::AvailabilityModel::Trace {
        v.push(("availability.file", PathBuf::from(&s.availability.file)));
    }
    if !s.devices.file.is_empty() {
        v.push(("devices.file", PathBuf::from(&s.devices.file)));
    }
    if s.devices.placement == Placement::File {
        v.push(("devices.positions_file", PathBuf::from(&s.devices.positions_file)));
    }
    if s.cells.layout == CellLayout::File && s.cells.count > 0 {
        v.push(("cells.file", PathBuf::from(&s.cells.file)));
    }
    if s.backhaul.enabled && s.backhaul.topology == BackhaulTopology::File {
        v.push(("backhaul.links_file", PathBuf::from(&s.backhaul.links_file)));
    }
    if s.allocator.utility == crate::config::UtilityKind::Table {
        v.push(("allocator.utility_file", PathBuf::from(&s.allocator.utility_file)));
    }
    if trains {
        if !s.training.init.is_empty() {
            v.push(("training.init", PathBuf::from(&s.training.init)));
        }
        for f in data_files(s.training.dataset, &s.training.data_dir) {
            v.push(("training.data_dir", f));
        }
    }
    v
}

/// One input file's content hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputDigest {
    /// The scenario field that names the file.
    pub field: String,
    pub path: PathBuf,
    /// SHA-256 of the bytes, lowercase hex.
    pub sha256: String,
}

/// Hashes already computed in this process, by (path, length, mtime): a
/// sweep's points share their data files.
static CACHE: Mutex<Option<HashMap<FileStamp, String>>> = Mutex::new(None);

/// A file as last seen: path, length [B], modification time.
type FileStamp = (PathBuf, u64, std::time::SystemTime);

/// The SHA-256 of a file's bytes, read in blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    let key = (path.to_path_buf(), meta.len(), meta.modified()?);
    if let Some(h) = CACHE.lock().ok().and_then(|c| c.as_ref().and_then(|m| m.get(&key).cloned())) {
        return Ok(h);
    }
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if let Ok(mut c) = CACHE.lock() {
        c.get_or_insert_with(HashMap::new).insert(key, hex.clone());
    }
    Ok(hex)
}

/// The digests of every input file of `s` (see [`input_files`]); a file
/// that cannot be read is bad input naming its field.
pub fn input_digests(s: &Scenario, trains: bool) -> Result<Vec<InputDigest>> {
    input_files(s, trains)
        .into_iter()
        .map(|(field, path)| {
            let sha256 = sha256_file(&path)
                .map_err(|e| Error::Input(format!("{}: {e} (named by the scenario's `{field}`)", path.display())))?;
            Ok(InputDigest { field: field.to_string(), path, sha256 })
        })
        .collect()
}

/// The header lines that record `digests` in a resolved scenario.
pub fn header_lines(digests: &[InputDigest]) -> String {
    digests.iter().map(|d| format!("# input {} {} sha256:{}\n", d.field, d.path.display(), d.sha256)).collect()
}

/// The digests recorded in a resolved scenario's header.
pub fn recorded(text: &str) -> Vec<InputDigest> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("# input ")?;
            let (field, rest) = rest.split_once(' ')?;
            let (path, hash) = rest.rsplit_once(" sha256:")?;
            Some(InputDigest { field: field.to_string(), path: PathBuf::from(path), sha256: hash.to_string() })
        })
        .collect()
}

/// Why a run recorded with `old` digests cannot be resumed with `now`'s:
/// the first file that changed, appeared or is gone, named. `None` when
/// they agree.
pub fn changed(old: &[InputDigest], now: &[InputDigest]) -> Option<String> {
    for d in now {
        match old.iter().find(|o| o.field == d.field && o.path == d.path) {
            Some(o) if o.sha256 == d.sha256 => {}
            Some(_) => {
                return Some(format!("{} (`{}`) changed since that run read it", d.path.display(), d.field));
            }
            None => return Some(format!("{} (`{}`) was not an input of that run", d.path.display(), d.field)),
        }
    }
    old.iter()
        .find(|o| !now.iter().any(|d| d.field == o.field && d.path == o.path))
        .map(|o| format!("{} (`{}`) was an input of that run and is not one now", o.path.display(), o.field))
}

impl Scenario {
    /// [`Scenario::resolved_toml`] with the content hash of every input
    /// file in its header (see the module's doc).
    pub fn resolved_toml_with_inputs(&self, trains: bool) -> Result<String> {
        let text = self.resolved_toml();
        let lines = header_lines(&input_digests(self, trains)?);
        Ok(match text.split_once("\n\n") {
            Some((head, body)) => format!("{head}\n{lines}\n{body}"),
            None => format!("{lines}{text}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_known_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, "abc").unwrap();
        // FIPS 180-2's first example.
        assert_eq!(sha256_file(&p).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn recorded_lines_read_back_and_changes_are_named() {
        let d = |h: &str| InputDigest { field: "cells.file".into(), path: "a b.csv".into(), sha256: h.into() };
        let text = format!("# head\n{}\n[run]\n", header_lines(&[d("01")]));
        assert_eq!(recorded(&text), vec![d("01")]);
        assert_eq!(changed(&[d("01")], &[d("01")]), None);
        assert!(changed(&[d("01")], &[d("02")]).unwrap().contains("a b.csv (`cells.file`) changed"));
        assert!(changed(&[], &[d("02")]).is_some() && changed(&[d("01")], &[]).is_some());
    }
}
