import contextlib
import ctypes
import gc
import os

import jax
import numpy as np
import pytest

from tracegraph.ir.types import DTYPE_NAMES

WIDE = {np.dtype(d) for d in ("float64", "int64", "uint64", "complex128")}


def needs_x64(arrays, attrs=None) -> bool:
    dtypes = [np.dtype(getattr(a, "dtype", None) or np.asarray(a).dtype) for a in arrays]
    for v in (attrs or {}).values():
        if v is None or isinstance(v, (bool, int, float)):
            continue
        if isinstance(v, str):
            if v not in DTYPE_NAMES:
                continue
            v = DTYPE_NAMES[v]
        try:
            dtypes.append(np.dtype(v))
        except TypeError:
            pass
    return any(d in WIDE for d in dtypes)


@contextlib.contextmanager
def x64_if_needed(arrays, attrs=None):
    """64-bit samples run with jax_enable_x64 on (JAX's default is 32-bit)."""
    if needs_x64(arrays, attrs):
        with jax.enable_x64(True):
            yield
    else:
        yield


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running tests (select with -m slow)")


# NOTE: memory. Every jitted signature and every op run define-by-run leaves a compiled
# executable in JAX's caches, so a test process grew by about 1 GB per 1,000 tests (9 GB
# over the two workers of the default run). Past RSS_LIMIT_MB a test process drops JAX's
# caches and gives the freed heap back to the system (malloc_trim): it falls to about
# 300 MB, and the few recompilations cost a second or so each time. What cannot be freed
# (libraries a test imported, such as PyTorch) stays, so the next drop waits until the
# process has grown by RSS_GROWTH_MB again, not for the next test.
RSS_LIMIT_MB = int(os.environ.get("TRACEGRAPH_TEST_RSS_MB", "640"))
RSS_GROWTH_MB = int(os.environ.get("TRACEGRAPH_TEST_RSS_GROWTH_MB", "256"))
_next_drop_mb = RSS_LIMIT_MB
try:
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc: the caches are still dropped
    _malloc_trim = None


def _rss_mb() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
    except OSError:  # not Linux
        return 0


@pytest.fixture(autouse=True)
def _bounded_memory():
    global _next_drop_mb
    yield
    if RSS_LIMIT_MB and _rss_mb() > _next_drop_mb:
        jax.clear_caches()
        gc.collect()
        if _malloc_trim is not None:
            _malloc_trim(0)
        _next_drop_mb = max(RSS_LIMIT_MB, _rss_mb() + RSS_GROWTH_MB)


# Default-run margin: these run in the slow set only. Each has a sibling that stays in the
# default run (the same check in another mode, the same layer in another case, or the same
# library through another test), measured as the heaviest of the default run by CPU time.
SLOW_ONLY = {
    "tests/test_nn_modules.py::test_default_inits_follow_pytorch",
    "tests/test_nn_modules.py::test_init_functions_match_jax",
    "tests/test_nn_modules.py::test_lstm_grad_vs_jax[interpret]",
    "tests/test_nn_modules.py::test_lstm_grad_vs_jax[eager]",
    "tests/test_nn_modules.py::test_gru_vs_flax_gru_cell[interpret]",
    "tests/test_nn_modules.py::test_conv2d_grad_vs_jax[interpret]",
    "tests/test_nn_modules.py::test_mha_cross_attention_with_mask_vs_jnp[eager]",
    "tests/test_from_flax.py::test_linen_static_flag_and_jaxpr_cache",
    "tests/test_from_flax.py::test_linen_graph_prints_with_from_jax_scopes",
    "tests/test_from_flax.py::test_nnx_gradient_matches_jax",
    "tests/test_autodiff_nn.py::test_matmul_and_dot_general_grad[interpret]",
    "tests/test_autodiff_nn.py::test_hessian_vector_products[eager]",
    "tests/test_autodiff_nn.py::test_flax_conv_via_conv_general_attrs[interpret]",
    "tests/test_from_jax.py::test_grad_of_converted_function_matches_jax[indexing-interpret]",
    "tests/test_from_jax.py::test_grad_of_converted_function_matches_jax[shapes-interpret]",
    "tests/test_imperative.py::test_optimizers_equal_pytorch_over_100_steps[sgd-momentum-nesterov-wd]",
    "tests/test_torch_layers.py::test_transformer_encoder_layer[kw0]",
    "tests/test_keras_layers.py::test_layer_normalization[kw0]",
    "tests/test_keras_rnn.py::test_multi_head_attention_matches_keras[key-mask-scores]",
    "tests/test_examples.py::test_example_runs_in_other_modes_with_the_same_losses[logistic_regression-interpret]",
    "tests/test_examples.py::test_dump_ir_writes_text_json_and_dot",  # test_cli.py dumps in-process
    "tests/test_examples.py::test_compare_prints_the_mode_table",  # CI's demo step runs --compare
    "tests/test_keras_seeds.py::test_004_cnn_subclass_learns",  # also run against Keras, -m slow
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in SLOW_ONLY:
            item.add_marker(pytest.mark.slow)
