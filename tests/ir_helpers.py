"""Shared helpers of the IR tests (printer, parser, serialization, verifier): the op
sample graphs, result comparison, and a few test-only ops (control-flow-like subgraph
attributes, every attribute kind, several outputs) registered only while a test runs."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.core import bind
from tracegraph.ir import Attr, OpDef, lookup, registry

import op_matrix
from conftest import x64_if_needed


# -- every op sample as a graph -------------------------------------------------------------
def sample_cases():
    """Every op sample; the first of each op by default, the rest with -m slow."""
    return op_matrix.sample_cases(default_per_op=1)


def op_function(name, attrs):
    def f(*xs):
        return bind(name, *xs, **attrs)

    f.__name__ = name
    return f


@contextlib.contextmanager
def sample_graph(name, index):
    """(graph, args) of one op sample, inside jax_enable_x64 if the sample needs it."""
    sample = lookup(name).samples()[index]
    with x64_if_needed(sample.args):
        # built again under x64: samples may hold subgraphs traced when they are made
        sample = lookup(name).samples()[index]
        yield tg.trace(op_function(name, sample.attrs), *sample.args), sample.args


def key_data(x):
    """Typed PRNG keys as their u32 data (numpy cannot hold keys); other values as they are."""
    if jax.dtypes.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key):
        return jax.random.key_data(x)
    return x


def as_numpy(x):
    a = np.asarray(key_data(x))
    if a.dtype == jnp.bfloat16:
        a = a.astype(np.float32)
    return a


def assert_same_results(got, want):
    """Exactly equal (NaN == NaN): both sides ran the same op implementations."""
    got = got if isinstance(got, (tuple, list)) else [got]
    want = want if isinstance(want, (tuple, list)) else [want]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = as_numpy(g), as_numpy(w)
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


def assert_same_graph(got, want, where="graph"):
    """``got`` is ``want`` node for node: input, constant and output types, constants bit
    for bit, and each node's op, attributes (subgraphs compared the same way, floats by
    their bits), result types, wiring, location and scope. Two such graphs compute the
    same values with the same op implementations, so a round trip that passes needs no
    run to show it (the op's first sample also runs both, in the default run)."""
    assert len(got.inputs) == len(want.inputs), where
    assert [v.type for v in got.inputs] == [v.type for v in want.inputs], where
    assert len(got.constants) == len(want.constants), where
    index = {}
    for a, b in zip(got.inputs, want.inputs):
        index[id(a)] = id(b)
    for i, (a, b) in enumerate(zip(got.constants, want.constants)):
        assert a.type == b.type, f"{where}: constant {i}"
        np.testing.assert_array_equal(_bits(a.data), _bits(b.data), err_msg=f"{where}: constant {i}")
        index[id(a)] = id(b)
    assert len(got.nodes) == len(want.nodes), where
    for k, (n, m) in enumerate(zip(got.nodes, want.nodes)):
        at = f"{where}: node {k} ({m.op})"
        assert (n.op, n.location, n.scope) == (m.op, m.location, m.scope), at
        assert [index.get(id(v)) for v in n.inputs] == [id(v) for v in m.inputs], at
        assert [v.type for v in n.outputs] == [v.type for v in m.outputs], at
        assert sorted(n.attrs) == sorted(m.attrs), at
        for key in m.attrs:
            _assert_same_attr(n.attrs[key], m.attrs[key], f"{at} attribute {key}")
        for a, b in zip(n.outputs, m.outputs):
            index[id(a)] = id(b)
    assert [index.get(id(v)) for v in got.outputs] == [id(v) for v in want.outputs], where


def _bits(x):
    a = np.asarray(key_data(x))  # bfloat16 and float8 too: compared by their bytes
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def _assert_same_attr(a, b, where):
    if isinstance(b, tg.Graph):
        assert isinstance(a, tg.Graph), where
        assert_same_graph(a, b, where)
    elif isinstance(b, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_attr(x, y, f"{where}[{i}]")
    elif isinstance(b, float):
        assert isinstance(a, float) and (a.hex() == b.hex() or (a != a and b != b)), f"{where}: {a!r} vs {b!r}"
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} vs {b!r}"


# -- test-only ops --------------------------------------------------------------------------
def _fields(out_types):
    """The four type rules of an op whose output types ``out_types(*types, **attrs)`` gives
    whole (a tuple of them for a multi-output op), as `OpDef` keywords."""

    def rule(field):
        def get(*types, **attrs):
            out = out_types(*types, **attrs)
            if isinstance(out, tuple):
                return tuple(getattr(t, field) for t in out)
            return getattr(out, field)

        return get

    return {f + "_rule": rule(f) for f in ("shape", "dtype", "weak", "sharding")}


def _same(x, **_):
    return x


def _call_types(*types, body):
    return tuple(body.out_types)


def _call_impl(*xs, body):
    return tuple(tg.Interpreter(body).run(*xs))


def _switch_types(*types, branches, index):
    if not 0 <= index < len(branches):
        raise tg.ShapeError(f"branch index {index} out of range")
    return tuple(branches[index].out_types)


def _switch_impl(*xs, branches, index):
    return tuple(tg.Interpreter(branches[index]).run(*xs))


TEST_OPS = [
    # a call of a subgraph (like the body of a control-flow op)
    OpDef("test.call", impl=_call_impl, attrs={"body": Attr("graph")}, arity=None,
          multi_output=True, **_fields(_call_types)),
    # a choice among subgraphs, with an inline attribute next to the block
    OpDef("test.switch", impl=_switch_impl,
          attrs={"index": Attr("int"), "branches": Attr("graphs")}, arity=None,
          multi_output=True, **_fields(_switch_types)),
    # every attribute kind, on an identity op
    OpDef("test.attrs", impl=lambda x, **_: x, attrs={
        "i": Attr("int", 0), "f": Attr("float", 0.0), "b": Attr("bool", False),
        "s": Attr("str", ""), "dt": Attr("dtype", np.dtype(np.float32)),
        "sc": Attr("scalar", 0), "ints": Attr("ints", ()), "pairs": Attr("int_pairs", ()),
        "oi": Attr("opt_int", None), "ois": Attr("opt_ints", None),
        "of": Attr("opt_float", None), "osc": Attr("opt_scalar", None),
        "odt": Attr("opt_dtype", None),
    }, **_fields(_same)),
    # two outputs
    OpDef("test.split", impl=lambda x: (x, -x), multi_output=True,
          **_fields(lambda x: (x, x))),
]


@pytest.fixture
def test_ops(monkeypatch):
    """Registers the test-only ops for the duration of one test."""
    for op in TEST_OPS:
        monkeypatch.setitem(registry._OPS, op.name, op)
    return {op.name: op for op in TEST_OPS}


def nested_graph():
    """A graph whose nodes carry subgraphs: `test.call` (a `graph` attribute, itself
    holding a nested `test.call`) and `test.switch` (a `graphs` attribute)."""

    def inner(y):
        return tg.tanh(y) * 3.0

    def body(x, w):
        with tg.scope("body"):
            (h,) = bind("test.call", x, body=tg.trace(inner, tg.spec((3,))))
            return h + w * 0.5

    def neg(x, w):
        return -x + w

    def big(x, w):  # holds constants too large to print inline
        v = np.linspace(0, 1, 70, dtype=np.float32)
        m = np.arange(210, dtype=np.float32).reshape(70, 3) / 100
        return x * bind("matmul", v, m) + w

    def f(x, w):
        (a,) = bind("test.call", x, w, body=tg.trace(body, tg.spec((3,)), tg.spec((3,))))
        (b,) = bind(
            "test.switch", a, w, index=1,
            branches=(tg.trace(neg, tg.spec((3,)), tg.spec((3,))),
                      tg.trace(big, tg.spec((3,)), tg.spec((3,)))),
        )
        return b

    return tg.trace(f, tg.spec((3,)), tg.spec((3,)))
