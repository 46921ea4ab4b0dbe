"""Sweeps: every configuration of a grid file x seeds, trained as Ray tasks; only this process writes the store.

A grid file (YAML) names a run prefix, the ``kt train`` settings shared by every run, lists of values to cross,
and seeds::

    name: mv                      # runs mv-<label>-s<seed>, e.g. mv-alpha=0.1-knowledge=llm-pca64-s3
    train:                        # kt train's flags, with - or _ (set: RecBole settings; method-set: the method's)
      model: multvae
      distill-epochs: 20
    grid:                         # every combination; set.KEY / method-set.KEY cross one setting
      knowledge: [null, llm-pca64]
      set.learning_rate: [0.001, 0.005]
    seeds: 1-5                    # or a list: [1, 2, 3]

DuckDB has one writer per file, and a cluster's workers do not share a disk, so a task never touches the store:
the driver checks every configuration and computes its split first, then sends a snapshot of the store file
(and of the runs a teacher or partner reads) to each task, which trains in a private copy and returns the run's
row, epoch log and files. The driver stores each result in one transaction as it arrives, so a task that dies
leaves nothing behind: Ray retries it (``retries``), and one that still fails is reported. Finished runs with the
same configuration are skipped, so a rerun of an interrupted sweep trains only what is missing.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kt_cli.datasets.splits import ensure_split
from kt_cli.errors import DataFormatError, KtError, TrainingError, UsageError
from kt_cli.store import RunRow, Store
from kt_cli.training.config import TrainConfig, check_inputs, check_run_name, parse_seeds

SECTIONS = ("name", "train", "grid", "seeds")
RENAMED = {"set": "recbole", "method_set": "method_options"}  # kt train's flag -> TrainConfig's field
NESTED = {"recbole", "method_options"}


@dataclass(frozen=True)
class SweepRun:
    """One run of the sweep: its name and checked configuration."""

    name: str
    config: TrainConfig


@dataclass
class SweepReport:
    """What a sweep did: runs trained now, skipped as already finished, and failed (with the reason)."""

    runs: list[str]
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _field(key: str, where: str) -> tuple[str, str | None]:
    """A grid key as (TrainConfig field, nested key or None): ``set.learning_rate`` -> (recbole, learning_rate)."""
    head, dot, sub = key.partition(".")
    head = head.replace("-", "_")
    name = RENAMED.get(head, head)
    valid = sorted(set(TrainConfig.__dataclass_fields__) - {"recbole", "method_options"} | {"set", "method_set"})
    if name not in TrainConfig.__dataclass_fields__ or (dot and name not in NESTED) or (name in NESTED and
                                                                                      not dot and where == "grid"):
        raise UsageError(f"Unknown key '{key}' in the grid file's {where}. Keys are kt train's settings: "
                         f"{', '.join(valid)}; set.KEY and method-set.KEY for one RecBole or method setting.")
    return name, sub if dot else None


def _apply(values: dict[str, Any], key: str, value: Any, where: str) -> None:
    name, sub = _field(key, where)
    if sub is None and name in NESTED and not isinstance(value, dict):
        raise UsageError(f"'{key}' in the grid file's {where} takes a mapping, e.g. {key}: {{learning_rate: 0.001}}.")
    if sub is None:
        values[name] = dict(value) if name in NESTED else value
    else:
        values.setdefault(name, {})[sub] = value


def _label(value: Any) -> str:
    return "none" if value is None else str(value)


def read_grid(path: Path) -> list[SweepRun]:
    """The runs a grid file asks for, each configuration checked (unknown keys and bad values refused here)."""
    import yaml

    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise DataFormatError(f"Cannot read grid file {path}: {e.strerror}.") from e
    except yaml.YAMLError as e:
        raise DataFormatError(f"Grid file {path} is not valid YAML ({e}).") from e
    if not isinstance(spec, dict) or set(spec) - set(SECTIONS) or "name" not in spec:
        raise DataFormatError(f"Grid file {path} must be a mapping with 'name' and optionally 'train', 'grid' and "
                              f"'seeds' (found: {', '.join(map(str, spec)) if isinstance(spec, dict) else spec!r}).")
    prefix = check_run_name(str(spec["name"]))
    base: dict[str, Any] = {}
    for key, value in (spec.get("train") or {}).items():
        _apply(base, str(key), value, "train")
    grid = spec.get("grid") or {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise DataFormatError(f"Grid file {path}: grid key '{key}' must list one or more values, e.g. "
                                  f"{key}: [0.1, 0.5].")
    seeds = parse_seeds(str(spec.get("seeds", 42))) if not isinstance(spec.get("seeds"), list) else \
        [int(s) for s in spec["seeds"]]
    runs = []
    for combination in itertools.product(*grid.values()):
        values = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
        for key, value in zip(grid, combination):
            _apply(values, str(key), value, "grid")
        label = "-".join(f"{str(k).rpartition('.')[2]}={_label(v)}" for k, v in zip(grid, combination))
        try:
            config = TrainConfig.from_dict({"dataset": "ml-100k", "model": "multvae", **values}).checked()
        except (TypeError, ValueError) as e:
            raise UsageError(f"Grid file {path}: {label or 'train'} is not a valid configuration ({e}).") from e
        for seed in seeds:
            name = check_run_name(f"{prefix}{'-' + label if label else ''}-s{seed}")
            runs.append(SweepRun(name, replace(config, seed=seed)))
    return runs


def _snapshot(store_path: Path, runs: list[SweepRun]) -> dict[str, bytes]:
    """The store file and the folders of runs a teacher or partner reads, as {path under the store's folder: bytes}."""
    files = {store_path.name: store_path.read_bytes()}
    readers = {name for run in runs for name in (run.config.teacher, run.config.partner) if name}
    with Store.open(store_path) as store:
        folders = [store.run_folder(name) for name in readers]
        base = store.artifacts_dir.parent
    for folder in folders:
        for file in folder.rglob("*"):
            if file.is_file():
                files[str(file.relative_to(base))] = file.read_bytes()
    return files


def train_task(snapshot: dict[str, bytes], store_name: str, config: dict[str, Any], name: str,
               threads: int) -> dict[str, Any]:
    """Train one run in a private copy of the snapshot; return its row, epoch log and files (a Ray task's body)."""
    from kt_cli.training.trainer import train

    with tempfile.TemporaryDirectory(prefix="kt-sweep-") as tmp:
        for relative, data in snapshot.items():
            target = Path(tmp) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        store_path = Path(tmp) / store_name
        train(store_path, TrainConfig.from_dict(config), name, threads=threads)
        with Store.open(store_path) as store:
            row, epochs, folder = store.run(name), store.epochs(name), store.run_folder(name)
        files = {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*")
                 if f.is_file() and "recbole" not in f.relative_to(folder).parts}
    assert row is not None
    return {"row": asdict(row), "epochs": epochs.to_dict("records"), "files": files}


def store_result(store_path: Path, result: dict[str, Any]) -> str:
    """Write a task's run into the store (row and epochs in one transaction, then its files); returns its name."""
    row = RunRow(**result["row"])
    with Store.open(store_path) as store:
        folder = store.run_folder(row.name)
        for relative, data in result["files"].items():
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            partial.write_bytes(data)
            partial.replace(target)
        store.import_run(row, result["epochs"])
    return row.name


def plan(store_path: Path, runs: list[SweepRun]) -> tuple[list[SweepRun], list[str]]:
    """(runs to train, finished runs skipped); checks every input and computes every split first, so a task
    never needs to write anything the driver's store lacks."""
    from kt_cli.training.trainer import run_digest

    todo, skipped = [], []
    with Store.open(store_path) as store:
        for run in runs:
            check_inputs(store, run.config)
            ensure_split(store, run.config.dataset, run.config.split_spec)
            existing = store.run(run.name)
            if existing is None or existing.status != "finished":
                todo.append(run)
            elif existing.config_hash == run_digest(store, run.config):
                skipped.append(run.name)
            else:
                raise UsageError(f"Run '{run.name}' already exists with another configuration. Change the grid "
                                 f"file's name, or delete the old runs first: kt runs --delete '{run.name}'.")
    return todo, skipped


def _ray(address: str | None, cpus: int | None) -> Any:
    """Ray, started in process (local) or connected to ``address``; RecBole pins ray 2.6.3, which needs kt's numpy
    aliases before import."""
    from kt_cli import compat

    compat.apply()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ray 2.6's pkg_resources deprecation notice
        import ray
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "error"}
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=cpus or os.cpu_count() or 1, **options)
    return ray


def run_sweep(store_path: Path, runs: list[SweepRun], *, address: str | None = None, threads: int = 1,
              cpus: int | None = None, retries: int = 2,
              on_done: Callable[[str, str | None, int, int], None] | None = None) -> SweepReport:
    """Train ``runs`` as Ray tasks (``threads`` CPUs each), storing each one as it finishes; ``on_done(name, error,
    done, total)`` follows the runs to train."""
    if threads < 1 or retries < 0:
        raise UsageError("--threads must be at least 1 and --retries at least 0.")
    report = SweepReport([run.name for run in runs])
    todo, report.skipped = plan(store_path, runs)
    if not todo:
        return report
    ray = _ray(address, cpus)
    snapshot = ray.put(_snapshot(store_path, todo))
    task = ray.remote(train_task).options(num_cpus=threads, max_retries=retries, retry_exceptions=False)
    pending = {task.remote(snapshot, store_path.name, run.config.to_dict(), run.name, threads): run.name
               for run in todo}
    try:
        while pending:
            [ready], _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(ready)
            try:
                store_result(store_path, ray.get(ready))
                report.trained.append(name)
                error = None
            except ray.exceptions.RayTaskError as e:  # the task raised: a kt error is the user's to read
                cause = e.cause if isinstance(getattr(e, "cause", None), BaseException) else e
                error = str(cause) if isinstance(cause, KtError) else f"{type(cause).__name__}: {cause}"
            except ray.exceptions.RayError as e:  # the worker died more often than the retries allow
                error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'worker lost'}"
            if error is not None:
                report.failed[name] = error
            if on_done:
                on_done(name, error, len(todo) - len(pending), len(todo))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
    return report


def train_runs(store_path: Path, configs: dict[str, TrainConfig], **options: Any) -> dict[str, dict[str, Any]]:
    """Train named configurations in parallel (``run_sweep``'s options) and return each run's summary; a failed
    run stops the caller with every failure listed (what the benchmarks use in place of a process pool)."""
    runs = [SweepRun(check_run_name(name), config.checked()) for name, config in configs.items()]
    report = run_sweep(store_path, runs, **options)
    if report.failed:
        raise TrainingError(f"{len(report.failed)} of {len(runs)} runs failed: " + "; ".join(
            f"{name}: {error}" for name, error in report.failed.items()))
    with Store.open(store_path) as store:
        return {name: store.run(name).summary for name in configs}  # type: ignore[union-attr]
