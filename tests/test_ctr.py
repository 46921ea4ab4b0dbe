"""The CTR task and KAR: labelled exports with side features, AUC/LogLoss/GAUC equal to RecBole's own
evaluator on the same weights and samples, KAR's adaptor through slot fields (missing knowledge, the FM term
kept free of it, weights reloaded for evaluation), LLM-KT's hook on DCN, the paired bootstrap in compare, and
the errors a new user meets (ranking model with KAR, unknown or wrong-entity sets, sampled modes, mixing tasks).

Training is DCN/DeepFM for one or two epochs on ml-100k (a few seconds each on one thread).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kt_cli.datasets.features import feature_frame, infer_features
from kt_cli.evaluation import ctr
from kt_cli.methods import METHODS
from kt_cli.store import Store
from kt_cli.training.config import TrainConfig
from kt_cli.training.session import Session, read_inputs
from tests.test_cli_errors import assert_fails, kt, ok_json, random_vectors, write_vectors

SHORT = ["--distill-epochs", "1", "--finetune-epochs", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ml-100k with user vectors (384-d, all users; 32-d for LLM-KT) and item vectors (384-d, 4 of 5 items),
    a DCN baseline, a DCN KAR run and a BPR run, all evaluated."""
    folder = tmp_path_factory.mktemp("ctr")
    path = folder / "kt.duckdb"
    users, items = [str(u) for u in range(1, 944)], [str(i) for i in range(1, 1683) if i % 5]
    for name, entity, ids, dim in (("u384", "user", users, 384), ("i384", "item", items, 384),
                                   ("u32", "user", users, 32), ("i16", "item", items, 16)):
        ok_json(kt("embed", "--from-file", write_vectors(folder / f"{name}.npz", ids, random_vectors(len(ids), dim)),
                   "--name", name, "--entity", entity, "--store", path, "--json"))
    ok_json(kt("train", "--model", "dcn", *SHORT, "--name", "dcn-base", "--store", path, "--json"))
    ok_json(kt("train", "--model", "dcn", "--method", "kar", "--user-knowledge", "u384", "--item-knowledge", "i384",
               *SHORT, "--name", "dcn-kar", "--store", path, "--json"))
    ok_json(kt("train", "--model", "bpr", *SHORT, "--name", "bpr", "--store", path, "--json"))
    ok_json(kt("eval", "dcn-base", "dcn-kar", "bpr", "--store", path, "--json"))
    return path


def test_side_features_are_tokens_never_floats() -> None:
    rows = {str(i): {"age": str(20 + i % 50), "zip_code": f"{10000 + i}", "class": "Action Comedy",
                     "budget": str(1000 + 17 * i), "scores": "1 2 3", "movie_title": f"Film {i}"} for i in range(300)}
    features = {f.name: f for f in infer_features(rows)}
    assert "movie_title" not in features  # near-unique free text would be a second id
    assert {f.kind for f in features.values()} <= {"token", "token_seq"}  # no float, no float_seq (RecBole traps)
    assert features["class"].kind == "token_seq" and features["scores"].kind == "token_seq"
    assert features["budget"].rule == "10 quantile bins" and features["age"].rule == "value as a token"
    frame = feature_frame(rows, "item_id", list(features.values()))
    assert set(frame["budget"]) == {f"q{b}" for b in range(10)}
    assert frame["zip_code"].str.len().max() == 2


def test_ctr_run_records_its_label_and_features(store: Path) -> None:
    with Store.open(store) as db:
        run = db.run("dcn-base")
        rows = db.split_rows(run.split_id).merge(db.interactions("ml-100k"), on=["user_id", "item_id"])
    assert run.config["label_threshold"] == 4.0 and run.config["valid_metric"] == "auc"
    assert run.summary["task"] == "ctr" and run.summary["data"]["label"] == "label = rating >= 4"
    assert "zip_code (token: first 2 characters)" in run.summary["data"]["features"]["user"]
    test = rows[rows["part"] == 2]
    assert run.summary["data"]["positive_share"]["test"] == pytest.approx((test["rating"] >= 4).mean())


def _session(store: Path, run: str) -> Session:
    with Store.open(store) as db:
        row = db.run(run)
        config = TrainConfig.from_dict(row.config)
        inputs = read_inputs(db, config, with_knowledge=config.method_spec.at_inference)
        folder = db.run_folder(run)
    session = Session(config, inputs, folder)
    weights = torch.load(folder / "model.pt", weights_only=True)
    session.model.load_state_dict(weights["model"])
    if config.method_spec.at_inference:
        session.attach_knowledge()
        session.method.load_state_dict(weights["method"])
    return session


@pytest.mark.parametrize("run", ["dcn-base", "dcn-kar"])
def test_auc_and_logloss_equal_recboles_own_evaluator(store: Path, run: str) -> None:
    """RecBole's Trainer.evaluate on the same weights and test samples gives kt's stored AUC and LogLoss."""
    from recbole.utils import get_trainer

    from kt_cli.training.recbole_adapter import recbole_isolation

    with Store.open(store) as db:
        eval_id = db.evaluations(run)[0][0]
        stored = db.eval_metrics(eval_id).set_index(["slice", "metric"])["value"]
        samples = db.eval_samples(eval_id)
    session = _session(store, run)
    config = session.parts.config
    config["metric_decimal_place"] = 12
    with recbole_isolation():
        test_data = session.parts.eval_data[1]
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, session.model)
        theirs = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    assert len(samples) == len(test_data.dataset.inter_feat)
    assert theirs["auc"] == pytest.approx(stored[("all", "auc")], abs=1e-9)
    assert theirs["logloss"] == pytest.approx(stored[("all", "logloss")], abs=1e-9)
    assert 0.6 < stored[("all", "auc")] < 0.9  # learned something (a float-feature trap would leave 0.5)


def test_gauc_weights_users_by_samples_and_leaves_one_class_users_out() -> None:
    users = np.array([1, 1, 1, 1, 2, 2, 3, 3, 3])
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 1, 1], dtype=float)
    scores = np.array([0.9, 0.1, 0.2, 0.8, 0.3, 0.6, 0.5, 0.5, 0.5])
    stats = ctr.UserStats.build(users, labels, scores)
    assert stats.one_class == 1 and np.isnan(stats.auc[2])
    assert stats.auc[:2].tolist() == [0.75, 0.0]  # user 1: 3 of 4 pairs in order
    assert stats.gauc() == pytest.approx((4 * 0.75 + 2 * 0.0) / 6)
    counts = np.array([[2.0, 0.0, 1.0]])  # user 1 drawn twice, user 2 never
    assert ctr.resampled(labels, scores, stats, counts)["gauc"][0] == pytest.approx(0.75)
    assert ctr.weighted_auc(labels, scores, counts[:, stats.index])[0] == pytest.approx(
        ctr.auc(np.r_[labels[:4], labels[:4], labels[6:]], np.r_[scores[:4], scores[:4], scores[6:]]))


def test_kar_masks_items_without_knowledge_and_reloads_its_adaptor(store: Path) -> None:
    with Store.open(store) as db:
        run = db.run("dcn-kar")
    coverage = run.summary["coverage"]
    assert coverage["items_without_vector"] == 1682 - 1346 and coverage["users_without_vector"] == 0
    assert run.summary["adaptor_parameters"] > 0 and run.summary["knowledge_fields"] == ["kar_user", "kar_item"]
    session = _session(store, "dcn-kar")
    _, _, labels, scores = session.task.score(session, 2)
    with Store.open(store) as db:  # the adaptor as trained, not a fresh one, scored the stored test samples
        stored = db.eval_samples(db.evaluations("dcn-kar")[0][0])
    assert np.allclose(np.sort(scores), np.sort(stored["score"].to_numpy()), atol=1e-6)
    session.method.modules["default_field"]["item"].data += 1.0  # items without a vector read the default
    _, items, _, moved = session.task.score(session, 2)
    missing = ~session.method.targets["item"].present[torch.from_numpy(items)].numpy()
    assert missing.any() and not np.allclose(moved[missing], scores[missing])
    assert np.allclose(moved[~missing], scores[~missing], atol=1e-6)


def test_kar_keeps_knowledge_out_of_deepfms_fm_term(tmp_path: Path, store: Path) -> None:
    config = TrainConfig(model="deepfm", method="kar", user_knowledge="u384", item_knowledge="i384",
                         distill_epochs=1, finetune_epochs=0)
    with Store.open(store) as db:
        inputs = read_inputs(db, config)
    session = Session(config, inputs, tmp_path)
    session.attach_knowledge()
    seen: list[torch.Tensor] = []
    handle = session.model.fm.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    embedded: list[torch.Tensor] = []
    handle2 = session.model.mlp_layers.register_forward_hook(lambda m, args, out: embedded.append(args[0]))
    session.model.calculate_loss(next(iter(session.parts.train_data)))
    handle.remove(), handle2.remove()
    names = session.model.token_field_names
    offset = len(session.model.token_seq_field_names)
    slots = [offset + names.index("kar_user"), offset + names.index("kar_item")]
    assert float(seen[0][:, slots].detach().abs().sum()) == 0.0  # the FM term never sees the knowledge fields
    width = session.model.embedding_size
    deep = embedded[0].view(len(embedded[0]), -1, width)
    assert float(deep[:, slots].detach().abs().sum()) > 0.0  # the DNN does


def test_llmkt_hooks_dcns_deep_tower(store: Path) -> None:
    made = ok_json(kt("train", "--model", "dcn", "--knowledge", "u32", *SHORT, "--name", "dcn-llmkt",
                      "--store", store, "--json"))
    assert made["method"] == "llmkt" and made["layer"] == "mlp_layers:output"
    with Store.open(store) as db:
        epochs = db.epochs("dcn-llmkt").to_dict(orient="records")
    assert epochs[0]["phase"] == "distill" and epochs[0]["recon_loss"] is not None
    assert epochs[0]["aligned_rows"] > 0 and epochs[0]["masked_rows"] == 0


def test_compare_ctr_runs_by_a_bootstrap_over_users(store: Path) -> None:
    result = ok_json(kt("compare", "dcn-base", "dcn-kar", "dcn-base", "--store", store, "--json"))
    assert result["task"] == "ctr" and list(result["rows"]) == ["auc", "gauc", "logloss"]
    auc = result["rows"]["auc"]
    assert auc[2]["p_value"] == 1.0 and auc[2]["delta_pct"] == 0.0  # A/A: identical runs
    low, high = auc[1]["ci95"]
    assert low <= auc[1]["value"] - auc[0]["value"] <= high
    sparse = ok_json(kt("compare", "dcn-base", "dcn-kar", "--max-train", "20", "--store", store, "--json"))
    assert sparse["n_users"] < result["n_users"]


def test_ctr_errors_name_what_is_valid(store: Path) -> None:
    assert_fails(kt("train", "--model", "bpr", "--method", "kar", "--user-knowledge", "u384", "--store", store),
                 2, "Method 'kar'", "ctr task", "dcn", "deepfm", "'bpr' is a ranking model")
    assert_fails(kt("train", "--model", "dcn", "--method", "kar", "--user-knowledge", "nope", "--store", store),
                 1, "no knowledge set 'nope' (--user-knowledge)", "u384", "kt embed")
    assert_fails(kt("train", "--model", "dcn", "--method", "kar", "--user-knowledge", "i384", "--store", store),
                 2, "holds item vectors", "set of user vectors")
    assert_fails(kt("train", "--model", "dcn", "--method", "kar", "--store", store), 2, "--user-knowledge and/or")
    assert_fails(kt("train", "--model", "dcn", "--method", "kar", "--knowledge", "u32", "--store", store),
                 2, "--knowledge is not read by method 'kar'")
    assert_fails(kt("train", "--model", "dcn", "--valid-metric", "ndcg@10", "--store", store),
                 2, "auc, gauc, logloss")
    assert_fails(kt("train", "--model", "bpr", "--label-threshold", "3", "--store", store), 2, "ranking model")
    assert_fails(kt("train", "--model", "dcn", "--method", "kar", "--user-knowledge", "u384",
                    "--method-set", "experts=3", "--store", store), 2, "shared_experts")
    assert_fails(kt("train", "--model", "dcn", "--method", "kar", "--user-knowledge", "u384", "--item-knowledge",
                    "i16", *SHORT, "--name", "dcn-mixed", "--store", store), 1, "same width", "user 384", "item 16")
    assert_fails(kt("train", "--model", "dcn", "--method", "magic", "--store", store), 1, "Unknown method 'magic'",
                 ", ".join(sorted(METHODS)))
    assert_fails(kt("eval", "dcn-base", "--mode", "uni100", "--store", store), 2, "CTR run", "Drop --mode")
    assert_fails(kt("compare", "dcn-base", "bpr", "--store", store), 2, "'dcn-base' is a ctr run",
                 "'bpr' is a ranking run")
    assert_fails(kt("compare", "dcn-base", "dcn-kar", "--metrics", "ndcg", "--store", store), 2,
                 "auc, gauc, logloss")
    assert_fails(kt("compare", "dcn-base", "dcn-kar", "--test", "ttest", "--store", store), 2,
                 "bootstrap over users", "--test ttest does not apply")
    assert_fails(kt("compare", "dcn-base", "dcn-kar", "--mode", "uni100", "--store", store), 2, "--mode does not apply")
    assert_fails(kt("train", "--model", "dcn", "--label-threshold", "6", *SHORT, "--store", store), 2,
                 "labels every train and valid and test sample alike", "inside the rating range")
    assert_fails(kt("train", "--model", "dcn", "--method", "kar", "--user-knowledge", "u384",
                    "--method-set", "dropout=1.5", "--store", store), 2, "at most 0.9")
    assert_fails(kt("train", "--model", "dcn", "--method", "none", "--knowledge", "u32", "--store", store), 2,
                 "Use --method llmkt")


@pytest.mark.parametrize("model", ["widedeep", "xdeepfm", "autoint"])
def test_other_context_models_train_with_and_without_kar(store: Path, model: str) -> None:
    base = ok_json(kt("train", "--model", model, "--distill-epochs", "1", "--finetune-epochs", "0",
                      "--name", f"{model}-base", "--store", store, "--json"))
    kar = ok_json(kt("train", "--model", model, "--method", "kar", "--user-knowledge", "u384", "--item-knowledge",
                     "i384", "--method-set", "dedicated_experts=2", "--distill-epochs", "1", "--finetune-epochs", "0",
                     "--name", f"{model}-kar", "--store", store, "--json"))
    assert base["task"] == kar["task"] == "ctr" and 0.5 < base["best_valid"] < 1 and 0.5 < kar["best_valid"] < 1
    assert kar["adaptor_parameters"] < 754_620  # 2 shared + 2 x 2 dedicated experts instead of 2 + 2 x 6


def test_list_settings_shows_method_options_without_knowledge(store: Path) -> None:
    shown = ok_json(kt("train", "--model", "dcn", "--method", "kar", "--list-settings", "--store", store, "--json"))
    assert shown["method_options"]["shared_experts"]["default"] == 2
    assert "LABEL_FIELD" in shown["managed_by_kt"] and "LABEL_FIELD" not in shown["settings"]


def test_kar_scores_without_dropout_and_refuses_a_set_stored_again(store: Path, tmp_path: Path) -> None:
    items = [str(i) for i in range(1, 1683) if i % 5]
    vectors = tmp_path / "again.npz"
    ok_json(kt("embed", "--from-file", write_vectors(vectors, items, random_vectors(len(items), 384)), "--name",
               "i384b", "--entity", "item", "--store", store, "--json"))
    made = ok_json(kt("train", "--model", "dcn", "--method", "KAR", "--user-knowledge", "u384", "--item-knowledge",
                      "i384b", "--method-set", "dropout=0.5", "--method-set", "shared_experts=2", *SHORT,
                      "--name", "dcn-kar-drop", "--store", store, "--json"))
    assert made["method"] == "kar"
    with Store.open(store) as db:
        config = db.run("dcn-kar-drop").config
    assert config["method_options"] == {"dropout": 0.5}  # a default spelled out is left out of the config
    session = _session(store, "dcn-kar-drop")
    session.train_mode(True)  # scoring switches the adaptor's dropout off even from training mode
    first, second = session.task.score(session, 1)[3], session.task.score(session, 1)[3]
    assert np.array_equal(first, second)
    ok_json(kt("embed", "--from-file", write_vectors(vectors, items, random_vectors(len(items), 384) + 1), "--name",
               "i384b", "--entity", "item", "--store", store, "--json"))
    assert_fails(kt("eval", "dcn-kar-drop", "--store", store), 2, "i384b were stored again", "--force")
