from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def root():
    return ROOT


@pytest.fixture
def fig4():
    """Fig. 4's network: 200 devices, 30 candidates on 10 RBs, timing only."""
    import sflam

    return sflam.scenario(ROOT / "scenarios/fig4.toml", ["run.rounds=4"])
