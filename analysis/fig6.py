"""The paper's Fig. 6 from a co-simulation sweep over training.framework x
training.dirichlet_alpha: test accuracy of the global model against
simulated time, one panel per alpha; the table gives each run's final and
best accuracy, the simulated time to reach a target accuracy ("not
reached" where a run never does), the simulated time of the whole run and
its device energy, the accuracy after every evaluated round (rounds
counted from 1) and, where the point's `summary.json` is there, its wall
time [s] and its participants' training steps. The target is TARGET when
given, else the highest multiple of 5% that every run of the sweep
reaches; TARGET may list more, comma-separated ("0.75,0.83"): the first
fills `time_to_target_s`, each other one a column `time_to_<X>_s`. The
sum of the points' wall times is printed (a sweep's own wall time is that
sum over its `--jobs`, when the points are alike).

usage: python3 analysis/fig6.py SWEEP_DIR [OUT_DIR [TARGET[,TARGET...]]]   (OUT_DIR defaults to SWEEP_DIR/figures)"""

import json
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import finished_files, sweep_table, write_outputs


def common_target(t):
    """The highest multiple of 0.05 that every run's best accuracy reaches."""
    floor = t["best_accuracy"].min()
    return None if floor is None or floor < 0.05 else int(floor * 20 + 1e-9) / 20


def time_to(evaluated, keys, target, column="time_to_target_s"):
    """Per run: the simulated time [s] of the first evaluation at or above
    `target`, in `column`; null when never reached."""
    hit = (
        evaluated.filter(pl.col("accuracy") >= target)
        .group_by(keys)
        .agg(pl.col("end_s").min().alias(column))
    )
    return hit


def percent_2dp(fraction):
    """A fraction as a percentage string with two decimals ("84.30")."""
    hundredths = (fraction * 10000).round().cast(pl.Int64)
    return pl.format("{}.{}", hundredths // 100, (hundredths % 100).cast(pl.String).str.zfill(2))


def point_summaries(sweep, keys, schema):
    """Per finished point of the sweep: its keys (typed as in `schema`), the
    wall time [s] and the participants' training steps from `summary.json`.
    None when no finished point has one."""
    rows = []
    for p in finished_files(sweep, "summary.json"):
        kv = dict(part.split("=", 1) for part in p.parent.relative_to(sweep).parts if "=" in part)
        if not all(k in kv for k in keys):
            continue
        s = json.loads(p.read_text())
        rows.append({**{k: kv[k] for k in keys}, "wall_s": s.get("wall_s"), "training_steps": (s.get("training") or {}).get("steps")})
    if not rows:
        return None
    df = pl.DataFrame(rows, schema={**{k: pl.String for k in keys}, "wall_s": pl.Float64, "training_steps": pl.Int64})
    return df.with_columns([pl.col(k).cast(schema[k]) for k in keys])


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
            (pl.col("round").last() + 1).alias("rounds"),
            pl.format("{}: {}", pl.col("round") + 1, percent_2dp(pl.col("accuracy")))
            .str.join(", ")
            .alias("accuracy_pct_after_round"),
        )
        .sort(keys)
    )
    summaries = point_summaries(sys.argv[1], keys, t.schema)
    if summaries is not None:
        t = t.join(summaries, on=keys, how="left").sort(keys)
        total = summaries["wall_s"].sum()
        print(f"points' wall time: {total:.0f} s in all over {summaries.height} point(s)")
    targets = [float(x) for x in sys.argv[3].split(",")] if len(sys.argv) > 3 else [common_target(t)]
    if targets[0] is not None:
        for i, target in enumerate(targets):
            column = "time_to_target_s" if i == 0 else f"time_to_{target:g}_s"
            t = (
                t.join(time_to(evaluated, keys, target, column), on=keys, how="left")
                .with_columns(pl.col(column).round(1).cast(pl.String).fill_null("not reached"))
                .sort(keys)
            )
        t = t.with_columns(pl.lit(targets[0]).alias("target_accuracy"))
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
