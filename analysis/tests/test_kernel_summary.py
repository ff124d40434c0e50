"""Tests of benches/kernel_summary.py (the GPU kernel profile's sums) on
logs written here in CubeCL 0.11's format, as its profiler wrote them
under Burn's wgpu backend: one `| {duration:<10?} | {name}_{hash}` line
per timed launch (Rust's Debug form of a Duration), `| not measured |`
for an untimed one, and the summary table it prints after each sync, whose
rows must not be counted twice.

run: python3 -m pytest -q analysis/tests"""

import subprocess
import sys
from pathlib import Path

BENCHES = Path(__file__).resolve().parents[2] / "benches"
sys.path.insert(0, str(BENCHES))
import kernel_summary  # noqa: E402


def line(duration, name):
    return f"| {duration:<10} | {name}\n"


SUMMARY = [
    "|⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺⎺| \n",
    "| Name                  | Duration | Num Computed | Ratio |\n",
    "|⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼⎼| \n",
    "| MatmulEntry_1a2b3c4d  | 2.5ms    | 2            | 99 %  |\n",
    "| Total                 | 2.5ms    | 2            | 100 % |\n",
]


def test_sums_by_kernel_family_in_seconds_and_skips_the_summary_table():
    log = [
        line("1.5ms", "MatmulEntry_1a2b3c4d"),
        line("1ms", "MatmulEntry_99aa00ff"),
        line("800ns", "ElemwiseFuse_602ca558"),
        line("12.25µs", "ElemwiseFuse_d9ae81c1"),
        line("2s", "ReduceKernel | TensorArgs_5d44d85b"),
        line("995.446µs", "PrngKernel | NormalFamily_08ec0ed9"),
        "| not measured | CopyKernel_12c2eefc\n",
        *SUMMARY,
    ]
    seconds, launches, unmeasured = kernel_summary.summarize(log)
    assert abs(seconds["MatmulEntry"] - 2.5e-3) < 1e-15
    assert abs(seconds["ElemwiseFuse"] - (800e-9 + 12.25e-6)) < 1e-15
    assert seconds["ReduceKernel | TensorArgs"] == 2.0
    assert abs(seconds["PrngKernel | NormalFamily"] - 995.446e-6) < 1e-15
    assert launches == {"MatmulEntry": 2, "ElemwiseFuse": 2, "ReduceKernel | TensorArgs": 1,
                        "PrngKernel | NormalFamily": 1}
    assert unmeasured == {"CopyKernel": 1}
    assert "Name" not in seconds and "Total" not in seconds


def test_the_shorter_runs_log_is_subtracted_kernel_by_kernel(tmp_path):
    warmup = [line("5ms", "AutotuneProbe_00112233"), line("1ms", "MatmulEntry_1a2b3c4d")]
    longer = tmp_path / "long.log"
    shorter = tmp_path / "short.log"
    shorter.write_text("".join(warmup))
    longer.write_text("".join(warmup + [line("1ms", "MatmulEntry_1a2b3c4d")] * 4 + [line("250µs", "Softmax_abcdef01")] * 4))
    out = subprocess.run(
        [sys.executable, str(BENCHES / "kernel_summary.py"), str(longer), "--minus", str(shorter),
         "--steps", "2", "--step-s", "0.005"],
        check=True, capture_output=True, text=True,
    ).stdout
    # 4 matmuls (4 ms) and 4 softmaxes (1 ms) over 2 steps: 2.5 ms a step,
    # half of the 5 ms step; the warm-up's autotuning is gone.
    assert "4 timed launches a step, 2.50 ms of kernel time a step, 2 kernel families" in out
    assert "kernels 50% of it" in out
    assert " 80.0%     2.000            2.0  MatmulEntry" in out
    assert "AutotuneProbe" not in out


def test_a_log_without_kernel_lines_is_an_error_naming_the_file(tmp_path):
    empty = tmp_path / "empty.log"
    empty.write_text("".join(SUMMARY))
    r = subprocess.run([sys.executable, str(BENCHES / "kernel_summary.py"), str(empty)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "empty.log: no kernel lines" in r.stderr


def test_a_real_log_adds_up_to_cubecls_own_summary():
    """tests/reference/cubecl_profile_lavapipe.log: the profiler's lines up
    to its first summary table, written under Burn's wgpu backend on Mesa's
    software Vulkan (lavapipe) by examples/train_step's first kernels. The
    table is CubeCL's own sum of the same launches, by compiled kernel: the
    script's sums by kernel (hash kept) must equal it."""
    path = Path(__file__).resolve().parents[2] / "tests" / "reference" / "cubecl_profile_lavapipe.log"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    table_start = next(i for i, ln in enumerate(lines) if ln.startswith("| Name"))
    launches_part = lines[:table_start]
    table = {}
    for ln in lines[table_start + 2:]:
        cells = [c.strip() for c in ln.strip().strip("|").split(" | ")]
        if len(cells) < 4 or cells[0] == "Total":
            continue
        name, duration, count = " | ".join(cells[:-3]), cells[-3], int(cells[-2])
        m = kernel_summary.LINE.match(f"| {duration} | x")
        table[name] = (float(m["value"]) * kernel_summary.UNITS[m["unit"]], count)
    assert len(table) >= 10
    by_kernel, launches = {}, {}
    for ln in launches_part:
        m = kernel_summary.LINE.match(ln.rstrip("\n"))
        if m:
            s = float(m["value"]) * kernel_summary.UNITS[m["unit"]]
            by_kernel[m["name"]] = by_kernel.get(m["name"], 0.0) + s
            launches[m["name"]] = launches.get(m["name"], 0) + 1
    assert set(by_kernel) == set(table)
    for name, (seconds, count) in table.items():
        assert launches[name] == count, name
        assert abs(by_kernel[name] - seconds) <= 2e-9 * count, (name, by_kernel[name], seconds)
    # And by family: the two Prng families' four launches fold into two keys.
    seconds, fam_launches, _ = kernel_summary.summarize(launches_part)
    assert abs(sum(seconds.values()) - sum(s for s, _ in table.values())) < 1e-6
    assert fam_launches["PrngKernel | NormalFamily"] == table["PrngKernel | NormalFamily_a08bd321"][1] + \
        table["PrngKernel | NormalFamily_08ec0ed9"][1]
