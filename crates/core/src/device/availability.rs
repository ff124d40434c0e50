//! The per-device on/off process: exponential online and offline
//! durations, or a trace of online intervals ([`super::trace`]). Each
//! device has one pending toggle event in the kernel, which is what makes
//! a million-device run carry a million pending events.

use super::trace::Trace;
use crate::config::{AvailabilityConfig, AvailabilityModel};
use crate::device::DeviceId;
use crate::error::Result;
use crate::sim::rng::Rng;
use rand::Rng as _;
use rand_distr::{Distribution, Exp};

/// Online flags plus an index of the online devices, so a candidate pool is
/// sampled in O(pool) and a toggle costs O(1).
pub struct Availability {
    /// Position in `online_list`, or `u32::MAX` when offline.
    pos: Vec<u32>,
    online_list: Vec<DeviceId>,
    on: Exp<f64>,
    off: Exp<f64>,
    enabled: bool,
    p_online: f64,
    /// `availability.model = "trace"`: the intervals.
    trace: Option<Trace>,
}

impl Availability {
    pub fn new(cfg: &AvailabilityConfig, n: usize) -> Availability {
        let on = Exp::new(1.0 / cfg.mean_online_s).expect("validated mean");
        let off = Exp::new(1.0 / cfg.mean_offline_s).expect("validated mean");
        Availability {
            pos: vec![u32::MAX; n],
            online_list: Vec::with_capacity(n),
            on,
            off,
            enabled: cfg.enabled,
            p_online: cfg.mean_online_s / (cfg.mean_online_s + cfg.mean_offline_s),
            trace: None,
        }
    }

    /// The process of the scenario: with `availability.model = "trace"`,
    /// the intervals of `availability.file` (read and checked here).
    pub fn build(cfg: &AvailabilityConfig, n: usize) -> Result<Availability> {
        let mut a = Availability::new(cfg, n);
        if cfg.enabled && cfg.model == AvailabilityModel::Trace {
            a.trace = Some(Trace::read(std::path::Path::new(&cfg.file), n)?);
        }
        Ok(a)
    }

    /// Initial state of device `id` drawn from the stationary distribution;
    /// returns the time to its first toggle [s] (memoryless residual), or
    /// `None` when the process is off.
    pub fn init(&mut self, id: DeviceId, rng: &mut Rng) -> Option<f64> {
        if !self.enabled {
            self.set_online(id, true);
            return None;
        }
        if let Some(t) = self.trace.as_mut() {
            let (online, next_ns) = t.init(id.idx());
            self.set_online(id, online);
            return next_ns.map(|v| v as f64 * 1e-9);
        }
        let online = rng.random::<f64>() < self.p_online;
        self.set_online(id, online);
        Some(self.duration_s(online, rng))
    }

    /// Flips device `id`; returns the new state and the duration of it [s]
    /// (None: a trace that has no more boundaries for it).
    pub fn toggle(&mut self, id: DeviceId, rng: &mut Rng) -> (bool, Option<f64>) {
        if let Some(t) = self.trace.as_mut() {
            let (online, next_ns) = t.toggle(id.idx());
            self.set_online(id, online);
            return (online, next_ns.map(|v| v as f64 * 1e-9));
        }
        let online = !self.is_online(id);
        self.set_online(id, online);
        (online, Some(self.duration_s(online, rng)))
    }

    fn duration_s(&self, online: bool, rng: &mut Rng) -> f64 {
        if online { self.on.sample(rng) } else { self.off.sample(rng) }
    }

    pub fn is_online(&self, id: DeviceId) -> bool {
        self.pos[id.idx()] != u32::MAX
    }

    /// Devices online now, in a deterministic (event-driven) order.
    pub fn online(&self) -> &[DeviceId] {
        &self.online_list
    }

    fn set_online(&mut self, id: DeviceId, online: bool) {
        let i = id.idx();
        match (self.pos[i] != u32::MAX, online) {
            (false, true) => {
                self.pos[i] = self.online_list.len() as u32;
                self.online_list.push(id);
            }
            (true, false) => {
                let p = self.pos[i] as usize;
                self.online_list.swap_remove(p);
                if let Some(moved) = self.online_list.get(p) {
                    self.pos[moved.idx()] = p as u32;
                }
                self.pos[i] = u32::MAX;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rng::stream;

    #[test]
    fn index_stays_consistent() {
        let cfg = AvailabilityConfig { enabled: true, mean_online_s: 1.0, mean_offline_s: 1.0, ..Default::default() };
        let mut a = Availability::new(&cfg, 50);
        let mut rng = stream(1, "t", 0);
        for i in 0..50 {
            a.init(DeviceId(i), &mut rng);
        }
        for k in 0..1000u32 {
            a.toggle(DeviceId(k * 7 % 50), &mut rng);
            let online = a.online().len();
            let flagged = (0..50).filter(|&i| a.is_online(DeviceId(i))).count();
            assert_eq!(online, flagged);
            for (p, d) in a.online().iter().enumerate() {
                assert_eq!(a.pos[d.idx()] as usize, p);
            }
        }
    }
}
