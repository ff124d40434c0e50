"""Fig. 4 under both utilities: the bits chosen, the uplink energy and the
total energy per scheduled device against the deadline, for each
allocator with the assumed U(b) and with a measured table
(`allocator.utility = "table"`). The table gives each point's values and
the change the measured utility makes.

usage: python3 analysis/fig4_utility.py SWEEP_DIR [OUT_DIR]   (OUT_DIR defaults to SWEEP_DIR/figures)
the sweep: sflam sweep scenarios/fig4.toml --common-seed -o runs/fig4-utility \\
             --set 'allocator.utility_file="scenarios/utility-fmnist.csv"' \\
             --grid allocator.name=exact,bcd --grid run.deadline_s=6,8,10,12,15,20 \\
             --grid allocator.utility=assumed,table"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from common import label_axes, sweep_table, write_outputs

KEYS = ["allocator.name", "run.deadline_s", "allocator.utility"]


def table(dr):
    t = (
        dr.group_by(KEYS)
        .agg(
            pl.col("bits").mean().alias("mean_bits"),
            pl.col("energy_com_j").mean().alias("uplink_energy_per_device_j"),
            pl.col("energy_j").mean().alias("energy_per_device_j"),
        )
        .sort(KEYS)
    )
    a = t.filter(pl.col("allocator.utility") == "assumed").drop("allocator.utility")
    m = t.filter(pl.col("allocator.utility") == "table").drop("allocator.utility")
    j = a.join(m, on=["allocator.name", "run.deadline_s"], suffix="_measured")
    return j.with_columns(
        (pl.col("energy_per_device_j_measured") / pl.col("energy_per_device_j") - 1).alias("energy_change"),
        (pl.col("uplink_energy_per_device_j_measured") / pl.col("uplink_energy_per_device_j") - 1).alias("uplink_change"),
    ).sort("allocator.name", "run.deadline_s")


def main():
    dr, out = sweep_table(__doc__, "device_rounds", KEYS)
    t = table(dr)
    fig, ax = plt.subplots(1, 3, figsize=(17, 5))
    for name in t["allocator.name"].unique().sort().to_list():
        g = t.filter(pl.col("allocator.name") == name)
        x = g["run.deadline_s"].to_list()
        for suffix, style, label in [("", "o-", "assumed U"), ("_measured", "s--", "measured U")]:
            ax[0].plot(x, g["mean_bits" + suffix], style, label=f"{name}, {label}")
            ax[1].plot(x, g["uplink_energy_per_device_j" + suffix], style, label=f"{name}, {label}")
            ax[2].plot(x, g["energy_per_device_j" + suffix], style, label=f"{name}, {label}")
    label_axes(ax, "T_max [s]", ["mean bits", "uplink energy per device [J]", "energy per device [J]"])
    write_outputs(t, fig, out / "fig4_utility", "Fig. 4 under the assumed and the measured utility")


if __name__ == "__main__":
    main()
