//! The backend's device (flex on the CPU, wgpu on a GPU) and the number
//! formats it supports.

use super::*;

/// The Burn device of a backend, or why it is not in this build or on
/// this machine. `gpu_kind` and `gpu_index` pick the Vulkan device of
/// `"wgpu"`.
pub fn backend_device(kind: BackendKind, gpu_kind: GpuKind, gpu_index: usize) -> Result<burn::tensor::Device> {
    match kind {
        BackendKind::Flex => Ok(burn::tensor::Device::flex()),
        // Deprecated upstream; kept opt-in because users asked for it.
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        BackendKind::Ndarray => Ok(burn::tensor::Device::ndarray()),
        #[cfg(not(feature = "ndarray"))]
        BackendKind::Ndarray => Err(Error::Input(
            "training.backend = \"ndarray\": this build has no ndarray backend; \
             rebuild with `cargo build --release --features ndarray`, or use \"flex\""
                .into(),
        )),
        #[cfg(feature = "libtorch")]
        // Deprecated upstream (Burn points to CubeCL and flex); opt-in, measured.
        #[allow(deprecated)]
        BackendKind::LibTorch => Ok(burn::tensor::Device::libtorch()),
        #[cfg(not(feature = "libtorch"))]
        BackendKind::LibTorch => Err(Error::Input(
            "training.backend = \"libtorch\": this build has no LibTorch backend; rebuild with \
             `LIBTORCH_USE_PYTORCH=1 cargo build --release --features libtorch` beside PyTorch 2.9.0, or use \"flex\""
                .into(),
        )),
        #[cfg(feature = "gpu")]
        BackendKind::Wgpu => gpu_device(gpu_kind, gpu_index),
        #[cfg(not(feature = "gpu"))]
        BackendKind::Wgpu => Err(Error::Input(format!(
            "training.backend = \"wgpu\" (training.gpu_kind = \"{gpu_kind}\", training.gpu_index = {gpu_index}): \
             this build has no GPU backend; rebuild with `cargo build --release --features gpu`, or use \"flex\""
        ))),
    }
}

/// Whether `device` (of `backend`) computes in `p`'s number format: a
/// clear error naming both settings and the formats it has, instead of a
/// panic at the first cast.
pub fn check_precision(device: &Device, p: Precision, backend: BackendKind) -> Result<()> {
    precision_on(p, backend, |p| crate::model::half_dtype(p).is_none_or(|t| device.supports_dtype(t)))
}

/// [`check_precision`] for a device that computes in the formats `has`
/// says.
pub(super) fn precision_on(p: Precision, backend: BackendKind, has: impl Fn(Precision) -> bool) -> Result<()> {
    if has(p) {
        return Ok(());
    }
    let allowed: Vec<String> = Precision::ALL.iter().filter(|q| has(**q)).map(|q| format!("\"{q}\"")).collect();
    Err(Error::Input(format!(
        "training.precision = \"{p}\": training.backend = \"{backend}\" does not compute in {p} on this device; \
         allowed here: {}",
        allowed.join(", ")
    )))
}

/// The Vulkan device `index` of `kind`, opened once here so that a
/// machine without one (no driver, no Vulkan loader, no such index) is a
/// clear error instead of a panic deep inside the first training step:
/// Burn's wgpu runtime opens its device lazily and panics when it cannot.
#[cfg(feature = "gpu")]
pub(super) fn gpu_device(kind: GpuKind, index: usize) -> Result<burn::tensor::Device> {
    use burn::tensor::DeviceKind;
    let (selector, what) = match kind {
        GpuKind::Discrete => (DeviceKind::DiscreteGpu(index), format!("discrete GPU {index}")),
        GpuKind::Integrated => (DeviceKind::IntegratedGpu(index), format!("integrated GPU {index}")),
        GpuKind::Virtual => (DeviceKind::VirtualGpu(index), format!("virtual GPU {index}")),
        // Burn selects Vulkan's CPU device without an index (a scenario
        // refuses one at load; this is for callers of the library).
        GpuKind::Cpu if index != 0 => {
            return Err(Error::Input(format!(
                "training.gpu_index = {index}: 0 when training.gpu_kind = \"cpu\" (training.backend = \"wgpu\")"
            )));
        }
        GpuKind::Cpu => (DeviceKind::Cpu, "CPU device".to_string()),
    };
    let device = burn::tensor::Device::vulkan(selector);
    let probe = device.clone();
    // The probe's panics (the runtime's own thread's first, then this
    // thread's) are the expected answer on such a machine: their messages
    // are kept for the error instead of printed, then the hook is restored.
    let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let hook = std::panic::take_hook();
    let sink = said.clone();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        if let Ok(mut v) = sink.lock() {
            v.push(msg);
        }
    }));
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        Tensor::<1>::ones([1], &probe).into_scalar::<f32>()
    }));
    std::panic::set_hook(hook);
    match opened {
        Ok(1.0) => Ok(device),
        Ok(v) => Err(Error::failure(
            format!("training.backend = \"wgpu\": Vulkan {what} answered {v} for 1.0"),
            "the GPU backend computed a wrong value",
        )),
        Err(_) => {
            let said = said.lock().map(|v| v.join("; ")).unwrap_or_default();
            Err(Error::Input(format!(
                "training.backend = \"wgpu\": no Vulkan {what} on this machine \
                 (training.gpu_kind = \"{kind}\", training.gpu_index = {index}; \
                 is a Vulkan driver and loader installed?): {said}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device without bf16 (wgpu's Vulkan, whose bf16 has no
    /// arithmetic in CubeCL 0.11) refuses it naming both settings and the
    /// formats it has, and takes the others; flex has all three.
    #[test]
    fn a_format_the_device_lacks_is_refused_with_the_ones_it_has() {
        let vulkan = |p: Precision| p != Precision::Bf16;
        let e = precision_on(Precision::Bf16, BackendKind::Wgpu, vulkan).unwrap_err().to_string();
        for part in ["training.precision = \"bf16\"", "training.backend = \"wgpu\"", "allowed here: \"f32\", \"f16\""] {
            assert!(e.contains(part), "{e}");
        }
        assert!(matches!(precision_on(Precision::Bf16, BackendKind::Wgpu, vulkan), Err(Error::Input(_))));
        for p in [Precision::F32, Precision::F16] {
            assert!(precision_on(p, BackendKind::Wgpu, vulkan).is_ok());
        }
        for &p in Precision::ALL {
            assert!(check_precision(&Device::flex(), p, BackendKind::Flex).is_ok(), "flex computes in {p}");
        }
    }
}
