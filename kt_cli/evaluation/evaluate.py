"""``kt eval``: score a trained run on its held-out split and store every user's metrics.

Results are keyed by (run, settings): evaluating again with the same settings reuses the stored
numbers. Aggregates are stored for all users and for the sparse slice (users with fewer than
``sparse_below`` training interactions), the users LLM knowledge is meant to help most.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from kt_cli.errors import MissingInputError, UsageError
from kt_cli.evaluation.settings import EvalSettings
from kt_cli.store import RunRow, Store
from kt_cli.training.config import TrainConfig, knowledge_stamps
from kt_cli.training.session import Session, read_inputs


@dataclass(frozen=True)
class EvalResult:
    run: str
    eval_id: str
    cached: bool
    metrics: pd.DataFrame  # slice, metric, k, value, n_users
    seconds: float
    task: str = "ranking"


def evaluate_run(store_path: Path, run: str, settings: EvalSettings = EvalSettings(), *,
                 threads: int = 1, force: bool = False) -> EvalResult:
    """Evaluate a finished run (or return the stored evaluation with the same settings)."""
    with Store.open(store_path, create=False) as store:
        row, config = finished_run(store, run, "evaluate")
        task = config.task_spec.key
        key = settings.key(task)
        if not config.task_spec.sampled_modes and settings.mode != "full":
            kind, scored = (("CTR", "it is scored by AUC, LogLoss and GAUC on its labelled samples") if task == "ctr"
                            else (task, "each sample's next item is ranked among all items, as RecBole evaluates "
                                        "sequential models"))
            raise UsageError(f"Run '{run}' is a {kind} run ({config.model}): {scored}, so --mode {settings.mode} "
                             "(sampled ranking) does not apply. Drop --mode.")
        eval_id = store.evaluation_id(run, key)
        if eval_id and not force:
            return EvalResult(run, eval_id, True, store.eval_metrics(eval_id), 0.0, task)
    started = time.perf_counter()
    torch.set_num_threads(threads)
    session = trained_session(store_path, run)
    tables = session.task.evaluate(session, settings)
    seconds = time.perf_counter() - started
    eval_id = "e" + hashlib.sha256(f"{run}|{json.dumps(key, sort_keys=True)}".encode()).hexdigest()[:11]
    with Store.open(store_path) as store:
        store.save_evaluation(eval_id, run, key, tables.per_user, tables.aggregates, seconds, tables.samples)
        metrics = store.eval_metrics(eval_id)
    return EvalResult(run, eval_id, False, metrics, seconds, task)


def finished_run(store: Store, run: str, purpose: str) -> tuple[RunRow, TrainConfig]:
    """The run's row and config, if it exists and finished training; otherwise an error saying what to do."""
    row = store.run(run)
    if row is None:
        raise MissingInputError(f"There is no run named '{run}'. Runs: {', '.join(store.run_names()) or 'none'}.",
                                "kt train ... --name " + run)
    if row.status == "failed":
        raise MissingInputError(
            f"Run '{run}' failed during training ({row.error}), so it has no weights to {purpose}. Fix the "
            "cause and train it again under the same name (a failed run is replaced).",
            f"kt train ... --name {run}",
        )
    if row.status != "finished":
        raise UsageError(
            f"Run '{run}' has not finished training (status: {row.status}), so it has no final weights yet. "
            f"Finish it by running the same kt train command again (it resumes from its checkpoint); kt show "
            f"{run} shows how far it got.")
    return row, TrainConfig.from_dict(row.config)


def trained_session(store_path: Path, run: str) -> Session:
    """A finished run's session with its final weights loaded (and its method's, for methods that feed the model
    at inference), on exactly the split and id mapping it was trained on."""
    with Store.open(store_path, create=False) as store:
        row, config = finished_run(store, run, "use")
        inputs = read_inputs(store, config, with_knowledge=config.method_spec.at_inference)
        if inputs.split_id != row.split_id:
            raise UsageError(
                f"Dataset {config.dataset} has changed since run '{run}' was trained (its split "
                f"{row.split_id} no longer exists), so its users and items cannot be recovered. Retrain it "
                "with kt train ... --force."
            )
        if config.method_spec.at_inference:  # the method reads the sets again: they must be the ones it trained on
            changed = [name for name, stamp in knowledge_stamps(store, config).items()
                       if stamp != row.summary.get("knowledge_created", {}).get(name, stamp)]
            if changed:
                raise UsageError(
                    f"Knowledge set(s) {', '.join(changed)} were stored again after run '{run}' was trained, and "
                    f"{config.method_spec.key} reads them when it scores, so the run cannot be used as trained. "
                    f"Retrain it (kt train ... --name {run} --force), or train a new run.")
        folder = store.run_folder(run)
    session = Session(config, inputs, folder)
    weights = torch.load(folder / "model.pt", map_location=session.parts.device, weights_only=True)
    if config.method_spec.at_inference:  # first, as the method may add to the model (LEARN's input projection)
        session.attach_knowledge()
        session.method.load_state_dict(weights.get("method"))
    session.model.load_state_dict(weights["model"])
    session.train_mode(False)
    return session
