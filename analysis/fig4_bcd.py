"""Fig. 4 (a)-(c): BCD's convergence, from a sweep of `bcd` over the
deadline with `run.bcd_trace = true` (`bcd_steps.parquet` in each point):
(a) the scheduled devices' mean energy after the power and bit steps (P1,
P2) against the iteration, (b) after the matching step (P3), (c) the
system efficiency (eq. 21) after P3; each a mean over the sweep's rounds,
one line per T_max, iteration 0 being the starting point (p_max, bits
by P2 there, the matching by P3). The table gives, per T_max, the
iterations BCD ran per round (mean and max), the first iteration whose
round-mean objective is within 0.1% of the final one, and the starting
and final mean energy per device.

usage: python3 analysis/fig4_bcd.py SWEEP_DIR [OUT_DIR]   (OUT_DIR defaults to SWEEP_DIR/figures)
the sweep: sflam sweep scenarios/fig4.toml --common-seed -o runs/fig4-bcd --set allocator.name=bcd \\
             --set run.bcd_trace=true --grid run.deadline_s=6,8,10,12,15,20"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import label_axes, sweep_table, write_outputs

KEY = "run.deadline_s"


def curves(steps):
    """Per (T_max, step, iteration): means over rounds (and cells). A round
    that settled before iteration i keeps its last state there, so every
    iteration averages the same rounds."""
    top = int(steps["iteration"].max())
    filled = []
    start = steps.filter(pl.col("step") == "start")
    for step in ["power-bits", "matching"]:
        # Iteration 0 of both curves is the starting point.
        s = pl.concat([start.with_columns(pl.lit(step).alias("step")), steps.filter(pl.col("step") == step)])
        for i in range(0, top + 1):
            at = (
                s.filter(pl.col("iteration") <= i)
                .sort("iteration")
                .group_by(KEY, "round", "cell")
                .agg(pl.all().last())
                .with_columns(pl.lit(i).alias("iteration"), pl.lit(step).alias("step"))
            )
            filled.append(at)
    f = pl.concat(filled, how="diagonal_relaxed")
    return (
        f.group_by(KEY, "step", "iteration")
        .agg(
            pl.col("mean_energy_j").mean(),
            pl.col("efficiency_per_j").mean(),
            pl.col("objective_j").mean(),
            pl.col("mean_bits").mean(),
        )
        .sort(KEY, "step", "iteration")
    )


def settle_table(steps, rounds, c):
    its = rounds.group_by(KEY).agg(
        pl.col("alloc_iterations").mean().alias("iterations_mean"),
        pl.col("alloc_iterations").max().alias("iterations_max"),
    )
    rows = []
    for (t,), g in c.filter(pl.col("step") == "matching").group_by([KEY], maintain_order=True):
        obj = g.sort("iteration")["objective_j"].to_list()
        final = obj[-1]
        settle = next((i for i, v in enumerate(obj) if abs(final - v) <= 1e-3 * abs(final)), len(obj) - 1)
        e = g.sort("iteration")["mean_energy_j"].to_list()
        rows.append(
            {
                KEY: t,
                "settled_by_iteration": settle,
                "start_objective_j": obj[0],
                "final_objective_j": final,
                "start_energy_j": e[0],
                "final_energy_j": e[-1],
            }
        )
    return its.join(pl.DataFrame(rows), on=KEY).sort(KEY)


def main():
    steps, out = sweep_table(__doc__, "bcd_steps", [KEY])
    rounds, _ = sweep_table(__doc__, "rounds", [KEY])
    c = curves(steps)
    fig, ax = plt.subplots(1, 3, figsize=(17, 5))
    for (t,), g in c.group_by([KEY], maintain_order=True):
        pb = g.filter(pl.col("step") == "power-bits")
        m = g.filter(pl.col("step") == "matching")
        ax[0].plot(pb["iteration"], pb["mean_energy_j"], "o-", label=f"T_max = {t:g} s")
        ax[1].plot(m["iteration"], m["mean_energy_j"], "o-", label=f"T_max = {t:g} s")
        ax[2].plot(m["iteration"], m["efficiency_per_j"], "o-", label=f"T_max = {t:g} s")
    for a, title in zip(ax, ["(a) after P1 and P2", "(b) after P3", "(c) after P3"]):
        a.set_title(title)
    label_axes(ax, "BCD iteration", ["mean energy per device [J]", "mean energy per device [J]", "efficiency [1/J]"])
    write_outputs(settle_table(steps, rounds, c), fig, out / "fig4_bcd", "Fig. 4 (a)-(c): BCD's convergence")


if __name__ == "__main__":
    main()
