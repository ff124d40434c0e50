"""The Gymnasium environment: the checker, exact reproduction from a seed,
rewards against the run's own traces, actions outside the space, vector
environments, and a few PPO steps."""

import functools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sflam
from sflam.gym import ActionError, RoundEnv

ROUNDS = 5


def make(root, **kw):
    return RoundEnv(root / "scenarios/fig4.toml", [f"run.rounds={ROUNDS}"], **kw)


@pytest.mark.parametrize("form", ["native", "flat"])
def test_env_checker(root, form):
    env = make(root, action_form=form)
    check_env(env, skip_render_check=True)
    env.close()


def episode(env, seed, actions_seed=0):
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(actions_seed)
    out = [obs]
    while True:
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out.append((obs, r, info["round"]))
        if term or trunc:
            return out


def same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def test_reset_with_a_seed_reproduces_an_episode(root):
    env = make(root)
    a, b = episode(env, 7), episode(env, 7)
    assert len(a) == ROUNDS + 1 and same(a, b)
    c = episode(env, 8)
    assert not same(a, c)


def test_reward_is_the_rounds_realized_objective(root):
    env = make(root, action_form="flat")
    steps = episode(env, 3)
    rewards = [r for _, r, _ in steps[1:]]
    assert env.result is not None
    assert rewards == env.result.rounds["realized_objective_j"].to_list()
    # The environment's episode is the run of its seed.
    assert env.result.summary["seed"] == 3


def test_actions_run_as_given(root):
    env = make(root)
    obs, _ = env.reset(seed=1)
    n = int(obs["mask"].sum())
    C, K = env.n_candidates, env.n_rbs
    rb = np.full(C, K)
    rb[:3] = [4, 4, 7]  # candidate 1 loses RB 4 to candidate 0
    action = {"rb": rb, "power": np.full(C, 0.5, np.float32), "bits": np.zeros(C, np.int64)}
    _, _, _, _, info = env.step(action)
    assert n >= 3 and info["scheduled"] == 2 and info["conflicts"] == 1
    env.close()


def test_actions_outside_the_space(root):
    env = make(root)
    env.reset(seed=1)
    C = env.n_candidates
    bad = {"rb": np.full(C, 99), "power": np.zeros(C, np.float32), "bits": np.zeros(C, np.int64)}
    with pytest.raises(ActionError, match="outside the action space"):
        env.step(bad)
    with pytest.raises(gym.error.ResetNeeded):
        make(root).step(env.action_space.sample())
    with pytest.raises(sflam.ConfigError, match="reward"):
        make(root, reward="accuracy_per_j")
    with pytest.raises(sflam.ConfigError, match="cells.count"):
        RoundEnv(root / "scenarios/cells.toml", ["training.enabled=false"])


def test_training_reward(root):
    env = RoundEnv(root / "scenarios/default.toml",
                   ["run.rounds=2", "training.train_samples=2000", "training.eval_samples=100", "training.eval_every=1"],
                   reward="accuracy_per_j", action_form="flat")
    steps = episode(env, 1)
    rows = env.result.rounds
    acc, energy = rows["accuracy"].to_list(), rows["energy_j"].to_list()
    want = [acc[0] / energy[0] if energy[0] > 0 else 0.0, (acc[1] - acc[0]) / energy[1] if energy[1] > 0 else 0.0]
    assert [r for _, r, _ in steps[1:]] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("vector", ["sync", "async"])
def test_vector_envs_match_single_envs(root, vector):
    fn = functools.partial(RoundEnv, str(root / "scenarios/fig4.toml"), [f"run.rounds={ROUNDS}"], action_form="flat")
    if vector == "sync":
        venv = gym.vector.SyncVectorEnv([fn, fn])
    else:
        venv = gym.vector.AsyncVectorEnv([fn, fn], context="spawn")
    obs, _ = venv.reset(seed=[11, 12])
    rewards = []
    venv.action_space.seed(5)
    actions = [venv.action_space.sample() for _ in range(ROUNDS)]
    for a in actions:
        obs, r, term, trunc, _ = venv.step(a)
        rewards.append(r)
    venv.close()
    assert term.all()
    for i, seed in enumerate((11, 12)):
        env = fn()
        env.reset(seed=seed)
        single = [env.step(a[i])[1] for a in actions]
        assert single == [r[i] for r in rewards]


def test_gym_make(root):
    env = gym.make("sflam/RoundEnv-v0", scenario=str(root / "scenarios/fig4.toml"), overrides=["run.rounds=2"])
    env.reset(seed=0)
    env.close()


def test_a_few_ppo_steps(root):
    sb3 = pytest.importorskip("stable_baselines3")
    env = make(root, action_form="flat")
    model = sb3.PPO("MultiInputPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=32)
    obs, _ = env.reset(seed=99)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
