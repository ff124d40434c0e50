//! Uplink interference between cells (`cells.interference = "full"`).
//!
//! The approximation, stated: each cell's allocator plans on SNR, knowing
//! nothing of the others; once every cell has decided, the interference on
//! a device's RB at its own site is the sum, over the devices scheduled on
//! the same RB index in the other cells of the same reuse colour, of their
//! planned power times their large-scale gain to that site (path loss and
//! the link's shadowing; fading averaged out), as if all uploads of the
//! round overlapped in time: an upper bound for uploads that do not. The
//! realized rate is then eq. 12 with noise + interference, and the
//! engine's phases run at it.

use crate::device::{DeviceId, Population};
use crate::geo::{CellId, Cells, Position};
use crate::net::PathLoss;
use rayon::prelude::*;

/// One scheduled uplink.
#[derive(Clone, Copy, Debug)]
pub struct Tx {
    pub cell: CellId,
    pub dev: DeviceId,
    /// RB index within its cell's band.
    pub rb: usize,
    /// [W]
    pub power_w: f64,
}

/// Interference [W] at each transmitter's own site, in the order of
/// `txs`. Independent of the thread count: each sum runs over the same
/// transmitters in the same order.
pub fn interference_w(cells: &Cells, pl: &dyn PathLoss, pop: &Population, txs: &[Tx]) -> Vec<f64> {
    // Co-channel groups: (colour, rb) -> transmitters, in `txs` order.
    let key = |i: usize| (cells.cells[txs[i].cell as usize].colour, txs[i].rb);
    let mut order: Vec<usize> = (0..txs.len()).collect();
    order.sort_by_key(|&i| (key(i), i));
    let mut group_of = vec![0..0; txs.len()];
    let mut start = 0;
    for g in order.chunk_by(|&a, &b| key(a) == key(b)) {
        for &i in g {
            group_of[i] = start..start + g.len();
        }
        start += g.len();
    }
    // Each transmitter's place, once: a group's members meet every other.
    let at: Vec<(Position, (f64, f64))> = txs
        .iter()
        .map(|t| {
            let p = pop.position(t.dev);
            (p, p.xy(cells))
        })
        .collect();
    (0..txs.len())
        .into_par_iter()
        .map(|i| {
            let me = txs[i];
            order[group_of[i].clone()]
                .iter()
                .filter(|&&j| txs[j].cell != me.cell)
                .map(|&j| {
                    let o = txs[j];
                    let (p, xy) = &at[j];
                    o.power_w * cells.gain_to(pl, o.dev.0, p, *xy, pop.shadowing_db[o.dev.idx()], me.cell)
                })
                .sum()
        })
        .collect()
}
