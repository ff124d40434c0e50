"""A one-page report of any run written by `sflam run`: a PNG of nine
panels and a Markdown summary.

Panels: (a) test accuracy and training loss against simulated time when
the run trains (otherwise the planned and realized objective per round),
(b) every round's candidates by fate (finished, straggler, failed, left
out), (c) the devices' energy per round (computation and uplink), (d) the
distribution of device round times by outcome, (e) of device round
energies, (f) the activation bits chosen, (g) the transmit powers chosen,
(h) why candidates were left out, (i) per-cell load and mean SINR (with one
cell: the distribution of SINR).

usage: python3 analysis/report.py RUN_DIR [OUT_STEM]
       writes OUT_STEM.png and OUT_STEM.md; OUT_STEM defaults to
       RUN_DIR.report (beside the run folder, which holds only what sflam
       wrote, so that `sflam run` can still replace it)."""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import finished_files

OUTCOMES = ["finished", "straggler", "dropped", "offline"]
REASONS = ["infeasible", "no-resource-block", "not-worthwhile", "server-busy"]
COLOURS = {
    "finished": "tab:green",
    "straggler": "tab:orange",
    "dropped": "tab:red",
    "offline": "tab:purple",
    "left out": "lightgray",
}


def read_run(run):
    """The run's tables as frames (`left_out` and `cells` empty when the run
    predates them) and its summary.json as a dict; exits naming the folder
    when it is not a complete run."""
    run = Path(run)
    if not (run / "rounds.parquet").is_file():
        hint = " (a sweep: give one of its point folders)" if finished_files(run, "rounds.parquet") else ""
        sys.exit(f"error: {run} is not a finished `sflam run` folder: no rounds.parquet{hint}")
    t = {}
    for name in ["rounds", "device_rounds", "devices", "left_out", "cells"]:
        f = run / f"{name}.parquet"
        t[name] = pl.read_parquet(f) if f.is_file() else None
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    return t, summary


def fates(rounds):
    """Per round: finished, straggler, failed (dropped or offline) and left
    out (candidates not scheduled), from the rounds table."""
    return rounds.select(
        "round",
        "end_s",
        "candidates",
        "scheduled",
        "finished",
        "stragglers",
        "failed",
        (pl.col("candidates") - pl.col("scheduled")).alias("left_out"),
    )


def reason_counts(left_out):
    """Left-out candidates per reason, every reason listed (0 when none)."""
    counts = {r: 0 for r in REASONS}
    if left_out is not None and left_out.height:
        for r, n in left_out.group_by("reason").len().iter_rows():
            counts[r] = n
    return counts


def plot(t, summary, title):
    rounds, dr, lo, cells = t["rounds"], t["device_rounds"], t["left_out"], t["cells"]
    fig, ax = plt.subplots(3, 3, figsize=(17, 13))
    ax = ax.ravel()
    fig.suptitle(title, fontsize=13)

    # (a) learning against simulated time, or the objective per round.
    trains = "accuracy" in rounds.columns and rounds["accuracy"].drop_nulls().len() > 0
    if trains:
        acc = rounds.filter(pl.col("accuracy").is_not_null())
        ax[0].plot(acc["end_s"], acc["accuracy"], "o-", color="tab:blue", label="test accuracy")
        ax[0].set_ylabel("test accuracy")
        ax[0].set_ylim(0, 1)
        loss = rounds.filter(pl.col("loss").is_not_null())
        if loss.height:
            tw = ax[0].twinx()
            tw.plot(loss["end_s"], loss["loss"], ".--", color="tab:red", label="training loss")
            tw.set_ylabel("training loss [nat]")
            tw.legend(loc="upper right")
        ax[0].legend(loc="lower left")
        ax[0].set_title("(a) accuracy and loss against simulated time")
    else:
        ax[0].plot(rounds["end_s"], rounds["objective_j"], "o-", label="planned")
        ax[0].plot(rounds["end_s"], rounds["realized_objective_j"], "s--", label="realized")
        ax[0].set_ylabel("objective [J]")
        ax[0].legend()
        ax[0].set_title("(a) objective per round (timing only: no training)")
    ax[0].set_xlabel("simulated time [s]")

    # (b) every candidate's fate per round.
    f = fates(rounds)
    bottom = [0] * f.height
    x = f["round"].to_list()
    for col, label, colour in [
        ("finished", "finished", COLOURS["finished"]),
        ("stragglers", "stragglers", COLOURS["straggler"]),
        ("failed", "failed (dropped or offline)", COLOURS["dropped"]),
        ("left_out", "left out", COLOURS["left out"]),
    ]:
        v = f[col].to_list()
        ax[1].bar(x, v, bottom=bottom, color=colour, label=label)
        bottom = [b + w for b, w in zip(bottom, v)]
    ax[1].set_xlabel("round")
    ax[1].set_ylabel("candidates")
    ax[1].legend(fontsize=8)
    ax[1].set_title("(b) candidates by fate")

    # (c) energy per round.
    ax[2].bar(x, rounds["energy_cmp_j"].to_list(), color="tab:blue", label="computation")
    ax[2].bar(x, rounds["energy_com_j"].to_list(), bottom=rounds["energy_cmp_j"].to_list(), color="tab:cyan", label="uplink")
    ax[2].set_xlabel("round")
    ax[2].set_ylabel("devices' energy [J]")
    ax[2].legend(fontsize=8)
    ax[2].set_title("(c) energy per round (server not counted)")

    # (d), (e) distributions of device time and energy by outcome.
    for a, col, unit, letter in [(ax[3], "time_s", "s", "d"), (ax[4], "energy_j", "J", "e")]:
        data, labels, colours = [], [], []
        for o in OUTCOMES:
            v = dr.filter(pl.col("outcome") == o)[col].to_list() if dr.height else []
            if v:
                data.append(v)
                labels.append(f"{o} ({len(v)})")
                colours.append(COLOURS[o])
        if data:
            a.hist(data, bins=30, stacked=True, color=colours, label=labels)
            a.legend(fontsize=8)
        else:
            a.text(0.5, 0.5, "nobody was scheduled", ha="center", transform=a.transAxes)
        a.set_xlabel(f"device round {col.split('_')[0]} [{unit}]")
        a.set_ylabel("device-rounds")
        a.set_title(f"({letter}) device round {'time' if col == 'time_s' else 'energy'}")

    # (f) bits, (g) powers.
    if dr.height:
        bits = dr.group_by("bits").len().sort("bits")
        ax[5].bar([str(b) for b in bits["bits"].to_list()], bits["len"].to_list(), color="tab:blue")
        ax[6].hist(dr["power_w"].to_list(), bins=30, color="tab:blue")
    ax[5].set_xlabel("activation bits (32 = fp32)")
    ax[5].set_ylabel("device-rounds")
    ax[5].set_title("(f) bits chosen")
    ax[6].set_xlabel("transmit power [W]")
    ax[6].set_ylabel("device-rounds")
    ax[6].set_title("(g) powers chosen")

    # (h) why candidates were left out.
    counts = reason_counts(lo)
    ax[7].barh(list(counts), list(counts.values()), color="gray")
    ax[7].set_xlabel("candidate-rounds left out")
    ax[7].set_title("(h) why candidates were left out" + ("" if lo is not None else " (no left_out table)"))

    # (i) cells: load and SINR, or the SINR distribution with one cell.
    if cells is not None and cells.height > 1 and dr.height:
        per = dr.group_by("cell").agg(pl.len().alias("scheduled"), pl.col("sinr_db").mean().alias("sinr_db")).sort("cell")
        ax[8].bar(per["cell"].to_list(), per["scheduled"].to_list(), color="tab:blue", label="scheduled uploads")
        ax[8].set_xlabel("cell")
        ax[8].set_ylabel("device-rounds")
        tw = ax[8].twinx()
        tw.plot(per["cell"].to_list(), per["sinr_db"].to_list(), "o", color="tab:red", label="mean SINR")
        tw.set_ylabel("mean SINR [dB]")
        ax[8].set_title("(i) per-cell load and SINR")
    else:
        if dr.height:
            ax[8].hist(dr["sinr_db"].to_list(), bins=30, color="tab:blue")
        ax[8].set_xlabel("SINR [dB]")
        ax[8].set_ylabel("device-rounds")
        ax[8].set_title("(i) SINR of the scheduled uploads (one cell)")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def markdown(t, summary, title, png_name):
    rounds, dr, lo = t["rounds"], t["device_rounds"], t["left_out"]
    f = fates(rounds)
    n = lambda c: int(f[c].sum())
    lines = [f"# {title}", "", f"![report]({png_name})", ""]
    if summary:
        lines += [
            f"framework `{summary.get('framework')}`, allocator `{summary.get('allocator')}`, "
            f"{summary.get('devices')} devices, {summary.get('rounds')} rounds, seed {summary.get('seed')}; "
            f"simulated {summary.get('simulated_s', 0):.1f} s in {summary.get('wall_s', 0):.1f} s wall; "
            f"timing model {summary.get('timing_model')}, trained model {summary.get('trained_model') or 'none (timing only)'}.",
            "",
        ]
    lines += ["| | value |", "|---|---|"]
    lines.append(f"| candidate-rounds | {n('candidates')} |")
    lines.append(f"| scheduled | {n('scheduled')} |")
    lines.append(f"| finished | {n('finished')} |")
    lines.append(f"| stragglers | {n('stragglers')} |")
    lines.append(f"| failed (dropped or offline) | {n('failed')} |")
    for r, c in reason_counts(lo).items():
        lines.append(f"| left out: {r} | {c} |")
    lines.append(f"| devices' energy [J] | {rounds['energy_j'].sum():.4g} |")
    lines.append(f"| simulated time [s] | {rounds['end_s'].max():.4g} |")
    if dr.height:
        lines.append(f"| mean bits of the scheduled | {dr['bits'].mean():.3g} |")
        lines.append(f"| device round time p50 / p90 / max [s] | {dr['time_s'].quantile(0.5):.3g} / {dr['time_s'].quantile(0.9):.3g} / {dr['time_s'].max():.3g} |")
    acc = rounds.filter(pl.col("accuracy").is_not_null()) if "accuracy" in rounds.columns else rounds.clear()
    if acc.height:
        last = acc.row(-1, named=True)
        lines.append(f"| last test accuracy | {last['accuracy']:.4f} (round {last['round']}, {last['end_s']:.1f} s) |")
        lines.append(f"| best test accuracy | {acc['accuracy'].max():.4f} |")
    lines += ["", "## Rounds", ""]
    cols = ["round", "end_s", "candidates", "scheduled", "finished", "stragglers", "failed", "left_out"]
    extra = [c for c in ["energy_j", "mean_bits", "loss", "accuracy"] if c in rounds.columns]
    table = f.join(rounds.select(["round"] + extra), on="round")
    shown = table.head(50)
    lines.append("| " + " | ".join(cols + extra) + " |")
    lines.append("|" + "---|" * len(cols + extra))
    for row in shown.iter_rows(named=True):
        cells = []
        for c in cols + extra:
            v = row[c]
            cells.append("-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    if table.height > shown.height:
        lines.append(f"\n({table.height - shown.height} more rounds in rounds.parquet)")
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    run = Path(sys.argv[1])
    stem = Path(sys.argv[2]) if len(sys.argv) > 2 else run.parent / f"{run.resolve().name}.report"
    t, summary = read_run(run)
    title = f"sflam run {summary.get('scenario', run.name)} ({run})"
    stem.parent.mkdir(parents=True, exist_ok=True)
    png = stem.with_name(stem.name + ".png")
    md = stem.with_name(stem.name + ".md")
    fig = plot(t, summary, title)
    fig.savefig(png, dpi=90)
    md.write_text(markdown(t, summary, title, png.name))
    print(f"wrote {md} and {png}")


if __name__ == "__main__":
    main()
