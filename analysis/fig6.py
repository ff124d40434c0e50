"""The paper's Fig. 6 from a co-simulation sweep over training.framework x
training.dirichlet_alpha: test accuracy of the global model against
simulated time, one panel per alpha; the table gives each run's final
accuracy, simulated time and device energy.

usage: python3 analysis/fig6.py SWEEP_DIR [OUT_DIR]   (OUT_DIR defaults to SWEEP_DIR/figures)"""

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import sweep_table, write_outputs


def main():
    keys = ["training.framework", "training.dirichlet_alpha"]
    rounds, out = sweep_table(__doc__, "rounds", keys)
    rounds = rounds.sort(keys + ["round"]).with_columns(pl.col("energy_j").cum_sum().over(keys).alias("energy_cum_j"))
    evaluated = rounds.filter(pl.col("accuracy").is_not_null())
    t = (
        evaluated.group_by(keys)
        .agg(
            pl.col("accuracy").last().alias("final_accuracy"),
            pl.col("accuracy").max().alias("best_accuracy"),
            pl.col("end_s").last().alias("simulated_s"),
            pl.col("energy_cum_j").last().alias("energy_j"),
            pl.col("round").last().alias("rounds"),
        )
        .sort(keys)
    )
    alphas = sorted(t["training.dirichlet_alpha"].unique().to_list())
    fig, axes = plt.subplots(1, len(alphas), figsize=(5 * len(alphas), 4), squeeze=False)
    for ax, a in zip(axes[0], alphas):
        sub = evaluated.filter(pl.col("training.dirichlet_alpha") == a)
        for name, g in sub.group_by("training.framework", maintain_order=True):
            ax.plot(g["end_s"].to_list(), g["accuracy"].to_list(), marker=".", label=name[0])
        ax.set_title(f"Dir({a:g})")
        ax.set_xlabel("simulated time [s]")
        ax.set_ylabel("test accuracy")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    write_outputs(t, fig, out / "fig6", "Fig. 6: test accuracy against simulated time")


if __name__ == "__main__":
    main()
