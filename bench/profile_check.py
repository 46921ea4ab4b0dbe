"""Spot-check counts over a shipped profile file: the figures quoted in profiles_cache/README.md.

User files: the stock opening and phrases, people the profiles name (the dataset ends in 1998, so names
that only became known later are invented), titles quoted despite the instruction, answers cut at the
token limit, length and cost. Item files: answers cut at the limit, the release year stated in the text
against the dataset's (a wrong year is a checkable invented fact), how many different films each of the
most named people is credited in (one actor in hundreds of films is invention), and length and cost.
Reading a sample by hand is still needed for what counts cannot see.

Usage: python bench/profile_check.py [FILE]   (default: the leak-free user file; any profiles_cache/*.jsonl)
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT = ROOT / "profiles_cache" / "ml-100k.user.qwen2.5-coder-1.5b.jsonl"
PHRASES = {"opening": "This viewer's taste leans towards", "acclaim": "critically acclaimed"}
PEOPLE = ("Leonardo DiCaprio", "Tom Hanks", "Christopher Nolan", "Quentin Tarantino", "Steven Spielberg",
          "Woody Allen", "Martin Scorsese")
TITLE = re.compile(r'"[A-Z][^"]{2,60}"|such as [A-Z]')
YEAR = re.compile(r"\b(19[0-9]{2}|20[0-2][0-9])\b")
NAME = re.compile(r"\b([A-Z][a-z]+(?: (?:[A-Z]\.|De|Di|Da|Van|Von|Le|La|Del))? [A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b")
NOT_PEOPLE = {"Academy Award", "Golden Globe", "Best Picture", "Best Actor", "Best Actress", "Best Director",
              "United States", "New York", "Los Angeles", "World War", "Star Wars", "Star Trek", "James Bond",
              "Best Original", "Best Supporting", "Best Foreign", "Cannes Film", "Film Festival", "Palme Or",
              "Feature Film", "Best Animated", "Animated Feature", "Visual Effects", "Science Fiction"}


def common(rows: list[dict]) -> None:
    texts = [r["text"] for r in rows]
    print(f"cut at the token limit (finish_reason length): {sum(r['finish_reason'] == 'length' for r in rows)}")
    words = [len(t.split()) for t in texts]
    print(f"words: median {statistics.median(words):.0f}, min {min(words)}, max {max(words)}")
    print(f"tokens in / out: mean {statistics.mean(r['tokens_in'] for r in rows):.0f} / "
          f"{statistics.mean(r['tokens_out'] for r in rows):.0f}; seconds per answer (slots busy at once): median "
          f"{statistics.median(r['seconds'] for r in rows):.1f}")
    print(f"distinct texts: {len(set(texts))}")


def users(rows: list[dict]) -> None:
    texts = [r["text"] for r in rows]
    print(f"starts '{PHRASES['opening']}': {sum(t.startswith(PHRASES['opening']) for t in texts)}")
    print(f"says '{PHRASES['acclaim']}': {sum(PHRASES['acclaim'] in t for t in texts)}")
    for person in PEOPLE:
        print(f"names {person}: {sum(person in t for t in texts)}")
    print(f"quotes a title or lists 'such as ...': {sum(bool(TITLE.search(t)) for t in texts)}")


def items(rows: list[dict], dataset: str) -> None:
    from kt_cli.datasets.fields import year
    from kt_cli.datasets.registry import ensure_dataset
    from kt_cli.store import Store

    with Store.open(ROOT / "bench" / "profile_check.duckdb") as store:
        ensure_dataset(store, dataset)
        fields = store.item_fields(dataset)
    stated = wrong = 0
    for row in rows:
        release = year(fields.get(row["entity_id"], {}))
        years = set(YEAR.findall(row["text"]))
        if release and years:
            stated += 1
            wrong += release not in years
    print(f"states a year: {stated}; none of them the release year: {wrong}")
    credited = Counter(name for r in rows for name in set(NAME.findall(r["text"])) if name not in NOT_PEOPLE)
    print("most named (films credited): " + ", ".join(f"{n} {c}" for n, c in credited.most_common(12)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT,
                        help="a profiles_cache/*.jsonl file (default: the leak-free user file)")
    path = parser.parse_args().file
    if not path.is_file():
        parser.error(f"{path} is not a file; the shipped ones: "
                     + ", ".join(p.name for p in sorted((ROOT / "profiles_cache").glob("*.jsonl"))))
    lines = path.read_text().splitlines()
    header, rows = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    ids = sorted(int(r["entity_id"]) for r in rows)
    print(f"{path.name}: {len(rows)} profiles (header says {header['n_profiles']}), {header['entity']}s "
          f"{ids[0]}-{ids[-1]}, model {header['model']}, template {header['template']}, params {header['params']}")
    common(rows)
    if header["entity"] == "item":
        items(rows, header["dataset"])
    else:
        users(rows)


if __name__ == "__main__":
    main()
