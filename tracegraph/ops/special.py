"""Special functions and bit ops of lax with no faithful expression in other ops:
``lgamma``, ``digamma``, ``polygamma``, ``igamma``, ``igammac``, ``igamma_grad_a`` (the
regularized incomplete gamma functions and the derivative in ``a`` that
jax.random.gamma's gradient uses), ``nextafter``, ``clz`` and ``mulhi``.

The binary ops take operands of any real dtypes: integers and bools become floats and
the two are promoted as jax.numpy promotes them (lax itself wants one float dtype; the
from_jax rules pass it exactly that). Gradients follow lax's JVP rules: ``polygamma`` has
none in its order ``m``, ``igamma_grad_a``, ``nextafter``, ``clz`` and ``mulhi`` none at all.

References are scipy.special / numpy in float64, independent of the lax implementations.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import scipy.special
from jax import lax

from ..core import weak_of

from ..ir.types import is_bool, is_int
from .defop import (
    NOT_DIFFERENTIABLE,
    Sample,
    ShapeError,
    TensorType,
    as_inexact,
    bind,
    broadcast_shape,
    defop,
    inexact_dtype,
    inexact_weak,
    never_weak,
    promote,
    same_shape,
    to_inexact,
    unbroadcast,
)
from .samples import FLOATS, arr

_SHAPES = [(), (5,), (2, 3), (0, 3)]


def _float64_reference(fn):
    def ref(*xs):
        dt = _inexact_pair_dtype(*(TensorType(np.shape(x), np.asarray(x).dtype) for x in xs))
        with np.errstate(all="ignore"):
            out = fn(*(np.asarray(x).astype(np.float64) for x in xs))
        return jnp.asarray(out).astype(dt)

    return ref


def _as_type(t, dtype):
    return t if t.dtype == dtype else bind("astype", t, dtype=dtype)


# -- operands of the binary ops --------------------------------------------------------


def _inexact_type(t: TensorType) -> TensorType:
    return TensorType(t.shape, to_inexact(t.dtype), t.weak and not is_bool(t.dtype))


def _inexact_pair_dtype(*types: TensorType, **_) -> np.dtype:
    return promote(*(_inexact_type(t) for t in types))[0]


def _inexact_pair_weak(*types: TensorType, **_) -> bool:
    # lax's result is weak when both operands are, and neither needed a (strong) conversion
    inexact = [_inexact_type(t) for t in types]
    dt = promote(*inexact)[0]
    return all(t.weak and t.dtype == dt for t in inexact)


def _promote_inexact(*xs):
    """The implementations' operands: each as `as_inexact`, then converted to the common
    float dtype (what `_inexact_pair_dtype` says), broadcast to one shape."""
    dt = _inexact_pair_dtype(*(TensorType(np.shape(x), jnp.asarray(x).dtype, weak_of(x)) for x in xs))
    xs = [as_inexact(x) for x in xs]
    xs = [x if x.dtype == dt else lax.convert_element_type(x, dt) for x in xs]
    return jnp.broadcast_arrays(*xs)


def _real_binary_shape(name):
    def rule(*types, **_):
        for t in types:
            if t.dtype.kind == "c":
                raise ShapeError(f"{name} needs real operands, got " + ", ".join(map(str, types)))
        return broadcast_shape(*types)

    return rule


def _binary(name, lax_fn, weak=_inexact_pair_weak, **kw):
    return defop(
        name,
        shape=_real_binary_shape(name),
        dtype=_inexact_pair_dtype,
        weak=weak,
        impl=lambda a, x: lax_fn(*_promote_inexact(a, x)),
        arity=2,
        **kw,
    )


def _unary_samples(low, high, dtypes=FLOATS):
    out = [Sample((arr(s, dt, low, high),), name=f"{dt}{list(s)}") for dt in dtypes for s in _SHAPES]
    out.append(Sample((arr((2, 3), "i32", 1, 6),), name="i32-input"))
    return out


def _pair_samples(a_range, x_range, dtypes=FLOATS):
    out = []
    for dt in dtypes:
        out += [
            Sample((arr((2, 3), dt, *a_range), arr((2, 3), dt, *x_range, tag="b")), name=f"{dt}-same"),
            Sample((arr((4, 1, 3), dt, *a_range), arr((2, 1), dt, *x_range, tag="b")), name=f"{dt}-bcast"),
            Sample((arr((0, 3), dt, *a_range), arr((3,), dt, *x_range, tag="b")), name=f"{dt}-empty"),
        ]
    out.append(Sample((arr((2, 3), "f32", *a_range), arr((3,), "f64", *x_range, tag="b")), name="mixed-f32-f64"))
    out.append(Sample((arr((2, 3), "i32", 1, 3), arr((3,), "f32", *x_range, tag="b")), name="mixed-i32-f32"))
    return out


# -- lgamma, digamma, polygamma ------------------------------------------------------------

lgamma = defop(
    "lgamma",
    shape=same_shape,
    dtype=inexact_dtype,
    weak=inexact_weak,
    impl=lambda x: lax.lgamma(as_inexact(x)),
    vjp=lambda ct, x, *, out: [ct * _as_type(bind("digamma", x), ct.dtype)],
    samples=lambda: _unary_samples(0.2, 6.0)
    + [
        Sample((np.array([-2.5, -0.3, 0.5, 10.0, 40.0], np.float64),), name="negative-and-large"),
        Sample((np.array([0.0, -1.0, -2.0, 1.0, 2.0, np.inf], np.float32),), name="poles", grad=False),
    ],
    reference=_float64_reference(scipy.special.gammaln),
    tolerances={"f32": (2e-5, 2e-6), "f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="``log(|Gamma(x)|)`` (lax.lgamma, scipy.special.gammaln).",
)


def _digamma_vjp(ct, x, *, out):
    one = bind("full", shape=(), value=1, dtype=out.dtype)
    return [ct * _as_type(bind("polygamma", one, x), ct.dtype)]


digamma = defop(
    "digamma",
    shape=same_shape,
    dtype=inexact_dtype,
    weak=inexact_weak,
    impl=lambda x: lax.digamma(as_inexact(x)),
    vjp=_digamma_vjp,
    samples=lambda: _unary_samples(0.2, 6.0)
    + [Sample((np.array([-2.5, -0.3, 0.5, 10.0, 40.0], np.float64),), name="negative-and-large")],
    reference=_float64_reference(scipy.special.digamma),
    tolerances={"f32": (5e-5, 5e-6), "f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="``d/dx log(Gamma(x))`` (lax.digamma, scipy.special.digamma).",
)


def _polygamma_vjp(ct, m, x, *, out):
    m1 = _as_type(m, out.dtype) + 1  # m's own dtype may not hold x's
    return [None, unbroadcast(ct * _as_type(bind("polygamma", m1, x), ct.dtype), x.shape)]


def _polygamma_samples():
    # a float order is a point of lax's domain with no gradient in it (the VJP matrix
    # differentiates every float operand): those samples are forward-only; integer
    # orders check the gradient in x
    out = []
    for dt in FLOATS:
        order = np.array([0.0, 1.0, 2.0]).astype(arr((), dt).dtype)
        out.append(Sample((order, arr((2, 3), dt, 0.5, 4.0)), name=dt, grad=False))
    for dt in FLOATS:
        out.append(Sample((np.array([[0], [1]], np.int32), arr((2, 3), dt, 0.5, 4.0)), name=f"int-order-{dt}"))
    out += [
        Sample((np.array(3, np.int32), arr((4,), "f64", 0.3, 5.0)), name="f64-order3"),
        Sample((np.array(3.0, np.float64), np.array([-1.5, 0.0, 2.0, 1e3])), name="edges", grad=False),
        Sample((np.array([1.0], np.float32), arr((0, 1), "f32", 0.5, 4.0)), name="empty", grad=False),
    ]
    return out


def _polygamma_reference(m, x):
    def f(m, x):
        return scipy.special.polygamma(m.astype(np.int64), x)

    return _float64_reference(f)(m, x)


polygamma = _binary(
    "polygamma",
    lax.polygamma,
    vjp=_polygamma_vjp,
    samples=_polygamma_samples,
    reference=_polygamma_reference,
    tolerances={"f32": (1e-4, 1e-5), "f16": (1e-2, 1e-2), "bf16": (5e-2, 5e-2)},
    doc="lax.polygamma(m, x): the m-th derivative of digamma (m a non-negative integer "
    "value, as an operand; NaN for other m). No gradient in m.",
)


# -- igamma, igammac, igamma_grad_a ----------------------------------------------------------


def _igamma_dx(a, x, dtype):
    # d/dx P(a, x) = exp(-x + (a - 1) log x - lgamma(a))
    a, x = _as_type(a, dtype), _as_type(x, dtype)
    return bind("exp", (a - 1) * bind("log", x) - x - bind("lgamma", a))


def _igamma_vjp(sign):
    def vjp(ct, a, x, *, out):
        da = _as_type(bind("igamma_grad_a", a, x), ct.dtype) * ct
        dx = _igamma_dx(a, x, ct.dtype) * ct
        if sign < 0:
            da, dx = -da, -dx
        return [unbroadcast(da, a.shape), unbroadcast(dx, x.shape)]

    return vjp


igamma = _binary(
    "igamma",
    lax.igamma,
    vjp=_igamma_vjp(+1),
    samples=lambda: _pair_samples((0.5, 3.0), (0.2, 4.0))
    + [Sample((np.array([0.5, 2.0, 1.0, 3.0]), np.array([0.0, 0.0, 30.0, np.inf])), name="edges", grad=False)],
    reference=_float64_reference(scipy.special.gammainc),
    tolerances={"f32": (5e-5, 5e-6), "f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="The regularized lower incomplete gamma function P(a, x) (lax.igamma, "
    "scipy.special.gammainc).",
)

igammac = _binary(
    "igammac",
    lax.igammac,
    vjp=_igamma_vjp(-1),
    samples=lambda: _pair_samples((0.5, 3.0), (0.2, 4.0))
    + [Sample((np.array([0.5, 2.0, 1.0, 3.0]), np.array([0.0, 0.0, 30.0, np.inf])), name="edges", grad=False)],
    reference=_float64_reference(scipy.special.gammaincc),
    tolerances={"f32": (5e-5, 5e-6), "f16": (5e-3, 5e-3), "bf16": (3e-2, 3e-2)},
    doc="The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x) "
    "(lax.igammac, scipy.special.gammaincc).",
)


def _gammainc_da(a, x):
    # central differences of scipy's P(a, x) in a, in float64 (h ~ eps^(1/3))
    h = 1e-5 * np.maximum(1.0, np.abs(a))
    return (scipy.special.gammainc(a + h, x) - scipy.special.gammainc(a - h, x)) / (2 * h)


igamma_grad_a = _binary(
    "igamma_grad_a",
    lax.igamma_grad_a,
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: _pair_samples((0.5, 3.0), (0.2, 4.0), dtypes=("f32", "f64")),
    reference=_float64_reference(_gammainc_da),
    tolerances={"f32": (2e-4, 2e-5), "f64": (1e-7, 1e-9)},
    doc="d/da P(a, x), the derivative of `igamma` in its first operand (lax.igamma_grad_a); "
    "not differentiable itself, as in lax.",
)


# -- nextafter, clz ---------------------------------------------------------------------------


def _nextafter_reference(x, y):
    dt = _inexact_pair_dtype(*(TensorType(np.shape(t), np.asarray(t).dtype) for t in (x, y)))
    return jnp.asarray(np.nextafter(np.asarray(x).astype(dt), np.asarray(y).astype(dt)))


nextafter = _binary(
    "nextafter",
    lax.nextafter,
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: _pair_samples((-2.0, 2.0), (-2.0, 2.0), dtypes=("f32", "f64", "f16"))
    + [
        Sample((np.array([0.0, -0.0, 1.0, np.inf, np.nan, 1.0], np.float32),
                np.array([1.0, -1.0, 1.0, 0.0, 1.0, np.inf], np.float32)), name="edges"),
    ],
    reference=_nextafter_reference,
    doc="The next representable float after ``x`` towards ``y`` (lax.nextafter, np.nextafter).",
)


def _clz_shape(x: TensorType):
    if x.dtype.kind not in "iu":
        raise ShapeError(f"clz needs an integer operand, got {x}")
    return x.shape


def _clz_reference(x):
    a = np.asarray(x)
    bits = a.dtype.itemsize * 8
    u = a.view(np.dtype(f"u{a.dtype.itemsize}")).astype(np.uint64)
    lengths = np.array([int(v).bit_length() for v in u.ravel()], np.int64).reshape(a.shape)
    return jnp.asarray((bits - lengths).astype(a.dtype))


clz = defop(
    "clz",
    shape=_clz_shape,
    impl=lax.clz,
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: [Sample((arr((2, 3), dt, -100, 100),), name=dt) for dt in ("i32", "i64", "u8", "i8")]
    + [
        Sample((np.array([0, 1, -1, 2**31 - 1, -(2**31), 256], np.int32),), name="edges"),
        Sample((np.zeros((0,), np.uint32),), name="empty"),
    ],
    reference=_clz_reference,
    doc="The number of leading zero bits of each integer (lax.clz).",
)


def _mulhi_shape(x: TensorType, y: TensorType):
    if not is_int(promote(x, y)[0]):  # after promotion: a bool and an int make an int
        raise ShapeError(f"mulhi needs integer operands, got {x}, {y}")
    return broadcast_shape(x, y)


def _mulhi_impl(x, y):
    dt = promote(*(TensorType(np.shape(t), jnp.asarray(t).dtype, weak_of(t)) for t in (x, y)))[0]
    x, y = (t if jnp.asarray(t).dtype == dt else lax.convert_element_type(t, dt) for t in (x, y))
    return lax.mulhi(*jnp.broadcast_arrays(x, y))


def _mulhi_weak(x: TensorType, y: TensorType):
    dt = promote(x, y)[0]
    return x.weak and y.weak and x.dtype == y.dtype == dt


def _mulhi_reference(x, y):
    dt = promote(*(TensorType(np.shape(t), np.asarray(t).dtype) for t in (x, y)))[0]
    a, b = np.broadcast_arrays(np.asarray(x).astype(dt), np.asarray(y).astype(dt))
    bits = dt.itemsize * 8
    high = [(int(p) * int(q)) >> bits for p, q in zip(a.ravel(), b.ravel())]  # floor, as lax
    return jnp.asarray(np.array(high, np.int64).astype(dt).reshape(a.shape))


mulhi = defop(
    "mulhi",
    shape=_mulhi_shape,
    weak=_mulhi_weak,
    impl=_mulhi_impl,
    arity=2,
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: [
        Sample((arr((2, 3), dt, -120, 120), arr((3,), dt, -120, 120, tag="b")), name=dt)
        for dt in ("i32", "u8", "i8", "i64")
    ]
    + [
        Sample((np.array([-5, 2**30, -(2**31), 2**31 - 1], np.int32), np.array([7, 8, 3, 2**31 - 1], np.int32)),
               name="edges"),
        Sample((np.array([250, 255], np.uint8), np.array([3, 255], np.uint8)), name="u8-edges"),
        Sample((np.zeros((0, 2), np.uint32), np.zeros((2,), np.uint32)), name="empty"),
    ],
    reference=_mulhi_reference,
    doc="The high half of the double-width product of two integers (lax.mulhi).",
)


# -- random_gamma_grad ----------------------------------------------------------------------


def _random_gamma_grad_reference(a, x):
    # implicit reparameterization: d sample / d a = -(dP/da)(a, x) / pdf(a, x)
    def f(a, x):
        pdf = np.exp((a - 1) * np.log(x) - x - scipy.special.gammaln(a))
        return -_gammainc_da(a, x) / pdf

    return _float64_reference(f)(a, x)


random_gamma_grad = _binary(
    "random_gamma_grad",
    lax.random_gamma_grad,
    weak=never_weak,  # lax.random_gamma_grad is a composite of lax ops, not a primitive
    vjp=NOT_DIFFERENTIABLE,
    samples=lambda: _pair_samples((0.5, 3.0), (0.2, 4.0), dtypes=("f32", "f64")),
    reference=_random_gamma_grad_reference,
    tolerances={"f32": (5e-4, 5e-5), "f64": (1e-6, 1e-8)},
    doc="The derivative of a Gamma(a, 1) sample ``x`` in ``a`` at fixed noise (implicit "
    "reparameterization, lax.random_gamma_grad): the gradient of `random_gamma`. Not "
    "differentiable itself.",
)
