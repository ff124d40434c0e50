//! Initial weights from timm ViT checkpoints in safetensors. The model's
//! field names are timm's, so the only translation is PyTorch's layout:
//! burn-store's `PyTorchToBurnAdapter` transposes Linear weights
//! (`[out, in]` -> `[in, out]`) and renames norm `weight`/`bias` to
//! `gamma`/`beta`. timm's fused `blocks.N.attn.qkv` matches our fused
//! projection as it is.

use super::model::SplitVit;
use crate::error::{Error, Result};
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use std::path::Path;

/// What an import matched.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportReport {
    /// Tensors loaded [1].
    pub applied: usize,
    /// Tensors of the model the file did not have (left as they were).
    pub missing: Vec<String>,
    /// Tensors of the file the model does not have (ignored).
    pub unused: Vec<String>,
}

/// Loads timm-named tensors from `path` into `model`. A head of another
/// class count (ImageNet's 1,000) is left as it was and reported missing.
pub fn load_timm(model: &mut SplitVit, path: &Path) -> Result<ImportReport> {
    if !path.exists() {
        return Err(Error::Input(format!("training.init: {} does not exist", path.display())));
    }
    let head_ok = head_matches(model, path)?;
    // The halves are loaded one by one: timm's names are top-level
    // (`patch_embed.*`, `blocks.*`), as each half's own paths are.
    let store = || SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter).allow_partial(true);
    let err = |e| Error::Input(format!("training.init: {}: {e}", path.display()));
    let rd = model.device_side.load_from(&mut store().with_regex(r"^patch_embed\.")).map_err(err)?;
    let server_keys = if head_ok {
        r"^(?:cls_token|pos_embed|blocks\.|norm\.|head\.)"
    } else {
        r"^(?:cls_token|pos_embed|blocks\.|norm\.)"
    };
    let rs = model.server_side.load_from(&mut store().with_regex(server_keys)).map_err(err)?;
    let r = ImportReport {
        applied: rd.applied.len() + rs.applied.len(),
        missing: rd.missing.iter().chain(&rs.missing).map(|(p, _)| p.clone()).collect(),
        unused: Vec::new(),
    };
    let errors: Vec<String> = rd.errors.iter().chain(&rs.errors).map(|e| format!("{e:?}")).collect();
    if !errors.is_empty() {
        return Err(Error::Input(format!(
            "training.init: {}: {} tensors do not fit this model ({}); check training.model",
            path.display(),
            errors.len(),
            errors[..errors.len().min(3)].join("; ")
        )));
    }
    let mut r = r;
    r.unused = unused_keys(path)?;
    if !head_ok {
        r.missing.extend(["head.weight".to_string(), "head.bias".to_string()]);
    }
    Ok(r)
}

/// The JSON header of a safetensors file (8-byte length, then JSON).
fn header(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let n = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize).unwrap_or(0);
    bytes
        .get(8..8usize.saturating_add(n))
        .and_then(|h| serde_json::from_slice(h).ok())
        .ok_or_else(|| Error::Input(format!("training.init: {}: not a safetensors file", path.display())))
}

/// Tensors of the file outside the ViT's names (e.g. a distillation head).
fn unused_keys(path: &Path) -> Result<Vec<String>> {
    let known = ["patch_embed.", "cls_token", "pos_embed", "blocks.", "norm.", "head."];
    Ok(header(path)?
        .keys()
        .filter(|k| *k != "__metadata__" && !known.iter().any(|p| k.starts_with(p)))
        .cloned()
        .collect())
}

/// Whether the file's `head.weight` has the model's class count.
fn head_matches(model: &SplitVit, path: &Path) -> Result<bool> {
    let header = header(path)?;
    let classes = model.server_side.head.weight.val().dims()[1];
    Ok(match header.get("head.weight").and_then(|t| t.get("shape")).and_then(|s| s.get(0)) {
        Some(out) => out.as_u64() == Some(classes as u64),
        None => true,
    })
}
