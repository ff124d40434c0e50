//! Activation quantization sizes (SPEC section 2, paper eq. 8).

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
