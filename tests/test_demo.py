"""``kt demo --quick``: the main job's real pipeline end to end (shipped profiles, MiniLM, PCA, RecBole
training of all three models, evaluation, comparison), then a rerun that reuses every stored result."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kt_cli.cli import demo as demo_cli
from kt_cli.cli.app import app
from kt_cli.store import Store, _now

pytestmark = pytest.mark.slow
runner = CliRunner()


def test_demo_runs_the_pipeline_and_reuses_the_store(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(demo_cli, "note", shown.append)
    args = ["demo", "--quick", "--threads", "1", "--store", str(store_path), "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    comparisons = json.loads(first.stdout)
    # three models, baseline first, all users
    assert [c["runs"][0] for c in comparisons] == [f"quick-{m}-base" for m in ("multvae", "simplex", "neumf")]
    for c in comparisons:
        assert c["runs"][1] == c["runs"][0].replace("-base", "-llmkt")
        assert set(c["rows"]) == {"ndcg@10", "recall@10", "hit@10"}
        base, llm = c["rows"]["ndcg@10"]
        assert 0 < base["value"] < 1 and 0 < llm["value"] < 1 and 0 <= llm["p_value"] <= 1
    assert comparisons[0]["n_users"] == 943
    commands = [line.removeprefix("[bold]$ kt ").removesuffix("[/bold]") for line in shown
                if line.startswith("[bold]$ kt ")]
    assert [c.split()[0] for c in commands] == ["profile", "embed", "reduce"] + ["train"] * 6 + ["eval"]
    assert any(c.startswith("train --model neumf") and "--knowledge llm-pca64" in c for c in commands)
    for command in commands:  # each step's printed command is one kt accepts as it is
        check = runner.invoke(app, shlex.split(command) + ["--help"])
        assert check.exit_code == 0, (command, check.output)
    with Store.open(store_path) as store:
        runs = {r.name: r for r in store.runs()}
        shipped = store.profile_set("ml-100k", "user-qwen2.5-coder-1.5b")
    assert all(runs[f"quick-{m}-llmkt"].summary["coverage"]["matched"] == shipped.n_profiles
               for m in ("multvae", "simplex", "neumf"))

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == comparisons
    assert again.stderr.count("Already trained") == 6 and "Already stored" in again.stderr
    with Store.open(store_path) as store:
        assert {r.name: r.finished_at for r in store.runs()} == {n: r.finished_at for n, r in runs.items()}

    with Store.open(store_path) as store:  # the knowledge stored again, as newer shipped profiles would make it
        ids, vectors = store.knowledge_vectors("ml-100k", "llm-pca64")
        row = store.knowledge_set("ml-100k", "llm-pca64")
        store.save_knowledge_set(replace(row, created_at=_now()), ids, vectors)
    third = runner.invoke(app, args)
    assert third.exit_code == 0, third.output
    assert third.stderr.count("Already trained") == 3  # the baselines; the LLM-KT runs are retrained
    assert any("--knowledge llm-pca64" in line and "--force" in line for line in shown)


def test_idle_cores_sees_a_busy_process_now_not_the_load_average(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spinning process takes one core from the demo's threads; the 1-minute load average (which still counts
    work that has just ended, such as the install before the demo) is not consulted where /proc/stat exists."""
    import os
    import subprocess
    import sys

    if demo_cli._cpu_times() is None:
        pytest.skip("no /proc/stat here")
    monkeypatch.setattr(os, "getloadavg", lambda: (float(os.cpu_count() or 1), 0.0, 0.0))  # "every core busy"
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        threads, cores, busy = demo_cli.idle_cores(window=1.0)
    finally:
        spinner.kill()
        spinner.wait()
    assert busy >= 0.8
    assert 1 <= threads <= max(1, cores - 1)  # other work may take more, never less


def test_idle_cores_falls_back_to_the_load_average_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(demo_cli, "_cpu_times", lambda: None)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 0.0, 0.0))
    assert demo_cli.idle_cores() == (3, 4, 1.2)
