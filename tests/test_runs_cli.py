"""Runs you can manage and read: input checks before a run exists, the training lease, retrying a failed
run, seeds and groups, kt show, per-user exports, corrected p-values, deleting runs, read-only commands.

Training is BPR for two or three epochs on ml-100k (about a second each); the group comparison is checked
against the same figures computed by hand from the ``--per-user`` export.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_ind, ttest_rel

from kt_cli.evaluation.compare import adjust
from kt_cli.store import Store
from tests.test_cli_errors import assert_fails, flat, kt, ok_json, stored_runs

BPR = ["--model", "bpr", "--distill-epochs", "2", "--finetune-epochs", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """base-s1..3 (default lr) and fast-s1..3 (lr 0.01), evaluated at 5,10,20."""
    store = tmp_path_factory.mktemp("seeded") / "kt.duckdb"
    ok_json(kt("train", *BPR, "--seeds", "1-3", "--name", "base", "--store", store, "--json"))
    made = ok_json(kt("train", *BPR, "--seeds", "1,2,3", "--name", "fast", "--set", "learning_rate=1e-2",
                      "--store", store, "--json"))
    assert [r["run"] for r in made] == ["fast-s1", "fast-s2", "fast-s3"]
    ok_json(kt("eval", *[f"{n}-s{s}" for n in ("base", "fast") for s in (1, 2, 3)], "--store", store, "--json"))
    return store


# --- 1-4, 12: bad training input is refused before a run exists or heavy work starts ------------------


@pytest.mark.parametrize(("args", "phrases"), [
    (["--set", "learning_rate=abc"], ["learning_rate='abc' has the wrong type", "takes a number"]),
    (["--set", "learning_rat=0.01"], ["'learning_rat' is not one RecBole knows", "Did you mean learning_rate",
                                      "--allow-unknown-settings"]),
    (["--set", "train_batch_size=[1]"], ["train_batch_size=[1] has the wrong type", "whole number"]),
    (["--valid-metric", "foo@10"], ["--valid-metric must be METRIC@K", "ndcg, hit, recall, mrr, precision"]),
    (["--valid-metric", "ndcg@ten"], ["--valid-metric must be METRIC@K"]),
    (["--device", "gpu"], ["--device must be cpu, cuda or cuda:N"]),
    (["--seeds", "1-x"], ["--seeds takes a range like 1-5"]),
    (["--seeds", "1,1"], ["distinct seeds"]),
    (["--split-order", "weekly"], ["--split-order must be one of time, random, global"]),
    (["--split", "0.8,0,0.2"], ["three positive numbers summing to 1", "validation for early stopping"]),
    (["--set", "learning_rate=-1"], ["learning_rate=-1.0 must be positive"]),
    (["--set", "train_batch_size=0"], ["train_batch_size=0 must be positive"]),
    (["--set", "learner=adamm"], ["learner='adamm' is not one kt can train with", "adam, sgd, adagrad, rmsprop"]),
    (["--set", "embedding_size=0"], ["embedding_size=0 must be positive"]),
    (["--name", "a*b"], ["Run name 'a*b' cannot be used", "glob characters"]),
    (["--name", " "], ["Run name ' ' cannot be used"]),
])
def test_bad_training_input_creates_no_run(args: list[str], phrases: list[str], tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    assert_fails(kt("train", *BPR, *args, "--store", store), 2, *phrases)
    assert not store.exists() or stored_runs(store) == {}


def test_cuda_without_cuda_is_refused_not_run_on_the_cpu(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    store = tmp_path / "kt.duckdb"
    result = kt("train", *BPR, "--device", "cuda", "--store", store)
    assert_fails(result, 2, "--device cuda was asked for", "no CUDA device", "--device cpu")
    assert result.stderr.startswith("Error"), "no empty progress bar or blank line before the message"
    assert stored_runs(store) == {}


def test_settings_are_typed_and_allow_unknown_passes_them(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    run = ok_json(kt("train", *BPR, "--set", "learning_rate=1e-2", "--name", "typed", "--store", store, "--json"))
    assert run["status"] == "trained"
    with Store.open(store) as db:
        assert db.run("typed").config["recbole"] == {"learning_rate": 0.01}  # YAML's '1e-2' string, as a number
    ok_json(kt("train", *BPR, "--set", "my_own_key=3", "--allow-unknown-settings", "--name", "own", "--store", store,
               "--json"))
    listed = ok_json(kt("train", "--model", "neumf", "--list-settings", "--json"))
    assert listed["settings"]["mlp_hidden_size"] == [128, 64] and "epochs" in listed["managed_by_kt"]


def test_unknown_inputs_are_reported_without_a_bar_and_before_recbole(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from kt_cli.training import trainer

    monkeypatch.setattr(trainer, "train", lambda *a, **k: pytest.fail("reached training"))
    store = tmp_path / "kt.duckdb"
    for args, phrase in ((["--dataset", "nope"], "Unknown dataset 'nope'"),
                         (["--knowledge", "nope"], "no knowledge set 'nope'")):
        result = kt("train", *BPR, *args, "--store", store)
        assert_fails(result, 1, phrase)
        assert result.stderr.startswith("Error")


# --- 7, 8: one process trains a run; a failed run is retried under its name ----------------------------


def test_a_run_being_trained_elsewhere_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    command = [sys.executable, "-c", "from kt_cli.cli.app import main; main()", "train", "--model", "multvae", "--distill-epochs", "200",
               "--finetune-epochs", "0", "--patience", "200", "--threads", "1", "--name", "d", "--store", str(store)]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            time.sleep(1)
            try:
                if stored_runs(store).get("d") == "running":
                    break
            except Exception:  # the store is locked while the first process writes
                continue
        second = kt("train", "--model", "multvae", "--distill-epochs", "200", "--finetune-epochs", "0",
                    "--patience", "200", "--threads", "1", "--name", "d", "--store", store)
        assert_fails(second, 2, "Run 'd' is being trained right now by process", str(first.pid), "--name")
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    assert stored_runs(store)["d"] == "interrupted"


def test_a_failed_run_is_replaced_by_a_fixed_rerun(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    with Store.open(store) as db:  # a run that failed (as a crash mid-training leaves it)
        from kt_cli.store import RunRow, _now

        db.start_run(RunRow("f", "ml-100k", "s0", "bpr", None, {"model": "bpr"}, "old", 42, "running", _now(),
                            None, {}, {}, None))
        db.finish_run("f", "failed", {}, error="ValueError: bad")
    message = assert_fails(kt("eval", "f", "--store", store), 1)
    assert "failed during training (ValueError: bad)" in message and "same name" in message
    again = ok_json(kt("train", *BPR, "--name", "f", "--store", store, "--json"))
    assert again["status"] == "trained" and stored_runs(store)["f"] == "finished"


# --- 5, 6, 13 and groups: compare -------------------------------------------------------------------------


def test_compare_checks_metric_names_and_reuses_a_wider_evaluation(seeded: Path) -> None:
    assert_fails(kt("compare", "base-s1", "fast-s1", "--metrics", "foo", "--store", seeded), 2,
                 "Unknown metric(s) foo", "ndcg, hit, recall, mrr, precision")
    narrow = ok_json(kt("compare", "base-s1", "fast-s1", "--k", "10", "--store", seeded, "--json"))
    assert list(narrow["rows"]) == ["ndcg@10", "recall@10", "hit@10", "mrr@10", "precision@10"]
    shown = kt("compare", "base-s1", "fast-s1", "--k", "10", "--test", "bootstrap", "--metrics", "ndcg",
               "--store", seeded)
    assert shown.exit_code == 0 and "95% CI of diff" in flat(shown.stdout)


def test_eval_rows_sort_by_cut_off_numerically(seeded: Path) -> None:
    shown = kt("eval", "base-s1", "--store", seeded)
    lines = [line.split()[1] for line in shown.stdout.splitlines() if line.startswith("│ hit@")]
    assert lines == ["hit@5", "hit@10", "hit@20"]


def test_groups_match_figures_computed_from_the_per_user_export(seeded: Path, tmp_path: Path) -> None:
    export = tmp_path / "users.csv"
    kt("eval", *[f"{n}-s{s}" for n in ("base", "fast") for s in (1, 2, 3)], "--per-user", export, "--store", seeded)
    frame = pd.read_csv(export, dtype={"user_id": str})
    frame = frame[frame["slice"] == "all"]
    ndcg = frame[(frame["metric"] == "ndcg") & (frame["k"] == 10)].pivot(index="user_id", columns="run",
                                                                           values="value")
    base = ndcg[[f"base-s{s}" for s in (1, 2, 3)]]
    fast = ndcg[[f"fast-s{s}" for s in (1, 2, 3)]]
    result = ok_json(kt("compare", "base-s*", "fast-s*", "--k", "10", "--correct", "none", "--store", seeded,
                        "--json"))
    first, second = result["rows"]["ndcg@10"]
    assert first["value"] == pytest.approx(base.to_numpy().mean())
    assert first["std"] == pytest.approx(np.std(base.mean().to_numpy(), ddof=1))
    assert second["p_value"] == pytest.approx(ttest_rel(fast.mean(axis=1), base.mean(axis=1)).pvalue)
    assert second["p_seeds"] == pytest.approx(ttest_ind(fast.mean(), base.mean(), equal_var=False).pvalue)
    assert result["members"]["base-s*"] == ["base-s1", "base-s2", "base-s3"]
    holm = ok_json(kt("compare", "base-s*", "fast-s*", "--k", "10", "--store", seeded, "--json"))
    raw = [result["rows"][m][1]["p_value"] for m in result["rows"]]
    assert [holm["rows"][m][1]["p_value"] for m in holm["rows"]] == pytest.approx(adjust(raw, "holm"))
    assert_fails(kt("compare", "nothing-*", "fast-s*", "--store", seeded), 1, "No run matches the pattern")


def test_overlapping_groups_and_meaningless_options_are_refused(seeded: Path, tmp_path: Path) -> None:
    assert_fails(kt("compare", "base-s*", "base-s1", "--store", seeded), 2, "share run(s) base-s1", "do not overlap")
    assert_fails(kt("eval", "base-s1", "--mode", "uni0", "--store", seeded), 2, "N at least 1")
    assert_fails(kt("runs", "--yes", "--store", seeded), 2, "--yes only answers the question --delete asks")
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "ml-100k.inter").write_text("user_id:token\titem_id:token\n1\t2\n")
    assert_fails(kt("data", "register", "ml-100k", "--path", folder, "--store", tmp_path / "kt.duckdb"), 2,
                 "'ml-100k' is a built-in dataset", "kt data register my-ml-100k")


def test_groups_of_unequal_size_and_mixed_configurations(seeded: Path) -> None:
    two = ok_json(kt("compare", "base-s[12]", "fast-s*", "--k", "10", "--store", seeded, "--json"))
    assert two["members"]["base-s[12]"] == ["base-s1", "base-s2"] and two["rows"]["ndcg@10"][1]["p_seeds"] is not None
    assert_fails(kt("compare", "*-s1", "fast-s2", "--store", seeded), 2, "mixes configurations", "recbole")


def test_a_split_with_an_empty_part_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    folder = tmp_path / "flat"
    folder.mkdir()
    lines = [f"{u}\t{i}\t4\t{1000 if i < 3 else 2000}" for u in range(1, 5) for i in range(1, 6)]
    (folder / "flat.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                       + "\n".join(lines) + "\n")
    ok_json(kt("data", "register", "flat", "--path", folder, "--store", store, "--json"))
    assert_fails(kt("train", *BPR, "--dataset", "flat", "--split-order", "global", "--store", store), 2,
                 "leaves the valid and test parts of flat empty")


def test_a_run_whose_process_died_is_replaced_by_another_configuration(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    with Store.open(store) as db:  # what kill -9 leaves: status running, a lease whose process is gone
        from kt_cli.store import RunRow, _now

        db.start_run(RunRow("k", "ml-100k", "s0", "bpr", None, {"model": "bpr"}, "old", 42, "running", _now(),
                            None, {}, {}, None))
        db.set_owner("k", {"host": __import__("socket").gethostname(), "pid": 2 ** 22 + 7, "beat": 0.0})
    again = ok_json(kt("train", *BPR, "--name", "k", "--store", store, "--json"))
    assert again["status"] == "trained" and stored_runs(store)["k"] == "finished"


def test_holm_and_bh_adjustments() -> None:
    p = [0.01, 0.04, 0.03, None, 0.005]
    assert adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06, None, 0.02])
    assert adjust(p, "bh") == pytest.approx([0.02, 0.04, 0.04, None, 0.02])
    assert adjust(p, "none") == p
    assert adjust([float("nan"), 0.01], "bh") == [None, pytest.approx(0.01)]


# --- show, runs, delete, read-only commands -----------------------------------------------------------


def test_show_reads_a_finished_and_an_interrupted_run(seeded: Path, tmp_path: Path) -> None:
    shown = ok_json(kt("show", "base-s1", "--plot", tmp_path / "curve.svg", "--store", seeded, "--json"))
    assert shown["status"] == "finished" and len(shown["epochs"]) == 3 and shown["evaluations"]
    assert "<polyline" in (tmp_path / "curve.svg").read_text()
    ok_json(kt("show", "base-s1", "--plot", tmp_path / "curve.png", "--store", seeded, "--json"))
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"
    text = kt("show", "base-s1", "--store", seeded)
    assert text.exit_code == 0 and "Epoch log" in text.stdout and "▁" in text.stdout + "█"
    with Store.open(seeded) as db:
        db.finish_run("fast-s3", "interrupted", {}, error="interrupted")
    partial = ok_json(kt("show", "fast-s3", "--store", seeded, "--json"))
    assert partial["status"] == "interrupted" and partial["epochs"]
    again = ok_json(kt("train", *BPR, "--seeds", "3", "--name", "fast", "--set", "learning_rate=1e-2",
                       "--store", seeded, "--json"))
    assert again[0]["status"] in ("trained", "resumed")


def test_runs_keeps_its_columns_when_piped(seeded: Path) -> None:
    listed = kt("runs", "--store", seeded)
    header = next(line for line in listed.stdout.splitlines() if "name" in line)
    for column in ("layer", "epochs", "status", "best valid"):
        assert column in header
    assert "finished" in listed.stdout and "fini" not in listed.stdout.replace("finished", "")


def test_delete_asks_removes_artifacts_and_refuses_unknown(seeded: Path) -> None:
    with Store.open(seeded) as db:
        folder = db.run_folder("base-s3")
    assert folder.joinpath("model.pt").is_file()
    assert_fails(kt("runs", "--delete", "base-s3", "--store", seeded), 2, "no terminal to ask on", "--yes")
    assert stored_runs(seeded)["base-s3"] == "finished"
    ok_json(kt("runs", "--delete", "base-s3", "--yes", "--store", seeded, "--json"))
    assert "base-s3" not in stored_runs(seeded) and not folder.exists()
    assert_fails(kt("runs", "--delete", "ghost", "--yes", "--store", seeded), 1, "Unknown run 'ghost'", "Nothing was deleted")


@pytest.mark.parametrize("command", [["runs"], ["knowledge"], ["compare", "a", "b"], ["eval", "a"], ["show", "a"]])
def test_read_only_commands_never_create_a_store(command: list[str], tmp_path: Path) -> None:
    store = tmp_path / "no-such-dir" / "sub" / "kt.duckdb"
    assert_fails(kt(*command, "--store", store), 1, f"There is no kt store at {store}", "never create one")
    assert not (tmp_path / "no-such-dir").exists()
    listed = kt("data", "list", "--store", store, "--json")
    assert json.loads(listed.stdout)[0]["name"] == "ml-100k" and not (tmp_path / "no-such-dir").exists()


# --- 9: empty results are errors ------------------------------------------------------------------------


def test_empty_imports_and_profile_sets_are_errors(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    path = tmp_path / "unknown.npz"
    np.savez(path, ids=np.array(["x1", "x2"]), embeddings=np.ones((2, 4), dtype=np.float32))
    assert_fails(kt("embed", "--from-file", path, "--skip-invalid", "--name", "v", "--store", store), 1,
                 "has no usable vector", "Nothing was stored")
    assert_fails(kt("profile", "--offline", "--profiles-cache", tmp_path, "--store", store), 1,
                 "No user profile for ml-100k was made", "none of the cached answers matches")
    with Store.open(store) as db:
        assert db.knowledge_sets("ml-100k") == [] and db.profile_sets("ml-100k") == []
