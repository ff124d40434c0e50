//! Activation quantization on the wire (SPEC section 2, paper eq. 7, 8,
//! Lemma 1): stochastic rounding of |a_i| onto 2^b levels between the
//! smallest and largest magnitude, a sign bit, two f32 bounds, packed to
//! exactly `ceil(S(b) / 8)` bytes with S(b) = d (b + 1) + 64.
//!
//! Random numbers come from a counter-based generator (SplitMix64 of the
//! element index and a per-message key), so a message quantizes the same
//! way whatever thread or order it is processed in, and the loop needs no
//! generator state.

use crate::error::{Error, Result};

/// Payload of `elements` activations quantized at `bits` [bit]: magnitude
/// and sign per element plus the two f32 bounds, S(b) = d (b + 1) + 64.
#[inline]
pub fn payload_bits(elements: u64, bits: u32) -> u64 {
    elements * (bits as u64 + 1) + 64
}

/// Payload of unquantized fp32 activations [bit].
#[inline]
pub fn fp32_bits(elements: u64) -> u64 {
    elements * 32
}

/// Bytes on the wire for `payload_bits` [B] = ceil(S / 8).
#[inline]
pub fn wire_bytes(payload_bits: u64) -> u64 {
    payload_bits.div_ceil(8)
}

#[inline(always)]
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 32-bit integer hash (Wellons' "lowbias32"): the per-element random
/// draw, counter-based so that it vectorizes (SIMD lanes hash
/// consecutive indices) and needs no generator state.
#[inline(always)]
fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// Elements per block: codes are computed for a block into a stack buffer,
/// then packed 8 at a time (8 codes of W bits are exactly W bytes).
const BLOCK: usize = 64;

/// The grid of one message.
#[derive(Clone, Copy)]
struct Grid {
    lo: f32,
    inv: f32,
    max_k: u32,
    seed: u32,
}

/// Codes `sign | k << 1` of a block starting at element `base`.
/// k = floor(pos) + 1 with probability frac(pos), so E[level] = pos.
#[inline(always)]
fn codes(a: &[f32], base: u32, g: Grid, out: &mut [u32; BLOCK]) {
    for (j, (&x, o)) in a.iter().zip(out.iter_mut()).enumerate() {
        let u = (hash32(base.wrapping_add(j as u32) ^ g.seed) >> 8) as f32 * (1.0 / 16_777_216.0);
        let bits = x.to_bits();
        // pos in [0, 2^b - 1] (a hair above at most) because lo <= |x| <= hi
        // and inv is finite: the unchecked conversion vectorizes, where `as`
        // would add NaN and range checks per element.
        let pos = (f32::from_bits(bits & 0x7fff_ffff) - g.lo) * g.inv;
        // SAFETY: pos is finite and within 0..=65536, see above.
        let k0 = unsafe { pos.to_int_unchecked::<i32>() } as u32;
        let k = (k0 + (u < pos - k0 as f32) as u32).min(g.max_k);
        *o = (bits >> 31) | (k << 1);
    }
}

/// Packs whole blocks at W = bits + 1 <= 16 bits per code: codes are
/// merged pairwise in lanes (2 codes -> 2W bits, 4 -> 4W <= 64 bits), so
/// the merging vectorizes, and every 8 codes are stored as W bytes.
#[inline(always)]
fn pack_blocks<const W: usize>(a: &[f32], g: Grid, body: &mut [u8]) {
    let mut buf = [0u32; BLOCK];
    let mut pairs = [0u32; BLOCK / 2];
    let mut quads = [0u64; BLOCK / 4];
    for (bi, (xs, dst)) in a.chunks_exact(BLOCK).zip(body.chunks_exact_mut(BLOCK / 8 * W)).enumerate() {
        codes(xs, (bi * BLOCK) as u32, g, &mut buf);
        for (p, c) in pairs.iter_mut().zip(buf.chunks_exact(2)) {
            *p = c[0] | (c[1] << W);
        }
        for (q, p) in quads.iter_mut().zip(pairs.chunks_exact(2)) {
            *q = p[0] as u64 | ((p[1] as u64) << (2 * W));
        }
        for (q, d) in quads.chunks_exact(2).zip(dst.chunks_exact_mut(W)) {
            let acc = q[0] as u128 | ((q[1] as u128) << (4 * W));
            d.copy_from_slice(&acc.to_le_bytes()[..W]);
        }
    }
}

/// The same, compiled for AVX2 and for AVX-512 (the baseline x86-64
/// target has no 32-bit vector multiply); chosen at run time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn pack_blocks_avx2<const W: usize>(a: &[f32], g: Grid, body: &mut [u8]) {
    pack_blocks::<W>(a, g, body)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
fn pack_blocks_avx512<const W: usize>(a: &[f32], g: Grid, body: &mut [u8]) {
    pack_blocks::<W>(a, g, body)
}

fn pack_blocks_dispatch<const W: usize>(a: &[f32], g: Grid, body: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx2") && has!("fma") {
            // SAFETY: the features were just detected on this CPU.
            return unsafe { pack_blocks_avx512::<W>(a, g, body) };
        }
        if has!("avx2") && has!("fma") {
            // SAFETY: as above.
            return unsafe { pack_blocks_avx2::<W>(a, g, body) };
        }
    }
    pack_blocks::<W>(a, g, body)
}

/// min |a_i|, max |a_i| and whether every element is finite, with
/// lane-wise accumulators and a non-finite flag (exponent all ones) so that
/// the scan vectorizes.
#[inline(always)]
fn bounds(a: &[f32]) -> (f32, f32, bool) {
    let (mut lo8, mut hi8, mut bad8) = ([f32::INFINITY; 16], [0f32; 16], [0u32; 16]);
    let chunks = a.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            let b = c[i].to_bits() & 0x7fff_ffff;
            bad8[i] |= (b >= 0x7f80_0000) as u32;
            let m = f32::from_bits(b);
            lo8[i] = lo8[i].min(m);
            hi8[i] = hi8[i].max(m);
        }
    }
    let (mut lo, mut hi) = (lo8.iter().fold(f32::INFINITY, |x, &y| x.min(y)), hi8.iter().fold(0f32, |x, &y| x.max(y)));
    let mut finite = bad8.iter().all(|&b| b == 0);
    for &x in tail {
        let m = x.abs();
        finite &= m.is_finite();
        lo = lo.min(m);
        hi = hi.max(m);
    }
    (lo, hi, finite)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
fn bounds_avx512(a: &[f32]) -> (f32, f32, bool) {
    bounds(a)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn bounds_avx2(a: &[f32]) -> (f32, f32, bool) {
    bounds(a)
}

fn bounds_dispatch(a: &[f32]) -> (f32, f32, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx2") && has!("fma") {
            // SAFETY: the features were just detected on this CPU.
            return unsafe { bounds_avx512(a) };
        }
        if has!("avx2") && has!("fma") {
            // SAFETY: as above.
            return unsafe { bounds_avx2(a) };
        }
    }
    bounds(a)
}

/// Quantizes `a` at `bits` (1..=16) with stochastic rounding keyed by
/// `key`, and packs it: `[a_min: f32 LE][a_max: f32 LE]` then, per element,
/// the sign bit followed by the b-bit level index, least significant bit
/// first. Errors on non-finite input or bits outside 1..=16.
pub fn quantize_pack(a: &[f32], bits: u32, key: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    quantize_pack_into(a, bits, key, &mut out)?;
    Ok(out)
}

/// [`quantize_pack`] into a reused buffer (resized to the message length).
pub fn quantize_pack_into(a: &[f32], bits: u32, key: u64, out: &mut Vec<u8>) -> Result<()> {
    if !(1..=16).contains(&bits) {
        return Err(Error::Input(format!("quantization bits {bits}: allowed 1..=16")));
    }
    let (mut lo, hi, finite) = bounds_dispatch(a);
    if !finite {
        return Err(Error::Numeric { checkpoint: "quant.input", detail: "non-finite activation".into() });
    }
    if a.is_empty() {
        lo = 0.0;
    }
    let levels = ((1u32 << bits) - 1) as f32;
    let delta = (hi - lo) / levels;
    // A subnormal delta would make 1/delta infinite: such a tensor is
    // constant to f32 precision and every element goes to level 0.
    let inv = if delta > 0.0 && (1.0 / delta).is_finite() { 1.0 / delta } else { 0.0 };
    let total_bits = payload_bits(a.len() as u64, bits);
    out.clear();
    out.resize(wire_bytes(total_bits) as usize, 0);
    out[..4].copy_from_slice(&lo.to_le_bytes());
    out[4..8].copy_from_slice(&hi.to_le_bytes());
    let g = Grid { lo, inv, max_k: (1u32 << bits) - 1, seed: splitmix(key) as u32 };
    let width = (bits + 1) as usize;
    let body = &mut out[8..];
    let whole = a.len() / BLOCK * BLOCK;
    let (head, rest) = a.split_at(whole);
    macro_rules! by_width {
        ($($w:literal)*) => {
            match width {
                $($w => pack_blocks_dispatch::<$w>(head, g, body),)*
                _ => pack_bits(head, 0, width as u32, g, body, 0),
            }
        };
    }
    by_width!(2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    // The last partial block (and every block at 17 bits): a plain bit writer.
    if !rest.is_empty() {
        pack_bits(rest, whole as u32, width as u32, g, body, whole * width / 8);
    }
    Ok(())
}

/// Packs `a` (elements from `base` on) at `width` bits per code from byte
/// `at` of `body` (blocks are whole bytes: 64 codes of W bits), 32 bits at
/// a time through a u64 accumulator.
fn pack_bits(a: &[f32], base: u32, width: u32, g: Grid, body: &mut [u8], at: usize) {
    let mut buf = [0u32; BLOCK];
    let (mut acc, mut filled, mut at) = (0u64, 0u32, at);
    for (bi, xs) in a.chunks(BLOCK).enumerate() {
        codes(xs, base + (bi * BLOCK) as u32, g, &mut buf);
        for &c in &buf[..xs.len()] {
            acc |= (c as u64) << filled;
            filled += width;
            if filled >= 32 {
                body[at..at + 4].copy_from_slice(&(acc as u32).to_le_bytes());
                at += 4;
                acc >>= 32;
                filled -= 32;
            }
        }
    }
    for b in body[at..].iter_mut() {
        *b = acc as u8;
        acc >>= 8;
    }
}

/// Unpacks a message of `elements` values at `bits` back to f32:
/// sign · (a_min + k Δ). Errors when the length does not match.
pub fn unpack(bytes: &[u8], elements: usize, bits: u32) -> Result<Vec<f32>> {
    if !(1..=16).contains(&bits) {
        return Err(Error::Input(format!("quantization bits {bits}: allowed 1..=16")));
    }
    let want = wire_bytes(payload_bits(elements as u64, bits)) as usize;
    if bytes.len() != want {
        return Err(Error::Input(format!("quantized message: {} bytes, expected {want}", bytes.len())));
    }
    let lo = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let hi = f32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let delta = (hi - lo) / ((1u32 << bits) - 1) as f32;
    let width = bits + 1;
    let mask = (1u64 << width) - 1;
    let mut out = Vec::with_capacity(elements);
    let (mut acc, mut filled, mut next) = (0u64, 0u32, 8usize);
    for _ in 0..elements {
        while filled < width {
            acc |= (bytes[next] as u64) << filled;
            next += 1;
            filled += 8;
        }
        let code = acc & mask;
        acc >>= width;
        filled -= width;
        let mag = lo + (code >> 1) as f32 * delta;
        out.push(if code & 1 == 1 { -mag } else { mag });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_stays_within_one_level() {
        // Values on the grid come back on the grid: unchanged, or one level
        // off where f32 rounding puts them a hair above a level.
        for bits in 1..=16 {
            let levels = (1u32 << bits) - 1;
            // Both end points (they fix the grid) and levels between them.
            let mut ks: Vec<u32> = (0..=levels).step_by((levels as usize / 300).max(1)).collect();
            ks.push(levels);
            let a: Vec<f32> =
                ks.iter().map(|&k| if k % 2 == 0 { 1.0 } else { -1.0 } * (0.5 + k as f32 / levels as f32)).collect();
            let bytes = quantize_pack(&a, bits, 7).unwrap();
            assert_eq!(bytes.len() as u64, wire_bytes(payload_bits(a.len() as u64, bits)));
            let back = unpack(&bytes, a.len(), bits).unwrap();
            for (x, y) in a.iter().zip(&back) {
                let delta = 1.0 / levels as f32;
                assert!((x - y).abs() <= delta * 1.001 + 1e-6, "b={bits}: {x} -> {y}");
            }
        }
    }
}
