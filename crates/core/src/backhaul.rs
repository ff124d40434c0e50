//! The backhaul (multi-cell): edge servers, routers and a cloud aggregator
//! joined by links with a rate and a latency, held in a petgraph graph.
//! Every cell's edge model travels its shortest path to the cloud (by the
//! time one model takes over each link: latency + bits / rate), the global
//! model the same path back. Each link direction is a FIFO queue: a
//! transfer that reaches a link while it is busy waits; the engine turns
//! every arrival at a node into an event, so contention is simulated, not
//! estimated.

use crate::config::{BackhaulTopology, Scenario};
use crate::error::{Error, Result};
use crate::geo::{Column, read_columns};
use crate::units::{SimDuration, SimTime};
use petgraph::graph::{EdgeIndex, NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;
use std::collections::BTreeMap;
use std::path::Path;

/// One link (both directions alike).
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// [bit/s]
    pub rate_bps: f64,
    /// One-way latency [s].
    pub latency_s: f64,
}

/// A hop of a route: a link in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hop {
    pub edge: EdgeIndex,
    /// From the lower-numbered node to the higher one.
    pub forward: bool,
}

/// The graph, each cell's route to the cloud, and the queues.
pub struct Backhaul {
    graph: UnGraph<i64, Link>,
    /// Per cell: hops from its edge server to the cloud.
    up: Vec<Vec<Hop>>,
    /// When each link direction is next free.
    free_at: BTreeMap<Hop, SimTime>,
    /// Bits of one model on the wire [bit].
    model_bits: u64,
    /// [J/bit]
    energy_per_bit_j: f64,
}

impl Backhaul {
    /// The scenario's backhaul for `cells` cells carrying models of
    /// `model_bits` [bit].
    pub fn build(s: &Scenario, cells: usize, model_bits: u64) -> Result<Backhaul> {
        let b = &s.backhaul;
        let links: Vec<(i64, i64, Link)> = match b.topology {
            BackhaulTopology::Star => {
                (0..cells as i64).map(|c| (c, -1, Link { rate_bps: b.rate_bps, latency_s: b.latency_s })).collect()
            }
            BackhaulTopology::File => read_links(Path::new(&b.links_file))?,
        };
        let mut graph = UnGraph::<i64, Link>::new_undirected();
        let mut node: BTreeMap<i64, NodeIndex> = BTreeMap::new();
        for id in std::iter::once(-1).chain(0..cells as i64) {
            node.insert(id, graph.add_node(id));
        }
        for &(a, z, link) in &links {
            let na = *node.entry(a).or_insert_with(|| graph.add_node(a));
            let nz = *node.entry(z).or_insert_with(|| graph.add_node(z));
            graph.add_edge(na, nz, link);
        }
        let cloud = node[&-1];
        let cost = |l: &Link| l.latency_s + model_bits as f64 / l.rate_bps;
        let mut up = Vec::with_capacity(cells);
        for c in 0..cells as i64 {
            let (_, path) = petgraph::algo::astar(&graph, node[&c], |n| n == cloud, |e| cost(e.weight()), |_| 0.0)
                .ok_or_else(|| {
                    Error::Input(format!(
                        "{}: cell {c} has no path to the cloud (-1)",
                        if b.topology == BackhaulTopology::File { b.links_file.as_str() } else { "backhaul" }
                    ))
                })?;
            let hops = path
                .windows(2)
                .map(|w| {
                    // The cheapest of parallel links between the two nodes.
                    let edge = graph
                        .edges_connecting(w[0], w[1])
                        .min_by(|x, y| cost(x.weight()).total_cmp(&cost(y.weight())))
                        .expect("a path's consecutive nodes are linked")
                        .id();
                    Hop { edge, forward: w[0] < w[1] }
                })
                .collect();
            up.push(hops);
        }
        Ok(Backhaul { graph, up, free_at: BTreeMap::new(), model_bits, energy_per_bit_j: b.energy_per_bit_j })
    }

    /// Hops from cell `c`'s edge server to the cloud.
    pub fn route_up(&self, c: usize) -> &[Hop] {
        &self.up[c]
    }

    /// The hop of the way back: the same link, the other direction.
    pub fn reversed(h: Hop) -> Hop {
        Hop { edge: h.edge, forward: !h.forward }
    }

    /// Energy of one model crossing one link [J].
    pub fn hop_energy_j(&self) -> f64 {
        self.model_bits as f64 * self.energy_per_bit_j
    }

    /// A model reaches `hop`'s link at `now`: it waits for the link, is
    /// sent at its rate, and arrives at the far end after the latency.
    /// Returns the arrival time.
    pub fn send(&mut self, hop: Hop, now: SimTime) -> Result<SimTime> {
        let link = self.graph[hop.edge];
        let tx = SimDuration::from_secs_f64(self.model_bits as f64 / link.rate_bps);
        let lat = SimDuration::from_secs_f64(link.latency_s);
        let (Some(tx), Some(lat)) = (tx, lat) else {
            return Err(Error::Numeric { checkpoint: "backhaul.transfer", detail: format!("link {link:?}") });
        };
        let free = self.free_at.get(&hop).copied().unwrap_or(SimTime::ZERO);
        let done = now.max(free) + tx;
        self.free_at.insert(hop, done);
        Ok(done + lat)
    }
}

fn read_links(path: &Path) -> Result<Vec<(i64, i64, Link)>> {
    let spec = [
        Column::required("from", -1.0, 1e9),
        Column::required("to", -1.0, 1e9),
        // 1 bit/s to 1 Pbit/s; up to about 11 days.
        Column::required("rate_bps", 1.0, 1e15),
        Column::required("latency_s", 0.0, 1e6),
    ];
    let cols = read_columns(path, "backhaul.links_file", &spec)?;
    let (from, to, rate, lat) = (&cols["from"], &cols["to"], &cols["rate_bps"], &cols["latency_s"]);
    let mut out = Vec::with_capacity(from.len());
    for (i, (((&a, &z), &rate_bps), &latency_s)) in from.iter().zip(to).zip(rate).zip(lat).enumerate() {
        let bad = |col: &str, v: f64, allowed: &str| {
            Error::Input(format!(
                "{} (backhaul.links_file): row {}: column `{col}` = {v}: {allowed}",
                path.display(),
                i + 1
            ))
        };
        for (k, v) in [("from", a), ("to", z)] {
            if v.fract() != 0.0 || v < -1.0 {
                return Err(bad(k, v, "a node id is needed (a cell's index, -1 for the cloud, or another integer)"));
            }
        }
        if rate_bps <= 0.0 {
            return Err(bad("rate_bps", rate_bps, "a rate > 0 is needed"));
        }
        if latency_s < 0.0 {
            return Err(bad("latency_s", latency_s, "a latency >= 0 is needed"));
        }
        out.push((a as i64, z as i64, Link { rate_bps, latency_s }));
    }
    Ok(out)
}
