"""A catalogue of common user mistakes (issue 9, item 8).

Every mistake must raise a `tg.Error` subclass whose message names the user-facing op or
function (``layer_norm``, not the internal ``mul`` it is built from) and the user's
``file:line``: the one line of each case below marked ``# mistake``.

Each case is a small function; cases that make sense in every mode take ``run`` and are
run under tg.jit, tg.eager and tg.trace (define-by-run rejects what tg.jit rejects).
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg

F = tg.nn.functional
KEY = tg.random.key(0)


def A(*shape, dtype=np.float32):
    return np.ones(shape, dtype)


def I(*shape):
    return np.zeros(shape, np.int32)


MODES = {
    "jit": lambda f, *a: tg.jit(f)(*a),
    "eager": lambda f, *a: tg.eager(f)(*a),
    "trace": lambda f, *a: tg.trace(f, *a),
}

CASES = []


def mistake(exc, op, modes=None):
    """Register a case: ``exc`` the tg.Error subclass, ``op`` the name the message must
    contain; ``modes`` runs the case once per mode (it then takes ``run``)."""

    def deco(fn):
        if modes is None:
            CASES.append(pytest.param(fn, None, exc, op, id=fn.__name__))
        else:
            for m in modes:
                CASES.append(pytest.param(fn, m, exc, op, id=f"{fn.__name__}[{m}]"))
        return fn

    return deco


ALL = ("jit", "eager", "trace")
JE = ("jit", "eager")


def mistake_line(fn) -> int:
    lines, start = inspect.getsourcelines(fn)
    hits = [start + i for i, s in enumerate(lines) if s.rstrip().endswith("# mistake")]
    assert len(hits) == 1, f"{fn.__name__}: mark exactly one line with '# mistake'"
    return hits[0]


# -- elementwise and broadcasting ---------------------------------------------------------


@mistake(tg.ShapeError, "add", ALL)
def add_shapes_do_not_broadcast(run):
    run(lambda x, y: x + y, A(2, 3), A(4))  # mistake


@mistake(tg.ShapeError, "maximum", ALL)
def maximum_shapes_do_not_broadcast(run):
    run(lambda x, y: tg.maximum(x, y), A(2), A(3))  # mistake


@mistake(tg.ShapeError, "where", ALL)
def where_shapes(run):
    run(lambda c, x: tg.where(c > 0, x, A(5)), A(3), A(3))  # mistake


@mistake(tg.ShapeError, "bitwise_and", ALL)
def bitwise_and_of_floats(run):
    run(lambda x: x & 3, A(3))  # mistake


@mistake(tg.ShapeError, "top_k", ALL)
def top_k_larger_than_the_axis(run):
    run(lambda x: tg.top_k(x, 5)[0], A(2, 3))  # mistake


@mistake(tg.ShapeError, "cholesky", ALL)
def cholesky_of_a_matrix_that_is_not_square(run):
    run(lambda a: tg.linalg.cholesky(a), A(2, 3))  # mistake


@mistake(tg.ShapeError, "triangular_solve", ALL)
def triangular_solve_with_a_right_side_of_the_wrong_length(run):
    run(lambda a, b: tg.linalg.solve_triangular(a, b, lower=True), A(3, 3), A(4))  # mistake


@mistake(tg.ShapeError, "solve", ALL)
def solve_with_a_right_side_of_the_wrong_length(run):
    run(lambda a, b: tg.linalg.solve(a, b), A(3, 3), A(4))  # mistake


@mistake(tg.ShapeError, "inv", ALL)
def inv_of_a_matrix_that_is_not_square(run):
    run(lambda a: tg.linalg.inv(a), A(2, 3))  # mistake


@mistake(tg.Error, "sin", ALL)
def sin_of_string(run):
    run(lambda x: tg.sin("abc"), A(3))  # mistake


# elementwise functions whose public name is not the op's (`subtract` binds `sub`): the
# message names the function the user called
@mistake(tg.ShapeError, "subtract", ALL)
def subtract_shapes_do_not_broadcast(run):
    run(lambda x, y: tg.subtract(x, y), A(2), A(3))  # mistake


@mistake(tg.Error, "arcsin", ALL)
def arcsin_of_string(run):
    run(lambda x: tg.arcsin("abc"), A(3))  # mistake


@mistake(tg.Error, "power", ALL)
def power_of_string_exponent(run):
    run(lambda x: tg.power(x, "2"), A(3))  # mistake


@mistake(tg.Error, "clip", ALL)
def clip_with_string_bound(run):
    run(lambda x: tg.clip(x, "low", 1.0), A(3))  # mistake


@mistake(tg.Error, "astype", ALL)
def astype_unknown_dtype(run):
    run(lambda x: tg.astype(x, "float13"), A(3))  # mistake


@mistake(tg.TracingError, "sin()", ALL)
def jnp_function_on_tensor(run):
    run(lambda x: jnp.sin(x), A(3))  # mistake


@mistake(tg.TracingError, "tanh()", ALL)
def jnp_tanh_on_tensor(run):
    run(lambda x: jnp.tanh(x) * 2, A(3))  # mistake


@mistake(tg.TracingError, "sum()", ALL)
def jnp_sum_on_tensor(run):
    run(lambda x: jnp.sum(x), A(3))  # mistake


@mistake(tg.TracingError, "numpy", ("jit", "trace"))
def numpy_on_traced_tensor(run):
    run(lambda x: np.asarray(x) + 1, A(3))  # mistake


# -- matmul, dot, einsum ------------------------------------------------------------------------


@mistake(tg.ShapeError, "matmul", ALL)
def matmul_inner_dims(run):
    run(lambda x, w: x @ w, A(4, 3), A(4, 2))  # mistake


@mistake(tg.ShapeError, "matmul", ALL)
def matmul_function_inner_dims(run):
    run(lambda x, w: tg.matmul(x, w), A(4, 3), A(5, 2))  # mistake


@mistake(tg.ShapeError, "matmul", ALL)
def matmul_of_scalar(run):
    run(lambda x: tg.matmul(x, 2.0), A(3))  # mistake


@mistake(tg.ShapeError, "dot", ALL)
def dot_mismatched(run):
    run(lambda x, y: tg.dot(x, y), A(3), A(4))  # mistake


@mistake(tg.Error, "einsum", ALL)
def einsum_wrong_operand_count(run):
    run(lambda x: tg.einsum("ij,jk->ik", x), A(2, 2))  # mistake


@mistake(tg.Error, "einsum", ALL)
def einsum_dim_mismatch(run):
    run(lambda x, y: tg.einsum("ij,jk->ik", x, y), A(2, 3), A(4, 2))  # mistake


@mistake(tg.Error, "tensordot", ALL)
def tensordot_bad_axes(run):
    run(lambda x, y: tg.tensordot(x, y, axes=5), A(2, 3), A(3, 2))  # mistake


# -- reductions ------------------------------------------------------------------------------


@mistake(tg.Error, "sum", ALL)
def sum_axis_out_of_range(run):
    run(lambda x: tg.sum(x, axis=2), A(2, 3))  # mistake


@mistake(tg.Error, "mean", ALL)
def mean_float_axis(run):
    run(lambda x: tg.mean(x, axis=1.0), A(2, 3))  # mistake


@mistake(tg.Error, "argmax", ALL)
def argmax_axis_out_of_range(run):
    run(lambda x: tg.argmax(x, axis=3), A(2, 3))  # mistake


@mistake(tg.Error, "max", ALL)
def max_duplicate_axes(run):
    run(lambda x: tg.max(x, axis=(0, 0)), A(2, 3))  # mistake


@mistake(tg.Error, "logsumexp", ALL)
def logsumexp_axis(run):
    run(lambda x: tg.logsumexp(x, axis=-3), A(2, 3))  # mistake


# -- shape ops ------------------------------------------------------------------------------


@mistake(tg.ShapeError, "reshape", ALL)
def reshape_wrong_size(run):
    run(lambda x: tg.reshape(x, (4, 2)), A(6))  # mistake


@mistake(tg.Error, "reshape", ALL)
def reshape_float_dims(run):
    run(lambda x: tg.reshape(x, (2.0, 3)), A(6))  # mistake


@mistake(tg.Error, "reshape", ALL)
def reshape_two_minus_ones(run):
    run(lambda x: tg.reshape(x, (-1, -1)), A(6))  # mistake


@mistake(tg.Error, "reshape", ALL)
def method_reshape_wrong_size(run):
    run(lambda x: x.reshape(5), A(6))  # mistake


@mistake(tg.Error, "transpose", ALL)
def transpose_bad_perm(run):
    run(lambda x: tg.transpose(x, (0, 0)), A(2, 3))  # mistake


@mistake(tg.Error, "transpose", ALL)
def transpose_perm_too_short(run):
    run(lambda x: tg.transpose(x, (1,)), A(2, 3))  # mistake


@mistake(tg.ShapeError, "broadcast_to", ALL)
def broadcast_to_incompatible(run):
    run(lambda x: tg.broadcast_to(x, (2, 4)), A(3))  # mistake


@mistake(tg.Error, "expand_dims", ALL)
def expand_dims_axis(run):
    run(lambda x: tg.expand_dims(x, 5), A(3))  # mistake


@mistake(tg.Error, "squeeze", ALL)
def squeeze_non_unit_axis(run):
    run(lambda x: tg.squeeze(x, axis=0), A(2, 3))  # mistake


@mistake(tg.ShapeError, "concatenate", ALL)
def concatenate_mismatched(run):
    run(lambda x, y: tg.concatenate([x, y], axis=0), A(2, 3), A(2, 4))  # mistake


@mistake(tg.Error, "concatenate", ALL)
def concatenate_axis_out_of_range(run):
    run(lambda x, y: tg.concatenate([x, y], axis=2), A(2, 3), A(2, 3))  # mistake


@mistake(tg.Error, "concatenate", ALL)
def concatenate_rank_mismatch(run):
    run(lambda x, y: tg.concatenate([x, y]), A(2, 3), A(3))  # mistake


@mistake(tg.ShapeError, "stack", ALL)
def stack_mismatched(run):
    run(lambda x, y: tg.stack([x, y]), A(3), A(4))  # mistake


@mistake(tg.Error, "split", ALL)
def split_uneven(run):
    run(lambda x: tg.split(x, 4), A(6))  # mistake


@mistake(tg.Error, "pad", ALL)
def pad_wrong_widths(run):
    run(lambda x: tg.pad(x, ((1, 1), (1, 1), (1, 1))), A(2, 3))  # mistake


@mistake(tg.Error, "take", ALL)
def take_float_indices(run):
    run(lambda x: tg.take(x, A(2)), A(4))  # mistake


@mistake(tg.Error, "take_along_axis", ALL)
def take_along_axis_rank(run):
    run(lambda x: tg.take_along_axis(x, I(2), axis=1), A(2, 3))  # mistake


@mistake(tg.Error, "moveaxis", ALL)
def moveaxis_out_of_range(run):
    run(lambda x: tg.moveaxis(x, 0, 4), A(2, 3))  # mistake


@mistake(tg.Error, "swapaxes", ALL)
def swapaxes_out_of_range(run):
    run(lambda x: tg.swapaxes(x, 0, 2), A(2, 3))  # mistake


@mistake(tg.Error, "flatten", ALL)
def flatten_bad_dims(run):
    run(lambda x: tg.flatten(x, 3), A(2, 3))  # mistake


# -- indexing ------------------------------------------------------------------------------


@mistake(tg.Error, "index", ALL)
def index_too_many(run):
    run(lambda x: x[0, 0, 0], A(2, 3))  # mistake


@mistake(tg.Error, "index", ALL)
def index_out_of_bounds(run):
    run(lambda x: x[5], A(2, 3))  # mistake


@mistake(tg.Error, "index", ALL)
def index_zero_step(run):
    run(lambda x: x[::0], A(4))  # mistake


@mistake(tg.Error, "index", ALL)
def index_float(run):
    run(lambda x: x[1.5], A(4))  # mistake


@mistake(tg.Error, "index", ALL)
def index_string(run):
    run(lambda x: x["a"], A(4))  # mistake


@mistake(tg.Error, "index", ALL)
def index_float_tensor(run):
    run(lambda x: x[x], A(4))  # mistake


@mistake(tg.Error, "index", ALL)
def index_two_ellipses(run):
    run(lambda x: x[..., 0, ...], A(2, 3))  # mistake


@mistake(tg.Error, "index", ALL)
def index_bool_mask_shape(run):
    run(lambda x: x[np.array([True, False, True])], A(2, 3))  # mistake


@mistake(tg.ShapeError, "at[...].set", ALL)
def at_set_values_of_the_wrong_shape(run):
    run(lambda x: x.at[np.array([0, 1])].set(A(4)), A(2, 3))  # mistake


@mistake(tg.ShapeError, "index_add", ALL)
def at_add_to_bools(run):
    run(lambda x: (x > 0).at[0].add(True), A(2, 3))  # mistake


# -- creation --------------------------------------------------------------------------------


@mistake(tg.Error, "zeros", ALL)
def zeros_negative_shape(run):
    run(lambda x: x + tg.zeros((-1, 3)), A(3))  # mistake


@mistake(tg.Error, "ones", ALL)
def ones_float_shape(run):
    run(lambda x: x + tg.ones((2.5,)), A(3))  # mistake


@mistake(tg.Error, "full", ALL)
def full_bad_dtype(run):
    run(lambda x: x + tg.full((3,), 1.0, dtype="floaty"), A(3))  # mistake


@mistake(tg.Error, "arange", ALL)
def arange_zero_step(run):
    run(lambda x: tg.arange(0, 3, 0), A(3))  # mistake


@mistake(tg.Error, "eye", ALL)
def eye_negative(run):
    run(lambda x: tg.eye(-2), A(3))  # mistake


# -- nn.functional --------------------------------------------------------------------------


@mistake(tg.ShapeError, "layer_norm", ALL)
def layer_norm_weight_shape(run):
    run(lambda x, w: F.layer_norm(x, w), A(2, 4), A(3))  # mistake


@mistake(tg.ShapeError, "layer_norm", ALL)
def layer_norm_bias_shape(run):
    run(lambda x, w, b: F.layer_norm(x, w, b), A(2, 4), A(4), A(5))  # mistake


@mistake(tg.Error, "softmax", ALL)
def softmax_axis_out_of_range(run):
    run(lambda x: F.softmax(x, axis=2), A(2, 3))  # mistake


@mistake(tg.Error, "log_softmax", ALL)
def log_softmax_axis_out_of_range(run):
    run(lambda x: tg.log_softmax(x, axis=-3), A(2, 3))  # mistake


@mistake(tg.Error, "cross_entropy", ALL)
def cross_entropy_label_shape(run):
    run(lambda z, y: F.cross_entropy(z, y), A(4, 10), I(5))  # mistake


@mistake(tg.Error, "cross_entropy", ALL)
def cross_entropy_float_labels(run):
    run(lambda z, y: F.cross_entropy(z, y), A(4, 10), A(4))  # mistake


@mistake(tg.Error, "cross_entropy", ALL)
def cross_entropy_bad_reduction(run):
    run(lambda z, y: F.cross_entropy(z, y, reduction="avg"), A(4, 10), I(4))  # mistake


@mistake(tg.ShapeError, "mse_loss", ALL)
def mse_loss_shapes(run):
    run(lambda p, t: F.mse_loss(p, t), A(4, 3), A(4, 2))  # mistake


@mistake(tg.ShapeError, "binary_cross_entropy", ALL)
def bce_shapes(run):
    run(lambda p, t: F.binary_cross_entropy(p, t), A(4), A(3))  # mistake


@mistake(tg.Error, "one_hot", ALL)
def one_hot_float_input(run):
    run(lambda y: F.one_hot(y, 3), A(4))  # mistake


@mistake(tg.Error, "one_hot", ALL)
def one_hot_bad_num_classes(run):
    run(lambda y: F.one_hot(y, 2.5), I(4))  # mistake


@mistake(tg.Error, "embedding", ALL)
def embedding_float_ids(run):
    run(lambda ids, t: F.embedding(ids, t), A(4), A(10, 3))  # mistake


@mistake(tg.ShapeError, "conv2d", ALL)
def conv2d_channel_mismatch(run):
    run(lambda x, w: F.conv2d(x, w), A(1, 3, 8, 8), A(4, 2, 3, 3))  # mistake


@mistake(tg.Error, "conv2d", ALL)
def conv2d_rank(run):
    run(lambda x, w: F.conv2d(x, w), A(3, 8, 8), A(4, 3, 3, 3))  # mistake


@mistake(tg.Error, "conv2d", ALL)
def conv2d_zero_stride(run):
    run(lambda x, w: F.conv2d(x, w, stride=0), A(1, 3, 8, 8), A(4, 3, 3, 3))  # mistake


@mistake(tg.Error, "conv2d", ALL)
def conv2d_kernel_larger_than_input(run):
    run(lambda x, w: F.conv2d(x, w), A(1, 3, 2, 2), A(4, 3, 3, 3))  # mistake


@mistake(tg.Error, "conv2d", ALL)
def conv2d_bias_shape(run):
    run(lambda x, w, b: F.conv2d(x, w, b), A(1, 3, 8, 8), A(4, 3, 3, 3), A(5))  # mistake


@mistake(tg.Error, "max_pool2d", ALL)
def max_pool_rank(run):
    run(lambda x: F.max_pool2d(x, 2), A(8, 8))  # mistake


@mistake(tg.Error, "max_pool2d", ALL)
def max_pool_kernel_too_big(run):
    run(lambda x: F.max_pool2d(x, 16), A(1, 1, 8, 8))  # mistake


@mistake(tg.Error, "avg_pool2d", ALL)
def avg_pool_negative_padding(run):
    run(lambda x: F.avg_pool2d(x, 2, padding=-1), A(1, 1, 8, 8))  # mistake


@mistake(tg.Error, "dropout", ALL)
def dropout_rate_out_of_range(run):
    run(lambda x: F.dropout(x, KEY, rate=1.5), A(3))  # mistake


@mistake(tg.Error, "dropout", ALL)
def dropout_without_key(run):
    run(lambda x: F.dropout(x, None), A(3))  # mistake


# -- nn layers ------------------------------------------------------------------------------


@mistake(tg.ShapeError, "Linear", JE)
def linear_wrong_in_features(run):
    run(lambda m, x: m(x), tg.nn.Linear(3, 2, key=KEY), A(4, 5))  # mistake


@mistake(tg.ShapeError, "Conv2d", JE)
def conv2d_layer_wrong_channels(run):
    run(lambda m, x: m(x), tg.nn.Conv2d(3, 4, 3, key=KEY), A(1, 1, 8, 8))  # mistake


@mistake(tg.ShapeError, "LayerNorm", JE)
def layernorm_layer_wrong_features(run):
    run(lambda m, x: m(x), tg.nn.LayerNorm(4), A(2, 5))  # mistake


@mistake(tg.Error, "Embedding", JE)
def embedding_layer_float_ids(run):
    run(lambda m, x: m(x), tg.nn.Embedding(10, 3, key=KEY), A(4))  # mistake


@mistake(tg.ShapeError, "Sequential", JE)
def sequential_mismatched_layers(run):
    run(lambda m, x: m(x), tg.nn.Sequential([tg.nn.Linear(3, 4, key=KEY), tg.nn.Linear(5, 2, key=KEY)]), A(2, 3))  # mistake


# -- control flow ----------------------------------------------------------------------------


@mistake(tg.ShapeError, "cond", ALL)
def cond_non_scalar_predicate(run):
    run(lambda x: tg.cond(x > 0, lambda: x, lambda: -x), A(3))  # mistake


@mistake(tg.ShapeError, "cond", ALL)
def cond_branch_dtypes_differ(run):
    run(lambda p, x: tg.cond(p > 0, lambda x: x, lambda x: x.astype("int32"), x), A(), A(3))  # mistake


@mistake(tg.ShapeError, "cond", ALL)
def cond_branch_shapes_differ(run):
    run(lambda p, x: tg.cond(p > 0, lambda x: x, lambda x: x[:2], x), A(), A(3))  # mistake


@mistake(tg.Error, "cond", ALL)
def cond_branch_structures_differ(run):
    run(lambda p, x: tg.cond(p > 0, lambda x: (x, x), lambda x: x, x), A(), A(3))  # mistake


@mistake(tg.Error, "cond", ALL)
def cond_branch_returns_string(run):
    run(lambda p, x: tg.cond(p > 0, lambda x: "yes", lambda x: "no", x), A(), A(3))  # mistake


@mistake(tg.ShapeError, "while_loop", ALL)
def while_body_changes_shape(run):
    run(lambda x: tg.while_loop(lambda c: tg.sum(c) < 10, lambda c: tg.concatenate([c, c]), x), A(2))  # mistake


@mistake(tg.ShapeError, "while_loop", ALL)
def while_body_changes_dtype(run):
    run(lambda x: tg.while_loop(lambda c: tg.sum(c) < 10, lambda c: (c + 1).astype("int32"), x), A(2))  # mistake


@mistake(tg.ShapeError, "while_loop", ALL)
def while_cond_not_scalar(run):
    run(lambda x: tg.while_loop(lambda c: c < 10, lambda c: c + 1, x), A(2))  # mistake


@mistake(tg.Error, "while_loop", ALL)
def while_body_changes_structure(run):
    run(lambda x: tg.while_loop(lambda c: tg.sum(c[0]) < 10, lambda c: c[0] + 1, (x, x)), A(2))  # mistake


@mistake(tg.ShapeError, "fori_loop", ALL)
def fori_body_changes_shape(run):
    run(lambda x: tg.fori_loop(0, 3, lambda i, c: tg.concatenate([c, c]), x), A(2))  # mistake


@mistake(tg.ShapeError, "fori_loop", ALL)
def fori_body_changes_dtype(run):
    run(lambda x: tg.fori_loop(0, 3, lambda i, c: c.astype("int32"), x), A(2))  # mistake


@mistake(tg.ShapeError, "scan", ALL)
def scan_body_changes_carry_shape(run):
    run(lambda x: tg.scan(lambda c, xi: (tg.concatenate([c, c]), xi), A(2), x), A(3, 2))  # mistake


@mistake(tg.Error, "scan", ALL)
def scan_body_not_a_pair(run):
    run(lambda x: tg.scan(lambda c, xi: c + xi, A(2), x), A(3, 2))  # mistake


@mistake(tg.ShapeError, "scan", ALL)
def scan_xs_length_mismatch(run):
    run(lambda x, y: tg.scan(lambda c, a: (c, a), A(), (x, y)), A(3), A(4))  # mistake


@mistake(tg.ShapeError, "scan", ALL)
def scan_xs_scalar(run):
    run(lambda x: tg.scan(lambda c, a: (c, a), A(), x), A())  # mistake


# -- autodiff --------------------------------------------------------------------------------


@tg.custom_vjp
def _custom_double(x):
    return x * 2.0


_custom_double.defvjp(lambda x: (x * 2.0, None), lambda _, g: (g * 2.0, g))  # two for one argument


@tg.custom_vjp
def _custom_halve(x):
    return x / 2.0


_custom_halve.defvjp(lambda x: (x / 2.0, None), lambda _, g: (g[:1] / 2.0,))  # the wrong shape


@mistake(tg.TracingError, "custom_vjp", ALL)
def custom_vjp_bwd_returns_too_many_cotangents(run):
    run(lambda x: _custom_double(x), A(3))  # mistake


@mistake(tg.ShapeError, "custom_vjp", ALL)
def custom_vjp_bwd_returns_the_wrong_shape(run):
    run(lambda x: _custom_halve(x) + 1.0, A(3))  # mistake


@mistake(tg.Error, "grad", ALL)
def grad_of_non_scalar_output(run):
    run(lambda x: tg.grad(lambda y: y * 2)(x), A(3))  # mistake


@mistake(tg.Error, "grad", None)
def grad_of_non_scalar_output_plain():
    tg.grad(lambda x: x * 2)(A(3))  # mistake


@mistake(tg.Error, "grad", None)
def grad_wrt_int_input():
    tg.grad(lambda x: tg.sum(x * 2))(I(3))  # mistake


@mistake(tg.Error, "grad", None)
def grad_argnums_out_of_range():
    tg.grad(lambda x, y: tg.sum(x * y), argnums=2)(A(3), A(3))  # mistake


@mistake(tg.Error, "grad", None)
def grad_has_aux_without_pair():
    tg.grad(lambda x: tg.sum(x), has_aux=True)(A(3))  # mistake


@mistake(tg.Error, "grad", None)
def grad_of_int_output():
    tg.grad(lambda x: tg.argmax(x))(A(3))  # mistake


@mistake(tg.Error, "value_and_grad", None)
def value_and_grad_non_scalar():
    tg.value_and_grad(lambda x: x + 1)(A(3))  # mistake


@mistake(tg.Error, "value_and_grad", None)
def value_and_grad_argnums_out_of_range():
    tg.value_and_grad(lambda x: tg.sum(x), argnums=(0, 1))(A(3))  # mistake


@mistake(tg.Error, "grad", None)
def grad_returns_string():
    tg.grad(lambda x: "loss")(A(3))  # mistake


@mistake(tg.Error, "grad", None)
def grad_of_string_argument():
    tg.grad(lambda x: tg.sum(x))("abc")  # mistake


@mistake(tg.Error, "grad", ("jit",))
def grad_wrt_int_input_in_jit(run):
    run(lambda x: tg.grad(lambda y: tg.sum(y))(x), I(3))  # mistake


@mistake(tg.Error, "vjp", None)
def vjp_cotangent_shape():
    _, pull = tg.vjp(lambda x: x * 2, A(3))
    pull(A(4))  # mistake


@mistake(tg.Error, "vjp", None)
def vjp_cotangent_structure():
    _, pull = tg.vjp(lambda x: (x, x), A(3))
    pull(A(3))  # mistake


@mistake(tg.Error, "vjp", None)
def vjp_cotangent_dtype():
    _, pull = tg.vjp(lambda x: x * 2, A(3))
    pull(I(3))  # mistake


@mistake(tg.Error, "vjp", None)
def vjp_has_aux_without_pair():
    tg.vjp(lambda x: x * 2, A(3), has_aux=True)  # mistake


@mistake(tg.Error, "vjp", None)
def vjp_of_string_primal():
    tg.vjp(lambda x: x * 2, "abc")  # mistake


@mistake(tg.Error, "vjp", ("jit", "eager"))
def vjp_cotangent_shape_traced(run):
    run(lambda x: tg.vjp(lambda y: y * 2, x)[1](tg.ones((4,))), A(3))  # mistake


# -- jit misuse ------------------------------------------------------------------------------


@mistake(tg.Error, "jit", None)
def jit_string_argument():
    tg.jit(lambda x: x * 2)("abc")  # mistake


@mistake(tg.Error, "jit", None)
def jit_object_argument():
    tg.jit(lambda x: x * 2)(object())  # mistake


@mistake(tg.Error, "jit", None)
def jit_unhashable_static():
    tg.jit(lambda x, n: x * len(n), static_argnums=1)(A(3), [1, 2])  # mistake


@mistake(tg.Error, "jit", None)
def jit_static_argnums_not_int():
    tg.jit(lambda x, n: x * n, static_argnums="n")(A(3), 2)  # mistake


@mistake(tg.Error, "jit", None)
def jit_static_argnums_out_of_range():
    tg.jit(lambda x, n: x * n, static_argnums=5)(A(3), 2)  # mistake


@mistake(tg.Error, "jit", None)
def jit_too_many_arguments():
    tg.jit(lambda x: x * 2)(A(3), A(3))  # mistake


@mistake(tg.Error, "jit", None)
def jit_missing_argument():
    tg.jit(lambda x, y: x * y)(A(3))  # mistake


@mistake(tg.Error, "jit", None)
def jit_returns_string():
    tg.jit(lambda x: "result")(A(3))  # mistake


@mistake(tg.TracingError, "jit", None)
def jit_python_if_on_tensor():
    tg.jit(lambda x: x if x > 0 else -x)(A())  # mistake


@mistake(tg.TracingError, "jit", None)
def jit_int_of_tensor():
    tg.jit(lambda x: tg.zeros((int(x),)))(A())  # mistake


@mistake(tg.Error, "eager", None)
def eager_string_argument():
    tg.eager(lambda x: x * 2)("abc")  # mistake


@mistake(tg.Error, "trace", None)
def trace_string_argument():
    tg.trace(lambda x: x * 2, "abc")  # mistake


@mistake(tg.Error, "spec", None)
def spec_bad_dtype():
    tg.spec((3,), "float13")  # mistake


# -- calling graphs --------------------------------------------------------------------------


def _model_graph():
    model = tg.nn.Sequential([tg.nn.Linear(3, 4, key=KEY), tg.nn.Linear(4, 2, key=KEY)])
    return model, tg.jit(lambda m, x: m(x)).trace(model, A(2, 3))


@mistake(tg.ShapeError, "params.fc1.weight", None)
def graph_call_wrong_param_shape():
    g = tg.trace(lambda params, x: x @ params["fc1"]["weight"], {"fc1": {"weight": A(3, 4)}}, A(2, 3))
    g({"fc1": {"weight": A(5, 4)}}, A(2, 3))  # mistake


@mistake(tg.Error, "x", None)
def graph_call_wrong_input_shape():
    model, g = _model_graph()
    g(model, A(2, 5))  # mistake


@mistake(tg.Error, "x", None)
def graph_call_wrong_input_dtype():
    model, g = _model_graph()
    g(model, I(2, 3))  # mistake


@mistake(tg.Error, "graph", None)
def graph_call_wrong_count():
    g = tg.trace(lambda x, y: x + y, A(3), A(3))
    g(A(3))  # mistake


@mistake(tg.Error, "y", None)
def graph_call_wrong_shape_simple():
    g = tg.trace(lambda x, y: x + y, A(3), A(3))
    g(A(3), A(4))  # mistake


@mistake(tg.Error, "x", None)
def graph_interpret_wrong_shape():
    g = tg.trace(lambda x: x * 2, A(3))
    g.interpret(A(4))  # mistake


@mistake(tg.Error, "x", None)
def graph_call_string():
    g = tg.trace(lambda x: x * 2, A(3))
    g("abc")  # mistake


@mistake(tg.Error, "x", None)
def parsed_graph_wrong_shape():
    g = tg.parse(str(tg.trace(lambda x: x * 2, A(3))))
    g(A(4))  # mistake


@mistake(tg.Error, "graph", None)
def parsed_graph_wrong_count():
    g = tg.parse(str(tg.trace(lambda x: x * 2, A(3))))
    g(A(3), A(3))  # mistake


@mistake(tg.Error, "x", None)
def loaded_graph_wrong_shape(tmp_path):
    tg.save(tg.trace(lambda x: x * 2, A(3)), tmp_path / "g.tg")
    tg.load(tmp_path / "g.tg")(A(2, 2))  # mistake


@mistake(tg.Error, "x", None)
def loaded_graph_wrong_dtype(tmp_path):
    tg.save(tg.trace(lambda x: x * 2, A(3)), tmp_path / "g.tg")
    tg.load(tmp_path / "g.tg")(I(3))  # mistake


@mistake(tg.Error, "graph", None)
def json_graph_wrong_count():
    g = tg.Graph.from_json(tg.trace(lambda x: x * 2, A(3)).to_json())
    g()  # mistake


@mistake(tg.ShapeError, "m.1.bias", None)
def graph_interpret_wrong_param_dtype():
    model, g = _model_graph()
    bad = jax.tree_util.tree_map(lambda p: p, model)
    leaves, tree = jax.tree_util.tree_flatten(bad)
    leaves[-1] = leaves[-1].astype(jnp.int32)
    g.interpret(jax.tree_util.tree_unflatten(tree, leaves), A(2, 3))  # mistake


# -- interop, random, optimizers, checkpoints ----------------------------------------------


@mistake(tg.Error, "from_jax", ALL)
def from_jax_string_argument(run):
    run(lambda x: tg.from_jax(jnp.sin)("abc"), A(3))  # mistake


@mistake(tg.Error, "from_jax", ALL)
def from_jax_shape_error_inside(run):
    run(lambda x: tg.from_jax(lambda a: a @ a)(x), A(2, 3))  # mistake


@mistake(tg.Error, "from_jax", ("jit",))
def from_jax_unsupported_primitive(run):
    run(lambda x: tg.from_jax(lambda a: jax.pure_callback(np.sin, jax.ShapeDtypeStruct((3,), jnp.float32), a))(x), A(3))  # mistake


@mistake(tg.Error, "normal", ALL)
def random_normal_float_key(run):
    run(lambda x: tg.random.normal(x, (3,)), A(2))  # mistake


@mistake(tg.ShapeError, "add", ALL)
def arithmetic_on_a_typed_key(run):
    run(lambda k: k + 1, jax.random.key(0))  # mistake


@mistake(tg.Error, "split", ALL)
def split_of_a_key_array(run):
    run(lambda k: tg.random.split(k), jax.random.split(jax.random.key(0), 3))  # mistake


@mistake(tg.Error, "normal", ALL)
def random_normal_bad_shape(run):
    run(lambda x: x + tg.random.normal(KEY, (3.5,)), A(3))  # mistake


@mistake(tg.Error, "split", ALL)
def random_split_zero(run):
    run(lambda x: tg.random.split(x, 0.5), KEY)  # mistake


@mistake(tg.Error, "uniform", ALL)
def random_uniform_int_dtype(run):
    run(lambda k: tg.random.uniform(k, (3,), dtype="int32"), KEY)  # mistake


@mistake(tg.Error, "key", None)
def random_key_of_float():
    tg.random.key(1.5)  # mistake


@mistake(tg.Error, "save", None)
def checkpoint_save_string_leaf(tmp_path):
    tg.checkpoint.save(tmp_path / "ck", {"w": A(3), "f": lambda: 1})  # mistake


@mistake(tg.Error, "load", None)
def checkpoint_load_missing(tmp_path):
    tg.checkpoint.load(tmp_path / "missing")  # mistake


@mistake(tg.Error, "load", None)
def checkpoint_load_like_mismatch(tmp_path):
    tg.checkpoint.save(tmp_path / "ck", {"w": A(3)})
    tg.checkpoint.load(tmp_path / "ck", like={"w": A(4)})  # mistake


# -- debugging, parallel training, sharded checkpoints ---------------------------------------


@mistake(tg.Error, "debug.bisect", None)
def bisect_unknown_reference():
    tg.debug.bisect(lambda x: x * 2.0, A(3), reference="gpu")  # mistake


@mistake(tg.Error, "debug.bisect", None)
def bisect_unknown_round_trip():
    tg.debug.bisect(lambda x: x * 2.0, A(3), reference="reloaded", via="pickle")  # mistake


@mistake(tg.Error, "TensorBoard", None)
def tensorboard_profile_batch_backwards(tmp_path):
    tg.callbacks.TensorBoard(tmp_path, profile_batch=(5, 2))  # mistake


@mistake(tg.Error, "mesh", None)
def parallel_mesh_spec_without_sizes():
    tg.nn.parallel.parse_mesh("data,model")  # mistake


# -- PyTorch's API around tensors -------------------------------------------------------------


@mistake(tg.DeviceError, "zeros")
def create_on_a_device_jax_lacks():
    tg.zeros(3, device="mps")  # mistake


@mistake(tg.DeviceError, "to")
def move_a_tensor_to_a_device_jax_lacks():
    tg.tensor([1.0]).to("mps")  # mistake


@mistake(tg.DeviceError, "to")
def move_a_module_to_a_device_jax_lacks():
    tg.nn.Linear(2, 2).to("mps")  # mistake


@mistake(tg.ShapeError, "linspace", ALL)
def linspace_with_a_negative_count(run):
    run(lambda x: x + tg.linspace(0.0, 1.0, -1), A(1))  # mistake


class _TwoInputs(tg.autograd.Function):
    @staticmethod
    def forward(ctx, x, y):
        return x * y

    @staticmethod
    def backward(ctx, g):
        return (g,)  # one gradient for two inputs


@mistake(tg.ShapeError, "_TwoInputs.backward", JE)
def autograd_function_returns_too_few_gradients(run):
    run(tg.grad(lambda a: tg.sum(_TwoInputs.apply(a, a))), A(2))  # mistake


@mistake(tg.TracingError, "tg.autograd.grad")
def autograd_grad_of_an_unused_input():
    a, b = tg.tensor([1.0], requires_grad=True), tg.tensor([1.0], requires_grad=True)
    tg.autograd.grad((a * 2).sum(), [a, b])  # mistake


@mistake(tg.IRError, "load")
def load_a_file_that_is_neither_graph_nor_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("not an archive")
    tg.load(tmp_path / "notes.txt")  # mistake


# -- the test --------------------------------------------------------------------------------


def _call(fn, mode, tmp_path):
    params = inspect.signature(fn).parameters
    kwargs = {}
    if "tmp_path" in params:
        kwargs["tmp_path"] = tmp_path
    if mode is not None:
        return fn(MODES[mode], **kwargs)
    return fn(**kwargs)


@pytest.mark.parametrize("case, mode, exc, op", CASES)
def test_mistake(case, mode, exc, op, tmp_path):
    line = mistake_line(case)
    with pytest.raises(tg.Error) as info:
        _call(case, mode, tmp_path)
    e = info.value
    msg = str(e)
    assert isinstance(e, exc), f"{type(e).__name__} is not {exc.__name__}: {msg}"
    assert op in msg, f"the message does not name {op!r}: {msg}"
    assert f"test_mistakes.py:{line}" in msg, f"the message does not name line {line}: {msg}"


def test_catalogue_size():
    distinct = {p.values[0] for p in CASES}
    assert len(distinct) >= 100


# -- the mechanism ---------------------------------------------------------------------------


def test_raw_errors_keep_their_python_class():
    # code written against the old raw errors (``except TypeError``) keeps working
    with pytest.raises(TypeError) as e:
        tg.trace(lambda x: tg.reshape(x, (2.0, 3)), A(6))
    assert isinstance(e.value, tg.ShapeError)
    with pytest.raises(ValueError):
        tg.eager(lambda x: x[::0])(A(4))


def test_user_errors_inside_bodies_are_left_alone():
    # a mistake of the user's own code run by a tg function is not relabelled
    def body(i, c):
        return c + {"a": 1}["b"]

    with pytest.raises(KeyError) as e:
        tg.eager(lambda x: tg.fori_loop(0, 2, body, x))(A(2))
    assert not isinstance(e.value, tg.Error)


def test_innermost_user_call_is_named():
    def helper(x):
        return F.layer_norm(x, A(3))  # the line

    line = inspect.getsourcelines(helper)[1] + 1
    with pytest.raises(tg.ShapeError) as e:
        tg.jit(lambda x: helper(x) + 1)(A(2, 4))
    msg = str(e.value)
    assert msg.startswith("layer_norm: ") and f"test_mistakes.py:{line}" in msg


# -- PyTorch style (imperative tensors) and tg.compile ------------------------------------


@mistake(tg.TracingError, "backward", None)
def backward_of_non_scalar():
    w = tg.tensor(A(3), requires_grad=True)
    (w * 2).backward()  # mistake


@mistake(tg.TracingError, "backward", None)
def backward_without_requires_grad():
    tg.tensor(A(3)).sum().backward()  # mistake


@mistake(tg.TracingError, "retain_graph", None)
def backward_twice():
    w = tg.tensor(A(3), requires_grad=True)
    loss = (w * w).sum()
    loss.backward()
    loss.backward()  # mistake


@mistake(tg.TracingError, "no_grad", None)
def in_place_update_of_leaf_outside_no_grad():
    w = tg.tensor(A(3), requires_grad=True)
    w -= 0.1  # mistake


@mistake(tg.TracingError, "requires_grad", None)
def int_tensor_requires_grad():
    tg.tensor(I(3), requires_grad=True)  # mistake


@mistake(tg.TracingError, "SGD", None)
def optimizer_given_plain_arrays():
    tg.optim.SGD([A(3)], lr=0.1)  # mistake


@mistake(tg.TracingError, "argument", None)
def jit_closing_over_a_trainable_tensor():
    w = tg.tensor(A(3), requires_grad=True)
    tg.jit(lambda x: x * w)(A(3))  # mistake


@mistake(tg.GuardMiss, "compile", None)
def compile_guard_miss_with_on_miss_error():
    f = tg.compile(lambda x: x * 2 if x.sum() > 0 else -x, on_miss="error")
    f(A(3) + 1)
    f(-A(3) - 1)  # mistake


@mistake(tg.TracingError, "non-persistent", None)
def gradient_tape_used_twice():
    v = tg.Variable(A(3))
    with tg.GradientTape() as tape:
        y = tg.sum(v * v)
    tape.gradient(y, v)
    tape.gradient(y, v)  # mistake


@mistake(tg.TracingError, "watch", None)
def gradient_tape_watching_an_array():
    with tg.GradientTape() as tape:
        tape.watch(A(3))  # mistake


@mistake(tg.TracingError, "GradientTape.gradient", None)
def gradient_tape_int_target():
    v = tg.Variable(A(3))
    with tg.GradientTape() as tape:
        n = tg.argmax(v)
    tape.gradient(n, v)  # mistake


@mistake(tg.ShapeError, "assign", None)
def variable_assign_of_another_shape():
    v = tg.Variable(A(2, 3))
    v.assign(A(3, 2))  # mistake


@mistake(tg.TracingError, "tg.function", None)
def variable_assign_inside_jit():
    v = tg.Variable(A(3))

    def step(x):
        v.assign(x)  # mistake
        return x

    tg.jit(step)(A(3))


@mistake(tg.ShapeError, 'layer "mistake_dense"', None)
def keras_dense_called_with_another_feature_size():
    dense = tg.keras.layers.Dense(4, name="mistake_dense")
    dense(A(2, 3))
    dense(A(2, 5))  # mistake


@mistake(tg.ShapeError, 'layer "mistake_conv"', None)
def keras_conv2d_given_a_rank3_input():
    tg.keras.layers.Conv2D(8, 3, name="mistake_conv")(A(2, 8, 8))  # mistake


@mistake(tg.ShapeError, 'layer "mistake_head"', None)
def keras_fit_with_another_feature_size():
    model = tg.keras.Sequential([tg.keras.Input((3,)), tg.keras.layers.Dense(2, name="mistake_head")])
    model.compile(optimizer="adam", loss="mse")
    model.fit(A(4, 5), A(4, 2), verbose=0)  # mistake


@mistake(tg.TracingError, "FromTransform.apply_gradients", None)
def from_transform_given_other_variables():
    v, w = tg.Variable(A(3)), tg.Variable(A(3))
    opt = tg.optimizers.FromTransform(tg.optim.sgd(0.1))
    opt.apply_gradients([(A(3), v)])
    opt.apply_gradients([(A(3), w)])  # mistake


@mistake(tg.TracingError, "argument structure at params.b: list of 1 item -> list of 2 items", None)
def jit_retrace_refused_on_a_changed_argument_structure():
    f = tg.jit(lambda params: params["a"] * 2, on_retrace="error")
    f({"a": A(3), "b": [A(3)]})
    f({"a": A(3), "b": [A(3), A(3)]})  # mistake
