//! The ViT configurations known by name: the registry `model.timing` and
//! `training.model` are checked against (pure data, so `config` stays a
//! leaf). `crate::workload` derives parameters, FLOPs and sizes from them.

use serde::Serialize;

/// One ViT configuration. All sizes are counts [1].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VitConfig {
    pub name: &'static str,
    /// Input height = width [px].
    pub image: usize,
    /// Input channels [1].
    pub channels: usize,
    /// Patch size P [px].
    pub patch: usize,
    /// Embedding width [1].
    pub dim: usize,
    /// Transformer blocks [1].
    pub depth: usize,
    /// Attention heads [1].
    pub heads: usize,
    /// MLP hidden width [1].
    pub mlp_dim: usize,
    /// Classes of the head [1].
    pub classes: usize,
}

/// A 10-class configuration: (name, image [px], channels, patch [px], dim,
/// depth, heads, MLP width).
#[allow(clippy::too_many_arguments)]
const fn vit(
    name: &'static str,
    image: usize,
    channels: usize,
    patch: usize,
    dim: usize,
    depth: usize,
    heads: usize,
    mlp_dim: usize,
) -> VitConfig {
    VitConfig { name, image, channels, patch, dim, depth, heads, mlp_dim, classes: 10 }
}

/// Every configuration known by name, in the order `sflam workload` prints.
pub const VIT_CONFIGS: &[VitConfig] = &[
    vit("vit-b32", 224, 3, 32, 768, 12, 12, 3072),
    vit("vit-l32", 224, 3, 32, 1024, 24, 16, 4096),
    vit("vit-b16", 224, 3, 16, 768, 12, 12, 3072),
    vit("vit-l16", 224, 3, 16, 1024, 24, 16, 4096),
    // timm's tiny and small 224-pixel ViTs (vit_tiny_patch16_224,
    // vit_small_patch16_224, vit_small_patch32_224).
    vit("vit-ti16", 224, 3, 16, 192, 12, 3, 768),
    vit("vit-s16", 224, 3, 16, 384, 12, 6, 1536),
    vit("vit-s32", 224, 3, 32, 384, 12, 6, 1536),
    // Small ones that train on a CPU: Fashion-MNIST (28x28x1) and CIFAR (32x32x3).
    vit("vit-tiny-28", 28, 1, 4, 64, 4, 4, 128),
    // The centralized Fashion-MNIST baseline's: twice tiny's width, 1.5x
    // its depth (0.81 M parameters against 0.14 M).
    vit("vit-mini-28", 28, 1, 4, 128, 6, 4, 256),
    // 7-pixel patches (16 tokens against 49) buy twice tiny's width at
    // 0.6x its time a step (`examples/train_step`, batch 32); in PyTorch it
    // reaches 85.4% centrally after 3 epochs (docs/results.md, Fig. 6 from a pretrained start).
    vit("vit-p7-28", 28, 1, 7, 128, 4, 4, 256),
    vit("vit-tiny-32", 32, 3, 4, 64, 4, 4, 128),
    vit("vit-small-32", 32, 3, 4, 192, 6, 3, 768),
];

/// Names accepted in scenario files.
pub fn config_names() -> Vec<&'static str> {
    VIT_CONFIGS.iter().map(|c| c.name).collect()
}

/// Looks a configuration up by name.
pub fn vit_config(name: &str) -> Option<&'static VitConfig> {
    VIT_CONFIGS.iter().find(|c| c.name == name)
}
