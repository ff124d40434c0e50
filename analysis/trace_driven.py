"""Drawn devices against trace-driven ones: two runs of one scenario
(`sflam run`), the first with the scenario's distributions, the second on
a device table and an availability trace. Panels: (a) devices online over
simulated time [h], (b) scheduled devices per round (rolling hourly
mean), (c) how participation is spread over the devices (sorted share of
all participations: the Lorenz curve, with its Gini coefficient), (d) the
energy of a device's round, (e) the time of a device's round, (f) test
accuracy against simulated time when the runs train. The table gives
each run's totals.

usage: python3 analysis/trace_driven.py DRAWN_RUN TRACE_RUN [OUT_DIR]   (OUT_DIR defaults to TRACE_RUN.figures)"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import write_outputs


def gini(counts):
    """Gini coefficient of non-negative counts (0: all equal, 1: one has all)."""
    x = sorted(counts)
    n, total = len(x), sum(x)
    if n == 0 or total == 0:
        return 0.0
    return sum((2 * (i + 1) - n - 1) * v for i, v in enumerate(x)) / (n * total)


def load(run):
    run = Path(run)
    for t in ["rounds", "device_rounds", "devices"]:
        if not (run / f"{t}.parquet").is_file():
            sys.exit(f"error: {run} is not a finished `sflam run` folder: no {t}.parquet")
    r = pl.read_parquet(run / "rounds.parquet")
    dr = pl.read_parquet(run / "device_rounds.parquet")
    dv = pl.read_parquet(run / "devices.parquet")
    per = dv.select("device").join(dr.group_by("device").len(), on="device", how="left").fill_null(0)
    return r, dr, per


def summary(name, r, dr, per):
    acc = r.filter(pl.col("accuracy").is_not_null()) if "accuracy" in r.columns else r.clear()
    return {
        "devices": name,
        "rounds": r.height,
        "mean_online": r["online"].mean(),
        "scheduled": int(r["scheduled"].sum()),
        "finished": int(r["finished"].sum()),
        "stragglers": int(r["stragglers"].sum()),
        "failed": int(r["failed"].sum()),
        "participation_gini": gini(per["len"].to_list()),
        "never_scheduled": int((per["len"] == 0).sum()),
        "energy_per_device_round_j": dr["energy_j"].mean() if dr.height else 0.0,
        "time_p90_s": dr["time_s"].quantile(0.9) if dr.height else 0.0,
        "energy_total_j": r["energy_j"].sum(),
        "last_accuracy": acc["accuracy"][-1] if acc.height else None,
    }


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    runs = {"drawn": load(sys.argv[1]), "trace": load(sys.argv[2])}
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(sys.argv[2] + ".figures")
    fig, ax = plt.subplots(2, 3, figsize=(17, 9))
    ax = ax.ravel()
    rows = []
    for name, (r, dr, per) in runs.items():
        h = r["end_s"] / 3600
        ax[0].plot(h, r["online"], label=name)
        window = max(1, int(3600 / max(1e-9, (r["end_s"][0] - r["start_s"][0]))))
        ax[1].plot(h, r["scheduled"].cast(pl.Float64).rolling_mean(window, min_samples=1), label=name)
        counts = sorted(per["len"].to_list())
        total = max(1, sum(counts))
        cum, lorenz = 0, [0.0]
        for c in counts:
            cum += c
            lorenz.append(cum / total)
        xs = [i / len(counts) for i in range(len(counts) + 1)]
        ax[2].plot(xs, lorenz, label=f"{name} (Gini {gini(counts):.2f})")
        if dr.height:
            ax[3].hist(dr["energy_j"].to_list(), bins=50, alpha=0.5, label=name)
            ax[4].hist(dr["time_s"].to_list(), bins=50, alpha=0.5, label=name)
        if "accuracy" in r.columns and r["accuracy"].drop_nulls().len():
            a = r.filter(pl.col("accuracy").is_not_null())
            ax[5].plot(a["end_s"], a["accuracy"], "o-", label=name)
        rows.append(summary(name, r, dr, per))
    ax[2].plot([0, 1], [0, 1], "k:", lw=0.8)
    labels = [
        ("simulated time [h]", "devices online", "(a) online"),
        ("simulated time [h]", "scheduled per round", "(b) scheduled (hourly mean)"),
        ("share of devices (fewest first)", "share of participations", "(c) participation spread"),
        ("energy of a device's round [J]", "device-rounds", "(d) energy"),
        ("time of a device's round [s]", "device-rounds", "(e) time"),
        ("simulated time [s]", "test accuracy", "(f) accuracy (when training)"),
    ]
    for a, (x, y, t) in zip(ax, labels):
        a.set_xlabel(x)
        a.set_ylabel(y)
        a.set_title(t)
        a.grid(alpha=0.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8)
    write_outputs(pl.DataFrame(rows), fig, out / "trace_driven", "Drawn against trace-driven devices")


if __name__ == "__main__":
    main()
