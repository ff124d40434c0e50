"""Policies written in Python: the simulated round runs exactly the
policy's decision; bad decisions are DecisionErrors naming the candidate
and the field; a policy that raises stops the run and writes nothing."""

import math

import numpy as np
import polars as pl
import pytest

import sflam


class RandomPolicy:
    """Random RBs, powers and bits, drawn from the problem's seed."""

    def __init__(self):
        self.decided = []

    def decide(self, p):
        rng = np.random.default_rng(p.seed)
        n, k = len(p), p.rb_count
        m = min(n, k)
        cand = rng.permutation(n)[:m]
        rb = rng.permutation(k)[:m]
        power = p.p_max_w[cand] * rng.uniform(0.05, 1.0, m)
        bits = rng.integers(p.bits_min, p.bits_max + 1, m)
        d = {"candidate": cand, "rb": rb, "power_w": power, "bits": bits}
        self.decided.append((p.round, p.device[cand], d))
        return d


def test_the_round_runs_exactly_the_policys_decision(fig4):
    pol = RandomPolicy()
    r = sflam.run(fig4, allocator=pol)
    dr = r.device_rounds
    assert len(pol.decided) == fig4.rounds
    for rnd, devices, d in pol.decided:
        got = dr.filter(pl.col("round") == rnd).sort("device")
        want = pl.DataFrame(
            {"device": devices.astype(np.uint32), "rb": d["rb"].astype(np.uint32), "power_w": d["power_w"],
             "bits": d["bits"].astype(np.uint32)}
        ).sort("device")
        assert got.select("device", "rb", "power_w", "bits").equals(want)
    # Every other candidate is recorded as left out by the policy.
    lo = r.left_out
    assert set(lo["reason"].unique()) == {"not-chosen"}
    assert lo.height + dr.height == r.rounds["candidates"].sum()


def test_same_seed_and_deterministic_policy_give_identical_traces(fig4):
    a = sflam.run(fig4, allocator=RandomPolicy())
    b = sflam.run(fig4, allocator=RandomPolicy())
    for t in ("device_rounds", "left_out", "devices"):
        assert getattr(a, t).equals(getattr(b, t))
    assert a.rounds.drop("alloc_wall_s").equals(b.rounds.drop("alloc_wall_s"))


def test_wrapping_a_builtin_reproduces_its_run(fig4):
    for name in ("exact", "bcd"):
        s = sflam.scenario(fig4, [f'allocator.name="{name}"'])
        builtin = sflam.run(s)
        wrapped = sflam.run(s, allocator=lambda p: sflam.allocators.solve(p, name))
        assert builtin.device_rounds.equals(wrapped.device_rounds), name
        assert builtin.rounds.drop("alloc_wall_s").equals(wrapped.rounds.drop("alloc_wall_s")), name


def test_builtins_on_a_problem(fig4):
    seen = []
    sflam.run(fig4, allocator=lambda p: seen.append(p) or sflam.allocators.exact(p))
    p = seen[0]
    assert p.gains.shape == (len(p), p.rb_count)
    assert p.utility.shape == (p.bits_max - p.bits_min + 1,)
    ex, bcd = sflam.allocators.exact(p), sflam.allocators.bcd(p)
    # exact is the optimum of the round's problem.
    assert ex.objective_j >= bcd.objective_j - 1e-9 * abs(ex.objective_j)
    # Its value is the closed-form price of its picks.
    total = sum(p.price(int(c), int(k), int(b), float(w))["value_j"]
                for c, k, b, w in zip(ex.candidate, ex.rb, ex.bits, ex.power_w))
    assert math.isclose(total, ex.objective_j, rel_tol=1e-12)
    # The helpers check their arguments, naming themselves.
    with pytest.raises(sflam.DecisionError, match=r"price \(candidate 0\): rb = 99 outside"):
        p.price(0, 99, p.bits_min, float(p.p_max_w[0]))
    with pytest.raises(sflam.DecisionError, match=r"min_power_w \(candidate 0\): bits = 3 outside"):
        p.min_power_w(0, 0, 3)
    # A problem survives JSON.
    again = sflam.Problem.from_json(p.to_json(), p.cell, p.seed)
    assert sflam.allocators.exact(again).to_json() == ex.to_json()
    with pytest.raises(sflam.ConfigError, match="unknown field `max_iteration`"):
        sflam.allocators.bcd(p, max_iteration=3)
    with pytest.raises(sflam.NotConvergedError, match="max_iterations"):
        sflam.allocators.bcd(p, max_iterations=1, epsilon_j=0.0)


def one_bad(field, value):
    def policy(p):
        low = 0.5 * min(p.p_max_w[0], p.p_max_w[1])
        d = {"candidate": [0, 1], "rb": [0, 1], "power_w": [low, low], "bits": [p.bits_min] * 2}
        d[field] = list(d[field])
        d[field][1] = value(p) if callable(value) else value
        return d

    return policy


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("rb", 0, r"entry 1 \(candidate 1\): rb = 0 already used by entry 0"),
        ("rb", 99, r"candidate 1\): rb = 99 outside 0\.\.10"),
        ("power_w", lambda p: 2 * p.p_max_w[1], r"candidate 1\): power_w = .* outside \(0, p_max_w"),
        ("power_w", 0.0, r"candidate 1\): power_w = 0 W outside"),
        ("power_w", float("nan"), r"candidate 1\): power_w = NaN W outside"),
        ("bits", 3, r"candidate 1\): bits = 3 outside 4\.\.=16 \(quantized\) or 32"),
        ("candidate", 0, r"entry 1 \(candidate 0\): candidate scheduled twice"),
        ("candidate", 30, r"entry 1: candidate = 30 outside 0\.\.30"),
        ("candidate", -1, r"entry 1: candidate = -1 is negative"),
    ],
)
def test_bad_decisions_name_the_candidate_and_field(fig4, tmp_path, field, value, message):
    out = tmp_path / "run"
    with pytest.raises(sflam.DecisionError, match=message):
        sflam.run(fig4, out=out, allocator=one_bad(field, value))
    assert not out.exists() and not (tmp_path / "run.partial").exists()


def test_malformed_decisions(fig4):
    with pytest.raises(sflam.DecisionError, match="no `bits`"):
        sflam.run(fig4, allocator=lambda p: {"candidate": [], "rb": [], "power_w": []})
    with pytest.raises(sflam.DecisionError, match="differ in length"):
        sflam.run(fig4, allocator=lambda p: {"candidate": [0], "rb": [], "power_w": [], "bits": []})
    with pytest.raises(sflam.DecisionError, match="got NoneType"):
        sflam.run(fig4, allocator=lambda p: None)
    # Scheduling nobody is a decision.
    r = sflam.run(fig4, allocator=lambda p: {"candidate": [], "rb": [], "power_w": [], "bits": []})
    assert r.device_rounds.height == 0 and r.summary["energy_j"] == 0


def test_a_policy_that_raises_stops_the_run_and_writes_nothing(fig4, tmp_path):
    class Boom(Exception):
        pass

    def policy(p):
        if p.round == 2:
            raise Boom("no decision in round 2")
        return sflam.allocators.exact(p)

    out = tmp_path / "run"
    with pytest.raises(Boom, match="round 2") as e:
        sflam.run(fig4, out=out, allocator=policy)
    assert any(f.name == "policy" for f in e.traceback)
    assert not out.exists() and not (tmp_path / "run.partial").exists()


def test_several_cells_are_asked_in_cell_order(root):
    s = sflam.scenario(root / "scenarios/cells.toml", ["run.rounds=2", "training.enabled=false"])
    asked = []
    r = sflam.run(s, allocator=lambda p: asked.append((p.round, p.cell)) or sflam.allocators.exact(p))
    # Each cell with candidates is asked once a round, in cell order.
    assert asked == sorted(set(asked))
    with_candidates = pl.concat([r.device_rounds.select("round", "cell"), r.left_out.select("round", "cell")]).unique()
    assert sorted(asked) == sorted(with_candidates.iter_rows())
    assert len({c for _, c in asked}) > 1


def test_replan_applies_the_round_planner(root):
    # A FIFO server: queue-aware re-planning may cut budgets and ask again.
    s = sflam.scenario(root / "scenarios/fig4.toml",
                       ["run.rounds=3", 'server.discipline="fifo"', "allocator.queue_aware=true"])
    builtin = sflam.run(s)
    asks = []
    wrapped = sflam.run(s, allocator=lambda p: asks.append(p.round) or sflam.allocators.solve(p, "exact"), replan=True)
    assert builtin.device_rounds.equals(wrapped.device_rounds)
    assert len(asks) >= 3
