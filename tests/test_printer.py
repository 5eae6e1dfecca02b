"""Golden-text tests of the IR printer, and the examples of docs/ir.md (which are printed
by the code below: run with TRACEGRAPH_UPDATE_DOCS=1 to rewrite them)."""

import inspect
import json
import os
import re

import jax
import numpy as np
import pytest

import tracegraph as tg
from tracegraph.core import bind
from tracegraph.ir import Graph, Node, TensorType, Value

from ir_helpers import nested_graph, test_ops  # noqa: F401  (test_ops: a fixture)

HERE = os.path.basename(__file__)


def line_of(fn, marker: str) -> int:
    """The line number of the line of ``fn`` that carries ``# marker``."""
    lines, start = inspect.getsourcelines(fn)
    hits = [start + i for i, text in enumerate(lines) if text.rstrip().endswith(f"# {marker}")]
    assert len(hits) == 1, marker
    return hits[0]


def mlp(x, params):
    with tg.scope("fc1"):
        h = tg.relu(x @ params["w1"] + params["b1"])  # fc1
    with tg.scope("head"), tg.scope("out"):
        y = h @ params["w2"] * 0.5  # out
    return {"y": y, "hidden": [h, None]}  # ret


MLP_ARGS = (
    tg.spec((8, 4)),
    {"w1": tg.spec((4, 16)), "b1": tg.spec((16,)), "w2": tg.spec((16, 3))},
)


def test_golden_mlp():
    g = tg.trace(mlp, *MLP_ARGS)
    fc1, out = line_of(mlp, "fc1"), line_of(mlp, "out")
    expected = f"""\
graph mlp(%x: f32[8,4], %params.b1: f32[16], %params.w1: f32[4,16], %params.w2: f32[16,3]) -> (f32[8,16], f32[8,3]) {{
  args ((%x, {{"b1": %params.b1, "w1": %params.w1, "w2": %params.w2}}), {{}})
  %c0: f32[]~ = const 0.5
  %0: f32[8,16] = matmul(%x, %params.w1)            # {HERE}:{fc1}  fc1
  %1: f32[8,16] = add(%0, %params.b1)               # {HERE}:{fc1}  fc1
  %2: f32[8,16] = relu(%1)                          # {HERE}:{fc1}  fc1
  %3: f32[8,3] = matmul(%2, %params.w2)             # {HERE}:{out}  head.out
  %4: f32[8,3] = mul(%3, %c0)                       # {HERE}:{out}  head.out
  return {{"hidden": [%2, none], "y": %4}}
}}"""
    assert str(g) == expected


def test_deterministic():
    texts = {str(tg.trace(mlp, *MLP_ARGS)) for _ in range(3)}
    assert len(texts) == 1


def test_plain_positional_args_print_no_args_line():
    def f(a, b):
        return a - b, a

    text = str(tg.trace(f, tg.spec((2,), "i32"), tg.spec((), "i32")))
    assert "args" not in text
    assert text.splitlines()[0] == "graph f(%a: i32[2], %b: i32[]) -> (i32[2], i32[2]) {"
    assert text.splitlines()[-2] == "  return (%0, %a)"


def test_weak_constants_and_types():
    def f(x, s):
        return (x + 1) * s, x * 2.5  # line

    line = line_of(f, "line")
    g = tg.trace(f, tg.spec((3,), "i32"), 2)
    assert str(g) == f"""\
graph f(%x: i32[3], %s: i32[]~) -> (i32[3], f32[3]~) {{
  %c0: i32[]~ = const 1
  %c1: f32[]~ = const 2.5
  %0: i32[3] = add(%x, %c0)                         # {HERE}:{line}
  %1: i32[3] = mul(%0, %s)                          # {HERE}:{line}
  %2: f32[3]~ = mul(%x, %c1)                        # {HERE}:{line}
  return (%1, %2)
}}"""


def test_constant_literals():
    big = np.arange(100, dtype=np.float32)

    def f(x, y):
        return (
            x + np.array([[1.5, -0.0], [np.inf, np.nan]], np.float32),
            np.array([True, False]) & (x > y),
            x + big[:65].reshape(65, 1)[:, 0][:2],
            np.zeros((0, 3), np.int32),
        )

    lines = str(tg.trace(f, tg.spec((2,)), tg.spec((2,)))).splitlines()
    consts = [s.strip() for s in lines if "= const" in s]
    assert consts == [
        "%c0: f32[2,2] = const [[1.5, -0.0], [inf, nan]]",
        "%c1: bool[2] = const [true, false]",
        "%c2: f32[2] = const [0.0, 1.0]",
        "%c3: i32[0,3] = const []",
    ]
    g = tg.trace(lambda x: x + big, tg.spec((100,)))
    assert "%c0: f32[100] = const <100 elements>" in str(g)
    g = tg.trace(lambda x: x * np.array([1 + 2j, complex(0, -0.5)], np.complex64), tg.spec((2,), "c64"))
    assert "const [complex(1.0, 2.0), complex(0.0, -0.5)]" in str(g)


def test_attributes():
    def f(x):
        return tg.clip(tg.astype(x, "bf16"), -np.inf, 1e-5)

    text = str(tg.trace(f, tg.spec((2,))))
    assert "astype(%x, dtype=bf16)" in text
    assert "clip(%0, lo=-inf, hi=1e-05)" in text


@pytest.mark.usefixtures("test_ops")
def test_multi_output():
    def f(x):
        a, b = bind("test.split", x)  # split
        return b, a

    line = line_of(f, "split")
    assert str(tg.trace(f, tg.spec((2,), "f16"))) == f"""\
graph f(%x: f16[2]) -> (f16[2], f16[2]) {{
  %0: f16[2], %1: f16[2] = test.split(%x)           # {HERE}:{line}
  return (%1, %0)
}}"""


@jax.tree_util.register_pytree_node_class
class Pair:
    def __init__(self, a, b):
        self.a, self.b = a, b

    def tree_flatten(self):
        return (self.a, self.b), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


def test_pytree_args_and_returns():
    def g(p, xs, scale):  # (jax cannot sort mixed str/int dict keys: two dicts)
        return {"sum": p.a + p.b, "parts": (xs[0],)}, [scale, {1: xs[1], 2: None}]

    args = (Pair(tg.spec((2,)), tg.spec((2,))), [tg.spec(()), tg.spec(())])
    text = str(tg.trace(g, *args, tg.spec((), "i32")))
    lines = text.splitlines()
    # (the leaf names of a custom node come from jax's key paths)
    assert re.fullmatch(r"  args \(\(Pair\(%p\.(\w+), %p\.(\w+)\), \[%xs.0, %xs.1\], %scale\), \{\}\)",
                        lines[1]), lines[1]
    assert lines[-2] == '  return ({"parts": (%xs.0,), "sum": %0}, [%scale, {1: %xs.1, 2: none}])'
    kw = tg.trace(lambda x, *, y: x * y, tg.spec((2,)), y=tg.spec((2,)))
    assert str(kw).splitlines()[1] == '  args ((%x,), {"y": %y})'


def test_names_by_first_appearance():
    t = TensorType((2,), np.float32)
    ins = [Value(t, "x"), Value(t, "x"), Value(t, "0"), Value(t, "a b"), Value(t, None),
           Value(t, "c1")]
    c = Value(t, "zzz", data=np.ones(2, np.float32))
    n1 = Node("add", [ins[0], c], {}, [Value(t, "late")])
    n2 = Node("mul", [n1.outputs[0], ins[5]], {}, [Value(t, "early")])
    g = Graph("my graph", ins, [c], [n1, n2], [n2.outputs[0]])
    lines = str(g).splitlines()
    assert lines[0].startswith(
        "graph my_graph(%x: f32[2], %x_1: f32[2], %arg_0: f32[2], %a_b: f32[2], "
        "%arg4: f32[2], %arg_c1: f32[2])"
    )
    assert [s.split(" =")[0].strip() for s in lines[1:4]] == ["%c0: f32[2]", "%0: f32[2]", "%1: f32[2]"]
    assert "mul(%0, %arg_c1)" in lines[3]


def test_locations_and_scopes_that_need_quotes():
    t = TensorType((), np.float32)
    x = Value(t, "x")
    cases = [
        ("f.py:3", "", "# f.py:3"),
        (None, "enc.l0", "# ?  enc.l0"),
        ("my file.py:3", "a b", '# "my file.py:3"  "a b"'),
        ("?", "", '# "?"'),
        ('q"uote.py:1', "s", '# "q\\"uote.py:1"  s'),
        (None, "", None),
    ]
    for loc, scope, comment in cases:
        n = Node("neg", [x], {}, [Value(t)], location=loc, scope=scope)
        line = str(Graph("g", [x], [], [n], n.outputs)).splitlines()[1]
        if comment is None:
            assert "#" not in line
        else:
            assert line.endswith(comment), line
            assert line.index("#") == 52  # comments start in one column


@pytest.mark.usefixtures("test_ops")
def test_nested_subgraphs():
    text = str(nested_graph())
    lines = text.splitlines()
    assert re.match(r"  %0: f32\[3\] = test.call\(%x, %w\) \{\s+# ir_helpers.py:\d+$", lines[1])
    assert lines[2] == "    body = graph"
    assert lines[3] == "      graph body(%x: f32[3], %w: f32[3]) -> (f32[3]) {"
    assert "    branches = graphs 2" in lines
    assert "        %c0: f32[70] = const <70 elements>" in lines
    assert lines[-1] == "}" and lines[-2] == "  return %1"


# -- docs/ir.md examples ----------------------------------------------------------------------
DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "ir.md")

# The example program is compiled under the name mlp.py, so that its locations do not
# depend on this test file.
EXAMPLE_SOURCE = '''\
import numpy as np
import tracegraph as tg


def mlp(x, params):
    with tg.scope("fc1"):
        h = tg.relu(x @ params["w1"] + params["b1"])
    with tg.scope("head"):
        logits = h @ params["w2"] + params["b2"]
    return {"logits": logits, "scaled": logits * 0.5}


def tiny(x):
    return tg.clip(x * np.array([1.0, 2.0], np.float32), -1.0, None)
'''


def doc_examples() -> dict:
    ns = {}
    exec(compile(EXAMPLE_SOURCE, "mlp.py", "exec"), ns)  # noqa: S102 - our own source
    params = {"w1": tg.spec((784, 128)), "b1": tg.spec((128,)),
              "w2": tg.spec((128, 10)), "b2": tg.spec((10,))}
    g = tg.trace(ns["mlp"], tg.spec((32, 784)), params)
    tiny = tg.trace(ns["tiny"], tg.spec((2,)))
    return {
        "source": EXAMPLE_SOURCE.rstrip("\n"),
        "text": str(g),
        "json": compact_json(json.loads(tiny.to_json())),
        "tiny": str(tiny),
        "dot": tiny.to_dot().rstrip("\n"),
    }


def compact_json(obj, indent: int = 0, width: int = 92) -> str:
    """JSON with one line per object or list that fits in ``width`` (for reading)."""
    flat = json.dumps(obj)
    if len(flat) + indent <= width or not isinstance(obj, (dict, list)) or not obj:
        return flat
    pad = " " * (indent + 2)
    if isinstance(obj, dict):
        items = [f"{pad}{json.dumps(k)}: {compact_json(v, indent + 2, width)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + compact_json(v, indent + 2, width) for v in obj]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


_BLOCK = re.compile(r"(<!-- example:(\w+) -->\n```[a-z]*\n)(.*?)(\n```\n<!-- /example -->)", re.DOTALL)


def test_docs_examples_are_current():
    with open(DOC) as f:
        doc = f.read()
    examples = doc_examples()
    found = {m.group(2) for m in _BLOCK.finditer(doc)}
    assert found == set(examples), "docs/ir.md example blocks"
    new = _BLOCK.sub(lambda m: m.group(1) + examples[m.group(2)] + m.group(4), doc)
    if os.environ.get("TRACEGRAPH_UPDATE_DOCS"):
        with open(DOC, "w") as f:
            f.write(new)
        return
    assert new == doc, "docs/ir.md is out of date: rerun with TRACEGRAPH_UPDATE_DOCS=1"


def test_docs_examples_round_trip():
    ex = doc_examples()
    assert str(tg.parse(ex["text"])) == ex["text"]
    assert str(tg.Graph.from_json(ex["json"])) == ex["tiny"]

