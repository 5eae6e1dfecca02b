"""Errors: typed tg.Error subclasses that name the op and the user's file:line."""

import inspect

import numpy as np
import pytest

import tracegraph as tg


def here(offset=0):
    return f"test_errors.py:{inspect.currentframe().f_back.f_lineno + offset}"


@pytest.mark.parametrize(
    "use",
    [
        lambda x: 1.0 if x > 0 else 0.0,
        lambda x: int(x),
        lambda x: float(x),
        lambda x: np.asarray(x),
        lambda x: [1, 2][x.astype("i32")],
    ],
    ids=["bool", "int", "float", "numpy", "index"],
)
def test_concrete_value_of_traced_tensor_is_a_tracing_error(use):
    with pytest.raises(tg.TracingError) as e:
        tg.jit(use)(np.float32(1.0))
    assert "test_errors.py:" in str(e.value)


def test_tracing_error_names_line_and_suggests_constructs():
    def f(x):
        if x > 0:  # the line the error must name
            return x
        return -x

    line = inspect.getsourcelines(f)[1] + 1
    with pytest.raises(tg.TracingError) as e:
        tg.trace(f, tg.spec((), "f32"))
    msg = str(e.value)
    assert f"test_errors.py:{line}" in msg
    assert "tg.cond" in msg and "tg.while_loop" in msg and "static_argnums" in msg


def test_shape_error_names_op_types_and_line():
    def f(x, y):
        return x + y

    line = inspect.getsourcelines(f)[1] + 1
    with pytest.raises(tg.ShapeError) as e:
        tg.jit(f)(np.ones((2, 3), np.float32), np.ones((4,), np.float32))
    msg = str(e.value)
    assert msg.startswith("add(f32[2,3], f32[4])")
    assert f"test_errors.py:{line}" in msg
    assert "cannot be broadcast" in msg


def test_shape_error_in_eager_and_trace():
    for run in (tg.eager, lambda f: (lambda *a: tg.trace(f, *a))):
        with pytest.raises(tg.ShapeError, match="test_errors.py"):
            run(lambda x, y: tg.maximum(x, y))(np.ones(2, np.float32), np.ones(3, np.float32))


def test_errors_derive_from_tg_error():
    for cls in (tg.TracingError, tg.ShapeError, tg.IRError):
        assert issubclass(cls, tg.Error)


def test_bad_attribute_is_typed():
    with pytest.raises(tg.Error, match="clip"):
        tg.trace(lambda x: tg.clip(x, "low", 1.0), tg.spec((2,)))


def test_leaked_tensor_is_a_tracing_error():
    leaked = []

    def f(x):
        leaked.append(x)
        return x * 2

    tg.jit(f)(np.ones(2, np.float32))
    with pytest.raises(tg.TracingError, match="outside the trace"):
        tg.exp(leaked[0])


def test_non_array_argument_is_explained():
    with pytest.raises(tg.TracingError, match="static"):
        tg.trace(lambda x, s: x, tg.spec((2,)), "hello")


def test_graph_call_checks_inputs():
    g = tg.trace(lambda x: x * 2, tg.spec((2, 3)))
    with pytest.raises(tg.Error, match=r"expects f32\[2,3\], got float32\[3\]"):
        g(np.ones(3, np.float32))


def test_interpreter_nan_check_names_node_and_line():
    def f(x):
        y = tg.log(x)  # NaN for negative x
        return y * 2

    line = inspect.getsourcelines(f)[1] + 1
    jf = tg.jit(f)
    with pytest.raises(tg.NaNError) as e:
        jf.interpret(np.array([1.0, -1.0], np.float32), check_nans=True)
    assert f"test_errors.py:{line}" in str(e.value) and "log" in str(e.value)
