"""A small PPO agent (stable-baselines3) trained on sflam's RoundEnv, then
compared on held-out seeds with a random policy, the greedy policy of
policies.py, and the built-in `exact` and `bcd` called from Python.

    pip install stable-baselines3
    python examples/python/ppo.py [--steps 20000] [--rounds 30] [--seeds 1001,1002,1003]

Fig. 4's network (200 devices, 30 candidates, 10 RBs, T_max = 10 s),
timing only; the flat action form (RB or none, one of 4 power levels, bits
per candidate); the reward is the round's realized objective [J], scaled by
1/100 for training. Prints a Markdown table: realized objective per round
on the held-out seeds, and the training wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import sflam
from sflam.gym import RoundEnv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from policies import POLICIES, evaluate  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--seeds", default="1001,1002,1003")
    ap.add_argument("--seed", type=int, default=0, help="PPO's seed (network, episodes)")
    a = ap.parse_args()
    from stable_baselines3 import PPO

    scenario = sflam.scenario(ROOT / "scenarios/fig4.toml", [f"run.rounds={a.rounds}"])
    env = gym.wrappers.TransformReward(RoundEnv(scenario, action_form="flat"), lambda r: r / 100.0)
    model = PPO("MultiInputPolicy", env, n_steps=512, batch_size=128, learning_rate=3e-4, seed=a.seed,
                device="cpu", verbose=0)
    t = time.perf_counter()
    model.learn(total_timesteps=a.steps)
    train_s = time.perf_counter() - t

    seeds = [int(x) for x in a.seeds.split(",")]
    evaluation = RoundEnv(scenario, action_form="flat")
    total, rounds = 0.0, 0
    for seed in seeds:
        obs, _ = evaluation.reset(seed=seed)
        while True:
            action, _ = model.predict(obs, deterministic=True)
            obs, r, term, trunc, _ = evaluation.step(action)
            total += r
            rounds += 1
            if term or trunc:
                break
    print(f"PPO: {a.steps} steps in {train_s:.0f} s ({a.steps / train_s:.0f} steps/s, "
          f"{len(seeds)} held-out seeds x {a.rounds} rounds)")
    print("| policy | realized objective per round [J] |")
    print("|---|---:|")
    print(f"| PPO ({a.steps} steps) | {total / rounds:.1f} |")
    for name, make in POLICIES.items():
        mean, _ = evaluate(make(), scenario, seeds)
        print(f"| {name} | {mean:.1f} |")


if __name__ == "__main__":
    main()
