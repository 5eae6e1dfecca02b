import contextlib

import jax
import numpy as np

from tracegraph.ir.types import DTYPE_NAMES

WIDE = {np.dtype(d) for d in ("float64", "int64", "uint64", "complex128")}


def needs_x64(arrays, attrs=None) -> bool:
    dtypes = [np.dtype(getattr(a, "dtype", None) or np.asarray(a).dtype) for a in arrays]
    for v in (attrs or {}).values():
        if v is None or isinstance(v, (bool, int, float)):
            continue
        if isinstance(v, str):
            if v not in DTYPE_NAMES:
                continue
            v = DTYPE_NAMES[v]
        try:
            dtypes.append(np.dtype(v))
        except TypeError:
            pass
    return any(d in WIDE for d in dtypes)


@contextlib.contextmanager
def x64_if_needed(arrays, attrs=None):
    """64-bit samples run with jax_enable_x64 on (JAX's default is 32-bit)."""
    if needs_x64(arrays, attrs):
        with jax.enable_x64(True):
            yield
    else:
        yield


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running tests (select with -m slow)")
