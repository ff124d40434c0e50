"""A Gymnasium environment in which an agent plans every round of a sflam
simulation: ``RoundEnv``. One ``step`` is one round of one cell: the agent
sees the round's allocation problem (what an allocator sees) and answers
with an RB (or none), a power and a bit width per candidate; the simulator
runs the round exactly as decided (fading, OFDMA, server queue, stragglers,
failures, energy; training too when the scenario trains) and returns its
realized reward.

Spaces, for C = ``run.candidates`` and K = ``network.rb_count``
(observations padded to C; ``mask`` marks the real candidates):

* observation (``Dict``, float32): ``mask`` (C,) 1 for a candidate;
  ``gain_db`` (C, K) 10 log10 of the channel gain per RB (-400 padded);
  ``p_max_w`` (C,) [W]; ``data_share`` (C,) [1]; ``uplink_time_s`` (C,)
  time left for uploads [s]; ``fixed_time_s`` (C,) [s]; ``compute_energy_j``
  (C,) [J]; ``progress`` (1,) round / rounds. Values are clipped to the
  bounds (|times| and energies to 1e6, p_max to 1e6 W).
* action, ``action_form="native"`` (``Dict``): ``rb`` MultiDiscrete(K + 1)
  per candidate (K: none), ``power`` Box[0, 1] per candidate, the share of
  its p_max (0: none), ``bits`` MultiDiscrete per candidate, an index into
  ``env.bit_levels`` (bits_min..bits_max, then 32 = fp32).
* action, ``action_form="flat"`` (``MultiDiscrete``, for agents without
  Dict actions such as stable-baselines3's PPO): per candidate (rb in
  0..K, power level in 0..L-1 for (l + 1) / L of p_max, bits index).

Two candidates on one RB: the lower candidate index keeps it, the other is
not scheduled (counted in ``info["conflicts"]``); padded candidates are
ignored. An action outside the space raises ``ActionError``.

Rewards (``reward=``): ``"objective"`` the round's realized objective
w Σ ρ U(b) over finished devices less all energy spent [J];
``"efficiency"`` the realized efficiency [1/J]; with training,
``"accuracy_per_j"`` the accuracy gained per joule spent [1/J] and
``"accuracy_weighted"`` ``accuracy_weight_j`` × accuracy gained − energy
[J]. ``info["round"]`` is the round's row of the ``rounds`` table (its
``alloc_wall_s``, a wall time, left out so that episodes reproduce).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import sflam
from . import _sflam

REWARDS = ("objective", "efficiency", "accuracy_per_j", "accuracy_weighted")
PAD_DB = -400.0


class ActionError(sflam.SflamError, ValueError):
    """An action outside the environment's action space."""


class RoundEnv(gym.Env):
    """One step per round of a one-cell sflam scenario (see the module)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        scenario: Any = None,
        overrides: Sequence[str] = (),
        *,
        reward: str = "objective",
        action_form: str = "native",
        power_levels: int = 4,
        accuracy_weight_j: float = 100.0,
        replan: bool = False,
    ):
        self.scenario = sflam.scenario(scenario, overrides)
        s = self.scenario
        if s.cells != 1:
            raise sflam.ConfigError(
                f"RoundEnv: cells.count = {s.cells}; the environment plans one cell "
                "(for several, give sflam.run a policy: it is asked per cell, problem.cell names it)"
            )
        if reward not in REWARDS:
            raise sflam.ConfigError(f"RoundEnv: reward = {reward!r}; allowed: {', '.join(REWARDS)}")
        if reward.startswith("accuracy") and not s.trains:
            raise sflam.ConfigError(f"RoundEnv: reward = {reward!r} needs a scenario that trains (training.enabled = true)")
        if action_form not in ("native", "flat"):
            raise sflam.ConfigError(f"RoundEnv: action_form = {action_form!r}; allowed: native, flat")
        if power_levels < 1:
            raise sflam.ConfigError(f"RoundEnv: power_levels = {power_levels}; at least 1")
        self.reward_kind = reward
        self.action_form = action_form
        self.power_levels = int(power_levels)
        self.accuracy_weight_j = float(accuracy_weight_j)
        self.replan = replan
        C, K = s.candidates, s.rb_count
        bmin, bmax = s.bits
        self.n_candidates, self.n_rbs = C, K
        self.bit_levels = np.array(list(range(bmin, bmax + 1)) + [32], dtype=np.int64)
        f32 = np.float32
        big = 1e6
        self.observation_space = spaces.Dict(
            {
                "mask": spaces.Box(0.0, 1.0, (C,), f32),
                "gain_db": spaces.Box(PAD_DB, 100.0, (C, K), f32),
                "p_max_w": spaces.Box(0.0, big, (C,), f32),
                "data_share": spaces.Box(0.0, 1.0, (C,), f32),
                "uplink_time_s": spaces.Box(-big, big, (C,), f32),
                "fixed_time_s": spaces.Box(0.0, big, (C,), f32),
                "compute_energy_j": spaces.Box(0.0, big, (C,), f32),
                "progress": spaces.Box(0.0, 1.0, (1,), f32),
            }
        )
        nb = len(self.bit_levels)
        if action_form == "native":
            self.action_space = spaces.Dict(
                {
                    "rb": spaces.MultiDiscrete(np.full(C, K + 1)),
                    "power": spaces.Box(0.0, 1.0, (C,), f32),
                    "bits": spaces.MultiDiscrete(np.full(C, nb)),
                }
            )
        else:
            self.action_space = spaces.MultiDiscrete(np.tile([K + 1, self.power_levels, nb], C))
        self._session: Optional[_sflam.Session] = None
        self._problem: Optional[_sflam.Problem] = None
        self._accuracy = 0.0
        self.episode_seed: Optional[int] = None
        self.result: Optional[sflam.Run] = None

    # -- the episode ------------------------------------------------------

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        """Starts an episode: the scenario at ``run.seed = seed`` (a seed
        drawn from the environment's generator when None)."""
        super().reset(seed=seed)
        self._end()
        self.episode_seed = int(seed) if seed is not None else int(self.np_random.integers(0, 2**63 - 1))
        s = self.scenario.with_overrides([f"run.seed={self.episode_seed}"])
        self._session = _sflam.Session(s, policy=True, replan=self.replan, rounds=True)
        self._accuracy = 0.0
        self.result = None
        rows, done = self._advance()
        if done:
            raise sflam.SflamError("RoundEnv: the scenario ended before its first allocation problem")
        return self._observation(), {"seed": self.episode_seed, "rows": rows}

    def step(self, action):
        if self._session is None or self._problem is None:
            raise gym.error.ResetNeeded("RoundEnv: call reset() before step() (and after an episode ends)")
        picks, conflicts = self._picks(action)
        self._session.decide(picks)
        rows, terminated = self._advance()
        reward = self._reward(rows)
        info = {
            "round": rows[-1] if rows else None,
            "rows": rows,
            "scheduled": len(picks["candidate"]),
            "conflicts": conflicts,
        }
        obs = self._observation()
        return obs, reward, terminated, False, info

    def close(self):
        self._end()

    # -- helpers ----------------------------------------------------------

    def _end(self):
        if self._session is not None:
            self._session.close()
        self._session = None
        self._problem = None

    def _advance(self):
        """Runs to the next allocation problem or to the end; the rounds
        that ended on the way."""
        rows = []
        while True:
            kind, x = self._session.next()
            if kind == "round":
                # The allocator's wall time is the one column that varies
                # between runs: left out, so that an episode reproduces.
                x.pop("alloc_wall_s", None)
                rows.append(x)
            elif kind == "problem":
                self._problem = x
                return rows, False
            else:
                self.result = sflam._finished(x)
                self._session.close()
                self._session = None
                self._problem = None
                return rows, True

    def _reward(self, rows) -> float:
        if self.reward_kind == "objective":
            return float(sum(r["realized_objective_j"] for r in rows))
        if self.reward_kind == "efficiency":
            return float(sum(r["realized_efficiency_per_j"] for r in rows))
        energy = float(sum(r["energy_j"] for r in rows))
        acc = self._accuracy
        for r in rows:
            if r.get("accuracy") is not None:
                acc = float(r["accuracy"])
        gained, self._accuracy = acc - self._accuracy, acc
        if self.reward_kind == "accuracy_per_j":
            return gained / energy if energy > 0 else 0.0
        return self.accuracy_weight_j * gained - energy

    def _observation(self):
        C, K = self.n_candidates, self.n_rbs
        f32 = np.float32
        obs = {
            "mask": np.zeros(C, f32),
            "gain_db": np.full((C, K), PAD_DB, f32),
            "p_max_w": np.zeros(C, f32),
            "data_share": np.zeros(C, f32),
            "uplink_time_s": np.zeros(C, f32),
            "fixed_time_s": np.zeros(C, f32),
            "compute_energy_j": np.zeros(C, f32),
            "progress": np.zeros(1, f32),
        }
        p = self._problem
        rounds = max(self.scenario.rounds, 1)
        if p is None:
            obs["progress"][0] = 1.0
            return obs
        n = len(p)
        if n > C:
            raise sflam.SflamError(f"RoundEnv: {n} candidates in round {p.round}, more than run.candidates = {C}")
        obs["mask"][:n] = 1.0
        with np.errstate(divide="ignore"):
            obs["gain_db"][:n] = np.clip(10.0 * np.log10(p.gains), PAD_DB, 100.0)
        big = 1e6
        obs["p_max_w"][:n] = np.clip(p.p_max_w, 0.0, big)
        obs["data_share"][:n] = np.clip(p.data_share, 0.0, 1.0)
        obs["uplink_time_s"][:n] = np.clip(p.uplink_time_s, -big, big)
        obs["fixed_time_s"][:n] = np.clip(p.fixed_time_s, 0.0, big)
        obs["compute_energy_j"][:n] = np.clip(p.compute_energy_j, 0.0, big)
        obs["progress"][0] = min(p.round / rounds, 1.0)
        return obs

    def _picks(self, action):
        if not self.action_space.contains(action):
            raise ActionError(f"RoundEnv: action outside the action space {self.action_space}: {action!r}")
        C, K = self.n_candidates, self.n_rbs
        if self.action_form == "native":
            rb = np.asarray(action["rb"], dtype=np.int64)
            share = np.asarray(action["power"], dtype=np.float64)
            bits = np.asarray(action["bits"], dtype=np.int64)
        else:
            a = np.asarray(action, dtype=np.int64).reshape(C, 3)
            rb, bits = a[:, 0], a[:, 2]
            share = (a[:, 1] + 1) / self.power_levels
        p = self._problem
        n = len(p)
        p_max = p.p_max_w
        used = np.zeros(K, dtype=bool)
        out = {"candidate": [], "rb": [], "power_w": [], "bits": []}
        conflicts = 0
        for i in range(n):
            k = int(rb[i])
            if k == K or share[i] <= 0.0:
                continue
            if used[k]:
                conflicts += 1
                continue
            used[k] = True
            out["candidate"].append(i)
            out["rb"].append(k)
            out["power_w"].append(float(min(share[i], 1.0) * p_max[i]))
            out["bits"].append(int(self.bit_levels[bits[i]]))
        return out, conflicts


# `gymnasium.make("sflam/RoundEnv-v0", scenario=...)`.
gym.register(id="sflam/RoundEnv-v0", entry_point="sflam.gym:RoundEnv")
