"""A training run's complete, validated configuration, stored as JSON with the run.

Everything that changes the numbers is here (and hashed), so ``compare`` can show how two runs
differ and a rerun with the same config reuses the stored result. Threads and the store path are not:
they change speed, not results.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from kt_cli.datasets.splits import SplitSpec, parse_split
from kt_cli.errors import MissingInputError, UsageError
from kt_cli.methods import MethodSpec, get_method
from kt_cli.tasks import TaskSpec, get_task
from kt_cli.training.models import get_model_spec, models_for
from kt_cli.store import KnowledgeSetRow, Store
from kt_cli.training.recbole_settings import check_settings

PROJECTIONS = ("truncate", "linear")
RECON_LOSSES = ("rmse", "cosine")
TARGET_SCALES = ("none", "layer")

# Overrides kt owns: letting --set change them would break kt's data flow or its isolation.
RESERVED_KEYS = frozenset({
    "data_path", "dataset", "benchmark_filename", "load_col", "USER_ID_FIELD", "ITEM_ID_FIELD",
    "checkpoint_dir", "seed", "epochs", "eval_args", "show_progress", "state", "use_gpu", "gpu_id",
})
# ... and for CTR models, the label and the samples: kt labels every interaction itself (tasks/ctr.py).
CTR_RESERVED_KEYS = frozenset({"LABEL_FIELD", "threshold", "train_neg_sample_args", "numerical_features"})
# Fields added after runs were first stored: left out of the stored dict (and so of the hash) while unset, so
# every run stored before them keeps its configuration hash.
OPTIONAL_FIELDS = ("method", "user_knowledge", "item_knowledge", "method_options", "label_threshold", "teacher",
                   "teacher_file", "partner", "eval_every")
KNOWLEDGE_ENTITY = {"knowledge": None, "user_knowledge": "user", "item_knowledge": "item"}
DEFAULT_THRESHOLD = 4.0  # RecBole's ml-100k CTR label: rating >= 4


@dataclass(frozen=True)
class TrainConfig:
    """What to train, on which data, with which knowledge and schedule."""

    dataset: str = "ml-100k"
    model: str = "multvae"
    knowledge: str | None = None
    inject_layer: str | None = None  # None: the model's documented default
    alpha: float = 0.5
    recon_loss: str = "rmse"
    project: str = "truncate"
    target_scale: str = "none"
    distill_epochs: int = 100
    finetune_epochs: int = 100
    patience: int = 10
    valid_metric: str | None = None  # None: the task's default (ndcg@10 for ranking, auc for CTR)
    split: str = "0.7,0.1,0.2"  # ratios, or "loo"
    split_order: str = "time"
    split_seed: int = 42
    seed: int = 42
    device: str = "cpu"
    recbole: dict[str, Any] = field(default_factory=dict)
    method: str | None = None  # None: llmkt with --knowledge, else the baseline
    user_knowledge: str | None = None  # KAR's user (preference reasoning) set
    item_knowledge: str | None = None  # KAR's item (factual) set
    method_options: dict[str, Any] = field(default_factory=dict)
    label_threshold: float | None = None  # CTR label: rating >= threshold (set to the default for CTR models)
    teacher: str | None = None  # kd: a finished ranking run on the same split
    teacher_file: str | None = None  # kd: a JSONL file of top-n items and scores per user (absolute path)
    partner: str | None = None  # llmd4rec: a finished ranking run on the same split, trained along
    eval_every: int | None = None  # validate every N epochs (and at each phase's last); None: every epoch

    def __post_init__(self) -> None:
        # Canonical registry key, so --model NeuMF and --model neumf are the same run.
        object.__setattr__(self, "model", get_model_spec(self.model).key)
        object.__setattr__(self, "split_order", self.split_order.strip().lower())
        object.__setattr__(self, "valid_metric",
                           self.task_spec.parse_valid_metric(self.valid_metric or self.task_spec.default_valid_metric))
        self._check_method()
        if not 0 <= self.alpha <= 1:
            raise UsageError(f"--alpha must be between 0 and 1, got {self.alpha}.")
        if self.recon_loss not in RECON_LOSSES:
            raise UsageError(f"--recon-loss must be one of {', '.join(RECON_LOSSES)}, got '{self.recon_loss}'.")
        if self.target_scale not in TARGET_SCALES:
            raise UsageError(f"--target-scale must be one of {', '.join(TARGET_SCALES)}, got '{self.target_scale}'.")
        if self.project not in PROJECTIONS:
            raise UsageError(f"--project must be one of {', '.join(PROJECTIONS)}, got '{self.project}'.")
        if self.distill_epochs < 0 or self.finetune_epochs < 0 or self.distill_epochs + self.finetune_epochs == 0:
            raise UsageError("--distill-epochs and --finetune-epochs must be >= 0 and not both 0.")
        if self.patience < 1:
            raise UsageError(f"--patience must be at least 1, got {self.patience}.")
        if self.eval_every is not None and self.eval_every < 1:
            raise UsageError(f"--eval-every must be at least 1, got {self.eval_every}.")
        if self.eval_every == 1:  # every epoch: the same run as before the option existed
            object.__setattr__(self, "eval_every", None)
        if self.inject_layer is not None and self.inject_layer.partition(":")[2] not in ("", "input", "output"):
            raise UsageError(
                f"--inject-layer '{self.inject_layer}': the part after ':' must be 'input' or 'output', "
                f"not '{self.inject_layer.partition(':')[2]}'."
            )
        if self.knowledge is None and self.inject_layer is not None:
            raise UsageError("--inject-layer needs --knowledge: without knowledge vectors nothing is injected.")
        reserved = sorted((RESERVED_KEYS | (CTR_RESERVED_KEYS if self.task_spec.key == "ctr" else set()))
                          & set(self.recbole))
        if reserved:
            raise UsageError(
                f"RecBole setting(s) {', '.join(reserved)} are managed by kt; use kt's own options "
                "(--seed, --distill-epochs/--finetune-epochs, --split, --device, --label-threshold) instead."
            )
        self.split_spec  # validates the split options
        if self.device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", self.device):
            raise UsageError(f"--device must be cpu, cuda or cuda:N, not '{self.device}'.")

    def _check_method(self) -> None:
        """The method exists, serves this model's task, and gets exactly the knowledge options it reads."""
        own = get_model_spec(self.model).method  # a kt model trained by one method only (LEARN)
        auto = own or ("llmkt" if self.knowledge is not None else "none")
        if self.method is not None:
            object.__setattr__(self, "method", get_method(self.method).key)
        if own is not None and self.method not in (None, own):
            raise UsageError(f"Model '{self.model}' is trained by method '{own}' only (it is that method's own "
                             f"model), not '{self.method}'. Drop --method.")
        if self.method == auto:
            object.__setattr__(self, "method", None)  # the same run whether or not --method was spelled out
        spec = self.method_spec
        task = self.task_spec.key
        if spec.models and self.model not in spec.models:
            raise UsageError(f"Method '{spec.key}' ({spec.summary}) trains its own model: use --model "
                             f"{' or '.join(spec.models)}, not '{self.model}'.")
        if task not in spec.tasks:
            valid = ", ".join(m for t in spec.tasks for m in models_for(t))
            raise UsageError(f"Method '{spec.key}' ({spec.summary}) needs a model of the {' or '.join(spec.tasks)} "
                             f"task: {valid}. '{self.model}' is a {task} model.")
        given = [name for name in KNOWLEDGE_ENTITY if getattr(self, name) is not None]
        foreign = [name for name in given if name not in spec.knowledge]
        if foreign:
            options = ", ".join("--" + n.replace("_", "-") for n in foreign)
            wanted = ", ".join("--" + n.replace("_", "-") for n in spec.knowledge) or "no knowledge"
            raise UsageError(f"{options} {'is' if len(foreign) == 1 else 'are'} not read by method '{spec.key}', "
                             f"which takes {wanted}. " + ("Use --method llmkt (the default with --knowledge)."
                                                          if "knowledge" in foreign else
                                                          "Use --method kar for user and item knowledge sets."))
        if spec.knowledge and not given:
            wanted = " and/or ".join("--" + n.replace("_", "-") for n in spec.knowledge)
            raise UsageError(f"Method '{spec.key}' needs {wanted} (knowledge sets, see kt knowledge).")
        teachers = [f for f in ("teacher", "teacher_file") if getattr(self, f) is not None]
        if spec.teacher and len(teachers) != 1:
            raise UsageError(f"Method '{spec.key}' needs one teacher: --teacher RUN (a finished ranking run on the same "
                             "split, e.g. kt train --model learn ...) or --teacher-file FILE (JSONL: user_id, items, "
                             "scores)" + (", not both." if teachers else "."))
        if teachers and not spec.teacher:
            raise UsageError(f"--{teachers[0].replace('_', '-')} is read by method kd only, not '{spec.key}'. Add "
                             "--method kd.")
        if spec.partner and self.partner is None:
            raise UsageError(f"Method '{spec.key}' needs --partner RUN: a finished ranking run on the same split (e.g. "
                             "kt train --model learn --item-knowledge SET --split loo --name learn-loo).")
        if self.partner is not None and not spec.partner:
            raise UsageError(f"--partner is read by method llmd4rec only, not '{spec.key}'. Add --method llmd4rec.")
        object.__setattr__(self, "method_options", spec.check_options(dict(self.method_options)))
        if task == "ctr":
            object.__setattr__(self, "label_threshold", float(self.label_threshold if self.label_threshold
                                                             is not None else DEFAULT_THRESHOLD))
        elif self.label_threshold is not None:
            raise UsageError(f"--label-threshold makes CTR labels; '{self.model}' is a {task} model "
                             f"(CTR models: {', '.join(models_for('ctr'))}).")

    @property
    def method_spec(self) -> MethodSpec:
        own = get_model_spec(self.model).method
        return get_method(self.method or own or ("llmkt" if self.knowledge is not None else "none"))

    @property
    def task_spec(self) -> TaskSpec:
        return get_task(get_model_spec(self.model).task)

    def knowledge_sets(self) -> dict[str, str]:
        """The knowledge sets this run reads, by config field (knowledge, user_knowledge, item_knowledge)."""
        return {name: getattr(self, name) for name in KNOWLEDGE_ENTITY if getattr(self, name) is not None}

    @property
    def split_spec(self) -> SplitSpec:
        return parse_split(self.split, self.split_order, self.split_seed)

    def checked(self, *, allow_unknown_settings: bool = False) -> TrainConfig:
        """This config with its RecBole overrides checked against RecBole's known keys and typed like their
        defaults (``1e-3`` becomes 0.001); unknown keys and wrong types are refused before any run exists."""
        spec = get_model_spec(self.model)
        recbole = check_settings(spec.recbole_name, self.model, self.recbole, allow_unknown=allow_unknown_settings,
                                 defaults=spec.settings)
        return replace(self, recbole=recbole)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in OPTIONAL_FIELDS:
            if data[name] in (None, {}):
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        unknown = set(data) - set(cls.__dataclass_fields__) - {"split_ratios"}
        if unknown:
            raise UsageError(f"Unknown training setting(s): {', '.join(sorted(unknown))}.")
        data = dict(data)
        if "split_ratios" in data:  # runs stored before time-ordered splits: per-user random ones
            data["split"] = ",".join(f"{r:g}" for r in data.pop("split_ratios"))
            data.setdefault("split_order", "random")
        return cls(**data)

    def digest(self) -> str:
        """Stable hash of everything that affects results."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def check_run_name(name: str) -> str:
    """A run name users can type and kt compare can take: visible, without glob characters or slashes."""
    if not name.strip() or name != name.strip() or any(c in name for c in "*?[]/\\") or any(c.isspace() for c in name):
        raise UsageError(f"Run name {name!r} cannot be used: a name must be non-empty, without spaces, slashes or "
                         "the glob characters * ? [ ] (kt compare reads those as patterns over run names).")
    return name


def parse_seeds(text: str) -> list[int]:
    """``1-5`` -> [1, 2, 3, 4, 5]; ``1,3,7`` -> [1, 3, 7]; anything else is a usage error."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            first, dash, last = part.strip().partition("-")
            seeds += list(range(int(first), int(last) + 1)) if dash else [int(first)]
    except ValueError as e:
        raise UsageError(f"--seeds takes a range like 1-5 or a list like 1,3,7, not '{text}'.") from e
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds needs distinct seeds, like 1-5 or 1,3,7, not '{text}'.")
    return seeds


def default_run_name(config: TrainConfig) -> str:
    tag = {"none": "base", "llmkt": "kt"}.get(config.method_spec.key, config.method_spec.key)
    return f"{config.model}-{tag}-{config.digest()[:6]}"


def check_inputs(store: Store, config: TrainConfig) -> dict[str, KnowledgeSetRow]:
    """The dataset exists (a built-in one is imported) and so does every knowledge set the run reads, for
    the right entity; returns the sets by config field.

    Cheap (no torch, no RecBole), so a mistyped name is reported at once, before a run is created."""
    from kt_cli.datasets.registry import ensure_dataset

    ensure_dataset(store, config.dataset)
    rows = {}
    for option, name in config.knowledge_sets().items():
        row = store.knowledge_set(config.dataset, name)
        flag = "--" + option.replace("_", "-")
        if row is None:
            names = [k.name for k in store.knowledge_sets(config.dataset)]
            available = f" Sets for {config.dataset}: {', '.join(names)}." if names else ""
            raise MissingInputError(
                f"There is no knowledge set '{name}' ({flag}) for dataset {config.dataset}.{available}",
                f"kt embed --dataset {config.dataset} --from-file FILE --name {name}  "
                f"(or kt embed --profiles SET, or kt reduce --dataset {config.dataset} --from SET)",
            )
        wanted = KNOWLEDGE_ENTITY[option]
        if wanted is not None and row.entity != wanted:
            raise UsageError(f"{flag} {name} holds {row.entity} vectors; {flag} takes a set of {wanted} vectors "
                             f"(see kt knowledge --dataset {config.dataset}).")
        rows[option] = row
    for role, name in (("Teacher", config.teacher), ("Partner", config.partner)):
        if name is None:
            continue
        other = store.run(name)
        if other is None or other.status != "finished":
            state = "does not exist" if other is None else f"has not finished training (status {other.status})"
            raise MissingInputError(f"{role} run '{name}' {state}. Runs: {', '.join(store.run_names())}.",
                                    f"kt train --model learn ... --name {name}  (on the student's split)")
    if config.teacher_file is not None and not Path(config.teacher_file).is_file():
        raise MissingInputError(f"Teacher file {config.teacher_file} does not exist.",
                                "kt train ... --teacher-file FILE (JSONL: user_id, items, scores per line)")
    return rows


def knowledge_stamps(store: Store, config: TrainConfig) -> dict[str, str]:
    """Each knowledge set the run reads, with its creation time: a set re-imported under the same name is
    different input (it changes the run's digest, and a KAR run refuses to score with it)."""
    stamps = {}
    for name in config.knowledge_sets().values():
        row = store.knowledge_set(config.dataset, name)
        stamps[name] = row.created_at.isoformat() if row else ""
    for role, name in (("teacher", config.teacher), ("partner", config.partner)):  # retrained: another teacher
        if name is not None:
            run = store.run(name)
            stamps[f"{role}:{name}"] = f"{run.config_hash}@{run.finished_at}" if run else ""
    if config.teacher_file is not None:
        path = Path(config.teacher_file)
        stamps[f"teacher-file:{path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else ""
    return stamps
