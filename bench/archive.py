"""Finished runs of a benchmark kept in the repository, so a benchmark longer than one machine's session goes on
in the next one instead of starting again.

A benchmark's store (weights, splits, knowledge) lives on the machine and is lost with it; what its tables need of
a finished run is small: the run's summary (best validation value, seconds, epochs per phase) and, for a final
run, its per-user test values. The archive keeps exactly that, one folder per benchmark under bench/archive/,
committed in chunks as runs finish: ``<run>.json`` (summary, the configuration's digest, the inputs' fingerprint)
and ``<run>.csv.gz`` (per-user values of the slices and metrics the benchmark reads). No weights: a run that a
later run needs (a teacher, a partner) is trained again from its configuration when the store lacks it, and the
benchmark checks that the retrained run reaches the archived validation value.

An entry is used only when its configuration digest and the inputs' fingerprint (the shipped profile files the
benchmark reads) equal the current ones; otherwise the run is trained again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from kt_cli.store import Store
from kt_cli.sweep import train_runs
from kt_cli.training.config import TrainConfig
from kt_cli.training.trainer import is_stale


def fingerprint(*files: Path) -> str:
    """sha256 over the files' bytes: the benchmark's knowledge inputs."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


class Archive:
    """One benchmark's archived runs (``folder``), valid for the inputs ``inputs`` (a fingerprint)."""

    def __init__(self, folder: Path, inputs: str) -> None:
        self.folder, self.inputs = folder, inputs
        self.notes: list[str] = []  # what the tables should say: a retrained run that differs from its archive

    def train(self, store_path: Path, configs: dict[str, TrainConfig], threads: int,
              needs: dict[str, TrainConfig] | None = None, record: bool = True,
              evaluate: Callable[[Path, str], pd.DataFrame] | None = None) -> dict[str, dict[str, Any]]:
        """Each run's summary: archived runs are read back, the others trained side by side on Ray and archived as
        each lands, so a stop loses little (``record=False``: neither, for runs that exist only to be timed on this
        machine). Final runs pass ``evaluate`` (their per-user test values): such a run is archived whole, summary
        and values as it lands, because its weights do not outlive the machine; one archived without its values
        (stopped in between) is evaluated from the store, or trained again where the store lacks it. A teacher or
        partner those runs read that the store lacks is trained first from ``needs``, and checked: a retrained
        run must reach its archived validation value, else a note says by how much."""
        needs = needs or {}
        summaries = {name: s for name, c in configs.items() if record and (s := self.summary(name, c)) is not None
                     and (evaluate is None or self.has_per_user(name, c))}
        todo = {name: c for name, c in configs.items() if name not in summaries}
        readers = {name for c in todo.values() for name in (c.teacher, c.partner) if name}
        with Store.open(store_path) as store:
            unfinished = {name for name in readers if (run := store.run(name)) is None or run.status != "finished"}
        missing = {name: needs[name] for name in readers if name in unfinished or is_stale(store_path, needs[name], name)}
        for name, summary in self._train(store_path, missing, threads, True).items():
            archived = self.summary(name, missing[name])
            if archived is not None and abs(archived["best_valid"] - summary["best_valid"]) > 1e-9:
                self.notes.append(f"- {name}, trained again as a teacher or partner, reached validation "
                                  f"{summary['best_valid']:.6f} against {archived['best_valid']:.6f} archived.")
        return summaries | self._train(store_path, todo, threads, record, evaluate)

    def _train(self, store_path: Path, configs: dict[str, TrainConfig], threads: int, record: bool,
               evaluate: Callable[[Path, str], pd.DataFrame] | None = None) -> dict[str, dict[str, Any]]:
        def keep(name: str, error: str | None, done: int, total: int) -> None:
            if not record or error is not None:
                return
            if self.summary(name, configs[name]) is None:
                with Store.open(store_path) as store:
                    self.add(name, configs[name], store.run(name).summary)  # type: ignore[union-attr]
            if evaluate is not None and not self.has_per_user(name, configs[name]):
                self.add_per_user(name, evaluate(store_path, name))

        for name, config in configs.items():  # trained here on other inputs (older shipped profiles): again
            if is_stale(store_path, config, name):
                with Store.open(store_path) as store:
                    store.delete_run(name)
        with Store.open(store_path) as store:  # runs the store had finished before: archived first
            finished = [name for name in configs if (run := store.run(name)) is not None and run.status == "finished"]
        for name in finished:
            keep(name, None, 0, 0)
        summaries = train_runs(store_path, configs, threads=threads, on_done=keep) if configs else {}
        return summaries

    def evaluated(self, store_path: Path, run: str, config: TrainConfig,
                  evaluate: Callable[[Path, str], pd.DataFrame]) -> pd.DataFrame:
        """A final run's per-user test values, ``evaluate(store_path, run)`` once, then from the archive (read back
        either way, so fresh and archived runs give the same types)."""
        if not self.has_per_user(run, config):
            self.add_per_user(run, evaluate(store_path, run))
        return self.per_user(run, config)  # type: ignore[return-value]

    def _key(self, config: TrainConfig) -> str:
        return f"{config.digest()}|{self.inputs}"

    def summary(self, name: str, config: TrainConfig) -> dict[str, Any] | None:
        """The archived summary of run ``name`` if it was trained with ``config`` on the current inputs."""
        path = self.folder / f"{name}.json"
        if not path.is_file():
            return None
        entry = json.loads(path.read_text(encoding="utf-8"))
        return entry["summary"] if entry.get("key") == self._key(config) else None

    def add(self, name: str, config: TrainConfig, summary: dict[str, Any]) -> None:
        """Archive run ``name``'s summary; per-user values of an earlier run of that name (another configuration)
        are removed, never read as this run's."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{name}.csv.gz").unlink(missing_ok=True)
        text = json.dumps({"key": self._key(config), "config": config.to_dict(), "summary": summary}, indent=1,
                          sort_keys=True, default=str)
        _write(self.folder / f"{name}.json", text.encode("utf-8"))

    def has_per_user(self, name: str, config: TrainConfig) -> bool:
        """Whether run ``name`` trained with ``config`` has its per-user test values archived (without reading them)."""
        return self.summary(name, config) is not None and (self.folder / f"{name}.csv.gz").is_file()

    def per_user(self, name: str, config: TrainConfig) -> pd.DataFrame | None:
        """Archived per-user test values of a final run (None if absent or stale)."""
        if not self.has_per_user(name, config):
            return None
        return pd.read_csv(self.folder / f"{name}.csv.gz", dtype={"user_id": str})

    def add_per_user(self, name: str, frame: pd.DataFrame) -> None:
        text = frame.to_csv(index=False, float_format="%.17g")  # every digit: the tables recompute from it
        _write(self.folder / f"{name}.csv.gz", gzip.compress(text.encode("utf-8"), mtime=0))


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)  # a run is archived whole or not at all
