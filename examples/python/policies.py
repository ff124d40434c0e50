"""Allocation policies written in Python, run inside sflam's round, against
the built-in allocators on the same seeds.

    python examples/python/policies.py [SCENARIO] [--seeds 1001,1002,1003] [--rounds 30]

A policy is any object with ``decide(problem)`` (or a callable) that
returns, per scheduled candidate, its RB, power [W] and bits: here a random
policy, a greedy one, and ``sflam.allocators.exact`` / ``bcd`` called from
Python. Prints each policy's realized objective per round (w Σ ρ U(b) over
the finished devices less all energy spent, from the ``rounds`` table).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import sflam

ROOT = Path(__file__).resolve().parents[2]


class RandomPolicy:
    """Up to K random candidates on random RBs, random power and bits."""

    def decide(self, p: sflam.Problem):
        rng = np.random.default_rng(p.seed)
        m = min(len(p), p.rb_count)
        cand = rng.permutation(len(p))[:m]
        return {
            "candidate": cand,
            "rb": rng.permutation(p.rb_count)[:m],
            "power_w": p.p_max_w[cand] * rng.uniform(0.05, 1.0, m),
            "bits": rng.integers(p.bits_min, p.bits_max + 1, m),
        }


class GreedyPolicy:
    """Candidates by their best channel, each on its best free RB with the
    bits (at the least power that meets the deadline) of the highest value
    w ρ U(b) − E; kept only when that value is positive."""

    def decide(self, p: sflam.Problem):
        gains = p.gains
        free = np.ones(p.rb_count, dtype=bool)
        out = {"candidate": [], "rb": [], "power_w": [], "bits": []}
        for c in np.argsort(-gains.max(axis=1)):
            if not free.any():
                break
            k = int(np.argmax(np.where(free, gains[c], -np.inf)))
            best = None
            for bits in range(p.bits_min, p.bits_max + 1):
                pw = p.min_power_w(int(c), k, bits)
                if pw is None or pw <= 0:
                    continue
                value = p.price(int(c), k, bits, pw)["value_j"]
                if best is None or value > best[0]:
                    best = (value, bits, pw)
            if best is None or best[0] <= 0:
                continue
            _, bits, pw = best
            free[k] = False
            for key, v in zip(out, (int(c), k, pw, bits)):
                out[key].append(v)
        return out


POLICIES = {
    "random": RandomPolicy,
    "greedy": GreedyPolicy,
    "exact (from Python)": lambda: sflam.allocators.exact,
    "bcd (from Python)": lambda: sflam.allocators.bcd,
}


def evaluate(policy, scenario: sflam.Scenario, seeds) -> tuple[float, float]:
    """Mean realized objective per round over the seeds [J], and the
    policy's wall time per round [s]."""
    total, rounds, wall = 0.0, 0, 0.0
    for seed in seeds:
        s = scenario.with_overrides([f"run.seed={seed}"])
        t = time.perf_counter()
        r = sflam.run(s, allocator=policy)
        wall += time.perf_counter() - t
        total += r.rounds["realized_objective_j"].sum()
        rounds += r.rounds.height
    return total / rounds, wall / rounds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios/fig4.toml"))
    ap.add_argument("--seeds", default="1001,1002,1003")
    ap.add_argument("--rounds", type=int, default=30)
    a = ap.parse_args()
    s = sflam.scenario(a.scenario, [f"run.rounds={a.rounds}"])
    seeds = [int(x) for x in a.seeds.split(",")]
    print(f"| policy | realized objective per round [J] | wall per round [ms] |")
    print(f"|---|---:|---:|")
    for name, make in POLICIES.items():
        mean, wall = evaluate(make(), s, seeds)
        print(f"| {name} | {mean:.1f} | {1e3 * wall:.2f} |")


if __name__ == "__main__":
    main()
