"""The paper's Table I from `sflam workload --json`.

usage: sflam workload --json > workload.json; python3 analysis/table1.py workload.json [OUT_DIR]"""
import json
import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import write_outputs

PAPER = {  # the paper's printed values: params MiB, GFLOPs, memory MiB
    "vit-b32": (9.0, 14.80, 18.38), "vit-l32": (12.0, 19.73, 24.50),
    "vit-b16": (2.25, 14.80, 74.00), "vit-l16": (3.0, 19.73, 98.0),
}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rows = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(sys.argv[1]).parent / "figures"
    df = pl.DataFrame(rows).select(["model", "device_params_mib", "device_gflops_batch64", "device_memory_mib", "output_shape"])
    df = df.with_columns(
        pl.col("model").replace_strict({k: v[2] for k, v in PAPER.items()}, default=None, return_dtype=pl.Float64).alias("paper_memory_mib")
    )
    paper = df.filter(pl.col("model").is_in(list(PAPER)))
    fig, ax = plt.subplots(figsize=(7, 4))
    x = range(paper.height)
    ax.bar([i - 0.2 for i in x], paper["device_memory_mib"].to_list(), width=0.4, label="sflam (consistent rule)")
    ax.bar([i + 0.2 for i in x], paper["paper_memory_mib"].to_list(), width=0.4, label="paper")
    ax.set_xticks(list(x), paper["model"].to_list())
    ax.set_ylabel("device memory [MiB]")
    ax.legend()
    write_outputs(df, fig, out / "table1", "Table I: device side of the split (batch 64, fp32)")


if __name__ == "__main__":
    main()
