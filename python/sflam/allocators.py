"""The built-in allocators, callable on any ``sflam.Problem`` from Python:
``sflam.allocators.exact(problem)`` returns a ``sflam.Decision``, as
``sflam allocate`` would. A Python policy may call them, wrap them, or
compare itself with them."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from . import _sflam


def solve(problem: "_sflam.Problem", name: str, settings: Optional[Mapping[str, Any]] = None,
          seed: Optional[int] = None) -> "_sflam.Decision":
    """Solves ``problem`` with the allocator ``name``; ``settings`` are
    ``[allocator]`` fields (``{"max_iterations": 50}``); ``seed`` defaults
    to the problem's. Non-convergence raises ``NotConvergedError``."""
    return _sflam.solve(problem, name, dict(settings) if settings else None, seed)


def exact(problem, **settings):
    """The joint optimum (closed-form power, enumerated bits, one assignment)."""
    return solve(problem, "exact", settings)


def bcd(problem, **settings):
    """The paper's Algorithm 3 (block coordinate descent)."""
    return solve(problem, "bcd", settings)


def ep(problem, **settings):
    """Equal power (p_max), bits and matching optimized."""
    return solve(problem, "ep", settings)


def rb(problem, **settings):
    """Random RBs, power and bits optimized."""
    return solve(problem, "rb", settings)


def nq(problem, **settings):
    """No quantization (fp32), power and matching optimized."""
    return solve(problem, "nq", settings)


def fixed(problem, **settings):
    """Random RBs at p_max with ``fixed_bits``."""
    return solve(problem, "fixed", settings)


NAMES = tuple(_sflam.allocator_names())
