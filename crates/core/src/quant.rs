//! Activation quantization on the wire (SPEC section 2, paper eq. 7, 8,
//! Lemma 1): stochastic rounding of |a_i| onto 2^b levels between the
//! smallest and largest magnitude, a sign bit, two f32 bounds, packed to
//! exactly `ceil(S(b) / 8)` bytes with S(b) = d (b + 1) + 64.
//!
//! Random numbers come from a counter-based generator (a 32-bit hash of
//! the element index and a seed that SplitMix64 derives from the
//! per-message key), so a message quantizes the same
//! way whatever thread or order it is processed in, and the loop needs no
//! generator state.
//!
//! ```
//! use sflam_core::quant::{payload_bits, quantize_pack, unpack, wire_bytes};
//! let a: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
//! let bytes = quantize_pack(&a, 8, 42).unwrap();
//! // Exactly ceil(S(b) / 8) bytes, S(b) = d (b + 1) + 64.
//! assert_eq!(bytes.len() as u64, wire_bytes(payload_bits(1000, 8)));
//! let back = unpack(&bytes, a.len(), 8).unwrap();
//! // Each value lands on one of the two levels around it: |Q(a) - a| < Δ.
//! let (lo, hi) = (a.iter().fold(f32::MAX, |m, v| m.min(v.abs())), a.iter().fold(0f32, |m, v| m.max(v.abs())));
//! let delta = (hi - lo) / 255.0;
//! assert!(a.iter().zip(&back).all(|(x, q)| (x - q).abs() <= delta * 1.0001));
//! ```

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

/// One upload of `elements` activations at `bits` [bit]: S(b), or fp32
/// when `bits` >= 32 (unquantized).
#[inline]
pub fn message_bits(elements: u64, bits: u32) -> u64 {
    if bits >= 32 { fp32_bits(elements) } else { payload_bits(elements, bits) }
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

/// A 32-bit integer hash (Wellons' "lowbias32" without its first and last
/// xorshifts; only the top 24 bits are used, and on consecutive indices
/// they pass the same uniformity and pair checks as the full hash's): the
/// per-element random draw, counter-based so that it vectorizes (SIMD lanes
/// hash consecutive indices) and needs no generator state. Each xorshift
/// less is ~10% of the quantizer's time.
#[inline(always)]
fn hash32(mut x: u32) -> u32 {
    x = x.wrapping_mul(HASH_M1);
    x ^= x >> 15;
    x.wrapping_mul(HASH_M2)
}

/// The hash's multipliers, and the scale of its top 24 bits onto [0, 1):
/// shared by the portable code and the AVX-512 kernel, which must agree.
const HASH_M1: u32 = 0x7feb_352d;
const HASH_M2: u32 = 0x846c_a68b;
const U24_SCALE: f32 = 1.0 / 16_777_216.0;

/// Defines `$disp`, which runs `$name` compiled for AVX-512 or AVX2 where
/// the CPU has them (the baseline x86-64 target has no 32-bit vector
/// multiply nor unsigned vector min), else the portable build.
macro_rules! multiversion {
    (fn $disp:ident = $name:ident ($($arg:ident : $ty:ty),*) $(-> $ret:ty)?) => {
        fn $disp($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $name($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $name($($arg),*)
                }
                use std::arch::is_x86_feature_detected as has;
                if has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx2") && has!("fma") {
                    // SAFETY: the features were just detected on this CPU.
                    return unsafe { avx512($($arg),*) };
                }
                if has!("avx2") && has!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $name($($arg),*)
        }
    };
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
/// k = floor(pos + u) with u uniform on [0, 1) in steps of 2^-24 (the top
/// 24 bits of the hash): k = floor(pos) + 1 with probability frac(pos), so
/// E[k] = pos up to the f32 rounding of pos + u (2^-24 relative).
#[inline(always)]
fn codes(a: &[f32], base: u32, g: Grid, out: &mut [u32; BLOCK]) {
    for (j, (&x, o)) in a.iter().zip(out.iter_mut()).enumerate() {
        let u = (hash32(base.wrapping_add(j as u32) ^ g.seed) >> 8) as f32 * U24_SCALE;
        let bits = x.to_bits();
        // pos in [0, 2^b - 1] (a hair above at most) because lo <= |x| <= hi
        // and inv is finite: the unchecked conversion vectorizes, where `as`
        // would add NaN and range checks per element.
        let pos = (f32::from_bits(bits & 0x7fff_ffff) - g.lo) * g.inv;
        // SAFETY: pos + u is finite and within 0..=65537, see above.
        let k = (unsafe { (pos + u).to_int_unchecked::<i32>() } as u32).min(g.max_k);
        *o = (bits >> 31) | (k << 1);
    }
}

/// Packs whole blocks at W = bits + 1 <= 16 bits per code, the first
/// element being number `base` of the message: codes are merged pairwise
/// in lanes (2 codes -> 2W bits, 4 -> 4W <= 64 bits), so the merging
/// vectorizes, and every 8 codes are stored as W bytes.
#[inline(always)]
fn pack_blocks<const W: usize>(a: &[f32], base: u32, g: Grid, body: &mut [u8]) {
    let mut buf = [0u32; BLOCK];
    let mut pairs = [0u32; BLOCK / 2];
    let mut quads = [0u64; BLOCK / 4];
    for (bi, (xs, dst)) in a.chunks_exact(BLOCK).zip(body.chunks_exact_mut(BLOCK / 8 * W)).enumerate() {
        codes(xs, base.wrapping_add((bi * BLOCK) as u32), g, &mut buf);
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

/// The same compiled for AVX2 (the baseline x86-64 target has no 32-bit
/// vector multiply), for CPUs without AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn pack_blocks_avx2<const W: usize>(a: &[f32], g: Grid, body: &mut [u8]) {
    pack_blocks::<W>(a, 0, g, body)
}

/// Whole blocks at W <= 16 bits per code: the AVX-512 kernel where the CPU
/// has it (bit-identical to the portable code, which finishes what it
/// leaves), else the portable code compiled for AVX2 or the baseline.
fn pack_blocks_dispatch<const W: usize>(a: &[f32], g: Grid, body: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bw") && has!("avx512vl") {
            // SAFETY: the features were just detected on this CPU.
            let done = unsafe { x86::pack_blocks::<W>(a, g, body) };
            return pack_blocks::<W>(&a[done..], done as u32, g, &mut body[done / 8 * W..]);
        }
        if has!("avx2") && has!("fma") {
            // SAFETY: as above.
            return unsafe { pack_blocks_avx2::<W>(a, g, body) };
        }
    }
    pack_blocks::<W>(a, 0, g, body)
}

/// AVX-512 forms of [`codes`] and of the block packer: 16 elements per
/// step, the same arithmetic in the same order, so the bytes equal the
/// portable code's on every CPU.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{BLOCK, Grid, HASH_M1, HASH_M2, U24_SCALE};
    use std::arch::x86_64::*;

    /// Broadcast constants of one message and width.
    struct K {
        abs: __m512i,
        lo: __m512,
        inv: __m512,
        seed: __m512i,
        m1: __m512i,
        m2: __m512i,
        scale: __m512,
        max_k: __m512i,
        lane: __m512i,
        low32: __m512i,
        pair: __m512i,
        quad: __m512i,
        gather: __m512i,
        take_a: __m512i,
        take_b: __m512i,
        up: __m512i,
        down: __m512i,
    }

    /// The codes `sign | k << 1` of the 16 elements `x`, numbered `first`
    /// on, as [`super::codes`] computes them.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn codes16(x: __m512, first: u32, k: &K) -> __m512i {
        let bits = _mm512_castps_si512(x);
        let mag = _mm512_castsi512_ps(_mm512_and_si512(bits, k.abs));
        let pos = _mm512_mul_ps(_mm512_sub_ps(mag, k.lo), k.inv);
        let mut h = _mm512_xor_si512(_mm512_add_epi32(_mm512_set1_epi32(first as i32), k.lane), k.seed);
        h = _mm512_mullo_epi32(h, k.m1);
        h = _mm512_xor_si512(h, _mm512_srli_epi32::<15>(h));
        h = _mm512_mullo_epi32(h, k.m2);
        let u = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32::<8>(h)), k.scale);
        let level = _mm512_min_epu32(_mm512_cvttps_epi32(_mm512_add_ps(pos, u)), k.max_k);
        _mm512_or_si512(_mm512_srli_epi32::<31>(bits), _mm512_slli_epi32::<1>(level))
    }

    /// Merges 32 codes of W bits (`c0` the first 16) into 4W bytes, as four
    /// 128-bit groups of 8 codes (W bytes each, zeros above), stored at
    /// `dst`, `dst + W`, `dst + 2W` and `dst + 3W`. Writes 16 - W bytes of
    /// zeros past the 4W: the next store (or the portable code after the
    /// last) overwrites them.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn store32<const W: usize>(c0: __m512i, c1: __m512i, dst: *mut u8, k: &K) {
        // u64 lanes: c_even | c_odd << W (c_odd sat at bit 32); then, in the
        // low u64 of each 128-bit lane, 4 codes in 4W <= 64 bits.
        let quads = |c: __m512i| {
            let pairs = _mm512_or_si512(_mm512_and_si512(c, k.low32), _mm512_srlv_epi64(c, k.pair));
            _mm512_or_si512(pairs, _mm512_sllv_epi64(_mm512_bsrli_epi128::<8>(pairs), k.quad))
        };
        // The 8 quads in order, then four groups [q_2i | q_2i+1 << 4W, q_2i+1 >> (64 - 4W)].
        let q = _mm512_permutex2var_epi64(quads(c0), k.gather, quads(c1));
        let a = _mm512_maskz_permutexvar_epi64(0x55, k.take_a, q);
        let b = _mm512_permutexvar_epi64(k.take_b, q);
        let r = _mm512_or_si512(a, _mm512_or_si512(_mm512_sllv_epi64(b, k.up), _mm512_srlv_epi64(b, k.down)));
        // SAFETY: the caller guarantees dst .. dst + 3W + 16 is writable.
        unsafe {
            _mm_storeu_si128(dst.cast(), _mm512_castsi512_si128(r));
            _mm_storeu_si128(dst.add(W).cast(), _mm512_extracti32x4_epi32::<1>(r));
            _mm_storeu_si128(dst.add(2 * W).cast(), _mm512_extracti32x4_epi32::<2>(r));
            _mm_storeu_si128(dst.add(3 * W).cast(), _mm512_extracti32x4_epi32::<3>(r));
        }
    }

    /// Packs the leading whole blocks of `a` whose stores stay inside
    /// `body`; returns how many elements it packed (whole blocks).
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VL.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub unsafe fn pack_blocks<const W: usize>(a: &[f32], g: Grid, body: &mut [u8]) -> usize {
        const { assert!(W >= 2 && W <= 16) };
        let w = W as i64;
        let k = K {
            abs: _mm512_set1_epi32(0x7fff_ffff),
            lo: _mm512_set1_ps(g.lo),
            inv: _mm512_set1_ps(g.inv),
            seed: _mm512_set1_epi32(g.seed as i32),
            m1: _mm512_set1_epi32(HASH_M1 as i32),
            m2: _mm512_set1_epi32(HASH_M2 as i32),
            scale: _mm512_set1_ps(U24_SCALE),
            max_k: _mm512_set1_epi32(g.max_k as i32),
            lane: _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            low32: _mm512_set1_epi64(0xffff_ffff),
            pair: _mm512_set1_epi64(32 - w),
            quad: _mm512_set1_epi64(2 * w),
            gather: _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14),
            take_a: _mm512_setr_epi64(0, 0, 2, 0, 4, 0, 6, 0),
            take_b: _mm512_setr_epi64(1, 1, 3, 3, 5, 5, 7, 7),
            up: _mm512_setr_epi64(4 * w, 64, 4 * w, 64, 4 * w, 64, 4 * w, 64),
            down: _mm512_setr_epi64(64, 64 - 4 * w, 64, 64 - 4 * w, 64, 64 - 4 * w, 64, 64 - 4 * w),
        };
        // Block b's last store ends at byte 8W (b + 1) - W + 16.
        let fit = (body.len() + W).saturating_sub(16) / (8 * W);
        let blocks = (a.len() / BLOCK).min(fit);
        const { assert!(BLOCK == 64) }; // one block = four 16-lane vectors
        for e in (0..blocks * BLOCK).step_by(BLOCK) {
            // Element numbers wrap at 2^32 as in the portable code.
            let n = |off: usize| (e as u32).wrapping_add(off as u32);
            // SAFETY: e + 64 <= a.len(); e / 8 * W + 7W + 16 <= body.len() by `fit`.
            unsafe {
                let c0 = codes16(_mm512_loadu_ps(a.as_ptr().add(e)), n(0), &k);
                let c1 = codes16(_mm512_loadu_ps(a.as_ptr().add(e + 16)), n(16), &k);
                let c2 = codes16(_mm512_loadu_ps(a.as_ptr().add(e + 32)), n(32), &k);
                let c3 = codes16(_mm512_loadu_ps(a.as_ptr().add(e + 48)), n(48), &k);
                store32::<W>(c0, c1, body.as_mut_ptr().add(e / 8 * W), &k);
                store32::<W>(c2, c3, body.as_mut_ptr().add((e + 32) / 8 * W), &k);
            }
        }
        blocks * BLOCK
    }
}

/// min |a_i|, max |a_i| and whether every element is finite. Magnitudes
/// are compared as integers (the bits of a non-negative f32 order like
/// its value, and Inf and NaN sort above every finite value), so the scan
/// is one integer min and max per element in 32 lanes and vectorizes.
#[inline(always)]
fn bounds(a: &[f32]) -> (f32, f32, bool) {
    const LANES: usize = 32;
    let (mut lo, mut hi) = ([u32::MAX; LANES], [0u32; LANES]);
    let chunks = a.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            let m = c[i].to_bits() & 0x7fff_ffff;
            lo[i] = lo[i].min(m);
            hi[i] = hi[i].max(m);
        }
    }
    let (mut l, mut h) = (lo.into_iter().fold(u32::MAX, u32::min), hi.into_iter().fold(0, u32::max));
    for &x in tail {
        let m = x.to_bits() & 0x7fff_ffff;
        (l, h) = (l.min(m), h.max(m));
    }
    (f32::from_bits(l), f32::from_bits(h), h < 0x7f80_0000)
}

multiversion!(fn bounds_dispatch = bounds(a: &[f32]) -> (f32, f32, bool));
multiversion!(fn pack_bits_dispatch = pack_bits(a: &[f32], base: u32, width: u32, g: Grid, body: &mut [u8], at: usize));

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
    // Every byte is written below: a reused buffer is not cleared first.
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
                _ => pack_bits_dispatch(head, 0, width as u32, g, body, 0),
            }
        };
    }
    by_width!(2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    // The last partial block (and every block at 17 bits): a plain bit writer.
    if !rest.is_empty() {
        pack_bits_dispatch(rest, whole as u32, width as u32, g, body, whole * width / 8);
    }
    Ok(())
}

/// Packs `a` (elements from `base` on) at `width` bits per code from byte
/// `at` of `body` (blocks are whole bytes: 64 codes of W bits), 32 bits at
/// a time through a u64 accumulator.
#[inline(always)]
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

    /// The AVX-512 kernel writes the same bytes as the portable code at
    /// every width it handles (where this CPU has AVX-512).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn simd_kernel_matches_portable_code() {
        use std::arch::is_x86_feature_detected as has;
        if !(has!("avx512f") && has!("avx512bw") && has!("avx512vl")) {
            eprintln!("no AVX-512 here: nothing to compare");
            return;
        }
        let a: Vec<f32> =
            (0..BLOCK * 37).map(|i| ((i as f32 * 0.7548).sin() * 3.0) * if i % 5 == 0 { -1.0 } else { 1.0 }).collect();
        let (lo, hi, _) = bounds(&a);
        macro_rules! widths {
            ($($w:literal)*) => {$({
                let levels = ((1u32 << ($w - 1)) - 1) as f32;
                let g = Grid { lo, inv: levels / (hi - lo), max_k: (1 << ($w - 1)) - 1, seed: 0x1234_5678 };
                let mut want = vec![0u8; a.len() / 8 * $w];
                pack_blocks::<$w>(&a, 0, g, &mut want);
                let mut got = vec![0xAAu8; want.len()];
                // SAFETY: the features were detected above.
                let done = unsafe { x86::pack_blocks::<$w>(&a, g, &mut got) };
                assert!(done >= a.len() - BLOCK, "W = {}: the kernel left {} elements", $w, a.len() - done);
                pack_blocks::<$w>(&a[done..], done as u32, g, &mut got[done / 8 * $w..]);
                assert_eq!(got, want, "W = {}", $w);
            })*};
        }
        widths!(2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
    }

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
