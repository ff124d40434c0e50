"""The paper's Fig. 5 from a sweep over training.framework x devices.count:
per-round (a) computation time, (b) computation energy, (c) communication
time, (d) communication energy, (e) total time, (f) total energy.

Times of a round: the parallel frameworks (fl, sfl, sflam) take the slowest
device's time; sl relays, so its devices' times add up. Energies add up
over devices in every framework.

usage: python3 analysis/fig5.py SWEEP_DIR [OUT_DIR]   (OUT_DIR defaults to SWEEP_DIR/figures)"""

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import sweep_table, write_outputs


def main():
    keys = ["training.framework", "devices.count"]
    dr, out = sweep_table(__doc__, "device_rounds", keys)
    dr = dr.with_columns(
        (pl.col("t_cmp_s") + pl.col("t_srv_s") + pl.col("t_wait_s")).alias("cmp_s"),
        (pl.col("t_com_s") + pl.col("t_down_s")).alias("com_s"),
    )
    sequential = pl.col("training.framework") == "sl"
    per_round = dr.group_by(keys + ["round"]).agg(
        pl.when(sequential.first()).then(pl.col("cmp_s").sum()).otherwise(pl.col("cmp_s").max()).alias("cmp_time_s"),
        pl.when(sequential.first()).then(pl.col("com_s").sum()).otherwise(pl.col("com_s").max()).alias("com_time_s"),
        pl.col("time_s").max().alias("round_time_s"),
        pl.col("energy_cmp_j").sum().alias("cmp_energy_j"),
        pl.col("energy_com_j").sum().alias("com_energy_j"),
        pl.col("energy_j").sum().alias("total_energy_j"),
    )
    t = (
        per_round.group_by(keys)
        .agg(pl.exclude("round").mean())
        .with_columns(pl.col("round_time_s").alias("total_time_s"))
        .drop("round_time_s")
        .sort(keys)
    )
    panels = [
        ("cmp_time_s", "computation time per round [s]"),
        ("cmp_energy_j", "computation energy per round [J]"),
        ("com_time_s", "communication time per round [s]"),
        ("com_energy_j", "communication energy per round [J]"),
        ("total_time_s", "total time per round [s]"),
        ("total_energy_j", "total energy per round [J]"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for (col, label), ax in zip(panels, axes.T.ravel()):
        for name, g in t.group_by("training.framework", maintain_order=True):
            ax.plot(g["devices.count"].to_list(), g[col].to_list(), marker="o", label=name[0])
        ax.set_xlabel("devices")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0, 0].legend()
    write_outputs(t, fig, out / "fig5", "Fig. 5: time and energy per round against the number of devices")


if __name__ == "__main__":
    main()
