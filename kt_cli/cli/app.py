"""The ``kt`` command: assembles one module per subcommand and is the only place errors are caught."""

import functools
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from kt_cli import __version__
from kt_cli.cli import (compare, data, demo, embed, evaluate, knowledge, profile, recommend, reduce, runs, show, sweep,
                        train)
from kt_cli.cli.render import stderr
from kt_cli.errors import KtError

app = typer.Typer(
    name="kt",
    help="Transfer knowledge from LLMs into collaborative-filtering recommenders (LLM-KT on RecBole). "
    "Every stage reads and writes one DuckDB store: ./kt.duckdb, or --store PATH / KT_STORE.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn kt's typed errors into one paragraph on stderr and an exit code; nothing else prints them."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except KtError as e:
            stderr.print(f"Error: {e}", markup=False, highlight=False)
            raise typer.Exit(e.exit_code) from e
        except KeyboardInterrupt as e:
            stderr.print("Interrupted. Finished work is stored; rerun the same command to continue.")
            raise typer.Exit(130) from e
        except Exception as e:
            if os.environ.get("KT_DEBUG"):
                raise
            stderr.print(f"Unexpected error: {type(e).__name__}: {e} (set KT_DEBUG=1 for the traceback)",
                         markup=False, highlight=False)
            raise typer.Exit(1) from e

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """kt: one subcommand per pipeline stage."""


data_app = typer.Typer(help="Datasets: list, register atomic files, import raw Amazon dumps.",
                       no_args_is_help=True)
for name, command in [
    ("list", data.list_datasets),
    ("register", data.register),
    ("import-amazon", data.import_amazon),
]:
    data_app.command(name)(guarded(command))
app.add_typer(data_app, name="data")

for name, command in [
    ("profile", profile.profile),
    ("embed", embed.embed),
    ("knowledge", knowledge.knowledge),
    ("reduce", reduce.reduce),
    ("train", train.train),
    ("sweep", sweep.sweep),
    ("eval", evaluate.eval_runs),
    ("compare", compare.compare),
    ("recommend", recommend.recommend),
    ("runs", runs.runs),
    ("show", show.show),
    ("demo", demo.demo),
]:
    app.command(name)(guarded(command))


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
