//! Two ops of the training step as Burn backend extension ops with their
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
//! Together: README, Performance ("training step, this version").

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ActivationOps;
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
        let layout = t.layout();
        if t.dtype() != DType::F32 || layout.shape().num_dims() != 2 {
            return None;
        }
        let (shape, strides) = (layout.shape(), layout.strides());
        // SAFETY: the layout's start offset lies inside the storage.
        let ptr = unsafe { t.storage::<f32>().as_ptr().add(layout.start_offset()) };
        Some(View { ptr, rows: shape[0], cols: shape[1], rs: strides[0], cs: strides[1] })
    }

    fn t(self) -> View {
        View { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }
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
        // gemm's matrix kernels never read a destination they are told not
        // to; its vector paths (one row or one column) are not relied on.
        None if m < 2 || n < 2 => vec![0.0; len],
        None => Vec::with_capacity(len),
    };
    // SAFETY: the views point into live f32 storage with the strides and
    // extents of their layouts; `out` has room for m x n row-major values.
    // Without `start`, gemm is told not to read the destination and writes
    // every one of its m x n elements (zeros when k = 0), so the length is
    // set once they are written.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            start.is_some(),
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
            parallelism(m, n, k),
        );
        out.set_len(len);
    }
    FlexTensor::from_data(TensorData::new(out, [m, n]))
}

/// `b`'s values if it is a 1-d f32 tensor.
fn vector(t: &FlexTensor) -> Option<Vec<f32>> {
    let layout = t.layout();
    if t.dtype() != DType::F32 || layout.shape().num_dims() != 1 {
        return None;
    }
    let (s, start) = (layout.strides()[0], layout.start_offset() as isize);
    let data = t.storage::<f32>();
    Some((0..layout.shape()[0] as isize).map(|i| data[(start + i * s) as usize]).collect())
}

/// The sums of `g`'s columns, row after row.
fn column_sums(g: &FlexTensor, v: View) -> Vec<f32> {
    let mut sums = vec![0f32; v.cols];
    if g.is_contiguous() {
        for row in values(g).chunks_exact(v.cols) {
            sums.iter_mut().zip(row).for_each(|(s, x)| *s += x);
        }
    } else {
        for i in 0..v.rows as isize {
            for (j, s) in sums.iter_mut().enumerate() {
                // SAFETY: (i, j) lies inside g's extents.
                *s += unsafe { *v.ptr.offset(i * v.rs + j as isize * v.cs) };
            }
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
        /// The op's node: it keeps `x` when W's gradient is wanted and W
        /// when x's is.
        #[derive(Debug)]
        struct DenseBackward;

        impl<B: DenseGrads> Backward<B, 3> for DenseBackward {
            type State = (Option<NodeId>, Option<NodeId>);

            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
                let (x, w) = ops.state;
                let x = x.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
                let w = w.map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
                let g = grads.consume::<B>(&ops.node);
                let want = ops.parents.each_ref().map(Option::is_some);
                let computed = B::dense_grads(g, x, w, want);
                for (parent, grad) in ops.parents.into_iter().zip(computed) {
                    if let (Some(parent), Some(grad)) = (parent, grad) {
                        grads.register::<B>(parent.id, grad);
                    }
                }
            }
        }

        let (x_tracked, w_tracked) = (x.is_tracked(), w.is_tracked());
        match DenseBackward.prepare::<C>([x.node(), w.node(), b.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let keep_x = w_tracked.then(|| prep.checkpoint(&x));
                let keep_w = x_tracked.then(|| prep.checkpoint(&w));
                prep.finish((keep_x, keep_w), B::dense(x.into_primitive(), w.into_primitive(), b.into_primitive()))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::dense(x.into_primitive(), w.into_primitive(), b.into_primitive()))
            }
        }
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

impl<B: Gelu + GeluSlope, C: CheckpointStrategy> Gelu for Autodiff<B, C> {
    fn exact_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        keeping::<B, C>(x, B::gelu_with_slope, B::exact_gelu, |slope, g| B::float_mul(g, slope))
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
fn contiguous_f32(t: &FlexTensor) -> Option<FlexTensor> {
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
fn values(t: &FlexTensor) -> &[f32] {
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
