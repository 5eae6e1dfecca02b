"""``tg.math``: the ``tf.math`` names (``tg.math.reduce_mean``, ``tg.math.exp``, ...).

This module only gathers functions defined elsewhere (`tracegraph.frontend.fn_tf`,
`fn_math`, `fn_reduce`), as TensorFlow spells them (``cumsum`` here is TF's: ``axis``
defaults to 0, with ``exclusive`` and ``reverse``). ``argmax``/``argmin`` here are TF's
(``axis`` None means 0, ``output_type``), not the numpy ones at ``tg.argmax``.

Example::

    import tracegraph as tf
    tf.math.reduce_mean(tf.math.square(x), axis=1)
    tf.math.argmax(logits, axis=-1)
"""

from .frontend.fn_math import (
    abs, add, ceil, cos, divide, equal, erf, exp, floor, greater, greater_equal, less,
    less_equal, log, log1p, logical_and, logical_not, logical_or, logical_xor, maximum, minimum,
    multiply, negative, not_equal, reciprocal, round, rsqrt, sigmoid, sign, sin, sqrt, square,
    subtract, tanh, lgamma, digamma, polygamma, igamma, igammac, nextafter,
)
from .frontend.fn_math import arccos as acos
from .frontend.fn_math import arccosh as acosh
from .frontend.fn_math import arcsin as asin
from .frontend.fn_math import arcsinh as asinh
from .frontend.fn_math import arctan as atan
from .frontend.fn_math import arctan2 as atan2
from .frontend.fn_math import arctanh as atanh
from .frontend.fn_tf import (
    argmax, argmin, floordiv, floormod, pow, reduce_all, reduce_any, reduce_logsumexp, reduce_max,
    reduce_mean, reduce_min, reduce_prod, reduce_sum, truediv, cumsum, cumprod,
    cumulative_logsumexp,
)

__all__ = [
    "abs", "acos", "acosh", "add", "argmax", "argmin", "asin", "asinh", "atan", "atan2", "atanh",
    "ceil", "cos", "cumprod", "cumsum", "cumulative_logsumexp", "digamma", "divide", "equal", "erf", "exp", "floor",
    "floordiv", "floormod", "greater", "igamma", "igammac", "lgamma", "nextafter", "polygamma", "greater_equal", "less", "less_equal", "log", "log1p",
    "logical_and", "logical_not", "logical_or", "logical_xor", "maximum", "minimum", "multiply",
    "negative", "not_equal", "pow", "reciprocal", "reduce_all", "reduce_any", "reduce_logsumexp",
    "reduce_max", "reduce_mean", "reduce_min", "reduce_prod", "reduce_sum", "round", "rsqrt",
    "sigmoid", "sign", "sin", "sqrt", "square", "subtract", "tanh", "truediv",
]
