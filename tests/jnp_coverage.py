"""Every public ``jax.numpy``, ``jax.nn`` and ``jax.scipy.special`` function, and the
reduce/accumulate/outer/at/reduceat methods of jax.numpy's binary ufuncs, converted by
``tg.from_jax``: a generated census for tests/test_jnp_coverage.py and for
docs/interop.md's coverage tables (tests/random_coverage.py does the same for
``jax.random``'s samplers).

A function with an entry in `RECIPES` is called as its recipe says: array operands (the
arguments of the converted function) with static arguments (shapes, axes, subscripts,
``size=``, callables) among them. Any other function is called the way its signature
allows with plain arrays: one float array, two broadcasting float arrays, or a float
array with ``axis=`` for reducers (``jnp.sum(x, axis=1)``), then the same with integer
arrays (bitwise ops). The call is converted with ``tg.from_jax`` and run under ``tg.jit``;
the outcome is one of

- ``converts``: the result equals JAX's (integers and bools exactly, floats to float32
  tolerance),
- ``unsupported``: conversion reports JAX primitives tracegraph has no op for (each is in
  the declared ``NOT_YET_SUPPORTED`` table with its reason),
- ``n/a``: not applicable, with the reason `NOT_APPLICABLE` gives (an output shape that
  depends on values, with no ``size=`` argument to fix it: ``jax.jit`` refuses it too),
- ``WRONG`` / ``ERROR``: a different result, or any other failure — a bug. A function
  with neither a recipe that runs nor a declared reason is an ``ERROR`` of the census.

`SKIP` lists the public names that are not array functions (dtype utilities, IO, print
options, shape introspection); they are not counted.

    python tests/jnp_coverage.py         # prints the tables (markdown)
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
# the recipes' other operands
V = RNG.uniform(0.1, 0.9, size=(3,)).astype(np.float32)  # a short vector
W = RNG.uniform(0.1, 0.9, size=(4, 2)).astype(np.float32)  # a right-hand matrix for X
SQ = RNG.uniform(0.1, 0.9, size=(3, 3)).astype(np.float32)  # a square matrix
IDX = RNG.integers(0, 4, size=(3, 4)).astype(np.int32)  # indices into X's last axis
XP = np.array([0.15, 0.35, 0.6, 0.85], np.float32)  # sorted sample points
XN = X.copy()
XN[1, 2] = np.nan  # for the nan-aware reducers
QKV = RNG.normal(size=(3, 1, 5, 2, 8)).astype(np.float32)  # attention's (B, T, N, H)

# not array functions: dtype utilities, IO, print options and strings, shape introspection
SKIP = {
    # dtypes
    "can_cast", "dtype", "finfo", "iinfo", "isdtype", "issubdtype", "promote_types",
    "result_type",
    # IO and foreign buffers
    "load", "save", "savez", "frombuffer", "fromfile", "fromiter", "fromstring",
    "from_dlpack",
    # printing
    "printoptions", "set_printoptions", "get_printoptions", "array_repr", "array_str",
    # Python values about shapes, not arrays
    "broadcast_shapes", "einsum_path", "ndim", "shape", "size", "isscalar", "iterable",
    # a configuration object for jax.nn.scaled_dot_general
    "get_scaled_dot_general_config",
}

# array functions that no arguments make applicable: with the reason
VALUE_SHAPED = "its output shape depends on the values and it has no size= argument " \
    "(jax.jit refuses it too)"
NOT_APPLICABLE = {
    "jnp.trim_zeros": VALUE_SHAPED,
}


class S:
    """A static positional argument in a recipe: passed to the function as it is (a
    shape, an axis, a subscript string, a callable), not as an operand of the converted
    function."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


# qualified name -> (args, kwargs[, via]), or a list of them (each must convert): args are
# the operands of the converted function, `S` marking static ones among them; kwargs are
# static; ``via(fn, *args, **kwargs)`` calls a higher-order function (default:
# ``fn(*args, **kwargs)``)
RECIPES = {
    # -- jax.numpy: shapes, axes and sections ------------------------------------------
    "jnp.reshape": ((X,), {"shape": (2, 6)}),
    "jnp.resize": ((X,), {"new_shape": (5, 3)}),
    "jnp.broadcast_to": ((Y,), {"shape": (3, 4)}),
    "jnp.broadcast_arrays": ((X, Y), {}),
    "jnp.expand_dims": ((X,), {"axis": 1}),
    "jnp.moveaxis": ((X.reshape(3, 2, 2),), {"source": 0, "destination": -1}),
    "jnp.rollaxis": ((X.reshape(3, 2, 2),), {"axis": 2}),
    "jnp.swapaxes": ((X,), {"axis1": 0, "axis2": 1}),
    "jnp.permute_dims": ((X.reshape(3, 2, 2),), {"axes": (1, 2, 0)}),
    "jnp.tile": ((X,), {"reps": (2, 1, 2)}),
    "jnp.repeat": [((X,), {"repeats": 2, "axis": 0}),
                   ((X, YI), {"axis": 1, "total_repeat_length": int(YI.sum())})],
    "jnp.roll": [((X,), {"shift": (1, -2), "axis": (0, 1)}),
                 ((X, np.int32(3)), {"axis": 1})],  # a traced shift
    "jnp.split": ((X,), {"indices_or_sections": [1, 3], "axis": 1}),
    "jnp.array_split": ((X,), {"indices_or_sections": 3, "axis": 1}),
    "jnp.hsplit": ((X,), {"indices_or_sections": 2}),
    "jnp.vsplit": ((X,), {"indices_or_sections": 3}),
    "jnp.dsplit": ((X.reshape(3, 2, 2),), {"indices_or_sections": 2}),
    "jnp.delete": [((X, S(np.array([0, 2]))), {"axis": 1}), ((X,), {"obj": slice(1, None, 2)}),
                   ((X, np.array([3, 0], np.int32)), {"axis": 1, "assume_unique_indices": True})],
    "jnp.insert": ((X, S(1), V), {"axis": 1}),
    "jnp.pad": [((X,), {"pad_width": ((1, 0), (0, 2)), "constant_values": 0.5}),
                *(((X,), {"pad_width": ((1, 2), (2, 1)), "mode": m}) for m in (
                    "edge", "reflect", "symmetric", "wrap", "linear_ramp", "maximum",
                    "mean", "median", "minimum"))],
    "jnp.atleast_1d": ((Y, np.float32(2.0)), {}),
    "jnp.atleast_2d": ((Y,), {}),
    "jnp.atleast_3d": ((X,), {}),
    # -- indexing, selection, scatter ----------------------------------------------------
    "jnp.take": [((X, IDX), {"axis": 1}),
                 ((X, np.array([5, -1, 20], np.int32)), {"mode": "clip"}),
                 ((X, np.array([5, -1, 20], np.int32)), {"mode": "fill", "fill_value": -1.0})],
    "jnp.take_along_axis": ((X, IDX), {"axis": 1}),
    "jnp.put_along_axis": ((X, IDX[:, :2], V[:, None]), {"axis": 1, "inplace": False}),
    "jnp.put": ((X, np.array([0, 5, 11], np.int32), V), {"inplace": False}),
    "jnp.place": ((X, X > 0.5, V), {"inplace": False}),
    "jnp.fill_diagonal": [((SQ, np.float32(2.0)), {"inplace": False}),
                          ((X.T.copy(), V), {"inplace": False})],
    "jnp.where": [((X > 0.5, X, Y), {}), ((X > 0.5,), {"size": 8, "fill_value": -1})],
    "jnp.select": (([X < 0.3, X > 0.6], [X, X + Y]), {"default": 0.5}),
    "jnp.choose": [((IDX % 3, [X, 2 * X, X + Y]), {"mode": "clip"}),
                   ((IDX, [X, 2 * X, X + Y]), {"mode": "wrap"})],
    "jnp.piecewise": ((X, [X < 0.3, X > 0.6]), {},
                      lambda fn, x, c: fn(x, c, [lambda v: 2 * v, lambda v: v - 1, 0.5])),
    "jnp.clip": [((X, Y - 0.2), {"max": 0.7}), ((XI,), {"min": 2, "max": 6})],
    "jnp.nonzero": ((X > 0.5,), {"size": 8, "fill_value": 0}),
    "jnp.flatnonzero": ((X > 0.5,), {"size": 8}),
    "jnp.argwhere": ((X > 0.5,), {"size": 8}),
    "jnp.extract": ((X > 0.5, X), {"size": 8}),
    "jnp.compress": ((Y > 0.5, X), {"axis": 1, "size": 3}),
    "jnp.searchsorted": [((XP, X), {}), ((XP, X), {"side": "right"})],
    "jnp.digitize": ((X, XP), {}),
    "jnp.isin": [((XI, YI), {}), ((XI, YI), {"invert": True})],
    "jnp.ix_": ((np.array([0, 2], np.int32), np.array([1, 3, 0], np.int32)), {}),
    "jnp.ravel_multi_index": (((np.array([0, 2, 1], np.int32), np.array([3, 0, 5], np.int32)),),
                              {"dims": (3, 4), "mode": "clip"}),
    "jnp.unravel_index": ((np.array([0, 5, 11], np.int32),), {"shape": (3, 4)}),
    # a square matrix takes lax.platform_dependent's path (platform_index), others not
    "jnp.diagonal": [((X,), {}), ((SQ,), {}), ((SQ,), {"offset": 1})],
    "jnp.diag": [((V,), {}), ((SQ,), {}), ((X,), {"k": -1})],
    "jnp.diag_indices": ((S(3),), {}),
    "jnp.diag_indices_from": ((SQ,), {}),
    "jnp.tril_indices": ((S(3),), {"k": 0, "m": 4}),
    "jnp.triu_indices": ((S(3),), {"k": 1, "m": 4}),
    "jnp.tril_indices_from": ((X,), {"k": -1}),
    "jnp.triu_indices_from": ((X,), {"k": 1}),
    "jnp.mask_indices": ((S(3), S(jnp.triu)), {"size": 6}),
    "jnp.indices": ((S((2, 3)),), {}),
    # -- sorting, sets, counting ---------------------------------------------------------
    "jnp.partition": ((X,), {"kth": 2}),
    "jnp.argpartition": ((X,), {"kth": 2}),
    "jnp.nanargmax": ((XN,), {"axis": 1}),
    "jnp.nanargmin": ((XN,), {"axis": 1}),
    "jnp.unique": [((XI,), {"size": 9, "fill_value": 0}),
                   ((XI,), {"size": 9, "return_index": True, "return_inverse": True,
                            "return_counts": True})],
    "jnp.unique_all": ((XI,), {"size": 9}),
    "jnp.unique_counts": ((XI,), {"size": 9}),
    "jnp.unique_inverse": ((XI,), {"size": 9}),
    "jnp.unique_values": ((XI,), {"size": 9}),
    "jnp.union1d": ((XI.ravel(), YI), {"size": 10, "fill_value": 0}),
    "jnp.intersect1d": ((XI.ravel(), YI), {"size": 4, "fill_value": 0}),
    "jnp.setdiff1d": ((XI.ravel(), YI), {"size": 8, "fill_value": 0}),
    "jnp.setxor1d": ((XI.ravel(), YI), {"size": 8, "fill_value": 0}),
    "jnp.bincount": [((XI.ravel(),), {"length": 10}), ((XI.ravel(), X.ravel()), {"length": 10})],
    "jnp.histogram": [((X,), {"bins": 5, "range": (0.0, 1.0)}),
                      ((X, XP), {}),  # bin edges as an array
                      ((X,), {"bins": 4, "range": (0.0, 1.0), "weights": X, "density": True})],
    "jnp.histogram_bin_edges": ((X,), {"bins": 5, "range": (0.0, 1.0)}),
    "jnp.histogram2d": ((X.ravel(), X.T.ravel()), {"bins": 3, "range": ((0, 1), (0, 1))}),
    "jnp.histogramdd": ((X.T,), {"bins": 2, "range": ((0, 1),) * 3}),
    # -- products, convolutions, polynomials, interpolation ------------------------------
    "jnp.einsum": [((S("ij,jk,i->ik"), X, W, V), {}), ((S("ii->i"), SQ), {}),
                   ((S("ij,ij->"), X, X), {})],
    "jnp.tensordot": [((X, W), {"axes": 1}), ((X, X), {"axes": ((0, 1), (0, 1))})],
    "jnp.vdot": ((X, X), {}),
    "jnp.vecmat": ((Y, W), {}),
    "jnp.cross": ((X[:, :3], V), {}),
    "jnp.convolve": [((Y, V), {}), ((Y, V), {"mode": "same"})],
    "jnp.correlate": [((Y, V), {}), ((Y, V), {"mode": "full"})],
    "jnp.interp": [((X, XP, Y), {}), ((X, XP, Y), {"left": 0.0, "right": 2.0})],
    "jnp.polyval": ((Y, X), {}),
    "jnp.poly": ((Y,), {}),
    "jnp.polyadd": ((Y, V), {}),
    "jnp.polysub": ((Y, V), {}),
    "jnp.polymul": ((Y, V), {}),
    "jnp.polyder": ((Y,), {"m": 2}),
    "jnp.polyint": ((Y,), {"m": 1, "k": 0.5}),
    "jnp.polyfit": ((XP, Y, S(2)), {}),
    "jnp.roots": ((Y,), {"strip_zeros": False}),
    "jnp.vander": ((Y,), {"N": 3}),
    "jnp.unpackbits": ((XI.astype(np.uint8),), {"axis": 1}),
    # -- creation ------------------------------------------------------------------------
    "jnp.zeros": ((S((2, 3)),), {"dtype": jnp.int32}),
    "jnp.ones": ((S((2, 3)),), {}),
    "jnp.empty": ((S((2, 3)),), {}),
    "jnp.full": ((S((3, 4)), Y), {}),  # a broadcast operand as the fill value
    "jnp.full_like": ((XI, np.float32(2.5)), {"dtype": jnp.float32}),
    "jnp.eye": ((S(3), S(4)), {"k": 1}),
    "jnp.identity": ((S(3),), {}),
    "jnp.tri": ((S(3), S(4)), {"k": -1}),
    "jnp.arange": [((S(2), S(11), S(3)), {}), ((S(5),), {"dtype": jnp.float32})],
    "jnp.linspace": [((S(0.0), S(1.0), S(5)), {}), ((V, 2 * V), {"num": 4, "axis": 1})],
    "jnp.logspace": ((S(0.0), S(2.0), S(5)), {}),
    "jnp.geomspace": ((S(1.0), S(100.0), S(5)), {}),
    "jnp.meshgrid": [((Y, V), {}), ((Y, V), {"indexing": "ij"})],
    "jnp.fromfunction": ((S(lambda i, j: i * 4 + j), S((3, 4))), {"dtype": jnp.float32}),
    "jnp.bartlett": ((S(6),), {}),
    "jnp.blackman": ((S(6),), {}),
    "jnp.hamming": ((S(6),), {}),
    "jnp.hanning": ((S(6),), {}),
    "jnp.kaiser": ((S(6), S(2.0)), {}),
    "jnp.array": ((X,), {"ndmin": 3}),
    "jnp.asarray": ((XI,), {"dtype": jnp.float32}),
    "jnp.astype": ((X, S(jnp.int32)), {}),
    "jnp.array_equal": [((X, X), {}), ((X, X + 1), {})],
    "jnp.array_equiv": ((X, np.broadcast_to(Y, X.shape).copy()), {}),
    # -- higher-order helpers ------------------------------------------------------------
    "jnp.apply_along_axis": ((S(lambda v: v * v.sum()), S(1), X), {}),
    "jnp.apply_over_axes": ((S(jnp.sum), X, S([0, 1])), {}),
    "jnp.vectorize": ((X, W.T.copy()), {},
                      lambda fn, x, w: fn(lambda a, b: a @ b, signature="(n),(n)->()")(x[:2], w)),
    "jnp.frompyfunc": ((X, Y), {},
                       lambda fn, x, y: fn(lambda a, b: a * b + 1, nin=2, nout=1)(x, y)),
    # -- jax.nn --------------------------------------------------------------------------
    "jax.nn.one_hot": [((YI,), {"num_classes": 5}), ((IDX,), {"num_classes": 4, "axis": 0})],
    "jax.nn.dot_product_attention": [((*QKV,), {}), ((*QKV,), {"is_causal": True})],
    "jax.nn.scaled_matmul": ((X[None], X[None, :2], V[None, :, None], V[None, :2, None]), {}),
    "jax.nn.scaled_dot_general": ((X, W), {"dimension_numbers": (((1,), (0,)), ((), ()))}),
    # -- jax.scipy.special ---------------------------------------------------------------
    "jax.scipy.special.bernoulli": ((S(6),), {}),
    "jax.scipy.special.bessel_jn": ((5 * X,), {"v": 2}),
    "jax.scipy.special.betainc": ((X + 1, Y + 1, X), {}),
    "jax.scipy.special.hyp1f1": ((X, Y + 1, X), {}),
    "jax.scipy.special.hyp2f1": ((X, Y, Y + 1, X / 2), {}),
    "jax.scipy.special.multigammaln": ((X + 2, S(3)), {}),
    "jax.scipy.special.sph_harm_y": ((np.array([1, 2, 3], np.int32), np.array([0, 1, -2], np.int32),
                                      V, 2 * V), {"n_max": 3}),
    "jax.scipy.special.zeta": ((X + 1.5, Y), {}),
}


MODULES = {"jnp": jnp, "jax.nn": jax.nn, "jax.scipy.special": jax.scipy.special}
UFUNC_METHODS = ("reduce", "accumulate", "outer", "at", "reduceat")


def _ufunc_method_recipes(name, method):
    """Recipes for ``jnp.<name>.<method>``: on floats, then on ints (bitwise ufuncs)."""
    out = []
    for x, y in ((X, Y), (XI, YI)):
        out.append({
            "reduce": ((x,), {"axis": 1}),
            "accumulate": ((x,), {"axis": 1}),
            "outer": ((y, x[0, :3]), {}),
            "at": ((x, np.array([0, 2, 0], np.int32), x), {"inplace": False}),
            "reduceat": ((y, S(np.array([0, 1, 3]))), {}),
        }[method])
    return out


def _binary_ufuncs():
    return [n for n in sorted(dir(jnp)) if not n.startswith("_")
            and isinstance(getattr(jnp, n), jnp.ufunc) and getattr(jnp, n).nin == 2]


def census_names() -> list[str]:
    """``module.function`` names: jax.numpy's, jax.nn's and jax.scipy.special's, then
    ``jnp.<ufunc>.<method>`` for each binary ufunc."""
    out = []
    for prefix, module in MODULES.items():
        for name in sorted(dir(module)):
            if name.startswith("_") or name in SKIP:
                continue
            fn = getattr(module, name)
            if callable(fn) and not inspect.isclass(fn) and not inspect.ismodule(fn):
                out.append(f"{prefix}.{name}")
    out += [f"jnp.{u}.{m}" for u in _binary_ufuncs() for m in UFUNC_METHODS]
    return out


def column_of(qualified: str) -> str:
    """The census table's column of ``qualified``: its module, or ``jnp ufunc methods``."""
    prefix = module_of(qualified)
    return "jnp ufunc methods" if prefix == "jnp" and qualified.count(".") == 2 else prefix


def module_of(qualified: str) -> str:
    """The module prefix of ``qualified``: ``jnp``, ``jax.nn`` or ``jax.scipy.special``."""
    return max((p for p in MODULES if qualified.startswith(p + ".")), key=len)


def resolve(qualified: str):
    """The function (or ufunc method) that ``qualified`` names."""
    prefix = module_of(qualified)
    obj = MODULES[prefix]
    for part in qualified[len(prefix) + 1:].split("."):
        obj = getattr(obj, part)
    return obj


def _returns_arrays(call, args):
    """Whether ``jax.jit`` runs ``call(*args)`` to arrays."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = jax.jit(call)(*args)
        leaves = jax.tree_util.tree_leaves(out)
        return bool(leaves) and all(hasattr(a, "dtype") for a in leaves)
    except Exception:  # noqa: BLE001 - not applicable with these arguments
        return False


def _plain_call(fn):
    """(args, call) that ``fn`` accepts with plain arrays (see the module's docstring), or
    None."""
    if isinstance(fn, jnp.ufunc):
        n_required, names, variadic = fn.nin, set(), False
    else:
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            return None
        n_required = len([p for p in params if p.default is p.empty
                          and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
        names = {p.name for p in params}
        variadic = any(p.kind is p.VAR_POSITIONAL for p in params)
    attempts = []
    for x, y in ((X, Y), (XI, YI)):
        if n_required == 1:
            if "axis" in names:
                attempts.append(((x,), {"axis": 1}))
            attempts.append(((x,), {}))
        if n_required == 2 or (n_required == 0 and variadic):
            attempts.append(((x, y), {}))
    for args, kwargs in attempts:
        call = lambda *a, kwargs=kwargs: fn(*a, **kwargs)  # noqa: E731
        if _returns_arrays(call, args):
            return args, call
    return None


def _bind(fn, args, kwargs, via=None):
    """A recipe as (operands, call): ``call(*operands)`` calls ``fn`` with the static
    arguments put back in their places."""
    operands = tuple(a for a in args if not isinstance(a, S))

    def call(*ops):
        it = iter(ops)
        full = [a.value if isinstance(a, S) else next(it) for a in args]
        return via(fn, *full, **kwargs) if via else fn(*full, **kwargs)

    return operands, call


def calls(qualified: str) -> list[tuple[tuple, object]] | None:
    """The ``(operands, call)`` pairs the census runs for ``qualified``, or None where no
    recipe applies."""
    fn = resolve(qualified)
    if qualified in RECIPES:
        recipes = RECIPES[qualified]
        return [_bind(fn, *r) for r in (recipes if isinstance(recipes, list) else [recipes])]
    if module_of(qualified) == "jnp" and qualified.count(".") == 2:  # a ufunc's method
        for args, kwargs in _ufunc_method_recipes(*qualified.split(".")[1:]):
            operands, call = _bind(fn, args, kwargs)
            if _returns_arrays(call, operands):
                return [(operands, call)]
        return None
    found = _plain_call(fn)
    return None if found is None else [found]


def compare(got, want):
    """None if ``got`` equals ``want`` (integers and bools exactly, floats and complex to
    float32 tolerance), else what differs."""
    got, want = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    if len(got) != len(want):
        return f"{len(got)} outputs vs {len(want)}"
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape or g.dtype != w.dtype:
            return f"{g.dtype}{g.shape} vs {w.dtype}{w.shape}"
        if not np.issubdtype(w.dtype, np.inexact):
            if not np.array_equal(g, w):
                return "values differ"
        elif not np.allclose(g.astype(np.complex128), w.astype(np.complex128), rtol=2e-5,
                             atol=2e-6, equal_nan=True):
            return "values differ"
    return None


# primitive -> the reason the conversion gave, for each one an unsupported outcome named
REASONS: dict[str, str] = {}


def convert_and_compare(name, call, operands, reference=None, compare=compare):
    """(outcome, detail) of ``tg.jit(tg.from_jax(call))(*operands)`` against JAX's
    ``reference(*operands)`` (default: ``call`` itself, op by op), compared by
    ``compare(got, want)``. Converted first: a function can use a primitive tracegraph
    declares unsupported where JAX itself cannot run it, on this backend."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = tg.jit(tg.from_jax(call, name=name))(*operands)
    except tg.TracingError as e:
        missing = re.findall(r"^\s+(\w+) \(\d+ uses?\): (.*)$", str(e), re.M)
        if missing:
            REASONS.update(missing)
            return "unsupported", ", ".join(name for name, _ in missing)
        return "ERROR", str(e).splitlines()[0][:160]
    except Exception as e:  # noqa: BLE001 - any other failure is a bug to see
        return "ERROR", f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = (reference or call)(*operands)
    except Exception as e:  # noqa: BLE001 - a recipe JAX itself refuses
        first_line = str(e).splitlines()[0][:120]
        return "ERROR", f"JAX refuses the recipe: {type(e).__name__}: {first_line}"
    diff = compare(got, want)
    return ("WRONG", diff) if diff else ("converts", "")


def check(qualified: str):
    """(outcome, detail) for ``qualified`` (``jnp.sum``, ``jax.nn.gelu``,
    ``jnp.add.outer`` ...): each of its recipes runs; the first that does not convert
    decides (unsupported primitives of all of them are named together)."""
    found = calls(qualified)
    if qualified in NOT_APPLICABLE:
        if found is not None:
            return "ERROR", "listed as not applicable, but a recipe runs under jax.jit"
        return "n/a", NOT_APPLICABLE[qualified]
    if found is None:
        return "ERROR", "no recipe runs under jax.jit and no reason is declared"
    missing = []
    for operands, call in found:
        outcome, detail = convert_and_compare(qualified.rsplit(".", 1)[1], call, operands)
        if outcome == "unsupported":
            missing += [m for m in detail.split(", ") if m not in missing]
        elif outcome != "converts":
            return outcome, detail
    return ("unsupported", ", ".join(missing)) if missing else ("converts", "")


OUTCOMES = ("converts", "unsupported", "WRONG", "ERROR", "n/a")


def table(rows, columns):
    """A markdown table of outcome counts per column (with a total when there are
    several), then the names that do not convert, with their primitives or reason."""
    counts = {(c, o): 0 for c in columns for o in OUTCOMES}
    for column, _, outcome, _ in rows:
        counts[(column, outcome)] += 1
    total = len(columns) > 1
    lines = ["| outcome | " + " | ".join(columns) + (" | total |" if total else " |"),
             "| --- |" + " ---: |" * (len(columns) + total)]
    for o in OUTCOMES:
        n = [counts[(c, o)] for c in columns]
        lines.append(f"| {o} | " + " | ".join(map(str, n)) + (f" | {sum(n)} |" if total else " |"))
    lines.append("")
    lines += [f"- `{name}`: {outcome}, {detail}" for _, name, outcome, detail in rows
              if outcome != "converts"]
    return "\n".join(lines)


def main():
    import random_coverage

    names = census_names()
    rows = [(column_of(n), n, *check(n)) for n in names]
    print(table(rows, list(dict.fromkeys(column_of(n) for n in names))))
    print()
    rows = [("jax.random", f"jax.random.{n}", *random_coverage.check(n))
            for n in random_coverage.census_names()]
    print(table(rows, ["jax.random"]))
    print()
    print("The primitives:")
    for name, why in sorted(REASONS.items()):
        print(f"- `{name}`: {why}")


if __name__ == "__main__":
    main()
