"""One test per RecBole compatibility fix (kt_cli/compat.py) and per pinned dependency."""

from importlib.metadata import version

import numpy as np
import scipy.sparse as sp

from kt_cli import compat


def test_numpy_aliases_recbole_and_ray_read_exist() -> None:
    compat.apply()
    assert np.float_ is np.float64 and np.complex_ is np.complex128
    assert np.unicode_ is np.str_ and np.bool8 is np.bool_


def test_recbole_config_compatibility_settings_run() -> None:
    compat.apply()
    from recbole.config import Config

    Config.compatibility_settings(None)  # raises AttributeError on numpy 2 without the aliases
    assert np.float is np.float64


def test_dok_matrix_update_used_by_lightgcn_and_ngcf() -> None:
    compat.apply()
    matrix = sp.dok_matrix((3, 3), dtype=np.float32)
    matrix._update({(0, 1): 1, (2, 0): 1})
    assert matrix.toarray().tolist() == [[0, 1, 0], [0, 0, 0], [1, 0, 0]]


def test_apply_is_idempotent() -> None:
    compat.apply()
    compat.apply()
    assert np.float_ is np.float64


def test_pins_that_keep_recbole_working() -> None:
    # pandas 3's copy-on-write silently breaks RecBole's token_seq remapping; ray needs pkg_resources.
    assert int(version("pandas").split(".")[0]) < 3
    assert int(version("setuptools").split(".")[0]) < 81
    assert version("torch").startswith("2.13.0")
