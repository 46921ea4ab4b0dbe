"""Knowledge sets from texts: embed a profile set (or any per-entity texts) with a text encoder.

Vectors are cached by (encoder, text hash) and saved batch by batch, so an interrupted embed keeps
what it finished and a profile set that shares most texts with another costs only the new ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kt_cli.datasets.registry import ensure_dataset
from kt_cli.datasets.splits import shown_interactions
from kt_cli.errors import MissingInputError
from kt_cli.knowledge.encoders import Encoder
from kt_cli.datasets.fields import TITLE_FIELDS, first_field, genres, year
from kt_cli.profiles.prompts import HistoryRules, histories, user_values
from kt_cli.store import KnowledgeSetRow, Store, _now

BATCH = 256  # texts per encoder call and per store write


@dataclass(frozen=True)
class EmbedReport:
    """What an embed produced and reused."""

    set: KnowledgeSetRow
    cached: bool
    encoded: int  # texts sent to the encoder now
    reused: int  # texts whose vector was cached
    empty: int  # profiles with no text (skipped)
    without_vector: int  # users/items of the dataset with no vector


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def embed_texts(store: Store, dataset: str, entity: str, ids: list[str], texts: list[str], encoder: Encoder, *,
                name: str, source: str, params: dict[str, object],
                progress: Callable[[int, int], None] | None = None) -> EmbedReport:
    """Store one vector per non-empty text as knowledge set ``name``; unchanged inputs are not recomputed."""
    keep = [i for i, t in enumerate(texts) if t.strip()]
    empty = len(texts) - len(keep)
    ids, texts = [ids[i] for i in keep], [texts[i] for i in keep]
    hashes = [text_hash(t) for t in texts]
    params = {**params, "encoder": encoder.name,
              "texts_sha256": hashlib.sha256("".join(hashes).encode()).hexdigest()[:16]}
    known = len(store.entity_ids(dataset, entity))
    existing = store.knowledge_set(dataset, name)
    if existing and existing.params == params:
        return EmbedReport(existing, True, 0, len(ids), empty, known - existing.n_vectors)
    vectors = store.text_embeddings(encoder.name, hashes)
    reused = sum(1 for h in hashes if h in vectors)
    todo = list(dict.fromkeys(h for h in hashes if h not in vectors))
    text_of = dict(zip(hashes, texts))
    if progress:
        progress(len(hashes) - len(todo), len(hashes))
    for start in range(0, len(todo), BATCH):
        batch = todo[start:start + BATCH]
        encoded = encoder.encode([text_of[h] for h in batch])
        store.save_text_embeddings(encoder.name, batch, encoded)  # kept even if a later batch fails
        vectors.update(zip(batch, encoded))
        if progress:
            progress(len(hashes) - len(todo) + start + len(batch), len(hashes))
    if not hashes:
        raise MissingInputError(f"No {entity} of {dataset} has a non-empty text to embed.",
                                f"kt profile --dataset {dataset} --entity {entity}")
    matrix = np.stack([vectors[h] for h in hashes])
    row = KnowledgeSetRow(dataset, name, entity, int(matrix.shape[1]), len(ids), source, encoder.name, params,
                          None, _now())
    store.save_knowledge_set(row, ids, matrix)
    return EmbedReport(row, False, len(todo), reused, empty, known - len(ids))


def embed_profiles(store: Store, dataset: str, profile_set: str, encoder: Encoder, *, name: str | None = None,
                   progress: Callable[[int, int], None] | None = None) -> EmbedReport:
    """Embed profile set ``profile_set``; the knowledge set is named ``<profile-set>-<encoder>`` by default."""
    pset = store.profile_set(dataset, profile_set)
    if pset is None:
        available = ", ".join(p.name for p in store.profile_sets(dataset)) or "none yet"
        raise MissingInputError(f"Profile set '{profile_set}' of {dataset} does not exist (available: {available}).",
                                f"kt profile --dataset {dataset}")
    frame = store.profiles(dataset, profile_set)
    return embed_texts(store, dataset, pset.entity, frame["entity_id"].tolist(), frame["text"].tolist(), encoder,
                       name=name or f"{profile_set}-{encoder.name.replace(':', '-')}", source="profiles",
                       params={"profile_set": profile_set, "model": pset.model, "template_hash": pset.template_hash},
                       progress=progress)


def history_texts(store: Store, dataset: str, rules: HistoryRules) -> tuple[list[str], list[str]]:
    """User ids and their history texts: the liked/disliked lines a profile prompt shows, nothing else."""
    ensure_dataset(store, dataset)
    inter = shown_interactions(store, dataset, rules.split)
    items = store.item_fields(dataset)
    max_rating = float(inter["rating"].max())
    ids, texts, lines = [], [], {}
    for user, history in sorted(histories(inter).items()):
        values = user_values(history, items, rules, max_rating, dataset, lines)
        ids.append(user)
        texts.append(f"Liked:\n{values['liked']}\nDisliked:\n{values['disliked']}")
    return ids, texts


def embed_history(store: Store, dataset: str, encoder: Encoder, rules: HistoryRules, *, name: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> EmbedReport:
    """Embed each user's history as plain text (no LLM): the liked/disliked lines a profile prompt shows.

    The control for "the LLM adds knowledge": the encoder sees exactly the titles, years, genres and
    ratings the LLM was shown, under the same history rule, without the LLM's summary.
    """
    ids, texts = history_texts(store, dataset, rules)
    return embed_texts(store, dataset, "user", ids, texts, encoder, name=name or f"history-{encoder.name}{rules.name_suffix}",
                       source="history-text", params={"rules": rules.as_dict()}, progress=progress)


def item_text(fields: dict[str, str]) -> str:
    """``Title: Toy Story. Year: 1995. Genres: Animation, Children's, Comedy.`` (LEARN's item text), empty parts
    left out."""
    parts = [("Title", first_field(fields, TITLE_FIELDS)), ("Year", year(fields)), ("Genres", ", ".join(genres(fields)))]
    return " ".join(f"{label}: {value}." for label, value in parts if value)


def embed_item_metadata(store: Store, dataset: str, encoder: Encoder, *, name: str | None = None,
                        profile_set: str | None = None,
                        progress: Callable[[int, int], None] | None = None) -> EmbedReport:
    """Embed each item's text (title, year, genres: what an item prompt shows), no LLM answer in it; with
    ``profile_set`` (item profiles) the item's profile follows its text where it has one.

    LEARN's item input ("Title: ... plus its item profile when present"), and without profiles the no-LLM
    control for item knowledge (KAR's factual knowledge): the encoder sees what the LLM was told about the item,
    without what the LLM added.
    """
    ensure_dataset(store, dataset)
    fields = store.item_fields(dataset)
    ids = sorted(store.entity_ids(dataset, "item"))
    texts = [item_text(fields.get(i, {})) for i in ids]
    params: dict = {}
    if profile_set is not None:
        pset = store.profile_set(dataset, profile_set)
        if pset is None or pset.entity != "item":
            available = ", ".join(p.name for p in store.profile_sets(dataset) if p.entity == "item") or "none yet"
            raise MissingInputError(f"There is no item profile set '{profile_set}' of {dataset} to add to the item "
                                    f"texts (item sets: {available}).", f"kt profile --dataset {dataset} --entity item")
        frame = store.profiles(dataset, profile_set)
        answers = dict(zip(frame["entity_id"].astype(str), frame["text"]))
        texts = [f"{text} {answers[i]}" if i in answers else text for i, text in zip(ids, texts)]
        params = {"profile_set": profile_set, "model": pset.model, "template_hash": pset.template_hash}
    suffix = f"-{profile_set}" if profile_set else ""
    return embed_texts(store, dataset, "item", ids, texts, encoder,
                       name=name or f"item-metadata{suffix}-{encoder.name.replace(':', '-')}",
                       source="item-metadata-text", params=params, progress=progress)
