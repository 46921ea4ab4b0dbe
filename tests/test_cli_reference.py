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
