"""What a Python policy and the Gymnasium environment cost beyond sflam's
own round, on one core (the process pinned to CPU 0, one worker thread).

    python python/benches/round_overhead.py [--rounds 3000] [--repeats 3]

On Fig. 4's network (30 candidates, 10 RBs, timing only):

1. the built-in `exact` allocator in Rust: wall per round, less the
   allocator's own time (the rounds table's `alloc_wall_s`);
2. a Python policy that calls the same `exact` (`sflam.allocators.exact`):
   wall per round less the policy's own time, measured around each call;
   the difference to 1 is the overhead of asking Python;
3. `RoundEnv` steps per second with a fixed flat action (no agent).

Prints the median of the repeats; no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("RAYON_NUM_THREADS", "1")

import sflam  # noqa: E402
from sflam.gym import RoundEnv  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def builtin(s):
    t = time.perf_counter()
    r = sflam.run(s)
    wall = time.perf_counter() - t
    return (wall - r.rounds["alloc_wall_s"].sum()) / r.rounds.height


def python_policy(s):
    spent = [0.0]

    def policy(p):
        t = time.perf_counter()
        d = sflam.allocators.exact(p)
        spent[0] += time.perf_counter() - t
        return d

    t = time.perf_counter()
    r = sflam.run(s, allocator=policy)
    wall = time.perf_counter() - t
    return (wall - spent[0]) / r.rounds.height


def env_steps(rounds):
    env = RoundEnv(ROOT / "scenarios/fig4.toml", [f"run.rounds={rounds}", "run.threads=1"], action_form="flat")
    env.reset(seed=1)
    C, K = env.n_candidates, env.n_rbs
    a = np.zeros((C, 3), dtype=np.int64)
    a[:, 0] = K  # none scheduled ...
    a[:K, 0] = np.arange(K)  # ... but the first K candidates, one RB each
    a[:, 1] = env.power_levels - 1
    a[:, 2] = 0
    action = a.reshape(-1)
    n, t = 0, time.perf_counter()
    while True:
        n += 1
        if env.step(action)[2]:
            break
    return n / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    s = sflam.scenario(ROOT / "scenarios/fig4.toml", [f"run.rounds={a.rounds}", "run.threads=1"])
    b = statistics.median(builtin(s) for _ in range(a.repeats))
    p = statistics.median(python_policy(s) for _ in range(a.repeats))
    e = statistics.median(env_steps(a.rounds) for _ in range(a.repeats))
    print(f"one core, fig4 (30 candidates x 10 RBs), {a.rounds} rounds, median of {a.repeats}")
    print(f"built-in exact: {1e6 * b:.1f} us per round outside the allocator")
    print(f"Python policy:  {1e6 * p:.1f} us per round outside the policy "
          f"(overhead of asking Python: {1e6 * (p - b):.1f} us per round)")
    print(f"RoundEnv:       {e:.0f} steps/s timing-only ({1e6 / e:.1f} us per step)")


if __name__ == "__main__":
    main()
