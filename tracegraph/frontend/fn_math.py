"""The tg.* elementwise functions: numpy names over the elementwise ops.

Arrays are positional, static parameters are keywords; Python scalars are weakly typed
(``x * 2`` keeps x's dtype), as in JAX.
"""

from __future__ import annotations

import sys

import jax
import numpy as np

from ..core import Tensor, bind, weak_of
from ..core.trace import bind1, bind2
from ..errors import locate, mark_public
from ..ir.types import TensorType
from ..ops.defop import promote, to_inexact


# The elementwise functions run on every op of define-by-run: each is its own public
# wrapper (`mark_public`), one frame instead of two; `public_functions` names each by
# the name this module gives it (``negative``, not ``neg``).


def _unary(op):
    def f(x):
        try:
            return bind1(op, x)
        except Exception as e:
            new = locate(e, f._tg_public, sys._getframe(1))
            if new is None or new is e:
                raise
            raise new from None

    f.__name__ = op
    f.__doc__ = f"Elementwise ``{op}`` (op ``{op}``)."
    return mark_public(f, op)


def _binary(op, name=None):
    name = name or op

    def f(x, y):
        try:
            return bind2(op, x, y)
        except Exception as e:
            new = locate(e, f._tg_public, sys._getframe(1))
            if new is None or new is e:
                raise
            raise new from None

    f.__name__ = name
    f.__doc__ = f"Elementwise ``{name}`` with numpy broadcasting (op ``{op}``)."
    return mark_public(f, name)


negative = _unary("neg")
abs = _unary("abs")  # noqa: A001 - numpy's name
exp = _unary("exp")
log = _unary("log")
log1p = _unary("log1p")
sqrt = _unary("sqrt")
rsqrt = _unary("rsqrt")
sin = _unary("sin")
cos = _unary("cos")
tanh = _unary("tanh")
sigmoid = _unary("sigmoid")
relu = _unary("relu")
erf = _unary("erf")
sign = _unary("sign")
floor = _unary("floor")
ceil = _unary("ceil")
round = _unary("round")  # noqa: A001 - numpy's name
logical_not = _unary("logical_not")
arcsin = _unary("asin")
arccos = _unary("acos")
arctan = _unary("atan")
arcsinh = _unary("asinh")
arccosh = _unary("acosh")
arctanh = _unary("atanh")
cbrt = _unary("cbrt")
bitwise_not = _unary("bitwise_not")
invert = bitwise_not


def gelu(x, *, approximate: bool = True):
    """GELU; ``approximate=True`` is the tanh form (JAX's default), False the erf form."""
    return bind("gelu", x, approximate=approximate)


add = _binary("add")
subtract = _binary("sub", "subtract")
multiply = _binary("mul", "multiply")
divide = _binary("div", "divide")
true_divide = divide
power = _binary("pow", "power")
maximum = _binary("maximum")
minimum = _binary("minimum")
floor_divide = _binary("floor_divide")
remainder = _binary("remainder")
mod = remainder
equal = _binary("eq", "equal")
not_equal = _binary("ne", "not_equal")
less = _binary("lt", "less")
less_equal = _binary("le", "less_equal")
greater = _binary("gt", "greater")
greater_equal = _binary("ge", "greater_equal")
logical_and = _binary("logical_and")
logical_or = _binary("logical_or")
logical_xor = _binary("logical_xor")
arctan2 = _binary("atan2", "arctan2")
bitwise_and = _binary("bitwise_and")
bitwise_or = _binary("bitwise_or")
bitwise_xor = _binary("bitwise_xor")
left_shift = _binary("shift_left", "left_shift")


def right_shift(x, y):
    """numpy ``right_shift`` (``x >> y``): arithmetic for signed integers (op
    ``shift_right_arithmetic``), logical for unsigned ones (op ``shift_right_logical``)."""
    unsigned = all(np.dtype(getattr(a, "dtype", np.int32)).kind == "u" for a in (x, y) if not isinstance(a, int))
    return bind("shift_right_logical" if unsigned else "shift_right_arithmetic", x, y)


def bitwise_count(x):
    """numpy ``bitwise_count``: the number of set bits of ``abs(x)``, as uint8 (ops ``abs``,
    ``population_count``, which counts the two's complement bits in the operand's dtype,
    and ``astype``)."""
    return bind("astype", bind("population_count", bind("abs", x)), dtype=np.uint8)


def square(x):
    return bind("mul", x, x)


def reciprocal(x):
    return bind("div", 1.0, x)


def where(condition, x, y):
    """numpy ``where``: pick ``x`` where ``condition`` holds, else ``y`` (broadcasting)."""
    return bind("where", condition, x, y)


def select(pred, on_true, on_false):
    """``lax.select``: operands of one shape and dtype, no broadcasting or promotion."""
    return bind("select", pred, on_true, on_false)


def clip(x, min=None, max=None):  # noqa: A002 - numpy's names
    """Clamp to ``[min, max]`` (static Python numbers; either may be None)."""
    return bind("clip", x, lo=min, hi=max)


def astype(x, dtype):
    """Convert to ``dtype`` (a numpy dtype, jnp dtype or a name like ``"bf16"``)."""
    return bind("astype", x, dtype=dtype)


# -- special functions and float bits ---------------------------------------------------------


def _type_of(x) -> TensorType:
    if isinstance(x, Tensor):
        return x.type
    dt = getattr(x, "dtype", None)
    if dt is not None:
        return TensorType(np.shape(x), np.dtype(dt), weak_of(x))
    return TensorType(np.shape(x), np.dtype(jax.dtypes.canonicalize_dtype(np.result_type(x))), weak_of(x))


def _as_inexact_of(x, *others):
    """``x`` converted to jax.numpy's promote_args_inexact dtype of ``x`` and ``others``."""
    types = [_type_of(t) for t in (x, *others)]
    dt = to_inexact(promote(*types)[0])
    return x if types[0].dtype == dt else bind("astype", x, dtype=dt)


lgamma = _unary("lgamma")
lgamma.__doc__ = "``log(|Gamma(x)|)`` (op ``lgamma``; jax.scipy.special.gammaln, tf.math.lgamma)."
digamma = _unary("digamma")
digamma.__doc__ = "The digamma function, ``d/dx lgamma(x)`` (op ``digamma``)."
igamma = _binary("igamma")
igamma.__doc__ = "The regularized lower incomplete gamma function P(a, x) (op ``igamma``)."
igammac = _binary("igammac")
igammac.__doc__ = "The regularized upper incomplete gamma function Q(a, x) (op ``igammac``)."
nextafter = _binary("nextafter")
nextafter.__doc__ = "numpy ``nextafter``: the next float after ``x`` towards ``y`` (op ``nextafter``)."


def polygamma(n, x):
    """scipy/jax.scipy ``polygamma(n, x)``: the n-th derivative of digamma (``n`` a
    non-negative integer, as an array or a number; op ``polygamma``).

    Example: ``tg.math.polygamma(1, x)`` is the trigamma function."""
    return bind("polygamma", n, x)


def signbit(x):
    """numpy ``signbit``: whether the sign bit is set (-0.0 and negative NaNs included);
    floats through op ``bitcast_convert_type``."""
    t = _type_of(x)
    if t.dtype.kind == "b":
        return bind("full", shape=t.shape, value=False, dtype=np.bool_)
    if t.dtype.kind in "iu":
        return bind("lt", x, 0)
    if t.weak and not isinstance(x, Tensor):
        return np.signbit(x)
    bits = bind("bitcast_convert_type", x, dtype=np.dtype(f"i{t.dtype.itemsize}"))
    return bind("lt", bits, 0)


def copysign(x, y):
    """numpy ``copysign``: the magnitude of ``x`` with the sign bit of ``y`` (promoted to
    a float dtype, as jax.numpy does)."""
    a = bind("abs", _as_inexact_of(x, y))
    return bind("where", signbit(_as_inexact_of(y, x)), bind("neg", a), a)


def spacing(x):
    """numpy ``spacing``: the distance from ``x`` to the next float away from zero (the
    smallest subnormal where that is 0), as jax.numpy computes it."""
    x = _as_inexact_of(x)
    dt = _type_of(x).dtype
    if dt == np.float16:  # numpy's float16 spacing steps towards +inf
        return bind("sub", bind("nextafter", x, np.array(np.inf, dt)), x)
    inf = copysign(np.array(np.inf, dt), x)
    out = bind("sub", bind("nextafter", x, inf), x)
    tiny = copysign(np.array(jax.dtypes.finfo(dt).smallest_subnormal, dt), x)
    return bind("where", bind("eq", out, 0), tiny, out)


from ..errors import public_functions as _public_functions

_public_functions(globals())
