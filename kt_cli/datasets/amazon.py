"""Turn the public Amazon review dumps (2014, 2018, 2023 releases) into RecBole atomic files.

The three releases disagree on column order, key names, timestamp units and even on being JSON at all
(2014 metadata lines are Python dict literals), and the larger categories are several GB. So every
input is streamed line by line, a format is recognised per file (or per line for JSON), and only one
``(user, item) -> (rating, timestamp)`` dict is held in memory.
"""

from __future__ import annotations

import ast
import csv
import gzip
import html
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any, TextIO

from kt_cli.errors import DataFormatError, UsageError

INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"
ITEM_HEADER = "item_id:token\ttitle:token_seq\tcategories:token_seq\tbrand:token\tyear:token\tprice:token"

USER_FIRST = ("user", "item", "rating", "timestamp")  # 2014 "ratings only" CSV
ITEM_FIRST = ("item", "user", "rating", "timestamp")  # 2018 "ratings only" CSV
_ROLES = USER_FIRST
_HEADER_ROLES = {"user_id": "user", "parent_asin": "item", "asin": "item"}  # 2023 CSV header names
_SAMPLE_ROWS = 1000
_BAD_LINE_SHARE = 0.01
# The 2023 release counts milliseconds; seconds stay below 1e11 until the year 5138, milliseconds of
# any review (1996 onwards) are above it, so the magnitude tells the unit in every format.
_MS_THRESHOLD = 1e11
_ASIN = re.compile(r"[0-9A-Z]{10}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TAG = re.compile(r"<[^>]*>")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")

_Interaction = tuple[str, str, float, float]


@dataclass(frozen=True)
class AmazonImportReport:
    """What an import wrote, so the CLI can show it and a user can judge the dump's quality."""

    n_interactions: int
    n_users: int
    n_items: int
    n_items_with_meta: int
    n_duplicates: int
    n_bad_lines: int
    ratings_columns: tuple[str, ...] | None
    files: list[Path]

    @property
    def n_items_without_meta(self) -> int:
        """Interacted items that got no metadata row (all of them when no metadata was given)."""
        return self.n_items - self.n_items_with_meta


@dataclass
class _Tally:
    """Bad-line bookkeeping for one file: dumps have a few broken lines, a wrong format has many."""

    path: Path
    expected: str
    lines: int = 0
    bad: int = 0
    first_bad: tuple[int, str] | None = None

    def reject(self, lineno: int, reason: str) -> None:
        self.bad += 1
        if self.first_bad is None:
            self.first_bad = (lineno, reason)

    def check(self) -> None:
        if self.first_bad is not None and self.bad > self.lines * _BAD_LINE_SHARE:
            lineno, reason = self.first_bad
            raise DataFormatError(
                f"{self.path}: {self.bad} of {self.lines} lines are malformed (more than 1%). "
                f"The first is line {lineno} ({reason}); expected {self.expected}."
            )


def import_amazon(out_dir: Path, name: str, *, ratings: Path | None = None,
                  reviews: Path | None = None, meta: Path | None = None,
                  ratings_columns: tuple[str, ...] | None = None) -> AmazonImportReport:
    """Write ``<name>.inter`` (and ``<name>.item`` when ``meta`` is given) into ``out_dir``.

    ``ratings`` is a "ratings only" CSV, ``reviews`` a JSON-lines review dump; give exactly one.
    ``ratings_columns`` overrides the guessed column order of a ratings CSV.
    """
    if (ratings is None) == (reviews is None):
        raise UsageError("Give exactly one of ratings (a 'ratings only' CSV) or reviews (JSON lines).")
    if ratings_columns is not None and ratings is None:
        raise UsageError("ratings_columns only applies to a ratings CSV, not to reviews.")
    if ratings_columns is not None and sorted(ratings_columns) != sorted(_ROLES):
        raise UsageError(f"ratings_columns must order {', '.join(_ROLES)}; got {ratings_columns}.")
    if not _NAME.fullmatch(name):
        raise UsageError(f"Dataset name '{name}' must be letters, digits, '.', '_' or '-'.")
    source = next(Path(p) for p in (ratings, reviews) if p is not None)
    for path in (source, meta):
        if path is not None and not Path(path).is_file():
            raise DataFormatError(f"Amazon dump not found: {path}")

    if ratings is not None:
        columns, records, parse = _ratings_source(source, ratings_columns)
        expected = (f"{len(columns)} comma-separated fields ({','.join(columns)}) "
                    "with a numeric rating and timestamp")
    else:
        columns, records, parse = None, _lines(source), _review_fields
        expected = ("a JSON object with reviewerID, asin, overall, unixReviewTime (2014/2018) "
                    "or user_id, parent_asin, rating, timestamp (2023)")
    tally = _Tally(source, expected)
    interactions, n_duplicates = _collect(records, parse, tally)
    tally.check()
    if not interactions:
        raise DataFormatError(f"{source} holds no interactions; expected {expected}.")

    out_dir.mkdir(parents=True, exist_ok=True)
    inter_path, files = out_dir / f"{name}.inter", [out_dir / f"{name}.inter"]
    items = {item for _, item in interactions}
    n_with_meta, n_meta_bad = 0, 0
    # Nested writers: a failure in the metadata removes both temp files, so no half import remains.
    with _atomic_writer(inter_path) as out:
        out.write(INTER_HEADER + "\n")
        for (user, item), (rating, ts) in interactions.items():
            out.write(f"{user}\t{item}\t{_fmt(rating)}\t{_fmt(ts)}\n")
        if meta is not None:
            files.append(out_dir / f"{name}.item")
            with _atomic_writer(files[-1]) as item_out:
                n_with_meta, n_meta_bad = _write_items(Path(meta), items, item_out)
    return AmazonImportReport(
        n_interactions=len(interactions), n_users=len({u for u, _ in interactions}),
        n_items=len(items), n_items_with_meta=n_with_meta,
        n_duplicates=n_duplicates, n_bad_lines=tally.bad + n_meta_bad,
        ratings_columns=columns, files=files)


def _ratings_source(path: Path, override: tuple[str, ...] | None
                    ) -> tuple[tuple[str, ...], Iterator[tuple[int, str]], Callable[[str], _Interaction]]:
    """Decide the column order from the first rows, then hand back every data line and its parser.

    A first row naming a ``rating`` column is a header (2023 CSVs) and gives the order; an explicit
    ``override`` wins over both header and guess.
    """
    lines = _lines(path)
    head = list(islice(lines, _SAMPLE_ROWS))
    if head and "rating" in head[0][1].lower():
        header = [c.strip().lower() for c in _split(head[0][1])]
        head = head[1:]
        columns = tuple(_HEADER_ROLES.get(c, c) for c in header)
        if not set(_ROLES) <= set(columns):
            raise DataFormatError(f"{path}: header {','.join(header)} lacks one of "
                                  "user_id, parent_asin, rating, timestamp.")
    else:
        columns = _guess_order(text.split(",") for _, text in head)  # headerless dumps never quote
    if override is not None:
        columns = tuple(override)
    at = {role: columns.index(role) for role in _ROLES}

    def parse(text: str) -> _Interaction:
        row = _split(text)
        if len(row) != len(columns):
            raise ValueError(f"{len(row)} fields instead of {len(columns)}")
        return (row[at["user"]], row[at["item"]], _number(row[at["rating"]], "rating"),
                _number(row[at["timestamp"]], "timestamp"))

    return columns, chain(head, lines), parse


def _guess_order(rows: Iterable[list[str]]) -> tuple[str, ...]:
    """Pick user-first (2014) or item-first (2018) by which column looks more like ASINs.

    An ASIN is 10 upper-case alphanumerics, usually starting with a digit or "B0"; a user id usually
    starts with "A" and is 12-28 characters long. Every 4-field row scores both orders; a tie keeps
    the 2014 order.
    """
    def fit(user: str, item: str) -> int:
        asin = _ASIN.fullmatch(item) is not None
        typical_asin = asin and (item[0].isdigit() or item.startswith("B0"))
        return asin + typical_asin + user.startswith("A") + (12 <= len(user) <= 28)

    user_first = item_first = 0
    for row in rows:
        if len(row) == len(_ROLES):
            user_first += fit(row[0], row[1])
            item_first += fit(row[1], row[0])
    return ITEM_FIRST if item_first > user_first else USER_FIRST


def _review_fields(text: str) -> _Interaction:
    """The four kept values of a review line; 2023 lines are told apart by their ``user_id`` key."""
    obj = _parse_object(text)
    if "user_id" in obj:
        values = (obj["user_id"], obj.get("parent_asin") or obj.get("asin"), obj.get("rating"),
                  obj.get("timestamp"))
    else:
        values = (obj.get("reviewerID"), obj.get("asin"), obj.get("overall"),
                  obj.get("unixReviewTime"))
    user, item, rating, ts = values
    if not isinstance(user, str) or not isinstance(item, str):
        raise ValueError("no user or item id")
    return user, item, _number(rating, "rating"), _number(ts, "timestamp")


def _collect(records: Iterable[tuple[int, str]], parse: Callable[[str], _Interaction],
             tally: _Tally) -> tuple[dict[tuple[str, str], tuple[float, float]], int]:
    """Parse every line, keeping the latest rating of each (user, item) pair."""
    interactions: dict[tuple[str, str], tuple[float, float]] = {}
    duplicates = 0
    for lineno, text in records:
        tally.lines += 1
        try:
            user, item, rating, ts = parse(text)
            user, item = _clean(user), _clean(item)
            if not user or not item:
                raise ValueError("empty user or item id")
        except ValueError as e:
            tally.reject(lineno, str(e))
            continue
        ts = ts / 1000 if ts >= _MS_THRESHOLD else ts
        previous = interactions.get((user, item))
        if previous is not None:
            duplicates += 1
            if previous[1] > ts:
                continue
        interactions[(user, item)] = (rating, ts)
    return interactions, duplicates


def _write_items(path: Path, wanted: set[str], out: TextIO) -> tuple[int, int]:
    """Stream metadata rows of interacted items into ``out``; return (items written, bad lines)."""
    tally = _Tally(path, "a JSON object (or a 2014 Python dict literal) with asin or parent_asin")
    written: set[str] = set()
    out.write(ITEM_HEADER + "\n")
    for lineno, text in _lines(path):
        tally.lines += 1
        try:
            obj = _parse_object(text)
            item = obj.get("parent_asin") or obj.get("asin")
            item = _clean(item) if isinstance(item, str) else ""
            if not item:
                raise ValueError("no asin or parent_asin")
        except ValueError as e:
            tally.reject(lineno, str(e))
            continue
        if item in wanted and item not in written:  # 2018 metadata repeats some items
            written.add(item)
            categories = " | ".join(dict.fromkeys(
                c for c in map(_text, _flatten([obj.get("main_category"), obj.get("categories"),
                                                obj.get("category")])) if c))
            fields = [item, _text(obj.get("title")), categories,
                      _text(obj.get("brand") or obj.get("store")), _year(obj), _text(obj.get("price"))]
            out.write("\t".join(fields) + "\n")
    tally.check()
    return len(written), tally.bad


def _year(obj: dict[str, Any]) -> str:
    """The first plausible year in ``date`` (2014/2018) or a 2023 ``details`` date, else ""."""
    details = obj.get("details")
    dated = [v for k, v in details.items() if "date" in str(k).lower()] if isinstance(details, dict) else []
    for date in [obj.get("date"), *dated]:
        match = _YEAR.search(date) if isinstance(date, str) else None
        if match:
            return match.group(1)
    return ""


def _parse_object(text: str) -> dict[str, Any]:
    """JSON first; 2014 dumps are Python dict literals with single quotes, so fall back to those."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        try:
            obj = ast.literal_eval(text)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as e:
            raise ValueError("neither JSON nor a Python dict literal") from e
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    return obj


def _flatten(value: Any) -> Iterator[Any]:
    """2014 categories are lists of lists, 2018/2023 plain lists; yield the leaves in order."""
    if isinstance(value, (list, tuple)):
        for element in value:
            yield from _flatten(element)
    elif value is not None:
        yield value


def _text(value: Any) -> str:
    """Metadata as one line: tags dropped, entities decoded, whitespace (tabs, newlines) collapsed."""
    if value is None:
        return ""
    return " ".join(html.unescape(_TAG.sub(" ", str(value))).split())


def _clean(value: str) -> str:
    return " ".join(value.split())


def _number(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"non-numeric {what} {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"non-finite {what} {value!r}")
    return number


def _fmt(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def _split(text: str) -> list[str]:
    """One CSV line; parsed alone so a stray quote spoils only its own line."""
    try:
        return next(csv.reader([text]))
    except (csv.Error, StopIteration) as e:
        raise ValueError(f"unreadable CSV ({e})") from e


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers, gzip or plain by magic bytes, never all at once."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    opened = (gzip.open(path, "rt", encoding="utf-8", errors="replace") if gzipped
              else path.open(encoding="utf-8", errors="replace"))
    lineno = 0
    try:
        with opened as lines:
            for lineno, line in enumerate(lines, 1):
                if line.strip():
                    yield lineno, line.rstrip("\r\n")
    except (OSError, EOFError) as e:  # a truncated or corrupt gzip stream
        raise DataFormatError(f"{path}: unreadable after line {lineno} ({e}).") from e


@contextmanager
def _atomic_writer(path: Path) -> Iterator[TextIO]:
    """Write to a temp file beside ``path`` and rename it only on success, so no truncated file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            yield out
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
