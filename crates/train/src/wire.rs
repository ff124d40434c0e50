//! The cut layer on the wire: the device's activations go through the real
//! quantizer (`crate::quant`: stochastic rounding, bit packing, unpacking)
//! or as fp32, and the server trains on what arrives. The gradient comes
//! back straight-through: dL/d(sent) is used as dL/d(activation), since the
//! quantizer is unbiased (SPEC section 2).

use crate::error::Result;
use crate::quant;
use burn::tensor::{Device, Tensor, TensorData};

/// What crossed the uplink.
pub struct Received {
    /// The server-side input, a fresh leaf that records its gradient.
    pub input: Tensor<3>,
    /// Bytes on the wire [B]: ceil(S(b) / 8), or 4 per element in fp32.
    pub wire_bytes: u64,
}

/// Sends `activations` at `bits` (None = fp32) keyed by `key` (the
/// per-message seed of the stochastic rounding).
pub fn send(activations: &Tensor<3>, bits: Option<u32>, key: u64, device: &Device) -> Result<Received> {
    let shape = activations.shape();
    let data = activations.to_data().convert::<f32>();
    let values = data.as_slice::<f32>().expect("f32 after convert");
    let (arrived, wire_bytes) = match bits {
        Some(b) => {
            let bytes = quant::quantize_pack(values, b, key)?;
            let n = bytes.len() as u64;
            (quant::unpack(&bytes, values.len(), b)?, n)
        }
        None => (values.to_vec(), quant::wire_bytes(quant::fp32_bits(values.len() as u64))),
    };
    let input = Tensor::from_data(TensorData::new(arrived, shape), device).require_grad();
    Ok(Received { input, wire_bytes })
}
