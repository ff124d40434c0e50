"""A synthetic device trace with real-world-like shape, for runs on
measured-looking devices without downloading FedScale's: heavy-tailed
capacities and diurnal availability.

- Compute: `flops_per_s` log-normal, median `--flops-median` (default 2e9
  FLOP/s) and sigma 1.0 (the spread of phone benchmarks: the slowest tenth
  about 13x slower than the fastest tenth).
- Uplink: `uplink_bps` log-normal, median `--uplink-median` (default 5e6
  bit/s), sigma 1.2, clipped to [1e5, 1e8] bit/s (measured mobile uplinks
  span two orders of magnitude).
- Availability, one day repeating (`period_s` = 86,400): each device is
  online in one night window (phones on chargers), starting at a normal
  time around 22:00 (sd 2 h) and lasting 4 to 10 h, and in one daytime
  session of 10 to 90 minutes at a uniform time; windows that cross
  midnight are split, overlapping ones merged.

Time 0 of the trace is midnight; a run that starts there sees the night
population. Everything is drawn from `--seed`; the same seed gives the
same files.

usage: python3 analysis/synthetic_traces.py N DEVICES.csv AVAILABILITY.csv [--seed S]
       [--flops-median F] [--uplink-median U]"""

import argparse
import csv
import math
import random

DAY = 86400.0


def windows(rng):
    """One device's online intervals within [0, DAY), sorted, disjoint."""
    out = []
    start = (rng.gauss(22 * 3600, 2 * 3600)) % DAY
    length = rng.uniform(4 * 3600, 10 * 3600)
    session = (rng.uniform(8 * 3600, 20 * 3600), rng.uniform(600, 5400))
    for s, l in [(start, length), session]:
        e = s + l
        if e <= DAY:
            out.append((s, e))
        else:
            out.append((s, DAY))
            out.append((0.0, e - DAY))
    out.sort()
    merged = []
    for s, e in out:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return [(round(s, 3), round(e, 3)) for s, e in merged if round(e, 3) > round(s, 3)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("n", type=int)
    ap.add_argument("devices_csv")
    ap.add_argument("availability_csv")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--flops-median", type=float, default=2e9)
    ap.add_argument("--uplink-median", type=float, default=5e6)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with open(a.devices_csv, "w", newline="") as f, open(a.availability_csv, "w", newline="") as g:
        dw = csv.writer(f)
        aw = csv.writer(g)
        dw.writerow(["device", "flops_per_s", "uplink_bps"])
        aw.writerow(["device", "start_s", "end_s", "period_s"])
        for d in range(a.n):
            flops = a.flops_median * math.exp(rng.gauss(0, 1.0))
            up = min(1e8, max(1e5, a.uplink_median * math.exp(rng.gauss(0, 1.2))))
            dw.writerow([d, f"{flops:.6e}", f"{up:.6e}"])
            for s, e in windows(rng):
                aw.writerow([d, s, e, DAY])
    print(f"wrote {a.n} devices to {a.devices_csv} and their day to {a.availability_csv}")


if __name__ == "__main__":
    main()
