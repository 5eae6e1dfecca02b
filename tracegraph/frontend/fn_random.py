"""tg.random: random numbers from explicit keys, equal to jax.random bit for bit.

A key is typed, as ``jax.random.key(seed)`` gives (`key`: ``key<threefry2x32>[]`` in the
IR), or raw, the ``u32[2]`` of ``jax.random.PRNGKey(seed)`` (`PRNGKey`); every function
takes both, and keys pass between tracegraph and JAX code freely. There is no hidden
state: split a key to get fresh ones.

``normal`` and ``uniform`` also take TensorFlow's form, told apart by the first argument
(a shape is a Python list/tuple of ints or an int; anything else is a key):
``tg.random.normal([2, 3], mean=0.0, stddev=1.0)`` draws from the global key stream
(`manual_seed`, alias `set_seed`) and gives an imperative tensor, outside traced code
only; an op ``seed=`` gives its own reproducible sequence, as TF's operation seeds do.

Example::

    key = tg.random.key(0)
    k1, k2 = tg.random.split(key)
    w = tg.random.normal(k1, (784, 128)) * 0.01
    mask = tg.random.bernoulli(k2, 0.9, (128,))

    tg.random.set_seed(0)                       # TF style: no key
    w = tg.Variable(tg.random.normal([784, 128], stddev=0.01))
"""

from __future__ import annotations

import numbers
import operator
import os
import threading

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import TracingError, user_location_long
from ..ir.types import KEY_IMPLS, is_key
from ..ir.types import key_impl as _key_impl
from ..core import at_bottom, bind, current_trace
from ..core import Tensor
from .fn_creation import canonical_dtype
from .tape import leaf


def _shape(shape) -> tuple[int, ...]:
    if shape is None:
        return ()
    if isinstance(shape, numbers.Integral):
        return (int(shape),)
    try:
        return tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TracingError(
            f"a random shape must be a tuple of Python ints, got {shape!r} "
            f"(at {user_location_long(3)})"
        ) from None


def _impl_name(impl) -> str:
    """A PRNG implementation name from what JAX accepts: a name, None (JAX's default,
    ``jax_default_prng_impl``) or a PRNGSpec / PRNGImpl (their ``str`` is the name)."""
    if impl is None:
        impl = jax.config.jax_default_prng_impl
    name = impl if isinstance(impl, str) else getattr(impl, "name", str(impl))
    if name not in KEY_IMPLS:
        raise TracingError(
            f"unknown PRNG implementation {impl!r}; known: {', '.join(KEY_IMPLS)} "
            f"(at {user_location_long(3)})"
        )
    return name


def _seed_key(seed, impl: str | None):
    """One key from a Python int seed, computed now (a constant of the graph being
    traced), or from a traced integer (a ``random_seed`` op)."""
    if isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool):
        try:  # computed now even while jax traces (tg.jit), so it lands as a constant
            with jax.ensure_compile_time_eval():
                raw = jax.random.PRNGKey(int(seed)) if impl is None else jax.random.key(int(seed), impl=impl)
        except (OverflowError, TypeError, ValueError) as e:
            raise TracingError(f"bad seed {seed!r}: {e} (at {user_location_long(3)})") from None
        if impl is None:
            return current_trace().constant(np.asarray(raw))
        return current_trace().lift(raw)  # in a graph: random_wrap of the key's data
    return bind("random_seed", seed, impl=impl or "")


def key(seed, *, impl=None):
    """A typed key from an integer seed, equal to ``jax.random.key(seed, impl=impl)``:
    ``key<threefry2x32>[]`` in the IR. Split it, fold data in, draw from it; pass it to
    JAX code freely. A Python int gives a constant key; a traced integer scalar (or
    array: one key each) gives a ``random_seed`` op.

    Example::

        k = tg.random.key(0)                      # key<threefry2x32>[]
        k1, k2 = tg.random.split(k)               # key<threefry2x32>[2], unpacked
        x = tg.random.normal(k1, (3,))
    """
    return _seed_key(seed, _impl_name(impl))


def PRNGKey(seed):
    """A raw key from an integer seed, equal to ``jax.random.PRNGKey(seed)``: the two
    ``u32`` words of a threefry2x32 key (``u32[2]``). Every function here takes raw keys
    as well as typed ones; `key` is JAX's recommended form."""
    return _seed_key(seed, None)


def key_data(keys):
    """The ``u32`` data of typed keys (``jax.random.key_data``): one more axis, 2 words
    per threefry2x32 key. A raw key is its own data."""
    if _typed(keys):
        return bind("random_unwrap", keys)
    return keys


def wrap_key_data(data, *, impl=None):
    """Typed keys from their ``u32`` data (``jax.random.wrap_key_data``): the inverse of
    `key_data`."""
    return bind("random_wrap", data, impl=_impl_name(impl))


def key_impl(keys) -> str:
    """The PRNG implementation of typed keys (``jax.random.key_impl``): ``threefry2x32``."""
    if not _typed(keys):
        raise TracingError(f"key_impl needs typed keys, got {getattr(keys, 'dtype', keys)}")
    return _key_impl(keys.dtype)


def _typed(keys) -> bool:
    return is_key(getattr(keys, "dtype", None))


def split(key, num=2):
    """New keys from one (``jax.random.split``): ``num`` may be an int or a shape. A
    typed key gives ``key<...>[*num]``, a raw key a ``u32[*num, 2]``."""
    shape = _shape(num)
    n = int(np.prod(shape, dtype=np.int64))
    if _typed(key) and tuple(key.shape) != ():
        raise TracingError(
            f"split takes one key, got keys of shape {tuple(key.shape)} (as jax.random.split; "
            f"use tg.vmap, or split each) (at {user_location_long(2)})"
        )
    out = bind("random_split", key, num=n)
    if len(shape) == 1:
        return out
    return out.reshape(shape + tuple(out.shape[1:]))


def fold_in(key, data):
    """A new key from ``key`` and an integer (``jax.random.fold_in``)."""
    if isinstance(data, numbers.Integral) and not isinstance(data, bool):
        data = np.asarray(int(data) % 2**32, np.uint32)  # jax folds the low 32 bits
    return bind("random_fold_in", key, data)


def bits(key, shape=(), dtype=np.uint32):
    """Uniform random bits (``jax.random.bits``): unsigned integers of ``dtype``
    (uint8 / uint16 / uint32 / uint64) in ``shape``."""
    dt = np.dtype(dtype)
    if dt.kind != "u":
        raise TracingError(f"bits needs an unsigned integer dtype, got {dt} (at {user_location_long(2)})")
    return bind("random_bits", key, bit_width=8 * dt.itemsize, shape=_shape(shape))


def normal(*args, **kwargs):
    """Normal draws, in JAX's form or TensorFlow's (told apart by the first argument):

    - ``normal(key, shape=(), dtype=float32)``: standard normal draws from ``key``
      (``jax.random.normal``), in any mode;
    - ``normal(shape, mean=0.0, stddev=1.0, dtype=float32, seed=None)``: TF's
      ``tf.random.normal``, drawn from the global key stream (or from ``seed``'s own
      sequence) outside traced code, as an imperative tensor.
    """
    if _tf_form(args, kwargs):
        return _tf_normal(*args, **kwargs)
    return _normal(*args, **kwargs)


def _normal(key, shape=(), dtype=np.float32):
    return bind("random_normal", key, shape=_shape(shape), dtype=dtype)


def uniform(*args, **kwargs):
    """Uniform draws in ``[minval, maxval)``, in JAX's form or TensorFlow's:

    - ``uniform(key, shape=(), dtype=float32, minval=0.0, maxval=1.0)``
      (``jax.random.uniform``; static bounds), in any mode;
    - ``uniform(shape, minval=0, maxval=None, dtype=float32, seed=None)``: TF's
      ``tf.random.uniform`` (``maxval`` defaults to 1 for floats and is required for
      ints), from the global key stream outside traced code, as an imperative tensor.
    """
    if _tf_form(args, kwargs):
        return _tf_uniform(*args, **kwargs)
    return _uniform(*args, **kwargs)


def _uniform(key, shape=(), dtype=np.float32, minval=0.0, maxval=1.0):
    return bind(
        "random_uniform",
        key,
        shape=_shape(shape),
        dtype=dtype,
        minval=float(minval),
        maxval=float(maxval),
    )


def bernoulli(key, p=0.5, shape=None):
    """True with probability ``p`` (``jax.random.bernoulli``).

    ``p`` is a Python number (an attribute of the op) or an array/tensor of
    probabilities; then, as in JAX, the draw is ``uniform(key, shape, p.dtype) < p``
    and ``shape`` defaults to ``p.shape``.
    """
    if isinstance(p, (int, float)) and not isinstance(p, (bool, np.generic)):
        return bind("random_bernoulli", key, p=float(p), shape=_shape(shape))
    if not isinstance(p, Tensor) and not hasattr(p, "dtype"):
        p = np.asarray(p, np.float32)
    p_shape = p.shape
    dtype = p.dtype
    u = bind(
        "random_uniform",
        key,
        shape=_shape(p_shape if shape is None else shape),
        dtype=dtype,
        minval=0.0,
        maxval=1.0,
    )
    return bind("lt", u, p)



def categorical(key, logits, axis: int = -1, shape=None):
    """Class ids drawn with probabilities ``softmax(logits)`` along ``axis``
    (``jax.random.categorical``, equal bit for bit): ``logits`` are unnormalized log
    probabilities, any float dtype. The result has the default int dtype and ``shape``
    (default: ``logits.shape`` without ``axis``; a given shape must end in that batch
    shape, as in JAX, so ``shape=(n,) + batch`` draws ``n`` samples per row).

    Example::

        ids = tg.random.categorical(key, logits)             # logits f32[B, C] -> i32[B]
        many = tg.random.categorical(key, logits, shape=(10, B))
    """
    lshape = tuple(logits.shape) if hasattr(logits, "shape") else tuple(np.shape(logits))
    n = len(lshape)
    ax = operator.index(axis)
    if -n <= ax < n:
        ax %= n
    if shape is None:
        shape = lshape[:ax] + lshape[ax + 1:] if 0 <= ax < n else ()
    return bind("random_categorical", key, logits, axis=ax, shape=_shape(shape))



# -- the global key stream (PyTorch's generator), for code that gives no key ----------------

_STREAM_LOCK = threading.Lock()
_STREAM: list = []  # [key] once seeded


# TF's operation seeds: seed -> draws so far; restarted by manual_seed / set_seed
_OP_SEEDS: dict = {}
_GLOBAL_SEED: list = [0]


def manual_seed(seed: int) -> None:
    """Seed the global key stream that layers built without ``key=``, `tg.randn` /
    `tg.rand` and TF-style ``tg.random.normal(shape)`` draw from (``torch.manual_seed``,
    ``tf.random.set_seed``). Explicit keys never touch it."""
    raw = np.asarray(jax.random.PRNGKey(int(seed)))
    with _STREAM_LOCK:
        _STREAM[:] = [raw]
        _OP_SEEDS.clear()
        _GLOBAL_SEED[0] = int(seed)


set_seed = manual_seed


def next_key():
    """A fresh key from the global stream (seeded from the OS, as PyTorch's default
    generator, until `manual_seed` is called)."""
    with _STREAM_LOCK:
        if not _STREAM:
            _STREAM.append(np.asarray(jax.random.PRNGKey(int.from_bytes(os.urandom(4), "little"))))
        with jax.ensure_compile_time_eval():
            nxt, out = np.asarray(jax.random.split(_STREAM[0]))
        _STREAM[0] = nxt
    return out


def _op_seed_key(seed):
    """The next key of operation seed ``seed``'s own sequence (TF: the n-th draw with a
    given op seed is the same in every run after the same global seed)."""
    seed = operator.index(seed)
    with _STREAM_LOCK:
        n = _OP_SEEDS.get(seed, 0)
        _OP_SEEDS[seed] = n + 1
        base = _GLOBAL_SEED[0]
    with jax.ensure_compile_time_eval():
        k = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(base), seed % 2**32), n)
        return np.asarray(k)


# -- TensorFlow's form: a shape first, the key from the global stream ---------------------


def _tf_form(args, kwargs) -> bool:
    """TensorFlow's form: a shape first (a Python int, list or tuple); anything else (a
    typed key, a raw key array or tensor, a wrongly typed key the op will name) is a key."""
    if args:
        first = args[0]
        return isinstance(first, (list, tuple)) or (
            isinstance(first, numbers.Integral) and not isinstance(first, (bool, np.ndarray))
        )
    return "key" not in kwargs


def _tf_key(fn: str, seed):
    if not at_bottom():
        raise TracingError(
            f"{fn}(shape, ...) without a key (TensorFlow's form) at "
            f"{user_location_long(3)} draws from the global key stream, which works only "
            "outside traced code: the draw would be baked into the graph as a constant. "
            f"Inside tg.jit / tg.eager / tg.compile pass a key: tg.random.{fn}(key, shape) "
            "with key = tg.random.key(seed) or an argument of the function"
        )
    return next_key() if seed is None else _op_seed_key(seed)


def _value(x):
    return x.numpy() if isinstance(x, Tensor) else x


def _tf_normal(shape, mean=0.0, stddev=1.0, dtype=np.float32, seed=None, name=None):
    shape, dt = _shape(shape), canonical_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"normal: dtype must be a float type, got {dt}")
    key = _tf_key("normal", seed)
    arr = jax.random.normal(key, shape, dt)
    if not (isinstance(stddev, (int, float)) and stddev == 1):
        arr = arr * jnp.asarray(_value(stddev), dt)
    if not (isinstance(mean, (int, float)) and mean == 0):
        arr = arr + jnp.asarray(_value(mean), dt)
    return leaf(arr)


def _tf_uniform(shape, minval=0, maxval=None, dtype=np.float32, seed=None, name=None):
    shape, dt = _shape(shape), canonical_dtype(dtype)
    if dt.kind in "iu":
        if maxval is None:
            raise ValueError(f"uniform: an integer dtype ({dt}) needs maxval")
        key = _tf_key("uniform", seed)
        arr = jax.random.randint(key, shape, _value(minval), _value(maxval), dt)
    elif dt.kind == "f":
        key = _tf_key("uniform", seed)
        arr = jax.random.uniform(key, shape, dt, _value(minval), 1.0 if maxval is None else _value(maxval))
    else:
        raise TypeError(f"uniform: dtype must be a float or integer type, got {dt}")
    return leaf(arr)


from ..errors import public_functions as _public_functions

_public_functions(globals())
