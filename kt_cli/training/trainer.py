"""Training a run: the two-phase LLM-KT schedule, early stopping, checkpoints and resume.

Phase one (``distill``) trains on ``(1 - alpha) * model_loss + alpha * recon``; phase two
(``finetune``) removes the hook and continues on the model's own loss with a fresh optimizer. A run
without knowledge is the baseline and goes through the very same code with the reconstruction term
absent (its first phase is called ``train``), so the two differ only in the knowledge.

Each phase keeps the weights of its best validation epoch and stops after ``patience`` epochs
without improvement. The state is checkpointed every few seconds together with the epoch log, so a
run that is interrupted or killed resumes from its last checkpoint when the same command is rerun.
"""

from __future__ import annotations

import copy
import math
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kt_cli import __version__
from kt_cli.errors import Interrupted, UsageError
from kt_cli.store import RunRow, Store, _now
from kt_cli.training import lease
from kt_cli.training.config import TrainConfig, check_run_name, default_run_name, knowledge_stamps
from kt_cli.training.session import Session, load_teacher, read_inputs

CHECKPOINT_SECONDS = 5.0


@dataclass(frozen=True)
class EpochRecord:
    """One epoch's log line."""

    phase: str
    epoch: int
    model_loss: float
    recon_loss: float | None
    valid_metric: float  # NaN on epochs without validation (--eval-every)
    aligned_rows: int
    masked_rows: int
    seconds: float
    best: bool


@dataclass(frozen=True)
class TrainResult:
    name: str
    status: str  # "trained", "resumed" or "cached"
    summary: dict[str, Any]


def run_digest(store: Store, config: TrainConfig) -> str:
    """The config's hash, plus its knowledge sets' creation times, so a run on a re-imported set is not reused
    (with one set, the same digest as before KAR existed)."""
    stamp = "|".join(knowledge_stamps(store, config).values())
    return hashlib.sha256(f"{config.digest()}|{stamp}".encode()).hexdigest()[:16]


def is_stale(store_path: Path, config: TrainConfig, name: str) -> bool:
    """Whether run ``name`` exists but was trained on other inputs than ``config`` reads now (another config,
    or a knowledge set stored again since, e.g. from newer shipped profiles)."""
    with Store.open(store_path) as store:
        existing = store.run(name)
        return existing is not None and existing.config_hash != run_digest(store, config.checked())


def library_versions() -> dict[str, str]:
    import duckdb
    import recbole

    return {"kt": __version__, "torch": torch.__version__, "recbole": recbole.__version__,
            "numpy": np.__version__, "duckdb": duckdb.__version__}


def build_optimizer(params: list[torch.nn.Parameter], recbole_config: Any) -> torch.optim.Optimizer:
    """RecBole's optimizer choice (``learner``, ``learning_rate``, ``weight_decay``), built fresh."""
    learner = str(recbole_config["learner"]).lower()
    lr, decay = recbole_config["learning_rate"], recbole_config["weight_decay"] or 0.0
    choices = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad,
               "rmsprop": torch.optim.RMSprop}
    if learner not in choices:
        raise UsageError(f"learner '{learner}' is not supported; use one of {', '.join(choices)}.")
    return choices[learner](params, lr=lr, weight_decay=decay)


class _Checkpoint:
    """Atomic save/load of the full training state plus the epoch log."""

    def __init__(self, path: Path, config_hash: str) -> None:
        self.path, self.config_hash = path, config_hash

    def load(self) -> dict[str, Any] | None:
        if not self.path.is_file():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=False)  # kt's own file
        return state if state.get("config_hash") == self.config_hash else None

    def save(self, state: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        torch.save({**state, "config_hash": self.config_hash}, tmp)
        os.replace(tmp, self.path)


def check_device(device: str) -> None:
    """Refuse a CUDA device this machine does not have, instead of training on the CPU under its name."""
    if device == "cpu":
        return
    index = int(device.partition(":")[2] or 0)
    if not torch.cuda.is_available():
        raise UsageError(f"--device {device} was asked for, but torch sees no CUDA device on this machine "
                         f"(torch {torch.__version__}, a CPU build or no driver). Use --device cpu.")
    if index >= torch.cuda.device_count():
        raise UsageError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         f"numbered from 0. Use --device cuda:0.")


def train(
    store_path: Path,
    config: TrainConfig,
    name: str | None = None,
    *,
    threads: int = 1,
    force: bool = False,
    allow_unknown_settings: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train (or resume, or reuse) the run ``name`` for ``config``; returns its summary.

    A run that failed or was interrupted may be retrained under its name with a different configuration
    (it is replaced); a finished one needs ``force``. A run another live process is training is refused.
    """
    config = config.checked(allow_unknown_settings=allow_unknown_settings)
    check_device(config.device)
    name = check_run_name(name) if name is not None else default_run_name(config)
    teacher = load_teacher(store_path, config)
    with Store.open(store_path) as store:
        digest = run_digest(store, config)
        existing = store.run(name)
        holder = store.owner(name) if existing else None
        if existing and existing.status == "running" and lease.alive(holder):
            raise UsageError(f"Run '{name}' is being trained right now by {lease.describe(holder)}. Wait for "
                             "it to finish (kt runs shows its status), or train under another --name.")
        unfinished = existing is not None and (existing.status in ("failed", "interrupted")
                                               or existing.status == "running")  # its holder is dead (checked above)
        replace_run = force or (unfinished and existing.config_hash != digest)
        if existing and not replace_run:
            if existing.config_hash != digest:
                raise UsageError(
                    f"A run named '{name}' already exists with a different configuration "
                    f"(model {existing.model}, knowledge {existing.knowledge or 'none'}, status {existing.status}). "
                    "Choose another --name, or pass --force to retrain it."
                )
            if existing.status == "finished":
                return TrainResult(name, "cached", existing.summary)
        folder = store.run_folder(name)
        inputs = replace(read_inputs(store, config), teacher=teacher)
        stamps = knowledge_stamps(store, config)
        if existing and replace_run:
            store.delete_run(name)
        store.start_run(RunRow(
            name=name, dataset=config.dataset, split_id=inputs.split_id, model=config.model,
            knowledge=config.knowledge, config=config.to_dict(), config_hash=digest, seed=config.seed,
            status="running", created_at=existing.created_at if existing and not replace_run else _now(),
            finished_at=None, summary={}, versions=library_versions(), error=None,
        ))
        store.set_owner(name, lease.mine())
    folder.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    try:
        summary, resumed = _fit(store_path, name, config, inputs, folder, digest, on_epoch)
        summary["knowledge_created"] = stamps
    except KeyboardInterrupt as e:
        with Store.open(store_path) as store:
            store.finish_run(name, "interrupted", {}, error="interrupted")
        raise Interrupted(
            f"Training of '{name}' was interrupted. Its last checkpoint and epoch log are kept; rerun the "
            "same kt train command to continue from there."
        ) from e
    except BaseException as e:
        with Store.open(store_path) as store:
            store.finish_run(name, "failed", {}, error=f"{type(e).__name__}: {e}")
        raise
    with Store.open(store_path) as store:
        store.finish_run(name, "finished", summary)
    return TrainResult(name, "resumed" if resumed else "trained", summary)


def train_epoch(session: Session, optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """One pass over the training data; returns the sums the epoch log averages.

    The method combines the model's loss with its own term (LLM-KT while its hook is attached:
    ``(1 - alpha) * model_loss + alpha * recon``); the baseline and the fine-tune phase run the very same
    loop on the model's loss alone. Public so bench/hook_overhead.py times exactly what training runs.
    """
    session.train_mode(True)
    clip = session.parts.config["clip_grad_norm"]
    totals = {"model": 0.0, "recon": 0.0, "batches": 0, "recon_batches": 0, "aligned": 0, "masked": 0}
    for batch in session.method.batches():
        batch = batch.to(session.parts.device)
        optimizer.zero_grad()
        model_loss, extra_loss, aligned, masked = session.batch_loss(batch)
        loss = session.method.loss(model_loss, extra_loss)
        if extra_loss is not None:
            totals["recon"] += float(extra_loss.detach())
            totals["recon_batches"] += 1
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(session.trainable(), **clip)
        optimizer.step()
        totals["model"] += float(model_loss.detach())
        totals["batches"] += 1
        totals["aligned"] += aligned
        totals["masked"] += masked
    return totals


def _fit(
    store_path: Path, name: str, config: TrainConfig, inputs: Any, folder: Path, digest: str,
    on_epoch: Callable[[EpochRecord], None] | None,
) -> tuple[dict[str, Any], bool]:
    started = time.perf_counter()
    session = Session(config, inputs, folder)
    session.attach_knowledge()
    method = session.method
    validate = session.task.validator(session, config.valid_metric)
    sign = -1.0 if config.valid_metric in config.task_spec.lower_is_better else 1.0  # early stopping maximises
    model = session.model

    phases = [(method.first_phase, config.distill_epochs), ("finetune", config.finetune_epochs)]
    every = config.eval_every or 1
    checkpoint = _Checkpoint(folder / "checkpoint.pt", digest)
    state = checkpoint.load()
    resumed = state is not None
    log: list[dict[str, Any]] = state["log"] if state else []
    phase_results: list[dict[str, Any]] = state["phase_results"] if state else []
    if state:  # weights as of the checkpoint: mid-phase, or the best of the last finished phase
        model.load_state_dict(state["model"])
        method.load_state_dict(state.get("method", state.get("recon")))  # "recon": checkpoints before methods
        session.restore_rng(state["rng"])

    def flush(position: dict[str, Any]) -> None:
        checkpoint.save({**position, "log": log, "phase_results": phase_results})
        with Store.open(store_path) as store:
            store.replace_epochs(name, log)
            store.set_owner(name, lease.mine())  # the heartbeat other processes read

    for phase_index, (phase, max_epochs) in enumerate(phases):
        if max_epochs == 0 or (state and phase_index < state["phase"]):
            continue
        method.start_phase(phase)
        optimizer = build_optimizer(session.trainable(), session.parts.config)
        best = {"score": -np.inf * sign, "epoch": -1, "model": copy.deepcopy(model.state_dict()),
                "method": copy.deepcopy(method.state_dict())}
        start_epoch, bad = 0, 0
        if state and state["phase"] == phase_index and state["epoch"] >= 0:
            optimizer.load_state_dict(state["optimizer"])
            best, start_epoch, bad = state["best"], state["epoch"] + 1, state["bad"]
        state = None
        last_flush = time.perf_counter()
        epoch = start_epoch - 1
        for epoch in range(start_epoch, max_epochs):
            tick = time.perf_counter()
            totals = train_epoch(session, optimizer)
            seconds = time.perf_counter() - tick
            validated = (epoch + 1) % every == 0 or epoch == max_epochs - 1
            score = validate() if validated else math.nan
            improved = validated and sign * score > sign * best["score"]
            if improved:
                best = {"score": score, "epoch": epoch, "model": copy.deepcopy(model.state_dict()),
                        "method": copy.deepcopy(method.state_dict())}
                bad = 0
            elif validated:  # patience counts validations
                bad += 1
            record = EpochRecord(
                phase, epoch, totals["model"] / max(totals["batches"], 1),
                totals["recon"] / totals["recon_batches"] if totals["recon_batches"] else None,
                score, totals["aligned"], totals["masked"], seconds, improved,
            )
            log.append(asdict(record))
            if on_epoch:
                on_epoch(record)
            stop = bad >= config.patience
            if time.perf_counter() - last_flush > CHECKPOINT_SECONDS and not stop:
                flush({"phase": phase_index, "epoch": epoch, "model": model.state_dict(),
                       "method": method.state_dict(),
                       "optimizer": optimizer.state_dict(), "best": best, "bad": bad,
                       "rng": session.rng_state()})
                last_flush = time.perf_counter()
            if stop:
                break
        model.load_state_dict(best["model"])
        method.load_state_dict(best.get("method", best.get("recon")))
        phase_results.append({"phase": phase, "best_valid": best["score"], "best_epoch": best["epoch"],
                              "epochs": epoch + 1})
        flush({"phase": phase_index + 1, "epoch": -1, "model": model.state_dict(),
               "method": method.state_dict(), "rng": session.rng_state()})

    torch.save({"model": model.state_dict(), "method": method.state_dict()}, folder / "model.pt")
    checkpoint.path.unlink(missing_ok=True)
    epoch_seconds = {p: [r["seconds"] for r in log if r["phase"] == p] for p, _ in phases}
    summary = {
        "valid_metric": config.valid_metric,
        "best_valid": phase_results[-1]["best_valid"],
        "phases": phase_results,
        "task": config.task_spec.key,
        "method": config.method_spec.key,
        "layer": None,
        "coverage": {},
        **method.summary(),
        **({"data": session.inputs.data} if session.inputs.data else {}),
        "seconds_per_epoch": {p: float(np.mean(s)) for p, s in epoch_seconds.items() if s},
        "seconds": time.perf_counter() - started,
    }
    return summary, resumed
