"""sflam from Python: runs, policies and a Gymnasium environment over the
Rust simulator (a thin layer over the native module ``sflam._sflam``).

    import sflam
    s = sflam.Scenario.load("scenarios/default.toml", ["run.rounds=5"])
    r = sflam.run(s)                 # traces as polars DataFrames
    r = sflam.run(s, allocator=policy)   # policy.decide(problem) each round

See docs/python.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import polars as pl

from . import _sflam
from ._sflam import (
    ConfigError,
    Decision,
    DecisionError,
    NotConvergedError,
    Problem,
    Scenario,
    SflamError,
)
from . import allocators

__all__ = [
    "ConfigError",
    "Decision",
    "DecisionError",
    "NotConvergedError",
    "Problem",
    "Run",
    "Scenario",
    "SflamError",
    "allocators",
    "load",
    "reference",
    "run",
    "scenario",
    "workload",
]

__version__ = _sflam.version()

#: The trace tables every run has (``events`` and ``bcd_steps`` only when
#: ``run.events_trace`` / ``run.bcd_trace``).
TABLES = ("rounds", "device_rounds", "devices", "cells", "left_out", "bcd_steps", "events")


def _toml_value(v: Any, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x, where) for x in v) + "]"
    raise ConfigError(f"{where}: a TOML value (bool, number, string or list) expected, got {type(v).__name__}")


def _toml_of(d: Mapping[str, Any]) -> str:
    lines = []
    for section, body in d.items():
        if not isinstance(body, Mapping):
            lines.append(f"{section} = {_toml_value(body, section)}")
            continue
        lines.append(f"[{section}]")
        for k, v in body.items():
            lines.append(f"{k} = {_toml_value(v, f'{section}.{k}')}")
    return "\n".join(lines) + "\n"


def scenario(
    source: Union[str, os.PathLike, Mapping[str, Any], Scenario, None] = None,
    overrides: Sequence[str] = (),
) -> Scenario:
    """A scenario from a file path, a dict of sections (``{"run": {"rounds":
    5}}``), an existing ``Scenario``, or None (every default); ``overrides``
    as the CLI's ``--set KEY=VALUE``. Bad input raises ``ConfigError`` with
    the CLI's words (file, field, what is allowed)."""
    overrides = list(overrides)
    if isinstance(source, Scenario):
        return source.with_overrides(overrides) if overrides else source
    if source is None:
        return Scenario.from_toml("", overrides, "<defaults>")
    if isinstance(source, Mapping):
        return Scenario.from_dict(source, overrides)
    return Scenario.load(os.fspath(source), overrides)


load = scenario


class Run:
    """A finished run: ``rounds``, ``device_rounds``, ``devices``, ``cells``,
    ``left_out`` (and ``bcd_steps``, ``events`` when the scenario keeps
    them) as polars DataFrames, ``summary`` as a dict, ``dir`` the output
    folder when written to one."""

    def __init__(self, summary: dict, frames: dict, dir: Optional[Path]):
        self.summary = summary
        self.dir = dir
        self._frames = frames

    def __getattr__(self, name: str) -> pl.DataFrame:
        if name.startswith("_") or name not in TABLES:
            raise AttributeError(name)
        frames = self.__dict__["_frames"]
        if name not in frames and self.dir is not None:
            path = self.dir / f"{name}.parquet"
            if path.exists():
                frames[name] = pl.read_parquet(path)
        if name not in frames:
            raise AttributeError(f"this run has no `{name}` table (see run.events_trace / run.bcd_trace)")
        return frames[name]

    @property
    def tables(self) -> list:
        """Names of the tables this run has."""
        if self.dir is not None:
            return [t for t in TABLES if (self.dir / f"{t}.parquet").exists()]
        return [t for t in TABLES if t in self._frames]

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"<sflam.Run {s['scenario']!r} seed {s['seed']}: {s['rounds']} rounds, "
            f"{s['finished']} finished, {s['energy_j']:.3f} J>"
        )


def _finished(f: "_sflam.Finished") -> Run:
    frames = {name: pl.DataFrame(table) for name, table in f.take_tables()}
    return Run(f.summary, frames, Path(f.dir) if f.dir is not None else None)


def run(
    scenario: Union[Scenario, str, os.PathLike, Mapping[str, Any]],
    out: Union[str, os.PathLike, None] = None,
    allocator: Any = None,
    replan: bool = False,
    on_round: Optional[Callable[[dict], None]] = None,
) -> Run:
    """Runs a scenario (co-simulation with training when it trains).

    ``out``: write the run there as ``sflam run -o`` does (the same folder
    rules: sflam replaces only a complete run it wrote), else the traces
    stay in memory and come over as Arrow.

    ``allocator``: a policy deciding every round of every cell in place of
    the scenario's allocator: an object with ``decide(problem)`` or a
    callable ``problem -> decision``. A decision is a ``sflam.Decision``
    (what ``sflam.allocators.*`` return) or a mapping of equal-length
    sequences ``candidate``, ``rb``, ``power_w``, ``bits``; it is checked
    (``DecisionError`` names the candidate and the field) and the round runs
    exactly it. ``replan=True`` sends it through sflam's round planner
    (queue-aware re-planning, sync rounds' free RBs), which may ask again
    within a round with cut upload budgets; the default runs the policy's
    decisions as they are.

    ``on_round``: called with each round's row (a dict) as the round ends.

    The GIL is released while Rust simulates; Ctrl-C stops the run and
    writes nothing; an exception from the policy stops it and propagates.
    """
    s = scenario if isinstance(scenario, Scenario) else globals()["scenario"](scenario)
    decide = None
    if allocator is not None:
        decide = getattr(allocator, "decide", None) or allocator
        if not callable(decide):
            raise TypeError("allocator: an object with decide(problem) or a callable expected")
    session = _sflam.Session(
        s,
        out=os.fspath(out) if out is not None else None,
        policy=decide is not None,
        replan=replan,
        rounds=on_round is not None,
    )
    try:
        while True:
            kind, x = session.next()
            if kind == "problem":
                session.decide(decide(x))
            elif kind == "round":
                on_round(x)
            else:
                return _finished(x)
    finally:
        session.close()


def workload(batch: int = 16) -> pl.DataFrame:
    """Table I (parameters, FLOPs, cut-layer size, memory of each ViT) for
    ``batch`` images per iteration, as ``sflam workload --json``."""
    return pl.DataFrame(_sflam.workload(batch))


def reference() -> str:
    """The scenario reference as Markdown (``sflam reference``)."""
    return _sflam.reference()
