"""Sums CubeCL's kernel profile log by kernel: where a GPU step's time goes.

CubeCL (under Burn's wgpu backend) writes one line per kernel it runs when
its profiling logger is on (`[profiling.logger] level = "basic"` in a
`cubecl.toml`, as `benches/gpu_kernels.sh` sets it):

    | 12.345µs   | ElemwiseFuse_602ca558
    | 995.446µs  | PrngKernel | NormalFamily_08ec0ed9
    | not measured | name          (no timestamp: counted, not timed)

and, after each sync, a summary table (its lines start with "|⎺", "| Name"
and so on; they repeat the per-kernel lines and are skipped here).

usage: python3 benches/kernel_summary.py LOG [--minus LOG0] [--steps N]
                                         [--step-s S] [--top K]
  --minus:  a log of the same run with fewer steps, subtracted kernel by
            kernel: what is left is the extra steps alone, without the first
            steps' compilation and autotuning launches
  --steps:  how many training steps that leaves (per-step figures)
  --step-s: the step's wall time without profiling [s] (from train_step), to
            say how much of it the kernels account for; the rest is the host:
            launches, autodiff bookkeeping, synchronisation
"""
import argparse
import collections
import re
import sys

UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
# Rust's Debug form of a Duration: 1.5s, 12.345ms, 7µs, 800ns.
LINE = re.compile(r"^\|\s*(?P<value>[0-9]+(?:\.[0-9]+)?)(?P<unit>ns|µs|us|ms|s)\s*\|\s*(?P<name>.+?)\s*$")
UNMEASURED = re.compile(r"^\|\s*not measured\s*\|\s*(?P<name>.+?)\s*$")


def kernel_family(name):
    """The kernel's name without the hash of its compiled variant (CubeCL
    names a launch `Kernel_1a2b3c4d`, or `Kernel | Family_1a2b3c4d`) and
    without generic arguments, so that one operation's launches at
    different shapes and fusions add up."""
    name = re.split(r"[<({\[]", name, maxsplit=1)[0].strip() or name
    return re.sub(r"_[0-9a-f]{6,}$", "", name)


def summarize(lines):
    """(seconds, launches) by kernel family, and the unmeasured launches."""
    seconds, launches, unmeasured = collections.Counter(), collections.Counter(), collections.Counter()
    for line in lines:
        line = line.rstrip("\n")
        m = LINE.match(line)
        if m:
            family = kernel_family(m["name"])
            seconds[family] += float(m["value"]) * UNITS[m["unit"]]
            launches[family] += 1
            continue
        m = UNMEASURED.match(line)
        if m:
            unmeasured[kernel_family(m["name"])] += 1
    return seconds, launches, unmeasured


def main():
    p = argparse.ArgumentParser()
    p.add_argument("log")
    p.add_argument("--minus")
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--step-s", type=float)
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    with open(a.log, encoding="utf-8", errors="replace") as f:
        seconds, launches, unmeasured = summarize(f)
    if a.minus:
        with open(a.minus, encoding="utf-8", errors="replace") as f:
            seconds0, launches0, unmeasured0 = summarize(f)
        # Counter subtraction keeps only what stays positive: a kernel that
        # ran only in the shorter run (autotuning it) drops out.
        seconds, launches, unmeasured = seconds - seconds0, launches - launches0, unmeasured - unmeasured0
    if not seconds and not unmeasured:
        sys.exit(f"{a.log}: no kernel lines (is [profiling.logger] level = \"basic\" set?)")
    total = sum(seconds.values())
    n = max(a.steps, 1)
    print(f"kernels: {sum(launches.values()) / n:.0f} timed launches a step, "
          f"{total / n * 1e3:.2f} ms of kernel time a step, {len(seconds)} kernel families")
    if a.step_s:
        print(f"step wall time {a.step_s * 1e3:.2f} ms: kernels {100 * total / n / a.step_s:.0f}% of it, "
              f"the host and launch gaps the rest")
    if unmeasured:
        print(f"not timed by the driver: {sum(unmeasured.values()) / n:.0f} launches a step")
    print(f"{'share':>6} {'ms/step':>9} {'launches/step':>14}  kernel")
    for family, s in seconds.most_common(a.top):
        print(f"{100 * s / total:5.1f}% {s / n * 1e3:9.3f} {launches[family] / n:14.1f}  {family[:120]}")


if __name__ == "__main__":
    main()
