"""Shared helpers for the analysis scripts: read a run or a hive-partitioned
sweep folder written by `sflam run` / `sflam sweep` into polars frames."""
from pathlib import Path
import sys

import polars as pl


def scan(folder, table):
    """All `<table>.parquet` under `folder` as one frame, with the sweep's
    `key=value` folder levels as columns (polars' hive partitioning: the
    value types are inferred, e.g. `run.deadline_s=8` is a number). Points
    a sweep is still running (folders ending in `.partial`, whose files are
    not whole yet) are left out, and said so on stderr."""
    folder = Path(folder)
    files = finished_files(folder, f"{table}.parquet", say=True)
    if not files:
        sys.exit(f"error: no {table}.parquet under {folder} (run `sflam run` or `sflam sweep` first)")
    return pl.scan_parquet([str(p) for p in files], hive_partitioning=True).collect()


def finished_files(folder, name, say=False):
    """Every file called `name` under `folder`, sorted, except those of
    points a sweep is still running (folders ending in `.partial`); with
    `say`, how many were left out is said on stderr."""
    folder = Path(folder)
    found = sorted(folder.rglob(name))
    files = [p for p in found if not any(part.endswith(".partial") for part in p.relative_to(folder).parts)]
    if say and len(files) < len(found):
        print(f"note: left out {len(found) - len(files)} unfinished point(s) (*.partial) under {folder}", file=sys.stderr)
    return files


def label_axes(axes, xlabel, ylabels):
    """Names each panel's axes (the x label shared, one y label each) and
    draws a light grid; the first panel gets the legend."""
    for ax, yl in zip(axes, ylabels):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
    axes[0].legend()


def write_outputs(df, fig, out_stem, title):
    """Writes `<stem>.md` (the table of `df`, in Markdown) and `<stem>.png`
    (the matplotlib figure `fig`), and says so."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    cols = df.columns
    lines = [f"# {title}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.iter_rows():
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    md = out_stem.with_suffix(".md")
    md.write_text("\n".join(lines) + "\n")
    fig.tight_layout()
    png = out_stem.with_suffix(".png")
    fig.savefig(png, dpi=120)
    print(f"wrote {md} and {png}")


def sweep_table(doc, table, keys):
    """The command line of a figure script, `SWEEP_DIR [OUT_DIR]`: returns
    (`table` of the sweep as one frame, the output folder, default
    SWEEP_DIR/figures), after checking that the sweep varies every key."""
    if len(sys.argv) < 2:
        sys.exit(doc)
    sweep = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else sweep / "figures"
    df = scan(sweep, table)
    for col in keys:
        if col not in df.columns:
            sys.exit(f"error: {sweep} is not a sweep over {col}")
    return df, out
