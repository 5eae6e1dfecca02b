"""tracegraph: a graph-compiling JIT on JAX with an explicit, readable IR.

    import tracegraph as tg

    @tg.jit
    def mlp(x, w1, b1):
        return tg.relu(x @ w1 + b1)

    mlp(x, w1, b1)              # define-then-run: IR -> jax.jit -> XLA
    print(mlp.trace(x, w1, b1)) # the IR
    mlp.interpret(x, w1, b1)    # the same IR, node by node
    tg.eager(f)(x)              # define-by-run, records .last_graph
"""

from . import ops as _ops  # noqa: F401  (registers every op)
from . import backends as _backends  # noqa: F401  (registers the runners)
from .errors import Error, IRError, ShapeError, TracingError
from .frontend import tensor_methods as _tensor_methods  # noqa: F401
from .core import Tensor, scope
from .frontend.control_flow import cond, fori_loop, scan, while_loop
from .frontend.custom_derivatives import custom_vjp
from .frontend.shard_map import (
    all_gather, all_to_all, axis_index, pmax, pmean, pmin, ppermute, psum, psum_scatter,
    shard_map, with_sharding_constraint,
)
from .frontend.eager import EagerFunction, eager
from .frontend.tape import (
    TapeTensor, enable_grad, is_grad_enabled, no_grad, rand, randn, set_grad_enabled, tensor,
)
from .frontend.fn_random import manual_seed
from .frontend.variables import GradientTape, Variable, constant, convert_to_tensor
from .frontend.fn_math import (
    abs, add, arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, astype,
    bitwise_and, bitwise_count, bitwise_not, bitwise_or, bitwise_xor, cbrt, ceil, clip,
    copysign, cos, divide, equal, erf, exp, floor, floor_divide, gelu, greater, greater_equal,
    invert, left_shift, less, less_equal, log, log1p, logical_and, logical_not, logical_or,
    logical_xor, maximum, minimum, mod, multiply, negative, nextafter, not_equal, power,
    reciprocal, relu, remainder, right_shift, round, rsqrt, select, sigmoid, sign, signbit, sin,
    spacing, sqrt, square, subtract, tanh, true_divide, where,
)
from .frontend.fn_linalg import dot, dot_general, einsum, matmul, stop_gradient, tensordot
from .frontend.fn_creation import (
    arange, empty, empty_like, eye, full, full_like, identity, linspace, logspace, ones, ones_like,
    zeros, zeros_like,
)
from .frontend.fn_torch import (
    as_tensor, cat, clamp, concat, from_numpy, inference_mode, is_tensor, numel, rand_like, randint,
    randn_like, randperm, tril, triu,
)
from .frontend.devices import (
    DeviceError, accelerator, backends, cuda, device, get_default_device, set_default_device,
)
from .frontend import autograd
from .frontend.fn_reduce import (
    amax, amin, argmax, argmin, argsort, cumprod, cumsum, cumulative_prod, cumulative_sum,
    logsumexp, max, mean, min, prod, sort, std, sum, top_k, var,
)
from .frontend.fn_shape import (
    broadcast_to, concatenate, expand_dims, flatten, moveaxis, pad, ravel, reshape, split,
    squeeze, stack, swapaxes, take, take_along_axis, transpose,
)
from .frontend.tracing import spec, trace_function
from .backends.interpreter import Hook, Interpreter, NaNError, Profile, Watch, profile
from .ir import Graph, Node, TensorType, Value
from .jit import JitFunction, RetraceWarning, jit
from ._caches import clear_caches
from .compile import CompiledFunction, GuardMiss, compile, function  # noqa: A004 - torch.compile's name
from .autodiff import grad, value_and_grad, vjp
from .interop import from_jax, to_jax
from . import transforms
from . import nn, random
from . import checkpoint, data
from .checkpoint import load_object as load, save_object as save  # graphs, and PyTorch's tg.save(obj, f)
from . import optim
from . import train
from . import callbacks, losses, metrics  # Keras' model.compile / fit (see tracegraph.nn._trainer)
from .nn.functional import log_softmax, softmax
# TensorFlow's spellings (``import tracegraph as tf``); tg.one_hot becomes TF's, whose
# keywords include jax.nn.one_hot's (dtype=, axis=; num_classes= for depth)
from .frontend.fn_tf import (
    cast, clip_by_value, concat, fill, floordiv, gather, one_hot, pow, range,
    reduce_all, reduce_any, reduce_logsumexp, reduce_max, reduce_mean, reduce_min, reduce_prod,
    reduce_sum, tile, truediv,
)
from . import debug, linalg, math, optimizers, tensorboard
from . import keras  # Keras 3's API: tg.keras.layers, Sequential, Model (import tracegraph as tf)

__version__ = "0.1.0"
newaxis = None


def trace(fn, *args, **kwargs) -> Graph:
    """Trace ``fn`` on arrays or `tg.spec(shape, dtype)`s; returns its `tg.Graph`.

    Example::

        g = tg.trace(lambda x: tg.exp(x) * 2, tg.spec((3,), "f32"))
        print(g)
    """
    if isinstance(fn, JitFunction):
        return fn.trace(*args, **kwargs)
    return trace_function(fn, args, kwargs)


def parse(text: str, constants=None) -> Graph:
    """Read a graph back from its text form (``str(graph)``)."""
    return Graph.parse(text, constants)


# PyTorch's dtype names, for code ported from it (``tg.tensor(x, dtype=tg.float)``); with
# x64 off (JAX's default) the 64-bit ones give 32-bit arrays, as every JAX dtype does
import numpy as _np  # noqa: E402

float16, bfloat16, float32, float64 = _np.float16, "bf16", _np.float32, _np.float64
int8, int16, int32, int64, uint8 = _np.int8, _np.int16, _np.int32, _np.int64, _np.uint8
half, double, long, short = _np.float16, _np.float64, _np.int64, _np.int16
float, int, bool = _np.float32, _np.int32, _np.bool_  # noqa: A001 - PyTorch's names
