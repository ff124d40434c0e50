//! Element-wise numeric kernels of the training step, in plain loops the
//! compiler vectorizes. They live in their own crate because the dev
//! profile (the one `cargo test` builds) compiles workspace crates
//! unoptimized; this one is built at `opt-level = 3` in every profile
//! (root `Cargo.toml`), like the dependencies.
//!
//! Why: Burn's CPU backend evaluates the exact GELU with a scalar libm
//! `erff` per element, forward and backward, which took about a fifth of
//! a `vit-p7-28` co-simulation's time, and a softmax's exponentials with a
//! scalar `expf` (a tenth of a `vit-tiny-28` one's); under autodiff its
//! layer norm is about ten element-wise passes each way.
//!
//! Each call splits its values into tasks of whole rows on the current
//! rayon pool (flex's element-wise ops run on one thread, which leaves a
//! many-core machine idle outside the matrix products). A value's
//! computation does not depend on which task holds it, and sums over
//! rows add fixed blocks in a fixed order, so results are the same for
//! any thread count (tested).
//!
//! No `mul_add`: without FMA in the target's baseline features it is a
//! libm call per element, not an instruction.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Values [1] a kernel call hands to one rayon task: large enough that a
/// task's start (a few microseconds) is a few percent of its loop, small
/// enough that a `vit-small-32` activation (1.6 M values) gives every core
/// of a 16-core machine several tasks. Below it a call runs on its own
/// thread. Every value is computed by the same loop whichever task holds
/// it, so results do not depend on the thread count (tested).
pub const TASK_VALUES: usize = 32 * 1024;

/// 1 / sqrt(2) [1].
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi) [1].
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// The vector unit a kernel is compiled for, chosen at run time: the
/// same loop built for AVX-512 (16 lanes), AVX2 (8) or the x86-64
/// baseline's SSE2 (4). Every level computes each element by the same
/// sequence of IEEE operations (no FMA: Rust never contracts `a * b + c`
/// into one), so all give identical bits (tested); only the lane count
/// differs. The baseline alone left the GELU at a tenth of a
/// `vit-small-32` step.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Level {
    // Narrowest first: each level's CPUs have every narrower one.
    Base,
    Avx2,
    Avx512,
}

impl Level {
    /// The widest level this CPU has.
    pub fn detect() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Level::Avx2;
            }
        }
        Level::Base
    }

    /// `self` if this CPU has it, else the baseline.
    fn available(self) -> Level {
        if self <= Level::detect() { self } else { Level::Base }
    }
}

/// `K` vectors of `n` values, each element written once by `fill`, never
/// zero-filled first.
///
/// # Safety
/// `fill` must write every element of each of the `K` slices it gets.
unsafe fn written<const K: usize>(n: usize, fill: impl FnOnce([&mut [MaybeUninit<f32>]; K])) -> [Vec<f32>; K] {
    let mut out: [Vec<f32>; K] = std::array::from_fn(|_| Vec::with_capacity(n));
    fill(out.each_mut().map(|v| &mut v.spare_capacity_mut()[..n]));
    for v in &mut out {
        // SAFETY: the caller's `fill` wrote all n elements.
        unsafe { v.set_len(n) };
    }
    out
}

/// Calls the `#[inline(always)]` loop `$body` compiled for `$level`'s
/// vector unit: each arm is a copy of the loop built with that unit's
/// target features.
macro_rules! dispatch {
    ($level:expr, $body:ident($($p:ident: $t:ty),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f")]
            fn avx512($($p: $t),*) {
                $body($($p),*)
            }
            #[target_feature(enable = "avx2")]
            fn avx2($($p: $t),*) {
                $body($($p),*)
            }
            match $level.available() {
                // SAFETY: `available` found the features each was compiled for.
                Level::Avx512 => return unsafe { avx512($($p),*) },
                Level::Avx2 => return unsafe { avx2($($p),*) },
                Level::Base => {}
            }
        }
        $body($($p),*)
    }};
}

/// The error function erf(x) [1] for f32: a rational minimax fit on
/// [-4, 4] (the one Eigen and XLA use for f32 `erf`), outside of which
/// erf is +-1 to f32 precision. Absolute error below 1e-6 everywhere
/// (tested against an independent f64 series).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10 * x2 + 2.770_681_4e-8;
    p = x2 * p - 2.101_024e-6;
    p = x2 * p - 5.692_506_4e-5;
    p = x2 * p - 7.349_906e-4;
    p = x2 * p - 2.954_6e-3;
    p = x2 * p - 1.609_603_3e-2;
    let mut q = -1.456_607_2e-5 * x2 - 2.133_740_6e-4;
    q = x2 * q - 1.682_827e-3;
    q = x2 * q - 7.373_329e-3;
    q = x2 * q - 1.426_473_9e-2;
    x * p / q
}

/// exp(x) [1] for f32 (Cephes' `expf`: x = n ln 2 + r, a degree-6
/// polynomial in r, 2^n put into the exponent bits). Relative error below
/// 1e-6 on [-87, 88]; below -87 it returns 0, as f32 underflows there.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, so that n * LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let under = x < -87.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    // n as an integer from t's low mantissa bits (t = 1.5 * 2^23 + n
    // exactly), not `n as i32`: Rust's saturating float-to-int cast does
    // not vectorize and left the GELU's loop one lane at a time there.
    let n_int = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = r * 1.987_569_2e-4 + 1.398_2e-3;
    p = r * p + 8.333_452e-3;
    p = r * p + 4.166_579_6e-2;
    p = r * p + 1.666_666_5e-1;
    p = r * p + 0.5;
    let p = (r * r) * p + r + 1.0;
    let scale = f32::from_bits((n_int.wrapping_add(127) as u32) << 23);
    if under { 0.0 } else { p * scale }
}

/// The exact (erf-based) GELU x Phi(x) of every `x[i]` and its
/// derivative Phi(x) + x phi(x) (Phi, phi: the standard normal CDF and
/// density): returns `(value, slope)` [1]. The value is evaluated on the
/// line tangent at `x[i]`, `slope x + (x Phi(x) - slope x)`, in that
/// order of roundings. Both are written once, never zero-filled first.
pub fn gelu_with_slope(x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    gelu_with_slope_at(Level::detect(), x)
}

/// [`gelu_with_slope`] compiled for `level`'s vector unit (a level this
/// CPU lacks runs the baseline).
pub fn gelu_with_slope_at(level: Level, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    fn run(level: Level, x: &[f32], value: &mut [MaybeUninit<f32>], slope: &mut [MaybeUninit<f32>]) {
        dispatch!(level, gelu_loop(x: &[f32], value: &mut [MaybeUninit<f32>], slope: &mut [MaybeUninit<f32>]))
    }
    // SAFETY: `gelu_loop` writes every element of both (it asserts they
    // are as long as `x`), and the chunks of the three cover them alike.
    let [value, slope] = unsafe {
        written(x.len(), |[v, s]| {
            let c = TASK_VALUES;
            x.par_chunks(c)
                .zip(v.par_chunks_mut(c))
                .zip(s.par_chunks_mut(c))
                .for_each(|((x, v), s)| run(level, x, v, s))
        })
    };
    (value, slope)
}

#[inline(always)]
fn gelu_loop(x: &[f32], value: &mut [MaybeUninit<f32>], slope: &mut [MaybeUninit<f32>]) {
    assert!(x.len() == value.len() && x.len() == slope.len());
    for ((&x, v), s) in x.iter().zip(value.iter_mut()).zip(slope.iter_mut()) {
        let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
        let pdf = FRAC_1_SQRT_2PI * exp(-0.5 * x * x);
        let slope = x * pdf + cdf;
        s.write(slope);
        v.write(x * slope + (x * cdf - slope * x));
    }
}

/// The softmax of every row of `row` values in `x`: with the row's maximum
/// m, e = exp(x[i] - m) (so e <= 1) and y[i] = e / the row's sum of e, a
/// [`lane_sum`] [1].
///
/// # Panics
/// If `x`'s length is not a multiple of `row` (a caller's bug).
pub fn softmax_rows(x: &[f32], row: usize) -> Vec<f32> {
    softmax_rows_at(Level::detect(), x, row)
}

/// [`softmax_rows`] compiled for `level`'s vector unit (a level this CPU
/// lacks runs the baseline).
pub fn softmax_rows_at(level: Level, x: &[f32], row: usize) -> Vec<f32> {
    fn run(level: Level, x: &[f32], row: usize, y: &mut [MaybeUninit<f32>]) {
        dispatch!(level, softmax_rows_loop(x: &[f32], row: usize, y: &mut [MaybeUninit<f32>]))
    }
    whole_rows(x.len(), row, "softmax_rows");
    let c = task_rows(row);
    // SAFETY: `softmax_rows_loop` writes every element (it asserts `y` is
    // as long as `x`), and the chunks of both cover them alike.
    let [y] = unsafe {
        written(x.len(), |[y]| x.par_chunks(c).zip(y.par_chunks_mut(c)).for_each(|(x, y)| run(level, x, row, y)))
    };
    y
}

#[inline(always)]
fn softmax_rows_loop(x: &[f32], row: usize, y: &mut [MaybeUninit<f32>]) {
    assert!(x.len() == y.len());
    for (x, y) in x.chunks_exact(row).zip(y.chunks_exact_mut(row)) {
        let max = lane_max(x);
        for (&x, y) in x.iter().zip(y.iter_mut()) {
            y.write(exp(x - max));
        }
        // SAFETY: every element of the row was written just above.
        let y = unsafe { &mut *(y as *mut [MaybeUninit<f32>] as *mut [f32]) };
        let sum = lane_sum([y], |[e]| e);
        y.iter_mut().for_each(|e| *e /= sum);
    }
}

/// The gradient of [`softmax_rows`] from its output `y` and the gradient
/// `g` of its output: y[i] (g[i] - the row's sum of g y), a [`lane_sum`]
/// [1].
///
/// # Panics
/// If `y` and `g` differ in length or are not whole rows of `row` (a
/// caller's bug).
pub fn softmax_rows_backward(y: &[f32], g: &[f32], row: usize) -> Vec<f32> {
    softmax_rows_backward_at(Level::detect(), y, g, row)
}

/// [`softmax_rows_backward`] compiled for `level`'s vector unit.
pub fn softmax_rows_backward_at(level: Level, y: &[f32], g: &[f32], row: usize) -> Vec<f32> {
    fn run(level: Level, y: &[f32], g: &[f32], row: usize, gx: &mut [MaybeUninit<f32>]) {
        dispatch!(level, softmax_backward_loop(y: &[f32], g: &[f32], row: usize, gx: &mut [MaybeUninit<f32>]))
    }
    assert_eq!(y.len(), g.len(), "softmax_rows_backward: output and gradient differ in length");
    whole_rows(y.len(), row, "softmax_rows_backward");
    let c = task_rows(row);
    // SAFETY: `softmax_backward_loop` writes every element (it asserts the
    // lengths match), and the chunks of all three cover them alike.
    let [gx] = unsafe {
        written(y.len(), |[gx]| {
            y.par_chunks(c)
                .zip(g.par_chunks(c))
                .zip(gx.par_chunks_mut(c))
                .for_each(|((y, g), gx)| run(level, y, g, row, gx))
        })
    };
    gx
}

#[inline(always)]
fn softmax_backward_loop(y: &[f32], g: &[f32], row: usize, gx: &mut [MaybeUninit<f32>]) {
    assert!(y.len() == g.len() && y.len() == gx.len());
    for ((y, g), gx) in y.chunks_exact(row).zip(g.chunks_exact(row)).zip(gx.chunks_exact_mut(row)) {
        let dot = lane_sum([y, g], |[y, g]| y * g);
        for ((&y, &g), gx) in y.iter().zip(g).zip(gx.iter_mut()) {
            gx.write(y * (g - dot));
        }
    }
}

/// The sum of `f` over the aligned elements of `cols` (all as long as the
/// first), in a fixed order that does not depend on the vector unit:
/// element i goes to partial sum i mod 8, and the eight partial sums are
/// added in one fixed tree [1]. Eight independent sums let the loop
/// vectorize (a single running sum is one add after another) and give the
/// same bits at every [`Level`].
#[inline(always)]
fn lane_sum<const K: usize>(cols: [&[f32]; K], f: impl Fn([f32; K]) -> f32) -> f32 {
    lane_fold(cols, 0.0, |a, b| a + b, f)
}

/// The maximum of `x` [1] (-inf when empty), in eight lanes as
/// [`lane_sum`]; a maximum does not depend on their order.
#[inline(always)]
fn lane_max(x: &[f32]) -> f32 {
    lane_fold([x], f32::NEG_INFINITY, f32::max, |[v]| v)
}

/// `op` over `f` of the aligned elements of `cols`, from `init`: element
/// i folds into lane i mod 8, and the lanes combine in one fixed tree.
#[inline(always)]
fn lane_fold<const K: usize>(
    cols: [&[f32]; K],
    init: f32,
    op: impl Fn(f32, f32) -> f32,
    f: impl Fn([f32; K]) -> f32,
) -> f32 {
    const L: usize = 8;
    let n = cols[0].len();
    assert!(cols.iter().all(|c| c.len() == n));
    let mut acc = [init; L];
    let whole = n / L * L;
    for i in (0..whole).step_by(L) {
        // Fixed-size blocks: no index checks inside, so the eight lanes
        // become one vector operation.
        let blocks: [&[f32; L]; K] = cols.map(|c| c[i..i + L].try_into().expect("a block of L"));
        for (j, a) in acc.iter_mut().enumerate() {
            *a = op(*a, f(blocks.map(|b| b[j])));
        }
    }
    for (j, a) in acc.iter_mut().enumerate().take(n - whole) {
        *a = op(*a, f(cols.map(|c| c[whole + j])));
    }
    op(op(op(acc[0], acc[4]), op(acc[2], acc[6])), op(op(acc[1], acc[5]), op(acc[3], acc[7])))
}

/// A layer norm's scale and shift [1] (one per column) and the epsilon
/// added to each row's variance [1].
#[derive(Clone, Copy)]
struct Affine<'a> {
    gamma: &'a [f32],
    beta: &'a [f32],
    eps: f32,
}

/// Layer normalization of every row of `gamma.len()` values in `x`:
/// with the row's mean m and biased variance v, x^ = (x - m) r where
/// r = 1 / sqrt(v + eps), and y = x^ gamma + beta [1]. Sums are
/// [`lane_sum`]s. Returns y, and with `keep` also x^ and each row's r,
/// which [`layer_norm_rows_backward`] takes (empty vectors otherwise).
///
/// # Panics
/// If `x` is not whole rows, or `beta` is not as long as `gamma` (a
/// caller's bug).
pub fn layer_norm_rows(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, keep: bool) -> [Vec<f32>; 3] {
    layer_norm_rows_at(Level::detect(), x, gamma, beta, eps, keep)
}

/// [`layer_norm_rows`] compiled for `level`'s vector unit.
pub fn layer_norm_rows_at(level: Level, x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, keep: bool) -> [Vec<f32>; 3] {
    type Out<'a> = &'a mut [MaybeUninit<f32>];
    fn run(level: Level, x: &[f32], a: Affine, y: Out, xhat: Out, rstd: Out) {
        dispatch!(
            level,
            layer_norm_loop(x: &[f32], a: Affine, y: Out, xhat: Out, rstd: Out)
        )
    }
    let row = gamma.len();
    whole_rows(x.len(), row, "layer_norm_rows");
    assert_eq!(beta.len(), row, "layer_norm_rows: beta and gamma differ in length");
    let (c, n, a) = (task_rows(row), x.len(), Affine { gamma, beta, eps });
    if !keep {
        // SAFETY: `layer_norm_loop` writes every element of `y` (it
        // asserts `y` is as long as `x`), and the chunks cover both alike.
        let [y] = unsafe {
            written(n, |[y]| {
                x.par_chunks(c).zip(y.par_chunks_mut(c)).for_each(|(x, y)| run(level, x, a, y, &mut [], &mut []))
            })
        };
        return [y, vec![], vec![]];
    }
    // SAFETY: `layer_norm_loop` writes every element of `y` and `xhat` (as
    // long as `x`) and one `rstd` per row, and the chunks of all four
    // cover them alike (c / row rows to a chunk).
    let mut rstd = vec![];
    let [y, xhat] = unsafe {
        written(n, |[y, xhat]| {
            [rstd] = written(n / row, |[rstd]| {
                x.par_chunks(c)
                    .zip(y.par_chunks_mut(c))
                    .zip(xhat.par_chunks_mut(c))
                    .zip(rstd.par_chunks_mut(c / row))
                    .for_each(|(((x, y), h), r)| run(level, x, a, y, h, r))
            })
        })
    };
    [y, xhat, rstd]
}

#[inline(always)]
fn layer_norm_loop(
    x: &[f32],
    Affine { gamma, beta, eps }: Affine,
    y: &mut [MaybeUninit<f32>],
    xhat: &mut [MaybeUninit<f32>],
    rstd: &mut [MaybeUninit<f32>],
) {
    let row = gamma.len();
    let keep = !rstd.is_empty();
    assert!(x.len() == y.len() && beta.len() == row);
    assert!(!keep || (xhat.len() == x.len() && rstd.len() * row == x.len()));
    let d = row as f32;
    for (r, (x, y)) in x.chunks_exact(row).zip(y.chunks_exact_mut(row)).enumerate() {
        let mean = lane_sum([x], |[v]| v) / d;
        let var = lane_sum([x], |[v]| (v - mean) * (v - mean)) / d;
        let rs = 1.0 / (var + eps).sqrt();
        let terms = x.iter().zip(gamma).zip(beta).zip(y.iter_mut());
        if keep {
            rstd[r].write(rs);
            for ((((&v, &w), &b), y), h) in terms.zip(&mut xhat[r * row..(r + 1) * row]) {
                let n = (v - mean) * rs;
                h.write(n);
                y.write(n * w + b);
            }
        } else {
            for (((&v, &w), &b), y) in terms {
                y.write((v - mean) * rs * w + b);
            }
        }
    }
}

/// The gradients of [`layer_norm_rows`] from its kept x^ and r and the
/// gradient `g` of its output: with u = g gamma on each row, the input's
/// (u - mean(u) - x^ mean(u x^)) r, and gamma's and beta's the column sums
/// of g x^ and of g [1]. Columns are summed over fixed blocks of rows (as
/// many as a task holds), each in row order, and the blocks' sums are
/// added in block order: the same bits for any thread count. Returns the
/// three gradients.
///
/// # Panics
/// If the lengths do not agree (a caller's bug).
pub fn layer_norm_rows_backward(xhat: &[f32], rstd: &[f32], gamma: &[f32], g: &[f32]) -> [Vec<f32>; 3] {
    layer_norm_rows_backward_at(Level::detect(), xhat, rstd, gamma, g)
}

/// [`layer_norm_rows_backward`] compiled for `level`'s vector unit.
pub fn layer_norm_rows_backward_at(
    level: Level,
    xhat: &[f32],
    rstd: &[f32],
    gamma: &[f32],
    g: &[f32],
) -> [Vec<f32>; 3] {
    type Out<'a> = &'a mut [MaybeUninit<f32>];
    fn run(level: Level, xhat: &[f32], rstd: &[f32], gamma: &[f32], g: &[f32], gx: Out, sums: &mut [Vec<f32>; 2]) {
        dispatch!(
            level,
            layer_norm_backward_loop(
                xhat: &[f32],
                rstd: &[f32],
                gamma: &[f32],
                g: &[f32],
                gx: Out,
                sums: &mut [Vec<f32>; 2]
            )
        )
    }
    let row = gamma.len();
    whole_rows(xhat.len(), row, "layer_norm_rows_backward");
    assert!(g.len() == xhat.len() && rstd.len() * row == xhat.len(), "layer_norm_rows_backward: lengths differ");
    let c = task_rows(row);
    let mut blocks: Vec<[Vec<f32>; 2]> = vec![];
    // SAFETY: `layer_norm_backward_loop` writes every element of `gx` (it
    // asserts `gx` is as long as `g`), and the chunks cover them alike.
    let [gx] = unsafe {
        written(g.len(), |[gx]| {
            blocks = xhat
                .par_chunks(c)
                .zip(rstd.par_chunks(c / row))
                .zip(g.par_chunks(c))
                .zip(gx.par_chunks_mut(c))
                .map(|(((h, r), g), gx)| {
                    let mut sums = [vec![0f32; row], vec![0f32; row]];
                    run(level, h, r, gamma, g, gx, &mut sums);
                    sums
                })
                .collect()
        })
    };
    let gg = in_block_order(blocks.iter().map(|[gg, _]| gg), row);
    let gb = in_block_order(blocks.iter().map(|[_, gb]| gb), row);
    [gx, gg, gb]
}

/// The sum of equal-length vectors, added in the order given [1].
fn in_block_order<'a>(blocks: impl Iterator<Item = &'a Vec<f32>>, len: usize) -> Vec<f32> {
    let mut sum = vec![0f32; len];
    for block in blocks {
        sum.iter_mut().zip(block).for_each(|(s, v)| *s += v);
    }
    sum
}

/// The sums of the columns of `x`, rows of `cols` values [1]: each block
/// of rows a task holds summed in row order, the blocks' sums added in
/// block order, as [`layer_norm_rows_backward`]'s: the same bits for any
/// thread count.
///
/// # Panics
/// If `x` is not whole rows (a caller's bug).
pub fn column_sums(x: &[f32], cols: usize) -> Vec<f32> {
    whole_rows(x.len(), cols, "column_sums");
    let blocks: Vec<Vec<f32>> = x
        .par_chunks(task_rows(cols))
        .map(|block| {
            let mut sums = vec![0f32; cols];
            for row in block.chunks_exact(cols) {
                sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
            sums
        })
        .collect();
    in_block_order(blocks.iter(), cols)
}

/// The products a[i] b[i] [1], in tasks on the current rayon pool.
///
/// # Panics
/// If `a` and `b` differ in length (a caller's bug).
pub fn product(a: &[f32], b: &[f32]) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "product: lengths differ");
    let c = TASK_VALUES;
    // SAFETY: each task writes every element of its chunk, and the chunks
    // of the three cover them alike.
    let [out] = unsafe {
        written(a.len(), |[out]| {
            a.par_chunks(c).zip(b.par_chunks(c)).zip(out.par_chunks_mut(c)).for_each(|((a, b), out)| {
                out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (a, b))| {
                    o.write(a * b);
                })
            })
        })
    };
    out
}

/// One Adam step's scalars, formed from the configuration and the step
/// count t as Burn's `Adam` (burn-optim 0.22) forms them, so that
/// [`adam`] gives its bits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamScalars {
    /// The first moment's decay beta_1 [1].
    pub beta_1: f32,
    /// The second moment's decay beta_2 [1].
    pub beta_2: f32,
    /// sqrt(1 - beta_2^t) / (1 - beta_1^t): both bias corrections [1].
    pub correction: f32,
    /// epsilon sqrt(1 - beta_2^t): the denominator's floor [1].
    pub floor: f32,
    /// The learning rate [1].
    pub lr: f32,
}

/// One Adam step of the weights `w` with gradient `g` and the moments
/// `(m, v)` of the steps before (None at the first): returns the new
/// weights and moments `[w', m', v']` [1] with, per element,
/// m' = m beta_1 + g (1 - beta_1) (first step: g (1 - beta_1)),
/// v' = v beta_2 + g^2 (1 - beta_2) (first step: g^2 (1 - beta_2)),
/// w' = w - (m' correction) / (sqrt(v') + floor) lr,
/// each operation rounded in Burn's order: its bits, in one pass over the
/// values instead of thirteen, in tasks on the current rayon pool.
///
/// # Panics
/// If the slices differ in length (a caller's bug).
pub fn adam(w: &[f32], g: &[f32], moments: Option<(&[f32], &[f32])>, s: AdamScalars) -> [Vec<f32>; 3] {
    adam_at(Level::detect(), w, g, moments, s)
}

/// [`adam`] compiled for `level`'s vector unit (a level this CPU lacks
/// runs the baseline).
pub fn adam_at(level: Level, w: &[f32], g: &[f32], moments: Option<(&[f32], &[f32])>, s: AdamScalars) -> [Vec<f32>; 3] {
    type Out<'a> = [&'a mut [MaybeUninit<f32>]; 3];
    fn first(level: Level, w: &[f32], g: &[f32], s: AdamScalars, out: Out) {
        dispatch!(level, adam_first_loop(w: &[f32], g: &[f32], s: AdamScalars, out: Out))
    }
    fn next(level: Level, w: &[f32], g: &[f32], m: &[f32], v: &[f32], s: AdamScalars, out: Out) {
        dispatch!(level, adam_loop(w: &[f32], g: &[f32], m: &[f32], v: &[f32], s: AdamScalars, out: Out))
    }
    assert_eq!(w.len(), g.len(), "adam: weights and gradient differ in length");
    let c = TASK_VALUES;
    // SAFETY: each loop writes every element of its three chunks (they
    // assert equal lengths), and the chunks of all cover them alike.
    unsafe {
        written(w.len(), |[a, b, d]| {
            let outs = a.par_chunks_mut(c).zip(b.par_chunks_mut(c)).zip(d.par_chunks_mut(c));
            let inputs = w.par_chunks(c).zip(g.par_chunks(c));
            match moments {
                None => inputs.zip(outs).for_each(|((w, g), ((a, b), d))| first(level, w, g, s, [a, b, d])),
                Some((m, v)) => {
                    assert!(m.len() == w.len() && v.len() == w.len(), "adam: moments differ in length");
                    inputs
                        .zip(m.par_chunks(c).zip(v.par_chunks(c)))
                        .zip(outs)
                        .for_each(|(((w, g), (m, v)), ((a, b), d))| next(level, w, g, m, v, s, [a, b, d]))
                }
            }
        })
    }
}

#[inline(always)]
fn adam_first_loop(w: &[f32], g: &[f32], s: AdamScalars, [wo, mo, vo]: [&mut [MaybeUninit<f32>]; 3]) {
    assert!(g.len() == w.len() && wo.len() == w.len() && mo.len() == w.len() && vo.len() == w.len());
    let (keep_1, keep_2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
    for ((((&w, &g), wo), mo), vo) in w.iter().zip(g).zip(wo.iter_mut()).zip(mo.iter_mut()).zip(vo.iter_mut()) {
        let m = g * keep_1;
        let v = (g * g) * keep_2;
        mo.write(m);
        vo.write(v);
        wo.write(w - (m * s.correction) / (v.sqrt() + s.floor) * s.lr);
    }
}

#[inline(always)]
fn adam_loop(w: &[f32], g: &[f32], m: &[f32], v: &[f32], s: AdamScalars, [wo, mo, vo]: [&mut [MaybeUninit<f32>]; 3]) {
    let n = w.len();
    assert!(g.len() == n && m.len() == n && v.len() == n && wo.len() == n && mo.len() == n && vo.len() == n);
    let (keep_1, keep_2) = (1.0 - s.beta_1, 1.0 - s.beta_2);
    let outs = wo.iter_mut().zip(mo.iter_mut()).zip(vo.iter_mut());
    for (((&w, &g), (&m, &v)), ((wo, mo), vo)) in w.iter().zip(g).zip(m.iter().zip(v)).zip(outs) {
        let m = m * s.beta_1 + g * keep_1;
        let v = v * s.beta_2 + (g * g) * keep_2;
        mo.write(m);
        vo.write(v);
        wo.write(w - (m * s.correction) / (v.sqrt() + s.floor) * s.lr);
    }
}

/// One SGD step of the weights `w` with gradient `g`, with momentum when
/// `velocity` (the velocity of the steps before) is given: returns
/// w' = w - u lr [1], and with momentum the new velocity
/// u = g keep + velocity momentum [1] (`keep` = 1 - dampening); without,
/// u = g (also the first momentum step's velocity, which the caller keeps
/// as `g` itself). Each operation rounded in Burn's `Sgd` order: its bits,
/// in one pass, in tasks on the current rayon pool.
///
/// # Panics
/// If the slices differ in length (a caller's bug).
pub fn sgd(
    w: &[f32],
    g: &[f32],
    velocity: Option<&[f32]>,
    momentum: f32,
    keep: f32,
    lr: f32,
) -> (Vec<f32>, Option<Vec<f32>>) {
    assert_eq!(w.len(), g.len(), "sgd: weights and gradient differ in length");
    let c = TASK_VALUES;
    match velocity {
        // SAFETY: each task writes every element of its chunk, and the
        // chunks of all cover them alike.
        None => {
            let [wo] = unsafe {
                written(w.len(), |[wo]| {
                    w.par_chunks(c).zip(g.par_chunks(c)).zip(wo.par_chunks_mut(c)).for_each(|((w, g), wo)| {
                        wo.iter_mut().zip(w.iter().zip(g)).for_each(|(o, (w, g))| {
                            o.write(w - g * lr);
                        })
                    })
                })
            };
            (wo, None)
        }
        Some(u) => {
            assert_eq!(u.len(), w.len(), "sgd: velocity differs in length");
            // SAFETY: as above, for both outputs.
            let [wo, uo] = unsafe {
                written(w.len(), |[wo, uo]| {
                    let inputs = w.par_chunks(c).zip(g.par_chunks(c)).zip(u.par_chunks(c));
                    inputs.zip(wo.par_chunks_mut(c).zip(uo.par_chunks_mut(c))).for_each(|(((w, g), u), (wo, uo))| {
                        let outs = wo.iter_mut().zip(uo.iter_mut());
                        for (((&w, &g), &u), (wo, uo)) in w.iter().zip(g).zip(u).zip(outs) {
                            let u = g * keep + u * momentum;
                            uo.write(u);
                            wo.write(w - u * lr);
                        }
                    })
                })
            };
            (wo, Some(uo))
        }
    }
}

/// Adds `rest` onto `first` element-wise in their order,
/// ((first + r0) + r1) + ..., as adding them one at a time would: in one
/// pass over each, in place, in tasks on the current rayon pool [1].
///
/// # Panics
/// If the slices differ in length (a caller's bug).
pub fn add_in_order(first: &mut [f32], rest: &[&[f32]]) {
    let n = first.len();
    assert!(rest.iter().all(|p| p.len() == n), "add_in_order: parts differ in length");
    let c = TASK_VALUES;
    first.par_chunks_mut(c).enumerate().for_each(|(k, out)| {
        let range = k * c..k * c + out.len();
        for p in rest {
            out.iter_mut().zip(&p[range.clone()]).for_each(|(o, v)| *o += v);
        }
    })
}

#[inline(always)]
fn layer_norm_backward_loop(
    xhat: &[f32],
    rstd: &[f32],
    gamma: &[f32],
    g: &[f32],
    gx: &mut [MaybeUninit<f32>],
    [gg, gb]: &mut [Vec<f32>; 2],
) {
    let row = gamma.len();
    assert!(xhat.len() == g.len() && gx.len() == g.len() && rstd.len() * row == g.len());
    assert!(gg.len() == row && gb.len() == row);
    let d = row as f32;
    let rows = xhat.chunks_exact(row).zip(g.chunks_exact(row)).zip(gx.chunks_exact_mut(row));
    for (((h, g), gx), &rs) in rows.zip(rstd) {
        let mean_u = lane_sum([g, gamma], |[g, w]| g * w) / d;
        let mean_uh = lane_sum([g, gamma, h], |[g, w, h]| g * w * h) / d;
        let terms = h.iter().zip(g).zip(gamma).zip(gx.iter_mut()).zip(gg.iter_mut().zip(gb.iter_mut()));
        for ((((&h, &g), &w), gx), (gg, gb)) in terms {
            gx.write((g * w - mean_u - h * mean_uh) * rs);
            *gg += g * h;
            *gb += g;
        }
    }
}

/// The values of one rayon task of a row-wise kernel: whole rows of
/// `row`, about [`TASK_VALUES`] of them (at least one row).
fn task_rows(row: usize) -> usize {
    TASK_VALUES.div_ceil(row) * row
}

fn whole_rows(n: usize, row: usize, what: &str) {
    assert!(row > 0 && n.is_multiple_of(row), "{what}: {n} values are not rows of {row}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64 to about 1e-15, independent of the kernel's fit: the
    /// Maclaurin series for small |x|, the continued fraction of erfc for
    /// large |x|.
    fn erf_ref(x: f64) -> f64 {
        if x.abs() < 2.5 {
            // Maclaurin series: 2/sqrt(pi) sum (-1)^n x^(2n+1) / (n! (2n+1)).
            let (mut term, mut sum, x2) = (x, x, x * x);
            for n in 1..200 {
                term *= -x2 / n as f64;
                let add = term / (2 * n + 1) as f64;
                sum += add;
                if add.abs() < 1e-18 {
                    break;
                }
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))).
            let ax = x.abs();
            let mut f = 0.0;
            for k in (1..200).rev() {
                f = (k as f64 / 2.0) / (ax + f);
            }
            let erfc = (-ax * ax).exp() / std::f64::consts::PI.sqrt() / (ax + f);
            (1.0 - erfc).copysign(x)
        }
    }

    #[test]
    fn erf_within_1e6_of_a_double_precision_reference() {
        let mut worst = 0.0f64;
        for i in -100_000..=100_000 {
            let x = i as f32 * 1e-4;
            worst = worst.max((erf(x) as f64 - erf_ref(x as f64)).abs());
        }
        assert!(worst < 1e-6, "worst erf error {worst}");
    }

    #[test]
    fn exp_within_1e6_relative_of_std() {
        let mut worst = 0.0f64;
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let want = (x as f64).exp();
            worst = worst.max((exp(x) as f64 - want).abs() / want);
        }
        assert!(worst < 1e-6, "worst exp relative error {worst}");
        assert_eq!(exp(-100.0), 0.0);
    }

    #[test]
    fn gelu_and_slope_match_the_closed_form_and_finite_differences() {
        let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 5e-3).collect();
        let (v, s) = gelu_with_slope(&xs);
        let gelu = |x: f64| 0.5 * x * (1.0 + erf_ref(x / 2f64.sqrt()));
        for ((&x, &v), &s) in xs.iter().zip(&v).zip(&s) {
            let x64 = x as f64;
            assert!((v as f64 - gelu(x64)).abs() < 2e-6, "gelu({x}) = {v}, want {}", gelu(x64));
            let h = 1e-5;
            let fd = (gelu(x64 + h) - gelu(x64 - h)) / (2.0 * h);
            assert!((s as f64 - fd).abs() < 2e-6, "gelu'({x}) = {s}, want {fd}");
        }
    }

    /// Every vector level gives the baseline's bits, on values spanning
    /// both kernels' clamps and lengths that leave a remainder at each
    /// width. Levels this CPU lacks run the baseline and pass trivially;
    /// the one detected is printed.
    #[test]
    fn every_vector_level_gives_the_baselines_bits() {
        println!("widest level here: {:?}", Level::detect());
        let xs: Vec<f32> = (0..4099).map(|i| ((i * 7919 % 4099) as f32 - 2049.5) * 0.05).collect();
        let run_gelu = |level| gelu_with_slope_at(level, &xs);
        let row = 17;
        let n = xs.len() / row * row;
        let g: Vec<f32> = (0..n).map(|i| ((i * 31 % 97) as f32 - 48.0) * 0.01).collect();
        let run_softmax = |level| softmax_rows_at(level, &xs[..n], row);
        let run_backward = |level, y: &[f32]| softmax_rows_backward_at(level, y, &g, row);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (gamma, beta): (Vec<f32>, Vec<f32>) =
            (0..row).map(|i| (1.0 + i as f32 * 0.1, i as f32 * 0.05 - 0.3)).unzip();
        let run_norm = |level| layer_norm_rows_at(level, &xs[..n], &gamma, &beta, 1e-6, true);
        let run_norm_backward = |level, [_, h, r]: &[Vec<f32>; 3]| layer_norm_rows_backward_at(level, h, r, &gamma, &g);
        let (gv, gs) = run_gelu(Level::Base);
        let y = run_softmax(Level::Base);
        let gx = run_backward(Level::Base, &y);
        let norm = run_norm(Level::Base);
        let norm_grads = run_norm_backward(Level::Base, &norm);
        for level in [Level::Avx2, Level::Avx512] {
            let (v, s) = run_gelu(level);
            assert_eq!((bits(&v), bits(&s)), (bits(&gv), bits(&gs)), "gelu at {level:?}");
            assert_eq!(bits(&run_softmax(level)), bits(&y), "softmax at {level:?}");
            assert_eq!(bits(&run_backward(level, &y)), bits(&gx), "softmax's gradient at {level:?}");
            assert_eq!(
                run_norm(level).each_ref().map(|v| bits(v)),
                norm.each_ref().map(|v| bits(v)),
                "layer norm at {level:?}"
            );
            assert_eq!(
                run_norm_backward(level, &norm).each_ref().map(|v| bits(v)),
                norm_grads.each_ref().map(|v| bits(v)),
                "layer norm's gradients at {level:?}"
            );
            assert_eq!(bits(&layer_norm_rows_at(level, &xs[..n], &gamma, &beta, 1e-6, false)[0]), bits(&norm[0]));
        }
    }

    /// Inputs several tasks long (rows of 65 that do not divide a task,
    /// a length that leaves a short last task) give, on pools of 1 and 3
    /// threads, the bits of each row or element computed alone; column
    /// sums (over blocks of rows) the same bits on both, near f64's.
    #[test]
    fn tasks_give_each_rows_bits_for_any_thread_count() {
        let row = 65;
        let n = row * (3 * TASK_VALUES / row + 7);
        let xs: Vec<f32> = (0..n).map(|i| ((i * 7919 % 10007) as f32 - 5003.0) * 1e-3).collect();
        let g: Vec<f32> = (0..n).map(|i| ((i * 31 % 97) as f32 - 48.0) * 0.01).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (gamma, beta): (Vec<f32>, Vec<f32>) =
            (0..row).map(|i| (1.0 + i as f32 * 0.1, i as f32 * 0.05 - 0.3)).unzip();
        let (mut value, mut slope, mut y, mut gx) = (vec![], vec![], vec![], vec![]);
        let (mut norm, mut norm_gx): ([Vec<f32>; 3], Vec<f32>) = Default::default();
        for i in (0..n).step_by(row) {
            let (v, s) = gelu_with_slope(&xs[i..i + row]);
            value.extend(v);
            slope.extend(s);
            let yr = softmax_rows(&xs[i..i + row], row);
            gx.extend(softmax_rows_backward(&yr, &g[i..i + row], row));
            y.extend(yr);
            let nr = layer_norm_rows(&xs[i..i + row], &gamma, &beta, 1e-6, true);
            norm_gx.extend(layer_norm_rows_backward(&nr[1], &nr[2], &gamma, &g[i..i + row])[0].iter());
            norm.iter_mut().zip(nr).for_each(|(all, r)| all.extend(r));
        }
        // gamma's and beta's gradients sum over blocks of rows: the same
        // blocks, so the same bits, on every pool.
        let mut sums_seen = None;
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let (v, s) = gelu_with_slope(&xs);
                assert_eq!((bits(&v), bits(&s)), (bits(&value), bits(&slope)), "gelu on {threads} threads");
                let yy = softmax_rows(&xs, row);
                assert_eq!(bits(&yy), bits(&y), "softmax on {threads} threads");
                let gg = softmax_rows_backward(&yy, &g, row);
                assert_eq!(bits(&gg), bits(&gx), "softmax's gradient on {threads} threads");
                let nn = layer_norm_rows(&xs, &gamma, &beta, 1e-6, true);
                assert_eq!(nn.each_ref().map(|v| bits(v)), norm.each_ref().map(|v| bits(v)), "layer norm");
                let [ngx, ngg, ngb] = layer_norm_rows_backward(&nn[1], &nn[2], &gamma, &g);
                assert_eq!(bits(&ngx), bits(&norm_gx), "layer norm's input gradient on {threads} threads");
                let sums = column_sums(&g, row);
                for (j, &sum) in sums.iter().enumerate() {
                    let want: f64 = g.iter().skip(j).step_by(row).map(|&v| v as f64).sum();
                    assert!((sum as f64 - want).abs() < 1e-3, "column {j}: {sum}, want {want}");
                }
                assert_eq!(bits(&product(&xs, &g)), bits(&xs.iter().zip(&g).map(|(a, b)| a * b).collect::<Vec<_>>()));
                let sums = (bits(&ngg), bits(&ngb), bits(&column_sums(&g, row)));
                assert_eq!(sums_seen.get_or_insert(sums.clone()), &sums, "gamma's and beta's on {threads} threads");
            });
        }
    }

    /// Adam, SGD with and without momentum, and the ordered sum: near an
    /// f64 evaluation of the same formulas (a second step from the
    /// first's moments included), and the same bits at every vector level
    /// and on pools of 1 and 3 threads, over several tasks with a short
    /// last one.
    #[test]
    fn optimizer_steps_and_ordered_sums_match_f64_at_every_level_and_thread_count() {
        let n = 2 * TASK_VALUES + 1001;
        let val = |i: usize, a: usize, s: f32| ((i * a % 10007) as f32 - 5003.0) * s;
        let w: Vec<f32> = (0..n).map(|i| val(i, 7919, 1e-4)).collect();
        let g: Vec<f32> = (0..n).map(|i| val(i, 31, 1e-5)).collect();
        let g2: Vec<f32> = (0..n).map(|i| val(i, 131, 2e-5)).collect();
        let s = |t: i32| {
            let (beta_1, beta_2, eps) = (0.9f32, 0.999f32, 1e-5f32);
            let root = (1.0 - beta_2.powi(t)).sqrt();
            AdamScalars { beta_1, beta_2, correction: root / (1.0 - beta_1.powi(t)), floor: eps * root, lr: 1e-3 }
        };
        // Two Adam steps and two momentum steps in f64.
        let (mut want_adam, mut want_sgd) = (vec![0.0; n], vec![0.0; n]);
        for i in 0..n {
            let (b1, b2, eps, lr) = (0.9f64, 0.999f64, 1e-5f64, 1e-3f64);
            let (mut w_a, mut m, mut v) = (w[i] as f64, 0.0, 0.0);
            for (t, g) in [(1, g[i] as f64), (2, g2[i] as f64)] {
                m = b1 * m + (1.0 - b1) * g;
                v = b2 * v + (1.0 - b2) * g * g;
                let (m_hat, v_hat) = (m / (1.0 - b1.powi(t)), v / (1.0 - b2.powi(t)));
                w_a -= lr * m_hat / (v_hat.sqrt() + eps);
            }
            want_adam[i] = w_a;
            let u = g2[i] as f64 * 1.0 + g[i] as f64 * 0.9;
            want_sgd[i] = w[i] as f64 - g[i] as f64 * 0.1 - u * 0.1;
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut seen = None;
        for level in [Level::Base, Level::Avx2, Level::Avx512] {
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let got = pool.install(|| {
                    let [w1, m1, v1] = adam_at(level, &w, &g, None, s(1));
                    let [w2, m2, v2] = adam_at(level, &w1, &g2, Some((&m1, &v1)), s(2));
                    let (s1, none) = sgd(&w, &g, None, 0.9, 1.0, 0.1);
                    assert!(none.is_none());
                    let (s2, u2) = sgd(&s1, &g2, Some(&g), 0.9, 1.0, 0.1);
                    let mut sum = w.clone();
                    add_in_order(&mut sum, &[&g, &g2]);
                    [w2, m2, v2, s2, u2.unwrap(), sum].map(|v| bits(&v))
                });
                assert_eq!(seen.get_or_insert(got.clone()), &got, "{level:?} on {threads} threads");
            }
        }
        let [w2, _, _, s2, _, sum] = seen.unwrap().map(|b| b.into_iter().map(f32::from_bits).collect::<Vec<_>>());
        for i in 0..n {
            // The update is about lr per step, computed from values near
            // 1e-2 relative apart at worst (sqrt(v) + floor); w itself is
            // rounded to f32 (2^-24 relative).
            let tol = 1e-7 + 6e-8 * w[i].abs() as f64;
            assert!((w2[i] as f64 - want_adam[i]).abs() < tol, "adam at {i}: {} against {}", w2[i], want_adam[i]);
            assert!((s2[i] as f64 - want_sgd[i]).abs() < tol, "sgd at {i}: {} against {}", s2[i], want_sgd[i]);
            let exact = w[i] as f64 + g[i] as f64 + g2[i] as f64;
            // Two roundings, each within half a unit of the partial sums.
            let size = (w[i].abs() + g[i].abs() + g2[i].abs()) as f64;
            assert!((sum[i] as f64 - exact).abs() <= f32::EPSILON as f64 * size, "sum at {i}");
            assert_eq!(sum[i], (w[i] + g[i]) + g2[i], "the sum's order at {i}");
        }
    }

    /// Layer normalization in f64 on one row: y = (x - m) / sqrt(v + eps) gamma + beta.
    fn layer_norm_ref(x: &[f64], gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f64> {
        let d = x.len() as f64;
        let m = x.iter().sum::<f64>() / d;
        let v = x.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / d;
        x.iter().zip(gamma).zip(beta).map(|((x, &w), &b)| (x - m) / (v + eps).sqrt() * w as f64 + b as f64).collect()
    }

    /// The layer norm against f64: its values, and its three gradients
    /// against central differences of sum(g y) in f64, on rows of 21 (a
    /// remainder past the 8 partial sums) far from zero mean.
    #[test]
    fn layer_norm_and_gradients_match_f64_and_finite_differences() {
        let row = 21;
        let rows = 6;
        let xs: Vec<f32> = (0..row * rows).map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.07 + 3.0).collect();
        let g: Vec<f32> = (0..row * rows).map(|i| ((i * 17 % 89) as f32 - 44.0) * 0.05).collect();
        let (gamma, beta): (Vec<f32>, Vec<f32>) =
            (0..row).map(|i| (0.5 + i as f32 * 0.1, i as f32 * 0.05 - 0.3)).unzip();
        let eps = 1e-6;
        let [y, xhat, rstd] = layer_norm_rows(&xs, &gamma, &beta, eps as f32, true);
        let [gx, gg, gb] = layer_norm_rows_backward(&xhat, &rstd, &gamma, &g);
        let h = 1e-6;
        let (mut want_gg, mut want_gb) = (vec![0f64; row], vec![0f64; row]);
        for r in 0..rows {
            let span = r * row..(r + 1) * row;
            let x64: Vec<f64> = xs[span.clone()].iter().map(|&v| v as f64).collect();
            let g64: Vec<f64> = g[span.clone()].iter().map(|&v| v as f64).collect();
            let want = layer_norm_ref(&x64, &gamma, &beta, eps);
            for (k, i) in span.clone().enumerate() {
                assert!((y[i] as f64 - want[k]).abs() < 2e-6, "row {r}: y = {}, want {}", y[i], want[k]);
                // d/dx_k of sum(g y) by central differences.
                let loss = |dx: f64| {
                    let mut xp = x64.clone();
                    xp[k] += dx;
                    layer_norm_ref(&xp, &gamma, &beta, eps).iter().zip(&g64).map(|(y, g)| y * g).sum::<f64>()
                };
                let fd = (loss(h) - loss(-h)) / (2.0 * h);
                assert!((gx[i] as f64 - fd).abs() < 1e-4, "row {r}: input gradient {}, want {fd}", gx[i]);
                // y's slope in gamma_k is x^_k, in beta_k is 1.
                let m = x64.iter().sum::<f64>() / row as f64;
                let v = x64.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / row as f64;
                want_gg[k] += g64[k] * (x64[k] - m) / (v + eps).sqrt();
                want_gb[k] += g64[k];
            }
        }
        for k in 0..row {
            assert!((gg[k] as f64 - want_gg[k]).abs() < 1e-5, "gamma's gradient {}, want {}", gg[k], want_gg[k]);
            assert!((gb[k] as f64 - want_gb[k]).abs() < 1e-5, "beta's gradient {}, want {}", gb[k], want_gb[k]);
        }
    }

    /// Each row's softmax and its gradient against f64 closed forms: the
    /// softmax, and its Jacobian applied to g (diag(y) - y y^T) g.
    #[test]
    fn softmax_rows_and_gradient_match_f64_on_each_row() {
        let row = 7;
        let xs: Vec<f32> = (0..700).map(|i| ((i * 53 % 211) as f32 - 105.0) * 0.31).collect();
        let g: Vec<f32> = (0..700).map(|i| ((i * 17 % 89) as f32 - 44.0) * 0.05).collect();
        let y = softmax_rows(&xs, row);
        let gx = softmax_rows_backward(&y, &g, row);
        for r in 0..xs.len() / row {
            let span = r * row..(r + 1) * row;
            let max = xs[span.clone()].iter().map(|&v| v as f64).fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = xs[span.clone()].iter().map(|&v| (v as f64 - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            let want: Vec<f64> = e.iter().map(|e| e / sum).collect();
            let dot: f64 = want.iter().zip(&g[span.clone()]).map(|(y, &g)| y * g as f64).sum();
            for (k, i) in span.enumerate() {
                assert!(
                    (y[i] as f64 - want[k]).abs() <= 1e-6 * want[k] + 1e-9,
                    "row {r}: y = {}, want {}",
                    y[i],
                    want[k]
                );
                let dwant = want[k] * (g[i] as f64 - dot);
                assert!((gx[i] as f64 - dwant).abs() <= 1e-6, "row {r}: gradient {}, want {dwant}", gx[i]);
            }
        }
    }
}
