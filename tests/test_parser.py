"""The IR text parser: exact round trips (every op sample graph, re-run after parsing),
the corners of the text form, and malformed texts (each a tg.IRError naming its line)."""

import random
import re

import jax
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.core import bind
from tracegraph.ir.parser import text_constants

from ir_helpers import (  # noqa: F401  (test_ops: a fixture)
    assert_same_graph, assert_same_results, nested_graph, sample_cases, sample_graph, test_ops,
)


def round_trip(g):
    text = str(g)
    g2 = tg.parse(text, constants=text_constants(g))
    assert str(g2) == text
    return g2


@pytest.mark.parametrize("name,index", list(sample_cases()))
def test_round_trip_every_op_sample(name, index):
    with sample_graph(name, index) as (g, args):
        g2 = round_trip(g)
        assert_same_graph(g2, g)
        if index == 0:  # the op's first sample (the default run's) also runs both
            assert_same_results(g2.interpret(*args), g.interpret(*args))


def test_round_trip_pytrees_scopes_and_constants():
    def f(x, params, *, flag):
        with tg.scope("enc"), tg.scope("layer0"):
            h = x * params["w"] + np.array([[1.5, -0.0, np.inf]], np.float32)
        with tg.scope("odd scope name"):
            k = tg.clip(h, -np.inf, 3.0) + np.arange(80, dtype=np.float32).reshape(80, 1)[:2]
        return [h, {"k": k, "none": None, "flag": (flag,)}], ()

    args = (tg.spec((2, 3)), {"w": tg.spec((3,)), "b": [tg.spec((), "i32")]})
    g = tg.trace(f, *args, flag=tg.spec((), "bool"))
    g2 = round_trip(g)
    x, w = np.ones((2, 3), np.float32), np.arange(3, dtype=np.float32)
    params = {"w": w, "b": [np.int32(1)]}
    want = g.interpret(x, params, flag=np.bool_(True))
    got = g2.interpret(x, params, flag=np.bool_(True))
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    assert_same_results(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want))


@pytest.mark.usefixtures("test_ops")
def test_round_trip_nested_subgraphs():
    g = nested_graph()
    g2 = round_trip(g)
    x, w = np.ones(3, np.float32), np.arange(3, dtype=np.float32)
    assert_same_results(g2.interpret(x, w), g.interpret(x, w))
    assert sorted(text_constants(g)) == ["1/branches/1/c0", "1/branches/1/c1"]


@pytest.mark.usefixtures("test_ops")
def test_round_trip_every_attribute_kind():
    attrs = {
        "i": -(2**63), "f": float("nan"), "b": True, "s": 'quote " backslash \\ tab \t é #',
        "dt": np.dtype(np.int8), "sc": 7, "ints": (1,), "pairs": ((0, 1), (2, 3)), "oi": None,
        "ois": (), "of": float("-inf"), "osc": False, "odt": np.dtype(np.complex64),
    }
    g = tg.trace(lambda x: bind("test.attrs", x, **attrs), tg.spec((2,)))
    g2 = round_trip(g)
    got = g2.nodes[0].attrs
    assert got["s"] == attrs["s"] and got["pairs"] == ((0, 1), (2, 3)) and got["ints"] == (1,)
    assert type(got["sc"]) is int and got["osc"] is False and np.isnan(got["f"])
    line = str(g).splitlines()[1]
    assert 'ints=(1,), pairs=((0, 1), (2, 3))' in line and "f=nan" in line and "of=-inf" in line


def test_round_trip_constant_literals():
    consts = [
        np.array(2.5, np.float32), np.array([[1, -2], [3, 4]], np.int8),
        np.array([True, False]), np.array([1 + 2j, complex(-0.0, np.inf)], np.complex64),
        np.array([np.nan, -np.inf, 1e-30, 65504.0], np.float16),
        np.array([0.1, 3.0e38], jax.numpy.bfloat16), np.zeros((0, 3), np.float32),
        np.zeros((2, 0, 4), np.int32), np.array([2**64 - 1], np.uint64),
        np.array(-(2**63), np.int64), np.array([1e300, -5e-324], np.float64),
    ]
    for c in consts:
        t = tg.TensorType(c.shape, c.dtype)
        x, const = tg.Value(t, "x"), tg.Value(t, data=c)
        op = "logical_and" if c.dtype == np.bool_ else "add"
        node = tg.Node(op, [x, const], {}, [tg.Value(t)])
        with jax.enable_x64(c.dtype.itemsize == 8 or c.dtype == np.complex128):
            g = tg.Graph("g", [x], [const], [node], node.outputs)
            g2 = round_trip(g)
        got = g2.constants[0].data
        assert got.dtype == c.dtype and got.shape == c.shape
        assert got.tobytes() == c.tobytes()


def test_elided_constants_need_their_arrays():
    c = np.arange(100, dtype=np.float32)
    g = tg.trace(lambda x: x + c, tg.spec((100,)))
    with pytest.raises(tg.IRError, match=r"line 2: .*constants=\{'c0': array\}"):
        tg.parse(str(g))
    with pytest.raises(tg.IRError, match=r"line 2: .*f64\[100\].*declares f32\[100\]"):
        tg.parse(str(g), constants={"c0": c.astype(np.float64)})
    g2 = tg.parse(str(g), constants={"c0": c})
    assert_same_results(g2.interpret(c), g.interpret(c))


def test_hand_written_text():
    text = """
graph g(%a: f32[2], %b: f32[]~) -> (f32[2], f32[2]) {
  %k: f32[2] = const [1.0, 2]
  %p: f32[2] = add(%a, %k)   # here.py:1  s
  %q: f32[2] = mul(%p, %b)
  return (%q, %p,)
}

"""
    g = tg.parse(text)
    assert [n.op for n in g.nodes] == ["add", "mul"]
    assert g.nodes[0].location == "here.py:1" and g.nodes[0].scope == "s"
    assert g.nodes[1].location is None and g.nodes[1].scope == ""
    out = g.interpret(np.ones(2, np.float32), 2.0)
    assert_same_results(out, (np.array([4.0, 6.0], np.float32), np.array([2.0, 3.0], np.float32)))
    assert str(tg.parse(str(g))) == str(g)


def test_locations_and_scopes_with_spaces_round_trip():
    t = tg.TensorType((), np.float32)
    x = tg.Value(t, "x")
    for loc, scope in [("my file.py:3", "a b"), ("?", ""), (None, "x.y"), ('"q".py:1', 's"'),
                       ("f.py:1", "has  two  spaces"), ("#hash.py:2", "#")]:
        n = tg.Node("neg", [x], {}, [tg.Value(t)], location=loc, scope=scope)
        g2 = round_trip(tg.Graph("g", [x], [], [n], n.outputs))
        assert (g2.nodes[0].location, g2.nodes[0].scope) == (loc, scope)


# -- malformed texts ----------------------------------------------------------------------------
GOOD = """\
graph g(%x: f32[2,3], %y: f32[3]) -> (f32[2,3]) {
  %c0: f32[]~ = const 2.0
  %0: f32[2,3] = add(%x, %y)                        # t.py:1
  %1: f32[2,3] = mul(%0, %c0)                       # t.py:2  s
  return %1
}"""


def test_good_text_parses():
    assert str(tg.parse(GOOD)) == GOOD


def bad(line: int, old: str, new: str):
    text = GOOD.replace(old, new, 1)
    assert text != GOOD, old
    return pytest.param(text, line, id=f"{old}->{new}"[:60])


BAD_TEXTS = [
    # ops, arities, attributes
    bad(3, "add(%x, %y)", "nosuchop(%x, %y)"),
    bad(3, "add(%x, %y)", "add(%x)"),
    bad(3, "add(%x, %y)", "add(%x, %y, %y)"),
    bad(3, "add(%x, %y)", "add(%x, %y, axis=1)"),
    bad(3, "add(%x, %y)", "astype(%x, dtype=f99)"),
    bad(3, "add(%x, %y)", "astype(%x, dtype=3)"),
    bad(3, "add(%x, %y)", "astype(%x)"),
    bad(3, "add(%x, %y)", 'astype(%x, dtype=("f4", -1))'),
    bad(3, "add(%x, %y)", 'astype(%x, dtype="f4")'),
    bad(3, "add(%x, %y)", 'astype(%x, dtype=("f4", 99999999999))'),
    bad(3, "add(%x, %y)", "astype(%x, dtype=(f32,))"),
    bad(3, "add(%x, %y)", "clip(%x, lo=1.0, lo=2.0)"),
    bad(3, "add(%x, %y)", "clip(%x, lo=(1.0), hi=none)"),
    bad(3, "add(%x, %y)", "clip(lo=1.0, %x)"),
    bad(3, "add(%x, %y)", "clip(%x, lo=99999999999999999999999)"),
    bad(3, "add(%x, %y)", "clip(%x, lo=bogus)"),
    # values: undefined, redefined, types
    bad(3, "add(%x, %y)", "add(%x, %z)"),
    bad(3, "add(%x, %y)", "add(%x, %1)"),
    bad(3, "%0: f32[2,3] = add", "%x: f32[2,3] = add"),
    bad(2, "%c0: f32[]~", "%y: f32[]~"),
    bad(1, "%y: f32[3])", "%x: f32[3])"),
    bad(3, "%0: f32[2,3] = add", "%0: f32[3,3] = add"),
    bad(3, "%0: f32[2,3] = add", "%0: f16[2,3] = add"),
    bad(3, "%0: f32[2,3] = add", "%0: f32[2,3], %9: f32[2,3] = add"),
    bad(3, "%0: f32[2,3] = add", "%0: f32[2,3]~ = add"),
    bad(1, "-> (f32[2,3])", "-> (f32[2,4])"),
    bad(1, "-> (f32[2,3])", "-> (f32[2,3], f32[2,3])"),
    bad(5, "return %1", "return %7"),
    # types
    bad(1, "%x: f32[2,3]", "%x: q32[2,3]"),
    bad(1, "%x: f32[2,3]", "%x: f32[-2,3]"),
    bad(1, "%x: f32[2,3]", "%x: f32[2.5,3]"),
    bad(1, "%x: f32[2,3]", "%x: f32[99999999999,99999999999]"),
    bad(1, "%x: f32[2,3]", "%x: f32[" + ",".join(["1"] * 70) + "]"),
    # constants
    bad(2, "const 2.0", "const true"),
    bad(2, "const 2.0", "const [2.0]"),
    bad(2, "const 2.0", "const 1e999"),
    bad(2, "const 2.0", "const complex(1.0, 2.0)"),
    bad(2, "const 2.0", "const <1 elements>"),
    bad(2, "const 2.0", "const <5 elements>"),
    bad(2, "const 2.0", "const"),
    bad(2, "f32[]~ = const 2.0", "i8[]~ = const 300"),
    bad(2, "f32[]~ = const 2.0", "i32[]~ = const 2.5"),
    bad(2, "f32[]~ = const 2.0", "bool[] = const 1"),
    bad(2, "f32[]~ = const 2.0", "f32[2,2] = const [[1.0, 2.0], [3.0]]"),
    bad(2, "f32[]~ = const 2.0", "f32[2] = const [[1.0], [2.0]]"),
    bad(2, "const 2.0", "const " + "[" * 70 + "2.0" + "]" * 70),
    # syntax
    bad(3, "add(%x, %y)", "add(%x, %y"),
    bad(3, "add(%x, %y)", "add(%x %y)"),
    bad(3, "add(%x, %y)", "add(%x, %y) $"),
    bad(4, "add(%x, %y)", "add(%x, %y) {"),
    bad(3, "# t.py:1", '# "t.py:1'),
    bad(4, "# t.py:2  s", "# t.py:2  s extra"),
    bad(1, "graph g(", "grph g("),
    bad(1, "-> (f32[2,3]) {", "-> (f32[2,3])"),
    bad(5, "return %1", "return (%1)"),
    bad(5, "return %1", "return {%1: %1}"),
    bad(5, "return %1", 'return {"a": %1, "a": %1}'),
    bad(5, "return %1", "return " + "[" * 70 + "%1" + "]" * 70),
    bad(6, "return %1\n}", "%2: f32[2,3] = neg(%1)\n}"),
    bad(7, "return %1\n}", "return %1\n}\ngraph h() -> () {"),
    bad(5, "return %1\n}", "return %1"),
    bad(2, "  %c0: f32[]~ = const 2.0\n", "  args ((%y, %x), {})\n  %c0: f32[]~ = const 2.0\n"),
    bad(2, "  %c0: f32[]~ = const 2.0\n", "  args ((%x,), {})\n  %c0: f32[]~ = const 2.0\n"),
]


@pytest.mark.parametrize("text,line", BAD_TEXTS)
def test_malformed_text_is_rejected_with_its_line(text, line):
    with pytest.raises(tg.IRError) as info:
        tg.parse(text)
    assert re.match(rf"line {line}: ", str(info.value)), str(info.value)


@pytest.mark.usefixtures("test_ops")
def test_malformed_subgraph_blocks():
    text = str(nested_graph())
    cases = [
        ("    body = graph\n", "    body = graf\n"),
        ("    branches = graphs 2\n", "    branches = graphs 3\n"),
        ("    branches = graphs 2\n", "    branches = graphs 1\n"),
        ("    branches = graphs 2\n", "    index = graphs 2\n"),
        ("        %1: f32[3] = mul(%w, %c0)", "        %1: f32[3] = mul(%w, %y)"),
        ("      graph neg(%x: f32[3], %w: f32[3]) -> (f32[3])",
         "      graph neg(%x: f32[3], %w: f32[3]) -> (f32[4])"),
    ]
    for old, new in cases:
        assert old in text, old
        with pytest.raises(tg.IRError, match=r"^line \d+: "):
            tg.parse(text.replace(old, new, 1), constants=text_constants(nested_graph()))


@pytest.mark.usefixtures("test_ops")
def test_subgraphs_nested_too_deep():
    g = tg.trace(lambda x: -x, tg.spec((2,)))
    for _ in range(70):
        g = tg.trace(lambda x, inner=g: bind("test.call", x, body=inner)[0], tg.spec((2,)))
    with pytest.raises(tg.IRError, match="nested more than"):
        tg.parse(str(g))


def test_input_type_and_size_limits(monkeypatch):
    with pytest.raises(tg.IRError):
        tg.parse(b"graph g() -> () {\n  return ()\n}")
    from tracegraph.ir import parser

    monkeypatch.setattr(parser, "MAX_TEXT_CHARS", 100)
    with pytest.raises(tg.IRError, match="exceeds the limit"):
        tg.parse(GOOD)
    with pytest.raises(tg.IRError, match="line 3: unexpected end"):
        tg.parse("graph g() -> () {\n\n")


def test_no_eval():
    # a string attribute is data, never code
    text = GOOD.replace("add(%x, %y)", 'astype(%x, dtype=__import__("os").system("x"))')
    with pytest.raises(tg.IRError, match="line 3"):
        tg.parse(text)


@pytest.mark.usefixtures("test_ops")
def test_mutated_texts_parse_or_raise_irerror():
    """Random edits of printed graphs: each parses (and then round-trips) or is a
    tg.IRError, never another exception."""
    g = nested_graph()
    texts = [(str(g), text_constants(g)), (GOOD, {})]
    rng = random.Random(0)
    alphabet = list('%[](){},:=~<>#"\\-.0123456789acefgnrtx \n') + [
        "graph", "const", "return", "args", "inf", "nan", "none", "f32", "elements", "}\n"]
    for _ in range(1500):
        text, consts = rng.choice(texts)
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars))
            r = rng.random()
            if r < 0.4:
                chars[i] = rng.choice(alphabet)
            elif r < 0.7:
                del chars[i]
            else:
                chars.insert(i, rng.choice(alphabet))
        try:
            parsed = tg.parse("".join(chars), consts)
        except tg.IRError:
            continue
        assert str(tg.parse(str(parsed), text_constants(parsed))) == str(parsed)


def test_the_structural_comparison_sees_each_kind_of_change():
    """What the slow round trips rely on instead of running both graphs."""
    def f(x):
        return tg.sum(tg.clip(x, -1.5, 2.0) * np.arange(3, dtype=np.float32), axis=0)

    g = tg.trace(f, tg.spec((2, 3)))
    assert_same_graph(round_trip(g), g)
    text = str(g)
    line = f"test_parser.py:{f.__code__.co_firstlineno + 1}"
    for old, new in [("hi=2.0", "hi=2.5"), ("lo=-1.5", "lo=-1.25"), ("mul(", "add("),
                     ("[0.0, 1.0, 2.0]", "[0.0, 1.0, 3.0]"), (line, line + "0")]:
        assert old in text
        changed = tg.parse(text.replace(old, new, 1), constants=text_constants(g))
        with pytest.raises(AssertionError):
            assert_same_graph(changed, g)
