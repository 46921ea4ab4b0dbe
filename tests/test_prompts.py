"""Prompt templates: placeholders checked up front, history split and truncated by the documented rule."""

from pathlib import Path

import pandas as pd
import pytest

from kt_cli.errors import UsageError
from kt_cli.profiles.prompts import (
    DOMAINS, HistoryRules, History, domain_for, estimate_tokens, histories, item_line, item_values, load_template,
    user_values,
)

ITEMS = {str(i): {"movie_title": f"Movie {i}", "release_year": str(1950 + i), "class": "Drama Comedy"}
         for i in range(100)}


def _history(n: int) -> History:
    """Item i rated at time i; ratings cycle 5, 4, 3, 2, 1 (one user's history, most recent first)."""
    frame = pd.DataFrame({"user_id": "u", "item_id": [str(i) for i in range(n)], "rating": [5 - i % 5 for i in range(n)],
                          "timestamp": list(range(n))})
    return histories(frame)["u"]


def test_histories_read_each_user_most_recent_first_ties_by_item_id() -> None:
    frame = pd.DataFrame({"user_id": ["b", "a", "a", "a", "b"], "item_id": ["9", "2", "10", "1", "3"],
                          "rating": [1.0, 2.0, 3.0, 4.0, 5.0], "timestamp": [5, 7, 7, 1, 6]})
    got = {user: (list(ids), list(ratings)) for user, (ids, ratings) in histories(frame).items()}
    assert got == {"a": (["10", "2", "1"], [3.0, 2.0, 4.0]), "b": (["3", "9"], [5.0, 1.0])}


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("entity", ["user", "item"])
def test_every_shipped_template_renders(domain: str, entity: str) -> None:
    template = load_template(entity, domain=domain)
    values = (user_values(_history(10), ITEMS, HistoryRules(), 5, "d") if entity == "user"
              else item_values(ITEMS["3"], pd.Series([4.0, 5.0]), 5, "d"))
    messages = template.render(values)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "{" not in messages[1]["content"]


def test_liked_and_disliked_are_apart_and_neutral_ratings_hidden() -> None:
    values = user_values(_history(10), ITEMS, HistoryRules(like_threshold=4, dislike_threshold=2), 5, "d")
    liked, disliked = values["liked"].splitlines(), values["disliked"].splitlines()
    assert all(line.endswith((" 5", " 4")) for line in liked) and len(liked) == 4
    assert all(line.endswith((" 2", " 1")) for line in disliked) and len(disliked) == 4
    assert values["n_rated"] == 10 and values["n_shown"] == 8


def test_truncation_keeps_the_most_recent_lines_within_budget() -> None:
    rules = HistoryRules(token_budget=60)
    values = user_values(_history(100), ITEMS, rules, 5, "d")
    shown = values["liked"].splitlines() + values["disliked"].splitlines()
    assert sum(estimate_tokens(line + "\n") for line in shown) <= 60
    assert 0 < values["n_shown"] == len(shown) < 80
    newest = [item_line(ITEMS[str(i)], 5 - i % 5) for i in range(99, -1, -1) if i % 5 != 2]
    assert set(shown) == set(newest[: len(shown)])  # exactly the most recent liked/disliked lines


def test_unknown_placeholder_is_named_with_the_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("[user]\nTell me about {likedd}.\n")
    with pytest.raises(UsageError, match=r"\{likedd\}.*Valid placeholders for user prompts: \{liked\}"):
        load_template("user", path=path)


def test_template_without_user_section_or_with_stray_braces_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("[system]\nYou are helpful.\n")
    with pytest.raises(UsageError, match=r"no \[user\] section"):
        load_template("user", path=path)
    path.write_text("[user]\nA { brace\n")
    with pytest.raises(UsageError, match="literal braces"):
        load_template("user", path=path)


def test_unknown_template_name_lists_the_shipped_ones() -> None:
    with pytest.raises(UsageError, match="movies, music, generic"):
        load_template("user", domain="books")


def test_domain_follows_the_dataset_name() -> None:
    assert domain_for("ml-100k") == "movies"
    assert domain_for("amazon-cds") == "music"
    assert domain_for("my-shop") == "generic"


def test_template_hash_changes_with_the_text(tmp_path: Path) -> None:
    path = tmp_path / "mine.txt"
    path.write_text("[user]\n{liked}\n")
    first = load_template("user", path=path).digest
    path.write_text("[user]\n{liked} please\n")
    assert load_template("user", path=path).digest != first
