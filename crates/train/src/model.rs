//! The split ViT of SPEC section 1 as two Burn modules. The device side is
//! the patch embedding; the server side is everything after it. Field names
//! follow timm's (`patch_embed.proj`, `blocks.N.attn.qkv`, `mlp.fc1`, ...)
//! so that timm safetensors load by name (see `import.rs`).

use crate::config::Precision;
use crate::workload::VitConfig;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::module::linear;
use burn::tensor::{Device, Distribution, FloatDType, Tensor};

/// `patch_embed`: Conv2d(C -> dim, kernel = stride = P).
#[derive(Module, Debug)]
pub struct PatchEmbed {
    pub proj: Conv2d,
}

/// The device side: images `[B, C, H, W]` -> patch tokens `[B, T, dim]`.
#[derive(Module, Debug)]
pub struct DeviceModel {
    pub patch_embed: PatchEmbed,
}

impl DeviceModel {
    pub fn new(c: &VitConfig, device: &Device) -> DeviceModel {
        let proj =
            Conv2dConfig::new([c.channels, c.dim], [c.patch, c.patch]).with_stride([c.patch, c.patch]).init(device);
        DeviceModel { patch_embed: PatchEmbed { proj } }
    }

    /// Patch tokens `[B, T, dim]`: the cut-layer activations.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<3> {
        let x = self.patch_embed.proj.forward(images); // [B, dim, H/P, W/P]
        let [b, d, h, w] = x.dims();
        x.reshape([b, d, h * w]).swap_dims(1, 2)
    }
}

/// Multi-head self-attention with timm's fused `qkv` projection.
#[derive(Module, Debug)]
pub struct Attention {
    pub qkv: Linear,
    pub proj: Linear,
    heads: usize,
}

impl Attention {
    fn forward(&self, x: Tensor<3>, p: Precision) -> Tensor<3> {
        let [b, t, d] = x.dims();
        let (heads, hd) = (self.heads, d / self.heads);
        let (w, bias) = (self.qkv.weight.val(), self.qkv.bias.as_ref().map(|p| p.val()));
        // q, k and v from column slices of the fused [d, 3d] weight rather
        // than from slices of the [B, T, 3d] output: a slice's backward
        // zero-fills its whole source, which is then weight-sized, not
        // activation-sized; q's slice also carries the 1/sqrt(hd) score
        // scale. The head split is a strided view the matmuls read as is.
        let part = |i: usize, scale: Option<f32>| {
            let (mut wi, mut bi) = (w.clone().narrow(1, i * d, d), bias.clone().map(|b| b.narrow(0, i * d, d)));
            if let Some(s) = scale {
                wi = wi.mul_scalar(s);
                bi = bi.map(|b| b.mul_scalar(s));
            }
            dense(x.clone(), wi, bi, p).reshape([b, t, heads, hd]).swap_dims(1, 2) // [B, H, T, hd]
        };
        let (q, k, v) = (part(0, Some((hd as f32).powf(-0.5))), part(1, None), part(2, None));
        let out = heads_matmul(softmax_last(heads_matmul(q, k.swap_dims(2, 3), p)), v, p); // [B, H, T, hd]
        dense_layer(&self.proj, out.swap_dims(1, 2).reshape([b, t, d]), p)
    }
}

/// `x W + b` for tokens `x` `[B, T, in]` and a weight `[in, out]`, as one
/// `[B T, in] x [in, out]` product. Burn's `linear` keeps a `[B, T, in]`
/// input batched when its rule finds the merged product no squarer (every
/// layer here whose output is `dim` wide): the forward is then B small
/// products that each repack the weight, and the weight's gradient is B
/// `[in, out]` products summed afterwards (a B-fold buffer to fill and
/// reduce). Flattened, the weight's gradient is one product over all B T
/// rows. With a bias it is one op with its own backward
/// (on flex [`crate::ops::Dense`]: each product one gemm call into its
/// output). `vit-small-32`, batch 64, 2 threads: docs/performance.md.
/// At mixed precision the product is `mixed`'s and the bias is added
/// in f32.
pub fn dense(x: Tensor<3>, weight: Tensor<2>, bias: Option<Tensor<1>>, p: Precision) -> Tensor<3> {
    let [b, t, d] = x.dims();
    let out = weight.dims()[1];
    let x = x.reshape([b * t, d]);
    match (bias, p) {
        (Some(bias), Precision::F32) if on_flex(&x.device()) => crate::ops::dense_op(x, weight, bias),
        (Some(bias), Precision::F32) => linear(x, weight, Some(bias)),
        (None, Precision::F32) => x.matmul(weight),
        (bias, p) => {
            let y = mixed(x, weight, p);
            match bias {
                Some(bias) => y + bias.unsqueeze::<2>(),
                None => y,
            }
        }
    }
    .reshape([b, t, out])
}

/// [`dense`] with a Burn `Linear`'s parameters.
fn dense_layer(layer: &Linear, x: Tensor<3>, p: Precision) -> Tensor<3> {
    dense(x, layer.weight.val(), layer.bias.as_ref().map(|p| p.val()), p)
}

/// `a b` with both operands cast to `p`'s type and the product cast back
/// to f32: autocast's matrix product. The casts are differentiable (each
/// gradient is cast back to its input's type), so the backward's products
/// run in `p`'s type too and the weights' gradients arrive in f32. The
/// backend sums in f32 (flex: its bf16 product converts to f32; CubeCL:
/// f32 accumulators).
fn mixed<const D: usize>(a: Tensor<D>, b: Tensor<D>, p: Precision) -> Tensor<D> {
    match half_dtype(p) {
        Some(dtype) => a.cast(dtype).matmul(b.cast(dtype)).cast(FloatDType::F32),
        None => a.matmul(b),
    }
}

/// The type `p` casts the products' operands to; None at f32.
pub fn half_dtype(p: Precision) -> Option<FloatDType> {
    match p {
        Precision::F32 => None,
        Precision::F16 => Some(FloatDType::F16),
        Precision::Bf16 => Some(FloatDType::BF16),
    }
}

/// timm's `Mlp`: fc1 -> GELU -> fc2.
#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

/// A pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    pub norm1: LayerNorm,
    pub attn: Attention,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
    /// The number format of the block's matrix products: a setting, not a
    /// parameter (not in checkpoints).
    #[module(skip)]
    pub precision: Precision,
}

impl Block {
    fn new(c: &VitConfig, device: &Device) -> Block {
        let ln = || LayerNormConfig::new(c.dim).with_epsilon(NORM_EPS).init(device);
        let lin = |i, o| LinearConfig::new(i, o).with_initializer(trunc_normal()).init(device);
        Block {
            norm1: ln(),
            attn: Attention { qkv: lin(c.dim, 3 * c.dim), proj: lin(c.dim, c.dim), heads: c.heads },
            norm2: ln(),
            mlp: Mlp { fc1: lin(c.dim, c.mlp_dim), fc2: lin(c.mlp_dim, c.dim) },
            precision: Precision::F32,
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let p = self.precision;
        let x = x.clone() + self.attn.forward(norm(&self.norm1, x), p);
        let h = dense_layer(&self.mlp.fc2, gelu(dense_layer(&self.mlp.fc1, norm(&self.norm2, x.clone()), p)), p);
        x + h
    }
}

/// The exact (erf-based) GELU, as timm's `nn.GELU`. On flex one
/// vectorized loop gives each element's value and slope, and the backward
/// multiplies by the slope ([`crate::ops::Gelu`]). Burn's CPU GELU
/// evaluates a scalar libm `erff` per element forward and backward (about
/// a fifth of a `vit-p7-28` co-simulation's time). Other backends use
/// Burn's.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_flex(&x.device()) { crate::ops::gelu_op(x) } else { burn::tensor::activation::gelu(x) }
}

/// Softmax over the last dimension. On flex one vectorized loop gives it
/// and one more its gradient from its output ([`crate::ops::Softmax`]);
/// Burn's CPU softmax calls a scalar libm `expf` per element (a tenth of a
/// `vit-tiny-28` co-simulation's time, whose 50 tokens make the attention
/// scores the largest tensor of a step). Other backends use Burn's.
pub fn softmax_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_flex(&x.device()) { crate::ops::softmax_op(x) } else { softmax(x, D - 1) }
}

/// `a b` for each (batch, head): `[B, H, m, k]` x `[B, H, k, n]`. On flex
/// each product is one `gemm` call on the strided head views, writing into
/// its output, and `P V`'s output has the heads of each token side by
/// side, so that merging the heads is a view ([`crate::ops::Heads`]);
/// Burn's flex matmul zero-fills and copies each output, and the merge
/// and its gradient were copies. Other backends use Burn's; at mixed
/// precision every backend takes `mixed`'s.
pub fn heads_matmul(a: Tensor<4>, b: Tensor<4>, p: Precision) -> Tensor<4> {
    match p {
        Precision::F32 if on_flex(&a.device()) => crate::ops::heads_product_op(a, b),
        p => mixed(a, b, p),
    }
}

/// The layer norms' epsilon [1] (timm's ViT).
pub const NORM_EPS: f64 = 1e-6;

/// A layer norm made with epsilon [`NORM_EPS`] (every one here). On flex
/// one vectorized loop over each row gives the output and keeps x^ and
/// 1 / sqrt(var + eps), and one more gives the three gradients
/// ([`crate::ops::Norm`]): under autodiff Burn runs its CPU layer norm as
/// about ten element-wise ops, each its own pass and buffer, with as many
/// more backward. Other backends use Burn's.
pub fn norm<const D: usize>(layer: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    match &layer.beta {
        Some(beta) if on_flex(&x.device()) => crate::ops::layer_norm_op(x, layer.gamma.val(), beta.val(), NORM_EPS),
        _ => layer.forward(x),
    }
}

/// Whether `device` is Burn's flex CPU backend (with or without autodiff).
pub(crate) fn on_flex(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

/// The server side: patch tokens `[B, T, dim]` -> logits `[B, classes]`.
#[derive(Module, Debug)]
pub struct ServerModel {
    pub cls_token: Param<Tensor<3>>,
    pub pos_embed: Param<Tensor<3>>,
    pub blocks: Vec<Block>,
    pub norm: LayerNorm,
    pub head: Linear,
}

impl ServerModel {
    pub fn new(c: &VitConfig, device: &Device) -> ServerModel {
        let tokens = (c.image / c.patch).pow(2);
        let normal =
            |shape: [usize; 3]| Param::from_tensor(Tensor::random(shape, Distribution::Normal(0.0, 0.02), device));
        ServerModel {
            cls_token: normal([1, 1, c.dim]),
            pos_embed: normal([1, tokens + 1, c.dim]),
            blocks: (0..c.depth).map(|_| Block::new(c, device)).collect(),
            norm: LayerNormConfig::new(c.dim).with_epsilon(NORM_EPS).init(device),
            head: LinearConfig::new(c.dim, c.classes).with_initializer(trunc_normal()).init(device),
        }
    }

    /// The same model with its blocks' matrix products at `p`.
    pub fn with_precision(mut self, p: Precision) -> ServerModel {
        self.blocks.iter_mut().for_each(|b| b.precision = p);
        self
    }

    pub fn forward(&self, tokens: Tensor<3>) -> Tensor<2> {
        let [b, _, d] = tokens.dims();
        let cls = self.cls_token.val().expand([b, 1, d]);
        let mut x = Tensor::cat(vec![cls, tokens], 1) + self.pos_embed.val();
        for block in &self.blocks {
            x = block.forward(x);
        }
        let x = norm(&self.norm, x);
        self.head.forward(x.narrow(1, 0, 1).reshape([b, d]))
    }
}

/// timm's ViT init for linear weights: N(0, 0.02) (not truncated: the
/// tails past 2σ carry 5% of the mass and do not matter at this scale).
fn trunc_normal() -> Initializer {
    Initializer::Normal { mean: 0.0, std: 0.02 }
}

/// The whole model on one device (`fl`, `ll` and the centralized baseline).
#[derive(Module, Debug)]
pub struct SplitVit {
    pub device_side: DeviceModel,
    pub server_side: ServerModel,
}

impl SplitVit {
    pub fn new(c: &VitConfig, device: &Device) -> SplitVit {
        SplitVit { device_side: DeviceModel::new(c, device), server_side: ServerModel::new(c, device) }
    }

    /// The same model with its blocks' matrix products at `p`.
    pub fn with_precision(self, p: Precision) -> SplitVit {
        SplitVit { server_side: self.server_side.with_precision(p), ..self }
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.server_side.forward(self.device_side.forward(images))
    }
}
