"""Spot-check counts over a shipped profile file: the figures quoted in profiles_cache/README.md.

Counts, over every profile in the file: the stock opening and stock phrases, people the profiles name
(the dataset ends in 1998, so names that only became known later are invented), titles quoted despite
the instruction, answers cut at the token limit, and answer length and cost. Reading a sample by hand is
still needed for what counts cannot see (do the named genres match the history?).

Usage: python bench/profile_check.py [profiles_cache/ml-100k.user.qwen2.5-coder-1.5b.jsonl]  (or the -allhistory file)
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "profiles_cache" / "ml-100k.user.qwen2.5-coder-1.5b.jsonl"
PHRASES = {"opening": "This viewer's taste leans towards", "acclaim": "critically acclaimed"}
PEOPLE = ("Leonardo DiCaprio", "Tom Hanks", "Christopher Nolan", "Quentin Tarantino", "Steven Spielberg",
          "Woody Allen", "Martin Scorsese")
TITLE = re.compile(r'"[A-Z][^"]{2,60}"|such as [A-Z]')


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    lines = path.read_text().splitlines()
    header, rows = json.loads(lines[0]), [json.loads(line) for line in lines[1:]]
    texts = [r["text"] for r in rows]
    n = len(rows)
    ids = sorted(int(r["entity_id"]) for r in rows)
    print(f"{path.name}: {n} profiles (header says {header['n_profiles']}), users {ids[0]}-{ids[-1]}, "
          f"model {header['model']}, template {header['template']}")
    print(f"starts '{PHRASES['opening']}': {sum(t.startswith(PHRASES['opening']) for t in texts)}")
    print(f"says '{PHRASES['acclaim']}': {sum(PHRASES['acclaim'] in t for t in texts)}")
    for person in PEOPLE:
        print(f"names {person}: {sum(person in t for t in texts)}")
    print(f"quotes a title or lists 'such as ...': {sum(bool(TITLE.search(t)) for t in texts)}")
    print(f"cut at the token limit (finish_reason length): {sum(r['finish_reason'] == 'length' for r in rows)}")
    words = [len(t.split()) for t in texts]
    print(f"words: median {statistics.median(words):.0f}, min {min(words)}, max {max(words)}")
    print(f"tokens in / out: mean {statistics.mean(r['tokens_in'] for r in rows):.0f} / "
          f"{statistics.mean(r['tokens_out'] for r in rows):.0f}")
    print(f"distinct texts: {len(set(texts))}")


if __name__ == "__main__":
    main()
