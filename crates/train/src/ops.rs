//! Five ops of the training step as Burn backend extension ops with their
//! own backward, on the flex CPU backend (other backends take Burn's own
//! ops in `model.rs`).
//!
//! [`Dense`]: `x W + b` with every product (the forward's and both
//! gradients') one `gemm` call writing straight into its output. Burn's
//! flex matmul allocates its output as a zero-filled `Vec<u8>`, which its
//! byte container then copies into a freshly aligned buffer before gemm
//! overwrites it: every product's output was written three times, and the
//! bias was a separate broadcast add with its own buffer and backward.
//! Here the output is allocated once, the forward starts from the bias
//! rows and accumulates the product onto them, and the gradients are
//! written by gemm directly. gemm is the crate flex itself calls, with
//! flex's threading rule, so the products keep their parallelism and
//! their independence of thread count.
//!
//! [`Gelu`]: the exact GELU from one vectorized loop (`sflam_kernels`)
//! that also gives its slope, kept for the backward (`g * slope`). It
//! replaced a graph of `x * slope + offset` with both as constants, which
//! gave the same bits at the cost of a host copy of `x` and two more
//! element-wise passes with their buffers.
//!
//! [`Softmax`]: the softmax over the last dimension from one vectorized
//! loop, its output kept for the backward, whose gradient
//! `y (g - sum(g y))` is one more loop. It replaced a graph of tangent
//! lines (shift, slope and offset as constants, then a sum and a division)
//! whose backward ran through five ops.
//!
//! [`Norm`]: layer normalization over the last dimension from one
//! vectorized loop over each row, which keeps x^ and each row's
//! 1 / sqrt(var + eps); its backward is one more loop giving all three
//! gradients. Under autodiff Burn decomposed it into about ten
//! element-wise ops (means, centring, variance, square root, division,
//! scale, shift), each a pass with its own buffer, and as many backward.
//!
//! [`Heads`]: the attention's products per (batch, head), each one
//! `gemm` call on the strided head views into its block of the output
//! (flex's batched matmul zero-fills and copies its output as the linear
//! layers' did), `P V`'s output laid out with each token's heads side by
//! side so that merging the heads for the projection is a view, and each
//! gradient in its input's memory order so that the q/k/v splits'
//! backward is a view too.
//!
//! The element-wise kernels run in tasks on the rayon pool (flex's own
//! element-wise ops run on one thread), in fixed blocks of rows, so their
//! results do not depend on the thread count.
//!
//! Together: docs/history.md ("training step, this version").

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ActivationOps, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, DType, Dispatch, Flex, Shape, TensorMetadata, backend_extension};
use burn::tensor::{Tensor, TensorData};

/// `x W + b` as a backend op: `x` `[n, in]`, `W` `[in, out]`, `b` `[out]`
/// -> `[n, out]`.
#[backend_extension(Flex, Autodiff)]
pub trait Dense: Backend {
    fn dense(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        dense_reference::<Self>(x, w, b)
    }
}

/// The gradients of [`Dense::dense`] for upstream gradient `g` `[n, out]`:
/// `g Wᵀ` (needs `w`), `xᵀ g` (needs `x`) and `g`'s column sums, each only
/// where `want` asks for it.
pub trait DenseGrads: Backend {
    fn dense_grads(
        g: FloatTensor<Self>,
        x: Option<FloatTensor<Self>>,
        w: Option<FloatTensor<Self>>,
        want: [bool; 3],
    ) -> [Option<FloatTensor<Self>>; 3] {
        dense_grads_reference::<Self>(g, x, w, want)
    }
}

/// [`DenseGrads::dense_grads`] from Burn's own ops on any backend.
pub fn dense_grads_reference<B: Backend>(
    g: FloatTensor<B>,
    x: Option<FloatTensor<B>>,
    w: Option<FloatTensor<B>>,
    want: [bool; 3],
) -> [Option<FloatTensor<B>>; 3] {
    let gx = want[0]
        .then(|| B::float_matmul(g.clone(), B::float_transpose(w.expect("W is kept when x's gradient is wanted"))));
    let gw = want[1]
        .then(|| B::float_matmul(B::float_transpose(x.expect("x is kept when W's gradient is wanted")), g.clone()));
    let gb = want[2].then(|| {
        let out = g.shape()[1];
        B::float_reshape(B::float_sum_dim(g, 0), Shape::new([out]))
    });
    [gx, gw, gb]
}

/// `x W + b` from Burn's own ops on any backend.
pub fn dense_reference<B: Backend>(x: FloatTensor<B>, w: FloatTensor<B>, b: FloatTensor<B>) -> FloatTensor<B> {
    let out = b.shape()[0];
    B::float_add(B::float_matmul(x, w), B::float_reshape(b, Shape::new([1, out])))
}

/// `x W + b` for `x` `[n, in]` on flex, through [`Dense`] (autodiff
/// included).
pub fn dense_op(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as Dense>::dense(x.into_dispatch(), w.into_dispatch(), b.into_dispatch()))
}

/// A strided f32 matrix inside a flex tensor's storage.
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    rows: usize,
    cols: usize,
    /// Element strides between rows and between columns [elements].
    rs: isize,
    cs: isize,
}

impl View {
    /// `t` as a matrix, if it is a 2-d f32 tensor.
    fn of(t: &FlexTensor) -> Option<View> {
        let (ptr, [rows, cols], [rs, cs]) = strided::<2>(t)?;
        Some(View { ptr, rows, cols, rs, cs })
    }

    fn t(self) -> View {
        View { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }
}

/// A `D`-dimensional f32 tensor's first element, shape and strides
/// [elements], if it is one.
fn strided<const D: usize>(t: &FlexTensor) -> Option<(*const f32, [usize; D], [isize; D])> {
    let layout = t.layout();
    if t.dtype() != DType::F32 || layout.shape().num_dims() != D {
        return None;
    }
    let (shape, strides) = (layout.shape(), layout.strides());
    // SAFETY: the layout's start offset lies inside the storage.
    let ptr = unsafe { t.storage::<f32>().as_ptr().add(layout.start_offset()) };
    Some((ptr, std::array::from_fn(|d| shape[d]), std::array::from_fn(|d| strides[d])))
}

/// flex's rule (`burn-flex` 0.22 `ops::matmul`): products of at least 192³
/// multiply-adds run on the current rayon pool. gemm splits the output, not
/// the inner dimension, so the thread count does not change a result.
fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    if m.saturating_mul(n).saturating_mul(k) >= 192 * 192 * 192 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// `a b` (plus `start`'s rows, when given) into a new `[a.rows, b.cols]`
/// tensor. The callers check `a.cols == b.rows` and `start`'s length:
/// gemm trusts the extents it is given.
fn product(a: View, b: View, start: Option<&[f32]>) -> FlexTensor {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    debug_assert_eq!(k, b.rows);
    let len = m * n;
    let mut out: Vec<f32> = match start {
        Some(row) => {
            let mut rows = Vec::with_capacity(len);
            (0..m).for_each(|_| rows.extend_from_slice(row));
            rows
        }
        None => product_buffer(m, n, len),
    };
    // SAFETY: the views point into live f32 storage with the strides and
    // extents of their layouts; `out` has room for m x n row-major values.
    // Without `start`, gemm is told not to read the destination and writes
    // every one of its m x n elements, so the length is set once they are
    // written.
    unsafe {
        gemm_into(out.as_mut_ptr(), n as isize, 1, start.is_some(), a, b, parallelism(m, n, k));
        out.set_len(len);
    }
    FlexTensor::from_data(TensorData::new(out, [m, n]))
}

/// Room for `len` values that `gemm_into` products of m x n outputs with
/// `read_dst = false` will write: left unwritten, except zeroed when m or
/// n is below 2. gemm's matrix kernels write every element they are told
/// not to read (zeros when k = 0); its vector paths (one row or one
/// column) are not relied on.
fn product_buffer(m: usize, n: usize, len: usize) -> Vec<f32> {
    if m < 2 || n < 2 { vec![0.0; len] } else { Vec::with_capacity(len) }
}

/// `dst` (+)= `a b` with gemm: `dst` an `[a.rows, b.cols]` matrix with row
/// and column strides `dst_rs`, `dst_cs` [elements], read and added to
/// when `read_dst`, else overwritten.
///
/// # Safety
/// The views must point into live f32 storage with their extents and
/// strides, `a.cols == b.rows`, and `dst` must have room for the whole
/// matrix under its strides, written by no one else meanwhile.
unsafe fn gemm_into(
    dst: *mut f32,
    dst_rs: isize,
    dst_cs: isize,
    read_dst: bool,
    a: View,
    b: View,
    parallelism: gemm::Parallelism,
) {
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            dst,
            dst_cs,
            dst_rs,
            read_dst,
            a.ptr,
            a.cs,
            a.rs,
            b.ptr,
            b.cs,
            b.rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// `t`'s values if it is a 1-d f32 tensor.
fn vector(t: &FlexTensor) -> Option<Vec<f32>> {
    let (ptr, [n], [s]) = strided::<1>(t)?;
    // SAFETY: element i < n lies inside the storage at i strides from the first.
    Some((0..n as isize).map(|i| unsafe { *ptr.offset(i * s) }).collect())
}

/// The sums of `g`'s columns: in blocks of rows on the rayon pool
/// (`sflam_kernels::column_sums`) when `g` is contiguous, else row after
/// row.
fn column_sums(g: &FlexTensor, v: View) -> Vec<f32> {
    if g.is_contiguous() && v.cols > 0 {
        return sflam_kernels::column_sums(values(g), v.cols);
    }
    let mut sums = vec![0f32; v.cols];
    for i in 0..v.rows as isize {
        for (j, s) in sums.iter_mut().enumerate() {
            // SAFETY: (i, j) lies inside g's extents.
            *s += unsafe { *v.ptr.offset(i * v.rs + j as isize * v.cs) };
        }
    }
    sums
}

impl Dense for Flex {
    fn dense(x: FlexTensor, w: FlexTensor, b: FlexTensor) -> FlexTensor {
        match (View::of(&x), View::of(&w), vector(&b)) {
            (Some(xv), Some(wv), Some(bias)) if xv.cols == wv.rows && bias.len() == wv.cols => {
                product(xv, wv, Some(&bias))
            }
            // Other dtypes, and shapes that do not fit (Burn's ops say how).
            _ => dense_reference::<Flex>(x, w, b),
        }
    }
}

impl DenseGrads for Flex {
    fn dense_grads(
        g: FlexTensor,
        x: Option<FlexTensor>,
        w: Option<FlexTensor>,
        want: [bool; 3],
    ) -> [Option<FlexTensor>; 3] {
        let view = |t: &Option<FlexTensor>| t.as_ref().map(|t| View::of(t).ok_or(()));
        let fits = |gv: View, xv: Option<View>, wv: Option<View>| {
            xv.is_none_or(|xv| xv.rows == gv.rows) && wv.is_none_or(|wv| wv.cols == gv.cols)
        };
        let (gv, xv, wv) = match (View::of(&g), view(&x).transpose(), view(&w).transpose()) {
            (Some(gv), Ok(xv), Ok(wv)) if fits(gv, xv, wv) => (gv, xv, wv),
            _ => return dense_grads_reference::<Flex>(g, x, w, want),
        };
        let gx = want[0].then(|| product(gv, wv.expect("W is kept when x's gradient is wanted").t(), None));
        let gw = want[1].then(|| product(xv.expect("x is kept when W's gradient is wanted").t(), gv, None));
        let gb = want[2].then(|| FlexTensor::from_data(TensorData::new(column_sums(&g, gv), [gv.cols])));
        [gx, gw, gb]
    }
}

impl<B: Dense + DenseGrads, C: CheckpointStrategy> Dense for Autodiff<B, C> {
    fn dense(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        product_node::<B, C, 3>([x, w, b], |[x, w, b]| B::dense(x, w, b), B::dense_grads)
    }
}

/// The node of a product `l r` (plus further inputs, as a bias): it keeps
/// `l` when r's gradient is wanted and `r` when l's is, and its gradients
/// come from a [`ProductGrads`].
#[derive(Debug)]
struct ProductBackward;

/// `(g, kept l, kept r, which inputs want a gradient)` -> their gradients.
type ProductGrads<B, const N: usize> =
    fn(FloatTensor<B>, Option<FloatTensor<B>>, Option<FloatTensor<B>>, [bool; N]) -> [Option<FloatTensor<B>>; N];

impl<B: Backend, const N: usize> Backward<B, N> for ProductBackward {
    type State = (Option<NodeId>, Option<NodeId>, ProductGrads<B, N>);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let (l, r, product_grads) = ops.state;
        let l = l.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
        let r = r.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
        let g = grads.consume::<B>(&ops.node);
        let want = ops.parents.each_ref().map(Option::is_some);
        for (parent, grad) in ops.parents.into_iter().zip(product_grads(g, l, r, want)) {
            if let (Some(parent), Some(grad)) = (parent, grad) {
                grads.register::<B>(parent.id, grad);
            }
        }
    }
}

/// A product op under autodiff: `inputs` are `l`, `r` and any others,
/// `forward` gives the value, `grads` the gradients.
fn product_node<B: Backend, C: CheckpointStrategy, const N: usize>(
    inputs: [FloatTensor<Autodiff<B, C>>; N],
    forward: fn([FloatTensor<B>; N]) -> FloatTensor<B>,
    grads: ProductGrads<B, N>,
) -> FloatTensor<Autodiff<B, C>> {
    let (l_tracked, r_tracked) = (inputs[0].is_tracked(), inputs[1].is_tracked());
    match ProductBackward.prepare::<C>(inputs.each_ref().map(|t| t.node())).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let keep_l = r_tracked.then(|| prep.checkpoint(&inputs[0]));
            let keep_r = l_tracked.then(|| prep.checkpoint(&inputs[1]));
            prep.finish((keep_l, keep_r, grads), forward(inputs.map(|t| t.into_primitive())))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(inputs.map(|t| t.into_primitive()))),
    }
}

/// The exact (erf-based) GELU as a backend op: [`GeluSlope`] gives the
/// value and the slope the backward multiplies by.
#[backend_extension(Flex, Autodiff)]
pub trait Gelu: Backend {
    fn exact_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as ActivationOps<Self>>::gelu(x)
    }
}

/// GELU(x) and its derivative at x.
pub trait GeluSlope: Backend {
    fn gelu_with_slope(x: FloatTensor<Self>) -> (FloatTensor<Self>, FloatTensor<Self>) {
        gelu_with_slope_reference::<Self>(x)
    }
}

/// [`GeluSlope::gelu_with_slope`] from Burn's own GELU and its backward.
pub fn gelu_with_slope_reference<B: Backend>(x: FloatTensor<B>) -> (FloatTensor<B>, FloatTensor<B>) {
    let ones = B::float_ones(x.shape(), &x.device(), x.dtype().into());
    (B::gelu(x.clone()), B::gelu_backward(x, ones))
}

/// The exact GELU of `x` on flex, through [`Gelu`] (autodiff included).
pub fn gelu_op<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as Gelu>::exact_gelu(x.into_dispatch()))
}

impl GeluSlope for Flex {
    fn gelu_with_slope(x: FlexTensor) -> (FlexTensor, FlexTensor) {
        let Some(x) = contiguous_f32(&x) else {
            return gelu_with_slope_reference::<Flex>(x);
        };
        let shape = x.layout().shape().clone();
        let (value, slope) = sflam_kernels::gelu_with_slope(values(&x));
        let tensor = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, shape.clone()));
        (tensor(value), tensor(slope))
    }
}

impl Gelu for Flex {
    fn exact_gelu(x: FlexTensor) -> FlexTensor {
        Self::gelu_with_slope(x).0
    }
}

impl<B: Gelu + GeluSlope + GeluGrad, C: CheckpointStrategy> Gelu for Autodiff<B, C> {
    fn exact_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        keeping::<B, C>(x, B::gelu_with_slope, B::exact_gelu, B::gelu_grad)
    }
}

/// The GELU's gradient `g * slope` from the kept slope.
pub trait GeluGrad: Backend {
    fn gelu_grad(slope: FloatTensor<Self>, g: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_mul(g, slope)
    }
}

impl GeluGrad for Flex {
    /// One multiplication per element, as Burn's, in tasks on the rayon
    /// pool (flex's element-wise ops run on one thread).
    fn gelu_grad(slope: FlexTensor, g: FlexTensor) -> FlexTensor {
        match (contiguous_f32(&slope), contiguous_f32(&g)) {
            (Some(s), Some(g)) if s.layout().shape() == g.layout().shape() => {
                let shape = g.layout().shape().clone();
                FlexTensor::from_data(TensorData::new(sflam_kernels::product(values(&g), values(&s)), shape))
            }
            _ => Self::float_mul(g, slope),
        }
    }
}

/// The node of a one-input op whose backward is `grad(kept, g)`, of a
/// tensor its forward kept.
#[derive(Debug)]
struct KeptBackward;

/// `(kept, g)` -> the input's gradient.
type Grad<B> = fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>;
/// `x` -> `(value, kept)`.
type KeepingForward<B> = fn(FloatTensor<B>) -> (FloatTensor<B>, FloatTensor<B>);

impl<B: Backend> Backward<B, 1> for KeptBackward {
    type State = (FloatTensor<B>, Grad<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let Ops { parents, node, state: (kept, grad) } = ops;
        unary::<B, _>(parents, node, grads, |g| grad(kept, g));
    }
}

/// A one-input op under autodiff: `forward` gives the value and the tensor
/// to keep when a gradient is wanted, `value` the value alone otherwise.
fn keeping<B: Backend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    forward: KeepingForward<B>,
    value: fn(FloatTensor<B>) -> FloatTensor<B>,
    grad: Grad<B>,
) -> FloatTensor<Autodiff<B, C>> {
    match KeptBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let (out, kept) = forward(x.into_primitive());
            prep.finish((kept, grad), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(value(x.into_primitive())),
    }
}

/// The softmax over the last dimension as a backend op: [`SoftmaxGrad`]
/// gives its gradient from its output.
#[backend_extension(Flex, Autodiff)]
pub trait Softmax: Backend {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        softmax_reference::<Self>(x)
    }
}

/// The gradient of [`Softmax::softmax_last`] from its output `y` and the
/// gradient `g` of its output.
pub trait SoftmaxGrad: Backend {
    fn softmax_grad(y: FloatTensor<Self>, g: FloatTensor<Self>) -> FloatTensor<Self> {
        softmax_grad_reference::<Self>(y, g)
    }
}

/// [`Softmax::softmax_last`] from Burn's own ops on any backend.
pub fn softmax_reference<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let last = x.shape().num_dims() - 1;
    let e = B::float_exp(B::float_sub(x.clone(), B::float_max_dim(x, last)));
    B::float_div(e.clone(), B::float_sum_dim(e, last))
}

/// [`SoftmaxGrad::softmax_grad`] from Burn's own ops: `y (g - sum(g y))`.
pub fn softmax_grad_reference<B: Backend>(y: FloatTensor<B>, g: FloatTensor<B>) -> FloatTensor<B> {
    let last = y.shape().num_dims() - 1;
    let dot = B::float_sum_dim(B::float_mul(g.clone(), y.clone()), last);
    B::float_mul(y, B::float_sub(g, dot))
}

/// The softmax of `x` over its last dimension on flex, through [`Softmax`]
/// (autodiff included).
pub fn softmax_op<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as Softmax>::softmax_last(x.into_dispatch()))
}

/// `t` with its values in row-major order (a copy only where `t` is
/// strided), if they are f32.
pub(crate) fn contiguous_f32(t: &FlexTensor) -> Option<FlexTensor> {
    (t.dtype() == DType::F32).then(|| if t.is_contiguous() { t.clone() } else { t.to_contiguous() })
}

/// [`contiguous_f32`] with `t`'s shape and its last dimension's length.
fn rows(t: &FlexTensor) -> Option<(FlexTensor, Shape, usize)> {
    if t.layout().shape().num_dims() == 0 {
        return None;
    }
    let t = contiguous_f32(t)?;
    let shape = t.layout().shape().clone();
    let row = shape[shape.num_dims() - 1];
    Some((t, shape, row))
}

/// The f32 values of a contiguous flex tensor, from its start offset.
pub(crate) fn values(t: &FlexTensor) -> &[f32] {
    let start = t.layout().start_offset();
    &t.storage::<f32>()[start..start + t.layout().shape().num_elements()]
}

impl Softmax for Flex {
    fn softmax_last(x: FlexTensor) -> FlexTensor {
        match rows(&x) {
            Some((x, shape, row)) if row > 0 => {
                FlexTensor::from_data(TensorData::new(sflam_kernels::softmax_rows(values(&x), row), shape))
            }
            _ => softmax_reference::<Flex>(x),
        }
    }
}

impl SoftmaxGrad for Flex {
    fn softmax_grad(y: FlexTensor, g: FlexTensor) -> FlexTensor {
        match (rows(&y), rows(&g)) {
            (Some((y, shape, row)), Some((g, gshape, _))) if row > 0 && shape == gshape => {
                let gx = sflam_kernels::softmax_rows_backward(values(&y), values(&g), row);
                FlexTensor::from_data(TensorData::new(gx, shape))
            }
            _ => softmax_grad_reference::<Flex>(y, g),
        }
    }
}

impl<B: Softmax + SoftmaxGrad, C: CheckpointStrategy> Softmax for Autodiff<B, C> {
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let forward = |x| {
            let y = B::softmax_last(x);
            (y.clone(), y)
        };
        keeping::<B, C>(x, forward, B::softmax_last, B::softmax_grad)
    }
}

/// Layer normalization over the last dimension as a backend op:
/// `(x - mean) / sqrt(var + epsilon) gamma + beta` of each row, with the
/// biased variance. Its parts forward and backward are [`NormParts`].
#[backend_extension(Flex, Autodiff)]
pub trait Norm: Backend {
    fn layer_norm_last(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::layer_norm(x, gamma, Some(beta), epsilon)
    }
}

/// The forward that keeps what the gradients need, and the gradients, of
/// [`Norm::layer_norm_last`].
pub trait NormParts: Backend {
    /// The output, x^ = (x - mean) / sqrt(var + epsilon) (x's shape) and
    /// each row's 1 / sqrt(var + epsilon) (x's shape with a last
    /// dimension of 1).
    fn layer_norm_keeping(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> [FloatTensor<Self>; 3] {
        layer_norm_keeping_reference::<Self>(x, gamma, beta, epsilon)
    }

    /// The gradients of the input, gamma and beta from the kept x^ and
    /// 1 / sqrt(var + epsilon) and the output's gradient `g`.
    fn layer_norm_grads(
        xhat: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        g: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        layer_norm_grads_reference::<Self>(xhat, rstd, gamma, g)
    }
}

/// `t` `[d]` as `[1, .., 1, d]` of `rank` dimensions.
fn broadcast_row<B: Backend>(t: FloatTensor<B>, rank: usize) -> FloatTensor<B> {
    let d = t.shape()[0];
    B::float_reshape(t, Shape::from((0..rank).map(|i| if i + 1 == rank { d } else { 1 }).collect::<Vec<_>>()))
}

/// [`NormParts::layer_norm_keeping`] from Burn's own ops on any backend.
pub fn layer_norm_keeping_reference<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
) -> [FloatTensor<B>; 3] {
    let rank = x.shape().num_dims();
    let last = rank - 1;
    let centered = B::float_sub(x.clone(), B::float_mean_dim(x, last));
    let var = B::float_mean_dim(B::float_mul(centered.clone(), centered.clone()), last);
    let rstd = B::float_recip(B::float_sqrt(B::float_add_scalar(var, epsilon.into())));
    let xhat = B::float_mul(centered, rstd.clone());
    let y = B::float_add(B::float_mul(xhat.clone(), broadcast_row::<B>(gamma, rank)), broadcast_row::<B>(beta, rank));
    [y, xhat, rstd]
}

/// [`NormParts::layer_norm_grads`] from Burn's own ops on any backend:
/// with u = g gamma, the input's (u - mean(u) - x^ mean(u x^)) r, gamma's
/// the column sums of g x^, beta's those of g.
pub fn layer_norm_grads_reference<B: Backend>(
    xhat: FloatTensor<B>,
    rstd: FloatTensor<B>,
    gamma: FloatTensor<B>,
    g: FloatTensor<B>,
) -> [FloatTensor<B>; 3] {
    let shape = g.shape();
    let (rank, d) = (shape.num_dims(), shape[shape.num_dims() - 1]);
    let last = rank - 1;
    let u = B::float_mul(g.clone(), broadcast_row::<B>(gamma, rank));
    let mean_u = B::float_mean_dim(u.clone(), last);
    let mean_uh = B::float_mean_dim(B::float_mul(u.clone(), xhat.clone()), last);
    let gx = B::float_mul(B::float_sub(B::float_sub(u, mean_u), B::float_mul(xhat.clone(), mean_uh)), rstd);
    let columns = |t: FloatTensor<B>| {
        let rows = B::float_reshape(t, Shape::new([shape.num_elements() / d.max(1), d]));
        B::float_reshape(B::float_sum_dim(rows, 0), Shape::new([d]))
    };
    [gx, columns(B::float_mul(g.clone(), xhat)), columns(g)]
}

/// Layer normalization of `x` over its last dimension on flex, through
/// [`Norm`] (autodiff included).
pub fn layer_norm_op<const D: usize>(x: Tensor<D>, gamma: Tensor<1>, beta: Tensor<1>, epsilon: f64) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as Norm>::layer_norm_last(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    ))
}

/// x's rows, gamma's and beta's values when all are f32 and fit.
fn norm_inputs(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
) -> Option<(FlexTensor, Shape, Vec<f32>, Vec<f32>)> {
    let (x, shape, row) = rows(x)?;
    let (gamma, beta) = (vector(gamma)?, vector(beta)?);
    (row > 0 && gamma.len() == row && beta.len() == row).then_some((x, shape, gamma, beta))
}

impl Norm for Flex {
    fn layer_norm_last(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> FlexTensor {
        match norm_inputs(&x, &gamma, &beta) {
            Some((x, shape, gamma, beta)) => {
                let [y, _, _] = sflam_kernels::layer_norm_rows(values(&x), &gamma, &beta, epsilon as f32, false);
                FlexTensor::from_data(TensorData::new(y, shape))
            }
            None => <Flex as ModuleOps<Flex>>::layer_norm(x, gamma, Some(beta), epsilon),
        }
    }
}

impl NormParts for Flex {
    fn layer_norm_keeping(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> [FlexTensor; 3] {
        let Some((x, shape, gamma, beta)) = norm_inputs(&x, &gamma, &beta) else {
            return layer_norm_keeping_reference::<Flex>(x, gamma, beta, epsilon);
        };
        let [y, xhat, rstd] = sflam_kernels::layer_norm_rows(values(&x), &gamma, &beta, epsilon as f32, true);
        let mut row_shape = shape.clone();
        row_shape[shape.num_dims() - 1] = 1;
        let tensor = |v: Vec<f32>, s: &Shape| FlexTensor::from_data(TensorData::new(v, s.clone()));
        [tensor(y, &shape), tensor(xhat, &shape), tensor(rstd, &row_shape)]
    }

    fn layer_norm_grads(xhat: FlexTensor, rstd: FlexTensor, gamma: FlexTensor, g: FlexTensor) -> [FlexTensor; 3] {
        let fits = match (rows(&xhat), rows(&rstd), vector(&gamma), rows(&g)) {
            (Some((h, shape, row)), Some((r, _, 1)), Some(w), Some((g, gshape, _)))
                if row > 0
                    && w.len() == row
                    && shape == gshape
                    && r.layout().shape().num_elements() * row == shape.num_elements() =>
            {
                Some((h, r, w, g, shape))
            }
            _ => None,
        };
        let Some((h, r, w, g, shape)) = fits else {
            return layer_norm_grads_reference::<Flex>(xhat, rstd, gamma, g);
        };
        let [gx, gg, gb] = sflam_kernels::layer_norm_rows_backward(values(&h), values(&r), &w, values(&g));
        let d = w.len();
        [
            FlexTensor::from_data(TensorData::new(gx, shape)),
            FlexTensor::from_data(TensorData::new(gg, [d])),
            FlexTensor::from_data(TensorData::new(gb, [d])),
        ]
    }
}

impl<B: Norm + NormParts, C: CheckpointStrategy> Norm for Autodiff<B, C> {
    fn layer_norm_last(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        /// The op's node: it keeps x^, each row's 1 / sqrt(var + epsilon)
        /// and gamma.
        #[derive(Debug)]
        struct NormBackward;

        impl<B: NormParts> Backward<B, 3> for NormBackward {
            type State = [FloatTensor<B>; 3];

            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
                let [xhat, rstd, gamma] = ops.state;
                let g = grads.consume::<B>(&ops.node);
                let computed = B::layer_norm_grads(xhat, rstd, gamma, g);
                for (parent, grad) in ops.parents.into_iter().zip(computed) {
                    if let Some(parent) = parent {
                        grads.register::<B>(parent.id, grad);
                    }
                }
            }
        }

        match NormBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let gamma = gamma.into_primitive();
                let [y, xhat, rstd] =
                    B::layer_norm_keeping(x.into_primitive(), gamma.clone(), beta.into_primitive(), epsilon);
                prep.finish([xhat, rstd, gamma], y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::layer_norm_last(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                epsilon,
            )),
        }
    }
}

/// The attention's products as a backend op: `a` `[B, H, m, k]` times `b`
/// `[B, H, k, n]`, one product per (batch, head), -> `[B, H, m, n]`. Each
/// product is one `gemm` call on strided views, writing straight into its
/// block of the output, the (batch, head) pairs in tasks on the rayon pool.
/// The output is laid out in the memory order of `b` when it has `b`'s
/// shape (the attention's `P V`: then the heads' outputs lie side by side
/// for each token, and the merge of heads before the projection is a
/// view, not a copy); each gradient in the memory order of its input.
#[backend_extension(Flex, Autodiff)]
pub trait Heads: Backend {
    fn heads_product(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_matmul(a, b)
    }
}

/// The gradients of [`Heads::heads_product`] for the output's gradient
/// `g`: `g bᵀ` (needs `b`) and `aᵀ g` (needs `a`), each where asked.
pub trait HeadsGrads: Backend {
    fn heads_product_grads(
        g: FloatTensor<Self>,
        a: Option<FloatTensor<Self>>,
        b: Option<FloatTensor<Self>>,
    ) -> [Option<FloatTensor<Self>>; 2] {
        heads_product_grads_reference::<Self>(g, a, b)
    }
}

/// [`HeadsGrads::heads_product_grads`] from Burn's own ops.
pub fn heads_product_grads_reference<B: Backend>(
    g: FloatTensor<B>,
    a: Option<FloatTensor<B>>,
    b: Option<FloatTensor<B>>,
) -> [Option<FloatTensor<B>>; 2] {
    let ga = b.map(|b| B::float_matmul(g.clone(), B::float_swap_dims(b, 2, 3)));
    let gb = a.map(|a| B::float_matmul(B::float_swap_dims(a, 2, 3), g));
    [ga, gb]
}

/// `a b` per (batch, head) on flex, through [`Heads`] (autodiff included).
pub fn heads_product_op(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as Heads>::heads_product(a.into_dispatch(), b.into_dispatch()))
}

/// A strided 4-d f32 tensor `[B, H, rows, cols]` inside a flex tensor's
/// storage.
#[derive(Clone, Copy)]
struct Heads4 {
    ptr: *const f32,
    shape: [usize; 4],
    /// [elements]
    strides: [isize; 4],
}

// SAFETY: a `Heads4` only reads, from storage its tensor keeps alive for
// the whole op.
unsafe impl Send for Heads4 {}
unsafe impl Sync for Heads4 {}

impl Heads4 {
    fn of(t: &FlexTensor) -> Option<Heads4> {
        let (ptr, shape, strides) = strided::<4>(t)?;
        Some(Heads4 { ptr, shape, strides })
    }

    /// The matrix of (batch `i`, head `j`).
    fn matrix(&self, i: usize, j: usize) -> View {
        let [s0, s1, rs, cs] = self.strides;
        // SAFETY (of the offset): (i, j) lies inside the extents.
        let ptr = unsafe { self.ptr.offset(i as isize * s0 + j as isize * s1) };
        View { ptr, rows: self.shape[2], cols: self.shape[3], rs, cs }
    }

    /// Each matrix transposed.
    fn t(self) -> Heads4 {
        let [b, h, r, c] = self.shape;
        let [s0, s1, rs, cs] = self.strides;
        Heads4 { shape: [b, h, c, r], strides: [s0, s1, cs, rs], ..self }
    }
}

/// The memory order (outermost dimension first) in which to lay out an
/// output of `shape`: `like`'s (dimensions by falling stride) when `like`
/// has that shape and is dense in that order; else row-major.
fn order_like(shape: [usize; 4], like: &Heads4) -> [usize; 4] {
    let mut order = [0, 1, 2, 3];
    if like.shape != shape {
        return order;
    }
    order.sort_by_key(|&d| std::cmp::Reverse(like.strides[d]));
    let strides = dense_strides(shape, order);
    let dense = (0..4).all(|d| shape[d] == 1 || like.strides[d] == strides[d]);
    if dense { order } else { [0, 1, 2, 3] }
}

/// The strides [elements] of `shape` laid out densely in memory order
/// `order` (outermost dimension first).
fn dense_strides(shape: [usize; 4], order: [usize; 4]) -> [isize; 4] {
    let mut strides = [0isize; 4];
    let mut next = 1isize;
    for &d in order.iter().rev() {
        strides[d] = next;
        next *= shape[d] as isize;
    }
    strides
}

/// A raw output pointer the (batch, head) tasks share; each writes only
/// its own block.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: the tasks write disjoint elements (distinct (batch, head) blocks
// of one dense layout) and the buffer outlives them.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// `a b` per (batch, head) into a new tensor laid out densely in memory
/// order `order` (outermost dimension first). The caller checks that the
/// shapes agree.
fn heads_product(a: Heads4, b: Heads4, order: [usize; 4]) -> FlexTensor {
    let ([nb, nh, m, k], n) = (a.shape, b.shape[3]);
    debug_assert!(b.shape == [nb, nh, k, n]);
    let shape = [nb, nh, m, n];
    let len = nb * nh * m * n;
    let strides = dense_strides(shape, order);
    let mut out = product_buffer(m, n, len);
    let dst = Out(out.as_mut_ptr());
    let one = |p: usize| {
        let (i, j) = (p / nh, p % nh);
        let d = dst;
        // SAFETY: the views lie inside live storage; block (i, j) of the
        // output lies inside `out`'s capacity under `strides`, and no other
        // task writes it.
        unsafe {
            let block = d.0.offset(i as isize * strides[0] + j as isize * strides[1]);
            gemm_into(block, strides[2], strides[3], false, a.matrix(i, j), b.matrix(i, j), gemm::Parallelism::None)
        }
    };
    use rayon::prelude::*;
    (0..nb * nh).into_par_iter().for_each(one);
    // SAFETY: the blocks cover every one of the len elements (a dense
    // layout), each written by gemm above.
    unsafe { out.set_len(len) };
    // The buffer in memory order, then viewed in the logical one: logical
    // dimension d is memory dimension position(d).
    let memory = FlexTensor::from_data(TensorData::new(out, order.map(|d| shape[d])));
    let position: [usize; 4] = std::array::from_fn(|d| order.iter().position(|&o| o == d).expect("a permutation"));
    memory.permute(&position)
}

impl Heads for Flex {
    fn heads_product(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        match (Heads4::of(&a), Heads4::of(&b)) {
            (Some(x), Some(y)) if x.shape[..2] == y.shape[..2] && x.shape[3] == y.shape[2] => {
                let shape = [x.shape[0], x.shape[1], x.shape[2], y.shape[3]];
                heads_product(x, y, order_like(shape, &y))
            }
            _ => Self::float_matmul(a, b),
        }
    }
}

impl HeadsGrads for Flex {
    fn heads_product_grads(g: FlexTensor, a: Option<FlexTensor>, b: Option<FlexTensor>) -> [Option<FlexTensor>; 2] {
        let view = |t: &Option<FlexTensor>| t.as_ref().map(|t| Heads4::of(t).ok_or(()));
        let (gv, av, bv) = match (Heads4::of(&g), view(&a).transpose(), view(&b).transpose()) {
            (Some(gv), Ok(av), Ok(bv))
                if av.is_none_or(|av| av.shape[..3] == gv.shape[..3])
                    && bv.is_none_or(|bv| bv.shape[..2] == gv.shape[..2] && bv.shape[3] == gv.shape[3]) =>
            {
                (gv, av, bv)
            }
            _ => return heads_product_grads_reference::<Flex>(g, a, b),
        };
        // g bᵀ with a's layout; aᵀ g with b's.
        let [nb, nh, m, n] = gv.shape;
        let ga = bv.map(|bv| {
            heads_product(gv, bv.t(), av.map_or([0, 1, 2, 3], |av| order_like([nb, nh, m, bv.shape[2]], &av)))
        });
        let gb = av.map(|av| {
            heads_product(av.t(), gv, bv.map_or([0, 1, 2, 3], |bv| order_like([nb, nh, av.shape[3], n], &bv)))
        });
        [ga, gb]
    }
}

impl<B: Heads + HeadsGrads, C: CheckpointStrategy> Heads for Autodiff<B, C> {
    fn heads_product(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        // a's gradient needs b and b's needs a: what is kept is what is wanted.
        product_node::<B, C, 2>([a, b], |[a, b]| B::heads_product(a, b), |g, a, b, _| B::heads_product_grads(g, a, b))
    }
}

#[cfg(test)]
mod tests {
    //! The Burn-op references (the fallbacks for dtypes and shapes the
    //! kernels are not given) against the flex ops, on flex tensors.
    use super::*;

    fn tensor(shape: &[usize], seed: usize) -> FlexTensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| (((i + seed) * 7919 % 1009) as f32 - 504.0) * 4e-3).collect();
        FlexTensor::from_data(TensorData::new(v, shape.to_vec()))
    }

    fn close(a: FlexTensor, b: FlexTensor, what: &str) {
        assert_eq!(a.layout().shape(), b.layout().shape(), "{what}");
        let (a, b) = (a.into_data().try_to_vec::<f32>().unwrap(), b.into_data().try_to_vec::<f32>().unwrap());
        let worst = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(worst < 2e-5, "{what}: differs by {worst}");
    }

    #[test]
    fn layer_norm_references_match_the_flex_op() {
        let (x, gamma, beta, g) = (tensor(&[3, 5, 21], 0), tensor(&[21], 1), tensor(&[21], 2), tensor(&[3, 5, 21], 3));
        let ours = <Flex as NormParts>::layer_norm_keeping(x.clone(), gamma.clone(), beta.clone(), 1e-6);
        let reference = layer_norm_keeping_reference::<Flex>(x, gamma.clone(), beta, 1e-6);
        for (what, (a, b)) in ["y", "x^", "1 / sqrt(var + eps)"].iter().zip(ours.clone().into_iter().zip(reference)) {
            close(a, b, what);
        }
        let [_, xhat, rstd] = ours;
        let grads = <Flex as NormParts>::layer_norm_grads(xhat.clone(), rstd.clone(), gamma.clone(), g.clone());
        let reference = layer_norm_grads_reference::<Flex>(xhat, rstd, gamma, g);
        for (what, (a, b)) in ["input", "gamma", "beta"].iter().zip(grads.into_iter().zip(reference)) {
            close(a, b, what);
        }
    }

    #[test]
    fn dense_gelu_and_softmax_references_match_the_flex_ops() {
        let (x, w, b, g) = (tensor(&[6, 5], 0), tensor(&[5, 4], 1), tensor(&[4], 2), tensor(&[6, 4], 3));
        close(
            <Flex as Dense>::dense(x.clone(), w.clone(), b.clone()),
            dense_reference::<Flex>(x.clone(), w.clone(), b),
            "dense",
        );
        let want = [true; 3];
        let ours = <Flex as DenseGrads>::dense_grads(g.clone(), Some(x.clone()), Some(w.clone()), want);
        let reference = dense_grads_reference::<Flex>(g, Some(x.clone()), Some(w), want);
        for (what, (a, b)) in ["dense's x", "dense's W", "dense's b"].iter().zip(ours.into_iter().zip(reference)) {
            close(a.unwrap(), b.unwrap(), what);
        }
        let (value, slope) = <Flex as GeluSlope>::gelu_with_slope(x.clone());
        let (want_value, want_slope) = gelu_with_slope_reference::<Flex>(x.clone());
        close(value, want_value, "gelu");
        close(slope, want_slope, "gelu's slope");
        let y = <Flex as Softmax>::softmax_last(x.clone());
        close(y.clone(), softmax_reference::<Flex>(x.clone()), "softmax");
        let g = tensor(&[6, 5], 4);
        close(
            <Flex as SoftmaxGrad>::softmax_grad(y.clone(), g.clone()),
            softmax_grad_reference::<Flex>(y, g),
            "softmax's gradient",
        );
    }

    #[test]
    fn heads_product_reference_gradients_match_the_flex_op() {
        let (a, b, g) = (tensor(&[2, 3, 7, 5], 0), tensor(&[2, 3, 5, 6], 1), tensor(&[2, 3, 7, 6], 2));
        let ours = <Flex as HeadsGrads>::heads_product_grads(g.clone(), Some(a.clone()), Some(b.clone()));
        let reference = heads_product_grads_reference::<Flex>(g, Some(a), Some(b));
        for (what, (x, y)) in ["a's", "b's"].iter().zip(ours.into_iter().zip(reference)) {
            close(x.unwrap(), y.unwrap(), what);
        }
    }
}
