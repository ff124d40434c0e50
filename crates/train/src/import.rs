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
//! the first offending key; a position embedding of another patch grid
//! (another image size) is resampled as timm does; a head of another class
//! count is skipped and said so; tensors of other heads (distillation) are reported unused.
//! An import that applies nothing is an error. Checked against timm's own
//! logits (`tests/reference/timm_vit.py`).

use super::model::SplitVit;
use crate::error::{Error, Result};
use burn::store::{ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use burn::tensor::{Tensor, TensorData};
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
    /// Tensors adapted to this model on the way in, with how.
    #[serde(default)]
    pub resampled: Vec<(String, String)>,
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
        for (k, how) in &self.resampled {
            write!(f, "; {k}: {how}")?;
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
    let header = read_header(path)?;
    let file: BTreeMap<String, Vec<usize>> = header.tensors.iter().map(|(k, t)| (k.clone(), t.shape.clone())).collect();
    let prefix = PREFIXES.iter().find(|p| !file.is_empty() && file.keys().all(|k| k.starts_with(*p))).copied();
    let file: BTreeMap<String, Vec<usize>> =
        file.into_iter().map(|(k, s)| (prefix.map_or(k.clone(), |p| k[p.len()..].to_string()), s)).collect();
    let want = expected(model);
    let mut report =
        ImportReport { file: path.display().to_string(), prefix: prefix.map(str::to_string), ..Default::default() };
    let mut head_ok = true;
    // The file's patch grid side when its position embedding must be resampled.
    let mut resample_from: Option<usize> = None;
    for (key, shape) in &file {
        if let Some(why) = structural(key) {
            return Err(refuse(format!("tensor `{key}`: {why}; this model has none (check training.model)")));
        }
        match want.get(key) {
            Some(w) if w == shape => {}
            Some(w)
                if key == "pos_embed" && grid_side(shape).is_some() && grid_side(w).is_some() && shape[2] == w[2] =>
            {
                resample_from = grid_side(shape);
            }
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
    let pos = if resample_from.is_some() { "" } else { "|pos_embed" };
    let head = if head_ok { r"|head\." } else { "" };
    let server_keys = format!(r"^(?:cls_token{pos}|blocks\.|norm\.{head})");
    let rs = model.server_side.load_from(&mut store(&server_keys)).map_err(err)?;
    let errors: Vec<String> = rd.errors.iter().chain(&rs.errors).map(|e| format!("{e:?}")).collect();
    if !errors.is_empty() {
        return Err(refuse(format!(
            "{} tensors do not fit this model ({}); check training.model",
            errors.len(),
            errors[..errors.len().min(3)].join("; ")
        )));
    }
    report.applied = rd.applied.len() + rs.applied.len();
    if let Some(from) = resample_from {
        let key = prefix.map_or("pos_embed".to_string(), |p| format!("{p}pos_embed"));
        let data = f32_tensor(path, &header, &key)?;
        let old = &model.server_side.pos_embed;
        let [_, tokens, dim] = old.val().dims();
        let to = grid_side(&[1, tokens, dim]).expect("the model's grid is square");
        let new = resample_pos_embed(data, from, to, dim, &old.val().device());
        model.server_side.pos_embed = burn::module::Param::from_tensor(new);
        report.applied += 1;
        report.resampled.push((
            "pos_embed".into(),
            format!("{from}x{from} patch grid resampled to {to}x{to} (bicubic, class token kept, as timm does)"),
        ));
    }
    if report.applied == 0 {
        return Err(refuse("no tensor of this model's names was applied; is it a timm ViT checkpoint?".into()));
    }
    Ok(report)
}

/// The side g of a position embedding `[1, 1 + g², d]` (one class token).
fn grid_side(shape: &[usize]) -> Option<usize> {
    let [1, t, _] = shape else { return None };
    let g = ((t.checked_sub(1)?) as f64).sqrt().round() as usize;
    (g > 0 && g * g + 1 == *t).then_some(g)
}

/// timm's `resample_abs_pos_embed` for one class token: the token kept,
/// the `from` x `from` grid resized to `to` x `to` as timm resizes it,
/// `F.interpolate(mode="bicubic", antialias=True, align_corners=False)`.
/// That is PyTorch's antialiased (PIL-style, a = -0.5, normalized) bicubic
/// filter, which Burn's `interpolate` (Keys' a = -0.75, clamped) is not, so
/// its few lines are here; checked against timm's output.
fn resample_pos_embed(v: Vec<f32>, from: usize, to: usize, dim: usize, device: &burn::tensor::Device) -> Tensor<3> {
    let (cls, grid) = v.split_at(dim);
    let taps = aa_bicubic_taps(from, to);
    // Rows first (along x), then columns (along y), in f64.
    let mut rows = vec![0f64; from * to * dim];
    for y in 0..from {
        for (x, (x0, w)) in taps.iter().enumerate() {
            for (k, wk) in w.iter().enumerate() {
                let src = &grid[(y * from + x0 + k) * dim..][..dim];
                let dst = &mut rows[(y * to + x) * dim..][..dim];
                dst.iter_mut().zip(src).for_each(|(d, s)| *d += wk * *s as f64);
            }
        }
    }
    let mut out: Vec<f32> = cls.to_vec();
    out.resize(dim * (1 + to * to), 0.0);
    for (y, (y0, w)) in taps.iter().enumerate() {
        for x in 0..to {
            let dst = &mut out[dim * (1 + y * to + x)..][..dim];
            for (d, c) in dst.iter_mut().enumerate() {
                *c = w.iter().enumerate().map(|(k, wk)| wk * rows[((y0 + k) * to + x) * dim + d]).sum::<f64>() as f32;
            }
        }
    }
    Tensor::<1>::from_data(TensorData::new(out, [(1 + to * to) * dim]), device).reshape([1, 1 + to * to, dim])
}

/// Per output index of one axis: the first input index and the
/// normalized weights (PyTorch's `_compute_indices_min_size_weights_aa`
/// with the bicubic antialias filter).
fn aa_bicubic_taps(input: usize, output: usize) -> Vec<(usize, Vec<f64>)> {
    let filter = |x: f64| {
        let (a, x) = (-0.5, x.abs());
        if x < 1.0 {
            ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            (((x - 5.0) * x + 8.0) * x - 4.0) * a
        } else {
            0.0
        }
    };
    let scale = input as f64 / output as f64;
    let support = 2.0 * scale.max(1.0);
    let inv = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    (0..output)
        .map(|i| {
            let center = scale * (i as f64 + 0.5);
            let lo = ((center - support + 0.5) as i64).max(0) as usize;
            let hi = ((center + support + 0.5) as i64).min(input as i64) as usize;
            let mut w: Vec<f64> = (lo..hi).map(|j| filter((j as f64 - center + 0.5) * inv)).collect();
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|x| *x /= total);
            }
            (lo, w)
        })
        .collect()
}

/// One F32 tensor of the file, by key: only its bytes are read.
fn f32_tensor(path: &Path, header: &Header, key: &str) -> Result<Vec<f32>> {
    use std::io::{Read, Seek, SeekFrom};
    let bad = |m: String| Error::Input(format!("training.init: {}: tensor `{key}`: {m}", path.display()));
    let t = header.tensors.get(key).ok_or_else(|| bad("not in the file".into()))?;
    if t.dtype != "F32" {
        return Err(bad(format!("dtype {}: resampling reads F32", t.dtype)));
    }
    let (a, b) = t.range;
    let mut raw = vec![0u8; b.checked_sub(a).ok_or_else(|| bad("bad data offsets".into()))? as usize];
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    f.seek(SeekFrom::Start(header.data_start + a))
        .and_then(|_| f.read_exact(&mut raw))
        .map_err(|e| bad(format!("data past the end of the file ({e})")))?;
    Ok(raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
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

/// What a safetensors header says of one tensor.
struct TensorInfo {
    dtype: String,
    shape: Vec<usize>,
    /// Byte range in the data section [B].
    range: (u64, u64),
}

/// A safetensors file's header: every tensor, by key, and where the data
/// section starts [B].
struct Header {
    data_start: u64,
    tensors: BTreeMap<String, TensorInfo>,
}

/// Reads only the header (8-byte length, then JSON) of a safetensors file.
fn read_header(path: &Path) -> Result<Header> {
    use std::io::Read;
    let not = || Error::Input(format!("training.init: {}: not a safetensors file", path.display()));
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|_| not())?;
    let n = u64::from_le_bytes(len);
    let mut json = Vec::new();
    f.take(n).read_to_end(&mut json).map_err(|e| Error::io(path, e))?;
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&json).map_err(|_| not())?;
    let mut tensors = BTreeMap::new();
    for (k, v) in map {
        if k == "__metadata__" {
            continue;
        }
        let shape = v
            .get("shape")
            .and_then(|s| s.as_array())
            .map(|a| a.iter().filter_map(|d| d.as_u64().map(|d| d as usize)).collect())
            .ok_or_else(|| Error::Input(format!("training.init: {}: tensor `{k}` has no shape", path.display())))?;
        let off = |i: usize| v["data_offsets"][i].as_u64();
        let range = off(0).zip(off(1)).unwrap_or((0, 0));
        let dtype = v["dtype"].as_str().unwrap_or("").to_string();
        tensors.insert(k, TensorInfo { dtype, shape, range });
    }
    Ok(Header { data_start: 8 + n, tensors })
}
