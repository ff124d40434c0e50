//! Element-wise numeric kernels of the training step, in plain loops the
//! compiler vectorizes. They live in their own crate because the dev
//! profile (the one `cargo test` builds) compiles workspace crates
//! unoptimized; this one is built at `opt-level = 3` in every profile
//! (root `Cargo.toml`), like the dependencies.
//!
//! Why: Burn's CPU backend evaluates the exact GELU with a scalar libm
//! `erff` per element, forward and backward, which took about a fifth of
//! a `vit-p7-28` co-simulation's time, and a softmax's exponentials with a
//! scalar `expf` (a tenth of a `vit-tiny-28` one's).
//!
//! No `mul_add`: without FMA in the target's baseline features it is a
//! libm call per element, not an instruction.

use std::mem::MaybeUninit;

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
    // are as long as `x`).
    let [value, slope] = unsafe { written(x.len(), |[v, s]| run(level, x, v, s)) };
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
/// m, e = exp(x[i] - m) (so e <= 1) and y[i] = e / the row's sum of e,
/// summed in row order [1].
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
    // SAFETY: `softmax_rows_loop` writes every element (it asserts `y` is
    // as long as `x`, whole rows of `row`).
    let [y] = unsafe { written(x.len(), |[y]| run(level, x, row, y)) };
    y
}

#[inline(always)]
fn softmax_rows_loop(x: &[f32], row: usize, y: &mut [MaybeUninit<f32>]) {
    assert!(x.len() == y.len());
    for (x, y) in x.chunks_exact(row).zip(y.chunks_exact_mut(row)) {
        let max = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        for (&x, y) in x.iter().zip(y.iter_mut()) {
            y.write(exp(x - max));
        }
        // SAFETY: every element of the row was written just above.
        let y = unsafe { &mut *(y as *mut [MaybeUninit<f32>] as *mut [f32]) };
        let sum = y.iter().fold(0.0f32, |a, &e| a + e);
        y.iter_mut().for_each(|e| *e /= sum);
    }
}

/// The gradient of [`softmax_rows`] from its output `y` and the gradient
/// `g` of its output: y[i] (g[i] - the row's sum of g y), summed in row
/// order [1].
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
    // SAFETY: `softmax_backward_loop` writes every element (it asserts the
    // lengths match).
    let [gx] = unsafe { written(y.len(), |[gx]| run(level, y, g, row, gx)) };
    gx
}

#[inline(always)]
fn softmax_backward_loop(y: &[f32], g: &[f32], row: usize, gx: &mut [MaybeUninit<f32>]) {
    assert!(y.len() == g.len() && y.len() == gx.len());
    for ((y, g), gx) in y.chunks_exact(row).zip(g.chunks_exact(row)).zip(gx.chunks_exact_mut(row)) {
        let dot = y.iter().zip(g).fold(0.0f32, |a, (&y, &g)| a + y * g);
        for ((&y, &g), gx) in y.iter().zip(g).zip(gx.iter_mut()) {
            gx.write(y * (g - dot));
        }
    }
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
        let (gv, gs) = run_gelu(Level::Base);
        let y = run_softmax(Level::Base);
        let gx = run_backward(Level::Base, &y);
        for level in [Level::Avx2, Level::Avx512] {
            let (v, s) = run_gelu(level);
            assert_eq!((bits(&v), bits(&s)), (bits(&gv), bits(&gs)), "gelu at {level:?}");
            assert_eq!(bits(&run_softmax(level)), bits(&y), "softmax at {level:?}");
            assert_eq!(bits(&run_backward(level, &y)), bits(&gx), "softmax's gradient at {level:?}");
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
