"""Elementwise ops: unary math, binary arithmetic with numpy broadcasting and JAX dtype
promotion, comparisons, logical ops, where/select/clip and astype.

Most need only a shape rule (`same_shape` or `broadcast_shape`): the standard dtype and
weak rules (JAX's promotion) and sharding rule (the operands' common sharding) are
theirs. The rest name the rule that differs: float-valued ops `inexact_dtype`,
comparisons and logical ops a bool dtype."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .defop import (
    NOT_DIFFERENTIABLE,
    bind,
    unbroadcast,
    Attr,
    Sample,
    ShapeError,
    TensorType,
    broadcast_shape,
    defop,
    fixed_dtype,
    as_inexact,
    inexact_dtype,
    inexact_weak,
    default_float,
    default_int,
    numeric_dtype,
    never_weak,
    promote,
    promoted_weak,
    result_type,
    same_shape,
    standard_dtype,
    standard_weak,
    to_inexact,
)
from ..core import weak_of, weak_value
from ..ir.types import is_bool, is_inexact, is_int
from .samples import BOOL, FLOATS, INTS, arr, positive

# -- samples ------------------------------------------------------------------------

_SHAPES = [(), (5,), (2, 3), (0, 3)]


def _unary_samples(dtypes=FLOATS, make=arr, ints=()):
    out = [Sample((make(s, dt),), name=f"{dt}{list(s)}") for dt in dtypes for s in _SHAPES]
    out += [Sample((arr((2, 3), dt, -5, 5),), name=f"{dt}-int-input") for dt in ints]
    return out


def _binary_samples(dtypes=FLOATS, low=-2.0, high=2.0, rhs=arr, mixed=True):
    out = []
    for dt in dtypes:
        out += [
            Sample((arr((2, 3), dt, low, high), rhs((2, 3), dt, tag="b")), name=f"{dt}-same"),
            Sample((arr((4, 1, 3), dt, low, high), rhs((2, 1), dt, tag="b")), name=f"{dt}-bcast"),
            Sample((arr((), dt, low, high), rhs((3,), dt, tag="b")), name=f"{dt}-scalar"),
            Sample((arr((0, 3), dt, low, high), rhs((3,), dt, tag="b")), name=f"{dt}-empty"),
        ]
    if mixed:
        out.append(
            Sample((arr((2, 3), "f32", low, high), arr((3,), "bf16", tag="b")), name="mixed-f32-bf16")
        )
        out.append(Sample((arr((2, 3), "i32", 1, 5), arr((3,), "f16", tag="b")), name="mixed-i32-f16"))
    return out


def _nonzero(shape, dtype, tag=""):
    a = arr(shape, dtype, 0.5, 2.0, tag)
    return a if a.dtype.kind == "u" else a * (1 - 2 * (arr(shape, "bool", tag=tag + "s")))


def _no_bool(name, shape_rule):
    """``shape_rule``, refusing bool operands (jax.numpy's op has no bool form)."""

    def rule(*types, **attrs):
        if standard_dtype(*types) == np.bool_:  # after promotion: bool - 1 is an int
            raise ShapeError(f"{name} does not take bool operands, got " + ", ".join(map(str, types)))
        return shape_rule(*types, **attrs)

    return rule


# -- unary --------------------------------------------------------------------------


_inexact = as_inexact


def _float_op(name, fn, vjp, make=arr, reference=None, doc=""):
    return defop(
        name,
        shape=same_shape,
        dtype=inexact_dtype,
        weak=inexact_weak,
        impl=fn,
        vjp=vjp,
        samples=lambda: _unary_samples(FLOATS, make, ints=("i32",)),
        reference=reference or fn,
        doc=doc,
    )


neg = defop(
    "neg",
    shape=_no_bool("neg", same_shape),
    impl=jnp.negative,
    vjp=lambda ct, x, *, out: [-ct],
    samples=lambda: _unary_samples(FLOATS + ("i32", "i8")),
    reference=lambda x: -x,
)

abs_ = defop(
    "abs",
    shape=same_shape,
    impl=jnp.abs,
    vjp=lambda ct, x, *, out: [ct * bind("sign", x)],
    samples=lambda: _unary_samples(FLOATS + ("i32",)),
    reference=jnp.abs,
)

exp = _float_op("exp", jnp.exp, vjp=lambda ct, x, *, out: [ct * out])
log = _float_op("log", jnp.log, vjp=lambda ct, x, *, out: [ct / x], make=positive)
log1p = _float_op("log1p", jnp.log1p, vjp=lambda ct, x, *, out: [ct / (x + 1)], make=positive)
sqrt = _float_op("sqrt", jnp.sqrt, vjp=lambda ct, x, *, out: [ct / (out * 2)], make=positive)
rsqrt = _float_op(
    "rsqrt",
    lambda x: lax.rsqrt(_inexact(x)),
    vjp=lambda ct, x, *, out: [ct * out / x * -0.5],  # d x^-1/2 = -1/2 x^-3/2
    make=positive,
    reference=lambda x: 1 / jnp.sqrt(x),
)
sin = _float_op("sin", jnp.sin, vjp=lambda ct, x, *, out: [ct * bind("cos", x)])
cos = _float_op("cos", jnp.cos, vjp=lambda ct, x, *, out: [-(ct * bind("sin", x))])
tanh = _float_op("tanh", jnp.tanh, vjp=lambda ct, x, *, out: [ct * (1 - out * out)])
sigmoid = _float_op(
    "sigmoid",
    lambda x: jax.nn.sigmoid(_inexact(x)),
    vjp=lambda ct, x, *, out: [ct * out * (1 - out)],
    reference=lambda x: 1 / (1 + jnp.exp(-x)),
)
erf = _float_op(
    "erf",
    jax.scipy.special.erf,
    vjp=lambda ct, x, *, out: [ct * bind("exp", -(x * x)) * (2 / math.sqrt(math.pi))],
)

# inverse trigonometric and hyperbolic functions and the cube root (jax.numpy's arcsin ...)


def _in_unit(shape, dtype, tag=""):  # the domain of asin, acos and atanh
    return arr(shape, dtype, -0.9, 0.9, tag)


def _above_one(shape, dtype, tag=""):  # the domain of acosh
    return arr(shape, dtype, 1.1, 3.0, tag)


asin = _float_op("asin", jnp.arcsin, vjp=lambda ct, x, *, out: [ct * bind("rsqrt", 1 - x * x)], make=_in_unit)
acos = _float_op("acos", jnp.arccos, vjp=lambda ct, x, *, out: [-(ct * bind("rsqrt", 1 - x * x))], make=_in_unit)
atan = _float_op("atan", jnp.arctan, vjp=lambda ct, x, *, out: [ct / (x * x + 1)])
asinh = _float_op("asinh", jnp.arcsinh, vjp=lambda ct, x, *, out: [ct * bind("rsqrt", x * x + 1)])
acosh = _float_op(
    "acosh", jnp.arccosh, vjp=lambda ct, x, *, out: [ct * bind("rsqrt", x * x - 1)], make=_above_one
)
atanh = _float_op("atanh", jnp.arctanh, vjp=lambda ct, x, *, out: [ct / (1 - x * x)], make=_in_unit)
cbrt = _float_op(
    "cbrt",
    jnp.cbrt,
    vjp=lambda ct, x, *, out: [ct / (out * out * 3)],  # 1/3 x^(-2/3), infinite at 0 as in JAX
    make=lambda shape, dtype, tag="": _nonzero(shape, dtype, tag),
    doc="The real cube root: negative for negative x (pow(x, 1/3) is NaN there).",
)


def _with_weak_int(x, **_):
    # jnp.maximum(x, 0): x promoted with a weak int (bool and weak narrow ints: the default int)
    return promote(x, TensorType((), default_int(), True))


relu = defop(
    "relu",
    shape=same_shape,
    dtype=lambda x: _with_weak_int(x)[0],
    weak=lambda x: _with_weak_int(x)[1],
    impl=jax.nn.relu,
    vjp=lambda ct, x, *, out: [bind("where", x > 0, ct, 0)],  # 0 at the kink, as JAX
    samples=lambda: _unary_samples(FLOATS + ("i32",)),
    reference=lambda x: jnp.maximum(x, 0),
)

gelu = defop(
    "gelu",
    shape=same_shape,
    dtype=inexact_dtype,
    weak=never_weak,  # jax.nn.gelu's result is never weak
    impl=lambda x, *, approximate: jax.nn.gelu(x, approximate=approximate),
    attrs={"approximate": Attr("bool", True)},
    vjp=lambda ct, x, *, out, approximate: [ct * _gelu_derivative(x, approximate)],
    samples=lambda: _unary_samples(("f32", "f64", "bf16"))
    + [Sample((arr((2, 3), "f32"),), {"approximate": False}, name="exact")],
    reference=lambda x, approximate=True: jax.nn.gelu(x, approximate=approximate),
)

sign = defop(
    "sign",
    shape=_no_bool("sign", same_shape),
    impl=jnp.sign,
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: _unary_samples(FLOATS + ("i32",)),
    reference=jnp.sign,
)
floor = defop(
    "floor",
    shape=same_shape,
    impl=jnp.floor,
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: _unary_samples(FLOATS),
    reference=jnp.floor,
)
ceil = defop(
    "ceil",
    shape=same_shape,
    impl=jnp.ceil,
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: _unary_samples(FLOATS),
    reference=jnp.ceil,
)
round_ = defop(
    "round",
    shape=_no_bool("round", same_shape),
    impl=jnp.round,
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: _unary_samples(FLOATS),
    reference=jnp.round,
    doc="Round half to even, as numpy and jax.numpy do.",
)


logical_not = defop(
    "logical_not",
    shape=same_shape,
    dtype=fixed_dtype(np.bool_),
    # jnp.logical_not is ne(x, 0) but for bool, and the 0 is a weak Python scalar only
    # for a weak scalar x of a default dtype
    weak=lambda x: x.weak and (x.dtype == np.bool_ or (
        x.ndim == 0 and x.dtype in (default_int(), default_float()))),
    impl=jnp.logical_not,
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: _unary_samples(BOOL + ("i32",)),
    reference=lambda x: ~(x.astype(bool)),
)


def _gelu_derivative(x, approximate):
    if approximate:  # d/dx 0.5 x (1 + tanh(c (x + 0.044715 x^3)))
        c = math.sqrt(2 / math.pi)
        t = bind("tanh", (x + x * x * x * 0.044715) * c)
        return (t + 1) * 0.5 + x * 0.5 * (1 - t * t) * c * (x * x * (3 * 0.044715) + 1)
    # exact: Phi(x) + x phi(x)
    cdf = (bind("erf", x * (1 / math.sqrt(2))) + 1) * 0.5
    pdf = bind("exp", x * x * -0.5) * (1 / math.sqrt(2 * math.pi))
    return cdf + x * pdf


# -- binary -------------------------------------------------------------------------


def _div_dtype(x, y, **_):
    return to_inexact(standard_dtype(x, y))


def _both_weak(x, y, **_):
    # e.g. comparing two weakly typed values (Python scalars) gives a weak bool, as in JAX
    return x.weak and y.weak


add = defop(
    "add",
    shape=broadcast_shape,
    impl=jnp.add,
    vjp=lambda ct, x, y, *, out: [unbroadcast(ct, x.shape), unbroadcast(ct, y.shape)],
    arity=2,
    samples=lambda: _binary_samples(FLOATS + INTS),
    reference=lambda x, y: x + y,
)
sub = defop(
    "sub",
    shape=_no_bool("sub", broadcast_shape),
    impl=jnp.subtract,
    vjp=lambda ct, x, y, *, out: [unbroadcast(ct, x.shape), unbroadcast(-ct, y.shape)],
    arity=2,
    samples=lambda: _binary_samples(FLOATS + ("i32",)),
    reference=lambda x, y: x - y,
)
mul = defop(
    "mul",
    shape=broadcast_shape,
    impl=jnp.multiply,
    vjp=lambda ct, x, y, *, out: [unbroadcast(ct * y, x.shape), unbroadcast(ct * x, y.shape)],
    arity=2,
    samples=lambda: _binary_samples(FLOATS + INTS + BOOL),
    reference=lambda x, y: x * y,
)
div = defop(
    "div",
    shape=broadcast_shape,
    dtype=_div_dtype,
    impl=jnp.true_divide,
    vjp=lambda ct, x, y, *, out: [
        unbroadcast(ct / y, x.shape),
        unbroadcast(-(ct * out) / y, y.shape),
    ],
    arity=2,
    samples=lambda: _binary_samples(FLOATS + ("i32",), rhs=_nonzero),
    reference=lambda x, y: x / y,
)
def _pow_weak(x, y):
    # jnp.power: integer results are computed strong; a float base with an integer
    # exponent goes to lax.pow unpromoted (weak only if both are); else the promotion's
    if is_int(numeric_dtype(x, y)):
        return False
    if is_inexact(x.dtype) and is_int(y.dtype):
        return x.weak and y.weak
    return promote(x, y)[1]


pow_ = defop(
    "pow",
    shape=broadcast_shape,
    dtype=numeric_dtype,
    weak=_pow_weak,
    # under jit, so that a concrete scalar exponent does not take jnp.power's integer_pow
    # path, whose weak flag differs from the traced one (eager and jit would disagree)
    impl=jax.jit(jnp.power),
    vjp=lambda ct, x, y, *, out: _pow_vjp(ct, x, y, out),
    # bf16: gradients sum products with cancellation, a few bf16 ulps apart from JAX's order
    tolerances={"bf16": (5e-2, 5e-2)},
    arity=2,
    samples=lambda: _binary_samples(FLOATS, low=0.5, high=2.0)
    + [Sample((arr((2, 3), "i32", 0, 4), arr((2, 3), "i32", 0, 3, "b")), name="i32")],
    reference=lambda x, y: x**y,
)
maximum = defop(
    "maximum",
    shape=broadcast_shape,
    impl=jnp.maximum,
    vjp=lambda ct, x, y, *, out: _minmax_vjp(ct, x, y, bind("gt", x, y)),
    arity=2,
    samples=lambda: _binary_samples(FLOATS + ("i32",)),
    reference=jnp.maximum,
)
minimum = defop(
    "minimum",
    shape=broadcast_shape,
    impl=jnp.minimum,
    vjp=lambda ct, x, y, *, out: _minmax_vjp(ct, x, y, bind("lt", x, y)),
    arity=2,
    samples=lambda: _binary_samples(FLOATS + ("i32",)),
    reference=jnp.minimum,
)
def _floor_divide_shape(x, y):
    # jnp.floor_divide mixes its weak operands with strong float constants (lax.select
    # refuses the mix) where both are weak floats narrower than the default
    dt = numeric_dtype(x, y)
    if x.weak and y.weak and is_inexact(dt) and dt != default_float():
        raise ShapeError(f"floor_divide of two weak {dt} operands fails in jax.numpy")
    return broadcast_shape(x, y)


def _floor_divide_dtype(x, y):
    # two weak signed ints meet weak int literals in jnp.floor_divide: the default int
    dt = numeric_dtype(x, y)
    return default_int() if x.weak and y.weak and dt.kind == "i" else dt


floor_divide = defop(
    "floor_divide",
    shape=_floor_divide_shape,
    dtype=_floor_divide_dtype,
    impl=jnp.floor_divide,
    arity=2,
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: _binary_samples(("f32", "i32"), rhs=_nonzero),
    reference=lambda x, y: x // y,
)
remainder = defop(
    "remainder",
    shape=broadcast_shape,
    dtype=numeric_dtype,
    impl=jnp.remainder,
    # x % y = x - y * floor(x / y): d/dx = 1, d/dy = -floor(x / y)
    vjp=lambda ct, x, y, *, out: [
        unbroadcast(ct, x.shape),
        unbroadcast(-(ct * bind("floor_divide", x, y)), y.shape),
    ],
    arity=2,
    samples=lambda: _binary_samples(("f32", "i32"), rhs=_nonzero),
    reference=lambda x, y: x % y,
    doc="Python/numpy modulo: the result has the sign of the divisor.",
)


def _pow_vjp(ct, x, y, out):
    # d/dx x^y = y x^(y-1) (0 where y == 0); d/dy x^y = log(x) x^y (0 where x == 0), as JAX;
    # computed in the result dtype (y - 1 in bf16 would round before the pow)
    x, y = (t if t.dtype == out.dtype else bind("astype", t, dtype=out.dtype) for t in (x, y))
    dx = bind("where", y == 0, 0, y * bind("pow", x, y - 1))
    safe_x = bind("where", x == 0, 1, x)
    dy = bind("where", x == 0, 0, bind("log", safe_x) * out)
    return [unbroadcast(ct * dx, x.shape), unbroadcast(ct * dy, y.shape)]


def _minmax_vjp(ct, x, y, x_wins):
    # Ties split the cotangent evenly, as JAX does.
    wx = bind("where", x_wins, 1.0, bind("where", x == y, 0.5, 0.0))
    return [unbroadcast(ct * wx, x.shape), unbroadcast(ct * (1 - wx), y.shape)]


def _comparison(name, fn, reference):
    return defop(
        name,
        shape=broadcast_shape,
        dtype=fixed_dtype(np.bool_),
        weak=promoted_weak,
        impl=fn,
        arity=2,
        vjp=NOT_DIFFERENTIABLE,
        samples=lambda: _binary_samples(("f32", "i32", "bf16")),
        reference=reference,
    )


equal = _comparison("eq", jnp.equal, lambda x, y: x == y)
not_equal = _comparison("ne", jnp.not_equal, lambda x, y: x != y)
less = _comparison("lt", jnp.less, lambda x, y: x < y)
less_equal = _comparison("le", jnp.less_equal, lambda x, y: x <= y)
greater = _comparison("gt", jnp.greater, lambda x, y: x > y)
greater_equal = _comparison("ge", jnp.greater_equal, lambda x, y: x >= y)


def _logical(name, fn, reference):
    return defop(
        name,
        shape=broadcast_shape,
        dtype=fixed_dtype(np.bool_),
        weak=never_weak,
        impl=fn,
        arity=2,
        vjp=NOT_DIFFERENTIABLE,
        samples=lambda: _binary_samples(BOOL, mixed=False)
        + [Sample((arr((3,), "i32"), arr((3,), "bool", tag="b")), name="int-bool")],
        reference=reference,
    )


logical_and = _logical("logical_and", jnp.logical_and, lambda x, y: x.astype(bool) & y.astype(bool))
logical_or = _logical("logical_or", jnp.logical_or, lambda x, y: x.astype(bool) | y.astype(bool))
logical_xor = _logical("logical_xor", jnp.logical_xor, lambda x, y: x.astype(bool) ^ y.astype(bool))


def _atan2_vjp(ct, y, x, out):
    # d atan2(y, x) = (x dy - y dx) / (x^2 + y^2), computed in the result dtype
    y, x = (t if t.dtype == out.dtype else bind("astype", t, dtype=out.dtype) for t in (y, x))
    r2 = x * x + y * y
    return [unbroadcast(ct * x / r2, y.shape), unbroadcast(-(ct * y) / r2, x.shape)]


atan2 = defop(
    "atan2",
    shape=broadcast_shape,
    dtype=_div_dtype,
    impl=jnp.arctan2,
    vjp=lambda ct, y, x, *, out: _atan2_vjp(ct, y, x, out),
    arity=2,
    samples=lambda: _binary_samples(FLOATS + ("i32",), rhs=_nonzero),
    reference=lambda y, x: jnp.arctan2(y, x),
    doc="``atan2(y, x)``: the angle of the point (x, y), in (-pi, pi].",
)


# -- bits of integers (and bools) ---------------------------------------------------


def _bits_shape(name, allow_bool):
    """``broadcast_shape`` for operands whose promoted dtype is an integer (or a bool)."""

    def rule(*types, **attrs):
        dt = np.dtype(standard_dtype(*types))
        if not (dt.kind in "iu" or (allow_bool and dt.kind == "b")):
            kinds = "integer or bool" if allow_bool else "integer"
            raise ShapeError(f"{name} takes {kinds} operands, got " + ", ".join(map(str, types)))
        return broadcast_shape(*types, **attrs)

    return rule


def _bit_samples(dtypes, rhs=arr):
    same = [Sample((arr((2, 3), dt, -100, 100), rhs((2, 3), dt, tag="b")), name=f"{dt}-same") for dt in dtypes]
    return same + [
        Sample((arr((4, 1, 3), "i32", -100, 100), rhs((2, 1), "i32", tag="b")), name="bcast"),
        Sample((arr((0, 3), "i32"), rhs((3,), "i32", tag="b")), name="empty"),
        Sample((arr((3,), "i32", -100, 100), rhs((3,), "u8", tag="b")), name="mixed-i32-u8"),
    ]


def _bitwise(name, fn, reference):
    return defop(
        name,
        shape=_bits_shape(name, allow_bool=True),
        impl=fn,
        arity=2,
        vjp=NOT_DIFFERENTIABLE,
        samples=lambda: _bit_samples(INTS + BOOL),
        reference=reference,
        doc=f"``jnp.{name}``: bitwise on integers, logical on bools.",
    )


bitwise_and = _bitwise("bitwise_and", jnp.bitwise_and, lambda x, y: x & y)
bitwise_or = _bitwise("bitwise_or", jnp.bitwise_or, lambda x, y: x | y)
bitwise_xor = _bitwise("bitwise_xor", jnp.bitwise_xor, lambda x, y: x ^ y)

bitwise_not = defop(
    "bitwise_not",
    shape=_bits_shape("bitwise_not", allow_bool=True),
    impl=jnp.bitwise_not,
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: _unary_samples(INTS + BOOL),
    reference=lambda x: ~x,
    doc="``~x``: two's complement on integers, logical not on bools.",
)


def _shift_dtype(*types, **_):
    # jax.numpy's shifts promote by `jax.dtypes.result_type` (weak narrow ints widen) and
    # shift bools as the default int
    dt = result_type(*types)[0]
    return default_int() if is_bool(dt) else dt


def _shift_impl(fn):
    """A lax shift with jax.numpy's promotion and broadcasting (lax does neither)."""

    def impl(x, y):
        dt = jnp.result_type(x, y)
        dt = default_int() if dt == np.bool_ else dt
        out = fn(*jnp.broadcast_arrays(jnp.asarray(x, dt), jnp.asarray(y, dt)))
        return weak_value(out, dt) if weak_of(x) and weak_of(y) else out

    return impl


def _shift_amount(shape, dtype, tag=""):  # within the width of u8 (XLA defines wider shifts)
    return arr(shape, dtype, 0, 7, tag)


def _shift(name, fn, reference, doc):
    return defop(
        name,
        shape=_bits_shape(name, allow_bool=True),
        dtype=_shift_dtype,
        weak=lambda *types, **_: all(t.weak for t in types),  # weak bools too, as jax.numpy
        impl=_shift_impl(fn),
        arity=2,
        vjp=NOT_DIFFERENTIABLE,
        samples=lambda: _bit_samples(INTS, rhs=_shift_amount),
        reference=reference,
        doc=doc,
    )


shift_left = _shift("shift_left", lax.shift_left, jnp.left_shift, "``x << y``")
def _numpy_shift_right(kind):
    """numpy reference of a right shift that fills with the top bit (``kind`` "i") or with
    zeros ("u"), on the operands promoted as jax.numpy promotes them."""

    def reference(x, y):
        dt = np.dtype(jnp.result_type(x, y))
        dt = np.dtype(default_int()) if dt == np.bool_ else dt
        a, b = np.broadcast_arrays(np.asarray(x).astype(dt), np.asarray(y).astype(dt))
        view = np.dtype(f"{kind}{dt.itemsize}")
        return jnp.asarray((a.view(view) >> b.astype(view)).view(dt))

    return reference


shift_right_arithmetic = _shift(
    "shift_right_arithmetic",
    lax.shift_right_arithmetic,
    _numpy_shift_right("i"),
    "``lax.shift_right_arithmetic``: fills with the top bit (``x >> y`` of signed integers)",
)
shift_right_logical = _shift(
    "shift_right_logical",
    lax.shift_right_logical,
    _numpy_shift_right("u"),
    "``lax.shift_right_logical``: fills with zeros (``x >> y`` of unsigned integers)",
)


def _set_bits(x: np.ndarray) -> np.ndarray:
    # of the two's complement (numpy's bitwise_count counts the bits of abs(x))
    bits = np.unpackbits(x.reshape(-1, 1).view(np.uint8), axis=1).sum(axis=1)
    return bits.reshape(x.shape).astype(x.dtype)


population_count = defop(
    "population_count",
    shape=_bits_shape("population_count", allow_bool=False),
    impl=lax.population_count,
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: _unary_samples(INTS),
    reference=lambda x: _set_bits(np.asarray(x)),
    doc="``lax.population_count``: the number of set bits, in the operand's dtype.",
)


# -- selection ----------------------------------------------------------------------


where = defop(
    "where",
    keys=True,
    shape=broadcast_shape,
    dtype=lambda c, x, y: standard_dtype(x, y),  # the condition takes no part
    weak=lambda c, x, y: standard_weak(x, y),
    impl=jnp.where,
    vjp=lambda ct, c, x, y, *, out: [
        None,
        unbroadcast(bind("where", c, ct, 0), x.shape),
        unbroadcast(bind("where", c, 0, ct), y.shape),
    ],
    arity=3,
    samples=lambda: [
        Sample((arr((2, 3), "bool"), arr((2, 3)), arr((2, 3), tag="y")), name="same"),
        Sample((arr((2, 1), "bool"), arr((3,)), arr((), tag="y")), name="bcast"),
        Sample((arr((4,), "bool"), arr((4,), "i32"), arr((4,), "f16")), name="promote"),
        Sample((arr((0, 2), "bool"), arr((0, 2), "f64"), arr((2,), "f64")), name="empty"),
    ],
    reference=lambda c, x, y: jnp.where(c, x, y),
    doc="numpy-style where: broadcasts all three operands and promotes x and y.",
)


def _select_shape(p, x, y, **_):
    if p.dtype.kind != "b":
        raise ShapeError(f"select needs a bool predicate, got {p}")
    if x.shape != y.shape or x.dtype != y.dtype:
        raise ShapeError(f"select needs branches of one type, got {x} and {y}")
    if p.shape not in ((), x.shape):
        raise ShapeError(f"select predicate {p} must be a scalar or of shape {list(x.shape)}")
    return x.shape


select = defop(
    "select",
    keys=True,
    shape=_select_shape,
    dtype=lambda p, x, y: x.dtype,
    weak=lambda p, x, y: _both_weak(x, y),
    impl=lax.select,
    vjp=lambda ct, p, x, y, *, out: [
        None,
        bind("where", p, ct, 0),
        bind("where", p, 0, ct),
    ],
    arity=3,
    samples=lambda: [
        Sample((arr((2, 3), "bool"), arr((2, 3)), arr((2, 3), tag="y")), name="f32"),
        Sample((arr((5,), "bool"), arr((5,), "i32"), arr((5,), "i32", tag="y")), name="i32"),
    ],
    reference=lambda p, x, y: jnp.where(p, x, y),
    doc="lax.select: predicate, then the true and false values, all of one shape, no promotion.",
)


def _clip_promote(x, lo, hi):
    # the bounds are Python scalars: weakly typed stand-ins of their kind
    stand_ins = [TensorType((), x.dtype, x.weak)]
    for b in (lo, hi):
        if b is not None:
            stand_ins.append(TensorType((), default_float() if isinstance(b, float) else default_int(), True))
    return promote(*stand_ins)


clip = defop(
    "clip",
    shape=same_shape,
    dtype=lambda x, *, lo, hi: _clip_promote(x, lo, hi)[0],
    weak=lambda x, *, lo, hi: _clip_promote(x, lo, hi)[1],
    impl=lambda x, *, lo, hi: jnp.clip(x, lo, hi),
    vjp=lambda ct, x, *, out, lo, hi: [ct * _clip_pass(x, lo, hi)],
    attrs={"lo": Attr("opt_scalar", None), "hi": Attr("opt_scalar", None)},
    samples=lambda: [
        Sample((arr((2, 3)),), {"lo": -0.5, "hi": 0.5}, name="both"),
        Sample((arr((4,), "f64"),), {"lo": None, "hi": 1.0}, name="hi-only"),
        Sample((arr((4,), "i32", -5, 5),), {"lo": -2, "hi": 3}, name="int"),
        Sample((arr((3,), "bf16"),), {"lo": 0.0, "hi": None}, name="lo-only"),
    ],
    reference=lambda x, lo=None, hi=None: jnp.clip(x, lo, hi),
)


def _clip_pass(x, lo, hi):
    # jnp.clip is minimum(maximum(x, lo), hi): each bound passes half at a tie
    w = 1.0
    if lo is not None:
        w = bind("where", x > lo, 1.0, bind("where", x == lo, 0.5, 0.0))
    if hi is not None:
        w = w * bind("where", x < hi, 1.0, bind("where", x == hi, 0.5, 0.0))
    return w


astype = defop(
    "astype",
    shape=same_shape,
    # jax gives f32 for an f64 request while x64 is off: the IR says what will run
    dtype=lambda x, *, dtype: np.dtype(jax.dtypes.canonicalize_dtype(dtype)),
    weak=never_weak,
    impl=lambda x, *, dtype: lax.convert_element_type(x, dtype),
    vjp=lambda ct, x, *, out, dtype: [bind("astype", ct, dtype=x.dtype)],
    attrs={"dtype": Attr("dtype")},
    samples=lambda: [
        Sample((arr((2, 3)),), {"dtype": "bf16"}, name="f32->bf16"),
        Sample((arr((2, 3), "f64"),), {"dtype": "f32"}, name="f64->f32"),
        Sample((arr((4,), "f32", -9, 9),), {"dtype": "i32"}, name="f32->i32"),
        Sample((arr((4,), "i32"),), {"dtype": "f16"}, name="i32->f16"),
        Sample((arr((4,), "bool"),), {"dtype": "f32"}, name="bool->f32"),
        Sample((arr((3,)),), {"dtype": "bool"}, name="f32->bool"),
        Sample((arr((0,)),), {"dtype": "f64"}, name="empty"),
    ],
    reference=lambda x, dtype: x.astype(dtype),
)
