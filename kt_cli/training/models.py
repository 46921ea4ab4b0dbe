"""The registry of RecBole models kt trains, with the layer each hooks by default.

RecBole finds models by scanning its packages for a class name; kt keeps an explicit list instead,
so an unknown name gets an error that lists the valid ones, and every listed model is one the test
suite trains. Default layers follow the LLM-KT reference (REFERENCE.md) where it defines one.
"""

from __future__ import annotations

from dataclasses import dataclass

from kt_cli.errors import NotFoundError


@dataclass(frozen=True)
class ModelSpec:
    """A RecBole general recommender and where knowledge is injected by default."""

    key: str
    recbole_name: str
    default_layer: str
    note: str


MODELS: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (
        ModelSpec("neumf", "NeuMF", "mlp_layers:output",
                  "output of the MLP tower (64-d with default sizes), as in the reference"),
        ModelSpec("simplex", "SimpleX", "dropout:input",
                  "the fused user vector before dropout (64-d), as in the reference"),
        ModelSpec("multvae", "MultiVAE", "decoder:input",
                  "the sampled latent z (64-d), as in the reference"),
        ModelSpec("bpr", "BPR", "user_embedding:output", "the user's ID embedding (64-d)"),
        ModelSpec("lightgcn", "LightGCN", "reg_loss:input",
                  "the batch users' layer-0 embeddings (64-d); LightGCN's propagation reads weights "
                  "directly, so its regulariser's input is the first per-user tensor a hook can see"),
    )
}
ALIASES = {"multivae": "multvae"}


def get_model_spec(name: str) -> ModelSpec:
    """Look a model up case-insensitively; unknown names list the valid ones."""
    key = name.lower()
    key = ALIASES.get(key, key)
    if key not in MODELS:
        raise NotFoundError("model", name, MODELS)
    return MODELS[key]
