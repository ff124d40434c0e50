"""Tests of the analysis scripts on small synthetic sweeps written here (no
sflam run needed): the hive-partitioned reader, and the Fig. 4 and Fig. 5
tables against sums computed independently in plain Python.

run: python3 -m pytest -q analysis/tests"""

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

ANALYSIS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ANALYSIS))
import common  # noqa: E402


def write_fig4_sweep(root):
    """rounds.parquet per (allocator, deadline), two rounds each; returns the
    rows as dicts with their keys, for the reference sums."""
    rows = []
    for name in ["exact", "bcd"]:
        for deadline in [8, 12.5]:
            folder = root / f"allocator.name={name}" / f"run.deadline_s={deadline}"
            folder.mkdir(parents=True)
            k = len(rows)
            df = pl.DataFrame(
                {
                    "round": [0, 1],
                    "energy_j": [10.0 + k, 20.0 + 2 * k],
                    "scheduled": [4, 6],
                    "finished": [3, 6],
                    "efficiency_per_j": [0.5, 0.7],
                    "mean_bits": [8.0, 10.0],
                    "objective_j": [100.0, 120.0],
                },
                schema_overrides={"round": pl.UInt32, "scheduled": pl.UInt32, "finished": pl.UInt32},
            )
            df.write_parquet(folder / "rounds.parquet")
            rows.append({"name": name, "deadline": deadline, "df": df})
    return rows


def read_md_table(path):
    lines = [l for l in path.read_text().splitlines() if l.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, [c.strip() for c in l.strip("|").split("|")])) for l in lines[2:]]


def test_scan_reads_hive_keys_with_types(tmp_path):
    write_fig4_sweep(tmp_path)
    df = common.scan(tmp_path, "rounds")
    assert df.height == 8
    assert df.schema["run.deadline_s"] == pl.Float64
    assert df.schema["allocator.name"] == pl.String
    assert sorted(df["allocator.name"].unique().to_list()) == ["bcd", "exact"]
    assert sorted(df["run.deadline_s"].unique().to_list()) == [8.0, 12.5]


def test_scan_leaves_out_points_still_running(tmp_path, capsys):
    write_fig4_sweep(tmp_path)
    running = tmp_path / "allocator.name=rb" / "run.deadline_s=8.partial"
    running.mkdir(parents=True)
    (running / "rounds.parquet").write_bytes(b"not whole yet")
    df = common.scan(tmp_path, "rounds")
    assert df.height == 8
    assert sorted(df["allocator.name"].unique().to_list()) == ["bcd", "exact"]
    assert "left out 1 unfinished point" in capsys.readouterr().err


def test_scan_of_a_single_run_and_of_nothing(tmp_path):
    pl.DataFrame({"round": [0, 1, 2]}).write_parquet(tmp_path / "rounds.parquet")
    assert common.scan(tmp_path, "rounds").height == 3
    with pytest.raises(SystemExit, match="no device_rounds.parquet"):
        common.scan(tmp_path, "device_rounds")


def test_fig4_table_matches_reference_sums(tmp_path):
    rows = write_fig4_sweep(tmp_path / "sweep")
    out = tmp_path / "figures"
    subprocess.run([sys.executable, str(ANALYSIS / "fig4.py"), str(tmp_path / "sweep"), str(out)], check=True)
    assert (out / "fig4.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = read_md_table(out / "fig4.md")
    assert len(table) == 4
    for r in rows:
        got = next(t for t in table if t["allocator.name"] == r["name"] and float(t["run.deadline_s"]) == r["deadline"])
        energy = sum(r["df"]["energy_j"].to_list()) / sum(r["df"]["scheduled"].to_list())
        finished = sum(r["df"]["finished"].to_list()) / sum(r["df"]["scheduled"].to_list())
        assert float(got["energy_per_device_j"]) == pytest.approx(energy, rel=1e-3)
        assert float(got["finished_share"]) == pytest.approx(finished, rel=1e-3)
        assert float(got["mean_bits"]) == pytest.approx(9.0)


def test_fig5_relay_sums_and_parallel_takes_the_max(tmp_path):
    sweep = tmp_path / "sweep"
    base = {
        "round": [0, 0],
        "t_cmp_s": [1.0, 2.0],
        "t_srv_s": [0.5, 0.5],
        "t_wait_s": [0.0, 1.0],
        "t_com_s": [3.0, 1.0],
        "t_down_s": [0.0, 0.0],
        "time_s": [4.5, 4.5],
        "energy_cmp_j": [1.0, 2.0],
        "energy_com_j": [3.0, 4.0],
        "energy_j": [4.0, 6.0],
    }
    for fw in ["sl", "sflam"]:
        folder = sweep / f"training.framework={fw}" / "devices.count=2"
        folder.mkdir(parents=True)
        pl.DataFrame(base, schema_overrides={"round": pl.UInt32}).write_parquet(folder / "device_rounds.parquet")
    out = tmp_path / "figures"
    subprocess.run([sys.executable, str(ANALYSIS / "fig5.py"), str(sweep), str(out)], check=True)
    table = {t["training.framework"]: t for t in read_md_table(out / "fig5.md")}
    # Computation time: t_cmp + t_srv + t_wait per device = 1.5 and 3.5.
    assert float(table["sl"]["cmp_time_s"]) == pytest.approx(5.0)  # a relay: one after the other
    assert float(table["sflam"]["cmp_time_s"]) == pytest.approx(3.5)  # in parallel: the slowest
    assert float(table["sl"]["com_time_s"]) == pytest.approx(4.0)
    assert float(table["sflam"]["com_time_s"]) == pytest.approx(3.0)
    assert float(table["sflam"]["total_energy_j"]) == pytest.approx(10.0)


def test_server_queue_table_matches_plain_sums(tmp_path):
    """analysis/server_queue.py on a sweep over allocator x deadline x
    queue_aware: the finished share is Σ finished / Σ scheduled and the
    objectives are per-round means."""
    import server_queue

    expect = {}
    for aware in [True, False]:
        for deadline in [6, 10]:
            folder = tmp_path / "allocator.name=exact" / f"run.deadline_s={deadline}" / f"allocator.queue_aware={str(aware).lower()}"
            folder.mkdir(parents=True)
            sched, fin = [10, 8], ([10, 8] if aware else [3, 1])
            planned, realized = [400.0, 300.0 + deadline], ([400.0, 300.0 + deadline] if aware else [50.0, -2.0])
            pl.DataFrame(
                {
                    "round": [0, 1],
                    "scheduled": sched,
                    "finished": fin,
                    "energy_j": [30.0, 20.0],
                    "objective_j": planned,
                    "realized_objective_j": realized,
                },
                schema_overrides={"round": pl.UInt32, "scheduled": pl.UInt32, "finished": pl.UInt32},
            ).write_parquet(folder / "rounds.parquet")
            expect[(deadline, aware)] = (sum(fin) / sum(sched), sum(planned) / 2, sum(realized) / 2, 50.0 / sum(fin))
    t = server_queue.table(common.scan(tmp_path, "rounds"))
    assert t.height == 4
    for row in t.iter_rows(named=True):
        share, planned, realized, per_finished = expect[(row["run.deadline_s"], row["allocator.queue_aware"])]
        assert row["finished_share"] == pytest.approx(share)
        assert row["planned_objective_j"] == pytest.approx(planned)
        assert row["realized_objective_j"] == pytest.approx(realized)
        assert row["energy_per_finished_j"] == pytest.approx(per_finished)


def test_fig6_time_to_target_and_not_reached(tmp_path):
    """analysis/fig6.py: the time to the target is the end of the first
    evaluated round at or above it; a run that never gets there says so."""
    import fig6

    curves = {"sflam": [0.2, 0.31, 0.4], "ll": [0.1, 0.12, 0.15]}
    # sflam: 2 devices at 4 bits, then 3 at 8, then none; ll sends no activations.
    bits = {"sflam": ([4.0, 8.0, None], [2, 3, 0]), "ll": ([None, None, None], [5, 5, 5])}
    for name, acc in curves.items():
        folder = tmp_path / f"training.framework={name}" / "training.dirichlet_alpha=0.5"
        folder.mkdir(parents=True)
        pl.DataFrame(
            {
                "round": [0, 1, 2],
                "end_s": [10.0, 20.0, 30.0],
                "energy_j": [1.0, 2.0, 4.0],
                "accuracy": acc,
                "mean_bits": bits[name][0],
                "scheduled": bits[name][1],
            },
            schema_overrides={"round": pl.UInt32, "scheduled": pl.UInt32, "mean_bits": pl.Float64},
        ).write_parquet(folder / "rounds.parquet")
    out = tmp_path / "figures"
    subprocess.run([sys.executable, str(ANALYSIS / "fig6.py"), str(tmp_path), str(out), "0.3"], check=True, cwd=ANALYSIS)
    rows = {r["training.framework"]: r for r in read_md_table(out / "fig6.md")}
    assert float(rows["sflam"]["time_to_target_s"]) == 20.0
    assert rows["ll"]["time_to_target_s"] == "not reached"
    # The energy up to and including the round that reached it, and the
    # mean bits weighed by each round's scheduled devices: (2*4 + 3*8) / 5.
    assert float(rows["sflam"]["energy_to_target_j"]) == 3.0
    assert rows["ll"]["energy_to_target_j"] == "not reached"
    assert float(rows["sflam"]["mean_bits"]) == pytest.approx(6.4)
    assert rows["ll"]["mean_bits"] in ("None", "")
    assert float(rows["sflam"]["final_accuracy"]) == 0.4
    # Without a target: the highest multiple of 5% every run reaches (15%).
    subprocess.run([sys.executable, str(ANALYSIS / "fig6.py"), str(tmp_path), str(out)], check=True, cwd=ANALYSIS)
    rows = {r["training.framework"]: r for r in read_md_table(out / "fig6.md")}
    assert float(rows["ll"]["target_accuracy"]) == 0.15
    assert float(rows["ll"]["time_to_target_s"]) == 30.0
    assert float(rows["sflam"]["time_to_target_s"]) == 10.0
    # Every evaluated round's accuracy, rounds counted from 1, and the
    # point's wall time from its summary.json where it has one.
    assert rows["sflam"]["accuracy_pct_after_round"] == "1: 20.00, 2: 31.00, 3: 40.00"
    assert rows["sflam"]["rounds"] == "3"
    assert "wall_s" not in rows["ll"]
    (tmp_path / "training.framework=sflam" / "training.dirichlet_alpha=0.5" / "summary.json").write_text(
        '{"wall_s": 12.5, "training": {"steps": 40}}'
    )
    subprocess.run([sys.executable, str(ANALYSIS / "fig6.py"), str(tmp_path), str(out)], check=True, cwd=ANALYSIS)
    rows = {r["training.framework"]: r for r in read_md_table(out / "fig6.md")}
    assert float(rows["sflam"]["wall_s"]) == 12.5
    assert rows["sflam"]["training_steps"] == "40"
    assert rows["ll"]["wall_s"] == "None"
    # Several targets: the first in time_to_target_s, the others in their own columns.
    subprocess.run([sys.executable, str(ANALYSIS / "fig6.py"), str(tmp_path), str(out), "0.3,0.11"], check=True, cwd=ANALYSIS)
    rows = {r["training.framework"]: r for r in read_md_table(out / "fig6.md")}
    assert float(rows["sflam"]["time_to_target_s"]) == 20.0
    assert float(rows["sflam"]["time_to_0.11_s"]) == 10.0
    assert float(rows["ll"]["time_to_0.11_s"]) == 20.0
    assert rows["ll"]["time_to_target_s"] == "not reached"


def test_cells_table_counts_each_cells_uploads(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    pl.DataFrame(
        {"cell": [0, 1, 2], "x_m": [0.0, 1000.0, 500.0], "y_m": [0.0, 0.0, 866.0], "rb_count": [4, 4, 4],
         "colour": [0, 1, 2], "server_service_s": [0.1] * 3, "devices": [2, 1, 0]},
        schema_overrides={"cell": pl.UInt32, "rb_count": pl.UInt32, "colour": pl.UInt32, "devices": pl.UInt64},
    ).write_parquet(run / "cells.parquet")
    pl.DataFrame(
        {"device": [0, 1, 2], "x_m": [10.0, -20.0, 990.0], "y_m": [5.0, 0.0, 3.0], "cell": [0, 0, 1]},
        schema_overrides={"device": pl.UInt32, "cell": pl.UInt32},
    ).write_parquet(run / "devices.parquet")
    pl.DataFrame(
        {"round": [0, 0, 1, 1, 1], "device": [0, 2, 0, 1, 2], "cell": [0, 1, 0, 0, 1],
         "outcome": ["finished", "straggler", "finished", "finished", "finished"],
         "sinr_db": [10.0, 0.0, 20.0, 30.0, 4.0], "interference_w": [1e-12, 0.0, 0.0, 2e-12, 1e-12],
         "rate_bps": [1e7, 2e7, 3e7, 4e7, 5e7]},
        schema_overrides={"round": pl.UInt32, "device": pl.UInt32, "cell": pl.UInt32},
    ).write_parquet(run / "device_rounds.parquet")
    out = tmp_path / "figures"
    subprocess.run([sys.executable, str(ANALYSIS / "cells.py"), str(run), str(out)], check=True, cwd=ANALYSIS)
    assert (out / "cells.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    t = {int(r["cell"]): r for r in read_md_table(out / "cells.md")}
    assert (int(t[0]["scheduled"]), int(t[0]["finished"])) == (3, 3)
    assert (int(t[1]["scheduled"]), int(t[1]["finished"])) == (2, 1)
    assert (int(t[2]["scheduled"]), int(t[2]["finished"])) == (0, 0)
    assert float(t[0]["mean_sinr_db"]) == pytest.approx(20.0)
    assert float(t[1]["mean_rate_bps"]) == pytest.approx(3.5e7)


def test_cells_sweep_table_sums_each_run(tmp_path):
    for k in [1, 2]:
        for reuse in [1, 3]:
            folder = tmp_path / f"backhaul.cloud_every={k}" / f"cells.reuse={reuse}"
            folder.mkdir(parents=True)
            pl.DataFrame(
                {"round": [0, 1], "end_s": [10.0, 20.0 + k], "backhaul_s": [0.0, 1.5 * k],
                 "backhaul_energy_j": [0.0, 56.0 * reuse], "accuracy": [0.5, 0.6 + 0.01 * k],
                 "energy_j": [100.0, 110.0 + reuse], "scheduled": [6, 6], "finished": [5, 6]},
                schema_overrides={"round": pl.UInt32, "scheduled": pl.UInt32, "finished": pl.UInt32},
            ).write_parquet(folder / "rounds.parquet")
            pl.DataFrame(
                {"round": [0, 1], "device": [0, 1], "sinr_db": [4.0, 6.0 + reuse]},
                schema_overrides={"round": pl.UInt32, "device": pl.UInt32},
            ).write_parquet(folder / "device_rounds.parquet")
    out = tmp_path / "figures"
    subprocess.run([sys.executable, str(ANALYSIS / "cells_sweep.py"), str(tmp_path), str(out)], check=True, cwd=ANALYSIS)
    assert (out / "cells_sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    t = {(int(r["backhaul.cloud_every"]), int(r["cells.reuse"])): r for r in read_md_table(out / "cells_sweep.md")}
    r = t[(2, 3)]
    assert float(r["energy_j"]) == pytest.approx(213.0)
    assert float(r["backhaul_energy_j"]) == pytest.approx(168.0)
    assert float(r["simulated_s"]) == pytest.approx(25.0)
    assert float(r["final_accuracy"]) == pytest.approx(0.62)
    assert float(r["mean_sinr_db"]) == pytest.approx(6.5)
    assert int(r["finished"]) == 11


def write_run(root, accuracy=True, cells=1):
    """A small synthetic run folder with every table `report.py` reads;
    returns the rows for the reference counts."""
    root.mkdir(parents=True)
    u32 = pl.UInt32
    rounds = pl.DataFrame(
        {
            "round": [0, 1, 2],
            "end_s": [10.0, 20.0, 30.0],
            "candidates": [6, 6, 6],
            "scheduled": [3, 4, 2],
            "finished": [2, 3, 2],
            "stragglers": [1, 0, 0],
            "failed": [0, 1, 0],
            "energy_j": [5.0, 6.0, 3.0],
            "energy_cmp_j": [2.0, 2.5, 1.0],
            "energy_com_j": [3.0, 3.5, 2.0],
            "mean_bits": [8.0, 6.0, 8.0],
            "objective_j": [1.0, 2.0, 1.5],
            "realized_objective_j": [0.5, 1.0, 1.5],
            "loss": [2.0, 1.5, 1.2] if accuracy else [None] * 3,
            "accuracy": [0.2, None, 0.4] if accuracy else [None] * 3,
        },
        schema_overrides={c: u32 for c in ["round", "candidates", "scheduled", "finished", "stragglers", "failed"]}
        | {"loss": pl.Float64, "accuracy": pl.Float64},
    )
    rounds.write_parquet(root / "rounds.parquet")
    outcomes = ["finished", "finished", "straggler", "finished", "finished", "finished", "dropped", "finished", "finished"]
    rnd = [0, 0, 0, 1, 1, 1, 1, 2, 2]
    dr = pl.DataFrame(
        {
            "round": rnd,
            "device": list(range(9)),
            "cell": [i % cells for i in range(9)],
            "bits": [8, 8, 6, 6, 6, 4, 8, 8, 8],
            "power_w": [0.1 * (i + 1) for i in range(9)],
            "time_s": [float(i + 1) for i in range(9)],
            "energy_j": [0.5] * 9,
            "sinr_db": [10.0 + i for i in range(9)],
            "outcome": outcomes,
        },
        schema_overrides={"round": u32, "device": u32, "cell": u32, "bits": u32},
    )
    dr.write_parquet(root / "device_rounds.parquet")
    reasons = ["infeasible"] * 5 + ["no-resource-block"] * 3 + ["server-busy"]
    lo = pl.DataFrame(
        {
            "round": [0, 0, 0, 1, 1, 2, 2, 2, 2],
            "device": list(range(10, 19)),
            "cell": [0] * 9,
            "reason": reasons,
        },
        schema_overrides={"round": u32, "device": u32, "cell": u32},
    )
    lo.write_parquet(root / "left_out.parquet")
    pl.DataFrame({"cell": list(range(cells)), "x_m": [0.0] * cells, "y_m": [0.0] * cells}).write_parquet(root / "cells.parquet")
    pl.DataFrame({"device": list(range(20))}).write_parquet(root / "devices.parquet")
    (root / "summary.json").write_text('{"scenario": "synthetic", "framework": "sflam", "allocator": "bcd", "devices": 20, "rounds": 3, "seed": 1}')
    return rounds, dr, lo


@pytest.mark.parametrize("accuracy,cells", [(True, 1), (False, 3)])
def test_report_counts_every_fate(tmp_path, accuracy, cells):
    rounds, dr, lo = write_run(tmp_path / "run", accuracy, cells)
    subprocess.run([sys.executable, str(ANALYSIS / "report.py"), str(tmp_path / "run")], check=True, cwd=ANALYSIS)
    md = (tmp_path / "run.report.md").read_text()
    assert (tmp_path / "run.report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "run" / "figures").exists(), "nothing written into the run folder"
    table = {r[""]: r["value"] for r in read_md_table_first(md)}
    assert table["candidate-rounds"] == "18"
    assert table["scheduled"] == str(sum([3, 4, 2]))
    assert table["finished"] == "7" and table["stragglers"] == "1" and table["failed (dropped or offline)"] == "1"
    # The left-out counts by reason, against the rows written above.
    for r in ["infeasible", "no-resource-block", "not-worthwhile", "server-busy"]:
        assert table[f"left out: {r}"] == str(sum(1 for x in lo["reason"].to_list() if x == r))
    # Candidates = scheduled + left out, round by round, in the rounds table.
    rows = [l for l in md.split("## Rounds")[1].splitlines() if l.startswith("| ") and not l.startswith("| round")]
    for line, expect in zip(rows, [3, 2, 4]):
        assert line.split("|")[8].strip() == str(expect)
    if accuracy:
        assert table["last test accuracy"].startswith("0.4000 (round 2")
    else:
        assert "last test accuracy" not in table


def read_md_table_first(md):
    lines = [l for l in md.splitlines() if l.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    out = []
    for l in lines[2:]:
        if l.startswith("| round"):
            break
        out.append(dict(zip(header, [c.strip() for c in l.strip("|").split("|")])))
    return out


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path):
    r = subprocess.run([sys.executable, str(ANALYSIS / "report.py"), str(tmp_path)], capture_output=True, text=True, cwd=ANALYSIS)
    assert r.returncode != 0 and "not a finished `sflam run` folder" in r.stderr


def test_fig3_table_matches_plain_statistics(tmp_path):
    """Final accuracy per width over seeds (mean, sd, range) and its gap to
    fp32 in standard errors, against plain Python."""
    import statistics

    finals = {(1, 2): 0.20, (2, 2): 0.24, (1, 4): 0.33, (2, 4): 0.35, (1, 32): 0.34, (2, 32): 0.36}
    for (seed, bits), acc in finals.items():
        d = tmp_path / f"seed={seed}" / f"bits={bits}"
        d.mkdir(parents=True)
        pl.DataFrame(
            {"round": [0, 1, 2], "accuracy": [0.1, None, acc], "train_loss": [2.0, 1.9, 1.8]},
            schema_overrides={"round": pl.UInt32, "accuracy": pl.Float64},
        ).write_parquet(d / "rounds.parquet")
    out = tmp_path / "figs"
    subprocess.run([sys.executable, str(ANALYSIS / "fig3.py"), str(tmp_path), str(out)], check=True, cwd=ANALYSIS)
    rows = {int(r["bits"]): r for r in read_md_table(out / "fig3.md")}
    assert sorted(rows) == [2, 4, 32]
    for b in [2, 4, 32]:
        v = [finals[(1, b)], finals[(2, b)]]
        assert float(rows[b]["accuracy"]) == pytest.approx(statistics.mean(v), abs=1e-4)
        assert float(rows[b]["accuracy_sd"]) == pytest.approx(statistics.stdev(v), abs=1e-4)
        assert float(rows[b]["accuracy_min"]) == pytest.approx(min(v), abs=1e-4)
    se = ((statistics.stdev([0.20, 0.24]) ** 2) / 2 + (statistics.stdev([0.34, 0.36]) ** 2) / 2) ** 0.5
    assert float(rows[2]["diff_vs_fp32_se"]) == pytest.approx((0.22 - 0.35) / se, rel=1e-3)
    assert (out / "fig3.png").read_bytes()[:4] == b"\x89PNG"


def test_fig4_utility_table_compares_each_point(tmp_path):
    """Per allocator and deadline: mean bits and energies under each
    utility, and the relative change, against plain sums."""
    vals = {"assumed": ([12, 14], [0.10, 0.12], [3.0, 3.2]), "table": ([4, 4], [0.03, 0.03], [2.9, 3.1])}
    for u, (bits, com, tot) in vals.items():
        d = tmp_path / "allocator.name=exact" / "run.deadline_s=8" / f"allocator.utility={u}"
        d.mkdir(parents=True)
        pl.DataFrame({"bits": bits, "energy_com_j": com, "energy_j": tot}, schema_overrides={"bits": pl.UInt32}).write_parquet(
            d / "device_rounds.parquet"
        )
    out = tmp_path / "figs"
    subprocess.run([sys.executable, str(ANALYSIS / "fig4_utility.py"), str(tmp_path), str(out)], check=True, cwd=ANALYSIS)
    (row,) = read_md_table(out / "fig4_utility.md")
    assert float(row["mean_bits"]) == 13 and float(row["mean_bits_measured"]) == 4
    assert float(row["energy_change"]) == pytest.approx(3.0 / 3.1 - 1, abs=1e-4)
    assert float(row["uplink_change"]) == pytest.approx(0.03 / 0.11 - 1, abs=1e-4)


def test_fig4_bcd_settles_where_the_objective_stops_moving(tmp_path):
    """Round means per iteration, a settled round carried forward, and the
    first iteration within 0.1% of the final objective."""
    d = tmp_path / "run.deadline_s=8"
    d.mkdir()
    rows = []
    # Round 0 runs 3 iterations, round 1 settles after 1 (its state carried on).
    for rnd, objs in [(0, [100.0, 150.0, 199.9, 200.0]), (1, [100.0, 200.0])]:
        rows.append({"round": rnd, "cell": 0, "iteration": 0, "step": "start", "objective_j": objs[0]})
        for i, o in enumerate(objs[1:], start=1):
            for step in ["power-bits", "matching"]:
                rows.append({"round": rnd, "cell": 0, "iteration": i, "step": step, "objective_j": o})
    df = pl.DataFrame(rows).with_columns(
        pl.lit(1.0).alias("mean_energy_j"), pl.lit(0.01).alias("efficiency_per_j"), pl.lit(8.0).alias("mean_bits"), pl.lit(10).alias("scheduled")
    )
    df = df.with_columns(pl.col("round", "cell", "iteration", "scheduled").cast(pl.UInt32))
    df.write_parquet(d / "bcd_steps.parquet")
    pl.DataFrame({"round": [0, 1], "alloc_iterations": [3, 1]}, schema_overrides={"round": pl.UInt32, "alloc_iterations": pl.UInt32}).write_parquet(d / "rounds.parquet")
    out = tmp_path / "figs"
    subprocess.run([sys.executable, str(ANALYSIS / "fig4_bcd.py"), str(tmp_path), str(out)], check=True, cwd=ANALYSIS)
    (row,) = read_md_table(out / "fig4_bcd.md")
    # Means over the two rounds: iteration 0: 100, 1: 175, 2: 199.95, 3: 200.
    assert float(row["start_objective_j"]) == 100 and float(row["final_objective_j"]) == 200
    assert int(row["settled_by_iteration"]) == 2
    assert float(row["iterations_mean"]) == 2 and int(row["iterations_max"]) == 3


def write_pickle(path, obj):
    import pickle

    path.write_bytes(pickle.dumps(obj))


def convert_fedscale(tmp_path, check=True):
    """Runs the converter on tmp_path's cap.pkl and beh.pkl into d.csv and a.csv."""
    args = [sys.executable, str(ANALYSIS / "fedscale_traces.py")] + [str(tmp_path / f) for f in ["cap.pkl", "beh.pkl", "d.csv", "a.csv"]]
    return subprocess.run(args, check=check, capture_output=not check, text=True)


def test_fedscale_traces_convert_units_and_intervals(tmp_path):
    """FedScale's two dictionaries, written here in its format, become the
    device and availability tables, units converted as documented."""
    cap = {7: {"computation": 20.0, "communication": 1500.0}, 3: {"computation": 50.0, "communication": 800}}
    beh = {
        3: {"duration": 100, "inactive": [40.0, 90.0], "finish_time": 100.0, "active": [10.0, 60.0], "model": "Pixel"},
        7: {"duration": 100, "inactive": [30], "finish_time": 200, "active": [0], "model": "SM-G950"},
    }
    write_pickle(tmp_path / "cap.pkl", cap)
    write_pickle(tmp_path / "beh.pkl", beh)
    dev, av = tmp_path / "d.csv", tmp_path / "a.csv"
    convert_fedscale(tmp_path)
    d = pl.read_csv(dev)
    assert d["fedscale_client"].to_list() == [3, 7], "ascending client id"
    assert d["device"].to_list() == [0, 1]
    assert d["flops_per_s"].to_list() == pytest.approx([0.6e9 / 0.050, 0.6e9 / 0.020])
    assert d["uplink_bps"].to_list() == pytest.approx([800e3, 1500e3])
    a = pl.read_csv(av)
    assert a.rows() == [(0, 10.0, 40.0, 100.0), (0, 60.0, 90.0, 100.0), (1, 0.0, 30.0, 200.0)]


def test_fedscale_traces_refuse_a_pickle_that_calls_a_function(tmp_path):
    """A pickle that names any global (here os.system) is refused by name;
    the function never runs."""
    import pickle

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    (tmp_path / "cap.pkl").write_bytes(pickle.dumps({1: Evil()}))
    write_pickle(tmp_path / "beh.pkl", {1: {"active": [0], "inactive": [1], "finish_time": 2}})
    r = convert_fedscale(tmp_path, check=False)
    assert r.returncode != 0 and "refused to load posix.system" in r.stderr, r.stderr
    assert not marker.exists() and not (tmp_path / "d.csv").exists()


@pytest.mark.parametrize(
    "beh,words",
    [
        ({1: {"active": [5, 1], "inactive": [6, 2], "finish_time": 10}}, "interval 1"),
        ({1: {"active": [0], "inactive": [20], "finish_time": 10}}, "within [0, finish_time"),
        ({1: {"active": [0, 1], "inactive": [2], "finish_time": 10}}, "2 `active` instants but 1"),
        ({2: {"active": [0], "inactive": [1], "finish_time": 10}}, "no trace for client 1"),
    ],
)
def test_fedscale_traces_bad_input_names_the_client_and_field(tmp_path, beh, words):
    write_pickle(tmp_path / "cap.pkl", {1: {"computation": 10, "communication": 100}})
    write_pickle(tmp_path / "beh.pkl", beh)
    r = convert_fedscale(tmp_path, check=False)
    assert r.returncode != 0 and words in r.stderr, r.stderr


def test_trace_driven_gini_and_totals(tmp_path):
    """The Gini coefficient against its pairwise definition, and each
    run's totals against plain sums."""
    sys.path.insert(0, str(ANALYSIS))
    import itertools
    import trace_driven

    for counts in [[0, 0, 5], [1, 1, 1, 1], [0, 3, 7, 10, 2]]:
        n, mean = len(counts), sum(counts) / len(counts)
        pairwise = sum(abs(a - b) for a, b in itertools.product(counts, counts)) / (2 * n * n * mean)
        assert trace_driven.gini(counts) == pytest.approx(pairwise)
    for name, sched in [("a", [2, 3]), ("b", [1, 0])]:
        run = tmp_path / name
        run.mkdir()
        u32 = pl.UInt32
        pl.DataFrame(
            {"round": [0, 1], "start_s": [0.0, 10.0], "end_s": [10.0, 20.0], "online": [5, 4], "scheduled": sched,
             "finished": sched, "stragglers": [0, 0], "failed": [0, 0], "energy_j": [1.0, 2.0]},
            schema_overrides={c: u32 for c in ["round", "online", "scheduled", "finished", "stragglers", "failed"]},
        ).write_parquet(run / "rounds.parquet")
        devs = list(range(sum(sched)))
        pl.DataFrame({"device": [d % 3 for d in devs], "energy_j": [0.5] * len(devs), "time_s": [9.0] * len(devs)},
                     schema_overrides={"device": u32}).write_parquet(run / "device_rounds.parquet")
        pl.DataFrame({"device": [0, 1, 2, 3]}, schema_overrides={"device": u32}).write_parquet(run / "devices.parquet")
    out = tmp_path / "figs"
    subprocess.run([sys.executable, str(ANALYSIS / "trace_driven.py"), str(tmp_path / "a"), str(tmp_path / "b"), str(out)], check=True, cwd=ANALYSIS)
    rows = {r["devices"]: r for r in read_md_table(out / "trace_driven.md")}
    assert rows["drawn"]["scheduled"] == "5" and rows["trace"]["scheduled"] == "1"
    assert rows["drawn"]["never_scheduled"] == "1" and rows["trace"]["never_scheduled"] == "3"
    assert float(rows["drawn"]["participation_gini"]) == pytest.approx(trace_driven.gini([2, 2, 1, 0]), abs=1e-3)


def test_synthetic_traces_are_valid_and_reproducible(tmp_path):
    """Same seed, same files; every device has disjoint, sorted intervals
    within one day."""
    def make(d, seed):
        d.mkdir()
        subprocess.run([sys.executable, str(ANALYSIS / "synthetic_traces.py"), "50", str(d / "dev.csv"), str(d / "av.csv"), "--seed", str(seed)], check=True)
        return (d / "dev.csv").read_text(), (d / "av.csv").read_text()
    a, b, c = make(tmp_path / "a", 3), make(tmp_path / "b", 3), make(tmp_path / "c", 4)
    assert a == b and a != c
    av = pl.read_csv(tmp_path / "a" / "av.csv")
    assert sorted(av["device"].unique().to_list()) == list(range(50))
    for (dev,), g in av.group_by(["device"]):
        iv = sorted(zip(g["start_s"].to_list(), g["end_s"].to_list()))
        assert all(0 <= s < e <= 86400 for s, e in iv)
        assert all(iv[i][1] < iv[i + 1][0] for i in range(len(iv) - 1)), f"device {dev}: {iv}"
    d = pl.read_csv(tmp_path / "a" / "dev.csv")
    assert d["uplink_bps"].min() >= 1e5 and d["uplink_bps"].max() <= 1e8 and (d["flops_per_s"] > 0).all()
