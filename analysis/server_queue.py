"""The server in the plan: queue-aware against queue-blind planning, from a
sweep over allocator.name x run.deadline_s x allocator.queue_aware (Fig. 4's
scenario under a FIFO or processor-sharing server). Per point: devices
scheduled and finished per round, the finished share, and the planned and
realized objective per round (realized: utility of the devices that
finished against all energy spent, stragglers' included).

usage: python3 analysis/server_queue.py SWEEP_DIR [OUT_DIR]   (OUT_DIR defaults to SWEEP_DIR/figures)"""

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import label_axes, sweep_table, write_outputs

KEYS = ["allocator.name", "run.deadline_s", "allocator.queue_aware"]


def table(rounds):
    return (
        rounds.group_by(KEYS)
        .agg(
            pl.col("scheduled").mean().alias("scheduled_per_round"),
            pl.col("finished").mean().alias("finished_per_round"),
            (pl.col("finished").sum() / pl.col("scheduled").sum()).alias("finished_share"),
            pl.col("objective_j").mean().alias("planned_objective_j"),
            pl.col("realized_objective_j").mean().alias("realized_objective_j"),
            (pl.col("energy_j").sum() / pl.col("finished").sum()).alias("energy_per_finished_j"),
        )
        .sort(KEYS)
    )


def main():
    rounds, out = sweep_table(__doc__, "rounds", KEYS)
    t = table(rounds)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (name, aware), g in t.group_by(["allocator.name", "allocator.queue_aware"], maintain_order=True):
        label = f"{name}, {'queue-aware' if aware else 'queue-blind'}"
        style = "-" if aware else "--"
        x = g["run.deadline_s"].to_list()
        axes[0].plot(x, g["realized_objective_j"].to_list(), style, marker="o", label=label)
        axes[1].plot(x, g["finished_share"].to_list(), style, marker="o", label=label)
    label_axes(axes, "T_max [s]", ["realized objective per round [J]", "finished / scheduled"])
    write_outputs(t, fig, out / "server_queue", "Queue-aware against queue-blind planning")


if __name__ == "__main__":
    main()
