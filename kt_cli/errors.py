"""Typed errors: every failure a user can cause or fix is one of these.

The CLI's ``main()`` is the only place that catches them; it prints ``str(error)`` as one paragraph
on stderr and exits with ``exit_code``. Library code raises them (adapters translate duckdb, RecBole
and file-format failures with ``raise ... from e``) and never prints.
"""

from __future__ import annotations

from collections.abc import Iterable


class KtError(Exception):
    """Base class: a message written for the person at the terminal."""

    exit_code: int = 1


class UsageError(KtError):
    """Flags that contradict each other or a value out of range."""

    exit_code = 2


def _choices(valid: Iterable[str]) -> str:
    return ", ".join(sorted(valid)) or "(none)"


class NotFoundError(KtError):
    """A named thing (dataset, model, layer, knowledge set, run) does not exist."""

    def __init__(self, kind: str, name: str, valid: Iterable[str] = (), hint: str = "") -> None:
        self.kind, self.name, self.valid, self.hint = kind, name, sorted(valid), hint
        message = f"Unknown {kind} '{name}'. Valid {kind}s: {_choices(self.valid)}."
        if hint:
            message += f" {hint}"
        super().__init__(message)


class MissingInputError(KtError):
    """A stage's input has not been computed yet; ``command`` is the one that computes it."""

    def __init__(self, what: str, command: str) -> None:
        self.what, self.command = what, command
        super().__init__(f"{what} Create it with: {command}")


class DataFormatError(KtError):
    """A file the user gave is missing, truncated or has the wrong columns."""


class InvalidVectorsError(KtError):
    """Knowledge vectors with unknown or duplicate ids, NaNs, ragged rows or a wrong width."""


class StoreError(KtError):
    """The DuckDB store cannot be used: locked by another process, or written by a newer kt."""


class TrainingError(KtError):
    """A model cannot be trained as asked (a layer that cannot be aligned, a width mismatch...)."""


class Interrupted(KtError):
    """Ctrl-C during long work; what was computed is kept and a rerun continues from it."""

    exit_code = 130


class LLMError(KtError):
    """An LLM or embedding server that cannot be reached, rejects the key or does not know the model."""


class ModelFileError(KtError):
    """A packaged model that is not installed, or a weights file whose checksum does not match."""


class LLMRequestError(LLMError):
    """The server refused one request (a 4xx other than auth/model errors): that profile is skipped."""
