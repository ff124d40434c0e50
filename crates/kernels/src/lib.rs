//! Element-wise numeric kernels of the training step, in plain loops the
//! compiler vectorizes. They live in their own crate because the dev
//! profile (the one `cargo test` builds) compiles workspace crates
//! unoptimized; this one is built at `opt-level = 3` in every profile
//! (root `Cargo.toml`), like the dependencies.
//!
//! Why: Burn's CPU backend evaluates the exact GELU with a scalar libm
//! `erff` per element, forward and backward, which took about a fifth of
//! a `vit-p7-28` co-simulation's time.
//!
//! No `mul_add`: without FMA in the target's baseline features it is a
//! libm call per element, not an instruction.

/// 1 / sqrt(2) [1].
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi) [1].
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

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
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = r * 1.987_569_2e-4 + 1.398_2e-3;
    p = r * p + 8.333_452e-3;
    p = r * p + 4.166_579_6e-2;
    p = r * p + 1.666_666_5e-1;
    p = r * p + 0.5;
    let p = (r * r) * p + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if under { 0.0 } else { p * scale }
}

/// The exact (erf-based) GELU x Phi(x) of every `x[i]` as the line
/// `slope[i] * x[i] + offset[i]` tangent to it at `x[i]`: `slope[i]` is its
/// derivative Phi(x) + x phi(x) and `offset[i]` = GELU(x) - slope x [1]
/// (Phi, phi: the standard normal CDF and density). All three slices have
/// one length.
///
/// # Panics
/// If the lengths differ (a caller's bug, not bad input).
pub fn gelu_tangent(x: &[f32], slope: &mut [f32], offset: &mut [f32]) {
    assert!(x.len() == slope.len() && x.len() == offset.len(), "gelu_tangent: lengths differ");
    for ((&x, s), o) in x.iter().zip(slope.iter_mut()).zip(offset.iter_mut()) {
        let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
        let pdf = FRAC_1_SQRT_2PI * exp(-0.5 * x * x);
        let slope = x * pdf + cdf;
        *s = slope;
        *o = x * cdf - slope * x;
    }
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
        let (mut s, mut o) = (vec![0.0; xs.len()], vec![0.0; xs.len()]);
        gelu_tangent(&xs, &mut s, &mut o);
        let v: Vec<f32> = xs.iter().zip(&s).zip(&o).map(|((x, s), o)| s * x + o).collect();
        let gelu = |x: f64| 0.5 * x * (1.0 + erf_ref(x / 2f64.sqrt()));
        for ((&x, &v), &s) in xs.iter().zip(&v).zip(&s) {
            let x64 = x as f64;
            assert!((v as f64 - gelu(x64)).abs() < 2e-6, "gelu({x}) = {v}, want {}", gelu(x64));
            let h = 1e-5;
            let fd = (gelu(x64 + h) - gelu(x64 - h)) / (2.0 * h);
            assert!((s as f64 - fd).abs() < 2e-6, "gelu'({x}) = {s}, want {fd}");
        }
    }
}
