"""Sequential recommendation on ml-100k (leave-one-out in time order): SASRec alone and with LLM knowledge three
ways, and LEARN alone; writes docs/results-sequential.md and docs/results-sequential.svg.

Arms (every SASRec arm: RecBole's SASRec with its ml-100k defaults, CE loss over all items, but a history of
10 items, not 50: see Window below):
- sasrec: the model's own loss;
- sasrec+llmkt: LLM-KT's reconstruction of each user's profile vector at the transformer's output of the last
  position (kt's default SASRec layer), then a fine-tune without it;
- sasrec+kd: one-way distillation (DLLM2Rec's direction) from LEARN's top-20 unseen items per user, KL with
  temperature 1 and sample-wise weights (kt's `kd`);
- sasrec+llmd4rec: mutual distillation with LEARN in alternating epochs (kt's `llmd4rec`), SASRec serving alone;
- learn: LEARN's twin towers over MiniLM embeddings of each item's text and shipped LLM profile (the teacher and
  partner of the two distillation arms: the final LEARN run of the same seed).

Window: every model reads each user's last 10 items (SASRec's MAX_ITEM_LIST_LENGTH, LEARN's max_history), the
window of DLLM2Rec's SASRec student and of the LLM recommenders it distils (BIGRec, DROS), instead of RecBole's 50:
on one core a SASRec epoch over ml-100k's 97,171 loo training samples took 230-249 s at 50, 69-71 s at 20 and
31 s at 10 (2026-12-03, nothing else running), and this bench trains about thirty runs of up to 60 epochs, so at
50 one run could outlast a session, and machines do not outlive sessions.

Knowledge: the shipped user profiles were written from the training part of kt's default split (each user's
first 70% of ratings in time order), which precedes every loo validation and test item of ml-100k (every user has
at least 20 ratings), so nothing held out reaches a prompt; MiniLM, then PCA to 64 (SASRec's width), targets
centred and scaled to the layer (`--target-scale layer`). Item profiles: the shipped item file (facts about the
film, no ratings), joined to "Title: ... Year: ... Genres: ...".

Search, on validation NDCG@10 with seed 1, the same size for every arm (two settings): SASRec's and LEARN's
learning rate; then, at SASRec's chosen rate, LLM-KT's alpha and each distillation's weight lambda. The chosen
setting runs with seeds 1-5 (seed 1's run is the search's own); test is read once per final run. Every SASRec arm
has the same schedule: up to EPOCHS epochs with its knowledge term (the baseline: its own loss), then up to
FINETUNE epochs of its own loss with a fresh optimizer, patience PATIENCE on validation NDCG@10.

Cost: training seconds and epochs per arm (mean over seeds); SASRec's training epoch inside kt against RecBole's
own trainer on the same data and model, two twin sessions of each in rotated rounds in one process, RecBole's twin
the A/A control (bench/epochs.py); serving: the time to score every test user over all items with each SASRec
arm's final weights, against plain SASRec's.

Usage:
  python bench/sequential.py            # everything; time it with nothing else running
  python bench/sequential.py --seeds 1 --epochs 2,1 --timed-epochs 1   # a quick look, no docs
Longer than one session on 2 cores: every finished run is archived in bench/archive/sequential/ (its summary and
per-user test values, no weights; commit them as they come) and a rerun trains only what the archive lacks, so
the benchmark goes on across machines; delete a run's files there to retrain it. The store
(bench/sequential.duckdb) keeps the weights a machine has.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import seedstats  # noqa: E402
from bench.archive import Archive, fingerprint  # noqa: E402
from bench.epochs import spread, twin_epochs  # noqa: E402
from bench.llmkt import SHIPPED_HISTORY  # noqa: E402
from bench.plots import grouped_bars  # noqa: E402
from kt_cli.evaluation.evaluate import trained_session  # noqa: E402
from kt_cli.evaluation.settings import EvalSettings  # noqa: E402
from kt_cli.knowledge.encoders import MiniLM  # noqa: E402
from kt_cli.knowledge.sets import reduce_set  # noqa: E402
from kt_cli.knowledge.texts import embed_item_metadata, embed_profiles  # noqa: E402
from kt_cli.profiles.generate import ProfileJob, generate_profiles  # noqa: E402
from kt_cli.profiles.models import DEFAULT_CHAT_MODEL  # noqa: E402
from kt_cli.profiles.prompts import load_template  # noqa: E402
from kt_cli.store import Store  # noqa: E402
from kt_cli.training.config import TrainConfig  # noqa: E402
from kt_cli.training.session import Session, read_inputs  # noqa: E402

DATASET, SPLIT = "ml-100k", "loo"
ARMS = ("sasrec", "sasrec+llmkt", "sasrec+kd", "sasrec+llmd4rec", "learn")
REFERENCE = "sasrec"
METRICS = ["ndcg@10", "ndcg@20", "hit@10", "hit@20"]
EPOCHS, FINETUNE, PATIENCE = 40, 20, 5
HISTORY = 10  # items each model reads (see Window in the docstring)
USER_SET, ITEM_SET = "users-pca64", "items-profiles"
INPUTS = fingerprint(*(ROOT / "profiles_cache" / f"{DATASET}.{entity}.{DEFAULT_CHAT_MODEL}.jsonl"
                       for entity in ("user", "item")))
ARCHIVE = Archive(ROOT / "bench" / "archive" / "sequential", INPUTS)  # a partial run's: beside its store (main)
# Each arm's two settings: (name of the knob, values). The learning rates come first; the knowledge arms search
# their own weight at SASRec's chosen rate.
# Where LLMD4Rec's description (and DLLM2Rec's) leaves a choice open, what kt and this bench do.
CHOICES = [
    "- **Teacher of `kd`**: a per-user list (LEARN's top-20 unseen items after the user's whole training part), the "
    "same for every training sample of the user, as DLLM2Rec's teachers; KL over the list with temperature 1, not "
    "DLLM2Rec's weighted BCE (`--method-set loss=bce` offers it).",
    "- **Sample-wise weights** (both methods): the teacher's confidence (its top probability) plus its probability "
    "(llmd4rec) or reciprocal rank (kd) of the sample's own target, plus (kd) the overlap of the student's top-n "
    "with the list; normalised to mean 1 in each batch. LLMD4Rec describes adaptive weights without a formula.",
    "- **Turns** (llmd4rec): whole epochs, alternating SASRec and LEARN (`round_epochs` 1); validation and early "
    "stopping on SASRec after every epoch; both KLs over all items with temperature 1; one optimizer, each turn "
    "giving gradients to one model only.",
    f"- **LEARN's view of SASRec** (llmd4rec's partner turns): SASRec run on each user's last {HISTORY} training "
    "items.",
    f"- **Window**: every model reads each user's last {HISTORY} items (DLLM2Rec's window), not RecBole's default 50, "
    "for cost: a SASRec epoch on one core took 230-249 s at 50 against 31 s at 10.",
    "- **Serving**: SASRec alone (no parameter added by either method), measured below.",
    "- **Schedule**: every SASRec arm gets the same two phases (knowledge term, then fine-tune with a fresh optimizer); "
    "LLM-KT's vectors are the shipped default-split user profiles (see the setting above).",
]
SEARCH = {"sasrec": ("learning_rate", (1e-3, 2e-3)), "learn": ("learning_rate", (1e-3, 2e-3)),
          "sasrec+llmkt": ("alpha", (0.1, 0.5)), "sasrec+kd": ("weight", (0.2, 1.0)),
          "sasrec+llmd4rec": ("weight", (0.2, 1.0))}


def prepare(store_path: Path) -> dict[str, int]:
    """The user set for LLM-KT and the item set for LEARN (both offline, from the shipped profiles)."""
    encoder = MiniLM()
    with Store.open(store_path) as store:
        users = generate_profiles(store, ProfileJob(DATASET, "user", load_template("user", domain="movies"),
                                                    DEFAULT_CHAT_MODEL, "local", rules=SHIPPED_HISTORY),
                                  lambda: None, cache_dir=ROOT / "profiles_cache", offline=True)
        embed_profiles(store, DATASET, users.set.name, encoder, name="users-minilm")
        reduce_set(store, DATASET, "users-minilm", method="pca", dim=64, name=USER_SET)
        items = generate_profiles(store, ProfileJob(DATASET, "item", load_template("item", domain="movies"),
                                                    DEFAULT_CHAT_MODEL, "local"),
                                  lambda: None, cache_dir=ROOT / "profiles_cache", offline=True)
        embed_item_metadata(store, DATASET, encoder, name=ITEM_SET, profile_set=items.set.name)
    return {"users_with_profile": users.set.n_profiles, "items_with_profile": items.set.n_profiles}


def run_name(arm: str, seed: int, knobs: dict[str, float]) -> str:
    """Seed 1's final run is the search run of the chosen setting (the same configuration: trained once)."""
    return f"{arm}-tune-{knobs[SEARCH[arm][0]]:g}" if seed == 1 else f"{arm}-s{seed}"


def config(arm: str, seed: int, knobs: dict[str, float], epochs: tuple[int, int], learn: str = "") -> TrainConfig:
    """The run of ``arm`` with ``knobs`` (learning_rate, and alpha or weight); ``learn``: LEARN's run of the same
    seed, the teacher or partner of the distillation arms."""
    common = dict(dataset=DATASET, split=SPLIT, seed=seed, distill_epochs=epochs[0], finetune_epochs=epochs[1],
                  patience=PATIENCE)
    if arm == "learn":
        return TrainConfig(model="learn", item_knowledge=ITEM_SET, **common,
                           recbole={"learning_rate": knobs["learning_rate"], "max_history": HISTORY})
    common["recbole"] = {"learning_rate": knobs["learning_rate"], "MAX_ITEM_LIST_LENGTH": HISTORY}
    if arm == "sasrec+llmkt":
        return TrainConfig(model="sasrec", knowledge=USER_SET, target_scale="layer", alpha=knobs["alpha"], **common)
    if arm == "sasrec+kd":
        return TrainConfig(model="sasrec", method="kd", teacher=learn, method_options={"weight": knobs["weight"]},
                           **common)
    if arm == "sasrec+llmd4rec":
        return TrainConfig(model="sasrec", method="llmd4rec", partner=learn,
                           method_options={"weight": knobs["weight"]}, **common)
    return TrainConfig(model="sasrec", **common)


def learn_runs(needs: dict[str, TrainConfig]) -> dict[int, str]:
    """LEARN's final run of each seed (the distillation arms' teacher or partner) among ``needs``."""
    return {c.seed: name for name, c in needs.items() if c.model == "learn"}


def search(store_path: Path, arms: list[str], base: dict[str, dict[str, float]], epochs: tuple[int, int],
           threads: int, needs: dict[str, TrainConfig]) -> dict[str, dict[str, float]]:
    """Each arm's two settings on seed 1, trained side by side; the knobs with the best validation NDCG@10."""
    learn = learn_runs(needs)
    tries = {(arm, value): {**base.get(arm, {}), SEARCH[arm][0]: value} for arm in arms for value in SEARCH[arm][1]}
    done = ARCHIVE.train(store_path, {run_name(arm, 1, knobs): config(arm, 1, knobs, epochs, learn.get(1, ""))
                                      for (arm, _), knobs in tries.items()}, threads, needs)
    chosen = {}
    for arm in arms:
        scores = {value: done[run_name(arm, 1, tries[(arm, value)])]["best_valid"] for value in SEARCH[arm][1]}
        chosen[arm] = tries[(arm, max(scores, key=scores.get))]
        print(arm, "chose", chosen[arm], scores, flush=True)
    return chosen


def finals(store_path: Path, chosen: dict[str, dict[str, float]], seeds: list[int], epochs: tuple[int, int],
           threads: int, needs: dict[str, TrainConfig]) -> dict[str, dict[str, TrainConfig]]:
    """The chosen settings of each arm with every seed, side by side: {arm: {run name: config}} (seed 1: the
    search's run, already trained)."""
    learn = learn_runs(needs)
    runs = {arm: {run_name(arm, seed, chosen[arm]): config(arm, seed, chosen[arm], epochs, learn.get(seed, ""))
                  for seed in seeds} for arm in chosen}
    ARCHIVE.train(store_path, {name: c for named in runs.values() for name, c in named.items()}, threads, needs,
                  evaluate=per_user)
    return runs


def per_user(store_path: Path, run: str) -> pd.DataFrame:
    """A final run's per-user test values, the slice and metrics the tables read."""
    session = trained_session(store_path, run)
    frame = session.task.evaluate(session, EvalSettings(ks=(10, 20))).per_user
    return frame[(frame["slice"] == "all") & (frame["metric"] + "@" + frame["k"].astype(str)).isin(METRICS)]


def _seconds(work) -> float:
    tick = time.perf_counter()
    work()
    return time.perf_counter() - tick


def serving_seconds(store_path: Path, runs: list[str], repeats: int = 5) -> dict[str, float]:
    """Median seconds to score every test sample over all items with each run's weights, runs interleaved (the
    cost does not depend on the weights' values, so short runs of each arm's chosen setting serve)."""
    sessions = {run: trained_session(store_path, run) for run in runs}
    for session in sessions.values():
        session.train_mode(False)
    work = {run: (lambda s=s: s.task.score(s, 2, [10])) for run, s in sessions.items()}
    for run in runs:  # warm-up
        work[run]()
    times: dict[str, list[float]] = {run: [] for run in runs}
    for _ in range(repeats):
        for run in runs:
            times[run].append(_seconds(work[run]))
    return {run: statistics.median(t) for run, t in times.items()}


def sasrec_session(store_path: Path, knobs: dict[str, float]) -> Session:
    """A fresh session of plain SASRec with ``knobs``, as kt train builds it (the epoch timing's sides)."""
    cfg = config("sasrec", 1, knobs, (1, 0))
    with Store.open(store_path) as store:
        inputs = read_inputs(store, cfg)
    session = Session(cfg, inputs, store_path.parent / "sequential-epoch")
    session.attach_knowledge()
    return session


def costs(runs: dict[str, dict[str, TrainConfig]]) -> dict[str, dict[str, float]]:
    """Training seconds and epochs per arm, mean over its seeds (from the archived summaries)."""
    out = {}
    for arm, named in runs.items():
        summaries = [ARCHIVE.summary(name, c) for name, c in named.items()]
        out[arm] = {"seconds": sum(s["seconds"] for s in summaries) / len(summaries),  # type: ignore[index]
                    "epochs": sum(sum(p["epochs"] for p in s["phases"]) for s in summaries)  # type: ignore[index]
                    / len(summaries)}
    return out


def verdicts(results: dict[str, dict[str, dict]]) -> list[str]:
    """Each arm against plain SASRec on NDCG@10, in words: a gain, a loss, or no significant difference."""
    lines = []
    for arm in ARMS[1:]:
        cell = results[arm]["ndcg@10"]
        significant = cell["p_users"] < 0.05 and (cell.get("p_seeds") is None or cell["p_seeds"] < 0.05)
        verdict = ("significantly better" if cell["delta_pct"] > 0 else "significantly worse") if significant else \
            "not significantly different"
        lines.append(f"- **{arm}**: NDCG@10 {cell['mean']:.4f} against {results[REFERENCE]['ndcg@10']['mean']:.4f} "
                     f"({cell['delta_pct']:+.1f}%), {verdict} (users p={cell['p_users']:.2g}"
                     + (f", seeds p={cell['p_seeds']:.2g}" if cell.get("p_seeds") is not None else "") + ").")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--store", type=Path, default=ROOT / "bench" / "sequential.duckdb")
    parser.add_argument("--epochs", default=f"{EPOCHS},{FINETUNE}", help="max epochs: with knowledge, fine-tune")
    parser.add_argument("--timed-epochs", type=int, default=4, help="timed rounds (one epoch per side) against RecBole")
    parser.add_argument("--threads", type=int, default=1, help="threads per run (runs go side by side on Ray)")
    args = parser.parse_args()
    seeds, epochs = list(range(1, args.seeds + 1)), tuple(int(e) for e in args.epochs.split(","))
    full = len(seeds) >= 5 and epochs == (EPOCHS, FINETUNE)
    if not full:  # a quick look keeps its runs out of the committed archive
        global ARCHIVE
        ARCHIVE = Archive(args.store.with_suffix(".archive"), INPUTS)
    facts = prepare(args.store)
    # Two rounds: SASRec and LEARN (the teacher and partner of the distillation arms), then the knowledge arms at
    # SASRec's learning rate; each round searches on seed 1 and then trains its finals, runs side by side on Ray.
    chosen = search(args.store, ["sasrec", "learn"], {}, epochs, args.threads, {})
    runs = finals(args.store, chosen, seeds, epochs, args.threads, {})
    knowledge = ["sasrec+llmkt", "sasrec+kd", "sasrec+llmd4rec"]
    chosen |= search(args.store, knowledge, {arm: chosen["sasrec"] for arm in knowledge}, epochs, args.threads,
                     runs["learn"])
    runs |= finals(args.store, {arm: chosen[arm] for arm in knowledge}, seeds, epochs, args.threads, runs["learn"])
    frames = {arm: [ARCHIVE.evaluated(args.store, name, c, per_user) for name, c in runs[arm].items()]
              for arm in ARMS}
    results = seedstats.table(frames, "all", METRICS, REFERENCE)
    spent = costs(runs)
    finished = [ARCHIVE.summary(name, c) for named in runs.values() for name, c in named.items()]
    minutes = sum(s["seconds"] for s in finished if s) / 60
    teacher = learn_runs(runs["learn"])[1]
    serve = {f"serve-{arm}": config(arm, 1, chosen[arm], (1, 0), teacher) for arm in ARMS if arm != "learn"}
    ARCHIVE.train(args.store, serve, args.threads, runs["learn"], record=False)
    torch.set_num_threads(1)  # the timings below: one thread, as every training run
    serving = serving_seconds(args.store, list(serve))
    epoch = twin_epochs(lambda: sasrec_session(args.store, chosen["sasrec"]), args.timed_epochs)
    n_users = results[REFERENCE][METRICS[0]]["n_users"]
    lines = seedstats.markdown(f"### loo split, test ({n_users} users)", results, METRICS)
    cost_lines = ["| arm | train seconds (mean) | epochs (mean) | serving seconds | serving ratio |",
                  "|---|---|---|---|---|"]
    plain = serving[f"serve-{REFERENCE}"]
    for arm in ARMS:
        timed = (f"{serving[f'serve-{arm}']:.3f} | {serving[f'serve-{arm}'] / plain:.2f}" if arm != "learn"
                 else "- | - (two towers: faiss, see results-learn.md)")
        cost_lines.append(f"| {arm} | {spent[arm]['seconds']:.0f} | {spent[arm]['epochs']:.1f} | {timed} |")
    epoch_line = (f"SASRec training epoch, kt's loop {epoch['kt_seconds']:.2f} s against RecBole's trainer "
                  f"{epoch['recbole_seconds']:.2f} s: ratio {epoch['ratio']:.3f} (target at most 1.05); medians of "
                  f"{args.timed_epochs} rounds in which two twin sessions of each loop ran one epoch each, order "
                  f"rotated, same process (bench/epochs.py). A/A controls, each loop against its twin: RecBole "
                  f"{epoch['control_ratio']:.2f}x, kt {epoch['kt_twin_ratio']:.2f}x; single rounds kt/RecBole "
                  f"{spread(epoch['kt_round_ratios'])}, RecBole/RecBole {spread(epoch['control_round_ratios'])}.")
    print("\n".join(lines + verdicts(results) + cost_lines + [epoch_line] + ARCHIVE.notes), flush=True)
    if not full:
        return
    header = [
        "# Results: sequential recommendation on ml-100k (leave-one-out), SASRec with LLM knowledge", "",
        f"Generated by `python bench/sequential.py` ({minutes:.0f} training minutes in the final runs, two side "
        "by side at one thread each on 2-core machines with nothing else running; a run finished in an earlier "
        "session is read from bench/archive/sequential/); do not edit the tables by hand.", "",
        "Setting: " + " ".join(__doc__.split("\n\n")[1:5]).replace("\n", " "), "",
        "Chosen on validation (seed 1): " + "; ".join(
            f"{arm} {SEARCH[arm][0]} {chosen[arm][SEARCH[arm][0]]:g}" for arm in ARMS) + ". Profiles: "
        f"{facts['users_with_profile']} of 943 users, {facts['items_with_profile']} of 1,682 items.", "",
        f"Each cell: mean ± std over {len(seeds)} seeds; in brackets the change against {REFERENCE}, `*` = "
        "Holm-adjusted p < 0.05 both over users (paired t-test of each user's value averaged over seeds) and over "
        "seeds (Welch).", "", "![NDCG and Hit by arm](results-sequential.svg)", "", "## Measured", "",
    ]
    svg = grouped_bars({m: {arm: (results[arm][m]["mean"], results[arm][m]["std"]) for arm in ARMS} for m in METRICS},
                       list(ARMS), "Test metrics (loo), mean ± std over seeds", bar=16)
    out = ROOT / "docs" / "results-sequential.md"
    out.write_text("\n".join(header + lines + ["## Reading", ""] + verdicts(results) + ["", "## Cost", ""]
                             + cost_lines + ["", epoch_line, "", "## Choices made where the papers are silent", ""]
                             + CHOICES + ([""] + ARCHIVE.notes if ARCHIVE.notes else []) + [""]))
    (out.parent / "results-sequential.svg").write_text(svg)
    print("wrote docs/results-sequential.md and docs/results-sequential.svg")


if __name__ == "__main__":
    main()
