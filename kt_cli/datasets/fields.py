"""Reading an item's descriptive fields whatever the dataset calls them.

MovieLens names them ``movie_title``, ``release_year`` and ``class``; the Amazon importer writes
``title``, ``year``, ``categories`` and ``brand``; user-registered atomic files may use others. Every
consumer (metadata vectors, LLM prompts) reads them through these helpers, so one list of aliases
decides what counts as a title, a year or a genre.
"""

from __future__ import annotations

import re

TITLE_FIELDS = ("movie_title", "title", "name", "album", "item_name")
YEAR_FIELDS = ("release_year", "year")
TOKEN_FIELDS = ("class", "genre", "genres", "categories", "category")
BRAND_FIELDS = ("brand", "artist", "store", "publisher")

_YEAR = re.compile(r"(1[89]|20)\d\d")


def first_field(fields: dict[str, str], names: tuple[str, ...]) -> str:
    """The first non-empty value among ``names``, or ''."""
    for name in names:
        value = fields.get(name)
        if value:
            return str(value).strip()
    return ""


def genres(fields: dict[str, str]) -> list[str]:
    """Genre or category tokens; ``|`` separates multi-word categories, else whitespace does."""
    value = first_field(fields, TOKEN_FIELDS)
    if not value:
        return []
    parts = value.split("|") if "|" in value else value.split()
    return [p.strip() for p in parts if p.strip()]


def year(fields: dict[str, str]) -> str:
    """A four-digit year, or ''."""
    match = _YEAR.search(first_field(fields, YEAR_FIELDS))
    return match.group(0) if match else ""


def decade(fields: dict[str, str]) -> str | None:
    """'1990s' style decade of the item's year, or None."""
    found = year(fields)
    return found[:3] + "0s" if found else None
