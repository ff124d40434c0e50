//! The workload model of SPEC section 1: a ViT cut after its patch
//! embedding. Device side = Conv2d(C -> dim, kernel = stride = P, no bias);
//! server side = cls token, position embedding, `depth` transformer blocks,
//! final norm and head. FLOPs count 2 per multiply-accumulate.

use crate::units::BYTES_PER_MIB;
use serde::Serialize;

pub use crate::config::models::{VIT_CONFIGS, VitConfig, config_names, vit_config};

/// The derived workload of one configuration, per image unless named.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    pub model: &'static str,
    /// Patch tokens per image [1] (without the cls token).
    pub tokens: usize,
    /// Device-side parameters [1] (conv weight, no bias).
    pub device_params: usize,
    /// Server-side parameters [1].
    pub server_params: usize,
    /// Device forward FLOPs per image [FLOP].
    pub device_fwd_flops: f64,
    /// Device training FLOPs per image [FLOP]: forward + weight gradient.
    pub device_train_flops: f64,
    /// Server forward FLOPs per image [FLOP].
    pub server_fwd_flops: f64,
    /// Server training FLOPs per image [FLOP] (~3x forward).
    pub server_train_flops: f64,
    /// Activation elements per image that cross the cut [1]: the patch
    /// tokens (the cls token is a server parameter and never travels).
    pub cut_elements: usize,
    /// Tokens in the paper's output shape (patches + the cls slot) [1].
    pub output_tokens: usize,
}

impl Workload {
    pub fn of(c: &VitConfig) -> Workload {
        let tokens = (c.image / c.patch) * (c.image / c.patch);
        let patch_in = c.channels * c.patch * c.patch;
        let device_params = patch_in * c.dim;
        let n = (tokens + 1) as f64;
        let d = c.dim as f64;
        let m = c.mlp_dim as f64;
        // Per block: LN(2D) x2, qkv (3D^2 + 3D), proj (D^2 + D), MLP (2DM + M + D).
        let block_params = 4 * c.dim
            + 3 * c.dim * c.dim
            + 3 * c.dim
            + c.dim * c.dim
            + c.dim
            + 2 * c.dim * c.mlp_dim
            + c.mlp_dim
            + c.dim;
        let server_params = c.dim // cls token
            + (tokens + 1) * c.dim // position embedding
            + c.depth * block_params
            + 2 * c.dim // final norm
            + c.dim * c.classes + c.classes; // head
        let device_fwd_flops = 2.0 * tokens as f64 * patch_in as f64 * d;
        // MACs per block: qkv 3ND^2, scores N^2 D, weighted sum N^2 D, proj ND^2, MLP 2NDM.
        let block_macs = 3.0 * n * d * d + 2.0 * n * n * d + n * d * d + 2.0 * n * d * m;
        let server_fwd_flops = 2.0 * (c.depth as f64 * block_macs + d * c.classes as f64);
        Workload {
            model: c.name,
            tokens,
            device_params,
            server_params,
            device_fwd_flops,
            device_train_flops: 2.0 * device_fwd_flops,
            server_fwd_flops,
            server_train_flops: 3.0 * server_fwd_flops,
            cut_elements: tokens * c.dim,
            output_tokens: tokens + 1,
        }
    }

    /// What the device computes per image: (forward, backward) [FLOP]. A
    /// split framework runs the patch embedding (its backward: the weight
    /// gradient); a whole-model one the whole model.
    pub fn device_flops(&self, split: bool) -> (f64, f64) {
        if split {
            (self.device_fwd_flops, self.device_train_flops - self.device_fwd_flops)
        } else {
            let fwd = self.device_fwd_flops + self.server_fwd_flops;
            (fwd, self.device_train_flops + self.server_train_flops - fwd)
        }
    }
}

/// One row of the paper's Table I (batch `batch`, fp32).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableRow {
    pub model: &'static str,
    /// Device-side parameters [MiB of f32].
    pub device_params_mib: f64,
    /// Device forward compute for the batch [GFLOP].
    pub device_gflops_batch64: f64,
    /// Device memory: parameters + output activation [MiB of f32].
    pub device_memory_mib: f64,
    /// The value the paper prints for memory where it differs [MiB].
    pub paper_memory_mib: Option<f64>,
    /// Output shape of the device side, `(b, tokens, dim)`.
    pub output_shape: String,
    /// Server-side parameters [MiB of f32].
    pub server_params_mib: f64,
    /// Server training compute for the batch [GFLOP].
    pub server_train_gflops_batch64: f64,
}

/// Table I at batch 64. `paper_memory_mib` carries the paper's printed value
/// for the two rows whose memory does not follow its own rule (SPEC 1).
pub fn table_one(batch: usize) -> Vec<TableRow> {
    VIT_CONFIGS
        .iter()
        .map(|c| {
            let w = Workload::of(c);
            let f32_mib = |n: f64| n * 4.0 / BYTES_PER_MIB;
            let out_elems = (batch * w.output_tokens * c.dim) as f64;
            TableRow {
                model: c.name,
                device_params_mib: f32_mib(w.device_params as f64),
                device_gflops_batch64: batch as f64 * w.device_fwd_flops / 1e9,
                device_memory_mib: f32_mib(w.device_params as f64 + out_elems),
                paper_memory_mib: match c.name {
                    "vit-b16" => Some(74.00),
                    "vit-l16" => Some(98.0),
                    _ => None,
                },
                output_shape: format!("(b, {}, {})", w.output_tokens, c.dim),
                server_params_mib: f32_mib(w.server_params as f64),
                server_train_gflops_batch64: batch as f64 * w.server_train_flops / 1e9,
            }
        })
        .collect()
}

/// Table I as Markdown.
pub fn table_one_markdown(batch: usize) -> String {
    let mut s = String::from(
        "| model | device params (MiB) | device compute (GFLOPs, batch) | device memory (MiB) | output shape | server params (MiB) | server train (GFLOPs, batch) |\n|---|---|---|---|---|---|---|\n",
    );
    for r in table_one(batch) {
        let mem = match r.paper_memory_mib {
            Some(p) => format!("{:.2} (paper prints {:.2})", r.device_memory_mib, p),
            None => format!("{:.2}", r.device_memory_mib),
        };
        s.push_str(&format!(
            "| {} | {:.2} | {:.2} | {} | {} | {:.2} | {:.1} |\n",
            r.model,
            r.device_params_mib,
            r.device_gflops_batch64,
            mem,
            r.output_shape,
            r.server_params_mib,
            r.server_train_gflops_batch64
        ));
    }
    s
}
