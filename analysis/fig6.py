"""The paper's Fig. 6 from a co-simulation sweep over training.framework x
training.dirichlet_alpha: test accuracy of the global model against
simulated time (top row) and against the devices' energy spent so far
(bottom row), one column per alpha; the table gives each run's final and
best accuracy, the simulated time and the device energy [J] spent to
reach a target accuracy ("not reached" where a run never does), the
simulated time of the whole run and its device energy, the mean
activation bits of its scheduled devices (32 = fp32; none for `fl` and
`ll`, which send no activations), the accuracy after every evaluated round (rounds
counted from 1) and, where the point's `summary.json` is there, its wall
time [s] and its participants' training steps. The target is TARGET when
given, else the highest multiple of 5% that every run of the sweep
reaches; TARGET may list more, comma-separated ("0.75,0.83"): the first
fills `time_to_target_s` and `energy_to_target_j`, each other one the
columns `time_to_<X>_s` and `energy_to_<X>_j`. The
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


def time_to(evaluated, keys, target, column="time_to_target_s", energy_column="energy_to_target_j"):
    """Per run: the simulated time [s] of the first evaluation at or above
    `target`, in `column`, and the device energy [J] spent up to and
    including that round, in `energy_column`; no row when never reached."""
    hit = (
        evaluated.filter(pl.col("accuracy") >= target)
        .sort("round")
        .group_by(keys)
        .agg(pl.col("end_s").first().alias(column), pl.col("energy_cum_j").first().alias(energy_column))
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
    # mean_bits is per round over its scheduled devices (null where none
    # sent activations): the run's mean weighs each round by them.
    sends = pl.col("mean_bits").is_not_null()
    rounds = rounds.sort(keys + ["round"]).with_columns(
        pl.col("energy_j").cum_sum().over(keys).alias("energy_cum_j"),
        pl.when(sends).then(pl.col("mean_bits") * pl.col("scheduled")).otherwise(0.0).cum_sum().over(keys).alias("bits_sum"),
        pl.when(sends).then(pl.col("scheduled")).otherwise(0).cast(pl.Float64).cum_sum().over(keys).alias("scheduled_cum"),
    )
    evaluated = rounds.filter(pl.col("accuracy").is_not_null())
    t = (
        evaluated.group_by(keys)
        .agg(
            pl.col("accuracy").last().alias("final_accuracy"),
            pl.col("accuracy").max().alias("best_accuracy"),
            pl.col("end_s").last().alias("simulated_s"),
            pl.col("energy_cum_j").last().alias("energy_j"),
            pl.when(pl.col("scheduled_cum").last() > 0)
            .then(pl.col("bits_sum").last() / pl.col("scheduled_cum").last())
            .alias("mean_bits"),
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
            energy_column = "energy_to_target_j" if i == 0 else f"energy_to_{target:g}_j"
            t = (
                t.join(time_to(evaluated, keys, target, column, energy_column), on=keys, how="left")
                .with_columns(pl.col(c).round(1).cast(pl.String).fill_null("not reached") for c in (column, energy_column))
                .sort(keys)
            )
        t = t.with_columns(pl.lit(targets[0]).alias("target_accuracy"))
    alphas = sorted(t["training.dirichlet_alpha"].unique().to_list())
    # Row 1: against simulated time (the paper's Fig. 6); row 2: against
    # the devices' energy spent so far.
    # One colour per framework in every panel, whichever runs a panel has.
    frameworks = sorted(evaluated["training.framework"].unique().to_list())
    colour = {f: f"C{i}" for i, f in enumerate(frameworks)}
    fig, axes = plt.subplots(2, len(alphas), figsize=(5 * len(alphas), 8), squeeze=False)
    for col, a in enumerate(alphas):
        sub = evaluated.filter(pl.col("training.dirichlet_alpha") == a)
        for row, (x, label) in enumerate([("end_s", "simulated time [s]"), ("energy_cum_j", "device energy so far [J]")]):
            ax = axes[row][col]
            for f in frameworks:
                g = sub.filter(pl.col("training.framework") == f).sort("round")
                if g.height:
                    ax.plot(g[x].to_list(), g["accuracy"].to_list(), marker=".", label=f, color=colour[f])
            ax.set_title(f"Dir({a:g})")
            ax.set_xlabel(label)
            ax.set_ylabel("test accuracy")
            ax.set_xscale("log")
            ax.grid(alpha=0.3)
    for row in axes:
        for ax in row:
            ax.legend(fontsize="small")
    write_outputs(t, fig, out / "fig6", "Fig. 6: test accuracy against simulated time and device energy")


if __name__ == "__main__":
    main()
