"""Fig. 3: test accuracy (and training loss) of split training against the
activation bits, from `sflam calibrate`'s folder: (a) accuracy against
round for each bit width and fp32 (mean over the seeds, the band their
range), (b) training loss likewise, (c) final accuracy against bits with
each seed's point, and the utility table the allocators read. The table
gives, per width, the final accuracy's mean, standard deviation, range
and its difference from fp32's in standard errors.

usage: python3 analysis/fig3.py CALIBRATE_DIR [OUT_DIR]   (OUT_DIR defaults to CALIBRATE_DIR/figures)"""

import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import scan, write_outputs


def final_accuracy(rounds):
    """Per (seed, bits): the accuracy of the last evaluated round."""
    return (
        rounds.filter(pl.col("accuracy").is_not_null())
        .sort("round")
        .group_by("seed", "bits")
        .agg(pl.col("accuracy").last().alias("final_accuracy"))
    )


def table(rounds):
    """One row per width: final accuracy's mean, sd, min, max over seeds,
    and (mean − fp32 mean) / its standard error."""
    f = final_accuracy(rounds)
    t = (
        f.group_by("bits")
        .agg(
            pl.len().alias("seeds"),
            pl.col("final_accuracy").mean().alias("accuracy"),
            pl.col("final_accuracy").std().alias("accuracy_sd"),
            pl.col("final_accuracy").min().alias("accuracy_min"),
            pl.col("final_accuracy").max().alias("accuracy_max"),
        )
        .sort("bits")
    )
    fp = t.filter(pl.col("bits") == 32)
    if fp.height == 0:
        sys.exit("error: no fp32 point (bits=32): not a `sflam calibrate` folder")
    m32, s32, n32 = fp["accuracy"][0], fp["accuracy_sd"][0], fp["seeds"][0]

    def z(row):
        if row["bits"] == 32:
            return 0.0
        se = math.sqrt(((row["accuracy_sd"] or 0.0) ** 2) / row["seeds"] + ((s32 or 0.0) ** 2) / n32)
        return (row["accuracy"] - m32) / se if se > 0 else float("nan")

    return t.with_columns(pl.Series("diff_vs_fp32_se", [z(r) for r in t.iter_rows(named=True)]))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    folder = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else folder / "figures"
    rounds = scan(folder, "rounds")
    for col in ["seed", "bits"]:
        if col not in rounds.columns:
            sys.exit(f"error: {folder} is not a `sflam calibrate` folder (no seed=/bits= levels)")
    t = table(rounds)
    utility = None
    if (folder / "utility.csv").is_file():
        utility = pl.read_csv(folder / "utility.csv").select("bits", "utility")
        t = t.join(utility, on="bits", how="left")

    fig, ax = plt.subplots(1, 3, figsize=(18, 5))
    widths = sorted(rounds["bits"].unique().to_list())
    cmap = plt.get_cmap("viridis")
    for i, b in enumerate(widths):
        r = rounds.filter(pl.col("bits") == b)
        colour = "black" if b == 32 else cmap(i / max(1, len(widths) - 1))
        label = "fp32" if b == 32 else f"{b} bits"
        for a, col in [(ax[0], "accuracy"), (ax[1], "train_loss")]:
            c = (
                r.filter(pl.col(col).is_not_null())
                .group_by("round")
                .agg(pl.col(col).mean().alias("m"), pl.col(col).min().alias("lo"), pl.col(col).max().alias("hi"))
                .sort("round")
            )
            x = (c["round"] + 1).to_list()
            a.plot(x, c["m"].to_list(), "o-" if b == 32 else ".-", color=colour, label=label, lw=2 if b == 32 else 1)
            a.fill_between(x, c["lo"].to_list(), c["hi"].to_list(), color=colour, alpha=0.12)
    ax[0].set_ylabel("test accuracy")
    ax[1].set_ylabel("training loss [nat]")
    for a in ax[:2]:
        a.set_xlabel("round")
        a.grid(alpha=0.3)
    ax[0].legend(fontsize=8, ncol=2)
    f = final_accuracy(rounds)
    xs = {b: (b if b != 32 else 20) for b in widths}
    ax[2].scatter([xs[b] for b in f["bits"].to_list()], f["final_accuracy"].to_list(), s=14, color="gray", label="each seed")
    ax[2].errorbar(
        [xs[b] for b in t["bits"].to_list()],
        t["accuracy"].to_list(),
        yerr=[v or 0.0 for v in t["accuracy_sd"].to_list()],
        fmt="o-",
        color="tab:blue",
        label="mean ± sd",
    )
    if utility is not None:
        tw = ax[2].twinx()
        u = utility.filter(pl.col("bits") <= 16)
        tw.step(u["bits"].to_list(), u["utility"].to_list(), where="mid", color="tab:red", label="measured U(b)")
        tw.set_ylabel("utility U(b) (fp32 = 1)")
        tw.set_ylim(0, 1.05)
        tw.legend(loc="lower right", fontsize=8)
    ax[2].set_xticks(list(xs.values()), [("fp32" if b == 32 else str(b)) for b in xs])
    ax[2].set_xlabel("activation bits")
    ax[2].set_ylabel("final test accuracy")
    ax[2].grid(alpha=0.3)
    ax[2].legend(loc="upper left", fontsize=8)
    write_outputs(t, fig, out / "fig3", "Fig. 3: final test accuracy against activation bits")


if __name__ == "__main__":
    main()
