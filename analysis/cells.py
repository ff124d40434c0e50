"""The map and the per-cell load of one multi-cell run (`sflam run` with a
`[cells]` section): (a) the cell sites and the devices coloured by the
cell they associate with at the start (at most 20,000 devices drawn, an
even sample), (b) devices, scheduled uploads and finished uploads per
cell, (c) the mean SINR and interference of each cell's uploads. The
table gives one row per cell.

usage: python3 analysis/cells.py RUN_DIR [OUT_DIR]   (OUT_DIR defaults to RUN_DIR.figures, beside the
       run folder: a file of yours inside it would keep `sflam run` from replacing it)"""

import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import scan, write_outputs


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    run = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else run.parent / f"{run.resolve().name}.figures"
    cells = scan(run, "cells").sort("cell")
    devices = scan(run, "devices")
    dr = scan(run, "device_rounds")
    per_cell = (
        dr.group_by("cell")
        .agg(
            pl.len().alias("scheduled"),
            (pl.col("outcome") == "finished").sum().alias("finished"),
            pl.col("sinr_db").mean().alias("mean_sinr_db"),
            pl.col("interference_w").mean().alias("mean_interference_w"),
            pl.col("rate_bps").mean().alias("mean_rate_bps"),
        )
    )
    t = (
        cells.select("cell", "x_m", "y_m", "rb_count", "colour", "devices")
        .join(per_cell, on="cell", how="left")
        .with_columns(pl.col("scheduled", "finished").fill_null(0))
        .sort("cell")
    )
    fig, ax = plt.subplots(1, 3, figsize=(17, 5))
    step = max(1, devices.height // 20000)
    shown = devices.gather_every(step)
    ax[0].scatter(shown["x_m"], shown["y_m"], c=shown["cell"], cmap="tab20", s=2, alpha=0.6, linewidths=0)
    ax[0].scatter(cells["x_m"], cells["y_m"], c="black", marker="^", s=30, label="base station")
    ax[0].set_aspect("equal")
    ax[0].set_xlabel("x [m]")
    ax[0].set_ylabel("y [m]")
    ax[0].set_title(f"{cells.height} cells, {devices.height} devices (1 in {step} drawn)")
    ax[0].legend(loc="upper right")
    x = t["cell"].to_list()
    ax[1].bar(x, t["devices"].to_list(), color="lightgray", label="devices")
    ax[1].bar(x, t["scheduled"].to_list(), color="tab:blue", label="scheduled uploads")
    ax[1].bar(x, t["finished"].to_list(), color="tab:green", width=0.5, label="finished")
    ax[1].set_yscale("log")
    ax[1].set_xlabel("cell")
    ax[1].set_ylabel("count (all rounds)")
    ax[1].legend()
    ax[2].bar(x, t["mean_sinr_db"].fill_null(0.0).to_list(), color="tab:purple")
    ax[2].set_xlabel("cell")
    ax[2].set_ylabel("mean SINR of its uploads [dB]")
    for a in ax[1:]:
        a.grid(alpha=0.3)
    write_outputs(t, fig, out / "cells", "Cells: map and per-cell load")


if __name__ == "__main__":
    main()
