"""Prompt templates and the rendering of a user's (or item's) history into chat messages.

A template is a text file with a ``[system]`` and a ``[user]`` section and ``{placeholders}``; the
shipped ones (movies, music, generic; one per entity) live in ``templates/`` beside this module and can
be copied and passed with ``--prompt FILE``. Placeholders are checked before any LLM call, so a typo
fails at once with the list of valid names.

Which ratings a prompt may show: by default only the training part of a split (kt train's default split
unless told otherwise), so no profile is written from the items a model is later validated and tested on.
``HistoryRules(split=None)`` shows every rating, as the reference did; the shipped ml-100k profiles were
made that way (profiles_cache/README.md), so experiments on them carry that leak.

History rule (documented in docs/profiles.md): items rated at or above ``like_threshold`` are *liked*,
at or below ``dislike_threshold`` *disliked*, the rest are counted but not shown. Ratings are walked
from the most recent backwards and each line is kept while the estimated size of all kept lines stays
within ``token_budget`` (estimate: one token per four characters, rounded up), so a long history keeps
its most recent items and both lists keep their relative share of recent activity.
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from dataclasses import dataclass
from pathlib import Path

from collections.abc import Sequence

import numpy as np
import pandas as pd

from kt_cli.datasets.fields import BRAND_FIELDS, TITLE_FIELDS, first_field, genres, year
from kt_cli.datasets.splits import SplitSpec
from kt_cli.errors import UsageError

TEMPLATE_DIR = Path(__file__).parent / "templates"
DOMAINS = ("movies", "music", "generic")
USER_PLACEHOLDERS = ("liked", "disliked", "n_rated", "n_liked", "n_disliked", "n_shown", "max_rating",
                     "like_threshold", "dislike_threshold", "dataset")
ITEM_PLACEHOLDERS = ("title", "year", "genres", "brand", "fields", "n_ratings", "mean_rating", "max_rating",
                     "dataset")
PLACEHOLDERS = {"user": USER_PLACEHOLDERS, "item": ITEM_PLACEHOLDERS}
# Item placeholders computed from ratings: only a template that uses one depends on a split.
ITEM_STATISTICS = ("n_ratings", "mean_rating")

Messages = list[dict[str, str]]


def estimate_tokens(text: str) -> int:
    """The budget's token estimate: one token per four characters, rounded up (no tokenizer needed)."""
    return math.ceil(len(text) / 4)


def domain_for(dataset: str) -> str:
    """The default template domain of a dataset name: MovieLens -> movies, CD/music/vinyl -> music."""
    lowered = dataset.lower()
    if lowered.startswith(("ml-", "movielens")) or "movie" in lowered:
        return "movies"
    if any(word in lowered for word in ("cd", "music", "vinyl")):
        return "music"
    return "generic"


@dataclass(frozen=True)
class Template:
    """A parsed prompt template: where it came from, its two messages and its content hash."""

    name: str  # "movies.user" for a shipped template, the file path otherwise
    entity: str
    system: str
    user: str
    shipped: bool = False

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.system}\0{self.user}".encode()).hexdigest()[:16]

    @property
    def placeholders(self) -> set[str]:
        return {f for part in (self.system, self.user) for _, f, _, _ in string.Formatter().parse(part) if f}

    @property
    def reads_ratings(self) -> bool:
        """Whether the rendered prompt depends on ratings (and so on the split that chooses them): always
        for user prompts, for item prompts only when they use rating statistics."""
        return self.entity == "user" or bool(self.placeholders & set(ITEM_STATISTICS))

    def render(self, values: dict[str, object]) -> Messages:
        messages = [{"role": "user", "content": self.user.format(**values).strip()}]
        if self.system.strip():
            messages.insert(0, {"role": "system", "content": self.system.format(**values).strip()})
        return messages


def _parse(text: str, name: str, entity: str, shipped: bool) -> Template:
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        header = line.strip().lower()
        if header in ("[system]", "[user]"):
            current = header[1:-1]
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
        elif line.strip() and not line.lstrip().startswith("#"):
            raise UsageError(f"Prompt template {name}: text before the first [system] or [user] section "
                             f"('{line.strip()[:40]}'). Start the file with a [user] line.")
    if not "\n".join(sections.get("user", [])).strip():
        raise UsageError(f"Prompt template {name} has no [user] section; add a line '[user]' followed by "
                         "the prompt text.")
    template = Template(name, entity, "\n".join(sections.get("system", [])), "\n".join(sections["user"]), shipped)
    valid = PLACEHOLDERS[entity]
    for part in (template.system, template.user):
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(part) if f is not None}
        except ValueError as e:
            raise UsageError(f"Prompt template {name} is not a valid template ({e}); write literal braces "
                             "as {{ and }}.") from e
        unknown = sorted(f for f in fields if f not in valid)
        if unknown:
            raise UsageError(
                f"Prompt template {name} uses unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}"
                f". Valid placeholders for {entity} prompts: {', '.join('{' + v + '}' for v in valid)}."
            )
    return template


def load_template(entity: str, *, domain: str | None = None, path: Path | None = None) -> Template:
    """The shipped template for ``domain`` and ``entity``, or the file at ``path``."""
    if path is not None:
        if not path.is_file():
            raise UsageError(f"Prompt file {path} does not exist. Copy one of {TEMPLATE_DIR}/*.txt and "
                             "pass its path with --prompt.")
        return _parse(path.read_text(encoding="utf-8"), str(path), entity, shipped=False)
    if domain not in DOMAINS:
        raise UsageError(f"Unknown template '{domain}'. Valid templates: {', '.join(DOMAINS)}; or pass "
                         "your own file with --prompt FILE.")
    shipped = TEMPLATE_DIR / f"{domain}.{entity}.txt"
    return _parse(shipped.read_text(encoding="utf-8"), f"{domain}.{entity}", entity, shipped=True)


@dataclass(frozen=True)
class HistoryRules:
    """Which ratings a prompt shows (``split``: the training part of that split; None: all of them) and
    how they become its liked/disliked lists."""

    like_threshold: float = 4.0
    dislike_threshold: float = 2.0
    token_budget: int = 250
    split: SplitSpec | None = SplitSpec()

    def as_dict(self) -> dict[str, object]:
        return {"like_threshold": self.like_threshold, "dislike_threshold": self.dislike_threshold,
                "token_budget": self.token_budget, "history": self.scope}

    @property
    def scope(self) -> str:
        if self.split is None:
            return "all ratings"
        return f"training part of split {self.split.label}"

    @property
    def name_suffix(self) -> str:
        """Set names say when a set was not made from the default split's training part, so sets from
        different histories never share a name: ``-allhistory`` or ``-train-0.8-0.1-0.1-s7``."""
        if self.split is None:
            return "-allhistory"
        if self.split == SplitSpec():
            return ""
        return "-train-" + self.split.label.replace("/", "-").replace(" seed ", "-s").replace(" ", "-")


def item_line(fields: dict[str, str], rating: float | None = None) -> str:
    """One history line: ``- Title (1995) [Genre, Genre] 4/5``-like, empty parts left out."""
    title = first_field(fields, TITLE_FIELDS) or "untitled"
    when = year(fields)
    tags = genres(fields)
    line = f"- {title}" + (f" ({when})" if when and when not in title else "")
    if tags:
        line += f" [{', '.join(tags[:4])}]"
    if rating is not None:
        line += f" {rating:g}"
    return line


Shown = list[tuple[str, str]]  # (item id, history line), most recent first
History = tuple[Sequence[str], Sequence[float]]  # one user's item ids and ratings, most recent first


def histories(inter: pd.DataFrame) -> dict[str, History]:
    """Each user's history in the order a prompt reads it (most recent first, ties by item id), from one sort of
    all interactions: sorting per user costs milliseconds each, minutes for 100,000 users."""
    ordered = inter.sort_values(["user_id", "timestamp", "item_id"], ascending=[True, False, True], kind="stable")
    users = ordered["user_id"].to_numpy()
    item_ids, ratings = ordered["item_id"].to_numpy(), ordered["rating"].to_numpy()
    bounds = np.flatnonzero(users[1:] != users[:-1]) + 1
    starts, stops = np.concatenate([[0], bounds]), np.concatenate([bounds, [len(users)]])
    return {str(users[a]): (item_ids[a:b], ratings[a:b]) for a, b in zip(starts, stops) if b > a}


def shown_items(history: History, items: dict[str, dict[str, str]], rules: HistoryRules,
                lines: dict[str, str] | None = None) -> tuple[Shown, Shown]:
    """The liked and disliked lines a prompt shows, with their item ids (see the history rule above). ``lines``
    caches each item's line without its rating, shared across users."""
    lines = {} if lines is None else lines
    liked: Shown = []
    disliked: Shown = []
    used = 0
    for item, rating in zip(*history):
        side = liked if rating >= rules.like_threshold else disliked if rating <= rules.dislike_threshold \
            else None
        if side is None:
            continue
        if item not in lines:
            lines[item] = item_line(items.get(item, {}))
        line = f"{lines[item]} {rating:g}"
        cost = estimate_tokens(line + "\n")
        if used + cost > rules.token_budget:
            break
        side.append((item, line))
        used += cost
    return liked, disliked


def user_values(history: History, items: dict[str, dict[str, str]], rules: HistoryRules,
                max_rating: float, dataset: str, lines: dict[str, str] | None = None) -> dict[str, object]:
    """Placeholder values for one user's history (from :func:`histories`)."""
    liked, disliked = shown_items(history, items, rules, lines)
    ratings = np.asarray(history[1], dtype=float)
    n_liked = int((ratings >= rules.like_threshold).sum())
    n_disliked = int((ratings <= rules.dislike_threshold).sum())
    return {"liked": "\n".join(line for _, line in liked) or "(none)",
            "disliked": "\n".join(line for _, line in disliked) or "(none)",
            "n_rated": len(ratings), "n_liked": n_liked, "n_disliked": n_disliked,
            "n_shown": len(liked) + len(disliked), "max_rating": f"{max_rating:g}",
            "like_threshold": f"{rules.like_threshold:g}", "dislike_threshold": f"{rules.dislike_threshold:g}",
            "dataset": dataset}


def item_values(fields: dict[str, str], ratings: pd.Series, max_rating: float, dataset: str) -> dict[str, object]:
    """Placeholder values for one item; ``ratings`` are the ratings a prompt may count (the training part of
    the split), empty when the template uses no rating statistics."""
    details = "; ".join(f"{k}: {v}" for k, v in fields.items() if v)
    return {"title": first_field(fields, TITLE_FIELDS) or "untitled", "year": year(fields) or "year unknown",
            "genres": ", ".join(genres(fields)) or "unknown", "brand": first_field(fields, BRAND_FIELDS) or
            "unknown", "fields": details or "none", "n_ratings": len(ratings),
            "mean_rating": f"{ratings.mean():.1f}" if len(ratings) else "n/a", "max_rating": f"{max_rating:g}",
            "dataset": dataset}


def prompt_hash(messages: Messages) -> str:
    """Content hash of the rendered messages (what the LLM is actually asked)."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]
