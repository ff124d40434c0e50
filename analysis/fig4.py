"""The paper's Fig. 4 from a sweep over allocator.name x run.deadline_s:
(a) average energy per scheduled device, (b) system efficiency (eq. 21),
(c) mean quantization bits, each against T_max.

usage: python3 analysis/fig4.py SWEEP_DIR [OUT_DIR]   (OUT_DIR defaults to SWEEP_DIR/figures)"""

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import label_axes, sweep_table, write_outputs


def main():
    rounds, out = sweep_table(__doc__, "rounds", ["allocator.name", "run.deadline_s"])
    t = (
        rounds.group_by(["allocator.name", "run.deadline_s"])
        .agg(
            (pl.col("energy_j").sum() / pl.col("scheduled").sum()).alias("energy_per_device_j"),
            (pl.col("efficiency_per_j").mean()).alias("efficiency_per_j"),
            (pl.col("mean_bits").mean()).alias("mean_bits"),
            (pl.col("scheduled").mean()).alias("scheduled_per_round"),
            (pl.col("finished").sum() / pl.col("scheduled").sum()).alias("finished_share"),
            (pl.col("objective_j").mean()).alias("objective_j"),
        )
        .sort(["allocator.name", "run.deadline_s"])
    )
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, g in t.group_by("allocator.name", maintain_order=True):
        name = name[0]
        x = g["run.deadline_s"].to_list()
        axes[0].plot(x, g["energy_per_device_j"].to_list(), marker="o", label=name)
        axes[1].plot(x, g["efficiency_per_j"].to_list(), marker="o", label=name)
        axes[2].plot(x, g["mean_bits"].to_list(), marker="o", label=name)
    label_axes(axes, "T_max [s]", ["energy per scheduled device [J]", "efficiency (eq. 21) [1/J]", "mean bits"])
    write_outputs(t, fig, out / "fig4", "Fig. 4: allocators against the deadline T_max")


if __name__ == "__main__":
    main()
