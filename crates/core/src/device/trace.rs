//! `availability.model = "trace"`: each device online exactly in the
//! intervals of a table (`availability.file`: `device`, `start_s`,
//! `end_s`, optionally `period_s` for a cyclic trace, as FedScale's
//! `finish_time`). Boundaries are kept in integer nanoseconds, so the
//! toggles land on them exactly, however many cycles pass.

use crate::error::{Error, Result};
use crate::geo::{Column, read_columns};
use std::path::Path;

/// The columns of an availability table.
pub const COLUMNS: [Column; 4] = [
    Column::required("device", 0.0, 4_294_967_295.0),
    Column::required("start_s", 0.0, 1e9),
    Column::required("end_s", 0.0, 1e9),
    Column::optional("period_s", 0.0, 1e9),
];

/// Every device's boundaries, flat: device `d`'s are
/// `bounds_ns[offsets[d]..offsets[d + 1]]`, start and end alternating.
pub struct Trace {
    offsets: Vec<u32>,
    bounds_ns: Vec<u64>,
    /// Cycle length [ns]; 0: the trace does not repeat.
    period_ns: Vec<u64>,
    /// Index (within the device's bounds) of its next boundary.
    cursor: Vec<u32>,
    /// Completed cycles [1].
    cycle: Vec<u64>,
    /// A cyclic trace whose last interval ends at the period and whose
    /// first starts at 0: online across the wrap, no toggle there.
    joined: Vec<bool>,
}

fn ns(s: f64) -> u64 {
    (s * 1e9).round() as u64
}

impl Trace {
    /// Reads the table for devices `0..n` (rows of other devices are
    /// ignored); every device needs at least one interval.
    pub fn read(path: &Path, n: usize) -> Result<Trace> {
        let at = format!("{} (availability.file)", path.display());
        let cols = read_columns(path, "availability.file", &COLUMNS)?;
        let (ids, start, end) = (&cols["device"], &cols["start_s"], &cols["end_s"]);
        let period = cols.get("period_s");
        let mut rows: Vec<(u32, f64, f64, usize)> = Vec::new();
        let mut dev_period: Vec<Option<(f64, usize)>> = vec![None; n];
        for i in 0..ids.len() {
            let row = i + 1;
            if ids[i].fract() != 0.0 {
                return Err(Error::Input(format!("{at}: row {row}: column `device` = {}: an integer id", ids[i])));
            }
            if end[i] <= start[i] {
                return Err(Error::Input(format!(
                    "{at}: row {row}: column `end_s` = {} is not after `start_s` = {}: an interval is [start, end), start < end",
                    end[i], start[i]
                )));
            }
            let d = ids[i] as usize;
            if d >= n {
                continue;
            }
            let p = period.map_or(0.0, |p| p[i]);
            if p > 0.0 && end[i] > p {
                return Err(Error::Input(format!(
                    "{at}: row {row}: column `end_s` = {} is past `period_s` = {p}: a cyclic trace's intervals lie within [0, period_s]",
                    end[i]
                )));
            }
            match dev_period[d] {
                Some((q, r)) if q != p => {
                    return Err(Error::Input(format!(
                        "{at}: row {row}: column `period_s` = {p}: device {d} has period_s = {q} in row {r}; one period per device"
                    )));
                }
                _ => dev_period[d] = Some((p, row)),
            }
            rows.push((d as u32, start[i], end[i], row));
        }
        if let Some(d) = dev_period.iter().position(|p| p.is_none()) {
            return Err(Error::Input(format!(
                "{at}: no interval for device {d}: every device 0..devices.count = {n} needs at least one \
                 (a device never online: an interval outside the run, or fewer devices)"
            )));
        }
        rows.sort_by(|a, b| (a.0, a.1).partial_cmp(&(b.0, b.1)).expect("finite"));
        let mut t = Trace {
            offsets: Vec::with_capacity(n + 1),
            bounds_ns: Vec::with_capacity(2 * rows.len()),
            period_ns: dev_period.iter().map(|p| ns(p.expect("checked").0)).collect(),
            cursor: vec![0; n],
            cycle: vec![0; n],
            joined: vec![false; n],
        };
        let mut k = 0;
        for d in 0..n as u32 {
            t.offsets.push(t.bounds_ns.len() as u32);
            let mut last: Option<(f64, usize)> = None;
            while k < rows.len() && rows[k].0 == d {
                let (_, s, e, row) = rows[k];
                if let Some((prev_end, prev_row)) = last {
                    if s < prev_end {
                        return Err(Error::Input(format!(
                            "{at}: row {row}: device {d}'s interval [{s}, {e}) overlaps its interval ending at {prev_end} (row {prev_row})"
                        )));
                    }
                    if s == prev_end {
                        // Touching intervals are one.
                        *t.bounds_ns.last_mut().expect("an end") = ns(e);
                        last = Some((e, row));
                        k += 1;
                        continue;
                    }
                }
                t.bounds_ns.push(ns(s));
                t.bounds_ns.push(ns(e));
                last = Some((e, row));
                k += 1;
            }
        }
        t.offsets.push(t.bounds_ns.len() as u32);
        for d in 0..n {
            let (b, p) = (t.bounds(d), t.period_ns[d]);
            t.joined[d] = p > 0 && b[0] == 0 && *b.last().expect("an interval") == p;
        }
        Ok(t)
    }

    fn bounds(&self, d: usize) -> &[u64] {
        &self.bounds_ns[self.offsets[d] as usize..self.offsets[d + 1] as usize]
    }

    /// The absolute time of device `d`'s boundary `cursor` in cycle `cycle` [ns].
    fn at(&self, d: usize, cursor: usize, cycle: u64) -> u64 {
        cycle * self.period_ns[d] + self.bounds(d)[cursor]
    }

    /// The boundary after `(cursor, cycle)`, wrapping to the next cycle of
    /// a cyclic trace; None after the last of a trace that does not repeat,
    /// or for a device online all the time. A joined trace skips the end
    /// at the period and the start at 0 of the next cycle.
    fn next(&self, d: usize, cursor: usize, cycle: u64) -> Option<(usize, u64)> {
        let len = self.bounds(d).len();
        let (c, y) = if cursor + 1 < len {
            (cursor + 1, cycle)
        } else if self.period_ns[d] > 0 {
            (0, cycle + 1)
        } else {
            return None;
        };
        if self.joined[d] && c == len - 1 {
            // One interval over the whole period: always online.
            return (len > 2).then_some((1, y + 1));
        }
        Some((c, y))
    }

    /// Device `d` at time 0: whether it is online, and the time of its
    /// first toggle [ns] (None: it never changes).
    pub fn init(&mut self, d: usize) -> (bool, Option<u64>) {
        let b = self.bounds(d);
        // Online at 0 iff its first interval starts at 0; the next
        // boundary is that interval's end, or the first start.
        let (online, cursor) = if b[0] == 0 { (true, 1) } else { (false, 0) };
        if self.joined[d] && b.len() == 2 {
            return (true, None);
        }
        self.cursor[d] = cursor as u32;
        (online, Some(self.at(d, cursor, 0)))
    }

    /// Device `d` reached its next boundary: its new state (online after
    /// a start, offline after an end) and the time to the boundary after
    /// it [ns] (None: no more).
    pub fn toggle(&mut self, d: usize) -> (bool, Option<u64>) {
        let (cur, cyc) = (self.cursor[d] as usize, self.cycle[d]);
        let online = cur % 2 == 0;
        let now = self.at(d, cur, cyc);
        match self.next(d, cur, cyc) {
            Some((c, y)) => {
                self.cursor[d] = c as u32;
                self.cycle[d] = y;
                (online, Some(self.at(d, c, y) - now))
            }
            None => (online, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(csv: &str, n: usize) -> Trace {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.csv");
        std::fs::write(&f, csv).unwrap();
        Trace::read(&f, n).unwrap()
    }

    /// The first toggles of device `d` as (time [s], online after it).
    fn toggles(t: &mut Trace, d: usize, k: usize) -> (bool, Vec<(u64, bool)>) {
        let (start, mut next) = t.init(d);
        let mut now = 0u64;
        let mut out = Vec::new();
        while let (Some(dt), true) = (next, out.len() < k) {
            now += dt;
            let (online, n) = t.toggle(d);
            out.push((now / 1_000_000_000, online));
            assert_eq!(now % 1_000_000_000, 0, "on whole seconds, exactly");
            next = n;
        }
        (start, out)
    }

    #[test]
    fn cyclic_traces_join_across_the_wrap_and_always_online_never_toggles() {
        let mut t =
            trace("device,start_s,end_s,period_s\n0,0,10,70\n0,50,70,70\n1,0,70,70\n2,5,10,20\n3,0,3,0\n3,4,6,0\n", 4);
        // Device 0: online over the wrap at 70 s, off in [10, 50) of every cycle.
        let (on, v) = toggles(&mut t, 0, 4);
        assert!(on);
        assert_eq!(v, vec![(10, false), (50, true), (80, false), (120, true)]);
        // Device 1: the whole period: online, no toggle ever.
        assert_eq!(toggles(&mut t, 1, 4), (true, vec![]));
        // Device 2: [5, 10) every 20 s.
        assert_eq!(toggles(&mut t, 2, 4).1, vec![(5, true), (10, false), (25, true), (30, false)]);
        // Device 3: once, then off for good.
        assert_eq!(toggles(&mut t, 3, 9), (true, vec![(3, false), (4, true), (6, false)]));
    }
}
