"""Runs from Python: scenarios, in-memory traces against the files the same
run writes, errors with the CLI's words, output folders left alone."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import polars as pl
import pytest

import sflam


def frames_equal(a: pl.DataFrame, b: pl.DataFrame):
    # The allocator's wall time is the one column that varies between runs.
    drop = [c for c in ("alloc_wall_s",) if c in a.columns]
    assert a.drop(drop).equals(b.drop(drop)), (a, b)


def test_scenario_sources_and_overrides(root, fig4):
    assert fig4.rounds == 4 and fig4.candidates == 30 and fig4.rb_count == 10
    assert sflam.scenario(fig4, ["run.rounds=7"]).rounds == 7
    d = fig4.to_dict()
    assert d["run"]["rounds"] == 4 and d["network"]["rb_count"] == 10
    from_dict = sflam.scenario({"run": {"rounds": 3, "seed": 9}, "devices": {"count": 20}})
    assert (from_dict.rounds, from_dict.seed) == (3, 9)
    again = sflam.Scenario.from_dict({"run": {"rounds": 3}}, ["run.seed=9", "devices.count=20"])
    assert again.to_dict() == from_dict.to_dict()
    text = (root / "scenarios/fig4.toml").read_text()
    from_text = sflam.Scenario.from_toml(text, ["run.rounds=4"])
    assert from_text.to_dict() == d
    assert pickle.loads(pickle.dumps(fig4)).to_dict() == d


def test_config_errors_name_file_field_and_what_is_allowed(root, tmp_path):
    with pytest.raises(sflam.ConfigError, match=r"run\.roundz.*did you mean `rounds`"):
        sflam.scenario(root / "scenarios/fig4.toml", ["run.roundz=3"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[network]\nrb_count = 0\n")
    with pytest.raises(sflam.ConfigError, match=r"bad\.toml.*rb_count") as e:
        sflam.scenario(bad)
    assert "network.rb_count" in str(e.value) or "rb_count" in str(e.value)
    with pytest.raises(sflam.ConfigError, match="missing.toml"):
        sflam.scenario(tmp_path / "missing.toml")
    with pytest.raises(sflam.ConfigError, match="run.rounds"):
        sflam.scenario({"run": {"rounds": [1, 2]}})
    # A ConfigError is an SflamError.
    assert issubclass(sflam.ConfigError, sflam.SflamError)


def test_in_memory_traces_equal_the_files_of_the_same_run(fig4, tmp_path):
    mem = sflam.run(fig4)
    assert mem.dir is None
    assert set(mem.tables) == {"rounds", "device_rounds", "devices", "cells", "left_out"}
    assert mem.rounds.height == 4
    assert mem.summary["rounds"] == 4
    disk = sflam.run(fig4, out=tmp_path / "run")
    assert disk.dir == tmp_path / "run"
    for t in ("rounds", "device_rounds", "devices", "cells", "left_out"):
        frames_equal(getattr(mem, t), pl.read_parquet(tmp_path / "run" / f"{t}.parquet"))
    for k in ("finished", "scheduled", "energy_j", "simulated_s", "events"):
        assert mem.summary[k] == disk.summary[k]


def test_optional_tables(fig4):
    r = sflam.run(sflam.scenario(fig4, ["run.events_trace=true", "run.bcd_trace=true", 'allocator.name="bcd"']))
    assert r.events.height > 0 and r.bcd_steps.height > 0
    with pytest.raises(AttributeError, match="no `events` table"):
        sflam.run(fig4).events


def test_a_folder_sflam_did_not_write_is_left_alone(fig4, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(sflam.ConfigError, match="mine"):
        sflam.run(fig4, out=mine)
    assert (mine / "notes.txt").read_text() == "precious"
    assert sorted(os.listdir(mine)) == ["notes.txt"]


def test_on_round_streams_every_row(fig4):
    rows = []
    r = sflam.run(fig4, on_round=rows.append)
    assert [x["round"] for x in rows] == list(range(4))
    assert [x["finished"] for x in rows] == r.rounds["finished"].to_list()


def test_workload_and_reference():
    w = sflam.workload()
    assert "vit-b32" in w["model"].to_list()
    assert w.filter(pl.col("model") == "vit-b32")["device_params_mib"][0] > 0
    ref = sflam.reference()
    assert "rb_count" in ref and "bits_min" in ref


def test_training_from_python(root):
    s = sflam.scenario(
        root / "scenarios/default.toml", ["run.rounds=1", "training.train_samples=2000", "training.eval_samples=100"]
    )
    r = sflam.run(s)
    acc = r.rounds["accuracy"].to_list()
    assert len(acc) == 1 and acc[0] is not None and 0.0 <= acc[0] <= 1.0
    assert r.device_rounds["train_loss"].drop_nulls().len() > 0


def test_ctrl_c_stops_a_run_and_writes_nothing(root, tmp_path):
    out = tmp_path / "long"
    code = textwrap.dedent(
        f"""
        import sflam, sys
        s = sflam.scenario({str(root / "scenarios/fig4.toml")!r}, ["run.rounds=1000000"])
        print("started", flush=True)
        sflam.run(s, out={str(out)!r})
        """
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "started"
    time.sleep(1.5)
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("Ctrl-C did not stop the run within 60 s")
    assert p.returncode != 0
    assert "KeyboardInterrupt" in err, err
    assert "panicked" not in err
    assert not out.exists() and not (tmp_path / "long.partial").exists(), os.listdir(tmp_path)


def test_the_gil_is_released_while_rust_simulates(fig4):
    import threading

    ticks, done = [0], threading.Event()

    def count():
        while not done.is_set():
            ticks[0] += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        sflam.run(sflam.scenario(fig4, ["run.rounds=2000"]))
    finally:
        done.set()
        t.join()
    # With the GIL held for the whole run the counter would not move.
    assert ticks[0] > 1000, ticks


def test_exceptions_are_sflams():
    for e in (sflam.ConfigError, sflam.NotConvergedError, sflam.DecisionError):
        assert issubclass(e, sflam.SflamError) and e.__module__ == "sflam"
