"""One-way distillation (kd): a teacher run's top-n lists, the same lists from a file train the same student, the
student keeps its size, and bad teachers (another split, unknown ids, NaN scores) are refused before a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kt_cli.store import Store
from tests.test_cli_errors import assert_fails, kt, ok_json
from tests.test_sequential import SMALL

KD = ["--method", "kd", "--method-set", "top_n=10"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kd") / "kt.duckdb"
    ok_json(kt("train", "--model", "multvae", "--split", "loo", "--distill-epochs", "2", "--finetune-epochs", "0",
               "--name", "mv", "--store", path, "--json"))
    return path


def _lists(store: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    cached = next((store.parent / "kt.artifacts" / "runs").glob("*/teacher-top10-*.npz"))
    data = np.load(cached)
    return data["users"].tolist(), data["items"], data["scores"]


def test_a_teacher_run_and_the_same_lists_from_a_file_train_the_same_student(store: Path, tmp_path: Path) -> None:
    run = ok_json(kt("train", "--model", "sasrec", "--split", "loo", *SMALL, *KD, "--teacher", "mv", "--name",
                     "sas-kd", "--store", store, "--json"))
    assert run["coverage"]["users_with_list"] == 943 and run["phases"][0]["phase"] == "distill"
    users, items, scores = _lists(store)
    with Store.open(store) as db:
        rows = db.split_rows(db.run("mv").split_id)
        epochs = db.epochs("sas-kd")
    train = rows[rows["part"] == 0]
    seen = set(zip(train["user_id"], train["item_id"]))
    assert not any((u, i) in seen for u, row in zip(users, items) for i in row)  # lists hold no training item
    assert all((np.diff(s) <= 0).all() for s in scores) and epochs["recon_loss"].notna().all()
    teacher = tmp_path / "teacher.jsonl"
    teacher.write_text("".join(json.dumps({"user_id": u, "items": list(map(str, i))[::-1],
                                           "scores": [float(x) for x in s][::-1]}) + "\n"
                               for u, i, s in zip(users, items, scores)))
    again = ok_json(kt("train", "--model", "sasrec", "--split", "loo", *SMALL, *KD, "--teacher-file", teacher,
                       "--name", "sas-kd-file", "--store", store, "--json"))
    assert again["best_valid"] == pytest.approx(run["best_valid"], abs=1e-12)
    base = ok_json(kt("train", "--model", "sasrec", "--split", "loo", *SMALL, "--name", "sas", "--store", store,
                      "--json"))
    assert base["best_valid"] != run["best_valid"]  # the term changed training
    weights = {n: _weights(store, n) for n in ("sas", "sas-kd")}  # no parameter added: the same serving cost
    assert {k: v.shape for k, v in weights["sas"].items()} == {k: v.shape for k, v in weights["sas-kd"].items()}


def _weights(store: Path, run: str) -> dict:
    with Store.open(store) as db:
        folder = db.run_folder(run)
    return torch.load(folder / "model.pt", weights_only=True)["model"]


def test_bad_teachers_are_refused_before_a_run_exists(store: Path, tmp_path: Path) -> None:
    ok_json(kt("train", "--model", "multvae", "--distill-epochs", "1", "--finetune-epochs", "0", "--name", "mv-time",
               "--store", store, "--json"))
    student = ["train", "--model", "sasrec", "--split", "loo", *SMALL, *KD, "--name", "never", "--store", store]
    assert_fails(kt(*student, "--teacher", "mv-time"), 2, "another split", "--split")
    assert_fails(kt(*student, "--teacher", "nobody"), 1, "Teacher run 'nobody' does not exist")
    assert_fails(kt(*student), 2, "needs one teacher")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([
        json.dumps({"user_id": "1", "items": ["1", "2"], "scores": [1.0, float("nan")]}),
        json.dumps({"user_id": "99999", "items": ["1"], "scores": [1.0]}),
        json.dumps({"user_id": "2", "items": ["no-such-item"], "scores": [1.0]}),
        "not json",
        json.dumps({"user_id": "3", "items": ["1"], "scores": [1.0]}),
    ]) + "\n")
    message = assert_fails(kt(*student, "--teacher-file", bad), 2, "4 bad line(s)", "NaN", "unknown user",
                           "unknown item", "not JSON")
    assert "line 1" in message
    assert_fails(kt("train", "--model", "sasrec", "--split", "loo", "--teacher", "mv", "--name", "never", "--store",
                    store), 2, "read by method kd only")
    assert_fails(kt(*student, "--teacher", "mv", "--method-set", "loss=mse"), 2, "kl, bce")
    with Store.open(store) as db:
        assert db.run("never") is None


def test_mutual_distillation_trains_the_partner_in_turns_and_serves_the_crm_alone(store: Path) -> None:
    run = ok_json(kt("train", "--model", "sasrec", "--split", "loo", *SMALL[:-4], "--distill-epochs", "3",
                     "--finetune-epochs", "0", "--method", "llmd4rec", "--partner", "mv", "--name", "sas-mutual",
                     "--store", store, "--json"))
    assert run["coverage"]["partner_users_matched"] == 943 and run["phases"][0]["phase"] == "mutual"
    best = run["phases"][0]["best_epoch"]  # epochs 0 and 2 are the CRM's turns, 1 the partner's
    with Store.open(store) as db:
        epochs = db.epochs("sas-mutual")
        folder = db.run_folder("sas-mutual")
    assert epochs["recon_loss"].notna().all()  # a KL term in both turns
    saved = torch.load(folder / "model.pt", weights_only=False)
    partner_before = _weights(store, "mv")
    partner_after = saved["method"]["partner"]
    changed = any(not torch.equal(partner_before[k], partner_after[k]) for k in partner_before)
    assert changed == (best >= 1)  # the stored partner is the best epoch's: trained if its turn came before
    ok_json(kt("train", "--model", "sasrec", "--split", "loo", *SMALL, "--name", "sas", "--store", store, "--json"))
    crm = {k: v.shape for k, v in saved["model"].items()}
    assert crm == {k: v.shape for k, v in _weights(store, "sas").items()}  # the served model: plain SASRec
    evaluated = ok_json(kt("eval", "sas-mutual", "--store", store, "--json"))
    assert evaluated[0]["task"] == "sequential"
    assert_fails(kt("train", "--model", "sasrec", "--split", "loo", "--method", "llmd4rec", "--name", "never",
                    "--store", store), 2, "needs --partner")
