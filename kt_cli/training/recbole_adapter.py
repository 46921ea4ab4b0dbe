"""The one place kt talks to RecBole: config, dataset, dataloaders and model construction.

RecBole is a library with process-wide habits that break a CLI, each neutralised here:
``Config`` parses ``sys.argv`` (kt's own ``--epochs=5`` would override the config), sets
``CUDA_VISIBLE_DEVICES``, loads preset YAML by dataset name, and it logs through the root logger and
writes ``./saved``/``./log`` relative to the working directory. kt builds the Config with ``sys.argv``
cut to the program name, restores the environment, names its dataset ``kt`` (no preset), points every
path into the run's folder, and silences RecBole's logging below errors. Importing RecBole's sequential
models (any of them: the package imports all) runs ``torch.autograd.set_detect_anomaly(True)`` in its SINE
module, which slows every backward pass several times and turns a NaN into an exception; kt turns it off
again after loading a model class.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import logging
import os
import pickle
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kt_cli import compat
from kt_cli.datasets.splits import PARTS, RECBOLE_DATASET
from kt_cli.errors import KtError, TrainingError
from kt_cli.training.models import ModelSpec

compat.apply()

import torch  # noqa: E402  (after compat: numpy aliases must exist before RecBole and ray load)
from recbole.config import Config  # noqa: E402
from recbole.data import data_preparation  # noqa: E402
from recbole.data.interaction import Interaction  # noqa: E402
from recbole.utils import ModelType, init_seed  # noqa: E402
from recbole.utils.argument_list import dataset_arguments  # noqa: E402

# What shapes RecBole's dataset object (its own list, plus what its CTR feature handling reads): two runs that agree
# on these share one cached dataset, whatever their model settings and seeds.
DATASET_KEYS = (*dataset_arguments, "numerical_features", "discretization", "data_path", "dataset")


@contextmanager
def recbole_isolation() -> Iterator[None]:
    """Hide kt's command line, environment changes and log output from RecBole, and restore them."""
    argv = sys.argv
    cuda_env = os.environ.get("CUDA_VISIBLE_DEVICES")
    root = logging.getLogger()
    level = root.level
    sys.argv = argv[:1]
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # RecBole's pandas chained-assignment and torch.sparse deprecations are not the user's to fix.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        sys.argv = argv
        root.setLevel(level)
        if cuda_env is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = cuda_env


@dataclass
class RecBoleParts:
    """Everything a run needs from RecBole, built once per process."""

    config: Any
    dataset: Any
    train_data: Any
    model: torch.nn.Module
    eval_data: tuple[Any, Any] = (None, None)  # RecBole's validation and test dataloaders (CTR samples)

    @property
    def device(self) -> torch.device:
        return self.config["device"]

    @property
    def user_field(self) -> str:
        return self.dataset.uid_field

    @property
    def item_field(self) -> str:
        return self.dataset.iid_field

    def internal_ids(self, entity: str, external: Sequence[str] | pd.Series) -> np.ndarray:
        """RecBole's internal ids for external ids; -1 where the id is unknown to this dataset.

        Each distinct id is looked up once (a split's rows repeat a few thousand users a million times); a Series
        is read as it is, without a Python list of a million strings in between (0.2 s at 1M rows)."""
        tokens = pd.Index(self.external_ids(entity))  # position = internal id
        values = external if isinstance(external, pd.Series) else pd.Series(external, dtype=object)
        codes, distinct = pd.factorize(values, use_na_sentinel=False)  # a missing id: a value of its own, unknown
        return tokens.get_indexer(distinct).astype(np.int64)[codes]

    def external_ids(self, entity: str) -> np.ndarray:
        """External id of every internal id (index 0 is RecBole's padding token)."""
        field = self.user_field if entity == "user" else self.item_field
        return np.asarray(self.dataset.field2id_token[field])

    def num(self, entity: str) -> int:
        return int(self.dataset.user_num if entity == "user" else self.dataset.item_num)


def recbole_config_dict(
    data_path: Path, run_dir: Path, *, seed: int, device: str, overrides: dict[str, Any]
) -> dict[str, Any]:
    """The complete RecBole config for a kt run: kt's fixed choices, then the user's overrides."""
    use_gpu = device.startswith("cuda")
    base: dict[str, Any] = {
        "data_path": str(data_path),
        "benchmark_filename": list(PARTS),
        "load_col": {"inter": ["user_id", "item_id"]},
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "seed": seed,
        "reproducibility": True,
        "checkpoint_dir": str(run_dir / "recbole"),
        "show_progress": False,
        "state": "ERROR",
        "use_gpu": use_gpu,
        "gpu_id": device.split(":", 1)[1] if use_gpu and ":" in device else ("0" if use_gpu else ""),
        "worker": 0,
        "log_wandb": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
    }
    return {**base, **overrides}


def build(spec: ModelSpec, config_dict: dict[str, Any], seed: int) -> RecBoleParts:
    """Build RecBole's Config, dataset, train dataloader and a freshly seeded model."""
    try:
        with recbole_isolation():
            model_class = spec.load()
            torch.autograd.set_detect_anomaly(False)  # RecBole's sine.py turns it on for the process at import
            config = Config(model=model_class, dataset=RECBOLE_DATASET, config_dict=config_dict)
            init_seed(seed, True)
            dataset = cached_dataset(config)
            train_data, valid_data, test_data = data_preparation(config, dataset)
            init_seed(seed, True)
            model = model_class(config, train_data.dataset).to(config["device"])
    except KtError:
        raise
    except Exception as e:  # RecBole raises bare ValueError/KeyError/AssertionError on bad config
        raise TrainingError(
            f"RecBole could not build {spec.recbole_name}: {type(e).__name__}: {e}. "
            "Check the --set/--config overrides against RecBole's documentation for this model."
        ) from e
    return RecBoleParts(config, dataset, train_data, model, (valid_data, test_data))


def _dataset_class(config: Any) -> type:
    """The dataset class RecBole's ``create_dataset`` would choose for this config."""
    module = importlib.import_module("recbole.data.dataset")
    own = config["model"] + "Dataset"
    if hasattr(module, own):
        return getattr(module, own)
    by_type = {ModelType.SEQUENTIAL: "SequentialDataset", ModelType.KNOWLEDGE: "KnowledgeBasedDataset"}
    return getattr(module, by_type.get(config["MODEL_TYPE"], "Dataset"))


def cached_dataset(config: Any) -> Any:
    """RecBole's dataset for ``config``, built once per split export and dataset settings, then read back.

    RecBole reads atomic files slowly (about 7 s at a million interactions), and every ``kt train`` and ``kt eval``
    of a split builds the same object. The cache file lives beside the split's files (``data_path``), so it goes
    with the split; its name hashes the dataset class and DATASET_KEYS. Building uses no random numbers, so a
    dataset read back is the one the seed would have built; it takes this run's config for what comes after
    (dataloaders, evaluation arguments). A file that cannot be read is rebuilt.
    """
    cls = _dataset_class(config)
    key = json.dumps({"class": cls.__name__, **{k: config[k] for k in DATASET_KEYS}}, sort_keys=True, default=str)
    path = Path(config["data_path"]) / f"recbole-{cls.__name__}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.pth"
    if path.is_file():
        try:
            with open(path, "rb") as handle:
                dataset = pickle.load(handle)
            dataset.config = config
            return dataset
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            pass  # damaged or from another RecBole: rebuild it
    dataset = cls(config)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    with open(partial, "wb") as handle:
        pickle.dump(dataset, handle, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)  # atomic: a concurrent run reads a whole file or none
    return dataset


def history_matrix(self: Any, row: str, value_field: str | None = None,
                   max_history_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RecBole's ``Dataset._history_matrix`` (each user's or item's interactions as a padded matrix), the same
    matrices from the same shuffle, vectorised: RecBole fills them in a Python loop over every interaction (0.75 s
    of a MultVAE session build at a million interactions). Installed in place of RecBole's below."""
    self._check_field("uid_field", "iid_field")
    inter_feat = copy.deepcopy(self.inter_feat)
    inter_feat.shuffle()  # the same random draw as RecBole's, so the same order and the same state after
    user_ids, item_ids = inter_feat[self.uid_field].numpy(), inter_feat[self.iid_field].numpy()
    if value_field is None:
        values = np.ones(len(inter_feat))
    elif value_field not in inter_feat:
        raise ValueError(f"Value_field [{value_field}] should be one of `inter_feat`'s features.")
    else:
        values = inter_feat[value_field].numpy()
    if row == "user":
        row_num, max_col_num, row_ids, col_ids = self.user_num, self.item_num, user_ids, item_ids
    else:
        row_num, max_col_num, row_ids, col_ids = self.item_num, self.user_num, item_ids, user_ids
    counts = np.bincount(row_ids, minlength=row_num).astype(np.int64)
    col_num = int(counts.max()) if max_history_len is None else min(max_history_len, int(counts.max()))
    if col_num > max_col_num * 0.2:
        self.logger.warning(f"Max value of {row}'s history interaction records has reached "
                            f"{col_num / max_col_num * 100}% of the total.")
    order = np.argsort(row_ids, kind="stable")  # each row's interactions in shuffled order
    rank = np.empty(len(row_ids), dtype=np.int64)
    rank[order] = np.arange(len(row_ids)) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = rank < col_num  # RecBole keeps a row's first col_num in that order
    matrix, value = np.zeros((row_num, col_num), dtype=np.int64), np.zeros((row_num, col_num))
    matrix[row_ids[keep], rank[keep]] = col_ids[keep]
    value[row_ids[keep], rank[keep]] = values[keep]
    return torch.LongTensor(matrix), torch.FloatTensor(value), torch.LongTensor(np.minimum(counts, col_num))


_DATASET = importlib.import_module("recbole.data.dataset").Dataset
recbole_history_matrix = _DATASET._history_matrix  # RecBole's own, which the test compares against
_DATASET._history_matrix = history_matrix


def interaction(fields: dict[str, torch.Tensor]) -> Interaction:
    """A RecBole Interaction from named tensors (for scoring outside RecBole's dataloaders)."""
    return Interaction(fields)
