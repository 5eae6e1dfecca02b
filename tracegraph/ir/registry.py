"""The table of ops the IR knows, and the record (`OpDef`) that describes one op.

NOTE: the table lives in the IR layer so that the verifier, parser and loader (which must
know every op's arity, attributes and type rules) need not import the op library above
them. `tracegraph.ops` fills the table when it is imported; each op is defined there once,
in one block, with all its facets (type rules, implementation, VJP, samples, reference).

An op's output type is assembled from four rules, as JAX's ``standard_primitive``
assembles an aval from ``shape_rule``, ``dtype_rule``, ``weak_type_rule`` and
``sharding_rule``: each gives one field of `TensorType` (`OpDef.infer`). So a new element
type or a sharding is a change to one rule, not to every op.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from ..errors import Error, IRError, ShapeError
from .types import DTYPE_NAMES, TensorType, as_dtype, check_sharding, dtype_name

REQUIRED = object()


class _NotDifferentiable:
    """VJP marker: the op has no gradient (comparisons, argmax, integer ops, random bits).
    Reverse mode treats its outputs as constants, as JAX does for integer outputs."""

    def __repr__(self):
        return "NOT_DIFFERENTIABLE"


NOT_DIFFERENTIABLE = _NotDifferentiable()


# -- attribute kinds -----------------------------------------------------------------
# Each kind is a function that checks and normalizes a value (from user code, the parser
# or JSON) and raises IRError if it is not of the kind.


def _int(v):
    if type(v) is int or isinstance(v, np.integer):
        return int(v)
    raise IRError(f"expected an int, got {v!r:.60}")


def _float(v):
    if type(v) in (int, float) or isinstance(v, (np.floating, np.integer)):
        return float(v)
    raise IRError(f"expected a float, got {v!r:.60}")


def _bool(v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    raise IRError(f"expected a bool, got {v!r:.60}")


def _str(v):
    if isinstance(v, str):
        return v
    raise IRError(f"expected a string, got {v!r:.60}")


def _dtype(v):
    if isinstance(v, str) and v in DTYPE_NAMES:
        return DTYPE_NAMES[v]
    try:
        dt = np.dtype(v)
    except TypeError:
        raise IRError(f"expected a dtype, got {v!r:.60}") from None
    dtype_name(dt)  # refuses dtypes the IR cannot print
    return dt


def _scalar(v):
    """A number for fills and bounds: bool, int or float, kept as given."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if type(v) is int or isinstance(v, np.integer):
        return int(v)
    if type(v) is float or isinstance(v, np.floating):
        return float(v)
    raise IRError(f"expected a number, got {v!r:.60}")


def _tuple_of(item):
    def check(v):
        if not isinstance(v, (tuple, list)):
            raise IRError(f"expected a tuple, got {v!r:.60}")
        if len(v) > 1024:
            raise IRError("attribute tuple longer than 1024 items")
        return tuple(item(x) for x in v)

    return check


def _optional(kind):
    def check(v):
        return None if v is None else kind(v)

    return check


def _name(v):
    if isinstance(v, str) and v.isidentifier():
        return v
    raise IRError(f"expected a mesh axis name (an identifier), got {v!r:.60}")


def _spec(v):
    # a partition spec, as a tuple of per-dimension entries (`check_sharding`)
    if not isinstance(v, (tuple, list)):
        raise IRError(f"expected a partition spec (a tuple of entries), got {v!r:.60}")
    return check_sharding(v, len(v))


def _graph(v):
    # Nested graphs for control flow; the Graph class lives above this module, so we
    # check by duck type (the verifier checks the nested graph itself).
    if not (hasattr(v, "nodes") and hasattr(v, "inputs") and hasattr(v, "outputs")):
        raise IRError(f"expected a graph, got {type(v).__name__}")
    return v


ATTR_KINDS: dict[str, Callable[[Any], Any]] = {
    "int": _int,
    "float": _float,
    "bool": _bool,
    "str": _str,
    "dtype": _dtype,
    "scalar": _scalar,
    "ints": _tuple_of(_int),
    "int_pairs": _tuple_of(_tuple_of(_int)),
    "opt_int": _optional(_int),
    "opt_ints": _optional(_tuple_of(_int)),
    "opt_float": _optional(_float),
    "opt_scalar": _optional(_scalar),
    "opt_dtype": _optional(_dtype),
    "names": _tuple_of(_name),  # mesh axis names: ("data", "model")
    "spec": _spec,  # one partition spec: ("data", None)
    "specs": _tuple_of(_spec),  # partition specs, one per operand: (("data", None), ())
    "graph": _graph,
    "graphs": _tuple_of(_graph),
}


@dataclasses.dataclass(frozen=True)
class Attr:
    kind: str
    default: Any = REQUIRED

    def __post_init__(self):
        if self.kind not in ATTR_KINDS:
            raise ValueError(f"unknown attribute kind {self.kind!r}")


@dataclasses.dataclass
class Sample:
    """One test input of an op: arrays (positional), attributes, and a label."""

    args: tuple
    attrs: dict = dataclasses.field(default_factory=dict)
    name: str = ""
    grad: bool = True  # include in gradient checks (some samples sit on kinks)
    # compare the VJP with jax.vjp of the implementation (False where JAX's gradient is
    # not the derivative of its forward, e.g. clamped out-of-bounds gathers, whose
    # gradients JAX drops); finite differences check it either way
    jax_vjp: bool = True


@dataclasses.dataclass
class OpDef:
    """Everything about one op. See `tracegraph.ops.defop` for how ops are declared.

    Attributes:
      name: registry name, as printed in the IR.
      shape_rule: ``(*input_types, **attrs) -> tuple[int, ...]`` (for ``multi_output``
        ops a tuple of per-output shapes); also checks the operands, raising
        `tg.ShapeError` for operands that do not fit. (``defop(shape=...)``.)
      dtype_rule: ``(*input_types, **attrs) -> np.dtype`` (a tuple for multi_output).
      weak_rule: ``(*input_types, **attrs) -> bool``: the weak-type flag (a tuple ...).
      sharding_rule: ``(*input_types, **attrs) -> partition spec | None`` (a tuple ...).
        The three are ``defop``'s ``dtype=``, ``weak=`` and ``sharding=``; `defop` fills
        in the standard rules (`tracegraph.ops.defop`) where an op gives none.
      impl: ``(*jax_arrays, **attrs) -> array | tuple of arrays`` using jax.numpy/lax.
        Both backends call this one function; there is no second implementation.
      attrs: name -> `Attr(kind, default)`; order is the printing order.
      arity: number of array inputs, or ``None`` for variadic ops.
      vjp: the reverse-mode rule (see the autodiff transform), `NOT_DIFFERENTIABLE`, or
        ``None`` while not yet written.
      samples: ``() -> list[Sample]`` for the op test matrix.
      reference: ``(*arrays, **attrs) -> array(s)`` from jax.numpy/lax, for the tests.
      random: the op draws random numbers from a key input (never merged by CSE).
      multi_output: the op returns a tuple of values (even if of length one).
      keys: the op takes PRNG key operands (random ops, and ops that move elements
        without reading them: reshapes, slices, concatenation, selection, control flow).
        Any other op given a key raises ShapeError before its rules run, so no rule
        needs to think about keys.
      interpret: for ops holding subgraphs (control flow), the interpreter's variant:
        ``(run_graph, *arrays, **attrs) -> outputs``, running the subgraphs with Python
        control flow through ``run_graph(graph, args)`` so instruments reach inside.
    """

    name: str
    shape_rule: Callable
    impl: Callable
    attrs: dict = dataclasses.field(default_factory=dict)
    arity: int | None = 1
    min_arity: int = 0
    vjp: Any = None
    samples: Callable | None = None
    reference: Callable | None = None
    random: bool = False
    multi_output: bool = False
    keys: bool = False
    tolerances: dict = dataclasses.field(default_factory=dict)
    interpret: Callable | None = None
    doc: str = ""
    dtype_rule: Callable | None = None
    weak_rule: Callable | None = None
    sharding_rule: Callable | None = None

    def check_attrs(self, attrs: dict) -> dict:
        """Validate and normalize attributes; fill defaults; refuse unknown names."""
        out = {}
        for key in attrs:
            if key not in self.attrs:
                known = ", ".join(self.attrs) or "none"
                raise IRError(f"op {self.name!r}: unknown attribute {key!r} (known: {known})")
        for key, spec in self.attrs.items():
            if key in attrs:
                try:
                    out[key] = ATTR_KINDS[spec.kind](attrs[key])
                except IRError as e:
                    raise IRError(f"op {self.name!r}, attribute {key!r}: {e}") from None
            elif spec.default is REQUIRED:
                raise IRError(f"op {self.name!r}: missing attribute {key!r}")
            else:
                out[key] = spec.default
        return out

    def check_arity(self, n: int):
        if self.arity is None:
            if n < self.min_arity:
                raise IRError(f"op {self.name!r} takes at least {self.min_arity} inputs, got {n}")
        elif n != self.arity:
            raise IRError(f"op {self.name!r} takes {self.arity} inputs, got {n}")

    def infer(self, in_types, attrs) -> tuple[TensorType, ...]:
        """Output types from input types, as a tuple (one entry per output): each
        output's `TensorType` assembled from the shape, dtype, weak and sharding rules.

        A `tg.Error` from a rule (the shape rule's `ShapeError`) passes through as it is;
        any other failure of a rule, a result that is not a shape / dtype / partition
        spec, or a multi-output result of the wrong length raises `tg.Error` naming the
        op and the rule."""
        if not self.keys:
            for t in in_types:
                if not isinstance(t.dtype, np.dtype):  # a key: rare, so one check per operand
                    raise ShapeError(
                        f"{self.name} does not take PRNG keys, got {t} (tg.random.key_data "
                        "gives a key's u32 data)"
                    )
        rule = "shape"
        try:
            shape = self.shape_rule(*in_types, **attrs)
            rule = "dtype"
            dtype = self.dtype_rule(*in_types, **attrs)
            rule = "weak"
            weak = self.weak_rule(*in_types, **attrs)
            rule = "sharding"
            sharding = self.sharding_rule(*in_types, **attrs)
        except Error:
            raise
        except Exception as e:  # a bug in a rule, or foreign attributes
            raise Error(f"op {self.name!r}: the {rule} rule failed: {type(e).__name__}: {e}") from e
        if not self.multi_output:
            try:
                return (TensorType(shape, dtype, weak, sharding),)
            except Exception as e:
                raise self._bad_result((shape,), (dtype,), (sharding,), e) from e
        n = len(shape) if isinstance(shape, tuple) else None
        for rule, value in (("shape", shape), ("dtype", dtype), ("weak", weak), ("sharding", sharding)):
            if not isinstance(value, tuple) or len(value) != n:
                raise Error(
                    f"op {self.name!r}: the {rule} rule of a multi-output op must give a tuple "
                    f"with one entry per output ({'?' if n is None else n}), got {value!r:.80}"
                )
        try:
            return tuple(map(TensorType, shape, dtype, weak, sharding))
        except Exception as e:
            raise self._bad_result(shape, dtype, sharding, e) from e

    def _bad_result(self, shapes, dtypes, shardings, e) -> Error:
        """The error for rule results that make no `TensorType`, naming the rule at fault."""
        for shape, dtype, sharding in zip(shapes, dtypes, shardings):
            if not isinstance(shape, (tuple, list)) or not all(
                isinstance(d, (int, np.integer)) for d in shape
            ):
                return Error(f"op {self.name!r}: the shape rule gave {shape!r:.60}, not a shape")
            try:
                as_dtype(dtype)
            except (TypeError, IRError):
                return Error(f"op {self.name!r}: the dtype rule gave {dtype!r:.60}, not a dtype")
            try:
                if sharding is not None:
                    check_sharding(sharding, len(shape))
            except IRError as err:
                return Error(f"op {self.name!r}: the sharding rule gave a bad sharding: {err}")
        return Error(f"op {self.name!r}: the type rules give no type: {type(e).__name__}: {e}")


_OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in _OPS:
        raise ValueError(f"op {op.name!r} is registered twice")
    for facet in ("shape_rule", "dtype_rule", "weak_rule", "sharding_rule", "impl"):
        if not callable(getattr(op, facet)):
            raise ValueError(f"op {op.name!r}: facet {facet!r} is missing")
    _OPS[op.name] = op
    return op


def lookup(name: str) -> OpDef:
    try:
        return _OPS[name]
    except KeyError:
        raise IRError(f"unknown op {name!r}") from None


def all_ops() -> dict[str, OpDef]:
    return dict(_OPS)
