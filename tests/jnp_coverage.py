"""Every public ``jax.numpy``, ``jax.nn`` and ``jax.scipy.special`` function that takes
arrays, converted by ``tg.from_jax``: a generated census for tests/test_jnp_coverage.py
and for docs/interop.md's coverage table.

Each public function of those modules is called the way its signature allows with plain
arrays: one float array, two broadcasting float arrays, or a float array with ``axis=``
for reducers (``jnp.sum(x, axis=1)``), then the same with integer arrays (bitwise ops);
a function ``jax.jit`` itself refuses on those arguments is "not applicable" (it needs
other kinds of arguments: shapes, indices, strings, callables; or its output shape
depends on values). An applicable one is converted with
``tg.from_jax`` and run under ``tg.jit``; the outcome is one of

- ``converts``: the result equals JAX's (to float32 tolerance),
- ``unsupported``: conversion reports JAX primitives tracegraph has no op for (each is in
  the declared ``NOT_YET_SUPPORTED`` table with its reason),
- ``WRONG`` / ``ERROR``: a different result, or any other failure — a bug.

    python tests/jnp_coverage.py         # prints the table (markdown)
"""

from __future__ import annotations

import inspect
import re
import warnings

import jax
import jax.numpy as jnp
import jax.scipy.special
import numpy as np

import tracegraph as tg

RNG = np.random.default_rng(0)
X = RNG.uniform(0.1, 0.9, size=(3, 4)).astype(np.float32)
Y = RNG.uniform(0.1, 0.9, size=(4,)).astype(np.float32)
XI = RNG.integers(1, 9, size=(3, 4)).astype(np.int32)  # for integer-only functions
YI = RNG.integers(1, 4, size=(4,)).astype(np.int32)

# not array functions, or ones whose outputs are not values to compare
SKIP = {
    "array", "asarray", "array_equal", "array_equiv", "astype", "can_cast", "dtype",
    "finfo", "iinfo", "isdtype", "issubdtype", "promote_types", "result_type", "load",
    "save", "savez", "frombuffer", "fromfile", "fromfunction", "fromiter", "fromstring",
    "from_dlpack", "printoptions", "set_printoptions", "get_printoptions", "vectorize",
    "piecewise", "einsum_path", "broadcast_shapes", "ndim", "shape", "size", "isscalar",
    "iterable", "result_type", "unravel_index", "ravel_multi_index", "indices",
    "mask_indices", "diag_indices", "tril_indices", "triu_indices", "diag_indices_from",
    "tril_indices_from", "triu_indices_from", "nonzero", "flatnonzero", "argwhere",
    "unique", "unique_all", "unique_counts", "unique_inverse", "unique_values",
    "extract", "compress", "setdiff1d", "union1d", "intersect1d", "setxor1d", "trim_zeros",
    "histogram", "histogram2d", "histogramdd", "histogram_bin_edges", "bincount",
    "isin", "in1d", "nanargmin", "nanargmax", "select", "choose", "place", "put",
    "put_along_axis", "fill_diagonal",
}


def _call(fn, name):
    """(args, kwargs) that ``fn`` accepts, or None."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    required = [p for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = {p.name for p in params}
    attempts = []
    for x, y in ((X, Y), (XI, YI)):
        if len(required) == 1:
            if "axis" in names:
                attempts.append(((x,), {"axis": 1}))
            attempts.append(((x,), {}))
        if len(required) == 2:
            attempts.append(((x, y), {}))
    for args, kwargs in attempts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # applicable: JAX runs it on these arrays, also under jax.jit (a function
                # whose output shape depends on values, jnp.where(x), is not)
                out = jax.jit(lambda *a: fn(*a, **kwargs))(*args)
            leaves = jax.tree_util.tree_leaves(out)
            if leaves and all(hasattr(a, "dtype") for a in leaves):
                return args, kwargs
        except Exception:  # noqa: BLE001 - not applicable with these arguments
            continue
    return None


MODULES = {"jnp": jnp, "jax.nn": jax.nn, "jax.scipy.special": jax.scipy.special}


def census_names() -> list[str]:
    """``module.function`` names: jax.numpy's, jax.nn's and jax.scipy.special's."""
    out = []
    for prefix, module in MODULES.items():
        for name in sorted(dir(module)):
            if name.startswith("_") or name in SKIP:
                continue
            fn = getattr(module, name)
            if callable(fn) and not inspect.isclass(fn) and not inspect.ismodule(fn):
                out.append(f"{prefix}.{name}")
    return out


def check(qualified: str):
    """(outcome, detail) for ``qualified`` (``jnp.sum``, ``jax.nn.gelu`` ...)."""
    prefix, name = qualified.rsplit(".", 1)
    fn = getattr(MODULES[prefix], name)
    call = _call(fn, name)
    if call is None:
        return "n/a", ""
    args, kwargs = call
    want = fn(*args, **kwargs)
    try:
        got = tg.jit(tg.from_jax(lambda *a: fn(*a, **kwargs), name=name))(*args)
    except tg.TracingError as e:
        missing = re.findall(r"^\s+(\w+) \(\d+ uses?\)", str(e), re.M)
        if missing:
            return "unsupported", ", ".join(missing)
        return "ERROR", str(e).splitlines()[0][:160]
    except Exception as e:  # noqa: BLE001 - any other failure is a bug to see
        return "ERROR", f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape or g.dtype != w.dtype:
            return "WRONG", f"{g.dtype}{g.shape} vs {w.dtype}{w.shape}"
        if not np.allclose(g.astype(np.complex128), w.astype(np.complex128), rtol=2e-5,
                           atol=2e-6, equal_nan=True):
            return "WRONG", "values differ"
    return "converts", ""


def main():
    rows = [(n, *check(n)) for n in census_names()]
    counts = {}
    for _, outcome, _ in rows:
        counts[outcome] = counts.get(outcome, 0) + 1
    print("| outcome | functions |\n| --- | ---: |")
    for k in ("converts", "unsupported", "WRONG", "ERROR", "n/a"):
        print(f"| {k} | {counts.get(k, 0)} |")
    print()
    for name, outcome, detail in rows:
        if outcome not in ("converts", "n/a"):
            print(f"- `{name}`: {outcome} {detail}")


if __name__ == "__main__":
    main()
