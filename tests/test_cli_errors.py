"""CLI error paths: every way a user can get a command wrong ends in one paragraph and an exit code.

Each test runs ``kt`` in-process through typer's ``CliRunner`` and asserts the exit code, a key phrase
of the message (on stderr, with nothing on stdout), that no traceback or "Unexpected error" leaked out,
and, where a command writes, the stored state read back through ``--json`` or the library.

Training is kept to one epoch per phase of MultVAE on ml-100k; the trained and evaluated runs are made
once per module (``trained_store``) and shared by the tests that only read them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import Result
from typer.testing import CliRunner

from kt_cli.cli.app import app
from kt_cli.store import Store

runner = CliRunner()

FAST = ["--model", "multvae", "--distill-epochs", "1", "--finetune-epochs", "1", "--threads", "1"]
COMMANDS = ["data", "profile", "embed", "knowledge", "reduce", "train", "eval", "compare", "runs", "show"]
DATA_COMMANDS = ["list", "register", "import-amazon"]
INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
INTER_LINES = [
    "196\t242\t3\t881250949\n",
    "186\t302\t3\t891717742\n",
    "22\t377\t1\t878887116\n",
]


# --- helpers ---------------------------------------------------------------------------------------


def kt(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def flat(text: str) -> str:
    """Rich wraps stderr at the console width; compare messages with whitespace collapsed."""
    return " ".join(text.split())


def assert_fails(result: Result, code: int, *phrases: str) -> str:
    """Exit ``code``, every phrase on stderr, stdout empty, no traceback; returns the flat message."""
    message = flat(result.stderr)
    assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # nothing escaped main()
    assert "Traceback" not in result.output
    assert "Unexpected error" not in message  # a typed KtError, not the catch-all
    assert result.stdout == "", "errors must not be mixed into data on stdout"
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in: {message}"
    return message


def ok_json(result: Result) -> object:
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return json.loads(result.stdout)


def write_vectors(path: Path, ids: list[object], vectors: np.ndarray) -> Path:
    np.savez(path, ids=np.asarray(ids), embeddings=vectors)
    return path


def random_vectors(rows: int, dim: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float32)


def stored_runs(store: Path) -> dict[str, str]:
    with Store.open(store) as db:
        return {r.name: r.status for r in db.runs()}


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def knowledge_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ml-100k imported with two user knowledge sets: k16 (16-d) and k384 (384-d, too wide for 64)."""
    folder = tmp_path_factory.mktemp("knowledge")
    store = folder / "kt.duckdb"
    user_ids = list(range(1, 101))
    for name, dim in (("k16", 16), ("k384", 384)):
        path = write_vectors(folder / f"{name}.npz", user_ids, random_vectors(100, dim))
        ok_json(kt("embed", "--from-file", path, "--name", name, "--store", store, "--json"))
    return store


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs on the default split ('base', evaluated; 'noeval', not) and a random-order one ('other', evaluated)."""
    store = tmp_path_factory.mktemp("trained") / "kt.duckdb"
    for name, split_order in (("base", "time"), ("noeval", "time"), ("other", "random")):
        seed = ["--seed", "7"] if name == "noeval" else []
        result = ok_json(kt("train", *FAST, *seed, "--split-order", split_order, "--name", name,
                            "--store", store, "--json"))
        assert result["status"] == "trained"
    for name in ("base", "other"):
        ok_json(kt("eval", name, "--threads", "1", "--store", store, "--json"))
    return store


# --- 1, 2: unknown dataset and model ---------------------------------------------------------------


def test_unknown_dataset_lists_valid_ones_and_how_to_register(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    assert_fails(kt("train", *FAST, "--dataset", "nope", "--store", store), 1,
                 "Unknown dataset 'nope'", "Valid datasets: ml-100k", "kt data register")
    assert stored_runs(store) == {}


def test_unknown_model_lists_valid_ones(knowledge_store: Path) -> None:
    assert_fails(
        kt("train", "--model", "foo", "--distill-epochs", "1", "--finetune-epochs", "1", "--threads", "1",
           "--name", "foo-run", "--store", knowledge_store),
        1, "Unknown model 'foo'", "multvae", "neumf", "simplex",
    )


@pytest.mark.parametrize("flags", [
    pytest.param(["--model", "foo"], id="model"),
    pytest.param(["--knowledge", "k16", "--inject-layer", "decoder:middle"], id="layer-side"),
])
def test_refused_config_stores_no_run(knowledge_store: Path, flags: list[str]) -> None:
    name = "refused-" + flags[1]
    result = kt("train", *FAST, *flags, "--name", name, "--store", knowledge_store)
    assert result.exit_code in (1, 2)
    assert name not in stored_runs(knowledge_store)


# --- 3, 4, 5, 6: knowledge and layers --------------------------------------------------------------


def test_unknown_layer_lists_valid_layers(knowledge_store: Path) -> None:
    message = assert_fails(
        kt("train", *FAST, "--knowledge", "k16", "--inject-layer", "nonexistent", "--name", "badlayer",
           "--store", knowledge_store),
        1, "Unknown layer 'nonexistent'", "decoder", "encoder.0", "--list-layers",
    )
    assert "Valid layers:" in message


def test_layer_side_must_be_input_or_output(knowledge_store: Path) -> None:
    assert_fails(
        kt("train", *FAST, "--knowledge", "k16", "--inject-layer", "decoder:middle", "--name", "badside",
           "--store", knowledge_store),
        2, "'input' or 'output'", "'middle'",
    )


def test_missing_knowledge_set_names_kt_embed(knowledge_store: Path) -> None:
    message = assert_fails(
        kt("train", *FAST, "--knowledge", "nosuch", "--name", "nosuch-run", "--store", knowledge_store),
        1, "no knowledge set 'nosuch'", "kt embed", "--name nosuch",
    )
    assert "k16" in message  # the sets that do exist are listed
    assert "nosuch-run" not in stored_runs(knowledge_store)


def test_width_mismatch_suggests_reduce_or_linear(knowledge_store: Path) -> None:
    assert_fails(
        kt("train", *FAST, "--knowledge", "k384", "--name", "too-wide", "--store", knowledge_store),
        1, "384 dimensions", "kt reduce --dim 64", "--project linear",
    )
    assert stored_runs(knowledge_store)["too-wide"] == "failed"


def test_inject_layer_without_knowledge_is_a_usage_error(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    assert_fails(kt("train", *FAST, "--inject-layer", "decoder", "--store", store), 2,
                 "--inject-layer needs --knowledge")
    assert not store.exists()  # refused before the store was opened


# --- 7: registering atomic files -------------------------------------------------------------------


def _mini_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mini-data"
    folder.mkdir(exist_ok=True)
    (folder / "mini.inter").write_text(INTER_HEADER + "".join(INTER_LINES))
    return folder


def register_mini(tmp_path: Path, files: dict[str, str], *extra: object) -> Result:
    """``kt data register mini`` on a folder holding ``files`` (name -> text), into tmp_path/kt.duckdb."""
    folder = tmp_path / "mini"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return kt("data", "register", "mini", "--path", folder, "--store", tmp_path / "kt.duckdb", *extra)


def test_register_truncated_inter_names_the_line(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    assert_fails(register_mini(tmp_path, {"mini.inter": INTER_HEADER + "".join(INTER_LINES) + "196\t24"}), 1,
                 "truncated or malformed", "line 5 ", "1 such line(s)", "Re-export")
    names = [d["name"] for d in ok_json(kt("data", "list", "--store", store, "--json"))]
    assert names == ["ml-100k"]  # nothing registered


def test_register_missing_folder(tmp_path: Path) -> None:
    assert_fails(kt("data", "register", "mini", "--path", tmp_path / "absent", "--store",
                    tmp_path / "kt.duckdb"), 1, "does not exist", "mini.inter")


def test_register_folder_without_inter_file(tmp_path: Path) -> None:
    assert_fails(register_mini(tmp_path, {"README.txt": "not data\n"}), 1,
                 "must hold the interactions file mini.inter", "found no .inter file")


def test_register_refuses_files_named_after_another_dataset(tmp_path: Path) -> None:
    assert_fails(register_mini(tmp_path, {"good.inter": INTER_HEADER + "".join(INTER_LINES)}), 1,
                 "holds good.inter, not mini.inter", "kt data register good --path")


def test_register_header_without_item_id(tmp_path: Path) -> None:
    assert_fails(register_mini(tmp_path, {"mini.inter": "user_id:token\trating:float\n196\t3\n186\t3\n"}), 1,
                 "lacks the column(s) item_id", "its header has user_id, rating")


def test_register_well_formed_copy_succeeds(tmp_path: Path) -> None:
    """Control for the tests above: the same lines without the cut one register fine."""
    row = ok_json(register_mini(tmp_path, {"mini.inter": INTER_HEADER + "".join(INTER_LINES)}, "--json"))
    assert (row["name"], row["n_users"], row["n_items"], row["n_interactions"]) == ("mini", 3, 3, 3)


# --- 8, 9: store that cannot be used ---------------------------------------------------------------


def test_locked_store_names_the_holder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "kt.duckdb"
    ok_json(kt("data", "register", "mini", "--path", _mini_folder(tmp_path), "--store", store, "--json"))  # create it
    # Store.open waits lock_timeout=10 s for the lock and the CLI has no option to shorten it;
    # shorten it here so the test takes a second, not ten (the error path is the same).
    connect = Store._connect
    monkeypatch.setattr(Store, "_connect", staticmethod(lambda path, timeout: connect(path, 0.5)))
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb, time; c = duckdb.connect({str(store)!r}); print('ready', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        deadline = time.monotonic() + 10
        line = ""
        while time.monotonic() < deadline and holder.poll() is None and not line:
            line = holder.stdout.readline().strip()
        assert line == "ready", "the lock-holding process did not start"
        started = time.monotonic()
        message = assert_fails(kt("runs", "--store", store), 1, "is locked by", "--store PATH", "KT_STORE")
        assert f"process {holder.pid}" in message
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
    ok_json(kt("runs", "--store", store, "--json"))  # usable again once the holder is gone


def test_store_from_newer_kt_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    ok_json(kt("data", "register", "mini", "--path", _mini_folder(tmp_path), "--store", store, "--json"))
    assert ok_json(kt("runs", "--store", store, "--json")) == []
    with duckdb.connect(str(store)) as con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    assert_fails(kt("runs", "--store", store), 1, "written by a newer kt", "schema version 999",
                 "Upgrade kt")
    with duckdb.connect(str(store)) as con:  # and it was left alone
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall() == [("999",)]


def test_store_that_is_not_duckdb(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    store.write_text("this is not a database\n")
    assert_fails(kt("runs", "--store", store), 1, "not a usable kt store", "not a valid DuckDB database",
                 "Point --store at a kt store")
    assert store.read_text() == "this is not a database\n"  # left as it was


# --- 10: vectors with problems ---------------------------------------------------------------------


def test_embed_refuses_duplicates_and_nans(tmp_path: Path) -> None:
    vectors = random_vectors(5, 8)
    vectors[4, 3] = np.nan
    path = write_vectors(tmp_path / "v.npz", [1, 2, 3, 3, 4], vectors)
    store = tmp_path / "kt.duckdb"
    assert_fails(kt("embed", "--from-file", path, "--name", "dirty", "--store", store), 1,
                 "2 invalid rows out of 5", "1 duplicate id", "1 row with NaN/inf", "--skip-invalid",
                 "3 valid rows")
    assert ok_json(kt("knowledge", "--store", store, "--json")) == []


def test_embed_skip_invalid_reports_what_was_dropped(tmp_path: Path) -> None:
    vectors = random_vectors(5, 8)
    vectors[4, 3] = np.nan
    path = write_vectors(tmp_path / "v.npz", [1, 2, 3, 3, 4], vectors)
    store = tmp_path / "kt.duckdb"
    report = ok_json(kt("embed", "--from-file", path, "--name", "dirty", "--skip-invalid", "--store", store,
                        "--json"))
    assert (report["vectors"], report["rows_in_file"], report["invalid_rows_skipped"],
            report["unknown_ids_skipped"], report["users_without_vector"]) == (3, 5, 2, 0, 940)
    [stored] = ok_json(kt("knowledge", "--store", store, "--json"))
    assert (stored["name"], stored["dim"], stored["n_vectors"]) == ("dirty", 8, 3)
    with Store.open(store) as db:
        ids, matrix = db.knowledge_vectors("ml-100k", "dirty")
    assert ids == ["1", "2", "3"]  # the first of a duplicate id is kept, the NaN row dropped
    np.testing.assert_array_equal(matrix, vectors[:3])


def test_embed_unknown_ids_then_skip_invalid(tmp_path: Path) -> None:
    path = write_vectors(tmp_path / "v.npz", [1, 2, 3, 99999], random_vectors(4, 8))
    store = tmp_path / "kt.duckdb"
    assert_fails(kt("embed", "--from-file", path, "--name", "mixed", "--store", store), 1,
                 "1 of 4 ids that are not users of ml-100k", "examples: 99999", "--skip-invalid",
                 "3 known ids")
    assert ok_json(kt("knowledge", "--store", store, "--json")) == []
    report = ok_json(kt("embed", "--from-file", path, "--name", "mixed", "--skip-invalid", "--store", store,
                        "--json"))
    assert (report["vectors"], report["unknown_ids_skipped"], report["invalid_rows_skipped"]) == (3, 1, 0)
    [stored] = ok_json(kt("knowledge", "--store", store, "--json"))
    assert (stored["name"], stored["n_vectors"], stored["source"]) == ("mixed", 3, "file")


# --- 11, 12, 15: eval and compare ------------------------------------------------------------------


def test_eval_of_unknown_run_names_kt_train(trained_store: Path) -> None:
    assert_fails(kt("eval", "ghost", "--store", trained_store), 1,
                 "no run named 'ghost'", "kt train", "--name ghost")


@pytest.mark.parametrize("order", [("base", "noeval"), ("noeval", "base")])
def test_compare_with_unevaluated_run_names_kt_eval(trained_store: Path, order: tuple[str, str]) -> None:
    message = assert_fails(kt("compare", *order, "--store", trained_store), 1,
                           "Run 'noeval' has", "Create it with: kt eval noeval")
    assert "evaluat" in message.split("Create it with")[0]


def test_compare_with_unknown_run(trained_store: Path) -> None:
    assert_fails(kt("compare", "base", "ghost", "--store", trained_store), 1,
                 "no run named 'ghost'", "base", "kt train")


def test_compare_refuses_runs_on_different_splits(trained_store: Path) -> None:
    assert_fails(kt("compare", "base", "other", "--store", trained_store), 2,
                 "'base' and 'other' were trained on different data", "--split")


def test_compare_same_run_works(trained_store: Path) -> None:
    """Control for the refusals above: an evaluated run compares with itself, deltas 0."""
    result = ok_json(kt("compare", "base", "base", "--store", trained_store, "--json"))
    assert result["runs"] == ["base", "base"]
    assert result["rows"]["ndcg@10"][1]["delta_pct"] == 0


def test_compare_unknown_format(trained_store: Path) -> None:
    assert_fails(kt("compare", "base", "other", "--format", "xml", "--store", trained_store), 2,
                 "--format must be one of", "'xml'")


# --- 13: --set -------------------------------------------------------------------------------------


def test_set_without_equals_is_a_usage_error(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    assert_fails(kt("train", *FAST, "--set", "foo", "--store", store), 2, "--set takes key=value", "'foo'")
    assert not store.exists()


def test_set_of_a_key_kt_manages_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "kt.duckdb"
    assert_fails(kt("train", *FAST, "--set", "epochs=5", "--store", store), 2,
                 "epochs are managed by kt", "--distill-epochs")
    assert not store.exists()


# --- 14: reduce ------------------------------------------------------------------------------------


def test_reduce_unknown_set_names_kt_embed(knowledge_store: Path) -> None:
    assert_fails(kt("reduce", "--from", "nosuch", "--method", "pca", "--store", knowledge_store), 1,
                 "no knowledge set 'nosuch'", "k16", "kt embed", "--name nosuch")


def test_reduce_dim_zero(knowledge_store: Path) -> None:
    assert_fails(kt("reduce", "--from", "k16", "--method", "pca", "--dim", "0", "--store", knowledge_store),
                 2, "--dim must be between 1 and 16", "got 0")
    assert "k16-pca0" not in {s["name"] for s in ok_json(kt("knowledge", "--store", knowledge_store, "--json"))}


def test_reduce_unknown_method(knowledge_store: Path) -> None:
    assert_fails(kt("reduce", "--from", "k16", "--method", "tsne", "--store", knowledge_store), 2,
                 "--method must be one of umap, pca", "'tsne'")


# --- 16: reruns ------------------------------------------------------------------------------------


def test_rerun_is_cached_and_a_changed_config_needs_force(trained_store: Path) -> None:
    again = ok_json(kt("train", *FAST, "--name", "base", "--store", trained_store, "--json"))
    assert again["status"] == "cached"
    before = stored_runs(trained_store)
    assert_fails(kt("train", *FAST, "--alpha", "0.2", "--name", "base",
                    "--store", trained_store), 2,
                 "run named 'base' already exists with a different configuration", "--force", "--name")
    assert stored_runs(trained_store) == before
    with Store.open(trained_store) as db:
        assert db.run("base").config["alpha"] == 0.5  # the stored run was not touched


# --- other usage errors caught by typer itself ----------------------------------------------------


def test_threads_below_one_is_a_usage_error(tmp_path: Path) -> None:
    assert_fails(kt("train", "--threads", "0", "--store", tmp_path / "kt.duckdb"), 2, "--threads")


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    assert_fails(kt("runs", "--frobnicate", "--store", tmp_path / "kt.duckdb"), 2, "No such option",
                 "--frobnicate")


# --- 17: help --------------------------------------------------------------------------------------


def test_root_help_lists_every_command() -> None:
    result = kt("--help")
    assert result.exit_code == 0, result.output
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    for command in COMMANDS:
        assert command in listed, f"{command} missing from kt --help"


@pytest.mark.parametrize("command", [[c] for c in COMMANDS if c != "data"]
                         + [["data"]] + [["data", c] for c in DATA_COMMANDS])
def test_every_command_has_help(command: list[str]) -> None:
    result = kt(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert result.stdout.startswith("Usage: kt " + " ".join(command))
    body = [line for line in result.stdout.splitlines()[1:] if line.strip()]
    assert len(body) >= 2  # a description plus options or commands
    assert "--help" in result.stdout


# --- profile and embed --------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "code", "phrases"), [
    (["--llm", "nope"], 2, ["--llm must be one of local, openai"]),
    (["--llm", "openai"], 2, ["--llm openai needs --model"]),
    (["--model", "gpt-9"], 1, ["Unknown packaged model 'gpt-9'", "qwen2.5-coder-1.5b", "smollm2-135m", "--gguf"]),
    (["--gguf", "missing.gguf"], 2, ["GGUF file missing.gguf does not exist"]),
    (["--offline", "--no-cache"], 2, ["give one of them"]),
    (["--history", "everything"], 2, ["--history must be one of train, all"]),
    (["--split", "0.7,0.3"], 2, ["--split takes three ratios like 0.7,0.1,0.2, loo, or cold-items[:F]"]),
    (["--split-order", "weekly"], 2, ["--split-order must be one of time, random, global"]),
    (["--split", "loo", "--split-order", "random"], 2, ["leave-one-out in time order"]),
    (["--template", "books"], 2, ["Unknown template 'books'", "movies, music, generic"]),
    (["--template", "movies", "--prompt", "x.txt"], 2, ["not both"]),
    (["--import", "missing.jsonl"], 1, ["Cannot read profile file missing.jsonl"]),
])
def test_profile_errors(args: list[str], code: int, phrases: list[str], store_path: Path, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_fails(kt("profile", "--store", store_path, "--profiles-cache", tmp_path, *args), code, *phrases)


def test_offline_profile_with_nothing_cached_is_an_error_and_stores_no_set(store_path: Path, tmp_path: Path) -> None:
    assert_fails(kt("profile", "--store", store_path, "--profiles-cache", tmp_path, "--offline", "--json",
                    "--export", tmp_path / "out.jsonl"), 1, "No user profile for ml-100k was made",
                 "none of the cached answers matches")
    assert not (tmp_path / "out.jsonl").exists()
    with Store.open(store_path) as db:
        assert db.profile_sets("ml-100k") == []


def test_shipped_profiles_default_and_allhistory_sets(store_path: Path, tmp_path: Path) -> None:
    """The shipped ml-100k user answers come in two sets: the default (training part of the default split)
    and the reference's whole histories (--history all). A split no file was made for finds none, and the
    note lists the sets the folder has."""
    from kt_cli.cli.options import DEFAULT_PROFILES_CACHE

    default = ok_json(kt("profile", "--store", store_path, "--profiles-cache", DEFAULT_PROFILES_CACHE, "--offline",
                         "--json"))
    assert (default["set"], default["calls"]) == ("user-qwen2.5-coder-1.5b", 0) and default["profiles"] > 0
    whole = ok_json(kt("profile", "--store", store_path, "--profiles-cache", DEFAULT_PROFILES_CACHE, "--offline",
                       "--history", "all", "--json"))
    assert (whole["set"], whole["profiles"], whole["calls"]) == ("user-qwen2.5-coder-1.5b-allhistory", 943, 0)
    message = assert_fails(kt("profile", "--store", store_path, "--profiles-cache", DEFAULT_PROFILES_CACHE,
                              "--offline", "--split", "loo"), 1, "No user profile for ml-100k was made")
    assert "user-qwen2.5-coder-1.5b-allhistory (all ratings)" in message


def test_profile_against_a_closed_port(store_path: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = kt("profile", "--store", store_path, "--profiles-cache", tmp_path, "--llm", "openai", "--model", "m",
                "--base-url", f"http://127.0.0.1:{port}/v1", "--limit", "2")
    assert_fails(result, 1, "Cannot reach the LLM server", "--base-url")


@pytest.mark.parametrize(("args", "code", "phrases"), [
    (["--profiles", "nope"], 1, ["Profile set 'nope' of ml-100k does not exist", "kt profile --dataset ml-100k"]),
    (["--profiles", "a", "--from-metadata"], 2, ["exactly one source"]),
    (["--from-metadata"], 2, ["--name is required"]),
    (["--profiles", "a", "--encoder", "bert"], 1, ["Unknown encoder 'bert'", "minilm, openai:MODEL"]),
])
def test_embed_errors(args: list[str], code: int, phrases: list[str], store_path: Path) -> None:
    assert_fails(kt("embed", "--store", store_path, *args), code, *phrases)


def test_demo_without_shipped_profiles_says_where_it_looked(tmp_path: Path) -> None:
    message = assert_fails(kt("demo", "--quick", "--profiles-cache", tmp_path / "none", "--store",
                              tmp_path / "kt.duckdb"), 1, "shipped profiles", "--profiles-cache", "kt profile")
    assert str(tmp_path / "none") in message
