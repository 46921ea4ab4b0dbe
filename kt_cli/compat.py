"""Fixes that let RecBole 1.2.1 run on numpy 2 and scipy >= 1.12, applied from outside.

RecBole is never edited in site-packages; instead :func:`apply` is called before anything imports
``recbole`` (the training adapter does it first thing). Each fix is idempotent and has its own test.
Two other breakages are fixed by pins in pyproject.toml, not here: pandas 3's copy-on-write breaks
RecBole's token_seq remapping (``pandas<3``) and ray needs ``pkg_resources`` (``setuptools<81``).
RecBole's torch>=2.6 checkpoint-loading failure does not arise: kt saves and loads its own state.
"""

from __future__ import annotations

_applied = False

# Aliases numpy 2 removed. RecBole's ``Config.compatibility_settings`` reads ``np.float_``,
# ``np.complex_`` and ``np.unicode_``; ray (pinned by RecBole) reads ``np.bool8`` at import time.
NUMPY_ALIASES = {
    "float_": "float64",
    "complex_": "complex128",
    "unicode_": "str_",
    "bool8": "bool_",
}


def _numpy_aliases() -> None:
    import numpy as np

    for alias, target in NUMPY_ALIASES.items():
        if not hasattr(np, alias):
            setattr(np, alias, getattr(np, target))


def _scipy_dok_update() -> None:
    """LightGCN and NGCF fill their adjacency with ``dok_matrix._update``, removed in scipy 1.12."""
    import scipy.sparse as sp

    if hasattr(sp.dok_matrix, "_update"):
        return

    def _update(self: sp.dok_matrix, data: dict) -> None:
        self._dict.update(data)

    sp.dok_matrix._update = _update


def apply() -> None:
    """Apply every fix once; call before the first ``import recbole``."""
    global _applied
    if _applied:
        return
    _numpy_aliases()
    _scipy_dok_update()
    _applied = True
