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

/// Quantizes `a` at `bits` (1..=16) with stochastic rounding keyed by
/// `key`, and packs it: `[a_min: f32 LE][a_max: f32 LE]` then, per element,
/// the sign bit followed by the b-bit level index, least significant bit
/// first. Errors on non-finite input or bits outside 1..=16.
pub fn quantize_pack(a: &[f32], bits: u32, key: u64) -> Result<Vec<u8>> {
    if !(1..=16).contains(&bits) {
        return Err(Error::Input(format!("quantization bits {bits}: allowed 1..=16")));
    }
    let (mut lo, mut hi) = (f32::INFINITY, 0f32);
    let mut finite = true;
    for &x in a {
        let m = x.abs();
        finite &= m.is_finite();
        lo = lo.min(m);
        hi = hi.max(m);
    }
    if !finite {
        return Err(Error::Numeric { checkpoint: "quant.input", detail: "non-finite activation".into() });
    }
    if a.is_empty() {
        lo = 0.0;
    }
    let levels = ((1u32 << bits) - 1) as f32;
    let delta = (hi - lo) / levels;
    let inv = if delta > 0.0 { 1.0 / delta } else { 0.0 };
    let total_bits = payload_bits(a.len() as u64, bits);
    let mut out = vec![0u8; wire_bytes(total_bits) as usize];
    out[..4].copy_from_slice(&lo.to_le_bytes());
    out[4..8].copy_from_slice(&hi.to_le_bytes());
    let body = &mut out[8..];
    let width = bits + 1;
    let max_k = (1u32 << bits) - 1;
    // Bit writer: at most 31 pending bits + 17 new ones fit in a u64.
    let (mut acc, mut filled, mut at) = (0u64, 0u32, 0usize);
    for (pair, xs) in a.chunks(2).enumerate() {
        // 32 random bits per element: one SplitMix64 call serves two.
        let rnd = splitmix(key ^ ((2 * pair) as u64).wrapping_mul(0xD2B7_4407_B1CE_6E93));
        for (j, &x) in xs.iter().enumerate() {
            let u = (rnd >> (32 * j)) as u32 as f32 * (1.0 / 4_294_967_296.0);
            // pos >= 0 because |x| >= lo; the cast truncates = floors.
            let pos = (x.abs() - lo) * inv;
            let k0 = pos as u32;
            // Up with probability pos - k0: unbiased.
            let k = (k0 + (u < pos - k0 as f32) as u32).min(max_k);
            acc |= ((x.to_bits() >> 31) as u64 | ((k as u64) << 1)) << filled;
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
    Ok(out)
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
