"""The CLI reference (docs/cli.md) covers every command and matches the code; every command has help.

Fast: the command tree and ``--help`` texts come from the typer app; nothing is trained or stored.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
REFERENCE = DOCS / "cli.md"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_reference", DOCS / "gen_cli_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _load_generator()
COMMANDS = GENERATOR.commands()
IDS = [GENERATOR.title(path) for path, _ in COMMANDS]


def test_tree_has_the_expected_commands() -> None:
    names = set(IDS)
    for expected in ("kt train", "kt eval", "kt compare", "kt embed", "kt reduce", "kt knowledge",
                     "kt runs", "kt data", "kt data list", "kt data register", "kt data import-amazon"):
        assert expected in names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_command_has_help(path: tuple[str, ...], command: object) -> None:
    assert (command.help or "").strip(), f"{GENERATOR.title(path)} has no help text (docstring)"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_every_option_and_argument_has_help(path: tuple[str, ...], command: object) -> None:
    missing = [param.name for param in command.params if not (getattr(param, "help", None) or "").strip()]
    assert not missing, f"{GENERATOR.title(path)}: no help for {', '.join(missing)}"


def test_every_command_has_a_section() -> None:
    headings = set(re.findall(r"^## (.+)$", REFERENCE.read_text(encoding="utf-8"), flags=re.MULTILINE))
    missing = [title for title in IDS if title not in headings]
    assert not missing, f"docs/cli.md lacks {missing}; run: python docs/gen_cli_reference.py"


def test_reference_is_up_to_date() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == GENERATOR.render(), (
        "docs/cli.md is out of date; run: python docs/gen_cli_reference.py"
    )


HEAVY = ("pandas", "numpy", "torch", "duckdb", "pyarrow", "httpx", "recbole", "scipy", "ray")


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["profile", "--help"], ["sweep", "--help"]])
def test_help_starts_without_the_heavy_libraries(argv: list[str]) -> None:
    """``kt --help`` and a command's help import typer and rich only: the library loads when a command runs."""
    import subprocess
    import sys

    probe = ("import sys\nfrom kt_cli.cli.app import app\ntry:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             f"loaded = sorted(m for m in {HEAVY!r} if m in sys.modules)\nprint('LOADED:' + ','.join(loaded))")
    result = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "LOADED:", f"kt {' '.join(argv)} imported {result.stdout.splitlines()[-1]}"
