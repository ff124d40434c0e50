//! [`CoLearner`]: the learning half inside the simulation
//! (`sflam_core::engine::Learner`).

use crate::config::Scenario;
use crate::error::Result;
use crate::framework::{Framework, ModelState, RoundStats, Work, framework};
use crate::import;
use crate::params::weighted_average_model;
use crate::settings::{initial_state, trainer_of};
use crate::training::{Params, Trainer};
use std::collections::BTreeMap;

/// The learning half inside the simulation (`training.enabled`): the
/// engine hands it each round's finished participants, their bits and
/// cells, and how to aggregate (flat, or edge servers every round and the
/// cloud every `backhaul.cloud_every` rounds).
pub struct CoLearner {
    trainer: Trainer,
    fw: Box<dyn Framework>,
    state: ModelState,
    /// Hierarchical aggregation: each cell's edge model since the cloud's
    /// last aggregation, with its weight (the samples of the devices its
    /// latest edge round averaged) [samples].
    edges: BTreeMap<u32, (Params, f64)>,
    eval_every: u32,
    rounds: u32,
    import: Option<import::ImportReport>,
}

impl CoLearner {
    pub fn new(s: &Scenario) -> Result<CoLearner> {
        let trainer = trainer_of(s)?;
        let (state, import) = initial_state(s, &trainer)?;
        Ok(CoLearner {
            fw: framework(s.training.framework),
            trainer,
            state,
            edges: BTreeMap::new(),
            import,
            eval_every: s.training.eval_every,
            rounds: s.run.rounds,
        })
    }
}

impl CoLearner {
    /// Hierarchical aggregation: the framework's round runs per cell,
    /// from the cell's edge model (the global model when the cloud has
    /// aggregated since), and its result becomes the edge model; with
    /// `cloud`, the edge models are then averaged into the global model
    /// (weighted by their samples) and the edge models dropped.
    fn edge_round(&mut self, round: u32, finished: &[crate::engine::Finished], cloud: bool) -> Result<RoundStats> {
        let mut by_cell: BTreeMap<u32, Vec<Work>> = BTreeMap::new();
        for f in finished {
            by_cell.entry(f.cell).or_default().push(Work { device: f.device.0, bits: f.bits });
        }
        let mut stats = RoundStats::default();
        for (cell, work) in by_cell {
            let start = self.edges.get(&cell).map_or_else(|| self.state.global.clone(), |e| e.0.clone());
            let mut st = ModelState { global: start, local: std::mem::take(&mut self.state.local) };
            let s = self.fw.round(&self.trainer, &mut st, round, &work);
            self.state.local = st.local;
            let s = s?;
            let weight = work.iter().map(|w| self.trainer.samples(w.device) as f64).sum();
            self.edges.insert(cell, (st.global, weight));
            stats.devices.extend(s.devices);
            stats.losses.extend(s.losses);
            stats.wire_bytes.extend(s.wire_bytes);
            stats.loss_scale_halvings.extend(s.loss_scale_halvings);
        }
        if cloud {
            let items: Vec<(f64, &Params)> = self.edges.values().map(|(p, w)| (*w, p)).collect();
            if let Some(global) = weighted_average_model(&items) {
                self.state.global = global;
            }
            self.edges.clear();
        }
        Ok(stats)
    }
}

impl crate::engine::Learner for CoLearner {
    fn data(&self) -> (Vec<u64>, Vec<Vec<u32>>) {
        let t = &self.trainer;
        (t.parts.iter().map(|p| p.len() as u64).collect(), t.parts.iter().map(|p| t.train.class_counts(p)).collect())
    }

    fn round(
        &mut self,
        round: u32,
        finished: &[crate::engine::Finished],
        aggregation: crate::engine::Aggregation,
    ) -> Result<crate::engine::Learned> {
        use crate::engine::Aggregation;
        let stats = match aggregation {
            Aggregation::Flat => {
                let work: Vec<Work> = finished.iter().map(|f| Work { device: f.device.0, bits: f.bits }).collect();
                self.fw.round(&self.trainer, &mut self.state, round, &work)?
            }
            Aggregation::Edge | Aggregation::EdgeAndCloud => {
                self.edge_round(round, finished, aggregation == Aggregation::EdgeAndCloud)?
            }
        };
        let last = round + 1 == self.rounds;
        let acc = if (round + 1).is_multiple_of(self.eval_every) || last {
            Some(self.fw.evaluate(&self.trainer, &self.state)?.accuracy)
        } else {
            None
        };
        Ok(stats.learned(acc))
    }

    fn init_report(&self) -> Option<serde_json::Value> {
        self.import.as_ref().and_then(|r| serde_json::to_value(r).ok())
    }
}
