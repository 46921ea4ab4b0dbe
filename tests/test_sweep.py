"""``kt sweep``: a grid file's runs as tasks on a real local Ray; the driver alone writes the store, a task whose
worker is killed is run again, a rerun trains only what is missing, bad grid files are refused in one paragraph."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kt_cli.store import Store
from kt_cli.sweep import read_grid
from tests.test_cli_errors import assert_fails, kt

KT = [str(Path(sys.executable).parent / "kt")]


def _grid(tmp_path: Path, epochs: int = 2, seeds: str = "1-2") -> Path:
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"name: mv\ntrain:\n  model: multvae\n  distill-epochs: {epochs}\n  finetune_epochs: 0\n"
                    f"  set: {{train_batch_size: 512}}\ngrid:\n  set.learning_rate: [0.001, 0.002]\nseeds: {seeds}\n")
    return grid


def test_a_grid_file_names_its_runs_and_checks_every_configuration(tmp_path: Path) -> None:
    runs = read_grid(_grid(tmp_path))
    assert [r.name for r in runs] == ["mv-learning_rate=0.001-s1", "mv-learning_rate=0.001-s2",
                                      "mv-learning_rate=0.002-s1", "mv-learning_rate=0.002-s2"]
    assert runs[3].config.recbole == {"train_batch_size": 512, "learning_rate": 0.002} and runs[3].config.seed == 2
    assert runs[0].config.distill_epochs == 2 and runs[0].config.finetune_epochs == 0
    assert len({r.config.digest() for r in runs}) == 4


@pytest.mark.parametrize("text, code, phrases", [
    ("name: x\ngrid:\n  learnig_rate: [1]\n", 2, ["Unknown key 'learnig_rate'", "set.KEY"]),
    ("name: x\ngrid:\n  alpha: 0.5\n", 1, ["must list one or more values"]),
    ("name: x\ntrain:\n  model: nosuchmodel\n", 1, ["nosuchmodel", "multvae"]),
    ("name: x\ntrain:\n  set: {no_such_setting: 1}\n", 2, ["no_such_setting"]),
    ("name: x\ntrain:\n  set: 5\n", 2, ["takes a mapping"]),
    ("grid: {}\n", 1, ["must be a mapping with 'name'"]),
    ("name: x\nseeds: one\n", 2, ["--seeds takes a range"]),
    ("name: [unclosed\n", 1, ["not valid YAML"]),
])
def test_bad_grid_files_are_refused_before_ray_starts(tmp_path: Path, text: str, code: int,
                                                      phrases: list[str]) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_text(text)
    assert_fails(kt("sweep", grid, "--store", tmp_path / "kt.duckdb"), code, *phrases)


def _ray_workers() -> list[int]:
    """Pids of Ray worker processes running kt's training task (Ray names them after the task)."""
    out = subprocess.run(["pgrep", "-f", "ray::train_task"], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


@pytest.mark.ray
def test_a_local_sweep_survives_a_killed_worker_and_a_rerun_trains_nothing(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    grid = _grid(tmp_path, epochs=4, seeds="1")  # two runs: one is killed and run again beside the other
    sweep = subprocess.Popen([*KT, "sweep", str(grid), "--store", str(store), "--cpus", "2", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, killed = time.monotonic() + 300, None
    while killed is None and time.monotonic() < deadline and sweep.poll() is None:
        workers = _ray_workers()
        if workers:
            time.sleep(3)  # let it get into training
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.5)
    out, err = sweep.communicate(timeout=900)
    assert killed is not None, "no Ray worker was seen training"
    assert sweep.returncode == 0, err
    report = json.loads(out)
    assert sorted(report["trained"]) == [r.name for r in read_grid(grid)] and report["failed"] == {}
    with Store.open(store) as db:
        rows = {name: db.run(name) for name in report["trained"]}
        assert all(r.status == "finished" and r.summary["phases"][0]["epochs"] == 4 for r in rows.values())
        assert all(len(db.epochs(name)) == 4 and (db.run_folder(name) / "model.pt").is_file() for name in rows)
        assert len(rows) == 2
    again = subprocess.run([*KT, "sweep", str(grid), "--store", str(store), "--json"], capture_output=True,
                           text=True, timeout=300)
    rerun = json.loads(again.stdout)
    assert rerun["trained"] == [] and sorted(rerun["skipped"]) == sorted(report["trained"])
    evaluated = subprocess.run([*KT, "eval", report["trained"][0], "--store", str(store), "--json"],
                               capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr  # a run stored by the driver is usable like any other
