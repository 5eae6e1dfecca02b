import contextlib
import ctypes
import functools
import gc
import importlib
import importlib.util
import os
import pathlib
import re
import sys

import numpy as np
import pytest

# NOTE: JAX and tracegraph are imported inside the helpers below, not here: under xdist the
# controller process loads this file too, and it runs no test (it stays at about 60 MB).

WIDE = {np.dtype(d) for d in ("float64", "int64", "uint64", "complex128")}


def needs_x64(arrays, attrs=None) -> bool:
    from tracegraph.ir.types import DTYPE_NAMES, is_key

    dtypes = [
        np.dtype(getattr(a, "dtype", None) or np.asarray(a).dtype)
        for a in arrays
        if not is_key(getattr(a, "dtype", None))  # typed PRNG keys: u32 data
    ]
    for v in (attrs or {}).values():
        if v is None or isinstance(v, (bool, int, float)):
            continue
        if isinstance(v, str):
            if v not in DTYPE_NAMES:
                continue
            v = DTYPE_NAMES[v]
        try:
            dtypes.append(np.dtype(v))
        except (TypeError, ValueError):  # tuples of names, partition specs
            pass
    return any(d in WIDE for d in dtypes)


@contextlib.contextmanager
def x64_if_needed(arrays, attrs=None):
    """64-bit samples run with jax_enable_x64 on (JAX's default is 32-bit)."""
    if needs_x64(arrays, attrs):
        import jax

        with jax.enable_x64(True):
            yield
    else:
        yield


def has_module(name: str) -> bool:
    """Whether ``name`` is installed, without importing it."""
    return importlib.util.find_spec(name) is not None


class LazyModule:
    """A module imported on first attribute use: a test file names PyTorch or Keras at module
    level without every xdist worker importing it at collection (see HEAVY_GROUP)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        if attr.startswith("_"):  # pytest probes names such as `_mock_name` at collection
            raise AttributeError(attr)
        return getattr(importlib.import_module(self._name), attr)


def example_module(name: str):
    """``examples/NAME.py`` imported as a module (its folder on the path while it imports,
    for its ``_common``), to reuse an example's model classes."""
    examples = str(pathlib.Path(__file__).resolve().parent.parent / "examples")
    sys.path.insert(0, examples)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(examples)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running tests (select with -m slow)")


# NOTE: memory. Every jitted signature and every op run define-by-run leaves a compiled
# executable in JAX's caches: a test process grows by about 2 MB per test (9 GB over the
# default run). The run has one budget, MEMORY_MB, for all its processes together (the
# xdist controller and its workers, read from /proc): after a test, a worker that finds the
# total past it drops tracegraph's and JAX's caches (`tg.clear_caches()`) and gives the
# freed heap back to the system (malloc_trim), provided it grew by MIN_GROWTH_MB since its
# last drop (what cannot be
# freed, such as PyTorch once imported, stays). A drop costs a few recompilations, so the
# budget is spent before anything is dropped. The sampled peak runs about 0.25 GB above
# the budget: what a test holds while it runs (data sets, activations) comes on top.
MEMORY_MB = int(os.environ.get("TRACEGRAPH_TEST_MEMORY_MB", "1600"))  # 0: never drop
MIN_GROWTH_MB = 64
_floor_mb = 0
try:
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc: the caches are still dropped
    _malloc_trim = None


def _rss_mb(pid="self") -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
    except OSError:  # not Linux, or the process has ended
        return 0


def _run_rss_mb() -> int:
    """The resident memory of the whole test run: this process alone, or under xdist the
    controller and all its workers."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return _rss_mb()
    controller = os.getppid()
    try:
        with open(f"/proc/{controller}/task/{controller}/children") as f:
            workers = f.read().split()
    except OSError:
        return _rss_mb()
    return _rss_mb(controller) + sum(_rss_mb(pid) for pid in workers)


# TRACEGRAPH_TEST_MEMLOG=FILE appends, after each test, the worker, the test, its resident
# memory before and after and its own peak (VmHWM, reset before it through clear_refs),
# and the whole run's resident memory: to find the tests behind the run's peak.
MEMLOG = os.environ.get("TRACEGRAPH_TEST_MEMLOG")


def _hwm_mb() -> int:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) >> 10 for line in f if line.startswith("VmHWM"))
    except (OSError, StopIteration):
        return 0


# Most of what a compiled signature holds is not its executable (about 0.3 MB) but what
# JAX's Python side keeps to build it again: the traced jaxpr and the lowered MLIR module
# (about 1.2 MB). JAX's staging caches hold those; the executables live in its C++
# dispatch caches. A worker that grew by LIGHT_GROWTH_MB clears only the staging caches:
# about 80% of the growth goes, and nothing is compiled again (calls that were made keep
# their executables).
LIGHT_GROWTH_MB = 32
_light_floor_mb = 0


def _drop_staging() -> None:
    global _light_floor_mb
    try:
        from jax._src import util as jax_util  # JAX's own registry of its staging caches

        jax_util.clear_all_caches()
    except (ImportError, AttributeError):  # another JAX: the budget's full drop remains
        pass
    if _malloc_trim is not None:
        _malloc_trim(0)
    _light_floor_mb = _rss_mb()


@pytest.fixture(autouse=True)
def _bounded_memory(request):
    global _floor_mb, _light_floor_mb
    if MEMLOG:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM to the current resident size
        except OSError:
            pass
        before = _rss_mb()
    yield
    if MEMLOG:
        with open(MEMLOG, "a") as f:
            f.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {request.node.nodeid} "
                    f"{before} {_rss_mb()} {_hwm_mb()} {_run_rss_mb()}\n")
    if MEMORY_MB and _rss_mb() > _light_floor_mb + LIGHT_GROWTH_MB:
        _drop_staging()
    if MEMORY_MB and _rss_mb() > _floor_mb + MIN_GROWTH_MB and _run_rss_mb() > MEMORY_MB:
        import tracegraph

        tracegraph.clear_caches()  # tracegraph's compiled ops, plans and graphs, and JAX's
        gc.collect()
        if _malloc_trim is not None:
            _malloc_trim(0)
        _floor_mb = _light_floor_mb = _rss_mb()


# NOTE: memory, again. PyTorch and Keras add about 0.27 GB to a process that imports them,
# and that cannot be given back. Tests in files that import either form one xdist group, so
# with `--dist loadgroup` (the default run's addopts) one worker runs all of them and the
# other never imports them. Such files import the library inside their tests (or through
# LazyModule), not at collection, which every worker does. The grouping is a scheduler, not
# `xdist_group` marks: xdist 3.8 names a marked test by rewriting its node id, which pytest
# 9.2 no longer reads.
_HEAVY = re.compile(
    r"^\s*(?:import|from) (?:torch|keras)\b|(?:importorskip|LazyModule)\(\"(?:torch|keras)\"\)", re.M
)
HEAVY_GROUP = "torch-keras"


@functools.cache
def _imports_heavy(path) -> bool:
    try:
        return bool(_HEAVY.search(pathlib.Path(path).read_text()))
    except OSError:
        return False


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest without xdist must not refuse it
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class Scheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if _imports_heavy(config.rootpath / nodeid.split("::")[0]):
                return HEAVY_GROUP
            return super()._split_scope(nodeid)

    return Scheduling(config, log)


# Default-run margin: these run in the slow set only. Each has a sibling that stays in the
# default run (the same check in another mode, the same layer in another case, or the same
# library through another test), measured as the heaviest of the default run by CPU time.
SLOW_ONLY = {
    "tests/test_nn_modules.py::test_default_inits_follow_pytorch",
    "tests/test_nn_modules.py::test_init_functions_match_jax",
    "tests/test_nn_modules.py::test_lstm_grad_vs_jax[interpret]",
    "tests/test_nn_modules.py::test_gru_vs_flax_gru_cell[interpret]",
    "tests/test_nn_modules.py::test_conv2d_grad_vs_jax[interpret]",
    "tests/test_nn_modules.py::test_mha_cross_attention_with_mask_vs_jnp[eager]",
    "tests/test_from_flax.py::test_linen_static_flag_and_jaxpr_cache",
    "tests/test_from_flax.py::test_linen_graph_prints_with_from_jax_scopes",
    "tests/test_from_flax.py::test_nnx_gradient_matches_jax",
    "tests/test_autodiff_nn.py::test_hessian_vector_products[eager]",
    "tests/test_from_jax.py::test_grad_of_converted_function_matches_jax[shapes-interpret]",
    "tests/test_imperative.py::test_optimizers_equal_pytorch_over_100_steps[sgd-momentum-nesterov-wd]",
    "tests/test_torch_layers.py::test_transformer_encoder_layer[kw0]",
    "tests/test_keras_layers.py::test_layer_normalization[kw0]",
    "tests/test_keras_rnn.py::test_multi_head_attention_matches_keras[key-mask-scores]",
    "tests/test_examples.py::test_example_runs_in_other_modes_with_the_same_losses[logistic_regression-interpret]",
    "tests/test_examples.py::test_dump_ir_writes_text_json_and_dot",  # test_cli.py dumps in-process
    "tests/test_examples.py::test_compare_prints_the_mode_table",  # CI's demo step runs --compare
    "tests/test_keras_seeds.py::test_004_cnn_subclass_learns",  # also run against Keras, -m slow
    "tests/test_docs_from_tensorflow.py::test_from_tensorflow_page_shows_what_the_code_prints",  # 12 s
    "tests/test_examples.py::test_examples_run_as_scripts",  # in-process runs cover the scripts' code
    "tests/test_keras_models.py::test_tf_function_step_is_one_graph_and_equals_eager_over_100_steps",
    "tests/test_optimizers.py::test_fit_tf_function_mode_equals_jit_and_leaves_the_model_alone",
    "tests/test_imperative.py::test_pytorch_style_model_in_jit_grad_and_functional_optimizers",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in SLOW_ONLY:
            item.add_marker(pytest.mark.slow)
