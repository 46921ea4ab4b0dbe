"""Real RecBole training on ml-100k: hook alignment, masking, schedule, reproducibility, resume."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kt_cli.errors import Interrupted, TrainingError, UsageError
from kt_cli.knowledge.sets import import_vectors
from kt_cli.store import Store
from kt_cli.training import trainer as trainer_module
from kt_cli.training.config import TrainConfig
from kt_cli.training.session import Session, read_inputs
from kt_cli.training.transfer import KnowledgeTargets, align_rows
from kt_cli.training.trainer import train

FAST = {"distill_epochs": 2, "finetune_epochs": 2, "patience": 5}


def _vectors(tmp_path: Path, dim: int = 64, users: range = range(1, 944), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path = tmp_path / f"vectors-{dim}-{len(users)}.npz"
    np.savez(path, ids=np.array(list(users)), embeddings=rng.normal(size=(len(users), dim)).astype("float32"))
    return path


def _session(store_path: Path, tmp_path: Path, config: TrainConfig, *, users: range = range(1, 944)) -> Session:
    with Store.open(store_path) as store:
        import_vectors(store, config.dataset, _vectors(tmp_path, users=users), "vec")
        inputs = read_inputs(store, config)
    session = Session(config, inputs, tmp_path / "run")
    session.attach_knowledge()
    return session


def test_align_rows_accepts_one_row_per_record_or_repeated_records() -> None:
    ids = torch.tensor([5, 6, 7])
    assert align_rows(3, ids, "x").tolist() == [5, 6, 7]
    assert align_rows(3, ids.repeat(4), "x").tolist() == [5, 6, 7]
    with pytest.raises(TrainingError, match="cannot be matched"):
        align_rows(2, ids, "x")
    with pytest.raises(TrainingError):
        align_rows(3, torch.tensor([5, 6, 7, 7, 6, 5]), "x")  # not a repetition of the first block


# Each case hooks a layer whose rows are a known function of the user, on a real RecBole batch,
# then checks every row against the user the alignment assigned to it. Misaligned rows fail.
@pytest.mark.parametrize(
    ("model", "layer", "overrides"),
    [
        ("neumf", "user_mlp_embedding:output", {}),
        ("simplex", "user_emb:output", {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 3}}),
        ("multvae", "encoder:input", {}),
    ],
)
def test_hooked_rows_belong_to_the_aligned_users(store_path, tmp_path, model, layer, overrides) -> None:
    config = TrainConfig(model=model, knowledge="vec", inject_layer=layer, recbole=overrides,
                         project="linear", **FAST)
    session = _session(store_path, tmp_path, config)
    batch = next(iter(session.parts.train_data))
    with torch.no_grad():
        _, hidden, ids = session.method.hooked_rows(batch)
    assert len(ids) == hidden.shape[0] > 0
    if model == "multvae":  # input rows are the users' (dropped-out) training histories
        history = session.model.get_rating_matrix(ids) > 0
        assert bool(((hidden != 0) <= history).all())
        real = ids > 0  # RecBole's padding user 0 has no history (and never a vector)
        assert bool(((hidden[real] != 0).sum(1) > 0).all())
    else:
        module = dict(session.model.named_modules())[layer.split(":")[0]]
        assert torch.equal(hidden, module.weight[ids])
    if model == "simplex":  # RecBole repeated each user 3 times; the hook saw each once
        assert len(batch[session.parts.user_field]) == 3 * hidden.shape[0]


@pytest.mark.parametrize(("model", "width"), [("neumf", 64), ("simplex", 64), ("multvae", 64)])
def test_default_layers_match_the_reference_widths(store_path, tmp_path, model, width) -> None:
    session = _session(store_path, tmp_path, TrainConfig(model=model, knowledge="vec", **FAST))
    assert session.method.dry_hidden().shape[1] == width


def test_users_without_vectors_are_masked_and_counted(store_path, tmp_path) -> None:
    config = TrainConfig(model="neumf", knowledge="vec", **FAST)
    session = _session(store_path, tmp_path, config, users=range(1, 944, 2))  # odd user ids only
    batch = next(iter(session.parts.train_data))
    _, _, ids = session.method.hooked_rows(batch)
    external = session.parts.external_ids("user")[ids.numpy()].astype(int)
    _, recon, used, masked = session.batch_loss(batch)
    assert recon is not None and torch.isfinite(recon)
    assert used == int((external % 2 == 1).sum()) and masked == int((external % 2 == 0).sum())
    assert session.method.coverage["users_without_vector"] == 943 - 472


def test_width_mismatch_is_a_clear_error(store_path, tmp_path) -> None:
    with Store.open(store_path) as store:
        import_vectors(store, "ml-100k", _vectors(tmp_path, dim=384), "wide")
        inputs = read_inputs(store, TrainConfig(knowledge="wide"))
    session = Session(TrainConfig(knowledge="wide"), inputs, tmp_path / "run")
    with pytest.raises(TrainingError, match="kt reduce --dim 64"):
        session.attach_knowledge()


def test_two_phase_schedule_removes_the_hook_and_logs_both_losses(store_path, tmp_path) -> None:
    with Store.open(store_path) as store:
        import_vectors(store, "ml-100k", _vectors(tmp_path), "vec")
    config = TrainConfig(model="multvae", knowledge="vec", distill_epochs=3, finetune_epochs=2, patience=10)
    result = train(store_path, config, "kt-run")
    with Store.open(store_path) as store:
        epochs = store.epochs("kt-run")
        run = store.run("kt-run")
    assert epochs["phase"].tolist() == ["distill"] * 3 + ["finetune"] * 2
    assert epochs.loc[epochs.phase == "distill", "recon_loss"].notna().all()
    assert epochs.loc[epochs.phase == "finetune", "recon_loss"].isna().all()
    assert (epochs.loc[epochs.phase == "distill", "aligned_rows"] == 943).all()
    assert run.status == "finished" and result.summary["layer"] == "decoder:input"
    assert result.summary["best_valid"] == pytest.approx(
        epochs.loc[epochs.phase == "finetune", "valid_metric"].max())
    assert (run_dir_path := next((store_path.parent / "kt.artifacts" / "runs").iterdir())).joinpath("model.pt").is_file()
    assert not run_dir_path.joinpath("checkpoint.pt").exists()


def test_early_stopping_ends_a_phase_after_patience(store_path) -> None:
    # A huge learning rate makes validation stop improving at once; patience 1 ends each phase.
    config = TrainConfig(model="multvae", distill_epochs=30, finetune_epochs=30, patience=1,
                         recbole={"learning_rate": 5.0})
    train(store_path, config, "stops")
    with Store.open(store_path) as store:
        epochs = store.epochs("stops")
    assert len(epochs) < 60
    assert set(epochs["phase"]) == {"train", "finetune"}


def test_same_seed_same_numbers_and_rerun_is_cached(tmp_path) -> None:
    config = TrainConfig(model="multvae", **FAST)
    logs = []
    for folder in ("a", "b"):
        path = tmp_path / folder / "kt.duckdb"
        train(path, config, "r")
        with Store.open(path) as store:
            logs.append(store.epochs("r").drop(columns="seconds"))
    assert logs[0].equals(logs[1])
    assert train(tmp_path / "a" / "kt.duckdb", config, "r").status == "cached"
    other = tmp_path / "c" / "kt.duckdb"
    train(other, TrainConfig(model="multvae", seed=7, **FAST), "r")
    with Store.open(other) as store:
        assert not store.epochs("r").drop(columns="seconds").equals(logs[0])


def test_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(trainer_module, "CHECKPOINT_SECONDS", 0.0)
    config = TrainConfig(model="multvae", distill_epochs=4, finetune_epochs=3, patience=10)
    reference = tmp_path / "ref" / "kt.duckdb"
    train(reference, config, "r")

    path = tmp_path / "cut" / "kt.duckdb"

    def stop_in_finetune(record) -> None:
        if record.phase == "finetune" and record.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="rerun"):
        train(path, config, "r", on_epoch=stop_in_finetune)
    with Store.open(path) as store:
        assert store.run("r").status == "interrupted"
        assert len(store.epochs("r")) == 5  # 4 distill + finetune epoch 0 were checkpointed
    assert train(path, config, "r").status == "resumed"
    with Store.open(path) as store, Store.open(reference) as ref:
        resumed, whole = store.epochs("r"), ref.epochs("r")
        assert store.run("r").status == "finished"
        weights = torch.load(store.run_folder("r") / "model.pt", weights_only=True)["model"]
        expected = torch.load(ref.run_folder("r") / "model.pt", weights_only=True)["model"]
    cols = ["phase", "epoch", "model_loss", "valid_metric"]
    assert resumed[cols].equals(whole[cols])
    assert all(torch.equal(weights[k], expected[k]) for k in expected)


@pytest.mark.parametrize("model", ["bpr", "lightgcn"])
def test_other_registered_models_train_with_knowledge(store_path, tmp_path, model) -> None:
    with Store.open(store_path) as store:
        import_vectors(store, "ml-100k", _vectors(tmp_path), "vec")
    result = train(store_path, TrainConfig(model=model, knowledge="vec", distill_epochs=1,
                                           finetune_epochs=1), "r")
    assert result.summary["coverage"]["matched"] == 943
    assert 0 < result.summary["best_valid"] < 1


def test_kt_flags_on_the_command_line_do_not_reach_recbole(store_path, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["kt", "train", "--epochs=999", "--learning_rate=9", "--seed=5"])
    session = _session(store_path, tmp_path, TrainConfig(model="multvae", knowledge="vec", **FAST))
    assert session.parts.config["learning_rate"] == 0.001
    assert session.parts.config["seed"] == 42
    assert sys.argv[2] == "--epochs=999"  # restored


def test_resume_across_a_phase_boundary_keeps_the_distilled_weights(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(trainer_module, "CHECKPOINT_SECONDS", 1e9)  # only the phase-end checkpoint
    config = TrainConfig(model="multvae", distill_epochs=2, finetune_epochs=2, patience=10)
    reference = tmp_path / "ref" / "kt.duckdb"
    train(reference, config, "r")
    path = tmp_path / "cut" / "kt.duckdb"

    def stop(record) -> None:
        if record.phase == "finetune":
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        train(path, config, "r", on_epoch=stop)
    assert train(path, config, "r").status == "resumed"
    with Store.open(path) as store, Store.open(reference) as ref:
        cols = ["phase", "epoch", "valid_metric"]
        assert store.epochs("r")[cols].equals(ref.epochs("r")[cols])


@pytest.mark.parametrize("model", ["multvae", "neumf"])
def test_knowledge_at_alpha_zero_trains_exactly_the_baseline(store_path, tmp_path, model) -> None:
    """The hook's set-up (dry batch, projection head) draws no random numbers that training would, so
    a run with knowledge sees the baseline's batches and negatives: the pairing in kt compare is clean."""
    with Store.open(store_path) as store:
        import_vectors(store, "ml-100k", _vectors(tmp_path), "vec")
    train(store_path, TrainConfig(model=model, **FAST), "base")
    train(store_path, TrainConfig(model=model, knowledge="vec", alpha=0.0, project="linear", **FAST), "zero")
    with Store.open(store_path) as store:
        base, zero = (store.epochs(r).drop(columns=["seconds", "phase", "recon_loss", "aligned_rows",
                                                    "masked_rows"]) for r in ("base", "zero"))
    assert base.equals(zero)


def test_rescaled_targets_are_centred_at_the_given_norm_and_keep_the_mask() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(loc=5.0, scale=3.0, size=(6, 4)).astype("float32")  # UMAP-like: offset, large
    targets = KnowledgeTargets.build(np.array([1, 2, 3, 5, 6, -1]), vectors, 8, torch.device("cpu"))
    scaled = targets.rescaled(0.4)
    rows = scaled.vectors[scaled.present]
    assert torch.equal(scaled.present, targets.present) and len(rows) == 5  # the unknown id stays out
    assert torch.allclose(rows.mean(dim=0), torch.zeros(4), atol=1e-6)
    assert abs(float(rows.norm(dim=1).mean()) - 0.4) < 1e-5
    assert not scaled.vectors[~scaled.present].any()
    # same directions relative to the centre: the scaling is one positive factor
    centred = targets.vectors[targets.present] - targets.vectors[targets.present].mean(dim=0)
    assert torch.allclose(torch.nn.functional.cosine_similarity(rows, centred, dim=1), torch.ones(5), atol=1e-5)


def test_target_scale_layer_matches_the_hooked_layer_at_initialisation(store_path, tmp_path) -> None:
    config = TrainConfig(model="multvae", knowledge="vec", target_scale="layer", **FAST)
    session = _session(store_path, tmp_path, config)
    hidden_norm = float(session.method.dry_hidden().norm(dim=1).mean())
    target_norm = float(session.method.targets.vectors[session.method.targets.present].norm(dim=1).mean())
    assert abs(target_norm / hidden_norm - 1) < 0.2  # one batch against all users: close, not equal
    with pytest.raises(UsageError, match="--target-scale must be one of none, layer"):
        TrainConfig(target_scale="unit")
