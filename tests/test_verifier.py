"""The verifier on hand-built graphs (Graph constructed directly from Value and Node):
a valid graph passes, and each structural error is a tg.IRError."""

import numpy as np
import pytest

import tracegraph as tg
from tracegraph.ir import Graph, Node, TensorType, TreeSpec, Value
from tracegraph.ir.tree import DICT, TUPLE

from ir_helpers import test_ops  # noqa: F401  (a fixture)

F23 = TensorType((2, 3), np.float32)
F3 = TensorType((3,), np.float32)


def mlp_like():
    """x: f32[2,3], b: f32[3]; c0 = 2.0; n0 = add(x, b); n1 = mul(n0, c0); n2 = tanh(n1)."""
    x, b = Value(F23, "x"), Value(F3, "b")
    c = Value(TensorType((), np.float32, weak=True), data=np.array(2.0, np.float32))
    n0 = Node("add", [x, b], {}, [Value(F23)], "m.py:1")
    n1 = Node("mul", [n0.outputs[0], c], {}, [Value(F23)], "m.py:2")
    n2 = Node("tanh", [n1.outputs[0]], {}, [Value(F23)], "m.py:3")
    return x, b, c, [n0, n1, n2]


def graph(inputs, constants, nodes, outputs, **kw):
    return Graph("g", inputs, constants, nodes, outputs, **kw)


def test_valid_graph_passes():
    x, b, c, nodes = mlp_like()
    g = graph([x, b], [c], nodes, [nodes[-1].outputs[0]])
    assert g.verify() is g
    out = g.interpret(np.ones((2, 3), np.float32), np.ones(3, np.float32))
    np.testing.assert_allclose(np.asarray(out), np.tanh(4.0) * np.ones((2, 3)), rtol=1e-6)


def rejected(g, pattern):
    with pytest.raises(tg.IRError, match=pattern):
        g.verify()


def test_dangling_input():
    x, b, c, nodes = mlp_like()
    stray = Value(F23, "stray")
    nodes[1].inputs = (stray, c)
    rejected(graph([x, b], [c], nodes, [nodes[-1].outputs[0]]),
             r"node 1 \(mul\) at m.py:2: input 0 is used before it is defined \(or dangling\)")


def test_use_before_define():
    x, b, c, nodes = mlp_like()
    nodes[0], nodes[1] = nodes[1], nodes[0]
    rejected(graph([x, b], [c], nodes, [nodes[-1].outputs[0]]), "node 0 .* used before")


def test_cycle():
    x, b, c, nodes = mlp_like()
    nodes[0].inputs = (nodes[2].outputs[0], b)  # add reads tanh's result: a cycle
    rejected(graph([x, b], [c], nodes, [nodes[-1].outputs[0]]), r"node 0 \(add\).* used before")


def test_value_defined_twice():
    x, b, c, nodes = mlp_like()
    rejected(graph([x, b, x], [c], nodes, [nodes[-1].outputs[0]]), "input 2 .* defined twice")
    x, b, c, nodes = mlp_like()
    rejected(graph([x, b], [c], nodes + [nodes[2]], [nodes[-1].outputs[0]]), "defined twice")
    x, b, c, nodes = mlp_like()
    rejected(graph([x, b], [c, c], nodes, [nodes[-1].outputs[0]]), "constant 1 .* defined twice")


def test_unknown_op():
    x, b, c, nodes = mlp_like()
    nodes[2].op = "no_such_op"
    rejected(graph([x, b], [c], nodes, [nodes[-1].outputs[0]]),
             r"node 2 \(no_such_op\) at m.py:3: unknown op 'no_such_op'")


def test_wrong_arity():
    x, b, c, nodes = mlp_like()
    nodes[0].inputs = (x,)
    rejected(graph([x, b], [c], nodes, [nodes[-1].outputs[0]]), "op 'add' takes 2 inputs, got 1")


def test_bad_attributes():
    x = Value(F3, "x")
    for attrs, pattern in [
        ({"dtype": np.dtype(np.float16), "axis": 0}, "unknown attribute 'axis'"),
        ({}, "missing attribute 'dtype'"),
        ({"dtype": "f99"}, "attribute 'dtype': expected a dtype"),
        ({"dtype": np.dtype(object)}, "unsupported dtype object"),
    ]:
        n = Node("astype", [x], attrs, [Value(TensorType((3,), np.float16))])
        rejected(graph([x], [], [n], n.outputs), pattern)
    n = Node("clip", [x], {"lo": 1.0}, [Value(F3)])  # hi left out: the node must be complete
    rejected(graph([x], [], [n], n.outputs), r"attributes \['lo'\] != \['hi', 'lo'\]")


def test_output_type_mismatch():
    x, b, c, nodes = mlp_like()
    nodes[1].outputs[0].type = TensorType((2, 3), np.float16)
    rejected(graph([x, b], [c], nodes, [nodes[-1].outputs[0]]),
             r"node 1 .*: output 0 is typed f16\[2,3\], the op gives f32\[2,3\]")
    x, b, c, nodes = mlp_like()
    nodes[1].outputs[0].type = TensorType((2, 3), np.float32, weak=True)
    rejected(graph([x, b], [c], nodes, [nodes[-1].outputs[0]]), r"typed f32\[2,3\]~")


def test_shape_rule_rejects_inputs():
    x, b = Value(F23, "x"), Value(TensorType((4,), np.float32), "b")
    n = Node("add", [x, b], {}, [Value(F23)])
    rejected(graph([x, b], [], [n], n.outputs), "shape rule rejects the inputs: .*broadcast")


def test_wrong_number_of_outputs():
    x, b, c, nodes = mlp_like()
    extra = Node("tanh", [x], {}, [Value(F23), Value(F23)])
    rejected(graph([x, b], [c], nodes + [extra], [nodes[-1].outputs[0]]),
             "has 2 outputs, op gives 1")


def test_output_not_pointing_back_to_its_node():
    x, b, c, nodes = mlp_like()
    nodes[2].outputs[0].producer = nodes[1]
    rejected(graph([x, b], [c], nodes, [nodes[2].outputs[0]]), "does not point back")


def test_bad_inputs_and_constants():
    x, b, c, nodes = mlp_like()
    x.data = np.zeros((2, 3), np.float32)
    rejected(graph([x, b], [c], nodes, [nodes[-1].outputs[0]]), "input 0 is not a plain input")
    x, b, c, nodes = mlp_like()
    c.data = None
    rejected(graph([x, b], [c], nodes, [nodes[-1].outputs[0]]), "constant 0 has no data")
    x, b, c, nodes = mlp_like()
    c.data = np.zeros(2, np.float32)
    rejected(graph([x, b], [c], nodes, [nodes[-1].outputs[0]]),
             r"constant 0 holds float32\[2\] but is typed f32\[\]~")
    x, b, c, nodes = mlp_like()
    c.data = np.array(2.0, np.float64)
    rejected(graph([x, b], [c], nodes, [nodes[-1].outputs[0]]), "holds float64")


def test_bad_types():
    for shape, pattern in [((-1, 3), "negative dimension"), ((2**40, 2**40), "more than")]:
        x = Value(TensorType(shape, np.float32), "x")
        rejected(graph([x], [], [], [x]), pattern)
    x = Value("f32[3]", "x")
    rejected(graph([x], [], [], [x]), "has no TensorType")


def test_undefined_graph_output():
    x, b, c, nodes = mlp_like()
    rejected(graph([x, b], [c], nodes, [Value(F23)]), "output 0 is not defined in the graph")


def test_pytree_leaf_counts():
    x, b, c, nodes = mlp_like()
    out = nodes[-1].outputs[0]
    rejected(graph([x, b], [c], nodes, [out], in_tree=TreeSpec.flat(3)),
             "input structure has 3 leaves for 2 inputs")
    rejected(graph([x, b], [c], nodes, [out], out_tree=TreeSpec.flat(2)),
             "output structure has 2 leaves for 1 outputs")
    ok = TreeSpec(TUPLE, [TreeSpec.flat(1), TreeSpec(DICT, [TreeSpec.leaf()], keys=["b"])])
    assert graph([x, b], [c], nodes, [out], in_tree=ok).verify()


@pytest.mark.usefixtures("test_ops")
def test_subgraph_errors_are_found():
    sx = Value(F3, "y")
    bad = Node("neg", [Value(F3)], {}, [Value(F3)])  # its input is dangling
    body = Graph("body", [sx], [], [bad], bad.outputs)
    x = Value(F3, "x")
    n = Node("test.call", [x], {"body": body}, [Value(F3)])
    rejected(graph([x], [], [n], n.outputs),
             r"node 0 \(test.call\) .*subgraph 'body': graph body, node 0 \(neg\).*dangling")


@pytest.mark.usefixtures("test_ops")
def test_nesting_limit():
    y = Value(F3, "y")
    n = Node("neg", [y], {}, [Value(F3)])
    g = Graph("leaf", [y], [], [n], n.outputs)
    for _ in range(70):
        x = Value(F3, "x")
        n = Node("test.call", [x], {"body": g}, [Value(F3)])
        g = Graph("g", [x], [], [n], n.outputs)
    rejected(g, "nested more than 64 deep")
