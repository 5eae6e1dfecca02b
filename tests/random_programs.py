"""A seeded generator of random tracegraph programs, each paired with the same program
written in jax.numpy, for differential tests (tests/test_random_programs.py).

A program is a list of steps over a pool of values: the inputs (random shapes that
broadcast together; f32, i32 or bool), then each step's result. A step is one op of
`STEPS` — elementwise math, broadcasting binaries with arrays or weak Python scalars,
comparisons and `where`, reductions, shape ops, indexing and ``.at[]`` updates, matmul,
softmax, `cond`, `scan`, a custom VJP rule, draws from typed keys — applied to pool values it accepts. Every step
is written once against a namespace ``m`` that is either `TG` (tracegraph) or `JNP`
(jax.numpy / lax), so the two programs cannot drift apart. Values are kept small and finite while
generating (a step whose reference result is not finite is drawn again), so results
compare with plain tolerances.
"""

from __future__ import annotations

import dataclasses
import types

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import tracegraph as tg
from tracegraph.frontend import fn_reduce


def _clip_gradient(np_, custom_vjp):
    """``x * 1.5`` whose gradient is clipped to [-1, 1]: a custom rule, written once for
    `tg.custom_vjp` and `jax.custom_vjp`."""

    @custom_vjp
    def f(x):
        return x * 1.5

    f.defvjp(lambda x: (f(x), None), lambda _, g: (np_.clip(g * 1.5, -1.0, 1.0),))
    return f


def _constrain(with_sharding_constraint):
    """``with_sharding_constraint`` onto a one-device mesh (so it runs anywhere): a
    placement node in the IR that every mode, the gradients and the round trips meet."""

    def constrain(x, split):
        mesh = jax.make_mesh((1,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
        spec = jax.sharding.PartitionSpec("data") if split else jax.sharding.PartitionSpec()
        return with_sharding_constraint(x, jax.sharding.NamedSharding(mesh, spec))

    return constrain


def _linalg(m, x):
    """Cholesky, LU solve and slogdet of a well-conditioned symmetric positive-definite
    matrix made from x's first row (v v^T + (n + 1) I), applied to x's rows."""
    n = x.shape[-1]
    rows = m.np.reshape(x, (-1, n))
    v = m.np.tanh(rows[0])
    a = m.np.reshape(v, (n, 1)) * m.np.reshape(v, (1, n)) + (n + 1.0) * m.np.eye(n)
    return (m.linalg.solve(a, m.np.transpose(rows)).T + 0.1 * (rows @ m.linalg.cholesky(a))
            + 0.01 * m.linalg.slogdet(a)[1])


TG = types.SimpleNamespace(
    np=tg, cond=tg.cond, scan=tg.scan, softmax=tg.softmax, where=tg.where,
    clip_gradient=_clip_gradient(tg, tg.custom_vjp), random=tg.random, name="tg",
    cummax=fn_reduce.cummax, cumlogsumexp=fn_reduce.cumlogsumexp,
    constrain=_constrain(tg.with_sharding_constraint), linalg=tg.linalg,
)
JNP = types.SimpleNamespace(
    np=jnp, cond=lax.cond, scan=lax.scan, softmax=jax.nn.softmax, where=jnp.where,
    clip_gradient=_clip_gradient(jnp, jax.custom_vjp), random=jax.random, name="jnp",
    cummax=lax.cummax, cumlogsumexp=lax.cumlogsumexp,
    constrain=_constrain(jax.lax.with_sharding_constraint), linalg=jnp.linalg,
)


def _is_float(v):
    return np.dtype(v.dtype).kind == "f"


def _is_int(v):
    return np.dtype(v.dtype).kind == "i"


def _is_num(v):
    return np.dtype(v.dtype).kind in "fi"


@dataclasses.dataclass
class Step:
    name: str
    args: tuple  # pool indices
    params: dict

    def apply(self, m, pool):
        return STEPS[self.name][1](m, *[pool[i] for i in self.args], **self.params)


def _unary(fn):
    return lambda m, x: fn(m.np, x)


# name -> (arity and operand check, fn(m, *values, **params), params(rng, *values))
STEPS: dict = {
    "neg": (lambda x: _is_num(x), lambda m, x: -x, None),
    "abs": (lambda x: _is_num(x), lambda m, x: m.np.abs(x), None),
    "sin": (lambda x: _is_float(x), _unary(lambda n, x: n.sin(x)), None),
    "tanh": (lambda x: _is_float(x), _unary(lambda n, x: n.tanh(x)), None),
    "exp_tanh": (lambda x: _is_float(x), _unary(lambda n, x: n.exp(n.tanh(x))), None),
    "sqrt_abs": (lambda x: _is_float(x), _unary(lambda n, x: n.sqrt(n.abs(x) + 1.0)), None),
    "log1p_abs": (lambda x: _is_float(x), _unary(lambda n, x: n.log(n.abs(x) + 1.0)), None),
    "square": (lambda x: _is_num(x), lambda m, x: x * x, None),
    "atan": (lambda x: _is_float(x), _unary(lambda n, x: n.arctan(x)), None),
    "asinh_cbrt": (lambda x: _is_float(x), _unary(lambda n, x: n.arcsinh(n.cbrt(x * x + 1.0))), None),
    "scalar_mul": (lambda x: _is_num(x), lambda m, x, c: x * c,
                   lambda rng, x: {"c": [2, -1, 0.5, 3.0][rng.integers(4)]}),
    "scalar_add": (lambda x: _is_num(x), lambda m, x, c: c + x,
                   lambda rng, x: {"c": [1, -2, 0.25, 1.5][rng.integers(4)]}),
    "scalar_pow": (lambda x: _is_float(x), lambda m, x, c: x ** c,
                   lambda rng, x: {"c": [2, 3][rng.integers(2)]}),
    "add": (lambda x, y: _is_num(x) and _is_num(y), lambda m, x, y: x + y, None),
    "sub": (lambda x, y: _is_num(x) and _is_num(y), lambda m, x, y: x - y, None),
    "mul": (lambda x, y: _is_num(x) and _is_num(y), lambda m, x, y: x * y, None),
    "maximum": (lambda x, y: _is_num(x) and _is_num(y), lambda m, x, y: m.np.maximum(x, y), None),
    "minimum": (lambda x, y: _is_num(x) and _is_num(y), lambda m, x, y: m.np.minimum(x, y), None),
    "greater": (lambda x, y: _is_num(x) and _is_num(y), lambda m, x, y: x > y, None),
    "less_scalar": (lambda x: _is_num(x), lambda m, x, c: x < c,
                    lambda rng, x: {"c": [0, 0.5, -1][rng.integers(3)]}),
    "logical_and": (lambda x, y: x.dtype == bool and y.dtype == bool, lambda m, x, y: x & y, None),
    "arctan2": (lambda x, y: _is_float(x) and _is_float(y), lambda m, x, y: m.np.arctan2(x, y), None),
    "bits": (lambda x, y: _is_int(x) and _is_int(y), lambda m, x, y: (x & y) ^ (x | 3) ^ ~y, None),
    "shifts": (lambda x: _is_int(x), lambda m, x: (x << 2) >> 1, None),
    "logical_not": (lambda x: x.dtype == bool, lambda m, x: ~x, None),
    "where": (lambda c, x, y: c.dtype == bool and _is_num(x) and _is_num(y),
              lambda m, c, x, y: m.where(c, x, y), None),
    "where_scalar": (lambda c, x: c.dtype == bool and _is_num(x),
                     lambda m, c, x: m.where(c, x, 0.0), None),
    "astype_f32": (lambda x: True, lambda m, x: x.astype(np.float32), None),
    "sum": (lambda x: _is_num(x) and x.ndim >= 1, lambda m, x, axis, keepdims: m.np.sum(x, axis=axis, keepdims=keepdims),
            lambda rng, x: {"axis": int(rng.integers(x.ndim)), "keepdims": bool(rng.integers(2))}),
    "mean": (lambda x: _is_float(x) and x.ndim >= 1, lambda m, x, axis: m.np.mean(x, axis=axis),
             lambda rng, x: {"axis": int(rng.integers(x.ndim))}),
    "max": (lambda x: _is_num(x) and x.ndim >= 1, lambda m, x, axis: m.np.max(x, axis=axis),
            lambda rng, x: {"axis": int(rng.integers(x.ndim))}),
    "sum_all": (lambda x: _is_num(x), lambda m, x: m.np.sum(x), None),
    "transpose": (lambda x: x.ndim >= 2, lambda m, x: m.np.transpose(x), None),
    "flatten": (lambda x: x.ndim >= 1, lambda m, x: m.np.reshape(x, (-1,)), None),
    "expand_squeeze": (lambda x: True, lambda m, x: m.np.squeeze(m.np.expand_dims(x, 0), 0), None),
    "expand": (lambda x: x.ndim <= 2, lambda m, x: m.np.expand_dims(x, 0), None),
    "index0": (lambda x: x.ndim >= 1 and x.shape[0] >= 1, lambda m, x: x[0], None),
    "slice_tail": (lambda x: x.ndim >= 1 and x.shape[-1] >= 2, lambda m, x: x[..., 1:], None),
    "reverse": (lambda x: x.ndim >= 1, lambda m, x: x[::-1], None),
    # x.at[...]: repeated, negative and out-of-bounds indices, scatter ops in the IR
    "at_add": (lambda x: _is_num(x) and x.ndim >= 1,
               lambda m, x: x.at[np.array([0, -1, 0, 5])].add(x[:1] * 2), None),
    "at_set_max": (lambda x: _is_num(x) and x.ndim >= 1,
                   lambda m, x: x.at[..., ::-2].set(x[..., :1]).at[np.array([1, -1])].max(x[:1]), None),
    "matmul": (lambda x, y: _is_float(x) and _is_float(y) and x.ndim >= 1 and y.ndim >= 1
               and x.shape[-1] == y.shape[-2 if y.ndim >= 2 else 0], lambda m, x, y: x @ y, None),
    "softmax": (lambda x: _is_float(x) and x.ndim >= 1, lambda m, x: m.softmax(x, axis=-1), None),
    "sort": (lambda x: _is_num(x) and x.ndim >= 1, lambda m, x, d: m.np.sort(x, axis=-1, descending=d),
             lambda rng, x: {"d": bool(rng.integers(2))}),
    "cond": (lambda p, x: _is_num(p) and _is_float(x),
             lambda m, p, x: m.cond(m.np.sum(p) > 0, lambda a: a * 2.0, lambda a: -a, x), None),
    "clip_gradient": (lambda x: _is_float(x), lambda m, x: m.clip_gradient(x), None),
    # typed keys in the graph: a key constant, split, fold_in, a draw and a mask
    "dropout_noise": (lambda x: _is_float(x),
                      lambda m, x, s: m.np.where(
                          m.random.bernoulli(m.random.split(m.random.key(s))[1], 0.7, x.shape),
                          x / 0.7, 0.0)
                      + 0.1 * m.random.normal(m.random.fold_in(m.random.key(s), 3), x.shape),
                      lambda rng, x: {"s": int(rng.integers(1000))}),
    # cumulative ops; the ramp keeps cummax free of ties (where JAX splits the gradient)
    "cumulative": (lambda x: _is_float(x) and x.ndim >= 1,
                   lambda m, x, axis, r: m.np.cumprod(m.np.tanh(x) + 1.0, axis=axis)
                   + m.cummax(x + 0.001 * m.np.arange(x.shape[-1]), axis=x.ndim - 1, reverse=r)
                   + m.cumlogsumexp(x, axis=axis, reverse=not r),
                   lambda rng, x: {"axis": int(rng.integers(x.ndim)), "r": bool(rng.integers(2))}),
    # a sharding constraint (replicated, or split over a one-device mesh axis)
    "sharding": (lambda x: _is_num(x), lambda m, x, split: m.constrain(x, split and x.ndim >= 1),
                 lambda rng, x: {"split": bool(rng.integers(2))}),
    "linalg": (lambda x: _is_float(x) and x.ndim >= 1, _linalg, None),
    "scan_cumsum": (lambda x: _is_float(x) and x.ndim >= 1,
                    lambda m, x: m.scan(lambda c, r: (c + r, c * r), m.np.zeros_like(x[0]), x)[1],
                    None),
}
NAMES = sorted(STEPS)
BASE_SHAPES = [(), (3,), (2, 3), (3, 3), (2, 1, 3)]


@dataclasses.dataclass
class Program:
    seed: int
    inputs: list  # numpy arrays
    steps: list
    outputs: list  # pool indices

    def run(self, m, *args):
        pool = list(args)
        for s in self.steps:
            pool.append(s.apply(m, pool))
        return tuple(pool[i] for i in self.outputs)

    def tg_fn(self):
        return lambda *a: self.run(TG, *a)

    def jnp_fn(self):
        return lambda *a: self.run(JNP, *a)

    @property
    def float_inputs(self) -> list[int]:
        return [i for i, x in enumerate(self.inputs) if x.dtype == np.float32]

    def describe(self) -> str:
        ins = ", ".join(f"{x.dtype}{list(x.shape)}" for x in self.inputs)
        body = "; ".join(f"%{len(self.inputs) + i} = {s.name}{tuple(s.args)}{s.params or ''}" for i, s in enumerate(self.steps))
        return f"program {self.seed}: ({ins}) {body} -> {self.outputs}"


def _input(rng, base):
    shape = list(base)
    for i in range(len(shape)):
        if rng.random() < 0.25:
            shape[i] = 1
    if shape and rng.random() < 0.3:
        shape = shape[int(rng.integers(len(shape))) + 1:] if rng.random() < 0.5 else shape
    kind = rng.choice(["f", "f", "f", "i", "b"])
    if kind == "f":
        return rng.uniform(-2, 2, size=shape).astype(np.float32)
    if kind == "i":
        return rng.integers(-3, 4, size=shape).astype(np.int32)
    return rng.random(size=shape) < 0.5


def generate(seed: int, max_steps: int = 8) -> Program:
    rng = np.random.default_rng(seed)
    base = BASE_SHAPES[int(rng.integers(len(BASE_SHAPES)))]
    inputs = [_input(rng, base) for _ in range(int(rng.integers(1, 4)))]
    if not any(x.dtype == np.float32 for x in inputs):
        inputs.append(rng.uniform(-2, 2, size=base).astype(np.float32))
    pool = [jnp.asarray(x) for x in inputs]
    steps: list[Step] = []
    target = int(rng.integers(2, max_steps + 1))
    tries = 0
    while len(steps) < target and tries < 200:
        tries += 1
        name = NAMES[int(rng.integers(len(NAMES)))]
        accepts, fn, make_params = STEPS[name]
        arity = accepts.__code__.co_argcount
        args = tuple(int(rng.integers(len(pool))) for _ in range(arity))
        vals = [pool[i] for i in args]
        try:
            if not accepts(*vals):
                continue
            params = make_params(rng, *vals) if make_params else {}
            out = fn(JNP, *vals, **params)
        except (TypeError, ValueError, IndexError):
            continue  # shapes that do not fit: draw again
        if out.size > 4096 or (np.dtype(out.dtype).kind == "f" and not bool(jnp.all(jnp.isfinite(out)))):
            continue
        if np.dtype(out.dtype).kind in "fi" and bool(jnp.any(jnp.abs(out) > 1e4)):
            continue
        steps.append(Step(name, args, params))
        pool.append(out)
    n = len(inputs)
    made = list(range(n, len(pool)))
    outputs = made[-2:] if len(made) >= 2 else made or [0]
    return Program(seed, inputs, steps, outputs)
