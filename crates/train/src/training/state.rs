//! State in and out of a [`Trainer`]: the optimizer states kept per
//! device, and models saved to and loaded from Burn records.

use super::*;

impl Trainer {
    pub(super) fn optimizer(&self) -> ModuleOptimizer {
        match self.settings.optimizer {
            OptimizerKind::Sgd => crate::optim::Sgd::new(self.settings.momentum).init(),
            OptimizerKind::Adam => crate::optim::Adam::new().init(),
        }
    }

    /// The optimizer of `device`'s `half`: fresh, or its kept state.
    pub(super) fn optimizer_of(&self, device: u32, half: Half) -> Result<ModuleOptimizer> {
        if self.settings.optimizer_state == OptimizerState::Reset {
            return Ok(self.optimizer());
        }
        match self.kept().get(&(device, half)) {
            None => Ok(self.optimizer()),
            Some(bytes) => self
                .optimizer()
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.clone()))
                .map_err(|e| Error::failure(format!("device {device}'s kept {half:?} optimizer state"), e)),
        }
    }

    /// Keeps `opt` as `device`'s `half` state (`optimizer_state = "keep"`).
    pub(super) fn keep_optimizer(&self, device: u32, half: Half, opt: &ModuleOptimizer) -> Result<()> {
        if self.settings.optimizer_state == OptimizerState::Reset {
            return Ok(());
        }
        let bytes =
            opt.into_bytes().map_err(|e| Error::failure(format!("device {device}'s {half:?} optimizer state"), e))?;
        self.kept().insert((device, half), bytes.to_vec());
        Ok(())
    }

    /// Every kept optimizer state, in (device, half) order: what a
    /// checkpoint saves.
    pub fn kept_optimizers(&self) -> Vec<((u32, Half), Vec<u8>)> {
        self.kept().iter().map(|(key, v)| (*key, v.clone())).collect()
    }

    /// Replaces the kept optimizer states (a resumed checkpoint's).
    pub fn set_kept_optimizers(&self, states: Vec<((u32, Half), Vec<u8>)>) {
        *self.kept() = states.into_iter().collect();
    }

    /// The kept states. A poisoned lock (a participant's thread panicked)
    /// is taken over: every access inserts or reads one whole entry, so
    /// the map is never half-updated.
    pub(super) fn kept(&self) -> std::sync::MutexGuard<'_, BTreeMap<(u32, Half), Vec<u8>>> {
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes `p` as a Burn record (burnpack) of the whole model.
    pub fn save(&self, p: &Params, path: &std::path::Path) -> Result<()> {
        let (device_side, server_side) = self.models(p, &self.plain);
        crate::model::SplitVit { device_side, server_side }
            .save_file(path)
            .map_err(|e| Error::failure(format!("{}: saving the checkpoint", path.display()), e))
    }

    /// Reads a model saved by [`Trainer::save`].
    pub fn load(&self, path: &std::path::Path) -> Result<Params> {
        let (device_side, server_side) = self.models(&self.initial_params(), &self.plain);
        let m = crate::model::SplitVit { device_side, server_side }
            .try_load_file(path)
            .map_err(|e| Error::Input(format!("{}: not a checkpoint of {}: {e}", path.display(), self.vit.name)))?;
        Ok(Params { device: to_flat(&m.device_side), server: to_flat(&m.server_side) })
    }

    /// The whole-model template on the plain device (for imports).
    pub fn template(&self, p: &Params) -> crate::model::SplitVit {
        let (device_side, server_side) = self.models(p, &self.plain);
        crate::model::SplitVit { device_side, server_side }
    }
}
