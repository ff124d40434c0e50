//! Initial weights from timm ViT checkpoints in safetensors, strictly.
//! The model's field names are timm's, so the only translation is
//! PyTorch's layout: burn-store's `PyTorchToBurnAdapter` transposes Linear
//! weights (`[out, in]` -> `[in, out]`) and renames norm `weight`/`bias` to
//! `gamma`/`beta`; timm's fused `blocks.N.attn.qkv` matches our fused
//! projection as it is.
//!
//! Before anything is loaded the file's tensors are checked against the
//! model's: a known wrapper prefix (`module.`, `model.`, `_orig_mod.`) is
//! stripped; anything structurally different (depth, width, patch size,
//! LayerScale, qk-norm, register tokens, a pooled head) is refused naming
//! the first offending key; a head of another class count is skipped and
//! said so; tensors of other heads (distillation) are reported unused.
//! An import that applies nothing is an error. Checked against timm's own
//! logits (`tests/reference/timm_vit.py`).

use super::model::SplitVit;
use crate::error::{Error, Result};
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// The file [path].
    pub file: String,
    /// The wrapper prefix stripped from every key, if any.
    pub prefix: Option<String>,
    /// Tensors loaded into the model [1].
    pub applied: usize,
    /// File tensors of the model's names that were not loaded, with why.
    pub skipped: Vec<(String, String)>,
    /// Model tensors the file did not have (left as initialized).
    pub missing: Vec<String>,
    /// File tensors outside the ViT's names (ignored).
    pub unused: Vec<String>,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training.init {}: {} tensors applied, {} skipped, {} missing, {} unused",
            self.file,
            self.applied,
            self.skipped.len(),
            self.missing.len(),
            self.unused.len()
        )?;
        if let Some(p) = &self.prefix {
            write!(f, " (prefix `{p}` stripped)")?;
        }
        for (k, why) in &self.skipped {
            write!(f, "; skipped {k}: {why}")?;
        }
        if !self.missing.is_empty() {
            write!(f, "; missing {}", self.missing.join(", "))?;
        }
        Ok(())
    }
}

/// Prefixes that training wrappers put before every key.
const PREFIXES: [&str; 3] = ["module.", "model.", "_orig_mod."];

/// Loads timm-named tensors from `path` into `model` (see the module doc).
pub fn load_timm(model: &mut SplitVit, path: &Path) -> Result<ImportReport> {
    let refuse = |msg: String| Error::Input(format!("training.init: {}: {msg}", path.display()));
    if !path.exists() {
        return Err(Error::Input(format!("training.init: {} does not exist", path.display())));
    }
    let file = shapes(path)?;
    let prefix = PREFIXES.iter().find(|p| !file.is_empty() && file.keys().all(|k| k.starts_with(*p))).copied();
    let file: BTreeMap<String, Vec<usize>> =
        file.into_iter().map(|(k, s)| (prefix.map_or(k.clone(), |p| k[p.len()..].to_string()), s)).collect();
    let want = expected(model);
    let mut report =
        ImportReport { file: path.display().to_string(), prefix: prefix.map(str::to_string), ..Default::default() };
    let mut head_ok = true;
    for (key, shape) in &file {
        if let Some(why) = structural(key) {
            return Err(refuse(format!("tensor `{key}`: {why}; this model has none (check training.model)")));
        }
        match want.get(key) {
            Some(w) if w == shape => {}
            Some(w) if key.starts_with("head.") => {
                head_ok = false;
                report.skipped.push((
                    key.clone(),
                    format!("shape {shape:?}: a head of another class count (this model's is {w:?}), left initialized"),
                ));
            }
            Some(w) => {
                return Err(refuse(format!(
                    "tensor `{key}` has shape {shape:?}, this model needs {w:?} (depth, width, patch size or image size differ; check training.model)"
                )));
            }
            None if key.starts_with("blocks.") => {
                return Err(refuse(format!(
                    "tensor `{key}`: the checkpoint is deeper than this model or has other block parts (check training.model)"
                )));
            }
            None => report.unused.push(key.clone()),
        }
    }
    report.missing = want.keys().filter(|k| !file.contains_key(*k)).cloned().collect();
    if let Some(k) = report.missing.iter().find(|k| k.starts_with("blocks.")) {
        return Err(refuse(format!(
            "no tensor `{k}`: the checkpoint is shallower than this model (check training.model)"
        )));
    }
    // The halves are loaded one by one: timm's names are top-level
    // (`patch_embed.*`, `blocks.*`), as each half's own paths are.
    let store = |re: &str| {
        let mut s = SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter).allow_partial(true);
        if let Some(p) = prefix {
            s = s.with_key_remapping(format!("^{}", regex_escape(p)), "");
        }
        s.with_regex(re)
    };
    let err = |e| refuse(format!("{e}"));
    let rd = model.device_side.load_from(&mut store(r"^patch_embed\.")).map_err(err)?;
    let server_keys = if head_ok {
        r"^(?:cls_token|pos_embed|blocks\.|norm\.|head\.)"
    } else {
        r"^(?:cls_token|pos_embed|blocks\.|norm\.)"
    };
    let rs = model.server_side.load_from(&mut store(server_keys)).map_err(err)?;
    let errors: Vec<String> = rd.errors.iter().chain(&rs.errors).map(|e| format!("{e:?}")).collect();
    if !errors.is_empty() {
        return Err(refuse(format!(
            "{} tensors do not fit this model ({}); check training.model",
            errors.len(),
            errors[..errors.len().min(3)].join("; ")
        )));
    }
    report.applied = rd.applied.len() + rs.applied.len();
    if report.applied == 0 {
        return Err(refuse("no tensor of this model's names was applied; is it a timm ViT checkpoint?".into()));
    }
    Ok(report)
}

/// Why a key belongs to a ViT variant this model is not, if it does.
fn structural(key: &str) -> Option<&'static str> {
    let parts: Vec<&str> = key.split('.').collect();
    let has = |p: &str| parts.contains(&p);
    if has("ls1") || has("ls2") {
        Some("LayerScale")
    } else if has("q_norm") || has("k_norm") {
        Some("qk-norm")
    } else if key == "reg_token" {
        Some("register tokens")
    } else if parts.first() == Some(&"fc_norm") {
        Some("a pooled head (global average pooling with fc_norm)")
    } else if has("norm_pre") || key.starts_with("norm_pre") {
        Some("a pre-norm before the blocks")
    } else {
        None
    }
}

fn regex_escape(s: &str) -> String {
    s.chars().flat_map(|c| if c.is_ascii_alphanumeric() || c == '_' { vec![c] } else { vec!['\\', c] }).collect()
}

/// The model's tensors under timm's names, in PyTorch's layouts.
fn expected(model: &SplitVit) -> BTreeMap<String, Vec<usize>> {
    let mut m = BTreeMap::new();
    let pe = &model.device_side.patch_embed.proj;
    m.insert("patch_embed.proj.weight".into(), pe.weight.val().dims().to_vec());
    if let Some(b) = &pe.bias {
        m.insert("patch_embed.proj.bias".into(), b.val().dims().to_vec());
    }
    let s = &model.server_side;
    m.insert("cls_token".into(), s.cls_token.val().dims().to_vec());
    m.insert("pos_embed".into(), s.pos_embed.val().dims().to_vec());
    let mut linear = |name: String, l: &burn::nn::Linear| {
        let [i, o] = l.weight.val().dims();
        m.insert(format!("{name}.weight"), vec![o, i]);
        if let Some(b) = &l.bias {
            m.insert(format!("{name}.bias"), b.val().dims().to_vec());
        }
    };
    for (n, b) in s.blocks.iter().enumerate() {
        linear(format!("blocks.{n}.attn.qkv"), &b.attn.qkv);
        linear(format!("blocks.{n}.attn.proj"), &b.attn.proj);
        linear(format!("blocks.{n}.mlp.fc1"), &b.mlp.fc1);
        linear(format!("blocks.{n}.mlp.fc2"), &b.mlp.fc2);
    }
    linear("head".into(), &s.head);
    let mut norm = |name: String, n: &burn::nn::LayerNorm| {
        let d = n.gamma.val().dims().to_vec();
        m.insert(format!("{name}.weight"), d.clone());
        m.insert(format!("{name}.bias"), d);
    };
    for (i, b) in s.blocks.iter().enumerate() {
        norm(format!("blocks.{i}.norm1"), &b.norm1);
        norm(format!("blocks.{i}.norm2"), &b.norm2);
    }
    norm("norm".into(), &s.norm);
    m
}

/// Every tensor's shape in a safetensors file, by key.
fn shapes(path: &Path) -> Result<BTreeMap<String, Vec<usize>>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let n = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize).unwrap_or(0);
    let header: serde_json::Map<String, serde_json::Value> = bytes
        .get(8..8usize.saturating_add(n))
        .and_then(|h| serde_json::from_slice(h).ok())
        .ok_or_else(|| Error::Input(format!("training.init: {}: not a safetensors file", path.display())))?;
    let mut out = BTreeMap::new();
    for (k, v) in header {
        if k == "__metadata__" {
            continue;
        }
        let shape = v
            .get("shape")
            .and_then(|s| s.as_array())
            .map(|a| a.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect())
            .ok_or_else(|| Error::Input(format!("training.init: {}: tensor `{k}` has no shape", path.display())))?;
        out.insert(k, shape);
    }
    Ok(out)
}
