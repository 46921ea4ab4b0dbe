"""Time to make, store and export each split scheme of ml-100k (target: under 1 s); writes docs/split_speed.md.

For each scheme, on a fresh store with ml-100k already imported: ``assign_parts`` alone (the computation),
then ``ensure_split`` (computation and the store write) and ``export_for_recbole`` (RecBole's three files),
each the median of 5 repetitions (a fresh store each time for the last two). One process, one thread.

Usage: python bench/split_speed.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kt_cli.datasets.registry import ensure_dataset  # noqa: E402
from kt_cli.datasets.splits import assign_parts, ensure_split, export_for_recbole, parse_split  # noqa: E402
from kt_cli.store import Store  # noqa: E402

SCHEMES = {"time 70/10/20 (default)": ("0.7,0.1,0.2", "time"), "random 70/10/20": ("0.7,0.1,0.2", "random"),
           "global 70/10/20": ("0.7,0.1,0.2", "global"), "leave-one-out": ("loo", "time")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "split_speed.md")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.duckdb"
        with Store.open(template) as store:
            ensure_dataset(store, "ml-100k")
            interactions = store.interactions("ml-100k")
        for label, (split, order) in SCHEMES.items():
            spec = parse_split(split, order)
            compute, make, export = [], [], []
            for repeat in range(args.repeats):
                tick = time.perf_counter()
                assign_parts(interactions, spec)
                compute.append(time.perf_counter() - tick)
                path = Path(tmp) / f"s{repeat}-{len(rows)}.duckdb"
                path.write_bytes(template.read_bytes())
                with Store.open(path) as store:
                    tick = time.perf_counter()
                    sid = ensure_split(store, "ml-100k", spec)
                    make.append(time.perf_counter() - tick)
                    tick = time.perf_counter()
                    export_for_recbole(store, sid)
                    export.append(time.perf_counter() - tick)
            rows.append((label, *(statistics.median(x) for x in (compute, make, export))))
            print(f"{label:26} compute {rows[-1][1]:.3f} s, make and store {rows[-1][2]:.3f} s, export "
                  f"{rows[-1][3]:.3f} s", flush=True)
    lines = ["# Split speed on ml-100k", "",
             f"Written by `python bench/split_speed.py --repeats {args.repeats}` on {platform.machine()}, "
             f"Python {platform.python_version()}: medians of {args.repeats} repetitions, in seconds. Target: "
             "making and exporting a split under 1 s.", "",
             "| scheme | compute (assign_parts) | make and store (ensure_split) | export for RecBole | make + export |",
             "|---|---|---|---|---|"]
    lines += [f"| {label} | {c:.3f} | {m:.3f} | {e:.3f} | {m + e:.3f} |" for label, c, m, e in rows]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
