"""Profile generation against a scripted back-end: caching, resume, versions, shareable files.

The claims about real LLMs are tested in test_profile_server.py against llama.cpp's server; here a
scripted back-end lets the tests count calls and interrupt at exact points.
"""

from pathlib import Path

import numpy as np
import pandas as pd

import pytest

from kt_cli.errors import DataFormatError, MissingInputError
from kt_cli.profiles import cache_files
from kt_cli.profiles.generate import ProfileJob, build_requests, generate_profiles
from kt_cli.profiles.llm import Completion, Sampling
from kt_cli.profiles.prompts import HistoryRules, load_template
from kt_cli.store import Store


class Scripted:
    """Answers every prompt with its length; can raise after ``stop_after`` answers."""

    backend = "openai"

    def __init__(self, stop_after: int | None = None) -> None:
        self.model_id, self.calls, self.stop_after = "scripted", 0, stop_after

    async def check(self) -> list[str]:
        return [self.model_id]

    async def complete(self, messages, sampling: Sampling) -> Completion:
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt
        self.calls += 1
        return Completion(f"profile of {len(messages[-1]['content'])} chars #{self.calls}", 100, 20, 0.01, "stop")

    async def aclose(self) -> None:
        pass


def _job(limit: int = 6, **kwargs) -> ProfileJob:
    return ProfileJob("ml-100k", "user", load_template("user", domain="movies"), "scripted", "openai",
                      limit=limit, **kwargs)


def test_first_run_calls_rerun_calls_nothing(store_path: Path) -> None:
    backend = Scripted()
    with Store.open(store_path) as store:
        first = generate_profiles(store, _job(), lambda: backend, concurrency=3)
        again = generate_profiles(store, _job(), lambda: pytest.fail("opened a back-end"))
        profiles = store.profiles("ml-100k", first.set.name)
    assert (first.called, first.tokens_in, first.tokens_out) == (6, 600, 120)
    assert (again.called, again.from_store) == (0, 6)
    assert first.set.name == "user-scripted" and first.set.n_missing == 943 - 6
    assert profiles["entity_id"].tolist() == ["1", "2", "3", "4", "5", "6"]
    assert profiles["text"].str.startswith("profile of").all()


def test_interrupted_run_keeps_answers_and_rerun_asks_only_the_rest(store_path: Path) -> None:
    with Store.open(store_path) as store:
        with pytest.raises(KeyboardInterrupt):
            generate_profiles(store, _job(), lambda: Scripted(stop_after=4), concurrency=1)
        rest = Scripted()
        report = generate_profiles(store, _job(), lambda: rest)
    assert (report.from_store, report.called, rest.calls, report.set.n_profiles) == (4, 2, 2, 6)


def test_no_cache_adds_new_versions_and_later_runs_use_the_newest(store_path: Path) -> None:
    with Store.open(store_path) as store:
        generate_profiles(store, _job(limit=2), Scripted)
        fresh = generate_profiles(store, _job(limit=2, fresh=True), Scripted)
        plain = generate_profiles(store, _job(limit=2), lambda: pytest.fail("opened a back-end"))
        versions = store.profiles("ml-100k", plain.set.name)["version"].tolist()
    assert fresh.called == 2 and plain.called == 0 and versions == [2, 2]


def test_changing_sampling_or_template_misses_the_cache(store_path: Path) -> None:
    with Store.open(store_path) as store:
        generate_profiles(store, _job(limit=2), Scripted)
        hotter = generate_profiles(store, _job(limit=2, sampling=Sampling(temperature=0.7)), Scripted)
    assert hotter.called == 2


def test_export_import_round_trip_and_cache_folder(store_path: Path, tmp_path: Path) -> None:
    folder = tmp_path / "profiles_cache"
    folder.mkdir()
    with Store.open(store_path) as store:
        made = generate_profiles(store, _job(limit=3), Scripted)
        path, count = cache_files.export_set(store, "ml-100k", made.set.name, folder)
        original = store.profiles("ml-100k", made.set.name)
    assert path.name == "ml-100k.user.scripted.jsonl" and count == 3
    with Store.open(tmp_path / "other.duckdb") as other:  # a new store fills its cache from the folder
        served = generate_profiles(other, _job(limit=3), lambda: pytest.fail("opened a back-end"),
                                   cache_dir=folder)
        copied = other.profiles("ml-100k", served.set.name)
    assert (served.from_files, served.called) == (3, 0)
    assert copied["text"].tolist() == original["text"].tolist()
    with Store.open(tmp_path / "third.duckdb") as third:
        row, added = cache_files.import_file(third, path, name="shared")
        assert (row.name, row.n_profiles, row.model, added) == ("shared", 3, "scripted", 3)
        assert third.profiles("ml-100k", "shared")["text"].tolist() == original["text"].tolist()


def test_import_refuses_other_files(store_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"id": 1}\n')
    with Store.open(store_path) as store, pytest.raises(DataFormatError, match="not a kt profile file"):
        cache_files.import_file(store, bad)


def test_export_of_a_missing_set_names_the_command(store_path: Path, tmp_path: Path) -> None:
    with Store.open(store_path) as store, pytest.raises(MissingInputError, match="kt profile --dataset ml-100k"):
        cache_files.export_set(store, "ml-100k", "nope", tmp_path)


def test_offline_never_opens_a_backend_and_counts_the_missing(store_path: Path) -> None:
    with Store.open(store_path) as store:
        generate_profiles(store, _job(limit=2), Scripted)
        report = generate_profiles(store, _job(limit=5), lambda: pytest.fail("opened a back-end"), offline=True)
    assert (report.called, report.unanswered, report.set.n_profiles) == (0, 3, 2)


def test_item_profiles_describe_each_item(store_path: Path) -> None:
    job = ProfileJob("ml-100k", "item", load_template("item", domain="movies"), "scripted", "openai", limit=2)
    with Store.open(store_path) as store:
        prompts = [r.messages[-1]["content"] for r in build_requests(store, job)]
        report = generate_profiles(store, job, Scripted)
    # KAR's factual prompt: the item alone, no interaction statistics, so no split and no history suffix
    assert prompts[0].startswith("Movie: Toy Story (1995). Genres: Animation, Children's, Comedy.\n\nIntroduce")
    assert "rated" not in prompts[0]
    assert (report.set.name, report.set.entity, report.set.n_missing) == ("item-scripted", "item", 1682 - 2)
    assert report.set.rules == {"history": "none (the prompt shows no ratings)"}


def _write_atomic(folder: Path, inter: pd.DataFrame, items: dict[str, dict[str, str]]) -> Path:
    folder.mkdir()
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    lines += [f"{u}\t{i}\t{r:g}\t{t:.0f}" for u, i, r, t in inter[["user_id", "item_id", "rating", "timestamp"]]
              .itertuples(index=False)]
    (folder / f"{folder.name}.inter").write_text("\n".join(lines) + "\n")
    rows = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    rows += [f"{i}\t{f.get('movie_title', '')}\t{f.get('release_year', '')}\t{f.get('class', '')}"
             for i, f in items.items() if i in set(inter["item_id"])]
    (folder / f"{folder.name}.item").write_text("\n".join(rows) + "\n")
    return folder


def test_a_held_out_rating_changes_nothing_in_any_prompt(store_path: Path, tmp_path: Path) -> None:
    """Two copies of 40 ml-100k users that differ in every validation and test rating (flipped) give the
    same user prompts, item prompts (also with a template that counts ratings) and history texts; with
    --history all the user prompts do differ, so the comparison can see a leak."""
    from kt_cli.datasets.registry import ensure_dataset, register_dataset
    from kt_cli.datasets.splits import SplitSpec, assign_parts
    from kt_cli.knowledge.texts import history_texts

    counting = tmp_path / "counting.item.txt"
    counting.write_text("[user]\n{title}: {n_ratings} ratings, mean {mean_rating}.\n")
    with Store.open(store_path) as store:
        ensure_dataset(store, "ml-100k")
        inter = store.interactions("ml-100k")
        inter = inter[inter["user_id"].astype(int) <= 40].reset_index(drop=True)
        fields = store.item_fields("ml-100k")
        held_out = assign_parts(inter, SplitSpec()).query("part > 0")[["user_id", "item_id"]]
        flipped = inter.merge(held_out.assign(flip=True), how="left", on=["user_id", "item_id"])
        flipped["rating"] = np.where(flipped["flip"].eq(True), 6 - flipped["rating"], flipped["rating"])
        assert (flipped["rating"] != inter["rating"]).sum() > 100
        seen = {}
        for name, frame in (("a", inter), ("b", flipped.drop(columns="flip"))):
            register_dataset(store, name, _write_atomic(tmp_path / name, frame, fields))
            prompts = []
            for entity, template, rules in (("user", load_template("user", domain="movies"), HistoryRules()),
                                            ("item", load_template("item", domain="movies"), HistoryRules()),
                                            ("item", load_template("item", path=counting), HistoryRules()),
                                            ("user", load_template("user", domain="movies"), HistoryRules(split=None))):
                job = ProfileJob(name, entity, template, "scripted", "openai", rules=rules)
                prompts.append([r.messages for r in build_requests(store, job)])
            prompts.append(history_texts(store, name, HistoryRules()))
            seen[name] = prompts
    for index in range(3):
        assert seen["a"][index] == seen["b"][index], index
    assert seen["a"][4] == seen["b"][4]
    assert seen["a"][3] != seen["b"][3]  # whole histories show the flipped ratings


def test_the_api_key_reaches_the_server_but_never_the_store_or_files(store_path: Path, tmp_path: Path) -> None:
    import httpx

    from kt_cli.profiles.llm import OpenAIChat

    key = "sk-live-do-not-store-7f3a9c1e5b"
    seen: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "scripted"}]})
        return httpx.Response(200, json={"choices": [{"message": {"content": "A taste."}, "finish_reason": "stop"}],
                                         "usage": {"prompt_tokens": 5, "completion_tokens": 2}})

    with Store.open(store_path) as store:
        report = generate_profiles(store, _job(limit=3), lambda: OpenAIChat(
            "http://llm.test/v1", "scripted", api_key=key, transport=httpx.MockTransport(server)), concurrency=2)
        path, _ = cache_files.export_set(store, "ml-100k", report.set.name, tmp_path)
        stored_hash = store.profiles("ml-100k", report.set.name)["prompt_hash"].iloc[0]
    assert stored_hash.encode() in store_path.read_bytes()  # the scan below can see stored strings
    assert report.called == 3 and seen and all(h == f"Bearer {key}" for h in seen)
    for written in [store_path, *store_path.parent.glob("*.wal"), path]:
        assert key.encode() not in written.read_bytes(), written


def test_own_template_sets_carry_its_hash_in_the_name(store_path: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.txt"
    mine.write_text("[user]\nLiked:\n{liked}\nSummarise.\n")
    job = ProfileJob("ml-100k", "user", load_template("user", path=mine), "scripted", "openai", limit=1)
    assert job.set_name == f"user-scripted-{job.template.digest[:8]}"
    with Store.open(store_path) as store:
        made = generate_profiles(store, job, Scripted)
        path, _ = cache_files.export_set(store, "ml-100k", made.set.name, tmp_path / "new" / "folder")
    # one file per set: sets of one model from other templates or histories never overwrite each other
    assert path == tmp_path / "new" / "folder" / f"ml-100k.user.scripted-{job.template.digest[:8]}.jsonl"


def test_an_unavailable_model_error_says_how_many_answers_are_cached(store_path: Path) -> None:
    from kt_cli.errors import ModelFileError

    def missing() -> Scripted:
        raise ModelFileError("Model 'x' is not installed.")

    with Store.open(store_path) as store:
        generate_profiles(store, _job(limit=2), Scripted)
        with pytest.raises(ModelFileError, match="2 of 5 answers are cached already; --offline"):
            generate_profiles(store, _job(limit=5), missing)


def test_prompts_show_only_training_ratings_unless_told_to_show_all(store_path: Path) -> None:
    """The default profile never sees a validation or test item; --history all (the reference's way,
    and the shipped set's) does, and its set name says so."""
    from kt_cli.datasets.splits import SplitSpec, ensure_split
    from kt_cli.profiles.generate import build_requests
    from kt_cli.profiles.prompts import item_line

    with Store.open(store_path) as store:
        train_only = build_requests(store, _job(limit=20))
        whole = build_requests(store, _job(limit=20, rules=HistoryRules(split=None)))
        rows = store.split_rows(ensure_split(store, "ml-100k", SplitSpec()))
        ratings = store.interactions("ml-100k").set_index(["user_id", "item_id"])["rating"]
        fields = store.item_fields("ml-100k")
    def lines(user: str, held_out: bool) -> set[str]:
        mine = rows[(rows["user_id"] == user) & ((rows["part"] > 0) == held_out)]["item_id"]
        return {item_line(fields[item], ratings[(user, item)]) for item in mine}

    leaked = {False: 0, True: 0}
    for requests, whole_history in ((train_only, False), (whole, True)):
        for request in requests:
            shown = set(request.messages[-1]["content"].splitlines())
            # ml-100k lists a few films twice under two ids: a line that is also a training line is not a leak
            leaked[whole_history] += len(shown & (lines(request.entity_id, True) - lines(request.entity_id, False)))
    assert leaked[False] == 0
    assert leaked[True] > 20  # 20 users; about 28% of the lines whole histories show are held out
    assert _job().set_name == "user-scripted"
    assert _job(rules=HistoryRules(split=None)).set_name == "user-scripted-allhistory"
    assert _job(rules=HistoryRules(split=SplitSpec((0.8, 0.1, 0.1), 7, "random"))).set_name == \
        "user-scripted-train-random-0.8-0.1-0.1-s7"
    assert _job(rules=HistoryRules(split=SplitSpec(scheme="loo"))).set_name == "user-scripted-train-loo"
