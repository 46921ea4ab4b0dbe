"""Generate docs/cli.md, the reference of every ``kt`` command, from the typer app itself.

Run from anywhere with kt installed: ``python docs/gen_cli_reference.py`` rewrites docs/cli.md;
``--check`` only reports (exit 1) whether the file is out of date. ``tests/test_cli_reference.py``
calls :func:`render` and fails when the file differs, so a changed option or help text must be
followed by a regeneration.

The command tree is read from ``typer.main.get_command(app)``; each command's ``--help`` text comes
from running it through typer's ``CliRunner`` at a fixed width, with kt's environment variables
unset, so the output does not depend on the terminal or the shell it is generated in.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from kt_cli.cli.app import app

OUTPUT = Path(__file__).resolve().parent / "cli.md"
# COLUMNS fixes the width; KT_* variables could otherwise leak into what a reader sees.
HELP_ENV = {"COLUMNS": "100", "KT_STORE": None, "KT_THREADS": None, "KT_DEBUG": None}

HEADER = """\
# kt command reference

This file is generated from the typer app in `kt_cli/cli/app.py` by `docs/gen_cli_reference.py`;
do not edit it by hand. After changing a command, an option or a help text, regenerate it from the
repository root with `python docs/gen_cli_reference.py` (`--check` only reports whether it is out of
date); `tests/test_cli_reference.py` fails while it is stale. Each section below gives a command's
help text and its full `--help` output.
"""


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every visible command as (words after ``kt``, command object), parents before children."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        if not getattr(sub, "hidden", False):
            yield from walk(sub, (*path, name))


def commands() -> list[tuple[tuple[str, ...], Any]]:
    """The command tree of ``kt``, the root included (its path is empty)."""
    return list(walk(typer.main.get_command(app)))


def title(path: tuple[str, ...]) -> str:
    return " ".join(("kt", *path))


def help_output(path: tuple[str, ...]) -> str:
    """Exactly what ``kt PATH --help`` prints."""
    result = CliRunner().invoke(app, [*path, "--help"], env=HELP_ENV)
    if result.exit_code != 0:
        raise RuntimeError(f"`{title(path)} --help` exited with {result.exit_code}:\n{result.output}")
    return result.output.rstrip() + "\n"


def render() -> str:
    """The full text of docs/cli.md."""
    sections = [HEADER]
    for path, command in commands():
        help_text = inspect.cleandoc(command.help or "")
        sections.append(f"## {title(path)}\n\n{help_text}\n\n```text\n{help_output(path)}```\n")
    return "\n".join(sections)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else ""
        if current != text:
            print(f"{OUTPUT} is out of date; run: python docs/gen_cli_reference.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"Wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
