"""LEARN against popularity, content kNN and ID models, on kt's default split and on the cold-items split;
writes docs/results-learn.md and docs/results-learn.svg.

LEARN's claim (REFERENCE.md) is that representing items by what a frozen LLM makes of their text, not by ids,
pays off on new and long-tail items. This bench measures it on ml-100k with two splits: kt's default (each
user's ratings in time order, 70/10/20) and ``cold-items`` (20% of items, drawn with split seed 42, have every
rating moved to validation and test; the rest split as the default). Arms:

- random: a uniform random score per user and item (seeded): the chance level, the figure "ranks cold items at
  random" means;
- pop: training popularity (the same list for everyone);
- content-knn: item-item cosine in the MiniLM content space, summed over the user's training items (no
  training; the content baseline LEARN must beat to show that alignment adds anything);
- bpr, multvae: ID models (RecBole's, unchanged: a cold item is only ever a sampled negative of BPR and a
  never-positive column of MultVAE's softmax, so both learn to rank cold items last, below chance);
- learn-minilm: LEARN's towers over all-MiniLM-L6-v2 embeddings of "Title: ... Year: ... Genres: ...";
- learn-llm: the same over a frozen LLM's embeddings of the same texts (Qwen2.5-Coder-1.5B through llama.cpp,
  mean-pooled last layer, L2-normalised: LEARN's CEX);
- learn-profiles: the same over MiniLM embeddings of each item's text followed by its shipped LLM profile.

Every trained arm gets the same search: five learning rates (5e-4 to 8e-3, doubling) on validation NDCG@10 with
seed 1 on the default split; then, for LEARN, which items its fine-tune softmax covers (``softmax_items``: the
items training histories hold, or all of them as ID models see them; models/learn.py), chosen on each split's
validation with seed 1 at that rate; then the chosen setting with seeds 1-5 on both splits, test read once per
final run.
Reported on each split and item slice (all, warm, cold; the long tail on the default split): NDCG and Recall
at 10 and 50, mean ± std over seeds, each arm against learn-minilm by a paired t-test over users (per-user
values averaged over seeds) and a Welch t-test over seed means, Holm-adjusted over the four metrics.

Usage:
  python bench/learn.py              # everything (background it: about 3.5 hours on 2 idle cores, LEARN-LLM half of it)
  python bench/learn.py --seeds 1 --epochs 2,1 --arms pop,content-knn,bpr,learn-minilm   # a quick look, no docs
Every finished run is archived in bench/archive/learn/ (summary and per-user test values; commit them as they come)
and a rerun trains only what the archive lacks, so the benchmark can go on across machines; delete a run's files
there to retrain it. The store (bench/learn.duckdb) keeps the weights a machine has. Time it with nothing else
running.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import seedstats  # noqa: E402
from bench.archive import Archive, fingerprint  # noqa: E402
from bench.llmkt import SHIPPED_HISTORY  # noqa: E402
from bench.plots import grouped_bars  # noqa: E402
from kt_cli.datasets.registry import ensure_dataset  # noqa: E402
from kt_cli.evaluation.evaluate import trained_session  # noqa: E402
from kt_cli.evaluation.settings import EvalSettings  # noqa: E402
from kt_cli.knowledge.encoders import LlamaEmbeddings, MiniLM  # noqa: E402
from kt_cli.knowledge.texts import embed_item_metadata  # noqa: E402
from kt_cli.profiles.generate import ProfileJob, generate_profiles  # noqa: E402
from kt_cli.profiles.models import DEFAULT_CHAT_MODEL  # noqa: E402
from kt_cli.profiles.prompts import load_template  # noqa: E402
from kt_cli.store import Store  # noqa: E402
from kt_cli.training.config import TrainConfig  # noqa: E402

DATASET = "ml-100k"
SPLITS = {"default": "0.7,0.1,0.2", "cold-items": "cold-items"}
TRAINED = ("bpr", "multvae", "learn-minilm", "learn-llm", "learn-profiles")
FIXED = ("random", "pop", "content-knn")  # no training: one value each
ARMS = FIXED + TRAINED
SETS = {"learn-minilm": "items-minilm", "learn-llm": "items-llm", "learn-profiles": "items-profiles"}
REFERENCE = "learn-minilm"
SOFTMAX = ("trained", "all")  # LEARN's softmax_items; the first is the model's default
LEARNING_RATES = (5e-4, 1e-3, 2e-3, 4e-3, 8e-3)  # every arm chose 2e-3 from the first three: widened
EPOCHS, FINETUNE, PATIENCE = 100, 30, 5
# The ID models get RecBole's default patience (and bench/llmkt.py's for MultVAE): at 5, three of MultVAE's five
# seeds stopped at epoch 3-4 on the early peak before its KL annealing dip (validation 0.078 against 0.10 for
# the seeds that went on). More patience only strengthens the baselines LEARN is measured against, at seconds a run.
ID_PATIENCE = 10
KS = (10, 50)
METRICS = [f"{m}@{k}" for m in ("ndcg", "recall") for k in KS]
SLICES = {"default": ("all", "warm", "tail<5"), "cold-items": ("all", "warm", "cold")}
LLM = "qwen2.5-coder-1.5b"
INPUTS = fingerprint(ROOT / "profiles_cache" / f"{DATASET}.item.{DEFAULT_CHAT_MODEL}.jsonl")
ARCHIVE = Archive(ROOT / "bench" / "archive" / "learn", INPUTS)  # a partial run's: beside its store (main)


def prepare(store_path: Path, arms: list[str]) -> dict[str, float]:
    """The item sets the arms read (MiniLM's always: content kNN's space) and the number of items with a shipped
    profile."""
    facts = {"items_with_profile": 0}
    with Store.open(store_path) as store:
        embed_item_metadata(store, DATASET, MiniLM(), name="items-minilm")
        if "learn-profiles" in arms:
            job = ProfileJob(DATASET, "item", load_template("item", domain="movies"), DEFAULT_CHAT_MODEL, "local",
                             rules=SHIPPED_HISTORY)
            report = generate_profiles(store, job, lambda: None, cache_dir=ROOT / "profiles_cache", offline=True)
            embed_item_metadata(store, DATASET, MiniLM(), name="items-profiles", profile_set=report.set.name)
            facts["items_with_profile"] = report.set.n_profiles
        if "learn-llm" in arms:
            embed_item_metadata(store, DATASET, LlamaEmbeddings(LLM, threads=2), name="items-llm")
    return facts


def llm_encoder_speed(store_path: Path) -> dict[str, float]:
    """The LLM encoder's speed over every item text through kt into a fresh store (store writes included, the
    model's load timed apart), and a cached rerun in the bench's store: the texts it sent to the model (must be 0)
    and how far the fresh vectors are from the stored ones. Measured once (the bench's first step, nothing else
    running but the cached sets) and kept in the archive, so a bench continued on another machine states the figure
    it measured."""
    kept = ARCHIVE.folder / "llm-encoder-speed.json"
    if kept.exists():
        return json.loads(kept.read_text())
    encoder = LlamaEmbeddings(LLM, threads=2)
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "speed.duckdb") as fresh:
        ensure_dataset(fresh, DATASET)
        started = time.perf_counter()
        encoder.encode(["Title: warm-up"])
        load = time.perf_counter() - started
        started = time.perf_counter()
        made = embed_item_metadata(fresh, DATASET, encoder, name="items-llm")
        seconds = time.perf_counter() - started
        ids, vectors = fresh.knowledge_vectors(DATASET, "items-llm")
    with Store.open(store_path) as store:
        rerun = embed_item_metadata(store, DATASET, LlamaEmbeddings(LLM, threads=2), name="items-llm")
        stored_ids, stored = store.knowledge_vectors(DATASET, "items-llm")
    order = {i: n for n, i in enumerate(stored_ids)}
    drift = float(abs(vectors - stored[[order[i] for i in ids]]).max())
    speed = {"texts": made.encoded, "seconds": seconds, "texts_per_second": made.encoded / seconds,
             "load_seconds": load, "rerun_model_calls": rerun.encoded, "max_abs_diff_to_stored": drift,
             "threads": 2, "measured": time.strftime("%Y-%m-%d")}
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(speed, indent=1) + "\n")
    return speed


def llm_speed_line(speed: dict[str, float]) -> str:
    """The kept speed figure as the report's sentence (the date says when, since it is not remeasured)."""
    return (f"LLM encoder ({LLM}, llama.cpp, {speed['threads']} threads, measured {speed['measured']} with nothing "
            f"else running): {speed['texts']} item texts in {speed['seconds']:.1f} s through kt into a fresh store, "
            f"**{speed['texts_per_second']:.2f} texts/s** (model load {speed['load_seconds']:.1f} s apart); a rerun "
            f"over the stored cache sent {speed['rerun_model_calls']} texts to the model; largest difference between "
            f"the fresh vectors and the stored set the runs read: {speed['max_abs_diff_to_stored']:.2g}.")


def config(arm: str, split: str, seed: int, lr: float, epochs: tuple[int, int], softmax: str = SOFTMAX[0]) -> TrainConfig:
    recbole = {"learning_rate": lr} | ({} if softmax == SOFTMAX[0] else {"softmax_items": softmax})
    common = dict(dataset=DATASET, seed=seed, split=SPLITS[split], distill_epochs=epochs[0], recbole=recbole)
    if arm in SETS:
        return TrainConfig(model="learn", item_knowledge=SETS[arm], finetune_epochs=epochs[1], patience=PATIENCE,
                           **common)
    return TrainConfig(model=arm, finetune_epochs=0, patience=ID_PATIENCE, **common)  # one phase: their own loss


def name(arm: str, split: str, seed: int, softmax: str = SOFTMAX[0]) -> str:
    return f"{arm}-{split}" + ("" if softmax == SOFTMAX[0] else f"-{softmax}") + f"-s{seed}"


class _Fixed(torch.nn.Module):
    """A scorer without training (random, pop, content kNN) in the shape kt's evaluator asks for."""

    def __init__(self, scores) -> None:
        super().__init__()
        self.scores = scores
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # the evaluator reads the device from a parameter

    def full_sort_predict(self, interaction) -> torch.Tensor:
        return self.scores(interaction["user_id"])


def fixed_arms(store_path: Path, run: str) -> dict[str, pd.DataFrame]:
    """Per-user metrics of the untrained arms (FIXED) on the split and id mapping of ``run`` (any run of that split: its
    weights are not read)."""
    session = trained_session(store_path, run)
    counts = torch.from_numpy(session.item_train_counts()).float()
    with Store.open(store_path) as store:
        ids, vectors = store.knowledge_vectors(DATASET, "items-minilm")
    internal = session.parts.internal_ids("item", ids)
    content = torch.zeros((session.parts.num("item"), vectors.shape[1]))
    content[torch.from_numpy(internal[internal > 0])] = torch.from_numpy(vectors[internal > 0]).float()
    content = torch.nn.functional.normalize(content, dim=-1)
    truth = session.truth(0)  # training items per user: what content kNN sums over
    history = torch.zeros((session.parts.num("user"), content.shape[1]))
    for user, items in zip(truth.users, truth.positives):
        history[user] = content[torch.from_numpy(items)].sum(0)
    noise = torch.rand((len(history), content.shape[0]), generator=torch.Generator().manual_seed(0))
    scorers = {"random": lambda users: noise[users], "pop": lambda users: counts.repeat(len(users), 1),
               "content-knn": lambda users: history[users] @ content.T}
    tables = {}
    for arm, scores in scorers.items():
        session.model = _Fixed(scores)
        tables[arm] = session.task.evaluate(session, EvalSettings(ks=KS)).per_user
    return tables


@dataclass
class Choice:
    """What an arm's searches chose, with the validation NDCG@10 of each candidate."""
    lr: float
    rates: dict[float, float]
    softmax: dict[str, str] = field(default_factory=dict)  # {split: setting}; LEARN arms only
    softmax_valid: dict[str, dict[str, float]] = field(default_factory=dict)  # {split: {setting: NDCG@10}}


def run_arm(store_path: Path, arm: str, seeds: list[int],
            epochs: tuple[int, int]) -> tuple[Choice, dict[str, dict[str, TrainConfig]]]:
    """Search the learning rate on the default split's validation (seed 1), for LEARN the softmax's items on each
    split's validation (seed 1), then the finals on both splits ({split: {run: config}}); each stage's runs side by
    side on a local Ray, archived."""
    tune = {lr: f"{arm}-tune-{lr:g}" for lr in LEARNING_RATES}
    done = ARCHIVE.train(store_path, {run: config(arm, "default", 1, lr, epochs) for lr, run in tune.items()},
                         threads=1)
    rates = {lr: done[run]["best_valid"] for lr, run in tune.items()}
    choice = Choice(max(rates, key=rates.get), rates)

    def named(split: str, seed: int, softmax: str = SOFTMAX[0]) -> str:
        # the default split's seed 1 is the search's run of the chosen rate (the same configuration: trained once)
        return tune[choice.lr] if (split, seed, softmax) == ("default", 1, SOFTMAX[0]) else name(arm, split, seed, softmax)

    if arm in SETS:
        probes = {named(split, 1, sm): config(arm, split, 1, choice.lr, epochs, sm) for split in SPLITS for sm in SOFTMAX}
        done = ARCHIVE.train(store_path, probes, threads=1, evaluate=per_user)  # most are finals too: kept whole
        for split in SPLITS:
            choice.softmax_valid[split] = {sm: done[named(split, 1, sm)]["best_valid"] for sm in SOFTMAX}
            choice.softmax[split] = max(SOFTMAX, key=choice.softmax_valid[split].get)
    runs = {split: {named(split, seed, choice.softmax.get(split, SOFTMAX[0])):
                    config(arm, split, seed, choice.lr, epochs, choice.softmax.get(split, SOFTMAX[0]))
                    for seed in seeds} for split in SPLITS}
    ARCHIVE.train(store_path, {run: c for named_runs in runs.values() for run, c in named_runs.items()}, threads=1,
                  evaluate=per_user)
    print(arm, "chose", choice, flush=True)
    return choice, runs


def per_user(store_path: Path, run: str) -> pd.DataFrame:
    """A final run's per-user test values, the slices and metrics the tables read."""
    session = trained_session(store_path, run)
    frame = session.task.evaluate(session, EvalSettings(ks=KS)).per_user
    read = frame["slice"].isin({s for slices in SLICES.values() for s in slices}) & (
        frame["metric"] + "@" + frame["k"].astype(str)).isin(METRICS)
    return frame[read]


def markdown(results: dict[str, dict[str, dict]]) -> list[str]:
    lines = []
    for (split, item_slice), rows in results.items():
        n_users = next(iter(rows.values()))[METRICS[0]]["n_users"]
        lines += seedstats.markdown(f"### {split} split, {item_slice} items ({n_users} test users)", rows, METRICS)
    return lines


def verdicts(results: dict[str, dict[str, dict]]) -> list[str]:
    """The plain reading: on each split and slice, which arm leads NDCG@10 and how LEARN stands against ids."""
    lines = []
    for (split, item_slice), rows in results.items():
        best = max(rows, key=lambda a: rows[a]["ndcg@10"]["mean"])
        learn = max((a for a in rows if a in SETS), key=lambda a: rows[a]["ndcg@10"]["mean"])
        ids = max((a for a in ("bpr", "multvae") if a in rows), key=lambda a: rows[a]["ndcg@10"]["mean"])
        id_value = rows[ids]["ndcg@10"]["mean"]  # near 0 on cold items, where a ratio is mostly noise
        ratio = ("the ID model at 0" if id_value < 1e-6 else
                 f"{rows[learn]['ndcg@10']['mean'] / id_value:.2f}x" + (", the ID model near 0" if id_value < 1e-3 else ""))
        chance = rows["random"]["ndcg@10"]["mean"]
        lines.append(f"- **{split}, {item_slice}**: best NDCG@10 {best} ({rows[best]['ndcg@10']['mean']:.4f}); best "
                     f"LEARN arm {learn} {rows[learn]['ndcg@10']['mean']:.4f} against the best ID model {ids} "
                     f"{id_value:.4f} ({ratio}); content kNN {rows['content-knn']['ndcg@10']['mean']:.4f}, "
                     f"popularity {rows['pop']['ndcg@10']['mean']:.4f}, random {chance:.4f}"
                     + (f" (best LEARN arm {rows[learn]['ndcg@10']['mean'] / chance:.2g}x chance)." if chance > 0 else "."))
    return lines


def softmax_line(chosen: dict[str, Choice]) -> str:
    """LEARN's softmax choice per arm and split, with the validation NDCG@10 that made it."""
    parts = [f"{arm} {split}: {c.softmax[split]} ("
             + ", ".join(f"{sm} {v:.5f}" for sm, v in c.softmax_valid[split].items()) + ")"
             for arm, c in chosen.items() if c.softmax for split in c.softmax]
    return ("LEARN's fine-tune softmax items, chosen on each split's validation NDCG@10 (seed 1): " + "; ".join(parts)
            if parts else "")


def capped(runs: dict[str, dict[str, dict[str, TrainConfig]]]) -> str:
    """How many LEARN finals were still improving when the fine-tune's epoch cap ended them: their figures are a
    lower bound of what longer training would give (the cap is a compute budget, the same for every LEARN arm)."""
    parts = []
    for arm in (a for a in runs if a in SETS):
        for split, named in runs[arm].items():
            phases = [next((p for p in (ARCHIVE.summary(n, c) or {}).get("phases", []) if p["phase"] == "finetune"),
                           None) for n, c in named.items()]
            hit = sum(1 for p in phases if p and p["epochs"] == FINETUNE and p["best_epoch"] == FINETUNE - 1)
            parts.append(f"{arm} {split} {hit} of {len(phases)}")
    return ("LEARN runs whose best fine-tune epoch was the last one the cap allowed (still improving when stopped): "
            + ", ".join(parts) + "." if parts else "")


def svg(results: dict[str, dict[str, dict]]) -> str:
    """NDCG@10 by split, slice and arm, mean ± std over seeds."""
    values = {f"{split}\n{item_slice}": {arm: (cells["ndcg@10"]["mean"], cells["ndcg@10"].get("std"))
                                          for arm, cells in rows.items()}
              for (split, item_slice), rows in results.items()}
    return grouped_bars(values, list(ARMS), "Test NDCG@10, mean ± std over seeds", bar=14)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--store", type=Path, default=ROOT / "bench" / "learn.duckdb")
    parser.add_argument("--epochs", default=f"{EPOCHS},{FINETUNE}", help="max epochs: first phase, LEARN's fine-tune")
    args = parser.parse_args()
    arms, seeds = args.arms.split(","), list(range(1, args.seeds + 1))
    epochs = tuple(int(e) for e in args.epochs.split(","))
    if REFERENCE not in arms or "bpr" not in arms:
        parser.error(f"--arms must include {REFERENCE} (the reference) and bpr (its split's id mapping for pop and kNN)")
    full = len(seeds) >= 5 and set(arms) == set(ARMS) and epochs == (EPOCHS, FINETUNE)
    if not full:  # a quick look keeps its runs out of the committed archive
        global ARCHIVE
        ARCHIVE = Archive(args.store.with_suffix(".archive"), INPUTS)
    facts = prepare(args.store, arms)
    speed = llm_encoder_speed(args.store) if full else {}  # after prepare: the rerun reads the stored set
    chosen, runs = {}, {}
    for arm in (a for a in ARMS if a in arms and a in TRAINED):
        chosen[arm], runs[arm] = run_arm(args.store, arm, seeds, epochs)
    torch.set_num_threads(2)
    results = {}
    for split in SPLITS:
        frames = {arm: [ARCHIVE.evaluated(args.store, name, c, per_user) for name, c in runs[arm][split].items()]
                  for arm in runs}
        mapping = {f"bpr-{split}-map": config("bpr", split, 1, chosen["bpr"].lr, (1, 0))}  # the split's id mapping
        ARCHIVE.train(args.store, mapping, threads=1, record=False)
        fixed = fixed_arms(args.store, next(iter(mapping)))
        frames = {**{arm: [fixed[arm]] for arm in FIXED if arm in arms}, **frames}
        for item_slice in SLICES[split]:
            results[(split, item_slice)] = seedstats.table(frames, item_slice, METRICS, REFERENCE)
    finished = [ARCHIVE.summary(name, c) for named in runs.values() for split in named.values()
                for name, c in split.items()]
    minutes = sum(s["seconds"] for s in finished if s) / 60
    lines = markdown(results) + verdicts(results) + ARCHIVE.notes
    print("\n".join(lines))
    if full:
        header = [
            "# Results: LEARN's twin towers on ml-100k, default and cold-items splits", "",
            f"Generated by `python bench/learn.py` ({minutes:.0f} training minutes in the final runs, two side by side "
            "at one thread each on 2-core machines with nothing else running; a run finished in an earlier session is "
            "read from bench/archive/learn/); do not edit the tables by hand.",
            "", "Setting: " + __doc__.split("\n\n")[1].replace("\n", " "), "", __doc__.split("\n\n")[2], "",
            f"Search: learning rate {LEARNING_RATES} on validation NDCG@10 (seed 1, default split); chosen: "
            + ", ".join(f"{a} {c.lr:g}" + (" (grid edge)" if c.lr in (LEARNING_RATES[0], LEARNING_RATES[-1]) else "")
                        for a, c in chosen.items()) + " (the default split's seed-1 final is that search run). "
            + softmax_line(chosen)
            + f". Up to {EPOCHS} epochs (LEARN: contrastive "
            f"alignment, then up to {FINETUNE} epochs of full-softmax fine-tuning), patience {PATIENCE} (ID models "
            f"{ID_PATIENCE}). {capped(runs)} Item profiles: "
            f"{facts['items_with_profile']} of 1,682 items.", "", llm_speed_line(speed), "",
            "Each cell: mean ± std over seeds (random, pop and content kNN: one value); in brackets the change "
            f"against {REFERENCE}, `*` = Holm-adjusted p < 0.05 over users and over seeds.", "",
            "![NDCG@10 by arm](results-learn.svg)", "", "## Measured", "",
        ]
        out = ROOT / "docs" / "results-learn.md"
        notes = ROOT / "bench" / "learn_notes.md"  # the reading by hand, written after the tables it reads
        out.write_text("\n".join(header + markdown(results) + ["## Reading", ""] + verdicts(results) + [""]
                                  + ([notes.read_text()] if notes.exists() else [])))
        (out.parent / "results-learn.svg").write_text(svg(results))
        print("wrote docs/results-learn.md and docs/results-learn.svg")


if __name__ == "__main__":
    main()
