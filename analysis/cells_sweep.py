"""Hierarchical split federated learning over several cells, from a sweep
over backhaul.cloud_every (k) x cells.reuse (`scenarios/cells-train.toml`):
(a) the global model's test accuracy against simulated time, one line per
(k, reuse); (b) energy (the devices', and the backhaul's stacked on it) and (c)
final accuracy against k, one bar per reuse factor. The table gives per
run the final and best accuracy, the simulated time, the time spent on
the backhaul, the device and backhaul energy,
the uploads scheduled and finished, and the mean SINR of the uploads.

usage: python3 analysis/cells_sweep.py SWEEP_DIR [OUT_DIR]   (OUT_DIR defaults to SWEEP_DIR/figures)"""

import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import scan, sweep_table, write_outputs


def main():
    keys = ["backhaul.cloud_every", "cells.reuse"]
    rounds, out = sweep_table(__doc__, "rounds", keys)
    rounds = rounds.sort(keys + ["round"])
    per_run = (
        rounds.group_by(keys)
        .agg(
            pl.col("accuracy").drop_nulls().last().alias("final_accuracy"),
            pl.col("accuracy").max().alias("best_accuracy"),
            (pl.col("end_s").last() + pl.col("backhaul_s").last()).alias("simulated_s"),
            pl.col("backhaul_s").sum().alias("backhaul_s"),
            pl.col("energy_j").sum().alias("energy_j"),
            pl.col("backhaul_energy_j").sum().alias("backhaul_energy_j"),
            pl.col("scheduled").sum().alias("scheduled"),
            pl.col("finished").sum().alias("finished"),
        )
        .sort(keys)
    )
    dr = scan(sys.argv[1], "device_rounds")
    sinr = dr.group_by(keys).agg(pl.col("sinr_db").mean().alias("mean_sinr_db"))
    t = per_run.join(sinr, on=keys, how="left").sort(keys)

    fig, ax = plt.subplots(1, 3, figsize=(16, 4.5))
    evaluated = rounds.filter(pl.col("accuracy").is_not_null())
    for (k, reuse), g in evaluated.group_by(keys, maintain_order=True):
        ax[0].plot(
            (g["end_s"] + g["backhaul_s"]).to_list(), g["accuracy"].to_list(), marker=".",
            linestyle="-" if reuse == 1 else "--", label=f"k = {k}, reuse {reuse}",
        )
    ax[0].set_xlabel("simulated time [s]")
    ax[0].set_ylabel("test accuracy (cloud model)")
    ax[0].legend(fontsize=8)
    ks = sorted(t["backhaul.cloud_every"].unique().to_list())
    reuses = sorted(t["cells.reuse"].unique().to_list())
    width = 0.8 / len(reuses)
    for i, reuse in enumerate(reuses):
        sub = t.filter(pl.col("cells.reuse") == reuse).sort("backhaul.cloud_every")
        xs = [ks.index(k) + i * width for k in sub["backhaul.cloud_every"].to_list()]
        dev = (sub["energy_j"] / 1000).to_list()
        ax[1].bar(xs, dev, width=width, label=f"devices, reuse {reuse}")
        ax[1].bar(xs, (sub["backhaul_energy_j"] / 1000).to_list(), bottom=dev, width=width, alpha=0.5,
                  label=f"backhaul, reuse {reuse}")
        ax[2].bar(xs, sub["final_accuracy"].to_list(), width=width, label=f"reuse {reuse}")
    for a, yl in [(ax[1], "energy of the run [kJ]"), (ax[2], "final test accuracy")]:
        a.set_xticks([j + width * (len(reuses) - 1) / 2 for j in range(len(ks))], [f"k = {k}" for k in ks])
        a.set_ylabel(yl)
        a.legend()
    for a in ax:
        a.grid(alpha=0.3)
    write_outputs(t, fig, out / "cells_sweep", "Hierarchical SFL over cells: cloud period k and reuse factor")


if __name__ == "__main__":
    main()
