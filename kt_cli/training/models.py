"""The registry of models kt trains: which task each serves and the layer LLM-KT hooks by default.

RecBole finds models by scanning its packages for a class name; kt keeps an explicit list instead,
so an unknown name gets an error that lists the valid ones, and every listed model is one the test
suite trains. Default layers follow the LLM-KT reference (REFERENCE.md) where it defines one.

``kind`` is RecBole's model type: ``general`` models rank items for users (the ranking task);
``context`` models score labelled (user, item, features) samples (the CTR task) and accept extra
feature fields, which is where KAR puts its knowledge. ``kar_hidden_from`` names modules of a context
model that must not see KAR's fields (DeepFM's FM term: KAR feeds its DNN and first-order term only).
``vectors`` says where a model keeps user and item vectors whose inner product is its score, so ``kt
recommend`` can search them with faiss: ``embeddings`` (``user_embedding``/``item_embedding`` tables) or
``forward`` (``forward()`` returns both, LightGCN's propagated ones) or ``towers`` (``towers()``, LEARN's);
other models score every item.

kt's own models (kt_cli/models/) name their class in ``implementation`` and their settings' defaults in
``settings`` (RecBole has no property file for them; ``--set`` is checked against these), and ``method`` the
method they are trained by (LEARN's towers exist only with the ``learn`` method, which gives them content).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from kt_cli.errors import NotFoundError


@dataclass(frozen=True)
class ModelSpec:
    """A RecBole recommender, the task it serves and where knowledge is injected by default."""

    key: str
    recbole_name: str
    default_layer: str
    note: str
    kind: str = "general"  # RecBole's model type: general (ranking), context (CTR) or sequential (next item)
    kar_hidden_from: tuple[str, ...] = ()
    vectors: str | None = None  # how user and item vectors whose inner product is the score are read (retrieval)
    implementation: str | None = None  # "module:Class" of a kt model; None: RecBole's model ``recbole_name``
    settings: dict[str, Any] = field(default_factory=dict)  # a kt model's settings and their defaults
    method: str | None = None  # the one method a kt model is trained by

    def load(self) -> type:
        """The model class: kt's own (imported now) or RecBole's, found by name."""
        if self.implementation is None:
            from recbole.utils import get_model

            return get_model(self.recbole_name)
        module, _, name = self.implementation.partition(":")
        return getattr(importlib.import_module(module), name)

    @property
    def task(self) -> str:
        return {"general": "ranking", "context": "ctr", "sequential": "sequential"}[self.kind]


_DEEP_TOWER = ("the deep tower's last hidden layer (the analogue of NeuMF's MLP tower output, which the reference "
               "hooks); {width}-d with RecBole's defaults, its first 32 columns compared with a 32-d set, as the "
               "paper reduced profiles to 32 for DCN and DeepFM")

MODELS: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (
        ModelSpec("neumf", "NeuMF", "mlp_layers:output",
                  "output of the MLP tower (64-d with default sizes), as in the reference"),
        ModelSpec("simplex", "SimpleX", "dropout:input",
                  "the fused user vector before dropout (64-d), as in the reference"),
        ModelSpec("multvae", "MultiVAE", "decoder:input",
                  "the sampled latent z (64-d), as in the reference"),
        ModelSpec("bpr", "BPR", "user_embedding:output", "the user's ID embedding (64-d)", vectors="embeddings"),
        ModelSpec("lightgcn", "LightGCN", "reg_loss:input",
                  "the batch users' layer-0 embeddings (64-d); LightGCN's propagation reads weights "
                  "directly, so its regulariser's input is the first per-user tensor a hook can see",
                  vectors="forward"),
        ModelSpec("learn", "Learn", "transformer:output",
                  "LEARN's twin towers over frozen LLM content embeddings (kt's own model, trained by the learn "
                  "method with --item-knowledge); LLM-KT does not apply", vectors="towers",
                  implementation="kt_cli.models.learn:Learn", method="learn", settings={
                      "hidden_size": 64, "n_layers": 2, "n_heads": 2, "inner_size": 256, "dropout_prob": 0.1,
                      "max_history": 50, "logit_scale": 20.0, "learn_scale": False, "item_tower": "shared",
                      "softmax_items": "trained", "train_batch_size": 64, "train_neg_sample_args": None}),
        ModelSpec("sasrec", "SASRec", "trm_encoder:output", "the transformer's output (64-d)", kind="sequential"),
        ModelSpec("gru4rec", "GRU4Rec", "gru_layers:output", "the GRU's output (64-d)", kind="sequential"),
        ModelSpec("dcn", "DCN", "mlp_layers:output", _DEEP_TOWER.format(width=256), kind="context"),
        ModelSpec("deepfm", "DeepFM", "mlp_layers:output", _DEEP_TOWER.format(width=128), kind="context",
                  kar_hidden_from=("fm",)),
        ModelSpec("widedeep", "WideDeep", "mlp_layers:output", _DEEP_TOWER.format(width=8) + " (narrower than 32: use --project linear)", kind="context"),
        ModelSpec("xdeepfm", "xDeepFM", "mlp_layers:output", _DEEP_TOWER.format(width=128), kind="context"),
        ModelSpec("autoint", "AutoInt", "mlp_layers:output", _DEEP_TOWER.format(width=128), kind="context"),
    )
}
ALIASES = {"multivae": "multvae", "wide&deep": "widedeep"}


def get_model_spec(name: str) -> ModelSpec:
    """Look a model up case-insensitively; unknown names list the valid ones."""
    key = name.lower()
    key = ALIASES.get(key, key)
    if key not in MODELS:
        raise NotFoundError("model", name, MODELS)
    return MODELS[key]


def models_for(task: str) -> list[str]:
    """Registry keys of the models that serve ``task``."""
    return [key for key, spec in MODELS.items() if spec.task == task]
