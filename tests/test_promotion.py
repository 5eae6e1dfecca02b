"""JAX's type promotion end to end: programs whose operands mix int and float, bool and
int, weak and strong (Python scalars, weakly typed arrays) give what jax.numpy gives —
value and dtype — under `tg.jit`, the graph interpreter and `tg.eager` (the op rules
must agree with the implementations: a disagreement is an "internal error in op")."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg

from op_matrix import run_mode

MODES = ("jit", "interpret", "eager")


def _weak_quarters():
    return jnp.arange(3) * 0.25  # a weakly typed f32 array


# (name, tracegraph function, jax.numpy reference, operands)
CASES = [
    ("int-gt-float", lambda x: x > 1.5, lambda x: x > 1.5, lambda: (np.arange(3, dtype=np.int32),)),
    ("bool-eq-int", lambda b: b == 0, lambda b: b == 0, lambda: (np.array([True, False]),)),
    ("weak-float-pow-int", lambda x, n: x**n, jnp.power,
     lambda: (_weak_quarters(), np.arange(3, dtype=np.int32))),
    ("gelu-scalar", lambda x: tg.gelu(x), jax.nn.gelu, lambda: (1.5,)),
    ("abs-weak-array", lambda x: tg.abs(x), jnp.abs, lambda: (_weak_quarters(),)),
    # neighbours of the reproducers
    ("int-lt-weak-array", lambda x, y: x < y, jnp.less,
     lambda: (np.arange(3, dtype=np.int32), _weak_quarters())),
    ("int8-mul-float", lambda x: x * 0.5, lambda x: x * 0.5, lambda: (np.arange(3, dtype=np.int8),)),
    ("bool-add-int", lambda b: b + 1, lambda b: b + 1, lambda: (np.array([True, False]),)),
    ("bool-floordiv", lambda a, b: a // b, jnp.floor_divide,
     lambda: (np.array([True, True]), np.array([True, True]))),
    ("int-pow-int", lambda x, n: x**n, jnp.power,
     lambda: (np.arange(3, dtype=np.int32), np.arange(3, dtype=np.int32))),
    ("bf16-pow-scalar", lambda x: x**2, lambda x: x**2, lambda: (np.ones(3, jnp.bfloat16),)),
    ("exp-int", lambda x: tg.exp(x), jnp.exp, lambda: (np.arange(3, dtype=np.int32),)),
    ("exp-weak-array", lambda x: tg.exp(x), jnp.exp, lambda: (_weak_quarters(),)),
    ("logical-not-int", lambda x: tg.logical_not(x), jnp.logical_not,
     lambda: (np.arange(3, dtype=np.int32),)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name,fn,reference,args", CASES, ids=[c[0] for c in CASES])
def test_promotion_matches_jax_numpy(name, fn, reference, args, mode):
    args = args()
    want = jnp.asarray(reference(*args))
    got = run_mode(mode, fn, args)
    assert got.dtype == want.dtype, f"{name} [{mode}]: dtype {got.dtype}, jax.numpy {want.dtype}"
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=1e-6, err_msg=f"{name} [{mode}]")
