//! What each learning framework means for the network, declared once
//! (Flower's `Strategy` is the model: one object per framework owns what
//! that framework decides). The engine, the allocator choice, validation
//! and the traces read these profiles; no `match` on the framework is
//! needed anywhere else on the simulator side. The learning of each
//! framework is `sflam_train::framework`.

use super::{AllocatorKind, FrameworkKind};

/// What a framework uploads once per round besides its activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upload {
    /// Nothing (`ll`).
    Nothing,
    /// The device-side model, fp32 (`sl` hands it on to the next device).
    DeviceSide,
    /// The device-side model, fp32, when `network.model_upload` (`sflam`, `sfl`).
    DeviceSideIfConfigured,
    /// The whole model, fp32 (`fl`).
    WholeModel,
}

/// Who plans a round's power, bits and RBs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planner {
    /// The scenario's `allocator.name` (`sflam`).
    Configured,
    /// The fp32 counterpart of the scenario's allocator: `ep` -> p_max at
    /// fp32, `fixed` -> fixed at 32 bits, anything else -> `nq` (power and
    /// matching optimized) (`sfl`, `sl`, `fl`).
    Fp32Counterpart,
    /// `fixed` at 32 bits, only to fill the RBs: nothing is sent (`ll`).
    FillOnly,
}

/// One framework's network behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    pub kind: FrameworkKind,
    /// Cut after the patch embedding: activations go up and gradients come
    /// down every iteration. Otherwise the whole model trains on the device.
    pub split: bool,
    /// Devices train one at a time, each starting when the one before it
    /// finishes or fails (`sl`); otherwise in parallel.
    pub relay: bool,
    /// Activations travel at the allocator's bits; otherwise fp32.
    pub quantized: bool,
    pub upload: Upload,
    pub planner: Planner,
}

const PROFILES: &[Profile] = &[
    Profile {
        kind: FrameworkKind::Sflam,
        split: true,
        relay: false,
        quantized: true,
        upload: Upload::DeviceSideIfConfigured,
        planner: Planner::Configured,
    },
    Profile {
        kind: FrameworkKind::Sfl,
        split: true,
        relay: false,
        quantized: false,
        upload: Upload::DeviceSideIfConfigured,
        planner: Planner::Fp32Counterpart,
    },
    Profile {
        kind: FrameworkKind::Sl,
        split: true,
        relay: true,
        quantized: false,
        upload: Upload::DeviceSide,
        planner: Planner::Fp32Counterpart,
    },
    Profile {
        kind: FrameworkKind::Fl,
        split: false,
        relay: false,
        quantized: false,
        upload: Upload::WholeModel,
        planner: Planner::Fp32Counterpart,
    },
    Profile {
        kind: FrameworkKind::Ll,
        split: false,
        relay: false,
        quantized: false,
        upload: Upload::Nothing,
        planner: Planner::FillOnly,
    },
];

/// How a round is planned: an allocator and the bits it must use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The allocator as configured.
    Configured(AllocatorKind),
    /// `fixed` at these bits (32 = fp32).
    FixedAt(u32),
    /// `ep` with fp32 activations.
    EqualPowerFp32,
    /// `nq`: fp32 activations, power and matching optimized.
    NoQuantization,
}

impl Plan {
    /// The name the summary records for the allocator that ran.
    pub fn name(self) -> String {
        match self {
            Plan::Configured(k) => k.as_str().to_string(),
            Plan::FixedAt(b) => format!("fixed@{b}"),
            Plan::EqualPowerFp32 => "ep@32".to_string(),
            Plan::NoQuantization => "nq".to_string(),
        }
    }
}

impl FrameworkKind {
    /// This framework's network behaviour.
    pub fn profile(self) -> &'static Profile {
        PROFILES.iter().find(|p| p.kind == self).expect("every framework has a profile (unit test)")
    }
}

impl Profile {
    /// The plan of a round given the configured allocator.
    pub fn plan(&self, configured: AllocatorKind) -> Plan {
        match (self.planner, configured) {
            (Planner::Configured, k) => Plan::Configured(k),
            (Planner::FillOnly, _) | (Planner::Fp32Counterpart, AllocatorKind::Fixed) => Plan::FixedAt(32),
            (Planner::Fp32Counterpart, AllocatorKind::Ep) => Plan::EqualPowerFp32,
            (Planner::Fp32Counterpart, _) => Plan::NoQuantization,
        }
    }

    /// Activation elements sent per iteration [1]: `batch x cut` for a
    /// split framework, none otherwise.
    pub fn activation_elements(&self, batch: usize, cut_elements: usize) -> u64 {
        if self.split { (batch * cut_elements) as u64 } else { 0 }
    }

    /// Bits uploaded once per round besides activations [bit], from the
    /// model's parameter counts [1].
    pub fn extra_upload_bits(&self, device_params: usize, server_params: usize, model_upload: bool) -> u64 {
        match self.upload {
            Upload::Nothing => 0,
            Upload::DeviceSide => 32 * device_params as u64,
            Upload::DeviceSideIfConfigured if model_upload => 32 * device_params as u64,
            Upload::DeviceSideIfConfigured => 0,
            Upload::WholeModel => 32 * (device_params + server_params) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_profile_per_framework() {
        for &k in FrameworkKind::ALL {
            assert_eq!(k.profile().kind, k);
        }
        assert_eq!(PROFILES.len(), FrameworkKind::ALL.len());
    }

    #[test]
    fn plans_are_the_fp32_counterparts() {
        use AllocatorKind::*;
        let p = |f: FrameworkKind, a| f.profile().plan(a);
        assert_eq!(p(FrameworkKind::Sflam, Bcd), Plan::Configured(Bcd));
        assert_eq!(p(FrameworkKind::Sfl, Fixed), Plan::FixedAt(32));
        assert_eq!(p(FrameworkKind::Sl, Ep), Plan::EqualPowerFp32);
        assert_eq!(p(FrameworkKind::Fl, Exact), Plan::NoQuantization);
        assert_eq!(p(FrameworkKind::Ll, Bcd), Plan::FixedAt(32));
    }
}
