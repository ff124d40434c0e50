//! The estimated peak memory of a run, from the sizes that drive it, so
//! that a scenario that cannot fit is refused before anything is
//! allocated, naming the fields to shrink.

use super::Scenario;

/// Bytes per device of the simulation's state: position, draws, the
/// availability process and its online index, the per-device trace rows
/// buffered; about 200 B as docs/history.md's measurements found it
/// (`million-devices.toml`: 10^6 devices in 212-219 MiB peak RSS), rounded
/// up [B].
pub const DEVICE_BYTES: u64 = 320;

/// Bytes per candidate and resource block of one round's allocation: the
/// gains (8 B) and the allocators' per-(candidate, RB) tables (values,
/// powers and bits over up to 16 levels), rounded up [B].
pub const CANDIDATE_RB_BYTES: u64 = 8 * 24;

/// A run's estimated peak memory, by what drives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// `devices.count` x [`DEVICE_BYTES`] [B].
    pub devices_bytes: u64,
    /// Candidates a round x resource blocks x [`CANDIDATE_RB_BYTES`] [B].
    pub allocation_bytes: u64,
    /// A fixed share: the program, thread stacks, trace buffers [B].
    pub base_bytes: u64,
}

impl Estimate {
    /// [B]
    pub fn total(&self) -> u64 {
        self.devices_bytes.saturating_add(self.allocation_bytes).saturating_add(self.base_bytes)
    }

    /// The field that drives the larger part.
    pub fn driver(&self) -> &'static str {
        if self.devices_bytes >= self.allocation_bytes { "devices.count" } else { "network.rb_count" }
    }

    /// The driving field's value in `s`.
    pub fn driver_value(&self, s: &Scenario) -> u64 {
        if self.devices_bytes >= self.allocation_bytes { s.devices.count as u64 } else { s.network.rb_count as u64 }
    }

    /// One line: the estimate, its parts, and the machine's memory.
    pub fn describe(&self) -> String {
        format!(
            "estimated peak memory {} (devices.count: {}, run.candidates x network.rb_count per round: {}, base: {}; \
             the simulation only: training adds its model and data)",
            gib(self.total()),
            gib(self.devices_bytes),
            gib(self.allocation_bytes),
            gib(self.base_bytes)
        )
    }

    /// Why a machine of `machine` bytes cannot run it.
    pub fn refusal(&self, machine: u64) -> String {
        format!(
            "a scenario that fits this machine's {} of memory: {}; lower devices.count, run.candidates or \
             network.rb_count",
            gib(machine),
            self.describe()
        )
    }
}

fn gib(b: u64) -> String {
    if b >= 1 << 30 { format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64) } else { format!("{} MiB", b >> 20) }
}

/// The estimate for `s` with `rb_count` resource blocks in its largest cell.
pub fn estimate(s: &Scenario, rb_count: usize) -> Estimate {
    let devices = s.devices.count as u64;
    let candidates = (s.run.candidates as u64).min(devices);
    Estimate {
        devices_bytes: devices.saturating_mul(DEVICE_BYTES),
        allocation_bytes: candidates.saturating_mul(rb_count as u64).saturating_mul(CANDIDATE_RB_BYTES),
        base_bytes: 64 << 20,
    }
}

/// The estimate for `s` with `rb_count` resource blocks in its largest
/// cell and this machine's memory [B], when the estimate exceeds it.
pub fn over_machine(s: &Scenario, rb_count: usize) -> Option<(Estimate, u64)> {
    let m = machine_bytes()?;
    let est = estimate(s, rb_count);
    (est.total() > m).then_some((est, m))
}

/// This machine's memory [B] (`MemTotal` of /proc/meminfo), when known;
/// read once per process (every scenario load checks against it).
pub fn machine_bytes() -> Option<u64> {
    static TOTAL: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_larger_part_names_its_field() {
        let mut s = Scenario::default();
        s.devices.count = 1_000_000;
        s.run.candidates = 100;
        let e = estimate(&s, 100);
        assert_eq!(e.devices_bytes, 320_000_000);
        assert_eq!(e.allocation_bytes, 100 * 100 * 192);
        assert_eq!(e.driver(), "devices.count");
        let e = estimate(&s, 1_000_000);
        assert_eq!(e.driver(), "network.rb_count");
        assert!(e.refusal(1 << 30).contains("1.0 GiB"));
    }
}
